//! RFM scores and named loyalty segments.
//!
//! Each user gets three scores from 1 to 5, higher is better on every axis:
//! `r_score` from `recency_days` (fewer days since the last activity is better, so
//! the axis is inverted), `f_score` from `frequency` and `m_score` from `monetary`.
//!
//! Scoring rule (quintiles with ties kept together): sort users from worst to best,
//! give each value its *minimum* 1-based rank `rank_min` (one plus the number of
//! users strictly worse), then
//!
//! ```text
//! score = 1 + floor(5 * (rank_min - 1) / n)
//! ```
//!
//! Equal values share `rank_min`, so they always share a score; with no ties this is
//! plain quintiles. A heavily tied value (say 60% of users with one purchase) takes
//! the score of its lowest member, so some scores can be empty. A missing or
//! non-finite value ranks as the worst. An axis on which every user ties (one user,
//! or every event at one time) tells no one apart: everyone scores the middle, 3.
//! A frequency score says "often" from 3 up, which no rank makes true of a single
//! purchase: `f_score` is at most 1 for a user who bought nothing and at most 2 for
//! one who bought once (a log where nobody bought twice has no `at risk` users).
//!
//! Segments are read off the scores, first match wins (so they are mutually
//! exclusive, and the last one makes them exhaustive):
//!
//! | segment       | rule                                |
//! |---------------|-------------------------------------|
//! | `champions`   | R >= 4 and F >= 4 and M >= 4        |
//! | `loyal`       | R >= 3 and F >= 4                   |
//! | `at risk`     | R <= 2 and F >= 3                   |
//! | `promising`   | R >= 4 and F <= 3                   |
//! | `lost`        | R = 1 and F <= 2                    |
//! | `hibernating` | otherwise: R = 2 and F <= 2, or R = 3 and F <= 3 |
//!
//! ```
//! use userlens_predict::segments::Segment;
//! assert_eq!(Segment::of(5, 4, 5), Segment::Champions);
//! assert_eq!(Segment::of(1, 5, 5).name(), "at risk");
//! ```

pub(crate) use crate::error::polars_err;
pub use crate::error::{Error, Result};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use userlens_model::columns::{PERSONA_ID, USER_ID};
use userlens_model::stats::percent_text;

use crate::ml::{read_ids, read_numeric, sorted_order};

/// Column read for the recency score.
pub const RECENCY: &str = "recency_days";
/// Column read for the frequency score.
pub const FREQUENCY: &str = "frequency";
/// Column read for the monetary score.
pub const MONETARY: &str = "monetary";
/// Output column of the segment name.
pub const SEGMENT: &str = "segment";

/// A named loyalty segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// Recent, frequent, high spend.
    Champions,
    /// Frequent and not lapsed.
    Loyal,
    /// Recent but not (yet) frequent.
    Promising,
    /// Used to buy often, not seen for a while.
    AtRisk,
    /// Middling recency, few purchases.
    Hibernating,
    /// Longest gone, few purchases.
    Lost,
}

impl Segment {
    /// Every segment, best first.
    pub const ALL: [Segment; 6] = [
        Segment::Champions,
        Segment::Loyal,
        Segment::Promising,
        Segment::AtRisk,
        Segment::Hibernating,
        Segment::Lost,
    ];

    /// The segment for scores `r`, `f`, `m` (each 1..=5; first match of the table
    /// in the module docs).
    pub fn of(r: u8, f: u8, m: u8) -> Segment {
        if r >= 4 && f >= 4 && m >= 4 {
            Segment::Champions
        } else if r >= 3 && f >= 4 {
            Segment::Loyal
        } else if r <= 2 && f >= 3 {
            Segment::AtRisk
        } else if r >= 4 {
            Segment::Promising
        } else if r <= 1 && f <= 2 {
            Segment::Lost
        } else {
            Segment::Hibernating
        }
    }

