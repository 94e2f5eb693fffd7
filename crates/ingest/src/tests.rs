use std::io::Write;

use super::*;

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A whitespace-aligned purchase ledger at `path` (CDNOW's layout): `customer`,
/// a `%Y%m%d` `date` and `dollars`, plus the `settings` given (column names first).
fn purchase_ledger(path: PathBuf, settings: &str) -> SourceParams {
    let params: SourceParams = toml::from_str(&format!(
        r#"
        path = "placeholder"
        {settings}
        time_format = "%Y%m%d"
        [columns]
        user_id = "customer"
        event_time = "date"
        amount = "dollars"
        event_type = {{ constant = "purchase" }}
        "#
    ))
    .unwrap();
    SourceParams { path, ..params }
}

fn quarantine_rows(out: &Ingested) -> Vec<(u64, String, String)> {
    let q = &out.quarantine;
    let lines = q.column("line").unwrap().u64().unwrap().clone();
    let cols = q.column("column").unwrap().str().unwrap().clone();
    let reasons = q.column("reason").unwrap().str().unwrap().clone();
    (0..q.height())
        .map(|i| {
            (
                lines.get(i).unwrap(),
                cols.get(i).unwrap().to_string(),
                reasons.get(i).unwrap().to_string(),
            )
        })
        .collect()
}

/// The `raw` text of the quarantine's row `row`.
fn quarantine_raw(out: &Ingested, row: usize) -> String {
    let raw = out
        .quarantine
        .column("raw")
        .unwrap()
        .str()
        .unwrap()
        .get(row);
    raw.unwrap().to_string()
}

/// A text column of the events, whether strings or dictionary codes.
fn text(out: &Ingested, column: &str) -> Vec<Option<String>> {
    let column = out.events.column(column).unwrap();
    let strings = column.cast(&DataType::String).unwrap();
    let strings = strings.str().unwrap().iter();
    strings.map(|v| v.map(str::to_string)).collect()
}

fn amounts(out: &Ingested) -> Vec<Option<f64>> {
    let column = out.events.column("amount").unwrap();
    column.f64().unwrap().iter().collect()
}

#[test]
fn a_reason_quotes_the_value_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let data =
        "user_id,event_time,event_type\nu1,C:\\x\\y,view\nu2,\"2026-01-02 \"\"noon\"\"\",view\n";
    let path = write(&dir, "events.csv", data.as_bytes());
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    let reasons: Vec<String> = quarantine_rows(&out).into_iter().map(|r| r.2).collect();
    assert_eq!(
        reasons,
        [
            r#"`event_time` "C:\x\y" is not a date or date-time"#,
            r#"`event_time` "2026-01-02 "noon"" is not a date or date-time"#,
        ]
    );
}

#[test]
fn keeps_good_rows_and_quarantines_each_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = b"user_id,event_time,event_type,amount\n".to_vec();
    data.extend_from_slice(b"u1,2026-01-01 10:00:00,view,\n"); // line 2 ok
    data.extend_from_slice(b"u1,2026-13-01 10:00:00,view,\n"); // 3 bad time
    data.extend_from_slice(b",2026-01-01 10:00:00,view,\n"); // 4 no user
    data.extend_from_slice(b"u2,2026-01-01 10:00:00,purchase,abc\n"); // 5 bad amount
    data.extend_from_slice(b"u2,2026-01-01 10:00:00,view\n"); // 6 field count
    data.extend_from_slice(b"u\xff3,2026-01-01 10:00:00,view,\n"); // 7 utf-8
    data.extend_from_slice(b"u2,2026-01-02 10:00:00,purchase,12.5\n"); // 8 ok
    data.extend_from_slice(b"u2,2026-01-02 10:00:00,purchase,12.5\n"); // 9 duplicate
    let path = write(&dir, "events.csv", &data);
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    assert_eq!(out.stats.read, 8);
    assert_eq!(out.stats.kept, 2);
    assert_eq!(out.stats.duplicates, 1);
    assert_eq!(out.stats.quarantined, 5);
    let rows = quarantine_rows(&out);
    assert_eq!(rows[0].0, 3);
    assert_eq!(rows[0].1, "event_time");
    assert_eq!(
        rows[0].2,
        "`event_time` \"2026-13-01 10:00:00\" is not a date or date-time"
    );
    assert_eq!(rows[1], (4, "user_id".into(), "missing `user_id`".into()));
    assert_eq!(
        rows[2],
        (
            5,
            "amount".into(),
            "`amount` \"abc\" is not a finite number".into()
        )
    );
    assert_eq!(rows[3], (6, "".into(), "expected 4 fields, found 3".into()));
    assert_eq!(
        rows[4],
        (7, "user_id".into(), "invalid UTF-8 in `user_id`".into())
    );
    // The duplicate is not lost either: every row read is kept or in the quarantine.
    // In blocks of 4 rows, merged by line.
    let blocks: Vec<DataFrame> = out.not_kept(4).unwrap().map(Result::unwrap).collect();
    assert_eq!(
        blocks.iter().map(DataFrame::height).collect::<Vec<_>>(),
        [4, 2]
    );
    let mut not_kept = blocks[0].clone();
    not_kept.vstack_mut(&blocks[1]).unwrap();
    assert_eq!(out.stats.read, out.stats.kept + not_kept.height() as u64);
    let lines = not_kept.column("line").unwrap().u64().unwrap();
    assert_eq!(
        lines.iter().flatten().collect::<Vec<_>>(),
        [3, 4, 5, 6, 7, 9]
    );
    let reason = not_kept.column("reason").unwrap().str().unwrap().get(5);
    assert_eq!(
        reason,
        Some("a duplicate of line 8: the same in every column read")
    );
}

#[test]
fn each_duplicate_names_the_line_kept_in_its_place() {
    let dir = tempfile::tempdir().unwrap();
    // Three equal rows out of order, a fourth equal but for its amount, and a pair.
    let data = b"user_id,event_time,event_type,amount
        u2,2026-01-03 10:00:00,purchase,5
        u1,2026-01-02 10:00:00,purchase,12.5
        u2,2026-01-01 10:00:00,view,
        u1,2026-01-02 10:00:00,purchase,12.5
        u1,2026-01-02 10:00:00,purchase,12
        u1,2026-01-02 10:00:00,purchase,12.5
        u2,2026-01-03 10:00:00,purchase,5
";
    let path = write(&dir, "events.csv", data);
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    assert_eq!((out.stats.kept, out.stats.duplicates), (4, 3));
    let d = out.not_kept(100).unwrap().next().unwrap().unwrap();
    let lines = d.column("line").unwrap().u64().unwrap();
    let reasons = d.column("reason").unwrap().str().unwrap();
    let got: Vec<(u64, &str)> = lines
        .iter()
        .flatten()
        .zip(reasons.iter().flatten())
        .collect();
    let of = |n| format!("a duplicate of line {n}: the same in every column read");
    assert_eq!(
        got,
        [
            (5, of(3).as_str()),
            (7, of(3).as_str()),
            (8, of(2).as_str())
        ]
    );
}

#[test]
fn quarantines_amounts_and_ratings_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let data = b"user_id,event_time,event_type,amount,rating\n\
        u1,2026-01-01 10:00:00,purchase,1000000000000,\n\
        u1,2026-01-02 10:00:00,purchase,-1e12,\n\
        u1,2026-01-03 10:00:00,purchase,1.5e12,\n\
        u1,2026-01-04 10:00:00,purchase,-9e16,\n\
        u1,2026-01-05 10:00:00,rating,,1\n\
        u1,2026-01-06 10:00:00,rating,,5\n\
        u1,2026-01-07 10:00:00,rating,,0\n\
        u1,2026-01-08 10:00:00,rating,,5.5\n\
        u1,2026-01-09 10:00:00,rating,,1e308\n";
    let path = write(&dir, "events.csv", data);
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    assert_eq!(
        (out.stats.read, out.stats.kept, out.stats.quarantined),
        (9, 4, 5)
    );
    let reasons: Vec<(u64, String, String)> = quarantine_rows(&out);
    let beyond = "beyond a trillion, more than userlens sums";
    let outside = "outside the ratings' 1-5 (ratings on another scale: set `rating_scale`, \
                   such as [0.5, 5])";
    assert_eq!(
        reasons,
        [
            (
                4,
                "amount".into(),
                format!("`amount` \"1.5e12\" is {beyond}")
            ),
            (
                5,
                "amount".into(),
                format!("`amount` \"-9e16\" is {beyond}")
            ),
            (8, "rating".into(), format!("`rating` \"0\" is {outside}")),
            (9, "rating".into(), format!("`rating` \"5.5\" is {outside}")),
            (
                10,
                "rating".into(),
                format!("`rating` \"1e308\" is {outside}")
            ),
        ]
    );
}

#[test]
fn ratings_on_another_scale_are_mapped_onto_one_to_five() {
    let dir = tempfile::tempdir().unwrap();
    let data = b"user_id,event_time,event_type,rating\n\
        u1,2026-01-01 10:00:00,rating,0.5\n\
        u1,2026-01-02 10:00:00,rating,2.75\n\
        u1,2026-01-03 10:00:00,rating,5\n\
        u1,2026-01-04 10:00:00,rating,0\n\
        u1,2026-01-05 10:00:00,rating,5.5\n";
    let path = write(&dir, "events.csv", data);
    let params = SourceParams {
        rating_scale: Some([0.5, 5.0]),
        ..SourceParams::canonical(&path)
    };
    let out = ingest(&params.check().unwrap()).unwrap();
    let ratings: Vec<Option<f64>> = out
        .events
        .column("rating")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(ratings, [Some(1.0), Some(3.0), Some(5.0)]);
    let reasons: Vec<String> = quarantine_rows(&out).into_iter().map(|r| r.2).collect();
    assert_eq!(
        reasons,
        [
            "`rating` \"0\" is outside `rating_scale` [0.5, 5]",
            "`rating` \"5.5\" is outside `rating_scale` [0.5, 5]"
        ]
    );
    for scale in [
        [5.0, 1.0],
        [1.0, 1.0],
        [0.0, f64::INFINITY],
        [-1.7e308, 1.7e308],
    ] {
        let params = SourceParams {
            rating_scale: Some(scale),
            ..SourceParams::canonical(&path)
        };
        let error = params.check().unwrap_err().to_string();
        assert!(error.contains("`rating_scale`"), "{error}");
    }
}

