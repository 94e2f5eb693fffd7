//! The report sections of the `loyalty` stage, drawn from its files in the output folder.

use std::path::Path;

use super::{Page, Persona};
use crate::Result;

/// Adds the stage's sections when its files are in `dir`.
pub(super) fn add_sections(_page: &mut Page, _dir: &Path, _personas: &[Persona]) -> Result<()> {
    Ok(())
}
