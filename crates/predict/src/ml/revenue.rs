//! The revenue model: `p_purchase × scale × shrunk order value`, and its backtest.

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use userlens_model::columns::USER_ID;

use crate::metrics::{self, RegressionScore};

use super::data::{label_values, read_table};
use super::split::stratified_split;
use super::{
    AVG_ORDER_VALUE, CheckedMlParams, FREQUENCY, Fit, ModelKind, PREDICTED_REVENUE, PROBABILITY,
    PURCHASED, REVENUE, Result, fit_rows, polars_err, training_set,
};
use crate::error::scoring;

/// The revenue model of the module docs: `p_purchase × scale × shrunk aov`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevenueModel {
    /// Population order value: total spend over total purchases in the training
    /// features.
    pub population_aov: f64,
    /// Ratio of the training buyers' revenue in the horizon to their shrunk order
    /// value.
    pub scale: f64,
    /// Training users with a purchase in the horizon.
    pub buyers: usize,
}

/// Reads `frequency` and `avg_order_value` and returns each user's shrunk order
/// value given the population's.
pub(crate) struct OrderValues<'a> {
    pub(crate) ids: Vec<&'a str>,
    pub(crate) frequency: Vec<f64>,
    pub(crate) aov: Vec<f64>,
}

impl OrderValues<'_> {
    /// The row of each user id.
    pub(crate) fn row_of_id(&self) -> foldhash::HashMap<&str, usize> {
        (self.ids.iter().enumerate())
            .map(|(i, &id)| (id, i))
            .collect()
    }
}

pub(crate) fn order_values(features: &DataFrame) -> Result<OrderValues<'_>> {
    let names = [FREQUENCY.to_string(), AVG_ORDER_VALUE.to_string()];
    let table = read_table(features, "features", &names)?;
    let clean = |v: &f64| if v.is_finite() { v.max(0.0) } else { 0.0 };
    Ok(OrderValues {
        ids: table.ids,
        frequency: table.columns[0].iter().map(clean).collect(),
        aov: table.columns[1]
            .iter()
            .map(|v| if v.is_finite() { *v } else { 0.0 })
            .collect(),
    })
}

fn shrunk(frequency: f64, aov: f64, population: f64) -> f64 {
    (frequency * aov + population) / (frequency + 1.0)
}

/// The revenue model fitted on users `rows` of `values`; `revenue_of(row)` is the
/// revenue in the horizon of a user who bought in it, `None` for one who did not.
pub(crate) fn revenue_model(
    values: &OrderValues<'_>,
    rows: &[usize],
    revenue_of: impl Fn(usize) -> Option<f64>,
) -> RevenueModel {
    let orders: f64 = rows.iter().map(|&i| values.frequency[i]).sum();
    let spend: f64 = rows
        .iter()
        .map(|&i| values.frequency[i] * values.aov[i])
        .sum();
    let population_aov = if orders > 0.0 { spend / orders } else { 0.0 };
    let (mut actual, mut expected, mut buyers) = (0.0, 0.0, 0usize);
    for &i in rows {
        if let Some(revenue) = revenue_of(i) {
            actual += revenue;
            expected += shrunk(values.frequency[i], values.aov[i], population_aov);
            buyers += 1;
        }
    }
    let scale = if expected > 0.0 && actual.is_finite() {
        (actual / expected).max(0.0)
    } else {
        0.0
    };
    RevenueModel {
        population_aov,
        scale,
        buyers,
    }
}

/// Fits the revenue model on features at the cutoff and [`targets`](super::targets) in the horizon
/// (`user_id`, `purchased`, `revenue`); users without targets are left out.
pub fn fit_revenue(train_features: &DataFrame, targets: &DataFrame) -> Result<RevenueModel> {
    let values = order_values(train_features)?;
    let purchased = label_values(targets, "targets", PURCHASED)?;
    let revenue = label_values(targets, "targets", REVENUE)?;
    let rows: Vec<usize> = (0..values.ids.len())
        .filter(|&i| purchased.contains_key(values.ids[i]))
        .collect();
    Ok(revenue_model(&values, &rows, |i| {
        let id = &values.ids[i];
        (purchased.get(id) == Some(&1.0)).then(|| revenue.get(id).copied().unwrap_or(0.0))
    }))
}

impl RevenueModel {
    /// Predicted revenue in the horizon for each user of `features` that has a
    /// purchase probability (`user_id`, `probability`): `user_id`,
    /// `predicted_revenue` (never negative), sorted by `user_id`.
    pub fn predict(&self, features: &DataFrame, probabilities: &DataFrame) -> Result<DataFrame> {
        let values = order_values(features)?;
        let p = label_values(probabilities, "probabilities", PROBABILITY)?;
        let mut ids = Vec::new();
        let mut out = Vec::new();
        for (i, &id) in values.ids.iter().enumerate() {
            if let Some(&prob) = p.get(id) {
                ids.push(id);
                out.push(self.predict_one(prob, values.frequency[i], values.aov[i]));
            }
        }
        DataFrame::new(
            ids.len(),
            vec![
                Column::new(USER_ID.into(), ids),
                Column::new(PREDICTED_REVENUE.into(), out),
            ],
        )
        .map_err(polars_err("build the revenue predictions table"))
    }

