//! Numerical pieces the models share: the logistic function, log-sum-exp, Gauss-Legendre nodes and the
//! Gauss hypergeometric series of the BG/NBD conditional expectation.
//!
//! ln Γ and ψ come from `statrs`. No maintained crate offers a real 2F1 that is
//! reliable near z = 1 or Gauss-Legendre nodes without a linear-algebra stack, so
//! the few lines needed here are written by hand, each with its error control.

use std::sync::OnceLock;

/// The logistic function `1 / (1 + exp(-v))`, without overflow.
pub(crate) fn sigmoid(v: f64) -> f64 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

/// `ln(exp(a) + exp(b))` and the weight `exp(b) / (exp(a) + exp(b))`, without
/// overflow.
pub(crate) fn log_add_exp(a: f64, b: f64) -> (f64, f64) {
    let d = b - a;
    let e = (-d.abs()).exp();
    let total = a.max(b) + e.ln_1p();
    let weight_b = if d >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    };
    (total, weight_b)
}

/// `expm1(e * l) / e`, continuous at `e = 0` where it is `l`.
pub(crate) fn expm1_ratio(e: f64, l: f64) -> f64 {
    let el = e * l;
    if el == 0.0 { l } else { l * (el.exp_m1() / el) }
}

/// Number of Gauss-Legendre nodes per panel of the likelihood quadratures.
pub(crate) const GL_NODES: usize = 8;

/// Gauss-Legendre nodes and weights on [-1, 1], by Newton iteration on the Legendre
/// polynomial (Golub-Welsch would need an eigen-solver for the same 16 numbers).
pub(crate) fn gauss_legendre() -> &'static [(f64, f64); GL_NODES] {
    static NODES: OnceLock<[(f64, f64); GL_NODES]> = OnceLock::new();
    NODES.get_or_init(|| {
        let n = GL_NODES;
        let mut out = [(0.0, 0.0); GL_NODES];
        for (i, slot) in out.iter_mut().enumerate() {
            let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
            let mut derivative = 1.0;
            for _ in 0..100 {
                let (mut p0, mut p1) = (1.0, x);
                for k in 2..=n {
                    let k = k as f64;
                    let p2 = ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k;
                    p0 = p1;
                    p1 = p2;
                }
                derivative = n as f64 * (x * p1 - p0) / (x * x - 1.0);
                let step = p1 / derivative;
                x -= step;
                if step.abs() < 1e-16 {
                    break;
                }
            }
            *slot = (x, 2.0 / ((1.0 - x * x) * derivative * derivative));
        }
        out
    })
}

/// Most terms a hypergeometric series may take before it is declared divergent for
/// practical purposes.
pub(crate) const MAX_SERIES_TERMS: usize = 2_000_000;
/// Partial sums of [`bg_expectation_core`] are scaled down past this magnitude.
const RESCALE_ABOVE: f64 = 1e200;

/// The BG/NBD conditional expectation before the P(alive) factor:
/// `E[Y(t) | alive] = (a+b+x-1)/(a-1) · [1 - ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x;
/// a+b+x-1; z)]`, `z = t/(α+T+t)` (Fader, Hardie & Lee 2005, eq. 10).
///
/// The 2F1 is rewritten with Euler's transformation, `(1-z)^(r+x) 2F1(r+x, b+x; c;
/// z) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; c; z)` with `c = a+b+x-1`, whose terms decay
/// like `n^(a-2-r-x) z^n` instead of growing like `n^(r+x-a)`. The factor `a-1` is
/// divided out of the series analytically (every term after the first carries
/// `(a-1)_n`) and `c` is multiplied in (every term carries `1/(c)_n`), so the result
/// is exact at `a = 1` and for `c` near 0:
///
/// `E = -[c · expm1((a-1) ln(1-z)) / (a-1) + (1-z)^(a-1) · U]`,
/// `U = Σ_{n≥1} (a+b-1-r)_n (a)_(n-1) / ((c+1)_(n-1) n!) z^n`.
///
/// The series stops when the tail bound `|term| ρ / (1 - ρ)`, with `ρ` the larger of
/// the current term ratio and its limit `z`, is below 1e-16 of the sum. `None` when
/// that takes more than [`MAX_SERIES_TERMS`] (horizons beyond about 10^5 times
/// `α + T`).
///
/// When `a > 1` and the published series converges faster (its term ratio tends to
/// `(b+x)/c · z`), that one is summed instead: with `a` and `b` both large (a fit
/// near constant dropout) the transformed series needs about `a z` terms, the
/// published one a few dozen.
pub(crate) fn bg_expectation_core(
    r: f64,
    alpha: f64,
    a: f64,
    b: f64,
    x: f64,
    big_t: f64,
    t: f64,
) -> Option<f64> {
    if t <= 0.0 {
        return Some(0.0);
    }
    let e = Expectation::new(r, alpha, a, b, x, big_t, t);
    let ratio = (b + x) / e.c * e.z;
    // Terms each series needs, roughly: the published one until ratio^n < 1e-17,
    // the transformed one past its peak near n = a z.
    if a > 1.0 && ratio < 1.0 && 40.0 / -ratio.ln() < a * e.z + 40.0 {
        return bg_expectation_published(e);
    }
    bg_expectation_transformed(e)
}

