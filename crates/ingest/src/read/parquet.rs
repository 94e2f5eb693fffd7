//! Parquet sources, and side tables (a users table) read from CSV or Parquet.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use polars::prelude::*;
use userlens_model::columns;

use super::{Parsed, Sink, header_names, resolve};
use crate::error::{Error, Result};
use crate::{Source, SourceFormat, parquet_type};

pub(super) fn read_parquet(source: &Source) -> Result<Parsed> {
    let path = source.path();
    let parquet = |source| bad_parquet(path, source);
    // Read whole, as a side table is: mapped, a file rewritten in place while it is
    // read would stop the process (SIGBUS) rather than fail the read.
    let mut reader = ParquetReader::new(std::io::Cursor::new(side_table_bytes(path)?));
    let schema = guarded(path, || reader.schema())?;
    let names: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
    let header = header_names(source, Some(names.clone()), names.len());
    let slots = resolve(source, &header)?;
    // Only the columns the mapping uses are read: polars panics on some types it
    // was built without (decimals), and an unused column must not stop the run.
    let mut used: Vec<usize> = Vec::new();
    let mut targets = std::collections::BTreeMap::new();
    for (target, index) in slots.used() {
        targets.entry(index).or_insert(target);
        let Some((_, field)) = schema.get_at_index(index) else {
            continue;
        };
        if let Err(unsupported) = parquet_type::check_event_field(&field.dtype) {
            return Err(unsupported.into_error(path, &names[index], Some(target)));
        }
        used.push(index);
    }
    used.sort_unstable();
    used.dedup();
    let height = guarded(path, || reader.num_rows())?;
    let df = if used.is_empty() {
        DataFrame::empty()
    } else {
        guarded(path, || reader.with_projection(Some(used.clone())).finish())?
    };
    // Every used column is turned into text and validated like a CSV field, so a
    // Parquet file with wrong types is quarantined row by row, not refused whole;
    // binary columns go as their bytes, so invalid UTF-8 is a row's fault too.
    let mut byte_columns: Vec<Option<BinaryChunked>> = vec![None; header.len()];
    // Per column, the rows of dates too far out to write as text.
    let mut unwritable: Vec<(usize, Vec<bool>)> = Vec::new();
    for (index, column) in used.iter().zip(df.columns()) {
        let column = parquet_type::naive_utc(column);
        let (column, outside) = parquet_type::formattable(&column).map_err(parquet)?;
        unwritable.extend(outside.map(|rows| (*index, rows)));
        let bytes = if column.dtype() == &DataType::Binary {
            column.binary().map_err(parquet)?.clone()
        } else {
            let text = column.cast(&DataType::String).map_err(parquet)?;
            text.str().map_err(parquet)?.as_binary()
        };
        byte_columns[*index] = Some(bytes);
    }
    let mut sink = Sink::new(source, &header, slots, height);
    let iters: Vec<Vec<Option<&[u8]>>> = byte_columns
        .iter()
        .map(|c| c.as_ref().map(|c| c.iter().collect()).unwrap_or_default())
        .collect();
    let mut fields: Vec<&[u8]> = Vec::with_capacity(header.len());
    for row in 0..height {
        fields.clear();
        for column in &iters {
            fields.push(column.get(row).copied().flatten().unwrap_or(b""));
        }
        let line = row as u64 + 1;
        // A footer may count more rows than the columns hold: those rows are blank.
        if let Some((index, _)) = (unwritable.iter()).find(|(_, rows)| rows.get(row) == Some(&true))
        {
            let reason = format!(
                "`{}` is a date or time outside the years 1-9999",
                header[*index]
            );
            let target = targets.get(index).copied().unwrap_or_default();
            sink.read += 1;
            sink.refuse(line, target, reason, &fields, b',');
            continue;
        }
        sink.row(line, &fields, None, b',');
    }
    sink.finish()
}

