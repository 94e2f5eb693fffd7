//! Drift between two runs: population stability index (PSI) of every feature and of
//! persona shares, with the usual reading: below 0.1 stable, 0.1-0.25 a warning,
//! above 0.25 an alert.

use polars::prelude::*;
use serde::{Deserialize, Serialize};

/// PSI above which a shift is worth a look.
pub const WARNING: f64 = 0.1;
/// PSI above which a shift is an alert.
pub const ALERT: f64 = 0.25;

/// Floor of a bin share, so empty bins do not make the index infinite.
const EPSILON: f64 = 1e-4;

/// How serious a PSI is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Below [`WARNING`].
    Ok,
    /// Between [`WARNING`] and [`ALERT`].
    Warning,
    /// Above [`ALERT`].
    Alert,
}

impl Level {
    /// The level of a PSI value.
    pub fn of(psi: f64) -> Level {
        if psi > ALERT {
            Level::Alert
        } else if psi > WARNING {
            Level::Warning
        } else {
            Level::Ok
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Alert => "alert",
        }
    }
}

/// PSI of two distributions given as shares of the same bins.
pub fn psi_of_shares(expected: &[f64], actual: &[f64]) -> f64 {
    expected
        .iter()
        .zip(actual)
        .map(|(&e, &a)| {
            let (e, a) = (e.max(EPSILON), a.max(EPSILON));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// PSI of a sample against a reference sample, on the reference's deciles. Ties
/// (counts are full of them) merge bins, so a discrete feature gets one bin per value.
pub fn psi(reference: &[f64], current: &[f64]) -> Option<f64> {
    let current: Vec<f64> = current.iter().copied().filter(|v| v.is_finite()).collect();
    let deciles = Deciles::of(reference)?;
    if current.is_empty() {
        return None;
    }
    Some(psi_of_shares(
        &deciles.shares(reference),
        &deciles.shares(&current),
    ))
}

/// The bins of [`psi`]: the decile edges of a reference sample's finite values,
/// ties merged.
struct Deciles {
    edges: Vec<f64>,
}

impl Deciles {
    /// `None` without a finite reference value.
    fn of(reference: &[f64]) -> Option<Deciles> {
        let mut sorted: Vec<f64> = reference
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let mut edges: Vec<f64> = (1..10)
            .map(|q| sorted[(q * sorted.len() / 10).min(sorted.len() - 1)])
            .collect();
        edges.dedup();
        Some(Deciles { edges })
    }

    fn bins(&self) -> usize {
        self.edges.len() + 1
    }

    /// The shares of the finite `values` in each bin.
    fn shares(&self, values: &[f64]) -> Vec<f64> {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let mut counts = vec![0usize; self.bins()];
        for v in &finite {
            counts[self.edges.partition_point(|e| e <= v)] += 1;
        }
        counts
            .iter()
            .map(|&c| c as f64 / finite.len().max(1) as f64)
            .collect()
    }
}

/// One feature's drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    /// Feature name.
    pub feature: String,
    /// Population stability index against the previous run.
    pub psi: f64,
    /// Its level.
    pub level: Level,
}

/// A numeric column's values (missing ones left out) and its rows; `None` when the
/// table has no such numeric column.
fn numeric_values(df: &DataFrame, name: &str) -> Option<(Vec<f64>, usize)> {
    let column = df.column(name).ok()?;
    if !column.dtype().is_primitive_numeric() {
        return None;
    }
    let values = column.cast(&DataType::Float64).ok()?;
    let present = values.f64().ok()?.iter().flatten().collect();
    Some((present, df.height()))
}

/// [`psi`] with the missing values as a bin of their own: a column whose values
/// go missing (or come back) drifts as much as one whose values move. A column
/// that is not numeric (such as all blank, read as text) counts as all missing.
/// Without missing values on either side, the same as [`psi`].
fn psi_with_missing(before: (&[f64], usize), now: (&[f64], usize)) -> Option<f64> {
    let missing = |(present, rows): (&[f64], usize)| {
        if rows == 0 {
            0.0
        } else {
            1.0 - present.len() as f64 / rows as f64
        }
    };
    let (missing_before, missing_now) = (missing(before), missing(now));
    if missing_before == 0.0 && missing_now == 0.0 {
        return psi(before.0, now.0);
    }
    // The present values' bins, from the deciles of the side that has values.
    let reference = if before.0.is_empty() { now.0 } else { before.0 };
    let deciles = Deciles::of(reference)?;
    let shares = |present: &[f64], missing: f64| -> Vec<f64> {
        let mut shares = vec![missing];
        if present.is_empty() {
            shares.extend(std::iter::repeat_n(0.0, deciles.bins()));
        } else {
            shares.extend((deciles.shares(present).into_iter()).map(|s| s * (1.0 - missing)));
        }
        shares
    };
    Some(psi_of_shares(
        &shares(before.0, missing_before),
        &shares(now.0, missing_now),
    ))
}

/// PSI of every numeric feature the two tables share, worst first; a feature
/// numeric on one side only counts as all missing on the other.
pub fn feature_drift(previous: &DataFrame, current: &DataFrame) -> Vec<FeatureDrift> {
    let mut rows: Vec<FeatureDrift> = current
        .get_column_names()
        .iter()
        .filter_map(|name| {
            previous.column(name).ok()?;
            let before = numeric_values(previous, name);
            let now = numeric_values(current, name);
            let all_missing = |df: &DataFrame| (Vec::new(), df.height());
            let (before, now) = match (before, now) {
                (None, None) => return None,
                (before, now) => (
                    before.unwrap_or_else(|| all_missing(previous)),
                    now.unwrap_or_else(|| all_missing(current)),
                ),
            };
            let psi = psi_with_missing((&before.0, before.1), (&now.0, now.1))?;
            Some(FeatureDrift {
                feature: name.to_string(),
                psi,
                level: Level::of(psi),
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        b.psi
            .total_cmp(&a.psi)
            .then_with(|| a.feature.cmp(&b.feature))
    });
    rows
}

/// Columns added and removed between two tables.
pub fn schema_change(previous: &DataFrame, current: &DataFrame) -> (Vec<String>, Vec<String>) {
    let before: Vec<String> = previous
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let now: Vec<String> = current
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let added = now
        .iter()
        .filter(|n| !before.contains(n))
        .cloned()
        .collect();
    let removed = before
        .iter()
        .filter(|n| !now.contains(n))
        .cloned()
        .collect();
    (added, removed)
}

/// The drift rows as a table (`feature, psi, level`).
pub fn drift_table(rows: &[FeatureDrift]) -> PolarsResult<DataFrame> {
    DataFrame::new(
        rows.len(),
        vec![
            Column::new(
                "feature".into(),
                rows.iter().map(|r| r.feature.as_str()).collect::<Vec<_>>(),
            ),
            Column::new("psi".into(), rows.iter().map(|r| r.psi).collect::<Vec<_>>()),
            Column::new(
                "level".into(),
                rows.iter().map(|r| r.level.name()).collect::<Vec<_>>(),
            ),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_samples_do_not_drift_and_shifted_ones_do() {
        let a: Vec<f64> = (0..1000).map(|i| f64::from(i % 100)).collect();
        assert!(psi(&a, &a).unwrap() < 1e-12);
        let shifted: Vec<f64> = a.iter().map(|v| v + 30.0).collect();
        let p = psi(&a, &shifted).unwrap();
        assert_eq!(Level::of(p), Level::Alert, "{p}");
        let slight: Vec<f64> = a.iter().map(|v| v + 3.0).collect();
        assert_eq!(Level::of(psi(&a, &slight).unwrap()), Level::Ok);
        assert_eq!(psi(&[], &a), None);
    }

    #[test]
    fn a_feature_that_went_missing_is_an_alert() {
        let before = df!("user_age" => [30.0, 40.0, 50.0], "n" => [1.0, 2.0, 3.0]).unwrap();
        let nulls = df!("user_age" => [None::<f64>, None, None], "n" => [1.0, 2.0, 3.0]).unwrap();
        let text = df!("user_age" => [None::<&str>, None, None], "n" => [1.0, 2.0, 3.0]).unwrap();
        for now in [nulls, text] {
            let rows = feature_drift(&before, &now);
            let age = rows.iter().find(|r| r.feature == "user_age");
            assert!(age.is_some_and(|r| r.level == Level::Alert), "{rows:?}");
            assert!(
                rows.iter()
                    .any(|r| r.feature == "n" && r.level == Level::Ok)
            );
        }
    }

    #[test]
    fn values_coming_back_or_half_going_missing_drift_too() {
        let full = df!("x" => (0..100).map(f64::from).collect::<Vec<_>>()).unwrap();
        let blank = df!("x" => vec![None::<&str>; 100]).unwrap();
        let half: Vec<Option<f64>> = (0..100)
            .map(|i| (i % 2 == 0).then_some(f64::from(i)))
            .collect();
        let half = df!("x" => half).unwrap();
        let level = |before: &DataFrame, now: &DataFrame| {
            feature_drift(before, now).first().map(|r| r.level)
        };
        assert_eq!(level(&blank, &full), Some(Level::Alert));
        assert_eq!(level(&full, &half), Some(Level::Alert));
        assert_eq!(level(&full, &full), Some(Level::Ok));
        assert_eq!(level(&half, &half), Some(Level::Ok));
    }

    #[test]
    fn shares_psi_matches_a_hand_computed_value() {
        let p = psi_of_shares(&[0.5, 0.5], &[0.25, 0.75]);
        let expected = (0.25 - 0.5) * (0.5f64).ln() + (0.75 - 0.5) * (1.5f64).ln();
        assert!((p - expected).abs() < 1e-15);
        assert_eq!(Level::of(0.05), Level::Ok);
        assert_eq!(Level::of(0.2), Level::Warning);
    }
}
