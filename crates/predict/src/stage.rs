//! The predict stage: every predictor fitted on features before a cutoff (as-of
//! minus the horizon), scored on the same holdout users against what they did in
//! the horizon after it, then refitted and applied at the as-of date.

use std::collections::BTreeMap;

use foldhash::HashMap;
use rayon::prelude::*;

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use userlens_model::columns::USER_ID;
use userlens_model::time::{date_string, days};

use crate::metrics::{self, Eligibility, Evaluation};
use crate::ml::{self, CheckedMlParams, Fit, MlParams};
use crate::rules::{self, Rule};
use crate::segments;
use crate::stats::{self, BgNbd, GammaGamma, ParetoNbd, PurchaseModel, Summary, TimeUnit};

/// Errors of the predict stage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid parameters.
    #[error("{0}")]
    Params(String),
    /// A rule is wrong.
    #[error(transparent)]
    Rule(#[from] rules::Error),
    /// A machine-learning step failed.
    #[error(transparent)]
    Ml(#[from] ml::Error),
    /// Scoring failed.
    #[error(transparent)]
    Metrics(#[from] metrics::Error),
    /// RFM scoring failed.
    #[error(transparent)]
    Segments(#[from] segments::Error),
    /// A polars step failed.
    #[error("failed to {action}")]
    Polars {
        /// What was being done.
        action: &'static str,
        /// Underlying error.
        #[source]
        source: PolarsError,
    },
}

/// Result of the predict stage.
pub type Result<T> = std::result::Result<T, Error>;

fn polars_err(action: &'static str) -> impl FnOnce(PolarsError) -> Error {
    move |source| Error::Polars { action, source }
}

/// Targets a rule can predict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A purchase within the horizon.
    Purchase,
    /// No activity in the churn window (among users active before the cutoff).
    Churn,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Purchase => "p_purchase",
            Target::Churn => "churn",
        }
    }
    fn label(self) -> &'static str {
        match self {
            Target::Purchase => ml::PURCHASED,
            Target::Churn => ml::CHURNED,
        }
    }
}

/// A declarative rule of the pipeline file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleParams {
    /// The condition, e.g. `"recency_days > 60 and frequency > 0"`.
    pub when: String,
    /// What a true condition predicts.
    pub target: Target,
}

/// Parameters of the predict stage as written in a pipeline file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PredictParams {
    /// Days ahead that the predictions cover (GA4's default: 28).
    pub horizon_days: u32,
    /// Time unit of the statistical models.
    pub unit: TimeUnit,
    /// Yearly discount rate of the customer lifetime value.
    pub annual_discount_rate: f64,
    /// Named rules; each becomes a column of `user_predictions.csv` and a scored
    /// predictor.
    pub rules: BTreeMap<String, RuleParams>,
    /// Machine-learning settings (models, holdout share, gates).
    pub ml: MlParams,
}

impl Default for PredictParams {
    fn default() -> Self {
        let rules = BTreeMap::from([
            (
                "lapsing".to_string(),
                // Churn is scored on users active in the week before the cutoff
                // (`churn_window_days`), so the rule must split that week.
                RuleParams {
                    when: "recency_days > 3".into(),
                    target: Target::Churn,
                },
            ),
            (
                "recent_buyer".to_string(),
                RuleParams {
                    when: "recency_days <= 14 and frequency >= 2".into(),
                    target: Target::Purchase,
                },
            ),
        ]);
        PredictParams {
            horizon_days: 28,
            unit: TimeUnit::Days,
            annual_discount_rate: 0.1,
            rules,
            ml: MlParams::default(),
        }
    }
}

/// Ten years: the longest horizon the stage accepts.
const MAX_HORIZON_DAYS: u32 = 3650;

/// Checked parameters of the predict stage.
#[derive(Debug, Clone)]
pub struct CheckedPredictParams {
    params: PredictParams,
    rules: Vec<(Rule, Target)>,
    ml: CheckedMlParams,
}

impl CheckedPredictParams {
    /// Days ahead that the predictions cover.
    pub fn horizon_days(&self) -> u32 {
        self.params.horizon_days
    }

    /// The prediction cutoff: `as_of` minus the horizon (UTC microseconds). Features
    /// at the cutoff train the models; the horizon after it gives their targets.
    pub fn cutoff(&self, as_of: i64) -> i64 {
        as_of - days(self.params.horizon_days)
    }

    /// Features the rules read: besides them, the features at the cutoff only feed
    /// the models, which read numbers.
    pub fn rule_features(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().flat_map(|(rule, _)| rule.features())
    }
}

