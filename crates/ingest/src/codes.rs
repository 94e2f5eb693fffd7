//! Dictionary columns in the spill and part files: each file holds its own codes
//! (numbered in order of first appearance) and lists their values in its metadata.
//!
//! Polars reads a categorical column back from Parquet by looking every row's string
//! up in the process's dictionary; a file's own codes are mapped through a table
//! made from its list instead, one lookup per distinct value.

use std::path::Path;
use std::sync::Arc;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::finish::dictionary;

/// Prefix of the metadata key that lists a column's values, in the order of its codes.
const KEY_PREFIX: &str = "userlens.values.";

/// `df` with every categorical column as its own `u32` codes, and the metadata that
/// lists each one's values.
pub(crate) fn to_file(df: &DataFrame) -> PolarsResult<(DataFrame, Vec<(String, String)>)> {
    let mut columns = Vec::with_capacity(df.width());
    let mut metadata = Vec::new();
    for column in df.columns() {
        if !matches!(column.dtype(), DataType::Categorical(..)) {
            columns.push(column.clone());
            continue;
        }
        let categorical = column.cat32()?;
        let (codes, values) = own_codes(categorical)?;
        let values = serde_json::to_string(&values).map_err(
            |e| polars_err!(ComputeError: "list the values of `{}`: {e}", column.name()),
        )?;
        metadata.push((format!("{KEY_PREFIX}{}", column.name()), values));
        columns.push(codes.with_name(column.name().clone()).into_column());
    }
    Ok((DataFrame::new(df.height(), columns)?, metadata))
}

/// Codes numbered by first appearance (nulls stay null), and the value of each.
fn own_codes(categorical: &Categorical32Chunked) -> PolarsResult<(UInt32Chunked, Vec<&str>)> {
    let mapping = categorical.get_mapping();
    let mut own = vec![u32::MAX; mapping.num_cats_upper_bound()];
    let mut values = Vec::new();
    let mut own_code = |code: u32| {
        let slot = &mut own[code as usize];
        if *slot == u32::MAX {
            *slot = values.len() as u32;
            values.push(code);
        }
        *slot
    };
    let mut codes = UInt32Chunked::from_vec(PlSmallStr::EMPTY, Vec::new());
    for chunk in categorical.physical().downcast_iter() {
        let own: Vec<u32> = match chunk.validity() {
            None => chunk.values().iter().map(|&c| own_code(c)).collect(),
            Some(valid) => (chunk.values().iter().zip(valid.iter()))
                .map(|(&c, valid)| if valid { own_code(c) } else { 0 })
                .collect(),
        };
        let validity = chunk.validity().cloned();
        codes.append_owned(UInt32Chunked::from_vec_validity(
            PlSmallStr::EMPTY,
            own,
            validity,
        ))?;
    }
    let values = values
        .into_iter()
        .map(|code| mapping.cat_to_str(code).unwrap_or_default())
        .collect();
    Ok((codes, values))
}

/// A lazy scan of the file at `path` that a [`to_file`] table was written to, its
/// coded columns back as categoricals of the process's [`dictionary`].
pub(crate) fn scan(path: &Path) -> Result<LazyFrame> {
    let at = |source| Error::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let coded = listed(path)?
        .iter()
        .map(|(name, values)| decode(name, values).map_err(at))
        .collect::<Result<Vec<_>>>()?;
    let scan = PlRefPath::try_from_path(path)
        .and_then(|p| LazyFrame::scan_parquet(p, ScanArgsParquet::default()))
        .map_err(at)?;
    Ok(if coded.is_empty() {
        scan
    } else {
        scan.with_columns(coded)
    })
}

/// The values a part file lists for its coded column `name` (none when the file
/// does not code it).
pub(crate) fn listed_values(path: &Path, name: &str) -> Result<Vec<String>> {
    Ok(listed(path)?
        .into_iter()
        .find(|(coded, _)| coded == name)
        .map(|(_, values)| values)
        .unwrap_or_default())
}

