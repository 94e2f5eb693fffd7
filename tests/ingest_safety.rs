//! Input the ingest cannot take ends in a clear refusal (exit 3) or is read after
//! all: never a panic, a hang, or a run that grows without bound.

mod common;
#[path = "../crates/ingest/src/tests/parquet_bytes.rs"]
mod parquet_bytes;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use common::{text, userlens};
use polars::prelude::*;

/// Generated events of 150 users in `dir`, as rows of column -> value.
fn generated(dir: &Path) -> Vec<BTreeMap<String, String>> {
    common::generate(dir, 150, 5);
    common::read_csv(&dir.join("events.csv"))
}

/// `userlens profile FILE --out out` in `dir`, with `args` after; checks that it
/// neither panicked nor died by a signal.
fn profile(dir: &Path, file: &str, args: &[&str]) -> Output {
    let mut all = vec!["profile", file, "--out", "out", "-q"];
    all.extend_from_slice(args);
    let out = userlens(&all, dir);
    assert!(
        out.status.code().is_some_and(|c| c != 101),
        "{file}: panicked or killed by a signal: {:?}\n{}",
        out.status,
        text(&out.stderr)
    );
    out
}

/// Asserts that `out` is a refusal (exit 3) whose message holds `message`.
fn assert_refused(out: &Output, message: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(message), "{stderr}");
}

fn assert_profiled(dir: &Path, out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(dir.join("out/personas.csv").is_file());
}

fn write_parquet(path: &Path, mut df: DataFrame) {
    ParquetWriter::new(std::fs::File::create(path).unwrap())
        .finish(&mut df)
        .unwrap();
}

/// A text column of `rows`.
fn texts(rows: &[BTreeMap<String, String>], name: &str) -> Vec<String> {
    rows.iter().map(|r| r[name].clone()).collect()
}

