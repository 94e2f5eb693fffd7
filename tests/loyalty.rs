//! The loyalty stage through the binary: a five-user log over three months and a
//! 20-answer survey (with two bad rows), every figure computed by hand.

mod common;

use std::path::Path;

use common::{read_csv, text, userlens};

/// u1: Jan, Feb, Mar; u2: Jan only (two purchases); u3: one event on Jan 31;
/// u4: Feb and Mar (a refund); u5: Jan and Mar.
const EVENTS: &str = "user_id,event_time,event_type,category,amount,rating
u1,2026-01-05 10:00:00,view,,,
u1,2026-02-10 10:00:00,rating,toys,,2
u1,2026-03-03 10:00:00,purchase,,20,
u2,2026-01-20 10:00:00,purchase,,10,
u2,2026-01-25 10:00:00,purchase,,15,
u3,2026-01-31 23:00:00,view,,,
u4,2026-02-01 10:00:00,view,,,
u4,2026-03-15 10:00:00,purchase,,-5,
u5,2026-01-10 10:00:00,view,,,
u5,2026-03-01 10:00:00,rating,books,,4
";

const PIPELINE: &str = r#"
[pipeline]
name = "loyalty_test"
seed = 1
output = "out"

[stages.ingest]
uses = "ingest"
with = { path = "events.csv" }

[stages.loyalty]
uses = "loyalty"
needs = ["ingest"]
with = { survey = "survey.csv" }
"#;

/// Eight promoters, five passives, seven detractors; then two rows to refuse.
fn survey() -> String {
    let scores = [
        10, 9, 9, 10, 9, 9, 10, 9, 7, 8, 7, 8, 8, 0, 3, 6, 5, 6, 2, 6,
    ];
    let mut out = String::from("user_id,answered_at,score,comment\n");
    for (i, score) in scores.iter().enumerate() {
        out.push_str(&format!("s{i:02},2026-02-{:02} 12:00:00,{score},\n", i + 1));
    }
    out.push_str("s98,2026-02-03,eleven,\n");
    out.push_str(",2026-02-03,5,no user\n");
    out
}

fn setup(dir: &Path) {
    std::fs::write(dir.join("events.csv"), EVENTS).unwrap();
    std::fs::write(dir.join("survey.csv"), survey()).unwrap();
    std::fs::write(dir.join("loyalty.toml"), PIPELINE).unwrap();
}

fn column(rows: &[std::collections::BTreeMap<String, String>], name: &str) -> Vec<String> {
    rows.iter().map(|r| r[name].clone()).collect()
}

