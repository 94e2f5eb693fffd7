//! Honest evaluation: nothing known only after the cutoff reaches the models.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{read_csv, text, userlens};

/// The best holdout AUC of the machine-learning models for `p_purchase`.
fn ml_auc(out: &Path) -> f64 {
    read_csv(&out.join("model_report.csv"))
        .iter()
        .filter(|r| {
            r["target"] == "p_purchase"
                && r["population"] == "all"
                && ["logistic", "tree"].contains(&r["predictor"].as_str())
        })
        .filter_map(|r| r["auc"].parse::<f64>().ok())
        .fold(f64::NAN, f64::max)
}

/// A users table whose `lifetime_orders` counts every purchase in the file, those
/// of the prediction horizon included: the leak a nightly-updated CRM column makes.
fn leaky_users(dir: &Path) {
    let mut orders: BTreeMap<String, u64> = BTreeMap::new();
    for row in read_csv(&dir.join("events.csv")) {
        let count = orders.entry(row["user_id"].clone()).or_default();
        if row["event_type"] == "purchase" {
            *count += 1;
        }
    }
    let mut csv = String::from("user_id,lifetime_orders\n");
    for (user, n) in orders {
        csv.push_str(&format!("{user},{n}\n"));
    }
    std::fs::write(dir.join("users.csv"), csv).unwrap();
}

#[test]
fn a_users_column_built_from_the_future_does_not_reach_the_models() {
    let dir = tempfile::tempdir().unwrap();
    common::generate(dir.path(), 1500, 7);
    leaky_users(dir.path());
    let run = |out: &str, extra: &[&str]| {
        let mut args = vec!["profile", "events.csv", "--out", out, "-q"];
        args.extend_from_slice(extra);
        let done = userlens(&args, dir.path());
        assert!(done.status.success(), "{out}: {}", text(&done.stderr));
        dir.path().join(out)
    };
    let plain = ml_auc(&run("plain", &[]));
    let guarded = run("guarded", &["--users", "users.csv"]);
    let leaked = ml_auc(&run(
        "leaked",
        &[
            "--users",
            "users.csv",
            "--set",
            "features.static_columns=[\"lifetime_orders\"]",
        ],
    ));
    assert!(plain.is_finite(), "the models were scored");
    assert!(
        (ml_auc(&guarded) - plain).abs() < 0.02,
        "the guarded AUC {} moved from {plain}",
        ml_auc(&guarded)
    );
    // The canary is sensitive: declared static (wrongly), the column does leak.
    assert!(leaked > plain + 0.03, "leaked {leaked} against {plain}");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(guarded.join("run.json")).unwrap()).unwrap();
    let notes = record["notes"].to_string();
    assert!(notes.contains("lifetime_orders"), "{notes}");
    let page = std::fs::read_to_string(guarded.join("report.html")).unwrap();
    assert!(
        page.contains("not declared in <code>static_columns</code>"),
        "the report says so too"
    );
}

#[test]
fn a_static_column_the_users_table_lacks_is_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    common::generate(dir.path(), 60, 3);
    leaky_users(dir.path());
    let args = [
        "profile",
        "events.csv",
        "--users",
        "users.csv",
        "--set",
        "features.static_columns=[\"lifetime_order\"]",
    ];
    let done = userlens(&args, dir.path());
    // The table or the pipeline file is at fault: retrying changes nothing.
    assert_eq!(done.status.code(), Some(3), "{}", text(&done.stderr));
    let said = text(&done.stderr);
    assert!(
        said.contains("`users.csv`: `static_columns` names `lifetime_order`")
            && said.contains("did you mean `lifetime_orders`?"),
        "{said}"
    );
}

