//! The events a recommender reads, folded into what each user did with each item.
//!
//! Only the columns needed are read, part by part. Each user's events on an item
//! become one [`Pair`]: the interest before the cutoff and before the as-of date,
//! and whether a test event on it fell in between. Ids become dense indices in
//! sorted order, so everything after this works on integers and every result is
//! the same however the events were split into parts.

mod pairs;
mod stored;
#[cfg(test)]
mod tests;
mod text;

use foldhash::{HashMap, HashMapExt};
use polars::prelude::*;
use rayon::prelude::*;
use userlens_model::columns::{AMOUNT, CATEGORY, EVENT_TIME, EVENT_TYPE, ITEM_ID, RATING, USER_ID};
use userlens_model::event_types::PURCHASE;

use crate::error::{Error, Result};
use crate::params::CheckedRecommendParams;
pub(crate) use pairs::{End, Pair, TestKinds, Window};
use pairs::{Role, Row, fold};
pub(crate) use stored::Stored;
use text::{CodeIds, Interner, Text, Texts};

/// What stands for an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemSource {
    /// The events' `item_id`.
    ItemId,
    /// The events' `category`: the log has no item ids.
    Category,
    /// Neither: nothing can be recommended.
    Nothing,
}

/// Every user's events on items before the as-of date, with ids as dense indices.
#[derive(Debug, Clone)]
pub(crate) struct Log {
    /// User ids, sorted; every user with any event, item or not.
    pub users: Vec<String>,
    /// Item ids, sorted.
    pub items: Vec<String>,
    /// Each item's most frequent category (ties: the first in sort order).
    pub categories: Vec<Option<String>>,
    /// Event type names, sorted.
    pub kinds: Vec<String>,
    /// Sorted by user, then item.
    pub pairs: Vec<Pair>,
    /// Per [`End`]: the latest event time before it.
    latest: [Option<i64>; 2],
    /// The [`Window::cutoff`] read at.
    pub cutoff: i64,
    /// What stands for an item.
    pub source: ItemSource,
}

impl Log {
    pub fn latest(&self, end: End) -> Option<i64> {
        self.latest[end as usize]
    }
}

/// Rows before `as_of` with a value in `column`.
fn non_null(parts: &[LazyFrame], column: &str, as_of: i64) -> Result<u64> {
    let mut total = 0u64;
    for part in parts {
        let df = part
            .clone()
            .filter(col(EVENT_TIME).cast(DataType::Int64).lt(lit(as_of)))
            .select([col(column).is_not_null().sum().cast(DataType::UInt64)])
            .collect()?;
        total += df.columns()[0].u64()?.get(0).unwrap_or(0);
    }
    Ok(total)
}

/// Rows of a part per task of [`read`], moved on to where a user begins. Any split
/// gives the same log: ids are renumbered in sorted order at the end.
const CHUNK_ROWS: usize = 1 << 18;

/// The columns [`read`] takes from a part, sliced to one task's rows.
struct Columns {
    users: StringChunked,
    times: Int64Chunked,
    /// Types, items and categories: strings or dictionary codes.
    kinds: Column,
    items: Column,
    categories: Column,
    ratings: Float64Chunked,
    amounts: Float64Chunked,
}

impl Columns {
    fn slice(&self, offset: usize, len: usize) -> Columns {
        let offset = offset as i64;
        Columns {
            users: self.users.slice(offset, len),
            times: self.times.slice(offset, len),
            kinds: self.kinds.slice(offset, len),
            items: self.items.slice(offset, len),
            categories: self.categories.slice(offset, len),
            ratings: self.ratings.slice(offset, len),
            amounts: self.amounts.slice(offset, len),
        }
    }

    /// Where each task begins: every `chunk_rows` rows or so, moved on past the
    /// rows of the user there, so that no user's rows are split between tasks.
    fn task_starts(&self, chunk_rows: usize) -> Vec<usize> {
        let height = self.users.len();
        let mut starts = vec![0];
        let mut at = chunk_rows;
        while at < height {
            while at < height && self.users.get(at) == self.users.get(at - 1) {
                at += 1;
            }
            if at < height {
                starts.push(at);
            }
            at += chunk_rows;
        }
        starts
    }
}

