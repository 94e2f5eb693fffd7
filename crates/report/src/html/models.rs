//! The report sections of the predictions: scores on the holdout, calibration and lift.

use polars::prelude::DataFrame;

use super::{
    Bar, Cell, HBars, LegendEntry, Mark, Panel, Panels, Table, charts, escape, figure, figure_with,
    fixed, frame, note, number,
};
use crate::Result;
use crate::run_record::ModelsView;

/// Distinct values in first-seen order.
fn distinct(values: &[Option<String>]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values.iter().flatten() {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    out
}

pub(super) fn model_section(df: &DataFrame, split: Option<&ModelsView>) -> Result<String> {
    const T: &str = "model_report";
    let predictors = frame::strings(df, T, "predictor")?;
    let targets = frame::strings(df, T, "target")?;
    let status = frame::opt_strings(df, T, "status")?;
    // Who each row was scored on: every held-out user, or the held-out customers.
    let population = frame::opt_strings(df, T, "population")?;
    let on_customers = |i: usize| {
        population
            .as_ref()
            .is_some_and(|p| p[i].as_deref() == Some("customers"))
    };
    // Why a predictor was skipped, when one was.
    let reason =
        frame::opt_strings(df, T, "reason")?.filter(|r| r.iter().flatten().any(|r| !r.is_empty()));
    let metric_names = [
        "auc",
        "log_loss",
        "brier",
        "lift_top_decile",
        "positives",
        "negatives",
        "scored_users",
        "correlation",
        "mae",
        "top_decile_revenue_share",
    ];
    let mut metrics = Vec::new();
    for name in metric_names {
        if let Some(v) = frame::opt_f64s(df, T, name)?.filter(|v| v.iter().any(Option::is_some)) {
            metrics.push((name, v));
        }
    }
    if df.height() == 0 {
        return Ok(note("No predictor was scored in this run."));
    }
    let mut head: Vec<(&str, bool)> = vec![("predictor", false), ("target", false)];
    if status.is_some() {
        head.push(("status", false));
    }
    if population.is_some() {
        head.push(("population", false));
    }
    if reason.is_some() {
        head.push(("reason", false));
    }
    head.extend(metrics.iter().map(|(n, _)| (*n, true)));
    let mut table = Table::new("Scores on the time-based holdout", &head);
    for i in 0..df.height() {
        let mut row = vec![
            Cell::Text(predictors[i].clone().unwrap_or_default()),
            Cell::Text(targets[i].clone().unwrap_or_default()),
        ];
        if let Some(s) = &status {
            row.push(Cell::Text(s[i].clone().unwrap_or_default()));
        }
        if let Some(p) = &population {
            row.push(Cell::Text(p[i].clone().unwrap_or_default()));
        }
        if let Some(r) = &reason {
            row.push(Cell::Text(r[i].clone().unwrap_or_default()));
        }
        row.extend(metrics.iter().map(|(_, v)| Cell::Num(number(v[i]))));
        table.rows.push(row);
    }
    let mut out = String::new();
    // When and over how long: what every figure of the section is about.
    if let Some((cutoff, days)) = split.and_then(|m| Some((m.cutoff.as_deref()?, m.horizon_days?)))
    {
        out.push_str(&format!(
            "<p class=\"lead\">The predictions in <code>user_predictions.csv</code> and on the persona cards are for the {days} days after the as-of date. Below, each predictor is scored on the {days} days after the cutoff, {}, fitted on what came before it.</p>\n",
            escape(cutoff)
        ));
    }
    out.push_str(
        "<p class=\"lead\">Each predictor is scored, where the holdout allows it, on users it was not fitted on, by what they did in the horizon after a cutoff date, from what came before it. The machine-learning models and the rules are scored on every held-out user; BG/NBD and Pareto/NBD describe customers, so they are scored on the held-out users who bought before the cutoff, and each model is scored on those customers too (population <code>customers</code>, marked so in the chart): compare AUCs within one population. A rule says 0 or 1 and P(alive) is not the chance of an event in the horizon, so neither has a log loss or Brier score. AUC: 0.5 is chance, 1 is perfect ranking. Log loss and Brier: lower is better. Lift in the top decile: how many times more often the 10% of users scored highest do the thing than users at large. Revenue: the correlation and mean absolute error of predicted against actual spend, and the share of it the 10% predicted highest made.</p>\n",
    );
    let none_scored = status
        .as_ref()
        .is_some_and(|s| s.iter().all(|s| s.as_deref() != Some("scored")));
    if none_scored {
        out.push_str(&note(
            "No predictor could be scored on this run's holdout: each row's reason says why. The predictions are unchecked.",
        ));
    }
    let auc = metrics.iter().find(|(n, _)| *n == "auc").map(|(_, v)| v);
    if let Some(auc) = auc.filter(|a| a.iter().any(Option::is_some)) {
        // One colour per predictor that has an AUC, named in the legend.
        let with_auc: Vec<Option<String>> = (0..df.height())
            .filter(|&i| auc[i].is_some())
            .map(|i| predictors[i].clone())
            .collect();
        let predictor_names = distinct(&with_auc);
        let bars: Vec<Bar> = (0..df.height())
            .filter(|&i| auc[i].is_some())
            .map(|i| {
                let p = predictors[i].clone().unwrap_or_default();
                let index = predictor_names.iter().position(|n| *n == p).unwrap_or(0);
                Bar {
                    label: format!(
                        "{p} → {}{}",
                        targets[i].clone().unwrap_or_default(),
                        if on_customers(i) { " (customers)" } else { "" }
                    ),
                    value: auc[i].unwrap_or(0.0),
                    color: charts::color(index),
                    note: format!("AUC {}", fixed(auc[i], 3)),
                }
            })
            .collect();
        let svg = charts::hbars(&HBars {
            chart: "model auc",
            title: "AUC of each predictor and target on the holdout",
            x_desc: "AUC (0.5 = chance)",
            y_desc: "",
            bars: &bars,
            legend: &(predictor_legend(&predictor_names).into_iter())
                .map(|entry| LegendEntry {
                    mark: Mark::Box,
                    ..entry
                })
                .collect::<Vec<_>>(),
            aria: &format!(
                "Horizontal bar chart of the AUC of {} predictor and target pairs",
                bars.len()
            ),
        })?;
        out.push_str(&figure_with(
            "auc",
            &svg,
            "Area under the ROC curve per predictor (colour) and target.",
            &[table],
            true,
        ));
    } else {
        out.push_str(&table.html());
    }
    Ok(out)
}

/// Each row's predictor, with " (customers)" after it when the row was scored on
/// the held-out customers rather than every held-out user.
fn named_with_population(df: &DataFrame, table: &'static str) -> Result<Vec<Option<String>>> {
    let predictors = frame::strings(df, table, "predictor")?;
    let Some(population) = frame::opt_strings(df, table, "population")? else {
        return Ok(predictors);
    };
    Ok(predictors
        .into_iter()
        .zip(population)
        .map(|(p, population)| match population.as_deref() {
            Some("customers") => p.map(|p| format!("{p} (customers)")),
            _ => p,
        })
        .collect())
}

/// Row indices per predictor, in first-seen order.
type ByPredictor = Vec<(String, Vec<usize>)>;

/// Groups rows by target, then predictor, keeping first-seen order.
fn by_target_and_predictor(
    targets: &[Option<String>],
    predictors: &[Option<String>],
) -> Vec<(String, ByPredictor)> {
    let mut out: Vec<(String, ByPredictor)> = Vec::new();
    for i in 0..targets.len() {
        let t = targets[i].clone().unwrap_or_default();
        let p = predictors[i].clone().unwrap_or_default();
        let ti = match out.iter().position(|(name, _)| *name == t) {
            Some(ti) => ti,
            None => {
                out.push((t, Vec::new()));
                out.len() - 1
            }
        };
        let group = &mut out[ti].1;
        match group.iter().position(|(name, _)| *name == p) {
            Some(pi) => group[pi].1.push(i),
            None => group.push((p, vec![i])),
        }
    }
    out
}

/// One line per predictor of `(x, y)` points in x order, coloured by its place in
/// `names`.
fn series(
    per_predictor: &ByPredictor,
    names: &[String],
    x: &[Option<f64>],
    y: &[Option<f64>],
) -> Vec<charts::Series> {
    (per_predictor.iter())
        .map(|(p, rows)| {
            let mut points: Vec<(f64, f64)> =
                rows.iter().filter_map(|&i| Some((x[i]?, y[i]?))).collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let at = names.iter().position(|n| n == p).unwrap_or(0);
            charts::Series {
                color: charts::color(at),
                dash: charts::dash(at),
                points,
            }
        })
        .collect()
}

fn predictor_legend(names: &[String]) -> Vec<LegendEntry> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| LegendEntry {
            label: n.clone(),
            color: charts::color(i),
            mark: Mark::Line(charts::dash(i)),
        })
        .collect()
}

