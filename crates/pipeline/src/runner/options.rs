//! The options of one run that are not the pipeline file's, and the check of the
//! runs folder a run is given.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::engine::{Connect, Engine};
use crate::error::{Error, Result};
use crate::plan::Plan;

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
    /// Run just this stage and the stages it needs, directly or not, and publish
    /// their outputs: the pipeline as if it ended there.
    pub until: Option<String>,
    /// Where the per-part work runs, instead of the pipeline's `engine`: `local` or
    /// `ballista://host:port`.
    pub engine: Option<String>,
    /// How to open a cluster engine, instead of the one the binary registered
    /// ([`crate::engine::register`]): for tests and programs that embed the pipeline.
    pub connect: Option<Connect>,
    /// Called when a stage returns and again once what no later stage needs is let
    /// go: the binary hands the memory freed back to the system there, so that the
    /// next peak does not stand on what was freed just before.
    pub release_memory: Option<fn()>,
}

impl RunOptions {
    /// The plan the run follows: `plan`, or with `until` the part of it that stage
    /// needs.
    pub fn plan_of(&self, plan: &Plan) -> Result<Plan> {
        match &self.until {
            Some(stage) => plan.until(stage),
            None => Ok(plan.clone()),
        }
    }

    /// The engine the run uses: `--engine`, else the pipeline's.
    pub fn engine_of(&self, plan: &Plan) -> Result<Engine> {
        match &self.engine {
            None => Ok(plan.engine.clone()),
            Some(text) => Engine::parse(text)
                .map_err(|why| Error::Usage(format!("`--engine {text}` is not an engine: {why}"))),
        }
    }
}

/// A usage error unless `root` is a folder or is not there yet.
pub(crate) fn check_runs_folder(root: &Path) -> Result<()> {
    match std::fs::metadata(root) {
        Ok(meta) if !meta.is_dir() => Err(Error::Usage(format!(
            "the runs folder `{}` is not a folder: give a folder, such as `--runs runs`",
            root.display()
        ))),
        _ => Ok(()),
    }
}
