//! The `userlens` command line: argument parsing, rendering and exit codes. The work
//! itself lives in the `userlens-pipeline` crate and the stage crates.

/// `eprintln!` that never panics: a closed or full stderr loses the line, not the run.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod allocator;
mod cli;
mod cmd;
mod exit_codes;
mod progress;
mod signals;

use clap::Parser;

use cli::{Cli, Command};
use progress::LogFormat;

/// An error carrying the exit code it should end the process with.
struct Failure {
    code: i32,
    error: anyhow::Error,
}

impl Failure {
    /// A bad command line.
    fn usage(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: exit_codes::USAGE,
            error: error.into(),
        }
    }
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

/// Keeps the panic hook quiet while a malformed input file makes polars panic: the
/// reader turns that panic into the file's error, which is reported instead.
fn quiet_file_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !userlens_ingest::reading_untrusted_file() {
            default(info)
        }
    }));
}

/// The command line, or the end of the process with clap's message: as a JSON line
/// when `--log-format json` was asked for, so that a scheduler's log stays JSON.
fn parse() -> Cli {
    let error = match Cli::try_parse() {
        Ok(cli) => return cli,
        Err(error) => error,
    };
    // As given, not as text: an argument that is not UTF-8 is clap's to refuse.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let json = args
        .windows(2)
        .any(|w| w[0] == "--log-format" && w[1] == "json")
        || args.iter().any(|a| a == "--log-format=json");
    if !json || !error.use_stderr() {
        error.exit();
    }
    let message = error.render().to_string();
    let line = serde_json::json!({"event": "error", "message": message.trim_end(), "exit_code": exit_codes::USAGE});
    say!("{line}");
    std::process::exit(exit_codes::USAGE)
}

fn main() {
    let cli = parse();
    init_logging(&cli);
    quiet_file_panics();
    signals::stop_runs_cleanly(cli.log_format == LogFormat::Json);
    #[cfg(feature = "cluster")]
    userlens_pipeline::engine::register(cmd::cluster::connect);
    let result = execute(&cli);
    // A signal abandoned the run, and so caused this error: the signal thread is
    // ending the process with its own code and message.
    if result.is_err() && userlens_pipeline::abandoned() {
        loop {
            std::thread::park();
        }
    }
    // From here no signal thread prints or exits beside this one.
    let _alone = signals::exiting();
    let code = match result {
        Ok(()) => exit_codes::OK,
        // `userlens runs list | head`: the reader left, which is no failure of ours.
        Err(failure) if is_broken_pipe(&failure.error) => exit_codes::OK,
        Err(failure) => {
            // A signal came once a run had finished: the command stopped before the next.
            let stopped = failure.error.chain().find_map(|cause| {
                match cause.downcast_ref::<userlens_pipeline::Error>() {
                    Some(userlens_pipeline::Error::Stopped { signal }) => Some(*signal),
                    _ => None,
                }
            });
            if let Some(signal) = stopped {
                signals::say_interrupted(cli.log_format == LogFormat::Json, None, 128 + signal);
                128 + signal
            } else {
                let message = userlens_model::error_chain(failure.error.as_ref());
                if cli.log_format == LogFormat::Json {
                    let line = serde_json::json!({"event": "error", "message": message, "exit_code": failure.code});
                    say!("{line}");
                } else {
                    // Data in a message (a user id, a column name) runs no terminal escape.
                    say!("error: {}", userlens_report::escape_hidden(&message));
                }
                failure.code
            }
        }
    };
    std::process::exit(code)
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
    // Colour only on a terminal: a cron job's log file gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match cli.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Plain => builder.without_time().try_init(),
    };
}

fn execute(cli: &Cli) -> Result<(), Failure> {
    // polars panics on it; a script's `$(nproc)/4` on 2 cores makes it.
    if std::env::var("POLARS_MAX_THREADS").is_ok_and(|n| n.trim().parse() == Ok(0u32)) {
        return Err(Failure::usage(anyhow::anyhow!(
            "`POLARS_MAX_THREADS=0`: polars needs at least one thread; unset it (every \
             core) or give a number from 1"
        )));
    }
    match &cli.command {
        Command::Run { pipeline, run } => cmd::run::run(cli, pipeline, run),
        Command::Profile { events, users, run } => {
            cmd::profile::run(cli, events, users.as_deref(), run)
        }
        Command::Backfill(args) => cmd::backfill::run(cli, args),
        Command::Report { output_dir } => cmd::report::run(output_dir),
        Command::Runs { command, runs } => cmd::runs::run(command, runs),
        Command::Validate { pipeline, set } => cmd::validate::run(pipeline, set),
        Command::Generate(args) => cmd::generate::run(args),
        Command::Cluster { role } => cmd::cluster::run(role),
    }
}
