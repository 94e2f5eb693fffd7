//! The report sections of the `loyalty` stage, drawn from its files in the output folder:
//! the cohort triangle, retention curves, lifecycle, stickiness, repeat purchase, time
//! to churn, NPS, ratings and the key drivers, each chart with the table of its numbers.

use std::path::Path;

use polars::prelude::DataFrame;

use super::{Cell, Page, Persona, Table, figure, fixed, note, number, percent, persona_at, plural};
use crate::Result;
use crate::charts::{self, Bar, HBars, HeatMap, LegendEntry, Mark, Panel, Panels, Scale};
use crate::files;
use crate::frame;
use crate::run_dir::read_optional;
use userlens_model::groups::{ALL, PERSONA};

/// Cohorts drawn in the heat map (the latest); retention.csv holds them all.
const MAX_COHORTS: usize = 36;
/// Periods of lifecycle bars drawn (the latest).
const MAX_LIFECYCLE_PERIODS: usize = 12;

/// Adds the stage's sections when its files are in `dir`.
pub(super) fn add_sections(page: &mut Page, dir: &Path, personas: &[Persona]) -> Result<()> {
    if let Some(df) = read_optional(dir, files::RETENTION)? {
        page.add("loyalty-retention", "Cohort retention", triangle(&df)?);
    }
    if let Some(df) = read_optional(dir, files::RETENTION_CURVE)? {
        page.add("loyalty-curves", "Retention curves", curves(&df, personas)?);
    }
    if let Some(df) = read_optional(dir, files::LIFECYCLE)? {
        page.add("loyalty-lifecycle", "Lifecycle", lifecycle(&df)?);
    }
    if let Some(df) = read_optional(dir, files::STICKINESS)? {
        page.add("loyalty-stickiness", "Stickiness", stickiness(&df)?);
    }
    if let Some(df) = read_optional(dir, files::REPEAT_PURCHASE)? {
        let by_group = read_optional(dir, files::REPEAT_PURCHASE_BY_GROUP)?;
        page.add(
            "loyalty-repeat",
            "Repeat purchase",
            repeat::repeat_purchase(&df, by_group.as_ref(), personas)?,
        );
    }
    if let Some(df) = read_optional(dir, files::LIFETIME)? {
        let curve = read_optional(dir, files::SURVIVAL)?;
        page.add(
            "loyalty-survival",
            "Time to churn",
            survival(&df, curve.as_ref(), personas)?,
        );
    }
    if let Some(df) = read_optional(dir, files::NPS)? {
        page.add("loyalty-nps", "Net Promoter Score", nps(&df, personas)?);
    }
    if let Some(df) = read_optional(dir, files::SATISFACTION)? {
        page.add(
            "loyalty-ratings",
            "Ratings",
            ratings::satisfaction(&df, personas)?,
        );
    }
    if let Some(df) = read_optional(dir, files::DRIVERS)? {
        page.add("loyalty-drivers", "Key drivers", drivers::drivers(&df)?);
    }
    Ok(())
}

/// `#3 label` for a persona group, the value itself otherwise.
fn group_name(kind: &str, value: &str, personas: &[Persona]) -> String {
    match kind {
        ALL => "all users".to_string(),
        PERSONA => {
            persona_at(personas, value).map_or_else(|| format!("#{value}"), |i| personas[i].name())
        }
        _ => value.to_string(),
    }
}

/// A line's colour for a group `(kind, value)`: grey for all users, a persona's the
/// colour of its card (by its place in `personas`, not among the lines drawn, which
/// may leave a persona out).
fn line_color((kind, value): &(String, String), personas: &[Persona]) -> plotters::style::RGBColor {
    if kind != PERSONA {
        return charts::GREY;
    }
    charts::color(persona_at(personas, value).unwrap_or(personas.len()))
}

