//! `userlens profile`: the built-in profile pipeline on one event file.

use std::path::Path;

use userlens_pipeline::Override;

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
    let text_of = |path: &Path| path.display().to_string();
    let mut set = vec![
        Override::text("pipeline", "name", &pipeline_name(events)),
        Override::text("ingest", "path", &text_of(events)),
    ];
    if let Some(users) = users {
        set.push(Override::text("features", "users", &text_of(users)));
    }
    set.extend(super::overrides(&args.set)?);
    let text = format!("{}{RECOMMEND_STAGE}", userlens_pipeline::BUILTIN_PROFILE);
    let plan = userlens_pipeline::load_str(Path::new("<built-in profile pipeline>"), &text, &set)?;
    super::run::run_plan(cli, &plan, args)
}

/// The pipeline's name for one event file, `profile-<file name>`: a run compares
/// itself (persona ids, drift, volume) with the last good run of the same name, so
/// profiling your file after the sample is no night after the sample's. The name is
/// the file's without its format's extensions (`events` for `events.csv.gz`); one
/// that is not a plain name as it stands (`events.2026-07`, `用户`, over 64 bytes)
/// is made one and given a hash of the whole file name, so two files never share one.
fn pipeline_name(events: &Path) -> String {
    let file = events
        .file_name()
        .map(|f| f.to_string_lossy())
        .unwrap_or_default();
    let mut stem: &str = &file;
    let formats =
        std::iter::once("gz").chain(userlens_ingest::FORMAT_EXTENSIONS.iter().map(|(e, _)| *e));
    while let Some(shorter) = formats.clone().find_map(|ext| {
        let cut = stem.len().checked_sub(ext.len() + 1)?;
        let tail = stem.get(cut..)?;
        (tail.starts_with('.') && tail[1..].eq_ignore_ascii_case(ext)).then(|| &stem[..cut])
    }) {
        stem = shorter;
    }
    let plain: String = stem
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                true => c,
                false => '_',
            },
        )
        .take(64)
        .collect();
    // A plain name never ends as a made one does, so the two never meet.
    let hashed = |name: &str| {
        let tail = name.rsplit('-').next().unwrap_or(name);
        tail.len() == 9
            && tail.starts_with('h')
            && tail[1..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !plain.is_empty() && plain == stem && !hashed(&plain) {
        return format!("profile-{plain}");
    }
    let hash = blake3::hash(file.as_bytes()).to_hex();
    match plain.is_empty() {
        true => format!("profile-h{}", &hash[..8]),
        false => format!("profile-{plain}-h{}", &hash[..8]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_name_has_a_pipeline_name_of_its_own() {
        for file in [
            "events.csv",
            "data/events.csv.gz",
            "events.PARQUET",
            "events.pq",
            "events.dat",
            "events.tab.gz",
            "events.jsonl",
        ] {
            assert_eq!(pipeline_name(Path::new(file)), "profile-events", "{file}");
        }
        let (long, longer) = ("a".repeat(70), "a".repeat(71));
        let files = [
            "events.2026-07.csv",
            "events.2026-08.csv",
            "events_2026-07.csv",
            "用户.csv",
            "事件.csv",
            ".mine.csv",
            "mine.csv",
            ".csv",
            long.as_str(),
            longer.as_str(),
        ];
        // A plain name spelt as a made one is made one too.
        let made = pipeline_name(Path::new("events.2026-07.csv"));
        let spelt = format!("{}.csv", made.trim_start_matches("profile-"));
        assert_ne!(pipeline_name(Path::new(&spelt)), made);
        let bare = pipeline_name(Path::new(".csv"));
        let spelt = format!("{}.csv", bare.trim_start_matches("profile-"));
        assert_ne!(pipeline_name(Path::new(&spelt)), bare);
        let names: std::collections::BTreeSet<String> =
            files.iter().map(|f| pipeline_name(Path::new(f))).collect();
        assert_eq!(names.len(), files.len(), "{names:?}");
        for name in &names {
            let plain = name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            assert!(plain && name.starts_with("profile-"), "{name}");
        }
        assert!(names.contains("profile-events_2026-07"), "{names:?}");
    }
}
