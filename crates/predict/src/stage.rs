//! The predict stage: every predictor fitted on features before a cutoff (as-of
//! minus the horizon), scored on the same holdout users against what they did in
//! the horizon after it, then refitted and applied at the as-of date.

use std::collections::BTreeMap;

use rayon::prelude::*;

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use userlens_model::columns::USER_ID;
use userlens_model::time::{date_string, days};

use crate::metrics::{self, Eligibility, Evaluation};
use crate::ml::{self, CheckedMlParams, MlParams};
use crate::rules::{self, Rule};
use crate::segments;
use crate::stats::TimeUnit;
use userlens_model::time::MAX_WINDOW_DAYS as MAX_HORIZON_DAYS;

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
            horizon_days: userlens_model::DEFAULT_HORIZON_DAYS,
            unit: TimeUnit::Days,
            annual_discount_rate: 0.1,
            rules,
            ml: MlParams::default(),
        }
    }
}

/// Why nothing is scored on a log shorter than its horizon before the cutoff.
fn short_history_reason(horizon_days: u32) -> String {
    format!("less history before the cutoff than the {horizon_days}-day horizon")
}

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
        as_of - self.horizon_micros()
    }

    /// The horizon in microseconds: how long before the as-of date the cutoff is.
    pub fn horizon_micros(&self) -> i64 {
        days(self.params.horizon_days)
    }

    /// Each rule's name and the features it reads: besides them, the features at the
    /// cutoff only feed the models, which read numbers.
    pub fn rule_features(&self) -> impl Iterator<Item = (&str, &str)> {
        (self.rules.iter()).flat_map(|(rule, _)| rule.features().map(|f| (rule.name(), f)))
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
        // The churn labels look `churn_window_days` past the cutoff, which is
        // `horizon_days` before the as-of date: a longer window reads the future.
        if self.ml.churn_window_days > self.horizon_days {
            return Err(Error::Params(format!(
                "`ml.churn_window_days` ({}) is longer than `horizon_days` ({}): the churn \
                 labels would read events after the as-of date; set it to at most {}",
                self.ml.churn_window_days, self.horizon_days, self.horizon_days
            )));
        }
        // Before anything is built per rule: a pipeline file with many thousands of
        // rules must fail here, in milliseconds, not after gigabytes of plans.
        rules::check_count(self.rules.len())?;
        let ml = self.ml.check()?;
        let rules = self
            .rules
            .iter()
            .map(|(name, rule)| match rules::parse_rule(name, &rule.when) {
                Ok(parsed) => Ok((parsed, rule.target)),
                Err(error) => Err(Error::RuleText {
                    rule: name.clone(),
                    error: Box::new(error),
                }),
            })
            .collect::<Result<Vec<_>>>()?;
        rules::check_names(rules.iter().map(|(rule, _)| rule))?;
        Ok(CheckedPredictParams {
            params: self.clone(),
            rules,
            ml,
        })
    }
}

/// The event columns [`predict`] (and [`part_inputs`]) read.
pub const EVENT_COLUMNS: &[&str] = &[
    userlens_model::columns::USER_ID,
    userlens_model::columns::EVENT_TIME,
    userlens_model::columns::EVENT_TYPE,
    userlens_model::columns::AMOUNT,
];

/// Everything the stage produces.
#[derive(Debug, Clone)]
pub struct Predictions {
    /// `user_id, p_alive, expected_purchases, p_purchase, predicted_revenue,
    /// churn_risk`, then `p_alive_bgnbd, clv, rfm_score, segment`, one column per rule,
    /// and `p_alive_model, expected_purchases_model, predicted_revenue_model` (the
    /// model that gave each user's value, `domains.rs`).
    pub user_predictions: DataFrame,
    /// `predictor, target, status, reason, auc, log_loss, brier, lift_top_decile,
    /// positives, negatives, fitted_users, scored_users, choice_used_holdout,
    /// correlation, mae, top_decile_revenue_share, population`: a row per predictor
    /// and target
    /// (`status` scored, skipped or degenerate); `expected_purchases` (against the
    /// horizon's purchase days: AUC of buying, correlation and mean absolute error of
    /// the count) and `p_alive` (against any event in the horizon) rows; and revenue
    /// rows (`revenue` for `predicted_revenue` as written, `revenue:ml` and
    /// `revenue:expected_purchases*gamma-gamma` alone) whose last three columns score
    /// them on the purchase holdout.
    pub model_report: DataFrame,
    /// `predictor, target, bin, mean_predicted, observed_rate, count, population`.
    pub calibration: DataFrame,
    /// `predictor, target, decile, lift, population`.
    pub lift: DataFrame,
    /// `user_id, r_score, f_score, m_score, rfm_score, segment`.
    pub segments: DataFrame,
    /// Fitted parameters and how each fit went (`models.json`).
    pub models: serde_json::Value,
}

