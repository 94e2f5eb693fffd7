//! The command line's definition: commands, arguments and `--help` text.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::progress::LogFormat;

const EXAMPLES: &str = "\
Examples:
  userlens profile sample_data/events.csv.gz
  userlens run pipelines/profile.toml --out out/profile
  userlens run pipelines/nightly.toml --as-of 2026-11-27 --set personas.k=6
  userlens validate pipelines/profile.toml
  userlens report out/profile
  userlens generate --users 1800 --seed 42 --out events.csv --truth truth.csv

Exit codes: 0 ok, 1 a stage failed (or a file could not be written), 2 bad command
line or pipeline file, 3 input data refused (quality gate), 4 another run of the
pipeline holds the lock.";

/// Batch user analytics: event logs in, features, personas and reports out.
#[derive(Debug, Parser)]
#[command(name = "userlens", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors and results.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Format of progress and logs on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,
}

/// A path given on the command line, as text: pipelines hold paths as text, so one
/// that is not UTF-8 would be read or written as another (clap refuses it).
fn text_path(text: &str) -> Result<PathBuf, std::convert::Infallible> {
    Ok(PathBuf::from(text))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline file.
    Run {
        /// The pipeline file (TOML).
        #[arg(value_parser = text_path)]
        pipeline: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Profile a canonical event file with the built-in pipeline.
    Profile {
        /// Events with the canonical columns (user_id, event_time, event_type, ...).
        #[arg(value_parser = text_path)]
        events: PathBuf,
        /// Users table to join (CSV or Parquet with user_id).
        #[arg(long, value_parser = text_path)]
        users: Option<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Run a pipeline for each as-of date in a range, in order.
    Backfill(BackfillArgs),
    /// Re-render report.html from a finished run's output folder.
    Report {
        /// The output folder (holding personas.csv, user_personas.csv, run.json).
        #[arg(value_parser = text_path)]
        output_dir: PathBuf,
    },
    /// List or show recorded runs.
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
        /// Runs folder holding the ledger.
        #[arg(long, value_name = "DIR", default_value = "runs", global = true, value_parser = text_path)]
        runs: PathBuf,
    },
    /// Check a pipeline file without reading any data.
    Validate {
        /// The pipeline file (TOML).
        #[arg(value_parser = text_path)]
        pipeline: PathBuf,
        /// Override a parameter: `stage.key=value`.
        #[arg(long = "set", value_name = "STAGE.KEY=VALUE")]
        set: Vec<String>,
    },
    /// Generate a synthetic event log drawn from known personas.
    Generate(GenerateArgs),
    /// Run a role of an Apache Ballista cluster for `engine = "ballista://..."`
    /// (needs a build with `--features cluster`).
    Cluster {
        #[command(subcommand)]
        role: ClusterRole,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterRole {
    /// The scheduler: plans jobs and hands their tasks to executors.
    Scheduler {
        /// Address to listen on.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50050")]
        bind: std::net::SocketAddr,
        /// Name or address the executors reach it by, to report their tasks done
        /// (default: `--bind`'s address; needed when that is every interface's).
        #[arg(long)]
        host: Option<String>,
        /// Seconds without a heartbeat before an executor is taken for dead and its
        /// tasks run on the others.
        #[arg(long, value_name = "SECS", default_value_t = 180,
              value_parser = clap::value_parser!(u64).range(1..))]
        executor_timeout: u64,
    },
    /// An executor: runs tasks; reads the event parts from the shared folder.
    Executor {
        /// The scheduler's `host:port` (port 50050 when absent).
        #[arg(long, value_name = "ADDR")]
        scheduler: String,
        /// Name or address the scheduler and the driver reach it by (advertised).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Address to listen on (default: `--host` when it is an IP address,
        /// loopback for `localhost`, else `0.0.0.0`, every interface).
        #[arg(long, value_name = "IP")]
        bind: Option<std::net::IpAddr>,
        /// Port of its Arrow Flight service (results are fetched from it).
        #[arg(long, default_value_t = 50051)]
        port: u16,
        /// Port of its gRPC service (the scheduler pushes tasks to it).
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Tasks run at once (default: the cores).
        #[arg(long, value_name = "N")]
        concurrency: Option<usize>,
        /// Folder for its intermediate results (default: a temporary folder).
        #[arg(long, value_name = "DIR", value_parser = text_path)]
        work_dir: Option<PathBuf>,
        /// Seconds between heartbeats to the scheduler.
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        heartbeat: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
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
pub struct RunArgs {
    /// Count events before this date (YYYY-MM-DD); default: every event.
    #[arg(long, value_name = "DATE", value_parser = date)]
    pub as_of: Option<NaiveDate>,
    /// Output folder (default: the pipeline's `output`; `out/profile` for `profile`).
    #[arg(long, value_name = "DIR", value_parser = text_path)]
    pub out: Option<PathBuf>,
    /// Runs folder for artifacts and records (default: the pipeline's `runs`; `runs`
    /// for `profile`, whose runs go under `runs/profile-<file name>/`).
    #[arg(long, value_name = "DIR", value_parser = text_path)]
    pub runs: Option<PathBuf>,
    /// Override a parameter: `stage.key=value` (repeatable).
    #[arg(long = "set", value_name = "STAGE.KEY=VALUE")]
    pub set: Vec<String>,
    /// Rerun every stage, even those whose inputs, parameters and code are unchanged.
    #[arg(long)]
    pub force: bool,
    /// Replace an output folder that holds files userlens did not write.
    #[arg(long)]
    pub force_output: bool,
    /// Continue a failed or killed run from its first unfinished stage.
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<String>,
    /// Print the plan and what would be skipped, then stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Run just this stage on the finished artifacts of the stages before it, then
    /// stop without publishing anything (for timing or debugging one stage).
    #[arg(long, value_name = "STAGE", conflicts_with_all = ["resume", "until"])]
    pub only: Option<String>,
    /// Run just this stage and the stages it needs, then publish their outputs as
    /// if the pipeline ended there (`--until report`: personas and predictions
    /// without the later stages)
    #[arg(long, value_name = "STAGE")]
    pub until: Option<String>,
    /// Where the per-user work of the features, personas and predict stages runs:
    /// `local`, or a Ballista cluster's scheduler, `ballista://host:port` (default: the
    /// pipeline's `engine`, else `local`).
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<String>,
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// The pipeline file (TOML).
    #[arg(value_parser = text_path)]
    pub pipeline: PathBuf,
    /// First as-of date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE", value_parser = date)]
    pub from: NaiveDate,
    /// Last as-of date, included.
    #[arg(long, value_name = "DATE", value_parser = date)]
    pub to: NaiveDate,
    /// Output folder (default: the pipeline's `output`; `{as_of}` in it becomes the date).
    #[arg(long, value_name = "DIR", value_parser = text_path)]
    pub out: Option<PathBuf>,
    /// Runs folder (default: the pipeline's `runs`).
    #[arg(long, value_name = "DIR", value_parser = text_path)]
    pub runs: Option<PathBuf>,
    /// Run dates that already have a successful run too, and rerun every stage.
    #[arg(long)]
    pub force: bool,
    /// Replace output folders that hold files userlens did not write.
    #[arg(long)]
    pub force_output: bool,
    /// Override a parameter: `stage.key=value` (repeatable).
    #[arg(long = "set", value_name = "STAGE.KEY=VALUE")]
    pub set: Vec<String>,
    /// Where the per-user work runs, as `run --engine` (default: the pipeline's
    /// `engine`, else `local`).
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<String>,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Events file to write (CSV).
    #[arg(long, value_parser = text_path)]
    pub out: PathBuf,
    /// Ground truth file (user_id, persona).
    #[arg(long, value_parser = text_path)]
    pub truth: Option<PathBuf>,
    /// Number of users.
    #[arg(long, default_value_t = 1800, conflicts_with = "events")]
    pub users: usize,
    /// About this many events (chooses the number of users).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub events: Option<u64>,
    /// Users average about this many events (few users with long histories;
    /// default: the personas' own rates, about 60 over 180 days).
    #[arg(long, value_name = "N")]
    pub events_per_user: Option<u32>,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// First day (YYYY-MM-DD).
    #[arg(long, default_value = "2026-01-01", value_parser = date)]
    pub start: NaiveDate,
    /// Number of days.
    #[arg(long, default_value_t = 180)]
    pub days: u32,
    /// Also write a satisfaction survey of the users (user_id, answered_at, score, ...).
    #[arg(long, value_name = "PATH", value_parser = text_path)]
    pub survey: Option<PathBuf>,
    /// Replace files that already exist (otherwise refused).
    #[arg(long)]
    pub force: bool,
}

/// A date given as exactly `YYYY-MM-DD`: chrono alone takes `26-06-01` for the year 26.
fn date(text: &str) -> Result<NaiveDate, String> {
    let b = text.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return Err(format!("`{text}` is not a date of the form YYYY-MM-DD"));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("`{text}` has the form YYYY-MM-DD but is no day of the calendar"))
}

#[cfg(test)]
mod date_tests {
    #[test]
    fn dates_are_exactly_four_two_two_digits() {
        assert_eq!(super::date("2026-06-01").unwrap().to_string(), "2026-06-01");
        for bad in [
            "26-06-01",
            "2026-6-1",
            "0-06-01",
            "2026-02-30",
            "2026-06-01 ",
            "+2026-06-0",
        ] {
            let err = super::date(bad).unwrap_err();
            assert!(err.contains("YYYY-MM-DD"), "{bad}: {err}");
        }
        for impossible in ["2026-02-29", "2026-13-01", "2026-04-31"] {
            let err = super::date(impossible).unwrap_err();
            assert!(
                err.contains("no day of the calendar"),
                "{impossible}: {err}"
            );
        }
    }
}