/// Reads a whole Parquet table, refusing a column of a type polars cannot read
/// here (instead of panicking) and turning time-zoned timestamps into UTC.
pub(crate) fn read_parquet_file(path: &Path) -> Result<DataFrame> {
    read_parquet_checked(path, parquet_type::check_table_field)
}

/// [`read_parquet_file`], each column's type checked by `check`.
fn read_parquet_checked(
    path: &Path,
    check: fn(&ArrowDataType) -> std::result::Result<(), parquet_type::Unsupported>,
) -> Result<DataFrame> {
    let parquet = |source| bad_parquet(path, source);
    let mut reader = ParquetReader::new(std::io::Cursor::new(side_table_bytes(path)?));
    let schema = guarded(path, || reader.schema())?;
    for (name, field) in schema.iter() {
        if let Err(unsupported) = check(&field.dtype) {
            return Err(unsupported.into_error(path, name, None));
        }
    }
    let df = guarded(path, || reader.finish())?;
    let columns = df.columns().iter().map(parquet_type::naive_utc).collect();
    DataFrame::new(df.height(), columns).map_err(parquet)
}

/// A Parquet file's bytes, read whole: polars would map the file, and one rewritten
/// in place while mapped stops the process (SIGBUS).
fn side_table_bytes(path: &Path) -> Result<Vec<u8>> {
    crate::regular_file(path)?;
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a side table (such as a users table) from CSV or Parquet with polars,
/// keeping `user_id` as text so ids with leading zeros survive.
pub fn read_table(path: &Path) -> Result<DataFrame> {
    let mut df = if crate::guess_format(path) == SourceFormat::Parquet {
        // Each column becomes a feature or an attribute of its own; bytes are text,
        // as older writers store it, when they are UTF-8.
        let mut df = read_parquet_checked(path, parquet_type::check_attribute_field)?;
        let binary: Vec<String> = (df.columns().iter())
            .filter(|c| matches!(c.dtype(), DataType::Binary | DataType::BinaryOffset))
            .map(|c| c.name().to_string())
            .collect();
        for name in binary {
            let text =
                (df.column(&name).and_then(|c| c.cast(&DataType::String))).map_err(|_| {
                    Error::UnsupportedColumn {
                        path: path.to_path_buf(),
                        column: name.clone(),
                        role: String::new(),
                        kind: "bytes that are not UTF-8 text".into(),
                        fix: "write it as text (UTF-8), or leave it out of the table".into(),
                    }
                })?;
            df.with_column(text).map_err(|source| Error::Table {
                path: path.to_path_buf(),
                source,
            })?;
        }
        df
    } else {
        // Text in UTF-16, or a Parquet file named `.csv`, is named as the events' is;
        // gzip is read through, as the events' is.
        let mut no_progress = |_: u64, _: u64| {};
        let opened = super::open(path, &mut no_progress).map_err(|e| match e {
            Error::ParquetAsText { path } => Error::TableLayout {
                path,
                problem: "a Parquet file (it begins with `PAR1`) named as text: name it \
                          `.parquet`"
                    .into(),
            },
            other => other,
        })?;
        let mut bytes = Vec::new();
        let mut reader = opened.reader;
        reader.read_to_end(&mut bytes).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // The ids stay text (`007`), under whatever case the header gives them.
        let header = csv_header(path, &bytes)?;
        // Polars pads a short row with nulls: a row of another width is refused, at
        // its line, before polars reads the file.
        if let Some(bad) = bad_row(path, &bytes) {
            return Err(bad);
        }
        let id = id_column(path, header.iter().map(String::as_str))?.unwrap_or(columns::USER_ID);
        let id = id.to_string();
        let overwrite = Schema::from_iter([Field::new(id.as_str().into(), DataType::String)]);
        // Types from every row: a word in a column of numbers after the first rows
        // makes it text, as it would in the first.
        let read = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(None)
            .with_schema_overwrite(Some(Arc::new(overwrite)))
            .into_reader_with_file_handle(std::io::Cursor::new(&bytes[..]))
            .finish();
        let df = match read {
            // A column without a name (a spreadsheet's trailing commas) is left out:
            // polars would name it `_duplicated_0`, and it would become a feature.
            Ok(df) if header.len() == df.width() => {
                let named = (df.columns().iter().zip(&header))
                    .filter(|(_, name)| !name.trim().is_empty())
                    .map(|(column, _)| column.clone())
                    .collect();
                DataFrame::new(df.height(), named).map_err(|source| Error::Table {
                    path: path.to_path_buf(),
                    source,
                })?
            }
            Ok(df) => df,
            Err(source) => {
                return Err(bad_row(path, &bytes).unwrap_or(Error::Table {
                    path: path.to_path_buf(),
                    source,
                }));
            }
        };
        // A column with no value is numbers none of which is known, not text: the
        // personas stage then names it among the features left out as all missing.
        let blank: Vec<Column> = (df.columns().iter())
            .filter(|c| c.name().as_str() != id && c.dtype() == &DataType::String)
            .filter(|c| !c.is_empty() && c.null_count() == c.len())
            .map(|c| Column::full_null(c.name().clone(), c.len(), &DataType::Float64))
            .collect();
        let mut df = df;
        for column in blank {
            df.with_column(column).map_err(|source| Error::Table {
                path: path.to_path_buf(),
                source,
            })?;
        }
        df
    };
    // `User_Id` is the `user_id` column, as in the events and the survey.
    let id =
        id_column(path, df.get_column_names().into_iter().map(|n| n.as_str()))?.map(str::to_string);
    let Some(id) = id else {
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        // A side table has no mapping: the column is named in the file.
        let listed: Vec<&str> = names.iter().map(String::as_str).collect();
        let fix = match userlens_model::did_you_mean(columns::USER_ID, &listed) {
            Some(near) => format!("rename `{near}` to `user_id`"),
            None => "name the column of the user ids `user_id`".to_string(),
        };
        return Err(Error::TableLayout {
            path: path.to_path_buf(),
            problem: format!(
                "no `user_id` column: {fix} (in any case); the columns are: {}",
                names.join(", ")
            ),
        });
    };
    let table = |source| Error::Table {
        path: path.to_path_buf(),
        source,
    };
    if id.as_str() != columns::USER_ID {
        df.rename(id.as_str(), columns::USER_ID.into())
            .map_err(table)?;
    }
    // Ids are trimmed, as the events' and the survey's are.
    if let Ok(ids) = df.column(columns::USER_ID).and_then(|c| c.str()) {
        let trimmed = ids.apply_values(|v| std::borrow::Cow::Borrowed(v.trim()));
        df.with_column(trimmed.into_column()).map_err(table)?;
    }
    Ok(df)
}

/// The users table's id column among `names`: `user_id`, else the one column that is
/// `user_id` but for case and surrounding spaces; two such are a guess, refused.
fn id_column<'a>(
    path: &Path,
    names: impl Iterator<Item = &'a str> + Clone,
) -> Result<Option<&'a str>> {
    if let Some(exact) = names.clone().find(|n| *n == columns::USER_ID) {
        return Ok(Some(exact));
    }
    let loose: Vec<(usize, &str)> = names
        .enumerate()
        .filter(|(_, n)| n.trim().eq_ignore_ascii_case(columns::USER_ID))
        .collect();
    match loose[..] {
        [] => Ok(None),
        [(_, only)] => Ok(Some(only)),
        [(first, first_name), (second, second_name), ..] => Err(Error::TableLayout {
            path: path.to_path_buf(),
            problem: format!(
                "columns `{first_name}` (column {}) and `{second_name}` (column {}) both \
                 spell `user_id`; rename one",
                first + 1,
                second + 1
            ),
        }),
    }
}

