//! A source as DataFusion sees it: its columns, so a view's query over it can be planned,
//! but no rows. A source is a stream, not stored data; reading one directly is an error
//! that says how to read it instead.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use weir_planner::SqlError;

#[derive(Debug)]
pub struct SourceTable {
    pub name: String,
    pub schema: SchemaRef,
}

#[async_trait]
impl TableProvider for SourceTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Err(DataFusionError::External(Box::new(source_not_queryable(&self.name))))
    }
}

pub fn source_not_queryable(name: &str) -> SqlError {
    SqlError::unsupported(format!("querying source \"{name}\" directly")).with_hint(format!(
        "A source is a stream, not stored data. Create a materialized view over it, e.g. \
             CREATE MATERIALIZED VIEW {name}_rows AS SELECT * FROM {name}; then query the view."
    ))
}
