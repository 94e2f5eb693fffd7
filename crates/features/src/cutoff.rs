//! The users table as it was known at a past cutoff. Features for training a model at
//! the cutoff must not see attributes that were only known later (a plan bought, a
//! lifetime value summed, after the cutoff), or the model learns from the future.
//!
//! A table with an `as_of` column, or else `*_at` columns, is time-versioned: each row
//! says since when it is true, so the rows known at the cutoff are kept, the last one
//! per user. Any other table is a snapshot of today: only the columns declared
//! static ([`crate::FeatureParams::static_columns`]) are kept. Either way a date after
//! the cutoff is not known yet and becomes null.

use polars::prelude::*;
use userlens_model::columns::USER_ID;

use crate::{CheckedFeatureParams, Error, Result, polars_err};

/// Column that says since when a row of a time-versioned users table is true.
pub(crate) const AS_OF: &str = "as_of";
/// Suffix of columns that say when something happened to a row (`updated_at`).
const AT_SUFFIX: &str = "_at";

/// The users table as known at a cutoff.
#[derive(Debug, Clone)]
pub struct UsersAtCutoff {
    /// The rows and columns known at the cutoff, one row per user at most for a
    /// time-versioned table.
    pub table: DataFrame,
    /// Columns left out: those not declared static, of a table not time-versioned.
    pub excluded: Vec<String>,
    /// Whether the table is time-versioned (an `as_of` or `*_at` time on each row).
    pub versioned: bool,
    /// Rows of a time-versioned table without a time: never known, left out.
    pub undated: usize,
}

/// Why `users` cannot be cut as `params` say, if a column `static_columns` names is
/// not one of its columns: the input's fault, or the pipeline file's.
pub fn unknown_static_column(users: &DataFrame, params: &CheckedFeatureParams) -> Option<String> {
    let names: Vec<&str> = users.columns().iter().map(|c| c.name().as_str()).collect();
    let name = (params.static_columns.iter()).find(|name| !names.contains(&name.as_str()))?;
    let hint = userlens_model::did_you_mean(name, &names)
        .map(|n| format!(" (did you mean `{n}`?)"))
        .unwrap_or_default();
    Some(format!(
        "`static_columns` names `{name}`, which is not a column of the users table{hint}"
    ))
}

/// Cuts `users` to what was known at `cutoff` (UTC microseconds): see the module
/// docs. A row of a time-versioned table is known when its `as_of` time, or else the
/// latest of its `*_at` times, is before the cutoff.
pub fn users_at_cutoff(
    users: &DataFrame,
    cutoff: i64,
    params: &CheckedFeatureParams,
) -> Result<UsersAtCutoff> {
    if let Some(message) = unknown_static_column(users, params) {
        return Err(Error::Params(message));
    }
    let names: Vec<&str> = users.columns().iter().map(|c| c.name().as_str()).collect();
    let (times, row_time) = times_and_versions(users)?;
    let mut table = cut_dates(users.clone(), &times, cutoff)?;

    let mut excluded = Vec::new();
    let versioned = row_time.is_some();
    let undated = row_time.as_ref().map_or(0, |t| t.null_count());
    let table = match row_time {
        Some(row_time) => {
            let (time, row) = ("__version_time", "__version_row");
            let rows: Vec<u32> = (0..table.height() as u32).collect();
            table
                .with_column(Column::new(time.into(), row_time.into_series()))
                .and_then(|t| t.with_column(Column::new(row.into(), rows)))
                .map_err(polars_err(ACTION))?;
            table
                .lazy()
                .filter(col(time).lt(lit(cutoff)))
                .sort([USER_ID, time, row], SortMultipleOptions::default())
                .unique_stable(Some(cols([USER_ID])), UniqueKeepStrategy::Last)
                .drop(cols([time, row]))
                .collect()
                .map_err(polars_err(ACTION))?
        }
        None => {
            let keep: Vec<&str> = names
                .iter()
                .copied()
                .filter(|&name| {
                    let kept = name == USER_ID || params.static_columns.iter().any(|s| s == name);
                    if !kept {
                        excluded.push(name.to_string());
                    }
                    kept
                })
                .collect();
            table.select(keep).map_err(polars_err(ACTION))?
        }
    };
    Ok(UsersAtCutoff {
        table,
        excluded,
        versioned,
        undated,
    })
}

