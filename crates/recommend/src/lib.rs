//! Recommendations: what to offer each user and each persona, with every
//! recommender scored on the same time split before one is chosen.
//!
//! [`RecommendParams`] (a pipeline file's `with` table) is checked into
//! [`CheckedRecommendParams`] before any data is read; [`recommend`] reads the
//! events (only the columns it needs, part by part), turns them into weighted
//! user-item interactions, scores popularity (overall and per persona), item-item
//! similarity (BM25 by default; cosine, Jaccard or lift) and implicit-feedback ALS on
//! the horizon before the as-of date, refits the chosen one at the as-of date and
//! returns the output tables. Every result is a pure function of the events, the
//! personas, the parameters and the seed, on any number of threads.
//!
//! ```
//! use polars::prelude::*;
//! use userlens_recommend::{recommend, RecommendParams};
//! let day = 86_400_000_000i64;
//! let events = df!(
//!     "user_id" => ["a", "a", "b", "b", "c"],
//!     "event_time" => [day, 2 * day, day, 40 * day, day],
//!     "event_type" => ["purchase", "purchase", "purchase", "purchase", "view"],
//!     "item_id" => ["x", "y", "x", "y", "x"],
//!     "category" => [None::<&str>, None, None, None, None],
//!     "rating" => [None::<f64>, None, None, None, None],
//!     "amount" => [Some(5.0), Some(3.0), Some(5.0), Some(3.0), None],
//! )
//! .unwrap();
//! let params = RecommendParams { models: vec!["popular".into()], ..RecommendParams::default() };
//! let out = recommend(vec![events.lazy()], None, 50 * day, &params.check().unwrap(), 42).unwrap();
//! // `a` bought both items: nothing left to recommend; `c` only viewed `x`.
//! assert_eq!(out.user_recommendations.column("user_id").unwrap().str().unwrap().get(0), Some("c"));
//! ```

mod als;
mod error;
mod evaluate;
mod events;
mod kernels;
mod knn;
mod matrix;
pub mod metrics;
mod model;
mod params;
mod popular;
mod tables;
#[cfg(test)]
mod tests;
mod topk;

use polars::prelude::*;
use userlens_model::columns::{self, PERSONA_ID, USER_ID};
use userlens_model::time::days;

pub use error::{Error, Result};
pub use events::ItemSource;
pub use params::{
    AlsParams, CheckedRecommendParams, CheckedWeight, Exclude, ModelKind, RecommendParams,
    Similarity, Weight,
};
pub use tables::{Lists, REPORT_COLUMNS, ReportRow};

use crate::evaluate::{check_no_leak, score, split, split_and_refit, test_events_text, test_kinds};
use crate::events::{End, Log, Stored, Window};
use crate::matrix::Interactions;
use crate::model::{Ctx, Fitted, Personas};
use crate::popular::Ranking;

/// Output file names, the stage's among them.
pub use userlens_model::files;

/// What [`recommend`] makes.
#[derive(Debug, Clone)]
pub struct Recommendations {
    /// `user_id, rank, item_id, score, model, because`.
    pub user_recommendations: DataFrame,
    /// `persona_id, rank, item_id, category, share, lift`.
    pub persona_recommendations: DataFrame,
    /// `item_id, rank, similar_item_id, score`.
    pub similar_items: DataFrame,
    /// `model`, then [`REPORT_COLUMNS`].
    pub report: DataFrame,
    /// The report's rows.
    pub rows: Vec<ReportRow>,
    /// The recommender that made `user_recommendations` (none without items).
    pub chosen: Option<ModelKind>,
    /// What stood for an item.
    pub source: ItemSource,
    /// Users with an event before the as-of date, item or not.
    pub users: u64,
    /// Things the reader should know (fallbacks taken).
    pub notes: Vec<String>,
}

/// Persona ids (ascending), each log user's index into them, and each persona's
/// users in the assignments (those without an item in the log too).
type Assigned = (Vec<u32>, Vec<Option<u32>>, Vec<u64>);

/// Each log user's persona, from a profile stage's `assignments` table.
fn personas_of(assignments: &DataFrame, log: &Log) -> Result<Assigned> {
    let users = assignments.column(USER_ID)?.str()?.clone();
    let ids = assignments
        .column(PERSONA_ID)?
        .cast(&DataType::UInt32)?
        .u32()?
        .clone();
    let mut distinct: Vec<u32> = ids.iter().flatten().collect();
    distinct.sort_unstable();
    distinct.dedup();
    let mut sizes = vec![0u64; distinct.len()];
    for id in ids.iter().flatten() {
        if let Ok(p) = distinct.binary_search(&id) {
            sizes[p] += 1;
        }
    }
    let mut of_user = vec![None; log.users.len()];
    for (user, id) in users.iter().zip(ids.iter()) {
        if let (Some(user), Some(id)) = (user, id)
            && let Ok(u) = log.users.binary_search_by(|x| x.as_str().cmp(user))
        {
            of_user[u] = distinct.binary_search(&id).ok().map(|p| p as u32);
        }
    }
    Ok((distinct, of_user, sizes))
}

