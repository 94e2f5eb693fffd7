//! Row-level reading and validation. Rows are parsed one by one (not by polars' CSV
//! reader) because every refused row must be reported with its own line and reason,
//! which a columnar reader cannot tell us.

use std::fs::File;
use std::hash::{BuildHasher, Hash, Hasher};
use std::io::{BufReader, Read};
use std::path::Path;

use polars::prelude::*;
use userlens_model::columns;

use crate::error::{self, Error, Result, quoted};
use crate::spill;
use crate::{Source, SourceFormat};

mod header;
mod kept;
mod mapping;
mod ndjson;
mod opened;
pub(crate) use opened::starts_as_gzip;
mod parquet;
mod parts;
mod records;
mod spilling;
mod text;

use crate::numbers::{on_one_to_five, out_of_range};
use header::header_names;
pub(crate) use header::{check_header, delimiter_hint};
use kept::{CODE_OF, CODED, Coder, Kept};
use mapping::{Slot, Slots, Underived, derived_value, is_refund, resolve};
pub use opened::OnProgress;
use opened::{Counted, TextSize};
pub(crate) use opened::{Opened, open};
pub(crate) use parts::PARALLEL_MIN_BYTES;
use parts::{read_csv_parts, split_for_threads};
pub(crate) use records::{csv_reader, swallowed_row};

pub(crate) use parquet::read_parquet_file;
pub use parquet::{read_table, reading_untrusted_file};

/// Hashes every kept row's values (see [`ROW_HASH`]).
const ROW_HASHER: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x75_73_65_72);

/// Longest prefix of a refused row echoed into the quarantine.
const RAW_ECHO_BYTES: usize = 256;

/// Longest field accepted: anything longer is a broken export (an unclosed quote
/// swallowing the rest of the file, a blob in a text column), not an event.
pub(crate) const MAX_FIELD_BYTES: usize = 64 * 1024;

/// Plausible event times: 1900-01-01 up to 2100-01-01 UTC. Outside it a timestamp is
/// almost always a unit mistake (milliseconds read as seconds) or a placeholder.
pub(crate) const EARLIEST_MICROS: i64 = -2_208_988_800_000_000;
pub(crate) const LATEST_MICROS: i64 = 4_102_444_800_000_000;

pub(crate) struct Parsed {
    pub read: u64,
    /// The kept rows; empty when they were spilled to disk.
    pub events: DataFrame,
    pub quarantine: DataFrame,
    pub has_session: bool,
    /// The plan of a read that began in memory and went on to disk (see
    /// [`Keep::MemoryUpTo`]): its rows are in the spill, not in `events`.
    pub spilled: Option<spill::Plan>,
    /// What the read noticed for the run to tell ([`IngestStats::notes`]).
    ///
    /// [`IngestStats::notes`]: crate::IngestStats::notes
    pub notes: Vec<String>,
}

/// Where the reader keeps the rows it keeps.
#[derive(Clone, Copy)]
pub(crate) enum Keep<'p> {
    /// In memory, however many.
    Memory,
    /// In memory while the text read (inflated, for gzip) is at most `budget`
    /// bytes; past that, the rows held and all after them go to a spill in
    /// `parts` (emptied first), as [`Parsed::spilled`] says. A compressed file's
    /// size says little about its text, so only the bytes read can tell. The spill
    /// has a partition per `partition_budget` bytes of text.
    MemoryUpTo {
        budget: u64,
        partition_budget: u64,
        parts: &'p Path,
    },
    /// Spilled as the plan says.
    Spill(&'p spill::Plan),
}

impl<'p> Keep<'p> {
    fn plan(self) -> Option<&'p spill::Plan> {
        match self {
            Keep::Spill(plan) => Some(plan),
            _ => None,
        }
    }
}

const N: usize = columns::EVENT_COLUMNS.len();
const USER: usize = 0;
const TIME: usize = 1;
const TYPE: usize = 2;
const SESSION: usize = 3;
pub(crate) const AMOUNT: usize = 7;
pub(crate) const RATING: usize = 8;

