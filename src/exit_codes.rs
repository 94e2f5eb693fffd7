//! Exit codes of the `userlens` binary, in one place (also listed in the README).

use userlens_pipeline::ErrorClass;

/// The run finished.
pub const OK: i32 = 0;
/// A stage failed.
pub const STAGE_FAILED: i32 = 1;
/// Bad command line or pipeline file.
pub const USAGE: i32 = 2;
/// Input data refused by a quality gate (too much quarantined, a required column
/// missing, nothing to profile).
pub const DATA_REFUSED: i32 = 3;
/// Another run of the same pipeline holds the lock.
pub const LOCKED: i32 = 4;

/// The exit code for a pipeline error.
pub fn for_class(class: ErrorClass) -> i32 {
    match class {
        ErrorClass::Usage => USAGE,
        ErrorClass::StageFailed => STAGE_FAILED,
        ErrorClass::DataRefused => DATA_REFUSED,
        ErrorClass::Locked => LOCKED,
    }
}
