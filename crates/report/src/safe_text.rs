//! Text from the data made safe to open: CSV cells a spreadsheet would run as a
//! formula are neutralised, and bidirectional control characters, which can make a
//! value read differently from what it holds ("Trojan Source"), are shown escaped.
//!
//! Written by hand: the rules are a dozen lines (OWASP's "CSV Injection" page) and no
//! maintained crate covers both.

use std::borrow::Cow;

use polars::prelude::*;

/// Whether `c` is a bidirectional control character: the embeddings and overrides
/// (U+202A–U+202E), the isolates (U+2066–U+2069) and the marks (U+200E, U+200F,
/// U+061C).
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// `text` with every bidirectional control written as a visible escape, `\u{202E}`
/// (upper-case hex, at least four digits), so the text reads as it is stored. Text
/// that is escaped, or holds `\u{` itself, has its backslashes doubled too: two
/// values never come out the same (text without either comes out unchanged).
pub fn escape_bidi(text: &str) -> Cow<'_, str> {
    escape_where(text, is_bidi_control, true)
}

/// Whether `c` is written as a visible escape in text for people: a bidirectional
/// control, or a control character other than a line end or a tab (a terminal would
/// run an escape sequence, a page would hide the character).
pub fn is_hidden(c: char) -> bool {
    is_bidi_control(c) || (c.is_control() && c != '\n' && c != '\t')
}

/// `text` with every [`is_hidden`] character written as `\u{001B}`, backslashes as
/// they are: for messages on a terminal and for the report page, read, not read back.
pub fn escape_hidden(text: &str) -> Cow<'_, str> {
    escape_where(text, is_hidden, false)
}

/// `text` with every bidirectional control written as its visible escape and
/// nothing else changed, so that a second pass changes nothing: for text only drawn
/// (chart labels), never read back or joined on.
pub(crate) fn show_bidi(text: &str) -> Cow<'_, str> {
    escape_where(text, is_bidi_control, false)
}

/// `text` with each character `shown` picks written as its visible escape; when
/// `injective`, a text so changed, or holding `\u{` itself, has its backslashes
/// doubled too (see [`escape_bidi`]).
fn escape_where(text: &str, shown: fn(char) -> bool, injective: bool) -> Cow<'_, str> {
    let doubled = injective && text.contains("\\u{");
    if !doubled && !text.chars().any(shown) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if shown(c) {
            out.push_str(&bidi_escape(c));
        } else if c == '\\' && injective {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The visible escape of one character, as [`escape_bidi`] writes it.
pub(crate) fn bidi_escape(c: char) -> String {
    format!("\\u{{{:04X}}}", c as u32)
}

/// A CSV text cell as it is safe to publish: bidirectional controls escaped (see
/// [`escape_bidi`]), then, if a spreadsheet would run the cell as a formula (it starts,
/// after any spaces an import may trim, with `=`, `+`, `-`, `@`, a tab or a carriage
/// return and is not a number such as `-3.5` or `+1`), prefixed with a single quote `'` as OWASP recommends; so is a
/// quote before such text, which [`restore_cell`] then tells from the prefix.
///
/// ```
/// use userlens_report::neutralise_cell;
/// assert_eq!(neutralise_cell("=1+1"), "'=1+1");
/// assert_eq!(neutralise_cell("-3.5"), "-3.5");
/// assert_eq!(neutralise_cell("a\u{202E}b"), "a\\u{202E}b");
/// ```
pub fn neutralise_cell(text: &str) -> Cow<'_, str> {
    let text = escape_bidi(text);
    if !runs_as_formula(&text) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 1);
    out.push('\'');
    out.push_str(&text);
    Cow::Owned(out)
}

/// Whether `text` gets the quote: it would run as a formula, or it is a quote
/// before text that would get one (so that [`restore_cell`] can tell the two apart).
fn runs_as_formula(text: &str) -> bool {
    // Spaces an import may trim, not the line ends that make a writer quote a cell.
    let text =
        text.trim_start_matches(|c: char| c.is_whitespace() && !matches!(c, '\t' | '\r' | '\n'));
    match text.as_bytes().first() {
        Some(b'=' | b'@' | b'\t' | b'\r') => true,
        Some(b'+' | b'-') => !is_number(text),
        Some(b'\'') => runs_as_formula(&text[1..]),
        _ => false,
    }
}

