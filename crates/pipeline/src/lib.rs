//! Pipeline: declarative pipeline files -> validated plans -> runs.
//!
//! A pipeline file names stages; each stage `uses` a stage kind (`ingest`,
//! `features`, `profile`, `report`), `needs` earlier stages and is configured
//! `with` parameters. [`load`] parses the file in two passes — serde structs with
//! `deny_unknown_fields`, then a [`Plan`] with names resolved, parameters checked
//! and stages ordered — so a bad file fails in milliseconds with its line and
//! column. [`run`] executes the plan, writes each stage's tables as Parquet
//! artifacts under `<runs>/<pipeline>/<run-id>/`, the public outputs into the output
//! folder, and `run.json` into both.
//!
//! ```no_run
//! use userlens_pipeline::{load, run, RunOptions};
//! let plan = load("pipelines/profile.toml".as_ref(), &[]).unwrap();
//! let summary = run(&plan, &RunOptions::default(), &mut |_| {}).unwrap();
//! println!("{} personas", summary.personas.len());
//! ```

pub mod drift;
mod error;
mod file;
pub mod ledger;
mod lock;
mod plan;
mod run;

pub use error::{Error, ErrorClass, FileError, Result};
pub use ledger::{Ledger, RunRow, StageRow};
pub use lock::PipelineLock;
pub use plan::{
    Gates, Override, Plan, PlannedStage, ReportParams, STAGE_KINDS, StageKind, load, load_str,
};
pub use run::{
    PersonaSummary, PlannedRun, Progress, Rows, RunOptions, RunRecord, RunSummary, StageRecord,
    dry_run, run,
};

/// Re-renders `report.html` in a finished run's output folder; returns its path.
pub fn render_report(output_dir: &std::path::Path) -> Result<std::path::PathBuf> {
    Ok(userlens_report::render_run_dir(output_dir)?)
}

/// The built-in profile pipeline behind `userlens profile EVENTS_FILE`: the
/// canonical columns in, personas out. Its ingest path is set by the caller.
pub const BUILTIN_PROFILE: &str = include_str!("builtin_profile.toml");

/// The closest candidate by edit distance, if it is close enough to be a typo.
pub(crate) fn did_you_mean<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(name, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests;
