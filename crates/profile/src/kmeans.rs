//! k-means: greedy k-means++ seeding and Lloyd iterations, as scikit-learn does them.
//!
//! Written here rather than taken from `linfa-clustering` 0.8.1, whose k-means seeds
//! with plain (not greedy) k-means++, bounds the centroid shift's norm rather than its
//! square relative to the feature variance, and runs on one thread (measurements:
//! docs/benchmarks.md). The `kmeans_is_no_worse_than_linfa` test keeps the seeding
//! honest.

use rand::{Rng, RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::matrix::{CHUNK_ROWS, Matrix, add_into, merge_parts, ordered_sum, sq_dist};
use crate::remote::{BlockAssignment, SharedRows};

/// Settings of one k-means fit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KMeansConfig {
    /// Number of clusters (at most the number of distinct rows).
    pub(crate) k: usize,
    /// Restarts; the lowest inertia wins.
    pub(crate) n_init: usize,
    /// Lloyd iterations per restart.
    pub(crate) max_iter: usize,
    /// Absolute bound on the sum of squared centroid shifts.
    pub(crate) tol: f64,
}

/// A clustering of the matrix rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fit {
    /// Cluster of every row.
    pub(crate) labels: Vec<u32>,
    /// `k x d` centres, row-major.
    pub(crate) centroids: Vec<f64>,
    /// Sum of squared distances of rows to their centre.
    pub(crate) inertia: f64,
}

/// The one-cluster solution: everyone around the column means.
pub(crate) fn single_cluster(x: &Matrix) -> Fit {
    let labels = vec![0u32; x.n()];
    let centroids = x.column_means();
    let dists: Vec<f64> = (0..x.n())
        .into_par_iter()
        .map(|i| sq_dist(x.row(i), &centroids))
        .collect();
    Fit {
        labels,
        inertia: ordered_sum(&dists),
        centroids,
    }
}

/// Best of `n_init` seeded k-means runs. Run seeds come from one Xoshiro256++ stream
/// seeded with `seed`; ties keep the earlier run.
pub(crate) fn fit(x: &Matrix, config: &KMeansConfig, seed: u64) -> Fit {
    let mut master = Xoshiro256PlusPlus::seed_from_u64(seed);
    let first_seed = master.next_u64();
    let other_seeds: Vec<u64> = (1..config.n_init).map(|_| master.next_u64()).collect();
    let first = single_run(x, config, first_seed);
    let others: Vec<Fit> = other_seeds
        .par_iter()
        .map(|&s| single_run(x, config, s))
        .collect();
    others.into_iter().fold(first, |best, run| {
        if run.inertia < best.inertia {
            run
        } else {
            best
        }
    })
}

/// [`fit`] on the rows in `sample` (sorted indices), then Lloyd iterations on every
/// row from the sample's centres: the restarts, which cost the most, see only the
/// sample, and the result is still a local optimum of the whole matrix.
pub(crate) fn fit_on_sample(
    x: &Matrix,
    sample: &[usize],
    config: &KMeansConfig,
    seed: u64,
    remote: Option<&dyn SharedRows>,
) -> Result<Fit> {
    let d = x.d();
    let mut rows = Vec::with_capacity(sample.len() * d);
    for &i in sample {
        rows.extend_from_slice(x.row(i));
    }
    let started = std::time::Instant::now();
    let start = fit(&Matrix::new(sample.len(), d, rows), config, seed);
    let restarts = started.elapsed().as_secs_f64();
    let refined = match remote {
        Some(rows) => lloyd_remote(x, rows, start.centroids, config)?,
        None => lloyd(x, start.centroids, config),
    };
    tracing::debug!(
        "personas: k = {}: restarts on {} rows {restarts:.2} s, Lloyd on all {} rows{} {:.2} s",
        config.k,
        sample.len(),
        x.n(),
        if remote.is_some() { " (cluster)" } else { "" },
        started.elapsed().as_secs_f64() - restarts
    );
    Ok(refined)
}

fn single_run(x: &Matrix, config: &KMeansConfig, seed: u64) -> Fit {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let centers = greedy_plus_plus(x, config.k, &mut rng);
    lloyd(x, centers, config)
}

fn uniform_index(rng: &mut Xoshiro256PlusPlus, n: usize) -> usize {
    // drawn as u64 so the sequence does not depend on the platform's usize
    rng.gen_range(0..n as u64) as usize
}

