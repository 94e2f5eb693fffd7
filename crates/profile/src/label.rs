//! Persona labels and descriptions from centroid z-scores. Value and purchase rhythm
//! name a persona first, composed into a phrase ("one-time bargain buyers"); other
//! features follow in their catalogue words ("high-value regulars · electronics").

use std::collections::HashMap;

use userlens_model::{FeatureFamily, describe_feature};

use crate::family::family_of;

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
/// A persona whose users mostly made one purchase is called one-time; one whose
/// users mostly bought more than once, regulars.
const MOSTLY: f64 = 0.5;
/// A persona is called non-buying where at least this share of its users bought
/// nothing: one where two in five bought is no non-buying one.
const NON_BUYING_SHARE: f64 = 0.8;

/// What a persona's users bought, for words no z-score gives.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Purchases {
    /// Share of its users with exactly one purchase.
    pub(crate) one: f64,
    /// Share of its users with no purchase.
    pub(crate) none: f64,
    /// Share of every user with no purchase: a persona that bought more than the
    /// population is not called non-buying, however many of its users bought nothing.
    pub(crate) everyone_none: f64,
}

impl Purchases {
    /// Whether nearly all its users bought nothing ([`NON_BUYING_SHARE`]), no fewer
    /// than of all users.
    fn non_buying(&self) -> bool {
        self.none >= NON_BUYING_SHARE && self.none >= self.everyone_none
    }
}

/// One feature that sets a persona apart.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Term {
    /// Feature name.
    feature: String,
    /// Above the population (`true`) or below.
    high: bool,
    /// The catalogue's words for it.
    words: String,
}

/// Value and purchase rhythm: the families whose features name a persona first.
fn is_value(feature: &str) -> bool {
    matches!(
        family_of(feature),
        Some(FeatureFamily::Rfm | FeatureFamily::Interpurchase)
    )
}

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

/// The features with |z| >= 0.5: value features first, each group strongest first,
/// without repeated words.
pub(crate) fn label_terms(features: &[String], z: &[f64]) -> Vec<Term> {
    let strong: Vec<usize> = ranked(features, z)
        .into_iter()
        .filter(|&j| z[j].abs() >= LABEL_MIN_Z)
        .collect();
    let (value, other): (Vec<usize>, Vec<usize>) =
        strong.into_iter().partition(|&j| is_value(&features[j]));
    let mut terms: Vec<Term> = Vec::new();
    for j in value.into_iter().chain(other) {
        let high = z[j] > 0.0;
        let words = describe_feature(&features[j], high);
        if !terms.iter().any(|t| t.words == words) {
            terms.push(Term {
                feature: features[j].clone(),
                high,
                words,
            });
        }
    }
    terms
}

/// Value features that compose, in the order their adjectives take in a phrase:
/// when, how often, how much ("lapsed one-time bargain buyers").
const PHRASE_ORDER: [&str; 6] = [
    "recency_days",
    "tenure_days",
    "frequency",
    "mean_interpurchase_days",
    "monetary",
    "avg_order_value",
];

/// The adjective a value term lends a phrase, if it composes.
fn adjective(term: &Term, bought: Purchases) -> Option<&'static str> {
    Some(match (term.feature.as_str(), term.high) {
        ("recency_days", true) => "lapsed",
        ("recency_days", false) => "recent",
        ("tenure_days", true) => "long-standing",
        ("tenure_days", false) => "new",
        ("frequency", _) if bought.non_buying() => NON_BUYING,
        ("frequency", _) if bought.one >= MOSTLY => "one-time",
        ("frequency", false) => "occasional",
        ("mean_interpurchase_days", true) => "slow-repeat",
        ("mean_interpurchase_days", false) => "quick-repeat",
        ("monetary", true) => "high-value",
        ("monetary", false) => "low-value",
        ("avg_order_value", true) => "big-basket",
        ("avg_order_value", false) => "bargain",
        _ => return None,
    })
}

/// Adjective of a persona that nearly all bought nothing.
const NON_BUYING: &str = "non-buying";

/// Features that measure purchases made: of users who made none they say nothing
/// but that (an average basket of 0 is no small basket).
fn spend_of_purchases(feature: &str) -> bool {
    matches!(
        feature,
        "mean_interpurchase_days" | "monetary" | "avg_order_value"
    )
}

