//! Cache keys of a plan's stages, and dry runs that show what a run would reuse.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Serialize;

use crate::artifacts;
use crate::error::{Error, Result, io};
use crate::ledger::Ledger;
use crate::plan::Plan;
use crate::previous::{Previous, previous_run};
use crate::record::RunStatus;
use crate::runner::RunOptions;

/// Bumped when a stage's output for the same inputs and parameters changes, so
/// that skip-unchanged never reuses an artifact made by different code.
const CODE_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "+stages.24");

/// The as-of label of a run without an as-of date.
const LATEST: &str = "latest";

/// What a dry run finds: each stage's plan, and what the run would warn of.
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    /// The stages, in run order.
    pub stages: Vec<PlannedRun>,
    /// Warnings the run would give before its first stage.
    pub warnings: Vec<String>,
}

/// A stage of a dry run: its key and whether it would be skipped.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedRun {
    /// Stage name.
    pub name: String,
    /// Stage kind.
    pub uses: &'static str,
    /// Cache key.
    pub key: String,
    /// The run whose artifact would be reused.
    pub reuse: Option<String>,
}

pub(crate) fn as_of_label(as_of: Option<NaiveDate>) -> String {
    as_of.map_or_else(|| LATEST.to_string(), |d| d.to_string())
}

pub(crate) fn runs_root(plan: &Plan, options: &RunOptions) -> PathBuf {
    options.runs.clone().unwrap_or_else(|| plan.runs.clone())
}

/// `{as_of}` in the output path becomes the run's as-of date (`latest` without one),
/// so each date of a nightly pipeline has its own partition.
pub(crate) fn output_dir(plan: &Plan, options: &RunOptions, as_of: &str) -> PathBuf {
    let dir = options
        .output
        .clone()
        .unwrap_or_else(|| plan.output.clone());
    PathBuf::from(dir.to_string_lossy().replace("{as_of}", as_of))
}

/// Cache keys of every stage, in plan order. `read` holds the hashes of input files
/// as a stage of this run read them (by path as given), which stand for the files'
/// hashes now; `previous` is the run this one compares itself with.
pub(crate) fn cache_keys(
    plan: &Plan,
    as_of: &str,
    previous: Option<&Previous>,
    read: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut keys: Vec<String> = Vec::with_capacity(plan.stages.len());
    for stage in &plan.stages {
        let mut hasher = blake3::Hasher::new();
        let mut put = |part: &str| {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        };
        put(CODE_VERSION);
        put(&plan.name);
        put(&stage.name);
        put(stage.uses());
        put(&stage.params.to_string());
        let asked = stage.stage.asked_key();
        if !asked.is_empty() {
            put(&asked);
        }
        put(&plan.seed.to_string());
        put(as_of);
        for &need in &stage.needs {
            put(&keys[need]);
        }
        for file in stage.stage.input_files() {
            // A missing file gets no fingerprint: the stage runs and reports it.
            match read.get(&file.display().to_string()) {
                Some(blake3) => put(blake3),
                None => match userlens_ingest::fingerprint(&file) {
                    Ok(info) => put(&info.blake3),
                    Err(_) => put("missing"),
                },
            }
        }
        // A dated run's stage that compares itself with the run before depends on
        // that run's artifact of it: the run that made it (a rerun that reused it
        // changes nothing) and its content. Not a `latest` run's: its run before is
        // the last one, any rerun's.
        if let Some(previous) = previous.filter(|_| stage.stage.reads_previous())
            && as_of != LATEST
        {
            put(match previous.artifacts.contains_key(&stage.name) {
                true => previous.made_by(&stage.name),
                false => "",
            });
            put(previous
                .contents
                .get(&stage.name)
                .map_or("", String::as_str));
        }
        keys.push(hasher.finalize().to_hex().to_string());
    }
    keys
}

/// A warning for each input file of the stages that would run (`only`'s stage, else
/// every stage) that is not there: a stage whose side table another job writes
/// waits for it by its retries, but a path mistyped is better known now than
/// after the stages before it.
pub(crate) fn missing_inputs(plan: &Plan, only: Option<usize>) -> Vec<String> {
    let stages = plan.stages.iter().enumerate();
    let to_run = stages.filter(|(index, _)| only.is_none_or(|only| only == *index));
    let mut warnings = Vec::new();
    for (_, stage) in to_run {
        for file in stage.stage.input_files() {
            if file.exists() {
                continue;
            }
            let looked = std::path::absolute(&file).unwrap_or_else(|_| file.clone());
            let at = match looked == file {
                true => String::new(),
                false => format!(" (looked for at `{}`)", looked.display()),
            };
            warnings.push(format!(
                "stage `{}` reads `{}`, which is not there{at}: the run stops at that stage \
                 unless it is there when the stage starts",
                stage.name,
                file.display(),
            ));
        }
    }
    warnings
}

