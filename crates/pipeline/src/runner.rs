//! Running a plan: a lock per pipeline, stages in order with retries, skip-unchanged
//! and resume through the ledger, quality gates, and one publish at the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use polars::prelude::DataType;
use serde::{Deserialize, Serialize};
use userlens_ingest::Events;
use userlens_model::columns;

use crate::artifacts::{self, Saved, Saving, Writer};
use crate::drift;
use crate::error::{Error, Result};
use crate::ledger::{Ledger, RunRow, StageRow};
use crate::lock::PipelineLock;
use crate::plan::{Override, Plan, PlannedStage};
use crate::publish;
use crate::record::{
    PastRecord, PersonaSummary, Rows, RunRecord, RunStatus, RunSummary, StageMeta, StageRecord,
    StageStatus,
};
use crate::stage::{Inputs, Output, StageContext, StageError, Tables};

/// Bumped when a stage's output for the same inputs and parameters changes, so
/// that skip-unchanged never reuses an artifact made by different code.
const CODE_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "+stages.5");

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
    /// Replace an output folder that userlens did not write.
    pub force_output: bool,
    /// Continue this failed or killed run from its first unfinished stage, with the
    /// overrides, output folder and as-of date it was started with.
    pub resume: Option<String>,
    /// Run just this stage, on the finished artifacts of the stages before it (which
    /// run only if they have none), and stop there: the run is recorded as
    /// `partial` and nothing is published. For timing or debugging one stage.
    pub only: Option<String>,
}

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
    /// The stage's events are bigger than memory should hold, and are read in parts:
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

/// The last good run, for stable ids and drift.
pub(crate) struct Previous {
    pub run_id: String,
    /// Stage name -> artifact folder.
    pub artifacts: BTreeMap<String, PathBuf>,
    pub rows: Option<Rows>,
}

/// What a run was started with beyond the pipeline file, stored in the ledger so
/// that `--resume` continues it exactly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Invocation {
    set: Vec<String>,
    output: Option<PathBuf>,
    as_of: Option<NaiveDate>,
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
fn cache_keys(plan: &Plan, as_of: &str) -> Vec<String> {
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
        put(stage.uses());
        put(&stage.params.to_string());
        put(&plan.seed.to_string());
        put(as_of);
        for &need in &stage.needs {
            put(&keys[need]);
        }
        for file in stage.stage.input_files() {
            // A missing file gets no fingerprint: the stage runs and reports it.
            match userlens_ingest::fingerprint(&file) {
                Ok(info) => put(&info.blake3),
                Err(_) => put("missing"),
            }
        }
        keys.push(hasher.finalize().to_hex().to_string());
    }
    keys
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
    let hint = userlens_model::did_you_mean(name, &names)
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
    let keys = cache_keys(plan, &label);
    let ledger = Ledger::open(&runs_root(plan, options))?;
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
                .filter(|row| {
                    artifacts::content_hash(Path::new(&row.artifact_dir))
                        .ok()
                        .as_ref()
                        == Some(&row.content_hash)
                })
                .map(|row| row.run_id)
        };
        upstream_runs &= reuse.is_some();
        stages.push(PlannedRun {
            name: stage.name.clone(),
            uses: stage.uses(),
            key,
            reuse,
        });
    }
    Ok(stages)
}

/// The plan and options a resumed run continues with: those it was started with.
fn resumed(plan: &Plan, options: &RunOptions, row: &RunRow) -> Result<(Plan, RunOptions)> {
    let stored: Invocation = match &row.invocation {
        Some(text) => serde_json::from_str(text).map_err(|e| {
            Error::Resume(format!(
                "run `{}` has an unreadable invocation: {e}",
                row.run_id
            ))
        })?,
        None => Invocation::default(),
    };
    let given = Invocation {
        set: plan.overrides.iter().map(|o| o.text.clone()).collect(),
        output: options.output.clone(),
        as_of: options.as_of,
    };
    let nothing_given = Invocation {
        set: given.set.clone(),
        ..Invocation::default()
    };
    if given != stored && given != nothing_given {
        return Err(Error::Resume(format!(
            "run `{}` was started with {}; resume it with the same options, or with none",
            row.run_id,
            describe(&stored)
        )));
    }
    let overrides = stored
        .set
        .iter()
        .map(|text| Override::parse(text))
        .collect::<Result<Vec<_>>>()?;
    let plan = if overrides == plan.overrides {
        plan.clone()
    } else {
        plan.replan(&overrides)?
    };
    let options = RunOptions {
        output: stored.output,
        as_of: stored.as_of,
        ..options.clone()
    };
    Ok((plan, options))
}

