//! From feature columns to the scaled matrix that clustering sees.

use polars::prelude::*;
use rayon::prelude::*;
use userlens_model::stats::Standardiser;
use userlens_model::takes_log;

use crate::error::{Result, WhileDoing};
use crate::family::{Uninformative, is_event_share};
use crate::matrix::Matrix;

/// Columns counting the draws behind a user's event shares, best first: events of
/// one session share its hour, its day and mostly its category, so sessions are the
/// independent ones.
pub(crate) const DRAWS: [&str; 2] = ["sessions", "events"];

/// The clustering matrix and how it was made from the raw columns.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// `n x d` z-scores of the kept features.
    pub(crate) matrix: Matrix,
    /// Kept features, in matrix column order.
    pub(crate) features: Vec<String>,
    /// Kept features that were log-transformed.
    pub(crate) log_transformed: Vec<String>,
    /// Per kept feature: mean in the transformed space.
    pub(crate) center: Vec<f64>,
    /// Per kept feature: population standard deviation in the transformed space.
    pub(crate) scale: Vec<f64>,
    /// Per kept feature: median used for missing values, in the transformed space.
    pub(crate) impute: Vec<f64>,
    /// Candidate features without variance, and whether all were missing.
    pub(crate) dropped: Vec<(String, Uninformative)>,
    /// Per kept feature: share of users whose value is missing (imputed).
    pub(crate) missing_share: Vec<f64>,
    /// Per kept feature that is a share of the user's events: how its z-scores
    /// shrink by the sessions behind them.
    pub(crate) shrink: Vec<Option<Shrinkage>>,
    /// Per user: the sessions (or events) behind their shares, if the table counts them.
    pub(crate) draws: Option<Vec<f64>>,
}

/// Reads `candidates` (numeric columns of `df`) into one row-major matrix, applies the
/// signed log to heavy-tailed features ([`takes_log`]), imputes medians, standardises,
/// and drops constant columns.
pub(crate) fn prepare(df: &DataFrame, candidates: &[String]) -> Result<Prepared> {
    let n = df.height();
    // One transformed column at a time, each in one piece: every pass below reads a
    // column front to back.
    let mut raw: Vec<Vec<f64>> = Vec::with_capacity(candidates.len());
    let mut logged = Vec::with_capacity(candidates.len());
    for name in candidates {
        let context = || format!("read feature `{name}` as a number");
        let column = df.column(name).while_doing(context)?;
        let series = column
            .as_materialized_series()
            .cast(&DataType::Float64)
            .while_doing(context)?;
        let values = series.f64().while_doing(context)?;
        let mut transformed: Vec<f64> = values
            .iter()
            .map(|v| v.filter(|v| v.is_finite()).unwrap_or(f64::NAN))
            .collect();
        let heavy = takes_log(name, &transformed);
        if heavy {
            for slot in &mut transformed {
                *slot = Standardiser::transform(*slot, true);
            }
        }
        raw.push(transformed);
        logged.push(heavy);
    }

    // Columns are independent: each is imputed and scaled on its own thread.
    let fitted: Vec<Option<Standardiser>> = raw
        .par_iter()
        .map(|column| Standardiser::fit(column.iter().copied()))
        .collect();
    let mut kept: Vec<(usize, Standardiser)> = Vec::new();
    let mut dropped = Vec::new();
    for (j, (name, fit)) in candidates.iter().zip(fitted).enumerate() {
        match fit {
            Some(scaling) => kept.push((j, scaling)),
            None if raw[j].iter().all(|v| v.is_nan()) => {
                dropped.push((name.clone(), Uninformative::Missing));
            }
            None => dropped.push((name.clone(), Uninformative::Constant)),
        }
    }

    let d = kept.len();
    let mut data = vec![0.0; n * d];
    if d > 0 {
        data.par_chunks_mut(d).enumerate().for_each(|(i, out)| {
            for (slot, (j, scaling)) in out.iter_mut().zip(&kept) {
                *slot = scaling.z(raw[*j][i]);
            }
        });
    }

    let features: Vec<String> = kept.iter().map(|(j, _)| candidates[*j].clone()).collect();
    let missing_share = kept
        .iter()
        .map(|(j, _)| raw[*j].iter().filter(|v| v.is_nan()).count() as f64 / n.max(1) as f64)
        .collect();
    let draws = draw_counts(df)?;
    let shrink = kept
        .iter()
        .map(|&(j, _)| {
            let draws = draws
                .as_deref()
                .filter(|_| is_event_share(&candidates[j]))?;
            Shrinkage::fit(raw[j].iter().copied().zip(draws.iter().copied()))
        })
        .collect();
    Ok(Prepared {
        matrix: Matrix::new(n, d, data),
        log_transformed: kept
            .iter()
            .filter(|&&(j, _)| logged[j])
            .map(|&(j, _)| candidates[j].clone())
            .collect(),
        center: kept.iter().map(|(_, s)| s.center()).collect(),
        scale: kept.iter().map(|(_, s)| s.scale()).collect(),
        impute: kept.iter().map(|(_, s)| s.impute()).collect(),
        features,
        dropped,
        missing_share,
        shrink,
        draws,
    })
}

