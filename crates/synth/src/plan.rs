//! What every user of a run shares: ids, dates, the persona sequence and the
//! per-user random streams, and the drawing helpers built on them.

use chrono::Datelike;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::{CATEGORIES, PERSONAS, SynthParams};
pub(crate) use userlens_model::seed::splitmix64;

pub(crate) const DAY_SECS: i64 = 86_400;

/// Everything shared by all users of a run.
pub(crate) struct Plan {
    pub(crate) seed: u64,
    pub(crate) id_width: usize,
    /// `YYYY-MM-DD` of each day of the period.
    pub(crate) dates: Vec<String>,
    /// Weekday of the first day, Monday = 0.
    pub(crate) start_weekday: u32,
    pub(crate) days: u32,
    /// Upper bounds of the persona weights, normalised to sum to 1.
    pub(crate) cumulative: Vec<f64>,
    /// Index into [`CATEGORIES`] of each persona's preferred categories.
    pub(crate) persona_categories: Vec<Vec<u32>>,
    /// Offset of the persona sequence, so each seed mixes personas differently.
    pub(crate) persona_offset: u64,
    /// Multiplies every user's session rate: 1 for the default shape, more for long
    /// histories (see [`SynthParams::events_per_user`]).
    pub(crate) session_scale: f64,
}

impl Plan {
    pub(crate) fn new(params: &SynthParams) -> Plan {
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
            session_scale: 1.0,
        }
    }

    pub(crate) fn user_id(&self, index: usize) -> String {
        format!("u{:0width$}", index + 1, width = self.id_width)
    }

    /// Personas follow a Weyl sequence rather than independent draws, so the mix
    /// matches the weights closely for any number of users and any user's persona
    /// is known without generating the others.
    pub(crate) fn persona(&self, index: usize) -> usize {
        let x = (index as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(self.persona_offset);
        let u = (x >> 11) as f64 / (1u64 << 53) as f64;
        self.cumulative
            .iter()
            .position(|&c| u < c)
            .unwrap_or(PERSONAS.len() - 1)
    }

    pub(crate) fn rng(&self, index: usize) -> Xoshiro256PlusPlus {
        Xoshiro256PlusPlus::seed_from_u64(splitmix64(
            self.seed ^ splitmix64(index as u64 ^ 0xA076_1D64_78BD_642F),
        ))
    }

    /// The user's stream of item choices, apart from [`Plan::rng`] so that tastes
    /// change which items are seen and nothing else.
    pub(crate) fn item_rng(&self, index: usize) -> Xoshiro256PlusPlus {
        Xoshiro256PlusPlus::seed_from_u64(splitmix64(
            self.seed ^ splitmix64(index as u64 ^ 0x5851_F42D_4C95_7F2D),
        ))
    }
}

/// Uniform in `lo..=hi` (inclusive; `lo` when the range is empty). Ranges are drawn
/// on `u32`, never `usize`, so 32- and 64-bit machines draw the same numbers.
pub(crate) fn between(rng: &mut Xoshiro256PlusPlus, (lo, hi): (u32, u32)) -> u32 {
    if hi <= lo { lo } else { rng.gen_range(lo..=hi) }
}

pub(crate) fn pick<'a, T>(rng: &mut Xoshiro256PlusPlus, items: &'a [T]) -> Option<&'a T> {
    let n = u32::try_from(items.len()).ok()?.checked_sub(1)?;
    items.get(between(rng, (0, n)) as usize)
}

/// `rng.gen_bool` panics outside `[0, 1]`; this treats such chances as never/always.
pub(crate) fn chance(rng: &mut Xoshiro256PlusPlus, p: f64) -> bool {
    rng.r#gen::<f64>() < p
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
