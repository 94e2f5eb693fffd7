//! The per-user aggregates of events sorted by user and time, in one pass over the
//! rows.
//!
//! Sorted as ingest leaves them, each user's events before the as-of time are a run
//! of rows. Every aggregate the feature families read then comes from one walk of
//! that run: counts, first and last times, sessions as runs of rows, days as runs
//! of rows, distinct values in a small hash table. The group-by of `query.rs`
//! computes the same table for events in any order, and is the reference the tests
//! hold this pass to; this pass does not copy the events before the as-of time
//! (most of them, even at the prediction cutoff) and reads each row once, where the
//! group-by reads the columns once per aggregation.

use std::borrow::Cow;

use polars::prelude::*;
use userlens_model::columns::*;
use userlens_model::event_types;
use userlens_model::stats::KahanSum;
use userlens_model::time::HOUR_MICROS;
use userlens_model::{FeatureFamily, money};

use crate::{CheckedFeatureParams, Result, TEXT_FEATURES, polars_err, share_columns};

mod counts;
mod pass;
pub(crate) use counts::count_before;
use pass::one_pass;

/// Times beyond about 190,000 years from 1970 are left to the group-by: near the
/// end of chrono's range polars' hour and weekday are null there.
const PASS_LIMIT_MICROS: i64 = 6_000_000_000_000_000_000;

/// The event columns one pass reads; the last three are `None` when their family
/// is off. The event types, categories and queries are read as dictionary codes.
struct Columns<'a> {
    ids: &'a StringChunked,
    times: &'a Int64Chunked,
    types: &'a Categorical32Chunked,
    sessions: Text<'a>,
    amounts: &'a Float64Chunked,
    /// Order ids, when the source maps them.
    orders: Option<Text<'a>>,
    categories: Option<&'a Categorical32Chunked>,
    queries: Option<&'a Categorical32Chunked>,
    ratings: Option<&'a Float64Chunked>,
}

/// What a pass needs to know of an event's type.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Purchase,
    View,
    Cart,
    Search,
    Other,
}

/// The kind of each code of the event types' dictionary.
fn kinds(types: &Categorical32Chunked) -> Vec<Kind> {
    let dictionary = types.get_mapping();
    (0..dictionary.num_cats_upper_bound())
        .map(|code| match dictionary.cat_to_str(code as u32) {
            Some(event_types::PURCHASE) => Kind::Purchase,
            Some(event_types::VIEW) => Kind::View,
            Some(event_types::ADD_TO_CART) => Kind::Cart,
            Some(event_types::SEARCH) => Kind::Search,
            _ => Kind::Other,
        })
        .collect()
}

/// One user's running totals over their events before the as-of time.
#[derive(Default)]
struct User<'a> {
    events: u64,
    first: i64,
    last: i64,
    purchases: u64,
    /// The orders counted in `purchases`.
    orders: foldhash::HashSet<&'a str>,
    refunds: u64,
    /// The orders counted in `refunds`.
    refund_orders: foldhash::HashSet<&'a str>,
    /// Whole cents of the purchases' and refunds' amounts (`money::expr::sum` in
    /// `userlens_model`).
    cents: i64,
    runs: u64,
    /// The distinct sessions (a null id counts as one, as in `n_unique`).
    sessions: foldhash::HashSet<Option<&'a str>>,
    session_micros: i64,
    days: u64,
    views: u64,
    carts: u64,
    searches: u64,
    /// Events by category code.
    categories: foldhash::HashMap<u32, u64>,
    categorised: u64,
    night: u64,
    morning: u64,
    evening: u64,
    weekend: u64,
    /// Searches by query code.
    queries: foldhash::HashMap<u32, u64>,
    ratings: u64,
    rating_sum: KahanSum,
    first_buy: Option<i64>,
    last_buy: Option<i64>,
}

impl User<'_> {
    /// Starts over for the next user, keeping the hash tables' memory.
    fn reset(&mut self) {
        let (sessions, categories, queries, orders, refund_orders) = (
            std::mem::take(&mut self.sessions),
            std::mem::take(&mut self.categories),
            std::mem::take(&mut self.queries),
            std::mem::take(&mut self.orders),
            std::mem::take(&mut self.refund_orders),
        );
        *self = User {
            sessions,
            categories,
            queries,
            orders,
            refund_orders,
            ..User::default()
        };
        self.orders.clear();
        self.refund_orders.clear();
        self.sessions.clear();
        self.categories.clear();
        self.queries.clear();
    }
}

