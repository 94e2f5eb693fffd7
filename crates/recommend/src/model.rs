//! A fitted recommender, and one user's list with its fallbacks and reasons.

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
        let has_history = !ctx.inter.train.row(user).0.is_empty();
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
fn verb(kind: &str) -> String {
    match kind {
        event_types::PURCHASE => "bought".into(),
        event_types::ADD_TO_CART => "carted".into(),
        event_types::VIEW => "viewed".into(),
        event_types::RATING => "rated".into(),
        other => other.replace('_', " "),
    }
}

/// Most items named in a reason.
const REASON_ITEMS: usize = 2;

impl Fitted {
    /// Why `rec` is on `user`'s list, in words.
    pub fn because(&self, ctx: &Ctx<'_>, log: &Log, user: usize, rec: &Rec) -> String {
        match rec.why {
            Why::Popular => return "popular overall".into(),
            Why::Persona(p) => {
                let id = ctx.personas.ids.get(p as usize).copied().unwrap_or(0);
                return format!("popular in persona {id}");
            }
            Why::Model => {}
        }
        let (items, interest) = ctx.inter.train.row(user);
        let mut reasons: Vec<(f32, u32)> = items
            .iter()
            .zip(interest)
            .map(|(&i, &r)| {
                let s = match self {
                    Fitted::Knn(m) => m.similarity(i, rec.item),
                    Fitted::Als(m) => m.similarity(i, rec.item),
                    _ => 0.0,
                };
                (r * s, i)
            })
            .filter(|(c, _)| *c > 0.0)
            .collect();
        reasons.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        reasons.truncate(REASON_ITEMS);
        if reasons.is_empty() {
            return "like what you showed interest in".into();
        }
        // Grouped by verb, in the order of the strongest reason.
        let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
        for (_, item) in reasons {
            let kind = ctx
                .inter
                .entry(user, item)
                .and_then(|e| ctx.inter.strongest.get(e))
                .and_then(|&k| log.kinds.get(usize::from(k)))
                .map_or_else(|| "touched".to_string(), |k| verb(k));
            let name = log.items.get(item as usize).map_or("", String::as_str);
            match groups.iter_mut().find(|(v, _)| *v == kind) {
                Some((_, names)) => names.push(name),
                None => groups.push((kind, vec![name])),
            }
        }
        groups
            .iter()
            .map(|(v, names)| format!("{v} {}", names.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    }
}
