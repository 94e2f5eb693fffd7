//! Each target's predictors backtested on one holdout, and the chosen ML model
//! refitted and applied at the as-of date.

use foldhash::HashSet;
use polars::prelude::*;

use crate::metrics::{self, Evaluation};
use crate::ml::{self, Fit};
use crate::rules;
use crate::stats::{self, Summary};

use super::counts::{CountFits, alive_probabilities, complete, purchase_probabilities};
use super::{
    CheckedPredictParams, Outcome, REVENUE, REVENUE_COUNTS, REVENUE_ML, REVENUE_TARGET, Result,
    Scored, Target, score, skipped, skipped_row, timed, values_of,
};

/// What both targets read.
pub(super) struct Shared<'a> {
    pub(super) features_cutoff: &'a DataFrame,
    /// The features at the as-of date, whose rows are [`Shared::users`].
    pub(super) features_now: &'a DataFrame,
    /// The model features at the cutoff, read once for every target (empty when
    /// `short_history` leaves no target to split).
    pub(super) table_cutoff: &'a ml::Table<'a>,
    /// The features of the models refitted for the as-of date ([`ml::Split::new`]).
    pub(super) refit_names: &'a [String],
    pub(super) params: &'a CheckedPredictParams,
    pub(super) summary_cutoff: &'a stats::Result<Summary>,
    pub(super) fits_cutoff: Option<&'a CountFits>,
    /// The rules at the cutoff ([`rules::apply_each`]): those it could evaluate, and
    /// why not each of the others.
    pub(super) rules_at_cutoff: &'a (
        std::result::Result<DataFrame, rules::Error>,
        Vec<(String, rules::Error)>,
    ),
    pub(super) short_history: bool,
    pub(super) horizon_units: f64,
    pub(super) users: &'a [&'a str],
    pub(super) seed: u64,
}

impl Shared<'_> {
    /// What `model` predicts for each of `users` at the as-of date.
    fn propensity(&self, model: &ml::Propensity) -> Result<Vec<Option<f64>>> {
        let predicted = model.predict_frame(self.features_now)?;
        Ok(predicted.into_iter().map(Some).collect())
    }
}

/// One target's predictors scored on the holdout, and its best ML model refitted on
/// every labelled user and applied at the as-of date.
pub(super) struct TargetOutcome {
    pub(super) scored: Vec<Scored>,
    /// The refitted model's `models.json` entry, or why there is none.
    pub(super) model: serde_json::Value,
    /// Propensity of every user, in `Shared::users` order.
    pub(super) propensity: Vec<Option<f64>>,
    /// The chosen model's name and what it predicted on the holdout and on the
    /// inner split, for the columns built from it; `None` without a split.
    pub(super) backtested: Option<Backtested>,
}

/// The chosen ML model of a target on its holdout and inner split.
pub(super) struct Backtested {
    /// The chosen model kind.
    pub(super) kind: ml::ModelKind,
    /// Held-out users, ascending, and their labels.
    pub(super) ids: Vec<String>,
    pub(super) y: Vec<bool>,
    /// The chosen model's probabilities on the holdout (`None` when not fitted).
    pub(super) probabilities: Option<Vec<f64>>,
    /// Users the chosen model was trained on for the backtest.
    pub(super) train_users: usize,
    /// The revenue model's (predicted, actual) revenue on the holdout (purchase only).
    pub(super) revenue: Option<PredictedAndActual>,
    /// The chosen model on the inner split of the training users.
    pub(super) inner: Option<ml::Inner>,
}

