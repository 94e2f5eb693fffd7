//! Tests of the generator: personas recovered, sizes, determinism, periods.

use super::*;
use chrono::{NaiveDateTime, Timelike};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::collections::{BTreeMap, HashMap};
use userlens_model::{SESSION_GAP_SECS, event_types};

const HEADER: &str =
    "user_id,event_time,event_type,session_id,item_id,category,query,amount,rating";

fn run(params: &SynthParams) -> (Vec<u8>, Vec<u8>, Summary) {
    let mut events = Vec::new();
    let mut truth = Vec::new();
    let summary = generate(params, &mut events, Some(&mut truth)).unwrap();
    (events, truth, summary)
}

fn small(seed: u64) -> SynthParams {
    SynthParams {
        users: 300,
        seed,
        ..SynthParams::default()
    }
}

/// The default run, shared by the tests that look at a full-size data set.
fn default_run() -> &'static (Vec<u8>, Vec<u8>, Summary) {
    static RUN: std::sync::OnceLock<(Vec<u8>, Vec<u8>, Summary)> = std::sync::OnceLock::new();
    RUN.get_or_init(|| run(&SynthParams::default()))
}

fn truth_map(truth: &[u8]) -> BTreeMap<String, String> {
    let mut reader = csv::Reader::from_reader(truth);
    assert_eq!(
        reader.headers().unwrap(),
        vec![columns::USER_ID, PERSONA_COLUMN]
    );
    let mut map = BTreeMap::new();
    for record in reader.records() {
        let record = record.unwrap();
        let previous = map.insert(record[0].to_string(), record[1].to_string());
        assert!(previous.is_none(), "user {} listed twice", &record[0]);
    }
    map
}

#[test]
fn same_params_give_identical_bytes() {
    let (a, ta, _) = run(&small(7));
    let (b, tb, _) = run(&small(7));
    assert_eq!(a, b);
    assert_eq!(ta, tb);
}

#[test]
fn different_seeds_give_different_bytes() {
    let (a, _, _) = run(&small(7));
    let (b, _, _) = run(&small(8));
    assert_ne!(a, b);
}

#[test]
fn users_do_not_depend_on_how_many_follow() {
    // Per-user streams: the first users of a bigger run are the same users.
    let (few, _, _) = run(&SynthParams {
        users: 50,
        ..small(3)
    });
    let (many, _, _) = run(&SynthParams {
        users: 99,
        ..small(3)
    });
    assert_eq!(few, many[..few.len()]);
}

#[test]
fn writes_the_canonical_header() {
    let (events, _, _) = run(&small(1));
    let text = String::from_utf8(events).unwrap();
    assert_eq!(text.lines().next(), Some(HEADER));
    assert_eq!(HEADER, columns::EVENT_COLUMNS.join(","));
}

#[test]
fn rows_are_well_formed_and_ordered() {
    let (events, _, summary) = default_run();
    check_rows(&SynthParams::default(), events, summary);
}

