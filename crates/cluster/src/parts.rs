//! Per-user work on each part of the events, as a DataFusion operator.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, BinaryArray, RecordBatch, UInt32Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures::{StreamExt, TryStreamExt};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use userlens_features::CheckedFeatureParams;
use userlens_predict::TimeUnit;

/// Bytes of a table per row: well under gRPC's 16 MB messages.
const CHUNK_BYTES: usize = 4 << 20;

/// The per-part work a job does: the same functions a local run calls on each part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PartJob {
    /// `userlens_features::part_features`: one table.
    Features {
        /// Events before this time count (UTC microseconds).
        as_of: i64,
        /// The categories that get a share column, the same for every part.
        top: Vec<String>,
        /// The checked feature parameters.
        params: CheckedFeatureParams,
    },
    /// Lloyd's E-step of k-means on a block of rows (a file of
    /// `userlens_profile::encode_rows`): the tables of `BlockAssignment::into_tables`.
    Lloyd {
        /// Columns of the rows.
        d: usize,
        /// Number of centres.
        k: usize,
        /// The centres, `k x d`, row-major.
        centers: Vec<f64>,
    },
    /// `userlens_predict::part_inputs`: the tables of `PartInputs::into_tables`.
    PredictInputs {
        /// The prediction cutoff (UTC microseconds).
        cutoff: i64,
        /// The as-of time.
        as_of: i64,
        /// Time unit of the purchase histories.
        unit: TimeUnit,
        /// Days without activity that make a churned user.
        churn_window_days: u32,
    },
}

impl PartJob {
    /// The tables of this job for one part.
    fn run(&self, path: &Path) -> Result<Vec<DataFrame>, String> {
        use userlens_model::error_chain;
        let events = || userlens_ingest::scan_part(path).map_err(|e| error_chain(&e));
        match self {
            PartJob::Features { as_of, top, params } => {
                userlens_features::part_features(&events()?, *as_of, top, params)
                    .map(|table| vec![table])
                    .map_err(|e| error_chain(&e))
            }
            PartJob::PredictInputs {
                cutoff,
                as_of,
                unit,
                churn_window_days,
            } => {
                let part = events()?;
                userlens_predict::part_inputs(&part, *cutoff, *as_of, *unit, *churn_window_days)
                    .and_then(userlens_predict::PartInputs::into_tables)
                    .map_err(|e| error_chain(&e))
            }
            PartJob::Lloyd { d, k, centers } => {
                let bytes = std::fs::read(path).map_err(|e| {
                    format!("failed to read `{}`: {}", path.display(), error_chain(&e))
                })?;
                userlens_profile::decode_rows(&bytes, *d)
                    .and_then(|rows| userlens_profile::assign_block(&rows, *d, centers, *k))
                    .and_then(|block| block.into_tables(*k, *d))
                    .map_err(|e| error_chain(&e))
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            PartJob::Features { .. } => "features",
            PartJob::PredictInputs { .. } => "prediction inputs",
            PartJob::Lloyd { .. } => "k-means E-step",
        }
    }
}

/// A job: `job` on every part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartsRequest {
    /// The files, as every executor sees them: Parquet parts of whole users, or
    /// blocks of rows for a k-means E-step.
    pub parts: Vec<PathBuf>,
    /// What to compute on each.
    pub job: PartJob,
}

/// The rows of a job: table `table` of part `part` as Parquet, split in chunks.
pub(crate) fn result_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("part", DataType::UInt32, false),
        Field::new("table", DataType::UInt32, false),
        Field::new("chunk", DataType::UInt32, false),
        Field::new("parquet", DataType::Binary, false),
    ]))
}

/// The table a client scans to run a [`PartsRequest`]: its scan is a [`PartsExec`]
/// over [`part_numbers`].
#[derive(Debug)]
pub struct PartsTable {
    pub(crate) request: PartsRequest,
}

impl PartsTable {
    /// The table of `request`'s results.
    pub fn new(request: PartsRequest) -> PartsTable {
        PartsTable { request }
    }
}

#[async_trait]
impl TableProvider for PartsTable {
    fn schema(&self) -> SchemaRef {
        result_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let all: Vec<usize> = (0..result_schema().fields().len()).collect();
        if projection.is_some_and(|p| *p != all) || !filters.is_empty() || limit.is_some() {
            return Err(DataFusionError::NotImplemented(
                "the results of the parts are read whole".into(),
            ));
        }
        let input = part_numbers(self.request.parts.len())?;
        Ok(Arc::new(PartsExec::new(self.request.clone(), input)))
    }
}

