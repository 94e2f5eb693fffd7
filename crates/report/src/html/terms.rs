//! The page's last section: the terms its other sections use, each in a plain
//! sentence, for a reader who is not a data scientist.

use super::escape;

/// Terms and what they mean, by the sections (their ids) that use them.
const TERMS: &[(&[&str], &str, &str)] = &[
    (
        &["personas"],
        "sd",
        "Standard deviations: how far a persona's mean is from everyone's, in units of how much users differ from one another (+2 sd is far above most users).",
    ),
    (
        &[
            "prediction",
            "loyalty-retention",
            "loyalty-repeat",
            "loyalty-survival",
            "loyalty-nps",
            "loyalty-ratings",
        ],
        "Champions, loyal, promising, at risk, hibernating, lost",
        "RFM segments, from how recently (R), how often (F) and how much (M) a user bought, each scored 1 to 5: champions score 4 or more on all three; loyal score 3 or more on R and 4 or more on F; promising 4 or more on R and 3 or less on F; at risk 2 or less on R and 3 or more on F; lost 1 on R and 2 or less on F; hibernating are the rest. Each user takes the first of these that fits, in this order.",
    ),
    (
        &["prediction"],
        "Predicted revenue",
        "What a user is expected to spend in the prediction horizon (the Predictions section gives its days), from how often and how much they bought; a user who has not bought is valued by the chance of a first purchase and the usual first order.",
    ),
    (
        &["k-selection"],
        "Inertia, elbow",
        "Inertia is the users' summed squared distance to their persona's centre: it always falls as personas are added, and the elbow is where it stops falling fast.",
    ),
    (
        &["k-selection"],
        "Silhouette, Calinski-Harabasz, Davies-Bouldin",
        "How well the personas are separated: the silhouette (-1 to 1) compares each user's distance to their own persona with the nearest other one; Calinski-Harabasz (higher is better) and Davies-Bouldin (lower is better) compare the spread between personas with the spread within them.",
    ),
    (
        &["projection"],
        "Principal components, loadings",
        "The two directions in which users differ most, drawn as the chart's axes; a feature's loading says how much of a direction it makes up.",
    ),
    (
        &["prediction"],
        "P(alive)",
        "The chance a customer has not left for good, from the pattern of their purchases (Pareto/NBD, BG/NBD). A customer alive may still not buy in the next weeks.",
    ),
    (
        &["prediction"],
        "Holdout, cutoff",
        "The models are fitted on the events before a cutoff and scored on what users did after it, which they never saw: the scores say how well they predict.",
    ),
    (
        &["recommendations"],
        "MAP",
        "Mean average precision: like precision@k, but a hit near the top of the list counts more than one near the bottom.",
    ),
    (
        &["loyalty-survival"],
        "Kaplan-Meier, censored",
        "The Kaplan-Meier curve is the share of users still active after a number of days. A user whose churn is not known yet (active recently) is censored: counted while observed, not as churned.",
    ),
    (
        &["loyalty-nps"],
        "NPS",
        "Net Promoter Score: the share of promoters (9 or 10 out of 10) minus the share of detractors (0 to 6), from -100 to 100.",
    ),
    (
        &["loyalty-drivers"],
        "ρ, β",
        "ρ (rho) is the rank correlation of a feature with the outcome, from -1 to 1; β is its standardised coefficient when every feature is taken together, which tells the features apart from one another.",
    ),
];

/// The terms of the sections the page has (`ids`), or `None` when it has none of them.
pub(super) fn terms_section<'a>(ids: impl Iterator<Item = &'a str> + Clone) -> Option<String> {
    let used: Vec<&(&[&str], &str, &str)> = TERMS
        .iter()
        .filter(|(sections, _, _)| ids.clone().any(|id| sections.contains(&id)))
        .collect();
    if used.is_empty() {
        return None;
    }
    let mut out = String::from("<dl class=\"terms\">\n");
    for (_, term, meaning) in used {
        out.push_str(&format!(
            "<dt>{}</dt><dd>{}</dd>\n",
            escape(term),
            escape(meaning)
        ));
    }
    out.push_str("</dl>\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_terms_of_the_sections_on_the_page_are_given() {
        let some = super::terms_section(["personas", "summary"].into_iter()).unwrap();
        assert!(some.contains("<dt>sd</dt>"), "{some}");
        // Segments and revenue are the predictions': a page without them has neither.
        assert!(
            !some.contains("Champions") && !some.contains("NPS"),
            "{some}"
        );
        let predicted = super::terms_section(["prediction"].into_iter()).unwrap();
        assert!(predicted.contains("Champions"), "{predicted}");
        // The loyalty tables cut users by segment too.
        let loyal = super::terms_section(["loyalty-repeat"].into_iter()).unwrap();
        assert!(loyal.contains("Champions"), "{loyal}");
        assert_eq!(super::terms_section(["summary"].into_iter()), None);
    }
}
