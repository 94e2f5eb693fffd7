//! The order ingest leaves events in: by user, then time, then row hash (so that
//! exact duplicates are next to each other), ties in file order.

use polars::prelude::*;
use userlens_model::columns::{EVENT_TIME, USER_ID};

use crate::error::{self, Result};
use crate::read::ROW_HASH;

/// How to put events in ingest order.
pub(crate) enum Order {
    /// They already are: a stable sort would leave them as they are.
    Kept,
    /// Take these rows, in this order.
    Rows(IdxCa),
    /// A key is null (never, for rows the reader kept): sort with polars, which puts
    /// nulls first.
    Sort,
}

/// Finds the row order a stable sort by user, time and row hash gives, without
/// polars' multi-column sort, which encodes every row's keys before sorting them
/// (timings: docs/benchmarks.md).
///
/// Events already in order are found so in one pass. Otherwise every user gets its
/// rank among the distinct users (a hash map over the rows, then a sort of the
/// distinct ids), the rows are placed by rank with a counting sort, which keeps file
/// order within a user, and only a user whose rows are not then in time and hash
/// order has them sorted.
///
/// Events not in order are joined into one chunk here (column by column, in
/// parallel), for the gather or sort that follows and so that the keys are read in
/// place; events in order keep their chunks.
pub(crate) fn ingest_order(events: &mut DataFrame) -> Result<Order> {
    let action = "read the sort keys of the events";
    let (nulls, kept) = {
        let (users, times, hashes) = keys(events).map_err(error::polars(action))?;
        let nulls = users.null_count() + times.null_count() + hashes.null_count() > 0;
        (nulls, !nulls && in_order(users, times, hashes))
    };
    if kept {
        return Ok(Order::Kept);
    }
    events.rechunk_mut_par();
    if nulls {
        return Ok(Order::Sort);
    }
    let (users, times, hashes) = keys(events).map_err(error::polars(action))?;
    let times = times.cont_slice().map_err(error::polars(action))?;
    let hashes = hashes.cont_slice().map_err(error::polars(action))?;

    // Each row's user as the index of its first appearance, then as its rank.
    let mut first_seen: foldhash::HashMap<&str, u32> = foldhash::HashMap::default();
    let mut distinct: Vec<&str> = Vec::new();
    let mut user_of_row: Vec<u32> = Vec::with_capacity(times.len());
    for user in users.iter().flatten() {
        let next = distinct.len() as u32;
        let id = *first_seen.entry(user).or_insert_with(|| {
            distinct.push(user);
            next
        });
        user_of_row.push(id);
    }
    drop(first_seen);
    let mut by_name: Vec<u32> = (0..distinct.len() as u32).collect();
    by_name.sort_unstable_by_key(|&id| distinct[id as usize]);
    let mut rank = vec![0u32; distinct.len()];
    for (r, &id) in by_name.iter().enumerate() {
        rank[id as usize] = r as u32;
    }
    // Counting sort by rank: `starts[r]` is where rank r's rows begin.
    let mut starts = vec![0usize; distinct.len() + 1];
    for &id in &user_of_row {
        starts[rank[id as usize] as usize + 1] += 1;
    }
    for r in 0..distinct.len() {
        starts[r + 1] += starts[r];
    }
    let mut next = starts.clone();
    let mut order = vec![0 as IdxSize; user_of_row.len()];
    for (row, &id) in user_of_row.iter().enumerate() {
        let slot = &mut next[rank[id as usize] as usize];
        order[*slot] = row as IdxSize;
        *slot += 1;
    }
    // Within a user: by time, then hash, ties in file order (the slice holds rows in
    // file order, and the sort is stable).
    let key = |row: &IdxSize| (times[*row as usize], hashes[*row as usize]);
    for bounds in starts.windows(2) {
        let rows = &mut order[bounds[0]..bounds[1]];
        if !rows.is_sorted_by_key(key) {
            rows.sort_by_key(key);
        }
    }
    Ok(Order::Rows(IdxCa::from_vec("order".into(), order)))
}

/// The sort keys: user, time (microseconds) and row hash.
fn keys(events: &DataFrame) -> PolarsResult<(&StringChunked, &Int64Chunked, &UInt64Chunked)> {
    let users = events.column(USER_ID)?.str()?;
    let times = events.column(EVENT_TIME)?.datetime()?.physical();
    let hashes = events.column(ROW_HASH)?.u64()?;
    Ok((users, times, hashes))
}

/// Whether the rows (without nulls) are sorted by user, time and hash: ranges of
/// rows are checked side by side, then the rows on either side of every boundary
/// between ranges.
fn in_order(users: &StringChunked, times: &Int64Chunked, hashes: &UInt64Chunked) -> bool {
    use rayon::prelude::*;
    let n = users.len();
    let pieces = (rayon::current_num_threads() * 4).min(n.max(1));
    let bounds: Vec<usize> = (0..=pieces).map(|i| n * i / pieces).collect();
    let within = bounds.par_windows(2).all(|range| {
        let (offset, len) = (range[0] as i64, range[1] - range[0]);
        let (users, times, hashes) = (
            users.slice(offset, len),
            times.slice(offset, len),
            hashes.slice(offset, len),
        );
        users
            .iter()
            .zip(times.iter().zip(hashes.iter()))
            .is_sorted()
    });
    let key = |row: usize| (users.get(row), (times.get(row), hashes.get(row)));
    within
        && bounds
            .iter()
            .filter(|&&row| row > 0 && row < n)
            .all(|&row| key(row - 1) <= key(row))
}
