//! Maximum-likelihood fitting on log-parameters with a fallback ladder.
//!
//! Optimisers come from `argmin`: L-BFGS with a More-Thuente line search and the
//! analytic gradient, Nelder-Mead as the derivative-free rescue.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::neldermead::NelderMead;
use argmin::solver::quasinewton::LBFGS;
use rayon::prelude::*;

use super::FitReport;

/// Customers per parallel chunk; fixed so that partial sums, added in chunk order,
/// do not depend on the number of threads.
pub(crate) const CHUNK: usize = 8192;

/// Sums per-chunk accumulators of `N` numbers in chunk order (deterministic).
pub(crate) fn chunked_sum<const N: usize, F>(n: usize, per_chunk: F) -> [f64; N]
where
    F: Fn(std::ops::Range<usize>) -> [f64; N] + Sync,
{
    let chunks = n.div_ceil(CHUNK);
    let parts: Vec<[f64; N]> = (0..chunks)
        .into_par_iter()
        .map(|c| per_chunk(c * CHUNK..((c + 1) * CHUNK).min(n)))
        .collect();
    let mut total = [0.0; N];
    for part in parts {
        for (t, p) in total.iter_mut().zip(part) {
            *t += p;
        }
    }
    total
}

/// A negative mean log-likelihood over log-parameters.
pub(crate) trait Objective: Sync {
    /// Parameter names, in order.
    fn names(&self) -> &'static [&'static str];
    /// Number of observations the mean is over.
    fn count(&self) -> f64;
    /// Mean negative log-likelihood and its gradient with respect to the
    /// log-parameters; `None` when not finite.
    fn value_grad(&self, log_params: &[f64]) -> Option<(f64, Vec<f64>)>;
}

/// Largest |log parameter| accepted: beyond it a parameter has run off towards 0 or
/// infinity and the model has degenerated.
const MAX_LOG_PARAM: f64 = 18.0;
/// A run is abandoned once a parameter passes this |log|: well beyond what is
/// accepted, so that a line-search probe near the bound does not end a good run.
const ABANDON_LOG_PARAM: f64 = 18.5;
/// Gradient norm (per observation, on log-parameters) under which a fit counts as
/// converged even when the line search stops first.
const CONVERGED_GRAD: f64 = 1e-5;
/// An iteration that lowers the mean negative log-likelihood by less than this has
/// stalled at the summation noise of a large data set (docs/benchmarks.md); the fit
/// then counts as converged only if its gradient is below [`CONVERGED_GRAD`].
const STALLED_COST: f64 = 1e-10;
/// Penalty of the penalised rung, on the squared log-parameters.
pub(crate) const PENALTY: f64 = 1e-3;

type Cached = Option<(Vec<f64>, f64, Vec<f64>)>;

struct Problem<'a> {
    objective: &'a dyn Objective,
    penalty: f64,
    cache: Mutex<Cached>,
    /// Likelihood evaluations (cache misses), for the `-vv` log.
    evaluations: &'a AtomicUsize,
}

impl<'a> Problem<'a> {
    fn new(
        objective: &'a dyn Objective,
        penalty: f64,
        evaluations: &'a AtomicUsize,
    ) -> Problem<'a> {
        Problem {
            objective,
            penalty,
            cache: Mutex::new(None),
            evaluations,
        }
    }
}

impl Problem<'_> {
    fn eval(&self, p: &[f64]) -> Result<(f64, Vec<f64>), argmin::core::Error> {
        if let Ok(cache) = self.cache.lock()
            && let Some((at, f, g)) = cache.as_ref()
            && at.as_slice() == p
        {
            return Ok((*f, g.clone()));
        }
        // A parameter this far out will not come back inside the accepted range:
        // stop the run now rather than creep towards 0 or infinity for hundreds of
        // iterations (on data without dropout, Pareto/NBD's s does exactly that).
        if let Some(problem) = degenerate_beyond(self.objective.names(), p, ABANDON_LOG_PARAM) {
            return Err(argmin::core::Error::msg(problem));
        }
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        let (mut f, mut g) = self
            .objective
            .value_grad(p)
            .ok_or_else(|| argmin::core::Error::msg("log-likelihood is not finite"))?;
        for (gi, pi) in g.iter_mut().zip(p) {
            f += self.penalty * pi * pi;
            *gi += 2.0 * self.penalty * pi;
        }
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some((p.to_vec(), f, g.clone()));
        }
        Ok((f, g))
    }
}

impl CostFunction for Problem<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        self.eval(p).map(|(f, _)| f)
    }
}

impl Gradient for Problem<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, p: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
        self.eval(p).map(|(_, g)| g)
    }
}