/// Per user, the number of draws behind their shares, when the table counts them.
fn draw_counts(df: &DataFrame) -> Result<Option<Vec<f64>>> {
    let Some((name, column)) = DRAWS
        .iter()
        .find_map(|name| df.column(name).ok().map(|c| (name, c)))
    else {
        return Ok(None);
    };
    let context = || format!("read `{name}` as a number");
    let series = column
        .as_materialized_series()
        .cast(&DataType::Float64)
        .while_doing(context)?;
    let values = series.f64().while_doing(context)?;
    Ok(Some(values.iter().map(|v| v.unwrap_or(f64::NAN)).collect()))
}

/// Empirical-Bayes shrinkage of shares of `n_i` draws (beta-binomial, method of
/// moments): a z-score is multiplied by `V / (V + (p(1 - p) - V) / n_i)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Shrinkage {
    /// `V`: the observed variance of the shares less their binomial noise.
    signal: f64,
    /// `p(1 - p) - V`, the mean variance of one draw around a user's true share.
    within: f64,
}

impl Shrinkage {
    /// Fits on `(share, draws)` per user, skipping missing shares and counts below
    /// one; `None` when no user is left.
    pub(crate) fn fit(users: impl Iterator<Item = (f64, f64)>) -> Option<Shrinkage> {
        let users: Vec<(f64, f64)> = users
            .filter(|&(p, n)| p.is_finite() && n.is_finite() && n >= 1.0)
            .collect();
        if users.is_empty() {
            return None;
        }
        let m = users.len() as f64;
        let mean = users.iter().map(|(p, _)| p).sum::<f64>() / m;
        let variance = users.iter().map(|(p, _)| (p - mean).powi(2)).sum::<f64>() / m;
        let inverse_draws = users.iter().map(|(_, n)| 1.0 / n).sum::<f64>() / m;
        let noise = (mean * (1.0 - mean)).max(0.0);
        // with one draw each, true shares cannot be told from noise
        let signal = if inverse_draws < 1.0 {
            ((variance - noise * inverse_draws) / (1.0 - inverse_draws)).clamp(0.0, variance)
        } else {
            0.0
        };
        Some(Shrinkage {
            signal,
            within: (noise - signal).max(0.0),
        })
    }

