//! A stage kind added through the registry alone: no edit of the planner or the
//! runner. It counts each user's events and fails while a gate file is missing, so
//! the same toy serves the resume test.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use polars::prelude::*;
use serde::Deserialize;
use userlens_pipeline::{
    Declared, Inputs, Invalid, Output, Override, Registry, RunOptions, RunStatus, Stage,
    StageContext, StageError, Tables, load_str_with,
};

/// Counts events per user; fails until `gate` exists.
struct CountEvents;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CountParams {
    /// Users with fewer events are left out.
    min_events: u32,
    /// A file that must exist for the stage to succeed.
    gate: Option<PathBuf>,
    /// Writes the counts a user at a time rather than as one table.
    #[serde(default)]
    in_blocks: bool,
}

impl Stage for CountEvents {
    type Params = CountParams;
    type Checked = CountParams;
    const USES: &'static str = "count_events";
    const PROVIDES: &'static [&'static str] = &["event_counts"];
    const REQUIRES: &'static [&'static str] = &["events"];

    fn check(params: CountParams, _: &Declared) -> Result<CountParams, Invalid> {
        if params.min_events == 0 {
            return Err(Invalid::new("`min_events` must be at least 1"));
        }
        Ok(params)
    }

    fn run(
        params: &CountParams,
        ctx: &mut StageContext<'_>,
        inputs: &Inputs<'_>,
    ) -> Result<Output, StageError> {
        if let Some(gate) = &params.gate
            && !gate.exists()
        {
            return Err(StageError::Failed(
                format!("`{}` is not there yet", gate.display()).into(),
            ));
        }
        let parts = inputs.events()?.parts()?;
        let counts = concat(parts, UnionArgs::default())?
            .group_by([col("user_id")])
            .agg([len().cast(DataType::UInt64).alias("events")])
            .filter(col("events").gt_eq(lit(u64::from(params.min_events))))
            .sort(["user_id"], SortMultipleOptions::default())
            .collect()?;
        let mut tables = Tables::default();
        if params.in_blocks {
            let written = ctx.write_blocks(
                Some("event_counts.csv"),
                "event_counts",
                counts.schema(),
                |blocks| {
                    for row in 0..counts.height() {
                        blocks
                            .write(counts.slice(row as i64, 1))
                            .map_err(|e| StageError::Failed(e.into()))?;
                    }
                    Ok(())
                },
            )?;
            tables.insert_written("event_counts", written);
        } else {
            ctx.write_csv("event_counts.csv", &counts)?;
            tables.insert("event_counts", counts);
        }
        Ok(Output {
            tables,
            ..Output::default()
        })
    }
}

const EVENTS: &str = "user_id,event_time,event_type,session_id,item_id,category,query,amount,rating
a,2026-01-01 10:00:00,view,,i1,books,,,
a,2026-01-02 10:00:00,purchase,,i1,books,,12.5,
b,2026-01-01 11:00:00,view,,i2,garden,,,
c,2026-01-03 09:00:00,view,,i3,books,,,
c,2026-01-03 09:05:00,view,,i4,books,,,
c,2026-01-04 09:00:00,purchase,,i4,books,,30,
";

fn pipeline(dir: &Path) -> String {
    format!(
        r#"
[pipeline]
name = "toy"
output = "{out}"
runs = "{runs}"

[stages.ingest]
uses = "ingest"
with = {{ path = "{events}" }}

[stages.counts]
uses = "count_events"
needs = ["ingest"]
with = {{ min_events = 2, gate = "{gate}" }}
"#,
        out = dir.join("out").display(),
        runs = dir.join("runs").display(),
        events = dir.join("events.csv").display(),
        gate = dir.join("gate").display(),
    )
}

fn registry() -> Registry {
    Registry::builtin()
        .with::<CountEvents>()
        .with::<SumCounts>()
}

/// Sums the `event_counts` of the stage it needs.
struct SumCounts;

