//! The time split of one target: training users and a held-out share, the
//! backtests on it, and the model choice on an inner split of the training users.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use polars::prelude::*;

use crate::metrics::{self, CalibrationBin, DecileLift, Evaluation};

use super::data::label_values;
use super::revenue::{order_values, revenue_model};
use super::{
    CheckedMlParams, Fit, ModelKind, REVENUE, Result, Table, Training, fit_rows, training_of,
};
use crate::error::scoring;

/// Indices of `labels` split into (train, holdout): a seeded shuffle within each
/// class, `round(fraction × class size)` of each class held out, both parts sorted.
pub(crate) fn stratified_split(
    labels: &[bool],
    fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut train = Vec::new();
    let mut holdout = Vec::new();
    for class in [false, true] {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        members.shuffle(&mut rng);
        let h = (members.len() as f64 * fraction).round() as usize;
        holdout.extend_from_slice(&members[..h.min(members.len())]);
        train.extend_from_slice(&members[h.min(members.len())..]);
    }
    train.sort_unstable();
    holdout.sort_unstable();
    (train, holdout)
}

/// Scores of one model on the holdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backtest {
    /// Model kind.
    pub kind: ModelKind,
    /// Label column.
    pub target: String,
    /// Training users of the split.
    pub train_users: usize,
    /// Users the model was fitted on: the training users, or a sample of them for
    /// a capped logistic fit; `None` when no model was fitted.
    pub fitted_users: Option<usize>,
    /// Users scored.
    pub holdout_users: usize,
    /// Scores, or why there are none.
    pub evaluation: Evaluation,
    /// Reliability bins (empty when not scored).
    pub calibration: Vec<CalibrationBin>,
    /// Lift by decile (empty when not scored).
    pub deciles: Vec<DecileLift>,
    /// The holdout's probabilities, in [`Split::holdout_ids`] order (empty when no
    /// model was fitted).
    #[serde(skip)]
    pub(crate) probabilities: Vec<f64>,
}

/// Mixed into the seed for the inner split of the training users.
const INNER_SPLIT: u64 = 0x494E_4E45_5253_504C;

/// One target's time split: the users with features and labels, and their seeded,
/// stratified split into training users and `holdout_fraction` held out. Built once
/// per target and shared by every predictor, so all are scored on the same users.
pub struct Split<'a> {
    pub(super) training: Training<'a>,
    pub(super) train: Vec<usize>,
    pub(super) holdout: Vec<usize>,
    pub(super) target: &'a str,
    pub(super) feature_names: &'a [String],
    /// The features of the model refitted for the as-of date: those of
    /// `feature_names` that the features at the as-of date also have.
    refit_names: &'a [String],
    pub(super) params: &'a CheckedMlParams,
    pub(super) seed: u64,
}

