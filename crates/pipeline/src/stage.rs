//! The `Stage` trait every stage kind implements (the registry that lists them is
//! in `registry.rs`).
//!
//! A stage kind is one type in one file of `stages/`: its `uses` name, its
//! parameters as written under `with` and their check, the tables it needs and
//! provides, and `run`. The planner and the runner know stages only through this
//! trait, so adding a kind is a new file and a line in [`Registry::builtin`] (or
//! [`Registry::with`] for a kind defined outside this crate).

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use polars::prelude::DataFrame;
use serde::de::DeserializeOwned;
use userlens_ingest::Events;

pub(crate) use crate::registry::CheckFailure;
pub use crate::registry::Registry;

use crate::engine::{Cluster, LloydOnCluster, OnCluster};
use crate::error::Error;
use crate::plan::PlannedStage;
use crate::previous::Previous;
use crate::progress::Progress;
use crate::record::{Rows, StageMeta};

/// One kind of stage a pipeline can `use`.
pub trait Stage: Send + Sync + 'static {
    /// Parameters as written under `with` (serde, unknown keys refused).
    type Params: DeserializeOwned;
    /// Parameters after [`Stage::check`]: what [`Stage::run`] gets.
    type Checked: Debug + Send + Sync + 'static;

    /// The name pipelines give in `uses`.
    const USES: &'static str;
    /// Tables the stage always makes; the first is its main output.
    const PROVIDES: &'static [&'static str];
    /// Tables the stage makes when it can (drift against a previous run, ...).
    const MAY_PROVIDE: &'static [&'static str] = &[];
    /// Tables it needs from the stages it names in `needs`.
    const REQUIRES: &'static [&'static str] = &[];
    /// Tables it makes only for the later stages that ask for them ([`Stage::ask`]):
    /// the run frees them once every stage that asked has run.
    const ASKED: &'static [&'static str] = &[];

    /// Checks the parameters before any data is read.
    fn check(params: Self::Params, declared: &Declared) -> Result<Self::Checked, Invalid>;

    /// Files whose content is part of the stage's cache key.
    fn input_files(_checked: &Self::Checked) -> Vec<PathBuf> {
        Vec::new()
    }

    /// The event columns it reads when it requires the events (`None`: all of
    /// them). Once no later stage reads a column of events in memory, the run frees it.
    fn event_columns(_checked: &Self::Checked) -> Option<&'static [&'static str]> {
        None
    }

    /// The columns it reads of the table `table` of the stages it needs (`None`:
    /// every column; an empty list: not that table). Once no later stage reads a
    /// column of a table, the run frees it.
    fn table_columns(_checked: &Self::Checked, _table: &str) -> Option<&'static [&'static str]> {
        None
    }

    /// Asks a stage it needs, given that stage's checked parameters (`needed`, of
    /// any kind), for work done there on its behalf, such as predict asking the
    /// features stage for the features at its cutoff, made in the same pass as
    /// those at the as-of date. Called for each need, in order, when the pipeline
    /// is planned; true when it asked something (it may note so in `checked`).
    fn ask(_checked: &mut Self::Checked, _needed: &mut dyn Any) -> bool {
        false
    }

    /// What later stages asked of it ([`Stage::ask`]), for its cache key: its
    /// output depends on it as on its parameters.
    fn asked_key(_checked: &Self::Checked) -> String {
        String::new()
    }

    /// The parameters' defaults, for a `--set` of one key of a table parameter
    /// (`recommend.weights.view`) to keep the table's other keys; none by default.
    fn defaults() -> Option<toml::Table> {
        None
    }

    /// Whether the parameters of a stage it needs (`needed`, that stage's checked
    /// parameters) leave out what it reads: `Err((key, why))` names the needed
    /// stage's parameter at fault. Checked when the plan is made.
    fn check_need(_checked: &Self::Checked, _needed: &dyn Any) -> Result<(), (String, String)> {
        Ok(())
    }

    /// The tables of the run this one compares itself with that it reads
    /// ([`StageContext::previous_table`]), its meta besides: a stage with any has
    /// that run enter its cache key, and a run without them is not compared with.
    const COMPARED: &'static [&'static str] = &[];

    /// Runs the stage on the tables of the stages it needs.
    fn run(
        checked: &Self::Checked,
        ctx: &mut StageContext<'_>,
        inputs: &Inputs<'_>,
    ) -> Result<Output, StageError>;

    /// Called once the run's outputs and `run.json` are in the staging folder, before
    /// they are published (a page rendered from them); returns the files it added.
    fn finish(_checked: &Self::Checked, _staging: &Path) -> Result<Vec<String>, StageError> {
        Ok(Vec::new())
    }
}

