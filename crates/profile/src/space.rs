//! The space users are clustered in: the standardised features weighted so that a
//! group of near-duplicates (events, sessions, active days, views ...) counts about
//! as much as one feature, and a mostly imputed feature counts less, then projected
//! on the principal components that hold [`KEPT_VARIANCE`] of the weighted variance,
//! which leaves out the directions of noise. When behaviour blurs between personas,
//! the duplicated volume features and the noise otherwise decide the clusters.
//!
//! The principal components come from a cyclic Jacobi eigen-decomposition of the
//! `d x d` covariance (hand-written: a few dozen features, no LAPACK dependency, and
//! the same bits on every machine); the covariance is summed block by block in row
//! order, as every reduction of [`crate::matrix`].

use rayon::prelude::*;

use crate::matrix::{CHUNK_ROWS, Matrix};

/// Share of the weighted variance the kept components hold.
pub(crate) const KEPT_VARIANCE: f64 = 0.85;

/// Sweeps of the Jacobi rotation before giving up on the last off-diagonal crumbs.
const MAX_SWEEPS: usize = 100;

/// Per feature: `(1 - missing share) / sqrt(sum over features of r²)`, where `r` is
/// the correlation of the standardised columns (so `sum r²` is at least 1: a feature
/// with `m` exact copies gets `1 / sqrt(m)`, and the group weighs about one feature).
pub(crate) fn weights(x: &Matrix, missing_share: &[f64]) -> Vec<f64> {
    let d = x.d();
    let correlation = covariance(x, &vec![1.0; d]);
    (0..d)
        .map(|j| {
            let diagonal = correlation[j * d + j];
            let overlap: f64 = (0..d)
                .map(|l| {
                    let scale = (diagonal * correlation[l * d + l]).sqrt();
                    let r = if scale > 0.0 {
                        correlation[j * d + l] / scale
                    } else {
                        0.0
                    };
                    r * r
                })
                .sum();
            let present = 1.0 - missing_share.get(j).copied().unwrap_or(0.0);
            if overlap > 0.0 {
                present.clamp(0.0, 1.0) / overlap.sqrt()
            } else {
                0.0
            }
        })
        .collect()
}

/// Covariance of the weighted columns `x[:, j] * w[j]` (the columns are centred:
/// standardised), `d x d` row-major, divided by `n`.
fn covariance(x: &Matrix, w: &[f64]) -> Vec<f64> {
    let (n, d) = (x.n(), x.d());
    let blocks: Vec<Vec<f64>> = (0..n.div_ceil(CHUNK_ROWS))
        .into_par_iter()
        .map(|block| {
            let mut sum = vec![0.0; d * d];
            for i in block * CHUNK_ROWS..((block + 1) * CHUNK_ROWS).min(n) {
                let row = x.row(i);
                for a in 0..d {
                    let va = row[a] * w[a];
                    for b in a..d {
                        sum[a * d + b] += va * row[b] * w[b];
                    }
                }
            }
            sum
        })
        .collect();
    let mut total = vec![0.0; d * d];
    for block in blocks {
        for (t, s) in total.iter_mut().zip(block) {
            *t += s;
        }
    }
    let n = n.max(1) as f64;
    for a in 0..d {
        for b in a..d {
            total[a * d + b] /= n;
            total[b * d + a] = total[a * d + b];
        }
    }
    total
}

/// Eigenvalues (descending) and eigenvectors (columns of a `d x d` row-major
/// matrix, each with its largest component positive) of a symmetric matrix.
fn eigen(mut a: Vec<f64>, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; d * d];
    for i in 0..d {
        v[i * d + i] = 1.0;
    }
    let norm: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _ in 0..MAX_SWEEPS {
        let off: f64 = (0..d)
            .flat_map(|p| (p + 1..d).map(move |q| (p, q)))
            .map(|(p, q)| a[p * d + q] * a[p * d + q])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-14 * norm.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq.abs() <= f64::MIN_POSITIVE {
                    continue;
                }
                let theta = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&i, &j| a[j * d + j].total_cmp(&a[i * d + i]).then(i.cmp(&j)));
    let values: Vec<f64> = order.iter().map(|&i| a[i * d + i].max(0.0)).collect();
    let mut vectors = vec![0.0; d * d];
    for (col, &i) in order.iter().enumerate() {
        let largest = (0..d)
            .map(|k| v[k * d + i])
            .fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        let sign = if largest < 0.0 { -1.0 } else { 1.0 };
        for k in 0..d {
            vectors[k * d + col] = sign * v[k * d + i];
        }
    }
    (values, vectors)
}

/// The weighted features of `x` on their leading principal components, and how
/// many were kept; `x` itself when it has one feature or no variance.
pub(crate) fn clustering_space(x: &Matrix, missing_share: &[f64]) -> (Matrix, usize) {
    let (n, d) = (x.n(), x.d());
    if d < 2 || n == 0 {
        return (x.clone(), d);
    }
    let w = weights(x, missing_share);
    let (values, vectors) = eigen(covariance(x, &w), d);
    let total: f64 = values.iter().sum();
    if total <= 0.0 {
        return (x.clone(), d);
    }
    let mut kept = 0;
    let mut held = 0.0;
    while kept < d && held < KEPT_VARIANCE * total {
        held += values[kept];
        kept += 1;
    }
    let kept = kept.max(1);
    let mut data = vec![0.0; n * kept];
    data.par_chunks_mut(kept).enumerate().for_each(|(i, out)| {
        let row = x.row(i);
        for (c, slot) in out.iter_mut().enumerate() {
            *slot = (0..d).map(|j| row[j] * w[j] * vectors[j * d + c]).sum();
        }
    });
    (Matrix::new(n, kept, data), kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigen_recovers_a_known_decomposition() {
        // [[2, 1], [1, 2]] has eigenvalues 3 and 1 along (1, 1) and (1, -1).
        let (values, vectors) = eigen(vec![2.0, 1.0, 1.0, 2.0], 2);
        assert!((values[0] - 3.0).abs() < 1e-12 && (values[1] - 1.0).abs() < 1e-12);
        let h = 0.5f64.sqrt();
        assert!((vectors[0] - h).abs() < 1e-12 && (vectors[2] - h).abs() < 1e-12);
        assert!((vectors[1].abs() - h).abs() < 1e-12 && (vectors[3].abs() - h).abs() < 1e-12);
    }

    #[test]
    fn duplicates_weigh_as_one_feature_and_missing_ones_less() {
        // Columns 0 and 1 are copies, column 2 is independent of them.
        let rows = [
            [1.0, 1.0, 1.0],
            [-1.0, -1.0, 1.0],
            [1.0, 1.0, -1.0],
            [-1.0, -1.0, -1.0],
        ];
        let x = Matrix::new(4, 3, rows.concat());
        let w = weights(&x, &[0.0, 0.0, 0.5]);
        let h = 0.5f64.sqrt();
        assert!((w[0] - h).abs() < 1e-12 && (w[1] - h).abs() < 1e-12);
        assert!((w[2] - 0.5).abs() < 1e-12);
        let (space, kept) = clustering_space(&x, &[0.0, 0.0, 0.0]);
        // Two directions carry the variance: the copies' and the third column's.
        assert_eq!(kept, 2);
        assert_eq!(space.n(), 4);
    }
}
