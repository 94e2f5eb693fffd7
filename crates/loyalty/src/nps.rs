//! Net Promoter Score from survey answers, overall and per group, with a Wald 95%
//! interval of the multinomial (promoter +1, passive 0, detractor -1) mean.

use polars::prelude::*;
use userlens_model::columns::USER_ID;

use crate::error::{Error, Result, polars_err};
use crate::groups::Directory;
use crate::survival::Z95;

pub use userlens_model::columns::survey::{ANSWERED_AT, SCORE};
/// Fewer responses than this get a warning: the interval is wide and the Wald
/// approximation rough.
pub const MIN_RESPONSES: u64 = 30;

/// Promoters, passives and detractors of one group.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Nps {
    /// Scores 9-10.
    pub promoters: u64,
    /// Scores 7-8.
    pub passives: u64,
    /// Scores 0-6.
    pub detractors: u64,
    /// Sum of the scores.
    pub score_sum: u64,
}

impl Nps {
    /// Counts one score (0..=10).
    pub fn add(&mut self, score: u32) {
        match score {
            9.. => self.promoters += 1,
            7..=8 => self.passives += 1,
            _ => self.detractors += 1,
        }
        self.score_sum += u64::from(score);
    }

    /// Responses counted.
    pub fn responses(&self) -> u64 {
        self.promoters + self.passives + self.detractors
    }

    /// % promoters - % detractors, and its 95% interval (clipped to -100..100).
    pub fn score(&self) -> Option<(f64, f64, f64)> {
        let n = self.responses() as f64;
        if n == 0.0 {
            return None;
        }
        let (p, d) = (self.promoters as f64 / n, self.detractors as f64 / n);
        let nps = p - d;
        let variance = ((p + d - nps * nps) / n).max(0.0);
        let half = Z95 * variance.sqrt();
        Some((
            100.0 * nps,
            (100.0 * (nps - half)).max(-100.0),
            (100.0 * (nps + half)).min(100.0),
        ))
    }
}

/// Each user's latest answer before `as_of`: `user_id, score` sorted by user. Of
/// answers at the same time the lowest score counts, whatever the file's order.
pub fn latest_scores(survey: &DataFrame, as_of: i64) -> Result<DataFrame> {
    for column in [USER_ID, ANSWERED_AT, SCORE] {
        if survey.column(column).is_err() {
            return Err(Error::MissingColumn {
                table: "survey",
                column,
            });
        }
    }
    survey
        .clone()
        .lazy()
        .filter(col(ANSWERED_AT).cast(DataType::Int64).lt(lit(as_of)))
        .sort(
            [USER_ID, ANSWERED_AT, SCORE],
            SortMultipleOptions::default()
                .with_order_descending_multi([false, false, true])
                .with_maintain_order(true),
        )
        .group_by_stable([col(USER_ID)])
        .agg([col(SCORE).cast(DataType::UInt32).last()])
        .sort([USER_ID], SortMultipleOptions::default())
        .collect()
        .map_err(polars_err("take each user's latest survey answer"))
}

/// How many of `scores`' answers come from users in no persona or segment of `dir`
/// (0 when it has neither): they count in the `all` row alone.
pub fn unplaced(scores: &DataFrame, dir: &Directory) -> Result<u64> {
    if dir.groups.len() == 1 {
        return Ok(0);
    }
    let err = polars_err("read the survey scores");
    let users = scores.column(USER_ID).and_then(|c| c.str()).map_err(&err)?;
    let values = scores.column(SCORE).and_then(|c| c.u32()).map_err(&err)?;
    let placed = |user: &str| dir.memberships(user)[1..].iter().any(Option::is_some);
    Ok((users.iter().zip(values.iter()))
        .filter(|(user, score)| score.is_some() && user.is_some_and(|u| !placed(u)))
        .count() as u64)
}

