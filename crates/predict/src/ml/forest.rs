//! The bagged tree ensemble: CART trees (Gini, class weights) grown on binned
//! features from seeded bootstrap samples, flattened into arrays with leaf
//! probabilities counted from the bag rows that reached them.
//!
//! Grown here, not by linfa-trees, which re-sorts every feature at every node and
//! panicked on large bags (its `f32` weights cancel). On at most [`MAX_BINS`]
//! quantile bins per feature, as LightGBM grows them, a node's split search is one
//! pass over its rows and one over the bins (timings: docs/benchmarks.md).

use rand::{Rng, RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use super::CheckedMlParams;

/// Mixed into the caller's seed for the ensemble's generator.
const STREAM: u64 = 0x7472_6565_735f_7631;

/// Most bins per feature: features with fewer distinct values get one bin per
/// value, so their splits are exact.
const MAX_BINS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Node {
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
    Leaf {
        probability: f64,
    },
}

/// One tree, nodes in pre-order (children always after their parent).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    /// Index of the node reached by `row`: `x < threshold` goes left, as the bins
    /// split the training rows ([`Binned`]).
    fn leaf_of(&self, row: &[f64]) -> usize {
        let mut at = 0;
        while let Some(Node::Split {
            feature,
            threshold,
            left,
            right,
        }) = self.nodes.get(at)
        {
            at = if row[*feature] < *threshold {
                *left
            } else {
                *right
            };
        }
        at
    }

    fn probability(&self, row: &[f64]) -> f64 {
        match self.nodes.get(self.leaf_of(row)) {
            Some(Node::Leaf { probability }) => *probability,
            _ => 0.0,
        }
    }
}

/// The fitted ensemble.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Forest {
    /// Trees in seed order.
    pub trees: Vec<Tree>,
    /// Per feature: share of the ensemble's total Gini decrease (sums to 1, or all 0
    /// when no tree split).
    pub importance: Vec<f64>,
}

/// The training rows binned once for every tree: per feature, the split thresholds
/// in increasing order, and every row's bin, the number of thresholds at or below
/// its value (so bin `<= b` is exactly `x < thresholds[b]`, the rule of
/// [`Tree::leaf_of`]); a NaN takes the last bin and goes right at every split.
struct Binned {
    n: usize,
    thresholds: Vec<Vec<f64>>,
    /// Column-major `d x n`.
    bins: Vec<u8>,
}

impl Binned {
    /// Bins `d` features of `n` rows; `column(j)` is feature j of every row in order.
    fn new(n: usize, d: usize, column: impl Fn(usize) -> Vec<f64> + Sync) -> Binned {
        let columns: Vec<(Vec<f64>, Vec<u8>)> = (0..d)
            .into_par_iter()
            .map(|j| {
                let column = column(j);
                let mut values: Vec<f64> = column.iter().copied().filter(|v| !v.is_nan()).collect();
                values.sort_unstable_by(f64::total_cmp);
                let mut distinct = values.clone();
                distinct.dedup();
                let thresholds: Vec<f64> = if distinct.len() <= MAX_BINS {
                    // midway between neighbouring values, as CART splits
                    distinct.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect()
                } else {
                    let mut cuts: Vec<f64> = (1..MAX_BINS)
                        .map(|q| values[q * values.len() / MAX_BINS])
                        .collect();
                    cuts.dedup();
                    // a cut at the minimum would leave its left side empty
                    cuts.retain(|&c| c > values[0]);
                    cuts
                };
                let bins = column
                    .iter()
                    .map(|&v| {
                        let bin = if v.is_nan() {
                            thresholds.len()
                        } else {
                            thresholds.partition_point(|&t| t <= v)
                        };
                        bin as u8
                    })
                    .collect();
                (thresholds, bins)
            })
            .collect();
        let mut thresholds = Vec::with_capacity(d);
        let mut bins = Vec::with_capacity(n * d);
        for (t, b) in columns {
            thresholds.push(t);
            bins.extend(b);
        }
        Binned {
            n,
            thresholds,
            bins,
        }
    }

