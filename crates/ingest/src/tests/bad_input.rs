//! Input the ingest must refuse with a clear message, or read after all, but never
//! panic or hang on.

use super::parquet_bytes::{self, Column as PqColumn};
use super::*;

fn events(out: &Ingested, column: &str) -> Vec<String> {
    let column = out.events.column(column).unwrap();
    let text = column.cast(&DataType::String).unwrap();
    text.str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap_or("").to_string())
        .collect()
}

fn write_df(dir: &tempfile::TempDir, name: &str, mut df: DataFrame) -> PathBuf {
    let path = dir.path().join(name);
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut df)
        .unwrap();
    path
}

/// Canonical events with a decimal `price` column.
fn decimal_file(dir: &tempfile::TempDir) -> PathBuf {
    let bytes = parquet_bytes::file(&[
        PqColumn::text("user_id", &["u1", "u2"]),
        PqColumn::text(
            "event_time",
            &["2026-01-01 10:00:00", "2026-01-02 11:00:00"],
        ),
        PqColumn::text("event_type", &["purchase", "view"]),
        PqColumn::decimal("price", &[1234, -5], 10, 2),
    ]);
    write(dir, "decimal.parquet", &bytes)
}

#[test]
fn invalid_utf8_in_a_parquet_binary_column_is_one_row_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let ids: [&[u8]; 3] = [b"u1", b"\xff\xfe", b"u3"];
    let df = df!(
        "user_id" => BinaryChunked::from_slice("user_id".into(), &ids).into_series(),
        "event_time" => ["2026-01-01 10:00:00", "2026-01-02 10:00:00", "2026-01-03 10:00:00"],
        "event_type" => ["view", "view", "view"],
    )
    .unwrap();
    let path = write_df(&dir, "binary.parquet", df);
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    assert_eq!(events(&out, "user_id"), ["u1", "u3"]);
    let rows = quarantine_rows(&out);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].0, rows[0].1.as_str()), (2, "user_id"), "{rows:?}");
}

#[test]
fn an_unused_parquet_decimal_column_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = decimal_file(&dir);
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    assert_eq!(out.stats.kept, 2);
    assert_eq!(events(&out, "user_id"), ["u1", "u2"]);
}

#[test]
fn a_parquet_decimal_column_is_read_as_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = decimal_file(&dir);
    let mut params = SourceParams::canonical(&path);
    params
        .columns
        .insert("amount".into(), ColumnSource::Column("price".into()));
    let out = ingest(&params.check().unwrap()).unwrap();
    let amounts: Vec<Option<f64>> = out
        .events
        .column("amount")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(amounts, [Some(12.34), Some(-0.05)]);
    // A users table is joined whole, decimals as polars reads them.
    let table = read_table(&path).unwrap();
    assert!(matches!(
        table.column("price").unwrap().dtype(),
        DataType::Decimal(..)
    ));
}

#[test]
fn parquet_timestamps_with_a_time_zone_are_read_as_utc() {
    let dir = tempfile::tempdir().unwrap();
    // 2026-01-01 10:00:00 UTC and an hour later
    let micros = [1_767_261_600_000_000i64, 1_767_265_200_000_000];
    for zone in ["UTC", "Europe/Berlin"] {
        let zone = TimeZone::opt_try_new(Some(zone)).unwrap();
        let time = Int64Chunked::from_slice("event_time".into(), &micros)
            .into_datetime(TimeUnit::Microseconds, zone)
            .into_column();
        let df = DataFrame::new(
            2,
            vec![
                Column::new("user_id".into(), ["u1", "u1"]),
                time,
                Column::new("event_type".into(), ["view", "view"]),
            ],
        )
        .unwrap();
        let path = write_df(&dir, "zoned.parquet", df);
        let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
        assert_eq!(out.stats.kept, 2);
        let times = out.events.column("event_time").unwrap();
        assert_eq!(
            times.dtype(),
            &DataType::Datetime(TimeUnit::Microseconds, None)
        );
        let times: Vec<i64> = times
            .datetime()
            .unwrap()
            .physical()
            .iter()
            .flatten()
            .collect();
        assert_eq!(times, micros);
    }
}