/// What one task of [`read`] saw: the names behind the ids it wrote (numbered in
/// its own first-seen order), its items' category counts and its users' pairs.
struct Chunk {
    users: Interner,
    items: Interner,
    /// The event types the fold tells apart: every inert one (see [`Role::inert`])
    /// goes by the first of them the task met, so a log of any number of types fits
    /// the pairs' `u16` where the types that count do.
    kinds: Interner,
    /// Every event type the task met, and per type its id in `kinds` once a row
    /// of it counted (a type of refunds only has none).
    met: (Interner, Vec<Option<u16>>),
    categories: Interner,
    /// Per kind: its [`Role`].
    roles: Vec<Role>,
    /// The id in `kinds` of the inert types, once one is met.
    inert: Option<u16>,
    item_categories: HashMap<(u32, u32), u32>,
    pairs: Vec<Pair>,
    /// Per [`End`]: the latest event time before it.
    latest: [Option<i64>; 2],
    /// Whether each user's rows came together (else the task's pairs are partial).
    grouped: bool,
}

impl Chunk {
    /// The id among the types met of an event type, and its name.
    fn met(&mut self, text: Text<'_>, codes: &mut CodeIds<'_>) -> Result<(usize, &str)> {
        let type_id = self.met.0.id(text, codes)? as usize;
        Ok((type_id, &self.met.0.names[type_id]))
    }

    /// The task's id of the event type met as `type_id`, its role noted when new.
    fn kind(&mut self, type_id: usize, params: &CheckedRecommendParams) -> Result<u16> {
        let (met, ids) = &mut self.met;
        if let Some(&Some(kind)) = ids.get(type_id) {
            return Ok(kind);
        }
        let name = &met.names[type_id];
        let role = Role::of(name, params);
        let kind = match self.inert {
            Some(kind) if role.inert() => kind,
            _ => {
                let kind = self.kinds.get(name);
                if kind as usize == self.roles.len() {
                    self.roles.push(role);
                }
                let kind = u16::try_from(kind).map_err(|_| too_many_kinds())?;
                if role.inert() {
                    self.inert = Some(kind);
                }
                kind
            }
        };
        if ids.len() <= type_id {
            ids.resize(type_id + 1, None);
        }
        ids[type_id] = Some(kind);
        Ok(kind)
    }
}

fn too_many_kinds() -> Error {
    Error::Events(format!(
        "more than {} event types with a weight, a test role or purchases",
        u16::MAX
    ))
}

/// A row's user, time and type if it has all three and falls before `as_of`: its
/// user counts, and with an item it is one of their events.
fn before<K>(
    user: Option<&str>,
    time: Option<i64>,
    kind: Option<K>,
    as_of: i64,
) -> Option<(&str, i64, K)> {
    match (user, time, kind) {
        (Some(user), Some(time), Some(kind)) if time < as_of => Some((user, time, kind)),
        _ => None,
    }
}

/// Reads one task's rows, folding each user's events as their rows end.
fn read_chunk(columns: &Columns, window: &Window<'_>) -> Result<Chunk> {
    let (kinds, items, categories) = (
        Texts::of(&columns.kinds)?,
        Texts::of(&columns.items)?,
        Texts::of(&columns.categories)?,
    );
    let (mut kind_ids, mut item_ids, mut category_ids) =
        (kinds.code_ids(), items.code_ids(), categories.code_ids());
    let mut chunk = Chunk {
        users: Interner::new(),
        items: Interner::new(),
        kinds: Interner::new(),
        met: (Interner::new(), Vec::new()),
        categories: Interner::new(),
        roles: Vec::new(),
        inert: None,
        item_categories: HashMap::new(),
        pairs: Vec::new(),
        latest: [None; 2],
        grouped: true,
    };
    let mut rows: Vec<Row> = Vec::new();
    let mut current: Option<u32> = None;
    let fold_rows = |chunk: &mut Chunk, user: u32, rows: &mut Vec<Row>| {
        let Chunk {
            kinds,
            roles,
            pairs,
            latest,
            ..
        } = chunk;
        fold(user, rows, &kinds.names, roles, window, pairs, latest);
        rows.clear();
    };
    let details = (categories.values())
        .zip(columns.ratings.iter())
        .zip(columns.amounts.iter());
    for ((((user, time), kind), item), ((category, rating), amount)) in columns
        .users
        .iter()
        .zip(columns.times.iter())
        .zip(kinds.values())
        .zip(items.values())
        .zip(details)
    {
        let Some((user, time, kind)) = before(user, time, kind, window.as_of) else {
            continue;
        };
        // Every user with an event counts, item or not.
        let user = chunk.users.get(user);
        if current != Some(user) {
            if let Some(done) = current {
                fold_rows(&mut chunk, done, &mut rows);
            }
            // A user met before, after another: their rows are apart.
            chunk.grouped &= user as usize + 1 == chunk.users.names.len();
            current = Some(user);
        }
        let Some(item) = item else { continue };
        let (type_id, name) = chunk.met(kind, &mut kind_ids)?;
        // A refund (a purchase of negative amount) is no interest in its item, nor
        // a purchase the log holds.
        if userlens_model::money::is_refund(amount) && name == PURCHASE {
            continue;
        }
        let kind = chunk.kind(type_id, window.params)?;
        let item = chunk.items.id(item, &mut item_ids)?;
        if let Some(category) = category {
            let c = chunk.categories.id(category, &mut category_ids)?;
            *chunk.item_categories.entry((item, c)).or_insert(0) += 1;
        }
        rows.push(Row {
            item,
            kind,
            time,
            rating: rating.map_or(f32::NAN, |r| r as f32),
        });
    }
    if let Some(done) = current {
        fold_rows(&mut chunk, done, &mut rows);
    }
    Ok(chunk)
}