/// The position of `--only`'s stage, if one is named.
pub(crate) fn only_index(plan: &Plan, options: &RunOptions) -> Result<Option<usize>> {
    let Some(name) = &options.only else {
        return Ok(None);
    };
    if let Some(index) = plan.stages.iter().position(|s| s.name == *name) {
        return Ok(Some(index));
    }
    let names: Vec<&str> = plan.stages.iter().map(|s| s.name.as_str()).collect();
    Err(crate::plan::no_stage("--only", name, &names))
}

/// The run that did this date as `options` would do it now, if any: it finished
/// every stage with the cache keys they would have now (the same input and
/// parameters), and the folder this run would publish to still holds its report.
/// A backfill skips such a date; any other it runs again.
pub fn done_as_asked(plan: &Plan, options: &RunOptions) -> Result<Option<String>> {
    let base = plan;
    let plan = &options.plan_of(plan)?;
    let label = as_of_label(options.as_of);
    let root = runs_root(plan, options);
    if !root.join("ledger.sqlite").is_file() {
        return Ok(None);
    }
    let output = output_dir(plan, options, &label);
    let Some(run_id) = crate::publish::published_by(&output) else {
        return Ok(None);
    };
    // A folder no longer as its run published it (a file gone or edited, but the page
    // `report` renders again, unless it is gone) is not done: the run publishes it
    // again, or says what it would lose.
    let page = userlens_report::files::REPORT_HTML;
    let page_gone = crate::publish::listed(&output, page) && !output.join(page).is_file();
    if page_gone || crate::publish::changed_since_published(&output, page)?.is_some() {
        return Ok(None);
    }
    let ledger = Ledger::open_existing(&root)?;
    let Some(run) = ledger.run(&run_id)? else {
        return Ok(None);
    };
    // A run killed between its publish and its last ledger write is still running
    // there; the folder says how it ended.
    let status = crate::resume::settled_status(base, &run);
    if run.pipeline != plan.name || run.as_of != label || status != RunStatus::Ok {
        return Ok(None);
    }
    let done = ledger.stages(&run_id)?;
    let previous = previous_run(&ledger, plan, &label, &mut Vec::new())?;
    let keys = cache_keys(plan, &label, previous.as_ref(), &BTreeMap::new());
    let same = plan.stages.iter().zip(keys).all(|(stage, key)| {
        done.iter()
            .any(|row| row.stage == stage.name && row.status.finished() && row.cache_key == key)
    });
    // Gates are no part of the keys: a night they would refuse now is not done.
    let refused = crate::record::PastRecord::read(&output)
        .and_then(|record| crate::execute::recorded_refusal(plan, &record, previous.as_ref()));
    Ok((same && refused.is_none()).then_some(run_id))
}

/// What a run would do, without doing it.
pub fn dry_run(plan: &Plan, options: &RunOptions) -> Result<DryRun> {
    // Read only: a dry run writes nothing, not even a new ledger.
    let root = runs_root(plan, options);
    crate::runner::check_runs_folder(&root)?;
    let ledger = match root.join("ledger.sqlite").is_file() {
        true => Some(Ledger::open_existing(&root)?),
        false => None,
    };
    // What the run would be refused for before any work, it is refused for here.
    let mut resumed_run = None;
    let (plan, options) = match (&options.resume, &ledger) {
        (Some(id), Some(ledger)) => {
            let row = resumed_run.insert(crate::resume::find(ledger, &root, plan, id)?);
            crate::resume::resumed(plan, options, row)?
        }
        (Some(id), None) => {
            let why = format!("no run `{id}` in the ledger `{}`", root.display());
            return Err(Error::Resume(why));
        }
        (None, _) => (plan.clone(), options.clone()),
    };
    let (plan, options) = (&options.plan_of(&plan)?, &options);
    let mut warnings: Vec<String> = (resumed_run.iter())
        .filter_map(|row| crate::resume::plan_changed(row, plan))
        .collect();
    let label = as_of_label(options.as_of);
    let output = output_dir(plan, options, &label);
    crate::publish::check_name(&output)?;
    crate::publish::check_output(&output, &root, options.force_output)?;
    let engine = options.engine_of(plan)?;
    engine.check_built(options.connect)?;
    // A cluster run does not reuse events its executors cannot read, as the run.
    let on_cluster = engine != crate::engine::Engine::Local;
    let previous = match &ledger {
        Some(ledger) => previous_run(ledger, plan, &label, &mut Vec::new())?,
        None => None,
    };
    let keys = cache_keys(plan, &label, previous.as_ref(), &BTreeMap::new());
    let mut stages = Vec::with_capacity(plan.stages.len());
    let only = only_index(plan, options)?;
    warnings.extend(missing_inputs(plan, only));
    let mut upstream_runs = true;
    for (index, (stage, key)) in plan.stages.iter().zip(keys).enumerate() {
        if only.is_some_and(|only| index > only) {
            break;
        }
        let reuse = if options.force || !upstream_runs || only == Some(index) {
            None
        } else if let Some(ledger) = &ledger {
            ledger
                .finished_stage(&key)?
                .filter(|row| {
                    let dir = Path::new(&row.artifact_dir);
                    artifacts::content_hash(dir).ok().as_ref() == Some(&row.content_hash)
                        && artifacts::listed_parts(dir).is_ok()
                        && !(on_cluster
                            && artifacts::unreadable_on_cluster(dir, plan.shared_dir.as_deref())
                                .is_some())
                })
                .map(|row| row.run_id)
        } else {
            None
        };
        upstream_runs &= reuse.is_some();
        stages.push(PlannedRun {
            name: stage.name.clone(),
            uses: stage.uses(),
            key,
            reuse,
        });
    }
    Ok(DryRun { stages, warnings })
}

