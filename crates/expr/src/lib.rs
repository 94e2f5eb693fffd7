//! The expression language of userlens: arithmetic and conditions on named numbers,
//! parsed once (with the column of every mistake) and then compiled or evaluated by
//! its users — the predict stage's rules compile it to a polars expression over the
//! features table; the ingest's derived columns evaluate it on each source row.
//!
//! The language: numbers (`60`, `0.5`, `1e3`), names (letters, digits and `_`, or
//! any text but a backtick between backticks: `` `Lineitem price` ``),
//! arithmetic `+ - * /` and unary `-`, comparisons `> >= < <= == !=`, `and`, `or`,
//! `not` (lower case) and parentheses; text tests compare a name with a quoted text:
//! `Country == "UK"`, `!=`, `starts_with`, `ends_with` (`InvoiceNo starts_with "C"`). Precedence, loosest first: `or`, `and`,
//! `not`, comparisons (not chained), `+ -`, `* /`, unary `-`. Nesting is bounded by
//! [`MAX_DEPTH`] (a chain `a and b and c ...` is one level however long).
//!
//! Missing values: arithmetic with a missing value, or a division by zero, is
//! missing; a comparison with a missing value is unknown; `and`/`or` follow
//! three-valued logic (`unknown or true` is true).
//!
//! ```
//! let ast = userlens_expr::parse_number("`columns.amount`", "expression", "Quantity * UnitPrice").unwrap();
//! let row = |name: &str| match name { "Quantity" => Some(3.0), "UnitPrice" => Some(2.5), _ => None };
//! assert_eq!(userlens_expr::evaluate(&ast, &row), userlens_expr::Value::Number(Some(7.5)));
//! ```

// The parser is a hand-written recursive descent: the grammar has seven
// productions, every error needs the offending column and a hand-worded "expected
// ..." text, and a parser crate (pest, nom, chumsky) would bring more code and build
// time than the parser itself while making those messages harder to control.

mod error;
pub use error::{Error, Result};

mod eval;
mod token;

pub use eval::{Row, Value, evaluate};
use token::{Tok, Token, is_ident_char, is_ident_start, tokenize};

/// Deepest nesting of sub-expressions an expression may have (keeps recursion bounded).
/// Parentheses, `not`, unary minus, comparisons and arithmetic each add a level; a
/// chain `a and b and c ...` or `a or b or c ...` adds one, however long.
pub const MAX_DEPTH: usize = 100;

/// Longest text an expression may have, in bytes: far beyond a readable one, and it
/// bounds the tokens, syntax tree and evaluation made of it (per row, for a column).
pub const MAX_BYTES: usize = 4096;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `==`
    Eq,
    /// `!=`
    NotEq,
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

/// A test of a name's text against a quoted text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    /// `==`
    Eq,
    /// `!=`
    NotEq,
    /// `starts_with`
    StartsWith,
    /// `ends_with`
    EndsWith,
}

impl TextOp {
    /// Whether `value` passes the test against `text`.
    pub fn test(self, value: &str, text: &str) -> bool {
        match self {
            TextOp::Eq => value == text,
            TextOp::NotEq => value != text,
            TextOp::StartsWith => value.starts_with(text),
            TextOp::EndsWith => value.ends_with(text),
        }
    }
}

/// An expression: the syntax tree the parser builds.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A number as written.
    Number(f64),
    /// A name: a feature (rules) or a source column (derived columns).
    Feature(String),
    /// Unary minus.
    Neg(Box<Spanned>),
    /// Arithmetic on two numbers.
    Arith(ArithOp, Box<Spanned>, Box<Spanned>),
    /// A comparison of two numbers.
    Cmp(CmpOp, Box<Spanned>, Box<Spanned>),
    /// A chain `a and b and ...` of at least two conditions, kept flat so that its
    /// length is not nesting.
    And(Vec<Spanned>),
    /// A chain `a or b or ...` of at least two conditions.
    Or(Vec<Spanned>),
    /// The negation of a condition.
    Not(Box<Spanned>),
    /// A text test of a name (`InvoiceNo starts_with "C"`).
    Text {
        /// The test.
        op: TextOp,
        /// The name tested.
        name: String,
        /// The quoted text, without its quotes.
        text: String,
    },
}

