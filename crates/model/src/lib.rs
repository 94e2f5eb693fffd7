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

pub mod address;

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
    /// Order identifier (nullable): only in the events of a source that has one.
    /// Lines of one order count as one purchase.
    pub const ORDER_ID: &str = "order_id";
    /// Persona identifier in persona tables.
    pub const PERSONA_ID: &str = "persona_id";
    /// Generated persona label.
    pub const LABEL: &str = "label";

    /// Every canonical event column, in output order.
    pub const EVENT_COLUMNS: [&str; 9] = [
        USER_ID, EVENT_TIME, EVENT_TYPE, SESSION_ID, ITEM_ID, CATEGORY, QUERY, AMOUNT, RATING,
    ];
    /// Event columns present only when the source maps them.
    pub const OPTIONAL_EVENT_COLUMNS: [&str; 1] = [ORDER_ID];
    /// Columns a source must provide (directly or through a constant).
    pub const REQUIRED: [&str; 3] = [USER_ID, EVENT_TIME, EVENT_TYPE];

    /// The columns of a survey file, besides `user_id`.
    pub mod survey {
        /// The answer's time (microseconds after reading).
        pub const ANSWERED_AT: &str = "answered_at";
        /// The 0-10 score.
        pub const SCORE: &str = "score";
        /// An optional free-text comment.
        pub const COMMENT: &str = "comment";
        /// An optional channel (`generate` writes one; other columns are ignored).
        pub const CHANNEL: &str = "channel";
    }
}

/// Orders: the lines of one order are one purchase, bought at its first purchase
/// line's time.
pub mod orders {
    use polars::prelude::*;

    use crate::columns::{ORDER_ID, USER_ID};

    /// Each line's purchase time: the first `time` of its order's lines where
    /// `purchase` holds (a checkout or refund line may carry the order's id too); a
    /// line without an order, or of an order without a purchase line, its own.
    pub fn bought_at(time: Expr, purchase: Expr) -> PolarsResult<Expr> {
        let first_line =
            (time.clone().filter(purchase).min()).over([col(USER_ID), col(ORDER_ID)])?;
        Ok(when(col(ORDER_ID).is_not_null())
            .then(first_line)
            .otherwise(time.clone())
            .fill_null(time))
    }
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
    /// Every type above.
    pub const KNOWN: [&str; 5] = [VIEW, SEARCH, ADD_TO_CART, PURCHASE, RATING];
}

/// Sums of money: amounts are summed in whole cents, as the polars queries that
/// compute them do. Integer sums are exact, so a total does not depend on the order
/// of its terms; the one-pass versions of those queries use these to agree with
/// them to the bit.
pub mod money {
    /// Whether a purchase line of `amount` is a refund: a negative amount (a line
    /// without one is a purchase).
    pub fn is_refund(amount: Option<f64>) -> bool {
        amount.is_some_and(|a| a < 0.0)
    }

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

    /// The polars expressions of the same: the one home of money in the queries.
    pub mod expr {
        use polars::prelude::{DataType, Expr, RoundMode, lit};

        /// [`super::is_refund`] of each of `amounts`.
        pub fn is_refund(amounts: Expr) -> Expr {
            amounts.lt(lit(0.0)).fill_null(lit(false))
        }

        /// `amounts` in whole cents (`Int64`), as [`super::cents`] rounds one.
        pub fn cents(amounts: Expr) -> Expr {
            (amounts.cast(DataType::Float64) * lit(100.0))
                .round(0, RoundMode::HalfToEven)
                .cast(DataType::Int64)
        }

        /// The amount of whole `cents` (summed, say), as [`super::from_cents`] makes
        /// one: times the reciprocal, as polars divides a column of many rows, so
        /// the bits are the same for any number of rows.
        pub fn from_cents(cents: Expr) -> Expr {
            cents.cast(DataType::Float64) * lit(1.0 / 100.0)
        }

        /// The sum of `amounts` in whole cents, as an amount: exact in any order.
        pub fn sum(amounts: Expr) -> Expr {
            from_cents(cents(amounts).sum())
        }
    }
}

pub mod seed;

