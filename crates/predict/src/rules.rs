//! Declarative rules: named conditions on per-user features, written in the pipeline
//! file and evaluated for every user by the expression language's own evaluator.
//!
//! ```toml
//! [stages.predict.with.rules.lapsing]
//! when = "recency_days > 60 and frequency > 0"
//! target = "churn"
//! [stages.predict.with.rules.big_spender]
//! when = "monetary / (frequency + 1) >= 100 or not (tenure_days < 30)"
//! ```
//!
//! The language: numbers (`60`, `0.5`, `1e3`), feature names (column names of the
//! features table), arithmetic `+ - * /` and unary `-`, comparisons `> >= < <= == !=`,
//! `and`, `or`, `not` (lower case) and parentheses. A rule must be a condition: a
//! comparison or a combination of comparisons. Precedence, loosest first: `or`,
//! `and`, `not`, comparisons (not chained), `+ -`, `* /`, unary `-`.
//!
//! Limits, checked before anything is built: at most [`MAX_RULES`] rules of at most
//! [`MAX_RULE_BYTES`] bytes each, nested at most [`MAX_DEPTH`] levels deep (a chain
//! `a and b and c ...` is one level however long; parentheses, `not` and operators
//! nest).
//!
//! Missing values: a comparison with a missing feature (or a division by zero, or
//! arithmetic without a number such as inf - inf) is unknown; `and`/`or` follow three-valued logic (`unknown or true` is true) and a
//! rule that is still unknown at the end is false, as in a SQL `WHERE`.
//!
//! Rules are parsed when the plan is built ([`parse_rule`]), so a typo fails before
//! any data is read, with the column of the offending text; feature names are
//! checked against the features table when the rules run ([`apply`]), with a
//! did-you-mean suggestion.
//!
//! ```
//! use userlens_predict::rules::parse_rule;
//! let rule = parse_rule("churn_risk", "recency_days > 60 and frequency > 0").unwrap();
//! assert_eq!(rule.features().collect::<Vec<_>>(), ["recency_days", "frequency"]);
//! let err = parse_rule("churn_risk", "recency_days > > 60").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "rule `churn_risk`: unexpected `>` at column 16, expected a number or a feature name"
//! );
//! ```

use std::collections::{BTreeSet, HashMap};

use crate::error::polars_err;
pub use crate::error::{Error, Result};
use polars::prelude::*;
use userlens_expr::{Row, Spanned, Value, column_of, evaluate, names as feature_refs, text_names};
use userlens_model::columns::USER_ID;

pub use userlens_expr::MAX_DEPTH;

/// Most rules a pipeline may declare: each is a column of every output and a
/// predictor scored twice, so thousands of them would exhaust memory, not inform.
pub const MAX_RULES: usize = 256;

/// Longest rule text, in bytes: the expressions' own bound.
pub use userlens_expr::MAX_BYTES as MAX_RULE_BYTES;

/// A parsed rule: its name, its text and its expression.
#[derive(Debug, Clone)]
pub struct Rule {
    name: String,
    text: String,
    ast: Spanned,
}

impl Rule {
    /// The rule's name, which is also its output column.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rule as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Feature names the rule reads, in order of first appearance.
    pub fn features(&self) -> impl Iterator<Item = &str> {
        let mut seen = BTreeSet::new();
        feature_refs(&self.ast)
            .into_iter()
            .filter(move |(name, _)| seen.insert(*name))
            .map(|(name, _)| name)
    }
}

fn check_name(name: &str) -> Result<()> {
    if name == USER_ID || userlens_expr::KEYWORDS.contains(&name) {
        return Err(Error::ReservedRuleName {
            rule: name.to_string(),
        });
    }
    if !userlens_expr::is_name(name) {
        return Err(Error::BadRuleName {
            rule: name.to_string(),
        });
    }
    Ok(())
}