/// Each coded column of a file and its values, in the order of its codes, from
/// the file's metadata.
fn listed(path: &Path) -> Result<Vec<(String, Vec<String>)>> {
    let at = |source| Error::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = ParquetReader::new(file);
    let mut coded = Vec::new();
    if let Some(pairs) = reader.get_metadata().map_err(at)?.key_value_metadata() {
        for pair in pairs {
            let (Some(name), Some(values)) = (pair.key.strip_prefix(KEY_PREFIX), &pair.value)
            else {
                continue;
            };
            let values: Vec<String> = serde_json::from_str(values).map_err(|e| {
                at(polars_err!(ComputeError: "the values of `{name}` are not a list: {e}"))
            })?;
            coded.push((name.to_string(), values));
        }
    }
    Ok(coded)
}

/// The expression that turns the file's codes of column `name`, whose values are
/// `values`, into the process's.
fn decode(name: &str, values: &[String]) -> PolarsResult<Expr> {
    let dtype = dictionary(name);
    let mapping = dtype.cat_mapping()?;
    let ours: Arc<Vec<u32>> = Arc::new(
        values
            .iter()
            .map(|v| mapping.insert_cat(v))
            .collect::<PolarsResult<_>>()?,
    );
    let column = PlSmallStr::from(name);
    let output = dtype.clone();
    Ok(col(column.clone()).map(
        move |codes: Column| {
            // The scan's own column, mapped in place.
            let codes = codes.take_materialized_series().u32()?.clone();
            if codes.max().is_some_and(|c| c as usize >= ours.len()) {
                polars_bail!(ComputeError: "`{column}` has codes past its {} values", ours.len());
            }
            // Null rows' codes are meaningless and may be anything.
            let ours = codes.apply_in_place(|c| ours.get(c as usize).copied().unwrap_or(0));
            Ok(Categorical32Chunked::from_cats_and_dtype(ours, dtype.clone()).into_column())
        },
        move |_, field| Ok(Field::new(field.name().clone(), output.clone())),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spill::write_parquet;

    fn coded(values: &[Option<&str>]) -> Column {
        let text = Series::new("item_id".into(), values);
        text.cast(&dictionary("item_id")).unwrap().into_column()
    }

    /// A table of two chunks, the second starting with a value new to the first.
    fn table(first: &[Option<&str>], second: &[Option<&str>]) -> DataFrame {
        let part = |values: &[Option<&str>]| {
            let n = values.len() as i64;
            DataFrame::new(
                values.len(),
                vec![
                    coded(values),
                    Column::new("n".into(), (0..n).collect::<Vec<_>>()),
                ],
            )
            .unwrap()
        };
        let mut whole = part(first);
        whole.vstack_mut(&part(second)).unwrap();
        whole
    }

    #[test]
    fn coded_columns_come_back_as_the_same_values() {
        let dir = tempfile::tempdir().unwrap();
        let tables = [
            table(&[Some("b"), None, Some("a"), Some("b")], &[Some("c"), None]),
            table(&[Some("c"), Some("a")], &[None, Some("b"), Some("a")]),
        ];
        for (i, table) in tables.iter().enumerate() {
            let path = dir.path().join(format!("{i}.parquet"));
            write_parquet(table, &path, crate::spill::PART).unwrap();
            // The file holds its own codes, numbered by first appearance.
            let raw = LazyFrame::scan_parquet(
                PlRefPath::try_from_path(&path).unwrap(),
                ScanArgsParquet::default(),
            )
            .unwrap()
            .collect()
            .unwrap();
            let codes: Vec<Option<u32>> = raw
                .column("item_id")
                .unwrap()
                .u32()
                .unwrap()
                .iter()
                .collect();
            let expected = match i {
                0 => vec![Some(0), None, Some(1), Some(0), Some(2), None],
                _ => vec![Some(0), Some(1), None, Some(2), Some(1)],
            };
            assert_eq!(codes, expected);
            let back = scan(&path).unwrap().collect().unwrap();
            assert_eq!(
                back.column("item_id").unwrap().dtype(),
                &dictionary("item_id")
            );
            assert!(back.equals_missing(table), "{back}\n{table}");
        }
    }

    #[test]
    fn codes_past_the_values_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.parquet");
        let mut df = df!("item_id" => [0u32, 3]).unwrap();
        let values = vec![(format!("{KEY_PREFIX}item_id"), r#"["a","b"]"#.to_string())];
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .with_key_value_metadata(Some(KeyValueMetadata::from_static(values)))
            .finish(&mut df)
            .unwrap();
        let error = scan(&path).unwrap().collect().unwrap_err();
        assert!(error.to_string().contains("past its 2 values"), "{error}");
    }
}
