//! Statistical customer-base models, fitted by maximum likelihood: BG/NBD (Fader,
//! Hardie & Lee 2005), Pareto/NBD (Schmittlein, Morrison & Colombo 1987) and the
//! Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV").
//!
//! [`summarize`] turns canonical events into the per-customer frequency, recency, age
//! and mean repeat value ([`Summary`]) these models need; a transaction is a
//! (customer, UTC calendar day) with a purchase. [`BgNbd::fit`], [`ParetoNbd::fit`] and
//! [`GammaGamma::fit`] maximise the likelihood on log-parameters with L-BFGS and an
//! analytic gradient, falling back through a ladder of rescue strategies (better
//! starts, a small penalty, Nelder-Mead, a simpler model) recorded in a [`FitReport`].
//! Degenerate inputs are refused with [`Error::Skip`] and a reason, never with NaN.
//!
//! ```no_run
//! # fn demo(events: &polars::prelude::DataFrame) -> userlens_predict::stats::Result<()> {
//! use userlens_predict::stats::{summarize, BgNbd, GammaGamma, PurchaseModel, TimeUnit};
//! let calibration_end = 875_664_000_000_000; // 1997-10-01T00:00:00Z in microseconds
//! let summary = summarize(events, calibration_end, TimeUnit::Weeks)?;
//! let fit = BgNbd::fit(&summary)?;
//! let next_quarter = fit.model.expected_purchases(13.0, 2.0, 30.4, 38.9)?;
//! let spend = GammaGamma::fit(&summary)?;
//! let value = spend.model.expected_spend(2.0, 24.5)?;
//! # let _ = (next_quarter, value); Ok(()) }
//! ```

mod bgnbd;
mod gamma_gamma;
mod optim;
mod pareto;
pub(crate) mod special;
mod summary;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::BTreeMap;

pub use crate::error::{Error, Result};
use serde::Serialize;

pub use bgnbd::{BgNbd, Nbd};
pub use gamma_gamma::{GammaGamma, discounted_value};
pub use pareto::ParetoNbd;
pub use summary::{
    Histories, Summary, TimeUnit, histories_sorted, holdout_transactions, summarize, summary_frame,
};

/// Fewest customers a model is fitted on; below this the estimates are noise.
pub const MIN_CUSTOMERS: usize = 10;

/// How a model fit went: parameters, likelihood and which rung of the fallback
/// ladder produced them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitReport {
    /// Model name (`bg/nbd`, `pareto/nbd`, `nbd`, `gamma-gamma`).
    pub model: &'static str,
    /// Fitted parameters by name.
    pub params: BTreeMap<String, f64>,
    /// Log-likelihood of the data at the fitted parameters (without any penalty).
    pub log_likelihood: f64,
    /// Optimiser iterations of the accepted rung.
    pub iterations: usize,
    /// Whether the optimiser met its convergence criterion.
    pub converged: bool,
    /// Ladder rung that produced the fit: `default`, `better start`,
    /// `penalty 0.001`, `nelder-mead` or `nbd fallback`.
    pub rung: String,
    /// Why the rungs before the accepted one were rejected, and other caveats.
    pub reason: Option<String>,
}

/// A fitted model with its report.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit<M> {
    /// The fitted model.
    pub model: M,
    /// How the fit went.
    pub report: FitReport,
}

/// A model of repeat purchases that predicts, per customer, from frequency `x`,
/// recency `t_x` and age `big_t` (all in the summary's time unit).
pub trait PurchaseModel {
    /// Expected repeat purchases in the next `t` time units, given the history.
    fn expected_purchases(&self, t: f64, x: f64, t_x: f64, big_t: f64) -> Result<f64>;

    /// Probability that the customer is still active at the end of the history.
    fn p_alive(&self, x: f64, t_x: f64, big_t: f64) -> Result<f64>;

    /// Probability of at least one repeat purchase in the next `t` time units, given
    /// the history: the model's own, not a Poisson count of its expectation (which
    /// overstates it: a customer who may have left buys more often or never).
    fn p_purchase(&self, t: f64, x: f64, t_x: f64, big_t: f64) -> Result<f64>;

