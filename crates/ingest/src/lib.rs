//! Ingest: reads event logs (CSV, gzip-compressed CSV, Parquet, whitespace-aligned
//! text) and turns them into the canonical event table of [`userlens_model`].
//!
//! A [`SourceParams`] (from a pipeline file's `with` table) maps the source's own
//! column and event names onto the canonical schema; [`SourceParams::check`]
//! validates it before any data is read and [`ingest`] does the work. Every row read
//! is either kept, dropped as an exact duplicate (counted), or written to the
//! quarantine with its file, line, column and reason: none vanishes. The text
//! columns with few distinct values ([`DICTIONARY_COLUMNS`]) are held as codes into a
//! dictionary (polars' `Categorical`); user and session ids as strings.
//!
//! ```no_run
//! use userlens_ingest::{ingest, SourceParams};
//! let params: SourceParams = toml::from_str(r#"path = "events.csv""#).unwrap();
//! let out = ingest(&params.check().unwrap()).unwrap();
//! assert_eq!(out.stats.read, out.stats.kept + out.stats.quarantined + out.stats.duplicates);
//! ```

mod codes;
mod error;
mod events;
mod file;
mod finish;
mod gate;
mod mapping;
mod memory;
mod not_kept;
mod numbers;
mod order;
mod parquet_type;
mod read;
mod spill;
mod survey;
pub mod time;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use userlens_model::columns;

pub use error::{Error, Result};
pub use events::{Events, event_name_notes, event_types, events_before, near_known_event_types};
use file::regular_file;
pub use file::{FileInfo, Unchanged, fingerprint};
use finish::finish_events;
pub use finish::{DICTIONARY_COLUMNS, dictionary};
pub use gate::{check_user_totals, rows_not_utf8};
use mapping::DERIVABLE;
pub use mapping::{ColumnSource, IdFormat};
pub use memory::PEAK_PER_TEXT_BYTE;
pub use not_kept::{Duplicate, Duplicates, NotKept};
pub use read::{OnProgress, read_table, reading_untrusted_file};
pub use survey::{Survey, read_survey};
use time::TimeFormat;

/// File layouts a source can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    /// Delimited text with optional quoting (RFC 4180), optionally gzip-compressed.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// Whitespace-aligned columns, as legacy exports write them.
    Text,
    /// JSON lines: one event object per line, columns mapped by dotted paths
    /// (`properties.revenue`); optionally gzip-compressed.
    Ndjson,
}

