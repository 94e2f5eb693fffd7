//! Deterministic synthetic event logs drawn from known personas.
//!
//! userlens tests, benchmarks and the committed sample data need event logs whose
//! answer is known: every user is drawn from one of a few [`PERSONAS`] (a bargain
//! browser, a loyal big spender, a night searcher, a weekend hobbyist and a lapsed
//! one-timer), so clustering per-user features should recover the persona, and
//! behaviour is stationary, so what a user does after an as-of date is predictable
//! from what they did before it. Items have latent tastes, popularity and
//! complements (see [`STYLES`]), so what a user buys next is predictable from what
//! similar users bought, as recommenders need.
//!
//! [`generate`] streams the canonical event CSV (columns as in
//! [`userlens_model::columns::EVENT_COLUMNS`]) one user at a time, so memory stays
//! bounded for any number of users, and optionally the ground truth CSV
//! (`user_id,persona`). Output is a pure function of [`SynthParams`]: each user has
//! its own random stream derived from the seed and the user's index, and numbers are
//! formatted from integers, so the bytes are the same on every machine.
//!
//! Two shapes of log: by default about 60 events per user (many users with short
//! histories); [`SynthParams::events_per_user`] scales every user's session rate so
//! users average about that many events (few users with long histories, as
//! benchmarks of per-event work need).
//!
//! ```
//! use userlens_synth::{generate, SynthParams};
//!
//! let params = SynthParams { users: 20, ..SynthParams::default() };
//! let mut events = Vec::new();
//! let mut truth = Vec::new();
//! let summary = generate(&params, &mut events, Some(&mut truth)).unwrap();
//! assert_eq!(summary.users, 20);
//! let text = String::from_utf8(events).unwrap();
//! assert!(text.starts_with(
//!     "user_id,event_time,event_type,session_id,item_id,category,query,amount,rating\n"
//! ));
//! assert_eq!(text.lines().count() as u64, summary.events + 1);
//! ```

mod error;
pub use error::{Error, Result};

mod items;
mod personas;
mod plan;
mod survey;
mod user;

pub use items::{ITEMS_PER_CATEGORY, STYLES};
pub use personas::{CATEGORIES, PERSONAS, Persona};
pub use survey::{SURVEY_COLUMNS, SurveySummary, generate_survey};

use std::io::{self, BufWriter, Write};

use chrono::{Datelike, Days, NaiveDate};
use userlens_model::columns;

use plan::{Plan, splitmix64};
use user::UserGen;

/// Persona column of the ground truth CSV (its other column is `user_id`).
pub const PERSONA_COLUMN: &str = "persona";

/// What to generate: how many users, from which seed, over which days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthParams {
    /// Number of users.
    pub users: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// First day of the period (UTC).
    pub start: NaiveDate,
    /// Length of the period in days; events fall in `[start, start + days)`.
    pub days: u32,
    /// About how many events users have on average; `None` for the personas' own
    /// rates (about 60 over the default 180 days). Users stay who they are: only
    /// their session rates are multiplied, by a factor measured on a pilot of the
    /// run's first users, and no user starts more than 8 sessions a day.
    pub events_per_user: Option<u32>,
}

impl Default for SynthParams {
    fn default() -> Self {
        SynthParams {
            users: 1800,
            seed: 42,
            start: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
            days: 180,
            events_per_user: None,
        }
    }
}

impl SynthParams {
    /// Checks the parameters before anything is written.
    pub fn check(&self) -> Result<()> {
        if self.users == 0 {
            return Err(invalid("users", "must be at least 1".to_string()));
        }
        if self.users > MAX_USERS {
            return Err(invalid(
                "users",
                format!("must be at most {MAX_USERS}, got {}", self.users),
            ));
        }
        if self.days == 0 {
            return Err(invalid("days", "must be at least 1".to_string()));
        }
        match self.events_per_user {
            Some(0) => return Err(invalid("events_per_user", "must be at least 1".to_string())),
            Some(n) if n > MAX_EVENTS_PER_USER => {
                return Err(invalid(
                    "events_per_user",
                    format!("must be at most {MAX_EVENTS_PER_USER}, got {n}"),
                ));
            }
            _ => {}
        }
        // The last day the events fall on.
        let end = self
            .start
            .checked_add_days(Days::new(u64::from(self.days) - 1));
        match end {
            Some(end) if self.start.year() >= 1000 && end.year() <= 9999 => Ok(()),
            _ => Err(invalid(
                "days",
                format!(
                    "{} days from {} leave the years 1000-9999",
                    self.days, self.start
                ),
            )),
        }
    }
}

/// Ids are zero-padded and must stay sortable and readable; a billion users is far
/// beyond any benchmark.
const MAX_USERS: usize = 999_999_999;

/// Beyond this the cap of sessions a day, not the scale, decides the count.
const MAX_EVENTS_PER_USER: u32 = 3000;