/// The columns [`read`] needs from one part, collected.
fn columns(part: &LazyFrame, item_column: &str) -> Result<Columns> {
    // Events at or after `as_of` are skipped while reading rather than filtered out
    // here: when some are (an as-of date before the last event), a filter copies
    // every selected column only to read it once.
    let df = part
        .clone()
        .select([
            col(USER_ID),
            col(EVENT_TIME).cast(DataType::Int64),
            col(EVENT_TYPE),
            col(item_column).alias("__item"),
            col(CATEGORY),
            col(RATING).cast(DataType::Float64),
            col(AMOUNT).cast(DataType::Float64),
        ])
        .collect()?;
    let strings = |name: &str| -> Result<StringChunked> {
        let column = df.column(name)?;
        column.str().cloned().map_err(|_| {
            Error::Events(format!(
                "`{name}` holds {} where text was expected",
                column.dtype()
            ))
        })
    };
    let text = |name: &str| -> Result<Column> {
        let column = df.column(name)?;
        match column.dtype() {
            DataType::String | DataType::Categorical(..) => Ok(column.clone()),
            _ => strings(name).map(IntoColumn::into_column),
        }
    };
    Ok(Columns {
        users: strings(USER_ID)?,
        times: df.column(EVENT_TIME)?.i64()?.clone(),
        kinds: text(EVENT_TYPE)?,
        items: text("__item")?,
        categories: text(CATEGORY)?,
        ratings: df.column(RATING)?.f64()?.clone(),
        amounts: df.column(AMOUNT)?.f64()?.clone(),
    })
}

/// Reads the events before the window's as-of date from `parts` (canonical
/// columns), each part in tasks of [`CHUNK_ROWS`] rows on every core.
pub(crate) fn read(parts: &[LazyFrame], window: &Window<'_>) -> Result<Log> {
    read_in_tasks(parts, window, CHUNK_ROWS)
}

/// [`read`] in tasks of about `chunk_rows` rows.
fn read_in_tasks(parts: &[LazyFrame], window: &Window<'_>, chunk_rows: usize) -> Result<Log> {
    // Rows with an item: at least one per pair, so room for every pair read.
    // Chosen from the events a model may see: ids that appear only later stand for nothing.
    let (source, rows) = match non_null(parts, ITEM_ID, window.as_of)? {
        0 => match non_null(parts, CATEGORY, window.as_of)? {
            0 => (ItemSource::Nothing, 0),
            rows => (ItemSource::Category, rows),
        },
        rows => (ItemSource::ItemId, rows),
    };
    let room = usize::try_from(rows).unwrap_or(0);
    if let Some(log) = read_grouped(parts, source, room, window, chunk_rows)? {
        return Ok(log);
    }
    // Some user's rows are apart (the ingest leaves every user's together, in one
    // part): all the parts as one, sorted by user.
    let whole =
        concat(parts, UnionArgs::default())?.sort([USER_ID], SortMultipleOptions::default());
    read_grouped(&[whole], source, room, window, chunk_rows)?
        .ok_or_else(|| Error::Events("the events sorted by user are not grouped by user".into()))
}

