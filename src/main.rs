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

const EXAMPLES: &str = "\
Examples:
  userlens profile sample_data/events.csv
  userlens run pipelines/profile.toml --out out/profile
  userlens run pipelines/nightly.toml --as-of 2026-11-27 --set personas.k=6
  userlens validate pipelines/profile.toml
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
    let cli = Cli::parse();
    init_logging(&cli);
    match execute(&cli) {
        Ok(()) => ExitCode::from(exit_codes::OK as u8),
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
    };
    let mut renderer = Renderer::new(cli.log_format, cli.quiet);
    let result = userlens_pipeline::run(plan, &options, &mut |event| renderer.handle(event));
    renderer.finish();
    let summary = result?;
    if cli.log_format == LogFormat::Json {
        let line = serde_json::to_string(&summary.record)?;
        println!("{line}");
    } else {
        print_summary(&summary)?;
    }
    Ok(())
}

fn print_summary(summary: &RunSummary) -> anyhow::Result<()> {
    let record = &summary.record;
    let rows = &record.rows;
    let mut out = std::io::stdout().lock();
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
    writeln!(out, "outputs in {}:", summary.output_dir.display())?;
    for file in &record.outputs {
        writeln!(out, "  {file}")?;
    }
    writeln!(out, "run folder: {}", summary.run_dir.display())?;
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
    println!(
        "wrote {} events of {} users to {}",
        thousands(summary.events),
        thousands(summary.users as u64),
        out.display()
    );
    for (persona, count) in &summary.per_persona {
        println!("  {persona}: {} users", thousands(*count as u64));
    }
    Ok(())
}
