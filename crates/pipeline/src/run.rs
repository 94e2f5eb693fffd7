//! Running a plan: a lock per pipeline, stages in order with retries, artifacts in
//! the run folder, skip-unchanged and resume through the ledger, stable persona ids
//! and drift against the last good run, and outputs published all at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use userlens_model::columns;

use crate::drift;
use crate::error::{Error, Result};
use crate::ledger::{Ledger, RunRow, StageRow};
use crate::lock::PipelineLock;
use crate::plan::{Plan, PlannedStage, StageKind};
use userlens_ingest::Events;

/// Bumped when a stage's output for the same inputs and parameters changes, so
/// that skip-unchanged never reuses an artifact made by different code.
const CODE_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "+stages.4");

/// Centroids further apart than this (in standard deviations, over all features)
/// are different personas, whatever the assignment says.
const MAX_MATCH_DISTANCE: f64 = 2.0;

/// Options of one run that do not belong in the pipeline file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Events at or after this date (midnight UTC) are ignored; default: the day
    /// after the last event.
    pub as_of: Option<NaiveDate>,
    /// Output folder instead of the pipeline's.
    pub output: Option<PathBuf>,
    /// Runs folder instead of the pipeline's.
    pub runs: Option<PathBuf>,
    /// Rerun every stage even when a finished artifact has the same key.
    pub force: bool,
    /// Continue this failed or killed run from its first unfinished stage.
    pub resume: Option<String>,
    /// Run just this stage, on the finished artifacts of the stages before it (which
    /// run only if they have none), and stop there: the run is recorded as
    /// `partial` and nothing is published. For timing or debugging one stage.
    pub only: Option<String>,
}

/// What the runner reports while it works.
#[derive(Debug, Clone)]
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
        name: String,
        /// Stage kind.
        uses: &'static str,
    },
    /// A stage finished.
    StageFinished {
        /// 0-based position.
        index: usize,
        /// Stage name.
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
        name: String,
        /// The run whose artifact was reused.
        reused_from: String,
    },
    /// A stage failed and will be tried again.
    Retrying {
        /// Stage name.
        name: String,
        /// The attempt about to start (2 = first retry).
        attempt: u32,
        /// Wait before it, in seconds.
        delay_seconds: f64,
        /// Why the previous attempt failed.
        error: String,
    },
    /// A long stage moved on: `done` of `total` units (bytes of input for ingest).
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
    /// The stage's events are bigger than memory should hold, and are read in parts:
    /// memory freed is worth returning to the OS (the binary's allocator keeps it
    /// otherwise).
    OutOfCore {
        /// 0-based position.
        index: usize,
        /// Stage name.
        name: String,
    },
    /// Something the operator should know.
    Warning(String),
}

/// Record of one stage in `run.json`.
#[derive(Debug, Clone, Serialize)]
pub struct StageRecord {
    /// Stage name.
    pub name: String,
    /// Stage kind.
    pub uses: &'static str,
    /// `ok`, `skipped` or `failed`.
    pub status: &'static str,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Attempts made.
    pub attempts: u32,
    /// Rows of its main output.
    pub rows_out: u64,
    /// Folder of its artifacts.
    pub artifacts: String,
    /// The run whose artifact was reused, when skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<String>,
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
    /// `ok`, `failed` or `refused`.
    pub status: &'static str,
    /// As-of date used (events before it count).
    pub as_of: Option<String>,
    /// Whether the as-of date was given or derived from the data.
    pub as_of_source: &'static str,
    /// Seed.
    pub seed: u64,
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
    /// Error text of a failed run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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
struct StageMeta {
    inputs: Vec<userlens_ingest::FileInfo>,
    rows: Option<Rows>,
    users: Option<u64>,
    as_of: Option<i64>,
    personas: Option<serde_json::Value>,
    stability: Option<serde_json::Value>,
    drift: Option<serde_json::Value>,
    models: Option<serde_json::Value>,
    /// Output files the stage wrote, relative to the output folder; copies are kept
    /// under `files/` in the stage's artifact folder.
    files: Vec<String>,
}

/// The last good run, for stable ids and drift.
struct Previous {
    run_id: String,
    /// Stage name -> artifact folder.
    artifacts: BTreeMap<String, PathBuf>,
    rows: Option<Rows>,
}

/// Mutable state of a run shared by the stage adapters.
struct Context<'a> {
    plan: &'a Plan,
    staging: PathBuf,
    as_of: Option<i64>,
    as_of_given: bool,
    previous: Option<Previous>,
    inputs: Vec<userlens_ingest::FileInfo>,
    rows: Rows,
    personas: Option<serde_json::Value>,
    stability: Option<serde_json::Value>,
    drift: Option<serde_json::Value>,
    models: Option<serde_json::Value>,
    outputs: Vec<String>,
}

impl Context<'_> {
    fn absorb(&mut self, meta: &StageMeta) {
        self.inputs.extend(meta.inputs.iter().cloned());
        if let Some(rows) = &meta.rows {
            self.rows.read += rows.read;
            self.rows.kept += rows.kept;
            self.rows.quarantined += rows.quarantined;
            self.rows.duplicates += rows.duplicates;
        }
        if let Some(users) = meta.users {
            self.rows.users = users;
        }
        if meta.as_of.is_some() {
            self.as_of = meta.as_of;
        }
        for (slot, value) in [
            (&mut self.personas, &meta.personas),
            (&mut self.stability, &meta.stability),
            (&mut self.drift, &meta.drift),
            (&mut self.models, &meta.models),
        ] {
            if value.is_some() {
                slot.clone_from(value);
            }
        }
        self.outputs.extend(meta.files.iter().cloned());
    }
}

/// What a stage hands on: named tables, and the events (which may be on disk).
#[derive(Default, Clone)]
struct Tables {
    frames: BTreeMap<String, DataFrame>,
    events: Option<Events>,
}

impl Tables {
    fn insert(&mut self, name: String, df: DataFrame) {
        self.frames.insert(name, df);
    }

    fn get(&self, name: &str) -> Option<&DataFrame> {
        self.frames.get(name)
    }

    /// Rows of the table `name`, the events included.
    fn rows(&self, name: &str) -> Option<u64> {
        match (name, &self.events) {
            ("events", Some(events)) => Some(events.height()),
            _ => self.get(name).map(|df| df.height() as u64),
        }
    }

    /// Rows of the largest table.
    fn max_rows(&self) -> Option<u64> {
        let frames = self.frames.values().map(|df| df.height() as u64);
        frames.chain(self.events.as_ref().map(Events::height)).max()
    }
}

