//! Safe CSVs (issue 24 item 13): events holding spreadsheet formulas and
//! bidirectional controls go through the real binary, and no published CSV holds a
//! cell a spreadsheet would run, nor any output a bidi control.

mod common;

use std::path::Path;

use common::{text, userlens};

const HYPERLINK: &str = "=HYPERLINK(\"http://evil.test\")";
const REVERSED: &str = "u\u{202E}gpj.exe";
const MALFORMED: &str = "=cmd|' /C calc'!A0,yesterday,view,,,books,,,";

fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// Whether a cell reads as a plain decimal number (`-3.5`, `+1`, `-2e-3`).
fn is_number(cell: &str) -> bool {
    let body = cell.trim_start_matches(['+', '-']);
    cell.len() - body.len() <= 1
        && body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && cell.parse::<f64>().is_ok_and(f64::is_finite)
}

/// 60 users in three kinds: heavy buyers of `+cmd` who search `@SUM(A1)`, browsers
/// of books, occasional buyers of toys; two of them have hostile ids.
fn events() -> String {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "user_id",
        "event_time",
        "event_type",
        "session_id",
        "item_id",
        "category",
        "query",
        "amount",
        "rating",
    ])
    .unwrap();
    for u in 0..60 {
        let user = match u {
            0 => HYPERLINK.to_string(),
            1 => REVERSED.to_string(),
            u => format!("u{u}"),
        };
        let kind = u % 3;
        let (category, query) = [
            ("+cmd", "@SUM(A1)"),
            ("books", "\u{2067}novel"),
            ("toys", "lego"),
        ][kind];
        let events = [12, 6, 3][kind];
        for e in 0..events {
            let day = 1 + (e * 9 + u) % 120;
            let time = format!(
                "2026-{:02}-{:02} {:02}:00:00",
                1 + (day - 1) / 30,
                1 + (day - 1) % 28,
                8 + kind * 5
            );
            let event = match (kind, e % 3) {
                (0, 0) | (2, 0) => "purchase",
                (_, 1) => "search",
                _ => "view",
            };
            let amount = if event == "purchase" {
                format!("{}.50", 10 + 20 * kind)
            } else {
                String::new()
            };
            let query = if event == "search" { query } else { "" };
            let session = format!("s{u}-{e}");
            let item = format!("i{kind}{}", e % 4);
            out.write_record([
                user.as_str(),
                &time,
                event,
                &session,
                &item,
                category,
                query,
                &amount,
                "",
            ])
            .unwrap();
        }
    }
    let mut bytes = out.into_inner().unwrap();
    bytes.extend_from_slice(MALFORMED.as_bytes());
    bytes.push(b'\n');
    String::from_utf8(bytes).unwrap()
}

/// Every cell of a CSV, its header included, with its line.
fn cells(path: &Path) -> Vec<(u64, String)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .unwrap();
    reader
        .records()
        .flat_map(|r| {
            let r = r.unwrap();
            let line = r.position().map_or(0, |p| p.line());
            r.iter().map(|c| (line, c.to_string())).collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn published_csvs_hold_no_formula_and_no_bidi_control() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.csv"), events()).unwrap();
    // features.csv too, which the built-in pipeline leaves out by default
    let out = userlens(
        &[
            "profile",
            "events.csv",
            "--out",
            "out",
            "-q",
            "--set",
            "report.features_csv=true",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let published = dir.path().join("out");

    let mut csvs: Vec<_> = std::fs::read_dir(&published)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    csvs.sort();
    let names: Vec<_> = csvs
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "features.csv",
        "personas.csv",
        "quarantine.csv",
        "user_personas.csv",
        "user_predictions.csv",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }

    let mut all = Vec::new();
    for (path, name) in csvs.iter().zip(&names) {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            !text(&bytes).contains(is_bidi_control),
            "{name} holds a bidi control"
        );
        for (line, cell) in cells(path) {
            let formula = cell.starts_with(['=', '@', '\t', '\r'])
                || (cell.starts_with(['+', '-']) && !is_number(&cell));
            assert!(!formula, "{name} line {line}: {cell:?}");
            all.push((name.clone(), cell));
        }
    }
    let html = std::fs::read_to_string(published.join("report.html")).unwrap();
    assert!(
        !html.contains(is_bidi_control),
        "report.html holds a bidi control"
    );

    // The hostile values did reach the outputs, neutralised.
    let has =
        |file: &str, cell: &dyn Fn(&str) -> bool| all.iter().any(|(n, c)| n == file && cell(c));
    let quoted = format!("'{HYPERLINK}");
    for file in ["user_personas.csv", "features.csv", "user_predictions.csv"] {
        assert!(has(file, &|c| c == quoted), "{file}: {quoted}");
        assert!(
            has(file, &|c| c == "u\\u{202E}gpj.exe"),
            "{file}: escaped id"
        );
    }
    assert!(
        has("quarantine.csv", &|c| c == format!("'{MALFORMED}")),
        "quarantine.csv: {:?}",
        all.iter()
            .filter(|(n, _)| n == "quarantine.csv")
            .collect::<Vec<_>>()
    );
    assert!(
        has("personas.csv", &|c| c.starts_with("'+cmd ")),
        "personas.csv: `top_categories` starting with `+cmd`"
    );
    assert!(
        has("personas.csv", &|c| c.starts_with("'@SUM(A1) ")),
        "personas.csv: `top_queries` starting with `@SUM(A1)`"
    );
    assert!(has("personas.csv", &|c| c.contains("\\u{2067}novel")));
}