#[test]
fn refuses_a_user_whose_amounts_add_up_past_what_cents_hold() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = String::from(
        "user_id,event_time,event_type,amount\nsmall,2026-01-01 10:00:00,purchase,5\n",
    );
    // 90,001 purchases of a trillion: each within bounds, their sum in cents not.
    for i in 0..90_001 {
        data.push_str(&format!("whale,2026-01-01 10:00:00.{i:06},purchase,1e12\n"));
    }
    let path = write(&dir, "events.csv", data.as_bytes());
    let checked = |path: &Path| {
        let out = ingest(&SourceParams::canonical(path).check().unwrap()).unwrap();
        assert_eq!(out.stats.read, 90_002);
        check_user_totals(&Events::Memory(out.events))
    };
    let error = checked(&path).unwrap_err();
    assert!(error.is_refusal(), "{error}");
    assert!(
        error.to_string().contains(
            "at least 1 user(s) have absolute amounts adding up to more than 9e16 (the first: `whale`)"
        ),
        "{error}"
    );
    // One purchase fewer adds up within the bound.
    let within = data
        .replacen(
            "small,2026-01-01 10:00:00,purchase,5\n",
            "small,2026-01-01 10:00:00,purchase,5\nsmall,2026-01-02 10:00:00,purchase,5\n",
            1,
        )
        .replacen("whale,2026-01-01 10:00:00.000000,purchase,1e12\n", "", 1);
    let path = write(&dir, "within.csv", within.as_bytes());
    assert!(checked(&path).is_ok());
    // Users within the bound whose amounts together pass it.
    let many = df!("user_id" => ["a", "b"], "amount" => [6e16, -6e16]).unwrap();
    assert!(check_user_totals(&Events::Memory(many)).is_ok());
}

#[test]
fn refuses_a_header_that_names_a_column_it_reads_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "events.csv",
        b"user_id,event_time,event_type,note,user_id,note\nx,2026-01-01,view,a,u1,b\n",
    );
    let err = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap_err();
    assert!(err.is_refusal());
    assert_eq!(
        err.to_string(),
        format!(
            "`{}` line 1: column `user_id` (read for `user_id`) is in the header twice, as \
             columns 1 and 5; rename one",
            path.display()
        )
    );
    // A repeated column nothing reads is no question.
    let path = write(
        &dir,
        "notes.csv",
        b"user_id,event_time,event_type,note,note\nu1,2026-01-01,view,a,b\n",
    );
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    assert_eq!(out.stats.kept, 1);
}

#[test]
fn canonical_columns_are_found_whatever_their_case() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "events.csv",
        b"USER_ID,Event_Time,event_type,Amount,Rating\nu1,2026-01-01 10:00:00,purchase,12.5,4\n",
    );
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    assert_eq!(text(&out, "user_id"), [Some("u1".to_string())]);
    assert_eq!(amounts(&out), [Some(12.5)]);
    let ratings = out.events.column("rating").unwrap().f64().unwrap().get(0);
    assert_eq!(ratings, Some(4.0));
    // The exact name wins over another case; two other cases are a guess.
    let path = write(
        &dir,
        "both.csv",
        b"user_id,event_time,event_type,AMOUNT,amount\nu1,2026-01-01,purchase,1,2\n",
    );
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    assert_eq!(amounts(&out), [Some(2.0)]);
    let path = write(
        &dir,
        "guess.csv",
        b"user_id,event_time,event_type,AMOUNT,Amount\nu1,2026-01-01,purchase,1,2\n",
    );
    let err = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap_err();
    assert!(err.is_refusal());
    assert!(
        err.to_string().contains(
            "columns `AMOUNT` (column 4) and `Amount` (column 5) both spell `amount`; rename one"
        ),
        "{err}"
    );
}

#[test]
fn refuses_a_quote_that_never_closes_and_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "events.csv",
        b"user_id,event_time,event_type,query\n\
          u1,2026-01-01 10:00:00,view,\n\
          u1,2026-01-01 10:05:00,search,\"oops\n\
          u2,2026-01-01 10:00:00,view,\n\
          u3,2026-01-01 10:00:00,view,\"\"a\"\"\n",
    );
    let err = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap_err();
    assert!(err.is_refusal());
    assert_eq!(
        err.to_string(),
        format!(
            "`{}` line 3: a quoted field opens in this row and runs to the end of the file \
             without closing; close the quote or remove it",
            path.display()
        )
    );
}

#[test]
fn rows_swallowed_whole_by_a_stray_quote_are_quarantined_with_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let input = "user_id,event_time,event_type,query,rating\n\
        u1,2026-01-01 10:00:00,search,\"q1\",\n\
        u2,2026-01-01 10:00:00,search,\"q2\n\
        x,2026-01-01 10:00:00,rating,,4\n\
        u3,2026-01-01 10:00:00,search,\"q3\",\n\
        u4,2026-01-01 10:00:00,search,\"two\nlines, one comma\",\n\
        u5,2026-01-01 10:00:00,search,\"great shop\nfast, cheap, kind, quick\",\n\
        u6,2026-01-01 10:00:00,search,,4,\"x\na,2026-01-01 10:00:00,b,c,d\"\n";
    let path = write(&dir, "events.csv", input.as_bytes());
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    // A comment of as many fields but no time is text; a row too wide is one.
    assert_eq!(
        (out.stats.read, out.stats.kept, out.stats.quarantined),
        (5, 3, 2)
    );
    let rows = quarantine_rows(&out);
    assert_eq!(
        rows[0],
        (
            3,
            String::new(),
            "a row over 3 lines: `query` holds a line that is a row of 5 fields, with a \
             time (a quoted field that does not close where it should?)"
                .to_string()
        )
    );
    assert!(
        rows[1].2.starts_with("expected 5 fields, found 6"),
        "{rows:?}"
    );
    // The rows run together are in the quarantine's raw text: nothing is lost.
    let raw = quarantine_raw(&out, 0);
    assert!(raw.contains("x,2026-01-01 10:00:00,rating,,4"), "{raw}");
    let users = text(&out, "user_id");
    assert_eq!(users, ["u1", "u4", "u5"].map(|u| Some(u.to_string())));
}

#[test]
fn a_row_joined_to_the_next_by_a_quote_that_closes_there_is_quarantined() {
    // The quote opened in u1's query closes inside u2's: u2's line, with the fields
    // after the quote, is a whole row.
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "events.csv",
        b"user_id,event_time,event_type,query,amount,rating\n\
          u0,2026-01-01 09:00:00,view,,,\n\
          u1,2026-02-01 10:00:00,search,\"6 inch pots,,\n\
          u2,2026-02-01 11:00:00,search,seed trays 12\",,\n",
    );
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    assert_eq!(
        (out.stats.read, out.stats.kept, out.stats.quarantined),
        (2, 1, 1)
    );
    let rows = quarantine_rows(&out);
    assert!(
        rows[0].2.starts_with("a row over 2 lines: `query`"),
        "{rows:?}"
    );
    assert!(quarantine_raw(&out, 0).contains("u2,2026-02-01 11:00:00"));
    // Prose and addresses over lines, written after `, `, are fields, not rows.
    let path = write(
        &dir,
        "prose.csv",
        b"user_id,event_time,event_type,query,amount,rating\n\
          u1,2026-02-01 10:00:00,search,\"gift for mum\nordered, 2026-01-03, shipped, 2026-01-05\",,\n\
          u2,2026-02-01 10:00:00,search,\"Ship to:\n12 Main St, 2026-01-03, Springfield, IL\",,\n",
    );
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    assert_eq!((out.stats.kept, out.stats.quarantined), (2, 0));
    // A row swallowed whole whose first field is blank is one too.
    let path = write(
        &dir,
        "blank_first.csv",
        b"order_id,user_id,event_time,event_type,query\n\
          o1,u1,2026-02-01 10:00:00,search,\"pots\n\
          ,u2,2026-02-01 11:00:00,search,trays\"\n",
    );
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    assert_eq!((out.stats.read, out.stats.quarantined), (1, 1));
}

#[test]
fn a_quote_open_at_the_end_of_a_file_without_a_last_line_end_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("open.csv", &b"user_id,event_time,event_type,query\nu1,2026-01-01 10:00:00,view,\nu2,2026-01-01 10:00:00,search,\"never closed"[..]),
        ("crlf.csv", b"user_id,event_time,event_type,query\r\nu1,2026-01-01 10:00:00,view,\r\nu2,2026-01-01 10:00:00,search,\"never, closed"),
    ] {
        let path = write(&dir, name, text);
        let err = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap_err();
        assert!(err.is_refusal(), "{name}: {err}");
        assert!(err.to_string().contains("line 3: a quoted field opens"), "{name}: {err}");
    }
    // Closed, or quoted and whole, the last line is a row.
    for (name, text) in [
        (
            "closed.csv",
            &b"user_id,event_time,event_type,query\nu2,2026-01-01 10:00:00,search,\"closed\""[..],
        ),
        (
            "inner.csv",
            b"user_id,event_time,event_type,query\nu2,2026-01-01 10:00:00,search,a\"b",
        ),
    ] {
        let path = write(&dir, name, text);
        let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
        assert_eq!(out.stats.kept, 1, "{name}");
    }
}

