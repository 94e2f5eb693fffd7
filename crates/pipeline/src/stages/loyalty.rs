//! `loyalty`: events (+ personas, segments, features, a survey) -> retention
//! cohorts, lifecycle, stickiness, repeat purchase, time to churn, NPS and drivers.

use std::path::PathBuf;

use userlens_loyalty::EventMatch;
use userlens_report::files;

use crate::record::StageMeta;
use crate::stage::{Declared, Inputs, Invalid, Output, Stage, StageContext, StageError, Tables};

/// Satisfaction and loyalty.
pub struct Loyalty;

/// Checked parameters of a loyalty stage.
#[derive(Debug, Clone)]
pub struct LoyaltyChecked {
    /// The stage's own parameters.
    pub params: userlens_loyalty::CheckedLoyaltyParams,
    /// Whether the features stage it needs makes the features at the start of the
    /// last complete period (`Some(false)`: another unit's were asked for first).
    pub period_features: Option<bool>,
}

impl std::ops::Deref for LoyaltyChecked {
    type Target = userlens_loyalty::CheckedLoyaltyParams;
    fn deref(&self) -> &Self::Target {
        &self.params
    }
}

impl Stage for Loyalty {
    type Params = userlens_loyalty::LoyaltyParams;
    type Checked = LoyaltyChecked;
    const USES: &'static str = "loyalty";
    // None always: a log with no event before the as-of date gets a note instead
    // of tables.
    const PROVIDES: &'static [&'static str] = &[];
    const MAY_PROVIDE: &'static [&'static str] = &[
        "retention",
        "retention_by_group",
        "retention_curve",
        "lifecycle",
        "repeat_purchase",
        "survival",
        "satisfaction",
        "nps",
        "drivers",
    ];
    const REQUIRES: &'static [&'static str] = &["events"];

    fn check(params: Self::Params, declared: &Declared) -> Result<Self::Checked, Invalid> {
        if declared.needs == 0 {
            return Err(Invalid::at_uses(
                "needs the stage that ingests the events",
                "add `needs = [\"ingest\"]` (and the features, personas and predict stages to cut \
                 by persona and segment)",
            ));
        }
        Ok(LoyaltyChecked {
            params: params.check().map_err(Invalid::new)?,
            period_features: None,
        })
    }

    /// The drivers of staying read the features from before the period that defines
    /// it: the features stage makes them in its pass.
    fn ask(checked: &mut Self::Checked, needed: &mut dyn std::any::Any) -> bool {
        let Some(features) = needed.downcast_mut::<super::FeaturesChecked>() else {
            return false;
        };
        if checked.period_features.is_some() {
            return false;
        }
        let unit = checked.params.unit;
        let made = *features.period_start.get_or_insert(unit) == unit;
        checked.period_features = Some(made);
        made
    }

    fn input_files(checked: &Self::Checked) -> Vec<PathBuf> {
        checked.survey.iter().cloned().collect()
    }

    fn event_columns(_: &Self::Checked) -> Option<&'static [&'static str]> {
        Some(userlens_loyalty::EVENT_COLUMNS)
    }

    fn table_columns(_: &Self::Checked, table: &str) -> Option<&'static [&'static str]> {
        match table {
            "assignments" => Some(userlens_loyalty::ASSIGNMENT_COLUMNS),
            "segments" => Some(userlens_loyalty::SEGMENT_COLUMNS),
            // Every numeric feature is a candidate driver.
            "features" | super::FEATURES_AT_PERIOD_START => None,
            _ => Some(&[]),
        }
    }

    fn run(
        params: &Self::Checked,
        ctx: &mut StageContext<'_>,
        inputs: &Inputs<'_>,
    ) -> Result<Output, StageError> {
        let parts = inputs.events()?.parts()?;
        let mut meta = StageMeta::default();
        let survey = match &params.survey {
            Some(path) => {
                // A survey written while it was read keys nothing (a failure).
                let unchanged =
                    userlens_ingest::Unchanged::begin(path).map_err(StageError::of_input)?;
                let survey = userlens_ingest::read_survey(path)
                    .map_err(|e| StageError::of_input(unchanged.or_changed(e)))?;
                meta.inputs
                    .push(unchanged.check().map_err(StageError::of_input)?);
                ctx.write_csv(files::SURVEY_QUARANTINE, &survey.quarantine)?;
                let refused = survey.quarantine.height();
                if refused > 0 {
                    ctx.note(format!(
                        "{refused} of {} survey rows in `{}` were quarantined; see \
                         survey_quarantine.csv",
                        survey.read,
                        path.display()
                    ));
                }
                Some(survey)
            }
            None => None,
        };
        if params.period_features == Some(false) {
            ctx.note(format!(
                "{}: the features stage makes the features at the start of the last complete \
                 period for another loyalty stage's unit: `retained`'s drivers here are read at \
                 the as-of date, where activity counts hold the period that defines it",
                ctx.name()
            ));
        }
        let input = userlens_loyalty::LoyaltyInput {
            parts: &parts,
            as_of: ctx.as_of(),
            assignments: inputs.get("assignments"),
            segments: inputs.get("segments"),
            features: inputs.get("features"),
            features_at_period_start: match params.period_features {
                Some(true) => inputs.get(super::FEATURES_AT_PERIOD_START),
                _ => None,
            },
            survey: survey.as_ref().map(|s| &s.answers),
        };
        let started = std::time::Instant::now();
        let t = match userlens_loyalty::loyalty(&input, params) {
            Ok(t) => t,
            // Nothing to follow: the run goes on without these tables, and says why.
            Err(e @ userlens_loyalty::Error::NoEvents) => {
                ctx.note(format!("no loyalty tables: {e}"));
                return Ok(Output {
                    tables: Tables::default(),
                    meta,
                });
            }
            Err(e) => return Err(StageError::Failed(Box::new(e))),
        };
        tracing::info!(
            "loyalty: tables in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        meta.as_of = Some(t.as_of);
        // An event parameter that matched nothing (a misspelt type) empties tables.
        let none = |param: &str, event: &EventMatch, what: &str| match event {
            EventMatch::Named(name) => {
                format!("no `{name}` event (`{param}`) before the as-of date: {what}")
            }
            EventMatch::Any => format!("no event (`{param}`) before the as-of date: {what}"),
        };
        if t.matched.start == 0 {
            ctx.note(none(
                "start_event",
                &params.start,
                "the retention tables are empty",
            ));
        }
        if let Some((earlier, first)) = &t.earlier {
            ctx.note(format!(
                "the events span {} {unit}s, more than the {max} a cohort table holds: the \
                 loyalty tables follow the last {max}, from {first}; the {earlier} {unit}s before \
                 only tell who was active earlier (returning or resurrecting, not new), \
                 and survival leaves those users out",
                earlier + userlens_loyalty::MAX_PERIODS,
                unit = params.unit.name(),
                max = userlens_loyalty::MAX_PERIODS,
            ));
        }
        if t.matched.ret == 0 {
            ctx.note(none(
                "return_event",
                &params.ret,
                "no user returns in the retention, lifecycle and survival tables",
            ));
        }
        if t.matched.purchase == 0 {
            let purchase = EventMatch::Named(params.purchase.clone());
            ctx.note(none(
                "purchase_event",
                &purchase,
                "repeat_purchase.csv is empty (refunds, negative amounts, do not count)",
            ));
        }
        if t.matched.ret > 0 && t.lifetime.height() == 0 {
            let others = match t.earlier {
                Some(_) => "every user not active before the tables' first period",
                None => "every user",
            };
            ctx.note(format!(
                "no user's churn is known yet: a user churns after {} days without a return \
                 event, and {others} was first active within that many days of the as-of \
                 date: survival.csv and lifetime.csv are empty",
                params.churn_after_days
            ));
        }
        if let Some(nps) = &t.nps
            && nps.height() == 0
        {
            ctx.note("the survey has no answer before the as-of date: nps.csv is empty");
        }
        if t.nps_unplaced > 0 {
            ctx.note(format!(
                "{} survey answers come from users in no persona or segment (no events \
                 before the as-of date): nps.csv counts them in its `all` row only",
                t.nps_unplaced
            ));
        }
        let files = [
            (files::RETENTION, &t.retention),
            (files::RETENTION_BY_GROUP, &t.retention_by_group),
            (files::RETENTION_CURVE, &t.retention_curve),
            (files::LIFECYCLE, &t.lifecycle),
            (files::LIFECYCLE_BY_GROUP, &t.lifecycle_by_group),
            (files::STICKINESS, &t.stickiness),
            (files::STICKINESS_BY_GROUP, &t.stickiness_by_group),
            (files::ACTIVE_DAYS, &t.active_days),
            (files::REPEAT_PURCHASE, &t.repeat_purchase),
            (files::REPEAT_PURCHASE_BY_GROUP, &t.repeat_purchase_by_group),
            (files::SURVIVAL, &t.survival),
            (files::LIFETIME, &t.lifetime),
            (files::SATISFACTION, &t.satisfaction),
        ];
        for (file, df) in files {
            ctx.write_csv(file, df)?;
        }
        let mut tables = Tables::default();
        if let Some(nps) = t.nps {
            ctx.write_csv(files::NPS, &nps)?;
            tables.insert("nps", nps);
        }
        if let Some(drivers) = t.drivers {
            ctx.write_csv(files::DRIVERS, &drivers)?;
            tables.insert("drivers", drivers);
        }
        tables.insert("retention", t.retention);
        tables.insert("retention_by_group", t.retention_by_group);
        tables.insert("retention_curve", t.retention_curve);
        tables.insert("lifecycle", t.lifecycle);
        tables.insert("repeat_purchase", t.repeat_purchase);
        tables.insert("survival", t.survival);
        tables.insert("satisfaction", t.satisfaction);
        Ok(Output { tables, meta })
    }
}
