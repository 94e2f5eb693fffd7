//! A run abandoned by a signal after its last stage, before its publish: the last
//! good report stays whole. A test binary of its own, so that no other run of this
//! process is registered when [`userlens_pipeline::abandon`] takes one.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use userlens_pipeline::{Error, Ledger, Progress, RunOptions, RunStatus, Stopped};

/// Every file in `dir` (hidden ones too) with its bytes.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    names(dir)
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            (name, bytes)
        })
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_run_abandoned_before_its_publish_leaves_the_last_report_whole() {
    let dir = tempfile::tempdir().unwrap();
    let plan = common::toy(dir.path());
    let first = userlens_pipeline::run(&plan, &RunOptions::default(), &mut |_| {}).unwrap();
    let published = contents(&first.output_dir);
    assert!(
        published.contains_key("quarantine.csv"),
        "{:?}",
        published.keys()
    );

    // The signal lands once the last stage has finished, before the publish.
    let forced = RunOptions {
        force: true,
        ..RunOptions::default()
    };
    let mut taken = None;
    let ran = userlens_pipeline::run(&plan, &forced, &mut |event| {
        if let Progress::StageFinished { .. } = event {
            taken = Some(userlens_pipeline::abandon(15));
        }
    });
    let Some(Stopped::Run(run_id)) = taken else {
        panic!("the run was registered while its stage ran: {taken:?}");
    };
    match ran {
        Err(Error::Interrupted { run_id: id }) => assert_eq!(id, run_id),
        other => panic!("expected the run to be interrupted, got {other:?}"),
    }
    assert!(userlens_pipeline::abandoned());
    assert_eq!(contents(&first.output_dir), published);
    let left: Vec<String> = names(dir.path())
        .into_iter()
        .filter(|name| name.contains("staging"))
        .collect();
    assert!(left.is_empty(), "staging left: {left:?}");
    let ledger = Ledger::open_existing(&dir.path().join("runs")).unwrap();
    let row = ledger.run(&run_id).unwrap().unwrap();
    assert_eq!(row.status, RunStatus::Interrupted);
}