/// A source as written in a pipeline file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceParams {
    /// The events file.
    pub path: PathBuf,
    /// Layout; guessed from the extension when absent (`.parquet`, `.txt`, `.ndjson`,
    /// `.jsonl` or `.json`, each also with `.gz`; else CSV).
    #[serde(default)]
    pub format: Option<SourceFormat>,
    /// Whether the first line names the columns (default: yes, but no for `text`).
    #[serde(default)]
    pub header: Option<bool>,
    /// Names for the columns of a file without a header (or to replace its header).
    #[serde(default)]
    pub column_names: Option<Vec<String>>,
    /// Field delimiter of a CSV source (default `,`; a tab for a `.tsv` or `.tab` file).
    #[serde(default)]
    pub delimiter: Option<String>,
    /// Numbers written with a decimal comma (`312,82`, as a spreadsheet in much of
    /// Europe saves them), thousands parted by points in groups of three (`1.234,5`):
    /// a CSV or text source (quoted where a comma parts the fields).
    #[serde(default)]
    pub decimal_comma: bool,
    /// The currency symbol or code number fields may be written with (`"$"`,
    /// `"€"`, `"EUR"`; ASCII letters in any case), before or after the number:
    /// `$129.16`, `-$84.78`, `84,78 €`.
    /// A number with another symbol is still refused: two currencies are not summed.
    #[serde(default)]
    pub currency: Option<String>,
    /// The scale `rating` is given on when not 1-5 (`[0.5, 5]` for half stars,
    /// `[0, 10]`): its values are mapped linearly onto 1-5.
    #[serde(default)]
    pub rating_scale: Option<[f64; 2]>,
    /// Canonical column -> source column or constant.
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnSource>,
    /// Source event name -> canonical event name (`pageview = "view"`).
    #[serde(default)]
    pub event_names: BTreeMap<String, String>,
    /// How `event_time` is written (`auto`, `rfc3339`, `unix`, `unix_ms`, `unix_us`,
    /// `unix_ns`, `date` or a
    /// strftime layout such as `%Y%m%d`).
    #[serde(default = "default_time_format")]
    pub time_format: String,
    /// Rows that are refunds, not purchases (`InvoiceNo starts_with "C"`,
    /// `Quantity < 0`): a condition on the source's columns, in the language of the
    /// predict stage's rules. A refund is a `purchase` event with a negative amount.
    #[serde(default)]
    pub refund_when: Option<String>,
    /// Source columns of a CSV whose blank fields take the row before's value, as in an
    /// export that writes an order's customer and time on its first line only
    /// (Shopify's orders): `{ columns = ["Email", "Paid at"], within = "Name" }`.
    #[serde(default)]
    pub fill_down: Option<FillDown>,
    /// How user ids are written: `text` (as they are, the default) or `integer`
    /// (`17850.0` read as `17850`; an id that is not a whole number is quarantined).
    #[serde(default)]
    pub user_id_format: IdFormat,
    /// The run fails (exit 3) when more than this share of rows is quarantined.
    #[serde(default = "default_max_quarantine_share")]
    pub max_quarantine_share: f64,
    /// Inactivity that starts a new session when the source has no session column.
    #[serde(default = "default_session_gap_minutes")]
    pub session_gap_minutes: u32,
    /// Drop rows identical to an earlier row in every canonical column (counted as
    /// duplicates). Turn off for exports where identical rows are distinct events,
    /// such as two purchases of the same value on the same day in a daily ledger.
    #[serde(default = "default_drop_duplicates")]
    pub drop_duplicates: bool,
    /// Memory the run may use, in megabytes (default: half of the machine's memory,
    /// or of the container's limit when it has a lower one). A source whose events
    /// would need more in memory is ingested out of core by [`ingest_into`]: its
    /// events go to Parquet parts of whole users on disk instead.
    #[serde(default)]
    pub memory_limit_mb: Option<u64>,
    /// Sets the text budget directly: a CSV or text source of more than this many
    /// megabytes of text is ingested out of core, whatever `memory_limit_mb` says. A
    /// gzip-compressed source is measured by its text as it is inflated.
    #[serde(default)]
    pub out_of_core_above_mb: Option<u64>,
}

/// [`SourceParams::fill_down`]: the columns filled, and the column whose value a row
/// must share with the row before to take its values (an order's id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FillDown {
    /// Source columns whose blank fields are filled.
    pub columns: Vec<String>,
    /// Fill only from a row before with the same value here; without it, from any.
    #[serde(default)]
    pub within: Option<String>,
}

fn default_drop_duplicates() -> bool {
    true
}

fn default_time_format() -> String {
    "auto".into()
}
fn default_max_quarantine_share() -> f64 {
    0.05
}
fn default_session_gap_minutes() -> u32 {
    (userlens_model::SESSION_GAP_SECS / 60) as u32
}

impl SourceParams {
    /// A CSV source in the canonical column names.
    pub fn canonical(path: impl Into<PathBuf>) -> SourceParams {
        SourceParams {
            path: path.into(),
            format: None,
            header: None,
            column_names: None,
            delimiter: None,
            decimal_comma: false,
            currency: None,
            rating_scale: None,
            columns: BTreeMap::new(),
            event_names: BTreeMap::new(),
            time_format: default_time_format(),
            refund_when: None,
            fill_down: None,
            user_id_format: IdFormat::default(),
            max_quarantine_share: default_max_quarantine_share(),
            session_gap_minutes: default_session_gap_minutes(),
            drop_duplicates: default_drop_duplicates(),
            memory_limit_mb: None,
            out_of_core_above_mb: None,
        }
    }

