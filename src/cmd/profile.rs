//! `userlens profile`: the built-in profile pipeline on one event file.

use std::path::Path;

use crate::Failure;
use crate::cli::{Cli, RunArgs};

/// The recommend stage of the built-in pipeline: it recommends items when the events
/// have item ids (categories stand in without them) and notes when they have neither.
const RECOMMEND_STAGE: &str = "
[stages.recommend]
uses = \"recommend\"
needs = [\"ingest\", \"personas\"]
";

/// Runs the built-in pipeline with the events (and users) given as overrides.
pub fn run(cli: &Cli, events: &Path, users: Option<&Path>, args: &RunArgs) -> Result<(), Failure> {
    let mut set = vec![
        format!("pipeline.name={}", toml_quote(&pipeline_name(events))),
        format!("ingest.path={}", toml_string(events)),
    ];
    if let Some(users) = users {
        set.push(format!("features.users={}", toml_string(users)));
    }
    set.extend(args.set.iter().cloned());
    let text = format!("{}{RECOMMEND_STAGE}", userlens_pipeline::BUILTIN_PROFILE);
    let plan = userlens_pipeline::load_str(
        Path::new("<built-in profile pipeline>"),
        &text,
        &super::overrides(&set)?,
    )?;
    super::run::run_plan(cli, &plan, args)
}

/// The pipeline's name for one event file, `profile-<file name>`: a run compares
/// itself (persona ids, drift, volume) with the last good run of the same name, so
/// profiling your file after the sample is no night after the sample's.
fn pipeline_name(events: &Path) -> String {
    let file = events
        .file_name()
        .map(|f| f.to_string_lossy())
        .unwrap_or_default();
    let stem = file.split('.').next().unwrap_or_default();
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    match stem.is_empty() {
        true => "profile".into(),
        false => format!("profile-{stem}"),
    }
}

/// A path as a TOML string literal for a `--set` override.
fn toml_string(path: &Path) -> String {
    toml_quote(&path.display().to_string())
}

fn toml_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}