    /// The factor on the z-score of a user with `draws` draws (1 without a count).
    pub(crate) fn factor(&self, draws: f64) -> f64 {
        if !(draws.is_finite() && draws >= 1.0) {
            1.0
        } else if self.signal > 0.0 {
            self.signal / (self.signal + self.within / draws)
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_imputes_and_drops() {
        let df = df!(
            "monetary" => [Some(0.0), Some(99.0), None, Some(9.0)],
            "flat" => [0.1, 0.1, 0.1, 0.1],
            "empty" => [None::<f64>, None, None, None],
            "age" => [20i64, 30, 40, 50],
        )
        .unwrap();
        let names: Vec<String> = ["monetary", "flat", "empty", "age"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = prepare(&df, &names).unwrap();
        assert_eq!(p.features, vec!["monetary", "age"]);
        assert_eq!(p.log_transformed, vec!["monetary"]);
        assert_eq!(
            p.dropped,
            vec![
                ("flat".to_string(), Uninformative::Constant),
                ("empty".to_string(), Uninformative::Missing)
            ]
        );
        assert_eq!(p.shrink, vec![None, None]);
        assert_eq!(p.draws, None);
        assert_eq!(p.impute[0], 10f64.ln());
        assert!((p.center[1] - 35.0).abs() < 1e-12);
        assert!((p.scale[1] - 125f64.sqrt()).abs() < 1e-12);
        let m = &p.matrix;
        assert_eq!((m.n(), m.d()), (4, 2));
        for j in 0..2 {
            let col: Vec<f64> = (0..4).map(|i| m.row(i)[j]).collect();
            let mean = col.iter().sum::<f64>() / 4.0;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 4.0;
            assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12);
        }
        // the missing spend is imputed to the median, ln(1 + 9)
        let z = (10f64.ln() - p.center[0]) / p.scale[0];
        assert!((m.row(2)[0] - z).abs() < 1e-12);
    }

    #[test]
    fn a_skewed_users_table_attribute_is_logged() {
        // One balance a hundred times the rest: without the log it alone fills an axis.
        let mut balance: Vec<f64> = (0..50).map(|i| 100.0 + i as f64).collect();
        balance.push(20_000.0);
        let age: Vec<f64> = (0..51).map(|i| 20.0 + i as f64).collect();
        let df = df!("user_balance" => &balance, "user_age" => &age).unwrap();
        let names = ["user_balance".to_string(), "user_age".to_string()];
        let p = prepare(&df, &names).unwrap();
        assert_eq!(p.log_transformed, vec!["user_balance"]);
        assert!((p.impute[0] - 125f64.ln_1p()).abs() < 1e-12);
        let outlier = p.matrix.row(50)[0];
        assert!(outlier > 3.0 && outlier < 7.5, "{outlier}");
    }

    #[test]
    fn shares_of_few_sessions_shrink_more() {
        let factors = |shares: &[f64], draws: &[f64]| -> Vec<f64> {
            let fit = Shrinkage::fit(shares.iter().copied().zip(draws.iter().copied()));
            let fit = fit.unwrap();
            draws.iter().map(|&n| fit.factor(n)).collect()
        };
        // one session each: no share says more than the population's
        assert_eq!(factors(&[0.0, 1.0, 1.0, 0.0], &[1.0; 4]), vec![0.0; 4]);
        // four sessions each: variance 0.15625, noise 0.25 / 4, so V = 0.125 and every
        // z-score is multiplied by 0.125 / (0.125 + 0.125 / 4) = 0.8; a user without
        // a count keeps 1 and is left out of the fit
        assert_eq!(
            factors(
                &[0.0, 0.25, 0.75, 1.0, 0.3],
                &[4.0, 4.0, 4.0, 4.0, f64::NAN]
            ),
            vec![0.8, 0.8, 0.8, 0.8, 1.0]
        );
        // one session or a hundred
        let got = factors(&[0.0, 1.0, 0.2, 0.8], &[1.0, 1.0, 100.0, 100.0]);
        let signal = (0.17 - 0.25 * 0.505) / 0.495;
        let within = 0.25 - signal;
        assert!((got[0] - signal / (signal + within)).abs() < 1e-12);
        assert!((got[2] - signal / (signal + within / 100.0)).abs() < 1e-12);
        assert!(got[0] < 0.4 && got[2] > 0.98, "{got:?}");
        assert_eq!(
            Shrinkage::fit([(f64::NAN, 3.0), (0.5, 0.0)].into_iter()),
            None
        );
    }

    #[test]
    fn event_shares_get_factors_when_the_table_counts_sessions() {
        let df = df!(
            "sessions" => [1.0, 1.0, 40.0, 40.0],
            "weekend_share" => [0.0, 1.0, 0.1, 0.9],
            "monetary" => [1.0, 2.0, 3.0, 4.0],
        )
        .unwrap();
        let names = vec!["weekend_share".to_string(), "monetary".to_string()];
        let p = prepare(&df, &names).unwrap();
        let fit = p.shrink[0].unwrap();
        assert!(fit.factor(1.0) < fit.factor(40.0), "{fit:?}");
        assert_eq!(p.shrink[1], None);
        assert_eq!(p.draws, Some(vec![1.0, 1.0, 40.0, 40.0]));
        let without = prepare(&df.drop("sessions").unwrap(), &names).unwrap();
        assert_eq!(without.shrink, vec![None, None]);
    }
}
