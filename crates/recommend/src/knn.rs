//! Item-item similarity from co-occurrence (the SAR / item-kNN family).
//!
//! Two items are similar when the same users show interest in both. BM25 (the
//! default) is the dot product of BM25-weighted interest, as `implicit`'s
//! BM25Recommender computes it; cosine works on the interest values; Jaccard and
//! lift count users, as Microsoft's SAR does. A user's score of
//! an item is the sum, over the items they showed interest in, of their interest
//! times the similarity, over each item's `neighbours` most similar items.

use std::cell::RefCell;

use rayon::prelude::*;

use crate::matrix::{Csr, Interactions};
use crate::params::Similarity;
use crate::topk::{Scored, TopK};

/// BM25 constants of `implicit`'s BM25Recommender.
const BM25_K1: f64 = 1.2;
const BM25_B: f64 = 0.75;

/// Each item's most similar items.
#[derive(Debug, Clone)]
pub(crate) struct Knn {
    /// Items x items: each row's neighbours, ascending by index.
    pub neighbours: Csr,
}

/// Most items one user's history lends the similarities: a user with more (a
/// crawler, a reseller) lends their strongest, so that what one user adds to the
/// co-occurrences stays within its square, not the square of the catalogue.
pub(crate) const MAX_HISTORY: usize = 5_000;

/// The training matrix with each row of more than [`MAX_HISTORY`] items cut to its
/// most interest (ties: the lower item); `None` when no row is that long.
fn capped(x: &Csr) -> Option<Csr> {
    if (0..x.rows()).all(|u| x.indptr[u + 1] - x.indptr[u] <= MAX_HISTORY) {
        return None;
    }
    let mut out = Csr {
        cols: x.cols,
        indptr: Vec::with_capacity(x.indptr.len()),
        ..Csr::default()
    };
    out.indptr.push(0);
    for u in 0..x.rows() {
        let (items, values) = x.row(u);
        let mut kept: Vec<usize> = (0..items.len()).collect();
        if items.len() > MAX_HISTORY {
            let stronger = |&a: &usize, &b: &usize| {
                values[b]
                    .total_cmp(&values[a])
                    .then(items[a].cmp(&items[b]))
            };
            kept.select_nth_unstable_by(MAX_HISTORY - 1, stronger);
            kept.truncate(MAX_HISTORY);
            kept.sort_unstable();
        }
        out.indices.extend(kept.iter().map(|&e| items[e]));
        out.values.extend(kept.iter().map(|&e| values[e]));
        out.indptr.push(out.indices.len());
    }
    Some(out)
}

/// The values the similarity is computed on, one per entry of `x`.
fn weighted(x: &Csr, similarity: Similarity) -> Vec<f32> {
    let mut values = x.values.clone();
    match similarity {
        Similarity::Cosine => {}
        Similarity::Bm25 => {
            // As `implicit` weighs its item-user matrix: items are the documents
            // and users the terms, so a user of few items says more about them.
            let mut seen = vec![false; x.cols];
            for &i in &x.indices {
                seen[i as usize] = true;
            }
            let n = seen.iter().filter(|&&s| s).count() as f64;
            // ln(n / (1 + len)), and exactly 0 from 1 + len = n on: `ln_1p` and `ln`
            // of the same number can differ in the last bit.
            let idf: Vec<f64> = (0..x.rows())
                .map(|u| {
                    let len = x.row(u).0.len() as f64;
                    if 1.0 + len >= n {
                        0.0
                    } else {
                        (n.ln() - len.ln_1p()).max(0.0)
                    }
                })
                .collect();
            let mut lengths = vec![0f64; x.cols];
            for (&i, &v) in x.indices.iter().zip(&x.values) {
                lengths[i as usize] += f64::from(v);
            }
            let average = lengths.iter().sum::<f64>() / n.max(1.0);
            for (u, idf) in idf.iter().enumerate() {
                let (a, b) = (x.indptr[u], x.indptr[u + 1]);
                for e in a..b {
                    let v = f64::from(x.values[e]);
                    let length = lengths[x.indices[e] as usize];
                    let norm = if average > 0.0 {
                        (1.0 - BM25_B) + BM25_B * length / average
                    } else {
                        1.0
                    };
                    values[e] = (v * (BM25_K1 + 1.0) / (BM25_K1 * norm + v) * idf) as f32;
                }
            }
        }
        Similarity::Jaccard | Similarity::Lift => values.fill(1.0),
    }
    values
}