/// The tables of the stages `stage` needs, by name (the first stage wins a name).
fn inputs_of<'a>(stage: &PlannedStage, outputs: &'a [Tables]) -> BTreeMap<&'a str, &'a DataFrame> {
    let mut inputs = BTreeMap::new();
    for &need in &stage.needs {
        if let Some(tables) = outputs.get(need) {
            for (name, df) in &tables.frames {
                inputs.entry(name.as_str()).or_insert(df);
            }
        }
    }
    inputs
}

/// The events among the stages `stage` needs.
fn events_of<'a>(
    stage: &PlannedStage,
    outputs: &'a [Tables],
) -> std::result::Result<&'a Events, StageError> {
    stage
        .needs
        .iter()
        .find_map(|&need| outputs.get(need)?.events.as_ref())
        .ok_or_else(|| {
            StageError::Run(Error::Usage(
                "no `events` table among the stage's needs".into(),
            ))
        })
}

/// A stage error, classed as refused input or failure.
enum StageError {
    Failed(Box<dyn std::error::Error + Send + Sync>),
    Refused(Box<dyn std::error::Error + Send + Sync>),
    Run(Error),
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for StageError {
    fn from(e: E) -> Self {
        StageError::Failed(Box::new(e))
    }
}

fn refused(message: String) -> StageError {
    StageError::Refused(message.into())
}

/// A stage of a dry run: its key and whether it would be skipped.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedRun {
    /// Stage name.
    pub name: String,
    /// Stage kind.
    pub uses: &'static str,
    /// Cache key.
    pub key: String,
    /// The run whose artifact would be reused.
    pub reuse: Option<String>,
}

fn as_of_label(as_of: Option<NaiveDate>) -> String {
    as_of.map_or_else(|| "latest".to_string(), |d| d.to_string())
}

fn runs_root(plan: &Plan, options: &RunOptions) -> PathBuf {
    options.runs.clone().unwrap_or_else(|| plan.runs.clone())
}

/// `{as_of}` in the output path becomes the run's as-of date (`latest` without one),
/// so each date of a nightly pipeline has its own partition.
fn output_dir(plan: &Plan, options: &RunOptions, as_of: &str) -> PathBuf {
    let dir = options
        .output
        .clone()
        .unwrap_or_else(|| plan.output.clone());
    PathBuf::from(dir.to_string_lossy().replace("{as_of}", as_of))
}

/// Cache keys of every stage, in plan order.
fn cache_keys(plan: &Plan, as_of: &str, output: &Path) -> Result<Vec<String>> {
    let mut keys: Vec<String> = Vec::with_capacity(plan.stages.len());
    for stage in &plan.stages {
        let mut hasher = blake3::Hasher::new();
        let mut put = |part: &str| {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        };
        put(CODE_VERSION);
        put(&plan.name);
        put(&stage.name);
        put(stage.kind.name());
        put(&stage.params.to_string());
        put(&plan.seed.to_string());
        put(as_of);
        for &need in &stage.needs {
            put(&keys[need]);
        }
        let files: Vec<PathBuf> = match &stage.kind {
            StageKind::Ingest(source) => vec![source.path().to_path_buf()],
            StageKind::Features {
                users: Some(users), ..
            } => vec![users.clone()],
            _ => Vec::new(),
        };
        for file in files {
            // A missing file gets no fingerprint: the stage runs and reports it.
            match userlens_ingest::fingerprint(&file) {
                Ok(info) => put(&info.blake3),
                Err(_) => put("missing"),
            }
        }
        if matches!(stage.kind, StageKind::Report(_)) {
            put(&output.display().to_string());
        }
        keys.push(hasher.finalize().to_hex().to_string());
    }
    Ok(keys)
}

/// The position of `--only`'s stage, if one is named.
fn only_index(plan: &Plan, options: &RunOptions) -> Result<Option<usize>> {
    let Some(name) = &options.only else {
        return Ok(None);
    };
    if let Some(index) = plan.stages.iter().position(|s| s.name == *name) {
        return Ok(Some(index));
    }
    let names: Vec<&str> = plan.stages.iter().map(|s| s.name.as_str()).collect();
    let hint = crate::did_you_mean(name, &names)
        .map(|n| format!(" (did you mean `{n}`?)"))
        .unwrap_or_default();
    Err(Error::Usage(format!(
        "`--only {name}`: no stage `{name}`{hint}; the stages are: {}",
        names.join(", ")
    )))
}

/// What a run would do, without doing it.
pub fn dry_run(plan: &Plan, options: &RunOptions) -> Result<Vec<PlannedRun>> {
    let label = as_of_label(options.as_of);
    let output = output_dir(plan, options, &label);
    let keys = cache_keys(plan, &label, &output)?;
    let root = runs_root(plan, options);
    let ledger = Ledger::open(&root)?;
    let mut stages = Vec::with_capacity(plan.stages.len());
    let only = only_index(plan, options)?;
    let mut upstream_runs = true;
    for (index, (stage, key)) in plan.stages.iter().zip(keys).enumerate() {
        if only.is_some_and(|only| index > only) {
            break;
        }
        let reuse = if options.force || !upstream_runs || only == Some(index) {
            None
        } else {
            ledger
                .finished_stage(&key)?
                .filter(|row| Path::new(&row.artifact_dir).is_dir())
                .map(|row| row.run_id)
        };
        upstream_runs &= reuse.is_some();
        stages.push(PlannedRun {
            name: stage.name.clone(),
            uses: stage.kind.name(),
            key,
            reuse,
        });
    }
    Ok(stages)
}