    /// Validates the parameters without reading the file.
    pub fn check(&self) -> Result<Source> {
        if self.path.as_os_str().is_empty() {
            return Err(Error::Params(
                "`path` is empty: name the events file".into(),
            ));
        }
        let format = self.format.unwrap_or_else(|| guess_format(&self.path));
        let time_format = TimeFormat::parse(&self.time_format).map_err(Error::Params)?;
        if let Some(fill) = &self.fill_down {
            // Whitespace-aligned text has no blank field: it is one field short.
            if format != SourceFormat::Csv {
                return Err(Error::Params(
                    "`fill_down` is for CSV sources, whose blank fields are there to fill".into(),
                ));
            }
            if fill.columns.is_empty() {
                return Err(Error::Params(
                    "`fill_down.columns` is empty: name the columns to fill".into(),
                ));
            }
            if let Some(within) = &fill.within
                && fill.columns.contains(within)
            {
                return Err(Error::Params(format!(
                    "`fill_down.within` is `{within}`, one of the columns it fills: a row \
                     without it would never be of the row before's order"
                )));
            }
        }
        let mut derived = BTreeMap::new();
        for (name, from) in &self.columns {
            if let ColumnSource::Constant { constant } = from
                && constant.trim().is_empty()
            {
                return Err(Error::Params(format!(
                    "`columns.{name}` is a constant of blank text: give it a value, or leave the column out"
                )));
            }
            if let ColumnSource::First { first } = from
                && first.is_empty()
            {
                return Err(Error::Params(format!(
                    "`columns.{name}` names no column to take the first value of"
                )));
            }
            if let ColumnSource::Derived { expr } = from {
                if !DERIVABLE.contains(&name.as_str()) {
                    return Err(Error::Params(format!(
                        "`columns.{name}` cannot be derived: expressions make numbers, for {}",
                        DERIVABLE.join(" and ")
                    )));
                }
                let subject = format!("`columns.{name}`");
                let ast = userlens_expr::parse_number(&subject, "expression", expr)
                    .map_err(|e| Error::Params(e.to_string()))?;
                derived.insert(name.clone(), ast);
            }
        }
        if let Some((from, _)) = self.event_names.iter().find(|(_, to)| to.trim().is_empty()) {
            return Err(Error::Params(format!(
                "`event_names` maps {from:?} to blank text: name an event type, or leave {from:?} out"
            )));
        }
        let canonical: Vec<&str> = columns::EVENT_COLUMNS
            .iter()
            .chain(&columns::OPTIONAL_EVENT_COLUMNS)
            .copied()
            .collect();
        for name in self.columns.keys() {
            if !canonical.contains(&name.as_str()) {
                let hint = userlens_model::did_you_mean(name, &canonical)
                    .map(|m| format!(" (did you mean `{m}`?)"))
                    .unwrap_or_default();
                return Err(Error::Params(format!(
                    "`columns.{name}` is not a canonical column{hint}; canonical columns are: {}",
                    canonical.join(", ")
                )));
            }
        }
        let refund = match &self.refund_when {
            Some(text) => Some(
                userlens_expr::parse_condition("`refund_when`", "condition", text)
                    .map_err(|e| Error::Params(e.to_string()))?,
            ),
            None => None,
        };
        // Only a CSV's fields are parted by a delimiter: one given for another
        // format would be ignored without a word.
        if self.delimiter.is_some() && format != SourceFormat::Csv {
            return Err(Error::Params(format!(
                "`delimiter` is for CSV sources; this one is read as `{}`",
                serde_json::to_string(&format)
                    .unwrap_or_default()
                    .trim_matches('"')
            )));
        }
        if self.decimal_comma && matches!(format, SourceFormat::Ndjson | SourceFormat::Parquet) {
            return Err(Error::Params(format!(
                "`decimal_comma` is for CSV and text sources; this one is read as `{}`",
                serde_json::to_string(&format)
                    .unwrap_or_default()
                    .trim_matches('"')
            )));
        }
        let delimiter = match self.delimiter.as_deref() {
            None if tab_separated(&self.path) => b'\t',
            None => b',',
            Some("\\t") | Some("\t") => b'\t',
            // A quote or a line end cannot part fields: it quotes them, or ends rows.
            Some(d @ ("\"" | "\n" | "\r")) => {
                return Err(Error::Params(format!(
                    "`delimiter` cannot be {d:?}: it quotes fields or ends rows"
                )));
            }
            Some(d) if d.len() == 1 => d.as_bytes()[0],
            Some(d) => {
                return Err(Error::Params(format!(
                    "`delimiter` must be one character, not {d:?}"
                )));
            }
        };
        if let Some(currency) = &self.currency
            && !numbers::is_currency(currency)
        {
            return Err(Error::Params(format!(
                "`currency` must be a symbol or code of at most 8 characters with no digit, \
                 space, sign or decimal mark, such as \"$\" or \"EUR\", not {currency:?}"
            )));
        }
        if let Some([low, high]) = self.rating_scale
            && !(low < high && (high - low).is_finite())
        {
            return Err(Error::Params(format!(
                "`rating_scale` [{low}, {high}] must be two numbers, the lowest rating \
                 first, whose difference is a finite number"
            )));
        }
        if !(0.0..=1.0).contains(&self.max_quarantine_share) {
            return Err(Error::Params(format!(
                "`max_quarantine_share` must be between 0 and 1, not {}",
                self.max_quarantine_share
            )));
        }
        if self.memory_limit_mb == Some(0) {
            return Err(Error::Params("`memory_limit_mb` must be at least 1".into()));
        }
        if self.session_gap_minutes == 0 {
            return Err(Error::Params(
                "`session_gap_minutes` must be at least 1".into(),
            ));
        }
        // Event names as read, without the spaces a reader trims from values.
        let event_names = (self.event_names.iter())
            .map(|(from, to)| (from.clone(), to.trim().to_string()))
            .collect();
        Ok(Source {
            params: SourceParams {
                event_names,
                ..self.clone()
            },
            format,
            header: self.header.unwrap_or(format != SourceFormat::Text),
            delimiter,
            time_format,
            derived,
            refund,
            part_events: None,
        })
    }
}

