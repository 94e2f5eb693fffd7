//! Per-user features of each part of the events, as a DataFusion operator.

use std::path::PathBuf;
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

/// Bytes of a part's table per row: well under gRPC's 16 MB messages.
const CHUNK_BYTES: usize = 4 << 20;

/// What a features job computes: `part_features` of every part at `as_of`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeaturesRequest {
    /// The Parquet parts, as every executor sees them.
    pub parts: Vec<PathBuf>,
    /// Events before this time count (UTC microseconds).
    pub as_of: i64,
    /// The categories that get a share column, the same for every part.
    pub top: Vec<String>,
    /// The checked feature parameters.
    pub params: CheckedFeatureParams,
}

/// The rows of a features job: part `part`'s table as Parquet, split in chunks.
pub(crate) fn result_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("part", DataType::UInt32, false),
        Field::new("chunk", DataType::UInt32, false),
        Field::new("parquet", DataType::Binary, false),
    ]))
}

/// The table a client scans to run a [`FeaturesRequest`]: its scan is a
/// [`FeaturesExec`] over [`part_numbers`].
#[derive(Debug)]
pub struct PartsTable {
    pub(crate) request: FeaturesRequest,
}

impl PartsTable {
    /// The table of `request`'s results.
    pub fn new(request: FeaturesRequest) -> PartsTable {
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
                "the features of the parts are read whole".into(),
            ));
        }
        let input = part_numbers(self.request.parts.len())?;
        Ok(Arc::new(FeaturesExec::new(self.request.clone(), input)))
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

/// For each part number its input holds, the features of that part.
#[derive(Debug)]
pub struct FeaturesExec {
    pub(crate) request: FeaturesRequest,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl FeaturesExec {
    /// The operator of `request` over part numbers (see [`part_numbers`]): one
    /// output partition per input partition.
    pub fn new(request: FeaturesRequest, input: Arc<dyn ExecutionPlan>) -> FeaturesExec {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(result_schema()),
            Partitioning::UnknownPartitioning(input.properties().partitioning.partition_count()),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        FeaturesExec {
            request,
            input,
            properties: Arc::new(properties),
        }
    }
}

impl FeaturesExec {
    /// The same operator over another input (the scheduler cuts it to a task's
    /// partitions).
    fn over(&self, mut children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        match (children.pop(), children.is_empty()) {
            (Some(input), true) => Ok(Arc::new(FeaturesExec::new(self.request.clone(), input))),
            _ => Err(DataFusionError::Internal(
                "UserlensFeaturesExec has one input".into(),
            )),
        }
    }
}

impl DisplayAs for FeaturesExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "UserlensFeaturesExec: parts={}, as_of={}",
            self.request.parts.len(),
            self.request.as_of
        )
    }
}

impl ExecutionPlan for FeaturesExec {
    fn name(&self) -> &str {
        "UserlensFeaturesExec"
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

/// Part `partition`'s features as rows of Parquet chunks.
fn part_batches(request: &FeaturesRequest, partition: usize) -> DfResult<Vec<RecordBatch>> {
    let path = request.parts.get(partition).ok_or_else(|| {
        DataFusionError::Internal(format!(
            "partition {partition} of a request of {} parts",
            request.parts.len()
        ))
    })?;
    let started = std::time::Instant::now();
    tracing::info!(
        "userlens: features of part {partition} ({})",
        path.display()
    );
    let external = |e: String| DataFusionError::External(e.into());
    let part = PlRefPath::try_from_path(path)
        .and_then(|p| LazyFrame::scan_parquet(p, ScanArgsParquet::default()))
        .map_err(|e| external(format!("{}: {e}", path.display())))?;
    let mut features =
        userlens_features::part_features(&part, request.as_of, &request.top, &request.params)
            .map_err(|e| external(format!("{}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes)
        .finish(&mut features)
        .map_err(|e| external(e.to_string()))?;
    tracing::info!(
        "userlens: features of part {partition}: {} users in {:.2} s",
        features.height(),
        started.elapsed().as_secs_f64()
    );
    bytes
        .chunks(CHUNK_BYTES)
        .enumerate()
        .map(|(chunk, piece)| {
            RecordBatch::try_new(
                result_schema(),
                vec![
                    Arc::new(UInt32Array::from(vec![partition as u32])),
                    Arc::new(UInt32Array::from(vec![chunk as u32])),
                    Arc::new(BinaryArray::from(vec![piece])),
                ],
            )
            .map_err(DataFusionError::from)
        })
        .collect()
}

/// Each part's table from the rows of a features job, in part order.
pub(crate) fn assemble(batches: &[RecordBatch], parts: usize) -> Result<Vec<DataFrame>, String> {
    let mut pieces: Vec<Vec<(u32, &[u8])>> = vec![Vec::new(); parts];
    for batch in batches {
        let column = |i: usize| batch.column(i).as_any();
        let (Some(part), Some(chunk), Some(bytes)) = (
            column(0).downcast_ref::<UInt32Array>(),
            column(1).downcast_ref::<UInt32Array>(),
            column(2).downcast_ref::<BinaryArray>(),
        ) else {
            return Err(format!("unexpected columns: {:?}", batch.schema()));
        };
        for row in 0..batch.num_rows() {
            let p = part.value(row) as usize;
            let slot = pieces
                .get_mut(p)
                .ok_or_else(|| format!("a result for part {p} of {parts}"))?;
            slot.push((chunk.value(row), bytes.value(row)));
        }
    }
    tracing::debug!(
        "cluster: {} result batches, chunks per part {:?}",
        batches.len(),
        pieces.iter().map(Vec::len).collect::<Vec<_>>()
    );
    pieces
        .into_iter()
        .enumerate()
        .map(|(p, mut chunks)| {
            chunks.sort_by_key(|(chunk, _)| *chunk);
            let complete = chunks
                .iter()
                .enumerate()
                .all(|(i, (c, _))| i == *c as usize);
            if chunks.is_empty() || !complete {
                return Err(format!("the results of part {p} are incomplete"));
            }
            let bytes: Vec<u8> = chunks.iter().flat_map(|(_, b)| b.iter().copied()).collect();
            ParquetReader::new(std::io::Cursor::new(bytes))
                .finish()
                .map_err(|e| format!("part {p}: {e}"))
        })
        .collect()
}
