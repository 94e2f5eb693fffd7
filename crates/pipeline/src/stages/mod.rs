//! The stage kinds userlens ships, one file each.

mod features;
mod ingest;
mod loyalty;
mod predict;
mod profile;
mod recommend;
mod report;

pub use features::{
    FEATURES_AT_CUTOFF, FEATURES_AT_PERIOD_START, Features, FeaturesAsked, FeaturesChecked,
};
pub use ingest::Ingest;
pub use loyalty::Loyalty;
pub use predict::Predict;
pub use profile::Profile;
pub use recommend::Recommend;
pub use report::{Report, ReportParams};

use crate::stage::Registry;

/// Adds every built-in kind to `registry`.
pub(crate) fn register(registry: Registry) -> Registry {
    registry
        .with::<Ingest>()
        .with::<Features>()
        .with::<Profile>()
        .with::<Predict>()
        .with::<Recommend>()
        .with::<Loyalty>()
        .with::<Report>()
}

/// `n` and the noun for it: `1 row`, `2 rows`.
pub(crate) fn counted(n: usize, one: &str, more: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { more })
}

/// A kind's parameter defaults as a table ([`crate::Stage::defaults`]).
fn defaults<P: Default + serde::Serialize>() -> Option<toml::Table> {
    toml::Table::try_from(P::default()).ok()
}
