//! The output tables of the profile stage.

use std::collections::BTreeMap;

use polars::prelude::*;
use userlens_model::columns::{LABEL, PERSONA_ID, USER_ID};
use userlens_model::stats::percent_text;

use crate::error::{Result, WhileDoing};

/// Column holding each user's most bought category.
const TOP_CATEGORY: &str = "top_category";
/// Column holding each user's most frequent query.
const TOP_QUERY: &str = "top_query";
/// Number of values listed in a text summary.
const TOP_VALUES: usize = 3;

/// Per user: persona, label, distance to the centroid, then the raw clustering features.
pub(crate) fn assignments(
    df: &DataFrame,
    user_ids: Vec<String>,
    persona_of: &[u32],
    labels: &[String],
    distances: Vec<f64>,
    features: &[String],
) -> Result<DataFrame> {
    let n = df.height();
    let user_labels: Vec<&str> = persona_of
        .iter()
        .map(|&p| labels.get(p as usize).map_or("", String::as_str))
        .collect();
    let mut columns = vec![
        Column::new(USER_ID.into(), user_ids),
        Column::new(
            PERSONA_ID.into(),
            persona_of.iter().map(|&p| p + 1).collect::<Vec<u32>>(),
        ),
        Column::new(LABEL.into(), user_labels),
        Column::new("distance".into(), distances),
    ];
    for name in features {
        columns.push(
            df.column(name)
                .while_doing(|| format!("copy feature `{name}` to the assignments"))?
                .clone(),
        );
    }
    DataFrame::new(n, columns).while_doing(|| "build the assignments table".to_string())
}

/// The personas table with each per-persona summary table (keyed by `persona_id`)
/// left-joined on, in order, sorted by `persona_id`.
pub fn enrich_personas(personas: &DataFrame, summaries: &[DataFrame]) -> Result<DataFrame> {
    let mut out = personas.clone().lazy();
    for summary in summaries {
        out = out.left_join(summary.clone().lazy(), col(PERSONA_ID), col(PERSONA_ID));
    }
    out.sort([PERSONA_ID], SortMultipleOptions::default())
        .collect()
        .while_doing(|| "add the per-persona summaries to the personas table".to_string())
}

/// What the persona table needs besides the input frame.
pub(crate) struct PersonaSummary<'a> {
    /// Persona (0-based) of every user, in frame order.
    pub(crate) persona_of: &'a [u32],
    /// Persona labels by persona.
    pub(crate) labels: &'a [String],
    /// Members per persona.
    pub(crate) sizes: &'a [u64],
    /// `distinguishing` text per persona.
    pub(crate) distinguishing: Vec<String>,
    /// Numeric input columns to average.
    pub(crate) numeric: &'a [String],
    /// Text input columns to summarise.
    pub(crate) text: &'a [String],
}

/// Per persona: size, share, raw means of every numeric column, most common text
/// values, and the distinguishing features.
pub(crate) fn personas(df: &DataFrame, summary: PersonaSummary<'_>) -> Result<DataFrame> {
    let k = summary.sizes.len();
    let n = df.height();
    let mut columns = vec![
        Column::new(PERSONA_ID.into(), (1..=k as u32).collect::<Vec<u32>>()),
        Column::new(LABEL.into(), summary.labels.to_vec()),
        Column::new(
            "users".into(),
            summary
                .sizes
                .iter()
                .map(|&s| u32::try_from(s).unwrap_or(u32::MAX))
                .collect::<Vec<u32>>(),
        ),
        Column::new(
            "share".into(),
            summary
                .sizes
                .iter()
                .map(|&s| s as f64 / n.max(1) as f64)
                .collect::<Vec<f64>>(),
        ),
    ];
    for name in summary.numeric {
        let means = persona_means(df, name, summary.persona_of, k)?;
        columns.push(Column::new(format!("mean_{name}").into(), means));
    }
    let mut text: Vec<(&String, String)> = summary
        .text
        .iter()
        .map(|name| {
            let out = match name.as_str() {
                TOP_CATEGORY => "top_categories".to_string(),
                TOP_QUERY => "top_queries".to_string(),
                other => format!("common_{other}"),
            };
            (name, out)
        })
        .collect();
    let rank = |name: &str| match name {
        TOP_CATEGORY => 0,
        TOP_QUERY => 1,
        _ => 2,
    };
    text.sort_by_key(|(name, _)| rank(name));
    for (name, out) in text {
        let context = || format!("summarise column `{name}` per persona");
        let values = df
            .column(name)
            .while_doing(context)?
            .str()
            .while_doing(context)?;
        let mut counts: Vec<BTreeMap<&str, u64>> = vec![BTreeMap::new(); k];
        for (value, &p) in values.iter().zip(summary.persona_of) {
            if let Some(v) = value {
                *counts[p as usize].entry(v).or_default() += 1;
            }
        }
        let summaries: Vec<Option<String>> = counts
            .into_iter()
            .zip(summary.sizes)
            .map(|(counts, &size)| top_values(counts, size))
            .collect();
        columns.push(Column::new(out.into(), summaries));
    }
    columns.push(Column::new("distinguishing".into(), summary.distinguishing));
    DataFrame::new(k, columns).while_doing(|| "build the personas table".to_string())
}

