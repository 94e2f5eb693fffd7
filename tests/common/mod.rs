//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod night;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the binary in `cwd` and waits for it.
pub fn userlens(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_userlens"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .output()
        .expect("the userlens binary runs")
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Bytes as lossy text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A CSV file as rows of column -> value.
pub fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).expect("csv opens");
    let headers = reader.headers().expect("header").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("record");
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Generates `users` users of known personas into `dir`.
pub fn generate(dir: &Path, users: usize, seed: u64) {
    let out = userlens(
        &[
            "generate",
            "--users",
            &users.to_string(),
            "--seed",
            &seed.to_string(),
            "--out",
            "events.csv",
            "--truth",
            "truth.csv",
        ],
        dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}
