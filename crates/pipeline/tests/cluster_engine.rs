//! The same pipeline on a cluster engine: a fake cluster in this process computes
//! each part's features and prediction inputs, and k-means' E-steps, as executors
//! would (from absolute paths, with the parameters and the tables as sent over the
//! wire), and the published files must not change. Also on this pipeline: predict
//! reads the features at its cutoff from the features stage's pass.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use polars::prelude::*;
use userlens_features::CheckedFeatureParams;
use userlens_pipeline::stages::FeaturesChecked;
use userlens_pipeline::{
    Cluster, Declared, ErrorClass, Inputs, Invalid, Ledger, Output, Override, Plan, Registry,
    RunOptions, RunStatus, Stage, StageContext, StageError, load_str, load_str_with,
};
use userlens_predict::TimeUnit;

const URL: &str = "ballista://fake:50050";

/// Calls of the fake cluster, and the parts they asked for.
static CALLS: AtomicUsize = AtomicUsize::new(0);
static PARTS: AtomicUsize = AtomicUsize::new(0);
/// Calls for prediction inputs, and their parts.
static PREDICT_CALLS: AtomicUsize = AtomicUsize::new(0);
static PREDICT_PARTS: AtomicUsize = AtomicUsize::new(0);
/// k-means E-steps.
static LLOYD_CALLS: AtomicUsize = AtomicUsize::new(0);

/// A part as an executor opens it: by its absolute path.
fn scan(part: &Path) -> Result<LazyFrame, String> {
    if !part.is_absolute() {
        return Err(format!("{} is not absolute", part.display()));
    }
    userlens_ingest::scan_part(part).map_err(|e| e.to_string())
}

struct FakeCluster {
    url: String,
}

impl Cluster for FakeCluster {
    fn url(&self) -> &str {
        &self.url
    }

    fn part_features(
        &self,
        parts: &[PathBuf],
        as_of: i64,
        top: &[String],
        params: &CheckedFeatureParams,
    ) -> userlens_features::Result<Vec<DataFrame>> {
        CALLS.fetch_add(1, Ordering::SeqCst);
        PARTS.fetch_add(parts.len(), Ordering::SeqCst);
        let remote = |message: String| userlens_features::Error::Remote {
            engine: self.url.clone(),
            message,
        };
        // As an executor gets them: serialised.
        let wire = serde_json::to_string(params).map_err(|e| remote(e.to_string()))?;
        let params: CheckedFeatureParams =
            serde_json::from_str(&wire).map_err(|e| remote(e.to_string()))?;
        parts
            .iter()
            .map(|part| {
                let scanned = scan(part).map_err(remote)?;
                userlens_features::part_features(&scanned, as_of, top, &params)
            })
            .collect()
    }

    fn predict_inputs(
        &self,
        parts: &[PathBuf],
        cutoff: i64,
        as_of: i64,
        unit: TimeUnit,
        churn_window_days: u32,
    ) -> userlens_predict::Result<Vec<Vec<DataFrame>>> {
        PREDICT_CALLS.fetch_add(1, Ordering::SeqCst);
        PREDICT_PARTS.fetch_add(parts.len(), Ordering::SeqCst);
        let remote = |message: String| userlens_predict::Error::Remote {
            engine: self.url.clone(),
            message,
        };
        // As an executor gets it: serialised.
        let wire = serde_json::to_string(&unit).map_err(|e| remote(e.to_string()))?;
        let unit: TimeUnit = serde_json::from_str(&wire).map_err(|e| remote(e.to_string()))?;
        parts
            .iter()
            .map(|part| {
                let scanned = scan(part).map_err(remote)?;
                let inputs = userlens_predict::part_inputs(
                    &scanned,
                    cutoff,
                    as_of,
                    unit,
                    churn_window_days,
                )?;
                // Each table back through Parquet, as the executors send them.
                inputs
                    .into_tables()?
                    .into_iter()
                    .map(|mut table| {
                        let mut bytes = Vec::new();
                        ParquetWriter::new(&mut bytes)
                            .finish(&mut table)
                            .and_then(|_| ParquetReader::new(std::io::Cursor::new(bytes)).finish())
                            .map_err(|e| remote(e.to_string()))
                    })
                    .collect()
            })
            .collect()
    }
    fn lloyd_assign(
        &self,
        blocks: &[PathBuf],
        d: usize,
        centers: &[f64],
        k: usize,
    ) -> userlens_profile::Result<Vec<Vec<DataFrame>>> {
        LLOYD_CALLS.fetch_add(1, Ordering::SeqCst);
        let remote = |message: String| userlens_profile::Error::Remote(message);
        blocks
            .iter()
            .map(|block| {
                if !block.is_absolute() {
                    return Err(remote(format!("{} is not absolute", block.display())));
                }
                let bytes = std::fs::read(block).map_err(|e| remote(e.to_string()))?;
                let rows = userlens_profile::decode_rows(&bytes, d)?;
                userlens_profile::assign_block(&rows, d, centers, k)?.into_tables(k, d)
            })
            .collect()
    }
}

