//! How a source's columns and ids map onto the canonical event table.

use serde::{Deserialize, Serialize};
use userlens_model::columns;

/// How a source writes its ids.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdFormat {
    /// Any text, kept as written.
    #[default]
    Text,
    /// Whole numbers, possibly written as floats by a spreadsheet or pandas
    /// (`17850.0`): read as the integer.
    Integer,
}

impl IdFormat {
    /// The id as this format reads it, or `None` when it is not one.
    pub fn normalise(self, id: &str) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            IdFormat::Text => Some(id.into()),
            IdFormat::Integer => {
                let (whole, fraction) = id.split_once('.').unwrap_or((id, ""));
                let digits = whole.strip_prefix('-').unwrap_or(whole);
                let whole_number = !digits.is_empty()
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && fraction.bytes().all(|b| b == b'0');
                if !whole_number {
                    return None;
                }
                let significant = digits.trim_start_matches('0');
                let significant = if significant.is_empty() {
                    "0"
                } else {
                    significant
                };
                let negative = whole.starts_with('-') && significant != "0";
                Some(if negative {
                    format!("-{significant}").into()
                } else if significant.len() == id.len() {
                    id.into()
                } else {
                    significant.to_string().into()
                })
            }
        }
    }
}

/// Where a canonical column comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    untagged,
    deny_unknown_fields,
    expecting = "a column name, or one of { constant = \"...\" }, { expr = \"...\" }, { first = [\"...\", ...] }"
)]
pub enum ColumnSource {
    /// A column of the source, by name.
    Column(String),
    /// The same value on every row (`event_type = { constant = "purchase" }`).
    Constant {
        /// The value.
        constant: String,
    },
    /// Arithmetic on numeric source columns (`amount = { expr = "Quantity *
    /// UnitPrice" }`), in the language of the predict stage's rules.
    Derived {
        /// The expression.
        expr: String,
    },
    /// The first of these source columns with a value on the row (`user_id = {
    /// first = ["userId", "anonymousId"] }`).
    First {
        /// The columns, in order.
        first: Vec<String>,
    },
}

/// Canonical columns a derived expression may make: the numeric ones.
pub(crate) const DERIVABLE: [&str; 2] = [columns::AMOUNT, columns::RATING];
