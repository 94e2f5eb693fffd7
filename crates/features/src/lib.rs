//! Features: canonical events -> one row per user of behavioural features, computed
//! as of a point in time: in one pass over the rows for events sorted by user and
//! time, as ingest leaves them (`sorted.rs`), with a polars group-by otherwise.
//!
//! Families ([`FeatureFamily`]) switch on and off in the pipeline file: RFM and
//! tenure, activity and sessions, funnel rates, category shares, time of day,
//! search, satisfaction and inter-purchase time. An optional users table joins
//! on `user_id`: its numeric attributes become `user_<name>` features, dates become
//! `user_<name>_days` (days before the as-of time) and text attributes are carried
//! along for reporting. Features built at a past cutoff to train a model
//! ([`build_parts_at_cutoff`]) see only what the users table knew then.
//!
//! ```no_run
//! # fn demo(events: &polars::prelude::DataFrame) -> userlens_features::Result<()> {
//! use userlens_features::{build, FeatureParams};
//! let params = FeatureParams::default().check()?;
//! let as_of = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z in microseconds
//! let features = build(events, as_of, None, &params)?;
//! assert!(features.column("recency_days").is_ok());
//! # Ok(()) }
//! ```

use std::path::PathBuf;

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use userlens_model::columns::*;
use userlens_model::time::DAY_MICROS;
use userlens_model::{FeatureFamily, USER_ATTRIBUTE_PREFIX};

mod error;
pub use error::{Error, Result};

mod cutoff;
mod query;
mod sorted;

use query::build_part;
use sorted::Time;

pub use cutoff::{
    ConflictingRows, UndatedColumn, UsersAtCutoff, conflicting_rows, dates_before,
    undated_version_column, unknown_static_column, users_at_cutoff, with_dates_typed,
};

fn polars_err(action: &'static str) -> impl FnOnce(PolarsError) -> Error {
    move |source| Error::Polars { action, source }
}

/// Feature parameters as written in a pipeline file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureParams {
    /// Families to compute (default: all).
    pub families: Vec<FeatureFamily>,
    /// How many of the most common categories get a `cat_share_<category>` column.
    pub top_categories: usize,
    /// Optional users table (CSV or Parquet with `user_id`) joined onto the features;
    /// read by the pipeline, not by this crate.
    pub users: Option<PathBuf>,
    /// Users-table columns whose values do not change over time (a country, a
    /// birth date): of a table that is not time-versioned, the only ones joined
    /// onto features built at a cutoff ([`build_parts_at_cutoff`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_columns: Option<Vec<String>>,
}

impl Default for FeatureParams {
    fn default() -> Self {
        FeatureParams {
            families: FeatureFamily::ALL.to_vec(),
            top_categories: 6,
            users: None,
            static_columns: None,
        }
    }
}

impl FeatureParams {
    /// Validates the parameters before any data is read.
    pub fn check(&self) -> Result<CheckedFeatureParams> {
        if self
            .users
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(Error::Params(
                "`users` is empty: name the users table, or leave `users` out".into(),
            ));
        }
        if self.families.is_empty() {
            return Err(Error::Params(
                "`families` is empty: name at least one feature family".into(),
            ));
        }
        if self.top_categories > 50 {
            return Err(Error::Params(format!(
                "`top_categories` is {}, at most 50 category columns are supported",
                self.top_categories
            )));
        }
        let static_columns = self.static_columns.clone().unwrap_or_default();
        if static_columns.iter().any(|name| name.trim().is_empty()) {
            return Err(Error::Params(
                "`static_columns` holds an empty column name".into(),
            ));
        }
        let mut families = self.families.clone();
        families.sort();
        families.dedup();
        Ok(CheckedFeatureParams {
            families,
            top_categories: self.top_categories,
            text: true,
            static_columns,
        })
    }
}

/// Validated feature parameters (serialisable, to send to a cluster's executors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckedFeatureParams {
    families: Vec<FeatureFamily>,
    top_categories: usize,
    /// Whether the text features ([`TEXT_FEATURES`]) are computed.
    text: bool,
    /// Users-table columns known at any cutoff (see [`FeatureParams`]).
    static_columns: Vec<String>,
}

