//! The files a run reads: refused unless regular, and fingerprinted (size and
//! BLAKE3) for the run record and the skip-unchanged keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A file read by a run, as `run.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// Path as given.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// BLAKE3 hash of the content.
    pub blake3: String,
}

/// Hashes a file for the run record and for skip-unchanged keys, on every core.
///
/// A run hashes its input twice (for the stage's cache key, then in the ingest), so
/// hashes are remembered for the life of the process by path, size, modification
/// time, inode and status-change time (timings: docs/benchmarks.md).
pub fn fingerprint(path: &Path) -> Result<FileInfo> {
    type Seen = std::sync::Mutex<BTreeMap<(PathBuf, Stamp), String>>;
    static SEEN: std::sync::OnceLock<Seen> = std::sync::OnceLock::new();
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let stamp = Stamp::of(path)?;
    let bytes = stamp.bytes;
    // Without a modification time nothing tells a rewrite: hashed every time.
    let key = stamp
        .modified
        .is_some()
        .then(|| (path.to_path_buf(), stamp));
    let seen = SEEN.get_or_init(Default::default);
    let known = key
        .as_ref()
        .and_then(|key| seen.lock().ok()?.get(key).cloned());
    let blake3 = match known {
        Some(hash) => hash,
        None => {
            let started = std::time::Instant::now();
            let hasher = hash_blocks(path).map_err(io)?;
            let hash = hasher.finalize().to_hex().to_string();
            tracing::debug!(
                "{} hashed in {:.2} s",
                path.display(),
                started.elapsed().as_secs_f64()
            );
            if let (Some(key), Ok(mut seen)) = (key, seen.lock()) {
                seen.insert(key, hash.clone());
            }
            hash
        }
    };
    Ok(FileInfo {
        path: path.display().to_string(),
        bytes,
        blake3,
    })
}

/// What a file's metadata says of its content: size, modification time, inode and
/// status-change time.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Stamp {
    bytes: u64,
    modified: Option<std::time::SystemTime>,
    identity: [i64; 3],
}

impl Stamp {
    fn of(path: &Path) -> Result<Stamp> {
        let metadata = regular_file(path)?;
        Ok(Stamp {
            bytes: metadata.len(),
            modified: metadata.modified().ok(),
            identity: file_identity(&metadata),
        })
    }
}

/// A file fingerprinted before it is read, for [`Unchanged::check`] to tell after
/// the read whether it changed meanwhile (replaced, or written to): what was read
/// may then mix two versions under the first one's fingerprint.
#[derive(Debug)]
pub struct Unchanged {
    path: PathBuf,
    stamp: Stamp,
    info: FileInfo,
}

impl Unchanged {
    /// Stamps and fingerprints the file at `path`.
    pub fn begin(path: &Path) -> Result<Unchanged> {
        let stamp = Stamp::of(path)?;
        let info = fingerprint(path)?;
        Ok(Unchanged {
            path: path.to_path_buf(),
            stamp,
            info,
        })
    }

    /// Its fingerprint, once the read is done and the file has the same stamp; else
    /// an error, not a refusal: read again, it may be whole. Any move of the stamp
    /// counts, its status-change time's too: a file rewritten in place with its old
    /// modification time put back (`cp -p`) may have been read cut short.
    pub fn check(self) -> Result<FileInfo> {
        match Stamp::of(&self.path) {
            Ok(now) if now == self.stamp => Ok(self.info),
            _ => Err(Error::Changed { path: self.path }),
        }
    }

    /// `error`, a read's failure, or [`Error::Changed`] when the file moved since it
    /// was stamped: a file cut short or half written reads as corrupt.
    pub fn or_changed(&self, error: Error) -> Error {
        match Stamp::of(&self.path) {
            Ok(now) if now == self.stamp => error,
            _ => Error::Changed {
                path: self.path.clone(),
            },
        }
    }
}