/// Whether a file's name says its fields are parted by tabs (`.tsv`, `.tab`, with or
/// without `.gz`): a CSV source's default delimiter is then a tab.
fn tab_separated(path: &Path) -> bool {
    extension(path).is_some_and(|e| TAB_EXTENSIONS.contains(&e.as_str()))
}

/// The extensions of tab-separated text, a CSV source of another delimiter.
const TAB_EXTENSIONS: [&str; 2] = ["tsv", "tab"];

/// A file name's extension in lower case, past a `.gz` (`csv` for `e.CSV.gz`).
fn extension(path: &Path) -> Option<String> {
    let name = (path.file_name().and_then(|n| n.to_str()))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    name.rsplit_once('.')
        .map(|(_, extension)| extension.to_string())
}

/// The extensions that name a file's layout (each with or without a `.gz` after it),
/// and the layout each names: [`guess_format`]'s table.
pub const FORMAT_EXTENSIONS: [(&str, SourceFormat); 10] = [
    ("csv", SourceFormat::Csv),
    (TAB_EXTENSIONS[0], SourceFormat::Csv),
    (TAB_EXTENSIONS[1], SourceFormat::Csv),
    ("txt", SourceFormat::Text),
    ("dat", SourceFormat::Text),
    ("parquet", SourceFormat::Parquet),
    ("pq", SourceFormat::Parquet),
    ("ndjson", SourceFormat::Ndjson),
    ("jsonl", SourceFormat::Ndjson),
    ("json", SourceFormat::Ndjson),
];

/// The layout a file's name says it has (`.parquet`, `.txt`, `.ndjson`, ... with or
/// without `.gz`, [`FORMAT_EXTENSIONS`]), CSV for any other.
pub fn guess_format(path: &Path) -> SourceFormat {
    let extension = extension(path);
    (FORMAT_EXTENSIONS.iter())
        .find(|(e, _)| extension.as_deref() == Some(*e))
        .map_or(SourceFormat::Csv, |(_, format)| *format)
}

/// Events per Parquet part of a run on a cluster ([`Source::in_parts`]): a task's
/// work, about 64 MB of CSV text; fewer, bigger parts pay less per-part overhead,
/// more and smaller spread better over many executors.
pub const CLUSTER_PART_EVENTS: u64 = 1 << 20;

/// A validated source, ready to read.
#[derive(Debug, Clone)]
pub struct Source {
    params: SourceParams,
    format: SourceFormat,
    header: bool,
    delimiter: u8,
    time_format: TimeFormat,
    /// The parsed expression of each derived column.
    derived: BTreeMap<String, userlens_expr::Spanned>,
    /// The parsed `refund_when` condition.
    refund: Option<userlens_expr::Spanned>,
    /// Events per Parquet part when the events must be written as parts whatever
    /// their size (see [`Source::in_parts`]).
    part_events: Option<u64>,
}

