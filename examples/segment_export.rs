//! Writes a canonical event CSV (gzip or not) as a Segment-style JSON-lines export:
//! one `track` call per line, the item, category, query, revenue and rating under
//! `properties`, the session under `context`. `make sample-data` uses it for
//! sample_data/segment_events.ndjson.gz, the input of pipelines/segment.toml.
//!
//! usage: segment_export EVENTS.csv OUT.ndjson [MAX_USERS]

use std::io::{BufRead, BufReader, BufWriter, Read, Write};

use serde_json::{Map, Value, json};

/// Segment's names for the canonical event types (its e-commerce spec).
fn event_name(event_type: &str) -> &str {
    match event_type {
        "view" => "Product Viewed",
        "add_to_cart" => "Product Added",
        "purchase" => "Order Completed",
        "search" => "Products Searched",
        "rating" => "Product Reviewed",
        other => other,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(input), Some(output)) = (args.get(1), args.get(2)) else {
        return Err("usage: segment_export EVENTS.csv OUT.ndjson [MAX_USERS]".into());
    };
    let max_users: usize = args.get(3).map_or(Ok(usize::MAX), |n| n.parse())?;
    let mut file = BufReader::new(std::fs::File::open(input)?);
    let reader: Box<dyn Read> = if file.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut csv = csv::Reader::from_reader(reader);
    let header = csv.headers()?.clone();
    let index = |name: &str| header.iter().position(|h| h == name);
    let column = |record: &csv::StringRecord, name: &str| -> Option<String> {
        index(name)
            .and_then(|i| record.get(i))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let mut out = BufWriter::new(std::fs::File::create(output)?);
    let mut users = 0usize;
    let mut last_user = String::new();
    for record in csv.records() {
        let record = record?;
        let user = column(&record, "user_id").unwrap_or_default();
        if user != last_user {
            users += 1;
            last_user.clone_from(&user);
        }
        if users > max_users {
            break;
        }
        let time = column(&record, "event_time").unwrap_or_default();
        let event_type = column(&record, "event_type").unwrap_or_default();
        let mut properties = Map::new();
        for (from, to) in [
            ("item_id", "product_id"),
            ("category", "category"),
            ("query", "query"),
        ] {
            if let Some(v) = column(&record, from) {
                properties.insert(to.into(), Value::String(v));
            }
        }
        for (from, to) in [("amount", "revenue"), ("rating", "rating")] {
            if let Some(v) = column(&record, from) {
                properties.insert(to.into(), serde_json::from_str::<Value>(&v)?);
            }
        }
        let line = json!({
            "type": "track",
            "userId": user,
            "event": event_name(&event_type),
            "timestamp": format!("{}Z", time.replacen(' ', "T", 1)),
            "properties": properties,
            "context": { "sessionId": column(&record, "session_id") },
        });
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
