//! Prediction: per-user behaviour predictions three ways — declarative rules,
//! statistical customer-base models (BG/NBD, Pareto/NBD, Gamma-Gamma) and machine
//! learning on a time split — each scored on the same holdout. [`predict`] runs
//! them all; [`persona_summary`] averages the predictions per persona. What they
//! read from each part of the events is [`part_inputs`], which another engine (a
//! cluster, [`RemoteInputs`]) can compute and send back as tables ([`PartInputs`]).

mod error;
pub mod metrics;
pub mod ml;
mod personas;
pub mod rules;
pub mod segments;
mod stage;
pub mod stats;

pub use personas::persona_summary;
pub use stage::{
    CheckedPredictParams, EVENT_COLUMNS, Error, PartInputs, PredictParams, Predictions,
    RemoteInputs, Result, RuleParams, Target, part_inputs, predict,
};
pub use stats::TimeUnit;
