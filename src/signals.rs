//! SIGTERM and SIGINT: the run in progress is abandoned cleanly (its staging folder
//! removed, the ledger marking it `interrupted`, the lock released) and the process
//! exits with 128 + the signal's number, as shells report a signal. A run already
//! published and recorded ends as it ended, and no other starts after it. The
//! Ballista jobs an abandoned cluster run waits for are cancelled.

use std::sync::{Mutex, MutexGuard};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use userlens_pipeline::Stopped;

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
            let mut first = true;
            for signal in signals.forever() {
                // A second signal ends the process at once, whatever the first waits
                // for (a publish in progress): this thread never waits on the run.
                if !std::mem::take(&mut first) || stop_thread(signal, json).is_err() {
                    interrupted(json, None, 128 + signal);
                }
            }
        });
    if let Err(error) = started {
        tracing::debug!("no signal thread ({error}): signals end the process at once");
    }
}

/// Abandons the run on a thread of its own, which ends the process unless the run
/// had settled (then it ends as it ended, and no other run starts).
fn stop_thread(signal: i32, json: bool) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("abandon".into())
        .spawn(move || {
            let run = match userlens_pipeline::abandon(signal) {
                Stopped::Finished => return,
                Stopped::Run(run) => Some(run),
                Stopped::Idle => None,
            };
            cancel_cluster_jobs();
            interrupted(json, run.as_deref(), 128 + signal);
        })
}

/// Cancels the Ballista jobs the abandoned run was waiting for, if any.
fn cancel_cluster_jobs() {
    #[cfg(feature = "cluster")]
    for job in userlens_cluster::cancel_running() {
        tracing::info!("cluster job {job} cancelled");
    }
}

/// Held by the thread that ends the process, from its last words to its exit: a
/// signal thread and the main thread never both speak, so the message and the code
/// agree.
static EXITING: Mutex<()> = Mutex::new(());

/// Waits for the right to end the process, then keeps it.
pub fn exiting() -> MutexGuard<'static, ()> {
    EXITING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Says that a signal stopped the process, then ends it with `code`; exiting runs no
/// destructor, so the files still being written go first.
fn interrupted(json: bool, run: Option<&str>, code: i32) -> ! {
    let _alone = exiting();
    userlens_report::remove_unfinished();
    say_interrupted(json, run, code);
    std::process::exit(code)
}

/// Whether the process runs a backfill, which is continued by running it again.
static BACKFILL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Tells the signal thread that a backfill runs: a stopped run is continued by it.
pub fn in_backfill() {
    BACKFILL.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Says on stderr that a signal stopped the process (and which run, if one).
pub fn say_interrupted(json: bool, run: Option<&str>, code: i32) {
    if json {
        let line = serde_json::json!({"event": "interrupted", "run_id": run, "exit_code": code});
        say!("{line}");
    } else if let Some(run) = run {
        if BACKFILL.load(std::sync::atomic::Ordering::Relaxed) {
            say!("interrupted: run {run} stopped; run the backfill again to continue it");
        } else {
            say!("interrupted: run {run} stopped; continue it with `--resume {run}`");
        }
    } else {
        say!("interrupted");
    }
}
