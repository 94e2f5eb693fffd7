//! End-to-end checks on the real CDNOW sample against the published numbers, on
//! simulated data with known parameters, and on degenerate inputs.

use polars::prelude::{Column, DataFrame, Int64Chunked, IntoColumn, TimeUnit as PlTimeUnit};
use rand::SeedableRng;
use rand_distr::{Beta, Distribution, Exp, Gamma, Uniform};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::*;

const DAY: i64 = 86_400_000_000;

/// Days from 1970-01-01 to a proleptic Gregorian date (Hinnant's algorithm; the
/// crate has no date library and this is the only date the tests need).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn micros(y: i64, m: i64, d: i64) -> i64 {
    days_from_civil(y, m, d) * DAY
}

fn events_frame(rows: &[(String, i64, &str, Option<f64>)]) -> DataFrame {
    DataFrame::new(
        rows.len(),
        vec![
            Column::new(
                "user_id".into(),
                rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
            ),
            Int64Chunked::from_vec("event_time".into(), rows.iter().map(|r| r.1).collect())
                .into_datetime(PlTimeUnit::Microseconds, None)
                .into_column(),
            Column::new(
                "event_type".into(),
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            ),
            Column::new(
                "amount".into(),
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            ),
        ],
    )
    .unwrap()
}

/// The CDNOW 1/10 sample as canonical purchase events (one per record).
fn cdnow() -> DataFrame {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../sample_data/cdnow/CDNOW_sample.txt"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let rows: Vec<(String, i64, &str, Option<f64>)> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let date: i64 = fields[2].parse().unwrap();
            let amount: f64 = fields[4].parse().unwrap();
            let time = micros(date / 10_000, date / 100 % 100, date % 100);
            (fields[0].to_string(), time, "purchase", Some(amount))
        })
        .collect();
    assert_eq!(rows.len(), 6919);
    events_frame(&rows)
}

fn calibration_end() -> i64 {
    micros(1997, 10, 1)
}

fn cdnow_summary() -> Summary {
    summarize(&cdnow(), calibration_end(), TimeUnit::Weeks).unwrap()
}

fn close(actual: f64, expected: f64, relative: f64) -> bool {
    (actual - expected).abs() <= relative * expected.abs()
}

#[test]
fn cdnow_calibration_summary_matches_published_counts() {
    let s = cdnow_summary();
    assert_eq!(s.len(), 2357);
    assert_eq!(s.frequency.iter().sum::<f64>(), 2457.0);
    assert_eq!(s.frequency.iter().filter(|&&x| x > 0.0).count(), 946);
    // Customer 00004: 1997-01-01, 01-18, 08-02 (and 12-12, after calibration).
    let i = s.user_ids.iter().position(|u| u == "00004").unwrap();
    assert_eq!(s.frequency[i], 2.0);
    assert!((s.recency[i] - 213.0 / 7.0).abs() < 1e-12);
    assert!((s.t[i] - 272.0 / 7.0).abs() < 1e-12);
    assert!((s.monetary[i] - (29.73 + 14.96) / 2.0).abs() < 1e-9);
    assert!(s.user_ids.windows(2).all(|w| w[0] < w[1]));
    assert!(
        s.frequency
            .iter()
            .zip(&s.monetary)
            .all(|(&x, &m)| x > 0.0 || m == 0.0)
    );
}

#[test]
fn summary_in_days_counts_same_day_purchases_once() {
    let day = |d: i64, hour: i64| micros(2024, 3, 1) + d * DAY + hour * 3_600_000_000;
    let rows = vec![
        ("b".to_string(), day(0, 9), "purchase", Some(10.0)),
        ("b".to_string(), day(0, 18), "purchase", Some(5.0)),
        ("b".to_string(), day(3, 12), "purchase", Some(7.0)),
        ("b".to_string(), day(3, 13), "purchase", None),
        ("b".to_string(), day(5, 1), "view", None),
        ("b".to_string(), day(6, 8), "purchase", Some(20.0)),
        ("a".to_string(), day(2, 23), "purchase", Some(1.0)),
        ("a".to_string(), day(10, 0), "purchase", Some(99.0)), // after the end
    ];
    let s = summarize(&events_frame(&rows), day(10, 0), TimeUnit::Days).unwrap();
    assert_eq!(s.user_ids, vec!["a", "b"]);
    assert_eq!(s.frequency, vec![0.0, 2.0]);
    assert_eq!(s.recency, vec![0.0, 6.0]);
    assert_eq!(s.t, vec![7.0, 9.0]);
    assert_eq!(s.monetary, vec![0.0, 13.5]);
    // The first day's lines, summed; the amount a line lacks counts as 0.
    assert_eq!(s.first_value, vec![1.0, 15.0]);
    let holdout = holdout_transactions(&events_frame(&rows), day(3, 0), day(11, 0)).unwrap();
    assert_eq!(
        holdout,
        vec![("a".to_string(), 1.0), ("b".to_string(), 2.0)]
    );
}