impl Source {
    /// The events file.
    pub fn path(&self) -> &Path {
        &self.params.path
    }
    /// The largest quarantined share the run accepts.
    pub fn max_quarantine_share(&self) -> f64 {
        self.params.max_quarantine_share
    }

    /// How `event_time` is written, as the parameters give it.
    pub fn time_format(&self) -> &str {
        &self.params.time_format
    }
    fn gap_micros(&self) -> i64 {
        i64::from(self.params.session_gap_minutes) * 60 * 1_000_000
    }

    /// Bytes of source text whose events [`ingest_into`] holds in memory: the
    /// explicit `out_of_core_above_mb`, else the memory limit over
    /// [`PEAK_PER_TEXT_BYTE`], the peak memory per byte of text.
    pub fn text_budget(&self) -> u64 {
        match self.params.out_of_core_above_mb {
            Some(mb) => mb.saturating_mul(1 << 20),
            None => memory::limit_bytes(self.params.memory_limit_mb) / memory::PEAK_PER_TEXT_BYTE,
        }
    }

    /// The same source, ingested by [`ingest_into`] into Parquet parts of about
    /// `events` events each whatever its size, as a cluster's executors read them: a
    /// source that fits the memory budget is still read and finished in memory (the
    /// fast path), then split into parts; a bigger one goes out of core in parts of
    /// at most that size.
    pub fn in_parts(&self, events: u64) -> Source {
        let mut source = self.clone();
        source.part_events = Some(events.max(1));
        source
    }

    /// Bytes of text per out-of-core partition: the budget, or less for
    /// [`Source::in_parts`].
    fn partition_budget(&self) -> u64 {
        let budget = self.text_budget();
        self.part_events.map_or(budget, |events| {
            budget.min(events.saturating_mul(spill::TEXT_BYTES_PER_EVENT))
        })
    }
}

/// Row counts of an ingest: `read = kept + quarantined + duplicates`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestStats {
    /// Data rows read (header lines not counted).
    pub read: u64,
    /// Rows kept as events.
    pub kept: u64,
    /// Rows refused and written to the quarantine.
    pub quarantined: u64,
    /// Exact duplicates of an earlier row, dropped.
    pub duplicates: u64,
    /// The files read.
    pub files: Vec<FileInfo>,
    /// What the read noticed and a caller should tell: a mapped JSON key no line has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The result of reading a source: its events are a [`DataFrame`] from [`ingest`],
/// [`Events`] from [`ingest_into`].
#[derive(Debug, Clone)]
pub struct Ingested<E = DataFrame> {
    /// Canonical events sorted by user and time.
    pub events: E,
    /// Refused rows: `file, line, column, reason, raw`.
    pub quarantine: DataFrame,
    /// Rows dropped as exact duplicates.
    pub duplicates: Duplicates,
    /// Row counts and file fingerprints.
    pub stats: IngestStats,
}

impl<E> Ingested<E> {
    /// Every row read and not kept, refused or dropped as a duplicate, in blocks of
    /// at most `rows` in the order of their lines, in the quarantine's columns: with
    /// the events, every row read.
    pub fn not_kept(&self, rows: usize) -> Result<NotKept<'_>> {
        NotKept::new(&self.quarantine, &self.duplicates, rows)
    }
}

/// Reads, validates, de-duplicates and sessionizes a source. What is read as a whole
/// is the caller's to judge, once the quarantine is kept: the share refused
/// ([`IngestStats::check_gate`]) and the users' totals ([`check_user_totals`]).
pub fn ingest(source: &Source) -> Result<Ingested> {
    ingest_with_progress(source, &mut |_, _| {})
}

