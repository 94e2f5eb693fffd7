//! The stage's parameters as a pipeline file writes them, and their check.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::calendar::Unit;
use crate::error::{Error, Result};
use userlens_model::time::MAX_WINDOW_DAYS as MAX_DAYS;

/// The event name that stands for every event type.
pub const ANY_EVENT: &str = "any";

/// Parameters of the loyalty stage, as written under `with`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoyaltyParams {
    /// Calendar unit of cohorts and periods: `day`, `week` (from Monday) or `month`.
    pub unit: Unit,
    /// The event whose first occurrence puts a user in a cohort (`any`: every event).
    pub start_event: String,
    /// The event that makes a user active in a period (`any`: every event).
    pub return_event: String,
    /// The event that is a purchase (rows with a negative amount, refunds, are not).
    pub purchase_event: String,
    /// A buyer repeats with a second purchase at most this many days after the first.
    pub repeat_window_days: u32,
    /// A user has churned after this many days without a return event.
    pub churn_after_days: u32,
    /// Survey answers (`user_id, answered_at, score` 0-10), CSV or Parquet.
    pub survey: Option<PathBuf>,
}

impl Default for LoyaltyParams {
    fn default() -> Self {
        LoyaltyParams {
            unit: Unit::Month,
            start_event: ANY_EVENT.to_string(),
            return_event: ANY_EVENT.to_string(),
            purchase_event: userlens_model::event_types::PURCHASE.to_string(),
            repeat_window_days: 90,
            churn_after_days: 30,
            survey: None,
        }
    }
}

/// Which events an event parameter selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventMatch {
    /// Every event.
    Any,
    /// Events of this type.
    Named(String),
}

/// Parameters after [`LoyaltyParams::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedLoyaltyParams {
    /// Calendar unit.
    pub unit: Unit,
    /// Cohort-defining event.
    pub start: EventMatch,
    /// Activity event.
    pub ret: EventMatch,
    /// Purchase event type.
    pub purchase: String,
    /// Repeat-purchase window in days.
    pub repeat_window_days: u32,
    /// Days without activity that make a churn.
    pub churn_after_days: u32,
    /// Survey file.
    pub survey: Option<PathBuf>,
}

impl LoyaltyParams {
    /// Checks the parameters before any data is read.
    pub fn check(&self) -> Result<CheckedLoyaltyParams> {
        let event = |name: &'static str, value: &str| -> Result<EventMatch> {
            let value = value.trim();
            if value.is_empty() {
                return Err(Error::InvalidParams {
                    name,
                    reason: format!("must name an event type, or `{ANY_EVENT}`"),
                });
            }
            Ok(if value == ANY_EVENT {
                EventMatch::Any
            } else {
                EventMatch::Named(value.to_string())
            })
        };
        let days = |name: &'static str, value: u32| -> Result<u32> {
            if (1..=MAX_DAYS).contains(&value) {
                Ok(value)
            } else {
                Err(Error::InvalidParams {
                    name,
                    reason: format!("{value} is not between 1 and {MAX_DAYS} days"),
                })
            }
        };
        let purchase = match event("purchase_event", &self.purchase_event)? {
            EventMatch::Named(name) => name,
            EventMatch::Any => {
                return Err(Error::InvalidParams {
                    name: "purchase_event",
                    reason: format!("must name one event type, not `{ANY_EVENT}`"),
                });
            }
        };
        if let Some(path) = &self.survey
            && path.as_os_str().is_empty()
        {
            return Err(Error::InvalidParams {
                name: "survey",
                reason: "is an empty path".to_string(),
            });
        }
        Ok(CheckedLoyaltyParams {
            unit: self.unit,
            start: event("start_event", &self.start_event)?,
            ret: event("return_event", &self.return_event)?,
            purchase,
            repeat_window_days: days("repeat_window_days", self.repeat_window_days)?,
            churn_after_days: days("churn_after_days", self.churn_after_days)?,
            survey: self.survey.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_monthly_any_any() {
        let params: LoyaltyParams = toml::from_str("").unwrap();
        let checked = params.check().unwrap();
        assert_eq!(checked.unit, Unit::Month);
        assert_eq!(checked.start, EventMatch::Any);
        assert_eq!(checked.ret, EventMatch::Any);
        assert_eq!(checked.purchase, "purchase");
        assert_eq!(checked.repeat_window_days, 90);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let unknown = toml::from_str::<LoyaltyParams>("units = \"week\"").unwrap_err();
        assert!(
            unknown.to_string().contains("unknown field `units`"),
            "{unknown}"
        );
        let unit = toml::from_str::<LoyaltyParams>("unit = \"year\"").unwrap_err();
        assert!(
            unit.to_string().contains("unknown variant `year`"),
            "{unit}"
        );
        let window: LoyaltyParams = toml::from_str("repeat_window_days = 0").unwrap();
        assert_eq!(
            window.check().unwrap_err().to_string(),
            "invalid loyalty parameter `repeat_window_days`: 0 is not between 1 and 3650 days"
        );
        let any: LoyaltyParams = toml::from_str("purchase_event = \"any\"").unwrap();
        assert!(any.check().is_err());
        let blank: LoyaltyParams = toml::from_str("start_event = \" \"").unwrap();
        assert!(blank.check().is_err());
        let named: LoyaltyParams =
            toml::from_str("start_event = \"purchase\"\nunit = \"week\"").unwrap();
        let checked = named.check().unwrap();
        assert_eq!(checked.start, EventMatch::Named("purchase".into()));
        assert_eq!(checked.unit, Unit::Week);
    }
}
