//! The hostile-input corpus (`tests/data/hostile/`): every file has an exact expected
//! outcome, and no input makes the binary panic or die by a signal.

mod common;

use std::path::{Path, PathBuf};

use common::{read_csv, repo, text, userlens};

/// What a case must end in.
struct Case {
    file: &'static str,
    args: &'static [&'static str],
    exit: i32,
    /// `(kept, quarantined, duplicates)` when the input is accepted.
    rows: Option<(u64, u64, u64)>,
    /// `(line, column, reason prefix)` of every quarantined row.
    quarantine: &'static [(u64, &'static str, &'static str)],
    /// A part of stderr for refused input.
    message: &'static str,
}

const fn ok(
    file: &'static str,
    kept: u64,
    quarantine: &'static [(u64, &'static str, &'static str)],
) -> Case {
    Case {
        file,
        args: &[],
        exit: 0,
        rows: Some((kept, quarantine.len() as u64, 0)),
        quarantine,
        message: "",
    }
}

const CASES: &[Case] = &[
    ok("bom.csv", 30, &[]),
    ok("crlf_mixed.csv", 30, &[]),
    ok("quoted_multiline.csv", 32, &[]),
    ok(
        "nul_byte.csv",
        30,
        &[(32, "category", "NUL byte in `category`")],
    ),
    ok(
        "invalid_utf8.csv",
        30,
        &[(32, "category", "invalid UTF-8 in `category`")],
    ),
    ok(
        "repeated_header.csv",
        30,
        &[(17, "", "repeated header row")],
    ),
    ok(
        "ragged.csv",
        30,
        &[
            (32, "", "expected 9 fields, found 10"),
            (33, "", "expected 9 fields, found 3"),
        ],
    ),
    ok("reordered_columns.csv", 30, &[]),
    // 1900's first instant is a placeholder an export wrote, not an event.
    ok(
        "timestamps.csv",
        33,
        &[
            (
                35,
                "event_time",
                "`event_time` \"1900-01-01 00:00:00\" is the first instant of 1900, a \
                 placeholder for a time not known",
            ),
            (
                36,
                "event_time",
                "`event_time` \"2200-01-01 00:00:00\" is outside the years 1900-2099",
            ),
        ],
    ),
    // "1,234.50" on line 32 is thousands beside a decimal point: kept (the value read
    // is crates/ingest's numbers tests'); "1,234" alone could be either.
    ok(
        "amounts.csv",
        32,
        &[
            (33, "amount", "`amount` \"NaN\" is not a finite number"),
            (34, "amount", "`amount` \"inf\" is not a finite number"),
            (
                36,
                "amount",
                "`amount` \"1e308\" is beyond a trillion, more than userlens sums",
            ),
            (
                37,
                "amount",
                "`amount` \"1,234\" is not a finite number (a decimal comma, or thousands? \
                 set `decimal_comma = true` for a decimal comma; a comma parting thousands \
                 is read beside a decimal point, 1,234.0)",
            ),
        ],
    ),
    ok("user_ids.csv", 33, &[(32, "user_id", "missing `user_id`")]),
    ok("one_user.csv", 8, &[]),
    ok("identical_users.csv", 24, &[]),
    Case {
        args: &["--set", "personas.k=5"],
        ..ok("three_users.csv", 18, &[])
    },
    Case {
        args: &["--set", "ingest.time_format=\"unix\""],
        ..ok("epoch_seconds.csv", 24, &[])
    },
    Case {
        file: "epoch_millis_as_seconds.csv",
        args: &["--set", "ingest.time_format=\"unix\""],
        exit: 3,
        rows: None,
        quarantine: &[(
            2,
            "event_time",
            "`event_time` \"1767225600000\" is outside the years 1900-2099",
        )],
        message: "no events left in",
    },
    Case {
        file: "empty.csv",
        args: &[],
        exit: 3,
        rows: None,
        quarantine: &[],
        message: "empty.csv` is empty: expected a header line",
    },
    Case {
        file: "header_only.csv",
        args: &[],
        exit: 3,
        rows: None,
        quarantine: &[],
        message: "no events left in",
    },
];

