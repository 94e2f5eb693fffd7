//! `userlens validate`: checks a pipeline file and prints its plan, reading no data.

use std::io::Write;
use std::path::Path;

use crate::Failure;

/// Loads the pipeline file and lists its stages in run order.
pub fn run(pipeline: &Path, set: &[String]) -> Result<(), Failure> {
    let plan = userlens_pipeline::load(pipeline, &super::overrides(set)?)?;
    if let Some(located) = plan.output_error {
        return Err(userlens_pipeline::Error::File(located).into());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}: ok, pipeline `{}`", pipeline.display(), plan.name)?;
    for (i, stage) in plan.stages.iter().enumerate() {
        let needs: Vec<&str> = stage
            .needs
            .iter()
            .map(|&n| plan.stages[n].name.as_str())
            .collect();
        let needs = if needs.is_empty() {
            String::new()
        } else {
            format!(" <- {}", needs.join(", "))
        };
        writeln!(out, "  {}. {} ({}){needs}", i + 1, stage.name, stage.uses())?;
    }
    writeln!(out, "  output: {}", plan.output.display())?;
    // A valid file all the same: `--engine` may run it elsewhere.
    let engine = userlens_pipeline::RunOptions::default().engine_of(&plan)?;
    if let Err(e) = engine.check_built(None) {
        writeln!(out, "  warning: {e}")?;
    }
    Ok(())
}
