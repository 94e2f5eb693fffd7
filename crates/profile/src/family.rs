//! Feature families in the clustering: which a log leaves without information, how
//! much each one counts, and which ones name a persona first.

use serde::{Deserialize, Serialize};
use userlens_model::{CATEGORY_SHARE_PREFIX, FeatureFamily};

/// Families that say what a user is worth and how they buy: no other family counts
/// more than these together in the clustering.
pub(crate) const VALUE_FAMILIES: [FeatureFamily; 3] = [
    FeatureFamily::Rfm,
    FeatureFamily::Activity,
    FeatureFamily::Interpurchase,
];

pub(crate) use userlens_model::family_of;

/// Shares of a user's events (time of day, categories, searches): estimated from as
/// many events as the user has, so the sampling noise of few events is known.
pub(crate) fn is_event_share(name: &str) -> bool {
    family_of(name) == Some(FeatureFamily::TimeOfDay)
        || name.starts_with(CATEGORY_SHARE_PREFIX)
        || name == "search_share"
}

/// Why a feature carries no information for the clustering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Uninformative {
    /// Every value is missing.
    Missing,
    /// Every present value is the same.
    Constant,
}

/// A feature family none of whose features carries information in this log, so it
/// is left out of the clustering (a funnel, search or ratings family on a log of
/// purchases only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyLeftOut {
    /// The family.
    pub family: FeatureFamily,
    /// Why, in words: "every value missing", "every value equal" or both.
    pub reason: String,
    /// Its candidate features.
    pub features: Vec<String>,
}

/// How much one family counts in the space users are clustered in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilyWeight {
    /// The family.
    pub family: FeatureFamily,
    /// Its features clustered on.
    pub features: usize,
    /// Its share of the clustering space's variance, after `scale`.
    pub share: f64,
    /// Factor on its weights that keeps it from outweighing the value families
    /// (1: unchanged).
    pub scale: f64,
}

/// Families with candidate features of which none was kept, in family order, with
/// the reason; `dropped` lists the candidates left out and why.
pub(crate) fn left_out(
    candidates: &[String],
    kept: &[String],
    dropped: &[(String, Uninformative)],
) -> Vec<FamilyLeftOut> {
    let mut out = Vec::new();
    for family in FeatureFamily::ALL {
        let features: Vec<String> = candidates
            .iter()
            .filter(|name| family_of(name) == Some(family))
            .cloned()
            .collect();
        if features.is_empty() || kept.iter().any(|name| family_of(name) == Some(family)) {
            continue;
        }
        let why = |kind: Uninformative| {
            dropped
                .iter()
                .any(|(name, w)| *w == kind && features.contains(name))
        };
        let reason = match (why(Uninformative::Missing), why(Uninformative::Constant)) {
            (true, true) => "every value equal or missing",
            (true, false) => "every value missing",
            _ => "every value equal",
        };
        out.push(FamilyLeftOut {
            family,
            reason: reason.to_string(),
            features,
        });
    }
    out
}

/// "funnel (every value equal or missing), search (every value equal)".
pub fn describe_left_out(families: &[FamilyLeftOut]) -> String {
    families
        .iter()
        .map(|f| format!("{} ({})", f.family.name().replace('_', " "), f.reason))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn families_come_from_the_catalogue_and_prefixes() {
        assert_eq!(family_of("monetary"), Some(FeatureFamily::Rfm));
        assert_eq!(family_of("cat_share_toys"), Some(FeatureFamily::Categories));
        assert_eq!(family_of("user_age"), None);
        assert!(is_event_share("weekend_share") && is_event_share("cat_share_toys"));
        assert!(!is_event_share("monetary") && !is_event_share("view_to_cart"));
    }

    #[test]
    fn a_family_is_left_out_only_when_none_of_its_features_is_kept() {
        let candidates = names(&[
            "monetary",
            "views",
            "view_to_cart",
            "searches",
            "mean_rating",
            "ratings",
            "night_share",
            "weekend_share",
        ]);
        let kept = names(&["monetary", "weekend_share"]);
        let dropped = vec![
            ("views".to_string(), Uninformative::Constant),
            ("view_to_cart".to_string(), Uninformative::Missing),
            ("searches".to_string(), Uninformative::Constant),
            ("mean_rating".to_string(), Uninformative::Missing),
            ("ratings".to_string(), Uninformative::Constant),
            ("night_share".to_string(), Uninformative::Constant),
        ];
        let out = left_out(&candidates, &kept, &dropped);
        let families: Vec<FeatureFamily> = out.iter().map(|f| f.family).collect();
        assert_eq!(
            families,
            vec![
                FeatureFamily::Funnel,
                FeatureFamily::Search,
                FeatureFamily::Satisfaction
            ]
        );
        assert_eq!(out[0].features, names(&["views", "view_to_cart"]));
        assert_eq!(
            describe_left_out(&out),
            "funnel (every value equal or missing), search (every value equal), \
             satisfaction (every value equal or missing)"
        );
    }
}
