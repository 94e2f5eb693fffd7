//! Pareto/NBD (Schmittlein, Morrison & Colombo 1987), with the likelihood of Fader &
//! Hardie, "A Note on Deriving the Pareto/NBD Model and Related Expressions" (2005).
//!
//! The likelihood is
//! `L = Γ(r+x) α^r β^s / Γ(r) · [ (α+T)^-(r+x) (β+T)^-s + s ∫_{t_x}^{T} (α+τ)^-(r+x)
//! (β+τ)^-(s+1) dτ ]`; the note writes the integral as a difference of two Gauss
//! hypergeometric 2F1 terms, split by α ≥ β and α < β. Those 2F1 series converge
//! slowly when `|α-β|` is close to `max(α,β) + t_x` and the difference cancels when
//! `t_x ≈ T`, so the integral itself is evaluated instead, by Gauss-Legendre
//! quadrature in `u = ln(min(α,β) + τ)`. In `u` the integrand is analytic with its
//! nearest singularities π away from the real axis whatever α and β are, so
//! 8-node panels whose log-integrand varies by at most 3 give ~1e-15 relative
//! accuracy; panels stop once the rest of the (eventually decreasing) integrand is
//! below 1e-17 of the sum. Everything is computed in log space relative to the
//! integrand at `t_x`, so large `x` cannot underflow.

use statrs::function::gamma::{digamma, ln_gamma};

use super::bgnbd::{CountData, check_params, climb_or_nbd, gate, take4};
use super::optim::{LBFGS, Objective, Rung, Starts, chunked_sum, climb};
use super::special::{GL_NODES, expm1_ratio, gauss_legendre, log_add_exp};
use super::{
    CountModel, Error, Fit, PurchaseModel, Result, Summary, check_customer, check_horizon,
};

/// Pareto/NBD: purchases follow a Poisson process with rate λ ~ Gamma(r, α) during
/// an exponential lifetime with rate μ ~ Gamma(s, β).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParetoNbd {
    /// Shape of the purchase-rate gamma.
    pub r: f64,
    /// Rate (in time units) of the purchase-rate gamma.
    pub alpha: f64,
    /// Shape of the dropout-rate gamma.
    pub s: f64,
    /// Rate (in time units) of the dropout-rate gamma.
    pub beta: f64,
}

/// A dropout shape below which a fit sits on the no-dropout plateau, where
/// [`ParetoNbd::fit_from`] fits again from other starts.
const PLATEAU_S: f64 = 1e-3;

/// Most quadrature panels per customer: a guard (real inputs and extreme trial
/// parameters need at most about a hundred); beyond it the integral is reported as
/// not finite rather than truncated.
const MAX_PANELS: usize = 1_024;

/// `∫_{t_x}^{T} (α+τ)^-p (β+τ)^-q dτ` and the weighted integrals the gradient
/// needs, all scaled by `exp(-scale)`: `[∫F, ∫F ln(α+τ), ∫F/(α+τ), ∫F ln(β+τ),
/// ∫F/(β+τ)]`.
struct Integral {
    scale: f64,
    sums: [f64; 5],
}

