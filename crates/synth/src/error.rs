//! The errors of the `synth` crate.

use std::io;

/// Errors of synthetic data generation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter is out of range.
    #[error("invalid synth parameter `{name}`: {reason}")]
    InvalidParams {
        /// Parameter name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The event output could not be written.
    #[error("failed to write events for user `{user}`")]
    Events {
        /// User being written when the error surfaced (writes are buffered, so a
        /// failure may show up a few users later, at the latest on the final flush).
        user: String,
        /// Underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The ground truth output could not be written.
    #[error("failed to write ground truth for user `{user}`")]
    Truth {
        /// User being written when the error surfaced (writes are buffered, so a
        /// failure may show up a few users later, at the latest on the final flush).
        user: String,
        /// Underlying CSV error.
        #[source]
        source: csv::Error,
    },
    /// The survey could not be written.
    #[error("failed to write the survey answer of user `{user}`")]
    Survey {
        /// User being written.
        user: String,
        /// Underlying CSV error.
        #[source]
        source: csv::Error,
    },
    /// The events a survey is made from are not the generator's.
    #[error("cannot make a survey from these events (line {line}): {reason}")]
    SurveyEvents {
        /// Line of the events file (0: found at the end of a user).
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;
