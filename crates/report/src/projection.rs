//! The users' feature space as the clustering saw it: per persona z-scores for the
//! profile heat map and a 2-D PCA projection of a seeded sample of users.
//!
//! Each feature is transformed and standardised over all users by the profile stage's
//! own definition, [`Standardiser`] (signed `ln(1 + |x|)` for the features the run's
//! model logged, missing values set to the median, then mean and population standard
//! deviation). A persona's z-score on a feature is the mean standardised value of its
//! users, which is the persona's centroid in the clustering space and the number its
//! `distinguishing` text quotes.

use linfa::DatasetBase;
use linfa::traits::Fit;
use linfa_reduction::Pca;
use ndarray::Array2;
use polars::prelude::DataFrame;
use userlens_model::stats::{Standardiser, sample_rows};

use crate::Result;
use crate::frame;

/// Table name used in error messages.
const TABLE: &str = "user_personas";

/// Users' features standardised, aggregated per persona, and sampled for plotting.
#[derive(Debug, Clone)]
pub(crate) struct Space {
    /// Features kept (numeric, present, not constant), in input order.
    pub features: Vec<String>,
    /// Whether each kept feature was log-transformed.
    pub logged: Vec<bool>,
    /// Requested features left out: constant or entirely missing.
    pub skipped: Vec<String>,
    /// Per persona (in persona order), per kept feature: mean z-score; `None` for a
    /// persona without users.
    pub persona_z: Vec<Option<Vec<f64>>>,
    /// Users per persona found in the assignments.
    pub persona_users: Vec<usize>,
    /// Users in the assignments.
    pub users: usize,
    /// Standardised features of the sampled users, `sample x features`.
    pub sample_z: Array2<f64>,
    /// Persona index of each sampled user (`None`: persona not in the personas table).
    pub sample_persona: Vec<Option<usize>>,
}

/// Builds the standardised space of `features` (those absent or not numeric in
/// `assignments` are skipped) for the personas `persona_ids`.
pub(crate) fn build(
    assignments: &DataFrame,
    persona_ids: &[i64],
    features: &[String],
    is_logged: &dyn Fn(&str) -> bool,
    seed: u64,
    max_points: usize,
) -> Result<Space> {
    let assigned = frame::i64s(assignments, TABLE, userlens_model::columns::PERSONA_ID)?;
    let n = assigned.len();
    let persona_of: Vec<Option<usize>> = assigned
        .iter()
        .map(|id| id.and_then(|id| persona_ids.iter().position(|&p| p == id)))
        .collect();
    let mut persona_users = vec![0usize; persona_ids.len()];
    for p in persona_of.iter().flatten() {
        persona_users[*p] += 1;
    }
    let sample = sample_rows(n, max_points, seed);
    let numeric = frame::numeric_columns(assignments);

    let mut kept = Vec::new();
    let mut logged = Vec::new();
    let mut skipped = Vec::new();
    let mut sums: Vec<Vec<f64>> = vec![Vec::new(); persona_ids.len()];
    let mut sample_columns: Vec<Vec<f64>> = Vec::new();
    for name in features {
        if !numeric.contains(name) {
            skipped.push(name.clone());
            continue;
        }
        let log = is_logged(name);
        // Missing (and non-finite) values are NaN, as the profile stage marks them.
        let values: Vec<f64> = frame::f64s(assignments, TABLE, name)?
            .into_iter()
            .map(|v| v.map_or(f64::NAN, |x| Standardiser::transform(x, log)))
            .collect();
        let Some(standardiser) = Standardiser::fit(values.iter().copied()) else {
            skipped.push(name.clone());
            continue;
        };
        let z: Vec<f64> = values.iter().map(|&t| standardiser.z(t)).collect();
        let mut per_persona = vec![0.0; persona_ids.len()];
        for (value, p) in z.iter().zip(&persona_of) {
            if let Some(p) = p {
                per_persona[*p] += value;
            }
        }
        for (sum, total) in sums.iter_mut().zip(per_persona) {
            sum.push(total);
        }
        sample_columns.push(sample.iter().map(|&i| z[i]).collect());
        kept.push(name.clone());
        logged.push(log);
    }

    let persona_z = sums
        .into_iter()
        .zip(&persona_users)
        .map(|(sum, &count)| {
            (count > 0).then(|| sum.into_iter().map(|s| s / count as f64).collect())
        })
        .collect();
    let d = kept.len();
    let sample_z = Array2::from_shape_fn((sample.len(), d), |(i, j)| sample_columns[j][i]);
    Ok(Space {
        features: kept,
        logged,
        skipped,
        persona_z,
        persona_users,
        users: n,
        sample_z,
        sample_persona: sample.iter().map(|&i| persona_of[i]).collect(),
    })
}

