//! A stage's artifacts in the run folder: saved (in the foreground or on a thread of
//! its own), hashed, verified against the ledger and loaded back.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use userlens_ingest::Events;

use crate::error::{Error, Result, io};
use crate::ledger::{Ledger, StageRow};
use crate::plan::PlannedStage;
use crate::record::{StageMeta, StageRecord};
use crate::stage::{StageError, Tables};

/// The stage's meta file, beside its tables.
pub(crate) const META: &str = "meta.json";
/// Folder of a stage's artifacts that holds the events of an out-of-core ingest.
pub(crate) const EVENT_PARTS: &str = "events.parts";
/// Copies of the output files a stage wrote, restored when it is reused.
const FILES: &str = "files";
/// The list of an ingest's event parts kept outside its folder (under a cluster
/// run's `shared_dir`), each with its BLAKE3, so the folder's hash covers them.
const SHARED_PARTS: &str = "events.parts.json";

/// One event part listed in [`SHARED_PARTS`].
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SharedPart {
    path: PathBuf,
    blake3: String,
}

/// Reads one Parquet table.
pub(crate) fn read_table(path: &Path) -> std::result::Result<DataFrame, StageError> {
    Ok(ParquetReader::new(std::fs::File::open(path)?).finish()?)
}

/// BLAKE3 of every file under a stage's artifact folder, by relative path in name
/// order: tables, event parts, meta and output copies alike, so any change to what
/// a reuse would read shows.
pub(crate) fn content_hash(dir: &Path) -> Result<String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).map_err(io(&folder))? {
            let entry = entry.map_err(io(&folder))?;
            let kind = entry.file_type().map_err(io(&folder))?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    let mut hasher = blake3::Hasher::new();
    for file in files {
        let name = file.strip_prefix(dir).unwrap_or(&file).to_string_lossy();
        hasher.update(&(name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hash_file(&mut hasher, &file)?;
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// Adds the bytes of `file` to `hasher`.
fn hash_file<'h>(hasher: &'h mut blake3::Hasher, file: &Path) -> Result<&'h mut blake3::Hasher> {
    let handle = std::fs::File::open(file).map_err(io(file))?;
    hasher.update_reader(handle).map_err(io(file))
}

/// BLAKE3 of one file.
pub(crate) fn file_hash(file: &Path) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    Ok(hash_file(&mut hasher, file)?
        .finalize()
        .to_hex()
        .to_string())
}

/// Where [`save`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writer {
    /// In the run's thread, with polars' threads to encode.
    Foreground,
    /// On a thread of its own, encoding on that thread alone: polars'
    /// threads are the next stages'.
    Background,
}

