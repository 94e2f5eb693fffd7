//! Cohort retention (N-period and unbounded), the average retention curve, the
//! lifecycle of each period and repeat purchase, for every group.

use polars::prelude::*;
use userlens_model::time::DAY_MICROS;

use crate::calendar::Calendar;
use crate::error::{Result, polars_err};
use crate::groups::Group;
use crate::pass::{Before, UserSummary};

/// One cohort of one group: its users and, per period, the users active in it and
/// the users active in it or later.
#[derive(Debug, Clone, Default)]
struct Cohort {
    users: u64,
    active: Vec<u64>,
    /// Differences: the running sum is the users active in the period or later.
    later: Vec<i64>,
}

/// Retention of every group, cohort and period.
pub(crate) struct Retention {
    /// Indexed by `group * periods + cohort`.
    cohorts: Vec<Cohort>,
    periods: usize,
}

impl Retention {
    pub fn new(users: &[UserSummary], groups: usize, cal: &Calendar) -> Retention {
        let periods = cal.periods;
        let mut cohorts = vec![Cohort::default(); groups * periods];
        for user in users {
            let Some(c) = user.cohort else { continue };
            let c = c as usize;
            let span = periods - c;
            // Periods after the cohort's; the cohort's own counts only from the start.
            let later: Vec<usize> = user
                .periods
                .iter()
                .filter(|&&p| p as usize > c)
                .map(|&p| p as usize - c)
                .collect();
            let top = later.last().copied().or(user.start_active.then_some(0));
            for g in user.groups.iter().flatten() {
                let Some(cohort) = cohorts.get_mut(*g as usize * periods + c) else {
                    continue;
                };
                if cohort.active.is_empty() {
                    cohort.active = vec![0; span];
                    cohort.later = vec![0; span + 1];
                }
                cohort.users += 1;
                if user.start_active {
                    cohort.active[0] += 1;
                }
                for &k in &later {
                    cohort.active[k] += 1;
                }
                if let Some(top) = top {
                    cohort.later[0] += 1;
                    cohort.later[top + 1] -= 1;
                }
            }
        }
        Retention { cohorts, periods }
    }

    /// `cohort, cohort_users, period, active_users, retention, retention_unbounded,
    /// complete` of group `g`, cohorts and periods in order.
    fn rows(&self, g: usize, cal: &Calendar, out: &mut RetentionRows) {
        for c in 0..self.periods {
            let Some(cohort) = self.cohorts.get(g * self.periods + c) else {
                continue;
            };
            if cohort.users == 0 {
                continue;
            }
            let mut later = 0i64;
            for (k, &active) in cohort.active.iter().enumerate() {
                later += cohort.later[k];
                let n = cohort.users as f64;
                out.cohort.push(cal.label(c));
                out.cohort_users.push(cohort.users);
                out.period.push(k as u32);
                out.active.push(active);
                out.retention.push(active as f64 / n);
                out.unbounded.push(later as f64 / n);
                out.complete.push(cal.complete(c + k));
            }
        }
    }

    /// The retention table of group 0 (all users).
    pub fn table(&self, cal: &Calendar) -> Result<DataFrame> {
        let mut rows = RetentionRows::default();
        self.rows(0, cal, &mut rows);
        rows.frame(None)
    }

    /// The retention table of every group but the first, with `group, value` first.
    pub fn by_group(&self, groups: &[Group], cal: &Calendar) -> Result<DataFrame> {
        let mut rows = RetentionRows::default();
        let mut labels = (Vec::new(), Vec::new());
        for (g, group) in groups.iter().enumerate().skip(1) {
            let before = rows.cohort.len();
            self.rows(g, cal, &mut rows);
            let added = rows.cohort.len() - before;
            labels.0.extend(std::iter::repeat_n(group.kind, added));
            labels
                .1
                .extend(std::iter::repeat_n(group.value.clone(), added));
        }
        rows.frame(Some(labels))
    }

