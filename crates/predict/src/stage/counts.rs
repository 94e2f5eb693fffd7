//! The count models (BG/NBD, Pareto/NBD, Gamma-Gamma): fitted on purchase
//! histories and applied to the users they describe, customers from their first
//! purchase on.

use foldhash::HashMap;
use rayon::prelude::*;

use crate::stats::{self, BgNbd, GammaGamma, ParetoNbd, PurchaseModel, Summary};

use super::timed;

/// A count model's value for every user it describes, clamped to `range`: a
/// customer, with a purchase in `summary`; users without one get `None` (a first
/// purchase is another model's, [`super::domains`]). A value the model cannot
/// compute (a series that does not converge, say) is `None` too, never a stand-in.
fn per_customer(
    summary: &Summary,
    users: &[impl AsRef<str> + Sync],
    range: (f64, f64),
    value: impl Fn(f64, f64, f64) -> stats::Result<f64> + Sync,
) -> Vec<Option<f64>> {
    let index = customer_index(summary);
    users
        .par_iter()
        .map(|user| {
            let &i = index.get(user.as_ref())?;
            let (x, t_x, big_t) = (summary.frequency[i], summary.recency[i], summary.t[i]);
            value(x, t_x, big_t)
                .ok()
                .filter(|v| v.is_finite())
                .map(|v| v.clamp(range.0, range.1))
        })
        .collect()
}

/// Expected purchases within `horizon` and P(alive) of each of `users` ([`per_customer`]).
pub(super) fn count_predictions<M: PurchaseModel + Sync>(
    model: &M,
    summary: &Summary,
    users: &[impl AsRef<str> + Sync],
    horizon: f64,
) -> (Vec<Option<f64>>, Vec<Option<f64>>) {
    let expected = per_customer(summary, users, (0.0, f64::INFINITY), |x, t_x, big_t| {
        model.expected_purchases(horizon, x, t_x, big_t)
    });
    (expected, alive_probabilities(model, summary, users))
}

/// P(alive) of each of `users` ([`per_customer`]).
pub(super) fn alive_probabilities<M: PurchaseModel + Sync>(
    model: &M,
    summary: &Summary,
    users: &[impl AsRef<str> + Sync],
) -> Vec<Option<f64>> {
    per_customer(summary, users, (0.0, 1.0), |x, t_x, big_t| {
        model.p_alive(x, t_x, big_t)
    })
}

/// The model's probability of a repeat purchase within `horizon` of each of `users`
/// ([`per_customer`]).
pub(super) fn purchase_probabilities<M: PurchaseModel + Sync>(
    model: &M,
    summary: &Summary,
    users: &[impl AsRef<str> + Sync],
    horizon: f64,
) -> Vec<Option<f64>> {
    per_customer(summary, users, (0.0, 1.0), |x, t_x, big_t| {
        model.p_purchase(horizon, x, t_x, big_t)
    })
}

/// The row of each customer of a summary.
pub(super) fn customer_index(summary: &Summary) -> HashMap<&str, usize> {
    summary
        .user_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect()
}

/// The expected value of a future transaction of each user: Gamma-Gamma's for a
/// customer, given their repeat transactions, or their first alone where no repeat
/// has a positive value; the customers' mean first transaction for a user without
/// a purchase, whose next is a first; `None` where it is undefined.
pub(super) fn expected_spend(
    model: &GammaGamma,
    summary: &Summary,
    users: &[impl AsRef<str>],
) -> Vec<Option<f64>> {
    let index = customer_index(summary);
    let first_purchase = mean_first_value(summary);
    let defined = |v: f64| Some(v).filter(|v| v.is_finite() && *v >= 0.0);
    users
        .iter()
        .map(|user| {
            let Some(&i) = index.get(user.as_ref()) else {
                return first_purchase
                    .or_else(|| model.expected_spend(0.0, 0.0).ok())
                    .and_then(defined);
            };
            let (x, m, first) = (
                summary.frequency[i],
                summary.monetary[i],
                summary.first_value[i],
            );
            // A value that is not positive (refunds) is outside the model.
            let (x, m) = if x > 0.0 && m > 0.0 {
                (x, m)
            } else if first > 0.0 {
                (1.0, first)
            } else {
                (0.0, 0.0)
            };
            model.expected_spend(x, m).ok().and_then(defined)
        })
        .collect()
}

