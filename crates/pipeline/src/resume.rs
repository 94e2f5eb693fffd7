//! Resuming a run: it continues with what it was started with.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::keys::output_dir;
use crate::ledger::{Ledger, RunRow};
use crate::plan::{Override, Plan};
use crate::publish;
use crate::record::{PastRecord, RunStatus};
use crate::runner::RunOptions;

/// What a run was started with beyond the pipeline file, stored in the ledger so
/// that `--resume` continues it exactly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Invocation {
    set: Vec<String>,
    output: Option<PathBuf>,
    as_of: Option<NaiveDate>,
    /// The engine it ran on (`--engine` or the pipeline file's), so that a resume
    /// continues on it even if the file has changed since; absent in older ledgers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    engine: Option<String>,
    /// `--until`'s stage; absent in older ledgers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<String>,
    /// [`digest`] of the plan it ran, to tell a resume that the file has changed
    /// since; absent in older ledgers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plan: Option<String>,
}

/// A digest of what a plan runs: its seed, and each stage's name, kind, needs and
/// parameters (its inputs' contents aside).
fn digest(plan: &Plan) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&plan.seed.to_le_bytes());
    for stage in &plan.stages {
        let part = format!(
            "{}\0{}\0{:?}\0{}\0",
            stage.name,
            stage.uses(),
            stage.needs,
            stage.params
        );
        hasher.update(part.as_bytes());
    }
    hasher.finalize().to_hex().to_string()
}

/// The warning that `plan` differs from the one `row` started with, as far as its
/// ledger row tells.
pub(crate) fn plan_changed(row: &RunRow, plan: &Plan) -> Option<String> {
    let changed = Invocation::of_row(row)
        .ok()
        .and_then(|stored| stored.plan)
        .is_some_and(|stored| stored != digest(plan));
    changed.then(|| {
        format!(
            "the pipeline has changed since run {} started: the stages it had not finished \
             run as the file says now, so its outputs may differ from those of an \
             uninterrupted run",
            row.run_id
        )
    })
}

impl Invocation {
    /// What `plan` and `options` start a run with, on `engine`.
    pub fn of(plan: &Plan, options: &RunOptions, engine: Option<&Engine>) -> Invocation {
        Invocation {
            set: plan.overrides.iter().map(|o| o.text.clone()).collect(),
            output: options.output.clone(),
            as_of: options.as_of,
            engine: engine.map(Engine::url),
            until: options.until.clone(),
            plan: Some(digest(plan)),
        }
    }

    /// What `row` was started with (the defaults, for a row that stored none).
    fn of_row(row: &RunRow) -> Result<Invocation> {
        let Some(text) = &row.invocation else {
            return Ok(Invocation::default());
        };
        serde_json::from_str(text).map_err(|e| {
            Error::Resume(format!(
                "run `{}` has an unreadable invocation: {e}",
                row.run_id
            ))
        })
    }

    /// `plan` with this invocation's `--set` in place of its own.
    fn plan(&self, plan: &Plan) -> Result<Plan> {
        let overrides = (self.set.iter())
            .map(|text| Override::parse(text))
            .collect::<Result<Vec<_>>>()?;
        if overrides == plan.overrides {
            Ok(plan.clone())
        } else {
            plan.replan(&overrides)
        }
    }
}

/// The run `id` of `plan`'s pipeline in the ledger, if it can be resumed.
pub(crate) fn find(ledger: &Ledger, root: &Path, plan: &Plan, id: &str) -> Result<RunRow> {
    let row = ledger.run(id)?.ok_or_else(|| {
        Error::Resume(format!("no run `{id}` in the ledger `{}`", root.display()))
    })?;
    if row.pipeline != plan.name {
        return Err(Error::Resume(format!(
            "run `{id}` is of pipeline `{}`, not `{}`",
            row.pipeline, plan.name
        )));
    }
    // A run killed after it published but before the ledger said so is still
    // `running` there: resumed, it publishes the same outputs and is recorded.
    if !row.status.resumable() {
        return Err(Error::Resume(format!(
            "run `{id}` finished; there is nothing to resume"
        )));
    }
    Ok(row)
}

