//! Publishing a run's outputs: the output folder is replaced as a whole, and only
//! if it is userlens's own (it holds the marker an earlier publish left), so a run
//! never deletes or overwrites a file it did not write.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// The marker a published folder holds: the pipeline and run that wrote it.
pub const MARKER: &str = ".userlens";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A relative output path must stay inside the working folder: no `..` and no
/// symlink out of it. An absolute path is the user's explicit choice.
pub(crate) fn contained(path: &Path) -> std::result::Result<(), String> {
    if path.is_absolute() {
        return Ok(());
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err("leaves the working folder through `..`".into());
    }
    let Ok(cwd) = std::env::current_dir().and_then(|d| d.canonicalize()) else {
        return Ok(());
    };
    let mut probe = cwd.join(path);
    while !probe.exists() {
        if !probe.pop() {
            return Ok(());
        }
    }
    match probe.canonicalize() {
        Ok(real) if !real.starts_with(&cwd) => Err(format!(
            "leaves the working folder through a symlink (it leads to `{}`)",
            real.display()
        )),
        _ => Ok(()),
    }
}

/// Checks an output folder before any work: a path that names a folder of its own
/// (not `/`, `.` or `..`), inside the working folder when relative, and either
/// absent, empty, or published by userlens before (`force` takes over any folder).
pub(crate) fn check_output(output: &Path, force: bool) -> Result<()> {
    let shown = output.display();
    let refuse = |why: String| Err(Error::Usage(format!("output folder `{shown}` {why}")));
    let named = matches!(output.components().next_back(), Some(Component::Normal(_)));
    if !named {
        return refuse("is not a folder of its own: give a path such as `out/profile`".into());
    }
    if let Err(why) = contained(output) {
        return refuse(format!(
            "{why}; give an absolute path to write outside the working folder"
        ));
    }
    let meta = match std::fs::symlink_metadata(output) {
        Ok(meta) => meta,
        Err(_) => {
            // A new folder: where it would go must be a folder too.
            let blocked = output
                .ancestors()
                .skip(1)
                .find(|a| !a.as_os_str().is_empty() && std::fs::symlink_metadata(a).is_ok())
                .filter(|a| !a.is_dir());
            return match blocked {
                Some(file) => refuse(format!(
                    "cannot be made: `{}` is a file, not a folder",
                    file.display()
                )),
                None => Ok(()),
            };
        }
    };
    if !meta.is_dir() {
        return refuse("exists and is not a folder; give another `--out`".into());
    }
    if force {
        return Ok(());
    }
    if output.join(MARKER).is_file() {
        let foreign = not_published(output)?;
        if foreign.is_empty() {
            return Ok(());
        }
        let shown: Vec<String> = foreign.iter().take(5).map(|f| format!("`{f}`")).collect();
        let more = foreign.len().saturating_sub(shown.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        return refuse(format!(
            "holds {}{more}, which userlens's last publish there did not write; move them \
             out, or pass `--force-output` to replace the folder with them",
            shown.join(", ")
        ));
    }
    let mut entries = std::fs::read_dir(output).map_err(io(output))?;
    if entries.next().is_some() {
        return refuse(format!(
            "holds files userlens did not write (no `{MARKER}` marker); \
             choose an empty or new folder, or pass `--force-output` to replace it"
        ));
    }
    Ok(())
}

/// What a publish's marker says: the run, and every path it put in the folder.
#[derive(serde::Serialize, serde::Deserialize)]
struct Marker {
    run_id: String,
    /// Relative paths, `/`-separated, folders too; absent in the markers of
    /// versions that did not list them.
    #[serde(default)]
    files: Option<Vec<String>>,
}

/// Every path under `dir` but the marker, relative and `/`-separated, sorted.
fn tree(dir: &Path) -> Result<Vec<String>> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if name == MARKER {
                continue;
            }
            let is_dir = entry.file_type().map_err(io(&entry.path()))?.is_dir();
            out.push(name.clone());
            if is_dir {
                walk(&entry.path(), &format!("{name}/"), out)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out)?;
    out.sort();
    Ok(out)
}

/// The paths in a published folder that its marker does not list (none when the
/// marker lists nothing, as older versions' markers do).
fn not_published(output: &Path) -> Result<Vec<String>> {
    let path = output.join(MARKER);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let Some(files) = serde_json::from_str::<Marker>(&text)
        .ok()
        .and_then(|m| m.files)
    else {
        return Ok(Vec::new());
    };
    Ok(tree(output)?
        .into_iter()
        .filter(|f| files.binary_search(f).is_err() && !clutter(f))
        .collect())
}

