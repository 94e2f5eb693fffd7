//! `--set stage.key=value`: parsing, applying to the raw pipeline, and telling a
//! `--set`'s mistake from the file's.

use std::path::PathBuf;

use crate::error::{Error, Result};

use super::MAX_SET_DEPTH;

/// A `--set stage.key=value` override.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// Stage name, or `pipeline` for the header.
    pub stage: String,
    /// Key path inside `with` (dotted for nested tables).
    pub key: Vec<String>,
    /// The value (TOML syntax; a bare word is a string).
    pub value: toml::Value,
    /// The text as given, for messages.
    pub text: String,
}

impl Override {
    /// `stage.key` set to the text `value` as it is (a path, a name): what a `--set`
    /// of it in TOML quotes would be, without the quoting.
    pub fn text(stage: &str, key: &str, value: &str) -> Override {
        Override {
            stage: stage.to_string(),
            key: key.split('.').map(str::to_string).collect(),
            value: toml::Value::String(value.to_string()),
            text: format!("{stage}.{key}={value}"),
        }
    }

    /// Parses `stage.key=value`.
    pub fn parse(text: &str) -> Result<Override> {
        let bad = || {
            Error::Override(format!(
                "`--set {text}` is not of the form `stage.key=value`"
            ))
        };
        let (path, value) = text.split_once('=').ok_or_else(bad)?;
        let mut parts = path.trim().split('.').map(str::to_string);
        let stage = parts.next().filter(|s| !s.is_empty()).ok_or_else(bad)?;
        let key: Vec<String> = parts.collect();
        if key.is_empty() || key.iter().any(String::is_empty) {
            return Err(bad());
        }
        if key.len() > MAX_SET_DEPTH {
            return Err(Error::Override(format!(
                "`--set`: the key `{}` is more than {MAX_SET_DEPTH} levels deep",
                path.chars().take(80).collect::<String>()
            )));
        }
        // Spaces around a value are the shell's; a value of whitespace alone (a tab
        // typed as the delimiter) is the value.
        let value_text = match value.trim() {
            "" => value,
            trimmed => trimmed,
        };
        let value = toml::from_str::<toml::Table>(&format!("v = {value_text}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value_text.to_string()));
        Ok(Override {
            stage,
            key,
            value,
            text: text.to_string(),
        })
    }
}

/// Applies `o` to the raw pipeline; a table on the way to its key that the stage's
/// `with` lacks starts as the kind's default (`registry`), so that its other keys
/// keep their defaults.
pub(super) fn apply_override(
    raw: &mut crate::file::RawPipeline,
    o: &Override,
    registry: &crate::stage::Registry,
) -> Result<()> {
    if o.stage == "pipeline" {
        let header = &mut raw.pipeline;
        let key = o.key.join(".");
        let text = |v: &toml::Value| match v {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match key.as_str() {
            "seed" => {
                header.seed = Some(
                    o.value
                        .as_integer()
                        .and_then(|v| u64::try_from(v).ok())
                        .ok_or_else(|| {
                            Error::Override(format!(
                                "`--set {}`: `seed` must be a whole number",
                                o.text
                            ))
                        })?,
                )
            }
            "name" => header.name = Some(text(&o.value)),
            "output" => header.output = Some(PathBuf::from(text(&o.value))),
            "runs" => header.runs = Some(PathBuf::from(text(&o.value))),
            "description" => header.description = Some(text(&o.value)),
            "engine" => {
                let engine = text(&o.value);
                crate::engine::Engine::parse(&engine).map_err(|why| {
                    Error::Override(format!(
                        "`--set {}`: `engine` {engine:?} is not an engine: {why}",
                        o.text
                    ))
                })?;
                header.engine = Some(toml::Spanned::new(0..0, engine));
            }
            "shared_dir" => {
                let path = PathBuf::from(text(&o.value));
                if !path.is_absolute() {
                    return Err(Error::Override(format!(
                        "`--set {}`: `shared_dir` must be an absolute path (every machine of the cluster reads it by the same path)",
                        o.text
                    )));
                }
                header.shared_dir = Some(toml::Spanned::new(0..0, path));
            }
            // A gate eased or tightened for one run, as after an accepted change of volume.
            "gates.min_volume_ratio" | "gates.max_volume_ratio" => {
                let ratio = (o.value.as_float())
                    .or_else(|| o.value.as_integer().map(|i| i as f64))
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .ok_or_else(|| {
                        Error::Override(format!(
                            "`--set {}`: `{key}` must be a positive number, such as 0.6 or 3.0",
                            o.text
                        ))
                    })?;
                match key.as_str() {
                    "gates.min_volume_ratio" => header.gates.min_volume_ratio = Some(ratio),
                    _ => header.gates.max_volume_ratio = Some(ratio),
                }
            }
            "gates.fail_on_drift" => {
                header.gates.fail_on_drift = match text(&o.value).as_str() {
                    "warning" => Some(crate::drift::Level::Warning),
                    "alert" => Some(crate::drift::Level::Alert),
                    // The file's gate lifted for one run.
                    "off" => None,
                    other => {
                        return Err(Error::Override(format!(
                            "`--set {}`: unknown level `{other}`: expected `warning`, `alert` or `off`",
                            o.text
                        )));
                    }
                }
            }
            _ => {
                return Err(Error::Override(format!(
                    "`--set {}`: the pipeline header has no key `{key}` (keys: seed, name, output, runs, description, engine, shared_dir, gates.min_volume_ratio, gates.max_volume_ratio, gates.fail_on_drift)",
                    o.text
                )));
            }
        }
        return Ok(());
    }
    let names: Vec<String> = raw.stages.keys().cloned().collect();
    let Some(stage) = raw.stages.get_mut(&o.stage) else {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let hint = userlens_model::did_you_mean(&o.stage, &names)
            .map(|n| format!(" (did you mean `{n}`?)"))
            .unwrap_or_default();
        return Err(Error::Override(format!(
            "`--set {}`: no stage `{}`{hint}; the stages are: {}",
            o.text,
            o.stage,
            names.join(", ")
        )));
    };
    let span = stage.uses.span();
    let with = stage
        .with
        .get_or_insert_with(|| toml::Spanned::new(span, toml::Table::new()));
    let mut table = with.clone().into_inner();
    let mut cursor = &mut table;
    let defaults = (registry.kind(stage.uses.get_ref())).and_then(|kind| kind.defaults());
    let mut default = defaults.as_ref();
    let Some((last, parents)) = o.key.split_last() else {
        return Err(Error::Override(format!("`--set {}` names no key", o.text)));
    };
    for part in parents {
        // Defaults only seed tables the file lacks: inside one it gave, its keys stand.
        default = default
            .filter(|_| !cursor.contains_key(part))
            .and_then(|d| d.get(part)?.as_table());
        let entry = cursor
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(default.map(whole).unwrap_or_default()));
        cursor = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(Error::Override(format!(
                    "`--set {}`: `{part}` is not a table",
                    o.text
                )));
            }
        };
    }
    cursor.insert(last.clone(), o.value.clone());
    *with = toml::Spanned::new(with.span(), table);
    Ok(())
}