/// Runs a plan, or resumes a run of it.
pub fn run(
    plan: &Plan,
    options: &RunOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<RunSummary> {
    let only = only_index(plan, options)?;
    let root = runs_root(plan, options);
    let lock = PipelineLock::acquire(&root, &plan.name)?;
    if let Some(pid) = lock.stale_pid {
        let message = format!(
            "took over the lock of `{}` left by process {pid}, which is no longer running",
            plan.name
        );
        progress(&Progress::Warning(message));
    }
    let ledger = Ledger::open(&root)?;
    let started = Utc::now();

    let (run_id, run_dir, as_of) = match &options.resume {
        Some(id) => {
            let row = ledger.run(id)?.ok_or_else(|| {
                Error::Resume(format!("no run `{id}` in the ledger `{}`", root.display()))
            })?;
            if row.pipeline != plan.name {
                return Err(Error::Resume(format!(
                    "run `{id}` is of pipeline `{}`, not `{}`",
                    row.pipeline, plan.name
                )));
            }
            if row.status == "ok" || row.status == "partial" {
                return Err(Error::Resume(format!(
                    "run `{id}` finished; there is nothing to resume"
                )));
            }
            let as_of = match row.as_of.as_str() {
                "latest" => None,
                date => Some(date.parse::<NaiveDate>().map_err(|e| {
                    Error::Resume(format!(
                        "run `{id}` has an unreadable as-of date {date:?}: {e}"
                    ))
                })?),
            };
            (row.run_id, PathBuf::from(row.run_dir), as_of)
        }
        None => {
            let label = as_of_label(options.as_of);
            let (id, dir) = new_run_dir(&root.join(&plan.name), &label, started)?;
            (id, dir, options.as_of)
        }
    };
    let label = as_of_label(as_of);
    let output = output_dir(plan, options, &label);
    recover_output(&output)?;
    let staging = sibling(&output, &format!("staging-{run_id}"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|source| Error::Io {
            path: staging.clone(),
            source,
        })?;
    }
    std::fs::create_dir_all(&staging).map_err(|source| Error::Io {
        path: staging.clone(),
        source,
    })?;

    let mut run_row = RunRow {
        run_id: run_id.clone(),
        pipeline: plan.name.clone(),
        as_of: label.clone(),
        status: "running".into(),
        started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        finished_at: None,
        run_dir: run_dir.display().to_string(),
        error: None,
    };
    ledger.put_run(&run_row)?;

    let previous = match ledger.last_ok_run(&plan.name, &label, &run_id)? {
        Some(row) => Some(Previous {
            artifacts: ledger
                .stages(&row.run_id)?
                .into_iter()
                .map(|s| (s.stage, PathBuf::from(s.artifact_dir)))
                .collect(),
            rows: std::fs::read(Path::new(&row.run_dir).join("run.json"))
                .ok()
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                .and_then(|record| serde_json::from_value(record["rows"].clone()).ok()),
            run_id: row.run_id,
        }),
        None => None,
    };
    let finished_here: BTreeMap<String, StageRow> = if options.resume.is_some() {
        ledger
            .stages(&run_id)?
            .into_iter()
            .filter(|s| s.status == "ok" || s.status == "skipped")
            .map(|s| (s.stage.clone(), s))
            .collect()
    } else {
        BTreeMap::new()
    };

    let keys = cache_keys(plan, &label, &output)?;
    let mut ctx = Context {
        plan,
        staging: staging.clone(),
        as_of: as_of
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp_micros()),
        as_of_given: as_of.is_some(),
        previous,
        inputs: Vec::new(),
        rows: Rows::default(),
        personas: None,
        stability: None,
        drift: None,
        models: None,
        outputs: Vec::new(),
    };
    progress(&Progress::RunStarted {
        pipeline: plan.name.clone(),
        run_id: run_id.clone(),
        stages: plan.stages.len(),
    });

    let mut outputs: Vec<Tables> = Vec::with_capacity(plan.stages.len());
    let mut records = Vec::with_capacity(plan.stages.len());
    // The stage whose artifacts are still being written (see `Saving`).
    let mut saving: Option<Saving> = None;
    let mut failure: Option<(Error, &'static str)> = None;
    let mut upstream_reused = true;
    for (index, stage) in plan.stages.iter().enumerate() {
        if only.is_some_and(|only| index > only) {
            break;
        }
        let key = &keys[index];
        let stage_dir = run_dir.join(&stage.name);
        let reusable = finished_here
            .get(&stage.name)
            .filter(|row| row.cache_key == *key)
            .cloned()
            .or_else(|| {
                if options.force || !upstream_reused {
                    return None;
                }
                ledger.finished_stage(key).ok().flatten()
            })
            .filter(|_| only != Some(index))
            .filter(|row| Path::new(&row.artifact_dir).join("meta.json").is_file());
        let clock = Instant::now();
        let mut record = StageRecord {
            name: stage.name.clone(),
            uses: stage.kind.name(),
            status: "ok",
            seconds: 0.0,
            attempts: 0,
            rows_out: 0,
            artifacts: relative(&stage_dir, &run_dir),
            reused_from: None,
            peak_rss_mib: None,
            error: None,
        };
        let result = match &reusable {
            Some(row) => {
                let dir = PathBuf::from(&row.artifact_dir);
                let loaded = load_stage(&dir, stage, &staging);
                if let Ok((tables, _)) = &loaded {
                    record.status = "skipped";
                    record.reused_from = Some(row.run_id.clone());
                    record.artifacts = dir.display().to_string();
                    progress(&Progress::StageSkipped {
                        index,
                        name: stage.name.clone(),
                        reused_from: row.run_id.clone(),
                    });
                    if matches!(tables.events, Some(Events::Parts { .. })) {
                        progress(&Progress::OutOfCore {
                            index,
                            name: stage.name.clone(),
                        });
                    }
                }
                loaded.map(|(tables, meta)| {
                    (tables, meta, dir, Saved::Done(row.content_hash.clone()))
                })
            }
            None => Err(StageError::Run(Error::Usage(String::new()))),
        };
        let result = match result {
            Ok(done) => Ok(done),
            Err(_) => {
                upstream_reused = false;
                progress(&Progress::StageStarted {
                    index,
                    name: stage.name.clone(),
                    uses: stage.kind.name(),
                });
                let mut attempt = 1;
                loop {
                    record.attempts = attempt;
                    match run_stage(&mut ctx, stage, &outputs, &stage_dir, index, progress) {
                        Ok((mut tables, meta)) => {
                            let more = index + 1 < plan.stages.len() && only != Some(index);
                            if more
                                && matches!(tables.events, Some(Events::Memory(_)))
                                && let Some(save) =
                                    save_in_background(&stage_dir, &tables, &meta, &staging)
                            {
                                break Ok((tables, meta, stage_dir.clone(), save));
                            }
                            let hash = match save_stage(
                                &stage_dir,
                                &mut tables,
                                &meta,
                                &staging,
                                Writer::Foreground,
                            ) {
                                Ok(hash) => hash,
                                Err(e) => {
                                    // Not returned with the stage before still writing.
                                    if let Some(pending) = saving.take() {
                                        let _ = pending.finish(&ledger, &mut records);
                                    }
                                    return Err(e);
                                }
                            };
                            break Ok((tables, meta, stage_dir.clone(), Saved::Done(hash)));
                        }
                        Err(StageError::Failed(e)) if attempt <= stage.retries => {
                            let delay = stage.retry_delay * 2u32.saturating_pow(attempt - 1);
                            progress(&Progress::Retrying {
                                name: stage.name.clone(),
                                attempt: attempt + 1,
                                delay_seconds: delay.as_secs_f64(),
                                error: error_chain(e.as_ref()),
                            });
                            std::thread::sleep(delay);
                            attempt += 1;
                        }
                        Err(e) => break Err(e),
                    }
                }
            }
        };
        record.seconds = clock.elapsed().as_secs_f64();
        record.peak_rss_mib = peak_rss_mib();
        // A stage whose artifacts were being written is recorded once they are.
        if let Some(pending) = saving.take_if(|pending| pending.handle.is_finished()) {
            pending.finish(&ledger, &mut records)?;
        }
        match result {
            Ok((tables, meta, dir, saved)) => {
                ctx.absorb(&meta);
                record.rows_out = tables
                    .rows(stage.kind.provides().first().copied().unwrap_or(""))
                    .unwrap_or(0);
                if record.status == "ok" {
                    progress(&Progress::StageFinished {
                        index,
                        name: stage.name.clone(),
                        seconds: record.seconds,
                        rows: record.rows_out,
                    });
                }
                let row = StageRow {
                    run_id: run_id.clone(),
                    stage: stage.name.clone(),
                    position: index as i64,
                    status: record.status.into(),
                    seconds: record.seconds,
                    rows_in: rows_in(stage, &outputs),
                    rows_out: record.rows_out as i64,
                    attempts: i64::from(record.attempts),
                    cache_key: key.clone(),
                    artifact_dir: dir.display().to_string(),
                    content_hash: String::new(),
                    error: None,
                };
                match saved {
                    Saved::Done(hash) => {
                        ledger.put_stage(&StageRow {
                            content_hash: hash,
                            ..row
                        })?;
                        records.push(record);
                    }
                    Saved::Writing(handle) => {
                        if let Some(pending) = saving.take() {
                            pending.finish(&ledger, &mut records)?;
                        }
                        saving = Some(Saving {
                            handle,
                            row,
                            record,
                        });
                    }
                }
                outputs.push(tables);
                if let Some(refusal) = check_gates(&ctx, stage) {
                    let error = Error::Refused {
                        stage: stage.name.clone(),
                        source: refusal.into(),
                    };
                    failure = Some((error, "refused"));
                    break;
                }
            }
            Err(e) => {
                let (error, status) = match e {
                    StageError::Failed(source) => (
                        Error::Stage {
                            stage: stage.name.clone(),
                            source,
                        },
                        "failed",
                    ),
                    StageError::Refused(source) => (
                        Error::Refused {
                            stage: stage.name.clone(),
                            source,
                        },
                        "refused",
                    ),
                    StageError::Run(error) => (error, "failed"),
                };
                record.status = "failed";
                record.error = Some(error_chain(&error));
                ledger.put_stage(&StageRow {
                    run_id: run_id.clone(),
                    stage: stage.name.clone(),
                    position: index as i64,
                    status: "failed".into(),
                    seconds: record.seconds,
                    rows_in: rows_in(stage, &outputs),
                    rows_out: 0,
                    attempts: i64::from(record.attempts),
                    cache_key: key.clone(),
                    artifact_dir: stage_dir.display().to_string(),
                    content_hash: String::new(),
                    error: record.error.clone(),
                })?;
                records.push(record);
                failure = Some((error, status));
                break;
            }
        }
    }

    if let Some(pending) = saving.take() {
        pending.finish(&ledger, &mut records)?;
    }
    // In plan order: a stage written in the background is recorded late.
    records.sort_by_key(|record| plan.stages.iter().position(|s| s.name == record.name));
    let personas = persona_summary(plan, &outputs);
    let status = match &failure {
        Some((_, status)) => *status,
        None if only.is_some() => "partial",
        None => "ok",
    };
    let mut outputs_written = ctx.outputs.clone();
    outputs_written.push("run.json".into());
    let html = status == "ok" && ctx.outputs.iter().any(|f| f == "personas.csv");
    if html {
        outputs_written.push(userlens_report::files::REPORT_HTML.into());
    }
    let record = RunRecord {
        pipeline: plan.name.clone(),
        pipeline_file: plan.path.display().to_string(),
        run_id: run_id.clone(),
        status,
        as_of: ctx
            .as_of
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| t.date_naive().to_string()),
        as_of_source: if ctx.as_of_given {
            "given"
        } else {
            "derived from the data"
        },
        seed: plan.seed,
        started_at: run_row.started_at.clone(),
        finished_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        versions: BTreeMap::from([
            ("userlens", env!("CARGO_PKG_VERSION")),
            ("polars", polars::VERSION),
        ]),
        inputs: ctx.inputs.clone(),
        rows: ctx.rows.clone(),
        stages: records,
        params: plan
            .stages
            .iter()
            .map(|s| (s.name.clone(), s.params.clone()))
            .collect(),
        personas: ctx.personas.clone(),
        stability: ctx.stability.clone(),
        drift: ctx.drift.clone(),
        models: ctx.models.clone(),
        outputs: outputs_written,
        error: failure.as_ref().map(|(e, _)| error_chain(e)),
    };
    userlens_report::write_json(&record, &run_dir.join("run.json"))?;
    // A failed run leaves the previous outputs in place (and stays resumable); an
    // ok or refused run replaces them as a whole; a partial run publishes nothing.
    if status != "failed" && status != "partial" {
        userlens_report::write_json(&record, &staging.join("run.json"))?;
        if html {
            // Rendered from the files just written, exactly as `userlens report` does.
            userlens_report::render_run_dir(&staging)?;
        }
        publish(&staging, &output)?;
    } else {
        let _ = std::fs::remove_dir_all(&staging);
    }
    run_row.status = status.into();
    run_row.finished_at = Some(record.finished_at.clone());
    run_row.error = record.error.clone();
    ledger.put_run(&run_row)?;
    drop(lock);
    if let Some((error, _)) = failure {
        return Err(error);
    }
    Ok(RunSummary {
        record,
        run_dir,
        output_dir: output,
        personas,
    })
}

