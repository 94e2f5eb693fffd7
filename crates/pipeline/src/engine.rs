//! Where a run's per-part work goes: this process (`local`), or a Ballista cluster
//! (`ballista://host:port`) that this crate knows only through the [`Cluster`] trait.
//! The cluster itself lives in `crates/cluster`, behind the binary's `cluster`
//! feature, which registers how to open one ([`register`]): the pipeline crate
//! builds no Ballista.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use polars::prelude::DataFrame;
use userlens_features::{CheckedFeatureParams, RemoteParts};
use userlens_model::address::{self, HostPort};
use userlens_predict::{PartInputs, RemoteInputs, TimeUnit};
use userlens_profile::{RemoteLloyd, SharedRows};

use crate::error::{Error, Result};

/// A cluster that the per-part work of a run can go to (see crates/cluster).
pub trait Cluster: Send + Sync {
    /// Its address as written, e.g. `ballista://127.0.0.1:50050`.
    fn url(&self) -> &str;

    /// The features of each Parquet part in `parts` (each holds whole users, sorted
    /// by user and time), in the parts' order: `userlens_features::part_features` run
    /// on the cluster.
    fn part_features(
        &self,
        parts: &[PathBuf],
        as_of: i64,
        top: &[String],
        params: &CheckedFeatureParams,
    ) -> userlens_features::Result<Vec<DataFrame>>;

    /// `userlens_predict::part_inputs` of each part, run on the cluster, in the
    /// parts' order, as the tables of `PartInputs::into_tables`.
    fn predict_inputs(
        &self,
        parts: &[PathBuf],
        cutoff: i64,
        as_of: i64,
        unit: TimeUnit,
        churn_window_days: u32,
    ) -> userlens_predict::Result<Vec<Vec<DataFrame>>>;

    /// Lloyd's E-step on each block of rows in `blocks` (files of
    /// `userlens_profile::encode_rows`, `d` columns) with `centers` (`k x d`), run on
    /// the cluster, in the blocks' order, as the tables of
    /// `userlens_profile::BlockAssignment::into_tables`.
    fn lloyd_assign(
        &self,
        blocks: &[PathBuf],
        d: usize,
        centers: &[f64],
        k: usize,
    ) -> userlens_profile::Result<Vec<Vec<DataFrame>>>;
}

/// Opens a cluster from its URL, checking that its scheduler answers.
pub type Connect = fn(&str) -> std::result::Result<Arc<dyn Cluster>, String>;

/// How the binary opens clusters, when it is built with them.
static CONNECT: OnceLock<Connect> = OnceLock::new();

/// Sets how clusters are opened, for the whole process: the binary calls it at start
/// when built with `--features cluster`. The first registration holds.
pub fn register(connect: Connect) {
    let _ = CONNECT.set(connect);
}

/// Where a run's per-part work runs: `[pipeline] engine` or `--engine`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Engine {
    /// In this process.
    #[default]
    Local,
    /// On the Ballista cluster whose scheduler listens at `host:port`.
    Ballista {
        /// Host name or address (an IPv6 address in brackets).
        host: String,
        /// Scheduler port.
        port: u16,
    },
}

impl Engine {
    /// Parses `local` or `ballista://host[:port]` (port 50050 when absent); the
    /// error says what is wrong.
    pub fn parse(text: &str) -> std::result::Result<Engine, String> {
        let text = text.trim();
        if text == "local" {
            return Ok(Engine::Local);
        }
        if !text.contains("://") {
            return Err("write `local` or `ballista://host:port`".into());
        }
        let HostPort { host, port } = address::parse_url(text)?;
        Ok(Engine::Ballista { host, port })
    }

    /// `local`, or the cluster's URL with its port: `ballista://host:port`.
    pub fn url(&self) -> String {
        match self {
            Engine::Local => "local".into(),
            Engine::Ballista { host, port } => format!("ballista://{host}:{port}"),
        }
    }

