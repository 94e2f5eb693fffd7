//! Reading tables into plain vectors, and the per-feature preparation.

use std::borrow::Cow;

use foldhash::HashMap;

use polars::prelude::*;
use userlens_model::columns::USER_ID;
use userlens_model::stats::{median, signed_log1p};
use userlens_model::takes_log;

use super::{Error, Result, polars_err};

/// A column of a [`Table`]: borrowed from the features table when it is already
/// what the models read (one chunk of finite `f64`s in `user_id` order), else a copy.
pub(crate) type Values<'a> = Cow<'a, [f64]>;

/// Rows of a table sorted by `user_id`, with numeric columns (NaN where missing).
#[derive(Clone, Default)]
pub struct Table<'a> {
    /// Sorted, unique user ids.
    pub(crate) ids: Vec<&'a str>,
    /// The columns' names.
    pub(crate) names: Vec<String>,
    /// One vector per requested column, aligned with `ids`.
    pub(crate) columns: Vec<Values<'a>>,
}

impl<'a> Table<'a> {
    /// Reads the `names` columns of a features table (`user_id` and numeric
    /// columns) once, to be shared by every [`Split`](super::Split) and
    /// [`Propensity`](super::Propensity) of those features.
    pub fn read(df: &'a DataFrame, names: &[String]) -> Result<Table<'a>> {
        read_table(df, "features", names)
    }
}

/// `user_id` of `df` in input order, checked to be text and non-null.
pub(crate) fn read_ids<'a>(df: &'a DataFrame, table: &'static str) -> Result<Vec<&'a str>> {
    let column = df.column(USER_ID).map_err(|_| Error::MissingColumn {
        table,
        column: USER_ID.to_string(),
    })?;
    let ids = column.str().map_err(|_| Error::UserIdNotText {
        table,
        dtype: column.dtype().to_string(),
    })?;
    let mut out = Vec::with_capacity(ids.len());
    for (row, id) in ids.iter().enumerate() {
        let Some(id) = id else {
            return Err(Error::NullUserId {
                table,
                row: row + 1,
            });
        };
        out.push(id);
    }
    Ok(out)
}

/// The permutation that sorts `ids`, refusing duplicates.
pub(crate) fn sorted_order(ids: &[&str], table: &'static str) -> Result<Vec<usize>> {
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by(|&a, &b| ids[a].cmp(ids[b]));
    if let Some(pair) = order.windows(2).find(|w| ids[w[0]] == ids[w[1]]) {
        return Err(Error::DuplicateUser {
            table,
            user: ids[pair[0]].to_string(),
        });
    }
    Ok(order)
}

/// A numeric (or boolean) column as `Option<f64>` in input order.
pub(crate) fn read_numeric(
    df: &DataFrame,
    table: &'static str,
    name: &str,
) -> Result<Vec<Option<f64>>> {
    let column = df.column(name).map_err(|_| Error::MissingColumn {
        table,
        column: name.to_string(),
    })?;
    let dtype = column.dtype();
    if !(dtype.is_primitive_numeric() || dtype.is_bool()) {
        return Err(Error::NotNumeric {
            table,
            column: name.to_string(),
            dtype: dtype.to_string(),
        });
    }
    let context = format!("read `{name}` as a number");
    let cast = column
        .cast(&DataType::Float64)
        .map_err(polars_err(&context))?;
    let values = cast.f64().map_err(polars_err(&context))?;
    Ok(values.iter().collect())
}

/// The numeric column `name` of `df` in its row order, missing and non-finite values
/// as NaN: what the models read.
pub(crate) fn read_features(df: &DataFrame, table: &'static str, name: &str) -> Result<Vec<f64>> {
    Ok(read_numeric(df, table, name)?
        .into_iter()
        .map(|v| v.filter(|v| v.is_finite()).unwrap_or(f64::NAN))
        .collect())
}

/// Reads `names` of `df` sorted by `user_id`; missing and non-finite values become NaN.
pub(crate) fn read_table<'a>(
    df: &'a DataFrame,
    table: &'static str,
    names: &[String],
) -> Result<Table<'a>> {
    let ids = read_ids(df, table)?;
    let order = sorted_order(&ids, table)?;
    let in_order = order.iter().enumerate().all(|(i, &r)| i == r);
    let mut columns = Vec::with_capacity(names.len());
    for name in names {
        let borrowed = in_order.then(|| finite_f64s(df, name)).flatten();
        columns.push(match borrowed {
            Some(values) => Cow::Borrowed(values),
            None => {
                let values = read_features(df, table, name)?;
                Cow::Owned(order.iter().map(|&i| values[i]).collect())
            }
        });
    }
    let ids = order.iter().map(|&i| ids[i]).collect();
    Ok(Table {
        ids,
        names: names.to_vec(),
        columns,
    })
}

