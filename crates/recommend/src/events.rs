//! The events a recommender reads, folded into what each user did with each item.
//!
//! Only the columns needed are read, part by part. Each user's events on an item
//! become one [`Pair`]: the interest before the cutoff and before the as-of date,
//! and whether a test event on it fell in between. Ids become dense indices in
//! sorted order, so everything after this works on integers and every result is
//! the same however the events were split into parts.

use either::Either;
use foldhash::{HashMap, HashMapExt};
use polars::prelude::*;
use rayon::prelude::*;
use userlens_model::columns::{CATEGORY, EVENT_TIME, EVENT_TYPE, ITEM_ID, RATING, USER_ID};
use userlens_model::event_types;
use userlens_model::time::DAY_MICROS;

use crate::error::{Error, Result};
use crate::params::{CheckedRecommendParams, CheckedWeight};

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

/// The two times interests are taken at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The end of training: the as-of date minus the horizon.
    Cutoff,
    /// The as-of date.
    AsOf,
}

/// Which events make an item a user's test item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TestKinds {
    /// Those of the types `test_events` asks for.
    Asked,
    /// Those of every type whose weight can count (the log has none asked for).
    Weighted,
}

/// What one user did with one item before one [`End`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Touch {
    /// The events' decayed weights, summed.
    pub interest: f32,
    /// The type of the weightiest event (index into [`Log::kinds`]).
    pub strongest: u16,
    /// Whether there was any event.
    pub touched: bool,
    /// Whether one was a purchase.
    pub bought: bool,
}

/// Everything one user did with one item before the as-of date.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Pair {
    pub user: u32,
    pub item: u32,
    /// Before the cutoff, before the as-of date.
    at: [Touch; 2],
    /// Per [`TestKinds`]: a test event on the item from the cutoff on.
    tested: [bool; 2],
}

impl Pair {
    pub fn at(&self, end: End) -> &Touch {
        &self.at[end as usize]
    }

    pub fn tested(&self, kinds: TestKinds) -> bool {
        self.tested[kinds as usize]
    }
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

/// What [`read`] reads: the events before `as_of`, each user's on an item folded
/// with `params`' weights at `cutoff` and at `as_of`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window<'a> {
    pub params: &'a CheckedRecommendParams,
    pub cutoff: i64,
    pub as_of: i64,
}

/// What an event type means to the fold.
#[derive(Debug, Clone, Copy)]
struct Role {
    weight: Option<CheckedWeight>,
    purchase: bool,
    /// Per [`TestKinds`]: whether its events make test items.
    test: [bool; 2],
}

impl Role {
    fn of(kind: &str, params: &CheckedRecommendParams) -> Role {
        let weight = params
            .weights
            .iter()
            .find(|(name, _)| name == kind)
            .map(|(_, w)| *w);
        Role {
            weight,
            purchase: kind == event_types::PURCHASE,
            test: [
                params.test_events.iter().any(|t| t == kind),
                weight.is_some_and(CheckedWeight::can_count),
            ],
        }
    }

    fn weight(&self, rating: f32) -> f32 {
        match self.weight {
            Some(CheckedWeight::Fixed(w)) => w,
            Some(CheckedWeight::Rating) if rating.is_finite() => rating.max(0.0),
            _ => 0.0,
        }
    }
}

/// One of a user's events on an item, as a task reads it (ids its own).
#[derive(Debug, Clone, Copy)]
struct Row {
    item: u32,
    kind: u16,
    time: i64,
    /// NaN when the event has none.
    rating: f32,
}

