//! Survey answers: `user_id, answered_at, score` (0-10), an optional `comment`, any
//! other columns ignored. CSV or Parquet, found like the users table; a row that
//! cannot be used goes to the quarantine with its line, column and reason, as the
//! events' rows do.

use std::path::Path;

use polars::prelude::*;
use userlens_model::columns::USER_ID;

use crate::error::{self, Error, Result, quoted};
use crate::time::TimeFormat;
use crate::{SourceFormat, guess_format, regular_file};

pub use userlens_model::columns::survey::{ANSWERED_AT, COMMENT, SCORE};

/// The usable answers of a survey file and its refused rows.
#[derive(Debug, Clone)]
pub struct Survey {
    /// `user_id` (text), `answered_at` (microseconds, UTC), `score` (0-10),
    /// `comment` (text, null when absent), in file order.
    pub answers: DataFrame,
    /// `file, line, column, reason, raw` of every refused row.
    pub quarantine: DataFrame,
    /// Data rows read (header not counted).
    pub read: u64,
}

#[derive(Default)]
struct Sink {
    file: String,
    read: u64,
    users: Vec<String>,
    times: Vec<i64>,
    scores: Vec<u32>,
    comments: Vec<Option<String>>,
    q_line: Vec<u64>,
    q_column: Vec<&'static str>,
    q_reason: Vec<String>,
    q_raw: Vec<String>,
}

impl Sink {
    fn refuse(&mut self, line: u64, column: &'static str, reason: String, raw: &str) {
        self.q_line.push(line);
        self.q_column.push(column);
        self.q_reason.push(reason);
        self.q_raw.push(crate::read::echo(raw.as_bytes()));
    }

    /// Checks one row's fields (`None`: the field is missing or empty).
    /// `micros` is the answer time of a Parquet date-time column, read already.
    fn row(&mut self, line: u64, fields: [Option<&str>; 4], micros: Option<i64>, raw: &str) {
        self.read += 1;
        let [user, time, score, comment] =
            fields.map(|f| f.map(str::trim).filter(|f| !f.is_empty()));
        let Some(user) = user else {
            return self.refuse(line, USER_ID, format!("missing `{USER_ID}`"), raw);
        };
        let Some(time_text) = time else {
            return self.refuse(line, ANSWERED_AT, format!("missing `{ANSWERED_AT}`"), raw);
        };
        let Some(micros) = micros.or_else(|| TimeFormat::Auto.parse_micros(time_text)) else {
            let reason = format!(
                "`{ANSWERED_AT}` {} is not {}",
                quoted(time_text),
                TimeFormat::Auto.describe()
            );
            return self.refuse(line, ANSWERED_AT, reason, raw);
        };
        let Some(score_text) = score else {
            return self.refuse(line, SCORE, format!("missing `{SCORE}`"), raw);
        };
        let score = match score_text.parse::<f64>() {
            Ok(v) if v.fract() == 0.0 && (0.0..=10.0).contains(&v) => v as u32,
            _ => {
                let reason = format!(
                    "`{SCORE}` {} is not a whole number from 0 to 10",
                    quoted(score_text)
                );
                return self.refuse(line, SCORE, reason, raw);
            }
        };
        self.users.push(user.to_string());
        self.times.push(micros);
        self.scores.push(score);
        self.comments.push(comment.map(str::to_string));
    }

    fn finish(self) -> Result<Survey> {
        let n = self.users.len();
        let time = Int64Chunked::from_vec(ANSWERED_AT.into(), self.times)
            .into_datetime(TimeUnit::Microseconds, None)
            .into_column();
        let answers = DataFrame::new(
            n,
            vec![
                Column::new(USER_ID.into(), self.users),
                time,
                Column::new(SCORE.into(), self.scores),
                Column::new(COMMENT.into(), self.comments),
            ],
        )
        .map_err(error::polars("build the survey table"))?;
        let q = self.q_line.len();
        let quarantine = DataFrame::new(
            q,
            vec![
                Column::new("file".into(), vec![self.file; q]),
                Column::new("line".into(), self.q_line),
                Column::new("column".into(), self.q_column),
                Column::new("reason".into(), self.q_reason),
                Column::new("raw".into(), self.q_raw),
            ],
        )
        .map_err(error::polars("build the survey quarantine"))?;
        Ok(Survey {
            answers,
            quarantine,
            read: self.read,
        })
    }
}