/// Backtests every predictor of `target` against `labels`, then refits the ML model
/// chosen on the training users alone ([`ml::Split::choose`]).
pub(super) fn for_target(
    target: Target,
    labels: &DataFrame,
    shared: &Shared,
) -> Result<TargetOutcome> {
    let params = shared.params;
    let p = &params.params;
    let features_cutoff = shared.features_cutoff;
    let mut scored = Vec::new();
    if shared.short_history {
        let reason = super::short_history_reason(p.horizon_days);
        for predictor in ["bg/nbd", "pareto/nbd", "logistic", "tree"] {
            scored.push(skipped(predictor, target, reason.clone()));
        }
        for (rule, _) in params.rules.iter().filter(|(_, t)| *t == target) {
            let predictor = format!("rule:{}", rule.name());
            scored.push(skipped(&predictor, target, reason.clone()));
        }
        if target == Target::Purchase {
            for predictor in [REVENUE, REVENUE_ML, REVENUE_COUNTS] {
                scored.push(skipped_row(predictor, REVENUE_TARGET, reason.clone()));
            }
        }
        return Ok(TargetOutcome {
            scored,
            model: serde_json::json!({ "skipped": reason }),
            propensity: vec![None; shared.users.len()],
            backtested: None,
        });
    }
    // A split that cannot be made (no features, a label that is not 0/1) fails the
    // stage: the refit would read the same users.
    let split = ml::Split::new(
        shared.table_cutoff,
        labels,
        target.label(),
        shared.refit_names,
        &params.ml,
        shared.seed,
    )?;
    let (holdout, y) = (split.holdout_ids(), split.holdout_labels());

    // The model to refit is chosen on the training users before any is scored on
    // the holdout.
    let kind = timed(&format!("model choice for {}", target.name()), || {
        split.choose(&params.ml.models)
    })?;
    let mut backtests = Vec::with_capacity(params.ml.models.len());
    for &kind_scored in &params.ml.models {
        let backtest = timed(
            &format!("{} backtest of {}", kind_scored.name(), target.name()),
            || split.backtest(kind_scored),
        )?;
        let scored_users =
            matches!(backtest.evaluation, Evaluation::Scored(_)).then_some(backtest.holdout_users);
        scored.push(Scored {
            predictor: kind_scored.name().to_string(),
            target: target.name(),
            outcome: backtest.evaluation.clone().into(),
            fitted_users: backtest.fitted_users,
            scored_users,
            calibration: backtest.calibration.clone(),
            deciles: backtest.deciles.clone(),
            counts: None,
            ranking_only: None,
            customers_only: false,
        });
        backtests.push(backtest);
    }
    let chosen = backtests.iter().find(|b| b.kind == kind);
    let on_holdout = Holdout {
        target,
        ids: &holdout,
        y: &y,
        shared,
    };
    on_holdout.score_statistical(&mut scored, &backtests)?;
    on_holdout.score_rules(&mut scored)?;
    let mut backtested = Backtested {
        kind,
        ids: holdout.clone(),
        y: y.clone(),
        probabilities: None,
        train_users: 0,
        revenue: None,
        inner: None,
    };
    if let Some(backtest) = chosen
        && backtest.fitted_users.is_some()
    {
        backtested.probabilities = Some(backtest.probabilities.clone());
        backtested.train_users = backtest.train_users;
    }
    if target == Target::Purchase {
        let (row, revenue) = score_revenue(&split, chosen, labels, shared)?;
        scored.push(row);
        backtested.revenue = revenue;
        backtested.inner = timed("inner split of the revenue choice", || {
            split.inner(kind, features_cutoff, labels)
        })?;
    }

    let refit = timed(&format!("{} refit", target.name()), || split.refit(kind))?;
    Ok(match refit {
        Fit::Fitted(model) => TargetOutcome {
            scored,
            model: serde_json::to_value(model.summary()).unwrap_or_default(),
            propensity: shared.propensity(&model)?,
            backtested: Some(backtested),
        },
        Fit::Skipped { reason } => TargetOutcome {
            scored,
            model: serde_json::json!({ "skipped": reason }),
            propensity: vec![None; shared.users.len()],
            backtested: Some(backtested),
        },
    })
}

/// Predicted and actual revenue of held-out users.
type PredictedAndActual = (Vec<f64>, Vec<f64>);

/// The ML revenue model (`revenue:ml`) on the purchase holdout, with the purchase
/// probabilities of the chosen ML model's backtest, and its (predicted, actual)
/// revenue; skipped when that backtest was not scored.
fn score_revenue(
    split: &ml::Split,
    chosen: Option<&ml::Backtest>,
    targets: &DataFrame,
    shared: &Shared,
) -> Result<(Scored, Option<PredictedAndActual>)> {
    let Some(backtest) = chosen else {
        let reason = "no purchase model to score".to_string();
        return Ok((skipped_row(REVENUE_ML, REVENUE_TARGET, reason), None));
    };
    if let Evaluation::Skipped { reason } = &backtest.evaluation {
        let reason = format!("the {} purchase model: {reason}", backtest.kind.name());
        return Ok((skipped_row(REVENUE_ML, REVENUE_TARGET, reason), None));
    }
    let (predicted, actual) =
        split.revenue_on_holdout(shared.features_cutoff, targets, &backtest.probabilities)?;
    let score = metrics::evaluate_revenue(&predicted, &actual)?;
    let row = Scored {
        predictor: REVENUE_ML.into(),
        target: REVENUE_TARGET,
        scored_users: Some(score.users),
        outcome: Outcome::Revenue(score),
        fitted_users: Some(backtest.train_users),
        calibration: Vec::new(),
        deciles: Vec::new(),
        counts: None,
        ranking_only: None,
        customers_only: false,
    };
    Ok((row, Some((predicted, actual))))
}