fn fake_connect(url: &str) -> Result<Arc<dyn Cluster>, String> {
    Ok(Arc::new(FakeCluster { url: url.into() }))
}

fn unreachable(url: &str) -> Result<Arc<dyn Cluster>, String> {
    Err(format!("no scheduler answers at {url}: connection refused"))
}

/// A small deterministic event log: 240 users of four habits over 120 days.
fn events_csv() -> String {
    let mut state: u64 = 7;
    let mut next = move |n: u64| {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    };
    let categories = ["books", "garden", "games", "music", "tools"];
    let mut text = String::from(
        "user_id,event_time,event_type,session_id,item_id,category,query,amount,rating\n",
    );
    for user in 0..240u64 {
        let habit = user % 4;
        // Lapsed users stop after a month; the others keep coming.
        let days = if habit == 3 { 30 } else { 120 };
        let gap = [3, 6, 9, 5][habit as usize];
        let mut day = next(gap);
        while day < days {
            let hour = if habit == 2 {
                22 + next(2)
            } else {
                9 + next(10)
            };
            for step in 0..(2 + next(4)) {
                let category = categories[((user + next(2)) % 5) as usize];
                let item = format!("i{}", next(40));
                let (kind, query, amount, rating) = match (habit, next(10)) {
                    (0, 0..=2) => ("purchase", "", format!("{}.50", 10 + next(90)), ""),
                    (1, 0..=1) => ("add_to_cart", "", String::new(), ""),
                    (2, 0..=4) => ("search", "lamp", String::new(), ""),
                    (_, 9) => ("rating", "", String::new(), "4"),
                    (_, 8) if habit != 1 => ("purchase", "", format!("{}.00", 5 + next(20)), ""),
                    _ => ("view", "", String::new(), ""),
                };
                let date =
                    chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Days::new(day);
                text.push_str(&format!(
                    "u{user:03},{date} {hour:02}:{:02}:00,{kind},,{item},{category},{query},{amount},{rating}\n",
                    step * 3
                ));
            }
            day += 1 + next(gap);
        }
    }
    text
}

fn pipeline(dir: &Path) -> String {
    format!(
        r#"
[pipeline]
name = "engines"
output = "{out}"

[stages.ingest]
uses = "ingest"
with = {{ path = "{events}" }}

[stages.features]
uses = "features"
needs = ["ingest"]
with = {{ top_categories = 3 }}

[stages.personas]
uses = "profile"
needs = ["features"]
# A sample fit refined on every user, on the cluster however few they are.
with = {{ k = 3, n_init = 2, fit_sample = 100, cluster_lloyd_above = 0 }}

[stages.predict]
uses = "predict"
needs = ["ingest", "features"]
# Low gates, so that the predictors compared are scored, not skipped.
with = {{ horizon_days = 14, ml = {{ min_positives = 1, min_negatives = 1 }} }}

[stages.report]
uses = "report"
needs = ["features", "personas", "predict"]
with = {{ features_csv = true }}
"#,
        out = dir.join("out/{as_of}").display(),
        events = dir.join("events.csv").display(),
    )
}

