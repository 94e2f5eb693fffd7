//! The run a run compares itself with: for stable persona ids, drift and the
//! volume gates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::ledger::Ledger;
use crate::plan::Plan;
use crate::record::PastRecord;

/// The last good run, for stable ids and drift.
pub(crate) struct Previous {
    pub run_id: String,
    /// Stage name -> artifact folder.
    pub artifacts: BTreeMap<String, PathBuf>,
    pub rows: Option<crate::record::Rows>,
}

/// The last good run of the pipeline for an earlier as-of date, for stable ids, drift
/// and the volume gates: of the newest few, the first that finished every stage of
/// `plan` (a run that stopped early, `--until`, has no personas to keep ids from).
pub(crate) fn previous_run(ledger: &Ledger, plan: &Plan, as_of: &str) -> Result<Option<Previous>> {
    let mut chosen = None;
    for row in ledger.last_ok_runs(&plan.name, as_of, 20)? {
        let stages: BTreeMap<String, PathBuf> = (ledger.stages(&row.run_id)?.into_iter())
            .filter(|s| s.status.finished())
            .map(|s| (s.stage, PathBuf::from(s.artifact_dir)))
            .collect();
        let whole = plan.stages.iter().all(|s| stages.contains_key(&s.name));
        if whole || chosen.is_none() {
            chosen = Some((row, stages));
        }
        if whole {
            break;
        }
    }
    let Some((row, artifacts)) = chosen else {
        return Ok(None);
    };
    Ok(Some(Previous {
        artifacts,
        rows: std::fs::read(Path::new(&row.run_dir).join("run.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<PastRecord>(&bytes).ok())
            .map(|record| record.rows),
        run_id: row.run_id,
    }))
}
