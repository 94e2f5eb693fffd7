//! Resuming a run: it continues with what it was started with.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ledger::{Ledger, RunRow};
use crate::plan::{Override, Plan};
use crate::runner::RunOptions;

/// What a run was started with beyond the pipeline file, stored in the ledger so
/// that `--resume` continues it exactly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Invocation {
    set: Vec<String>,
    output: Option<PathBuf>,
    as_of: Option<NaiveDate>,
}

impl Invocation {
    /// What `plan` and `options` start a run with.
    pub fn of(plan: &Plan, options: &RunOptions) -> Invocation {
        Invocation {
            set: plan.overrides.iter().map(|o| o.text.clone()).collect(),
            output: options.output.clone(),
            as_of: options.as_of,
        }
    }
}

/// The run `id` of `plan`'s pipeline in the ledger, if it can be resumed.
pub(crate) fn find(ledger: &Ledger, root: &Path, plan: &Plan, id: &str) -> Result<RunRow> {
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
    Ok(row)
}

/// The plan and options a resumed run continues with: those it was started with.
pub(crate) fn resumed(
    plan: &Plan,
    options: &RunOptions,
    row: &RunRow,
) -> Result<(Plan, RunOptions)> {
    let stored: Invocation = match &row.invocation {
        Some(text) => serde_json::from_str(text).map_err(|e| {
            Error::Resume(format!(
                "run `{}` has an unreadable invocation: {e}",
                row.run_id
            ))
        })?,
        None => Invocation::default(),
    };
    let given = Invocation::of(plan, options);
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
