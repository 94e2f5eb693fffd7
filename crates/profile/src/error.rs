//! The error type of the profile stage.

use linfa_clustering::GmmError;
use polars::prelude::PolarsError;

/// Everything that can go wrong while checking parameters or building personas.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A parameter from the pipeline file is out of range; the message names it.
    #[error("{0}")]
    InvalidParams(String),
    /// The features table has no `user_id` column.
    #[error("the features table has no `user_id` column")]
    MissingUserId,
    /// The `user_id` column is not a text column.
    #[error("`user_id` in the features table must be text, found {dtype}")]
    UserIdNotText {
        /// The data type found.
        dtype: String,
    },
    /// A `user_id` is null.
    #[error("`user_id` is null in row {row} of the features table")]
    NullUserId {
        /// 1-based row number in the input order.
        row: usize,
    },
    /// The same user appears on two rows.
    #[error("user `{user}` appears more than once in the features table")]
    DuplicateUser {
        /// The repeated user id.
        user: String,
    },
    /// The features table has no rows.
    #[error("the features table has no users")]
    NoUsers,
    /// A name in `features` is not a column of the table.
    #[error("feature `{name}` is not a column of the features table")]
    UnknownFeature {
        /// The name from `features`.
        name: String,
    },
    /// A name in `exclude` is not a column of the table.
    #[error("excluded column `{name}` is not a column of the features table")]
    UnknownExclude {
        /// The name from `exclude`.
        name: String,
    },
    /// `exclude` leaves out every feature there was to cluster on.
    #[error("`exclude` leaves no feature to cluster on ({excluded} excluded)")]
    EverythingExcluded {
        /// How many names `exclude` lists.
        excluded: usize,
    },
    /// A name in `features` is a column that is not numeric.
    #[error("feature `{name}` in the features table is not numeric, found {dtype}")]
    NotNumeric {
        /// The column name.
        name: String,
        /// The data type found.
        dtype: String,
    },
    /// linfa's Gaussian mixture failed to fit.
    #[error("gaussian mixture with k = {k} failed to fit")]
    Gmm {
        /// Number of components tried.
        k: usize,
        /// The error from linfa.
        #[source]
        source: GmmError,
    },
    /// linfa's Gaussian mixture returned means that are not finite numbers.
    #[error("gaussian mixture with k = {k} produced non-finite means")]
    GmmNotFinite {
        /// Number of components tried.
        k: usize,
    },
    /// Lloyd's E-step on another engine (a cluster) failed or sent back something
    /// malformed; the message names the engine where it is known.
    #[error("k-means on the cluster: {0}")]
    Remote(String),
    /// A polars operation failed.
    #[error("failed to {context}")]
    Polars {
        /// What was being done, e.g. "read feature `monetary`".
        context: String,
        /// The error from polars.
        #[source]
        source: PolarsError,
    },
}

/// Result of the profile stage.
pub type Result<T> = std::result::Result<T, Error>;

/// Attaches what was being done to a polars error.
pub(crate) trait WhileDoing<T> {
    /// Maps the error to [`Error::Polars`] with `context` built lazily.
    fn while_doing<F: FnOnce() -> String>(self, context: F) -> Result<T>;
}

impl<T> WhileDoing<T> for std::result::Result<T, PolarsError> {
    fn while_doing<F: FnOnce() -> String>(self, context: F) -> Result<T> {
        self.map_err(|source| Error::Polars {
            context: context(),
            source,
        })
    }
}
