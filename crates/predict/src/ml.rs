//! Machine-learning predictions on a time split: targets from the events, propensity
//! models (logistic regression and a bagged tree ensemble), a revenue model, and
//! their scores on a holdout.
//!
//! The time split: features are computed at a cutoff (`as_of - horizon`) and the
//! targets in `[cutoff, as_of)` ([`targets`], [`churn_labels`]). A [`Split`] holds
//! out a seeded, stratified share of those users; [`Split::backtest`] fits on the
//! rest and scores the holdout; [`Split::choose`] picks the model kind on an inner
//! split of the training users, never the holdout; [`Split::refit`] (or
//! [`fit_propensity`], from the tables) then refits on every user and
//! [`Propensity::predict`] scores the features computed at the as-of date.
//!
//! Preparation, fitted on the training rows and reused unchanged when predicting:
//! missing and non-finite values take the training median, heavy-tailed features
//! (counts and money, skewed users-table attributes: [`userlens_model::takes_log`])
//! go through the signed `log1p`, and every feature is standardised (constant ones
//! are left centred).
//!
//! * [`ModelKind::Logistic`]: L2-penalised logistic regression, fitted by Newton's
//!   method (`ml/newton.rs`, which says why not linfa-logistic's L-BFGS).
//! * [`ModelKind::Tree`]: CART trees (Gini) grown on binned features
//!   (`ml/forest.rs`) from seeded bootstrap samples, with class weights that balance
//!   positives and negatives so splits follow the rare class. A leaf's
//!   probability is the positive share of the tree's bag rows that reached it,
//!   smoothed towards the sample's base rate: `(positives + base) / (rows + 1)`. The
//!   ensemble averages the trees' leaf probabilities. With `trees = 1` the single
//!   tree is fitted on every row, or on a sample of 10,000 of them where there are
//!   more.
//! * Revenue ([`fit_revenue`]): `predicted_revenue = p_purchase × k × aov`, where
//!   `aov` is the user's average order value shrunk towards the population's by one
//!   order's weight, `(frequency × avg_order_value + pop_aov) / (frequency + 1)`, and
//!   `k` is the ratio of the actual revenue of the training buyers to their `aov`
//!   (it absorbs repeat orders within the horizon). One fitted number, no
//!   iterations, nothing that can diverge.
//!
//! Everything is deterministic for a given seed: rows are sorted by `user_id`, the
//! split and every bootstrap draw from seeded xoshiro generators, and the trees are
//! fitted in parallel but combined in order.
//!
//! ```
//! use userlens_predict::ml::{MlParams, ModelKind};
//! let params: MlParams = toml::from_str("models = [\"tree\"]").unwrap();
//! let checked = params.check().unwrap();
//! assert_eq!(checked.models, [ModelKind::Tree]);
//! assert_eq!(checked.churn_window_days, 7);
//! ```

mod data;
pub(crate) use data::{read_ids, read_numeric, sorted_order};
mod forest;
mod labels;
mod newton;
mod revenue;
mod score;
mod split;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::ops::Deref;

use polars::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use userlens_model::columns::USER_ID;

use crate::metrics::Eligibility;

pub(crate) use crate::error::polars_err;
pub use crate::error::{Error, Result};
pub use data::Table;
use data::{Scaler, Values, label_values, read_table};
use forest::Forest;
pub use labels::{
    ACTIVE, CHURNED, PURCHASED, REVENUE, churn_labels, targets, targets_and_churn_sorted,
};
pub use revenue::{RevenueModel, fit_revenue};
pub use split::{Backtest, Inner, Split};

/// Output column of [`Propensity::predict`].
pub const PROBABILITY: &str = "probability";
/// Output column of [`RevenueModel::predict`].
pub const PREDICTED_REVENUE: &str = "predicted_revenue";
/// Feature read by the revenue model: number of purchases.
pub const FREQUENCY: &str = "frequency";
/// Feature read by the revenue model: mean purchase value.
pub const AVG_ORDER_VALUE: &str = "avg_order_value";

/// Which propensity model to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// L2-penalised logistic regression on standardised features.
    Logistic,
    /// Bagged decision trees with leaf probabilities.
    Tree,
}

impl ModelKind {
    /// The name used in pipeline files and outputs.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Logistic => "logistic",
            ModelKind::Tree => "tree",
        }
    }
}