impl Stage for SumCounts {
    type Params = toml::Table;
    type Checked = toml::Table;
    const USES: &'static str = "sum_counts";
    const PROVIDES: &'static [&'static str] = &["total"];
    const REQUIRES: &'static [&'static str] = &["event_counts"];

    fn check(params: toml::Table, _: &Declared) -> Result<toml::Table, Invalid> {
        Ok(params)
    }

    fn table_columns(_: &toml::Table, table: &str) -> Option<&'static [&'static str]> {
        (table == "event_counts").then_some(&["events"])
    }

    fn run(
        _: &toml::Table,
        ctx: &mut StageContext<'_>,
        inputs: &Inputs<'_>,
    ) -> Result<Output, StageError> {
        let counts = inputs.table("event_counts")?;
        let seen = counts
            .get_column_names()
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let total = counts
            .clone()
            .lazy()
            .select([
                col("events").sum().alias("events"),
                lit(seen).alias("columns"),
            ])
            .collect()?;
        ctx.write_csv("total.csv", &total)?;
        let mut tables = Tables::default();
        tables.insert("total", total);
        Ok(Output {
            tables,
            ..Output::default()
        })
    }
}

#[test]
fn a_table_written_in_blocks_is_published_and_read_by_the_stages_after() {
    // Written in blocks or held whole; read by the next stage, or by one after a
    // stage that does not need it (the run reads it back from the artifact then).
    for (in_blocks, between) in [(true, false), (false, false), (true, true), (false, true)] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("events.csv"), EVENTS).unwrap();
        std::fs::write(dir.path().join("gate"), "").unwrap();
        let mut text = pipeline(dir.path()).replace(
            "min_events = 2,",
            &format!("min_events = 2, in_blocks = {in_blocks},"),
        );
        if between {
            text += "\n[stages.between]\nuses = \"reads_all\"\nneeds = [\"ingest\"]\n";
        }
        text += "\n[stages.total]\nuses = \"sum_counts\"\nneeds = [\"counts\"]\n";
        let registry = registry().with::<Reads<false>>();
        let plan = load_str_with(&registry, Path::new("toy.toml"), &text, &[]).unwrap();
        let summary = userlens_pipeline::run(&plan, &RunOptions::default(), &mut |_| {}).unwrap();
        assert_eq!(summary.record.status, RunStatus::Ok);
        let read = |file: &str| std::fs::read_to_string(summary.output_dir.join(file)).unwrap();
        assert_eq!(read("event_counts.csv"), "user_id,events\na,2\nc,3\n");
        // The stage after reads only the column it declared: the run kept no other.
        assert_eq!(
            read("total.csv"),
            "events,columns\n5,events\n",
            "{in_blocks} {between}"
        );
        let counts = summary
            .record
            .stages
            .iter()
            .find(|s| s.name == "counts")
            .unwrap();
        assert_eq!(counts.rows_out, 2);
    }
}

#[test]
fn a_stage_kind_added_through_the_registry_runs_in_a_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.csv"), EVENTS).unwrap();
    std::fs::write(dir.path().join("gate"), "").unwrap();
    let text = pipeline(dir.path());
    let plan = load_str_with(&registry(), Path::new("toy.toml"), &text, &[]).unwrap();
    assert_eq!(plan.stages[1].uses(), "count_events");
    // The binary's hook that hands freed memory back runs twice a stage: when it
    // returns and when the tables no later stage needs are let go.
    static RELEASED: AtomicUsize = AtomicUsize::new(0);
    let options = RunOptions {
        release_memory: Some(|| {
            RELEASED.fetch_add(1, Ordering::SeqCst);
        }),
        ..RunOptions::default()
    };
    let summary = userlens_pipeline::run(&plan, &options, &mut |_| {}).unwrap();
    assert_eq!(summary.record.status, RunStatus::Ok);
    assert_eq!(RELEASED.load(Ordering::SeqCst), 2 * plan.stages.len());
    let published = std::fs::read_to_string(summary.output_dir.join("event_counts.csv")).unwrap();
    assert_eq!(published, "user_id,events\na,2\nc,3\n");

    // Its parameters are checked like a built-in kind's, with the file's line.
    let bad = text.replace("min_events = 2", "min_events = 0");
    let err = load_str_with(&registry(), Path::new("toy.toml"), &bad, &[]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("toy.toml:14:10: stage `counts`: `min_events` must be at least 1"),
        "{err}"
    );
    // Without the registry entry the kind is unknown.
    let err = userlens_pipeline::load_str(Path::new("toy.toml"), &text, &[]).unwrap_err();
    assert!(
        err.to_string()
            .contains("uses `count_events`, which is not a stage kind")
    );
}

