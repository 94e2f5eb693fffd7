//! Key drivers: which user features go with satisfaction and with staying. Per
//! feature, Spearman's rank correlation with the outcome (on the users who have
//! both) and the standardised coefficient of a multiple regression of the outcome
//! on every feature at once (z-scores, missing values at the median).

use polars::prelude::*;
use rayon::prelude::*;
use userlens_model::columns::USER_ID;

use crate::error::{Result, polars_err};

/// Most users a driver analysis reads: beyond it, every k-th user in id order
/// (how close that comes to every user's correlations: docs/benchmarks.md).
pub const MAX_USERS: usize = 100_000;
/// A small ridge on the standardised normal equations, so that collinear features
/// (shares that sum to one) leave the regression solvable.
const RIDGE: f64 = 1e-6;

/// An outcome per user: `user_id` and the value.
pub struct Outcome<'a> {
    /// Name in `drivers.csv`'s `target` column.
    pub target: &'static str,
    /// `user_id` and `column`.
    pub table: &'a DataFrame,
    /// The outcome's column.
    pub column: &'static str,
    /// Features left out: ones that restate the outcome.
    pub exclude: &'static [&'static str],
    /// The features to read for this outcome, if not the common ones (those of a
    /// time before the outcome's behaviour).
    pub features: Option<&'a DataFrame>,
}

/// `target, feature, users, spearman, beta` for each outcome, features by the size
/// of their rank correlation.
pub fn drivers(features: &DataFrame, outcomes: &[Outcome<'_>]) -> Result<DataFrame> {
    let mut rows = Rows::default();
    for outcome in outcomes {
        let features = outcome.features.unwrap_or(features);
        let with_outcome = outcome
            .table
            .clone()
            .lazy()
            .select([
                col(USER_ID).cast(DataType::String),
                col(outcome.column)
                    .cast(DataType::Float64)
                    .alias("__outcome"),
            ])
            .filter(col("__outcome").is_not_null());
        // The users with both, in id order, every `stride`-th of them: only their
        // features are copied.
        let both = features
            .clone()
            .lazy()
            .select([col(USER_ID).cast(DataType::String)])
            .join(
                with_outcome,
                [col(USER_ID)],
                [col(USER_ID)],
                JoinArgs::new(JoinType::Inner),
            )
            .sort([USER_ID], SortMultipleOptions::default())
            .collect()
            .map_err(polars_err("join the outcome to the features"))?;
        let stride = both.height().div_ceil(MAX_USERS).max(1);
        let every = IdxCa::from_vec(
            "every".into(),
            (0..both.height() as IdxSize).step_by(stride).collect(),
        );
        let sampled = both
            .take(&every)
            .map_err(polars_err("sample the users with an outcome"))?;
        let joined = features
            .clone()
            .lazy()
            .join(
                sampled.lazy(),
                [col(USER_ID).cast(DataType::String)],
                [col(USER_ID)],
                JoinArgs::new(JoinType::Inner),
            )
            .sort([USER_ID], SortMultipleOptions::default())
            .collect()
            .map_err(polars_err("join the outcome to the features"))?;
        let y = numbers(joined.column("__outcome"))?;
        let mut names = Vec::new();
        let mut xs = Vec::new();
        for column in joined.columns() {
            let name = column.name().as_str();
            if name == USER_ID
                || name == "__outcome"
                || outcome.exclude.contains(&name)
                || !column.dtype().is_primitive_numeric() && !column.dtype().is_bool()
            {
                continue;
            }
            names.push(name.to_string());
            xs.push(numbers(Ok(column))?);
        }
        // The outcome's ranks serve every feature without a missing value.
        let y_ranks = (y.len() >= 3 && !y.iter().any(|v| v.is_nan())).then(|| ranks(&y));
        let spearman: Vec<(usize, Option<f64>)> = xs
            .par_iter()
            .map(|x| match &y_ranks {
                Some(y_ranks) if !x.iter().any(|v| v.is_nan()) => {
                    (x.len(), userlens_model::stats::pearson(&ranks(x), y_ranks))
                }
                _ => spearman(x, &y),
            })
            .collect();
        let betas = standardised_betas(&xs, &y);
        let mut order: Vec<usize> = (0..names.len()).collect();
        let key = |i: usize| spearman[i].1.map_or(-1.0, f64::abs);
        order.sort_by(|&a, &b| {
            key(b)
                .total_cmp(&key(a))
                .then_with(|| names[a].cmp(&names[b]))
        });
        for i in order {
            rows.target.push(outcome.target);
            rows.feature.push(names[i].clone());
            rows.users.push(spearman[i].0 as u64);
            rows.spearman.push(spearman[i].1);
            rows.beta.push(betas.as_ref().and_then(|b| b[i]));
        }
    }
    DataFrame::new_infer_height(vec![
        Column::new("target".into(), rows.target),
        Column::new("feature".into(), rows.feature),
        Column::new("users".into(), rows.users),
        Column::new("spearman".into(), rows.spearman),
        Column::new("beta".into(), rows.beta),
    ])
    .map_err(polars_err("build the drivers table"))
}

#[derive(Default)]
struct Rows {
    target: Vec<&'static str>,
    feature: Vec<String>,
    users: Vec<u64>,
    spearman: Vec<Option<f64>>,
    beta: Vec<Option<f64>>,
}

/// The values as f64, NaN for missing.
fn numbers(column: PolarsResult<&Column>) -> Result<Vec<f64>> {
    let err = polars_err("read a feature");
    let column = column.map_err(&err)?;
    let cast = column.cast(&DataType::Float64).map_err(&err)?;
    let values = cast.f64().map_err(&err)?;
    Ok(values
        .iter()
        .map(|v| v.filter(|v| v.is_finite()).unwrap_or(f64::NAN))
        .collect())
}

/// Ranks 1..=n, ties at their average rank.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    // Unstable: tied values get their average rank whatever their order.
    order.sort_unstable_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let average = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = average;
        }
        i = j + 1;
    }
    ranks
}

