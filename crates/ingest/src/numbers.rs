//! Number fields as a source writes them (a decimal point, or a decimal comma), and
//! the ranges amounts and ratings are kept within.

use std::borrow::Cow;

use crate::read::{AMOUNT, RATING};
use crate::{Source, SourceFormat};

impl Source {
    /// A number field's value, as this source writes numbers (a decimal comma, or
    /// point; thousands grouped or not; with its `currency`); `None` for text that
    /// is no finite number.
    pub(crate) fn number(&self, text: &str) -> Option<f64> {
        let value = match self.plain_number(text) {
            Some(value) => value,
            None => {
                let bare = match self.params.currency.as_deref() {
                    Some(currency) => without_currency(text, currency),
                    None => Cow::Borrowed(text),
                };
                (self.plain_number(&bare)).or_else(|| grouped(&bare, self.params.decimal_comma))?
            }
        };
        value.is_finite().then_some(value)
    }

    /// A number written with the source's decimal mark alone.
    fn plain_number(&self, text: &str) -> Option<f64> {
        match self.params.decimal_comma {
            true if text.contains('.') => None,
            true => text.replacen(',', ".", 1).parse().ok(),
            false => text.parse().ok(),
        }
    }
}

/// `text` without `currency` before it (after a sign, if any) or after it, its ASCII
/// letters in any case (`kr`, `KR`), spaces between them dropped; `text` as it is when
/// it has none.
fn without_currency<'t>(text: &'t str, currency: &str) -> Cow<'t, str> {
    let (sign, rest) = match text.strip_prefix(['-', '+']) {
        Some(rest) => (&text[..1], rest),
        None => ("", text),
    };
    let n = currency.len();
    let same = |part: Option<&str>| part.is_some_and(|p| p.eq_ignore_ascii_case(currency));
    if same(rest.get(..n)) {
        let number = rest[n..].trim_start();
        return if sign.is_empty() {
            Cow::Borrowed(number)
        } else {
            Cow::Owned(format!("{sign}{number}"))
        };
    }
    match text.len().checked_sub(n) {
        Some(at) if same(text.get(at..)) => Cow::Borrowed(text[..at].trim_end()),
        _ => Cow::Borrowed(text),
    }
}

/// Whether `currency` can be a source's currency: a symbol or code that no number
/// holds.
pub(crate) fn is_currency(currency: &str) -> bool {
    let chars = currency.chars().count();
    (1..=8).contains(&chars)
        && !currency
            .chars()
            .any(|c| c.is_ascii_digit() || c.is_whitespace() || "+-.,".contains(c))
}