impl<'a> Split<'a> {
    /// Joins features read by [`Table::read`] (which several splits can share) to
    /// the `target` column of `labels` and splits the users. The models scored on
    /// the holdout use every column of `table`; [`Split::refit`] those named in
    /// `refit_names`.
    pub fn new(
        table: &'a Table,
        labels: &DataFrame,
        target: &'a str,
        refit_names: &'a [String],
        params: &'a CheckedMlParams,
        seed: u64,
    ) -> Result<Split<'a>> {
        let training = training_of(table, labels, target)?;
        let (train, holdout) = stratified_split(&training.labels, params.holdout_fraction, seed);
        Ok(Split {
            training,
            train,
            holdout,
            target,
            feature_names: &table.names,
            refit_names,
            params,
            seed,
        })
    }

    /// The held-out users, so other predictors can be scored on exactly them.
    pub fn holdout_ids(&self) -> Vec<String> {
        self.holdout
            .iter()
            .map(|&r| self.training.ids[r].to_string())
            .collect()
    }

    /// The held-out users' labels, in [`Split::holdout_ids`] order.
    pub fn holdout_labels(&self) -> Vec<bool> {
        self.holdout
            .iter()
            .map(|&r| self.training.labels[r])
            .collect()
    }

    /// Fits `kind` on every user of the split, training and held out: the model
    /// applied at the as-of date (what [`fit_propensity`](super::fit_propensity) fits, without reading the
    /// tables again); skipped when the holdout has too few users of a class for
    /// [`Split::backtest`] to score it.
    pub fn refit(&self, kind: ModelKind) -> Result<Fit> {
        // A model its holdout could not score is not applied: what it would say
        // could not be measured anywhere. (A class missing from every user is said
        // as such by the fit.)
        let positives = self.holdout_labels().iter().filter(|&&y| y).count();
        let negatives = self.holdout.len() - positives;
        let fittable = super::skip_reason(self.target, &self.training.labels).is_none();
        for (found, needed, class) in [
            (positives, self.params.min_positives.max(1), "positive"),
            (negatives, self.params.min_negatives.max(1), "negative"),
        ] {
            if fittable && found < needed {
                let users = if found == 1 { "user" } else { "users" };
                let lower = match found {
                    0 => String::new(),
                    _ => format!(" (a lower `ml.min_{class}s` scores and applies it on fewer)"),
                };
                return Ok(Fit::Skipped {
                    reason: format!(
                        "{}: only {found} {class} {users} for `{}` in the holdout, \
                         fewer than its score needs (`min_{class}s` = {needed}), so what it \
                         says could not be measured{lower}",
                        super::NOT_APPLIED,
                        self.target
                    ),
                });
            }
        }
        let rows: Vec<usize> = (0..self.training.ids.len()).collect();
        let keep: Vec<usize> = self
            .refit_names
            .iter()
            .filter_map(|name| self.feature_names.iter().position(|n| n == name))
            .collect();
        let names: Vec<String> = keep
            .iter()
            .map(|&j| self.feature_names[j].clone())
            .collect();
        if names.is_empty() {
            return Err(super::Error::NoFeatures);
        }
        fit_rows(
            kind,
            &self.training.select(&keep),
            self.target,
            &names,
            &rows,
            self.params,
            self.seed,
        )
    }

    /// Fits `kind` on the training users and scores the held-out ones, gated by
    /// `min_positives` / `min_negatives`.
    pub fn backtest(&self, kind: ModelKind) -> Result<Backtest> {
        let (training, holdout) = (&self.training, &self.holdout);
        let mut result = Backtest {
            kind,
            target: self.target.to_string(),
            train_users: self.train.len(),
            fitted_users: None,
            holdout_users: holdout.len(),
            evaluation: Evaluation::Skipped {
                reason: "the holdout is empty".into(),
            },
            calibration: Vec::new(),
            deciles: Vec::new(),
            probabilities: Vec::new(),
        };
        if holdout.is_empty() {
            return Ok(result);
        }
        let fitted = fit_rows(
            kind,
            training,
            self.target,
            self.feature_names,
            &self.train,
            self.params,
            self.seed,
        )?;
        let model = match fitted {
            Fit::Fitted(model) => model,
            Fit::Skipped { reason } => {
                result.evaluation = Evaluation::Skipped { reason };
                return Ok(result);
            }
        };
        let y = self.holdout_labels();
        let x = training.prepared(&model.scalers, holdout);
        let p = model.predict_prepared(&x, holdout.len());
        result.fitted_users = Some(model.training_users);
        let eligibility = self.params.eligibility();
        result.evaluation = metrics::evaluate(&p, &y, &eligibility).map_err(scoring)?;
        if matches!(result.evaluation, Evaluation::Scored(_)) {
            result.calibration = metrics::calibration(&p, &y).map_err(scoring)?;
            result.deciles = metrics::lift_by_decile(&p, &y).map_err(scoring)?;
        }
        result.probabilities = p;
        Ok(result)
    }

    /// The model kind to refit: the one of `kinds` with the best AUC on an inner
    /// split of the training users (each fitted on `1 - holdout_fraction` of them,
    /// scored on the rest), so the holdout is only ever scored, never chosen on.
    /// The first of `kinds` when none can be scored.
    pub fn choose(&self, kinds: &[ModelKind]) -> Result<ModelKind> {
        let Some(&first) = kinds.first() else {
            return Ok(ModelKind::Logistic);
        };
        if kinds.len() == 1 {
            return Ok(first);
        }
        let (fit, validate) = self.inner_rows();
        let y: Vec<bool> = validate.iter().map(|&r| self.training.labels[r]).collect();
        let mut best: Option<(ModelKind, f64)> = None;
        for &kind in kinds {
            let model = match fit_rows(
                kind,
                &self.training,
                self.target,
                self.feature_names,
                &fit,
                self.params,
                self.seed,
            )? {
                Fit::Fitted(model) => model,
                Fit::Skipped { .. } => continue,
            };
            let x = self.training.prepared(&model.scalers, &validate);
            let p = model.predict_prepared(&x, validate.len());
            // One class (or no user) among the validation users: nothing to rank.
            let Ok(auc) = metrics::auc(&p, &y) else {
                continue;
            };
            tracing::debug!(
                "predict: {} for `{}` scores AUC {auc:.4} on the inner split",
                kind.name(),
                self.target
            );
            if best.is_none_or(|(_, top)| auc > top) {
                best = Some((kind, auc));
            }
        }
        Ok(best.map_or(first, |(kind, _)| kind))
    }

    /// The inner split of the training users that [`Split::choose`] scores on:
    /// (fitted, validated) rows.
    fn inner_rows(&self) -> (Vec<usize>, Vec<usize>) {
        let labels: Vec<bool> = self
            .train
            .iter()
            .map(|&r| self.training.labels[r])
            .collect();
        let (fit, validate) = stratified_split(
            &labels,
            self.params.holdout_fraction,
            self.seed ^ INNER_SPLIT,
        );
        (
            fit.iter().map(|&i| self.train[i]).collect(),
            validate.iter().map(|&i| self.train[i]).collect(),
        )
    }

    /// `kind` and the revenue model fitted on the inner split's first part and
    /// applied to its validation users, for choices that must not read the holdout;
    /// `None` when no model can be fitted there.
    pub fn inner(
        &self,
        kind: ModelKind,
        features: &DataFrame,
        targets: &DataFrame,
    ) -> Result<Option<Inner>> {
        let (fit, validate) = self.inner_rows();
        let model = match fit_rows(
            kind,
            &self.training,
            self.target,
            self.feature_names,
            &fit,
            self.params,
            self.seed,
        )? {
            Fit::Fitted(model) => model,
            Fit::Skipped { .. } => return Ok(None),
        };
        let x = self.training.prepared(&model.scalers, &validate);
        let probabilities = model.predict_prepared(&x, validate.len());
        let (revenue, actual_revenue) =
            self.revenue_between(features, targets, &fit, &validate, &probabilities)?;
        Ok(Some(Inner {
            ids: validate
                .iter()
                .map(|&r| self.training.ids[r].to_string())
                .collect(),
            labels: validate.iter().map(|&r| self.training.labels[r]).collect(),
            probabilities,
            revenue,
            actual_revenue,
        }))
    }

    /// The revenue model fitted on the training users (their order values in
    /// `features` and revenue in `targets`) and applied to the held-out ones with
    /// their purchase `probabilities` ([`Split::holdout_ids`] order): the predicted
    /// and the actual revenue of each held-out user.
    pub fn revenue_on_holdout(
        &self,
        features: &DataFrame,
        targets: &DataFrame,
        probabilities: &[f64],
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        self.revenue_between(features, targets, &self.train, &self.holdout, probabilities)
    }

    /// The revenue model fitted on rows `fit` and applied to rows `apply` with their
    /// purchase `probabilities`: predicted and actual revenue of each `apply` row.
    fn revenue_between(
        &self,
        features: &DataFrame,
        targets: &DataFrame,
        fit: &[usize],
        apply: &[usize],
        probabilities: &[f64],
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let values = order_values(features)?;
        let revenue = label_values(targets, "targets", REVENUE)?;
        let index = values.row_of_id();
        let ids = &self.training.ids;
        let train: Vec<usize> = fit
            .iter()
            .filter_map(|&r| index.get(ids[r]).copied())
            .collect();
        let bought: foldhash::HashSet<usize> = fit
            .iter()
            .filter(|&&r| self.training.labels[r])
            .filter_map(|&r| index.get(ids[r]).copied())
            .collect();
        let model = revenue_model(&values, &train, |i| {
            bought
                .contains(&i)
                .then(|| revenue.get(values.ids[i]).copied().unwrap_or(0.0))
        });
        let mut predicted = Vec::with_capacity(apply.len());
        let mut actual = Vec::with_capacity(apply.len());
        for (&r, &p) in apply.iter().zip(probabilities) {
            let (frequency, aov) = index
                .get(ids[r])
                .map_or((0.0, 0.0), |&i| (values.frequency[i], values.aov[i]));
            predicted.push(model.predict_one(p, frequency, aov));
            actual.push(revenue.get(ids[r]).copied().unwrap_or(0.0));
        }
        Ok((predicted, actual))
    }
}

/// What one model predicts for the validation users of a [`Split`]'s inner split.
#[derive(Debug, Clone, PartialEq)]
pub struct Inner {
    /// Validation users, ascending.
    pub ids: Vec<String>,
    /// Their labels.
    pub labels: Vec<bool>,
    /// Their probabilities of the target.
    pub probabilities: Vec<f64>,
    /// The revenue model's prediction for each (meaningful for the purchase target).
    pub revenue: Vec<f64>,
    /// Their revenue in the horizon.
    pub actual_revenue: Vec<f64>,
}
