//! What one user did with one item: their events on it folded at the cutoff and
//! at the as-of date.

use userlens_model::event_types;
use userlens_model::time::DAY_MICROS;

use crate::params::{CheckedRecommendParams, CheckedWeight};

/// The two times interests are taken at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The end of training: the as-of date minus the horizon.
    Cutoff,
    /// The as-of date.
    AsOf,
}

/// Which events make an item a user's test item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TestKinds {
    /// Those of the types `test_events` asks for.
    Asked,
    /// Those of every type whose weight can count (the log has none asked for).
    Weighted,
}

/// What one user did with one item before one [`End`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Touch {
    /// The events' decayed weights, summed.
    pub interest: f32,
    /// Whether there was any event.
    pub touched: bool,
    /// Whether one was a purchase.
    pub bought: bool,
}

/// Everything one user did with one item before the as-of date, in 20 bytes: the
/// stage holds one per pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Pair {
    pub user: u32,
    pub item: u32,
    /// Per [`End`]: the interest.
    interest: [f32; 2],
    /// The type of the weightiest event before the as-of date, the only date
    /// explanations are made at (index into [`super::Log::kinds`]).
    strongest: u16,
    /// Per [`End`] whether touched and whether bought, per [`TestKinds`] whether
    /// tested: bits [`Pair::touched_bit`], [`Pair::bought_bit`], [`Pair::tested_bit`].
    flags: u8,
}

const _: () = assert!(std::mem::size_of::<Pair>() == 20);

/// Bytes of a [`Pair`] written out ([`Pair::to_bytes`]): its fields, unpadded.
pub(super) const PAIR_BYTES: usize = 19;

impl Pair {
    const fn touched_bit(end: End) -> u8 {
        1 << (end as u8)
    }

    const fn bought_bit(end: End) -> u8 {
        1 << (2 + end as u8)
    }

    const fn tested_bit(kinds: TestKinds) -> u8 {
        1 << (4 + kinds as u8)
    }

    fn set(&mut self, bit: u8, on: bool) {
        if on {
            self.flags |= bit;
        }
    }

    pub fn at(&self, end: End) -> Touch {
        Touch {
            interest: self.interest[end as usize],
            touched: self.flags & Pair::touched_bit(end) != 0,
            bought: self.flags & Pair::bought_bit(end) != 0,
        }
    }

    /// The type of the weightiest event before the as-of date.
    pub fn strongest(&self) -> u16 {
        self.strongest
    }

    pub fn tested(&self, kinds: TestKinds) -> bool {
        self.flags & Pair::tested_bit(kinds) != 0
    }

    /// The pair's bytes as [`Pair::from_bytes`] reads them (little-endian fields).
    pub(super) fn to_bytes(self) -> [u8; PAIR_BYTES] {
        let mut out = [0u8; PAIR_BYTES];
        out[0..4].copy_from_slice(&self.user.to_le_bytes());
        out[4..8].copy_from_slice(&self.item.to_le_bytes());
        out[8..12].copy_from_slice(&self.interest[0].to_le_bytes());
        out[12..16].copy_from_slice(&self.interest[1].to_le_bytes());
        out[16..18].copy_from_slice(&self.strongest.to_le_bytes());
        out[18] = self.flags;
        out
    }

    /// The pair [`Pair::to_bytes`] wrote.
    pub(super) fn from_bytes(bytes: &[u8; PAIR_BYTES]) -> Pair {
        let word = |at: usize| [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        Pair {
            user: u32::from_le_bytes(word(0)),
            item: u32::from_le_bytes(word(4)),
            interest: [f32::from_le_bytes(word(8)), f32::from_le_bytes(word(12))],
            strongest: u16::from_le_bytes([bytes[16], bytes[17]]),
            flags: bytes[18],
        }
    }

    /// The pair with its user, item and types renumbered by the given tables.
    pub(super) fn renumbered(mut self, users: &[u32], items: &[u32], kinds: &[u32]) -> Pair {
        self.user = users[self.user as usize];
        self.item = items[self.item as usize];
        self.strongest = kinds[usize::from(self.strongest)] as u16;
        self
    }
}

/// What [`super::read`] reads: the events before `as_of`, each user's on an item
/// folded with `params`' weights at `cutoff` and at `as_of`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window<'a> {
    pub params: &'a CheckedRecommendParams,
    pub cutoff: i64,
    pub as_of: i64,
}

