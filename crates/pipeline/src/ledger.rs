//! The run ledger: every run and stage of every pipeline, in an embedded SQLite
//! database under the runs folder.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::record::{RunStatus, StageStatus};

/// One run as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    /// Run id.
    pub run_id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// As-of date, or `latest` when derived from the data.
    pub as_of: String,
    /// How it ended (`running` while it runs, or after a kill).
    pub status: RunStatus,
    /// Start (UTC, RFC 3339).
    pub started_at: String,
    /// End (UTC, RFC 3339), if it ended.
    pub finished_at: Option<String>,
    /// Run folder.
    pub run_dir: String,
    /// Error text.
    pub error: Option<String>,
    /// What it was started with beyond the pipeline file (JSON), for `--resume`.
    pub invocation: Option<String>,
    /// The process that ran it.
    pub pid: Option<i64>,
}

impl RunRow {
    /// Its status as `runs list` shows it: a run still marked `running` whose
    /// process is gone was interrupted.
    pub fn shown_status(&self) -> RunStatus {
        let gone = self
            .pid
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        if self.status == RunStatus::Running && gone && Path::new("/proc/self").exists() {
            RunStatus::Interrupted
        } else {
            self.status
        }
    }
}

/// One stage of a run as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageRow {
    /// Run id.
    pub run_id: String,
    /// Stage name.
    pub stage: String,
    /// Position in the run order.
    pub position: i64,
    /// How it ended.
    pub status: StageStatus,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Rows into the stage.
    pub rows_in: i64,
    /// Rows out of the stage.
    pub rows_out: i64,
    /// Attempts made (retries + 1 at most).
    pub attempts: i64,
    /// Cache key of inputs, parameters and code version.
    pub cache_key: String,
    /// Folder of the stage's artifacts (possibly another run's, when skipped).
    pub artifact_dir: String,
    /// BLAKE3 of the artifacts' content.
    pub content_hash: String,
    /// Error text.
    pub error: Option<String>,
    /// Where its per-part work ran: `local` or a cluster's URL (`local` for stages
    /// recorded before engines were).
    pub engine: String,
}

/// The ledger database.
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
    /// The runs table's columns to select (`NULL` for one an older ledger lacks).
    run_columns: String,
    /// The stages table's, likewise.
    stage_columns: String,
}

/// The ledger at `path` as a file no one writes (SQLite's `immutable`), for a reader
/// that may not make the files a shared read needs beside it (a runs folder it
/// cannot write): it sees what the last run to finish left in the file.
fn open_immutable(path: &Path) -> Option<Connection> {
    let text = path.to_str()?;
    let mut uri = String::from("file:");
    for c in text.chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
        | rusqlite::OpenFlags::SQLITE_OPEN_URI
        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(uri, flags).ok()?;
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
        .ok()?;
    Some(conn)
}

fn db(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |source| Error::Ledger {
        path: path.to_path_buf(),
        source,
    }
}

/// `f` again while another process holds the database: SQLite's busy timeout does
/// not cover every lock, such as two processes making a new ledger's tables at once.
fn retry_while_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let started = std::time::Instant::now();
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            done => return done,
        }
    }
}

