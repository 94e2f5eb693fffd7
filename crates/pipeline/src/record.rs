//! The run record (`run.json`) and what each stage tells it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still going, or killed without a trace (see [`RunStatus::Interrupted`]).
    Running,
    /// Every stage finished and the outputs were published.
    Ok,
    /// A stage failed; the run can be resumed.
    Failed,
    /// The input was refused by a quality gate.
    Refused,
    /// `--only`: one stage ran, nothing was published.
    Partial,
    /// Stopped by a signal, or found running with its process gone; resumable.
    Interrupted,
}

impl RunStatus {
    /// The name stored in the ledger and `run.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::Refused => "refused",
            RunStatus::Partial => "partial",
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Ok,
            RunStatus::Failed,
            RunStatus::Refused,
            RunStatus::Partial,
            RunStatus::Interrupted,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Whether a resume can continue it.
    pub fn resumable(self) -> bool {
        matches!(
            self,
            RunStatus::Running | RunStatus::Failed | RunStatus::Refused | RunStatus::Interrupted
        )
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// How a stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    /// It ran and finished.
    Ok,
    /// A finished artifact with the same key was reused.
    Skipped,
    /// It failed.
    Failed,
}

impl StageStatus {
    /// The name stored in the ledger and `run.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            StageStatus::Ok => "ok",
            StageStatus::Skipped => "skipped",
            StageStatus::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<StageStatus> {
        [StageStatus::Ok, StageStatus::Skipped, StageStatus::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// Whether its artifacts are complete.
    pub fn finished(self) -> bool {
        matches!(self, StageStatus::Ok | StageStatus::Skipped)
    }
}

impl std::fmt::Display for StageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Record of one stage in `run.json`.
#[derive(Debug, Clone, Serialize)]
pub struct StageRecord {
    /// Stage name.
    pub name: String,
    /// Stage kind.
    pub uses: &'static str,
    /// How it ended.
    pub status: StageStatus,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Attempts made.
    pub attempts: u32,
    /// Rows of its main output.
    pub rows_out: u64,
    /// Folder of its artifacts: its name in the run's folder, or for a stage reused,
    /// the folder of the run that made them, as the ledger holds it.
    pub artifacts: String,
    /// The run whose artifact was reused, when skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<String>,
    /// Where its per-part work ran: `local`, or the cluster's URL (for a reused
    /// stage, where the reused artifact was made).
    pub engine: String,
    /// Peak resident memory of the process so far, in MiB (Linux).
    pub peak_rss_mib: Option<f64>,
    /// Error text when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Row counts of the run's input.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rows {
    /// Rows read.
    pub read: u64,
    /// Rows kept.
    pub kept: u64,
    /// Rows quarantined.
    pub quarantined: u64,
    /// Exact duplicates dropped.
    pub duplicates: u64,
    /// Users profiled.
    pub users: u64,
    /// Rows kept that are earlier than the as-of date, when the run has one: the
    /// events the run profiles, which the volume gates compare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_as_of: Option<u64>,
}

/// One persona in the run summary.
#[derive(Debug, Clone, Serialize)]
pub struct PersonaSummary {
    /// Persona id.
    pub persona_id: u32,
    /// Generated label.
    pub label: String,
    /// Users in it.
    pub users: u64,
    /// Share of all users.
    pub share: f64,
}

/// `run.json`: what ran, on what, with what result.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Pipeline name.
    pub pipeline: String,
    /// Pipeline file.
    pub pipeline_file: String,
    /// Run id (also the run folder's name).
    pub run_id: String,
    /// How the run ended.
    pub status: RunStatus,
    /// As-of date used (events before it count).
    pub as_of: Option<String>,
    /// Whether the as-of date was given or derived from the data.
    pub as_of_source: &'static str,
    /// Seed.
    pub seed: u64,
    /// The run's engine: `local`, or the cluster's URL (each stage's record says
    /// whether its work went there).
    pub engine: String,
    /// Start time (UTC, RFC 3339).
    pub started_at: String,
    /// End time (UTC, RFC 3339).
    pub finished_at: String,
    /// Versions of userlens and its engine.
    pub versions: BTreeMap<&'static str, &'static str>,
    /// Input files with their fingerprints.
    pub inputs: Vec<userlens_ingest::FileInfo>,
    /// Row counts.
    pub rows: Rows,
    /// Per-stage record.
    pub stages: Vec<StageRecord>,
    /// Parameters of every stage as given.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Persona model (k, quality metrics, centroids).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personas: Option<serde_json::Value>,
    /// Persona ids against the last good run: matches, adjusted Rand index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stability: Option<serde_json::Value>,
    /// Drift against the last good run: volume, schema, PSI warnings and alerts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<serde_json::Value>,
    /// Fitted prediction models: parameters, log-likelihood, ladder rung.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<serde_json::Value>,
    /// Output files written (relative to the output folder).
    pub outputs: Vec<String>,
    /// What the stages say the reader should know (columns left out, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Error text of a failed run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The part of an earlier `run.json` a run reads back.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PastRecord {
    pub rows: Rows,
    pub run_id: String,
    pub status: String,
    pub finished_at: String,
    #[serde(default)]
    pub error: Option<String>,
    /// Drift and volumes against the run before it, when it measured them.
    #[serde(default)]
    pub drift: Option<serde_json::Value>,
}

impl PastRecord {
    /// The record in the run folder or output folder `dir`, if it can be read.
    pub fn read(dir: &Path) -> Option<PastRecord> {
        let bytes = std::fs::read(dir.join(userlens_model::files::RUN)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// The result of a successful run, for the command line's summary.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The run record as written.
    pub record: RunRecord,
    /// Run folder.
    pub run_dir: PathBuf,
    /// Output folder.
    pub output_dir: PathBuf,
    /// Personas, by id.
    pub personas: Vec<PersonaSummary>,
}

/// What a stage tells the run besides its tables; saved as `meta.json` beside its
/// artifacts so a skipped or resumed stage restores it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StageMeta {
    /// Input files read, with their fingerprints.
    pub inputs: Vec<userlens_ingest::FileInfo>,
    /// Row counts of the input it read.
    pub rows: Option<Rows>,
    /// Users it profiled.
    pub users: Option<u64>,
    /// The as-of time it derived from the data (microseconds).
    pub as_of: Option<i64>,
    /// The persona model.
    pub personas: Option<serde_json::Value>,
    /// Persona ids against the last good run.
    pub stability: Option<serde_json::Value>,
    /// Drift against the last good run.
    pub drift: Option<serde_json::Value>,
    /// Fitted prediction models.
    pub models: Option<serde_json::Value>,
    /// Output files the stage wrote, relative to the output folder; copies are kept
    /// under `files/` in the stage's artifact folder.
    pub files: Vec<String>,
    /// Lines for the reader of the run record and the report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A moment as the run record and the ledger write it: RFC 3339 in UTC, to the
/// second (`2026-12-07T18:30:00Z`).
pub(crate) fn stamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Peak resident set size of this process (VmHWM), Linux only.
pub(crate) fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kib / 1024.0 * 10.0).round() / 10.0)
}

/// The table [`persona_summary`] reads once every stage has run.
pub(crate) const SUMMARISED: &str = "personas";

/// The personas table among the stages' outputs, for the command line's summary.
pub(crate) fn persona_summary(outputs: &[crate::stage::Tables]) -> Vec<PersonaSummary> {
    let Some(personas) = outputs.iter().find_map(|t| t.get(SUMMARISED)) else {
        return Vec::new();
    };
    let column = |name: &str, dtype: polars::prelude::DataType| {
        personas.column(name).ok().and_then(|c| c.cast(&dtype).ok())
    };
    let (Some(ids), Some(labels), Some(users), Some(shares)) = (
        column(
            userlens_model::columns::PERSONA_ID,
            polars::prelude::DataType::UInt32,
        ),
        column(
            userlens_model::columns::LABEL,
            polars::prelude::DataType::String,
        ),
        column("users", polars::prelude::DataType::UInt64),
        column("share", polars::prelude::DataType::Float64),
    ) else {
        return Vec::new();
    };
    let (Ok(ids), Ok(labels), Ok(users), Ok(shares)) =
        (ids.u32(), labels.str(), users.u64(), shares.f64())
    else {
        return Vec::new();
    };
    (0..personas.height())
        .map(|i| PersonaSummary {
            persona_id: ids.get(i).unwrap_or_default(),
            label: labels.get(i).unwrap_or_default().to_string(),
            users: users.get(i).unwrap_or_default(),
            share: shares.get(i).unwrap_or_default(),
        })
        .collect()
}