fn integral(
    alpha: f64,
    beta: f64,
    p: f64,
    q: f64,
    t_x: f64,
    big_t: f64,
    with_grad: bool,
) -> Integral {
    let m = alpha.min(beta);
    let d = (alpha - beta).abs();
    let alpha_is_min = alpha <= beta;
    // Exponents of the factor that is e^u and of the one that is e^u + d.
    let (p_min, p_max) = if alpha_is_min { (p, q) } else { (q, p) };
    let u0 = (m + t_x).ln();
    let u1 = (m + big_t).ln();
    // Log of the integrand in u (Jacobian e^u included) and of its two factors.
    let logs = |u: f64| {
        let ln_other = (u.exp() + d).ln();
        let (ln_a, ln_b) = if alpha_is_min {
            (u, ln_other)
        } else {
            (ln_other, u)
        };
        (u - p * ln_a - q * ln_b, ln_a, ln_b)
    };
    let slope = |u: f64| {
        let e = u.exp();
        1.0 - p_min - p_max * e / (e + d)
    };
    let scale = logs(u0).0;
    let mut sums = [0.0f64; 5];
    if u1 <= u0 {
        return Integral { scale, sums };
    }
    let nodes = gauss_legendre();
    let mut u = u0;
    let mut panels = 0;
    while u < u1 {
        panels += 1;
        // The slope is monotone in u, so its largest size on a panel is at an end.
        // Halving from the longest panel (rather than jumping to 3 / slope at the
        // far end) stops a panel where the integrand turns steep instead of crawling
        // through a flat stretch in tiny steps, so the count stays near the number
        // of e-folds to the truncation point even for extreme trial parameters.
        let mut h = (u1 - u).min(1.0);
        while slope(u).abs().max(slope(u + h).abs()) * h > 3.0 {
            h *= 0.5;
        }
        if panels > MAX_PANELS || u + h <= u {
            // Not a value to hand on: the caller sees a non-finite likelihood.
            return Integral {
                scale,
                sums: [f64::NAN; 5],
            };
        }
        let half = 0.5 * h;
        for &(node, weight) in nodes.iter().take(GL_NODES) {
            let v = u + half * (1.0 + node);
            let (log_f, ln_a, ln_b) = logs(v);
            let f = half * weight * (log_f - scale).exp();
            sums[0] += f;
            if with_grad {
                sums[1] += f * ln_a;
                sums[2] += f * (-ln_a).exp();
                sums[3] += f * ln_b;
                sums[4] += f * (-ln_b).exp();
            }
        }
        u += h;
        let g = slope(u);
        if g < 0.0 && (logs(u).0 - scale).exp() / -g <= 1e-17 * sums[0] {
            break;
        }
    }
    Integral { scale, sums }
}

impl ParetoNbd {
    /// A model from its parameters, each finite and > 0.
    pub fn new(r: f64, alpha: f64, s: f64, beta: f64) -> Result<Self> {
        let model = ParetoNbd { r, alpha, s, beta };
        model.check()?;
        Ok(model)
    }

    fn check(&self) -> Result<()> {
        check_params(
            "pareto/nbd",
            &[
                ("r", self.r),
                ("alpha", self.alpha),
                ("s", self.s),
                ("beta", self.beta),
            ],
        )
    }

    /// Fits r, α, s, β by maximum likelihood, falling back to the no-dropout NBD
    /// when no rung of the ladder converges.
    pub fn fit(summary: &Summary) -> Result<Fit<CountModel>> {
        ParetoNbd::fit_from(summary, None)
    }

    /// [`ParetoNbd::fit`] whose first rung starts from `start` (such as the fit of
    /// the same customers a few weeks earlier) instead of the generic default: each
    /// likelihood evaluation costs a quadrature per distinct history, so a start
    /// near the optimum saves most of the fit.
    pub fn fit_from(summary: &Summary, start: Option<&ParetoNbd>) -> Result<Fit<CountModel>> {
        gate("pareto/nbd", summary)?;
        let data = CountData::new(summary);
        let objective = ParetoObjective { data: &data };
        let alpha0 = data.rate_scale();
        let default = match start {
            Some(m) => vec![m.r.ln(), m.alpha.ln(), m.s.ln(), m.beta.ln()],
            None => vec![0.0, alpha0.ln(), 0.0, alpha0.ln()],
        };
        let mut grid = Vec::new();
        for r in [0.2f64, 1.0, 3.0] {
            for scale in [0.3f64, 1.0, 3.0] {
                for s in [0.2f64, 1.0, 3.0] {
                    for beta in [0.3f64, 1.0, 3.0] {
                        grid.push(vec![
                            r.ln(),
                            (alpha0 * scale * r).ln(),
                            s.ln(),
                            (alpha0 * beta * s).ln(),
                        ]);
                    }
                }
            }
        }
        let make =
            |[r, alpha, s, beta]: [f64; 4]| CountModel::ParetoNbd(ParetoNbd { r, alpha, s, beta });
        let fit = climb_or_nbd("pareto/nbd", &objective, &data, default, grid.clone(), make)?;
        // Towards s = 0 (no dropout) the gradient in ln s vanishes, so a fit that drifts
        // there stops short of the maximum wherever it started: it is fitted again from
        // the grid's best starts, and the likelier fit is kept.
        let plateau = matches!(&fit.model, CountModel::ParetoNbd(m) if m.s < PLATEAU_S);
        if !plateau {
            return Ok(fit);
        }
        let again = Rung {
            name: "better start".to_string(),
            starts: Starts::BestOf { grid, keep: 3 },
            penalty: 0.0,
            method: LBFGS,
        };
        match climb("pareto/nbd", &objective, vec![again]) {
            Ok(accepted) if accepted.report.log_likelihood > fit.report.log_likelihood => Ok(Fit {
                model: make(take4(&accepted.params)),
                report: accepted.report,
            }),
            _ => Ok(fit),
        }
    }