/// Writes a stage's tables, its meta and copies of its output files; returns the
/// content hash of the folder.
pub(crate) fn save(
    dir: &Path,
    tables: &mut Tables,
    meta: &StageMeta,
    staging: &Path,
    writer: Writer,
) -> Result<String> {
    let write_parquet = match writer {
        Writer::Foreground => userlens_report::write_parquet,
        Writer::Background => userlens_report::write_parquet_on_this_thread,
    };
    let started = std::time::Instant::now();
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    match (writer, &mut tables.events) {
        (Writer::Background, Some(Events::Memory(_))) => {
            // This thread's copy, handed over: freed a chunk at a time as written.
            if let Some(Events::Memory(df)) = tables.events.take() {
                userlens_report::write_parquet_chunk_by_chunk(df, &dir.join("events.parquet"))?;
            }
        }
        (_, Some(Events::Memory(df))) => write_parquet(df, &dir.join("events.parquet"))?,
        _ => {}
    }
    // Event parts are already written by the ingest: in the stage's folder, or under
    // a cluster run's `shared_dir`, where the folder lists them with their hashes.
    if let Some(Events::Parts { files, .. }) = &tables.events
        && files.iter().any(|f| !f.starts_with(dir))
    {
        let listed = files
            .iter()
            .map(|f| {
                Ok(SharedPart {
                    path: f.clone(),
                    blake3: file_hash(f)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        userlens_report::write_json(&listed, &dir.join(SHARED_PARTS))?;
    }
    for (name, df) in tables.frames.iter_mut() {
        write_parquet(df, &dir.join(format!("{name}.parquet")))?;
    }
    for file in &meta.files {
        keep_file(&staging.join(file), &dir.join(FILES).join(file))?;
    }
    userlens_report::write_json(meta, &dir.join(META))?;
    let hash = content_hash(dir)?;
    tracing::info!(
        "artifacts saved in {:.2} s: {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(hash)
}

/// Whether a finished stage's folder still holds what a later run reads of it as
/// the run before: its meta and the tables the stage compares ([`Stage::COMPARED`]).
///
/// [`Stage::COMPARED`]: crate::Stage::COMPARED
pub(crate) fn holds_compared(dir: &Path, stage: &PlannedStage) -> bool {
    dir.join(META).is_file()
        && (stage.stage.compared().iter()).all(|name| dir.join(format!("{name}.parquet")).is_file())
}

/// The event parts a finished stage's folder lists elsewhere (under a `shared_dir`),
/// each checked against the hash it was written with; `None` when it lists none.
pub(crate) fn listed_parts(dir: &Path) -> std::result::Result<Option<Vec<PathBuf>>, String> {
    let shared = dir.join(SHARED_PARTS);
    if !shared.is_file() {
        return Ok(None);
    }
    let bytes = std::fs::read(&shared).map_err(|e| e.to_string())?;
    let listed: Vec<SharedPart> = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    for part in &listed {
        // With the cause: a part removed is "No such file".
        if file_hash(&part.path).map_err(|e| crate::error::error_chain(&e))? != part.blake3 {
            return Err(format!(
                "the event part `{}` changed since it was written",
                part.path.display()
            ));
        }
    }
    Ok(Some(listed.into_iter().map(|p| p.path).collect()))
}

/// Why a cluster's executors could not read the events a finished stage left in
/// `dir`, if they could not: events in memory (a local run's), or parts outside the
/// pipeline's `shared_dir` when it has one. Read from the folder's files alone.
pub(crate) fn unreadable_on_cluster(dir: &Path, shared_dir: Option<&Path>) -> Option<String> {
    if dir.join("events.parquet").is_file() {
        return Some("its events are in memory (a local run's), not in parts".into());
    }
    let shared = shared_dir?;
    let listed = dir.join(SHARED_PARTS);
    let outside = if listed.is_file() {
        let parts: Vec<SharedPart> = (std::fs::read(&listed).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        parts.iter().any(|part| !part.path.starts_with(shared))
    } else {
        dir.join(EVENT_PARTS).is_dir() && !dir.starts_with(shared)
    };
    outside.then(|| {
        format!(
            "its parts are not under the `shared_dir` {}",
            shared.display()
        )
    })
}

/// Loads a finished stage's tables and meta after checking them against the hash
/// the ledger holds, and restores its output files. Any table the stage must
/// provide being absent is an error: the caller runs the stage again.
pub(crate) fn load(
    dir: &Path,
    expected_hash: &str,
    stage: &PlannedStage,
    staging: &Path,
) -> std::result::Result<(Tables, StageMeta), String> {
    let hash = content_hash(dir).map_err(|e| crate::error::error_chain(&e))?;
    if hash != expected_hash {
        return Err(format!(
            "the artifacts in `{}` changed since they were written",
            dir.display()
        ));
    }
    let bytes = std::fs::read(dir.join(META)).map_err(|e| e.to_string())?;
    let meta: StageMeta = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let mut tables = Tables::default();
    let provides = stage.stage.provides();
    for name in provides.iter().chain(stage.stage.may_provide()) {
        let path = dir.join(format!("{name}.parquet"));
        if !path.is_file() {
            continue;
        }
        let df = read_table(&path).map_err(|e| format!("{}: {e:?}", path.display()))?;
        tables.insert(*name, df);
    }
    if let Some(df) = tables.frames.remove("events") {
        tables.events = Some(Events::Memory(df));
    }
    let rows = meta.rows.as_ref().map_or(0, |r| r.kept);
    let parts_dir = dir.join(EVENT_PARTS);
    if parts_dir.is_dir() {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&parts_dir).map_err(|e| e.to_string())? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.extension().is_some_and(|e| e == "parquet") {
                files.push(path);
            }
        }
        files.sort();
        tables.events = Some(Events::Parts { files, rows });
    }
    if let Some(files) = listed_parts(dir)? {
        tables.events = Some(Events::Parts { files, rows });
    }
    if let Some(missing) = missing_table(stage, &tables) {
        return Err(format!("`{missing}` is missing from `{}`", dir.display()));
    }
    // Held: an abandon removing the staging folder meanwhile would see it made again.
    let _running = crate::interrupt::still_running().map_err(|e| e.to_string())?;
    for file in &meta.files {
        copy_file(&dir.join(FILES).join(file), &staging.join(file)).map_err(|e| e.to_string())?;
    }
    Ok((tables, meta))
}

/// The first table `stage` must provide that `tables` lacks.
pub(crate) fn missing_table(stage: &PlannedStage, tables: &Tables) -> Option<&'static str> {
    stage
        .stage
        .provides()
        .iter()
        .copied()
        .find(|name| tables.rows(name).is_none())
}

/// Restores an output file from the artifacts: a copy, so that the published file
/// is not the artifact.
fn copy_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::copy(from, to).map_err(io(to))?;
    Ok(())
}

/// Keeps an output file beside the artifacts: a second name for the file where the
/// folders share a file system (no copy of the bytes), a copy where they do not. An
/// output changed in place then changes the artifact too, and its hash shows it.
fn keep_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    // A name left by an earlier attempt of the stage goes first: a copy over it would
    // write into whatever file it names.
    match std::fs::remove_file(to) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(to)(e)),
        _ => {}
    }
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).map_err(io(to))?;
    }
    Ok(())
}

