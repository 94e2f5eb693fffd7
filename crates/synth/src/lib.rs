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

mod items;
mod survey;

pub use items::{ITEMS_PER_CATEGORY, STYLES};
pub use survey::{SURVEY_COLUMNS, SurveySummary, generate_survey};

use std::io::{self, BufWriter, Write};
use std::sync::OnceLock;

use chrono::{Datelike, Days, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use userlens_model::{SESSION_GAP_SECS, columns, event_types};

/// Errors of synthetic data generation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter is out of range.
    #[error("invalid synth parameter `{name}`: {reason}")]
    InvalidParams {
        /// Parameter name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The event output could not be written.
    #[error("failed to write events for user `{user}`")]
    Events {
        /// User being written when the error surfaced (writes are buffered, so a
        /// failure may show up a few users later, at the latest on the final flush).
        user: String,
        /// Underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The ground truth output could not be written.
    #[error("failed to write ground truth for user `{user}`")]
    Truth {
        /// User being written when the error surfaced (writes are buffered, so a
        /// failure may show up a few users later, at the latest on the final flush).
        user: String,
        /// Underlying CSV error.
        #[source]
        source: csv::Error,
    },
    /// The survey could not be written.
    #[error("failed to write the survey answer of user `{user}`")]
    Survey {
        /// User being written.
        user: String,
        /// Underlying CSV error.
        #[source]
        source: csv::Error,
    },
    /// The events a survey is made from are not the generator's.
    #[error("cannot make a survey from these events (line {line}): {reason}")]
    SurveyEvents {
        /// Line of the events file (0: found at the end of a user).
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Persona column of the ground truth CSV (its other column is `user_id`).
pub const PERSONA_COLUMN: &str = "persona";

/// Every category the generator uses; item ids are numbered per category.
pub const CATEGORIES: &[&str] = &[
    "fashion",
    "home",
    "electronics",
    "books",
    "garden",
    "sports",
    "toys",
    "beauty",
];

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
}

impl Default for SynthParams {
    fn default() -> Self {
        SynthParams {
            users: 1800,
            seed: 42,
            start: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
            days: 180,
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
        let end = self.start.checked_add_days(Days::new(u64::from(self.days)));
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

fn invalid(name: &'static str, reason: String) -> Error {
    Error::InvalidParams { name, reason }
}

/// How one kind of user behaves. Ranges are inclusive `(min, max)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Persona {
    /// Name written to the ground truth.
    pub name: &'static str,
    /// Share of users drawn from this persona (weights sum to 1).
    pub weight: f64,
    /// Mean sessions per week while active, before the per-user multiplier.
    pub sessions_per_week: f64,
    /// Relative session rate per weekday, Monday first; averages 1.
    pub weekday_weights: [f64; 7],
    /// UTC hours a session may start in, repeated to weight them.
    pub hours: &'static [u8],
    /// Preferred categories, one chosen per session.
    pub categories: &'static [&'static str],
    /// Chance that a session strays into any category.
    pub stray_rate: f64,
    /// Searches at the start of a session.
    pub searches: (u32, u32),
    /// Words search queries are made of (lowercase, no commas).
    pub vocabulary: &'static [&'static str],
    /// Item views per session.
    pub views: (u32, u32),
    /// Chance that a viewed item is added to the cart.
    pub cart_rate: f64,
    /// Chance that a carted item is bought at the end of the session.
    pub buy_rate: f64,
    /// Chance that a purchase is rated.
    pub rating_rate: f64,
    /// Ratings given.
    pub ratings: (u8, u8),
    /// Price of a bought item in cents, before the per-user spend factor.
    pub amount_cents: (u32, u32),
    /// Seconds between consecutive events of a session.
    pub gap_secs: (u32, u32),
    /// Users start on a day drawn from the first `start_spread` of the period.
    pub start_spread: f64,
    /// Users stop after this fraction of the period (1 = active throughout).
    pub active_until: f64,
    /// Chance that a user stops for good earlier, on a day drawn uniformly from the
    /// second half of their active span (so that the persona shows first).
    pub dropout: f64,
    /// Most purchases a user makes over the period.
    pub max_purchases: u32,
}

/// The personas users are drawn from.
pub const PERSONAS: &[Persona] = &[
    Persona {
        name: "bargain browser",
        weight: 0.25,
        sessions_per_week: 0.5,
        weekday_weights: [1.3, 1.3, 1.3, 1.3, 1.3, 0.25, 0.25],
        hours: &[9, 10, 11, 12, 12, 13, 13, 14, 15, 16, 17],
        categories: &["fashion", "home"],
        stray_rate: 0.05,
        searches: (0, 1),
        vocabulary: &[
            "sale",
            "discount",
            "clearance",
            "cheap",
            "dress",
            "sneakers",
            "jacket",
            "scarf",
            "lamp",
            "cushion",
            "rug",
            "curtains",
            "mug",
            "under 20",
        ],
        views: (2, 4),
        cart_rate: 0.08,
        buy_rate: 0.15,
        rating_rate: 0.05,
        ratings: (2, 5),
        amount_cents: (500, 3000),
        gap_secs: (30, 240),
        start_spread: 0.35,
        active_until: 1.0,
        dropout: 0.15,
        max_purchases: u32::MAX,
    },
    Persona {
        name: "loyal big spender",
        weight: 0.15,
        sessions_per_week: 0.5,
        weekday_weights: [1.0; 7],
        hours: &[18, 19, 20, 20, 21, 21, 22],
        categories: &["electronics"],
        stray_rate: 0.05,
        searches: (0, 1),
        vocabulary: &[
            "laptop",
            "oled",
            "tv",
            "headphones",
            "noise cancelling",
            "camera",
            "lens",
            "4k",
            "monitor",
            "pro",
            "wireless",
            "gaming",
        ],
        views: (1, 2),
        cart_rate: 0.55,
        buy_rate: 0.85,
        rating_rate: 0.6,
        ratings: (4, 5),
        amount_cents: (8000, 40000),
        gap_secs: (10, 60),
        start_spread: 0.35,
        active_until: 1.0,
        dropout: 0.15,
        max_purchases: u32::MAX,
    },
    Persona {
        name: "night searcher",
        weight: 0.20,
        sessions_per_week: 0.5,
        weekday_weights: [1.0; 7],
        hours: &[22, 23, 23, 0, 0, 1, 1, 2, 3],
        categories: &["books"],
        stray_rate: 0.05,
        searches: (1, 2),
        vocabulary: &[
            "dune",
            "herbert",
            "tolkien",
            "hobbit",
            "austen",
            "pride and prejudice",
            "orwell",
            "1984",
            "atwood",
            "murakami",
            "kafka on the shore",
            "agatha christie",
            "murder",
            "orient express",
            "le guin",
            "earthsea",
            "pratchett",
            "discworld",
            "mystery",
            "fantasy",
            "poetry",
            "paperback",
            "signed edition",
        ],
        views: (1, 3),
        cart_rate: 0.2,
        buy_rate: 0.6,
        rating_rate: 0.1,
        ratings: (3, 5),
        amount_cents: (800, 3500),
        gap_secs: (20, 180),
        start_spread: 0.35,
        active_until: 1.0,
        dropout: 0.15,
        max_purchases: u32::MAX,
    },
    Persona {
        name: "weekend hobbyist",
        weight: 0.20,
        sessions_per_week: 0.5,
        weekday_weights: [0.2, 0.2, 0.2, 0.2, 0.2, 3.0, 3.0],
        hours: &[8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18],
        categories: &["garden", "sports"],
        stray_rate: 0.05,
        searches: (0, 1),
        vocabulary: &[
            "trowel",
            "seeds",
            "tomato",
            "planter",
            "hose",
            "tent",
            "bike",
            "helmet",
            "yoga mat",
            "running shoes",
            "racket",
            "camping",
        ],
        views: (1, 4),
        cart_rate: 0.25,
        buy_rate: 0.5,
        rating_rate: 0.35,
        ratings: (3, 5),
        amount_cents: (2500, 12000),
        gap_secs: (30, 300),
        start_spread: 0.35,
        active_until: 1.0,
        dropout: 0.15,
        max_purchases: u32::MAX,
    },
    Persona {
        name: "lapsed one-timer",
        weight: 0.20,
        sessions_per_week: 0.35,
        weekday_weights: [1.0; 7],
        hours: &[10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21],
        categories: &["toys", "beauty"],
        stray_rate: 0.05,
        searches: (0, 1),
        vocabulary: &[
            "gift", "birthday", "lego", "puzzle", "kids", "perfume", "gift set", "lipstick",
        ],
        views: (2, 4),
        cart_rate: 0.4,
        buy_rate: 0.9,
        rating_rate: 0.35,
        ratings: (1, 3),
        amount_cents: (1500, 6000),
        gap_secs: (20, 200),
        start_spread: 0.2,
        active_until: 0.3,
        dropout: 0.0,
        max_purchases: 1,
    },
];

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
    let plan = Plan::new(params);
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

/// Users needed for about `events` events with the default period (for benchmarks:
/// "give me ~10M events").
///
/// The events per user are measured once on a pilot run of the generator, so the
/// answer follows any change of the persona knobs.
pub fn users_for_events(events: u64) -> usize {
    static PER_USER: OnceLock<f64> = OnceLock::new();
    let per_user = *PER_USER.get_or_init(|| {
        const PILOT_USERS: usize = 4000;
        let params = SynthParams {
            users: PILOT_USERS,
            ..SynthParams::default()
        };
        let plan = Plan::new(&params);
        let mut user_gen = UserGen::new(&plan);
        let total: u64 = (0..PILOT_USERS).map(|i| user_gen.user(i).1).sum();
        (total as f64 / PILOT_USERS as f64).max(1.0)
    });
    ((events as f64 / per_user).round() as usize).clamp(1, MAX_USERS)
}

const DAY_SECS: i64 = 86_400;

/// Everything shared by all users of a run.
struct Plan {
    seed: u64,
    id_width: usize,
    /// `YYYY-MM-DD` of each day of the period.
    dates: Vec<String>,
    /// Weekday of the first day, Monday = 0.
    start_weekday: u32,
    days: u32,
    /// Upper bounds of the persona weights, normalised to sum to 1.
    cumulative: Vec<f64>,
    /// Index into [`CATEGORIES`] of each persona's preferred categories.
    persona_categories: Vec<Vec<u32>>,
    /// Offset of the persona sequence, so each seed mixes personas differently.
    persona_offset: u64,
}

impl Plan {
    fn new(params: &SynthParams) -> Plan {
        let dates = params
            .start
            .iter_days()
            .take(params.days as usize)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .collect();
        let total: f64 = PERSONAS.iter().map(|p| p.weight).sum();
        let mut acc = 0.0;
        let cumulative = PERSONAS
            .iter()
            .map(|p| {
                acc += p.weight / total;
                acc
            })
            .collect();
        let persona_categories = PERSONAS
            .iter()
            .map(|p| {
                p.categories
                    .iter()
                    .filter_map(|c| CATEGORIES.iter().position(|x| x == c))
                    .map(|i| i as u32)
                    .collect()
            })
            .collect();
        Plan {
            seed: params.seed,
            id_width: params.users.to_string().len().max(6),
            dates,
            start_weekday: params.start.weekday().num_days_from_monday(),
            days: params.days,
            cumulative,
            persona_categories,
            persona_offset: splitmix64(params.seed ^ 0xD1B5_4A32_D192_ED03),
        }
    }

    fn user_id(&self, index: usize) -> String {
        format!("u{:0width$}", index + 1, width = self.id_width)
    }

    /// Personas follow a Weyl sequence rather than independent draws, so the mix
    /// matches the weights closely for any number of users and any user's persona
    /// is known without generating the others.
    fn persona(&self, index: usize) -> usize {
        let x = (index as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(self.persona_offset);
        let u = (x >> 11) as f64 / (1u64 << 53) as f64;
        self.cumulative
            .iter()
            .position(|&c| u < c)
            .unwrap_or(PERSONAS.len() - 1)
    }

    fn rng(&self, index: usize) -> Xoshiro256PlusPlus {
        Xoshiro256PlusPlus::seed_from_u64(splitmix64(
            self.seed ^ splitmix64(index as u64 ^ 0xA076_1D64_78BD_642F),
        ))
    }

    /// The user's stream of item choices, apart from [`Plan::rng`] so that tastes
    /// change which items are seen and nothing else.
    fn item_rng(&self, index: usize) -> Xoshiro256PlusPlus {
        Xoshiro256PlusPlus::seed_from_u64(splitmix64(
            self.seed ^ splitmix64(index as u64 ^ 0x5851_F42D_4C95_7F2D),
        ))
    }
}

/// SplitMix64 finaliser: spreads seeds and indices over all 64 bits.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in `lo..=hi` (inclusive; `lo` when the range is empty). Ranges are drawn
/// on `u32`, never `usize`, so 32- and 64-bit machines draw the same numbers.
fn between(rng: &mut Xoshiro256PlusPlus, (lo, hi): (u32, u32)) -> u32 {
    if hi <= lo { lo } else { rng.gen_range(lo..=hi) }
}

fn pick<'a, T>(rng: &mut Xoshiro256PlusPlus, items: &'a [T]) -> Option<&'a T> {
    let n = u32::try_from(items.len()).ok()?.checked_sub(1)?;
    items.get(between(rng, (0, n)) as usize)
}

/// `rng.gen_bool` panics outside `[0, 1]`; this treats such chances as never/always.
fn chance(rng: &mut Xoshiro256PlusPlus, p: f64) -> bool {
    rng.r#gen::<f64>() < p
}

/// One event ready to format.
struct Row<'a> {
    time: i64,
    kind: &'static str,
    item: Option<u32>,
    category: Option<u32>,
    query: &'a [&'static str],
    amount_cents: Option<u64>,
    rating: Option<u32>,
}