/// The test pipeline with `--set` overrides.
fn plan_with(dir: &Path, set: &[&str]) -> Plan {
    let set: Vec<Override> = set.iter().map(|o| Override::parse(o).unwrap()).collect();
    load_str(Path::new("engines.toml"), &pipeline(dir), &set).unwrap()
}

fn options(dir: &Path, out: &str, runs: &str) -> RunOptions {
    RunOptions {
        as_of: chrono::NaiveDate::from_ymd_opt(2026, 5, 1),
        output: Some(dir.join(out)),
        runs: Some(dir.join(runs)),
        ..RunOptions::default()
    }
}

/// A run that must succeed, with the warnings it gave.
fn run_warned(
    plan: &userlens_pipeline::Plan,
    options: &RunOptions,
) -> (userlens_pipeline::RunSummary, Vec<String>) {
    let mut warnings = Vec::new();
    let run = userlens_pipeline::run(plan, options, &mut |p| {
        if let userlens_pipeline::Progress::Warning { message } = p {
            warnings.push(message.clone());
        }
    })
    .unwrap();
    (run, warnings)
}

/// [`options`] for a run on the fake cluster.
fn on_fake(dir: &Path, out: &str, runs: &str) -> RunOptions {
    RunOptions {
        engine: Some(URL.into()),
        connect: Some(fake_connect),
        ..options(dir, out, runs)
    }
}