pub use userlens_model::TEXT_FEATURES;

impl CheckedFeatureParams {
    /// Whether the features of `family` are made.
    pub fn has(&self, family: FeatureFamily) -> bool {
        self.families.contains(&family)
    }

    /// What keeps the feature `name` from being made, if anything: the parameter to
    /// change, `users` (a users-table attribute without a users table, as `users`
    /// says), `top_categories` (a category share with none) or `families` (its
    /// family left out).
    pub fn missing(&self, name: &str, users: bool) -> Option<&'static str> {
        if name.starts_with(USER_ATTRIBUTE_PREFIX) && name != USER_ID {
            return (!users).then_some("users");
        }
        if name.starts_with(userlens_model::CATEGORY_SHARE_PREFIX) && self.top_categories == 0 {
            return Some("top_categories");
        }
        let family = userlens_model::family_of(name)?;
        (!self.has(family)).then_some("families")
    }

    /// The same features without [`TEXT_FEATURES`], for a table only models read.
    pub fn without_text(&self) -> CheckedFeatureParams {
        CheckedFeatureParams {
            text: false,
            ..self.clone()
        }
    }
}

/// Times the reciprocal of a day, as polars divides a column of many rows by a
/// constant (one of a single row it divides exactly): the same bits however many
/// users a part holds.
fn days_between(later: Expr, earlier: Expr) -> Expr {
    (later - earlier).cast(DataType::Float64) * lit(1.0 / DAY_MICROS as f64)
}

/// The most common categories before each `(as_of, top)`: the `top` most common over
/// all users (ties: by name), counted part by part, each part read once.
fn top_categories(parts: &[LazyFrame], at: &[(i64, usize)]) -> Result<Vec<Vec<String>>> {
    let mut counts: Vec<foldhash::HashMap<String, u64>> = vec![Default::default(); at.len()];
    if at.iter().any(|&(_, top)| top > 0) {
        let action = "count categories";
        for part in parts {
            let events = part
                .clone()
                .select([col(EVENT_TIME).cast(DataType::Int64), col(CATEGORY)])
                .collect()
                .map_err(polars_err(action))?;
            let times = events.column(EVENT_TIME).and_then(|c| c.i64().cloned());
            let times = times.map_err(polars_err(action))?;
            let category = events.column(CATEGORY).map_err(polars_err(action))?;
            // Strings and codes are read as they are; another type (nulls) as strings.
            let as_strings;
            let categories = match sorted::Text::of(category) {
                Some(text) => text,
                None => {
                    as_strings = category
                        .cast(&DataType::String)
                        .map_err(polars_err(action))?;
                    sorted::Text::Strings(as_strings.str().map_err(polars_err(action))?)
                }
            };
            for (counts, &(as_of, top)) in counts.iter_mut().zip(at) {
                if top == 0 {
                    continue;
                }
                for (category, n) in sorted::count_before(&times, categories, as_of) {
                    *counts.entry(category.to_string()).or_insert(0) += n;
                }
            }
        }
    }
    Ok(counts
        .into_iter()
        .zip(at)
        .map(|(counts, &(_, top))| {
            let mut counts: Vec<(String, u64)> = counts.into_iter().collect();
            counts.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            // Each gets a `cat_share_<name>` column ([`share_columns`]).
            counts
                .into_iter()
                .map(|(category, _)| category)
                .take(top)
                .collect()
        })
        .collect())
}

/// Builds one row per user from the events before `as_of` (UTC microseconds),
/// sorted by `user_id`, and joins the users table when given.
///
/// Events sorted by user (as ingest leaves them) are processed in parts of about
/// [`PART_ROWS`] events that never split a user, so the memory the query needs on
/// top of the events stays bounded however many there are; every feature is per
/// user, and the one global input, the most common categories, is counted first.
pub fn build(
    events: &DataFrame,
    as_of: i64,
    users: Option<&DataFrame>,
    params: &CheckedFeatureParams,
) -> Result<DataFrame> {
    let at = At {
        as_of,
        params,
        users,
    };
    let mut built = build_in_parts(&[events.clone().lazy()], &[at], None, PART_ROWS)?;
    Ok(built.remove(0))
}

