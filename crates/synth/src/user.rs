//! One user's events, drawn and formatted into a buffer that is reused between users.

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;
use userlens_model::{SESSION_GAP_SECS, event_types};

use crate::items;
use crate::plan::{DAY_SECS, Plan, between, chance, pick};
use crate::{CATEGORIES, PERSONAS, Persona};

/// Most sessions a user starts in one day.
const MAX_SESSIONS_PER_DAY: usize = 8;

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
pub(crate) struct UserGen<'a> {
    plan: &'a Plan,
    /// Formatted rows of the current user.
    pub(crate) buf: Vec<u8>,
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
    pub(crate) fn new(plan: &'a Plan) -> UserGen<'a> {
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
    pub(crate) fn user(&mut self, index: usize) -> (usize, u64) {
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
            // The scale is exactly 1 in the default shape, so its bytes do not move.
            let rate = persona.sessions_per_week / 7.0
                * persona.weekday_weights[weekday]
                * traits.activity
                * plan.session_scale;
            // Truncation is floor for a non-negative rate, without a libm call.
            let whole = rate as u32;
            let sessions = whole + u32::from(chance(&mut rng, rate - f64::from(whole)));
            // The default shape never draws more than two sessions a day; long
            // histories (a scaled rate) stop at the cap.
            let mut starts = [0i64; MAX_SESSIONS_PER_DAY];
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
