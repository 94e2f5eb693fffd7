//! The sections on what changed since the previous run: persona migration and
//! feature drift.

use super::*;

/// The personas on both axes of the migration map, this run's first in their order,
/// then those only one side has: one order for both, so that the drawn diagonal is
/// the users who stayed.
fn migration_axis(from: &[String], to: &[String], personas: &[Persona]) -> Vec<String> {
    let seen = |n: &String| from.contains(n) || to.contains(n);
    let mut out: Vec<String> = personas.iter().map(Persona::name).filter(seen).collect();
    for n in from.iter().chain(to) {
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    out
}

/// [`persona_display`], or for an id this run has no persona of, `#7 label (retired)`
/// from the previous run's label.
fn gone_persona_display(
    id: &Option<String>,
    old_label: Option<&str>,
    personas: &[Persona],
) -> String {
    let name = persona_display(id, personas);
    let known = persona_by_id(id, personas).is_some();
    match old_label.map(str::trim).filter(|l| !l.is_empty()) {
        Some(label) if !known && name.starts_with('#') => format!("{name} {label} (retired)"),
        _ => name,
    }
}

pub(super) fn migration_section(df: &DataFrame, personas: &[Persona]) -> Result<String> {
    const T: &str = "migration";
    let from = frame::strings(df, T, "from_persona")?;
    let to = frame::strings(df, T, "to_persona")?;
    let users = frame::f64s(df, T, "users")?;
    if df.height() == 0 {
        return Ok(note("No users to compare with the previous run."));
    }
    let from_labels = frame::opt_strings(df, T, "from_label")?;
    // A previous persona that is not among this run's is named by its old label.
    let from_names: Vec<String> = from
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let old = from_labels.as_ref().and_then(|l| l[i].as_deref());
            gone_persona_display(v, old, personas)
        })
        .collect();
    let to_names: Vec<String> = to.iter().map(|v| persona_display(v, personas)).collect();
    let rows = migration_axis(&from_names, &to_names, personas);
    let cols = rows.clone();
    let mut cells: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    let mut from_totals = vec![0.0; rows.len()];
    for i in 0..df.height() {
        let (Some(r), Some(c)) = (
            rows.iter().position(|n| *n == from_names[i]),
            cols.iter().position(|n| *n == to_names[i]),
        ) else {
            continue;
        };
        let u = users[i].unwrap_or(0.0);
        *cells.entry((r, c)).or_insert(0.0) += u;
        from_totals[r] += u;
    }
    let values: Vec<Vec<Option<f64>>> = (0..rows.len())
        .map(|r| {
            (0..cols.len())
                .map(|c| Some(cells.get(&(r, c)).copied().unwrap_or(0.0)))
                .collect()
        })
        .collect();
    let max = cells.values().copied().fold(0.0, f64::max);
    let (mut stayed, mut moved) = (0.0, 0.0);
    for i in 0..df.height() {
        let u = users[i].unwrap_or(0.0);
        if from_names[i] == to_names[i] {
            stayed += u;
        } else {
            moved += u;
        }
    }
    let total = stayed + moved;
    let svg = charts::heat_map(&HeatMap {
        chart: "migration",
        title: "Users by persona in the previous run (rows) and this run (columns)",
        rows: &rows,
        cols: &cols,
        values: &values,
        // Empty cells stay blank: the eye should find the moves, not a grid of zeros.
        cell_text: &|v| {
            if v == 0.0 {
                String::new()
            } else {
                fixed(Some(v), 0)
            }
        },
        scale: Scale::Sequential { max },
        x_desc: "persona in this run",
        y_desc: "previous persona",
        legend_title: "users",
        aria: &format!(
            "Heat map of users moving between personas: {} stayed and {} moved",
            fixed(Some(stayed), 0),
            fixed(Some(moved), 0)
        ),
    })?;
    let mut table = Table::new(
        "Persona migration",
        &[
            ("from_persona", false),
            ("to_persona", false),
            ("users", true),
            ("share of from (%)", true),
        ],
    );
    for i in 0..df.height() {
        let r = rows.iter().position(|n| *n == from_names[i]);
        let share = r
            .map(|r| from_totals[r])
            .filter(|t| *t > 0.0)
            .and_then(|t| users[i].map(|u| u / t));
        // A persona the previous run called otherwise says so: rows name this run's.
        let current = persona_by_id(&from[i], personas);
        let then = (from_labels.as_ref())
            .and_then(|l| l[i].as_deref())
            .map(str::trim)
            .filter(|then| current.is_some_and(|p| !then.is_empty() && p.label != *then));
        let from_shown = match then {
            Some(then) => format!("{} (then {then})", from_names[i]),
            None => from_names[i].clone(),
        };
        table.rows.push(vec![
            Cell::Text(from_shown),
            Cell::Text(to_names[i].clone()),
            Cell::Num(fixed(users[i], 0)),
            Cell::Num(percent(share, 1)),
        ]);
    }
    let caption = format!(
        "Where each previous persona's users are now. The diagonal holds users who stayed: {} of {} ({}%); {} moved.",
        grouped(stayed),
        grouped(total),
        fixed((total > 0.0).then(|| stayed / total * 100.0), 1),
        grouped(moved)
    );
    Ok(figure("migration", &svg, &escape(&caption), &[table]))
}

