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
    type Key = (PathBuf, u64, std::time::SystemTime, [i64; 3]);
    type Seen = std::sync::Mutex<BTreeMap<Key, String>>;
    static SEEN: std::sync::OnceLock<Seen> = std::sync::OnceLock::new();
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let metadata = regular_file(path)?;
    let bytes = metadata.len();
    let key = metadata.modified().ok().map(|modified| {
        (
            path.to_path_buf(),
            bytes,
            modified,
            file_identity(&metadata),
        )
    });
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
/// status-change time. A file replaced or written to gets another.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    bytes: u64,
    modified: Option<std::time::SystemTime>,
    identity: [i64; 3],
}

impl Stamp {
    /// The stamp of the regular file at `path`.
    pub(crate) fn of(path: &Path) -> Result<Stamp> {
        let metadata = regular_file(path)?;
        Ok(Stamp {
            bytes: metadata.len(),
            modified: metadata.modified().ok(),
            identity: file_identity(&metadata),
        })
    }

    /// Fails when the file at `path` no longer has this stamp: what was read of it
    /// since may mix two versions, and its fingerprint may be the other's.
    pub(crate) fn check_unchanged(&self, path: &Path) -> Result<()> {
        match Stamp::of(path) {
            Ok(now) if now == *self => Ok(()),
            _ => Err(Error::Changed {
                path: path.to_path_buf(),
            }),
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
    fn a_file_replaced_or_written_to_since_its_stamp_is_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.csv");
        std::fs::write(&path, "user_id,event_time,event_type\nu1,2026-01-01,view\n").unwrap();
        let stamp = Stamp::of(&path).unwrap();
        assert!(stamp.check_unchanged(&path).is_ok());
        // Another file of the same size moved over it, as an export is published.
        let other = dir.path().join("new.csv");
        std::fs::write(
            &other,
            "user_id,event_time,event_type\nv1,2026-01-01,view\n",
        )
        .unwrap();
        std::fs::rename(&other, &path).unwrap();
        let err = stamp.check_unchanged(&path).unwrap_err();
        assert!(
            matches!(err, Error::Changed { .. }) && !err.is_refusal(),
            "{err}"
        );
        assert!(
            err.to_string().contains("changed while it was read"),
            "{err}"
        );
        // Gone is changed too.
        let stamp = Stamp::of(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(stamp.check_unchanged(&path).is_err());
    }
}