/// Folds one user's `rows` into one [`Pair`] per item, appended to `out`; each
/// end's latest time goes into `latest`. `kinds` names the rows' types.
fn fold(
    user: u32,
    rows: &mut [Row],
    kinds: &[String],
    roles: &[Role],
    window: &Window<'_>,
    out: &mut Vec<Pair>,
    latest: &mut [Option<i64>; 2],
) {
    // Each item's events by time, type name and rating: a fixed order of the sums.
    rows.sort_unstable_by(|a, b| {
        (a.item, a.time)
            .cmp(&(b.item, b.time))
            .then_with(|| kinds[usize::from(a.kind)].cmp(&kinds[usize::from(b.kind)]))
            .then(a.rating.total_cmp(&b.rating))
    });
    let half_life = window.params.half_life_days.map(|d| d * DAY_MICROS as f64);
    for same in rows.chunk_by(|a, b| a.item == b.item) {
        let mut pair = Pair {
            user,
            item: same[0].item,
            at: [Touch::default(); 2],
            tested: [false; 2],
        };
        for (at, end) in [window.cutoff, window.as_of].into_iter().enumerate() {
            let (mut sum, mut bought, mut best) = (0f64, false, (f32::NEG_INFINITY, same[0].kind));
            let mut touched = false;
            for row in same.iter().take_while(|r| r.time < end) {
                let role = &roles[usize::from(row.kind)];
                let w = role.weight(row.rating);
                let decay = half_life.map_or(1.0, |h| 0.5f64.powf((end - row.time) as f64 / h));
                sum += f64::from(w) * decay;
                bought |= role.purchase;
                if w > best.0 {
                    best = (w, row.kind);
                }
                latest[at] = latest[at].max(Some(row.time));
                touched = true;
            }
            pair.at[at] = Touch {
                interest: sum as f32,
                strongest: best.1,
                touched,
                bought,
            };
        }
        for row in same.iter().filter(|r| r.time >= window.cutoff) {
            let test = roles[usize::from(row.kind)].test;
            pair.tested = [pair.tested[0] | test[0], pair.tested[1] | test[1]];
        }
        out.push(pair);
    }
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

    /// The id of a text: a string's by hashing it, a code's through `codes`.
    fn id(&mut self, text: Text<'_>, codes: &mut CodeIds<'_>) -> Result<u32> {
        let code = match text {
            Text::Name(name) => return Ok(self.get(name)),
            Text::Code(code) => code as usize,
        };
        if let Some(&id) = codes.ids.get(code)
            && id != UNSEEN
        {
            return Ok(id);
        }
        let name = codes
            .codes
            .and_then(|c| c.get_mapping().cat_to_str(code as u32))
            .ok_or_else(|| Error::Events(format!("dictionary code {code} has no value")))?;
        let id = self.get(name);
        if codes.ids.len() <= code {
            codes.ids.resize(code + 1, UNSEEN);
        }
        codes.ids[code] = id;
        Ok(id)
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
    kinds: Interner,
    categories: Interner,
    /// Per kind: its [`Role`].
    roles: Vec<Role>,
    item_categories: HashMap<(u32, u32), u32>,
    pairs: Vec<Pair>,
    /// Per [`End`]: the latest event time before it.
    latest: [Option<i64>; 2],
    /// Whether each user's rows came together (else the task's pairs are partial).
    grouped: bool,
}

impl Chunk {
    /// The task's id of an event type, its role noted when it is new.
    fn kind(
        &mut self,
        text: Text<'_>,
        codes: &mut CodeIds<'_>,
        params: &CheckedRecommendParams,
    ) -> Result<u16> {
        let kind = self.kinds.id(text, codes)?;
        if kind as usize == self.roles.len() {
            self.roles
                .push(Role::of(&self.kinds.names[kind as usize], params));
        }
        u16::try_from(kind).map_err(|_| too_many_kinds())
    }
}

fn too_many_kinds() -> Error {
    Error::Events(format!("more than {} event types", u16::MAX))
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

/// A task's text column: dictionary codes, as the ingest keeps them, or strings.
enum Texts {
    Codes(Categorical32Chunked),
    Strings(StringChunked),
}

/// One value of [`Texts`].
#[derive(Debug, Clone, Copy)]
enum Text<'a> {
    Code(u32),
    Name(&'a str),
}

impl Texts {
    fn of(column: &Column) -> Result<Texts> {
        if let Ok(codes) = column.cat32() {
            return Ok(Texts::Codes(codes.clone()));
        }
        let text = column.cast(&DataType::String)?;
        Ok(Texts::Strings(text.str()?.clone()))
    }

    fn values(&self) -> impl Iterator<Item = Option<Text<'_>>> {
        match self {
            Texts::Codes(codes) => Either::Left(codes.physical().iter().map(|c| c.map(Text::Code))),
            Texts::Strings(names) => Either::Right(names.iter().map(|n| n.map(Text::Name))),
        }
    }

    /// A table from this column's codes to a task's ids, empty to begin with.
    fn code_ids(&self) -> CodeIds<'_> {
        CodeIds {
            codes: match self {
                Texts::Codes(codes) => Some(codes),
                Texts::Strings(_) => None,
            },
            ids: Vec::new(),
        }
    }
}

/// Each dictionary code's id in a task's [`Interner`], filled in as codes are met:
/// a code's name is looked up and hashed once per task, not once per row.
struct CodeIds<'a> {
    codes: Option<&'a Categorical32Chunked>,
    ids: Vec<u32>,
}

