//! The events a recommender reads: who touched which item, when, and how.
//!
//! Only the columns needed are read, part by part; ids become dense indices in
//! sorted order, so everything after this works on integers and every result is
//! the same however the events were split into parts.

use foldhash::{HashMap, HashMapExt};
use polars::prelude::*;
use rayon::prelude::*;
use userlens_model::columns::{CATEGORY, EVENT_TIME, EVENT_TYPE, ITEM_ID, RATING, USER_ID};

use crate::error::{Error, Result};

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

/// One event on an item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Event {
    pub user: u32,
    pub item: u32,
    /// Index into [`Log::kinds`].
    pub kind: u16,
    /// Microseconds, UTC.
    pub time: i64,
    /// The event's rating (NaN when it has none).
    pub rating: f32,
}

/// Every event on an item before the as-of date, with ids as dense indices.
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
    /// Sorted by user, item, time, kind.
    pub events: Vec<Event>,
    /// What stands for an item.
    pub source: ItemSource,
}

/// Interns strings, handing out indices in first-seen order.
#[derive(Default)]
struct Interner {
    index: HashMap<String, u32>,
    names: Vec<String>,
    /// The last index handed out: events come grouped by user, so most lookups of
    /// a user are the previous one's, found without hashing.
    last: u32,
}

impl Interner {
    fn new() -> Interner {
        Interner {
            index: HashMap::new(),
            names: Vec::new(),
            last: 0,
        }
    }

    fn get(&mut self, name: &str) -> u32 {
        if self
            .names
            .get(self.last as usize)
            .is_some_and(|n| n == name)
        {
            return self.last;
        }
        if let Some(&i) = self.index.get(name) {
            self.last = i;
            return i;
        }
        let i = self.names.len() as u32;
        self.last = i;
        self.index.insert(name.to_string(), i);
        self.names.push(name.to_string());
        i
    }

    /// The names sorted, and each first-seen index's place among them.
    fn sorted(self) -> (Vec<String>, Vec<u32>) {
        let mut order: Vec<u32> = (0..self.names.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| self.names[a as usize].cmp(&self.names[b as usize]));
        let mut place = vec![0u32; order.len()];
        for (rank, &i) in order.iter().enumerate() {
            place[i as usize] = rank as u32;
        }
        let mut names = self.names;
        let sorted = order
            .iter()
            .map(|&i| std::mem::take(&mut names[i as usize]))
            .collect();
        (sorted, place)
    }
}

fn non_null(parts: &[LazyFrame], column: &str) -> Result<u64> {
    let mut total = 0u64;
    for part in parts {
        let df = part
            .clone()
            .select([col(column).is_not_null().sum().cast(DataType::UInt64)])
            .collect()?;
        total += df.columns()[0].u64()?.get(0).unwrap_or(0);
    }
    Ok(total)
}

/// Rows of a part per task of [`read`]. Any split gives the same log: ids are
/// renumbered in sorted order and the events sorted on every field at the end.
const CHUNK_ROWS: usize = 1 << 18;

/// The columns [`read`] takes from a part, sliced to one task's rows.
struct Columns {
    users: StringChunked,
    times: Int64Chunked,
    /// Types, items and categories: strings, or dictionary codes (read as strings a
    /// task at a time, so that the strings of a whole column never exist at once).
    kinds: Column,
    items: Column,
    categories: Column,
    ratings: Float64Chunked,
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
        }
    }

    /// Rows that make an [`Event`]: [`before`] `as_of`, with an item.
    fn kept(&self, as_of: i64) -> usize {
        let (kinds, items) = (self.kinds.is_not_null(), self.items.is_not_null());
        // As [`before`], on whether there is a type rather than which.
        self.users
            .iter()
            .zip(self.times.iter())
            .zip(kinds.iter().zip(items.iter()))
            .filter(|((u, t), (k, i))| {
                u.is_some() && t.is_some_and(|t| t < as_of) && *k == Some(true) && *i == Some(true)
            })
            .count()
    }
}

