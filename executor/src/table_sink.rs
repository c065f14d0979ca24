//! `INSERT` into a stored table: DataFusion plans and type-coerces the input (VALUES, a
//! SELECT, column lists with NULL for omitted columns); this sink collects it and writes it
//! in one atomic, synced write, so an INSERT is all-or-nothing and durable when it returns.

use std::fmt;
use std::sync::Arc;

use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::datasource::sink::DataSink;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use futures::StreamExt;
use weir_storage::TableStore;

pub struct StoredTableSink {
    store: Arc<TableStore>,
    schema: SchemaRef,
}

impl StoredTableSink {
    pub fn new(store: Arc<TableStore>) -> Self {
        let schema = store.schema();
        Self { store, schema }
    }
}

impl fmt::Debug for StoredTableSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredTableSink").field("table", &self.store.def().name).finish()
    }
}

impl DisplayAs for StoredTableSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoredTableSink: table={}", self.store.def().name)
    }
}

#[async_trait]
impl DataSink for StoredTableSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        mut data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let mut batches = Vec::new();
        while let Some(batch) = data.next().await {
            let batch = batch?;
            // The input may carry different field names or nullability; the table's own
            // schema is what gets stored.
            batches.push(arrow::array::RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())?);
        }
        let batch = concat_batches(&self.schema, &batches)?;
        if batch.num_rows() == 0 {
            return Ok(0);
        }
        let _guard = self.store.write_lock.lock().await;
        let store = self.store.clone();
        let written = tokio::task::spawn_blocking(move || store.insert(&batch))
            .await
            .map_err(|e| DataFusionError::Execution(format!("insert task failed: {e}")))?
            .map_err(crate::storage_error)?;
        Ok(written as u64)
    }
}
