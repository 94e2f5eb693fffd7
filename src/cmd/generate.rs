//! `userlens generate`: a synthetic event log drawn from known personas.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::Failure;
use crate::cli::GenerateArgs;
use crate::progress::thousands;

/// Writes the events (and the ground truth), each renamed into place once complete.
pub fn run(args: &GenerateArgs) -> Result<(), Failure> {
    let GenerateArgs {
        out,
        truth,
        users,
        events,
        events_per_user,
        seed,
        start,
        days,
        survey,
        force,
    } = args;
    check_targets(out, [truth, survey], *force).map_err(Failure::usage)?;
    let users = match (events, events_per_user) {
        (Some(events), Some(per_user)) => {
            userlens_synth::users_for_events_per_user(*events, *per_user)
        }
        (Some(events), None) => userlens_synth::users_for_events(*events),
        (None, _) => *users,
    };
    let params = userlens_synth::SynthParams {
        users,
        seed: *seed,
        start: *start,
        days: *days,
        events_per_user: *events_per_user,
    };
    params.check().map_err(Failure::usage)?;
    let events_file = std::fs::File::create(tmp(out))
        .with_context(|| format!("failed to create `{}`", out.display()))?;
    let truth_file = match truth {
        Some(path) => Some(
            std::fs::File::create(tmp(path))
                .with_context(|| format!("failed to create `{}`", path.display()))?,
        ),
        None => None,
    };
    let summary = userlens_synth::generate(
        &params,
        std::io::BufWriter::new(events_file),
        truth_file.map(std::io::BufWriter::new),
    )?;
    // Renamed only when complete, so a killed run never leaves half a file behind.
    std::fs::rename(tmp(out), out)
        .with_context(|| format!("failed to write `{}`", out.display()))?;
    if let Some(path) = truth {
        std::fs::rename(tmp(path), path)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
    }
    writeln!(
        std::io::stdout(),
        "wrote {} events of {} users to {}",
        thousands(summary.events),
        thousands(summary.users as u64),
        out.display()
    )?;
    for (persona, count) in &summary.per_persona {
        writeln!(
            std::io::stdout(),
            "  {persona}: {} users",
            thousands(*count as u64)
        )?;
    }
    if let Some(path) = survey {
        // Drawn from the events just written, so scores follow each user's experience.
        let events = std::fs::File::open(out)
            .with_context(|| format!("failed to read `{}`", out.display()))?;
        let survey_file = std::fs::File::create(tmp(path))
            .with_context(|| format!("failed to create `{}`", path.display()))?;
        let written = userlens_synth::generate_survey(
            &params,
            std::io::BufReader::new(events),
            std::io::BufWriter::new(survey_file),
        )?;
        std::fs::rename(tmp(path), path)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        writeln!(
            std::io::stdout(),
            "wrote {} survey answers to {}",
            thousands(written.answers as u64),
            path.display()
        )?;
    }
    Ok(())
}

/// The files to write are CSV (by the name `run` would read them by), each its own
/// path and temporary file, and new unless `force`: `generate` replaces only what it
/// is told it may.
fn check_targets(
    out: &Path,
    others: [&Option<std::path::PathBuf>; 2],
    force: bool,
) -> anyhow::Result<()> {
    let targets: Vec<&Path> = std::iter::once(out)
        .chain(others.into_iter().flatten().map(|p| p.as_path()))
        .collect();
    let mut temporaries = Vec::new();
    for target in &targets {
        let temporary = std::path::absolute(tmp(target))?;
        if temporaries.contains(&temporary) {
            anyhow::bail!(
                "`{}` is given for two files, or for two of one name before its extension; \
                 give each its own",
                target.display()
            );
        }
        temporaries.push(temporary);
        let gzip = target
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
        if gzip || userlens_ingest::guess_format(target) != userlens_ingest::SourceFormat::Csv {
            anyhow::bail!(
                "`{}`: generate writes CSV text, which `run` would not read under that \
                 name; give a `.csv` path",
                target.display()
            );
        }
        if !force && std::fs::symlink_metadata(target).is_ok() {
            anyhow::bail!(
                "`{}` exists; generate writes only new files (pass `--force` to replace it)",
                target.display()
            );
        }
    }
    Ok(())
}

/// Where a file is written until it is complete.
fn tmp(path: &Path) -> std::path::PathBuf {
    path.with_extension("csv.tmp")
}
