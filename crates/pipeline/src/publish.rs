//! Publishing a run's outputs: the output folder is replaced as a whole, and only
//! if it is userlens's own (it holds the marker an earlier publish left), so a run
//! never deletes or overwrites a file it did not write.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use userlens_report::files;

use crate::error::{Error, Result, io};
use crate::plan::Plan;
use crate::record::{RunRecord, RunStatus};
use crate::stage::StageError;

/// The marker a published folder holds: the pipeline and run that wrote it.
pub const MARKER: &str = ".userlens";

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

/// The longest name an output folder or its [`refused_dir`] may have: their staging
/// and set-aside folders add up to 55 bytes to it, and a name holds 255.
const MAX_NAME_BYTES: usize = 200;

/// What [`refused_dir`] adds to the output folder's name.
const REFUSED_SUFFIX: &str = ".refused";

/// Checks, before any work, that an output folder's name leaves room for its
/// [`refused_dir`]'s and for their staging folders' (`.<name>.staging-<run id>-p<pid>`)
/// within a name's 255 bytes.
pub(crate) fn check_name(output: &Path) -> Result<()> {
    match name_too_long(output) {
        Some(why) => Err(Error::Usage(format!(
            "output folder `{}` {why}",
            output.display()
        ))),
        None => Ok(()),
    }
}

/// What [`check_name`] says of a name too long, if it is.
pub(crate) fn name_too_long(output: &Path) -> Option<String> {
    let most = MAX_NAME_BYTES - REFUSED_SUFFIX.len();
    output
        .file_name()
        .is_some_and(|n| n.len() > most)
        .then(|| format!("has a name of more than {most} bytes, too long to publish under"))
}

/// `path` made absolute with its links and `..` resolved: each part as the file system
/// has it where it exists, `..` of a part that does not exist taken lexically.
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut real = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                real.pop();
            }
            Component::CurDir => {}
            part => {
                real.push(part);
                if let Ok(canonical) = real.canonicalize() {
                    real = canonical;
                }
            }
        }
    }
    real
}

/// What is wrong with `output` as a path, whatever is on disk: not a folder of its
/// own (`/`, `.`, `..`), the working folder or one holding it, overlapping the runs
/// folder (however written), or leaving the working folder when relative. For
/// [`check_output`], and for `validate` on the pipeline file's paths.
pub(crate) fn output_path(output: &Path, runs: &Path) -> std::result::Result<(), String> {
    // `out/.` is `out` to `components()`, but not to a rename.
    let text = output.to_string_lossy();
    let trimmed = text.trim_end_matches(std::path::is_separator);
    let dotted = trimmed == "." || trimmed.ends_with("/.") || trimmed.ends_with("\\.");
    let named = matches!(output.components().next_back(), Some(Component::Normal(_)));
    if !named || dotted {
        return Err("is not a folder of its own: give a path such as `out/profile`".into());
    }
    let (real, real_runs) = (resolved(output), resolved(runs));
    if std::env::current_dir().is_ok_and(|cwd| resolved(&cwd).starts_with(&real)) {
        return Err("is the working folder or holds it: give a folder of its own".into());
    }
    if real_runs.starts_with(&real) || real.starts_with(&real_runs) {
        return Err(format!(
            "overlaps the runs folder `{}`: give each a folder of its own",
            runs.display()
        ));
    }
    if let Err(why) = contained(output) {
        return Err(format!(
            "{why}; give an absolute path to write outside the working folder"
        ));
    }
    Ok(())
}

/// What a run would refuse of the pipeline file's `output` (with `{as_of}` a date)
/// and `runs`, whatever is on disk.
pub(crate) fn refused_output(output: &Path, runs: &Path) -> Option<String> {
    let dated = PathBuf::from(output.to_string_lossy().replace("{as_of}", "2026-01-01"));
    output_path(&dated, runs)
        .err()
        .or_else(|| name_too_long(&dated))
}