fn rows_in(stage: &PlannedStage, outputs: &[Tables]) -> i64 {
    stage
        .needs
        .iter()
        .filter_map(|&n| outputs.get(n)?.max_rows())
        .max()
        .map_or(0, |rows| rows as i64)
}

/// The gates of the pipeline, checked after the stage that makes their numbers.
fn check_gates(ctx: &Context<'_>, stage: &PlannedStage) -> Option<String> {
    if !matches!(stage.kind, StageKind::Features { .. }) {
        return None;
    }
    let gates = &ctx.plan.gates;
    let previous_kept = ctx.previous.as_ref()?.rows.as_ref()?.kept;
    if previous_kept > 0 {
        let ratio = ctx.rows.kept as f64 / previous_kept as f64;
        if let Some(min) = gates.min_volume_ratio
            && ratio < min
        {
            return Some(format!(
                "event volume fell to {:.1}% of the last good run's ({} of {} events), below the gate of {:.1}%",
                ratio * 100.0,
                ctx.rows.kept,
                previous_kept,
                min * 100.0
            ));
        }
        if let Some(max) = gates.max_volume_ratio
            && ratio > max
        {
            return Some(format!(
                "event volume rose to {:.1}% of the last good run's ({} of {} events), above the gate of {:.1}%",
                ratio * 100.0,
                ctx.rows.kept,
                previous_kept,
                max * 100.0
            ));
        }
    }
    let level = gates.fail_on_drift?;
    let drifted: Vec<String> = ctx
        .drift
        .as_ref()?
        .get("features")?
        .as_array()?
        .iter()
        .filter_map(|row| serde_json::from_value::<drift::FeatureDrift>(row.clone()).ok())
        .filter(|row| row.level >= level)
        .map(|row| format!("{} (psi {:.2})", row.feature, row.psi))
        .collect();
    (!drifted.is_empty()).then(|| {
        format!(
            "features drifted past the {} gate: {}",
            level.name(),
            drifted.join(", ")
        )
    })
}

