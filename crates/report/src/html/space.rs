//! The personas in the feature space: the heat map of each feature's z-score per
//! persona and the 2-D projection of sampled users.

use super::*;

pub(super) fn feature_space(
    input: &ReportInput,
    personas: &[Persona],
) -> Result<projection::Space> {
    let model = input.run.personas.as_ref();
    let listed = model.and_then(|m| m.features.clone());
    let features = listed.filter(|l| !l.is_empty()).unwrap_or_else(|| {
        frame::numeric_columns(input.assignments)
            .into_iter()
            .filter(|c| c != userlens_model::columns::PERSONA_ID && c != "distance")
            .collect()
    });
    let logged = model.and_then(|m| m.log_transformed.as_ref());
    let is_logged = |name: &str| match logged {
        Some(list) => list.iter().any(|l| l == name),
        None => userlens_model::is_heavy_tailed(name),
    };
    let ids: Vec<i64> = personas.iter().map(|p| p.id.unwrap_or(i64::MIN)).collect();
    projection::build(
        input.assignments,
        &ids,
        &features,
        &is_logged,
        seed(input.run),
        MAX_PROJECTION_POINTS,
    )
}

pub(super) fn profile_section(personas: &[Persona], space: &projection::Space) -> Result<String> {
    if space.features.is_empty() || personas.is_empty() {
        return Ok(note(
            "No profile: the assignments carry no varying numeric features for the personas.",
        ));
    }
    let rows: Vec<String> = space
        .features
        .iter()
        .zip(&space.logged)
        .map(|(f, log)| {
            if *log {
                format!("{f} (log)")
            } else {
                f.clone()
            }
        })
        .collect();
    let cols: Vec<String> = personas.iter().map(Persona::name).collect();
    let values: Vec<Vec<Option<f64>>> = (0..space.features.len())
        .map(|j| {
            space
                .persona_z
                .iter()
                .map(|z| z.as_ref().map(|z| z[j]))
                .collect()
        })
        .collect();
    let strongest = space
        .persona_z
        .iter()
        .enumerate()
        .filter_map(|(p, z)| z.as_ref().map(|z| (p, z)))
        .flat_map(|(p, z)| z.iter().enumerate().map(move |(j, v)| (p, j, *v)))
        .max_by(|a, b| a.2.abs().total_cmp(&b.2.abs()));
    let aria = match strongest {
        Some((p, j, v)) => format!(
            "Heat map of z-scores of {} features for {} personas; the strongest is {} on {} at {} standard deviations",
            space.features.len(),
            personas.len(),
            personas[p].name(),
            space.features[j],
            signed(v, 1)
        ),
        None => "Heat map of persona z-scores".to_string(),
    };
    let svg = charts::heat_map(&HeatMap {
        chart: "persona profile",
        title: "How each persona differs from all users (z-score)",
        rows: &rows,
        cols: &cols,
        values: &values,
        cell_text: &|v| signed(v, 1),
        scale: Scale::Diverging { limit: HEAT_LIMIT },
        x_desc: "persona",
        y_desc: "feature",
        legend_title: "z-score (sd)",
        aria: &aria,
    })?;
    let mut head: Vec<(String, bool)> = vec![("feature".into(), false), ("log".into(), false)];
    head.extend(personas.iter().map(|p| (p.name(), true)));
    let mut table = Table {
        caption: "z-score of every feature per persona".to_string(),
        head,
        rows: Vec::new(),
        latest_last: false,
    };
    for (j, feature) in space.features.iter().enumerate() {
        let mut row = vec![Cell::Text(feature.clone()), Cell::yes_no(space.logged[j])];
        row.extend(
            values[j]
                .iter()
                .map(|v| Cell::Num(v.map_or("—".into(), |v| signed(v, 2)))),
        );
        table.rows.push(row);
    }
    let mut caption = format!(
        "Each cell is the mean standardised value of the persona's users: z = (persona mean − mean of all users) / standard deviation of all users, computed from the users' raw features in <code>user_personas</code> after the clustering's own transform (features marked log are taken as sign(x)·ln(1 + |x|), missing values are set to the median). Orange is above the population, blue below; colours saturate at ±{} sd. These are the numbers the persona descriptions quote.",
        charts::tick(HEAT_LIMIT)
    );
    if !space.skipped.is_empty() {
        caption.push_str(&format!(
            " Left out because they do not vary or are absent: {}.",
            escape(&space.skipped.join(", "))
        ));
    }
    Ok(figure("profile", &svg, &caption, &[table]))
}

