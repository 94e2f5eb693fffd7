//! Running a plan: stages in order, artifacts in the run folder, outputs and the
//! run record written atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use polars::prelude::*;
use serde::Serialize;
use userlens_model::columns;

use crate::error::{Error, Result};
use crate::plan::{Plan, PlannedStage, StageKind, inputs_of};

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
}

/// Record of one stage in `run.json`.
#[derive(Debug, Clone, Serialize)]
pub struct StageRecord {
    /// Stage name.
    pub name: String,
    /// Stage kind.
    pub uses: &'static str,
    /// `ok` or `failed`.
    pub status: &'static str,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Rows of its main output.
    pub rows_out: u64,
    /// Artifacts written to the run folder.
    pub artifacts: Vec<String>,
    /// Peak resident memory of the process so far, in MiB (Linux).
    pub peak_rss_mib: Option<f64>,
    /// Error text when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Row counts of the run's input.
#[derive(Debug, Clone, Default, Serialize)]
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
    /// Persona model summary (k, quality metrics).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personas: Option<serde_json::Value>,
    /// Output files written.
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
    /// Personas, largest first.
    pub personas: Vec<PersonaSummary>,
}

/// Mutable state of a run shared by the stage adapters.
struct Context<'a> {
    plan: &'a Plan,
    output_dir: PathBuf,
    as_of: Option<i64>,
    as_of_given: bool,
    inputs: Vec<userlens_ingest::FileInfo>,
    rows: Rows,
    personas_meta: Option<serde_json::Value>,
    outputs: Vec<String>,
}

/// What a stage hands on: named tables.
type Tables = BTreeMap<String, DataFrame>;

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

