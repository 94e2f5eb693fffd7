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

use crate::kernels::{axpy, axpy_into4, axpy4, dot, dot4, dots8, matvec, pack};
use crate::matrix::{Csr, Interactions};
use crate::params::AlsParams;
use crate::topk::{Scored, TopK};

/// Rows of a factor matrix per task of the Gram matrix: a fixed split, so the
/// sum's order does not depend on the number of threads.
const GRAM_CHUNK: usize = 4096;

/// Fixed factors of more bytes than this are swept ([`solve_swept`]) rather than
/// gathered row by row ([`solve`]): the same bits, faster once they leave the cache.
const SWEEP_ABOVE_BYTES: usize = 128 << 20;

/// Fitted user and item factors.
#[derive(Debug, Clone)]
pub(crate) struct Als {
    pub factors: usize,
    /// Users x factors, row-major.
    pub users: Vec<f32>,
    /// Items x factors, row-major.
    pub items: Vec<f32>,
    /// The items from the largest norm down (`by_norm`), in blocks of eight, factor
    /// by factor: `packed[b * factors + l]` holds factor l of the items
    /// `by_norm[8b..8b+8]` (zeros past the last item), for [`dots8`].
    packed: Vec<[f32; 8]>,
    /// The items by norm, largest first (NaN first, ties by index), each with its
    /// norm: no user scores an item above the product of its norm and theirs.
    by_norm: Vec<(u32, f64)>,
}

/// For each interest (row i of `y`, weight w) in turn, `out += coef(w, dot(yᵢ, v)) yᵢ`:
/// four rows at a time, with [`dot4`] and [`axpy4`], so the sums are those of one
/// row after another bit for bit.
#[inline]
fn add_interests(
    out: &mut [f32],
    v: &[f32],
    y: &[f32],
    cols: &[u32],
    vals: &[f32],
    f: usize,
    coef: impl Fn(f32, f32) -> f32,
) {
    let row = |i: u32| &y[i as usize * f..(i as usize + 1) * f];
    let (c4, v4) = (cols.chunks_exact(4), vals.chunks_exact(4));
    let (cr, vr) = (c4.remainder(), v4.remainder());
    for (c, w) in c4.zip(v4) {
        let rows = [row(c[0]), row(c[1]), row(c[2]), row(c[3])];
        let d = dot4(v, rows);
        let a = [
            coef(w[0], d[0]),
            coef(w[1], d[1]),
            coef(w[2], d[2]),
            coef(w[3], d[3]),
        ];
        axpy4(out, a, rows);
    }
    for (&i, &w) in cr.iter().zip(vr) {
        let yi = row(i);
        axpy(out, coef(w, dot(yi, v)), yi);
    }
}