/// What a file browser leaves in any folder it shows (Finder's `.DS_Store` and `._`
/// files, Windows' `Thumbs.db` and `desktop.ini`), and the temporary files of
/// userlens's own atomic writes (`.<name>.<pid>.tmp`): no one's work.
fn clutter(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(name, ".DS_Store" | "Thumbs.db" | "desktop.ini")
        || name.starts_with("._")
        || (name.starts_with('.') && name.ends_with(".tmp"))
}

/// Whether `dir` was published by userlens (it holds the marker).
pub(crate) fn is_published(dir: &Path) -> bool {
    dir.join(MARKER).is_file()
}

/// `.<name>.<suffix>` beside `path`.
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    parent(path).join(format!(".{name}.{suffix}"))
}

/// The folder holding `path` (`.` for a one-part relative path).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Where a refused run's quarantine and record go: beside the output folder, so the
/// last good report stays in place.
pub fn refused_dir(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    output.with_file_name(format!("{name}.refused"))
}

/// What a refused run tells of its quarantine and record: in [`refused_dir`], or,
/// when they could not be put there (`unpublished`), in its run folder.
pub(crate) fn where_refused(output: &Path, run_dir: &Path, unpublished: Option<&Error>) -> String {
    let refused = refused_dir(output);
    let mut message = match unpublished {
        None => format!(
            "the refused run's quarantine and record are in `{}`",
            refused.display()
        ),
        Some(e) => format!(
            "the refused run's quarantine and record were not put in `{}` ({}); its \
             record is in `{}`",
            refused.display(),
            crate::error::error_chain(e),
            run_dir.join("run.json").display()
        ),
    };
    if is_published(output) {
        message.push_str("; the last good report is left in place");
    }
    message
}

/// A fresh staging folder for `run_id` beside `output`.
pub(crate) fn staging(output: &Path, run_id: &str) -> Result<PathBuf> {
    let staging = sibling(output, &format!("staging-{run_id}"));
    remove_own(&staging)?;
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    Ok(staging)
}

/// Removes a folder of userlens's own naming (staging or set aside), if present.
pub(crate) fn remove_own(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(path)(e)),
        _ => Ok(()),
    }
}

/// Replaces `target` by `staging`, marking it as userlens's: the old folder is renamed
/// aside, the new one renamed in, then the old one removed. A reader sees the old
/// outputs or the new ones, never a mix; a kill between the two renames is repaired
/// by [`recover`] on the next run.
pub(crate) fn publish(staging: &Path, target: &Path, run_id: &str) -> Result<()> {
    let marker = staging.join(MARKER);
    let listed = Marker {
        run_id: run_id.to_string(),
        files: Some(tree(staging)?),
    };
    userlens_report::write_json(&listed, &marker)?;
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let old = sibling(target, &format!("old-{run_id}"));
    let had_output = target.exists();
    if had_output {
        std::fs::rename(target, &old).map_err(io(target))?;
    }
    std::fs::rename(staging, target).map_err(io(target))?;
    // Published: the old copy left behind is the next run's to remove ([`recover`]).
    if had_output && let Err(e) = remove_own(&old) {
        tracing::warn!("published; the previous output set aside could not be removed yet: {e}");
    }
    Ok(())
}