/// How long a ledger waits for another process's write.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Ledger {
    /// Opens (or creates) `<runs>/ledger.sqlite`.
    pub fn open(runs: &Path) -> Result<Ledger> {
        std::fs::create_dir_all(runs).map_err(|source| Error::Io {
            path: runs.to_path_buf(),
            source,
        })?;
        let path = runs.join("ledger.sqlite");
        let conn = Connection::open(&path).map_err(db(&path))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db(&path))?;
        retry_while_busy(|| {
            conn.execute_batch(
                "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS runs (
                run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, as_of TEXT NOT NULL,
                status TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT,
                run_dir TEXT NOT NULL, error TEXT);
             CREATE TABLE IF NOT EXISTS stages (
                run_id TEXT NOT NULL, stage TEXT NOT NULL, position INTEGER NOT NULL,
                status TEXT NOT NULL, seconds REAL NOT NULL, rows_in INTEGER NOT NULL,
                rows_out INTEGER NOT NULL, attempts INTEGER NOT NULL, cache_key TEXT NOT NULL,
                artifact_dir TEXT NOT NULL, content_hash TEXT NOT NULL, error TEXT,
                PRIMARY KEY (run_id, stage));
             CREATE INDEX IF NOT EXISTS stages_by_key ON stages (cache_key, status);",
            )
        })
        .map_err(db(&path))?;
        // Columns added since the first ledgers were written.
        let added = (ADDED_RUN_COLUMNS.iter().map(|c| ("runs", c)))
            .chain(ADDED_STAGE_COLUMNS.iter().map(|c| ("stages", c)));
        for (table, (column, kind)) in added {
            if !has_column(&conn, table, column).map_err(db(&path))? {
                let alter = format!("ALTER TABLE {table} ADD COLUMN {column} {kind}");
                match retry_while_busy(|| conn.execute_batch(&alter)) {
                    // Another process added it meanwhile.
                    Err(_) if has_column(&conn, table, column).map_err(db(&path))? => {}
                    added => added.map_err(db(&path))?,
                }
            }
        }
        let ledger = Ledger::with(conn, path)?;
        if let Err(e) = ledger.keep_folders_relative() {
            tracing::debug!("the ledger's folders stay as they were kept: {e}");
        }
        Ok(ledger)
    }

    /// Rewrites the folders a ledger kept as given before it kept them under its
    /// runs folder (relative to that run's working folder, or absolute) where this
    /// process finds them in the runs folder: the next move of it keeps them.
    fn keep_folders_relative(&self) -> rusqlite::Result<()> {
        // Once per ledger: those of this version on are kept so from the start.
        const KEPT_RELATIVE: i64 = 1;
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let Ok(root) = self.dir().canonicalize() else {
            return Ok(());
        };
        if version >= KEPT_RELATIVE {
            return Ok(());
        }
        let tx = self.conn.unchecked_transaction()?;
        for (table, column) in [("runs", "run_dir"), ("stages", "artifact_dir")] {
            let kept: Vec<(i64, String)> = self
                .conn
                .prepare(&format!("SELECT rowid, {column} FROM {table}"))?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (rowid, stored) in kept {
                let path = Path::new(&stored);
                let given =
                    path.is_absolute() || (path.exists() && !self.dir().join(path).exists());
                let under = (given.then(|| path.canonicalize().ok()).flatten())
                    .and_then(|found| Some(found.strip_prefix(&root).ok()?.to_path_buf()));
                if let Some(under) = under {
                    tx.execute(
                        &format!("UPDATE {table} SET {column} = ?1 WHERE rowid = ?2"),
                        params![under.display().to_string(), rowid],
                    )?;
                }
            }
        }
        tx.execute_batch(&format!("PRAGMA user_version = {KEPT_RELATIVE}"))?;
        tx.commit()
    }

    /// Opens an existing ledger to read it (and to mark a run interrupted), without
    /// creating or changing its tables: `runs list` works on a read-only ledger.
    pub fn open_existing(runs: &Path) -> Result<Ledger> {
        let path = runs.join("ledger.sqlite");
        if !path.is_file() {
            return Err(Error::Io {
                path,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        use rusqlite::OpenFlags;
        let opened = |flags: OpenFlags| {
            let conn = Connection::open_with_flags(&path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            // Opening is lazy: a first read meets what stands in the way.
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
            Ok::<_, rusqlite::Error>(conn)
        };
        let conn = opened(OpenFlags::SQLITE_OPEN_READ_WRITE)
            .or_else(|_| opened(OpenFlags::SQLITE_OPEN_READ_ONLY))
            // Only where SQLite may not make its files beside it: a ledger busy or
            // damaged is reported as such.
            .or_else(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen) => {
                    open_immutable(&path).ok_or(e)
                }
                _ => Err(e),
            })
            .map_err(db(&path))?;
        Ledger::with(conn, path)
    }

    fn with(conn: Connection, path: PathBuf) -> Result<Ledger> {
        let select = |table: &str, base: &str, added: &[(&str, &str)]| {
            let mut columns = base.to_string();
            for (column, _) in added {
                let present = has_column(&conn, table, column).map_err(db(&path))?;
                columns.push_str(if present { ", " } else { ", NULL AS " });
                columns.push_str(column);
            }
            Ok::<_, Error>(columns)
        };
        let run_columns = select("runs", BASE_RUN_COLUMNS, &ADDED_RUN_COLUMNS)?;
        let stage_columns = select("stages", BASE_STAGE_COLUMNS, &ADDED_STAGE_COLUMNS)?;
        Ok(Ledger {
            conn,
            path,
            run_columns,
            stage_columns,
        })
    }

    /// Whether the ledger has its tables: one a first run made and was killed in
    /// before writing them (the next run adds them) holds no runs.
    pub fn has_tables(&self) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT COUNT(*) = 2 FROM sqlite_master WHERE type = 'table' AND name IN ('runs', 'stages')",
                [],
                |row| row.get(0),
            )
            .map_err(db(&self.path))
    }

    /// The runs folder the ledger is in.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// A folder of the runs folder as the ledger keeps it: relative to the runs
    /// folder, which may be reached by another path the next time (another working
    /// folder, a move, a mount).
    fn stored(&self, dir: &str) -> String {
        match Path::new(dir).strip_prefix(self.dir()) {
            Ok(under) => under.display().to_string(),
            Err(_) => dir.to_string(),
        }
    }

    /// A folder the ledger keeps, as this process reaches it: under the runs folder,
    /// or as it was given where an older ledger kept it so (relative to that run's
    /// working folder, or absolute) and only that names a folder.
    fn resolved(&self, stored: String) -> String {
        let path = Path::new(&stored);
        let under = self.dir().join(path);
        match path.is_absolute() || (!under.exists() && path.exists()) {
            true => stored,
            false => under.display().to_string(),
        }
    }

    /// Records a new run unless its id is taken (by any pipeline's run); returns
    /// whether it was recorded.
    pub fn claim_run(&self, run: &RunRow) -> Result<bool> {
        Ok(self.insert_run(run, "ON CONFLICT (run_id) DO NOTHING")? == 1)
    }

    /// Records a run (insert or update).
    pub fn put_run(&self, run: &RunRow) -> Result<()> {
        let update = "ON CONFLICT (run_id) DO UPDATE SET status = ?4, finished_at = ?6, \
                      error = ?8, pid = ?10";
        self.insert_run(run, update).map(|_| ())
    }

    /// Marks the runs of `pipeline` still recorded as running as interrupted: for
    /// the holder of the pipeline's lock, no other run of it is alive, whatever
    /// process has its pid now (a reused pid, another pid namespace). Returns how
    /// many there were.
    pub fn interrupt_running(&self, pipeline: &str) -> Result<usize> {
        self.conn
            .execute(
                "UPDATE runs SET status = ?1 WHERE pipeline = ?2 AND status = ?3",
                params![
                    RunStatus::Interrupted.as_str(),
                    pipeline,
                    RunStatus::Running.as_str()
                ],
            )
            .map_err(db(&self.path))
    }

    /// Inserts `run`, `on_conflict` saying what a taken id does; returns the rows
    /// changed.
    fn insert_run(&self, run: &RunRow, on_conflict: &str) -> Result<usize> {
        self.conn
            .execute(
                &format!(
                    "INSERT INTO runs (run_id, pipeline, as_of, status, started_at, finished_at, run_dir, error, invocation, pid)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) {on_conflict}"
                ),
                params![
                    run.run_id,
                    run.pipeline,
                    run.as_of,
                    run.status.as_str(),
                    run.started_at,
                    run.finished_at,
                    self.stored(&run.run_dir),
                    run.error,
                    run.invocation,
                    run.pid
                ],
            )
            .map_err(db(&self.path))
    }

    /// Records a stage (insert or replace).
    pub fn put_stage(&self, stage: &StageRow) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO stages (run_id, stage, position, status, seconds, rows_in,
                    rows_out, attempts, cache_key, artifact_dir, content_hash, error, engine)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    stage.run_id,
                    stage.stage,
                    stage.position,
                    stage.status.as_str(),
                    stage.seconds,
                    stage.rows_in,
                    stage.rows_out,
                    stage.attempts,
                    stage.cache_key,
                    self.stored(&stage.artifact_dir),
                    stage.content_hash,
                    stage.error,
                    stage.engine
                ],
            )
            .map_err(db(&self.path))?;
        Ok(())
    }

    fn run_from(&self, row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
        Ok(RunRow {
            run_id: row.get(0)?,
            pipeline: row.get(1)?,
            as_of: row.get(2)?,
            status: status(row, 3, RunStatus::parse)?,
            started_at: row.get(4)?,
            finished_at: row.get(5)?,
            run_dir: self.resolved(row.get(6)?),
            error: row.get(7)?,
            invocation: row.get(8)?,
            pid: row.get(9)?,
        })
    }

    fn stage_from(&self, row: &rusqlite::Row<'_>) -> rusqlite::Result<StageRow> {
        Ok(StageRow {
            run_id: row.get(0)?,
            stage: row.get(1)?,
            position: row.get(2)?,
            status: status(row, 3, StageStatus::parse)?,
            seconds: row.get(4)?,
            rows_in: row.get(5)?,
            rows_out: row.get(6)?,
            attempts: row.get(7)?,
            cache_key: row.get(8)?,
            artifact_dir: self.resolved(row.get(9)?),
            content_hash: row.get(10)?,
            error: row.get(11)?,
            // Stages recorded before the column ran in the process: there were no clusters.
            engine: row
                .get::<_, Option<String>>(12)?
                .unwrap_or_else(|| crate::engine::Engine::Local.url()),
        })
    }

    /// A run by id.
    pub fn run(&self, run_id: &str) -> Result<Option<RunRow>> {
        self.conn
            .query_row(
                &format!("SELECT {} FROM runs WHERE run_id = ?1", self.run_columns),
                params![run_id],
                |row| self.run_from(row),
            )
            .optional()
            .map_err(db(&self.path))
    }

    /// Runs, newest first, optionally of one pipeline.
    pub fn runs(&self, pipeline: Option<&str>) -> Result<Vec<RunRow>> {
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM runs WHERE ?1 IS NULL OR pipeline = ?1 ORDER BY started_at DESC, rowid DESC",
                self.run_columns
            ))
            .map_err(db(&self.path))?;
        let rows = statement
            .query_map(params![pipeline], |row| self.run_from(row))
            .map_err(db(&self.path))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db(&self.path))
    }

    /// Stages of a run, in run order.
    pub fn stages(&self, run_id: &str) -> Result<Vec<StageRow>> {
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM stages WHERE run_id = ?1 ORDER BY position",
                self.stage_columns
            ))
            .map_err(db(&self.path))?;
        let rows = statement
            .query_map(params![run_id], |row| self.stage_from(row))
            .map_err(db(&self.path))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db(&self.path))
    }

    /// The newest finished stage with this cache key, whose artifacts can be reused.
    pub fn finished_stage(&self, cache_key: &str) -> Result<Option<StageRow>> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {} FROM stages WHERE cache_key = ?1 AND status IN ('ok', 'skipped')
                     ORDER BY rowid DESC LIMIT 1",
                    self.stage_columns
                ),
                params![cache_key],
                |row| self.stage_from(row),
            )
            .optional()
            .map_err(db(&self.path))
    }

    /// `(as-of label, stage, artifact folder)` of every finished stage of the
    /// pipeline's runs but `run_id`, whatever their status (a failed or interrupted
    /// run's finished stages can be reused), the newest run first.
    pub fn finished_artifacts(
        &self,
        pipeline: &str,
        run_id: &str,
    ) -> Result<Vec<(String, String, PathBuf)>> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT r.as_of, s.stage, s.artifact_dir FROM stages s
                   JOIN runs r ON r.run_id = s.run_id
                 WHERE r.pipeline = ?1 AND r.run_id <> ?2 AND s.status IN ('ok', 'skipped')
                 ORDER BY r.started_at DESC, r.rowid DESC, s.position",
            )
            .map_err(db(&self.path))?;
        let rows = statement
            .query_map(params![pipeline, run_id], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    PathBuf::from(self.resolved(row.get(2)?)),
                ))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(db(&self.path))?;
        Ok(rows)
    }

    /// The successful runs of a pipeline for as-of dates before `as_of`, the latest
    /// date first (for a run without one, `latest`, any other run, the newest
    /// first): the runs a run compares itself with. Runs of the same date, of later ones and without a date (over
    /// every event) are left out, so that a rerun of a night compares with the night
    /// before, as its first run did.
    pub fn last_ok_runs(&self, pipeline: &str, as_of: &str, limit: usize) -> Result<Vec<RunRow>> {
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM runs WHERE pipeline = ?1 AND status = 'ok'
                   AND (as_of < ?2 OR ?2 = 'latest')
                 ORDER BY CASE WHEN ?2 = 'latest' THEN '' ELSE as_of END DESC,
                   started_at DESC, rowid DESC LIMIT ?3",
                self.run_columns
            ))
            .map_err(db(&self.path))?;
        let rows = statement
            .query_map(params![pipeline, as_of, limit as i64], |row| {
                self.run_from(row)
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(db(&self.path))?;
        Ok(rows)
    }
}

const BASE_RUN_COLUMNS: &str =
    "run_id, pipeline, as_of, status, started_at, finished_at, run_dir, error";
const ADDED_RUN_COLUMNS: [(&str, &str); 2] = [("invocation", "TEXT"), ("pid", "INTEGER")];
const BASE_STAGE_COLUMNS: &str = "run_id, stage, position, status, seconds, rows_in, rows_out, attempts, cache_key, artifact_dir, content_hash, error";
const ADDED_STAGE_COLUMNS: [(&str, &str); 1] = [("engine", "TEXT")];

fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
        params![table, column],
        |row| row.get(0),
    )
}

/// A status column read back into its enum.
fn status<T>(
    row: &rusqlite::Row<'_>,
    index: usize,
    parse: fn(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            format!("unknown status {text:?}").into(),
        )
    })
}

#[cfg(test)]
mod tests;