/// An in-memory scan whose partition `i` is one row holding `i`: the leaf the
/// scheduler knows how to cut to each task's partitions, so that a task computes
/// only its own part.
pub fn part_numbers(parts: usize) -> DfResult<Arc<dyn ExecutionPlan>> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "part",
        DataType::UInt32,
        false,
    )]));
    let partitions = (0..parts)
        .map(|i| {
            let rows: Arc<dyn Array> = Arc::new(UInt32Array::from(vec![i as u32]));
            RecordBatch::try_new(schema.clone(), vec![rows]).map(|batch| vec![batch])
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MemorySourceConfig::try_new_exec(&partitions, schema, None)?)
}

/// For each part number its input holds, the request's job on that part.
#[derive(Debug)]
pub struct PartsExec {
    pub(crate) request: PartsRequest,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl PartsExec {
    /// The operator of `request` over part numbers (see [`part_numbers`]): one
    /// output partition per input partition.
    pub fn new(request: PartsRequest, input: Arc<dyn ExecutionPlan>) -> PartsExec {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(result_schema()),
            Partitioning::UnknownPartitioning(input.properties().partitioning.partition_count()),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        PartsExec {
            request,
            input,
            properties: Arc::new(properties),
        }
    }
}

impl PartsExec {
    /// The same operator over another input (the scheduler cuts it to a task's
    /// partitions).
    fn over(&self, mut children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        match (children.pop(), children.is_empty()) {
            (Some(input), true) => Ok(Arc::new(PartsExec::new(self.request.clone(), input))),
            _ => Err(DataFusionError::Internal(
                "UserlensPartsExec has one input".into(),
            )),
        }
    }
}

impl DisplayAs for PartsExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "UserlensPartsExec: {} of {} parts",
            self.request.job.name(),
            self.request.parts.len()
        )
    }
}

impl ExecutionPlan for PartsExec {
    fn name(&self) -> &str {
        "UserlensPartsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.over(children)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.over(children)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let request = self.request.clone();
        let numbers = self.input.execute(partition, context)?;
        let batches = async move {
            let mut parts = Vec::new();
            for batch in numbers.try_collect::<Vec<_>>().await? {
                let column = batch.column(0).as_any().downcast_ref::<UInt32Array>();
                let column = column.ok_or_else(|| {
                    DataFusionError::Internal("part numbers are not UInt32".into())
                })?;
                parts.extend(column.values().iter().map(|&p| p as usize));
            }
            let batches = tokio::task::spawn_blocking(move || {
                let mut batches = Vec::new();
                for part in parts {
                    batches.extend(part_batches(&request, part)?);
                }
                Ok::<_, DataFusionError>(batches)
            })
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))??;
            Ok::<_, DataFusionError>(futures::stream::iter(batches.into_iter().map(Ok)))
        };
        let stream = futures::stream::once(batches).try_flatten().boxed();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            result_schema(),
            stream,
        )))
    }
}

/// The request's tables for part `partition`, as rows of Parquet chunks.
fn part_batches(request: &PartsRequest, partition: usize) -> DfResult<Vec<RecordBatch>> {
    let path = request.parts.get(partition).ok_or_else(|| {
        DataFusionError::Internal(format!(
            "partition {partition} of a request of {} parts",
            request.parts.len()
        ))
    })?;
    let started = std::time::Instant::now();
    let job = request.job.name();
    tracing::info!("userlens: {job} of part {partition} ({})", path.display());
    let external = |e: String| DataFusionError::External(format!("{}: {e}", path.display()).into());
    let tables = request.job.run(path).map_err(external)?;
    let batches = rows(partition, tables, CHUNK_BYTES).map_err(external)?;
    tracing::info!(
        "userlens: {job} of part {partition} in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(batches)
}

/// The rows that carry `tables` of part `partition`: each table as Parquet, in
/// chunks of at most `chunk_bytes`.
fn rows(
    partition: usize,
    tables: Vec<DataFrame>,
    chunk_bytes: usize,
) -> Result<Vec<RecordBatch>, String> {
    let number = |n: usize| -> Arc<dyn Array> { Arc::new(UInt32Array::from(vec![n as u32])) };
    let mut batches = Vec::new();
    for (table, mut frame) in tables.into_iter().enumerate() {
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes)
            .finish(&mut frame)
            .map_err(|e| e.to_string())?;
        for (chunk, piece) in bytes.chunks(chunk_bytes).enumerate() {
            let batch = RecordBatch::try_new(
                result_schema(),
                vec![
                    number(partition),
                    number(table),
                    number(chunk),
                    Arc::new(BinaryArray::from(vec![piece])),
                ],
            );
            batches.push(batch.map_err(|e| e.to_string())?);
        }
    }
    Ok(batches)
}

