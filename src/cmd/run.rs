//! `userlens run`: runs a pipeline file and prints its summary.

use std::io::Write;
use std::path::Path;

use userlens_pipeline::{Plan, RunOptions, RunStatus, RunSummary, StageStatus};

use crate::Failure;
use crate::cli::{Cli, RunArgs};
use crate::progress::{LogFormat, Renderer, thousands};

/// Loads the pipeline file and runs it.
pub fn run(cli: &Cli, pipeline: &Path, args: &RunArgs) -> Result<(), Failure> {
    let plan = userlens_pipeline::load(pipeline, &super::overrides(&args.set)?)?;
    run_plan(cli, &plan, args)
}

/// The runner's options of a `run`'s arguments.
pub fn options(args: &RunArgs) -> RunOptions {
    RunOptions {
        as_of: args.as_of,
        output: args.out.clone(),
        runs: args.runs.clone(),
        force: args.force,
        force_output: args.force_output,
        resume: args.resume.clone(),
        only: args.only.clone(),
        until: args.until.clone(),
        engine: args.engine.clone(),
        // The binary's own, registered at start when built with `--features cluster`.
        connect: None,
        release_memory: Some(crate::allocator::release_freed),
    }
}

/// Runs a plan (or, with `--dry-run`, prints what it would do) and prints the result.
pub fn run_plan(cli: &Cli, plan: &Plan, args: &RunArgs) -> Result<(), Failure> {
    let options = options(args);
    if args.dry_run {
        return print_dry_run(plan, &options, cli.log_format, cli.quiet);
    }
    let mut renderer = Renderer::new(cli.log_format, cli.quiet);
    let result = userlens_pipeline::run(plan, &options, &mut |event| renderer.handle(event));
    renderer.finish();
    let summary = result?;

    if cli.log_format == LogFormat::Json {
        let line = serde_json::to_string(&summary.record)?;
        writeln!(std::io::stdout(), "{line}")?;
    } else {
        print_summary(&summary)?;
    }
    Ok(())
}

fn print_dry_run(
    plan: &Plan,
    options: &RunOptions,
    format: LogFormat,
    quiet: bool,
) -> Result<(), Failure> {
    let userlens_pipeline::DryRun { stages, warnings } = userlens_pipeline::dry_run(plan, options)?;
    let engine = options.engine_of(plan)?;
    let mut out = std::io::stdout().lock();
    if format == LogFormat::Json {
        let plan = serde_json::json!({
            "dry_run": true,
            "pipeline": plan.name,
            "engine": engine.url(),
            "stages": stages,
            "warnings": warnings,
        });
        writeln!(out, "{}", serde_json::to_string(&plan)?)?;
        return Ok(());
    }
    // As the run would give them: on stderr, but not under `--quiet`.
    let mut renderer = Renderer::new(format, quiet);
    for message in warnings {
        renderer.handle(&userlens_pipeline::Progress::Warning { message });
    }
    renderer.finish();
    writeln!(
        out,
        "dry run of `{}` on {engine} (nothing is read or written):",
        plan.name
    )?;
    for (i, stage) in stages.iter().enumerate() {
        let action = match &stage.reuse {
            Some(run) => format!("skip (unchanged since run {run})"),
            None => "run".to_string(),
        };
        writeln!(
            out,
            "  {}. {} ({}): {action}",
            i + 1,
            stage.name,
            stage.uses
        )?;
    }
    Ok(())
}

fn print_summary(summary: &RunSummary) -> anyhow::Result<()> {
    let record = &summary.record;
    let rows = &record.rows;
    let mut out = std::io::stdout().lock();
    if record.status == RunStatus::Partial
        && let Some(stage) = record.stages.last()
    {
        writeln!(
            out,
            "{} run {}: ran only `{}` ({:.2} s, {} rows out); nothing published",
            record.pipeline,
            record.run_id,
            stage.name,
            stage.seconds,
            thousands(stage.rows_out)
        )?;
        writeln!(out, "run folder: {}", summary.run_dir.display())?;
        return Ok(());
    }
    // No personas when the run stopped before a profile stage (`--until`).
    let personas = match summary.personas.len() {
        0 => String::new(),
        1 => " in 1 persona".to_string(),
        n => format!(" in {n} personas"),
    };
    writeln!(
        out,
        "{} run {}: {} user{}{personas}, as of {}",
        record.pipeline,
        record.run_id,
        thousands(rows.users),
        if rows.users == 1 { "" } else { "s" },
        record.as_of.as_deref().unwrap_or("-"),
    )?;
    writeln!(
        out,
        "rows: {} read, {} kept, {} quarantined, {} duplicates",
        thousands(rows.read),
        thousands(rows.kept),
        thousands(rows.quarantined),
        thousands(rows.duplicates)
    )?;
    if record.engine != "local" {
        let sent = record.stages.iter().filter(|s| s.engine == record.engine);
        writeln!(
            out,
            "engine: {} (the per-part work of {} stages went there)",
            record.engine,
            sent.count()
        )?;
    }
    if !summary.personas.is_empty() {
        writeln!(out)?;
        writeln!(out, "  id    users  share  label")?;
        for p in &summary.personas {
            writeln!(
                out,
                "  {:>2} {:>8} {:>5.1}%  {}",
                p.persona_id,
                thousands(p.users),
                p.share * 100.0,
                p.label
            )?;
        }
        writeln!(out)?;
    }
    if let Some(stability) = &record.stability {
        writeln!(
            out,
            "persona ids kept from run {}: {} matched, new {}{}, retired {}, adjusted Rand index {}",
            stability["against_run"].as_str().unwrap_or("-"),
            stability["matched"],
            stability["new_personas"],
            // Earlier runs' ids taken back, when there are any.
            match &stability["revived_personas"] {
                serde_json::Value::Array(ids) if !ids.is_empty() => {
                    format!(", taken back {}", stability["revived_personas"])
                }
                _ => String::new(),
            },
            stability["retired_personas"],
            stability["adjusted_rand_index"]
                .as_f64()
                .map_or_else(|| "-".to_string(), |v| format!("{v:.3}"))
        )?;
    }
    if let Some(drift) = &record.drift {
        writeln!(
            out,
            "drift against run {}: {} warnings, {} alerts, volume ratio {}",
            drift["against_run"].as_str().unwrap_or("-"),
            drift["warnings"],
            drift["alerts"],
            drift["volume_ratio"]
                .as_f64()
                .map_or_else(|| "-".to_string(), |v| format!("{v:.2}"))
        )?;
    }
    let skipped = record
        .stages
        .iter()
        .filter(|s| s.status == StageStatus::Skipped)
        .count();
    if skipped > 0 {
        writeln!(
            out,
            "{skipped} of {} stages unchanged and skipped (--force reruns them)",
            record.stages.len()
        )?;
    }
    writeln!(out, "outputs in {}:", summary.output_dir.display())?;
    for file in &record.outputs {
        writeln!(out, "  {}", summary.output_dir.join(file).display())?;
    }
    writeln!(out, "run folder: {}", summary.run_dir.display())?;
    if record.outputs.iter().any(|f| f == "report.html") {
        writeln!(
            out,
            "report: {}",
            summary.output_dir.join("report.html").display()
        )?;
    }
    Ok(())
}