/// Why `kind` cannot be scored on `split`, if it cannot.
fn ineligible(
    kind: ModelKind,
    split: &evaluate::Split,
    has_personas: bool,
    params: &CheckedRecommendParams,
) -> Option<String> {
    let catalogue = split.train.item_users.iter().filter(|&&n| n > 0).count();
    if kind == ModelKind::PersonaPopular && !has_personas {
        return Some("no personas: the stage does not need a profile stage".into());
    }
    if split.train.active_users == 0 && !split.train.all.indices.is_empty() {
        return Some(
            "no interaction before the cutoff has a positive weight (see `weights`)".into(),
        );
    }
    if split.train.active_users == 0 {
        return Some("no interactions before the cutoff".into());
    }
    if split.test.is_empty() {
        return Some(format!(
            "no user had a {} of an item new to them in the {}-day horizon",
            params.test_events.join(" or "),
            params.horizon_days
        ));
    }
    // Each scored user's list ranks the catalogue's items they had not touched: where
    // no user with a history has more than k of them, every list holds them all (and
    // a user without one gets popular items from every recommender alike).
    let untouched = |user: u32| {
        let (seen, _) = split.train.all.row(user as usize);
        let known = seen
            .iter()
            .filter(|&&i| split.train.item_users[i as usize] > 0);
        (!seen.is_empty()).then(|| catalogue - known.count())
    };
    let scored: Vec<usize> = (split.test.iter())
        .filter_map(|(user, _)| untouched(*user))
        .collect();
    if scored.is_empty() {
        return Some(format!(
            "no user with test items ({}) had an interaction before the cutoff: every \
             recommender would list the same popular items",
            split.test.len()
        ));
    }
    if scored.iter().all(|&n| n <= params.k) {
        return Some(format!(
            "no user scored with a history has more than k = {} of the {catalogue} items \
             before the cutoff left untouched: every list holds them all, so recall and hit \
             rate say nothing (lower `k`)",
            params.k
        ));
    }
    None
}

/// The event columns [`recommend`] reads.
pub const EVENT_COLUMNS: &[&str] = &[
    USER_ID,
    columns::EVENT_TIME,
    columns::EVENT_TYPE,
    columns::ITEM_ID,
    columns::CATEGORY,
    columns::RATING,
    columns::AMOUNT,
];

/// The columns [`recommend`] reads of a profile stage's `assignments`.
pub const ASSIGNMENT_COLUMNS: &[&str] = &[USER_ID, PERSONA_ID];

/// Recommends from the canonical events in `parts` before `as_of` (microseconds),
/// with each user's persona from `assignments` (`user_id, persona_id`) when given.
pub fn recommend(
    parts: Vec<LazyFrame>,
    assignments: Option<&DataFrame>,
    as_of: i64,
    params: &CheckedRecommendParams,
    seed: u64,
) -> Result<Recommendations> {
    let (mut out, lists) = recommend_in_blocks(parts, assignments, as_of, params, seed)?;
    out.user_recommendations = lists.collect()?;
    Ok(out)
}

