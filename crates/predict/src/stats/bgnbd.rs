//! BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way") and
//! the no-dropout NBD it falls back to.

use statrs::function::gamma::{digamma, ln_gamma};

use super::optim::{self, Objective, chunked_sum};
use super::special::{bg_expectation_core, log_add_exp, sigmoid};
use super::{
    CountModel, Error, Fit, MIN_CUSTOMERS, PurchaseModel, Result, Summary, check_customer,
    check_horizon,
};

/// BG/NBD: purchases follow a Poisson process with rate λ ~ Gamma(r, α) while the
/// customer is active; after each repeat purchase the customer drops out with
/// probability p ~ Beta(a, b).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbd {
    /// Shape of the purchase-rate gamma.
    pub r: f64,
    /// Rate (in time units) of the purchase-rate gamma.
    pub alpha: f64,
    /// First shape of the dropout-probability beta.
    pub a: f64,
    /// Second shape of the dropout-probability beta.
    pub b: f64,
}

/// NBD without dropout: purchases follow a Poisson process with rate
/// λ ~ Gamma(r, α) forever; the fallback when BG/NBD or Pareto/NBD cannot be fitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nbd {
    /// Shape of the purchase-rate gamma.
    pub r: f64,
    /// Rate (in time units) of the purchase-rate gamma.
    pub alpha: f64,
}

/// Checks that every parameter is finite and positive.
pub(crate) fn check_params(model: &str, params: &[(&str, f64)]) -> Result<()> {
    match params.iter().find(|(_, v)| !(v.is_finite() && *v > 0.0)) {
        Some((name, v)) => Err(Error::Invalid(format!(
            "{model} parameter {name} must be finite and > 0, got {v}"
        ))),
        None => Ok(()),
    }
}

fn finite(model: &str, what: &str, value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::Numerical(format!("{model} {what} is not finite")))
    }
}

impl BgNbd {
    /// A model from its parameters, each finite and > 0.
    pub fn new(r: f64, alpha: f64, a: f64, b: f64) -> Result<Self> {
        let model = BgNbd { r, alpha, a, b };
        model.check()?;
        Ok(model)
    }

    fn check(&self) -> Result<()> {
        check_params(
            "bg/nbd",
            &[
                ("r", self.r),
                ("alpha", self.alpha),
                ("a", self.a),
                ("b", self.b),
            ],
        )
    }

    /// Fits r, α, a, b by maximum likelihood, falling back to [`Nbd`] when no rung
    /// of the ladder converges.
    pub fn fit(summary: &Summary) -> Result<Fit<CountModel>> {
        gate("bg/nbd", summary)?;
        let data = CountData::new(summary);
        let objective = BgObjective { data: &data };
        let alpha0 = data.rate_scale();
        let default = vec![0.0, alpha0.ln(), 0.0, 0.0];
        let mut grid = Vec::new();
        for r in [0.1f64, 0.5, 2.0] {
            for scale in [0.3f64, 1.0, 3.0] {
                for a in [0.3f64, 1.0, 3.0] {
                    for b in [0.5f64, 2.0, 8.0] {
                        grid.push(vec![r.ln(), (alpha0 * scale * r).ln(), a.ln(), b.ln()]);
                    }
                }
            }
        }
        climb_or_nbd(
            "bg/nbd",
            &objective,
            &data,
            default,
            grid,
            |[r, alpha, a, b]| CountModel::BgNbd(BgNbd { r, alpha, a, b }),
        )
    }

    /// P(alive): probability that the customer has not dropped out by `big_t`.
    ///
    /// It is exactly 1 for customers without a repeat purchase (`x = 0`), because in
    /// BG/NBD dropout happens only right after a repeat purchase; do not use it as a
    /// churn score for one-time buyers (Pareto/NBD's is meaningful for them).
    pub fn p_alive(&self, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        self.check()?;
        check_customer(x, t_x, big_t)?;
        if x == 0.0 {
            return Ok(1.0);
        }
        let log_odds = self.a.ln() - (self.b + x - 1.0).ln()
            + (self.r + x) * ((self.alpha + big_t).ln() - (self.alpha + t_x).ln());
        finite("bg/nbd", "p_alive", sigmoid(-log_odds))
    }