/// Every row has its fields, users come in order and each user's events in time
/// order, sessions exactly as far apart as sessionizing needs.
fn check_rows(params: &SynthParams, events: &[u8], summary: &Summary) {
    let text = std::str::from_utf8(events).unwrap();
    let start = params.start.and_hms_opt(0, 0, 0).unwrap();
    let end = start + chrono::Duration::days(i64::from(params.days));
    let mut previous: Option<(String, NaiveDateTime, String)> = None;
    let mut rows = 0u64;
    for line in text.lines().skip(1) {
        rows += 1;
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 9, "{line}");
        let (user, kind, session) = (f[0], f[2], f[3]);
        assert!(user.len() == 7 && user.starts_with('u'), "{line}");
        let time = NaiveDateTime::parse_from_str(f[1], "%Y-%m-%d %H:%M:%S").unwrap();
        assert!(start <= time && time < end, "{line}");
        assert!(session.starts_with(&format!("{user}-s")), "{line}");
        let is = |k: &str| kind == k;
        assert!(
            [
                event_types::VIEW,
                event_types::SEARCH,
                event_types::ADD_TO_CART,
                event_types::PURCHASE,
                event_types::RATING
            ]
            .contains(&kind),
            "{line}"
        );
        assert_eq!(f[4].is_empty(), is(event_types::SEARCH), "{line}");
        assert!(f[4].is_empty() || f[4].len() == 6, "{line}");
        assert!(
            is(event_types::SEARCH) || CATEGORIES.contains(&f[5]),
            "{line}"
        );
        assert_eq!(!f[6].is_empty(), is(event_types::SEARCH), "{line}");
        assert_eq!(!f[7].is_empty(), is(event_types::PURCHASE), "{line}");
        if is(event_types::PURCHASE) {
            let (units, cents) = f[7].split_once('.').unwrap();
            assert_eq!(cents.len(), 2, "{line}");
            assert!(units.parse::<u32>().unwrap() > 0, "{line}");
        }
        assert_eq!(!f[8].is_empty(), is(event_types::RATING), "{line}");
        if is(event_types::RATING) {
            assert!((1..=5).contains(&f[8].parse::<u32>().unwrap()), "{line}");
        }
        if let Some((prev_user, prev_time, prev_session)) = &previous {
            assert!(prev_user.as_str() <= user, "users out of order at {line}");
            if prev_user == user {
                assert!(*prev_time <= time, "events out of order at {line}");
                let gap = (time - *prev_time).num_seconds();
                if prev_session == session {
                    assert!(gap < SESSION_GAP_SECS, "session split at {line}");
                } else {
                    assert!(gap > SESSION_GAP_SECS, "sessions merge at {line}");
                }
            }
        }
        previous = Some((user.to_string(), time, session.to_string()));
    }
    assert_eq!(rows, summary.events);
}

#[test]
fn ground_truth_lists_every_user_once() {
    let (events, truth, summary) = default_run();
    let truth = truth_map(truth);
    assert_eq!(truth.len(), summary.users);
    let names: Vec<&str> = PERSONAS.iter().map(|p| p.name).collect();
    assert!(truth.values().all(|p| names.contains(&p.as_str())));
    let text = std::str::from_utf8(events).unwrap();
    let mut in_events: Vec<&str> = text.lines().skip(1).map(|l| &l[..7]).collect();
    in_events.dedup();
    assert_eq!(
        in_events,
        truth.keys().map(String::as_str).collect::<Vec<_>>()
    );
}

#[test]
fn persona_mix_follows_the_weights() {
    let (_, truth, summary) = default_run();
    let truth = truth_map(truth);
    for (persona, (name, count)) in PERSONAS.iter().zip(&summary.per_persona) {
        assert_eq!(persona.name, *name);
        let listed = truth.values().filter(|p| p == name).count();
        assert_eq!(listed, *count);
        let share = *count as f64 / summary.users as f64;
        assert!((share - persona.weight).abs() < 0.02, "{name}: {share}");
    }
}

#[test]
fn users_for_events_hits_the_target() {
    // The default period, a short one and a long one.
    for days in [180, 5, 3650] {
        let period = SynthParams {
            days,
            ..SynthParams::default()
        };
        let users = users_for_events(100_000, &period);
        let params = SynthParams {
            users,
            seed: 9,
            ..period
        };
        let summary = generate(&params, io::sink(), None::<io::Sink>).unwrap();
        let ratio = summary.events as f64 / 100_000.0;
        assert!(
            (0.9..1.1).contains(&ratio),
            "{days} days: {users} users, {ratio}"
        );
    }
    assert_eq!(users_for_events(0, &SynthParams::default()), 1);
}

#[test]
fn default_sample_fits_in_eight_megabytes() {
    let (events, _, _) = default_run();
    assert!(events.len() <= 8_000_000, "{} bytes", events.len());
}