impl PredictParams {
    /// Validates the parameters and parses the rules before any data is read.
    pub fn check(&self) -> Result<CheckedPredictParams> {
        if self.horizon_days == 0 {
            return Err(Error::Params("`horizon_days` must be at least 1".into()));
        }
        if !(self.annual_discount_rate.is_finite() && self.annual_discount_rate > -1.0) {
            return Err(Error::Params(format!(
                "`annual_discount_rate` is {}, it must be a number above -1",
                self.annual_discount_rate
            )));
        }
        if self.horizon_days > MAX_HORIZON_DAYS {
            return Err(Error::Params(format!(
                "`horizon_days` is {}, it must be at most {MAX_HORIZON_DAYS}",
                self.horizon_days
            )));
        }
        // Before anything is built per rule: a pipeline file with many thousands of
        // rules must fail here, in milliseconds, not after gigabytes of plans.
        rules::check_count(self.rules.len())?;
        let ml = self.ml.check()?;
        let rules = self
            .rules
            .iter()
            .map(|(name, rule)| Ok((rules::parse_rule(name, &rule.when)?, rule.target)))
            .collect::<Result<Vec<_>>>()?;
        Ok(CheckedPredictParams {
            params: self.clone(),
            rules,
            ml,
        })
    }
}

/// Everything the stage produces.
#[derive(Debug, Clone)]
pub struct Predictions {
    /// `user_id, p_alive, expected_purchases, p_purchase, predicted_revenue,
    /// churn_risk`, then `p_alive_bgnbd, clv, rfm_score, segment` and one column per rule.
    pub user_predictions: DataFrame,
    /// `predictor, target, status, reason, auc, log_loss, brier, lift_top_decile,
    /// positives, negatives, fitted_users, scored_users, choice_used_holdout,
    /// correlation, mae, top_decile_revenue_share`: a row per predictor and target
    /// (`status` scored, skipped or degenerate), and a `revenue` row whose last three
    /// columns score `predicted_revenue` on the purchase holdout.
    pub model_report: DataFrame,
    /// `predictor, target, bin, mean_predicted, observed_rate, count`.
    pub calibration: DataFrame,
    /// `predictor, target, decile, lift`.
    pub lift: DataFrame,
    /// `user_id, r_score, f_score, m_score, rfm_score, segment`.
    pub segments: DataFrame,
    /// Fitted parameters and how each fit went (`models.json`).
    pub models: serde_json::Value,
}

/// Why a predictor with no held-out user to score is skipped.
const EMPTY_HOLDOUT: &str = "the holdout is empty";

/// The `target` of the revenue row of the model report.
const REVENUE_TARGET: &str = "revenue";

/// How a predictor did on the holdout.
enum Outcome {
    /// Scored as a probability of the target.
    Scored(metrics::Score),
    /// A rule that fires for every held-out user or for none: its scores say nothing.
    Degenerate {
        score: metrics::Score,
        reason: String,
    },
    /// The revenue prediction's scores.
    Revenue(metrics::RevenueScore),
    /// Not scored, and why.
    Skipped { reason: String },
}

impl From<Evaluation> for Outcome {
    fn from(evaluation: Evaluation) -> Self {
        match evaluation {
            Evaluation::Scored(score) => Outcome::Scored(score),
            Evaluation::Skipped { reason } => Outcome::Skipped { reason },
        }
    }
}

/// One scored (or skipped) predictor for the report.
struct Scored {
    predictor: String,
    target: &'static str,
    outcome: Outcome,
    /// Users the predictor was fitted on (0 for a rule, `None` when not fitted).
    fitted_users: Option<usize>,
    /// Held-out users it was scored on (`None` when not scored).
    scored_users: Option<usize>,
    calibration: Vec<metrics::CalibrationBin>,
    deciles: Vec<metrics::DecileLift>,
}

fn score(
    predictor: &str,
    target: Target,
    p: &[f64],
    y: &[bool],
    gate: &Eligibility,
) -> Result<Scored> {
    // No held-out user (one user, or no label in the horizon) is a skip, as the ML
    // backtests report it, not a failed stage.
    if y.is_empty() {
        return Ok(skipped(predictor, target, EMPTY_HOLDOUT.to_string()));
    }
    let evaluation = metrics::evaluate(p, y, gate)?;
    let scored = matches!(evaluation, Evaluation::Scored(_));
    Ok(Scored {
        predictor: predictor.to_string(),
        target: target.name(),
        calibration: if scored {
            metrics::calibration(p, y)?
        } else {
            Vec::new()
        },
        deciles: if scored {
            metrics::lift_by_decile(p, y)?
        } else {
            Vec::new()
        },
        outcome: evaluation.into(),
        fitted_users: None,
        scored_users: scored.then_some(y.len()),
    })
}