    /// Expected repeat purchases in `(T, T + t]` given the history (Fader, Hardie &
    /// Lee 2005, eq. 10), with the Gauss hypergeometric 2F1 evaluated by a
    /// transformed series with a convergence check (see the `special` module); an
    /// error for horizons beyond about 10^5 times `α + T`.
    pub fn expected_purchases(&self, t: f64, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        check_horizon(t)?;
        let alive = self.p_alive(x, t_x, big_t)?;
        let core = bg_expectation_core(self.r, self.alpha, self.a, self.b, x, big_t, t)
            .ok_or_else(|| series_error(t))?;
        finite("bg/nbd", "expected purchases", core * alive)
    }

    /// P(at least one repeat purchase in `(T, T + t]`) given the history: alive, and
    /// then a purchase at the posterior rate, `P(alive) · (1 - ((α+T)/(α+T+t))^(r+x))`
    /// (dropout happens only right after a purchase, so none can come between).
    pub fn p_purchase(&self, t: f64, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        check_horizon(t)?;
        let alive = self.p_alive(x, t_x, big_t)?;
        let staying = super::any_purchase_staying(self.r, self.alpha, t, x, big_t);
        finite("bg/nbd", "purchase probability", alive * staying)
    }

    /// Unconditional expectation `E[X(t)]`: repeat purchases of a new customer in
    /// its first `t` time units (Fader, Hardie & Lee 2005, eq. 9).
    pub fn expected_purchases_new(&self, t: f64) -> Result<f64> {
        self.check()?;
        check_horizon(t)?;
        let core = bg_expectation_core(self.r, self.alpha, self.a, self.b, 0.0, 0.0, t)
            .ok_or_else(|| series_error(t))?;
        finite("bg/nbd", "expected purchases", core)
    }

    /// Log-likelihood of a summary under this model (the timing likelihood of Fader,
    /// Hardie & Lee 2005, eq. 6, summed over customers).
    pub fn log_likelihood(&self, summary: &Summary) -> Result<f64> {
        self.check()?;
        summary.check()?;
        let data = CountData::new(summary);
        let objective = BgObjective { data: &data };
        let log_params = [self.r.ln(), self.alpha.ln(), self.a.ln(), self.b.ln()];
        objective
            .value_grad(&log_params)
            .map(|(f, _)| -f * data.n())
            .ok_or_else(|| Error::Numerical("bg/nbd log-likelihood is not finite".to_string()))
    }
}

/// Climbs the standard ladder for a four-parameter count model and builds it with
/// `make`; when no rung converges, falls back to the NBD with the reasons.
pub(crate) fn climb_or_nbd(
    name: &'static str,
    objective: &dyn optim::Objective,
    data: &CountData,
    default: Vec<f64>,
    grid: Vec<Vec<f64>>,
    make: impl FnOnce([f64; 4]) -> CountModel,
) -> Result<Fit<CountModel>> {
    match optim::climb(name, objective, optim::standard_ladder(default, grid)) {
        Ok(accepted) => Ok(Fit {
            model: make(take4(&accepted.params)),
            report: accepted.report,
        }),
        Err(failures) => nbd_fallback(name, data, failures),
    }
}

fn series_error(t: f64) -> Error {
    Error::Numerical(format!(
        "bg/nbd expectation: the hypergeometric series did not converge for horizon {t}"
    ))
}

impl PurchaseModel for BgNbd {
    fn expected_purchases(&self, t: f64, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        BgNbd::expected_purchases(self, t, x, t_x, big_t)
    }
    fn p_purchase(&self, t: f64, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        BgNbd::p_purchase(self, t, x, t_x, big_t)
    }
    fn p_alive(&self, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        BgNbd::p_alive(self, x, t_x, big_t)
    }
}