#[test]
fn a_row_run_over_lines_by_a_stray_quote_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "events.csv",
        b"user_id,event_time,event_type,query\n\
          u1,2026-01-01 10:05:00,search,\"oops\n\
          u2,2026-01-01 10:00:00,view\",x,y\n\
          u3,2026-01-01 10:00:00,view,\n",
    );
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    assert_eq!(
        (out.stats.read, out.stats.kept, out.stats.quarantined),
        (2, 1, 1)
    );
    assert_eq!(
        quarantine_rows(&out),
        [(
            2,
            String::new(),
            "expected 4 fields, found 6 in a row over 2 lines (a quoted field that does not \
             close where it should?)"
                .to_string()
        )]
    );
}

#[test]
fn sessionizes_on_a_thirty_minute_gap() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "e.csv",
        b"user_id,event_time,event_type\n\
          b,2026-01-01 10:00:00,view\n\
          a,2026-01-01 10:00:00,view\n\
          a,2026-01-01 10:29:00,view\n\
          a,2026-01-01 11:00:00,view\n\
          b,2026-01-01 10:10:00,view\n",
    );
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    let sessions: Vec<_> = out
        .events
        .column("session_id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .map(str::to_string)
        .collect();
    assert_eq!(sessions, ["a-s1", "a-s1", "a-s2", "b-s1", "b-s1"]);
}

#[test]
fn rows_without_a_session_id_are_sessionized_as_a_log_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let sessions = |data: &[u8]| -> Vec<String> {
        let path = write(&dir, "e.csv", data);
        let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
        let column = out
            .events
            .column("session_id")
            .unwrap()
            .str()
            .unwrap()
            .clone();
        column
            .iter()
            .map(|s| s.unwrap_or("null").to_string())
            .collect()
    };
    // The column, every value empty: as if it were not there.
    let blank = sessions(
        b"user_id,event_time,event_type,session_id\n\
          a,2026-01-01 10:00:00,view,\n\
          a,2026-01-01 10:29:00,view,\n\
          a,2026-01-01 11:00:00,view,\n",
    );
    assert_eq!(blank, ["a-s1", "a-s1", "a-s2"]);
    // Some given: kept, and the others made by the gap.
    let mixed = sessions(
        b"user_id,event_time,event_type,session_id\n\
          a,2026-01-01 10:00:00,view,web-1\n\
          a,2026-01-01 10:29:00,view,\n\
          a,2026-01-01 11:00:00,view,\n\
          b,2026-01-01 09:00:00,view,app-7\n",
    );
    assert_eq!(mixed, ["web-1", "a-s1", "a-s2", "app-7"]);
}

#[test]
fn reads_whitespace_aligned_text_with_crlf_and_constants() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "cdnow.txt",
        b" 00004 0001 19970101  2   29.33\r\n 00004 0001 19970118  2   29.73\r\n 00021 0002 19970101  3   63.34\r\n",
    );
    let params = purchase_ledger(
        path,
        r#"column_names = ["customer", "sample", "date", "cds", "dollars"]"#,
    );
    let out = ingest(&params.check().unwrap()).unwrap();
    assert_eq!(out.stats.read, 3);
    assert_eq!(out.stats.kept, 3);
    let users: Vec<_> = out
        .events
        .column("user_id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(users, ["00004", "00004", "00021"], "leading zeros stay");
    let amounts: Vec<f64> = amounts(&out).into_iter().flatten().collect();
    assert_eq!(amounts, [29.33, 29.73, 63.34]);
    let types = text(&out, "event_type");
    assert!(types.iter().all(|t| t.as_deref() == Some("purchase")));
}

#[test]
fn maps_names_and_event_types() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "e.csv",
        b"Customer;When;What\n7;2026-01-01T00:00:00Z;pageview\n",
    );
    let params: SourceParams = toml::from_str(
        r#"
        path = "x"
        delimiter = ";"
        columns = { user_id = "Customer", event_time = "When", event_type = "What" }
        event_names = { pageview = "view" }
        time_format = "rfc3339"
        "#,
    )
    .unwrap();
    let out = ingest(&SourceParams { path, ..params }.check().unwrap()).unwrap();
    assert_eq!(text(&out, "event_type"), [Some("view".to_string())]);
}

#[test]
fn a_lone_cr_in_a_quoted_field_is_no_line_end() {
    let dir = tempfile::tempdir().unwrap();
    let text = "user_id,event_time,event_type,query\n\
                u1,2026-01-01 10:00:00,search,\"a\rb\"\n\
                u1,2026-13-01 10:00:00,view,\n";
    let path = write(&dir, "e.csv", text.as_bytes());
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    // Line 3, as `grep -n` and editors count it.
    assert_eq!(quarantine_rows(&out)[0].0, 3);
    // How lines end is counted over the text's start, not taken from its first line
    // end: a quoted line end there, or a `\r\r\n` (CRLF converted twice), decides
    // nothing. Without a header, so that the first record may hold one.
    let rows = |bad: &str| format!("u2,{bad},view,");
    for (name, text, header, want) in [
        (
            "mac.csv",
            format!(
                "u0,2026-01-01 10:00:00,search,\"x\ny\"\ru1,2026-01-01 10:00:00,view,\r{}\r{}\r",
                rows("bad"),
                rows("bad2")
            ),
            false,
            [4, 5],
        ),
        (
            "lf.csv",
            format!(
                "u0,2026-01-01 10:00:00,search,\"x\ry\"\nu1,2026-01-01 10:00:00,view,\n{}\n{}\n",
                rows("bad"),
                rows("bad2")
            ),
            false,
            [3, 4],
        ),
        (
            "crcrlf.csv",
            format!(
                "user_id,event_time,event_type,query\r\r\nu1,2026-01-01 10:00:00,view,\r\r\n{}\r\r\n{}\r\r\n",
                rows("bad"),
                rows("bad2")
            ),
            true,
            [3, 4],
        ),
    ] {
        let path = write(&dir, name, text.as_bytes());
        let mut params = SourceParams::canonical(&path);
        params.header = Some(header);
        if !header {
            params.column_names = Some(
                ["user_id", "event_time", "event_type", "query"]
                    .map(String::from)
                    .to_vec(),
            );
        }
        params.max_quarantine_share = 1.0;
        let out = ingest(&params.check().unwrap()).unwrap();
        let lines: Vec<u64> = quarantine_rows(&out).iter().map(|r| r.0).collect();
        assert_eq!(lines, want, "{name}");
    }
}

#[test]
fn fill_down_gives_an_orders_later_lines_its_customer_and_time() {
    let dir = tempfile::tempdir().unwrap();
    // Shopify writes an order's customer and time on its first line only; #2 is a
    // guest's order, without an email on any line.
    let orders = "Name,Email,Paid at,Lineitem price\n\
                #1,a@x,2026-03-01 10:00:00,10\n\
                #1,,,5\n\
                #2,,2026-03-02 10:00:00,7\n\
                #2,,,3\n\
                #3,b@x,2026-03-03 10:00:00,4\n\
                #3,,,x\n";
    let path = write(&dir, "orders.csv", orders.as_bytes());
    let mapped = |fill: FillDown| {
        let mut params = SourceParams::canonical(&path);
        for (to, from) in [
            ("user_id", "Email"),
            ("event_time", "Paid at"),
            ("amount", "Lineitem price"),
        ] {
            params
                .columns
                .insert(to.into(), ColumnSource::Column(from.into()));
        }
        params.columns.insert(
            "event_type".into(),
            ColumnSource::Constant {
                constant: "purchase".into(),
            },
        );
        params.max_quarantine_share = 1.0;
        params.fill_down = Some(fill);
        params
    };
    let read = |within: Option<&str>| {
        let params = mapped(FillDown {
            columns: vec!["Email".into(), "Paid at".into()],
            within: within.map(String::from),
        });
        ingest(&params.check().unwrap()).unwrap()
    };
    let out = read(Some("Name"));
    assert_eq!(
        text(&out, "user_id"),
        ["a@x", "a@x", "b@x"].map(|u| Some(u.to_string()))
    );
    // The guest's lines are refused, not given #1's customer; a bad amount is
    // refused on a filled row too, its fields as filled.
    let q = quarantine_rows(&out);
    assert_eq!(
        q.iter().map(|r| r.0).collect::<Vec<_>>(),
        [4, 5, 7],
        "{q:?}"
    );
    assert_eq!(quarantine_raw(&out, 2), "#3,b@x,2026-03-03 10:00:00,x");
    // Without `within`, any blank takes the row before's value.
    let out = read(None);
    assert_eq!(text(&out, "user_id").len(), 5);
    // A row of another width between an order's lines is refused alone.
    let broken = "Name,Email,Paid at,Lineitem price\n\
                  #1,a@x,2026-03-01 10:00:00,10\n\
                  #1,,\n\
                  #1,,,5\n";
    std::fs::write(&path, broken).unwrap();
    let out = read(Some("Name"));
    assert_eq!(
        text(&out, "user_id"),
        ["a@x", "a@x"].map(|u| Some(u.to_string()))
    );
    assert_eq!(quarantine_rows(&out).len(), 1);
    // Checked: only for CSV, with columns to fill, each in the header, `within`
    // not among them.
    for (name, fill) in [
        ("e.parquet", vec!["Email"]),
        ("e.txt", vec!["Email"]),
        ("e.csv", vec![]),
        ("e.csv", vec!["Email", "Name"]),
    ] {
        let mut params = SourceParams::canonical(dir.path().join(name));
        params.fill_down = Some(FillDown {
            columns: fill.into_iter().map(String::from).collect(),
            within: Some("Name".into()),
        });
        let err = params.check().unwrap_err().to_string();
        assert!(err.contains("fill_down"), "{name}: {err}");
    }
    let params = mapped(FillDown {
        columns: vec!["Emial".into()],
        within: None,
    });
    let err = ingest(&params.check().unwrap()).unwrap_err().to_string();
    assert!(
        err.contains("no column `Emial` (mapped to `fill_down`)"),
        "{err}"
    );
}