#[test]
fn a_resumed_run_publishes_where_the_original_would_have() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.csv"), EVENTS).unwrap();
    let text = pipeline(dir.path());
    let set = [Override::parse("counts.min_events=3").unwrap()];
    let plan = load_str_with(&registry(), Path::new("toy.toml"), &text, &set).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    let options = RunOptions {
        output: Some(elsewhere.clone()),
        ..RunOptions::default()
    };
    let err = userlens_pipeline::run(&plan, &options, &mut |_| {}).unwrap_err();
    assert!(format!("{err:?}").contains("is not there yet"), "{err:?}");
    let ledger = userlens_pipeline::Ledger::open(&dir.path().join("runs")).unwrap();
    let failed = ledger.runs(Some("toy")).unwrap().remove(0);
    assert_eq!(failed.status, RunStatus::Failed);

    // Other options than the run's own are refused, not silently mixed.
    let plain = load_str_with(&registry(), Path::new("toy.toml"), &text, &[]).unwrap();
    let other = RunOptions {
        resume: Some(failed.run_id.clone()),
        output: Some(dir.path().join("third")),
        ..RunOptions::default()
    };
    let err = userlens_pipeline::run(&plain, &other, &mut |_| {}).unwrap_err();
    // Named beside the run's own of that option alone.
    assert!(
        err.to_string().contains("was started with `--out ")
            && err.to_string().contains("elsewhere`, not `--out "),
        "{err}"
    );

    // Resumed with neither the override nor the output folder on its command line.
    std::fs::write(dir.path().join("gate"), "").unwrap();
    let resume = RunOptions {
        resume: Some(failed.run_id.clone()),
        ..RunOptions::default()
    };
    let summary = userlens_pipeline::run(&plain, &resume, &mut |_| {}).unwrap();
    assert_eq!(summary.output_dir, elsewhere);
    assert!(
        !dir.path().join("out").exists(),
        "nothing in the default folder"
    );
    assert!(!dir.path().join("third").exists());
    let published = std::fs::read_to_string(elsewhere.join("event_counts.csv")).unwrap();
    assert_eq!(published, "user_id,events\nc,3\n", "the override holds");
}

/// Writes `<stage name>.csv`: the event columns the stage was given, and whether the
/// run handed the events over (no other copy left once taken).
fn probe(ctx: &mut StageContext<'_>, inputs: &Inputs<'_>) -> Result<Output, StageError> {
    let events = inputs.take_events()?;
    let handed_over = inputs.events().is_err();
    let schema = events.parts()?[0].collect_schema()?;
    let columns: Vec<&str> = schema.iter_names().map(|n| n.as_str()).collect();
    let table = df!(
        "columns" => [columns.join(" ")],
        "handed_over" => [handed_over],
    )?;
    let file = format!("{}.csv", ctx.name());
    ctx.write_csv(&file, &table)?;
    Ok(Output::default())
}

/// A probe stage: reads every event column, or with `TWO` only two of them.
struct Reads<const TWO: bool>;

impl<const TWO: bool> Stage for Reads<TWO> {
    type Params = toml::Table;
    type Checked = toml::Table;
    const USES: &'static str = if TWO { "reads_two" } else { "reads_all" };
    const PROVIDES: &'static [&'static str] = &[];
    const REQUIRES: &'static [&'static str] = &["events"];

    fn check(params: toml::Table, _: &Declared) -> Result<toml::Table, Invalid> {
        Ok(params)
    }

    fn event_columns(_: &toml::Table) -> Option<&'static [&'static str]> {
        TWO.then_some(&["user_id", "event_type"])
    }

    fn run(
        _: &toml::Table,
        ctx: &mut StageContext<'_>,
        inputs: &Inputs<'_>,
    ) -> Result<Output, StageError> {
        probe(ctx, inputs)
    }
}

