//! Pass two: names resolved, parameters checked, stages ordered.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::file::{RawStage, Source, unknown_field_hint};

/// The kinds of stage a pipeline can `use`.
pub const STAGE_KINDS: [&str; 5] = ["ingest", "features", "profile", "predict", "report"];

/// Parameters of the `report` stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportParams {
    /// Also write `features.csv` (every user's features as of the run).
    pub features_csv: bool,
}

/// A stage kind with its checked parameters.
#[derive(Debug, Clone)]
pub enum StageKind {
    /// Read and validate a source.
    Ingest(userlens_ingest::Source),
    /// Per-user features, with an optional users table.
    Features {
        /// Checked feature parameters.
        params: userlens_features::CheckedFeatureParams,
        /// Users table to join.
        users: Option<PathBuf>,
    },
    /// Personas by clustering.
    Profile(userlens_profile::CheckedProfileParams),
    /// Behaviour predictions, scored on a time-split holdout.
    Predict(Box<userlens_predict::CheckedPredictParams>),
    /// Output files.
    Report(ReportParams),
}

impl StageKind {
    /// The `uses` name.
    pub fn name(&self) -> &'static str {
        match self {
            StageKind::Ingest(_) => "ingest",
            StageKind::Features { .. } => "features",
            StageKind::Profile(_) => "profile",
            StageKind::Predict(_) => "predict",
            StageKind::Report(_) => "report",
        }
    }

    /// Tables the stage produces.
    pub fn provides(&self) -> &'static [&'static str] {
        match self {
            StageKind::Ingest(_) => &["events", "quarantine"],
            StageKind::Features { .. } => &["features"],
            StageKind::Profile(_) => &["assignments", "personas", "k_selection"],
            StageKind::Predict(_) => &[
                "user_predictions",
                "model_report",
                "calibration",
                "lift",
                "segments",
            ],
            StageKind::Report(_) => &[],
        }
    }

    /// Optional tables the stage may also produce (drift, migration).
    pub fn extra_tables(&self) -> &'static [&'static str] {
        match self {
            StageKind::Features { .. } => &["drift"],
            StageKind::Profile(_) => &["migration"],
            _ => &[],
        }
    }

    /// Tables the stage needs from the stages it names in `needs`.
    pub fn requires(&self) -> &'static [&'static str] {
        match self {
            StageKind::Ingest(_) => &[],
            StageKind::Features { .. } => &["events"],
            StageKind::Profile(_) => &["features"],
            StageKind::Predict(_) => &["events", "features"],
            StageKind::Report(_) => &[],
        }
    }
}

/// Quality gates of a pipeline (`[pipeline.gates]`): a run that fails one is
/// refused with exit code 3.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gates {
    /// Refuse when kept events fall below this share of the previous run's.
    pub min_volume_ratio: Option<f64>,
    /// Refuse when kept events rise above this multiple of the previous run's.
    pub max_volume_ratio: Option<f64>,
    /// Refuse when a feature drifts this much: `"warning"` or `"alert"` (PSI above
    /// 0.1 or 0.25); absent, drift is only reported.
    pub fail_on_drift: Option<crate::drift::Level>,
}

/// One stage of a plan.
#[derive(Debug, Clone)]
pub struct PlannedStage {
    /// Name in the pipeline file.
    pub name: String,
    /// Kind and checked parameters.
    pub kind: StageKind,
    /// Indices (in plan order) of the stages it needs.
    pub needs: Vec<usize>,
    /// Parameters as given (after `--set`), for the run record and cache keys.
    pub params: serde_json::Value,
    /// Extra attempts after a failure.
    pub retries: u32,
    /// Wait before the first retry; doubled before each further one.
    pub retry_delay: std::time::Duration,
}

/// A validated pipeline: stages in an order where every stage follows its needs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Pipeline name (`[pipeline] name`, else the file stem).
    pub name: String,
    /// The pipeline file.
    pub path: PathBuf,
    /// One-line description.
    pub description: Option<String>,
    /// Seed of every random choice.
    pub seed: u64,
    /// Folder of the output files.
    pub output: PathBuf,
    /// Root of the run folders (`<runs>/<pipeline>/<run-id>/`).
    pub runs: PathBuf,
    /// Stages in run order.
    pub stages: Vec<PlannedStage>,
    /// Quality gates.
    pub gates: Gates,
}

/// A `--set stage.key=value` override.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// Stage name, or `pipeline` for the header.
    pub stage: String,
    /// Key path inside `with` (dotted for nested tables).
    pub key: Vec<String>,
    /// The value (TOML syntax; a bare word is a string).
    pub value: toml::Value,
    /// The text as given, for messages.
    pub text: String,
}

