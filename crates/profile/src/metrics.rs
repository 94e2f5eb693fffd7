//! Cluster quality metrics, with scikit-learn's definitions; `None` where undefined.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::matrix::{Matrix, chunk_count, chunk_range, ordered_sum, sq_dist};

/// Sorted indices of at most `size` rows out of `n`, drawn without replacement.
pub(crate) fn sample_rows(n: usize, size: usize, seed: u64) -> Vec<usize> {
    let mut rows: Vec<usize> = (0..n).collect();
    if n <= size {
        return rows;
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    // partial Fisher-Yates; u64 draws keep the sample the same on every platform
    for i in 0..size {
        let j = rng.gen_range(i as u64..n as u64) as usize;
        rows.swap(i, j);
    }
    rows.truncate(size);
    rows.sort_unstable();
    rows
}

/// Mean silhouette of each labeling `(labels, k)` over the rows in `sample`, computed
/// exactly (O(s² d)) in one pass that shares the pairwise distances between labelings.
/// `None` where fewer than 2 or more than `s - 1` clusters appear in the sample.
pub(crate) fn silhouettes(
    x: &Matrix,
    sample: &[usize],
    labelings: &[(&[u32], usize)],
) -> Vec<Option<f64>> {
    let sizes: Vec<Vec<u64>> = labelings
        .iter()
        .map(|(labels, k)| {
            let mut sizes = vec![0u64; *k];
            for &i in sample {
                sizes[labels[i] as usize] += 1;
            }
            sizes
        })
        .collect();
    // The sample's rows and labels side by side: the s² inner loop then reads memory
    // in order instead of gathering rows from all over the matrix (3x faster).
    let d = x.d();
    let rows: Vec<f64> = sample
        .iter()
        .flat_map(|&i| x.row(i).iter().copied())
        .collect();
    let sample_labels: Vec<Vec<u32>> = labelings
        .iter()
        .map(|(labels, _)| sample.iter().map(|&i| labels[i]).collect())
        .collect();
    let scores: Vec<Vec<f64>> = (0..sample.len())
        .into_par_iter()
        .map(|a| {
            let mut sums: Vec<Vec<f64>> = labelings.iter().map(|(_, k)| vec![0.0; *k]).collect();
            let row = &rows[a * d..(a + 1) * d];
            for (b, other) in rows.chunks_exact(d.max(1)).enumerate() {
                if b == a {
                    continue;
                }
                let dist = sq_dist(row, other).sqrt();
                for (sum, labels) in sums.iter_mut().zip(&sample_labels) {
                    sum[labels[b] as usize] += dist;
                }
            }
            sample_labels
                .iter()
                .zip(&sums)
                .zip(&sizes)
                .map(|((labels, sum), size)| point_silhouette(labels[a] as usize, sum, size))
                .collect()
        })
        .collect();
    sizes
        .iter()
        .enumerate()
        .map(|(t, size)| {
            let present = size.iter().filter(|&&s| s > 0).count();
            if present < 2 || present + 1 > sample.len() {
                return None;
            }
            let total: f64 = scores.iter().map(|s| s[t]).sum();
            Some(total / sample.len() as f64).filter(|v| v.is_finite())
        })
        .collect()
}

/// `(b - a) / max(a, b)` for one point; 0 for a point alone in its cluster.
fn point_silhouette(own: usize, sums: &[f64], sizes: &[u64]) -> f64 {
    if sizes[own] <= 1 {
        return 0.0;
    }
    let a = sums[own] / (sizes[own] - 1) as f64;
    let b = (0..sizes.len())
        .filter(|&c| c != own && sizes[c] > 0)
        .map(|c| sums[c] / sizes[c] as f64)
        .fold(f64::INFINITY, f64::min);
    let denominator = a.max(b);
    if !b.is_finite() || denominator <= 0.0 {
        0.0
    } else {
        (b - a) / denominator
    }
}

/// Distance of every row to its cluster mean, squared or not.
fn distances_to_means(x: &Matrix, labels: &[u32], means: &[f64], squared: bool) -> Vec<f64> {
    let d = x.d();
    (0..x.n())
        .into_par_iter()
        .map(|i| {
            let c = labels[i] as usize;
            let dist = sq_dist(x.row(i), &means[c * d..(c + 1) * d]);
            if squared { dist } else { dist.sqrt() }
        })
        .collect()
}

/// Calinski-Harabasz index: between- over within-cluster dispersion, each per degree
/// of freedom. `None` unless `2 <= k < n` and the within dispersion is positive.
pub(crate) fn calinski_harabasz(x: &Matrix, labels: &[u32], k: usize) -> Option<f64> {
    let n = x.n();
    if k < 2 || k >= n {
        return None;
    }
    let d = x.d();
    let (means, counts) = x.cluster_means(labels, k);
    let overall = x.column_means();
    let between: f64 = (0..k)
        .map(|c| counts[c] as f64 * sq_dist(&means[c * d..(c + 1) * d], &overall))
        .sum();
    let within = ordered_sum(&distances_to_means(x, labels, &means, true));
    if within <= 0.0 {
        return None;
    }
    let score = between * (n - k) as f64 / (within * (k - 1) as f64);
    score.is_finite().then_some(score)
}

/// Davies-Bouldin index: mean over clusters of the worst ratio of summed spreads to
/// centre distance (coincident centres are skipped, as in scikit-learn). `None` unless
/// `2 <= k < n`.
pub(crate) fn davies_bouldin(x: &Matrix, labels: &[u32], k: usize) -> Option<f64> {
    let n = x.n();
    if k < 2 || k >= n {
        return None;
    }
    let d = x.d();
    let (means, counts) = x.cluster_means(labels, k);
    let dists = distances_to_means(x, labels, &means, false);
    let parts: Vec<Vec<f64>> = (0..chunk_count(n))
        .into_par_iter()
        .map(|chunk| {
            let mut part = vec![0.0; k];
            for i in chunk_range(chunk, n) {
                part[labels[i] as usize] += dists[i];
            }
            part
        })
        .collect();
    let mut spread = vec![0.0; k];
    for part in parts {
        spread.iter_mut().zip(part).for_each(|(s, p)| *s += p);
    }
    for (s, &count) in spread.iter_mut().zip(&counts) {
        if count > 0 {
            *s /= count as f64;
        }
    }
    let mut total = 0.0;
    for a in 0..k {
        let worst = (0..k)
            .filter(|&b| b != a)
            .filter_map(|b| {
                let separation =
                    sq_dist(&means[a * d..(a + 1) * d], &means[b * d..(b + 1) * d]).sqrt();
                (separation > 0.0).then(|| (spread[a] + spread[b]) / separation)
            })
            .fold(0.0, f64::max);
        total += worst;
    }
    let score = total / k as f64;
    score.is_finite().then_some(score)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_groups() -> (Matrix, Vec<u32>) {
        let x = Matrix::new(4, 1, vec![0.0, 1.0, 10.0, 11.0]);
        (x, vec![0, 0, 1, 1])
    }

    #[test]
    fn known_values() {
        let (x, labels) = two_groups();
        // point 0: a = 1, b = (10 + 11) / 2 = 10.5 -> 9.5 / 10.5; point 1: a = 1, b = 9.5
        let expected = (9.5 / 10.5 + 8.5 / 9.5) / 2.0;
        let s = silhouettes(&x, &[0, 1, 2, 3], &[(&labels, 2)])[0].unwrap();
        assert!((s - expected).abs() < 1e-12);
        // between = 2 * 5^2 * 2 = 100, within = 4 * 0.25 = 1, (100 / 1) / (1 / 2)
        let ch = calinski_harabasz(&x, &labels, 2).unwrap();
        assert!((ch - 200.0).abs() < 1e-9);
        // spreads 0.5 each, separation 10 -> (0.5 + 0.5) / 10
        let db = davies_bouldin(&x, &labels, 2).unwrap();
        assert!((db - 0.1).abs() < 1e-12);
    }

    #[test]
    fn undefined_cases_are_none() {
        let (x, _) = two_groups();
        let one = vec![0u32; 4];
        assert_eq!(silhouettes(&x, &[0, 1, 2, 3], &[(&one, 1)]), vec![None]);
        assert_eq!(calinski_harabasz(&x, &one, 1), None);
        assert_eq!(davies_bouldin(&x, &[0, 1, 2, 3], 4), None);
        let flat = Matrix::new(4, 1, vec![0.0, 0.0, 1.0, 1.0]);
        assert_eq!(calinski_harabasz(&flat, &[0, 0, 1, 1], 2), None);
    }

    #[test]
    fn sample_is_seeded_and_sorted() {
        let a = sample_rows(100, 10, 3);
        assert_eq!(a, sample_rows(100, 10, 3));
        assert_eq!(a.len(), 10);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sample_rows(5, 10, 3), vec![0, 1, 2, 3, 4]);
    }
}
