//! Mean satisfaction from rating events (1-5) per group and category.

use std::collections::BTreeMap;

use polars::prelude::*;
use userlens_model::columns::{CATEGORY, EVENT_TIME, RATING, USER_ID};

use crate::error::{Result, polars_err};
use crate::groups::Directory;

/// Category name of every rating together.
pub const ALL_CATEGORIES: &str = "all";
/// Category name of ratings without a category.
pub const NO_CATEGORY: &str = "(none)";

/// The rating events (1..=5) before `as_of`: `user_id, category, rating`, in the
/// parts' row order.
pub(crate) fn ratings(parts: &[LazyFrame], as_of: i64) -> Result<Vec<DataFrame>> {
    parts
        .iter()
        .map(|part| {
            part.clone()
                .filter(
                    col(EVENT_TIME)
                        .cast(DataType::Int64)
                        .lt(lit(as_of))
                        .and(col(RATING).gt_eq(lit(1.0)))
                        .and(col(RATING).lt_eq(lit(5.0))),
                )
                .select([
                    col(USER_ID).cast(DataType::String),
                    col(CATEGORY).cast(DataType::String),
                    col(RATING).cast(DataType::Float64),
                ])
                .collect()
                .map_err(polars_err("read the rating events"))
        })
        .collect()
}

#[derive(Default, Clone, Copy)]
struct Sum {
    ratings: u64,
    total: f64,
    users: u64,
}

/// `group, value, category, ratings, users, mean_rating` (category `all` first),
/// and each rater's mean rating (`user_id, mean_rating`, sorted by user).
pub(crate) fn tables(frames: &[DataFrame], dir: &Directory) -> Result<(DataFrame, DataFrame)> {
    // (group, category) -> sums; categories sorted, `all` kept first by the key.
    let mut sums: BTreeMap<(u32, (bool, String)), Sum> = BTreeMap::new();
    let mut per_user: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    let err = polars_err("read the rating events");
    for df in frames {
        let users = df.column(USER_ID).and_then(|c| c.str()).map_err(&err)?;
        let cats = df.column(CATEGORY).and_then(|c| c.str()).map_err(&err)?;
        let values = df.column(RATING).and_then(|c| c.f64()).map_err(&err)?;
        let mut seen: Vec<(u32, (bool, String))> = Vec::new();
        let mut current: Option<&str> = None;
        for ((user, cat), rating) in users.iter().zip(cats.iter()).zip(values.iter()) {
            let (Some(user), Some(rating)) = (user, rating) else {
                continue;
            };
            if current != Some(user) {
                // A user counts once per group and category: their rows are together.
                seen.clear();
                current = Some(user);
            }
            let entry = per_user.entry(user.to_string()).or_default();
            entry.0 += rating;
            entry.1 += 1;
            let category = cat.unwrap_or(NO_CATEGORY);
            for g in dir.memberships(user).iter().flatten() {
                for key in [
                    (false, ALL_CATEGORIES.to_string()),
                    (true, category.to_string()),
                ] {
                    let key = (*g, key);
                    let sum = sums.entry(key.clone()).or_default();
                    sum.ratings += 1;
                    sum.total += rating;
                    if !seen.contains(&key) {
                        sum.users += 1;
                        seen.push(key);
                    }
                }
            }
        }
    }
    let (mut kinds, mut values, mut categories, mut ratings_n, mut users_n, mut means): (
        Vec<_>,
        Vec<_>,
        Vec<_>,
        Vec<_>,
        Vec<_>,
        Vec<_>,
    ) = Default::default();
    for ((g, (_, category)), sum) in &sums {
        let Some(group) = dir.groups.get(*g as usize) else {
            continue;
        };
        kinds.push(group.kind);
        values.push(group.value.clone());
        categories.push(category.clone());
        ratings_n.push(sum.ratings);
        users_n.push(sum.users);
        means.push(sum.total / sum.ratings as f64);
    }
    let table = DataFrame::new_infer_height(vec![
        Column::new("group".into(), kinds),
        Column::new("value".into(), values),
        Column::new("category".into(), categories),
        Column::new("ratings".into(), ratings_n),
        Column::new("users".into(), users_n),
        Column::new("mean_rating".into(), means),
    ])
    .map_err(polars_err("build the satisfaction table"))?;
    let (ids, means): (Vec<String>, Vec<f64>) = per_user
        .into_iter()
        .map(|(id, (total, n))| (id, total / n as f64))
        .unzip();
    let users = DataFrame::new_infer_height(vec![
        Column::new(USER_ID.into(), ids),
        Column::new("mean_rating".into(), means),
    ])
    .map_err(polars_err("build the users' mean ratings"))?;
    Ok((table, users))
}