#[test]
fn parquet_list_columns_are_ignored_unused_and_refused_used() {
    let dir = tempfile::tempdir().unwrap();
    let tags = Column::new(
        "tags".into(),
        [
            Series::new("".into(), ["a", "b"]),
            Series::new("".into(), ["c"]),
        ],
    );
    let df = DataFrame::new(
        2,
        vec![
            Column::new("user_id".into(), ["u1", "u2"]),
            Column::new("event_time".into(), ["2026-01-01", "2026-01-02"]),
            Column::new("event_type".into(), ["view", "view"]),
            tags,
        ],
    )
    .unwrap();
    let path = write_df(&dir, "lists.parquet", df);
    let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
    assert_eq!(out.stats.kept, 2);
    let mut params = SourceParams::canonical(&path);
    params
        .columns
        .insert("category".into(), ColumnSource::Column("tags".into()));
    let err = ingest(&params.check().unwrap()).unwrap_err();
    assert!(err.is_refusal());
    assert!(
        err.to_string().ends_with(
            "column `tags` (read as `category`) is a list, not one value per row: write one value per row (such as the values joined into text), or map another column"
        ),
        "{err}"
    );
}

/// `work` on a thread of its own, or `None` if it is still running after 20 s (a
/// read that never ends).
fn within_seconds<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || sender.send(work()));
    receiver
        .recv_timeout(std::time::Duration::from_secs(20))
        .ok()
}

#[test]
fn devices_fifos_and_folders_are_refused_before_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("events.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let cases = [
        (PathBuf::from("/dev/zero"), "a character device"),
        (fifo, "a named pipe (FIFO)"),
        (dir.path().to_path_buf(), "a folder"),
    ];
    for (path, kind) in cases {
        let expected = format!(
            "`{}` is {kind}, not a regular file: save the data to a file and give its path",
            path.display()
        );
        let source = SourceParams::canonical(&path).check().unwrap();
        let (hashed, ingested, into) = within_seconds(move || {
            let parts = tempfile::tempdir().unwrap();
            (
                fingerprint(source.path()).map(|_| ()),
                ingest(&source).map(|_| ()),
                ingest_into(&source, parts.path(), &mut |_, _| {}).map(|_| ()),
            )
        })
        .unwrap_or_else(|| panic!("{}: still reading after 20 s", path.display()));
        for err in [hashed, ingested, into].map(Result::unwrap_err) {
            assert!(err.is_refusal(), "{err:?}");
            assert_eq!(err.to_string(), expected);
        }
        let table = within_seconds(move || read_table(&path).map(|_| ()))
            .expect("the users table is not read either");
        assert_eq!(table.unwrap_err().to_string(), expected);
    }
}

