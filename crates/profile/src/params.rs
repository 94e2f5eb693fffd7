//! Parameters of the profile stage, as written in a pipeline file, and their checked form.

use std::fmt;

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::{Error, Result};

/// How many personas to build: chosen by silhouette, or fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KChoice {
    /// Try every k in `k_min..=k_max` and keep the best silhouette (`k = "auto"`).
    #[default]
    Auto,
    /// Exactly this many personas (`k = 5`), fewer only if the data has fewer distinct users.
    Fixed(usize),
}

impl fmt::Display for KChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KChoice::Auto => f.write_str("auto"),
            KChoice::Fixed(k) => write!(f, "{k}"),
        }
    }
}

impl Serialize for KChoice {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            KChoice::Auto => serializer.serialize_str("auto"),
            KChoice::Fixed(k) => serializer.serialize_u64(*k as u64),
        }
    }
}

struct KChoiceVisitor;

impl Visitor<'_> for KChoiceVisitor {
    type Value = KChoice;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"auto\" or a whole number of personas")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<KChoice, E> {
        if v == "auto" {
            Ok(KChoice::Auto)
        } else {
            Err(E::invalid_value(Unexpected::Str(v), &self))
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<KChoice, E> {
        usize::try_from(v)
            .map(KChoice::Fixed)
            .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<KChoice, E> {
        usize::try_from(v)
            .map(KChoice::Fixed)
            .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }
}

impl<'de> Deserialize<'de> for KChoice {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(KChoiceVisitor)
    }
}

/// Clustering algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// k-means (greedy k-means++ seeding, Lloyd iterations), written in this crate.
    #[default]
    KMeans,
    /// Gaussian mixture with full covariances, from linfa; users go to their most likely component.
    Gmm,
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Algorithm::KMeans => "kmeans",
            Algorithm::Gmm => "gmm",
        })
    }
}

/// Raw parameters from the pipeline file's `with` table for the profile stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileParams {
    /// Number of personas: `"auto"` (default) or an integer.
    pub k: KChoice,
    /// Smallest k tried when `k = "auto"` (default 3).
    pub k_min: usize,
    /// Largest k tried when `k = "auto"` (default 8).
    pub k_max: usize,
    /// `"kmeans"` (default) or `"gmm"`.
    pub algorithm: Algorithm,
    /// Independent restarts per k; the best one is kept (default 10).
    pub n_init: usize,
    /// Iteration cap per restart (default 300).
    pub max_iter: usize,
    /// Convergence tolerance (default 1e-4). For k-means it is relative, as in
    /// scikit-learn: iterations stop once the sum of squared centroid shifts is at most
    /// `tolerance` times the mean feature variance. For the Gaussian mixture it is
    /// linfa's bound on the change of the mean log-likelihood.
    pub tolerance: f64,
    /// Share of the weighted variance held by the principal components the users are
    /// clustered on (default 0.85, which leaves out the noise; 1 keeps every one).
    pub pca_variance: f64,
    /// Numeric columns to cluster on; `None` means every numeric column except `user_id`.
    pub features: Option<Vec<String>>,
    /// Columns left out of clustering; they are still averaged in the persona table.
    pub exclude: Vec<String>,
    /// Silhouette is computed on a seeded sample of at most this many users (default
    /// 10000; its cost grows with the square of the sample).
    pub silhouette_sample: usize,
    /// With more users than this, k-means restarts run on a seeded sample of this many
    /// users and the best one is then refined on every user (default 20000; 0 = always
    /// fit on every user). Keeps k selection fast on millions of users: the restarts
    /// are the cost, and the refined result stays close to scikit-learn's full fit
    /// (measurements: docs/benchmarks.md).
    pub fit_sample: usize,
    /// How many distinguishing features make up a persona label (default 2).
    pub label_terms: usize,
    /// On a cluster run, the Lloyd iterations on every user (after the restarts on
    /// `fit_sample` users) run on the cluster when there are more users than this
    /// (default 1,000,000): each iteration is a cluster job, whose latency only pays
    /// off on many users. Results are the same either way.
    pub cluster_lloyd_above: usize,
}

impl Default for ProfileParams {
    fn default() -> Self {
        ProfileParams {
            k: KChoice::Auto,
            k_min: 3,
            k_max: 8,
            algorithm: Algorithm::KMeans,
            n_init: 10,
            max_iter: 300,
            tolerance: 1e-4,
            pca_variance: 0.85,
            features: None,
            exclude: Vec::new(),
            silhouette_sample: 10_000,
            fit_sample: 20_000,
            label_terms: 2,
            cluster_lloyd_above: 1_000_000,
        }
    }
}

/// The most personas a run makes or tries.
pub const MAX_K: usize = 100;

/// The most restarts per k.
pub const MAX_N_INIT: usize = 1_000;

/// The most iterations per restart.
pub const MAX_ITER: usize = 100_000;

