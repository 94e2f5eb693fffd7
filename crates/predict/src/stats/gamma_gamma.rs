//! Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV: Using Iso-Value
//! Curves for Customer Base Analysis").

use statrs::function::gamma::{digamma, ln_gamma};

use super::bgnbd::check_params;
use super::optim::{self, Objective, chunked_sum};
use super::{Error, Fit, MIN_CUSTOMERS, PurchaseModel, Result, Summary};

/// Gamma-Gamma: each transaction value is Gamma(p, ν), and ν ~ Gamma(q, γ) across
/// customers; fitted on customers with repeat transactions, using their mean repeat
/// value and repeat count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGamma {
    /// Shape of the per-transaction value gamma.
    pub p: f64,
    /// Shape of the customer-level rate gamma.
    pub q: f64,
    /// Scale of the customer-level rate gamma.
    pub gamma: f64,
}

impl GammaGamma {
    /// A model from its parameters, each finite and > 0.
    pub fn new(p: f64, q: f64, gamma: f64) -> Result<Self> {
        let model = GammaGamma { p, q, gamma };
        model.check()?;
        Ok(model)
    }

    fn check(&self) -> Result<()> {
        check_params(
            "gamma-gamma",
            &[("p", self.p), ("q", self.q), ("gamma", self.gamma)],
        )
    }

    /// Fits p, q, γ by maximum likelihood on the customers with `frequency > 0` and a
    /// positive mean repeat value; customers with a non-positive mean (refunds) are
    /// left out and counted in the report's reason.
    pub fn fit(summary: &Summary) -> Result<Fit<GammaGamma>> {
        summary.check()?;
        let mut data = SpendData::default();
        let mut non_positive = 0usize;
        for (&x, &m) in summary.frequency.iter().zip(&summary.monetary) {
            if x > 0.0 {
                if m.is_finite() && m > 0.0 {
                    data.x.push(x);
                    data.m.push(m);
                } else {
                    non_positive += 1;
                }
            }
        }
        let n = data.x.len();
        if n == 0 {
            return Err(Error::Skip(
                "gamma-gamma skipped: no customer has a repeat transaction with a positive value"
                    .to_string(),
            ));
        }
        if n < MIN_CUSTOMERS {
            return Err(Error::Skip(format!(
                "gamma-gamma skipped: only {n} customer{} with a repeat transaction of positive value, at least {MIN_CUSTOMERS} needed",
                if n == 1 { "" } else { "s" }
            )));
        }
        // Spend in a currency of small units (dong, rupiah) puts γ past the ladder's
        // bounds: fit on values divided by a power of two (exact), γ times it after.
        let typical = userlens_model::stats::median(data.m.iter().copied()).unwrap_or(1.0);
        let unit = spend_unit(typical);
        if unit > 1.0 {
            data.m.iter_mut().for_each(|m| *m /= unit);
        }
        // The starts scale with the typical value, not the mean: one customer's
        // trillion would put every start at the bound of γ.
        let typical_m = typical / unit;
        let default = vec![2f64.ln(), 3f64.ln(), typical_m.ln()];
        let mut grid = Vec::new();
        for p in [0.5f64, 2.0, 8.0] {
            for q in [1.5f64, 3.0, 8.0] {
                for scale in [0.3f64, 1.0, 3.0] {
                    grid.push(vec![
                        p.ln(),
                        q.ln(),
                        (typical_m * (q - 1.0) / p * scale).ln(),
                    ]);
                }
            }
        }
        let objective = SpendObjective { data: &data };
        let accepted = optim::climb(
            "gamma-gamma",
            &objective,
            optim::standard_ladder(default, grid),
        )
        .map_err(|failures| Error::Skip(format!("gamma-gamma skipped: {}", failures.join("; "))))?;
        let mut report = accepted.report;
        if non_positive > 0 {
            let note = format!(
                "{non_positive} repeat customers with a non-positive mean value were left out"
            );
            report.reason = Some(match report.reason {
                Some(reason) => format!("{reason}; {note}"),
                None => note,
            });
        }
        let [p, q, gamma] = [0, 1, 2].map(|i| accepted.params.get(i).copied().unwrap_or(f64::NAN));
        let gamma = gamma * unit;
        if unit > 1.0 {
            report.params.insert("gamma".to_string(), gamma);
            // Each mean value's density is 1/unit of its scaled one's.
            report.log_likelihood -= n as f64 * unit.ln();
        }
        Ok(Fit {
            model: GammaGamma { p, q, gamma },
            report,
        })
    }