#[test]
fn summary_reports_missing_and_mistyped_columns() {
    let frame = events_frame(&[("a".to_string(), 0, "purchase", Some(1.0))]);
    let missing = frame.drop("event_type").unwrap();
    let err = summarize(&missing, DAY, TimeUnit::Days).unwrap_err();
    assert_eq!(
        err.to_string(),
        "column `event_type` is missing from the events"
    );
    let mut mistyped = frame.clone();
    mistyped
        .with_column(Column::new("event_time".into(), vec!["yesterday"]))
        .unwrap();
    let err = summarize(&mistyped, DAY, TimeUnit::Days).unwrap_err();
    assert_eq!(
        err.to_string(),
        "column `event_time` has type str, expected a datetime, a date or integer microseconds"
    );
    let no_amount = frame.drop("amount").unwrap();
    let s = summarize(&no_amount, DAY, TimeUnit::Days).unwrap();
    assert_eq!(s.monetary, vec![0.0]);
}

#[test]
fn cdnow_bg_nbd_matches_published_fit() {
    let s = cdnow_summary();
    let fit = BgNbd::fit(&s).unwrap();
    let m = *fit.model.as_bg_nbd().unwrap();
    assert!(close(m.r, 0.242595, 1e-3), "r {}", m.r);
    assert!(close(m.alpha, 4.413603, 1e-3), "alpha {}", m.alpha);
    assert!(close(m.a, 0.792922, 1e-3), "a {}", m.a);
    assert!(close(m.b, 2.425906, 1e-3), "b {}", m.b);
    assert!(
        (fit.report.log_likelihood - -9582.4292).abs() < 0.01,
        "{:?}",
        fit.report
    );
    assert_eq!(fit.report.rung, "default");
    assert!(fit.report.converged && fit.report.reason.is_none());
    assert!((m.log_likelihood(&s).unwrap() - fit.report.log_likelihood).abs() < 1e-9);
    // Deterministic: a second fit is bit-identical.
    assert_eq!(BgNbd::fit(&s).unwrap(), fit);
}

#[test]
fn cdnow_holdout_matches_published_forecast() {
    let events = cdnow();
    let s = cdnow_summary();
    let holdout = holdout_transactions(&events, calibration_end(), micros(1998, 7, 1)).unwrap();
    assert_eq!(holdout.iter().map(|(_, n)| n).sum::<f64>(), 1882.0);
    let fit = BgNbd::fit(&s).unwrap();
    let expected: f64 = fit
        .model
        .expected_purchases_all(&s, 39.0)
        .unwrap()
        .iter()
        .sum();
    assert!(close(expected, 1653.0, 0.01), "expected {expected}");
    // P(alive) of BG/NBD by its closed form (Fader, Hardie & Lee 2005, eq. 13) for
    // the paper's example customer: 1 / (1 + a/(b+x-1) ((α+T)/(α+t_x))^(r+x)).
    let m = *fit.model.as_bg_nbd().unwrap();
    let (x, t_x, big_t) = (2.0, 30.43, 38.86);
    let odds = m.a / (m.b + x - 1.0) * ((m.alpha + big_t) / (m.alpha + t_x)).powf(m.r + x);
    let alive = m.p_alive(x, t_x, big_t).unwrap();
    assert!(close(alive, 1.0 / (1.0 + odds), 1e-12), "{alive}");
    assert!(close(alive, 0.7266, 1e-3), "{alive}");
    assert_eq!(m.p_alive(0.0, 0.0, 38.0).unwrap(), 1.0);
    assert!(m.p_alive(x, t_x, 50.0).unwrap() < alive);
    // Repeat customers the model calls alive buy over twice as often in the holdout
    // (BG/NBD's P(alive) is 1 for every one-time buyer, so they are left out).
    let alive = fit.model.p_alive_all(&s).unwrap();
    let bought: std::collections::HashMap<String, f64> = holdout.into_iter().collect();
    let mean_holdout = |keep: &dyn Fn(f64) -> bool| {
        let chosen: Vec<f64> = (0..s.user_ids.len())
            .filter(|&i| s.frequency[i] > 0.0 && keep(alive[i]))
            .map(|i| bought.get(&s.user_ids[i]).copied().unwrap_or(0.0))
            .collect();
        chosen.iter().sum::<f64>() / chosen.len() as f64
    };
    let (likely, unlikely) = (mean_holdout(&|p| p >= 0.5), mean_holdout(&|p| p < 0.5));
    assert!(likely > 2.0 * unlikely, "{likely} vs {unlikely}");
}