/// `users` with every date at or after `cutoff` made null: a snapshot table's
/// columns are all joined at the as-of date, but a date after it is not known yet.
pub fn dates_before(users: &DataFrame, cutoff: i64) -> Result<DataFrame> {
    let (times, _) = times_and_versions(users)?;
    cut_dates(users.clone(), &times, cutoff)
}

/// `table` with each date column of `times` null at or after `cutoff`: known are
/// the times before it, as events are counted.
fn cut_dates(
    mut table: DataFrame,
    times: &[(String, Int64Chunked)],
    cutoff: i64,
) -> Result<DataFrame> {
    for (name, micros) in times {
        let known: BooleanChunked = micros
            .iter()
            .map(|t| t.is_none_or(|t| t < cutoff))
            .collect();
        let column = table.column(name).map_err(polars_err(ACTION))?;
        let unknown = Column::full_null(column.name().clone(), column.len(), column.dtype());
        let cut = column
            .zip_with(&known, &unknown)
            .map_err(polars_err(ACTION))?;
        table.with_column(cut).map_err(polars_err(ACTION))?;
    }
    Ok(table)
}

const ACTION: &str = "cut the users table at the cutoff";

/// The users table's date columns in microseconds, and since when each row is true
/// (its `as_of`, or else the latest of its `*_at` times) if it is time-versioned.
type Times = (Vec<(String, Int64Chunked)>, Option<Int64Chunked>);

fn times_and_versions(users: &DataFrame) -> Result<Times> {
    let mut times = Vec::new();
    for column in users.columns() {
        if column.name().as_str() != USER_ID
            && let Some(micros) = micros(column)?
        {
            times.push((column.name().to_string(), micros));
        }
    }
    let versions: Vec<&Int64Chunked> = match times
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(AS_OF))
    {
        Some((_, micros)) => vec![micros],
        None => times
            .iter()
            .filter(|(name, _)| name.to_ascii_lowercase().ends_with(AT_SUFFIX))
            .map(|(_, micros)| micros)
            .collect(),
    };
    let row_time = (!versions.is_empty()).then(|| {
        (0..users.height())
            .map(|i| versions.iter().filter_map(|v| v.get(i)).max())
            .collect::<Int64Chunked>()
    });
    Ok((times, row_time))
}

/// Two rows of a users table for one user (at one time, if it is time-versioned)
/// that differ: which of them counts would be left to the file's order.
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictingRows {
    /// The user's id.
    pub user: String,
    /// The two rows, counted from 1 after the header.
    pub rows: (usize, usize),
    /// The day both say they are true from, for a time-versioned table.
    pub since: Option<String>,
}

/// The first two differing rows of `users` for one user (and time, for a
/// time-versioned table); rows equal in every column are one row said twice.
pub fn conflicting_rows(users: &DataFrame) -> Result<Option<ConflictingRows>> {
    const CHECK: &str = "check the users table for repeated users";
    let (_, row_time) = times_and_versions(users)?;
    let ids = users
        .column(USER_ID)
        .and_then(|c| c.cast(&DataType::String))
        .map_err(polars_err(CHECK))?;
    let ids = ids.str().map_err(polars_err(CHECK))?;
    let row = |k: usize| users.get_row(k).map_err(polars_err(CHECK));
    let mut first = std::collections::HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        let Some(id) = id else { continue };
        let since = row_time.as_ref().and_then(|t| t.get(i));
        let j = *first.entry((id, since)).or_insert(i);
        if j != i && row(j)? != row(i)? {
            return Ok(Some(ConflictingRows {
                user: id.to_string(),
                rows: (j + 1, i + 1),
                since: since.map(userlens_model::time::date_string),
            }));
        }
    }
    Ok(None)
}

