//! The run a run compares itself with: for stable persona ids, drift and the
//! volume gates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::artifacts;
use crate::error::Result;
use crate::ledger::Ledger;
use crate::plan::Plan;
use crate::record::PastRecord;

impl Previous {
    /// The run that made `stage`'s artifact: this one, or the one it was reused from
    /// (the artifact's folder is `<runs>/<pipeline>/<run id>/<stage>`).
    pub fn made_by(&self, stage: &str) -> &str {
        (self.artifacts.get(stage))
            .and_then(|dir| dir.parent()?.file_name()?.to_str())
            .unwrap_or(&self.run_id)
    }
}

/// The last good run, for stable ids and drift.
pub(crate) struct Previous {
    pub run_id: String,
    /// Stage name -> artifact folder.
    pub artifacts: BTreeMap<String, PathBuf>,
    /// Stage name -> the content hash of its artifact folder.
    pub contents: BTreeMap<String, String>,
    pub rows: Option<crate::record::Rows>,
}

/// The last good run of the pipeline for an earlier as-of date, for stable ids, drift
/// and the volume gates: of the newest few, the first that finished every stage of
/// `plan` (a run that stopped early, `--until`, has no personas to keep ids from).
/// A run whose folder, record or artifacts are gone (removed to save space), or
/// whose tables a stage compares with are, is passed over, its id put in `lost`.
pub(crate) fn previous_run(
    ledger: &Ledger,
    plan: &Plan,
    as_of: &str,
    lost: &mut Vec<String>,
) -> Result<Option<Previous>> {
    let mut chosen = None;
    for row in ledger.last_ok_runs(&plan.name, as_of, 20)? {
        let finished: Vec<_> = (ledger.stages(&row.run_id)?.into_iter())
            .filter(|s| s.status.finished())
            .collect();
        // What this run reads of it: the tables of a stage that compares itself with
        // the run before (in its own folder or that of the run it reused them from),
        // and the record's row counts (the volume gates). Another stage's folder
        // removed takes nothing this run reads.
        let planned = |name: &str| plan.stages.iter().find(|p| p.name == name);
        let gone = !Path::new(&row.run_dir).is_dir()
            || finished.iter().any(|s| {
                planned(&s.stage).is_some_and(|stage| {
                    let dir = Path::new(&s.artifact_dir);
                    stage.stage.reads_previous() && !artifacts::holds_compared(dir, stage)
                })
            });
        let record = PastRecord::read(Path::new(&row.run_dir));
        if gone || record.is_none() {
            lost.push(row.run_id);
            continue;
        }
        let whole = (plan.stages.iter()).all(|s| finished.iter().any(|f| f.stage == s.name));
        if whole || chosen.is_none() {
            chosen = Some((row, finished, record));
        }
        if whole {
            break;
        }
    }
    let Some((row, finished, record)) = chosen else {
        return Ok(None);
    };
    let contents = (finished.iter())
        .map(|s| (s.stage.clone(), s.content_hash.clone()))
        .collect();
    Ok(Some(Previous {
        artifacts: (finished.into_iter())
            .map(|s| (s.stage, PathBuf::from(s.artifact_dir)))
            .collect(),
        contents,
        rows: record.map(|record| record.rows),
        run_id: row.run_id,
    }))
}

/// `(stage, artifact folder)` of every finished stage of the pipeline's other runs
/// (see [`Ledger::finished_artifacts`]), the as-of date nearest `label` first (a
/// run without one last, for a dated run), then the newest run: a stage that must
/// agree with every run (persona ids) reads the nearest run's version of a thing.
pub(crate) fn past_artifacts(
    ledger: &Ledger,
    plan: &Plan,
    label: &str,
    run_id: &str,
) -> Result<Vec<(String, PathBuf)>> {
    let mut rows = ledger.finished_artifacts(&plan.name, run_id)?;
    if let Ok(date) = label.parse::<chrono::NaiveDate>() {
        // A stable sort: the newest run first among as far.
        rows.sort_by_key(|(as_of, _, _)| match as_of.parse::<chrono::NaiveDate>() {
            Ok(day) => (day - date).num_days().unsigned_abs(),
            Err(_) => u64::MAX,
        });
    }
    Ok(rows
        .into_iter()
        .map(|(_, stage, dir)| (stage, dir))
        .collect())
}
