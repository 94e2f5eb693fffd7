//! The key drivers section: per outcome, the features most correlated with it, with
//! the standardised coefficients of one regression on all of them.

use super::*;

/// Drivers drawn per target.
const TOP_DRIVERS: usize = 8;

pub(super) fn drivers(df: &DataFrame) -> Result<String> {
    const T: &str = "drivers";
    if df.height() == 0 {
        return Ok(note("No outcome to relate the features to."));
    }
    let targets = frame::strings(df, T, "target")?;
    let features = frame::strings(df, T, "feature")?;
    let users = frame::f64s(df, T, "users")?;
    let rho = frame::f64s(df, T, "spearman")?;
    let beta = frame::f64s(df, T, "beta")?;
    // The file lists each target's features by the size of their rank correlation.
    let mut shown = Vec::new();
    let mut seen: Vec<(String, usize)> = Vec::new();
    for i in 0..df.height() {
        let t = text(&targets[i]);
        let at = match seen.iter().position(|(name, _)| *name == t) {
            Some(at) => at,
            None => {
                seen.push((t, 0));
                seen.len() - 1
            }
        };
        if seen[at].1 < TOP_DRIVERS && rho[i].is_some() {
            shown.push(i);
            seen[at].1 += 1;
        }
    }
    if shown.is_empty() {
        return Ok(note(
            "No correlation could be measured: among these users the features or the \
             outcomes do not vary, or too few users have both.",
        ));
    }
    // Only the outcomes with a bar drawn are in the legend and its colours.
    let target_names: Vec<&String> = (seen.iter())
        .filter(|(_, drawn)| *drawn > 0)
        .map(|(t, _)| t)
        .collect();
    let bars: Vec<Bar> = shown
        .iter()
        .map(|&i| Bar {
            label: format!("{}: {}", text(&targets[i]), text(&features[i])),
            value: rho[i].unwrap_or(0.0),
            color: charts::color(
                target_names
                    .iter()
                    .position(|t| **t == text(&targets[i]))
                    .unwrap_or(0),
            ),
            note: format!(
                "ρ {} · β {} · n {}",
                fixed(rho[i], 2),
                fixed(beta[i], 2),
                fixed(users[i], 0)
            ),
        })
        .collect();
    let legend: Vec<LegendEntry> = target_names
        .iter()
        .enumerate()
        .map(|(k, t)| LegendEntry {
            label: t.to_string(),
            color: charts::color(k),
            mark: Mark::Box,
        })
        .collect();
    let svg = charts::hbars(&HBars {
        chart: "drivers",
        title: "Features that go with satisfaction and with staying",
        x_desc: "Spearman rank correlation",
        y_desc: "",
        bars: &bars,
        legend: &legend,
        aria: &format!(
            "Horizontal bars of the rank correlation of the top features with {} {}",
            target_names.len(),
            plural(target_names.len() as f64, "outcome")
        ),
    })?;
    let mut table = Table::new(
        "Top drivers (drivers.csv holds every feature)",
        &[
            ("target", false),
            ("feature", false),
            ("users", true),
            ("spearman", true),
            ("beta", true),
        ],
    );
    for &i in &shown {
        table.rows.push(vec![
            Cell::Text(text(&targets[i])),
            Cell::Text(text(&features[i])),
            Cell::Num(number(users[i])),
            Cell::Num(fixed(rho[i], 3)),
            Cell::Num(fixed(beta[i], 3)),
        ]);
    }
    // The outcomes this run has, in the order the stage writes them.
    let outcomes: Vec<&str> = [
        ("nps_score", "the survey score"),
        ("mean_rating", "the mean rating given"),
        ("retained", "being active again in the last complete period"),
    ]
    .into_iter()
    .filter(|(target, _)| targets.iter().any(|t| t.as_deref() == Some(*target)))
    .map(|(_, words)| words)
    .collect();
    Ok(figure(
        "loyalty-drivers",
        &svg,
        &format!(
            "For each outcome ({}), the features whose rank correlation with it is largest, with the standardised coefficient of a regression on all features at once. Correlation, not cause: features are measured up to the as-of date, and for staying up to the start of the period that defines it, where the features stage made them.",
            outcomes.join(", ")
        ),
        &[table],
    ))
}
