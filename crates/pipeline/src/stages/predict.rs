//! `predict`: events + features -> predictions, scored on a time-split holdout.

use userlens_features::RemoteParts;
use userlens_model::FeatureFamily;
use userlens_predict::RemoteInputs;

use crate::record::StageMeta;
use crate::stage::{Declared, Inputs, Invalid, Output, Stage, StageContext, StageError, Tables};
use crate::stages::features::default_as_of;
use crate::stages::{FEATURES_AT_CUTOFF, Features, FeaturesAsked, FeaturesChecked};

/// Behaviour predictions.
pub struct Predict;

/// Checked parameters of a predict stage.
#[derive(Debug, Clone)]
pub struct PredictChecked {
    /// Checked prediction parameters.
    pub params: userlens_predict::CheckedPredictParams,
    /// Whether the first features stage it needs makes the features at its cutoff
    /// (`None` before it was asked, when the pipeline is planned).
    pub features_made: Option<bool>,
}

impl Stage for Predict {
    type Params = userlens_predict::PredictParams;
    type Checked = PredictChecked;
    const USES: &'static str = "predict";
    const PROVIDES: &'static [&'static str] = &[
        "user_predictions",
        "model_report",
        "calibration",
        "lift",
        "segments",
    ];
    const REQUIRES: &'static [&'static str] = &["events", "features"];

    fn check(params: Self::Params, _: &Declared) -> Result<Self::Checked, Invalid> {
        Ok(PredictChecked {
            params: params.check().map_err(|e| {
                use userlens_predict::Error as E;
                // A mistake in a rule's text is located at its `when`.
                match &e {
                    E::RuleText { rule, .. }
                    | E::UnknownFeature { rule, .. }
                    | E::RuleNotNumeric { rule, .. }
                    | E::RuleNotText { rule, .. } => {
                        Invalid::new(&e).about(format!("rules.{rule}.when"))
                    }
                    _ => Invalid::new(e),
                }
            })?,
            features_made: None,
        })
    }

    fn defaults() -> Option<toml::Table> {
        super::defaults::<Self::Params>()
    }

    /// The RFM segments read the `rfm` family's features.
    fn check_need(
        checked: &Self::Checked,
        needed: &dyn std::any::Any,
    ) -> Result<(), (String, String)> {
        let Some(features) = needed.downcast_ref::<FeaturesChecked>() else {
            return Ok(());
        };
        if !features.params.has(FeatureFamily::Rfm) {
            return Err((
                "families".into(),
                "reads its `rfm` features (the RFM segments): add \"rfm\" to `families`".into(),
            ));
        }
        // A rule's feature from a family the stage does not make fails every run, as
        // does a users-table attribute where no users table is joined.
        for (rule, feature) in checked.params.rule_features() {
            let Some(key) = features.params.missing(feature, features.users.is_some()) else {
                continue;
            };
            let why = match (key, userlens_model::family_of(feature)) {
                ("users", _) => format!(
                    "reads the users-table attribute `{feature}` in rule `{rule}`, but no \
                     users table is joined: set `users`"
                ),
                ("families", Some(family)) => format!(
                    "reads `{feature}` in rule `{rule}`: add \"{}\" to `families`",
                    family.name()
                ),
                _ => format!("reads `{feature}` in rule `{rule}`, which `{key}` leaves out"),
            };
            return Err((key.into(), why));
        }
        Ok(())
    }

    /// The features at the cutoff, from the pass of the first features stage it
    /// needs (the one it reads).
    fn ask(checked: &mut Self::Checked, needed: &mut dyn std::any::Any) -> bool {
        let Some(features) = needed.downcast_mut::<FeaturesChecked>() else {
            return false;
        };
        if checked.features_made.is_some() {
            return false;
        }
        let asked = features_asked(&checked.params);
        // One earlier time per features stage: the first stage to ask sets it.
        let made = *features.asked.get_or_insert_with(|| asked.clone()) == asked;
        checked.features_made = Some(made);
        made
    }

    /// Its own features at the cutoff read every column; the labels and purchase
    /// histories only a few.
    fn event_columns(checked: &Self::Checked) -> Option<&'static [&'static str]> {
        (checked.features_made == Some(true)).then_some(userlens_predict::EVENT_COLUMNS)
    }

    fn table_columns(checked: &Self::Checked, table: &str) -> Option<&'static [&'static str]> {
        match table {
            "features" => None,
            FEATURES_AT_CUTOFF if checked.features_made == Some(true) => None,
            _ => Some(&[]),
        }
    }

    fn run(
        checked: &Self::Checked,
        ctx: &mut StageContext<'_>,
        inputs: &Inputs<'_>,
    ) -> Result<Output, StageError> {
        let params = &checked.params;
        let events_in = inputs.events()?;
        let events = events_in.parts()?;
        let features_now = inputs.table("features")?;
        let after_data = default_as_of(&events)?;
        let as_of = ctx.as_of().unwrap_or(after_data);
        if as_of > after_data {
            let empty_days = (as_of - after_data) / userlens_model::time::DAY_MICROS;
            let what = match after_data <= params.cutoff(as_of) {
                true => "the horizon before it holds no events, so predictors that need them \
                         are skipped"
                    .to_string(),
                false => format!(
                    "the last {empty_days} of the {} days of the horizon before it hold no \
                     events, so what users did in it is undercounted",
                    params.horizon_days()
                ),
            };
            ctx.note(format!(
                "the as-of date {} is after the last event (on {}): {what}",
                userlens_model::time::date_string(as_of),
                userlens_model::time::date_string(after_data - 1),
            ));
        }
        let features = inputs.params_of::<Features>().ok_or_else(|| {
            StageError::Run(crate::Error::Usage(format!(
                "stage `{}` needs a features stage",
                ctx.name()
            )))
        })?;
        // Read again, and keyed as read: it may have changed since the features.
        let (users, users_read) = features.users_table()?.unzip();
        let asked = features_asked(params);
        let cutoff = params.cutoff(as_of);
        let remote = ctx.remote_parts(&events_in);
        // Made by the features stage when it was asked (the run gave this stage
        // only the event columns its labels read then).
        let made = match checked.features_made {
            Some(true) => Some(inputs.table(FEATURES_AT_CUTOFF)?),
            _ => None,
        };
        let (features_cutoff, excluded) = match made {
            Some(made) => {
                // The users table as it was at the cutoff, for the columns left out.
                let excluded = match &users {
                    Some(users) => {
                        userlens_features::users_at_cutoff(users, cutoff, &features.params)?
                            .excluded
                    }
                    None => Vec::new(),
                };
                (made.clone(), excluded)
            }
            None => {
                let started = std::time::Instant::now();
                // The users table as it was at the cutoff: nothing known only later
                // trains the models (dates after it are null, columns not declared
                // static left out).
                let built = userlens_features::build_parts_at_cutoff(
                    &events,
                    cutoff,
                    users.as_ref(),
                    &if asked.text {
                        features.params.clone()
                    } else {
                        features.params.without_text()
                    },
                    remote.as_ref().map(|r| r as &dyn RemoteParts),
                )?;
                tracing::info!(
                    "predict: features at the cutoff in {:.2} s",
                    started.elapsed().as_secs_f64()
                );
                built
            }
        };
        let predictions = userlens_predict::predict(
            &events,
            &features_cutoff,
            features_now,
            as_of,
            params,
            ctx.seed(),
            remote.as_ref().map(|r| r as &dyn RemoteInputs),
        )
        .map_err(|e| rule_error(e, features.users.as_deref(), ctx.name()))?;
        ctx.write_json(userlens_model::files::MODELS, &predictions.models)?;
        let unapplied = not_applied(&predictions.models, String::new());
        let mut meta = StageMeta {
            models: Some(predictions.models),
            inputs: users_read.into_iter().collect(),
            ..StageMeta::default()
        };
        if !excluded.is_empty() {
            meta.notes.push(format!(
                "users-table columns left out of the training features (not declared in \
                 `static_columns`, so possibly known only after the cutoff): {}",
                excluded.join(", ")
            ));
        }
        // A model its holdout could not score gives no values: say which, and why.
        for (model, reason) in unapplied {
            meta.notes
                .push(format!("{}: the model `{model}` is {reason}", ctx.name()));
        }
        // Users no model or fallback rate covers (such as non-buyers when nobody
        // without a purchase was seen before the cutoff) are blank: say how many.
        let blank = ["p_alive", "expected_purchases"]
            .iter()
            .filter_map(|c| predictions.user_predictions.column(c).ok())
            .map(polars::prelude::Column::null_count)
            .max()
            .unwrap_or(0);
        if blank > 0 {
            meta.notes.push(format!(
                "{}: {blank} of {} users {} no `p_alive` or `expected_purchases`: no model \
                 or rate covers them (see model_report.csv), and persona means leave them out",
                ctx.name(),
                predictions.user_predictions.height(),
                if blank == 1 { "has" } else { "have" }
            ));
        }
        let mut tables = Tables::default();
        tables.insert("user_predictions", predictions.user_predictions);
        tables.insert("model_report", predictions.model_report);
        tables.insert("calibration", predictions.calibration);
        tables.insert("lift", predictions.lift);
        tables.insert("segments", predictions.segments);
        Ok(Output { tables, meta })
    }
}

