//! Analytics-tool exports: the JSON-lines sample reads as the same events as the CSV
//! it was written from.

mod common;

use std::io::Read;

use common::{repo, text, userlens};

/// The rows of the first `users` users of the canonical sample, as CSV text.
fn first_users_of_sample(users: usize) -> String {
    let file = std::fs::File::open(repo().join("sample_data/events.csv.gz")).unwrap();
    let mut csv_text = String::new();
    flate2::read::MultiGzDecoder::new(file)
        .read_to_string(&mut csv_text)
        .unwrap();
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
