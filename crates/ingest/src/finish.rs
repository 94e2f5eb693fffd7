//! The events a reader kept, finished: in order by user and time, without exact
//! duplicates, with sessions.

use polars::prelude::*;
use userlens_model::columns;

use crate::error::{self, Result};
use crate::{order, read};

/// The event columns held as codes into a dictionary of their distinct values (4
/// bytes a row instead of a string's 16): the text with few distinct values.
pub const DICTIONARY_COLUMNS: [&str; 4] = [
    columns::EVENT_TYPE,
    columns::ITEM_ID,
    columns::CATEGORY,
    columns::QUERY,
];

/// The type of a [`DICTIONARY_COLUMNS`] column: one dictionary per column name, shared
/// by every part of the events, kept for the life of the process. Polars names a
/// dictionary only while a column holds it, and its entry is removed when the last
/// one goes, even if another thread has just made the name anew: columns read back
/// from Parquet then got a dictionary of their own and no longer equalled the rest.
pub fn dictionary(name: &str) -> DataType {
    static KEPT: std::sync::LazyLock<std::sync::Mutex<Vec<(String, DataType)>>> =
        std::sync::LazyLock::new(Default::default);
    let mut kept = KEPT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, dtype)) = kept.iter().find(|(n, _)| n == name) {
        return dtype.clone();
    }
    let categories = Categories::new(name.into(), "userlens".into(), CategoricalPhysical::U32);
    let dtype = DataType::from_categories(categories);
    kept.push((name.to_string(), dtype.clone()));
    dtype
}

/// The events of [`finish_events`] and the rows it dropped as duplicates.
pub(crate) struct Finished {
    pub events: DataFrame,
    pub duplicates: Vec<crate::Duplicate>,
}