/// A stage's artifacts: written (their content hash), or being written.
enum Saved {
    Done(String),
    Writing(std::thread::JoinHandle<Result<String>>),
}

/// A finished stage whose artifacts are being written on a thread of their own, at
/// idle priority, while the next stages run: the ingest's events, 2 to 3 s of
/// Parquet encoding on one core at 10M events, which the stages after it leave room
/// for (they keep 1.6 of 2 cores busy on average; written at normal priority while
/// the features stage ran, they cost the run 3 s). The stage is put in the ledger,
/// and so can be reused by a resumed run, only once they are written (checked at
/// the end of every stage, waited for at the end of the run): a run killed before
/// that runs the stage again.
struct Saving {
    handle: std::thread::JoinHandle<Result<String>>,
    row: StageRow,
    record: StageRecord,
}

impl Saving {
    /// Waits for the artifacts, then records the stage.
    fn finish(self, ledger: &Ledger, records: &mut Vec<StageRecord>) -> Result<()> {
        let hash = self.handle.join().unwrap_or_else(|_| {
            Err(Error::Io {
                path: PathBuf::from(&self.row.artifact_dir),
                source: std::io::Error::other("the thread writing the artifacts panicked"),
            })
        })?;
        ledger.put_stage(&StageRow {
            content_hash: hash,
            ..self.row
        })?;
        records.push(self.record);
        Ok(())
    }
}

/// [`save_stage`] on a thread of its own, with copies of the tables (which share
/// their buffers with the originals); `None` if no thread could be started.
fn save_in_background(
    dir: &Path,
    tables: &Tables,
    meta: &StageMeta,
    staging: &Path,
) -> Option<Saved> {
    let (dir, mut tables, meta, staging) = (
        dir.to_path_buf(),
        tables.clone(),
        meta.clone(),
        staging.to_path_buf(),
    );
    let thread = std::thread::Builder::new().name("artifacts".into());
    let started = thread.spawn(move || {
        lower_priority();
        save_stage(&dir, &mut tables, &meta, &staging, Writer::Background)
    });
    match started {
        Ok(handle) => Some(Saved::Writing(handle)),
        Err(error) => {
            tracing::debug!("artifacts written in the foreground: no thread ({error})");
            None
        }
    }
}

/// Puts the calling thread in the idle scheduling class where there is one
/// (`SCHED_IDLE` on Linux: it runs when a core would otherwise be idle), else at the
/// lowest priority. Best effort: at worst the thread keeps its priority.
fn lower_priority() {
    use thread_priority::ThreadPriority;
    #[cfg(target_os = "linux")]
    let lowered = thread_priority::set_thread_priority_and_policy(
        thread_priority::thread_native_id(),
        ThreadPriority::Min,
        thread_priority::ThreadSchedulePolicy::Normal(
            thread_priority::NormalThreadSchedulePolicy::Idle,
        ),
    );
    #[cfg(not(target_os = "linux"))]
    let lowered = thread_priority::set_current_thread_priority(ThreadPriority::Min);
    if let Err(error) = lowered {
        tracing::debug!("the artifacts' writer keeps its priority: {error:?}");
    }
}

/// Where [`save_stage`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// In the run's thread, with polars' threads to encode.
    Foreground,
    /// On a thread of its own at idle priority, encoding on that thread alone: polars'
    /// threads are the next stages'.
    Background,
}

/// Writes a stage's tables, its meta and copies of its output files; returns the
/// content hash of the tables.
fn save_stage(
    dir: &Path,
    tables: &mut Tables,
    meta: &StageMeta,
    staging: &Path,
    writer: Writer,
) -> Result<String> {
    let write_parquet = match writer {
        Writer::Foreground => userlens_report::write_parquet,
        Writer::Background => userlens_report::write_parquet_on_this_thread,
    };
    let started = std::time::Instant::now();
    let mut hasher = blake3::Hasher::new();
    let mut hash_file = |name: &str, path: &Path| -> Result<()> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        hasher.update(name.as_bytes());
        hasher
            .update_reader(std::fs::File::open(path).map_err(io)?)
            .map_err(io)?;
        Ok(())
    };
    if let Some(Events::Memory(df)) = &mut tables.events {
        let path = dir.join("events.parquet");
        write_parquet(df, &path)?;
        hash_file("events", &path)?;
    }
    if let Some(Events::Parts { files, .. }) = &tables.events {
        // Already written into the stage's folder by the ingest.
        for file in files {
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
            hash_file(&name.unwrap_or_default(), file)?;
        }
    }
    for (name, df) in tables.frames.iter_mut() {
        let path = dir.join(format!("{name}.parquet"));
        write_parquet(df, &path)?;
        hash_file(name, &path)?;
    }
    for file in &meta.files {
        copy_file(&staging.join(file), &dir.join("files").join(file))?;
    }
    userlens_report::write_json(meta, &dir.join("meta.json"))?;
    tracing::debug!(
        "artifacts saved in {:.2} s: {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(hasher.finalize().to_hex().to_string())
}