/// `text` in UTF-16, little- or big-endian, with or without a byte-order mark.
fn utf16(text: &str, little: bool, bom: bool) -> Vec<u8> {
    let mut bytes = Vec::new();
    let units = bom.then_some(0xfeff).into_iter().chain(text.encode_utf16());
    for unit in units {
        let pair = if little {
            unit.to_le_bytes()
        } else {
            unit.to_be_bytes()
        };
        bytes.extend_from_slice(&pair);
    }
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

const EVENTS: &str = "user_id,event_time,event_type\nu1,2026-01-01 10:00:00,view\n";

#[test]
fn utf16_text_is_refused_with_its_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("le-bom.csv", utf16(EVENTS, true, true), "UTF-16LE"),
        ("le.csv", utf16(EVENTS, true, false), "UTF-16LE"),
        ("be-bom.csv", utf16(EVENTS, false, true), "UTF-16BE"),
        ("be.csv", utf16(EVENTS, false, false), "UTF-16BE"),
        ("le.csv.gz", gzip(&utf16(EVENTS, true, true)), "UTF-16LE"),
        (
            "le.txt",
            utf16("u1 2026-01-01 view\n", true, false),
            "UTF-16LE",
        ),
    ];
    for (name, bytes, encoding) in cases {
        let path = write(&dir, name, &bytes);
        let mut params = SourceParams::canonical(&path);
        if name.ends_with(".txt") {
            params.column_names = Some(vec![
                "user_id".into(),
                "event_time".into(),
                "event_type".into(),
            ]);
        }
        let err = ingest(&params.check().unwrap()).unwrap_err();
        assert!(err.is_refusal(), "{name}");
        assert_eq!(
            err.to_string(),
            format!(
                "`{}` line 1: the text is {encoding}, not UTF-8: convert it to UTF-8 (such as with `iconv -f {encoding} -t UTF-8`) and give the converted file",
                path.display()
            ),
            "{name}"
        );
    }
    // UTF-8, with a byte-order mark or not, is read.
    for (name, bytes) in [
        ("utf8.csv", EVENTS.as_bytes().to_vec()),
        ("bom.csv", [b"\xef\xbb\xbf", EVENTS.as_bytes()].concat()),
    ] {
        let path = write(&dir, name, &bytes);
        let out = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap();
        assert_eq!(out.stats.kept, 1, "{name}");
    }
}

#[test]
fn a_header_separated_by_semicolons_or_tabs_gets_a_delimiter_hint() {
    let dir = tempfile::tempdir().unwrap();
    for (name, separator, hint) in [
        ("semicolons.csv", ";", "has `;`: set `delimiter = \";\"`"),
        ("tabs.csv", "\t", "has tabs: set `delimiter = \"\\t\"`"),
    ] {
        let path = write(&dir, name, EVENTS.replace(',', separator).as_bytes());
        let err = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap_err();
        assert!(err.is_refusal(), "{name}");
        assert_eq!(
            err.to_string(),
            format!(
                "`{}` line 1: the header has no `,` but {hint} for this source",
                path.display()
            )
        );
        // The delimiter the hint names reads the file.
        let mut params = SourceParams::canonical(&path);
        params.delimiter = Some(separator.into());
        assert_eq!(ingest(&params.check().unwrap()).unwrap().stats.kept, 1);
    }
    // A header with commas is not one to hint at: the column is just missing.
    let path = write(&dir, "other.csv", b"user;id,event_time,event_type\n");
    let err = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap_err();
    assert!(matches!(err, Error::MissingRequired { .. }), "{err}");
}

#[test]
fn a_file_that_is_not_parquet_is_refused_as_a_source_and_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.parquet");
    std::fs::write(&path, "user_id,event_time,event_type\nu1,2026-01-01,view\n").unwrap();
    let err = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap_err();
    assert!(err.is_refusal(), "{err:?}");
    let shown = format!(
        "`{}` is not a Parquet file userlens can read",
        path.display()
    );
    assert_eq!(err.to_string(), shown);
    assert!(
        std::error::Error::source(&err).is_some(),
        "polars' reason follows"
    );
    let err = read_table(&path).unwrap_err();
    assert!(err.is_refusal(), "{err:?}");
    // A Parquet file named as a CSV is told to be one.
    let events = df!("user_id" => ["u1"], "event_time" => ["2026-01-01"], "event_type" => ["view"]);
    let parquet = write_df(&dir, "events.csv", events.unwrap());
    let err = ingest(&SourceParams::canonical(&parquet).check().unwrap()).unwrap_err();
    assert!(matches!(err, Error::ParquetAsText { .. }), "{err}");
    assert!(err.is_refusal());
    // A users table has no `format` to set: it is told to take the name.
    let err = read_table(&parquet).unwrap_err();
    assert!(err.is_refusal(), "{err}");
    assert!(
        err.to_string()
            .ends_with("named as text: name it `.parquet`"),
        "{err}"
    );
    // A CSV table without `user_id` is refused too.
    let users = dir.path().join("users.csv");
    std::fs::write(&users, "customer,country\nu1,FR\n").unwrap();
    let err = read_table(&users).unwrap_err();
    assert!(err.is_refusal());
    // A side table has no `columns` to map: it is told to name the column.
    assert_eq!(
        err.to_string(),
        format!(
            "`{}`: no `user_id` column: name the column of the user ids `user_id` (in any \
             case); the columns are: customer, country",
            users.display()
        )
    );
    // A near name is the one to rename.
    std::fs::write(&users, "userid,country\nu1,FR\n").unwrap();
    let err = read_table(&users).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "no `user_id` column: rename `userid` to `user_id` (in any case); the columns are: \
             userid, country"
        ),
        "{err}"
    );
}