#[test]
fn gamma_gamma_fits_spend_in_small_currency_units_as_in_large_ones() {
    // CDNOW's dollars in a unit 3e8 to the dollar: γ near e^22, past the ladder's
    // bound of e^18, unless fitted in larger units.
    let dollars = cdnow_summary();
    let rate = 3e8;
    let mut dong = dollars.clone();
    dong.monetary.iter_mut().for_each(|m| *m *= rate);
    let (a, b) = (
        GammaGamma::fit(&dollars).unwrap(),
        GammaGamma::fit(&dong).unwrap(),
    );
    assert!(
        close(b.model.p, a.model.p, 1e-6),
        "p {} vs {}",
        b.model.p,
        a.model.p
    );
    assert!(
        close(b.model.q, a.model.q, 1e-6),
        "q {} vs {}",
        b.model.q,
        a.model.q
    );
    let gamma = a.model.gamma * rate;
    assert!(
        close(b.model.gamma, gamma, 1e-6),
        "gamma {} vs {gamma}",
        b.model.gamma
    );
    assert_eq!(b.report.params["gamma"], b.model.gamma);
    // Each repeat customer's mean value has 1/rate of its density in dong.
    let repeat = dollars.frequency.iter().filter(|&&x| x > 0.0).count() as f64;
    let ll = a.report.log_likelihood - repeat * rate.ln();
    assert!(
        (b.report.log_likelihood - ll).abs() < 1e-6 * ll.abs(),
        "{} vs {ll}",
        b.report.log_likelihood
    );
    let spend = b.model.expected_spend(2.0, 22.35 * rate).unwrap();
    let dollars_spend = a.model.expected_spend(2.0, 22.35).unwrap() * rate;
    assert!(
        close(spend, dollars_spend, 1e-6),
        "{spend} vs {dollars_spend}"
    );
}

#[test]
fn gamma_gamma_fits_beside_one_customer_of_a_trillion() {
    // One repeat customer's mean of 1e12 (an amount the ingest keeps) lifts the mean
    // of all to the bound of γ; the fit still starts from the typical customer.
    let mut s = cdnow_summary();
    let whale = (s.frequency.iter()).position(|&x| x > 0.0).unwrap();
    s.monetary[whale] = 1e12;
    let fit = GammaGamma::fit(&s).unwrap();
    let m = fit.model;
    assert!(m.p.is_finite() && m.q > 1.0 && m.gamma < 1e6, "{m:?}");
}

#[test]
fn cdnow_gamma_gamma_matches_published_fit() {
    let s = cdnow_summary();
    let fit = GammaGamma::fit(&s).unwrap();
    let m = fit.model;
    assert!(close(m.p, 6.2496, 1e-3), "p {}", m.p);
    assert!(close(m.q, 3.7442, 1e-3), "q {}", m.q);
    assert!(close(m.gamma, 15.4435, 1e-3), "gamma {}", m.gamma);
    assert!(
        (fit.report.log_likelihood - -4055.9177).abs() < 0.01,
        "{:?}",
        fit.report
    );
    assert_eq!(fit.report.rung, "default");
    // Expected spend of a customer with x = 2 purchases averaging 22.35 (eq. 5):
    // p (γ + m x) / (p x + q - 1).
    let spend = m.expected_spend(2.0, 22.35).unwrap();
    let by_hand = m.p * (m.gamma + 22.35 * 2.0) / (m.p * 2.0 + m.q - 1.0);
    assert!(close(spend, by_hand, 1e-12), "{spend} vs {by_hand}");
    let bg = BgNbd::fit(&s).unwrap();
    let (x, t_x, big_t) = (2.0, 30.43, 38.86);
    let clv = |units, rate| m.clv(&bg.model, x, t_x, big_t, 22.35, units, rate).unwrap();
    let purchases = |t| bg.model.expected_purchases(t, x, t_x, big_t).unwrap();
    // Undiscounted, the value is the expected purchases times the expected spend.
    assert!(close(clv(52.0, 0.0), purchases(52.0) * spend, 1e-12));
    // One unit is discounted once.
    assert!(close(clv(1.0, 0.01), purchases(1.0) * spend / 1.01, 1e-12));
    // Two units: the second unit's purchases are discounted twice.
    let two = purchases(1.0) * spend / 1.01 + (purchases(2.0) - purchases(1.0)) * spend / 1.0201;
    assert!(close(clv(2.0, 0.01), two, 1e-12));
    assert!(clv(52.0, 0.01) < clv(52.0, 0.0));
    // 30 days in weeks: the purchases up to 30/7 weeks, not up to 5 (35 days), the
    // last 2/7 of a week discounted for that much more.
    let weeks = 30.0 / 7.0;
    assert!(close(clv(weeks, 0.0), purchases(weeks) * spend, 1e-12));
    let last = (purchases(weeks) - purchases(4.0)) * spend / 1.01f64.powf(weeks);
    assert!(close(clv(weeks, 0.01), clv(4.0, 0.01) + last, 1e-12));
}

