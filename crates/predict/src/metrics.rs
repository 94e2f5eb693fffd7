//! Scores of predictions on a holdout: ranking (AUC, top-decile lift), probability
//! quality (log loss, Brier score, calibration bins) and revenue error (MAE, RMSE,
//! correlation, the top decile's share).
//!
//! Every function checks its input (same lengths, finite values, probabilities in
//! `[0, 1]`) and returns an [`Error`] instead of a meaningless number. Results do not
//! depend on the order of the input: ties between scores are resolved by averaging,
//! never by position.
//!
//! ```
//! use userlens_predict::metrics::{auc, evaluate, Eligibility, Evaluation};
//! let scores = [0.1, 0.4, 0.35, 0.8];
//! let labels = [false, false, true, true];
//! assert_eq!(auc(&scores, &labels).unwrap(), 0.75);
//! let gate = Eligibility::default();
//! let Evaluation::Skipped { reason } = evaluate(&scores, &labels, &gate).unwrap() else {
//!     panic!("two positives cannot be scored");
//! };
//! assert_eq!(reason, "only 2 positives in the holdout (at least 100 needed)");
//! ```

use std::cmp::Ordering;

pub use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Probabilities are clipped to `[EPS, 1 - EPS]` before taking logarithms.
const EPS: f64 = 1e-15;

/// Number of calibration bins and of lift deciles.
const BINS: usize = 10;

/// Checks lengths, emptiness and finiteness of `values` against `labels`.
fn check_input(metric: &'static str, values: &[f64], labels: usize) -> Result<()> {
    if values.len() != labels {
        return Err(Error::LengthMismatch {
            metric,
            predictions: values.len(),
            labels,
        });
    }
    if values.is_empty() {
        return Err(Error::Empty { metric });
    }
    if let Some((i, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Error::NotFinite {
            metric,
            position: i + 1,
            value,
        });
    }
    Ok(())
}

/// [`check_input`] plus every value in `[0, 1]`.
fn check_probabilities(metric: &'static str, values: &[f64], labels: usize) -> Result<()> {
    check_input(metric, values, labels)?;
    if let Some((i, &value)) = values
        .iter()
        .enumerate()
        .find(|(_, v)| !(0.0..=1.0).contains(*v))
    {
        return Err(Error::NotAProbability {
            metric,
            position: i + 1,
            value,
        });
    }
    Ok(())
}

fn count_positives(labels: &[bool]) -> usize {
    labels.iter().filter(|&&y| y).count()
}

/// Total order on finite scores in which `-0.0 == 0.0`.
fn by_score(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// Indices of `scores` in ascending order, grouped into runs of equal scores.
fn tie_groups(scores: &[f64], descending: bool) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        let o = by_score(scores[a], scores[b]);
        if descending { o.reverse() } else { o }
    });
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in order {
        match groups.last_mut() {
            Some(group) if by_score(scores[group[0]], scores[i]).is_eq() => group.push(i),
            _ => groups.push(vec![i]),
        }
    }
    groups
}

/// Area under the ROC curve: the probability that a random positive scores above a
/// random negative, with ties counted as one half (Mann-Whitney U over average ranks).
pub fn auc(scores: &[f64], labels: &[bool]) -> Result<f64> {
    const METRIC: &str = "auc";
    check_input(METRIC, scores, labels.len())?;
    let positives = count_positives(labels);
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(Error::MissingClass {
            metric: METRIC,
            positives,
            negatives,
        });
    }
    let mut rank_sum = 0.0;
    let mut start = 0usize;
    for group in tie_groups(scores, false) {
        let end = start + group.len();
        // Ranks start+1 ..= end share their average.
        let rank = (start + 1 + end) as f64 / 2.0;
        rank_sum += rank * group.iter().filter(|&&i| labels[i]).count() as f64;
        start = end;
    }
    let p = positives as f64;
    let u = rank_sum - p * (p + 1.0) / 2.0;
    Ok(u / (p * negatives as f64))
}

