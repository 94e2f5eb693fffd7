//! The scheduler and executor processes, with userlens's codecs: `userlens cluster
//! scheduler` and `userlens cluster executor` run these.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use userlens_model::address::{self, HostPort};

use crate::codec::{LogicalCodec, PhysicalCodec};
use crate::error::{Error, Result};

/// How a scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Name or address the executors reach it by: they report their tasks there.
    pub host: String,
    /// Seconds without a heartbeat after which an executor is taken for dead and
    /// its tasks run elsewhere.
    pub executor_timeout_seconds: u64,
}

/// How an executor runs.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler's `host:port`.
    pub scheduler: String,
    /// Host to advertise to the scheduler: the name or address the scheduler and
    /// the driver reach this executor by.
    pub host: String,
    /// Address to listen on (default: `host` when it is an IP address, loopback for
    /// `localhost`, else every interface's, `0.0.0.0`).
    pub bind: Option<std::net::IpAddr>,
    /// Port of its Arrow Flight service (results are fetched from it).
    pub port: u16,
    /// Port of its gRPC service (tasks are pushed to it).
    pub grpc_port: u16,
    /// Tasks run at once.
    pub concurrency: usize,
    /// Where its shuffle files go.
    pub work_dir: Option<PathBuf>,
    /// Seconds between heartbeats to the scheduler.
    pub heartbeat_seconds: u64,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

/// A host as it goes before `:port`: an IPv6 address in brackets.
fn bracketed(host: &str) -> String {
    match host.contains(':') && !host.starts_with('[') {
        true => format!("[{host}]"),
        false => host.to_string(),
    }
}

/// `host:port` the executors of a scheduler reached by `host` and listening on
/// `port` report to.
pub fn scheduler_endpoint(host: &str, port: u16) -> String {
    format!("{}:{port}", bracketed(host))
}

/// Ballista's configuration of a scheduler.
fn scheduler_config(options: &SchedulerOptions) -> SchedulerConfig {
    SchedulerConfig {
        bind_host: options.bind.ip().to_string(),
        bind_port: options.bind.port(),
        // Ballista's default, `localhost`, is each executor itself on another machine.
        external_host: bracketed(&options.host),
        executor_timeout_seconds: options.executor_timeout_seconds,
        // A dead executor is looked for this often: within its timeout, or Ballista
        // warns that it may be found late.
        expire_dead_executor_interval_seconds: (options.executor_timeout_seconds / 2).clamp(1, 15),
        no_executors_grace_period_seconds: options.executor_timeout_seconds,
        override_logical_codec: Some(Arc::new(LogicalCodec::default())),
        override_physical_codec: Some(Arc::new(PhysicalCodec::default())),
        ..SchedulerConfig::default()
    }
}

/// Runs a scheduler until the process is stopped.
pub fn run_scheduler(options: &SchedulerOptions) -> Result<()> {
    let config = scheduler_config(options);
    let failed = |e: ballista_core::error::BallistaError| Error::Role {
        role: "scheduler",
        message: e.to_string(),
    };
    runtime()?.block_on(async {
        let cluster = BallistaCluster::new_from_config(&config)
            .await
            .map_err(failed)?;
        start_server(cluster, options.bind, Arc::new(config))
            .await
            .map_err(failed)
    })
}

/// Runs an executor until the process is stopped.
pub fn run_executor(options: &ExecutorOptions) -> Result<()> {
    let HostPort { host, port } = address::parse(&options.scheduler, Some(address::DEFAULT_PORT))
        .map_err(|why| Error::Address {
        url: options.scheduler.clone(),
        why,
    })?;
    if let Some(dir) = &options.work_dir {
        // An executor that cannot write there would register, then fail every task.
        let probe = dir.join(format!(".userlens-probe-{}", std::process::id()));
        if dir.exists() && !dir.is_dir() {
            return Err(Error::WorkDir {
                path: dir.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    "it is a file, not a folder",
                ),
            });
        }
        std::fs::create_dir_all(dir)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&probe)
            })
            .and_then(|_| std::fs::remove_file(&probe))
            .map_err(|source| Error::WorkDir {
                path: dir.clone(),
                source,
            })?;
    }
    let config = ExecutorProcessConfig {
        bind_host: options.bind_address().to_string(),
        external_host: Some(options.host.clone()),
        port: options.port,
        grpc_port: options.grpc_port,
        scheduler_host: host,
        scheduler_port: port,
        scheduler_connect_timeout_seconds: 30,
        vcores: options.concurrency.max(1),
        work_dir: options.work_dir.as_ref().map(|d| d.display().to_string()),
        executor_heartbeat_interval_seconds: options.heartbeat_seconds.max(1),
        override_logical_codec: Some(Arc::new(LogicalCodec::default())),
        override_physical_codec: Some(Arc::new(PhysicalCodec::default())),
        ..ExecutorProcessConfig::default()
    };
    runtime()?.block_on(async {
        start_executor_process(Arc::new(config))
            .await
            .map_err(|e| Error::Role {
                role: "executor",
                message: e.to_string(),
            })
    })?;
    // A signal ends the process before this; an executor that stops on its own has
    // lost its scheduler (heartbeats failed) or been told to stop: not a success,
    // so that a supervisor restarts it.
    Err(Error::Role {
        role: "executor",
        message: format!(
            "the scheduler at {} no longer answered its heartbeats, or told it to stop \
             (see the log above)",
            options.scheduler
        ),
    })
}

