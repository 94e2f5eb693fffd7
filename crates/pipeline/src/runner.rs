//! Running a plan: a lock per pipeline, stages in order (each reused from a
//! verified artifact or run with retries, see `execute`), quality gates, and one
//! publish at the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{Datelike, Utc};
use userlens_ingest::Events;
use userlens_model::time::midnight_micros;

use crate::artifacts::{self, Saved, Saving, Writer};
use crate::engine::{Cluster, Engine};
use crate::error::{Error, Result, error_chain};
use crate::execute::{RunState, check_gates, rows_in, run_with_retries};
use crate::interrupt;
use crate::keys::{
    as_of_label, cache_keys, new_run_dir, only_index, output_dir, runs_folder_id, runs_root,
};
use crate::ledger::{Ledger, RunRow, StageRow};
use crate::lock::PipelineLock;
use crate::plan::Plan;
use crate::previous::{Previous, past_artifacts, previous_run};
use crate::progress::Progress;
use crate::publish::{self, Owner};
use crate::record::{self, RunRecord, RunStatus, RunSummary, StageRecord, StageStatus};
use crate::resume::{self, Invocation};
use crate::stage::{Output, StageError, Tables};

mod memory;
mod options;
mod reuse;

pub use options::RunOptions;
pub(crate) use options::check_runs_folder;

/// How the stage loop ended early: the error and the run's status.
type Stop = (Error, RunStatus);

/// A stage's tables and meta, its artifact folder and how its artifacts are saved;
/// or why it failed.
type Outcome = std::result::Result<(Output, PathBuf, Saved), StageError>;

/// Records `row` as failed with `e`, for a run that cannot go on where no stage
/// records it (before its first stage, or the runner's own error between them); the
/// ledger said it was still running.
fn failed(ledger: &Ledger, row: &RunRow, e: Error) -> Error {
    // A run a signal took is recorded by the signal's thread, as interrupted.
    if interrupt::abandoned() {
        return e;
    }
    let row = RunRow {
        status: RunStatus::Failed,
        finished_at: Some(record::stamp(Utc::now())),
        error: Some(error_chain(&e)),
        ..row.clone()
    };
    let _ = ledger.put_run(&row);
    e
}