    /// [`RevenueModel::predict`] for `users` with purchase probabilities
    /// `probabilities`, in their order: `None` for a user `features` does not have.
    /// No table of ids is built when `features` lists `users` in their order.
    pub fn predict_users(
        &self,
        features: &DataFrame,
        users: &[&str],
        probabilities: &[f64],
    ) -> Result<Vec<Option<f64>>> {
        let values = order_values(features)?;
        let at = |row: usize, p: f64| self.predict_one(p, values.frequency[row], values.aov[row]);
        if values.ids == users {
            return Ok(probabilities
                .iter()
                .enumerate()
                .map(|(row, &p)| Some(at(row, p)))
                .collect());
        }
        let row_of_id = values.row_of_id();
        Ok(users
            .iter()
            .zip(probabilities)
            .map(|(&user, &p)| row_of_id.get(user).map(|&row| at(row, p)))
            .collect())
    }

    pub(crate) fn predict_one(&self, probability: f64, frequency: f64, aov: f64) -> f64 {
        let v =
            probability.clamp(0.0, 1.0) * self.scale * shrunk(frequency, aov, self.population_aov);
        if v.is_finite() { v.max(0.0) } else { 0.0 }
    }
}

/// Revenue error on the holdout, next to a constant baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevenueBacktest {
    /// Model used for the purchase probability.
    pub kind: ModelKind,
    /// Users fitted on.
    pub train_users: usize,
    /// Users scored.
    pub holdout_users: usize,
    /// Error of `predicted_revenue`; `None` when the holdout is empty.
    pub score: Option<RegressionScore>,
    /// Error of predicting the training users' mean revenue for everyone.
    pub baseline: Option<RegressionScore>,
    /// Why the purchase model was not fitted (every prediction is then 0).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
}

/// Holds out the same users as a [`Split`](super::Split) with the same seed (stratified on
/// `purchased`), fits the purchase model and the revenue model on the rest and
/// scores `predicted_revenue` against the actual revenue.
pub fn backtest_revenue(
    kind: ModelKind,
    features: &DataFrame,
    targets: &DataFrame,
    feature_names: &[String],
    params: &CheckedMlParams,
    seed: u64,
) -> Result<RevenueBacktest> {
    let training = training_set(features, targets, PURCHASED, feature_names)?;
    let revenue_map = label_values(targets, "targets", REVENUE)?;
    let revenue: Vec<f64> = training
        .ids
        .iter()
        .map(|id| revenue_map.get(id).copied().unwrap_or(0.0))
        .collect();
    let (train, holdout) = stratified_split(&training.labels, params.holdout_fraction, seed);
    let fit = fit_rows(
        kind,
        &training,
        PURCHASED,
        feature_names,
        &train,
        params,
        seed,
    )?;
    let mut result = RevenueBacktest {
        kind,
        train_users: train.len(),
        holdout_users: holdout.len(),
        score: None,
        baseline: None,
        note: None,
    };
    if holdout.is_empty() || train.is_empty() {
        return Ok(result);
    }
    let values = order_values(features)?;
    let index = values.row_of_id();
    let at = |rows: &[usize]| -> Vec<usize> {
        rows.iter()
            .map(|&r| index.get(training.ids[r]).copied().unwrap_or(0))
            .collect()
    };
    let (train_v, holdout_v) = (at(&train), at(&holdout));
    // Row of `values` -> row of `training`, for the buyers' revenue.
    let back: foldhash::HashMap<usize, usize> =
        train_v.iter().copied().zip(train.iter().copied()).collect();
    let model = revenue_model(&values, &train_v, |i| {
        back.get(&i)
            .filter(|&&r| training.labels[r])
            .map(|&r| revenue[r])
    });
    let p = match fit {
        Fit::Fitted(m) => {
            let x = training.prepared(&m.scalers, &holdout);
            m.predict_prepared(&x, holdout.len())
        }
        Fit::Skipped { reason } => {
            result.note = Some(reason);
            vec![0.0; holdout.len()]
        }
    };
    let predicted: Vec<f64> = p
        .iter()
        .zip(&holdout_v)
        .map(|(&prob, &i)| model.predict_one(prob, values.frequency[i], values.aov[i]))
        .collect();
    let actual_holdout: Vec<f64> = holdout.iter().map(|&r| revenue[r]).collect();
    let mean_train = train.iter().map(|&r| revenue[r]).sum::<f64>() / train.len() as f64;
    result.score =
        Some(metrics::evaluate_regression(&predicted, &actual_holdout).map_err(scoring)?);
    let baseline = vec![mean_train; holdout.len()];
    result.baseline =
        Some(metrics::evaluate_regression(&baseline, &actual_holdout).map_err(scoring)?);
    Ok(result)
}
