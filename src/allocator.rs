//! The global allocator, mimalloc, and how long it keeps the memory a run frees.
//! Measurements behind these choices: docs/benchmarks.md, "The allocator".

use std::ffi::{c_int, c_long};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in the `mi_option_e` enum of mimalloc 3 (libmimalloc-sys
/// 0.1.49, `c_src/mimalloc/v3/include/mimalloc.h`), which the crate does not name.
const MI_OPTION_PURGE_DELAY: c_int = 15;

/// mimalloc 3's own purge delay, in milliseconds.
const MIMALLOC_PURGE_DELAY_MS: c_long = 1000;

/// Keeps the memory the run frees for its own reuse instead of returning it to the OS:
/// the stages free and allocate gigabytes in turn, and fresh pages are zeroed on first
/// touch. Out of core, where memory must stay bounded, see [`return_freed_memory`].
pub fn keep_freed_memory() {
    set_purge_delay(-1);
}

/// Back to mimalloc's purge delay, for a run whose events are read out of core: its
/// ingest frees and allocates so much that kept memory would multiply its peak.
pub fn return_freed_memory() {
    set_purge_delay(MIMALLOC_PURGE_DELAY_MS);
}

/// Sets the purge delay unless `MIMALLOC_PURGE_DELAY` in the environment sets it.
#[allow(unsafe_code)]
fn set_purge_delay(milliseconds: c_long) {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option of the allocator; mimalloc reads options
        // atomically, so it may be set at any time, from any thread.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, milliseconds) };
    }
}

#[cfg(test)]
mod tests {
    /// The option set by `keep_freed_memory` is the purge delay: mimalloc 3's other
    /// options near index 15 default to 0 or 1, the purge delay to 1000 ms.
    #[test]
    #[allow(unsafe_code)]
    fn the_option_index_is_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads one integer option of the allocator.
        let delay = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(delay, super::MIMALLOC_PURGE_DELAY_MS);
    }
}
