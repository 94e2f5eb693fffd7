//! Re-rendering the HTML report from the output folder of a finished run.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::html::{ReportInput, write_html};
use crate::{Error, Result};

/// File names in a run's output folder that the HTML report reads and writes.
pub mod files {
    /// Personas, one row each (required).
    pub const PERSONAS: &str = "personas.csv";
    /// Users with their persona and features (required).
    pub const USER_PERSONAS: &str = "user_personas.csv";
    /// The run record (required).
    pub const RUN: &str = "run.json";
    /// Clustering quality per k tried (optional).
    pub const K_SELECTION: &str = "k_selection.csv";
    /// Predictor scores on the holdout (optional).
    pub const MODEL_REPORT: &str = "model_report.csv";
    /// Calibration bins per predictor and target (optional).
    pub const CALIBRATION: &str = "calibration.csv";
    /// Lift by decile per predictor and target (optional).
    pub const LIFT: &str = "lift.csv";
    /// Users moving between personas since the previous run (optional).
    pub const MIGRATION: &str = "migration.csv";
    /// Feature drift since the previous run (optional).
    pub const DRIFT: &str = "drift.csv";
    /// The report page written.
    pub const REPORT_HTML: &str = "report.html";
}

fn read_csv(path: &Path) -> Result<DataFrame> {
    // The whole file is scanned for types: a feature that is empty for the first
    // hundred users (ratings, say) must still read as a number.
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(None)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|reader| reader.finish())
        .map_err(|source| Error::ReadTable {
            path: path.to_path_buf(),
            source,
        })
}

fn read_optional(dir: &Path, name: &str) -> Result<Option<DataFrame>> {
    let path = dir.join(name);
    if path.is_file() {
        read_csv(&path).map(Some)
    } else {
        Ok(None)
    }
}

/// Re-renders `report.html` in `output_dir` from the run's CSV files and `run.json`
/// there (see [`files`]); sections whose optional files are absent are left out.
/// Returns the path written.
pub fn render_run_dir(output_dir: &Path) -> Result<PathBuf> {
    let personas = read_csv(&output_dir.join(files::PERSONAS))?;
    let assignments = read_csv(&output_dir.join(files::USER_PERSONAS))?;
    let run_path = output_dir.join(files::RUN);
    let bytes = std::fs::read(&run_path).map_err(|source| Error::ReadFile {
        path: run_path.clone(),
        source,
    })?;
    let run: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|source| Error::ParseJson {
            path: run_path.clone(),
            source,
        })?;
    let k_selection = read_optional(output_dir, files::K_SELECTION)?;
    let model_report = read_optional(output_dir, files::MODEL_REPORT)?;
    let calibration = read_optional(output_dir, files::CALIBRATION)?;
    let lift = read_optional(output_dir, files::LIFT)?;
    let migration = read_optional(output_dir, files::MIGRATION)?;
    let drift = read_optional(output_dir, files::DRIFT)?;
    let input = ReportInput {
        personas: &personas,
        assignments: &assignments,
        k_selection: k_selection.as_ref(),
        run: &run,
        model_report: model_report.as_ref(),
        calibration: calibration.as_ref(),
        lift: lift.as_ref(),
        migration: migration.as_ref(),
        drift: drift.as_ref(),
    };
    let path = output_dir.join(files::REPORT_HTML);
    write_html(&input, &path)?;
    Ok(path)
}