#[test]
fn a_tsv_file_is_read_with_tabs() {
    let dir = tempfile::tempdir().unwrap();
    let tsv = b"user_id\tevent_time\tevent_type\nu1\t2026-01-01 10:00:00\tview\n";
    for name in ["e.tsv", "e.TAB"] {
        let path = write(&dir, name, tsv);
        let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
        assert_eq!(text(&out, "user_id"), [Some("u1".to_string())], "{name}");
    }
    // A comma file named `.tsv` is told so.
    let path = write(
        &dir,
        "comma.tsv",
        b"user_id,event_time,event_type\nu1,2026-01-01,view\n",
    );
    let err = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap_err();
    assert!(
        err.to_string().ends_with(
            "line 1: the header has no tab but has `,`: set `delimiter = \",\"` for this source"
        ),
        "{err}"
    );
    // A delimiter set is the one read.
    let path = write(
        &dir,
        "semi.tsv",
        b"user_id;event_time;event_type\nu1;2026-01-01;view\n",
    );
    let mut params = SourceParams::canonical(&path);
    params.delimiter = Some(";".into());
    assert_eq!(ingest(&params.check().unwrap()).unwrap().stats.kept, 1);
}

#[test]
fn missing_columns_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "e.csv",
        b"user,event_time,event_type\nu,2026-01-01,view\n",
    );
    let err = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "`{}`: required column `user_id` is missing (map it under `columns` or add it to \
             the file); the columns are: user, event_time, event_type",
            path.display()
        )
    );
    // Excel's tab-delimited `.txt` is read as text without a header: what to set.
    let txt = write(
        &dir,
        "e.txt",
        b"user_id\tevent_time\tevent_type\nu\t2026-01-01\tview\n",
    );
    let err = ingest(&SourceParams::canonical(&txt).check().unwrap()).unwrap_err();
    assert!(
        err.to_string().ends_with(
            "the columns are: column_1, column_2, column_3 (read as whitespace-aligned text \
             without a header, as a `.txt` file is: if its first line names the columns, set \
             `header = true`, or `format = \"csv\"` with `delimiter = \"\\t\"` for a \
             tab-delimited export)"
        ),
        "{err}"
    );
    let mut params = SourceParams::canonical(&path);
    params
        .columns
        .insert("user_id".into(), ColumnSource::Column("customer".into()));
    let err = ingest(&params.check().unwrap()).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("line 1: no column `customer` (mapped to `user_id`); the columns are: user, event_time, event_type"),
        "{err}"
    );
    params
        .columns
        .insert("user_id".into(), ColumnSource::Column("usr".into()));
    let err = ingest(&params.check().unwrap()).unwrap_err();
    assert!(
        err.to_string().contains(
            "no column `usr` (mapped to `user_id`); did you mean `user`? the columns are"
        ),
        "{err}"
    );
}

#[test]
fn check_refuses_expressions_longer_than_the_bound() {
    let long = vec!["Quantity < -1"; 400].join(" or ");
    let mut params = SourceParams::canonical("e.csv");
    params.refund_when = Some(long.clone());
    let err = params.check().unwrap_err().to_string();
    assert!(
        err.contains("`refund_when` is 6796 bytes long, more than the 4096 allowed"),
        "{err}"
    );
    let mut params = SourceParams::canonical("e.csv");
    let sum = vec!["Quantity"; 600].join(" + ");
    params
        .columns
        .insert("amount".into(), ColumnSource::Derived { expr: sum });
    let err = params.check().unwrap_err().to_string();
    assert!(err.contains("`columns.amount` is 6597 bytes long"), "{err}");
}

#[test]
fn check_refuses_unknown_canonical_names_with_a_hint() {
    let mut params = SourceParams::canonical("e.csv");
    params
        .columns
        .insert("user_di".into(), ColumnSource::Column("x".into()));
    let err = params.check().unwrap_err().to_string();
    assert!(
        err.starts_with("`columns.user_di` is not a canonical column (did you mean `user_id`?)"),
        "{err}"
    );
}

#[test]
fn reads_gzip_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let csv = b"user_id,event_time,event_type,amount\nu1,2026-01-01 10:00:00,purchase,3.5\nu2,2026-01-02,view,\n";
    let gz_path = dir.path().join("e.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz_path).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(csv).unwrap();
    gz.finish().unwrap();
    let from_gz = ingest(&SourceParams::canonical(&gz_path).check().unwrap()).unwrap();
    assert_eq!(from_gz.stats.kept, 2);

    let pq_path = dir.path().join("e.parquet");
    let mut df = from_gz.events.clone();
    ParquetWriter::new(std::fs::File::create(&pq_path).unwrap())
        .finish(&mut df)
        .unwrap();
    let from_pq = ingest(&SourceParams::canonical(&pq_path).check().unwrap()).unwrap();
    assert_eq!(from_pq.events, from_gz.events);
}

#[test]
fn parquet_dates_too_far_out_to_write_as_text_are_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("far.parquet");
    let millis = Column::new(
        "event_time".into(),
        [100_000_000_000_000_000i64, 1_767_225_600_000],
    )
    .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
    .unwrap();
    let days = Column::new("day".into(), [20_454i32, i32::MAX])
        .cast(&DataType::Date)
        .unwrap();
    let mut df = DataFrame::new(
        2,
        vec![
            Column::new("user_id".into(), ["u1", "u2"]),
            millis,
            Column::new("event_type".into(), ["view", "view"]),
            days,
        ],
    )
    .unwrap();
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut df)
        .unwrap();
    let params: SourceParams = toml::from_str(
        r#"
        path = "placeholder"
        [columns]
        item_id = "day"
        "#,
    )
    .unwrap();
    let params = SourceParams { path, ..params };
    let out = ingest(&params.check().unwrap()).unwrap();
    let outside = "is a date or time outside the years 1-9999";
    assert_eq!(
        quarantine_rows(&out),
        vec![
            (1, "event_time".into(), format!("`event_time` {outside}")),
            (2, "item_id".into(), format!("`day` {outside}")),
        ]
    );
    assert_eq!(out.stats.read, 2);
}

#[test]
fn a_parquet_file_that_makes_polars_panic_is_refused() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/corrupt.parquet");
    let err = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap_err();
    assert!(matches!(err, Error::BadParquet { .. }), "{err}");
    assert!(err.is_refusal());
    // Polars panics on it, or on some runs fails first on another of its threads.
    let source = std::error::Error::source(&err).map(|s| s.to_string());
    assert!(source.is_some_and(|s| !s.is_empty()), "{err}");
}

#[test]
fn blank_constants_and_event_names_are_refused_and_names_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "e.csv",
        b"user_id,event_time,event_type\nu1,2026-01-01,view\nu2,2026-01-02,buy\n",
    );
    let params = |settings: &str| -> SourceParams {
        let params: SourceParams =
            toml::from_str(&format!("path = \"placeholder\"\n{settings}")).unwrap();
        SourceParams {
            path: path.clone(),
            ..params
        }
    };
    for settings in [
        "event_names = { view = \"  \" }",
        "[columns]\nevent_type = { constant = \"\" }",
        "[columns]\nuser_id = { constant = \" \" }",
    ] {
        let err = params(settings).check().unwrap_err().to_string();
        assert!(err.contains("blank text"), "{settings}: {err}");
    }
    let source =
        params("event_names = { buy = \" purchase \" }\n[columns]\nquery = { constant = \" x \" }");
    let out = ingest(&source.check().unwrap()).unwrap();
    assert_eq!(
        text(&out, "event_type"),
        [Some("view".to_string()), Some("purchase".to_string())]
    );
    assert_eq!(
        text(&out, "query"),
        [Some("x".to_string()), Some("x".to_string())]
    );
}

#[test]
fn formats_are_guessed_from_extensions_in_any_case() {
    for (name, format) in [
        ("UP.PARQUET", SourceFormat::Parquet),
        ("up.Parquet.GZ", SourceFormat::Parquet),
        ("E.JSONL", SourceFormat::Ndjson),
        ("e.TXT", SourceFormat::Text),
        ("E.CSV", SourceFormat::Csv),
    ] {
        assert_eq!(guess_format(Path::new(name)), format, "{name}");
    }
}

