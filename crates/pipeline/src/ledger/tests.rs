//! The ledger's tests.

use super::*;

fn run(id: &str, as_of: &str, status: RunStatus) -> RunRow {
    RunRow {
        invocation: None,
        pid: None,
        run_id: id.into(),
        pipeline: "p".into(),
        as_of: as_of.into(),
        status,
        started_at: format!("2026-01-01T00:00:0{}Z", id.len()),
        finished_at: None,
        run_dir: format!("runs/p/{id}"),
        error: None,
    }
}

#[test]
fn runs_of_two_pipelines_started_in_the_same_second_get_ids_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let started = chrono::DateTime::parse_from_rfc3339("2026-06-01T02:30:00Z")
        .unwrap()
        .to_utc();
    let mut ids = Vec::new();
    for pipeline in ["nightly", "nightly2"] {
        let mut row = run("", "2026-06-01", RunStatus::Running);
        row.pipeline = pipeline.into();
        let root = dir.path().join(pipeline);
        let (id, folder) = crate::keys::new_run_dir(&root, "2026-06-01", started, |id, _| {
            row.run_id = id.into();
            ledger.claim_run(&row)
        })
        .unwrap();
        assert!(folder.is_dir());
        ids.push(id);
    }
    assert_eq!(
        ids,
        [
            "2026-06-01_20260601T023000Z",
            "2026-06-01_20260601T023000Z-1"
        ]
    );
    // The id the second pipeline could not take left no folder behind.
    assert!(!dir.path().join("nightly2").join(&ids[0]).exists());
    assert_eq!(ledger.run(&ids[0]).unwrap().unwrap().pipeline, "nightly");
    assert_eq!(ledger.run(&ids[1]).unwrap().unwrap().pipeline, "nightly2");
}

#[test]
fn records_and_finds_runs_and_stages() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    ledger
        .put_run(&run("a", "2026-01-01", RunStatus::Ok))
        .unwrap();
    ledger
        .put_run(&run("bb", "2026-01-02", RunStatus::Failed))
        .unwrap();
    ledger
        .put_run(&run("ccc", "2026-01-03", RunStatus::Ok))
        .unwrap();
    let mut updated = run("bb", "2026-01-02", RunStatus::Ok);
    updated.finished_at = Some("later".into());
    ledger.put_run(&updated).unwrap();
    assert_eq!(ledger.run("bb").unwrap().unwrap().status, RunStatus::Ok);
    assert_eq!(ledger.runs(Some("p")).unwrap().len(), 3);
    assert_eq!(ledger.runs(Some("q")).unwrap().len(), 0);
    let ids = |as_of: &str| -> Vec<String> {
        let runs = ledger.last_ok_runs("p", as_of, 9).unwrap();
        runs.into_iter().map(|r| r.run_id).collect()
    };
    // Earlier dates only: not the run of the same date (a rerun), nor later ones.
    assert_eq!(ids("2026-01-02"), ["a"]);
    assert_eq!(ids("2026-01-09"), ["ccc", "bb", "a"]);
    assert!(ids("2025-12-31").is_empty());
    // A run without a date saw every event: no dated run compares with it.
    ledger
        .put_run(&run("dddd", "latest", RunStatus::Ok))
        .unwrap();
    assert_eq!(ids("2026-01-09"), ["ccc", "bb", "a"]);
    assert_eq!(ids("latest"), ["dddd", "ccc", "bb", "a"]);
    // A later dated run is newer than the undated one: an undated run takes it.
    let mut newest = run("eeeee", "2026-01-01", RunStatus::Ok);
    newest.started_at = "2026-01-01T00:00:09Z".into();
    ledger.put_run(&newest).unwrap();
    assert_eq!(ids("latest")[0], "eeeee");
    // Of runs started in one second, the one recorded last is the newest.
    let mut same = run("0000", "2026-01-01", RunStatus::Ok);
    same.started_at = "2026-01-01T00:00:09Z".into();
    ledger.put_run(&same).unwrap();
    assert_eq!(ids("latest")[0], "0000");

    let stage = StageRow {
        run_id: "a".into(),
        stage: "ingest".into(),
        position: 0,
        status: StageStatus::Ok,
        seconds: 1.5,
        rows_in: 10,
        rows_out: 9,
        attempts: 1,
        cache_key: "k1".into(),
        artifact_dir: dir.path().join("p/a/ingest").display().to_string(),
        content_hash: "h".into(),
        error: None,
        engine: "ballista://h:50050".into(),
    };
    ledger.put_stage(&stage).unwrap();
    assert_eq!(ledger.finished_stage("k1").unwrap(), Some(stage.clone()));
    assert_eq!(ledger.finished_stage("k2").unwrap(), None);
    assert_eq!(ledger.stages("a").unwrap(), [stage]);
    // Kept under the runs folder, whatever path reached it.
    let kept: String = (ledger.conn)
        .query_row("SELECT artifact_dir FROM stages", [], |row| row.get(0))
        .unwrap();
    assert_eq!(kept, "p/a/ingest");
    // As a ledger before that kept it (absolute): rewritten when next opened, so
    // that the runs folder may move.
    let made = dir.path().join("p/a/ingest");
    std::fs::create_dir_all(&made).unwrap();
    (ledger.conn)
        .execute(
            "UPDATE stages SET artifact_dir = ?1",
            [made.display().to_string()],
        )
        .unwrap();
    ledger
        .conn
        .execute_batch("PRAGMA user_version = 0")
        .unwrap();
    drop(ledger);
    let ledger = Ledger::open(dir.path()).unwrap();
    let kept: String = (ledger.conn)
        .query_row("SELECT artifact_dir FROM stages", [], |row| row.get(0))
        .unwrap();
    assert_eq!(kept, "p/a/ingest");
    drop(ledger);
    let moved = tempfile::tempdir().unwrap();
    let root = moved.path().join("runs");
    std::fs::rename(dir.path(), &root).unwrap();
    let stages = Ledger::open_existing(&root).unwrap().stages("a").unwrap();
    assert_eq!(Path::new(&stages[0].artifact_dir), root.join("p/a/ingest"));
    assert!(Path::new(&stages[0].artifact_dir).is_dir());
}

