//! The global allocator: mimalloc, with its own purge delay (freed memory goes back
//! to the OS after a second unused; `MIMALLOC_PURGE_DELAY` in the environment sets
//! it). Measurements behind the choice: docs/benchmarks.md, "The allocator".

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
