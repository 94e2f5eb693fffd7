//! `report`: the tables of the stages it needs -> the public output files.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::record::StageMeta;
use crate::stage::{Declared, Inputs, Invalid, Output, Stage, StageContext, StageError};
use userlens_model::files;

/// Output files.
pub struct Report;

/// Parameters of the `report` stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportParams {
    /// Also write `features.csv` (every user's features as of the run).
    pub features_csv: bool,
}

/// Which table goes to which output file.
const FILES: [(&str, &str); 8] = [
    ("k_selection", files::K_SELECTION),
    ("migration", files::MIGRATION),
    ("drift", files::DRIFT),
    ("user_predictions", files::USER_PREDICTIONS),
    ("model_report", files::MODEL_REPORT),
    ("calibration", files::CALIBRATION),
    ("lift", files::LIFT),
    ("segments", files::USER_SEGMENTS),
];

impl Stage for Report {
    type Params = ReportParams;
    type Checked = ReportParams;
    const USES: &'static str = "report";
    const PROVIDES: &'static [&'static str] = &[];

    fn check(params: Self::Params, declared: &Declared) -> Result<Self::Checked, Invalid> {
        if declared.needs == 0 {
            return Err(Invalid::at_uses(
                "needs the stages whose tables it reports",
                "add `needs = [\"personas\"]` (a profile or predict stage)",
            ));
        }
        Ok(params)
    }

    fn table_columns(params: &Self::Checked, table: &str) -> Option<&'static [&'static str]> {
        let written = ["personas", "assignments"]
            .into_iter()
            .chain(FILES.map(|(table, _)| table))
            .any(|t| t == table);
        if written || (table == "features" && params.features_csv) {
            None
        } else {
            Some(&[])
        }
    }

    fn run(
        params: &Self::Checked,
        ctx: &mut StageContext<'_>,
        inputs: &Inputs<'_>,
    ) -> Result<Output, StageError> {
        if let (Some(personas), Some(assignments)) =
            (inputs.get("personas"), inputs.get("assignments"))
        {
            let mut summaries = Vec::new();
            if let Some(predictions) = inputs.get("user_predictions") {
                summaries.push(userlens_predict::persona_summary(
                    assignments,
                    predictions,
                    inputs.get("segments"),
                )?);
            }
            let personas = userlens_profile::enrich_personas(personas, &summaries)?;
            ctx.write_csv(files::PERSONAS, &personas)?;
            ctx.write_csv(
                files::USER_PERSONAS,
                &userlens_report::counts_as_integers(assignments)?,
            )?;
        }
        for (table, file) in FILES {
            if let Some(df) = inputs.get(table) {
                ctx.write_csv(file, df)?;
            }
        }
        if params.features_csv
            && let Some(features) = inputs.get("features")
        {
            ctx.write_csv(
                files::FEATURES,
                &userlens_report::counts_as_integers(features)?,
            )?;
        }
        Ok(Output {
            meta: StageMeta::default(),
            ..Output::default()
        })
    }

    fn finish(_: &Self::Checked, staging: &Path) -> Result<Vec<String>, StageError> {
        if !staging.join(files::PERSONAS).is_file() {
            return Ok(Vec::new());
        }
        // Rendered from the files just written, exactly as `userlens report` does.
        userlens_report::render_run_dir(staging).map_err(|e| StageError::Run(e.into()))?;
        Ok(vec![files::REPORT_HTML.to_string()])
    }
}
