//! One walk over each user's run of events (sorted by user, as ingest leaves them):
//! a compact summary per user, and the daily activity counts of stickiness per group.

use std::ops::Range;

use polars::prelude::*;
use rayon::prelude::*;
use userlens_model::columns::{AMOUNT, EVENT_TIME, EVENT_TYPE, ORDER_ID, USER_ID};
use userlens_model::time::DAY_MICROS;

use crate::calendar::{Calendar, Unit};
use crate::error::{Error, Result, polars_err};
use crate::groups::{Directory, Memberships};
use crate::params::{CheckedLoyaltyParams, EventMatch};

/// Users per block of parallel work: fixed, so that the blocks (and every sum
/// merged from them in order) do not depend on the number of threads.
const BLOCK_USERS: usize = 8192;

// Bits of the `flags` column (Int32: the build has no 8-bit integers).
const START: i32 = 1;
const RETURN: i32 = 2;
const PURCHASE: i32 = 4;

/// What the outputs need of one user.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UserSummary {
    /// The user's groups.
    pub groups: Memberships,
    /// Period offset of the first start event.
    pub cohort: Option<u32>,
    /// A return event at or after the first start event, in the cohort's period.
    pub start_active: bool,
    /// Sorted distinct period offsets holding a return event.
    pub periods: Vec<u32>,
    /// Day offsets of the first and the last return event.
    pub span: Option<(u32, u32)>,
    /// Time of the first purchase.
    pub first_purchase: Option<i64>,
    /// Microseconds from the first purchase to the next one at a later time.
    pub repeat_after: Option<i64>,
    /// Return events before the calendar's first period, when it leaves earlier ones out.
    pub before: Before,
}

/// A user's last return event before the calendar's first period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Before {
    /// None: the user is new where first active.
    #[default]
    Nothing,
    /// In the period just before: returning in the first period, dormant if not.
    LastPeriod,
    /// Earlier: resurrecting when next active.
    Earlier,
}

/// Days of the trailing windows of WAU and MAU.
pub(crate) const WEEK_WINDOW_DAYS: u32 = 7;
pub(crate) const MONTH_WINDOW_DAYS: u32 = 30;

/// Users active on each day, and over the trailing week and 30 days.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Stickiness {
    pub dau: Vec<u64>,
    /// Differences: the running sum is the WAU of each day.
    pub wau: Vec<i64>,
    /// Differences: the running sum is the MAU of each day.
    pub mau: Vec<i64>,
    /// Per calendar month: users by number of active days (index 1..=31).
    pub active_days: Vec<[u64; 32]>,
}

impl Stickiness {
    fn new(days: usize, months: usize) -> Stickiness {
        Stickiness {
            dau: vec![0; days],
            wau: vec![0; days + 1],
            mau: vec![0; days + 1],
            active_days: vec![[0; 32]; months],
        }
    }

    fn merge(&mut self, other: &Stickiness) {
        let add = |a: &mut [i64], b: &[i64]| a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        self.dau
            .iter_mut()
            .zip(&other.dau)
            .for_each(|(x, y)| *x += y);
        add(&mut self.wau, &other.wau);
        add(&mut self.mau, &other.mau);
        for (x, y) in self.active_days.iter_mut().zip(&other.active_days) {
            x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
        }
    }