/// The header of the CSV `bytes` of `path` (empty if it cannot be read: polars says
/// why); refused when it is one column that looks separated by something else.
fn csv_header(path: &Path, bytes: &[u8]) -> Result<Vec<String>> {
    let header: Vec<String> = csv::Reader::from_reader(bytes)
        .headers()
        .map(|names| names.iter().map(str::to_string).collect())
        .unwrap_or_default();
    if let [only] = header.as_slice()
        && let Some(found) = [';', '\t', '|'].into_iter().find(|c| only.contains(*c))
    {
        let found = if found == '\t' {
            "tabs".to_string()
        } else {
            format!("`{found}`")
        };
        return Err(Error::TableRow {
            path: path.to_path_buf(),
            line: 1,
            reason: format!(
                "the header has no `,` but has {found}: a users table is comma-separated"
            ),
        });
    }
    // Polars would rename the second `plan_duplicated_0`, and no feature be `plan`.
    let twice = |(i, name): &(usize, &String)| !name.is_empty() && header[..*i].contains(name);
    if let Some((i, name)) = header.iter().enumerate().find(twice) {
        return Err(Error::TableRow {
            path: path.to_path_buf(),
            line: 1,
            reason: format!("the column `{name}` is named twice (column {})", i + 1),
        });
    }
    Ok(header)
}

