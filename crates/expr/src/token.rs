//! The tokens of an expression.

use crate::{ArithOp, CmpOp, Error, Result, TextOp, column_of};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Tok<'a> {
    Number(f64),
    Ident(&'a str),
    /// A quoted text, without its quotes.
    Text(&'a str),
    TextOp(TextOp),
    And,
    Or,
    Not,
    Cmp(CmpOp),
    Arith(ArithOp),
    Open,
    Close,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Token<'a> {
    pub(crate) tok: Tok<'a>,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

pub(crate) fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

pub(crate) fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

pub(crate) fn tokenize<'a>(subject: &str, text: &'a str) -> Result<Vec<Token<'a>>> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let next_byte = bytes.get(start + 1).copied();
        let digit_at = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
        if c.is_ascii_digit() || (c == '.' && digit_at(start + 1)) {
            let mut end = start;
            while digit_at(end) {
                end += 1;
            }
            if bytes.get(end) == Some(&b'.') {
                end += 1;
                while digit_at(end) {
                    end += 1;
                }
            }
            if matches!(bytes.get(end), Some(b'e' | b'E')) {
                let sign = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
                if digit_at(end + 1 + sign) {
                    end += 1 + sign;
                    while digit_at(end) {
                        end += 1;
                    }
                }
            }
            let number = &text[start..end];
            let value: f64 = number.parse().unwrap_or(f64::INFINITY);
            let mantissa = number.split(['e', 'E']).next().unwrap_or(number);
            let nonzero = mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b));
            let too_small = nonzero && value.abs() < f64::MIN_POSITIVE;
            if !value.is_finite() || too_small {
                return Err(Error::BadNumber {
                    too_small,
                    subject: subject.to_string(),
                    number: number.to_string(),
                    column: column_of(text, start),
                    offset: start,
                });
            }
            tokens.push(Token {
                tok: Tok::Number(value),
                start,
                end,
            });
            while chars.peek().is_some_and(|&(i, _)| i < end) {
                chars.next();
            }
            continue;
        }
        if is_ident_start(c) {
            let mut end = start;
            while let Some(&(i, ch)) = chars.peek() {
                if !is_ident_char(ch) {
                    break;
                }
                end = i + ch.len_utf8();
                chars.next();
            }
            let word = &text[start..end];
            let tok = match word {
                "and" => Tok::And,
                "or" => Tok::Or,
                "not" => Tok::Not,
                "starts_with" => Tok::TextOp(TextOp::StartsWith),
                "ends_with" => Tok::TextOp(TextOp::EndsWith),
                _ => Tok::Ident(word),
            };
            tokens.push(Token { tok, start, end });
            continue;
        }
        // A quoted text, or a name of any characters in backticks (`Lineitem price`).
        if c == '"' || c == '`' {
            let Some(close) = text[start + 1..].find(c) else {
                return Err(Error::Unclosed {
                    subject: subject.to_string(),
                    quote: c,
                    column: column_of(text, start),
                    offset: start,
                });
            };
            let end = start + 1 + close + 1;
            let inner = &text[start + 1..end - 1];
            if c == '`' && inner.is_empty() {
                return Err(Error::Unexpected {
                    subject: subject.to_string(),
                    found: "empty backticks".into(),
                    column: column_of(text, start),
                    offset: start,
                    expected: "a name between them".into(),
                });
            }
            tokens.push(Token {
                tok: if c == '"' {
                    Tok::Text(inner)
                } else {
                    Tok::Ident(inner)
                },
                start,
                end,
            });
            while chars.peek().is_some_and(|&(i, _)| i < end) {
                chars.next();
            }
            continue;
        }
        let two = |second: u8, tok: Tok<'a>, one: Option<Tok<'a>>| {
            if next_byte == Some(second) {
                Some((tok, 2))
            } else {
                one.map(|t| (t, 1))
            }
        };
        let found = match c {
            '>' => two(b'=', Tok::Cmp(CmpOp::GtEq), Some(Tok::Cmp(CmpOp::Gt))),
            '<' => two(b'=', Tok::Cmp(CmpOp::LtEq), Some(Tok::Cmp(CmpOp::Lt))),
            '=' => two(b'=', Tok::Cmp(CmpOp::Eq), None),
            '!' => two(b'=', Tok::Cmp(CmpOp::NotEq), None),
            '+' => Some((Tok::Arith(ArithOp::Add), 1)),
            '-' => Some((Tok::Arith(ArithOp::Sub), 1)),
            '*' => Some((Tok::Arith(ArithOp::Mul), 1)),
            '/' => Some((Tok::Arith(ArithOp::Div), 1)),
            '(' => Some((Tok::Open, 1)),
            ')' => Some((Tok::Close, 1)),
            _ => None,
        };
        let Some((tok, len)) = found else {
            let hint = match c {
                '&' => ", write `and` instead",
                '|' => ", write `or` instead",
                '!' => ", write `not` or `!=` instead",
                '=' => ", write `==` to compare",
                '.' if text[..start].chars().next_back().is_some_and(is_ident_char) => {
                    ", write a name holding a dot between backticks: `properties.price`"
                }
                _ => "",
            };
            return Err(Error::BadCharacter {
                subject: subject.to_string(),
                character: c,
                column: column_of(text, start),
                offset: start,
                hint,
            });
        };
        tokens.push(Token {
            tok,
            start,
            end: start + len,
        });
        for _ in 0..len {
            chars.next();
        }
    }
    Ok(tokens)
}