    /// Expected value of a future transaction of a customer with `x` repeat
    /// transactions of mean value `m`: `p (γ + m x) / (p x + q - 1)`. With `x = 0` it
    /// is the population mean `p γ / (q - 1)`; undefined (an error) when
    /// `p x + q <= 1`.
    pub fn expected_spend(&self, x: f64, m: f64) -> Result<f64> {
        self.check()?;
        if !(x.is_finite() && x >= 0.0 && m.is_finite()) || (x > 0.0 && m <= 0.0) {
            return Err(Error::Invalid(format!(
                "gamma-gamma needs frequency >= 0 and a positive mean value when frequency > 0, got frequency {x}, mean value {m}"
            )));
        }
        let m = if x > 0.0 { m } else { 0.0 };
        let denominator = self.p * x + self.q - 1.0;
        if denominator <= 0.0 {
            return Err(Error::Numerical(format!(
                "gamma-gamma expected spend is undefined for frequency {x}: p·x + q = {} <= 1",
                denominator + 1.0
            )));
        }
        Ok(self.p * (self.gamma + m * x) / denominator)
    }

    /// Discounted expected value over `horizon_units` units: the sum over unit steps
    /// `k = 1..` of `(E[Y(k)] - E[Y(k-1)]) · expected_spend / (1 +
    /// discount_rate_per_unit)^k`, as lifetimes' `customer_lifetime_value`, for any
    /// purchase model (BG/NBD, Pareto/NBD, NBD); a horizon of a fraction of a unit
    /// more ends with a step of that fraction.
    #[allow(clippy::too_many_arguments)] // mirrors the published (x, t_x, T, m) signature
    pub fn clv<M: PurchaseModel + ?Sized>(
        &self,
        model: &M,
        x: f64,
        t_x: f64,
        big_t: f64,
        m: f64,
        horizon_units: f64,
        discount_rate_per_unit: f64,
    ) -> Result<f64> {
        let spend = self.expected_spend(x, m)?;
        discounted_value(
            model,
            x,
            t_x,
            big_t,
            spend,
            horizon_units,
            discount_rate_per_unit,
        )
    }

    /// Log-likelihood of the repeat customers of a summary (positive mean value)
    /// under this model.
    pub fn log_likelihood(&self, summary: &Summary) -> Result<f64> {
        self.check()?;
        summary.check()?;
        let mut data = SpendData::default();
        for (&x, &m) in summary.frequency.iter().zip(&summary.monetary) {
            if x > 0.0 && m.is_finite() && m > 0.0 {
                data.x.push(x);
                data.m.push(m);
            }
        }
        let objective = SpendObjective { data: &data };
        objective
            .value_grad(&[self.p.ln(), self.q.ln(), self.gamma.ln()])
            .map(|(f, _)| -f * data.x.len() as f64)
            .ok_or_else(|| Error::Numerical("gamma-gamma log-likelihood is not finite".to_string()))
    }
}

/// [`GammaGamma::clv`] of a customer whose expected spend per purchase is `spend`
/// (which the caller may take from other evidence than the repeat purchases).
pub fn discounted_value<M: PurchaseModel + ?Sized>(
    model: &M,
    x: f64,
    t_x: f64,
    big_t: f64,
    spend: f64,
    horizon_units: f64,
    discount_rate_per_unit: f64,
) -> Result<f64> {
    if !(discount_rate_per_unit.is_finite() && discount_rate_per_unit > -1.0) {
        return Err(Error::Invalid(format!(
            "discount rate must be finite and > -1, got {discount_rate_per_unit}"
        )));
    }
    if !(horizon_units.is_finite() && horizon_units >= 0.0) {
        return Err(Error::Invalid(format!(
            "horizon must be finite and >= 0 units, got {horizon_units}"
        )));
    }
    let mut value = 0.0;
    let mut previous = 0.0;
    let mut discount = 1.0;
    // Whole steps, then the fraction of one left, discounted for that fraction.
    let whole = horizon_units.floor();
    for k in 1..=horizon_units.ceil() as u32 {
        let at = f64::from(k).min(horizon_units);
        let cumulative = model.expected_purchases(at, x, t_x, big_t)?;
        discount /= match f64::from(k) <= horizon_units {
            true => 1.0 + discount_rate_per_unit,
            false => (1.0 + discount_rate_per_unit).powf(horizon_units - whole),
        };
        value += (cumulative - previous) * spend * discount;
        previous = cumulative;
    }
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::Numerical(
            "customer lifetime value is not finite".to_string(),
        ))
    }
}

/// Customers' mean values typically above this are fitted in units of a power of two
/// ([`spend_unit`]).
const LARGE_SPEND: f64 = (1u64 << 20) as f64;

