//! Queries (`SELECT`, `VALUES`, `EXPLAIN`) and the planning every DataFusion-run statement
//! shares: Postgres-compatibility rewrites, planning against the session's catalog, binding
//! `$n` parameters.

use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use weir_planner::sqlparser::ast::Statement;
use weir_planner::{name_result_columns, rewrite_for_datafusion, SqlResult};

use super::{Context, Outcome};
use crate::engine::Engine;
use crate::session::Session;
use crate::wire::errors::from_datafusion;

pub async fn run(cx: &Context<'_>, statement: Statement) -> SqlResult<Outcome> {
    let (ctx, plan) = plan(cx, statement).await?;
    let df = ctx.execute_logical_plan(plan).await.map_err(from_datafusion)?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let stream = df.execute_stream().await.map_err(from_datafusion)?;
    Ok(Outcome::Rows { schema, stream })
}

/// Plans `statement` in a fresh context for the session, with parameters bound.
pub async fn plan(cx: &Context<'_>, statement: Statement) -> SqlResult<(SessionContext, LogicalPlan)> {
    let ctx = {
        let session = cx.session()?;
        cx.engine.session_context(&session).map_err(from_datafusion)?
    };
    let plan = plan_in(&ctx, statement).await?;
    let plan = if cx.params.is_empty() {
        plan
    } else {
        plan.with_param_values(cx.params.to_vec()).map_err(from_datafusion)?
    };
    Ok((ctx, plan))
}

async fn plan_in(ctx: &SessionContext, mut statement: Statement) -> SqlResult<LogicalPlan> {
    rewrite_for_datafusion(&mut statement);
    name_result_columns(&mut statement);
    let plan = ctx
        .state()
        .statement_to_plan(DfStatement::Statement(Box::new(statement)))
        .await
        .map_err(from_datafusion)?;
    reject_window_tvfs(&plan)?;
    decode_bytea_literals(plan).map_err(from_datafusion)
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

/// What Describe reports for a prepared statement: parameter types and result columns.
#[derive(Debug, Clone, Default)]
pub struct StatementDescription {
    pub param_types: Vec<Option<DataType>>,
    pub result: Option<SchemaRef>,
}

/// Plans (without running) a statement to learn its parameter and result types.
pub async fn describe_statement(
    engine: &Engine,
    session: &Session,
    statement: &Statement,
) -> SqlResult<StatementDescription> {
    let planned: Option<Statement> =
        match statement {
            Statement::Explain { statement: explained, .. }
                if matches!(**explained, Statement::CreateView(_)) =>
            {
                return Ok(StatementDescription {
                    param_types: vec![],
                    result: Some(Arc::new(arrow::datatypes::Schema::new(vec![
                        arrow::datatypes::Field::new("QUERY PLAN", DataType::Utf8, false),
                    ]))),
                })
            }
            Statement::Query(_) | Statement::Explain { .. } | Statement::Insert(_) => Some(statement.clone()),
            Statement::Update(update) => Some(super::dml::update_select(engine, update)?.0),
            Statement::Delete(delete) => Some(super::dml::delete_select(engine, delete)?.0),
            Statement::ShowVariable { variable } => {
                return Ok(StatementDescription {
                    param_types: vec![],
                    result: Some(super::settings::show_schema(variable)),
                })
            }
            Statement::ShowTables { .. } => {
                return Ok(StatementDescription {
                    param_types: vec![],
                    result: Some(super::show_tables::schema()),
                })
            }
            _ => None,
        };
    let Some(statement) = planned else { return Ok(StatementDescription::default()) };
    let ctx = engine.session_context(session).map_err(from_datafusion)?;
    let plan = plan_in(&ctx, statement.clone()).await?;
    let types = plan.get_parameter_types().map_err(from_datafusion)?;
    let mut param_types: Vec<Option<DataType>> = Vec::new();
    for (name, ty) in types {
        if let Some(index) = name.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
            if (1..=65_535).contains(&index) {
                if param_types.len() < index {
                    param_types.resize(index, None);
                }
                param_types[index - 1] = ty;
            }
        }
    }
    let result = match statement {
        Statement::Query(_) | Statement::Explain { .. } => Some(Arc::new(plan.schema().as_arrow().clone())),
        _ => None,
    };
    Ok(StatementDescription { param_types, result })
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
pub async fn collect(ctx: &SessionContext, plan: LogicalPlan) -> SqlResult<Vec<arrow::array::RecordBatch>> {
    let df = ctx.execute_logical_plan(plan).await.map_err(from_datafusion)?;
    df.collect().await.map_err(from_datafusion)
}