/// Squared distances of every row to `point`, capped element-wise by `cap`.
fn distances_to(x: &Matrix, point: &[f64], cap: Option<&[f64]>) -> Vec<f64> {
    let mut out = vec![0.0; x.n()];
    out.par_chunks_mut(CHUNK_ROWS)
        .enumerate()
        .for_each(|(chunk, slots)| {
            let start = chunk * CHUNK_ROWS;
            for (offset, slot) in slots.iter_mut().enumerate() {
                let i = start + offset;
                let d = sq_dist(x.row(i), point);
                *slot = match cap {
                    Some(cap) => d.min(cap[i]),
                    None => d,
                };
            }
        });
    out
}

/// Greedy k-means++ (Arthur & Vassilvitskii, as in scikit-learn's `_kmeans_plusplus`):
/// each new centre is the best of `2 + floor(ln k)` candidates drawn with probability
/// proportional to the squared distance to the nearest chosen centre, "best" meaning
/// the one that lowers the total potential most.
fn greedy_plus_plus(x: &Matrix, k: usize, rng: &mut Xoshiro256PlusPlus) -> Vec<f64> {
    let n = x.n();
    let mut centers = Vec::with_capacity(k * x.d());
    let first = uniform_index(rng, n);
    centers.extend_from_slice(x.row(first));
    let mut closest = distances_to(x, x.row(first), None);
    let trials = 2 + (k as f64).ln().floor() as usize;
    let mut cumulative = vec![0.0; n];
    for _ in 1..k {
        let mut total = 0.0;
        for (c, v) in cumulative.iter_mut().zip(&closest) {
            total += v;
            *c = total;
        }
        let candidates: Vec<usize> = (0..trials)
            .map(|_| {
                if total > 0.0 && total.is_finite() {
                    let r = rng.r#gen::<f64>() * total;
                    // first row whose cumulative weight exceeds r: never a zero-weight row
                    cumulative.partition_point(|&c| c <= r).min(n - 1)
                } else {
                    uniform_index(rng, n)
                }
            })
            .collect();
        let mut best: Option<(f64, usize, Vec<f64>)> = None;
        for candidate in candidates {
            let dists = distances_to(x, x.row(candidate), Some(&closest));
            let potential = ordered_sum(&dists);
            if best.as_ref().is_none_or(|(p, _, _)| potential < *p) {
                best = Some((potential, candidate, dists));
            }
        }
        if let Some((_, candidate, dists)) = best {
            centers.extend_from_slice(x.row(candidate));
            closest = dists;
        }
    }
    centers
}

/// Index and squared distance of the centre nearest to `row` (first one on ties).
pub(crate) fn nearest(row: &[f64], centers: &[f64], k: usize) -> (u32, f64) {
    let d = row.len();
    let mut best = (0u32, f64::INFINITY);
    for c in 0..k {
        let dist = sq_dist(row, &centers[c * d..(c + 1) * d]);
        if dist < best.1 {
            best = (c as u32, dist);
        }
    }
    best
}

/// [`nearest`], plus the squared distance to the second-nearest centre.
fn nearest_two(row: &[f64], centers: &[f64], k: usize) -> (u32, f64, f64) {
    let d = row.len();
    let (mut best, mut first, mut second) = (0u32, f64::INFINITY, f64::INFINITY);
    for c in 0..k {
        let dist = sq_dist(row, &centers[c * d..(c + 1) * d]);
        if dist < first {
            second = first;
            (best, first) = (c as u32, dist);
        } else if dist < second {
            second = dist;
        }
    }
    (best, first, second)
}

/// Nearest centre and squared distance for every row.
fn assign(x: &Matrix, centers: &[f64], k: usize, labels: &mut [u32], dists: &mut [f64]) {
    labels
        .par_chunks_mut(CHUNK_ROWS)
        .zip(dists.par_chunks_mut(CHUNK_ROWS))
        .enumerate()
        .for_each(|(chunk, (labels, dists))| {
            let start = chunk * CHUNK_ROWS;
            for (offset, (label, dist)) in labels.iter_mut().zip(dists.iter_mut()).enumerate() {
                (*label, *dist) = nearest(x.row(start + offset), centers, k);
            }
        });
}