/// Why a predictor with no held-out user to score is skipped.
const EMPTY_HOLDOUT: &str = "the holdout is empty";

/// The `target` of the revenue rows of the model report.
const REVENUE_TARGET: &str = "revenue";
/// The row of `predicted_revenue` as written: the chosen revenue model.
const REVENUE: &str = "revenue";
/// The row of the ML revenue model alone.
const REVENUE_ML: &str = "revenue:ml";
/// The row of expected purchases × Gamma-Gamma spend alone.
const REVENUE_COUNTS: &str = "revenue:expected_purchases*gamma-gamma";
/// The `target` of the `p_alive` row: any event in the horizon.
const ACTIVE_TARGET: &str = "active";
/// The `target` of the `expected_purchases` row: purchases in the horizon.
const PURCHASES_TARGET: &str = "purchases";

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
    /// A count's correlation and mean absolute error against the horizon's count.
    counts: Option<(Option<f64>, f64)>,
    /// Why the scores are not those of a probability (a rule's 0 or 1), when they
    /// are not: then only its ranking and lift are reported, not its log loss,
    /// Brier score or calibration.
    ranking_only: Option<&'static str>,
    /// Scored on the held-out customers only (the count models' population, and the
    /// models' rows that compare with them), not every held-out user.
    customers_only: bool,
}

fn score(
    predictor: &str,
    target: Target,
    p: &[f64],
    y: &[bool],
    gate: &Eligibility,
) -> Result<Scored> {
    score_as(predictor, target.name(), p, y, gate)
}

/// [`score`] against a target of any name.
fn score_as(
    predictor: &str,
    target: &'static str,
    p: &[f64],
    y: &[bool],
    gate: &Eligibility,
) -> Result<Scored> {
    // No held-out user (one user, or no label in the horizon) is a skip, as the ML
    // backtests report it, not a failed stage.
    if y.is_empty() {
        return Ok(skipped_row(predictor, target, EMPTY_HOLDOUT.to_string()));
    }
    let evaluation = metrics::evaluate(p, y, gate)?;
    let scored = matches!(evaluation, Evaluation::Scored(_));
    Ok(Scored {
        predictor: predictor.to_string(),
        target,
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
        counts: None,
        ranking_only: None,
        customers_only: false,
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
        counts: None,
        ranking_only: None,
        customers_only: false,
    }
}

/// Runs `f`, logging how long `what` took (`-vv`).
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = std::time::Instant::now();
    let value = f();
    tracing::debug!("predict: {what} in {:.2} s", start.elapsed().as_secs_f64());
    value
}

mod counts;
mod domains;
mod events;
mod report;
mod scoring;
mod targets;
mod users;

pub(crate) use crate::error::polars_err;
pub use crate::error::{Error, Result};
use counts::{count_predictions, expected_spend, fit_counts, report_json};
use events::{FromEvents, from_events};
pub use events::{PartInputs, RemoteInputs, part_inputs};
use report::report_tables;
use scoring::{AtCutoff, horizon_labels, score_columns};
use targets::{Shared, for_activity, for_target};
use users::{by_user, values_of};

