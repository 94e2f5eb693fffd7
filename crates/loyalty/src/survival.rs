//! Time to churn: the Kaplan-Meier survival of "still active", with Greenwood's
//! variance on the log(-log) scale (lifelines' default "exponential Greenwood"
//! bands, which stay within 0..1), and the median lifetime with its interval.

use polars::prelude::*;

use crate::calendar::Calendar;
use crate::error::{Result, polars_err};
use crate::groups::Group;
use crate::pass::{Before, UserSummary};

/// z of a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// One step of a Kaplan-Meier curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// Days since the first activity.
    pub days: u32,
    /// Users whose lifetime is at least `days`.
    pub at_risk: u64,
    /// Users who churned after exactly `days`.
    pub churned: u64,
    /// Users still active, observed for exactly `days`.
    pub censored: u64,
    /// Share still active after `days`.
    pub survival: f64,
    /// Lower 95% bound (`None` once the curve reaches 0).
    pub lower: Option<f64>,
    /// Upper 95% bound.
    pub upper: Option<f64>,
}

/// The Kaplan-Meier curve of lifetimes `(days, churned)`, counted per day.
pub fn kaplan_meier(churned: &[u64], censored: &[u64]) -> Vec<Step> {
    let mut at_risk: u64 = churned.iter().chain(censored).sum();
    let (mut s, mut greenwood) = (1.0f64, 0.0f64);
    let mut steps = Vec::new();
    for (t, (&d, &c)) in churned.iter().zip(censored).enumerate() {
        if d == 0 && c == 0 {
            continue;
        }
        let n = at_risk as f64;
        if d > 0 {
            s *= 1.0 - d as f64 / n;
            greenwood += if at_risk > d {
                d as f64 / (n * (n - d as f64))
            } else {
                f64::INFINITY
            };
        }
        let (lower, upper) = bands(s, greenwood);
        steps.push(Step {
            days: t as u32,
            at_risk,
            churned: d,
            censored: c,
            survival: s,
            lower,
            upper,
        });
        at_risk -= d + c;
    }
    steps
}

/// The exponential Greenwood 95% band around `s`.
fn bands(s: f64, greenwood: f64) -> (Option<f64>, Option<f64>) {
    if s >= 1.0 {
        return (Some(1.0), Some(1.0));
    }
    if s <= 0.0 || !greenwood.is_finite() {
        return (None, None);
    }
    let log = s.ln();
    let spread = Z95 * greenwood.sqrt() / log.abs();
    (Some(s.powf(spread.exp())), Some(s.powf((-spread).exp())))
}

/// The first day the curve (or a band, by `pick`) is at or below one half, give or
/// take the rounding of its product of shares (0.6 · 5/6 is 0.5000000000000001).
fn median(steps: &[Step], pick: impl Fn(&Step) -> Option<f64>) -> Option<u32> {
    steps
        .iter()
        .find(|s| pick(s).is_some_and(|v| v <= 0.5 + 1e-12))
        .map(|s| s.days)
}

/// The per-group curves (`survival.csv`) and medians (`lifetime.csv`).
pub(crate) fn tables(
    users: &[UserSummary],
    groups: &[Group],
    cal: &Calendar,
    churn_after_days: u32,
) -> Result<(DataFrame, DataFrame)> {
    let days = cal.days;
    let last = days.saturating_sub(1) as u32;
    let mut counts = vec![(vec![0u64; days], vec![0u64; days]); groups.len()];
    for user in users {
        // A user active before the calendar's first period began their lifetime
        // before it: unknown when.
        let (Some((first, last_active)), Before::Nothing) = (user.span, user.before) else {
            continue;
        };
        // Churned after `churn_after_days` whole days without activity, seen before
        // the as-of date; the lifetime runs from the first activity to the last. Only
        // up to `resolved` is every user's state known: one active later may have
        // been active for the last time, so they are censored there, not at their
        // last activity (that would hide the churn of those who do not come back),
        // and a user first active after it tells nothing yet.
        let Some(resolved) = last.checked_sub(churn_after_days) else {
            continue;
        };
        let churned = last_active <= resolved;
        let lifetime = match churned {
            true => last_active - first,
            false if first <= resolved => resolved - first,
            false => continue,
        } as usize;
        for g in user.groups.iter().flatten() {
            if let Some((d, c)) = counts.get_mut(*g as usize) {
                if churned {
                    d[lifetime] += 1;
                } else {
                    c[lifetime] += 1;
                }
            }
        }
    }
    let mut curve = Curve::default();
    let mut medians = Medians::default();
    for (group, (d, c)) in groups.iter().zip(&counts) {
        let steps = kaplan_meier(d, c);
        if steps.is_empty() {
            continue;
        }
        medians.kind.push(group.kind);
        medians.value.push(group.value.clone());
        medians.users.push(d.iter().chain(c).sum::<u64>());
        medians.churned.push(d.iter().sum::<u64>());
        medians.median.push(median(&steps, |s| Some(s.survival)));
        medians
            .lower
            .push(median(&steps, |s| s.lower.or(Some(0.0))));
        medians.upper.push(median(&steps, |s| s.upper));
        for s in steps {
            curve.kind.push(group.kind);
            curve.value.push(group.value.clone());
            curve.steps.push(s);
        }
    }
    Ok((curve.frame()?, medians.frame()?))
}