/// Gives `to` the files of the artifact folder `from` (second names where they
/// share a file system, copies where not), its subfolders too: a run that reuses
/// another's artifacts holds them itself.
pub(crate) fn link_folder(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let (path, target) = (entry.path(), to.join(entry.file_name()));
        match entry.file_type().map_err(io(&path))? {
            kind if kind.is_dir() => link_folder(&path, &target)?,
            kind if kind.is_file() => keep_file(&path, &target)?,
            _ => {}
        }
    }
    Ok(())
}

/// A stage's artifacts: written (their content hash), or being written.
pub(crate) enum Saved {
    Done(String),
    /// Being written; the stage's ledger row is sent to the writing thread, which
    /// records it as soon as the artifacts are whole.
    Writing(
        std::thread::JoinHandle<Result<String>>,
        std::sync::mpsc::Sender<StageRow>,
    ),
}

/// A finished stage whose artifacts are being written on a thread of their own while
/// the next stages run (the ingest's events: see "The events artifact's background
/// write" in docs/benchmarks.md). The stage is put in the ledger, and so can be
/// reused by a resumed run, only once they are written: a run killed before that
/// runs the stage again.
pub(crate) struct Saving {
    pub handle: std::thread::JoinHandle<Result<String>>,
    pub row: StageRow,
    pub record: StageRecord,
}

impl Saving {
    /// Waits for the artifacts, then records the stage.
    pub fn finish(self, ledger: &Ledger, records: &mut Vec<StageRecord>) -> Result<()> {
        let hash = self.handle.join().unwrap_or_else(|_| {
            Err(Error::Io {
                path: PathBuf::from(&self.row.artifact_dir),
                source: std::io::Error::other("the thread writing the artifacts panicked"),
            })
        })?;
        ledger.put_stage(&StageRow {
            content_hash: hash,
            ..self.row
        })?;
        records.push(self.record);
        Ok(())
    }
}

/// [`save`] on a thread of its own, with copies of the tables (which share their
/// buffers with the originals); `None` if no thread could be started. Once the
/// artifacts are written, the thread puts the stage's row in the ledger in `runs`:
/// a run killed during a later stage then still resumes after this one.
pub(crate) fn save_in_background(
    dir: &Path,
    tables: &Tables,
    meta: &StageMeta,
    staging: &Path,
    runs: &Path,
) -> Option<Saved> {
    let (dir, mut tables, meta, staging, runs) = (
        dir.to_path_buf(),
        tables.clone(),
        meta.clone(),
        staging.to_path_buf(),
        runs.to_path_buf(),
    );
    let (row, rows) = std::sync::mpsc::channel::<StageRow>();
    let thread = std::thread::Builder::new().name("artifacts".into());
    let started = thread.spawn(move || {
        let hash = save(&dir, &mut tables, &meta, &staging, Writer::Background)?;
        // The run records the row again when it joins this thread: a failure here
        // only loses the early record.
        if let Ok(row) = rows.recv()
            && let Ok(ledger) = Ledger::open_existing(&runs)
        {
            let recorded = ledger.put_stage(&StageRow {
                content_hash: hash.clone(),
                ..row
            });
            if let Err(e) = recorded {
                tracing::debug!("stage recorded once the run joins its writer: {e}");
            }
        }
        Ok(hash)
    });
    match started {
        Ok(handle) => Some(Saved::Writing(handle, row)),
        Err(error) => {
            tracing::debug!("artifacts written in the foreground: no thread ({error})");
            None
        }
    }
}

