//! The nightly pipeline's gates: volume and drift, checked when a night runs and
//! when a backfill asks whether it is done.

mod common;

use std::path::Path;

use common::night::*;
use common::text;

/// Writes `to` in `dir`: the header and the rows of `events.csv` that `keep` takes.
fn events_where(dir: &Path, to: &str, keep: impl Fn(&str) -> bool) {
    let events = std::fs::read_to_string(dir.join("events.csv")).unwrap();
    let kept: Vec<&str> = (events.lines().enumerate())
        .filter(|(i, line)| *i == 0 || keep(line))
        .map(|(_, line)| line)
        .collect();
    std::fs::write(dir.join(to), kept.join("\n") + "\n").unwrap();
}

#[test]
fn the_volume_gate_refuses_a_night_whose_input_halves() {
    let dir = sandbox(400);
    let first = run(dir.path(), &["--as-of", "2026-06-01"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    events_where(dir.path(), "half.csv", |line| {
        (line.as_bytes().get(6)).is_some_and(|d| (d - b'0').is_multiple_of(2))
    });
    let out = run(
        dir.path(),
        &["--as-of", "2026-06-02", "--set", "ingest.path=half.csv"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(
            "the pipeline's gates refused the input after stage `ingest`: event volume is "
        ),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_volume_gate_compares_the_events_before_each_as_of_date() {
    // The first night read a file cut at its date; the next, the whole log, future
    // events and all: the events each night profiles grew by a day's worth.
    let dir = sandbox(400);
    let pipeline = PIPELINE.replace(
        "min_volume_ratio = 0.6",
        "min_volume_ratio = 0.6\nmax_volume_ratio = 1.5",
    );
    std::fs::write(dir.path().join("night.toml"), pipeline).unwrap();
    events_where(dir.path(), "cut.csv", |line| {
        line.split(',').nth(1).is_some_and(|t| t < "2026-03-01")
    });
    let first = run(
        dir.path(),
        &["--as-of", "2026-03-01", "--set", "ingest.path=cut.csv"],
    );
    assert!(first.status.success(), "{}", text(&first.stderr));
    let second = run(dir.path(), &["--as-of", "2026-03-02"]);
    assert!(second.status.success(), "{}", text(&second.stderr));
    let record = run_json(&dir.path().join("out/2026-03-02/run.json"));
    let before = record["rows"]["before_as_of"].as_u64().unwrap();
    assert!(before < record["rows"]["kept"].as_u64().unwrap());
    // The drift record tells the ratio the gate compared, of the same events.
    let drift = &record["drift"];
    assert_eq!(drift["events_kept"].as_u64(), Some(before), "{drift}");
    let then = drift["events_kept_previous"].as_u64().unwrap();
    // The first night's events before its as-of date, not all it read.
    let first = run_json(&dir.path().join("out/2026-03-01/run.json"));
    assert_eq!(
        Some(then),
        first["rows"]["before_as_of"].as_u64(),
        "{drift}"
    );
    let ratio = drift["volume_ratio"].as_f64().unwrap();
    assert_eq!(ratio, before as f64 / then as f64, "{drift}");
    assert!(ratio < 1.5, "{drift}");
}

#[test]
fn a_night_done_before_a_gate_it_now_fails_is_not_done_already() {
    // With a features stage, and without one (only the ingest counts the events).
    let lean = PIPELINE[..PIPELINE.find("[stages.features]").unwrap()].to_string()
        + "[stages.loyalty]\nuses = \"loyalty\"\nneeds = [\"ingest\"]\n";
    for pipeline in [PIPELINE, &lean] {
        let dir = sandbox(400);
        std::fs::write(dir.path().join("night.toml"), pipeline).unwrap();
        nights(dir.path(), &["2026-06-01"]);
        // The next night's log lost two thirds of its users: let through by a looser
        // gate.
        events_where(dir.path(), "events.csv", |line| {
            line.as_bytes().get(6).is_some_and(|d| d % 3 == 1)
        });
        let open = pipeline.replace("min_volume_ratio = 0.6", "min_volume_ratio = 0.1");
        std::fs::write(dir.path().join("night.toml"), open).unwrap();
        nights(dir.path(), &["2026-06-02"]);
        // With the gate back, a backfill of that night runs it again, and refuses it.
        std::fs::write(dir.path().join("night.toml"), pipeline).unwrap();
        let out = backfill(dir.path(), "2026-06-02", "2026-06-02", &[]);
        let said = text(&out.stdout);
        assert!(!said.contains("done already"), "{said}");
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        let said = text(&out.stderr);
        assert!(said.contains("event volume is"), "{said}");
    }
}

#[test]
fn a_night_let_through_after_a_refusal_keeps_the_artifacts_it_reused() {
    // The drift gate refuses a night whose log lost its ratings; the operator lets
    // it through, clears the refused run's folder, and the night after still
    // compares with the night let through, whose features the refused run made.
    let dir = sandbox(400);
    let gated = PIPELINE.replace(
        "min_volume_ratio = 0.6",
        "min_volume_ratio = 0.6\nfail_on_drift = \"alert\"",
    );
    std::fs::write(dir.path().join("night.toml"), &gated).unwrap();
    nights(dir.path(), &["2026-06-01"]);
    let events = std::fs::read_to_string(dir.path().join("events.csv")).unwrap();
    let unrated: Vec<&str> = (events.lines())
        .map(|line| &line[..line.rfind(',').unwrap()])
        .collect();
    std::fs::write(dir.path().join("events.csv"), unrated.join("\n") + "\n").unwrap();
    let refused = run(dir.path(), &["--as-of", "2026-06-02"]);
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused.stderr));
    std::fs::write(dir.path().join("night.toml"), PIPELINE).unwrap();
    nights(dir.path(), &["2026-06-02"]);
    let record = run_json(&dir.path().join("out/2026-06-02/run.json"));
    let refused_run = record["stages"][1]["reused_from"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_dir_all(dir.path().join("runs/night").join(&refused_run)).unwrap();
    let out = run(dir.path(), &["--as-of", "2026-06-03"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("are gone"),
        "{}",
        text(&out.stderr)
    );
    let record = run_json(&dir.path().join("out/2026-06-03/run.json"));
    let against = record["drift"]["against_run"].as_str().unwrap_or("");
    assert!(
        against.starts_with("2026-06-02_") && against != refused_run,
        "{against}"
    );
}