    /// The name people read (`at risk`).
    pub fn name(self) -> &'static str {
        match self {
            Segment::Champions => "champions",
            Segment::Loyal => "loyal",
            Segment::Promising => "promising",
            Segment::AtRisk => "at risk",
            Segment::Hibernating => "hibernating",
            Segment::Lost => "lost",
        }
    }

    /// The name in column names (`at_risk`).
    pub fn key(self) -> &'static str {
        match self {
            Segment::AtRisk => "at_risk",
            other => other.name(),
        }
    }
}

/// Scores 1..=5 for `values` by the rule in the module docs; `None` and non-finite
/// values rank worst. `higher_is_better = false` inverts the axis.
pub fn quintile_scores(values: &[Option<f64>], higher_is_better: bool) -> Vec<u8> {
    let n = values.len();
    let goodness: Vec<f64> = values
        .iter()
        .map(|v| match v {
            Some(v) if v.is_finite() => {
                // `+ 0.0` turns -0.0 into 0.0 so both rank together.
                (if higher_is_better { *v } else { -*v }) + 0.0
            }
            _ => f64::NEG_INFINITY,
        })
        .collect();
    if goodness.iter().all(|g| *g == goodness[0]) {
        return vec![3; n];
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| goodness[a].total_cmp(&goodness[b]));
    let mut scores = vec![1u8; n];
    let mut rank_min = 1usize;
    for (position, &i) in order.iter().enumerate() {
        if position > 0 && goodness[order[position - 1]] != goodness[i] {
            rank_min = position + 1;
        }
        // 5 * (rank_min - 1) / n < 5, so the score stays in 1..=5.
        scores[i] = 1 + (5 * (rank_min - 1) / n) as u8;
    }
    scores
}

/// The highest frequency score `bought` purchases may have (module docs).
fn frequency_cap(bought: Option<f64>) -> u8 {
    match bought.filter(|b| b.is_finite()) {
        Some(b) if b >= 2.0 => 5,
        Some(b) if b >= 1.0 => 2,
        _ => 1,
    }
}

/// Reads `user_id` of `table`, checking it is text, non-null and unique.
fn user_ids<'a>(df: &'a DataFrame, table: &'static str) -> Result<Vec<&'a str>> {
    let ids = read_ids(df, table)?;
    sorted_order(&ids, table)?;
    Ok(ids)
}

/// Scores and segments every user of a features table with `user_id`,
/// `recency_days`, `frequency` and `monetary`: `user_id`, `r_score`, `f_score`,
/// `m_score` (Int32, 1..=5), `rfm_score` (text such as "545") and `segment`, sorted
/// by `user_id`.
pub fn score(features: &DataFrame) -> Result<DataFrame> {
    let ids = read_ids(features, "features")?;
    let order = sorted_order(&ids, "features")?;
    let numeric = |column| read_numeric(features, "features", column);
    let r = quintile_scores(&numeric(RECENCY)?, false);
    let frequency = numeric(FREQUENCY)?;
    let f: Vec<u8> = quintile_scores(&frequency, true)
        .into_iter()
        .zip(&frequency)
        .map(|(score, bought)| score.min(frequency_cap(*bought)))
        .collect();
    let m = quintile_scores(&numeric(MONETARY)?, true);
    let pick = |s: &[u8]| -> Vec<i32> { order.iter().map(|&i| i32::from(s[i])).collect() };
    // The text of each of the 125 score triples, "111" to "555", made once.
    let codes: Vec<String> = (0..125)
        .map(|c| format!("{}{}{}", c / 25 + 1, c / 5 % 5 + 1, c % 5 + 1))
        .collect();
    let code =
        |i: usize| usize::from(r[i] - 1) * 25 + usize::from(f[i] - 1) * 5 + usize::from(m[i] - 1);
    let rfm: Vec<&str> = order.iter().map(|&i| codes[code(i)].as_str()).collect();
    let segment: Vec<&str> = order
        .iter()
        .map(|&i| Segment::of(r[i], f[i], m[i]).name())
        .collect();
    let sorted_ids: Vec<&str> = order.iter().map(|&i| ids[i]).collect();
    DataFrame::new(
        ids.len(),
        vec![
            Column::new(USER_ID.into(), sorted_ids),
            Column::new("r_score".into(), pick(&r)),
            Column::new("f_score".into(), pick(&f)),
            Column::new("m_score".into(), pick(&m)),
            Column::new("rfm_score".into(), rfm),
            Column::new(SEGMENT.into(), segment),
        ],
    )
    .map_err(polars_err("build the segments table"))
}