    /// Adds one user's sorted distinct active days, and how many days before the first
    /// the user was last active, if the calendar leaves that day out.
    fn add_user(&mut self, days: &[u32], lead: Option<i64>, months: &Calendar) {
        let n = self.dau.len() as u32;
        for (window, diff) in [
            (WEEK_WINDOW_DAYS, &mut self.wau),
            (MONTH_WINDOW_DAYS, &mut self.mau),
        ] {
            // The union of [day, day + window) over the active days, clipped; a day
            // before the first counts in the windows that reach past it.
            let mut open: Option<(u32, u32)> = lead
                .filter(|&k| k < i64::from(window))
                .map(|k| (0, (window - k as u32).min(n)));
            for &d in days {
                let end = (d + window).min(n);
                open = match open {
                    Some((s, e)) if d <= e => Some((s, e.max(end))),
                    Some((s, e)) => {
                        diff[s as usize] += 1;
                        diff[e as usize] -= 1;
                        Some((d, end))
                    }
                    None => Some((d, end)),
                };
            }
            if let Some((s, e)) = open {
                diff[s as usize] += 1;
                diff[e as usize] -= 1;
            }
        }
        let mut run: Option<(u32, usize)> = None;
        for &d in days {
            if let Some(x) = self.dau.get_mut(d as usize) {
                *x += 1;
            }
            let month = months.period(d);
            run = match run {
                Some((m, count)) if m == month => Some((m, count + 1)),
                Some((m, count)) => {
                    self.count_month(m, count);
                    Some((month, 1))
                }
                None => Some((month, 1)),
            };
        }
        if let Some((m, count)) = run {
            self.count_month(m, count);
        }
    }

    fn count_month(&mut self, month: u32, count: usize) {
        if let Some(h) = self.active_days.get_mut(month as usize) {
            h[count.min(31)] += 1;
        }
    }
}

/// Everything the pass makes.
pub(crate) struct Pass {
    pub users: Vec<UserSummary>,
    /// Per group, indexed like [`Directory::groups`]: the first is all users.
    pub stickiness: Vec<Stickiness>,
    /// For the drivers: users active in the period before the last complete one,
    /// and whether they were active in it.
    pub retained: Vec<(String, bool)>,
    pub matched: Matched,
}

/// Events before the as-of date that each event parameter matched: none means an
/// empty table, such as a misspelt type gives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Matched {
    /// `start_event`'s.
    pub start: u64,
    /// `return_event`'s.
    pub ret: u64,
    /// `purchase_event`'s, refunds (negative amounts) left out.
    pub purchase: u64,
}

