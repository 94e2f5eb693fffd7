//! userlens on an Apache DataFusion Ballista cluster.
//!
//! Out-of-core events are Parquet parts that each hold whole users (a hash of the
//! user id picks the part), so per-user work goes part by part. This crate runs
//! that work as Ballista tasks, one per part, on executors that read the parts from
//! a folder they all see:
//!
//! - [`PartsExec`] is a DataFusion physical operator: its partition `i` runs a
//!   [`PartJob`] on part `i` with the same code as a local run (the per-user
//!   features, `userlens_features::part_features`, at the as-of date and at the
//!   prediction cutoff; the labels and purchase histories prediction reads,
//!   `userlens_predict::part_inputs`; k-means' E-step on a block of rows the
//!   driver wrote, `userlens_profile::assign_block`), and its rows carry the
//!   resulting tables as Parquet bytes in chunks;
//! - [`PartsTable`] is the table provider a client scans to plan it;
//! - [`codec`] registers both with Ballista's logical and physical codecs, so the
//!   scheduler and executors of [`roles`] can plan, ship and run them.
//!
//! Ballista's scheduler and executors do the distribution and the recovery: a task
//! of an executor that dies is run again on another. The driver ([`Ballista`])
//! reassembles each part's table in part order, so a cluster run publishes the
//! same bytes as a local one.

mod client;
pub mod codec;
mod error;
mod parts;
pub mod roles;

pub use client::{Ballista, cancel_running};
pub use error::{Error, Result};
pub use parts::{PartJob, PartsExec, PartsRequest, PartsTable, part_numbers};