/// One optimiser run.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Method {
    /// L-BFGS to a gradient norm of `tol`.
    Lbfgs { tol: f64, max_iters: u64 },
    /// Nelder-Mead until the simplex costs' standard deviation is below `tol`.
    NelderMead { tol: f64, max_iters: u64 },
}

/// Outcome of one optimiser run.
struct Outcome {
    log_params: Vec<f64>,
    iterations: usize,
    converged: bool,
    note: String,
}

fn run(
    objective: &dyn Objective,
    start: &[f64],
    penalty: f64,
    method: Method,
) -> Result<Outcome, String> {
    let evaluations = AtomicUsize::new(0);
    let problem = Problem::new(objective, penalty, &evaluations);
    let started = std::time::Instant::now();
    let (best, iterations, reason) = match method {
        Method::Lbfgs { tol, max_iters } => {
            let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10)
                .with_tolerance_grad(tol)
                .and_then(|s| s.with_tolerance_cost(STALLED_COST))
                .map_err(|e| e.to_string())?;
            let result = Executor::new(problem, solver)
                .configure(|state| state.param(start.to_vec()).max_iters(max_iters))
                .timer(false)
                .run()
                .map_err(|e| e.to_string())?;
            let state = result.state();
            (
                state.get_best_param().cloned(),
                state.get_iter(),
                state.get_termination_reason().cloned(),
            )
        }
        Method::NelderMead { tol, max_iters } => {
            let simplex: Vec<Vec<f64>> = std::iter::once(start.to_vec())
                .chain((0..start.len()).map(|i| {
                    let mut v = start.to_vec();
                    v[i] += 0.5;
                    v
                }))
                .collect();
            // argmin's Nelder-Mead unwraps its first costs: a vertex out of range
            // (a log-parameter run off, as huge amounts make the spend model's) ends
            // the run here instead.
            for vertex in &simplex {
                problem.eval(vertex).map_err(|e| e.to_string())?;
            }
            let solver = NelderMead::new(simplex)
                .with_sd_tolerance(tol)
                .map_err(|e| e.to_string())?;
            let result = Executor::new(problem, solver)
                .configure(|state| state.max_iters(max_iters))
                .timer(false)
                .run()
                .map_err(|e| e.to_string())?;
            let state = result.state();
            (
                state.get_best_param().cloned(),
                state.get_iter(),
                state.get_termination_reason().cloned(),
            )
        }
    };
    tracing::debug!(
        "fit of ({}): {iterations} iterations, {} likelihood evaluations in {:.2} s",
        objective.names().join(", "),
        evaluations.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    let best = best.ok_or_else(|| "the optimiser returned no parameters".to_string())?;
    let problem = Problem::new(objective, penalty, &evaluations);
    let (_, grad) = problem.eval(&best).map_err(|e| e.to_string())?;
    let grad_norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
    // Why the solver stopped, and the gradient a converged fit has at most: the
    // reason of a fit that is not converged.
    let stopped = |reason: Option<TerminationReason>, most: f64| {
        let why = match reason {
            Some(TerminationReason::SolverConverged) => "its own stopping test met".to_string(),
            other => other.map_or_else(|| "no reason".to_string(), |r| r.text().to_lowercase()),
        };
        let above = if grad_norm > most {
            format!(", above the {most:.1e} of a converged fit")
        } else {
            String::new()
        };
        format!(
            "stopped after {iterations} iterations ({why}) with a gradient norm of \
             {grad_norm:.1e}{above}"
        )
    };
    let (converged, note) = match (&method, reason) {
        (Method::NelderMead { .. }, Some(TerminationReason::SolverConverged)) => (
            grad_norm <= CONVERGED_GRAD * 10.0,
            stopped(
                Some(TerminationReason::SolverConverged),
                CONVERGED_GRAD * 10.0,
            ),
        ),
        (Method::NelderMead { .. }, other) => (false, stopped(other, CONVERGED_GRAD * 10.0)),
        (Method::Lbfgs { .. }, other) => {
            (grad_norm <= CONVERGED_GRAD, stopped(other, CONVERGED_GRAD))
        }
    };
    Ok(Outcome {
        log_params: best,
        iterations: iterations as usize,
        converged,
        note,
    })
}

/// Starting points of a rung (log-parameters); the best converged run wins.
pub(crate) enum Starts {
    /// These points.
    Fixed(Vec<Vec<f64>>),
    /// The `keep` points of a grid with the lowest objective, scored only when the
    /// rung is reached.
    BestOf { grid: Vec<Vec<f64>>, keep: usize },
}