#[test]
fn lapsed_users_stop_and_active_users_keep_buying() {
    let params = SynthParams::default();
    let (events, truth, _) = default_run();
    let truth = truth_map(truth);
    let start = params.start.and_hms_opt(0, 0, 0).unwrap();
    let half = f64::from(params.days) / 2.0;
    // Purchases before and after the middle of the period, per user.
    let mut halves: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for line in std::str::from_utf8(events).unwrap().lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let time = NaiveDateTime::parse_from_str(f[1], "%Y-%m-%d %H:%M:%S").unwrap();
        let day = (time - start).num_seconds() as f64 / 86_400.0;
        if truth[f[0]] == "lapsed one-timer" {
            assert!(day < 0.3 * f64::from(params.days), "{line}");
        }
        let entry = halves.entry(f[0]).or_default();
        if f[2] == event_types::PURCHASE {
            if day < half {
                entry.0 += 1.0;
            } else {
                entry.1 += 1.0;
            }
        }
    }
    let (before, after): (Vec<f64>, Vec<f64>) = halves.values().copied().unzip();
    let r = correlation(&before, &after);
    assert!(r > 0.5, "purchases before and after correlate at {r}");
}

fn correlation(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

/// Per-user features close to what the features stage computes.
fn features(events: &[u8], params: &SynthParams) -> BTreeMap<String, Vec<f64>> {
    #[derive(Default)]
    struct Acc {
        events: f64,
        sessions: std::collections::HashSet<String>,
        views: f64,
        carts: f64,
        purchases: f64,
        monetary: f64,
        searches: f64,
        ratings: f64,
        night: f64,
        evening: f64,
        weekend: f64,
        last: f64,
        categories: [f64; 8],
    }
    let start = params.start.and_hms_opt(0, 0, 0).unwrap();
    let mut users: BTreeMap<String, Acc> = BTreeMap::new();
    for line in std::str::from_utf8(events).unwrap().lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let time = NaiveDateTime::parse_from_str(f[1], "%Y-%m-%d %H:%M:%S").unwrap();
        let acc = users.entry(f[0].to_string()).or_default();
        acc.events += 1.0;
        acc.sessions.insert(f[3].to_string());
        match f[2] {
            event_types::VIEW => acc.views += 1.0,
            event_types::ADD_TO_CART => acc.carts += 1.0,
            event_types::SEARCH => acc.searches += 1.0,
            event_types::RATING => acc.ratings += 1.0,
            _ => {
                acc.purchases += 1.0;
                acc.monetary += f[7].parse::<f64>().unwrap();
            }
        }
        let hour = time.hour();
        acc.night += f64::from(u8::from(!(4..22).contains(&hour)));
        acc.evening += f64::from(u8::from((17..22).contains(&hour)));
        acc.weekend += f64::from(u8::from(time.weekday().num_days_from_monday() >= 5));
        acc.last = (time - start).num_seconds() as f64 / 86_400.0;
        if let Some(c) = CATEGORIES.iter().position(|c| *c == f[5]) {
            acc.categories[c] += 1.0;
        }
    }
    users
        .into_iter()
        .map(|(user, a)| {
            let categorised: f64 = a.categories.iter().sum::<f64>().max(1.0);
            let mut row = vec![
                a.events.ln_1p(),
                (a.sessions.len() as f64).ln_1p(),
                a.purchases.ln_1p(),
                a.monetary.ln_1p(),
                f64::from(params.days) - a.last,
                a.night / a.events,
                a.evening / a.events,
                a.weekend / a.events,
                a.searches / a.events,
                a.ratings.ln_1p(),
                a.carts / a.views.max(1.0),
            ];
            row.extend(a.categories.iter().map(|c| c / categorised));
            (user, row)
        })
        .collect()
}

fn standardise(rows: &mut [Vec<f64>]) {
    for j in 0..rows[0].len() {
        let n = rows.len() as f64;
        let mean = rows.iter().map(|r| r[j]).sum::<f64>() / n;
        let sd = (rows.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>() / n).sqrt();
        for r in rows.iter_mut() {
            r[j] = if sd > 0.0 { (r[j] - mean) / sd } else { 0.0 };
        }
    }
}

fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