/// Users and persona centroids on the first two principal components.
#[derive(Debug, Clone)]
pub(crate) struct Projection {
    /// Coordinates of the sampled users, in sample order.
    pub points: Vec<(f64, f64)>,
    /// Coordinates of each persona's mean (its centroid), in persona order.
    pub centroids: Vec<Option<(f64, f64)>>,
    /// Share of the sample's variance along each component.
    pub explained: [f64; 2],
    /// Per component: features and loadings, strongest first.
    pub loadings: [Vec<(String, f64)>; 2],
}

/// Fits a 2-component PCA (linfa-reduction) on the sampled users and projects them and
/// the persona centroids. The error is a sentence for the page saying why there is no
/// projection.
pub(crate) fn project(space: &Space) -> std::result::Result<Projection, String> {
    let (n, d) = space.sample_z.dim();
    if d < 2 {
        return Err(format!(
            "a projection needs at least two varying features; this run has {d}"
        ));
    }
    if n < 3 {
        return Err(format!(
            "a projection needs at least three users; this run has {n}"
        ));
    }
    let mean = space
        .sample_z
        .mean_axis(ndarray::Axis(0))
        .unwrap_or_default();
    let centred = &space.sample_z - &mean;
    let total: f64 = centred.iter().map(|x| x * x).sum();
    if !(total.is_finite() && total > 0.0) {
        return Err("the sampled users do not vary".to_string());
    }
    let dataset = DatasetBase::from(space.sample_z.clone());
    let pca = Pca::params(2)
        .fit(&dataset)
        .map_err(|e| format!("principal component analysis failed: {e}"))?;
    let mut components = pca.components().to_owned();
    if components.dim() != (2, d) || components.iter().any(|v| !v.is_finite()) {
        return Err("principal component analysis did not converge".to_string());
    }
    // A component's sign is arbitrary; fix it so the strongest loading is positive and
    // the picture does not flip between runs.
    for mut row in components.rows_mut() {
        let strongest = row
            .iter()
            .copied()
            .max_by(|a, b| a.abs().total_cmp(&b.abs()))
            .unwrap_or(1.0);
        if strongest < 0.0 {
            row.mapv_inplace(|v| -v);
        }
    }
    let scores = centred.dot(&components.t());
    let points = scores.rows().into_iter().map(|r| (r[0], r[1])).collect();
    let mut explained = [0.0; 2];
    for (c, share) in explained.iter_mut().enumerate() {
        *share = scores.column(c).iter().map(|x| x * x).sum::<f64>() / total;
    }
    let centroids = space
        .persona_z
        .iter()
        .map(|z| {
            z.as_ref().map(|z| {
                let coord = |c: usize| {
                    (0..d)
                        .map(|j| (z[j] - mean[j]) * components[[c, j]])
                        .sum::<f64>()
                };
                (coord(0), coord(1))
            })
        })
        .collect();
    let loadings = [0, 1].map(|c| {
        let mut list: Vec<(String, f64)> = space
            .features
            .iter()
            .enumerate()
            .map(|(j, name)| (name.clone(), components[[c, j]]))
            .collect();
        list.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then_with(|| a.0.cmp(&b.0)));
        list
    });
    Ok(Projection {
        points,
        centroids,
        explained,
        loadings,
    })
}

#[cfg(test)]
mod tests {
    use polars::prelude::*;

    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn persona_z_scores_are_standardised_means_with_logs_and_medians() {
        let df = df!(
            "persona_id" => [1i64, 1, 2, 2],
            "monetary" => [Some(0.0), Some(0.0), Some(99.0), None],
            "flat" => [1.0, 1.0, 1.0, 1.0],
        )
        .unwrap();
        let space = build(
            &df,
            &[1, 2],
            &names(&["monetary", "flat", "absent"]),
            &|n| n == "monetary",
            1,
            10,
        )
        .unwrap();
        assert_eq!(space.features, ["monetary"]);
        assert_eq!(space.skipped, ["flat", "absent"]);
        // ln(100) for the buyer, the median (0) for the missing value: mean ln(100)/4.
        let t = 100f64.ln();
        let mean = t / 4.0;
        let sd = ((3.0 * mean * mean + (t - mean).powi(2)) / 4.0).sqrt();
        let z = |x: f64| (x - mean) / sd;
        let got = space.persona_z[0].as_ref().unwrap()[0];
        assert!((got - z(0.0)).abs() < 1e-12);
        let got = space.persona_z[1].as_ref().unwrap()[0];
        assert!((got - (z(t) + z(0.0)) / 2.0).abs() < 1e-12);
        assert_eq!(space.persona_users, [2, 2]);
    }