/// The names of the files a run publishes in its output folder: the stages write
/// them and the report reads them by these names (a public contract: add, never rename).
pub mod files {
    /// Personas, one row each (required).
    pub const PERSONAS: &str = "personas.csv";
    /// Users with their persona and features (required).
    pub const USER_PERSONAS: &str = "user_personas.csv";
    /// The run record (required).
    pub const RUN: &str = "run.json";
    /// Clustering quality per k tried (optional).
    pub const K_SELECTION: &str = "k_selection.csv";
    /// Predictor scores on the holdout (optional).
    pub const MODEL_REPORT: &str = "model_report.csv";
    /// Calibration bins per predictor and target (optional).
    pub const CALIBRATION: &str = "calibration.csv";
    /// Lift by decile per predictor and target (optional).
    pub const LIFT: &str = "lift.csv";
    /// Users moving between personas since the previous run (optional).
    pub const MIGRATION: &str = "migration.csv";
    /// Feature drift since the previous run (optional).
    pub const DRIFT: &str = "drift.csv";
    /// The report page written.
    pub const REPORT_HTML: &str = "report.html";
    /// The events' refused rows.
    pub const QUARANTINE: &str = "quarantine.csv";
    /// The survey's refused rows.
    pub const SURVEY_QUARANTINE: &str = "survey_quarantine.csv";
    /// Cohort retention by period (the loyalty stage's, optional).
    pub const RETENTION: &str = "retention.csv";
    /// Cohort retention by persona and segment (the loyalty stage's, optional).
    pub const RETENTION_BY_GROUP: &str = "retention_by_group.csv";
    /// Retention curves over all cohorts (the loyalty stage's, optional).
    pub const RETENTION_CURVE: &str = "retention_curve.csv";
    /// Users new, returning, resurrected and churned per period (the loyalty stage's, optional).
    pub const LIFECYCLE: &str = "lifecycle.csv";
    /// The lifecycle by persona and segment (the loyalty stage's, optional).
    pub const LIFECYCLE_BY_GROUP: &str = "lifecycle_by_group.csv";
    /// Daily, weekly and monthly active users (the loyalty stage's, optional).
    pub const STICKINESS: &str = "stickiness.csv";
    /// Stickiness by persona and segment (the loyalty stage's, optional).
    pub const STICKINESS_BY_GROUP: &str = "stickiness_by_group.csv";
    /// Users by days active per month (the loyalty stage's, optional).
    pub const ACTIVE_DAYS: &str = "active_days.csv";
    /// Repeat purchase by cohort (the loyalty stage's, optional).
    pub const REPEAT_PURCHASE: &str = "repeat_purchase.csv";
    /// Repeat purchase by persona and segment (the loyalty stage's, optional).
    pub const REPEAT_PURCHASE_BY_GROUP: &str = "repeat_purchase_by_group.csv";
    /// Kaplan-Meier survival curves (the loyalty stage's, optional).
    pub const SURVIVAL: &str = "survival.csv";
    /// Median lifetime per group (the loyalty stage's, optional).
    pub const LIFETIME: &str = "lifetime.csv";
    /// Ratings per group and category (the loyalty stage's, optional).
    pub const SATISFACTION: &str = "satisfaction.csv";
    /// Net Promoter Score per group (the loyalty stage's, optional).
    pub const NPS: &str = "nps.csv";
    /// Key drivers of satisfaction (the loyalty stage's, optional).
    pub const DRIVERS: &str = "drivers.csv";
    /// Every user's predictions (the predict stage's, optional).
    pub const USER_PREDICTIONS: &str = "user_predictions.csv";
    /// Every user's RFM score and segment (the predict stage's, optional).
    pub const USER_SEGMENTS: &str = "user_segments.csv";
    /// The predict stage's models, fits and splits.
    pub const MODELS: &str = "models.json";
    /// Every user's features as of the run (the report stage's, when asked).
    pub const FEATURES: &str = "features.csv";
    /// Every user's recommendations (the recommend stage's).
    pub const USER_RECOMMENDATIONS: &str = "user_recommendations.csv";
    /// Every persona's top items (the recommend stage's).
    pub const PERSONA_RECOMMENDATIONS: &str = "persona_recommendations.csv";
    /// Every item's most similar items (the recommend stage's).
    pub const SIMILAR_ITEMS: &str = "similar_items.csv";
    /// The recommenders' scores on the time split (the recommend stage's).
    pub const RECOMMEND_REPORT: &str = "recommend_report.csv";
}

