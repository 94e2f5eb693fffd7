//! What a run holds in memory between stages: tables read back for the stage that
//! needs them, the events lent to their last reader, and tables let go or left to
//! wait on disk once no later stage reads them.

use userlens_ingest::Events;

use super::Run;
use crate::stage::StageError;
use crate::waiting;

impl Run<'_, '_> {
    /// Reads into memory the tables that the stages the stage at `index` needs wrote
    /// straight to their artifact folders ([`crate::Tables::insert_written`]) or left
    /// waiting there ([`Run::let_wait`]).
    /// Only the columns that the stage and those after it read are kept; a table the
    /// stage reads nothing of goes on waiting.
    pub(super) fn read_written(&mut self, index: usize) -> std::result::Result<(), StageError> {
        let stage = &self.plan.stages[index];
        for &from in &stage.needs {
            let tables = &mut self.outputs[from];
            for (name, written) in std::mem::take(&mut tables.written) {
                if reads_nothing_of(stage, &name) {
                    tables.written.insert(name, written);
                    continue;
                }
                let read = self.plan.table_columns_after(from, index - 1, &name);
                let df = waiting::read_back(written, read.as_ref())?;
                tables.frames.insert(name, df);
            }
        }
        Ok(())
    }

    /// Events in memory that only the stage at `index` still reads, moved out of the
    /// run's tables so that the stage frees them once it has read them; none for a
    /// stage that may be retried, which needs them again.
    pub(super) fn lend_events(&mut self, index: usize) -> Option<Events> {
        let stage = &self.plan.stages[index];
        if stage.retries > 0 {
            return None;
        }
        let from = *stage.needs.iter().find(|&&from| {
            self.outputs
                .get(from)
                .is_some_and(|tables| tables.events.is_some())
        })?;
        let tables = &mut self.outputs[from];
        let last = self
            .plan
            .event_columns_after(from, index)
            .is_some_and(|read| read.is_empty());
        match tables.events {
            Some(Events::Memory(_)) if last => tables.events.take(),
            _ => None,
        }
    }

    /// Frees the columns of in-memory events that no stage after `done` reads, the
    /// events no stage after it needs, the tables made for stages that asked
    /// ([`crate::Stage::ASKED`]) once all of them have run, and every table of a
    /// stage no stage after `done` needs (but the one the run's record summarises).
    pub(super) fn free_unread(&mut self, done: usize) {
        for (from, tables) in self.outputs.iter_mut().enumerate() {
            if !self.plan.needed_after(from, done) {
                tables
                    .frames
                    .retain(|name, _| name == crate::record::SUMMARISED);
                tables.written.clear();
            }
            let asked_later = self.plan.stages[done + 1..]
                .iter()
                .any(|stage| stage.asked.contains(&from));
            if !asked_later {
                for name in self.plan.stages[from].stage.asked_tables() {
                    tables.frames.remove(*name);
                }
            }
            if self.plan.needed_after(from, done) {
                let plan = self.plan;
                tables.frames.retain(|name, df| {
                    // The run's record reads its own columns of the one it summarises.
                    if name == crate::record::SUMMARISED {
                        return true;
                    }
                    let Some(read) = plan.table_columns_after(from, done, name) else {
                        return true;
                    };
                    waiting::keep_columns(df, &read);
                    !read.is_empty()
                });
            }
            if !matches!(tables.events, Some(Events::Memory(_))) {
                continue;
            }
            match self.plan.event_columns_after(from, done) {
                None => {}
                Some(read) if read.is_empty() => tables.events = None,
                Some(read) => {
                    if let Some(events) = &mut tables.events {
                        events.retain_columns(|name| read.contains(name));
                    }
                }
            }
        }
        self.let_wait(done);
        if let Some(release) = self.options.release_memory {
            release();
        }
    }

    /// Tables needed later but not read by the stage after `done` wait on disk, to
    /// be read back from their artifacts before the stage that reads them. Columns
    /// that a table the next stage reads holds too stay in memory, where they cost
    /// nothing more: read back, they would be a second copy.
    pub(super) fn let_wait(&mut self, done: usize) {
        let Some(next) = self.plan.stages.get(done + 1) else {
            return;
        };
        let read_next =
            |from: usize, name: &str| next.needs.contains(&from) && !reads_nothing_of(next, name);
        let staying = waiting::memory_of_tables(next.needs.iter().flat_map(|&from| {
            (self.outputs[from].frames.iter())
                .filter(move |(name, _)| read_next(from, name))
                .map(|(_, df)| df)
        }));
        for (from, tables) in self.outputs.iter_mut().enumerate() {
            let Some(Some(dir)) = self.saved_in.get(from) else {
                continue;
            };
            let waiting: Vec<String> = tables
                .frames
                .keys()
                .filter(|name| *name != crate::record::SUMMARISED && !read_next(from, name))
                .cloned()
                .collect();
            for name in waiting {
                if let Some(df) = tables.frames.remove(&name) {
                    let path = dir.join(format!("{name}.parquet"));
                    let written = waiting::wait(&name, df, path, &staying);
                    tables.written.insert(name, written);
                }
            }
        }
    }
}

/// Whether `stage` reads no column of the table `name` of the stages it needs.
fn reads_nothing_of(stage: &crate::plan::PlannedStage, name: &str) -> bool {
    stage
        .stage
        .table_columns(name)
        .is_some_and(|read| read.is_empty())
}
