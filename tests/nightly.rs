//! Nightly batch runs: lock, resume after kill -9, skip-unchanged, backfill, stable
//! persona ids and gates, on the real binary.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::night::*;
use common::{read_csv, text, userlens};

const OUTPUTS: [&str; 4] = [
    "personas.csv",
    "user_personas.csv",
    "k_selection.csv",
    "quarantine.csv",
];

#[test]
fn kill_9_mid_stage_then_resume_gives_the_same_outputs() {
    // Reference: an uninterrupted pair of nights.
    let reference = sandbox(1500);
    nights(reference.path(), &["2026-05-01", "2026-05-15"]);

    let dir = sandbox(1500);
    let first = run(dir.path(), &["--as-of", "2026-05-01"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let before: Vec<Vec<u8>> = OUTPUTS
        .iter()
        .map(|f| std::fs::read(dir.path().join("out/2026-05-01").join(f)).unwrap())
        .collect();

    // The second night is killed as soon as its personas stage starts. (The ingest's
    // events are written in the background at idle priority, and the ingest is
    // recorded as done, and reusable, only once they are: by then, or not yet.)
    let mut child = Command::new(env!("CARGO_BIN_EXE_userlens"))
        .args(["run", "night.toml", "--as-of", "2026-05-15"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut run_id = None;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("running night (") {
            run_id = Some(rest.trim_end_matches(')').to_string());
        }
        if line.contains("personas (profile)") {
            child.kill().unwrap(); // SIGKILL
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run was killed");
    let run_id = run_id.expect("the run printed its id");
    assert!(
        !dir.path().join("out/2026-05-15").exists(),
        "a killed run publishes nothing"
    );
    for (file, bytes) in OUTPUTS.iter().zip(&before) {
        let now = std::fs::read(dir.path().join("out/2026-05-01").join(file)).unwrap();
        assert!(&now == bytes, "{file} of the previous night changed");
    }

    // What the ledger holds as finished is what the resumed run reuses.
    let shown = userlens(&["runs", "show", &run_id], dir.path());
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    let shown = text(&shown.stdout);
    let finished = |stage: &str| {
        shown.lines().any(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words.get(1) == Some(&stage) && words.get(2) == Some(&"ok")
        })
    };
    assert!(
        finished("features"),
        "features finished before the kill:\n{shown}"
    );
    assert!(!finished("personas"), "personas was killed:\n{shown}");

    let resumed = run(dir.path(), &["--resume", &run_id]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    let record = run_json(&dir.path().join("out/2026-05-15/run.json"));
    assert_eq!(record["run_id"], run_id.as_str());
    // Reused from this run, and recorded as it ran before the kill.
    let reused = |i: usize| record["stages"][i]["reused_from"] == run_id.as_str();
    assert_eq!(reused(0), finished("ingest"));
    assert!(reused(1), "features is reused");
    assert!(!reused(2), "personas ran again");
    assert_eq!(stage_fields(&record, "status")[..3], ["ok"; 3]);
    assert!(record["stages"][1]["attempts"] == 1, "{record}");
    for file in OUTPUTS.iter().chain(&["migration.csv"]) {
        let a = std::fs::read(reference.path().join("out/2026-05-15").join(file)).unwrap();
        let b = std::fs::read(dir.path().join("out/2026-05-15").join(file)).unwrap();
        assert!(a == b, "{file} differs from the uninterrupted run");
    }
}

#[test]
fn a_run_killed_after_it_published_resumes_and_leaves_no_old_folder() {
    let dir = sandbox(200);
    let out = run(dir.path(), &["--as-of", "2026-05-01", "-q"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let record = run_json(&dir.path().join("out/2026-05-01/run.json"));
    let run_id = record["run_id"].as_str().unwrap().to_string();
    let published = std::fs::read(dir.path().join("out/2026-05-01/personas.csv")).unwrap();
    // As a kill after the folder swap leaves it: still running in the ledger (by a
    // process that is gone), the replaced report beside the new one.
    let ledger = rusqlite::Connection::open(dir.path().join("runs/ledger.sqlite")).unwrap();
    let gone = i64::from(u32::MAX);
    ledger
        .execute(
            "UPDATE runs SET status = 'running', finished_at = NULL, pid = ?1 WHERE run_id = ?2",
            rusqlite::params![gone, run_id],
        )
        .unwrap();
    drop(ledger);
    let old = dir
        .path()
        .join(format!("out/.2026-05-01.old-{run_id}-p{gone}"));
    std::fs::create_dir(&old).unwrap();
    let shown = userlens(&["runs", "list"], dir.path());
    assert!(
        text(&shown.stdout).contains("interrupted"),
        "{}",
        text(&shown.stdout)
    );
    let resumed = run(dir.path(), &["--resume", &run_id, "-q"]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert!(!old.exists(), "the replaced report's folder is gone");
    assert_eq!(
        std::fs::read(dir.path().join("out/2026-05-01/personas.csv")).unwrap(),
        published
    );
    let shown = userlens(&["runs", "show", &run_id], dir.path());
    assert!(
        text(&shown.stdout).contains(" ok"),
        "{}",
        text(&shown.stdout)
    );
    // A run recorded as finished has nothing to resume.
    let again = run(dir.path(), &["--resume", &run_id, "-q"]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again.stderr));
}

#[test]
fn a_second_concurrent_run_exits_4_and_writes_nothing() {
    let dir = sandbox(200);
    std::fs::create_dir_all(dir.path().join("runs")).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.path().join("runs/night.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let out = run(dir.path(), &["--as-of", "2026-05-01"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("error: another run of `night` holds the lock"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.path().join("out").exists());
    assert!(!dir.path().join("runs/night").exists());
    drop(lock);
}

#[test]
fn a_stale_lock_is_taken_over() {
    let dir = sandbox(200);
    std::fs::create_dir_all(dir.path().join("runs")).unwrap();
    std::fs::write(
        dir.path().join("runs/night.lock"),
        "pid=999999 started=earlier",
    )
    .unwrap();
    let out = run(dir.path(), &["--as-of", "2026-05-01"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("took over the lock of `night` left by process 999999"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn rerunning_unchanged_skips_every_stage_and_force_reruns() {
    let dir = sandbox(300);
    // A dry run before any run writes nothing, not even the ledger.
    let dry = userlens(
        &["run", "night.toml", "--as-of", "2026-05-01", "--dry-run"],
        dir.path(),
    );
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert!(
        text(&dry.stdout).contains("1. ingest (ingest): run"),
        "{}",
        text(&dry.stdout)
    );
    assert!(!dir.path().join("runs").exists());
    let statuses = |extra: &[&str]| statuses_on_may_1(dir.path(), extra);
    assert_eq!(statuses(&[]), ["ok"; 4]);
    let first = std::fs::read(dir.path().join("out/2026-05-01/personas.csv")).unwrap();
    assert_eq!(statuses(&[]), ["skipped"; 4]);
    assert_eq!(
        std::fs::read(dir.path().join("out/2026-05-01/personas.csv")).unwrap(),
        first,
        "outputs restored from the artifacts"
    );
    assert_eq!(statuses(&["--force"]), ["ok"; 4]);
    let dry = userlens(
        &["run", "night.toml", "--as-of", "2026-05-01", "--dry-run"],
        dir.path(),
    );
    assert!(text(&dry.stdout).contains("1. ingest (ingest): skip (unchanged since run"));
    // For a scheduler: one JSON line.
    let json = userlens(
        &[
            "run",
            "night.toml",
            "--as-of",
            "2026-05-01",
            "--dry-run",
            "--log-format",
            "json",
        ],
        dir.path(),
    );
    let plan: serde_json::Value = serde_json::from_str(text(&json.stdout).trim()).unwrap();
    assert_eq!(plan["pipeline"], "night");
    assert_eq!(plan["stages"].as_array().unwrap().len(), 4);
    assert!(plan["stages"][0]["reuse"].is_string(), "{plan}");
}

#[test]
fn once_a_stage_runs_the_stages_after_it_run_too() {
    let dir = sandbox(300);
    // `more` comes after `personas` in the file but does not need it: README says it
    // runs once `personas` does, and the dry run plans so.
    let pipeline = format!(
        "{PIPELINE}\n[stages.more]\nuses = \"profile\"\nneeds = [\"features\"]\nwith = {{ k = 3 }}\n"
    );
    std::fs::write(dir.path().join("night.toml"), pipeline).unwrap();
    let statuses = |extra: &[&str]| statuses_on_may_1(dir.path(), extra);
    assert_eq!(statuses(&[]), ["ok"; 5]);
    let set = ["--set", "personas.k=4"];
    let dry = userlens(
        &[
            "run",
            "night.toml",
            "--as-of",
            "2026-05-01",
            "--dry-run",
            set[0],
            set[1],
        ],
        dir.path(),
    );
    let plan = text(&dry.stdout);
    assert!(plan.contains("2. features (features): skip"), "{plan}");
    assert!(plan.contains("5. more (profile): run"), "{plan}");
    assert_eq!(statuses(&set), ["skipped", "skipped", "ok", "ok", "ok"]);
}

#[test]
fn only_runs_one_stage_on_cached_artifacts_and_publishes_nothing() {
    let dir = sandbox(300);
    let out = run(dir.path(), &["--as-of", "2026-05-01"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let published = dir.path().join("out/2026-05-01");
    let before = std::fs::read(published.join("run.json")).unwrap();

    let only = run(dir.path(), &["--as-of", "2026-05-01", "--only", "personas"]);
    assert!(only.status.success(), "{}", text(&only.stderr));
    let stdout = text(&only.stdout);
    assert!(stdout.contains("ran only `personas`"), "{stdout}");
    let run_dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("run folder: "))
        .expect("run folder printed");
    let record = run_json(&dir.path().join(run_dir).join("run.json"));
    assert_eq!(record["status"], "partial");
    let stages: Vec<(&str, &str)> = record["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        stages,
        [
            ("ingest", "skipped"),
            ("features", "skipped"),
            ("personas", "ok")
        ]
    );
    assert_eq!(
        std::fs::read(published.join("run.json")).unwrap(),
        before,
        "a partial run publishes nothing"
    );
    // The next full run still compares against the last complete run, and skips
    // everything: the rerun stage wrote the same artifacts under the same key.
    let again = run(dir.path(), &["--as-of", "2026-05-01"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let record = run_json(&published.join("run.json"));
    assert_eq!(stage_fields(&record, "status"), ["skipped"; 4]);

    usage_error(
        dir.path(),
        &["--only", "persona"],
        "no stage `persona` (did you mean `personas`?)",
    );
}

#[test]
fn until_runs_a_stage_and_its_needs_and_publishes_them() {
    let dir = sandbox(300);
    let dry = run(
        dir.path(),
        &["--as-of", "2026-05-01", "--until", "personas", "--dry-run"],
    );
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let plan = text(&dry.stdout);
    assert!(plan.contains("3. personas (profile): run"), "{plan}");
    assert!(!plan.contains("report"), "{plan}");

    // Before any personas, the summary counts users alone.
    for (until, said) in [
        ("features", " users, as of 2026-05-01"),
        ("personas", " users in 5 personas"),
    ] {
        let out = run(dir.path(), &["--as-of", "2026-05-01", "--until", until]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let summary = text(&out.stdout);
        assert!(summary.contains(said), "{summary}");
    }
    let published = dir.path().join("out/2026-05-01");
    let record = run_json(&published.join("run.json"));
    assert_eq!(record["status"], "ok");
    assert_eq!(
        stage_fields(&record, "name"),
        ["ingest", "features", "personas"]
    );
    // The ingest's quarantine is published; the report, which writes the persona
    // files, did not run.
    assert!(published.join("quarantine.csv").is_file());
    for file in ["report.html", "personas.csv"] {
        assert!(!published.join(file).exists(), "{file}");
    }

    // The whole pipeline afterwards reuses the three stages and runs the report.
    let whole = run(dir.path(), &["--as-of", "2026-05-01"]);
    assert!(whole.status.success(), "{}", text(&whole.stderr));
    let record = run_json(&published.join("run.json"));
    assert_eq!(
        stage_fields(&record, "status"),
        ["skipped", "skipped", "skipped", "ok"]
    );

    usage_error(
        dir.path(),
        &["--until", "reports"],
        "no stage `reports` (did you mean `report`?)",
    );
}

#[test]
fn backfill_replaces_an_edited_output_only_with_force_output() {
    let dir = sandbox(200);
    let day = "2026-05-01";
    assert!(backfill(dir.path(), day, day, &["-q"]).status.success());
    let personas = dir.path().join("out").join(day).join("personas.csv");
    let published = std::fs::read_to_string(&personas).unwrap();
    std::fs::write(&personas, published.replacen(',', ";", 1)).unwrap();
    let out = backfill(dir.path(), day, day, &["-q"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("pass `--force-output`"),
        "{}",
        text(&out.stderr)
    );
    let out = backfill(dir.path(), day, day, &["-q", "--force-output"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&personas).unwrap(), published);
}

#[test]
fn a_three_day_backfill_records_three_runs() {
    let dir = sandbox(200);
    // A night run only up to its features is not done: the backfill runs it whole.
    let partial = run(
        dir.path(),
        &["--as-of", "2026-05-02", "--until", "features"],
    );
    assert!(partial.status.success(), "{}", text(&partial.stderr));
    let out = backfill(dir.path(), "2026-05-01", "2026-05-03", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = userlens(&["runs", "list", "--pipeline", "night"], dir.path());
    let listing = text(&list.stdout);
    let runs: Vec<&str> = listing.lines().skip(1).collect();
    assert_eq!(runs.len(), 4, "{listing}");
    for date in ["2026-05-01", "2026-05-02", "2026-05-03"] {
        assert!(
            runs.iter().any(|r| r.contains(date) && r.contains(" ok ")),
            "{listing}"
        );
        assert!(
            dir.path()
                .join("out")
                .join(date)
                .join("personas.csv")
                .is_file()
        );
    }
    let again = backfill(dir.path(), "2026-05-01", "2026-05-03", &[]);
    assert_eq!(text(&again.stdout).matches("done already").count(), 3);
    // A night whose folder lost a file is not done: it is published again.
    let lost = dir.path().join("out/2026-05-02/personas.csv");
    let before = std::fs::read(&lost).unwrap();
    std::fs::remove_file(&lost).unwrap();
    let repaired = backfill(dir.path(), "2026-05-01", "2026-05-03", &[]);
    assert!(repaired.status.success(), "{}", text(&repaired.stderr));
    assert_eq!(text(&repaired.stdout).matches("done already").count(), 2);
    assert_eq!(std::fs::read(&lost).unwrap(), before);
    // Its page too, which `report` may render again, but not take away.
    let page = dir.path().join("out/2026-05-02/report.html");
    std::fs::remove_file(&page).unwrap();
    let again = backfill(dir.path(), "2026-05-02", "2026-05-02", &[]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(!text(&again.stdout).contains("done already"));
    assert!(page.is_file());
    // As if the third night's run were killed between its publish and its last
    // ledger write: its folder says it ended ok, so it is done; resumed, it reuses
    // every stage and publishes the same again.
    let ledger = rusqlite::Connection::open(dir.path().join("runs/ledger.sqlite")).unwrap();
    let third: String = ledger
        .query_row(
            "SELECT run_id FROM runs WHERE as_of = '2026-05-03' AND status = 'ok'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    ledger
        .execute(
            "UPDATE runs SET status = 'running', finished_at = NULL, pid = 2147483647 \
             WHERE run_id = ?1",
            [&third],
        )
        .unwrap();
    drop(ledger);
    let killed = backfill(dir.path(), "2026-05-03", "2026-05-03", &[]);
    assert!(killed.status.success(), "{}", text(&killed.stderr));
    assert!(
        text(&killed.stdout).contains("done already"),
        "{}",
        text(&killed.stdout)
    );
    let resume = run(dir.path(), &["--dry-run", "--resume", &third]);
    assert!(resume.status.success(), "{}", text(&resume.stderr));
    assert_eq!(
        text(&resume.stdout)
            .matches(": skip (unchanged since run")
            .count(),
        4,
        "{}",
        text(&resume.stdout)
    );
    // Done where it was published: to another folder, or with other parameters, the
    // dates run again.
    let elsewhere = backfill(
        dir.path(),
        "2026-05-01",
        "2026-05-02",
        &["--out", "elsewhere/{as_of}"],
    );
    assert!(elsewhere.status.success(), "{}", text(&elsewhere.stderr));
    assert!(!text(&elsewhere.stdout).contains("done already"));
    assert!(
        dir.path()
            .join("elsewhere/2026-05-02/personas.csv")
            .is_file()
    );
    let changed = backfill(
        dir.path(),
        "2026-05-03",
        "2026-05-03",
        &["--set", "personas.k=4"],
    );
    assert!(changed.status.success(), "{}", text(&changed.stderr));
    assert!(!text(&changed.stdout).contains("done already"));
}

#[test]
fn two_nights_on_overlapping_data_keep_persona_ids() {
    let dir = sandbox(800);
    nights(dir.path(), &["2026-05-01", "2026-05-15"]);
    let first = read_csv(&dir.path().join("out/2026-05-01/user_personas.csv"));
    let second = read_csv(&dir.path().join("out/2026-05-15/user_personas.csv"));
    let before: std::collections::BTreeMap<&str, &str> = first
        .iter()
        .map(|r| (r["user_id"].as_str(), r["persona_id"].as_str()))
        .collect();
    let common: Vec<_> = second
        .iter()
        .filter_map(|r| {
            before
                .get(r["user_id"].as_str())
                .map(|b| (*b, r["persona_id"].as_str()))
        })
        .collect();
    let same = common.iter().filter(|(a, b)| a == b).count();
    assert!(
        same as f64 >= 0.9 * common.len() as f64,
        "only {same} of {} users kept their persona id",
        common.len()
    );
    let migration = read_csv(&dir.path().join("out/2026-05-15/migration.csv"));
    let moved: u64 = migration
        .iter()
        .map(|r| r["users"].parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        moved,
        common.len() as u64,
        "the migration table covers every common user"
    );
    // Each side of a row is named: the first night's label, then the second's.
    let first_labels: std::collections::BTreeMap<&str, &str> = first
        .iter()
        .map(|r| (r["persona_id"].as_str(), r["label"].as_str()))
        .collect();
    for row in &migration {
        assert_eq!(
            Some(&row["from_label"].as_str()),
            first_labels.get(row["from_persona"].as_str()),
            "{row:?}"
        );
        assert!(!row["to_label"].is_empty(), "{row:?}");
    }
    let record = run_json(&dir.path().join("out/2026-05-15/run.json"));
    assert!(record["stability"]["adjusted_rand_index"].as_f64().unwrap() > 0.8);
    assert!(
        record["drift"]["features"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
    );
}

#[test]
fn a_night_backfilled_before_the_others_takes_their_ids_and_gives_none_twice() {
    let dir = sandbox(400);
    nights(dir.path(), &["2026-05-15", "2026-05-01"]);
    let members = |date: &str| -> std::collections::BTreeMap<String, String> {
        read_csv(&dir.path().join(format!("out/{date}/user_personas.csv")))
            .into_iter()
            .map(|r| (r["user_id"].clone(), r["persona_id"].clone()))
            .collect()
    };
    let (later, earlier) = (members("2026-05-15"), members("2026-05-01"));
    let highest: u32 = later.values().map(|id| id.parse().unwrap()).max().unwrap();
    let earlier_ids: std::collections::BTreeSet<&String> = earlier.values().collect();
    let mut taken_back = 0;
    for id in earlier_ids {
        let users: Vec<&String> = (earlier.iter())
            .filter(|(_, p)| *p == id)
            .map(|(u, _)| u)
            .collect();
        if id.parse::<u32>().unwrap() > highest {
            continue; // a persona no later run had
        }
        // An id the later night gave names mostly the same users here.
        let same = users.iter().filter(|u| later.get(**u) == Some(id)).count();
        assert!(
            2 * same > users.len(),
            "persona {id}: {same} of {} users",
            users.len()
        );
        taken_back += 1;
    }
    assert!(taken_back >= 3, "{taken_back} ids taken back");
    // The record says which ids it took back, against no run.
    let stability = &run_json(&dir.path().join("out/2026-05-01/run.json"))["stability"];
    assert!(stability["against_run"].is_null(), "{stability}");
    let revived = stability["revived_personas"].as_array().unwrap();
    assert_eq!(revived.len(), taken_back, "{stability}");
}

#[test]
fn personas_back_after_a_night_with_fewer_take_their_ids_back() {
    let dir = sandbox(400);
    for (date, k) in [
        ("2026-05-01", "5"),
        ("2026-05-08", "3"),
        ("2026-05-15", "5"),
    ] {
        let k = format!("personas.k={k}");
        let out = run(dir.path(), &["--as-of", date, "--set", &k]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let stability = |date: &str| {
        run_json(&dir.path().join(format!("out/{date}/run.json")))["stability"].clone()
    };
    let ids = |value: &serde_json::Value| -> Vec<u64> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };
    let dip = stability("2026-05-08");
    let retired = ids(&dip["retired_personas"]);
    let back = stability("2026-05-15");
    // The three personas the night of k = 3 merged away are back, by their ids.
    let mut revived = ids(&back["revived_personas"]);
    revived.sort_unstable();
    assert_eq!(
        (revived, retired.len()),
        (retired.clone(), 3),
        "{dip} {back}"
    );
    assert!(ids(&back["new_personas"]).is_empty(), "{back}");
}

#[test]
fn a_forced_rerun_of_a_night_gives_its_personas_the_ids_it_gave() {
    let dir = sandbox(400);
    let night = |date: &str, k: &str, force: bool| {
        let k = format!("personas.k={k}");
        let mut args = vec!["--as-of", date, "--set", &k];
        if force {
            args.push("--force");
        }
        let out = run(dir.path(), &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        std::fs::read(dir.path().join(format!("out/{date}/user_personas.csv"))).unwrap()
    };
    // The first night, then one with fewer personas, which retires some ids.
    let first = night("2026-05-01", "5", false);
    night("2026-05-15", "3", false);
    assert!(
        first == night("2026-05-01", "5", true),
        "the first night's ids changed"
    );
    let dip = night("2026-05-15", "3", false);
    assert!(
        dip == night("2026-05-15", "3", true),
        "the second night's ids changed"
    );
}

#[test]
fn a_night_reusing_a_partial_runs_personas_shares_no_new_id() {
    let dir = sandbox(400);
    let night = |args: &[&str]| {
        let out = run(dir.path(), args);
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    night(&["--as-of", "2026-05-01"]);
    night(&["--as-of", "2026-05-15"]);
    // A run of one stage, which publishes nothing: its ids are published later,
    // when a run of that night reuses its personas.
    let seven = ["--as-of", "2026-05-15", "--set", "personas.k=7"];
    night(&[&seven[..], &["--only", "personas"]].concat());
    night(&["--as-of", "2026-06-01", "--set", "personas.k=7"]);
    night(&seven);
    let record = run_json(&dir.path().join("out/2026-05-15/run.json"));
    assert_eq!(
        stage_fields(&record, "status")[2],
        "skipped",
        "personas reused"
    );
    let ids = |date: &str| -> std::collections::BTreeSet<u64> {
        read_csv(&dir.path().join(format!("out/{date}/personas.csv")))
            .iter()
            .map(|r| r["persona_id"].parse().unwrap())
            .collect()
    };
    let record = run_json(&dir.path().join("out/2026-06-01/run.json"));
    let new: Vec<u64> = record["stability"]["new_personas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let others = ids("2026-05-01")
        .union(&ids("2026-05-15"))
        .copied()
        .max()
        .unwrap();
    assert!(
        new.iter().all(|&id| id > others),
        "new ids {new:?} of 06-01, ids up to {others} given by the other nights"
    );
}

#[test]
fn a_night_after_a_run_whose_persona_model_was_cut_short_says_so_and_runs() {
    let dir = sandbox(300);
    let first = run(dir.path(), &["--as-of", "2026-05-01", "-q"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    // The first night's stored model loses a persona id, as an edit or a cut
    // write might leave it.
    let runs = dir.path().join("runs/night");
    let night = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("personas/meta.json").is_file())
        .unwrap();
    let meta_path = night.join("personas/meta.json");
    let mut meta = run_json(&meta_path);
    meta["personas"]["persona_ids"]
        .as_array_mut()
        .unwrap()
        .pop();
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    let second = run(dir.path(), &["--as-of", "2026-05-15", "-q"]);
    assert!(second.status.success(), "{}", text(&second.stderr));
    let record = run_json(&dir.path().join("out/2026-05-15/run.json"));
    let notes = record["notes"].to_string();
    assert!(
        notes.contains("is not usable (5 centroids but 4 persona ids"),
        "{notes}"
    );
    assert!(
        record.get("stability").is_none_or(|s| s.is_null()),
        "{record}"
    );
}

#[test]
fn a_night_after_a_run_folder_was_removed_says_its_ids_may_be_given_again() {
    let dir = sandbox(300);
    for date in ["2026-05-01", "2026-05-08"] {
        let out = run(dir.path(), &["--as-of", date, "-q"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let runs = dir.path().join("runs/night");
    for entry in std::fs::read_dir(&runs).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("2026-05-08")
        {
            std::fs::remove_dir_all(path).unwrap();
        }
    }
    let out = run(dir.path(), &["--as-of", "2026-05-15", "-q"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let notes = run_json(&dir.path().join("out/2026-05-15/run.json"))["notes"].to_string();
    assert!(
        notes.contains("the persona records of 1 other run are gone, unreadable or unusable"),
        "{notes}"
    );
}

#[test]
fn a_rerun_of_a_night_compares_with_the_night_before_as_its_first_run_did() {
    let dir = sandbox(300);
    // A run that stopped early between the nights has no personas to keep ids from.
    for (date, until) in [
        ("2026-05-01", None),
        ("2026-05-08", Some("features")),
        ("2026-05-15", None),
    ] {
        let mut args = vec!["--as-of", date];
        args.extend(until.map(|stage| ["--until", stage]).into_iter().flatten());
        let out = run(dir.path(), &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let night = dir.path().join("out/2026-05-15");
    let record = run_json(&night.join("run.json"));
    let against = record["stability"]["against_run"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(against.starts_with("2026-05-01_"), "{against}");
    let first: Vec<Vec<u8>> = ["migration.csv", "drift.csv", "user_personas.csv"]
        .iter()
        .map(|f| std::fs::read(night.join(f)).unwrap())
        .collect();
    let again = run(dir.path(), &["--as-of", "2026-05-15", "--force"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    for (file, before) in ["migration.csv", "drift.csv", "user_personas.csv"]
        .iter()
        .zip(&first)
    {
        assert!(
            std::fs::read(night.join(file)).unwrap() == *before,
            "{file} changed"
        );
    }
    let record = run_json(&night.join("run.json"));
    assert_eq!(
        record["stability"]["against_run"].as_str(),
        Some(against.as_str())
    );
    // The first night, rerun once later nights exist, still has none before it.
    let first_night = dir.path().join("out/2026-05-01");
    let personas = std::fs::read(first_night.join("user_personas.csv")).unwrap();
    let again = run(dir.path(), &["--as-of", "2026-05-01", "--force"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(std::fs::read(first_night.join("user_personas.csv")).unwrap() == personas);
    assert!(!first_night.join("migration.csv").exists());
    let record = run_json(&first_night.join("run.json"));
    assert!(
        record["stability"]["against_run"].is_null(),
        "{}",
        record["stability"]
    );
}

#[test]
fn a_users_attribute_logged_one_night_only_is_named_when_ids_are_matched() {
    let dir = sandbox(300);
    features_with(dir.path(), "with = { users = \"users.csv\" }");
    let users = |balance: &dyn Fn(usize) -> f64| {
        let mut table = String::from("user_id,balance\n");
        for i in 1..=300 {
            table.push_str(&format!("u{i:06},{}\n", balance(i)));
        }
        std::fs::write(dir.path().join("users.csv"), table).unwrap();
    };
    let logged = |date: &str| {
        let record = run_json(&dir.path().join(format!("out/{date}/run.json")));
        let list = record["personas"]["log_transformed"].to_string();
        (list.contains("user_balance"), record["notes"].to_string())
    };
    // A few balances far above the rest, then none.
    users(&|i| {
        if i % 50 == 0 {
            250_000.0
        } else {
            100.0 + i as f64
        }
    });
    let out = run(dir.path(), &["--as-of", "2026-05-01"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(logged("2026-05-01").0);
    users(&|i| 100.0 + i as f64);
    let out = run(dir.path(), &["--as-of", "2026-05-08"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (on_log, notes) = logged("2026-05-08");
    assert!(!on_log);
    assert!(
        notes.contains("user_balance on a log scale in this run or in run 2026-05-01_")
            && notes.contains("persona ids were matched without it"),
        "{notes}"
    );
}

#[test]
fn a_failed_stage_is_retried_with_backoff() {
    let dir = sandbox(200);
    features_with(
        dir.path(),
        "retries = 2\nretry_delay = \"1s\"\nwith = { users = \"users.csv\" }",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_userlens"))
        .args(["run", "night.toml", "--as-of", "2026-05-01"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut saw_retry = false;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.contains("features failed") && line.contains("attempt 2 in 1.0s") {
            // The users table the stage needs arrives while it waits.
            std::fs::write(dir.path().join("users.csv"), "user_id,plan\nu000001,pro\n").unwrap();
            saw_retry = true;
        }
    }
    assert!(child.wait().unwrap().success());
    assert!(saw_retry, "the failure was reported with its retry");
    let record = run_json(&dir.path().join("out/2026-05-01/run.json"));
    assert_eq!(record["stages"][1]["attempts"], 2);
    assert_eq!(record["stages"][1]["status"], "ok");
    // Keyed by the table the retry read, not by its absence when the run began: a
    // rerun without the table does not reuse what was made with it.
    std::fs::remove_file(dir.path().join("users.csv")).unwrap();
    let again = run(dir.path(), &["--as-of", "2026-05-01"]);
    assert!(!again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains("users.csv"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn a_night_whose_last_run_lost_its_folder_says_so_and_compares_with_an_older_one() {
    let dir = sandbox(300);
    // The last night ran twice: its rerun reused every artifact of the first run.
    nights(dir.path(), &["2026-05-01", "2026-05-08", "2026-05-08"]);
    // A clean-up removed the first run's folder, which holds the rerun's artifacts.
    let runs = dir.path().join("runs/night");
    let mut nights: Vec<_> = (std::fs::read_dir(&runs).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("2026-05-08_")
        })
        .collect();
    nights.sort();
    assert_eq!(nights.len(), 2, "{nights:?}");
    std::fs::remove_dir_all(&nights[0]).unwrap();
    let out = run(dir.path(), &["--as-of", "2026-05-15"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(
        said.contains("the record or artifacts of the last good runs are gone (2026-05-08_"),
        "{said}"
    );
    assert!(said.contains("compares itself with 2026-05-01_"), "{said}");
    let record = run_json(&dir.path().join("out/2026-05-15/run.json"));
    let against = record["stability"]["against_run"].as_str().unwrap_or("");
    assert!(
        against.starts_with("2026-05-01_"),
        "{}",
        record["stability"]
    );
}

#[test]
fn a_night_whose_last_run_lost_a_table_or_its_record_compares_with_an_older_one() {
    let dir = sandbox(300);
    nights(dir.path(), &["2026-05-01", "2026-05-08"]);
    let folder = |date: &str| {
        let runs = dir.path().join("runs/night");
        (std::fs::read_dir(&runs).unwrap())
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(date))
            .unwrap()
    };
    // The night before's features went to save space; its folder stays.
    std::fs::remove_file(folder("2026-05-08_").join("features/features.parquet")).unwrap();
    let out = run(dir.path(), &["--as-of", "2026-05-15"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(
        said.contains("the record or artifacts of the last good run are gone (2026-05-08_"),
        "{said}"
    );
    let record = run_json(&dir.path().join("out/2026-05-15/run.json"));
    let against = record["drift"]["against_run"].as_str().unwrap_or("");
    assert!(against.starts_with("2026-05-01_"), "{}", record["drift"]);
    // A run without its record has no row counts for the volume gates.
    std::fs::remove_file(folder("2026-05-15_").join("run.json")).unwrap();
    let out = run(dir.path(), &["--as-of", "2026-05-22"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let record = run_json(&dir.path().join("out/2026-05-22/run.json"));
    let against = record["drift"]["against_run"].as_str().unwrap_or("");
    assert!(against.starts_with("2026-05-01_"), "{}", record["drift"]);
    assert!(record["drift"]["events_kept_previous"].as_u64().is_some());
    // A table there but unreadable is said, not passed over in silence.
    std::fs::write(folder("2026-05-22_").join("features/features.parquet"), "x").unwrap();
    let out = run(dir.path(), &["--as-of", "2026-05-29"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let record = run_json(&dir.path().join("out/2026-05-29/run.json"));
    assert!(record["drift"].is_null(), "{}", record["drift"]);
    let notes = record["notes"].to_string();
    assert!(notes.contains("features: the last good run's"), "{notes}");
    assert!(notes.contains("cannot be read"), "{notes}");
    // A table no stage compares with is no reason to pass a run over.
    std::fs::remove_file(folder("2026-05-29_").join("personas/k_selection.parquet")).unwrap();
    let out = run(dir.path(), &["--as-of", "2026-06-05"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("are gone"),
        "{}",
        text(&out.stderr)
    );
    let record = run_json(&dir.path().join("out/2026-06-05/run.json"));
    let against = record["stability"]["against_run"].as_str().unwrap_or("");
    assert!(
        against.starts_with("2026-05-29_"),
        "{}",
        record["stability"]
    );
    // Nor is the folder of a stage that compares nothing.
    std::fs::remove_dir_all(folder("2026-06-05_").join("report")).unwrap();
    let out = run(dir.path(), &["--as-of", "2026-06-12"]);
    assert!(
        !text(&out.stderr).contains("are gone"),
        "{}",
        text(&out.stderr)
    );
    let record = run_json(&dir.path().join("out/2026-06-12/run.json"));
    let against = record["drift"]["against_run"].as_str().unwrap_or("");
    assert!(against.starts_with("2026-06-05_"), "{}", record["drift"]);
}

#[test]
fn a_night_rerun_after_an_earlier_night_compares_with_it() {
    let dir = sandbox(300);
    nights(dir.path(), &["2026-05-15", "2026-05-01"]);
    // The first 05-15 run had no night before it; now it has, so nothing is reused
    // from that run, and a plain rerun gives what a forced one gives.
    let night = dir.path().join("out/2026-05-15");
    assert!(!night.join("migration.csv").exists());
    let plain = run(dir.path(), &["--as-of", "2026-05-15"]);
    assert!(plain.status.success(), "{}", text(&plain.stderr));
    let record = run_json(&night.join("run.json"));
    let against = record["stability"]["against_run"].as_str().unwrap_or("");
    assert!(
        against.starts_with("2026-05-01_"),
        "{}",
        record["stability"]
    );
    let files = [
        "migration.csv",
        "drift.csv",
        "user_personas.csv",
        "personas.csv",
    ];
    let read = |file: &str| std::fs::read(night.join(file)).unwrap();
    let first: Vec<Vec<u8>> = files.iter().map(|f| read(f)).collect();
    let forced = run(dir.path(), &["--as-of", "2026-05-15", "--force"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    for (file, before) in files.iter().zip(&first) {
        assert!(
            read(file) == *before,
            "{file} differs from the forced rerun's"
        );
    }
    // Unchanged since, a rerun reuses every stage, also after a rerun of the night
    // before that reused all of its own.
    for date in ["2026-05-15", "2026-05-01", "2026-05-15"] {
        let again = run(dir.path(), &["--as-of", date]);
        assert!(again.status.success(), "{}", text(&again.stderr));
        let record = run_json(&dir.path().join("out").join(date).join("run.json"));
        let statuses = stage_fields(&record, "status");
        assert!(
            statuses.iter().all(|s| s == "skipped"),
            "{date}: {statuses:?}"
        );
    }
}

#[test]
fn a_runs_folder_reached_by_another_path_keeps_its_history() {
    let dir = sandbox(300);
    nights(dir.path(), &["2026-05-01"]);
    // The next nights from another working folder (cron's), the second after the
    // runs folder moved.
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir(root.join("cron")).unwrap();
    let at = |p: &str| root.join(p).display().to_string();
    let night = |date: &str, runs: &str| {
        let events = format!("ingest.path={}", at("events.csv"));
        let out = at(&format!("out/{date}"));
        let args = ["run", &at("night.toml"), "--as-of", date, "--runs", runs];
        let args = [&args[..], &["--out", &out, "--set", &events]].concat();
        let done = userlens(&args, &root.join("cron"));
        assert!(done.status.success(), "{}", text(&done.stderr));
        assert!(
            !text(&done.stderr).contains("are gone"),
            "{}",
            text(&done.stderr)
        );
        let record = run_json(&root.join(format!("out/{date}/run.json")));
        record["drift"]["against_run"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(night("2026-05-08", &at("runs")).starts_with("2026-05-01_"));
    std::fs::rename(root.join("runs"), root.join("moved")).unwrap();
    assert!(night("2026-05-15", &at("moved")).starts_with("2026-05-08_"));
}

#[test]
fn a_renamed_personas_stage_says_its_ids_start_anew() {
    let dir = sandbox(300);
    nights(dir.path(), &["2026-05-01"]);
    let renamed = PIPELINE
        .replace("[stages.personas]", "[stages.segments]")
        .replace(
            "needs = [\"features\", \"personas\"]",
            "needs = [\"features\", \"segments\"]",
        );
    std::fs::write(dir.path().join("night.toml"), renamed).unwrap();
    let out = run(dir.path(), &["--as-of", "2026-05-08"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let note = "segments: no earlier run has a stage `segments`, but earlier runs made personas \
                in `personas`: persona ids start anew";
    assert!(text(&out.stderr).contains(note), "{}", text(&out.stderr));
    // The night after, the stage has its own past: nothing to say.
    let out = run(dir.path(), &["--as-of", "2026-05-15"]);
    assert!(
        !text(&out.stderr).contains("start anew"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_profile_stage_added_beside_the_first_is_no_rename() {
    let dir = sandbox(300);
    nights(dir.path(), &["2026-05-01"]);
    let added = format!(
        "{PIPELINE}\n[stages.fine]\nuses = \"profile\"\nneeds = [\"features\"]\nwith = {{ k = 3 }}\n"
    );
    std::fs::write(dir.path().join("night.toml"), added).unwrap();
    let out = run(dir.path(), &["--as-of", "2026-05-08"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("start anew"),
        "{}",
        text(&out.stderr)
    );
    // The record describes the first profile stage alone, as the files do.
    let record = run_json(&dir.path().join("out/2026-05-08/run.json"));
    assert_eq!(record["personas"]["k"], 5, "{}", record["personas"]);
    assert!(record["stability"].is_object(), "{}", record["stability"]);
}
