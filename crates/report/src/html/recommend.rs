//! The report sections of the `recommend` stage, drawn from its files in the output folder.

use std::path::Path;

use polars::prelude::DataFrame;

use super::{
    Bar, Cell, HBars, Page, Persona, Table, and_list, charts, escape, figure_with, fixed, frame,
    note, percent, persona_at,
};
use crate::Result;
use crate::run_dir::{files, read_optional};

const REPORT: &str = "recommend_report";
const PERSONA_RECS: &str = "persona_recommendations";

/// Adds the stage's sections when its files are in `dir`.
pub(super) fn add_sections(page: &mut Page, dir: &Path, personas: &[Persona]) -> Result<()> {
    let Some(report) = read_optional(dir, files::RECOMMEND_REPORT)? else {
        return Ok(());
    };
    let mut body = scores(&report)?;
    let tested = tested(&report)?;
    let popular_chosen = chosen(&report)?.as_deref() == Some("popular");
    if let Some(top) = read_optional(dir, files::PERSONA_RECOMMENDATIONS)? {
        body.push_str(&persona_items(&top, personas, popular_chosen)?);
    }
    body.push_str(&method(&tested, &split(&report)?));
    page.add("recommendations", "Recommendations", body);
    Ok(())
}

/// What the recommenders were scored on, from `recommend_report.csv`'s `test_events`
/// (files without it were scored on purchases): "the items users bought".
fn tested(df: &DataFrame) -> Result<String> {
    let events =
        frame::opt_strings(df, REPORT, "test_events")?.and_then(|v| v.into_iter().flatten().next());
    Ok(match events.as_deref() {
        None | Some("purchase") => "the items users bought".to_string(),
        Some("any weighted event") => {
            "the items users showed any interest in (the log has none of the test events)"
                .to_string()
        }
        Some(kinds) => format!("the items users had a {} event on", kinds.replace('_', " ")),
    })
}

/// When the recommenders were split, from `recommend_report.csv`'s `cutoff` and
/// `horizon_days` (older files have neither): "the cutoff, 2026-06-02 (28 days
/// before the as-of date)".
fn split(df: &DataFrame) -> Result<String> {
    let first = |v: Vec<Option<String>>| v.into_iter().flatten().next();
    let cutoff = frame::opt_strings(df, REPORT, "cutoff")?.and_then(first);
    let days = match frame::has(df, "horizon_days") {
        true => frame::i64s(df, REPORT, "horizon_days")?
            .into_iter()
            .flatten()
            .next(),
        false => None,
    };
    Ok(match (cutoff, days) {
        (Some(cutoff), Some(days)) => {
            format!("the cutoff, {cutoff} ({days} days before the as-of date)")
        }
        _ => "the cutoff (the as-of date minus the horizon)".to_string(),
    })
}

/// The recommender that made the lists, if the report names one.
fn chosen(df: &DataFrame) -> Result<Option<String>> {
    let models = frame::strings(df, REPORT, "model")?;
    let chosen = frame::bools(df, REPORT, "chosen")?;
    Ok((0..df.height())
        .find(|&i| chosen[i])
        .and_then(|i| models[i].clone()))
}

fn method(tested: &str, split: &str) -> String {
    format!(
        "<h3>Method</h3>\n<p>Interest in an item is the sum of the user's events on it, each \
         weighted by its type (by default a view 1, a cart 3, a purchase 5, a rating its \
         value), optionally halved every half-life. Popularity ranks items by how many users \
         showed interest in them, overall or within a persona. Item-kNN scores an item by the \
         user's interest in each item times their similarity (how often the same users show \
         interest in both). ALS factorises the interest matrix with confidence 1 + alpha × \
         interest (Hu, Koren &amp; Volinsky 2008), solved by conjugate gradient. Every \
         recommender is trained on the events before {} and scored on {} in the horizon \
         after it that were new to them, ranking every item \
         except those they already touched. A user without history gets their persona's \
         popular items, else the most popular ones (under the popularity baseline, the most \
         popular ones). Personas are those of the run date, so the per-persona popularity's \
         score looks slightly ahead.</p>\n",
        escape(split),
        escape(tested)
    )
}

/// The columns of `recommend_report.csv` the page shows, in its table's order.
const METRICS: [&str; 8] = [
    "ndcg",
    "precision",
    "recall",
    "map",
    "hit_rate",
    "coverage",
    "novelty",
    "users_evaluated",
];

