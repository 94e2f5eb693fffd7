//! Every prediction column scored on the holdout against its own target, as the
//! column is built: `expected_purchases` against the horizon's purchases,
//! `p_alive` against any event in it, `predicted_revenue` (and each revenue model
//! alone) against its revenue; and the revenue blend chosen on the inner split.

use foldhash::{HashMap, HashSet};
use polars::prelude::DataFrame;

use crate::metrics::{self, Eligibility};
use crate::ml::{self, ModelKind};
use crate::stats::Summary;

use super::counts::{CountFits, complete, count_predictions, customer_index, expected_spend};
use super::domains::{
    BGNBD, activity, blend, choose_weight, first_purchase, holdout_probabilities, ml_name,
    non_buyer_rates, score_expected, sourced, times,
};
use super::targets::Backtested;
use super::users::lookup;
use super::{
    ACTIVE_TARGET, Outcome, REVENUE, REVENUE_COUNTS, REVENUE_TARGET, Result, Scored, score_as,
    skipped_row,
};

/// `expected_purchases` prefix of a first-purchase model (`first_purchase:logistic`).
pub(super) const FIRST_PURCHASE: &str = "first_purchase";
/// `p_alive` prefix of an activity model (`activity:tree`).
pub(super) const ACTIVITY: &str = "activity";

/// What the horizon after the cutoff holds for each labelled user.
pub(super) struct HorizonLabels<'a> {
    /// `(user, purchased, active)` of the users seen before the cutoff, ascending.
    pub(super) users: Vec<(&'a str, bool, bool)>,
    /// Revenue of each user in the horizon.
    pub(super) revenue: HashMap<&'a str, f64>,
    /// Purchase days of each user in the horizon (absent: none).
    pub(super) purchases: HashMap<String, f64>,
}

/// The horizon's labels of every user in `targets` with features at the cutoff
/// (`at_cutoff`: seen before it; a newcomer in the horizon is active by being
/// there), with their purchase days.
pub(super) fn horizon_labels<'a>(
    targets: &'a DataFrame,
    at_cutoff: &DataFrame,
    purchases: HashMap<String, f64>,
) -> Result<HorizonLabels<'a>> {
    let ids = ml::read_ids(targets, "targets")?;
    let known: HashSet<&str> = ml::read_ids(at_cutoff, "features at the cutoff")?
        .into_iter()
        .collect();
    let purchased = lookup(targets, ml::PURCHASED)?;
    let active = lookup(targets, ml::ACTIVE)?;
    let revenue = lookup(targets, ml::REVENUE)?;
    let users = ids
        .into_iter()
        .filter(|id| known.contains(id))
        .map(|id| {
            let bought = purchased.get(id).is_some_and(|&v| v > 0.0);
            let came_back = active.get(id).is_some_and(|&v| v > 0.0);
            (id, bought, came_back)
        })
        .collect();
    Ok(HorizonLabels {
        users,
        revenue,
        purchases,
    })
}

/// The statistical side of the cutoff: purchase histories and the models fitted
/// on them, with the horizon in model units.
pub(super) struct AtCutoff<'a> {
    pub(super) summary: Option<&'a Summary>,
    pub(super) fits: Option<&'a CountFits>,
    pub(super) horizon_units: f64,
    /// Whether a count model was fitted at the as-of date: the predictions then
    /// give its customers that model's P(alive), which the holdout must score.
    pub(super) customers_now: bool,
}

