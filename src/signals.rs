//! SIGTERM and SIGINT: the run in progress is abandoned cleanly (its staging folder
//! removed, the ledger marking it `interrupted`, the lock released) and the process
//! exits with 128 + the signal's number, as shells report a signal.

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Starts the thread that waits for the signals; without one, the default action
/// (ending at once) stays.
pub fn stop_runs_cleanly(json: bool) {
    let Ok(mut signals) = Signals::new([SIGTERM, SIGINT]) else {
        tracing::debug!("no signal thread: SIGTERM and SIGINT end the process at once");
        return;
    };
    let started = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let run = userlens_pipeline::abandon();
                let code = 128 + signal;
                if json {
                    let line = serde_json::json!({"event": "interrupted", "run_id": run, "exit_code": code});
                    say!("{line}");
                } else if let Some(run) = run {
                    say!("interrupted: run {run} stopped; continue it with `--resume {run}`");
                } else {
                    say!("interrupted");
                }
                std::process::exit(code);
            }
        });
    if let Err(error) = started {
        tracing::debug!("no signal thread ({error}): signals end the process at once");
    }
}
