//! The planning every DataFusion-run statement shares (queries, INSERT, the SELECTs that
//! compute UPDATE and DELETE, and Describe of all of them): Postgres-compatibility rewrites,
//! planning against the session's catalog, refusing streaming-only window TVFs, decoding
//! `bytea` literals, binding `$n` parameters; and the two ways a handler turns a plan or a
//! batch into results ([`collect`], [`rows`]).
//!
//! Kept apart from the handlers so every statement is planned the same way, whichever
//! handler runs it.

use arrow::datatypes::DataType;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use weir_planner::sqlparser::ast::Statement;
use weir_planner::{name_result_columns, rewrite_for_datafusion, SqlResult};

use super::{Context, Outcome};
use crate::wire::errors::from_datafusion;

/// Plans `statement` in a fresh context for the session, with parameters bound, after
/// checking the session's role may read every relation it reads.
pub async fn plan(cx: &Context<'_>, statement: Statement) -> SqlResult<(SessionContext, LogicalPlan)> {
    plan_reading(cx, statement, None).await
}

/// [`plan`], not requiring SELECT on `exempt` (the target of an UPDATE or DELETE that
/// reads none of its columns, which Postgres does not require SELECT for).
pub async fn plan_reading(
    cx: &Context<'_>,
    statement: Statement,
    exempt: Option<u64>,
) -> SqlResult<(SessionContext, LogicalPlan)> {
    let ctx = {
        let session = cx.session()?;
        cx.engine.session_context(&session).map_err(from_datafusion)?
    };
    let plan = plan_in(&ctx, statement).await?;
    super::access::require_reads(cx, &plan, exempt)?;
    let plan = if cx.params.is_empty() {
        plan
    } else {
        plan.with_param_values(cx.params.to_vec()).map_err(from_datafusion)?
    };
    Ok((ctx, plan))
}

/// Plans `statement` in `ctx`, parameters left unbound (Describe reads their types from
/// the plan).
pub(super) async fn plan_in(ctx: &SessionContext, mut statement: Statement) -> SqlResult<LogicalPlan> {
    // Named as written, before the rewrites change expressions (`x::regclass`).
    name_result_columns(&mut statement);
    rewrite_for_datafusion(&mut statement);
    let plan = ctx
        .state()
        .statement_to_plan(DfStatement::Statement(Box::new(statement)))
        .await
        .map_err(from_datafusion)?;
    let plan = weir_planner::type_integer_literals(plan).map_err(from_datafusion)?;
    reject_window_tvfs(&plan)?;
    super::implicit_coercion::check(&plan)?;
    let plan = pin_values_types(plan).map_err(from_datafusion)?;
    decode_bytea_literals(plan).map_err(from_datafusion)
}

/// DataFusion types a `VALUES` column before type coercion runs, from each row's expression
/// as written, and casts a row only where that type differs; coercion may then widen an
/// expression (`CASE WHEN c THEN NULL::smallint ELSE 0 END` is smallint as written and bigint
/// once coerced), and the rows no longer build one column (an internal error, found by the
/// SQL fuzzer). Every computed value is cast to its column's type, so the column is what the
/// plan says whatever coercion does to the expression inside.
fn pin_values_types(plan: LogicalPlan) -> datafusion::error::Result<LogicalPlan> {
    use datafusion::common::tree_node::Transformed;
    use datafusion::logical_expr::{Cast, Expr, Values};
    plan.transform_up_with_subqueries(|node| {
        let LogicalPlan::Values(Values { schema, values }) = node else {
            return Ok(Transformed::no(node));
        };
        let mut changed = false;
        let values = values
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .zip(schema.fields())
                    .map(|(expr, field)| match expr {
                        Expr::Literal(..) | Expr::Placeholder(_) => expr,
                        _ if field.data_type() == &DataType::Null => expr,
                        Expr::Cast(Cast { field: ref to, .. }) if to.data_type() == field.data_type() => expr,
                        other => {
                            changed = true;
                            Expr::Cast(Cast::new(Box::new(other), field.data_type().clone()))
                        }
                    })
                    .collect()
            })
            .collect();
        let node = LogicalPlan::Values(Values { schema, values });
        Ok(if changed { Transformed::yes(node) } else { Transformed::no(node) })
    })
    .map(|t| t.data)
}

/// Window TVFs are streaming operators: a one-off query says how to get the same buckets.
fn reject_window_tvfs(plan: &LogicalPlan) -> SqlResult<()> {
    use datafusion::common::tree_node::TreeNode;
    let has_window = plan
        .exists(|node| Ok(matches!(node, LogicalPlan::Extension(e) if e.node.name() == "WindowTvf")))
        .unwrap_or(false);
    match has_window {
        true => {
            Err(weir_planner::SqlError::unsupported("TUMBLE, HOP, CUMULATE and SESSION in a one-off query")
                .with_hint(
                    "Use them in CREATE MATERIALIZED VIEW or CREATE SINK. In a query, bucket with \
                 date_bin(INTERVAL '10 seconds', ts, TIMESTAMP '1970-01-01') instead.",
                ))
        }
        false => Ok(()),
    }
}

/// Postgres reads a string literal given for a `bytea` value in its hex input format
/// (`'\x00ff'` is two bytes); Arrow's cast would keep the six characters. Rewrites
/// `CAST('<literal>' AS bytea)` into the decoded binary literal.
fn decode_bytea_literals(plan: LogicalPlan) -> datafusion::error::Result<LogicalPlan> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::logical_expr::{Cast, Expr};
    use datafusion::scalar::ScalarValue;
    plan.transform_up_with_subqueries(|node| {
        node.map_expressions(|expr| {
            expr.transform_up(|e| {
                if let Expr::Cast(Cast { expr, field }) = &e {
                    if field.data_type() != &DataType::Binary {
                        return Ok(Transformed::no(e));
                    }
                    if let Expr::Literal(
                        ScalarValue::Utf8(Some(text)) | ScalarValue::Utf8View(Some(text)),
                        _,
                    ) = expr.as_ref()
                    {
                        if let Some(bytes) = text.strip_prefix("\\x").and(crate::copy_in::decode_bytea(text))
                        {
                            return Ok(Transformed::yes(Expr::Literal(
                                ScalarValue::Binary(Some(bytes)),
                                None,
                            )));
                        }
                    }
                }
                Ok(Transformed::no(e))
            })
        })
    })
    .map(|t| t.data)
}

/// A one-batch result.
pub fn rows(batch: arrow::array::RecordBatch) -> Outcome {
    let schema = batch.schema();
    let stream = futures::stream::iter(vec![Ok(batch)]);
    Outcome::Rows {
        schema: schema.clone(),
        stream: Box::pin(datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(schema, stream)),
    }
}

/// Runs a plan to completion and returns its batches.
/// Runs `plan`, its batches produced as they are read.
pub async fn stream(
    ctx: &SessionContext,
    plan: LogicalPlan,
) -> SqlResult<datafusion::physical_plan::SendableRecordBatchStream> {
    let df = ctx.execute_logical_plan(plan).await.map_err(from_datafusion)?;
    df.execute_stream().await.map_err(from_datafusion)
}

pub async fn collect(ctx: &SessionContext, plan: LogicalPlan) -> SqlResult<Vec<arrow::array::RecordBatch>> {
    let df = ctx.execute_logical_plan(plan).await.map_err(from_datafusion)?;
    df.collect().await.map_err(from_datafusion)
}