/// Best of several k-means++ runs; returns a cluster per row.
fn kmeans(rows: &[Vec<f64>], k: usize, rng: &mut Xoshiro256PlusPlus) -> Vec<usize> {
    let mut best = (f64::INFINITY, Vec::new());
    for _ in 0..10 {
        let mut centres = vec![rows[rng.gen_range(0..rows.len())].clone()];
        while centres.len() < k {
            let d: Vec<f64> = rows
                .iter()
                .map(|r| {
                    centres
                        .iter()
                        .map(|c| distance(r, c))
                        .fold(f64::MAX, f64::min)
                })
                .collect();
            let mut target = rng.r#gen::<f64>() * d.iter().sum::<f64>();
            let pick = d.iter().position(|&x| {
                target -= x;
                target <= 0.0
            });
            centres.push(rows[pick.unwrap_or(rows.len() - 1)].clone());
        }
        let mut labels = vec![0; rows.len()];
        for _ in 0..100 {
            for (label, r) in labels.iter_mut().zip(rows) {
                *label = (0..k)
                    .min_by(|&a, &b| distance(r, &centres[a]).total_cmp(&distance(r, &centres[b])))
                    .unwrap();
            }
            for (c, centre) in centres.iter_mut().enumerate() {
                let members: Vec<&Vec<f64>> = rows
                    .iter()
                    .zip(&labels)
                    .filter(|(_, l)| **l == c)
                    .map(|(r, _)| r)
                    .collect();
                if !members.is_empty() {
                    for (j, v) in centre.iter_mut().enumerate() {
                        *v = members.iter().map(|m| m[j]).sum::<f64>() / members.len() as f64;
                    }
                }
            }
        }
        let inertia: f64 = rows
            .iter()
            .zip(&labels)
            .map(|(r, &l)| distance(r, &centres[l]))
            .sum();
        if inertia < best.0 {
            best = (inertia, labels);
        }
    }
    best.1
}

fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    let pairs = |n: f64| n * (n - 1.0) / 2.0;
    let mut table: HashMap<(usize, usize), f64> = HashMap::new();
    let mut rows: HashMap<usize, f64> = HashMap::new();
    let mut cols: HashMap<usize, f64> = HashMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *table.entry((x, y)).or_default() += 1.0;
        *rows.entry(x).or_default() += 1.0;
        *cols.entry(y).or_default() += 1.0;
    }
    let index: f64 = table.values().map(|&n| pairs(n)).sum();
    let sum_rows: f64 = rows.values().map(|&n| pairs(n)).sum();
    let sum_cols: f64 = cols.values().map(|&n| pairs(n)).sum();
    let expected = sum_rows * sum_cols / pairs(a.len() as f64);
    let max = (sum_rows + sum_cols) / 2.0;
    (index - expected) / (max - expected)
}

#[test]
fn clustering_recovers_the_personas() {
    let (events, truth, _) = default_run();
    let truth = truth_map(truth);
    let features = features(events, &SynthParams::default());
    let labels: Vec<usize> = features
        .keys()
        .map(|u| PERSONAS.iter().position(|p| p.name == truth[u]).unwrap())
        .collect();
    let mut rows: Vec<Vec<f64>> = features.into_values().collect();
    standardise(&mut rows);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let clusters = kmeans(&rows, PERSONAS.len(), &mut rng);
    let ari = adjusted_rand_index(&labels, &clusters);
    assert!(ari >= 0.9, "adjusted rand index {ari}");
}