/// The kinds of group the loyalty tables cut users by, as their `group` column
/// holds them.
pub mod groups {
    /// The whole population.
    pub const ALL: &str = "all";
    /// A persona (the group's value is the persona id).
    pub const PERSONA: &str = super::columns::PERSONA_ID;
    /// An RFM segment (the group's value is the segment's name).
    pub const SEGMENT: &str = "segment";
}
pub mod time;

/// Small numeric helpers shared by the stages.
pub mod stats {
    /// Solves `a x = b` for a symmetric positive definite `a` (p x p, row-major) by
    /// Cholesky's factorisation, which overwrites `a`'s lower triangle; `None` when `a`
    /// is not positive definite in floating point.
    pub fn cholesky_solve(a: &mut [f64], mut b: Vec<f64>, p: usize) -> Option<Vec<f64>> {
        for j in 0..p {
            let mut d = a[j * p + j];
            for k in 0..j {
                d -= a[j * p + k] * a[j * p + k];
            }
            if d <= 0.0 || !d.is_finite() {
                return None;
            }
            let d = d.sqrt();
            a[j * p + j] = d;
            for i in j + 1..p {
                let mut v = a[i * p + j];
                for k in 0..j {
                    v -= a[i * p + k] * a[j * p + k];
                }
                a[i * p + j] = v / d;
            }
        }
        for i in 0..p {
            for k in 0..i {
                b[i] -= a[i * p + k] * b[k];
            }
            b[i] /= a[i * p + i];
        }
        for i in (0..p).rev() {
            for k in i + 1..p {
                b[i] -= a[k * p + i] * b[k];
            }
            b[i] /= a[i * p + i];
        }
        Some(b)
    }

    /// A share as a whole percent for people to read: "<1%" for a share above zero
    /// that rounds to 0, ">99%" for one below 1 that rounds to 100.
    pub fn percent_text(share: f64) -> String {
        let percent = share * 100.0;
        match percent.round() {
            0.0 if percent > 0.0 => "<1%".to_string(),
            100.0 if percent < 100.0 => ">99%".to_string(),
            rounded => format!("{rounded}%"),
        }
    }

    /// Sorted indices of at most `size` rows out of `n`, drawn without replacement
    /// from `seed`: the one sampler of the stages and the report.
    pub fn sample_rows(n: usize, size: usize, seed: u64) -> Vec<usize> {
        use rand::{Rng, SeedableRng};
        let mut rows: Vec<usize> = (0..n).collect();
        if n <= size {
            return rows;
        }
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        // Partial Fisher-Yates; u64 draws keep the sample the same on every platform.
        for i in 0..size {
            let j = rng.gen_range(i as u64..n as u64) as usize;
            rows.swap(i, j);
        }
        rows.truncate(size);
        rows.sort_unstable();
        rows
    }

    /// `sign(x) * ln(1 + |x|)`: compresses counts and money while keeping refunds
    /// negative.
    pub fn signed_log1p(x: f64) -> f64 {
        if x < 0.0 { -(-x).ln_1p() } else { x.ln_1p() }
    }

    /// Sample skewness (the third standardised moment) of the finite values, or
    /// `None` for fewer than three or a constant set.
    pub fn skewness(values: impl Iterator<Item = f64> + Clone) -> Option<f64> {
        let finite = values.filter(|v| v.is_finite());
        let magnitude = finite.clone().fold(0.0f64, |m, v| m.max(v.abs()));
        let n = finite.clone().count();
        if n < 3 || magnitude == 0.0 {
            return None;
        }
        // Scaled by the largest magnitude, so cubes cannot overflow.
        let mean = finite.clone().map(|v| v / magnitude).sum::<f64>() / n as f64;
        let (m2, m3) = finite.fold((0.0, 0.0), |(m2, m3), v| {
            let d = v / magnitude - mean;
            (m2 + d * d, m3 + d * d * d)
        });
        let (m2, m3) = (m2 / n as f64, m3 / n as f64);
        (m2 > 0.0).then(|| m3 / m2.powf(1.5))
    }