pub(super) fn calibration_section(df: &DataFrame) -> Result<String> {
    const T: &str = "calibration";
    let predictors = named_with_population(df, T)?;
    let targets = frame::strings(df, T, "target")?;
    let bins = frame::opt_f64s(df, T, "bin")?;
    let predicted = frame::f64s(df, T, "mean_predicted")?;
    let observed = frame::f64s(df, T, "observed_rate")?;
    let counts = frame::opt_f64s(df, T, "count")?;
    if df.height() == 0 {
        return Ok(note(
            "No classifier was scored, so there is no calibration to draw; the scores say why.",
        ));
    }
    let names = distinct(&predictors);
    let groups = by_target_and_predictor(&targets, &predictors);
    let panels: Vec<Panel> = groups
        .iter()
        .map(|(target, per_predictor)| Panel {
            title: format!("target: {target}"),
            x_desc: "mean predicted probability".into(),
            y_desc: "observed rate".into(),
            series: series(per_predictor, &names, &predicted, &observed),
            x_range: Some((0.0, 1.0)),
            y_range: Some((0.0, 1.0)),
            integer_x: false,
            marker: None,
            reference: Some(charts::Reference::Diagonal),
        })
        .collect();
    let svg = charts::panels(&Panels {
        chart: "calibration",
        title: "Calibration: predicted probability against observed rate",
        panels: &panels,
        columns: 2,
        legend: &predictor_legend(&names),
        aria: &format!(
            "Calibration curves of {} predictors for {} targets; points on the grey diagonal are perfectly calibrated",
            names.len(),
            groups.len()
        ),
    })?;
    let mut table = Table::new(
        "Calibration bins",
        &[
            ("predictor", false),
            ("target", false),
            ("bin", true),
            ("mean_predicted", true),
            ("observed_rate", true),
            ("count", true),
        ],
    );
    for i in 0..df.height() {
        table.rows.push(vec![
            Cell::Text(predictors[i].clone().unwrap_or_default()),
            Cell::Text(targets[i].clone().unwrap_or_default()),
            Cell::Num(number(bins.as_ref().and_then(|b| b[i]))),
            Cell::Num(fixed(predicted[i], 3)),
            Cell::Num(fixed(observed[i], 3)),
            Cell::Num(number(counts.as_ref().and_then(|c| c[i]))),
        ]);
    }
    Ok(figure(
        "calibration",
        &svg,
        "Users are binned by predicted probability; a well-calibrated predictor's points lie on the grey diagonal, above it it under-predicts, below it over-predicts.",
        &[table],
    ))
}

