//! Pass two: names resolved, parameters checked, stages ordered.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::file::{RawStage, Source, unknown_field_hint};
use crate::stage::{CheckFailure, CheckedStage, Declared, Registry};

mod header;
mod overrides;
pub use header::Gates;
use header::{check_gates, header_error};
pub use overrides::Override;
use overrides::{apply_override, set_error};

/// Most stages a pipeline may have.
pub const MAX_STAGES: usize = 64;
/// Most retries of one stage.
pub const MAX_RETRIES: u32 = 10;
/// Longest wait before a retry.
pub const MAX_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(86_400);
/// Most parts of a `--set` key (`stage.a.b.c`).
pub const MAX_SET_DEPTH: usize = 8;

/// The longest stage or pipeline name: names become folder names, a run folder's
/// path holds both, and a file system takes at most 255 bytes for one.
pub const MAX_NAME_BYTES: usize = 128;

/// Whether a stage or pipeline name is a plain name: ASCII letters, digits, `-`, `_`,
/// at most [`MAX_NAME_BYTES`] (names become folder names).
pub(crate) fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A name as an error shows it: cut past [`MAX_NAME_BYTES`] characters.
fn shown(name: &str) -> String {
    match name.char_indices().nth(MAX_NAME_BYTES) {
        Some((cut, _)) => format!("{:?}... ({} bytes)", &name[..cut], name.len()),
        None => format!("{name:?}"),
    }
}

/// One stage of a plan.
#[derive(Debug, Clone)]
pub struct PlannedStage {
    /// Name in the pipeline file.
    pub name: String,
    /// Kind and checked parameters.
    pub stage: Arc<dyn CheckedStage>,
    /// Indices (in plan order) of the stages it needs.
    pub needs: Vec<usize>,
    /// Those of `needs` it asked for work on its behalf (see [`crate::Stage::ask`]).
    pub asked: Vec<usize>,
    /// Parameters as given (after `--set`), for the run record and cache keys.
    pub params: serde_json::Value,
    /// Extra attempts after a failure.
    pub retries: u32,
    /// Wait before the first retry; doubled before each further one.
    pub retry_delay: std::time::Duration,
    /// Whether a stage of its kind runs before it in the whole file (`--until` or
    /// not): its files then take its name before theirs.
    pub follows_its_kind: bool,
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
    /// What a run with the file's own `output` and `runs` would refuse before any
    /// work (`/`, a folder inside the runs folder, a name too long), located in the
    /// file: `validate` reports it; a run checks the folders it is given instead.
    pub output_error: Option<Box<crate::error::FileError>>,
    /// Root of the run folders (`<runs>/<pipeline>/<run-id>/`).
    pub runs: PathBuf,
    /// Stages in run order.
    pub stages: Vec<PlannedStage>,
    /// Quality gates.
    pub gates: Gates,
    /// Where the per-part work runs (`--engine` overrides it); not in the cache keys,
    /// as either engine makes the same outputs.
    pub engine: crate::engine::Engine,
    /// On a cluster run, where the files its executors read go (the event parts,
    /// k-means' rows): `<shared_dir>/<pipeline>/<runs-id>/<run-id>/<stage>/` (the runs
    /// folder's own id, `keys::runs_folder_id`), an absolute path
    /// that every machine mounts alike. `None`: in the run's folder under `runs`.
    pub shared_dir: Option<PathBuf>,
    /// The stage kinds it was planned with.
    pub registry: Registry,
    /// The pipeline file's text, to plan it again (a resumed run's overrides).
    pub text: String,
    /// The `--set` overrides it was planned with.
    pub overrides: Vec<Override>,
}

impl PlannedStage {
    /// The stage kind's `uses` name.
    pub fn uses(&self) -> &'static str {
        self.stage.uses()
    }
}

impl Plan {
    /// The same pipeline file planned with other overrides.
    pub fn replan(&self, overrides: &[Override]) -> Result<Plan> {
        load_str_with(&self.registry, &self.path, &self.text, overrides)
    }

    /// The same pipeline file planned with only stage `name` and the stages it
    /// needs (`--until`).
    pub fn until(&self, name: &str) -> Result<Plan> {
        let source = Source {
            path: self.path.clone(),
            text: self.text.clone(),
        };
        plan_source(&self.registry, &source, &self.overrides, Some(name))
    }

