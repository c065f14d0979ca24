//! A stored table as a DataFusion `TableProvider`.
//!
//! A scan reads the table through a RocksDB snapshot on a blocking thread and hands batches
//! to the query over a small bounded channel, so memory stays bounded however large the table
//! is, and a query that stops early (LIMIT, cancellation) stops the read.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::ExecutionPlan;
use weir_storage::TableStore;

use crate::table_sink::StoredTableSink;

/// How many decoded batches a scan may buffer ahead of the query.
const SCAN_CHANNEL_BATCHES: usize = 2;

#[derive(Clone)]
pub struct StoredTable {
    store: Arc<TableStore>,
    /// The columns' `DEFAULT` expressions, for `INSERT (columns) SELECT` leaving some out.
    defaults: std::collections::HashMap<String, Expr>,
}

impl fmt::Debug for StoredTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredTable").field("table", &self.store.def().name).finish()
    }
}

impl StoredTable {
    pub fn new(store: Arc<TableStore>) -> Self {
        let mut defaults = std::collections::HashMap::new();
        let columns = &store.def().columns;
        if columns.iter().any(|c| c.default.is_some()) {
            let ctx = crate::functions::session_context(datafusion::prelude::SessionConfig::new());
            let empty = datafusion::common::DFSchema::empty();
            for column in columns {
                // Checked at CREATE TABLE; one that no longer plans leaves the column NULL.
                let parsed = column.default.as_deref().map(|sql| ctx.parse_sql_expr(sql, &empty));
                if let Some(Ok(expr)) = parsed {
                    defaults.insert(column.name.clone(), expr);
                }
            }
        }
        Self { store, defaults }
    }

    pub fn store(&self) -> &Arc<TableStore> {
        &self.store
    }
}

#[async_trait]
impl TableProvider for StoredTable {
    fn schema(&self) -> SchemaRef {
        self.store.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.defaults.get(column)
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let partition: Arc<dyn PartitionStream> =
            Arc::new(TableScanPartition { store: self.store.clone(), schema: self.store.schema() });
        Ok(Arc::new(StreamingTableExec::try_new(
            self.store.schema(),
            vec![partition],
            projection,
            Vec::new(),
            false,
            limit,
        )?))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(DataFusionError::NotImplemented(format!("{insert_op} into a Weir table")));
        }
        let sink = StoredTableSink::new(self.store.clone());
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}

struct TableScanPartition {
    store: Arc<TableStore>,
    schema: SchemaRef,
}

impl fmt::Debug for TableScanPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableScanPartition").field("table", &self.store.def().name).finish()
    }
}

impl PartitionStream for TableScanPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (tx, rx) = tokio::sync::mpsc::channel(SCAN_CHANNEL_BATCHES);
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let result = store.scan(|batch| tx.blocking_send(Ok(batch)).is_ok());
            if let Err(e) = result {
                let _ = tx.blocking_send(Err(crate::storage_error(e)));
            }
        });
        let stream =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array};
    use datafusion::prelude::SessionContext;
    use weir_plan::catalog::{ColumnDef, ColumnType, TableDef};
    use weir_storage::Store;

    use super::StoredTable;

    fn orders_def() -> TableDef {
        TableDef {
            id: 0,
            schema_name: "public".into(),
            name: "orders".into(),
            columns: vec![
                ColumnDef { name: "id".into(), column_type: ColumnType::Int8, not_null: true, default: None },
                ColumnDef {
                    name: "amount".into(),
                    column_type: ColumnType::Float8,
                    not_null: false,
                    default: None,
                },
            ],
            primary_key: vec![0],
            watermark: None,
            primary_key_name: None,
        }
    }

    #[tokio::test]
    async fn insert_then_query_through_datafusion() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let table = store.create_table(orders_def()).unwrap();
        let ctx = SessionContext::new();
        ctx.register_table("orders", Arc::new(StoredTable::new(table.clone()))).unwrap();

        // More rows than one scan batch, so the scan streams several batches.
        let values: Vec<String> = (0..20_000).map(|i| format!("({i}, {}.5)", i % 10)).collect();
        let inserted = ctx
            .sql(&format!("INSERT INTO orders VALUES {}", values.join(",")))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let count =
            inserted[0].column(0).as_any().downcast_ref::<arrow::array::UInt64Array>().unwrap().value(0);
        assert_eq!(count, 20_000);

        let result = ctx
            .sql("SELECT count(*) AS n, sum(amount) AS total, max(id) AS top FROM orders WHERE id >= 100")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let batch = &result[0];
        assert_eq!(batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0), 19_900);
        let expected: f64 = (100..20_000).map(|i| (i % 10) as f64 + 0.5).sum();
        assert_eq!(batch.column(1).as_any().downcast_ref::<Float64Array>().unwrap().value(0), expected);
        assert_eq!(batch.column(2).as_any().downcast_ref::<Int64Array>().unwrap().value(0), 19_999);

        // A duplicate key fails the INSERT and writes nothing.
        let err = ctx.sql("INSERT INTO orders VALUES (20000, 1.0), (5, 1.0)").await.unwrap().collect().await;
        assert!(err.is_err());
        let n = ctx.sql("SELECT count(*) FROM orders").await.unwrap().collect().await.unwrap();
        assert_eq!(n[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0), 20_000);
    }

    #[tokio::test]
    async fn limit_stops_the_scan_early() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let table = store.create_table(orders_def()).unwrap();
        let ctx = SessionContext::new();
        ctx.register_table("orders", Arc::new(StoredTable::new(table))).unwrap();
        let values: Vec<String> = (0..30_000).map(|i| format!("({i}, 1.0)")).collect();
        ctx.sql(&format!("INSERT INTO orders VALUES {}", values.join(",")))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let rows = ctx.sql("SELECT id FROM orders LIMIT 3").await.unwrap().collect().await.unwrap();
        assert_eq!(rows.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
    }
}