/// The plan and options a resumed run continues with: those it was started with.
pub(crate) fn resumed(
    plan: &Plan,
    options: &RunOptions,
    row: &RunRow,
) -> Result<(Plan, RunOptions)> {
    let stored = Invocation::of_row(row)?;
    // The engine is checked on its own: the one stored may come from the file.
    if let (Some(given), Some(stored)) = (&options.engine, &stored.engine)
        && options.engine_of(plan)?.url() != *stored
    {
        return Err(Error::Resume(format!(
            "run `{}` ran on `{stored}`, not `{given}`; resume it there, or without `--engine`",
            row.run_id
        )));
    }
    let given = Invocation::of(plan, options, None);
    let stored_engine = stored.engine.clone();
    let stored = Invocation {
        engine: None,
        ..stored
    };
    // Each `--set` given must be one of the run's own: a resume never changes a
    // parameter. Each may be left out (`profile` gives two of its own), as may each
    // of the other options, or given as the run had it.
    let differs =
        |given: Option<String>, stored: Option<String>| given.is_some_and(|g| Some(g) != stored);
    let text = |date: Option<NaiveDate>| date.map(|d| d.to_string());
    // The options given that the run was not started with, named as given.
    let mut other = Invocation::default();
    if !settings_within(&given.set, &stored.set)? {
        other.set = (given.set.iter())
            .filter(|s| !settings_within(std::slice::from_ref(s), &stored.set).unwrap_or(false))
            .cloned()
            .collect();
    }
    let output = |o: &Option<std::path::PathBuf>| o.as_ref().map(|o| o.display().to_string());
    if differs(output(&given.output), output(&stored.output)) {
        other.output = given.output.clone();
    }
    if differs(text(given.as_of), text(stored.as_of)) {
        other.as_of = given.as_of;
    }
    if differs(given.until.clone(), stored.until.clone()) {
        other.until = given.until.clone();
    }
    if other != Invocation::default() {
        // What the run had of the options given otherwise, and nothing else.
        let mut had = Vec::new();
        if !other.set.is_empty() {
            had.extend(stored.set.iter().map(|s| format!("`--set {s}`")));
            if stored.set.is_empty() {
                had.push("no `--set`".into());
            }
        }
        let or_none = |given: bool, stored: Option<String>, flag: &str| {
            given.then(|| stored.map_or(format!("no `{flag}`"), |v| format!("`{flag} {v}`")))
        };
        had.extend(or_none(
            other.output.is_some(),
            output(&stored.output),
            "--out",
        ));
        had.extend(or_none(
            other.as_of.is_some(),
            text(stored.as_of),
            "--as-of",
        ));
        had.extend(or_none(
            other.until.is_some(),
            stored.until.clone(),
            "--until",
        ));
        let had = had.join(", ");
        return Err(Error::Resume(format!(
            "run `{}` was started with {had}, not {}; resume it with the same options, or with none",
            row.run_id,
            describe(&other)
        )));
    }
    let plan = stored.plan(plan)?;
    let options = RunOptions {
        output: stored.output,
        as_of: stored.as_of,
        until: stored.until,
        engine: stored_engine.or_else(|| options.engine.clone()),
        ..options.clone()
    };
    Ok((plan, options))
}

/// Records how the runs of `plan`'s pipeline the ledger says are running ended; the
/// caller holds the lock, so none of them still runs. A run killed after it
/// published is recorded as its `run.json` says, when the folder it published to
/// names it; any other as interrupted.
pub(crate) fn settle_killed(ledger: &Ledger, plan: &Plan) -> Result<()> {
    for mut row in ledger.runs(Some(&plan.name))? {
        if row.status != RunStatus::Running {
            continue;
        }
        if let Some(record) = published_record(plan, &row) {
            row.status = record.0;
            row.finished_at = Some(record.1);
            row.error = record.2;
            ledger.put_run(&row)?;
        }
    }
    ledger.interrupt_running(&plan.name)?;
    Ok(())
}

/// The status `row` ends with once settled: a run the ledger says is running but
/// that published has the status of its `run.json` ([`settle_killed`]), for the
/// readers that do not hold the lock (a dry run, a backfill's check of a date).
pub(crate) fn settled_status(plan: &Plan, row: &RunRow) -> RunStatus {
    match row.status {
        RunStatus::Running => published_record(plan, row).map_or(row.status, |record| record.0),
        status => status,
    }
}

/// The status, end and error `row`'s `run.json` gives, if the run published: its
/// output folder (or, refused, the folder beside it) holds its marker.
fn published_record(plan: &Plan, row: &RunRow) -> Option<(RunStatus, String, Option<String>)> {
    let record = PastRecord::read(Path::new(&row.run_dir)).filter(|r| r.run_id == row.run_id)?;
    let status = RunStatus::parse(&record.status)?;
    let stored = Invocation::of_row(row).ok()?;
    let plan = stored.plan(plan).ok()?;
    let options = RunOptions {
        output: stored.output,
        ..RunOptions::default()
    };
    let target = publish::target(status, &output_dir(&plan, &options, &row.as_of))?;
    let published = publish::published_by_run(&target, &row.run_id, &plan.name);
    published.then_some((status, record.finished_at, record.error))
}

