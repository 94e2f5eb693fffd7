//! JSON-lines sources and integer user ids.

use super::*;

/// A Segment-style export: nested properties, a missing field, a malformed line, a
/// line that is not an object, a list where a value belongs, a blank line.
const EXPORT: &str = r#"{"userId": 17850.0, "timestamp": "2026-01-02 10:00:00", "event": "Order Completed", "properties": {"revenue": 12.5, "product_id": "p1"}}
{"userId": 17850, "timestamp": "2026-01-03 11:00:00", "event": "Product Viewed", "properties": {"product_id": "p2"}}
{"userId": 12346, "timestamp": "2026-01-04 09:00:00", "event": "Order Completed"

[1, 2, 3]
{"userId": 12346, "timestamp": "2026-01-05 09:00:00", "event": "Order Completed", "properties": {"revenue": [1, 2]}}
{"userId": 12346.5, "timestamp": "2026-01-06 09:00:00", "event": "Product Viewed", "properties": {}}
{"timestamp": "2026-01-07 09:00:00", "event": "Product Viewed"}
{"userId": "007", "timestamp": "2026-01-08 09:00:00", "event": "Product Viewed", "context": {"page": {"path": "/p3"}}}
"#;

fn export_source(path: PathBuf, compress: bool) -> Source {
    let params: SourceParams = toml::from_str(
        r#"
        path = "placeholder"
        user_id_format = "integer"
        [columns]
        user_id = "userId"
        event_time = "timestamp"
        event_type = "event"
        amount = "properties.revenue"
        item_id = "properties.product_id"
        [event_names]
        "Order Completed" = "purchase"
        "Product Viewed" = "view"
        "#,
    )
    .unwrap();
    let path = if compress {
        let gz = path.with_extension("ndjson.gz");
        let mut encoder =
            flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), Default::default());
        encoder.write_all(&std::fs::read(&path).unwrap()).unwrap();
        encoder.finish().unwrap();
        gz
    } else {
        path
    };
    SourceParams { path, ..params }.check().unwrap()
}