/// The aggregate columns of a run of users, named as the group-by names them.
#[derive(Default)]
struct Table<'a> {
    ids: Vec<&'a str>,
    events: Vec<f64>,
    first: Vec<i64>,
    last: Vec<i64>,
    purchases: Vec<f64>,
    refunds: Vec<f64>,
    monetary: Vec<f64>,
    sessions: Vec<f64>,
    active_days: Vec<f64>,
    session_micros: Vec<i64>,
    runs: Vec<f64>,
    views: Vec<f64>,
    carts: Vec<f64>,
    category_count: Vec<f64>,
    categorised: Vec<f64>,
    /// One column per top category: the user's events in it.
    shares: Vec<Vec<f64>>,
    top_category: Vec<Option<&'a str>>,
    night: Vec<f64>,
    morning: Vec<f64>,
    evening: Vec<f64>,
    weekend: Vec<f64>,
    searches: Vec<f64>,
    distinct_queries: Vec<f64>,
    top_query: Vec<Option<&'a str>>,
    ratings: Vec<f64>,
    mean_rating: Vec<Option<f64>>,
    first_buy: Vec<Option<i64>>,
    last_buy: Vec<Option<i64>>,
}

/// The most common value of `counts` (by code into `names`), ties to the smallest
/// (as `top_value` in `query.rs`).
fn most_common<'a>(
    counts: &foldhash::HashMap<u32, u64>,
    names: Option<&'a CategoricalMapping>,
) -> Option<&'a str> {
    let names = names?;
    counts
        .iter()
        .map(|(&code, &n)| (n, names.cat_to_str(code).unwrap_or_default()))
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, value)| value)
}

/// The dictionaries of the categories and queries, to name their codes, and the
/// codes of a time's top categories (`None`: a category no event has).
#[derive(Clone, Copy)]
struct Names<'a, 'p> {
    categories: Option<&'a CategoricalMapping>,
    queries: Option<&'a CategoricalMapping>,
    top: &'p [Option<u32>],
}

