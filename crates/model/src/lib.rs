//! Shared vocabulary of userlens: the canonical event schema, column names, event
//! type names, feature families and the feature catalogue that names personas.
//!
//! Every other crate takes its names from here, so a column is spelled in exactly
//! one place. This crate does no I/O.
//!
//! ```
//! use userlens_model::{columns, feature_info};
//! assert_eq!(columns::USER_ID, "user_id");
//! assert_eq!(feature_info("monetary").unwrap().high, "high spend");
//! ```

use serde::{Deserialize, Serialize};

/// Canonical column names of the event table and of the per-user tables.
pub mod columns {
    /// User identifier (string, required).
    pub const USER_ID: &str = "user_id";
    /// Event time (UTC, microseconds, required).
    pub const EVENT_TIME: &str = "event_time";
    /// Event type name (`view`, `search`, `add_to_cart`, `purchase`, `rating`, ...).
    pub const EVENT_TYPE: &str = "event_type";
    /// Session identifier, from the source or made by sessionizing.
    pub const SESSION_ID: &str = "session_id";
    /// Item identifier (nullable).
    pub const ITEM_ID: &str = "item_id";
    /// Item category (nullable).
    pub const CATEGORY: &str = "category";
    /// Search query text (nullable).
    pub const QUERY: &str = "query";
    /// Purchase value; negative is a refund (nullable).
    pub const AMOUNT: &str = "amount";
    /// Satisfaction signal on a 1-5 scale (nullable).
    pub const RATING: &str = "rating";
    /// Persona identifier in persona tables.
    pub const PERSONA_ID: &str = "persona_id";
    /// Generated persona label.
    pub const LABEL: &str = "label";

    /// Every canonical event column, in output order.
    pub const EVENT_COLUMNS: [&str; 9] = [
        USER_ID, EVENT_TIME, EVENT_TYPE, SESSION_ID, ITEM_ID, CATEGORY, QUERY, AMOUNT, RATING,
    ];
    /// Columns a source must provide (directly or through a constant).
    pub const REQUIRED: [&str; 3] = [USER_ID, EVENT_TIME, EVENT_TYPE];
}

/// Canonical event type names.
pub mod event_types {
    /// A page or item view.
    pub const VIEW: &str = "view";
    /// A search with a query.
    pub const SEARCH: &str = "search";
    /// An item added to the cart.
    pub const ADD_TO_CART: &str = "add_to_cart";
    /// A purchase (amount is its value).
    pub const PURCHASE: &str = "purchase";
    /// A rating (rating is its value).
    pub const RATING: &str = "rating";
}

/// Sums of money: amounts are summed in whole cents, as the polars queries that
/// compute them do. Integer sums are exact, so a total does not depend on the order
/// of its terms; the one-pass versions of those queries use these to agree with
/// them to the bit.
pub mod money {
    /// Whole cents of an amount, rounded half to even; `None` where polars' cast to
    /// `Int64` gives null (NaN, or beyond an `i64`).
    pub fn cents(amount: f64) -> Option<i64> {
        let cents = (amount * 100.0).round_ties_even();
        // -2^63 and 2^63 are exact as f64 (`i64::MAX as f64` rounds up to 2^63).
        (cents >= i64::MIN as f64 && cents < i64::MAX as f64).then_some(cents as i64)
    }

    /// An amount from whole cents, as polars evaluates `cents / lit(100.0)`: times
    /// the reciprocal (460 cents make 4.6000000000000005, not 4.6).
    pub fn from_cents(cents: i64) -> f64 {
        cents as f64 * (1.0 / 100.0)
    }
}

/// Inactivity gap that starts a new session, as web analytics counts sessions.
pub const SESSION_GAP_SECS: i64 = 30 * 60;

/// A group of per-user features that a pipeline can switch on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureFamily {
    /// Recency, frequency, monetary value, tenure.
    Rfm,
    /// Sessions, active days, events per session, session length.
    Activity,
    /// View -> cart -> purchase rates.
    Funnel,
    /// Category shares and top category.
    Categories,
    /// Hour-of-day and weekday profile.
    TimeOfDay,
    /// Searches and top query terms.
    Search,
    /// Ratings.
    Satisfaction,
    /// Mean days between purchases.
    Interpurchase,
}

impl FeatureFamily {
    /// Every family, in a fixed order.
    pub const ALL: [FeatureFamily; 8] = [
        FeatureFamily::Rfm,
        FeatureFamily::Activity,
        FeatureFamily::Funnel,
        FeatureFamily::Categories,
        FeatureFamily::TimeOfDay,
        FeatureFamily::Search,
        FeatureFamily::Satisfaction,
        FeatureFamily::Interpurchase,
    ];

    /// The name used in pipeline files.
    pub fn name(self) -> &'static str {
        match self {
            FeatureFamily::Rfm => "rfm",
            FeatureFamily::Activity => "activity",
            FeatureFamily::Funnel => "funnel",
            FeatureFamily::Categories => "categories",
            FeatureFamily::TimeOfDay => "time_of_day",
            FeatureFamily::Search => "search",
            FeatureFamily::Satisfaction => "satisfaction",
            FeatureFamily::Interpurchase => "interpurchase",
        }
    }
}