/// A table's Parquet bytes as they arrive: (chunk number, bytes).
type Chunks<'a> = Vec<(u32, &'a [u8])>;

/// Each part's tables from the rows of a job, in part order.
pub(crate) fn assemble(
    batches: &[RecordBatch],
    parts: usize,
) -> Result<Vec<Vec<DataFrame>>, String> {
    let mut pieces: Vec<Vec<Chunks>> = vec![Vec::new(); parts];
    for batch in batches {
        let column = |i: usize| batch.column(i).as_any();
        let (Some(part), Some(table), Some(chunk), Some(bytes)) = (
            column(0).downcast_ref::<UInt32Array>(),
            column(1).downcast_ref::<UInt32Array>(),
            column(2).downcast_ref::<UInt32Array>(),
            column(3).downcast_ref::<BinaryArray>(),
        ) else {
            return Err(format!("unexpected columns: {:?}", batch.schema()));
        };
        for row in 0..batch.num_rows() {
            let (p, t) = (part.value(row) as usize, table.value(row) as usize);
            let tables = pieces
                .get_mut(p)
                .ok_or_else(|| format!("a result for part {p} of {parts}"))?;
            if tables.len() <= t {
                tables.resize(t + 1, Vec::new());
            }
            tables[t].push((chunk.value(row), bytes.value(row)));
        }
    }
    pieces
        .into_iter()
        .enumerate()
        .map(|(p, tables)| {
            if tables.is_empty() {
                return Err(format!("no results for part {p}"));
            }
            tables
                .into_iter()
                .enumerate()
                .map(|(t, mut chunks)| {
                    chunks.sort_by_key(|(chunk, _)| *chunk);
                    let complete = chunks
                        .iter()
                        .enumerate()
                        .all(|(i, (c, _))| i == *c as usize);
                    if chunks.is_empty() || !complete {
                        return Err(format!("table {t} of part {p} is incomplete or repeated"));
                    }
                    let bytes: Vec<u8> =
                        chunks.iter().flat_map(|(_, b)| b.iter().copied()).collect();
                    ParquetReader::new(std::io::Cursor::new(bytes))
                        .finish()
                        .map_err(|e| format!("table {t} of part {p}: {e}"))
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(seed: i64) -> DataFrame {
        let ids: Vec<i64> = (0..300).map(|i| i * seed).collect();
        let names: Vec<String> = ids.iter().map(|i| format!("user-{i}")).collect();
        df!("user_id" => names, "value" => ids).unwrap()
    }

    #[test]
    fn a_part_an_executor_cannot_read_names_the_cause() {
        let missing = std::env::temp_dir().join(format!("userlens-no-part-{}", std::process::id()));
        let jobs = [
            PartJob::Features {
                as_of: 0,
                top: vec![],
                params: userlens_features::FeatureParams::default().check().unwrap(),
            },
            PartJob::Lloyd {
                d: 1,
                k: 1,
                centers: vec![0.0],
            },
        ];
        for job in jobs {
            let message = job.run(&missing).unwrap_err();
            assert!(message.contains("no such file or directory"), "{message}");
        }
    }

    #[test]
    fn tables_come_back_whole_in_part_order_whatever_order_the_rows_arrive_in() {
        let parts = vec![vec![table(1), table(2)], vec![table(3), table(5)]];
        let mut batches = Vec::new();
        for (p, tables) in parts.iter().enumerate() {
            batches.extend(rows(p, tables.clone(), 256).unwrap());
        }
        assert!(batches.len() > 8, "small chunks make many rows");
        batches.reverse();
        assert_eq!(assemble(&batches, 2).unwrap(), parts);
    }

    #[test]
    fn a_missing_chunk_or_part_is_an_error() {
        let batches = rows(0, vec![table(1)], 256).unwrap();
        let mut holed = batches.clone();
        holed.remove(1);
        assert!(assemble(&holed, 1).unwrap_err().contains("incomplete"));
        let mut repeated = batches.clone();
        repeated.push(batches[0].clone());
        assert!(assemble(&repeated, 1).is_err());
        assert!(assemble(&batches, 2).unwrap_err().contains("part 1"));
        assert!(assemble(&batches, 0).is_err());
    }
}
