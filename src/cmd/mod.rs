//! One module per command; each takes its parsed arguments and writes its results
//! to stdout.

pub mod backfill;
pub mod cluster;
pub mod generate;
pub mod profile;
pub mod report;
pub mod run;
pub mod runs;
pub mod validate;

use userlens_pipeline::Override;

use crate::Failure;

/// Parses `--set stage.key=value` overrides.
fn overrides(set: &[String]) -> Result<Vec<Override>, Failure> {
    set.iter()
        .map(|s| Override::parse(s).map_err(Failure::from))
        .collect()
}