/// The label of `terms`: value terms that compose become one phrase (when, how often,
/// how much, then "regulars" for frequent buyers, "buyers" when the phrase speaks of
/// purchases, "customers" otherwise), the others keep their words, in order.
pub(crate) fn compose(terms: &[&Term], bought: Purchases) -> String {
    // Above the population is not "regulars" where most bought once or not at all.
    let repeat = 1.0 - bought.one - bought.none;
    let frequent = terms.iter().any(|t| t.feature == "frequency" && t.high) && repeat >= MOSTLY;
    // (place in the phrase, feature, adjective)
    let mut adjectives: Vec<(usize, &str, &str)> = Vec::new();
    let mut rest: Vec<&str> = Vec::new();
    for term in terms {
        // Said by "regulars", or, where most did not buy twice, not said at all.
        if term.feature == "frequency" && term.high && adjective(term, bought).is_none() {
            continue;
        }
        let place = PHRASE_ORDER.iter().position(|f| *f == term.feature);
        match (place, adjective(term, bought)) {
            (Some(place), Some(word)) => adjectives.push((place, &term.feature, word)),
            _ => rest.push(&term.words),
        }
    }
    let has = |word: &str| adjectives.iter().any(|(_, _, w)| *w == word);
    let value = spend_of_purchases;
    // a new customer is a recent one; one who bought nothing has no value to speak
    // of, whether or not how often they bought is among the terms
    let (new, named_non_buying) = (has("new"), has(NON_BUYING));
    let non_buying = named_non_buying || !frequent && bought.non_buying();
    let spoke_of_value = adjectives.iter().any(|(_, feature, _)| value(feature));
    adjectives
        .retain(|&(_, feature, word)| !(new && word == "recent" || non_buying && value(feature)));
    if non_buying && spoke_of_value && !named_non_buying {
        let place = PHRASE_ORDER.iter().position(|f| *f == "frequency");
        adjectives.push((place.unwrap_or_default(), "frequency", NON_BUYING));
    }
    adjectives.sort();
    let mut parts: Vec<String> = Vec::new();
    if frequent || !adjectives.is_empty() {
        // how often and basket size speak of purchases; spend alone of customers
        let buys = adjectives.iter().any(|(_, feature, _)| {
            matches!(
                *feature,
                "frequency" | "mean_interpurchase_days" | "avg_order_value"
            )
        });
        let noun = if frequent {
            "regulars"
        } else if non_buying {
            "visitors"
        } else if buys && bought.none < MOSTLY {
            // Not "buyers" where most bought nothing, if no more than of everyone.
            "buyers"
        } else {
            "customers"
        };
        let mut phrase: Vec<&str> = adjectives.iter().map(|(_, _, w)| *w).collect();
        phrase.push(noun);
        parts.push(phrase.join(" "));
    }
    parts.extend(rest.into_iter().map(str::to_string));
    parts.join(SEPARATOR)
}