/// Removes what killed runs' writes left in `run_dirs` (the ledger's run folders of
/// the pipeline): files named `.<name>.<pid>.userlens.tmp` ([`userlens_report::temporary_pid`])
/// of a process no longer running. The caller holds the pipeline's lock, so no other
/// run of it is writing there, and this one has not begun.
pub(crate) fn remove_stale_temporaries<'a>(run_dirs: impl IntoIterator<Item = &'a Path>) {
    fn walk(dir: &Path, depth: usize) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if kind.is_dir() && depth > 0 {
                walk(&path, depth - 1);
            } else if kind.is_file()
                && userlens_report::temporary_pid(&name)
                    .is_some_and(|pid| !crate::publish::running_elsewhere(pid))
                && let Err(e) = std::fs::remove_file(&path)
            {
                tracing::debug!(
                    "a killed run's temporary file stays: {}: {e}",
                    path.display()
                );
            }
        }
    }
    // A run folder holds stage folders, which hold a `files` folder at most.
    for dir in run_dirs {
        walk(dir, 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_runs_temporary_files_go_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let stage = dir.path().join("20260601_r1/ingest");
        let files = dir.path().join("20260601_r1/report/files");
        std::fs::create_dir_all(&stage).unwrap();
        std::fs::create_dir_all(&files).unwrap();
        let notes = dir.path().join("mynotes");
        std::fs::create_dir_all(&notes).unwrap();
        // pid 4294967295 runs nowhere; pid 1 always runs.
        let stale = [
            stage.join(".events.parquet.4294967295.userlens.tmp"),
            files.join(".personas.csv.4294967294.userlens.tmp"),
        ];
        let kept = [
            stage.join("events.parquet"),
            stage.join(".notes.tmp"),
            stage.join(".live.parquet.1.userlens.tmp"),
            stage.join(".mine.4294967295.tmp"),
            files.join("personas.csv"),
            dir.path().join("20260601_r1/.stage.x.userlens.tmp"),
            notes.join(".draft.4294967295.userlens.tmp"),
        ];
        for path in stale.iter().chain(&kept) {
            std::fs::write(path, "x").unwrap();
        }
        remove_stale_temporaries([dir.path().join("20260601_r1").as_path()]);
        assert!(stale.iter().all(|p| !p.exists()));
        // No pid, a running process's, not temporaries, or not in a run folder.
        assert!(kept.iter().all(|p| p.exists()));
    }
    use crate::record::StageStatus;

    #[test]
    fn a_stage_saved_in_the_background_is_recorded_as_soon_as_it_is_written() {
        let runs = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(runs.path()).unwrap();
        let dir = runs.path().join("p/run/ingest");
        let staging = runs.path().join("staging");
        std::fs::create_dir_all(&staging).unwrap();
        let tables = Tables {
            events: Some(Events::Memory(df!("user_id" => ["a", "b"]).unwrap())),
            ..Tables::default()
        };
        let Some(Saved::Writing(handle, recorder)) =
            save_in_background(&dir, &tables, &StageMeta::default(), &staging, ledger.dir())
        else {
            panic!("no thread");
        };
        let row = StageRow {
            run_id: "run".into(),
            stage: "ingest".into(),
            position: 0,
            status: StageStatus::Ok,
            seconds: 1.0,
            rows_in: 2,
            rows_out: 2,
            attempts: 1,
            cache_key: "k".into(),
            artifact_dir: dir.display().to_string(),
            content_hash: String::new(),
            error: None,
            engine: "local".into(),
        };
        recorder.send(row.clone()).unwrap();
        let hash = handle.join().unwrap().unwrap();
        // Recorded by the writer, before the run joins it (Saving::finish).
        assert_eq!(
            ledger.stages("run").unwrap(),
            [StageRow {
                content_hash: hash,
                ..row
            }]
        );
    }
}