#[test]
fn a_parquet_decimal_column_is_read_unused_or_used() {
    use parquet_bytes::Column as C;
    let dir = tempfile::tempdir().unwrap();
    let rows = generated(dir.path());
    let column = |name: &str| {
        let values = texts(&rows, name);
        C::text(name, &values.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let cents: Vec<i64> = (0..rows.len() as i64).map(|i| 100 * (i % 40)).collect();
    let bytes = parquet_bytes::file(&[
        column("user_id"),
        column("event_time"),
        column("event_type"),
        C::decimal("price", &cents, 12, 2),
    ]);
    std::fs::write(dir.path().join("events.parquet"), bytes).unwrap();
    let out = profile(dir.path(), "events.parquet", &[]);
    assert_profiled(dir.path(), &out);
    let out = profile(
        dir.path(),
        "events.parquet",
        &["--set", "ingest.columns.amount=price"],
    );
    assert_profiled(dir.path(), &out);
    // Every purchase's amount is the decimal's value: cents 0 to 3,900 in steps of 100.
    let types = texts(&rows, "event_type");
    let revenue: f64 = (cents.iter().zip(&types))
        .filter(|(_, t)| *t == "purchase")
        .map(|(c, _)| *c as f64 / 100.0)
        .sum();
    assert!(revenue > 0.0);
    let users = common::read_csv(&dir.path().join("out/user_personas.csv"));
    let monetary: f64 = (users.iter())
        .map(|user| user["monetary"].parse::<f64>().unwrap())
        .sum();
    assert!(
        (monetary - revenue).abs() < 1e-3,
        "{monetary} against {revenue}"
    );
}

#[test]
fn parquet_timestamps_with_a_time_zone_are_read_as_utc() {
    let dir = tempfile::tempdir().unwrap();
    let rows = generated(dir.path());
    let micros: Vec<i64> = texts(&rows, "event_time")
        .iter()
        .map(|t| {
            chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S")
                .unwrap()
                .and_utc()
                .timestamp_micros()
        })
        .collect();
    let amounts: Vec<Option<f64>> = texts(&rows, "amount")
        .iter()
        .map(|a| a.parse().ok())
        .collect();
    let df = DataFrame::new(
        rows.len(),
        vec![
            Column::new("user_id".into(), texts(&rows, "user_id")),
            Int64Chunked::from_vec("event_time".into(), micros)
                .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
                .into_column(),
            Column::new("event_type".into(), texts(&rows, "event_type")),
            Column::new("amount".into(), amounts),
        ],
    )
    .unwrap();
    write_parquet(&dir.path().join("events.parquet"), df);
    let out = profile(dir.path(), "events.parquet", &[]);
    assert_profiled(dir.path(), &out);
}

#[test]
fn parquet_list_columns_are_ignored_unused_and_refused_used() {
    let dir = tempfile::tempdir().unwrap();
    let rows = generated(dir.path());
    let tags: Vec<Series> = texts(&rows, "category")
        .iter()
        .map(|c| Series::new("".into(), [c.as_str(), "tag"]))
        .collect();
    let df = DataFrame::new(
        rows.len(),
        vec![
            Column::new("user_id".into(), texts(&rows, "user_id")),
            Column::new("event_time".into(), texts(&rows, "event_time")),
            Column::new("event_type".into(), texts(&rows, "event_type")),
            Column::new("tags".into(), tags),
        ],
    )
    .unwrap();
    write_parquet(&dir.path().join("events.parquet"), df);
    let out = profile(dir.path(), "events.parquet", &[]);
    assert_profiled(dir.path(), &out);
    let out = profile(
        dir.path(),
        "events.parquet",
        &["--set", "ingest.columns.category=tags"],
    );
    assert_refused(
        &out,
        "`events.parquet`: column `tags` (read as `category`) is a list, not one value per row",
    );
}

/// [`profile`], killed and failed if it has not ended within 30 s.
fn profile_within_30_s(dir: &Path, file: &str) -> Output {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_userlens"))
        .args(["profile", file, "--out", "out", "-q"])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(30) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("`userlens profile {file}` still running after 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn devices_and_fifos_are_refused_not_read_forever() {
    let dir = tempfile::tempdir().unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(dir.path().join("events.csv"))
        .status()
        .unwrap();
    assert!(made.success());
    for (file, kind) in [
        ("/dev/zero", "a character device"),
        ("events.csv", "a named pipe (FIFO)"),
    ] {
        let out = profile_within_30_s(dir.path(), file);
        assert_refused(
            &out,
            &format!(
                "`{file}` is {kind}, not a regular file: save the data to a file and give its path"
            ),
        );
    }
}

#[test]
fn utf16_and_semicolon_files_are_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let rows = generated(dir.path());
    let csv = std::fs::read_to_string(dir.path().join("events.csv")).unwrap();
    assert!(rows.len() > 1000);
    // As Excel's "Unicode text" saves it: UTF-16LE with a byte-order mark.
    let utf16: Vec<u8> = std::iter::once(0xfeff)
        .chain(csv.encode_utf16())
        .flat_map(u16::to_le_bytes)
        .collect();
    std::fs::write(dir.path().join("utf16.csv"), utf16).unwrap();
    let out = profile(dir.path(), "utf16.csv", &[]);
    assert_refused(
        &out,
        "`utf16.csv` line 1: the text is UTF-16LE, not UTF-8: convert it to UTF-8 (such as with `iconv -f UTF-16LE -t UTF-8`) and give the converted file",
    );
    std::fs::write(dir.path().join("semicolons.csv"), csv.replace(',', ";")).unwrap();
    let out = profile(dir.path(), "semicolons.csv", &[]);
    assert_refused(
        &out,
        "`semicolons.csv` line 1: the header has no `,` but has `;`: set `delimiter = \";\"` for this source",
    );
    let out = profile(
        dir.path(),
        "semicolons.csv",
        &["--set", "ingest.delimiter=\";\""],
    );
    assert_profiled(dir.path(), &out);
}

/// A gzip-compressed CSV of `members` × 100,000 rows that repeat 500 rows of 100
/// users: 34 MB of text in under half a megabyte of file, as a gzip multi-member
/// stream (the compressed block is written once per member).
fn repetitive_gzip(path: &Path, members: usize) {
    use std::io::Write;
    let gzip = |text: &[u8]| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(text).unwrap();
        gz.finish().unwrap()
    };
    let types = ["view", "search", "purchase", "add_to_cart"];
    let mut block = String::new();
    for i in 0..500 {
        let amount = if i % 4 == 2 { "12.50" } else { "" };
        block.push_str(&format!(
            "u{:04},2026-03-{:02} {:02}:{:02}:00,{},,i{},cat{},,{amount},\n",
            i % 100,
            1 + i % 28,
            i % 24,
            i % 60,
            types[i % 4],
            i % 37,
            i % 7
        ));
    }
    let member = gzip(block.repeat(200).as_bytes());
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(&gzip(
        b"user_id,event_time,event_type,session_id,item_id,category,query,amount,rating\n",
    ))
    .unwrap();
    for _ in 0..members {
        file.write_all(&member).unwrap();
    }
}

/// A gzip file whose text passes the in-memory budget goes out of core as it is
/// read, so the run keeps to a memory limit that holding all its rows would pass.
///
/// The limit is on the address space (`ulimit -v`, RLIMIT_AS), with the allocators
/// told to reserve it in small steps and two threads per pool, so that it follows
/// the memory used: about 400 MB with the budget of 8 MB out of core, over 700 MB
/// with all 700,000 rows in memory (as when the budget was checked against six
/// times the file's size, 2.5 MB here).
#[test]
fn a_gzip_file_inflating_past_the_budget_is_read_within_a_memory_limit() {
    const LIMIT_KB: u64 = 560 << 10;
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.csv.gz");
    repetitive_gzip(&events, 7);
    let size = std::fs::metadata(&events).unwrap().len();
    assert!(size * 6 < 8 << 20, "{size}");
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("ulimit -v {LIMIT_KB} && exec \"$0\" \"$@\""),
            env!("CARGO_BIN_EXE_userlens"),
            "profile",
            "events.csv.gz",
            "--out",
            "out",
            "-q",
            "--set",
            "ingest.out_of_core_above_mb=8",
        ])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env("MIMALLOC_ARENA_RESERVE", "32MiB")
        .env("MALLOC_ARENA_MAX", "1")
        .env("POLARS_MAX_THREADS", "2")
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap();
    assert_profiled(dir.path(), &out);
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/run.json")).unwrap()).unwrap();
    assert_eq!(run["rows"]["read"], 700_000);
    assert_eq!(run["rows"]["kept"], 500);
}