#[test]
fn a_users_tables_id_column_is_found_in_any_case_its_ids_trimmed_its_dates_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "users.csv",
        b"User_Id ,plan,signup\n 007 ,pro,2025-04-04\n008,free,2026-01-31\n",
    );
    let table = read_table(&path).unwrap();
    let ids = table
        .column(columns::USER_ID)
        .unwrap()
        .str()
        .unwrap()
        .clone();
    let ids: Vec<_> = ids.iter().flatten().collect();
    assert_eq!(ids, ["007", "008"]);
    // Dates stay text, as a Parquet table may hold them: the features stage makes
    // ISO dates dates, by one rule for every format (not polars' guess at 3/4/2020).
    assert_eq!(table.column("signup").unwrap().dtype(), &DataType::String);
    // Of two, the one spelt exactly is the id column.
    let path = write(&dir, "both.csv", b"USER_ID,user_id\nx,1\n");
    let table = read_table(&path).unwrap();
    let ids = table.column(columns::USER_ID).unwrap();
    assert_eq!(ids.str().unwrap().get(0), Some("1"));
    // In UTF-16 it is named so, not taken for a table without `user_id`.
    let utf16: Vec<u8> = "\u{feff}user_id,plan\nu1,pro\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let err = read_table(&write(&dir, "utf16.csv", &utf16)).unwrap_err();
    assert!(
        err.is_refusal() && err.to_string().contains("UTF-16LE"),
        "{err}"
    );
    // Of two in other cases, neither is a guess to make.
    let path = write(
        &dir,
        "twins.csv",
        b"USER_ID,plan,User_Id
x1,pro,1
",
    );
    let err = read_table(&path).unwrap_err();
    assert!(err.is_refusal(), "{err}");
    assert!(
        err.to_string()
            .contains("columns `USER_ID` (column 1) and `User_Id` (column 3) both spell `user_id`"),
        "{err}"
    );
}

#[test]
fn a_users_table_that_cannot_be_read_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let said = |name: &str, bytes: &[u8]| {
        let err = read_table(&write(&dir, name, bytes)).unwrap_err();
        assert!(err.is_refusal(), "{err}");
        err.to_string()
    };
    let quote = said(
        "q.csv",
        b"user_id,plan,age\nu1,pro,30\nu2,\"free,20\nu3,max,40\n",
    );
    assert!(
        quote.ends_with("q.csv` line 3: expected 3 fields, found 2 (a quote that does not close?)"),
        "{quote}"
    );
    let long = said("l.csv", b"user_id,plan\nu1,pro,extra\n");
    assert!(
        long.ends_with("l.csv` line 2: expected 2 fields, found 3 (a quote that does not close?)"),
        "{long}"
    );
    // A short row too, which polars would pad with nulls.
    let short = said("short.csv", b"user_id,plan,age\nu1,pro,30\nu2\n");
    assert!(
        short.ends_with(
            "short.csv` line 3: expected 3 fields, found 1 (a quote that does not close?)"
        ),
        "{short}"
    );
    let twice = said("twice.csv", b"user_id,plan,plan\nu1,pro,max\n");
    assert!(
        twice.ends_with("twice.csv` line 1: the column `plan` is named twice (column 3)"),
        "{twice}"
    );
    // Unnamed columns (a spreadsheet's trailing commas) are not named twice.
    let blank = read_table(&write(&dir, "blank.csv", b"user_id,plan,,\nu1,pro,3,4\n")).unwrap();
    assert_eq!(blank.get_column_names(), ["user_id", "plan"]);
    let semi = said("s.csv", b"user_id;plan\nu1;pro\n");
    assert!(
        semi.ends_with(
            "s.csv` line 1: the header has no `,` but has `;`: a users table is comma-separated"
        ),
        "{semi}"
    );
    let utf8 = said("u.csv", b"user_id,plan\nu1,pro\nu2,\xff\n");
    assert!(utf8.ends_with("u.csv` line 3: invalid UTF-8"), "{utf8}");
    // A word in a column of numbers past the first rows makes it text, as in them.
    let mut late = String::from("user_id,age\n");
    for i in 0..200 {
        late.push_str(&format!("u{i},{i}\n"));
    }
    late.push_str("u200,thirty\n");
    let table = read_table(&write(&dir, "late.csv", late.as_bytes())).unwrap();
    assert_eq!(table.column("age").unwrap().dtype(), &DataType::String);
}