/// A time to build the features at: from the events before `as_of` (UTC
/// microseconds), with `params`, joining `users` when given.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    /// The events before it count.
    pub as_of: i64,
    /// The families and options.
    pub params: &'a CheckedFeatureParams,
    /// The users table to join (as known then: see [`users_at_cutoff`]).
    pub users: Option<&'a DataFrame>,
}

/// [`build`] for events in parts that each hold whole users (such as the Parquet
/// parts of an out-of-core ingest): one part is in memory at a time, or each part's
/// features come from `remote` (a cluster) when given.
pub fn build_parts(
    parts: &[LazyFrame],
    as_of: i64,
    users: Option<&DataFrame>,
    params: &CheckedFeatureParams,
    remote: Option<&dyn RemoteParts>,
) -> Result<DataFrame> {
    let at = At {
        as_of,
        params,
        users,
    };
    let mut built = build_parts_at(parts, &[at], remote)?;
    Ok(built.remove(0))
}

/// [`build_parts`] at each of `at`, one table per time in its order, reading each
/// part once: of events sorted by user and time, every table comes from one pass
/// over the rows (a user's features at an earlier time are their totals when
/// their events reach it).
pub fn build_parts_at(
    parts: &[LazyFrame],
    at: &[At],
    remote: Option<&dyn RemoteParts>,
) -> Result<Vec<DataFrame>> {
    build_in_parts(parts, at, remote, PART_ROWS)
}

/// Computes [`part_features`] of every part of the events somewhere else, such as
/// on the executors of a cluster, and returns them in the parts' order.
pub trait RemoteParts {
    /// The features of each part before `as_of`, with the `top` categories.
    fn part_features(
        &self,
        as_of: i64,
        top: &[String],
        params: &CheckedFeatureParams,
    ) -> Result<Vec<DataFrame>>;
}

fn build_in_parts(
    parts: &[LazyFrame],
    at: &[At],
    remote: Option<&dyn RemoteParts>,
    part_rows: usize,
) -> Result<Vec<DataFrame>> {
    let tops = top_categories_at(parts, at)?;
    let times: Vec<Time> = at
        .iter()
        .zip(&tops)
        .map(|(at, top)| Time {
            as_of: at.as_of,
            top,
            params: at.params,
        })
        .collect();
    let mut built: Vec<Vec<DataFrame>> = vec![Vec::with_capacity(parts.len()); at.len()];
    match remote {
        Some(remote) => {
            for (built, time) in built.iter_mut().zip(&times) {
                *built = remote.part_features(time.as_of, time.top, time.params)?;
            }
        }
        None => {
            for part in parts {
                let tables = part_features_in(part, &times, part_rows)?;
                for (built, table) in built.iter_mut().zip(tables) {
                    built.push(table);
                }
            }
        }
    }
    built
        .into_iter()
        .zip(at)
        .map(|(built, at)| combine(built, at.users, at.as_of))
        .collect()
}

