//! Exports as they come: the JSON-lines sample reads as the same events as the CSV
//! it was written from; the line-item sample counts orders, refunds and customers
//! as its lines say.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use common::{read_csv, repo, text, userlens};

/// A gzip-compressed file of the repository, as text.
fn gunzip(path: &str) -> String {
    let file = std::fs::File::open(repo().join(path)).unwrap();
    let mut out = String::new();
    flate2::read::MultiGzDecoder::new(file)
        .read_to_string(&mut out)
        .unwrap();
    out
}

/// The rows of the first `users` users of the canonical sample, as CSV text.
fn first_users_of_sample(users: usize) -> String {
    let csv_text = gunzip("sample_data/events.csv.gz");
    let mut out = String::new();
    let (mut seen, mut last) = (0, "");
    for (i, line) in csv_text.lines().enumerate() {
        let user = line.split(',').next().unwrap_or_default();
        if i > 0 && user != last {
            seen += 1;
            last = user;
        }
        if seen > users {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn the_segment_export_reads_as_the_csv_it_was_written_from() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();
    let pipeline = std::fs::read_to_string(repo().join("pipelines/segment.toml")).unwrap();

    // The same pipeline on the CSV: its ingest reads canonical columns.
    std::fs::write(tmp.join("events.csv"), first_users_of_sample(300)).unwrap();
    let ingest_start = pipeline.find("[stages.ingest]").unwrap();
    let features_start = pipeline.find("[stages.features]").unwrap();
    let csv_pipeline = format!(
        "{}[stages.ingest]\nuses = \"ingest\"\nwith = {{ path = {:?} }}\n\n{}",
        &pipeline[..ingest_start],
        tmp.join("events.csv").display().to_string(),
        &pipeline[features_start..]
    );
    std::fs::write(tmp.join("csv.toml"), csv_pipeline).unwrap();

    for (file, out) in [("pipelines/segment.toml", "json"), ("csv.toml", "csv")] {
        let file = if out == "csv" {
            tmp.join(file).display().to_string()
        } else {
            file.to_string()
        };
        let run = userlens(
            &[
                "run",
                &file,
                "--out",
                &tmp.join(out).display().to_string(),
                "--runs",
                &tmp.join(format!("runs-{out}")).display().to_string(),
                "--set",
                "report.features_csv=true",
                "-q",
            ],
            &repo(),
        );
        assert!(run.status.success(), "{out}: {}", text(&run.stderr));
    }
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.join("json/run.json")).unwrap()).unwrap();
    let rows = &record["rows"];
    assert_eq!(rows["users"], 300, "{rows}");
    assert_eq!(rows["quarantined"], 0, "{rows}");
    assert_eq!(rows["read"], rows["kept"], "{rows}");
    for table in ["features.csv", "user_personas.csv", "personas.csv"] {
        let json = std::fs::read(tmp.join("json").join(table)).unwrap();
        let csv = std::fs::read(tmp.join("csv").join(table)).unwrap();
        assert!(
            json == csv,
            "{table} differs between the JSON-lines and CSV runs"
        );
    }
}

/// What the line-item sample says of one customer.
#[derive(Default)]
struct Customer {
    invoices: BTreeSet<String>,
    cents: i64,
    cancellations: u32,
}

#[test]
fn the_line_item_export_counts_orders_refunds_and_customers() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();
    let run = userlens(
        &[
            "run",
            "pipelines/retail.toml",
            "--out",
            &tmp.join("out").display().to_string(),
            "--runs",
            &tmp.join("runs").display().to_string(),
            "-q",
        ],
        &repo(),
    );
    assert!(run.status.success(), "{}", text(&run.stderr));

    // The expected figures, straight from the lines.
    let lines = gunzip("sample_data/retail.csv.gz");
    let mut customers: BTreeMap<String, Customer> = BTreeMap::new();
    let mut guests = 0;
    for line in lines.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (invoice, quantity, price, id) = (f[0], f[3], f[5], f[6]);
        let Some(id) = id.strip_suffix(".0") else {
            assert_eq!(id, "", "{line}");
            guests += 1;
            continue;
        };
        let customer = customers.entry(id.to_string()).or_default();
        let cents = (quantity.parse::<f64>().unwrap() * price.parse::<f64>().unwrap() * 100.0)
            .round() as i64;
        if invoice.starts_with('C') {
            customer.cancellations += 1;
            customer.cents -= cents.abs();
        } else {
            customer.invoices.insert(invoice.to_string());
            customer.cents += cents;
        }
    }
    assert!(guests > 0 && customers.values().any(|c| c.cancellations > 0));

    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.join("out/run.json")).unwrap()).unwrap();
    let rows = &record["rows"];
    assert_eq!(rows["quarantined"], guests, "{rows}");
    assert_eq!(rows["read"], lines.lines().count() - 1, "{rows}");
    assert_eq!(rows["users"], customers.len(), "{rows}");

    let features = read_csv(&tmp.join("out/features.csv"));
    assert_eq!(features.len(), customers.len());
    for row in &features {
        let id = &row["user_id"];
        let customer = &customers[id];
        let number = |name: &str| row[name].parse::<f64>().unwrap();
        assert_eq!(number("frequency"), customer.invoices.len() as f64, "{id}");
        assert_eq!(
            number("refund_count"),
            f64::from(customer.cancellations),
            "{id}"
        );
        let monetary = (number("monetary") * 100.0).round() as i64;
        assert_eq!(monetary, customer.cents, "{id}");
    }

    // Personas of a purchase-only log speak of value and behaviour, not the clock.
    let clock = [
        "morning", "evening", "night", "weekend", "weekday", "daytime",
    ];
    for persona in read_csv(&tmp.join("out/personas.csv")) {
        let label = &persona["label"];
        assert!(!clock.iter().any(|w| label.contains(w)), "{label}");
    }
}
