//! What the runner reports while it works.

use serde::Serialize;

/// What the runner reports while it works; serialised (`--log-format json`) as one
/// object per event, tagged `event`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Progress {
    /// The run started.
    RunStarted {
        /// Pipeline name.
        pipeline: String,
        /// Run id.
        run_id: String,
        /// Number of stages.
        stages: usize,
    },
    /// A stage started.
    StageStarted {
        /// 0-based position.
        index: usize,
        /// Stage name.
        #[serde(rename = "stage")]
        name: String,
        /// Stage kind.
        uses: &'static str,
    },
    /// A stage finished.
    StageFinished {
        /// 0-based position.
        index: usize,
        /// Stage name.
        #[serde(rename = "stage")]
        name: String,
        /// Wall time.
        seconds: f64,
        /// Rows of its main output table.
        rows: u64,
    },
    /// A stage was not run: a finished artifact with the same key was reused.
    StageSkipped {
        /// 0-based position.
        index: usize,
        /// Stage name.
        #[serde(rename = "stage")]
        name: String,
        /// The run whose artifact was reused.
        reused_from: String,
    },
    /// A stage failed and will be tried again.
    #[serde(rename = "stage_retrying")]
    Retrying {
        /// Stage name.
        #[serde(rename = "stage")]
        name: String,
        /// The attempt about to start (2 = first retry).
        attempt: u32,
        /// Wait before it, in seconds.
        delay_seconds: f64,
        /// Why the previous attempt failed.
        error: String,
    },
    /// A long stage moved on: `done` of `total` units (bytes of input for ingest).
    #[serde(rename = "stage_progress")]
    StageAdvanced {
        /// 0-based position.
        index: usize,
        /// Work done so far.
        done: u64,
        /// All the work (never below `done`).
        total: u64,
        /// What is counted, e.g. "bytes".
        unit: &'static str,
    },
    /// The stage's events are in Parquet parts (too big for memory, or for a cluster):
    /// memory freed is worth returning to the OS (the binary's allocator keeps it
    /// otherwise).
    OutOfCore {
        /// 0-based position.
        index: usize,
        /// Stage name.
        #[serde(rename = "stage")]
        name: String,
    },
    /// Something the operator should know.
    Warning {
        /// What happened.
        message: String,
    },
}
