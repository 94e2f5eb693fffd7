//! A signal that comes once a run is published and recorded: the run stands, and
//! no other run of the process starts. A test binary of its own, as the signal
//! stays for the life of the process.

use std::path::Path;

use userlens_pipeline::{Error, Ledger, RunOptions, RunStatus, Stopped, load_str};

const EVENTS: &str = "user_id,event_time,event_type,session_id,item_id,category,query,amount,rating
a,2026-01-01 10:00:00,view,,i1,books,,,
a,2026-01-02 10:00:00,purchase,,i1,books,,12.5,
b,2026-01-01 11:00:00,view,,i2,garden,,,
";

#[test]
fn a_signal_after_the_publish_lets_the_run_stand_and_starts_no_other() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.csv"), EVENTS).unwrap();
    let text = format!(
        "[pipeline]\nname = \"toy\"\noutput = \"{out}\"\nruns = \"{runs}\"\n\n\
         [stages.ingest]\nuses = \"ingest\"\nwith = {{ path = \"{events}\" }}\n",
        out = dir.path().join("out").display(),
        runs = dir.path().join("runs").display(),
        events = dir.path().join("events.csv").display(),
    );
    let plan = load_str(Path::new("toy.toml"), &text, &[]).unwrap();
    assert_eq!(userlens_pipeline::abandon(2), Stopped::Idle);
    assert_eq!(userlens_pipeline::stop_requested(), None);
    let done = userlens_pipeline::run(&plan, &RunOptions::default(), &mut |_| {}).unwrap();

    assert_eq!(userlens_pipeline::abandon(15), Stopped::Finished);
    assert!(!userlens_pipeline::abandoned());
    assert_eq!(userlens_pipeline::stop_requested(), Some(15));
    let ledger = Ledger::open_existing(&dir.path().join("runs")).unwrap();
    let row = ledger.run(&done.record.run_id).unwrap().unwrap();
    assert_eq!(row.status, RunStatus::Ok);

    let forced = RunOptions {
        force: true,
        ..RunOptions::default()
    };
    let next = userlens_pipeline::run(&plan, &forced, &mut |_| {});
    assert!(
        matches!(next, Err(Error::Stopped { signal: 15 })),
        "{next:?}"
    );
    assert_eq!(ledger.runs(None).unwrap().len(), 1, "no run was claimed");
}
