//! The `userlens` command line: argument parsing, rendering and exit codes. The work
//! itself lives in the `userlens-pipeline` crate and the stage crates.

mod exit_codes;
mod progress;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};
use userlens_pipeline::{Override, Plan, RunOptions, RunSummary};

use progress::{LogFormat, Renderer, thousands};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in the `mi_option_e` enum of mimalloc 3 (libmimalloc-sys
/// 0.1.49, `c_src/mimalloc/v3/include/mimalloc.h`), which the crate does not name.
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// mimalloc 3's own purge delay, in milliseconds.
const MIMALLOC_PURGE_DELAY_MS: std::ffi::c_long = 1000;

/// Keeps the memory the run frees for its own reuse instead of returning it to the
/// OS (mimalloc's default is to purge after 1 s), unless `MIMALLOC_PURGE_DELAY` says
/// otherwise. The stages free and allocate gigabytes in turn, and fresh memory from
/// the OS is zeroed page by page on first touch: at 10M events that zeroing was a
/// fifth of the run's CPU time, and keeping freed memory halved it (see
/// docs/benchmarks.md). Out of core, where memory must stay bounded, see
/// [`return_freed_memory`].
fn keep_freed_memory() {
    set_purge_delay(-1);
}

/// Back to mimalloc's purge delay, for a run whose events are read out of core: its
/// ingest frees and allocates so much that, kept, the memory it freed took the 100M
/// events' ingest from 1.7 to 6.6 GiB.
fn return_freed_memory() {
    set_purge_delay(MIMALLOC_PURGE_DELAY_MS);
}

#[allow(unsafe_code)]
fn set_purge_delay(milliseconds: std::ffi::c_long) {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option of the allocator; mimalloc reads options
        // atomically, so it may be set at any time, from any thread.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, milliseconds) };
    }
}

const EXAMPLES: &str = "\
Examples:
  userlens profile sample_data/events.csv.gz
  userlens run pipelines/profile.toml --out out/profile
  userlens run pipelines/nightly.toml --as-of 2026-11-27 --set personas.k=6
  userlens validate pipelines/profile.toml
  userlens report out/profile
  userlens generate --users 1800 --seed 42 --out events.csv --truth truth.csv

Exit codes: 0 ok, 1 a stage failed, 2 bad command line or pipeline file,
3 input data refused (quality gate), 4 another run of the pipeline holds the lock.";

/// Batch user analytics: event logs in, features, personas and reports out.
#[derive(Debug, Parser)]
#[command(name = "userlens", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors and results.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Format of progress and logs on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Plain)]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline file.
    Run {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Profile a canonical event file with the built-in pipeline.
    Profile {
        /// Events with the canonical columns (user_id, event_time, event_type, ...).
        events: PathBuf,
        /// Users table to join (CSV or Parquet with user_id).
        #[arg(long)]
        users: Option<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Run a pipeline for each as-of date in a range, in order.
    Backfill {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        /// First as-of date (YYYY-MM-DD).
        #[arg(long, value_name = "DATE")]
        from: NaiveDate,
        /// Last as-of date, included.
        #[arg(long, value_name = "DATE")]
        to: NaiveDate,
        /// Output folder (default: the pipeline's `output`; `{as_of}` in it becomes the date).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Runs folder (default: the pipeline's `runs`).
        #[arg(long, value_name = "DIR")]
        runs: Option<PathBuf>,
        /// Run dates that already have a successful run too, and rerun every stage.
        #[arg(long)]
        force: bool,
        /// Override a parameter: `stage.key=value` (repeatable).
        #[arg(long = "set", value_name = "STAGE.KEY=VALUE")]
        set: Vec<String>,
    },
    /// Re-render report.html from a finished run's output folder.
    Report {
        /// The output folder (holding personas.csv, user_personas.csv, run.json).
        output_dir: PathBuf,
    },
    /// List or show recorded runs.
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
        /// Runs folder holding the ledger.
        #[arg(long, value_name = "DIR", default_value = "runs", global = true)]
        runs: PathBuf,
    },
    /// Check a pipeline file without reading any data.
    Validate {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        /// Override a parameter: `stage.key=value`.
        #[arg(long = "set", value_name = "STAGE.KEY=VALUE")]
        set: Vec<String>,
    },
    /// Generate a synthetic event log drawn from known personas.
    Generate {
        /// Events file to write (CSV).
        #[arg(long)]
        out: PathBuf,
        /// Ground truth file (user_id, persona).
        #[arg(long)]
        truth: Option<PathBuf>,
        /// Number of users.
        #[arg(long, default_value_t = 1800, conflicts_with = "events")]
        users: usize,
        /// About this many events (chooses the number of users).
        #[arg(long)]
        events: Option<u64>,
        /// Random seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// First day (YYYY-MM-DD).
        #[arg(long, default_value = "2026-01-01")]
        start: NaiveDate,
        /// Number of days.
        #[arg(long, default_value_t = 180)]
        days: u32,
    },
}