/// Sorts by user and time, drops exact duplicate rows (keeping the first) when asked
/// and, for the rows without a session id (all, when the source has none), makes
/// them: a new session starts at a user's first event and after every gap longer
/// than `gap`; the
/// [`DICTIONARY_COLUMNS`] come out as codes.
///
/// Duplicates are found without a hash table over all rows: the sort's last key is
/// the row hash the reader computed, so equal rows end up next to each other, and a
/// row is dropped only when every column equals the row before it.
pub(crate) fn finish_events(
    events: DataFrame,
    has_session: bool,
    gap_micros: i64,
    drop_duplicates: bool,
) -> Result<Finished> {
    use columns::*;
    let started = std::time::Instant::now();
    let has_order = events.column(ORDER_ID).is_ok();
    let mut events = events;
    let mut sorted = match order::ingest_order(&mut events)? {
        // Exports grouped by user are common (and what `generate` writes): the
        // sort would be the identity, and its gather a copy of every column. The
        // reader's parts stay chunks of their own too: joining them is a copy into
        // fresh memory, which the kernel zeroes page by page, and the stages after
        // the ingest take chunks as they come.
        order::Order::Kept => events,
        // The events as read go once sorted, not held beside the duplicates' check.
        order::Order::Rows(rows) => {
            let sorted = events.take(&rows).map_err(error::polars("sort events"))?;
            drop(events);
            sorted
        }
        order::Order::Sort => {
            let sorted = events
                .sort(
                    [USER_ID, EVENT_TIME, read::ROW_HASH],
                    SortMultipleOptions::default().with_maintain_order(true),
                )
                .map_err(error::polars("sort events"))?;
            drop(events);
            sorted
        }
    };
    tracing::debug!(
        "ingest: in order in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let mut duplicates = Vec::new();
    if drop_duplicates {
        (sorted, duplicates) = drop_adjacent_duplicates(sorted)?;
        tracing::debug!(
            "ingest: duplicates dropped by {:.2} s",
            started.elapsed().as_secs_f64()
        );
    }
    // A source's rows without a session id are sessionized like a source without.
    let unsessioned = sorted
        .column(SESSION_ID)
        .map_or(sorted.height(), |c| c.null_count());
    let sorted = sorted.lazy();
    let with_sessions = if has_session && unsessioned == 0 {
        sorted
    } else {
        let micros = col(EVENT_TIME).cast(DataType::Int64);
        let new_session = col(USER_ID)
            .neq_missing(col(USER_ID).shift(lit(1)))
            .or((micros.clone() - micros.shift(lit(1))).gt(lit(gap_micros)));
        // Materialise the running session counter before the window: inside `over`
        // the shifts above would be evaluated per user and restart the count.
        let first_of_user = col("__session")
            .min()
            .over([col(USER_ID)])
            .map_err(error::polars("number sessions"))?;
        let per_user = col("__session") - first_of_user + lit(1u32);
        sorted
            .with_column(
                new_session
                    .cast(DataType::UInt32)
                    .cum_sum(false)
                    .alias("__session"),
            )
            .with_column({
                let made = concat_str(
                    [col(USER_ID), lit("-s"), per_user.cast(DataType::String)],
                    "",
                    false,
                );
                match has_session {
                    true => when(col(SESSION_ID).is_null())
                        .then(made)
                        .otherwise(col(SESSION_ID)),
                    false => made,
                }
                .alias(SESSION_ID)
            })
    };
    let mut keep: Vec<Expr> = EVENT_COLUMNS.map(col).to_vec();
    if has_order {
        keep.push(col(ORDER_ID));
    }
    let mut events = with_sessions
        .select(keep)
        .collect()
        .map_err(error::polars("sort and sessionize events"))?;
    // The text reader makes codes as it reads; other sources' text is cast here, a
    // chunk at a time: a table whose columns' chunks differ is copied to align them.
    let action = "store text as codes";
    for name in DICTIONARY_COLUMNS {
        let column = events.column(name).map_err(error::polars(action))?;
        if matches!(column.dtype(), DataType::Categorical(..)) {
            continue;
        }
        let dictionary = dictionary(name);
        let text = column.as_materialized_series();
        let mut codes = Series::new_empty(name.into(), &dictionary);
        for i in 0..text.n_chunks() {
            let chunk = text.select_chunk(i).cast(&dictionary);
            codes
                .append(&chunk.map_err(error::polars(action))?)
                .map_err(error::polars(action))?;
        }
        events
            .replace(name, codes.into_column())
            .map_err(error::polars(action))?;
    }
    Ok(Finished { events, duplicates })
}

/// Drops every row equal (nulls equal) to the row before it in all columns but its
/// line, and says which they were.
///
/// Equal rows have equal row hashes, so only the rows whose hash equals the one
/// before are compared column by column (hash collisions are kept).
fn drop_adjacent_duplicates(events: DataFrame) -> Result<(DataFrame, Vec<crate::Duplicate>)> {
    let action = "drop duplicate events";
    let hashes = events
        .column(read::ROW_HASH)
        .and_then(Column::u64)
        .map_err(error::polars(action))?;
    let mut candidates: Vec<IdxSize> = Vec::new();
    let mut previous = None;
    for (row, hash) in hashes.iter().enumerate() {
        if hash.is_some() && hash == previous {
            candidates.push(row as IdxSize);
        }
        previous = hash;
    }
    if candidates.is_empty() {
        return Ok((events, Vec::new()));
    }
    let before: Vec<IdxSize> = candidates.iter().map(|&row| row - 1).collect();
    let rows = IdxCa::from_vec("rows".into(), candidates.clone());
    let before = IdxCa::from_vec("before".into(), before);
    let rows = events.take(&rows).map_err(error::polars(action))?;
    let before = events.take(&before).map_err(error::polars(action))?;
    let mut same: Option<BooleanChunked> = None;
    let compared = |c: &&Column| c.name().as_str() != read::LINE;
    for (row, previous) in
        (rows.columns().iter().filter(compared)).zip(before.columns().iter().filter(compared))
    {
        let equal = row
            .as_materialized_series()
            .equal_missing(previous.as_materialized_series())
            .map_err(error::polars(action))?;
        same = Some(match same {
            None => equal,
            Some(all) => &all & &equal,
        });
    }
    let duplicates: Vec<IdxSize> = candidates
        .iter()
        .zip(same.iter().flat_map(|s| s.iter()))
        .filter_map(|(&row, equal)| (equal == Some(true)).then_some(row))
        .collect();
    if duplicates.is_empty() {
        return Ok((events, Vec::new()));
    }
    let lines = events
        .column(read::LINE)
        .and_then(Column::u64)
        .map_err(error::polars(action))?;
    let line = |row: IdxSize| lines.get(row as usize).unwrap_or_default();
    let mut keep = vec![true; events.height()];
    let mut dropped: Vec<crate::Duplicate> = Vec::with_capacity(duplicates.len());
    for &row in &duplicates {
        // In a run of equal rows the first is kept, and each other repeats it.
        let of = match dropped.last() {
            Some(last) if !keep[row as usize - 1] => last.of,
            _ => line(row - 1),
        };
        keep[row as usize] = false;
        dropped.push(crate::Duplicate {
            line: line(row),
            of,
        });
    }
    let keep = BooleanChunked::from_slice("keep".into(), &keep);
    let events = events.filter(&keep).map_err(error::polars(action))?;
    Ok((events, dropped))
}
