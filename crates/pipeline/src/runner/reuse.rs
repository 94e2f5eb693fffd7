//! Reusing a finished stage's artifacts: this run's own (resumed) or another's.

use std::path::PathBuf;

use super::*;

impl Run<'_, '_> {
    /// The stage's finished artifacts with the same key, verified, if there are any:
    /// this run's own (resumed), else any run's while every stage before was reused.
    pub(super) fn reuse(&mut self, index: usize) -> Option<(Output, PathBuf, StageRow)> {
        let stage = &self.plan.stages[index];
        let key = &self.keys[index];
        if self.only == Some(index) {
            return None;
        }
        let own = self.finished_here.get(&stage.name);
        // A resume by another version of userlens, or of changed inputs, publishes
        // what it makes now, not what the run would have.
        if own.is_some_and(|row| row.cache_key != *key) {
            let message = format!(
                "stage `{}` finished before the run stopped, with other code or inputs \
                 (another version of userlens?): it runs again",
                stage.name
            );
            (self.progress)(&Progress::Warning { message });
        }
        let row = match own {
            Some(row) if row.cache_key == *key => row.clone(),
            _ if self.options.force || !self.upstream_reused => return None,
            _ => self.ledger.finished_stage(key).ok().flatten()?,
        };
        let dir = PathBuf::from(&row.artifact_dir);
        let unreadable = (self.cluster.is_some())
            .then(|| artifacts::unreadable_on_cluster(&dir, self.plan.shared_dir.as_deref()))
            .flatten();
        let loaded = match unreadable {
            Some(why) => Err(why),
            None => artifacts::load(&dir, &row.content_hash, stage, &self.staging),
        };
        match loaded {
            Ok((tables, meta)) => {
                let name = stage.name.clone();
                Some((Output { tables, meta }, self.adopt(&name, dir), row))
            }
            Err(why) => {
                let message = format!("stage `{}` runs again: {why}", stage.name);
                (self.progress)(&Progress::Warning { message });
                None
            }
        }
    }

    /// The folder to record for a verified artifact folder `dir` of `stage`: linked
    /// into this run's folder when the run whose folder holds it did not end `ok`
    /// (the first folder an operator clears), else `dir`.
    fn adopt(&mut self, stage: &str, dir: PathBuf) -> PathBuf {
        // `<runs>/<pipeline>/<run id>/<stage>`.
        let holder = (dir.parent().and_then(|run| run.file_name()))
            .and_then(|id| id.to_str())
            .filter(|id| *id != self.run_id)
            .and_then(|id| self.ledger.run(id).ok().flatten());
        let settled = holder.map(|run| crate::resume::settled_status(self.plan, &run));
        if !settled.is_some_and(|status| status != RunStatus::Ok) {
            return dir;
        }
        let own = self.run_dir.join(stage);
        let linked = publish::remove_own(&own).and_then(|()| artifacts::link_folder(&dir, &own));
        match linked {
            Ok(()) => own,
            Err(e) => {
                let _ = publish::remove_own(&own);
                let message = format!(
                    "stage `{stage}`: its artifacts stay in `{}`, the folder of a run that \
                     did not end ok, as they could not be linked here ({})",
                    dir.display(),
                    error_chain(&e)
                );
                (self.progress)(&Progress::Warning { message });
                dir
            }
        }
    }
}
