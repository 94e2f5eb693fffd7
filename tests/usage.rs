//! A dry run, `validate` and a run refuse the same command lines, before any work.

mod common;

use common::{text, userlens};

const PIPELINE: &str = r#"
[pipeline]
name = "p"
output = "out"

[stages.ingest]
uses = "ingest"
with = { path = "events.csv" }

[stages.features]
uses = "features"
needs = ["ingest"]
"#;

fn sandbox() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::generate(dir.path(), 100, 3);
    std::fs::write(dir.path().join("p.toml"), PIPELINE).unwrap();
    dir
}

/// Every path under `dir`, relative, sorted.
#[cfg(not(feature = "cluster"))]
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut out: Vec<String> = walk(dir)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect();
    out.sort();
    out
}

#[cfg(not(feature = "cluster"))]
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        out.push(entry.path());
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&entry.path()));
        }
    }
    out
}

/// Runs the pipeline so that its features stage fails (its users table is missing).
fn fail_at_features(dir: &std::path::Path) {
    let set = [
        "run",
        "p.toml",
        "-q",
        "--set",
        "features.users=\"nope.csv\"",
    ];
    let failed = userlens(&set, dir);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed.stderr));
}

/// The id of the newest run `runs list` shows.
fn newest_run(dir: &std::path::Path) -> String {
    let list = text(&userlens(&["runs", "list"], dir).stdout);
    let line = list.lines().nth(1).unwrap_or_default();
    line.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `userlens backfill p.toml` from 2026-05-01 to `to`, then `extra`.
fn backfill(dir: &std::path::Path, to: &str, extra: &[&str]) -> std::process::Output {
    let args = ["backfill", "p.toml", "--from", "2026-05-01", "--to", to];
    userlens(&[&args[..], extra].concat(), dir)
}

fn exits_saying(out: &std::process::Output, code: i32, says: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(says), "{stderr}");
}

#[cfg(not(feature = "cluster"))]
#[test]
fn a_dry_run_refuses_what_the_run_refuses() {
    let dir = sandbox();
    let before = tree(dir.path());
    for (args, says) in [
        (&["--out", "."][..], "not a folder of its own"),
        (&["--out", "runs/x"][..], "runs folder"),
        (&["--runs", "events.csv"][..], "is not a folder"),
        (
            &["--engine", "ballista://localhost:1"][..],
            "without the `cluster` feature",
        ),
    ] {
        for dry in [true, false] {
            let mut all = vec!["run", "p.toml", "-q"];
            all.extend_from_slice(args);
            if dry {
                all.push("--dry-run");
            }
            exits_saying(&userlens(&all, dir.path()), 2, says);
        }
        assert_eq!(tree(dir.path()), before, "{args:?} wrote something");
    }
    // A backfill takes the engine as a run does.
    let engine = ["--engine", "ballista://localhost:1"];
    exits_saying(
        &backfill(dir.path(), "2026-05-02", &engine),
        2,
        "without the `cluster` feature",
    );
    assert_eq!(tree(dir.path()), before, "the backfill wrote something");
    let set = userlens(
        &[
            "validate",
            "p.toml",
            "--set",
            "pipeline.engine=\"ballista://localhost:1\"",
        ],
        dir.path(),
    );
    // The file is valid: `validate` warns that this build cannot run it there.
    assert!(set.status.success(), "{}", text(&set.stderr));
    let warning = "warning: this userlens was built without the `cluster` feature";
    assert!(text(&set.stdout).contains(warning));
}