#[test]
fn a_versioned_users_table_joins_each_users_row_of_the_as_of_date() {
    let dir = tempfile::tempdir().unwrap();
    common::generate(dir.path(), 60, 3);
    std::fs::write(
        dir.path().join("users.csv"),
        "user_id,country,as_of\n\
         u000001,UK,2026-01-01\n\
         u000001,FR,2026-03-01\n\
         u000002,DE,2099-01-01\n\
         u000003,ES,2026-01-01\n\
         ,IT,2026-01-01\n\
         zz9,PT,2026-01-01\n\
         u000005,NO,\n",
    )
    .unwrap();
    let args = [
        "profile",
        "events.csv",
        "--out",
        "out",
        "-q",
        "--users",
        "users.csv",
        "--set",
        "report.features_csv=true",
    ];
    let done = userlens(&args, dir.path());
    assert!(done.status.success(), "{}", text(&done.stderr));
    let country: BTreeMap<String, String> = read_csv(&dir.path().join("out/features.csv"))
        .into_iter()
        .map(|r| (r["user_id"].clone(), r["user_country"].clone()))
        .collect();
    // The latest row by the as-of date; a row from after it is not yet known.
    assert_eq!(country["u000001"], "FR");
    assert_eq!(country["u000002"], "");
    assert_eq!(country["u000003"], "ES");
    // Rows no user takes are said to be left out.
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/run.json")).unwrap()).unwrap();
    // Read by features and by predict, the table is one input.
    let inputs: Vec<&str> = (record["inputs"].as_array().unwrap().iter())
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    assert_eq!(inputs, ["events.csv", "users.csv"]);
    let notes = record["notes"].to_string();
    assert!(
        notes.contains("1 row of `users.csv` without a `user_id` left out"),
        "{notes}"
    );
    assert!(
        notes.contains("1 row of `users.csv` without a version time"),
        "{notes}"
    );
    assert!(
        notes.contains("1 user of `users.csv` without an event before the as-of date"),
        "{notes}"
    );
    // A users table refused (exit 3), with what the refusal says.
    let refused_saying = |table: &str, says: &str| {
        std::fs::write(dir.path().join("users.csv"), table).unwrap();
        let refused = userlens(&args, dir.path());
        let said = text(&refused.stderr);
        assert_eq!(refused.status.code(), Some(3), "{said}");
        assert!(said.contains(says), "{said}");
        said
    };
    // Two rows of one user at one time that differ: the file's order would pick.
    refused_saying(
        "user_id,country,as_of\n\
         u000001,UK,2026-01-01\n\
         u000003,ES,2026-01-01\n\
         u000001,FR,2026-01-01\n",
        "user `u000001` has two rows as of 2026-01-01 (data rows 1 and 3) that differ",
    );
    // A user id with a terminal escape in it is shown, not run.
    let said = refused_saying(
        "user_id,country,as_of\n\
         u\u{1b}]0;x\u{7},UK,2026-01-01\n\
         u\u{1b}]0;x\u{7},FR,2026-01-01\n",
        "user `u\\u{001B}]0;x\\u{0007}` has two rows",
    );
    assert!(!said.contains('\u{1b}'), "{said}");
    // A version column in a layout that is no date with its year first: refused, not
    // quietly a snapshot.
    refused_saying(
        "user_id,country,updated_at\nu000001,UK,05/01/2026\nu000001,FR,06/01/2026\n",
        "the column `updated_at` says when each row holds, but its data row 1 holds `05/01/2026`",
    );
    // Two columns that would be one feature: refused, both named.
    refused_saying(
        "user_id,Plan,plan\nu000001,free,pro\n",
        "the columns `Plan` and `plan` would both be the feature `user_plan`",
    );
    // A folder is no table: refused. One not there yet may be on its way: failed,
    // so that `retries` waits for it (tests/nightly.rs).
    std::fs::remove_file(dir.path().join("users.csv")).unwrap();
    std::fs::create_dir(dir.path().join("folder.csv")).unwrap();
    for (users, code) in [("folder.csv", 3), ("users.csv", 1)] {
        let out = userlens(&[&args[..6], &[users]].concat(), dir.path());
        assert_eq!(
            out.status.code(),
            Some(code),
            "{users}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn what_the_horizon_did_to_other_columns_does_not_reach_the_holdout_scores() {
    let dir = tempfile::tempdir().unwrap();
    common::generate(dir.path(), 1500, 7);
    let run = |out: &str| {
        let done = userlens(&["profile", "events.csv", "--out", out, "-q"], dir.path());
        assert!(done.status.success(), "{out}: {}", text(&done.stderr));
        dir.path().join(out)
    };
    let before = run("before");
    let models: serde_json::Value =
        serde_json::from_slice(&std::fs::read(before.join("models.json")).unwrap()).unwrap();
    let cutoff = models["cutoff"].as_str().unwrap().to_string();
    // Every categorised event of the horizon moves to a category of its own: no
    // target reads categories, but the most common ones at the as-of date change.
    let events = std::fs::read_to_string(dir.path().join("events.csv")).unwrap();
    let mut lines = events.lines();
    let header = lines.next().unwrap();
    let columns: Vec<&str> = header.split(',').collect();
    let (time, category) = (
        columns.iter().position(|c| *c == "event_time").unwrap(),
        columns.iter().position(|c| *c == "category").unwrap(),
    );
    let mut moved = 0;
    let mut rewritten = format!("{header}\n");
    for line in lines {
        let mut fields: Vec<&str> = line.split(',').collect();
        if fields[time][..10] >= cutoff[..] && !fields[category].is_empty() {
            fields[category] = "futurecat";
            moved += 1;
        }
        rewritten.push_str(&fields.join(","));
        rewritten.push('\n');
    }
    assert!(moved > 1000, "{moved} events moved");
    std::fs::write(dir.path().join("events.csv"), rewritten).unwrap();
    let after = run("after");
    for file in ["model_report.csv", "calibration.csv", "lift.csv"] {
        assert!(
            std::fs::read(before.join(file)).unwrap() == std::fs::read(after.join(file)).unwrap(),
            "{file} changed"
        );
    }
}

#[test]
fn an_as_of_date_after_the_last_event_says_how_much_of_the_horizon_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    common::generate(dir.path(), 300, 3);
    let events = read_csv(&dir.path().join("events.csv"));
    let last = (events.iter())
        .map(|r| r["event_time"][..10].to_string())
        .max()
        .unwrap();
    let last: chrono::NaiveDate = last.parse().unwrap();
    for (after, said) in [
        (
            11,
            "the last 10 of the 28 days of the horizon before it hold no events",
        ),
        (41, "the horizon before it holds no events"),
    ] {
        let as_of = (last + chrono::Days::new(after)).to_string();
        let out = format!("out{after}");
        let done = userlens(
            &[
                "profile",
                "events.csv",
                "--out",
                &out,
                "--as-of",
                &as_of,
                "-q",
            ],
            dir.path(),
        );
        assert!(done.status.success(), "{}", text(&done.stderr));
        let record = std::fs::read_to_string(dir.path().join(&out).join("run.json")).unwrap();
        assert!(record.contains(said), "{as_of}: {record}");
    }
}