    /// `ln` of the two bracketed terms of the likelihood.
    fn log_terms(&self, x: f64, t_x: f64, big_t: f64) -> (f64, f64) {
        let p = self.r + x;
        let log_alive = -p * (self.alpha + big_t).ln() - self.s * (self.beta + big_t).ln();
        let i = integral(self.alpha, self.beta, p, self.s + 1.0, t_x, big_t, false);
        let log_dead = if i.sums[0] == 0.0 {
            f64::NEG_INFINITY
        } else {
            // NaN (quadrature guard) stays NaN and is refused by the callers.
            self.s.ln() + i.scale + i.sums[0].ln()
        };
        (log_alive, log_dead)
    }

    /// P(alive) at `big_t` given the history; unlike BG/NBD's it is below 1 for
    /// one-time buyers, falling the longer they have been silent.
    pub fn p_alive(&self, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        self.check()?;
        check_customer(x, t_x, big_t)?;
        let (log_alive, log_dead) = self.log_terms(x, t_x, big_t);
        let p = if log_dead == f64::NEG_INFINITY {
            1.0
        } else {
            let (total, _) = log_add_exp(log_alive, log_dead);
            (log_alive - total).exp()
        };
        if p.is_finite() {
            Ok(p)
        } else {
            Err(Error::Numerical(
                "pareto/nbd p_alive is not finite".to_string(),
            ))
        }
    }

    /// Expected repeat purchases in `(T, T + t]` given the history:
    /// `(r+x)(β+T) / ((α+T)(s-1)) · [1 - ((β+T)/(β+T+t))^(s-1)] · P(alive)`, with
    /// its limit at `s = 1`.
    pub fn expected_purchases(&self, t: f64, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        check_horizon(t)?;
        let alive = self.p_alive(x, t_x, big_t)?;
        let horizon = (t / (self.beta + big_t)).ln_1p();
        let value = (self.r + x) * (self.beta + big_t) / (self.alpha + big_t)
            * expm1_ratio(-(self.s - 1.0), horizon)
            * alive;
        if value.is_finite() {
            Ok(value)
        } else {
            Err(Error::Numerical(
                "pareto/nbd expected purchases are not finite".to_string(),
            ))
        }
    }

    /// P(at least one repeat purchase in `(T, T + t]`) given the history. Alive at
    /// T, with λ ~ Gamma(r+x, α+T) and μ ~ Gamma(s, β+T), a purchase comes before
    /// the dropout within `t` with probability `∫₀ᵗ E[λ e^(-λu)] E[e^(-μu)] du`;
    /// with `((α+T)/(α+T+u))^(r+x) = e^(-y)` that is
    /// `∫₀^Y e^(-y) (1 + (α+T)/(β+T) (e^(y/(r+x)) - 1))^(-s) dy`, `Y` the value at
    /// `t`: a smooth integrand (cut where e^(-y) no longer counts), summed by
    /// Gauss-Legendre on panels as narrow as its steepness needs.
    pub fn p_purchase(&self, t: f64, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        check_horizon(t)?;
        let alive = self.p_alive(x, t_x, big_t)?;
        let value = alive * self.purchase_if_alive(t, x, big_t)?;
        if value.is_finite() {
            Ok(value.clamp(0.0, 1.0))
        } else {
            Err(Error::Numerical(
                "pareto/nbd purchase probability is not finite".to_string(),
            ))
        }
    }

