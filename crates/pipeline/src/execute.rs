//! One stage's run: its inputs, its attempts with retries, what it tells the run,
//! and the gates checked on it.

use std::path::{Path, PathBuf};

use userlens_ingest::Events;

use crate::artifacts;
use crate::drift;
use crate::engine::{Cluster, Engine};
use crate::error::{Error, error_chain};
use crate::plan::{Gates, Plan, PlannedStage};
use crate::previous::Previous;
use crate::progress::Progress;
use crate::publish;
use crate::record::{Rows, StageMeta, StageRecord};
use crate::stage::{Inputs, Output, StageContext, StageError, Tables};

/// What the stages have told the run so far.
#[derive(Default)]
pub(crate) struct RunState {
    pub as_of: Option<i64>,
    pub inputs: Vec<userlens_ingest::FileInfo>,
    pub rows: Rows,
    /// Whether a stage has counted the users in `rows`.
    pub users_counted: bool,
    pub personas: Option<serde_json::Value>,
    pub stability: Option<serde_json::Value>,
    pub drift: Option<serde_json::Value>,
    pub models: Option<serde_json::Value>,
    /// The kinds of the stages absorbed: the first of each describes the run.
    pub kinds: Vec<&'static str>,
    pub files: Vec<String>,
    pub notes: Vec<String>,
    /// `(stage, artifact folder)` of the pipeline's other runs, nearest as-of date
    /// first ([`StageContext::past_metas`]).
    pub past: Vec<(String, PathBuf)>,
}

impl RunState {
    /// Takes in what a finished stage says of itself: the files it read, the rows
    /// and users it counted, its as-of date, its personas and models.
    pub fn absorb(&mut self, kind: &'static str, meta: &StageMeta) {
        // A file two stages read (the users table) is listed once per version.
        for input in &meta.inputs {
            if !self.inputs.contains(input) {
                self.inputs.push(input.clone());
            }
        }
        if let Some(rows) = &meta.rows {
            self.rows.read += rows.read;
            self.rows.kept += rows.kept;
            self.rows.quarantined += rows.quarantined;
            self.rows.duplicates += rows.duplicates;
            if let Some(before) = rows.before_as_of {
                *self.rows.before_as_of.get_or_insert(0) += before;
            }
        }
        // The first stage in run order to count the users counts them.
        if let Some(users) = meta.users
            && !std::mem::replace(&mut self.users_counted, true)
        {
            self.rows.users = users;
        }
        // The first stage to date the run (`--as-of`, else the first that derived
        // it from the data) dates the record.
        if self.as_of.is_none() {
            self.as_of = meta.as_of;
        }
        // The first stage of a kind describes the run, all it says or none of it:
        // its files are the ones published without a stage's name before them.
        if !self.kinds.contains(&kind) {
            self.kinds.push(kind);
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
        }
        self.files.extend(meta.files.iter().cloned());
        self.notes.extend(meta.notes.iter().cloned());
    }
}

/// Runs a stage, retrying failures as its `retries` say; the stage's folder is
/// emptied before each attempt, so nothing of a killed or failed one is left.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_with_retries(
    plan: &Plan,
    index: usize,
    record: &mut StageRecord,
    state: &mut RunState,
    previous: Option<&Previous>,
    outputs: &[Tables],
    lent: Option<Events>,
    cluster: Option<&dyn Cluster>,
    shared_run: Option<&Path>,
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
        lent: std::sync::Mutex::new(lent),
    };
    let shared = shared_run.map(|run| run.join(&stage.name));
    let mut attempt = 1;
    loop {
        record.attempts = attempt;
        // The shared folder is made by whatever the stage writes there, if anything.
        if let Some(shared) = &shared {
            publish::remove_own(shared).map_err(StageError::Run)?;
        }
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
            past: &state.past,
            planned: plan.stages.iter().map(|s| s.name.as_str()).collect(),
            rows: &state.rows,
            progress: &mut *progress,
            cluster,
            shared: shared.as_deref(),
            on_cluster: false,
            files: Vec::new(),
            written: &state.files,
            follows_its_kind: stage.follows_its_kind,
            notes: Vec::new(),
            on_refusal: None,
        };
        let ran = stage.stage.run(&mut ctx, &inputs);
        record.engine = match (ctx.on_cluster, cluster) {
            (true, Some(cluster)) => cluster.url().to_string(),
            _ => Engine::Local.url(),
        };
        let (files, notes) = (
            std::mem::take(&mut ctx.files),
            std::mem::take(&mut ctx.notes),
        );
        let on_refusal = ctx.on_refusal.take();
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
                output.meta.notes.extend(notes);
                return Ok(output);
            }
            Err(StageError::Failed(e)) if attempt <= stage.retries => {
                let delay = retry_wait(stage.retry_delay, attempt);
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
                    state.absorb(stage.uses(), &meta);
                }
                return Err(e);
            }
        }
    }
}