    /// Opens the engine's cluster (`None` for local) with `connect`, else with the
    /// registered one: a usage error when this build has none, a failure naming the
    /// address when its scheduler does not answer.
    pub(crate) fn open(&self, connect: Option<Connect>) -> Result<Option<Arc<dyn Cluster>>> {
        let Some(connect) = self.connector(connect)? else {
            return Ok(None);
        };
        let url = self.url();
        connect(&url)
            .map(Some)
            .map_err(|message| Error::Cluster { url, message })
    }

    /// A usage error when this build cannot run on the engine (a cluster, without
    /// the `cluster` feature, and no `connect`); nothing is connected to.
    pub fn check_built(&self, connect: Option<Connect>) -> Result<()> {
        self.connector(connect).map(|_| ())
    }

    /// How to connect to the engine's cluster: `connect`, else the registered one;
    /// `None` for local.
    fn connector(&self, connect: Option<Connect>) -> Result<Option<Connect>> {
        if *self == Engine::Local {
            return Ok(None);
        }
        match connect.or_else(|| CONNECT.get().copied()) {
            Some(connect) => Ok(Some(connect)),
            None => Err(Error::Usage(format!(
                "this userlens was built without the `cluster` feature: build it with \
                 `cargo build --release --features cluster` to run on {}",
                self.url()
            ))),
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url())
    }
}

/// The per-part work on events in Parquet parts, computed on a cluster: what
/// `userlens_features::build_parts` and `userlens_predict::predict` get as `remote`
/// (see [`crate::StageContext::remote_parts`]).
pub struct OnCluster<'a> {
    cluster: &'a dyn Cluster,
    /// The parts, by absolute path: executors do not share our working folder.
    files: Vec<PathBuf>,
}

impl<'a> OnCluster<'a> {
    pub(crate) fn new(cluster: &'a dyn Cluster, files: &[PathBuf]) -> OnCluster<'a> {
        let files = files
            .iter()
            .map(|f| std::path::absolute(f).unwrap_or_else(|_| f.clone()))
            .collect();
        OnCluster { cluster, files }
    }
}

impl RemoteParts for OnCluster<'_> {
    fn part_features(
        &self,
        as_of: i64,
        top: &[String],
        params: &CheckedFeatureParams,
    ) -> userlens_features::Result<Vec<DataFrame>> {
        let built = self
            .cluster
            .part_features(&self.files, as_of, top, params)?;
        // One table per part, or users would go missing without a word.
        if built.len() != self.files.len() {
            return Err(userlens_features::Error::Remote {
                engine: self.cluster.url().to_string(),
                message: format!(
                    "it returned {} tables for {} parts",
                    built.len(),
                    self.files.len()
                ),
            });
        }
        Ok(built)
    }
}

impl RemoteInputs for OnCluster<'_> {
    fn part_inputs(
        &self,
        cutoff: i64,
        as_of: i64,
        unit: TimeUnit,
        churn_window_days: u32,
    ) -> userlens_predict::Result<Vec<PartInputs>> {
        let remote = |message: String| userlens_predict::Error::Remote {
            engine: self.cluster.url().to_string(),
            message,
        };
        let tables =
            self.cluster
                .predict_inputs(&self.files, cutoff, as_of, unit, churn_window_days)?;
        // One result per part, or users would go missing without a word.
        if tables.len() != self.files.len() {
            return Err(remote(format!(
                "it returned the inputs of {} parts for {} parts",
                tables.len(),
                self.files.len()
            )));
        }
        tables
            .into_iter()
            .zip(&self.files)
            .map(|(tables, file)| {
                PartInputs::from_tables(tables)
                    .map_err(|e| remote(format!("{}: {e}", file.display())))
            })
            .collect()
    }
}

/// k-means' Lloyd iterations on a cluster: what `userlens_profile::profile_with`
/// gets as `remote` (see [`crate::StageContext::remote_lloyd`]). The rows go to files
/// in the stage's [`crate::StageContext::cluster_dir`], which the executors read.
pub struct LloydOnCluster<'a> {
    cluster: &'a dyn Cluster,
    dir: PathBuf,
    used: std::cell::Cell<bool>,
}