/// What one task of [`read`] saw: the names behind the ids it wrote (numbered in
/// its own first-seen order) and its items' category counts.
struct Chunk {
    users: Interner,
    items: Interner,
    kinds: Interner,
    categories: Interner,
    item_categories: HashMap<(u32, u32), u32>,
}

/// `events` cut into consecutive stretches of the given lengths.
fn stretches<'e>(mut events: &'e mut [Event], lengths: &[usize]) -> Vec<&'e mut [Event]> {
    let mut out = Vec::with_capacity(lengths.len());
    for &n in lengths {
        let (stretch, rest) = events.split_at_mut(n);
        out.push(stretch);
        events = rest;
    }
    out
}

/// A row's user, time and type if it has all three and falls before `as_of`: its
/// user counts, and with an item it is an [`Event`].
fn before<'a>(
    user: Option<&'a str>,
    time: Option<i64>,
    kind: Option<&'a str>,
    as_of: i64,
) -> Option<(&'a str, i64, &'a str)> {
    match (user, time, kind) {
        (Some(user), Some(time), Some(kind)) if time < as_of => Some((user, time, kind)),
        _ => None,
    }
}

/// Reads one task's rows into `out` (exactly [`Columns::kept`] long).
fn read_chunk(columns: &Columns, as_of: i64, out: &mut [Event]) -> Result<Chunk> {
    let strings = |column: &Column| -> Result<StringChunked> {
        let text = column.cast(&DataType::String)?;
        Ok(text.str()?.clone())
    };
    let (kinds, items, categories) = (
        strings(&columns.kinds)?,
        strings(&columns.items)?,
        strings(&columns.categories)?,
    );
    let mut chunk = Chunk {
        users: Interner::new(),
        items: Interner::new(),
        kinds: Interner::new(),
        categories: Interner::new(),
        item_categories: HashMap::new(),
    };
    let mut slots = out.iter_mut();
    for ((((user, time), kind), item), (category, rating)) in columns
        .users
        .iter()
        .zip(columns.times.iter())
        .zip(kinds.iter())
        .zip(items.iter())
        .zip(categories.iter().zip(columns.ratings.iter()))
    {
        let Some((user, time, kind)) = before(user, time, kind, as_of) else {
            continue;
        };
        // Every user with an event counts, item or not.
        let user = chunk.users.get(user);
        let Some(item) = item else { continue };
        let item = chunk.items.get(item);
        if let Some(category) = category {
            let c = chunk.categories.get(category);
            *chunk.item_categories.entry((item, c)).or_insert(0) += 1;
        }
        if let Some(slot) = slots.next() {
            *slot = Event {
                user,
                item,
                kind: chunk.kinds.get(kind) as u16,
                time,
                rating: rating.map_or(f32::NAN, |r| r as f32),
            };
        }
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
    })
}

/// Reads the events before `as_of` from `parts` (canonical columns), each part in
/// tasks of [`CHUNK_ROWS`] rows on every core.
pub(crate) fn read(parts: &[LazyFrame], as_of: i64) -> Result<Log> {
    read_in_tasks(parts, as_of, CHUNK_ROWS)
}