    /// Pearson's correlation of `x` and `y` (of one length), within -1..=1; `None`
    /// when either is constant.
    pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
        let n = x.len() as f64;
        let mean = |v: &[f64]| v.iter().sum::<f64>() / n;
        let (mx, my) = (mean(x), mean(y));
        let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
        for (a, b) in x.iter().zip(y) {
            let (da, db) = (a - mx, b - my);
            sxy += da * db;
            sxx += da * da;
            syy += db * db;
        }
        // One square root, exact for a perfect correlation; two where the product
        // overflows.
        let product = (sxx * syy).sqrt();
        let scale = match product.is_finite() && product > 0.0 {
            true => product,
            false => sxx.sqrt() * syy.sqrt(),
        };
        (sxx > 0.0 && syy > 0.0).then(|| (sxy / scale).clamp(-1.0, 1.0))
    }

    /// Median of the finite values, or `None` if there are none.
    pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
        let mut finite: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        if finite.is_empty() {
            return None;
        }
        // Selection, not a full sort: the same values in linear time.
        let odd = finite.len() % 2 == 1;
        let mid = finite.len() / 2;
        let (below, upper, _) = finite.select_nth_unstable_by(mid, f64::total_cmp);
        let upper = *upper;
        if odd {
            return Some(upper);
        }
        let lower = below.iter().copied().max_by(f64::total_cmp)?;
        Some(lower / 2.0 + upper / 2.0)
    }

    /// A compensated sum, step for step polars' `KahanSum`, which its group-by mean
    /// adds a group's values with (in row order): the same sum to the bit.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct KahanSum {
        sum: f64,
        err: f64,
    }

    impl KahanSum {
        /// Adds `value`.
        pub fn add(&mut self, value: f64) {
            let y = value - self.err;
            let sum = self.sum + y;
            let err = (sum - self.sum) - y;
            self.sum = sum;
            // As polars: the error stays finite, so Inf - Inf brings no NaN.
            if err.is_finite() {
                self.err = err;
            }
        }

        /// The sum so far.
        pub fn sum(&self) -> f64 {
            self.sum
        }
    }

    /// A feature whose standard deviation is below this fraction of its largest
    /// absolute value is constant up to rounding, and is left out of clustering.
    pub const CONSTANT_REL_SD: f64 = 1e-12;

    /// The clustering's transform of one feature, fitted on all users: `t(x)`
    /// ([`Standardiser::transform`]), the median of `t` for missing values, then
    /// the z-score. The profile stage clusters on these z-scores and the report
    /// shows them, so both use this one definition.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct Standardiser {
        impute: f64,
        /// Values are divided by their largest magnitude first, so sums cannot
        /// overflow and an exactly constant feature has a variance of exactly 0.
        magnitude: f64,
        /// Mean of the values divided by `magnitude`.
        mean: f64,
        /// Population standard deviation of the values divided by `magnitude`.
        sd: f64,
    }

    impl Standardiser {
        /// `t(x)`: [`signed_log1p`] for a log-transformed (heavy-tailed) feature,
        /// `x` otherwise.
        pub fn transform(x: f64, log: bool) -> f64 {
            if log { signed_log1p(x) } else { x }
        }

        /// Fits one feature on its transformed values, NaN marking a missing
        /// value; `None` when all are missing or the feature is constant.
        pub fn fit(transformed: impl Iterator<Item = f64> + Clone) -> Option<Standardiser> {
            let impute = median(transformed.clone())?;
            let values: Vec<f64> = transformed
                .map(|v| if v.is_nan() { impute } else { v })
                .collect();
            let magnitude = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            if magnitude == 0.0 || values.is_empty() {
                return None;
            }
            let n = values.len() as f64;
            let mean = values.iter().map(|v| v / magnitude).sum::<f64>() / n;
            let var = values
                .iter()
                .map(|v| {
                    let t = v / magnitude - mean;
                    t * t
                })
                .sum::<f64>()
                / n;
            let sd = var.sqrt();
            (sd > CONSTANT_REL_SD).then_some(Standardiser {
                impute,
                magnitude,
                mean,
                sd,
            })
        }

        /// The z-score of a transformed value (NaN: missing, taken as the median).
        pub fn z(&self, transformed: f64) -> f64 {
            let v = if transformed.is_nan() {
                self.impute
            } else {
                transformed
            };
            (v / self.magnitude - self.mean) / self.sd
        }

        /// The median that stands in for missing values, in the transformed space.
        pub fn impute(&self) -> f64 {
            self.impute
        }

        /// The mean, in the transformed space.
        pub fn center(&self) -> f64 {
            self.mean * self.magnitude
        }

        /// The population standard deviation, in the transformed space.
        pub fn scale(&self) -> f64 {
            self.sd * self.magnitude
        }
    }
}