/// The mean value of the customers' first transactions of positive value, summed
/// in cents (the same in any order); `None` without one.
fn mean_first_value(summary: &Summary) -> Option<f64> {
    let (mut cents, mut n) = (0i128, 0u32);
    for &v in &summary.first_value {
        if let Some(c) = userlens_model::money::cents(v).filter(|&c| c > 0) {
            cents += i128::from(c);
            n += 1;
        }
    }
    (n > 0).then(|| cents as f64 / 100.0 / f64::from(n))
}

/// Every value, or why not: a predictor with holes is skipped, not scored.
pub(super) fn complete(
    values: Vec<Option<f64>>,
    what: &str,
) -> std::result::Result<Vec<f64>, String> {
    let missing = values.iter().filter(|v| v.is_none()).count();
    if missing > 0 {
        return Err(format!(
            "{what} could not be computed for {missing} of {} holdout users",
            values.len()
        ));
    }
    Ok(values.into_iter().flatten().collect())
}

/// The statistical models fitted on a summary; each may be skipped with a reason.
pub(super) struct CountFits {
    pub(super) bgnbd: std::result::Result<stats::Fit<stats::CountModel>, String>,
    pub(super) pareto: std::result::Result<stats::Fit<stats::CountModel>, String>,
    pub(super) gamma: std::result::Result<stats::Fit<GammaGamma>, String>,
}

/// Fits the count models; `earlier` (the fits at the cutoff) warm-starts Pareto/NBD.
pub(super) fn fit_counts(summary: &Summary, earlier: Option<&CountFits>) -> CountFits {
    let start = match earlier.map(|fits| &fits.pareto) {
        Some(Ok(stats::Fit {
            model: stats::CountModel::ParetoNbd(model),
            ..
        })) => Some(model),
        _ => None,
    };
    let fit_pareto = || timed("pareto/nbd fit", || ParetoNbd::fit_from(summary, start));
    let fit_others = || {
        let bgnbd = timed("bg/nbd fit", || BgNbd::fit(summary));
        (bgnbd, timed("gamma-gamma fit", || GammaGamma::fit(summary)))
    };
    // Pareto/NBD's quadrature costs most; the other two fit beside it.
    let (pareto, (bgnbd, gamma)) = rayon::join(fit_pareto, fit_others);
    CountFits {
        bgnbd: bgnbd.map_err(|e| e.to_string()),
        pareto: pareto.map_err(|e| e.to_string()),
        gamma: gamma.map_err(|e| e.to_string()),
    }
}

pub(super) fn report_json<M>(
    fit: &std::result::Result<stats::Fit<M>, String>,
) -> serde_json::Value {
    match fit {
        Ok(fit) => serde_json::to_value(&fit.report).unwrap_or(serde_json::Value::Null),
        Err(reason) => serde_json::json!({ "skipped": reason }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_time_buyer_is_valued_by_their_purchase_and_a_non_buyer_by_first_ones() {
        let gg = GammaGamma::new(2.0, 1.5, 40.0).unwrap();
        let summary = Summary {
            user_ids: ["once", "refunded", "repeat"].map(String::from).to_vec(),
            frequency: vec![0.0, 1.0, 2.0],
            recency: vec![0.0, 3.0, 9.0],
            t: vec![10.0, 10.0, 10.0],
            monetary: vec![0.0, -5.0, 30.0],
            first_value: vec![10.0, 20.0, 50.0],
        };
        let users = ["never", "once", "refunded", "repeat"];
        let spend = expected_spend(&gg, &summary, &users);
        let of = |x: f64, m: f64| Some(gg.expected_spend(x, m).unwrap());
        // The customers' mean first purchase, not the population mean of 160.
        assert_eq!(spend[0], Some(80.0 / 3.0));
        assert_eq!(spend[1], of(1.0, 10.0));
        // Repeats that are refunds leave the first purchase as the evidence.
        assert_eq!(spend[2], of(1.0, 20.0));
        assert_eq!(spend[3], of(2.0, 30.0));
        assert!(spend[1].unwrap() < of(0.0, 0.0).unwrap());
    }

    #[test]
    fn without_a_first_purchase_of_value_a_non_buyer_takes_the_population_mean() {
        let gg = GammaGamma::new(2.0, 1.5, 40.0).unwrap();
        let summary = Summary {
            user_ids: vec!["refund only".into()],
            frequency: vec![0.0],
            recency: vec![0.0],
            t: vec![4.0],
            monetary: vec![0.0],
            first_value: vec![-3.0],
        };
        let spend = expected_spend(&gg, &summary, &["never", "refund only"]);
        let population = gg.expected_spend(0.0, 0.0).unwrap();
        assert_eq!(spend, [Some(population), Some(population)]);
    }
}