#[test]
fn cdnow_pareto_nbd_matches_published_fit() {
    let s = cdnow_summary();
    let fit = ParetoNbd::fit(&s).unwrap();
    let m = *fit.model.as_pareto_nbd().unwrap();
    assert!(
        (fit.report.log_likelihood - -9594.976).abs() < 0.05,
        "{:?}",
        fit.report
    );
    assert!(close(m.r, 0.553, 0.01), "r {}", m.r);
    assert!(close(m.alpha, 10.578, 0.01), "alpha {}", m.alpha);
    assert!(close(m.s, 0.606, 0.01), "s {}", m.s);
    assert!(close(m.beta, 11.669, 0.01), "beta {}", m.beta);
    // Meaningful for one-time buyers: silent ones are less likely alive.
    assert!(m.p_alive(0.0, 0.0, 38.0).unwrap() < m.p_alive(0.0, 0.0, 30.0).unwrap());
}

/// Adds customer `i` with `x` repeat purchases, the last at `t_x`, observed for `big_t`.
fn push_customer(s: &mut Summary, i: usize, x: f64, t_x: f64, big_t: f64) {
    s.user_ids.push(format!("{i:07}"));
    s.frequency.push(x);
    s.recency.push(t_x);
    s.t.push(big_t);
    s.monetary.push(0.0);
    s.first_value.push(0.0);
}

/// Simulates Pareto/NBD customers: a Poisson purchase rate ~ Gamma(r, α) until an
/// exponential lifetime of rate ~ Gamma(s, β), observed for 12 to 39 units.
fn simulate_pareto_nbd(n: usize, truth: ParetoNbd, seed: u64) -> Summary {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let rate = Gamma::new(truth.r, 1.0 / truth.alpha).unwrap();
    let dropout = Gamma::new(truth.s, 1.0 / truth.beta).unwrap();
    let start = Uniform::new(0.0, 27.0);
    let mut s = Summary::default();
    for i in 0..n {
        let lambda: f64 = rate.sample(&mut rng);
        let mu: f64 = dropout.sample(&mut rng);
        let big_t = 39.0 - start.sample(&mut rng);
        let alive = Exp::new(mu.max(1e-12)).unwrap().sample(&mut rng).min(big_t);
        let gap = Exp::new(lambda.max(1e-12)).unwrap();
        let (mut now, mut x, mut t_x) = (0.0, 0.0, 0.0);
        loop {
            now += gap.sample(&mut rng);
            if now > alive {
                break;
            }
            x += 1.0;
            t_x = now;
        }
        push_customer(&mut s, i, x, t_x, big_t);
    }
    s
}

#[test]
fn a_start_on_the_no_dropout_plateau_still_reaches_the_maximum() {
    // Nearly the same dropout rate for everyone (a large s): the maximum lies far
    // along a ridge. A warm start from a fit that drifted towards s = 0, where the
    // gradient in ln s vanishes, is fitted again from other starts.
    let truth = ParetoNbd::new(0.5, 10.0, 200.0, 200.0 / 0.05).unwrap();
    let s = simulate_pareto_nbd(5_000, truth, 11);
    let plateau = ParetoNbd::new(0.5, 10.0, 1e-6, 1e4).unwrap();
    let warm = ParetoNbd::fit_from(&s, Some(&plateau)).unwrap();
    let at_truth = truth.log_likelihood(&s).unwrap();
    assert!(
        warm.report.log_likelihood > at_truth - 1.0,
        "{:?} against {at_truth} at the truth",
        warm.report
    );
    let m = *warm.model.as_pareto_nbd().unwrap();
    assert!(m.s > 1.0, "{m:?}");
}

/// Simulates BG/NBD customers: first purchases spread over the first 12 units,
/// observed until unit 39.
fn simulate_bg_nbd(n: usize, truth: BgNbd, seed: u64) -> Summary {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let rate = Gamma::new(truth.r, 1.0 / truth.alpha).unwrap();
    let dropout = Beta::new(truth.a, truth.b).unwrap();
    let start = Uniform::new(0.0, 12.0);
    let mut s = Summary::default();
    for i in 0..n {
        let lambda: f64 = rate.sample(&mut rng);
        let p: f64 = dropout.sample(&mut rng);
        let big_t = 39.0 - start.sample(&mut rng);
        let gap = Exp::new(lambda.max(1e-12)).unwrap();
        let (mut now, mut x, mut t_x) = (0.0, 0.0, 0.0);
        loop {
            now += gap.sample(&mut rng);
            if now > big_t {
                break;
            }
            x += 1.0;
            t_x = now;
            if rand::Rng::gen_bool(&mut rng, p) {
                break;
            }
        }
        push_customer(&mut s, i, x, t_x, big_t);
    }
    s
}