#[test]
fn a_quote_in_the_header_that_runs_past_line_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (0..60)
        .map(|i| {
            format!(
                "u{i},2026-01-01 10:00:00,view,,{}\n",
                if i == 48 { "x\"" } else { "" }
            )
        })
        .collect();
    for (name, header) in [
        // Closed on line 50: the rows between would be part of the name.
        (
            "closes_later.csv",
            "user_id,event_time,event_type,amount,\"rating\n",
        ),
        (
            "never_closes.csv",
            "user_id,event_time,\"event_type,amount,rating\n",
        ),
    ] {
        let path = write(&dir, name, format!("{header}{rows}").as_bytes());
        let err = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap_err();
        assert!(err.is_refusal(), "{name}: {err}");
        assert!(matches!(err, Error::HeaderQuote { .. }), "{name}: {err}");
        assert!(err.to_string().contains("line 1"), "{err}");
    }
    let survey = write(
        &dir,
        "survey.csv",
        b"user_id,answered_at,\"score\nu1,2026-01-01,9\nu2,2026-01-02,3\"\nu3,2026-01-03,7\n",
    );
    let err = crate::read_survey(&survey).unwrap_err();
    assert!(matches!(err, Error::HeaderQuote { .. }), "{err}");
}

#[test]
fn a_corrupt_or_cut_short_gzip_file_is_refused_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    // `text` gzipped, cut short (`cut`) and with bytes flipped in its middle.
    let broken = |text: &str| {
        let whole = gzip(text.as_bytes());
        let mut flipped = whole.clone();
        let middle = flipped.len() / 2;
        for byte in &mut flipped[middle..middle + 64] {
            *byte ^= 0x55;
        }
        [
            ("cut", whole[..whole.len() - 40].to_vec()),
            ("flipped", flipped),
        ]
    };
    let said = |err: &Error| {
        let cause = std::error::Error::source(err).map(ToString::to_string);
        err.is_refusal()
            && cause.is_some_and(|c| c.contains("the gzip data is corrupt or cut short"))
    };
    let text: String = std::iter::once("user_id,event_time,event_type\n".to_string())
        .chain((0..5000).map(|i| format!("u{},2026-01-01 10:{:02}:00,view\n", i % 97, i % 60)))
        .collect();
    for (name, bytes) in broken(&text) {
        let path = write(&dir, &format!("{name}.csv.gz"), &bytes);
        let err = ingest(&SourceParams::canonical(&path).check().unwrap()).unwrap_err();
        assert!(said(&err), "{name}: {err}");
    }
    // A survey cut short or corrupt is refused as an events file is.
    let survey: String = std::iter::once("user_id,answered_at,score\n".to_string())
        .chain((0..5000).map(|i| format!("u{i},2026-01-01 10:00:00,{}\n", i % 11)))
        .collect();
    for (name, bytes) in broken(&survey) {
        let path = write(&dir, &format!("{name}_survey.csv.gz"), &bytes);
        let err = crate::read_survey(&path).unwrap_err();
        assert!(said(&err), "{name}: {err}");
    }
    let whole = gzip(text.as_bytes());
    let path = write(&dir, "whole.csv.gz", &whole);
    assert_eq!(
        ingest(&SourceParams::canonical(&path).check().unwrap())
            .unwrap()
            .stats
            .kept,
        5000
    );
}