/// Hamerly's bounds ("Making k-means even faster", SDM 2010) for every row: an upper
/// bound on the distance to its centre and a lower bound on the distance to any other
/// centre. A row whose upper bound is within both its lower bound and half the gap
/// from its centre to the nearest other one cannot change cluster, so its `k`
/// distances are skipped. Lloyd's labels come out the same; after the first few
/// iterations most rows are skipped.
struct Bounds {
    upper: Vec<f64>,
    lower: Vec<f64>,
    /// The bounds hold nothing yet: the next E-step computes every distance.
    fresh: bool,
}

impl Bounds {
    fn new(n: usize) -> Self {
        Bounds {
            upper: vec![0.0; n],
            lower: vec![0.0; n],
            fresh: true,
        }
    }

    /// Loosens the bounds after the centres moved by `moved` (Euclidean, per centre).
    fn moved(&mut self, labels: &[u32], moved: &[f64]) {
        // The largest move among the other centres: the largest overall, or the
        // second largest for the row of the centre that moved most.
        let (mut top, mut top_at, mut runner_up) = (0.0f64, usize::MAX, 0.0f64);
        for (c, &m) in moved.iter().enumerate() {
            if m > top {
                (runner_up, top, top_at) = (top, m, c);
            } else if m > runner_up {
                runner_up = m;
            }
        }
        self.upper
            .par_iter_mut()
            .zip(self.lower.par_iter_mut())
            .zip(labels.par_iter())
            .for_each(|((upper, lower), &label)| {
                let label = label as usize;
                *upper += moved[label];
                *lower -= if label == top_at { runner_up } else { top };
            });
    }
}

/// Half the distance from every centre to its nearest other centre.
fn half_gaps(centers: &[f64], k: usize, d: usize) -> Vec<f64> {
    (0..k)
        .map(|a| {
            let center = &centers[a * d..(a + 1) * d];
            let nearest = (0..k)
                .filter(|&b| b != a)
                .map(|b| sq_dist(center, &centers[b * d..(b + 1) * d]))
                .fold(f64::INFINITY, f64::min);
            0.5 * nearest.sqrt()
        })
        .collect()
}

/// E-step with [`Bounds`]: every row's centre, and the per-cluster sums and counts of
/// the M-step, reduced in block order.
fn bounded_assign(
    x: &Matrix,
    centers: &[f64],
    k: usize,
    labels: &mut [u32],
    bounds: &mut Bounds,
) -> (Vec<f64>, Vec<u64>) {
    let d = x.d();
    let gaps = half_gaps(centers, k, d);
    let fresh = bounds.fresh;
    bounds.fresh = false;
    let parts: Vec<(Vec<f64>, Vec<u64>)> = labels
        .par_chunks_mut(CHUNK_ROWS)
        .zip(bounds.upper.par_chunks_mut(CHUNK_ROWS))
        .zip(bounds.lower.par_chunks_mut(CHUNK_ROWS))
        .enumerate()
        .map(|(chunk, ((labels, upper), lower))| {
            let start = chunk * CHUNK_ROWS;
            let mut sums = vec![0.0; k * d];
            let mut counts = vec![0u64; k];
            for (offset, label) in labels.iter_mut().enumerate() {
                let row = x.row(start + offset);
                let (u, l) = (&mut upper[offset], &mut lower[offset]);
                let mut search = fresh;
                if !fresh {
                    let a = *label as usize;
                    let bound = gaps[a].max(*l);
                    if *u > bound {
                        *u = sq_dist(row, &centers[a * d..(a + 1) * d]).sqrt();
                        search = *u > bound;
                    }
                }
                if search {
                    let (c, first, second) = nearest_two(row, centers, k);
                    (*label, *u, *l) = (c, first.sqrt(), second.sqrt());
                }
                let c = *label as usize;
                counts[c] += 1;
                add_into(&mut sums[c * d..(c + 1) * d], row);
            }
            (sums, counts)
        })
        .collect();
    merge_parts(parts, k * d, k)
}

/// Gives every empty cluster the row farthest from its current centre, taking the row
/// out of its old cluster's sums (scikit-learn's `_relocate_empty_clusters`). Rows whose
/// cluster would become empty are skipped.
fn relocate_empty(x: &Matrix, labels: &[u32], dists: &[f64], sums: &mut [f64], counts: &mut [u64]) {
    let empty: Vec<usize> = (0..counts.len()).filter(|&c| counts[c] == 0).collect();
    if empty.is_empty() {
        return;
    }
    let d = x.d();
    let mut order: Vec<usize> = (0..x.n()).collect();
    order.sort_unstable_by(|&a, &b| dists[b].total_cmp(&dists[a]).then(a.cmp(&b)));
    let mut far = order.into_iter();
    for cluster in empty {
        let Some(i) = far.find(|&i| counts[labels[i] as usize] > 1) else {
            break;
        };
        let old = labels[i] as usize;
        let row = x.row(i);
        sums[old * d..(old + 1) * d]
            .iter_mut()
            .zip(row)
            .for_each(|(s, v)| *s -= v);
        counts[old] -= 1;
        sums[cluster * d..(cluster + 1) * d].copy_from_slice(row);
        counts[cluster] = 1;
    }
}