#[derive(Debug, Subcommand)]
enum RunsCommand {
    /// Runs, newest first.
    List {
        /// Only runs of this pipeline.
        #[arg(long)]
        pipeline: Option<String>,
    },
    /// One run and its stages.
    Show {
        /// The run id.
        run_id: String,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Count events before this date (YYYY-MM-DD); default: every event.
    #[arg(long, value_name = "DATE")]
    as_of: Option<NaiveDate>,
    /// Output folder (default: the pipeline's `output`).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Runs folder for artifacts and records (default: the pipeline's `runs`).
    #[arg(long, value_name = "DIR")]
    runs: Option<PathBuf>,
    /// Override a parameter: `stage.key=value` (repeatable).
    #[arg(long = "set", value_name = "STAGE.KEY=VALUE")]
    set: Vec<String>,
    /// Rerun every stage, even those whose inputs, parameters and code are unchanged.
    #[arg(long)]
    force: bool,
    /// Continue a failed or killed run from its first unfinished stage.
    #[arg(long, value_name = "RUN_ID", conflicts_with = "as_of")]
    resume: Option<String>,
    /// Print the plan and what would be skipped, then stop.
    #[arg(long)]
    dry_run: bool,
    /// Run just this stage on the finished artifacts of the stages before it, then
    /// stop without publishing anything (for timing or debugging one stage).
    #[arg(long, value_name = "STAGE", conflicts_with = "resume")]
    only: Option<String>,
}

/// An error carrying the exit code it should end the process with.
struct Failure {
    code: i32,
    error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        let error = error.into();
        let code = error
            .downcast_ref::<userlens_pipeline::Error>()
            .map_or(exit_codes::STAGE_FAILED, |e| {
                exit_codes::for_class(e.class())
            });
        Failure { code, error }
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    init_logging(&cli);
    match execute(&cli) {
        Ok(()) => ExitCode::from(exit_codes::OK as u8),
        // `userlens runs list | head`: the reader left, which is no failure of ours.
        Err(failure) if is_broken_pipe(&failure.error) => ExitCode::from(exit_codes::OK as u8),
        Err(failure) => {
            if cli.log_format == LogFormat::Json {
                let line = serde_json::json!({"event": "error", "message": format!("{:#}", failure.error), "exit_code": failure.code});
                eprintln!("{line}");
            } else {
                eprintln!("error: {:#}", failure.error);
            }
            ExitCode::from(failure.code as u8)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_logging(cli: &Cli) {
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cli.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Plain => builder.without_time().try_init(),
    };
}

fn overrides(set: &[String]) -> Result<Vec<Override>, Failure> {
    set.iter()
        .map(|s| Override::parse(s).map_err(Failure::from))
        .collect()
}

fn execute(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Run { pipeline, run } => {
            let plan = userlens_pipeline::load(pipeline, &overrides(&run.set)?)?;
            run_plan(cli, &plan, run)
        }
        Command::Profile { events, users, run } => {
            let mut set = vec![format!("ingest.path={}", toml_string(events))];
            if let Some(users) = users {
                set.push(format!("features.users={}", toml_string(users)));
            }
            set.extend(run.set.iter().cloned());
            let plan = userlens_pipeline::load_str(
                Path::new("<built-in profile pipeline>"),
                userlens_pipeline::BUILTIN_PROFILE,
                &overrides(&set)?,
            )?;
            run_plan(cli, &plan, run)
        }
        Command::Backfill {
            pipeline,
            from,
            to,
            out,
            runs,
            force,
            set,
        } => {
            if from > to {
                return Err(Failure {
                    code: exit_codes::USAGE,
                    error: anyhow::anyhow!("`--from` {from} is after `--to` {to}"),
                });
            }
            let plan = userlens_pipeline::load(pipeline, &overrides(set)?)?;
            let root = runs.clone().unwrap_or_else(|| plan.runs.clone());
            let ledger = userlens_pipeline::Ledger::open(&root)?;
            for date in from.iter_days().take_while(|d| d <= to) {
                if !force && let Some(done) = ledger.done_for(&plan.name, &date.to_string())? {
                    writeln!(
                        std::io::stdout(),
                        "{date}: done already (run {}), skipped",
                        done.run_id
                    )?;
                } else {
                    let args = RunArgs {
                        as_of: Some(date),
                        out: out.clone(),
                        runs: runs.clone(),
                        set: Vec::new(),
                        force: *force,
                        resume: None,
                        dry_run: false,
                        only: None,
                    };
                    run_plan(cli, &plan, &args)?;
                }
            }
            Ok(())
        }
        Command::Report { output_dir } => {
            let path = userlens_pipeline::render_report(output_dir)?;
            writeln!(std::io::stdout(), "{}", path.display())?;
            Ok(())
        }
        Command::Runs { command, runs } => {
            let ledger = userlens_pipeline::Ledger::open(runs)?;
            let mut out = std::io::stdout().lock();
            match command {
                RunsCommand::List { pipeline } => {
                    writeln!(
                        out,
                        "{:<36} {:<12} {:<10} {:<8} started",
                        "run", "pipeline", "as of", "status"
                    )?;
                    for run in ledger.runs(pipeline.as_deref())? {
                        writeln!(
                            out,
                            "{:<36} {:<12} {:<10} {:<8} {}",
                            run.run_id, run.pipeline, run.as_of, run.status, run.started_at
                        )?;
                    }
                }
                RunsCommand::Show { run_id } => {
                    let Some(run) = ledger.run(run_id)? else {
                        return Err(Failure {
                            code: exit_codes::USAGE,
                            error: anyhow::anyhow!(
                                "no run `{run_id}` in the ledger under `{}`",
                                runs.display()
                            ),
                        });
                    };
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
                            stage.status,
                            stage.seconds,
                            stage.rows_in,
                            stage.rows_out,
                            stage.attempts,
                            stage.artifact_dir
                        )?;
                    }
                }
            }
            Ok(())
        }
        Command::Validate { pipeline, set } => {
            let plan = userlens_pipeline::load(pipeline, &overrides(set)?)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}: ok, pipeline `{}`", pipeline.display(), plan.name)?;
            for (i, stage) in plan.stages.iter().enumerate() {
                let needs: Vec<&str> = stage
                    .needs
                    .iter()
                    .map(|&n| plan.stages[n].name.as_str())
                    .collect();
                let needs = if needs.is_empty() {
                    String::new()
                } else {
                    format!(" <- {}", needs.join(", "))
                };
                writeln!(
                    out,
                    "  {}. {} ({}){needs}",
                    i + 1,
                    stage.name,
                    stage.kind.name()
                )?;
            }
            writeln!(out, "  output: {}", plan.output.display())?;
            Ok(())
        }
        Command::Generate {
            out,
            truth,
            users,
            events,
            seed,
            start,
            days,
        } => generate(out, truth.as_deref(), *users, *events, *seed, *start, *days),
    }
}