/// The models in `models.json` skipped as not applied (their holdout could not score
/// them), each by its path of keys, with the reason.
fn not_applied(models: &serde_json::Value, path: String) -> Vec<(String, String)> {
    match models {
        serde_json::Value::Object(map) => map
            .iter()
            .flat_map(|(key, value)| {
                let at = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match value.as_str() {
                    Some(reason)
                        if key == "skipped"
                            && reason.starts_with(userlens_predict::ml::NOT_APPLIED) =>
                    {
                        vec![(path.clone(), reason.to_string())]
                    }
                    _ => not_applied(value, at),
                }
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The features predict reads at its cutoff: the models read numbers, so the text
/// features (which cost the most to build) only when a rule reads one.
fn features_asked(params: &userlens_predict::CheckedPredictParams) -> FeaturesAsked {
    FeaturesAsked {
        before: params.horizon_micros(),
        text: params
            .rule_features()
            .any(|(_, f)| userlens_features::TEXT_FEATURES.contains(&f)),
    }
}

/// The stage's error, where a rule is at fault: a users-table column missing or of
/// the wrong type is the input's (refused, naming the file: only it gives the
/// columns; `validate` checks every other feature), any other mistake of a rule the
/// pipeline file's.
/// Retried, either fails the same.
fn rule_error(
    e: userlens_predict::Error,
    users: Option<&std::path::Path>,
    stage: &str,
) -> StageError {
    use userlens_predict::Error::{
        DuplicateRule, ReservedRuleName, RuleNotNumeric, RuleNotText, UnknownFeature,
    };
    match (&e, users) {
        (
            RuleNotNumeric { feature, .. }
            | RuleNotText { feature, .. }
            | UnknownFeature { feature, .. },
            Some(users),
        ) if feature.starts_with(userlens_model::USER_ATTRIBUTE_PREFIX) => {
            let which = match e {
                UnknownFeature { .. } => "no such column in",
                _ => "a column of",
            };
            StageError::refused(format!(
                "{e} ({which} the users table `{}`)",
                users.display()
            ))
        }
        (
            UnknownFeature { .. }
            | RuleNotNumeric { .. }
            | RuleNotText { .. }
            | DuplicateRule { .. }
            | ReservedRuleName { .. },
            _,
        ) => StageError::settings(stage, e),
        _ => e.into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn models_not_applied_are_found_at_any_depth() {
        let models = serde_json::json!({
            "ml": {
                "churn": { "skipped": "not applied: only 59 positive users" },
                "p_purchase": { "kind": "logistic" },
            },
            "bg/nbd": { "skipped": "no repeat buyers" },
        });
        assert_eq!(
            super::not_applied(&models, String::new()),
            [(
                "ml.churn".to_string(),
                "not applied: only 59 positive users".to_string()
            )]
        );
    }
}