/// A node with its byte range in the rule text and its depth.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    /// The expression.
    pub node: Node,
    /// Byte offset of its first character in the text.
    pub start: usize,
    /// Byte offset just past it.
    pub end: usize,
    /// Nesting depth (1 for a leaf).
    pub depth: usize,
}

impl Node {
    /// Depth of the deepest child (0 for a leaf).
    fn child_depth(&self) -> usize {
        match self {
            Node::Number(_) | Node::Feature(_) | Node::Text { .. } => 0,
            Node::Neg(x) | Node::Not(x) => x.depth,
            Node::Arith(_, a, b) | Node::Cmp(_, a, b) => a.depth.max(b.depth),
            Node::And(terms) | Node::Or(terms) => terms.iter().map(|t| t.depth).max().unwrap_or(0),
        }
    }
}

impl Spanned {
    /// Whether it is a condition (true or false) rather than a number.
    pub fn is_condition(&self) -> bool {
        matches!(
            self.node,
            Node::Cmp(..) | Node::And(..) | Node::Or(..) | Node::Not(..) | Node::Text { .. }
        )
    }
}

/// 1-based column in characters of byte `offset` of `text`.
pub fn column_of(text: &str, offset: usize) -> Place {
    let before = text.get(..offset).unwrap_or(text);
    match before.rfind('\n') {
        // A text of several lines (a TOML multi-line string): the line too.
        Some(end) => Place {
            line: Some(before.matches('\n').count() + 1),
            column: before[end + 1..].chars().count() + 1,
        },
        None if text.contains('\n') => Place {
            line: Some(1),
            column: before.chars().count() + 1,
        },
        None => Place {
            line: None,
            column: text.get(..offset).map_or(offset, |s| s.chars().count()) + 1,
        },
    }
}

/// A place in an expression's text, as messages give it: `column 7`, or `line 2,
/// column 3` in a text of several lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// The line, counted from 1, in a text of several lines.
    pub line: Option<usize>,
    /// The column, in characters, counted from 1.
    pub column: usize,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}, column {}", self.column),
            None => write!(f, "column {}", self.column),
        }
    }
}

/// The words that cannot be names.
pub const KEYWORDS: [&str; 5] = ["and", "or", "not", "starts_with", "ends_with"];