/// The categories that get a `cat_share_<name>` column at each of `at`: the most
/// common ones before it over all parts (none when the family is off). Every
/// part's features use the same list.
fn top_categories_at(parts: &[LazyFrame], at: &[At]) -> Result<Vec<Vec<String>>> {
    let started = std::time::Instant::now();
    let wanted: Vec<(i64, usize)> = at
        .iter()
        .map(|at| {
            let top = if at.params.has(FeatureFamily::Categories) {
                at.params.top_categories
            } else {
                0
            };
            (at.as_of, top)
        })
        .collect();
    let tops = top_categories(parts, &wanted)?;
    tracing::debug!(
        "features: most common categories in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(tops)
}

/// The features of the users of one part of the events (whole users, as an
/// out-of-core ingest writes them), without the users table: the per-part work of
/// [`build_parts`], local or on a cluster's executors.
pub fn part_features(
    part: &LazyFrame,
    as_of: i64,
    top: &[String],
    params: &CheckedFeatureParams,
) -> Result<DataFrame> {
    let time = Time { as_of, top, params };
    Ok(part_features_in(part, &[time], PART_ROWS)?.remove(0))
}

fn part_features_in(part: &LazyFrame, times: &[Time], part_rows: usize) -> Result<Vec<DataFrame>> {
    let events = part
        .clone()
        .select(read_columns(part, times)?)
        .collect()
        .map_err(polars_err("read a part of the events"))?;
    let started = std::time::Instant::now();
    let (ranges, order) = user_parts(&events, part_rows)?;
    tracing::debug!(
        "features: {order:?} order of {} events checked in {:.2} s",
        events.height(),
        started.elapsed().as_secs_f64()
    );
    let started = std::time::Instant::now();
    let mut built: Vec<Vec<LazyFrame>> = vec![Vec::with_capacity(ranges.len()); times.len()];
    for range in ranges {
        let slice = events.slice(range.start as i64, range.end - range.start);
        for (built, table) in built.iter_mut().zip(build_part(&slice, times, order)?) {
            built.push(table.lazy());
        }
    }
    tracing::info!(
        "features: summed per user at {} time(s) in {:.2} s",
        times.len(),
        started.elapsed().as_secs_f64()
    );
    built
        .into_iter()
        .map(|built| {
            let mut features = concat(built, UnionArgs::default())
                .and_then(LazyFrame::collect)
                .map_err(polars_err("combine per-user features"))?;
            features.rechunk_mut();
            Ok(features)
        })
        .collect()
}

/// The features of all parts, in one table sorted by `user_id`, with the users table
/// joined when given.
fn combine(built: Vec<DataFrame>, users: Option<&DataFrame>, as_of: i64) -> Result<DataFrame> {
    if built.is_empty() {
        return Err(polars_err("compute per-user features")(
            PolarsError::NoData("no part of the events was processed".into()),
        ));
    }
    let mut features = stack_by_user(built).map_err(polars_err("combine per-user features"))?;
    features.rechunk_mut();
    if let Some(users) = users {
        features = join_users(features, users, as_of)?;
    }
    Ok(features)
}

/// The tables of parts, which split users by a hash of their id, as one table sorted
/// by `user_id`: the order is found once, then each column is gathered in it and its
/// parts' pieces let go, so that only one column is ever held twice.
fn stack_by_user(mut parts: Vec<DataFrame>) -> PolarsResult<DataFrame> {
    if parts.len() < 2 {
        return Ok(parts.pop().unwrap_or_default());
    }
    let mut ids = parts[0].column(USER_ID)?.clone();
    for part in &parts[1..] {
        ids.append(part.column(USER_ID)?)?;
    }
    let order = ids.arg_sort(SortOptions::default());
    drop(ids);
    let names = parts[0].get_column_names_owned();
    let mut columns = Vec::with_capacity(names.len());
    for name in &names {
        let mut column = parts[0].drop_in_place(name)?;
        for part in &mut parts[1..] {
            column.append_owned(part.drop_in_place(name)?)?;
        }
        let mut column = column.take(&order)?;
        if name == USER_ID {
            // What a sort sets: a later sort by user finds nothing to do.
            column.set_sorted_flag(polars::series::IsSorted::Ascending);
        }
        columns.push(column);
    }
    DataFrame::new(order.len(), columns)
}

/// [`build_parts`] at a past `cutoff`, for training a model on what was known then:
/// the users table is first cut to [`users_at_cutoff`]. Also returns the users-table
/// columns left out, for the run record.
pub fn build_parts_at_cutoff(
    parts: &[LazyFrame],
    cutoff: i64,
    users: Option<&DataFrame>,
    params: &CheckedFeatureParams,
    remote: Option<&dyn RemoteParts>,
) -> Result<(DataFrame, Vec<String>)> {
    let users = users
        .map(|users| users_at_cutoff(users, cutoff, params))
        .transpose()?;
    let table = users.as_ref().map(|u| &u.table);
    let features = build_parts(parts, cutoff, table, params, remote)?;
    Ok((features, users.map(|u| u.excluded).unwrap_or_default()))
}

/// The event columns the features at `times` read, of those `part` has: the rest
/// (such as `item_id`) is neither read from Parquet parts nor copied when the
/// events are cut at the as-of time.
fn read_columns(part: &LazyFrame, times: &[Time]) -> Result<Vec<Expr>> {
    let schema = part
        .clone()
        .collect_schema()
        .map_err(polars_err("read the columns of the events"))?;
    let mut wanted = vec![
        USER_ID, EVENT_TIME, EVENT_TYPE, SESSION_ID, AMOUNT, ORDER_ID,
    ];
    for (family, column) in [
        (FeatureFamily::Categories, CATEGORY),
        (FeatureFamily::Search, QUERY),
        (FeatureFamily::Satisfaction, RATING),
    ] {
        if times.iter().any(|time| time.params.has(family)) {
            wanted.push(column);
        }
    }
    Ok(wanted
        .into_iter()
        .filter(|name| schema.contains(name))
        .map(col)
        .collect())
}

/// Events per part in [`build`].
pub const PART_ROWS: usize = 1 << 21;

/// How the events are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// By `user_id`, then `event_time`, as ingest leaves them.
    UserTime,
    /// Any other order.
    Unsorted,
}