/// The fewest users a silhouette is computed on.
pub const MIN_SILHOUETTE_SAMPLE: usize = 100;

/// The most: the silhouette compares every pair of the sample's users, so ten
/// times this many take a hundred times as long.
pub const MAX_SILHOUETTE_SAMPLE: usize = 100_000;

impl ProfileParams {
    /// Validates the parameters before any data is read.
    pub fn check(&self) -> Result<CheckedProfileParams> {
        let invalid = |message: String| Err(Error::InvalidParams(message));
        if self.k_min < 2 {
            return invalid(format!("`k_min` must be at least 2, got {}", self.k_min));
        }
        if self.k_min > self.k_max {
            return invalid(format!(
                "`k_min` ({}) is greater than `k_max` ({})",
                self.k_min, self.k_max
            ));
        }
        if self.k == KChoice::Fixed(0) {
            return invalid("`k` must be at least 1, got 0".to_string());
        }
        // Each k tried is a clustering of its own: a k_max of millions never ends.
        if let KChoice::Fixed(k) = self.k
            && k > MAX_K
        {
            return invalid(format!("`k` must be at most {MAX_K}, got {k}"));
        }
        if self.k_max > MAX_K {
            return invalid(format!(
                "`k_max` must be at most {MAX_K}, got {}",
                self.k_max
            ));
        }
        // Restarts and iterations are run, not only allowed: millions never end.
        if !(1..=MAX_N_INIT).contains(&self.n_init) {
            return invalid(format!(
                "`n_init` must be between 1 and {MAX_N_INIT}, got {}",
                self.n_init
            ));
        }
        if !(1..=MAX_ITER).contains(&self.max_iter) {
            return invalid(format!(
                "`max_iter` must be between 1 and {MAX_ITER}, got {}",
                self.max_iter
            ));
        }
        if !self.tolerance.is_finite() || self.tolerance < 0.0 {
            return invalid(format!(
                "`tolerance` must be a finite number >= 0, got {}",
                self.tolerance
            ));
        }
        if self.algorithm == Algorithm::Gmm && self.tolerance == 0.0 {
            return invalid(
                "`tolerance` must be greater than 0 when `algorithm` is \"gmm\"".to_string(),
            );
        }
        if !(self.pca_variance > 0.0 && self.pca_variance <= 1.0) {
            return invalid(format!(
                "`pca_variance` must be above 0 and at most 1, got {}",
                self.pca_variance
            ));
        }
        if self.silhouette_sample < MIN_SILHOUETTE_SAMPLE {
            return invalid(format!(
                "`silhouette_sample` must be at least {MIN_SILHOUETTE_SAMPLE} (on fewer users \
                 the silhouettes of different k cannot be told apart), got {}",
                self.silhouette_sample
            ));
        }
        if self.silhouette_sample > MAX_SILHOUETTE_SAMPLE {
            return invalid(format!(
                "`silhouette_sample` must be at most {MAX_SILHOUETTE_SAMPLE} (every pair of \
                 its users is compared), got {}",
                self.silhouette_sample
            ));
        }
        if self.label_terms < 1 {
            return invalid("`label_terms` must be at least 1, got 0".to_string());
        }
        if let Some(features) = &self.features {
            if features.is_empty() {
                return invalid(
                    "`features` is empty; leave it out to cluster on every numeric column"
                        .to_string(),
                );
            }
            let mut seen = std::collections::HashSet::new();
            for name in features {
                if !seen.insert(name) {
                    return invalid(format!("`features` lists `{name}` more than once"));
                }
            }
        }
        Ok(CheckedProfileParams {
            params: self.clone(),
        })
    }
}

/// Parameters that passed [`ProfileParams::check`]; the only way to call [`crate::profile`].
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedProfileParams {
    params: ProfileParams,
}