impl Override {
    /// Parses `stage.key=value`.
    pub fn parse(text: &str) -> Result<Override> {
        let bad = || {
            Error::Override(format!(
                "`--set {text}` is not of the form `stage.key=value`"
            ))
        };
        let (path, value) = text.split_once('=').ok_or_else(bad)?;
        let mut parts = path.trim().split('.').map(str::to_string);
        let stage = parts.next().filter(|s| !s.is_empty()).ok_or_else(bad)?;
        let key: Vec<String> = parts.collect();
        if key.is_empty() || key.iter().any(String::is_empty) {
            return Err(bad());
        }
        let value_text = value.trim();
        let value = toml::from_str::<toml::Table>(&format!("v = {value_text}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value_text.to_string()));
        Ok(Override {
            stage,
            key,
            value,
            text: text.to_string(),
        })
    }
}

/// Reads, checks and orders a pipeline file, applying overrides first.
pub fn load(path: &Path, overrides: &[Override]) -> Result<Plan> {
    let source = Source::read(path)?;
    plan_source(&source, overrides)
}

/// Plans a pipeline given as text (`path` is used in messages and for the name).
pub fn load_str(path: &Path, text: &str, overrides: &[Override]) -> Result<Plan> {
    let source = Source {
        path: path.to_path_buf(),
        text: text.to_string(),
    };
    plan_source(&source, overrides)
}

fn plan_source(source: &Source, overrides: &[Override]) -> Result<Plan> {
    let mut raw = source.parse()?;
    for o in overrides {
        apply_override(&mut raw, o)?;
    }
    let header = &raw.pipeline;
    let name = header.name.clone().unwrap_or_else(|| {
        source
            .path
            .file_stem()
            .map_or_else(|| "pipeline".into(), |s| s.to_string_lossy().into_owned())
    });
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || "-_".contains(c))
    {
        return Err(source.error_at(
            0,
            format!("pipeline name {name:?} must be letters, digits, `-` and `_`"),
            None,
        ));
    }
    if raw.stages.is_empty() {
        return Err(source.error_at(
            0,
            "the pipeline has no stages".into(),
            Some("add a `[stages.<name>]` table with `uses = \"ingest\"`".into()),
        ));
    }

    // Declaration order decides ties in the run order.
    let mut declared: Vec<(&String, &RawStage)> = raw.stages.iter().collect();
    declared.sort_by_key(|(_, s)| s.uses.span().start);
    let names: Vec<&str> = declared.iter().map(|(n, _)| n.as_str()).collect();

    let mut kinds = Vec::with_capacity(declared.len());
    let mut needs = Vec::with_capacity(declared.len());
    for (stage_name, stage) in &declared {
        kinds.push(check_stage(source, stage_name, stage)?);
        let mut resolved = Vec::new();
        for need in &stage.needs {
            let Some(index) = names.iter().position(|n| n == need.get_ref()) else {
                let hint = crate::did_you_mean(need.get_ref(), &names)
                    .map(|n| format!("did you mean `{n}`?"))
                    .unwrap_or_else(|| format!("the stages are: {}", names.join(", ")));
                return Err(source.error_at(
                    need.span().start,
                    format!(
                        "stage `{stage_name}` needs `{}`, which is not a stage of this pipeline",
                        need.get_ref()
                    ),
                    Some(hint),
                ));
            };
            resolved.push(index);
        }
        needs.push(resolved);
    }

    let order = topological_order(source, &declared, &needs)?;
    let mut position = vec![0; order.len()];
    for (at, &index) in order.iter().enumerate() {
        position[index] = at;
    }
    let mut stages = Vec::with_capacity(order.len());
    for &index in &order {
        let (stage_name, stage) = declared[index];
        let kind = kinds[index].clone();
        let stage_needs: Vec<usize> = needs[index].iter().map(|&n| position[n]).collect();
        for table in kind.requires() {
            let provided = stage_needs.iter().any(|&n| {
                stages
                    .get(n)
                    .is_some_and(|s: &PlannedStage| s.kind.provides().contains(table))
            });
            if !provided {
                let providers: Vec<&str> = kinds
                    .iter()
                    .filter(|k| k.provides().contains(table))
                    .map(|k| k.name())
                    .collect();
                return Err(source.error_at(
                    stage.uses.span().start,
                    format!(
                        "stage `{stage_name}` (uses {}) needs a stage that provides `{table}`",
                        kind.name()
                    ),
                    Some(format!(
                        "add the {} stage that makes it to `needs`",
                        providers.first().copied().unwrap_or("matching")
                    )),
                ));
            }
        }
        let params = stage
            .with
            .as_ref()
            .map(|w| serde_json::to_value(w.get_ref()).unwrap_or(serde_json::Value::Null))
            .unwrap_or(serde_json::Value::Null);
        let retry_delay = match &stage.retry_delay {
            None => std::time::Duration::from_secs(1),
            Some(text) => humantime::parse_duration(text.get_ref()).map_err(|e| {
                source.error_at(
                    text.span().start,
                    format!(
                        "stage `{stage_name}`: `retry_delay` {:?} is not a duration: {e}",
                        text.get_ref()
                    ),
                    Some("write it like \"30s\", \"2m\" or \"500ms\"".into()),
                )
            })?,
        };
        stages.push(PlannedStage {
            name: stage_name.clone(),
            kind,
            needs: stage_needs,
            params,
            retries: stage.retries,
            retry_delay,
        });
    }
    let output = header
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("out").join(&name));
    let runs = header.runs.clone().unwrap_or_else(|| PathBuf::from("runs"));
    for (key, path) in [("output", &output), ("runs", &runs)] {
        if let Err(why) = contained(path) {
            let at = source.find_key(0..source.text.len(), key).unwrap_or(0);
            return Err(source.error_at(
                at,
                format!("`{key}` {:?} {why}", path.display().to_string()),
                Some("give an absolute path to write outside the working folder".into()),
            ));
        }
    }
    Ok(Plan {
        output,
        runs,
        name,
        path: source.path.clone(),
        description: header.description.clone(),
        seed: header.seed.unwrap_or(42),
        stages,
        gates: header.gates.clone(),
    })
}