/// Runs a plan, or resumes a run of it.
pub fn run(
    plan: &Plan,
    options: &RunOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<RunSummary> {
    if let Some(signal) = interrupt::stop_requested() {
        return Err(Error::Stopped { signal });
    }
    let root = runs_root(plan, options);
    if root.as_os_str().is_empty() {
        return Err(Error::Usage(
            "the runs folder is empty: give one, such as `--runs runs`".into(),
        ));
    }
    check_runs_folder(&root)?;
    // Before the lock and the ledger are made: a refused command writes nothing.
    match &options.resume {
        None => {
            let plan = options.plan_of(plan)?;
            only_index(&plan, options)?;
            let output = output_dir(&plan, options, &as_of_label(options.as_of));
            publish::check_name(&output)?;
            publish::check_output(&output, &root, options.force_output)?;
            options.engine_of(&plan)?.check_built(options.connect)?;
        }
        Some(id) if !root.join("ledger.sqlite").is_file() => {
            return Err(Error::Resume(format!(
                "no run `{id}` in the ledger `{}`",
                root.display()
            )));
        }
        Some(_) => {}
    }
    let lock = PipelineLock::acquire(&root, &plan.name)?;
    if let Some(pid) = lock.stale_pid {
        let message = format!(
            "took over the lock of `{}` left by process {pid}, which is no longer running",
            plan.name
        );
        progress(&Progress::Warning { message });
    }
    let ledger = Ledger::open(&root)?;
    // Found before the killed runs are settled: one that published is resumed too.
    let resumed_run = match &options.resume {
        Some(id) => Some(resume::find(&ledger, &root, plan, id)?),
        None => None,
    };
    // The lock is ours: a run of this pipeline the ledger says is running was killed.
    resume::settle_killed(&ledger, plan)?;
    let started = Utc::now();
    let (plan, options) = match &resumed_run {
        Some(row) => resume::resumed(plan, options, row)?,
        None => (plan.clone(), options.clone()),
    };
    let plan = options.plan_of(&plan)?;
    if let Some(message) = (resumed_run.as_ref()).and_then(|row| resume::plan_changed(row, &plan)) {
        progress(&Progress::Warning { message });
    }
    let label = as_of_label(options.as_of);
    let output = output_dir(&plan, &options, &label);
    let only = only_index(&plan, &options)?;
    for message in crate::keys::missing_inputs(&plan, only) {
        progress(&Progress::Warning { message });
    }
    publish::check_name(&output)?;
    publish::check_output(&output, &root, options.force_output)?;
    // Before anything is written: a cluster that does not answer fails the run here.
    let engine = options.engine_of(&plan)?;
    let cluster = engine.open(options.connect)?;
    // The executors' files go under the `shared_dir`, in this runs folder's own place.
    let shared_base = match (&plan.shared_dir, &cluster) {
        (Some(shared), Some(_)) => Some(shared.join(&plan.name).join(runs_folder_id(&root)?)),
        _ => None,
    };
    let mut run_row = RunRow {
        run_id: String::new(),
        pipeline: plan.name.clone(),
        as_of: label.clone(),
        status: RunStatus::Running,
        started_at: record::stamp(started),
        finished_at: None,
        run_dir: String::new(),
        error: None,
        // A resumed run keeps what it was started with (the plan's digest included).
        invocation: match &resumed_run {
            Some(row) => row.invocation.clone(),
            None => serde_json::to_string(&Invocation::of(&plan, &options, Some(&engine))).ok(),
        },
        pid: Some(i64::from(std::process::id())),
    };
    let (run_id, run_dir) = match &resumed_run {
        Some(row) => (row.run_id.clone(), PathBuf::from(&row.run_dir)),
        None => new_run_dir(&root.join(&plan.name), &label, started, |id, dir| {
            run_row.run_id = id.to_string();
            run_row.run_dir = dir.display().to_string();
            ledger.claim_run(&run_row)
        })?,
    };
    run_row.run_id.clone_from(&run_id);
    run_row.run_dir = run_dir.display().to_string();
    // Registered as soon as it is claimed: a signal from here on abandons it cleanly.
    let staging = publish::staging_path(&output, &run_id);
    let registered = interrupt::register(interrupt::Active {
        run_id: run_id.clone(),
        runs: root.clone(),
        staging: staging.clone(),
        made: None,
        lock: lock.path().to_path_buf(),
    });
    let Some(registered) = registered else {
        // A signal came since the last run of this process settled: this one stops
        // before its first stage, recorded as stopped.
        let _ = publish::remove_own(&staging);
        interrupt::record_stopped(&ledger, &mut run_row)?;
        let signal = interrupt::stop_requested().unwrap_or_default();
        return Err(Error::Stopped { signal });
    };
    // Leftovers of this pipeline's runs only: the lock says none of them is running.
    // Of this ledger's own process, certainly; of another runs folder's run of the
    // same id, only if its process is gone.
    let ours = |id: &str, pid: Option<u32>| {
        if id == run_id && pid.is_none_or(|p| p == std::process::id()) {
            return Owner::Certain;
        }
        match ledger.run(id).ok().flatten() {
            Some(row) if row.pipeline == plan.name => match (row.pid, pid) {
                (Some(a), Some(b)) if a == i64::from(b) => Owner::Certain,
                _ => Owner::Unless,
            },
            _ => Owner::Other,
        }
    };
    // The output's folder holds its `.refused` sibling's leftovers too.
    publish::recover(&output, &ours).map_err(|e| failed(&ledger, &run_row, e))?;
    // By their folder's name under this runs folder, wherever the ledger's paths
    // were written from.
    let run_dirs: Vec<PathBuf> = (ledger.runs(Some(&plan.name)).unwrap_or_default())
        .into_iter()
        .filter_map(|row| {
            Some(
                root.join(&plan.name)
                    .join(Path::new(&row.run_dir).file_name()?),
            )
        })
        .collect();
    artifacts::remove_stale_temporaries(run_dirs.iter().map(PathBuf::as_path));
    let staged = {
        let _running = interrupt::still_running()?;
        publish::staging(&output, &run_id)
    };
    // Recorded once the guard is let go: `failed` asks whether a signal took the run.
    let made = staged.map_err(|e| failed(&ledger, &run_row, e))?.1;
    interrupt::made(made.clone());
    // From here a failure before the stages run takes the staging folder with it.
    let abandon = |e: Error| {
        let _ = publish::remove_own(&staging);
        if let Some(made) = &made {
            publish::remove_empty_made(&staging, made);
        }
        failed(&ledger, &run_row, e)
    };
    // A new run's row went in with its id; a resumed one is running again.
    if resumed_run.is_some() {
        ledger.put_run(&run_row).map_err(&abandon)?;
    }

    let finished_here = match resumed_run {
        Some(_) => ledger
            .stages(&run_id)
            .map_err(&abandon)?
            .into_iter()
            .filter(|s| s.status.finished())
            .map(|s| (s.stage.clone(), s))
            .collect(),
        None => BTreeMap::new(),
    };
    let mut lost = Vec::new();
    let previous = previous_run(&ledger, &plan, &label, &mut lost).map_err(&abandon)?;
    if !lost.is_empty() {
        let compared = match &previous {
            Some(p) => format!("this run compares itself with {} instead", p.run_id),
            None => "no run is left to compare with: persona ids start anew, and drift \
                     and the volume gates wait for the next night"
                .to_string(),
        };
        let message = format!(
            "the record or artifacts of the last good {} are gone ({}); {compared}",
            if lost.len() == 1 { "run" } else { "runs" },
            lost.join(", ")
        );
        progress(&Progress::Warning { message });
    }
    let mut run = Run {
        keys: cache_keys(&plan, &label, previous.as_ref(), &BTreeMap::new()),
        previous,
        label: label.clone(),
        read: BTreeMap::new(),
        state: RunState {
            as_of: options
                .as_of
                .and_then(|d| midnight_micros(d.year(), d.month(), d.day())),
            past: past_artifacts(&ledger, &plan, &label, &run_id).map_err(&abandon)?,
            ..RunState::default()
        },
        plan: &plan,
        options: &options,
        cluster: cluster.as_deref(),
        shared: shared_base.map(|base| base.join(&run_id)),
        ledger: &ledger,
        run_id: run_id.clone(),
        run_dir: run_dir.clone(),
        staging: staging.clone(),
        finished_here,
        only,
        outputs: Vec::with_capacity(plan.stages.len()),
        saved_in: Vec::with_capacity(plan.stages.len()),
        records: Vec::with_capacity(plan.stages.len()),
        saving: None,
        upstream_reused: true,
        progress,
    };
    (run.progress)(&Progress::RunStarted {
        pipeline: plan.name.clone(),
        run_id: run_id.clone(),
        stages: plan.stages.len(),
    });
    let mut stop = None;
    for index in 0..plan.stages.len() {
        if only.is_some_and(|only| index > only) {
            break;
        }
        stop = match run.stage(index) {
            Ok(stop) => stop,
            Err(e) => {
                // A stage's own failure stops the run below; this is the runner's
                // (a full disk while saving), and its staging folder goes too.
                if let Some(pending) = run.saving.take() {
                    let _ = pending.finish(&ledger, &mut run.records);
                }
                return Err(abandon(e));
            }
        };
        if stop.is_some() {
            break;
        }
    }
    if let Some(pending) = run.saving.take()
        && let Err(e) = pending.finish(&ledger, &mut run.records)
    {
        // The run ends as it would have, its stop or this failure recorded.
        match &stop {
            Some(_) => run.warn_unrecorded("a stage written in the background", &e),
            None => stop = Some((e, RunStatus::Failed)),
        }
    }
    // In plan order: a stage written in the background is recorded late.
    let position = |name: &str| plan.stages.iter().position(|s| s.name == name);
    run.records.sort_by_key(|record| position(&record.name));
    let personas = crate::record::persona_summary(&run.outputs);
    let mut record = run.record(stop.as_ref().map(|(e, status)| (e, *status)), started);

    // A signal now waits until the outputs are published and the run recorded.
    let publishing = registered.publishing();
    if interrupt::was_abandoned(&run_id) {
        // Abandoned already: its staging folder is gone and the ledger says so.
        return Err(Error::Interrupted { run_id });
    }
    let published = publish::finish_run(
        &plan,
        &mut record,
        &run_dir,
        &staging,
        &output,
        options.force_output,
    );
    let mut unpublished = None;
    let mut stop = match (stop, published) {
        (stop, Ok(())) => stop,
        (None, Err(e)) => {
            record.status = RunStatus::Failed;
            record.error = Some(error_chain(&e));
            let _ = userlens_report::write_json(&record, &run_dir.join(userlens_model::files::RUN));
            Some((e, RunStatus::Failed))
        }
        (Some(stop), Err(e)) => {
            unpublished = Some(e);
            Some(stop)
        }
    };
    if record.status == RunStatus::Refused {
        // Said with the error itself, which `-q` and a log's last line keep.
        let place = publish::where_refused(&output, &run_dir, unpublished.as_ref());
        stop = stop.map(|(error, status)| (error.refused_at(&place), status));
    }
    // Whatever happened, this run's staging folder goes (published, it is gone already).
    let _ = publish::remove_own(&staging);
    if let Some(made) = &made {
        publish::remove_empty_made(&staging, made);
    }
    run_row.status = record.status;
    run_row.finished_at = Some(record.finished_at.clone());
    run_row.error = record.error.clone();
    let recorded = ledger.put_run(&run_row);
    publishing.settled();
    drop(registered);
    drop(lock);
    if let Some((error, _)) = stop {
        if let Err(e) = recorded {
            run.warn_unrecorded("the run's end", &e);
        }
        return Err(error);
    }
    recorded?;
    Ok(RunSummary {
        record,
        run_dir,
        output_dir: output,
        personas,
    })
}

/// A run in progress: what its stages need and what they have made.
struct Run<'a, 'p> {
    plan: &'a Plan,
    options: &'a RunOptions,
    /// The cluster the per-part work goes to, if the run has one.
    cluster: Option<&'a dyn Cluster>,
    /// `<shared_dir>/<pipeline>/<runs folder's id>/<run-id>`, on a cluster with a
    /// `shared_dir`: where the stages' executor files go.
    shared: Option<PathBuf>,
    ledger: &'a Ledger,
    run_id: String,
    run_dir: PathBuf,
    staging: PathBuf,
    previous: Option<Previous>,
    /// Stages this run finished before it was interrupted (a resume).
    finished_here: BTreeMap<String, StageRow>,
    keys: Vec<String>,
    /// The run's as-of label, for its keys.
    label: String,
    /// The hashes of the input files as this run's stages read them, by path.
    read: BTreeMap<String, String>,
    only: Option<usize>,
    state: RunState,
    outputs: Vec<Tables>,
    /// Per output: the folder its tables are written in, once they are (not while
    /// they are written in the background).
    saved_in: Vec<Option<PathBuf>>,
    records: Vec<StageRecord>,
    /// The stage whose artifacts are still being written (see `Saving`).
    saving: Option<Saving>,
    upstream_reused: bool,
    progress: &'p mut dyn FnMut(&Progress),
}

impl Run<'_, '_> {
    /// Reuses or runs the stage at `index`; `Some` stops the run.
    fn stage(&mut self, index: usize) -> Result<Option<Stop>> {
        let stage = &self.plan.stages[index];
        let stage_dir = self.run_dir.join(&stage.name);
        let clock = Instant::now();
        let mut record = StageRecord {
            name: stage.name.clone(),
            uses: stage.uses(),
            status: StageStatus::Ok,
            seconds: 0.0,
            attempts: 0,
            rows_out: 0,
            artifacts: relative(&stage_dir, &self.run_dir),
            reused_from: None,
            engine: Engine::Local.url(),
            peak_rss_mib: None,
            error: None,
        };
        // Before the stage runs: its last reader takes the events.
        let rows_in = rows_in(stage, &self.outputs);
        // A stage this run finished before it was stopped and resumed: recorded as it
        // ran then (its status, time and attempts), reused from this run.
        let mut own = None;
        let result = match self.reuse(index) {
            Some((output, dir, row)) => {
                if row.run_id == self.run_id {
                    own = Some((row.status, row.seconds, row.attempts));
                }
                record.status = StageStatus::Skipped;
                record.reused_from = Some(row.run_id.clone());
                // The engine that made the artifact.
                record.engine.clone_from(&row.engine);
                record.artifacts = match dir.starts_with(&self.run_dir) {
                    true => relative(&dir, &self.run_dir),
                    false => dir.display().to_string(),
                };
                (self.progress)(&Progress::StageSkipped {
                    index,
                    name: stage.name.clone(),
                    reused_from: row.run_id,
                });
                if matches!(output.tables.events, Some(Events::Parts { .. })) {
                    (self.progress)(&Progress::OutOfCore {
                        index,
                        name: stage.name.clone(),
                    });
                }
                Ok((output, dir, Saved::Done(row.content_hash)))
            }
            None => self.execute(index, &mut record, &stage_dir)?,
        };
        record.seconds = clock.elapsed().as_secs_f64();
        record.peak_rss_mib = crate::record::peak_rss_mib();
        if let Some((status, seconds, attempts)) = own {
            record.status = status;
            record.seconds = seconds;
            record.attempts = u32::try_from(attempts).unwrap_or(0);
        }
        // A stage whose artifacts were being written is recorded once they are.
        if let Some(pending) = self.saving.take_if(|p| p.handle.is_finished()) {
            let saved = pending.finish(self.ledger, &mut self.records);
            match (saved, &result) {
                (Err(e), Ok(_)) => return Err(e),
                // The stage's own failure is the one to tell (a full disk fails both).
                (Err(e), Err(_)) => self.warn_unrecorded("a stage written in the background", &e),
                (Ok(()), _) => {}
            }
        }
        let row = StageRow {
            run_id: self.run_id.clone(),
            stage: stage.name.clone(),
            position: index as i64,
            status: record.status,
            seconds: record.seconds,
            rows_in,
            rows_out: 0,
            attempts: i64::from(record.attempts),
            cache_key: self.keys[index].clone(),
            artifact_dir: stage_dir.display().to_string(),
            content_hash: String::new(),
            error: None,
            engine: record.engine.clone(),
        };
        match result {
            Ok((Output { tables, meta }, dir, saved)) => {
                self.state.absorb(stage.uses(), &meta);
                record.rows_out = tables
                    .rows(stage.stage.provides().first().copied().unwrap_or(""))
                    .unwrap_or(0);
                if record.status == StageStatus::Ok && own.is_none() {
                    (self.progress)(&Progress::StageFinished {
                        index,
                        name: stage.name.clone(),
                        seconds: record.seconds,
                        rows: record.rows_out,
                    });
                }
                // A stage that needs none reads its rows from its sources.
                let read = (meta.rows.as_ref())
                    .filter(|_| stage.needs.is_empty())
                    .map(|rows| rows.read as i64);
                let row = StageRow {
                    rows_in: read.unwrap_or(row.rows_in),
                    rows_out: record.rows_out as i64,
                    artifact_dir: dir.display().to_string(),
                    ..row
                };
                self.saved_in
                    .push(matches!(saved, Saved::Done(_)).then(|| dir.clone()));
                match saved {
                    Saved::Done(content_hash) => {
                        self.ledger.put_stage(&StageRow {
                            content_hash,
                            ..row
                        })?;
                        self.records.push(record);
                    }
                    Saved::Writing(handle, recorder) => {
                        let _ = recorder.send(row.clone());
                        if let Some(pending) = self.saving.take() {
                            pending.finish(self.ledger, &mut self.records)?;
                        }
                        self.saving = Some(Saving {
                            handle,
                            row,
                            record,
                        });
                    }
                }
                self.outputs.push(tables);
                self.free_unread(index);
                let gates = check_gates(self.plan, &self.state, self.previous.as_ref(), &meta);
                Ok(gates.map(|refusal| {
                    let error = Error::Gate {
                        after: stage.name.clone(),
                        source: refusal.into(),
                    };
                    (error, RunStatus::Refused)
                }))
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
                let recorded = self.ledger.put_stage(&StageRow {
                    status: StageStatus::Failed,
                    error: record.error.clone(),
                    ..row
                });
                if let Err(e) = recorded {
                    let what = format!("the failure of stage `{}`", stage.name);
                    self.warn_unrecorded(&what, &e);
                }
                self.records.push(record);
                Ok(Some((error, status)))
            }
        }
    }

    /// Runs the stage and saves its artifacts (the events of an in-memory ingest on a
    /// thread of their own while the next stages run).
    fn execute(
        &mut self,
        index: usize,
        record: &mut StageRecord,
        stage_dir: &Path,
    ) -> Result<Outcome> {
        self.upstream_reused = false;
        if let Err(e) = self.read_written(index) {
            return Ok(Err(e));
        }
        let lent = self.lend_events(index);
        let stage = &self.plan.stages[index];
        (self.progress)(&Progress::StageStarted {
            index,
            name: stage.name.clone(),
            uses: stage.uses(),
        });
        let ran = run_with_retries(
            self.plan,
            index,
            record,
            &mut self.state,
            self.previous.as_ref(),
            &self.outputs,
            lent,
            self.cluster,
            self.shared.as_deref(),
            stage_dir,
            &self.staging,
            &mut *self.progress,
        );
        let Output { mut tables, meta } = match ran {
            Ok(output) => output,
            Err(e) => return Ok(Err(e)),
        };
        self.key_as_read(index, &meta);
        // What the stage freed is handed back before its tables are saved.
        if let Some(release) = self.options.release_memory {
            release();
        }
        let more = index + 1 < self.plan.stages.len() && self.only != Some(index);
        if more
            && matches!(tables.events, Some(Events::Memory(_)))
            && let Some(save) = artifacts::save_in_background(
                stage_dir,
                &tables,
                &meta,
                &self.staging,
                self.ledger.dir(),
            )
        {
            return Ok(Ok((Output { tables, meta }, stage_dir.to_path_buf(), save)));
        }
        let saved = artifacts::save(
            stage_dir,
            &mut tables,
            &meta,
            &self.staging,
            Writer::Foreground,
        );
        match saved {
            Ok(hash) => Ok(Ok((
                Output { tables, meta },
                stage_dir.to_path_buf(),
                Saved::Done(hash),
            ))),
            Err(e) => {
                // Not returned with the stage before still writing.
                if let Some(pending) = self.saving.take() {
                    let _ = pending.finish(self.ledger, &mut self.records);
                }
                Err(e)
            }
        }
    }

    /// Keys stage `index` and the stages after it by the input files as it read
    /// them: a file changed since the run began (or missing then, before a retry)
    /// must not key its artifact as the file it was then.
    fn key_as_read(&mut self, index: usize, meta: &crate::record::StageMeta) {
        for info in &meta.inputs {
            self.read.insert(info.path.clone(), info.blake3.clone());
        }
        let keys = cache_keys(self.plan, &self.label, self.previous.as_ref(), &self.read);
        self.keys[index..].clone_from_slice(&keys[index..]);
    }

    /// Warns that `what` was not recorded, where the run has a failure of its own to
    /// report (a full disk fails both).
    fn warn_unrecorded(&mut self, what: &str, error: &Error) {
        let message = format!("{what} could not be recorded: {}", error_chain(error));
        (self.progress)(&Progress::Warning { message });
    }

    /// The run's record as it ended.
    fn record(
        &mut self,
        stop: Option<(&Error, RunStatus)>,
        started: chrono::DateTime<Utc>,
    ) -> RunRecord {
        let status = match stop {
            Some((_, status)) => status,
            None if self.only.is_some() => RunStatus::Partial,
            None => RunStatus::Ok,
        };
        let mut outputs = self.state.files.clone();
        outputs.push(userlens_model::files::RUN.into());
        RunRecord {
            pipeline: self.plan.name.clone(),
            pipeline_file: self.plan.path.display().to_string(),
            run_id: self.run_id.clone(),
            status,
            as_of: self.state.as_of.map(userlens_model::time::date_string),
            as_of_source: if self.options.as_of.is_some() {
                "given"
            } else {
                "derived from the data"
            },
            seed: self.plan.seed,
            engine: self
                .cluster
                .map_or_else(|| Engine::Local.url(), |c| c.url().to_string()),
            started_at: record::stamp(started),
            finished_at: record::stamp(Utc::now()),
            versions: BTreeMap::from([
                ("userlens", env!("CARGO_PKG_VERSION")),
                ("polars", polars::VERSION),
            ]),
            inputs: self.state.inputs.clone(),
            rows: self.state.rows.clone(),
            stages: std::mem::take(&mut self.records),
            params: (self.plan.stages.iter())
                .map(|s| (s.name.clone(), s.params.clone()))
                .collect(),
            personas: self.state.personas.clone(),
            stability: self.state.stability.clone(),
            drift: self.state.drift.clone(),
            models: self.state.models.clone(),
            outputs,
            notes: self.state.notes.clone(),
            error: stop.map(|(e, _)| error_chain(e)),
        }
    }
}

fn relative(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}