impl Nbd {
    /// A model from its parameters, each finite and > 0.
    pub fn new(r: f64, alpha: f64) -> Result<Self> {
        let model = Nbd { r, alpha };
        model.check()?;
        Ok(model)
    }

    fn check(&self) -> Result<()> {
        check_params("nbd", &[("r", self.r), ("alpha", self.alpha)])
    }

    /// Fits r and α by maximum likelihood.
    pub fn fit(summary: &Summary) -> Result<Fit<Nbd>> {
        gate("nbd", summary)?;
        let data = CountData::new(summary);
        let objective = NbdObjective { data: &data };
        let accepted = optim::climb("nbd", &objective, nbd_ladder(&data))
            .map_err(|failures| Error::Skip(format!("nbd skipped: {}", failures.join("; "))))?;
        let [r, alpha] = take2(&accepted.params);
        Ok(Fit {
            model: Nbd { r, alpha },
            report: accepted.report,
        })
    }

    /// Always 1: this model has no dropout.
    pub fn p_alive(&self, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        self.check()?;
        check_customer(x, t_x, big_t)?;
        Ok(1.0)
    }

    /// P(at least one repeat purchase in `(T, T + t]`): no one leaves.
    pub fn p_purchase(&self, t: f64, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        self.check()?;
        check_horizon(t)?;
        check_customer(x, t_x, big_t)?;
        let p = super::any_purchase_staying(self.r, self.alpha, t, x, big_t);
        finite("nbd", "purchase probability", p)
    }

    /// Expected repeat purchases in `(T, T + t]`: `(r + x) / (α + T) · t`.
    pub fn expected_purchases(&self, t: f64, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        self.check()?;
        check_horizon(t)?;
        check_customer(x, t_x, big_t)?;
        finite(
            "nbd",
            "expected purchases",
            (self.r + x) / (self.alpha + big_t) * t,
        )
    }
}

impl PurchaseModel for Nbd {
    fn expected_purchases(&self, t: f64, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        Nbd::expected_purchases(self, t, x, t_x, big_t)
    }
    fn p_purchase(&self, t: f64, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        Nbd::p_purchase(self, t, x, t_x, big_t)
    }
    fn p_alive(&self, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        Nbd::p_alive(self, x, t_x, big_t)
    }
}

/// Refuses summaries a count model cannot be fitted on.
pub(crate) fn gate(model: &str, summary: &Summary) -> Result<()> {
    summary.check()?;
    let n = summary.len();
    if n == 0 {
        return Err(Error::Skip(format!("{model} skipped: no customers")));
    }
    if n < MIN_CUSTOMERS {
        return Err(Error::Skip(format!(
            "{model} skipped: only {n} customer{}, at least {MIN_CUSTOMERS} needed",
            if n == 1 { "" } else { "s" }
        )));
    }
    if summary.frequency.iter().all(|&x| x == 0.0) {
        return Err(Error::Skip(format!(
            "{model} skipped: no customer has a repeat transaction"
        )));
    }
    Ok(())
}

/// Falls back from `model` to the NBD, or skips with every reason.
pub(crate) fn nbd_fallback(
    model: &str,
    data: &CountData,
    failures: Vec<String>,
) -> Result<Fit<CountModel>> {
    let why = failures.join("; ");
    let objective = NbdObjective { data };
    match optim::climb("nbd", &objective, nbd_ladder(data)) {
        Ok(accepted) => {
            let [r, alpha] = take2(&accepted.params);
            let mut report = accepted.report;
            report.rung = "nbd fallback".to_string();
            report.reason = Some(format!(
                "{model} did not fit ({why}); fell back to nbd without dropout, p_alive = 1"
            ));
            Ok(Fit {
                model: CountModel::Nbd(Nbd { r, alpha }),
                report,
            })
        }
        Err(nbd) => Err(Error::Skip(format!(
            "{model} skipped: {why}; nbd fallback: {}",
            nbd.join("; ")
        ))),
    }
}

