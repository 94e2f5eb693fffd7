//! Predictions summarised per persona, for the persona table of the report.

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;
use userlens_model::columns::{PERSONA_ID, USER_ID};
use userlens_model::stats::KahanSum;

use crate::error::{Result, polars_err};
use crate::segments;

/// Per persona of `assignments` (`user_id`, `persona_id`), from `predictions` (the
/// `user_predictions` table): `persona_id`, `mean_p_purchase`,
/// `share_predicted_buyers` (`p_purchase >= 0.5`), `mean_predicted_revenue`,
/// `mean_churn_risk`, `mean_p_alive`, then `segment_mix` when `segments` (the RFM
/// segments table) is given; sorted by `persona_id`. Assigned users without
/// predictions count in no mean; a persona with no segmented user has no mix.
pub fn persona_summary(
    assignments: &DataFrame,
    predictions: &DataFrame,
    segments: Option<&DataFrame>,
) -> Result<DataFrame> {
    let context = "summarise the predictions per persona";
    let texts = |df: &DataFrame| -> Result<StringChunked> {
        let ids = df.column(USER_ID).map_err(polars_err(context))?;
        let ids = ids.cast(&DataType::String).map_err(polars_err(context))?;
        Ok(ids.str().map_err(polars_err(context))?.clone())
    };
    let floats = |name: &str| -> Result<Vec<Option<f64>>> {
        let column = predictions.column(name).map_err(polars_err(context))?;
        let column = column
            .cast(&DataType::Float64)
            .map_err(polars_err(context))?;
        Ok(column.f64().map_err(polars_err(context))?.iter().collect())
    };
    let predicted = texts(predictions)?;
    let mut row_of: HashMap<&str, usize> = HashMap::with_capacity(predicted.len());
    for (row, id) in predicted.iter().enumerate() {
        if let Some(id) = id {
            row_of.entry(id).or_insert(row);
        }
    }
    let p_purchase = floats("p_purchase")?;
    let buyer: Vec<Option<f64>> = (p_purchase.iter())
        .map(|p| p.map(|p| f64::from(u8::from(p >= 0.5))))
        .collect();
    let columns = [
        ("mean_p_purchase", p_purchase),
        ("share_predicted_buyers", buyer),
        ("mean_predicted_revenue", floats("predicted_revenue")?),
        ("mean_churn_risk", floats("churn_risk")?),
        ("mean_p_alive", floats("p_alive")?),
    ];
    // Summed in the assignments' order, each sum compensated: a group-by's sums
    // follow its threads, and the last digits would change from run to run.
    let persona_ids = assignments
        .column(PERSONA_ID)
        .map_err(polars_err(context))?;
    let id_type = persona_ids.dtype().clone();
    let persona_ids = persona_ids
        .cast(&DataType::UInt32)
        .map_err(polars_err(context))?;
    let mut means: BTreeMap<u32, Vec<Mean>> = BTreeMap::new();
    let users = texts(assignments)?;
    let personas = persona_ids.u32().map_err(polars_err(context))?;
    for (user, persona) in users.iter().zip(personas.iter()) {
        let Some(persona) = persona else { continue };
        let sums = means
            .entry(persona)
            .or_insert_with(|| vec![Mean::default(); columns.len()]);
        let Some(&row) = user.and_then(|u| row_of.get(u)) else {
            continue;
        };
        for (sum, (_, values)) in sums.iter_mut().zip(&columns) {
            if let Some(v) = values[row] {
                sum.add(v);
            }
        }
    }
    let ids: Vec<u32> = means.keys().copied().collect();
    let mut table = vec![
        Column::new(PERSONA_ID.into(), ids)
            .cast(&id_type)
            .map_err(polars_err(context))?,
    ];
    for (j, (name, _)) in columns.iter().enumerate() {
        let values: Vec<Option<f64>> = means.values().map(|m| m[j].value()).collect();
        table.push(Column::new((*name).into(), values));
    }
    let summary = DataFrame::new(means.len(), table).map_err(polars_err(context))?;
    let Some(segments) = segments else {
        return Ok(summary);
    };
    let mix = segments::segment_mix(assignments, segments)?;
    summary
        .lazy()
        .left_join(
            mix.lazy().select([col(PERSONA_ID), col("segment_mix")]),
            col(PERSONA_ID),
            col(PERSONA_ID),
        )
        .sort([PERSONA_ID], SortMultipleOptions::default())
        .collect()
        .map_err(polars_err(context))
}

/// A mean summed as polars' group-by mean sums (compensated), in the order values
/// come.
#[derive(Debug, Clone, Copy, Default)]
struct Mean {
    sum: KahanSum,
    count: u64,
}

impl Mean {
    fn add(&mut self, v: f64) {
        self.sum.add(v);
        self.count += 1;
    }