/// A relative output path must stay inside the working folder: no `..` and no
/// symlink out of it. An absolute path is the user's explicit choice.
fn contained(path: &Path) -> std::result::Result<(), String> {
    use std::path::Component;
    if path.is_absolute() {
        return Ok(());
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err("leaves the working folder through `..`".into());
    }
    let Ok(cwd) = std::env::current_dir().and_then(|d| d.canonicalize()) else {
        return Ok(());
    };
    let mut probe = cwd.join(path);
    while !probe.exists() {
        if !probe.pop() {
            return Ok(());
        }
    }
    match probe.canonicalize() {
        Ok(real) if !real.starts_with(&cwd) => Err(format!(
            "leaves the working folder through a symlink (it leads to `{}`)",
            real.display()
        )),
        _ => Ok(()),
    }
}

fn apply_override(raw: &mut crate::file::RawPipeline, o: &Override) -> Result<()> {
    if o.stage == "pipeline" {
        let header = &mut raw.pipeline;
        let key = o.key.join(".");
        let text = |v: &toml::Value| match v {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match key.as_str() {
            "seed" => {
                header.seed = Some(
                    o.value
                        .as_integer()
                        .and_then(|v| u64::try_from(v).ok())
                        .ok_or_else(|| {
                            Error::Override(format!(
                                "`--set {}`: `seed` must be a whole number",
                                o.text
                            ))
                        })?,
                )
            }
            "name" => header.name = Some(text(&o.value)),
            "output" => header.output = Some(PathBuf::from(text(&o.value))),
            "runs" => header.runs = Some(PathBuf::from(text(&o.value))),
            "description" => header.description = Some(text(&o.value)),
            _ => {
                return Err(Error::Override(format!(
                    "`--set {}`: the pipeline header has no key `{key}` (keys: seed, name, output, runs, description)",
                    o.text
                )));
            }
        }
        return Ok(());
    }
    let names: Vec<String> = raw.stages.keys().cloned().collect();
    let Some(stage) = raw.stages.get_mut(&o.stage) else {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let hint = crate::did_you_mean(&o.stage, &names)
            .map(|n| format!(" (did you mean `{n}`?)"))
            .unwrap_or_default();
        return Err(Error::Override(format!(
            "`--set {}`: no stage `{}`{hint}; the stages are: {}",
            o.text,
            o.stage,
            names.join(", ")
        )));
    };
    let span = stage.uses.span();
    let with = stage
        .with
        .get_or_insert_with(|| toml::Spanned::new(span, toml::Table::new()));
    let mut table = with.clone().into_inner();
    let mut cursor = &mut table;
    let (last, parents) = o.key.split_last().unwrap_or((&o.key[0], &[]));
    for part in parents {
        let entry = cursor
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cursor = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(Error::Override(format!(
                    "`--set {}`: `{part}` is not a table",
                    o.text
                )));
            }
        };
    }
    cursor.insert(last.clone(), o.value.clone());
    *with = toml::Spanned::new(with.span(), table);
    Ok(())
}

/// Deserializes a stage's `with` table (empty when absent) into its parameters,
/// pointing at the offending key when serde names one.
fn with_table<T: DeserializeOwned>(
    source: &Source,
    stage_name: &str,
    stage: &RawStage,
) -> Result<T> {
    let empty = toml::Spanned::new(stage.uses.span(), toml::Table::new());
    let with = stage.with.as_ref().unwrap_or(&empty);
    T::deserialize(toml::Value::Table(with.get_ref().clone())).map_err(|e| {
        let message = e.message().trim().to_string();
        let key = message
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next());
        let offset = key
            .and_then(|k| source.find_key(with.span(), k))
            .unwrap_or(with.span().start);
        source.error_at(
            offset,
            format!("stage `{stage_name}`: {message}"),
            unknown_field_hint(&message),
        )
    })
}