/// [`recommend`], with every user's lists left to be made a block of users at a
/// time by the [`Lists`] returned (`user_recommendations` has no rows): for a
/// caller that writes them as they come rather than holding them whole.
pub fn recommend_in_blocks(
    parts: Vec<LazyFrame>,
    assignments: Option<&DataFrame>,
    as_of: i64,
    params: &CheckedRecommendParams,
    seed: u64,
) -> Result<(Recommendations, Lists)> {
    let started = std::time::Instant::now();
    let cutoff = as_of.saturating_sub(days(params.horizon_days));
    let window = Window {
        params,
        cutoff,
        as_of,
    };
    let mut log = events::read(&parts, &window)?;
    let out_of_core = parts.len() > 1;
    // The events are freed here if the caller held them only through `parts`.
    drop(parts);
    tracing::info!(
        "recommend: events read in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let mut notes = Vec::new();
    match log.source {
        ItemSource::ItemId => {}
        ItemSource::Category => {
            notes.push("the events have no item ids: categories stand in for items".to_string())
        }
        ItemSource::Nothing => {
            notes.push(
                "the events have neither item ids nor categories: nothing to recommend".to_string(),
            );
            return empty(log, notes, params.k);
        }
    }
    let personas = assignments.map(|a| personas_of(a, &log)).transpose()?;
    let (kinds, note) = test_kinds(&log, params);
    notes.extend(note);
    let test_events = test_events_text(kinds, params);
    // The refit's interactions are built with the split, so that the pairs, the
    // largest thing read, are not held beside the recommenders being scored; read
    // out of core, they wait on disk while both are built. Everything after this
    // reads the interactions and the log's names only.
    let pairs = std::mem::take(&mut log.pairs);
    let pairs = if out_of_core {
        Stored::spill(pairs)?
    } else {
        Stored::memory(pairs)
    };
    let (split, inter) = split_and_refit(&log, &pairs, kinds)?;
    drop(pairs);
    tracing::debug!(
        "recommend: split and refit interactions built at {:.2} s",
        started.elapsed().as_secs_f64()
    );
    check_no_leak(&split)?;
    let popular = Ranking::among(&split.train, |_| true);
    // Personas are fitted at the as-of date, on behaviour in the horizon too: scored
    // there, the models top up from popular items, and the persona baseline knows
    // the personas only of users with a history before the cutoff.
    let by_persona = personas
        .as_ref()
        .map(|(ids, of, _)| {
            let known = (of.iter().enumerate())
                .map(|(u, p)| p.filter(|_| !split.train.positive().row(u).0.is_empty()))
                .collect();
            Personas::rank(ids.clone(), known, &split.train)
        })
        .unwrap_or_default();
    let no_personas = Personas::default();
    let ctx = |kind: ModelKind| Ctx {
        inter: &split.train,
        popular: &popular,
        personas: match kind {
            ModelKind::PersonaPopular => &by_persona,
            _ => &no_personas,
        },
    };
    let mut rows = Vec::new();
    for &kind in &params.models {
        let outcome = match ineligible(kind, &split, personas.is_some(), params) {
            Some(reason) => Err(reason),
            None => {
                let t = std::time::Instant::now();
                let fitted = model::fit(kind, &split.train, params, seed);
                let fit_s = t.elapsed().as_secs_f64();
                let summary = score(&fitted, &ctx(kind), &split, params.k);
                tracing::info!(
                    "recommend: {} fitted in {fit_s:.2} s, scored in {:.2} s",
                    kind.name(),
                    t.elapsed().as_secs_f64() - fit_s
                );
                Ok(summary)
            }
        };
        rows.push(ReportRow {
            model: kind,
            outcome,
            chosen: false,
        });
    }
    let chosen = match params.model {
        Some(kind) => kind,
        None => {
            let best = |rows: &mut dyn Iterator<Item = &ReportRow>| {
                rows.filter_map(|r| r.outcome.as_ref().ok().map(|s| (r.model, s.ndcg)))
                    .fold(None, |best: Option<(ModelKind, f64)>, (m, n)| match best {
                        Some((_, b)) if b >= n => best,
                        _ => Some((m, n)),
                    })
            };
            // Not the persona baseline while another is scored: its score looks ahead.
            let baseline = |r: &&ReportRow| r.model == ModelKind::PersonaPopular;
            let others = best(&mut rows.iter().filter(|r| !baseline(r)));
            match (others, best(&mut rows.iter().filter(baseline))) {
                (Some((kind, _)), _) => kind,
                (None, Some((kind, _))) => {
                    notes.push(
                        "only persona_popular could be scored on the horizon: `auto` takes it, \
                         though its score looks ahead (the personas are the as-of date's)"
                            .to_string(),
                    );
                    kind
                }
                (None, None) => {
                    notes.push(
                        "no recommender could be scored on the horizon: `auto` falls back to popular"
                            .to_string(),
                    );
                    ModelKind::Popular
                }
            }
        }
    };
    // The fallback of `auto` when none of `models` could be scored has its row too,
    // so that the report says which made the lists.
    if !rows.iter().any(|r| r.model == chosen) {
        rows.push(ReportRow {
            model: chosen,
            outcome: Err(
                "not among `models`: `auto` took it as none of them could be scored".into(),
            ),
            chosen: false,
        });
    }
    for row in &mut rows {
        row.chosen = row.model == chosen;
    }
    drop(split);

    let t = std::time::Instant::now();
    if !inter.has_purchases && params.exclude == Exclude::Purchased {
        notes.push(
            "the events hold no purchases: `exclude = \"purchased\"` excludes every item a user touched"
                .to_string(),
        );
    }
    if inter.active_users == 0 && !inter.all.indices.is_empty() {
        notes.push(
            "no interaction before the as-of date has a positive weight (see `weights`): no \
             user or persona is recommended anything"
                .to_string(),
        );
    }
    let popular = Ranking::among(&inter, |_| true);
    let (by_persona, sizes) = personas
        .map(|(ids, of, sizes)| (Personas::rank(ids, of, &inter), sizes))
        .unwrap_or_default();
    let fitted = model::fit(chosen, &inter, params, seed);
    let similar_items = match &fitted {
        Fitted::Knn(knn) => tables::similar_items(knn, &log, params.similar_items)?,
        _ => {
            let knn = knn::fit(&inter, params.similarity, params.neighbours);
            tables::similar_items(&knn, &log, params.similar_items)?
        }
    };
    let persona_recommendations =
        tables::persona_recommendations(&by_persona, &sizes, &popular, &log, params.k)?;
    tracing::debug!("recommend: refitted in {:.2} s", t.elapsed().as_secs_f64());
    let lists = Lists {
        fitted,
        model: chosen,
        inter,
        popular,
        personas: by_persona,
        log,
        exclude: params.exclude,
        k: params.k,
    };
    let out = Recommendations {
        user_recommendations: DataFrame::empty_with_schema(&lists.schema()?),
        persona_recommendations,
        similar_items,
        report: tables::report(
            &rows,
            params.k,
            Some(&test_events),
            Some((cutoff, params.horizon_days)),
        )?,
        rows,
        chosen: Some(chosen),
        source: lists.log.source,
        users: lists.log.users.len() as u64,
        notes,
    };
    Ok((out, lists))
}

/// The tables with no rows, for a log without items.
fn empty(log: Log, notes: Vec<String>, k: usize) -> Result<(Recommendations, Lists)> {
    let inter = Interactions::build(&log, End::AsOf);
    let popular = Ranking::among(&inter, |_| true);
    let personas = Personas::default();
    let knn = knn::Knn {
        neighbours: matrix::Csr {
            indptr: vec![0],
            ..matrix::Csr::default()
        },
    };
    let persona_recommendations =
        tables::persona_recommendations(&personas, &[], &popular, &log, k)?;
    let similar_items = tables::similar_items(&knn, &log, 0)?;
    let lists = Lists {
        fitted: Fitted::Popular,
        model: ModelKind::Popular,
        inter,
        popular,
        personas,
        log,
        exclude: Exclude::None,
        k: 0,
    };
    let out = Recommendations {
        user_recommendations: DataFrame::empty_with_schema(&lists.schema()?),
        persona_recommendations,
        similar_items,
        report: tables::report(&[], k, None, None)?,
        rows: Vec::new(),
        chosen: None,
        source: lists.log.source,
        users: lists.log.users.len() as u64,
        notes,
    };
    Ok((out, lists))
}

/// Scores lists made elsewhere (`user_id, rank, item_id`, such as a Python peer's,
/// made at the cutoff) by the same protocol as [`recommend`]'s recommenders: the
/// same split of the events in `parts` before `as_of`, the same test users and
/// items. A user's training items are dropped from their list first (they can
/// never be hits); an item unknown to the events is a miss.
pub fn score_lists(
    parts: &[LazyFrame],
    as_of: i64,
    params: &CheckedRecommendParams,
    lists: &DataFrame,
) -> Result<metrics::Summary> {
    let window = Window {
        params,
        cutoff: as_of.saturating_sub(days(params.horizon_days)),
        as_of,
    };
    let log = events::read(parts, &window)?;
    let (kinds, _) = test_kinds(&log, params);
    let split = split(&log, kinds);
    check_no_leak(&split)?;
    let sorted = lists
        .clone()
        .lazy()
        .with_column(col("rank").cast(DataType::Int64))
        .sort(["user_id", "rank"], SortMultipleOptions::default())
        .collect()?;
    let users = sorted.column(USER_ID)?.str()?.clone();
    let items = sorted.column("item_id")?.cast(&DataType::String)?;
    let items = items.str()?.clone();
    let mut by_user: Vec<Vec<u32>> = vec![Vec::new(); log.users.len()];
    for (user, item) in users.iter().zip(items.iter()) {
        let (Some(user), Some(item)) = (user, item) else {
            continue;
        };
        let Ok(u) = log.users.binary_search_by(|x| x.as_str().cmp(user)) else {
            continue;
        };
        // An unknown item holds its slot as a certain miss.
        let index = log
            .items
            .binary_search_by(|x| x.as_str().cmp(item))
            .map_or(u32::MAX, |i| i as u32);
        if split.train.entry(u, index).is_none() {
            by_user[u].push(index);
        }
    }
    let mut scores = Vec::with_capacity(split.test.len());
    let mut recommended = Vec::with_capacity(split.test.len());
    for (user, relevant) in &split.test {
        let mut list = std::mem::take(&mut by_user[*user as usize]);
        list.truncate(params.k);
        scores.push(metrics::score_user(&list, relevant, params.k));
        list.retain(|&i| i != u32::MAX);
        recommended.push(list);
    }
    Ok(metrics::summarise(
        &scores,
        &recommended,
        &split.train.item_users,
        split.train.active_users,
    ))
}