/// A row of the held-out customers' population.
fn on_customers(row: Scored) -> Scored {
    Scored {
        customers_only: true,
        ..row
    }
}

/// Why a rule's row has no log loss, Brier score or calibration.
const RULE_SCORES: &str =
    "a rule says 0 or 1, not a probability: its ranking and lift are scored, not its log loss";

/// One target's held-out users and what they did, to score predictors on.
struct Holdout<'a> {
    target: Target,
    ids: &'a [String],
    y: &'a [bool],
    shared: &'a Shared<'a>,
}

impl Holdout<'_> {
    /// The count models as predictors of the target on the held-out customers (the
    /// model's P(at least one purchase), and 1 − P(alive) as the churn score), and
    /// the scored `models` on the same users, so that the two compare.
    fn score_statistical(&self, scored: &mut Vec<Scored>, models: &[ml::Backtest]) -> Result<()> {
        let (target, holdout, y, shared) = (self.target, self.ids, self.y, self.shared);
        let gate = shared.params.ml.eligibility();
        match (shared.summary_cutoff, shared.fits_cutoff) {
            (Ok(summary), Some(fits)) => {
                // The models describe customers, from their first purchase on: they
                // are scored on the held-out users who bought before the cutoff.
                let customers: HashSet<&str> =
                    summary.user_ids.iter().map(String::as_str).collect();
                let kept: Vec<usize> = (0..holdout.len())
                    .filter(|&i| customers.contains(holdout[i].as_str()))
                    .collect();
                let y: Vec<bool> = kept.iter().map(|&i| y[i]).collect();
                let holdout: Vec<String> = kept.iter().map(|&i| holdout[i].clone()).collect();
                let y = y.as_slice();
                for (name, fit) in [("bg/nbd", &fits.bgnbd), ("pareto/nbd", &fits.pareto)] {
                    match fit {
                        Ok(fit) => {
                            // The model's own chance of a purchase, not a Poisson
                            // count of its expectation, which overstates it.
                            let probabilities =
                                timed(&format!("{name} on the holdout"), || match target {
                                    Target::Purchase => complete(
                                        purchase_probabilities(
                                            &fit.model,
                                            summary,
                                            &holdout,
                                            shared.horizon_units,
                                        ),
                                        "P(purchase)",
                                    ),
                                    Target::Churn => {
                                        let alive =
                                            alive_probabilities(&fit.model, summary, &holdout);
                                        complete(alive, "P(alive)").map(|a| {
                                            a.iter().map(|a| 1.0 - a).collect::<Vec<f64>>()
                                        })
                                    }
                                });
                            let mut row = match probabilities {
                                Ok(probabilities) => score(name, target, &probabilities, y, &gate)?,
                                Err(reason) => skipped(name, target, reason),
                            };
                            row.fitted_users = Some(summary.user_ids.len());
                            scored.push(on_customers(row));
                        }
                        Err(reason) => {
                            scored.push(on_customers(skipped(name, target, reason.clone())))
                        }
                    }
                }
                let scored_models = models
                    .iter()
                    .filter(|b| matches!(b.evaluation, Evaluation::Scored(_)));
                for model in scored_models {
                    let Some(p) = kept
                        .iter()
                        .map(|&i| model.probabilities.get(i).copied())
                        .collect::<Option<Vec<f64>>>()
                    else {
                        continue;
                    };
                    let mut row = score(model.kind.name(), target, &p, y, &gate)?;
                    // Its calibration and lift on every held-out user are its own rows'.
                    row.calibration.clear();
                    row.deciles.clear();
                    row.fitted_users = model.fitted_users;
                    scored.push(on_customers(row));
                }
            }
            (Err(e), _) => {
                for name in ["bg/nbd", "pareto/nbd"] {
                    scored.push(on_customers(skipped(name, target, e.to_string())));
                }
            }
            (Ok(_), None) => {}
        }
        Ok(())
    }

    /// The rules that predict the target, as 0/1 predictors.
    fn score_rules(&self, scored: &mut Vec<Scored>) -> Result<()> {
        let (target, holdout, y, shared) = (self.target, self.ids, self.y, self.shared);
        let params = shared.params;
        let gate = params.ml.eligibility();
        for (rule, rule_target) in &params.rules {
            if *rule_target != target {
                continue;
            }
            let predictor = format!("rule:{}", rule.name());
            let (applied, refused) = shared.rules_at_cutoff;
            if let Some((_, e)) = refused.iter().find(|(name, _)| name == rule.name()) {
                scored.push(skipped(&predictor, target, e.to_string()));
                continue;
            }
            match applied {
                Ok(table) => {
                    let probabilities: Vec<f64> = values_of(table, rule.name(), holdout)?
                        .into_iter()
                        .map(|fired| fired.unwrap_or(0.0))
                        .collect();
                    let mut row = score(&predictor, target, &probabilities, y, &gate)?;
                    row.fitted_users = Some(0);
                    row.ranking_only = Some(RULE_SCORES);
                    let fires = probabilities.iter().filter(|&&v| v > 0.0).count();
                    let reason = if fires == 0 {
                        Some("fires for no holdout user".to_string())
                    } else if fires == probabilities.len() {
                        Some(format!("fires for all {fires} holdout users"))
                    } else {
                        None
                    };
                    if let (Outcome::Scored(score), Some(reason)) = (&row.outcome, reason) {
                        row.outcome = Outcome::Degenerate {
                            score: score.clone(),
                            reason,
                        };
                    }
                    scored.push(row);
                }
                Err(e) => scored.push(skipped(&predictor, target, e.to_string())),
            }
        }
        Ok(())
    }
}

