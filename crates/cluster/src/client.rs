//! The driver's side: submits a job to a Ballista scheduler and reads the results
//! back.

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::config::BALLISTA_CLIENT_PULL;
use ballista_core::execution_plans::DistributedQueryExec;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::protobuf::{CancelJobParams, GetJobStatusParams};
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::protobuf::LogicalPlanNode;
use polars::prelude::DataFrame;
use userlens_features::CheckedFeatureParams;
use userlens_predict::TimeUnit;

use crate::codec::{LogicalCodec, PhysicalCodec};
use crate::error::{Error, Result};
use crate::parts::{PartJob, PartsRequest, PartsTable, assemble};

/// How long the scheduler has to accept a connection at [`Ballista::connect`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a job that has not finished says so.
const STILL_RUNNING_EVERY: Duration = Duration::from_secs(60);

/// How often a job is looked at for its id, until the scheduler has given one.
const JOB_ID_EVERY: Duration = Duration::from_millis(100);

/// A job this process waits for: its number in [`RUNNING`], its scheduler's address
/// and its plan, which learns the job's id once the scheduler gives one.
type Job = (u64, String, Arc<dyn ExecutionPlan>);

/// The jobs this process waits for, so that [`cancel_running`] can cancel them when
/// a signal stops the run.
static RUNNING: Mutex<Vec<Job>> = Mutex::new(Vec::new());

/// Set by [`cancel_running`]: the run is stopping, and submits no other job.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// How long [`cancel_running`] waits for a job just submitted to be given its id.
const ID_WAIT: Duration = Duration::from_secs(2);

/// A job in [`RUNNING`] while it is held.
struct Running(u64);

impl Running {
    fn register(address: &str, plan: &Arc<dyn ExecutionPlan>) -> Running {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        running().push((id, address.to_string(), Arc::clone(plan)));
        Running(id)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        running().retain(|(id, _, _)| *id != self.0);
    }
}

fn running() -> std::sync::MutexGuard<'static, Vec<Job>> {
    RUNNING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The id the scheduler gave the job of `plan`, once it has.
fn job_id(plan: &Arc<dyn ExecutionPlan>) -> Option<String> {
    plan.downcast_ref::<DistributedQueryExec<LogicalPlanNode>>()?
        .job_id()
        .map(|id| id.to_string())
}