struct Parser<'a> {
    subject: &'a str,
    /// What the text is called in messages ("the end of the rule").
    noun: &'a str,
    text: &'a str,
    tokens: Vec<Token<'a>>,
    pos: usize,
    /// Current recursion depth of the parser (parentheses, `not`, unary minus).
    nesting: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.pos).copied()
    }

    fn describe(&self, token: Option<Token<'a>>) -> (String, usize) {
        match token {
            // A backticked name is shown as written, not in a second pair of backticks.
            Some(t) => match &self.text[t.start..t.end] {
                quoted if quoted.starts_with('`') => (quoted.to_string(), t.start),
                text => (format!("`{text}`"), t.start),
            },
            None => (
                format!("end of the {}", self.noun),
                self.text.trim_end().len(),
            ),
        }
    }

    fn unexpected(&self, expected: impl Into<String>) -> Error {
        let (found, offset) = self.describe(self.peek());
        Error::Unexpected {
            subject: self.subject.to_string(),
            found,
            column: column_of(self.text, offset),
            offset,
            expected: expected.into(),
        }
    }

    fn snippet(&self, node: &Spanned) -> String {
        self.text[node.start..node.end].to_string()
    }

    fn need_condition(&self, node: &Spanned) -> Result<()> {
        if node.is_condition() {
            return Ok(());
        }
        Err(Error::NotACondition {
            subject: self.subject.to_string(),
            snippet: self.snippet(node),
            column: column_of(self.text, node.start),
            offset: node.start,
        })
    }

    fn need_number(&self, node: &Spanned) -> Result<()> {
        if !node.is_condition() {
            return Ok(());
        }
        Err(Error::NotANumber {
            subject: self.subject.to_string(),
            snippet: self.snippet(node),
            column: column_of(self.text, node.start),
            offset: node.start,
        })
    }

    /// A node spanning `start..end`, refused when nested too deeply.
    fn node(&self, node: Node, start: usize, end: usize) -> Result<Spanned> {
        let depth = 1 + node.child_depth();
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep {
                subject: self.subject.to_string(),
                column: column_of(self.text, start),
                offset: start,
            });
        }
        Ok(Spanned {
            node,
            start,
            end,
            depth,
        })
    }

    fn enter(&mut self, at: usize) -> Result<()> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            return Err(Error::TooDeep {
                subject: self.subject.to_string(),
                column: column_of(self.text, at),
                offset: at,
            });
        }
        Ok(())
    }

    fn parse_or(&mut self) -> Result<Spanned> {
        self.parse_chain(Tok::Or, Self::parse_and, Node::Or)
    }

    fn parse_and(&mut self) -> Result<Spanned> {
        self.parse_chain(Tok::And, Self::parse_not, Node::And)
    }

    /// `operand (sep operand)*` as one flat node, parsed in a loop: a chain of any
    /// length is one level deep, not one level per operator.
    fn parse_chain(
        &mut self,
        sep: Tok<'a>,
        operand: fn(&mut Self) -> Result<Spanned>,
        chain: fn(Vec<Spanned>) -> Node,
    ) -> Result<Spanned> {
        let first = operand(self)?;
        if !self.peek().is_some_and(|t| t.tok == sep) {
            return Ok(first);
        }
        let mut terms = vec![first];
        while self.peek().is_some_and(|t| t.tok == sep) {
            self.pos += 1;
            let next = operand(self)?;
            if let [first] = terms.as_slice() {
                self.need_condition(first)?;
            }
            self.need_condition(&next)?;
            terms.push(next);
        }
        let start = terms.first().map_or(0, |t| t.start);
        let end = terms.last().map_or(0, |t| t.end);
        self.node(chain(terms), start, end)
    }

    fn parse_not(&mut self) -> Result<Spanned> {
        let Some(token) = self.peek().filter(|t| t.tok == Tok::Not) else {
            return self.parse_cmp();
        };
        self.pos += 1;
        self.enter(token.start)?;
        let operand = self.parse_not()?;
        self.nesting -= 1;
        self.need_condition(&operand)?;
        let end = operand.end;
        self.node(Node::Not(Box::new(operand)), token.start, end)
    }

    fn parse_cmp(&mut self) -> Result<Spanned> {
        let left = self.parse_sum()?;
        let text_op = match (self.peek().map(|t| t.tok), self.tokens.get(self.pos + 1)) {
            (Some(Tok::TextOp(op)), _) => Some(op),
            (
                Some(Tok::Cmp(CmpOp::Eq)),
                Some(Token {
                    tok: Tok::Text(_), ..
                }),
            ) => Some(TextOp::Eq),
            (
                Some(Tok::Cmp(CmpOp::NotEq)),
                Some(Token {
                    tok: Tok::Text(_), ..
                }),
            ) => Some(TextOp::NotEq),
            _ => None,
        };
        if let Some(op) = text_op {
            return self.text_test(op, left);
        }
        let Some(Tok::Cmp(op)) = self.peek().map(|t| t.tok) else {
            return Ok(left);
        };
        self.pos += 1;
        let right = self.parse_sum()?;
        self.need_number(&left)?;
        self.need_number(&right)?;
        let (start, end) = (left.start, right.end);
        self.node(Node::Cmp(op, Box::new(left), Box::new(right)), start, end)
    }

    /// `name op "text"`, the operator under the cursor.
    fn text_test(&mut self, op: TextOp, left: Spanned) -> Result<Spanned> {
        let Node::Feature(name) = &left.node else {
            return Err(Error::NotAName {
                subject: self.subject.to_string(),
                snippet: self.snippet(&left),
                column: column_of(self.text, left.start),
                offset: left.start,
            });
        };
        self.pos += 1;
        let Some(Token {
            tok: Tok::Text(text),
            end,
            ..
        }) = self.peek()
        else {
            return Err(self.unexpected("a quoted text such as \"C\""));
        };
        self.pos += 1;
        let node = Node::Text {
            op,
            name: name.clone(),
            text: text.to_string(),
        };
        self.node(node, left.start, end)
    }

    fn parse_sum(&mut self) -> Result<Spanned> {
        let mut left = self.parse_term()?;
        while let Some(Tok::Arith(op @ (ArithOp::Add | ArithOp::Sub))) = self.peek().map(|t| t.tok)
        {
            self.pos += 1;
            let right = self.parse_term()?;
            left = self.arith(op, left, right)?;
        }
        Ok(left)
    }

    fn parse_term(&mut self) -> Result<Spanned> {
        let mut left = self.parse_unary()?;
        while let Some(Tok::Arith(op @ (ArithOp::Mul | ArithOp::Div))) = self.peek().map(|t| t.tok)
        {
            self.pos += 1;
            let right = self.parse_unary()?;
            left = self.arith(op, left, right)?;
        }
        Ok(left)
    }

    fn arith(&self, op: ArithOp, left: Spanned, right: Spanned) -> Result<Spanned> {
        self.need_number(&left)?;
        self.need_number(&right)?;
        let (start, end) = (left.start, right.end);
        self.node(Node::Arith(op, Box::new(left), Box::new(right)), start, end)
    }

    fn parse_unary(&mut self) -> Result<Spanned> {
        let Some(token) = self.peek().filter(|t| t.tok == Tok::Arith(ArithOp::Sub)) else {
            return self.parse_atom();
        };
        self.pos += 1;
        self.enter(token.start)?;
        let operand = self.parse_unary()?;
        self.nesting -= 1;
        self.need_number(&operand)?;
        let end = operand.end;
        if let Node::Number(v) = operand.node {
            return Ok(Spanned {
                node: Node::Number(-v),
                start: token.start,
                end,
                depth: operand.depth,
            });
        }
        self.node(Node::Neg(Box::new(operand)), token.start, end)
    }

    /// What a name reads: a rule's, a feature; any other text's, a source column.
    fn name_word(&self) -> &'static str {
        if self.noun == "rule" {
            "a feature name"
        } else {
            "a column name"
        }
    }

    fn parse_atom(&mut self) -> Result<Spanned> {
        let Some(token) = self.peek() else {
            return Err(self.unexpected(format!("a number or {}", self.name_word())));
        };
        let leaf = |node| Spanned {
            node,
            start: token.start,
            end: token.end,
            depth: 1,
        };
        match token.tok {
            Tok::Number(v) => {
                self.pos += 1;
                Ok(leaf(Node::Number(v)))
            }
            Tok::Ident(name) => {
                self.pos += 1;
                Ok(leaf(Node::Feature(name.to_string())))
            }
            Tok::Open => {
                self.pos += 1;
                self.enter(token.start)?;
                let inner = self.parse_or()?;
                self.nesting -= 1;
                if self.peek().is_some_and(|t| t.tok == Tok::Close) {
                    let close = self.tokens[self.pos];
                    self.pos += 1;
                    Ok(Spanned {
                        start: token.start,
                        end: close.end,
                        ..inner
                    })
                } else {
                    Err(self.unexpected(format!(
                        "an operator or `)` to close the `(` at {}",
                        column_of(self.text, token.start)
                    )))
                }
            }
            Tok::Text(_) => Err(self.unexpected(format!(
                "a number or {} (a quoted text goes after a name and `==`, `!=`, `starts_with` or `ends_with`)",
                self.name_word()
            ))),
            _ => Err(self.unexpected(format!("a number or {}", self.name_word()))),
        }
    }
}