pub(super) fn projection_section(
    personas: &[Persona],
    space: &projection::Space,
    seed: u64,
) -> Result<String> {
    let projected = match projection::project(space) {
        Ok(p) => p,
        Err(reason) => return Ok(note(&format!("No projection: {reason}."))),
    };
    let groups: Vec<Group> = personas
        .iter()
        .enumerate()
        .map(|(i, p)| Group {
            label: p.name(),
            tag: format!("#{}", p.id_text),
            color: charts::color(i),
            shape: charts::shape(i),
            centroid: projected.centroids.get(i).copied().flatten(),
        })
        .collect();
    let points: Vec<((f64, f64), Option<usize>)> = projected
        .points
        .iter()
        .copied()
        .zip(space.sample_persona.iter().copied())
        .collect();
    let axis = |c: usize| {
        format!(
            "PC{} ({}% of variance)",
            c + 1,
            fixed(Some(projected.explained[c] * 100.0), 1)
        )
    };
    let top = |c: usize| -> String {
        projected.loadings[c]
            .iter()
            .take(3)
            .map(|(f, l)| format!("{}{f}", if *l < 0.0 { "−" } else { "+" }))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let plotted = points.len();
    let aria = format!(
        "Scatter plot of {plotted} users on the first two principal components, coloured by persona, with the {} persona centroids marked",
        groups.iter().filter(|g| g.centroid.is_some()).count()
    );
    let svg = charts::scatter(&charts::Scatter {
        chart: "projection",
        title: "Users on the first two principal components",
        x_desc: &axis(0),
        y_desc: &axis(1),
        points: &points,
        groups: &groups,
        aria: &aria,
    })?;
    let mut counts = vec![0usize; personas.len()];
    for p in space.sample_persona.iter().flatten() {
        counts[*p] += 1;
    }
    let mut centroids = Table::new(
        "Persona centroids on the principal components",
        &[
            ("persona_id", true),
            ("label", false),
            ("users", true),
            ("users plotted", true),
            ("PC1", true),
            ("PC2", true),
        ],
    );
    for (i, p) in personas.iter().enumerate() {
        let c = projected.centroids.get(i).copied().flatten();
        centroids.rows.push(vec![
            Cell::Num(p.id_text.clone()),
            Cell::Text(p.label.clone()),
            Cell::Num(space.persona_users[i].to_string()),
            Cell::Num(counts[i].to_string()),
            Cell::Num(fixed(c.map(|c| c.0), 3)),
            Cell::Num(fixed(c.map(|c| c.1), 3)),
        ]);
    }
    let mut loadings = Table::new(
        "Feature loadings of the principal components",
        &[("feature", false), ("PC1", true), ("PC2", true)],
    );
    for feature in &space.features {
        let load = |c: usize| {
            projected.loadings[c]
                .iter()
                .find(|(f, _)| f == feature)
                .map(|(_, l)| *l)
        };
        loadings.rows.push(vec![
            Cell::Text(feature.clone()),
            Cell::Num(fixed(load(0), 3)),
            Cell::Num(fixed(load(1), 3)),
        ]);
    }
    let sample = if plotted < space.users {
        format!(
            "a random sample of {} of the {} users (seed {seed})",
            grouped(plotted as f64),
            grouped(space.users as f64)
        )
    } else {
        match space.users {
            1 => "its one user".to_string(),
            n => format!("all {} users", grouped(n as f64)),
        }
    };
    let caption = format!(
        "Principal component analysis (linfa-reduction) of the users' standardised features (the same transform as the heat map), fitted on {sample}. Large outlined marks are the persona centroids. PC1 is driven most by {}; PC2 by {}. Overlap here does not mean two personas are alike: they can differ on components this view leaves out.",
        escape(&top(0)),
        escape(&top(1))
    );
    Ok(figure("projection", &svg, &caption, &[centroids, loadings]))
}
