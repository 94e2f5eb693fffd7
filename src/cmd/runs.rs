//! `userlens runs list` and `userlens runs show`: the ledger of recorded runs.

use std::io::Write;
use std::path::Path;

use userlens_pipeline::Ledger;

use crate::Failure;
use crate::cli::RunsCommand;

/// Prints the runs, or one run and its stages, from the ledger under `runs`.
pub fn run(command: &RunsCommand, runs: &Path) -> Result<(), Failure> {
    let ledger = Ledger::open(runs)?;
    match command {
        RunsCommand::List { pipeline } => list(&ledger, pipeline.as_deref()),
        RunsCommand::Show { run_id } => show(&ledger, runs, run_id),
    }
}

fn list(ledger: &Ledger, pipeline: Option<&str>) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<36} {:<12} {:<10} {:<8} started",
        "run", "pipeline", "as of", "status"
    )?;
    for run in ledger.runs(pipeline)? {
        writeln!(
            out,
            "{:<36} {:<12} {:<10} {:<8} {}",
            run.run_id,
            run.pipeline,
            run.as_of,
            run.status.as_str(),
            run.started_at
        )?;
    }
    Ok(())
}

fn show(ledger: &Ledger, runs: &Path, run_id: &str) -> Result<(), Failure> {
    let Some(run) = ledger.run(run_id)? else {
        return Err(Failure::usage(anyhow::anyhow!(
            "no run `{run_id}` in the ledger under `{}`",
            runs.display()
        )));
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "run {} of `{}`, as of {}: {}",
        run.run_id, run.pipeline, run.as_of, run.status
    )?;
    writeln!(
        out,
        "started {}, finished {}",
        run.started_at,
        run.finished_at.as_deref().unwrap_or("-")
    )?;
    writeln!(out, "folder {}", run.run_dir)?;
    if let Some(error) = &run.error {
        writeln!(out, "error: {error}")?;
    }
    for stage in ledger.stages(run_id)? {
        writeln!(
            out,
            "  {}. {:<12} {:<8} {:>8.2}s  {} rows in, {} out, {} attempt(s)  {}",
            stage.position + 1,
            stage.stage,
            stage.status.as_str(),
            stage.seconds,
            stage.rows_in,
            stage.rows_out,
            stage.attempts,
            stage.artifact_dir
        )?;
    }
    Ok(())
}