/// Parses and type-checks one rule; feature names are checked later, against the
/// features table, by [`apply`] or [`check_columns`].
pub fn parse_rule(name: &str, text: &str) -> Result<Rule> {
    check_name(name)?;
    let ast = userlens_expr::parse_condition(&format!("rule `{name}`"), "rule", text)?;
    Ok(Rule {
        name: name.to_string(),
        text: text.to_string(),
        ast,
    })
}

/// Refuses more than [`MAX_RULES`] rules; call it before parsing any of them.
pub fn check_count(count: usize) -> Result<()> {
    if count > MAX_RULES {
        return Err(Error::TooManyRules { count });
    }
    Ok(())
}

/// Parses named rules in order, refusing two rules with one name and more than
/// [`MAX_RULES`] rules.
pub fn parse_rules<'a, I>(rules: I) -> Result<Vec<Rule>>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut rules = rules.into_iter();
    while let Some((name, text)) = rules.next() {
        if out.len() == MAX_RULES {
            // Counting the rest only walks the iterator; nothing more is parsed.
            return Err(Error::TooManyRules {
                count: MAX_RULES + 1 + rules.count(),
            });
        }
        if !seen.insert(name) {
            return Err(Error::DuplicateRule {
                rule: name.to_string(),
            });
        }
        out.push(parse_rule(name, text)?);
    }
    Ok(out)
}

/// The error of `rule` reading `feature` at `offset`, which is none of `known`.
fn unknown_feature(rule: &Rule, feature: &str, offset: usize, known: &[&str]) -> Error {
    let suggestion = userlens_model::nearest_feature(feature, known)
        .map(|c| format!(", did you mean `{c}`?"))
        .unwrap_or_default();
    Error::UnknownFeature {
        rule: rule.name.clone(),
        feature: feature.to_string(),
        column: column_of(&rule.text, offset),
        offset,
        suggestion,
    }
}

