//! Turns per-user features into personas: clusters users on their numeric features
//! and names each cluster in words.
//!
//! [`profile`] takes the features table (one row per `user_id`), log-transforms
//! heavy-tailed counts, money and skewed users-table attributes
//! ([`userlens_model::takes_log`]), imputes missing values with the median, standardises
//! every feature, and clusters users with k-means (greedy k-means++ seeding, Lloyd
//! iterations) or a Gaussian mixture. With `k = "auto"` every k in `k_min..=k_max` is
//! tried and the best silhouette wins. A feature family that carries no information
//! in the log (no funnel, searches or ratings in a log of purchases) is left out and
//! reported ([`FamilyLeftOut`]), and no family outweighs what users are worth
//! ([`FamilyWeight`]). Personas are numbered by size and labelled from the features
//! on which their centroid stands out, value first, e.g. "high-value regulars".
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
mod family;
mod gmm;
mod kmeans;
mod label;
mod matrix;
mod metrics;
mod params;
mod prepare;
mod remote;
mod space;
pub mod stability;
mod stable;
mod tables;

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use userlens_model::columns::USER_ID;

pub use ari::adjusted_rand_index;
pub use error::{Error, Result};
pub use family::{FamilyLeftOut, FamilyWeight, describe_left_out};
pub use params::{Algorithm, CheckedProfileParams, KChoice, MAX_K, ProfileParams};
pub use remote::{
    BlockAssignment, LLOYD_CHUNK_ROWS, RemoteLloyd, SharedRows, assign_block, decode_rows,
    encode_rows,
};
pub use stability::{MAX_MATCH_DISTANCE, Stability, StabilitySummary, stabilise};
pub use stable::{Matching, apply_matching, match_past, match_personas};
pub use tables::enrich_personas;

use crate::error::WhileDoing;
use crate::kmeans::Fit;
use crate::matrix::{Matrix, lex_cmp, sq_dist};
use userlens_model::seed::derive as derive_seed;

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

/// The personas as a later run matches them, in the scaled space of the features.
///
/// A raw value `x` of feature `features[j]` maps to the scaled space as
/// `(t(x) - center[j]) / scale[j]`, where `t` is `sign(x) ln(1 + |x|)` for features in
/// `log_transformed` and the identity otherwise, and a missing `t(x)` is `impute[j]`.
/// Users were assigned in the clustering space (the scaled features weighted, shrunk
/// by the sessions behind each share, and projected on principal components; see
/// `space.rs`), which the model does not hold: its centroids are the means of each
/// persona's users in the scaled space, and a user can sit nearer another persona's
/// centroid there than its own.
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
    /// Principal components clustered on (`pca_variance`; 0 in older records).
    #[serde(default)]
    pub components: usize,
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
    /// Sum of squared distances of users to their centroid, in the scaled space
    /// (`k_selection`'s inertia is the clustering space's).
    pub inertia: f64,
    /// Mean silhouette on the sample, if defined.
    pub silhouette: Option<f64>,
    /// Calinski-Harabasz index, if defined.
    pub calinski_harabasz: Option<f64>,
    /// Davies-Bouldin index, if defined.
    pub davies_bouldin: Option<f64>,
    /// Candidate features left out because they do not vary (or are all missing).
    pub dropped_constant: Vec<String>,
    /// Feature families left out because none of their features carries information.
    #[serde(default)]
    pub families_left_out: Vec<FamilyLeftOut>,
    /// How much each family clustered on counts in the clustering space.
    #[serde(default)]
    pub family_weights: Vec<FamilyWeight>,
    /// The highest persona id the pipeline has given, this model's or a retired
    /// one's: a new persona gets the next, so no id is ever used twice (0 in
    /// models written before it was kept: their highest id stands for it).
    #[serde(default)]
    pub highest_id: u32,
    /// Per persona: every label its terms would truthfully make, its own
    /// among them, so that a matched persona can keep the last run's while it holds.
    /// Not stored: only this run's model is matched against.
    #[serde(skip)]
    pub label_alternatives: Vec<Vec<String>>,
}

impl PersonaModel {
    /// A model as a run stored it (in its record), if it reads and is usable;
    /// else why not.
    pub fn from_stored(stored: serde_json::Value) -> std::result::Result<PersonaModel, String> {
        let model: PersonaModel = serde_json::from_value(stored).map_err(|e| e.to_string())?;
        match model.unusable() {
            Some(why) => Err(why),
            None => Ok(model),
        }
    }

    /// The highest id the model's run gave, retired ones included (a record made
    /// before `highest_id` was kept has only its personas' ids).
    pub fn highest_given(&self) -> u32 {
        let ids = self.persona_ids.iter().copied().max().unwrap_or(0);
        ids.max(self.highest_id)
    }

