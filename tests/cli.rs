//! Integration tests: the real `userlens` binary on real files in a temp dir.

mod common;

use std::collections::BTreeMap;

use common::{generate, read_csv, repo, text, userlens};

#[test]
fn recovers_the_generating_personas() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 800, 7);
    let out = userlens(
        &["profile", "events.csv", "--out", "report", "--runs", "runs"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("800 users in 5 personas"), "{stdout}");

    let truth: BTreeMap<String, String> = read_csv(&dir.path().join("truth.csv"))
        .into_iter()
        .map(|r| (r["user_id"].clone(), r["persona"].clone()))
        .collect();
    let assigned = read_csv(&dir.path().join("report/user_personas.csv"));
    assert_eq!(assigned.len(), truth.len());
    let mut names: Vec<&String> = truth.values().collect();
    names.sort();
    names.dedup();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for row in &assigned {
        let persona = &truth[&row["user_id"]];
        a.push(names.iter().position(|n| *n == persona).unwrap() as u32);
        b.push(row["persona_id"].parse::<u32>().unwrap());
    }
    let ari = userlens_profile::adjusted_rand_index(&a, &b);
    assert!(ari >= 0.9, "adjusted Rand index {ari:.3} is below 0.9");

    let personas = read_csv(&dir.path().join("report/personas.csv"));
    assert_eq!(personas.len(), 5);
    let users: u64 = personas
        .iter()
        .map(|p| p["users"].parse::<u64>().unwrap())
        .sum();
    assert_eq!(users, 800);
    let mut labels: Vec<&String> = personas.iter().map(|p| &p["label"]).collect();
    labels.sort();
    labels.dedup();
    assert_eq!(labels.len(), 5, "labels are unique");
    for column in [
        "persona_id",
        "label",
        "users",
        "share",
        "mean_monetary",
        "top_categories",
        "distinguishing",
    ] {
        assert!(
            personas[0].contains_key(column),
            "personas.csv lacks {column}"
        );
    }
}

#[test]
fn same_seed_gives_byte_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 300, 11);
    // Runs folders of their own: the second run reuses nothing of the first.
    for name in ["a", "b"] {
        let runs = format!("runs-{name}");
        let args = [
            "profile",
            "events.csv",
            "--out",
            name,
            "--runs",
            &runs,
            "--as-of",
            "2026-05-01",
        ];
        let out = userlens(&args, dir.path());
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            !text(&out.stderr).contains("unchanged and skipped"),
            "{}",
            text(&out.stderr)
        );
    }
    let mut compared = 0;
    for entry in std::fs::read_dir(dir.path().join("a")).unwrap() {
        let name = entry.unwrap().file_name();
        // The run's record, its page and the list of files it wrote name the run
        // (its id and times).
        if name == "run.json" || name == "report.html" || name == ".userlens" {
            continue;
        }
        let a = std::fs::read(dir.path().join("a").join(&name)).unwrap();
        let b = std::fs::read(dir.path().join("b").join(&name)).unwrap();
        assert!(
            a == b,
            "{name:?} differs between two runs with the same seed"
        );
        compared += 1;
    }
    assert!(compared >= 20, "only {compared} outputs compared");
}

#[test]
fn users_no_prediction_covers_are_counted_in_a_note() {
    // An as-of date two weeks into the log: nobody without a purchase was seen before
    // the cutoff, so no rate stands in for the models of non-buyers.
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 300, 3);
    let args = [
        "profile",
        "events.csv",
        "--out",
        "out",
        "--runs",
        "runs",
        "--as-of",
        "2026-01-15",
    ];
    let out = userlens(&args, dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = read_csv(&dir.path().join("out/user_predictions.csv"));
    let blank = rows
        .iter()
        .filter(|r| r["p_alive"].is_empty() || r["expected_purchases"].is_empty())
        .count();
    assert!(blank > 0);
    let run = std::fs::read_to_string(dir.path().join("out/run.json")).unwrap();
    let note = format!("{blank} of {} users have no `p_alive`", rows.len());
    assert!(run.contains(&note), "{note}\n{run}");
}

