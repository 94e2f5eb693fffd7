//! A one-stage toy pipeline over three events, for the tests of signals.

use std::path::Path;

use userlens_pipeline::{Plan, load_str};

const EVENTS: &str = "user_id,event_time,event_type,session_id,item_id,category,query,amount,rating
a,2026-01-01 10:00:00,view,,i1,books,,,
a,2026-01-02 10:00:00,purchase,,i1,books,,12.5,
b,2026-01-01 11:00:00,view,,i2,garden,,,
";

/// The events in `dir` and a pipeline that ingests them, publishing to `dir/out`
/// with its runs under `dir/runs`.
pub fn toy(dir: &Path) -> Plan {
    std::fs::write(dir.join("events.csv"), EVENTS).unwrap();
    let text = format!(
        "[pipeline]\nname = \"toy\"\noutput = \"{out}\"\nruns = \"{runs}\"\n\n\
         [stages.ingest]\nuses = \"ingest\"\nwith = {{ path = \"{events}\" }}\n",
        out = dir.join("out").display(),
        runs = dir.join("runs").display(),
        events = dir.join("events.csv").display(),
    );
    load_str(Path::new("toy.toml"), &text, &[]).unwrap()
}