#[test]
fn personas_are_consistent() {
    let total: f64 = PERSONAS.iter().map(|p| p.weight).sum();
    assert!((total - 1.0).abs() < 1e-9);
    for p in PERSONAS {
        let mean_weekday = p.weekday_weights.iter().sum::<f64>() / 7.0;
        assert!((mean_weekday - 1.0).abs() < 1e-9, "{}", p.name);
        assert!(p.hours.iter().all(|&h| h < 24), "{}", p.name);
        assert!(
            p.categories.iter().all(|c| CATEGORIES.contains(c)),
            "{}",
            p.name
        );
        for (lo, hi) in [p.searches, p.views, p.amount_cents, p.gap_secs] {
            assert!(lo <= hi, "{}", p.name);
        }
        assert!(p.views.0 >= 1, "every session views something: {}", p.name);
        assert!(p.gap_secs.1 < SESSION_GAP_SECS as u32, "{}", p.name);
        assert!(1 <= p.ratings.0 && p.ratings.0 <= p.ratings.1 && p.ratings.1 <= 5);
        assert!(0.0 < p.start_spread && p.start_spread < p.active_until);
        assert!(p.active_until <= 1.0);
        for word in p.vocabulary {
            assert!(!word.is_empty(), "{}", p.name);
            assert!(
                word.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == ' '),
                "{word}"
            );
        }
    }
}

fn long(users: usize, per_user: u32) -> SynthParams {
    SynthParams {
        users,
        seed: 5,
        events_per_user: Some(per_user),
        ..SynthParams::default()
    }
}

#[test]
fn long_histories_average_about_the_target() {
    for per_user in [30, 400] {
        let (events, _, summary) = run(&long(400, per_user));
        let mean = summary.events as f64 / summary.users as f64;
        let ratio = mean / f64::from(per_user);
        assert!((0.85..1.15).contains(&ratio), "{per_user}: {mean}");
        check_rows(&long(400, per_user), &events, &summary);
    }
    let users = users_for_events_per_user(1_000_000, 400);
    assert_eq!(users, 2500);
    assert_eq!(users_for_events_per_user(10, 400), 1);
}

#[test]
fn long_histories_keep_the_users_and_their_order() {
    // Only the session rate changes: the same users, personas and ids, and a
    // bigger run starts with the smaller one's users.
    let short = SynthParams {
        events_per_user: None,
        ..long(120, 300)
    };
    let (_, short_truth, _) = run(&short);
    let (few, truth, summary) = run(&long(120, 300));
    assert_eq!(truth, short_truth);
    assert!(summary.events > 120 * 150, "{}", summary.events);
    let (many, _, _) = run(&long(200, 300));
    assert_eq!(few, many[..few.len()]);
    assert_eq!(few, run(&long(120, 300)).0);
}

#[test]
fn rejects_bad_params_with_readable_errors() {
    let message = |params: SynthParams| {
        generate(&params, io::sink(), None::<io::Sink>)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        message(SynthParams {
            users: 0,
            ..SynthParams::default()
        }),
        "invalid synth parameter `users`: must be at least 1"
    );
    assert_eq!(
        message(SynthParams {
            days: 0,
            ..SynthParams::default()
        }),
        "invalid synth parameter `days`: must be at least 1"
    );
    assert_eq!(
        message(SynthParams {
            start: NaiveDate::from_ymd_opt(2099, 12, 1).unwrap(),
            ..SynthParams::default()
        }),
        "invalid synth parameter `days`: 180 days from 2099-12-01 leave the years 1900-2099, \
         which the ingest reads"
    );
    // The last day of the years allowed is one day of them.
    let last = SynthParams {
        start: NaiveDate::from_ymd_opt(2099, 12, 31).unwrap(),
        days: 1,
        ..SynthParams::default()
    };
    assert!(last.check().is_ok());
    assert_eq!(
        message(long(10, 0)),
        "invalid synth parameter `events_per_user`: must be at least 1"
    );
    assert_eq!(
        message(long(10, 3001)),
        "invalid synth parameter `events_per_user`: must be at most 3000, got 3001"
    );
}

#[test]
fn reports_write_failures_with_the_user() {
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let err = generate(&small(1), Broken, None::<io::Sink>).unwrap_err();
    // Rows are buffered, so the write fails at whichever user fills the buffer
    // first; the message names that user.
    let message = err.to_string();
    let user = message
        .strip_prefix("failed to write events for user `")
        .and_then(|rest| rest.strip_suffix('`'))
        .unwrap_or_else(|| panic!("{message}"));
    assert!(user.len() == 7 && user.starts_with('u'), "{message}");
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "disk full"
    );
}