/// The first and the last event time before `as_of` over every part.
pub(crate) fn time_span(parts: &[LazyFrame], as_of: Option<i64>) -> Result<Option<(i64, i64)>> {
    let mut span: Option<(i64, i64)> = None;
    for part in parts {
        let mut lf = part.clone();
        if let Some(as_of) = as_of {
            lf = lf.filter(col(EVENT_TIME).cast(DataType::Int64).lt(lit(as_of)));
        }
        let t = col(EVENT_TIME).cast(DataType::Int64);
        let df = lf
            .select([t.clone().min().alias("min"), t.max().alias("max")])
            .collect()
            .map_err(polars_err("find the events' first and last times"))?;
        let get = |name: &str| -> Result<Option<i64>> {
            let c = df.column(name).map_err(polars_err("read the time span"))?;
            Ok(c.i64().map_err(polars_err("read the time span"))?.get(0))
        };
        if let (Some(lo), Some(hi)) = (get("min")?, get("max")?) {
            span = Some(span.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
        }
    }
    Ok(span)
}

/// Rows of the purchase event with a negative amount are refunds, not purchases.
fn purchases(name: &str) -> Expr {
    col(EVENT_TYPE)
        .eq(lit(name))
        .and(userlens_model::money::expr::is_refund(col(AMOUNT)).not())
}

fn matches(event: &EventMatch, purchase: &str) -> Expr {
    match event {
        EventMatch::Any => lit(true),
        EventMatch::Named(name) if name == purchase => purchases(purchase),
        EventMatch::Named(name) => col(EVENT_TYPE).eq(lit(name.as_str())),
    }
}

/// Summarises every user of every part.
pub(crate) fn run(
    parts: &[LazyFrame],
    params: &CheckedLoyaltyParams,
    cal: &Calendar,
    dir: &Directory,
) -> Result<Pass> {
    let months = Calendar::new(Unit::Month, cal.start(), cal.as_of);
    let last_complete = (0..cal.periods).rev().find(|&p| cal.complete(p));
    let ctx = Ctx {
        cal,
        months: &months,
        dir,
        previous: last_complete
            .and_then(|p| p.checked_sub(1))
            .map(|p| p as u32),
    };
    let flag = |e: Expr, bit: i32| e.cast(DataType::Int32) * lit(bit);
    let p = params.purchase.as_str();
    let flags = (flag(matches(&params.start, p), START)
        + flag(matches(&params.ret, p), RETURN)
        + flag(purchases(p), PURCHASE))
    .alias("flags");
    let mut pass = Pass {
        users: Vec::new(),
        stickiness: vec![Stickiness::new(cal.days, months.periods); dir.groups.len()],
        retained: Vec::new(),
        matched: Matched::default(),
    };
    for part in parts {
        // A purchase's time as an order's: the lines of one order, whatever their
        // times, are one purchase at its first purchase line's.
        let time = col(EVENT_TIME).cast(DataType::Int64);
        let has_orders = part
            .clone()
            .collect_schema()
            .is_ok_and(|schema| schema.contains(ORDER_ID));
        let mut select = vec![
            col(USER_ID).cast(DataType::String),
            time.clone(),
            flags.clone(),
        ];
        if has_orders {
            let bought_at = userlens_model::orders::bought_at(time.clone(), purchases(p))
                .map_err(polars_err("find the orders' first purchase lines"))?;
            select.push(bought_at.alias(BOUGHT_AT));
        }
        let mut df = part
            .clone()
            .filter(time.lt(lit(cal.as_of)))
            .select(select)
            .collect()
            .map_err(polars_err("read the events"))?;
        let mut runs = user_runs(&df)?;
        if runs.is_none() {
            // Not grouped by user: sort (stably) and walk again.
            df = df
                .sort(
                    [USER_ID],
                    SortMultipleOptions::default().with_maintain_order(true),
                )
                .map_err(polars_err("sort the events by user"))?;
            runs = user_runs(&df)?;
        }
        let runs = runs.ok_or(Error::NoEvents)?;
        let numbers = Numbers::of(&df)?;
        let cols = numbers.cols(&df)?;
        for &f in cols.flags {
            pass.matched.start += u64::from(f & START != 0);
            pass.matched.ret += u64::from(f & RETURN != 0);
            pass.matched.purchase += u64::from(f & PURCHASE != 0);
        }
        // Each block holds the daily counts of every group: merge a few blocks per
        // thread at a time, fewer where a block's counts are big (many groups over a
        // long calendar). Blocks stay BLOCK_USERS users, so the sums do not change.
        let block_bytes = ctx.dir.groups.len().max(1) * (cal.days * 24 + ctx.months.periods * 256);
        let blocks =
            (WAVE_BYTES / block_bytes.max(1)).clamp(1, 2 * rayon::current_num_threads().max(1));
        let wave = BLOCK_USERS * blocks;
        for runs in runs.chunks(wave) {
            let blocks: Vec<Block> = runs
                .par_chunks(BLOCK_USERS)
                .map(|chunk| block(&cols, chunk, &ctx))
                .collect();
            for b in blocks {
                pass.users.extend(b.users);
                for (s, other) in pass.stickiness.iter_mut().zip(&b.stickiness) {
                    s.merge(other);
                }
                pass.retained.extend(b.retained);
            }
        }
    }
    Ok(pass)
}

struct Ctx<'a> {
    cal: &'a Calendar,
    months: &'a Calendar,
    dir: &'a Directory,
    /// The period before the last complete one.
    previous: Option<u32>,
}

/// The column of a purchase's time as its order's ([`run`]).
const BOUGHT_AT: &str = "bought_at";

struct Cols<'a> {
    ids: &'a StringChunked,
    times: &'a [i64],
    flags: &'a [i32],
    /// The times, but an order's line's time is its order's first purchase line's.
    bought_at: &'a [i64],
}

