//! Times a BG/NBD fit on simulated customers (default 1,000,000) with known
//! parameters and prints the recovered parameters and the seconds taken.
//!
//! `cargo run --release -p userlens-predict --example stats_bench -- [customers] [seed]`

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution, Exp, Gamma, Uniform};
use rand_xoshiro::Xoshiro256PlusPlus;
use userlens_predict::stats::{BgNbd, Summary};

/// BG/NBD customers with first purchases spread over the first 12 weeks, observed
/// until week 39 (continuous times).
fn simulate(n: usize, truth: BgNbd, seed: u64) -> Result<Summary, Box<dyn std::error::Error>> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let rate = Gamma::new(truth.r, 1.0 / truth.alpha)?;
    let dropout = Beta::new(truth.a, truth.b)?;
    let start = Uniform::new(0.0, 12.0);
    let mut s = Summary::default();
    for i in 0..n {
        let lambda: f64 = rate.sample(&mut rng);
        let p: f64 = dropout.sample(&mut rng);
        let big_t = 39.0 - start.sample(&mut rng);
        let gap = Exp::new(lambda.max(1e-12))?;
        let (mut now, mut x, mut t_x) = (0.0, 0.0, 0.0);
        loop {
            now += gap.sample(&mut rng);
            if now > big_t {
                break;
            }
            x += 1.0;
            t_x = now;
            if rng.gen_bool(p) {
                break;
            }
        }
        s.user_ids.push(format!("{i:08}"));
        s.frequency.push(x);
        s.recency.push(t_x);
        s.t.push(big_t);
        s.monetary.push(0.0);
        s.first_value.push(0.0);
    }
    Ok(s)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let seed: u64 = args.next().map_or(Ok(42), |a| a.parse())?;
    let truth = BgNbd::new(0.243, 4.414, 0.793, 2.426)?;
    let summary = simulate(n, truth, seed)?;
    let started = Instant::now();
    let fit = BgNbd::fit(&summary)?;
    let seconds = started.elapsed().as_secs_f64();
    println!("customers: {n}");
    println!("truth: {truth:?}");
    println!("fitted: {:?}", fit.model);
    println!(
        "rung: {}, iterations: {}, log-likelihood: {:.4}",
        fit.report.rung, fit.report.iterations, fit.report.log_likelihood
    );
    println!("fit seconds: {seconds:.3}");
    Ok(())
}
