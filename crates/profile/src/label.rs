//! Persona labels and descriptions from centroid z-scores.

use std::collections::HashMap;

use userlens_model::describe_feature;

/// A feature must be at least this many standard deviations from the population to
/// name a persona.
pub(crate) const LABEL_MIN_Z: f64 = 0.5;
/// Label of a persona with no feature far from the population.
pub(crate) const TYPICAL: &str = "typical users";
/// Label of the only persona when there is one.
pub(crate) const ALL_USERS: &str = "all users";
/// Separator between the terms of a label.
const SEPARATOR: &str = " · ";
/// Number of features in the `distinguishing` text.
const DISTINGUISHING_TERMS: usize = 3;

/// Feature indices sorted by |z| descending, then by name.
fn ranked(features: &[String], z: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..features.len().min(z.len())).collect();
    order.sort_by(|&a, &b| {
        z[b].abs()
            .total_cmp(&z[a].abs())
            .then_with(|| features[a].cmp(&features[b]))
    });
    order
}

/// Words for the features with |z| >= 0.5, strongest first, without repeated words.
pub(crate) fn label_terms(features: &[String], z: &[f64]) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for j in ranked(features, z) {
        if z[j].abs() < LABEL_MIN_Z {
            break;
        }
        let words = describe_feature(&features[j], z[j] > 0.0);
        if !terms.contains(&words) {
            terms.push(words);
        }
    }
    terms
}

/// The three strongest features in words with their z-score, e.g.
/// "high spend (+2.1 sd), frequent buyer (+1.8 sd)"; features that round to 0.0 sd are left out.
pub(crate) fn distinguishing(features: &[String], z: &[f64]) -> String {
    ranked(features, z)
        .into_iter()
        .filter(|&j| z[j].abs() >= 0.05)
        .take(DISTINGUISHING_TERMS)
        .map(|j| {
            format!(
                "{} ({:+.1} sd)",
                describe_feature(&features[j], z[j] > 0.0),
                z[j]
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Indices grouped by equal label, only groups with more than one member, in first-seen order.
fn collisions(labels: &[String]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (p, label) in labels.iter().enumerate() {
        match index.get(label.as_str()) {
            Some(&g) => groups[g].push(p),
            None => {
                index.insert(label, groups.len());
                groups.push(vec![p]);
            }
        }
    }
    groups.retain(|g| g.len() > 1);
    groups
}

/// Unique labels from each persona's ranked terms: the first `label_terms` terms joined
/// by " · " ("typical users" without any). Colliding labels take their next term until
/// they differ or run out; labels still equal then get " (persona N)".
pub(crate) fn unique_labels(terms: &[Vec<String>], label_terms: usize, ids: &[u32]) -> Vec<String> {
    let mut used: Vec<usize> = terms.iter().map(|t| t.len().min(label_terms)).collect();
    let render = |used: &[usize]| -> Vec<String> {
        terms
            .iter()
            .zip(used)
            .map(|(t, &u)| {
                if u == 0 {
                    TYPICAL.to_string()
                } else {
                    t[..u].join(SEPARATOR)
                }
            })
            .collect()
    };
    let mut labels = render(&used);
    loop {
        let groups = collisions(&labels);
        if groups.is_empty() {
            return labels;
        }
        let mut extended = false;
        for p in groups.into_iter().flatten() {
            if used[p] < terms[p].len() {
                used[p] += 1;
                extended = true;
            }
        }
        if !extended {
            break;
        }
        labels = render(&used);
    }
    // one pass is enough unless feature words themselves look like "(persona N)"
    for _ in 0..labels.len() {
        let groups = collisions(&labels);
        if groups.is_empty() {
            break;
        }
        for p in groups.into_iter().flatten() {
            let id = ids.get(p).copied().unwrap_or(p as u32 + 1);
            labels[p] = format!("{} (persona {id})", labels[p]);
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn terms_follow_strength_and_threshold() {
        let features = names(&["monetary", "frequency", "recency_days"]);
        let terms = label_terms(&features, &[2.1, -1.8, 0.4]);
        assert_eq!(terms, vec!["high spend", "rare buyer"]);
        assert_eq!(
            distinguishing(&features, &[2.1, -1.8, 0.4]),
            "high spend (+2.1 sd), rare buyer (-1.8 sd), lapsed (+0.4 sd)"
        );
        assert_eq!(distinguishing(&features, &[0.0, 0.01, -0.02]), "");
        // ties on |z| are broken by name
        assert_eq!(
            label_terms(&features, &[1.0, 1.0, 0.0]),
            vec!["frequent buyer", "high spend"]
        );
    }

    #[test]
    fn collisions_extend_then_number() {
        let terms = vec![
            names(&["high spend", "frequent buyer", "lapsed"]),
            names(&["high spend", "frequent buyer", "newcomer"]),
            names(&["high spend"]),
            names(&[]),
            names(&[]),
            names(&["very active"]),
        ];
        let labels = unique_labels(&terms, 2, &[1, 2, 3, 4, 5, 6]);
        assert_eq!(
            labels,
            vec![
                "high spend · frequent buyer · lapsed",
                "high spend · frequent buyer · newcomer",
                "high spend",
                "typical users (persona 4)",
                "typical users (persona 5)",
                "very active",
            ]
        );
    }

    #[test]
    fn identical_terms_get_numbers() {
        let terms = vec![names(&["eclectic"]), names(&["eclectic"])];
        assert_eq!(
            unique_labels(&terms, 2, &[1, 2]),
            vec!["eclectic (persona 1)", "eclectic (persona 2)"]
        );
    }
}