pub(super) fn drift_section(df: &DataFrame) -> Result<String> {
    const T: &str = "drift";
    let features = frame::strings(df, T, "feature")?;
    let psi = frame::f64s(df, T, "psi")?;
    let levels = frame::strings(df, T, "level")?;
    if df.height() == 0 {
        return Ok(note("No features to compare with the previous run."));
    }
    let color_of = |level: &str| match level {
        "ok" => charts::PALETTE[2],
        "warning" => charts::PALETTE[1],
        "alert" => charts::HIGHLIGHT,
        _ => charts::GREY,
    };
    let mut order: Vec<usize> = (0..df.height()).collect();
    order.sort_by(|&a, &b| {
        psi[b]
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&psi[a].unwrap_or(f64::NEG_INFINITY))
            .then(a.cmp(&b))
    });
    let level = |i: usize| levels[i].clone().unwrap_or_default();
    let bars: Vec<Bar> = order
        .iter()
        .map(|&i| Bar {
            label: features[i].clone().unwrap_or_default(),
            value: psi[i].unwrap_or(0.0),
            color: color_of(&level(i)),
            note: format!("{} · {}", fixed(psi[i], 3), level(i)),
        })
        .collect();
    let mut seen: Vec<String> = Vec::new();
    for known in ["ok", "warning", "alert"] {
        if (0..df.height()).any(|i| level(i) == known) {
            seen.push(known.to_string());
        }
    }
    for i in 0..df.height() {
        let l = level(i);
        if !seen.contains(&l) {
            seen.push(l);
        }
    }
    let legend: Vec<LegendEntry> = seen
        .iter()
        .map(|l| LegendEntry {
            label: if l.is_empty() {
                "(no level)".into()
            } else {
                l.clone()
            },
            color: color_of(l),
            mark: Mark::Box,
        })
        .collect();
    let count = |l: &str| (0..df.height()).filter(|&i| level(i) == l).count();
    let summary = format!(
        "{} features: {} alert, {} warning, {} ok",
        df.height(),
        count("alert"),
        count("warning"),
        count("ok")
    );
    let svg = charts::hbars(&HBars {
        chart: "drift",
        title: "Feature drift since the previous run (PSI)",
        x_desc: "population stability index",
        y_desc: "",
        bars: &bars,
        legend: &legend,
        aria: &format!("Horizontal bar chart of the population stability index of {summary}"),
    })?;
    let mut table = Table::new(
        "Feature drift",
        &[("feature", false), ("psi", true), ("level", false)],
    );
    for &i in &order {
        table.rows.push(vec![
            Cell::Text(features[i].clone().unwrap_or_default()),
            Cell::Num(fixed(psi[i], 4)),
            Cell::Text(level(i)),
        ]);
    }
    let caption = format!(
        "How far each feature's distribution moved since the previous run, largest first ({summary}). The level is the pipeline's verdict; by common rule of thumb a PSI under 0.1 is stable and over 0.25 a real shift."
    );
    Ok(figure("drift", &svg, &escape(&caption), &[table]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_migration_axes_hold_every_persona_once_in_one_order() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // #3 retired, #7 new: each appears on both axes, in the same place.
        let from = names(&["#1", "#3", "#1"]);
        let to = names(&["#1", "#7", "#2"]);
        assert_eq!(migration_axis(&from, &to, &[]), ["#1", "#3", "#7", "#2"]);
    }

    #[test]
    fn a_retired_persona_is_named_by_its_previous_label() {
        let persona = Persona {
            id: Some(1),
            id_text: "1".into(),
            label: "regulars".into(),
            users: None,
            share: None,
            distinguishing: None,
            top_categories: None,
            top_queries: None,
            common: Vec::new(),
            p_purchase: None,
            revenue: None,
            segment_mix: None,
            averages: Vec::new(),
        };
        let df = polars::df!(
            "from_persona" => [1u32, 3],
            "to_persona" => [1u32, 1],
            "users" => [4u64, 2],
            "from_label" => ["old regulars", "night owls"],
            "to_label" => ["regulars", "regulars"],
        )
        .unwrap();
        let html = migration_section(&df, &[persona]).unwrap();
        // This run's name for a persona it still has, with the one the previous run
        // gave it in the table; the old label for a retired one.
        assert!(html.contains("#3 night owls (retired)"), "{html}");
        assert!(
            html.contains("<th scope=\"row\">#1 regulars (then old regulars)</th>"),
            "{html}"
        );
        assert_eq!(html.matches("old regulars").count(), 1, "{html}");
    }
}