/// Column builders for the kept rows and the quarantine.
struct Sink<'a> {
    source: &'a Source,
    file: String,
    slots: Slots,
    width: usize,
    header_bytes: Vec<Vec<u8>>,
    /// Rows the builders are made for: they grow past it, but each time they grow
    /// the kernel zeroes fresh pages for the copy.
    capacity: usize,
    kept: Kept,
    /// The codes of the [`CODED`] columns.
    coder: Coder,
    read: u64,
    q_line: Vec<u64>,
    q_column: Vec<String>,
    q_reason: Vec<String>,
    q_raw: Vec<String>,
    /// What `fill_down` carries to the next row.
    carried: mapping::Carried,
    /// Out of core: kept rows go to disk in chunks, split by user.
    spill: Option<spill::Writer<'a>>,
    /// The spill partition of each kept row's user.
    partitions: Vec<u32>,
}

impl<'a> Sink<'a> {
    /// A sink for about `capacity` rows (a guess: any number of rows fits).
    fn new(source: &'a Source, header: &[String], slots: Slots, capacity: usize) -> Sink<'a> {
        let capacity = capacity.max(1024);
        let with_order = !matches!(slots.order, Slot::Absent);
        Sink {
            source,
            file: source.path().display().to_string(),
            slots,
            width: header.len(),
            header_bytes: header.iter().map(|h| h.as_bytes().to_vec()).collect(),
            capacity,
            kept: Kept::with_capacity(capacity, with_order, source.params.drop_duplicates),
            coder: Coder::new(),
            read: 0,
            q_line: Vec::new(),
            q_column: Vec::new(),
            q_reason: Vec::new(),
            q_raw: Vec::new(),
            carried: mapping::Carried::default(),
            spill: None,
            partitions: Vec::new(),
        }
    }

    /// Writes kept rows to `spill` instead of holding them all.
    fn spilling(mut self, spill: Option<spill::Writer<'a>>) -> Sink<'a> {
        self.spill = spill;
        self
    }

    /// [`Sink::row`], then spills the kept rows when a chunk is full.
    fn push(&mut self, line: u64, fields: &[&[u8]], sep: u8) -> Result<()> {
        self.push_checked(line, fields, None, sep)
    }

    /// A row read and quarantined for `reason` before its fields are looked at.
    fn push_refused(&mut self, line: u64, reason: String, fields: &[&[u8]], sep: u8) {
        self.read += 1;
        self.refuse(line, "", reason, fields, sep);
    }

    /// [`Sink::push`] of fields that may come `checked`: the same fields as text
    /// known to be UTF-8 without a NUL byte.
    fn push_checked(
        &mut self,
        line: u64,
        fields: &[&[u8]],
        checked: Option<&[&str]>,
        sep: u8,
    ) -> Result<()> {
        self.row(line, fields, checked, sep);
        let chunk_rows = self
            .spill
            .as_ref()
            .map_or(usize::MAX, |s| s.plan().chunk_rows);
        if self.kept.times.len() >= chunk_rows {
            self.spill_rows()?;
        }
        Ok(())
    }

    fn refuse(&mut self, line: u64, column: &str, reason: String, fields: &[&[u8]], sep: u8) {
        let mut raw = Vec::new();
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                raw.push(sep);
            }
            raw.extend_from_slice(&f[..f.len().min(RAW_ECHO_BYTES + 4)]);
            if raw.len() > RAW_ECHO_BYTES {
                break;
            }
        }
        let text = echo(&raw);
        self.q_line.push(line);
        self.q_column.push(column.to_string());
        self.q_reason.push(reason);
        self.q_raw.push(text);
    }

