//! `userlens report`: re-renders a finished run's report page.

use std::io::Write;
use std::path::Path;

use crate::Failure;

/// Renders `report.html` in the output folder and prints its path.
pub fn run(output_dir: &Path) -> Result<(), Failure> {
    let path = userlens_pipeline::render_report(output_dir)?;
    writeln!(std::io::stdout(), "{}", path.display())?;
    Ok(())
}