/// Puts back an output folder that a killed publish left renamed aside, and removes
/// the staging and set-aside folders of runs in `finished` (runs of this pipeline
/// that no process is running: the caller holds the pipeline's lock): those of
/// `output` and of every folder beside it, so that a killed run's staging for one
/// night's partition does not stay until that night is run again.
pub(crate) fn recover(output: &Path, finished: &dyn Fn(&str) -> bool) -> Result<()> {
    let dir = parent(output);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let entry_name = entry.file_name().to_string_lossy().into_owned();
        // `.<target>.<kind>-<run id>`; run ids hold no `.`.
        let Some((target, rest)) = entry_name
            .strip_prefix('.')
            .and_then(|name| name.rsplit_once('.'))
        else {
            continue;
        };
        let path = entry.path();
        let (kind, run_id) = rest.split_once('-').unwrap_or((rest, ""));
        if target.is_empty() || !finished(run_id) {
            continue;
        }
        let target = dir.join(target);
        if kind == "old" && !target.exists() && path.join(MARKER).is_file() {
            std::fs::rename(&path, &target).map_err(io(&path))?;
        } else if kind == "old" || kind == "staging" {
            remove_own(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_published_folder_once_it_holds_files_of_someone_else() {
        let dir = tempfile::tempdir().unwrap();
        let (staging, out) = (dir.path().join("staging"), dir.path().join("out"));
        std::fs::create_dir_all(staging.join("charts")).unwrap();
        std::fs::write(staging.join("personas.csv"), "").unwrap();
        std::fs::write(staging.join("charts/a.svg"), "").unwrap();
        publish(&staging, &out, "run1").unwrap();
        assert!(check_output(&out, false).is_ok());

        // What a file browser leaves is no one's work.
        std::fs::write(out.join(".DS_Store"), "").unwrap();
        std::fs::write(out.join("charts/Thumbs.db"), "").unwrap();
        assert!(check_output(&out, false).is_ok());
        std::fs::write(out.join("my_notes.txt"), "mine").unwrap();
        std::fs::write(out.join("charts/mine.svg"), "mine").unwrap();
        let err = check_output(&out, false).unwrap_err().to_string();
        assert!(
            err.contains("holds `charts/mine.svg`, `my_notes.txt`, which userlens's last publish"),
            "{err}"
        );
        assert!(check_output(&out, true).is_ok());

        // A marker of a version that listed nothing vouches for the whole folder.
        std::fs::write(out.join(MARKER), "{\"run_id\":\"run0\"}\n").unwrap();
        assert!(check_output(&out, false).is_ok());
    }

    #[test]
    fn refuses_folders_that_are_not_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::fs::write(theirs.join("thesis.txt"), "years of work").unwrap();
        let err = check_output(&theirs, false).unwrap_err().to_string();
        assert!(err.contains("holds files userlens did not write"), "{err}");
        assert!(check_output(&theirs, true).is_ok());

        let ours = dir.path().join("ours");
        std::fs::create_dir(&ours).unwrap();
        std::fs::write(ours.join(MARKER), "{}").unwrap();
        std::fs::write(ours.join("personas.csv"), "").unwrap();
        assert!(check_output(&ours, false).is_ok());
        assert!(check_output(&dir.path().join("new"), false).is_ok());

        let file = dir.path().join("file.txt");
        std::fs::write(&file, "").unwrap();
        let err = check_output(&file, false).unwrap_err().to_string();
        assert!(err.contains("is not a folder"), "{err}");
        let err = check_output(&file.join("sub/out"), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot be made: `") && err.contains("file.txt` is a file"),
            "{err}"
        );
        for bad in ["/", ".", "..", "out/.."] {
            let err = check_output(Path::new(bad), true).unwrap_err().to_string();
            assert!(err.contains("not a folder of its own"), "{bad}: {err}");
        }
        let err = check_output(Path::new("../x"), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("through `..`"), "{err}");
    }

    #[test]
    fn publishing_replaces_the_folder_and_recovery_puts_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let first = staging(&out, "r1").unwrap();
        std::fs::write(first.join("a.csv"), "1").unwrap();
        publish(&first, &out, "r1").unwrap();
        assert_eq!(std::fs::read_to_string(out.join("a.csv")).unwrap(), "1");
        assert!(out.join(MARKER).is_file());

        // A publish killed between its renames: the old folder is aside, none in place.
        std::fs::rename(&out, sibling(&out, "old-r2")).unwrap();
        let other = staging(&out, "r3").unwrap();
        recover(&out, &|id| id == "r2").unwrap();
        assert_eq!(std::fs::read_to_string(out.join("a.csv")).unwrap(), "1");
        assert!(other.is_dir(), "another run's staging is left alone");
        recover(&out, &|id| id == "r3").unwrap();
        assert!(!other.exists());

        // Another partition's leftovers beside it: a killed run's staging, and a
        // night's folder set aside by a killed publish.
        let night = dir.path().join("2026-06-01");
        let killed = staging(&night, "r4").unwrap();
        let aside = sibling(&dir.path().join("2026-05-31"), "old-r4");
        std::fs::create_dir_all(&aside).unwrap();
        std::fs::write(aside.join(MARKER), "{}").unwrap();
        recover(&out, &|id| id == "r4").unwrap();
        assert!(!killed.exists());
        assert!(dir.path().join("2026-05-31").join(MARKER).is_file());
        assert!(!aside.exists());
    }
}