/// Row ranges of at most about `max_rows` events that never split a user (one range
/// over everything when the events are not sorted by `user_id`), and the order found.
/// The ranges bound the memory of the group-by, which copies the rows of a range
/// before the as-of time; the one pass over sorted events copies nothing.
fn user_parts(events: &DataFrame, max_rows: usize) -> Result<(Vec<std::ops::Range<usize>>, Order)> {
    let n = events.height();
    let action = "check the order of the events";
    let ids = events
        .column(USER_ID)
        .and_then(|c| c.str().cloned())
        .map_err(polars_err(action))?;
    let times = events
        .column(EVENT_TIME)
        .and_then(|c| c.cast(&DataType::Int64))
        .map_err(polars_err(action))?;
    let times = times.i64().map_err(polars_err(action))?;
    let everything = |order| Ok((std::iter::once(0..n).collect(), order));
    // Each stretch of rows checked on its own, with the row before it.
    let checked: Option<Vec<Order>> = {
        use rayon::prelude::*;
        (0..n.div_ceil(CHECK_ROWS))
            .into_par_iter()
            .map(|k| {
                let from = (k * CHECK_ROWS).saturating_sub(1);
                let rows = ((k + 1) * CHECK_ROWS).min(n) - from;
                let ids = ids.slice(from as i64, rows);
                let times = times.slice(from as i64, rows);
                let mut order = Order::UserTime;
                let mut pairs = ids.iter().zip(times.iter());
                let Some(mut previous) = pairs.next() else {
                    return Some(order);
                };
                for (id, time) in pairs {
                    if id < previous.0 {
                        return None;
                    }
                    if id == previous.0 && time < previous.1 {
                        order = Order::Unsorted;
                    }
                    previous = (id, time);
                }
                Some(order)
            })
            .collect()
    };
    let Some(checked) = checked else {
        // Not grouped by user.
        return everything(Order::Unsorted);
    };
    let order = if checked.contains(&Order::Unsorted) {
        Order::Unsorted
    } else {
        Order::UserTime
    };
    if n <= max_rows {
        return everything(order);
    }
    // Cut where a user starts once a range has `max_rows` rows.
    let mut parts = Vec::new();
    let mut start = 0;
    let step = max_rows.max(1);
    let mut cut = step;
    while cut < n {
        while cut < n && ids.get(cut) == ids.get(cut - 1) {
            cut += 1;
        }
        if cut == n {
            break;
        }
        parts.push(start..cut);
        start = cut;
        cut = start + step;
    }
    parts.push(start..n);
    Ok((parts, order))
}

/// Rows per task of [`user_parts`]' check of the order (in tests, a few, so that
/// small tables are checked in several).
#[cfg(not(test))]
const CHECK_ROWS: usize = 1 << 20;
#[cfg(test)]
const CHECK_ROWS: usize = 3;

/// Most characters a category gives its share's column name.
const MAX_NAME_CHARS: usize = 64;