impl<'a> Table<'a> {
    fn new(top: &[String]) -> Table<'a> {
        Table {
            shares: vec![Vec::new(); top.len()],
            ..Table::default()
        }
    }

    /// The row of user `id` as their events so far make it, unless a session of
    /// theirs is split into runs of rows and `activity` (the sessions' features) is
    /// on, which is `None`.
    fn push_user(
        &mut self,
        id: &'a str,
        user: &User<'a>,
        names: Names<'a, '_>,
        text: bool,
        activity: bool,
    ) -> Option<()> {
        if activity && user.runs as usize != user.sessions.len() {
            return None;
        }
        self.push(id, user, names, text);
        Some(())
    }

    fn push(&mut self, id: &'a str, user: &User<'a>, names: Names<'a, '_>, text: bool) {
        // Counts are far below 2^53: exact as f64.
        let f = |n: u64| n as f64;
        self.ids.push(id);
        self.events.push(f(user.events));
        self.first.push(user.first);
        self.last.push(user.last);
        self.purchases.push(f(user.purchases));
        self.refunds.push(f(user.refunds));
        self.monetary.push(money::from_cents(user.cents));
        self.sessions.push(user.sessions.len() as f64);
        self.active_days.push(f(user.days));
        self.session_micros.push(user.session_micros);
        self.runs.push(f(user.runs));
        self.views.push(f(user.views));
        self.carts.push(f(user.carts));
        self.category_count.push(user.categories.len() as f64);
        self.categorised.push(f(user.categorised));
        for (share, category) in self.shares.iter_mut().zip(names.top) {
            let events = category.and_then(|code| user.categories.get(&code).copied());
            share.push(f(events.unwrap_or(0)));
        }
        if text {
            let (categories, queries) = (&user.categories, &user.queries);
            self.top_category
                .push(most_common(categories, names.categories));
            self.top_query.push(most_common(queries, names.queries));
        }
        let events = f(user.events);
        self.night.push(f(user.night) / events);
        self.morning.push(f(user.morning) / events);
        self.evening.push(f(user.evening) / events);
        self.weekend.push(f(user.weekend) / events);
        self.searches.push(f(user.searches));
        self.distinct_queries.push(user.queries.len() as f64);
        self.ratings.push(f(user.ratings));
        self.mean_rating
            .push((user.ratings > 0).then(|| user.rating_sum.sum() / f(user.ratings)));
        self.first_buy.push(user.first_buy);
        self.last_buy.push(user.last_buy);
    }

    /// Appends the rows of `others` in order, each column grown once (growing by
    /// doubling copies every column into fresh memory).
    fn append(&mut self, others: Vec<Table<'a>>) {
        let rows: usize = others.iter().map(|other| other.ids.len()).sum();
        macro_rules! extend {
            ($($field:ident),*) => {
                $(self.$field.reserve_exact(rows);)*
                for share in &mut self.shares {
                    share.reserve_exact(rows);
                }
                for other in others {
                    $(self.$field.extend(other.$field);)*
                    for (share, more) in self.shares.iter_mut().zip(other.shares) {
                        share.extend(more);
                    }
                }
            };
        }
        extend!(
            ids,
            events,
            first,
            last,
            purchases,
            refunds,
            monetary,
            sessions,
            active_days,
            session_micros,
            runs,
            views,
            carts,
            category_count,
            categorised,
            top_category,
            night,
            morning,
            evening,
            weekend,
            searches,
            distinct_queries,
            top_query,
            ratings,
            mean_rating,
            first_buy,
            last_buy
        );
    }

    /// The aggregates the families of `params` read, as a table one row per user.
    fn into_frame(self, top: &[String], params: &CheckedFeatureParams) -> Result<DataFrame> {
        let f64s = |name: &str, values: Vec<f64>| Column::new(name.into(), values);
        let mut columns = vec![
            Column::new(USER_ID.into(), self.ids),
            f64s("events", self.events),
            Column::new("__first".into(), self.first),
            Column::new("__last".into(), self.last),
            f64s("__purchases", self.purchases),
        ];
        if params.has(FeatureFamily::Rfm) {
            columns.push(f64s("__monetary", self.monetary));
            columns.push(f64s("__refunds", self.refunds));
        }
        if params.has(FeatureFamily::Activity) {
            columns.extend([
                f64s("__sessions", self.sessions),
                f64s("active_days", self.active_days),
                Column::new("__session_micros".into(), self.session_micros),
                f64s("__runs", self.runs),
            ]);
        }
        if params.has(FeatureFamily::Funnel) {
            columns.extend([f64s("views", self.views), f64s("carts", self.carts)]);
        }
        if params.has(FeatureFamily::Categories) {
            columns.extend([
                f64s("category_count", self.category_count),
                f64s("__categorised", self.categorised),
            ]);
            for (name, share) in share_columns(top).iter().zip(self.shares) {
                columns.push(f64s(name, share));
            }
            if params.text {
                columns.push(Column::new(TEXT_FEATURES[0].into(), self.top_category));
            }
        }
        if params.has(FeatureFamily::TimeOfDay) {
            columns.extend([
                f64s("night_share", self.night),
                f64s("morning_share", self.morning),
                f64s("evening_share", self.evening),
                f64s("weekend_share", self.weekend),
            ]);
        }
        if params.has(FeatureFamily::Search) {
            columns.extend([
                f64s("searches", self.searches),
                f64s("distinct_queries", self.distinct_queries),
            ]);
            if params.text {
                columns.push(Column::new(TEXT_FEATURES[1].into(), self.top_query));
            }
        }
        if params.has(FeatureFamily::Satisfaction) {
            columns.extend([
                f64s("ratings", self.ratings),
                Column::new("mean_rating".into(), self.mean_rating),
            ]);
        }
        if params.has(FeatureFamily::Interpurchase) {
            columns.extend([
                Column::new("__first_buy".into(), self.first_buy),
                Column::new("__last_buy".into(), self.last_buy),
            ]);
        }
        let height = columns[0].len();
        DataFrame::new(height, columns).map_err(polars_err("compute per-user features"))
    }
}

/// Rows in one piece of work of [`aggregate`]: small enough that every thread gets
/// an even share, large enough that a piece's set-up does not count (in tests, a few
/// rows, so that small tables are cut into pieces too).
#[cfg(not(test))]
const PIECE_ROWS: usize = 1 << 18;
#[cfg(test)]
const PIECE_ROWS: usize = 5;

