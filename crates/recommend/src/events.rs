//! The events a recommender reads: who touched which item, when, and how.
//!
//! Only the columns needed are read, part by part; ids become dense indices in
//! sorted order, so everything after this works on integers and every result is
//! the same however the events were split into parts.

use foldhash::{HashMap, HashMapExt};
use polars::prelude::*;
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

/// Reads the events before `as_of` from `parts` (canonical columns).
pub(crate) fn read(parts: &[LazyFrame], as_of: i64) -> Result<Log> {
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
    let (mut users, mut items, mut kinds) = (Interner::new(), Interner::new(), Interner::new());
    let mut category_names = Interner::new();
    let mut item_categories: HashMap<(u32, u32), u32> = HashMap::new();
    let mut events = Vec::new();
    for part in parts {
        // Events at or after `as_of` are skipped in the loop below rather than
        // filtered out here: when some are (an as-of date before the last event),
        // a filter copies every selected column only to read it once.
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
        let user_ids = strings(USER_ID)?;
        let types = strings(EVENT_TYPE)?;
        let item_ids = strings("__item")?;
        let category = strings(CATEGORY)?;
        let times = df.column(EVENT_TIME)?.i64()?.clone();
        // At most every row: grown by doubling, the vector would hold up to twice
        // that while it is copied (24 bytes an event).
        events.reserve(df.height());
        let ratings = df.column(RATING)?.f64()?.clone();
        for ((((user, time), kind), item), (category, rating)) in user_ids
            .iter()
            .zip(times.iter())
            .zip(types.iter())
            .zip(item_ids.iter())
            .zip(category.iter().zip(ratings.iter()))
        {
            let (Some(user), Some(time), Some(kind)) = (user, time, kind) else {
                continue;
            };
            if time >= as_of {
                continue;
            }
            let user = users.get(user);
            let Some(item) = item else { continue };
            let item = items.get(item);
            if let Some(category) = category {
                let c = category_names.get(category);
                *item_categories.entry((item, c)).or_insert(0) += 1;
            }
            events.push(Event {
                user,
                item,
                kind: kinds.get(kind) as u16,
                time,
                rating: rating.map_or(f32::NAN, |r| r as f32),
            });
        }
        if kinds.names.len() > usize::from(u16::MAX) {
            return Err(Error::Events(format!("more than {} event types", u16::MAX)));
        }
    }
    let (users, user_place) = users.sorted();
    let (items, item_place) = items.sorted();
    let (kinds, kind_place) = kinds.sorted();
    let (category_names, category_place) = category_names.sorted();
    for e in &mut events {
        e.user = user_place[e.user as usize];
        e.item = item_place[e.item as usize];
        e.kind = kind_place[usize::from(e.kind)] as u16;
    }
    events.sort_unstable_by(|a, b| {
        (a.user, a.item, a.time, a.kind)
            .cmp(&(b.user, b.item, b.time, b.kind))
            .then(a.rating.total_cmp(&b.rating))
    });
    // Most frequent category per item; ties go to the first name.
    let mut best: Vec<Option<(u32, u32)>> = vec![None; items.len()];
    for (&(item, c), &n) in &item_categories {
        let (item, c) = (
            item_place[item as usize] as usize,
            category_place[c as usize],
        );
        let slot = &mut best[item];
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
        let log = read(&[df.lazy()], 10).unwrap();
        assert_eq!(log.source, ItemSource::Category);
        assert_eq!(log.items, ["books", "toys"]);
    }
}