impl<'a> LloydOnCluster<'a> {
    pub(crate) fn new(cluster: &'a dyn Cluster, folder: &Path) -> LloydOnCluster<'a> {
        let folder = std::path::absolute(folder).unwrap_or_else(|_| folder.into());
        LloydOnCluster {
            cluster,
            dir: folder.join("lloyd-rows"),
            used: std::cell::Cell::new(false),
        }
    }

    /// Whether any rows went to the cluster.
    pub fn used(&self) -> bool {
        self.used.get()
    }
}

impl RemoteLloyd for LloydOnCluster<'_> {
    fn share(
        &self,
        blocks: Vec<Vec<u8>>,
        d: usize,
    ) -> userlens_profile::Result<Box<dyn SharedRows + '_>> {
        let failed = |e: std::io::Error| {
            userlens_profile::Error::Remote(format!(
                "writing the rows for {} under {}: {e}",
                self.cluster.url(),
                self.dir.display()
            ))
        };
        std::fs::create_dir_all(&self.dir).map_err(failed)?;
        let mut held = HeldRows {
            cluster: self.cluster,
            dir: self.dir.clone(),
            files: Vec::new(),
            d,
        };
        for (i, block) in blocks.into_iter().enumerate() {
            let file = self.dir.join(format!("block-{i:05}.f64"));
            std::fs::write(&file, block).map_err(failed)?;
            held.files.push(file);
        }
        self.used.set(true);
        Ok(Box::new(held))
    }
}

/// Rows written for the cluster; the files go when the fit is done.
struct HeldRows<'a> {
    cluster: &'a dyn Cluster,
    dir: PathBuf,
    files: Vec<PathBuf>,
    d: usize,
}

impl SharedRows for HeldRows<'_> {
    fn assign(&self, centers: &[f64], k: usize) -> userlens_profile::Result<Vec<Vec<DataFrame>>> {
        let tables = self.cluster.lloyd_assign(&self.files, self.d, centers, k)?;
        // One result per block, or users would go missing without a word.
        if tables.len() != self.files.len() {
            return Err(userlens_profile::Error::Remote(format!(
                "{} returned {} E-steps for {} blocks",
                self.cluster.url(),
                tables.len(),
                self.files.len()
            )));
        }
        Ok(tables)
    }
}