#[test]
fn a_dry_run_of_a_resume_plans_the_run_it_resumes() {
    let dir = sandbox();
    // A good run, whose features a run without `--set` would reuse.
    let good = userlens(&["run", "p.toml", "-q"], dir.path());
    assert!(good.status.success(), "{}", text(&good.stderr));
    fail_at_features(dir.path());
    let list = userlens(&["runs", "list"], dir.path());
    let listing = text(&list.stdout);
    let line = (listing.lines())
        .find(|l| l.contains("failed"))
        .unwrap_or_default();
    let run_id = line.split_whitespace().next().unwrap();
    let dry = userlens(
        &["run", "p.toml", "--resume", run_id, "--dry-run"],
        dir.path(),
    );
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let plan = text(&dry.stdout);
    assert!(plan.contains("1. ingest (ingest): skip"), "{plan}");
    assert!(plan.contains("2. features (features): run"), "{plan}");
    let changed = "warning: the pipeline has changed since run";
    assert!(
        !text(&dry.stderr).contains(changed),
        "{}",
        text(&dry.stderr)
    );
    // The file edited since the failed run: the dry run warns as the run would.
    let edited = PIPELINE.replace(
        "needs = [\"ingest\"]",
        "needs = [\"ingest\"]\nwith = { families = [\"rfm\"] }",
    );
    std::fs::write(dir.path().join("p.toml"), edited).unwrap();
    let args = ["run", "p.toml", "--resume", run_id, "--dry-run"];
    let dry = userlens(&args, dir.path());
    assert!(text(&dry.stderr).contains(changed), "{}", text(&dry.stderr));
    let json = userlens(&[&args[..], &["--log-format", "json"]].concat(), dir.path());
    let plan: serde_json::Value = serde_json::from_str(text(&json.stdout).trim()).unwrap();
    assert!(
        plan["warnings"][0]
            .as_str()
            .unwrap()
            .contains("has changed since run")
    );
    let unknown = userlens(
        &["run", "p.toml", "--resume", "nope", "--dry-run"],
        dir.path(),
    );
    exits_saying(&unknown, 2, "no run `nope`");
}

#[test]
fn a_run_that_publishes_nothing_leaves_no_folder_it_made() {
    let dir = sandbox();
    let nested = PIPELINE.replace("output = \"out\"", "output = \"reports/nightly/{as_of}\"");
    std::fs::write(dir.path().join("p.toml"), nested).unwrap();
    let only = userlens(&["run", "p.toml", "-q", "--only", "ingest"], dir.path());
    assert!(only.status.success(), "{}", text(&only.stderr));
    fail_at_features(dir.path());
    assert!(!dir.path().join("reports").exists());
    // A folder that was there stays, empty or not.
    std::fs::create_dir_all(dir.path().join("reports/nightly")).unwrap();
    fail_at_features(dir.path());
    assert!(dir.path().join("reports/nightly").is_dir());
    let good = userlens(&["run", "p.toml", "-q"], dir.path());
    assert!(good.status.success(), "{}", text(&good.stderr));
    assert!(dir.path().join("reports/nightly/latest/run.json").is_file());
}