    /// [`PurchaseModel::expected_purchases`] for every customer of a summary.
    fn expected_purchases_all(&self, summary: &Summary, t: f64) -> Result<Vec<f64>> {
        summary
            .customers()
            .map(|(x, t_x, big_t)| self.expected_purchases(t, x, t_x, big_t))
            .collect()
    }

    /// [`PurchaseModel::p_alive`] for every customer of a summary.
    fn p_alive_all(&self, summary: &Summary) -> Result<Vec<f64>> {
        summary
            .customers()
            .map(|(x, t_x, big_t)| self.p_alive(x, t_x, big_t))
            .collect()
    }
}

/// A fitted repeat-purchase model: what [`BgNbd::fit`] and [`ParetoNbd::fit`]
/// return, either the requested model or the no-dropout NBD fallback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CountModel {
    /// BG/NBD.
    BgNbd(BgNbd),
    /// Pareto/NBD.
    ParetoNbd(ParetoNbd),
    /// NBD without dropout (every customer stays active).
    Nbd(Nbd),
}

impl CountModel {
    /// The BG/NBD model, when that is what was fitted.
    pub fn as_bg_nbd(&self) -> Option<&BgNbd> {
        match self {
            CountModel::BgNbd(m) => Some(m),
            _ => None,
        }
    }

    /// The Pareto/NBD model, when that is what was fitted.
    pub fn as_pareto_nbd(&self) -> Option<&ParetoNbd> {
        match self {
            CountModel::ParetoNbd(m) => Some(m),
            _ => None,
        }
    }
}

impl PurchaseModel for CountModel {
    fn expected_purchases(&self, t: f64, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        match self {
            CountModel::BgNbd(m) => m.expected_purchases(t, x, t_x, big_t),
            CountModel::ParetoNbd(m) => m.expected_purchases(t, x, t_x, big_t),
            CountModel::Nbd(m) => m.expected_purchases(t, x, t_x, big_t),
        }
    }

    fn p_alive(&self, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        match self {
            CountModel::BgNbd(m) => m.p_alive(x, t_x, big_t),
            CountModel::ParetoNbd(m) => m.p_alive(x, t_x, big_t),
            CountModel::Nbd(m) => m.p_alive(x, t_x, big_t),
        }
    }

    fn p_purchase(&self, t: f64, x: f64, t_x: f64, big_t: f64) -> Result<f64> {
        match self {
            CountModel::BgNbd(m) => m.p_purchase(t, x, t_x, big_t),
            CountModel::ParetoNbd(m) => m.p_purchase(t, x, t_x, big_t),
            CountModel::Nbd(m) => m.p_purchase(t, x, t_x, big_t),
        }
    }
}

/// P(at least one purchase in `t`) of a customer alive at `big_t` with purchase rate
/// λ ~ Gamma(r + x, α + T) and no dropout: `1 - ((α+T)/(α+T+t))^(r+x)`.
fn any_purchase_staying(r: f64, alpha: f64, t: f64, x: f64, big_t: f64) -> f64 {
    -(-(r + x) * (t / (alpha + big_t)).ln_1p()).exp_m1()
}

/// Checks one customer's history: finite, `x >= 0`, `0 <= t_x <= big_t`.
fn check_customer(x: f64, t_x: f64, big_t: f64) -> Result<()> {
    if !(x.is_finite() && t_x.is_finite() && big_t.is_finite()) {
        return Err(Error::Invalid(format!(
            "frequency {x}, recency {t_x} and age {big_t} must be finite"
        )));
    }
    if x < 0.0 || t_x < 0.0 || t_x > big_t {
        return Err(Error::Invalid(format!(
            "need frequency >= 0 and 0 <= recency <= age, got frequency {x}, recency {t_x}, age {big_t}"
        )));
    }
    Ok(())
}

/// Checks a prediction horizon.
fn check_horizon(t: f64) -> Result<()> {
    if t.is_finite() && t >= 0.0 {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "horizon must be finite and >= 0, got {t}"
        )))
    }
}
