//! The errors of the `features` crate.

use polars::prelude::PolarsError;

/// Errors of the features stage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid parameters.
    #[error("{0}")]
    Params(String),
    /// A polars query failed.
    #[error("failed to {action}")]
    Polars {
        /// What was being computed.
        action: &'static str,
        /// Underlying error.
        #[source]
        source: PolarsError,
    },
    /// The per-part work on another engine (a cluster) failed.
    #[error("computing the features of the parts on {engine} failed: {message}")]
    Remote {
        /// The engine, such as `ballista://host:50050`.
        engine: String,
        /// What it reported.
        message: String,
    },
}

/// Result of the features stage.
pub type Result<T> = std::result::Result<T, Error>;