    fn bin(&self, feature: usize, row: usize) -> usize {
        usize::from(self.bins[feature * self.n + row])
    }
}

/// Binary Gini impurity `2p(1 - p)` of `positives` out of `n` (weighted or not).
fn gini(positives: f64, n: f64) -> f64 {
    if n <= 0.0 {
        return 0.0;
    }
    let p = positives / n;
    2.0 * p * (1.0 - p)
}

/// Per feature and bin: (weight, positive weight) of a node's rows.
type Histogram = Vec<[f64; 2]>;

/// Grows one tree on the bag.
struct Grower<'a> {
    binned: &'a Binned,
    /// Bag rows (indices into the training rows), their weights and labels.
    rows: &'a [usize],
    weights: &'a [f64],
    labels: &'a [bool],
    max_depth: usize,
    min_leaf: f64,
    nodes: Vec<Node>,
    /// Per node: its bag rows and their positives (unweighted).
    counts: Vec<[f64; 2]>,
}

/// The best split of a node: feature, last bin on the left, and the weights and
/// positive weights of the left side.
struct Best {
    feature: usize,
    bin: usize,
    left: [f64; 2],
}

impl Grower<'_> {
    fn histogram(&self, members: &[usize]) -> Histogram {
        let d = self.binned.thresholds.len();
        let mut histogram = vec![[0.0; 2]; d * MAX_BINS];
        for &m in members {
            let (row, w) = (self.rows[m], self.weights[m]);
            let positive = if self.labels[m] { w } else { 0.0 };
            for j in 0..d {
                let cell = &mut histogram[j * MAX_BINS + self.binned.bin(j, row)];
                cell[0] += w;
                cell[1] += positive;
            }
        }
        histogram
    }

    /// The split with the largest weighted Gini decrease that leaves `min_leaf`
    /// weight on both sides (first feature, then first bin, on ties).
    fn best_split(&self, histogram: &Histogram, total: [f64; 2]) -> Option<Best> {
        let parent = total[0] * gini(total[1], total[0]);
        let mut best: Option<(f64, Best)> = None;
        for (j, thresholds) in self.binned.thresholds.iter().enumerate() {
            let mut left = [0.0; 2];
            for b in 0..thresholds.len() {
                let cell = histogram[j * MAX_BINS + b];
                left[0] += cell[0];
                left[1] += cell[1];
                let right = [total[0] - left[0], total[1] - left[1]];
                if left[0] < self.min_leaf || right[0] < self.min_leaf {
                    continue;
                }
                let decrease =
                    parent - left[0] * gini(left[1], left[0]) - right[0] * gini(right[1], right[0]);
                if decrease > 1e-12 * total[0]
                    && best.as_ref().is_none_or(|(gain, _)| decrease > *gain)
                {
                    best = Some((
                        decrease,
                        Best {
                            feature: j,
                            bin: b,
                            left,
                        },
                    ));
                }
            }
        }
        best.map(|(_, split)| split)
    }

    /// Grows the subtree of `members` (positions in the bag) and returns its index.
    fn grow(
        &mut self,
        members: Vec<usize>,
        histogram: Histogram,
        total: [f64; 2],
        depth: usize,
    ) -> usize {
        let at = self.nodes.len();
        self.nodes.push(Node::Leaf { probability: 0.0 });
        let positives = members.iter().filter(|&&m| self.labels[m]).count();
        self.counts.push([members.len() as f64, positives as f64]);
        let pure = total[1] <= 0.0 || total[1] >= total[0];
        let split = if depth >= self.max_depth || pure || total[0] < 2.0 * self.min_leaf {
            None
        } else {
            self.best_split(&histogram, total)
        };
        let Some(Best {
            feature,
            bin,
            left: left_total,
        }) = split
        else {
            return at;
        };
        let (left, right): (Vec<usize>, Vec<usize>) = members
            .into_iter()
            .partition(|&m| self.binned.bin(feature, self.rows[m]) <= bin);
        // Build the smaller child's histogram; the larger one's is the rest.
        let left_is_smaller = left.len() <= right.len();
        let small = self.histogram(if left_is_smaller { &left } else { &right });
        let large: Histogram = histogram
            .iter()
            .zip(&small)
            .map(|(p, s)| [p[0] - s[0], p[1] - s[1]])
            .collect();
        let (left_histogram, right_histogram) = if left_is_smaller {
            (small, large)
        } else {
            (large, small)
        };
        let right_total = [total[0] - left_total[0], total[1] - left_total[1]];
        let left_index = self.grow(left, left_histogram, left_total, depth + 1);
        let right_index = self.grow(right, right_histogram, right_total, depth + 1);
        self.nodes[at] = Node::Split {
            feature,
            threshold: self.binned.thresholds[feature][bin],
            left: left_index,
            right: right_index,
        };
        at
    }
}

