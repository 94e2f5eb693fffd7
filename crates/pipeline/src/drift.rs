//! Drift between two runs: population stability index (PSI) of every feature, with
//! the usual reading: below 0.1 stable, 0.1-0.25 a warning, above 0.25 an alert.

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
/// (counts are full of them) merge bins, and a value that fills a tenth of the
/// reference or more is a bin of its own, so a discrete feature gets one bin per
/// common value.
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
/// ties merged. A value that fills a tenth of the sample or more (such as the zeros of
/// a count) is a bin of its own, apart from the values above it: a rise from a
/// constant then moves the shares.
struct Deciles {
    edges: Vec<f64>,
    /// Per edge, the bin of the values in `[edge, next edge)`, or of the edge alone
    /// when it is a tie, the next bin then being `(edge, next edge)`.
    first_bin: Vec<usize>,
    ties: Vec<bool>,
    bins: usize,
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
        let n = sorted.len();
        let mut edges: Vec<f64> = (1..10).map(|q| sorted[(q * n / 10).min(n - 1)]).collect();
        // The values of runs of a tenth of the sample or more.
        let mut heavy = Vec::new();
        let mut start = 0;
        while start < n {
            let run = sorted[start..]
                .iter()
                .take_while(|v| **v == sorted[start])
                .count();
            if run * 10 >= n {
                heavy.push(sorted[start]);
            }
            start += run;
        }
        edges.extend(&heavy);
        edges.sort_by(f64::total_cmp);
        edges.dedup();
        let ties: Vec<bool> = edges.iter().map(|e| heavy.contains(e)).collect();
        // Bin 0 holds the values below the first edge.
        let mut first_bin = Vec::with_capacity(edges.len());
        let mut bins = 1;
        for &tie in &ties {
            first_bin.push(bins);
            bins += 1 + usize::from(tie);
        }
        Some(Deciles {
            edges,
            first_bin,
            ties,
            bins,
        })
    }

    fn bins(&self) -> usize {
        self.bins
    }

    /// The shares of the finite `values` in each bin.
    fn shares(&self, values: &[f64]) -> Vec<f64> {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let mut counts = vec![0usize; self.bins()];
        for v in &finite {
            let bin = match self.edges.partition_point(|e| e <= v) {
                0 => 0,
                i => {
                    self.first_bin[i - 1] + usize::from(self.ties[i - 1] && *v > self.edges[i - 1])
                }
            };
            counts[bin] += 1;
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

/// A text column's values as text (missing ones as `None`); `None` when the table
/// has no such text column.
fn text_values(df: &DataFrame, name: &str) -> Option<Vec<Option<String>>> {
    let column = df.column(name).ok()?;
    if !matches!(column.dtype(), DataType::String | DataType::Categorical(..)) {
        return None;
    }
    let text = column.cast(&DataType::String).ok()?;
    Some(
        text.str()
            .ok()?
            .iter()
            .map(|v| v.map(str::to_string))
            .collect(),
    )
}

/// Share of either run's rows below which a text value joins the other rare ones.
const RARE_TEXT: f64 = 0.01;

/// PSI of a text column's values: each value of at least [`RARE_TEXT`] of either
/// run's rows a bin (so a value new to the reference, or one most users move to,
/// shows), the rest one, missing values one.
fn text_psi(reference: &[Option<String>], current: &[Option<String>]) -> Option<f64> {
    use std::collections::{BTreeMap, BTreeSet};
    if reference.is_empty() || current.is_empty() {
        return None;
    }
    let common = |values: &[Option<String>]| {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for v in values.iter().flatten() {
            *counts.entry(v).or_insert(0) += 1;
        }
        let rows = values.len() as f64;
        (counts.into_iter())
            .filter(|&(_, n)| n as f64 >= RARE_TEXT * rows)
            .map(|(v, _)| v.to_string())
            .collect::<BTreeSet<String>>()
    };
    let common: Vec<String> = common(reference).union(&common(current)).cloned().collect();
    // Bins: the common values in order, then the rare ones, then missing values.
    let shares = |values: &[Option<String>]| {
        let mut bins = vec![0usize; common.len() + 2];
        for v in values {
            let bin = match v {
                None => common.len() + 1,
                Some(v) => common.binary_search(v).unwrap_or(common.len()),
            };
            bins[bin] += 1;
        }
        let rows = values.len() as f64;
        bins.into_iter()
            .map(|n| n as f64 / rows)
            .collect::<Vec<f64>>()
    };
    Some(psi_of_shares(&shares(reference), &shares(current)))
}

/// PSI of every numeric or text feature the two tables share, worst first; a
/// feature numeric on one side only counts as all missing on the other.
pub fn feature_drift(previous: &DataFrame, current: &DataFrame) -> Vec<FeatureDrift> {
    let mut rows: Vec<FeatureDrift> = current
        .get_column_names()
        .iter()
        .filter(|name| name.as_str() != userlens_model::columns::USER_ID)
        .filter_map(|name| {
            previous.column(name).ok()?;
            let row = |psi: f64| FeatureDrift {
                feature: name.to_string(),
                psi,
                level: Level::of(psi),
            };
            if let (Some(before), Some(now)) =
                (text_values(previous, name), text_values(current, name))
            {
                return text_psi(&before, &now).map(row);
            }
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
            psi_with_missing((&before.0, before.1), (&now.0, now.1)).map(row)
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
    fn a_rise_from_a_constant_drifts_as_the_fall_to_it_does() {
        // Refunds: none before, then 40% of the users with one (or 3% with one,
        // then 39%): the same alert either way round.
        let none = vec![0.0; 1000];
        let some: Vec<f64> = (0..1000).map(|i| f64::from(u8::from(i % 5 < 2))).collect();
        for (before, now) in [(&none, &some), (&some, &none)] {
            let p = psi(before, now).unwrap();
            assert_eq!(Level::of(p), Level::Alert, "{p}");
        }
        let few: Vec<f64> = (0..1000)
            .map(|i| f64::from(u8::from(i % 100 < 3)))
            .collect();
        let many: Vec<f64> = (0..1000)
            .map(|i| f64::from(u8::from(i % 100 < 39)))
            .collect();
        assert_eq!(Level::of(psi(&few, &many).unwrap()), Level::Alert);
        // A common value apart: shares on it and above it are told apart.
        let deciles = Deciles::of(&none).unwrap();
        assert_eq!(deciles.shares(&[0.0, 0.0, 1.0, -1.0]), [0.25, 0.5, 0.25]);
        // So is a value that fills a tenth to a fifth, at one decile only: zeros for
        // 15% of the users, all moving up to 0.5.
        let some_zeros: Vec<f64> = (0..1000)
            .map(|i| if i < 150 { 0.0 } else { f64::from(i) })
            .collect();
        let moved: Vec<f64> = (some_zeros.iter())
            .map(|&v| if v == 0.0 { 0.5 } else { v })
            .collect();
        for (before, now) in [(&some_zeros, &moved), (&moved, &some_zeros)] {
            let p = psi(before, now).unwrap();
            assert_eq!(Level::of(p), Level::Alert, "{p}");
        }
    }

    #[test]
    fn text_features_drift_by_their_values_shares() {
        let top = |books: usize| -> Vec<&str> {
            (0..100)
                .map(|i| if i < books { "books" } else { "toys" })
                .collect()
        };
        let before = df!("user_id" => (0..100).map(|i| format!("u{i}")).collect::<Vec<_>>(),
            "top_category" => top(50))
        .unwrap();
        let same = df!("user_id" => (100..200).map(|i| format!("u{i}")).collect::<Vec<_>>(),
            "top_category" => top(52))
        .unwrap();
        let rows = feature_drift(&before, &same);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].level, Level::Ok);
        let moved = df!("top_category" => top(10)).unwrap();
        assert_eq!(feature_drift(&before, &moved)[0].level, Level::Alert);
        // A value new to the reference, or one most users move to from rare ones.
        let new = df!("top_category" => vec!["games"; 100]).unwrap();
        assert_eq!(feature_drift(&before, &new)[0].level, Level::Alert);
        let rare =
            df!("top_query" => (0..1000).map(|i| format!("q{}", i % 200)).collect::<Vec<_>>())
                .unwrap();
        let one = df!("top_query" => (0..1000).map(|i| format!("q{}", i % 2)).collect::<Vec<_>>())
            .unwrap();
        let half_new = df!("top_query" => (0..1000)
            .map(|i| if i % 2 == 0 { "new".to_string() } else { format!("q{}", i % 200) })
            .collect::<Vec<_>>())
        .unwrap();
        assert!(feature_drift(&rare, &rare)[0].psi < 1e-12);
        assert_eq!(feature_drift(&rare, &one)[0].level, Level::Alert);
        assert_eq!(feature_drift(&rare, &half_new)[0].level, Level::Alert);
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