/// Loads a finished stage's tables and meta, and restores its output files.
fn load_stage(
    dir: &Path,
    stage: &PlannedStage,
    staging: &Path,
) -> std::result::Result<(Tables, StageMeta), StageError> {
    let bytes = std::fs::read(dir.join("meta.json"))?;
    let meta: StageMeta = serde_json::from_slice(&bytes)?;
    let mut tables = Tables::default();
    for name in stage
        .kind
        .provides()
        .iter()
        .chain(stage.kind.extra_tables())
    {
        let path = dir.join(format!("{name}.parquet"));
        if !path.is_file() {
            continue;
        }
        let df = ParquetReader::new(std::fs::File::open(&path)?).finish()?;
        tables.insert((*name).to_string(), df);
    }
    if let Some(df) = tables.frames.remove("events") {
        tables.events = Some(Events::Memory(df));
    }
    let parts_dir = dir.join(EVENT_PARTS);
    if parts_dir.is_dir() {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&parts_dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "parquet") {
                files.push(path);
            }
        }
        files.sort();
        let rows = meta.rows.as_ref().map_or(0, |r| r.kept);
        tables.events = Some(Events::Parts { files, rows });
    }
    if stage.kind.provides().contains(&"events") && tables.events.is_none() {
        return Err(refused(format!(
            "the events of `{}` are missing",
            dir.display()
        )));
    }
    for file in &meta.files {
        copy_file(&dir.join("files").join(file), &staging.join(file)).map_err(StageError::Run)?;
    }
    Ok((tables, meta))
}

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::copy(from, to).map_err(io(from))?;
    Ok(())
}

/// `.<name>.<suffix>` beside `path`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    let parent = path.parent().unwrap_or(Path::new("."));
    parent.join(format!(".{name}.{suffix}"))
}

/// Replaces `output` by `staging`: the old folder is renamed aside, the new one
/// renamed in, then the old one removed. A reader sees the old outputs or the new
/// ones, never a mix; a kill between the two renames is repaired by
/// [`recover_output`] on the next run.
fn publish(staging: &Path, output: &Path) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let old = sibling(output, &format!("old-{}", std::process::id()));
    let had_output = output.exists();
    if had_output {
        std::fs::rename(output, &old).map_err(io(output))?;
    }
    std::fs::rename(staging, output).map_err(io(output))?;
    if had_output {
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    Ok(())
}

/// Puts back an output folder that a killed publish left renamed aside, and removes
/// leftovers of killed runs.
fn recover_output(output: &Path) -> Result<()> {
    let Some(parent) = output.parent().filter(|p| p.is_dir()) else {
        return Ok(());
    };
    let name = output
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let entry_name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = entry_name.strip_prefix(&prefix) else {
            continue;
        };
        let path = entry.path();
        if rest.starts_with("old-") && !output.exists() {
            std::fs::rename(&path, output).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        } else if rest.starts_with("old-") || rest.starts_with("staging-") {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
    Ok(())
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

fn relative(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// `<as-of>_<start time>`, with a counter when two runs start in the same second.
fn new_run_dir(
    root: &Path,
    as_of: &str,
    started: chrono::DateTime<Utc>,
) -> Result<(String, PathBuf)> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(root).map_err(io(root))?;
    let stamp = started.format("%Y%m%dT%H%M%SZ");
    let mut attempt = 0u32;
    loop {
        let id = if attempt == 0 {
            format!("{as_of}_{stamp}")
        } else {
            format!("{as_of}_{stamp}-{attempt}")
        };
        let dir = root.join(&id);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((id, dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => attempt += 1,
            Err(e) => return Err(io(&dir)(e)),
        }
    }
}

/// Peak resident set size of this process (VmHWM), Linux only.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kib / 1024.0 * 10.0).round() / 10.0)
}

fn table<'a>(
    inputs: &BTreeMap<&str, &'a DataFrame>,
    name: &str,
) -> std::result::Result<&'a DataFrame, StageError> {
    inputs.get(name).copied().ok_or_else(|| {
        StageError::Run(Error::Usage(format!(
            "no `{name}` table among the stage's needs"
        )))
    })
}

/// Reads a table from the previous good run's artifacts of a stage.
fn previous_table(ctx: &Context<'_>, stage: &str, table: &str) -> Option<DataFrame> {
    let dir = ctx.previous.as_ref()?.artifacts.get(stage)?;
    let file = std::fs::File::open(dir.join(format!("{table}.parquet"))).ok()?;
    ParquetReader::new(file).finish().ok()
}

fn write_output(
    ctx: &Context<'_>,
    meta: &mut StageMeta,
    name: &str,
    df: &DataFrame,
) -> std::result::Result<(), StageError> {
    userlens_report::write_csv(&mut df.clone(), &ctx.staging.join(name))
        .map_err(|e| StageError::Run(e.into()))?;
    meta.files.push(name.to_string());
    Ok(())
}

/// Folder of a stage's artifacts that holds the events of an out-of-core ingest.
const EVENT_PARTS: &str = "events.parts";

