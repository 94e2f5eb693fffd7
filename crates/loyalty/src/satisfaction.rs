//! Mean satisfaction from rating events (1-5) per group and category.

use std::collections::BTreeMap;

use polars::prelude::*;
use userlens_model::columns::{CATEGORY, EVENT_TIME, RATING, USER_ID};

use crate::error::{Result, polars_err};
use crate::groups::{Directory, Memberships};

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

/// What a row of the table sums: every rating, a category's, or those without one;
/// it tells a category named `all` or `(none)` from those rows.
#[derive(Clone, Copy)]
enum Scope {
    All,
    Category,
    Uncategorised,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::Category => "category",
            Scope::Uncategorised => "uncategorised",
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Sum {
    ratings: u64,
    total: f64,
    users: u64,
    /// The last run of one user's rows counted in `users`, from 1.
    counted: u64,
}

impl Sum {
    /// Adds a rating of the user whose rows are run `run`.
    fn add(&mut self, rating: f64, run: u64) {
        self.ratings += 1;
        self.total += rating;
        if self.counted != run {
            self.users += 1;
            self.counted = run;
        }
    }
}

/// `group, value, category, ratings, users, mean_rating, scope` (category `all`
/// first),
/// and each rater's mean rating (`user_id, mean_rating`, sorted by user).
pub(crate) fn tables(frames: &[DataFrame], dir: &Directory) -> Result<(DataFrame, DataFrame)> {
    // Per group: all its ratings, and its ratings by category (sorted).
    let groups = dir.groups.len();
    let mut all = vec![Sum::default(); groups];
    // `None`: the ratings without a category, apart from one named `(none)`.
    let mut by_category: Vec<BTreeMap<Option<String>, Sum>> = vec![BTreeMap::new(); groups];
    let mut per_user: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    let err = polars_err("read the rating events");
    // A user counts once per group and category: their rows are together, a run.
    let mut run = 0u64;
    for df in frames {
        let users = df.column(USER_ID).and_then(|c| c.str()).map_err(&err)?;
        let cats = df.column(CATEGORY).and_then(|c| c.str()).map_err(&err)?;
        let values = df.column(RATING).and_then(|c| c.f64()).map_err(&err)?;
        // The current run's user, groups and running mean (from what an earlier
        // run of theirs left), written back when the run ends.
        let mut current: Option<(&str, Memberships, (f64, u64))> = None;
        for ((user, cat), rating) in users.iter().zip(cats.iter()).zip(values.iter()) {
            let (Some(user), Some(rating)) = (user, rating) else {
                continue;
            };
            if current.as_ref().is_none_or(|(u, _, _)| *u != user) {
                if let Some((previous, _, mean)) = current.take() {
                    per_user.insert(previous.to_string(), mean);
                }
                run += 1;
                let mean = per_user.get(user).copied().unwrap_or_default();
                current = Some((user, dir.memberships(user), mean));
            }
            let Some((_, memberships, mean)) = current.as_mut() else {
                continue;
            };
            mean.0 += rating;
            mean.1 += 1;
            for g in memberships.iter().flatten().map(|&g| g as usize) {
                let (Some(all), Some(by_category)) = (all.get_mut(g), by_category.get_mut(g))
                else {
                    continue;
                };
                all.add(rating, run);
                let category = cat.map(str::to_string);
                match by_category.get_mut(&category) {
                    Some(sum) => sum.add(rating, run),
                    None => {
                        let mut sum = Sum::default();
                        sum.add(rating, run);
                        by_category.insert(category, sum);
                    }
                }
            }
        }
        if let Some((user, _, mean)) = current {
            per_user.insert(user.to_string(), mean);
        }
    }
    let rows = all
        .iter()
        .zip(&by_category)
        .enumerate()
        .flat_map(|(g, (all, cats))| {
            let all = (all.ratings > 0).then_some((g, Scope::All, ALL_CATEGORIES, all));
            all.into_iter()
                .chain(cats.iter().map(move |(c, sum)| match c {
                    Some(c) => (g, Scope::Category, c.as_str(), sum),
                    None => (g, Scope::Uncategorised, NO_CATEGORY, sum),
                }))
        });
    let (mut kinds, mut values, mut categories, mut scopes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut ratings_n, mut users_n, mut means) = (Vec::new(), Vec::new(), Vec::new());
    for (g, scope, category, sum) in rows {
        let Some(group) = dir.groups.get(g) else {
            continue;
        };
        kinds.push(group.kind);
        values.push(group.value.clone());
        categories.push(category.to_string());
        scopes.push(scope.name());
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
        Column::new("scope".into(), scopes),
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