/// What the planner knows of a stage's declaration when its parameters are checked.
#[derive(Debug, Clone)]
pub struct Declared {
    /// The stage's name in the pipeline file.
    pub name: String,
    /// How many stages it names in `needs`.
    pub needs: usize,
    /// The kinds (`uses`) of the stages it names in `needs`.
    pub need_kinds: Vec<String>,
}

/// A rejected parameter: the message, a hint, and where to point.
#[derive(Debug, Clone)]
pub struct Invalid {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// Point at the stage's `uses` line rather than its `with` table.
    pub at_uses: bool,
    /// The parameter at fault (`rules.r.when`), where the message's first
    /// backticked name is not it.
    pub key: Option<String>,
}

impl Invalid {
    /// A message pointing at the `with` table.
    pub fn new(message: impl std::fmt::Display) -> Invalid {
        Invalid {
            message: message.to_string(),
            hint: None,
            at_uses: false,
            key: None,
        }
    }

    /// The same message, about the parameter `key` (dotted).
    pub fn about(self, key: impl Into<String>) -> Invalid {
        Invalid {
            key: Some(key.into()),
            ..self
        }
    }

    /// A message pointing at the stage's `uses` line, with a hint.
    pub fn at_uses(message: impl std::fmt::Display, hint: impl Into<String>) -> Invalid {
        Invalid {
            message: message.to_string(),
            hint: Some(hint.into()),
            at_uses: true,
            key: None,
        }
    }
}

/// How a stage fails: refused input (exit 3), a failure (exit 1, retried), or a
/// failure of the run itself (not retried).
#[derive(Debug)]
pub enum StageError {
    /// Something went wrong; the stage may be retried.
    Failed(Box<dyn std::error::Error + Send + Sync>),
    /// The input data cannot be used.
    Refused(Box<dyn std::error::Error + Send + Sync>),
    /// The run cannot go on (missing table, output folder unwritable).
    Run(Error),
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for StageError {
    fn from(e: E) -> Self {
        StageError::Failed(Box::new(e))
    }
}

impl StageError {
    /// Refused input, with a message.
    pub fn refused(message: impl Into<String>) -> StageError {
        StageError::Refused(message.into().into())
    }

    /// A setting of stage `stage` that the data shows to be wrong (a feature the
    /// table does not have): the pipeline file's to mend, so never retried (exit 2).
    pub fn settings(stage: &str, e: impl std::fmt::Display) -> StageError {
        StageError::Run(Error::Usage(format!("stage `{stage}`: {e}")))
    }

    /// An input file's error: refused where the input is at fault, else a failure
    /// (which `retries` may outlast).
    pub fn of_input(e: userlens_ingest::Error) -> StageError {
        match e.is_refusal() {
            true => StageError::Refused(Box::new(e)),
            false => StageError::Failed(Box::new(e)),
        }
    }
}

/// What a stage hands on: named tables, and the events (which may be on disk).
#[derive(Default, Clone)]
pub struct Tables {
    pub(crate) frames: BTreeMap<String, DataFrame>,
    /// Tables the stage wrote to its artifact folder itself, read back only for a
    /// stage that needs it.
    pub(crate) written: BTreeMap<String, Written>,
    pub(crate) events: Option<Events>,
}

impl Tables {
    /// Adds a table.
    pub fn insert(&mut self, name: impl Into<String>, df: DataFrame) {
        self.frames.insert(name.into(), df);
    }

    /// Adds a table already written as an artifact ([`StageContext::write_blocks`]).
    pub fn insert_written(&mut self, name: impl Into<String>, written: Written) {
        self.written.insert(name.into(), written);
    }

    /// Sets the events.
    pub fn set_events(&mut self, events: Events) {
        self.events = Some(events);
    }

    /// A table by name.
    pub fn get(&self, name: &str) -> Option<&DataFrame> {
        self.frames.get(name)
    }

    /// Rows of the table `name`, the events included.
    pub(crate) fn rows(&self, name: &str) -> Option<u64> {
        match (name, &self.events) {
            ("events", Some(events)) => Some(events.height()),
            _ => self
                .get(name)
                .map(|df| df.height() as u64)
                .or_else(|| self.written.get(name).map(|w| w.rows)),
        }
    }