/// One customer's expectation: the model, the history, the horizon, and the
/// `c = a + b + x - 1` and `z = t / (α + T + t)` both series are built on.
#[derive(Debug, Clone, Copy)]
struct Expectation {
    r: f64,
    alpha: f64,
    a: f64,
    b: f64,
    x: f64,
    big_t: f64,
    t: f64,
    c: f64,
    z: f64,
}

impl Expectation {
    fn new(r: f64, alpha: f64, a: f64, b: f64, x: f64, big_t: f64, t: f64) -> Self {
        Expectation {
            r,
            alpha,
            a,
            b,
            x,
            big_t,
            t,
            c: a + b + x - 1.0,
            z: t / (alpha + big_t + t),
        }
    }
}

/// Fader, Hardie & Lee (2005) eq. 10 as published, for `a > 1`:
/// `E = c/(a-1) · [1 - ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; c; z)]`, the bracket
/// evaluated as `-expm1(log of the product)` so that a small result keeps its digits.
fn bg_expectation_published(e: Expectation) -> Option<f64> {
    let Expectation {
        r,
        alpha,
        a,
        b,
        x,
        big_t,
        t,
        c,
        z,
    } = e;
    let (p, q) = (r + x, b + x);
    let mut term = 1.0f64;
    let mut sum = 1.0f64;
    let mut n = 0usize;
    loop {
        let nf = n as f64;
        term *= (p + nf) * (q + nf) / ((c + nf) * (nf + 1.0)) * z;
        sum += term;
        if term.abs() <= 1e-17 * sum.abs() {
            break;
        }
        n += 1;
        if n > MAX_SERIES_TERMS || !sum.is_finite() {
            return None;
        }
    }
    let log_product = -(r + x) * (t / (alpha + big_t)).ln_1p() + sum.ln();
    let value = c / (a - 1.0) * -log_product.exp_m1();
    value.is_finite().then_some(value.max(0.0))
}

