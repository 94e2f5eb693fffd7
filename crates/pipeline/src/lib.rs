//! Pipeline: declarative pipeline files -> validated plans -> runs.
//!
//! A pipeline file names stages; each stage `uses` a stage kind (`ingest`,
//! `features`, `profile`, `predict`, `recommend`, `loyalty`, `report`), `needs` earlier
//! stages and is configured `with` parameters. Every kind implements the [`Stage`]
//! trait in a file of its own under `stages/` (its name, parameters and their check,
//! the tables it needs and provides, and `run`), and the [`Registry`] lists them: the
//! planner and the runner hold no stage logic.
//!
//! [`load`] parses the file in two passes — serde structs with
//! `deny_unknown_fields`, then a [`Plan`] with names resolved, parameters checked
//! and stages ordered — so a bad file fails in milliseconds with its line and
//! column. [`run`] executes the plan under a lock, writes each stage's tables as
//! Parquet artifacts under `<runs>/<pipeline>/<run-id>/` (verified by their hash
//! before reuse), records it in the [`Ledger`], and publishes the outputs into the
//! output folder as a whole, with `run.json`.
//!
//! A run's [`Engine`] (`[pipeline] engine`, or [`RunOptions::engine`]) is `local`
//! or a Ballista cluster, `ballista://host:port`: on a cluster the ingest writes its
//! events as Parquet parts (under the pipeline's `shared_dir` when it has one), the
//! features and predict stages send each part's work to the cluster and the personas
//! stage its k-means E-steps. The cluster is known here only as the [`Cluster`]
//! trait (the binary registers how to open one, see [`engine`]). Outputs are the
//! same on either.
//!
//! ```no_run
//! use userlens_pipeline::{load, run, RunOptions};
//! let plan = load("pipelines/profile.toml".as_ref(), &[]).unwrap();
//! let summary = run(&plan, &RunOptions::default(), &mut |_| {}).unwrap();
//! println!("{} personas", summary.personas.len());
//! ```

mod artifacts;
pub mod drift;
pub mod engine;
mod error;
mod execute;
mod file;
mod interrupt;
mod keys;
pub mod ledger;
mod lock;
mod plan;
mod previous;
mod progress;
mod publish;
mod record;
mod registry;
mod resume;
mod runner;
mod stage;
pub mod stages;
mod waiting;

pub use engine::{Cluster, Connect, Engine};
pub use error::{Error, ErrorClass, FileError, Result};
pub use interrupt::{Stopped, abandon, abandoned, stop_requested};
pub use keys::{DryRun, PlannedRun, done_as_asked, dry_run};
pub use ledger::{Ledger, RunRow, StageRow};
pub use lock::PipelineLock;
pub use plan::{
    Gates, MAX_RETRIES, MAX_RETRY_DELAY, MAX_SET_DEPTH, MAX_STAGES, Override, Plan, PlannedStage,
    load, load_str, load_str_with,
};
pub use progress::Progress;
pub use publish::{MARKER, refused_dir};
pub use record::{
    PersonaSummary, Rows, RunRecord, RunStatus, RunSummary, StageMeta, StageRecord, StageStatus,
};
pub use runner::{RunOptions, run};
pub use stage::{
    CheckedStage, Declared, Inputs, Invalid, Output, Registry, Stage, StageContext, StageError,
    Tables, Written,
};

/// Re-renders `report.html` in a finished run's output folder; returns its path.
/// A folder userlens did not publish is refused: its `report.html` is not ours.
pub fn render_report(output_dir: &std::path::Path) -> Result<std::path::PathBuf> {
    // A run publishing the folder anew waits, and is waited for.
    let _publishing = publish::ParentLock::take(output_dir);
    // A publish that waited for the lock no longer (a report stopped for a minute)
    // may have replaced the folder while it was checked and its page made: both are
    // done again on the tables it now holds.
    for _ in 0..3 {
        let made_from = publish::published_by(output_dir);
        let rendered = render_once(output_dir);
        if publish::published_by(output_dir) == made_from {
            let page = rendered?;
            publish::list_in_marker(output_dir, userlens_report::files::REPORT_HTML)?;
            return Ok(page);
        }
    }
    Err(Error::Usage(format!(
        "`{}` was published anew while its page was made, three times: run `report` again \
         once the runs into it are done",
        output_dir.display()
    )))
}

/// [`render_report`]'s checks and page, once.
fn render_once(output_dir: &std::path::Path) -> Result<std::path::PathBuf> {
    // Files the publish did not write may be anyone's, the page among them.
    let Some(foreign) = publish::not_published(output_dir)? else {
        let why = if output_dir.join(MARKER).exists() {
            format!(
                "its `{MARKER}` lists nothing a run published there (an older version's, or not userlens's)"
            )
        } else {
            format!("no `{MARKER}` marker")
        };
        return Err(Error::Usage(format!(
            "`{}` is not a run's output folder ({why}): `report` renders only a folder a \
             run published",
            output_dir.display()
        )));
    };
    if let Some(first) = foreign.first() {
        return Err(Error::Usage(format!(
            "`{}` holds `{first}`, which the run's publish there did not write: `report` \
             renders only what a run published; move it out",
            output_dir.display()
        )));
    }
    let page = userlens_report::files::REPORT_HTML;
    if let Some(changed) = publish::changed_since_published(output_dir, page)? {
        return Err(Error::Usage(format!(
            "`{}` is not as the run published it: {changed}; `report` renders only what a \
             run wrote, so run the pipeline again",
            output_dir.display()
        )));
    }
    let status = record::PastRecord::read(output_dir).map(|r| r.status);
    if let Some(status) = status.filter(|s| s != RunStatus::Ok.as_str()) {
        return Err(Error::Usage(format!(
            "`{}` holds the record of a {status} run, not a report: `report` renders a \
             folder a finished run published",
            output_dir.display()
        )));
    }
    let personas = output_dir.join(userlens_report::files::PERSONAS);
    if !personas.is_file() {
        return Err(Error::Usage(format!(
            "`{}` holds no `{}`: the page is made from a run whose pipeline made personas \
             (a personas stage and a report stage)",
            output_dir.display(),
            userlens_report::files::PERSONAS
        )));
    }
    Ok(userlens_report::render_run_dir(output_dir)?)
}

/// The built-in profile pipeline behind `userlens profile EVENTS_FILE`: the
/// canonical columns in, personas out. Its ingest path is set by the caller.
pub const BUILTIN_PROFILE: &str = include_str!("builtin_profile.toml");

#[cfg(test)]
mod tests;
