//! The run ledger: every run and stage of every pipeline, in an embedded SQLite
//! database under the runs folder.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::error::{Error, Result};

/// One run as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    /// Run id.
    pub run_id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// As-of date, or `latest` when derived from the data.
    pub as_of: String,
    /// `running`, `ok`, `failed` or `refused` (`running` after a kill).
    pub status: String,
    /// Start (UTC, RFC 3339).
    pub started_at: String,
    /// End (UTC, RFC 3339), if it ended.
    pub finished_at: Option<String>,
    /// Run folder.
    pub run_dir: String,
    /// Error text.
    pub error: Option<String>,
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
    /// `ok`, `skipped`, `failed`.
    pub status: String,
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
}

/// The ledger database.
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
}

fn db(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |source| Error::Ledger {
        path: path.to_path_buf(),
        source,
    }
}

impl Ledger {
    /// Opens (or creates) `<runs>/ledger.sqlite`.
    pub fn open(runs: &Path) -> Result<Ledger> {
        std::fs::create_dir_all(runs).map_err(|source| Error::Io {
            path: runs.to_path_buf(),
            source,
        })?;
        let path = runs.join("ledger.sqlite");
        let conn = Connection::open(&path).map_err(db(&path))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db(&path))?;
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
        .map_err(db(&path))?;
        Ok(Ledger { conn, path })
    }

    /// Records a run (insert or update).
    pub fn put_run(&self, run: &RunRow) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO runs (run_id, pipeline, as_of, status, started_at, finished_at, run_dir, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (run_id) DO UPDATE SET status = ?4, finished_at = ?6, error = ?8",
                params![
                    run.run_id,
                    run.pipeline,
                    run.as_of,
                    run.status,
                    run.started_at,
                    run.finished_at,
                    run.run_dir,
                    run.error
                ],
            )
            .map_err(db(&self.path))?;
        Ok(())
    }

    /// Records a stage (insert or replace).
    pub fn put_stage(&self, stage: &StageRow) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO stages (run_id, stage, position, status, seconds, rows_in,
                    rows_out, attempts, cache_key, artifact_dir, content_hash, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    stage.run_id,
                    stage.stage,
                    stage.position,
                    stage.status,
                    stage.seconds,
                    stage.rows_in,
                    stage.rows_out,
                    stage.attempts,
                    stage.cache_key,
                    stage.artifact_dir,
                    stage.content_hash,
                    stage.error
                ],
            )
            .map_err(db(&self.path))?;
        Ok(())
    }

    fn run_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
        Ok(RunRow {
            run_id: row.get(0)?,
            pipeline: row.get(1)?,
            as_of: row.get(2)?,
            status: row.get(3)?,
            started_at: row.get(4)?,
            finished_at: row.get(5)?,
            run_dir: row.get(6)?,
            error: row.get(7)?,
        })
    }

    fn stage_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<StageRow> {
        Ok(StageRow {
            run_id: row.get(0)?,
            stage: row.get(1)?,
            position: row.get(2)?,
            status: row.get(3)?,
            seconds: row.get(4)?,
            rows_in: row.get(5)?,
            rows_out: row.get(6)?,
            attempts: row.get(7)?,
            cache_key: row.get(8)?,
            artifact_dir: row.get(9)?,
            content_hash: row.get(10)?,
            error: row.get(11)?,
        })
    }

    const RUN_COLUMNS: &'static str =
        "run_id, pipeline, as_of, status, started_at, finished_at, run_dir, error";
    const STAGE_COLUMNS: &'static str = "run_id, stage, position, status, seconds, rows_in, rows_out, attempts, cache_key, artifact_dir, content_hash, error";

    /// A run by id.
    pub fn run(&self, run_id: &str) -> Result<Option<RunRow>> {
        self.conn
            .query_row(
                &format!("SELECT {} FROM runs WHERE run_id = ?1", Self::RUN_COLUMNS),
                params![run_id],
                Self::run_from,
            )
            .optional()
            .map_err(db(&self.path))
    }

    /// Runs, newest first, optionally of one pipeline.
    pub fn runs(&self, pipeline: Option<&str>) -> Result<Vec<RunRow>> {
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM runs WHERE ?1 IS NULL OR pipeline = ?1 ORDER BY started_at DESC, run_id DESC",
                Self::RUN_COLUMNS
            ))
            .map_err(db(&self.path))?;
        let rows = statement
            .query_map(params![pipeline], Self::run_from)
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
                Self::STAGE_COLUMNS
            ))
            .map_err(db(&self.path))?;
        let rows = statement
            .query_map(params![run_id], Self::stage_from)
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
                    Self::STAGE_COLUMNS
                ),
                params![cache_key],
                Self::stage_from,
            )
            .optional()
            .map_err(db(&self.path))
    }

    /// The newest successful run of a pipeline other than `except`, preferring runs
    /// whose as-of date is not after `as_of`.
    pub fn last_ok_run(&self, pipeline: &str, as_of: &str, except: &str) -> Result<Option<RunRow>> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {} FROM runs WHERE pipeline = ?1 AND status = 'ok' AND run_id != ?3
                     ORDER BY (as_of <= ?2 OR as_of = 'latest' OR ?2 = 'latest') DESC, as_of DESC, started_at DESC, run_id DESC LIMIT 1",
                    Self::RUN_COLUMNS
                ),
                params![pipeline, as_of, except],
                Self::run_from,
            )
            .optional()
            .map_err(db(&self.path))
    }

    /// A successful run of a pipeline for an as-of date, if there is one.
    pub fn done_for(&self, pipeline: &str, as_of: &str) -> Result<Option<RunRow>> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {} FROM runs WHERE pipeline = ?1 AND as_of = ?2 AND status = 'ok'
                     ORDER BY started_at DESC LIMIT 1",
                    Self::RUN_COLUMNS
                ),
                params![pipeline, as_of],
                Self::run_from,
            )
            .optional()
            .map_err(db(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, as_of: &str, status: &str) -> RunRow {
        RunRow {
            run_id: id.into(),
            pipeline: "p".into(),
            as_of: as_of.into(),
            status: status.into(),
            started_at: format!("2026-01-01T00:00:0{}Z", id.len()),
            finished_at: None,
            run_dir: format!("runs/p/{id}"),
            error: None,
        }
    }

    #[test]
    fn records_and_finds_runs_and_stages() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        ledger.put_run(&run("a", "2026-01-01", "ok")).unwrap();
        ledger.put_run(&run("bb", "2026-01-02", "failed")).unwrap();
        ledger.put_run(&run("ccc", "2026-01-03", "ok")).unwrap();
        let mut updated = run("bb", "2026-01-02", "ok");
        updated.finished_at = Some("later".into());
        ledger.put_run(&updated).unwrap();
        assert_eq!(ledger.run("bb").unwrap().unwrap().status, "ok");
        assert_eq!(ledger.runs(Some("p")).unwrap().len(), 3);
        assert_eq!(ledger.runs(Some("q")).unwrap().len(), 0);
        assert_eq!(
            ledger
                .last_ok_run("p", "2026-01-02", "bb")
                .unwrap()
                .unwrap()
                .run_id,
            "a"
        );
        assert_eq!(
            ledger
                .last_ok_run("p", "2026-01-09", "x")
                .unwrap()
                .unwrap()
                .run_id,
            "ccc"
        );
        assert!(ledger.done_for("p", "2026-01-03").unwrap().is_some());
        assert!(ledger.done_for("p", "2026-01-04").unwrap().is_none());

        let stage = StageRow {
            run_id: "a".into(),
            stage: "ingest".into(),
            position: 0,
            status: "ok".into(),
            seconds: 1.5,
            rows_in: 10,
            rows_out: 9,
            attempts: 1,
            cache_key: "k1".into(),
            artifact_dir: "runs/p/a/ingest".into(),
            content_hash: "h".into(),
            error: None,
        };
        ledger.put_stage(&stage).unwrap();
        assert_eq!(ledger.finished_stage("k1").unwrap(), Some(stage.clone()));
        assert_eq!(ledger.finished_stage("k2").unwrap(), None);
        assert_eq!(ledger.stages("a").unwrap(), [stage]);
    }
}
