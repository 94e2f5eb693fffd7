//! The one error type of the loyalty stage.

/// Everything that can go wrong while computing retention, NPS and drivers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter is out of range.
    #[error("invalid loyalty parameter `{name}`: {reason}")]
    InvalidParams {
        /// Parameter name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A table lacks a column the stage reads.
    #[error("the `{table}` table has no `{column}` column")]
    MissingColumn {
        /// Table name (`assignments`, `segments`, `survey`).
        table: &'static str,
        /// Column name.
        column: &'static str,
    },
    /// No event falls before the as-of date.
    #[error("no event before the as-of date: no cohort to follow")]
    NoEvents,
    /// A polars operation failed.
    #[error("failed to {what}")]
    Polars {
        /// What was being done.
        what: &'static str,
        /// The polars error.
        #[source]
        source: polars::prelude::PolarsError,
    },
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Maps a polars error to [`Error::Polars`] with what was being done.
pub(crate) fn polars_err(what: &'static str) -> impl Fn(polars::prelude::PolarsError) -> Error {
    move |source| Error::Polars { what, source }
}