/// Reads a survey file (CSV, or Parquet by its extension).
pub fn read_survey(path: &Path) -> Result<Survey> {
    regular_file(path)?;
    let mut sink = Sink {
        file: path.display().to_string(),
        ..Sink::default()
    };
    if guess_format(path) == SourceFormat::Parquet {
        read_parquet(path, &mut sink)?;
    } else {
        read_csv(path, &mut sink)?;
    }
    sink.finish()
}

fn read_csv(path: &Path, sink: &mut Sink) -> Result<()> {
    // The events' opener (gzip, UTF-16 refused) and reader, for its line numbers
    // (the csv crate's own are one short after each CRLF line end).
    let mut no_progress = |_: u64, _: u64| {};
    let text = crate::read::open(path, &mut no_progress)?.reader;
    let (mut reader, mut lines) = crate::read::csv_reader(b',', text);
    let mut header = csv::ByteRecord::new();
    let has_header = reader
        .read_byte_record(&mut header)
        .map_err(|e| crate::read::csv_error(path, e))?;
    if let Some(first) = header.get(0).filter(|_| has_header) {
        // A byte-order mark is no part of the first name.
        let first = first
            .strip_prefix(b"\xef\xbb\xbf")
            .unwrap_or(first)
            .to_vec();
        let rest: Vec<Vec<u8>> = header.iter().skip(1).map(<[u8]>::to_vec).collect();
        header = std::iter::once(first).chain(rest).collect();
    }
    if has_header {
        crate::read::check_header(path, &header)?;
    }
    if !has_header || header.is_empty() {
        return Err(Error::Empty {
            path: path.to_path_buf(),
        });
    }
    let columns: Vec<&[u8]> = header.iter().collect();
    let position = |name: &'static str| find_column(path, &columns, name, true);
    let mut slots = [None; 4];
    for (slot, name) in slots.iter_mut().zip([USER_ID, ANSWERED_AT, SCORE]) {
        *slot = Some(position(name)?.ok_or_else(|| Error::SurveyHeader {
            path: path.to_path_buf(),
            csv: true,
            problem: match crate::read::delimiter_hint(path, b',', &header) {
                Some(Error::Delimiter { found: '\t', .. }) => {
                    "the header has no `,` but has tabs".to_string()
                }
                Some(Error::Delimiter { found, .. }) => {
                    format!("the header has no `,` but has `{found}`")
                }
                _ => format!("required column `{name}` is missing"),
            },
        })?);
    }
    slots[3] = position(COMMENT)?;
    let names: Vec<String> = columns
        .iter()
        .map(|c| String::from_utf8_lossy(c).trim().to_string())
        .collect();
    // The last row's line and start, and whether a field of it holds a line end.
    let mut last = None;
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // A broken record (invalid quoting cannot happen in the csv crate's
                // flexible mode; this is an I/O error): stop with the file named.
                return Err(crate::read::csv_error(path, e));
            }
        }
        let start = record.position().map_or(0, |p| p.byte());
        let line = lines.at(start);
        let holds_line_end = record
            .iter()
            .any(|f| memchr::memchr2(b'\n', b'\r', f).is_some());
        last = Some((line, start, holds_line_end));
        let raw = record
            .iter()
            .map(String::from_utf8_lossy)
            .collect::<Vec<_>>()
            .join(",");
        if record.len() != header.len() {
            sink.read += 1;
            let reason = format!("expected {} fields, found {}", header.len(), record.len());
            sink.refuse(line, "", reason, &raw);
            continue;
        }
        // Answers run together by a stray quote: refused whole, as the events' are.
        let fields: Vec<&[u8]> = record.iter().collect();
        let is_time = |t: &str| TimeFormat::Auto.parse_micros(t).is_some();
        if holds_line_end
            && let Some(reason) =
                crate::read::swallowed_row(&fields, &names, b',', slots[1], is_time)
        {
            sink.read += 1;
            sink.refuse(line, "", reason, &raw);
            continue;
        }
        let mut fields = [None; 4];
        let mut bad = None;
        for (field, slot) in fields.iter_mut().zip(slots) {
            if let Some(i) = slot {
                match std::str::from_utf8(&record[i]) {
                    Ok(text) => *field = Some(text),
                    Err(_) => bad = Some(i),
                }
            }
        }
        if let Some(i) = bad {
            sink.read += 1;
            let name = [USER_ID, ANSWERED_AT, SCORE, COMMENT]
                .into_iter()
                .zip(slots)
                .find(|(_, s)| *s == Some(i))
                .map_or("", |(n, _)| n);
            sink.refuse(line, name, format!("invalid UTF-8 in `{name}`"), &raw);
            continue;
        }
        sink.row(line, fields, None, &raw);
    }
    // A quote that never closes makes the rest of the file one answer: refused, as
    // its lines would otherwise be lost in one row.
    if let Some((line, start, holds_line_end)) = last
        && crate::read::last_record_open(path, &lines, start, holds_line_end, b',')?
    {
        return Err(Error::UnclosedQuote {
            path: path.to_path_buf(),
            line,
        });
    }
    Ok(())
}