    /// Rows of the largest table.
    pub(crate) fn max_rows(&self) -> Option<u64> {
        let frames = self.frames.values().map(|df| df.height() as u64);
        frames
            .chain(self.written.values().map(|w| w.rows))
            .chain(self.events.as_ref().map(Events::height))
            .max()
    }
}

/// A table a stage wrote to its artifact folder a block at a time.
#[derive(Debug, Clone)]
pub struct Written {
    pub(crate) path: PathBuf,
    pub(crate) rows: u64,
    /// Columns held in memory while the table waits on disk, because a table that
    /// stays in memory holds them too: not read back from the file.
    pub(crate) held: Vec<polars::prelude::Column>,
}

/// A finished stage's tables and what it tells the run.
#[derive(Default)]
pub struct Output {
    /// Tables for the stages after it (saved as artifacts).
    pub tables: Tables,
    /// Facts for the run record (saved as `meta.json`).
    pub meta: StageMeta,
}

/// The tables of the stages a stage needs.
pub struct Inputs<'a> {
    pub(crate) needs: Vec<(&'a PlannedStage, &'a Tables)>,
    /// Events in memory that no later stage reads, handed over by the run (see
    /// [`Inputs::take_events`]).
    pub(crate) lent: Mutex<Option<Events>>,
}

impl<'a> Inputs<'a> {
    /// A table by name, if a needed stage made it (the first in `needs` wins).
    pub fn get(&self, name: &str) -> Option<&'a DataFrame> {
        self.needs.iter().find_map(|(_, tables)| tables.get(name))
    }

    /// A table by name, or an error naming it.
    pub fn table(&self, name: &str) -> Result<&'a DataFrame, StageError> {
        self.get(name).ok_or_else(|| {
            StageError::Run(Error::Usage(format!(
                "no `{name}` table among the stage's needs"
            )))
        })
    }

    /// The events among the needed stages' tables (a handle: the columns are shared).
    pub fn events(&self) -> Result<Events, StageError> {
        if let Some(events) = self.lent().as_ref() {
            return Ok(events.clone());
        }
        self.needs
            .iter()
            .find_map(|(_, tables)| tables.events.clone())
            .ok_or_else(|| {
                StageError::Run(Error::Usage(
                    "no `events` table among the stage's needs".into(),
                ))
            })
    }

    /// The events, for a stage that is done with them once it has read them: when
    /// no later stage reads them, the run hands them over and they are freed as the
    /// stage drops them (and [`Inputs::events`] finds none after this).
    pub fn take_events(&self) -> Result<Events, StageError> {
        // The guard is dropped before `events` locks again.
        let lent = self.lent().take();
        match lent {
            Some(events) => Ok(events),
            None => self.events(),
        }
    }

    fn lent(&self) -> MutexGuard<'_, Option<Events>> {
        self.lent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The checked parameters of the first needed stage of kind `S`.
    pub fn params_of<S: Stage>(&self) -> Option<&'a S::Checked> {
        self.needs
            .iter()
            .find_map(|(stage, _)| stage.stage.as_any().downcast_ref::<S::Checked>())
    }
}

/// What a running stage may read of the run and write into it.
pub struct StageContext<'a> {
    pub(crate) name: &'a str,
    pub(crate) index: usize,
    pub(crate) seed: u64,
    pub(crate) as_of: Option<i64>,
    pub(crate) dir: &'a Path,
    pub(crate) staging: &'a Path,
    pub(crate) previous: Option<&'a Previous>,
    /// `(stage, artifact folder)` of the pipeline's other runs, nearest as-of first.
    pub(crate) past: &'a [(String, PathBuf)],
    /// The names of the plan's stages.
    pub(crate) planned: Vec<&'a str>,
    pub(crate) rows: &'a Rows,
    pub(crate) progress: &'a mut dyn FnMut(&Progress),
    pub(crate) cluster: Option<&'a dyn Cluster>,
    /// The stage's folder under the pipeline's `shared_dir`, on a cluster run.
    pub(crate) shared: Option<&'a Path>,
    /// Whether the stage sent work to the cluster (recorded as its engine).
    pub(crate) on_cluster: bool,
    pub(crate) files: Vec<String>,
    /// The output files the run's earlier stages wrote: none is written again.
    pub(crate) written: &'a [String],
    /// Whether an earlier stage of the plan is of this stage's kind.
    pub(crate) follows_its_kind: bool,
    pub(crate) notes: Vec<String>,
    pub(crate) on_refusal: Option<StageMeta>,
}

