//! A fitted recommender, and one user's list with its fallbacks and reasons.

use std::borrow::Cow;

use crate::als::Als;
use crate::events::Log;
use crate::knn::Knn;
use crate::matrix::Interactions;
use crate::params::{CheckedRecommendParams, ModelKind};
use crate::popular::Ranking;
use userlens_model::event_types;

/// Each user's persona and each persona's popular items.
#[derive(Debug, Clone, Default)]
pub(crate) struct Personas {
    /// Persona ids, ascending.
    pub ids: Vec<u32>,
    /// Per user: index into `ids`.
    pub of_user: Vec<Option<u32>>,
    /// Per persona: popularity among its users.
    pub rankings: Vec<Ranking>,
}

impl Personas {
    /// Popularity per persona on `inter`.
    pub fn rank(ids: Vec<u32>, of_user: Vec<Option<u32>>, inter: &Interactions) -> Personas {
        let rankings = (0..ids.len() as u32)
            .map(|p| Ranking::among(inter, |u| of_user.get(u).copied().flatten() == Some(p)))
            .collect();
        Personas {
            ids,
            of_user,
            rankings,
        }
    }
}

/// A fitted recommender.
pub(crate) enum Fitted {
    Popular,
    PersonaPopular,
    Knn(Knn),
    Als(Als),
}

/// Fits `kind` on `inter`.
pub(crate) fn fit(
    kind: ModelKind,
    inter: &Interactions,
    params: &CheckedRecommendParams,
    seed: u64,
) -> Fitted {
    match kind {
        ModelKind::Popular => Fitted::Popular,
        ModelKind::PersonaPopular => Fitted::PersonaPopular,
        ModelKind::ItemKnn => {
            Fitted::Knn(crate::knn::fit(inter, params.similarity, params.neighbours))
        }
        ModelKind::Als => Fitted::Als(crate::als::fit(inter, &params.als, seed)),
    }
}

/// Why an item is on a user's list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Why {
    /// The model scored it from the user's history.
    Model,
    /// Popular overall.
    Popular,
    /// Popular in the persona (index into [`Personas::ids`]).
    Persona(u32),
}

/// One recommendation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rec {
    pub item: u32,
    pub score: f32,
    pub why: Why,
}

/// What a fitted model is scored and used with.
pub(crate) struct Ctx<'a> {
    pub inter: &'a Interactions,
    pub popular: &'a Ranking,
    pub personas: &'a Personas,
}

impl Fitted {
    /// `user`'s `k` best items not in `skip` (ascending): the model's picks, then
    /// their persona's popular items, then popular ones.
    pub fn recommend(&self, ctx: &Ctx<'_>, user: usize, skip: &[u32], k: usize) -> Vec<Rec> {
        let has_history = !ctx.inter.positive().row(user).0.is_empty();
        let picks = match self {
            Fitted::Knn(m) if has_history => m.recommend(ctx.inter, user, skip, k),
            Fitted::Als(m) if has_history => m.recommend(ctx.inter, user, skip, k),
            _ => Vec::new(),
        };
        let mut recs: Vec<Rec> = picks
            .into_iter()
            .map(|s| Rec {
                item: s.item,
                score: s.score,
                why: Why::Model,
            })
            .collect();
        let persona = match self {
            Fitted::Popular => None,
            _ => ctx.personas.of_user.get(user).copied().flatten(),
        };
        if let Some(p) = persona
            && let Some(ranking) = ctx.personas.rankings.get(p as usize)
        {
            fill(&mut recs, ranking, Why::Persona(p), skip, k);
        }
        fill(&mut recs, ctx.popular, Why::Popular, skip, k);
        recs
    }
}

fn fill(recs: &mut Vec<Rec>, ranking: &Ranking, why: Why, skip: &[u32], k: usize) {
    if recs.len() >= k {
        return;
    }
    let taken: Vec<u32> = recs.iter().map(|r| r.item).collect();
    for item in ranking.top(k - recs.len(), skip, &taken) {
        let score = ranking.share.get(item as usize).copied().unwrap_or(0.0);
        recs.push(Rec { item, score, why });
    }
}

/// The verb of an event type in a reason ("bought i1").
fn verb(kind: &str) -> Cow<'static, str> {
    match kind {
        event_types::PURCHASE => "bought".into(),
        event_types::ADD_TO_CART => "carted".into(),
        event_types::VIEW => "viewed".into(),
        event_types::RATING => "rated".into(),
        other => other.replace('_', " ").into(),
    }
}

/// Most items named in a reason.
const REASON_ITEMS: usize = 2;