#[test]
fn events_are_freed_as_the_stages_after_stop_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.csv"), EVENTS).unwrap();
    let text = |retries: u32| {
        format!(
            r#"
[pipeline]
name = "probes"
output = "{out}"
runs = "{runs}"

[stages.ingest]
uses = "ingest"
with = {{ path = "{events}" }}

[stages.first]
uses = "reads_all"
needs = ["ingest"]

[stages.second]
uses = "reads_two"
needs = ["ingest", "first"]
retries = {retries}
"#,
            out = dir.path().join(format!("out{retries}")).display(),
            runs = dir.path().join("runs").display(),
            events = dir.path().join("events.csv").display(),
        )
    };
    let registry = Registry::builtin()
        .with::<Reads<false>>()
        .with::<Reads<true>>();
    let probed = |retries: u32, stage: &str| {
        let plan = load_str_with(&registry, Path::new("p.toml"), &text(retries), &[]).unwrap();
        let options = RunOptions {
            force: true,
            ..RunOptions::default()
        };
        let summary = userlens_pipeline::run(&plan, &options, &mut |_| {}).unwrap();
        assert_eq!(summary.record.status, RunStatus::Ok);
        std::fs::read_to_string(summary.output_dir.join(format!("{stage}.csv"))).unwrap()
    };
    // A later stage reads the events: the first gets a copy of every column.
    let all = "user_id event_time event_type session_id item_id category query amount rating";
    assert_eq!(
        probed(0, "first"),
        format!("columns,handed_over\n{all},false\n")
    );
    // The last reader gets only its columns, and the only copy of them.
    assert_eq!(
        probed(0, "second"),
        "columns,handed_over\nuser_id event_type,true\n"
    );
    // A stage that may be retried needs them again: the run keeps its copy.
    assert_eq!(
        probed(1, "second"),
        "columns,handed_over\nuser_id event_type,false\n"
    );
}

/// Needs the counts but reads none of their tables; writes whether `event_counts`
/// was in memory while it ran.
struct ReadsNoCounts;

impl Stage for ReadsNoCounts {
    type Params = toml::Table;
    type Checked = toml::Table;
    const USES: &'static str = "reads_no_counts";
    const PROVIDES: &'static [&'static str] = &[];
    const REQUIRES: &'static [&'static str] = &["event_counts"];

    fn check(params: toml::Table, _: &Declared) -> Result<toml::Table, Invalid> {
        Ok(params)
    }

    fn table_columns(_: &toml::Table, _: &str) -> Option<&'static [&'static str]> {
        Some(&[])
    }

    fn run(
        _: &toml::Table,
        ctx: &mut StageContext<'_>,
        inputs: &Inputs<'_>,
    ) -> Result<Output, StageError> {
        let table = df!("in_memory" => [inputs.get("event_counts").is_some()])?;
        ctx.write_csv("blind.csv", &table)?;
        Ok(Output::default())
    }
}

#[test]
fn a_table_waits_on_disk_through_a_stage_that_needs_its_stage_but_not_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.csv"), EVENTS).unwrap();
    std::fs::write(dir.path().join("gate"), "").unwrap();
    let text = pipeline(dir.path())
        + "\n[stages.blind]\nuses = \"reads_no_counts\"\nneeds = [\"counts\"]\n"
        + "\n[stages.total]\nuses = \"sum_counts\"\nneeds = [\"counts\", \"blind\"]\n";
    let registry = registry().with::<ReadsNoCounts>();
    let plan = load_str_with(&registry, Path::new("toy.toml"), &text, &[]).unwrap();
    let summary = userlens_pipeline::run(&plan, &RunOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(summary.record.status, RunStatus::Ok);
    let read = |file: &str| std::fs::read_to_string(summary.output_dir.join(file)).unwrap();
    assert_eq!(read("blind.csv"), "in_memory\nfalse\n");
    // Read back for the stage after, which reads it.
    assert_eq!(read("total.csv"), "events,columns\n5,events\n");
}