/// Users with both values, and Spearman's rho (Pearson's r of the average ranks).
pub fn spearman(x: &[f64], y: &[f64]) -> (usize, Option<f64>) {
    let (a, b): (Vec<f64>, Vec<f64>) = x
        .iter()
        .zip(y)
        .filter(|(a, b)| !a.is_nan() && !b.is_nan())
        .map(|(a, b)| (*a, *b))
        .unzip();
    if a.len() < 3 {
        return (a.len(), None);
    }
    (
        a.len(),
        userlens_model::stats::pearson(&ranks(&a), &ranks(&b)),
    )
}

/// Standardised coefficients of `y` on every column of `xs` (missing values at the
/// column's median); `None` for a constant column, all `None` when there are too
/// few rows to fit.
fn standardised_betas(xs: &[Vec<f64>], y: &[f64]) -> Option<Vec<Option<f64>>> {
    let z = |v: &[f64]| -> Option<Vec<f64>> {
        let median = userlens_model::stats::median(v.iter().copied())?;
        let filled: Vec<f64> = v
            .iter()
            .map(|x| if x.is_nan() { median } else { *x })
            .collect();
        let n = filled.len() as f64;
        let mean = filled.iter().sum::<f64>() / n;
        let sd = (filled.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
        (sd > 1e-12 * mean.abs().max(1.0)).then(|| filled.iter().map(|x| (x - mean) / sd).collect())
    };
    let y = z(y)?;
    let cols: Vec<Option<Vec<f64>>> = xs.par_iter().map(|x| z(x)).collect();
    let used: Vec<usize> = (0..cols.len()).filter(|&i| cols[i].is_some()).collect();
    let p = used.len();
    if p == 0 || y.len() < p + 2 {
        return None;
    }
    let n = y.len() as f64;
    let col = |i: usize| cols[used[i]].as_deref().unwrap_or(&[]);
    // Correlation matrix and the features' correlations with y.
    let upper: Vec<Vec<f64>> = (0..p)
        .into_par_iter()
        .map(|i| {
            (i..p)
                .map(|j| col(i).iter().zip(col(j)).map(|(x, y)| x * y).sum::<f64>() / n)
                .collect()
        })
        .collect();
    let mut a = vec![0.0; p * p];
    for (i, row) in upper.iter().enumerate() {
        for (j, &v) in (i..p).zip(row) {
            a[i * p + j] = v;
            a[j * p + i] = v;
        }
        a[i * p + i] += RIDGE;
    }
    let b: Vec<f64> = (0..p)
        .map(|i| col(i).iter().zip(&y).map(|(x, y)| x * y).sum::<f64>() / n)
        .collect();
    let solved = userlens_model::stats::cholesky_solve(&mut a, b, p)?;
    let mut betas = vec![None; cols.len()];
    for (k, &i) in used.iter().enumerate() {
        betas[i] = Some(solved[k]);
    }
    Some(betas)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_uses_average_ranks_for_ties() {
        assert_eq!(ranks(&[10.0, 20.0, 20.0, 5.0]), [2.0, 3.5, 3.5, 1.0]);
        // monotone but not linear: rho is exactly 1
        let (n, rho) = spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 8.0, 27.0, 64.0]);
        assert_eq!((n, rho), (4, Some(1.0)));
        // ranks x = 1,2,3,4,5 and y = 2,1,4,3,5: sum d^2 = 4, rho = 1 - 6*4/(5*24) = 0.8
        let (_, rho) = spearman(
            &[1.0, 2.0, 3.0, 4.0, 5.0, f64::NAN],
            &[2.0, 1.0, 4.0, 3.0, 5.0, 1.0],
        );
        assert!((rho.unwrap() - 0.8).abs() < 1e-12);
        assert_eq!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).1, None);
    }

    #[test]
    fn standardised_betas_recover_a_linear_model() {
        // y = 2 a - b exactly, a and b uncorrelated with equal spread
        let a = vec![1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0];
        let b = vec![1.0, 1.0, -1.0, -1.0, 1.0, 1.0, -1.0, -1.0];
        let y: Vec<f64> = a.iter().zip(&b).map(|(a, b)| 2.0 * a - b).collect();
        let constant = vec![3.0; 8];
        let betas = standardised_betas(&[a, b, constant], &y).unwrap();
        // sd(y) = sqrt(5): betas 2/sqrt(5) and -1/sqrt(5)
        let s5 = 5f64.sqrt();
        assert!((betas[0].unwrap() - 2.0 / s5).abs() < 1e-5, "{betas:?}");
        assert!((betas[1].unwrap() + 1.0 / s5).abs() < 1e-5);
        assert_eq!(betas[2], None);
    }

    #[test]
    fn drivers_join_outcomes_to_features_by_user() {
        let features = df!(
            USER_ID => ["a", "b", "c", "d", "e"],
            "searches" => [5.0, 4.0, 3.0, 2.0, 1.0],
            "recency_days" => [1.0, 2.0, 3.0, 4.0, 5.0],
            "top_category" => ["x", "y", "x", "y", "x"],
        )
        .unwrap();
        let survey =
            df!(USER_ID => ["e", "d", "c", "b", "a", "z"], "score" => [9u32, 8, 6, 3, 1, 10])
                .unwrap();
        let outcome = Outcome {
            target: "nps_score",
            table: &survey,
            column: "score",
            exclude: &["recency_days"],
            features: None,
        };
        let table = drivers(&features, &[outcome]).unwrap();
        assert_eq!(table.height(), 1);
        let rho = table
            .column("spearman")
            .unwrap()
            .f64()
            .unwrap()
            .get(0)
            .unwrap();
        assert!((rho + 1.0).abs() < 1e-12, "{rho}");
        assert_eq!(
            table.column("users").unwrap().u64().unwrap().get(0),
            Some(5)
        );
    }

    #[test]
    fn beyond_the_cap_the_drivers_are_every_kth_users() {
        // Ids in reverse order of the rows and an outcome for every other user but
        // the last: the sample is taken of the users with both, in id order.
        let n = 2 * MAX_USERS + 500;
        let ids: Vec<String> = (0..n).rev().map(|i| format!("u{i:07}")).collect();
        let x: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1000) as f64).collect();
        let z: Vec<f64> = (0..n).map(|i| ((i * 104_729) % 613) as f64).collect();
        let features = df!(USER_ID => &ids, "x" => &x, "z" => &z).unwrap();
        let answered: Vec<usize> = (0..n).filter(|i| i % 2 == 0 && *i != 0).collect();
        let outcome_ids: Vec<&str> = answered.iter().map(|&i| ids[i].as_str()).collect();
        let y: Vec<f64> = answered
            .iter()
            .map(|&i| x[i] * 0.5 - z[i] + (i % 11) as f64)
            .collect();
        let outcomes = df!(USER_ID => &outcome_ids, "y" => &y).unwrap();
        let outcome = |table| Outcome {
            target: "retained",
            table,
            column: "y",
            exclude: &[],
            features: None,
        };
        let table = drivers(&features, &[outcome(&outcomes)]).unwrap();
        // Every k-th of the users with both, sorted by id, by hand.
        let mut both: Vec<usize> = answered.clone();
        both.sort_by(|&a, &b| ids[a].cmp(&ids[b]));
        let stride = both.len().div_ceil(MAX_USERS);
        assert!(stride > 1);
        let kept: Vec<usize> = both.into_iter().step_by(stride).collect();
        let pick = |v: &[f64]| kept.iter().map(|&i| v[i]).collect::<Vec<_>>();
        let few = df!(
            USER_ID => kept.iter().map(|&i| ids[i].as_str()).collect::<Vec<_>>(),
            "x" => pick(&x),
            "z" => pick(&z),
        )
        .unwrap();
        let few_outcomes = df!(
            USER_ID => kept.iter().map(|&i| ids[i].as_str()).collect::<Vec<_>>(),
            "y" => kept.iter().map(|&i| x[i] * 0.5 - z[i] + (i % 11) as f64).collect::<Vec<_>>(),
        )
        .unwrap();
        let expected = drivers(&few, &[outcome(&few_outcomes)]).unwrap();
        assert_eq!(table.height(), 2);
        assert_eq!(
            table.column("users").unwrap().u64().unwrap().get(0),
            Some(kept.len() as u64)
        );
        assert!(table.equals_missing(&expected), "{table}\n{expected}");
    }
}