/// An error and its causes on one line, `: ` between them (an error's `Display`
/// alone drops the cause: a missing file's "no such file or directory"). The
/// system's own messages start in lower case, as ours do, and a cause an error
/// already ends with is not repeated.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let part = e.to_string();
        if text != part && !text.ends_with(&format!(": {part}")) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        next = e.source();
    }
    // The system's messages ("No such file or directory (os error 2)"), wherever an
    // error put one.
    let mut from = 0;
    while let Some(at) = text[from..].find(" (os error ").map(|at| from + at) {
        let start = text[..at].rfind(": ").map_or(0, |colon| colon + 2);
        if let Some(first) = text[start..]
            .chars()
            .next()
            .filter(char::is_ascii_uppercase)
        {
            text.replace_range(start..start + 1, &first.to_ascii_lowercase().to_string());
        }
        from = at + 1;
    }
    text
}

/// The closest candidate by edit distance, case aside (`UserID` for `user_id`), if it
/// is close enough to be a typo.
pub fn did_you_mean<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let name = name.to_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(&name, &c.to_lowercase()), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min()
        .map(|(_, c)| c)
}

/// The candidate `name` is one typo from (a letter added, dropped, changed or two
/// swapped; case aside), for a warning about a name that is not wrong on its face:
/// [`did_you_mean`]'s looser match would take `review` for `view`.
pub fn one_typo_from<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let name = name.to_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::osa_distance(&name, &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= 1)
        .min()
        .map(|(_, c)| c)
}

/// The closest feature name to `name` by Jaro-Winkler, not [`did_you_mean`]'s edit
/// distance: feature names share long prefixes, and `recency` must suggest
/// `recency_days`, not `frequency`.
pub fn nearest_feature<'a>(name: &str, features: &[&'a str]) -> Option<&'a str> {
    features
        .iter()
        .map(|c| (strsim::jaro_winkler(name, c), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, c)| c)
}

/// Inactivity gap that starts a new session, as web analytics counts sessions.
pub const SESSION_GAP_SECS: i64 = 30 * 60;

/// Days after the cutoff that predictions and recommendations are made for and
/// scored on, unless a stage says otherwise.
pub const DEFAULT_HORIZON_DAYS: u32 = 28;

/// The parts of the day (UTC hours, `start..end`) of the time-of-day features.
pub mod dayparts {
    use std::ops::Range;

    /// The hours that are not night: night is 22:00 to 05:00.
    pub const NOT_NIGHT: Range<i64> = 5..22;
    /// 05:00 to 12:00.
    pub const MORNING: Range<i64> = 5..12;
    /// 17:00 to 22:00.
    pub const EVENING: Range<i64> = 17..22;
}

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
    /// It counts something (purchases, events, days): whole numbers, which the CSVs
    /// show as integers.
    pub count: bool,
    /// Words for a persona well above the population on this feature.
    pub high: &'static str,
    /// Words for a persona well below the population on this feature.
    pub low: &'static str,
}

/// The text features: each user's most common category and search query. Only
/// reports and rules read them, and their group-bys on (user, value) cost the most.
pub const TEXT_FEATURES: [&str; 2] = ["top_category", "top_query"];

/// Whether a features table can have a column `name`: a catalogued or text feature,
/// a category's share or a users-table attribute.
pub fn may_be_feature(name: &str) -> bool {
    let made = |prefix: &str| name.len() > prefix.len() && name.starts_with(prefix);
    FEATURES.iter().any(|f| f.name == name)
        || TEXT_FEATURES.contains(&name)
        || made(CATEGORY_SHARE_PREFIX)
        || made(USER_ATTRIBUTE_PREFIX)
}

/// The family that makes the feature column `name`: the catalogue's, categories for
/// `cat_share_<category>` and `top_category`, search for `top_query`; none for
/// users-table attributes and unknown columns.
pub fn family_of(name: &str) -> Option<FeatureFamily> {
    match (feature_info(name), name) {
        (Some(info), _) => Some(info.family),
        (None, "top_category") => Some(FeatureFamily::Categories),
        (None, "top_query") => Some(FeatureFamily::Search),
        (None, _) => name
            .starts_with(CATEGORY_SHARE_PREFIX)
            .then_some(FeatureFamily::Categories),
    }
}

