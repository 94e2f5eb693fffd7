//! The revenue model: `p_purchase × scale × shrunk order value` (scored on the
//! holdout by [`Split::revenue_on_holdout`](super::Split::revenue_on_holdout)).

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use userlens_model::columns::USER_ID;

use super::data::{label_values, read_table};
use super::{
    AVG_ORDER_VALUE, FREQUENCY, PREDICTED_REVENUE, PROBABILITY, PURCHASED, REVENUE, Result,
    polars_err,
};

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