    /// [`ParetoNbd::p_purchase`] of a customer alive at `big_t`: the integral.
    pub(crate) fn purchase_if_alive(&self, t: f64, x: f64, big_t: f64) -> Result<f64> {
        let (a1, b1, b2) = (self.r + x, self.alpha + big_t, self.beta + big_t);
        let end = (a1 * (t / b1).ln_1p()).min(40.0);
        let c = b1 / b2;
        let h = |y: f64| (-y - self.s * (c * (y / a1).exp_m1()).ln_1p()).exp();
        // d ln h / dy, monotone in y: its largest size on a panel is at an end.
        let slope = |y: f64| {
            let e = (y / a1).exp();
            -1.0 - self.s * c / a1 * e / (1.0 + c * (e - 1.0))
        };
        // Panels no wider than the integrand's e-fold / 3, as the likelihood's
        // quadrature above: a dropout likely within the horizon makes it steep at 0.
        let (mut y, mut integral, mut panels) = (0.0, 0.0, 0);
        // Its slope is at most -1, so what is left past y is at most h(y).
        while y < end && h(y) > 1e-16 * integral {
            let mut width = (end - y).min((end / 8.0).max(1.0));
            while slope(y).abs().max(slope(y + width).abs()) * width > 3.0 {
                width *= 0.5;
            }
            panels += 1;
            if panels > MAX_PANELS || y + width <= y {
                return Err(Error::Numerical(
                    "pareto/nbd purchase probability: the integral did not settle".to_string(),
                ));
            }
            let half = 0.5 * width;
            for &(node, weight) in gauss_legendre() {
                integral += half * weight * h(y + half * (1.0 + node));
            }
            y += width;
        }
        Ok(integral)
    }

    /// Log-likelihood of a summary under this model.
    pub fn log_likelihood(&self, summary: &Summary) -> Result<f64> {
        self.check()?;
        summary.check()?;
        let data = CountData::new(summary);
        let objective = ParetoObjective { data: &data };
        let log_params = [self.r.ln(), self.alpha.ln(), self.s.ln(), self.beta.ln()];
        objective
            .value_grad(&log_params)
            .map(|(f, _)| -f * data.n())
            .ok_or_else(|| Error::Numerical("pareto/nbd log-likelihood is not finite".to_string()))
    }
}

impl PurchaseModel for ParetoNbd {
    fn expected_purchases(&self, t: f64, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        ParetoNbd::expected_purchases(self, t, x, t_x, big_t)
    }
    fn p_alive(&self, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        ParetoNbd::p_alive(self, x, t_x, big_t)
    }
    fn p_purchase(&self, t: f64, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        ParetoNbd::p_purchase(self, t, x, t_x, big_t)
    }
}

/// Mean negative Pareto/NBD log-likelihood over log(r, α, s, β).
struct ParetoObjective<'a> {
    data: &'a CountData,
}