/// Runs every predictor on events in parts that each hold whole users (one part
/// for events in memory). `features_cutoff` are the features as of
/// [`CheckedPredictParams::cutoff`], `features_now` as of `as_of` (UTC microseconds).
/// Each part's labels and purchase histories come from `remote` (a cluster) when
/// given, else are read here.
pub fn predict(
    events: &[LazyFrame],
    features_cutoff: &DataFrame,
    features_now: &DataFrame,
    as_of: i64,
    params: &CheckedPredictParams,
    seed: u64,
    remote: Option<&dyn RemoteInputs>,
) -> Result<Predictions> {
    let p = &params.params;
    let horizon_micros = days(p.horizon_days);
    let cutoff = params.cutoff(as_of);
    let unit_days = p.unit.days();
    let horizon_units = f64::from(p.horizon_days) / unit_days;
    // Category shares follow the most common categories of each date, so the two
    // tables can differ. The models scored on the holdout use the features at the
    // cutoff alone, whatever the horizon brought; the ones refitted for the as-of
    // date, those both tables have.
    let at_cutoff = ml::numeric_features(features_cutoff);
    let refit_names: Vec<String> = ml::numeric_features(features_now)
        .into_iter()
        .filter(|name| at_cutoff.contains(name))
        .collect();

    let FromEvents {
        targets,
        churn,
        first_event,
        summary_cutoff,
        summary_now,
        horizon_purchases,
    } = timed("labels and purchase histories", || {
        from_events(
            events,
            cutoff,
            as_of,
            p.unit,
            params.ml.churn_window_days,
            remote,
        )
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
    let users = ml::read_ids(features_now, "features")?;
    // Scored here rather than where the predictions are put together, at the end,
    // so that its working memory does not add to theirs.
    let segments = timed("segments", || segments::score(features_now))?;
    let rules: Vec<Rule> = params.rules.iter().map(|(r, _)| r.clone()).collect();
    let rules_at_cutoff = rules::apply_each(&rules, features_cutoff);
    let table_cutoff = if short_history {
        ml::Table::default()
    } else {
        ml::Table::read(features_cutoff, &at_cutoff)?
    };
    let shared = Shared {
        features_cutoff,
        features_now,
        table_cutoff: &table_cutoff,
        refit_names: &refit_names,
        params,
        summary_cutoff: &summary_cutoff,
        fits_cutoff: fits_cutoff.as_ref(),
        rules_at_cutoff: &rules_at_cutoff,
        short_history,
        horizon_units,
        users: &users,
        seed,
    };
    let (((purchase, churn_outcome), activity), fits_now) = rayon::join(
        || {
            rayon::join(
                || {
                    rayon::join(
                        || for_target(Target::Purchase, &targets, &shared),
                        || for_target(Target::Churn, &churn, &shared),
                    )
                },
                || for_activity(&targets, &shared),
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
    // The features read for the targets are not read again.
    drop(table_cutoff);
    let (purchase, churn_outcome, activity) = (purchase?, churn_outcome?, activity?);
    let labels = horizon_labels(&targets, features_cutoff, horizon_purchases)?;
    let at_cutoff = AtCutoff {
        summary: summary_cutoff.as_ref().ok(),
        fits: fits_cutoff.as_ref(),
        horizon_units,
        customers_now: (fits_now.as_ref()).is_some_and(|f| f.pareto.is_ok() || f.bgnbd.is_ok()),
    };
    let (column_rows, weight) = if short_history {
        let reason = short_history_reason(p.horizon_days);
        let rows = vec![
            skipped_row("expected_purchases", PURCHASES_TARGET, reason.clone()),
            skipped_row("p_alive", ACTIVE_TARGET, reason),
        ];
        (rows, 1.0)
    } else {
        timed("columns on the holdout", || {
            score_columns(
                &at_cutoff,
                purchase.backtested.as_ref(),
                activity.backtested.as_ref(),
                &labels,
                &params.ml.eligibility(),
            )
        })?
    };
    let scored: Vec<Scored> = purchase
        .scored
        .into_iter()
        .chain(column_rows)
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
    let mut spend = none();
    let mut p_alive_source = "pareto/nbd";
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
        if let Ok(gg) = &fits.gamma {
            spend = expected_spend(&gg.model, summary, &users);
        }
        if let (Ok(bg), Ok(_)) = (&fits.bgnbd, &fits.gamma) {
            let rate = (1.0 + p.annual_discount_rate).powf(unit_days / 365.0) - 1.0;
            let index = counts::customer_index(summary);
            // Each customer's spend as `spend` has it (a one-time buyer's from
            // their one purchase).
            let spend = &spend;
            clv.par_iter_mut()
                .zip(&users)
                .zip(spend)
                .for_each(|((slot, user), spend)| {
                    if let (Some(&i), Some(spend)) = (index.get(user), spend) {
                        *slot = crate::stats::discounted_value(
                            &bg.model,
                            summary.frequency[i],
                            summary.recency[i],
                            summary.t[i],
                            *spend,
                            horizon_units,
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
        p_alive_source = domains::BGNBD;
    }

    let mut ml_models = serde_json::Map::new();
    ml_models.insert(Target::Purchase.name().into(), purchase.model);
    ml_models.insert(Target::Churn.name().into(), churn_outcome.model);
    ml_models.insert(ml::ACTIVE.into(), activity.model);
    models.insert("ml".into(), serde_json::Value::Object(ml_models));
    let (p_purchase, churn_risk) = (purchase.propensity, churn_outcome.propensity);
    let churn_risk = among_the_active(churn_risk, features_now, params.ml.churn_window_days);

    let mut ml_revenue = none();
    if p_purchase.iter().any(Option::is_some) {
        let revenue = ml::fit_revenue(features_cutoff, &targets)?;
        let probabilities: Vec<f64> = p_purchase.iter().map(|v| v.unwrap_or(0.0)).collect();
        ml_revenue = revenue.predict_users(features_now, &users, &probabilities)?;
        models.insert(
            "revenue".into(),
            serde_json::to_value(&revenue).unwrap_or_default(),
        );
    }

    // Users without a purchase: expected purchases from the first-purchase model,
    // P(alive) from their activity, both refitted on every labelled user.
    let customers = summary_now
        .as_ref()
        .map(counts::customer_index)
        .unwrap_or_default();
    let (conversion, activity_rate) = domains::non_buyer_rates(
        summary_cutoff.as_ref().ok(),
        &labels.users,
        &Default::default(),
    );
    // What the user predictions are not made from is let go before they are made.
    drop(labels);
    drop((targets, churn, rules_at_cutoff, summary_cutoff));
    let kind_name = |prefix: &str, b: &Option<targets::Backtested>| {
        b.as_ref()
            .map(|b| domains::ml_name(prefix, b.kind))
            .unwrap_or_default()
    };
    let first_purchase_model = kind_name(scoring::FIRST_PURCHASE, &purchase.backtested);
    let expected = domains::sourced(&users, &customers, &expected, domains::BGNBD, |i| {
        domains::first_purchase(p_purchase[i], &first_purchase_model, conversion)
    });
    let activity_model = kind_name(scoring::ACTIVITY, &activity.backtested);
    let p_alive = domains::sourced(&users, &customers, &p_alive, p_alive_source, |i| {
        domains::activity(activity.propensity[i], &activity_model, activity_rate)
    });
    let counts_revenue = domains::times(&expected.values, &spend);
    let (predicted_revenue, revenue_model) = domains::blend(weight, &counts_revenue, &ml_revenue);
    models.insert(
        "revenue_blend".into(),
        domains::blend_json(weight, &counts_revenue, &ml_revenue),
    );
    let sources = DataFrame::new(
        users.len(),
        vec![
            Column::new(USER_ID.into(), users.clone()),
            Column::new("p_alive_model".into(), p_alive.models),
            Column::new("expected_purchases_model".into(), expected.models),
            Column::new("predicted_revenue_model".into(), revenue_model),
        ],
    )
    .map_err(polars_err("build the model columns"))?;
    columns.extend([
        Column::new("p_alive".into(), p_alive.values),
        Column::new("expected_purchases".into(), expected.values),
        Column::new("p_purchase".into(), p_purchase),
        Column::new("predicted_revenue".into(), predicted_revenue),
        Column::new("churn_risk".into(), churn_risk),
        Column::new("p_alive_bgnbd".into(), p_alive_bg),
        Column::new("clv".into(), clv),
    ]);
    let mut user_predictions =
        DataFrame::new(users.len(), columns).map_err(polars_err("build user predictions"))?;
    // What the columns were made from is let go before the joins, the stage's peak
    // of memory.
    drop(customers);
    drop((summary_now, fits_now, activity.propensity));
    drop((purchase.backtested, activity.backtested));

    let segment_columns = segments.select([USER_ID, "rfm_score", "segment"]);
    let segment_columns = segment_columns.map_err(polars_err("join RFM segments"))?;
    user_predictions = by_user(user_predictions, segment_columns, "join RFM segments")?;
    if !rules.is_empty() {
        let applied = rules::apply(&rules, features_now)?;
        let renamed: Vec<Expr> = std::iter::once(col(USER_ID))
            .chain(
                rules
                    .iter()
                    .map(|r| col(r.name()).alias(format!("rule_{}", r.name()))),
            )
            .collect();
        let applied = applied
            .lazy()
            .select(renamed)
            .collect()
            .map_err(polars_err("join rule outputs"))?;
        user_predictions = by_user(user_predictions, applied, "join rule outputs")?;
        let ids = user_predictions
            .column(USER_ID)
            .and_then(|c| c.str().cloned())
            .map_err(polars_err("join rule outputs"))?;
        if !ids.iter().is_sorted() {
            user_predictions = user_predictions
                .sort([USER_ID], SortMultipleOptions::default())
                .map_err(polars_err("join rule outputs"))?;
        }
    }

    // The columns naming each value's model come last: columns are only added.
    user_predictions = by_user(user_predictions, sources, "join the model columns")?;

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

/// Churn risk only where churn is defined: a user with an event in the
/// `window_days` before the as-of date (the model's population, GA4's); blank for the
/// others, whom the model never saw and who have left by that definition already.
fn among_the_active(
    churn_risk: Vec<Option<f64>>,
    features_now: &DataFrame,
    window_days: u32,
) -> Vec<Option<f64>> {
    let Some(recency) = features_now
        .column("recency_days")
        .ok()
        .and_then(|c| c.f64().ok())
    else {
        return churn_risk;
    };
    churn_risk
        .into_iter()
        .zip(recency.iter())
        .map(|(risk, days)| risk.filter(|_| days.is_some_and(|d| d <= f64::from(window_days))))
        .collect()
}

#[cfg(test)]
mod tests;