    /// Validates one row, its blank fields filled as `fill_down` says; keeps it or
    /// quarantines it (its `raw` as filled). `checked`: as for [`Sink::push_checked`].
    fn row(&mut self, line: u64, fields: &[&[u8]], checked: Option<&[&str]>, sep: u8) {
        let taken = match &self.slots.fill {
            Some(fill) => self.carried.fill(fill, fields, self.width),
            None => Vec::new(),
        };
        if taken.is_empty() {
            return self.row_as_read(line, fields, checked, sep);
        }
        let mut filled = fields.to_vec();
        for (i, value) in &taken {
            filled[*i] = value;
        }
        self.row_as_read(line, &filled, None, sep)
    }

    /// [`Sink::row`] of the fields as they are.
    fn row_as_read(&mut self, line: u64, fields: &[&[u8]], checked: Option<&[&str]>, sep: u8) {
        self.read += 1;
        if fields.len() != self.width {
            let mut reason = format!("expected {} fields, found {}", self.width, fields.len());
            let ends = records::line_ends(fields);
            if ends > 0 {
                reason.push_str(&format!(
                    " in a row over {} lines (a quoted field that does not close where it \
                     should?)",
                    ends + 1
                ));
            }
            return self.refuse(line, "", reason, fields, sep);
        }
        if fields
            .iter()
            .zip(&self.header_bytes)
            .all(|(f, h)| f == &h.as_slice())
        {
            return self.refuse(line, "", "repeated header row".into(), fields, sep);
        }
        let mut values: [Option<&str>; N] = [None; N];
        for (i, slot) in self.slots.columns.iter().enumerate() {
            let field = slot.field(fields);
            values[i] = match (slot, field) {
                (Slot::Constant(c), _) => Some(c.as_str()),
                (_, None) => None,
                (_, Some(index)) if fields[index].len() > MAX_FIELD_BYTES => {
                    let column = columns::EVENT_COLUMNS[i];
                    let reason = format!(
                        "`{column}` is {} bytes long, more than the {MAX_FIELD_BYTES} allowed",
                        fields[index].len()
                    );
                    return self.refuse(line, column, reason, fields, sep);
                }
                (_, Some(index)) => {
                    let text = match checked {
                        Some(text) => text[index],
                        None => match std::str::from_utf8(fields[index]) {
                            Ok(text) => text,
                            Err(_) => {
                                let column = columns::EVENT_COLUMNS[i];
                                let reason = format!("invalid UTF-8 in `{column}`");
                                return self.refuse(line, column, reason, fields, sep);
                            }
                        },
                    };
                    let text = trim(text);
                    (!text.is_empty()).then_some(text)
                }
            };
            let unchecked = checked.is_none() || field.is_none();
            if unchecked
                && let Some(text) = values[i]
                && text.contains('\0')
            {
                let column = columns::EVENT_COLUMNS[i];
                let reason = format!("NUL byte in `{column}`");
                return self.refuse(line, column, reason, fields, sep);
            }
        }
        for required in [USER, TIME, TYPE] {
            if values[required].is_none() {
                let column = columns::EVENT_COLUMNS[required];
                let mut reason = format!("missing `{column}`");
                if let Slot::First(indices) = &self.slots.columns[required] {
                    let names: Vec<String> = (indices.iter())
                        .filter_map(|&i| self.header_bytes.get(i))
                        .map(|h| format!("`{}`", String::from_utf8_lossy(h)))
                        .collect();
                    reason.push_str(&format!(" (none of {} has a value)", names.join(", ")));
                }
                return self.refuse(line, column, reason, fields, sep);
            }
        }
        let user_id;
        if let Some(id) = values[USER] {
            match self.source.params.user_id_format.normalise(id) {
                Some(id) => user_id = id,
                None => {
                    let reason = format!("`user_id` {} is not a whole number", quoted(id));
                    return self.refuse(line, columns::USER_ID, reason, fields, sep);
                }
            }
            values[USER] = Some(&user_id);
        }
        let time_text = values[TIME].unwrap_or_default();
        let Some(micros) = self.source.time_format.parse_micros(time_text) else {
            let reason = format!(
                "`event_time` {} is not {}{}",
                quoted(time_text),
                self.source.time_format.describe(),
                crate::time::time_hint(time_text).unwrap_or_default()
            );
            return self.refuse(line, columns::EVENT_TIME, reason, fields, sep);
        };
        if !(EARLIEST_MICROS..LATEST_MICROS).contains(&micros) {
            let hint = crate::time::unit_hint(time_text).unwrap_or_else(|| {
                " (a unit mistake, such as milliseconds read as seconds?)".into()
            });
            let reason = format!(
                "`event_time` {} is outside the years 1900-2099{hint}",
                quoted(time_text)
            );
            return self.refuse(line, columns::EVENT_TIME, reason, fields, sep);
        }
        // Exports write these for a time they do not know: no event happened there.
        if micros == 0 || micros == EARLIEST_MICROS {
            let reason = format!(
                "`event_time` {} is the first instant of {}, a placeholder for a time not known",
                quoted(time_text),
                if micros == 0 {
                    "1970 (Unix time 0)"
                } else {
                    "1900"
                }
            );
            return self.refuse(line, columns::EVENT_TIME, reason, fields, sep);
        }
        let mut numbers = [None, None];
        for (k, index) in [AMOUNT, RATING].into_iter().enumerate() {
            if let Slot::Derived(derived) = &self.slots.columns[index] {
                let column = columns::EVENT_COLUMNS[index];
                match derived_value(derived, fields, self.source) {
                    Ok(v) => numbers[k] = v,
                    Err(Underived::NotANumber(input, text, hint)) => {
                        let reason = format!(
                            "`{input}` {} is not a number (`{column}` is computed from it){hint}",
                            quoted(&text)
                        );
                        return self.refuse(line, column, reason, fields, sep);
                    }
                    Err(Underived::NotFinite) => {
                        let reason = format!("`{column}` computes to a number too large to hold");
                        return self.refuse(line, column, reason, fields, sep);
                    }
                }
            } else if let Some(text) = values[index] {
                match self.source.number(text) {
                    Some(v) => numbers[k] = Some(v),
                    None => {
                        let column = columns::EVENT_COLUMNS[index];
                        let reason = format!(
                            "`{column}` {} is not a finite number{}",
                            quoted(text),
                            crate::numbers::comma_hint(self.source, text)
                        );
                        return self.refuse(line, column, reason, fields, sep);
                    }
                }
            }
            let scale = self.source.params.rating_scale;
            if let Some(v) = numbers[k]
                && let Some(range) = out_of_range(index, v, scale)
            {
                let column = columns::EVENT_COLUMNS[index];
                let reason = match values[index] {
                    Some(text) => format!("`{column}` {} is {range}", quoted(text)),
                    None => format!("`{column}` computes to {v:e}, {range}"),
                };
                return self.refuse(line, column, reason, fields, sep);
            }
            if index == RATING {
                numbers[k] = numbers[k].map(|v| on_one_to_five(v, scale));
            }
        }
        let event_type = values[TYPE].unwrap_or_default();
        let mut event_type = self
            .source
            .params
            .event_names
            .get(event_type)
            .map_or(event_type, String::as_str);
        let refund = self.slots.refund.as_ref();
        match refund.map(|refund| is_refund(refund, fields, self.source)) {
            Some(Err(reason)) => return self.refuse(line, columns::AMOUNT, reason, fields, sep),
            Some(Ok(true)) => {
                let Some(amount) = numbers[0] else {
                    let reason = "a refund (`refund_when`) without an amount".to_string();
                    return self.refuse(line, columns::AMOUNT, reason, fields, sep);
                };
                // A refund is a purchase of a negative amount: one of 0 would count as
                // a purchase.
                if amount == 0.0 {
                    let reason = "a refund (`refund_when`) of amount 0".to_string();
                    return self.refuse(line, columns::AMOUNT, reason, fields, sep);
                }
                numbers[0] = Some(-amount.abs());
                event_type = userlens_model::event_types::PURCHASE;
            }
            Some(Ok(false)) | None => {}
        }
        values[TYPE] = Some(event_type);
        let order = match (&self.slots.order, self.slots.order.field(fields)) {
            (Slot::Constant(c), _) => Some(c.as_str()),
            (_, None) => None,
            (_, Some(index)) => match checked.map_or_else(
                || std::str::from_utf8(fields[index]),
                |text| Ok(text[index]),
            ) {
                Ok(text) if text.len() > MAX_FIELD_BYTES || text.contains('\0') => {
                    let reason = "`order_id` is too long or holds a NUL byte".to_string();
                    return self.refuse(line, columns::ORDER_ID, reason, fields, sep);
                }
                Ok(text) => Some(text.trim()).filter(|t| !t.is_empty()),
                Err(_) => {
                    let reason = "invalid UTF-8 in `order_id`".to_string();
                    return self.refuse(line, columns::ORDER_ID, reason, fields, sep);
                }
            },
        };
        let mut codes = [None; CODED.len()];
        for (k, &i) in CODED.iter().enumerate() {
            if let Some(text) = values[i] {
                match self.coder.code(k, text) {
                    Ok(c) => codes[k] = Some(c),
                    Err(_) => {
                        let column = columns::EVENT_COLUMNS[i];
                        let reason = format!("`{column}` has more distinct values than fit");
                        return self.refuse(line, column, reason, fields, sep);
                    }
                }
            }
        }
        // Seeded, so the same rows hash (and sort) the same in every run.
        let mut hasher = ROW_HASHER.build_hasher();
        for (i, value) in values.iter().enumerate() {
            if matches!(i, TIME | AMOUNT | RATING) {
                continue;
            }
            value.hash(&mut hasher);
            match CODE_OF[i] {
                Some(k) => self.kept.codes[k].append_option(codes[k]),
                None => self.kept.strings[i].append_option(*value),
            }
        }
        if let Some(orders) = &mut self.kept.orders {
            order.hash(&mut hasher);
            orders.append_option(order);
        }
        micros.hash(&mut hasher);
        // A computed amount or rating: its inputs too, so that rows whose source
        // columns differ (2 x 5 against 5 x 2) are never one another's duplicates.
        for index in [AMOUNT, RATING] {
            if let Slot::Derived(derived) = &self.slots.columns[index] {
                for (_, input) in &derived.inputs {
                    fields.get(*input).map(|f| trim_field(f)).hash(&mut hasher);
                }
            }
        }
        // +0.0 for -0.0, which compares equal
        numbers
            .map(|n| n.map(|v| (v + 0.0).to_bits()))
            .hash(&mut hasher);
        self.kept.hashes.push(hasher.finish());
        if let Some(lines) = &mut self.kept.lines {
            lines.push(line);
        }
        if let Some(spill) = &self.spill {
            let user = values[USER].unwrap_or_default();
            self.partitions.push(spill.plan().partition_of(user));
        }
        self.kept.times.push(micros);
        self.kept.amounts.append_option(numbers[0]);
        self.kept.ratings.append_option(numbers[1]);
    }