/// A path as a TOML string literal for a `--set` override.
fn toml_string(path: &Path) -> String {
    toml_quote(&path.display().to_string())
}

fn toml_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

fn run_plan(cli: &Cli, plan: &Plan, args: &RunArgs) -> Result<(), Failure> {
    let options = RunOptions {
        as_of: args.as_of,
        output: args.out.clone(),
        runs: args.runs.clone(),
        force: args.force,
        resume: args.resume.clone(),
        only: args.only.clone(),
    };
    if args.dry_run {
        let stages = userlens_pipeline::dry_run(plan, &options)?;
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "dry run of `{}` (nothing is read or written):",
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
        return Ok(());
    }
    let mut renderer = Renderer::new(cli.log_format, cli.quiet);
    let result = userlens_pipeline::run(plan, &options, &mut |event| {
        if matches!(event, userlens_pipeline::Progress::OutOfCore { .. }) {
            return_freed_memory();
        }
        renderer.handle(event)
    });
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

fn print_summary(summary: &RunSummary) -> anyhow::Result<()> {
    let record = &summary.record;
    let rows = &record.rows;
    let mut out = std::io::stdout().lock();
    if record.status == "partial"
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
    writeln!(
        out,
        "{} run {}: {} users in {} personas, as of {}",
        record.pipeline,
        record.run_id,
        thousands(rows.users),
        summary.personas.len(),
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
            "persona ids kept from run {}: {} matched, new {}, retired {}, adjusted Rand index {}",
            stability["against_run"].as_str().unwrap_or("-"),
            stability["matched"],
            stability["new_personas"],
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
        .filter(|s| s.status == "skipped")
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

fn generate(
    out: &Path,
    truth: Option<&Path>,
    users: usize,
    events: Option<u64>,
    seed: u64,
    start: NaiveDate,
    days: u32,
) -> Result<(), Failure> {
    let users = events.map_or(users, userlens_synth::users_for_events);
    let params = userlens_synth::SynthParams {
        users,
        seed,
        start,
        days,
    };
    params.check().map_err(|e| Failure {
        code: exit_codes::USAGE,
        error: e.into(),
    })?;
    let tmp = |p: &Path| p.with_extension("csv.tmp");
    let events_file = std::fs::File::create(tmp(out))
        .with_context(|| format!("failed to create `{}`", out.display()))?;
    let truth_file = match truth {
        Some(path) => Some(
            std::fs::File::create(tmp(path))
                .with_context(|| format!("failed to create `{}`", path.display()))?,
        ),
        None => None,
    };
    let summary = userlens_synth::generate(
        &params,
        std::io::BufWriter::new(events_file),
        truth_file.map(std::io::BufWriter::new),
    )?;
    // Renamed only when complete, so a killed run never leaves half a file behind.
    std::fs::rename(tmp(out), out)
        .with_context(|| format!("failed to write `{}`", out.display()))?;
    if let Some(path) = truth {
        std::fs::rename(tmp(path), path)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
    }
    writeln!(
        std::io::stdout(),
        "wrote {} events of {} users to {}",
        thousands(summary.events),
        thousands(summary.users as u64),
        out.display()
    )?;
    for (persona, count) in &summary.per_persona {
        writeln!(
            std::io::stdout(),
            "  {persona}: {} users",
            thousands(*count as u64)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The option set by `keep_freed_memory` is the purge delay: mimalloc 3's other
    /// options near index 15 default to 0 or 1, the purge delay to 1000 ms.
    #[test]
    #[allow(unsafe_code)]
    fn the_option_index_is_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads one integer option of the allocator.
        let delay = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(delay, super::MIMALLOC_PURGE_DELAY_MS);
    }
}
