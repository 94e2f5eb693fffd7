//! The canonical events, in memory or in parts, and what a run asks of them whole:
//! the event types, how many come before a time, names that look like a known type.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use userlens_model::columns;

use crate::error::{self, Error, Result};
use crate::{Source, codes, scan_part};

/// Canonical events, in memory or on disk.
#[derive(Debug, Clone)]
pub enum Events {
    /// All events in one table sorted by user and time.
    Memory(DataFrame),
    /// Parquet files of the canonical columns, each holding whole users sorted by
    /// user and time (users are spread over the files by a hash of their id, or, for
    /// events split after an in-memory ingest, in runs of ids in order).
    Parts {
        /// The files.
        files: Vec<PathBuf>,
        /// Events in all of them.
        rows: u64,
    },
}

impl Events {
    /// Number of events.
    pub fn height(&self) -> u64 {
        match self {
            Events::Memory(df) => df.height() as u64,
            Events::Parts { rows, .. } => *rows,
        }
    }

    /// One lazy frame per part (one for events in memory): every user is in exactly
    /// one, so per-user work can go part by part and keep only one part in memory.
    pub fn parts(&self) -> Result<Vec<LazyFrame>> {
        match self {
            Events::Memory(df) => Ok(vec![df.clone().lazy()]),
            Events::Parts { files, .. } => files.iter().map(|f| scan_part(f)).collect(),
        }
    }

    /// Frees the columns of events in memory that `keep` refuses; events on disk are
    /// left as they are (their readers select the columns they need).
    pub fn retain_columns(&mut self, keep: impl Fn(&str) -> bool) {
        if let Events::Memory(df) = self {
            let dropped: Vec<PlSmallStr> = df
                .get_column_names()
                .into_iter()
                .filter(|name| !keep(name))
                .cloned()
                .collect();
            if !dropped.is_empty() {
                *df = df.drop_many(dropped);
            }
        }
    }
}

/// The distinct event types of the events, sorted.
pub fn event_types(events: &Events) -> Result<Vec<String>> {
    let mut names = std::collections::BTreeSet::new();
    match events {
        Events::Memory(df) => {
            let types = df
                .column(columns::EVENT_TYPE)
                .and_then(|c| c.cat32())
                .map_err(error::polars("read the event types"))?;
            let mapping = types.get_mapping();
            let mut seen = vec![false; mapping.num_cats_upper_bound()];
            for code in types.physical().iter().flatten() {
                if let Some(seen) = seen.get_mut(code as usize) {
                    *seen = true;
                }
            }
            for (code, _) in seen.iter().enumerate().filter(|(_, s)| **s) {
                if let Some(name) = mapping.cat_to_str(code as u32) {
                    names.insert(name.to_string());
                }
            }
        }
        Events::Parts { files, .. } => {
            for file in files {
                names.extend(codes::listed_values(file, columns::EVENT_TYPE)?);
            }
        }
    }
    Ok(names.into_iter().collect())
}

/// The events earlier than each of `cuts` (UTC microseconds), in one read of their
/// times: those a run as of that time profiles. Parts are read for their event
/// times only.
pub fn events_before(events: &Events, cuts: &[i64]) -> Result<Vec<u64>> {
    let counts: Vec<Expr> = (cuts.iter().enumerate())
        .map(|(i, &cut)| {
            (col(columns::EVENT_TIME)
                .dt()
                .timestamp(TimeUnit::Microseconds))
            .lt(lit(cut))
            .sum()
            .cast(DataType::UInt64)
            .alias(format!("n{i}"))
        })
        .collect();
    let count = |frame: LazyFrame, what: &Path| -> Result<Vec<u64>> {
        let counted = frame
            .select(counts.clone())
            .collect()
            .map_err(|source| Error::Parquet {
                path: what.to_path_buf(),
                source,
            })?;
        Ok((0..cuts.len())
            .map(|i| {
                (counted.column(&format!("n{i}")).ok())
                    .and_then(|c| c.u64().ok()?.get(0))
                    .unwrap_or(0)
            })
            .collect())
    };
    match events {
        Events::Memory(df) => count(
            df.select([columns::EVENT_TIME])
                .map_err(error::polars("count the events before the as-of date"))?
                .lazy(),
            Path::new("events"),
        ),
        Events::Parts { files, .. } => files.iter().try_fold(vec![0; cuts.len()], |total, file| {
            let scan = PlRefPath::try_from_path(file)
                .and_then(|p| LazyFrame::scan_parquet(p, ScanArgsParquet::default()))
                .map_err(|source| Error::Parquet {
                    path: file.clone(),
                    source,
                })?;
            let part = count(scan, file)?;
            Ok(total.iter().zip(part).map(|(t, p)| t + p).collect())
        }),
    }
}