fn describe(invocation: &Invocation) -> String {
    let mut parts: Vec<String> = invocation
        .set
        .iter()
        .map(|s| format!("`--set {s}`"))
        .collect();
    if let Some(out) = &invocation.output {
        parts.push(format!("`--out {}`", out.display()));
    }
    if let Some(as_of) = invocation.as_of {
        parts.push(format!("`--as-of {as_of}`"));
    }
    if let Some(stage) = &invocation.until {
        parts.push(format!("`--until {stage}`"));
    }
    if parts.is_empty() {
        "no options".into()
    } else {
        parts.join(", ")
    }
}

/// Whether every setting of `given` is one of `stored`'s, with the same value however
/// written (`0.5` and `0.50` alike; the last `--set` of a key is the one that holds).
fn settings_within(given: &[String], stored: &[String]) -> Result<bool> {
    let settings = |texts: &[String]| -> Result<std::collections::BTreeMap<(String, Vec<String>), toml::Value>> {
        texts
            .iter()
            .map(|t| Override::parse(t).map(|o| ((o.stage, o.key), o.value)))
            .collect()
    };
    let stored = settings(stored)?;
    Ok(settings(given)?
        .iter()
        .all(|(key, value)| stored.get(key) == Some(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIPELINE: &str = "[stages.ingest]\nuses = \"ingest\"\nwith = { path = \"e.csv\" }\n";

    fn started_on(engine: &Engine) -> (Plan, RunRow) {
        let plan = crate::load_str(Path::new("p.toml"), PIPELINE, &[]).unwrap();
        let invocation = Invocation::of(&plan, &RunOptions::default(), Some(engine));
        let row = RunRow {
            run_id: "r".into(),
            pipeline: "p".into(),
            as_of: "latest".into(),
            status: RunStatus::Failed,
            started_at: String::new(),
            finished_at: None,
            run_dir: "runs/p/r".into(),
            error: None,
            invocation: Some(serde_json::to_string(&invocation).unwrap()),
            pid: None,
        };
        (plan, row)
    }

    #[test]
    fn a_resumed_run_keeps_its_until() {
        let (plan, row) = started_on(&Engine::Local);
        let until = RunOptions {
            until: Some("ingest".into()),
            ..RunOptions::default()
        };
        let row = RunRow {
            invocation: Some(serde_json::to_string(&Invocation::of(&plan, &until, None)).unwrap()),
            ..row
        };
        let (_, options) = resumed(&plan, &RunOptions::default(), &row).unwrap();
        assert_eq!(options.until.as_deref(), Some("ingest"));
        assert!(resumed(&plan, &until, &row).is_ok());
        let err = resumed(
            &plan,
            &RunOptions {
                until: Some("other".into()),
                ..RunOptions::default()
            },
            &row,
        )
        .unwrap_err();
        assert!(err.to_string().contains("`--until ingest`"), "{err}");
    }

    #[test]
    fn a_run_resumes_with_any_of_its_own_options_but_no_other() {
        let (plan, row) = started_on(&Engine::Local);
        let date = |d: &str| Some(d.parse::<NaiveDate>().unwrap());
        let own = RunOptions {
            output: Some("o5".into()),
            as_of: date("2026-06-05"),
            until: Some("ingest".into()),
            ..RunOptions::default()
        };
        let row = RunRow {
            invocation: Some(serde_json::to_string(&Invocation::of(&plan, &own, None)).unwrap()),
            ..row
        };
        let out_only = RunOptions {
            output: own.output.clone(),
            ..RunOptions::default()
        };
        let as_of_only = RunOptions {
            as_of: own.as_of,
            ..RunOptions::default()
        };
        for given in [&own, &out_only, &as_of_only, &RunOptions::default()] {
            let (_, options) = resumed(&plan, given, &row).unwrap();
            assert_eq!(options.as_of, own.as_of);
            assert_eq!(options.output, own.output);
        }
        // Each refusal names the option given otherwise and the run's own of it.
        for (other, says) in [
            (
                RunOptions {
                    as_of: date("2026-06-06"),
                    ..out_only.clone()
                },
                "started with `--as-of 2026-06-05`, not `--as-of 2026-06-06`;",
            ),
            (
                RunOptions {
                    output: Some("o6".into()),
                    ..RunOptions::default()
                },
                "started with `--out o5`, not `--out o6`;",
            ),
        ] {
            let err = resumed(&plan, &other, &row).unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
        }
    }

    #[test]
    fn a_resumed_run_keeps_its_overrides() {
        let load = |set: &[&str]| {
            let set: Vec<Override> = set.iter().map(|s| Override::parse(s).unwrap()).collect();
            crate::load_str(Path::new("p.toml"), PIPELINE, &set).unwrap()
        };
        let (_, row) = started_on(&Engine::Local);
        let started = load(&["ingest.max_quarantine_share=0.5"]);
        let row = RunRow {
            invocation: Some(
                serde_json::to_string(&Invocation::of(&started, &RunOptions::default(), None))
                    .unwrap(),
            ),
            ..row
        };
        // Without `--set`, or with the same: the run's own.
        for plan in [load(&[]), started.clone()] {
            let (plan, _) = resumed(&plan, &RunOptions::default(), &row).unwrap();
            assert_eq!(plan.overrides, started.overrides);
        }
        // Some of them, as `profile` gives its own: the run's others still hold.
        let started = load(&[
            "ingest.max_quarantine_share=0.5",
            "ingest.drop_duplicates=false",
        ]);
        let row = RunRow {
            invocation: Some(
                serde_json::to_string(&Invocation::of(&started, &RunOptions::default(), None))
                    .unwrap(),
            ),
            ..row
        };
        let some = load(&["ingest.drop_duplicates=false"]);
        let (plan, _) = resumed(&some, &RunOptions::default(), &row).unwrap();
        assert_eq!(plan.overrides, started.overrides);
        // The same, written otherwise.
        let respelt = load(&["ingest.max_quarantine_share=0.50"]);
        assert!(resumed(&respelt, &RunOptions::default(), &row).is_ok());
        // Another is refused, not ignored.
        let other = load(&["ingest.max_quarantine_share=0.9"]);
        let err = resumed(&other, &RunOptions::default(), &row).unwrap_err();
        assert!(
            err.to_string().contains("resume it with the same options"),
            "{err}"
        );
        // The message names the option the run was not started with, beside the
        // run's own of that kind alone.
        assert!(
            err.to_string().contains(
                "was started with `--set ingest.max_quarantine_share=0.5`, `--set \
                 ingest.drop_duplicates=false`, not `--set ingest.max_quarantine_share=0.9`;"
            ),
            "{err}"
        );
        let plain = RunRow {
            invocation: Some(
                serde_json::to_string(&Invocation::of(
                    &load(&[]),
                    &RunOptions {
                        output: Some("out/res".into()),
                        ..RunOptions::default()
                    },
                    None,
                ))
                .unwrap(),
            ),
            ..row
        };
        let err = resumed(&other, &RunOptions::default(), &plain).unwrap_err();
        assert!(
            err.to_string().contains(
                "was started with no `--set`, not `--set ingest.max_quarantine_share=0.9`;"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_resumed_run_keeps_its_engine() {
        let cluster = Engine::parse("ballista://h:7000").unwrap();
        let (plan, row) = started_on(&cluster);
        // Without `--engine`, though the file says `local`.
        let (_, options) = resumed(&plan, &RunOptions::default(), &row).unwrap();
        assert_eq!(options.engine.as_deref(), Some("ballista://h:7000"));
        assert_eq!(options.engine_of(&plan).unwrap(), cluster);
        // With the same one, written another way.
        let same = RunOptions {
            engine: Some("ballista://h:7000/".into()),
            ..RunOptions::default()
        };
        assert!(resumed(&plan, &same, &row).is_ok());
        let other = RunOptions {
            engine: Some("local".into()),
            ..RunOptions::default()
        };
        let err = resumed(&plan, &other, &row).unwrap_err();
        assert_eq!(
            err.to_string(),
            "run `r` ran on `ballista://h:7000`, not `local`; resume it there, or without `--engine`"
        );
        // A run recorded before engines were: whatever the file or `--engine` says.
        let older = RunRow {
            invocation: Some(r#"{"set":[],"output":null,"as_of":null}"#.into()),
            ..row
        };
        let (_, options) = resumed(&plan, &other, &older).unwrap();
        assert_eq!(options.engine.as_deref(), Some("local"));
    }
}
