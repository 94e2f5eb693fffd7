//! The profile pipeline on a real Ballista cluster on 127.0.0.1 (a scheduler and
//! two executor processes of this binary: the parts' features and prediction inputs,
//! and k-means' E-steps) publishes the same CSVs as a local run,
//! and still does when one executor is killed (-9) while it runs a task; a run
//! stopped by a signal cancels its job.
//! Built only with `--features cluster` (`make test-cluster`).

mod common;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{generate, text, userlens};

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A role's process, killed when dropped; its log lines arrive on `lines`.
struct Role {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[String]) -> Role {
    let mut child = Command::new(env!("CARGO_BIN_EXE_userlens"))
        .arg("cluster")
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the userlens binary starts");
    let stderr = child.stderr.take().unwrap();
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    Role { child, lines }
}

struct Cluster {
    url: String,
    _scheduler: Role,
    executors: Vec<Role>,
}

/// A scheduler on a free port, and that port.
fn scheduler() -> (Role, u16) {
    let port = free_port();
    let scheduler = start(&[
        "scheduler".into(),
        "--bind".into(),
        format!("127.0.0.1:{port}"),
        // A killed executor's tasks move to the other after this many seconds.
        "--executor-timeout".into(),
        "5".into(),
    ]);
    wait_for_port(port);
    (scheduler, port)
}

fn cluster(work: &Path) -> Cluster {
    let (scheduler, scheduler_port) = scheduler();
    let executors = (0..2)
        .map(|i| {
            let (port, grpc_port) = (free_port(), free_port());
            let dir = work.join(format!("executor-{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let executor = start(&[
                "executor".into(),
                "--scheduler".into(),
                // Either spelling: `host:port`, or the pipeline's engine address.
                if i == 0 {
                    format!("127.0.0.1:{scheduler_port}")
                } else {
                    format!("ballista://127.0.0.1:{scheduler_port}")
                },
                "--port".into(),
                port.to_string(),
                "--grpc-port".into(),
                grpc_port.to_string(),
                "--concurrency".into(),
                "1".into(),
                "--heartbeat".into(),
                "1".into(),
                "--work-dir".into(),
                dir.display().to_string(),
            ]);
            wait_for_port(port);
            wait_for_port(grpc_port);
            executor
        })
        .collect();
    // Both executors have had a heartbeat to register with.
    std::thread::sleep(Duration::from_secs(2));
    Cluster {
        url: format!("ballista://127.0.0.1:{scheduler_port}"),
        _scheduler: scheduler,
        executors,
    }
}

fn profile(dir: &Path, name: &str, engine: Option<&str>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_userlens"));
    command
        .args(["profile", "events.csv", "--out", &format!("out-{name}")])
        .args(["--runs", &format!("runs-{name}")])
        // k-means restarts on a sample, then Lloyd on every user on the cluster.
        .args(["--set", "personas.fit_sample=500"])
        .args(["--set", "personas.cluster_lloyd_above=0"])
        .args(["--set", "personas.k_max=4"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .env_remove("RUST_LOG");
    if let Some(engine) = engine {
        command.args(["--engine", engine]);
    }
    command
}

/// The CSV files of an output folder.
fn csvs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    files
}

fn assert_same_csvs(local: &Path, cluster: &Path) {
    let (a, b) = (csvs(local), csvs(cluster));
    let names = |files: &[PathBuf]| -> Vec<String> {
        files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(&a), names(&b));
    assert!(
        a.len() >= 8,
        "a whole profile run publishes its CSVs: {:?}",
        names(&a)
    );
    for (x, y) in a.iter().zip(&b) {
        assert!(
            std::fs::read(x).unwrap() == std::fs::read(y).unwrap(),
            "{} differs between the local and the cluster run",
            x.display()
        );
    }
}

#[test]
fn a_scheduler_that_does_not_answer_fails_the_run_before_any_stage() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 50, 3);
    let url = format!("ballista://127.0.0.1:{}", free_port());
    let out = profile(dir.path(), "nowhere", Some(&url)).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&url),
        "the message names the scheduler: {stderr}"
    );
    assert!(!stderr.contains("[1/"), "no stage started: {stderr}");
    assert!(
        !dir.path().join("out-nowhere").exists(),
        "nothing is published"
    );
}

