//! Queries: `SELECT`, `VALUES` and `EXPLAIN` (of anything but `CREATE MATERIALIZED VIEW`,
//! which `create_mv.rs` explains), planned by DataFusion in the session's catalog and
//! streamed to the client.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use weir_planner::sqlparser::ast::Statement;
use weir_planner::SqlResult;

use super::planning::plan;
use super::{Context, Outcome};
use crate::wire::errors::from_datafusion;

pub async fn run(cx: &Context<'_>, statement: Statement) -> SqlResult<Outcome> {
    let (ctx, plan) = plan(cx, statement).await?;
    let df = ctx.execute_logical_plan(plan).await.map_err(from_datafusion)?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let stream = df.execute_stream().await.map_err(from_datafusion)?;
    Ok(Outcome::Rows { schema, stream })
}
