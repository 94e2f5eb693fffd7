//! The run summary (tiles, stages, notes) and the section on the choice of k.

use super::*;

pub(super) fn summary_section(run: &RunView) -> Result<String> {
    let mut out = String::new();
    let mut tiles: Vec<(String, String)> = Vec::new();
    let rows = |key: &str| run.rows.get(key).map(|v| v as f64);
    let read = rows("read");
    if let Some(users) = rows("users") {
        tiles.push(("Users".into(), grouped(users)));
    }
    if let Some(k) = model_k(run) {
        tiles.push(("Personas".into(), grouped(k)));
    }
    for (key, title) in [
        ("read", "Rows read"),
        ("kept", "Rows kept"),
        ("quarantined", "Quarantined"),
        ("duplicates", "Duplicates"),
        ("before_as_of", "Before the as-of date"),
    ] {
        if let Some(v) = rows(key) {
            let share = match (key, read) {
                ("quarantined" | "duplicates", Some(r)) if r > 0.0 => {
                    format!(" <small>{}%</small>", fixed(Some(v / r * 100.0), 1))
                }
                _ => String::new(),
            };
            tiles.push((title.into(), format!("{}{share}", grouped(v))));
        }
    }
    if !tiles.is_empty() {
        out.push_str("<dl class=\"tiles\">\n");
        for (t, v) in tiles {
            out.push_str(&format!("<div><dt>{}</dt><dd>{v}</dd></div>\n", escape(&t)));
        }
        out.push_str("</dl>\n");
    }
    let mut facts = Vec::new();
    if let Some(p) = &run.pipeline {
        facts.push(format!("pipeline <code>{}</code>", escape(p)));
    }
    if let Some(f) = &run.pipeline_file {
        facts.push(format!("file <code>{}</code>", escape(f)));
    }
    if let Some(s) = run.seed {
        facts.push(format!("seed {s}"));
    }
    if let Some(a) = run.personas.as_ref().and_then(|p| p.algorithm.as_ref()) {
        facts.push(format!("clustering {}", escape(a)));
    }
    let paths: Vec<String> = run
        .inputs
        .iter()
        .filter_map(|i| i.path.as_deref())
        .map(|p| format!("<code>{}</code>", escape(p)))
        .collect();
    if !paths.is_empty() {
        facts.push(format!("input {}", paths.join(", ")));
    }
    if !facts.is_empty() {
        out.push_str(&format!("<p class=\"lead\">{}.</p>\n", facts.join(" · ")));
    }
    if !run.notes.is_empty() {
        out.push_str("<ul class=\"notes\">\n");
        for line in &run.notes {
            out.push_str(&format!("<li>{}</li>\n", with_code(line)));
        }
        out.push_str("</ul>\n");
    }

    let stages = &run.stages;
    if stages.is_empty() {
        out.push_str(&note("The run record lists no stages."));
        return Ok(out);
    }
    let name = |s: &StageView| s.name.clone().unwrap_or_else(|| "?".to_string());
    let bars: Vec<Bar> = stages
        .iter()
        .map(|s| {
            let seconds = s.seconds;
            Bar {
                label: name(s),
                value: seconds.unwrap_or(0.0),
                color: charts::color(0),
                note: format!("{} s", fixed(seconds, 3)),
            }
        })
        .collect();
    let total: f64 = stages.iter().filter_map(|s| s.seconds).sum();
    let slowest = stages
        .iter()
        .max_by(|a, b| {
            a.seconds
                .unwrap_or(0.0)
                .total_cmp(&b.seconds.unwrap_or(0.0))
        })
        .map(name)
        .unwrap_or_default();
    let aria = format!(
        "Horizontal bar chart of the duration of {} stages, {} seconds in all; the slowest is {slowest}",
        stages.len(),
        fixed(Some(total), 2)
    );
    let svg = charts::hbars(&HBars {
        chart: "stage durations",
        title: "Time per stage",
        x_desc: "seconds",
        y_desc: "",
        bars: &bars,
        legend: &[],
        aria: &aria,
    })?;
    let mut table = Table::new(
        "Stages",
        &[
            ("stage", false),
            ("uses", false),
            ("status", false),
            ("seconds", true),
            ("rows out", true),
        ],
    );
    for s in stages {
        table.rows.push(vec![
            Cell::Text(name(s)),
            Cell::Text(s.uses.clone().unwrap_or_default()),
            Cell::Text(s.status.clone().unwrap_or_default()),
            Cell::Num(fixed(s.seconds, 3)),
            Cell::Num(fixed(s.rows_out.map(|r| r as f64), 0)),
        ]);
    }
    let mut rows_table = Table::new("Rows", &[("rows", false), ("count", true)]);
    for key in [
        "read",
        "kept",
        "quarantined",
        "duplicates",
        "before_as_of",
        "users",
    ] {
        if let Some(v) = rows(key) {
            rows_table.rows.push(vec![
                Cell::Text(key.to_string()),
                Cell::Num(fixed(Some(v), 0)),
            ]);
        }
    }
    let caption = format!(
        "Wall-clock time of each stage of this run, {} s in all (a stage whose result was reused from an earlier run takes almost none).",
        fixed(Some(total), 2)
    );
    let tables = if rows_table.rows.is_empty() {
        vec![table]
    } else {
        vec![rows_table, table]
    };
    out.push_str(&figure("stages", &svg, &caption, &tables));
    Ok(out)
}

