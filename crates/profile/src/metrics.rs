//! Cluster quality metrics, with scikit-learn's definitions; `None` where undefined.

use rayon::prelude::*;

use crate::matrix::{Matrix, chunk_count, chunk_range, ordered_sum, sq_dist};

pub(crate) use userlens_model::stats::sample_rows;

/// Rows per block of [`silhouettes`]' pair loop (at least; at most 16 blocks).
const SILHOUETTE_BLOCK: usize = 512;

/// Mean silhouette of each labeling `(labels, k)` over the rows in `sample`, computed
/// exactly (O(s² d)) in one pass that shares the pairwise distances between labelings.
/// `None` where fewer than 2 or more than `s - 1` clusters appear in the sample.
///
/// Each distance is computed once for its pair: the sample is cut into blocks, and
/// the task of block `I` adds the distances of its tiles `(I, J)`, `J >= I`, to its
/// own rows' sums and keeps what it owes the rows of each later block `J`, which are
/// added afterwards in block order. Every sum is formed in the same order whatever
/// the number of threads.
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
    // The sample column by column: one row's distances to a run of others are
    // then computed side by side, in vector lanes. Each row's per-cluster sums of
    // every labeling sit in one slice of `width` values, at the labeling's offset
    // plus the other row's cluster.
    let (s, d) = (sample.len(), x.d());
    let columns = Columns {
        values: (0..d)
            .flat_map(|k| sample.iter().map(move |&i| x.row(i)[k]))
            .collect(),
        rows: s,
    };
    let offsets: Vec<usize> = labelings
        .iter()
        .scan(0, |at, (_, k)| {
            let offset = *at;
            *at += k;
            Some(offset)
        })
        .collect();
    let width: usize = labelings.iter().map(|(_, k)| k).sum();
    // Per labeling, the slot of each sample row (its offset included).
    let slot_table: Vec<Vec<usize>> = labelings
        .iter()
        .zip(&offsets)
        .map(|((labels, _), offset)| {
            sample
                .iter()
                .map(|&i| offset + labels[i] as usize)
                .collect()
        })
        .collect();
    let block = SILHOUETTE_BLOCK.max(s.div_ceil(16)).max(1);
    let blocks = s.div_ceil(block);
    let range = |b: usize| b * block..((b + 1) * block).min(s);
    // Per block: its rows' sums, and what it owes each later block's rows.
    let tasks: Vec<(Vec<f64>, Vec<Vec<f64>>)> = (0..blocks)
        .into_par_iter()
        .map(|i| {
            let own_rows = range(i);
            let mut scratch = Distances::new(block, d);
            let mut own = vec![0.0; own_rows.len() * width];
            for (offset, a) in own_rows.clone().enumerate() {
                let dist = scratch.of_row(&columns, a, own_rows.clone());
                let sums = &mut own[offset * width..(offset + 1) * width];
                // Not the row itself.
                let (start, end) = (own_rows.start, own_rows.end);
                add_at(sums, &slot_table, start..a, &dist[..offset]);
                add_at(sums, &slot_table, a + 1..end, &dist[offset + 1..]);
            }
            let owed: Vec<Vec<f64>> = (i + 1..blocks)
                .map(|j| {
                    let their_rows = range(j);
                    let mut theirs = vec![0.0; their_rows.len() * width];
                    for (offset, a) in own_rows.clone().enumerate() {
                        let dist = scratch.of_row(&columns, a, their_rows.clone());
                        let sums = &mut own[offset * width..(offset + 1) * width];
                        add_at(sums, &slot_table, their_rows.clone(), dist);
                        for slots in &slot_table {
                            let slot = slots[a];
                            for (owed, &dist) in theirs.chunks_exact_mut(width).zip(dist) {
                                owed[slot] += dist;
                            }
                        }
                    }
                    theirs
                })
                .collect();
            (own, owed)
        })
        .collect();
    let mut sums: Vec<f64> = Vec::with_capacity(s * width);
    for j in 0..blocks {
        let mut block_sums = tasks[j].0.clone();
        for task in tasks.iter().take(j) {
            let (_, owed) = task;
            let from_earlier = &owed[j - (blocks - owed.len())];
            block_sums
                .iter_mut()
                .zip(from_earlier)
                .for_each(|(sum, v)| *sum += v);
        }
        sums.extend(block_sums);
    }
    let scores: Vec<Vec<f64>> = (0..s)
        .map(|a| {
            let row_sums = &sums[a * width..(a + 1) * width];
            labelings
                .iter()
                .zip(&offsets)
                .zip(&sizes)
                .zip(&slot_table)
                .map(|((((_, k), offset), size), slots)| {
                    point_silhouette(slots[a] - offset, &row_sums[*offset..offset + k], size)
                })
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

/// `sums[slots[b]] += value` for the rows `b` of `rows` and their `values` in
/// order, for every labeling's `slots`. Labelings are taken a few at a time, in one
/// loop: their chains of additions then overlap.
fn add_at(
    sums: &mut [f64],
    slot_table: &[Vec<usize>],
    rows: std::ops::Range<usize>,
    values: &[f64],
) {
    fn at(slots: &[usize], rows: std::ops::Range<usize>) -> &[usize] {
        &slots[rows]
    }
    let at = |slots| at(slots, rows.clone());
    for group in slot_table.chunks(GROUP) {
        match group {
            [a, b, c, d] => add_group(sums, [at(a), at(b), at(c), at(d)], values),
            [a, b, c] => add_group(sums, [at(a), at(b), at(c)], values),
            [a, b] => add_group(sums, [at(a), at(b)], values),
            others => {
                for a in others {
                    add_group(sums, [at(a)], values);
                }
            }
        }
    }
}

/// Labelings [`add_at`] adds in one loop.
const GROUP: usize = 4;

#[inline]
fn add_group<const N: usize>(sums: &mut [f64], slots: [&[usize]; N], values: &[f64]) {
    for (b, &value) in values.iter().enumerate() {
        for slots in slots {
            sums[slots[b]] += value;
        }
    }
}

/// Rows stored column by column: `values[k * rows + a]` is coordinate k of row a.
struct Columns {
    values: Vec<f64>,
    rows: usize,
}

impl Columns {
    fn column(&self, k: usize, rows: std::ops::Range<usize>) -> &[f64] {
        &self.values[k * self.rows..(k + 1) * self.rows][rows]
    }
}

/// Scratch of the distances from one row to a run of rows, each the bits of
/// `sq_dist(..).sqrt()`: the same four lanes over the dimensions in fours, then the
/// rest in order, computed for the whole run at once.
struct Distances {
    lanes: [Vec<f64>; 4],
    out: Vec<f64>,
    point: Vec<f64>,
}

impl Distances {
    fn new(rows: usize, d: usize) -> Distances {
        Distances {
            lanes: std::array::from_fn(|_| vec![0.0; rows]),
            out: vec![0.0; rows],
            point: vec![0.0; d],
        }
    }

    /// The distances from row `a` of `columns` to its rows `rows` (at most the
    /// scratch's length).
    fn of_row(&mut self, columns: &Columns, a: usize, rows: std::ops::Range<usize>) -> &[f64] {
        let n = rows.len();
        for (k, p) in self.point.iter_mut().enumerate() {
            *p = columns.values[k * columns.rows + a];
        }
        let (fours, rest) = self.point.as_chunks::<4>();
        for lane in &mut self.lanes {
            lane[..n].fill(0.0);
        }
        for (c, four) in fours.iter().enumerate() {
            for (l, (lane, &p)) in self.lanes.iter_mut().zip(four).enumerate() {
                let column = columns.column(4 * c + l, rows.clone());
                for (sum, &y) in lane[..n].iter_mut().zip(column) {
                    let t = p - y;
                    *sum += t * t;
                }
            }
        }
        let out = &mut self.out[..n];
        out.fill(0.0);
        for (k, &p) in rest.iter().enumerate() {
            let column = columns.column(4 * fours.len() + k, rows.clone());
            for (sum, &y) in out.iter_mut().zip(column) {
                let t = p - y;
                *sum += t * t;
            }
        }
        let [l0, l1, l2, l3] = &self.lanes;
        for ((((o, a), b), c), e) in out.iter_mut().zip(l0).zip(l1).zip(l2).zip(l3) {
            *o = (((a + b) + (c + e)) + *o).sqrt();
        }
        out
    }
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

/// A within-cluster dispersion at most this share of the whole is rounding, not spread.
const WITHIN_ROUNDING: f64 = 1e-12;

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
    // Clusters of identical rows leave only the rounding of their means.
    if within <= WITHIN_ROUNDING * (between + within) {
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
        // Means of three 0.1s are not 0.1 exactly: no spread all the same.
        let copies = Matrix::new(6, 1, vec![0.1, 0.1, 0.1, 0.7, 0.7, 0.7]);
        assert_eq!(calinski_harabasz(&copies, &[0, 0, 0, 1, 1, 1], 2), None);
    }

    /// The silhouette straight from its definition, one point at a time.
    fn direct_silhouette(x: &Matrix, sample: &[usize], labels: &[u32], k: usize) -> f64 {
        let dist = |a: usize, b: usize| sq_dist(x.row(a), x.row(b)).sqrt();
        let mut total = 0.0;
        for &a in sample {
            let mut sums = vec![0.0; k];
            let mut sizes = vec![0u64; k];
            for &b in sample {
                sizes[labels[b] as usize] += 1;
                if b != a {
                    sums[labels[b] as usize] += dist(a, b);
                }
            }
            total += point_silhouette(labels[a] as usize, &sums, &sizes);
        }
        total / sample.len() as f64
    }

    #[test]
    fn distances_side_by_side_are_sq_dist_bit_for_bit() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        for d in 1..=9 {
            let n = 37;
            let x = Matrix::new(
                n,
                d,
                (0..n * d).map(|_| rng.r#gen::<f64>() * 9.0 - 4.0).collect(),
            );
            let columns = Columns {
                values: (0..d)
                    .flat_map(|k| (0..n).map(move |i| (k, i)))
                    .map(|(k, i)| x.row(i)[k])
                    .collect(),
                rows: n,
            };
            let mut scratch = Distances::new(n, d);
            for a in [0, 5, 36] {
                let got = scratch.of_row(&columns, a, 3..n).to_vec();
                let want: Vec<f64> = (3..n).map(|b| sq_dist(x.row(a), x.row(b)).sqrt()).collect();
                let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "d = {d}, row {a}");
            }
        }
    }

    #[test]
    fn blocked_silhouettes_match_the_definition() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
        let (n, d) = (2600, 3);
        let x = Matrix::new(n, d, (0..n * d).map(|_| rng.r#gen::<f64>()).collect());
        let labelings: Vec<(Vec<u32>, usize)> = [2usize, 3, 7, 4, 5]
            .iter()
            .map(|&k| ((0..n).map(|_| rng.gen_range(0..k as u32)).collect(), k))
            .collect();
        let borrowed: Vec<(&[u32], usize)> =
            labelings.iter().map(|(l, k)| (l.as_slice(), *k)).collect();
        // 1,100 of 2,600 rows: three blocks, the last one short
        let sample = sample_rows(n, 1100, 9);
        let blocked = silhouettes(&x, &sample, &borrowed);
        for ((labels, k), got) in labelings.iter().zip(blocked) {
            let want = direct_silhouette(&x, &sample, labels, *k);
            let got = got.unwrap();
            assert!((got - want).abs() < 1e-12, "k = {k}: {got} vs {want}");
        }
    }
}