/// A cell of a CSV userlens wrote, as the data held it, for a page to show: without
/// the quote [`neutralise_cell`] put before it, and, where [`escape_bidi`] wrote it,
/// its backslashes single again (its bidirectional controls still shown escaped).
///
/// ```
/// use userlens_report::{neutralise_cell, restore_cell};
/// assert_eq!(restore_cell(&neutralise_cell("=1+1")), "=1+1");
/// assert_eq!(restore_cell(&neutralise_cell("'=1")), "'=1");
/// assert_eq!(restore_cell("'quoted"), "'quoted");
/// assert_eq!(restore_cell(&neutralise_cell("C:\\toys \u{202E}")), "C:\\toys \\u{202E}");
/// ```
pub fn restore_cell(cell: &str) -> Cow<'_, str> {
    let text = match cell.strip_prefix('\'') {
        Some(text) if runs_as_formula(text) => text,
        _ => cell,
    };
    // Text without `\u{` was never escaped (see [`escape_bidi`]).
    if !text.contains("\\u{") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '\\' && chars.peek() == Some(&'\\') {
            chars.next();
        }
    }
    Cow::Owned(out)
}

/// Whether `text` is a plain decimal number: an optional sign, digits with an
/// optional fraction (or a fraction alone), an optional exponent. Stricter than
/// `f64::from_str`, which also takes `inf` and `NaN`, words a spreadsheet would
/// evaluate as a formula.
fn is_number(text: &str) -> bool {
    fn digits(s: &[u8]) -> usize {
        s.iter().take_while(|b| b.is_ascii_digit()).count()
    }
    let mut s = text.as_bytes();
    if let [b'+' | b'-', rest @ ..] = s {
        s = rest;
    }
    let whole = digits(s);
    s = &s[whole..];
    let mut fraction = 0;
    if let [b'.', rest @ ..] = s {
        fraction = digits(rest);
        s = &rest[fraction..];
    }
    if whole + fraction == 0 {
        return false;
    }
    if let [b'e' | b'E', rest @ ..] = s {
        s = rest;
        if let [b'+' | b'-', rest @ ..] = s {
            s = rest;
        }
        let exponent = digits(s);
        if exponent == 0 {
            return false;
        }
        s = &s[exponent..];
    }
    s.is_empty()
}

/// `df` with every text cell and column name passed through [`neutralise_cell`], or
/// `None` when nothing changes (the common case, which then costs one scan and no
/// copy). Numeric, boolean and date columns are left as they are, so their bytes in
/// the CSV do not change; categorical columns are checked as their text.
pub(crate) fn for_spreadsheets(df: &DataFrame) -> PolarsResult<Option<DataFrame>> {
    let mut changed = false;
    let mut columns = Vec::with_capacity(df.width());
    for column in df.columns() {
        let values = safe_values(column)?;
        let name = neutralise_cell(column.name());
        if values.is_none() && matches!(name, Cow::Borrowed(_)) {
            columns.push(column.clone());
            continue;
        }
        changed = true;
        let mut column = values.unwrap_or_else(|| column.clone());
        column.rename(name.as_ref().into());
        columns.push(column);
    }
    if !changed {
        return Ok(None);
    }
    DataFrame::new(df.height(), columns).map(Some)
}