#[test]
fn quality_gate_and_empty_input() {
    let stats = IngestStats {
        read: 10,
        kept: 5,
        quarantined: 5,
        duplicates: 0,
        files: vec![],
        notes: vec![],
    };
    let quarantine = df!(
        "file" => ["e.csv"; 5],
        "line" => [2u64, 3, 5, 8, 9],
        "column" => ["amount", "category", "", "category", "category"],
        "reason" => [
            "`amount` \"x\" is not a finite number",
            "invalid UTF-8 in `category`",
            "expected 4 fields, found 3",
            "invalid UTF-8 in `category`",
            "invalid UTF-8 in `category`",
        ],
        "raw" => [""; 5],
    )
    .unwrap();
    let err = stats.check_gate(0.1, &quarantine).unwrap_err().to_string();
    assert_eq!(
        err,
        "5 of 10 rows (50.0%) of the input were quarantined, more than the allowed 10.0%; \
         most for `category` (3 rows), such as line 3 of `e.csv`: invalid UTF-8 in `category` (is the \
         file in another encoding, such as Windows-1252? `iconv -f windows-1252 -t utf-8` \
         converts it); see quarantine.csv"
    );
    let whole_rows = quarantine.slice(2, 1);
    let err = stats.check_gate(0.1, &whole_rows).unwrap_err().to_string();
    assert!(
        err.contains(
            "; most for the row (1 row), such as line 5 of `e.csv`: expected 4 fields, found 3;"
        ),
        "{err}"
    );
    assert!(stats.check_gate(0.5, &quarantine).is_ok());
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "e.csv", b"");
    let err = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("`{}` is empty: expected a header line", path.display())
    );
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes after a canonical header are kept, quarantined or counted as
        /// duplicates: never a panic, and nothing lost.
        #[test]
        fn arbitrary_bytes_are_accounted_for(body in proptest::collection::vec(any::<u8>(), 0..600),
                                             lines in proptest::collection::vec("[a-z0-9]{0,3},20[0-9]{2}-0[1-9]-[0-3][0-9]( [0-2][0-9]:[0-5][0-9]:[0-5][0-9])?,(view|purchase|),[0-9.e-]{0,5}", 0..20)) {
            let dir = tempfile::tempdir().unwrap();
            let mut data = b"user_id,event_time,event_type,amount\n".to_vec();
            for line in &lines {
                data.extend_from_slice(line.as_bytes());
                data.push(b'\n');
            }
            data.extend_from_slice(&body);
            let path = write(&dir, "fuzz.csv", &data);
            if let Ok(out) = ingest(&SourceParams::canonical(&path).check().unwrap()) {
                let s = &out.stats;
                prop_assert_eq!(s.read, s.kept + s.quarantined + s.duplicates);
                prop_assert_eq!(out.quarantine.height() as u64, s.quarantined);
            }
        }

        /// The whitespace-aligned reader takes any bytes too.
        #[test]
        fn arbitrary_text_files_are_accounted_for(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let dir = tempfile::tempdir().unwrap();
            let path = write(&dir, "fuzz.txt", &body);
            let mut params = SourceParams::canonical(&path);
            params.column_names = Some(vec!["user_id".into(), "event_time".into(), "event_type".into()]);
            if let Ok(out) = ingest(&params.check().unwrap()) {
                let s = &out.stats;
                prop_assert_eq!(s.read, s.kept + s.quarantined + s.duplicates);
            }
        }
    }
}

#[test]
fn drops_interleaved_duplicates_and_only_those() {
    let dir = tempfile::tempdir().unwrap();
    // Same user and second: A, B, A again, B with -0 for 0, and C that differs from A
    // only in its amount; the repeated A and the -0 B are the duplicates.
    let data = b"user_id,event_time,event_type,amount\n\
        u1,2026-01-02 10:00:00,purchase,5\n\
        u1,2026-01-02 10:00:00,purchase,0\n\
        u1,2026-01-02 10:00:00,purchase,5\n\
        u1,2026-01-02 10:00:00,purchase,-0\n\
        u1,2026-01-02 10:00:00,purchase,5.5\n\
        u0,2026-01-02 09:00:00,view,\n";
    let path = write(&dir, "dups.csv", data);
    let source = SourceParams::canonical(&path).check().unwrap();
    let out = ingest(&source).unwrap();
    assert_eq!(out.stats.read, 6);
    assert_eq!(out.stats.duplicates, 2);
    assert_eq!(out.stats.kept, 4);
    let amounts = amounts(&out);
    let mut u1: Vec<f64> = amounts[1..].iter().map(|a| a.unwrap()).collect();
    u1.sort_by(f64::total_cmp);
    assert_eq!(amounts[0], None);
    assert_eq!(u1, vec![0.0, 5.0, 5.5]);
    // kept as read when asked
    let mut params = SourceParams::canonical(&path);
    params.drop_duplicates = false;
    let all = ingest(&params.check().unwrap()).unwrap();
    assert_eq!((all.stats.kept, all.stats.duplicates), (6, 0));
    assert!(
        !all.events
            .get_column_names()
            .iter()
            .any(|c| c.starts_with("__"))
    );
}

#[test]
fn events_already_in_order_are_kept_as_a_sort_would_leave_them() {
    let dir = tempfile::tempdir().unwrap();
    let header = "user_id,event_time,event_type,amount\n";
    let mut rows = Vec::new();
    for i in 0..3000u32 {
        let (user, minute) = (i / 60, i % 60);
        let row = format!(
            "u{user:03},2026-01-02 10:{minute:02}:00,purchase,{}.5\n",
            i % 7
        );
        if i % 50 == 7 {
            rows.push(row.clone()); // an exact duplicate, next to its row
        }
        rows.push(row);
    }
    let in_order = format!("{header}{}", rows.concat());
    let reversed = format!("{header}{}", rows.iter().rev().cloned().collect::<String>());
    let mut results = Vec::new();
    for (name, text) in [("in_order.csv", &in_order), ("reversed.csv", &reversed)] {
        let path = write(&dir, name, text.as_bytes());
        let source = SourceParams::canonical(&path).check().unwrap();
        // on several threads, so the events come in one chunk per part
        let parsed = read::read_csv_with(&source, &mut |_, _| {}, 0, read::Keep::Memory).unwrap();
        assert!(parsed.events.first_col_n_chunks() > 1, "{name}");
        let ordered = matches!(
            order::ingest_order(&mut parsed.events.clone()).unwrap(),
            order::Order::Kept
        );
        assert_eq!(ordered, name == "in_order.csv");
        let before = parsed.events.height();
        let events = finish_events(parsed.events, parsed.has_session, source.gap_micros(), true)
            .unwrap()
            .events;
        assert_eq!(before - events.height(), 60, "{name}: duplicates dropped");
        // Events in order keep the reader's chunks (no copy); sorted ones are one.
        assert_eq!(events.first_col_n_chunks() > 1, name == "in_order.csv");
        results.push(events);
    }
    assert!(results[0].equals_missing(&results[1]));
}

mod sort_order {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The counting sort by user gives the order of polars' stable sort by user,
        /// time and row hash, over a table in two chunks with ties on every key.
        #[test]
        fn ingest_order_equals_a_stable_sort(
            rows in proptest::collection::vec((0u8..6, 0i64..4, 0u64..3), 1..200),
            split in 0usize..200,
        ) {
            let users: Vec<String> = rows.iter().map(|r| format!("u{}", r.0)).collect();
            let times: Vec<i64> = rows.iter().map(|r| r.1).collect();
            let hashes: Vec<u64> = rows.iter().map(|r| r.2).collect();
            let position: Vec<u32> = (0..rows.len() as u32).collect();
            let time = Int64Chunked::from_vec(columns::EVENT_TIME.into(), times)
                .into_datetime(TimeUnit::Microseconds, None)
                .into_column();
            let all = DataFrame::new(
                rows.len(),
                vec![
                    Column::new(columns::USER_ID.into(), users),
                    time,
                    Column::new(read::ROW_HASH.into(), hashes),
                    Column::new("position".into(), position),
                ],
            )
            .unwrap();
            let split = split.min(rows.len());
            let mut events = all.slice(0, split);
            events.vstack_mut(&all.slice(split as i64, rows.len() - split)).unwrap();
            let expected = all
                .sort(
                    [columns::USER_ID, columns::EVENT_TIME, read::ROW_HASH],
                    SortMultipleOptions::default().with_maintain_order(true),
                )
                .unwrap();
            let mut ordered = events.clone();
            let (kept, got) = match order::ingest_order(&mut ordered).unwrap() {
                order::Order::Kept => (true, events.clone()),
                order::Order::Rows(rows) => (false, events.take(&rows).unwrap()),
                order::Order::Sort => panic!("no key is null"),
            };
            prop_assert!(got.equals_missing(&expected), "{got}\n{expected}");
            prop_assert_eq!(kept, got.equals_missing(&events));
        }
    }
}

/// `text` with every seventh line end a lone `\r` (one that would not make a `\r\n`).
fn some_lone_cr(text: &str) -> String {
    let mut ends = 0;
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        let lone = c == '\n' && bytes.get(i + 1) != Some(&b'\n') && {
            ends += 1;
            ends % 7 == 0
        };
        out.push(if lone { '\r' } else { c });
    }
    out
}

#[test]
fn reading_on_several_threads_equals_one_thread() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = b"user_id,event_time,event_type,amount\n".to_vec();
    for i in 0..3000u32 {
        let line = match i % 97 {
            // A NUL byte: the fields of its part's block are checked one by one,
            // the other parts' a block at a time.
            _ if i == 200 => format!("u{:03},2026-01-03 10:00:00,vi\0ew,\n", i % 50),
            // A bad row right after blank lines, too.
            13 | 32 => format!("u{:03},2026-13-40 10:00:00,view,\n", i % 50),
            29 => format!("u{:03},2026-01-02 10:00:00,view\n", i % 50),
            31 => "\n\n".to_string(),
            // Padding, some of it not ASCII.
            41 => format!(" u{:03} ,2026-01-04 10:00:00\t,\u{a0}view,1.5\n", i % 50),
            _ => format!(
                "u{:03},2026-01-{:02} {:02}:{:02}:00,purchase,{}.5\n",
                i % 50,
                1 + i % 28,
                i % 24,
                i % 60,
                i % 7
            ),
        };
        data.extend_from_slice(line.as_bytes());
    }
    let text = String::from_utf8(data.clone()).unwrap();
    for (name, bytes) in [
        ("plain.csv", data.clone()),
        ("crlf.csv", text.replace('\n', "\r\n").into_bytes()),
        ("cr.csv", text.replace('\n', "\r").into_bytes()),
        ("some_cr.csv", some_lone_cr(&text).into_bytes()),
    ] {
        let path = write(&dir, name, &bytes);
        let source = SourceParams::canonical(&path).check().unwrap();
        let one =
            read::read_csv_with(&source, &mut |_, _| {}, u64::MAX, read::Keep::Memory).unwrap();
        let mut last = (0, 0);
        let many =
            read::read_csv_with(&source, &mut |d, t| last = (d, t), 0, read::Keep::Memory).unwrap();
        assert_eq!(last, (bytes.len() as u64, bytes.len() as u64), "{name}");
        assert_eq!(one.read, many.read, "{name}");
        assert!(one.events.equals_missing(&many.events), "{name}");
        assert!(
            one.quarantine.equals_missing(&many.quarantine),
            "{name}: {:?}\n{:?}",
            one.quarantine.head(Some(3)),
            many.quarantine.head(Some(3))
        );
        assert!(one.quarantine.height() > 50, "{name}");
        let lines = one
            .quarantine
            .column("line")
            .unwrap()
            .u64()
            .unwrap()
            .clone();
        // The first bad row is the 14th data row: line 15, but where a lone `\r` in a
        // file of `\n` line ends joins two rows on one line, as editors show them.
        if name != "some_cr.csv" {
            assert_eq!(lines.get(0), Some(15), "{name}");
        }
        // Every refused row is on the line it names, the blank lines before it
        // counted: lines end at `\n`, and at `\r` only in the old Mac file.
        let file_text = String::from_utf8(bytes.clone()).unwrap();
        let end = if name == "cr.csv" { '\r' } else { '\n' };
        let file_lines: Vec<&str> = file_text.split(end).collect();
        let raws = one.quarantine.column("raw").unwrap().str().unwrap().clone();
        for (line, raw) in lines.iter().zip(raws.iter()) {
            let (line, raw) = (line.unwrap() as usize, raw.unwrap());
            // (The quarantine shows a NUL byte as `\0`.)
            let in_file = file_lines[line - 1].replace('\0', "\\0");
            let mut records = in_file.trim_end_matches('\r').split('\r');
            assert!(
                records.any(|r| r == raw),
                "{name}: line {line}: {in_file:?} {raw:?}"
            );
        }
    }
}

