//! The part of the run record (`run.json`) that the HTML report reads, typed.
//!
//! The pipeline writes `run.json` (its `RunRecord`); the report only reads it, and a
//! stage crate never imports the pipeline, so these structs mirror the fields the page
//! shows and nothing else. Every field may be absent, so an older or partial record
//! still renders with those facts left out; fields the page does not show are ignored.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::{Error, Result};

/// What the report shows of a run record.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RunView {
    /// Pipeline name.
    pub pipeline: Option<String>,
    /// Pipeline file.
    pub pipeline_file: Option<String>,
    /// Run id (also the run folder's name).
    pub run_id: Option<String>,
    /// How the run ended (`ok`, `failed`, ...); shown as written.
    pub status: Option<String>,
    /// As-of date used.
    pub as_of: Option<String>,
    /// Seed of the run; also seeds the projection's user sample.
    pub seed: Option<u64>,
    /// Versions of userlens and its engine, by name.
    pub versions: BTreeMap<String, String>,
    /// Input files.
    pub inputs: Vec<InputView>,
    /// Row counts.
    pub rows: RowsView,
    /// Per-stage record, in run order.
    pub stages: Vec<StageView>,
    /// The persona model, when the run clustered users.
    pub personas: Option<PersonasView>,
    /// What the stages said the reader should know (columns left out, ...).
    pub notes: Vec<String>,
    /// The predictors' time split, when the run predicted.
    pub models: Option<ModelsView>,
}

/// The time split of a run's predictors.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ModelsView {
    /// The day the predictors were fitted up to and scored after.
    pub cutoff: Option<String>,
    /// Days of the horizon after the cutoff (scoring) and after the as-of date
    /// (the predictions).
    pub horizon_days: Option<u64>,
}

impl RunView {
    /// Parses the bytes of `run.json` read from `path`; the error names `path`.
    pub fn from_slice(bytes: &[u8], path: &Path) -> Result<RunView> {
        serde_json::from_slice(bytes).map_err(|source| Error::ParseJson {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// One input file of the run.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct InputView {
    /// Path as given.
    pub path: Option<String>,
}

/// Row counts of the run's input.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RowsView {
    /// Rows read.
    pub read: Option<u64>,
    /// Rows kept.
    pub kept: Option<u64>,
    /// Rows quarantined.
    pub quarantined: Option<u64>,
    /// Exact duplicates dropped.
    pub duplicates: Option<u64>,
    /// Kept rows before the as-of date: the events the run counted.
    pub before_as_of: Option<u64>,
    /// Users profiled.
    pub users: Option<u64>,
}

impl RowsView {
    /// The count named as in `run.json` (`read`, `kept`, `quarantined`, `duplicates`,
    /// `before_as_of`, `users`).
    pub fn get(&self, name: &str) -> Option<u64> {
        match name {
            "read" => self.read,
            "kept" => self.kept,
            "quarantined" => self.quarantined,
            "duplicates" => self.duplicates,
            "before_as_of" => self.before_as_of,
            "users" => self.users,
            _ => None,
        }
    }
}

/// One stage of the run.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct StageView {
    /// Stage name.
    pub name: Option<String>,
    /// Stage kind.
    pub uses: Option<String>,
    /// How it ended (`ok`, `skipped`, `failed`); shown as written.
    pub status: Option<String>,
    /// Wall time in seconds.
    pub seconds: Option<f64>,
    /// Rows of its main output.
    pub rows_out: Option<u64>,
}

/// The persona model of the run.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PersonasView {
    /// Number of personas.
    pub k: Option<u64>,
    /// Algorithm that produced the personas.
    pub algorithm: Option<String>,
    /// Features clustered on.
    pub features: Option<Vec<String>>,
    /// The subset of `features` that is log-transformed.
    pub log_transformed: Option<Vec<String>>,
    /// Feature families left out of the clustering, as they carry no information.
    pub families_left_out: Vec<FamilyLeftOutView>,
    /// How much each family counts in the clustering.
    pub family_weights: Vec<FamilyWeightView>,
}

/// A feature family the clustering left out.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct FamilyLeftOutView {
    /// Family name, as in pipeline files (`time_of_day`).
    pub family: Option<String>,
    /// Why, in words ("every value missing").
    pub reason: Option<String>,
}

/// How much a feature family counts in the clustering.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct FamilyWeightView {
    /// Family name, as in pipeline files.
    pub family: Option<String>,
    /// Its share of the clustering space's variance.
    pub share: Option<f64>,
    /// Factor on its weights; below 1 when it was weighted down.
    pub scale: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<RunView> {
        RunView::from_slice(json.as_bytes(), Path::new("out/run.json"))
    }

    #[test]
    fn an_empty_record_parses_with_every_fact_absent() {
        assert_eq!(parse("{}").unwrap(), RunView::default());
    }

    #[test]
    fn unknown_fields_are_ignored_and_known_ones_typed() {
        let run = parse(
            r#"{"run_id": "r1", "seed": 7, "as_of": null, "extra": [1, {}],
                "rows": {"read": 10, "users": 3},
                "stages": [{"name": "ingest", "seconds": 0.5, "artifacts": ["a"]}],
                "params": {"personas": {"k": "auto", "k_min": 3}, "ingest": {"path": "x"}},
                "personas": {"k": 5, "centroids": [[0.1]], "features": ["monetary"]}}"#,
        )
        .unwrap();
        assert_eq!(run.run_id.as_deref(), Some("r1"));
        assert_eq!(run.seed, Some(7));
        assert_eq!(run.as_of, None);
        assert_eq!(
            (run.rows.get("read"), run.rows.get("kept")),
            (Some(10), None)
        );
        assert_eq!(run.stages[0].seconds, Some(0.5));
        let personas = run.personas.unwrap();
        assert_eq!(personas.k, Some(5));
        assert_eq!(personas.features, Some(vec!["monetary".to_string()]));
        assert_eq!(personas.log_transformed, None);
    }

    #[test]
    fn a_record_that_is_not_json_or_mistyped_names_the_file_and_place() {
        let err = parse("{ not json").unwrap_err();
        assert_eq!(err.to_string(), "failed to parse `out/run.json`");
        let err = parse(r#"{"seed": "seven"}"#).unwrap_err();
        assert_eq!(err.to_string(), "failed to parse `out/run.json`");
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert_eq!(
            source,
            "invalid type: string \"seven\", expected u64 at line 1 column 16"
        );
    }
}
