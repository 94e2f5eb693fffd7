//! The global allocator: mimalloc, with its own purge delay (freed memory goes back
//! to the OS after a second unused; `MIMALLOC_PURGE_DELAY` in the environment sets
//! it), without asking for transparent huge pages (the `no_thp` feature: faulting
//! them in cost more than the TLB misses they save), and [`release_freed`], which a
//! run calls between stages. Measurements behind the choices: docs/benchmarks.md,
//! "The allocator".

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Hands the memory freed so far back to the system now rather than after the purge
/// delay (a run calls it between stages). The binary's one `unsafe` block.
#[allow(unsafe_code)]
pub fn release_freed() {
    unsafe extern "C" {
        fn mi_collect(force: bool);
    }
    // SAFETY: mimalloc's own entry point, which any thread may call at any time.
    unsafe { mi_collect(true) }
}