/// The events of an out-of-core ingest as one table, sorted like an in-memory one.
fn parts_as_one(events: &Events) -> DataFrame {
    concat(events.parts().unwrap(), UnionArgs::default())
        .unwrap()
        .sort(
            [columns::USER_ID, columns::EVENT_TIME],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()
        .unwrap()
}

#[test]
fn out_of_core_ingest_equals_the_in_memory_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = b"user_id,event_time,event_type,category,amount\n".to_vec();
    for i in 0..2000u32 {
        let line = match i % 89 {
            // bad rows, duplicates of rows far apart, sessions to make (no session column)
            11 => format!("u{:03},2026-13-40 10:00:00,view,,\n", i % 40),
            23 => "u007,2026-01-05 10:00:00,purchase,toys,9.5\n".to_string(),
            _ => format!(
                "u{:03},2026-01-{:02} {:02}:{:02}:00,{},c{},{}\n",
                i % 40,
                1 + i % 28,
                (i / 7) % 24,
                i % 60,
                if i % 5 == 0 { "purchase" } else { "view" },
                i % 6,
                if i % 5 == 0 { "3.25" } else { "" }
            ),
        };
        data.extend_from_slice(line.as_bytes());
    }
    let path = write(&dir, "events.csv", &data);
    let source = SourceParams::canonical(&path).check().unwrap();
    let memory = ingest(&source).unwrap();
    assert!(memory.stats.duplicates > 10 && memory.stats.quarantined > 10);
    // One reader thread or one per core, each spilling every 64 kept rows.
    for (partitions, parallel_min_bytes) in [(1, u64::MAX), (3, u64::MAX), (7, 0), (2, 0)] {
        let parts_dir = dir.path().join(format!("parts-{partitions}"));
        let plan = spill::Plan {
            dir: parts_dir.join("spill"),
            partitions,
            chunk_rows: 64,
        };
        let disk = ingest_out_of_core(
            &source,
            &parts_dir,
            plan,
            parallel_min_bytes,
            &mut |_, _| {},
        )
        .unwrap();
        let Events::Parts { files, rows } = &disk.events else {
            panic!("expected parts");
        };
        assert_eq!(*rows, memory.stats.kept);
        assert!(files.len() <= partitions as usize && !files.is_empty());
        assert!(!parts_dir.join("spill").exists(), "the spill is removed");
        assert_eq!(disk.stats, memory.stats, "{partitions} partitions");
        assert!(disk.quarantine.equals_missing(&memory.quarantine));
        assert_eq!(disk.duplicates, memory.duplicates);
        let events = parts_as_one(&disk.events);
        assert!(
            events.equals_missing(&memory.events),
            "{partitions} partitions:\n{events:?}\n{:?}",
            memory.events
        );
        // every user is in exactly one part
        let mut seen = std::collections::BTreeSet::new();
        for part in disk.events.parts().unwrap() {
            let users = part.collect().unwrap();
            let users = users.column(columns::USER_ID).unwrap().unique().unwrap();
            for user in users.str().unwrap().iter().flatten() {
                assert!(seen.insert(user.to_string()), "{user} in two parts");
            }
        }
    }
    // Small sources stay in memory.
    let small = ingest_into(&source, &dir.path().join("small"), &mut |_, _| {}).unwrap();
    assert!(matches!(small.events, Events::Memory(ref df) if df.equals_missing(&memory.events)));
}

#[test]
fn repeated_and_swapped_values_keep_their_own_codes() {
    // The reader reuses a column's last code for a repeat: a value must come back
    // as itself after repeats, gaps and the same text in another column.
    let dir = tempfile::tempdir().unwrap();
    let data = b"user_id,event_time,event_type,item_id,category\n\
        u1,2026-01-01 10:00:00,view,a,x\n\
        u1,2026-01-01 10:01:00,view,a,x\n\
        u1,2026-01-01 10:02:00,view,x,a\n\
        u1,2026-01-01 10:03:00,search,b,a\n\
        u1,2026-01-01 10:04:00,view,a,\n\
        u1,2026-01-01 10:05:00,view,,x\n\
        u1,2026-01-01 10:06:00,view,a,x\n";
    let path = write(&dir, "events.csv", data);
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    let text = |name: &str| -> Vec<Option<String>> {
        let strings = out.events.column(name).unwrap().cast(&DataType::String);
        let strings = strings.unwrap();
        let strings = strings.str().unwrap().iter();
        strings.map(|v| v.map(str::to_string)).collect()
    };
    let col = |values: &[&str]| -> Vec<Option<String>> {
        let value = |v: &&str| (!v.is_empty()).then(|| v.to_string());
        values.iter().map(value).collect()
    };
    assert_eq!(
        text(columns::ITEM_ID),
        col(&["a", "a", "x", "b", "a", "", "a"])
    );
    assert_eq!(
        text(columns::CATEGORY),
        col(&["x", "x", "a", "a", "", "x", "x"])
    );
    assert_eq!(
        text(columns::EVENT_TYPE),
        col(&["view", "view", "view", "search", "view", "view", "view"])
    );
}

#[test]
fn categories_and_queries_are_held_as_dictionary_codes() {
    let dir = tempfile::tempdir().unwrap();
    let data = b"user_id,event_time,event_type,category,query\n\
        u2,2026-01-01 10:00:00,view,toys,\n\
        u1,2026-01-01 11:00:00,search,,red ball\n\
        u1,2026-01-01 09:00:00,view,books,\n\
        u2,2026-01-02 10:00:00,search,toys,red ball\n";
    let path = write(&dir, "events.csv", data);
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    let text = |events: &DataFrame, name: &str| -> Vec<Option<String>> {
        let column = events.column(name).unwrap();
        assert!(
            matches!(column.dtype(), DataType::Categorical(..)),
            "{name}: {}",
            column.dtype()
        );
        let strings = column.cast(&DataType::String).unwrap();
        let strings = strings.str().unwrap().iter();
        strings.map(|v| v.map(str::to_string)).collect()
    };
    let some = |v: &str| Some(v.to_string());
    // In user and time order.
    let categories = [some("books"), None, some("toys"), some("toys")];
    let queries = [None, some("red ball"), None, some("red ball")];
    assert_eq!(text(&out.events, columns::CATEGORY), categories);
    assert_eq!(text(&out.events, columns::QUERY), queries);
    assert_eq!(
        out.events.column(columns::USER_ID).unwrap().dtype(),
        &DataType::String
    );

    // A Parquet source's strings, in two chunks, become codes too.
    let mut plain = out.events.slice(0, 2);
    plain.vstack_mut(&out.events.slice(2, 2)).unwrap();
    for name in [columns::CATEGORY, columns::QUERY] {
        let strings = plain.column(name).unwrap().cast(&DataType::String).unwrap();
        plain.replace(name, strings).unwrap();
    }
    let pq_path = dir.path().join("events.parquet");
    ParquetWriter::new(std::fs::File::create(&pq_path).unwrap())
        .with_row_group_size(Some(2))
        .finish(&mut plain)
        .unwrap();
    let from_pq = ingest(&SourceParams::canonical(&pq_path).check().unwrap()).unwrap();
    assert_eq!(text(&from_pq.events, columns::CATEGORY), categories);
    assert_eq!(text(&from_pq.events, columns::QUERY), queries);
}

#[test]
fn out_of_core_reads_whitespace_aligned_text_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = Vec::new();
    for i in 0..600u32 {
        // a ledger with identical purchases (kept, `drop_duplicates = false`) and a bad date
        let date = if i % 97 == 5 {
            "19971340".to_string()
        } else {
            format!("1997{:02}{:02}", 1 + i % 12, 1 + i % 28)
        };
        body.extend_from_slice(format!(" {:05} {date} {}.50\n", i % 45, i % 3).as_bytes());
    }
    let path = write(&dir, "ledger.txt", &body);
    let source = purchase_ledger(
        path,
        r#"column_names = ["customer", "date", "dollars"]
        drop_duplicates = false"#,
    )
    .check()
    .unwrap();
    let memory = ingest(&source).unwrap();
    assert!(memory.stats.quarantined > 0);
    let parts_dir = dir.path().join("parts");
    let plan = spill::Plan {
        dir: parts_dir.join("spill"),
        partitions: 4,
        chunk_rows: 50,
    };
    let disk = ingest_out_of_core(&source, &parts_dir, plan, u64::MAX, &mut |_, _| {}).unwrap();
    assert_eq!(disk.stats, memory.stats);
    assert!(disk.quarantine.equals_missing(&memory.quarantine));
    assert!(parts_as_one(&disk.events).equals_missing(&memory.events));
}