fn scores(df: &DataFrame) -> Result<String> {
    let models = frame::strings(df, REPORT, "model")?;
    let status = frame::strings(df, REPORT, "status")?;
    let reasons = frame::opt_strings(df, REPORT, "reason")?;
    let chosen = frame::bools(df, REPORT, "chosen")?;
    let k = frame::i64s(df, REPORT, "k")?
        .into_iter()
        .flatten()
        .next()
        .unwrap_or(10);
    let names = METRICS;
    let mut metrics = Vec::new();
    for name in names {
        metrics.push((name, frame::f64s(df, REPORT, name)?));
    }
    let mut head: Vec<(&str, bool)> = vec![("recommender", false), ("status", false)];
    head.extend(names.iter().map(|n| (*n, true)));
    let mut table = Table::new(&format!("Scores at k = {k} on the horizon"), &head);
    let mut bars = Vec::new();
    for i in 0..df.height() {
        let name = models[i].clone().unwrap_or_default();
        let mut state = status[i].clone().unwrap_or_default();
        if chosen[i] {
            state.push_str(", chosen");
        }
        if let Some(reason) = reasons.as_ref().and_then(|r| r[i].clone()) {
            state = format!("{state}: {reason}");
        }
        let mut row = vec![Cell::Text(name.clone()), Cell::Text(state)];
        for (metric, values) in &metrics {
            let decimals = match *metric {
                "users_evaluated" => 0,
                "novelty" => 2,
                _ => 4,
            };
            row.push(Cell::Num(fixed(values[i], decimals)));
        }
        table.rows.push(row);
        if let Some(ndcg) = metrics[0].1[i] {
            bars.push(Bar {
                label: if chosen[i] {
                    format!("{name} (chosen)")
                } else {
                    name
                },
                value: ndcg,
                color: charts::color(i),
                note: fixed(Some(ndcg), 3),
            });
        }
    }
    let mut out = format!(
        "<p class=\"lead\">What to offer each user: every recommender is trained on the events \
         before the cutoff and scored on {} in the horizon after it that were new to them. NDCG@{k} rewards hits near the top of the list (1 is perfect); precision@{k} \
         is the share of the {k} items that were hits, recall@{k} the share of each user's new \
         items found, hit rate the share of users with at least one hit. Coverage is the share \
         of the catalogue recommended to anyone; novelty the mean surprise (bits) of the items \
         recommended: higher is less obvious. Popularity is the baseline to beat.</p>\n",
        escape(&tested(df)?)
    );
    if bars.is_empty() {
        out.push_str(&note(
            "No recommender could be scored on the horizon; see the reasons below.",
        ));
        out.push_str(&table.html());
        return Ok(out);
    }
    // Recommenders tied at the top are all named, the chosen one first.
    let top = bars
        .iter()
        .map(|b| b.value)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut tied: Vec<&Bar> = bars.iter().filter(|b| b.value == top).collect();
    tied.sort_by_key(|b| !b.label.ends_with(" (chosen)"));
    let names: Vec<String> = tied.iter().map(|b| b.label.clone()).collect();
    let best = match names.len() {
        0 => String::new(),
        1 => format!("; the best is {} at {}", names[0], fixed(Some(top), 3)),
        _ => format!(
            "; {} tie for the best at {}",
            and_list(&names),
            fixed(Some(top), 3)
        ),
    };
    let title = format!("NDCG@{k} of each recommender on the horizon");
    let x_desc = format!("NDCG@{k} (higher is better)");
    let svg = charts::hbars(&HBars {
        chart: "recommender ndcg",
        title: &title,
        x_desc: &x_desc,
        y_desc: "",
        bars: &bars,
        legend: &[],
        aria: &format!(
            "Horizontal bar chart of the NDCG at {k} of {} recommenders{best}",
            bars.len()
        ),
    })?;
    out.push_str(&figure_with(
        "recommenders",
        &svg,
        &format!(
            "NDCG@{k} per recommender; the chosen one made <code>user_recommendations.csv</code>."
        ),
        &[table],
        true,
    ));
    Ok(out)
}