/// The activity model: the ML model of any event in the horizon (`active`), chosen
/// on the training users as a target's, backtested on its own holdout and refitted.
/// It gives P(alive) of the users the count models do not describe.
pub(super) struct ActivityOutcome {
    /// The refitted model's `models.json` entry, or why there is none.
    pub(super) model: serde_json::Value,
    /// Probability of activity of every user, in `Shared::users` order.
    pub(super) propensity: Vec<Option<f64>>,
    /// The chosen model on its holdout; `None` without a split.
    pub(super) backtested: Option<Backtested>,
}

/// Fits, backtests and refits the activity model on the `active` column of `targets`.
pub(super) fn for_activity(targets: &DataFrame, shared: &Shared) -> Result<ActivityOutcome> {
    let params = shared.params;
    if shared.short_history {
        return Ok(ActivityOutcome {
            model: serde_json::json!({
                "skipped": super::short_history_reason(params.horizon_days())
            }),
            propensity: vec![None; shared.users.len()],
            backtested: None,
        });
    }
    let split = ml::Split::new(
        shared.table_cutoff,
        targets,
        ml::ACTIVE,
        shared.refit_names,
        &params.ml,
        shared.seed,
    )?;
    let kind = timed("model choice for activity", || {
        split.choose(&params.ml.models)
    })?;
    let backtest = timed("activity backtest", || split.backtest(kind))?;
    let backtested = Backtested {
        kind,
        ids: split.holdout_ids(),
        y: split.holdout_labels(),
        probabilities: backtest
            .fitted_users
            .is_some()
            .then(|| backtest.probabilities.clone()),
        train_users: backtest.train_users,
        revenue: None,
        inner: None,
    };
    let refit = timed("activity refit", || split.refit(kind))?;
    Ok(match refit {
        Fit::Fitted(model) => ActivityOutcome {
            model: serde_json::to_value(model.summary()).unwrap_or_default(),
            propensity: shared.propensity(&model)?,
            backtested: Some(backtested),
        },
        Fit::Skipped { reason } => ActivityOutcome {
            model: serde_json::json!({ "skipped": reason }),
            propensity: vec![None; shared.users.len()],
            backtested: Some(backtested),
        },
    })
}
