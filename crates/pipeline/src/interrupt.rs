//! Stopping a run from outside (SIGTERM, SIGINT): the binary's signal thread calls
//! [`abandon`], which removes the run's staging folder, marks it `interrupted` in
//! the ledger (resumable) and empties the lock file; the binary then exits. A
//! run abandoned before it reaches its publish finds itself taken there
//! ([`was_abandoned`]) and publishes and records nothing. A publish in progress is
//! let finish first, as it holds the same mutex: the run then ends as it ended
//! ([`Stopped::Finished`]), and the process starts no other run ([`stop_requested`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::error::Error;
use crate::ledger::{Ledger, RunRow};
use crate::record::RunStatus;

/// The run this process is running, as far as abandoning it goes.
pub(crate) struct Active {
    pub run_id: String,
    pub runs: PathBuf,
    pub staging: PathBuf,
    /// The outermost folder above `staging` that the run made ([`made`]).
    pub made: Option<PathBuf>,
    pub lock: PathBuf,
}

/// The registered run, and whether the last one registered has been published and
/// recorded (whatever its status).
pub(crate) struct State {
    run: Option<Active>,
    settled: bool,
}

static ACTIVE: Mutex<State> = Mutex::new(State {
    run: None,
    settled: false,
});

/// The run [`abandon`] has taken, if any: the process is about to exit.
static ABANDONED: Mutex<Option<String>> = Mutex::new(None);

/// The signal that came once a run had settled, if any (0: none).
static STOP: AtomicI32 = AtomicI32::new(0);

fn taken() -> MutexGuard<'static, Option<String>> {
    ABANDONED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn active() -> MutexGuard<'static, State> {
    ACTIVE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registers the running run; the guard unregisters it when dropped. `None` if a
/// signal came since the last run settled: no run starts after it.
pub(crate) fn register(run: Active) -> Option<Registered> {
    let mut state = active();
    if stop_requested().is_some() {
        return None;
    }
    *state = State {
        run: Some(run),
        settled: false,
    };
    Some(Registered)
}

/// Tells the registered run which folders above its staging folder it made, for
/// [`abandon`] to remove them when empty.
pub(crate) fn made(made: Option<PathBuf>) {
    if let Some(run) = &mut active().run {
        run.made = made;
    }
}

/// Holds the registration of the running run.
pub(crate) struct Registered;

impl Registered {
    /// Keeps [`abandon`] waiting while the outputs are published and recorded.
    pub fn publishing(&self) -> Publishing {
        Publishing(active())
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        active().run = None;
    }
}

/// The run's publish and record, which a signal waits for.
pub(crate) struct Publishing(MutexGuard<'static, State>);

impl Publishing {
    /// The run is published (or refused) and recorded: a signal from now on lets it
    /// end as it ended.
    pub fn settled(mut self) {
        self.0.run = None;
        self.0.settled = true;
    }
}

/// What a signal stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// The run in progress, abandoned: the process exits with 128 + the signal.
    Run(String),
    /// Nothing: the run had been published and recorded. It ends as it ended, and
    /// the process starts no other run ([`stop_requested`]).
    Finished,
    /// Nothing: no run had started.
    Idle,
}

/// Abandons the run in progress, if any. Called from a signal thread, which ends
/// the process unless the run had settled. The run is held taken while its staging
/// folder goes and the ledger is written, so its own thread, which may still be
/// running a stage, can neither publish nor record meanwhile.
pub fn abandon(signal: i32) -> Stopped {
    let mut state = active();
    let Some(run) = state.run.take() else {
        if !state.settled {
            return Stopped::Idle;
        }
        STOP.store(signal, Ordering::SeqCst);
        return Stopped::Finished;
    };
    *taken() = Some(run.run_id.clone());
    let _ = crate::publish::remove_own(&run.staging);
    if let Some(made) = &run.made {
        crate::publish::remove_empty_made(&run.staging, made);
    }
    if let Ok(ledger) = Ledger::open_existing(&run.runs)
        && let Ok(Some(mut row)) = ledger.run(&run.run_id)
    {
        let _ = record_stopped(&ledger, &mut row);
    }
    crate::lock::release_file(&run.lock);
    drop(state);
    Stopped::Run(run.run_id)
}

/// Whether a run of this process was abandoned: any error its thread meets after
/// that is the signal's doing, and the signal thread ends the process.
pub fn abandoned() -> bool {
    taken().is_some()
}

/// The signal that came after a run had settled, if one did: no run starts after it.
pub fn stop_requested() -> Option<i32> {
    Some(STOP.load(Ordering::SeqCst)).filter(|&signal| signal != 0)
}

/// Whether [`abandon`] took the run `run_id`; asked under [`Registered::publishing`],
/// so an abandon in progress has finished by then.
pub(crate) fn was_abandoned(run_id: &str) -> bool {
    taken().as_deref() == Some(run_id)
}

/// Refuses a write into the staging folder of an abandoned run, which [`abandon`]
/// removes: written on, it would be made again and left behind. Held while the
/// caller writes, the guard keeps an abandon from removing the folder meanwhile.
pub(crate) fn still_running() -> Result<MutexGuard<'static, Option<String>>, Error> {
    let guard = taken();
    match guard.clone() {
        Some(run_id) => Err(Error::Interrupted { run_id }),
        None => Ok(guard),
    }
}

/// Records `row`'s run as stopped by a signal (`interrupted`, resumable).
pub(crate) fn record_stopped(ledger: &Ledger, row: &mut RunRow) -> crate::error::Result<()> {
    row.status = RunStatus::Interrupted;
    row.finished_at = Some(crate::record::stamp(chrono::Utc::now()));
    row.error = Some("stopped by a signal".into());
    ledger.put_run(row)
}
