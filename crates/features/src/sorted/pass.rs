//! One walk of a piece's rows, each row read straight from its columns' arrays.

use std::ops::Range;

use polars::prelude::*;
use userlens_model::money;
use userlens_model::time::DAY_MICROS;
use userlens_model::{FeatureFamily, dayparts};

use super::{
    Columns, HOUR_MICROS, Kind, Names, PASS_LIMIT_MICROS, Table, Text, Time, User, array_at, kinds,
    stretches,
};

/// The aggregates of the users of rows `range` at each of `times`; `None` when the
/// group-by is to make them: a session of one of them is split into runs of rows
/// (when the sessions' features are on at that time), a user id is null or a time
/// is beyond [`PASS_LIMIT_MICROS`]. `activity`: whether any time wants sessions.
pub(super) fn one_pass<'a>(
    columns: &Columns<'a>,
    range: Range<usize>,
    times: &[Time],
    activity: bool,
) -> Option<Vec<Table<'a>>> {
    let last_as_of = times.iter().map(|time| time.as_of).max()?;
    let kinds = kinds(columns.types);
    let category_names = columns.categories.map(|c| &**c.get_mapping());
    let query_names = columns.queries.map(|c| &**c.get_mapping());
    let top: Vec<Vec<Option<u32>>> = times
        .iter()
        .map(|time| {
            let code = |name: &String| category_names.and_then(|d| d.get_cat(name));
            time.top.iter().map(code).collect()
        })
        .collect();
    let mut walk = Walk {
        times,
        names: top
            .iter()
            .map(|top| Names {
                categories: category_names,
                queries: query_names,
                top,
            })
            .collect(),
        tables: times.iter().map(|time| Table::new(time.top)).collect(),
        made: vec![false; times.len()],
        user: User::default(),
        current: None,
        previous: (None, 0),
        activity,
    };
    for stretch in stretches(range, &mut columns.chunkings()) {
        let from = stretch.start;
        let (ids, ib) = array_at(columns.ids, from)?;
        let (event_times, tb) = array_at(columns.times, from)?;
        let (types, yb) = array_at(columns.types.physical(), from)?;
        let (sessions, sb) = columns.sessions.array_at(from)?;
        let (amounts, ab) = array_at(columns.amounts, from)?;
        let orders = optional(columns.orders, |c| c.array_at(from))?;
        let categories = optional(columns.categories, |c| array_at(c.physical(), from))?;
        let queries = optional(columns.queries, |c| array_at(c.physical(), from))?;
        let ratings = optional(columns.ratings, |c| array_at(c, from))?;
        for i in 0..stretch.len() {
            // Only events before an as-of time count (a null time is not before it).
            let Some(t) = event_times.get(tb + i).filter(|&t| t < last_as_of) else {
                continue;
            };
            if !(-PASS_LIMIT_MICROS..=PASS_LIMIT_MICROS).contains(&t) {
                return None;
            }
            // A null id never comes out of ingest; the group-by handles it.
            let id = ids.get(ib + i)?;
            let kind = types
                .get(yb + i)
                .and_then(|code| kinds.get(code as usize).copied());
            walk.row(Row {
                id,
                t,
                kind: kind.unwrap_or(Kind::Other),
                session: sessions.get(sb + i),
                amount: amounts.get(ab + i),
                order: orders.and_then(|(a, b)| a.get(b + i)),
                category: categories.and_then(|(a, b)| a.get(b + i)),
                query: queries.and_then(|(a, b)| a.get(b + i)),
                rating: ratings.and_then(|(a, b)| a.get(b + i)),
            })?;
        }
    }
    walk.finish()
}

impl<'a> Columns<'a> {
    /// The lengths of each column's chunks.
    fn chunkings(&self) -> Vec<Box<dyn Iterator<Item = usize> + 'a>> {
        let mut chunkings: Vec<Box<dyn Iterator<Item = usize> + 'a>> = vec![
            Box::new(self.ids.chunk_lengths()),
            Box::new(self.times.chunk_lengths()),
            Box::new(self.types.physical().chunk_lengths()),
            self.sessions.chunk_lengths(),
            Box::new(self.amounts.chunk_lengths()),
        ];
        chunkings.extend(self.orders.map(Text::chunk_lengths));
        for codes in [self.categories, self.queries].into_iter().flatten() {
            chunkings.push(Box::new(codes.physical().chunk_lengths()));
        }
        if let Some(ratings) = self.ratings {
            chunkings.push(Box::new(ratings.chunk_lengths()));
        }
        chunkings
    }
}

/// `at` of a column the pass may not read: `Some(None)` without it, `None` when
/// `at` fails.
fn optional<C, A>(column: Option<C>, at: impl FnOnce(C) -> Option<A>) -> Option<Option<A>> {
    match column {
        Some(column) => at(column).map(Some),
        None => Some(None),
    }
}

