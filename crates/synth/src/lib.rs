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
            // The years an ingest reads events in.
            Some(end) if self.start.year() >= 1900 && end.year() <= 2099 => Ok(()),
            _ => Err(invalid(
                "days",
                format!(
                    "{} days from {} leave the years 1900-2099, which the ingest reads",
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
mod tests;