/// The three strongest features in words with their z-score, e.g.
/// "high spend (+2.1 sd), frequent buyer (+1.8 sd)"; features that round to 0.0 sd are
/// left out, and so is the spend of a non-buying persona ([`NON_BUYING_SHARE`]).
pub(crate) fn distinguishing(features: &[String], z: &[f64], bought: Purchases) -> String {
    ranked(features, z)
        .into_iter()
        .filter(|&j| z[j].abs() >= 0.05)
        .filter(|&j| !(bought.non_buying() && spend_of_purchases(&features[j])))
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

/// Unique labels from each persona's ranked terms: the first `label_terms` terms
/// composed ("typical users" without any). A colliding label takes its strongest
/// unused term that the others of its group lack, else its next one, until they
/// differ or run out; labels still equal then get " (persona N)".
pub(crate) fn unique_labels(
    terms: &[Vec<Term>],
    bought: &[Purchases],
    label_terms: usize,
    ids: &[u32],
) -> Vec<String> {
    // per persona: indices of the terms in its label, in rank order
    let mut chosen: Vec<Vec<usize>> = terms
        .iter()
        .map(|t| (0..t.len().min(label_terms)).collect())
        .collect();
    let render = |chosen: &[Vec<usize>]| -> Vec<String> {
        chosen
            .iter()
            .enumerate()
            .map(|(p, picked)| {
                if picked.is_empty() {
                    return TYPICAL.to_string();
                }
                let picked: Vec<&Term> = picked.iter().map(|&i| &terms[p][i]).collect();
                compose(&picked, bought.get(p).copied().unwrap_or_default())
            })
            .collect()
    };
    let mut labels = render(&chosen);
    loop {
        let groups = collisions(&labels);
        if groups.is_empty() {
            return labels;
        }
        let mut extended = false;
        for group in groups {
            let mut added = Vec::new();
            for &p in &group {
                let unused = (0..terms[p].len()).filter(|i| !chosen[p].contains(i));
                let others_lack = |i: &usize| {
                    let words = &terms[p][*i].words;
                    group
                        .iter()
                        .filter(|&&q| q != p)
                        .all(|&q| terms[q].iter().all(|t| t.words != *words))
                };
                let next = unused.clone().find(others_lack).or(unused.min());
                if let Some(i) = next {
                    added.push((p, i));
                }
            }
            for (p, i) in added {
                chosen[p].push(i);
                chosen[p].sort_unstable();
                extended = true;
            }
        }
        if !extended {
            break;
        }
        labels = render(&chosen);
    }
    // one pass is enough unless feature words themselves look like "(persona N)"
    for _ in 0..labels.len() {
        let groups = collisions(&labels);
        if groups.is_empty() {
            break;
        }
        for p in groups.into_iter().flatten() {
            let id = ids.get(p).copied().unwrap_or(p as u32 + 1);
            labels[p] = with_id(&labels[p], id);
        }
    }
    labels
}

/// Most of a persona's terms whose subsets [`alternatives`] composes.
const ALTERNATIVE_TERMS: usize = 12;

/// Every label a persona with `terms` (ranked) may truthfully carry: each subset, in
/// rank order, of 1 to `label_terms + 1` of its terms (of the first
/// [`ALTERNATIVE_TERMS`]), composed ("typical users" without any).
pub(crate) fn alternatives(terms: &[Term], bought: Purchases, label_terms: usize) -> Vec<String> {
    let strongest = &terms[..terms.len().min(ALTERNATIVE_TERMS)];
    let mut out = Vec::new();
    if strongest.is_empty() {
        out.push(TYPICAL.to_string());
    }
    for mask in 1u32..(1 << strongest.len()) {
        if mask.count_ones() as usize > label_terms + 1 {
            continue;
        }
        let picked: Vec<&Term> = (0..strongest.len())
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| &strongest[i])
            .collect();
        let label = compose(&picked, bought);
        if !out.contains(&label) {
            out.push(label);
        }
    }
    out
}

/// `label` told apart from another persona's by its id.
pub(crate) fn with_id(label: &str, id: u32) -> String {
    format!("{label} (persona {id})")
}

