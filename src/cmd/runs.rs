//! `userlens runs list` and `userlens runs show`: the ledger of recorded runs.

use std::io::Write;
use std::path::Path;

use userlens_pipeline::Ledger;

use crate::Failure;
use crate::cli::RunsCommand;

/// Prints the runs, or one run and its stages, from the ledger under `runs`.
/// The ledger is only read: these work on a read-only runs folder.
pub fn run(command: &RunsCommand, runs: &Path) -> Result<(), Failure> {
    let file = runs.join("ledger.sqlite");
    let not = |what: &str| Failure::usage(anyhow::anyhow!("`{}` is {what}", runs.display()));
    if runs.exists() && !runs.is_dir() {
        return Err(not("not a runs folder (it is a file)"));
    }
    // A mistyped `--runs` lists nothing; it says so.
    if !runs.exists() {
        say!(
            "no runs folder `{}`: no run is recorded there",
            runs.display()
        );
    }
    // No ledger yet, or one made but not yet written: no runs recorded.
    let ledger = match std::fs::metadata(&file) {
        Err(_) => None,
        Ok(meta) if !meta.is_file() => {
            return Err(Failure::usage(anyhow::anyhow!(
                "`{}` is not a ledger (it is not a file)",
                file.display()
            )));
        }
        Ok(meta) if meta.len() == 0 => None,
        Ok(_) => Some(Ledger::open_existing(runs)?).filter(|l| l.has_tables().unwrap_or(true)),
    };
    match command {
        RunsCommand::List { pipeline } => list(ledger.as_ref(), pipeline.as_deref()),
        RunsCommand::Show { run_id } => show(ledger.as_ref(), runs, run_id),
    }
}

fn list(ledger: Option<&Ledger>, pipeline: Option<&str>) -> Result<(), Failure> {
    let runs = match ledger {
        Some(ledger) => ledger.runs(pipeline)?,
        None => Vec::new(),
    };
    // Each column as wide as its widest value, so that the columns line up.
    let width = |header: &str, value: fn(&userlens_pipeline::RunRow) -> &str| {
        runs.iter()
            .map(|r| value(r).chars().count())
            .fold(header.len(), usize::max)
    };
    let (w_run, w_pipeline) = (
        width("run", |r| &r.run_id),
        width("pipeline", |r| &r.pipeline),
    );
    let statuses: Vec<String> = runs.iter().map(|r| r.shown_status().to_string()).collect();
    let w_status = statuses
        .iter()
        .map(|s| s.chars().count())
        .fold("status".len(), usize::max);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<w_run$} {:<w_pipeline$} {:<10} {:<w_status$} started",
        "run", "pipeline", "as of", "status"
    )?;
    for (run, status) in runs.iter().zip(&statuses) {
        writeln!(
            out,
            "{:<w_run$} {:<w_pipeline$} {:<10} {status:<w_status$} {}",
            run.run_id, run.pipeline, run.as_of, run.started_at
        )?;
    }
    Ok(())
}

fn show(ledger: Option<&Ledger>, runs: &Path, run_id: &str) -> Result<(), Failure> {
    let found = match ledger {
        Some(ledger) => ledger.run(run_id)?,
        None => None,
    };
    let (Some(ledger), Some(run)) = (ledger, found) else {
        return Err(Failure::usage(anyhow::anyhow!(
            "no run `{run_id}` in the ledger under `{}`",
            runs.display()
        )));
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "run {} of `{}`, as of {}: {}",
        run.run_id,
        run.pipeline,
        run.as_of,
        run.shown_status()
    )?;
    writeln!(
        out,
        "started {}, finished {}",
        run.started_at,
        run.finished_at.as_deref().unwrap_or("-")
    )?;
    writeln!(out, "folder {}", run.run_dir)?;
    if let Some(error) = &run.error {
        writeln!(out, "error: {}", userlens_report::escape_hidden(error))?;
    }
    for stage in ledger.stages(run_id)? {
        // Where its per-part work ran, when not in this process.
        let engine = match stage.engine.as_str() {
            "local" => String::new(),
            cluster => format!("  on {cluster}"),
        };
        writeln!(
            out,
            "  {}. {:<12} {:<8} {:>8.2}s  {} rows in, {} out, {} attempt(s)  {}{engine}",
            stage.position + 1,
            stage.stage,
            stage.status.as_str(),
            stage.seconds,
            stage.rows_in,
            stage.rows_out,
            stage.attempts,
            stage.artifact_dir
        )?;
        let shown = |text: &str| {
            if text.is_empty() {
                "-".to_string()
            } else {
                text.to_string()
            }
        };
        writeln!(
            out,
            "     cache key {}, content {}",
            shown(&stage.cache_key),
            shown(&stage.content_hash)
        )?;
        if let Some(error) = &stage.error {
            writeln!(out, "     error: {}", userlens_report::escape_hidden(error))?;
        }
    }
    Ok(())
}