/// Where `name` is in `header`: as written, else in any case (`User_ID`), as the
/// events' columns are found. A name twice, or two spellings of it in other cases,
/// is a guess which is meant: refused.
fn find_column(
    path: &Path,
    header: &[&[u8]],
    name: &'static str,
    csv: bool,
) -> Result<Option<usize>> {
    let exact: Vec<usize> = (0..header.len())
        .filter(|&i| header[i] == name.as_bytes())
        .collect();
    let found = match exact.is_empty() {
        false => exact,
        true => (0..header.len())
            .filter(|&i| header[i].eq_ignore_ascii_case(name.as_bytes()))
            .collect(),
    };
    match found[..] {
        [] => Ok(None),
        [only] => Ok(Some(only)),
        [first, second, ..] if header[first] == header[second] => Err(Error::DuplicateColumn {
            path: path.to_path_buf(),
            line: 1,
            source_column: name.into(),
            target: name.into(),
            first: first + 1,
            second: second + 1,
        }),
        [first, second, ..] => Err(Error::SurveyHeader {
            path: path.to_path_buf(),
            csv,
            problem: format!(
                "columns `{}` (column {}) and `{}` (column {}) both spell `{name}`; rename one",
                String::from_utf8_lossy(header[first]),
                first + 1,
                String::from_utf8_lossy(header[second]),
                second + 1
            ),
        }),
    }
}