/// `(stage, engine)` of each stage of the newest run in `runs`.
fn engines(runs: &Path) -> Vec<(String, String)> {
    let ledger = Ledger::open_existing(runs).unwrap();
    let run = ledger.runs(Some("engines")).unwrap().remove(0);
    let stages = ledger.stages(&run.run_id).unwrap();
    stages.into_iter().map(|s| (s.stage, s.engine)).collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn a_run_on_a_cluster_publishes_what_a_local_run_does() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("events.csv"), events_csv()).unwrap();
    let plan = load_str(Path::new("engines.toml"), &pipeline(dir), &[]).unwrap();

    let local =
        userlens_pipeline::run(&plan, &options(dir, "local", "runs-local"), &mut |_| {}).unwrap();
    assert_eq!(local.record.status, RunStatus::Ok);
    assert_eq!(local.record.engine, "local");
    assert_eq!(CALLS.load(Ordering::SeqCst), 0);
    assert_eq!(PREDICT_CALLS.load(Ordering::SeqCst), 0);
    assert_eq!(LLOYD_CALLS.load(Ordering::SeqCst), 0);

    let on_cluster = on_fake(dir, "cluster", "runs-cluster");
    let cluster = userlens_pipeline::run(&plan, &on_cluster, &mut |_| {}).unwrap();
    assert_eq!(cluster.record.status, RunStatus::Ok);
    assert_eq!(cluster.record.engine, URL);
    assert!(
        cluster.record.notes.is_empty(),
        "{:?}",
        cluster.record.notes
    );

    // The features stage sent every part twice: at the as-of date and at predict's
    // cutoff.
    let parts_dir = cluster.run_dir.join("ingest/events.parts");
    let parts = std::fs::read_dir(&parts_dir).unwrap().count();
    assert!(parts >= 2, "the ingest wrote {parts} parts");
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);
    assert_eq!(PARTS.load(Ordering::SeqCst), 2 * parts);
    // And the predict stage's labels and purchase histories, once.
    assert_eq!(PREDICT_CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(PREDICT_PARTS.load(Ordering::SeqCst), parts);
    // k-means' Lloyd iterations: at least an E-step and the last one.
    let lloyd_calls = LLOYD_CALLS.load(Ordering::SeqCst);
    assert!(lloyd_calls >= 2, "{lloyd_calls} E-steps");
    let rows_left = std::fs::read_dir(cluster.run_dir.join("personas")).unwrap();
    assert!(
        rows_left.flatten().all(|e| e.file_name() != "lloyd-rows"),
        "the rows sent to the cluster are removed"
    );

    let mut compared = Vec::new();
    for entry in std::fs::read_dir(&local.output_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let there = std::fs::read(cluster.output_dir.join(&name)).unwrap();
            assert!(std::fs::read(&path).unwrap() == there, "{name} differs");
            compared.push(name);
        }
    }
    compared.sort();
    for name in [
        "features.csv",
        "personas.csv",
        "user_predictions.csv",
        "model_report.csv",
    ] {
        assert!(compared.iter().any(|c| c == name), "{compared:?}");
    }

    // The ledger and run.json say where each stage's work ran.
    let expected = pairs(&[
        ("ingest", "local"),
        ("features", URL),
        ("personas", URL),
        ("predict", URL),
        ("report", "local"),
    ]);
    assert_eq!(engines(&dir.join("runs-cluster")), expected);
    let all_local: Vec<_> = expected
        .iter()
        .map(|(stage, _)| (stage.clone(), "local".to_string()))
        .collect();
    assert_eq!(engines(&dir.join("runs-local")), all_local);
    let record = std::fs::read_to_string(cluster.output_dir.join("run.json")).unwrap();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["engine"], URL);
    assert_eq!(record["stages"][1]["name"], "features");
    assert_eq!(record["stages"][1]["engine"], URL);
    assert_eq!(record["stages"][2]["engine"], URL);
    assert_eq!(record["stages"][4]["engine"], "local");

    // The engine is stored for `--resume`, and is not in the cache keys: a local run
    // reuses what the cluster made, and says which engine made it.
    let ledger = Ledger::open_existing(&dir.join("runs-cluster")).unwrap();
    let row = ledger.run(&cluster.record.run_id).unwrap().unwrap();
    assert!(
        row.invocation.as_deref().unwrap().contains(URL),
        "{:?}",
        row.invocation
    );
    let again =
        userlens_pipeline::run(&plan, &options(dir, "again", "runs-cluster"), &mut |_| {}).unwrap();
    assert!(
        again.record.stages.iter().all(|s| s.reused_from.is_some()),
        "every stage reused"
    );
    assert_eq!(engines(&dir.join("runs-cluster")), expected);
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        2,
        "the cluster was not asked again"
    );
    assert_eq!(PREDICT_CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(LLOYD_CALLS.load(Ordering::SeqCst), lloyd_calls);
    let features = |out: &Path| std::fs::read(out.join("features.csv")).unwrap();
    assert!(features(&again.output_dir) == features(&local.output_dir));

    // A Parquet source is read whole, then split into parts like any other.
    let parquet = local.run_dir.join("ingest/events.parquet");
    let from_parquet = format!("ingest.path={}", parquet.display());
    let plan_parquet = plan_with(dir, &[&from_parquet]);
    let in_parquet = on_fake(dir, "parquet", "runs-parquet");
    let run = userlens_pipeline::run(&plan_parquet, &in_parquet, &mut |_| {}).unwrap();
    assert!(run.record.notes.is_empty(), "{:?}", run.record.notes);
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        4,
        "features went to the cluster"
    );
    assert_eq!(PREDICT_CALLS.load(Ordering::SeqCst), 2);
    assert_eq!(engines(&dir.join("runs-parquet")), expected);
    assert!(features(&run.output_dir) == features(&local.output_dir));

    // A local run's ingest (its events in memory) is not reused by a cluster run: it
    // ingests again, into parts the executors read, and sends them the features.
    userlens_pipeline::run(&plan, &options(dir, "local-2", "runs-reused"), &mut |_| {}).unwrap();
    let reusing = on_fake(dir, "reused", "runs-reused");
    // The dry run plans what the run does.
    let planned = userlens_pipeline::dry_run(&plan, &reusing).unwrap();
    assert!(
        planned.stages.iter().all(|s| s.reuse.is_none()),
        "{planned:?}"
    );
    let (run, warnings) = run_warned(&plan, &reusing);
    assert!(
        run.record.stages[0].reused_from.is_none(),
        "a local ingest is not reused on a cluster"
    );
    assert!(
        warnings.iter().any(|w| w
            == "stage `ingest` runs again: its events are in memory (a local run's), not in parts"),
        "{warnings:?}"
    );
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        6,
        "features went to the cluster"
    );
    assert_eq!(PREDICT_CALLS.load(Ordering::SeqCst), 3);
    assert!(run.record.notes.is_empty(), "{:?}", run.record.notes);
    assert_eq!(engines(&dir.join("runs-reused")), expected);

    // With a `shared_dir`, the files the executors read go there, not to the runs
    // folder, which lists the parts with their hashes.
    let shared = dir.join("shared");
    let plan_shared = plan_with(dir, &[&format!("pipeline.shared_dir={}", shared.display())]);
    let in_shared = on_fake(dir, "out-shared", "runs-shared");
    let run = userlens_pipeline::run(&plan_shared, &in_shared, &mut |_| {}).unwrap();
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        8,
        "features went to the cluster"
    );
    // Under the runs folder's own id: another driver's runs never meet these parts.
    let runs_id = std::fs::read_to_string(dir.join("runs-shared/.shared-id")).unwrap();
    let stage_dir = |stage: &str| {
        shared
            .join("engines")
            .join(runs_id.trim())
            .join(&run.record.run_id)
            .join(stage)
    };
    let parts = std::fs::read_dir(stage_dir("ingest").join("events.parts")).unwrap();
    assert!(parts.count() >= 2);
    assert!(!run.run_dir.join("ingest/events.parts").exists());
    assert!(run.run_dir.join("ingest/events.parts.json").is_file());
    let rows_left = std::fs::read_dir(stage_dir("personas")).unwrap();
    assert!(rows_left.flatten().all(|e| e.file_name() != "lloyd-rows"));
    // Only the stages that gave the executors files have a folder there.
    let mut folders: Vec<_> = std::fs::read_dir(stage_dir(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    assert_eq!(folders, ["ingest", "personas"]);
    assert!(features(&run.output_dir) == features(&local.output_dir));
    // A later run reuses those parts; one that finds a part changed runs the ingest
    // (and all after it) again.
    let again = userlens_pipeline::run(
        &plan_shared,
        &options(dir, "out-shared-2", "runs-shared"),
        &mut |_| {},
    );
    assert!(
        again
            .unwrap()
            .record
            .stages
            .iter()
            .all(|s| s.reused_from.is_some())
    );
    let part = std::fs::read_dir(stage_dir("ingest").join("events.parts"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&part).unwrap();
    bytes.push(0);
    std::fs::write(&part, bytes).unwrap();
    // The dry run plans it so too.
    let planned = userlens_pipeline::dry_run(&plan_shared, &in_shared).unwrap();
    assert!(
        planned.stages.iter().all(|s| s.reuse.is_none()),
        "{planned:?}"
    );
    let third = userlens_pipeline::run(&plan_shared, &in_shared, &mut |_| {}).unwrap();
    assert!(third.record.stages.iter().all(|s| s.reused_from.is_none()));
    assert_eq!(CALLS.load(Ordering::SeqCst), 10);
    assert!(features(&third.output_dir) == features(&local.output_dir));
    // One that finds a part gone says so.
    let parts = shared
        .join("engines")
        .join(runs_id.trim())
        .join(&third.record.run_id)
        .join("ingest/events.parts");
    let part = std::fs::read_dir(parts).unwrap().next().unwrap().unwrap();
    std::fs::remove_file(part.path()).unwrap();
    let (_, warnings) = run_warned(&plan_shared, &in_shared);
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("stage `ingest` runs again") && w.contains("no such file")),
        "{warnings:?}"
    );
}