/// `label` without the ids [`with_id`] gave it as persona `id`.
pub(crate) fn without_id(mut label: &str, id: u32) -> &str {
    let suffix = format!(" (persona {id})");
    while let Some(base) = label.strip_suffix(&suffix) {
        label = base;
    }
    label
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_feature_named_here_is_one_the_features_stage_makes() {
        // The names are the catalogue's: a feature renamed there must be renamed here,
        // or its words and shrinkage silently stop.
        let named = PHRASE_ORDER
            .iter()
            .chain(&crate::prepare::DRAWS)
            .chain(&["search_share", "frequency"]);
        for name in named {
            assert!(userlens_model::feature_info(name).is_some(), "{name}");
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn refs(terms: &[Term]) -> Vec<&Term> {
        terms.iter().collect()
    }

    fn words(terms: &[Term]) -> Vec<&str> {
        terms.iter().map(|t| t.words.as_str()).collect()
    }

    /// Terms with the catalogue's words for `(feature, high)` pairs.
    fn terms(list: &[(&str, bool)]) -> Vec<Term> {
        list.iter()
            .map(|&(feature, high)| Term {
                feature: feature.to_string(),
                high,
                words: describe_feature(feature, high),
            })
            .collect()
    }

    #[test]
    fn terms_follow_strength_and_threshold() {
        let features = names(&["monetary", "frequency", "recency_days"]);
        let terms = label_terms(&features, &[2.1, -1.8, 0.4]);
        assert_eq!(words(&terms), vec!["high spend", "rare buyer"]);
        let buyers = Purchases::default();
        assert_eq!(
            distinguishing(&features, &[2.1, -1.8, 0.4], buyers),
            "high spend (+2.1 sd), rare buyer (-1.8 sd), lapsed (+0.4 sd)"
        );
        assert_eq!(distinguishing(&features, &[0.0, 0.01, -0.02], buyers), "");
        // Of users who mostly bought nothing, spend is not said.
        let none = Purchases {
            none: 0.8,
            everyone_none: 0.5,
            ..buyers
        };
        assert_eq!(
            distinguishing(&features, &[-2.1, -1.8, 0.4], none),
            "rare buyer (-1.8 sd), lapsed (+0.4 sd)"
        );
        // ties on |z| are broken by name
        assert_eq!(
            words(&label_terms(&features, &[1.0, 1.0, 0.0])),
            vec!["frequent buyer", "high spend"]
        );
    }

    /// Two time-of-day shares, spend and a category's share.
    const MIXED: [&str; 4] = [
        "morning_share",
        "weekend_share",
        "monetary",
        "cat_share_toys",
    ];

    #[test]
    fn value_features_come_before_stronger_others() {
        let features = names(&MIXED);
        let terms = label_terms(&features, &[-3.0, 2.0, 0.6, 0.4]);
        assert_eq!(
            words(&terms),
            vec!["high spend", "rarely mornings", "weekend"]
        );
        assert_eq!(
            compose(&refs(&terms[..2]), Purchases::default()),
            "high-value customers · rarely mornings"
        );
        // below the threshold a value feature names nothing
        let terms = label_terms(&features, &[-3.0, 2.0, 0.4, 0.0]);
        assert_eq!(words(&terms), vec!["rarely mornings", "weekend"]);
        assert_eq!(
            compose(&refs(&terms), Purchases::default()),
            "rarely mornings · weekend"
        );
    }

    #[test]
    fn a_label_of_last_night_holds_while_its_terms_are_among_the_strongest() {
        let features = names(&MIXED);
        // Spend crossed the threshold tonight: the fresh label leads with it.
        let terms = label_terms(&features, &[-3.0, 2.0, 0.6, 0.4]);
        let fresh = unique_labels(
            std::slice::from_ref(&terms),
            &[Purchases::default()],
            2,
            &[1],
        );
        let holds = alternatives(&terms, Purchases::default(), 2);
        assert_eq!(fresh, ["high-value customers · rarely mornings"]);
        assert!(holds.contains(&fresh[0]), "{holds:?}");
        // Last night's label, before spend stood out, still holds...
        assert!(
            holds.contains(&"rarely mornings · weekend".to_string()),
            "{holds:?}"
        );
        // ...but not one of a term the persona no longer has.
        assert!(
            !holds
                .iter()
                .any(|l| l.contains("toys") || l.contains("evening"))
        );
        assert!(holds.len() <= 7, "{holds:?}");
        assert_eq!(alternatives(&[], Purchases::default(), 2), [TYPICAL]);
    }

    #[test]
    fn value_terms_compose_into_a_phrase() {
        let none = Purchases::default();
        let single = Purchases {
            one: 0.9,
            none: 0.0,
            ..Purchases::default()
        };
        type Case<'a> = (&'a [(&'a str, bool)], Purchases, &'a str);
        let cases: [Case; 20] = [
            (
                &[("monetary", true), ("frequency", true)],
                none,
                "high-value regulars",
            ),
            (
                &[("frequency", false), ("avg_order_value", false)],
                single,
                "one-time bargain buyers",
            ),
            (
                &[("frequency", false), ("avg_order_value", false)],
                none,
                "occasional bargain buyers",
            ),
            (
                &[("frequency", false), ("recency_days", true)],
                Purchases {
                    one: 0.15,
                    none: 0.8,
                    ..Purchases::default()
                },
                "lapsed non-buying visitors",
            ),
            // Most bought nothing, but three in ten bought: not non-buying.
            (
                &[("frequency", false), ("recency_days", true)],
                Purchases {
                    one: 0.2,
                    none: 0.7,
                    ..Purchases::default()
                },
                "lapsed occasional customers",
            ),
            (&[("monetary", false)], none, "low-value customers"),
            (
                &[
                    ("monetary", true),
                    ("tenure_days", true),
                    ("recency_days", true),
                ],
                none,
                "lapsed long-standing high-value customers",
            ),
            (
                &[
                    ("avg_order_value", true),
                    ("mean_interpurchase_days", false),
                ],
                none,
                "quick-repeat big-basket buyers",
            ),
            (
                &[
                    ("frequency", true),
                    ("cat_share_books", true),
                    ("night_share", true),
                ],
                none,
                "regulars · books · night owl",
            ),
            (&[("weekend_share", true)], none, "weekend"),
            (
                &[("avg_order_value", false), ("monetary", false)],
                none,
                "low-value bargain buyers",
            ),
            (
                &[("tenure_days", false), ("recency_days", false)],
                none,
                "new customers",
            ),
            (
                &[("recency_days", true), ("tenure_days", false)],
                none,
                "lapsed new customers",
            ),
            (
                &[
                    ("monetary", false),
                    ("frequency", false),
                    ("avg_order_value", false),
                ],
                Purchases {
                    one: 0.0,
                    none: 0.8,
                    ..Purchases::default()
                },
                "non-buying visitors",
            ),
            // How much a persona that bought nothing spends says nothing.
            (
                &[("avg_order_value", false), ("monetary", false)],
                Purchases {
                    one: 0.0,
                    none: 0.9,
                    ..Purchases::default()
                },
                "non-buying visitors",
            ),
            (
                &[("recency_days", true), ("avg_order_value", false)],
                Purchases {
                    one: 0.1,
                    none: 0.85,
                    ..Purchases::default()
                },
                "lapsed non-buying visitors",
            ),
            // Most bought nothing, but fewer than of all users: not non-buying.
            (
                &[("recency_days", false), ("avg_order_value", false)],
                Purchases {
                    one: 0.1,
                    none: 0.56,
                    everyone_none: 0.65,
                },
                "recent bargain customers",
            ),
            // Above the population in purchases, but each bought once.
            (
                &[("frequency", true), ("avg_order_value", true)],
                Purchases {
                    one: 1.0,
                    none: 0.0,
                    ..Purchases::default()
                },
                "one-time big-basket buyers",
            ),
            (
                &[("frequency", true), ("avg_order_value", true)],
                Purchases {
                    one: 0.3,
                    none: 0.1,
                    ..Purchases::default()
                },
                "big-basket regulars",
            ),
            // Neither mostly one-time nor mostly repeat buyers.
            (
                &[("frequency", true), ("avg_order_value", true)],
                Purchases {
                    one: 0.45,
                    none: 0.1,
                    ..Purchases::default()
                },
                "big-basket buyers",
            ),
        ];
        for (list, bought, want) in cases {
            assert_eq!(compose(&refs(&terms(list)), bought), want, "{list:?}");
        }
    }

    #[test]
    fn collisions_extend_then_number() {
        let all = vec![
            terms(&[
                ("monetary", true),
                ("frequency", true),
                ("recency_days", true),
            ]),
            terms(&[
                ("monetary", true),
                ("frequency", true),
                ("tenure_days", false),
            ]),
            terms(&[("monetary", true)]),
            terms(&[]),
            terms(&[]),
            terms(&[("events", true)]),
        ];
        let bought = vec![Purchases::default(); 6];
        let labels = unique_labels(&all, &bought, 2, &[1, 2, 3, 4, 5, 6]);
        assert_eq!(
            labels,
            vec![
                "lapsed high-value regulars",
                "new high-value regulars",
                "high-value customers",
                "typical users (persona 4)",
                "typical users (persona 5)",
                "very active",
            ]
        );
    }

    #[test]
    fn collisions_take_a_term_the_others_lack() {
        let shared = [
            ("recency_days", true),
            ("tenure_days", true),
            ("frequency", false),
            ("monetary", false),
        ];
        let all = vec![
            terms(&[&shared[..], &[("cat_share_toys", true)]].concat()),
            terms(&[&shared[..], &[("cat_share_beauty", true)]].concat()),
        ];
        let single = Purchases {
            one: 1.0,
            none: 0.0,
            ..Purchases::default()
        };
        assert_eq!(
            unique_labels(&all, &[single; 2], 2, &[1, 2]),
            vec![
                "lapsed long-standing customers · toys",
                "lapsed long-standing customers · beauty"
            ]
        );
    }

    #[test]
    fn identical_terms_get_numbers() {
        let all = vec![terms(&[("category_count", true)]); 2];
        assert_eq!(
            unique_labels(&all, &[Purchases::default(); 2], 2, &[1, 2]),
            vec!["eclectic (persona 1)", "eclectic (persona 2)"]
        );
    }
}
