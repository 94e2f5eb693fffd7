//! The time split every recommender is scored on.
//!
//! Train on the events before the cutoff (the as-of date minus the horizon); the
//! test items of a user are the items of their test events (purchases by default)
//! in the horizon that they never touched before the cutoff. Each recommender
//! ranks every item of the catalogue except the user's training items (which can
//! never be test items), with the same fallbacks, and is scored at k.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::events::{End, Log, Pair, Stored, TestKinds};
use crate::matrix::{Builder, Interactions};
use crate::metrics::{Summary, score_user, summarise};
use crate::model::{Ctx, Fitted};
use crate::params::CheckedRecommendParams;

/// Training interactions and each evaluated user's test items.
#[derive(Debug, Clone)]
pub(crate) struct Split {
    pub cutoff: i64,
    pub train: Interactions,
    /// (user, test items ascending), users ascending; only users with test items.
    pub test: Vec<(u32, Vec<u32>)>,
}

/// Which events make test items; the second value says when the log has none of
/// the asked types and every weighted type stands in.
pub(crate) fn test_kinds(
    log: &Log,
    params: &CheckedRecommendParams,
) -> (TestKinds, Option<String>) {
    if log.kinds.iter().any(|k| params.test_events.contains(k)) {
        return (TestKinds::Asked, None);
    }
    let note = format!(
        "no {} event names an item: the recommenders are scored on every weighted event in the horizon",
        params.test_events.join(" or ")
    );
    (TestKinds::Weighted, Some(note))
}

/// What the recommenders are scored on, as `recommend_report.csv`'s `test_events`
/// says it: the asked types (`purchase`), or `any weighted event`.
pub(crate) fn test_events_text(kinds: TestKinds, params: &CheckedRecommendParams) -> String {
    match kinds {
        TestKinds::Asked => params.test_events.join(" or "),
        TestKinds::Weighted => "any weighted event".to_string(),
    }
}

/// Splits `log` at its cutoff; the test period ends at its as-of date.
pub(crate) fn split(log: &Log, test_kinds: TestKinds) -> Split {
    let train = Interactions::build(log, End::Cutoff);
    let mut test = TestItems::default();
    log.pairs
        .iter()
        .for_each(|pair| test.push(pair, test_kinds));
    Split {
        cutoff: log.cutoff,
        train,
        test: test.0,
    }
}

/// [`split`], and the interactions at the as-of date that the chosen recommender
/// is refitted on, made in one pass over `pairs` (the log's own, taken out of it).
pub(crate) fn split_and_refit(
    log: &Log,
    pairs: &Stored,
    test_kinds: TestKinds,
) -> Result<(Split, Interactions)> {
    let mut train = Builder::new(log, End::Cutoff, pairs.touched(End::Cutoff));
    let mut refit = Builder::new(log, End::AsOf, pairs.touched(End::AsOf));
    let mut test = TestItems::default();
    pairs.for_each_block(|block| {
        for pair in block {
            train.push(pair);
            refit.push(pair);
            test.push(pair, test_kinds);
        }
    })?;
    let split = Split {
        cutoff: log.cutoff,
        train: train.finish(),
        test: test.0,
    };
    Ok((split, refit.finish()))
}

/// Each user's test items: their tested items untouched before the cutoff.
#[derive(Default)]
struct TestItems(Vec<(u32, Vec<u32>)>);

impl TestItems {
    /// Adds `pair`'s item if it is a test item; pairs come by user, then item, so
    /// each user's test items ascend.
    fn push(&mut self, pair: &Pair, test_kinds: TestKinds) {
        if !pair.tested(test_kinds) || pair.at(End::Cutoff).touched {
            return;
        }
        match self.0.last_mut() {
            Some((u, items)) if *u == pair.user => items.push(pair.item),
            _ => self.0.push((pair.user, vec![pair.item])),
        }
    }
}

/// Refuses a split whose training data reaches the horizon or whose test items
/// include a user's training item: either would inflate every score.
pub(crate) fn check_no_leak(split: &Split) -> Result<()> {
    if let Some(latest) = split.train.latest
        && latest >= split.cutoff
    {
        return Err(Error::Leak(format!(
            "a training event on {} is not before the cutoff, {}",
            userlens_model::time::date_string(latest),
            userlens_model::time::date_string(split.cutoff)
        )));
    }
    for (user, items) in &split.test {
        for &item in items {
            if split.train.entry(*user as usize, item).is_some() {
                return Err(Error::Leak(format!(
                    "a test item of a user (user {user}, item {item} of the split) is among \
                     their training items"
                )));
            }
        }
    }
    Ok(())
}

/// Scores a fitted recommender on the split's test users.
pub(crate) fn score(fitted: &Fitted, ctx: &Ctx<'_>, split: &Split, k: usize) -> Summary {
    let per_user: Vec<(crate::metrics::UserScores, Vec<u32>)> = split
        .test
        .par_iter()
        .map(|(user, relevant)| {
            let user = *user as usize;
            let (seen, _) = split.train.all.row(user);
            let list: Vec<u32> = fitted
                .recommend(ctx, user, seen, k)
                .iter()
                .map(|r| r.item)
                .collect();
            (score_user(&list, relevant, k), list)
        })
        .collect();
    let (scores, lists): (Vec<_>, Vec<_>) = per_user.into_iter().unzip();
    summarise(
        &scores,
        &lists,
        &split.train.item_users,
        split.train.active_users,
    )
}