/// [`read`] in tasks of `chunk_rows` rows.
fn read_in_tasks(parts: &[LazyFrame], as_of: i64, chunk_rows: usize) -> Result<Log> {
    let source = if non_null(parts, ITEM_ID)? > 0 {
        ItemSource::ItemId
    } else if non_null(parts, CATEGORY)? > 0 {
        ItemSource::Category
    } else {
        ItemSource::Nothing
    };
    let item_column = match source {
        ItemSource::Category => CATEGORY,
        _ => ITEM_ID,
    };
    let zero = Event {
        user: 0,
        item: 0,
        kind: 0,
        time: 0,
        rating: 0.0,
    };
    // One part in memory at a time. Each task's rows are counted first, so that
    // every task writes its events straight into its own stretch of one vector.
    let mut events: Vec<Event> = Vec::new();
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut lengths: Vec<usize> = Vec::new();
    for part in parts {
        let columns = columns(part, item_column)?;
        let height = columns.users.len();
        let tasks: Vec<Columns> = (0..height)
            .step_by(chunk_rows)
            .map(|offset| columns.slice(offset, chunk_rows.min(height - offset)))
            .collect();
        let kept: Vec<usize> = tasks.par_iter().map(|t| t.kept(as_of)).collect();
        let start = events.len();
        let total = kept.iter().sum();
        if parts.len() == 1 {
            events.reserve_exact(total);
        }
        // Touched on every core: fresh pages cost their zeroing to whichever
        // thread touches them first.
        events.par_extend(rayon::iter::repeat_n(zero, total));
        let mut stretches = stretches(&mut events[start..], &kept);
        let read: Vec<Result<Chunk>> = tasks
            .par_iter()
            .zip(stretches.par_iter_mut())
            .map(|(columns, stretch)| read_chunk(columns, as_of, stretch))
            .collect();
        for chunk in read {
            chunks.push(chunk?);
        }
        lengths.extend(kept);
    }

    // Every task's names into one set per kind of id, then sorted.
    let (mut users, mut items, mut kinds) = (Interner::new(), Interner::new(), Interner::new());
    let mut category_names = Interner::new();
    let global: Vec<[Vec<u32>; 4]> = chunks
        .iter()
        .map(|c| {
            [
                (&c.users, &mut users),
                (&c.items, &mut items),
                (&c.kinds, &mut kinds),
                (&c.categories, &mut category_names),
            ]
            .map(|(local, all)| local.names.iter().map(|n| all.get(n)).collect())
        })
        .collect();
    if kinds.names.len() > usize::from(u16::MAX) {
        return Err(Error::Events(format!("more than {} event types", u16::MAX)));
    }
    let (users, user_place) = users.sorted();
    let (items, item_place) = items.sorted();
    let (kinds, kind_place) = kinds.sorted();
    let (category_names, category_place) = category_names.sorted();
    let place = |map: &[u32], place: &[u32]| -> Vec<u32> {
        map.iter().map(|&g| place[g as usize]).collect()
    };
    stretches(&mut events, &lengths)
        .par_iter_mut()
        .zip(&global)
        .for_each(|(stretch, [u, i, k, _])| {
            let (u, i, k) = (
                place(u, &user_place),
                place(i, &item_place),
                place(k, &kind_place),
            );
            for e in stretch.iter_mut() {
                e.user = u[e.user as usize];
                e.item = i[e.item as usize];
                e.kind = k[usize::from(e.kind)] as u16;
            }
        });
    events.par_sort_unstable_by(|a, b| {
        (a.user, a.item, a.time, a.kind)
            .cmp(&(b.user, b.item, b.time, b.kind))
            .then(a.rating.total_cmp(&b.rating))
    });
    // Most frequent category per item; ties go to the first name.
    let mut counts: HashMap<(u32, u32), u32> = HashMap::new();
    for (chunk, [_, i, _, c]) in chunks.iter().zip(&global) {
        for (&(item, category), &n) in &chunk.item_categories {
            let key = (
                item_place[i[item as usize] as usize],
                category_place[c[category as usize] as usize],
            );
            *counts.entry(key).or_insert(0) += n;
        }
    }
    let mut best: Vec<Option<(u32, u32)>> = vec![None; items.len()];
    for (&(item, c), &n) in &counts {
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
    Ok(Log {
        users,
        items,
        categories,
        kinds,
        events,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ids_in_sorted_order_and_drops_later_events() {
        let df = df!(
            USER_ID => ["u2", "u1", "u1", "u3"],
            EVENT_TIME => [5i64, 1, 2, 9],
            EVENT_TYPE => ["view", "purchase", "view", "view"],
            ITEM_ID => [Some("b"), Some("a"), Some("b"), Some("c")],
            CATEGORY => [Some("x"), Some("y"), Some("x"), None],
            RATING => [None::<f64>, None, None, None],
        )
        .unwrap();
        let log = read(&[df.lazy()], 9).unwrap();
        assert_eq!(log.source, ItemSource::ItemId);
        assert_eq!(log.users, ["u1", "u2"]);
        assert_eq!(log.items, ["a", "b"]);
        assert_eq!(log.kinds, ["purchase", "view"]);
        assert_eq!(log.categories, [Some("y".into()), Some("x".into())]);
        let keys: Vec<(u32, u32, i64)> = log
            .events
            .iter()
            .map(|e| (e.user, e.item, e.time))
            .collect();
        assert_eq!(keys, [(0, 0, 1), (0, 1, 2), (1, 1, 5)]);
    }

    #[test]
    fn any_split_into_tasks_reads_the_same_log() {
        let df = df!(
            USER_ID => ["u3", "u1", "u1", "u2", "u2", "u1", "u3", "u2"],
            EVENT_TIME => [4i64, 1, 2, 3, 3, 9, 2, 1],
            EVENT_TYPE => ["view", "purchase", "view", "rating", "view", "view", "cart", "view"],
            ITEM_ID => [Some("c"), Some("a"), None, Some("b"), Some("b"), Some("a"), Some("a"), Some("d")],
            CATEGORY => [Some("x"), Some("y"), Some("x"), None, Some("z"), Some("y"), Some("x"), Some("z")],
            RATING => [None, None, None, Some(4.0), None, None, None, None],
        )
        .unwrap();
        let whole = read(&[df.clone().lazy()], 9).unwrap();
        assert_eq!(whole.users, ["u1", "u2", "u3"]);
        assert_eq!(whole.events.len(), 6);
        // Types, items and categories as dictionary codes (as the ingest holds them)
        // read the same.
        for (rows, df) in (1..=4).flat_map(|rows| [(rows, df.clone()), (rows, as_codes(&df))]) {
            let parts = [df.slice(0, 5).lazy(), df.slice(5, 3).lazy()];
            let log = read_in_tasks(&parts, 9, rows).unwrap();
            assert_eq!(log.users, whole.users);
            assert_eq!(log.items, whole.items);
            assert_eq!(log.kinds, whole.kinds);
            assert_eq!(log.categories, whole.categories);
            let bits = |l: &Log| -> Vec<(u32, u32, u16, i64, u32)> {
                l.events
                    .iter()
                    .map(|e| (e.user, e.item, e.kind, e.time, e.rating.to_bits()))
                    .collect()
            };
            assert_eq!(bits(&log), bits(&whole), "tasks of {rows} rows");
        }
    }

    #[test]
    fn categories_stand_in_for_missing_item_ids() {
        let df = df!(
            USER_ID => ["u1", "u2"],
            EVENT_TIME => [1i64, 2],
            EVENT_TYPE => ["purchase", "purchase"],
            ITEM_ID => [None::<&str>, None],
            CATEGORY => [Some("books"), Some("toys")],
            RATING => [None::<f64>, None],
        )
        .unwrap();
        for df in [df.clone(), as_codes(&df)] {
            let log = read(&[df.lazy()], 10).unwrap();
            assert_eq!(log.source, ItemSource::Category);
            assert_eq!(log.items, ["books", "toys"]);
            assert_eq!(log.categories, [Some("books".into()), Some("toys".into())]);
        }
    }

    /// `df` with its items and categories as dictionary codes.
    fn as_codes(df: &DataFrame) -> DataFrame {
        let mut coded = df.clone();
        for name in [EVENT_TYPE, ITEM_ID, CATEGORY] {
            let codes = Categories::new(name.into(), "tests".into(), CategoricalPhysical::U32);
            let column = df.column(name).unwrap();
            let column = column.cast(&DataType::from_categories(codes)).unwrap();
            coded.replace(name, column).unwrap();
        }
        coded
    }
}