fn skipped(predictor: &str, target: Target, reason: String) -> Scored {
    skipped_row(predictor, target.name(), reason)
}

fn skipped_row(predictor: &str, target: &'static str, reason: String) -> Scored {
    Scored {
        predictor: predictor.to_string(),
        target,
        outcome: Outcome::Skipped { reason },
        fitted_users: None,
        scored_users: None,
        calibration: Vec::new(),
        deciles: Vec::new(),
    }
}

/// `user_id -> value` of a numeric or boolean column.
fn lookup(df: &DataFrame, column: &str) -> Result<HashMap<String, f64>> {
    let ids = df
        .column(USER_ID)
        .and_then(|c| c.str().cloned())
        .map_err(polars_err("read user ids"))?;
    let values = df
        .column(column)
        .and_then(|c| c.cast(&DataType::Float64))
        .map_err(polars_err("read a prediction column"))?;
    let values = values
        .f64()
        .map_err(polars_err("read a prediction column"))?;
    Ok(ids
        .iter()
        .zip(values.iter())
        .filter_map(|(id, v)| Some((id?.to_string(), v?)))
        .collect())
}

fn user_ids(df: &DataFrame) -> Result<Vec<String>> {
    let ids = df
        .column(USER_ID)
        .and_then(|c| c.str().cloned())
        .map_err(polars_err("read user ids"))?;
    Ok(ids
        .iter()
        .map(|id| id.unwrap_or_default().to_string())
        .collect())
}

/// A count model's expected purchases and P(alive) for every user; users without a
/// purchase get a new customer's values (no history: x = t_x = T = 0). A value the
/// model cannot compute (a series that does not converge, say) is `None`, never a
/// stand-in number.
fn count_predictions<M: PurchaseModel + Sync>(
    model: &M,
    summary: &Summary,
    users: &[String],
    horizon: f64,
) -> (Vec<Option<f64>>, Vec<Option<f64>>) {
    let index: HashMap<&str, usize> = summary
        .user_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    users
        .par_iter()
        .map(|user| {
            let (x, t_x, big_t) = index.get(user.as_str()).map_or((0.0, 0.0, 0.0), |&i| {
                (summary.frequency[i], summary.recency[i], summary.t[i])
            });
            let expected = model
                .expected_purchases(horizon, x, t_x, big_t)
                .ok()
                .filter(|v| v.is_finite())
                .map(|v| v.max(0.0));
            let alive = model
                .p_alive(x, t_x, big_t)
                .ok()
                .filter(|v| v.is_finite())
                .map(|v| v.clamp(0.0, 1.0));
            (expected, alive)
        })
        .unzip()
}