#[test]
fn json_lines_are_read_by_dotted_paths_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "export.ndjson", EXPORT.as_bytes());
    for compress in [false, true] {
        let out = ingest(&export_source(path.clone(), compress)).unwrap();
        let stats = &out.stats;
        assert_eq!(stats.read, 8, "blank lines are not rows");
        assert_eq!(
            stats.read,
            stats.kept + stats.quarantined + stats.duplicates
        );
        assert_eq!(stats.kept, 3);
        let q = quarantine_rows(&out);
        let lines: Vec<u64> = q.iter().map(|(line, _, _)| *line).collect();
        assert_eq!(lines, [3, 5, 6, 7, 8], "{q:?}");
        // Cut short: the error is at its end (80 bytes), not at the line end after.
        assert_eq!(
            q[0].2, "not valid JSON at byte 80: EOF while parsing an object",
            "{:?}",
            q[0]
        );
        assert_eq!(q[1].2, "a JSON line must be an object");
        assert_eq!(
            (q[2].1.as_str(), q[2].2.as_str()),
            // Named by the column it is read for, as a bad value's row is.
            ("amount", "`properties.revenue` is a list, not a value")
        );
        assert_eq!(
            (q[3].1.as_str(), q[3].2.as_str()),
            ("user_id", "`user_id` \"12346.5\" is not a whole number")
        );
        assert_eq!(
            (q[4].1.as_str(), q[4].2.as_str()),
            ("user_id", "missing `user_id`")
        );
        // The quarantine echoes the line as written.
        let raw = quarantine_raw(&out, 4);
        assert!(raw.starts_with(r#"{"timestamp": "2026-01-07"#), "{raw}");

        let users: Vec<String> = out
            .events
            .column("user_id")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .flatten()
            .map(String::from)
            .collect();
        assert_eq!(
            users,
            ["17850", "17850", "7"],
            "float and zero-padded ids read as integers"
        );
        let types = text(&out, "event_type");
        assert_eq!(
            types,
            ["purchase", "view", "view"].map(|t| Some(t.to_string()))
        );
        assert_eq!(amounts(&out), [Some(12.5), None, None]);
        let items = text(&out, "item_id");
        assert_eq!(
            items,
            [Some("p1".to_string()), Some("p2".to_string()), None]
        );
    }
    // Old Mac line ends (`\r` alone) end lines as `\n` does.
    let cr = write(
        &dir,
        "export_cr.ndjson",
        EXPORT.replace('\n', "\r").as_bytes(),
    );
    let out = ingest(&export_source(cr, false)).unwrap();
    assert_eq!((out.stats.read, out.stats.kept), (8, 3));
    let lines: Vec<u64> = quarantine_rows(&out).iter().map(|q| q.0).collect();
    assert_eq!(lines, [3, 5, 6, 7, 8]);
}

#[test]
fn integer_ids_accept_whole_numbers_only() {
    let f = IdFormat::Integer;
    let read = |id: &str| f.normalise(id).map(|c| c.into_owned());
    assert_eq!(read("17850.0").as_deref(), Some("17850"));
    assert_eq!(read("17850").as_deref(), Some("17850"));
    assert_eq!(read("0017850.000").as_deref(), Some("17850"));
    assert_eq!(read("-12.0").as_deref(), Some("-12"));
    assert_eq!(read("-0.0").as_deref(), Some("0"));
    assert_eq!(read("0").as_deref(), Some("0"));
    for bad in ["17850.5", "1e3", "abc", "", ".0", "-", "12.0x", "1,000"] {
        assert_eq!(read(bad), None, "{bad:?}");
    }
    assert_eq!(
        IdFormat::Text.normalise("17850.0").as_deref(),
        Some("17850.0")
    );
}

#[test]
fn the_format_is_guessed_from_the_name() {
    for (name, format) in [
        ("a.ndjson", SourceFormat::Ndjson),
        ("a.jsonl.gz", SourceFormat::Ndjson),
        ("a.json", SourceFormat::Ndjson),
        ("a.csv.gz", SourceFormat::Csv),
        ("a.parquet", SourceFormat::Parquet),
        ("a.txt", SourceFormat::Text),
        ("events", SourceFormat::Csv),
    ] {
        assert_eq!(guess_format(Path::new(name)), format, "{name}");
    }
}

#[test]
fn a_mapped_key_no_line_has_is_told_and_refused_for_a_required_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "export.ndjson", EXPORT.as_bytes());
    let mut source = export_source(path.clone(), false);
    source.params.columns.insert(
        "amount".into(),
        ColumnSource::Column("properties.Revenue".into()),
    );
    // A key in no line may be a night without such events: the run goes on, and is told.
    let out = ingest(&source).unwrap();
    assert_eq!(out.stats.kept, 4);
    assert_eq!(
        out.stats.notes,
        [format!(
            "`{}`: no line has the key `properties.Revenue`, read for `amount`; did you \
             mean `properties.revenue`? the keys of the first lines are: \
             context.page.path, event, properties.product_id, properties.revenue, \
             timestamp, userId",
            path.display()
        )]
    );
    // A key of a `first` list is told, once, though the column has another.
    let params: SourceParams = toml::from_str(
        r#"
        path = "placeholder"
        user_id_format = "integer"
        refund_when = '`properties.refunded` == "yes"'
        [columns]
        user_id = { first = ["userId", "anonymousID"] }
        event_time = "timestamp"
        event_type = "event"
        amount = "properties.refunded"
        "#,
    )
    .unwrap();
    let source = SourceParams {
        path: path.clone(),
        ..params
    }
    .check()
    .unwrap();
    let notes = ingest(&source).unwrap().stats.notes;
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].contains("no line has the key `anonymousID`, read for `user_id`;"));
    assert!(
        notes[1].contains("the key `properties.refunded`, read for `amount` and `refund_when`;"),
        "{}",
        notes[1]
    );
    // No event type anywhere is no log to read.
    let mut source = export_source(path, false);
    source
        .params
        .columns
        .insert("event_type".into(), ColumnSource::Column("Event".into()));
    let err = ingest(&source).unwrap_err();
    assert!(err.is_refusal(), "{err}");
    assert!(
        err.to_string().contains(
            "no line has the key `Event` (mapped to `event_type`); did you mean `event`?"
        ),
        "{err}"
    );
}

#[test]
fn keys_that_hold_dots_are_read_as_flattened_exports_write_them() {
    let dir = tempfile::tempdir().unwrap();
    let flat = EXPORT
        .replace(
            r#""properties": {"revenue": 12.5, "product_id": "p1"}"#,
            r#""properties.revenue": 12.5, "properties.product_id": "p1""#,
        )
        .replace(
            r#""properties": {"product_id": "p2"}"#,
            r#""properties.product_id": "p2""#,
        );
    let nested = ingest(&export_source(
        write(&dir, "nested.ndjson", EXPORT.as_bytes()),
        false,
    ))
    .unwrap();
    let flattened = ingest(&export_source(
        write(&dir, "flat.ndjson", flat.as_bytes()),
        false,
    ))
    .unwrap();
    assert_eq!(flattened.stats.kept, nested.stats.kept);
    let amounts = |out: &Ingested| {
        out.events
            .column("amount")
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .collect::<Vec<_>>()
    };
    assert_eq!(amounts(&flattened), amounts(&nested));
    assert!(amounts(&flattened).contains(&Some(12.5)));
}