/// `users` with each text column that holds only dates (by `micros`'s rule) made a
/// datetime column: a date is then a date wherever the table is read, its features
/// (`user_<name>_days`) as its cut at the cutoff, whether its file typed it or not.
pub fn with_dates_typed(mut users: DataFrame) -> Result<DataFrame> {
    let text: Vec<PlSmallStr> = (users.columns().iter())
        .filter(|c| c.dtype() == &DataType::String && c.name().as_str() != USER_ID)
        .map(|c| c.name().clone())
        .collect();
    for name in text {
        let column = users.column(&name).map_err(polars_err(ACTION))?;
        if let Some(micros) = micros(column)? {
            let dates = micros
                .with_name(name)
                .into_datetime(TimeUnit::Microseconds, None);
            users
                .with_column(dates.into_column())
                .map_err(polars_err(ACTION))?;
        }
    }
    Ok(users)
}

/// Whether `text` is a date with its year first (`YYYY-MM-DD`, or `/` or `.` for
/// `-`), alone or followed by a time (` ` or `T`).
fn starts_with_iso_date(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() >= 10
        && digits(0..4)
        && matches!(b[4], b'-' | b'/' | b'.')
        && digits(5..7)
        && b[7] == b[4]
        && digits(8..10)
        && matches!(b.get(10), None | Some(b' ' | b'T'))
}

/// A column that would version a users table but holds something other than dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndatedColumn {
    /// The column's name.
    pub name: String,
    /// Its first value that is not a date (or not in the layout of those before it).
    pub value: String,
    /// That value's data row, from 1.
    pub row: usize,
}

/// The first column that would version the table (`as_of`, `*_at`) but holds
/// something other than dates: the table would quietly be a snapshot.
pub fn undated_version_column(users: &DataFrame) -> Result<Option<UndatedColumn>> {
    for column in users.columns() {
        let name = column.name().to_ascii_lowercase();
        let versions = name == AS_OF || name.ends_with(AT_SUFFIX);
        if versions && column.null_count() < column.len() && micros(column)?.is_none() {
            return first_undated(column).map(Some);
        }
    }
    Ok(None)
}

/// [`UndatedColumn`] of a column [`micros`] does not read: its first value that is not
/// an ISO date, else the first that polars does not read in the layout it infers
/// from the first value, else (a column of another type) its first value.
fn first_undated(column: &Column) -> Result<UndatedColumn> {
    let text = column.cast(&DataType::String).map_err(polars_err(ACTION))?;
    let text = text.str().map_err(polars_err(ACTION))?;
    let parsed = match column.dtype() {
        DataType::String => iso_times(text),
        _ => None,
    };
    let dated = |row: usize, value: &str| {
        column.dtype() == &DataType::String
            && starts_with_iso_date(value)
            && parsed.as_ref().is_none_or(|p| p.get(row).is_some())
    };
    let values = || text.iter().enumerate().filter_map(|(r, v)| Some((r, v?)));
    let (row, value) = values()
        .find(|&(r, v)| !dated(r, v))
        .or_else(|| values().next())
        .unwrap_or_default();
    Ok(UndatedColumn {
        name: column.name().to_string(),
        value: value.to_string(),
        row: row + 1,
    })
}

/// The times of a date, datetime or date-text column in UTC microseconds; `None`
/// for any other column, including text that is not all dates.
fn micros(column: &Column) -> Result<Option<Int64Chunked>> {
    match column.dtype() {
        DataType::Date | DataType::Datetime(_, _) => {
            let micros = column
                .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
                .and_then(|c| c.cast(&DataType::Int64))
                .map_err(polars_err(ACTION))?;
            Ok(Some(micros.i64().map_err(polars_err(ACTION))?.clone()))
        }
        DataType::String => {
            let text = column.str().map_err(polars_err(ACTION))?;
            // A value polars did not read makes the column text.
            Ok(iso_times(text)
                .filter(|p| p.null_count() == text.null_count() && p.len() > p.null_count()))
        }
        _ => Ok(None),
    }
}

