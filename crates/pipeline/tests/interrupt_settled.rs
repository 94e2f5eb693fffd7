//! A signal that comes once a run is published and recorded: the run stands, and
//! no other run of the process starts. A test binary of its own, as the signal
//! stays for the life of the process.

mod common;

use userlens_pipeline::{Error, Ledger, RunOptions, RunStatus, Stopped};

#[test]
fn a_signal_after_the_publish_lets_the_run_stand_and_starts_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let plan = common::toy(dir.path());
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
