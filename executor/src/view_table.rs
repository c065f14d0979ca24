//! A materialized view as a DataFusion `TableProvider`: queries read the view's contents at
//! the epoch of the snapshot they were planned with.
//!
//! The provider holds an immutable [`ViewVersion`] taken from the committed snapshot when the
//! statement started, so every view a statement reads shows the same epoch, and the scan
//! decodes rows lazily, a batch at a time, without blocking the job that maintains the view.

use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::ExecutionPlan;
use weir_storage::{ViewRows, ViewVersion};

const VIEW_SCAN_BATCH_ROWS: usize = 8192;

#[derive(Clone)]
pub struct ViewTable {
    name: String,
    schema: SchemaRef,
    /// `None` while the view's first epoch is not committed yet: it reads as empty.
    version: Option<Arc<ViewVersion>>,
}

impl fmt::Debug for ViewTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ViewTable").field("view", &self.name).finish()
    }
}

impl ViewTable {
    pub fn new(name: String, schema: SchemaRef, version: Option<Arc<ViewVersion>>) -> Self {
        Self { name, schema, version }
    }
}

#[async_trait]
impl TableProvider for ViewTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let partitions: Vec<ViewRows> =
            self.version.as_ref().map(|v| v.partitions.clone()).unwrap_or_default();
        let partition: Arc<dyn PartitionStream> =
            Arc::new(ViewScanPartition { schema: self.schema.clone(), partitions });
        Ok(Arc::new(StreamingTableExec::try_new(
            self.schema.clone(),
            vec![partition],
            projection,
            Vec::new(),
            false,
            limit,
        )?))
    }
}

struct ViewScanPartition {
    schema: SchemaRef,
    partitions: Vec<ViewRows>,
}

impl fmt::Debug for ViewScanPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ViewScanPartition").finish()
    }
}

impl PartitionStream for ViewScanPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let batches = ViewBatches::new(self.schema.clone(), self.partitions.clone());
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), futures::stream::iter(batches)))
    }
}

/// Decodes a view's rows into batches, partition after partition.
struct ViewBatches {
    schema: SchemaRef,
    converter: Option<RowConverter>,
    partitions: std::vec::IntoIter<ViewRows>,
    current: Option<imbl::ordmap::ConsumingIter<Arc<[u8]>, i64, imbl::shared_ptr::DefaultSharedPtr>>,
    /// Copies of a duplicated row still to emit.
    repeat: Option<(Arc<[u8]>, i64)>,
    failed: bool,
}

impl ViewBatches {
    fn new(schema: SchemaRef, partitions: Vec<ViewRows>) -> Self {
        let converter = RowConverter::new(
            schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect(),
        )
        .ok();
        Self {
            schema,
            converter,
            partitions: partitions.into_iter(),
            current: None,
            repeat: None,
            failed: false,
        }
    }

    fn next_row(&mut self) -> Option<Arc<[u8]>> {
        loop {
            if let Some((row, left)) = &mut self.repeat {
                if *left > 0 {
                    *left -= 1;
                    return Some(row.clone());
                }
                self.repeat = None;
            }
            match self.current.as_mut().and_then(Iterator::next) {
                Some((row, count)) if count > 0 => self.repeat = Some((row, count)),
                Some(_) => {}
                None => self.current = Some(self.partitions.next()?.into_iter()),
            }
        }
    }
}

impl Iterator for ViewBatches {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let mut rows = Vec::with_capacity(VIEW_SCAN_BATCH_ROWS);
        while rows.len() < VIEW_SCAN_BATCH_ROWS {
            match self.next_row() {
                Some(row) => rows.push(row),
                None => break,
            }
        }
        if rows.is_empty() {
            return None;
        }
        let result = (|| {
            let converter = self.converter.as_ref().ok_or_else(|| {
                datafusion::error::DataFusionError::Internal("view columns cannot be row-decoded".into())
            })?;
            let parser = converter.parser();
            let columns = converter.convert_rows(rows.iter().map(|r| parser.parse(r.as_ref())))?;
            Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
        })();
        self.failed = result.is_err();
        Some(result)
    }
}
