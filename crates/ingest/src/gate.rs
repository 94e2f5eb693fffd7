//! The quality gate: a source is refused when too much of it was quarantined, with
//! the column most rows were refused for.

use polars::prelude::*;

use userlens_model::columns::{AMOUNT, USER_ID};

use crate::error::{self, Error, Result};
use crate::{Events, IngestStats};

impl IngestStats {
    /// Fails when the quarantined share passes `max_share` (0..1).
    pub fn check_gate(&self, max_share: f64, quarantine: &DataFrame) -> Result<()> {
        if self.read > 0 && self.quarantined as f64 > max_share * self.read as f64 {
            return Err(Error::QualityGate {
                most: most_refused(quarantine),
                read: self.read,
                quarantined: self.quarantined,
                share: 100.0 * self.quarantined as f64 / self.read as f64,
                max: 100.0 * max_share,
            });
        }
        if self.kept == 0 {
            let files = self
                .files
                .iter()
                .map(|f| format!("`{}`", f.path))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Error::NoEvents { files });
        }
        Ok(())
    }
}

/// The most a user's amounts may add up to, either way: money is summed per user in
/// whole cents, as an i64 (9.2e18 cents), with room to spare.
const MAX_USER_TOTAL: f64 = 9e16;

/// Refuses events in which a user's amounts add up past the bound, near what
/// their sums in cents would wrap; one sum over a part's rows clears the usual log.
/// Checked after the quarantine is written, as the gate is, so a refused run still
/// records what it read.
pub fn check_user_totals(events: &Events) -> Result<()> {
    let action = "add up the amounts";
    let absolute = || col(AMOUNT).cast(DataType::Float64).abs().sum();
    let (mut first, mut users) = (None::<String>, 0);
    // Every user is in one part.
    for part in events.parts()? {
        let total = part
            .clone()
            .select([absolute()])
            .collect()
            .map_err(error::polars(action))?;
        let total = total.columns()[0]
            .f64()
            .map_err(error::polars(action))?
            .get(0);
        if total.is_none_or(|t| t <= MAX_USER_TOTAL) {
            continue;
        }
        let over = part
            .group_by([col(USER_ID).cast(DataType::String)])
            .agg([absolute()])
            .filter(col(AMOUNT).gt(lit(MAX_USER_TOTAL)))
            .sort([USER_ID], SortMultipleOptions::default())
            .collect()
            .map_err(error::polars(action))?;
        let ids = over.column(USER_ID).map_err(error::polars(action))?;
        // The part's total can pass the bound with no one user's over it.
        if let Some(user) = ids
            .str()
            .map_err(error::polars(action))?
            .iter()
            .flatten()
            .next()
            && first.as_deref().is_none_or(|f| user < f)
        {
            first = Some(user.to_string());
        }
        users += over.height();
    }
    match first {
        Some(user) => Err(Error::UserTotal {
            user,
            users,
            max: MAX_USER_TOTAL,
        }),
        None => Ok(()),
    }
}

/// `; most for `column` (N rows), such as line L: reason` for the column most rows of
/// `quarantine` were refused for (`(the row)` for a row refused whole), with a hint
/// where the text is in another encoding; empty for an unreadable quarantine.
fn most_refused(quarantine: &DataFrame) -> String {
    let texts = |name: &str| -> Option<Vec<Option<String>>> {
        let column = quarantine.column(name).ok()?.cast(&DataType::String).ok()?;
        let values = column.str().ok()?.iter().map(|v| v.map(str::to_string));
        Some(values.collect())
    };
    let (Some(columns), Some(lines), Some(reasons)) =
        (texts("column"), texts("line"), texts("reason"))
    else {
        return String::new();
    };
    let mut counts: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for (i, column) in columns.iter().enumerate() {
        let entry = counts
            .entry(column.as_deref().unwrap_or(""))
            .or_insert((0, i));
        entry.0 += 1;
    }
    // The most rows, then the first seen.
    let Some((column, (n, first))) = counts
        .into_iter()
        .max_by(|a, b| (a.1.0, std::cmp::Reverse(a.1.1)).cmp(&(b.1.0, std::cmp::Reverse(b.1.1))))
    else {
        return String::new();
    };
    let reason = reasons[first].clone().unwrap_or_default();
    let named = if column.is_empty() {
        "the row".to_string()
    } else {
        format!("`{column}`")
    };
    let line = lines[first].clone().unwrap_or_default();
    // The file too, where the quarantine names it (a source of several files).
    let file = texts("file")
        .and_then(|files| files[first].clone())
        .filter(|f| !f.is_empty())
        .map(|f| format!(" of `{f}`"))
        .unwrap_or_default();
    let encoding = if reason.starts_with(NOT_UTF8) {
        " (is the file in another encoding, such as Windows-1252? `iconv -f windows-1252 \
         -t utf-8` converts it)"
    } else {
        ""
    };
    let rows = if n == 1 { "row" } else { "rows" };
    format!("; most for {named} ({n} {rows}), such as line {line}{file}: {reason}{encoding}")
}

/// Rows of `quarantine` refused for text that is not UTF-8.
pub fn rows_not_utf8(quarantine: &DataFrame) -> usize {
    let Ok(reasons) = quarantine.column("reason").and_then(|c| c.str().cloned()) else {
        return 0;
    };
    reasons
        .iter()
        .filter(|r| r.is_some_and(|r| r.starts_with(NOT_UTF8)))
        .count()
}

/// How a reason for text that is not UTF-8 begins.
const NOT_UTF8: &str = "invalid UTF-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_not_utf8_are_counted_by_their_reason() {
        let quarantine = df!(
            "reason" => ["invalid UTF-8 in `category`", "missing `user_id`", "invalid UTF-8 in `user_id`"],
        )
        .unwrap();
        assert_eq!(rows_not_utf8(&quarantine), 2);
        assert_eq!(rows_not_utf8(&DataFrame::empty()), 0);
    }
}