/// YᵀY + reg·I of the factor rows `y` (n x f).
fn gram(y: &[f32], f: usize, reg: f32) -> Vec<f32> {
    let partials: Vec<Vec<f64>> = y
        .par_chunks(GRAM_CHUNK * f)
        .map(|chunk| {
            let mut g = vec![0f64; f * f];
            // Four rows per pass over g: each entry adds them in row order, as one
            // row at a time would, with a quarter of the loads and stores of g.
            let mut quad = vec![0f64; 4 * f];
            let quads = chunk.chunks_exact(4 * f);
            let rest = quads.remainder();
            for rows in quads {
                for (w, &v) in quad.iter_mut().zip(rows) {
                    *w = f64::from(v);
                }
                let (r0, r1, r2, r3) = (
                    &quad[..f],
                    &quad[f..2 * f],
                    &quad[2 * f..3 * f],
                    &quad[3 * f..],
                );
                for a in 0..f {
                    let (a0, a1, a2, a3) = (r0[a], r1[a], r2[a], r3[a]);
                    let line = &mut g[a * f + a..(a + 1) * f];
                    let n = line.len();
                    let (b0, b1, b2, b3) =
                        (&r0[a..][..n], &r1[a..][..n], &r2[a..][..n], &r3[a..][..n]);
                    for ((((s, b0), b1), b2), b3) in line.iter_mut().zip(b0).zip(b1).zip(b2).zip(b3)
                    {
                        let mut v = *s;
                        v += a0 * b0;
                        v += a1 * b1;
                        v += a2 * b2;
                        v += a3 * b3;
                        *s = v;
                    }
                }
            }
            for row in rest.chunks_exact(f) {
                for a in 0..f {
                    let ra = f64::from(row[a]);
                    let line = &mut g[a * f + a..(a + 1) * f];
                    for (s, &rb) in line.iter_mut().zip(&row[a..]) {
                        *s += ra * f64::from(rb);
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

/// Whether a row's solve stops: its residual's squared norm is below 1e-20.
fn converged(rs: f32) -> bool {
    rs < 1e-20
}

/// `r = -(YᵀY + reg·I) x`: the residual `b - A x` before the interests' terms.
fn start(r: &mut [f32], yty: &[[f32; 8]], x: &[f32], f: usize) {
    matvec(r, yty, x, f);
    for r in r {
        *r = -*r;
    }
}

/// An interest's term of the residual, `b - A x` with A = YᵀY + Yᵀ(C - I)Y + reg·I
/// and b = Yᵀ C p, from its weight and `dot(y, x)`.
fn residual_term(alpha: f32) -> impl Fn(f32, f32) -> f32 + Copy {
    move |w, d| {
        let c = 1.0 + alpha * w;
        c - (c - 1.0) * d
    }
}

/// An interest's term of `A p`, from its weight and `dot(y, p)`.
fn product_term(alpha: f32) -> impl Fn(f32, f32) -> f32 + Copy {
    move |w, d| {
        let c = 1.0 + alpha * w;
        (c - 1.0) * d
    }
}

/// Completes a conjugate-gradient step once `ap` holds `A p`: moves `x` and `r` and
/// turns `p`; the new squared residual, or `None` when the step is not finite (the
/// row's solve stops there).
fn step(x: &mut [f32], r: &mut [f32], p: &mut [f32], ap: &[f32], rs_old: f32) -> Option<f32> {
    let step = rs_old / dot(p, ap);
    if !step.is_finite() {
        return None;
    }
    axpy(x, step, p);
    axpy(r, -step, ap);
    let rs_new = dot(r, r);
    let beta = rs_new / rs_old;
    for (p, r) in p.iter_mut().zip(r.iter()) {
        *p = r + beta * *p;
    }
    Some(rs_new)
}

/// Scratch vectors of one row's solve.
struct Cg {
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
    /// The rows of `y` a row has interests in, side by side, and their indices there.
    rows: Vec<f32>,
    order: Vec<u32>,
}

/// Solves every row of `x` against the fixed factors `y`, with `m` the interests
/// (rows of `x` by rows of `y`), one row after another.
fn solve(x: &mut [f32], y: &[f32], m: &Csr, params: &AlsParams, f: usize) {
    let gather_from = if std::mem::size_of_val(y) > GATHER_ABOVE_BYTES {
        GATHER_FROM
    } else {
        usize::MAX
    };
    solve_gathering(x, y, m, params, f, gather_from);
}

/// [`solve`], gathering the rows of `y` of every row with at least `gather_from`
/// interests.
fn solve_gathering(
    x: &mut [f32],
    y: &[f32],
    m: &Csr,
    params: &AlsParams,
    f: usize,
    gather_from: usize,
) {
    let yty = pack(&gram(y, f, params.regularization as f32), f);
    let alpha = params.alpha as f32;
    x.par_chunks_mut(f).enumerate().for_each_init(
        || Cg {
            r: vec![0.0; f],
            p: vec![0.0; f],
            ap: vec![0.0; f],
            rows: Vec::new(),
            order: Vec::new(),
        },
        |cg, (row, xu)| {
            let (cols, vals) = m.row(row);
            // A row with many interests in factors bigger than the cache gathers
            // their rows side by side once, for the passes of its steps to read
            // in order rather than from all over memory.
            let (y, cols) = if cols.len() >= gather_from {
                cg.rows.clear();
                for &c in cols {
                    cg.rows
                        .extend_from_slice(&y[c as usize * f..(c as usize + 1) * f]);
                }
                if cg.order.len() < cols.len() {
                    cg.order = (0..cols.len() as u32).collect();
                }
                (&cg.rows[..], &cg.order[..cols.len()])
            } else {
                (y, cols)
            };
            start(&mut cg.r, &yty, xu, f);
            add_interests(&mut cg.r, xu, y, cols, vals, f, residual_term(alpha));
            cg.p.copy_from_slice(&cg.r);
            let mut rs_old = dot(&cg.r, &cg.r);
            for _ in 0..params.cg_steps {
                if converged(rs_old) {
                    break;
                }
                matvec(&mut cg.ap, &yty, &cg.p, f);
                add_interests(&mut cg.ap, &cg.p, y, cols, vals, f, product_term(alpha));
                match step(xu, &mut cg.r, &mut cg.p, &cg.ap, rs_old) {
                    Some(rs_new) => rs_old = rs_new,
                    None => break,
                }
            }
        },
    );
}

/// Interests from which a row's [`solve`] gathers their rows first, when the fixed
/// factors are more than [`GATHER_ABOVE_BYTES`] (in cache, gathering only costs).
const GATHER_FROM: usize = 16;
const GATHER_ABOVE_BYTES: usize = 16 << 20;

/// [`solve`], every row of `x` at once, for fixed factors `y` too many to stay in
/// cache: each step sweeps the rows of `y` in order and adds each to the rows of
/// `x` with an interest in it (`by_y`: the interests, rows of `y` by rows of `x`),
/// instead of gathering every row of `x`'s rows of `y` from all over memory. A row
/// of `x` gets its terms in the order [`solve`] adds them (its rows of `y`
/// ascending), so the factors are the same bits.
fn solve_swept(x: &mut [f32], y: &[f32], by_y: &Csr, params: &AlsParams, f: usize) {
    let yty = pack(&gram(y, f, params.regularization as f32), f);
    let alpha = params.alpha as f32;
    let rows = x.len() / f.max(1);
    let mut r = vec![0f32; x.len()];
    r.par_chunks_mut(f)
        .zip(x.par_chunks(f))
        .for_each(|(r, x)| start(r, &yty, x, f));
    let mut active = vec![true; rows];
    sweep(&mut r, x, y, by_y, &active, f, residual_term(alpha));
    let mut p = r.clone();
    let mut rs_old: Vec<f32> = r.par_chunks(f).map(|r| dot(r, r)).collect();
    let mut ap = vec![0f32; x.len()];
    for _ in 0..params.cg_steps {
        for (active, &rs) in active.iter_mut().zip(&rs_old) {
            *active &= !converged(rs);
        }
        ap.par_chunks_mut(f)
            .zip(p.par_chunks(f))
            .zip(&active)
            .filter(|(_, active)| **active)
            .for_each(|((ap, p), _)| matvec(ap, &yty, p, f));
        sweep(&mut ap, &p, y, by_y, &active, f, product_term(alpha));
        x.par_chunks_mut(f)
            .zip(r.par_chunks_mut(f))
            .zip(p.par_chunks_mut(f))
            .zip(ap.par_chunks(f))
            .zip(active.par_iter_mut().zip(rs_old.par_iter_mut()))
            .filter(|(_, (active, _))| **active)
            .for_each(
                |((((x, r), p), ap), (active, rs))| match step(x, r, p, ap, *rs) {
                    Some(rs_new) => *rs = rs_new,
                    None => *active = false,
                },
            );
    }
}

/// For every row u of `y` in order and each of its interests (row i of `x`, weight
/// w) with `active[i]`: `out_i += term(w, dot(v_i, y_u)) y_u`. The rows of `x` are
/// split among tasks, each sweeping all of `y` for its own rows.
fn sweep(
    out: &mut [f32],
    v: &[f32],
    y: &[f32],
    by_y: &Csr,
    active: &[bool],
    f: usize,
    term: impl Fn(f32, f32) -> f32 + Sync,
) {
    let rows = active.len();
    let per_task = rows.div_ceil(rayon::current_num_threads()).max(1);
    out.par_chunks_mut(per_task * f)
        .enumerate()
        .for_each(|(task, out)| {
            let first = task * per_task;
            let end = first + out.len() / f;
            // Four interests of a row of `y` at a time, with [`dot4`] (the bits of
            // one `dot` after another) and `yu` loaded once for the four updates.
            let mut group = [(0usize, 0f32); 4];
            for (u, yu) in y.chunks_exact(f).enumerate() {
                let (cols, vals) = by_y.row(u);
                let from = cols.partition_point(|&c| (c as usize) < first);
                let mut n = 0;
                for (&c, &w) in cols[from..].iter().zip(&vals[from..]) {
                    let i = c as usize;
                    if i >= end {
                        break;
                    }
                    if !active[i] {
                        continue;
                    }
                    group[n] = (i, w);
                    n += 1;
                    if n == 4 {
                        n = 0;
                        let d = dot4(yu, group.map(|(i, _)| &v[i * f..(i + 1) * f]));
                        let ranges = group.map(|(i, _)| (i - first) * f..(i - first + 1) * f);
                        let terms = [0, 1, 2, 3].map(|k| term(group[k].1, d[k]));
                        match out.get_disjoint_mut(ranges) {
                            Ok(outs) => axpy_into4(outs, terms, yu),
                            // Never: a row's interests are in distinct rows of `x`.
                            Err(_) => {
                                for (k, &(i, _)) in group.iter().enumerate() {
                                    let at = (i - first) * f;
                                    axpy(&mut out[at..at + f], terms[k], yu);
                                }
                            }
                        }
                    }
                }
                for &(i, w) in &group[..n] {
                    let d = dot(&v[i * f..(i + 1) * f], yu);
                    let at = (i - first) * f;
                    axpy(&mut out[at..at + f], term(w, d), yu);
                }
            }
        });
}

/// Fits the factors on the training interactions.
pub(crate) fn fit(inter: &Interactions, params: &AlsParams, seed: u64) -> Als {
    let f = params.factors;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xA15A_15A1_5A15_A15A);
    let (n_users, n_items) = (inter.positive().rows(), inter.positive().cols);
    let by_item = inter.positive().transpose();
    // Small positive starts, as `implicit` draws them, for rows with an interest; a
    // row without one starts and stays at zero, so a user or item first seen later
    // (after the cutoff) changes no other row's start and adds nothing to a solve.
    let mut starts = |m: &Csr| -> Vec<f32> {
        let mut factors = vec![0f32; m.rows() * f];
        for (row, factors) in factors.chunks_mut(f.max(1)).enumerate() {
            if !m.row(row).0.is_empty() {
                factors.fill_with(|| rng.r#gen::<f32>() * 0.01);
            }
        }
        factors
    };
    let mut users = starts(inter.positive());
    let mut items = starts(&by_item);
    // A side's rows one after another, unless the other side's factors are many
    // more and too big to stay in cache: then all at once, sweeping those.
    let sweep = |rows: usize, other: usize| rows < other && other * f * 4 > SWEEP_ABOVE_BYTES;
    for _ in 0..params.iterations {
        if sweep(n_users, n_items) {
            solve_swept(&mut users, &items, &by_item, params, f);
        } else {
            solve(&mut users, &items, inter.positive(), params, f);
        }
        if sweep(n_items, n_users) {
            solve_swept(&mut items, &users, inter.positive(), params, f);
        } else {
            solve(&mut items, &users, &by_item, params, f);
        }
    }
    Als::new(f, users, items)
}

/// The euclidean norm of `v`, in f64.
fn norm(v: &[f32]) -> f64 {
    v.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
}

/// The rows of `items` (n x f) by norm, largest first (NaN first, ties by index),
/// each with its norm.
fn items_by_norm(items: &[f32], f: usize) -> Vec<(u32, f64)> {
    let mut order: Vec<(u32, f64)> = items
        .chunks_exact(f.max(1))
        .enumerate()
        .map(|(i, v)| (i as u32, norm(v)))
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    order
}

/// Slack on an item's bound: far more than the rounding of a score, an f32 sum of
/// `factors` products (about `factors` x 6e-8 of the product of the norms).
const BOUND_SLACK: f64 = 1e-3;

impl Als {
    /// The model of these factors (rows of `factors` each), packed for scoring.
    fn new(factors: usize, users: Vec<f32>, items: Vec<f32>) -> Als {
        let f = factors;
        let by_norm = items_by_norm(&items, f);
        let sorted: Vec<f32> = by_norm
            .iter()
            .flat_map(|&(i, _)| &items[i as usize * f..(i as usize + 1) * f])
            .copied()
            .collect();
        let packed = pack(&sorted, f);
        Als {
            factors,
            users,
            items,
            packed,
            by_norm,
        }
    }

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
        self.best(user, &inter.item_users, skip, k)
    }

    /// [`Als::recommend`] among the items with a positive count in `item_users`.
    fn best(&self, user: usize, item_users: &[u32], skip: &[u32], k: usize) -> Vec<Scored> {
        let f = self.factors;
        let xu = &self.users[user * f..(user + 1) * f];
        let user_norm = norm(xu);
        let mut top = TopK::new(k);
        // Eight items at a time (the scores are `dot`'s either way), from the largest
        // norm down, until none left can score above the k-th kept: the top k do not
        // depend on the order they are offered in.
        for (block, items) in self
            .packed
            .chunks_exact(f.max(1))
            .zip(self.by_norm.chunks(8))
        {
            if let Some(floor) = top.full_floor()
                && user_norm * items[0].1 * (1.0 + BOUND_SLACK) + 1e-30 < f64::from(floor)
            {
                break;
            }
            for (&(i, _), score) in items.iter().zip(dots8(xu, block)) {
                if item_users[i as usize] > 0
                    && !top.refuses(score)
                    && skip.binary_search(&i).is_err()
                {
                    top.offer(i, score);
                }
            }
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

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..n).map(|_| rng.r#gen::<f32>() * 2.0 - 1.0).collect()
    }

    #[test]
    fn blocked_kernels_give_the_one_row_sums_bit_for_bit() {
        for f in [3, 8, 64, 67] {
            let x = random(f, 1);
            let y = random(7 * f, 2);
            let row = |i: usize| &y[i * f..(i + 1) * f];
            let four = dot4(&x, [row(0), row(1), row(2), row(3)]);
            for (r, got) in four.iter().enumerate() {
                let want: f32 = dot(&x, row(r));
                assert_eq!(got.to_bits(), want.to_bits(), "f {f}, row {r}");
            }
            let naive: f32 = (0..f).map(|l| x[l] * row(1)[l]).sum();
            assert!((dot(&x, row(1)) - naive).abs() < 1e-4);

            let coef = [0.5, -1.25, 2.0, 0.75];
            let mut one_by_one = x.clone();
            for (r, a) in coef.iter().enumerate() {
                axpy(&mut one_by_one, *a, row(r + 2));
            }
            let mut blocked = x.clone();
            axpy4(&mut blocked, coef, [row(2), row(3), row(4), row(5)]);
            assert_eq!(blocked, one_by_one, "f {f}");

            // Seven rows: one block of four and three rows alone.
            let g = gram(&y, f, 0.1);
            // Seven items packed in one block of eight, scored at once.
            let packed = pack(&y, f);
            assert_eq!(packed.len(), f);
            let scores = dots8(&x, &packed);
            for (i, got) in scores.iter().enumerate() {
                let want = if i < 7 { dot(&x, row(i)) } else { 0.0 };
                assert_eq!(got.to_bits(), want.to_bits(), "f {f}, item {i}");
            }
            let mut product = vec![0f32; f];
            matvec(&mut product, &pack(&g, f), &x, f);
            for (a, got) in product.iter().enumerate() {
                let want = dot(&x, &g[a * f..(a + 1) * f]);
                assert_eq!(got.to_bits(), want.to_bits(), "f {f}, output {a}");
            }
            for a in 0..f {
                for b in a..f {
                    let mut want = 0f64;
                    for i in 0..7 {
                        want += f64::from(row(i)[a]) * f64::from(row(i)[b]);
                    }
                    let want = want as f32 + if a == b { 0.1 } else { 0.0 };
                    assert_eq!(g[a * f + b].to_bits(), want.to_bits(), "f {f}, {a} {b}");
                    assert_eq!(g[b * f + a], g[a * f + b]);
                }
            }
        }
    }

    #[test]
    fn the_items_scored_by_norm_are_every_items_best() {
        for (f, seed) in [(8, 1), (67, 2)] {
            let n_items = 203;
            // Norms from a tenth to three times the rest's, so that many are passed over.
            let mut items = random(n_items * f, seed);
            for (i, item) in items.chunks_mut(f).enumerate() {
                item.iter_mut()
                    .for_each(|v| *v *= 0.1 + (i % 13) as f32 / 4.0);
            }
            // Ties (a copy of item 4), a zero vector and a long one.
            let copy: Vec<f32> = items[4 * f..5 * f].to_vec();
            items[9 * f..10 * f].copy_from_slice(&copy);
            items[11 * f..12 * f].fill(0.0);
            items[13 * f..14 * f].iter_mut().for_each(|v| *v *= 30.0);
            let users = random(20 * f, seed + 10);
            let als = Als::new(f, users, items);
            let item_users: Vec<u32> = (0..n_items as u32).map(|i| u32::from(i % 7 != 3)).collect();
            for user in 0..20 {
                let skip: Vec<u32> = (0..n_items as u32)
                    .filter(|i| (i + user as u32).is_multiple_of(11))
                    .collect();
                let xu = &als.users[user * f..(user + 1) * f];
                let mut every: Vec<Scored> = (0..n_items as u32)
                    .filter(|&i| item_users[i as usize] > 0 && !skip.contains(&i))
                    .map(|i| Scored {
                        item: i,
                        score: dot(xu, als.item(i)),
                    })
                    .collect();
                every.sort_unstable_by(|a, b| b.cmp(a));
                for k in [0, 1, 5, 40, 300] {
                    let bits = |v: &[Scored]| -> Vec<(u32, u32)> {
                        v.iter().map(|s| (s.item, s.score.to_bits())).collect()
                    };
                    let want = &every[..k.min(every.len())];
                    assert_eq!(
                        bits(&als.best(user, &item_users, &skip, k)),
                        bits(want),
                        "f {f}, user {user}, k {k}"
                    );
                }
            }
        }
    }

    #[test]
    fn gathered_rows_give_the_same_factors_bit_for_bit() {
        let (f, n_x, n_y) = (67, 9, 40);
        let y = random(n_y * f, 3);
        let mut m = Csr {
            cols: n_y,
            indptr: vec![0],
            ..Csr::default()
        };
        for row in 0..n_x {
            // Rows with no interest, one, and up to nearly every row of `y`.
            for col in (0..n_y).filter(|c| (c * (row + 1)) % 9 < row) {
                m.indices.push(col as u32);
                m.values.push(1.0 + (col % 4) as f32);
            }
            m.indptr.push(m.indices.len());
        }
        let params = AlsParams::default();
        let start = random(n_x * f, 4);
        let (mut scattered, mut gathered) = (start.clone(), start);
        solve_gathering(&mut scattered, &y, &m, &params, f, usize::MAX);
        solve_gathering(&mut gathered, &y, &m, &params, f, 1);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&gathered), bits(&scattered));
        assert!(m.indptr.windows(2).any(|w| w[1] - w[0] > 30));
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

    #[test]
    fn the_swept_solve_gives_the_row_by_row_factors_bit_for_bit() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        for (f, rows, others) in [(3, 9, 40), (8, 17, 23), (64, 30, 200), (67, 5, 11)] {
            // Each row of `x` has 0 to 9 interests in distinct rows of `y`; rows with
            // none start at 0 and stop at once (a residual of 0).
            let mut m = Csr {
                cols: others,
                indptr: vec![0],
                ..Csr::default()
            };
            for _ in 0..rows {
                let mut cols: Vec<u32> = (0..rng.gen_range(0..10))
                    .map(|_| rng.gen_range(0..others as u32))
                    .collect();
                cols.sort_unstable();
                cols.dedup();
                m.values
                    .extend(cols.iter().map(|_| rng.gen_range(0.5f32..6.0)));
                m.indices.extend(cols);
                m.indptr.push(m.indices.len());
            }
            let y = random(others * f, 3);
            let mut x = random(rows * f, 4);
            for r in 0..rows {
                if m.row(r).0.is_empty() {
                    x[r * f..(r + 1) * f].fill(0.0);
                }
            }
            for cg_steps in [1, 3, 6] {
                let params = AlsParams {
                    factors: f,
                    cg_steps,
                    ..AlsParams::default()
                };
                let (mut by_row, mut swept) = (x.clone(), x.clone());
                solve(&mut by_row, &y, &m, &params, f);
                solve_swept(&mut swept, &y, &m.transpose(), &params, f);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&swept), bits(&by_row), "f {f}, {cg_steps} steps");
                assert_ne!(bits(&by_row), bits(&x));
            }
        }
    }
}