/// Runs `userlens profile` on `events` in a fresh folder; checks it neither panicked
/// nor died by a signal.
fn profile(events: &Path, args: &[&str]) -> (tempfile::TempDir, std::process::Output) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![
        "profile",
        events.to_str().unwrap(),
        "--out",
        "out",
        "--runs",
        "runs",
        "--set",
        "ingest.max_quarantine_share=1",
    ];
    all.extend_from_slice(args);
    let out = userlens(&all, dir.path());
    assert!(
        out.status.code().is_some_and(|c| c != 101),
        "{}: panicked or killed by a signal: {:?}\n{}",
        events.display(),
        out.status,
        text(&out.stderr)
    );
    (dir, out)
}

fn rows_of(dir: &Path) -> (u64, u64, u64, u64) {
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("out/run.json")).unwrap()).unwrap();
    let n = |k: &str| run["rows"][k].as_u64().unwrap();
    (n("read"), n("kept"), n("quarantined"), n("duplicates"))
}

fn corpus(file: &str) -> PathBuf {
    repo().join("tests/data/hostile").join(file)
}

#[test]
fn every_corpus_file_has_its_expected_outcome() {
    for case in CASES {
        let (dir, out) = profile(&corpus(case.file), case.args);
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(case.exit),
            "{}: {stderr}",
            case.file
        );
        assert!(stderr.contains(case.message), "{}: {stderr}", case.file);
        if let Some((kept, quarantined, duplicates)) = case.rows {
            let (read, k, q, d) = rows_of(dir.path());
            assert_eq!((k, q, d), (kept, quarantined, duplicates), "{}", case.file);
            assert_eq!(
                read,
                k + q + d,
                "{}: read = kept + quarantined + duplicates",
                case.file
            );
            assert!(
                dir.path().join("out/personas.csv").is_file(),
                "{}",
                case.file
            );
        }
        // A refused run's quarantine is published beside the output folder.
        let published = if case.exit == 3 { "out.refused" } else { "out" };
        let quarantine_file = dir.path().join(published).join("quarantine.csv");
        let got: Vec<(u64, String, String)> = if quarantine_file.exists() {
            read_csv(&quarantine_file)
                .iter()
                .map(|r| {
                    (
                        r["line"].parse().unwrap(),
                        r["column"].clone(),
                        r["reason"].clone(),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let expected = case.quarantine;
        assert!(
            got.len() >= expected.len() && (case.rows.is_none() || got.len() == expected.len()),
            "{}: {got:?}",
            case.file
        );
        for (want, have) in expected.iter().zip(&got) {
            assert_eq!(want.0, have.0, "{}: line", case.file);
            assert_eq!(want.1, have.1, "{}: column", case.file);
            assert!(have.2.starts_with(want.2), "{}: {:?}", case.file, have.2);
        }
    }
}

#[test]
fn ids_keep_leading_zeros_and_degenerate_populations_get_one_persona() {
    let (dir, _) = profile(&corpus("user_ids.csv"), &[]);
    let users = read_csv(&dir.path().join("out/user_personas.csv"));
    assert!(users.iter().any(|u| u["user_id"] == "007"));
    assert!(users.iter().any(|u| u["user_id"].len() == 10240));
    for file in ["one_user.csv", "identical_users.csv"] {
        let (dir, _) = profile(&corpus(file), &[]);
        let personas = read_csv(&dir.path().join("out/personas.csv"));
        assert_eq!(personas.len(), 1, "{file}");
        assert_eq!(personas[0]["label"], "all users", "{file}");
    }
    let (dir, _) = profile(&corpus("three_users.csv"), &["--set", "personas.k=5"]);
    let made = read_csv(&dir.path().join("out/personas.csv")).len();
    assert!(made <= 3);
    // Fewer than asked, and the run says so.
    let run = std::fs::read_to_string(dir.path().join("out/run.json")).unwrap();
    let note = format!("feature rows can make; made {made}");
    assert!(
        run.contains("`k = 5` asks for more personas") && run.contains(&note),
        "{run}"
    );
}

#[test]
fn a_known_event_type_written_otherwise_is_named_in_memory_and_out_of_core() {
    let dir = tempfile::tempdir().unwrap();
    let mut events = std::fs::read_to_string(corpus("one_user.csv")).unwrap();
    events.push_str("u9,2026-03-10 10:00:00,Purchase,,,books,,20,\n");
    events.push_str("u9,2026-03-11 10:00:00,Add To Cart,,,books,,,\n");
    events.push_str("u9,2026-03-12 10:00:00,checkout,,,books,,,\n");
    events.push_str("u9,2026-03-13 10:00:00,addtocart,,,books,,,\n");
    events.push_str("u9,2026-03-14 10:00:00,transaction,,,books,,20,\n");
    let path = dir.path().join("cased.csv");
    std::fs::write(&path, events).unwrap();
    for args in [&[][..], &["--set", "ingest.out_of_core_above_mb=0"][..]] {
        let (out_dir, out) = profile(&path, args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let stderr = text(&out.stderr);
        for (name, like) in [
            ("Purchase", "purchase"),
            ("Add To Cart", "add_to_cart"),
            ("addtocart", "add_to_cart"),
        ] {
            let note = format!("event type `{name}` is not `{like}` (names are exact)");
            assert!(stderr.contains(&note), "{args:?}: {stderr}");
            let run = std::fs::read_to_string(out_dir.path().join("out/run.json")).unwrap();
            assert!(run.contains(&note), "{args:?}: {run}");
        }
        assert!(!stderr.contains("`checkout`"), "{stderr}");
        // Another name for a type the log has is not taken for it.
        assert!(!stderr.contains("`transaction`"), "{stderr}");
    }
    // A name `event_names` maps, to itself too, is the user's choice.
    let (_, out) = profile(
        &path,
        &["--set", "ingest.event_names.addtocart=\"addtocart\""],
    );
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("`addtocart`"), "{stderr}");
    assert!(stderr.contains("event type `Purchase` is not"), "{stderr}");
    // Another name for a type the log lacks is named.
    let only = dir.path().join("retailrocket.csv");
    let header = "user_id,event_time,event_type,item_id,category,amount\n";
    let rows = "u1,2026-03-10 10:00:00,view,i1,c,\nu1,2026-03-11 10:00:00,transaction,i1,c,20\n";
    std::fs::write(&only, format!("{header}{rows}")).unwrap();
    let (_, out) = profile(&only, &[]);
    let note = "event type `transaction` is not `purchase` (names are exact)";
    assert!(text(&out.stderr).contains(note), "{}", text(&out.stderr));
    // A mapped name no event has, and a target one typo from a known type.
    let (_, out) = profile(&only, &["--set", "ingest.event_names.VIEW=\"view\""]);
    let note = "`event_names` maps `VIEW` to `view`, but no event is";
    assert!(!text(&out.stderr).contains(note), "{}", text(&out.stderr));
    let (_, out) = profile(&only, &["--set", "ingest.event_names.View=\"pageview\""]);
    let note = "`event_names` maps `View` to `pageview`, but no event is `pageview`: no event \
                type is `View` (names are exact; the log has `view`)";
    assert!(text(&out.stderr).contains(note), "{}", text(&out.stderr));
    let (_, out) = profile(&only, &["--set", "ingest.event_names.view=\"veiw\""]);
    let note = "`event_names` maps `view` to `veiw`, which is no known type: its rows count \
                as events of their own; did you mean `view`?";
    assert!(text(&out.stderr).contains(note), "{}", text(&out.stderr));
    // A type of one's own two letters from a known one is no typo of it; a known
    // type written otherwise is named once, with the mapping's advice.
    let (_, out) = profile(&only, &["--set", "ingest.event_names.view=\"review\""]);
    assert!(
        !text(&out.stderr).contains("did you mean"),
        "{}",
        text(&out.stderr)
    );
    let (_, out) = profile(&only, &["--set", "ingest.event_names.view=\"View\""]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("maps `view` to `View`, which is no known type"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("event type `View` is not `view`"),
        "{stderr}"
    );
}

/// `name` in `dir`: 40 purchases of seven users, the i-th at the time `time(i)`.
fn purchases_at(dir: &Path, name: &str, time: impl Fn(i64) -> String) -> PathBuf {
    let mut events = String::from("user_id,event_time,event_type,amount\n");
    for i in 0..40 {
        events.push_str(&format!("u{},{},purchase,{}\n", i % 7, time(i), 10 + i));
    }
    let path = dir.join(name);
    std::fs::write(&path, events).unwrap();
    path
}

#[test]
fn times_read_in_the_wrong_unit_are_named_as_landing_in_1970() {
    let dir = tempfile::tempdir().unwrap();
    let path = purchases_at(dir.path(), "seconds.csv", |i| {
        (1_700_000_000 + i * 86_400).to_string()
    });
    let note = "every event is before 1990: is `time_format = \"unix_ms\"` right?";
    let (_, out) = profile(&path, &["--set", "ingest.time_format=unix_ms"]);
    assert!(text(&out.stderr).contains(note), "{}", text(&out.stderr));
    let (_, out) = profile(&path, &["--set", "ingest.time_format=unix"]);
    assert!(
        !text(&out.stderr).contains("before 1990"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_date_hour_read_as_unix_seconds_is_named_as_landing_in_the_future() {
    let dir = tempfile::tempdir().unwrap();
    // GA4's `dateHour`: 2026-02-01 00h onwards, an hour apart.
    let path = purchases_at(dir.path(), "date_hours.csv", |i| {
        format!("202602{:02}{:02}", 1 + i / 24, i % 24)
    });
    // Auto names both readings; the layout reads them.
    let (refused, out) = profile(&path, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let quarantine = read_csv(&refused.path().join("out.refused/quarantine.csv"));
    let hint = "(it reads as `time_format = \"%Y%m%d%H\"` or `\"unix\"`";
    assert!(
        quarantine[0]["reason"].contains(hint),
        "{:?}",
        quarantine[0]
    );
    let (dir_hours, out) = profile(&path, &["--set", "ingest.time_format=\"%Y%m%d%H\""]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = std::fs::read_to_string(dir_hours.path().join("out/run.json")).unwrap();
    assert!(run.contains("\"as_of\": \"2026-02-03\""), "{run}");
    assert!(
        !text(&out.stderr).contains("after today"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn events_after_today_are_named_as_a_layout_or_unit_mistake() {
    let dir = tempfile::tempdir().unwrap();
    // Unix seconds of 2096, as a date-hour read as seconds lands in the 2030s.
    let path = purchases_at(dir.path(), "future.csv", |i| {
        (4_000_000_000 + i * 86_400).to_string()
    });
    let (_, out) = profile(&path, &["--set", "ingest.time_format=unix"]);
    let note = "40 of the 40 events are after today";
    assert!(text(&out.stderr).contains(note), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("is `time_format = \"unix\"` right?"));
}

#[test]
fn a_10_mb_field_is_quarantined_and_not_echoed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = std::fs::read(corpus("bom.csv")).unwrap();
    data.extend_from_slice(b"u1,2026-03-10 10:00:00,search,,,books,");
    data.extend(std::iter::repeat_n(b'q', 10 * 1024 * 1024));
    data.extend_from_slice(b",,\n");
    let path = dir.path().join("big.csv");
    std::fs::write(&path, data).unwrap();
    let (out_dir, out) = profile(&path, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let quarantine = out_dir.path().join("out/quarantine.csv");
    let rows = read_csv(&quarantine);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0]["reason"],
        "`query` is 10485760 bytes long, more than the 65536 allowed"
    );
    assert!(
        std::fs::metadata(&quarantine).unwrap().len() < 2048,
        "the echo is bounded"
    );
}

#[test]
fn gzip_and_parquet_with_wrong_types() {
    use polars::prelude::*;
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let csv = std::fs::read(corpus("bom.csv")).unwrap();
    let gz = dir.path().join("events.csv.gz");
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    encoder.write_all(&csv).unwrap();
    encoder.finish().unwrap();
    let (out_dir, out) = profile(&gz, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(rows_of(out_dir.path()).1, 30);

    // amount written as text, one of it not a number; rating as a boolean
    let n = 12;
    let mut df = DataFrame::new(
        n,
        vec![
            Column::new(
                "user_id".into(),
                (0..n).map(|i| format!("p{}", i % 4)).collect::<Vec<_>>(),
            ),
            Column::new(
                "event_time".into(),
                (0..n)
                    .map(|i| format!("2026-03-{:02} 10:00:00", i + 1))
                    .collect::<Vec<_>>(),
            ),
            Column::new("event_type".into(), vec!["purchase"; n]),
            Column::new(
                "amount".into(),
                (0..n)
                    .map(|i| {
                        if i == 5 {
                            "abc".to_string()
                        } else {
                            format!("{i}.5")
                        }
                    })
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "rating".into(),
                (0..n).map(|i| i % 2 == 0).collect::<Vec<_>>(),
            ),
        ],
    )
    .unwrap();
    let parquet = dir.path().join("typed.parquet");
    ParquetWriter::new(std::fs::File::create(&parquet).unwrap())
        .finish(&mut df)
        .unwrap();
    let (out_dir, out) = profile(&parquet, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let rows = read_csv(&out_dir.path().join("out.refused/quarantine.csv"));
    assert_eq!(rows.len(), n, "every row has a boolean rating");
    assert_eq!(
        rows[0]["reason"],
        "`rating` \"true\" is not a finite number"
    );
    assert_eq!(rows[5]["reason"], "`amount` \"abc\" is not a finite number");
}

#[test]
fn a_missing_file_and_an_unwritable_output_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = userlens(
        &["profile", "missing.csv", "--out", "o", "--runs", "r"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("failed to read `missing.csv`: no such file or directory"));

    std::fs::write(dir.path().join("file"), "not a folder").unwrap();
    let events = corpus("bom.csv");
    let out = userlens(
        &[
            "profile",
            events.to_str().unwrap(),
            "--out",
            "file/out",
            "--runs",
            "r",
        ],
        dir.path(),
    );
    // A usage error, not a failed run to resume.
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr)
            .contains("output folder `file/out` cannot be made: `file` is a file, not a folder"),
        "{}",
        text(&out.stderr)
    );
}

/// The files of an output folder, by name.
fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".csv") {
                files.insert(name, std::fs::read(entry.path()).unwrap());
            }
        }
    }
    files
}

/// Copies a folder and everything in it.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn kills_at_any_moment_leave_whole_outputs_and_a_rerun_finishes_identically() {
    let dir = tempfile::tempdir().unwrap();
    common::generate(dir.path(), 1200, 3);
    let args = |as_of: &'static str, out: &'static str, runs: &'static str| -> Vec<&'static str> {
        vec![
            "profile",
            "events.csv",
            "--out",
            out,
            "--runs",
            runs,
            "--as-of",
            as_of,
            "-q",
        ]
    };
    // The reference sequence lives in its own runs folder: persona ids follow the
    // last good run, so both sequences must have the same history.
    for (as_of, out, runs) in [
        ("2026-04-01", "out", "runs"),
        ("2026-04-01", "reference-before", "runs-reference"),
        ("2026-05-01", "reference", "runs-reference"),
    ] {
        let done = userlens(&args(as_of, out, runs), dir.path());
        assert!(done.status.success(), "{}", text(&done.stderr));
    }
    let old = snapshot(&dir.path().join("out"));
    let new = snapshot(&dir.path().join("reference"));
    assert_ne!(old, new);
    // Every killed run starts from the same history: a run that finishes before its
    // kill (this one takes about a second) would otherwise be the previous night of
    // the next, whose migration and drift then differ from the reference's.
    for folder in ["out", "runs"] {
        copy_dir(
            &dir.path().join(folder),
            &dir.path().join(format!("{folder}-before")),
        );
    }

    for delay_ms in [30, 120, 300, 700, 1200, 2000] {
        for folder in ["out", "runs"] {
            let _ = std::fs::remove_dir_all(dir.path().join(folder));
            copy_dir(
                &dir.path().join(format!("{folder}-before")),
                &dir.path().join(folder),
            );
        }
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_userlens"))
            .args(args("2026-05-01", "out", "runs"))
            .arg("--force")
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let now = snapshot(&dir.path().join("out"));
        assert!(
            now == old || now == new,
            "after a kill at {delay_ms} ms the outputs are a mix: {:?}",
            now.keys().collect::<Vec<_>>()
        );
    }
    let rerun = userlens(&args("2026-05-01", "out", "runs"), dir.path());
    assert!(rerun.status.success(), "{}", text(&rerun.stderr));
    let after = snapshot(&dir.path().join("out"));
    let differing: Vec<&String> = new
        .keys()
        .filter(|k| after.get(*k) != new.get(*k))
        .collect();
    assert!(
        differing.is_empty(),
        "the rerun differs from the uninterrupted run in {differing:?}"
    );
}
