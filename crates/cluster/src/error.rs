//! Errors of the cluster engine.

/// What can go wrong between userlens and a Ballista cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine address is not `ballista://host:port`.
    #[error("`{url}` is not a Ballista address (`ballista://host:port`): {why}")]
    Address {
        /// The address as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The scheduler did not answer.
    #[error("the Ballista scheduler at {address} cannot be reached: {message}")]
    Unreachable {
        /// `host:port` of the scheduler.
        address: String,
        /// What the connection attempt reported.
        message: String,
    },
    /// A job on the cluster failed.
    #[error("the job on the Ballista cluster at {address} failed: {message}")]
    Job {
        /// `host:port` of the scheduler.
        address: String,
        /// What Ballista or DataFusion reported.
        message: String,
    },
    /// A scheduler or executor process stopped with an error.
    #[error("the Ballista {role} stopped: {message}")]
    Role {
        /// `scheduler` or `executor`.
        role: &'static str,
        /// What Ballista reported.
        message: String,
    },
    /// An executor's work dir cannot be written: it would take tasks and fail them.
    #[error("the executor's work dir `{path}` cannot be written")]
    WorkDir {
        /// The folder.
        path: std::path::PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The results of a job could not be read back.
    #[error("the cluster's results could not be read: {0}")]
    Results(String),
    /// The async runtime could not start.
    #[error("could not start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Result of the cluster engine.
pub type Result<T> = std::result::Result<T, Error>;