/// The transformed series (see [`bg_expectation_core`]).
fn bg_expectation_transformed(e: Expectation) -> Option<f64> {
    let Expectation {
        r,
        alpha,
        a,
        b,
        big_t,
        t,
        c,
        z,
        ..
    } = e;
    let ratio = t / (alpha + big_t);
    let ln_one_minus_z = -ratio.ln_1p();
    let a_prime = a + b - 1.0 - r;
    let mut term = a_prime * z;
    let mut sum = term;
    // When a and b are large (a fit near the no-heterogeneity boundary) the terms
    // grow like (a z)^n / n! far beyond f64 before the tiny (1 - z)^(a-1) scales
    // them back: keep them rescaled and carry the factor as a logarithm.
    let mut log_shift = 0.0;
    let mut n = 1usize;
    loop {
        let nf = n as f64;
        let rho = (a_prime + nf) * (a - 1.0 + nf) / ((c + nf) * (nf + 1.0)) * z;
        let next = term * rho;
        let bound_ratio = rho.abs().max(z);
        if bound_ratio < 1.0 && next.abs() * bound_ratio / (1.0 - bound_ratio) <= 1e-16 * sum.abs()
            || next == 0.0
        {
            sum += next;
            break;
        }
        sum += next;
        term = next;
        if sum.abs() > RESCALE_ABOVE {
            sum /= RESCALE_ABOVE;
            term /= RESCALE_ABOVE;
            log_shift += RESCALE_ABOVE.ln();
        }
        n += 1;
        if n > MAX_SERIES_TERMS || !sum.is_finite() {
            return None;
        }
    }
    let scale = ((a - 1.0) * ln_one_minus_z + log_shift).exp();
    let value = -(c * expm1_ratio(a - 1.0, ln_one_minus_z) + scale * sum);
    value.is_finite().then_some(value.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_legendre_integrates_polynomials_exactly() {
        let nodes = gauss_legendre();
        let weight: f64 = nodes.iter().map(|(_, w)| w).sum();
        assert!((weight - 2.0).abs() < 1e-14);
        // Exact up to degree 2n - 1 = 15: ∫ x^14 = 2/15.
        let moment: f64 = nodes.iter().map(|(x, w)| w * x.powi(14)).sum();
        assert!((moment - 2.0 / 15.0).abs() < 1e-14);
    }

    #[test]
    fn log_add_exp_is_stable() {
        let (total, w) = log_add_exp(-1000.0, -1000.0);
        assert!((total - (-1000.0 + 2f64.ln())).abs() < 1e-12);
        assert!((w - 0.5).abs() < 1e-15);
        let (total, w) = log_add_exp(0.0, -800.0);
        assert_eq!(total, 0.0);
        assert!((0.0..1e-300).contains(&w));
    }

    /// Direct (untransformed) series of the published formula, for small z only.
    fn bg_expectation_direct(
        r: f64,
        alpha: f64,
        a: f64,
        b: f64,
        x: f64,
        big_t: f64,
        t: f64,
    ) -> f64 {
        let z = t / (alpha + big_t + t);
        let (aa, bb, cc) = (r + x, b + x, a + b + x - 1.0);
        let mut term = 1.0;
        let mut sum = 1.0;
        for n in 0..10_000 {
            let nf = n as f64;
            term *= (aa + nf) * (bb + nf) / ((cc + nf) * (nf + 1.0)) * z;
            sum += term;
            if term.abs() < 1e-18 * sum.abs() {
                break;
            }
        }
        let factor = ((alpha + big_t) / (alpha + big_t + t)).powf(r + x);
        (a + b + x - 1.0) / (a - 1.0) * (1.0 - factor * sum)
    }

    #[test]
    fn transformed_series_matches_the_published_formula() {
        for &(a, x, t) in &[
            (0.79, 0.0, 39.0),
            (0.79, 3.0, 39.0),
            (2.5, 7.0, 10.0),
            (1.3, 1.0, 80.0),
        ] {
            let core = bg_expectation_core(0.24, 4.41, a, 2.43, x, 38.0, t).unwrap();
            let direct = bg_expectation_direct(0.24, 4.41, a, 2.43, x, 38.0, t);
            assert!(
                (core - direct).abs() < 1e-9 * direct.abs().max(1.0),
                "{core} vs {direct}"
            );
        }
    }

    #[test]
    fn transformed_series_survives_huge_a_and_b() {
        // A fit on generated data ran to a = 7.1e4, b = 4.1e6 (dropout with almost no
        // heterogeneity); the unscaled series overflowed there.
        for &(x, big_t, t) in &[(0.0, 20.0, 4.0), (2.0, 20.0, 4.0), (9.0, 25.0, 8.0)] {
            let core = bg_expectation_transformed(Expectation::new(
                0.56, 28.5, 71_253.0, 4.08e6, x, big_t, t,
            ))
            .expect("the series converges");
            let direct = bg_expectation_direct(0.56, 28.5, 71_253.0, 4.08e6, x, big_t, t);
            let published = bg_expectation_core(0.56, 28.5, 71_253.0, 4.08e6, x, big_t, t)
                .expect("the published series converges");
            assert!(
                (published - direct).abs() < 1e-9 * direct.abs(),
                "x {x}: {published} vs {direct}"
            );
            assert!(
                (core - direct).abs() < 1e-6 * direct.abs(),
                "x {x}: {core} vs {direct}"
            );
        }
    }

    #[test]
    fn expectation_is_continuous_at_a_equal_one() {
        let at = bg_expectation_core(0.5, 3.0, 1.0, 2.0, 2.0, 20.0, 30.0).unwrap();
        let below = bg_expectation_core(0.5, 3.0, 1.0 - 1e-7, 2.0, 2.0, 20.0, 30.0).unwrap();
        let above = bg_expectation_core(0.5, 3.0, 1.0 + 1e-7, 2.0, 2.0, 20.0, 30.0).unwrap();
        assert!((at - below).abs() < 1e-6 && (at - above).abs() < 1e-6);
    }

    #[test]
    fn expectation_handles_long_horizons_and_small_a_plus_b() {
        let long = bg_expectation_core(0.24, 4.41, 0.79, 2.43, 0.0, 0.0, 1e4).unwrap();
        assert!(long.is_finite() && long > 0.0);
        let small = bg_expectation_core(0.3, 2.0, 0.2, 0.3, 0.0, 0.0, 10.0).unwrap();
        assert!(small.is_finite() && small > 0.0);
        assert_eq!(
            bg_expectation_core(0.3, 2.0, 0.2, 0.3, 0.0, 0.0, 0.0),
            Some(0.0)
        );
    }
}