/// The [`REASON_ITEMS`] strongest positive `(strength, item)` pairs, best first
/// (ties: the lower item), and how many there are: kept as they come rather than
/// sorting every item a user touched.
fn strongest(pairs: impl Iterator<Item = (f32, u32)>) -> ([(f32, u32); REASON_ITEMS], usize) {
    let mut best = [(0.0, 0); REASON_ITEMS];
    let mut kept = 0;
    for (c, i) in pairs {
        if c.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            continue;
        }
        let before = |a: &(f32, u32)| c.total_cmp(&a.0).then(a.1.cmp(&i)).is_gt();
        let at = best[..kept].iter().position(before).unwrap_or(kept);
        if at < REASON_ITEMS {
            kept = (kept + 1).min(REASON_ITEMS);
            best.copy_within(at..kept - 1, at + 1);
            best[at] = (c, i);
        }
    }
    (best, kept)
}

impl Fitted {
    /// Why each of `recs` (`user`'s list) is on it, in words.
    pub fn reasons(&self, ctx: &Ctx<'_>, log: &Log, user: usize, recs: &[Rec]) -> Vec<String> {
        let history = ctx.inter.positive().row(user).0;
        // Item-kNN: each pick's similarity to every item in the history from one pass
        // over the history's neighbours, rather than a search for every pair.
        let table = match self {
            Fitted::Knn(m) if recs.iter().any(|r| r.why == Why::Model) => {
                let picks: Vec<u32> = recs.iter().map(|r| r.item).collect();
                Some(m.similarities(history, &picks))
            }
            _ => None,
        };
        recs.iter()
            .enumerate()
            .map(|(n, rec)| match &table {
                Some(table) => {
                    let row = &table[n * history.len()..(n + 1) * history.len()];
                    self.because(ctx, log, user, rec, |h, _| row[h])
                }
                None => self.because(ctx, log, user, rec, |_, i| self.similarity(i, rec.item)),
            })
            .collect()
    }

    /// How much item `a` is like item `b` in the model (0 for the popularity ones).
    fn similarity(&self, a: u32, b: u32) -> f32 {
        match self {
            Fitted::Knn(m) => m.similarity(a, b),
            Fitted::Als(m) => m.similarity(a, b),
            _ => 0.0,
        }
    }

    /// Why `rec` is on `user`'s list, in words; `similarity(h, i)`: the similarity
    /// to `rec`'s item of item `i`, the `h`-th of the user's history.
    fn because(
        &self,
        ctx: &Ctx<'_>,
        log: &Log,
        user: usize,
        rec: &Rec,
        similarity: impl Fn(usize, u32) -> f32,
    ) -> String {
        match rec.why {
            Why::Popular => return "popular overall".into(),
            Why::Persona(p) => {
                let id = ctx.personas.ids.get(p as usize).copied().unwrap_or(0);
                return format!("popular in persona {id}");
            }
            Why::Model => {}
        }
        let (items, interest) = ctx.inter.positive().row(user);
        // Not the item itself, which a model may offer again (a viewed item under
        // `exclude = "purchased"`) and which is most like itself.
        let (reasons, kept) = strongest(
            items
                .iter()
                .zip(interest)
                .enumerate()
                .filter(|(_, (i, _))| **i != rec.item)
                .map(|(h, (&i, &r))| (r * similarity(h, i), i)),
        );
        if kept == 0 {
            return "like what you showed interest in".into();
        }
        // Grouped by verb, in the order of the strongest reason.
        let mut groups: Vec<(Cow<'_, str>, Vec<&str>)> = Vec::with_capacity(kept);
        for &(_, item) in &reasons[..kept] {
            let kind = ctx
                .inter
                .entry(user, item)
                .and_then(|e| ctx.inter.strongest.get(e))
                .and_then(|&k| log.kinds.get(usize::from(k)))
                .map_or(Cow::Borrowed("touched"), |k| verb(k));
            let name = log.items.get(item as usize).map_or("", String::as_str);
            match groups.iter_mut().find(|(v, _)| *v == kind) {
                Some((_, names)) => names.push(name),
                None => groups.push((kind, vec![name])),
            }
        }
        let mut text = String::new();
        for (g, (verb, names)) in groups.iter().enumerate() {
            if g > 0 {
                text.push_str("; ");
            }
            text.push_str(verb);
            text.push(' ');
            for (n, name) in names.iter().enumerate() {
                if n > 0 {
                    text.push_str(", ");
                }
                text.push_str(name);
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strongest_reasons_are_those_of_a_full_sort() {
        let pairs = [
            (0.5, 7),
            (2.0, 3),
            (0.0, 1),
            (2.0, 1),
            (f32::NAN, 0),
            (-1.0, 4),
            (0.5, 2),
            (3.0, 9),
            (2.0, 0),
        ];
        for n in 0..=pairs.len() {
            for start in 0..pairs.len() {
                let given: Vec<(f32, u32)> =
                    pairs.iter().cycle().skip(start).take(n).copied().collect();
                let mut sorted: Vec<(f32, u32)> =
                    given.iter().copied().filter(|(c, _)| *c > 0.0).collect();
                sorted.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                sorted.truncate(REASON_ITEMS);
                let (best, kept) = strongest(given.into_iter());
                assert_eq!(best[..kept], sorted[..], "{n} pairs from {start}");
            }
        }
    }
}