/// What looks wrong in the source's `event_names`, as notes: a name mapped to a
/// type no event has (no event had the name: `PV` where the log writes `pv`), and a
/// target one typo from a known type (`veiw`), whose rows count as events of their own.
/// `names` are the log's event types ([`event_types`]).
pub fn event_name_notes(names: &[String], source: &Source) -> Vec<String> {
    let known = userlens_model::event_types::KNOWN;
    let present: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut notes = Vec::new();
    for (from, to) in &source.params.event_names {
        if !present.contains(&to.as_str()) {
            let near = userlens_model::one_typo_from(from, &present)
                .map(|n| format!("; the log has `{n}`"))
                .unwrap_or_default();
            notes.push(format!(
                "`event_names` maps `{from}` to `{to}`, but no event is `{to}`: no event type \
                 is `{from}` (names are exact{near}), or every such row was quarantined"
            ));
        } else if !known.contains(&to.as_str())
            && from != to
            && let Some(like) = (known.iter().find(|k| folded(k) == folded(to)).copied())
                .or_else(|| userlens_model::one_typo_from(to, &known))
        {
            notes.push(format!(
                "`event_names` maps `{from}` to `{to}`, which is no known type: its rows count \
                 as events of their own; did you mean `{like}`?"
            ));
        }
    }
    notes
}

/// The event types that are a known type written otherwise (`Purchase`, `Add To
/// Cart`, `addtocart`), or a common export's name for one the log lacks
/// (Retailrocket's `transaction` in a log without `purchase`), each with that type:
/// names are exact, so their rows count as events of their own. Names the source's
/// `event_names` maps are the user's choice, and so are other names it maps to.
/// `names` are the log's event types ([`event_types`]).
pub fn near_known_event_types(names: &[String], source: &Source) -> Vec<(String, &'static str)> {
    use userlens_model::event_types::{ADD_TO_CART, KNOWN, PURCHASE, VIEW};
    // Other names for the known types, folded as [`folded`] folds them.
    let synonyms = [
        ("transaction", PURCHASE),
        ("order", PURCHASE),
        ("pageview", VIEW),
        ("viewitem", VIEW),
        ("cart", ADD_TO_CART),
    ];
    let present = |kind: &str| names.iter().any(|n| n == kind);
    let mapping = &source.params.event_names;
    // A mapping's target is named by [`event_name_notes`], with its own advice.
    names
        .iter()
        .filter(|name| !mapping.contains_key(name.as_str()))
        .filter(|name| !mapping.values().any(|v| v == *name))
        .filter_map(|name| {
            let folded = folded(name);
            let like = match KNOWN.iter().find(|k| self::folded(k) == folded) {
                Some(like) => *like,
                None => synonyms
                    .iter()
                    .find(|(k, like)| *k == folded && !present(like))
                    .map(|(_, like)| *like)?,
            };
            (name != like).then(|| (name.clone(), like))
        })
        .collect()
}

/// `name` in lower-case letters and digits alone: `Add To Cart` is `addtocart`.
fn folded(name: &str) -> String {
    (name.chars())
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}
