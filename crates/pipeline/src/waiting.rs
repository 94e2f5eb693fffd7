//! Tables that wait on disk between the stages that need them: what stays in memory
//! meanwhile, and how they are read back.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

use polars::prelude::*;

use crate::artifacts;
use crate::stage::{StageError, Written};

/// The memory behind a column, which its clones share (`None` for a constant).
pub(crate) fn memory_of(column: &Column) -> Option<*const ()> {
    column
        .as_series()
        .map(|series| std::sync::Arc::as_ptr(&series.0).cast::<()>())
}

/// The memory behind every column of `tables`.
pub(crate) fn memory_of_tables<'a>(
    tables: impl Iterator<Item = &'a DataFrame>,
) -> HashSet<*const ()> {
    tables
        .flat_map(|df| df.columns().iter().filter_map(memory_of))
        .collect()
}

/// `df`, saved at `path`, as a table waiting on disk: the columns whose memory is
/// in `staying` (held by tables that stay in memory) are held, the rest let go.
pub(crate) fn wait(
    name: &str,
    df: DataFrame,
    path: PathBuf,
    staying: &HashSet<*const ()>,
) -> Written {
    let held: Vec<Column> = (df.columns().iter())
        .filter(|c| memory_of(c).is_some_and(|m| staying.contains(&m)))
        .cloned()
        .collect();
    tracing::info!(
        "{name} waits on disk, {} of its {} columns held in memory",
        held.len(),
        df.width()
    );
    Written {
        path,
        rows: df.height() as u64,
        held,
    }
}

/// A table that waited on disk: the columns `read` of its file (all when `None`),
/// in the file's order, those held in memory meanwhile taken from there.
pub(crate) fn read_back(
    written: Written,
    read: Option<&BTreeSet<&str>>,
) -> Result<DataFrame, StageError> {
    if written.held.is_empty() {
        let mut df = artifacts::read_table(&written.path)?;
        if let Some(read) = read {
            keep_columns(&mut df, read);
        }
        return Ok(df);
    }
    let mut reader = ParquetReader::new(std::fs::File::open(&written.path)?);
    let names: Vec<String> = reader
        .schema()?
        .iter_names()
        .filter(|name| read.is_none_or(|read| read.contains(name.as_str())))
        .map(|name| name.to_string())
        .collect();
    let held = |name: &str| written.held.iter().find(|c| c.name() == name);
    let missing: Vec<String> = names
        .iter()
        .filter(|name| held(name).is_none())
        .cloned()
        .collect();
    let from_file = if missing.is_empty() {
        DataFrame::empty()
    } else {
        reader.with_columns(Some(missing)).finish()?
    };
    let columns = names
        .iter()
        .map(|name| match held(name) {
            Some(column) => Ok(column.clone()),
            None => from_file.column(name).cloned(),
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    Ok(DataFrame::new(written.rows as usize, columns)?)
}

/// Drops the columns of `df` not in `read`.
pub(crate) fn keep_columns(df: &mut DataFrame, read: &BTreeSet<&str>) {
    let keep: Vec<_> = df
        .get_column_names()
        .into_iter()
        .filter(|name| read.contains(name.as_str()))
        .cloned()
        .collect();
    if keep.len() < df.width()
        && let Ok(narrowed) = df.select(keep)
    {
        *df = narrowed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(df: &mut DataFrame, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("table.parquet");
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .finish(df)
            .unwrap();
        path
    }

    #[test]
    fn clones_share_memory_and_copies_do_not() {
        let df = df!("a" => [1.0, 2.0], "b" => [3.0, 4.0]).unwrap();
        let a = df.column("a").unwrap();
        let narrowed = df.select(["a"]).unwrap();
        assert_eq!(memory_of(a), memory_of(narrowed.column("a").unwrap()));
        let copy = Column::new("a".into(), [1.0, 2.0]);
        assert_ne!(memory_of(a), memory_of(&copy));
        assert_ne!(memory_of(a), memory_of(df.column("b").unwrap()));
        assert_eq!(
            memory_of(&Column::new_scalar("c".into(), 1.0.into(), 2)),
            None
        );
    }

    #[test]
    fn held_columns_come_from_memory_and_the_rest_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut df = df!(
            "user_id" => ["a", "b", "c"],
            "x" => [1.0, 2.0, 3.0],
            "y" => [4u32, 5, 6],
        )
        .unwrap();
        let path = saved(&mut df, dir.path());
        let written = |held: Vec<Column>| Written {
            path: path.clone(),
            rows: 3,
            held,
        };
        // A held column is not read from the file: one whose values differ shows it.
        let other_x = Column::new("x".into(), [7.0, 8.0, 9.0]);
        let back = read_back(written(vec![other_x.clone()]), None).unwrap();
        assert_eq!(back.get_column_names(), ["user_id", "x", "y"]);
        assert!(back.column("x").unwrap().equals(&other_x));
        assert!(back.column("y").unwrap().equals(df.column("y").unwrap()));
        // Only the columns read after are kept, held or not, in the file's order.
        let read: BTreeSet<&str> = ["y", "user_id"].into();
        let held = df.column("user_id").unwrap().clone();
        let back = read_back(written(vec![held.clone()]), Some(&read)).unwrap();
        assert!(back.equals(&df.select(["user_id", "y"]).unwrap()));
        // Every column held: the file gives only their order.
        let mut reversed = df.columns().to_vec();
        reversed.reverse();
        assert!(read_back(written(reversed), None).unwrap().equals(&df));
        std::fs::remove_file(&path).unwrap();
        assert!(read_back(written(Vec::new()), None).is_err());
    }
}
