//! The pipeline header's checks: its gates, and a mistake in a header key told at
//! the `--set` that put it or at the key's line.

use serde::{Deserialize, Serialize};

use super::Override;
use crate::error::{Error, Result};
use crate::file::Source;

/// Quality gates of a pipeline (`[pipeline.gates]`): a run that fails one is
/// refused with exit code 3.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gates {
    /// Refuse when kept events fall below this share of the previous run's.
    pub min_volume_ratio: Option<f64>,
    /// Refuse when kept events rise above this multiple of the previous run's.
    pub max_volume_ratio: Option<f64>,
    /// Refuse when a feature drifts this much: `"warning"` or `"alert"` (PSI above
    /// 0.1 or 0.25); absent, drift is only reported.
    #[serde(deserialize_with = "drift_gate")]
    pub fail_on_drift: Option<crate::drift::Level>,
}

/// A drift gate's level, naming only the two a gate can be (`ok` is told apart by
/// [`check_gates`], at its line).
fn drift_gate<'de, D: serde::Deserializer<'de>>(
    to: D,
) -> std::result::Result<Option<crate::drift::Level>, D::Error> {
    use crate::drift::Level;
    match String::deserialize(to)?.as_str() {
        "warning" => Ok(Some(Level::Warning)),
        "alert" => Ok(Some(Level::Alert)),
        "ok" => Ok(Some(Level::Ok)),
        other => Err(serde::de::Error::custom(format!(
            "unknown level `{other}`: expected `warning` or `alert`"
        ))),
    }
}

/// The last `--set` of the pipeline header's `key` (`seed`, `gates.min_volume_ratio`):
/// the one whose value stands.
fn header_set<'o>(overrides: &'o [Override], key: &str) -> Option<&'o Override> {
    (overrides.iter().rev()).find(|o| o.stage == "pipeline" && o.key.join(".") == key)
}

/// The error of the pipeline header's `key`: the mistake of the `--set` that put it,
/// where one did (the last, whose value stands), else the file's, at the key's line.
pub(super) fn header_error(
    source: &Source,
    overrides: &[Override],
    key: &str,
    message: String,
    hint: Option<String>,
) -> Error {
    if let Some(o) = header_set(overrides, key) {
        let hint = hint.map(|h| format!("; {h}")).unwrap_or_default();
        return Error::Override(format!("`--set {}`: {message}{hint}", o.text));
    }
    // A key of a table (`gates.min_volume_ratio`) is found by its own name, in the
    // header's tables only; one the file does not give is told at line 1.
    let name = key.rsplit('.').next().unwrap_or(key);
    let at = source.find_header_key(name).unwrap_or(0);
    source.error_at(at, message, hint)
}

/// The gates' ratios are positive numbers, the lower at most the upper; an error is
/// the `--set`'s that put the value, where one did.
pub(super) fn check_gates(source: &Source, overrides: &[Override], gates: &Gates) -> Result<()> {
    let refuse = |key: &str, message: String, hint: Option<String>| {
        Err(header_error(
            source,
            overrides,
            &format!("gates.{key}"),
            message,
            hint,
        ))
    };
    for (key, ratio) in [
        ("min_volume_ratio", gates.min_volume_ratio),
        ("max_volume_ratio", gates.max_volume_ratio),
    ] {
        if let Some(ratio) = ratio.filter(|r| !(r.is_finite() && *r > 0.0)) {
            return refuse(
                key,
                format!("`{key} = {ratio}` is not a positive number"),
                Some("a share of the last good run's kept events, such as 0.6 or 3.0".into()),
            );
        }
    }
    if let (Some(min), Some(max)) = (gates.min_volume_ratio, gates.max_volume_ratio)
        && min > max
    {
        // The value a `--set` changed is the one at fault.
        let set = |key: &str| header_set(overrides, &format!("gates.{key}")).is_some();
        let key = match set("max_volume_ratio") && !set("min_volume_ratio") {
            true => "max_volume_ratio",
            false => "min_volume_ratio",
        };
        return refuse(
            key,
            format!(
                "`min_volume_ratio = {min}` is above `max_volume_ratio = {max}`: every night would be refused"
            ),
            None,
        );
    }
    // Every feature drifts at least "ok": such a gate would refuse every night.
    if gates.fail_on_drift == Some(crate::drift::Level::Ok) {
        return refuse(
            "fail_on_drift",
            "`fail_on_drift = \"ok\"` would refuse every night".to_string(),
            Some("\"warning\" (PSI above 0.1) or \"alert\" (above 0.25)".into()),
        );
    }
    Ok(())
}
