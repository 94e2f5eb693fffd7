//! `userlens backfill`: a pipeline run for each as-of date in a range.

use std::io::Write;

use crate::Failure;
use crate::cli::{BackfillArgs, Cli, RunArgs};
use crate::progress::LogFormat;

/// Runs the pipeline for each date in order, skipping a date done already as it
/// would be done now (same input, parameters and output folder) unless `--force`.
pub fn run(cli: &Cli, args: &BackfillArgs) -> Result<(), Failure> {
    crate::signals::in_backfill();
    let BackfillArgs {
        pipeline,
        from,
        to,
        out,
        runs,
        force,
        force_output,
        set,
        engine,
    } = args;
    if from > to {
        return Err(Failure::usage(anyhow::anyhow!(
            "`--from` {from} is after `--to` {to}"
        )));
    }
    let plan = userlens_pipeline::load(pipeline, &super::overrides(set)?)?;
    for date in from.iter_days().take_while(|d| d <= to) {
        // A signal during the last date's publish: that date stands, none follows.
        if let Some(signal) = userlens_pipeline::stop_requested() {
            return Err(userlens_pipeline::Error::Stopped { signal }.into());
        }
        let args = RunArgs {
            as_of: Some(date),
            out: out.clone(),
            runs: runs.clone(),
            set: Vec::new(),
            force: *force,
            force_output: *force_output,
            resume: None,
            dry_run: false,
            only: None,
            until: None,
            engine: engine.clone(),
        };
        let options = super::run::options(&args);
        if !force && let Some(done) = userlens_pipeline::done_as_asked(&plan, &options)? {
            let mut out = std::io::stdout();
            if cli.log_format == LogFormat::Json {
                let line = serde_json::json!({"as_of": date.to_string(), "status": "skipped", "done_by": done});
                writeln!(out, "{line}")?;
            } else {
                writeln!(out, "{date}: done already (run {done}), skipped")?;
            }
        } else {
            super::run::run_plan(cli, &plan, &args)?;
        }
    }
    Ok(())
}
