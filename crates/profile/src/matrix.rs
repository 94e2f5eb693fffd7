//! The scaled feature matrix and the deterministic parallel reductions over it.
//!
//! Every parallel loop works on fixed blocks of [`CHUNK_ROWS`] rows and reduces the
//! per-block partial results in block order. The block size does not depend on the
//! number of threads, so every floating-point sum is formed in the same order on any
//! machine and results are bit-identical for a given input and seed.

use std::cmp::Ordering;
use std::ops::Range;

use rayon::prelude::*;

/// Rows per parallel work unit.
pub(crate) const CHUNK_ROWS: usize = 1024;

/// Row range of block `chunk` in a matrix of `n` rows.
pub(crate) fn chunk_range(chunk: usize, n: usize) -> Range<usize> {
    let start = (chunk * CHUNK_ROWS).min(n);
    start..(start + CHUNK_ROWS).min(n)
}

/// Number of blocks covering `n` rows.
pub(crate) fn chunk_count(n: usize) -> usize {
    n.div_ceil(CHUNK_ROWS)
}

/// Sum of `values` formed block by block, then across blocks in order.
pub(crate) fn ordered_sum(values: &[f64]) -> f64 {
    let partial: Vec<f64> = values
        .par_chunks(CHUNK_ROWS)
        .map(|chunk| chunk.iter().sum::<f64>())
        .collect();
    partial.iter().sum()
}

/// Squared Euclidean distance.
pub(crate) fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    // Four running sums: one is a chain of dependent additions, which the compiler
    // may not reorder, and four fill the vector lanes. The order of the additions
    // is fixed, so the result is the same on every run.
    let (a4, a_rest) = a.as_chunks::<4>();
    let (b4, b_rest) = b.as_chunks::<4>();
    let mut lanes = [0.0f64; 4];
    for (x, y) in a4.iter().zip(b4) {
        for lane in 0..4 {
            let t = x[lane] - y[lane];
            lanes[lane] += t * t;
        }
    }
    let rest: f64 = a_rest
        .iter()
        .zip(b_rest)
        .map(|(x, y)| {
            let t = x - y;
            t * t
        })
        .sum();
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + rest
}

/// Lexicographic order of two points, with a total order on floats.
pub(crate) fn lex_cmp(a: &[f64], b: &[f64]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.total_cmp(y))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// A dense row-major `n x d` matrix of finite values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Matrix {
    n: usize,
    d: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// Wraps row-major `data`; `data.len()` must be `n * d`.
    pub(crate) fn new(n: usize, d: usize, data: Vec<f64>) -> Self {
        debug_assert_eq!(data.len(), n * d);
        Matrix { n, d, data }
    }

    /// Number of rows (users).
    pub(crate) fn n(&self) -> usize {
        self.n
    }

    /// Number of columns (features).
    pub(crate) fn d(&self) -> usize {
        self.d
    }

    /// The row-major values.
    pub(crate) fn data(&self) -> &[f64] {
        &self.data
    }

    /// Row `i`.
    pub(crate) fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.d..(i + 1) * self.d]
    }

    /// Per-cluster coordinate sums (`k x d`, row-major) and member counts.
    pub(crate) fn cluster_sums(&self, labels: &[u32], k: usize) -> (Vec<f64>, Vec<u64>) {
        let d = self.d;
        let parts: Vec<(Vec<f64>, Vec<u64>)> = (0..chunk_count(self.n))
            .into_par_iter()
            .map(|chunk| {
                let mut sums = vec![0.0; k * d];
                let mut counts = vec![0u64; k];
                for i in chunk_range(chunk, self.n) {
                    let c = labels[i] as usize;
                    counts[c] += 1;
                    add_into(&mut sums[c * d..(c + 1) * d], self.row(i));
                }
                (sums, counts)
            })
            .collect();
        merge_parts(parts, k * d, k)
    }

    /// Per-cluster means (`k x d`) and member counts; an empty cluster's mean is zero.
    pub(crate) fn cluster_means(&self, labels: &[u32], k: usize) -> (Vec<f64>, Vec<u64>) {
        let (mut sums, counts) = self.cluster_sums(labels, k);
        if self.d > 0 {
            for (mean, &count) in sums.chunks_exact_mut(self.d).zip(&counts) {
                if count > 0 {
                    let count = count as f64;
                    mean.iter_mut().for_each(|v| *v /= count);
                }
            }
        }
        (sums, counts)
    }

    /// Mean of every column.
    pub(crate) fn column_means(&self) -> Vec<f64> {
        let labels = vec![0u32; self.n];
        self.cluster_means(&labels, 1).0
    }

    /// Mean over columns of the population variance of each column.
    pub(crate) fn mean_variance(&self) -> f64 {
        if self.n == 0 || self.d == 0 {
            return 0.0;
        }
        let means = self.column_means();
        let per_row: Vec<f64> = (0..self.n)
            .into_par_iter()
            .map(|i| sq_dist(self.row(i), &means))
            .collect();
        ordered_sum(&per_row) / (self.n * self.d) as f64
    }

    /// Number of distinct rows.
    pub(crate) fn distinct_rows(&self) -> usize {
        let mut order: Vec<usize> = (0..self.n).collect();
        order.par_sort_unstable_by(|&a, &b| lex_cmp(self.row(a), self.row(b)));
        let distinct_pairs = order
            .windows(2)
            .filter(|w| self.row(w[0]) != self.row(w[1]))
            .count();
        if self.n == 0 { 0 } else { distinct_pairs + 1 }
    }
}

/// Adds `row` into `acc` element-wise.
pub(crate) fn add_into(acc: &mut [f64], row: &[f64]) {
    acc.iter_mut().zip(row).for_each(|(a, v)| *a += v);
}

/// Adds per-block `(sums, counts)` in block order.
pub(crate) fn merge_parts(
    parts: Vec<(Vec<f64>, Vec<u64>)>,
    sums_len: usize,
    k: usize,
) -> (Vec<f64>, Vec<u64>) {
    let mut sums = vec![0.0; sums_len];
    let mut counts = vec![0u64; k];
    for (part_sums, part_counts) in parts {
        add_into(&mut sums, &part_sums);
        counts
            .iter_mut()
            .zip(&part_counts)
            .for_each(|(c, p)| *c += p);
    }
    (sums, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_rows() {
        let m = Matrix::new(4, 2, vec![1.0, 2.0, 0.0, 0.0, 1.0, 2.0, -0.0, 0.0]);
        assert_eq!(m.distinct_rows(), 2);
        assert_eq!(Matrix::new(0, 2, vec![]).distinct_rows(), 0);
    }

    #[test]
    fn cluster_means_and_variance() {
        let m = Matrix::new(4, 1, vec![1.0, 3.0, 10.0, 20.0]);
        let (means, counts) = m.cluster_means(&[0, 0, 1, 1], 2);
        assert_eq!(means, vec![2.0, 15.0]);
        assert_eq!(counts, vec![2, 2]);
        let v = Matrix::new(2, 2, vec![0.0, 0.0, 2.0, 4.0]).mean_variance();
        assert_eq!(v, (1.0 + 4.0) / 2.0);
    }

    #[test]
    fn ordered_sum_matches_across_chunk_boundaries() {
        let values: Vec<f64> = (0..5000).map(|i| i as f64 * 0.5).collect();
        assert_eq!(ordered_sum(&values), 0.5 * 4999.0 * 5000.0 / 2.0);
    }
}