/// A rung of the fallback ladder.
pub(crate) struct Rung {
    /// Name recorded in the report.
    pub name: String,
    /// Where the optimiser starts.
    pub starts: Starts,
    /// Penalty on the squared log-parameters.
    pub penalty: f64,
    /// Optimiser.
    pub method: Method,
}

/// Default L-BFGS settings.
pub(crate) const LBFGS: Method = Method::Lbfgs {
    tol: 1e-9,
    max_iters: 500,
};

/// The standard ladder: default start, the best 3 starts of a grid, a penalty on
/// the squared log-parameters, then Nelder-Mead (penalised, many iterations).
pub(crate) fn standard_ladder(default: Vec<f64>, grid: Vec<Vec<f64>>) -> Vec<Rung> {
    vec![
        Rung {
            name: "default".to_string(),
            starts: Starts::Fixed(vec![default.clone()]),
            penalty: 0.0,
            method: LBFGS,
        },
        Rung {
            name: "better start".to_string(),
            starts: Starts::BestOf { grid, keep: 3 },
            penalty: 0.0,
            method: LBFGS,
        },
        Rung {
            name: format!("penalty {PENALTY}"),
            starts: Starts::Fixed(vec![default.clone()]),
            penalty: PENALTY,
            method: LBFGS,
        },
        Rung {
            name: "nelder-mead".to_string(),
            starts: Starts::Fixed(vec![default]),
            penalty: PENALTY,
            method: Method::NelderMead {
                tol: 1e-12,
                max_iters: 20_000,
            },
        },
    ]
}

/// The `keep` starts of `grid` with the lowest objective (ties by order).
pub(crate) fn best_starts(
    objective: &dyn Objective,
    grid: Vec<Vec<f64>>,
    keep: usize,
) -> Vec<Vec<f64>> {
    let mut scored: Vec<(f64, Vec<f64>)> = grid
        .into_iter()
        .filter_map(|p| objective.value_grad(&p).map(|(f, _)| (f, p)))
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    scored.into_iter().take(keep).map(|(_, p)| p).collect()
}

/// An accepted fit: parameters (natural scale) and its report.
pub(crate) struct Accepted {
    pub params: Vec<f64>,
    pub report: FitReport,
}

/// Climbs the ladder until a rung yields a converged, finite, non-degenerate fit.
/// `Err` carries the reasons every rung failed.
pub(crate) fn climb(
    model: &'static str,
    objective: &dyn Objective,
    ladder: Vec<Rung>,
) -> Result<Accepted, Vec<String>> {
    let mut failures = Vec::new();
    let mut ran_off = false;
    for rung in ladder {
        if ran_off && rung.penalty == 0.0 {
            // The likelihood rises towards a boundary: another start without a
            // penalty climbs to the same boundary, at the cost of whole runs.
            failures.push(format!(
                "{}: skipped, an unpenalised fit runs off from any start",
                rung.name
            ));
            continue;
        }
        let mut best: Option<(f64, Outcome)> = None;
        let mut rung_notes = Vec::new();
        let starts = match rung.starts {
            Starts::Fixed(starts) => starts,
            Starts::BestOf { grid, keep } => best_starts(objective, grid, keep),
        };
        for start in &starts {
            match run(objective, start, rung.penalty, rung.method) {
                Ok(outcome) => {
                    let value = objective.value_grad(&outcome.log_params).map(|(f, _)| f);
                    let problem = degenerate(objective.names(), &outcome.log_params);
                    match (value, problem, outcome.converged) {
                        (Some(f), None, true) => {
                            if best.as_ref().is_none_or(|(bf, _)| f < *bf) {
                                best = Some((f, outcome));
                            }
                        }
                        (None, _, _) => {
                            rung_notes.push("log-likelihood not finite at the optimum".to_string())
                        }
                        (_, Some(problem), _) => {
                            ran_off = true;
                            rung_notes.push(problem)
                        }
                        (_, None, false) => {
                            rung_notes.push(format!("did not converge: {}", outcome.note))
                        }
                    }
                }
                Err(e) => rung_notes.push(format!("optimiser failed: {e}")),
            }
        }
        match best {
            Some((f, outcome)) => {
                let params: Vec<f64> = outcome.log_params.iter().map(|p| p.exp()).collect();
                let report = FitReport {
                    model,
                    params: objective
                        .names()
                        .iter()
                        .zip(&params)
                        .map(|(n, v)| (n.to_string(), *v))
                        .collect::<BTreeMap<_, _>>(),
                    log_likelihood: -f * objective.count(),
                    iterations: outcome.iterations,
                    converged: outcome.converged,
                    rung: rung.name,
                    reason: (!failures.is_empty()).then(|| failures.join("; ")),
                };
                return Ok(Accepted { params, report });
            }
            None => {
                rung_notes.dedup();
                let notes = if rung_notes.is_empty() {
                    "no start".to_string()
                } else {
                    rung_notes.join(", ")
                };
                failures.push(format!("{}: {notes}", rung.name));
            }
        }
    }
    Err(failures)
}