/// No id yet in [`CodeIds::ids`].
const UNSEEN: u32 = u32::MAX;

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
        categories: Interner::new(),
        roles: Vec::new(),
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
    for ((((user, time), kind), item), (category, rating)) in columns
        .users
        .iter()
        .zip(columns.times.iter())
        .zip(kinds.values())
        .zip(items.values())
        .zip(categories.values().zip(columns.ratings.iter()))
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
        let item = chunk.items.id(item, &mut item_ids)?;
        if let Some(category) = category {
            let c = chunk.categories.id(category, &mut category_ids)?;
            *chunk.item_categories.entry((item, c)).or_insert(0) += 1;
        }
        rows.push(Row {
            item,
            kind: chunk.kind(kind, &mut kind_ids, window.params)?,
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

/// Reads the events before the window's as-of date from `parts` (canonical
/// columns), each part in tasks of [`CHUNK_ROWS`] rows on every core.
pub(crate) fn read(parts: &[LazyFrame], window: &Window<'_>) -> Result<Log> {
    read_in_tasks(parts, window, CHUNK_ROWS)
}

/// [`read`] in tasks of about `chunk_rows` rows.
fn read_in_tasks(parts: &[LazyFrame], window: &Window<'_>, chunk_rows: usize) -> Result<Log> {
    let source = if non_null(parts, ITEM_ID)? > 0 {
        ItemSource::ItemId
    } else if non_null(parts, CATEGORY)? > 0 {
        ItemSource::Category
    } else {
        ItemSource::Nothing
    };
    if let Some(log) = read_grouped(parts, source, window, chunk_rows)? {
        return Ok(log);
    }
    // Some user's rows are apart (the ingest leaves every user's together, in one
    // part): all the parts as one, sorted by user.
    let whole =
        concat(parts, UnionArgs::default())?.sort([USER_ID], SortMultipleOptions::default());
    read_grouped(&[whole], source, window, chunk_rows)?
        .ok_or_else(|| Error::Events("the events sorted by user are not grouped by user".into()))
}

/// [`read`], when every user's rows are together in one part; `None` otherwise.
fn read_grouped(
    parts: &[LazyFrame],
    source: ItemSource,
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
    let mut read_pairs: Vec<Vec<Pair>> = Vec::new();
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
            for p in &mut chunk.pairs {
                p.user = u[p.user as usize];
                p.item = i[p.item as usize];
                for touch in &mut p.at {
                    touch.strongest = k[usize::from(touch.strongest)] as u16;
                }
            }
            for (&(item, category), &n) in &chunk.item_categories {
                *counts
                    .entry((i[item as usize], c[category as usize]))
                    .or_insert(0) += n;
            }
            latest = [0, 1].map(|e| latest[e].max(chunk.latest[e]));
            read_pairs.push(chunk.pairs);
        }
    }
    let (users, user_place) = users.sorted();
    let (items, item_place) = items.sorted();
    let (kinds, kind_place) = kinds.sorted();
    let (category_names, category_place) = category_names.sorted();
    let mut pairs = Vec::with_capacity(read_pairs.iter().map(Vec::len).sum());
    for task in read_pairs {
        pairs.extend(task.into_iter().map(|mut p| {
            p.user = user_place[p.user as usize];
            p.item = item_place[p.item as usize];
            for touch in &mut p.at {
                touch.strongest = kind_place[usize::from(touch.strongest)] as u16;
            }
            p
        }));
    }
    pairs.par_sort_unstable_by_key(|p| (p.user, p.item));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::RecommendParams;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    const DAY: i64 = DAY_MICROS;

    /// The default parameters, their horizon 28 days before `as_of`.
    fn window(params: &CheckedRecommendParams, as_of: i64) -> Window<'_> {
        Window {
            params,
            cutoff: as_of - 28 * DAY,
            as_of,
        }
    }

    /// A pair as names and bits: user, item, per end (interest bits, strongest
    /// type, touched, bought), per test kinds whether tested.
    type Named = (String, String, [(u32, String, bool, bool); 2], [bool; 2]);

    fn named(log: &Log) -> Vec<Named> {
        log.pairs
            .iter()
            .map(|p| {
                let at = p.at.map(|t| {
                    let kind = log.kinds[usize::from(t.strongest)].clone();
                    (t.interest.to_bits(), kind, t.touched, t.bought)
                });
                let (user, item) = (&log.users[p.user as usize], &log.items[p.item as usize]);
                (user.clone(), item.clone(), at, p.tested)
            })
            .collect()
    }

    /// [`named`] the plain way: every event in one list sorted by user, item, time,
    /// type and rating, and each pair's events summed in that order.
    fn named_by_sorting_everything(df: &DataFrame, window: &Window<'_>) -> Vec<Named> {
        let text = |name: &str| df.column(name).unwrap().str().unwrap().clone();
        let (users, kinds, items) = (text(USER_ID), text(EVENT_TYPE), text(ITEM_ID));
        let times = df.column(EVENT_TIME).unwrap().i64().unwrap().clone();
        let ratings = df.column(RATING).unwrap().f64().unwrap().clone();
        let mut events: Vec<(&str, &str, i64, &str, f32)> = (0..df.height())
            .filter_map(|r| {
                let time = times.get(r).filter(|&t| t < window.as_of)?;
                let rating = ratings.get(r).map_or(f32::NAN, |x| x as f32);
                Some((users.get(r)?, items.get(r)?, time, kinds.get(r)?, rating))
            })
            .collect();
        events.sort_by(|a, b| {
            (a.0, a.1, a.2, a.3)
                .cmp(&(b.0, b.1, b.2, b.3))
                .then(a.4.total_cmp(&b.4))
        });
        let params = window.params;
        let weight = |kind: &str, rating: f32| -> f32 {
            match params
                .weights
                .iter()
                .find(|(n, _)| n == kind)
                .map(|(_, w)| *w)
            {
                Some(CheckedWeight::Fixed(w)) => w,
                Some(CheckedWeight::Rating) if rating.is_finite() => rating.max(0.0),
                _ => 0.0,
            }
        };
        let half_life = params.half_life_days.unwrap() * DAY as f64;
        let mut out = Vec::new();
        for same in events.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let at = [window.cutoff, window.as_of].map(|end| {
                let (mut sum, mut best) = (0f64, (f32::NEG_INFINITY, same[0].3));
                let before: Vec<_> = same.iter().filter(|e| e.2 < end).collect();
                for e in &before {
                    let w = weight(e.3, e.4);
                    sum += f64::from(w) * 0.5f64.powf((end - e.2) as f64 / half_life);
                    if w > best.0 {
                        best = (w, e.3);
                    }
                }
                let bought = before.iter().any(|e| e.3 == event_types::PURCHASE);
                (
                    (sum as f32).to_bits(),
                    best.1.to_string(),
                    !before.is_empty(),
                    bought,
                )
            });
            let horizon: Vec<_> = same.iter().filter(|e| e.2 >= window.cutoff).collect();
            let tested = [
                horizon
                    .iter()
                    .any(|e| params.test_events.iter().any(|t| t == e.3)),
                horizon.iter().any(|e| weight(e.3, 1.0) > 0.0),
            ];
            out.push((same[0].0.to_string(), same[0].1.to_string(), at, tested));
        }
        out
    }

    /// User, time, type, item, rating.
    type RandomRow = (String, i64, &'static str, Option<String>, Option<f64>);

    /// `n` random events of 6 users on 5 items, ties in time and type included.
    fn random_events(n: usize, seed: u64) -> DataFrame {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let kinds = ["view", "add_to_cart", "purchase", "rating", "search"];
        let mut rows: Vec<RandomRow> = (0..n)
            .map(|_| {
                let kind = kinds[rng.gen_range(0..kinds.len())];
                let rating = (kind == "rating" && rng.gen_bool(0.8))
                    .then(|| f64::from(rng.gen_range(0..11u8)) / 2.0);
                let item = rng
                    .gen_bool(0.9)
                    .then(|| format!("i{}", rng.gen_range(0..5)));
                (
                    format!("u{}", rng.gen_range(0..6)),
                    rng.gen_range(0..25) * 4 * DAY,
                    kind,
                    item,
                    rating,
                )
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        df!(
            USER_ID => rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
            EVENT_TIME => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            EVENT_TYPE => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            ITEM_ID => rows.iter().map(|r| r.3.as_deref()).collect::<Vec<_>>(),
            CATEGORY => rows.iter().map(|r| r.3.as_ref().map(|_| "c")).collect::<Vec<_>>(),
            RATING => rows.iter().map(|r| r.4).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn each_pair_sums_its_events_as_one_sort_of_every_event_would() {
        let params = RecommendParams {
            half_life_days: Some(9.5),
            ..RecommendParams::default()
        }
        .check()
        .unwrap();
        for seed in 0..24 {
            let df = random_events(20 + 10 * seed as usize, seed);
            let window = window(&params, 80 * DAY);
            let expected = named_by_sorting_everything(&df, &window);
            // Sorted by user (as the ingest leaves them) in tasks of any size, and
            // in any order of rows.
            for rows in [1, 3, 7, 1 << 18] {
                let log = read_grouped(&[df.clone().lazy()], ItemSource::ItemId, &window, rows)
                    .unwrap()
                    .expect("rows grouped by user");
                assert_eq!(named(&log), expected, "seed {seed}, tasks of {rows} rows");
            }
            let mut order: Vec<IdxSize> = (0..df.height() as IdxSize).collect();
            order.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(seed));
            let shuffled = df.take(&IdxCa::from_vec("order".into(), order)).unwrap();
            assert_eq!(named(&read(&[shuffled.lazy()], &window).unwrap()), expected);
        }
    }

    #[test]
    fn a_users_rows_apart_are_noticed() {
        let params = RecommendParams::default().check().unwrap();
        let df = df!(
            USER_ID => ["u1", "u2", "u1"],
            EVENT_TIME => [1i64, 2, 3],
            EVENT_TYPE => ["view", "view", "view"],
            ITEM_ID => [Some("a"), Some("a"), Some("b")],
            CATEGORY => [None::<&str>, None, None],
            RATING => [None::<f64>, None, None],
        )
        .unwrap();
        let window = window(&params, 9);
        for rows in [1, 2, 3] {
            // Within a task, across tasks, across parts.
            let apart = read_grouped(&[df.clone().lazy()], ItemSource::ItemId, &window, rows);
            assert!(apart.unwrap().is_none(), "tasks of {rows} rows");
        }
        let parts = [df.slice(0, 2).lazy(), df.slice(2, 1).lazy()];
        assert!(
            read_grouped(&parts, ItemSource::ItemId, &window, 8)
                .unwrap()
                .is_none()
        );
        let log = read(&parts, &window).unwrap();
        assert_eq!(log.users, ["u1", "u2"]);
        let keys: Vec<(u32, u32)> = log.pairs.iter().map(|p| (p.user, p.item)).collect();
        assert_eq!(keys, [(0, 0), (0, 1), (1, 0)]);
    }

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
        let params = RecommendParams::default().check().unwrap();
        let window = Window {
            params: &params,
            cutoff: 2,
            as_of: 9,
        };
        let log = read(&[df.lazy()], &window).unwrap();
        assert_eq!(log.source, ItemSource::ItemId);
        assert_eq!(log.users, ["u1", "u2"]);
        assert_eq!(log.items, ["a", "b"]);
        assert_eq!(log.kinds, ["purchase", "view"]);
        assert_eq!(log.categories, [Some("y".into()), Some("x".into())]);
        let keys: Vec<(u32, u32, bool, f32)> = log
            .pairs
            .iter()
            .map(|p| {
                (
                    p.user,
                    p.item,
                    p.at(End::Cutoff).touched,
                    p.at(End::AsOf).interest,
                )
            })
            .collect();
        assert_eq!(
            keys,
            [(0, 0, true, 5.0), (0, 1, false, 1.0), (1, 1, false, 1.0)]
        );
        assert_eq!(
            (log.latest(End::Cutoff), log.latest(End::AsOf)),
            (Some(1), Some(5))
        );
        // u1's purchase of a is before the cutoff; no pair has a test event.
        assert!(log.pairs.iter().all(|p| !p.tested(TestKinds::Asked)));
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
        let params = RecommendParams::default().check().unwrap();
        let window = Window {
            params: &params,
            cutoff: 3,
            as_of: 9,
        };
        let whole = read(&[df.clone().lazy()], &window).unwrap();
        assert_eq!(whole.users, ["u1", "u2", "u3"]);
        assert_eq!(whole.pairs.len(), 5);
        let sorted = df.sort([USER_ID], SortMultipleOptions::default()).unwrap();
        // Types, items and categories as dictionary codes (as the ingest holds them)
        // read the same.
        let frames = [df.clone(), as_codes(&df), sorted.clone(), as_codes(&sorted)];
        for (rows, df) in (1..=4).flat_map(|rows| frames.clone().map(|df| (rows, df))) {
            for parts in [
                vec![df.clone().lazy()],
                vec![df.slice(0, 5).lazy(), df.slice(5, 3).lazy()],
            ] {
                let log = read_in_tasks(&parts, &window, rows).unwrap();
                assert_eq!(log.users, whole.users);
                assert_eq!(log.items, whole.items);
                assert_eq!(log.kinds, whole.kinds);
                assert_eq!(log.categories, whole.categories);
                assert_eq!(log.latest, whole.latest);
                assert_eq!(log.pairs, whole.pairs, "tasks of {rows} rows");
            }
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
        let params = RecommendParams::default().check().unwrap();
        for df in [df.clone(), as_codes(&df)] {
            let log = read(&[df.lazy()], &window(&params, 10)).unwrap();
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
