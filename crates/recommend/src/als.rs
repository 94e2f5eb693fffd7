//! Implicit-feedback matrix factorisation: weighted ALS (Hu, Koren & Volinsky 2008)
//! solved by conjugate gradient (Takács, Pilászy & Tikk 2011).
//!
//! Every interest w is a preference of 1 held with confidence 1 + alpha * w; every
//! other pair a preference of 0 with confidence 1. Users and items are solved in
//! turn, each by a few conjugate-gradient steps warm-started at its last factors.
//! Written here because no well-kept Rust crate fits implicit ALS: the ALS crates
//! on crates.io solve explicit ratings, without the confidence weights.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::matrix::{Csr, Interactions};
use crate::params::AlsParams;
use crate::topk::{Scored, TopK};

/// Rows of a factor matrix per task of the Gram matrix: a fixed split, so the
/// sum's order does not depend on the number of threads.
const GRAM_CHUNK: usize = 4096;

/// Fitted user and item factors.
#[derive(Debug, Clone)]
pub(crate) struct Als {
    pub factors: usize,
    /// Users x factors, row-major.
    pub users: Vec<f32>,
    /// Items x factors, row-major.
    pub items: Vec<f32>,
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent sums let the compiler vectorise; the order is fixed.
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// [`dot`] of `a` with four rows at once, each summed in [`dot`]'s order (so the
/// results are its results bit for bit), loading `a` once for the four.
#[inline]
fn dot4(a: &[f32], rows: [&[f32]; 4]) -> [f32; 4] {
    let whole = a.len() / 8 * 8;
    let mut acc = [[0f32; 8]; 4];
    for at in (0..whole).step_by(8) {
        let x = &a[at..at + 8];
        for (acc, row) in acc.iter_mut().zip(&rows) {
            let y = &row[at..at + 8];
            for l in 0..8 {
                acc[l] += x[l] * y[l];
            }
        }
    }
    let mut out = [0f32; 4];
    for ((out, acc), row) in out.iter_mut().zip(&acc).zip(&rows) {
        let mut tail = 0f32;
        for (x, y) in a[whole..].iter().zip(&row[whole..]) {
            tail += x * y;
        }
        *out = ((acc[0] + acc[4]) + (acc[1] + acc[5]))
            + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
            + tail;
    }
    out
}

/// `out[a] = dot(row a of the f x f matrix m, x)`, four rows at a time.
#[inline]
fn matvec(out: &mut [f32], m: &[f32], x: &[f32], f: usize) {
    let mut a = 0;
    while a + 4 <= f {
        let row = |r: usize| &m[r * f..(r + 1) * f];
        let d = dot4(x, [row(a), row(a + 1), row(a + 2), row(a + 3)]);
        out[a..a + 4].copy_from_slice(&d);
        a += 4;
    }
    for a in a..f {
        out[a] = dot(&m[a * f..(a + 1) * f], x);
    }
}

#[inline]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// YᵀY + reg·I of the factor rows `y` (n x f).
fn gram(y: &[f32], f: usize, reg: f32) -> Vec<f32> {
    let partials: Vec<Vec<f64>> = y
        .par_chunks(GRAM_CHUNK * f)
        .map(|chunk| {
            let mut g = vec![0f64; f * f];
            for row in chunk.chunks_exact(f) {
                for a in 0..f {
                    let ra = f64::from(row[a]);
                    let line = &mut g[a * f..(a + 1) * f];
                    for (b, &rb) in row.iter().enumerate().skip(a) {
                        line[b] += ra * f64::from(rb);
                    }
                }
            }
            g
        })
        .collect();
    let mut g = vec![0f64; f * f];
    for p in &partials {
        for (s, v) in g.iter_mut().zip(p) {
            *s += v;
        }
    }
    let mut out = vec![0f32; f * f];
    for a in 0..f {
        for b in a..f {
            out[a * f + b] = g[a * f + b] as f32;
            out[b * f + a] = g[a * f + b] as f32;
        }
        out[a * f + a] += reg;
    }
    out
}

/// Scratch vectors of one solve.
struct Cg {
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
}

/// Solves every row of `x` against the fixed factors `y`, with `m` the interests
/// (rows of `x` by rows of `y`).
fn solve(x: &mut [f32], y: &[f32], m: &Csr, params: &AlsParams, f: usize) {
    let yty = gram(y, f, params.regularization as f32);
    let alpha = params.alpha as f32;
    x.par_chunks_mut(f).enumerate().for_each_init(
        || Cg {
            r: vec![0.0; f],
            p: vec![0.0; f],
            ap: vec![0.0; f],
        },
        |cg, (row, xu)| {
            let (cols, vals) = m.row(row);
            // r = b - A x, with A = YᵀY + Yᵀ(C - I)Y + reg·I and b = Yᵀ C p.
            matvec(&mut cg.r, &yty, xu, f);
            for r in &mut cg.r {
                *r = -*r;
            }
            for (&i, &w) in cols.iter().zip(vals) {
                let yi = &y[i as usize * f..(i as usize + 1) * f];
                let c = 1.0 + alpha * w;
                axpy(&mut cg.r, c - (c - 1.0) * dot(yi, xu), yi);
            }
            cg.p.copy_from_slice(&cg.r);
            let mut rs_old = dot(&cg.r, &cg.r);
            for _ in 0..params.cg_steps {
                if rs_old < 1e-20 {
                    break;
                }
                matvec(&mut cg.ap, &yty, &cg.p, f);
                for (&i, &w) in cols.iter().zip(vals) {
                    let yi = &y[i as usize * f..(i as usize + 1) * f];
                    let c = 1.0 + alpha * w;
                    axpy(&mut cg.ap, (c - 1.0) * dot(yi, &cg.p), yi);
                }
                let step = rs_old / dot(&cg.p, &cg.ap);
                if !step.is_finite() {
                    break;
                }
                axpy(xu, step, &cg.p);
                axpy(&mut cg.r, -step, &cg.ap);
                let rs_new = dot(&cg.r, &cg.r);
                let beta = rs_new / rs_old;
                for (p, r) in cg.p.iter_mut().zip(&cg.r) {
                    *p = r + beta * *p;
                }
                rs_old = rs_new;
            }
        },
    );
}

/// Fits the factors on the training interactions.
pub(crate) fn fit(inter: &Interactions, params: &AlsParams, seed: u64) -> Als {
    let f = params.factors;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xA15A_15A1_5A15_A15A);
    let (n_users, n_items) = (inter.train.rows(), inter.train.cols);
    // Small positive starts, as `implicit` draws them.
    let mut users: Vec<f32> = (0..n_users * f)
        .map(|_| rng.r#gen::<f32>() * 0.01)
        .collect();
    let mut items: Vec<f32> = (0..n_items * f)
        .map(|_| rng.r#gen::<f32>() * 0.01)
        .collect();
    let by_item = inter.train.transpose();
    for _ in 0..params.iterations {
        solve(&mut users, &items, &inter.train, params, f);
        solve(&mut items, &users, &by_item, params, f);
    }
    Als {
        factors: f,
        users,
        items,
    }
}

impl Als {
    fn item(&self, i: u32) -> &[f32] {
        let f = self.factors;
        &self.items[i as usize * f..(i as usize + 1) * f]
    }

    /// The `k` best items for `user` among items some user showed interest in,
    /// not in `skip` (ascending), best first.
    pub fn recommend(
        &self,
        inter: &Interactions,
        user: usize,
        skip: &[u32],
        k: usize,
    ) -> Vec<Scored> {
        let f = self.factors;
        let xu = &self.users[user * f..(user + 1) * f];
        let mut top = TopK::new(k);
        let mut skip = skip.iter().peekable();
        // Candidates are scored four at a time (the scores are `dot`'s either way).
        let mut block = [0u32; 4];
        let mut filled = 0;
        for (i, &n) in inter.item_users.iter().enumerate() {
            let i = i as u32;
            while skip.next_if(|&&s| s < i).is_some() {}
            if skip.next_if(|&&s| s == i).is_some() || n == 0 {
                continue;
            }
            block[filled] = i;
            filled += 1;
            if filled == 4 {
                let scores = dot4(xu, block.map(|i| self.item(i)));
                for (&i, score) in block.iter().zip(scores) {
                    top.offer(i, score);
                }
                filled = 0;
            }
        }
        for &i in &block[..filled] {
            top.offer(i, dot(xu, self.item(i)));
        }
        top.into_sorted()
    }

    /// How much item `a` is like item `b`: the cosine of their factors.
    pub fn similarity(&self, a: u32, b: u32) -> f32 {
        let (x, y) = (self.item(a), self.item(b));
        let norm = (dot(x, x) * dot(y, y)).sqrt();
        if norm > 0.0 { dot(x, y) / norm } else { 0.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Solves A x = b by Gaussian elimination with partial pivoting (f64).
    fn exact(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
        let n = b.len();
        for c in 0..n {
            let p = (c..n)
                .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
                .unwrap();
            a.swap(c, p);
            b.swap(c, p);
            let pivot = a[c].clone();
            for r in c + 1..n {
                let m = a[r][c] / pivot[c];
                for (v, p) in a[r].iter_mut().zip(&pivot).skip(c) {
                    *v -= m * p;
                }
                b[r] -= m * b[c];
            }
        }
        let mut x = vec![0.0; n];
        for r in (0..n).rev() {
            let s: f64 = (r + 1..n).map(|k| a[r][k] * x[k]).sum();
            x[r] = (b[r] - s) / a[r][r];
        }
        x
    }

    #[test]
    fn conjugate_gradient_reaches_the_weighted_least_squares_solution() {
        // Three factors, four items; one user with interest 2 in item 1 and 1 in item 3.
        let f = 3;
        let y: Vec<f32> = vec![
            0.3, -0.1, 0.2, 0.5, 0.4, -0.2, -0.3, 0.2, 0.1, 0.1, 0.6, 0.3,
        ];
        let m = Csr {
            cols: 4,
            indptr: vec![0, 2],
            indices: vec![1, 3],
            values: vec![2.0, 1.0],
        };
        let params = AlsParams {
            factors: f,
            regularization: 0.1,
            alpha: 2.0,
            cg_steps: 3,
            ..AlsParams::default()
        };
        let mut x = vec![0.01f32; f];
        solve(&mut x, &y, &m, &params, f);
        // (YᵀY + Yᵀ(C - I)Y + λI) x = Yᵀ C p, with c = 1 + alpha · w.
        let row = |i: usize| -> Vec<f64> { (0..f).map(|a| f64::from(y[i * f + a])).collect() };
        let mut a = vec![vec![0.0; f]; f];
        let mut b = vec![0.0; f];
        for i in 0..4 {
            let yi = row(i);
            let c = match i {
                1 => 1.0 + 2.0 * 2.0,
                3 => 1.0 + 2.0 * 1.0,
                _ => 1.0,
            };
            for p in 0..f {
                for q in 0..f {
                    a[p][q] += c * yi[p] * yi[q];
                }
                if i == 1 || i == 3 {
                    b[p] += c * yi[p];
                }
            }
        }
        for (p, row) in a.iter_mut().enumerate() {
            row[p] += 0.1;
        }
        let want = exact(a, b);
        for (got, want) in x.iter().zip(&want) {
            assert!((f64::from(*got) - want).abs() < 1e-3, "{x:?} vs {want:?}");
        }
    }
}