/// The values of `df`'s column `name` when it is one chunk of `f64`s, none missing
/// or non-finite: exactly what [`read_features`] would copy.
fn finite_f64s<'a>(df: &'a DataFrame, name: &str) -> Option<&'a [f64]> {
    let values = df
        .column(name)
        .ok()?
        .as_series()?
        .f64()
        .ok()?
        .cont_slice()
        .ok()?;
    values.iter().all(|v| v.is_finite()).then_some(values)
}

/// `user_id -> value` of a numeric or boolean column of a labels-like table, the ids
/// borrowed from it; a missing or non-finite value is an error.
pub(crate) fn label_values<'a>(
    df: &'a DataFrame,
    table: &'static str,
    column: &str,
) -> Result<HashMap<&'a str, f64>> {
    let ids = read_ids(df, table)?;
    sorted_order(&ids, table)?;
    let values = read_numeric(df, table, column)?;
    let mut out = HashMap::with_capacity_and_hasher(ids.len(), Default::default());
    for (id, value) in ids.into_iter().zip(values) {
        match value {
            Some(v) if v.is_finite() => {
                out.insert(id, v);
            }
            other => {
                return Err(Error::BadTarget {
                    target: column.to_string(),
                    user: id.to_string(),
                    value: other.map_or("missing".to_string(), |v| v.to_string()),
                });
            }
        }
    }
    Ok(out)
}

/// The mean and population standard deviation of `values` divided by `by`.
fn moments(values: &[f64], by: f64) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().map(|v| v / by).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|v| (v / by - mean) * (v / by - mean))
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}

/// Preparation of one feature, fitted on training rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scaler {
    /// Column name.
    pub name: String,
    /// Signed `log1p` before standardising.
    pub log1p: bool,
    /// Training median of the raw values, imputed for missing ones.
    pub median: f64,
    /// Mean after imputation and log.
    pub mean: f64,
    /// Standard deviation after imputation and log (1 when constant).
    pub std: f64,
}

impl Scaler {
    /// Fits on `rows` of `column` (NaN = missing).
    pub fn fit(name: &str, column: &[f64], rows: &[usize]) -> Scaler {
        let training: Vec<f64> = rows.iter().map(|&r| column[r]).collect();
        let median = median(training.iter().copied()).unwrap_or(0.0);
        let mut scaler = Scaler {
            name: name.to_string(),
            log1p: takes_log(name, &training),
            median,
            mean: 0.0,
            std: 1.0,
        };
        if rows.is_empty() {
            return scaler;
        }
        let values: Vec<f64> = rows.iter().map(|&r| scaler.transform(column[r])).collect();
        let (mut mean, mut std) = moments(&values, 1.0);
        if !(mean.is_finite() && std.is_finite()) {
            // Values past about 1e154 overflow the squares: divided by the largest
            // magnitude first, they do not.
            let magnitude = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let (scaled_mean, scaled_std) = moments(&values, magnitude);
            (mean, std) = (scaled_mean * magnitude, scaled_std * magnitude);
        }
        scaler.mean = if mean.is_finite() { mean } else { 0.0 };
        scaler.std = if std.is_finite() && std > 1e-12 {
            std
        } else {
            1.0
        };
        scaler
    }

    /// Imputation and log, before standardising.
    fn transform(&self, v: f64) -> f64 {
        let v = if v.is_finite() { v } else { self.median };
        if self.log1p { signed_log1p(v) } else { v }
    }

    /// The prepared value of a raw one (always finite).
    pub fn apply(&self, v: f64) -> f64 {
        let z = (self.transform(v) - self.mean) / self.std;
        if z.is_finite() { z } else { 0.0 }
    }
}
