//! Turns per-user features into personas: clusters users on their numeric features
//! and names each cluster in words.
//!
//! [`profile`] takes the features table (one row per `user_id`), log-transforms
//! heavy-tailed counts and money, imputes missing values with the median, standardises
//! every feature, and clusters users with k-means (greedy k-means++ seeding, Lloyd
//! iterations) or a Gaussian mixture. With `k = "auto"` every k in `k_min..=k_max` is
//! tried and the best silhouette wins. Personas are numbered by size and labelled from
//! the features on which their centroid stands out, e.g. "high spend · frequent buyer".
//!
//! The result is a [`Profile`]: per-user `assignments`, a `personas` table, the
//! `k_selection` table, and a serialisable [`PersonaModel`] that holds everything needed
//! to place users again on a later run. Everything is deterministic: the same table and
//! seed give bit-identical output on any number of threads.
//!
//! ```
//! use polars::prelude::*;
//! use userlens_profile::{KChoice, ProfileParams, profile};
//!
//! let features = df!(
//!     "user_id" => ["a", "b", "c", "d", "e", "f"],
//!     "monetary" => [10.0, 12.0, 11.0, 900.0, 950.0, 1000.0],
//!     "frequency" => [1i64, 1, 2, 20, 25, 30],
//! )?;
//! let params = ProfileParams { k: KChoice::Fixed(2), ..ProfileParams::default() }.check()?;
//! let result = profile(&features, &params, 42)?;
//! assert_eq!(result.model.k, 2);
//! assert_eq!(result.personas.height(), 2);
//! assert_eq!(result.assignments.column("persona_id")?.n_unique()?, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ari;
mod error;
mod gmm;
mod kmeans;
mod label;
mod matrix;
mod metrics;
mod params;
mod prepare;
pub mod stability;
mod stable;
mod tables;

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use userlens_model::columns::USER_ID;

pub use ari::adjusted_rand_index;
pub use error::{Error, Result};
pub use params::{Algorithm, CheckedProfileParams, KChoice, ProfileParams};
pub use stability::{MAX_MATCH_DISTANCE, Stability, StabilitySummary, stabilise};
pub use stable::{Matching, apply_matching, match_personas};
pub use tables::enrich_personas;

use crate::error::WhileDoing;
use crate::kmeans::Fit;
use crate::matrix::{Matrix, lex_cmp, sq_dist};

/// The personas of one run.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Per user: `user_id`, `persona_id` (u32), `label`, `distance` (Euclidean, scaled
    /// space, to the persona centroid), then the raw clustering features.
    pub assignments: DataFrame,
    /// Per persona: `persona_id`, `label`, `users`, `share`, `mean_<column>` for every
    /// numeric input column, `top_categories` / `top_queries` / `common_<column>` for
    /// text columns, and `distinguishing`.
    pub personas: DataFrame,
    /// Per k tried: `k`, `inertia`, `silhouette`, `calinski_harabasz`,
    /// `davies_bouldin`, `chosen`.
    pub k_selection: DataFrame,
    /// The fitted model.
    pub model: PersonaModel,
}

/// Everything needed to re-assign users or match personas on a later run.
///
/// A raw value `x` of feature `features[j]` maps to the scaled space as
/// `(t(x) - center[j]) / scale[j]`, where `t` is `sign(x) ln(1 + |x|)` for features in
/// `log_transformed` and the identity otherwise, and a missing `t(x)` is `impute[j]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonaModel {
    /// Number of personas.
    pub k: usize,
    /// Algorithm that produced the centroids.
    pub algorithm: Algorithm,
    /// Features clustered on, in centroid coordinate order.
    pub features: Vec<String>,
    /// The subset of `features` that is log-transformed.
    pub log_transformed: Vec<String>,
    /// Per feature: mean in the transformed space.
    pub center: Vec<f64>,
    /// Per feature: population standard deviation in the transformed space.
    pub scale: Vec<f64>,
    /// Per feature: median substituted for missing values, in the transformed space.
    pub impute: Vec<f64>,
    /// `k x d` centroids in the scaled space, ordered by persona id.
    pub centroids: Vec<Vec<f64>>,
    /// Persona ids, `1..=k`.
    pub persona_ids: Vec<u32>,
    /// Persona labels, by persona id.
    pub labels: Vec<String>,
    /// Sum of squared distances of users to their centroid, in the scaled space.
    pub inertia: f64,
    /// Mean silhouette on the sample, if defined.
    pub silhouette: Option<f64>,
    /// Calinski-Harabasz index, if defined.
    pub calinski_harabasz: Option<f64>,
    /// Davies-Bouldin index, if defined.
    pub davies_bouldin: Option<f64>,
    /// Candidate features left out because they do not vary (or are all missing).
    pub dropped_constant: Vec<String>,
}