/// The power of two that brings a typical (median) mean value above [`LARGE_SPEND`]
/// to between 1,024 and 2,048; 1 for any other.
fn spend_unit(typical: f64) -> f64 {
    if !(typical.is_finite() && typical > LARGE_SPEND) {
        return 1.0;
    }
    2f64.powi(typical.log2().floor() as i32 - 10)
}

#[derive(Default)]
struct SpendData {
    x: Vec<f64>,
    m: Vec<f64>,
}

/// Mean negative Gamma-Gamma log-likelihood over log(p, q, γ).
struct SpendObjective<'a> {
    data: &'a SpendData,
}

impl Objective for SpendObjective<'_> {
    fn names(&self) -> &'static [&'static str] {
        &["p", "q", "gamma"]
    }

    fn count(&self) -> f64 {
        self.data.x.len() as f64
    }

    fn value_grad(&self, log_params: &[f64]) -> Option<(f64, Vec<f64>)> {
        let [p, q, gamma] = [0, 1, 2].map(|i| log_params.get(i).copied().unwrap_or(f64::NAN).exp());
        let d = self.data;
        if d.x.is_empty() {
            return None;
        }
        let (lg_q, dg_q, ln_gamma_param) = (ln_gamma(q), digamma(q), gamma.ln());
        let sums = chunked_sum(d.x.len(), |range| {
            let mut acc = [0.0f64; 4];
            for i in range {
                let (x, m) = (d.x[i], d.m[i]);
                let px = p * x;
                let (ln_m, ln_x) = (m.ln(), x.ln());
                let total = gamma + m * x;
                let ln_total = total.ln();
                let dg_pxq = digamma(px + q);
                acc[0] += ln_gamma(px + q) - ln_gamma(px) - lg_q
                    + q * ln_gamma_param
                    + (px - 1.0) * ln_m
                    + px * ln_x
                    - (px + q) * ln_total;
                acc[1] += x * (dg_pxq - digamma(px) + ln_m + ln_x - ln_total);
                acc[2] += dg_pxq - dg_q + ln_gamma_param - ln_total;
                acc[3] += q / gamma - (px + q) / total;
            }
            acc
        });
        let n = d.x.len() as f64;
        let theta = [p, q, gamma];
        let value = -sums[0] / n;
        let grad: Vec<f64> = (0..3).map(|k| -theta[k] * sums[k + 1] / n).collect();
        (value.is_finite() && grad.iter().all(|g| g.is_finite())).then_some((value, grad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::BgNbd;

    #[test]
    fn gradient_matches_finite_differences() {
        let data = SpendData {
            x: vec![1.0, 2.0, 5.0, 3.0],
            m: vec![20.0, 35.5, 12.0, 80.0],
        };
        let objective = SpendObjective { data: &data };
        let p = vec![1.8, 1.3, 2.7];
        let (_, grad) = objective.value_grad(&p).unwrap();
        for k in 0..3 {
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

    #[test]
    fn expected_spend_shrinks_towards_the_population_mean() {
        let gg = GammaGamma::new(6.25, 3.74, 15.44).unwrap();
        let population = gg.expected_spend(0.0, 0.0).unwrap();
        assert!((population - 6.25 * 15.44 / 2.74).abs() < 1e-9);
        let one = gg.expected_spend(1.0, 100.0).unwrap();
        let many = gg.expected_spend(20.0, 100.0).unwrap();
        assert!(population < one && one < many && many < 100.0);
        assert!(gg.expected_spend(1.0, -5.0).is_err());
        let heavy_tailed = GammaGamma::new(1.0, 0.5, 10.0).unwrap();
        assert!(matches!(
            heavy_tailed.expected_spend(0.0, 0.0),
            Err(Error::Numerical(_))
        ));
    }

    #[test]
    fn clv_discounts_future_value() {
        let gg = GammaGamma::new(6.25, 3.74, 15.44).unwrap();
        let bg = BgNbd::new(0.243, 4.414, 0.793, 2.426).unwrap();
        let plain = gg.clv(&bg, 2.0, 30.0, 38.0, 40.0, 52.0, 0.0).unwrap();
        let discounted = gg.clv(&bg, 2.0, 30.0, 38.0, 40.0, 52.0, 0.01).unwrap();
        let expected = bg.expected_purchases(52.0, 2.0, 30.0, 38.0).unwrap()
            * gg.expected_spend(2.0, 40.0).unwrap();
        assert!((plain - expected).abs() < 1e-9 * expected);
        assert!(discounted < plain && discounted > 0.0);
        assert_eq!(gg.clv(&bg, 2.0, 30.0, 38.0, 40.0, 0.0, 0.01).unwrap(), 0.0);
        assert!(gg.clv(&bg, 2.0, 30.0, 38.0, 40.0, 10.0, -1.0).is_err());
    }
}
