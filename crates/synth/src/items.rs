//! The item catalogue: latent tastes, popularity and complements.
//!
//! Each category holds [`ITEMS_PER_CATEGORY`] items in [`STYLES`] styles of equal
//! size. Every user has one preferred style per category (their latent taste) and
//! mostly views items of it; within a style, low-numbered items are the popular
//! ones. Every item has a complement in the next style of its category, which a
//! buyer often views first when they come back to that category. So what a user
//! buys next is predictable from what they and similar users did, which popularity
//! alone cannot see: a recommender that learns tastes should beat it.
//!
//! Item choices draw from a random stream of their own, so the events' times,
//! types and categories are the same as with uniform items: only the ids differ.

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// Items in a category; their ids are `category * 10_000 + number`.
pub const ITEMS_PER_CATEGORY: u32 = 1000;
/// Latent tastes per category.
pub const STYLES: u32 = 10;
/// Items of one style.
const PER_STYLE: u32 = ITEMS_PER_CATEGORY / STYLES;
/// Chance that a view follows the user's taste rather than any style.
const TASTE_RATE: f64 = 0.85;
/// Chance that a session in a category the user bought in opens on the complement
/// of their last purchase there.
const COMPLEMENT_RATE: f64 = 0.5;

/// A user's tastes and last purchase per category.
pub(crate) struct Tastes {
    style: Vec<u32>,
    last_bought: Vec<Option<u32>>,
}

impl Tastes {
    /// Draws a user's preferred style in each of `categories` categories.
    pub(crate) fn draw(rng: &mut Xoshiro256PlusPlus, categories: usize) -> Tastes {
        Tastes {
            style: (0..categories).map(|_| rng.gen_range(0..STYLES)).collect(),
            last_bought: vec![None; categories],
        }
    }

    /// The item a view in `category` shows. `u` (uniform in [0, 1), from the main
    /// stream) places it in its style's popularity curve; `first` is the session's
    /// first view.
    pub(crate) fn view(
        &self,
        rng: &mut Xoshiro256PlusPlus,
        category: u32,
        u: f64,
        first: bool,
    ) -> u32 {
        let c = category as usize;
        if first
            && let Some(Some(bought)) = self.last_bought.get(c)
            && rng.r#gen::<f64>() < COMPLEMENT_RATE
        {
            return category * 10_000 + complement(*bought);
        }
        let style = match self.style.get(c) {
            Some(&style) if rng.r#gen::<f64>() < TASTE_RATE => style,
            _ => rng.gen_range(0..STYLES),
        };
        // Squaring skews the draw towards the style's first, popular items.
        let rank = ((u * u * f64::from(PER_STYLE)) as u32).min(PER_STYLE - 1);
        category * 10_000 + style * PER_STYLE + rank
    }

    /// Records a purchase of `item` (an id from [`Tastes::view`]).
    pub(crate) fn bought(&mut self, item: u32) {
        let category = (item / 10_000) as usize;
        if let Some(last) = self.last_bought.get_mut(category) {
            *last = Some(item % 10_000);
        }
    }
}

/// The complement of item `number` of a category: the same place in the next style,
/// shifted so that complements are not all the most popular items.
pub(crate) fn complement(number: u32) -> u32 {
    let style = number / PER_STYLE % STYLES;
    let rank = number % PER_STYLE;
    (style + 1) % STYLES * PER_STYLE + (rank * 7 + 3) % PER_STYLE
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn views_follow_the_taste_and_stay_in_the_category() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let tastes = Tastes::draw(&mut rng, 8);
        let mut in_style = 0;
        for i in 0..2000 {
            let u = f64::from(i % 100) / 100.0;
            let item = tastes.view(&mut rng, 3, u, false);
            assert_eq!(item / 10_000, 3);
            assert!(item % 10_000 < ITEMS_PER_CATEGORY);
            in_style += u32::from((item % 10_000) / PER_STYLE == tastes.style[3]);
        }
        // 85% by taste, plus a tenth of the rest by chance.
        let share = f64::from(in_style) / 2000.0;
        assert!((0.83..0.9).contains(&share), "{share}");
    }

    #[test]
    fn buyers_come_back_to_complements() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let mut tastes = Tastes::draw(&mut rng, 8);
        tastes.bought(2 * 10_000 + 123);
        let complements = (0..1000)
            .filter(|_| tastes.view(&mut rng, 2, 0.5, true) == 20_000 + complement(123))
            .count();
        assert!((400..600).contains(&complements), "{complements}");
        assert_eq!(complement(123), 2 * PER_STYLE + (23 * 7 + 3) % PER_STYLE);
        assert_eq!(complement(999) / PER_STYLE, 0);
    }
}
