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

/// Gamma-Gamma's expected value of a future transaction of each user: a customer's
/// from their repeat transactions, the population mean for anyone else (a first
/// purchase, or a one-time buyer's next); `None` where it is undefined.
pub(super) fn expected_spend(
    model: &GammaGamma,
    summary: &Summary,
    users: &[impl AsRef<str>],
) -> Vec<Option<f64>> {
    let index = customer_index(summary);
    users
        .iter()
        .map(|user| {
            let (x, m) = index.get(user.as_ref()).map_or((0.0, 0.0), |&i| {
                let (x, m) = (summary.frequency[i], summary.monetary[i]);
                // A repeat customer whose repeat value is not positive (refunds) is
                // outside the model: the population mean stands for them.
                if x > 0.0 && m > 0.0 {
                    (x, m)
                } else {
                    (0.0, 0.0)
                }
            });
            model
                .expected_spend(x, m)
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
        })
        .collect()
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
