//! Gaussian mixture clustering through linfa.

use linfa::DatasetBase;
use linfa::traits::Fit as _;
use linfa_clustering::{GaussianMixtureModel, GmmError};
use ndarray::Array2;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::kmeans::Fit;
use crate::matrix::{Matrix, ordered_sum, sq_dist};

/// Settings of one Gaussian mixture fit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GmmConfig {
    /// Number of components.
    pub(crate) k: usize,
    /// EM runs.
    pub(crate) n_init: usize,
    /// EM iterations per run.
    pub(crate) max_iter: usize,
    /// Bound on the change of the mean log-likelihood.
    pub(crate) tol: f64,
}

/// Fits a full-covariance mixture and puts each row in its most likely component.
/// Centroids are the component means; inertia is measured against them.
pub(crate) fn fit(x: &Matrix, config: &GmmConfig, seed: u64) -> Result<Fit> {
    let k = config.k;
    let gmm_error = |source: GmmError| Error::Gmm { k, source };
    let records = Array2::from_shape_vec((x.n(), x.d()), x.data().to_vec())
        .map_err(|e| gmm_error(GmmError::from(linfa::Error::from(e))))?;
    let dataset = DatasetBase::from(records);
    let model = GaussianMixtureModel::params_with_rng(k, Xoshiro256Plus::seed_from_u64(seed))
        .n_runs(config.n_init as u64)
        .tolerance(config.tol)
        .max_n_iterations(config.max_iter as u64)
        .fit(&dataset)
        .map_err(gmm_error)?;
    let means = model.means();
    if means.iter().any(|v| !v.is_finite()) || means.nrows() != k || means.ncols() != x.d() {
        return Err(Error::GmmNotFinite { k });
    }
    let centroids: Vec<f64> = means.iter().copied().collect();
    let proba = model.predict_proba(dataset.records());
    let d = x.d();
    // argmax written here instead of linfa's `predict`, which panics on NaN probabilities;
    // a row without any finite probability goes to its nearest mean
    let assigned: Vec<(u32, f64)> = (0..x.n())
        .into_par_iter()
        .map(|i| {
            let row = x.row(i);
            let mut best: Option<(usize, f64)> = None;
            for (c, &p) in proba.row(i).iter().enumerate() {
                if p.is_finite() && best.is_none_or(|(_, b)| p > b) {
                    best = Some((c, p));
                }
            }
            let c = match best {
                Some((c, _)) => c,
                None => (0..k)
                    .min_by(|&a, &b| {
                        sq_dist(row, &centroids[a * d..(a + 1) * d])
                            .total_cmp(&sq_dist(row, &centroids[b * d..(b + 1) * d]))
                    })
                    .unwrap_or(0),
            };
            (c as u32, sq_dist(row, &centroids[c * d..(c + 1) * d]))
        })
        .collect();
    let dists: Vec<f64> = assigned.iter().map(|(_, dist)| *dist).collect();
    Ok(Fit {
        labels: assigned.into_iter().map(|(c, _)| c).collect(),
        inertia: ordered_sum(&dists),
        centroids,
    })
}