/// `text`'s times in UTC microseconds when every value starts as an ISO date (not
/// `3.4.2020`, a version or a date whose day and month cannot be told apart), read
/// as the events' times are ([`userlens_model::time::parse_auto`], `/` or `.` taken
/// for `-`), null where a value is not one; `None` otherwise.
fn iso_times(text: &StringChunked) -> Option<Int64Chunked> {
    if !text.iter().flatten().all(starts_with_iso_date) {
        return None;
    }
    let read = |value: &str| {
        let mut value = value.trim().to_string();
        if value.as_bytes()[4] != b'-' {
            value.replace_range(4..5, "-");
            value.replace_range(7..8, "-");
        }
        userlens_model::time::parse_auto(&value)
    };
    Some(text.iter().map(|value| value.and_then(read)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FeatureParams;
    use userlens_model::time::midnight_micros;

    fn params(static_columns: &[&str]) -> CheckedFeatureParams {
        FeatureParams {
            static_columns: Some(static_columns.iter().map(|s| s.to_string()).collect()),
            ..FeatureParams::default()
        }
        .check()
        .unwrap()
    }

    fn strings(df: &DataFrame, name: &str) -> Vec<Option<String>> {
        let column = df.column(name).unwrap().str().unwrap();
        column.iter().map(|v| v.map(str::to_string)).collect()
    }

    #[test]
    fn text_that_holds_only_dates_is_typed_as_dates_other_text_not() {
        // As a Parquet table holds them: dates written as text.
        let users = df!(
            USER_ID => ["2026-01-01", "b"],
            "signup" => [Some("2026-01-05"), None],
            "plan" => ["free", "2026-01-05"],
            "build" => ["3.4.2020", "1.2.2021"],
            "seen" => ["2026-01-05 10:00:00", "2026-01-06T11:00:00"],
            "paid" => ["2026/01/05", "2026/02/07"],
        )
        .unwrap();
        let typed = with_dates_typed(users).unwrap();
        let dtype = |name: &str| typed.column(name).unwrap().dtype().clone();
        assert_eq!(
            dtype("signup"),
            DataType::Datetime(TimeUnit::Microseconds, None)
        );
        assert_eq!(dtype("plan"), DataType::String);
        assert_eq!(dtype("build"), DataType::String);
        assert!(
            matches!(dtype("paid"), DataType::Datetime(..)),
            "{:?}",
            dtype("paid")
        );
        // A column that would version the table but holds no dates is named.
        let versioned = df!(USER_ID => ["a"], "updated_at" => ["05/01/2026"]).unwrap();
        let named = undated_version_column(&with_dates_typed(versioned).unwrap()).unwrap();
        assert_eq!(
            named,
            Some(UndatedColumn {
                name: "updated_at".into(),
                value: "05/01/2026".into(),
                row: 1
            })
        );
        // Its first value that is not one.
        for (values, value, row) in [
            (["2025-01-01", "0000-00-00", "2025-02-01"], "0000-00-00", 2),
            (["2025-01-01", "2025-02-01", "05/03/2025"], "05/03/2025", 3),
        ] {
            let versioned = df!(USER_ID => ["a", "b", "c"], AS_OF => values).unwrap();
            let named = undated_version_column(&with_dates_typed(versioned).unwrap()).unwrap();
            let named = named.unwrap_or_else(|| panic!("{values:?}"));
            assert_eq!(
                (named.value.as_str(), named.row),
                (value, row),
                "{values:?}"
            );
        }
        assert_eq!(undated_version_column(&typed).unwrap(), None);
        assert!(
            matches!(dtype("seen"), DataType::Datetime(..)),
            "{:?}",
            dtype("seen")
        );
        assert_eq!(dtype(USER_ID), DataType::String);
        // So they become days before the as-of date, as typed dates do.
        let features = df!(USER_ID => ["b", "2026-01-01"]).unwrap();
        let as_of = midnight_micros(2026, 1, 15).unwrap();
        let joined = crate::join_users(features, &typed, as_of).unwrap();
        let days = joined
            .column("user_signup_days")
            .unwrap()
            .f64()
            .unwrap()
            .clone();
        let by_user: Vec<_> = strings(&joined, USER_ID)
            .into_iter()
            .zip(days.iter())
            .collect();
        assert!(
            by_user.contains(&(Some("2026-01-01".into()), Some(10.0))),
            "{by_user:?}"
        );
        assert!(by_user.contains(&(Some("b".into()), None)), "{by_user:?}");
    }

    #[test]
    fn dates_are_read_in_every_form_the_events_times_are() {
        // BigQuery's ` UTC`, Shopify's ` -0500`, RFC 3339 with a fraction, `.` for `-`.
        let users = df!(
            USER_ID => ["a", "b"],
            "updated_at" => ["2026-01-05 12:00:00 UTC", "2026-01-05 07:00:00 -0500"],
            "signup" => ["2026-01-05T14:00:00.5+02:00", "2026.01.05"],
        )
        .unwrap();
        let typed = with_dates_typed(users).unwrap();
        assert_eq!(undated_version_column(&typed).unwrap(), None);
        let micros = |name: &str| -> Vec<Option<i64>> {
            let column = typed.column(name).unwrap().cast(&DataType::Int64).unwrap();
            column.i64().unwrap().iter().collect()
        };
        let noon = midnight_micros(2026, 1, 5).unwrap() + 12 * 3_600_000_000;
        assert_eq!(micros("updated_at"), [Some(noon), Some(noon)]);
        assert_eq!(
            micros("signup"),
            [Some(noon + 500_000), midnight_micros(2026, 1, 5)]
        );
    }

    #[test]
    fn the_version_column_is_no_feature() {
        let users = df!(USER_ID => ["a"], "As_Of" => ["2026-01-01"], "score" => [3.0]).unwrap();
        let typed = with_dates_typed(users).unwrap();
        let as_of = midnight_micros(2026, 1, 15).unwrap();
        let joined = crate::join_users(df!(USER_ID => ["a"]).unwrap(), &typed, as_of).unwrap();
        let names: Vec<&str> = joined.columns().iter().map(|c| c.name().as_str()).collect();
        assert_eq!(names, [USER_ID, "user_score"]);
        // Nor does it take a name from another column.
        let users = df!(USER_ID => ["a"], AS_OF => ["2026-01-01"], "as_of_days" => [3.0]).unwrap();
        let typed = with_dates_typed(users).unwrap();
        assert_eq!(crate::colliding_user_columns(&typed), None);
    }

    #[test]
    fn two_differing_rows_of_a_user_are_a_conflict_equal_ones_not() {
        let snapshot = df!(
            USER_ID => ["a", "b", "a", "b"],
            "plan" => ["free", "pro", "free", "max"],
        )
        .unwrap();
        let conflict = conflicting_rows(&snapshot).unwrap().unwrap();
        assert_eq!(
            conflict,
            ConflictingRows {
                user: "b".into(),
                rows: (2, 4),
                since: None
            }
        );
        assert_eq!(conflicting_rows(&snapshot.slice(0, 3)).unwrap(), None);
        // A time-versioned table may hold a user once per time, not twice at one.
        let versioned = df!(
            USER_ID => ["a", "a", "a"],
            AS_OF => ["2026-01-01", "2026-02-01", "2026-02-01"],
            "plan" => ["free", "pro", "max"],
        )
        .unwrap();
        let conflict = conflicting_rows(&versioned).unwrap().unwrap();
        assert_eq!(conflict.rows, (2, 3));
        assert_eq!(conflict.since.as_deref(), Some("2026-02-01"));
        assert_eq!(conflicting_rows(&versioned.slice(0, 2)).unwrap(), None);
    }

    #[test]
    fn a_snapshot_keeps_static_columns_and_no_later_date() {
        let cutoff = midnight_micros(2026, 3, 1).unwrap();
        let day = |m, d| (midnight_micros(2026, m, d).unwrap() / 86_400_000_000) as i32;
        let users = df!(
            USER_ID => ["a", "b"],
            "country" => ["de", "fr"],
            "signup" => [day(1, 10), day(4, 2)],
            "first_order" => ["2026-02-01", "2026-03-05"],
            "lifetime_value" => [120.0, 0.0],
        )
        .unwrap();
        let mut users = users;
        users
            .with_column(
                users
                    .column("signup")
                    .unwrap()
                    .cast(&DataType::Date)
                    .unwrap(),
            )
            .unwrap();
        let cut = users_at_cutoff(
            &users,
            cutoff,
            &params(&["country", "signup", "first_order"]),
        )
        .unwrap();
        // the lifetime value is summed today: left out
        assert_eq!(cut.excluded, ["lifetime_value"]);
        let names: Vec<&str> = cut
            .table
            .columns()
            .iter()
            .map(|c| c.name().as_str())
            .collect();
        assert_eq!(names, [USER_ID, "country", "signup", "first_order"]);
        // b signed up and first ordered after the cutoff: not known yet
        assert_eq!(cut.table.column("signup").unwrap().null_count(), 1);
        assert!(
            cut.table
                .column("signup")
                .unwrap()
                .get(1)
                .unwrap()
                .is_null()
        );
        assert_eq!(
            strings(&cut.table, "first_order"),
            [Some("2026-02-01".into()), None]
        );
        // nothing declared static: the whole snapshot is left out
        let cut = users_at_cutoff(&users, cutoff, &params(&[])).unwrap();
        assert_eq!(cut.table.width(), 1);
        assert_eq!(cut.excluded.len(), 4);
    }

    #[test]
    fn a_versioned_table_keeps_each_users_last_row_known_at_the_cutoff() {
        let cutoff = midnight_micros(2026, 3, 1).unwrap();
        let users = df!(
            USER_ID => ["a", "a", "b", "a", "c"],
            "updated_at" => ["2026-01-01", "2026-02-01", "2026-03-02", "2026-04-01", "2026-02-28"],
            "plan" => ["free", "pro", "pro", "vip", "free"],
        )
        .unwrap();
        let cut = users_at_cutoff(&users, cutoff, &params(&[])).unwrap();
        assert!(cut.excluded.is_empty());
        assert_eq!(cut.undated, 0);
        assert_eq!(
            strings(&cut.table, USER_ID),
            [Some("a".into()), Some("c".into())]
        );
        assert_eq!(
            strings(&cut.table, "plan"),
            [Some("pro".into()), Some("free".into())]
        );

        // `as_of` says since when a row is true, whatever the `*_at` columns say
        let users = df!(
            USER_ID => ["a", "a"],
            "as_of" => ["2026-01-01", "2026-02-01"],
            "renewal_at" => ["2026-06-01", "2026-07-01"],
            "plan" => ["free", "pro"],
        )
        .unwrap();
        let cut = users_at_cutoff(&users, cutoff, &params(&[])).unwrap();
        assert_eq!(strings(&cut.table, "plan"), [Some("pro".into())]);
        assert_eq!(strings(&cut.table, "renewal_at"), [None]);
    }

    #[test]
    fn a_row_or_date_stamped_at_the_cutoff_is_not_known_yet() {
        // As an event at the cutoff is not before it, nor is a row or date stamped so.
        let cutoff = midnight_micros(2026, 3, 1).unwrap();
        let users = df!(
            USER_ID => ["a", "a"],
            "updated_at" => ["2026-02-01", "2026-03-01"],
            "plan" => ["free", "pro"],
        )
        .unwrap();
        let cut = users_at_cutoff(&users, cutoff, &params(&[])).unwrap();
        assert_eq!(strings(&cut.table, "plan"), [Some("free".into())]);
        // A row without a time is never known, and counted.
        let undated = df!(
            USER_ID => ["a", "b"],
            "updated_at" => [Some("2026-02-01"), None],
            "plan" => ["free", "pro"],
        )
        .unwrap();
        let cut = users_at_cutoff(&undated, cutoff, &params(&[])).unwrap();
        assert_eq!((cut.table.height(), cut.undated), (1, 1));
        // `Updated_At` versions a table as `updated_at` does.
        let mut upper = users.clone();
        upper.rename("updated_at", "Updated_At".into()).unwrap();
        let cut = users_at_cutoff(&upper, cutoff, &params(&[])).unwrap();
        assert!(cut.versioned);
        assert_eq!(strings(&cut.table, "plan"), [Some("free".into())]);
        // A snapshot's columns are all kept at the as-of date, its later dates not.
        let snapshot = df!(
            USER_ID => ["a", "b", "c"],
            "signup" => ["2026-01-10", "2026-03-01", "2026-06-01"],
            "lifetime_value" => [120.0, 5.0, 0.0],
        )
        .unwrap();
        let known = dates_before(&snapshot, cutoff).unwrap();
        assert_eq!(
            strings(&known, "signup"),
            [Some("2026-01-10".into()), None, None]
        );
        assert_eq!(known.column("lifetime_value").unwrap().null_count(), 0);
    }

    #[test]
    fn unknown_static_columns_are_named() {
        let users = df!(USER_ID => ["a"], "country" => ["de"]).unwrap();
        let err = users_at_cutoff(&users, 0, &params(&["contry"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`static_columns` names `contry`, which is not a column of the users table (did you mean `country`?)"
        );
    }
}