#[test]
fn a_json_log_stays_json_for_refused_command_lines_and_skipped_dates() {
    let dir = sandbox();
    for args in [
        &[
            "run",
            "p.toml",
            "--log-format",
            "json",
            "--as-of",
            "2026-02-30",
        ][..],
        &["run", "p.toml", "--log-format=json", "--bogus"][..],
    ] {
        let out = userlens(args, dir.path());
        assert_eq!(out.status.code(), Some(2));
        let lines: Vec<serde_json::Value> = (text(&out.stderr).lines())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
            .collect();
        assert_eq!(lines.len(), 1, "{args:?}");
        assert_eq!(lines[0]["event"], "error");
    }
    assert!(backfill(dir.path(), "2026-05-01", &[]).status.success());
    let out = backfill(dir.path(), "2026-05-01", &["--log-format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["status"], "skipped");
    assert_eq!(line["as_of"], "2026-05-01");
}

#[test]
fn verbose_says_more_and_very_verbose_more_still() {
    let dir = sandbox();
    let lines = |flag: &str| {
        let out = userlens(&["run", "p.toml", "--force", flag], dir.path());
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stderr = text(&out.stderr);
        (
            stderr.contains("ingest: read and checked in"),
            stderr.contains("DEBUG"),
        )
    };
    assert_eq!(lines("-q"), (false, false));
    assert_eq!(lines("-v"), (true, false));
    assert_eq!(lines("-vv"), (true, true));
}

#[test]
fn runs_show_gives_each_stage_its_key_hash_and_error() {
    let dir = sandbox();
    fail_at_features(dir.path());
    let run_id = newest_run(dir.path());
    let shown = text(&userlens(&["runs", "show", &run_id], dir.path()).stdout);
    let keys: Vec<&str> = (shown.lines())
        .filter_map(|l| l.trim().strip_prefix("cache key "))
        .collect();
    assert_eq!(keys.len(), 2, "{shown}");
    // The ingest's rows in are the rows it read from its source.
    let ingest = shown.lines().find(|l| l.contains(". ingest")).unwrap();
    let words: Vec<&str> = ingest.split_whitespace().collect();
    let count = |label: &str| -> u64 {
        let at = words.iter().position(|w| w.starts_with(label)).unwrap();
        words[at - 1].parse().unwrap()
    };
    let read = std::fs::read_to_string(dir.path().join("events.csv")).unwrap();
    assert_eq!(count("rows"), read.lines().count() as u64 - 1, "{ingest}");
    assert!(count("out,") > 0, "{ingest}");
    // The ingest's artifact is there: its key and content hash are BLAKE3 hex.
    let (key, content) = keys[0].split_once(", content ").unwrap();
    assert!(key.len() == 64 && content.len() == 64, "{shown}");
    assert!(
        shown.contains("error: ") && shown.contains("nope.csv"),
        "{shown}"
    );
}

#[cfg(unix)]
#[test]
fn an_argument_that_is_not_utf8_is_refused_not_a_crash() {
    use std::os::unix::ffi::OsStrExt;
    let dir = sandbox();
    let name = std::ffi::OsStr::from_bytes(b"\xff.toml");
    for json in [false, true] {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_userlens"));
        command
            .arg("run")
            .arg(name)
            .arg("--bogus")
            .current_dir(dir.path());
        if json {
            command.args(["--log-format", "json"]);
        }
        let out = command.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    }
}

#[test]
fn a_resume_says_when_the_pipeline_changed_since_the_run_started() {
    let dir = sandbox();
    let newest = || newest_run(dir.path());
    let changed = "the pipeline has changed since run";
    let users = dir.path().join("nope.csv");
    // Resumed as it started (its users table there now): no word of it.
    fail_at_features(dir.path());
    std::fs::write(&users, "user_id,plan\nu1,pro\n").unwrap();
    let same = userlens(&["run", "p.toml", "--resume", &newest()], dir.path());
    assert!(same.status.success(), "{}", text(&same.stderr));
    assert!(
        !text(&same.stderr).contains(changed),
        "{}",
        text(&same.stderr)
    );
    // Resumed after the file changed: said.
    std::fs::remove_file(&users).unwrap();
    fail_at_features(dir.path());
    let file = PIPELINE.replace(
        "needs = [\"ingest\"]",
        "needs = [\"ingest\"]\nwith = { top_categories = 3 }",
    );
    std::fs::write(dir.path().join("p.toml"), file).unwrap();
    let run_id = newest();
    let again = userlens(&["run", "p.toml", "--resume", &run_id], dir.path());
    assert_eq!(again.status.code(), Some(1), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains(changed),
        "{}",
        text(&again.stderr)
    );
    // Resumed once more: still against the plan it started with.
    std::fs::write(&users, "user_id,plan\nu1,pro\n").unwrap();
    let resumed = userlens(&["run", "p.toml", "--resume", &run_id], dir.path());
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert!(
        text(&resumed.stderr).contains(changed),
        "{}",
        text(&resumed.stderr)
    );
}

#[test]
fn a_resume_says_when_a_finished_stage_was_made_by_other_code() {
    let dir = sandbox();
    fail_at_features(dir.path());
    std::fs::write(dir.path().join("nope.csv"), "user_id,plan\nu1,pro\n").unwrap();
    let run_id = newest_run(dir.path());
    // As another version of userlens would have keyed the ingest it finished.
    let ledger = rusqlite::Connection::open(dir.path().join("runs/ledger.sqlite")).unwrap();
    let changed = ledger
        .execute(
            "UPDATE stages SET cache_key = 'other code' WHERE run_id = ?1 AND stage = 'ingest'",
            [&run_id],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(ledger);
    let resumed = userlens(&["run", "p.toml", "--resume", &run_id], dir.path());
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert!(
        text(&resumed.stderr)
            .contains("stage `ingest` finished before the run stopped, with other code or inputs"),
        "{}",
        text(&resumed.stderr)
    );
}

#[test]
fn a_stage_or_run_that_is_not_there_is_refused_before_anything_is_written() {
    let dir = sandbox();
    for (args, says) in [
        (&["--only", "nope"][..], "`--only nope`: no stage `nope`"),
        (&["--resume", "nosuch"][..], "no run `nosuch` in the ledger"),
        (
            &["--only", "features", "--until", "ingest"][..],
            "cannot be used with",
        ),
    ] {
        let run = userlens(
            &[&["run", "p.toml", "--runs", "fresh"][..], args].concat(),
            dir.path(),
        );
        exits_saying(&run, 2, says);
        assert!(!dir.path().join("fresh").exists(), "{args:?}");
    }
}

#[test]
fn no_polars_threads_is_a_usage_error_not_a_panic() {
    let dir = sandbox();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_userlens"))
        .args(["run", "p.toml", "-q"])
        .current_dir(dir.path())
        .env("POLARS_MAX_THREADS", "0")
        .output()
        .unwrap();
    exits_saying(&out, 2, "POLARS_MAX_THREADS=0");
    assert!(!dir.path().join("out").exists());
}

#[test]
fn runs_of_a_missing_folder_say_there_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let out = userlens(&["runs", "list", "--runs", "nosuch"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no runs folder `nosuch`"),
        "{}",
        text(&out.stderr)
    );
}

/// The pipeline with a profile stage `personas` of three personas, then `more`.
fn with_personas(more: &str) -> String {
    format!(
        "{PIPELINE}
[stages.personas]
uses = \"profile\"
needs = [\"features\"]
with = {{ k = 3 }}
{more}"
    )
}

/// Runs the pipeline file `file`, which must succeed, and reads its `run.json`.
fn run_record(dir: &std::path::Path, file: &str) -> serde_json::Value {
    let out = userlens(&["run", file, "-q"], dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&std::fs::read(dir.join("out/run.json")).unwrap()).unwrap()
}

#[test]
fn two_report_stages_make_one_page_and_list_it_once() {
    let dir = sandbox();
    let pipeline = with_personas(
        "
[stages.report]
uses = \"report\"
needs = [\"features\", \"personas\"]

[stages.report2]
uses = \"report\"
needs = [\"features\", \"personas\"]
",
    );
    std::fs::write(dir.path().join("two.toml"), pipeline).unwrap();
    let record = run_record(dir.path(), "two.toml");
    let pages = record["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o.as_str() == Some("report.html"))
        .count();
    assert_eq!(pages, 1, "{}", record["outputs"]);
}

#[test]
fn a_setting_the_data_shows_wrong_is_a_usage_error_and_not_retried() {
    let dir = sandbox();
    let pipeline = format!(
        "{PIPELINE}with = {{ families = [\"rfm\"] }}\n\n[stages.personas]\nuses = \"profile\"\n\
         needs = [\"features\"]\nretries = 2\nretry_delay = \"1s\"\n\
         with = {{ k = 3, exclude = [\"recency_days\", \"frequency\", \"monetary\", \
         \"avg_order_value\", \"tenure_days\", \"refund_count\"] }}\n"
    );
    std::fs::write(dir.path().join("p.toml"), pipeline).unwrap();
    let out = userlens(&["run", "p.toml"], dir.path());
    exits_saying(&out, 2, "stage `personas`: `exclude` leaves no feature");
    assert!(
        !text(&out.stderr).contains("attempt 2"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_first_stage_of_a_kind_describes_the_run_its_files_come_from() {
    let dir = sandbox();
    let pipeline = with_personas(
        "
[stages.fine]
uses = \"profile\"
needs = [\"features\"]
with = { k = 4 }

[stages.report]
uses = \"report\"
needs = [\"features\", \"personas\"]
",
    );
    std::fs::write(dir.path().join("two.toml"), pipeline).unwrap();
    let record = run_record(dir.path(), "two.toml");
    let personas = std::fs::read_to_string(dir.path().join("out/personas.csv")).unwrap();
    assert_eq!(personas.lines().count() - 1, 3);
    assert_eq!(record["personas"]["k"], 3, "{}", record["personas"]["k"]);
}

#[test]
fn an_input_file_that_is_not_there_is_warned_of_before_any_stage() {
    let dir = sandbox();
    let pipeline = format!(
        "{PIPELINE}
[stages.loyalty]
uses = \"loyalty\"
needs = [\"ingest\", \"features\"]
with = {{ survey = \"nosurvey.csv\" }}
"
    );
    std::fs::write(dir.path().join("p.toml"), pipeline).unwrap();
    let says = "stage `loyalty` reads `nosurvey.csv`, which is not there";
    let dry = userlens(&["run", "p.toml", "--dry-run"], dir.path());
    exits_saying(&dry, 0, says);
    let run = userlens(&["run", "p.toml"], dir.path());
    let stderr = text(&run.stderr);
    let warned = stderr.find(says).expect(&stderr);
    assert!(warned < stderr.find("[1/3]").expect(&stderr), "{stderr}");
}
