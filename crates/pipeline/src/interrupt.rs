//! Stopping a run from outside (SIGTERM, SIGINT): the binary's signal thread calls
//! [`abandon`], which removes the run's staging folder, marks it `interrupted` in
//! the ledger (resumable) and empties the lock file; the binary then exits. A
//! publish in progress is let finish first: it holds the same mutex. A run
//! abandoned before it reaches its publish finds itself taken there
//! ([`was_abandoned`]) and publishes and records nothing.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use crate::ledger::Ledger;
use crate::record::RunStatus;

/// The run this process is running, as far as abandoning it goes.
pub(crate) struct Active {
    pub run_id: String,
    pub runs: PathBuf,
    pub staging: PathBuf,
    pub lock: PathBuf,
}

static ACTIVE: Mutex<Option<Active>> = Mutex::new(None);

/// The run [`abandon`] has taken, if any: the process is about to exit.
static ABANDONED: Mutex<Option<String>> = Mutex::new(None);

fn taken() -> MutexGuard<'static, Option<String>> {
    ABANDONED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn active() -> MutexGuard<'static, Option<Active>> {
    ACTIVE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registers the running run; the guard unregisters it when dropped.
pub(crate) fn register(run: Active) -> Registered {
    *active() = Some(run);
    Registered
}

/// Holds the registration of the running run.
pub(crate) struct Registered;

impl Registered {
    /// Keeps [`abandon`] waiting while the outputs are published and recorded.
    pub fn publishing(&self) -> MutexGuard<'static, Option<Active>> {
        active()
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        *active() = None;
    }
}

/// Abandons the run in progress, if any; returns its id. Called from a signal
/// thread just before the process exits. The run is held taken while its staging
/// folder goes and the ledger is written, so its own thread, which may still be
/// running a stage, can neither publish nor record meanwhile.
pub fn abandon() -> Option<String> {
    let mut registered = active();
    let run = registered.take()?;
    *taken() = Some(run.run_id.clone());
    let _ = crate::publish::remove_own(&run.staging);
    if let Ok(ledger) = Ledger::open_existing(&run.runs)
        && let Ok(Some(mut row)) = ledger.run(&run.run_id)
    {
        row.status = RunStatus::Interrupted;
        row.finished_at =
            Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        row.error = Some("stopped by a signal".into());
        let _ = ledger.put_run(&row);
    }
    crate::lock::release_file(&run.lock);
    drop(registered);
    Some(run.run_id)
}

/// Whether a run of this process was abandoned: any error its thread meets after
/// that is the signal's doing, and the signal thread ends the process.
pub fn abandoned() -> bool {
    taken().is_some()
}

/// Whether [`abandon`] took the run `run_id`; asked under [`Registered::publishing`],
/// so an abandon in progress has finished by then.
pub(crate) fn was_abandoned(run_id: &str) -> bool {
    taken().as_deref() == Some(run_id)
}