/// Mean negative log-likelihood of the labels, with probabilities clipped to
/// `[1e-15, 1 - 1e-15]` so a confident miss costs about 34.5 rather than infinity.
pub fn log_loss(probabilities: &[f64], labels: &[bool]) -> Result<f64> {
    check_probabilities("log_loss", probabilities, labels.len())?;
    let total: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let p = p.clamp(EPS, 1.0 - EPS);
            if y { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    Ok(total / labels.len() as f64)
}

/// Mean squared difference between the probability and the 0/1 label.
pub fn brier(probabilities: &[f64], labels: &[bool]) -> Result<f64> {
    check_probabilities("brier", probabilities, labels.len())?;
    let total: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let d = p - if y { 1.0 } else { 0.0 };
            d * d
        })
        .sum();
    Ok(total / labels.len() as f64)
}

/// Labels in descending score order, each replaced by the positive share of its run
/// of tied scores. Any cut through a tie then takes the expected positives of a
/// random tie-break, so results never depend on input order.
fn tie_averaged_labels(scores: &[f64], labels: &[bool]) -> Vec<f64> {
    let mut out = Vec::with_capacity(scores.len());
    for group in tie_groups(scores, true) {
        let share = group.iter().filter(|&&i| labels[i]).count() as f64 / group.len() as f64;
        out.extend(std::iter::repeat_n(share, group.len()));
    }
    out
}

/// Start of decile `d` (0..=10) among `n` rows sorted by descending score: the first
/// decile holds `ceil(n / 10)` rows.
fn decile_start(d: usize, n: usize) -> usize {
    (n * d).div_ceil(BINS)
}

/// Positive rate among the top 10% by score (`ceil(n / 10)` users, at least one)
/// divided by the overall positive rate. Users tied with the last one in the top
/// decile count with the positive share of their tie.
pub fn top_decile_lift(scores: &[f64], labels: &[bool]) -> Result<f64> {
    const METRIC: &str = "top_decile_lift";
    check_input(METRIC, scores, labels.len())?;
    let positives = count_positives(labels);
    if positives == 0 {
        return Err(Error::MissingClass {
            metric: METRIC,
            positives,
            negatives: labels.len(),
        });
    }
    let n = labels.len();
    let ranked = tie_averaged_labels(scores, labels);
    let top = decile_start(1, n);
    let top_rate = ranked[..top].iter().sum::<f64>() / top as f64;
    Ok(top_rate * n as f64 / positives as f64)
}

/// One decile of users by descending score, for a lift chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecileLift {
    /// 1 = the highest scores.
    pub decile: u32,
    /// Users in the decile (deciles of fewer than ten users can be empty and are left out).
    pub users: usize,
    /// Positive rate in the decile (ties at the edges shared as in [`top_decile_lift`]).
    pub positive_rate: f64,
    /// `positive_rate` divided by the overall positive rate.
    pub lift: f64,
}

/// Positive rate and lift of each score decile, highest scores first.
pub fn lift_by_decile(scores: &[f64], labels: &[bool]) -> Result<Vec<DecileLift>> {
    const METRIC: &str = "lift_by_decile";
    check_input(METRIC, scores, labels.len())?;
    let positives = count_positives(labels);
    if positives == 0 {
        return Err(Error::MissingClass {
            metric: METRIC,
            positives,
            negatives: labels.len(),
        });
    }
    let n = labels.len();
    let overall = positives as f64 / n as f64;
    let ranked = tie_averaged_labels(scores, labels);
    let mut out = Vec::new();
    for d in 0..BINS {
        let (start, end) = (decile_start(d, n), decile_start(d + 1, n));
        if start == end {
            continue;
        }
        let rate = ranked[start..end].iter().sum::<f64>() / (end - start) as f64;
        out.push(DecileLift {
            decile: d as u32 + 1,
            users: end - start,
            positive_rate: rate,
            lift: rate / overall,
        });
    }
    Ok(out)
}

/// One of ten equal-width bins of predicted probability, for a reliability chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Lower edge (inclusive).
    pub lower: f64,
    /// Upper edge (exclusive, except 1.0 for the last bin).
    pub upper: f64,
    /// Predictions in the bin.
    pub count: usize,
    /// Mean predicted probability in the bin (`None` when empty).
    pub mean_predicted: Option<f64>,
    /// Observed positive rate in the bin (`None` when empty).
    pub observed_rate: Option<f64>,
}