/// Whether `name` can be a name in an expression (and is not a keyword).
pub fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_ident_start)
        && chars.all(is_ident_char)
        && !KEYWORDS.contains(&name)
}

/// What a whole expression must be.
#[derive(Clone, Copy)]
enum Kind {
    Condition,
    Number,
}

/// Parses `text` as a `kind`; `subject` names it in messages ("rule `churn`") and
/// `noun` is what the text is called at its end ("rule", "expression").
fn parse(subject: &str, noun: &str, text: &str, kind: Kind) -> Result<Spanned> {
    if text.len() > MAX_BYTES {
        return Err(Error::TooLong {
            subject: subject.to_string(),
            bytes: text.len(),
        });
    }
    let tokens = tokenize(subject, text)?;
    if tokens.is_empty() {
        return Err(Error::Empty {
            subject: subject.to_string(),
        });
    }
    let mut parser = Parser {
        subject,
        noun,
        text,
        tokens,
        pos: 0,
        nesting: 0,
    };
    let ast = parser.parse_or()?;
    if parser.peek().is_some() {
        let expected = if parser.peek().is_some_and(|t| t.tok == Tok::Close) {
            format!("an operator or the end of the {noun} (this `)` closes nothing)")
        } else {
            format!("an operator or the end of the {noun}")
        };
        return Err(parser.unexpected(expected));
    }
    match kind {
        Kind::Condition => parser.need_condition(&ast)?,
        Kind::Number => parser.need_number(&ast)?,
    }
    Ok(ast)
}