/// Largest bootstrap sample of one tree: larger bags scored the same holdout AUC in
/// more time (docs/benchmarks.md).
const MAX_BAG: usize = 10_000;

/// Fits one tree on the binned rows; returns it with its raw Gini decrease per
/// feature, from the unweighted bag rows that reached each node.
fn fit_tree(binned: &Binned, y: &[bool], params: &CheckedMlParams, seed: u64) -> (Tree, Vec<f64>) {
    let (n, d) = (binned.n, binned.thresholds.len());
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    // Each tree sees a bootstrap sample of at most MAX_BAG rows, which is what
    // keeps the ensemble fast on large populations.
    let rows: Vec<usize> = if params.trees > 1 {
        (0..n.min(MAX_BAG)).map(|_| rng.gen_range(0..n)).collect()
    } else if n > MAX_BAG {
        (0..MAX_BAG).map(|_| rng.gen_range(0..n)).collect()
    } else {
        (0..n).collect()
    };
    let m = rows.len();
    let labels: Vec<bool> = rows.iter().map(|&r| y[r]).collect();
    let positives = labels.iter().filter(|&&v| v).count();
    let negatives = m - positives;
    // Balanced class weights with mean 1, so `min_leaf` still reads as rows.
    let (w_pos, w_neg) = if positives == 0 || negatives == 0 {
        (1.0, 1.0)
    } else {
        (
            m as f64 / (2.0 * positives as f64),
            m as f64 / (2.0 * negatives as f64),
        )
    };
    let weights: Vec<f64> = labels
        .iter()
        .map(|&v| if v { w_pos } else { w_neg })
        .collect();
    let mut grower = Grower {
        binned,
        rows: &rows,
        weights: &weights,
        labels: &labels,
        max_depth: params.max_depth,
        min_leaf: params.min_leaf as f64,
        nodes: Vec::new(),
        counts: Vec::new(),
    };
    let members: Vec<usize> = (0..m).collect();
    let histogram = grower.histogram(&members);
    let total = [
        weights.iter().sum::<f64>(),
        labels
            .iter()
            .zip(&weights)
            .filter(|(v, _)| **v)
            .map(|(_, w)| w)
            .sum::<f64>(),
    ];
    grower.grow(members, histogram, total, 0);
    let (mut nodes, counts) = (grower.nodes, grower.counts);
    let base = positives as f64 / m.max(1) as f64;
    let mut decrease = vec![0.0; d];
    for i in 0..nodes.len() {
        match &mut nodes[i] {
            Node::Leaf { probability } => {
                let [rows, positives] = counts[i];
                *probability = (positives + base) / (rows + 1.0);
            }
            Node::Split {
                feature,
                left,
                right,
                ..
            } => {
                let impurity =
                    |node: usize| counts[node][0] * gini(counts[node][1], counts[node][0]);
                decrease[*feature] += impurity(i) - impurity(*left) - impurity(*right);
            }
        }
    }
    (Tree { nodes }, decrease)
}

