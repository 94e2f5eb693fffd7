//! Predictions summarised per persona, for the persona table of the report.

use polars::prelude::*;
use userlens_model::columns::{PERSONA_ID, USER_ID};

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
    let mut summary = assignments
        .clone()
        .lazy()
        .select([col(USER_ID), col(PERSONA_ID)])
        .left_join(predictions.clone().lazy(), col(USER_ID), col(USER_ID))
        .group_by([col(PERSONA_ID)])
        .agg([
            col("p_purchase").mean().alias("mean_p_purchase"),
            col("p_purchase")
                .gt_eq(lit(0.5))
                .cast(DataType::Float64)
                .mean()
                .alias("share_predicted_buyers"),
            col("predicted_revenue")
                .mean()
                .alias("mean_predicted_revenue"),
            col("churn_risk").mean().alias("mean_churn_risk"),
            col("p_alive").mean().alias("mean_p_alive"),
        ]);
    if let Some(segments) = segments {
        let mix = segments::segment_mix(assignments, segments)?;
        let mix = mix.lazy().select([col(PERSONA_ID), col("segment_mix")]);
        summary = summary.left_join(mix, col(PERSONA_ID), col(PERSONA_ID));
    }
    summary
        .sort([PERSONA_ID], SortMultipleOptions::default())
        .collect()
        .map_err(polars_err("summarise the predictions per persona"))
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
