//! `profile`: features -> personas, with ids kept stable against the last good run.

use crate::record::StageMeta;
use crate::stage::{Declared, Inputs, Invalid, Output, Stage, StageContext, StageError, Tables};

/// Personas by clustering.
pub struct Profile;

impl Stage for Profile {
    type Params = userlens_profile::ProfileParams;
    type Checked = userlens_profile::CheckedProfileParams;
    const USES: &'static str = "profile";
    const PROVIDES: &'static [&'static str] = &["assignments", "personas", "k_selection"];
    const MAY_PROVIDE: &'static [&'static str] = &["migration"];
    const REQUIRES: &'static [&'static str] = &["features"];

    fn check(params: Self::Params, _: &Declared) -> Result<Self::Checked, Invalid> {
        params.check().map_err(Invalid::new)
    }

    fn run(
        params: &Self::Checked,
        ctx: &mut StageContext<'_>,
        inputs: &Inputs<'_>,
    ) -> Result<Output, StageError> {
        let features = inputs.table("features")?;
        let mut profile = userlens_profile::profile(features, params, ctx.seed())?;
        let mut meta = StageMeta::default();
        let mut tables = Tables::default();
        let previous_model = ctx
            .previous_meta()
            .and_then(|meta| meta.personas)
            .map(serde_json::from_value::<userlens_profile::PersonaModel>)
            .transpose()?;
        if let Some(previous_model) = previous_model {
            let before = ctx.previous_table("assignments");
            let stability = userlens_profile::stability::stabilise(
                &previous_model,
                before.as_ref(),
                &mut profile,
                userlens_profile::stability::MAX_MATCH_DISTANCE,
            )?;
            let mut summary = serde_json::json!({ "against_run": ctx.previous_run() });
            if let (Some(summary), serde_json::Value::Object(fields)) = (
                summary.as_object_mut(),
                serde_json::to_value(&stability.summary)?,
            ) {
                summary.extend(fields);
            }
            meta.stability = Some(summary);
            if let Some(migration) = stability.migration {
                tables.insert("migration", migration);
            }
        }
        meta.personas = Some(serde_json::to_value(&profile.model)?);
        tables.insert("assignments", profile.assignments);
        tables.insert("personas", profile.personas);
        tables.insert("k_selection", profile.k_selection);
        Ok(Output { tables, meta })
    }
}