/// The wait before retry `attempt` (from 1): the first wait, doubled each time, never
/// more than [`crate::plan::MAX_RETRY_DELAY`].
fn retry_wait(first: std::time::Duration, attempt: u32) -> std::time::Duration {
    let doubled = first.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
    doubled.min(crate::plan::MAX_RETRY_DELAY)
}

pub(crate) fn rows_in(stage: &PlannedStage, outputs: &[Tables]) -> i64 {
    stage
        .needs
        .iter()
        .filter_map(|&n| outputs.get(n)?.max_rows())
        .max()
        .map_or(0, |rows| rows as i64)
}

/// The events this run and the run before it profiled, for the volume gates and the
/// drift record: those before each one's as-of date where both counted them, else
/// every event kept.
pub(crate) fn volumes(now: &Rows, previous: Option<&Rows>) -> (u64, Option<u64>) {
    match (now.before_as_of, previous) {
        (
            Some(now),
            Some(Rows {
                before_as_of: Some(then),
                ..
            }),
        ) => (now, Some(*then)),
        (_, rows) => (now.kept, rows.map(|r| r.kept)),
    }
}

/// The pipeline's gates, checked on the numbers a stage has just reported: the
/// event volume once rows are counted, drift once it is measured.
pub(crate) fn check_gates(
    plan: &Plan,
    state: &RunState,
    previous: Option<&Previous>,
    meta: &StageMeta,
) -> Option<String> {
    let (kept, previous_kept) = volumes(&state.rows, previous.and_then(|p| p.rows.as_ref()));
    let volume = meta
        .rows
        .as_ref()
        .and_then(|_| volume_refusal(&plan.gates, kept, previous_kept));
    volume.or_else(|| drift_refusal(&plan.gates, meta.drift.as_ref()?))
}

/// What the gates would say now of a finished run, from its record and the run
/// before it now: a night done before they changed may not be done as it would be.
pub(crate) fn recorded_refusal(
    plan: &Plan,
    record: &crate::record::PastRecord,
    previous: Option<&Previous>,
) -> Option<String> {
    let (kept, previous_kept) = volumes(&record.rows, previous.and_then(|p| p.rows.as_ref()));
    volume_refusal(&plan.gates, kept, previous_kept)
        .or_else(|| drift_refusal(&plan.gates, record.drift.as_ref()?))
}

/// The volume gates' refusal of `kept` events against the last good run's.
fn volume_refusal(gates: &Gates, kept: u64, previous_kept: Option<u64>) -> Option<String> {
    let previous_kept = previous_kept.filter(|&k| k > 0)?;
    let ratio = kept as f64 / previous_kept as f64;
    if let Some(min) = gates.min_volume_ratio
        && ratio < min
    {
        return Some(format!(
            "event volume is {:.1}% of the last good run's ({} of {} events), below the gate of {:.1}%",
            ratio * 100.0,
            kept,
            previous_kept,
            min * 100.0
        ));
    }
    if let Some(max) = gates.max_volume_ratio
        && ratio > max
    {
        return Some(format!(
            "event volume is {:.1}% of the last good run's ({} of {} events), above the gate of {:.1}%",
            ratio * 100.0,
            kept,
            previous_kept,
            max * 100.0
        ));
    }
    None
}

/// The drift gate's refusal of the features' drift as recorded (`StageMeta::drift`).
fn drift_refusal(gates: &Gates, drift: &serde_json::Value) -> Option<String> {
    let level = gates.fail_on_drift?;
    let drifted: Vec<String> = drift
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_retry_waits_twice_as_long_each_time_up_to_a_day() {
        let minute = Duration::from_secs(60);
        let waits: Vec<u64> = (1..=4).map(|a| retry_wait(minute, a).as_secs()).collect();
        assert_eq!(waits, [60, 120, 240, 480]);
        let day = crate::plan::MAX_RETRY_DELAY;
        assert_eq!(retry_wait(day, 10), day);
        assert_eq!(retry_wait(minute, 40), day);
    }
}