/// `table` with every whole float as an integer (a default of 3.0 written `3`), so a
/// seeded table reads, and keys, as the file would write it.
fn whole(table: &toml::Table) -> toml::Table {
    let value = |v: &toml::Value| match v {
        toml::Value::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => {
            toml::Value::Integer(*f as i64)
        }
        toml::Value::Table(t) => toml::Value::Table(whole(t)),
        other => other.clone(),
    };
    table.iter().map(|(k, v)| (k.clone(), value(v))).collect()
}

/// The error of the `--set` that put the parameter at `path` (as an error names
/// it: whole, its start or its end) in stage `stage_name`'s parameters, if one did:
/// its mistake, not the file's.
pub(super) fn set_error(
    overrides: &[Override],
    stage_name: &str,
    path: &[String],
    message: &str,
    hint: Option<String>,
) -> Option<Error> {
    // Keys in common where one path holds the other (`ml` and `ml.models`), or where
    // the error names the set key's end (`trees` of `ml.trees`); keys that only share
    // their table (`ml.models` and `ml.holdout_fraction`) are not the same parameter.
    // Also a key the `--set` names inside (`recent_buyer` of
    // `rules.recent_buyer.when`), or one its table value holds (`r` of
    // `rules={r={...}}`).
    let matching = |o: &Override| {
        let common = o.key.iter().zip(path).take_while(|(a, b)| a == b).count();
        if common == o.key.len().min(path.len()) {
            common
        } else if o.key.ends_with(path) || o.key.windows(path.len()).any(|w| w == path) {
            path.len()
        } else if path.len() == 1 && o.value.get(&path[0]).is_some() {
            1
        } else {
            0
        }
    };
    // The `--set` that matches the most keys; of equals, the last, whose value stands.
    let (_, o) = (overrides.iter())
        .filter(|o| o.stage == stage_name)
        .map(|o| (matching(o), o))
        .filter(|(keys, _)| *keys > 0)
        .max_by_key(|(keys, _)| *keys)?;
    let hint = hint.map(|h| format!("; {h}")).unwrap_or_default();
    Some(Error::Override(format!(
        "`--set {}`: stage `{stage_name}`: {message}{hint}",
        o.text
    )))
}