#[test]
fn a_ballista_engine_needs_a_build_with_the_cluster_feature() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("events.csv"), events_csv()).unwrap();
    // The engine from the file this time; no test here registers a `Connect`.
    let text = pipeline(dir).replace(
        "name = \"engines\"",
        "name = \"engines\"\nengine = \"ballista://scheduler\"",
    );
    let plan = load_str(Path::new("engines.toml"), &text, &[]).unwrap();
    let err = userlens_pipeline::run(&plan, &options(dir, "out", "runs"), &mut |_| {}).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Usage);
    assert_eq!(
        err.to_string(),
        "this userlens was built without the `cluster` feature: build it with \
         `cargo build --release --features cluster` to run on ballista://scheduler:50050"
    );
    assert!(!dir.join("out").exists());
}

#[test]
fn an_unreachable_cluster_fails_the_run_before_any_stage() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("events.csv"), events_csv()).unwrap();
    let plan = load_str(Path::new("engines.toml"), &pipeline(dir), &[]).unwrap();
    let options = RunOptions {
        engine: Some("ballista://10.9.8.7:7000".into()),
        connect: Some(unreachable),
        ..options(dir, "out", "runs")
    };
    let mut events = 0;
    let err = userlens_pipeline::run(&plan, &options, &mut |_| events += 1).unwrap_err();
    assert_eq!(err.class(), ErrorClass::StageFailed, "exit code 1");
    assert_eq!(
        err.to_string(),
        "cannot reach the cluster at `ballista://10.9.8.7:7000`: no scheduler answers at \
         ballista://10.9.8.7:7000: connection refused"
    );
    assert_eq!(events, 0, "no stage started");
    assert!(!dir.join("out").exists(), "nothing published");
    assert!(!dir.join("runs/engines").exists(), "no run folder was made");

    // A bad `--engine` is a usage error naming it.
    let options = RunOptions {
        engine: Some("spark://h:7077".into()),
        ..options
    };
    let err = userlens_pipeline::run(&plan, &options, &mut |_| {}).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Usage);
    assert_eq!(
        err.to_string(),
        "`--engine spark://h:7077` is not an engine: the scheme is `spark`: only \
         `ballista://` clusters are supported"
    );
}

