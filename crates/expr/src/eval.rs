//! Evaluating an expression on one row of named values.

use crate::{ArithOp, CmpOp, Node, Spanned};

/// One row's values by name: numbers for arithmetic and comparisons, text for text
/// tests. A closure `Fn(&str) -> Option<f64>` is a row of numbers only.
pub trait Row {
    /// The value of `name` as a number (`None`: missing or not a number).
    fn number(&self, name: &str) -> Option<f64>;
    /// The value of `name` as text (`None`: missing).
    fn text(&self, name: &str) -> Option<&str>;
}

impl<F: Fn(&str) -> Option<f64>> Row for F {
    fn number(&self, name: &str) -> Option<f64> {
        self(name)
    }
    fn text(&self, _name: &str) -> Option<&str> {
        None
    }
}

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

/// Evaluates `node` on `row` (a missing value is `None`): the rules and the ingest's
/// derived columns and refund test alike. NaN counts as missing.
pub fn evaluate(node: &Spanned, row: &impl Row) -> Value {
    let number = |n: &Spanned| evaluate(n, row).number();
    match &node.node {
        Node::Number(v) => Value::Number(Some(*v)),
        Node::Feature(name) => Value::Number(row.number(name).filter(|v| !v.is_nan())),
        Node::Text { op, name, text } => {
            Value::Condition(row.text(name).map(|value| op.test(value, text)))
        }
        Node::Neg(x) => Value::Number(number(x).map(|v| 0.0 - v)),
        // inf - inf, 0 * inf: no number, so missing.
        Node::Arith(op, a, b) => Value::Number(match (number(a), number(b)) {
            (Some(a), Some(b)) => match op {
                ArithOp::Add => Some(a + b),
                ArithOp::Sub => Some(a - b),
                ArithOp::Mul => Some(a * b),
                ArithOp::Div => (b != 0.0).then(|| a / b),
            }
            .filter(|v| !v.is_nan()),
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
        Node::And(terms) => Value::Condition(chain(terms, row, false)),
        Node::Or(terms) => Value::Condition(chain(terms, row, true)),
        Node::Not(x) => Value::Condition(evaluate(x, row).condition().map(|v| !v)),
    }
}

/// An `and` (`decisive` false) or `or` (`decisive` true) chain.
fn chain(terms: &[Spanned], row: &impl Row, decisive: bool) -> Option<bool> {
    let mut unknown = false;
    for term in terms {
        match evaluate(term, row).condition() {
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
            "inf" => Some(f64::INFINITY),
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
        assert_eq!(
            number("inf - inf"),
            None,
            "arithmetic without a number is missing"
        );
        assert_eq!(number("inf * 0"), None);
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

    struct Invoice;

    impl Row for Invoice {
        fn number(&self, name: &str) -> Option<f64> {
            (name == "Quantity").then_some(-2.0)
        }
        fn text(&self, name: &str) -> Option<&str> {
            match name {
                "InvoiceNo" => Some("C536379"),
                "Country" => Some("United Kingdom"),
                _ => None,
            }
        }
    }

    fn test(text: &str) -> Option<bool> {
        match evaluate(&parse_condition("t", "condition", text).unwrap(), &Invoice) {
            Value::Condition(v) => v,
            Value::Number(_) => panic!("{text} is a condition"),
        }
    }

    #[test]
    fn text_tests_read_the_text_of_a_name() {
        assert_eq!(test(r#"InvoiceNo starts_with "C""#), Some(true));
        assert_eq!(test(r#"InvoiceNo starts_with "5""#), Some(false));
        assert_eq!(test(r#"InvoiceNo ends_with "79""#), Some(true));
        assert_eq!(test(r#"Country ends_with "dom""#), Some(true));
        assert_eq!(test(r#"Country == "United Kingdom""#), Some(true));
        assert_eq!(test(r#"Country != "United Kingdom""#), Some(false));
        assert_eq!(
            test(r#"StockCode == "POST""#),
            None,
            "missing text is unknown"
        );
        assert_eq!(
            test(r#"InvoiceNo starts_with "C" or Quantity < 0"#),
            Some(true)
        );
        assert_eq!(
            test(r#"not Country == "France" and Quantity < 0"#),
            Some(true)
        );
    }

    #[test]
    fn text_mistakes_are_located() {
        let message = |text: &str| {
            parse_condition("`refund_when`", "condition", text)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            message(r#"InvoiceNo starts_with "C"#),
            "`refund_when`: the text opened by `\"` at column 23 is not closed"
        );
        assert_eq!(
            message(r#"Quantity * 2 starts_with "C""#),
            "`refund_when`: `Quantity * 2` at column 1 is not a name; a text test reads one name, e.g. `InvoiceNo starts_with \"C\"`"
        );
        assert_eq!(
            message("InvoiceNo starts_with 5"),
            "`refund_when`: unexpected `5` at column 23, expected a quoted text such as \"C\""
        );
        assert!(message(r#""C" == InvoiceNo"#).contains("a quoted text goes after a name"));
        assert!(message(r#"Quantity > "3""#).contains("at column 12"));
    }

    struct Shopify;

    impl Row for Shopify {
        fn number(&self, name: &str) -> Option<f64> {
            match name {
                "Lineitem price" => Some(12.5),
                "Lineitem quantity" => Some(2.0),
                _ => None,
            }
        }
        fn text(&self, name: &str) -> Option<&str> {
            (name == "Financial Status").then_some("refunded")
        }
    }

    #[test]
    fn names_with_spaces_are_written_in_backticks() {
        let amount = parse_number("e", "expression", "`Lineitem price` * `Lineitem quantity`");
        assert_eq!(
            evaluate(&amount.unwrap(), &Shopify),
            Value::Number(Some(25.0))
        );
        let refund = parse_condition("r", "condition", r#"`Financial Status` == "refunded""#);
        assert_eq!(
            evaluate(&refund.unwrap(), &Shopify),
            Value::Condition(Some(true))
        );
        let err = parse_number("e", "expression", "2 `Lineitem quantity`").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("e: unexpected `Lineitem quantity` at column 3"),
            "{err}"
        );
        let err = parse_number("e", "expression", "`` * 2").unwrap_err();
        assert_eq!(
            err.to_string(),
            "e: unexpected empty backticks at column 1, expected a name between them"
        );
        let err = parse_number("e", "expression", "`Lineitem price * 2").unwrap_err();
        assert_eq!(
            err.to_string(),
            "e: the name opened by a backtick at column 1 is not closed"
        );
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
            "`columns.amount`: unexpected end of the expression at column 4, expected a number or a column name"
        );
    }
}
