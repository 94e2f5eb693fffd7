//! The repeat-purchase section: of each cohort's first-time buyers, the share who
//! bought again within the repeat window, and the same per persona and segment.

use super::*;

pub(super) fn repeat_purchase(
    df: &DataFrame,
    by_group: Option<&DataFrame>,
    personas: &[Persona],
) -> Result<String> {
    const T: &str = "repeat_purchase";
    if df.height() == 0 {
        return Ok(note("No purchase before the as-of date."));
    }
    let cohorts = frame::strings(df, T, "cohort")?;
    let buyers = frame::f64s(df, T, "buyers")?;
    let repeats = frame::f64s(df, T, "repeat_buyers")?;
    let rate = frame::f64s(df, T, "rate")?;
    let complete = frame::bools(df, T, "complete")?;
    let first = df.height().saturating_sub(MAX_COHORTS);
    let bars: Vec<Bar> = (first..df.height())
        .map(|i| Bar {
            label: text(&cohorts[i]),
            value: rate[i].unwrap_or(0.0) * 100.0,
            color: if complete[i] {
                charts::color(0)
            } else {
                charts::GREY
            },
            note: format!(
                "{}% of {}{}",
                percent(rate[i], 0),
                number(buyers[i]),
                if complete[i] { "" } else { " · window open" }
            ),
        })
        .collect();
    let shown = if first > 0 {
        format!("the latest {} of {} cohorts", bars.len(), df.height())
    } else {
        format!("{} {}", bars.len(), plural(bars.len() as f64, "cohort"))
    };
    let svg = charts::hbars(&HBars {
        chart: "repeat purchase",
        title: "Share of each cohort's first-time buyers who bought again within the window",
        x_desc: "repeat buyers (%)",
        y_desc: "cohort of the first purchase",
        bars: &bars,
        legend: &[
            LegendEntry {
                label: "window over".into(),
                color: charts::color(0),
                mark: Mark::Box,
            },
            LegendEntry {
                label: "window still open".into(),
                color: charts::GREY,
                mark: Mark::Box,
            },
        ],
        aria: &format!("Horizontal bars of the repeat purchase rate of {shown}"),
    })?;
    let mut table = Table::new(
        "Repeat purchase (repeat_purchase.csv)",
        &[
            ("cohort", false),
            ("buyers", true),
            ("repeat_buyers", true),
            ("rate (%)", true),
            ("complete", false),
        ],
    );
    for i in 0..df.height() {
        table.rows.push(vec![
            Cell::Text(text(&cohorts[i])),
            Cell::Num(number(buyers[i])),
            Cell::Num(number(repeats[i])),
            Cell::Num(percent(rate[i], 1)),
            Cell::yes_no(complete[i]),
        ]);
    }
    let mut tables = vec![table];
    if let Some(groups) = by_group {
        tables.extend(per_group(groups, personas)?);
    }
    let drawn = if first > 0 {
        format!(" The chart draws {shown}; the table holds them all.")
    } else {
        String::new()
    };
    let caption = format!(
        "Buyers by the period of their first purchase, and the share who bought again at a later time within the repeat window (repeat_window_days after the first purchase). A cohort is grey while the window of some of its buyers is not over at the as-of date: its rate can still rise.{drawn}"
    );
    Ok(figure(
        "loyalty-repeat",
        &svg,
        &crate::html::escape(&caption),
        &tables,
    ))
}

/// Each group's buyers and repeat buyers summed over its cohorts whose window is
/// over, in the table's order of groups; none while no window is over.
fn per_group(df: &DataFrame, personas: &[Persona]) -> Result<Option<Table>> {
    const T: &str = "repeat_purchase_by_group";
    let kinds = frame::strings(df, T, "group")?;
    let values = frame::strings(df, T, "value")?;
    let buyers = frame::f64s(df, T, "buyers")?;
    let repeats = frame::f64s(df, T, "repeat_buyers")?;
    let complete = frame::bools(df, T, "complete")?;
    let mut sums: Vec<((String, String), [f64; 2])> = Vec::new();
    for i in 0..df.height() {
        let key = (text(&kinds[i]), text(&values[i]));
        let at = match sums.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                sums.push((key, [0.0; 2]));
                sums.len() - 1
            }
        };
        if complete[i] {
            sums[at].1[0] += buyers[i].unwrap_or(0.0);
            sums[at].1[1] += repeats[i].unwrap_or(0.0);
        }
    }
    if !complete.iter().any(|&c| c) {
        return Ok(None);
    }
    let mut table = Table::new(
        "Repeat purchase by group, cohorts whose window is over (repeat_purchase_by_group.csv)",
        &[
            ("group", false),
            ("buyers", true),
            ("repeat_buyers", true),
            ("rate (%)", true),
        ],
    );
    for ((kind, value), [b, r]) in sums {
        table.rows.push(vec![
            Cell::Text(group_name(&kind, &value, personas)),
            Cell::Num(number(Some(b))),
            Cell::Num(number(Some(r))),
            Cell::Num(percent((b > 0.0).then(|| r / b), 1)),
        ]);
    }
    Ok(Some(table))
}