#[test]
fn retention_lifecycle_and_nps_by_hand() {
    let tmp = tempfile::tempdir().unwrap();
    setup(tmp.path());
    let out = userlens(
        &["run", "loyalty.toml", "--as-of", "2026-03-20"],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = tmp.path().join("out");

    let retention = read_csv(&dir.join("retention.csv"));
    assert_eq!(
        column(&retention, "cohort"),
        ["2026-01", "2026-01", "2026-01", "2026-02", "2026-02"]
    );
    assert_eq!(
        column(&retention, "active_users"),
        ["4", "1", "2", "1", "1"]
    );
    assert_eq!(
        column(&retention, "retention"),
        ["1.000000", "0.250000", "0.500000", "1.000000", "1.000000"]
    );
    assert_eq!(
        column(&retention, "retention_unbounded"),
        ["1.000000", "0.500000", "0.500000", "1.000000", "1.000000"]
    );
    assert_eq!(
        column(&retention, "complete"),
        ["true", "true", "false", "true", "false"]
    );

    let lifecycle = read_csv(&dir.join("lifecycle.csv"));
    assert_eq!(column(&lifecycle, "new"), ["4", "1", "0"]);
    assert_eq!(column(&lifecycle, "dormant"), ["0", "3", "0"]);
    assert_eq!(column(&lifecycle, "resurrecting"), ["0", "0", "1"]);

    let repeat = read_csv(&dir.join("repeat_purchase.csv"));
    assert_eq!(column(&repeat, "buyers"), ["1", "1"]);
    assert_eq!(column(&repeat, "repeat_buyers"), ["1", "0"]);

    let nps = read_csv(&dir.join("nps.csv"));
    assert_eq!(nps.len(), 1);
    assert_eq!(nps[0]["responses"], "20");
    assert_eq!(nps[0]["promoters"], "8");
    assert_eq!(nps[0]["detractors"], "7");
    assert_eq!(nps[0]["nps"], "5.000000");
    // 5 - 100 * 1.959964 * sqrt((0.4 + 0.35 - 0.05^2) / 20) = 5 - 37.891229
    assert_eq!(nps[0]["nps_lower"], "-32.891229");
    assert_eq!(nps[0]["warning"], "fewer than 30 responses");

    let quarantine = read_csv(&dir.join("survey_quarantine.csv"));
    assert_eq!(column(&quarantine, "line"), ["22", "23"]);
    assert_eq!(column(&quarantine, "column"), ["score", "user_id"]);
    assert_eq!(
        quarantine[0]["reason"],
        "`score` \"eleven\" is not a whole number from 0 to 10"
    );
    let record = std::fs::read_to_string(dir.join("run.json")).unwrap();
    assert!(
        record.contains("2 of 22 survey rows in `survey.csv` were quarantined"),
        "{record}"
    );
}

#[test]
fn event_types_that_never_occur_leave_a_note_with_their_empty_tables() {
    let tmp = tempfile::tempdir().unwrap();
    setup(tmp.path());
    let mut args = vec!["run", "loyalty.toml", "--as-of", "2026-03-20"];
    let said = |args: &[&str]| {
        let out = userlens(args, tmp.path());
        assert!(out.status.success(), "{}", text(&out.stderr));
        std::fs::read_to_string(tmp.path().join("out/run.json")).unwrap()
    };
    let record = said(&args);
    assert!(!record.contains("before the as-of date:"), "{record}");
    args.extend([
        "--set",
        "loyalty.start_event=\"Purchase\"",
        "--set",
        "loyalty.purchase_event=\"Purchase\"",
    ]);
    let record = said(&args);
    let dir = tmp.path().join("out");
    assert!(read_csv(&dir.join("retention.csv")).is_empty());
    assert!(read_csv(&dir.join("repeat_purchase.csv")).is_empty());
    assert!(
        record.contains(
            "no `Purchase` event (`start_event`) before the as-of date: the retention tables are empty"
        ),
        "{record}"
    );
    assert!(
        record.contains("no `Purchase` event (`purchase_event`) before the as-of date"),
        "{record}"
    );
    assert!(!record.contains("`return_event`"), "{record}");
    args.truncate(4);
    args.extend(["--set", "loyalty.return_event=\"nope\""]);
    let record = said(&args);
    assert!(
        record.contains("no `nope` event (`return_event`) before the as-of date: no user returns"),
        "{record}"
    );
    assert!(!record.contains("`start_event`"), "{record}");
}

#[test]
fn two_runs_write_the_same_bytes() {
    let files = [
        "retention.csv",
        "retention_by_group.csv",
        "retention_curve.csv",
        "lifecycle.csv",
        "stickiness.csv",
        "active_days.csv",
        "repeat_purchase.csv",
        "survival.csv",
        "lifetime.csv",
        "satisfaction.csv",
        "nps.csv",
    ];
    let mut outputs = Vec::new();
    for _ in 0..2 {
        let tmp = tempfile::tempdir().unwrap();
        setup(tmp.path());
        let out = userlens(&["run", "loyalty.toml"], tmp.path());
        assert!(out.status.success(), "{}", text(&out.stderr));
        let bytes: Vec<Vec<u8>> = files
            .iter()
            .map(|f| std::fs::read(tmp.path().join("out").join(f)).unwrap())
            .collect();
        outputs.push(bytes);
    }
    assert_eq!(outputs[0], outputs[1]);
    // Without --as-of every event counts: the as-of date is the midnight after the
    // last one (Mar 16), so March is still incomplete.
    let last = String::from_utf8(outputs[0][0].clone()).unwrap();
    assert!(
        last.ends_with("2026-02,1,1,1,1.000000,1.000000,false\n"),
        "{last}"
    );
}

#[test]
fn a_loyalty_stage_without_needs_or_with_bad_values_is_refused_before_reading() {
    let tmp = tempfile::tempdir().unwrap();
    setup(tmp.path());
    let bad = PIPELINE.replace(
        "with = { survey = \"survey.csv\" }",
        "with = { survey = \"survey.csv\", unit = \"quarter\" }",
    );
    std::fs::write(tmp.path().join("bad.toml"), bad).unwrap();
    let out = userlens(&["validate", "bad.toml"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown variant `quarter`"),
        "{}",
        text(&out.stderr)
    );
    let alone = PIPELINE.replace("needs = [\"ingest\"]\n", "");
    std::fs::write(tmp.path().join("alone.toml"), alone).unwrap();
    let out = userlens(&["validate", "alone.toml"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("needs the stage that ingests the events"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_run_without_features_is_dated_by_the_stage_that_derived_its_as_of() {
    let tmp = tempfile::tempdir().unwrap();
    setup(tmp.path());
    let out = userlens(&["run", "loyalty.toml", "-q"], tmp.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("out/run.json")).unwrap()).unwrap();
    // The day after the last event, 2026-03-15.
    assert_eq!(record["as_of"], "2026-03-16", "{record}");
}

#[test]
fn the_drivers_of_staying_are_read_from_before_the_period_that_defines_it() {
    // Forty users alike through February; in March (the last complete month before
    // the as-of date) half come back five times. Staying is then no feature's doing:
    // the features at the as-of date would hold March's visits and say it is.
    let mut events = String::from("user_id,event_time,event_type\n");
    for u in 0..40 {
        for month in [1, 2] {
            events.push_str(&format!("u{u:02},2026-{month:02}-10 10:00:00,view\n"));
        }
        if u < 20 {
            for day in [3, 8, 13, 18, 23] {
                events.push_str(&format!("u{u:02},2026-03-{day:02} 10:00:00,view\n"));
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.csv"), events).unwrap();
    let pipeline = PIPELINE.replace(
        "needs = [\"ingest\"]\nwith = { survey = \"survey.csv\" }",
        "needs = [\"ingest\", \"features\"]",
    ) + "\n[stages.features]\nuses = \"features\"\nneeds = [\"ingest\"]\n";
    std::fs::write(dir.path().join("loyalty.toml"), pipeline).unwrap();
    let out = userlens(
        &["run", "loyalty.toml", "-q", "--as-of", "2026-04-01"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let drivers = read_csv(&dir.path().join("out/drivers.csv"));
    let retained: Vec<_> = drivers
        .iter()
        .filter(|r| r["target"] == "retained")
        .collect();
    // Every feature is the same for all forty before March: no correlation at all.
    let events = retained.iter().find(|r| r["feature"] == "events");
    assert_eq!(
        events.map(|r| r["users"].as_str()),
        Some("40"),
        "{retained:?}"
    );
    for row in &retained {
        assert_eq!(row["spearman"], "", "{row:?}");
    }
}

#[test]
fn a_second_loyalty_stage_writes_its_outputs_under_its_name() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let pipeline = PIPELINE.replace(
        "needs = [\"ingest\"]\nwith = { survey",
        "needs = [\"ingest\", \"features\"]\nwith = { survey",
    ) + "\n[stages.features]\nuses = \"features\"\nneeds = [\"ingest\"]\n\
         \n[stages.weekly]\nuses = \"loyalty\"\nneeds = [\"ingest\", \"features\"]\n\
         with = { unit = \"week\" }\n";
    std::fs::write(dir.path().join("loyalty.toml"), pipeline).unwrap();
    let out = userlens(
        &["run", "loyalty.toml", "-q", "--as-of", "2026-04-01"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The monthly stage's tables under their names, the weekly one's beside them.
    let monthly = read_csv(&dir.path().join("out/retention.csv"));
    let weekly = read_csv(&dir.path().join("out/weekly.retention.csv"));
    assert_eq!(monthly[0]["cohort"], "2026-01");
    assert_eq!(weekly[0]["cohort"], "2026-01-05");
    // Its drivers of staying are the as-of date's, and it says so.
    let record = std::fs::read_to_string(dir.path().join("out/run.json")).unwrap();
    assert!(
        record.contains("weekly: the features stage makes the features"),
        "{record}"
    );
    assert!(
        !record.contains("loyalty: the features stage makes"),
        "{record}"
    );
}

#[test]
fn a_second_stage_of_a_kind_is_named_whatever_the_first_wrote() {
    // Only the weekly stage reads the survey: its NPS is still `weekly.nps.csv`, so
    // that `nps.csv` never holds one stage's table on one night, another's the next.
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let pipeline = PIPELINE.replace("\nwith = { survey = \"survey.csv\" }", "")
        + "\n[stages.weekly]\nuses = \"loyalty\"\nneeds = [\"ingest\"]\n\
           with = { unit = \"week\", survey = \"survey.csv\" }\n";
    std::fs::write(dir.path().join("loyalty.toml"), pipeline).unwrap();
    let out = userlens(
        &["run", "loyalty.toml", "-q", "--as-of", "2026-04-01"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let nps = read_csv(&dir.path().join("out/weekly.nps.csv"));
    assert_eq!(nps[0]["responses"], "20");
    assert!(!dir.path().join("out/nps.csv").exists());
    assert!(dir.path().join("out/retention.csv").exists());
    // Run alone with `--until`, it keeps its name: a file's name never depends on
    // how the run was started.
    let out = userlens(
        &[
            "run",
            "loyalty.toml",
            "-q",
            "--as-of",
            "2026-04-02",
            "--until",
            "weekly",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let weekly = read_csv(&dir.path().join("out/weekly.retention.csv"));
    assert_eq!(weekly[0]["cohort"], "2026-01-05");
    assert!(!dir.path().join("out/retention.csv").exists());
}