/// Parses a condition (a comparison, or comparisons joined by `and`, `or`, `not`).
pub fn parse_condition(subject: &str, noun: &str, text: &str) -> Result<Spanned> {
    parse(subject, noun, text, Kind::Condition)
}

/// Parses a number expression (arithmetic on numbers and names).
pub fn parse_number(subject: &str, noun: &str, text: &str) -> Result<Spanned> {
    parse(subject, noun, text, Kind::Number)
}

/// Every name the expression reads, with its byte offset, left to right.
pub fn names(node: &Spanned) -> Vec<(&str, usize)> {
    uses(node)
        .into_iter()
        .map(|(name, at, _)| (name, at))
        .collect()
}

/// The names whose text a text test reads, with their byte offsets, left to right.
pub fn text_names(node: &Spanned) -> Vec<(&str, usize)> {
    uses(node)
        .into_iter()
        .filter(|(_, _, text)| *text)
        .map(|(name, at, _)| (name, at))
        .collect()
}

/// Every name read, its offset, and whether as text.
fn uses(node: &Spanned) -> Vec<(&str, usize, bool)> {
    let mut out = Vec::new();
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        match &n.node {
            Node::Number(_) => {}
            Node::Feature(name) => out.push((name.as_str(), n.start, false)),
            Node::Text { name, .. } => out.push((name.as_str(), n.start, true)),
            Node::Neg(x) | Node::Not(x) => stack.push(x),
            Node::Arith(_, a, b) | Node::Cmp(_, a, b) => {
                stack.push(b);
                stack.push(a);
            }
            Node::And(terms) | Node::Or(terms) => stack.extend(terms.iter().rev()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_in_a_text_of_several_lines_names_its_line() {
        assert_eq!(column_of("a > é1", 6).to_string(), "column 6");
        let text = "recency_days > 3\n  and frequency >> 0";
        assert_eq!(column_of(text, 3).to_string(), "line 1, column 4");
        let err = parse_condition("rule `r`", "rule", text).unwrap_err();
        assert!(
            err.to_string()
                .contains("unexpected `>` at line 2, column 18"),
            "{err}"
        );
    }
}