/// Lloyd iterations from `centers` until the labels stop changing, the squared centre
/// shift is within tolerance, or `max_iter` is reached; each E-step skips the rows
/// that [`Bounds`] shows cannot move.
fn lloyd(x: &Matrix, mut centers: Vec<f64>, config: &KMeansConfig) -> Fit {
    let n = x.n();
    let d = x.d();
    let k = config.k;
    let mut labels = vec![0u32; n];
    let mut previous = vec![u32::MAX; n];
    let mut dists = vec![0.0; n];
    let mut bounds = Bounds::new(n);
    let mut moved = vec![0.0; k];
    for _ in 0..config.max_iter {
        let (mut sums, mut counts) = bounded_assign(x, &centers, k, &mut labels, &mut bounds);
        if counts.contains(&0) {
            // Relocation ranks rows by their exact distance and moves centres by
            // more than the bounds allow for: start the bounds afresh.
            dists
                .par_iter_mut()
                .zip(labels.par_iter())
                .enumerate()
                .for_each(|(i, (dist, &c))| {
                    let c = c as usize;
                    *dist = sq_dist(x.row(i), &centers[c * d..(c + 1) * d]);
                });
            relocate_empty(x, &labels, &dists, &mut sums, &mut counts);
            bounds.fresh = true;
        }
        let shift = update_centers(&mut centers, &sums, &counts, d, &mut moved);
        if labels == previous || shift <= config.tol {
            break;
        }
        previous.copy_from_slice(&labels);
        if !bounds.fresh {
            bounds.moved(&labels, &moved);
        }
    }
    // a last E-step so labels, distances and inertia agree with the returned centres
    assign(x, &centers, k, &mut labels, &mut dists);
    Fit {
        labels,
        inertia: ordered_sum(&dists),
        centroids: centers,
    }
}

/// M-step: each non-empty cluster's centre becomes its mean; `moved` gets each
/// centre's shift. Returns the sum of squared shifts.
fn update_centers(
    centers: &mut [f64],
    sums: &[f64],
    counts: &[u64],
    d: usize,
    moved: &mut [f64],
) -> f64 {
    let mut shift = 0.0;
    for (c, &count) in counts.iter().enumerate() {
        moved[c] = 0.0;
        if count == 0 {
            continue;
        }
        let count = count as f64;
        let center = &mut centers[c * d..(c + 1) * d];
        let mut own = 0.0f64;
        for (old, sum) in center.iter_mut().zip(&sums[c * d..(c + 1) * d]) {
            let new = sum / count;
            let t = new - *old;
            shift += t * t;
            own += t * t;
            *old = new;
        }
        moved[c] = own.sqrt();
    }
    shift
}

/// [`lloyd`] with every E-step on the engine that holds the rows: the same labels
/// (the bounds only skip rows that cannot move), sums added in the same chunk order,
/// so the same centres.
fn lloyd_remote(
    x: &Matrix,
    rows: &dyn SharedRows,
    mut centers: Vec<f64>,
    config: &KMeansConfig,
) -> Result<Fit> {
    let (n, d, k) = (x.n(), x.d(), config.k);
    let mut previous = vec![u32::MAX; n];
    let mut moved = vec![0.0; k];
    for _ in 0..config.max_iter {
        let mut step = remote_step(rows, &centers, n, k, d)?;
        if step.counts.contains(&0) {
            relocate_empty(
                x,
                &step.labels,
                &step.dists,
                &mut step.sums,
                &mut step.counts,
            );
        }
        let shift = update_centers(&mut centers, &step.sums, &step.counts, d, &mut moved);
        if step.labels == previous || shift <= config.tol {
            break;
        }
        previous = step.labels;
    }
    let step = remote_step(rows, &centers, n, k, d)?;
    Ok(Fit {
        labels: step.labels,
        inertia: ordered_sum(&step.dists),
        centroids: centers,
    })
}