impl<'a> StageContext<'a> {
    /// The cluster of a run on one (`--engine ballista://...`), for the per-part work.
    pub fn cluster(&self) -> Option<&'a dyn Cluster> {
        self.cluster
    }

    /// The per-part features of `events` on the run's cluster, as
    /// `userlens_features::build_parts` takes them: `None` on a local run, or when the
    /// events are in memory (a cluster's ingest writes parts, so only events handed
    /// over otherwise), whose features are then computed here, with a note saying so.
    pub fn remote_parts(&mut self, events: &Events) -> Option<OnCluster<'a>> {
        let cluster = self.cluster?;
        match events {
            Events::Parts { files, .. } => {
                self.on_cluster = true;
                Some(OnCluster::new(cluster, files))
            }
            Events::Memory(_) => {
                self.note(format!(
                    "stage `{}`: the events are in memory, not in parts, so their features \
                     are computed here, not on {}",
                    self.name,
                    cluster.url()
                ));
                None
            }
        }
    }

    /// k-means' Lloyd iterations on the run's cluster, as
    /// `userlens_profile::profile_with` takes them: `None` on a local run. Call
    /// [`StageContext::ran_on_cluster`] with it after the fit.
    pub fn remote_lloyd(&self) -> Option<LloydOnCluster<'a>> {
        self.cluster
            .map(|cluster| LloydOnCluster::new(cluster, self.cluster_dir()))
    }

    /// Records that the stage's work went to the cluster when `lloyd` sent it there.
    pub fn ran_on_cluster(&mut self, lloyd: &LloydOnCluster<'_>) {
        self.on_cluster |= lloyd.used();
    }

    /// What the run should record of the stage even though it is about to refuse
    /// its input (the rows it read; the files it wrote are kept too).
    pub fn keep_on_refusal(&mut self, meta: StageMeta) {
        self.on_refusal = Some(meta);
    }

    /// The stage's name in the pipeline file.
    pub fn name(&self) -> &str {
        self.name
    }

    /// The pipeline's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The run's as-of time (microseconds), given or set by an earlier stage.
    pub fn as_of(&self) -> Option<i64> {
        self.as_of
    }

    /// The folder of the stage's artifacts (for data it writes there itself).
    pub fn artifact_dir(&self) -> &Path {
        self.dir
    }

    /// The folder for the stage's files that a cluster's executors read: its folder
    /// under the pipeline's `shared_dir` on a cluster run that has one, else its
    /// artifact folder.
    pub fn cluster_dir(&self) -> &Path {
        self.shared.unwrap_or(self.dir)
    }

    /// Row counts of the run's input so far.
    pub fn rows(&self) -> &Rows {
        self.rows
    }

    /// Reports progress of a long stage.
    pub fn advanced(&mut self, done: u64, total: u64, unit: &'static str) {
        let index = self.index;
        (self.progress)(&Progress::StageAdvanced {
            index,
            done,
            total,
            unit,
        });
    }

    /// Something the reader should know: shown as a warning now, and kept in
    /// `run.json`'s notes.
    pub fn note(&mut self, message: impl Into<String>) {
        let message = message.into();
        (self.progress)(&Progress::Warning {
            message: message.clone(),
        });
        self.notes.push(message);
    }

    /// Tells the run that the stage reads its events in parts.
    pub fn out_of_core(&mut self) {
        let (index, name) = (self.index, self.name.to_string());
        (self.progress)(&Progress::OutOfCore { index, name });
    }

    /// The name `file` is written under: its own, or `<stage>.<file>` for a stage
    /// after one of its kind (a second predict stage), whatever that one wrote this
    /// time, and where an earlier stage of the run wrote that name; refused if that
    /// too was written, as the first would be lost.
    fn claim(&self, file: &str) -> Result<String, StageError> {
        let file = match self.follows_its_kind || self.written.iter().any(|f| f == file) {
            true => format!("{}.{file}", self.name),
            false => file.to_string(),
        };
        match self.written.contains(&file) {
            true => Err(StageError::Run(crate::Error::Usage(format!(
                "stage `{}` would write `{file}` over an earlier stage's output; rename or \
                 drop one of them",
                self.name
            )))),
            false => Ok(file),
        }
    }

    /// Writes a public output CSV (made safe to open in a spreadsheet).
    pub fn write_csv(&mut self, file: &str, df: &DataFrame) -> Result<(), StageError> {
        let file = self.claim(file)?;
        let _running = crate::interrupt::still_running().map_err(StageError::Run)?;
        userlens_report::write_csv(&mut df.clone(), &self.staging.join(&file))
            .map_err(|e| StageError::Run(e.into()))?;
        self.files.push(file);
        Ok(())
    }

    /// Writes the artifact `table`, and the public output CSV `file` when given,
    /// from blocks that `fill` hands over ([`userlens_report::Blocks::write`]), never
    /// holding the table whole; returns it for [`Tables::insert_written`].
    pub fn write_blocks(
        &mut self,
        file: Option<&str>,
        table: &str,
        schema: &polars::prelude::Schema,
        fill: impl FnOnce(&mut userlens_report::Blocks<'_>) -> Result<(), StageError>,
    ) -> Result<Written, StageError> {
        // Checked, not held: the blocks may take long to come, and a signal then
        // waits for none of them (their files are made first, while the folder is).
        let file = file.map(|file| self.claim(file)).transpose()?;
        drop(crate::interrupt::still_running().map_err(StageError::Run)?);
        let csv = file.as_ref().map(|file| self.staging.join(file));
        let path = self.dir.join(format!("{table}.parquet"));
        let rows = userlens_report::write_blocks(csv.as_deref(), &path, schema, fill)?;
        self.files.extend(file);
        Ok(Written {
            path,
            rows,
            held: Vec::new(),
        })
    }

    /// Writes a public output JSON file.
    pub fn write_json<T: serde::Serialize>(
        &mut self,
        file: &str,
        value: &T,
    ) -> Result<(), StageError> {
        let file = self.claim(file)?;
        let _running = crate::interrupt::still_running().map_err(StageError::Run)?;
        userlens_report::write_json(value, &self.staging.join(&file))
            .map_err(|e| StageError::Run(e.into()))?;
        self.files.push(file);
        Ok(())
    }

    /// The id of the run that made the last good run's artifact of this stage (that
    /// run, or the one it reused the artifact from), if there is a last good run.
    pub fn previous_run(&self) -> Option<&str> {
        self.previous.map(|p| p.made_by(self.name))
    }

    /// Row counts of the last good run.
    pub fn previous_rows(&self) -> Option<&Rows> {
        self.previous?.rows.as_ref()
    }

    /// A table this stage made in the last good run; one that cannot be read is
    /// noted, as nothing is compared with it.
    pub fn previous_table(&mut self, table: &str) -> Option<DataFrame> {
        let dir = self.previous?.artifacts.get(self.name)?;
        let path = dir.join(format!("{table}.parquet"));
        match crate::artifacts::read_table(&path) {
            Ok(df) => Some(df),
            Err(e) => {
                let why = match &e {
                    StageError::Failed(e) | StageError::Refused(e) => {
                        crate::error::error_chain(e.as_ref())
                    }
                    StageError::Run(e) => crate::error::error_chain(e),
                };
                self.note(format!(
                    "{}: the last good run's `{}` cannot be read ({why}): this run is not \
                     compared with it",
                    self.name,
                    path.display()
                ));
                None
            }
        }
    }

    /// What this stage told the last good run.
    pub fn previous_meta(&self) -> Option<StageMeta> {
        read_meta(self.previous?.artifacts.get(self.name)?)
    }

    /// What this stage told the pipeline's other runs, whatever their date or how
    /// they ended (a finished stage of a failed run can be reused), the as-of date
    /// nearest this run's first (an artifact reused by several runs once): for what
    /// must agree with every run, such as a persona id never given to two personas.
    /// The second value counts the artifacts gone or unreadable (folders removed to
    /// save space, a runs folder given by a relative path from elsewhere).
    pub fn past_metas(&self) -> (Vec<StageMeta>, usize) {
        let mut seen = std::collections::BTreeSet::new();
        let (mut read, mut lost) = (Vec::new(), 0);
        for (_, dir) in
            (self.past.iter()).filter(|(stage, dir)| stage == self.name && seen.insert(dir))
        {
            match read_meta(dir) {
                Some(meta) => read.push(meta),
                None => lost += 1,
            }
        }
        (read, lost)
    }

    /// The names, none of this plan's stages', of the stages of the pipeline's other
    /// runs whose record (of their nearest run) `holds` something: this stage's kind
    /// under another name, once the stage was renamed.
    pub fn past_stages_with(&self, holds: impl Fn(&StageMeta) -> bool) -> Vec<String> {
        let mut seen = std::collections::BTreeSet::new();
        (self.past.iter())
            .filter(|(stage, _)| !self.planned.contains(&stage.as_str()))
            .filter(|(stage, _)| seen.insert(stage.as_str()))
            .filter(|(_, dir)| read_meta(dir).is_some_and(|meta| holds(&meta)))
            .map(|(stage, _)| stage.clone())
            .collect()
    }
}