fn invalid(name: &'static str, reason: String) -> Error {
    Error::InvalidParams { name, reason }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Users written.
    pub users: usize,
    /// Event rows written (header excluded).
    pub events: u64,
    /// Users per persona, in [`PERSONAS`] order.
    pub per_persona: Vec<(&'static str, usize)>,
}

/// Writes the canonical event CSV (header:
/// `user_id,event_time,event_type,session_id,item_id,category,query,amount,rating`)
/// and, if given, the ground truth CSV (header: `user_id,persona`).
///
/// Users are written in id order, each user's events in time order. Both writers
/// are buffered here, so plain files are fine.
pub fn generate<W: Write, T: Write>(
    params: &SynthParams,
    events: W,
    truth: Option<T>,
) -> Result<Summary> {
    params.check()?;
    let mut plan = Plan::new(params);
    if let Some(target) = params.events_per_user {
        plan.session_scale = session_scale(&mut plan, target);
    }
    let plan = plan;
    let mut out = BufWriter::with_capacity(1 << 20, events);
    let mut truth = truth.map(csv::Writer::from_writer);
    let mut user_gen = UserGen::new(&plan);
    let mut summary = Summary {
        users: params.users,
        events: 0,
        per_persona: PERSONAS.iter().map(|p| (p.name, 0)).collect(),
    };

    let header = columns::EVENT_COLUMNS.join(",") + "\n";
    out.write_all(header.as_bytes())
        .map_err(|source| events_error(&plan, 0, source))?;
    if let Some(truth) = truth.as_mut() {
        truth
            .write_record([columns::USER_ID, PERSONA_COLUMN])
            .map_err(|source| truth_error(&plan, 0, source))?;
    }

    for index in 0..params.users {
        let (persona, count) = user_gen.user(index);
        summary.events += count;
        summary.per_persona[persona].1 += 1;
        out.write_all(&user_gen.buf)
            .map_err(|source| events_error(&plan, index, source))?;
        if let Some(truth) = truth.as_mut() {
            let id = plan.user_id(index);
            truth
                .write_record([id.as_str(), PERSONAS[persona].name])
                .map_err(|source| truth_error(&plan, index, source))?;
        }
    }

    let last = params.users - 1;
    out.flush()
        .map_err(|source| events_error(&plan, last, source))?;
    if let Some(truth) = truth.as_mut() {
        truth
            .flush()
            .map_err(|source| truth_error(&plan, last, source.into()))?;
    }
    Ok(summary)
}

fn events_error(plan: &Plan, index: usize, source: io::Error) -> Error {
    Error::Events {
        user: plan.user_id(index),
        source,
    }
}

fn truth_error(plan: &Plan, index: usize, source: csv::Error) -> Error {
    Error::Truth {
        user: plan.user_id(index),
        source,
    }
}

/// Users needed for about `events` events over the period of `params` (its `start`
/// and `days`; for benchmarks: "give me ~10M events").
///
/// The events per user are measured on a pilot run of the generator over that period,
/// so the answer follows any change of the persona knobs. `params` must pass
/// [`SynthParams::check`].
pub fn users_for_events(events: u64, params: &SynthParams) -> usize {
    const PILOT_USERS: usize = 4000;
    let pilot = SynthParams {
        users: PILOT_USERS,
        start: params.start,
        days: params.days,
        ..SynthParams::default()
    };
    let plan = Plan::new(&pilot);
    let mut user_gen = UserGen::new(&plan);
    let total: u64 = (0..PILOT_USERS).map(|i| user_gen.user(i).1).sum();
    let per_user = (total as f64 / PILOT_USERS as f64).max(1.0);
    ((events as f64 / per_user).round() as usize).max(1)
}

/// Users needed for about `events` events of users averaging `per_user` events
/// ([`SynthParams::events_per_user`]).
pub fn users_for_events_per_user(events: u64, per_user: u32) -> usize {
    ((events as f64 / f64::from(per_user.max(1))).round() as usize).max(1)
}

/// The session-rate multiplier under which the run's first users average about
/// `target` events.
///
/// Caps (sessions a day, the end of the period, one purchase for lapsed users) make
/// the count grow less than the rate, so the factor is refined a few times on the
/// same pilot. The pilot is always the first 1,000 users of the run's
/// seed and period, never depends on how many users follow, and the result is a
/// pure function of the parameters.
fn session_scale(plan: &mut Plan, target: u32) -> f64 {
    const PILOT_USERS: usize = 1000;
    const ROUNDS: usize = 6;
    let target = f64::from(target);
    let mut scale = 1.0;
    for _ in 0..ROUNDS {
        plan.session_scale = scale;
        let mut user_gen = UserGen::new(plan);
        let total: u64 = (0..PILOT_USERS).map(|i| user_gen.user(i).1).sum();
        let mean = (total as f64 / PILOT_USERS as f64).max(1.0);
        if (mean / target - 1.0).abs() < 0.01 {
            break;
        }
        scale = (scale * target / mean).clamp(1e-3, 1e3);
    }
    scale
}

#[cfg(test)]
mod tests {
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
                        .min_by(|&a, &b| {
                            distance(r, &centres[a]).total_cmp(&distance(r, &centres[b]))
                        })
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
                start: NaiveDate::from_ymd_opt(9999, 12, 1).unwrap(),
                ..SynthParams::default()
            }),
            "invalid synth parameter `days`: 180 days from 9999-12-01 leave the years 1000-9999"
        );
        // The last day of the years allowed is one day of them.
        let last = SynthParams {
            start: NaiveDate::from_ymd_opt(9999, 12, 31).unwrap(),
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
}