/// A time to make the aggregates at: of the events before `as_of`, with the `top`
/// categories' counts and the families and text features of `params`.
pub(crate) struct Time<'p> {
    pub(crate) as_of: i64,
    pub(crate) top: &'p [String],
    pub(crate) params: &'p CheckedFeatureParams,
}

/// The aggregates of events sorted by user and then time at each of `times`, one
/// row per user with events before it, in user order: the columns the group-by in
/// [`crate::query::build_part`] makes. One walk of the rows makes them all: a
/// user's row at an earlier time is their totals when their events first reach it.
/// `None` when the pass cannot stand in for the group-by: a column is missing or
/// of another type, a user id is null, a time is beyond [`PASS_LIMIT_MICROS`], or
/// (with the activity features on) a user's session is split into more than one
/// run of rows (sessions interleaved in the source), which only a group-by on
/// (user, session) measures.
pub(crate) fn aggregate(events: &DataFrame, times: &[Time]) -> Result<Option<Vec<DataFrame>>> {
    let string = |name: &str| events.column(name).ok().and_then(|c| c.str().ok());
    let text = |name: &str| events.column(name).ok().and_then(Text::of);
    let number = |name: &str| events.column(name).ok().and_then(|c| c.f64().ok());
    let event_times = match events.column(EVENT_TIME).map(Column::dtype) {
        Ok(DataType::Datetime(TimeUnit::Microseconds, None)) => events
            .column(EVENT_TIME)
            .and_then(|c| c.cast(&DataType::Int64))
            .map_err(polars_err("read the event times"))?,
        _ => return Ok(None),
    };
    let wanted = |family| times.iter().any(|time| time.params.has(family));
    // Event types, categories and queries are read as dictionary codes.
    let coded = |name: &str| events.column(name).ok().and_then(as_codes);
    let (types, categories, queries) = (coded(EVENT_TYPE), coded(CATEGORY), coded(QUERY));
    fn codes<'c>(column: &'c Option<Cow<'_, Column>>) -> Option<&'c Categorical32Chunked> {
        column.as_deref().and_then(|c| c.cat32().ok())
    }
    let (Some(ids), Ok(event_times), Some(types), Some(sessions), Some(amounts)) = (
        string(USER_ID),
        event_times.i64(),
        codes(&types),
        text(SESSION_ID),
        number(AMOUNT),
    ) else {
        return Ok(None);
    };
    let orders = match events.column(ORDER_ID) {
        Ok(column) => match Text::of(column) {
            Some(orders) => Some(orders),
            None => return Ok(None),
        },
        Err(_) => None,
    };
    let categories = codes(&categories);
    let queries = codes(&queries);
    let ratings = number(RATING);
    if (wanted(FeatureFamily::Categories) && categories.is_none())
        || (wanted(FeatureFamily::Search) && queries.is_none())
        || (wanted(FeatureFamily::Satisfaction) && ratings.is_none())
    {
        return Ok(None);
    }
    let columns = Columns {
        ids,
        times: event_times,
        types,
        sessions,
        amounts,
        orders,
        categories: categories.filter(|_| wanted(FeatureFamily::Categories)),
        queries: queries.filter(|_| wanted(FeatureFamily::Search)),
        ratings: ratings.filter(|_| wanted(FeatureFamily::Satisfaction)),
    };
    let activity = wanted(FeatureFamily::Activity);
    let pieces = pieces(ids, PIECE_ROWS);
    let tables: Vec<Option<Vec<Table>>> = {
        use rayon::prelude::*;
        pieces
            .into_par_iter()
            .map(|range| one_pass(&columns, range, times, activity))
            .collect()
    };
    let Some(tables) = tables.into_iter().collect::<Option<Vec<_>>>() else {
        return Ok(None);
    };
    // Each time's tables of the pieces, in piece order.
    let mut at_time: Vec<Vec<Table>> = times.iter().map(|_| Vec::new()).collect();
    for piece in tables {
        for (at_time, table) in at_time.iter_mut().zip(piece) {
            at_time.push(table);
        }
    }
    let mut all: Vec<Table> = times.iter().map(|time| Table::new(time.top)).collect();
    for (all, pieces) in all.iter_mut().zip(at_time) {
        all.append(pieces);
    }
    all.into_iter()
        .zip(times)
        .map(|(table, time)| table.into_frame(time.top, time.params))
        .collect::<Result<_>>()
        .map(Some)
}

