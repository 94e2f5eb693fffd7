//! A read that goes on out of core: the rows kept so far, and every row after, go to
//! disk split by user ([`crate::spill`]).

use std::path::Path;

use polars::prelude::*;
use userlens_model::columns;

use super::{Keep, Sink, TextSize};
use crate::error::{self, Error, Result};
use crate::spill;

impl<'a> Sink<'a> {
    /// Goes on out of core once `read` bytes of text pass the budget of a
    /// [`Keep::MemoryUpTo`] (the plan is kept in `switched`).
    pub(super) fn spill_past_budget(
        &mut self,
        keep: Keep<'_>,
        read: u64,
        size: &TextSize,
        switched: &'a std::cell::OnceCell<spill::Plan>,
    ) -> Result<()> {
        if let Keep::MemoryUpTo {
            budget,
            partition_budget,
            parts,
        } = keep
            && read > budget
            && self.spill.is_none()
        {
            let held = self.kept.times.len();
            let plan = plan_after(parts, size, budget, partition_budget, held)?;
            self.spill_from_now(switched.get_or_init(|| plan))?;
        }
        Ok(())
    }

    /// Goes on out of core, as `plan` says, from the rows held so far on.
    fn spill_from_now(&mut self, plan: &'a spill::Plan) -> Result<()> {
        let rows = self.take_events(self.capacity)?;
        let mut writer = spill::Writer::new(plan, 0);
        if rows.height() > 0 {
            let users = rows
                .column(columns::USER_ID)
                .and_then(Column::str)
                .map_err(error::polars("split rows by user"))?;
            let partitions: Vec<u32> = users
                .iter()
                .map(|user| plan.partition_of(user.unwrap_or_default()))
                .collect();
            writer.write(&rows, &partitions)?;
        }
        self.partitions.clear();
        self.spill = Some(writer);
        Ok(())
    }

    pub(super) fn spill_rows(&mut self) -> Result<()> {
        let rows = self.take_events(self.capacity)?;
        let partitions = std::mem::take(&mut self.partitions);
        match self.spill.as_mut() {
            Some(spill) if rows.height() > 0 => spill.write(&rows, &partitions),
            _ => Ok(()),
        }
    }
}

/// The plan of a read that passed its `budget` of text with `held` rows in memory:
/// a partition per `partition_budget` bytes of the text's size estimated so far, and
/// chunks of as many rows as fit the budget. Empties `parts` for the spill.
fn plan_after(
    parts: &Path,
    size: &TextSize,
    budget: u64,
    partition_budget: u64,
    held: usize,
) -> Result<spill::Plan> {
    let io = |source| Error::Write {
        path: parts.to_path_buf(),
        source,
    };
    let estimated = size.estimate();
    let plan = spill::Plan {
        dir: parts.join("spill"),
        partitions: spill::partitions_for(estimated, partition_budget),
        // At least a few MB a chunk: each chunk is a file per partition it reaches.
        chunk_rows: held.clamp(spill::MIN_CHUNK_ROWS, spill::CHUNK_ROWS),
    };
    if parts.exists() {
        std::fs::remove_dir_all(parts).map_err(io)?;
    }
    std::fs::create_dir_all(&plan.dir).map_err(io)?;
    tracing::info!(
        "ingest: over the {budget}-byte budget, out of core from here ({estimated} bytes estimated, {} partitions)",
        plan.partitions
    );
    Ok(plan)
}