    /// The weighted average retention of each period over the cohorts that have
    /// completed it, per group: `group, value, period, cohorts, cohort_users,
    /// active_users, retention, retention_unbounded`.
    pub fn curve(&self, groups: &[Group], cal: &Calendar) -> Result<DataFrame> {
        let (mut kinds, mut values, mut period, mut cohorts_n, mut users_n, mut active_n): (
            Vec<_>,
            Vec<_>,
            Vec<_>,
            Vec<_>,
            Vec<_>,
            Vec<_>,
        ) = Default::default();
        let (mut retention, mut unbounded) = (Vec::new(), Vec::new());
        for (g, group) in groups.iter().enumerate() {
            for k in 0..self.periods {
                let (mut cohorts, mut users, mut active, mut later) = (0u64, 0u64, 0u64, 0i64);
                for c in 0..self.periods - k {
                    let Some(cohort) = self.cohorts.get(g * self.periods + c) else {
                        continue;
                    };
                    if cohort.users == 0 || !cal.complete(c + k) {
                        continue;
                    }
                    cohorts += 1;
                    users += cohort.users;
                    active += cohort.active.get(k).copied().unwrap_or(0);
                    later += cohort.later.iter().take(k + 1).sum::<i64>();
                }
                if users == 0 {
                    continue;
                }
                kinds.push(group.kind);
                values.push(group.value.clone());
                period.push(k as u32);
                cohorts_n.push(cohorts);
                users_n.push(users);
                active_n.push(active);
                retention.push(active as f64 / users as f64);
                unbounded.push(later as f64 / users as f64);
            }
        }
        DataFrame::new_infer_height(vec![
            Column::new("group".into(), kinds),
            Column::new("value".into(), values),
            Column::new("period".into(), period),
            Column::new("cohorts".into(), cohorts_n),
            Column::new("cohort_users".into(), users_n),
            Column::new("active_users".into(), active_n),
            Column::new("retention".into(), retention),
            Column::new("retention_unbounded".into(), unbounded),
        ])
        .map_err(polars_err("build the retention curve"))
    }
}

#[derive(Default)]
struct RetentionRows {
    cohort: Vec<String>,
    cohort_users: Vec<u64>,
    period: Vec<u32>,
    active: Vec<u64>,
    retention: Vec<f64>,
    unbounded: Vec<f64>,
    complete: Vec<bool>,
}

impl RetentionRows {
    fn frame(self, groups: Option<(Vec<&str>, Vec<String>)>) -> Result<DataFrame> {
        let mut columns = Vec::new();
        if let Some((kinds, values)) = groups {
            columns.push(Column::new("group".into(), kinds));
            columns.push(Column::new("value".into(), values));
        }
        columns.extend([
            Column::new("cohort".into(), self.cohort),
            Column::new("cohort_users".into(), self.cohort_users),
            Column::new("period".into(), self.period),
            Column::new("active_users".into(), self.active),
            Column::new("retention".into(), self.retention),
            Column::new("retention_unbounded".into(), self.unbounded),
            Column::new("complete".into(), self.complete),
        ]);
        DataFrame::new_infer_height(columns).map_err(polars_err("build the retention table"))
    }
}