/// The first row of the CSV `bytes` of `path` that the csv crate cannot read (a wrong
/// number of fields, a quote that does not close, invalid UTF-8), as an error
/// naming its line.
fn bad_row(path: &Path, bytes: &[u8]) -> Option<Error> {
    let mut reader = csv::Reader::from_reader(bytes);
    let mut record = csv::StringRecord::new();
    let error = loop {
        match reader.read_record(&mut record) {
            Ok(true) => continue,
            Ok(false) => return None,
            Err(e) => break e,
        }
    };
    let line = match error.kind() {
        // The first line that is not UTF-8.
        csv::ErrorKind::Utf8 { .. } => bytes
            .split(|&b| b == b'\n')
            .position(|l| std::str::from_utf8(l).is_err())
            .map(|i| i as u64 + 1),
        _ => error.position().map(csv::Position::line),
    }
    .unwrap_or(1);
    let reason = match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("expected {expected_len} fields, found {len} (a quote that does not close?)"),
        csv::ErrorKind::Utf8 { .. } => "invalid UTF-8".to_string(),
        _ => error.to_string(),
    };
    Some(Error::TableRow {
        path: path.to_path_buf(),
        line,
        reason,
    })
}

/// Reads under way that a malformed file can make panic.
static GUARDED: AtomicUsize = AtomicUsize::new(0);

/// Whether a read of a file that can make polars panic is under way: a panic now is
/// most likely the file's, and reported as its error (a panic hook may keep quiet).
pub fn reading_untrusted_file() -> bool {
    GUARDED.load(Ordering::SeqCst) > 0
}

/// Runs a read of the Parquet file at `path`: some malformed files make polars
/// panic rather than fail, and such a panic is the file's fault, refused like it.
fn guarded<T>(path: &Path, read: impl FnOnce() -> PolarsResult<T>) -> Result<T> {
    /// Counts this read among those under way while it runs.
    struct Reading;
    impl Drop for Reading {
        fn drop(&mut self) {
            GUARDED.fetch_sub(1, Ordering::SeqCst);
        }
    }
    GUARDED.fetch_add(1, Ordering::SeqCst);
    let reading = Reading;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(read));
    drop(reading);
    match outcome {
        Ok(read) => read.map_err(|source| bad_parquet(path, source)),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|m| m.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let source = polars_err!(ComputeError: "the reader failed on it ({message})");
            Err(bad_parquet(path, source))
        }
    }
}

/// A Parquet file polars could not read: malformed ([`Error::BadParquet`], refused),
/// or the disk failing to give its bytes.
fn bad_parquet(path: &Path, source: PolarsError) -> Error {
    let path = path.to_path_buf();
    match source {
        PolarsError::IO { .. } => Error::Parquet { path, source },
        source => Error::BadParquet { path, source },
    }
}