/// The share columns of the `top` categories, in their order: `cat_share_<name>`,
/// and where two names make the same column name (such as "Home" and "home"), the
/// one later by its text's bytes gets `_2` (then `_3`, ...), so that no category's
/// share is lost and a column means the same category whatever the counts' order.
pub(crate) fn share_columns(top: &[String]) -> Vec<String> {
    let mut by_text: Vec<usize> = (0..top.len()).collect();
    by_text.sort_by(|&a, &b| top[a].cmp(&top[b]));
    let mut taken = std::collections::HashSet::new();
    let mut names = vec![String::new(); top.len()];
    for i in by_text {
        let base = format!(
            "{}{}",
            userlens_model::CATEGORY_SHARE_PREFIX,
            column_safe(&top[i])
                .chars()
                .take(MAX_NAME_CHARS)
                .collect::<String>()
        );
        let mut name = base.clone();
        let mut n = 1;
        while !taken.insert(name.clone()) {
            n += 1;
            name = format!("{base}_{n}");
        }
        names[i] = name;
    }
    names
}

/// Letters, digits and `_` only, so category names make safe column names.
fn column_safe(name: &str) -> String {
    let safe: String = name
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .collect();
    if safe.is_empty() {
        "blank".into()
    } else {
        safe
    }
}

/// The feature a users-table column becomes: `user_<name>`, `user_<name>_days` for
/// a date.
fn user_feature_name(column: &Column) -> String {
    let base = format!("{USER_ATTRIBUTE_PREFIX}{}", column_safe(column.name()));
    match column.dtype() {
        DataType::Date | DataType::Datetime(_, _) => format!("{base}_days"),
        _ => base,
    }
}

/// The columns of a users table that become features: all but the key and `as_of`,
/// which only says when its row was written.
fn attribute_columns(users: &DataFrame) -> impl Iterator<Item = &Column> {
    (users.columns().iter()).filter(|c| {
        let name = c.name().as_str();
        name != USER_ID && !name.eq_ignore_ascii_case(cutoff::AS_OF)
    })
}

/// Two columns of a users table that would become the same feature (`Plan` and
/// `plan`, say), with that feature's name: the first such pair.
pub fn colliding_user_columns(users: &DataFrame) -> Option<(String, String, String)> {
    // The key is a name taken too: a column `id` would become `user_id`.
    let mut seen = std::collections::HashMap::from([(USER_ID.to_string(), USER_ID)]);
    for column in attribute_columns(users) {
        let name = column.name().as_str();
        let feature = user_feature_name(column);
        if let Some(first) = seen.insert(feature.clone(), name) {
            return Some((first.to_string(), name.to_string(), feature));
        }
    }
    None
}

/// Left-joins a users table: numbers become `user_<name>` features, dates become
/// `user_<name>_days` before `as_of`, anything else is carried as text.
fn join_users(features: DataFrame, users: &DataFrame, as_of: i64) -> Result<DataFrame> {
    let mut exprs = vec![col(USER_ID).cast(DataType::String)];
    for column in attribute_columns(users) {
        let name = column.name().as_str();
        let base = user_feature_name(column);
        let expr = match column.dtype() {
            DataType::Date | DataType::Datetime(_, _) => days_between(
                lit(as_of),
                col(name)
                    .cast(DataType::Datetime(TimeUnit::Microseconds, None))
                    .cast(DataType::Int64),
            )
            .alias(&base),
            dtype if dtype.is_primitive_numeric() || dtype.is_bool() => {
                // NaN and infinities are no measurement: missing, as a blank cell is.
                let value = col(name).cast(DataType::Float64);
                when(value.clone().is_finite())
                    .then(value)
                    .otherwise(lit(NULL).cast(DataType::Float64))
                    .alias(&base)
            }
            _ => col(name).cast(DataType::String).alias(&base),
        };
        exprs.push(expr);
    }
    let users = users
        .clone()
        .lazy()
        .select(exprs)
        .unique_stable(Some(cols([USER_ID])), UniqueKeepStrategy::First);
    features
        .lazy()
        .left_join(users, col(USER_ID), col(USER_ID))
        .sort([USER_ID], SortMultipleOptions::default())
        .collect()
        .map_err(polars_err("join the users table"))
}

#[cfg(test)]
mod tests;