/// Runs a plan from its first stage to its last.
pub fn run(
    plan: &Plan,
    options: &RunOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<RunSummary> {
    let started = Utc::now();
    let runs_root = options.runs.clone().unwrap_or_else(|| plan.runs.clone());
    let output_dir = options
        .output
        .clone()
        .unwrap_or_else(|| plan.output.clone());
    let as_of_label = options
        .as_of
        .map_or_else(|| "latest".to_string(), |d| d.to_string());
    let (run_id, run_dir) = new_run_dir(&runs_root.join(&plan.name), &as_of_label, started)?;
    let mut ctx = Context {
        plan,
        output_dir: output_dir.clone(),
        as_of: options
            .as_of
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp_micros()),
        as_of_given: options.as_of.is_some(),
        inputs: Vec::new(),
        rows: Rows::default(),
        personas_meta: None,
        outputs: Vec::new(),
    };
    progress(&Progress::RunStarted {
        pipeline: plan.name.clone(),
        run_id: run_id.clone(),
        stages: plan.stages.len(),
    });

    let mut outputs: Vec<Tables> = Vec::with_capacity(plan.stages.len());
    let mut records = Vec::with_capacity(plan.stages.len());
    let mut failure: Option<(Error, &'static str)> = None;
    for (index, stage) in plan.stages.iter().enumerate() {
        progress(&Progress::StageStarted {
            index,
            name: stage.name.clone(),
            uses: stage.kind.name(),
        });
        let clock = Instant::now();
        let result = run_stage(&mut ctx, stage, &outputs);
        let seconds = clock.elapsed().as_secs_f64();
        let mut record = StageRecord {
            name: stage.name.clone(),
            uses: stage.kind.name(),
            status: "ok",
            seconds,
            rows_out: 0,
            artifacts: Vec::new(),
            peak_rss_mib: peak_rss_mib(),
            error: None,
        };
        match result {
            Ok(mut tables) => {
                record.rows_out = tables
                    .get(stage.kind.provides().first().copied().unwrap_or(""))
                    .map_or(0, |df| df.height() as u64);
                let stage_dir = run_dir.join(&stage.name);
                for (name, df) in tables.iter_mut() {
                    let path = stage_dir.join(format!("{name}.parquet"));
                    userlens_report::write_parquet(df, &path)?;
                    record.artifacts.push(relative(&path, &run_dir));
                }
                progress(&Progress::StageFinished {
                    index,
                    name: stage.name.clone(),
                    seconds,
                    rows: record.rows_out,
                });
                records.push(record);
                outputs.push(tables);
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
                records.push(record);
                failure = Some((error, status));
                break;
            }
        }
    }

    let personas = persona_summary(plan, &outputs);
    let record = RunRecord {
        pipeline: plan.name.clone(),
        pipeline_file: plan.path.display().to_string(),
        run_id: run_id.clone(),
        status: failure.as_ref().map_or("ok", |(_, s)| *s),
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
        started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
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
        personas: ctx.personas_meta.clone(),
        outputs: ctx.outputs.clone(),
        error: failure.as_ref().map(|(e, _)| error_chain(e)),
    };
    userlens_report::write_json(&record, &run_dir.join("run.json"))?;
    userlens_report::write_json(&record, &output_dir.join("run.json"))?;
    if let Some((error, _)) = failure {
        return Err(error);
    }
    Ok(RunSummary {
        record,
        run_dir,
        output_dir,
        personas,
    })
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

/// `<as-of>-<start time>`, with a counter when two runs start in the same second.
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
    for attempt in 0u32.. {
        let id = if attempt == 0 {
            format!("{as_of}_{stamp}")
        } else {
            format!("{as_of}_{stamp}-{attempt}")
        };
        let dir = root.join(&id);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((id, dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(&dir)(e)),
        }
    }
    unreachable!("the attempt counter is unbounded")
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

fn run_stage(
    ctx: &mut Context<'_>,
    stage: &PlannedStage,
    outputs: &[Tables],
) -> std::result::Result<Tables, StageError> {
    let inputs = inputs_of(stage, outputs);
    let mut tables = Tables::new();
    match &stage.kind {
        StageKind::Ingest(source) => {
            let ingested = userlens_ingest::ingest(source).map_err(|e| match e {
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
            ctx.inputs.extend(stats.files.iter().cloned());
            ctx.rows.read += stats.read;
            ctx.rows.kept += stats.kept;
            ctx.rows.quarantined += stats.quarantined;
            ctx.rows.duplicates += stats.duplicates;
            let mut quarantine = ingested.quarantine.clone();
            let path = ctx.output_dir.join("quarantine.csv");
            userlens_report::write_csv(&mut quarantine, &path)
                .map_err(|e| StageError::Run(e.into()))?;
            ctx.outputs.push(path.display().to_string());
            stats
                .check_gate(source.max_quarantine_share())
                .map_err(|e| StageError::Refused(Box::new(e)))?;
            tables.insert("events".into(), ingested.events);
            tables.insert("quarantine".into(), ingested.quarantine);
        }
        StageKind::Features { params, users } => {
            let events = table(&inputs, "events")?;
            let as_of = match ctx.as_of {
                Some(t) => t,
                None => default_as_of(events)?,
            };
            ctx.as_of = Some(as_of);
            let users = match users {
                Some(path) => Some(userlens_ingest::read_table(path)?),
                None => None,
            };
            if let Some(path) = users.as_ref().and(stage_users_path(stage)) {
                ctx.inputs.push(userlens_ingest::fingerprint(&path)?);
            }
            let features = userlens_features::build(events, as_of, users.as_ref(), params)?;
            if features.height() == 0 {
                return Err(StageError::Refused(
                    format!("no user has events before the as-of date: nothing to profile").into(),
                ));
            }
            ctx.rows.users = features.height() as u64;
            tables.insert("features".into(), features);
        }
        StageKind::Profile(params) => {
            let features = table(&inputs, "features")?;
            let profile = userlens_profile::profile(features, params, ctx.plan.seed)?;
            ctx.personas_meta = Some(
                serde_json::to_value(&profile.model)
                    .map_err(|e| StageError::Failed(Box::new(e)))?,
            );
            tables.insert("assignments".into(), profile.assignments);
            tables.insert("personas".into(), profile.personas);
            tables.insert("k_selection".into(), profile.k_selection);
        }
        StageKind::Report(params) => {
            let dir = ctx.output_dir.clone();
            let write = |name: &str,
                         df: &DataFrame,
                         ctx: &mut Context<'_>|
             -> std::result::Result<(), StageError> {
                let path = dir.join(name);
                userlens_report::write_csv(&mut df.clone(), &path)
                    .map_err(|e| StageError::Run(e.into()))?;
                ctx.outputs.push(path.display().to_string());
                Ok(())
            };
            write("personas.csv", table(&inputs, "personas")?, ctx)?;
            write("user_personas.csv", table(&inputs, "assignments")?, ctx)?;
            if let Some(k) = inputs.get("k_selection") {
                write("k_selection.csv", k, ctx)?;
            }
            if params.features_csv
                && let Some(features) = inputs.get("features")
            {
                write("features.csv", features, ctx)?;
            }
        }
    }
    Ok(tables)
}

fn stage_users_path(stage: &PlannedStage) -> Option<PathBuf> {
    match &stage.kind {
        StageKind::Features { users, .. } => users.clone(),
        _ => None,
    }
}

/// Midnight after the last event, so that every event counts.
fn default_as_of(events: &DataFrame) -> std::result::Result<i64, StageError> {
    let last = events
        .column(columns::EVENT_TIME)?
        .cast(&DataType::Int64)?
        .i64()?
        .max()
        .ok_or_else(|| StageError::Refused("no events: nothing to profile".into()))?;
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
    let get = |name: &str| personas.column(name).ok();
    let (Some(ids), Some(labels), Some(users), Some(shares)) = (
        get("persona_id"),
        get(columns::LABEL),
        get("users"),
        get("share"),
    ) else {
        return Vec::new();
    };
    let ids = ids.cast(&DataType::UInt32).ok();
    let users = users.cast(&DataType::UInt64).ok();
    let (Some(ids), Some(users)) = (ids, users) else {
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