/// [`ingest`], calling `on_progress(bytes read, file size)` every few megabytes while
/// a CSV or text file is read (Parquet is read in one go). All rows are held in
/// memory, whatever the memory limit says: [`ingest_into`] keeps to it.
pub fn ingest_with_progress(source: &Source, on_progress: OnProgress<'_>) -> Result<Ingested> {
    let unchanged = Unchanged::begin(source.path())?;
    let started = std::time::Instant::now();
    let parsed = read::read_source(
        source,
        on_progress,
        read::Keep::Memory,
        read::PARALLEL_MIN_BYTES,
    )
    .map_err(|e| unchanged.or_changed(e))?;
    let file_info = unchanged.check()?;
    tracing::info!(
        "ingest: read and checked in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    finish_in_memory(source, parsed, file_info)
}

/// Sorts, de-duplicates and sessionizes the rows a reader kept in memory.
fn finish_in_memory(
    source: &Source,
    parsed: read::Parsed,
    file_info: FileInfo,
) -> Result<Ingested> {
    let before = parsed.events.height() as u64;
    let finished = finish_events(
        parsed.events,
        parsed.has_session,
        source.gap_micros(),
        source.params.drop_duplicates,
    )?;
    let events = finished.events;
    let stats = IngestStats {
        read: parsed.read,
        kept: events.height() as u64,
        quarantined: parsed.quarantine.height() as u64,
        duplicates: before - events.height() as u64,
        files: vec![file_info],
        notes: parsed.notes,
    };
    Ok(Ingested {
        events,
        quarantine: parsed.quarantine,
        duplicates: Duplicates::new(source.path().display().to_string(), finished.duplicates),
        stats,
    })
}

/// A lazy scan of one file of [`Events::Parts`], its dictionary columns as
/// categoricals of this process's [`dictionary`].
pub fn scan_part(path: &Path) -> Result<LazyFrame> {
    codes::scan(path)
}

/// Ingests `source` like [`ingest_with_progress`] when it is small; a source of
/// more text than its [`Source::text_budget`] is ingested out of core: its rows are
/// spilled to disk split by user while they are read, and each partition is then
/// sorted, de-duplicated and sessionized on its own into a Parquet part in `dir`.
/// Peak memory is then about one partition's events however big the source, above
/// what the reader threads hold before they write (up to 4 million rows each).
///
/// A plain file's size is its text's, so it is read out of core or not from the
/// start. A gzip-compressed file's text is only known as it is inflated: it is read
/// into memory until the text passes the budget, and from there on out of core,
/// in partitions for its size estimated from the inflation seen so far.
pub fn ingest_into(
    source: &Source,
    dir: &Path,
    on_progress: OnProgress<'_>,
) -> Result<Ingested<Events>> {
    let ingested = ingest_into_parts(source, dir, on_progress);
    if ingested.is_err() {
        // A failed ingest's spilled chunks are of no use, and may be what filled a disk.
        let _ = std::fs::remove_dir_all(dir.join("spill"));
    }
    ingested
}

fn ingest_into_parts(
    source: &Source,
    dir: &Path,
    on_progress: OnProgress<'_>,
) -> Result<Ingested<Events>> {
    let budget = source.text_budget();
    let bytes = regular_file(source.path())?.len();
    let set = |mb: Option<u64>, name| mb.map(|mb| format!("`{name} = {mb}`"));
    let from = (set(source.params.out_of_core_above_mb, "out_of_core_above_mb"))
        .or_else(|| set(source.params.memory_limit_mb, "memory_limit_mb").map(|s| s + " / 5"))
        .unwrap_or_else(|| "half the memory of the machine or its cgroup, / 5".into());
    tracing::info!(
        "ingest: at most {} MiB of text held in memory ({from}); the file is {} MiB",
        budget >> 20,
        bytes >> 20
    );
    if source.format == SourceFormat::Parquet && bytes > budget / memory::PEAK_PER_TEXT_BYTE {
        tracing::warn!(
            "`{}` is Parquet, read whole whatever the memory budget: a CSV export of it \
             would be read out of core",
            source.path().display()
        );
    }
    if !is_gzip(source.path())?
        && let Some(bytes) = out_of_core_bytes(source)?
    {
        let plan = spill::Plan {
            dir: dir.join("spill"),
            partitions: spill::partitions_for(bytes, source.partition_budget()),
            chunk_rows: spill::CHUNK_ROWS,
        };
        return ingest_out_of_core(source, dir, plan, read::PARALLEL_MIN_BYTES, on_progress);
    }
    let unchanged = Unchanged::begin(source.path())?;
    let started = std::time::Instant::now();
    let keep = read::Keep::MemoryUpTo {
        budget,
        partition_budget: source.partition_budget(),
        parts: dir,
    };
    let mut parsed = read::read_source(source, on_progress, keep, read::PARALLEL_MIN_BYTES)
        .map_err(|e| unchanged.or_changed(e))?;
    let file_info = unchanged.check()?;
    tracing::info!(
        "ingest: read and checked in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    if let Some(plan) = parsed.spilled.take() {
        return finish_out_of_core(source, dir, &plan, parsed, file_info);
    }
    let ingested = finish_in_memory(source, parsed, file_info)?;
    let events = match source.part_events {
        None => Events::Memory(ingested.events),
        Some(per_part) => {
            let started = std::time::Instant::now();
            let files = spill::write_parts(&ingested.events, per_part, dir)?;
            tracing::info!(
                "ingest: {} parts written in {:.2} s",
                files.len(),
                started.elapsed().as_secs_f64()
            );
            Events::Parts {
                files,
                rows: ingested.events.height() as u64,
            }
        }
    };
    Ok(Ingested {
        events,
        quarantine: ingested.quarantine,
        duplicates: ingested.duplicates,
        stats: ingested.stats,
    })
}

/// Whether `path` starts with gzip's magic bytes (as the reader decides).
fn is_gzip(path: &Path) -> Result<bool> {
    use std::io::Read;
    regular_file(path)?;
    let mut magic = Vec::with_capacity(2);
    std::fs::File::open(path)
        .and_then(|file| file.take(2).read_to_end(&mut magic))
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(read::starts_as_gzip(&magic))
}

/// Whether [`ingest_into`] reads `source` out of core from the start: its size in
/// bytes if so, `None` if it begins in memory. A gzip-compressed source is `Some`
/// only when the compressed file alone passes the budget (its text is bigger
/// still); below that it may yet go out of core as it is read.
pub fn out_of_core_bytes(source: &Source) -> Result<Option<u64>> {
    let bytes = regular_file(source.path())?.len();
    let in_memory = source.format == SourceFormat::Parquet || bytes <= source.text_budget();
    Ok((!in_memory).then_some(bytes))
}

/// The out-of-core path of [`ingest_into`]: spills as `plan` says (into a folder
/// inside `dir`), reading CSV files of at least `parallel_min_bytes` on several
/// threads.
fn ingest_out_of_core(
    source: &Source,
    dir: &Path,
    plan: spill::Plan,
    parallel_min_bytes: u64,
    on_progress: OnProgress<'_>,
) -> Result<Ingested<Events>> {
    let io = |source| Error::Write {
        path: dir.to_path_buf(),
        source,
    };
    let unchanged = Unchanged::begin(source.path())?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io)?;
    }
    std::fs::create_dir_all(&plan.dir).map_err(io)?;
    let started = std::time::Instant::now();
    let parsed = read::read_source(
        source,
        on_progress,
        read::Keep::Spill(&plan),
        parallel_min_bytes,
    )
    .map_err(|e| unchanged.or_changed(e))?;
    let file_info = unchanged.check()?;
    tracing::info!(
        "ingest: read, checked and spilled in {:.2} s ({} partitions)",
        started.elapsed().as_secs_f64(),
        plan.partitions
    );
    finish_out_of_core(source, dir, &plan, parsed, file_info)
}

/// Finishes the partitions a reader spilled as `plan` says into parts in `dir`.
fn finish_out_of_core(
    source: &Source,
    dir: &Path,
    plan: &spill::Plan,
    parsed: read::Parsed,
    file_info: FileInfo,
) -> Result<Ingested<Events>> {
    let started = std::time::Instant::now();
    let finished = spill::finish(plan, dir, |rows| {
        finish_events(
            rows,
            parsed.has_session,
            source.gap_micros(),
            source.params.drop_duplicates,
        )
    })?;
    tracing::info!(
        "ingest: {} partitions finished in {:.2} s",
        plan.partitions,
        started.elapsed().as_secs_f64()
    );
    let stats = IngestStats {
        read: parsed.read,
        kept: finished.kept,
        quarantined: parsed.quarantine.height() as u64,
        duplicates: finished.spilled - finished.kept,
        files: vec![file_info],
        notes: parsed.notes,
    };
    Ok(Ingested {
        events: Events::Parts {
            files: finished.files,
            rows: finished.kept,
        },
        quarantine: parsed.quarantine,
        duplicates: Duplicates::new(source.path().display().to_string(), finished.duplicates),
        stats,
    })
}

#[cfg(test)]
mod tests;