/// Sorts `pairs` (one per user and item) by user, then item. When the users
/// already come in order (the ingest sorts the events by user id), each user's
/// pairs are sorted on their own: the same order, without a sort of them all.
fn sort_pairs(pairs: &mut [Pair]) {
    if pairs.par_windows(2).all(|w| w[0].user <= w[1].user) {
        pairs
            .par_chunk_by_mut(|a, b| a.user == b.user)
            .for_each(|run| run.sort_unstable_by_key(|p| p.item));
    } else {
        pairs.par_sort_unstable_by_key(|p| (p.user, p.item));
    }
}

/// [`read`], when every user's rows are together in one part; `None` otherwise.
/// `room`: the most pairs there can be (the rows with an item), reserved at once.
fn read_grouped(
    parts: &[LazyFrame],
    source: ItemSource,
    room: usize,
    window: &Window<'_>,
    chunk_rows: usize,
) -> Result<Option<Log>> {
    let item_column = match source {
        ItemSource::Category => CATEGORY,
        _ => ITEM_ID,
    };
    // Every task's names go into one set per kind of id (numbered in first-seen
    // order) as soon as its part is read, and its pairs are renumbered to match:
    // one part and one set of names in memory at a time.
    let (mut users, mut items, mut kinds) = (Interner::new(), Interner::new(), Interner::new());
    let mut category_names = Interner::new();
    let mut counts: HashMap<(u32, u32), u32> = HashMap::new();
    // Every task's pairs are moved here as its part is done, into room reserved
    // once: pages never written are never resident, and no second copy of the
    // pairs is made when they are all read.
    let mut pairs: Vec<Pair> = Vec::new();
    // A reservation refused (a file too big for the address space) only means growing.
    let _ = pairs.try_reserve_exact(room);
    let mut latest = [None; 2];
    for part in parts {
        let columns = columns(part, item_column)?;
        let starts = columns.task_starts(chunk_rows);
        let ends = starts.iter().skip(1).copied().chain([columns.users.len()]);
        let tasks: Vec<Columns> = starts
            .iter()
            .zip(ends)
            .map(|(&start, end)| columns.slice(start, end - start))
            .collect();
        let read: Vec<Result<Chunk>> = tasks.par_iter().map(|t| read_chunk(t, window)).collect();
        for chunk in read {
            let mut chunk = chunk?;
            let known = users.names.len() as u32;
            let [u, i, k, c] = [
                (&chunk.users, &mut users),
                (&chunk.items, &mut items),
                (&chunk.kinds, &mut kinds),
                (&chunk.categories, &mut category_names),
            ]
            .map(|(local, all)| local.names.iter().map(|n| all.get(n)).collect::<Vec<u32>>());
            // Each user's rows together: the task's users are new to the tasks before.
            if !chunk.grouped || u.iter().any(|&g| g < known) {
                return Ok(None);
            }
            if kinds.names.len() > usize::from(u16::MAX) {
                return Err(too_many_kinds());
            }
            pairs.extend(chunk.pairs.drain(..).map(|p| p.renumbered(&u, &i, &k)));
            for (&(item, category), &n) in &chunk.item_categories {
                *counts
                    .entry((i[item as usize], c[category as usize]))
                    .or_insert(0) += n;
            }
            latest = [0, 1].map(|e| latest[e].max(chunk.latest[e]));
        }
    }
    let (users, user_place) = users.sorted();
    let (items, item_place) = items.sorted();
    let (kinds, kind_place) = kinds.sorted();
    let (category_names, category_place) = category_names.sorted();
    pairs
        .par_iter_mut()
        .for_each(|p| *p = p.renumbered(&user_place, &item_place, &kind_place));
    sort_pairs(&mut pairs);
    // Most frequent category per item; ties go to the first name.
    let mut best: Vec<Option<(u32, u32)>> = vec![None; items.len()];
    for (&(item, c), &n) in &counts {
        let (item, c) = (item_place[item as usize], category_place[c as usize]);
        let slot = &mut best[item as usize];
        let better = match *slot {
            None => true,
            Some((bn, bc)) => n > bn || (n == bn && c < bc),
        };
        if better {
            *slot = Some((n, c));
        }
    }
    let categories = best
        .into_iter()
        .map(|b| b.map(|(_, c)| category_names[c as usize].clone()))
        .collect();
    Ok(Some(Log {
        users,
        items,
        categories,
        kinds,
        pairs,
        latest,
        cutoff: window.cutoff,
        source,
    }))
}
