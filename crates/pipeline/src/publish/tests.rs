//! Tests of publishing: markers, staging, recovery and what a folder may hold.

use super::*;

#[test]
fn refuses_a_published_folder_once_it_holds_files_of_someone_else() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let (staging, out) = (dir.path().join("staging"), dir.path().join("out"));
    std::fs::create_dir_all(staging.join("charts")).unwrap();
    std::fs::write(staging.join("personas.csv"), "").unwrap();
    std::fs::write(staging.join("charts/a.svg"), "").unwrap();
    publish(&staging, &out, "run1", "p").unwrap();
    assert!(check_output(&out, &runs, false).is_ok());
    // The marker names the pipeline, for another's publish there to warn of.
    assert_eq!(
        read_marker(&out).and_then(|m| m.pipeline).as_deref(),
        Some("p")
    );

    // What a file browser leaves is no one's work.
    std::fs::write(out.join(".DS_Store"), "").unwrap();
    std::fs::write(out.join("charts/Thumbs.db"), "").unwrap();
    assert!(check_output(&out, &runs, false).is_ok());
    std::fs::write(out.join("my_notes.txt"), "mine").unwrap();
    std::fs::write(out.join("charts/mine.svg"), "mine").unwrap();
    let err = check_output(&out, &runs, false).unwrap_err().to_string();
    assert!(
        err.contains("holds `charts/mine.svg`, `my_notes.txt`, which userlens's last publish"),
        "{err}"
    );
    assert!(check_output(&out, &runs, true).is_ok());

    // A marker that lists nothing (an older version's, or anyone's file of that
    // name, empty or not JSON) vouches for nothing.
    let listed_unhashed =
        "{\"run_id\":\"x\",\"files\":[\"charts\",\"my_notes.txt\",\"personas.csv\"]}";
    for marker in ["{\"run_id\":\"run0\"}\n", "", "not json", listed_unhashed] {
        std::fs::write(out.join(MARKER), marker).unwrap();
        let err = check_output(&out, &runs, false).unwrap_err().to_string();
        assert!(
            err.contains("does not list what a publish put there"),
            "{err}"
        );
        assert!(!is_published(&out));
    }
}

#[test]
fn a_name_leaves_room_for_its_refused_sibling() {
    let dir = tempfile::tempdir().unwrap();
    let longest = dir.path().join("n".repeat(192));
    assert!(check_name(&longest).is_ok());
    // Its `.refused` sibling is checked as an output at publish, not for length.
    let runs = dir.path().join("runs");
    assert!(check_output(&refused_dir(&longest), &runs, false).is_ok());
    let err = check_name(&dir.path().join("n".repeat(193))).unwrap_err();
    assert!(err.to_string().contains("more than 192 bytes"), "{err}");
}

#[test]
fn a_folder_holding_an_input_is_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = data.join("events.csv");
    let elsewhere = dir.path().join("elsewhere.csv");
    let err = check_inputs_outside(&data, [input.as_path()].into_iter()).unwrap_err();
    assert!(err.to_string().contains("holds the input"), "{err}");
    assert!(check_inputs_outside(&data, [elsewhere.as_path()].into_iter()).is_ok());
    let above = check_inputs_outside(dir.path(), [elsewhere.as_path()].into_iter());
    assert!(above.is_err());
    // A link in the folder to an input elsewhere goes with the folder too.
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(&elsewhere, "x").unwrap();
    let link = data.join("link.csv");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    assert!(check_inputs_outside(&data, [link.as_path()].into_iter()).is_err());
}

#[test]
fn only_userlenss_own_temporary_files_are_clutter() {
    assert!(!clutter("personas.csv.tmp"));
    assert!(clutter(".personas.csv.4242.userlens.tmp"));
    assert!(clutter("charts/.a.svg.7.userlens.tmp"));
    // A user's file of the shape of an older userlens's temporary name stays theirs.
    assert!(!clutter(".notes.42.tmp"));
    assert!(!clutter(".meeting-notes.tmp"));
    assert!(!clutter(".notes.draft.tmp"));
    assert!(!clutter("..1.tmp") && !clutter(".notes..tmp"));
}

