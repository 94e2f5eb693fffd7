//! Parquet sources, and side tables (a users table) read from CSV or Parquet.

use std::path::Path;

use polars::prelude::*;
use userlens_model::columns;

use super::{Parsed, Sink, header_names, open_file, resolve};
use crate::error::{Error, Result};
use crate::{Source, SourceFormat, parquet_type};

pub(super) fn read_parquet(source: &Source) -> Result<Parsed> {
    let path = source.path();
    let parquet = |source| bad_parquet(path, source);
    let mut reader = ParquetReader::new(open_file(path)?);
    let schema = reader.schema().map_err(parquet)?;
    let names: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
    let header = header_names(source, Some(names.clone()), names.len());
    let slots = resolve(source, &header)?;
    // Only the columns the mapping uses are read: polars panics on some types it
    // was built without (decimals), and an unused column must not stop the run.
    let mut used: Vec<usize> = Vec::new();
    for (target, index) in slots.used() {
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
    let height = reader.num_rows().map_err(parquet)?;
    let df = if used.is_empty() {
        DataFrame::empty()
    } else {
        reader
            .with_projection(Some(used.clone()))
            .finish()
            .map_err(parquet)?
    };
    // Every used column is turned into text and validated like a CSV field, so a
    // Parquet file with wrong types is quarantined row by row, not refused whole;
    // binary columns go as their bytes, so invalid UTF-8 is a row's fault too.
    let mut byte_columns: Vec<Option<BinaryChunked>> = vec![None; header.len()];
    for (index, column) in used.iter().zip(df.columns()) {
        let column = parquet_type::naive_utc(column);
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
        sink.row(row as u64 + 1, &fields, None, b',');
    }
    sink.finish()
}

/// Reads a whole Parquet table, refusing a column of a type polars cannot read
/// here (instead of panicking) and turning time-zoned timestamps into UTC.
pub(crate) fn read_parquet_file(path: &Path) -> Result<DataFrame> {
    let parquet = |source| bad_parquet(path, source);
    let mut reader = ParquetReader::new(open_file(path)?);
    let schema = reader.schema().map_err(parquet)?;
    for (name, field) in schema.iter() {
        if let Err(unsupported) = parquet_type::check_table_field(&field.dtype) {
            return Err(unsupported.into_error(path, name, None));
        }
    }
    let df = reader.finish().map_err(parquet)?;
    let columns = df.columns().iter().map(parquet_type::naive_utc).collect();
    DataFrame::new(df.height(), columns).map_err(parquet)
}

/// Reads a side table (such as a users table) from CSV or Parquet with polars,
/// keeping `user_id` as text so ids with leading zeros survive.
pub fn read_table(path: &Path) -> Result<DataFrame> {
    let df = if crate::guess_format(path) == SourceFormat::Parquet {
        read_parquet_file(path)?
    } else {
        crate::regular_file(path)?;
        let overwrite = Schema::from_iter([Field::new(columns::USER_ID.into(), DataType::String)]);
        CsvReadOptions::default()
            .with_has_header(true)
            .with_schema_overwrite(Some(Arc::new(overwrite)))
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|reader| reader.finish())
            .map_err(|source| Error::Table {
                path: path.to_path_buf(),
                source,
            })?
    };
    if df.column(columns::USER_ID).is_err() {
        return Err(Error::MissingRequired {
            path: path.to_path_buf(),
            column: columns::USER_ID,
        });
    }
    Ok(df)
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