#[test]
fn a_gzip_source_goes_out_of_core_once_its_text_passes_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    // 36,000 rows (1.1 MB of text) of 200 users that gzip squeezes to some 130 kB:
    // its file size says nothing of the memory its rows take.
    let mut text = b"user_id,event_time,event_type,amount\n".to_vec();
    for i in 0..36_000u32 {
        let amount = if i % 3 == 0 { "4.5" } else { "" };
        let line = match i % 997 {
            5 => format!("u{:03},2026-13-01 00:00:00,view,\n", i % 200),
            _ => format!(
                "u{:03},2026-02-{:02} {:02}:{:02}:00,view,{amount}\n",
                i % 200,
                1 + (i / 200) % 28,
                (i / 7) % 24,
                i % 60
            ),
        };
        text.extend_from_slice(line.as_bytes());
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&text).unwrap();
    let gz = gz.finish().unwrap();
    assert!(
        gz.len() * 6 < 1 << 20,
        "the old estimate was under a megabyte"
    );
    let path = write(&dir, "events.csv.gz", &gz);
    let mut params = SourceParams::canonical(&path);
    let memory = ingest(&params.check().unwrap()).unwrap();
    assert!(memory.stats.quarantined > 10 && memory.stats.duplicates > 0);
    params.out_of_core_above_mb = Some(1);
    let source = params.check().unwrap();
    assert_eq!(
        out_of_core_bytes(&source).unwrap(),
        None,
        "decided as it is read"
    );
    let parts_dir = dir.path().join("parts");
    std::fs::create_dir_all(parts_dir.join("left-over")).unwrap();
    let disk = ingest_into(&source, &parts_dir, &mut |_, _| {}).unwrap();
    let Events::Parts { files, rows } = &disk.events else {
        panic!("expected parts");
    };
    assert_eq!(*rows, memory.stats.kept);
    // 1.1 MB estimated from the inflation so far: two partitions of under 1 MB.
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(!parts_dir.join("spill").exists(), "the spill is removed");
    assert!(
        !parts_dir.join("left-over").exists(),
        "the folder is emptied first"
    );
    assert_eq!(disk.stats, memory.stats);
    assert!(disk.quarantine.equals_missing(&memory.quarantine));
    assert!(parts_as_one(&disk.events).equals_missing(&memory.events));
    // Within the budget, it stays in memory.
    params.out_of_core_above_mb = Some(2);
    let source = params.check().unwrap();
    let small = ingest_into(&source, &dir.path().join("small"), &mut |_, _| {}).unwrap();
    assert!(matches!(small.events, Events::Memory(ref df) if df.equals_missing(&memory.events)));
}

#[test]
fn a_gzip_text_source_goes_out_of_core_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = Vec::new();
    for i in 0..8_000u32 {
        let line = format!(
            " {:05} 1997{:02}{:02} {}.50\n",
            i % 300,
            1 + i % 12,
            1 + i % 28,
            i % 3
        );
        body.extend_from_slice(line.as_bytes());
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&body).unwrap();
    let path = write(&dir, "ledger.txt", &gz.finish().unwrap());
    let mut params = purchase_ledger(path, r#"column_names = ["customer", "date", "dollars"]"#);
    let memory = ingest(&params.check().unwrap()).unwrap();
    params.out_of_core_above_mb = Some(0);
    let disk = ingest_into(
        &params.check().unwrap(),
        &dir.path().join("parts"),
        &mut |_, _| {},
    )
    .unwrap();
    assert!(matches!(disk.events, Events::Parts { .. }));
    assert_eq!(disk.stats, memory.stats);
    assert!(parts_as_one(&disk.events).equals_missing(&memory.events));
}

#[test]
fn a_source_can_be_ingested_into_parts_whatever_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = b"user_id,event_time,event_type\n".to_vec();
    for i in 0..40 {
        data.extend_from_slice(format!("u{i},2026-01-0{} 10:00:00,view\n", 1 + i % 9).as_bytes());
    }
    let path = write(&dir, "events.csv", &data);
    let source = SourceParams::canonical(&path).check().unwrap();
    let memory = ingest_into(&source, &dir.path().join("a"), &mut |_, _| {}).unwrap();
    assert!(
        matches!(memory.events, Events::Memory(_)),
        "a small file fits"
    );
    // Read in memory, then split: 40 events at 8 a part make 5 parts.
    let split = ingest_into(&source.in_parts(8), &dir.path().join("b"), &mut |_, _| {}).unwrap();
    let Events::Parts { files, rows } = &split.events else {
        panic!("expected parts");
    };
    assert_eq!((files.len(), *rows), (5, 40), "{files:?}");
    assert!(parts_as_one(&split.events).equals_missing(&parts_as_one(&memory.events)));
    assert_eq!(split.stats, memory.stats);
    // Every user is in exactly one part.
    let users: usize = files
        .iter()
        .map(|f| {
            let part = scan_part(f).unwrap().collect().unwrap();
            part.column(columns::USER_ID).unwrap().n_unique().unwrap()
        })
        .sum();
    assert_eq!(users, 40);
    // Past the memory budget: out of core, in partitions of at least a megabyte of
    // text each (never fewer than two).
    let mut params = SourceParams::canonical(&path);
    params.out_of_core_above_mb = Some(0);
    let spilled = params.check().unwrap().in_parts(8);
    let disk = ingest_into(&spilled, &dir.path().join("c"), &mut |_, _| {}).unwrap();
    let Events::Parts { files, rows } = &disk.events else {
        panic!("expected parts");
    };
    assert_eq!((files.len(), *rows), (2, 40), "{files:?}");
    assert!(parts_as_one(&disk.events).equals_missing(&parts_as_one(&memory.events)));
}

#[test]
fn events_in_memory_are_split_between_users() {
    let dir = tempfile::tempdir().unwrap();
    // `b` has five events: it is not cut, so the first part holds seven.
    let users = ["a", "a", "b", "b", "b", "b", "b", "c", "d", "e"];
    let events = df!(columns::USER_ID => users, "n" => (0..10).collect::<Vec<i32>>()).unwrap();
    let heights = |per_part| {
        let files = spill::write_parts(&events, per_part, dir.path()).unwrap();
        let parts: Vec<DataFrame> = files
            .iter()
            .map(|f| scan_part(f).unwrap().collect().unwrap())
            .collect();
        let whole = concat(
            parts.iter().map(|p| p.clone().lazy()).collect::<Vec<_>>(),
            UnionArgs::default(),
        )
        .unwrap()
        .collect()
        .unwrap();
        assert!(whole.equals(&events), "the parts in order are the table");
        parts.iter().map(DataFrame::height).collect::<Vec<_>>()
    };
    assert_eq!(heights(3), [7, 3]);
    assert_eq!(heights(1), [2, 5, 1, 1, 1]);
    // Never fewer than two parts when there are two users.
    assert_eq!(heights(1 << 20), [7, 3]);
}

#[test]
fn partitions_hold_no_more_than_the_budget() {
    const MB: u64 = 1 << 20;
    assert_eq!(spill::partitions_for(10 * 1024 * MB, 2048 * MB), 40);
    assert_eq!(spill::partitions_for(100 * MB, 8 * MB), 13);
    assert_eq!(spill::partitions_for(100 * MB, 0), 100);
    assert_eq!(spill::partitions_for(MB, 2048 * MB), 2);
    assert_eq!(spill::partitions_for(u64::MAX, 0), 4096);
}

mod bad_input;
mod line_items;
mod ndjson;
mod parquet_bytes;

#[test]
fn the_memory_limit_decides_what_goes_out_of_core() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = b"user_id,event_time,event_type\n".to_vec();
    for i in 0..20_000 {
        data.extend_from_slice(
            format!("u{},2026-01-01 10:{:02}:00,view\n", i % 300, i % 60).as_bytes(),
        );
    }
    let path = write(&dir, "events.csv", &data);
    let mut params = SourceParams::canonical(&path);
    // 600 KB of text: within a 4 MB limit's budget (4 MB / 5), not within a 2 MB one.
    params.memory_limit_mb = Some(4);
    let source = params.check().unwrap();
    assert_eq!(source.text_budget(), (4 << 20) / 5);
    assert_eq!(out_of_core_bytes(&source).unwrap(), None);
    params.memory_limit_mb = Some(2);
    let source = params.check().unwrap();
    assert_eq!(out_of_core_bytes(&source).unwrap(), Some(data.len() as u64));
    let memory = ingest(&source).unwrap();
    let disk = ingest_into(&source, &dir.path().join("parts"), &mut |_, _| {}).unwrap();
    assert!(matches!(disk.events, Events::Parts { .. }));
    assert!(parts_as_one(&disk.events).equals_missing(&memory.events));
    // An explicit text budget wins over the limit.
    params.out_of_core_above_mb = Some(1);
    assert_eq!(params.check().unwrap().text_budget(), 1 << 20);
    params.memory_limit_mb = Some(0);
    assert!(
        params
            .check()
            .unwrap_err()
            .to_string()
            .contains("memory_limit_mb")
    );
}

