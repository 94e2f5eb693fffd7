//! L2-penalised logistic regression fitted by Newton's method.
//!
//! The objective is linfa-logistic's and scikit-learn's (`C = 1 / alpha`): the summed
//! log-loss plus `alpha / 2 · ‖w‖²`, the intercept unpenalised. It is strictly convex
//! for `alpha > 0`, so every solver that converges reaches the same coefficients.
//!
//! Not linfa-logistic's L-BFGS, which did not converge in 100 iterations on nearly
//! collinear features (docs/benchmarks.md): with a few dozen features the exact
//! Hessian is one matrix product, and Newton's method with a backtracking line
//! search converges in a handful of steps. The tests compare it with linfa-logistic.

use ndarray::{Array1, Array2, ArrayView2, Axis};

use crate::stats::special::sigmoid;

/// The fitted coefficients.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Logistic {
    pub(crate) intercept: f64,
    pub(crate) coefficients: Vec<f64>,
    /// Newton steps taken.
    pub(crate) iterations: u64,
}

/// `log(1 + exp(v))` without overflow.
fn softplus(v: f64) -> f64 {
    if v > 0.0 {
        v + (-v).exp().ln_1p()
    } else {
        v.exp().ln_1p()
    }
}

/// The penalised loss at linear scores `z`: `Σ log(1 + exp(-y·z)) + alpha/2 · ‖w‖²`.
fn loss(z: &Array1<f64>, y: &[bool], alpha: f64, theta: &Array1<f64>) -> f64 {
    let d = theta.len() - 1;
    let data: f64 = z
        .iter()
        .zip(y)
        .map(|(&z, &y)| softplus(if y { -z } else { z }))
        .sum();
    let penalty: f64 = theta.iter().take(d).map(|w| w * w).sum();
    data + 0.5 * alpha * penalty
}

/// [`userlens_model::stats::cholesky_solve`] of the square `a` and `b`.
fn cholesky_solve(a: &Array2<f64>, b: &Array1<f64>) -> Option<Array1<f64>> {
    let mut a: Vec<f64> = a.iter().copied().collect();
    userlens_model::stats::cholesky_solve(&mut a, b.to_vec(), b.len()).map(Array1::from)
}

/// Fits the model on the row-major `n × d` matrix `x` with labels `y`. Stops when
/// the largest gradient component is at most `tolerance` or after `max_iterations`
/// Newton steps; `None` if the coefficients are not finite.
pub(crate) fn fit(
    x: &[f64],
    n: usize,
    d: usize,
    y: &[bool],
    alpha: f64,
    max_iterations: u64,
    tolerance: f64,
) -> Option<Logistic> {
    // The design matrix with a last column of ones for the intercept.
    let mut design = Array2::<f64>::ones((n, d + 1));
    for (i, mut row) in design.axis_iter_mut(Axis(0)).enumerate() {
        for (cell, &v) in row.iter_mut().zip(&x[i * d..(i + 1) * d]) {
            *cell = v;
        }
    }
    let design = design.view();
    let mut theta = Array1::<f64>::zeros(d + 1);
    let mut z = Array1::<f64>::zeros(n);
    let mut current = loss(&z, y, alpha, &theta);
    let mut iterations = 0;
    while iterations < max_iterations {
        let (gradient, hessian) = derivatives(design, &z, y, alpha, &theta);
        if gradient.iter().fold(0.0_f64, |m, g| m.max(g.abs())) <= tolerance {
            break;
        }
        // The Hessian is positive definite for alpha > 0 (the intercept's own entry
        // is Σ p(1-p) > 0); should rounding say otherwise, a gradient step is taken.
        let step = cholesky_solve(&hessian, &gradient).unwrap_or_else(|| gradient.clone());
        let slope = gradient.dot(&step);
        let shift = design.dot(&step);
        // Backtracking (Armijo) on the loss; a full step is almost always taken.
        let mut t = 1.0;
        let mut accepted = false;
        for _ in 0..50 {
            let trial_theta = &theta - &(&step * t);
            let trial_z = &z - &(&shift * t);
            let trial = loss(&trial_z, y, alpha, &trial_theta);
            if trial <= current - 1e-4 * t * slope {
                theta = trial_theta;
                z = trial_z;
                current = trial;
                accepted = true;
                break;
            }
            t *= 0.5;
        }
        iterations += 1;
        if !accepted {
            // No decrease representable in floating point: at the optimum.
            break;
        }
    }
    let coefficients: Vec<f64> = theta.iter().take(d).copied().collect();
    let intercept = theta[d];
    (intercept.is_finite() && coefficients.iter().all(|c| c.is_finite())).then_some(Logistic {
        intercept,
        coefficients,
        iterations,
    })
}

