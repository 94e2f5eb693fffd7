//! The errors of the `report` crate.

use polars::prelude::PolarsError;
use std::path::PathBuf;

/// Errors of the report stage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be written.
    #[error("failed to write `{path}`")]
    Io {
        /// Destination.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A folder to write in is a file.
    #[error("cannot write `{path}`: `{file}` is a file, not a folder")]
    NotAFolder {
        /// Destination.
        path: PathBuf,
        /// The file in the way.
        file: PathBuf,
    },
    /// A table could not be serialised.
    #[error("failed to write `{path}`")]
    Polars {
        /// Destination.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: PolarsError,
    },
    /// A record could not be serialised.
    #[error("failed to serialise `{path}`")]
    Json {
        /// Destination.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A table of a finished run could not be read.
    #[error("failed to read `{path}`")]
    ReadTable {
        /// Source file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: PolarsError,
    },
    /// A table of a finished run's folder is not as userlens writes it.
    #[error("`{path}` is not as userlens writes it")]
    RunTable {
        /// The table's file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: Box<Error>,
    },
    /// A file of a finished run could not be read.
    #[error("failed to read `{path}`")]
    ReadFile {
        /// Source file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A run record is not valid JSON.
    #[error("failed to parse `{path}`")]
    ParseJson {
        /// Source file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A table handed to the HTML report lacks a column the report needs.
    #[error("table `{table}` has no `{column}` column")]
    MissingColumn {
        /// Table name (`personas`, `user_personas`, `k_selection`, ...).
        table: &'static str,
        /// Missing column.
        column: String,
    },
    /// A column of a table handed to the HTML report has the wrong type.
    #[error("column `{column}` of table `{table}` is not {expected}")]
    ColumnType {
        /// Table name.
        table: &'static str,
        /// Column name.
        column: String,
        /// What the report expected, e.g. "numeric".
        expected: &'static str,
        /// Underlying error.
        #[source]
        source: PolarsError,
    },
    /// A chart of the HTML report could not be drawn.
    #[error("failed to draw the `{chart}` chart")]
    Chart {
        /// Chart name.
        chart: &'static str,
        /// Underlying error.
        #[source]
        source: plotters::drawing::DrawingAreaErrorKind<std::io::Error>,
    },
}

/// Result of the report stage.
pub type Result<T> = std::result::Result<T, Error>;