/// `column`'s cells passed through [`neutralise_cell`] if it holds text and any
/// cell changes; `None` otherwise.
fn safe_values(column: &Column) -> PolarsResult<Option<Column>> {
    let dtype = column.dtype();
    if let Some(scalar) = column.as_scalar_column().filter(|_| dtype.is_string()) {
        // One value for every row: checked once, never materialised.
        let Some(Cow::Owned(value)) = scalar.scalar().value().get_str().map(neutralise_cell) else {
            return Ok(None);
        };
        let value = Scalar::new(DataType::String, AnyValue::StringOwned(value.into()));
        return Ok(Some(Column::new_scalar(
            column.name().clone(),
            value,
            column.len(),
        )));
    }
    let text = if dtype.is_string() {
        column.as_materialized_series().clone()
    } else if dtype.is_categorical() || dtype.is_enum() {
        // Never true while the workspace leaves polars' `dtype-categorical` off;
        // here so that turning it on cannot open a way around the check.
        column
            .cast(&DataType::String)?
            .as_materialized_series()
            .clone()
    } else {
        return Ok(None);
    };
    let values = text.str()?;
    let unsafe_cell = values
        .iter()
        .flatten()
        .any(|v| matches!(neutralise_cell(v), Cow::Owned(_)));
    Ok(unsafe_cell.then(|| values.apply_values(neutralise_cell).into_column()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_are_shown_but_line_ends_and_tabs_kept() {
        assert_eq!(
            escape_hidden("bo\u{1}oks\u{1B}]0;x\u{7}\u{0}\u{202E}\ta\nb"),
            "bo\\u{0001}oks\\u{001B}]0;x\\u{0007}\\u{0000}\\u{202E}\ta\nb"
        );
        assert!(matches!(escape_hidden("plain"), Cow::Borrowed("plain")));
        // Read, not read back: a path's backslashes stay single.
        assert_eq!(escape_hidden("C:\\in\u{1B}"), "C:\\in\\u{001B}");
    }

    #[test]
    fn escaped_text_never_equals_other_text() {
        let values = [
            "u\u{202E}evil",
            "u\\u{202E}evil",
            "u\\\\u{202E}evil",
            "u\\\u{202E}evil",
            "u\\\\\u{202E}evil",
        ];
        let escaped: std::collections::BTreeSet<_> =
            values.iter().map(|v| escape_bidi(v).into_owned()).collect();
        assert_eq!(escaped.len(), values.len(), "{escaped:?}");
        assert_eq!(escape_bidi("u\u{202E}evil"), "u\\u{202E}evil");
        assert_eq!(escape_bidi("u\\u{202E}evil"), "u\\\\u{202E}evil");
        // Backslashes alone, as in a Windows path, are left as they are.
        assert!(matches!(escape_bidi("C:\\data\\u1.csv"), Cow::Borrowed(_)));
    }

    #[test]
    fn cells_a_spreadsheet_would_run_get_a_quote() {
        for (cell, safe) in [
            (
                "=HYPERLINK(\"http://evil.test\")",
                "'=HYPERLINK(\"http://evil.test\")",
            ),
            ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
            ("+cmd", "'+cmd"),
            ("+cmd 50%, books 50%", "'+cmd 50%, books 50%"),
            ("-2+3", "'-2+3"),
            ("-", "'-"),
            ("+", "'+"),
            ("-inf", "'-inf"),
            ("+NaN", "'+NaN"),
            ("-1e", "'-1e"),
            ("-.", "'-."),
            ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
            ("\t=1", "'\t=1"),
            (" =1+1", "' =1+1"),
            ("\u{A0} \u{2028}@A1", "'\u{A0} \u{2028}@A1"),
            (" -2.5", " -2.5"),
            ("\r=1", "'\r=1"),
            ("\t1", "'\t1"),
            ("'=1", "''=1"),
            ("''+cmd", "'''+cmd"),
        ] {
            assert_eq!(neutralise_cell(cell), safe, "{cell:?}");
        }
    }

    #[test]
    fn numbers_and_plain_text_stay_as_they_are() {
        for cell in [
            "-3.5",
            "+1",
            "-0",
            "1",
            "-.5",
            "+5.",
            "-1e5",
            "-2.5E-3",
            "+7e+2",
            "",
            "u42",
            "books",
            "a=b",
            "fashion (+1.6 sd)",
            "'quoted",
            "'-3.5",
            "\n=1",
        ] {
            assert!(
                matches!(neutralise_cell(cell), Cow::Borrowed(c) if c == cell),
                "{cell:?}"
            );
        }
    }

    #[test]
    fn restoring_a_cell_gives_back_the_text() {
        for text in [
            "=1", "'=1", "''=1", "'", "''", "'quoted", "-3.5", "'-3.5", "-x", "'-x", "@a", "u1", "",
        ] {
            assert_eq!(restore_cell(&neutralise_cell(text)), text, "{text:?}");
        }
    }

    #[test]
    fn bidi_controls_are_shown_escaped() {
        assert_eq!(
            neutralise_cell("user\u{202E}gpj.exe"),
            "user\\u{202E}gpj.exe"
        );
        assert_eq!(
            escape_bidi("\u{061C}a\u{200E}\u{2069}"),
            "\\u{061C}a\\u{200E}\\u{2069}"
        );
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{2066}', '\u{2067}', '\u{2068}',
            '\u{200F}',
        ] {
            let text = format!("x{c}");
            let escaped = escape_bidi(&text);
            assert!(!escaped.chars().any(is_bidi_control), "{c:?}");
            assert_eq!(escaped, format!("x\\u{{{:04X}}}", c as u32));
        }
        // other invisible characters are not bidi controls
        assert_eq!(escape_bidi("a\u{200B}b\u{2029}"), "a\u{200B}b\u{2029}");
        // a control cannot hide a formula: the escape comes first, and starts with `\`
        assert_eq!(neutralise_cell("\u{202E}=1+1"), "\\u{202E}=1+1");
    }

    #[test]
    fn only_text_columns_and_names_change() {
        let df = df!(
            "user_id" => ["u1", "=HYPERLINK(\"http://evil.test\")", "u\u{202E}3"],
            "top_categories" => [Some("+cmd 60%"), None, Some("-3.5")],
            "score" => [-1.5, 2.0, 3.0],
            "=name" => [1i64, -2, 3],
        )
        .unwrap();
        let safe = for_spreadsheets(&df).unwrap().unwrap();
        assert_eq!(
            safe.get_column_names(),
            ["user_id", "top_categories", "score", "'=name"]
        );
        let text = |name: &str| -> Vec<Option<String>> {
            let column = safe.column(name).unwrap().str().unwrap().clone();
            column.iter().map(|v| v.map(str::to_string)).collect()
        };
        assert_eq!(
            text("user_id"),
            [
                Some("u1".to_string()),
                Some("'=HYPERLINK(\"http://evil.test\")".to_string()),
                Some("u\\u{202E}3".to_string())
            ]
        );
        assert_eq!(
            text("top_categories"),
            [
                Some("'+cmd 60%".to_string()),
                None,
                Some("-3.5".to_string())
            ]
        );
        assert!(
            safe.column("score")
                .unwrap()
                .equals(df.column("score").unwrap())
        );
        assert!(
            safe.column("'=name")
                .unwrap()
                .as_materialized_series()
                .equals(df.column("=name").unwrap().as_materialized_series())
        );
        let plain = df!("user_id" => ["u1", "-2"], "n" => [-1i64, 2]).unwrap();
        assert!(for_spreadsheets(&plain).unwrap().is_none());
    }

    #[test]
    fn a_column_of_one_value_is_checked_once_and_stays_one_value() {
        let one = |name: &str, value: &str| {
            Column::new_scalar(
                name.into(),
                Scalar::new(DataType::String, AnyValue::StringOwned(value.into())),
                3,
            )
        };
        let safe_one = DataFrame::new(3, vec![one("model", "als")]).unwrap();
        assert!(for_spreadsheets(&safe_one).unwrap().is_none());
        let df = DataFrame::new(3, vec![one("model", "=1+1"), one("=m", "als")]).unwrap();
        let safe = for_spreadsheets(&df).unwrap().unwrap();
        assert_eq!(safe.get_column_names(), ["model", "'=m"]);
        let model = safe.column("model").unwrap();
        assert!(model.as_scalar_column().is_some());
        let values: Vec<Option<&str>> = model.str().unwrap().iter().collect();
        assert_eq!(values, [Some("'=1+1"); 3]);
    }
}
