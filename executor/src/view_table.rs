//! A materialized view as a DataFusion `TableProvider`: queries read the view's contents at
//! the epoch of the snapshot they were planned with.
//!
//! The provider holds an immutable [`ViewVersion`] taken from the committed snapshot when the
//! statement started, so every view a statement reads shows the same epoch, and the scan
//! decodes rows lazily, a batch at a time, without blocking the job that maintains the view.
//! The rows, their order and their decoding are the view store's (`weir_storage::view_store`);
//! this file is what DataFusion needs on top: the schema, filter pushdown and the scan plan.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::ScalarValue;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::ExecutionPlan;
use weir_storage::view_store::{leading_prefix, rows_with_prefix, ViewBatches, ViewDecodeError};
use weir_storage::{ViewRows, ViewVersion};

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

    /// `first_column = literal` narrows the scan to a range of the view's rows (they are
    /// ordered by their columns, the first one first). Inexact: DataFusion still applies
    /// the filter, so only the amount of rows read depends on this.
    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if self.leading_value(f).is_some() {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut partitions: Vec<ViewRows> =
            self.version.as_ref().map(|v| v.partitions.clone()).unwrap_or_default();
        if let Some(prefix) =
            filters.iter().find_map(|f| self.leading_value(f)).map(|v| self.encode_leading(v))
        {
            let prefix = prefix?;
            partitions = partitions.iter().map(|rows| rows_with_prefix(rows, &prefix)).collect();
        }
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

impl ViewTable {
    /// The value `expr` requires of the first column (`col = literal`, same type, not NULL).
    fn leading_value<'a>(&self, expr: &'a Expr) -> Option<&'a ScalarValue> {
        let Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) = expr else { return None };
        let first = self.schema.fields().first()?;
        let (column, value) = match (left.as_ref(), right.as_ref()) {
            (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c)) => (c, v),
            _ => return None,
        };
        (column.name == *first.name() && !value.is_null() && value.data_type() == *first.data_type())
            .then_some(value)
    }

    /// The row-format bytes every row whose first column equals `value` starts with.
    fn encode_leading(&self, value: &ScalarValue) -> Result<Vec<u8>> {
        Ok(leading_prefix(&value.to_array()?)?)
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
        let batches =
            ViewBatches::new(self.schema.clone(), self.partitions.clone()).map(|b| b.map_err(decode_error));
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), futures::stream::iter(batches)))
    }
}

/// A view store decoding error as DataFusion reports it.
pub(crate) fn decode_error(e: ViewDecodeError) -> DataFusionError {
    match e {
        ViewDecodeError::NoRowFormat => {
            DataFusionError::Internal("view columns cannot be row-decoded".into())
        }
        ViewDecodeError::Arrow(e) => DataFusionError::from(e),
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::util::pretty::pretty_format_batches;
    use datafusion::prelude::SessionContext;
    use weir_storage::view_store::ViewPartition;

    use super::*;

    /// A view of (k, name) rows in two partitions, read through DataFusion.
    async fn query(sql: &str) -> (Vec<String>, String) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let mut partitions =
            [ViewPartition::new(schema.clone()).unwrap(), ViewPartition::new(schema.clone()).unwrap()];
        for (i, (k, name)) in [(1, "a"), (2, "b"), (2, "c"), (3, "d"), (22, "e")].into_iter().enumerate() {
            let columns =
                [Arc::new(Int64Array::from(vec![k])) as ArrayRef, Arc::new(StringArray::from(vec![name]))];
            partitions[i % 2].apply(&columns, |_| 1 + (k == 3) as i64).unwrap();
        }
        let partitions = partitions.iter().map(|p| p.rows().clone()).collect();
        let version = Arc::new(ViewVersion { schema: schema.clone(), partitions });
        let ctx = SessionContext::new();
        ctx.register_table("v", Arc::new(ViewTable::new("v".into(), schema, Some(version)))).unwrap();
        let df = ctx.sql(sql).await.unwrap();
        let plan = format!("{:?}", df.clone().create_physical_plan().await.unwrap());
        let batches = df.collect().await.unwrap();
        let lines =
            pretty_format_batches(&batches).unwrap().to_string().lines().map(str::to_string).collect();
        (lines, plan)
    }

    #[tokio::test]
    async fn scans_every_row_with_its_multiplicity() {
        let (rows, _) = query("SELECT * FROM v ORDER BY k, name").await;
        assert_eq!(rows.len(), 6 + 4, "{rows:?}");
    }

    #[tokio::test]
    async fn equality_on_the_first_column_reads_only_its_range() {
        let (rows, _) = query("SELECT * FROM v WHERE k = 2 ORDER BY name").await;
        assert_eq!(
            rows,
            ["+---+------+", "| k | name |", "+---+------+", "| 2 | b    |", "| 2 | c    |", "+---+------+"]
        );
        // 2 is a byte prefix of nothing else here, but 22 must not leak in either way.
        let (rows, _) = query("SELECT count(*) AS n FROM v WHERE k = 3").await;
        assert_eq!(rows, ["+---+", "| n |", "+---+", "| 2 |", "+---+"]);
        let (rows, _) = query("SELECT count(*) AS n FROM v WHERE 22 = k").await;
        assert_eq!(rows, ["+---+", "| n |", "+---+", "| 1 |", "+---+"]);
        let (rows, _) = query("SELECT count(*) AS n FROM v WHERE k = 7").await;
        assert_eq!(rows, ["+---+", "| n |", "+---+", "| 0 |", "+---+"]);
    }

    #[test]
    fn only_first_column_equalities_narrow_the_scan() {
        use datafusion::prelude::{col, lit};
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let view = ViewTable::new("v".into(), schema, None);
        let filters = [
            col("k").eq(lit(2i64)),
            lit(2i64).eq(col("k")),
            col("name").eq(lit("a")),
            col("k").gt(lit(2i64)),
        ];
        let pushed = view.supports_filters_pushdown(&filters.iter().collect::<Vec<_>>()).unwrap();
        assert!(matches!(
            pushed.as_slice(),
            [
                TableProviderFilterPushDown::Inexact,
                TableProviderFilterPushDown::Inexact,
                TableProviderFilterPushDown::Unsupported,
                TableProviderFilterPushDown::Unsupported
            ]
        ));
    }

    #[tokio::test]
    async fn other_filters_are_applied_by_datafusion() {
        let (rows, _) = query("SELECT name FROM v WHERE name = 'c' OR k > 20 ORDER BY name").await;
        assert_eq!(rows, ["+------+", "| name |", "+------+", "| c    |", "| e    |", "+------+"]);
    }
}
