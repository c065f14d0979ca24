//! Queries: `SELECT`, `VALUES` and `EXPLAIN` (of anything but `CREATE MATERIALIZED VIEW`,
//! which `create_mv.rs` explains), planned by DataFusion in the session's catalog and
//! streamed to the client.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::TryStreamExt;
use weir_planner::sqlparser::ast::Statement;
use weir_planner::SqlResult;

use super::planning::plan;
use super::{Context, Outcome};
use crate::wire::errors::from_datafusion;

pub async fn run(cx: &Context<'_>, statement: Statement) -> SqlResult<Outcome> {
    let (ctx, plan) = plan(cx, statement).await?;
    let signals = crate::pg_catalog::signals_sessions(&plan);
    let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
    let schema = super::declared_types::with_declared_modifiers(schema, &plan, &cx.engine.store);
    let df = ctx.execute_logical_plan(plan).await.map_err(from_datafusion)?;
    let stream = df.execute_stream().await.map_err(from_datafusion)?;
    if signals {
        // `pg_cancel_backend` and the like: every signal sent, and its warnings raised,
        // before the first row goes out (see `pg_catalog::backend_functions`).
        let batches: Vec<_> = stream.try_collect().await.map_err(from_datafusion)?;
        let rows = futures::stream::iter(batches.into_iter().map(Ok));
        let stream = Box::pin(RecordBatchStreamAdapter::new(schema.clone(), rows));
        return Ok(Outcome::Rows { schema, stream });
    }
    Ok(Outcome::Rows { schema, stream })
}