#[derive(Default)]
struct Curve {
    kind: Vec<&'static str>,
    value: Vec<String>,
    steps: Vec<Step>,
}

impl Curve {
    fn frame(self) -> Result<DataFrame> {
        let s = &self.steps;
        DataFrame::new_infer_height(vec![
            Column::new("group".into(), self.kind),
            Column::new("value".into(), self.value),
            Column::new("days".into(), s.iter().map(|s| s.days).collect::<Vec<_>>()),
            Column::new(
                "at_risk".into(),
                s.iter().map(|s| s.at_risk).collect::<Vec<_>>(),
            ),
            Column::new(
                "churned".into(),
                s.iter().map(|s| s.churned).collect::<Vec<_>>(),
            ),
            Column::new(
                "censored".into(),
                s.iter().map(|s| s.censored).collect::<Vec<_>>(),
            ),
            Column::new(
                "survival".into(),
                s.iter().map(|s| s.survival).collect::<Vec<_>>(),
            ),
            Column::new(
                "lower".into(),
                s.iter().map(|s| s.lower).collect::<Vec<_>>(),
            ),
            Column::new(
                "upper".into(),
                s.iter().map(|s| s.upper).collect::<Vec<_>>(),
            ),
        ])
        .map_err(polars_err("build the survival table"))
    }
}

#[derive(Default)]
struct Medians {
    kind: Vec<&'static str>,
    value: Vec<String>,
    users: Vec<u64>,
    churned: Vec<u64>,
    median: Vec<Option<u32>>,
    lower: Vec<Option<u32>>,
    upper: Vec<Option<u32>>,
}

impl Medians {
    fn frame(self) -> Result<DataFrame> {
        DataFrame::new_infer_height(vec![
            Column::new("group".into(), self.kind),
            Column::new("value".into(), self.value),
            Column::new("users".into(), self.users),
            Column::new("churned".into(), self.churned),
            Column::new("median_days".into(), self.median),
            Column::new("median_lower".into(), self.lower),
            Column::new("median_upper".into(), self.upper),
        ])
        .map_err(polars_err("build the lifetime table"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_day_the_curve_reaches_a_half_despite_rounding() {
        // lifetimes 1, 2, 2, 3, 4 and five of 10: 0.9, 0.7, 0.6, then 0.6 · 5/6 = 0.5
        let mut churned = [0u64; 11];
        for day in [1, 2, 2, 3, 4, 10, 10, 10, 10, 10] {
            churned[day] += 1;
        }
        let steps = kaplan_meier(&churned, &[0; 11]);
        assert_eq!(median(&steps, |s| Some(s.survival)), Some(4));
    }

    #[test]
    fn kaplan_meier_matches_a_hand_computation() {
        // lifetimes: churned at 1, 1, 3; censored at 2, 4
        let churned = [0, 2, 0, 1, 0];
        let censored = [0, 0, 1, 0, 1];
        let steps = kaplan_meier(&churned, &censored);
        let days: Vec<u32> = steps.iter().map(|s| s.days).collect();
        assert_eq!(days, [1, 2, 3, 4]);
        // S(1) = 1 - 2/5 = 0.6; S(3) = 0.6 * (1 - 1/2) = 0.3
        assert_eq!(steps[0].at_risk, 5);
        assert!((steps[0].survival - 0.6).abs() < 1e-12);
        assert_eq!(steps[2].at_risk, 2);
        assert!((steps[2].survival - 0.3).abs() < 1e-12);
        // Greenwood at 1: 2 / (5 * 3); log-log band by hand
        let g: f64 = 2.0 / 15.0;
        let spread = Z95 * g.sqrt() / 0.6f64.ln().abs();
        let lower = 0.6f64.powf(spread.exp());
        assert!((steps[0].lower.unwrap() - lower).abs() < 1e-12);
        assert!(steps[0].lower.unwrap() < 0.6 && steps[0].upper.unwrap() > 0.6);
        assert_eq!(median(&steps, |s| Some(s.survival)), Some(3));
        // the last user at risk churns: the curve reaches 0, bands undefined
        let steps = kaplan_meier(&[1, 1], &[0, 0]);
        assert_eq!(steps[1].survival, 0.0);
        assert_eq!((steps[1].lower, steps[1].upper), (None, None));
        // no churn: survival 1 throughout, no median
        let steps = kaplan_meier(&[0, 0], &[1, 1]);
        assert!(steps.iter().all(|s| s.survival == 1.0));
        assert_eq!(median(&steps, |s| Some(s.survival)), None);
    }
}