/// Runs one stage; `dir` is the folder its artifacts are saved to.
fn run_stage(
    ctx: &mut Context<'_>,
    stage: &PlannedStage,
    outputs: &[Tables],
    dir: &Path,
    index: usize,
    progress: &mut dyn FnMut(&Progress),
) -> std::result::Result<(Tables, StageMeta), StageError> {
    let inputs = inputs_of(stage, outputs);
    let mut tables = Tables::default();
    let mut meta = StageMeta::default();
    match &stage.kind {
        StageKind::Ingest(source) => {
            if let Ok(Some(_)) = userlens_ingest::out_of_core_bytes(source) {
                progress(&Progress::OutOfCore {
                    index,
                    name: stage.name.clone(),
                });
            }
            let mut on_progress = |done, total| {
                progress(&Progress::StageAdvanced {
                    index,
                    done,
                    total,
                    unit: "bytes",
                })
            };
            let ingested =
                userlens_ingest::ingest_into(source, &dir.join(EVENT_PARTS), &mut on_progress);
            let ingested = ingested.map_err(|e| match e {
                userlens_ingest::Error::MissingColumn { .. }
                | userlens_ingest::Error::MissingRequired { .. }
                | userlens_ingest::Error::Empty { .. } => StageError::Refused(Box::new(e)),
                userlens_ingest::Error::Io { ref source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    StageError::Refused(Box::new(e))
                }
                other => StageError::Failed(Box::new(other)),
            })?;
            let stats = &ingested.stats;
            meta.inputs = stats.files.clone();
            meta.rows = Some(Rows {
                read: stats.read,
                kept: stats.kept,
                quarantined: stats.quarantined,
                duplicates: stats.duplicates,
                users: 0,
            });
            write_output(ctx, &mut meta, "quarantine.csv", &ingested.quarantine)?;
            if let Err(e) = stats.check_gate(source.max_quarantine_share()) {
                // The quarantine is still published, so the refusal can be looked into.
                ctx.absorb(&meta);
                return Err(StageError::Refused(Box::new(e)));
            }
            tables.events = Some(ingested.events);
            tables.insert("quarantine".into(), ingested.quarantine);
        }
        StageKind::Features { params, users } => {
            let events = events_of(stage, outputs)?.parts()?;
            let as_of = match ctx.as_of {
                Some(t) => t,
                None => default_as_of(&events)?,
            };
            meta.as_of = Some(as_of);
            let users_table = match users {
                Some(path) => {
                    meta.inputs.push(userlens_ingest::fingerprint(path)?);
                    Some(userlens_ingest::read_table(path)?)
                }
                None => None,
            };
            let features =
                userlens_features::build_parts(&events, as_of, users_table.as_ref(), params)?;
            if features.height() == 0 {
                return Err(refused(
                    "no user has events before the as-of date: nothing to profile".into(),
                ));
            }
            meta.users = Some(features.height() as u64);
            if let Some(before) = previous_table(ctx, &stage.name, "features") {
                let rows = drift::feature_drift(&before, &features);
                let (added, removed) = drift::schema_change(&before, &features);
                let previous = ctx.previous.as_ref();
                let previous_kept = previous.and_then(|p| p.rows.as_ref()).map(|r| r.kept);
                let kept = meta.rows.as_ref().map_or(ctx.rows.kept, |r| r.kept);
                let count = |level| rows.iter().filter(|r| r.level == level).count();
                meta.drift = Some(serde_json::json!({
                    "against_run": previous.map(|p| p.run_id.clone()),
                    "events_kept": kept,
                    "events_kept_previous": previous_kept,
                    "volume_ratio": previous_kept.filter(|&k| k > 0).map(|k| kept as f64 / k as f64),
                    "columns_added": added,
                    "columns_removed": removed,
                    "warnings": count(drift::Level::Warning),
                    "alerts": count(drift::Level::Alert),
                    "features": rows,
                }));
                tables.insert("drift".into(), drift::drift_table(&rows)?);
            }
            tables.insert("features".into(), features);
        }
        StageKind::Profile(params) => {
            let features = table(&inputs, "features")?;
            let mut profile = userlens_profile::profile(features, params, ctx.plan.seed)?;
            if let Some(stability) = stabilise(ctx, stage, &mut profile, &mut tables)? {
                meta.stability = Some(stability);
            }
            meta.personas = Some(serde_json::to_value(&profile.model)?);
            tables.insert("assignments".into(), profile.assignments);
            tables.insert("personas".into(), profile.personas);
            tables.insert("k_selection".into(), profile.k_selection);
        }
        StageKind::Predict(params) => {
            let events = events_of(stage, outputs)?.parts()?;
            let features_now = table(&inputs, "features")?;
            let as_of = match ctx.as_of {
                Some(t) => t,
                None => default_as_of(&events)?,
            };
            let (feature_params, users) = stage
                .needs
                .iter()
                .find_map(|&n| match &ctx.plan.stages[n].kind {
                    StageKind::Features { params, users } => Some((params.clone(), users.clone())),
                    _ => None,
                })
                .ok_or_else(|| {
                    StageError::Run(Error::Usage(format!(
                        "stage `{}` needs a features stage",
                        stage.name
                    )))
                })?;
            let users_table = match &users {
                Some(path) => Some(userlens_ingest::read_table(path)?),
                None => None,
            };
            let horizon = i64::from(params.horizon_days()) * 86_400_000_000;
            // The models read numbers: the text features cost the most to build
            // and are only computed when a rule reads one.
            let text = params
                .rule_features()
                .any(|f| userlens_features::TEXT_FEATURES.contains(&f));
            let started = std::time::Instant::now();
            let features_cutoff = userlens_features::build_parts(
                &events,
                as_of - horizon,
                users_table.as_ref(),
                &if text {
                    feature_params
                } else {
                    feature_params.without_text()
                },
            )?;
            tracing::debug!(
                "predict: features at the cutoff in {:.2} s",
                started.elapsed().as_secs_f64()
            );
            let predictions = userlens_predict::predict(
                &events,
                &features_cutoff,
                features_now,
                as_of,
                params,
                ctx.plan.seed,
            )?;
            userlens_report::write_json(&predictions.models, &ctx.staging.join("models.json"))
                .map_err(|e| StageError::Run(e.into()))?;
            meta.files.push("models.json".into());
            meta.models = Some(predictions.models);
            tables.insert("user_predictions".into(), predictions.user_predictions);
            tables.insert("model_report".into(), predictions.model_report);
            tables.insert("calibration".into(), predictions.calibration);
            tables.insert("lift".into(), predictions.lift);
            tables.insert("segments".into(), predictions.segments);
        }
        StageKind::Report(params) => {
            if let (Some(personas), Some(assignments)) =
                (inputs.get("personas"), inputs.get("assignments"))
            {
                let personas = enrich_personas(
                    personas,
                    assignments,
                    inputs.get("user_predictions").copied(),
                    inputs.get("segments").copied(),
                )?;
                write_output(ctx, &mut meta, "personas.csv", &personas)?;
                write_output(ctx, &mut meta, "user_personas.csv", assignments)?;
            }
            for (name, file) in [
                ("k_selection", "k_selection.csv"),
                ("migration", "migration.csv"),
                ("drift", "drift.csv"),
                ("user_predictions", "user_predictions.csv"),
                ("model_report", "model_report.csv"),
                ("calibration", "calibration.csv"),
                ("lift", "lift.csv"),
                ("segments", "user_segments.csv"),
            ] {
                if let Some(df) = inputs.get(name) {
                    write_output(ctx, &mut meta, file, df)?;
                }
            }
            if params.features_csv
                && let Some(features) = inputs.get("features")
            {
                write_output(ctx, &mut meta, "features.csv", features)?;
            }
        }
    }
    Ok((tables, meta))
}

