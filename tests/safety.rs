//! Nothing a user owns is lost: publishing touches only folders userlens wrote,
//! artifacts are verified before reuse, names cannot be paths.

mod common;

use std::path::Path;

use common::{read_csv, text, userlens};

/// A folder with generated events and a profile pipeline over them.
fn sandbox() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::generate(dir.path(), 150, 11);
    std::fs::write(dir.path().join("p.toml"), PIPELINE).unwrap();
    dir
}

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

[stages.personas]
uses = "profile"
needs = ["features"]
with = { k = 3 }

[stages.report]
uses = "report"
needs = ["features", "personas"]
"#;

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["run", "p.toml", "-q"];
    all.extend_from_slice(args);
    userlens(&all, dir)
}

/// Asserts that a run exited with `code` and said `says` on stderr.
fn exits_saying(out: &std::process::Output, code: i32, says: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(says), "{stderr}");
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn out_never_replaces_a_folder_userlens_did_not_write() {
    let dir = sandbox();
    std::fs::create_dir(dir.path().join("mydocs")).unwrap();
    std::fs::write(dir.path().join("mydocs/thesis.txt"), "years of work").unwrap();
    let out = run(dir.path(), &["--out", "mydocs"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("output folder `mydocs` holds files userlens did not write"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(files(&dir.path().join("mydocs")), ["thesis.txt"]);
    assert!(
        !dir.path().join("runs/p").exists()
            || std::fs::read_dir(dir.path().join("runs/p"))
                .unwrap()
                .count()
                == 0,
        "refused before any work"
    );

    // Its own folder it replaces freely; `--force-output` takes over another.
    assert!(run(dir.path(), &[]).status.success());
    assert!(run(dir.path(), &["--set", "personas.k=4"]).status.success());
    let forced = run(dir.path(), &["--out", "mydocs", "--force-output"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert!(dir.path().join("mydocs/personas.csv").is_file());

    for bad in ["/", ".", "..", "../victim", "events.csv"] {
        let out = run(dir.path(), &["--out", bad]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "--out {bad}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains("output folder"), "{bad}");
    }
    assert!(dir.path().join("events.csv").is_file());
    let leftovers: Vec<String> = files(dir.path())
        .into_iter()
        .filter(|f| f.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
}

#[test]
fn files_added_to_a_published_folder_are_never_replaced() {
    let dir = sandbox();
    assert!(run(dir.path(), &[]).status.success());
    let out_dir = dir.path().join("out");
    std::fs::write(out_dir.join("my_notes.txt"), "mine").unwrap();
    let out = run(dir.path(), &["--set", "personas.k=4"]);
    exits_saying(
        &out,
        2,
        "holds `my_notes.txt`, which userlens's last publish",
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("my_notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(read_csv(&out_dir.join("personas.csv")).len(), 3);

    // `report` re-renders a published folder, and refuses one of someone else's.
    std::fs::remove_file(out_dir.join("my_notes.txt")).unwrap();
    let rendered = userlens(&["report", "out"], dir.path());
    assert!(rendered.status.success(), "{}", text(&rendered.stderr));
    // A table edited by hand is named by its file.
    let personas = out_dir.join("personas.csv");
    let kept = std::fs::read(&personas).unwrap();
    let mut reader = csv::Reader::from_reader(&kept[..]);
    let header = reader.headers().unwrap().clone();
    let users = header.iter().position(|h| h == "users").unwrap();
    let mut writer = csv::Writer::from_path(&personas).unwrap();
    writer.write_record(&header).unwrap();
    for record in reader.records() {
        let record = record.unwrap();
        let edited = record
            .iter()
            .enumerate()
            .map(|(i, v)| if i == users { "many" } else { v });
        writer.write_record(edited).unwrap();
    }
    writer.flush().unwrap();
    let edited = userlens(&["report", "out"], dir.path());
    exits_saying(&edited, 2, "`personas.csv` is not as the run wrote it");
    // Nor does a run replace it: the edit would be lost.
    let rerun = run(dir.path(), &["--set", "personas.k=4"]);
    exits_saying(
        &rerun,
        2,
        "holds `personas.csv`, changed since userlens's last publish there wrote it",
    );
    assert!(std::fs::read_to_string(&personas).unwrap().contains("many"));
    // So is one cut short, or gone.
    std::fs::write(&personas, &kept[..kept.len() / 2]).unwrap();
    let cut = userlens(&["report", "out"], dir.path());
    exits_saying(&cut, 2, "`personas.csv` is not as the run wrote it");
    std::fs::write(&personas, &kept).unwrap();
    let k_selection = std::fs::read(out_dir.join("k_selection.csv")).unwrap();
    std::fs::remove_file(out_dir.join("k_selection.csv")).unwrap();
    let gone = userlens(&["report", "out"], dir.path());
    exits_saying(
        &gone,
        2,
        "`k_selection.csv`, which the run published, is gone",
    );
    std::fs::write(out_dir.join("k_selection.csv"), k_selection).unwrap();
    let whole = userlens(&["report", "out"], dir.path());
    assert!(whole.status.success(), "{}", text(&whole.stderr));
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    for file in ["personas.csv", "run.json"] {
        std::fs::copy(out_dir.join(file), theirs.join(file)).unwrap();
    }
    std::fs::write(theirs.join("report.html"), "my page").unwrap();
    // A run published without a report stage has no page to make.
    let until = run(dir.path(), &["--until", "features", "--out", "early"]);
    assert!(until.status.success(), "{}", text(&until.stderr));
    let early = userlens(&["report", "early"], dir.path());
    exits_saying(&early, 2, "holds no `personas.csv`");
    let refused = userlens(&["report", "theirs"], dir.path());
    exits_saying(&refused, 2, "is not a run's output folder");
    assert_eq!(
        std::fs::read_to_string(theirs.join("report.html")).unwrap(),
        "my page"
    );
}

#[test]
fn a_refused_run_says_where_its_quarantine_went_and_only_that() {
    let dir = sandbox();
    std::fs::write(
        dir.path().join("bad.csv"),
        "user_id,event_time,event_type\nu1,never,view\n",
    )
    .unwrap();
    let refused = dir.path().join("out.refused");
    std::fs::create_dir(&refused).unwrap();
    std::fs::write(refused.join("quarantine.csv"), "mine").unwrap();
    // Not quiet: the warning is what this checks.
    let out = userlens(
        &[
            "run",
            "p.toml",
            "--set",
            "ingest.path=bad.csv",
            "--set",
            "ingest.max_quarantine_share=0.5",
        ],
        dir.path(),
    );
    exits_saying(
        &out,
        3,
        "the refused run's quarantine and record were not put in",
    );
    assert!(!text(&out.stderr).contains("last good report"));
    assert_eq!(
        std::fs::read_to_string(refused.join("quarantine.csv")).unwrap(),
        "mine"
    );
}

#[test]
fn a_missing_or_changed_artifact_makes_its_stage_run_again() {
    let dir = sandbox();
    assert!(run(dir.path(), &[]).status.success());
    let complete = files(&dir.path().join("out"));
    let runs = dir.path().join("runs/p");
    let first = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();

    std::fs::remove_file(first.join("personas/assignments.parquet")).unwrap();
    let out = run(dir.path(), &["--set", "report.features_csv=true"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut expected = complete.clone();
    expected.push("features.csv".into());
    expected.sort();
    assert_eq!(files(&dir.path().join("out")), expected);

    // Another run's features swapped in: the hash differs, the stage reruns.
    let second = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| *p != first)
        .unwrap();
    std::fs::remove_file(second.join("features/features.parquet")).unwrap_or(());
    std::fs::remove_file(first.join("features/features.parquet")).unwrap();
    let out = run(dir.path(), &["--set", "personas.k=4"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(read_csv(&dir.path().join("out/personas.csv")).len(), 4);
}

#[test]
fn a_refused_rerun_leaves_the_good_report_in_place() {
    let dir = sandbox();
    assert!(run(dir.path(), &["--as-of", "2026-05-01"]).status.success());
    let before = std::fs::read(dir.path().join("out/personas.csv")).unwrap();
    let mut events = std::fs::read_to_string(dir.path().join("events.csv")).unwrap();
    for i in 0..200 {
        events.push_str(&format!("u{i},not a time,view,,,,,,\n"));
    }
    std::fs::write(dir.path().join("bad.csv"), events).unwrap();
    let out = run(
        dir.path(),
        &[
            "--as-of",
            "2026-05-01",
            "--set",
            "ingest.path=bad.csv",
            "--set",
            "ingest.max_quarantine_share=0.001",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(dir.path().join("out/personas.csv")).unwrap(),
        before
    );
    let refused = dir.path().join("out.refused");
    assert_eq!(files(&refused), [".userlens", "quarantine.csv", "run.json"]);
    assert_eq!(read_csv(&refused.join("quarantine.csv")).len(), 200);
}

#[test]
fn a_run_refused_for_a_user_total_records_what_it_read() {
    let dir = sandbox();
    let mut events = String::from("user_id,event_time,event_type,amount\nu1,not a time,view,\n");
    // 90,001 purchases of a trillion: each within bounds, their sum in cents not.
    for i in 0..90_001 {
        events.push_str(&format!("whale,2026-01-01 10:00:00.{i:06},purchase,1e12\n"));
    }
    std::fs::write(dir.path().join("whale.csv"), events).unwrap();
    let out = run(dir.path(), &["--set", "ingest.path=whale.csv"]);
    exits_saying(&out, 3, "(the first: `whale`)");
    let refused = dir.path().join("out.refused");
    assert_eq!(files(&refused), [".userlens", "quarantine.csv", "run.json"]);
    assert_eq!(read_csv(&refused.join("quarantine.csv")).len(), 1);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(refused.join("run.json")).unwrap()).unwrap();
    assert_eq!(record["rows"]["read"], 90_002, "{record}");
    assert_eq!(record["rows"]["quarantined"], 1, "{record}");
}

#[test]
fn a_run_that_cannot_save_an_artifact_leaves_no_staging_folder() {
    let dir = sandbox();
    // Files past 100 KiB cannot be written (EFBIG, the signal ignored): the events'
    // artifact fails to save after the quarantine went into the staging folder.
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 100; exec {} run p.toml -q",
            env!("CARGO_BIN_EXE_userlens")
        ))
        .current_dir(dir.path())
        .output()
        .unwrap();
    exits_saying(&out, 1, "file too large");
    let left: Vec<String> = files(dir.path())
        .into_iter()
        .filter(|name| name.contains("staging"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!dir.path().join("out").exists());
}

#[test]
fn a_run_refused_after_its_first_stages_leaves_no_half_report() {
    let dir = sandbox();
    // The survey is missing: the last stage refuses, after the personas were written.
    let loyalty = "[stages.loyalty]\nuses = \"loyalty\"\n\
        needs = [\"ingest\", \"features\", \"personas\"]\nwith = { survey = \"nope.csv\" }\n";
    std::fs::write(dir.path().join("p.toml"), format!("{PIPELINE}{loyalty}")).unwrap();
    let out = run(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let refused = dir.path().join("out.refused");
    let mut expected = vec![".userlens", "run.json"];
    if refused.join("quarantine.csv").exists() {
        expected.insert(1, "quarantine.csv");
    }
    assert_eq!(files(&refused), expected);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(refused.join("run.json")).unwrap()).unwrap();
    let outputs: Vec<&str> = (record["outputs"].as_array().unwrap().iter())
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(outputs, expected[1..]);
    let report = userlens(&["report", "out.refused"], dir.path());
    exits_saying(&report, 2, "holds the record of a refused run");
}

#[test]
fn stage_and_pipeline_names_cannot_be_paths() {
    let dir = sandbox();
    for name in ["\"/tmp/x\"", "\"../../../../x\"", "\"a b\""] {
        let text_ = PIPELINE.replace("[stages.report]", &format!("[stages.{name}]"));
        std::fs::write(dir.path().join("bad.toml"), text_).unwrap();
        let out = userlens(&["run", "bad.toml"], dir.path());
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("must be ASCII letters, digits"),
            "{name}"
        );
    }
}

#[cfg(unix)]
#[test]
fn a_symlink_at_the_lock_is_never_followed() {
    let dir = sandbox();
    std::fs::write(dir.path().join("precious.txt"), "keep me").unwrap();
    std::fs::create_dir_all(dir.path().join("runs")).unwrap();
    std::os::unix::fs::symlink(
        dir.path().join("precious.txt"),
        dir.path().join("runs/p.lock"),
    )
    .unwrap();
    let out = run(dir.path(), &[]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("p.lock"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("precious.txt")).unwrap(),
        "keep me"
    );
}

#[test]
fn two_pipelines_sharing_an_output_leave_each_other_alone() {
    let dir = sandbox();
    std::fs::write(
        dir.path().join("q.toml"),
        PIPELINE.replace("name = \"p\"", "name = \"q\""),
    )
    .unwrap();
    // A staging folder of a run of `q` that is still going.
    let staging = dir.path().join(".out.staging-2026-01-01_20260101T000000Z");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("personas.csv"), "x").unwrap();
    assert!(run(dir.path(), &[]).status.success());
    assert!(staging.join("personas.csv").is_file());
}

#[test]
fn two_pipelines_started_at_once_on_a_new_runs_folder_both_run() {
    let dir = sandbox();
    std::fs::write(
        dir.path().join("q.toml"),
        PIPELINE
            .replace("name = \"p\"", "name = \"q\"")
            .replace("\"out\"", "\"out-q\""),
    )
    .unwrap();
    for trial in 0..10 {
        let runs = format!("runs{trial}");
        let started: Vec<_> = ["p.toml", "q.toml"]
            .map(|pipeline| {
                let args = ["run", pipeline, "-q", "--until", "ingest", "--runs", &runs];
                std::process::Command::new(env!("CARGO_BIN_EXE_userlens"))
                    .args(args)
                    .current_dir(dir.path())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .into_iter()
            .collect();
        for child in started {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
    }
}

#[test]
fn a_one_part_relative_output_cleans_up_after_itself() {
    let dir = sandbox();
    for k in ["3", "4"] {
        let out = run(
            dir.path(),
            &["--out", "report", "--set", &format!("personas.k={k}")],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let hidden: Vec<String> = files(dir.path())
        .into_iter()
        .filter(|f| f.starts_with(".report"))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

/// Events of `users` users who all do exactly the same things, over more than the
/// prediction horizon (which a shorter history skips for another reason).
fn identical_users(users: usize) -> String {
    let mut csv = String::from(
        "user_id,event_time,event_type,session_id,item_id,category,query,amount,rating\n",
    );
    for u in 0..users {
        for (date, kind, amount) in [
            ("2026-01-01", "view", ""),
            ("2026-01-05", "purchase", "20"),
            ("2026-02-09", "purchase", "20"),
            ("2026-03-21", "view", ""),
            ("2026-04-10", "purchase", "20"),
        ] {
            csv.push_str(&format!(
                "u{u},{date} 10:00:00,{kind},,i1,books,,{amount},\n"
            ));
        }
    }
    csv
}

#[test]
fn degenerate_inputs_finish_with_every_predictor_skipped_and_why() {
    let dir = tempfile::tempdir().unwrap();
    for (name, users) in [("one", 1), ("two", 2), ("sixty", 60)] {
        let file = format!("{name}.csv");
        std::fs::write(dir.path().join(&file), identical_users(users)).unwrap();
        let out = userlens(&["profile", &file, "--out", name, "-q"], dir.path());
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        let personas = read_csv(&dir.path().join(name).join("personas.csv"));
        assert_eq!(personas.len(), 1, "{name}");
        let report = read_csv(&dir.path().join(name).join("model_report.csv"));
        assert!(!report.is_empty(), "{name}: every predictor is reported");
        for row in &report {
            assert_eq!(row["status"], "skipped", "{name}: {row:?}");
            assert!(!row["reason"].is_empty(), "{name}: {row:?}");
        }
    }
}

#[cfg(unix)]
#[test]
fn sigterm_stops_a_run_cleanly_and_it_resumes() {
    let dir = tempfile::tempdir().unwrap();
    common::generate(dir.path(), 2500, 5);
    std::fs::write(dir.path().join("p.toml"), PIPELINE).unwrap();
    let mut interrupted = 0;
    for signal in ["TERM", "INT"] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_userlens"))
            // Into folders the run makes, which it leaves no trace of when stopped.
            .args(["run", "p.toml", "--force", "--out", "nest/out"])
            // A scheduler's log stays JSON lines to the end.
            .args(if signal == "TERM" {
                &["--log-format", "json"][..]
            } else {
                &[]
            })
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Signalled once its personas stage has started: mid-run, on any machine.
        let mut lines =
            std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
        let mut stderr = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            stderr.push_str(&line);
            stderr.push('\n');
            if line.contains("personas") {
                break;
            }
        }
        let killed = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        for line in lines {
            stderr.push_str(&line.unwrap());
            stderr.push('\n');
        }
        let code = child.wait().unwrap().code();
        if code == Some(0) {
            continue; // finished before the signal: nothing to check this time
        }
        interrupted += 1;
        let expected = if signal == "TERM" { 143 } else { 130 };
        assert_eq!(code, Some(expected), "{stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        if signal == "TERM" {
            for line in stderr.lines() {
                let parsed = serde_json::from_str::<serde_json::Value>(line);
                assert!(parsed.is_ok(), "not a JSON line: {line}");
            }
        }
        assert!(
            !dir.path().join("nest").exists(),
            "left: {:?}",
            files(&dir.path().join("nest"))
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("runs/p.lock")).unwrap(),
            ""
        );
        let list = userlens(&["runs", "list"], dir.path());
        let listing = text(&list.stdout);
        let line = listing.lines().nth(1).unwrap_or_default().to_string();
        assert!(line.contains("interrupted"), "{listing}");
        let run_id = line.split_whitespace().next().unwrap().to_string();
        let resumed = run(dir.path(), &["--resume", &run_id]);
        assert!(resumed.status.success(), "{}", text(&resumed.stderr));
        assert!(dir.path().join("nest/out/personas.csv").is_file());
        std::fs::remove_dir_all(dir.path().join("nest")).unwrap();
    }
    assert!(
        interrupted > 0,
        "no run was stopped mid-way: signal earlier"
    );
}

/// The published folder is whole: `run.json` lists exactly the files there.
fn whole_or_absent(out: &Path) -> Result<(), String> {
    if !out.exists() {
        return Ok(());
    }
    let record: serde_json::Value = std::fs::read(out.join("run.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or("no readable run.json")?;
    if record["status"] != "ok" {
        return Err(format!("status {}", record["status"]));
    }
    let mut listed: Vec<String> = record["outputs"]
        .as_array()
        .ok_or("no outputs")?
        .iter()
        .filter_map(|f| f.as_str().map(String::from))
        .collect();
    listed.push(".userlens".into());
    listed.sort();
    let present = files(out);
    if present != listed {
        return Err(format!("holds {present:?}, its record lists {listed:?}"));
    }
    Ok(())
}

#[cfg(unix)]
#[test]
fn runs_kills_and_reruns_leave_nothing_or_one_whole_report() {
    let dir = sandbox();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    std::fs::create_dir(dir.path().join("out.refused")).unwrap();
    std::fs::write(dir.path().join("out.refused/keep.txt"), "mine too").unwrap();
    // A small linear congruential generator: the sequence is the same every time.
    let mut state: u64 = 0x5eed;
    let mut next = |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    for step in 0..10 {
        let k = (3 + next(3)).to_string();
        let set = format!("personas.k={k}");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_userlens"))
            .args(["run", "p.toml", "-q", "--set", &set])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let how = next(3);
        std::thread::sleep(std::time::Duration::from_millis(next(900)));
        match how {
            0 => {
                let _ = child.kill();
            }
            1 => {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
            }
            _ => {}
        }
        let _ = child.wait();
        if let Err(why) = whole_or_absent(&dir.path().join("out")) {
            panic!("after step {step} (kill {how}): {why}");
        }
        assert_eq!(
            std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
            "mine"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.refused/keep.txt")).unwrap(),
            "mine too"
        );
    }
    let last = run(dir.path(), &[]);
    assert!(last.status.success(), "{}", text(&last.stderr));
    whole_or_absent(&dir.path().join("out")).unwrap();
}

/// Every run of the ledger at `dir`, oldest first: id and status.
fn ledger_runs(dir: &Path) -> Vec<(String, String)> {
    let ledger = rusqlite::Connection::open(dir.join("runs/ledger.sqlite")).unwrap();
    let mut query = ledger
        .prepare("SELECT run_id, status FROM runs ORDER BY rowid")
        .unwrap();
    let rows = query.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn a_run_killed_after_it_published_is_recorded_as_it_ended() {
    let dir = sandbox();
    for _ in 0..2 {
        let out = run(dir.path(), &["--force"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let runs = ledger_runs(dir.path());
    let (first, second) = (runs[0].0.clone(), runs[1].0.clone());
    // As if both were killed between their publish and their last ledger write: the
    // second's report is the one out; the first's was replaced by it.
    let ledger = rusqlite::Connection::open(dir.path().join("runs/ledger.sqlite")).unwrap();
    ledger
        .execute(
            "UPDATE runs SET status = 'running', finished_at = NULL, pid = 2147483647",
            [],
        )
        .unwrap();
    drop(ledger);
    let out = run(dir.path(), &["--force"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let runs = ledger_runs(dir.path());
    assert_eq!(runs[0], (first, "interrupted".to_string()));
    assert_eq!(runs[1], (second, "ok".to_string()));
    assert_eq!(runs[2].1, "ok");
}

#[test]
fn an_as_of_date_after_the_data_runs_with_predictions_skipped_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    common::generate(dir.path(), 300, 2);
    let out = userlens(
        &[
            "profile",
            "events.csv",
            "--as-of",
            "2027-06-01",
            "--out",
            "out",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("the as-of date 2027-06-01 is after the last event"),
        "{}",
        text(&out.stderr)
    );
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/run.json")).unwrap()).unwrap();
    assert!(record["notes"].to_string().contains("after the last event"));
    let report = read_csv(&dir.path().join("out/model_report.csv"));
    assert!(
        report.iter().all(|r| r["status"] == "skipped"),
        "{report:?}"
    );
}

/// Runs the binary with its address space limited to `bytes` (`setrlimit`).
#[cfg(unix)]
fn userlens_within(bytes: u64, args: &[&str], cwd: &Path) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_userlens"));
    command.args(args).current_dir(cwd);
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_AS, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    command.output().unwrap()
}

#[cfg(unix)]
#[test]
fn huge_plans_are_refused_within_a_small_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let rule = |i: usize| {
        format!(
            "[stages.predict.with.rules.r{i}]\nwhen = \"recency_days > {}\"\ntarget = \"churn\"\n",
            i % 90
        )
    };
    let base = std::fs::read_to_string(common::repo().join("pipelines/profile.toml")).unwrap();
    // 600,000 rules (45 MB): refused by its size before it is parsed.
    let mut huge = base.clone();
    huge.extend((0..600_000).map(rule));
    std::fs::write(dir.path().join("huge.toml"), huge).unwrap();
    // Just under the size limit: parsed, then refused by the rule count.
    let mut many = base.clone();
    many.extend((0..40_000).map(rule));
    std::fs::write(dir.path().join("many.toml"), many).unwrap();
    // Three times the stages a plan may have.
    let mut chained = String::from("[pipeline]\nname = \"chain\"\n");
    for i in 0..192 {
        chained.push_str(&format!(
            "[stages.s{i}]\nuses = \"ingest\"\nwith = {{ path = \"e.csv\" }}\n"
        ));
    }
    std::fs::write(dir.path().join("chained.toml"), chained).unwrap();
    let half_gib = 512 << 20;
    for (file, message) in [
        ("huge.toml", "more than the 4 MiB a pipeline file may be"),
        ("many.toml", "more than the 256 allowed"),
        ("chained.toml", "more than the 64 allowed"),
    ] {
        let out = userlens_within(half_gib, &["validate", file], dir.path());
        assert_eq!(out.status.code(), Some(2), "{file}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(message),
            "{file}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn a_forced_output_onto_the_inputs_folder_leaves_the_input() {
    let dir = sandbox();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::rename(
        dir.path().join("events.csv"),
        dir.path().join("data/events.csv"),
    )
    .unwrap();
    let pipeline = PIPELINE.replace("path = \"events.csv\"", "path = \"data/events.csv\"");
    std::fs::write(dir.path().join("p.toml"), pipeline).unwrap();
    let out = run(dir.path(), &["--out", "data", "--force-output"]);
    exits_saying(&out, 2, "holds the input `data/events.csv`");
    assert!(dir.path().join("data/events.csv").is_file());
}

#[test]
fn a_rule_on_a_users_column_of_the_wrong_type_is_refused_not_retried() {
    let dir = sandbox();
    let users: String = read_csv(&dir.path().join("events.csv"))
        .iter()
        .map(|row| row["user_id"].clone())
        .collect::<std::collections::BTreeSet<_>>()
        .iter()
        .map(|user| format!("{user},gold\n"))
        .collect();
    std::fs::write(
        dir.path().join("users.csv"),
        format!("user_id,age\n{users}"),
    )
    .unwrap();
    let pipeline = r#"
[pipeline]
name = "u"
output = "out"
[stages.ingest]
uses = "ingest"
with = { path = "events.csv" }
[stages.features]
uses = "features"
needs = ["ingest"]
with = { users = "users.csv" }
[stages.predict]
uses = "predict"
needs = ["ingest", "features"]
retries = 1
retry_delay = "1s"
with = { rules = { older = { when = "user_age > 30", target = "purchase" } } }
"#;
    std::fs::write(dir.path().join("u.toml"), pipeline).unwrap();
    // Only the users table's file gives the column's type: the file passes.
    assert!(
        userlens(&["validate", "u.toml"], dir.path())
            .status
            .success()
    );
    let out = userlens(&["run", "u.toml", "-q"], dir.path());
    exits_saying(
        &out,
        3,
        "feature `user_age` at column 1 is str, not a number (a column of the users table `users.csv`)",
    );
    let list = userlens(&["runs", "list"], dir.path());
    let run_id = text(&list.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let shown = text(&userlens(&["runs", "show", &run_id], dir.path()).stdout);
    assert!(
        shown
            .lines()
            .any(|l| l.contains("predict") && l.contains("1 attempt(s)")),
        "{shown}"
    );
    // A column the users table lacks is the table's too: refused, naming it.
    let missing = pipeline.replace("user_age > 30", "user_tier > 30");
    std::fs::write(dir.path().join("u.toml"), missing).unwrap();
    let out = userlens(&["run", "u.toml", "-q"], dir.path());
    exits_saying(&out, 3, "(no such column in the users table `users.csv`)");
    assert!(text(&out.stderr).contains("unknown feature `user_tier`"));
}

/// Runs the binary as a user the permissions hold back: `nobody` (through `setpriv`)
/// when the tests run as root, whom no permission stops; `None` if it cannot.
#[cfg(unix)]
fn userlens_unprivileged(args: &[&str], cwd: &Path) -> Option<std::process::Output> {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .ok()?
        .stdout
        == b"0\n";
    let mut command = match root {
        true => {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(env!("CARGO_BIN_EXE_userlens"));
            c
        }
        false => std::process::Command::new(env!("CARGO_BIN_EXE_userlens")),
    };
    command.args(args).current_dir(cwd).output().ok()
}

#[cfg(unix)]
#[test]
fn a_run_that_cannot_prepare_its_output_is_recorded_failed_with_its_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = sandbox();
    let mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    mode(dir.path(), 0o777);
    mode(&dir.path().join("events.csv"), 0o644);
    std::fs::create_dir(dir.path().join("runs")).unwrap();
    mode(&dir.path().join("runs"), 0o777);
    std::fs::create_dir(dir.path().join("reports")).unwrap();
    mode(&dir.path().join("reports"), 0o555);
    let args = [
        "run",
        "p.toml",
        "-q",
        "--out",
        "reports/out",
        "--runs",
        "runs",
    ];
    let Some(out) = userlens_unprivileged(&args, dir.path()) else {
        eprintln!("skipped: no way to run without privileges");
        return;
    };
    exits_saying(&out, 1, "permission denied");
    let runs = ledger_runs(dir.path());
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].1, "failed");
    let ledger = rusqlite::Connection::open(dir.path().join("runs/ledger.sqlite")).unwrap();
    let error: String = ledger
        .query_row("SELECT error FROM runs", [], |row| row.get(0))
        .unwrap();
    assert!(error.contains("permission denied"), "{error}");
}