/// Whether an output path holds a placeholder other than `{as_of}`.
pub(crate) fn other_placeholder(output: &Path) -> bool {
    output
        .to_string_lossy()
        .replace("{as_of}", "")
        .contains(['{', '}'])
}

/// Checks an output folder before any work: a path that names a folder of its own
/// (not `/`, `.` or `..`, nor the working folder or one holding it, the runs folder
/// or one inside it, however written), inside the working folder when relative, and
/// either absent, empty, or published by userlens before (`force` takes over any
/// other folder).
pub(crate) fn check_output(output: &Path, runs: &Path, force: bool) -> Result<()> {
    let shown = output.display();
    let refuse = |why: String| Err(Error::Usage(format!("output folder `{shown}` {why}")));
    if let Err(why) = output_path(output, runs) {
        return refuse(why);
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
        return refuse(
            "exists and is not a folder; give another `--out` or the pipeline's `output`".into(),
        );
    }
    if force {
        return Ok(());
    }
    if output.join(MARKER).is_file() {
        let Some(foreign) = not_published(output)? else {
            return refuse(format!(
                "holds a `{MARKER}` that does not list what a publish put there (not \
                 userlens's, or an older version's); choose an empty or new folder, or \
                 pass `--force-output` to replace it"
            ));
        };
        if foreign.is_empty() {
            return match edited_since_published(output)? {
                Some(file) => refuse(format!(
                    "holds `{file}`, changed since userlens's last publish there wrote it; \
                     move it out, or pass `--force-output` to replace it"
                )),
                None => Ok(()),
            };
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

/// Refuses to replace a folder that holds one of the run's input files, even forced:
/// the publish would delete it.
pub(crate) fn check_inputs_outside<'a>(
    output: &Path,
    inputs: impl Iterator<Item = &'a Path>,
) -> Result<()> {
    let real = resolved(output);
    for input in inputs {
        // The file, and where its name is when that is a link to it.
        let named = match (input.parent(), input.file_name()) {
            (Some(parent), Some(name)) => resolved(parent).join(name),
            _ => resolved(input),
        };
        if resolved(input).starts_with(&real) || named.starts_with(&real) {
            return Err(Error::Usage(format!(
                "output folder `{}` holds the input `{}`, which replacing the folder would \
                 delete: give the outputs a folder of their own",
                output.display(),
                input.display()
            )));
        }
    }
    Ok(())
}

/// What a publish's marker says: the run, and every path it put in the folder.
#[derive(serde::Serialize, serde::Deserialize)]
struct Marker {
    run_id: String,
    /// The pipeline whose run published (absent in older markers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pipeline: Option<String>,
    /// Relative paths, `/`-separated, folders too; absent in the markers of
    /// versions that did not list them.
    #[serde(default)]
    files: Option<Vec<String>>,
    /// The BLAKE3 of each file published, by path; absent in older markers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hashes: Option<BTreeMap<String, String>>,
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

/// The marker of `dir`, if it holds one that lists what its publish put there.
fn read_marker(dir: &Path) -> Option<Marker> {
    let text = std::fs::read_to_string(dir.join(MARKER)).ok()?;
    serde_json::from_str::<Marker>(&text)
        .ok()
        .filter(|m| m.files.is_some() && m.hashes.is_some())
}

/// The paths in a published folder that its marker does not list; `None` when the
/// folder holds no marker listing its files (another's, or an older version's).
pub(crate) fn not_published(output: &Path) -> Result<Option<Vec<String>>> {
    let Some(files) = read_marker(output).and_then(|m| m.files) else {
        return Ok(None);
    };
    Ok(Some(
        tree(output)?
            .into_iter()
            .filter(|f| files.binary_search(f).is_err() && !clutter(f))
            .collect(),
    ))
}

/// What in the published folder `output` is not as its publish wrote it, but for
/// `except` (the page `report` writes): a file the marker lists that is gone, or
/// whose content changed (where the marker has its hash).
pub(crate) fn changed_since_published(output: &Path, except: &str) -> Result<Option<String>> {
    Ok(
        first_change(output, except, true)?.map(|(file, gone)| match gone {
            true => format!("`{file}`, which the run published, is gone"),
            false => format!("`{file}` is not as the run wrote it"),
        }),
    )
}

/// The first file of the published folder `output` whose content is not what its
/// publish wrote: replaced, it would be lost. The page `report` renders again, and
/// files gone, are not counted.
fn edited_since_published(output: &Path) -> Result<Option<String>> {
    let page = userlens_report::files::REPORT_HTML;
    Ok(first_change(output, page, false)?.map(|(file, _)| file))
}

/// The first file the marker of `output` lists, but for `except`, that is gone (when
/// `gone_counts`) or whose content differs from its hash: its name, and whether it
/// is gone.
fn first_change(output: &Path, except: &str, gone_counts: bool) -> Result<Option<(String, bool)>> {
    let Some(marker) = read_marker(output) else {
        return Ok(None);
    };
    let hashes = marker.hashes.unwrap_or_default();
    for file in marker.files.iter().flatten().filter(|f| *f != except) {
        let path = output.join(file);
        if !path.exists() {
            if gone_counts {
                return Ok(Some((file.clone(), true)));
            }
            continue;
        }
        // A file without its hash is not vouched for: it may be anyone's.
        let changed = match hashes.get(file) {
            Some(hash) => crate::artifacts::file_hash(&path)? != *hash,
            None => path.is_file(),
        };
        if changed {
            return Ok(Some((file.clone(), false)));
        }
    }
    Ok(None)
}

/// Whether the marker of the published folder `dir` lists `name`.
pub(crate) fn listed(dir: &Path, name: &str) -> bool {
    read_marker(dir).is_some_and(|m| m.files.iter().flatten().any(|f| f == name))
}

/// Adds `name` to the files the marker of the published folder `dir` lists.
pub(crate) fn list_in_marker(dir: &Path, name: &str) -> Result<()> {
    let Some(mut marker) = read_marker(dir) else {
        return Ok(());
    };
    let files = marker.files.get_or_insert_with(Vec::new);
    if let Err(at) = files.binary_search_by(|f| f.as_str().cmp(name)) {
        files.insert(at, name.to_string());
        userlens_report::write_json(&marker, &dir.join(MARKER))?;
    }
    Ok(())
}

/// What a file browser leaves in any folder it shows (Finder's `.DS_Store` and `._`
/// files, Windows' `Thumbs.db` and `desktop.ini`), and the temporary files of
/// userlens's own atomic writes (`.<name>.<pid>.userlens.tmp`): no one's work.
fn clutter(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(name, ".DS_Store" | "Thumbs.db" | "desktop.ini")
        || name.starts_with("._")
        || userlens_report::is_temporary(name)
}

/// The run whose report `dir` holds, by its marker.
pub(crate) fn published_by(dir: &Path) -> Option<String> {
    read_marker(dir).map(|m| m.run_id)
}

/// Where a run that ended as `status` publishes for `output`: an ok run replaces
/// it, a refused one goes beside it; any other publishes nothing.
pub(crate) fn target(status: RunStatus, output: &Path) -> Option<PathBuf> {
    match status {
        RunStatus::Ok => Some(output.to_path_buf()),
        RunStatus::Refused => Some(refused_dir(output)),
        _ => None,
    }
}

/// Whether `dir` holds the report run `run_id` of `pipeline` published.
pub(crate) fn published_by_run(dir: &Path, run_id: &str, pipeline: &str) -> bool {
    read_marker(dir).is_some_and(|m| m.run_id == run_id && m.pipeline.as_deref() == Some(pipeline))
}

/// Whether `dir` was published by userlens (it holds a marker listing its files).
pub(crate) fn is_published(dir: &Path) -> bool {
    read_marker(dir).is_some()
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
    output.with_file_name(format!("{name}{REFUSED_SUFFIX}"))
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
            run_dir.join(userlens_model::files::RUN).display()
        ),
    };
    if is_published(output) {
        message.push_str("; the last good report is left in place");
    }
    message
}

/// `run_id` and this process, as the staging and set-aside folders are named: runs
/// of two runs folders may start in the same second under one id.
fn own(run_id: &str) -> String {
    format!("{run_id}-p{}", std::process::id())
}

/// Whether process `pid`, not this one, is running (Linux's `/proc`; elsewhere no
/// process is taken to run, as before processes were named).
pub(crate) fn running_elsewhere(pid: u32) -> bool {
    pid != std::process::id() && Path::new("/proc").join(pid.to_string()).exists()
}

/// Where [`staging`] makes the run's staging folder.
pub(crate) fn staging_path(output: &Path, run_id: &str) -> PathBuf {
    sibling(output, &format!("staging-{}", own(run_id)))
}

/// A fresh staging folder for `run_id` beside `output`, and the outermost folder
/// above it that this made, if its parent was not there.
pub(crate) fn staging(output: &Path, run_id: &str) -> Result<(PathBuf, Option<PathBuf>)> {
    let staging = staging_path(output, run_id);
    remove_own(&staging)?;
    let made = (staging.ancestors().skip(1))
        .take_while(|dir| !dir.as_os_str().is_empty() && !dir.exists())
        .last()
        .map(Path::to_path_buf);
    std::fs::create_dir_all(&staging).map_err(io(output))?;
    Ok((staging, made))
}

/// Removes the folders above `staging` up to `made` ([`staging`]'s) that are empty:
/// a run that published nothing leaves no empty folder of its making.
pub(crate) fn remove_empty_made(staging: &Path, made: &Path) {
    for dir in staging.ancestors().skip(1) {
        if std::fs::remove_dir(dir).is_err() || dir == made {
            break;
        }
    }
}

/// Removes a folder of userlens's own naming (staging or set aside), if present: its
/// marker first, so that a removal cut short leaves nothing [`recover`] puts back.
pub(crate) fn remove_own(path: &Path) -> Result<()> {
    let marker = path.join(MARKER);
    if marker.is_file() {
        std::fs::remove_file(&marker).map_err(io(&marker))?;
    }
    // Nothing is there to remove, nor under a file.
    use std::io::ErrorKind::{NotADirectory, NotFound};
    match std::fs::remove_dir_all(path) {
        Err(e) if !matches!(e.kind(), NotFound | NotADirectory) => Err(io(path)(e)),
        _ => Ok(()),
    }
}

/// Removes from the staging folder `staging`, all of it this run's, every entry but
/// those named in `kept`.
pub(crate) fn keep_only(staging: &Path, kept: &[&str]) -> Result<()> {
    for entry in std::fs::read_dir(staging).map_err(io(staging))? {
        let entry = entry.map_err(io(staging))?;
        if kept.iter().any(|k| entry.file_name() == *k) {
            continue;
        }
        let path = entry.path();
        let removed = if entry.file_type().map_err(io(&path))?.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(io(&path))?;
    }
    Ok(())
}

/// Replaces `target` by `staging`, marking it as userlens's: the two are exchanged in
/// one rename where the system can (Linux), else the old folder is renamed aside and
/// the new one renamed in; then the old one is removed. A reader sees the old outputs
/// or the new ones, never a mix; a kill between two renames is repaired by
/// [`recover`] on the next run.
pub(crate) fn publish(staging: &Path, target: &Path, run_id: &str, pipeline: &str) -> Result<()> {
    // Another pipeline's report is replaced, as asked, but not without a word.
    if let Some(other) = read_marker(target)
        .and_then(|m| m.pipeline)
        .filter(|p| p != pipeline)
    {
        tracing::warn!(
            "`{}` held the report of pipeline `{other}`: `{pipeline}` replaces it",
            target.display()
        );
    }
    let marker = staging.join(MARKER);
    let files = tree(staging)?;
    let hashes = (files.iter())
        .filter(|f| staging.join(f).is_file())
        .map(|f| Ok((f.clone(), crate::artifacts::file_hash(&staging.join(f))?)))
        .collect::<Result<BTreeMap<_, _>>>()?;
    let listed = Marker {
        run_id: run_id.to_string(),
        pipeline: Some(pipeline.to_string()),
        files: Some(files),
        hashes: Some(hashes),
    };
    userlens_report::write_json(&listed, &marker)?;
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let _swapping = ParentLock::take(target);
    let old = sibling(target, &format!("old-{}", own(run_id)));
    let had_output = target.exists();
    if had_output && exchange(staging, target) {
        // The old outputs are where the staging folder was: a leftover of this run's
        // to [`recover`] until they are set aside.
        std::fs::rename(staging, &old).map_err(io(staging))?;
    } else {
        if had_output {
            std::fs::rename(target, &old).map_err(io(target))?;
        }
        std::fs::rename(staging, target).map_err(io(target))?;
    }
    // Published: the old copy left behind is the next run's to remove ([`recover`]).
    if had_output && let Err(e) = remove_own(&old) {
        tracing::warn!(
            "published; the previous output set aside could not be removed yet: {}",
            crate::error::error_chain(&e)
        );
    }
    Ok(())
}

/// An exclusive lock on the folder that holds a published folder, held while the
/// folder is swapped ([`publish`]) and while `report` renders its page again, so the
/// page never goes into a folder published in the meantime. Released when dropped.
pub(crate) struct ParentLock {
    _folder: Option<std::fs::File>,
}

impl ParentLock {
    /// Waits for the lock of `target`'s parent folder, at most [`PARENT_LOCK_WAIT`];
    /// goes on without where there is no such folder, where it cannot be locked (a
    /// file system without locks, a folder that cannot be opened as a file) or after
    /// the wait, saying so.
    pub(crate) fn take(target: &Path) -> ParentLock {
        let parent = parent(target);
        #[cfg(unix)]
        {
            let Ok(folder) = std::fs::File::open(parent) else {
                return ParentLock { _folder: None };
            };
            let waited = std::time::Instant::now();
            loop {
                match folder.try_lock() {
                    Ok(()) => {
                        return ParentLock {
                            _folder: Some(folder),
                        };
                    }
                    Err(std::fs::TryLockError::WouldBlock)
                        if waited.elapsed() < PARENT_LOCK_WAIT =>
                    {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    Err(std::fs::TryLockError::WouldBlock) => {
                        tracing::warn!(
                            "`{}` stayed locked by another userlens (a `report`?) for {} s: \
                             going on without the lock",
                            parent.display(),
                            PARENT_LOCK_WAIT.as_secs()
                        );
                        return ParentLock { _folder: None };
                    }
                    Err(std::fs::TryLockError::Error(e)) => {
                        tracing::debug!("`{}` cannot be locked: {e}", parent.display());
                        return ParentLock { _folder: None };
                    }
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = parent;
            ParentLock { _folder: None }
        }
    }
}

/// How long a publish or a `report` waits for the other before going on.
const PARENT_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Swaps two folders in one rename; false where the system or file system cannot
/// (nothing moved then).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> bool {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).is_ok()
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> bool {
    false
}

/// Whose a staging or set-aside folder is, for [`recover`].
pub(crate) enum Owner {
    /// A run of this pipeline in this runs folder, made by the process recorded for
    /// it: finished, since the caller holds the lock.
    Certain,
    /// A run of this pipeline, unless its process is still running (a run of
    /// another runs folder under the same id).
    Unless,
    /// Not this pipeline's.
    Other,
}

/// Puts back an output folder that a killed publish left renamed aside, and removes
/// the staging and set-aside folders of runs in `finished` (runs of this pipeline
/// that no process is running: the caller holds the pipeline's lock): those of
/// `output` and of every folder beside it, so that a killed run's staging for one
/// night's partition does not stay until that night is run again.
pub(crate) fn recover(output: &Path, finished: &dyn Fn(&str, Option<u32>) -> Owner) -> Result<()> {
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
        let (kind, named) = rest.split_once('-').unwrap_or((rest, ""));
        // `<run id>-p<pid>` (a name without the process is an older version's).
        let (run_id, pid) = match named.rsplit_once("-p").map(|(id, p)| (id, p.parse())) {
            Some((id, Ok(pid))) => (id, Some(pid)),
            _ => (named, None),
        };
        let leftover = match finished(run_id, pid) {
            Owner::Certain => true,
            Owner::Unless => !pid.is_some_and(running_elsewhere),
            Owner::Other => false,
        };
        if target.is_empty() || !leftover {
            continue;
        }
        let target = dir.join(target);
        if kind == "old" && !target.exists() && path.join(MARKER).is_file() {
            std::fs::rename(&path, &target).map_err(io(&path))?;
        } else if (kind == "old" || kind == "staging")
            && let Err(e) = remove_own(&path)
        {
            // A leftover that cannot go yet is no reason to refuse the run.
            tracing::warn!(
                "a finished run's leftover could not be removed yet: {}",
                crate::error::error_chain(&e)
            );
        }
    }
    Ok(())
}

/// Writes `run.json` to the run folder and publishes the staging folder: an ok run
/// replaces the output folder, a refused one goes beside it (its quarantine and
/// record, where the last good report is left in place), a failed or partial run
/// publishes nothing.
pub(crate) fn finish_run(
    plan: &Plan,
    record: &mut RunRecord,
    run_dir: &Path,
    staging: &Path,
    output: &Path,
    force_output: bool,
) -> Result<()> {
    userlens_report::write_json(&*record, &run_dir.join(userlens_model::files::RUN))?;
    let Some(target) = target(record.status, output) else {
        return Ok(());
    };
    if record.status == RunStatus::Refused {
        // A refused night's record: what it quarantined, not the half report before it.
        let kept = [files::QUARANTINE, files::SURVEY_QUARANTINE, files::RUN];
        keep_only(staging, &kept)?;
        record.outputs.retain(|f| kept.contains(&f.as_str()));
    }
    if record.status == RunStatus::Ok {
        // The pages made from the files just written (every table a stage must
        // provide was checked when it ran or was loaded).
        userlens_report::write_json(&*record, &staging.join(userlens_model::files::RUN))?;
        // Once per kind: a second stage of a kind would make the same page again.
        let mut finished = std::collections::BTreeSet::new();
        for stage in &plan.stages {
            if !finished.insert(stage.stage.uses()) {
                continue;
            }
            let added = stage.stage.finish(staging).map_err(|e| match e {
                StageError::Run(error) => error,
                StageError::Failed(source) | StageError::Refused(source) => Error::Stage {
                    stage: stage.name.clone(),
                    source,
                },
            })?;
            record.outputs.extend(added);
        }
    }
    userlens_report::write_json(&*record, &staging.join(userlens_model::files::RUN))?;
    userlens_report::write_json(&*record, &run_dir.join(userlens_model::files::RUN))?;
    // Checked again: another process may have written there since the run began.
    let runs = run_dir.parent().and_then(Path::parent).unwrap_or(run_dir);
    check_output(&target, runs, force_output && target == output)?;
    // The pipeline file too, when there is one (the built-in profile has none).
    let pipeline_file = Some(plan.path.as_path()).filter(|p| p.is_file());
    let inputs = record.inputs.iter().map(|i| Path::new(&i.path));
    check_inputs_outside(&target, inputs.chain(pipeline_file))?;
    publish(staging, &target, &record.run_id, &plan.name)
}

#[cfg(test)]
mod tests;