/// A probe stage: writes `<stage name>.csv`, whether the features at predict's
/// cutoff were among its inputs.
struct SeesCutoff;

impl Stage for SeesCutoff {
    type Params = toml::Table;
    type Checked = toml::Table;
    const USES: &'static str = "sees_cutoff";
    const PROVIDES: &'static [&'static str] = &[];
    const REQUIRES: &'static [&'static str] = &["features"];

    fn check(params: toml::Table, _: &Declared) -> Result<toml::Table, Invalid> {
        Ok(params)
    }

    fn run(
        _: &toml::Table,
        ctx: &mut StageContext<'_>,
        inputs: &Inputs<'_>,
    ) -> Result<Output, StageError> {
        let seen = inputs.get("features_at_cutoff").map(DataFrame::height);
        let table = df!("rows" => [seen.map(|n| n as u64)])?;
        ctx.write_csv("rows.csv", &table)?;
        Ok(Output::default())
    }
}

#[test]
fn predict_reads_the_features_at_its_cutoff_from_the_features_stages_pass() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("events.csv"), events_csv()).unwrap();
    let probes = r#"
[stages.before_predict]
uses = "sees_cutoff"
needs = ["features"]

[stages.predict]"#;
    let after = r#"
[stages.after_predict]
uses = "sees_cutoff"
needs = ["features", "predict"]
"#;
    let text = pipeline(dir).replacen("\n[stages.predict]", probes, 1) + after;
    let registry = Registry::builtin().with::<SeesCutoff>();
    let plan = load_str_with(&registry, Path::new("engines.toml"), &text, &[]).unwrap();
    let index = |plan: &Plan, name: &str| plan.stages.iter().position(|s| s.name == name).unwrap();
    let features = index(&plan, "features");
    assert_eq!(plan.stages[index(&plan, "predict")].asked, [features]);
    let checked = plan.stages[features].stage.as_any();
    let asked = checked
        .downcast_ref::<FeaturesChecked>()
        .unwrap()
        .asked
        .clone()
        .unwrap();
    assert_eq!(asked.before, 14 * 86_400_000_000, "the horizon");
    assert!(!asked.text, "no rule reads a text feature");

    let run = userlens_pipeline::run(&plan, &options(dir, "out", "runs"), &mut |_| {}).unwrap();
    assert_eq!(run.record.status, RunStatus::Ok);
    let made = run.run_dir.join("features/features_at_cutoff.parquet");
    let made = ParquetReader::new(std::fs::File::open(made).unwrap())
        .finish()
        .unwrap();
    // The second stage of the kind writes its file under its name.
    let file = |stage: &str| match stage {
        "before_predict" => "rows.csv".to_string(),
        _ => format!("{stage}.rows.csv"),
    };
    let seen = |stage: &str| std::fs::read_to_string(run.output_dir.join(file(stage)));
    // Held for predict, freed once it has run.
    assert_eq!(
        seen("before_predict").unwrap(),
        format!("rows\n{}\n", made.height())
    );
    assert_eq!(seen("after_predict").unwrap(), "rows\n\n");
    let now = ParquetReader::new(
        std::fs::File::open(run.run_dir.join("features/features.parquet")).unwrap(),
    )
    .finish()
    .unwrap();
    let purchases = |table: &DataFrame| {
        let frequency = table.column("frequency").unwrap().f64().unwrap().sum();
        (table.height(), frequency.unwrap())
    };
    let ((users_then, bought_then), (users_now, bought_now)) = (purchases(&made), purchases(&now));
    assert!(
        users_then <= users_now && bought_then < bought_now,
        "at the cutoff: fewer purchases"
    );

    // A later run that reuses the features stage (predict's other parameters are not
    // in its key) reads the features at the cutoff from its artifact.
    let set = [Override::parse("predict.annual_discount_rate=0.2").unwrap()];
    let discounted = load_str_with(&registry, Path::new("engines.toml"), &text, &set).unwrap();
    let later = userlens_pipeline::run(&discounted, &options(dir, "later", "runs"), &mut |_| {});
    let later = later.unwrap();
    assert_eq!(later.record.status, RunStatus::Ok);
    let reused = |name: &str| {
        let stage = later.record.stages.iter().find(|s| s.name == name).unwrap();
        stage.reused_from.is_some()
    };
    assert!(reused("features") && !reused("predict"));
    let seen = |stage: &str| std::fs::read_to_string(later.output_dir.join(file(stage)));
    assert_eq!(seen("after_predict").unwrap(), "rows\n\n");

    // A predict stage with another horizon asks first: this one builds its own
    // features at the cutoff, and predicts the same.
    let early = r#"
[stages.early]
uses = "predict"
needs = ["ingest", "features"]
with = { horizon_days = 7 }

[stages.predict]"#;
    let text = text.replacen("\n[stages.predict]", early, 1);
    let plan = load_str_with(&registry, Path::new("engines.toml"), &text, &[]).unwrap();
    assert_eq!(plan.stages[index(&plan, "early")].asked, [features]);
    assert!(plan.stages[index(&plan, "predict")].asked.is_empty());
    let own = userlens_pipeline::run(&plan, &options(dir, "own", "runs-own"), &mut |_| {}).unwrap();
    assert_eq!(own.record.status, RunStatus::Ok);
    let mut compared = 0;
    for entry in std::fs::read_dir(&run.output_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".csv") && !name.ends_with("rows.csv") {
            // The second predict stage's outputs are under its name.
            let prefixed = own.output_dir.join(format!("predict.{name}"));
            let there = match prefixed.exists() {
                true => std::fs::read(prefixed).unwrap(),
                false => std::fs::read(own.output_dir.join(&name)).unwrap(),
            };
            assert!(std::fs::read(&path).unwrap() == there, "{name} differs");
            compared += 1;
        }
    }
    assert!(compared >= 5, "{compared} files compared");
}
