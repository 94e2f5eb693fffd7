use std::path::{Path, PathBuf};

/// How an error ends a run; the binary maps each class to its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad command line or pipeline file.
    Usage,
    /// A stage failed while running.
    StageFailed,
    /// The input data was refused by a quality gate.
    DataRefused,
    /// Another run of the same pipeline holds the lock.
    Locked,
}

/// A mistake in a pipeline file, located at a line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The pipeline file.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when we can tell.
    pub hint: Option<String>,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Errors of planning and running a pipeline.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline file is wrong.
    #[error("{0}")]
    File(Box<FileError>),
    /// The pipeline file could not be read.
    #[error("failed to read the pipeline file `{path}`")]
    ReadFile {
        /// File.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A `--set` override is malformed or names no stage.
    #[error("{0}")]
    Override(String),
    /// A command-line value is invalid.
    #[error("{0}")]
    Usage(String),
    /// A stage failed.
    #[error("stage `{stage}` failed")]
    Stage {
        /// Stage name.
        stage: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The input data was refused.
    #[error("stage `{stage}` refused the input")]
    Refused {
        /// Stage name.
        stage: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A gate of the pipeline (`[pipeline.gates]`) refused the input, as made by the
    /// stage `after`, which itself finished.
    #[error("the pipeline's gates refused the input after stage `{after}`")]
    Gate {
        /// The stage whose output the gate read.
        after: String,
        /// The gate's reason.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Writing the run's files failed.
    #[error(transparent)]
    Output(#[from] userlens_report::Error),
    /// Another run of the pipeline holds its lock.
    #[error(
        "another run of `{pipeline}` holds the lock `{path}`{}; try again when it has finished",
        held_by(holder)
    )]
    Locked {
        /// Pipeline name.
        pipeline: String,
        /// What the lock file says of its holder.
        holder: String,
        /// The lock file.
        path: PathBuf,
    },
    /// The ledger database failed.
    #[error("failed to use the run ledger `{path}`")]
    Ledger {
        /// Database file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: rusqlite::Error,
    },
    /// The run's cluster did not answer (its scheduler is down or unreachable).
    #[error("cannot reach the cluster at `{url}`: {message}")]
    Cluster {
        /// The cluster's URL.
        url: String,
        /// What opening it reported.
        message: String,
    },
    /// A previous run cannot be resumed.
    #[error("{0}")]
    Resume(String),
    /// The run was abandoned by a signal ([`crate::abandon`]) before its end: nothing
    /// was published or recorded after that.
    #[error("run {run_id} was stopped by a signal")]
    Interrupted {
        /// The run.
        run_id: String,
    },
    /// A signal came once the process's last run had finished: no other starts.
    #[error("stopped by signal {signal} before this run started")]
    Stopped {
        /// The signal's number.
        signal: i32,
    },
    /// The run folder could not be prepared.
    #[error("failed to prepare `{path}`")]
    Io {
        /// Folder or file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The class that decides the exit code.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::File(_)
            | Error::ReadFile { .. }
            | Error::Override(_)
            | Error::Usage(_)
            | Error::Resume(_) => ErrorClass::Usage,
            Error::Locked { .. } => ErrorClass::Locked,
            Error::Refused { .. } | Error::Gate { .. } => ErrorClass::DataRefused,
            Error::Stage { .. }
            | Error::Output(_)
            | Error::Io { .. }
            | Error::Ledger { .. }
            | Error::Cluster { .. }
            | Error::Interrupted { .. }
            | Error::Stopped { .. } => ErrorClass::StageFailed,
        }
    }
}

impl Error {
    /// A refusal whose reason ends by saying where the refused run's files are
    /// (`place`); any other error as it is.
    pub(crate) fn refused_at(self, place: &str) -> Error {
        let located = |source: Box<dyn std::error::Error + Send + Sync>| {
            format!("{}; {place}", error_chain(&*source)).into()
        };
        match self {
            Error::Refused { stage, source } => Error::Refused {
                stage,
                source: located(source),
            },
            Error::Gate { after, source } => Error::Gate {
                after,
                source: located(source),
            },
            other => other,
        }
    }
}

/// The [`Error::Io`] of a failed operation on `path`, for `map_err`.
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) use userlens_model::error_chain;

/// Result of planning and running pipelines.
pub type Result<T> = std::result::Result<T, Error>;

/// ` (pid=.. started=..)`, what the lock's holder wrote in it, if anything yet.
fn held_by(holder: &str) -> String {
    match holder.is_empty() {
        true => String::new(),
        false => format!(" ({holder})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_message_shows_its_holder_only_when_there_is_one() {
        let locked = |holder: &str| {
            Error::Locked {
                pipeline: "nightly".into(),
                holder: holder.into(),
                path: "runs/nightly.lock".into(),
            }
            .to_string()
        };
        assert!(
            locked("")
                .starts_with("another run of `nightly` holds the lock `runs/nightly.lock`; try")
        );
        assert!(locked("pid=7 started=x").contains("`runs/nightly.lock` (pid=7 started=x); try"));
    }
}