#[test]
fn addresses_that_would_never_connect_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = |args: &[&str]| {
        let mut all = vec!["cluster"];
        all.extend_from_slice(args);
        userlens(&all, dir.path())
    };
    // On every interface no address names the machine to its executors.
    let out = cluster(&["scheduler", "--bind", "0.0.0.0:1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("give `--host`"),
        "{}",
        text(&out.stderr)
    );
    // Another scheme would be retried as a host name for ever.
    for scheduler in ["http://127.0.0.1:1", "BALLISTA://127.0.0.1:1"] {
        let out = cluster(&["executor", "--scheduler", scheduler]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(&format!("`--scheduler {scheduler}`")),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn an_executor_that_loses_its_scheduler_exits_with_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (scheduler, port) = scheduler();
    let (flight, grpc) = (free_port(), free_port());
    let mut executor = start(&[
        "executor".into(),
        "--scheduler".into(),
        format!("127.0.0.1:{port}"),
        "--port".into(),
        flight.to_string(),
        "--grpc-port".into(),
        grpc.to_string(),
        "--heartbeat".into(),
        "1".into(),
        "--work-dir".into(),
        dir.path().display().to_string(),
    ]);
    wait_for_port(flight);
    drop(scheduler); // killed
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = executor.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the executor runs on without its scheduler"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // A failure, so that a supervisor restarts it.
    assert_eq!(status.code(), Some(1));
    let said: Vec<String> = executor.lines.iter().collect();
    assert!(
        said.iter()
            .any(|l| l.contains("no longer answered its heartbeats")),
        "{said:?}"
    );
}

#[test]
fn a_run_stopped_by_a_signal_cancels_its_job() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 200, 5);
    // No executor: the features' job stays queued until it is cancelled.
    let (scheduler, port) = scheduler();
    let mut run = profile(
        dir.path(),
        "stopped",
        Some(&format!("ballista://127.0.0.1:{port}")),
    )
    .arg("-v")
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let (send, lines) = mpsc::channel();
    let stderr = run.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = send.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let job = loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the driver names its job");
        if let Some((_, job)) = line.split_once(": job ")
            && let Some(job) = job.strip_suffix(" submitted")
        {
            break job.to_string();
        }
    };
    let killed = Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = run.wait().unwrap();
    reader.join().unwrap();
    let said: Vec<String> = lines.try_iter().collect();
    assert_eq!(status.code(), Some(143), "{said:?}");
    assert!(
        said.iter()
            .any(|l| l.contains(&format!("cluster job {job} cancelled"))),
        "the driver says it cancelled {job}: {said:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let asked = format!("Received cancellation request for job {job}");
    loop {
        let line = scheduler
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the scheduler is asked to cancel the job");
        if line.contains(&asked) {
            break;
        }
    }
}

#[test]
fn a_cluster_run_publishes_what_a_local_run_does_even_when_an_executor_dies() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 1500, 11);
    let local = profile(dir.path(), "local", None).output().unwrap();
    assert!(local.status.success(), "{}", text(&local.stderr));

    let mut cluster = cluster(dir.path());
    // The executors' files under a `shared_dir`, as on machines that share one.
    let shared = dir.path().join("shared");
    let on_cluster = profile(dir.path(), "cluster", Some(&cluster.url))
        .args([
            "--set",
            &format!("pipeline.shared_dir={}", shared.display()),
        ])
        .output()
        .unwrap();
    assert!(on_cluster.status.success(), "{}", text(&on_cluster.stderr));
    assert_same_csvs(
        &dir.path().join("out-local"),
        &dir.path().join("out-cluster"),
    );
    // The ledger says which stages' work went to the cluster.
    let listed = userlens(&["runs", "list", "--runs", "runs-cluster"], dir.path());
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let run_id = text(&listed.stdout)
        .lines()
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("latest_"))
                .map(String::from)
        })
        .expect("the cluster run is listed");
    // The runs folder's own id keeps another driver's runs out of these parts.
    let runs_id = std::fs::read_to_string(dir.path().join("runs-cluster/.shared-id")).unwrap();
    let parts = shared
        // `userlens profile events.csv` runs as the pipeline `profile-events`.
        .join("profile-events")
        .join(runs_id.trim())
        .join(&run_id)
        .join("ingest/events.parts");
    let parts = std::fs::read_dir(&parts).map_or(0, |d| d.count());
    assert!(parts >= 2, "{parts} event parts under the shared_dir");
    let shown = userlens(
        &["runs", "show", &run_id, "--runs", "runs-cluster"],
        dir.path(),
    );
    let shown = text(&shown.stdout);
    let on_cluster = |stage: &str| {
        shown.lines().any(|l| {
            l.contains(&format!(" {stage} ")) && l.contains(&format!("on {}", cluster.url))
        })
    };
    for stage in ["features", "personas", "predict"] {
        assert!(on_cluster(stage), "{stage} on the cluster: {shown}");
    }
    assert!(!on_cluster("report"), "{shown}");
    let tasks: usize = cluster
        .executors
        .iter()
        .map(|e| {
            e.lines
                .try_iter()
                .filter(|l| l.contains("userlens: features of part"))
                .count()
        })
        .sum();
    assert!(
        tasks >= 4,
        "the executors ran the parts' features ({tasks} log lines)"
    );

    // Again, and one executor is killed -9 as soon as it starts a task.
    let run = profile(dir.path(), "killed", Some(&cluster.url))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let victim = 'found: loop {
        for (i, executor) in cluster.executors.iter().enumerate() {
            if executor
                .lines
                .try_iter()
                .any(|l| l.contains("userlens: features of part"))
            {
                break 'found i;
            }
        }
        assert!(Instant::now() < deadline, "no executor started a task");
        std::thread::sleep(Duration::from_millis(20));
    };
    cluster.executors[victim].child.kill().unwrap(); // SIGKILL
    cluster.executors[victim].child.wait().unwrap();
    let killed = run.wait_with_output().unwrap();
    let stderr = text(&killed.stderr);
    eprintln!(
        "with executor {victim} killed the run {}",
        if killed.status.success() {
            "finished on the other"
        } else {
            "failed and is resumed"
        }
    );
    if !killed.status.success() {
        // The job failed with the executor: a clear error, then --resume finishes it
        // on the executor left.
        assert_eq!(killed.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("Ballista"),
            "the error says where it failed: {stderr}"
        );
        assert!(!dir.path().join("out-killed").join("personas.csv").exists());
        let run_id = stderr
            .lines()
            .find_map(|l| l.strip_prefix("running profile ("))
            .map(|rest| rest.trim_end_matches(')').to_string())
            .expect("the run printed its id");
        let resumed = profile(dir.path(), "killed", None)
            .args(["--resume", &run_id])
            .output()
            .unwrap();
        assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    }
    assert_same_csvs(
        &dir.path().join("out-local"),
        &dir.path().join("out-killed"),
    );
}