impl CheckedProfileParams {
    /// The validated parameters.
    pub fn params(&self) -> &ProfileParams {
        &self.params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(params: ProfileParams) -> String {
        match params.check() {
            Ok(_) => "accepted".to_string(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_pass() {
        let checked = ProfileParams::default().check().unwrap();
        assert_eq!(checked.params(), &ProfileParams::default());
    }

    #[test]
    fn check_rejects_bad_values_with_their_names() {
        let base = ProfileParams::default;
        let cases = [
            (
                ProfileParams {
                    k_min: 5,
                    k_max: 3,
                    ..base()
                },
                "`k_min` (5) is greater than `k_max` (3)",
            ),
            (
                ProfileParams { k_min: 1, ..base() },
                "`k_min` must be at least 2, got 1",
            ),
            (
                ProfileParams {
                    k: KChoice::Fixed(0),
                    ..base()
                },
                "`k` must be at least 1, got 0",
            ),
            (
                ProfileParams {
                    k: KChoice::Fixed(100_000),
                    ..base()
                },
                "`k` must be at most 100, got 100000",
            ),
            (
                ProfileParams {
                    k_max: 4_000_000_000,
                    ..base()
                },
                "`k_max` must be at most 100, got 4000000000",
            ),
            (
                ProfileParams {
                    n_init: 0,
                    ..base()
                },
                "`n_init` must be between 1 and 1000, got 0",
            ),
            (
                ProfileParams {
                    max_iter: 0,
                    ..base()
                },
                "`max_iter` must be between 1 and 100000, got 0",
            ),
            (
                ProfileParams {
                    pca_variance: 0.0,
                    ..base()
                },
                "`pca_variance` must be above 0 and at most 1, got 0",
            ),
            (
                ProfileParams {
                    pca_variance: f64::NAN,
                    ..base()
                },
                "`pca_variance` must be above 0 and at most 1, got NaN",
            ),
            (
                ProfileParams {
                    tolerance: f64::NAN,
                    ..base()
                },
                "`tolerance` must be a finite number >= 0, got NaN",
            ),
            (
                ProfileParams {
                    tolerance: -1.0,
                    ..base()
                },
                "`tolerance` must be a finite number >= 0, got -1",
            ),
            (
                ProfileParams {
                    tolerance: 0.0,
                    algorithm: Algorithm::Gmm,
                    ..base()
                },
                "`tolerance` must be greater than 0 when `algorithm` is \"gmm\"",
            ),
            (
                ProfileParams {
                    n_init: usize::MAX,
                    ..base()
                },
                &format!("`n_init` must be between 1 and 1000, got {}", usize::MAX),
            ),
            (
                ProfileParams {
                    max_iter: 100_001,
                    ..base()
                },
                "`max_iter` must be between 1 and 100000, got 100001",
            ),
            (
                ProfileParams {
                    silhouette_sample: 99,
                    ..base()
                },
                "`silhouette_sample` must be at least 100 (on fewer users the silhouettes \
                 of different k cannot be told apart), got 99",
            ),
            (
                ProfileParams {
                    silhouette_sample: 4_000_000_000_000,
                    ..base()
                },
                "`silhouette_sample` must be at most 100000 (every pair of its users is \
                 compared), got 4000000000000",
            ),
            (
                ProfileParams {
                    label_terms: 0,
                    ..base()
                },
                "`label_terms` must be at least 1, got 0",
            ),
            (
                ProfileParams {
                    features: Some(vec![]),
                    ..base()
                },
                "`features` is empty; leave it out to cluster on every numeric column",
            ),
            (
                ProfileParams {
                    features: Some(vec!["a".into(), "b".into(), "a".into()]),
                    ..base()
                },
                "`features` lists `a` more than once",
            ),
        ];
        for (params, expected) in cases {
            assert_eq!(message(params), expected);
        }
        assert_eq!(
            message(ProfileParams {
                tolerance: 0.0,
                ..base()
            }),
            "accepted"
        );
        assert_eq!(
            message(ProfileParams {
                k: KChoice::Fixed(1),
                ..base()
            }),
            "accepted"
        );
    }

    #[test]
    fn reads_pipeline_toml() {
        let params: ProfileParams = toml::from_str(
            "k = 5\nalgorithm = \"gmm\"\nexclude = [\"tenure_days\"]\nlabel_terms = 3\n",
        )
        .unwrap();
        assert_eq!(params.k, KChoice::Fixed(5));
        assert_eq!(params.algorithm, Algorithm::Gmm);
        assert_eq!(params.exclude, vec!["tenure_days".to_string()]);
        assert_eq!(params.label_terms, 3);
        assert_eq!(params.k_max, 8);

        let auto: ProfileParams = toml::from_str("k = \"auto\"").unwrap();
        assert_eq!(auto.k, KChoice::Auto);
        assert_eq!(
            toml::from_str::<ProfileParams>("").unwrap(),
            ProfileParams::default()
        );
    }

    #[test]
    fn rejects_unknown_fields_and_bad_k() {
        let unknown = toml::from_str::<ProfileParams>("kk = 3")
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("unknown field `kk`"), "{unknown}");
        let bad = toml::from_str::<ProfileParams>("k = \"many\"")
            .unwrap_err()
            .to_string();
        assert!(
            bad.contains("expected \"auto\" or a whole number of personas"),
            "{bad}"
        );
        assert!(toml::from_str::<ProfileParams>("k = -2").is_err());
        assert!(toml::from_str::<ProfileParams>("algorithm = \"dbscan\"").is_err());
    }

    #[test]
    fn round_trips_through_json() {
        for k in [KChoice::Auto, KChoice::Fixed(4)] {
            let params = ProfileParams {
                k,
                ..ProfileParams::default()
            };
            let json = serde_json::to_string(&params).unwrap();
            let back: ProfileParams = serde_json::from_str(&json).unwrap();
            assert_eq!(back, params);
        }
    }
}