impl ExecutorOptions {
    /// Where the executor listens: Ballista binds an IP address, not a name. A
    /// host's address (`[::1]` too), loopback for `localhost`, else every interface.
    pub fn bind_address(&self) -> std::net::IpAddr {
        use std::net::{IpAddr, Ipv4Addr};
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        self.bind.unwrap_or_else(|| match host.parse() {
            Ok(ip) => ip,
            Err(_) if host.eq_ignore_ascii_case("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Err(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_executor_that_cannot_write_its_work_dir_does_not_start() {
        // A file where its folder would be.
        let work_dir = std::env::temp_dir().join(format!("userlens-work-{}", std::process::id()));
        std::fs::write(&work_dir, b"not a folder").unwrap();
        let options = ExecutorOptions {
            scheduler: "127.0.0.1:1".into(),
            host: "127.0.0.1".into(),
            bind: None,
            port: 0,
            grpc_port: 0,
            concurrency: 1,
            work_dir: Some(work_dir.clone()),
            heartbeat_seconds: 1,
        };
        let error = run_executor(&options).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, Error::WorkDir { .. }), "{message}");
        assert!(message.contains("cannot be written"), "{message}");
        let source = std::error::Error::source(&error).unwrap().to_string();
        assert_eq!(source, "it is a file, not a folder");
        assert_eq!(std::fs::read(&work_dir).unwrap(), b"not a folder");
        std::fs::remove_file(&work_dir).unwrap();
    }

    #[test]
    fn executors_report_to_the_scheduler_by_the_name_it_is_given() {
        let config = |host: &str| {
            scheduler_config(&SchedulerOptions {
                bind: "0.0.0.0:50050".parse().unwrap(),
                host: host.into(),
                executor_timeout_seconds: 180,
            })
            .scheduler_endpoint()
        };
        assert_eq!(config("sched-host"), "sched-host:50050");
        for timeout in [2, 5, 15, 29, 180] {
            let config = scheduler_config(&SchedulerOptions {
                bind: "127.0.0.1:50050".parse().unwrap(),
                host: "127.0.0.1".into(),
                executor_timeout_seconds: timeout,
            });
            assert!(
                config.expire_dead_executor_interval_seconds < timeout,
                "{timeout}"
            );
        }
        assert_eq!(config("10.0.0.5"), "10.0.0.5:50050");
        assert_eq!(scheduler_endpoint("::1", 50050), "[::1]:50050");
    }

    #[test]
    fn an_executor_listens_on_an_address_and_advertises_its_name() {
        let on = |host: &str, bind: Option<&str>| {
            ExecutorOptions {
                scheduler: "127.0.0.1:1".into(),
                host: host.into(),
                bind: bind.map(|b| b.parse().unwrap()),
                port: 0,
                grpc_port: 0,
                concurrency: 1,
                work_dir: None,
                heartbeat_seconds: 1,
            }
            .bind_address()
            .to_string()
        };
        assert_eq!(on("127.0.0.1", None), "127.0.0.1");
        assert_eq!(on("10.0.0.7", None), "10.0.0.7");
        assert_eq!(on("exec-host", None), "0.0.0.0");
        assert_eq!(on("localhost", None), "127.0.0.1");
        assert_eq!(on("[::1]", None), "::1");
        assert_eq!(on("exec-host", Some("10.0.0.7")), "10.0.0.7");
    }
}