    /// What makes a stored model unusable to match against (one read back from a
    /// run folder, which may have been edited or cut short), if anything does.
    pub fn unusable(&self) -> Option<String> {
        let (k, d) = (self.centroids.len(), self.features.len());
        if self.persona_ids.len() != k || self.labels.len() != k {
            return Some(format!(
                "{k} centroids but {} persona ids and {} labels",
                self.persona_ids.len(),
                self.labels.len()
            ));
        }
        let per_feature = [&self.center, &self.scale];
        if let Some(short) = (self.centroids.iter().chain(per_feature)).find(|v| v.len() != d) {
            return Some(format!("{} values where {d} features", short.len()));
        }
        let values = self.centroids.iter().chain(per_feature).flatten();
        if values.into_iter().any(|v| !v.is_finite()) {
            return Some("a centroid, centre or scale that is not a number".into());
        }
        let mut ids = self.persona_ids.clone();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != k || ids.first() == Some(&0) {
            return Some("persona ids that repeat or are 0".into());
        }
        // Room for every persona of a new run to take a new id.
        let highest = ids.last().copied().unwrap_or(0).max(self.highest_id);
        if highest > u32::MAX - params::MAX_K as u32 {
            return Some(format!("a persona id of {highest}"));
        }
        None
    }
}

/// Seed stream of the silhouette sample; k-means streams use k itself.
const SAMPLE_STREAM: u64 = u64::MAX;
/// Stream of the k-means fit sample.
const FIT_SAMPLE_STREAM: u64 = u64::MAX - 1;

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
    let kept: Vec<String> = (chosen.into_iter())
        .filter(|name| !params.exclude.contains(name))
        .collect();
    if kept.is_empty() && !params.exclude.is_empty() {
        return Err(Error::EverythingExcluded {
            excluded: params.exclude.len(),
        });
    }
    Ok(kept)
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
/// With `remote`, Lloyd iterations on every row run there (when they run on a sample's
/// centres).
fn cluster(
    x: &Matrix,
    k: usize,
    params: &ProfileParams,
    tol: f64,
    seed: u64,
    remote: Option<&dyn SharedRows>,
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
                kmeans::fit_on_sample(x, &sample, &config, seed, remote)?
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
    let (fit, _) = cluster(&x, k.min(n), params, tol, seed, None)?;
    Ok((fit.labels, fit.inertia))
}

/// Chunks of Lloyd's E-step per block of rows shared with another engine.
const BLOCK_CHUNKS: usize = 64;

/// The rows of `x` shared with `remote`, when k-means will refine a sample's fit on
/// every row and there are more than `cluster_lloyd_above` rows.
fn shared<'a>(
    x: &Matrix,
    params: &ProfileParams,
    remote: Option<&'a dyn RemoteLloyd>,
) -> Result<Option<Box<dyn SharedRows + 'a>>> {
    let refines =
        params.algorithm == Algorithm::KMeans && params.fit_sample > 0 && x.n() > params.fit_sample;
    match remote {
        Some(remote) if refines && x.n() > params.cluster_lloyd_above => {
            let blocks = x
                .data()
                .chunks(BLOCK_CHUNKS * LLOYD_CHUNK_ROWS * x.d())
                .map(encode_rows)
                .collect();
            remote.share(blocks, x.d()).map(Some)
        }
        _ => Ok(None),
    }
}