/// ML parameters as written in a pipeline file (`[stages.predict.with.ml]`). The
/// horizon is the stage's `horizon_days`, not repeated here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MlParams {
    /// Days of the churn window, before and after the cutoff (default 7, as GA4).
    pub churn_window_days: u32,
    /// Share of users held out for scoring (default 0.25).
    pub holdout_fraction: f64,
    /// Models to fit (default both).
    pub models: Vec<ModelKind>,
    /// L2 penalty of the logistic regression (default 1.0).
    pub alpha: f64,
    /// Iteration limit of the logistic regression's Newton steps (default 100; a fit
    /// takes about ten).
    pub max_iterations: u64,
    /// The logistic regression trains on a seeded sample of at most this many users
    /// (default 20000): a few dozen coefficients are settled
    /// long before that, and the fit time stays flat as users grow. 0 = every user
    /// (docs/benchmarks.md).
    pub max_training_rows: usize,
    /// Depth limit of each tree (default 6).
    pub max_depth: usize,
    /// Minimum (class-weighted) training rows in a tree leaf (default 20).
    pub min_leaf: usize,
    /// Trees in the ensemble (default 25; 1 = a single tree on all rows).
    pub trees: usize,
    /// Minimum positives in the holdout to report a model's scores and to apply it
    /// (default 100).
    pub min_positives: usize,
    /// Minimum negatives in the holdout to report a model's scores and to apply it
    /// (default 100).
    pub min_negatives: usize,
}

impl Default for MlParams {
    fn default() -> Self {
        MlParams {
            churn_window_days: 7,
            holdout_fraction: 0.25,
            models: vec![ModelKind::Logistic, ModelKind::Tree],
            alpha: 1.0,
            max_iterations: 100,
            max_training_rows: 20_000,
            max_depth: 6,
            min_leaf: 20,
            trees: 25,
            min_positives: 100,
            min_negatives: 100,
        }
    }
}

fn out_of_range<T: std::fmt::Display>(name: &str, value: T, range: &str) -> Error {
    Error::Params(format!("`{name}` is {value}, it must be {range}"))
}

impl MlParams {
    /// Validates the parameters before any data is read.
    pub fn check(&self) -> Result<CheckedMlParams> {
        if !(1..=365).contains(&self.churn_window_days) {
            return Err(out_of_range(
                "churn_window_days",
                self.churn_window_days,
                "between 1 and 365",
            ));
        }
        if !(self.holdout_fraction > 0.0 && self.holdout_fraction < 1.0) {
            return Err(out_of_range(
                "holdout_fraction",
                self.holdout_fraction,
                "between 0 and 1 (exclusive)",
            ));
        }
        if self.models.is_empty() {
            return Err(Error::Params(
                "`models` is empty: name `logistic`, `tree` or both".into(),
            ));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(out_of_range("alpha", self.alpha, "a positive number"));
        }
        if !(1..=100_000).contains(&self.max_iterations) {
            return Err(out_of_range(
                "max_iterations",
                self.max_iterations,
                "between 1 and 100000",
            ));
        }
        if !(1..=30).contains(&self.max_depth) {
            return Err(out_of_range(
                "max_depth",
                self.max_depth,
                "between 1 and 30",
            ));
        }
        if !(1..=100_000).contains(&self.min_leaf) {
            return Err(out_of_range(
                "min_leaf",
                self.min_leaf,
                "between 1 and 100000",
            ));
        }
        if !(1..=500).contains(&self.trees) {
            return Err(out_of_range("trees", self.trees, "between 1 and 500"));
        }
        let mut checked = self.clone();
        checked.models.sort();
        checked.models.dedup();
        Ok(CheckedMlParams(checked))
    }
}

/// Validated ML parameters (read through `Deref` to [`MlParams`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedMlParams(MlParams);

impl Deref for CheckedMlParams {
    type Target = MlParams;

    fn deref(&self) -> &MlParams {
        &self.0
    }
}

impl CheckedMlParams {
    /// The holdout gate.
    pub fn eligibility(&self) -> Eligibility {
        Eligibility {
            min_positives: self.min_positives,
            min_negatives: self.min_negatives,
        }
    }
}

/// Names of the numeric columns of a features table other than `user_id`, in table
/// order: the default feature list for the models.
pub fn numeric_features(features: &DataFrame) -> Vec<String> {
    features
        .columns()
        .iter()
        .filter(|c| c.name().as_str() != USER_ID)
        .filter(|c| c.dtype().is_primitive_numeric() || c.dtype().is_bool())
        .map(|c| c.name().to_string())
        .collect()
}