fn nbd_ladder(data: &CountData) -> Vec<optim::Rung> {
    let alpha0 = data.rate_scale();
    let grid = [0.1f64, 0.5, 2.0]
        .iter()
        .flat_map(|&r| [0.3f64, 1.0, 3.0].map(|s| vec![r.ln(), (alpha0 * s * r).ln()]))
        .collect();
    optim::standard_ladder(vec![0.0, alpha0.ln()], grid)
}

pub(crate) fn take4(p: &[f64]) -> [f64; 4] {
    [0, 1, 2, 3].map(|i| p.get(i).copied().unwrap_or(f64::NAN))
}

pub(crate) fn take2(p: &[f64]) -> [f64; 2] {
    [0, 1].map(|i| p.get(i).copied().unwrap_or(f64::NAN))
}

/// Customers of a summary arranged for fast likelihoods: the distinct frequencies
/// with their counts (terms that depend on `x` alone are computed once per value)
/// and, per customer, the index of its frequency, its recency and its age.
pub(crate) struct CountData {
    /// Distinct frequencies.
    pub xs: Vec<f64>,
    /// Customers per distinct frequency.
    pub counts: Vec<f64>,
    /// Per distinct history: index into `xs`.
    pub idx: Vec<u32>,
    /// Per distinct history: recency.
    pub t_x: Vec<f64>,
    /// Per distinct history: age.
    pub big_t: Vec<f64>,
    /// Per distinct history: how many customers share it.
    pub weight: Vec<f64>,
}

impl CountData {
    /// Customers with the same (x, t_x, T) share one likelihood term, weighted by
    /// their number: histories measured in whole days or weeks repeat a lot, so the
    /// per-customer work (Pareto/NBD's quadrature above all) shrinks several-fold.
    pub fn new(summary: &Summary) -> Self {
        let mut xs = summary.frequency.clone();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let mut histories: Vec<(f64, f64, f64)> = summary.customers().collect();
        histories.sort_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then(a.1.total_cmp(&b.1))
                .then(a.2.total_cmp(&b.2))
        });
        let (mut idx, mut t_x, mut big_t, mut weight) = (vec![], vec![], vec![], vec![]);
        let mut counts = vec![0.0; xs.len()];
        let mut previous: Option<(f64, f64, f64)> = None;
        for history in histories {
            let j = xs
                .binary_search_by(|probe| probe.total_cmp(&history.0))
                .unwrap_or_default();
            counts[j] += 1.0;
            if previous.is_some_and(|p| {
                p.0.total_cmp(&history.0).is_eq()
                    && p.1.total_cmp(&history.1).is_eq()
                    && p.2.total_cmp(&history.2).is_eq()
            }) && let Some(w) = weight.last_mut()
            {
                *w += 1.0;
                continue;
            }
            previous = Some(history);
            idx.push(j as u32);
            t_x.push(history.1);
            big_t.push(history.2);
            weight.push(1.0);
        }
        CountData {
            xs,
            counts,
            idx,
            t_x,
            big_t,
            weight,
        }
    }

    /// Number of customers.
    pub fn n(&self) -> f64 {
        self.counts.iter().sum()
    }

    /// Observed time per repeat purchase: a scale for α at r = 1.
    pub fn rate_scale(&self) -> f64 {
        let repeats: f64 = self.xs.iter().zip(&self.counts).map(|(x, c)| x * c).sum();
        let time: f64 = self.big_t.iter().sum();
        let scale = time / repeats.max(1.0);
        if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        }
    }
}

/// Mean negative BG/NBD log-likelihood over log(r, α, a, b).
struct BgObjective<'a> {
    data: &'a CountData,
}