/// The meta file of an artifact folder, if it is there and reads.
fn read_meta(dir: &Path) -> Option<StageMeta> {
    let bytes = std::fs::read(dir.join(crate::artifacts::META)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A stage kind with its parameters checked, as a plan holds it.
pub trait CheckedStage: Debug + Send + Sync {
    /// The `uses` name.
    fn uses(&self) -> &'static str;
    /// Tables it always makes.
    fn provides(&self) -> &'static [&'static str];
    /// Tables it may make.
    fn may_provide(&self) -> &'static [&'static str];
    /// Tables it needs.
    fn requires(&self) -> &'static [&'static str];
    /// See [`Stage::event_columns`].
    fn event_columns(&self) -> Option<&'static [&'static str]>;
    /// See [`Stage::table_columns`].
    fn table_columns(&self, table: &str) -> Option<&'static [&'static str]>;
    /// Files in its cache key.
    fn input_files(&self) -> Vec<PathBuf>;
    /// See [`Stage::ASKED`].
    fn asked_tables(&self) -> &'static [&'static str];
    /// See [`Stage::ask`].
    fn ask(&mut self, needed: &mut dyn CheckedStage) -> bool;
    /// See [`Stage::asked_key`].
    fn asked_key(&self) -> String;
    /// Whether it reads the run before ([`Stage::COMPARED`]).
    fn reads_previous(&self) -> bool;
    /// See [`Stage::COMPARED`].
    fn compared(&self) -> &'static [&'static str];
    /// See [`Stage::check_need`].
    fn check_need(&self, needed: &dyn CheckedStage) -> Result<(), (String, String)>;
    /// Runs it.
    fn run(&self, ctx: &mut StageContext<'_>, inputs: &Inputs<'_>) -> Result<Output, StageError>;
    /// See [`Stage::finish`].
    fn finish(&self, staging: &Path) -> Result<Vec<String>, StageError>;
    /// The checked parameters, for [`Inputs::params_of`].
    fn as_any(&self) -> &dyn Any;
    /// The checked parameters, for [`Stage::ask`].
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