/// Checks, before any data is read, that every feature the rules read is one the
/// features stage can make: a catalogued or text feature, a category's share or a
/// users-table attribute ([`check_columns`] checks the table itself).
pub fn check_names<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> Result<()> {
    let known = userlens_model::feature_names();
    for rule in rules {
        let texts = text_names(&rule.ast);
        for (feature, offset) in feature_refs(&rule.ast) {
            let as_text = texts.contains(&(feature, offset));
            // The id is text; the catalogue says which features are (users-table
            // attributes are checked against the table).
            let is_text = if feature == USER_ID {
                Some(true)
            } else if !userlens_model::may_be_feature(feature) {
                return Err(unknown_feature(rule, feature, offset, &known));
            } else if userlens_model::TEXT_FEATURES.contains(&feature) {
                Some(true)
            } else if feature.starts_with(userlens_model::USER_ATTRIBUTE_PREFIX) {
                None
            } else {
                Some(false)
            };
            let (rule_name, column) = (rule.name.clone(), column_of(&rule.text, offset));
            let feature = feature.to_string();
            match (as_text, is_text) {
                (false, Some(true)) => {
                    let dtype = "text".into();
                    return Err(Error::RuleNotNumeric {
                        rule: rule_name,
                        feature,
                        column,
                        dtype,
                    });
                }
                (true, Some(false)) => {
                    let dtype = "a number".into();
                    return Err(Error::RuleNotText {
                        rule: rule_name,
                        feature,
                        column,
                        dtype,
                    });
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Checks that every feature the rules read is a column of `features`: numeric, or
/// text where a text test reads it.
pub fn check_columns(rules: &[Rule], features: &DataFrame) -> Result<()> {
    let schema = features.schema();
    let names: Vec<&str> = schema
        .iter_names()
        .map(|n| n.as_str())
        .filter(|n| *n != USER_ID)
        .collect();
    for rule in rules {
        let texts = text_names(&rule.ast);
        for (feature, offset) in feature_refs(&rule.ast) {
            let column = column_of(&rule.text, offset);
            let as_text = texts.contains(&(feature, offset));
            let Some(dtype) = schema.get(feature) else {
                return Err(unknown_feature(rule, feature, offset, &names));
            };
            if as_text {
                if !matches!(dtype, DataType::String) {
                    return Err(Error::RuleNotText {
                        rule: rule.name.clone(),
                        feature: feature.to_string(),
                        column,
                        dtype: dtype.to_string(),
                    });
                }
            } else if !(dtype.is_primitive_numeric() || dtype.is_bool()) || feature == USER_ID {
                return Err(Error::RuleNotNumeric {
                    rule: rule.name.clone(),
                    feature: feature.to_string(),
                    column,
                    dtype: dtype.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Evaluates `rules` on a features table: `user_id` plus one boolean column per
/// rule (named after it), sorted by `user_id`.
pub fn apply(rules: &[Rule], features: &DataFrame) -> Result<DataFrame> {
    if features.column(USER_ID).is_err() {
        return Err(Error::MissingColumn {
            table: "features",
            column: USER_ID.into(),
        });
    }
    let mut seen = BTreeSet::new();
    if let Some(rule) = rules.iter().find(|r| !seen.insert(r.name.as_str())) {
        return Err(Error::DuplicateRule {
            rule: rule.name.clone(),
        });
    }
    check_columns(rules, features)?;
    let context = "evaluate the rules";
    // Every feature the rules read, once: numbers as f64, text as it is.
    let (mut numbers, mut texts) = (HashMap::new(), HashMap::new());
    for rule in rules {
        let as_text = text_names(&rule.ast);
        for (feature, offset) in feature_refs(&rule.ast) {
            let column = features.column(feature).map_err(polars_err(context))?;
            if as_text.contains(&(feature, offset)) {
                let text = column.str().map_err(polars_err(context))?;
                texts
                    .entry(feature)
                    .or_insert_with(|| text.iter().collect());
            } else if !numbers.contains_key(feature) {
                let cast = column
                    .cast(&DataType::Float64)
                    .map_err(polars_err(context))?;
                let values = cast.f64().map_err(polars_err(context))?.iter().collect();
                numbers.insert(feature, values);
            }
        }
    }
    // Each row through the one evaluator of the language, as the ingest's derived
    // columns are: linear in the rule's length, and a division that divides.
    let mut columns = vec![
        features
            .column(USER_ID)
            .map_err(polars_err(context))?
            .clone(),
    ];
    for rule in rules {
        let held: Vec<bool> = (0..features.height())
            .map(|row| {
                let values = FeatureRow {
                    numbers: &numbers,
                    texts: &texts,
                    row,
                };
                // Unknown at the end is false, as in a SQL `WHERE`.
                evaluate(&rule.ast, &values) == Value::Condition(Some(true))
            })
            .collect();
        columns.push(Column::new(rule.name.as_str().into(), held));
    }
    DataFrame::new(features.height(), columns)
        .and_then(|table| table.sort([USER_ID], SortMultipleOptions::default()))
        .map_err(polars_err(context))
}

/// One user's features, as the rules' evaluator reads them.
struct FeatureRow<'a> {
    numbers: &'a HashMap<&'a str, Vec<Option<f64>>>,
    texts: &'a HashMap<&'a str, Vec<Option<&'a str>>>,
    row: usize,
}

impl Row for FeatureRow<'_> {
    fn number(&self, name: &str) -> Option<f64> {
        *self.numbers.get(name)?.get(self.row)?
    }

    fn text(&self, name: &str) -> Option<&str> {
        *self.texts.get(name)?.get(self.row)?
    }
}

/// [`apply`] of each rule that `features` can evaluate, and the error of each one it
/// cannot (a users-table column the features at a cutoff leave out): one rule that
/// cannot be scored there does not take the others with it.
pub fn apply_each(
    rules: &[Rule],
    features: &DataFrame,
) -> (Result<DataFrame>, Vec<(String, Error)>) {
    let (mut fit, mut refused) = (Vec::new(), Vec::new());
    for rule in rules {
        match check_columns(std::slice::from_ref(rule), features) {
            Ok(()) => fit.push(rule.clone()),
            Err(e) => refused.push((rule.name.clone(), e)),
        }
    }
    (apply(&fit, features), refused)
}

#[cfg(test)]
mod tests;