/// What userlens knows about one numeric feature: how to scale it and how to say it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureInfo {
    /// Column name.
    pub name: &'static str,
    /// Family that produces it.
    pub family: FeatureFamily,
    /// Counts and money: log-transformed before scaling.
    pub heavy_tailed: bool,
    /// Words for a persona well above the population on this feature.
    pub high: &'static str,
    /// Words for a persona well below the population on this feature.
    pub low: &'static str,
}

/// Prefix of the per-category share features (`cat_share_<category>`).
pub const CATEGORY_SHARE_PREFIX: &str = "cat_share_";
/// Prefix of numeric attributes joined from a users table (`user_<attribute>`).
pub const USER_ATTRIBUTE_PREFIX: &str = "user_";

macro_rules! catalogue {
    ($($name:literal, $fam:ident, $heavy:literal, $high:literal, $low:literal;)*) => {
        /// Every fixed-name numeric feature the features stage can produce.
        pub const FEATURES: &[FeatureInfo] = &[
            $(FeatureInfo { name: $name, family: FeatureFamily::$fam, heavy_tailed: $heavy, high: $high, low: $low },)*
        ];
    };
}

catalogue! {
    "recency_days", Rfm, false, "lapsed", "recently active";
    "frequency", Rfm, true, "frequent buyer", "rare buyer";
    "monetary", Rfm, true, "high spend", "low spend";
    "avg_order_value", Rfm, true, "big baskets", "small baskets";
    "tenure_days", Rfm, false, "long-standing", "newcomer";
    "events", Activity, true, "very active", "low activity";
    "sessions", Activity, true, "many sessions", "few sessions";
    "active_days", Activity, true, "regular visitor", "occasional visitor";
    "events_per_session", Activity, true, "deep sessions", "shallow sessions";
    "session_minutes", Activity, true, "long sessions", "short sessions";
    "views", Funnel, true, "heavy browser", "light browser";
    "carts", Funnel, true, "cart filler", "few carts";
    "view_to_cart", Funnel, false, "adds to cart", "rarely adds to cart";
    "cart_to_purchase", Funnel, false, "completes carts", "abandons carts";
    "view_to_purchase", Funnel, false, "converter", "window shopper";
    "category_count", Categories, true, "eclectic", "focused";
    "night_share", TimeOfDay, false, "night owl", "daytime";
    "morning_share", TimeOfDay, false, "morning", "rarely mornings";
    "evening_share", TimeOfDay, false, "evening", "rarely evenings";
    "weekend_share", TimeOfDay, false, "weekend", "weekday";
    "searches", Search, true, "searcher", "rarely searches";
    "search_share", Search, false, "search-led", "browse-led";
    "distinct_queries", Search, true, "varied searches", "narrow searches";
    "ratings", Satisfaction, true, "reviewer", "rarely rates";
    "mean_rating", Satisfaction, false, "satisfied", "dissatisfied";
    "mean_interpurchase_days", Interpurchase, false, "slow repeat", "quick repeat";
}

/// Looks up a fixed-name feature; category shares and user attributes are derived
/// by [`describe_feature`].
pub fn feature_info(name: &str) -> Option<&'static FeatureInfo> {
    FEATURES.iter().find(|f| f.name == name)
}

/// Words for a persona that is high (`true`) or low on a feature, for any feature
/// name, including `cat_share_<category>` and `user_<attribute>` columns.
pub fn describe_feature(name: &str, high: bool) -> String {
    if let Some(info) = feature_info(name) {
        return (if high { info.high } else { info.low }).to_string();
    }
    if let Some(category) = name.strip_prefix(CATEGORY_SHARE_PREFIX) {
        return if high {
            category.to_string()
        } else {
            format!("little {category}")
        };
    }
    let base = name.strip_prefix(USER_ATTRIBUTE_PREFIX).unwrap_or(name);
    let base = base.replace('_', " ");
    if high {
        format!("high {base}")
    } else {
        format!("low {base}")
    }
}

/// Whether a feature should be log-transformed before scaling.
pub fn is_heavy_tailed(name: &str) -> bool {
    feature_info(name).is_some_and(|f| f.heavy_tailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_whole_cents_as_polars_casts_them() {
        assert_eq!(money::cents(4.6), Some(460));
        // halves go to the even cent
        assert_eq!(money::cents(0.125), Some(12));
        assert_eq!(money::cents(0.375), Some(38));
        assert_eq!(money::cents(-2.5), Some(-250));
        for beyond in [f64::NAN, f64::INFINITY, 1e300, -1e300, 9.3e16] {
            assert_eq!(money::cents(beyond), None, "{beyond}");
        }
        assert_eq!(money::cents(-9.2e16), Some(-9_200_000_000_000_000_000));
        assert_eq!(money::from_cents(460), 4.6000000000000005);
        assert_eq!(money::from_cents(-250), -2.5);
    }

    #[test]
    fn feature_names_are_unique() {
        let mut names: Vec<_> = FEATURES.iter().map(|f| f.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FEATURES.len());
    }

    #[test]
    fn describes_derived_features() {
        assert_eq!(describe_feature("cat_share_books", true), "books");
        assert_eq!(describe_feature("cat_share_books", false), "little books");
        assert_eq!(describe_feature("user_age_years", true), "high age years");
        assert_eq!(describe_feature("recency_days", true), "lapsed");
    }

    #[test]
    fn family_names_round_trip_through_serde() {
        for family in FeatureFamily::ALL {
            let json = format!("\"{}\"", family.name());
            let back: FeatureFamily = serde_json::from_str(&json).unwrap();
            assert_eq!(back, family);
        }
    }
}