/// The fixed feature names, catalogued and text, for suggestions.
pub fn feature_names() -> Vec<&'static str> {
    (FEATURES.iter().map(|f| f.name))
        .chain(TEXT_FEATURES)
        .collect()
}

/// Prefix of the per-category share features (`cat_share_<category>`).
pub const CATEGORY_SHARE_PREFIX: &str = "cat_share_";
/// Prefix of numeric attributes joined from a users table (`user_<attribute>`).
pub const USER_ATTRIBUTE_PREFIX: &str = "user_";

macro_rules! catalogue {
    ($($name:literal, $fam:ident, $heavy:literal, $count:literal, $high:literal, $low:literal;)*) => {
        /// Every fixed-name numeric feature the features stage can produce.
        pub const FEATURES: &[FeatureInfo] = &[
            $(FeatureInfo { name: $name, family: FeatureFamily::$fam, heavy_tailed: $heavy, count: $count, high: $high, low: $low },)*
        ];
    };
}

// name, family, heavy-tailed, a count, words when high, words when low
catalogue! {
    "recency_days", Rfm, false, false, "lapsed", "recently active";
    "frequency", Rfm, true, true, "frequent buyer", "rare buyer";
    "monetary", Rfm, true, false, "high spend", "low spend";
    "avg_order_value", Rfm, true, false, "big baskets", "small baskets";
    "tenure_days", Rfm, false, false, "long-standing", "newcomer";
    "refund_count", Rfm, true, true, "returns often", "rarely returns";
    "events", Activity, true, true, "very active", "low activity";
    "sessions", Activity, true, true, "many sessions", "few sessions";
    "active_days", Activity, true, true, "regular visitor", "occasional visitor";
    "events_per_session", Activity, true, false, "deep sessions", "shallow sessions";
    "session_minutes", Activity, true, false, "long sessions", "short sessions";
    "views", Funnel, true, true, "heavy browser", "light browser";
    "carts", Funnel, true, true, "cart filler", "few carts";
    "view_to_cart", Funnel, false, false, "adds to cart", "rarely adds to cart";
    "cart_to_purchase", Funnel, false, false, "completes carts", "abandons carts";
    "view_to_purchase", Funnel, false, false, "converter", "window shopper";
    "category_count", Categories, true, true, "eclectic", "focused";
    "night_share", TimeOfDay, false, false, "night owl", "daytime";
    "morning_share", TimeOfDay, false, false, "morning", "rarely mornings";
    "evening_share", TimeOfDay, false, false, "evening", "rarely evenings";
    "weekend_share", TimeOfDay, false, false, "weekend", "weekday";
    "searches", Search, true, true, "searcher", "rarely searches";
    "search_share", Search, false, false, "search-led", "browse-led";
    "distinct_queries", Search, true, true, "varied searches", "narrow searches";
    "ratings", Satisfaction, true, true, "reviewer", "rarely rates";
    "mean_rating", Satisfaction, false, false, "satisfied", "dissatisfied";
    "mean_interpurchase_days", Interpurchase, false, false, "slow repeat", "quick repeat";
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
        // The column name's `_`s stand for whatever the category had there
        // (`home___garden` was "Home & Garden").
        let category = category
            .split('_')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        return if high {
            category
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

/// Whether the catalogue log-transforms a feature before scaling (its counts and money).
pub fn is_heavy_tailed(name: &str) -> bool {
    feature_info(name).is_some_and(|f| f.heavy_tailed)
}

/// Whether a feature is log-transformed before scaling, given its values (NaN and
/// infinities ignored): as the catalogue says for its own features; a users-table
/// attribute when its values are more skewed than an exponential's (|skewness| > 2)
/// and the signed log takes more than 1% off that (not a two-valued flag, which any
/// increasing transform leaves as skewed, nor values so near 0 that the log is all but
/// the identity). Other features never are.
pub fn takes_log(name: &str, values: &[f64]) -> bool {
    if let Some(info) = feature_info(name) {
        return info.heavy_tailed;
    }
    if !name.starts_with(USER_ATTRIBUTE_PREFIX) {
        return false;
    }
    let raw = stats::skewness(values.iter().copied());
    let logged = stats::skewness(values.iter().map(|&v| stats::signed_log1p(v)));
    match (raw, logged) {
        (Some(raw), Some(logged)) => raw.abs() > 2.0 && logged.abs() < 0.99 * raw.abs(),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
