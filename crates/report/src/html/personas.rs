//! The persona cards: each persona's name, size, what sets it apart, and how the
//! clustering weighed the feature families.

use super::*;

fn average_value(words: &str, v: f64) -> String {
    let decimals = CARD_AVERAGES
        .iter()
        .find(|(_, w, _)| *w == words)
        .map_or(2, |(_, _, d)| *d);
    if v.abs() >= 1000.0 {
        grouped(v)
    } else {
        fixed(Some(v), decimals)
    }
}

/// Which feature families the clustering left out or weighted down, and why.
fn family_method(model: Option<&PersonasView>) -> String {
    let Some(model) = model else {
        return String::new();
    };
    let family = |name: &Option<String>| name.as_deref().unwrap_or("?").replace('_', " ");
    let mut out = String::new();
    let left_out: Vec<String> = model
        .families_left_out
        .iter()
        .map(|f| match &f.reason {
            Some(reason) => format!("{} ({reason})", family(&f.family)),
            None => family(&f.family),
        })
        .collect();
    if !left_out.is_empty() {
        out.push_str(&format!(
            " Left out of the clustering because they carry no information in this log: {}.",
            escape(&left_out.join(", "))
        ));
    }
    let capped: Vec<String> = model
        .family_weights
        .iter()
        .filter(|w| w.scale.is_some_and(|s| s < 1.0))
        .map(|w| {
            let share = w.share.map(|s| s * 100.0);
            format!(
                "{} ({}% of the clustering)",
                family(&w.family),
                fixed(share, 0)
            )
        })
        .collect();
    if !capped.is_empty() {
        out.push_str(&format!(
            " Weighted down so that no family counts more than value and behaviour together: {}.",
            escape(&capped.join(", "))
        ));
    }
    out
}

/// Which of the cards' predictions nothing vouches for: tried, but never scored on
/// held-out users.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Unchecked {
    /// No machine-learning purchase model (the cards' `p_purchase`) was scored on
    /// every held-out user.
    pub purchase: bool,
    /// The revenue the cards show (the `revenue` predictor) was not scored.
    pub revenue: bool,
}

pub(super) fn predictions_unchecked(report: &DataFrame) -> Result<Unchecked> {
    const T: &str = "model_report";
    let targets = frame::strings(report, T, "target")?;
    let predictors = frame::strings(report, T, "predictor")?;
    let status = frame::opt_strings(report, T, "status")?;
    let population = frame::opt_strings(report, T, "population")?;
    let unchecked = |target: &str, predictor: &dyn Fn(&str) -> bool| {
        let rows: Vec<usize> = (0..report.height())
            .filter(|&i| {
                targets[i].as_deref() == Some(target)
                    && predictors[i].as_deref().is_some_and(predictor)
                    && population
                        .as_ref()
                        .is_none_or(|p| p[i].as_deref() == Some("all"))
            })
            .collect();
        let scored = rows.iter().any(|&i| {
            status
                .as_ref()
                .is_none_or(|s| s[i].as_deref() == Some("scored"))
        });
        !rows.is_empty() && !scored
    };
    Ok(Unchecked {
        purchase: unchecked("p_purchase", &|p| matches!(p, "logistic" | "tree")),
        revenue: unchecked("revenue", &|p| p == "revenue"),
    })
}

/// The cards' note on predictions they show that nothing vouches for.
fn unchecked_note(personas: &[Persona], unchecked: Unchecked) -> Option<String> {
    let purchase = unchecked.purchase && personas.iter().any(|p| p.p_purchase.is_some());
    let revenue = unchecked.revenue && personas.iter().any(|p| p.revenue.is_some());
    let (models, what) = match (purchase, revenue) {
        (true, true) => (
            "purchase or revenue model",
            "the predicted purchases and revenue below are",
        ),
        (true, false) => ("purchase model", "the predicted purchases below are"),
        (false, true) => ("revenue model", "the predicted revenue below is"),
        (false, false) => return None,
    };
    Some(format!(
        "No {models} could be scored on the holdout (see the predictions' scores): {what} unchecked."
    ))
}

pub(super) fn persona_cards(
    personas: &[Persona],
    model: Option<&PersonasView>,
    unchecked: Unchecked,
) -> String {
    if personas.is_empty() {
        return note("This run has no personas.");
    }
    let mut out = format!(
        "<p class=\"lead\">Each persona is a group of users with similar behaviour, named after the features that set it apart from everyone else; what its users spend and how often they buy come first in the name, but a persona matched to the last run's keeps its name while that name still holds.{}</p>\n",
        family_method(model)
    );
    if let Some(unchecked) = unchecked_note(personas, unchecked) {
        out.push_str(&note(&unchecked));
    }
    out.push_str("<div class=\"cards\">\n");
    for (i, p) in personas.iter().enumerate() {
        let color = charts::hex(charts::color(i));
        let share = p.share.map(|s| (s * 100.0).clamp(0.0, 100.0));
        out.push_str(&format!(
            "<article class=\"card\" style=\"--c:{color}\" aria-labelledby=\"persona-{i}\">\n<h3 id=\"persona-{i}\"><span class=\"pid\">#{}</span> {}</h3>\n",
            escape(&p.id_text),
            escape(&p.label)
        ));
        out.push_str(&format!(
            "<p class=\"size\"><strong>{}</strong> {} · <strong>{}%</strong> of all users</p>\n",
            p.users.map_or("—".to_string(), grouped),
            plural(p.users.unwrap_or(0.0), "user"),
            fixed(share, 1)
        ));
        out.push_str(&format!(
            "<div class=\"sharebar\" aria-hidden=\"true\"><span style=\"width:{}%\"></span></div>\n",
            fixed(share.or(Some(0.0)), 1)
        ));
        if let Some(d) = &p.distinguishing {
            out.push_str(&format!(
                "<p class=\"apart\"><strong>Sets it apart:</strong> {}</p>\n",
                escape(d)
            ));
        }
        let mut facts: Vec<(String, String)> = Vec::new();
        if let Some(c) = &p.top_categories {
            facts.push(("Users' top category".into(), c.clone()));
        }
        if let Some(q) = &p.top_queries {
            facts.push(("Users' top search".into(), q.clone()));
        }
        for (what, value) in &p.common {
            facts.push((format!("Most common {what}"), value.clone()));
        }
        if let Some(v) = p.p_purchase {
            facts.push((
                "Predicted to buy".into(),
                format!("{}% mean purchase probability", fixed(Some(v * 100.0), 1)),
            ));
        }
        if let Some(v) = p.revenue {
            facts.push((
                "Predicted revenue".into(),
                format!("{} per user", average_value("spend", v)),
            ));
        }
        if let Some(s) = &p.segment_mix {
            facts.push(("Segment mix".into(), s.clone()));
        }
        if !facts.is_empty() {
            out.push_str("<dl>\n");
            for (k, v) in facts {
                out.push_str(&format!("<dt>{}</dt><dd>{}</dd>\n", escape(&k), escape(&v)));
            }
            out.push_str("</dl>\n");
        }
        if !p.averages.is_empty() {
            out.push_str("<ul class=\"stats\" aria-label=\"Averages per user\">\n");
            for (words, v) in &p.averages {
                out.push_str(&format!(
                    "<li><b>{}</b><span>{}</span></li>\n",
                    average_value(words, *v),
                    escape(words)
                ));
            }
            out.push_str("</ul>\n");
        }
        out.push_str("</article>\n");
    }
    out.push_str("</div>\n");
    out
}