    /// The kept rows so far as a table; the sink starts empty again, with room for
    /// `capacity` rows.
    fn take_events(&mut self, capacity: usize) -> Result<DataFrame> {
        let with_order = self.kept.orders.is_some();
        let with_lines = self.kept.lines.is_some();
        let kept = std::mem::replace(
            &mut self.kept,
            Kept::with_capacity(capacity, with_order, with_lines),
        );
        kept.into_events(&self.coder.dictionaries)
    }

    fn finish(mut self) -> Result<Parsed> {
        let has_session = !matches!(self.slots.columns[SESSION], Slot::Absent);
        if self.spill.is_some() {
            self.spill_rows()?;
        }
        let events = self.take_events(0)?;
        let q_height = self.q_line.len();
        let quarantine = DataFrame::new(
            q_height,
            vec![
                Column::new("file".into(), vec![self.file; q_height]),
                Column::new("line".into(), self.q_line),
                Column::new("column".into(), self.q_column),
                Column::new("reason".into(), self.q_reason),
                Column::new("raw".into(), self.q_raw),
            ],
        )
        .map_err(error::polars("build the quarantine table"))?;
        Ok(Parsed {
            read: self.read,
            events,
            quarantine,
            has_session,
            spilled: None,
            notes: Vec::new(),
        })
    }
}

