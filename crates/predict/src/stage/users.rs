//! Per-user columns: read by user id, and set side by side with others.

use foldhash::HashMap;
use polars::prelude::*;
use userlens_model::columns::USER_ID;

use super::{Result, polars_err};

/// `right`'s columns but `user_id` after `left`'s, by user, as a left join makes
/// them: side by side when both list the same users in the same order (no copy of
/// `left`, no hash table), else by the join.
pub(super) fn by_user(
    mut left: DataFrame,
    right: DataFrame,
    action: &'static str,
) -> Result<DataFrame> {
    let ids = |df: &DataFrame| {
        df.column(USER_ID)
            .map(|c| c.as_materialized_series().clone())
    };
    let aligned = match (ids(&left), ids(&right)) {
        (Ok(l), Ok(r)) => l.dtype() == r.dtype() && l.null_count() == 0 && l.equals(&r),
        _ => false,
    };
    let added: Vec<Column> = right
        .columns()
        .iter()
        .filter(|c| c.name() != USER_ID)
        .cloned()
        .collect();
    let clash = added.iter().any(|c| left.column(c.name()).is_ok());
    if aligned && !clash {
        left.hstack_mut(&added).map_err(polars_err(action))?;
        return Ok(left);
    }
    left.lazy()
        .left_join(right.lazy(), col(USER_ID), col(USER_ID))
        .collect()
        .map_err(polars_err(action))
}

/// `user_id -> value` of a numeric or boolean column.
pub(super) fn lookup<'a>(df: &'a DataFrame, column: &str) -> Result<HashMap<&'a str, f64>> {
    let (ids, values) = id_values(df, column)?;
    Ok(ids
        .iter()
        .zip(values.iter())
        .filter_map(|(id, v)| Some((id?, v?)))
        .collect())
}

/// [`lookup`]'s value of each of `users`, in their order: for a few users, without
/// a map of every user.
pub(super) fn values_of(
    df: &DataFrame,
    column: &str,
    users: &[impl AsRef<str>],
) -> Result<Vec<Option<f64>>> {
    let place: HashMap<&str, usize> = users
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_ref(), i))
        .collect();
    let (ids, values) = id_values(df, column)?;
    let mut out = vec![None; users.len()];
    for (id, v) in ids.iter().zip(values.iter()) {
        if let (Some(&i), Some(v)) = (id.and_then(|id| place.get(id)), v) {
            out[i] = Some(v);
        }
    }
    Ok(out)
}

/// The user ids of `df` and its `column` as numbers.
fn id_values<'a>(df: &'a DataFrame, column: &str) -> Result<(&'a StringChunked, Float64Chunked)> {
    let ids = df
        .column(USER_ID)
        .and_then(|c| c.str())
        .map_err(polars_err("read user ids"))?;
    let values = df
        .column(column)
        .and_then(|c| c.cast(&DataType::Float64))
        .map_err(polars_err("read a prediction column"))?;
    let values = values
        .f64()
        .map_err(polars_err("read a prediction column"))?
        .clone();
    Ok((ids, values))
}