#[test]
fn bg_nbd_recovers_simulated_parameters() {
    let truth = BgNbd::new(0.25, 4.0, 0.8, 2.5).unwrap();
    let s = simulate_bg_nbd(20_000, truth, 7);
    let fit = BgNbd::fit(&s).unwrap();
    let m = *fit.model.as_bg_nbd().unwrap();
    assert!(close(m.r, truth.r, 0.1), "{m:?}");
    assert!(close(m.alpha, truth.alpha, 0.15), "{m:?}");
    assert!(close(m.a, truth.a, 0.2), "{m:?}");
    assert!(close(m.b, truth.b, 0.2), "{m:?}");
    // The truth fits worse than the maximum, but not by much.
    let at_truth = truth.log_likelihood(&s).unwrap();
    assert!(at_truth <= fit.report.log_likelihood && at_truth > fit.report.log_likelihood - 20.0);
}

fn user_rows(users: &[(&str, &[(i64, f64)])]) -> DataFrame {
    let rows: Vec<(String, i64, &str, Option<f64>)> = users
        .iter()
        .flat_map(|(u, purchases)| {
            purchases
                .iter()
                .map(move |&(day, amount)| (u.to_string(), day * DAY, "purchase", Some(amount)))
        })
        .collect();
    events_frame(&rows)
}

fn skip_reason<T: std::fmt::Debug>(result: Result<T>) -> String {
    match result {
        Err(Error::Skip(reason)) => reason,
        other => panic!("expected a skip, got {other:?}"),
    }
}

#[test]
fn degenerate_inputs_are_skipped_with_a_reason() {
    let names: Vec<String> = (0..20).map(|i| format!("u{i:02}")).collect();
    // No repeat buyers: everyone bought once, on different days.
    let once: Vec<(&str, Vec<(i64, f64)>)> = names
        .iter()
        .enumerate()
        .map(|(i, u)| (u.as_str(), vec![(i as i64, 10.0)]))
        .collect();
    let refs: Vec<(&str, &[(i64, f64)])> = once.iter().map(|(u, p)| (*u, p.as_slice())).collect();
    let s = summarize(&user_rows(&refs), 40 * DAY, TimeUnit::Days).unwrap();
    let no_repeat = "no customer has a repeat transaction";
    assert_eq!(
        skip_reason(BgNbd::fit(&s)),
        format!("bg/nbd skipped: {no_repeat}")
    );
    assert_eq!(
        skip_reason(ParetoNbd::fit(&s)),
        format!("pareto/nbd skipped: {no_repeat}")
    );
    assert_eq!(
        skip_reason(GammaGamma::fit(&s)),
        "gamma-gamma skipped: no customer has a repeat transaction with a positive value"
    );

    // All purchases on one day (several per customer).
    let same_day: Vec<(&str, Vec<(i64, f64)>)> = names
        .iter()
        .map(|u| (u.as_str(), vec![(3, 5.0), (3, 6.0)]))
        .collect();
    let refs: Vec<(&str, &[(i64, f64)])> =
        same_day.iter().map(|(u, p)| (*u, p.as_slice())).collect();
    let s = summarize(&user_rows(&refs), 40 * DAY, TimeUnit::Weeks).unwrap();
    assert_eq!(
        skip_reason(BgNbd::fit(&s)),
        format!("bg/nbd skipped: {no_repeat}")
    );

    // One customer, and none.
    let one = summarize(
        &user_rows(&[("solo", &[(1, 5.0), (9, 5.0)])]),
        40 * DAY,
        TimeUnit::Days,
    )
    .unwrap();
    assert_eq!(
        skip_reason(BgNbd::fit(&one)),
        "bg/nbd skipped: only 1 customer, at least 10 needed"
    );
    assert_eq!(
        skip_reason(GammaGamma::fit(&one)),
        "gamma-gamma skipped: only 1 customer with a repeat transaction of positive value, at least 10 needed"
    );
    let none = summarize(&user_rows(&[]), 40 * DAY, TimeUnit::Days).unwrap();
    assert!(none.is_empty());
    assert_eq!(
        skip_reason(BgNbd::fit(&none)),
        "bg/nbd skipped: no customers"
    );
    assert_eq!(
        skip_reason(ParetoNbd::fit(&none)),
        "pareto/nbd skipped: no customers"
    );

    // Zero and negative amounts: repeat buyers exist, but no positive mean value.
    let refunds: Vec<(&str, Vec<(i64, f64)>)> = names
        .iter()
        .enumerate()
        .map(|(i, u)| {
            (
                u.as_str(),
                vec![
                    (1, 10.0),
                    (5 + i as i64, if i % 2 == 0 { 0.0 } else { -4.0 }),
                ],
            )
        })
        .collect();
    let refs: Vec<(&str, &[(i64, f64)])> =
        refunds.iter().map(|(u, p)| (*u, p.as_slice())).collect();
    let s = summarize(&user_rows(&refs), 40 * DAY, TimeUnit::Days).unwrap();
    assert_eq!(
        skip_reason(GammaGamma::fit(&s)),
        "gamma-gamma skipped: no customer has a repeat transaction with a positive value"
    );
}