/// Seed stream of the silhouette sample; k-means streams use k itself.
const SAMPLE_STREAM: u64 = u64::MAX;
/// Stream of the k-means fit sample.
const FIT_SAMPLE_STREAM: u64 = u64::MAX - 1;

/// An independent seed for `stream`, mixed with SplitMix64.
fn derive_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed.wrapping_add(stream.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One clustering tried during k selection.
struct Trial {
    /// k asked for.
    k: usize,
    /// Result with empty clusters removed.
    fit: Fit,
    /// Clusters in `fit`.
    clusters: usize,
    silhouette: Option<f64>,
    calinski_harabasz: Option<f64>,
    davies_bouldin: Option<f64>,
}

/// Sorts by `user_id` after checking it is present, text, non-null and unique.
fn sorted_by_user(features: &DataFrame) -> Result<(DataFrame, Vec<String>)> {
    let column = features.column(USER_ID).map_err(|_| Error::MissingUserId)?;
    if column.dtype() != &DataType::String {
        return Err(Error::UserIdNotText {
            dtype: column.dtype().to_string(),
        });
    }
    let ids = column.str().while_doing(|| "read `user_id`".to_string())?;
    if let Some(row) = ids.iter().position(|v| v.is_none()) {
        return Err(Error::NullUserId { row: row + 1 });
    }
    let sorted = features
        .sort(
            [USER_ID],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .while_doing(|| "sort the features table by `user_id`".to_string())?;
    let ids: Vec<String> = sorted
        .column(USER_ID)
        .and_then(|c| c.str())
        .while_doing(|| "read `user_id`".to_string())?
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect();
    if let Some(pair) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::DuplicateUser {
            user: pair[0].clone(),
        });
    }
    Ok((sorted, ids))
}

/// Features to cluster on: the listed ones (checked) or every numeric column, minus `exclude`.
fn candidate_features(
    df: &DataFrame,
    params: &ProfileParams,
    numeric: &[String],
) -> Result<Vec<String>> {
    for name in &params.exclude {
        if df.get_column_index(name).is_none() {
            return Err(Error::UnknownExclude { name: name.clone() });
        }
    }
    let chosen = match &params.features {
        None => numeric.to_vec(),
        Some(list) => {
            for name in list {
                let column = df
                    .column(name)
                    .map_err(|_| Error::UnknownFeature { name: name.clone() })?;
                if !column.dtype().is_primitive_numeric() {
                    return Err(Error::NotNumeric {
                        name: name.clone(),
                        dtype: column.dtype().to_string(),
                    });
                }
            }
            list.clone()
        }
    };
    Ok(chosen
        .into_iter()
        .filter(|name| !params.exclude.contains(name))
        .collect())
}

/// Drops clusters without members and renumbers the rest in order.
fn compact(fit: Fit, k: usize, d: usize) -> (Fit, usize) {
    let mut sizes = vec![0u64; k];
    for &l in &fit.labels {
        sizes[l as usize] += 1;
    }
    if sizes.iter().all(|&s| s > 0) {
        return (fit, k);
    }
    let mut new_index = vec![0u32; k];
    let mut centroids = Vec::new();
    let mut kept = 0u32;
    for c in 0..k {
        if sizes[c] > 0 {
            new_index[c] = kept;
            kept += 1;
            centroids.extend_from_slice(&fit.centroids[c * d..(c + 1) * d]);
        }
    }
    let labels = fit.labels.iter().map(|&l| new_index[l as usize]).collect();
    let fit = Fit {
        labels,
        centroids,
        inertia: fit.inertia,
    };
    (fit, kept as usize)
}

/// Clusters `x` into `k` groups with the configured algorithm.
fn cluster(
    x: &Matrix,
    k: usize,
    params: &ProfileParams,
    tol: f64,
    seed: u64,
) -> Result<(Fit, usize)> {
    if k <= 1 {
        return Ok((kmeans::single_cluster(x), 1));
    }
    let seed = derive_seed(seed, k as u64);
    let fit = match params.algorithm {
        Algorithm::KMeans => {
            let config = kmeans::KMeansConfig {
                k,
                n_init: params.n_init,
                max_iter: params.max_iter,
                tol,
            };
            if params.fit_sample > 0 && x.n() > params.fit_sample {
                let sample = metrics::sample_rows(
                    x.n(),
                    params.fit_sample,
                    derive_seed(seed, FIT_SAMPLE_STREAM),
                );
                kmeans::fit_on_sample(x, &sample, &config, seed)
            } else {
                kmeans::fit(x, &config, seed)
            }
        }
        Algorithm::Gmm => gmm::fit(
            x,
            &gmm::GmmConfig {
                k,
                n_init: params.n_init,
                max_iter: params.max_iter,
                tol: params.tolerance,
            },
            seed,
        )?,
    };
    Ok(compact(fit, k, x.d()))
}