/// A number whose whole part is grouped by thousands: `1.234.567,5` or `1 234,5` with a
/// decimal comma, `1,234,567.5` without; `None` for any other text. Without a decimal
/// comma one group and no fraction (`1,234`) is refused, as a decimal comma could have
/// written it too.
fn grouped(text: &str, decimal_comma: bool) -> Option<f64> {
    let (sign, digits) = match text.strip_prefix(['-', '+']) {
        Some(rest) => (&text[..1], rest),
        None => ("", text),
    };
    let (mark, separators): (char, &[char]) = if decimal_comma {
        (',', &['.', ' ', '\u{a0}', '\u{202f}'])
    } else {
        ('.', &[','])
    };
    let (whole, fraction) = match digits.split_once(mark) {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let separator = whole.chars().find(|c| separators.contains(c))?;
    let groups: Vec<&str> = whole.split(separator).collect();
    let digits_only = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let well_grouped = (1..=3).contains(&groups[0].len())
        && !groups[0].starts_with('0')
        && groups[1..].iter().all(|g| g.len() == 3)
        && groups.iter().all(|g| digits_only(g))
        && fraction.is_none_or(digits_only);
    if !well_grouped || !decimal_comma && groups.len() == 2 && fraction.is_none() {
        return None;
    }
    let fraction = fraction.map_or(String::new(), |f| format!(".{f}"));
    format!("{sign}{}{fraction}", groups.concat()).parse().ok()
}

/// Why a number field did not read, where its decimal mark, thousands or currency
/// may be the cause; else nothing.
pub(crate) fn comma_hint(source: &Source, text: &str) -> String {
    let text = crate::read::trim(text);
    let currency = source.params.currency.as_deref();
    let bare = currency.map_or(Cow::Borrowed(text), |c| without_currency(text, c));
    let unsigned = bare.trim_start_matches(['-', '+']);
    let symbol = (unsigned
        .chars()
        .next()
        .filter(|c| CURRENCY_SYMBOLS.contains(c)))
    .or_else(|| bare.chars().last().filter(|c| CURRENCY_SYMBOLS.contains(c)));
    let reads = |t: &str| t.parse::<f64>().is_ok_and(f64::is_finite);
    // Read with a decimal comma, or with a decimal point (thousands grouped or not).
    let as_comma = grouped(&bare, true).is_some() || reads(&bare.replacen(',', ".", 1));
    let as_point = grouped(&bare, false).is_some() || reads(&bare);
    // `1,234`: a decimal comma, or one group of thousands.
    let one_group = unsigned.split_once(',').is_some_and(|(whole, rest)| {
        (1..=3).contains(&whole.len()) && !whole.starts_with('0') && rest.len() == 3
    });
    let settable = matches!(source.format, SourceFormat::Csv | SourceFormat::Text);
    match (symbol, currency, source.params.decimal_comma) {
        (Some(symbol), None, _) => {
            format!(" (a currency symbol? set `currency` to it: `currency = \"{symbol}\"`)")
        }
        (Some(_), Some(currency), _) => format!(" (another currency than `{currency}`?)"),
        (None, _, false) if as_comma && !settable => {
            " (a decimal comma? this source's numbers are read with a decimal point)".into()
        }
        (None, _, false) if as_comma && one_group => {
            " (a decimal comma, or thousands? set `decimal_comma = true` for a decimal \
             comma; a comma parting thousands is read beside a decimal point, 1,234.0)"
                .into()
        }
        (None, _, false) if as_comma && bare.contains(',') => {
            " (a decimal comma? set `decimal_comma = true`)".into()
        }
        (None, _, false) if as_comma => {
            " (thousands parted by points or spaces? `decimal_comma = true` reads them)".into()
        }
        (None, _, true) if as_point && bare.contains('.') => {
            " (a decimal point? `decimal_comma` is set for this source)".into()
        }
        (None, _, true) if as_point => {
            " (thousands parted by commas? `decimal_comma` is set for this source)".into()
        }
        (None, _, true) if bare.contains('.') => {
            " (`decimal_comma` is set: a point is no decimal mark; it parts thousands only, \
             as in 1.234,5)"
                .into()
        }
        _ => String::new(),
    }
}

/// Currency symbols a hint recognises.
const CURRENCY_SYMBOLS: [char; 10] = ['$', '€', '£', '¥', '₹', '₩', '₽', '₺', '₪', '฿'];

/// Largest amount kept, either way: a trillion, 1e14 whole cents (a user's sum is
/// bounded too, when the ingest finishes).
const MAX_AMOUNT: f64 = 1e12;

/// Why a number is out of its column's range (amounts within [`MAX_AMOUNT`], ratings
/// within `rating_scale`, 1-5 by default), if it is.
pub(crate) fn out_of_range(
    column: usize,
    v: f64,
    rating_scale: Option<[f64; 2]>,
) -> Option<String> {
    match (column, rating_scale) {
        (AMOUNT, _) if v.abs() > MAX_AMOUNT => {
            Some("beyond a trillion, more than userlens sums".into())
        }
        (RATING, None) if !(1.0..=5.0).contains(&v) => Some(
            "outside the ratings' 1-5 (ratings on another scale: set `rating_scale`, such as \
             [0.5, 5])"
                .into(),
        ),
        (RATING, Some([low, high])) if !(low..=high).contains(&v) => {
            Some(format!("outside `rating_scale` [{low}, {high}]"))
        }
        _ => None,
    }
}

/// A rating on `rating_scale`, mapped linearly onto 1-5.
pub(crate) fn on_one_to_five(v: f64, rating_scale: Option<[f64; 2]>) -> f64 {
    match rating_scale {
        Some([low, high]) => 1.0 + 4.0 * (v - low) / (high - low),
        None => v,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::SourceParams;

    proptest! {
        #[test]
        fn fuzz_any_text_reads_or_not_without_a_panic_and_plain_numbers_as_ever(
            text in "[-+0-9.,  $€kKrRł]{0,14}",
            value in any::<f64>(),
        ) {
            for settings in ["", "decimal_comma = true\ncurrency = \"kr\"", "currency = \"zł\""] {
                let source = source(settings);
                let _ = (source.number(&text), comma_hint(&source, &text));
            }
            // What read before these layouts were added reads as it did.
            if value.is_finite() {
                prop_assert_eq!(source("").number(&value.to_string()), Some(value));
                prop_assert_eq!(source("currency = \"$\"").number(&value.to_string()), Some(value));
            }
        }
    }

    fn source(settings: &str) -> Source {
        let text = format!("path = \"events.csv\"\ndelimiter = \";\"\n{settings}");
        toml::from_str::<SourceParams>(&text)
            .unwrap()
            .check()
            .unwrap()
    }

    #[test]
    fn thousands_are_read_only_in_groups_of_three() {
        let point = source("");
        for (text, value) in [
            ("1,234.5", Some(1234.5)),
            ("-1,234,567", Some(-1234567.0)),
            ("12", Some(12.0)),
            // One group and no fraction reads as a decimal comma too: refused.
            ("1,234", None),
            ("1,23.5", None),
            ("1234,567.5", None),
            (",123.5", None),
            ("1,234.", None),
            ("0,500.5", None),
        ] {
            assert_eq!(point.number(text), value, "{text}");
        }
        let comma = source("decimal_comma = true");
        for (text, value) in [
            ("1.234,5", Some(1234.5)),
            ("2.552", Some(2552.0)),
            ("1 234 567,25", Some(1234567.25)),
            ("+1\u{a0}234", Some(1234.0)),
            ("-12,5", Some(-12.5)),
            ("1.23,5", None),
            ("1.234 567", None),
            // No grouping starts with a zero: a decimal point, refused.
            ("0.500", None),
            ("-00.250", None),
            ("1,234.5", None),
        ] {
            assert_eq!(comma.number(text), value, "{text}");
        }
    }

    #[test]
    fn the_sources_currency_is_read_and_no_other() {
        let dollars = source("currency = \"$\"");
        for (text, value) in [
            ("$129.16", Some(129.16)),
            ("-$84.78", Some(-84.78)),
            ("$-84.78", Some(-84.78)),
            ("$ 1,299.00", Some(1299.0)),
            ("12.5$", Some(12.5)),
            ("12.5", Some(12.5)),
            ("€12.5", None),
            ("$$12", None),
            ("$", None),
        ] {
            assert_eq!(dollars.number(text), value, "{text}");
        }
        let crowns = source("decimal_comma = true\ncurrency = \"kr\"");
        assert_eq!(crowns.number("1.234,50 KR"), Some(1234.5));
        assert_eq!(crowns.number("Kr -3,5"), Some(-3.5));
        assert_eq!(crowns.number("-kr 3,5"), Some(-3.5));
        let euros = source("decimal_comma = true\ncurrency = \"EUR\"");
        assert_eq!(euros.number("1.234,50 EUR"), Some(1234.5));
        assert_eq!(euros.number("EUR 3,5"), Some(3.5));
        assert_eq!(
            comma_hint(&source(""), "12,5 €"),
            " (a currency symbol? set `currency` to it: `currency = \"€\"`)"
        );
        assert_eq!(
            comma_hint(&dollars, "€12.5"),
            " (another currency than `$`?)"
        );
        // The source's own currency is no cause: what is left of the text may be.
        assert_eq!(
            comma_hint(&dollars, "$12,5"),
            " (a decimal comma? set `decimal_comma = true`)"
        );
        assert!(comma_hint(&dollars, "$1,234").starts_with(" (a decimal comma, or thousands?"));
        assert_eq!(comma_hint(&dollars, "$"), "");
        // The mark a number was written with, whichever the source reads.
        let comma = source("decimal_comma = true");
        for (source, text, hint) in [
            (
                &dollars,
                "2.291,60",
                " (a decimal comma? set `decimal_comma = true`)",
            ),
            (
                &dollars,
                "0,500",
                " (a decimal comma? set `decimal_comma = true`)",
            ),
            (
                &comma,
                "1,234,567",
                " (thousands parted by commas? `decimal_comma` is set for this source)",
            ),
            (
                &dollars,
                "1.234.567",
                " (thousands parted by points or spaces? `decimal_comma = true` reads them)",
            ),
            (
                &comma,
                "0.500",
                " (a decimal point? `decimal_comma` is set for this source)",
            ),
            (
                &comma,
                "1.23,5",
                " (`decimal_comma` is set: a point is no decimal mark; it parts thousands \
                 only, as in 1.234,5)",
            ),
        ] {
            assert_eq!(comma_hint(source, text), hint, "{text}");
        }
        let json = SourceParams::canonical("e.ndjson").check().unwrap();
        assert_eq!(
            comma_hint(&json, "12,5"),
            " (a decimal comma? this source's numbers are read with a decimal point)"
        );
        for bad in ["", "1$", "US D", "-", "ABCDEFGHI"] {
            let text = format!("path = \"e.csv\"\ncurrency = {bad:?}");
            let params: SourceParams = toml::from_str(&text).unwrap();
            assert!(params.check().is_err(), "{bad:?}");
        }
    }
}