impl Drop for HeldRows<'_> {
    fn drop(&mut self) {
        // Only the files written above, then the folder if nothing else is in it.
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ballista(host: &str, port: u16) -> Engine {
        Engine::Ballista {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn parses_local_and_ballista_urls() {
        assert_eq!(Engine::parse("local"), Ok(Engine::Local));
        assert_eq!(
            Engine::parse("ballista://10.0.0.5:50051"),
            Ok(ballista("10.0.0.5", 50051))
        );
        assert_eq!(
            Engine::parse("ballista://scheduler/"),
            Ok(ballista("scheduler", 50050))
        );
        assert_eq!(
            Engine::parse("ballista://[::1]:7000"),
            Ok(ballista("[::1]", 7000))
        );
        assert_eq!(
            Engine::parse("ballista://[::1]").map(|e| e.url()),
            Ok("ballista://[::1]:50050".into())
        );
        assert_eq!(ballista("h", 1).to_string(), "ballista://h:1");
    }

    #[test]
    fn refuses_other_schemes_and_malformed_addresses() {
        let error = |text: &str| Engine::parse(text).unwrap_err();
        assert_eq!(
            error("spark://h:7077"),
            "the scheme is `spark`: only `ballista://` clusters are supported"
        );
        assert_eq!(error("cluster"), "write `local` or `ballista://host:port`");
        assert_eq!(
            error("ballista://:50050"),
            "no host: write `ballista://host:port`"
        );
        assert_eq!(
            error("ballista://"),
            "no host: write `ballista://host:port`"
        );
        assert_eq!(
            error("ballista://h:99999"),
            "the port \"99999\" is not a number from 1 to 65535"
        );
        assert!(error("ballista://h:0").contains("from 1 to 65535"));
        assert!(error("ballista://h:").contains("is not a number"));
        assert!(error("ballista://h:50050/jobs").contains("`/` in the address"));
        assert!(error("ballista://user@h").contains("`@` in the address"));
        assert!(error("ballista://[::1").contains("closing `]`"));
    }

    /// A cluster that answers every prediction-inputs job with its tables.
    struct Answers(Vec<Vec<DataFrame>>);

    impl Cluster for Answers {
        fn url(&self) -> &str {
            "ballista://h:1"
        }

        fn part_features(
            &self,
            _: &[PathBuf],
            _: i64,
            _: &[String],
            _: &CheckedFeatureParams,
        ) -> userlens_features::Result<Vec<DataFrame>> {
            Ok(Vec::new())
        }

        fn predict_inputs(
            &self,
            _: &[PathBuf],
            _: i64,
            _: i64,
            _: TimeUnit,
            _: u32,
        ) -> userlens_predict::Result<Vec<Vec<DataFrame>>> {
            Ok(self.0.clone())
        }

        fn lloyd_assign(
            &self,
            _: &[PathBuf],
            _: usize,
            _: &[f64],
            _: usize,
        ) -> userlens_profile::Result<Vec<Vec<DataFrame>>> {
            Ok(self.0.clone())
        }
    }

    #[test]
    fn prediction_inputs_from_a_cluster_are_checked() {
        let files = [PathBuf::from("/p/0.parquet"), PathBuf::from("/p/1.parquet")];
        let error = |answers: Vec<Vec<DataFrame>>| {
            let cluster = Answers(answers);
            let remote = OnCluster::new(&cluster, &files);
            remote
                .part_inputs(0, 1, TimeUnit::Days, 7)
                .unwrap_err()
                .to_string()
        };
        let prefix = "computing the prediction inputs of the parts on ballista://h:1 failed: ";
        assert_eq!(
            error(vec![Vec::new()]),
            format!("{prefix}it returned the inputs of 1 parts for 2 parts")
        );
        assert_eq!(
            error(vec![Vec::new(), Vec::new()]),
            format!(
                "{prefix}/p/0.parquet: malformed prediction inputs of a part of the events: \
                 expected 6 tables"
            )
        );
    }

    #[test]
    fn rows_for_the_cluster_are_checked_and_removed_after() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = Answers(vec![Vec::new()]);
        let lloyd = LloydOnCluster::new(&cluster, dir.path());
        assert!(!lloyd.used());
        let block = userlens_profile::encode_rows(&[1.0, 2.0, 3.0, 4.0]);
        let held = lloyd.share(vec![block.clone(), block], 2).unwrap();
        assert!(lloyd.used());
        let rows = dir.path().join("lloyd-rows");
        assert_eq!(std::fs::read_dir(&rows).unwrap().count(), 2);
        let error = held.assign(&[0.0, 0.0], 1).err().unwrap();
        assert_eq!(
            error.to_string(),
            "k-means on the cluster: ballista://h:1 returned 1 E-steps for 2 blocks"
        );
        drop(held);
        assert!(
            !rows.exists(),
            "the rows written for the cluster are removed"
        );
    }

    #[test]
    fn local_needs_no_cluster() {
        let never: Connect = |url| Err(format!("asked to open {url}"));
        assert!(Engine::Local.open(Some(never)).unwrap().is_none());
        let err = ballista("h", 9).open(Some(never)).err().unwrap();
        assert_eq!(err.class(), crate::ErrorClass::StageFailed);
        assert_eq!(
            err.to_string(),
            "cannot reach the cluster at `ballista://h:9`: asked to open ballista://h:9"
        );
    }
}