fn read_parquet(path: &Path, sink: &mut Sink) -> Result<()> {
    let df = crate::read::read_parquet_file(path)?;
    let header: Vec<&str> = df.get_column_names().iter().map(|n| n.as_str()).collect();
    let names: Vec<&[u8]> = header.iter().map(|h| h.as_bytes()).collect();
    let find = |name: &'static str| -> Result<&str> {
        Ok(find_column(path, &names, name, false)?.map_or(name, |i| header[i]))
    };
    let names = [USER_ID, ANSWERED_AT, SCORE, COMMENT];
    let mut columns = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        match df.column(find(name)?) {
            Ok(c) => {
                // A datetime column is written as text the auto layout reads back.
                let c = match c.dtype() {
                    DataType::Datetime(_, _) | DataType::Date => c
                        .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
                        .and_then(|c| c.cast(&DataType::Int64))
                        .and_then(|c| c.cast(&DataType::String)),
                    _ => c.cast(&DataType::String),
                };
                columns.push(Some(c.map_err(|source| Error::Table {
                    path: path.to_path_buf(),
                    source,
                })?));
            }
            Err(_) if i < 3 => {
                return Err(Error::SurveyHeader {
                    path: path.to_path_buf(),
                    csv: false,
                    problem: format!("required column `{name}` is missing"),
                });
            }
            Err(_) => columns.push(None),
        }
    }
    let text = |c: &Option<Column>| c.as_ref().and_then(|c| c.str().ok().cloned());
    let cols: Vec<Option<StringChunked>> = columns.iter().map(text).collect();
    let datetime = matches!(
        df.column(find(ANSWERED_AT)?).map(|c| c.dtype().clone()),
        Ok(DataType::Datetime(_, _) | DataType::Date)
    );
    for row in 0..df.height() {
        let get = |k: usize| {
            cols.get(k)
                .and_then(|c| c.as_ref())
                .and_then(|c| c.get(row))
        };
        let fields = [get(0), get(1), get(2), get(3)];
        // A date-time column is microseconds already.
        let micros = fields[1]
            .filter(|_| datetime)
            .and_then(|t| t.parse::<i64>().ok());
        let raw = fields
            .iter()
            .map(|f| f.unwrap_or(""))
            .collect::<Vec<_>>()
            .join(",");
        sink.row(row as u64 + 1, fields, micros, &raw);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quarantined_lines(survey: &Survey) -> Vec<u64> {
        let lines = survey.quarantine.column("line").unwrap().u64().unwrap();
        lines.into_no_null_iter().collect()
    }

    /// The quarantine's text column `name`.
    fn quarantined(survey: &Survey, name: &str) -> Vec<String> {
        let column = survey.quarantine.column(name).unwrap().str().unwrap();
        column.iter().flatten().map(str::to_string).collect()
    }

    fn write(text: &str) -> tempfile::TempPath {
        let file = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file.into_temp_path()
    }

    #[test]
    fn a_long_refused_row_is_echoed_cut_with_an_ellipsis() {
        let comment = "x".repeat(400);
        let path = write(&format!(
            "user_id,answered_at,score,comment\nu1,2026-01-05,12,{comment}\n"
        ));
        let survey = read_survey(&path).unwrap();
        let raw = survey
            .quarantine
            .column("raw")
            .unwrap()
            .str()
            .unwrap()
            .get(0);
        let raw = raw.unwrap();
        assert!(
            raw.ends_with('…') && raw.len() == 256 + '…'.len_utf8(),
            "{raw}"
        );
    }

    #[test]
    fn crlf_lines_a_bom_and_quoted_line_ends_keep_the_line_numbers() {
        let path = write(
            "\u{feff}user_id,answered_at,score,comment\r\n\
             u1,2026-01-05,9,\"two\r\nlines\"\r\n\
             u2,2026-01-06,12,\r\n\
             \r\n\
             u3,2026-01-06,13,\r\n",
        );
        let survey = read_survey(&path).unwrap();
        assert_eq!((survey.read, survey.answers.height()), (3, 1));
        let lines = quarantined_lines(&survey);
        assert_eq!(lines, [4, 6]);
    }

    #[test]
    fn good_rows_are_kept_and_bad_ones_quarantined_with_line_and_reason() {
        let path = write(
            "user_id,answered_at,score,comment,channel\n\
             u1,2026-01-05 10:00:00,9,\"great, fast\",email\n\
             u2,2026-01-06,7.0,,app\n\
             u3,yesterday,5,,app\n\
             u4,2026-01-07,11,,app\n\
             ,2026-01-07,3,,app\n\
             u6,2026-01-07,6.5,,app\n\
             u7,2026-01-07\n",
        );
        let survey = read_survey(&path).unwrap();
        assert_eq!(survey.read, 7);
        assert_eq!(survey.answers.height(), 2);
        let scores: Vec<u32> = survey
            .answers
            .column(SCORE)
            .unwrap()
            .u32()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(scores, [9, 7]);
        let comment = survey
            .answers
            .column(COMMENT)
            .unwrap()
            .str()
            .unwrap()
            .get(0);
        assert_eq!(comment, Some("great, fast"));
        let lines = quarantined_lines(&survey);
        assert_eq!(lines, [4, 5, 6, 7, 8]);
        let reasons = quarantined(&survey, "reason");
        assert!(
            reasons[0].starts_with("`answered_at` \"yesterday\" is not"),
            "{}",
            reasons[0]
        );
        assert_eq!(
            reasons[1],
            "`score` \"11\" is not a whole number from 0 to 10"
        );
        assert_eq!(reasons[2], "missing `user_id`");
        assert_eq!(
            reasons[3],
            "`score` \"6.5\" is not a whole number from 0 to 10"
        );
        assert_eq!(reasons[4], "expected 5 fields, found 2");
        let columns = quarantined(&survey, "column");
        assert_eq!(columns, ["answered_at", "score", "user_id", "score", ""]);
    }

    #[test]
    fn answers_run_together_by_a_stray_quote_are_quarantined_and_comments_over_lines_kept() {
        let path = write(
            "user_id,answered_at,score,comment\n\
             x1,2026-01-05,7,\"great,\n\
             x2,2026-01-05,3,bad\"\n\
             x3,2026-01-06,9,\"two\nlines, fine\"\n\
             x4,2026-01-06,6,\n\
             x5,2026-01-06,6,\"without\n\
             x6,2026-01-06,8,\"\"quote\"\"\"\n",
        );
        let survey = read_survey(&path).unwrap();
        assert_eq!((survey.read, survey.answers.height()), (4, 2));
        let reasons = quarantined(&survey, "reason");
        assert_eq!(quarantined_lines(&survey), [2, 7]);
        assert!(
            reasons
                .iter()
                .all(|r| r.starts_with("a row over 2 lines: `comment`")),
            "{reasons:?}"
        );
    }

    #[test]
    fn a_survey_is_refused_where_an_event_file_would_be() {
        let refused = |bytes: &[u8]| {
            let file = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
            std::fs::write(file.path(), bytes).unwrap();
            read_survey(file.path()).unwrap_err()
        };
        let unclosed = refused(
            b"user_id,answered_at,score,comment\na,2026-03-01,10,\"never closed\nb,2026-03-01,0,\nc,2026-03-01,0,\n",
        );
        assert!(
            matches!(unclosed, Error::UnclosedQuote { line: 2, .. }),
            "{unclosed:?}"
        );
        let twice = refused(b"user_id,answered_at,score,score\na,2026-03-01,10,0\n");
        assert!(
            matches!(
                twice,
                Error::DuplicateColumn {
                    first: 3,
                    second: 4,
                    ..
                }
            ),
            "{twice:?}"
        );
        let semicolons = refused(b"user_id;answered_at;score\na;2026-03-01;10\n");
        assert!(
            matches!(semicolons, Error::SurveyHeader { csv: true, .. }),
            "{semicolons:?}"
        );
        assert!(
            semicolons.to_string().ends_with(
                "line 1: the header has no `,` but has `;`; a survey has the comma-separated columns user_id, answered_at, score and optionally comment (in any case)"
            ),
            "{semicolons}"
        );
        let variants = refused(b"user_id,Score,SCORE,answered_at\na,10,9,2026-03-01\n");
        assert!(
            variants.to_string().ends_with(
                "line 1: columns `Score` (column 2) and `SCORE` (column 3) both spell `score`; rename one; a survey has the comma-separated columns user_id, answered_at, score and optionally comment (in any case)"
            ),
            "{variants}"
        );
        let utf16: Vec<u8> = "user_id,answered_at,score\na,2026-03-01,10\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let utf16 = refused(&[&[0xff, 0xfe][..], &utf16].concat());
        assert!(matches!(utf16, Error::Encoding { .. }), "{utf16:?}");
        for error in [unclosed, twice, semicolons, variants, utf16] {
            assert!(error.is_refusal(), "{error:?}");
        }
    }

    #[test]
    fn a_missing_required_column_is_named() {
        let path = write("user_id,answered_at,nps\nu1,2026-01-01,9\n");
        let err = read_survey(&path).unwrap_err();
        assert!(err.is_refusal());
        assert!(
            err.to_string().ends_with(
                "line 1: required column `score` is missing; a survey has the comma-separated columns user_id, answered_at, score and optionally comment (in any case)"
            ),
            "{err}"
        );
    }

    #[test]
    fn survey_columns_are_matched_in_any_case() {
        let path = write(
            "USER_ID,Answered_At,Score,Comment
u1,2026-01-01,9,fine
",
        );
        let survey = read_survey(&path).unwrap();
        assert_eq!(survey.answers.height(), 1);
        assert_eq!(survey.quarantine.height(), 0);
    }

    #[test]
    fn parquet_surveys_read_like_csv_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("survey.parquet");
        let times = Int64Chunked::from_vec(ANSWERED_AT.into(), vec![1_000_000, 2_000_000])
            .into_datetime(TimeUnit::Microseconds, None)
            .into_series();
        let mut df =
            df!(USER_ID => ["a", "b"], ANSWERED_AT => times, SCORE => [10i64, 12]).unwrap();
        let file = std::fs::File::create(&path).unwrap();
        ParquetWriter::new(file).finish(&mut df).unwrap();
        let survey = read_survey(&path).unwrap();
        assert_eq!(survey.answers.height(), 1);
        let t = survey
            .answers
            .column(ANSWERED_AT)
            .unwrap()
            .cast(&DataType::Int64)
            .unwrap();
        assert_eq!(t.i64().unwrap().get(0), Some(1_000_000));
        let lines = quarantined_lines(&survey);
        assert_eq!(lines, [2]);
        // Its columns in another case are read as a CSV's are.
        let mut upper = df
            .lazy()
            .rename(
                [USER_ID, ANSWERED_AT, SCORE],
                ["User_ID", "ANSWERED_AT", "Score"],
                true,
            )
            .collect()
            .unwrap();
        let file = std::fs::File::create(&path).unwrap();
        ParquetWriter::new(file).finish(&mut upper).unwrap();
        let again = read_survey(&path).unwrap();
        assert_eq!(again.answers, survey.answers);
        let mut scoreless = upper.drop("Score").unwrap();
        let file = std::fs::File::create(&path).unwrap();
        ParquetWriter::new(file).finish(&mut scoreless).unwrap();
        let missing = read_survey(&path).unwrap_err();
        assert!(missing.is_refusal());
        assert!(
            missing.to_string().ends_with(
                "survey.parquet`: required column `score` is missing; a survey has the columns user_id, answered_at, score and optionally comment (in any case)"
            ),
            "{missing}"
        );
    }
}
