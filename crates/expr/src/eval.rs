//! Evaluating an expression on one row of named numbers.

use crate::{ArithOp, CmpOp, Node, Spanned};

/// The value of an expression: a number or a condition, either possibly missing
/// (a missing input, a division by zero; an unknown comparison).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A number, `None` when missing.
    Number(Option<f64>),
    /// A condition, `None` when unknown.
    Condition(Option<bool>),
}

impl Value {
    fn number(self) -> Option<f64> {
        match self {
            Value::Number(v) => v,
            Value::Condition(_) => None,
        }
    }

    fn condition(self) -> Option<bool> {
        match self {
            Value::Condition(v) => v,
            Value::Number(_) => None,
        }
    }
}

/// Evaluates `node` with `lookup` giving each name's value (`None`: missing). NaN
/// counts as missing, as it does in the rules' polars expressions.
pub fn evaluate(node: &Spanned, lookup: &impl Fn(&str) -> Option<f64>) -> Value {
    let number = |n: &Spanned| evaluate(n, lookup).number();
    match &node.node {
        Node::Number(v) => Value::Number(Some(*v)),
        Node::Feature(name) => Value::Number(lookup(name).filter(|v| !v.is_nan())),
        Node::Neg(x) => Value::Number(number(x).map(|v| 0.0 - v)),
        Node::Arith(op, a, b) => Value::Number(match (number(a), number(b)) {
            (Some(a), Some(b)) => match op {
                ArithOp::Add => Some(a + b),
                ArithOp::Sub => Some(a - b),
                ArithOp::Mul => Some(a * b),
                ArithOp::Div => (b != 0.0).then(|| a / b),
            },
            _ => None,
        }),
        Node::Cmp(op, a, b) => Value::Condition(match (number(a), number(b)) {
            (Some(a), Some(b)) => Some(match op {
                CmpOp::Gt => a > b,
                CmpOp::GtEq => a >= b,
                CmpOp::Lt => a < b,
                CmpOp::LtEq => a <= b,
                CmpOp::Eq => a == b,
                CmpOp::NotEq => a != b,
            }),
            _ => None,
        }),
        // Three-valued: false wins an `and`, true wins an `or`, else unknown wins.
        Node::And(terms) => Value::Condition(chain(terms, lookup, false)),
        Node::Or(terms) => Value::Condition(chain(terms, lookup, true)),
        Node::Not(x) => Value::Condition(evaluate(x, lookup).condition().map(|v| !v)),
    }
}

/// An `and` (`decisive` false) or `or` (`decisive` true) chain.
fn chain(terms: &[Spanned], lookup: &impl Fn(&str) -> Option<f64>, decisive: bool) -> Option<bool> {
    let mut unknown = false;
    for term in terms {
        match evaluate(term, lookup).condition() {
            Some(v) if v == decisive => return Some(decisive),
            Some(_) => {}
            None => unknown = true,
        }
    }
    (!unknown).then_some(!decisive)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_condition, parse_number};

    fn row(name: &str) -> Option<f64> {
        match name {
            "a" => Some(2.0),
            "b" => Some(0.0),
            "nan" => Some(f64::NAN),
            _ => None,
        }
    }

    fn number(text: &str) -> Option<f64> {
        match evaluate(&parse_number("t", "expression", text).unwrap(), &row) {
            Value::Number(v) => v,
            Value::Condition(_) => panic!("{text} is a number"),
        }
    }

    fn condition(text: &str) -> Option<bool> {
        match evaluate(&parse_condition("t", "expression", text).unwrap(), &row) {
            Value::Condition(v) => v,
            Value::Number(_) => panic!("{text} is a condition"),
        }
    }

    #[test]
    fn arithmetic_follows_precedence_and_missing_spreads() {
        assert_eq!(number("a * 3 + 1"), Some(7.0));
        assert_eq!(number("-(a - 5) / 2"), Some(1.5));
        assert_eq!(number("a / b"), None, "division by zero is missing");
        assert_eq!(number("a + missing"), None);
        assert_eq!(number("nan * 0"), None, "NaN is missing");
    }

    #[test]
    fn conditions_use_three_valued_logic() {
        assert_eq!(condition("a > 1"), Some(true));
        assert_eq!(condition("missing > 1"), None);
        assert_eq!(condition("missing > 1 or a > 1"), Some(true));
        assert_eq!(condition("missing > 1 and a > 1"), None);
        assert_eq!(condition("missing > 1 and a < 1"), Some(false));
        assert_eq!(condition("not (a == 2)"), Some(false));
        assert_eq!(condition("not missing == 2"), None);
    }

    #[test]
    fn the_kind_is_checked() {
        let err = parse_number("`columns.amount`", "expression", "a > 1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`columns.amount`: `a > 1` at column 1 is a condition, not a number"
        );
        let err = parse_number("`columns.amount`", "expression", "a *").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`columns.amount`: unexpected end of the expression at column 4, expected a number or a feature name"
        );
    }
}