/// The k-means that [`profile`] runs for each k, on its own: `rows` is an `n x d`
/// row-major matrix (already standardised, as `profile` standardises its features).
/// Greedy k-means++ restarts run on a sample of `fit_sample` rows when there are
/// more, then Lloyd iterations on every row; the tolerance is relative to the mean
/// column variance, as scikit-learn's. Returns each row's cluster (clusters that
/// ended empty are dropped and the rest renumbered) and the inertia (the sum of
/// squared distances to the centres). This is the step to set against another
/// k-means; `profile` adds the preparation, silhouette and tables around it.
pub fn kmeans(
    rows: Vec<f64>,
    d: usize,
    k: usize,
    params: &CheckedProfileParams,
    seed: u64,
) -> Result<(Vec<u32>, f64)> {
    let n = rows.len().checked_div(d).unwrap_or(0);
    if n == 0 || n * d != rows.len() {
        return Err(Error::InvalidParams(format!(
            "k-means needs a non-empty {d}-column matrix, got {} values",
            rows.len()
        )));
    }
    let x = Matrix::new(n, d, rows);
    let params = params.params();
    let tol = params.tolerance * x.mean_variance();
    let (fit, _) = cluster(&x, k.min(n), params, tol, seed)?;
    Ok((fit.labels, fit.inertia))
}

/// Clusters for every k to try, scores them, and returns them with the index of the kept one.
fn search(x: &Matrix, params: &ProfileParams, seed: u64) -> Result<(Vec<Trial>, usize)> {
    let n = x.n();
    let started = std::time::Instant::now();
    let distinct = x.distinct_rows().max(1);
    tracing::debug!(
        "personas: distinct rows counted in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let ks: Vec<usize> = match params.k {
        KChoice::Auto => {
            // silhouette needs at most n - 1 clusters
            let hi = params.k_max.min(n.saturating_sub(1)).min(distinct).max(1);
            (params.k_min.min(hi)..=hi).collect()
        }
        KChoice::Fixed(k) => vec![k.min(distinct).max(1)],
    };
    // relative tolerance, as scikit-learn: a fraction of the mean feature variance
    let tol = params.tolerance * x.mean_variance();
    let mut trials = Vec::with_capacity(ks.len());
    for k in ks {
        let started = std::time::Instant::now();
        let (fit, clusters) = cluster(x, k, params, tol, seed)?;
        tracing::debug!(
            "personas: k = {k} fitted in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        trials.push(Trial {
            k,
            fit,
            clusters,
            silhouette: None,
            calinski_harabasz: None,
            davies_bouldin: None,
        });
    }
    let scored: Vec<usize> = (0..trials.len())
        .filter(|&t| trials[t].clusters >= 2 && trials[t].clusters < n)
        .collect();
    let sample = metrics::sample_rows(
        n,
        params.silhouette_sample,
        derive_seed(seed, SAMPLE_STREAM),
    );
    let labelings: Vec<(&[u32], usize)> = scored
        .iter()
        .map(|&t| (trials[t].fit.labels.as_slice(), trials[t].clusters))
        .collect();
    let started = std::time::Instant::now();
    let silhouettes = metrics::silhouettes(x, &sample, &labelings);
    for (&t, silhouette) in scored.iter().zip(silhouettes) {
        let trial = &mut trials[t];
        trial.silhouette = silhouette;
        trial.calinski_harabasz = metrics::calinski_harabasz(x, &trial.fit.labels, trial.clusters);
        trial.davies_bouldin = metrics::davies_bouldin(x, &trial.fit.labels, trial.clusters);
    }
    tracing::debug!(
        "personas: silhouettes and indices in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    // best silhouette; ties and undefined scores go to the smaller k (trials are in k order)
    let mut chosen = 0;
    for (t, trial) in trials.iter().enumerate() {
        if let Some(s) = trial.silhouette
            && trials[chosen].silhouette.is_none_or(|best| s > best)
        {
            chosen = t;
        }
    }
    Ok((trials, chosen))
}

