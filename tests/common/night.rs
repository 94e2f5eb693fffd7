//! The nightly pipeline of the integration tests, and running it.

use std::path::Path;

use super::{generate, text, userlens};

pub const PIPELINE: &str = r#"
[pipeline]
name = "night"
output = "out/{as_of}"
runs = "runs"

[pipeline.gates]
min_volume_ratio = 0.6

[stages.ingest]
uses = "ingest"
with = { path = "events.csv" }

[stages.features]
uses = "features"
needs = ["ingest"]

[stages.personas]
uses = "profile"
needs = ["features"]
with = { k = 5 }

[stages.report]
uses = "report"
needs = ["features", "personas"]
"#;

/// A sandbox with generated events and the pipeline file.
pub fn sandbox(users: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), users, 5);
    std::fs::write(dir.path().join("night.toml"), PIPELINE).unwrap();
    dir
}

/// Writes the pipeline with `lines` added to its features stage.
pub fn features_with(dir: &Path, lines: &str) {
    let stage = "[stages.features]\nuses = \"features\"\nneeds = [\"ingest\"]";
    let pipeline = PIPELINE.replace(stage, &format!("{stage}\n{lines}"));
    std::fs::write(dir.join("night.toml"), pipeline).unwrap();
}

/// Runs the nights of `dates` in turn, each of which must succeed.
pub fn nights(dir: &Path, dates: &[&str]) {
    for date in dates {
        let out = run(dir, &["--as-of", date]);
        assert!(out.status.success(), "{date}: {}", text(&out.stderr));
    }
}

pub fn run(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run", "night.toml"];
    args.extend_from_slice(extra);
    userlens(&args, dir)
}

/// `userlens backfill night.toml --from FROM --to TO`, then `extra`.
pub fn backfill(dir: &Path, from: &str, to: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["backfill", "night.toml", "--from", from, "--to", to];
    args.extend_from_slice(extra);
    userlens(&args, dir)
}

/// Runs the night of 2026-05-01 with `extra`, which must succeed: its stages' statuses.
pub fn statuses_on_may_1(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["--as-of", "2026-05-01"];
    args.extend_from_slice(extra);
    let out = run(dir, &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let record = run_json(&dir.join("out/2026-05-01/run.json"));
    stage_fields(&record, "status")
}

pub fn run_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A run with `extra` options exits with the usage code, saying `said`.
pub fn usage_error(dir: &Path, extra: &[&str], said: &str) {
    let mut args = vec!["--as-of", "2026-05-01"];
    args.extend_from_slice(extra);
    let out = run(dir, &args);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(said), "{}", text(&out.stderr));
}

/// `field` (a string) of every stage of a run record, in order.
pub fn stage_fields(record: &serde_json::Value, field: &str) -> Vec<String> {
    record["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[field].as_str().unwrap().to_string())
        .collect()
}