/// The times and flags of a part in one piece each (the events of an in-memory
/// ingest come in several chunks). The user ids stay in their chunks: they are read
/// once per row to find the users' runs and once per user, so joining them would
/// only copy them.
struct Numbers {
    times: Int64Chunked,
    flags: Int32Chunked,
    /// Only for events with orders: else the times, not a copy of them.
    bought_at: Option<Int64Chunked>,
}

impl Numbers {
    fn of(df: &DataFrame) -> Result<Numbers> {
        let err = polars_err("read the event columns");
        let column = |name| {
            df.column(name)
                .map_err(polars_err("read the event columns"))
        };
        Ok(Numbers {
            times: column(EVENT_TIME)?
                .i64()
                .map_err(&err)?
                .rechunk()
                .into_owned(),
            flags: column("flags")?.i32().map_err(&err)?.rechunk().into_owned(),
            bought_at: match df.column(BOUGHT_AT) {
                Ok(c) => Some(c.i64().map_err(&err)?.rechunk().into_owned()),
                Err(_) => None,
            },
        })
    }

    fn cols<'a>(&'a self, df: &'a DataFrame) -> Result<Cols<'a>> {
        let err = polars_err("read the event columns");
        let times = self.times.cont_slice().map_err(&err)?;
        Ok(Cols {
            ids: df.column(USER_ID).map_err(&err)?.str().map_err(&err)?,
            times,
            flags: self.flags.cont_slice().map_err(&err)?,
            bought_at: match &self.bought_at {
                Some(b) => b.cont_slice().map_err(&err)?,
                None => times,
            },
        })
    }
}

/// Row ranges of each user, or `None` when a user's rows are not together.
fn user_runs(df: &DataFrame) -> Result<Option<Vec<Range<usize>>>> {
    let ids = df
        .column(USER_ID)
        .and_then(|c| c.str())
        .map_err(polars_err("read user ids"))?;
    let mut runs = Vec::new();
    let mut prev: Option<&str> = None;
    let mut start = 0;
    for (i, id) in ids.iter().enumerate() {
        let id = id.unwrap_or_default();
        match prev {
            Some(p) if p == id => continue,
            Some(p) if p > id => return Ok(None),
            Some(_) => runs.push(start..i),
            None => {}
        }
        prev = Some(id);
        start = i;
    }
    if prev.is_some() {
        runs.push(start..ids.len());
    }
    Ok(Some(runs))
}

struct Block {
    users: Vec<UserSummary>,
    /// Per group, like [`Pass::stickiness`].
    stickiness: Vec<Stickiness>,
    retained: Vec<(String, bool)>,
}

/// Most bytes of blocks' daily counts one wave of [`block`]s holds at once.
const WAVE_BYTES: usize = 256 << 20;