    /// Whether a stage after `done` needs stage `from`'s tables.
    pub(crate) fn needed_after(&self, from: usize, done: usize) -> bool {
        self.stages
            .get(done + 1..)
            .is_some_and(|later| later.iter().any(|stage| stage.needs.contains(&from)))
    }

    /// The columns of stage `from`'s events that the stages after `done` that need
    /// it read: `None` when one of them reads every column, an empty set when none
    /// needs it.
    pub(crate) fn event_columns_after(
        &self,
        from: usize,
        done: usize,
    ) -> Option<BTreeSet<&'static str>> {
        let mut read = BTreeSet::new();
        for stage in self.stages.iter().skip(done + 1) {
            if stage.needs.contains(&from) {
                read.extend(stage.stage.event_columns()?);
            }
        }
        Some(read)
    }

    /// The columns of stage `from`'s table `table` that the stages after `done` that
    /// need it read: `None` when one of them reads every column.
    pub(crate) fn table_columns_after(
        &self,
        from: usize,
        done: usize,
        table: &str,
    ) -> Option<BTreeSet<&'static str>> {
        let mut read = BTreeSet::new();
        for stage in self.stages.iter().skip(done + 1) {
            if stage.needs.contains(&from) {
                read.extend(stage.stage.table_columns(table)?);
            }
        }
        Some(read)
    }
}

/// Reads, checks and orders a pipeline file, applying overrides first.
pub fn load(path: &Path, overrides: &[Override]) -> Result<Plan> {
    let source = Source::read(path)?;
    plan_source(&Registry::builtin(), &source, overrides, None)
}

/// Plans a pipeline given as text (`path` is used in messages and for the name).
pub fn load_str(path: &Path, text: &str, overrides: &[Override]) -> Result<Plan> {
    load_str_with(&Registry::builtin(), path, text, overrides)
}

/// Lets each stage ask the stages it needs for work on its behalf ([`crate::Stage::ask`]),
/// in plan order.
fn ask_needs(stages: &mut [PlannedStage]) {
    for index in 0..stages.len() {
        let (before, rest) = stages.split_at_mut(index);
        let stage = &mut rest[0];
        for &need in &stage.needs {
            // Needs come first in plan order; the plan holds the only handles yet.
            let needed = before
                .get_mut(need)
                .and_then(|n| Arc::get_mut(&mut n.stage));
            let (Some(needed), Some(asking)) = (needed, Arc::get_mut(&mut stage.stage)) else {
                continue;
            };
            if asking.ask(needed) {
                stage.asked.push(need);
            }
        }
    }
}

/// [`load_str`] with the stage kinds of `registry`.
pub fn load_str_with(
    registry: &Registry,
    path: &Path,
    text: &str,
    overrides: &[Override],
) -> Result<Plan> {
    let source = Source {
        path: path.to_path_buf(),
        text: text.to_string(),
    };
    plan_source(registry, &source, overrides, None)
}