/// One event before the last as-of time, as the walk reads it.
struct Row<'a> {
    id: &'a str,
    t: i64,
    kind: Kind,
    session: Option<&'a str>,
    amount: Option<f64>,
    order: Option<&'a str>,
    category: Option<u32>,
    query: Option<u32>,
    rating: Option<f64>,
}

/// The state of a walk of rows sorted by user and then time.
struct Walk<'a, 'p> {
    times: &'p [Time<'p>],
    names: Vec<Names<'a, 'p>>,
    tables: Vec<Table<'a>>,
    /// Whether the current user's row at each time is made (or they have none).
    made: Vec<bool>,
    user: User<'a>,
    /// The user being summed.
    current: Option<&'a str>,
    /// The last kept row's session and time.
    previous: (Option<&'a str>, i64),
    activity: bool,
}

impl<'a> Walk<'a, '_> {
    fn row(&mut self, row: Row<'a>) -> Option<()> {
        let Row { id, t, session, .. } = row;
        let new_user = self.current != Some(id);
        if new_user {
            if let Some(done) = self.current {
                self.end_user(done)?;
            }
            self.current = Some(id);
            self.user.first = t;
        }
        // The user's rows at the times this event is not before: their events so far.
        let made = self.made.iter_mut().zip(&self.names);
        for ((table, time), (made, names)) in self.tables.iter_mut().zip(self.times).zip(made) {
            if !*made && t >= time.as_of {
                if self.user.events > 0 {
                    let activity = time.params.has(FeatureFamily::Activity);
                    table.push_user(id, &self.user, *names, time.params.text, activity)?;
                }
                *made = true;
            }
        }
        let user = &mut self.user;
        user.events += 1;
        user.last = t;
        if self.activity {
            if new_user || session != self.previous.0 {
                user.runs += 1;
                user.sessions.insert(session);
            } else {
                // Wrapping, as polars subtracts and sums: the gaps of a run add up
                // to its last time minus its first.
                let gap = t.wrapping_sub(self.previous.1);
                user.session_micros = user.session_micros.wrapping_add(gap);
            }
        }
        // Days as the group-by's `__t / DAY` (polars' integer division floors).
        if new_user || t.div_euclid(DAY_MICROS) != self.previous.1.div_euclid(DAY_MICROS) {
            user.days += 1;
        }
        self.previous = (session, t);
        match row.kind {
            Kind::Purchase => {
                if let Some(cents) = row.amount.and_then(money::cents) {
                    user.cents = user.cents.wrapping_add(cents);
                }
                if money::is_refund(row.amount) {
                    // Lines of one order are one refund, as of one purchase.
                    if row
                        .order
                        .is_none_or(|order| user.refund_orders.insert(order))
                    {
                        user.refunds += 1;
                    }
                } else {
                    // Lines of one order are one purchase, at its first line's time.
                    if row.order.is_none_or(|order| user.orders.insert(order)) {
                        user.purchases += 1;
                        user.first_buy.get_or_insert(t);
                        user.last_buy = Some(t);
                    }
                }
            }
            Kind::View => user.views += 1,
            Kind::Cart => user.carts += 1,
            Kind::Search => user.searches += 1,
            Kind::Other => {}
        }
        if let Some(category) = row.category {
            user.categorised += 1;
            *user.categories.entry(category).or_insert(0) += 1;
        }
        if let Some(query) = row.query {
            *user.queries.entry(query).or_insert(0) += 1;
        }
        if let Some(rating) = row.rating {
            user.ratings += 1;
            user.rating_sum.add(rating);
        }
        let hour = t.rem_euclid(DAY_MICROS) / HOUR_MICROS;
        // ISO weekday, Monday 1: 1970-01-01 was a Thursday.
        let weekday = (t.div_euclid(DAY_MICROS) + 3).rem_euclid(7) + 1;
        user.night += u64::from(!dayparts::NOT_NIGHT.contains(&hour));
        user.morning += u64::from(dayparts::MORNING.contains(&hour));
        user.evening += u64::from(dayparts::EVENING.contains(&hour));
        user.weekend += u64::from(weekday >= 6);
        Some(())
    }

    /// Ends user `id`: their rows at the times their events did not reach.
    fn end_user(&mut self, id: &'a str) -> Option<()> {
        let made = self.made.iter_mut().zip(&self.names);
        for ((table, time), (made, names)) in self.tables.iter_mut().zip(self.times).zip(made) {
            if !*made {
                let activity = time.params.has(FeatureFamily::Activity);
                table.push_user(id, &self.user, *names, time.params.text, activity)?;
            }
            *made = false;
        }
        self.user.reset();
        Some(())
    }

    fn finish(mut self) -> Option<Vec<Table<'a>>> {
        if let Some(done) = self.current {
            self.end_user(done)?;
        }
        Some(self.tables)
    }
}