/// Ten equal-width bins over `[0, 1]` with the mean prediction and the observed
/// positive rate in each; all ten are returned, empty ones with `None`.
pub fn calibration(probabilities: &[f64], labels: &[bool]) -> Result<Vec<CalibrationBin>> {
    check_probabilities("calibration", probabilities, labels.len())?;
    let mut count = [0usize; BINS];
    let mut predicted = [0.0f64; BINS];
    let mut observed = [0usize; BINS];
    for (&p, &y) in probabilities.iter().zip(labels) {
        let bin = ((p * BINS as f64) as usize).min(BINS - 1);
        count[bin] += 1;
        predicted[bin] += p;
        observed[bin] += usize::from(y);
    }
    Ok((0..BINS)
        .map(|b| {
            let n = count[b] as f64;
            CalibrationBin {
                lower: b as f64 / BINS as f64,
                upper: (b + 1) as f64 / BINS as f64,
                count: count[b],
                mean_predicted: (count[b] > 0).then(|| predicted[b] / n),
                observed_rate: (count[b] > 0).then(|| observed[b] as f64 / n),
            }
        })
        .collect())
}

/// Mean absolute error of `predicted` against `actual`.
pub fn mae(predicted: &[f64], actual: &[f64]) -> Result<f64> {
    const METRIC: &str = "mae";
    check_input(METRIC, predicted, actual.len())?;
    check_input(METRIC, actual, predicted.len())?;
    let total: f64 = predicted
        .iter()
        .zip(actual)
        .map(|(p, a)| (p - a).abs())
        .sum();
    Ok(total / actual.len() as f64)
}

/// Pearson correlation of `predicted` and `actual`; `None` when either is constant.
pub fn correlation(predicted: &[f64], actual: &[f64]) -> Result<Option<f64>> {
    const METRIC: &str = "correlation";
    check_input(METRIC, predicted, actual.len())?;
    check_input(METRIC, actual, predicted.len())?;
    Ok(userlens_model::stats::pearson(predicted, actual))
}

/// Share of the total `actual` value held by the top 10% by `predicted`
/// (`ceil(n / 10)` users); users tied at the cut count with their tie's mean. A
/// user whose refunds outweigh their purchases counts as 0, so the share stays
/// within 0..1. `None` when the total is not positive.
pub fn top_decile_share(predicted: &[f64], actual: &[f64]) -> Result<Option<f64>> {
    const METRIC: &str = "top_decile_share";
    check_input(METRIC, predicted, actual.len())?;
    check_input(METRIC, actual, predicted.len())?;
    let held = |i: usize| actual[i].max(0.0);
    let total: f64 = (0..actual.len()).map(held).sum();
    if total <= 0.0 {
        return Ok(None);
    }
    let mut ranked = Vec::with_capacity(actual.len());
    for group in tie_groups(predicted, true) {
        let mean = group.iter().map(|&i| held(i)).sum::<f64>() / group.len() as f64;
        ranked.extend(std::iter::repeat_n(mean, group.len()));
    }
    let top = decile_start(1, actual.len());
    Ok(Some(ranked[..top].iter().sum::<f64>() / total))
}

/// How well a revenue prediction ranks and sizes the holdout's actual revenue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevenueScore {
    /// Pearson correlation (`None` when either side is constant).
    pub correlation: Option<f64>,
    /// Mean absolute error.
    pub mae: f64,
    /// Share of the actual revenue held by the top decile by prediction (`None`
    /// without revenue).
    pub top_decile_share: Option<f64>,
    /// Users scored.
    pub users: usize,
}

/// Correlation, mean absolute error and top-decile share together.
pub fn evaluate_revenue(predicted: &[f64], actual: &[f64]) -> Result<RevenueScore> {
    Ok(RevenueScore {
        correlation: correlation(predicted, actual)?,
        mae: mae(predicted, actual)?,
        top_decile_share: top_decile_share(predicted, actual)?,
        users: actual.len(),
    })
}

/// The scores of a probability prediction on a holdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Area under the ROC curve.
    pub auc: f64,
    /// Mean log loss (clipped probabilities).
    pub log_loss: f64,
    /// Brier score.
    pub brier: f64,
    /// Lift of the top decile by score.
    pub lift_top_decile: f64,
    /// Positive labels in the holdout.
    pub positives: usize,
    /// Negative labels in the holdout.
    pub negatives: usize,
}

/// How many users of each class a holdout needs before its scores mean anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Eligibility {
    /// Minimum positive labels (default 100).
    pub min_positives: usize,
    /// Minimum negative labels (default 100).
    pub min_negatives: usize,
}