impl AtCutoff<'_> {
    /// Expected purchases of `ids`: BG/NBD's for customers, the first-purchase
    /// model's (`probabilities` by user, else the conversion `rate`) for the rest.
    /// `None` when BG/NBD was not fitted.
    fn expected(
        &self,
        ids: &[String],
        probabilities: &HashMap<&str, f64>,
        kind: Option<ModelKind>,
        rate: Option<f64>,
    ) -> std::result::Result<Vec<f64>, String> {
        let (Some(summary), Some(fits)) = (self.summary, self.fits) else {
            return Err("no purchase history before the cutoff".into());
        };
        let fit = fits.bgnbd.as_ref().map_err(Clone::clone)?;
        let (for_customers, _) = count_predictions(&fit.model, summary, ids, self.horizon_units);
        let name = kind.map(|k| ml_name(FIRST_PURCHASE, k)).unwrap_or_default();
        let column = sourced(ids, &customer_index(summary), &for_customers, BGNBD, |i| {
            first_purchase(probabilities.get(ids[i].as_str()).copied(), &name, rate)
        });
        complete(column.values, "expected purchases")
    }

    /// Expected purchases × Gamma-Gamma spend of `ids`.
    fn revenue(&self, ids: &[String], expected: &[f64]) -> std::result::Result<Vec<f64>, String> {
        let (Some(summary), Some(fits)) = (self.summary, self.fits) else {
            return Err("no purchase history before the cutoff".into());
        };
        let gg = fits.gamma.as_ref().map_err(Clone::clone)?;
        let spend = expected_spend(&gg.model, summary, ids);
        let expected: Vec<Option<f64>> = expected.iter().copied().map(Some).collect();
        complete(times(&expected, &spend), "expected spend")
    }

    /// P(alive) of `ids`: Pareto/NBD's (else BG/NBD's) for customers, the activity
    /// model's (else the activity `rate`) for the rest.
    fn p_alive(
        &self,
        ids: &[String],
        probabilities: &HashMap<&str, f64>,
        kind: Option<ModelKind>,
        rate: Option<f64>,
    ) -> std::result::Result<Vec<f64>, String> {
        let model = kind.map(|k| ml_name(ACTIVITY, k)).unwrap_or_default();
        let of_activity = |i: usize| -> Option<(f64, &str)> {
            activity(probabilities.get(ids[i].as_str()).copied(), &model, rate)
        };
        let customers = self.summary.map(customer_index).unwrap_or_default();
        // No customer before the cutoff: where no count model was fitted at the as-of
        // date either, every user's P(alive) is the activity model's, as the
        // predictions give it; where one was, its customers' P(alive) is that model's,
        // which no holdout customer can score.
        if customers.is_empty() && self.customers_now {
            return Err(
                "no customer before the cutoff to score the count models' P(alive) on".into(),
            );
        }
        if customers.is_empty() {
            let values = (0..ids.len()).map(|i| of_activity(i).map(|(v, _)| v));
            return complete(values.collect(), "P(alive)");
        }
        let (Some(summary), Some(fits)) = (self.summary, self.fits) else {
            return Err("no purchase history before the cutoff".into());
        };
        let (name, fit) = match (&fits.pareto, &fits.bgnbd) {
            (Ok(fit), _) => ("pareto/nbd", fit),
            (Err(_), Ok(fit)) => (BGNBD, fit),
            (Err(reason), Err(_)) => return Err(reason.clone()),
        };
        let (_, for_customers) = count_predictions(&fit.model, summary, ids, self.horizon_units);
        let column = sourced(ids, &customers, &for_customers, name, of_activity);
        complete(column.values, "P(alive)")
    }
}