fn describe(invocation: &Invocation) -> String {
    let mut parts: Vec<String> = invocation
        .set
        .iter()
        .map(|s| format!("`--set {s}`"))
        .collect();
    if let Some(out) = &invocation.output {
        parts.push(format!("`--out {}`", out.display()));
    }
    if let Some(as_of) = invocation.as_of {
        parts.push(format!("`--as-of {as_of}`"));
    }
    if parts.is_empty() {
        "no options".into()
    } else {
        parts.join(", ")
    }
}

/// Runs a plan, or resumes a run of it.
pub fn run(
    plan: &Plan,
    options: &RunOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<RunSummary> {
    let root = runs_root(plan, options);
    let lock = PipelineLock::acquire(&root, &plan.name)?;
    if let Some(pid) = lock.stale_pid {
        let message = format!(
            "took over the lock of `{}` left by process {pid}, which is no longer running",
            plan.name
        );
        progress(&Progress::Warning { message });
    }
    let ledger = Ledger::open(&root)?;
    let started = Utc::now();

    let resumed_run = match &options.resume {
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
            if !row.status.resumable() {
                return Err(Error::Resume(format!(
                    "run `{id}` finished; there is nothing to resume"
                )));
            }
            Some(row)
        }
        None => None,
    };
    let (plan, options) = match &resumed_run {
        Some(row) => resumed(plan, options, row)?,
        None => (plan.clone(), options.clone()),
    };
    let plan = &plan;
    let only = only_index(plan, &options)?;
    let label = as_of_label(options.as_of);
    let output = output_dir(plan, &options, &label);
    publish::check_output(&output, options.force_output)?;
    let (run_id, run_dir) = match &resumed_run {
        Some(row) => (row.run_id.clone(), PathBuf::from(&row.run_dir)),
        None => new_run_dir(&root.join(&plan.name), &label, started)?,
    };
    let finished = |id: &str| {
        id == run_id
            || ledger
                .run(id)
                .ok()
                .flatten()
                .is_some_and(|row| row.pipeline == plan.name)
    };
    publish::recover(&output, &finished)?;
    publish::recover(&publish::refused_dir(&output), &finished)?;
    let staging = publish::staging(&output, &run_id)?;
    let registered = crate::interrupt::register(crate::interrupt::Active {
        run_id: run_id.clone(),
        runs: root.clone(),
        staging: staging.clone(),
        lock: lock.path().to_path_buf(),
    });

    let invocation = Invocation {
        set: plan.overrides.iter().map(|o| o.text.clone()).collect(),
        output: options.output.clone(),
        as_of: options.as_of,
    };
    let mut run_row = RunRow {
        run_id: run_id.clone(),
        pipeline: plan.name.clone(),
        as_of: label.clone(),
        status: RunStatus::Running,
        started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        finished_at: None,
        run_dir: run_dir.display().to_string(),
        error: None,
        invocation: Some(serde_json::to_string(&invocation).unwrap_or_default()),
        pid: Some(i64::from(std::process::id())),
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
                .and_then(|bytes| serde_json::from_slice::<PastRecord>(&bytes).ok())
                .map(|record| record.rows),
            run_id: row.run_id,
        }),
        None => None,
    };
    let finished_here: BTreeMap<String, StageRow> = if resumed_run.is_some() {
        ledger
            .stages(&run_id)?
            .into_iter()
            .filter(|s| s.status.finished())
            .map(|s| (s.stage.clone(), s))
            .collect()
    } else {
        BTreeMap::new()
    };

    let keys = cache_keys(plan, &label);
    let mut state = RunState {
        as_of: options
            .as_of
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp_micros()),
        ..RunState::default()
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
    let mut failure: Option<(Error, RunStatus)> = None;
    let mut upstream_reused = true;
    for (index, stage) in plan.stages.iter().enumerate() {
        if only.is_some_and(|only| index > only) {
            break;
        }
        let key = &keys[index];
        let stage_dir = run_dir.join(&stage.name);
        let clock = Instant::now();
        let mut record = StageRecord {
            name: stage.name.clone(),
            uses: stage.uses(),
            status: StageStatus::Ok,
            seconds: 0.0,
            attempts: 0,
            rows_out: 0,
            artifacts: relative(&stage_dir, &run_dir),
            reused_from: None,
            peak_rss_mib: None,
            error: None,
        };
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
            .filter(|_| only != Some(index));
        let loaded = reusable.and_then(|row| {
            let dir = PathBuf::from(&row.artifact_dir);
            match artifacts::load(&dir, &row.content_hash, stage, &staging) {
                Ok((tables, meta)) => Some((tables, meta, dir, row)),
                Err(why) => {
                    let message = format!("stage `{}` runs again: {why}", stage.name);
                    progress(&Progress::Warning { message });
                    None
                }
            }
        });
        let result = match loaded {
            Some((tables, meta, dir, row)) => {
                record.status = StageStatus::Skipped;
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
                Ok((tables, meta, dir, Saved::Done(row.content_hash)))
            }
            None => {
                upstream_reused = false;
                progress(&Progress::StageStarted {
                    index,
                    name: stage.name.clone(),
                    uses: stage.uses(),
                });
                let more = index + 1 < plan.stages.len() && only != Some(index);
                let ran = run_with_retries(
                    plan,
                    index,
                    &mut record,
                    &mut state,
                    previous.as_ref(),
                    &outputs,
                    &stage_dir,
                    &staging,
                    progress,
                );
                match ran {
                    Ok(Output { mut tables, meta }) => {
                        let background = if more && matches!(tables.events, Some(Events::Memory(_)))
                        {
                            artifacts::save_in_background(&stage_dir, &tables, &meta, &staging)
                        } else {
                            None
                        };
                        match background {
                            Some(save) => Ok((tables, meta, stage_dir.clone(), save)),
                            None => {
                                let saved = artifacts::save(
                                    &stage_dir,
                                    &mut tables,
                                    &meta,
                                    &staging,
                                    Writer::Foreground,
                                );
                                match saved {
                                    Ok(hash) => {
                                        Ok((tables, meta, stage_dir.clone(), Saved::Done(hash)))
                                    }
                                    Err(e) => {
                                        // Not returned with the stage before still writing.
                                        if let Some(pending) = saving.take() {
                                            let _ = pending.finish(&ledger, &mut records);
                                        }
                                        return Err(e);
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => Err(e),
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
                state.absorb(&meta);
                record.rows_out = tables
                    .rows(stage.stage.provides().first().copied().unwrap_or(""))
                    .unwrap_or(0);
                if record.status == StageStatus::Ok {
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
                    status: record.status,
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
                if let Some(refusal) = check_gates(plan, &state, previous.as_ref(), &meta) {
                    let error = Error::Refused {
                        stage: stage.name.clone(),
                        source: refusal.into(),
                    };
                    failure = Some((error, RunStatus::Refused));
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
                        RunStatus::Failed,
                    ),
                    StageError::Refused(source) => (
                        Error::Refused {
                            stage: stage.name.clone(),
                            source,
                        },
                        RunStatus::Refused,
                    ),
                    StageError::Run(error) => (error, RunStatus::Failed),
                };
                record.status = StageStatus::Failed;
                record.error = Some(error_chain(&error));
                ledger.put_stage(&StageRow {
                    run_id: run_id.clone(),
                    stage: stage.name.clone(),
                    position: index as i64,
                    status: StageStatus::Failed,
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
    let personas = persona_summary(&outputs);
    let status = match &failure {
        Some((_, status)) => *status,
        None if only.is_some() => RunStatus::Partial,
        None => RunStatus::Ok,
    };
    let mut record = RunRecord {
        pipeline: plan.name.clone(),
        pipeline_file: plan.path.display().to_string(),
        run_id: run_id.clone(),
        status,
        as_of: state
            .as_of
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| t.date_naive().to_string()),
        as_of_source: if options.as_of.is_some() {
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
        inputs: state.inputs.clone(),
        rows: state.rows.clone(),
        stages: records,
        params: plan
            .stages
            .iter()
            .map(|s| (s.name.clone(), s.params.clone()))
            .collect(),
        personas: state.personas.clone(),
        stability: state.stability.clone(),
        drift: state.drift.clone(),
        models: state.models.clone(),
        outputs: state.files.clone(),
        error: failure.as_ref().map(|(e, _)| error_chain(e)),
    };
    record.outputs.push("run.json".into());
    // A signal now waits until the outputs are published and the run recorded.
    let mut publishing = registered.publishing();
    let published = finish_run(plan, &mut record, &run_dir, &staging, &output);
    if published.is_ok() && record.status == RunStatus::Refused {
        let message = format!(
            "the refused run's quarantine and record are in `{}`; the last good report is left in place",
            publish::refused_dir(&output).display()
        );
        progress(&Progress::Warning { message });
    }
    let failure = match (failure, published) {
        (failure, Ok(())) => failure,
        (None, Err(e)) => {
            record.status = RunStatus::Failed;
            record.error = Some(error_chain(&e));
            let _ = userlens_report::write_json(&record, &run_dir.join("run.json"));
            Some((e, RunStatus::Failed))
        }
        (Some(failure), Err(_)) => Some(failure),
    };
    // Whatever happened, this run's staging folder goes (published, it is gone already).
    let _ = publish::remove_own(&staging);
    run_row.status = record.status;
    run_row.finished_at = Some(record.finished_at.clone());
    run_row.error = record.error.clone();
    ledger.put_run(&run_row)?;
    *publishing = None;
    drop(publishing);
    drop(registered);
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

/// Writes `run.json` to the run folder and publishes the staging folder: an ok run
/// replaces the output folder, a refused one goes beside it (its quarantine and
/// record, where the last good report is left in place), a failed or partial run
/// publishes nothing.
fn finish_run(
    plan: &Plan,
    record: &mut RunRecord,
    run_dir: &Path,
    staging: &Path,
    output: &Path,
) -> Result<()> {
    userlens_report::write_json(&*record, &run_dir.join("run.json"))?;
    let target = match record.status {
        RunStatus::Ok => output.to_path_buf(),
        RunStatus::Refused => publish::refused_dir(output),
        _ => return Ok(()),
    };
    if record.status == RunStatus::Ok {
        // Every table a stage must provide was checked when it ran or was loaded;
        // now the pages made from the published files.
        userlens_report::write_json(&*record, &staging.join("run.json"))?;
        for stage in &plan.stages {
            let added = stage.stage.finish(staging).map_err(|e| match e {
                StageError::Run(error) => error,
                StageError::Failed(source) | StageError::Refused(source) => Error::Stage {
                    stage: stage.name.clone(),
                    source,
                },
            })?;
            record.outputs.extend(added);
        }
    }
    userlens_report::write_json(&*record, &staging.join("run.json"))?;
    userlens_report::write_json(&*record, &run_dir.join("run.json"))?;
    publish::check_output(&target, false)?;
    publish::publish(staging, &target, &record.run_id)
}

/// What the stages have told the run so far.
#[derive(Default)]
struct RunState {
    as_of: Option<i64>,
    inputs: Vec<userlens_ingest::FileInfo>,
    rows: Rows,
    personas: Option<serde_json::Value>,
    stability: Option<serde_json::Value>,
    drift: Option<serde_json::Value>,
    models: Option<serde_json::Value>,
    files: Vec<String>,
}

impl RunState {
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
        self.files.extend(meta.files.iter().cloned());
    }
}

/// Runs a stage, retrying failures as its `retries` say; the stage's folder is
/// emptied before each attempt, so nothing of a killed or failed one is left.
#[allow(clippy::too_many_arguments)]
fn run_with_retries(
    plan: &Plan,
    index: usize,
    record: &mut StageRecord,
    state: &mut RunState,
    previous: Option<&Previous>,
    outputs: &[Tables],
    dir: &Path,
    staging: &Path,
    progress: &mut dyn FnMut(&Progress),
) -> std::result::Result<Output, StageError> {
    let stage = &plan.stages[index];
    let inputs = Inputs {
        needs: stage
            .needs
            .iter()
            .filter_map(|&n| Some((&plan.stages[n], outputs.get(n)?)))
            .collect(),
    };
    let mut attempt = 1;
    loop {
        record.attempts = attempt;
        publish::remove_own(dir).map_err(StageError::Run)?;
        std::fs::create_dir_all(dir).map_err(|source| {
            StageError::Run(Error::Io {
                path: dir.to_path_buf(),
                source,
            })
        })?;
        let mut ctx = StageContext {
            name: &stage.name,
            index,
            seed: plan.seed,
            as_of: state.as_of,
            dir,
            staging,
            previous,
            rows: &state.rows,
            progress: &mut *progress,
            files: Vec::new(),
            on_refusal: None,
        };
        let ran = stage.stage.run(&mut ctx, &inputs);
        let (files, on_refusal) = (std::mem::take(&mut ctx.files), ctx.on_refusal.take());
        drop(ctx);
        match ran {
            Ok(mut output) => {
                if let Some(missing) = artifacts::missing_table(stage, &output.tables) {
                    return Err(StageError::Run(Error::Usage(format!(
                        "stage `{}` did not make its `{missing}` table",
                        stage.name
                    ))));
                }
                output.meta.files = files;
                return Ok(output);
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
            Err(e) => {
                if let Some(mut meta) = on_refusal {
                    meta.files = files;
                    state.absorb(&meta);
                }
                return Err(e);
            }
        }
    }
}

fn rows_in(stage: &PlannedStage, outputs: &[Tables]) -> i64 {
    stage
        .needs
        .iter()
        .filter_map(|&n| outputs.get(n)?.max_rows())
        .max()
        .map_or(0, |rows| rows as i64)
}

/// The pipeline's gates, checked on the numbers a stage has just reported: the
/// event volume once rows are counted, drift once it is measured.
fn check_gates(
    plan: &Plan,
    state: &RunState,
    previous: Option<&Previous>,
    meta: &StageMeta,
) -> Option<String> {
    let gates = &plan.gates;
    let previous_kept = previous.and_then(|p| p.rows.as_ref()).map(|r| r.kept);
    if meta.rows.is_some()
        && let Some(previous_kept) = previous_kept.filter(|&k| k > 0)
    {
        let ratio = state.rows.kept as f64 / previous_kept as f64;
        if let Some(min) = gates.min_volume_ratio
            && ratio < min
        {
            return Some(format!(
                "event volume fell to {:.1}% of the last good run's ({} of {} events), below the gate of {:.1}%",
                ratio * 100.0,
                state.rows.kept,
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
                state.rows.kept,
                previous_kept,
                max * 100.0
            ));
        }
    }
    let level = gates.fail_on_drift?;
    let drifted: Vec<String> = meta
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

pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
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

/// The personas table among the stages' outputs, for the command line's summary.
fn persona_summary(outputs: &[Tables]) -> Vec<PersonaSummary> {
    let Some(personas) = outputs.iter().find_map(|t| t.get("personas")) else {
        return Vec::new();
    };
    let column =
        |name: &str, dtype: DataType| personas.column(name).ok().and_then(|c| c.cast(&dtype).ok());
    let (Some(ids), Some(labels), Some(users), Some(shares)) = (
        column(columns::PERSONA_ID, DataType::UInt32),
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