#[test]
fn an_older_ledger_is_read_without_being_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE runs (run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, as_of TEXT NOT NULL,
            status TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT,
            run_dir TEXT NOT NULL, error TEXT);
         CREATE TABLE stages (run_id TEXT NOT NULL, stage TEXT NOT NULL, position INTEGER NOT NULL,
            status TEXT NOT NULL, seconds REAL NOT NULL, rows_in INTEGER NOT NULL,
            rows_out INTEGER NOT NULL, attempts INTEGER NOT NULL, cache_key TEXT NOT NULL,
            artifact_dir TEXT NOT NULL, content_hash TEXT NOT NULL, error TEXT,
            PRIMARY KEY (run_id, stage));
         INSERT INTO runs VALUES ('r1', 'p', '2026-01-01', 'running', '2026-01-01T00:00:00Z',
            NULL, 'runs/p/r1', NULL);
         INSERT INTO stages VALUES ('r1', 'ingest', 0, 'ok', 1.0, 5, 5, 1, 'k', 'runs/p/r1/ingest',
            'h', NULL);",
    )
    .unwrap();
    drop(conn);
    let before = std::fs::read(&path).unwrap();
    let ledger = Ledger::open_existing(dir.path()).unwrap();
    let runs = ledger.runs(None).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Running);
    assert_eq!(runs[0].pid, None, "no pid column: not known");
    assert_eq!(runs[0].shown_status(), RunStatus::Running);
    let dead = RunRow {
        pid: Some(i64::from(i32::MAX)),
        ..runs[0].clone()
    };
    assert_eq!(dead.shown_status(), RunStatus::Interrupted);
    let alive = RunRow {
        pid: Some(i64::from(std::process::id())),
        ..runs[0].clone()
    };
    assert_eq!(alive.shown_status(), RunStatus::Running);
    let stages = ledger.stages("r1").unwrap();
    assert_eq!(stages[0].engine, "local", "no engine column: it ran here");
    drop(ledger);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "reading wrote nothing"
    );
    assert!(Ledger::open_existing(&dir.path().join("none")).is_err());

    // Opened to run, it gains the new columns and keeps its rows.
    let ledger = Ledger::open(dir.path()).unwrap();
    let mut stage = ledger.stages("r1").unwrap().remove(0);
    assert_eq!(stage.engine, "local");
    stage.engine = "ballista://h:1".into();
    ledger.put_stage(&stage).unwrap();
    assert_eq!(ledger.stages("r1").unwrap(), [stage]);
    // The holder of the pipeline's lock marks its runs still "running" as killed.
    assert_eq!(ledger.interrupt_running("other").unwrap(), 0);
    assert_eq!(ledger.interrupt_running("p").unwrap(), 1);
    let run = ledger.run("r1").unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Interrupted);
    assert!(run.status.resumable());
}

#[test]
fn a_ledger_reads_as_an_immutable_file_whatever_its_path() {
    // What `open_existing` falls back on where it cannot make SQLite's shared
    // files beside the ledger (a runs folder the reader may not write).
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs 100% ?#");
    let ledger = Ledger::open(&runs).unwrap();
    let run = RunRow {
        run_id: "r1".into(),
        pipeline: "p".into(),
        as_of: "2026-01-01".into(),
        status: RunStatus::Ok,
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: None,
        run_dir: runs.join("p/r1").display().to_string(),
        error: None,
        invocation: None,
        pid: None,
    };
    ledger.claim_run(&run).unwrap();
    drop(ledger);
    let conn = open_immutable(&runs.join("ledger.sqlite")).unwrap();
    let read = Ledger::with(conn, runs.join("ledger.sqlite")).unwrap();
    assert_eq!(read.runs(None).unwrap(), [run]);
    assert!(open_immutable(&dir.path().join("none.sqlite")).is_none());
}