impl Forest {
    /// Fits `params.trees` trees on `n` rows of `d` features, feature j of every
    /// row being `column(j)` (one feature at a time, never an n x d matrix); `None`
    /// without rows or when `y` is not one label a row.
    pub(crate) fn fit(
        n: usize,
        d: usize,
        column: impl Fn(usize) -> Vec<f64> + Sync,
        y: &[bool],
        params: &CheckedMlParams,
        seed: u64,
    ) -> Option<Forest> {
        if n == 0 || y.len() != n {
            return None;
        }
        let binned = Binned::new(n, d, column);
        // A stream of its own, apart from the holdout split drawn from the same seed.
        let mut master = Xoshiro256PlusPlus::seed_from_u64(seed ^ STREAM);
        let seeds: Vec<u64> = (0..params.trees).map(|_| master.next_u64()).collect();
        let fitted: Vec<(Tree, Vec<f64>)> = seeds
            .par_iter()
            .map(|&s| fit_tree(&binned, y, params, s))
            .collect();
        let mut trees = Vec::with_capacity(fitted.len());
        let mut importance = vec![0.0; d];
        for (tree, decrease) in fitted {
            for (total, v) in importance.iter_mut().zip(decrease) {
                *total += v.max(0.0);
            }
            trees.push(tree);
        }
        let total: f64 = importance.iter().sum();
        for v in &mut importance {
            *v = if total > 0.0 { *v / total } else { 0.0 };
        }
        Some(Forest { trees, importance })
    }

    /// Mean leaf probability over the trees for each of `n` row-major rows.
    pub fn predict(&self, x: &[f64], n: usize, d: usize) -> Vec<f64> {
        let t = self.trees.len().max(1) as f64;
        (0..n)
            .map(|i| {
                let row = &x[i * d..(i + 1) * d];
                self.trees
                    .iter()
                    .map(|tree| tree.probability(row))
                    .sum::<f64>()
                    / t
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ml::MlParams;

    /// Whether every leaf's probability is `(positives + base) / (rows + 1)` counted
    /// over all `n` rows of `x`, as a tree grown on every row has it.
    fn leaves_count_every_row(tree: &Tree, x: &[f64], y: &[bool], d: usize) -> bool {
        let n = y.len();
        let base = y.iter().filter(|&&v| v).count() as f64 / n as f64;
        let mut leaves: BTreeMap<usize, (f64, f64)> = BTreeMap::new();
        for (i, &label) in y.iter().enumerate() {
            let leaf = leaves
                .entry(tree.leaf_of(&x[i * d..(i + 1) * d]))
                .or_default();
            leaf.0 += 1.0;
            leaf.1 += f64::from(u8::from(label));
        }
        assert!(leaves.len() > 2, "the tree should split");
        leaves.iter().all(|(&leaf, &(rows, positives))| {
            let Node::Leaf { probability } = tree.nodes[leaf] else {
                panic!("row reached a split node");
            };
            (probability - (positives + base) / (rows + 1.0)).abs() < 1e-12
        })
    }

    #[test]
    fn a_single_tree_uses_every_row() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let (n, d) = (600, 2);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let (a, b): (f64, f64) = (rng.r#gen(), rng.r#gen());
            x.extend([a, b]);
            y.push(rng.gen_bool(if a > 0.5 { 0.8 } else { 0.2 }));
        }
        let params = |trees| {
            MlParams {
                trees,
                max_depth: 3,
                ..MlParams::default()
            }
            .check()
            .unwrap()
        };
        let column = |j: usize| -> Vec<f64> { (0..n).map(|i| x[i * d + j]).collect() };
        let single = Forest::fit(n, d, column, &y, &params(1), 7).unwrap();
        assert!(leaves_count_every_row(&single.trees[0], &x, &y, d));
        // A tree of an ensemble grows on its bootstrap bag instead.
        let bagged = Forest::fit(n, d, column, &y, &params(2), 7).unwrap();
        assert!(!leaves_count_every_row(&bagged.trees[0], &x, &y, d));
    }
}