/// Training rows: features joined with labels, sorted by `user_id`. The columns are
/// those of a shared [`Table`], borrowed, with the table row of each training row
/// when only some of its users have a label.
pub(crate) struct Training<'t> {
    pub(crate) ids: Cow<'t, [&'t str]>,
    /// Column-major raw features, NaN where missing.
    columns: Cow<'t, [Values<'t>]>,
    /// The row of `columns` behind each training row (`None`: the same row).
    table_rows: Option<Vec<usize>>,
    pub(crate) labels: Vec<bool>,
}

impl Training<'_> {
    /// The rows of the columns behind training rows `rows`.
    fn table_rows<'r>(&self, rows: &'r [usize]) -> Cow<'r, [usize]> {
        match &self.table_rows {
            None => Cow::Borrowed(rows),
            Some(table_rows) => Cow::Owned(rows.iter().map(|&r| table_rows[r]).collect()),
        }
    }

    /// Row-major prepared matrix of training rows `rows`.
    pub(crate) fn prepared(&self, scalers: &[Scaler], rows: &[usize]) -> Vec<f64> {
        prepared(scalers, &self.columns, &self.table_rows(rows))
    }

    /// The same rows with only the columns at `keep`, borrowed: no copy of them.
    pub(crate) fn select(&self, keep: &[usize]) -> Training<'_> {
        Training {
            ids: Cow::Borrowed(&self.ids[..]),
            columns: Cow::Owned(
                keep.iter()
                    .map(|&j| Cow::Borrowed(&self.columns[j][..]))
                    .collect(),
            ),
            table_rows: self.table_rows.clone(),
            labels: self.labels.clone(),
        }
    }
}

/// Reads `feature_names` of `features` and joins them with the `target` labels.
pub(crate) fn training_set<'t>(
    features: &'t DataFrame,
    labels: &DataFrame,
    target: &str,
    feature_names: &[String],
) -> Result<Training<'t>> {
    if feature_names.is_empty() {
        return Err(Error::NoFeatures);
    }
    let table = read_table(features, "features", feature_names)?;
    training_from(Cow::Owned(table), labels, target)
}

/// [`training_set`] on features already read: never a copy of them.
pub(crate) fn training_of<'t>(
    table: &'t Table<'t>,
    labels: &DataFrame,
    target: &str,
) -> Result<Training<'t>> {
    if table.columns.is_empty() {
        return Err(Error::NoFeatures);
    }
    training_from(Cow::Borrowed(table), labels, target)
}

/// The users of `table` with a `target` label: the table itself (owned or borrowed),
/// read through the labelled users' rows when not every user has one.
fn training_from<'t>(
    table: Cow<'t, Table<'t>>,
    labels: &DataFrame,
    target: &str,
) -> Result<Training<'t>> {
    let (rows, y) = labelled(&table, labels, target)?;
    let every = rows.len() == table.ids.len();
    let (ids, columns) = match table {
        Cow::Borrowed(t) => (Cow::Borrowed(&t.ids[..]), Cow::Borrowed(&t.columns[..])),
        Cow::Owned(t) => (Cow::Owned(t.ids), Cow::Owned(t.columns)),
    };
    let ids = if every {
        ids
    } else {
        rows.iter().map(|&r| ids[r]).collect()
    };
    Ok(Training {
        ids,
        columns,
        table_rows: (!every).then_some(rows),
        labels: y,
    })
}

/// The rows of `table` with a `target` label, and their labels.
fn labelled(table: &Table, labels: &DataFrame, target: &str) -> Result<(Vec<usize>, Vec<bool>)> {
    let values = label_values(labels, "labels", target)?;
    let mut rows = Vec::new();
    let mut y = Vec::new();
    for (row, id) in table.ids.iter().enumerate() {
        let Some(&value) = values.get(id) else {
            continue;
        };
        let label = if value == 1.0 {
            true
        } else if value == 0.0 {
            false
        } else {
            return Err(Error::BadLabel {
                target: target.to_string(),
                user: id.to_string(),
                value: value.to_string(),
            });
        };
        rows.push(row);
        y.push(label);
    }
    Ok((rows, y))
}