impl Objective for BgObjective<'_> {
    fn names(&self) -> &'static [&'static str] {
        &["r", "alpha", "a", "b"]
    }

    fn count(&self) -> f64 {
        self.data.n()
    }

    fn value_grad(&self, log_params: &[f64]) -> Option<(f64, Vec<f64>)> {
        let [r, alpha, a, b] = take4(log_params).map(f64::exp);
        let d = self.data;
        // Terms that depend on x alone, once per distinct x.
        let (ln_alpha, ln_a) = (alpha.ln(), a.ln());
        let (lg_r, lg_b, lg_ab) = (ln_gamma(r), ln_gamma(b), ln_gamma(a + b));
        let (dg_r, dg_b, dg_ab) = (digamma(r), digamma(b), digamma(a + b));
        let mut fixed = [0.0f64; 5];
        let mut log_a_over = Vec::with_capacity(d.xs.len());
        let mut inv_b_x1 = Vec::with_capacity(d.xs.len());
        for (&x, &count) in d.xs.iter().zip(&d.counts) {
            let dg_abx = digamma(a + b + x);
            fixed[0] += count
                * (ln_gamma(r + x) - lg_r + r * ln_alpha + lg_ab + ln_gamma(b + x)
                    - lg_b
                    - ln_gamma(a + b + x));
            fixed[1] += count * (digamma(r + x) - dg_r + ln_alpha);
            fixed[2] += count * r / alpha;
            fixed[3] += count * (dg_ab - dg_abx);
            fixed[4] += count * (dg_ab - dg_abx + digamma(b + x) - dg_b);
            log_a_over.push(if x > 0.0 {
                ln_a - (b + x - 1.0).ln()
            } else {
                0.0
            });
            inv_b_x1.push(if x > 0.0 { 1.0 / (b + x - 1.0) } else { 0.0 });
        }
        let per_customer = chunked_sum(d.idx.len(), |range| {
            let mut acc = [0.0f64; 5];
            for i in range {
                let j = d.idx[i] as usize;
                let (x, w) = (d.xs[j], d.weight[i]);
                let rx = r + x;
                let at = alpha + d.big_t[i];
                let ln_at = at.ln();
                let a3 = -rx * ln_at;
                if x > 0.0 {
                    let atx = alpha + d.t_x[i];
                    let ln_atx = atx.ln();
                    let a4 = log_a_over[j] - rx * ln_atx;
                    let (ll, w4) = log_add_exp(a3, a4);
                    let w3 = 1.0 - w4;
                    acc[0] += w * ll;
                    acc[1] -= w * (w3 * ln_at + w4 * ln_atx);
                    acc[2] -= w * rx * (w3 / at + w4 / atx);
                    acc[3] += w * w4 / a;
                    acc[4] -= w * w4 * inv_b_x1[j];
                } else {
                    acc[0] += w * a3;
                    acc[1] -= w * ln_at;
                    acc[2] -= w * rx / at;
                }
            }
            acc
        });
        let n = d.n();
        let theta = [r, alpha, a, b];
        let value = -(fixed[0] + per_customer[0]) / n;
        let grad: Vec<f64> = (0..4)
            .map(|k| -theta[k] * (fixed[k + 1] + per_customer[k + 1]) / n)
            .collect();
        (value.is_finite() && grad.iter().all(|g| g.is_finite())).then_some((value, grad))
    }
}

/// Mean negative NBD log-likelihood over log(r, α).
struct NbdObjective<'a> {
    data: &'a CountData,
}

