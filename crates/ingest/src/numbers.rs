//! Number fields as a source writes them (a decimal point, or a decimal comma), and
//! the ranges amounts and ratings are kept within.

use crate::read::{AMOUNT, RATING};
use crate::{Source, SourceFormat};

impl Source {
    /// A number field's value, as this source writes numbers (a decimal comma, or
    /// point); `None` for text that is no finite number.
    pub(crate) fn number(&self, text: &str) -> Option<f64> {
        let value: f64 = match self.params.decimal_comma {
            // `1.234,5` is refused rather than guessed at: the point may group or not.
            true if text.contains('.') => return None,
            true => text.replacen(',', ".", 1).parse().ok()?,
            false => text.parse().ok()?,
        };
        value.is_finite().then_some(value)
    }
}

/// Why a number field did not read, where its decimal mark may be the cause: a
/// comma without `decimal_comma` (which a file whose fields a comma parts cannot
/// set), or a point with it; else nothing.
pub(crate) fn comma_hint(source: &Source, text: &str) -> &'static str {
    let text = crate::read::trim(text);
    let reads = |t: &str| t.parse::<f64>().is_ok_and(f64::is_finite);
    let comma_parts_fields = source.format == SourceFormat::Csv && source.delimiter == b',';
    match source.params.decimal_comma {
        false if text.contains(',') && reads(&text.replacen(',', ".", 1)) => {
            if comma_parts_fields {
                " (a decimal comma? `decimal_comma = true` reads it in a file whose fields \
                 another delimiter parts, such as `;`)"
            } else {
                " (a decimal comma? set `decimal_comma = true`)"
            }
        }
        true if text.contains('.') => {
            " (`decimal_comma` is set: a point is no decimal mark, nor read as a thousands \
             separator)"
        }
        _ => "",
    }
}

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
