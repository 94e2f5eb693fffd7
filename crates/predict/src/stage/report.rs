//! The model report, calibration and lift tables of the scored predictors.

use polars::prelude::*;

use super::{Outcome, Result, Scored, polars_err};

pub(super) fn report_tables(scored: &[Scored]) -> Result<(DataFrame, DataFrame, DataFrame)> {
    let n = scored.len();
    let mut predictor = Vec::with_capacity(n);
    let mut target = Vec::with_capacity(n);
    let mut status = Vec::with_capacity(n);
    let mut reason = Vec::with_capacity(n);
    let (mut auc, mut log_loss, mut brier, mut lift, mut pos, mut neg) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let (mut fitted, mut scored_on, mut population) = (Vec::new(), Vec::new(), Vec::new());
    let (mut correlation, mut mae, mut share) = (Vec::new(), Vec::new(), Vec::new());
    for s in scored {
        predictor.push(s.predictor.clone());
        target.push(s.target);
        let (row_status, why, score, revenue) = match &s.outcome {
            Outcome::Scored(score) => ("scored", None, Some(score), None),
            Outcome::Degenerate { score, reason } => {
                ("degenerate", Some(reason.clone()), Some(score), None)
            }
            Outcome::Revenue(revenue) => ("scored", None, None, Some(revenue)),
            Outcome::Skipped { reason } => ("skipped", Some(reason.clone()), None, None),
        };
        status.push(row_status);
        let probability = s.ranking_only.is_none();
        reason.push(why.or(s.ranking_only.map(str::to_string)));
        auc.push(score.map(|s| s.auc));
        log_loss.push(score.filter(|_| probability).map(|s| s.log_loss));
        brier.push(score.filter(|_| probability).map(|s| s.brier));
        lift.push(score.map(|s| s.lift_top_decile));
        pos.push(score.map(|s| s.positives as u64));
        neg.push(score.map(|s| s.negatives as u64));
        fitted.push(s.fitted_users.map(|v| v as u64));
        scored_on.push(s.scored_users.map(|v| v as u64));
        population.push(population_of(s));
        // A revenue row's scores, or a count's against the horizon's count.
        let counts = s.counts.as_ref();
        correlation.push(revenue.map_or(counts.and_then(|c| c.0), |r| r.correlation));
        mae.push(revenue.map(|r| r.mae).or(counts.map(|c| c.1)));
        share.push(revenue.and_then(|r| r.top_decile_share));
    }
    let report = DataFrame::new(
        n,
        vec![
            Column::new("predictor".into(), predictor),
            Column::new("target".into(), target),
            Column::new("status".into(), status),
            Column::new("reason".into(), reason),
            Column::new("auc".into(), auc),
            Column::new("log_loss".into(), log_loss),
            Column::new("brier".into(), brier),
            Column::new("lift_top_decile".into(), lift),
            Column::new("positives".into(), pos),
            Column::new("negatives".into(), neg),
            Column::new("fitted_users".into(), fitted),
            Column::new("scored_users".into(), scored_on),
            // The ML model refitted at the as-of date is chosen on the training
            // users (`ml::Split::choose`); no choice reads the holdout.
            Column::new("choice_used_holdout".into(), vec![false; n]),
            Column::new("correlation".into(), correlation),
            Column::new("mae".into(), mae),
            Column::new("top_decile_revenue_share".into(), share),
            // Who was scored: every held-out user, or the held-out customers (users
            // who bought before the cutoff), where the count models are scored.
            Column::new("population".into(), population),
        ],
    )
    .map_err(polars_err("build the model report"))?;

    let (mut cp, mut ct, mut cb, mut cm, mut co, mut cc) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let (mut lp, mut lt, mut ld, mut ll) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut c_population, mut l_population) = (Vec::new(), Vec::new());
    for s in scored {
        let bins = if s.ranking_only.is_none() {
            &s.calibration[..]
        } else {
            &[]
        };
        for (i, bin) in bins.iter().enumerate() {
            cp.push(s.predictor.clone());
            ct.push(s.target);
            cb.push(i as u32 + 1);
            cm.push(bin.mean_predicted);
            co.push(bin.observed_rate);
            cc.push(bin.count as u64);
            c_population.push(population_of(s));
        }
        for decile in &s.deciles {
            l_population.push(population_of(s));
            lp.push(s.predictor.clone());
            lt.push(s.target);
            ld.push(decile.decile);
            ll.push(decile.lift);
        }
    }
    let calibration = DataFrame::new(
        cp.len(),
        vec![
            Column::new("predictor".into(), cp),
            Column::new("target".into(), ct),
            Column::new("bin".into(), cb),
            Column::new("mean_predicted".into(), cm),
            Column::new("observed_rate".into(), co),
            Column::new("count".into(), cc),
            Column::new("population".into(), c_population),
        ],
    )
    .map_err(polars_err("build the calibration table"))?;
    let lift = DataFrame::new(
        lp.len(),
        vec![
            Column::new("predictor".into(), lp),
            Column::new("target".into(), lt),
            Column::new("decile".into(), ld),
            Column::new("lift".into(), ll),
            Column::new("population".into(), l_population),
        ],
    )
    .map_err(polars_err("build the lift table"))?;
    Ok((report, calibration, lift))
}

/// Who a row was scored on: every held-out user (`all`), or the held-out customers
/// (`customers`), those who bought before the cutoff.
fn population_of(s: &Scored) -> &'static str {
    if s.customers_only { "customers" } else { "all" }
}