/// One E-step's results for every row, and the M-step's sums and counts.
struct Step {
    labels: Vec<u32>,
    dists: Vec<f64>,
    sums: Vec<f64>,
    counts: Vec<u64>,
}

/// The E-step with `centers` on the engine that holds the rows, its blocks' chunk
/// sums added in order.
fn remote_step(
    rows: &dyn SharedRows,
    centers: &[f64],
    n: usize,
    k: usize,
    d: usize,
) -> Result<Step> {
    let (mut labels, mut dists, mut chunks) = (Vec::new(), Vec::new(), Vec::new());
    for tables in rows.assign(centers, k)? {
        let block = BlockAssignment::from_tables(tables, k, d)?;
        labels.extend(block.labels);
        dists.extend(block.dists);
        chunks.extend(block.chunks);
    }
    if labels.len() != n || dists.len() != n {
        return Err(Error::Remote(format!(
            "the E-step covered {} of {n} rows",
            labels.len()
        )));
    }
    let (sums, counts) = merge_parts(chunks, k * d, k);
    Ok(Step {
        labels,
        dists,
        sums,
        counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> Matrix {
        Matrix::new(6, 1, vec![0.0, 0.1, 0.2, 10.0, 10.1, 10.2])
    }

    #[test]
    fn splits_two_groups() {
        let config = KMeansConfig {
            k: 2,
            n_init: 3,
            max_iter: 100,
            tol: 0.0,
        };
        let fit = fit(&line(), &config, 7);
        assert_eq!(fit.labels[0], fit.labels[2]);
        assert_eq!(fit.labels[3], fit.labels[5]);
        assert_ne!(fit.labels[0], fit.labels[3]);
        assert!((fit.inertia - 0.04).abs() < 1e-12);
    }

    #[test]
    fn relocates_into_empty_clusters() {
        let x = line();
        // both centres start on the left group: the right one gets nobody at first
        let config = KMeansConfig {
            k: 2,
            n_init: 1,
            max_iter: 100,
            tol: 0.0,
        };
        let fit = lloyd(&x, vec![0.1, -50.0], &config);
        assert_ne!(fit.labels[0], fit.labels[5]);
        assert!((fit.inertia - 0.04).abs() < 1e-12);
    }

    /// Lloyd without bounds: every distance, every iteration.
    fn plain_lloyd(x: &Matrix, mut centers: Vec<f64>, k: usize, max_iter: usize) -> Vec<u32> {
        let (n, d) = (x.n(), x.d());
        let mut labels = vec![0u32; n];
        for _ in 0..max_iter {
            let next: Vec<u32> = (0..n).map(|i| nearest(x.row(i), &centers, k).0).collect();
            let converged = next == labels;
            labels = next;
            let mut sums = vec![0.0; k * d];
            let mut counts = vec![0usize; k];
            for (i, &c) in labels.iter().enumerate() {
                counts[c as usize] += 1;
                add_into(&mut sums[c as usize * d..(c as usize + 1) * d], x.row(i));
            }
            for c in (0..k).filter(|&c| counts[c] > 0) {
                for j in 0..d {
                    centers[c * d + j] = sums[c * d + j] / counts[c] as f64;
                }
            }
            if converged {
                break;
            }
        }
        labels
    }

    #[test]
    fn bounds_skip_work_but_not_moves() {
        // overlapping clouds, so rows keep changing cluster for many iterations
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let (n, d, k) = (3000, 4, 6);
        let data: Vec<f64> = (0..n * d)
            .map(|i| rng.r#gen::<f64>() + ((i / d) % 3) as f64 * 0.4)
            .collect();
        let x = Matrix::new(n, d, data);
        let config = KMeansConfig {
            k,
            n_init: 1,
            max_iter: 300,
            tol: 0.0,
        };
        for seed in 0..4 {
            let start = greedy_plus_plus(&x, k, &mut Xoshiro256PlusPlus::seed_from_u64(seed));
            let bounded = lloyd(&x, start.clone(), &config);
            assert_eq!(
                bounded.labels,
                plain_lloyd(&x, start, k, 300),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn single_cluster_is_the_mean() {
        let fit = single_cluster(&line());
        assert!((fit.centroids[0] - 5.1).abs() < 1e-12);
        assert!(fit.labels.iter().all(|&l| l == 0));
    }
}