/// Why a parameter vector is degenerate, if it is.
fn degenerate(names: &[&str], log_params: &[f64]) -> Option<String> {
    degenerate_beyond(names, log_params, MAX_LOG_PARAM)
}

fn degenerate_beyond(names: &[&str], log_params: &[f64], bound: f64) -> Option<String> {
    names.iter().zip(log_params).find_map(|(name, p)| {
        (!p.is_finite() || p.abs() > bound)
            .then(|| format!("parameter {name} ran off to {:.3e}", p.exp()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (log p - 1)^2 + 2 (log q + 0.5)^2, minimum at p = e, q = e^-0.5.
    struct Bowl;
    impl Objective for Bowl {
        fn names(&self) -> &'static [&'static str] {
            &["p", "q"]
        }
        fn count(&self) -> f64 {
            1.0
        }
        fn value_grad(&self, v: &[f64]) -> Option<(f64, Vec<f64>)> {
            let f = (v[0] - 1.0).powi(2) + 2.0 * (v[1] + 0.5).powi(2);
            Some((f, vec![2.0 * (v[0] - 1.0), 4.0 * (v[1] + 0.5)]))
        }
    }

    /// Minimum at log p = +infinity: every rung must be rejected or penalised.
    struct Slope;
    impl Objective for Slope {
        fn names(&self) -> &'static [&'static str] {
            &["p"]
        }
        fn count(&self) -> f64 {
            1.0
        }
        fn value_grad(&self, v: &[f64]) -> Option<(f64, Vec<f64>)> {
            Some(((-v[0]).exp(), vec![-(-v[0]).exp()]))
        }
    }

    #[test]
    fn ladder_accepts_the_default_rung_on_a_bowl() {
        let fit = climb(
            "bowl",
            &Bowl,
            standard_ladder(vec![0.0, 0.0], vec![vec![1.0, 1.0]]),
        )
        .unwrap();
        assert_eq!(fit.report.rung, "default");
        assert!((fit.params[0] - 1f64.exp()).abs() < 1e-6);
        assert!((fit.params[1] - (-0.5f64).exp()).abs() < 1e-6);
        assert!(fit.report.reason.is_none());
    }

    #[test]
    fn a_run_that_is_not_converged_says_by_how_much() {
        // One iteration from far away: stopped with the gradient still large.
        let method = Method::Lbfgs {
            tol: 1e-12,
            max_iters: 1,
        };
        let outcome = run(&Bowl, &[9.0, 9.0], 0.0, method).unwrap_or_else(|e| panic!("{e}"));
        assert!(!outcome.converged);
        assert!(
            outcome.note.starts_with("stopped after 1 iterations (")
                && outcome
                    .note
                    .ends_with(", above the 1.0e-5 of a converged fit"),
            "{}",
            outcome.note
        );
        assert!(
            !outcome.note.contains("solver converged"),
            "{}",
            outcome.note
        );
    }

    #[test]
    fn ladder_penalises_a_runaway_parameter() {
        let fit = climb("slope", &Slope, standard_ladder(vec![0.0], vec![vec![1.0]])).unwrap();
        assert_eq!(fit.report.rung, "penalty 0.001");
        assert!(fit.params[0].is_finite());
        assert!(fit.report.reason.is_some());
    }

    #[test]
    fn a_start_out_of_range_fails_every_rung_without_a_panic() {
        // Past ABANDON_LOG_PARAM from the start, as a spend model's scale is when
        // amounts run to 1e10: Nelder-Mead's first costs fail too.
        let start = vec![ABANDON_LOG_PARAM + 1.0, 0.0];
        let failures = match climb("bowl", &Bowl, standard_ladder(start.clone(), vec![start])) {
            Err(failures) => failures,
            Ok(fit) => panic!("accepted {:?}", fit.params),
        };
        assert_eq!(failures.len(), 4, "{failures:?}");
        assert!(
            failures[3].starts_with("nelder-mead: optimiser failed"),
            "{failures:?}"
        );
    }

    #[test]
    fn chunked_sum_adds_in_order() {
        let total = chunked_sum(3 * CHUNK + 5, |range| [range.len() as f64, 1.0]);
        assert_eq!(total, [(3 * CHUNK + 5) as f64, 4.0]);
    }
}