/// A field's bytes without the spaces around them, as the row's text is read
/// ([`trim`], Unicode spaces too); bytes that are not UTF-8 lose ASCII spaces only.
pub(crate) fn trim_field(field: &[u8]) -> &[u8] {
    match std::str::from_utf8(field) {
        Ok(text) => trim(text).as_bytes(),
        Err(_) => field.trim_ascii(),
    }
}

/// `text.trim()`, without its look at both ends when they are plainly not
/// whitespace.
pub(crate) fn trim(text: &str) -> &str {
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

/// The first [`RAW_ECHO_BYTES`] of a refused row, as text a spreadsheet can show
/// (`…` where it is cut).
pub(crate) fn echo(raw: &[u8]) -> String {
    let raw = &raw[..raw.len().min(RAW_ECHO_BYTES + 4)];
    error::cut(&String::from_utf8_lossy(raw), RAW_ECHO_BYTES).replace('\0', "\\0")
}

/// Column of the row hashes that [`Sink`] adds to the events; dropped by the caller.
pub(crate) const ROW_HASH: &str = "__row_hash";

/// Column of the line (a Parquet file's row, from 1) of every kept row that
/// [`Sink`] adds to the events; dropped by the caller.
pub(crate) const LINE: &str = "__line";

/// Reads and checks every row, keeping them as `keep` says: in
/// [`Parsed::events`], or on disk (see [`spill`]). Parquet sources are read whole.
pub(crate) fn read_source(
    source: &Source,
    on_progress: OnProgress<'_>,
    keep: Keep<'_>,
    parallel_min_bytes: u64,
) -> Result<Parsed> {
    match source.format {
        SourceFormat::Csv => read_csv_with(source, on_progress, parallel_min_bytes, keep),
        SourceFormat::Text => text::read_text(source, on_progress, keep),
        SourceFormat::Ndjson => ndjson::read_ndjson(source, on_progress, keep),
        SourceFormat::Parquet => parquet::read_parquet(source),
    }
}

/// The csv crate's error reading `path`: its I/O error as it came (a corrupt gzip
/// stream stays invalid data, refused), any other as the file's.
pub(crate) fn csv_error(path: &Path, e: csv::Error) -> Error {
    let source = match e.into_kind() {
        csv::ErrorKind::Io(source) => source,
        other => std::io::Error::other(format!("{other:?}")),
    };
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a CSV source, files of at least `parallel_min_bytes` on several threads.
pub(crate) fn read_csv_with(
    source: &Source,
    on_progress: OnProgress<'_>,
    parallel_min_bytes: u64,
    keep: Keep<'_>,
) -> Result<Parsed> {
    let path = source.path();
    let io = |e: csv::Error| csv_error(path, e);
    let Opened {
        reader: text,
        size: text_size,
    } = open(path, on_progress)?;
    let (mut reader, mut lines) = csv_reader(source.delimiter, text);
    let mut record = csv::ByteRecord::new();
    let mut first = None;
    let has_first = reader.read_byte_record(&mut record).map_err(io)?;
    if source.header {
        if !has_first {
            return Err(Error::Empty {
                path: path.to_path_buf(),
            });
        }
        check_header(path, &record)?;
        let mut names: Vec<String> = record
            .iter()
            .map(|f| String::from_utf8_lossy(f).trim().to_string())
            .collect();
        if let Some(name) = names.first_mut() {
            *name = name.trim_start_matches('\u{feff}').to_string();
        }
        first = Some(names);
    }
    let width = first.as_ref().map_or(record.len(), Vec::len);
    let header = header_names(source, first, width);
    let slots = resolve(source, &header).map_err(|e| match e {
        Error::MissingColumn { .. } | Error::MissingRequired { .. } => {
            delimiter_hint(source.path(), source.delimiter, &record).unwrap_or(e)
        }
        e => e,
    })?;
    // A row filled from the row before is read after it, on one thread.
    let parts = if source.header && slots.fill.is_none() {
        split_for_threads(path, reader.position().byte(), parallel_min_bytes)?
    } else {
        None
    };
    if let Some(parts) = parts {
        // Only plain files are split, and read in memory only when no bigger than
        // the budget: the parts need no budget of their own.
        drop(reader);
        return read_csv_parts(source, &header, &slots, &parts, on_progress, keep.plan());
    }
    let time_field = match &slots.columns[TIME] {
        Slot::Field(index) => Some(*index),
        _ => None,
    };
    // Declared before the sink, which borrows the plan once there is one.
    let switched = std::cell::OnceCell::new();
    let mut sink = Sink::new(source, &header, slots, 0)
        .spilling(keep.plan().map(|plan| spill::Writer::new(plan, 0)));
    let mut first_row = (!source.header && has_first).then_some(());
    // The last row's line and start, and whether a field of it holds a line end.
    let mut last = None;
    loop {
        if first_row.take().is_none() && !reader.read_byte_record(&mut record).map_err(io)? {
            break;
        }
        let start = record.position().map_or(0, |p| p.byte());
        let line = lines.at(start);
        let fields: Vec<&[u8]> = record.iter().collect();
        let holds_line_end = fields
            .iter()
            .any(|f| memchr::memchr2(b'\n', b'\r', f).is_some());
        last = Some((line, start, holds_line_end));
        let is_time = |t: &str| source.time_format.parse_micros(t).is_some();
        match (holds_line_end && fields.len() == header.len())
            .then(|| {
                records::swallowed_row(&fields, &header, source.delimiter, time_field, is_time)
            })
            .flatten()
        {
            Some(reason) => sink.push_refused(line, reason, &fields, source.delimiter),
            None => sink.push(line, &fields, source.delimiter)?,
        }
        sink.spill_past_budget(keep, reader.position().byte(), &text_size, &switched)?;
    }
    // A quote that never closes makes the rest of the file one field: refused, as
    // its lines would otherwise be lost in one row.
    if let Some((line, start, holds_line_end)) = last
        && last_record_open(path, &lines, start, holds_line_end, source.delimiter)?
    {
        return Err(Error::UnclosedQuote {
            path: path.to_path_buf(),
            line,
        });
    }
    let parsed = sink.finish()?;
    Ok(Parsed {
        spilled: switched.into_inner(),
        ..parsed
    })
}

/// Whether the last record, starting at byte `start`, ends inside a quoted field:
/// from the last line the reader kept when the record holds no line end, else read
/// again from its start.
pub(crate) fn last_record_open(
    path: &Path,
    lines: &records::Lines,
    start: u64,
    holds_line_end: bool,
    delimiter: u8,
) -> Result<bool> {
    match lines.ends_in_open_quote(delimiter) {
        Some(open) if !holds_line_end => Ok(open),
        _ => ends_in_open_quote(path, start, delimiter),
    }
}

/// Whether the text of `path` from byte `start` (a record's start) ends inside a
/// quoted field ([`records::ends_in_quote`]).
fn ends_in_open_quote(path: &Path, start: u64, delimiter: u8) -> Result<bool> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut no_progress = |_: u64, _: u64| {};
    let mut text = open(path, &mut no_progress)?.reader;
    std::io::copy(&mut (&mut text).take(start), &mut std::io::sink()).map_err(io)?;
    records::ends_in_quote(&mut text, delimiter).map_err(io)
}

fn open_file(path: &Path) -> Result<File> {
    crate::regular_file(path)?;
    File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}