/// Plans `source`; with `until`, only that stage and the stages it needs, directly
/// or not (nothing else asks them for work).
fn plan_source(
    registry: &Registry,
    source: &Source,
    overrides: &[Override],
    until: Option<&str>,
) -> Result<Plan> {
    let mut raw = source.parse()?;
    for o in overrides {
        apply_override(&mut raw, o, registry)?;
    }
    let header = &raw.pipeline;
    let name = header.name.clone().unwrap_or_else(|| {
        source
            .path
            .file_stem()
            .map_or_else(|| "pipeline".into(), |s| s.to_string_lossy().into_owned())
    });
    if !plain_name(&name) {
        return Err(header_error(
            source,
            overrides,
            "name",
            format!(
                "pipeline name {} must be letters, digits, `-` and `_`, at most \
                 {MAX_NAME_BYTES} bytes",
                shown(&name)
            ),
            header.name.is_none().then(|| {
                "the name is the file's own when `[pipeline]` gives none: set `name = \"...\"`"
                    .into()
            }),
        ));
    }
    if raw.stages.is_empty() {
        return Err(source.error_at(
            0,
            "the pipeline has no stages".into(),
            Some("add a `[stages.<name>]` table with `uses = \"ingest\"`".into()),
        ));
    }
    if raw.stages.len() > MAX_STAGES {
        return Err(source.error_at(
            0,
            format!(
                "the pipeline has {} stages, more than the {MAX_STAGES} allowed",
                raw.stages.len()
            ),
            None,
        ));
    }

    // Declaration order decides ties in the run order.
    let mut declared: Vec<(&String, &RawStage)> = raw.stages.iter().collect();
    declared.sort_by_key(|(_, s)| s.uses.span().start);
    let names: Vec<&str> = declared.iter().map(|(n, _)| n.as_str()).collect();

    let mut kinds = Vec::with_capacity(declared.len());
    let mut needs = Vec::with_capacity(declared.len());
    for (stage_name, stage) in &declared {
        if stage_name.as_str() == "pipeline" {
            return Err(source.error_at(
                stage.uses.span().start,
                "a stage cannot be named `pipeline`: `--set pipeline.<key>` sets the header".into(),
                Some("give it another name, such as `personas`".into()),
            ));
        }
        if !plain_name(stage_name) {
            return Err(source.error_at(
                stage.uses.span().start,
                format!(
                    "stage name {} must be ASCII letters, digits, `-` and `_`, at most \
                     {MAX_NAME_BYTES} bytes",
                    shown(stage_name)
                ),
                Some("stage names become folder names under the run folder".into()),
            ));
        }
        let need_kinds = (stage.needs.iter())
            .filter_map(|need| raw.stages.get(need.get_ref()))
            .map(|need| need.uses.get_ref().clone())
            .collect();
        kinds.push(check_stage(
            registry, source, stage_name, stage, need_kinds, overrides,
        )?);
        let mut resolved = Vec::new();
        for need in &stage.needs {
            let Some(index) = names.iter().position(|n| n == need.get_ref()) else {
                let hint = userlens_model::did_you_mean(need.get_ref(), &names)
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
            // A stage reads the tables of one stage of each kind.
            let kind_of = |name: &str| raw.stages.get(name).map(|n| n.uses.get_ref().clone());
            let same_kind = (stage.needs.iter())
                .take_while(|earlier| !std::ptr::eq(*earlier, need))
                .find(|earlier| kind_of(earlier.get_ref()) == kind_of(need.get_ref()));
            if same_kind.is_some_and(|e| e.get_ref() == need.get_ref()) {
                return Err(source.error_at(
                    need.span().start,
                    format!(
                        "stage `{stage_name}` lists `{}` twice in `needs`",
                        need.get_ref()
                    ),
                    None,
                ));
            }
            if let Some(earlier) = same_kind {
                let kind = kind_of(need.get_ref()).unwrap_or_default();
                return Err(source.error_at(
                    need.span().start,
                    format!(
                        "stage `{stage_name}` needs `{}` and `{}`, both `{kind}` stages: a stage \
                         reads the tables of one stage of each kind, so the second's would go unread",
                        earlier.get_ref(),
                        need.get_ref()
                    ),
                    Some(
                        "keep one in `needs`; to publish the other's tables too, give them a \
                         report stage of their own, whose files take its name before theirs"
                            .to_string(),
                    ),
                ));
            }
            resolved.push(index);
        }
        needs.push(resolved);
    }

    let mut order = topological_order(source, &declared, &needs)?;
    let mut follows_its_kind = vec![false; declared.len()];
    for (at, &index) in order.iter().enumerate() {
        let kind = kinds[index].uses();
        follows_its_kind[index] = order[..at].iter().any(|&i| kinds[i].uses() == kind);
    }
    if let Some(target) = until {
        let wanted = needed_by(target, &names, &needs)?;
        order.retain(|&index| wanted[index]);
    }
    let mut position = vec![0; declared.len()];
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
                    .is_some_and(|s: &PlannedStage| s.stage.provides().contains(table))
            });
            if !provided {
                let providers = registry.providers(table);
                return Err(source.error_at(
                    stage.uses.span().start,
                    format!(
                        "stage `{stage_name}` (uses {}) needs a stage that provides `{table}`",
                        kind.uses()
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
        if retry_delay > MAX_RETRY_DELAY {
            let at = stage.retry_delay.as_ref().map_or(0, |t| t.span().start);
            return Err(source.error_at(
                at,
                format!("stage `{stage_name}`: `retry_delay` is longer than a day"),
                None,
            ));
        }
        let retries = stage.retries.as_ref().map_or(0, |r| *r.get_ref());
        if let Some(given) = stage.retries.as_ref().filter(|_| retries > MAX_RETRIES) {
            return Err(source.error_at(
                given.span().start,
                format!(
                    "stage `{stage_name}`: `retries = {retries}` is more than the {MAX_RETRIES} allowed"
                ),
                None,
            ));
        }
        stages.push(PlannedStage {
            name: stage_name.clone(),
            stage: kind,
            needs: stage_needs,
            asked: Vec::new(),
            params,
            retries,
            retry_delay,
            follows_its_kind: follows_its_kind[index],
        });
    }
    drop(kinds);
    ask_needs(&mut stages);
    // A stage's need that the needed stage's parameters leave out: that stage's error.
    for stage in &stages {
        for &need in &stage.needs {
            let needed = &stages[need];
            let Err((key, why)) = stage.stage.check_need(&*needed.stage) else {
                continue;
            };
            let message = format!("stage `{}` {why}", stage.name);
            let path = [key.clone()];
            if let Some(e) = set_error(overrides, &needed.name, &path, &message, None) {
                return Err(e);
            }
            // The key in the needed stage's own table, where the file has it.
            let header = [']', '.'].map(|end| format!("[stages.{}{end}", needed.name));
            let table = header
                .iter()
                .filter_map(|h| source.text.find(h.as_str()))
                .min();
            let from = table.unwrap_or(0);
            let at = (source.find_key(from..source.text.len(), &key))
                .or(table)
                .unwrap_or(0);
            return Err(source.error_at(at, format!("stage `{}`: {message}", needed.name), None));
        }
    }
    let output = header
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("out").join(&name));
    let runs = header.runs.clone().unwrap_or_else(|| PathBuf::from("runs"));
    for (key, path) in [("output", &output), ("runs", &runs)] {
        // The ledger and the lock would be made in the working folder.
        if key == "runs" && path.as_os_str().is_empty() {
            return Err(header_error(
                source,
                overrides,
                key,
                "`runs` is empty".to_string(),
                Some("give a folder, such as `runs = \"runs\"`".into()),
            ));
        }
        if let Err(why) = crate::publish::contained(path) {
            return Err(header_error(
                source,
                overrides,
                key,
                format!("`{key}` {:?} {why}", path.display().to_string()),
                Some("give an absolute path to write outside the working folder".into()),
            ));
        }
    }
    let shown = output.display().to_string();
    let at = source.find_header_key("output").unwrap_or(0);
    if crate::publish::other_placeholder(&output) {
        return Err(header_error(
            source,
            overrides,
            "output",
            format!("`output` {shown:?} holds a placeholder other than `{{as_of}}`"),
            Some("`{as_of}` is the one placeholder, the run's as-of date".into()),
        ));
    }
    // Kept for `validate`, not refused here: a run given `--out` or `--runs` may not
    // use these, and checks the folders it does use before any work.
    let output_error = crate::publish::refused_output(&output, &runs)
        .map(|why| source.located(at, format!("`output` {shown:?} {why}"), None));
    check_gates(source, overrides, &header.gates)?;
    let engine = match &header.engine {
        None => crate::engine::Engine::Local,
        Some(text) => crate::engine::Engine::parse(text.get_ref()).map_err(|why| {
            source.error_at(
                text.span().start,
                format!("`engine` {:?} is not an engine: {why}", text.get_ref()),
                Some("write `engine = \"local\"` or `engine = \"ballista://host:50050\"`".into()),
            )
        })?,
    };
    let shared_dir = match &header.shared_dir {
        None => None,
        Some(path) if path.get_ref().is_absolute() => Some(path.get_ref().clone()),
        Some(path) => {
            return Err(source.error_at(
                path.span().start,
                format!(
                    "`shared_dir` {:?} is not an absolute path",
                    path.get_ref().display().to_string()
                ),
                Some("every machine of the cluster reads it by the same absolute path".into()),
            ));
        }
    };
    Ok(Plan {
        engine,
        shared_dir,
        output_error,
        output,
        runs,
        name,
        path: source.path.clone(),
        description: header.description.clone(),
        seed: header.seed.unwrap_or(42),
        stages,
        gates: header.gates.clone(),
        registry: registry.clone(),
        text: source.text.clone(),
        overrides: overrides.to_vec(),
    })
}

/// Deserialises and checks a stage's `with` table (empty when absent) through its
/// kind in `registry`, pointing at the offending key when serde names one.
fn check_stage(
    registry: &Registry,
    source: &Source,
    stage_name: &str,
    stage: &RawStage,
    need_kinds: Vec<String>,
    overrides: &[Override],
) -> Result<Arc<dyn CheckedStage>> {
    let uses = stage.uses.get_ref().as_str();
    let Some(kind) = registry.kind(uses) else {
        let kinds = registry.names();
        let hint = userlens_model::did_you_mean(uses, &kinds)
            .map(|k| format!("did you mean `{k}`?"))
            .unwrap_or_else(|| format!("stage kinds are: {}", kinds.join(", ")));
        return Err(source.error_at(
            stage.uses.span().start,
            format!("stage `{stage_name}` uses `{uses}`, which is not a stage kind"),
            Some(hint),
        ));
    };
    let empty = toml::Spanned::new(stage.uses.span(), toml::Table::new());
    let with = stage.with.as_ref().unwrap_or(&empty);
    let declared = Declared {
        name: stage_name.to_string(),
        needs: stage.needs.len(),
        need_kinds,
    };
    kind.check(toml::Value::Table(with.get_ref().clone()), &declared)
        .map_err(|failure| match failure {
            CheckFailure::Shape { message, .. } if stage.with.is_none() => source.error_at(
                stage.uses.span().start,
                format!("stage `{stage_name}` (uses {uses}) has no `with` table: {message}"),
                unknown_field_hint(&message),
            ),
            CheckFailure::Shape { message, mut path } => {
                if let Some(key) = message
                    .strip_prefix("unknown field `")
                    .and_then(|r| r.split('`').next())
                    .filter(|key| path.last().is_none_or(|last| last != key))
                {
                    path.push(key.to_string());
                }
                let hint = unknown_field_hint(&message);
                if let Some(e) = set_error(overrides, stage_name, &path, &message, hint.clone()) {
                    return e;
                }
                // Each key of the path is looked for after the one before it; a
                // nested table's header may come after the `with` table's own span.
                let mut offset = with.span().start;
                for key in path.iter().filter(|k| k.parse::<usize>().is_err()) {
                    if let Some(at) = source.find_key(offset..source.text.len(), key) {
                        offset = at;
                    }
                }
                source.error_at(offset, format!("stage `{stage_name}`: {message}"), hint)
            }
            CheckFailure::Invalid(invalid) => {
                // A `--set`'s mistake if one set a parameter the message names,
                // `like_this`; else the file's, at the first one's line.
                // The parameter at fault when the stage names it, else every name the
                // message gives.
                let named: Vec<&str> = match invalid.key.as_deref() {
                    Some(key) => vec![key],
                    None => invalid.message.split('`').skip(1).step_by(2).collect(),
                };
                let key = named.first().copied().unwrap_or_default();
                let (message, hint) = (&invalid.message, invalid.hint.clone());
                for name in &named {
                    let path: Vec<String> = name.split('.').map(str::to_string).collect();
                    if let Some(e) = set_error(overrides, stage_name, &path, message, hint.clone())
                    {
                        return e;
                    }
                }
                let at = if invalid.at_uses {
                    stage.uses.span().start
                } else {
                    // A dotted name (`columns.amount`) is found a key at a time, each
                    // after the one before, as a shape's path is.
                    let mut offset = with.span().start;
                    for part in key.split('.').filter(|p| !p.is_empty()) {
                        if let Some(at) = source.find_key(offset..source.text.len(), part) {
                            offset = at;
                        }
                    }
                    offset
                };
                source.error_at(
                    at,
                    format!("stage `{stage_name}`: {}", invalid.message),
                    invalid.hint,
                )
            }
        })
}

/// Which stages (by declaration index) `target` needs, directly or not, itself
/// included.
fn needed_by(target: &str, names: &[&str], needs: &[Vec<usize>]) -> Result<Vec<bool>> {
    let Some(start) = names.iter().position(|n| *n == target) else {
        return Err(no_stage("--until", target, names));
    };
    let mut wanted = vec![false; names.len()];
    let mut todo = vec![start];
    while let Some(index) = todo.pop() {
        if !std::mem::replace(&mut wanted[index], true) {
            todo.extend(&needs[index]);
        }
    }
    Ok(wanted)
}

/// The usage error of a command-line `option` naming `name`, which is none of the
/// stages `names`.
pub(crate) fn no_stage(option: &str, name: &str, names: &[&str]) -> Error {
    let hint = userlens_model::did_you_mean(name, names)
        .map(|n| format!(" (did you mean `{n}`?)"))
        .unwrap_or_default();
    Error::Usage(format!(
        "`{option} {name}`: no stage `{name}`{hint}; the stages are: {}",
        names.join(", ")
    ))
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
