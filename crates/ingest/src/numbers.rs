//! Number fields as a source writes them: a decimal point, or a decimal comma.

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