#[test]
fn awkward_but_valid_inputs_fit_without_nan() {
    // Every repeat buyer buys on a strict weekly rhythm until the end: no evidence
    // of dropout, so BG/NBD's b runs off and a later rung or the fallback must take
    // over; whatever the rung, nothing may be NaN.
    let names: Vec<String> = (0..30).map(|i| format!("u{i:02}")).collect();
    let rhythm: Vec<(&str, Vec<(i64, f64)>)> = names
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let first = (i % 5) as i64;
            (
                u.as_str(),
                (0..8).map(|k| (first + 7 * k, 10.0 + i as f64)).collect(),
            )
        })
        .collect();
    let refs: Vec<(&str, &[(i64, f64)])> = rhythm.iter().map(|(u, p)| (*u, p.as_slice())).collect();
    let s = summarize(&user_rows(&refs), 60 * DAY, TimeUnit::Weeks).unwrap();
    // Which rung holds each model is pinned: a change of the ladder shows here.
    let bg = BgNbd::fit(&s).unwrap();
    assert_eq!(bg.report.rung, "default");
    let pareto = ParetoNbd::fit(&s).unwrap();
    assert_eq!(pareto.report.rung, "better start");
    let gg = GammaGamma::fit(&s).unwrap();
    assert_eq!(gg.report.rung, "penalty 0.001");
    for report in [&bg.report, &pareto.report] {
        assert!(report.log_likelihood.is_finite());
        assert!(report.params.values().all(|v| v.is_finite() && *v > 0.0));
    }
    assert!(gg.report.params.values().all(|v| v.is_finite()));
    // No dropout is seen, so dropout is fitted as (almost) never happening ...
    assert!(bg.report.params["a"] < 1e-3, "{:?}", bg.report.params);
    assert!(
        pareto.report.params["s"] < 1e-3,
        "{:?}",
        pareto.report.params
    );
    // ... and a weekly buyer is expected to buy about once a week for ten more weeks.
    for e in [
        bg.model.expected_purchases_all(&s, 10.0).unwrap(),
        pareto.model.expected_purchases_all(&s, 10.0).unwrap(),
    ] {
        let mean = e.iter().sum::<f64>() / e.len() as f64;
        assert!(
            (8.0..=12.0).contains(&mean),
            "mean expected purchases {mean}"
        );
    }
}

#[test]
fn invalid_summaries_are_rejected() {
    let mut s = Summary {
        user_ids: vec!["a".to_string()],
        frequency: vec![1.0],
        recency: vec![5.0],
        t: vec![3.0],
        monetary: vec![1.0],
        first_value: vec![1.0],
    };
    let err = BgNbd::fit(&s).unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid input: customer `a`: need frequency >= 0 and 0 <= recency <= age, got frequency 1, recency 5, age 3"
    );
    s.t.clear();
    assert!(matches!(GammaGamma::fit(&s), Err(Error::Invalid(_))));
}

#[test]
fn fit_report_serializes() {
    let s = cdnow_summary();
    let fit = GammaGamma::fit(&s).unwrap();
    let json = serde_json::to_value(&fit.report).unwrap();
    assert_eq!(json["model"], "gamma-gamma");
    assert_eq!(json["rung"], "default");
    assert!(json["params"]["p"].as_f64().is_some());
    assert_eq!(
        serde_json::to_string(&TimeUnit::Weeks).unwrap(),
        "\"weeks\""
    );
}

#[test]
fn refunds_are_no_transactions_but_lower_their_days_value() {
    // u1 buys on days 1, 3 (and returns 4 of it that day) and returns more on day 6;
    // u2 only returns.
    let u1 = [(1, 10.0), (3, 12.0), (3, -4.0), (6, -5.0)];
    let u2 = [(2, -7.0)];
    // u3's return of less than half a cent is a return all the same.
    let u3 = [(1, 10.0), (5, -0.004)];
    let rows = user_rows(&[("u1", &u1), ("u2", &u2), ("u3", &u3)]);
    let s = summarize(&rows, 10 * DAY, TimeUnit::Days).unwrap();
    assert_eq!(s.user_ids, ["u1", "u3"]);
    assert_eq!(s.frequency, [1.0, 0.0]);
    assert_eq!(s.recency, [2.0, 0.0]);
    assert_eq!(s.monetary, [8.0, 0.0]);
    assert_eq!(s.first_value, [10.0, 10.0]);
    assert_histories_as_the_group_bys(&rows, 4 * DAY, 10 * DAY, TimeUnit::Days);
}