/// The columns' rows of the model report, and the revenue blend's weight on
/// expected purchases × spend (chosen on the purchase target's inner split).
pub(super) fn score_columns(
    at_cutoff: &AtCutoff,
    purchase: Option<&Backtested>,
    activity_model: Option<&Backtested>,
    labels: &HorizonLabels,
    gate: &Eligibility,
) -> Result<(Vec<Scored>, f64)> {
    let mut rows = Vec::new();
    let revenue_of = |ids: &[String]| -> Vec<f64> {
        ids.iter()
            .map(|id| labels.revenue.get(id.as_str()).copied().unwrap_or(0.0))
            .collect()
    };
    // The blend weight, from users neither the models nor the holdout scores saw.
    let mut weight = 1.0;
    if let Some(inner) = purchase.and_then(|b| b.inner.as_ref()) {
        let probabilities: HashMap<&str, f64> = inner
            .ids
            .iter()
            .map(String::as_str)
            .zip(inner.probabilities.iter().copied())
            .collect();
        let counts = at_cutoff
            .expected(&inner.ids, &probabilities, None, None)
            .and_then(|e| at_cutoff.revenue(&inner.ids, &e));
        let ml: Vec<Option<f64>> = inner.revenue.iter().copied().map(Some).collect();
        weight = match counts {
            Ok(counts) => {
                let counts: Vec<Option<f64>> = counts.into_iter().map(Some).collect();
                choose_weight(&counts, &ml, &inner.actual_revenue)
            }
            Err(_) => 0.0,
        };
    }

    if let Some(b) = purchase {
        let leave_out: HashSet<&str> = b.ids.iter().map(String::as_str).collect();
        let (conversion, _) = non_buyer_rates(at_cutoff.summary, &labels.users, &leave_out);
        let probabilities = holdout_probabilities(Some(b));
        let expected = at_cutoff.expected(&b.ids, &probabilities, Some(b.kind), conversion);
        let counts: Vec<f64> = b
            .ids
            .iter()
            .map(|id| labels.purchases.get(id).copied().unwrap_or(0.0))
            .collect();
        let actual = revenue_of(&b.ids);
        match &expected {
            Ok(e) => {
                let mut row = score_expected("expected_purchases", e, &b.y, &counts, gate)?;
                row.fitted_users = Some(b.train_users);
                rows.push(row);
            }
            Err(reason) => rows.push(skipped_row(
                "expected_purchases",
                super::PURCHASES_TARGET,
                reason.clone(),
            )),
        }
        // Revenue is scored on the same holdout, gated as the purchase rows are: a
        // holdout with too few buyers scores no revenue either.
        if let Some(Scored {
            outcome: Outcome::Skipped { reason },
            ..
        }) = rows.last()
        {
            let reason = format!("purchases in the holdout: {reason}");
            for predictor in [REVENUE_COUNTS, REVENUE] {
                rows.push(skipped_row(predictor, REVENUE_TARGET, reason.clone()));
            }
            return finish(rows, weight, at_cutoff, activity_model, labels, gate);
        }
        let counts_revenue = expected
            .clone()
            .and_then(|e| at_cutoff.revenue(&b.ids, &e))
            .map(|v| v.into_iter().map(Some).collect::<Vec<_>>());
        match &counts_revenue {
            Ok(v) => rows.push(revenue_row(REVENUE_COUNTS, v, &actual, b.train_users)?),
            Err(reason) => rows.push(skipped_row(REVENUE_COUNTS, REVENUE_TARGET, reason.clone())),
        }
        let ml: Vec<Option<f64>> = match &b.revenue {
            Some((predicted, _)) => predicted.iter().copied().map(Some).collect(),
            None => vec![None; b.ids.len()],
        };
        let counts_revenue = counts_revenue.unwrap_or_else(|_| vec![None; b.ids.len()]);
        let (blended, _) = blend(weight, &counts_revenue, &ml);
        if blended.iter().all(Option::is_some) {
            rows.push(revenue_row(REVENUE, &blended, &actual, b.train_users)?);
        } else {
            let reason = "neither revenue model could be scored".to_string();
            rows.push(skipped_row(REVENUE, REVENUE_TARGET, reason));
        }
    }

    finish(rows, weight, at_cutoff, activity_model, labels, gate)
}

/// Adds the `p_alive` row, scored on the activity model's holdout.
fn finish(
    mut rows: Vec<Scored>,
    weight: f64,
    at_cutoff: &AtCutoff,
    activity_model: Option<&Backtested>,
    labels: &HorizonLabels,
    gate: &Eligibility,
) -> Result<(Vec<Scored>, f64)> {
    if let Some(b) = activity_model {
        let leave_out: HashSet<&str> = b.ids.iter().map(String::as_str).collect();
        let (_, rate) = non_buyer_rates(at_cutoff.summary, &labels.users, &leave_out);
        let probabilities = holdout_probabilities(Some(b));
        match at_cutoff.p_alive(&b.ids, &probabilities, Some(b.kind), rate) {
            Ok(p) => {
                let mut row = score_as("p_alive", ACTIVE_TARGET, &p, &b.y, gate)?;
                row.fitted_users = Some(b.train_users);
                // Alive is not active within the horizon: a customer alive and slow
                // makes no event in it.
                row.ranking_only = Some(
                    "P(alive) is not the chance of an event in the horizon: its ranking and lift are scored, not its log loss",
                );
                rows.push(row);
            }
            Err(reason) => rows.push(skipped_row("p_alive", ACTIVE_TARGET, reason)),
        }
    }
    Ok((rows, weight))
}

fn revenue_row(
    predictor: &str,
    predicted: &[Option<f64>],
    actual: &[f64],
    fitted_users: usize,
) -> Result<Scored> {
    let predicted: Vec<f64> = predicted.iter().map(|v| v.unwrap_or(0.0)).collect();
    if actual.is_empty() {
        return Ok(skipped_row(
            predictor,
            REVENUE_TARGET,
            super::EMPTY_HOLDOUT.to_string(),
        ));
    }
    let score = metrics::evaluate_revenue(&predicted, actual)?;
    Ok(Scored {
        predictor: predictor.to_string(),
        target: REVENUE_TARGET,
        scored_users: Some(score.users),
        outcome: Outcome::Revenue(score),
        fitted_users: Some(fitted_users),
        calibration: Vec::new(),
        deciles: Vec::new(),
        counts: None,
        ranking_only: None,
        customers_only: false,
    })
}
