//! The errors of the `expr` crate.

use crate::{MAX_BYTES, MAX_DEPTH};

/// A mistake in an expression's text, with where it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A token that does not fit the grammar at this point.
    #[error("{subject}: unexpected {found} at {column}, expected {expected}")]
    Unexpected {
        /// What the text is, e.g. "rule `churn`".
        subject: String,
        /// What was found, e.g. "`>`" or "end of the rule".
        found: String,
        /// 1-based column (in characters) of the offending text.
        column: crate::Place,
        /// 0-based byte offset of the offending text.
        offset: usize,
        /// What would have fitted.
        expected: String,
    },
    /// A character that starts no token.
    #[error("{subject}: unexpected character `{character}` at {column}{hint}")]
    BadCharacter {
        /// What the text is.
        subject: String,
        /// The character.
        character: char,
        /// 1-based column (in characters).
        column: crate::Place,
        /// 0-based byte offset.
        offset: usize,
        /// A suggestion such as ", write `and` instead", or empty.
        hint: &'static str,
    },
    /// A number too large for a 64-bit float, or too small to divide by (below the
    /// smallest normal one, whose reciprocal is finite) but not zero.
    #[error("{subject}: number `{number}` at {column} is too {}", if *.too_small { "small" } else { "large" })]
    BadNumber {
        /// Whether it is too small rather than too large.
        too_small: bool,
        /// What the text is.
        subject: String,
        /// The number as written.
        number: String,
        /// 1-based column (in characters).
        column: crate::Place,
        /// 0-based byte offset.
        offset: usize,
    },
    /// A number where a condition is needed.
    #[error(
        "{subject}: `{snippet}` at {column} is a number, not a condition; compare it, e.g. `{snippet} > 0`"
    )]
    NotACondition {
        /// What the text is.
        subject: String,
        /// The text of the number expression.
        snippet: String,
        /// 1-based column (in characters).
        column: crate::Place,
        /// 0-based byte offset.
        offset: usize,
    },
    /// A condition where a number is needed.
    #[error("{subject}: `{snippet}` at {column} is a condition, not a number")]
    NotANumber {
        /// What the text is.
        subject: String,
        /// The text of the condition.
        snippet: String,
        /// 1-based column (in characters).
        column: crate::Place,
        /// 0-based byte offset.
        offset: usize,
    },
    /// A text longer than [`MAX_BYTES`].
    #[error("{subject} is {bytes} bytes long, more than the {MAX_BYTES} allowed")]
    TooLong {
        /// What the text is.
        subject: String,
        /// Its length.
        bytes: usize,
    },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("{subject} nests too deeply at {column} (at most {MAX_DEPTH} levels)")]
    TooDeep {
        /// What the text is.
        subject: String,
        /// 1-based column (in characters).
        column: crate::Place,
        /// 0-based byte offset.
        offset: usize,
    },
    /// A `"` (a text) or a backtick (a name) that is not closed.
    #[error("{subject}: the {} at {column} is not closed", if *quote == '`' { "name opened by a backtick" } else { "text opened by `\"`" })]
    Unclosed {
        /// What the text is.
        subject: String,
        /// The quote that opened it.
        quote: char,
        /// 1-based column (in characters).
        column: crate::Place,
        /// 0-based byte offset.
        offset: usize,
    },
    /// A text test of something that is not a name.
    #[error(
        "{subject}: `{snippet}` at {column} is not a name; a text test reads one name, e.g. `InvoiceNo starts_with \"C\"`"
    )]
    NotAName {
        /// What the text is.
        subject: String,
        /// The text tested.
        snippet: String,
        /// 1-based column (in characters).
        column: crate::Place,
        /// 0-based byte offset.
        offset: usize,
    },
    /// Only white space.
    #[error("{subject} is empty")]
    Empty {
        /// What the text is.
        subject: String,
    },
}

/// Result of parsing.
pub type Result<T> = std::result::Result<T, Error>;
