//! Prediction: per-user behaviour predictions three ways — declarative rules,
//! statistical customer-base models (BG/NBD, Pareto/NBD, Gamma-Gamma) and machine
//! learning on a time split — each scored on the same holdout.

pub mod metrics;
pub mod ml;
pub mod rules;
pub mod segments;
mod stage;
pub mod stats;

pub use stage::{
    CheckedPredictParams, Error, PredictParams, Predictions, Result, RuleParams, Target, predict,
};