/// `group, value, responses, promoters, passives, detractors, nps, nps_lower,
/// nps_upper, mean_score, warning` from each user's latest score.
pub fn nps_table(scores: &DataFrame, dir: &Directory) -> Result<DataFrame> {
    let err = polars_err("read the survey scores");
    let users = scores.column(USER_ID).and_then(|c| c.str()).map_err(&err)?;
    let values = scores.column(SCORE).and_then(|c| c.u32()).map_err(&err)?;
    let mut counts = vec![Nps::default(); dir.groups.len()];
    for (user, score) in users.iter().zip(values.iter()) {
        let (Some(user), Some(score)) = (user, score) else {
            continue;
        };
        for g in dir.memberships(user).iter().flatten() {
            if let Some(c) = counts.get_mut(*g as usize) {
                c.add(score.min(10));
            }
        }
    }
    let mut rows: (Vec<&str>, Vec<String>, [Vec<u64>; 4]) = Default::default();
    let (mut nps, mut lower, mut upper, mut mean, mut warning) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (group, c) in dir.groups.iter().zip(&counts) {
        let Some((score, lo, hi)) = c.score() else {
            continue;
        };
        let n = c.responses();
        rows.0.push(group.kind);
        rows.1.push(group.value.clone());
        for (k, v) in [n, c.promoters, c.passives, c.detractors]
            .into_iter()
            .enumerate()
        {
            rows.2[k].push(v);
        }
        nps.push(score);
        lower.push(lo);
        upper.push(hi);
        mean.push(c.score_sum as f64 / n as f64);
        warning.push((n < MIN_RESPONSES).then(|| format!("fewer than {MIN_RESPONSES} responses")));
    }
    let [responses, promoters, passives, detractors] = rows.2;
    DataFrame::new_infer_height(vec![
        Column::new("group".into(), rows.0),
        Column::new("value".into(), rows.1),
        Column::new("responses".into(), responses),
        Column::new("promoters".into(), promoters),
        Column::new("passives".into(), passives),
        Column::new("detractors".into(), detractors),
        Column::new("nps".into(), nps),
        Column::new("nps_lower".into(), lower),
        Column::new("nps_upper".into(), upper),
        Column::new("mean_score".into(), mean),
        Column::new("warning".into(), warning),
    ])
    .map_err(polars_err("build the NPS table"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nps_of_twenty_answers_by_hand() {
        // 8 promoters (9, 10), 5 passives (7, 8), 7 detractors (0-6)
        let scores = [
            10, 9, 9, 10, 9, 9, 10, 9, 7, 8, 7, 8, 8, 0, 3, 6, 5, 6, 2, 6,
        ];
        let mut nps = Nps::default();
        scores.iter().for_each(|&s| nps.add(s));
        assert_eq!((nps.promoters, nps.passives, nps.detractors), (8, 5, 7));
        let (score, lo, hi) = nps.score().unwrap();
        assert!((score - 5.0).abs() < 1e-12, "{score}");
        // variance of the +1/0/-1 mean: (0.4 + 0.35 - 0.05^2) / 20 = 0.037375
        let half = 100.0 * Z95 * 0.037375f64.sqrt();
        assert!((lo - (5.0 - half)).abs() < 1e-9 && (hi - (5.0 + half)).abs() < 1e-9);
        assert!((half - 37.89).abs() < 0.01, "{half}");
        assert_eq!(Nps::default().score(), None);
        let mut all = Nps::default();
        (0..40).for_each(|_| all.add(10));
        assert_eq!(all.score(), Some((100.0, 100.0, 100.0)));
    }

    #[test]
    fn the_latest_answer_before_the_as_of_date_counts() {
        // b answered twice at 5: the lower score counts, in either order.
        let survey = df!(
            USER_ID => ["b", "a", "a", "b", "a"],
            ANSWERED_AT => [5i64, 1, 3, 5, 9],
            SCORE => [10i64, 0, 8, 9, 1],
        )
        .unwrap();
        let reversed = survey.reverse();
        let latest = latest_scores(&reversed, 6).unwrap();
        assert!(latest.equals(&latest_scores(&survey, 6).unwrap()));
        let latest = latest_scores(&survey, 6).unwrap();
        let users: Vec<_> = latest
            .column(USER_ID)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        let scores: Vec<_> = latest
            .column(SCORE)
            .unwrap()
            .u32()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(users, ["a", "b"]);
        assert_eq!(scores, [8, 9]);
        let table = nps_table(&latest, &Directory::new(None, None).unwrap()).unwrap();
        assert_eq!(table.height(), 1);
        let warning = table.column("warning").unwrap().str().unwrap().get(0);
        assert_eq!(warning, Some("fewer than 30 responses"));
        let nps = table.column("nps").unwrap().f64().unwrap().get(0);
        assert_eq!(nps, Some(50.0));
        // b is in no persona: counted in `all` alone, and counted as such.
        assert_eq!(
            unplaced(&latest, &Directory::new(None, None).unwrap()).unwrap(),
            0
        );
        let personas =
            df!(USER_ID => ["a"], userlens_model::columns::PERSONA_ID => [1u32]).unwrap();
        let dir = Directory::new(Some(&personas), None).unwrap();
        assert_eq!(unplaced(&latest, &dir).unwrap(), 1);
    }
}