#[test]
fn refuses_folders_that_are_not_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    // Folders that overlap the runs folder or hold the working folder, even
    // forced and however written.
    for (out, said) in [
        (runs.join("p"), "overlaps the runs folder"),
        (
            dir.path().join("none/../runs/p"),
            "overlaps the runs folder",
        ),
        (dir.path().join("runs-out/.."), "not a folder of its own"),
        (dir.path().to_path_buf(), "overlaps the runs folder"),
        (
            std::env::current_dir().unwrap(),
            "is the working folder or holds it",
        ),
        (
            std::env::current_dir()
                .unwrap()
                .parent()
                .unwrap()
                .to_path_buf(),
            "is the working folder or holds it",
        ),
    ] {
        let err = check_output(&out, &runs, true).unwrap_err().to_string();
        assert!(err.contains(said), "{}: {err}", out.display());
    }
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::write(theirs.join("thesis.txt"), "years of work").unwrap();
    let err = check_output(&theirs, &runs, false).unwrap_err().to_string();
    assert!(err.contains("holds files userlens did not write"), "{err}");
    assert!(check_output(&theirs, &runs, true).is_ok());

    let ours = dir.path().join("ours");
    std::fs::create_dir(&ours).unwrap();
    std::fs::write(ours.join("personas.csv"), "").unwrap();
    let hash = crate::artifacts::file_hash(&ours.join("personas.csv")).unwrap();
    std::fs::write(
        ours.join(MARKER),
        format!(
            "{{\"run_id\":\"r\",\"files\":[\"personas.csv\"],\"hashes\":{{\"personas.csv\":\"{hash}\"}}}}"
        ),
    )
    .unwrap();
    assert!(check_output(&ours, &runs, false).is_ok());
    assert!(check_output(&dir.path().join("new"), &runs, false).is_ok());

    let file = dir.path().join("file.txt");
    std::fs::write(&file, "").unwrap();
    let err = check_output(&file, &runs, false).unwrap_err().to_string();
    assert!(err.contains("is not a folder"), "{err}");
    let err = check_output(&file.join("sub/out"), &runs, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot be made: `") && err.contains("file.txt` is a file"),
        "{err}"
    );
    for bad in ["/", ".", "..", "out/..", "out/.", "out/./"] {
        let err = check_output(Path::new(bad), &runs, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a folder of its own"), "{bad}: {err}");
    }
    let err = check_output(Path::new("../x"), &runs, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("through `..`"), "{err}");
}

#[test]
fn a_listed_file_without_its_hash_is_not_vouched_for() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let out = published(dir.path(), &[("personas.csv", "a"), ("notes.txt", "b")]);
    assert!(check_output(&out, &runs, false).is_ok());
    let text = std::fs::read_to_string(out.join(MARKER)).unwrap();
    let mut marker: Marker = serde_json::from_str(&text).unwrap();
    marker.hashes.as_mut().unwrap().remove("notes.txt");
    std::fs::write(out.join(MARKER), serde_json::to_string(&marker).unwrap()).unwrap();
    let err = check_output(&out, &runs, false).unwrap_err().to_string();
    assert!(err.contains("holds `notes.txt`, changed since"), "{err}");
}

#[test]
fn a_folder_is_not_swapped_while_its_parent_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let out = published(dir.path(), &[("personas.csv", "a")]);
    let held = ParentLock::take(&out);
    let next = staging(&out, "r2").unwrap().0;
    std::fs::write(next.join("personas.csv"), "b").unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    let publishing = std::thread::spawn(move || {
        let published = publish(&next, &out, "r2", "p");
        done.send(()).unwrap();
        published.map(|()| out)
    });
    // Not a timing test: a publish that waits never finishes before the lock goes.
    let early = finished.recv_timeout(std::time::Duration::from_millis(300));
    assert!(early.is_err(), "published while the parent was locked");
    drop(held);
    let out = publishing.join().unwrap().unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("personas.csv")).unwrap(),
        "b"
    );
}

/// The run `id` of this pipeline, whose process is unknown.
fn unless(id: &'static str) -> impl Fn(&str, Option<u32>) -> Owner {
    move |run: &str, _| {
        if run == id {
            Owner::Unless
        } else {
            Owner::Other
        }
    }
}

/// `<dir>/out` as run `r1` of pipeline `p` published it, holding `files`.
fn published(dir: &Path, files: &[(&str, &str)]) -> std::path::PathBuf {
    let out = dir.join("out");
    let first = staging(&out, "r1").unwrap().0;
    for (name, text) in files {
        std::fs::write(first.join(name), text).unwrap();
    }
    publish(&first, &out, "r1", "p").unwrap();
    out
}