/// Clusters for every k to try, scores them, and returns them with the index of the kept one.
fn search(
    x: &Matrix,
    params: &ProfileParams,
    seed: u64,
    remote: Option<&dyn RemoteLloyd>,
) -> Result<(Vec<Trial>, usize)> {
    let n = x.n();
    let shared = shared(x, params, remote)?;
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
        let (fit, clusters) = cluster(x, k, params, tol, seed, shared.as_deref())?;
        tracing::info!(
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
    tracing::info!(
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

/// Centroids (`k x d`, row-major) of the clusters `labels` of sizes `sizes` in the
/// standardised features `x`, and the sum of squared distances to them; rows are
/// summed in order.
fn feature_space_centroids(x: &Matrix, labels: &[u32], sizes: &[u64]) -> (Vec<f64>, f64) {
    let d = x.d();
    let mut sums = vec![0.0; sizes.len() * d];
    for (i, &l) in labels.iter().enumerate() {
        for (slot, v) in sums[l as usize * d..(l as usize + 1) * d]
            .iter_mut()
            .zip(x.row(i))
        {
            *slot += v;
        }
    }
    for (c, &size) in sizes.iter().enumerate() {
        for slot in &mut sums[c * d..(c + 1) * d] {
            *slot /= size.max(1) as f64;
        }
    }
    let inertia = labels
        .iter()
        .enumerate()
        .map(|(i, &l)| sq_dist(x.row(i), &sums[l as usize * d..(l as usize + 1) * d]))
        .sum();
    (sums, inertia)
}

/// The centroids' z-scores that may name a persona: a log-scaled feature whose
/// persona mean (as `mean_<feature>` publishes it) lies on the other side of the
/// population's mean than its z says (a few large values elsewhere pull the mean)
/// would be named against the published figure, so it gets a z of 0 here.
fn nameable(
    df: &DataFrame,
    persona_of: &[u32],
    prepared: &prepare::Prepared,
    centroids: &[Vec<f64>],
) -> Result<Vec<Vec<f64>>> {
    let mut z = centroids.to_vec();
    for (j, name) in prepared.features.iter().enumerate() {
        if !prepared.log_transformed.contains(name) {
            continue;
        }
        let means = tables::persona_means(df, name, persona_of, centroids.len())?;
        let everyone = tables::persona_means(df, name, &vec![0; persona_of.len()], 1)?[0];
        for (z, mean) in z.iter_mut().zip(means) {
            if let (Some(mean), Some(everyone), Some(zj)) = (mean, everyone, z.get_mut(j))
                && (mean - everyone) * *zj <= 0.0
            {
                *zj = 0.0;
            }
        }
    }
    Ok(z)
}

/// Per persona: the shares of its users with one purchase and with none, from the
/// `frequency` column when the table has one.
fn purchases(df: &DataFrame, persona_of: &[u32], k: usize) -> Result<Vec<label::Purchases>> {
    let mut counts = vec![(0u64, 0u64, 0u64); k];
    if let Ok(column) = df.column("frequency") {
        let context = || "read `frequency` as a number".to_string();
        let values = column
            .as_materialized_series()
            .cast(&DataType::Float64)
            .while_doing(context)?;
        for (value, &p) in values.f64().while_doing(context)?.iter().zip(persona_of) {
            if let Some(slot) = counts.get_mut(p as usize) {
                slot.0 += 1;
                slot.1 += u64::from(value == Some(1.0));
                slot.2 += u64::from(value == Some(0.0));
            }
        }
    }
    let (everyone, everyone_none) = counts
        .iter()
        .fold((0, 0), |(users, none), c| (users + c.0, none + c.2));
    let everyone_none = everyone_none as f64 / everyone.max(1) as f64;
    Ok(counts
        .into_iter()
        .map(|(users, one, none)| {
            let users = users.max(1) as f64;
            label::Purchases {
                one: one as f64 / users,
                none: none as f64 / users,
                everyone_none,
            }
        })
        .collect())
}

/// Builds the personas of `features` (one row per `user_id`) with checked `params`.
///
/// Numeric columns (integers or floats) are clustering candidates and text columns are
/// summarised; other types are ignored. Nulls, NaN and infinities count as missing.
/// With no varying feature, or fewer than two users, there is a single persona,
/// "all users". The same table, parameters and `seed` always give bit-identical results.
pub fn profile(features: &DataFrame, params: &CheckedProfileParams, seed: u64) -> Result<Profile> {
    profile_with(features, params, seed, None)
}

/// [`profile`], with k-means' Lloyd iterations on every user run by `remote` (a
/// cluster) when it wants them: the same result, computed elsewhere.
pub fn profile_with(
    features: &DataFrame,
    params: &CheckedProfileParams,
    seed: u64,
    remote: Option<&dyn RemoteLloyd>,
) -> Result<Profile> {
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
    // Clustering runs in the weighted principal components (`space.rs`); centroids,
    // distances and labels stay in the standardised features.
    let families: Vec<_> = prepared
        .features
        .iter()
        .map(|f| family::family_of(f))
        .collect();
    let space = space::clustering_space(
        x,
        &space::Columns {
            missing_share: &prepared.missing_share,
            shrink: &prepared.shrink,
            draws: prepared.draws.as_deref(),
            families: &families,
            kept_variance: params.pca_variance,
        },
    );
    tracing::info!(
        "personas: {} principal components of {d} features",
        space.components
    );
    let families_left_out = family::left_out(&candidates, &prepared.features, &prepared.dropped);

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
        search(&space.matrix, params, seed, remote)?
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
    let (feature_centroids, inertia) = feature_space_centroids(x, &trial.fit.labels, &sizes);
    let centroid = |c: usize| &feature_centroids[c * d..(c + 1) * d];
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

    let bought = purchases(&df, &persona_of, k)?;
    let (labels, label_alternatives) = if k == 1 {
        (vec![label::ALL_USERS.to_string()], Vec::new())
    } else {
        let terms: Vec<Vec<label::Term>> = nameable(&df, &persona_of, &prepared, &centroids)?
            .iter()
            .map(|z| label::label_terms(&prepared.features, z))
            .collect();
        let alternatives = (terms.iter().zip(&bought))
            .map(|(t, b)| label::alternatives(t, *b, params.label_terms))
            .collect();
        let labels = label::unique_labels(&terms, &bought, params.label_terms, &persona_ids);
        (labels, alternatives)
    };
    let distinguishing: Vec<String> = (centroids.iter().zip(&bought))
        .map(|(z, b)| label::distinguishing(&prepared.features, z, *b))
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
        components: space.components,
        center: prepared.center,
        scale: prepared.scale,
        impute: prepared.impute,
        centroids,
        persona_ids,
        labels,
        inertia,
        silhouette: trial.silhouette,
        calinski_harabasz: trial.calinski_harabasz,
        davies_bouldin: trial.davies_bouldin,
        dropped_constant: prepared.dropped.into_iter().map(|(name, _)| name).collect(),
        families_left_out,
        family_weights: space.families,
        highest_id: k as u32,
        label_alternatives,
    };
    Ok(Profile {
        assignments,
        personas,
        k_selection,
        model,
    })
}

#[cfg(test)]
mod tests;