pub(super) fn lift_section(df: &DataFrame) -> Result<String> {
    const T: &str = "lift";
    let predictors = named_with_population(df, T)?;
    let targets = frame::strings(df, T, "target")?;
    let deciles = frame::f64s(df, T, "decile")?;
    let lift = frame::f64s(df, T, "lift")?;
    if df.height() == 0 {
        return Ok(note(
            "No classifier was scored, so there is no lift to draw; the scores say why.",
        ));
    }
    let names = distinct(&predictors);
    let groups = by_target_and_predictor(&targets, &predictors);
    let (dmin, dmax) = deciles
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &d| {
            (a.min(d), b.max(d))
        });
    let x_range = dmin.is_finite().then_some((dmin - 0.5, dmax + 0.5));
    let panels: Vec<Panel> = groups
        .iter()
        .map(|(target, per_predictor)| Panel {
            title: format!("target: {target}"),
            x_desc: "decile (1 = highest scores)".into(),
            y_desc: "lift".into(),
            series: series(per_predictor, &names, &deciles, &lift),
            x_range,
            y_range: None,
            integer_x: true,
            marker: None,
            reference: Some(charts::Reference::Horizontal(1.0)),
        })
        .collect();
    let svg = charts::panels(&Panels {
        chart: "lift",
        title: "Lift by decile of predicted score",
        panels: &panels,
        columns: 2,
        legend: &predictor_legend(&names),
        aria: &format!(
            "Line charts of lift by decile for {} predictors and {} targets; the grey line at 1 is no better than chance",
            names.len(),
            groups.len()
        ),
    })?;
    let mut table = Table::new(
        "Lift by decile",
        &[
            ("predictor", false),
            ("target", false),
            ("decile", true),
            ("lift", true),
        ],
    );
    for i in 0..df.height() {
        table.rows.push(vec![
            Cell::Text(predictors[i].clone().unwrap_or_default()),
            Cell::Text(targets[i].clone().unwrap_or_default()),
            Cell::Num(number(deciles[i])),
            Cell::Num(fixed(lift[i], 3)),
        ]);
    }
    Ok(figure(
        "lift",
        &svg,
        "Users sorted by predicted score and cut into ten equal groups; lift is each group's outcome rate over the overall rate (grey line: 1, no better than picking users at random).",
        &[table],
    ))
}