/// The fitted model behind a [`Propensity`].
#[derive(Debug, Clone, PartialEq)]
enum Model {
    Logistic {
        intercept: f64,
        coefficients: Vec<f64>,
    },
    Forest(Forest),
}

/// A fitted propensity model: preparation plus model, ready to score users.
#[derive(Debug, Clone, PartialEq)]
pub struct Propensity {
    kind: ModelKind,
    target: String,
    scalers: Vec<Scaler>,
    model: Model,
    training_users: usize,
    positives: usize,
}

/// A fitted model, or why none could be fitted.
#[derive(Debug, Clone, PartialEq)]
pub enum Fit {
    /// The model.
    Fitted(Propensity),
    /// No model, with a reason a person can read.
    Skipped {
        /// E.g. "all 500 training users are negative for `purchased`".
        reason: String,
    },
}

/// Why the training rows cannot be fitted, if they cannot.
fn skip_reason(target: &str, labels: &[bool]) -> Option<String> {
    let positives = labels.iter().filter(|&&y| y).count();
    let n = labels.len();
    if n == 0 {
        Some(format!(
            "no users have both features and a `{target}` label"
        ))
    } else if positives == 0 {
        Some(format!(
            "all {n} training users are negative for `{target}` (no positive label to learn from)"
        ))
    } else if positives == n {
        Some(format!(
            "all {n} training users are positive for `{target}` (no negative label to learn from)"
        ))
    } else {
        None
    }
}

/// How a skipped model's reason in `models.json` begins when its holdout could not
/// score it, so it gives no values.
pub const NOT_APPLIED: &str = "not applied";

/// Tolerance of the logistic fit on the largest gradient component, per training
/// row. Newton's steps converge quadratically, so a tolerance far below
/// scikit-learn's (1e-4 on its mean loss) costs one step more, not dozens.
const GRADIENT_TOLERANCE_PER_ROW: f64 = 1e-8;

/// `size` of `rows`, drawn without replacement from a stream seeded with `seed`,
/// in their original order.
fn sample_sorted(rows: &[usize], size: usize, seed: u64) -> Vec<usize> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5A4D_504C_4520_524F);
    let mut positions: Vec<usize> = (0..rows.len()).collect();
    let (chosen, _) = positions.partial_shuffle(&mut rng, size);
    chosen.sort_unstable();
    chosen.iter().map(|&p| rows[p]).collect()
}

/// Row-major prepared matrix of `rows` (indices into `columns`).
pub(crate) fn prepared<C: AsRef<[f64]>>(
    scalers: &[Scaler],
    columns: &[C],
    rows: &[usize],
) -> Vec<f64> {
    let columns: Vec<&[f64]> = columns.iter().map(AsRef::as_ref).collect();
    let mut x = Vec::with_capacity(rows.len() * scalers.len());
    for &r in rows {
        for (scaler, column) in scalers.iter().zip(&columns) {
            x.push(scaler.apply(column[r]));
        }
    }
    x
}

