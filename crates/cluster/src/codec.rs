//! Ballista's codecs with userlens's operators added: a client's plan names a
//! [`PartsTable`], the scheduler's plan a [`PartsExec`]; everything else is left
//! to Ballista's own codecs.

use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::TableReference;
use datafusion::datasource::TableProvider;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

use crate::parts::{PartsExec, PartsRequest, PartsTable};

/// Marks an encoded [`PartsTable`] or [`PartsExec`]: the request follows as JSON.
const MAGIC: &[u8] = b"userlens.parts.v1\n";

fn encode(request: &PartsRequest, buf: &mut Vec<u8>) -> Result<()> {
    buf.extend_from_slice(MAGIC);
    serde_json::to_writer(buf, request).map_err(|e| DataFusionError::External(Box::new(e)))
}

fn decode(buf: &[u8]) -> Option<Result<PartsRequest>> {
    let json = buf.strip_prefix(MAGIC)?;
    Some(serde_json::from_slice(json).map_err(|e| DataFusionError::External(Box::new(e))))
}

/// The logical codec of clients and schedulers.
#[derive(Debug, Default)]
pub struct LogicalCodec {
    inner: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for LogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        match decode(buf) {
            Some(request) => Ok(Arc::new(PartsTable::new(request?))),
            None => self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        match node.downcast_ref::<PartsTable>() {
            Some(table) => encode(&table.request, buf),
            None => self.inner.try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }
}

/// The physical codec of schedulers and executors.
#[derive(Debug, Default)]
pub struct PhysicalCodec {
    inner: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for PhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match decode(buf) {
            Some(request) => {
                let [input] = inputs else {
                    return Err(DataFusionError::Internal(
                        "UserlensPartsExec has one input".into(),
                    ));
                };
                Ok(Arc::new(PartsExec::new(request?, input.clone())))
            }
            None => self.inner.try_decode(buf, inputs, ctx, proto_converter),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        match node.downcast_ref::<PartsExec>() {
            Some(exec) => encode(&exec.request, buf),
            None => self.inner.try_encode(node, buf, proto_converter),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parts::PartJob;

    /// A request of each job.
    fn requests() -> Vec<PartsRequest> {
        let parts: Vec<std::path::PathBuf> = vec![
            "/shared/part-00000.parquet".into(),
            "/shared/part-00001.parquet".into(),
        ];
        let as_of = 1_767_225_600_000_000;
        let features = PartJob::Features {
            as_of,
            top: vec!["books".into(), "garden".into()],
            params: userlens_features::FeatureParams::default().check().unwrap(),
        };
        let predict = PartJob::PredictInputs {
            cutoff: as_of - 90 * 86_400_000_000,
            as_of,
            unit: userlens_predict::TimeUnit::Weeks,
            churn_window_days: 60,
        };
        let lloyd = PartJob::Lloyd {
            d: 2,
            k: 2,
            // Exact bits: the centres must arrive as they left.
            centers: vec![0.1, -2.5e-300, f64::MAX, 1.0 / 3.0],
        };
        [features, predict, lloyd]
            .into_iter()
            .map(|job| PartsRequest {
                parts: parts.clone(),
                job,
            })
            .collect()
    }

    #[test]
    fn the_operator_survives_the_physical_codec() {
        for request in requests() {
            operator_round_trip(request);
        }
    }

    fn operator_round_trip(request: PartsRequest) {
        let codec = PhysicalCodec::default();
        let input = crate::parts::part_numbers(2).unwrap();
        let exec: Arc<dyn ExecutionPlan> = Arc::new(PartsExec::new(request.clone(), input.clone()));
        let mut buf = Vec::new();
        let converter = datafusion_proto::physical_plan::DefaultPhysicalProtoConverter {};
        codec.try_encode(exec, &mut buf, &converter).unwrap();
        let ctx = TaskContext::default();
        assert!(
            codec.try_decode(&buf, &[], &ctx, &converter).is_err(),
            "no input"
        );
        let back = codec.try_decode(&buf, &[input], &ctx, &converter).unwrap();
        let back = back.downcast_ref::<PartsExec>().expect("a PartsExec");
        assert_eq!(back.request, request);
        assert_eq!(back.properties().partitioning.partition_count(), 2);
    }

    #[test]
    fn the_table_survives_the_logical_codec() {
        for request in requests() {
            table_round_trip(request);
        }
    }

    fn table_round_trip(request: PartsRequest) {
        let codec = LogicalCodec::default();
        let table: Arc<dyn TableProvider> = Arc::new(PartsTable::new(request.clone()));
        let name = TableReference::bare("parts");
        let mut buf = Vec::new();
        codec
            .try_encode_table_provider(&name, table.clone(), &mut buf)
            .unwrap();
        let ctx = TaskContext::default();
        let back = codec
            .try_decode_table_provider(&buf, &name, table.schema(), &ctx)
            .unwrap();
        let back = back.downcast_ref::<PartsTable>().expect("a PartsTable");
        assert_eq!(back.request, request);
    }

    #[test]
    fn a_damaged_request_is_an_error_not_a_panic() {
        let mut buf = MAGIC.to_vec();
        buf.extend_from_slice(b"{\"parts\": 3");
        assert!(decode(&buf).unwrap().is_err());
        assert!(decode(b"some other plan").is_none());
    }
}