/// Asks the schedulers to cancel the jobs this process is waiting for, so that a
/// run stopped by a signal leaves no job queued or running on the cluster; no job
/// is submitted after it. Waits at most 2 s for a job just submitted to be named,
/// and 5 s for each scheduler; returns the ids of the jobs cancelled.
pub fn cancel_running() -> Vec<String> {
    STOPPING.store(true, Ordering::SeqCst);
    let named = || -> (Vec<(String, String)>, bool) {
        let running = running();
        let jobs = (running.iter())
            .filter_map(|(_, address, plan)| Some((address.clone(), job_id(plan)?)))
            .collect::<Vec<_>>();
        let unnamed = jobs.len() < running.len();
        (jobs, unnamed)
    };
    let waited = std::time::Instant::now();
    let mut jobs = named();
    while jobs.1 && waited.elapsed() < ID_WAIT {
        std::thread::sleep(JOB_ID_EVERY / 2);
        jobs = named();
    }
    let jobs = jobs.0;
    if jobs.is_empty() {
        return Vec::new();
    }
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    let mut cancelled = Vec::new();
    for (address, job_id) in jobs {
        let cancel = async {
            let mut scheduler = SchedulerGrpcClient::connect(format!("http://{address}"))
                .await
                .map_err(|e| e.to_string())?;
            let asked = CancelJobParams {
                job_id: job_id.clone(),
            };
            scheduler.cancel_job(asked).await.map_err(|e| e.to_string())
        };
        match runtime.block_on(async { tokio::time::timeout(CONNECT_TIMEOUT, cancel).await }) {
            Ok(Ok(_)) => cancelled.push(job_id),
            Ok(Err(message)) => {
                tracing::warn!("cluster {address}: job {job_id} was not cancelled: {message}");
            }
            Err(_) => tracing::warn!(
                "cluster {address}: job {job_id} was not cancelled: no answer in {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
        }
    }
    cancelled
}

/// A Ballista cluster, reached through its scheduler.
#[derive(Debug)]
pub struct Ballista {
    url: String,
    address: String,
    runtime: tokio::runtime::Runtime,
}

impl Ballista {
    /// The cluster whose scheduler is at `url` (`ballista://host:port`, as the
    /// pipeline's engine parser leaves it), once the scheduler accepts a connection.
    pub fn connect(url: &str) -> Result<Ballista> {
        let address = address_of(url)?;
        let unreachable = |message: String| Error::Unreachable {
            address: address.clone(),
            message,
        };
        let sockets = address
            .to_socket_addrs()
            .map_err(|e| unreachable(e.to_string()))?;
        first_reachable(sockets).map_err(unreachable)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        // A port that takes connections but is no scheduler fails here, not mid-run:
        // the scheduler is asked of a job that does not exist.
        let probe = async {
            let mut scheduler = SchedulerGrpcClient::connect(format!("http://{address}"))
                .await
                .map_err(|e| e.to_string())?;
            let asked = GetJobStatusParams {
                job_id: "userlens-connect-check".into(),
            };
            scheduler
                .get_job_status(asked)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<(), String>(())
        };
        runtime
            .block_on(async { tokio::time::timeout(CONNECT_TIMEOUT, probe).await })
            .map_err(|_| {
                unreachable(format!(
                    "it takes connections but gave no scheduler's answer in {} s",
                    CONNECT_TIMEOUT.as_secs()
                ))
            })?
            .map_err(unreachable)?;
        Ok(Ballista {
            url: url.to_string(),
            address,
            runtime,
        })
    }

    /// The address as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `job` on every part, one Ballista task per part: each part's tables, in the
    /// parts' order.
    pub fn run(&self, parts: &[PathBuf], job: PartJob) -> Result<Vec<Vec<DataFrame>>> {
        let request = PartsRequest {
            parts: parts.to_vec(),
            job,
        };
        let failed = |message: String| Error::Job {
            address: self.address.clone(),
            message,
        };
        let started = std::time::Instant::now();
        let batches = self
            .runtime
            .block_on(async {
                let config = SessionConfig::new_with_ballista()
                    .with_ballista_logical_extension_codec(Arc::new(LogicalCodec::default()))
                    .with_ballista_physical_extension_codec(Arc::new(PhysicalCodec::default()))
                    .with_ballista_job_name("userlens")
                    // Pulled, the scheduler names the job at once, even one that stays
                    // queued without executors; pushed, only once it starts.
                    .set_bool(BALLISTA_CLIENT_PULL, true);
                let state = SessionStateBuilder::new()
                    .with_config(config)
                    .with_default_features()
                    .build();
                let url = format!("df://{}", self.address);
                let ctx = SessionContext::remote_with_state(&url, state).await?;
                let plan = ctx
                    .read_table(Arc::new(PartsTable::new(request)))?
                    .create_physical_plan()
                    .await?;
                let _running = Running::register(&self.address, &plan);
                // Registered first: a signal's cancel either finds the job or
                // stops it here.
                if STOPPING.load(Ordering::SeqCst) {
                    return Err(datafusion::error::DataFusionError::Execution(
                        "the run is stopping: no job is submitted".into(),
                    ));
                }
                let job = datafusion::physical_plan::collect(Arc::clone(&plan), ctx.task_ctx());
                tokio::pin!(job);
                let (mut named, mut said) = (false, Duration::ZERO);
                let mut ticks = tokio::time::interval(JOB_ID_EVERY);
                loop {
                    tokio::select! {
                        done = &mut job => break done,
                        _ = ticks.tick() => {
                            if !named && let Some(id) = job_id(&plan) {
                                named = true;
                                tracing::info!("cluster {}: job {id} submitted", self.address);
                            }
                            let waited = started.elapsed();
                            if waited >= said + STILL_RUNNING_EVERY {
                                said += STILL_RUNNING_EVERY;
                                tracing::warn!(
                                    "cluster {}: a job of {} parts is still running after {} s \
                                     (a job stays queued while no executor is registered with \
                                     the scheduler)",
                                    self.address,
                                    parts.len(),
                                    said.as_secs()
                                );
                            }
                        }
                    }
                }
            })
            .map_err(|e| failed(e.to_string()))?;
        tracing::info!(
            "cluster: {} parts in {:.2} s",
            parts.len(),
            started.elapsed().as_secs_f64()
        );
        assemble(&batches, parts.len()).map_err(Error::Results)
    }

    /// `userlens_features::part_features` of every part.
    pub fn part_features(
        &self,
        parts: &[PathBuf],
        as_of: i64,
        top: &[String],
        params: &CheckedFeatureParams,
    ) -> Result<Vec<DataFrame>> {
        let job = PartJob::Features {
            as_of,
            top: top.to_vec(),
            params: params.clone(),
        };
        let tables = self.run(parts, job)?;
        tables
            .into_iter()
            .map(|mut tables| match (tables.pop(), tables.is_empty()) {
                (Some(table), true) => Ok(table),
                _ => Err(Error::Results("a part's features are not one table".into())),
            })
            .collect()
    }

    /// `userlens_predict::part_inputs` of every part, as the tables of
    /// `PartInputs::into_tables`.
    pub fn predict_inputs(
        &self,
        parts: &[PathBuf],
        cutoff: i64,
        as_of: i64,
        unit: TimeUnit,
        churn_window_days: u32,
    ) -> Result<Vec<Vec<DataFrame>>> {
        let job = PartJob::PredictInputs {
            cutoff,
            as_of,
            unit,
            churn_window_days,
        };
        self.run(parts, job)
    }

    /// `userlens_profile::assign_block` of every block file, as the tables of
    /// `BlockAssignment::into_tables`.
    pub fn lloyd_assign(
        &self,
        blocks: &[PathBuf],
        d: usize,
        centers: &[f64],
        k: usize,
    ) -> Result<Vec<Vec<DataFrame>>> {
        let job = PartJob::Lloyd {
            d,
            k,
            centers: centers.to_vec(),
        };
        self.run(blocks, job)
    }
}

/// The first of a host's addresses that takes a connection, as the gRPC client
/// tries them (`localhost` is often `::1` first, and a scheduler listens on
/// `127.0.0.1`); the error is the last address's.
fn first_reachable(
    sockets: impl Iterator<Item = std::net::SocketAddr>,
) -> std::result::Result<std::net::SocketAddr, String> {
    let mut failed = "the host has no address".to_string();
    for socket in sockets {
        match std::net::TcpStream::connect_timeout(&socket, CONNECT_TIMEOUT) {
            Ok(_) => return Ok(socket),
            Err(e) => failed = e.to_string(),
        }
    }
    Err(failed)
}

/// `host:port` of `ballista://host:port`.
fn address_of(url: &str) -> Result<String> {
    userlens_model::address::parse_url(url)
        .map(|at| at.to_string())
        .map_err(|why| Error::Address {
            url: url.to_string(),
            why,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            address_of("ballista://10.0.0.5:50050").unwrap(),
            "10.0.0.5:50050"
        );
        assert_eq!(address_of("ballista://sched:7000/").unwrap(), "sched:7000");
        for bad in [
            "df://sched:50050",
            "ballista://",
            "ballista://h:port",
            "ballista://:1",
        ] {
            assert!(address_of(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_address_of_a_host_is_tried() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let listening = open.local_addr().unwrap();
        assert_eq!(
            first_reachable([closed, listening].into_iter()),
            Ok(listening)
        );
        assert!(first_reachable([closed].into_iter()).is_err());
        assert_eq!(
            first_reachable(std::iter::empty()),
            Err("the host has no address".to_string())
        );
    }

    #[test]
    fn a_scheduler_that_does_not_answer_is_named() {
        // A port just released by the OS: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let error = Ballista::connect(&format!("ballista://127.0.0.1:{port}")).unwrap_err();
        let message = error.to_string();
        assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
        assert!(matches!(error, Error::Unreachable { .. }));
    }

    #[test]
    fn a_port_that_takes_connections_but_is_no_scheduler_is_named() {
        // The OS accepts the connections; nothing ever answers on them.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let error = Ballista::connect(&format!("ballista://127.0.0.1:{port}")).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, Error::Unreachable { .. }), "{message}");
        assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
        assert!(message.contains("no scheduler's answer"), "{message}");
    }
}