impl Objective for NbdObjective<'_> {
    fn names(&self) -> &'static [&'static str] {
        &["r", "alpha"]
    }

    fn count(&self) -> f64 {
        self.data.n()
    }

    fn value_grad(&self, log_params: &[f64]) -> Option<(f64, Vec<f64>)> {
        let [r, alpha] = take2(log_params).map(f64::exp);
        let d = self.data;
        let (ln_alpha, lg_r, dg_r) = (alpha.ln(), ln_gamma(r), digamma(r));
        let mut fixed = [0.0f64; 3];
        for (&x, &count) in d.xs.iter().zip(&d.counts) {
            fixed[0] += count * (ln_gamma(r + x) - lg_r + r * ln_alpha);
            fixed[1] += count * (digamma(r + x) - dg_r + ln_alpha);
            fixed[2] += count * r / alpha;
        }
        let per_customer = chunked_sum(d.idx.len(), |range| {
            let mut acc = [0.0f64; 3];
            for i in range {
                let (rx, w) = (r + d.xs[d.idx[i] as usize], d.weight[i]);
                let at = alpha + d.big_t[i];
                let ln_at = at.ln();
                acc[0] -= w * rx * ln_at;
                acc[1] -= w * ln_at;
                acc[2] -= w * rx / at;
            }
            acc
        });
        let n = d.n();
        let value = -(fixed[0] + per_customer[0]) / n;
        let grad = vec![
            -r * (fixed[1] + per_customer[1]) / n,
            -alpha * (fixed[2] + per_customer[2]) / n,
        ];
        (value.is_finite() && grad.iter().all(|g| g.is_finite())).then_some((value, grad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(rows: &[(f64, f64, f64)]) -> Summary {
        Summary {
            user_ids: (0..rows.len()).map(|i| format!("u{i:03}")).collect(),
            frequency: rows.iter().map(|r| r.0).collect(),
            recency: rows.iter().map(|r| r.1).collect(),
            t: rows.iter().map(|r| r.2).collect(),
            monetary: vec![0.0; rows.len()],
            first_value: vec![0.0; rows.len()],
        }
    }

    /// Numerical gradient of the objective matches the analytic one.
    #[test]
    fn gradients_match_finite_differences() {
        let s = summary(&[
            (0.0, 0.0, 30.0),
            (2.0, 20.0, 35.0),
            (5.0, 30.0, 31.0),
            (1.0, 3.0, 10.0),
        ]);
        let data = CountData::new(&s);
        let objectives: [(&dyn Objective, Vec<f64>); 2] = [
            (&BgObjective { data: &data }, vec![-1.2, 1.4, -0.2, 0.9]),
            (&NbdObjective { data: &data }, vec![-0.5, 1.0]),
        ];
        for (objective, p) in objectives {
            let (_, grad) = objective.value_grad(&p).unwrap();
            for k in 0..p.len() {
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
    fn p_alive_is_one_without_repeat_purchases() {
        let m = BgNbd::new(0.24, 4.4, 0.79, 2.4).unwrap();
        assert_eq!(m.p_alive(0.0, 0.0, 30.0).unwrap(), 1.0);
        let p = m.p_alive(3.0, 5.0, 38.0).unwrap();
        assert!(p > 0.0 && p < 1.0);
        // Recent buyers are more likely alive than lapsed ones.
        assert!(m.p_alive(3.0, 37.0, 38.0).unwrap() > p);
    }

    #[test]
    fn predictions_refuse_bad_inputs() {
        let m = BgNbd::new(0.24, 4.4, 0.79, 2.4).unwrap();
        assert!(matches!(m.p_alive(1.0, 5.0, 3.0), Err(Error::Invalid(_))));
        assert!(matches!(
            m.expected_purchases(f64::NAN, 1.0, 1.0, 3.0),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            m.expected_purchases(1.0, -1.0, 0.0, 3.0),
            Err(Error::Invalid(_))
        ));
        assert!(BgNbd::new(0.0, 1.0, 1.0, 1.0).is_err());
        let broken = BgNbd {
            r: f64::NAN,
            alpha: 1.0,
            a: 1.0,
            b: 1.0,
        };
        assert!(broken.expected_purchases(1.0, 1.0, 1.0, 2.0).is_err());
        assert!(Nbd::new(1.0, -2.0).is_err());
    }

    #[test]
    fn unconditional_expectation_grows_with_time() {
        let m = BgNbd::new(0.24, 4.4, 0.79, 2.4).unwrap();
        let e10 = m.expected_purchases_new(10.0).unwrap();
        let e50 = m.expected_purchases_new(50.0).unwrap();
        assert!(e10 > 0.0 && e50 > e10);
        assert_eq!(m.expected_purchases_new(0.0).unwrap(), 0.0);
        // Equals the conditional expectation of a customer seen for no time.
        let cond = m.expected_purchases(50.0, 0.0, 0.0, 0.0).unwrap();
        assert!((cond - e50).abs() < 1e-12);
    }
}