/// Accumulator of one item's co-occurrences (reused across items by a thread).
/// Every value added is at least 0, so a sum still at 0 marks an item not yet
/// touched (or touched only by zeros, which no caller keeps).
struct Scratch {
    acc: Vec<f64>,
    /// The items with a positive sum, in the order they first got one: the first
    /// `len`, with room for every item and one more, so that noting one takes no
    /// branch (which of the products first touch an item is not predictable).
    touched: Vec<u32>,
    len: usize,
}

thread_local! {
    /// A thread's accumulator of users' scores in [`Knn::recommend`].
    static SCORES: RefCell<Scratch> = RefCell::new(Scratch::new(0));
    /// A thread's marks of the items [`Knn::similarities`] looks for (place + 1).
    static MARKS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

impl Scratch {
    fn new(items: usize) -> Scratch {
        Scratch {
            acc: vec![0.0; items],
            touched: vec![0; items + 1],
            len: 0,
        }
    }

    /// Room for `items` items (cleared scratch only).
    fn fit(&mut self, items: usize) {
        if self.acc.len() < items {
            *self = Scratch::new(items);
        }
    }

    #[inline]
    fn add(&mut self, j: u32, v: f64) {
        let sum = &mut self.acc[j as usize];
        // Written always, kept (`len` moved past it) only for a first positive sum.
        self.touched[self.len] = j;
        self.len += usize::from((*sum == 0.0) & (v > 0.0));
        *sum += v;
    }

    /// The items with a positive sum, in the order they first got one.
    fn touched(&self) -> &[u32] {
        &self.touched[..self.len]
    }

    fn clear(&mut self) {
        for &j in &self.touched[..self.len] {
            self.acc[j as usize] = 0.0;
        }
        self.len = 0;
    }
}

/// Fits the similarities on the training interactions, each user's history cut to
/// [`MAX_HISTORY`] items.
pub(crate) fn fit(inter: &Interactions, similarity: Similarity, neighbours: usize) -> Knn {
    let cut = capped(inter.positive());
    let x = cut.as_ref().unwrap_or(inter.positive());
    let values = weighted(x, similarity);
    let mut xt = x.transpose_with(&values);
    let (entries, run_of) = runs(x, &values);
    drop(values);
    // The transpose names each user by the place of their run.
    let users = std::mem::take(&mut xt.indices);
    let rows = if u32::try_from(entries.len()).is_ok() {
        // In place of the users: no more memory.
        let mut places = users;
        places
            .par_iter_mut()
            .for_each(|u| *u = run_of[*u as usize] as u32);
        drop(run_of);
        similar(&xt, &places, &entries, similarity, neighbours)
    } else {
        let places: Vec<usize> = users.par_iter().map(|&u| run_of[u as usize]).collect();
        drop((users, run_of));
        similar(&xt, &places, &entries, similarity, neighbours)
    };
    let mut csr = Csr {
        cols: x.cols,
        indptr: vec![0],
        ..Csr::default()
    };
    for row in rows {
        for (j, s) in row {
            csr.indices.push(j);
            csr.values.push(s);
        }
        csr.indptr.push(csr.indices.len());
    }
    Knn { neighbours: csr }
}

/// Each row of `x` as one run: its length, then its items beside their `values`;
/// and where each run starts. Reading a row from anywhere in memory is then one
/// miss, not three (row bounds, items, values).
fn runs(x: &Csr, values: &[f32]) -> (Vec<(u32, f32)>, Vec<usize>) {
    let mut entries: Vec<(u32, f32)> = Vec::with_capacity(x.indices.len() + x.rows());
    let mut run_of = Vec::with_capacity(x.rows());
    for u in 0..x.rows() {
        let (a, b) = (x.indptr[u], x.indptr[u + 1]);
        run_of.push(entries.len());
        entries.push(((b - a) as u32, 0.0));
        entries.extend(
            x.indices[a..b]
                .iter()
                .copied()
                .zip(values[a..b].iter().copied()),
        );
    }
    (entries, run_of)
}

/// A place in [`fit`]'s runs: 32 bits while they fit, else a `usize`.
trait Place: Copy + Sync {
    fn at(self) -> usize;
}

impl Place for u32 {
    fn at(self) -> usize {
        self as usize
    }
}

impl Place for usize {
    fn at(self) -> usize {
        self
    }
}

/// Each item's `neighbours` most similar items (ascending), from the transpose
/// `xt` whose users are the places `runs` of their runs in `entries`.
fn similar<P: Place>(
    xt: &Csr,
    runs: &[P],
    entries: &[(u32, f32)],
    similarity: Similarity,
    neighbours: usize,
) -> Vec<Vec<(u32, f32)>> {
    let row = |at: usize| {
        let len = entries[at].0 as usize;
        &entries[at + 1..at + 1 + len]
    };
    let items = xt.rows();
    // Σ_u x_ui² per item: the squared norm (cosine) or the user count (binary).
    let norms: Vec<f64> = (0..items)
        .map(|i| {
            xt.values[xt.indptr[i]..xt.indptr[i + 1]]
                .iter()
                .map(|&v| f64::from(v) * f64::from(v))
                .sum()
        })
        .collect();
    (0..items)
        .into_par_iter()
        .map_init(
            || Scratch::new(items),
            |s, i| {
                let (a, b) = (xt.indptr[i], xt.indptr[i + 1]);
                for (&run, &xui) in runs[a..b].iter().zip(&xt.values[a..b]) {
                    for &(j, xuj) in row(run.at()) {
                        s.add(j, f64::from(xui) * f64::from(xuj));
                    }
                }
                let mut top = TopK::new(neighbours);
                let ni = norms[i];
                for &j in s.touched() {
                    let (ju, both) = (j as usize, s.acc[j as usize]);
                    if ju == i || both <= 0.0 {
                        continue;
                    }
                    let nj = norms[ju];
                    let sim = match similarity {
                        Similarity::Bm25 => both,
                        Similarity::Cosine => both / (ni * nj).sqrt(),
                        Similarity::Jaccard => both / (ni + nj - both),
                        Similarity::Lift => both / (ni * nj),
                    };
                    if sim.is_finite() && sim > 0.0 {
                        top.offer(j, sim as f32);
                    }
                }
                s.clear();
                let mut kept: Vec<(u32, f32)> = top
                    .into_sorted()
                    .iter()
                    .map(|c| (c.item, c.score))
                    .collect();
                kept.sort_unstable_by_key(|&(j, _)| j);
                kept
            },
        )
        .collect()
}

impl Knn {
    /// The `k` best items for `user` not in `skip` (ascending), best first; only
    /// items with a positive score.
    pub fn recommend(
        &self,
        inter: &Interactions,
        user: usize,
        skip: &[u32],
        k: usize,
    ) -> Vec<Scored> {
        let (items, interest) = inter.positive().row(user);
        SCORES.with_borrow_mut(|scores| {
            scores.fit(self.neighbours.cols);
            // Each item's score is summed in history order from 0, on any thread
            // count: the same bits as a stable sort of the products by item,
            // without the sort.
            for (&i, &r) in items.iter().zip(interest) {
                let (js, sims) = self.neighbours.row(i as usize);
                for (&j, &s) in js.iter().zip(sims) {
                    scores.add(j, f64::from(r) * f64::from(s));
                }
            }
            // The k best do not depend on the order they are offered in.
            let mut top = TopK::new(k);
            for &j in scores.touched() {
                let sum = scores.acc[j as usize];
                if sum > 0.0 && !top.refuses(sum as f32) && skip.binary_search(&j).is_err() {
                    top.offer(j, sum as f32);
                }
            }
            scores.clear();
            top.into_sorted()
        })
    }

    /// [`Knn::similarity`] of every item in `from` to each of `to`: row `t` of the
    /// result (`to.len()` rows of `from.len()`) holds `to[t]`'s, from one pass over
    /// the neighbours of `from`.
    pub fn similarities(&self, from: &[u32], to: &[u32]) -> Vec<f32> {
        let mut table = vec![0f32; to.len() * from.len()];
        MARKS.with_borrow_mut(|marks| {
            if marks.len() < self.neighbours.cols {
                marks.resize(self.neighbours.cols, 0);
            }
            for (t, &b) in to.iter().enumerate() {
                marks[b as usize] = t as u32 + 1;
            }
            for (h, &a) in from.iter().enumerate() {
                let (js, sims) = self.neighbours.row(a as usize);
                for (&j, &s) in js.iter().zip(sims) {
                    if let Some(t) = marks[j as usize].checked_sub(1) {
                        table[t as usize * from.len() + h] = s;
                    }
                }
            }
            // An item twice in `to` has the row of its last place: copied to the others.
            for (t, &b) in to.iter().enumerate() {
                let marked = marks[b as usize] as usize - 1;
                if marked != t {
                    table.copy_within(
                        marked * from.len()..(marked + 1) * from.len(),
                        t * from.len(),
                    );
                }
            }
            for &b in to {
                marks[b as usize] = 0;
            }
        });
        table
    }

    /// The similarity of `a` to `b` (0 when `b` is not among `a`'s neighbours).
    pub fn similarity(&self, a: u32, b: u32) -> f32 {
        let (js, sims) = self.neighbours.row(a as usize);
        js.binary_search(&b).map_or(0.0, |at| sims[at])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_past_the_cap_lends_its_strongest_items() {
        let long = MAX_HISTORY + 3;
        // User 0: interest rising by item but for the six first, tied at the bottom;
        // user 1: two items.
        let mut values: Vec<f32> = (0..long).map(|i| i as f32).collect();
        values[..6].fill(0.5);
        values.extend([1.0, 2.0]);
        let mut indices: Vec<u32> = (0..long as u32).collect();
        indices.extend([4, 9]);
        let x = Csr {
            cols: long,
            indptr: vec![0, long, long + 2],
            indices,
            values,
        };
        let cut = capped(&x).unwrap();
        let (items, kept) = cut.row(0);
        assert_eq!(items.len(), MAX_HISTORY);
        // Dropped: three of the six weakest, tied, the higher items.
        let dropped: Vec<u32> = (0..long as u32).filter(|i| !items.contains(i)).collect();
        assert_eq!(dropped, [3, 4, 5]);
        assert!(items.is_sorted());
        assert_eq!((items[3], kept[3]), (6, 6.0));
        assert_eq!(cut.row(1), x.row(1));
        let short = Csr {
            cols: 3,
            indptr: vec![0, 2],
            indices: vec![0, 2],
            values: vec![1.0, 1.0],
        };
        assert!(capped(&short).is_none());
    }

    #[test]
    fn runs_at_either_width_give_the_same_neighbours() {
        // Three users' rows of four items.
        let x = Csr {
            cols: 4,
            indptr: vec![0, 2, 5, 7],
            indices: vec![0, 1, 1, 2, 3, 0, 3],
            values: vec![1.0, 2.0, 1.0, 0.5, 3.0, 4.0, 1.5],
        };
        let mut xt = x.transpose_with(&x.values);
        let (entries, run_of) = runs(&x, &x.values);
        assert_eq!(entries[run_of[1]], (3, 0.0));
        assert_eq!(
            &entries[run_of[1] + 1..run_of[2]],
            &[(1, 1.0), (2, 0.5), (3, 3.0)]
        );
        let users = std::mem::take(&mut xt.indices);
        let wide: Vec<usize> = users.iter().map(|&u| run_of[u as usize]).collect();
        let narrow: Vec<u32> = wide.iter().map(|&r| r as u32).collect();
        for similarity in [Similarity::Cosine, Similarity::Jaccard] {
            let a = similar(&xt, &wide, &entries, similarity, 2);
            let b = similar(&xt, &narrow, &entries, similarity, 2);
            assert_eq!(a, b);
            // Items 0 and 3 share user 2; item 2 shares user 1 with items 1 and 3.
            assert_eq!(a[2].iter().map(|&(j, _)| j).collect::<Vec<_>>(), [1, 3]);
            assert!(a[0].iter().any(|&(j, _)| j == 3));
        }
    }

    #[test]
    fn similarities_are_those_of_one_pair_at_a_time() {
        // Five items, each row's neighbours ascending; item 2 has none.
        let neighbours = Csr {
            cols: 5,
            indptr: vec![0, 2, 3, 3, 5, 6],
            indices: vec![1, 3, 0, 0, 4, 2],
            values: vec![0.5, 0.25, 0.75, 0.125, 2.0, 1.5],
        };
        let knn = Knn { neighbours };
        let from = [0, 3, 2, 4, 1];
        // Item 3 twice.
        let to = [3, 0, 4, 3, 2];
        let table = knn.similarities(&from, &to);
        for (t, &b) in to.iter().enumerate() {
            for (h, &a) in from.iter().enumerate() {
                let want = knn.similarity(a, b);
                assert_eq!(table[t * from.len() + h], want, "{a} to {b}");
            }
        }
        assert_eq!(table.iter().filter(|&&s| s > 0.0).count(), 6);
        // The marks were cleared: a second call finds only its own items.
        let again = knn.similarities(&from, &[1]);
        let want: Vec<f32> = from.iter().map(|&a| knn.similarity(a, 1)).collect();
        assert_eq!(again, want);
    }
}
