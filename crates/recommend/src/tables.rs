//! The stage's output tables as polars DataFrames.

use polars::prelude::*;
use userlens_model::columns::{CATEGORY, ITEM_ID, PERSONA_ID, USER_ID};

use crate::error::{Error, Result};
use crate::events::Log;
use crate::knn::Knn;
use crate::matrix::Interactions;
use crate::metrics::Summary;
use crate::model::{Ctx, Fitted, Personas, Rec};
use crate::params::Exclude;
use crate::params::ModelKind;
use crate::popular::Ranking;

/// Columns of `recommend_report.csv`, after `model`.
pub const REPORT_COLUMNS: [&str; 13] = [
    "status",
    "reason",
    "k",
    "precision",
    "recall",
    "ndcg",
    "map",
    "hit_rate",
    "coverage",
    "novelty",
    "users_evaluated",
    "chosen",
    "test_events",
];

/// One recommender's row of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    /// The recommender.
    pub model: ModelKind,
    /// Its scores, or why it was skipped.
    pub outcome: std::result::Result<Summary, String>,
    /// Whether it made the recommendations.
    pub chosen: bool,
}

/// `recommend_report.csv`: a row per recommender, with what it was scored on, the
/// `test_events` and the split's cutoff and horizon (none for a log without items).
pub(crate) fn report(
    rows: &[ReportRow],
    k: usize,
    test_events: Option<&str>,
    split: Option<(i64, u32)>,
) -> Result<DataFrame> {
    let metric = |f: fn(&Summary) -> f64| -> Vec<Option<f64>> {
        rows.iter()
            .map(|r| r.outcome.as_ref().ok().map(f))
            .collect()
    };
    let df = df!(
        "model" => rows.iter().map(|r| r.model.name()).collect::<Vec<_>>(),
        "status" => rows.iter().map(|r| if r.outcome.is_ok() { "scored" } else { "skipped" }).collect::<Vec<_>>(),
        "reason" => rows.iter().map(|r| r.outcome.as_ref().err().cloned()).collect::<Vec<_>>(),
        "k" => vec![k as u32; rows.len()],
        "precision" => metric(|s| s.precision),
        "recall" => metric(|s| s.recall),
        "ndcg" => metric(|s| s.ndcg),
        "map" => metric(|s| s.map),
        "hit_rate" => metric(|s| s.hit_rate),
        "coverage" => metric(|s| s.coverage),
        "novelty" => metric(|s| s.novelty),
        "users_evaluated" => rows.iter().map(|r| r.outcome.as_ref().ok().map(|s| s.users as u32)).collect::<Vec<_>>(),
        "chosen" => rows.iter().map(|r| r.chosen).collect::<Vec<_>>(),
        "test_events" => vec![test_events; rows.len()],
        "cutoff" => vec![split.map(|(cutoff, _)| userlens_model::time::date_string(cutoff)); rows.len()],
        "horizon_days" => vec![split.map(|(_, days)| days); rows.len()],
    )?;
    Ok(df)
}

/// `user_recommendations.csv`, made a block of users at a time: what the refit
/// model needs to list every user's items, ranks from 1.
pub struct Lists {
    pub(crate) fitted: Fitted,
    pub(crate) model: ModelKind,
    pub(crate) inter: Interactions,
    pub(crate) popular: Ranking,
    pub(crate) personas: Personas,
    pub(crate) log: Log,
    pub(crate) exclude: Exclude,
    /// Items per user (0 for a log without items: no lists).
    pub(crate) k: usize,
}

impl Lists {
    /// The columns of every block: `user_id, rank, item_id, score, model, because`.
    pub fn schema(&self) -> Result<Schema> {
        let block = self.with_model(self.block(0..0)?)?;
        Ok(block.schema().as_ref().clone())
    }

    /// Hands `f` the lists a block of users at a time, in user order (one block
    /// with no rows when there are no users), each made on every core.
    pub fn each_block<E: From<Error> + Send>(
        &self,
        mut f: impl FnMut(DataFrame) -> std::result::Result<(), E> + Send,
    ) -> std::result::Result<(), E> {
        self.blocks(|block| f(self.with_model(block)?))
    }

    /// Every user's lists in one table.
    pub fn collect(&self) -> Result<DataFrame> {
        let mut df: Option<DataFrame> = None;
        self.blocks(|block| {
            match &mut df {
                Some(df) => df.vstack_mut(&block).map(|_| ())?,
                None => df = Some(block),
            }
            Ok::<(), Error>(())
        })?;
        // `blocks` hands over at least one block.
        self.with_model(df.unwrap_or_default())
    }

    fn blocks<E: From<Error> + Send>(
        &self,
        mut f: impl FnMut(DataFrame) -> std::result::Result<(), E> + Send,
    ) -> std::result::Result<(), E> {
        use rayon::prelude::*;
        let users = self.log.users.len();
        if users == 0 {
            return f(self.block(0..0)?);
        }
        let blocks: Vec<usize> = (0..users.div_ceil(USERS_PER_BLOCK)).collect();
        // As many blocks at once as there are threads: each block's strings are
        // built on one. Each group is handed over while the next is made.
        let mut made: Vec<DataFrame> = Vec::new();
        for group in blocks.chunks(rayon::current_num_threads().max(1)) {
            let (handed, next) = rayon::join(
                || made.drain(..).try_for_each(&mut f),
                || {
                    group
                        .par_iter()
                        .map(|&b| {
                            self.block(b * USERS_PER_BLOCK..((b + 1) * USERS_PER_BLOCK).min(users))
                        })
                        .collect::<Result<Vec<_>>>()
                },
            );
            handed?;
            made = next?;
        }
        made.into_iter().try_for_each(f)
    }