/// What an event type means to the fold.
#[derive(Debug, Clone, Copy)]
pub(super) struct Role {
    weight: Option<CheckedWeight>,
    purchase: bool,
    /// Per [`TestKinds`]: whether its events make test items.
    test: [bool; 2],
}

impl Role {
    pub(super) fn of(kind: &str, params: &CheckedRecommendParams) -> Role {
        let weight = params
            .weights
            .iter()
            .find(|(name, _)| name == kind)
            .map(|(_, w)| *w);
        Role {
            weight,
            purchase: kind == event_types::PURCHASE,
            test: [
                params.test_events.iter().any(|t| t == kind),
                weight.is_some_and(CheckedWeight::can_count),
            ],
        }
    }

    /// Whether events of the type change nothing but the item's being touched: no
    /// weight, no purchase, no test item. Their interest is 0, so such a type is
    /// never the one an explanation names.
    pub(super) fn inert(&self) -> bool {
        self.weight.is_none() && !self.purchase && self.test == [false; 2]
    }

    fn weight(&self, rating: f32) -> f32 {
        match self.weight {
            Some(CheckedWeight::Fixed(w)) => w,
            Some(CheckedWeight::Rating) if rating.is_finite() => rating.max(0.0),
            _ => 0.0,
        }
    }
}

/// One of a user's events on an item, as a task reads it (ids its own).
#[derive(Debug, Clone, Copy)]
pub(super) struct Row {
    pub item: u32,
    pub kind: u16,
    pub time: i64,
    /// NaN when the event has none.
    pub rating: f32,
}

/// Folds one user's `rows` into one [`Pair`] per item, appended to `out`; each
/// end's latest time goes into `latest`. `kinds` names the rows' types.
pub(super) fn fold(
    user: u32,
    rows: &mut [Row],
    kinds: &[String],
    roles: &[Role],
    window: &Window<'_>,
    out: &mut Vec<Pair>,
    latest: &mut [Option<i64>; 2],
) {
    // Each item's events by time, type name and rating: a fixed order of the sums.
    rows.sort_unstable_by(|a, b| {
        (a.item, a.time)
            .cmp(&(b.item, b.time))
            .then_with(|| kinds[usize::from(a.kind)].cmp(&kinds[usize::from(b.kind)]))
            .then(a.rating.total_cmp(&b.rating))
    });
    let half_life = window.params.half_life_days.map(|d| d * DAY_MICROS as f64);
    for same in rows.chunk_by(|a, b| a.item == b.item) {
        let mut pair = Pair {
            user,
            item: same[0].item,
            interest: [0.0; 2],
            strongest: same[0].kind,
            flags: 0,
        };
        for (at, (end, time)) in [(End::Cutoff, window.cutoff), (End::AsOf, window.as_of)]
            .into_iter()
            .enumerate()
        {
            let (mut sum, mut bought, mut best) = (0f64, false, (f32::NEG_INFINITY, same[0].kind));
            let (mut touched, mut weighed) = (false, false);
            for row in same.iter().take_while(|r| r.time < time) {
                let role = &roles[usize::from(row.kind)];
                let w = role.weight(row.rating);
                weighed |= w > 0.0;
                let decay = half_life.map_or(1.0, |h| 0.5f64.powf((time - row.time) as f64 / h));
                sum += f64::from(w) * decay;
                bought |= role.purchase;
                if w > best.0 {
                    best = (w, row.kind);
                }
                latest[at] = latest[at].max(Some(row.time));
                touched = true;
            }
            // Halved past the range of an f32, a positive interest stays positive: the
            // smallest normal one, not 0, which would take the pair out of the history.
            pair.interest[at] = if weighed {
                (sum as f32).max(f32::MIN_POSITIVE)
            } else {
                sum as f32
            };
            if end == End::AsOf {
                pair.strongest = best.1;
            }
            pair.set(Pair::touched_bit(end), touched);
            pair.set(Pair::bought_bit(end), bought);
        }
        for row in same.iter().filter(|r| r.time >= window.cutoff) {
            let test = roles[usize::from(row.kind)].test;
            for kinds in [TestKinds::Asked, TestKinds::Weighted] {
                pair.set(Pair::tested_bit(kinds), test[kinds as usize]);
            }
        }
        out.push(pair);
    }
}
