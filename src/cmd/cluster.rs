//! `userlens cluster scheduler|executor`: one binary is every role of a Ballista
//! cluster, with userlens's operators registered.

use crate::Failure;
use crate::cli::ClusterRole;

/// Runs this process as the cluster role asked for, until it is stopped.
#[cfg(feature = "cluster")]
pub fn run(role: &ClusterRole) -> Result<(), Failure> {
    use userlens_cluster::roles;
    match role {
        ClusterRole::Scheduler {
            bind,
            host,
            executor_timeout,
        } => {
            // Executors report their tasks to this name: on every interface no
            // address names the machine, and `localhost` would be each executor.
            let host = match host {
                Some(host) => host.clone(),
                None if bind.ip().is_unspecified() => {
                    return Err(Failure::usage(anyhow::anyhow!(
                        "`--bind {bind}` listens on every interface: give `--host`, the \
                         name or address the executors reach this scheduler by"
                    )));
                }
                None => bind.ip().to_string(),
            };
            say!(
                "userlens cluster scheduler listening on {bind}, reached by executors at {}",
                roles::scheduler_endpoint(&host, bind.port())
            );
            roles::run_scheduler(&roles::SchedulerOptions {
                bind: *bind,
                host,
                executor_timeout_seconds: *executor_timeout,
            })?;
        }
        ClusterRole::Executor {
            scheduler,
            host,
            bind,
            port,
            grpc_port,
            concurrency,
            work_dir,
            heartbeat,
        } => {
            let concurrency = concurrency
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            // `host:port`, or the pipeline's spelling, `ballista://host[:port]`; any
            // other scheme would be retried as a host name for ever.
            let scheduler_address = match userlens_pipeline::Engine::parse(scheduler) {
                Ok(userlens_pipeline::Engine::Ballista { host, port }) => {
                    format!("{host}:{port}")
                }
                Err(why) if scheduler.contains("://") => {
                    return Err(Failure::usage(anyhow::anyhow!(
                        "`--scheduler {scheduler}`: {why}; write `host:port` or \
                         `ballista://host:port`"
                    )));
                }
                _ => scheduler.clone(),
            };
            let options = roles::ExecutorOptions {
                scheduler: scheduler_address,
                host: host.clone(),
                bind: *bind,
                port: *port,
                grpc_port: *grpc_port,
                concurrency,
                work_dir: work_dir.clone(),
                heartbeat_seconds: *heartbeat,
            };
            say!(
                "userlens cluster executor {host}:{port}, listening on {}, scheduler {scheduler}",
                options.bind_address()
            );
            roles::run_executor(&options)?;
        }
    }
    Ok(())
}

/// Without the `cluster` feature: a usage error saying how to build it in.
#[cfg(not(feature = "cluster"))]
pub fn run(_: &ClusterRole) -> Result<(), Failure> {
    Err(Failure::usage(anyhow::anyhow!(
        "this userlens was built without the `cluster` feature: \
         build it with `cargo build --release --features cluster`"
    )))
}

/// Opens the Ballista cluster of an `engine = "ballista://..."` run: registered with
/// the pipeline crate at start.
#[cfg(feature = "cluster")]
pub fn connect(
    url: &str,
) -> Result<std::sync::Arc<dyn userlens_pipeline::engine::Cluster>, String> {
    let cluster = userlens_cluster::Ballista::connect(url).map_err(|e| e.to_string())?;
    Ok(std::sync::Arc::new(OnBallista(cluster)))
}

#[cfg(feature = "cluster")]
struct OnBallista(userlens_cluster::Ballista);

#[cfg(feature = "cluster")]
impl userlens_pipeline::engine::Cluster for OnBallista {
    fn url(&self) -> &str {
        self.0.url()
    }

    fn part_features(
        &self,
        parts: &[std::path::PathBuf],
        as_of: i64,
        top: &[String],
        params: &userlens_features::CheckedFeatureParams,
    ) -> userlens_features::Result<Vec<polars::prelude::DataFrame>> {
        self.0
            .part_features(parts, as_of, top, params)
            .map_err(|e| userlens_features::Error::Remote {
                engine: self.0.url().to_string(),
                message: userlens_model::error_chain(&e),
            })
    }

    fn predict_inputs(
        &self,
        parts: &[std::path::PathBuf],
        cutoff: i64,
        as_of: i64,
        unit: userlens_predict::TimeUnit,
        churn_window_days: u32,
    ) -> userlens_predict::Result<Vec<Vec<polars::prelude::DataFrame>>> {
        self.0
            .predict_inputs(parts, cutoff, as_of, unit, churn_window_days)
            .map_err(|e| userlens_predict::Error::Remote {
                engine: self.0.url().to_string(),
                message: userlens_model::error_chain(&e),
            })
    }

    fn lloyd_assign(
        &self,
        blocks: &[std::path::PathBuf],
        d: usize,
        centers: &[f64],
        k: usize,
    ) -> userlens_profile::Result<Vec<Vec<polars::prelude::DataFrame>>> {
        self.0
            .lloyd_assign(blocks, d, centers, k)
            .map_err(|e| userlens_profile::Error::Remote(format!("{}: {e}", self.0.url())))
    }
}
