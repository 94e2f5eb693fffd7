//! Errors of the recommend stage.

/// What can go wrong while recommending.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter is out of range or inconsistent.
    #[error("invalid recommend parameter `{name}`: {reason}")]
    Params {
        /// The parameter, as written under `with`.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The events lack a column the stage reads, or hold a wrong type.
    #[error("the events cannot be read for recommendations: {0}")]
    Events(String),
    /// The evaluation saw a training item among a user's test items, or a training
    /// event at or after the cutoff: its scores would be inflated.
    #[error("evaluation leak: {0}")]
    Leak(String),
    /// The pairs of a log read out of core could not wait in a temporary file.
    #[error("the recommend stage's temporary file in `{}` failed (TMPDIR sets the folder)", std::env::temp_dir().display())]
    Spill(#[source] std::io::Error),
    /// polars failed.
    #[error("polars failed while recommending")]
    Polars(#[from] polars::error::PolarsError),
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn params(name: &'static str, reason: impl Into<String>) -> Error {
    Error::Params {
        name,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_failed_temporary_file_names_its_folder() {
        let error = super::Error::Spill(std::io::Error::from(std::io::ErrorKind::NotFound));
        let folder = std::env::temp_dir().display().to_string();
        assert!(error.to_string().contains(&folder), "{error}");
    }
}