#[test]
fn a_quote_or_a_line_end_is_no_delimiter() {
    for delimiter in ["\"", "\n", "\r"] {
        let mut params = SourceParams::canonical(Path::new("events.csv"));
        params.delimiter = Some(delimiter.into());
        let err = params.check().unwrap_err();
        assert!(
            err.to_string().contains("it quotes fields or ends rows"),
            "{delimiter:?}: {err}"
        );
    }
    let mut params = SourceParams::canonical(Path::new("events.csv"));
    params.delimiter = Some("|".into());
    assert!(params.check().is_ok());
    // Another format has no delimiter to set: refused, not ignored.
    for path in ["events.ndjson", "events.parquet"] {
        let mut params = SourceParams::canonical(Path::new(path));
        params.delimiter = Some(";".into());
        let err = params.check().unwrap_err().to_string();
        assert!(
            err.starts_with("`delimiter` is for CSV sources"),
            "{path}: {err}"
        );
    }
}

#[test]
fn a_users_tables_lists_and_bytes_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let users = |extra: Series| {
        let mut df = df!("user_id" => ["u1"], "age" => [30i64]).unwrap();
        df.with_column(extra.into_column()).unwrap();
        df
    };
    let tags = Series::new("tags".into(), [Series::new("".into(), [1i64, 2])]);
    let blob = Series::new("blob".into(), [&b"\xff"[..]]);
    for (name, extra, said) in [
        (
            "lists.parquet",
            tags,
            "column `tags` is a list, not one value per row",
        ),
        (
            "bytes.parquet",
            blob,
            "column `blob` is bytes that are not UTF-8 text",
        ),
    ] {
        let path = write_df(&dir, name, users(extra));
        let err = read_table(&path).unwrap_err();
        assert!(err.is_refusal(), "{err}");
        assert!(err.to_string().contains(said), "{err}");
    }
    // Bytes that are UTF-8, as older writers store text, are text.
    let plan = Series::new("plan".into(), [&b"pro"[..]]);
    let table = read_table(&write_df(&dir, "text_bytes.parquet", users(plan))).unwrap();
    let plan = table.column("plan").unwrap();
    assert_eq!(plan.str().unwrap().get(0), Some("pro"));
}

#[test]
fn a_gzipped_users_table_reads_as_the_plain_one() {
    let dir = tempfile::tempdir().unwrap();
    let text = b"user_id,plan,age\n007,pro,31\n008,free,44\n";
    let plain = read_table(&write(&dir, "users.csv", text)).unwrap();
    let gzipped = read_table(&write(&dir, "users.csv.gz", &gzip(text))).unwrap();
    assert!(plain.equals_missing(&gzipped), "{gzipped}");
    assert_eq!(plain.height(), 2);
}

#[test]
fn a_users_column_with_no_value_is_numbers_none_known_not_text() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.csv");
    std::fs::write(&users, "user_id,blank,age,city\n007,,31,\n8,,,Lyon\n").unwrap();
    let table = read_table(&users).unwrap();
    let dtype = |name: &str| table.column(name).unwrap().dtype().clone();
    assert_eq!(dtype("blank"), DataType::Float64);
    assert_eq!(table.column("blank").unwrap().null_count(), 2);
    assert_eq!(dtype("city"), DataType::String);
    assert_eq!(dtype("user_id"), DataType::String);
    assert_eq!(dtype("age"), DataType::Int64);
    // With no rows at all, nothing says which columns are numbers.
    std::fs::write(&users, "user_id,city\n").unwrap();
    let table = read_table(&users).unwrap();
    assert_eq!(table.column("city").unwrap().dtype(), &DataType::String);
}