#[cfg(test)]
mod tests {
    use polars::prelude::*;

    use super::*;

    #[test]
    fn the_scores_say_why_a_predictor_was_skipped_and_show_revenue() {
        let df = df!(
            "predictor" => ["logistic", "tree", "ml"],
            "target" => ["p_purchase", "p_purchase", "revenue"],
            "status" => ["scored", "skipped", "scored"],
            "reason" => [None, Some("only 0 positives in the holdout"), None],
            "auc" => [Some(0.8), None, None],
            "correlation" => [None, None, Some(0.744)],
            "mae" => [None, None, Some(84.58)],
        )
        .unwrap();
        let split = ModelsView {
            cutoff: Some("2026-06-02".into()),
            horizon_days: Some(28),
        };
        let html = model_section(&df, Some(&split)).unwrap();
        assert!(html.contains("only 0 positives in the holdout"), "{html}");
        // The section says when, and over how long, it scores and predicts.
        assert!(
            html.contains("the 28 days after the as-of date")
                && html.contains("the 28 days after the cutoff, 2026-06-02"),
            "{html}"
        );
        assert!(
            !model_section(&df, None)
                .unwrap()
                .contains("after the as-of date")
        );
        assert!(
            html.contains(">correlation<") && html.contains("0.744"),
            "{html}"
        );
        assert!(html.contains("84.58"), "{html}");
        assert!(!html.contains("No predictor could be scored"), "{html}");
        // Every row skipped: the page says so rather than only that they are scored.
        let skipped = df!(
            "predictor" => ["logistic", "revenue"],
            "target" => ["p_purchase", "revenue"],
            "status" => ["skipped", "skipped"],
            "reason" => ["only 56 positives in the holdout", "only 56 positives in the holdout"],
        )
        .unwrap();
        let html = model_section(&skipped, None).unwrap();
        assert!(
            html.contains("No predictor could be scored on this run&#39;s holdout"),
            "{html}"
        );
    }
}