    /// `None` without values, as a group-by's mean of nulls.
    fn value(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum.sum() / self.count as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignments() -> DataFrame {
        df! {
            "user_id" => ["a", "b", "c", "d", "e", "f"],
            "persona_id" => [2u32, 2, 1, 1, 1, 3],
        }
        .unwrap()
    }

    fn predictions() -> DataFrame {
        // `d` has no prediction; `e`'s purchase probability is missing.
        df! {
            "user_id" => ["a", "b", "c", "e", "f", "z"],
            "p_alive" => [0.9, 0.5, 0.2, 0.4, 1.0, 0.0],
            "p_purchase" => [Some(0.8), Some(0.5), Some(0.1), None, Some(0.3), Some(1.0)],
            "predicted_revenue" => [40.0, 10.0, 0.0, 5.0, 1.0, 99.0],
            "churn_risk" => [0.1, 0.3, 0.9, 0.7, 0.2, 1.0],
        }
        .unwrap()
    }

    fn segments() -> DataFrame {
        // `f` has no segment, so persona 3 has no mix.
        let features = df! {
            "user_id" => ["a", "b", "c", "d", "e"],
            "recency_days" => [1.0, 2.0, 100.0, 30.0, 200.0],
            "frequency" => [9.0, 6.0, 5.0, 3.0, 1.0],
            "monetary" => [900.0, 600.0, 500.0, 30.0, 10.0],
        }
        .unwrap();
        segments::score(&features).unwrap()
    }

    fn floats(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
        df.column(name).unwrap().f64().unwrap().iter().collect()
    }

    #[test]
    fn means_do_not_depend_on_the_order_of_the_predictions() {
        // Large amounts, whose sums lose their last digits to the order of adding.
        let n = 5_000;
        let users: Vec<String> = (0..n).map(|i| format!("u{i:05}")).collect();
        let assignments = df! {
            "user_id" => &users,
            "persona_id" => (0..n).map(|i| (i % 3) as u32 + 1).collect::<Vec<_>>(),
        }
        .unwrap();
        // Whole cents, so that the exact mean is known.
        let revenue: Vec<f64> = (0..n)
            .map(|i| (9.99e13 / (1.0 + (i % 97) as f64)).round() / 100.0)
            .collect();
        let predictions = |order: &[usize]| {
            df! {
                "user_id" => order.iter().map(|&i| users[i].as_str()).collect::<Vec<_>>(),
                "p_alive" => order.iter().map(|&i| (i % 10) as f64 / 10.0).collect::<Vec<_>>(),
                "p_purchase" => order.iter().map(|&i| (i % 7) as f64 / 7.0).collect::<Vec<_>>(),
                "predicted_revenue" => order.iter().map(|&i| revenue[i]).collect::<Vec<_>>(),
                "churn_risk" => order.iter().map(|&i| (i % 5) as f64 / 5.0).collect::<Vec<_>>(),
            }
            .unwrap()
        };
        let forward: Vec<usize> = (0..n).collect();
        let backward: Vec<usize> = (0..n).rev().collect();
        let a = persona_summary(&assignments, &predictions(&forward), None).unwrap();
        let b = persona_summary(&assignments, &predictions(&backward), None).unwrap();
        assert!(a.equals_missing(&b), "{a}\n{b}");
        // Against the exact means, summed as integers of cents.
        let exact: f64 = (0..n)
            .filter(|i| i % 3 == 0)
            .map(|i| (revenue[i] * 100.0).round() as i128)
            .sum::<i128>() as f64
            / 100.0
            / (0..n).filter(|i| i % 3 == 0).count() as f64;
        let got = floats(&a, "mean_predicted_revenue")[0].unwrap();
        assert!((got - exact).abs() <= exact * 1e-15, "{got} {exact}");
    }

    #[test]
    fn an_infinite_value_makes_an_infinite_mean() {
        let mut mean = Mean::default();
        for v in [1.0, f64::INFINITY, 2.0] {
            mean.add(v);
        }
        assert_eq!(mean.value(), Some(f64::INFINITY));
        assert_eq!(Mean::default().value(), None);
    }

    #[test]
    fn means_per_persona_then_the_segment_mix() {
        let out = persona_summary(&assignments(), &predictions(), Some(&segments())).unwrap();
        assert_eq!(
            out.get_column_names(),
            [
                "persona_id",
                "mean_p_purchase",
                "share_predicted_buyers",
                "mean_predicted_revenue",
                "mean_churn_risk",
                "mean_p_alive",
                "segment_mix"
            ]
        );
        let ids: Vec<u32> = out
            .column("persona_id")
            .unwrap()
            .u32()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(ids, [1, 2, 3]);
        // Persona 1: c (0.1) and e (missing) and d (no row): only c counts.
        assert_eq!(
            floats(&out, "mean_p_purchase"),
            [Some(0.1), Some(0.65), Some(0.3)]
        );
        assert_eq!(
            floats(&out, "share_predicted_buyers"),
            [Some(0.0), Some(1.0), Some(0.0)]
        );
        assert_eq!(
            floats(&out, "mean_predicted_revenue"),
            [Some(2.5), Some(25.0), Some(1.0)]
        );
        assert_eq!(
            floats(&out, "mean_churn_risk"),
            [Some(0.8), Some(0.2), Some(0.2)]
        );
        assert_eq!(
            floats(&out, "mean_p_alive"),
            [Some(0.30000000000000004), Some(0.7), Some(1.0)]
        );
        let mix: Vec<Option<&str>> = out
            .column("segment_mix")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(mix[2], None);
        assert!(mix[0].is_some() && mix[1].is_some());

        let without = persona_summary(&assignments(), &predictions(), None).unwrap();
        assert_eq!(without.width(), 6);
        assert_eq!(
            floats(&without, "mean_p_alive"),
            floats(&out, "mean_p_alive")
        );
    }
}