#[test]
fn publishing_replaces_the_folder_and_recovery_puts_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = published(dir.path(), &[("a.csv", "1")]);
    assert_eq!(std::fs::read_to_string(out.join("a.csv")).unwrap(), "1");
    assert!(out.join(MARKER).is_file());

    // A publish killed between its renames: the old folder is aside, none in place.
    std::fs::rename(&out, sibling(&out, "old-r2")).unwrap();
    let other = staging(&out, "r3").unwrap().0;
    recover(&out, &unless("r2")).unwrap();
    assert_eq!(std::fs::read_to_string(out.join("a.csv")).unwrap(), "1");
    assert!(other.is_dir(), "another run's staging is left alone");
    recover(&out, &unless("r3")).unwrap();
    assert!(!other.exists());
    // A run of another runs folder under the same id, in a process still running
    // (pid 1), keeps its staging; a dead process's is removed.
    let live = sibling(&out, "staging-r3-p1");
    let dead = sibling(&out, &format!("staging-r3-p{}", u32::MAX));
    std::fs::create_dir_all(&live).unwrap();
    std::fs::create_dir_all(&dead).unwrap();
    assert_ne!(staging(&out, "r3").unwrap().0, live);
    recover(&out, &unless("r3")).unwrap();
    assert!(live.is_dir() && !dead.exists());
    // This runs folder's own run by that process (the ledger says so, and the
    // lock is held) is finished, whatever process has its pid now.
    let ledgers = |run: &str, pid: Option<u32>| match (run, pid) {
        ("r3", Some(1)) => Owner::Certain,
        _ => Owner::Other,
    };
    recover(&out, &ledgers).unwrap();
    assert!(!live.exists());

    // Another partition's leftovers beside it: a killed run's staging, and a
    // night's folder set aside by a killed publish.
    let night = dir.path().join("2026-06-01");
    let killed = staging(&night, "r4").unwrap().0;
    let aside = sibling(&dir.path().join("2026-05-31"), "old-r4");
    std::fs::create_dir_all(&aside).unwrap();
    std::fs::write(aside.join(MARKER), "{}").unwrap();
    recover(&out, &unless("r4")).unwrap();
    assert!(!killed.exists());
    assert!(dir.path().join("2026-05-31").join(MARKER).is_file());
    assert!(!aside.exists());
}

#[test]
fn a_folder_set_aside_is_put_back_only_with_its_marker() {
    let dir = tempfile::tempdir().unwrap();
    let out = published(dir.path(), &[("a.csv", "1"), ("b.csv", "2")]);
    // The user removed a file; a publish was then killed between its renames.
    std::fs::remove_file(out.join("a.csv")).unwrap();
    let aside = sibling(&out, "old-r2");
    std::fs::rename(&out, &aside).unwrap();
    recover(&out, &unless("r2")).unwrap();
    assert_eq!(std::fs::read_to_string(out.join("b.csv")).unwrap(), "2");
    // A removal cut short: it takes the marker first, so what is left of the folder
    // is not put back once the published one has been moved away.
    std::fs::rename(&out, &aside).unwrap();
    std::fs::remove_file(aside.join(MARKER)).unwrap();
    recover(&out, &unless("r2")).unwrap();
    assert!(!out.exists() && !aside.exists());
}

#[test]
fn a_second_publish_swaps_the_folders_in_one_rename() {
    let dir = tempfile::tempdir().unwrap();
    let out = published(dir.path(), &[("a.csv", "1")]);
    let second = staging(&out, "r2").unwrap().0;
    std::fs::write(second.join("a.csv"), "2").unwrap();
    // On Linux the two folders trade places at once: no moment without `out`.
    #[cfg(target_os = "linux")]
    {
        assert!(exchange(&second, &out));
        assert_eq!(std::fs::read_to_string(out.join("a.csv")).unwrap(), "2");
        assert_eq!(std::fs::read_to_string(second.join("a.csv")).unwrap(), "1");
        assert!(exchange(&second, &out));
    }
    publish(&second, &out, "r2", "p").unwrap();
    assert_eq!(std::fs::read_to_string(out.join("a.csv")).unwrap(), "2");
    // Neither the staging folder nor the old outputs are left beside it.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["out"]);
}

#[test]
fn a_staging_folder_that_cannot_be_made_is_told_by_the_output_folder() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "mine").unwrap();
    let err = staging(&file.join("out"), "r1").unwrap_err().to_string();
    assert!(err.ends_with("notes.txt/out`"), "{err}");
}
