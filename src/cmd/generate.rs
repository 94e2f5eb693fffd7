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
    let mut params = userlens_synth::SynthParams {
        users: *users,
        seed: *seed,
        start: *start,
        days: *days,
        events_per_user: *events_per_user,
    };
    // The period is checked before a pilot runs over it.
    params.check().map_err(Failure::usage)?;
    params.users = match (events, events_per_user) {
        (Some(events), Some(per_user)) => {
            userlens_synth::users_for_events_per_user(*events, *per_user)
        }
        (Some(events), None) => userlens_synth::users_for_events(*events, &params),
        (None, _) => *users,
    };
    params.check().map_err(Failure::usage)?;
    // Renamed into place only when all are complete, so a failed or stopped run never
    // leaves half a file, nor some of the files.
    let create = userlens_report::AtomicFile::create;
    let mut events_file = create(out)?;
    let mut truth_file = truth.as_deref().map(create).transpose()?;
    let summary = userlens_synth::generate(
        &params,
        std::io::BufWriter::new(events_file.file()),
        truth_file
            .as_mut()
            .map(|t| std::io::BufWriter::new(t.file())),
    )?;
    let survey = match survey {
        Some(path) => {
            // Drawn from the events just written, so scores follow each user's experience.
            let written = events_file.temporary();
            let events = std::fs::File::open(written)
                .with_context(|| format!("failed to read `{}`", written.display()))?;
            let mut survey_file = create(path)?;
            let answers = userlens_synth::generate_survey(
                &params,
                std::io::BufReader::new(events),
                std::io::BufWriter::new(survey_file.file()),
            )?;
            Some((survey_file, answers, path))
        }
        None => None,
    };
    events_file.commit()?;
    if let Some(truth_file) = truth_file {
        truth_file.commit()?;
    }
    if let Some(asked) = events.filter(|&n| summary.events.saturating_mul(2) < n) {
        say!(
            "warning: {} events asked for, {} written: {} days hold no more at the \
             generator's sessions a day; give more `--days`",
            thousands(asked),
            thousands(summary.events),
            days
        );
    }
    writeln!(
        std::io::stdout(),
        "wrote {} events of {} user{} to {}",
        thousands(summary.events),
        thousands(summary.users as u64),
        if summary.users == 1 { "" } else { "s" },
        out.display()
    )?;
    for (persona, count) in &summary.per_persona {
        writeln!(
            std::io::stdout(),
            "  {persona}: {} users",
            thousands(*count as u64)
        )?;
    }
    if let Some((survey_file, written, path)) = survey {
        survey_file.commit()?;
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
/// file (however the paths are written: `..`, links), and new unless `force`:
/// `generate` replaces only what it is told it may, and never a folder.
fn check_targets(
    out: &Path,
    others: [&Option<std::path::PathBuf>; 2],
    force: bool,
) -> anyhow::Result<()> {
    let targets: Vec<&Path> = std::iter::once(out)
        .chain(others.into_iter().flatten().map(|p| p.as_path()))
        .collect();
    let mut files = Vec::new();
    for target in &targets {
        let file = real_file(target)?;
        if files.contains(&file) {
            anyhow::bail!(
                "`{}` is given for two files; give each its own",
                target.display()
            );
        }
        files.push(file);
        let shown = target.display().to_string();
        let last = shown.rsplit(std::path::is_separator).next().unwrap_or("");
        if target.is_dir() || matches!(last, "" | "." | "..") {
            anyhow::bail!("`{shown}` is a folder; give a file's path");
        }
        // Its temporary name, `.<name>.<pid>.userlens.tmp`, must fit in 255 bytes too.
        if target.file_name().is_some_and(|n| n.len() > 230) {
            anyhow::bail!("`{shown}` has a name of more than 230 bytes; give a shorter one");
        }
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
        // Not even `--force` replaces a device or a pipe (`/dev/null`) by a file.
        if std::fs::metadata(target).is_ok_and(|m| !m.is_file()) {
            anyhow::bail!(
                "`{shown}` is not a regular file (a device, a pipe or a socket); give a \
                 file's path"
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

/// The file `path` names: its folder resolved (links, `..`), then its name; the
/// file itself resolved too when it is a link.
fn real_file(path: &Path) -> anyhow::Result<std::path::PathBuf> {
    if let Ok(real) = std::fs::canonicalize(path) {
        return Ok(real);
    }
    let name = path
        .file_name()
        .with_context(|| format!("`{}` names no file", path.display()))?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let folder = std::fs::canonicalize(folder)
        .with_context(|| format!("`{}`: no such folder", folder.display()))?;
    Ok(folder.join(name))
}