/// Every value, or why not: a predictor with holes is skipped, not scored.
fn complete(values: Vec<Option<f64>>, what: &str) -> std::result::Result<Vec<f64>, String> {
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
struct CountFits {
    bgnbd: std::result::Result<stats::Fit<stats::CountModel>, String>,
    pareto: std::result::Result<stats::Fit<stats::CountModel>, String>,
    gamma: std::result::Result<stats::Fit<GammaGamma>, String>,
}

/// Fits the count models; `earlier` (the fits at the cutoff) warm-starts Pareto/NBD.
fn fit_counts(summary: &Summary, earlier: Option<&CountFits>) -> CountFits {
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

fn report_json<M>(fit: &std::result::Result<stats::Fit<M>, String>) -> serde_json::Value {
    match fit {
        Ok(fit) => serde_json::to_value(&fit.report).unwrap_or(serde_json::Value::Null),
        Err(reason) => serde_json::json!({ "skipped": reason }),
    }
}

/// Runs `f`, logging how long `what` took (`-vv`).
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = std::time::Instant::now();
    let value = f();
    tracing::debug!("predict: {what} in {:.2} s", start.elapsed().as_secs_f64());
    value
}

/// What prediction reads from the events, gathered in one pass over the parts.
struct FromEvents {
    /// Purchase targets of the horizon after the cutoff.
    targets: DataFrame,
    /// Churn labels at the cutoff.
    churn: DataFrame,
    /// The earliest event time.
    first_event: Option<i64>,
    /// Purchase histories before the cutoff and before the as-of date.
    summary_cutoff: stats::Result<Summary>,
    summary_now: stats::Result<Summary>,
}

/// Stacks per-user tables of separate parts and sorts them by user.
fn stack_users(mut tables: Vec<DataFrame>, action: &'static str) -> Result<DataFrame> {
    if tables.len() <= 1 {
        return Ok(tables.pop().unwrap_or_default());
    }
    concat(
        tables.into_iter().map(IntoLazy::lazy).collect::<Vec<_>>(),
        UnionArgs::default(),
    )
    .and_then(|all| {
        all.sort([USER_ID], SortMultipleOptions::default())
            .collect()
    })
    .map_err(polars_err(action))
}

/// Reads the parts (each holding whole users) one at a time, only the columns the
/// labels and purchase summaries need.
fn from_events(
    parts: &[LazyFrame],
    cutoff: i64,
    as_of: i64,
    unit: TimeUnit,
    churn_window_days: u32,
) -> Result<FromEvents> {
    use userlens_model::columns::{AMOUNT, EVENT_TIME, EVENT_TYPE};
    let (mut targets, mut churn) = (Vec::new(), Vec::new());
    let (mut at_cutoff, mut now) = (Vec::new(), Vec::new());
    let mut first_event: Option<i64> = None;
    for part in parts {
        let events = part
            .clone()
            .select([col(USER_ID), col(EVENT_TIME), col(EVENT_TYPE), col(AMOUNT)])
            .collect()
            .map_err(polars_err("read a part of the events"))?;
        // The labels' pass over the rows is one thread's work: the purchase
        // histories, polars' group-bys, run beside it.
        let (labels, summaries) = rayon::join(
            || -> Result<_> {
                let labels = match ml::targets_and_churn_sorted(
                    &events,
                    cutoff,
                    as_of,
                    churn_window_days,
                )? {
                    Some(labels) => labels,
                    None => (
                        ml::targets(&events, cutoff, as_of)?,
                        ml::churn_labels(&events, cutoff, churn_window_days)?,
                    ),
                };
                let first = events
                    .column(EVENT_TIME)
                    .and_then(|c| c.cast(&DataType::Int64))
                    .map_err(polars_err("read event times"))?
                    .i64()
                    .map_err(polars_err("read event times"))?
                    .min();
                Ok((labels, first))
            },
            || {
                (
                    stats::summary_frame(&events, cutoff, unit),
                    stats::summary_frame(&events, as_of, unit),
                )
            },
        );
        let ((part_targets, part_churn), first) = labels?;
        targets.push(part_targets);
        churn.push(part_churn);
        first_event = match (first_event, first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        at_cutoff.push(summaries.0);
        now.push(summaries.1);
    }
    let summary = |frames: Vec<stats::Result<DataFrame>>| -> Result<stats::Result<Summary>> {
        Ok(
            match frames.into_iter().collect::<stats::Result<Vec<_>>>() {
                Ok(frames) => {
                    Summary::from_frame(&stack_users(frames, "combine purchase histories")?)
                }
                Err(e) => Err(e),
            },
        )
    };
    Ok(FromEvents {
        targets: stack_users(targets, "combine the targets")?,
        churn: stack_users(churn, "combine the churn labels")?,
        first_event,
        summary_cutoff: summary(at_cutoff)?,
        summary_now: summary(now)?,
    })
}

/// What both targets read.
struct Shared<'a> {
    features_cutoff: &'a DataFrame,
    features_now: &'a DataFrame,
    feature_names: &'a [String],
    params: &'a CheckedPredictParams,
    summary_cutoff: &'a stats::Result<Summary>,
    fits_cutoff: Option<&'a CountFits>,
    /// Every rule's 0/1 column on the features at the cutoff, or why not.
    rules_at_cutoff: &'a std::result::Result<DataFrame, rules::Error>,
    short_history: bool,
    horizon_units: f64,
    users: &'a [String],
    seed: u64,
}

/// One target's predictors scored on the holdout, and its best ML model refitted on
/// every labelled user and applied at the as-of date.
struct TargetOutcome {
    scored: Vec<Scored>,
    /// The refitted model's `models.json` entry, or why there is none.
    model: serde_json::Value,
    /// Propensity of every user, in `Shared::users` order.
    propensity: Vec<Option<f64>>,
}

/// Backtests every predictor of `target` against `labels`, then refits the ML model
/// chosen on the training users alone ([`ml::Split::choose`]).
fn for_target(target: Target, labels: &DataFrame, shared: &Shared) -> Result<TargetOutcome> {
    let params = shared.params;
    let p = &params.params;
    let features_cutoff = shared.features_cutoff;
    let mut scored = Vec::new();
    if shared.short_history {
        let reason = format!(
            "less history before the cutoff than the {}-day horizon",
            p.horizon_days
        );
        for predictor in ["bg/nbd", "pareto/nbd", "logistic", "tree"] {
            scored.push(skipped(predictor, target, reason.clone()));
        }
        for (rule, _) in params.rules.iter().filter(|(_, t)| *t == target) {
            let predictor = format!("rule:{}", rule.name());
            scored.push(skipped(&predictor, target, reason.clone()));
        }
        if target == Target::Purchase {
            scored.push(skipped_row("revenue", REVENUE_TARGET, reason.clone()));
        }
        return Ok(TargetOutcome {
            scored,
            model: serde_json::json!({ "skipped": reason }),
            propensity: vec![None; shared.users.len()],
        });
    }
    // A split that cannot be made (no features, a label that is not 0/1) fails the
    // stage: the refit would read the same users.
    let split = ml::Split::new(
        features_cutoff,
        labels,
        target.label(),
        shared.feature_names,
        &params.ml,
        shared.seed,
    )?;
    let (holdout, y) = (split.holdout_ids(), split.holdout_labels());

    // The model to refit is chosen on the training users before any is scored on
    // the holdout.
    let kind = timed(&format!("model choice for {}", target.name()), || {
        split.choose(&params.ml.models)
    })?;
    let mut chosen = None;
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
        });
        if kind_scored == kind {
            chosen = Some(backtest);
        }
    }
    let on_holdout = Holdout {
        target,
        ids: &holdout,
        y: &y,
        shared,
    };
    on_holdout.score_statistical(&mut scored)?;
    on_holdout.score_rules(&mut scored)?;
    if target == Target::Purchase {
        scored.push(score_revenue(&split, chosen.as_ref(), labels, shared)?);
    }

    let refit = timed(&format!("{} refit", target.name()), || split.refit(kind))?;
    Ok(match refit {
        Fit::Fitted(model) => {
            let predicted = lookup(&model.predict(shared.features_now)?, ml::PROBABILITY)?;
            TargetOutcome {
                scored,
                model: serde_json::to_value(model.summary()).unwrap_or_default(),
                propensity: shared
                    .users
                    .iter()
                    .map(|u| predicted.get(u).copied())
                    .collect(),
            }
        }
        Fit::Skipped { reason } => TargetOutcome {
            scored,
            model: serde_json::json!({ "skipped": reason }),
            propensity: vec![None; shared.users.len()],
        },
    })
}