/// `<as-of>_<start time>`, with a counter when two runs start in the same second:
/// a folder under `root` made for it, and an id `claim` takes (it is false when the
/// id is another pipeline's, whose folders are elsewhere).
pub(crate) fn new_run_dir(
    root: &Path,
    as_of: &str,
    started: chrono::DateTime<chrono::Utc>,
    mut claim: impl FnMut(&str, &Path) -> Result<bool>,
) -> Result<(String, PathBuf)> {
    std::fs::create_dir_all(root).map_err(io(root))?;
    let stamp = started.format("%Y%m%dT%H%M%SZ");
    let mut attempt = 0u32;
    loop {
        let id = if attempt == 0 {
            format!("{as_of}_{stamp}")
        } else {
            format!("{as_of}_{stamp}-{attempt}")
        };
        let dir = root.join(&id);
        match std::fs::create_dir(&dir) {
            Ok(()) if claim(&id, &dir)? => return Ok((id, dir)),
            Ok(()) => {
                // Empty, and made just now.
                std::fs::remove_dir(&dir).map_err(io(&dir))?;
                attempt += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => attempt += 1,
            Err(e) => return Err(io(&dir)(e)),
        }
    }
}

/// The runs folder's own id, made once and kept in `<runs>/.shared-id`: a cluster
/// run's parts go under `<shared_dir>/<pipeline>/<this id>/<run-id>`, so drivers
/// with runs folders of their own never write into each other's parts.
pub(crate) fn runs_folder_id(root: &Path) -> Result<String> {
    let path = root.join(".shared-id");
    let read = |path: &Path| -> Result<Option<String>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(text.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(path)(e)),
        }
    };
    if let Some(id) = read(&path)? {
        return valid_runs_folder_id(&path, id);
    }
    let mut seed = blake3::Hasher::new();
    seed.update(
        root.canonicalize()
            .unwrap_or_else(|_| root.to_path_buf())
            .as_os_str()
            .as_encoded_bytes(),
    );
    seed.update(&std::process::id().to_le_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    seed.update(&now.as_nanos().to_le_bytes());
    let id = seed.finalize().to_hex()[..16].to_string();
    // Written whole (a file of its own, made new), then linked into place: of two
    // processes, the first link wins and both read its id.
    let temp = root.join(format!(".shared-id.{}.tmp", std::process::id()));
    let line = format!("{id}\n");
    if let Err(e) = write_new(&temp, &line) {
        // Only a file this call made is removed.
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            let _ = std::fs::remove_file(&temp);
        }
        return Err(io(&temp)(e));
    }
    let linked = match std::fs::hard_link(&temp, &path) {
        // A file system without hard links: the id goes in as a file made new.
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => write_new(&path, &line),
        linked => linked,
    };
    std::fs::remove_file(&temp).map_err(io(&temp))?;
    match linked {
        Ok(()) => Ok(id),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let id = read(&path)?.unwrap_or_default();
            valid_runs_folder_id(&path, id)
        }
        Err(e) => Err(io(&path)(e)),
    }
}

/// Writes `text` to `path`, which must not exist yet, and syncs it.
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    file.sync_all()
}

fn valid_runs_folder_id(path: &Path, id: String) -> Result<String> {
    if id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(id);
    }
    Err(Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not the 16 hex digits userlens writes there to name this runs folder's parts under the shared_dir; remove it (finished runs keep their parts' recorded paths) and run again",
        ),
    })
}