/// Gradient and Hessian of the penalised loss at `theta` (whose scores are `z`).
fn derivatives(
    design: ArrayView2<f64>,
    z: &Array1<f64>,
    y: &[bool],
    alpha: f64,
    theta: &Array1<f64>,
) -> (Array1<f64>, Array2<f64>) {
    let d = theta.len() - 1;
    let p = z.mapv(sigmoid);
    let residual: Array1<f64> = p
        .iter()
        .zip(y)
        .map(|(&p, &y)| p - f64::from(u8::from(y)))
        .collect();
    let mut gradient = design.t().dot(&residual);
    // Xᵀ·W·X as (√W·X)ᵀ(√W·X): one matrix product.
    let mut weighted = design.to_owned();
    for (mut row, &p) in weighted.axis_iter_mut(Axis(0)).zip(&p) {
        row *= (p * (1.0 - p)).sqrt();
    }
    let mut hessian = weighted.t().dot(&weighted);
    for j in 0..d {
        gradient[j] += alpha * theta[j];
        hessian[[j, j]] += alpha;
    }
    (gradient, hessian)
}

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::Dataset;
    use linfa::traits::Fit as _;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// `n` rows of `d` standard-normal features with labels drawn from a logistic
    /// model whose weights fall with the column index.
    fn problem(n: usize, d: usize, seed: u64) -> (Vec<f64>, Vec<bool>) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut x = Vec::with_capacity(n * d);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let mut z = -0.7;
            for j in 0..d {
                let v: f64 = rng.sample(rand_distr::StandardNormal);
                z += v * 1.5 / (j + 1) as f64;
                x.push(v);
            }
            y.push(rng.r#gen::<f64>() < sigmoid(z));
        }
        (x, y)
    }

    #[test]
    fn reaches_the_optimum_linfa_logistic_converges_to() {
        let (n, d) = (3000, 6);
        let (x, y) = problem(n, d, 11);
        let ours = fit(&x, n, d, &y, 1.0, 100, 1e-9 * n as f64).expect("finite");
        assert!(ours.iterations <= 12, "{ours:?}");
        let records = Array2::from_shape_vec((n, d), x.clone()).unwrap();
        let targets: Array1<usize> = y.iter().map(|&v| usize::from(v)).collect();
        let theirs = linfa_logistic::LogisticRegression::default()
            .alpha(1.0)
            .max_iterations(1000)
            .gradient_tolerance(1e-10)
            .fit(&Dataset::new(records, targets))
            .unwrap();
        // linfa's "positive" class is the more frequent one.
        let sign = if theirs.labels().pos.class == 1 {
            1.0
        } else {
            -1.0
        };
        assert!((ours.intercept - sign * theirs.intercept()).abs() < 1e-5);
        for (a, b) in ours.coefficients.iter().zip(theirs.params()) {
            assert!((a - sign * b).abs() < 1e-5, "{a} against {}", sign * b);
        }
    }

    #[test]
    fn the_gradient_vanishes_at_the_fit_even_when_features_are_collinear() {
        // Two nearly equal columns make the problem ill-conditioned; the penalty
        // keeps the optimum unique and Newton's method still finds it.
        let (n, d) = (2000, 3);
        let (mut x, y) = problem(n, d, 5);
        for i in 0..n {
            x[i * d + 2] = x[i * d] + 1e-6 * x[i * d + 1];
        }
        let fitted = fit(&x, n, d, &y, 0.01, 100, 1e-9 * n as f64).expect("finite");
        let mut theta = Array1::from(fitted.coefficients.clone());
        theta
            .append(Axis(0), Array1::from(vec![fitted.intercept]).view())
            .unwrap();
        let mut design = Array2::<f64>::ones((n, d + 1));
        for i in 0..n {
            for j in 0..d {
                design[[i, j]] = x[i * d + j];
            }
        }
        let z = design.dot(&theta);
        let (gradient, _) = derivatives(design.view(), &z, &y, 0.01, &theta);
        assert!(
            gradient.iter().all(|g| g.abs() < 1e-6 * n as f64),
            "{gradient}"
        );
        // The collinear pair shares the weight of the first column.
        assert!(
            fitted.coefficients[0] + fitted.coefficients[2] > 1.0,
            "{fitted:?}"
        );
    }

    #[test]
    fn separable_labels_stay_finite_under_the_penalty() {
        let n = 200;
        let x: Vec<f64> = (0..n).map(|i| i as f64 / n as f64 - 0.5).collect();
        let y: Vec<bool> = x.iter().map(|&v| v > 0.0).collect();
        let fitted = fit(&x, n, 1, &y, 1.0, 100, 1e-9 * n as f64).expect("finite");
        assert!(fitted.coefficients[0] > 5.0, "{fitted:?}");
        assert!(fitted.iterations < 100, "{fitted:?}");
    }

    #[test]
    fn cholesky_solves_a_symmetric_system_and_refuses_an_indefinite_one() {
        let a = ndarray::arr2(&[[4.0, 2.0, 0.4], [2.0, 5.0, 1.0], [0.4, 1.0, 3.0]]);
        let b = Array1::from(vec![1.0, -2.0, 0.5]);
        let x = cholesky_solve(&a, &b).unwrap();
        let back = a.dot(&x);
        assert!(
            back.iter().zip(&b).all(|(u, v)| (u - v).abs() < 1e-12),
            "{back}"
        );
        let indefinite = ndarray::arr2(&[[1.0, 2.0], [2.0, 1.0]]);
        assert!(cholesky_solve(&indefinite, &Array1::from(vec![1.0, 1.0])).is_none());
    }
}