impl Default for Eligibility {
    fn default() -> Self {
        Eligibility {
            min_positives: 100,
            min_negatives: 100,
        }
    }
}

/// A scored holdout, or the reason it was not scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Evaluation {
    /// Enough users of both classes: the scores.
    Scored(Score),
    /// Not scored, with a reason a person can read.
    Skipped {
        /// E.g. "only 37 positives in the holdout (at least 100 needed)".
        reason: String,
    },
}

fn too_few(found: usize, needed: usize, singular: &str) -> String {
    let noun = if found == 1 {
        singular.to_string()
    } else {
        format!("{singular}s")
    };
    format!("only {found} {noun} in the holdout (at least {needed} needed)")
}

/// Scores probabilities against labels when the holdout passes `gate`, otherwise
/// says why not. Invalid input (lengths, NaN, values outside `[0, 1]`) is an error.
pub fn evaluate(probabilities: &[f64], labels: &[bool], gate: &Eligibility) -> Result<Evaluation> {
    check_probabilities("evaluate", probabilities, labels.len())?;
    let positives = count_positives(labels);
    let negatives = labels.len() - positives;
    // Zero of a class can never be scored, whatever the gate says.
    if positives < gate.min_positives.max(1) {
        return Ok(Evaluation::Skipped {
            reason: too_few(positives, gate.min_positives.max(1), "positive"),
        });
    }
    if negatives < gate.min_negatives.max(1) {
        return Ok(Evaluation::Skipped {
            reason: too_few(negatives, gate.min_negatives.max(1), "negative"),
        });
    }
    Ok(Evaluation::Scored(Score {
        auc: auc(probabilities, labels)?,
        log_loss: log_loss(probabilities, labels)?,
        brier: brier(probabilities, labels)?,
        lift_top_decile: top_decile_lift(probabilities, labels)?,
        positives,
        negatives,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    fn bools(v: &[u8]) -> Vec<bool> {
        v.iter().map(|&x| x == 1).collect()
    }

    #[test]
    fn auc_matches_scikit_learn_examples() {
        // sklearn.metrics.roc_auc_score docs: y = [0, 0, 1, 1], s = [0.1, 0.4, 0.35, 0.8]
        close(
            auc(&[0.1, 0.4, 0.35, 0.8], &bools(&[0, 0, 1, 1])).unwrap(),
            0.75,
        );
        // Perfect, inverted and constant scores.
        close(auc(&[1.0, 2.0, 3.0], &bools(&[0, 1, 1])).unwrap(), 1.0);
        close(auc(&[3.0, 2.0, 1.0], &bools(&[0, 1, 1])).unwrap(), 0.0);
        close(auc(&[0.5; 4], &bools(&[0, 1, 0, 1])).unwrap(), 0.5);
    }

    #[test]
    fn auc_counts_ties_as_half() {
        // Pairs (pos, neg): (0.5 vs 0.5) = 1/2, (0.5 vs 0.2) = 1, (0.9 vs 0.5) = 1,
        // (0.9 vs 0.2) = 1 -> 3.5 / 4.
        close(
            auc(&[0.5, 0.9, 0.5, 0.2], &bools(&[1, 1, 0, 0])).unwrap(),
            0.875,
        );
        // -0.0 and 0.0 are the same score.
        close(auc(&[-0.0, 0.0], &bools(&[1, 0])).unwrap(), 0.5);
    }

    #[test]
    fn auc_does_not_depend_on_input_order() {
        let s = [0.3, 0.1, 0.3, 0.7, 0.3, 0.9];
        let y = bools(&[1, 0, 0, 1, 1, 0]);
        let mut idx: Vec<usize> = (0..s.len()).collect();
        idx.reverse();
        let s2: Vec<f64> = idx.iter().map(|&i| s[i]).collect();
        let y2: Vec<bool> = idx.iter().map(|&i| y[i]).collect();
        assert_eq!(auc(&s, &y).unwrap(), auc(&s2, &y2).unwrap());
    }

    #[test]
    fn log_loss_and_brier_match_hand_computation() {
        let p = [0.9, 0.2, 0.6];
        let y = bools(&[1, 0, 0]);
        let expected = -(0.9f64.ln() + 0.8f64.ln() + 0.4f64.ln()) / 3.0;
        close(log_loss(&p, &y).unwrap(), expected);
        close(brier(&p, &y).unwrap(), (0.01 + 0.04 + 0.36) / 3.0);
        // Clipping: a certain miss costs -ln(1e-15).
        close(log_loss(&[0.0], &[true]).unwrap(), -(1e-15f64).ln());
        close(log_loss(&[1.0], &[true]).unwrap(), -(1.0 - 1e-15f64).ln());
    }

    #[test]
    fn top_decile_lift_handles_ties_at_the_cut() {
        // 20 users, top decile = 2 users. Scores 1..=20, positives at 20 and 18.
        let scores: Vec<f64> = (1..=20).map(f64::from).collect();
        let mut labels = vec![false; 20];
        labels[19] = true;
        labels[17] = true;
        labels[0] = true;
        labels[1] = true;
        // Top two: 20 (pos), 19 (neg) -> rate 0.5; overall 4/20 -> lift 2.5.
        close(top_decile_lift(&scores, &labels).unwrap(), 2.5);

        // The top score is shared by 4 users, 1 of them positive: the 2 top places
        // get 2 * 1/4 expected positives -> rate 0.25, overall 2/20 -> lift 2.5.
        let mut scores = vec![0.1; 20];
        scores[..4].copy_from_slice(&[0.9; 4]);
        let mut labels = vec![false; 20];
        labels[3] = true;
        labels[10] = true;
        close(top_decile_lift(&scores, &labels).unwrap(), 2.5);
        // Moving the positive within the tie changes nothing.
        labels.swap(3, 0);
        close(top_decile_lift(&scores, &labels).unwrap(), 2.5);
    }

    #[test]
    fn deciles_cover_every_user_and_average_to_one() {
        let scores: Vec<f64> = (0..25).map(|i| f64::from(i % 7)).collect();
        let labels: Vec<bool> = (0..25).map(|i| i % 3 == 0).collect();
        let deciles = lift_by_decile(&scores, &labels).unwrap();
        assert_eq!(deciles.len(), 10);
        assert_eq!(deciles.iter().map(|d| d.users).sum::<usize>(), 25);
        assert_eq!(deciles[0].users, 3);
        let weighted: f64 = deciles.iter().map(|d| d.lift * d.users as f64).sum();
        close(weighted / 25.0, 1.0);
        close(deciles[0].lift, top_decile_lift(&scores, &labels).unwrap());
        // Three users: deciles 1, 4 and 7 hold one each.
        let few = lift_by_decile(&[0.3, 0.2, 0.1], &bools(&[1, 0, 0])).unwrap();
        let ids: Vec<u32> = few.iter().map(|d| d.decile).collect();
        assert_eq!(ids, vec![1, 4, 7]);
        close(few[0].lift, 3.0);
    }

    #[test]
    fn calibration_bins_are_equal_width() {
        let p = [0.05, 0.07, 0.55, 1.0, 0.999];
        let y = bools(&[0, 1, 1, 1, 0]);
        let bins = calibration(&p, &y).unwrap();
        assert_eq!(bins.len(), 10);
        assert_eq!(bins[0].count, 2);
        close(bins[0].mean_predicted.unwrap(), 0.06);
        close(bins[0].observed_rate.unwrap(), 0.5);
        assert_eq!(bins[1].count, 0);
        assert_eq!(bins[1].mean_predicted, None);
        assert_eq!(bins[5].count, 1);
        assert_eq!(bins[9].count, 2);
        close(bins[9].observed_rate.unwrap(), 0.5);
        close(bins[9].upper, 1.0);
    }

    #[test]
    fn mean_absolute_error_matches_hand_computation() {
        let predicted = [10.0, 0.0, 5.0];
        let actual = [12.0, 0.0, 1.0];
        close(mae(&predicted, &actual).unwrap(), 2.0);
    }

    #[test]
    fn revenue_scores_match_hand_computation() {
        let predicted = [1.0, 2.0, 3.0, 4.0];
        let actual = [2.0, 4.0, 6.0, 8.0];
        close(correlation(&predicted, &actual).unwrap().unwrap(), 1.0);
        let reversed = [8.0, 6.0, 4.0, 2.0];
        close(correlation(&predicted, &reversed).unwrap().unwrap(), -1.0);
        // Deviations ±1.5, ±0.5 on both sides: covariance 4 over variances 5 and 5.
        let score = evaluate_revenue(&predicted, &[1.0, 3.0, 2.0, 4.0]).unwrap();
        close(score.correlation.unwrap(), 0.8);
        close(score.mae, 0.5);
        // Top decile of 4 users is 1 user, the one predicted 4.0: 4 of 10.
        close(score.top_decile_share.unwrap(), 0.4);
        assert_eq!(score.users, 4);
        assert_eq!(correlation(&[1.0, 1.0], &[1.0, 2.0]).unwrap(), None);
        assert_eq!(top_decile_share(&[1.0, 2.0], &[0.0, 0.0]).unwrap(), None);
        // Net refunds count as nothing: 10 of 10, not 10 of the -90 + 10.
        assert_eq!(
            top_decile_share(&[2.0, 1.0], &[10.0, -100.0]).unwrap(),
            Some(1.0)
        );
        close(
            top_decile_share(&[3.0, 2.0, 1.0], &[50.0, -30.0, 10.0])
                .unwrap()
                .unwrap(),
            50.0 / 60.0,
        );
        // A tie at the cut counts with its mean: (5 + 1) / 2 of 10.
        close(
            top_decile_share(&[3.0, 3.0, 1.0], &[5.0, 1.0, 4.0])
                .unwrap()
                .unwrap(),
            0.3,
        );
    }

    #[test]
    fn evaluation_is_gated_on_class_counts() {
        let gate = Eligibility {
            min_positives: 3,
            min_negatives: 2,
        };
        let p = [0.9, 0.8, 0.1, 0.4, 0.3];
        let y = bools(&[1, 1, 0, 0, 0]);
        assert_eq!(
            evaluate(&p, &y, &gate).unwrap(),
            Evaluation::Skipped {
                reason: "only 2 positives in the holdout (at least 3 needed)".into()
            }
        );
        let y = bools(&[1, 1, 1, 1, 0]);
        assert_eq!(
            evaluate(&p, &y, &gate).unwrap(),
            Evaluation::Skipped {
                reason: "only 1 negative in the holdout (at least 2 needed)".into()
            }
        );
        let y = bools(&[1, 1, 1, 0, 0]);
        let Evaluation::Scored(score) = evaluate(&p, &y, &gate).unwrap() else {
            panic!("expected a score");
        };
        close(score.auc, 4.0 / 6.0);
        assert_eq!((score.positives, score.negatives), (3, 2));
        // A zero gate still refuses a single-class holdout instead of failing.
        let open = Eligibility {
            min_positives: 0,
            min_negatives: 0,
        };
        assert!(matches!(
            evaluate(&[0.5], &[true], &open).unwrap(),
            Evaluation::Skipped { .. }
        ));
    }

    #[test]
    fn evaluation_serialises_with_a_status() {
        let skipped = Evaluation::Skipped {
            reason: "only 37 positives in the holdout (at least 100 needed)".into(),
        };
        assert_eq!(
            serde_json::to_string(&skipped).unwrap(),
            r#"{"status":"skipped","reason":"only 37 positives in the holdout (at least 100 needed)"}"#
        );
        let gate: Eligibility = toml::from_str("min_positives = 50").unwrap();
        assert_eq!(gate.min_negatives, 100);
        assert!(toml::from_str::<Eligibility>("min_positive = 50").is_err());
    }

    #[test]
    fn invalid_input_is_an_error_with_its_position() {
        assert_eq!(
            auc(&[0.1, f64::NAN], &[true, false])
                .unwrap_err()
                .to_string(),
            "`auc`: value 2 is NaN, not a finite number"
        );
        assert_eq!(
            auc(&[0.1], &[true, false]).unwrap_err().to_string(),
            "`auc` got 1 predictions for 2 labels"
        );
        assert_eq!(
            auc(&[0.1, 0.2], &[true, true]).unwrap_err().to_string(),
            "`auc` needs positive and negative labels, found 2 positives and 0 negatives"
        );
        assert_eq!(
            brier(&[1.5], &[true]).unwrap_err().to_string(),
            "`brier`: prediction 1 is 1.5, not a probability in [0, 1]"
        );
        assert_eq!(
            mae(&[], &[]).unwrap_err().to_string(),
            "`mae` got no predictions to score"
        );
        assert!(top_decile_lift(&[0.1, 0.2], &[false, false]).is_err());
    }
}