/// "champions 40%, loyal 30%": shares above zero, largest first (ties in
/// [`Segment::ALL`] order), as whole percents ([`percent_text`]).
pub fn describe_mix(shares: &[(Segment, f64)]) -> String {
    let mut parts: Vec<(Segment, f64)> = shares.iter().copied().filter(|(_, s)| *s > 0.0).collect();
    parts.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    parts
        .iter()
        .map(|(segment, share)| format!("{} {}", segment.name(), percent_text(*share)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Segment mix of each persona: `persona_id`, `users` (assigned users that have a
/// segment), one share column per segment (`segment_champions`, ...,
/// `segment_lost`, each 0..=1) and `segment_mix` text (see [`describe_mix`]), sorted
/// by `persona_id`. Users without a segment are left out.
pub fn segment_mix(assignments: &DataFrame, segments: &DataFrame) -> Result<DataFrame> {
    user_ids(assignments, "assignments")?;
    user_ids(segments, "segments")?;
    if assignments.column(PERSONA_ID).is_err() {
        return Err(Error::MissingColumn {
            table: "assignments",
            column: PERSONA_ID.into(),
        });
    }
    if segments.column(SEGMENT).is_err() {
        return Err(Error::MissingColumn {
            table: "segments",
            column: SEGMENT.into(),
        });
    }
    let mut aggs = vec![len().cast(DataType::Int64).alias("users")];
    for segment in Segment::ALL {
        aggs.push(
            col(SEGMENT)
                .eq(lit(segment.name()))
                .cast(DataType::Float64)
                .mean()
                .alias(format!("segment_{}", segment.key())),
        );
    }
    let mut mix = assignments
        .clone()
        .lazy()
        .select([col(USER_ID), col(PERSONA_ID)])
        .inner_join(
            segments.clone().lazy().select([col(USER_ID), col(SEGMENT)]),
            col(USER_ID),
            col(USER_ID),
        )
        .group_by([col(PERSONA_ID)])
        .agg(aggs)
        .sort([PERSONA_ID], SortMultipleOptions::default())
        .collect()
        .map_err(polars_err("compute the segment mix of each persona"))?;
    let mut columns = Vec::new();
    for segment in Segment::ALL {
        let name = format!("segment_{}", segment.key());
        let values: Vec<f64> = mix
            .column(&name)
            .and_then(|c| c.f64().cloned())
            .map_err(polars_err("read the segment shares"))?
            .iter()
            .map(|v| v.unwrap_or(0.0))
            .collect();
        columns.push((segment, values));
    }
    let text: Vec<String> = (0..mix.height())
        .map(|row| {
            let shares: Vec<(Segment, f64)> = columns.iter().map(|(s, v)| (*s, v[row])).collect();
            describe_mix(&shares)
        })
        .collect();
    mix.with_column(Column::new("segment_mix".into(), text))
        .map_err(polars_err("add the segment mix text"))?;
    Ok(mix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(v: &[f64]) -> Vec<Option<f64>> {
        v.iter().copied().map(Some).collect()
    }

    #[test]
    fn distinct_values_give_plain_quintiles() {
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(
            quintile_scores(&some(&values), true),
            [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
        );
        assert_eq!(
            quintile_scores(&some(&values), false),
            [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
        );
    }

    #[test]
    fn equal_values_always_share_a_score() {
        // 10 users; six with value 1 take rank_min 3 -> score 1 + floor(5*2/10) = 2.
        let values = some(&[0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 7.0, 9.0]);
        assert_eq!(
            quintile_scores(&values, true),
            [1, 1, 2, 2, 2, 2, 2, 2, 5, 5]
        );
        // Order of the input does not matter.
        let mut reversed = values.clone();
        reversed.reverse();
        let mut scores = quintile_scores(&reversed, true);
        scores.reverse();
        assert_eq!(scores, quintile_scores(&values, true));
        // All equal, or one user: no one is told apart, all score the middle.
        assert_eq!(quintile_scores(&some(&[3.0; 4]), true), [3, 3, 3, 3]);
        assert_eq!(quintile_scores(&some(&[3.0]), false), [3]);
        // -0.0 and 0.0 are equal.
        let z = quintile_scores(&some(&[-0.0, 0.0, 1.0]), true);
        assert_eq!(z[0], z[1]);
    }

    #[test]
    fn missing_values_rank_worst() {
        let values = vec![None, Some(5.0), Some(f64::NAN), Some(1.0), Some(3.0)];
        assert_eq!(quintile_scores(&values, true), [1, 5, 1, 3, 4]);
        assert_eq!(quintile_scores(&values, false), [1, 3, 1, 5, 4]);
        assert!(quintile_scores(&[], true).is_empty());
    }

    #[test]
    fn scores_are_always_between_one_and_five() {
        for n in 1..60usize {
            let values: Vec<Option<f64>> = (0..n).map(|i| Some((i % 7) as f64)).collect();
            for s in quintile_scores(&values, true) {
                assert!((1..=5).contains(&s));
            }
        }
    }

    /// The segment table written as independent conditions.
    fn standalone(r: u8, f: u8, m: u8) -> Vec<Segment> {
        let rules = [
            (Segment::Champions, r >= 4 && f >= 4 && m >= 4),
            (Segment::Loyal, f >= 4 && (r == 3 || (r >= 4 && m <= 3))),
            (Segment::AtRisk, r <= 2 && f >= 3),
            (Segment::Promising, r >= 4 && f <= 3),
            (Segment::Lost, r == 1 && f <= 2),
            (
                Segment::Hibernating,
                (r == 2 && f <= 2) || (r == 3 && f <= 3),
            ),
        ];
        rules
            .iter()
            .filter(|(_, hit)| *hit)
            .map(|(s, _)| *s)
            .collect()
    }

    #[test]
    fn segments_are_exhaustive_and_mutually_exclusive() {
        let mut seen = std::collections::BTreeSet::new();
        for r in 1..=5 {
            for f in 1..=5 {
                for m in 1..=5 {
                    let hits = standalone(r, f, m);
                    assert_eq!(hits.len(), 1, "r={r} f={f} m={m}: {hits:?}");
                    assert_eq!(Segment::of(r, f, m), hits[0], "r={r} f={f} m={m}");
                    seen.insert(hits[0]);
                }
            }
        }
        assert_eq!(seen.len(), Segment::ALL.len());
    }

    fn features() -> DataFrame {
        df! {
            "user_id" => ["e", "a", "d", "b", "c"],
            "recency_days" => [200.0, 1.0, 30.0, 2.0, 100.0],
            "frequency" => [1.0, 9.0, 3.0, 6.0, 5.0],
            "monetary" => [10.0, 900.0, 30.0, 600.0, 500.0],
        }
        .unwrap()
    }

    #[test]
    fn scores_a_features_table_sorted_by_user() {
        let out = score(&features()).unwrap();
        assert_eq!(
            out.get_column_names(),
            [
                "user_id",
                "r_score",
                "f_score",
                "m_score",
                "rfm_score",
                "segment"
            ]
        );
        let text = |name: &str| -> Vec<String> {
            out.column(name)
                .unwrap()
                .cast(&DataType::String)
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .map(|v| v.unwrap().to_string())
                .collect()
        };
        assert_eq!(text("user_id"), ["a", "b", "c", "d", "e"]);
        // n = 5: ranks 1..5 map to scores 1..5.
        assert_eq!(text("rfm_score"), ["555", "444", "233", "322", "111"]);
        assert_eq!(
            text("segment"),
            ["champions", "champions", "at risk", "hibernating", "lost"]
        );
    }

    #[test]
    fn no_rank_calls_a_single_purchase_frequent() {
        // Nobody bought: every frequency ties, but no purchase is no middle score.
        let nobody = df! {
            "user_id" => ["a", "b", "c", "d", "e"],
            "recency_days" => [200.0, 1.0, 30.0, 2.0, 100.0],
            "frequency" => [0.0; 5],
            "monetary" => [0.0; 5],
        }
        .unwrap();
        let once = nobody
            .clone()
            .lazy()
            .with_columns([lit(1.0).alias("frequency"), lit(20.0).alias("monetary")])
            .collect()
            .unwrap();
        // Most bought nothing: the one-time buyers rank high, and still buy rarely.
        let few = nobody
            .clone()
            .lazy()
            .with_column(
                when(col("user_id").eq(lit("e")))
                    .then(lit(1.0))
                    .otherwise(lit(0.0))
                    .alias("frequency"),
            )
            .collect()
            .unwrap();
        for (table, f_scores) in [(nobody, [1; 5]), (once, [2; 5]), (few, [1, 1, 1, 1, 2])] {
            let out = score(&table).unwrap();
            let f: Vec<i32> = out
                .column("f_score")
                .unwrap()
                .i32()
                .unwrap()
                .iter()
                .flatten()
                .collect();
            assert_eq!(f, f_scores);
            let segments = out.column("segment").unwrap().str().unwrap();
            assert!(
                segments
                    .iter()
                    .flatten()
                    .all(|s| !matches!(s, "at risk" | "loyal" | "champions")),
                "{out}"
            );
        }
    }

    #[test]
    fn reports_missing_or_bad_columns() {
        let df = features().drop("monetary").unwrap();
        assert_eq!(
            score(&df).unwrap_err().to_string(),
            "the features table has no `monetary` column"
        );
        let df = df! {
            "user_id" => ["a", "a"],
            "recency_days" => [1.0, 2.0],
            "frequency" => [1.0, 2.0],
            "monetary" => [1.0, 2.0],
        }
        .unwrap();
        assert_eq!(
            score(&df).unwrap_err().to_string(),
            "user `a` appears more than once in the features table"
        );
        let df = df! {
            "user_id" => ["a"],
            "recency_days" => ["x"],
            "frequency" => [1.0],
            "monetary" => [1.0],
        }
        .unwrap();
        assert_eq!(
            score(&df).unwrap_err().to_string(),
            "`recency_days` in the features table must be numeric, found str"
        );
    }

    #[test]
    fn mix_per_persona_sums_to_one() {
        let segments = score(&features()).unwrap();
        let assignments = df! {
            "user_id" => ["a", "b", "c", "d", "e", "zz"],
            "persona_id" => [2u32, 2, 1, 1, 1, 1],
        }
        .unwrap();
        let mix = segment_mix(&assignments, &segments).unwrap();
        assert_eq!(
            mix.get_column_names(),
            [
                "persona_id",
                "users",
                "segment_champions",
                "segment_loyal",
                "segment_promising",
                "segment_at_risk",
                "segment_hibernating",
                "segment_lost",
                "segment_mix"
            ]
        );
        let users: Vec<i64> = mix
            .column("users")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(users, [3, 2]);
        let texts: Vec<&str> = mix
            .column("segment_mix")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(
            texts,
            ["at risk 33%, hibernating 33%, lost 33%", "champions 100%"]
        );
    }

    #[test]
    fn mix_text_orders_by_share() {
        let text = describe_mix(&[
            (Segment::Champions, 0.4),
            (Segment::Loyal, 0.3),
            (Segment::Lost, 0.296),
            (Segment::Promising, 0.004),
            (Segment::AtRisk, 0.0),
        ]);
        assert_eq!(text, "champions 40%, loyal 30%, lost 30%, promising <1%");
    }
}