/// Every column of two summary tables, bit for bit.
fn same_bits(a: &DataFrame, b: &DataFrame) -> bool {
    let bits = |df: &DataFrame, name: &str| -> Vec<Option<u64>> {
        let column = df.column(name).unwrap().f64().unwrap().clone();
        column.iter().map(|v| v.map(f64::to_bits)).collect()
    };
    a.get_column_names() == b.get_column_names()
        && a.column("user_id")
            .unwrap()
            .equals(b.column("user_id").unwrap())
        && ["frequency", "recency", "t", "monetary", "first_value"]
            .iter()
            .all(|name| bits(a, name) == bits(b, name))
}

fn assert_histories_as_the_group_bys(events: &DataFrame, cutoff: i64, as_of: i64, unit: TimeUnit) {
    let sorted = histories_sorted(events, cutoff, as_of, unit).expect("sorted events");
    let at_cutoff = summary_frame(events, cutoff, unit).unwrap();
    let now = summary_frame(events, as_of, unit).unwrap();
    assert!(
        same_bits(&sorted.at_cutoff, &at_cutoff),
        "{}\n{at_cutoff}",
        sorted.at_cutoff
    );
    assert!(same_bits(&sorted.now, &now), "{}\n{now}", sorted.now);
    let horizon = holdout_transactions(events, cutoff, as_of).unwrap();
    assert_eq!(sorted.horizon, horizon);
}

#[test]
fn one_pass_histories_are_the_group_bys_bit_for_bit() {
    let start = micros(2024, 1, 1);
    for seed in 0..120u64 {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut uniform = |n: u64| (Uniform::new(0.0, 1.0).sample(&mut rng) * n as f64) as u64;
        let mut rows = Vec::new();
        for user in 0..1 + uniform(6) {
            let mut time = start + uniform(20) as i64 * DAY;
            for _ in 0..uniform(12) {
                // Often the same day, sometimes the same instant.
                time += [0, 3_600_000_000, DAY / 3, 2 * DAY][uniform(4) as usize];
                let kind = ["purchase", "purchase", "view", "cart"][uniform(4) as usize];
                let amount = match uniform(6) {
                    0 => None,
                    1 => Some(-(uniform(3000) as f64) / 100.0),
                    2 => Some(0.125 * uniform(40) as f64),
                    3 => Some(f64::NAN),
                    _ => Some(uniform(100_000) as f64 / 100.0 + 0.005),
                };
                rows.push((format!("u{user:02}"), time, kind, amount));
            }
        }
        if rows.is_empty() {
            continue;
        }
        let events = events_frame(&rows);
        // Cutoffs at midnight and within a day, as-of dates after them.
        let cutoff = start + uniform(40) as i64 * DAY + [0, DAY / 2][uniform(2) as usize];
        let as_of = cutoff + uniform(15) as i64 * DAY + [0, 7_200_000_000][uniform(2) as usize];
        for unit in [TimeUnit::Days, TimeUnit::Weeks] {
            assert_histories_as_the_group_bys(&events, cutoff, as_of, unit);
        }
        // Types as dictionary codes, as the ingest holds them: the same histories.
        let coded = types_as_codes(&events);
        let (plain, coded) = (
            histories_sorted(&events, cutoff, as_of, TimeUnit::Days).unwrap(),
            histories_sorted(&coded, cutoff, as_of, TimeUnit::Days).expect("coded types"),
        );
        assert!(same_bits(&plain.at_cutoff, &coded.at_cutoff) && same_bits(&plain.now, &coded.now));
        assert_eq!(plain.horizon, coded.horizon);
    }
}

/// `events` with their types as dictionary codes.
pub(crate) fn types_as_codes(events: &DataFrame) -> DataFrame {
    use polars::prelude::{CategoricalPhysical, Categories, DataType};
    let codes = Categories::new(
        "event_type".into(),
        "tests".into(),
        CategoricalPhysical::U32,
    );
    let types = events.column("event_type").unwrap();
    let types = types.cast(&DataType::from_categories(codes)).unwrap();
    let mut coded = events.clone();
    coded.replace("event_type", types).unwrap();
    coded
}

#[test]
fn one_pass_histories_of_cdnow_are_the_group_bys() {
    // In user and time order, as ingest leaves events.
    let events = cdnow()
        .sort(["user_id", "event_time"], Default::default())
        .unwrap();
    assert_histories_as_the_group_bys(
        &events,
        calibration_end(),
        micros(1998, 7, 1),
        TimeUnit::Weeks,
    );
    let sorted = histories_sorted(
        &events,
        calibration_end(),
        micros(1998, 7, 1),
        TimeUnit::Weeks,
    )
    .unwrap();
    assert_eq!(sorted.at_cutoff.height(), 2357);
}