/// The revenue model on the purchase holdout, with the purchase probabilities of the
/// chosen ML model's backtest; skipped when that backtest was not scored.
fn score_revenue(
    split: &ml::Split,
    chosen: Option<&ml::Backtest>,
    targets: &DataFrame,
    shared: &Shared,
) -> Result<Scored> {
    let Some(backtest) = chosen else {
        return Ok(skipped_row(
            "revenue",
            REVENUE_TARGET,
            "no purchase model to score".into(),
        ));
    };
    if let Evaluation::Skipped { reason } = &backtest.evaluation {
        let reason = format!("the {} purchase model: {reason}", backtest.kind.name());
        return Ok(skipped_row("revenue", REVENUE_TARGET, reason));
    }
    let (predicted, actual) =
        split.revenue_on_holdout(shared.features_cutoff, targets, &backtest.probabilities)?;
    let score = metrics::evaluate_revenue(&predicted, &actual)?;
    Ok(Scored {
        predictor: "revenue".into(),
        target: REVENUE_TARGET,
        scored_users: Some(score.users),
        outcome: Outcome::Revenue(score),
        fitted_users: Some(backtest.train_users),
        calibration: Vec::new(),
        deciles: Vec::new(),
    })
}

/// One target's held-out users and what they did, to score predictors on.
struct Holdout<'a> {
    target: Target,
    ids: &'a [String],
    y: &'a [bool],
    shared: &'a Shared<'a>,
}