fn check_stage(source: &Source, stage_name: &str, stage: &RawStage) -> Result<StageKind> {
    let uses = stage.uses.get_ref().as_str();
    let invalid = |message: String| {
        let at = stage
            .with
            .as_ref()
            .map_or(stage.uses.span().start, |w| w.span().start);
        source.error_at(at, format!("stage `{stage_name}`: {message}"), None)
    };
    Ok(match uses {
        "ingest" => {
            let Some(with) = &stage.with else {
                return Err(source.error_at(
                    stage.uses.span().start,
                    format!("stage `{stage_name}` (uses ingest) has no `with` table"),
                    Some("give the events file: `with = { path = \"events.csv\" }`".into()),
                ));
            };
            if !with.get_ref().contains_key("path") {
                return Err(source.error_at(
                    with.span().start,
                    format!("stage `{stage_name}`: missing `path` of the events file"),
                    None,
                ));
            }
            let params: userlens_ingest::SourceParams = with_table(source, stage_name, stage)?;
            StageKind::Ingest(params.check().map_err(|e| invalid(e.to_string()))?)
        }
        "features" => {
            let params: userlens_features::FeatureParams = with_table(source, stage_name, stage)?;
            StageKind::Features {
                users: params.users.clone(),
                params: params.check().map_err(|e| invalid(e.to_string()))?,
            }
        }
        "profile" => {
            let params: userlens_profile::ProfileParams = with_table(source, stage_name, stage)?;
            StageKind::Profile(params.check().map_err(|e| invalid(e.to_string()))?)
        }
        "predict" => {
            let params: userlens_predict::PredictParams = with_table(source, stage_name, stage)?;
            StageKind::Predict(Box::new(
                params.check().map_err(|e| invalid(e.to_string()))?,
            ))
        }
        "report" => {
            if stage.needs.is_empty() {
                return Err(source.error_at(
                    stage.uses.span().start,
                    format!("stage `{stage_name}` (uses report) needs the stages whose tables it reports"),
                    Some("add `needs = [\"personas\"]` (a profile or predict stage)".into()),
                ));
            }
            StageKind::Report(with_table(source, stage_name, stage)?)
        }
        other => {
            let hint = crate::did_you_mean(other, &STAGE_KINDS)
                .map(|k| format!("did you mean `{k}`?"))
                .unwrap_or_else(|| format!("stage kinds are: {}", STAGE_KINDS.join(", ")));
            return Err(source.error_at(
                stage.uses.span().start,
                format!("stage `{stage_name}` uses `{other}`, which is not a stage kind"),
                Some(hint),
            ));
        }
    })
}

/// Kahn's algorithm, ties broken by declaration order; a cycle is reported with
/// the stages on it.
fn topological_order(
    source: &Source,
    declared: &[(&String, &RawStage)],
    needs: &[Vec<usize>],
) -> Result<Vec<usize>> {
    let n = declared.len();
    let mut waiting: Vec<usize> = needs.iter().map(Vec::len).collect();
    let mut done = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        let Some(next) = (0..n).find(|&i| !done[i] && waiting[i] == 0) else {
            let stuck = (0..n).find(|&i| !done[i]).unwrap_or(0);
            let cycle = find_cycle(stuck, needs, &done);
            let path: Vec<&str> = cycle.iter().map(|&i| declared[i].0.as_str()).collect();
            let (_, first) = declared[cycle[0]];
            return Err(source.error_at(
                first.uses.span().start,
                format!("the stages form a cycle: {}", path.join(" -> ")),
                Some("remove one of these `needs`".into()),
            ));
        };
        done[next] = true;
        order.push(next);
        for (i, stage_needs) in needs.iter().enumerate() {
            waiting[i] -= stage_needs.iter().filter(|&&d| d == next).count();
        }
    }
    Ok(order)
}

/// Follows unfinished needs from `start` until a stage repeats.
fn find_cycle(start: usize, needs: &[Vec<usize>], done: &[bool]) -> Vec<usize> {
    let mut path = vec![start];
    let mut current = start;
    loop {
        let Some(&next) = needs[current].iter().find(|&&d| !done[d]) else {
            return path;
        };
        if let Some(at) = path.iter().position(|&p| p == next) {
            let mut cycle = path[at..].to_vec();
            cycle.push(next);
            return cycle;
        }
        path.push(next);
        current = next;
    }
}
