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

/// `event_time` of the type `dtype` as Int64 UTC microseconds, whatever its time
/// type (a datetime in any unit or zone, a date, or integer microseconds); `None`
/// for a type that holds no time.
pub(crate) fn event_micros(dtype: &polars::prelude::DataType) -> Option<polars::prelude::Expr> {
    use polars::prelude::{DataType, TimeUnit as Unit, col};
    use userlens_model::columns::EVENT_TIME;
    let time = col(EVENT_TIME);
    match dtype {
        DataType::Datetime(_, tz) => Some(
            time.cast(DataType::Datetime(Unit::Microseconds, tz.clone()))
                .cast(DataType::Int64),
        ),
        DataType::Date => Some(
            time.cast(DataType::Datetime(Unit::Microseconds, None))
                .cast(DataType::Int64),
        ),
        d if d.is_integer() => Some(time.cast(DataType::Int64)),
        _ => None,
    }
}