impl Holdout<'_> {
    /// The count models as predictors of the target: P(at least one purchase) from the
    /// expected count (Poisson), and 1 − P(alive) as the churn score.
    fn score_statistical(&self, scored: &mut Vec<Scored>) -> Result<()> {
        let (target, holdout, y, shared) = (self.target, self.ids, self.y, self.shared);
        let gate = shared.params.ml.eligibility();
        match (shared.summary_cutoff, shared.fits_cutoff) {
            (Ok(summary), Some(fits)) => {
                for (name, fit) in [("bg/nbd", &fits.bgnbd), ("pareto/nbd", &fits.pareto)] {
                    match fit {
                        Ok(fit) => {
                            let (expected, alive) =
                                timed(&format!("{name} on the holdout"), || {
                                    count_predictions(
                                        &fit.model,
                                        summary,
                                        holdout,
                                        shared.horizon_units,
                                    )
                                });
                            let probabilities = match target {
                                Target::Purchase => complete(expected, "expected purchases")
                                    .map(|e| e.iter().map(|e| -(-e).exp_m1()).collect()),
                                Target::Churn => complete(alive, "P(alive)")
                                    .map(|a| a.iter().map(|a| 1.0 - a).collect::<Vec<f64>>()),
                            };
                            let mut row = match probabilities {
                                Ok(probabilities) => score(name, target, &probabilities, y, &gate)?,
                                Err(reason) => skipped(name, target, reason),
                            };
                            row.fitted_users = Some(summary.user_ids.len());
                            scored.push(row);
                        }
                        Err(reason) => scored.push(skipped(name, target, reason.clone())),
                    }
                }
            }
            (Err(e), _) => {
                for name in ["bg/nbd", "pareto/nbd"] {
                    scored.push(skipped(name, target, e.to_string()));
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
            match shared.rules_at_cutoff {
                Ok(table) => {
                    let fired = lookup(table, rule.name())?;
                    let probabilities: Vec<f64> = holdout
                        .iter()
                        .map(|id| fired.get(id).copied().unwrap_or(0.0))
                        .collect();
                    let mut row = score(&predictor, target, &probabilities, y, &gate)?;
                    row.fitted_users = Some(0);
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

/// Runs every predictor on events in parts that each hold whole users (one part
/// for events in memory). `features_cutoff` are the features as of
/// [`CheckedPredictParams::cutoff`], `features_now` as of `as_of` (UTC microseconds).
pub fn predict(
    events: &[LazyFrame],
    features_cutoff: &DataFrame,
    features_now: &DataFrame,
    as_of: i64,
    params: &CheckedPredictParams,
    seed: u64,
) -> Result<Predictions> {
    let p = &params.params;
    let horizon_micros = days(p.horizon_days);
    let cutoff = params.cutoff(as_of);
    let unit_days = p.unit.days();
    let horizon_units = f64::from(p.horizon_days) / unit_days;
    // Category shares follow the most common categories of each date, so the two
    // tables can differ: the models use what both have.
    let at_cutoff = ml::numeric_features(features_cutoff);
    let feature_names: Vec<String> = ml::numeric_features(features_now)
        .into_iter()
        .filter(|name| at_cutoff.contains(name))
        .collect();

    let FromEvents {
        targets,
        churn,
        first_event,
        summary_cutoff,
        summary_now,
    } = timed("labels and purchase histories", || {
        from_events(events, cutoff, as_of, p.unit, params.ml.churn_window_days)
    })?;
    let short_history = first_event.is_none_or(|first| cutoff - first < horizon_micros);

    let mut models = serde_json::Map::new();
    models.insert("horizon_days".into(), p.horizon_days.into());
    models.insert(
        "unit".into(),
        serde_json::to_value(p.unit).unwrap_or_default(),
    );
    models.insert("cutoff".into(), date_string(cutoff).into());

    // Statistical models, fitted before the cutoff for scoring.
    let fits_cutoff = timed("count models at the cutoff", || {
        summary_cutoff.as_ref().ok().map(|s| fit_counts(s, None))
    });

    // Each target's predictors, and the refit at the as-of date of the count models,
    // side by side: the logistic fits run on one core each.
    let users = user_ids(features_now)?;
    let rules: Vec<Rule> = params.rules.iter().map(|(r, _)| r.clone()).collect();
    let rules_at_cutoff = rules::apply(&rules, features_cutoff);
    let shared = Shared {
        features_cutoff,
        features_now,
        feature_names: &feature_names,
        params,
        summary_cutoff: &summary_cutoff,
        fits_cutoff: fits_cutoff.as_ref(),
        rules_at_cutoff: &rules_at_cutoff,
        short_history,
        horizon_units,
        users: &users,
        seed,
    };
    let ((purchase, churn_outcome), fits_now) = rayon::join(
        || {
            rayon::join(
                || for_target(Target::Purchase, &targets, &shared),
                || for_target(Target::Churn, &churn, &shared),
            )
        },
        || {
            timed("count models at the as-of date", || {
                summary_now
                    .as_ref()
                    .ok()
                    .map(|s| fit_counts(s, fits_cutoff.as_ref()))
            })
        },
    );
    let (purchase, churn_outcome) = (purchase?, churn_outcome?);
    let scored: Vec<Scored> = purchase
        .scored
        .into_iter()
        .chain(churn_outcome.scored)
        .collect();
    if let Some(fits) = &fits_cutoff {
        models.insert(
            "calibration_fits".into(),
            serde_json::json!({
                "bg/nbd": report_json(&fits.bgnbd),
                "pareto/nbd": report_json(&fits.pareto),
                "gamma-gamma": report_json(&fits.gamma),
            }),
        );
    }

    // Apply the count models refitted at the as-of date to every user.
    let mut columns: Vec<Column> = vec![Column::new(USER_ID.into(), users.clone())];
    let none = || vec![None::<f64>; users.len()];
    let (mut p_alive, mut expected, mut p_alive_bg, mut clv) = (none(), none(), none(), none());
    if let (Ok(summary), Some(fits)) = (&summary_now, &fits_now) {
        if let Ok(fit) = &fits.bgnbd {
            (expected, p_alive_bg) = timed("bg/nbd for every user", || {
                count_predictions(&fit.model, summary, &users, horizon_units)
            });
        }
        if let Ok(fit) = &fits.pareto {
            (_, p_alive) = timed("pareto/nbd for every user", || {
                count_predictions(&fit.model, summary, &users, horizon_units)
            });
        }
        if let (Ok(bg), Ok(gg)) = (&fits.bgnbd, &fits.gamma) {
            let rate = (1.0 + p.annual_discount_rate).powf(unit_days / 365.0) - 1.0;
            let index: HashMap<&str, usize> = summary
                .user_ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.as_str(), i))
                .collect();
            clv.par_iter_mut().zip(&users).for_each(|(slot, user)| {
                if let Some(&i) = index.get(user.as_str()) {
                    *slot = gg
                        .model
                        .clv(
                            &bg.model,
                            summary.frequency[i],
                            summary.recency[i],
                            summary.t[i],
                            summary.monetary[i],
                            horizon_units.ceil() as u32,
                            rate,
                        )
                        .ok()
                        .filter(|v| v.is_finite());
                }
            });
        }
        models.insert(
            "fits".into(),
            serde_json::json!({
                "bg/nbd": report_json(&fits.bgnbd),
                "pareto/nbd": report_json(&fits.pareto),
                "gamma-gamma": report_json(&fits.gamma),
            }),
        );
    } else if let Err(e) = &summary_now {
        models.insert(
            "fits".into(),
            serde_json::json!({ "skipped": e.to_string() }),
        );
    }
    // Pareto/NBD's P(alive) means something for one-time buyers; BG/NBD's is 1
    // for them, so it is only the fallback.
    if p_alive.iter().all(Option::is_none) {
        p_alive = p_alive_bg.clone();
    }

    let mut ml_models = serde_json::Map::new();
    ml_models.insert(Target::Purchase.name().into(), purchase.model);
    ml_models.insert(Target::Churn.name().into(), churn_outcome.model);
    models.insert("ml".into(), serde_json::Value::Object(ml_models));
    let (p_purchase, churn_risk) = (purchase.propensity, churn_outcome.propensity);

    let mut predicted_revenue = none();
    if p_purchase.iter().any(Option::is_some) {
        let revenue = ml::fit_revenue(features_cutoff, &targets)?;
        let probabilities = DataFrame::new(
            users.len(),
            vec![
                Column::new(USER_ID.into(), users.clone()),
                Column::new(
                    ml::PROBABILITY.into(),
                    p_purchase
                        .iter()
                        .map(|v| v.unwrap_or(0.0))
                        .collect::<Vec<_>>(),
                ),
            ],
        )
        .map_err(polars_err("build the probability table"))?;
        let predicted = lookup(
            &revenue.predict(features_now, &probabilities)?,
            ml::PREDICTED_REVENUE,
        )?;
        predicted_revenue = users.iter().map(|u| predicted.get(u).copied()).collect();
        models.insert(
            "revenue".into(),
            serde_json::to_value(&revenue).unwrap_or_default(),
        );
    }

    columns.extend([
        Column::new("p_alive".into(), p_alive),
        Column::new("expected_purchases".into(), expected),
        Column::new("p_purchase".into(), p_purchase),
        Column::new("predicted_revenue".into(), predicted_revenue),
        Column::new("churn_risk".into(), churn_risk),
        Column::new("p_alive_bgnbd".into(), p_alive_bg),
        Column::new("clv".into(), clv),
    ]);
    let mut user_predictions =
        DataFrame::new(users.len(), columns).map_err(polars_err("build user predictions"))?;

    let segments = timed("segments", || segments::score(features_now))?;
    let segment_columns =
        segments
            .clone()
            .lazy()
            .select([col(USER_ID), col("rfm_score"), col("segment")]);
    user_predictions = user_predictions
        .lazy()
        .left_join(segment_columns, col(USER_ID), col(USER_ID))
        .collect()
        .map_err(polars_err("join RFM segments"))?;
    if !rules.is_empty() {
        let applied = rules::apply(&rules, features_now)?;
        let renamed: Vec<Expr> = std::iter::once(col(USER_ID))
            .chain(
                rules
                    .iter()
                    .map(|r| col(r.name()).alias(format!("rule_{}", r.name()))),
            )
            .collect();
        user_predictions = user_predictions
            .lazy()
            .left_join(applied.lazy().select(renamed), col(USER_ID), col(USER_ID))
            .sort([USER_ID], SortMultipleOptions::default())
            .collect()
            .map_err(polars_err("join rule outputs"))?;
    }

    let (model_report, calibration, lift) = report_tables(&scored)?;
    Ok(Predictions {
        user_predictions,
        model_report,
        calibration,
        lift,
        segments,
        models: serde_json::Value::Object(models),
    })
}

fn report_tables(scored: &[Scored]) -> Result<(DataFrame, DataFrame, DataFrame)> {
    let n = scored.len();
    let mut predictor = Vec::with_capacity(n);
    let mut target = Vec::with_capacity(n);
    let mut status = Vec::with_capacity(n);
    let mut reason = Vec::with_capacity(n);
    let (mut auc, mut log_loss, mut brier, mut lift, mut pos, mut neg) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let (mut fitted, mut scored_on) = (Vec::new(), Vec::new());
    let (mut correlation, mut mae, mut share) = (Vec::new(), Vec::new(), Vec::new());
    for s in scored {
        predictor.push(s.predictor.clone());
        target.push(s.target);
        let (row_status, why, score, revenue) = match &s.outcome {
            Outcome::Scored(score) => ("scored", None, Some(score), None),
            Outcome::Degenerate { score, reason } => {
                ("degenerate", Some(reason.clone()), Some(score), None)
            }
            Outcome::Revenue(revenue) => ("scored", None, None, Some(revenue)),
            Outcome::Skipped { reason } => ("skipped", Some(reason.clone()), None, None),
        };
        status.push(row_status);
        reason.push(why);
        auc.push(score.map(|s| s.auc));
        log_loss.push(score.map(|s| s.log_loss));
        brier.push(score.map(|s| s.brier));
        lift.push(score.map(|s| s.lift_top_decile));
        pos.push(score.map(|s| s.positives as u64));
        neg.push(score.map(|s| s.negatives as u64));
        fitted.push(s.fitted_users.map(|v| v as u64));
        scored_on.push(s.scored_users.map(|v| v as u64));
        correlation.push(revenue.and_then(|r| r.correlation));
        mae.push(revenue.map(|r| r.mae));
        share.push(revenue.and_then(|r| r.top_decile_share));
    }
    let report = DataFrame::new(
        n,
        vec![
            Column::new("predictor".into(), predictor),
            Column::new("target".into(), target),
            Column::new("status".into(), status),
            Column::new("reason".into(), reason),
            Column::new("auc".into(), auc),
            Column::new("log_loss".into(), log_loss),
            Column::new("brier".into(), brier),
            Column::new("lift_top_decile".into(), lift),
            Column::new("positives".into(), pos),
            Column::new("negatives".into(), neg),
            Column::new("fitted_users".into(), fitted),
            Column::new("scored_users".into(), scored_on),
            // The ML model refitted at the as-of date is chosen on the training
            // users (`ml::Split::choose`); no choice reads the holdout.
            Column::new("choice_used_holdout".into(), vec![false; n]),
            Column::new("correlation".into(), correlation),
            Column::new("mae".into(), mae),
            Column::new("top_decile_revenue_share".into(), share),
        ],
    )
    .map_err(polars_err("build the model report"))?;

    let (mut cp, mut ct, mut cb, mut cm, mut co, mut cc) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let (mut lp, mut lt, mut ld, mut ll) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for s in scored {
        for (i, bin) in s.calibration.iter().enumerate() {
            cp.push(s.predictor.clone());
            ct.push(s.target);
            cb.push(i as u32 + 1);
            cm.push(bin.mean_predicted);
            co.push(bin.observed_rate);
            cc.push(bin.count as u64);
        }
        for decile in &s.deciles {
            lp.push(s.predictor.clone());
            lt.push(s.target);
            ld.push(decile.decile);
            ll.push(decile.lift);
        }
    }
    let calibration = DataFrame::new(
        cp.len(),
        vec![
            Column::new("predictor".into(), cp),
            Column::new("target".into(), ct),
            Column::new("bin".into(), cb),
            Column::new("mean_predicted".into(), cm),
            Column::new("observed_rate".into(), co),
            Column::new("count".into(), cc),
        ],
    )
    .map_err(polars_err("build the calibration table"))?;
    let lift = DataFrame::new(
        lp.len(),
        vec![
            Column::new("predictor".into(), lp),
            Column::new("target".into(), lt),
            Column::new("decile".into(), ld),
            Column::new("lift".into(), ll),
        ],
    )
    .map_err(polars_err("build the lift table"))?;
    Ok((report, calibration, lift))
}

#[cfg(test)]
mod tests;
