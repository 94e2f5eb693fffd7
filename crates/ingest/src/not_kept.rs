//! The rows of a source not kept: refused (the quarantine) or dropped as exact
//! duplicates, told a block at a time in the order of their lines, so that a log of
//! many duplicates never holds their text whole.

use polars::prelude::*;

use crate::error::{self, Result};

/// A row dropped as an exact duplicate: its line, and the line of the row it repeats
/// (the first of them in the file, which is kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duplicate {
    /// The line of the row dropped (a Parquet file's row, from 1).
    pub line: u64,
    /// The line of the row kept in its place.
    pub of: u64,
}

/// The rows of one source dropped as duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Duplicates {
    /// The source, as the quarantine names it.
    pub file: String,
    /// By line.
    pub rows: Vec<Duplicate>,
}

impl Duplicates {
    pub(crate) fn new(file: String, mut rows: Vec<Duplicate>) -> Duplicates {
        rows.sort_by_key(|d| d.line);
        Duplicates { file, rows }
    }

    /// `rows` in the quarantine's columns (`file, line, column, reason, raw`): no
    /// column or raw text, the reason naming the line kept in its place.
    fn table(&self, rows: &[Duplicate]) -> Result<DataFrame> {
        let height = rows.len();
        let reasons: Vec<String> = (rows.iter())
            .map(|d| {
                format!(
                    "a duplicate of line {}: the same in every column read",
                    d.of
                )
            })
            .collect();
        DataFrame::new(
            height,
            vec![
                Column::new("file".into(), vec![self.file.as_str(); height]),
                Column::new(
                    "line".into(),
                    rows.iter().map(|d| d.line).collect::<Vec<_>>(),
                ),
                Column::new("column".into(), vec![""; height]),
                Column::new("reason".into(), reasons),
                Column::new("raw".into(), vec![""; height]),
            ],
        )
        .map_err(error::polars("build the quarantine table"))
    }
}

/// Blocks of at most `rows` rows of the `refused` rows and the `duplicates`,
/// merged by line.
pub struct NotKept<'a> {
    refused: DataFrame,
    lines: Vec<u64>,
    duplicates: &'a Duplicates,
    at: (usize, usize),
    rows: usize,
}

impl<'a> NotKept<'a> {
    pub(crate) fn new(
        refused: &DataFrame,
        duplicates: &'a Duplicates,
        rows: usize,
    ) -> Result<Self> {
        let action = "build the quarantine table";
        let refused = refused
            .sort(
                ["line"],
                SortMultipleOptions::default().with_maintain_order(true),
            )
            .map_err(error::polars(action))?;
        let lines = refused
            .column("line")
            .and_then(Column::u64)
            .map_err(error::polars(action))?
            .iter()
            .map(Option::unwrap_or_default)
            .collect();
        Ok(NotKept {
            refused,
            lines,
            duplicates,
            at: (0, 0),
            rows: rows.max(1),
        })
    }

    fn block(&mut self) -> Result<Option<DataFrame>> {
        let (r0, d0) = self.at;
        let dups = &self.duplicates.rows;
        let (mut r, mut d) = (r0, d0);
        while (r - r0) + (d - d0) < self.rows && (r < self.lines.len() || d < dups.len()) {
            match (self.lines.get(r), dups.get(d)) {
                (Some(&refused), Some(dup)) if dup.line < refused => d += 1,
                (Some(_), _) => r += 1,
                (None, _) => d += 1,
            }
        }
        self.at = (r, d);
        if r == r0 && d == d0 {
            return Ok(None);
        }
        let mut block = self.refused.slice(r0 as i64, r - r0);
        if d > d0 {
            let action = "build the quarantine table";
            block
                .vstack_mut(&self.duplicates.table(&dups[d0..d])?)
                .map_err(error::polars(action))?;
            if r > r0 {
                block = block
                    .sort(
                        ["line"],
                        SortMultipleOptions::default().with_maintain_order(true),
                    )
                    .map_err(error::polars(action))?;
            }
        }
        Ok(Some(block))
    }
}

impl Iterator for NotKept<'_> {
    type Item = Result<DataFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        self.block().transpose()
    }
}