fn block(cols: &Cols<'_>, runs: &[Range<usize>], ctx: &Ctx<'_>) -> Block {
    let cal = ctx.cal;
    let mut out = Block {
        users: Vec::with_capacity(runs.len()),
        stickiness: vec![Stickiness::new(cal.days, ctx.months.periods); ctx.dir.groups.len()],
        retained: Vec::new(),
    };
    let mut days: Vec<u32> = Vec::new();
    for run in runs {
        let id = cols.ids.get(run.start).unwrap_or_default();
        let groups = ctx.dir.memberships(id);
        let times = &cols.times[run.clone()];
        let flags = &cols.flags[run.clone()];
        let bought_at = &cols.bought_at[run.clone()];
        let start = times
            .iter()
            .zip(flags)
            .filter(|(_, f)| *f & START != 0)
            .map(|(t, _)| *t)
            .min();
        let cohort = start.and_then(|t| cal.day(t)).map(|d| cal.period(d));
        days.clear();
        let mut start_active = false;
        let mut purchases: (Option<i64>, Option<i64>) = (None, None);
        let mut last_before: Option<i64> = None;
        for ((&t, &f), &bought) in times.iter().zip(flags).zip(bought_at) {
            if f & RETURN != 0 {
                if let Some(d) = cal.day(t) {
                    days.push(d);
                    if let (Some(s), Some(c)) = (start, cohort) {
                        start_active |= t >= s && cal.period(d) == c;
                    }
                } else if t < cal.start() {
                    last_before = last_before.max(Some(t));
                }
            }
            if f & PURCHASE != 0 {
                purchases = next_two(purchases, bought);
            }
        }
        days.sort_unstable();
        days.dedup();
        let mut periods: Vec<u32> = days.iter().map(|&d| cal.period(d)).collect();
        periods.dedup();
        let lead = last_before.map(|t| cal.first_day - t.div_euclid(DAY_MICROS));
        for g in groups.iter().flatten() {
            if let Some(s) = out.stickiness.get_mut(*g as usize) {
                s.add_user(&days, lead, ctx.months);
            }
        }
        if let Some(prev) = ctx.previous
            && periods.binary_search(&prev).is_ok()
        {
            let retained = periods.binary_search(&(prev + 1)).is_ok();
            out.retained.push((id.to_string(), retained));
        }
        out.users.push(UserSummary {
            groups,
            cohort,
            start_active,
            span: days.first().zip(days.last()).map(|(a, b)| (*a, *b)),
            periods,
            first_purchase: purchases.0,
            repeat_after: purchases.0.zip(purchases.1).map(|(a, b)| b - a),
            before: match last_before {
                None => Before::Nothing,
                Some(t) if t >= cal.previous_start() => Before::LastPeriod,
                Some(_) => Before::Earlier,
            },
        });
    }
    out
}

/// The earliest time and the earliest later time, after seeing `t`.
fn next_two((first, second): (Option<i64>, Option<i64>), t: i64) -> (Option<i64>, Option<i64>) {
    match first {
        None => (Some(t), None),
        Some(f) if t < f => (Some(t), Some(f)),
        Some(f) if t == f => (first, second),
        Some(_) => (first, Some(second.map_or(t, |s| s.min(t)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_purchase_is_the_first_at_a_later_time() {
        let mut p = (None, None);
        for t in [50, 10, 10, 30, 70] {
            p = next_two(p, t);
        }
        assert_eq!(p, (Some(10), Some(30)));
        assert_eq!(next_two((None, None), 5), (Some(5), None));
        assert_eq!(next_two((Some(5), None), 5), (Some(5), None));
    }

    #[test]
    fn trailing_windows_count_a_user_once() {
        let months = Calendar::new(Unit::Month, 0, 40 * DAY_MICROS);
        let mut s = Stickiness::new(40, months.periods);
        s.add_user(&[0, 3, 20], None, &months);
        let running = |d: &[i64]| {
            d.iter()
                .scan(0, |acc, x| {
                    *acc += x;
                    Some(*acc)
                })
                .collect::<Vec<_>>()
        };
        let wau = running(&s.wau);
        // active days 0 and 3 make days 0..=9 one user; day 20 makes 20..=26.
        assert_eq!(&wau[..11], &[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
        assert_eq!(wau[26], 1);
        assert_eq!(wau[27], 0);
        let mau = running(&s.mau);
        assert_eq!(mau[39], 1);
        assert_eq!(mau[0], 1);
        assert_eq!(s.dau.iter().sum::<u64>(), 3);
        // three active days in January 1970
        assert_eq!(s.active_days[0][3], 1);
        // Last active 3 days before the calendar: in the WAU of its first 4 days and
        // the MAU of its first 27, not in the DAU.
        let mut s = Stickiness::new(40, months.periods);
        s.add_user(&[], Some(3), &months);
        assert_eq!(running(&s.wau)[..5], [1, 1, 1, 1, 0]);
        assert_eq!((running(&s.mau)[26], running(&s.mau)[27]), (1, 0));
        assert_eq!(s.dau.iter().sum::<u64>(), 0);
    }
}