impl Objective for ParetoObjective<'_> {
    fn names(&self) -> &'static [&'static str] {
        &["r", "alpha", "s", "beta"]
    }

    fn count(&self) -> f64 {
        self.data.n()
    }

    fn value_grad(&self, log_params: &[f64]) -> Option<(f64, Vec<f64>)> {
        let [r, alpha, s, beta] = take4(log_params).map(f64::exp);
        let d = self.data;
        let (ln_alpha, ln_beta, ln_s) = (alpha.ln(), beta.ln(), s.ln());
        let (lg_r, dg_r) = (ln_gamma(r), digamma(r));
        let mut fixed = [0.0f64; 5];
        for (&x, &count) in d.xs.iter().zip(&d.counts) {
            fixed[0] += count * (ln_gamma(r + x) - lg_r + r * ln_alpha + s * ln_beta);
            fixed[1] += count * (digamma(r + x) - dg_r + ln_alpha);
            fixed[2] += count * r / alpha;
            fixed[3] += count * ln_beta;
            fixed[4] += count * s / beta;
        }
        let q = s + 1.0;
        let per_customer = chunked_sum(d.idx.len(), |range| {
            let mut acc = [0.0f64; 5];
            for i in range {
                let (x, w) = (d.xs[d.idx[i] as usize], d.weight[i]);
                let (t_x, big_t) = (d.t_x[i], d.big_t[i]);
                let p = r + x;
                let (ln_at, ln_bt) = ((alpha + big_t).ln(), (beta + big_t).ln());
                let log_alive = -p * ln_at - s * ln_bt;
                let int = integral(alpha, beta, p, q, t_x, big_t, true);
                if int.sums[0] == 0.0 {
                    acc[0] += w * log_alive;
                    acc[1] -= w * ln_at;
                    acc[2] -= w * p / (alpha + big_t);
                    acc[3] -= w * ln_bt;
                    acc[4] -= w * s / (beta + big_t);
                } else {
                    // A NaN from the quadrature guard makes the value non-finite.
                    let log_dead = ln_s + int.scale + int.sums[0].ln();
                    let (ll, w_dead) = log_add_exp(log_alive, log_dead);
                    let w_alive = (log_alive - ll).exp();
                    let inv = 1.0 / int.sums[0];
                    acc[0] += w * ll;
                    acc[1] -= w * (w_alive * ln_at + w_dead * int.sums[1] * inv);
                    acc[2] -= w * (w_alive * p / (alpha + big_t) + w_dead * p * int.sums[2] * inv);
                    acc[3] += w * (-w_alive * ln_bt + w_dead / s - w_dead * int.sums[3] * inv);
                    acc[4] -= w * (w_alive * s / (beta + big_t) + w_dead * q * int.sums[4] * inv);
                }
            }
            acc
        });
        let n = d.n();
        let theta = [r, alpha, s, beta];
        let value = -(fixed[0] + per_customer[0]) / n;
        let grad: Vec<f64> = (0..4)
            .map(|k| -theta[k] * (fixed[k + 1] + per_customer[k + 1]) / n)
            .collect();
        (value.is_finite() && grad.iter().all(|g| g.is_finite())).then_some((value, grad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Composite Simpson on a fine grid in τ, as an independent reference.
    fn simpson(alpha: f64, beta: f64, p: f64, q: f64, t_x: f64, big_t: f64) -> f64 {
        let n = 200_000;
        let h = (big_t - t_x) / n as f64;
        let f = |tau: f64| (alpha + tau).powf(-p) * (beta + tau).powf(-q);
        let mut sum = f(t_x) + f(big_t);
        for k in 1..n {
            sum += f(t_x + k as f64 * h) * if k % 2 == 1 { 4.0 } else { 2.0 };
        }
        sum * h / 3.0
    }

    /// The Fader-Hardie 2F1 form of the same integral (α ≥ β branch), by its plain
    /// series, valid where that converges quickly.
    fn hypergeometric_form(
        alpha: f64,
        beta: f64,
        r: f64,
        s: f64,
        x: f64,
        t_x: f64,
        big_t: f64,
    ) -> f64 {
        let k = r + s + x;
        let f21 = |z: f64| {
            let (mut term, mut sum) = (1.0, 1.0);
            for n in 0..100_000 {
                let nf = n as f64;
                term *= (k + nf) * (s + 1.0 + nf) / ((k + 1.0 + nf) * (nf + 1.0)) * z;
                sum += term;
                if term.abs() < 1e-18 * sum {
                    break;
                }
            }
            sum
        };
        let z1 = (alpha - beta) / (alpha + t_x);
        let z2 = (alpha - beta) / (alpha + big_t);
        (f21(z1) / (alpha + t_x).powf(k) - f21(z2) / (alpha + big_t).powf(k)) / k
    }

    #[test]
    fn quadrature_matches_simpson_and_the_hypergeometric_form() {
        for &(alpha, beta, r, s, x, t_x, big_t) in &[
            (10.578, 11.669, 0.553, 0.606, 2.0, 30.0, 38.0),
            (12.0, 3.0, 0.5, 0.6, 0.0, 0.0, 39.0),
            (2.0, 30.0, 0.8, 1.5, 7.0, 5.0, 60.0),
            (0.05, 20.0, 0.3, 0.2, 0.0, 0.0, 300.0),
            (20.0, 0.05, 0.3, 0.2, 40.0, 1.0, 300.0),
        ] {
            let p = r + x;
            let q = s + 1.0;
            let i = integral(alpha, beta, p, q, t_x, big_t, false);
            let quad = i.scale.exp() * i.sums[0];
            let reference = simpson(alpha, beta, p, q, t_x, big_t);
            assert!(
                (quad - reference).abs() <= 1e-9 * reference,
                "{quad} vs {reference}"
            );
            if alpha >= beta && (alpha - beta) / (alpha + t_x) < 0.8 {
                // s · integral = s/(r+s+x) · A0 of the note.
                let f = hypergeometric_form(alpha, beta, r, s, x, t_x, big_t);
                assert!((quad - f).abs() <= 1e-9 * f, "{quad} vs {f}");
            }
        }
    }

    #[test]
    fn quadrature_stays_cheap_and_exact_at_extreme_trial_parameters() {
        // r run off to 1e9 (as an optimiser may try): the integrand is flat, then
        // collapses; the panel guard would turn a crawl into NaN.
        let (alpha, beta, p, q, t_x, big_t) = (20.0, 0.05, 1e9 + 0.3, 1.2, 1.0, 300.0);
        let i = integral(alpha, beta, p, q, t_x, big_t, true);
        let log_i = i.scale + i.sums[0].ln();
        // Laplace: I ≈ (α+t_x)^-p (β+t_x)^-q (α+t_x) / p, relative error O(1/p).
        let approx = -p * (alpha + t_x).ln() - q * (beta + t_x).ln() + ((alpha + t_x) / p).ln();
        assert!((log_i - approx).abs() < 1e-6, "{log_i} vs {approx}");
        assert!(i.sums.iter().all(|v| v.is_finite()));
        // s run off to 0 and α to near 0: long, slowly decaying stretches.
        let i = integral(1e-8, 30.0, 0.3, 1.0 + 1e-12, 0.0, 500.0, true);
        assert!(i.sums.iter().all(|v| v.is_finite()) && i.sums[0] > 0.0);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let s = Summary {
            user_ids: (0..5).map(|i| i.to_string()).collect(),
            frequency: vec![0.0, 2.0, 5.0, 1.0, 0.0],
            recency: vec![0.0, 20.0, 30.0, 3.0, 0.0],
            t: vec![30.0, 35.0, 31.0, 10.0, 0.0],
            monetary: vec![0.0; 5],
            first_value: vec![0.0; 5],
        };
        let data = CountData::new(&s);
        let objective = ParetoObjective { data: &data };
        for p in [vec![-0.6, 2.3, -0.5, 2.4], vec![0.3, -1.0, 0.7, 2.0]] {
            let (_, grad) = objective.value_grad(&p).unwrap();
            for k in 0..4 {
                let h = 1e-6;
                let mut up = p.clone();
                up[k] += h;
                let mut down = p.clone();
                down[k] -= h;
                let numeric = (objective.value_grad(&up).unwrap().0
                    - objective.value_grad(&down).unwrap().0)
                    / (2.0 * h);
                assert!(
                    (numeric - grad[k]).abs() < 1e-7,
                    "{k}: {numeric} vs {}",
                    grad[k]
                );
            }
        }
    }

    #[test]
    fn p_alive_falls_for_silent_one_time_buyers() {
        let m = ParetoNbd::new(0.553, 10.578, 0.606, 11.669).unwrap();
        let fresh = m.p_alive(0.0, 0.0, 1.0).unwrap();
        let old = m.p_alive(0.0, 0.0, 39.0).unwrap();
        assert!(old < fresh && fresh <= 1.0 && old > 0.0);
        assert_eq!(m.p_alive(0.0, 0.0, 0.0).unwrap(), 1.0);
        let e = m.expected_purchases(39.0, 2.0, 30.0, 38.0).unwrap();
        assert!(e > 0.0);
        // Continuous through s = 1.
        let below = ParetoNbd::new(0.5, 10.0, 1.0 - 1e-9, 11.0).unwrap();
        let at = ParetoNbd::new(0.5, 10.0, 1.0, 11.0).unwrap();
        let gap = below.expected_purchases(20.0, 1.0, 5.0, 30.0).unwrap()
            - at.expected_purchases(20.0, 1.0, 5.0, 30.0).unwrap();
        assert!(gap.abs() < 1e-6);
    }
}