/// BLAKE3 of the file at `path`, read in blocks, each hashed on every core while a
/// thread reads the next: a memory map of the whole file would count its pages in
/// the process's RSS, and a file not in the page cache is read at the disk's pace.
/// Blocks small enough to be hashed while still in the cache.
pub(crate) fn hash_blocks(path: &Path) -> std::io::Result<blake3::Hasher> {
    use std::io::Read;
    use std::sync::mpsc::sync_channel;
    const BLOCK: usize = 2 << 20;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    // Two blocks go round: one filled while the other is hashed.
    let (full, filled) = sync_channel::<std::io::Result<Vec<u8>>>(1);
    let (empty, emptied) = sync_channel::<Vec<u8>>(2);
    for _ in 0..2 {
        let _ = empty.send(Vec::with_capacity(BLOCK));
    }
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for mut block in emptied {
                block.clear();
                match (&mut file).take(BLOCK as u64).read_to_end(&mut block) {
                    Ok(0) => return,
                    Ok(_) => {
                        if full.send(Ok(block)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = full.send(Err(e));
                        return;
                    }
                }
            }
        });
        for block in filled {
            let block = block?;
            hasher.update_rayon(&block);
            let _ = empty.send(block);
        }
        Ok::<(), std::io::Error>(())
    })?;
    Ok(hasher)
}

/// The metadata of `path` (links followed) if it is a regular file. Anything else
/// is refused before it is opened: a device such as `/dev/zero` or a FIFO would be
/// read (or waited on) forever, a folder cannot be read at all.
pub(crate) fn regular_file(path: &Path) -> Result<std::fs::Metadata> {
    let metadata = std::fs::metadata(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if metadata.is_file() {
        return Ok(metadata);
    }
    Err(Error::NotAFile {
        path: path.to_path_buf(),
        kind: file_kind(&metadata.file_type()),
    })
}

/// What a file that is not a regular one is, in words.
fn file_kind(file_type: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a folder"
    } else {
        "a special file"
    }
}

/// The file's inode and status-change time: a file rewritten with its size and
/// modification time kept (`cp -p`, `rsync -t`) still gets a new change time.
#[cfg(unix)]
fn file_identity(metadata: &std::fs::Metadata) -> [i64; 3] {
    use std::os::unix::fs::MetadataExt;
    [
        metadata.ino() as i64,
        metadata.ctime(),
        metadata.ctime_nsec(),
    ]
}

#[cfg(not(unix))]
fn file_identity(_: &std::fs::Metadata) -> [i64; 3] {
    [0; 3]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_replaced_or_rewritten_while_read_is_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.csv");
        std::fs::write(&path, "user_id,event_time,event_type\nu1,2026-01-01,view\n").unwrap();
        let guard = Unchanged::begin(&path).unwrap();
        let blake3 = guard.info.blake3.clone();
        assert_eq!(guard.check().unwrap().blake3, blake3);
        // Rewritten in place with the same bytes and its modification time put back
        // (`cp -p`): it may have been read cut short.
        let guard = Unchanged::begin(&path).unwrap();
        let (bytes, modified) = (
            std::fs::read(&path).unwrap(),
            std::fs::metadata(&path).unwrap().modified().unwrap(),
        );
        std::fs::write(&path, &bytes).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(modified))
            .unwrap();
        assert!(guard.check().is_err());
        let read_error = Error::Empty { path: path.clone() };
        let guard = Unchanged::begin(&path).unwrap();
        assert!(matches!(guard.or_changed(read_error), Error::Empty { .. }));
        std::fs::write(&path, "user_id,event_time,event_type\n").unwrap();
        let read_error = Error::Empty { path: path.clone() };
        assert!(matches!(
            guard.or_changed(read_error),
            Error::Changed { .. }
        ));
        // Another file of the same size moved over it, as an export is published.
        let guard = Unchanged::begin(&path).unwrap();
        let other = dir.path().join("new.csv");
        std::fs::write(
            &other,
            "user_id,event_time,event_type\nv1,2026-01-01,view\n",
        )
        .unwrap();
        std::fs::rename(&other, &path).unwrap();
        let err = guard.check().unwrap_err();
        assert!(
            matches!(err, Error::Changed { .. }) && !err.is_refusal(),
            "{err}"
        );
        assert!(
            err.to_string().contains("changed while it was read"),
            "{err}"
        );
        // Gone is changed too.
        let guard = Unchanged::begin(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(guard.check().is_err());
    }
}