/// The mean of each persona's finite values of column `name` (`persona_of[i]` is row
/// i's persona of `k`), as `mean_<feature>` publishes it; `None` for a persona
/// without any.
pub(crate) fn persona_means(
    df: &DataFrame,
    name: &str,
    persona_of: &[u32],
    k: usize,
) -> Result<Vec<Option<f64>>> {
    let context = || format!("average column `{name}` per persona");
    let series = df
        .column(name)
        .while_doing(context)?
        .as_materialized_series()
        .cast(&DataType::Float64)
        .while_doing(context)?;
    let values = series.f64().while_doing(context)?;
    let mut sums = vec![0.0; k];
    let mut counts = vec![0u64; k];
    for (value, &p) in values.iter().zip(persona_of) {
        if let Some(v) = value
            && v.is_finite()
            && (p as usize) < k
        {
            sums[p as usize] += v;
            counts[p as usize] += 1;
        }
    }
    Ok(sums
        .iter()
        .zip(&counts)
        .map(|(&s, &c)| Some(s / c as f64).filter(|m| c > 0 && m.is_finite()))
        .collect())
}

/// "electronics 62%, books 20%, toys 9%": the most common values with their share of
/// the persona's users; ties go to the alphabetically first value. `None` without values.
fn top_values(counts: BTreeMap<&str, u64>, size: u64) -> Option<String> {
    let mut entries: Vec<(&str, u64)> = counts.into_iter().collect();
    // stable sort keeps the BTreeMap's name order among equal counts
    entries.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    let parts: Vec<String> = entries
        .into_iter()
        .take(TOP_VALUES)
        .map(|(value, count)| {
            let share = count as f64 / size.max(1) as f64;
            format!("{value} {}", percent_text(share))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// One row per k tried.
pub(crate) struct KRow {
    /// k tried.
    pub(crate) k: usize,
    /// Sum of squared distances to the centroids.
    pub(crate) inertia: f64,
    /// Mean silhouette on the sample.
    pub(crate) silhouette: Option<f64>,
    /// Calinski-Harabasz index.
    pub(crate) calinski_harabasz: Option<f64>,
    /// Davies-Bouldin index.
    pub(crate) davies_bouldin: Option<f64>,
    /// Whether this k was kept.
    pub(crate) chosen: bool,
}

/// The `k_selection` table.
pub(crate) fn k_selection(rows: &[KRow]) -> Result<DataFrame> {
    let columns = vec![
        Column::new(
            "k".into(),
            rows.iter()
                .map(|r| u32::try_from(r.k).unwrap_or(u32::MAX))
                .collect::<Vec<u32>>(),
        ),
        Column::new(
            "inertia".into(),
            rows.iter().map(|r| r.inertia).collect::<Vec<f64>>(),
        ),
        Column::new(
            "silhouette".into(),
            rows.iter()
                .map(|r| r.silhouette)
                .collect::<Vec<Option<f64>>>(),
        ),
        Column::new(
            "calinski_harabasz".into(),
            rows.iter()
                .map(|r| r.calinski_harabasz)
                .collect::<Vec<Option<f64>>>(),
        ),
        Column::new(
            "davies_bouldin".into(),
            rows.iter()
                .map(|r| r.davies_bouldin)
                .collect::<Vec<Option<f64>>>(),
        ),
        Column::new(
            "chosen".into(),
            rows.iter().map(|r| r.chosen).collect::<Vec<bool>>(),
        ),
    ];
    DataFrame::new(rows.len(), columns).while_doing(|| "build the k selection table".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_top_values() {
        let counts: BTreeMap<&str, u64> = [
            ("toys", 9),
            ("books", 20),
            ("electronics", 62),
            ("garden", 9),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            top_values(counts, 100).as_deref(),
            Some("electronics 62%, books 20%, garden 9%")
        );
        assert_eq!(top_values(BTreeMap::new(), 4), None);
    }

    #[test]
    fn summaries_join_onto_the_personas_in_order() {
        let personas = df!(PERSONA_ID => [2u32, 1, 3], LABEL => ["b", "a", "c"]).unwrap();
        let means = df!(PERSONA_ID => [1u32, 2], "mean_p_purchase" => [0.25, 0.75]).unwrap();
        let mix = df!(PERSONA_ID => [3u32, 2], "segment_mix" => ["x 100%", "y 100%"]).unwrap();
        let enriched = enrich_personas(&personas, &[means, mix]).unwrap();
        let expected = df!(
            PERSONA_ID => [1u32, 2, 3],
            LABEL => ["a", "b", "c"],
            "mean_p_purchase" => [Some(0.25), Some(0.75), None],
            "segment_mix" => [None, Some("y 100%"), Some("x 100%")],
        )
        .unwrap();
        assert!(enriched.equals_missing(&expected), "{enriched}");
        let unchanged = enrich_personas(&personas, &[]).unwrap();
        assert_eq!(
            unchanged.column(LABEL).unwrap().str().unwrap().get(0),
            Some("a")
        );
    }
}