pub(crate) struct CheckedOf<S: Stage>(pub(crate) S::Checked);

impl<S: Stage> Debug for CheckedOf<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({:?})", S::USES, self.0)
    }
}

impl<S: Stage> CheckedStage for CheckedOf<S> {
    fn uses(&self) -> &'static str {
        S::USES
    }
    fn provides(&self) -> &'static [&'static str] {
        S::PROVIDES
    }
    fn may_provide(&self) -> &'static [&'static str] {
        S::MAY_PROVIDE
    }
    fn requires(&self) -> &'static [&'static str] {
        S::REQUIRES
    }
    fn event_columns(&self) -> Option<&'static [&'static str]> {
        // A stage that does not require the events reads none of them.
        if S::REQUIRES.contains(&"events") {
            S::event_columns(&self.0)
        } else {
            Some(&[])
        }
    }
    fn table_columns(&self, table: &str) -> Option<&'static [&'static str]> {
        S::table_columns(&self.0, table)
    }
    fn input_files(&self) -> Vec<PathBuf> {
        S::input_files(&self.0)
    }
    fn asked_tables(&self) -> &'static [&'static str] {
        S::ASKED
    }
    fn ask(&mut self, needed: &mut dyn CheckedStage) -> bool {
        S::ask(&mut self.0, needed.as_any_mut())
    }
    fn asked_key(&self) -> String {
        S::asked_key(&self.0)
    }
    fn reads_previous(&self) -> bool {
        !S::COMPARED.is_empty()
    }
    fn compared(&self) -> &'static [&'static str] {
        S::COMPARED
    }
    fn check_need(&self, needed: &dyn CheckedStage) -> Result<(), (String, String)> {
        S::check_need(&self.0, needed.as_any())
    }
    fn run(&self, ctx: &mut StageContext<'_>, inputs: &Inputs<'_>) -> Result<Output, StageError> {
        S::run(&self.0, ctx, inputs)
    }
    fn finish(&self, staging: &Path) -> Result<Vec<String>, StageError> {
        S::finish(&self.0, staging)
    }
    fn as_any(&self) -> &dyn Any {
        &self.0
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        &mut self.0
    }
}