/// A text column as dictionary codes: its own, or strings coded into a dictionary of
/// their own. `None` for a column of another type.
fn as_codes(column: &Column) -> Option<Cow<'_, Column>> {
    match column.dtype() {
        DataType::Categorical(..) => Some(Cow::Borrowed(column)),
        DataType::String => {
            let codes = Categories::random("userlens".into(), CategoricalPhysical::U32);
            let coded = column.cast(&DataType::from_categories(codes)).ok()?;
            Some(Cow::Owned(coded))
        }
        _ => None,
    }
}

/// Row ranges of about `rows` rows that start where a user does.
fn pieces(ids: &StringChunked, rows: usize) -> Vec<std::ops::Range<usize>> {
    let n = ids.len();
    let mut starts = vec![0];
    let mut next = rows;
    while next < n {
        let mut start = next;
        while start < n && ids.get(start) == ids.get(start - 1) {
            start += 1;
        }
        if start < n {
            starts.push(start);
        }
        next = start + rows;
    }
    starts.push(n);
    starts.windows(2).map(|w| w[0]..w[1]).collect()
}

/// The stretches of rows `range` over which every column reads one array, from
/// the lengths of each column's chunks; empty stretches are left out.
fn stretches(
    range: std::ops::Range<usize>,
    chunkings: &mut [Box<dyn Iterator<Item = usize> + '_>],
) -> Vec<std::ops::Range<usize>> {
    let mut ends = vec![range.end];
    for lengths in chunkings {
        let mut end = 0;
        for length in lengths {
            end += length;
            if range.start < end && end < range.end {
                ends.push(end);
            }
        }
    }
    ends.sort_unstable();
    ends.dedup();
    let mut from = range.start;
    let mut stretches = Vec::with_capacity(ends.len());
    for to in ends {
        if from < to {
            stretches.push(from..to);
            from = to;
        }
    }
    stretches
}

/// The array of `ca` that holds row `row`, and the row's place in it.
fn array_at<T: PolarsDataType>(ca: &ChunkedArray<T>, row: usize) -> Option<(&T::Array, usize)> {
    let mut start = 0;
    for (array, length) in ca.downcast_iter().zip(ca.chunk_lengths()) {
        if row < start + length {
            return Some((array, row - start));
        }
        start += length;
    }
    None
}

/// A text column of the events: strings, or codes into a dictionary of them (how
/// the ingest stores the columns with few distinct values).
#[derive(Clone, Copy)]
pub(crate) enum Text<'a> {
    Strings(&'a StringChunked),
    Codes(&'a Categorical32Chunked),
}

impl<'a> Text<'a> {
    /// `None` for a column of another type.
    pub(crate) fn of(column: &'a Column) -> Option<Text<'a>> {
        match column.dtype() {
            DataType::String => column.str().ok().map(Text::Strings),
            DataType::Categorical(..) => column.cat32().ok().map(Text::Codes),
            _ => None,
        }
    }

    fn len(self) -> usize {
        match self {
            Text::Strings(ca) => ca.len(),
            Text::Codes(ca) => ca.len(),
        }
    }

    fn chunk_lengths(self) -> Box<dyn Iterator<Item = usize> + 'a> {
        match self {
            Text::Strings(ca) => Box::new(ca.chunk_lengths()),
            Text::Codes(ca) => Box::new(ca.physical().chunk_lengths()),
        }
    }

    /// The array that holds row `row`, and the row's place in it.
    fn array_at(self, row: usize) -> Option<(TextArray<'a>, usize)> {
        match self {
            Text::Strings(ca) => array_at(ca, row).map(|(a, i)| (TextArray::Strings(a), i)),
            Text::Codes(ca) => array_at(ca.physical(), row)
                .map(|(a, i)| (TextArray::Codes(a, ca.get_mapping()), i)),
        }
    }
}

/// One array of a text column.
#[derive(Clone, Copy)]
enum TextArray<'a> {
    Strings(&'a <StringType as PolarsDataType>::Array),
    Codes(
        &'a <UInt32Type as PolarsDataType>::Array,
        &'a CategoricalMapping,
    ),
}

impl<'a> TextArray<'a> {
    fn get(self, i: usize) -> Option<&'a str> {
        match self {
            TextArray::Strings(array) => array.get(i),
            TextArray::Codes(array, dictionary) => dictionary.cat_to_str(array.get(i)?),
        }
    }
}