// ---------------------------------------------------------------------------
// k selection

pub(super) fn k_section(df: &DataFrame, run: &RunView) -> Result<String> {
    const T: &str = "k_selection";
    let ks = frame::f64s(df, T, "k")?;
    let metrics = [
        ("inertia", "Inertia (look for the elbow)"),
        ("silhouette", "Silhouette (higher is better)"),
        ("calinski_harabasz", "Calinski-Harabasz (higher is better)"),
        ("davies_bouldin", "Davies-Bouldin (lower is better)"),
    ];
    let mut columns = Vec::new();
    for (name, title) in metrics {
        if let Some(values) = frame::opt_f64s(df, T, name)? {
            columns.push((name, title, values));
        }
    }
    let chosen_flags = if frame::has(df, "chosen") {
        frame::bools(df, T, "chosen")?
    } else {
        vec![false; df.height()]
    };
    let chosen = ks
        .iter()
        .zip(&chosen_flags)
        .find(|(_, c)| **c)
        .and_then(|(k, _)| *k)
        .or_else(|| model_k(run));
    if df.height() == 0 || columns.is_empty() {
        return Ok(note("The run tried no values of k."));
    }
    let (kmin, kmax) = ks
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &k| {
            (a.min(k), b.max(k))
        });
    let x_range = if kmin.is_finite() {
        Some((kmin - 0.5, kmax + 0.5))
    } else {
        None
    };
    // A measure with no value (the silhouette of one persona) gets no empty panel.
    let panels: Vec<Panel> = columns
        .iter()
        .filter(|(_, _, values)| values.iter().any(Option::is_some))
        .map(|(_, title, values)| Panel {
            title: title.to_string(),
            x_desc: "k (number of personas)".into(),
            y_desc: String::new(),
            series: vec![charts::Series {
                color: charts::color(0),
                dash: charts::Dash::Solid,
                points: ks
                    .iter()
                    .zip(values)
                    .filter_map(|(k, v)| Some(((*k)?, (*v)?)))
                    .collect(),
            }],
            x_range,
            y_range: None,
            integer_x: true,
            marker: chosen.map(|k| (k, format!("chosen k = {}", fixed(Some(k), 0)))),
            reference: None,
        })
        .collect();
    let aria = format!(
        "Line charts of {} clustering quality {} against the number of personas k from {} to {}{}",
        panels.len(),
        plural(panels.len() as f64, "measure"),
        fixed(Some(kmin), 0),
        fixed(Some(kmax), 0),
        chosen.map_or(String::new(), |k| format!(
            "; k = {} was chosen",
            fixed(Some(k), 0)
        ))
    );
    // With no measure to draw, the table says what there is.
    let svg = if panels.is_empty() {
        note("No measure of the clustering's quality holds a value for the k tried.")
    } else {
        charts::panels(&Panels {
            chart: "k selection",
            title: "Quality of the clustering for each k tried",
            panels: &panels,
            columns: 2,
            legend: &[],
            aria: &aria,
        })?
    };
    let mut head: Vec<(&str, bool)> = vec![("k", true)];
    head.extend(columns.iter().map(|(name, _, _)| (*name, true)));
    head.push(("chosen", false));
    let mut table = Table::new("Clustering quality by k", &head);
    for (i, k) in ks.iter().enumerate() {
        let mut row = vec![Cell::Num(fixed(*k, 0))];
        row.extend(columns.iter().map(|(_, _, v)| Cell::Num(number(v[i]))));
        row.push(Cell::Text(
            if chosen_flags[i] { "yes" } else { "" }.to_string(),
        ));
        table.rows.push(row);
    }
    // From the table, not the parameters: `k` may be left to its default, and the
    // persona stage may have any name.
    let how = match ks.len() {
        1 => "one k was tried (set, or all the users allow; the run's notes say which)",
        _ => "the k with the highest silhouette was chosen (of equals, the smallest)",
    };
    // One k tried leaves nothing for the other measures to confirm.
    let confirm = if ks.len() > 1 {
        "; the other measures are there to confirm it"
    } else {
        ""
    };
    let caption = format!(
        "The clustering was fitted for each k tried and {how}{}{confirm}. The orange line marks the chosen k.",
        chosen.map_or(String::new(), |k| format!(" (k = {})", fixed(Some(k), 0)))
    );
    Ok(figure("k-selection", &svg, &caption, &[table]))
}
