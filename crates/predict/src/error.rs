//! The errors of the `predict` crate: of its parameters and rules, of the tables it
//! reads, of the models' fits and scores, and of a cluster's per-part work.

use polars::prelude::PolarsError;

use crate::rules::MAX_RULES;

/// Errors of predicting: one type for every module of the crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A parameter is out of range; the message names it.
    #[error("{0}")]
    Params(String),

    /// A mistake in a rule's text, with its column.
    #[error(transparent)]
    Syntax(#[from] userlens_expr::Error),
    /// The text of rule `rule` (its `when`) is wrong.
    #[error("{error}")]
    RuleText {
        /// The rule's name.
        rule: String,
        /// What is wrong with it.
        error: Box<Error>,
    },
    /// More rules than [`MAX_RULES`].
    #[error("`rules` has {count} rules, more than the {MAX_RULES} allowed")]
    TooManyRules {
        /// Number of rules declared.
        count: usize,
    },
    /// A rule name that cannot be a column name.
    #[error(
        "rule name `{rule}` must start with a letter or `_` and hold only letters, digits and `_`"
    )]
    BadRuleName {
        /// Rule name.
        rule: String,
    },
    /// A rule name that is `user_id` or a keyword.
    #[error("rule name `{rule}` is reserved")]
    ReservedRuleName {
        /// Rule name.
        rule: String,
    },
    /// Two rules with one name.
    #[error("rule `{rule}` is defined twice")]
    DuplicateRule {
        /// Rule name.
        rule: String,
    },
    /// A feature name that is not a column of the features table.
    #[error("rule `{rule}`: unknown feature `{feature}` at {column}{suggestion}")]
    UnknownFeature {
        /// Rule name.
        rule: String,
        /// The name as written.
        feature: String,
        /// 1-based column (in characters).
        column: userlens_expr::Place,
        /// 0-based byte offset.
        offset: usize,
        /// ", did you mean `...`?" or empty.
        suggestion: String,
    },
    /// A feature a rule compares as a number that is not numeric.
    #[error("rule `{rule}`: feature `{feature}` at {column} is {dtype}, not a number")]
    RuleNotNumeric {
        /// Rule name.
        rule: String,
        /// The column name.
        feature: String,
        /// 1-based column (in characters).
        column: userlens_expr::Place,
        /// The column's data type.
        dtype: String,
    },
    /// A text test of a feature that is not text.
    #[error("rule `{rule}`: feature `{feature}` at {column} is {dtype}, not text")]
    RuleNotText {
        /// Rule name.
        rule: String,
        /// The column name.
        feature: String,
        /// 1-based column (in characters).
        column: userlens_expr::Place,
        /// The column's data type.
        dtype: String,
    },

    /// A needed column is absent.
    #[error("the {table} table has no `{column}` column")]
    MissingColumn {
        /// Which table ("features", "labels", "events", ...).
        table: &'static str,
        /// The column name.
        column: String,
    },
    /// A column that must be numeric is not.
    #[error("`{column}` in the {table} table must be numeric, found {dtype}")]
    NotNumeric {
        /// Which table.
        table: &'static str,
        /// The column name.
        column: String,
        /// The data type found.
        dtype: String,
    },
    /// `event_time` is neither a datetime nor an integer.
    #[error("`event_time` in the events table must be a datetime, found {dtype}")]
    NotATime {
        /// The data type found.
        dtype: String,
    },
    /// `user_id` is not text.
    #[error("`user_id` in the {table} table must be text, found {dtype}")]
    UserIdNotText {
        /// Which table.
        table: &'static str,
        /// The data type found.
        dtype: String,
    },
    /// A `user_id` is null.
    #[error("`user_id` is null in row {row} of the {table} table")]
    NullUserId {
        /// Which table.
        table: &'static str,
        /// 1-based row in the input order.
        row: usize,
    },
    /// A user on two rows.
    #[error("user `{user}` appears more than once in the {table} table")]
    DuplicateUser {
        /// Which table.
        table: &'static str,
        /// The repeated user id.
        user: String,
    },
    /// An events column is missing or has the wrong type.
    #[error("column `{column}` {problem}")]
    Column {
        /// Column name.
        column: &'static str,
        /// What is wrong with it.
        problem: String,
    },

    /// A label that is not 0/1 (or true/false).
    #[error("label `{target}` of user `{user}` is {value}, expected 0 or 1")]
    BadLabel {
        /// The label column.
        target: String,
        /// The user.
        user: String,
        /// The value found.
        value: String,
    },
    /// A target value that is missing or not finite.
    #[error("`{target}` of user `{user}` is {value}, expected a finite number")]
    BadTarget {
        /// The target column.
        target: String,
        /// The user.
        user: String,
        /// The value found.
        value: String,
    },
    /// No feature names were given.
    #[error("no features to fit on: the feature list is empty")]
    NoFeatures,
    /// A features table read with other columns than the model was fitted on.
    #[error("the features table holds {found}, not the model's features {expected}")]
    OtherFeatures {
        /// The model's features, comma-separated.
        expected: String,
        /// The table's columns, comma-separated.
        found: String,
    },
    /// The logistic regression produced NaN or infinite coefficients.
    #[error("the logistic regression for `{target}` did not converge to finite coefficients")]
    Diverged {
        /// The label column.
        target: String,
    },
    /// The tree ensemble got no rows, or rows and labels that disagree.
    #[error("no training rows to grow the tree ensemble for `{target}` on")]
    Tree {
        /// The label column.
        target: String,
    },

    /// The data cannot support a count model; the message says why.
    #[error("{0}")]
    Skip(String),
    /// An argument or a summary value is out of its domain.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A quantity could not be computed to full precision (for example a series
    /// that does not converge within its term budget).
    #[error("{0}")]
    Numerical(String),

    /// Predictions and labels differ in length.
    #[error("`{metric}` got {predictions} predictions for {labels} labels")]
    LengthMismatch {
        /// The metric asked for.
        metric: &'static str,
        /// Number of predictions.
        predictions: usize,
        /// Number of labels or actual values.
        labels: usize,
    },
    /// Nothing to score.
    #[error("`{metric}` got no predictions to score")]
    Empty {
        /// The metric asked for.
        metric: &'static str,
    },
    /// A prediction or actual value is NaN or infinite.
    #[error("`{metric}`: value {position} is {value}, not a finite number")]
    NotFinite {
        /// The metric asked for.
        metric: &'static str,
        /// 1-based position in the input.
        position: usize,
        /// The offending value.
        value: f64,
    },
    /// A probability is outside `[0, 1]`.
    #[error("`{metric}`: prediction {position} is {value}, not a probability in [0, 1]")]
    NotAProbability {
        /// The metric asked for.
        metric: &'static str,
        /// 1-based position in the input.
        position: usize,
        /// The offending value.
        value: f64,
    },
    /// The metric needs both classes.
    #[error(
        "`{metric}` needs positive and negative labels, found {positives} positives and {negatives} negatives"
    )]
    MissingClass {
        /// The metric asked for.
        metric: &'static str,
        /// Number of positive labels.
        positives: usize,
        /// Number of negative labels.
        negatives: usize,
    },

    /// Scoring a model on its holdout failed; the cause says how.
    #[error("failed to score the holdout")]
    Scoring(#[source] Box<Error>),

    /// A polars operation failed.
    #[error("failed to {action}")]
    Polars {
        /// What was being done.
        action: String,
        /// The error from polars.
        #[source]
        source: PolarsError,
    },
    /// Tables given as a part's inputs (`PartInputs::from_tables`) are not what
    /// `PartInputs::into_tables` makes.
    #[error("malformed prediction inputs of a part of the events: {0}")]
    PartTables(String),
    /// The per-part work on another engine (a cluster) failed.
    #[error("computing the prediction inputs of the parts on {engine} failed: {message}")]
    Remote {
        /// The engine, such as `ballista://host:50050`.
        engine: String,
        /// What it reported.
        message: String,
    },
}

/// Result of predicting.
pub type Result<T> = std::result::Result<T, Error>;

/// The [`Error::Scoring`] of a metric's error, for `map_err`.
pub(crate) fn scoring(error: Error) -> Error {
    Error::Scoring(Box::new(error))
}

/// The [`Error::Polars`] of a failed polars operation, for `map_err`.
pub(crate) fn polars_err(action: &str) -> impl FnOnce(PolarsError) -> Error + '_ {
    move |source| Error::Polars {
        action: action.to_string(),
        source,
    }
}