    /// The lists of `users` as Arrow columns, all but `model`.
    fn block(&self, users: std::ops::Range<usize>) -> Result<DataFrame> {
        use rayon::prelude::*;
        let ctx = Ctx {
            inter: &self.inter,
            popular: &self.popular,
            personas: &self.personas,
        };
        let log = &self.log;
        let first = users.start;
        let lists: Vec<(Vec<Rec>, Vec<String>)> = users
            .into_par_iter()
            .map(|u| {
                let skip = self.inter.excluded(u, self.exclude);
                let recs = self.fitted.recommend(&ctx, u, &skip, self.k);
                let reasons = self.fitted.reasons(&ctx, log, u, &recs);
                (recs, reasons)
            })
            .collect();
        let rows: usize = lists.iter().map(|(recs, _)| recs.len()).sum();
        let mut users = StringChunkedBuilder::new(USER_ID.into(), rows);
        let mut items = StringChunkedBuilder::new(ITEM_ID.into(), rows);
        let mut because = StringChunkedBuilder::new("because".into(), rows);
        let (mut ranks, mut scores) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
        for (user, (recs, reasons)) in (first..).zip(&lists) {
            for (rank, (r, reason)) in recs.iter().zip(reasons).enumerate() {
                users.append_value(log.users[user].as_str());
                ranks.push(rank as u32 + 1);
                items.append_value(log.items[r.item as usize].as_str());
                scores.push(f64::from(r.score));
                because.append_value(reason);
            }
        }
        let columns = vec![
            users.finish().into_column(),
            Column::new("rank".into(), ranks),
            items.finish().into_column(),
            Column::new("score".into(), scores),
            because.finish().into_column(),
        ];
        Ok(DataFrame::new(rows, columns)?)
    }

    /// `df` with the `model` column: one value for every row, held once rather than
    /// once per row.
    fn with_model(&self, mut df: DataFrame) -> Result<DataFrame> {
        let model = Scalar::new(
            DataType::String,
            AnyValue::StringOwned(self.model.name().into()),
        );
        df.insert_column(4, Column::new_scalar("model".into(), model, df.height()))?;
        Ok(df)
    }
}

/// Users per block of [`Lists`] (in tests, a few, so that small logs are cut into
/// blocks too).
#[cfg(not(test))]
const USERS_PER_BLOCK: usize = 1 << 14;
#[cfg(test)]
const USERS_PER_BLOCK: usize = 3;

/// `persona_recommendations.csv`: each persona's most popular items, with the share
/// of the persona's users (`sizes`, as assigned) who showed interest and its lift
/// over everyone's share (of all assigned users): users without an item count too.
pub(crate) fn persona_recommendations(
    personas: &Personas,
    sizes: &[u64],
    popular: &Ranking,
    log: &Log,
    k: usize,
) -> Result<DataFrame> {
    let all: u64 = sizes.iter().sum();
    let of = |count: u32, users: u64| match users {
        0 => 0.0,
        users => f64::from(count) / users as f64,
    };
    let (mut ids, mut ranks, mut items, mut categories, mut shares, mut lifts) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for (p, ranking) in personas.rankings.iter().enumerate() {
        let size = sizes.get(p).copied().unwrap_or(0);
        for (rank, item) in ranking.top(k, &[], &[]).into_iter().enumerate() {
            let share = of(ranking.counts[item as usize], size);
            let everyone = of(popular.counts[item as usize], all);
            ids.push(personas.ids[p]);
            ranks.push(rank as u32 + 1);
            items.push(log.items[item as usize].as_str());
            categories.push(log.categories[item as usize].as_deref());
            shares.push(share);
            lifts.push(if everyone > 0.0 {
                Some(share / everyone)
            } else {
                None
            });
        }
    }
    let df = df!(
        PERSONA_ID => ids,
        "rank" => ranks,
        ITEM_ID => items,
        CATEGORY => categories,
        "share" => shares,
        "lift" => lifts,
    )?;
    Ok(df)
}

/// `similar_items.csv`: each item's most similar items, most similar first.
pub(crate) fn similar_items(knn: &Knn, log: &Log, per_item: usize) -> Result<DataFrame> {
    let (mut items, mut ranks, mut similar, mut scores) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..knn.neighbours.rows() {
        let (js, sims) = knn.neighbours.row(i);
        let mut order: Vec<(u32, f32)> = js.iter().copied().zip(sims.iter().copied()).collect();
        order.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for (rank, (j, s)) in order.into_iter().take(per_item).enumerate() {
            items.push(log.items[i].as_str());
            ranks.push(rank as u32 + 1);
            similar.push(log.items[j as usize].as_str());
            scores.push(f64::from(s));
        }
    }
    let df = df!(
        ITEM_ID => items,
        "rank" => ranks,
        "similar_item_id" => similar,
        "score" => scores,
    )?;
    Ok(df)
}