#[test]
fn one_pass_histories_need_events_in_user_and_time_order() {
    let day = |d: i64| micros(2024, 3, 1) + d * DAY;
    let row = |user: &str, d: i64| (user.to_string(), day(d), "purchase", Some(1.0));
    let sorted = events_frame(&[row("a", 1), row("a", 2), row("b", 0)]);
    assert!(histories_sorted(&sorted, day(2), day(5), TimeUnit::Days).is_some());
    let users_out_of_order = events_frame(&[row("b", 0), row("a", 1)]);
    assert!(histories_sorted(&users_out_of_order, day(2), day(5), TimeUnit::Days).is_none());
    let times_out_of_order = events_frame(&[row("a", 2), row("a", 1)]);
    assert!(histories_sorted(&times_out_of_order, day(2), day(5), TimeUnit::Days).is_none());
    // A cutoff after the as-of date is left to the group-bys.
    assert!(histories_sorted(&sorted, day(5), day(2), TimeUnit::Days).is_none());
}

#[test]
fn a_part_of_one_user_summarises_to_the_bits_of_a_part_of_many() {
    // polars divides one row by a constant exactly and many rows times the
    // reciprocal: a part holding a single user must not see the difference.
    let events = cdnow();
    let whole = summary_frame(&events, calibration_end(), TimeUnit::Weeks).unwrap();
    let ids = whole.column("user_id").unwrap().str().unwrap().clone();
    for row in 0..60 {
        let id = ids.get(row).unwrap();
        let mask: polars::prelude::BooleanChunked = events
            .column("user_id")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v == Some(id))
            .collect();
        let alone = summary_frame(
            &events.filter(&mask).unwrap(),
            calibration_end(),
            TimeUnit::Weeks,
        )
        .unwrap();
        assert!(
            same_bits(&whole.slice(row as i64, 1), &alone),
            "{id}: {alone}"
        );
    }
}

#[test]
fn purchase_probabilities_are_the_models_own() {
    // (x, t_x, T, t, BG/NBD, Pareto/NBD): BG/NBD at the published CDNOW parameters,
    // Pareto/NBD at (0.55, 10.58, 0.61, 11.67); Pareto/NBD's from lifetimes 0.11.3
    // (1 - conditional_probability_of_n_purchases_up_to_time(0, ...)), BG/NBD's from
    // its closed form; both agree with 2,000,000 draws from the posteriors to 1e-4.
    let cases = [
        (0.0, 0.0, 38.86, 39.0, 0.144550540783, 0.068538216246),
        (2.0, 30.43, 38.86, 39.0, 0.554627137917, 0.590606395766),
        (5.0, 20.0, 38.86, 39.0, 0.277356948728, 0.319503121320),
        (1.0, 1.0, 50.0, 10.0, 0.028002112807, 0.020312741007),
        (14.0, 35.0, 36.0, 52.0, 0.931567050281, 0.946095800000),
    ];
    let bg = BgNbd {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };
    let pareto = ParetoNbd::new(0.55, 10.58, 0.61, 11.67).unwrap();
    for (x, t_x, big_t, t, want_bg, want_pareto) in cases {
        let got = bg.p_purchase(t, x, t_x, big_t).unwrap();
        assert!(
            (got - want_bg).abs() < 1e-9,
            "bg/nbd {x} {t_x} {big_t}: {got}"
        );
        let got = pareto.p_purchase(t, x, t_x, big_t).unwrap();
        assert!(
            (got - want_pareto).abs() < 1e-6,
            "pareto/nbd {x} {t_x} {big_t}: {got}"
        );
        // Below the Poisson count of the expectation, which overstates it.
        let expected = pareto.expected_purchases(t, x, t_x, big_t).unwrap();
        assert!(got < -(-expected).exp_m1(), "{x} {t_x} {big_t}");
    }
    // BG/NBD against 2,000,000 draws of the posterior purchase rate (numpy), so not
    // its own formula again: within three standard errors.
    let drawn = [0.14439, 0.55463, 0.27736, 0.02799, 0.93157];
    for ((x, t_x, big_t, t, ..), want) in cases.into_iter().zip(drawn) {
        let got = bg.p_purchase(t, x, t_x, big_t).unwrap();
        assert!(
            (got - want).abs() < 1.2e-3,
            "bg/nbd {x}: {got} against {want}"
        );
    }
    // Where dropout within the horizon is likely the integrand is steep at 0:
    // P(a purchase | alive) against scipy's adaptive quadrature of its u form.
    for ((r, alpha, s, beta, big_t, t), want) in [
        ((1.0, 2.0, 200.0, 0.01, 0.5, 39.0), 0.0010230197831976337),
        ((0.5, 50.0, 50.0, 0.5, 0.5, 39.0), 0.00020193611617120663),
        ((1.0, 2.0, 200.0, 0.01, 0.01, 1000.0), 4.999622528879636e-05),
    ] {
        let model = ParetoNbd::new(r, alpha, s, beta).unwrap();
        let got = model.purchase_if_alive(t, 0.0, big_t).unwrap();
        assert!(
            (got / want - 1.0).abs() < 1e-6,
            "({r}, {alpha}, {s}, {beta}): {got}"
        );
    }
}