/// Builds the personas of `features` (one row per `user_id`) with checked `params`.
///
/// Numeric columns (integers or floats) are clustering candidates and text columns are
/// summarised; other types are ignored. Nulls, NaN and infinities count as missing.
/// With no varying feature, or fewer than two users, there is a single persona,
/// "all users". The same table, parameters and `seed` always give bit-identical results.
pub fn profile(features: &DataFrame, params: &CheckedProfileParams, seed: u64) -> Result<Profile> {
    let params = params.params();
    let (df, user_ids) = sorted_by_user(features)?;
    let n = df.height();
    if n == 0 {
        return Err(Error::NoUsers);
    }
    let mut numeric = Vec::new();
    let mut text = Vec::new();
    for column in df.columns() {
        let name = column.name().to_string();
        if name == USER_ID {
            continue;
        }
        if column.dtype().is_primitive_numeric() {
            numeric.push(name);
        } else if column.dtype() == &DataType::String {
            text.push(name);
        }
    }
    let started = std::time::Instant::now();
    let candidates = candidate_features(&df, params, &numeric)?;
    let prepared = prepare::prepare(&df, &candidates)?;
    tracing::debug!(
        "personas: features chosen and standardised in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let x = &prepared.matrix;
    let d = x.d();

    let (trials, chosen) = if d == 0 || n < 2 {
        let fit = kmeans::single_cluster(x);
        let trial = Trial {
            k: 1,
            fit,
            clusters: 1,
            silhouette: None,
            calinski_harabasz: None,
            davies_bouldin: None,
        };
        (vec![trial], 0)
    } else {
        search(x, params, seed)?
    };
    let k_rows: Vec<tables::KRow> = trials
        .iter()
        .enumerate()
        .map(|(t, trial)| tables::KRow {
            k: trial.k,
            inertia: trial.fit.inertia,
            silhouette: trial.silhouette,
            calinski_harabasz: trial.calinski_harabasz,
            davies_bouldin: trial.davies_bouldin,
            chosen: t == chosen,
        })
        .collect();
    let k_selection = tables::k_selection(&k_rows)?;
    let Some(trial) = trials.into_iter().nth(chosen) else {
        return Err(Error::NoUsers);
    };
    let k = trial.clusters;

    // persona ids by size, then by centroid coordinates
    let mut sizes = vec![0u64; k];
    for &l in &trial.fit.labels {
        sizes[l as usize] += 1;
    }
    let centroid = |c: usize| &trial.fit.centroids[c * d..(c + 1) * d];
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| {
        sizes[b]
            .cmp(&sizes[a])
            .then_with(|| lex_cmp(centroid(a), centroid(b)))
            .then(a.cmp(&b))
    });
    let mut rank = vec![0u32; k];
    for (r, &c) in order.iter().enumerate() {
        rank[c] = r as u32;
    }
    let persona_of: Vec<u32> = trial.fit.labels.iter().map(|&l| rank[l as usize]).collect();
    let centroids: Vec<Vec<f64>> = order.iter().map(|&c| centroid(c).to_vec()).collect();
    let persona_sizes: Vec<u64> = order.iter().map(|&c| sizes[c]).collect();
    let persona_ids: Vec<u32> = (1..=k as u32).collect();

    let labels = if k == 1 {
        vec![label::ALL_USERS.to_string()]
    } else {
        let terms: Vec<Vec<String>> = centroids
            .iter()
            .map(|z| label::label_terms(&prepared.features, z))
            .collect();
        label::unique_labels(&terms, params.label_terms, &persona_ids)
    };
    let distinguishing: Vec<String> = centroids
        .iter()
        .map(|z| label::distinguishing(&prepared.features, z))
        .collect();
    let distances: Vec<f64> = (0..n)
        .map(|i| sq_dist(x.row(i), &centroids[persona_of[i] as usize]).sqrt())
        .collect();

    let assignments = tables::assignments(
        &df,
        user_ids,
        &persona_of,
        &labels,
        distances,
        &prepared.features,
    )?;
    let personas = tables::personas(
        &df,
        tables::PersonaSummary {
            persona_of: &persona_of,
            labels: &labels,
            sizes: &persona_sizes,
            distinguishing,
            numeric: &numeric,
            text: &text,
        },
    )?;
    let model = PersonaModel {
        k,
        algorithm: params.algorithm,
        features: prepared.features,
        log_transformed: prepared.log_transformed,
        center: prepared.center,
        scale: prepared.scale,
        impute: prepared.impute,
        centroids,
        persona_ids,
        labels,
        inertia: trial.fit.inertia,
        silhouette: trial.silhouette,
        calinski_harabasz: trial.calinski_harabasz,
        davies_bouldin: trial.davies_bouldin,
        dropped_constant: prepared.dropped_constant,
    };
    Ok(Profile {
        assignments,
        personas,
        k_selection,
        model,
    })
}

#[cfg(test)]
mod tests {
    use linfa::DatasetBase;
    use linfa::traits::Fit as _;
    use linfa_clustering::KMeans;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::{Xoshiro256Plus, Xoshiro256PlusPlus};

    use super::*;

    const FEATURES: [&str; 6] = [
        "recency_days",
        "tenure_days",
        "view_to_cart",
        "night_share",
        "mean_rating",
        "search_share",
    ];
    const BLOB_SIZES: [usize; 5] = [200, 150, 100, 90, 60];

    fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
        // Box-Muller; 1 - u keeps the logarithm finite
        let u: f64 = 1.0 - rng.r#gen::<f64>();
        let v: f64 = rng.r#gen();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// 600 users in 5 Gaussian blobs (sd 1) centred 8 apart on the first 5 of 6 features.
    fn blobs(seed: u64) -> (DataFrame, Vec<u32>) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut truth = Vec::new();
        let mut columns: Vec<Vec<f64>> = vec![Vec::new(); FEATURES.len()];
        for (blob, &size) in BLOB_SIZES.iter().enumerate() {
            for _ in 0..size {
                truth.push(blob as u32);
                for (j, column) in columns.iter_mut().enumerate() {
                    let centre = if j == blob { 8.0 } else { 0.0 };
                    column.push(centre + normal(&mut rng));
                }
            }
        }
        let ids: Vec<String> = (0..truth.len()).map(|i| format!("u{i:04}")).collect();
        let mut frame = vec![Column::new(USER_ID.into(), ids)];
        for (name, values) in FEATURES.iter().zip(columns) {
            frame.push(Column::new((*name).into(), values));
        }
        (DataFrame::new(truth.len(), frame).unwrap(), truth)
    }

    fn checked(params: ProfileParams) -> CheckedProfileParams {
        params.check().unwrap()
    }

    fn fixed(k: usize) -> CheckedProfileParams {
        checked(ProfileParams {
            k: KChoice::Fixed(k),
            ..ProfileParams::default()
        })
    }

    fn persona_ids(profile: &Profile) -> Vec<u32> {
        let column = profile.assignments.column(PERSONA_ID_COL).unwrap();
        column.u32().unwrap().iter().map(|v| v.unwrap()).collect()
    }

    const PERSONA_ID_COL: &str = userlens_model::columns::PERSONA_ID;

    fn f64_values(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
        df.column(name).unwrap().f64().unwrap().iter().collect()
    }

    fn strings(df: &DataFrame, name: &str) -> Vec<Option<String>> {
        let column = df.column(name).unwrap();
        column
            .str()
            .unwrap()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    /// No NaN or infinity anywhere in the outputs, and labels are unique.
    fn assert_sane(profile: &Profile) {
        for df in [
            &profile.assignments,
            &profile.personas,
            &profile.k_selection,
        ] {
            for column in df.columns() {
                if column.dtype() == &DataType::Float64 {
                    let ca = column.f64().unwrap();
                    assert!(
                        ca.iter().flatten().all(f64::is_finite),
                        "non-finite value in `{}`",
                        column.name()
                    );
                }
            }
        }
        let model = &profile.model;
        let numbers = model
            .center
            .iter()
            .chain(&model.scale)
            .chain(&model.impute)
            .chain(model.centroids.iter().flatten())
            .chain([&model.inertia])
            .chain(model.silhouette.iter())
            .chain(model.calinski_harabasz.iter())
            .chain(model.davies_bouldin.iter());
        for v in numbers {
            assert!(v.is_finite());
        }
        let mut labels = model.labels.clone();
        labels.sort();
        labels.dedup();
        assert_eq!(
            labels.len(),
            model.k,
            "labels not unique: {:?}",
            model.labels
        );
        assert_eq!(profile.personas.height(), model.k);
        assert_eq!(model.centroids.len(), model.k);
        let users = profile.personas.column("users").unwrap().u32().unwrap();
        assert_eq!(
            users.iter().flatten().sum::<u32>() as usize,
            profile.assignments.height()
        );
    }

    #[test]
    fn recovers_blobs_and_picks_their_number() {
        let (df, truth) = blobs(11);
        let result = profile(&df, &checked(ProfileParams::default()), 3).unwrap();
        assert_sane(&result);
        assert_eq!(result.model.k, 5);
        let ari = adjusted_rand_index(&truth, &persona_ids(&result));
        assert!(ari >= 0.9, "ari {ari}");

        let ks = &result.k_selection;
        let tried: Vec<u32> = ks
            .column("k")
            .unwrap()
            .u32()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(tried, vec![3, 4, 5, 6, 7, 8]);
        let chosen: Vec<bool> = ks
            .column("chosen")
            .unwrap()
            .bool()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(chosen, vec![false, false, true, false, false, false]);
        assert!(f64_values(ks, "silhouette").iter().all(Option::is_some));

        // persona 1 is the largest blob, and sizes fall with the id
        let users: Vec<u32> = result
            .personas
            .column("users")
            .unwrap()
            .u32()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert!(users.windows(2).all(|w| w[0] >= w[1]), "{users:?}");
        assert!(users[0].abs_diff(200) <= 5);
        // the largest blob sits high on recency_days
        assert!(
            result.model.labels[0].starts_with("lapsed"),
            "{:?}",
            result.model.labels
        );
        assert_eq!(result.model.features, FEATURES.to_vec());
        assert!(result.model.log_transformed.is_empty());

        // distance is the Euclidean distance to the persona centroid in the scaled space
        let ids = persona_ids(&result);
        let distances = f64_values(&result.assignments, "distance");
        let model = &result.model;
        let raw: Vec<f64> = FEATURES
            .iter()
            .map(|f| f64_values(&result.assignments, f)[0].unwrap())
            .collect();
        let z: Vec<f64> = (0..FEATURES.len())
            .map(|j| (raw[j] - model.center[j]) / model.scale[j])
            .collect();
        let expected = sq_dist(&z, &model.centroids[ids[0] as usize - 1]).sqrt();
        assert!((distances[0].unwrap() - expected).abs() < 1e-9);
    }

    #[test]
    fn same_seed_gives_identical_bits_on_any_thread_count() {
        let (df, _) = blobs(5);
        let params = checked(ProfileParams {
            k_max: 6,
            ..ProfileParams::default()
        });
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| profile(&df, &params, 99).unwrap())
        };
        let a = run(1);
        let b = run(4);
        let bits = |p: &Profile| -> Vec<u64> {
            p.model
                .centroids
                .iter()
                .flatten()
                .chain(f64_values(&p.assignments, "distance").iter().flatten())
                .chain(f64_values(&p.k_selection, "inertia").iter().flatten())
                .chain(f64_values(&p.k_selection, "silhouette").iter().flatten())
                .map(|v| v.to_bits())
                .collect()
        };
        assert_eq!(bits(&a), bits(&b));
        assert_eq!(a.model, b.model);
        assert!(a.assignments.equals_missing(&b.assignments));
        assert!(a.personas.equals_missing(&b.personas));
        assert!(a.k_selection.equals_missing(&b.k_selection));
        assert_eq!(persona_ids(&a), persona_ids(&b));

        // row order of the input does not matter: users are sorted first
        let reversed = df.reverse();
        let c = profile(&reversed, &params, 99).unwrap();
        assert_eq!(bits(&a), bits(&c));
        assert_eq!(a.model, c.model);
    }

    #[test]
    fn a_fit_on_a_sample_matches_the_fit_on_everyone() {
        let (df, truth) = blobs(21);
        let inertia = |profile: &Profile| -> f64 {
            let column = profile.k_selection.column("inertia").unwrap();
            column.f64().unwrap().get(0).unwrap()
        };
        let everyone = profile(&df, &fixed(5), 3).unwrap();
        let sampled = profile(
            &df,
            &checked(ProfileParams {
                k: KChoice::Fixed(5),
                fit_sample: 120,
                ..ProfileParams::default()
            }),
            3,
        )
        .unwrap();
        assert_eq!(adjusted_rand_index(&truth, &persona_ids(&sampled)), 1.0);
        let (a, b) = (inertia(&sampled), inertia(&everyone));
        assert!((a - b).abs() <= 0.01 * b, "sample fit {a}, full fit {b}");
    }

    #[test]
    fn kmeans_is_no_worse_than_linfa() {
        let (df, _) = blobs(21);
        let names: Vec<String> = FEATURES.iter().map(|s| s.to_string()).collect();
        let x = prepare::prepare(&df, &names).unwrap().matrix;
        let records = ndarray::Array2::from_shape_vec((x.n(), x.d()), x.data().to_vec()).unwrap();
        let dataset = DatasetBase::from(records);
        let defaults = ProfileParams::default();
        // a single restart shows the seeding; the default 10 restarts what users get
        for (n_init, seed) in [(1, 0), (1, 1), (1, 2), (defaults.n_init, 1)] {
            let ours = kmeans::fit(
                &x,
                &kmeans::KMeansConfig {
                    k: 5,
                    n_init,
                    max_iter: defaults.max_iter,
                    tol: defaults.tolerance * x.mean_variance(),
                },
                seed,
            );
            let theirs = KMeans::params_with_rng(5, Xoshiro256Plus::seed_from_u64(seed))
                .n_runs(n_init)
                .tolerance(defaults.tolerance)
                .max_n_iterations(defaults.max_iter as u64)
                .fit(&dataset)
                .unwrap();
            // linfa's own inertia is measured before its last centroid update; recompute it
            let centroids = theirs.centroids();
            let linfa_inertia: f64 = (0..x.n())
                .map(|i| {
                    centroids
                        .rows()
                        .into_iter()
                        .map(|c| sq_dist(x.row(i), &c.to_vec()))
                        .fold(f64::INFINITY, f64::min)
                })
                .sum();
            assert!(
                ours.inertia <= linfa_inertia * 1.0001,
                "n_init {n_init} seed {seed}: ours {} linfa {linfa_inertia}",
                ours.inertia
            );
        }
    }

    #[test]
    fn gaussian_mixture_recovers_blobs() {
        let (df, truth) = blobs(8);
        let params = checked(ProfileParams {
            k: KChoice::Fixed(5),
            algorithm: Algorithm::Gmm,
            ..ProfileParams::default()
        });
        let result = profile(&df, &params, 4).unwrap();
        assert_sane(&result);
        assert_eq!(result.model.algorithm, Algorithm::Gmm);
        let ari = adjusted_rand_index(&truth, &persona_ids(&result));
        assert!(ari >= 0.9, "ari {ari}");
        assert_eq!(result.k_selection.height(), 1);
        assert!(result.model.silhouette.is_some());
    }

    #[test]
    fn degenerate_inputs_give_one_persona_without_nan() {
        let one = df!("user_id" => ["a"], "monetary" => [5.0]).unwrap();
        let same = df!(
            "user_id" => ["a", "b", "c", "d"],
            "monetary" => [5.0, 5.0, 5.0, 5.0],
            "frequency" => [2i64, 2, 2, 2],
        )
        .unwrap();
        let no_numbers = df!("user_id" => ["a", "b"], "top_category" => ["books", "toys"]).unwrap();
        for df in [one, same, no_numbers] {
            let result = profile(&df, &checked(ProfileParams::default()), 1).unwrap();
            assert_sane(&result);
            assert_eq!(result.model.k, 1);
            assert_eq!(result.model.labels, vec!["all users"]);
            assert!(result.model.features.is_empty());
            assert_eq!(result.k_selection.height(), 1);
            assert_eq!(f64_values(&result.k_selection, "silhouette"), vec![None]);
            assert_eq!(f64_values(&result.assignments, "distance")[0], Some(0.0));
        }
    }

    #[test]
    fn fewer_users_than_k_min_still_profiles() {
        let two = df!("user_id" => ["a", "b"], "monetary" => [5.0, 500.0]).unwrap();
        let result = profile(&two, &checked(ProfileParams::default()), 1).unwrap();
        assert_sane(&result);
        assert_eq!(result.model.k, 1);

        let three = df!("user_id" => ["a", "b", "c"], "monetary" => [5.0, 6.0, 500.0]).unwrap();
        let result = profile(&three, &checked(ProfileParams::default()), 1).unwrap();
        assert_sane(&result);
        assert_eq!(result.model.k, 2);
        assert_eq!(persona_ids(&result), vec![1, 1, 2]);
        assert_eq!(result.model.labels, vec!["low spend", "high spend"]);

        // a fixed k above the number of distinct users is capped
        let dup = df!("user_id" => ["a", "b", "c", "d"], "x" => [1.0, 1.0, 2.0, 2.0]).unwrap();
        let result = profile(&dup, &fixed(4), 1).unwrap();
        assert_sane(&result);
        assert_eq!(result.model.k, 2);
        assert_eq!(
            f64_values(&result.k_selection, "silhouette"),
            vec![Some(1.0)]
        );
    }

    #[test]
    fn null_and_constant_columns_are_handled() {
        let df = df!(
            "user_id" => ["a", "b", "c", "d", "e", "f"],
            "monetary" => [Some(1.0), Some(2.0), None, Some(900.0), Some(1000.0), Some(950.0)],
            "empty" => [None::<f64>, None, None, None, None, None],
            "flat" => [3i32, 3, 3, 3, 3, 3],
            "sessions" => [1u32, 2, 1, 40, 30, 35],
        )
        .unwrap();
        let result = profile(&df, &fixed(2), 1).unwrap();
        assert_sane(&result);
        assert_eq!(result.model.features, vec!["monetary", "sessions"]);
        assert_eq!(result.model.log_transformed, vec!["monetary", "sessions"]);
        assert_eq!(result.model.dropped_constant, vec!["empty", "flat"]);
        assert_eq!(persona_ids(&result), vec![1, 1, 1, 2, 2, 2]);
        // raw means skip nulls; an all-null column has a null mean
        assert_eq!(
            f64_values(&result.personas, "mean_monetary"),
            vec![Some(1.5), Some(950.0)]
        );
        assert_eq!(f64_values(&result.personas, "mean_empty"), vec![None, None]);
        assert_eq!(
            f64_values(&result.personas, "mean_flat"),
            vec![Some(3.0), Some(3.0)]
        );
        assert_eq!(
            strings(&result.personas, "label"),
            vec![
                Some("few sessions · low spend".into()),
                Some("many sessions · high spend".into())
            ]
        );
    }

    #[test]
    fn persona_table_summarises_text_columns() {
        let df = df!(
            "user_id" => ["a", "b", "c", "d", "e", "f", "g", "h"],
            "monetary" => [1.0, 2.0, 1.5, 2.5, 900.0, 1000.0, 950.0, 990.0],
            "tenure_days" => [10.0, 20.0, 30.0, 40.0, 10.0, 20.0, 30.0, 40.0],
            "user_country" => [Some("fr"), Some("fr"), Some("de"), None, Some("us"), Some("us"), Some("us"), Some("fr")],
            "top_query" => ["socks", "socks", "hat", "hat", "tv", "tv", "tv", "tv"],
            "top_category" => ["books", "toys", "books", "books", "electronics", "electronics", "books", "toys"],
        )
        .unwrap();
        let params = checked(ProfileParams {
            k: KChoice::Fixed(2),
            exclude: vec!["tenure_days".into()],
            ..ProfileParams::default()
        });
        let result = profile(&df, &params, 1).unwrap();
        assert_sane(&result);
        let names: Vec<String> = result
            .personas
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            names,
            vec![
                "persona_id",
                "label",
                "users",
                "share",
                "mean_monetary",
                "mean_tenure_days",
                "top_categories",
                "top_queries",
                "common_user_country",
                "distinguishing",
            ]
        );
        let assignment_names: Vec<String> = result
            .assignments
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            assignment_names,
            vec!["user_id", "persona_id", "label", "distance", "monetary"]
        );
        assert_eq!(result.model.features, vec!["monetary"]);
        // both personas have 4 users; ties in size go to the lower centroid first
        assert_eq!(
            f64_values(&result.personas, "share"),
            vec![Some(0.5), Some(0.5)]
        );
        assert_eq!(
            strings(&result.personas, "top_categories"),
            vec![
                Some("books 75%, toys 25%".into()),
                Some("electronics 50%, books 25%, toys 25%".into())
            ]
        );
        assert_eq!(
            strings(&result.personas, "top_queries"),
            vec![Some("hat 50%, socks 50%".into()), Some("tv 100%".into())]
        );
        assert_eq!(
            strings(&result.personas, "common_user_country"),
            vec![Some("fr 50%, de 25%".into()), Some("us 75%, fr 25%".into())]
        );
        assert_eq!(
            strings(&result.personas, "distinguishing"),
            vec![
                Some("low spend (-1.0 sd)".into()),
                Some("high spend (+1.0 sd)".into())
            ]
        );
        assert_eq!(
            f64_values(&result.personas, "mean_tenure_days"),
            vec![Some(25.0), Some(25.0)]
        );
    }

    #[test]
    fn bad_tables_are_reported() {
        let message = |df: DataFrame, params: ProfileParams| match profile(&df, &checked(params), 1)
        {
            Ok(_) => "accepted".to_string(),
            Err(e) => e.to_string(),
        };
        let base = ProfileParams::default;
        assert_eq!(
            message(df!("id" => ["a"], "x" => [1.0]).unwrap(), base()),
            "the features table has no `user_id` column"
        );
        assert_eq!(
            message(df!("user_id" => [1i64], "x" => [1.0]).unwrap(), base()),
            "`user_id` in the features table must be text, found i64"
        );
        assert_eq!(
            message(
                df!("user_id" => [Some("a"), None], "x" => [1.0, 2.0]).unwrap(),
                base()
            ),
            "`user_id` is null in row 2 of the features table"
        );
        assert_eq!(
            message(
                df!("user_id" => ["b", "a", "b"], "x" => [1.0, 2.0, 3.0]).unwrap(),
                base()
            ),
            "user `b` appears more than once in the features table"
        );
        let empty = df!("user_id" => Vec::<String>::new(), "x" => Vec::<f64>::new()).unwrap();
        assert_eq!(message(empty, base()), "the features table has no users");
        let table = || df!("user_id" => ["a", "b"], "x" => [1.0, 2.0], "t" => ["p", "q"]).unwrap();
        assert_eq!(
            message(
                table(),
                ProfileParams {
                    features: Some(vec!["y".into()]),
                    ..base()
                }
            ),
            "feature `y` is not a column of the features table"
        );
        assert_eq!(
            message(
                table(),
                ProfileParams {
                    features: Some(vec!["t".into()]),
                    ..base()
                }
            ),
            "feature `t` in the features table is not numeric, found str"
        );
        assert_eq!(
            message(
                table(),
                ProfileParams {
                    exclude: vec!["z".into()],
                    ..base()
                }
            ),
            "excluded column `z` is not a column of the features table"
        );
    }

    #[test]
    fn model_round_trips_through_json() {
        let (df, _) = blobs(2);
        let result = profile(&df, &fixed(3), 5).unwrap();
        let json = serde_json::to_string(&result.model).unwrap();
        let back: PersonaModel = serde_json::from_str(&json).unwrap();
        // serde_json without its `float_roundtrip` feature may be one ulp off when parsing
        let close = |a: &[f64], b: &[f64]| {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| (x - y).abs() <= 1e-12 * x.abs().max(1.0))
        };
        let m = &result.model;
        assert!(close(&back.center, &m.center) && close(&back.scale, &m.scale));
        assert!(close(&back.impute, &m.impute));
        assert!(close(&back.centroids.concat(), &m.centroids.concat()));
        assert_eq!(
            (
                &back.features,
                &back.labels,
                &back.persona_ids,
                back.k,
                back.algorithm
            ),
            (&m.features, &m.labels, &m.persona_ids, m.k, m.algorithm)
        );
        assert_eq!(back.persona_ids, vec![1, 2, 3]);
    }

    #[test]
    fn seeds_are_independent_per_stream() {
        assert_ne!(derive_seed(1, 2), derive_seed(1, 3));
        assert_ne!(derive_seed(1, 2), derive_seed(2, 2));
        assert_eq!(derive_seed(7, 5), derive_seed(7, 5));
    }
}