fn persona_items(df: &DataFrame, personas: &[Persona], popular_chosen: bool) -> Result<String> {
    let ids = frame::i64s(df, PERSONA_RECS, "persona_id")?;
    let items = frame::strings(df, PERSONA_RECS, "item_id")?;
    let categories = frame::strings(df, PERSONA_RECS, "category")?;
    let shares = frame::f64s(df, PERSONA_RECS, "share")?;
    let lifts = frame::f64s(df, PERSONA_RECS, "lift")?;
    let offered = if popular_chosen {
        "Under the popularity baseline, which made the lists, users without history are \
         offered the most popular items instead."
    } else {
        "Users without history are offered these."
    };
    let mut out = format!(
        "<h3>Each persona's top items</h3>\n<p>The items the most users of each persona showed \
         interest in; lift is the persona's share over everyone's (above 1: more typical of \
         this persona than of users at large). {offered}</p>\n",
    );
    let mut start = 0;
    while start < df.height() {
        let id = ids[start];
        let end = (start..df.height())
            .find(|&i| ids[i] != id)
            .unwrap_or(df.height());
        let name = (id.and_then(|id| persona_at(personas, &id.to_string())))
            .map(|i| &personas[i])
            .map_or_else(
                || format!("#{}", id.map_or(String::new(), |i| i.to_string())),
                Persona::name,
            );
        let mut table = Table::new(
            &format!("Persona {name}"),
            &[
                ("item", false),
                ("category", false),
                ("share of users", true),
                ("lift", true),
            ],
        );
        for i in start..end {
            table.rows.push(vec![
                Cell::Text(items[i].clone().unwrap_or_default()),
                Cell::Text(categories[i].clone().unwrap_or_default()),
                Cell::Num(percent(shares[i], 1)),
                Cell::Num(fixed(lifts[i], 2)),
            ]);
        }
        out.push_str(&format!(
            "<details>\n<summary>{}</summary>\n{}</details>\n",
            escape(&name),
            table.html()
        ));
        start = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use polars::prelude::*;

    #[test]
    fn the_page_says_what_the_recommenders_were_scored_on() {
        let mut df = df!(
            "model" => ["popular"],
            "status" => ["scored"],
            "chosen" => [true],
            "k" => [10i64],
            "test_events" => ["view"],
        )
        .unwrap();
        for name in super::METRICS {
            df.with_column(Column::new(name.into(), vec![0.1f64]))
                .unwrap();
        }
        let html = super::scores(&df).unwrap();
        assert!(
            html.contains("scored on the items users had a view event on"),
            "{html}"
        );
        assert!(!html.contains("bought"), "{html}");
        let weighted = df
            .clone()
            .lazy()
            .with_column(lit("any weighted event").alias("test_events"));
        let weighted = weighted.collect().unwrap();
        assert!(super::tested(&weighted).unwrap().contains("any interest"));
        // Files from before the column: scored on purchases.
        let old = df.drop("test_events").unwrap();
        assert_eq!(super::tested(&old).unwrap(), "the items users bought");
        // The split's date where the file gives it.
        assert_eq!(
            super::split(&old).unwrap(),
            "the cutoff (the as-of date minus the horizon)"
        );
        let mut dated = old.clone();
        dated
            .with_column(Column::new("cutoff".into(), ["2026-06-02"]))
            .unwrap();
        dated
            .with_column(Column::new("horizon_days".into(), [28i64]))
            .unwrap();
        assert_eq!(
            super::split(&dated).unwrap(),
            "the cutoff, 2026-06-02 (28 days before the as-of date)"
        );
        let top = df!(
            "persona_id" => [1i64],
            "item_id" => ["i1"],
            "category" => ["books"],
            "share" => [0.5],
            "lift" => [2.0],
        )
        .unwrap();
        let popular = super::persona_items(&top, &[], true).unwrap();
        assert!(
            popular.contains("offered the most popular items instead"),
            "{popular}"
        );
        let other = super::persona_items(&top, &[], false).unwrap();
        assert!(other.contains("Users without history are offered these."));
    }

    #[test]
    fn a_tie_at_the_top_names_the_chosen_recommender_on_an_axis_from_0() {
        let n = 3;
        let mut df = df!(
            "model" => ["popular", "item_knn", "als"],
            "status" => ["scored"; 3],
            "chosen" => [true, false, false],
            "k" => [10i64; 3],
        )
        .unwrap();
        for name in super::METRICS {
            df.with_column(Column::new(name.into(), vec![0.0f64; n]))
                .unwrap();
        }
        let html = super::scores(&df).unwrap();
        assert!(
            html.contains("; popular (chosen), item_knn and als tie for the best at 0.000"),
            "{html}"
        );
        // No tick below 0: NDCG cannot be negative.
        let texts = html.split("</text>").filter_map(|t| t.rsplit('>').next());
        let negative = texts.map(str::trim).filter(|t| t.starts_with('-')).count();
        assert_eq!(negative, 0, "{html}");
    }
}