#[test]
fn a_file_hashed_in_blocks_has_the_hash_of_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    // Two whole 2 MiB blocks and a short third, each block different.
    let bytes: Vec<u8> = (0..(4 << 20) + 12_345u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let path = write(&dir, "big.bin", &bytes);
    let hashed = file::hash_blocks(&path).unwrap().finalize();
    assert_eq!(hashed, blake3::hash(&bytes));
    let empty = write(&dir, "empty.bin", b"");
    assert_eq!(
        file::hash_blocks(&empty).unwrap().finalize(),
        blake3::hash(b"")
    );
    assert!(file::hash_blocks(&dir.path().join("absent.bin")).is_err());
}

#[test]
fn a_failed_ingest_out_of_core_leaves_no_spill() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = b"user_id,event_time,event_type\n".to_vec();
    for i in 0..40 {
        data.extend_from_slice(format!("u{i},2026-01-0{} 10:00:00,view\n", 1 + i % 9).as_bytes());
    }
    // A quote that never closes: the file is refused once read to its end.
    data.extend_from_slice(b"u1,2026-01-01 10:00:00,\"view\n");
    let path = write(&dir, "events.csv", &data);
    let mut params = SourceParams::canonical(&path);
    params.out_of_core_above_mb = Some(0);
    let parts = dir.path().join("parts");
    let failed = ingest_into(&params.check().unwrap(), &parts, &mut |_, _| {});
    assert!(failed.is_err());
    assert!(parts.is_dir(), "the ingest went out of core");
    assert!(!parts.join("spill").exists());
}

#[test]
fn numbers_with_a_decimal_comma_are_read_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    let data = "user_id;event_time;event_type;amount;qty\n\
                u1;2026-01-01 10:00:00;purchase;312,82;2\n\
                u1;2026-01-02 10:00:00;purchase;1.234,5;1\n\
                u2;2026-01-03 10:00:00;purchase;7;-1,5\n\
                u2;2026-01-04 10:00:00;purchase;1.23,5;1\n";
    let path = write(&dir, "excel.csv", data.as_bytes());
    let params = |settings: &str| -> SourceParams {
        let text = format!("path = \"placeholder\"\ndelimiter = \";\"\n{settings}");
        SourceParams {
            path: path.clone(),
            ..toml::from_str(&text).unwrap()
        }
    };
    // Without the option, the quarantine says what it looks like.
    let out = ingest(&params("").check().unwrap()).unwrap();
    let rows = quarantine_rows(&out);
    assert_eq!(
        rows[0].2,
        "`amount` \"312,82\" is not a finite number (a decimal comma? set `decimal_comma = true`)"
    );
    let out = ingest(&params("decimal_comma = true").check().unwrap()).unwrap();
    // A point parts thousands in groups of three digits; elsewhere it is refused, not
    // guessed at.
    assert_eq!(amounts(&out), [Some(312.82), Some(1234.5), Some(7.0)]);
    let rows = quarantine_rows(&out);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, 5);
    let point = "(`decimal_comma` is set: a point is no decimal mark; it parts thousands \
                 only, as in 1.234,5)";
    assert!(rows[0].2.ends_with(point), "{}", rows[0].2);
    // Derived columns and the refund test read numbers the same way.
    let derived = params(
        "decimal_comma = true\nrefund_when = \"qty < 0\"\n[columns]\namount = { expr = \"qty * 2\" }",
    );
    let out = ingest(&derived.check().unwrap()).unwrap();
    assert_eq!(amounts(&out), [Some(4.0), Some(2.0), Some(-3.0), Some(2.0)]);
    // Where a comma parts the fields, a decimal comma is read in quoted fields; without
    // the option the quarantine says so, and a derived input is told too.
    let quoted = "user_id,event_time,event_type,amount,qty\n\
                  u1,2026-01-01 10:00:00,purchase,\"3,5\",\"2,5\"\n";
    let quoted = write(&dir, "quoted.csv", quoted.as_bytes());
    let out = ingest(&SourceParams::canonical(&quoted).check().unwrap()).unwrap();
    let reason = &quarantine_rows(&out)[0].2;
    assert!(
        reason.ends_with("(a decimal comma? set `decimal_comma = true`)"),
        "{reason}"
    );
    let comma = SourceParams {
        decimal_comma: true,
        ..SourceParams::canonical(&quoted)
    };
    assert_eq!(
        amounts(&ingest(&comma.check().unwrap()).unwrap()),
        [Some(3.5)]
    );
    let derived: SourceParams =
        toml::from_str("path = \"x\"\n[columns]\namount = { expr = \"qty * 2\" }").unwrap();
    let out = ingest(
        &SourceParams {
            path: quoted,
            ..derived
        }
        .check()
        .unwrap(),
    )
    .unwrap();
    let reason = &quarantine_rows(&out)[0].2;
    let told = "`qty` \"2,5\" is not a number (`amount` is computed from it) (a decimal comma?";
    assert!(reason.starts_with(told), "{reason}");
    let json = SourceParams {
        decimal_comma: true,
        ..SourceParams::canonical(dir.path().join("e.ndjson"))
    };
    let err = json.check().unwrap_err().to_string();
    assert!(
        err.contains("`decimal_comma` is for CSV and text sources"),
        "{err}"
    );
}

#[test]
fn a_column_can_be_the_first_of_several_with_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let settings = "[columns]\nuser_id = { first = [\"userId\", \"anonymousId\"] }\n\
                    event_type = \"event\"\nevent_time = \"timestamp\"";
    let source = |name: &str, data: &str| -> Source {
        let path = write(&dir, name, data.as_bytes());
        let text = format!("path = \"placeholder\"\n{settings}");
        let params: SourceParams = toml::from_str(&text).unwrap();
        SourceParams { path, ..params }.check().unwrap()
    };
    let csv = "userId,anonymousId,event,timestamp\n\
               u1,a1,view,2026-01-01 10:00:00\n\
               ,a2,view,2026-01-01 11:00:00\n\
               \" \",a3,view,2026-01-01 12:00:00\n\
               ,,view,2026-01-01 13:00:00\n\
               \u{a0},a4,view,2026-01-01 14:00:00\n";
    let out = ingest(&source("e.csv", csv)).unwrap();
    let mut users: Vec<String> = text(&out, "user_id").into_iter().flatten().collect();
    users.sort();
    assert_eq!(
        users,
        ["a2", "a3", "a4", "u1"],
        "{:?}",
        quarantine_rows(&out)
    );
    assert_eq!(
        quarantine_rows(&out),
        [(
            5,
            "user_id".into(),
            "missing `user_id` (none of `userId`, `anonymousId` has a value)".into()
        )]
    );
    // Segment's export: identified users by `userId`, the others by `anonymousId`.
    let ndjson = r#"{"userId":"u1","anonymousId":"a1","event":"view","timestamp":"2026-01-01T10:00:00Z"}
{"userId":null,"anonymousId":"a2","event":"view","timestamp":"2026-01-01T11:00:00Z"}
"#;
    let out = ingest(&source("e.ndjson", ndjson)).unwrap();
    let mut users: Vec<String> = text(&out, "user_id").into_iter().flatten().collect();
    users.sort();
    assert_eq!(users, ["a2", "u1"]);
    // A list of no columns is refused; an unknown one is named as a mapped column is.
    let none: SourceParams =
        toml::from_str("path = \"e.csv\"\n[columns]\nuser_id = { first = [] }").unwrap();
    let err = none.check().unwrap_err().to_string();
    assert!(err.contains("`columns.user_id` names no column"), "{err}");
    let path = write(&dir, "f.csv", csv.as_bytes());
    let missing: SourceParams = toml::from_str(
        "path = \"placeholder\"\n[columns]\nuser_id = { first = [\"userId\", \"anonId\"] }\n\
         event_type = \"event\"\nevent_time = \"timestamp\"",
    )
    .unwrap();
    let err = ingest(&SourceParams { path, ..missing }.check().unwrap()).unwrap_err();
    assert!(
        err.to_string()
            .contains("no column `anonId` (mapped to `user_id`)"),
        "{err}"
    );
}

#[test]
fn a_mapping_of_two_kinds_or_a_wrong_shape_is_refused() {
    let parse = |text: &str| {
        toml::from_str::<SourceParams>(text)
            .map(|_| ())
            .unwrap_err()
    };
    let both =
        parse("path = \"e.csv\"\n[columns]\nuser_id = { first = [\"a\"], constant = \"x\" }");
    let bare = parse("path = \"e.csv\"\n[columns]\nuser_id = { first = \"userId\" }");
    for err in [both, bare] {
        assert!(
            err.to_string()
                .contains("a column name, or one of { constant"),
            "{err}"
        );
    }
}

#[test]
fn a_time_in_another_unix_unit_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = "user_id,event_time,event_type\nu1,1767225600123456,view\nu1,2026-01-01,view\n";
    let path = write(&dir, "ga4.csv", data.as_bytes());
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    let reason = &quarantine_rows(&out)[0].2;
    assert!(
        reason.ends_with("is not a date or date-time (it reads as `time_format = \"unix_us\"`)"),
        "{reason}"
    );
}

#[test]
fn a_placeholder_time_is_quarantined_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = "user_id,event_time,event_type\n\
                u1,1970-01-01 00:00:00,view\n\
                u1,1900-01-01,view\n\
                u1,1970-01-01 00:00:01,view\n\
                u1,1900-01-01 00:00:01,view\n";
    let path = write(&dir, "events.csv", data.as_bytes());
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    let placeholder = "a placeholder for a time not known";
    assert_eq!(
        quarantine_rows(&out),
        vec![
            (
                2,
                "event_time".into(),
                format!(
                    "`event_time` \"1970-01-01 00:00:00\" is the first instant of 1970 \
                     (Unix time 0), {placeholder}"
                )
            ),
            (
                3,
                "event_time".into(),
                format!("`event_time` \"1900-01-01\" is the first instant of 1900, {placeholder}")
            ),
        ]
    );
    assert_eq!(out.events.height(), 2);
}