/// Fits `kind` on `rows` of a training set.
pub(crate) fn fit_rows(
    kind: ModelKind,
    training: &Training,
    target: &str,
    names: &[String],
    rows: &[usize],
    params: &CheckedMlParams,
    seed: u64,
) -> Result<Fit> {
    let sampled;
    let rows = if kind == ModelKind::Logistic
        && params.max_training_rows > 0
        && rows.len() > params.max_training_rows
    {
        sampled = sample_sorted(rows, params.max_training_rows, seed);
        sampled.as_slice()
    } else {
        rows
    };
    let y: Vec<bool> = rows.iter().map(|&r| training.labels[r]).collect();
    if rows.is_empty() && !training.labels.is_empty() {
        // The split held every labelled user out.
        let reason = format!(
            "the holdout takes all {} users with a `{target}` label, leaving none to train \
             on: lower `holdout_fraction`",
            training.labels.len()
        );
        return Ok(Fit::Skipped { reason });
    }
    if let Some(reason) = skip_reason(target, &y) {
        return Ok(Fit::Skipped { reason });
    }
    let (columns, rows) = (&training.columns, &*training.table_rows(rows));
    let scalers: Vec<Scaler> = names
        .iter()
        .zip(columns.iter())
        .map(|(name, column)| Scaler::fit(name, column, rows))
        .collect();
    let (n, d) = (rows.len(), names.len());
    let model = match kind {
        ModelKind::Logistic => {
            let x = prepared(&scalers, columns, rows);
            // The summed loss's gradient grows with n, so the tolerance is per row.
            let fitted = newton::fit(
                &x,
                n,
                d,
                &y,
                params.alpha,
                params.max_iterations,
                GRADIENT_TOLERANCE_PER_ROW * n as f64,
            )
            .ok_or_else(|| Error::Diverged {
                target: target.to_string(),
            })?;
            tracing::debug!(
                "predict: logistic for `{target}` on {n} x {d} in {} Newton steps",
                fitted.iterations
            );
            Model::Logistic {
                intercept: fitted.intercept,
                coefficients: fitted.coefficients,
            }
        }
        ModelKind::Tree => {
            // Binned a feature at a time from the columns: no n x d matrix.
            let column = |j: usize| -> Vec<f64> {
                let values: &[f64] = &columns[j];
                rows.iter().map(|&r| scalers[j].apply(values[r])).collect()
            };
            let forest = (scalers.len() == d)
                .then(|| Forest::fit(n, d, column, &y, params, seed))
                .flatten()
                .ok_or_else(|| Error::Tree {
                    target: target.to_string(),
                })?;
            Model::Forest(forest)
        }
    };
    Ok(Fit::Fitted(Propensity {
        kind,
        target: target.to_string(),
        scalers,
        model,
        training_users: n,
        positives: y.iter().filter(|&&v| v).count(),
    }))
}

/// Fits a propensity model on every user that has both features and a label:
/// `labels` holds `user_id` and the 0/1 (or boolean) column `target`; users without a
/// label are left out. All one class gives [`Fit::Skipped`], not an error.
pub fn fit_propensity(
    kind: ModelKind,
    train_features: &DataFrame,
    labels: &DataFrame,
    target: &str,
    feature_names: &[String],
    params: &CheckedMlParams,
    seed: u64,
) -> Result<Fit> {
    let training = training_set(train_features, labels, target, feature_names)?;
    let rows: Vec<usize> = (0..training.ids.len()).collect();
    fit_rows(kind, &training, target, feature_names, &rows, params, seed)
}

impl Propensity {
    /// The model kind.
    pub fn kind(&self) -> ModelKind {
        self.kind
    }

    /// The label column it predicts.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// What was fitted, for `models.json`.
    pub fn summary(&self) -> ModelSummary {
        let (intercept, coefficients, importance, trees) = match &self.model {
            Model::Logistic {
                intercept,
                coefficients,
            } => (Some(*intercept), Some(coefficients.as_slice()), None, None),
            Model::Forest(forest) => (
                None,
                None,
                Some(forest.importance.as_slice()),
                Some(forest.trees.len()),
            ),
        };
        let features = self
            .scalers
            .iter()
            .enumerate()
            .map(|(j, s)| FeatureSummary {
                name: s.name.clone(),
                log1p: s.log1p,
                median: s.median,
                mean: s.mean,
                std: s.std,
                coefficient: coefficients.map(|c| c[j]),
                importance: importance.map(|v| v[j]),
            })
            .collect();
        ModelSummary {
            kind: self.kind,
            target: self.target.clone(),
            training_users: self.training_users,
            positives: self.positives,
            intercept,
            trees,
            features,
        }
    }
}

/// A serialisable description of a fitted propensity model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// Model kind.
    pub kind: ModelKind,
    /// Label column.
    pub target: String,
    /// Users it was fitted on.
    pub training_users: usize,
    /// Positive labels among them.
    pub positives: usize,
    /// Intercept of the logistic regression.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub intercept: Option<f64>,
    /// Trees in the ensemble.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub trees: Option<usize>,
    /// Per feature: preparation and weight.
    pub features: Vec<FeatureSummary>,
}

/// One feature of a [`ModelSummary`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSummary {
    /// Column name.
    pub name: String,
    /// Whether the signed `log1p` was applied.
    pub log1p: bool,
    /// Training median of the raw values (imputed for missing ones).
    pub median: f64,
    /// Training mean after imputation and log.
    pub mean: f64,
    /// Training standard deviation after imputation and log (1 when constant).
    pub std: f64,
    /// Logistic coefficient per standard deviation.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub coefficient: Option<f64>,
    /// Tree ensemble: share of the total Gini decrease from splits on this feature.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub importance: Option<f64>,
}