/// Per-user state of the generator that is reused between users.
struct UserGen<'a> {
    plan: &'a Plan,
    /// Formatted rows of the current user.
    buf: Vec<u8>,
    id: Vec<u8>,
    session: u32,
    events: u64,
    /// Time of the last row written.
    last_time: i64,
    end: i64,
    cart: Vec<(u32, u32)>,
    query: Vec<&'static str>,
}

/// Per-user draws that stay fixed for the whole period.
struct Traits {
    /// Multiplies the session rate.
    activity: f64,
    /// Multiplies the cart rate.
    conversion: f64,
    spend_percent: u64,
    purchases: u32,
    /// Preferred style per category, and what was bought there last.
    tastes: items::Tastes,
    /// The stream item choices draw from.
    item_rng: Xoshiro256PlusPlus,
}

impl<'a> UserGen<'a> {
    fn new(plan: &'a Plan) -> UserGen<'a> {
        UserGen {
            plan,
            buf: Vec::with_capacity(1 << 14),
            id: Vec::new(),
            session: 0,
            events: 0,
            last_time: 0,
            end: i64::from(plan.days) * DAY_SECS,
            cart: Vec::new(),
            query: Vec::new(),
        }
    }

    /// Formats user `index` into `buf`; returns its persona index and event count.
    fn user(&mut self, index: usize) -> (usize, u64) {
        let plan = self.plan;
        let persona_index = plan.persona(index);
        let persona = &PERSONAS[persona_index];
        let mut rng = plan.rng(index);
        self.buf.clear();
        self.id.clear();
        self.id.extend_from_slice(plan.user_id(index).as_bytes());
        self.session = 0;
        self.events = 0;

        // Skewed multipliers (many light users, a few heavy ones: activity runs from
        // 0.6 to 6.6 with mean 1.8) spread users within a persona, and because they
        // last the whole period they make later behaviour predictable from earlier
        // behaviour. A fourth power rather than `powf` keeps the draws free of
        // platform-dependent maths.
        let u = rng.r#gen::<f64>();
        let activity = 0.6 + 6.0 * (u * u) * (u * u);
        let conversion = 0.4 + 1.2 * rng.r#gen::<f64>();
        let mut item_rng = plan.item_rng(index);
        let tastes = items::Tastes::draw(&mut item_rng, CATEGORIES.len());
        let mut traits = Traits {
            activity,
            conversion,
            spend_percent: u64::from(between(&mut rng, (80, 125))),
            purchases: 0,
            tastes,
            item_rng,
        };
        let days = f64::from(plan.days);
        let first_day =
            ((rng.r#gen::<f64>() * persona.start_spread * days) as u32).min(plan.days - 1);
        let mut last_day =
            ((persona.active_until * days).ceil() as u32).clamp(first_day + 1, plan.days);
        if chance(&mut rng, persona.dropout) {
            last_day = between(&mut rng, (first_day.midpoint(last_day) + 1, last_day));
        }
        let window_end = (i64::from(last_day) * DAY_SECS).min(self.end);

        let mut previous_end: Option<i64> = None;
        'days: for day in first_day..last_day {
            let weekday = ((plan.start_weekday + day) % 7) as usize;
            let rate = persona.sessions_per_week / 7.0
                * persona.weekday_weights[weekday]
                * traits.activity;
            // Truncation is floor for a non-negative rate, without a libm call.
            let whole = rate as u32;
            let sessions = whole + u32::from(chance(&mut rng, rate - f64::from(whole)));
            let mut starts = [0i64; 4];
            let sessions = (sessions as usize).min(starts.len());
            for start in starts.iter_mut().take(sessions) {
                *start = self.session_start(&mut rng, persona, day);
            }
            starts[..sessions].sort_unstable();
            for &start in &starts[..sessions] {
                // Sessions stay more than a session gap apart, so sessionizing
                // the output finds exactly these sessions.
                let start = match previous_end {
                    Some(end) if start < end + SESSION_GAP_SECS + 60 => {
                        end + SESSION_GAP_SECS + 60 + i64::from(between(&mut rng, (0, 3600)))
                    }
                    _ => start,
                };
                if start >= window_end {
                    break 'days;
                }
                previous_end = Some(self.session(&mut rng, persona_index, &mut traits, start));
            }
        }
        if self.events == 0 {
            // Every listed user appears in the events, however quiet.
            let day = between(&mut rng, (first_day, last_day - 1));
            let start = self.session_start(&mut rng, persona, day);
            self.session(&mut rng, persona_index, &mut traits, start);
        }
        (persona_index, self.events)
    }

    fn session_start(&self, rng: &mut Xoshiro256PlusPlus, persona: &Persona, day: u32) -> i64 {
        let hour = pick(rng, persona.hours).copied().unwrap_or(12);
        i64::from(day) * DAY_SECS + i64::from(hour) * 3600 + i64::from(between(rng, (0, 3599)))
    }

    /// Writes one session starting at `start`; returns the time of its last event.
    fn session(
        &mut self,
        rng: &mut Xoshiro256PlusPlus,
        persona_index: usize,
        traits: &mut Traits,
        start: i64,
    ) -> i64 {
        let persona = &PERSONAS[persona_index];
        let plan = self.plan;
        self.session += 1;
        let category = if chance(rng, persona.stray_rate) {
            between(rng, (0, CATEGORIES.len() as u32 - 1))
        } else {
            pick(rng, &plan.persona_categories[persona_index])
                .copied()
                .unwrap_or(0)
        };
        let mut time = start;
        for _ in 0..between(rng, persona.searches) {
            let mut query = std::mem::take(&mut self.query);
            query.clear();
            for _ in 0..between(rng, (1, 3)) {
                if let Some(&word) = pick(rng, persona.vocabulary) {
                    query.push(word);
                }
            }
            let row = Row {
                time,
                kind: event_types::SEARCH,
                item: None,
                category: chance(rng, 0.5).then_some(category),
                query: &query,
                amount_cents: None,
                rating: None,
            };
            let written = self.row(&row);
            self.query = query;
            if !written {
                return self.last_time;
            }
            time += gap(rng, persona);
        }

        self.cart.clear();
        for view in 0..between(rng, persona.views) {
            let u = rng.r#gen::<f64>();
            let item = traits
                .tastes
                .view(&mut traits.item_rng, category, u, view == 0);
            if !self.row(&Row::item(time, event_types::VIEW, item, category)) {
                return self.last_time;
            }
            time += gap(rng, persona);
            if chance(rng, persona.cart_rate * traits.conversion) {
                if !self.row(&Row::item(time, event_types::ADD_TO_CART, item, category)) {
                    return self.last_time;
                }
                self.cart.push((item, category));
                time += gap(rng, persona);
            }
        }

        let cart = std::mem::take(&mut self.cart);
        for &(item, category) in &cart {
            if traits.purchases >= persona.max_purchases || !chance(rng, persona.buy_rate) {
                continue;
            }
            let cents = u64::from(between(rng, persona.amount_cents)) * traits.spend_percent / 100;
            let mut row = Row::item(time, event_types::PURCHASE, item, category);
            row.amount_cents = Some(cents);
            if !self.row(&row) {
                break;
            }
            traits.purchases += 1;
            traits.tastes.bought(item);
            time += gap(rng, persona);
            if chance(rng, persona.rating_rate) {
                let (lo, hi) = persona.ratings;
                let mut row = Row::item(time, event_types::RATING, item, category);
                row.rating = Some(between(rng, (u32::from(lo), u32::from(hi))));
                if !self.row(&row) {
                    break;
                }
                time += gap(rng, persona);
            }
        }
        self.cart = cart;
        self.last_time
    }

    /// Formats one row; false (and nothing written) when it falls after the period.
    ///
    /// Rows are formatted by hand rather than through `csv`/serde because this is the
    /// hot loop of 100M-event benchmarks, and every field is known to need no quoting.
    fn row(&mut self, row: &Row<'_>) -> bool {
        if row.time >= self.end {
            return false;
        }
        let buf = &mut self.buf;
        buf.extend_from_slice(&self.id);
        buf.push(b',');
        let day = (row.time / DAY_SECS) as usize;
        let secs = (row.time % DAY_SECS) as u32;
        buf.extend_from_slice(self.plan.dates[day].as_bytes());
        buf.push(b' ');
        push_two(buf, secs / 3600);
        buf.push(b':');
        push_two(buf, secs / 60 % 60);
        buf.push(b':');
        push_two(buf, secs % 60);
        buf.push(b',');
        buf.extend_from_slice(row.kind.as_bytes());
        buf.push(b',');
        buf.extend_from_slice(&self.id);
        buf.extend_from_slice(b"-s");
        push_u64(buf, u64::from(self.session));
        buf.push(b',');
        if let Some(item) = row.item {
            buf.push(b'i');
            // Fixed-width item ids sort like numbers.
            push_padded(buf, item, 5);
        }
        buf.push(b',');
        if let Some(category) = row.category {
            buf.extend_from_slice(CATEGORIES[category as usize].as_bytes());
        }
        buf.push(b',');
        for (i, word) in row.query.iter().enumerate() {
            if i > 0 {
                buf.push(b' ');
            }
            buf.extend_from_slice(word.as_bytes());
        }
        buf.push(b',');
        if let Some(cents) = row.amount_cents {
            push_u64(buf, cents / 100);
            buf.push(b'.');
            push_two(buf, (cents % 100) as u32);
        }
        buf.push(b',');
        if let Some(rating) = row.rating {
            push_u64(buf, u64::from(rating));
        }
        buf.push(b'\n');
        self.events += 1;
        self.last_time = row.time;
        true
    }
}

impl Row<'static> {
    fn item(time: i64, kind: &'static str, item: u32, category: u32) -> Row<'static> {
        Row {
            time,
            kind,
            item: Some(item),
            category: Some(category),
            query: &[],
            amount_cents: None,
            rating: None,
        }
    }
}

fn push_two(buf: &mut Vec<u8>, n: u32) {
    buf.push(b'0' + (n / 10 % 10) as u8);
    buf.push(b'0' + (n % 10) as u8);
}

/// Seconds to the next event of a session.
fn gap(rng: &mut Xoshiro256PlusPlus, persona: &Persona) -> i64 {
    i64::from(between(rng, persona.gap_secs).max(1))
}

fn push_padded(buf: &mut Vec<u8>, n: u32, width: usize) {
    let mut digits = 1;
    let mut rest = n / 10;
    while rest > 0 {
        digits += 1;
        rest /= 10;
    }
    buf.extend(std::iter::repeat_n(b'0', width.saturating_sub(digits)));
    push_u64(buf, u64::from(n));
}

fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDateTime, Timelike};
    use std::collections::{BTreeMap, HashMap};

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
        static RUN: OnceLock<(Vec<u8>, Vec<u8>, Summary)> = OnceLock::new();
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
        let params = SynthParams::default();
        let (events, _, summary) = default_run();
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
        let users = users_for_events(100_000);
        let params = SynthParams {
            users,
            seed: 9,
            ..SynthParams::default()
        };
        let summary = generate(&params, io::sink(), None::<io::Sink>).unwrap();
        let ratio = summary.events as f64 / 100_000.0;
        assert!((0.9..1.1).contains(&ratio), "{users} users, {ratio}");
        assert_eq!(users_for_events(0), 1);
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

    #[test]
    fn ids_widen_for_big_runs() {
        let params = SynthParams {
            users: 1_234_567,
            ..SynthParams::default()
        };
        let plan = Plan::new(&params);
        assert_eq!(plan.user_id(0), "u0000001");
        assert_eq!(plan.user_id(1_234_566), "u1234567");
    }

    #[test]
    fn formats_numbers_by_hand() {
        let mut buf = Vec::new();
        push_padded(&mut buf, 42, 5);
        buf.push(b' ');
        push_u64(&mut buf, 0);
        buf.push(b' ');
        push_u64(&mut buf, u64::MAX);
        assert_eq!(buf, b"00042 0 18446744073709551615");
    }
}
