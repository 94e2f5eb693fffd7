//! One run per pipeline at a time: an exclusive OS file lock on
//! `<runs>/<pipeline>.lock`. The kernel releases it when the holder dies, so a lock
//! left by a killed run is never stuck; the pid written inside tells whom we took
//! over from.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, io};

/// A held pipeline lock; released when dropped.
#[derive(Debug)]
pub struct PipelineLock {
    file: File,
    path: PathBuf,
    /// The pid found in a lock file whose holder is gone (a stale lock taken over).
    pub stale_pid: Option<u32>,
}

impl PipelineLock {
    /// Takes the lock of `pipeline` under `runs`, or fails with [`Error::Locked`].
    pub fn acquire(runs: &Path, pipeline: &str) -> Result<PipelineLock> {
        std::fs::create_dir_all(runs).map_err(io(runs))?;
        let path = runs.join(format!("{pipeline}.lock"));
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        // A symlink planted at the lock's path is refused, not followed.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
        let mut file = options.open(&path).map_err(io(&path))?;
        let meta = file.metadata().map_err(io(&path))?;
        #[cfg(unix)]
        let linked = std::os::unix::fs::MetadataExt::nlink(&meta) > 1;
        #[cfg(not(unix))]
        let linked = false;
        if !meta.is_file() || linked {
            return Err(io(&path)(std::io::Error::other(
                "the lock is not a plain file of its own; remove it",
            )));
        }
        let mut previous = String::new();
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let _ = file.read_to_string(&mut previous);
                return Err(Error::Locked {
                    pipeline: pipeline.to_string(),
                    holder: previous.trim().to_string(),
                    path,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(&path)(e)),
        }
        file.read_to_string(&mut previous).map_err(io(&path))?;
        // Empty after a clean exit, `pid=.. started=..` after a killed run: anything
        // else is not userlens's, and is left as it is.
        if !ours(&previous) {
            let _ = file.unlock();
            return Err(io(&path)(std::io::Error::other(
                "the file at the lock's path is not a userlens lock; move it away",
            )));
        }
        // A pid left in the file means its run ended without cleaning up (killed).
        let stale_pid = previous
            .split_whitespace()
            .next()
            .and_then(|p| p.strip_prefix("pid="))
            .and_then(|p| p.parse().ok());
        file.set_len(0).map_err(io(&path))?;
        file.seek(SeekFrom::Start(0)).map_err(io(&path))?;
        // In one write: `write!` would write its pieces one by one.
        let holder = format!(
            "pid={} started={}",
            std::process::id(),
            crate::record::stamp(chrono::Utc::now())
        );
        file.write_all(holder.as_bytes()).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))?;
        Ok(PipelineLock {
            file,
            path,
            stale_pid,
        })
    }
}

/// Whether a lock file's text is userlens's: empty, `pid=.. started=..`, or the start
/// of that, as a run killed while writing it leaves it.
fn ours(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("pid=") else {
        return "pid=".starts_with(text);
    };
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    rest.starts_with(" started=") || " started=".starts_with(rest)
}

/// Empties a lock file (a clean exit), without following a symlink; for a process
/// about to exit without running destructors.
pub(crate) fn release_file(path: &Path) {
    let mut options = OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    if let Ok(file) = options.open(path) {
        let _ = file.set_len(0);
    }
}

impl PipelineLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PipelineLock {
    fn drop(&mut self) {
        // Empty the file before unlocking: an empty lock file means a clean exit.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_cut_short_by_a_kill_is_taken_over_and_a_foreign_file_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nightly.lock");
        for (left, stale) in [
            ("", None),
            ("p", None),
            ("pid=", None),
            ("pid=12", Some(12)),
            ("pid=12 sta", Some(12)),
            ("pid=12 started=2026-12-06T01:00:00+00:00", Some(12)),
        ] {
            std::fs::write(&path, left).unwrap();
            let lock = PipelineLock::acquire(dir.path(), "nightly").unwrap();
            assert_eq!(lock.stale_pid, stale, "{left:?}");
        }
        for foreign in ["hello", "pid=12x", "pid=12 finished=now"] {
            std::fs::write(&path, foreign).unwrap();
            let err = PipelineLock::acquire(dir.path(), "nightly").unwrap_err();
            assert!(err.to_string().contains("prepare"), "{foreign:?}: {err}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), foreign);
        }
    }

    #[test]
    fn second_holder_is_refused_and_a_dead_holder_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let first = PipelineLock::acquire(dir.path(), "nightly").unwrap();
        assert_eq!(first.stale_pid, None);
        let err = PipelineLock::acquire(dir.path(), "nightly").unwrap_err();
        assert!(matches!(err, Error::Locked { .. }));
        assert!(
            err.to_string()
                .starts_with("another run of `nightly` holds the lock"),
            "{err}"
        );
        let other = PipelineLock::acquire(dir.path(), "other");
        assert!(other.is_ok(), "locks are per pipeline");
        drop(first);
        // a clean exit leaves an empty file: nothing stale
        assert_eq!(
            PipelineLock::acquire(dir.path(), "nightly")
                .unwrap()
                .stale_pid,
            None
        );
        // a killed holder leaves its pid behind
        std::fs::write(dir.path().join("nightly.lock"), "pid=999999 started=x").unwrap();
        let taken = PipelineLock::acquire(dir.path(), "nightly").unwrap();
        assert_eq!(taken.stale_pid, Some(999_999));
    }

    #[test]
    fn a_file_of_someone_else_at_the_locks_path_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.lock");
        std::fs::write(&path, "my notes").unwrap();
        let err = PipelineLock::acquire(dir.path(), "profile").unwrap_err();
        assert!(
            format!("{err:?}").contains("not a userlens lock"),
            "{err:?}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "my notes");
    }
}