/// `group, value, period, new, returning, resurrecting, dormant, complete`: PostHog's
/// lifecycle of every period, per group.
pub(crate) fn lifecycle(
    users: &[UserSummary],
    groups: &[Group],
    cal: &Calendar,
) -> Result<DataFrame> {
    let n = cal.periods;
    // new, returning, resurrecting, dormant per group and period
    let mut counts = vec![[0u64; 4]; groups.len() * n];
    for user in users {
        let mut kinds: Vec<(usize, usize)> = Vec::with_capacity(user.periods.len() * 2 + 1);
        // Active just before the calendar's first period: dormant there unless active.
        if user.before == Before::LastPeriod && user.periods.first() != Some(&0) && n > 0 {
            kinds.push((0, 3));
        }
        for (i, &p) in user.periods.iter().enumerate() {
            let p = p as usize;
            let kind = match i.checked_sub(1).map(|j| user.periods[j] as usize) {
                None => match user.before {
                    Before::Nothing => 0,
                    Before::LastPeriod if p == 0 => 1,
                    _ => 2,
                },
                Some(prev) if prev + 1 == p => 1,
                Some(_) => 2,
            };
            kinds.push((p, kind));
            let next_active = user
                .periods
                .get(i + 1)
                .is_some_and(|&q| q as usize == p + 1);
            if !next_active && p + 1 < n {
                kinds.push((p + 1, 3));
            }
        }
        for g in user.groups.iter().flatten() {
            for &(p, kind) in &kinds {
                if let Some(c) = counts.get_mut(*g as usize * n + p) {
                    c[kind] += 1;
                }
            }
        }
    }
    let (mut kinds, mut values, mut labels, mut complete) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut counts_by_kind: [Vec<u64>; 4] = Default::default();
    for (g, group) in groups.iter().enumerate() {
        // A group other than the first (all users) from its first period with a
        // user on: the periods after that without one are rows of zeros, so that a
        // chart of it does not join across them.
        let first = match g {
            0 => 0,
            _ => (0..n).find(|&p| counts[g * n + p] != [0; 4]).unwrap_or(n),
        };
        for p in first..n {
            let c = counts[g * n + p];
            kinds.push(group.kind);
            values.push(group.value.clone());
            labels.push(cal.label(p));
            for (k, v) in c.iter().enumerate() {
                counts_by_kind[k].push(*v);
            }
            complete.push(cal.complete(p));
        }
    }
    let [new, returning, resurrecting, dormant] = counts_by_kind;
    DataFrame::new_infer_height(vec![
        Column::new("group".into(), kinds),
        Column::new("value".into(), values),
        Column::new("period".into(), labels),
        Column::new("new".into(), new),
        Column::new("returning".into(), returning),
        Column::new("resurrecting".into(), resurrecting),
        Column::new("dormant".into(), dormant),
        Column::new("complete".into(), complete),
    ])
    .map_err(polars_err("build the lifecycle table"))
}

/// `group, value, cohort, buyers, repeat_buyers, rate, complete`: buyers by the
/// period of their first purchase, and those with another purchase at a later time
/// at most `window_days` after it.
pub(crate) fn repeat_purchase(
    users: &[UserSummary],
    groups: &[Group],
    cal: &Calendar,
    window_days: u32,
) -> Result<DataFrame> {
    let n = cal.periods;
    let window = i64::from(window_days) * DAY_MICROS;
    let mut counts = vec![[0u64; 2]; groups.len() * n];
    for user in users {
        let Some(first) = user.first_purchase else {
            continue;
        };
        let Some(day) = cal.day(first) else { continue };
        let c = cal.period(day) as usize;
        let repeat = user.repeat_after.is_some_and(|gap| gap <= window);
        for g in user.groups.iter().flatten() {
            if let Some(x) = counts.get_mut(*g as usize * n + c) {
                x[0] += 1;
                x[1] += u64::from(repeat);
            }
        }
    }
    let (mut kinds, mut values, mut labels, mut buyers_n, mut repeats_n): (
        Vec<_>,
        Vec<_>,
        Vec<_>,
        Vec<_>,
        Vec<_>,
    ) = Default::default();
    let (mut rate, mut complete) = (Vec::new(), Vec::new());
    for (g, group) in groups.iter().enumerate() {
        for c in 0..n {
            let [buyers, repeats] = counts[g * n + c];
            if buyers == 0 {
                continue;
            }
            kinds.push(group.kind);
            values.push(group.value.clone());
            labels.push(cal.label(c));
            buyers_n.push(buyers);
            repeats_n.push(repeats);
            rate.push(repeats as f64 / buyers as f64);
            // Every buyer of the cohort had the whole window before the as-of date.
            complete.push(cal.period_end(c).saturating_add(window) <= cal.as_of);
        }
    }
    DataFrame::new_infer_height(vec![
        Column::new("group".into(), kinds),
        Column::new("value".into(), values),
        Column::new("cohort".into(), labels),
        Column::new("buyers".into(), buyers_n),
        Column::new("repeat_buyers".into(), repeats_n),
        Column::new("rate".into(), rate),
        Column::new("complete".into(), complete),
    ])
    .map_err(polars_err("build the repeat purchase table"))
}