/// Adds prediction columns to the persona table: the mean purchase probability,
/// the share of users predicted to buy (p >= 0.5), the mean predicted revenue and
/// the loyalty-segment mix.
fn enrich_personas(
    personas: &DataFrame,
    assignments: &DataFrame,
    predictions: Option<&DataFrame>,
    segments: Option<&DataFrame>,
) -> std::result::Result<DataFrame, StageError> {
    use columns::{PERSONA_ID, USER_ID};
    let mut out = personas.clone().lazy();
    if let Some(predictions) = predictions {
        let per_persona = assignments
            .clone()
            .lazy()
            .select([col(USER_ID), col(PERSONA_ID)])
            .left_join(predictions.clone().lazy(), col(USER_ID), col(USER_ID))
            .group_by([col(PERSONA_ID)])
            .agg([
                col("p_purchase").mean().alias("mean_p_purchase"),
                col("p_purchase")
                    .gt_eq(lit(0.5))
                    .cast(DataType::Float64)
                    .mean()
                    .alias("share_predicted_buyers"),
                col("predicted_revenue")
                    .mean()
                    .alias("mean_predicted_revenue"),
                col("churn_risk").mean().alias("mean_churn_risk"),
                col("p_alive").mean().alias("mean_p_alive"),
            ]);
        out = out.left_join(per_persona, col(PERSONA_ID), col(PERSONA_ID));
    }
    if let Some(segments) = segments {
        let mix = userlens_predict::segments::segment_mix(assignments, segments)?;
        let mix = mix.lazy().select([col(PERSONA_ID), col("segment_mix")]);
        out = out.left_join(mix, col(PERSONA_ID), col(PERSONA_ID));
    }
    Ok(out
        .sort([PERSONA_ID], SortMultipleOptions::default())
        .collect()?)
}

/// Matches this run's personas to the last good run's so ids and labels carry
/// over; adds the migration table and returns the stability summary.
fn stabilise(
    ctx: &Context<'_>,
    stage: &PlannedStage,
    profile: &mut userlens_profile::Profile,
    tables: &mut Tables,
) -> std::result::Result<Option<serde_json::Value>, StageError> {
    let Some(previous) = ctx.previous.as_ref() else {
        return Ok(None);
    };
    let Some(dir) = previous.artifacts.get(&stage.name) else {
        return Ok(None);
    };
    let Ok(bytes) = std::fs::read(dir.join("meta.json")) else {
        return Ok(None);
    };
    let meta: StageMeta = serde_json::from_slice(&bytes)?;
    let Some(model) = meta.personas else {
        return Ok(None);
    };
    let previous_model: userlens_profile::PersonaModel = serde_json::from_value(model)?;
    let matching =
        userlens_profile::match_personas(&previous_model, &profile.model, MAX_MATCH_DISTANCE);
    userlens_profile::apply_matching(profile, &matching)?;

    let mut summary = serde_json::json!({
        "against_run": previous.run_id,
        "matched": matching.matched.len(),
        "new_personas": matching.new,
        "retired_personas": matching.retired,
    });
    if let Some(before) = previous_table(ctx, &stage.name, "assignments") {
        let (migration, ari, common) = migration(&before, &profile.assignments)?;
        summary["users_in_both"] = common.into();
        summary["adjusted_rand_index"] = ari.into();
        summary["users_moved"] = moved(&migration)?.into();
        tables.insert("migration".into(), migration);
    }
    Ok(Some(summary))
}

/// `from_persona, to_persona, users` for users in both runs, and the adjusted Rand
/// index of the two assignments on them.
fn migration(
    before: &DataFrame,
    after: &DataFrame,
) -> std::result::Result<(DataFrame, Option<f64>, u64), StageError> {
    use columns::{PERSONA_ID, USER_ID};
    let pick = |df: &DataFrame, alias: &str| {
        df.clone().lazy().select([
            col(USER_ID),
            col(PERSONA_ID).cast(DataType::UInt32).alias(alias),
        ])
    };
    let joined = pick(before, "from_persona")
        .inner_join(pick(after, "to_persona"), col(USER_ID), col(USER_ID))
        .sort([USER_ID], SortMultipleOptions::default())
        .collect()?;
    let from: Vec<u32> = joined
        .column("from_persona")?
        .u32()?
        .iter()
        .flatten()
        .collect();
    let to: Vec<u32> = joined
        .column("to_persona")?
        .u32()?
        .iter()
        .flatten()
        .collect();
    let ari = (!from.is_empty()).then(|| userlens_profile::adjusted_rand_index(&from, &to));
    let table = joined
        .lazy()
        .group_by([col("from_persona"), col("to_persona")])
        .agg([len().cast(DataType::UInt64).alias("users")])
        .sort(
            ["from_persona", "to_persona"],
            SortMultipleOptions::default(),
        )
        .collect()?;
    Ok((table, ari, from.len() as u64))
}

fn moved(migration: &DataFrame) -> std::result::Result<u64, StageError> {
    let from = migration.column("from_persona")?.u32()?.clone();
    let to = migration.column("to_persona")?.u32()?.clone();
    let users = migration.column("users")?.u64()?.clone();
    Ok((0..migration.height())
        .filter(|&i| from.get(i) != to.get(i))
        .filter_map(|i| users.get(i))
        .sum())
}

/// Midnight after the last event, so that every event counts (events in parts).
fn default_as_of(events: &[LazyFrame]) -> std::result::Result<i64, StageError> {
    let mut last: Option<i64> = None;
    for part in events {
        let max = part
            .clone()
            .select([col(columns::EVENT_TIME).cast(DataType::Int64).max()])
            .collect()?;
        let part_last = max.columns()[0].i64()?.get(0);
        last = last.max(part_last);
    }
    let last = last.ok_or_else(|| refused("no events: nothing to profile".into()))?;
    const DAY: i64 = 86_400_000_000;
    Ok((last.div_euclid(DAY) + 1) * DAY)
}

fn persona_summary(plan: &Plan, outputs: &[Tables]) -> Vec<PersonaSummary> {
    let Some(personas) = plan.stages.iter().zip(outputs).find_map(|(s, t)| {
        matches!(s.kind, StageKind::Profile(_))
            .then(|| t.get("personas"))
            .flatten()
    }) else {
        return Vec::new();
    };
    let column =
        |name: &str, dtype: DataType| personas.column(name).ok().and_then(|c| c.cast(&dtype).ok());
    let (Some(ids), Some(labels), Some(users), Some(shares)) = (
        column("persona_id", DataType::UInt32),
        column(columns::LABEL, DataType::String),
        column("users", DataType::UInt64),
        column("share", DataType::Float64),
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