/// A line's dash for a group, as [`line_color`] picks its colour: solid for all
/// users, a persona's by its place in `personas`, so that it looks the same in every
/// chart.
fn line_dash((kind, value): &(String, String), personas: &[Persona]) -> charts::Dash {
    if kind != PERSONA {
        return charts::Dash::Solid;
    }
    charts::dash(persona_at(personas, value).unwrap_or(personas.len()) + 1)
}

/// A group's bar colour: grey for all users, one colour for personas, another for
/// segments; [`group_legend`] names the two.
fn group_color(kind: Option<&str>) -> plotters::style::RGBColor {
    match kind {
        Some(ALL) => charts::GREY,
        Some(PERSONA) => charts::color(0),
        _ => charts::color(1),
    }
}

/// The legend of [`group_color`]'s colours.
fn group_legend() -> [LegendEntry; 2] {
    [
        LegendEntry {
            label: "persona".into(),
            color: charts::color(0),
            mark: Mark::Box,
        },
        LegendEntry {
            label: "segment".into(),
            color: charts::color(1),
            mark: Mark::Box,
        },
    ]
}

fn text(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

fn triangle(df: &DataFrame) -> Result<String> {
    const T: &str = "retention";
    if df.height() == 0 {
        return Ok(note("No user started a cohort before the as-of date."));
    }
    let cohorts = frame::strings(df, T, "cohort")?;
    let users = frame::f64s(df, T, "cohort_users")?;
    let periods = frame::f64s(df, T, "period")?;
    let active = frame::f64s(df, T, "active_users")?;
    let retention = frame::f64s(df, T, "retention")?;
    let unbounded = frame::f64s(df, T, "retention_unbounded")?;
    let complete = frame::bools(df, T, "complete")?;
    let mut rows: Vec<String> = Vec::new();
    for c in cohorts.iter().flatten() {
        if rows.last() != Some(c) {
            rows.push(c.clone());
        }
    }
    let shown: Vec<String> = rows[rows.len().saturating_sub(MAX_COHORTS)..].to_vec();
    // As many periods as the cohorts drawn reach.
    let width = (0..df.height())
        .filter(|&i| cohorts[i].as_ref().is_some_and(|c| shown.contains(c)))
        .filter_map(|i| periods[i])
        .fold(0.0f64, f64::max) as usize
        + 1;
    let cols: Vec<String> = (0..width).map(|k| k.to_string()).collect();
    let mut values = vec![vec![None; width]; shown.len()];
    for i in 0..df.height() {
        let (Some(c), Some(k)) = (&cohorts[i], periods[i]) else {
            continue;
        };
        if let Some(r) = shown.iter().position(|s| s == c)
            && complete[i]
        {
            values[r][k as usize] = retention[i];
        }
    }
    let labels: Vec<String> = shown
        .iter()
        .map(|c| {
            let n = (0..df.height()).find(|&i| cohorts[i].as_ref() == Some(c));
            format!("{c} ({})", fixed(n.and_then(|i| users[i]), 0))
        })
        .collect();
    // Nothing to colour when no period is over: every cell would be grey.
    let grey = values.iter().flatten().all(Option::is_none);
    let map = HeatMap {
        chart: "cohort retention",
        title: "Share of each cohort active k periods after its start",
        rows: &labels,
        cols: &cols,
        values: &values,
        cell_text: &|v| fixed(Some(v * 100.0), 0),
        scale: Scale::Sequential { max: 1.0 },
        x_desc: "periods since the cohort's start",
        y_desc: "cohort (users)",
        legend_title: "retention %",
        aria: &format!(
            "Heat map of retention of {} {} over up to {width} periods; periods not yet over are grey",
            shown.len(),
            plural(shown.len() as f64, "cohort")
        ),
    };
    let mut table = Table::new(
        "Cohort retention (retention.csv)",
        &[
            ("cohort", false),
            ("cohort_users", true),
            ("period", true),
            ("active_users", true),
            ("retention (%)", true),
            ("unbounded (%)", true),
            ("complete", false),
        ],
    )
    .in_time_order();
    for i in 0..df.height() {
        table.rows.push(vec![
            Cell::Text(text(&cohorts[i])),
            Cell::Num(number(users[i])),
            Cell::Num(number(periods[i])),
            Cell::Num(number(active[i])),
            Cell::Num(percent(retention[i], 1)),
            Cell::Num(percent(unbounded[i], 1)),
            Cell::yes_no(complete[i]),
        ]);
    }
    if grey {
        let why = note("No cohort has completed a period yet: the table lists those under way.");
        return Ok(why + &table.html());
    }
    let latest = match rows.len() > shown.len() {
        true => format!(
            " The map draws the latest {} of {} cohorts; retention.csv holds them all.",
            shown.len(),
            rows.len()
        ),
        false => String::new(),
    };
    Ok(figure(
        "loyalty-retention",
        &charts::heat_map(&map)?,
        &format!(
            "Each row is the users whose first start event fell in that period; a cell is the percentage of them with a return event k periods later (the stage's start_event and return_event, any event by default). Grey cells are periods not over at the as-of date: their share would look low only because the period is not finished.{latest}"
        ),
        &[table],
    ))
}

fn curves(df: &DataFrame, personas: &[Persona]) -> Result<String> {
    const T: &str = "retention_curve";
    let kinds = frame::strings(df, T, "group")?;
    let values = frame::strings(df, T, "value")?;
    let periods = frame::f64s(df, T, "period")?;
    let cohort_users = frame::f64s(df, T, "cohort_users")?;
    let retention = frame::f64s(df, T, "retention")?;
    let unbounded = frame::f64s(df, T, "retention_unbounded")?;
    let rows: Vec<usize> = (0..df.height())
        .filter(|&i| matches!(kinds[i].as_deref(), Some(ALL | PERSONA)))
        .collect();
    if rows.is_empty() {
        return Ok(note("No cohort has completed a period yet."));
    }
    let mut groups: Vec<(String, String)> = Vec::new();
    for &i in &rows {
        let key = (text(&kinds[i]), text(&values[i]));
        if !groups.contains(&key) {
            groups.push(key);
        }
    }
    let color = |g: usize| line_color(&groups[g], personas);
    let series = |of: &[Option<f64>]| -> Vec<charts::Series> {
        (0..groups.len())
            .map(|g| charts::Series {
                color: color(g),
                dash: line_dash(&groups[g], personas),
                points: rows
                    .iter()
                    .filter(|&&i| (text(&kinds[i]), text(&values[i])) == groups[g])
                    .filter_map(|&i| Some((periods[i]?, of[i]?)))
                    .collect(),
            })
            .collect()
    };
    let panel = |title: &str, of: &[Option<f64>]| Panel {
        title: title.to_string(),
        x_desc: "periods since the cohort's start".into(),
        y_desc: "share of the cohort".into(),
        series: series(of),
        x_range: None,
        y_range: Some((0.0, 1.0)),
        integer_x: true,
        marker: None,
        reference: None,
    };
    let legend: Vec<LegendEntry> = (0..groups.len())
        .map(|g| LegendEntry {
            label: group_name(&groups[g].0, &groups[g].1, personas),
            color: color(g),
            mark: Mark::Line(line_dash(&groups[g], personas)),
        })
        .collect();
    let svg = charts::panels(&Panels {
        chart: "retention curves",
        title: "Retention by persona, averaged over the cohorts that completed each period",
        panels: &[
            panel("active in period k", &retention),
            panel("active in period k or later (unbounded)", &unbounded),
        ],
        columns: 2,
        legend: &legend,
        aria: &match groups.len().saturating_sub(1) {
            0 => {
                "Line charts of retention against periods since the start for all users".to_string()
            }
            n => format!(
                "Line charts of retention against periods since the start for all users and {n} {}",
                plural(n as f64, "persona")
            ),
        },
    })?;
    let mut table = Table::new(
        "Retention curves (retention_curve.csv, all users and personas)",
        &[
            ("group", false),
            ("period", true),
            ("cohort_users", true),
            ("retention (%)", true),
            ("unbounded (%)", true),
        ],
    );
    for &i in &rows {
        table.rows.push(vec![
            Cell::Text(group_name(&text(&kinds[i]), &text(&values[i]), personas)),
            Cell::Num(number(periods[i])),
            Cell::Num(number(cohort_users[i])),
            Cell::Num(percent(retention[i], 1)),
            Cell::Num(percent(unbounded[i], 1)),
        ]);
    }
    Ok(figure(
        "loyalty-curves",
        &svg,
        "Each point averages the cohorts that had completed period k, weighted by their size; the grey line is all users. Unbounded retention counts a user in period k if they came back in k or any later period.",
        &[table],
    ))
}

fn lifecycle(df: &DataFrame) -> Result<String> {
    const T: &str = "lifecycle";
    if df.height() == 0 {
        return Ok(note("No activity before the as-of date."));
    }
    let periods = frame::strings(df, T, "period")?;
    let kinds = ["new", "returning", "resurrecting", "dormant"];
    let counts = kinds
        .iter()
        .map(|k| frame::f64s(df, T, k))
        .collect::<Result<Vec<_>>>()?;
    let complete = frame::bools(df, T, "complete")?;
    let first = df.height().saturating_sub(MAX_LIFECYCLE_PERIODS);
    let latest = format!(
        "the latest {} of {} periods",
        df.height() - first,
        df.height()
    );
    let mut bars = Vec::new();
    for i in first..df.height() {
        for (k, kind) in kinds.iter().enumerate() {
            let v = counts[k][i].unwrap_or(0.0);
            // Dormant users left: drawn to the left, as PostHog does.
            let value = if k == 3 { -v } else { v };
            bars.push(Bar {
                label: format!(
                    "{}{} {kind}",
                    text(&periods[i]),
                    if complete[i] { "" } else { "*" }
                ),
                value,
                color: charts::color(k),
                note: fixed(Some(v), 0),
            });
        }
    }
    let legend: Vec<LegendEntry> = kinds
        .iter()
        .enumerate()
        .map(|(k, kind)| LegendEntry {
            label: kind.to_string(),
            color: charts::color(k),
            mark: Mark::Box,
        })
        .collect();
    let svg = charts::hbars(&HBars {
        chart: "lifecycle",
        title: "New, returning, resurrecting and dormant users per period",
        x_desc: "users (dormant to the left)",
        y_desc: "",
        bars: &bars,
        legend: &legend,
        aria: &format!(
            "Horizontal bars of new, returning, resurrecting and dormant users in each {}",
            match first {
                0 => "period".to_string(),
                _ => format!("of {latest} (the table holds them all)"),
            }
        ),
    })?;
    let mut table = Table::new(
        "Lifecycle (lifecycle.csv)",
        &[
            ("period", false),
            ("new", true),
            ("returning", true),
            ("resurrecting", true),
            ("dormant", true),
            ("complete", false),
        ],
    )
    .in_time_order();
    for i in 0..df.height() {
        let mut row = vec![Cell::Text(text(&periods[i]))];
        row.extend(counts.iter().map(|c| Cell::Num(number(c[i]))));
        row.push(Cell::yes_no(complete[i]));
        table.rows.push(row);
    }
    let latest = match first {
        0 => String::new(),
        _ => format!(" The chart draws {latest}; the table holds them all."),
    };
    Ok(figure(
        "loyalty-lifecycle",
        &svg,
        &format!(
            "New: first active in the period; returning: active in it and the one before; resurrecting: active after a gap; dormant: active in the period before, not in this one. A * marks a period not over at the as-of date.{latest}"
        ),
        &[table],
    ))
}

fn stickiness(df: &DataFrame) -> Result<String> {
    const T: &str = "stickiness";
    if df.height() == 0 {
        return Ok(note("No activity before the as-of date."));
    }
    let dates = frame::strings(df, T, "date")?;
    let names = ["dau", "wau", "mau"];
    let series = names
        .iter()
        .map(|n| frame::f64s(df, T, n))
        .collect::<Result<Vec<_>>>()?;
    let mut ratio = frame::f64s(df, T, "dau_mau")?;
    // Before the log's 30th day the month's users undercount: no ratio of them.
    if frame::has(df, "complete") {
        let complete = frame::bools(df, T, "complete")?;
        for (r, whole) in ratio.iter_mut().zip(complete) {
            *r = r.filter(|_| whole);
        }
    }
    let lines = series
        .iter()
        .enumerate()
        .map(|(k, values)| charts::Series {
            color: charts::color(k),
            dash: charts::dash(k),
            points: values
                .iter()
                .enumerate()
                .filter_map(|(d, v)| Some((d as f64, (*v)?)))
                .collect(),
        })
        .collect();
    let legend: Vec<LegendEntry> = ["daily", "weekly (7 days)", "monthly (30 days)"]
        .iter()
        .enumerate()
        .map(|(k, l)| LegendEntry {
            label: l.to_string(),
            color: charts::color(k),
            mark: Mark::Line(charts::dash(k)),
        })
        .collect();
    let svg = charts::panels(&Panels {
        chart: "stickiness",
        title: "Active users per day, over the trailing week and 30 days",
        panels: &[Panel {
            title: format!(
                "from {} to {}",
                text(&dates[0]),
                text(&dates[dates.len() - 1])
            ),
            x_desc: format!("days since {}", text(&dates[0])),
            y_desc: "active users".into(),
            series: lines,
            x_range: None,
            y_range: None,
            integer_x: true,
            marker: None,
            reference: None,
        }],
        columns: 1,
        legend: &legend,
        aria: "Line chart of daily, weekly and monthly active users over the days of the log",
    })?;
    let mut table = Table::new(
        "Stickiness (stickiness.csv)",
        &[
            ("date", false),
            ("dau", true),
            ("wau", true),
            ("mau", true),
            ("DAU/MAU (%)", true),
        ],
    )
    .in_time_order();
    for i in 0..df.height() {
        let mut row = vec![Cell::Text(text(&dates[i]))];
        row.extend(series.iter().map(|s| Cell::Num(number(s[i]))));
        row.push(Cell::Num(percent(ratio[i], 1)));
        table.rows.push(row);
    }
    Ok(figure(
        "loyalty-stickiness",
        &svg,
        "Users with a return event on the day, in the 7 days and in the 30 days ending on it; DAU/MAU is the share of the month's users active on a given day, left blank for the log's first 29 days, whose trailing month reaches back before the log. active_days.csv has, per month, how many users were active on 1, 2, ... days.",
        &[table],
    ))
}

fn survival(
    lifetime: &DataFrame,
    curve: Option<&DataFrame>,
    personas: &[Persona],
) -> Result<String> {
    const T: &str = "lifetime";
    if lifetime.height() == 0 {
        return Ok(note(
            "No user's churn is known yet: a user churns after the stage's churn_after_days without a return event, and every user was first active within that many days of the as-of date.",
        ));
    }
    let kinds = frame::strings(lifetime, T, "group")?;
    let values = frame::strings(lifetime, T, "value")?;
    let users = frame::f64s(lifetime, T, "users")?;
    let churned = frame::f64s(lifetime, T, "churned")?;
    let median = frame::f64s(lifetime, T, "median_days")?;
    let lower = frame::f64s(lifetime, T, "median_lower")?;
    let upper = frame::f64s(lifetime, T, "median_upper")?;
    let mut out = String::new();
    let mut tables = Vec::new();
    if let Some(curve) = curve {
        const C: &str = "survival";
        let ck = frame::strings(curve, C, "group")?;
        let cv = frame::strings(curve, C, "value")?;
        let days = frame::f64s(curve, C, "days")?;
        let s = frame::f64s(curve, C, "survival")?;
        let mut groups: Vec<(String, String)> = Vec::new();
        for i in 0..curve.height() {
            let key = (text(&ck[i]), text(&cv[i]));
            if matches!(key.0.as_str(), ALL | PERSONA) && !groups.contains(&key) {
                groups.push(key);
            }
        }
        let color = |g: usize| line_color(&groups[g], personas);
        let series = (0..groups.len())
            .map(|g| {
                // The curve starts at 1 and steps down at each churn.
                let mut points = vec![(0.0, 1.0)];
                for i in 0..curve.height() {
                    if (text(&ck[i]), text(&cv[i])) == groups[g]
                        && let (Some(d), Some(v)) = (days[i], s[i])
                    {
                        let before = points.last().map_or(1.0, |p| p.1);
                        points.push((d, before));
                        points.push((d, v));
                    }
                }
                charts::Series {
                    color: color(g),
                    dash: line_dash(&groups[g], personas),
                    points,
                }
            })
            .collect();
        let legend: Vec<LegendEntry> = (0..groups.len())
            .map(|g| LegendEntry {
                label: group_name(&groups[g].0, &groups[g].1, personas),
                color: color(g),
                mark: Mark::Line(line_dash(&groups[g], personas)),
            })
            .collect();
        out.push_str(&charts::panels(&Panels {
            chart: "survival",
            title: "Share of users still active, by days since their first activity",
            panels: &[Panel {
                title: "Kaplan-Meier estimate".into(),
                x_desc: "days since the first activity".into(),
                y_desc: "still active".into(),
                series,
                x_range: None,
                y_range: Some((0.0, 1.0)),
                integer_x: true,
                marker: None,
                reference: Some(charts::Reference::Horizontal(0.5)),
            }],
            columns: 1,
            legend: &legend,
            aria: "Kaplan-Meier survival curves of all users and of each persona",
        })?);
        tables.push(survival_at_days(&groups, &ck, &cv, &days, &s, personas));
    }
    let mut table = Table::new(
        "Median lifetime (lifetime.csv)",
        &[
            ("group", false),
            ("users", true),
            ("churned", true),
            ("median days", true),
            ("95% interval", false),
        ],
    );
    for i in 0..lifetime.height() {
        table.rows.push(vec![
            Cell::Text(group_name(&text(&kinds[i]), &text(&values[i]), personas)),
            Cell::Num(number(users[i])),
            Cell::Num(number(churned[i])),
            Cell::Num(fixed(median[i], 0)),
            Cell::Text(format!("{} – {}", fixed(lower[i], 0), fixed(upper[i], 0))),
        ]);
    }
    tables.push(table);
    Ok(figure(
        "loyalty-survival",
        &out,
        "A user has churned once the stage's churn_after_days whole days pass without a return event after the day of their last one; a lifetime runs from the first activity to the last. Users active within churn_after_days of the as-of date may not come back, so they are censored that many days before it, and those first active after that day are left out. The median lifetime is the first day the curve is at or below one half (— when it never is); its interval comes from Greenwood's bands on the log(-log) scale. The share still active at a day is — past a group's longest lifetime observed, unless every user of it has churned.",
        &tables,
    ))
}

/// Days the survival table reads the curve at.
const SURVIVAL_DAYS: [f64; 6] = [7.0, 14.0, 30.0, 60.0, 90.0, 180.0];

/// The share of each group still active at [`SURVIVAL_DAYS`]: the curve's value at
/// its last step on or before the day, `—` past the group's longest follow-up.
fn survival_at_days(
    groups: &[(String, String)],
    kinds: &[Option<String>],
    values: &[Option<String>],
    days: &[Option<f64>],
    survival: &[Option<f64>],
    personas: &[Persona],
) -> Table {
    let heads: Vec<String> = SURVIVAL_DAYS.iter().map(|d| format!("day {d}")).collect();
    let mut head: Vec<(&str, bool)> = vec![("group", false)];
    head.extend(heads.iter().map(|h| (h.as_str(), true)));
    let mut table = Table::new(
        "Share still active, by days since the first activity (survival.csv)",
        &head,
    );
    for group in groups {
        let steps: Vec<(f64, f64)> = (0..days.len())
            .filter(|&i| (text(&kinds[i]), text(&values[i])) == *group)
            .filter_map(|i| Some((days[i]?, survival[i]?)))
            .collect();
        let longest = steps.iter().map(|s| s.0).fold(0.0, f64::max);
        let mut row = vec![Cell::Text(group_name(&group.0, &group.1, personas))];
        for day in SURVIVAL_DAYS {
            let at = (steps.iter().rev())
                .find(|s| s.0 <= day)
                .map_or(1.0, |s| s.1);
            // Past the longest lifetime seen the curve is unknown, unless it is at 0.
            row.push(Cell::Num(percent(
                (day <= longest || at == 0.0).then_some(at),
                1,
            )));
        }
        table.rows.push(row);
    }
    table
}

fn nps(df: &DataFrame, personas: &[Persona]) -> Result<String> {
    const T: &str = "nps";
    if df.height() == 0 {
        return Ok(note("The survey has no answer before the as-of date."));
    }
    let kinds = frame::strings(df, T, "group")?;
    let values = frame::strings(df, T, "value")?;
    let responses = frame::f64s(df, T, "responses")?;
    let cols = ["promoters", "passives", "detractors"];
    let counts = cols
        .iter()
        .map(|c| frame::f64s(df, T, c))
        .collect::<Result<Vec<_>>>()?;
    let score = frame::f64s(df, T, "nps")?;
    let lower = frame::f64s(df, T, "nps_lower")?;
    let upper = frame::f64s(df, T, "nps_upper")?;
    let warning = frame::strings(df, T, "warning")?;
    let names: Vec<String> = (0..df.height())
        .map(|i| group_name(&text(&kinds[i]), &text(&values[i]), personas))
        .collect();
    let bars: Vec<Bar> = (0..df.height())
        .map(|i| Bar {
            label: names[i].clone(),
            value: score[i].unwrap_or(0.0),
            color: group_color(kinds[i].as_deref()),
            note: format!(
                "{} [{}, {}] · n {}{}",
                fixed(score[i], 0),
                fixed(lower[i], 0),
                fixed(upper[i], 0),
                fixed(responses[i], 0),
                if warning[i].is_some() { " · few" } else { "" }
            ),
        })
        .collect();
    let svg = charts::hbars(&HBars {
        chart: "nps",
        title: "Net Promoter Score, its 95% interval in brackets",
        x_desc: "NPS (% promoters - % detractors)",
        y_desc: "",
        bars: &bars,
        legend: &group_legend(),
        aria: &format!("Horizontal bars of the NPS of {} groups", df.height()),
    })?;
    let mut table = Table::new(
        "NPS (nps.csv)",
        &[
            ("group", false),
            ("responses", true),
            ("promoters", true),
            ("passives", true),
            ("detractors", true),
            ("NPS", true),
            ("95% interval", false),
            ("warning", false),
        ],
    );
    for i in 0..df.height() {
        let mut row = vec![
            Cell::Text(names[i].clone()),
            Cell::Num(number(responses[i])),
        ];
        row.extend(counts.iter().map(|c| Cell::Num(number(c[i]))));
        row.push(Cell::Num(fixed(score[i], 1)));
        row.push(Cell::Text(format!(
            "{} – {}",
            fixed(lower[i], 1),
            fixed(upper[i], 1)
        )));
        row.push(Cell::Text(text(&warning[i])));
        table.rows.push(row);
    }
    Ok(figure(
        "loyalty-nps",
        &svg,
        "Each user's latest answer before the as-of date: promoters score 9-10, passives 7-8, detractors 0-6. The interval is the Wald interval of the mean of +1/0/-1 scores; groups with fewer than 30 responses are marked \"few\" in the chart and warned of in the table.",
        &[table],
    ))
}

mod drivers;
mod ratings;
mod repeat;
#[cfg(test)]
mod tests;