#[test]
fn malformed_rows_are_quarantined_with_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let events = repo().join("tests/data/malformed.csv");
    let events = events.to_str().unwrap();
    let out = userlens(
        &[
            "profile",
            events,
            "--out",
            "report",
            "--runs",
            "runs",
            "--set",
            "ingest.max_quarantine_share=0.2",
            "--set",
            "personas.k=2",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let quarantine = read_csv(&dir.path().join("report/quarantine.csv"));
    let got: Vec<(String, String, String)> = quarantine
        .iter()
        .map(|r| (r["line"].clone(), r["column"].clone(), r["reason"].clone()))
        .collect();
    let want = [
        (
            "22",
            "event_time",
            "`event_time` \"2026-02-30 10:00:00\" is not a date or date-time",
        ),
        ("23", "user_id", "missing `user_id`"),
        ("24", "amount", "`amount` \"12a\" is not a finite number"),
        ("25", "", "expected 9 fields, found 6"),
        ("26", "user_id", "invalid UTF-8 in `user_id`"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(l, c, r)| (l.to_string(), c.to_string(), r.to_string()))
        .collect();
    assert_eq!(got, want);
    assert!(quarantine.iter().all(|r| r["file"] == events));

    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report/run.json")).unwrap())
            .unwrap();
    let rows = &run["rows"];
    assert_eq!(rows["read"], 45);
    assert_eq!(rows["quarantined"], 5);
    let kept = rows["kept"].as_u64().unwrap();
    let duplicates = rows["duplicates"].as_u64().unwrap();
    assert_eq!(
        kept + duplicates + 5,
        45,
        "read = kept + quarantined + duplicates"
    );
}

#[test]
fn too_much_quarantine_refuses_the_run_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let events = repo().join("tests/data/malformed.csv");
    let out = userlens(
        &[
            "profile",
            events.to_str().unwrap(),
            "--out",
            "report",
            "--runs",
            "runs",
            "-q",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("error: stage `ingest` refused the input: 5 of 45 rows (11.1%) of the input were quarantined, more than the allowed 5.0%; most for `user_id` (2 rows), such as line 23 of `{}`: missing `user_id`; see quarantine.csv", events.display())),
        "{stderr}"
    );
    // Where the refused run's files are is part of the error, which `-q` keeps.
    assert!(
        stderr.contains(
            "see quarantine.csv; the refused run's quarantine and record are in `report.refused`\n"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.matches("the refused run's").count(), 1, "{stderr}");
    assert!(
        !dir.path().join("report").exists(),
        "no report of a refused run"
    );
    assert_eq!(
        read_csv(&dir.path().join("report.refused/quarantine.csv")).len(),
        5
    );
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.refused/run.json")).unwrap())
            .unwrap();
    assert_eq!(run["status"], "refused");
}

#[test]
fn pipeline_file_mistakes_exit_2_with_file_line_and_hint() {
    let dir = repo().join("tests/data/bad_pipelines");
    let cases = [
        (
            "typo_kind.toml",
            "typo_kind.toml:5:8: stage `ingest` uses `ingset`, which is not a stage kind\n  hint: did you mean `ingest`?",
        ),
        (
            "unknown_key.toml",
            "unknown_key.toml:6:31: stage `ingest`: unknown field `max_quarantine`",
        ),
        (
            "cycle.toml",
            "cycle.toml:6:8: the stages form a cycle: a -> b -> a",
        ),
        ("bad_toml.toml", "bad_toml.toml:3:"),
    ];
    for (file, expected) in cases {
        let out = userlens(&["validate", file], &dir);
        assert_eq!(out.status.code(), Some(2), "{file}: {}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with(&format!("error: {expected}")),
            "{file}: {stderr}"
        );
    }
    let out = userlens(&["validate", "no_such.toml"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("error: failed to read the pipeline file `no_such.toml`")
    );
}

#[test]
fn a_date_not_written_yyyy_mm_dd_exits_2_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = userlens(
        &[
            "run",
            "pipelines/profile.toml",
            "--as-of",
            "26-06-01",
            "--out",
            out_dir.to_str().unwrap(),
            "--runs",
            dir.path().join("runs").to_str().unwrap(),
        ],
        &repo(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`26-06-01` is not a date of the form YYYY-MM-DD"),
        "{}",
        text(&out.stderr)
    );
    assert!(!out_dir.exists() && !dir.path().join("runs").exists());
}

#[test]
fn a_path_that_is_not_utf8_exits_2_and_writes_nothing() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    // Pipelines hold paths as text: `d\xff` would be written as `d\u{FFFD}`.
    let out_dir = dir.path().join(std::ffi::OsStr::from_bytes(b"d\xff"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_userlens"))
        .arg("profile")
        .arg(repo().join("sample_data/events.csv.gz"))
        .arg("--out")
        .arg(&out_dir)
        .arg("--runs")
        .arg(dir.path().join("runs"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("invalid UTF-8"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn set_on_a_missing_stage_or_key_exits_2() {
    let out = userlens(
        &["validate", "pipelines/profile.toml", "--set", "persona.k=4"],
        &repo(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no stage `persona` (did you mean `personas`?)"));
    let out = userlens(
        &[
            "validate",
            "pipelines/profile.toml",
            "--set",
            "personas.kk=4",
        ],
        &repo(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown field `kk`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_mixture_that_does_not_converge_is_refused_with_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let events = repo().join("sample_data/events.csv.gz");
    let out = userlens(
        &[
            "profile",
            events.to_str().unwrap(),
            "--out",
            "report",
            "--runs",
            "runs",
            "--until",
            "personas",
            "--set",
            "personas.algorithm=\"gmm\"",
            "--set",
            "personas.max_iter=1",
        ],
        dir.path(),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("stage `personas` refused the input: gaussian mixture")
            && stderr.contains("`algorithm = \"kmeans\"`"),
        "{stderr}"
    );
}

#[test]
fn validate_lists_the_plan() {
    let out = userlens(&["validate", "pipelines/profile.toml"], &repo());
    assert!(out.status.success(), "{}", text(&out.stderr));
    insta::assert_snapshot!(text(&out.stdout));
}

#[test]
fn help_shows_examples_and_exit_codes() {
    let out = userlens(&["--help"], &repo());
    assert!(out.status.success());
    insta::assert_snapshot!(text(&out.stdout));
}

#[test]
fn logs_to_a_file_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 30, 5);
    let args = [
        "-vv",
        "profile",
        "events.csv",
        "--out",
        "r",
        "--runs",
        "runs",
    ];
    let out = userlens(&args, dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let logged = text(&out.stderr);
    assert!(logged.contains("DEBUG"), "{logged}");
    assert!(!logged.contains('\u{1b}'), "{logged}");
}

#[test]
fn missing_events_file_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = userlens(
        &["profile", "nope.csv", "--out", "r", "--runs", "runs"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(
            "error: stage `ingest` refused the input: failed to read `nope.csv`: no such file"
        ),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn machine_learning_beats_rules_and_bgnbd_on_the_holdout() {
    // The committed sample: 1,800 users of known personas whose behaviour after the
    // cutoff follows their behaviour before it.
    let dir = tempfile::tempdir().unwrap();
    let events = repo().join("sample_data/events.csv.gz");
    // Its holdout holds 59 churners: scored, and so applied, from 50.
    let out = userlens(
        &[
            "profile",
            events.to_str().unwrap(),
            "--out",
            "report",
            "--runs",
            "runs",
            "-q",
            "--set",
            "predict.ml.min_positives=50",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = read_csv(&dir.path().join("report/model_report.csv"));
    // Compared within one population: every held-out user, or the held-out
    // customers, on whom BG/NBD is scored.
    let auc_of = |predictor: &str, population: &str| -> f64 {
        let row = report
            .iter()
            .find(|r| {
                r["predictor"] == predictor
                    && r["target"] == "p_purchase"
                    && r["population"] == population
            })
            .unwrap_or_else(|| panic!("no {predictor} row of {population}"));
        assert_eq!(row["status"], "scored", "{predictor}: {}", row["reason"]);
        row["auc"].parse().unwrap()
    };
    let auc = |predictor: &str| auc_of(predictor, "all");
    let ml = auc("logistic").max(auc("tree"));
    let ml_on_customers = auc_of("logistic", "customers").max(auc_of("tree", "customers"));
    let rules: Vec<&str> = report
        .iter()
        .filter(|r| r["predictor"].starts_with("rule:") && r["target"] == "p_purchase")
        .map(|r| r["predictor"].as_str())
        .collect();
    assert!(!rules.is_empty(), "no rule predicts p_purchase");
    let rule = rules
        .iter()
        .map(|r| auc(r))
        .fold(f64::NEG_INFINITY, f64::max);
    let statistical = auc_of("bg/nbd", "customers");
    eprintln!("p_purchase holdout AUC: ML {ml:.3}, best rule {rule:.3}, BG/NBD {statistical:.3}");
    // Measured on the committed sample: logistic 0.874, tree 0.866, rule 0.749; on
    // the customers logistic 0.877, BG/NBD 0.856 (seeds 7 and 99 of the same generator gave ML 0.888 and 0.887).
    // Bounded above too: a model that saw the holdout (or its future) scores near 1.
    assert!(ml > 0.85 && ml < 0.95, "ML AUC {ml:.3}");
    assert!(
        ml > rule && ml_on_customers > statistical,
        "ML {ml:.3} ({ml_on_customers:.3} on customers), rule {rule:.3}, BG/NBD {statistical:.3}"
    );
    let predictions = read_csv(&dir.path().join("report/user_predictions.csv"));
    assert_eq!(predictions.len(), 1800);
    for column in [
        "user_id",
        "p_alive",
        "expected_purchases",
        "p_purchase",
        "predicted_revenue",
        "churn_risk",
    ] {
        assert!(
            predictions[0].contains_key(column),
            "user_predictions.csv lacks {column}"
        );
    }
    let values = |column: &str| -> Vec<f64> {
        predictions
            .iter()
            .map(|r| r[column].parse::<f64>().unwrap_or(f64::NAN))
            .collect()
    };
    for column in ["p_alive", "p_purchase"] {
        let v = values(column);
        assert!(
            v.iter().all(|p| (0.0..=1.0).contains(p)),
            "{column} outside [0, 1]"
        );
    }
    // Churn risk for the users active in the last 7 days, and only for them.
    let features = read_csv(&dir.path().join("report/user_personas.csv"));
    let recency: BTreeMap<&str, f64> = features
        .iter()
        .map(|r| {
            (
                r["user_id"].as_str(),
                r["recency_days"].parse::<f64>().unwrap(),
            )
        })
        .collect();
    let mut active = 0;
    for row in &predictions {
        let risk = row["churn_risk"].parse::<f64>().ok();
        let in_window = recency[row["user_id"].as_str()] <= 7.0;
        assert_eq!(risk.is_some(), in_window, "{row:?}");
        assert!(risk.is_none_or(|p| (0.0..=1.0).contains(&p)), "{row:?}");
        active += usize::from(in_window);
    }
    assert!(active > 0, "no user active in the last 7 days");
    for column in ["expected_purchases", "predicted_revenue"] {
        assert!(
            values(column).iter().all(|x| x.is_finite() && *x >= 0.0),
            "{column} negative or missing"
        );
    }
    // Users are told apart, not given one value each.
    let mut p = values("p_purchase");
    p.sort_by(f64::total_cmp);
    p.dedup();
    assert!(p.len() > 500, "only {} distinct p_purchase values", p.len());
}

#[test]
fn the_cdnow_pipeline_reproduces_the_published_models() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let runs = dir.path().join("runs");
    let out = userlens(
        &[
            "run",
            "pipelines/cdnow.toml",
            "--as-of",
            "1997-10-01",
            "--out",
            out_dir.to_str().unwrap(),
            "--runs",
            runs.to_str().unwrap(),
            "-q",
        ],
        &repo(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let models: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("models.json")).unwrap()).unwrap();
    let close = |model: &str, name: &str, published: f64| {
        let value = models["fits"][model]["params"][name].as_f64().unwrap();
        assert!(
            ((value - published) / published).abs() < 0.001,
            "{model} {name} = {value}, published {published}"
        );
    };
    close("bg/nbd", "r", 0.242595);
    close("bg/nbd", "alpha", 4.413603);
    close("bg/nbd", "a", 0.792922);
    close("bg/nbd", "b", 2.425906);
    close("gamma-gamma", "p", 6.2496);
    close("gamma-gamma", "q", 3.7442);
    close("gamma-gamma", "gamma", 15.4435);
    let ll = |model: &str| models["fits"][model]["log_likelihood"].as_f64().unwrap();
    assert!((ll("bg/nbd") + 9582.4292).abs() < 0.01);
    assert!((ll("pareto/nbd") + 9594.976).abs() < 0.05);
    let expected: f64 = read_csv(&out_dir.join("user_predictions.csv"))
        .iter()
        .map(|r| r["expected_purchases"].parse::<f64>().unwrap())
        .sum();
    assert!(
        (expected - 1653.0).abs() / 1653.0 < 0.01,
        "holdout expectation {expected}"
    );
}

#[test]
fn generate_writes_only_new_files_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mine.csv"), "years of work").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let long = format!("{}.csv", "e".repeat(240));
    // A file of the name an older version wrote through is no temporary of ours.
    std::fs::write(dir.path().join("e.csv.tmp"), "notes").unwrap();
    for (args, says) in [
        (
            &["--out", "mine.csv"][..],
            "`mine.csv` exists; generate writes only new files",
        ),
        (
            &["--out", "e.csv", "--truth", "mine.csv"][..],
            "`mine.csv` exists",
        ),
        (
            &["--out", "e.csv", "--survey", "e.csv"][..],
            "`e.csv` is given for two files",
        ),
        (
            &["--out", "e.csv", "--survey", "sub/../e.csv"][..],
            "`sub/../e.csv` is given for two files",
        ),
        (&["--out", "sub", "--force"][..], "`sub` is a folder"),
        (&["--out", "new/"][..], "`new/` is a folder"),
        (&["--out", "new/."][..], "`new/.` is a folder"),
        (&["--out", &long][..], "has a name of more than 230 bytes"),
        (&["--out", "e.parquet"][..], "generate writes CSV text"),
        (&["--out", "e.txt"][..], "generate writes CSV text"),
    ] {
        let out = userlens(
            &[&["generate", "--users", "20"][..], args].concat(),
            dir.path(),
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mine.csv")).unwrap(),
        "years of work"
    );
    assert!(!dir.path().join("e.csv").exists());
    // Events out of range are refused, never capped to what fits.
    for events in ["0", "1000000000000"] {
        let args = ["generate", "--events", events, "--out", "big.csv"];
        let out = userlens(&args, dir.path());
        assert_eq!(
            out.status.code(),
            Some(2),
            "{events}: {}",
            text(&out.stderr)
        );
        assert!(!dir.path().join("big.csv").exists(), "{events}");
    }
    let made = userlens(&["generate", "--users", "20", "--out", "e.csv"], dir.path());
    assert!(made.status.success(), "{}", text(&made.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("e.csv.tmp")).unwrap(),
        "notes"
    );
    let forced = userlens(
        &["generate", "--users", "20", "--out", "mine.csv", "--force"],
        dir.path(),
    );
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert!(
        std::fs::read_to_string(dir.path().join("mine.csv"))
            .unwrap()
            .starts_with("user_id,")
    );
}

#[cfg(unix)]
#[test]
fn generate_stopped_leaves_no_file_and_never_replaces_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_userlens"))
        .args(["generate", "--users", "50000", "--out", "big.csv"])
        .args(["--truth", "truth.csv", "--survey", "survey.csv"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Once it writes, before it is done: stopped then, it leaves nothing behind.
    let writing = || {
        (std::fs::read_dir(dir.path()).unwrap())
            .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".tmp"))
    };
    while !writing() && child.try_wait().unwrap().is_none() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(writing(), "generate ended before it wrote");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(child.wait().unwrap().code(), Some(143));
    let left: Vec<_> = (std::fs::read_dir(dir.path()).unwrap())
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // A pipe (or a device, such as /dev/null) is not a file to replace.
    let fifo = std::process::Command::new("mkfifo")
        .arg(dir.path().join("pipe.csv"))
        .status()
        .unwrap();
    assert!(fifo.success());
    let out = userlens(
        &["generate", "--users", "3", "--out", "pipe.csv", "--force"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("is not a regular file"));
    let kind = std::fs::symlink_metadata(dir.path().join("pipe.csv")).unwrap();
    assert!(!kind.is_file());
}

#[test]
fn a_reader_that_leaves_early_is_no_failure() {
    // `userlens generate ... | head -1`: stdout is a pipe whose reader is gone.
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_userlens"))
        .args(["generate", "--users", "20", "--out", "events.csv"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(dir.path().join("events.csv").is_file());
}

#[test]
fn json_logs_report_ingest_progress_with_throughput_and_eta() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 300, 4);
    let out = userlens(
        &[
            "profile",
            "events.csv",
            "--out",
            "report",
            "--runs",
            "runs",
            "--log-format",
            "json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let size = std::fs::metadata(dir.path().join("events.csv"))
        .unwrap()
        .len();
    let events: Vec<serde_json::Value> = text(&out.stderr)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let progress: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "stage_progress")
        .collect();
    let last = progress.last().expect("a stage_progress event");
    assert_eq!(last["index"], 0);
    assert_eq!(last["unit"], "bytes");
    assert_eq!(last["done"], size);
    assert_eq!(last["total"], size);
    assert!(last["per_second"].as_f64().unwrap() > 0.0, "{last}");
    assert!(last["eta_seconds"].as_f64().is_some(), "{last}");
    // progress comes between the stage's start and its end
    let position = |kind: &str| events.iter().position(|e| e["event"] == kind).unwrap();
    let first_progress = events
        .iter()
        .position(|e| e["event"] == "stage_progress")
        .unwrap();
    assert!(position("stage_started") < first_progress);
    assert!(first_progress < position("stage_finished"));
}

#[test]
fn an_out_of_core_run_writes_the_same_reports_as_an_in_memory_run() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 300, 5);
    let run = |out_dir: &str, extra: &[&str]| {
        let mut args = vec![
            "run",
            "pipelines/profile.toml",
            "--set",
            "ingest.path=events.csv",
            "--out",
            out_dir,
            "--runs",
            "runs",
            "--as-of",
            "2026-05-01",
        ];
        args.extend_from_slice(extra);
        let out = userlens(&args, dir.path());
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
    std::fs::copy(
        repo().join("pipelines/profile.toml"),
        dir.path().join("pipelines/profile.toml"),
    )
    .unwrap();
    // The pipeline's loyalty stage reads the sample survey.
    std::fs::create_dir_all(dir.path().join("sample_data")).unwrap();
    std::fs::copy(
        repo().join("sample_data/survey.csv"),
        dir.path().join("sample_data/survey.csv"),
    )
    .unwrap();
    run("memory", &[]);
    // Out of core above 0 MB: every source goes to Parquet parts of whole users.
    run("disk", &["--set", "ingest.out_of_core_above_mb=0"]);
    let runs = dir.path().join("runs");
    let parts: Vec<_> = walk(&runs)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("events.parts/part-"))
        .collect();
    assert!(parts.len() >= 2, "{parts:?}");
    let mut compared = 0;
    for entry in std::fs::read_dir(dir.path().join("memory")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            let name = path.file_name().unwrap();
            let disk = std::fs::read(dir.path().join("disk").join(name)).unwrap();
            assert!(std::fs::read(&path).unwrap() == disk, "{name:?} differs");
            compared += 1;
        }
    }
    assert!(compared >= 8, "{compared} CSV files compared");
    // A run with other features reuses the ingest's parts and reads them back: the
    // same reports as an in-memory run with those features.
    let other = ["--set", "features.top_categories=5"];
    run(
        "reused",
        &[&other[..], &["--set", "ingest.out_of_core_above_mb=0"]].concat(),
    );
    let record = std::fs::read_to_string(dir.path().join("reused/run.json")).unwrap();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["stages"][0]["status"], "skipped", "{record}");
    run("memory5", &other);
    for name in ["features.csv", "user_predictions.csv", "personas.csv"] {
        let read = |out: &str| std::fs::read(dir.path().join(out).join(name)).ok();
        assert!(read("reused").is_some() || name == "features.csv");
        assert!(read("reused") == read("memory5"), "{name} differs");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn a_full_or_closed_stderr_loses_the_messages_not_the_run() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return; // no /dev/full on this system
    };
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 120, 3);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_userlens"))
        .args(["profile", "events.csv", "--out", "report", "--runs", "runs"])
        .current_dir(dir.path())
        .stderr(full)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert!(dir.path().join("report/personas.csv").is_file());
}

#[test]
fn profiling_another_file_is_not_compared_with_the_first() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 200, 3);
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    generate(&other, 150, 4);
    std::fs::rename(other.join("events.csv"), dir.path().join("shop.csv")).unwrap();
    for (file, out) in [("events.csv", "a"), ("shop.csv", "b"), ("events.csv", "c")] {
        let run = userlens(
            &["profile", file, "--out", out, "--runs", "runs"],
            dir.path(),
        );
        assert!(run.status.success(), "{}", text(&run.stderr));
    }
    let record = |out: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.path().join(out).join("run.json")).unwrap())
            .unwrap()
    };
    assert_eq!(record("b")["pipeline"], "profile-shop");
    assert!(record("b")["stability"].is_null() && record("b")["drift"].is_null());
    assert!(!dir.path().join("b/migration.csv").exists());
    // The same file again is compared with its own last run.
    assert_eq!(record("c")["pipeline"], "profile-events");
}

#[test]
fn runs_list_lines_its_columns_up_whatever_the_names() {
    let dir = tempfile::tempdir().unwrap();
    common::generate(dir.path(), 30, 5);
    let done = userlens(
        &["profile", "events.csv", "-q", "--until", "ingest"],
        dir.path(),
    );
    assert!(done.status.success(), "{}", text(&done.stderr));
    let list = userlens(&["runs", "list"], dir.path());
    let listing = text(&list.stdout);
    let mut lines = listing.lines();
    let status_at = lines.next().unwrap().find("status").unwrap();
    let run = lines.next().unwrap();
    // `profile-events` is longer than the header `pipeline`.
    assert!(run.contains("profile-events "), "{listing}");
    assert!(run[status_at..].starts_with("ok "), "{listing}");
}

#[test]
fn runs_list_says_what_is_wrong_with_a_runs_folder() {
    let dir = tempfile::tempdir().unwrap();
    let list = |runs: &str| userlens(&["runs", "list", "--runs", runs], dir.path());
    // Missing, or a ledger made but never written (empty, or with no tables yet, as
    // a first run killed early leaves it): nothing recorded.
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    std::fs::write(dir.path().join("empty/ledger.sqlite"), "").unwrap();
    std::fs::create_dir(dir.path().join("bare")).unwrap();
    let bare = rusqlite::Connection::open(dir.path().join("bare/ledger.sqlite")).unwrap();
    bare.pragma_update(None, "journal_mode", "WAL").unwrap();
    drop(bare);
    for runs in ["missing", "empty", "bare"] {
        let out = list(runs);
        assert!(out.status.success(), "{runs}: {}", text(&out.stderr));
    }
    std::fs::write(dir.path().join("file"), "x").unwrap();
    std::fs::create_dir_all(dir.path().join("odd/ledger.sqlite")).unwrap();
    for (runs, says) in [("file", "is not a runs folder"), ("odd", "is not a ledger")] {
        let out = list(runs);
        assert_eq!(out.status.code(), Some(2), "{runs}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(says),
            "{runs}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn validate_refuses_an_output_a_run_needs_out_for() {
    let dir = tempfile::tempdir().unwrap();
    common::generate(dir.path(), 30, 5);
    std::fs::write(
        dir.path().join("p.toml"),
        "[pipeline]\nname = \"p\"\noutput = \"/\"\n\n[stages.ingest]\nuses = \"ingest\"\nwith = { path = \"events.csv\" }\n",
    )
    .unwrap();
    let checked = userlens(&["validate", "p.toml"], dir.path());
    assert_eq!(checked.status.code(), Some(2), "{}", text(&checked.stderr));
    assert!(
        text(&checked.stderr).contains("p.toml:3:1: `output` \"/\" is not a folder of its own"),
        "{}",
        text(&checked.stderr)
    );
    // A run refused so writes nothing: no runs folder, ledger or lock.
    let refused = userlens(&["run", "p.toml", "-q"], dir.path());
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(!dir.path().join("runs").exists());
    // A run given a folder of its own does not use the file's.
    let ran = userlens(&["run", "p.toml", "--out", "out/p", "-q"], dir.path());
    assert!(ran.status.success(), "{}", text(&ran.stderr));
}

#[test]
fn the_readmes_pipeline_files_validate_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
        .collect();
    assert!(!blocks.is_empty(), "README.md shows a pipeline file");
    let dir = tempfile::tempdir().unwrap();
    for (i, block) in blocks.iter().enumerate() {
        let path = dir.path().join(format!("readme_{i}.toml"));
        std::fs::write(&path, block).unwrap();
        let out = userlens(&["validate", path.to_str().unwrap()], dir.path());
        assert!(out.status.success(), "block {i}: {}", text(&out.stderr));
    }
}

#[test]
fn an_auto_k_range_the_users_cut_is_said_in_the_notes() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 5, 7);
    let out = userlens(
        &[
            "profile",
            "events.csv",
            "--out",
            "out",
            "-q",
            "--set",
            "personas.k_min=3",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/run.json")).unwrap()).unwrap();
    let notes = record["notes"].to_string();
    assert!(
        notes.contains("`k = \\\"auto\\\"` tried k = 3 to 4, not 3 to 8: 5 users"),
        "{notes}"
    );
}

#[test]
fn one_user_is_one_user_in_one_persona() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("one.csv"),
        "user_id,event_time,event_type,amount\nu1,2026-03-01 10:00:00,view,\n\
         u1,2026-03-02 10:00:00,purchase,12.5\n",
    )
    .unwrap();
    let out = userlens(
        &["profile", "one.csv", "--out", "report", "--runs", "runs"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(": 1 user in 1 persona,"), "{stdout}");
    let record = std::fs::read_to_string(dir.path().join("report/run.json")).unwrap();
    for said in [
        "1 user with its feature row makes no more personas",
        "1 of 1 users has no `p_alive`",
    ] {
        assert!(record.contains(said), "{said}: {record}");
    }
    let page = std::fs::read_to_string(dir.path().join("report/report.html")).unwrap();
    assert!(
        page.contains("each of 1 persona; the largest is")
            && page.contains("<strong>1</strong> user in <strong>1</strong> persona ")
            && page.contains("<strong>1</strong> user · "),
        "headline"
    );
}