    #[test]
    fn projects_separated_groups_apart_and_explains_the_variance() {
        let n = 60;
        let persona: Vec<i64> = (0..n).map(|i| 1 + (i % 2) as i64).collect();
        let a: Vec<f64> = (0..n)
            .map(|i| if i % 2 == 0 { 0.0 } else { 10.0 } + (i % 7) as f64 * 0.1)
            .collect();
        let b: Vec<f64> = (0..n).map(|i| (i % 5) as f64).collect();
        let c: Vec<f64> = a.iter().map(|x| x * 2.0 + 1.0).collect();
        let df = df!("persona_id" => persona, "a" => a, "b" => b, "c" => c).unwrap();
        let space = build(&df, &[1, 2], &names(&["a", "b", "c"]), &|_| false, 3, 1000).unwrap();
        let p = project(&space).unwrap();
        assert_eq!(p.points.len(), n);
        let (c1, c2) = (p.centroids[0].unwrap(), p.centroids[1].unwrap());
        assert!((c1.0 - c2.0).abs() > 2.0, "{c1:?} {c2:?}");
        assert!(p.explained[0] > 0.6 && p.explained[0] + p.explained[1] <= 1.0 + 1e-9);
        assert_eq!(p.loadings[0].len(), 3);
        assert!(p.loadings[0][0].1 > 0.0);
    }

    /// A projection of finite coordinates and shares, or a sentence saying why not.
    fn assert_finite_or_said(projected: std::result::Result<Projection, String>) {
        match projected {
            Ok(p) => {
                let centroids = p.centroids.iter().flatten();
                let mut coordinates = p.points.iter().chain(centroids);
                assert!(coordinates.all(|(x, y)| x.is_finite() && y.is_finite()));
                assert!(p.explained.iter().all(|e| (0.0..=1.0 + 1e-9).contains(e)));
            }
            Err(why) => assert!(!why.is_empty()),
        }
    }

    #[test]
    fn degenerate_inputs_give_a_reason_instead_of_a_projection() {
        let one = df!("persona_id" => [1i64, 1, 2], "a" => [1.0, 2.0, 3.0]).unwrap();
        let space = build(&one, &[1, 2], &names(&["a"]), &|_| false, 3, 10).unwrap();
        assert!(
            project(&space)
                .unwrap_err()
                .contains("two varying features")
        );

        let two = df!("persona_id" => [1i64, 2], "a" => [1.0, 2.0], "b" => [0.0, 5.0]).unwrap();
        let space = build(&two, &[1, 2], &names(&["a", "b"]), &|_| false, 3, 10).unwrap();
        assert!(project(&space).unwrap_err().contains("three users"));

        // Perfectly correlated features: rank one, still projected without panicking.
        let rank_one = df!(
            "persona_id" => [1i64, 1, 2, 2],
            "a" => [1.0, 2.0, 3.0, 4.0],
            "b" => [2.0, 4.0, 6.0, 8.0],
        )
        .unwrap();
        let space = build(&rank_one, &[1, 2], &names(&["a", "b"]), &|_| false, 3, 10).unwrap();
        assert_finite_or_said(project(&space));

        // Low rank, fewer users than features, duplicated users.
        for (n, d, rank) in [(50usize, 10usize, 2usize), (3, 10, 3), (40, 6, 1)] {
            let mut columns = vec![Column::new("persona_id".into(), vec![1i64; n])];
            for j in 0..d {
                let values: Vec<f64> = (0..n)
                    .map(|i| ((i % rank.max(1)) as f64 + 1.0) * (j % rank.max(1) + 1) as f64)
                    .map(|v| v + (i64::from(n == 3) as f64) * (j as f64))
                    .collect();
                columns.push(Column::new(format!("f{j}").into(), values));
            }
            let df = DataFrame::new(n, columns).unwrap();
            let features: Vec<String> = (0..d).map(|j| format!("f{j}")).collect();
            let space = build(&df, &[1], &features, &|_| false, 3, 10).unwrap();
            assert_finite_or_said(project(&space));
        }

        let empty = df!("persona_id" => Vec::<i64>::new(), "a" => Vec::<f64>::new()).unwrap();
        let space = build(&empty, &[1], &names(&["a"]), &|_| false, 3, 10).unwrap();
        assert!(space.persona_z[0].is_none());
        assert!(project(&space).is_err());
    }
}
