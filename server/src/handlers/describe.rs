//! Describe of a prepared statement: the types of its `$n` parameters and the columns it
//! returns, learned without running it.
//!
//! The statement is classified as for execution ([`super::classify`]); statements DataFusion
//! runs are planned the way their handler would plan them ([`super::planning`]) and their
//! parameter types read from the plan, and statements that answer with rows of their own
//! take their columns from their handler.

use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use weir_planner::sqlparser::ast::Statement;
use weir_planner::{SqlResult, WeirStatement};

use super::planning::plan_in;
use super::{classify, create_mv, dml, settings, show_tables, StatementKind};
use crate::engine::Engine;
use crate::session::Session;
use crate::wire::errors::from_datafusion;

/// What Describe reports for a prepared statement: parameter types and result columns.
#[derive(Debug, Clone, Default)]
pub struct StatementDescription {
    pub param_types: Vec<Option<DataType>>,
    pub result: Option<SchemaRef>,
}

impl StatementDescription {
    /// A statement without parameters whose rows have `schema`.
    fn rows(schema: SchemaRef) -> Self {
        Self { param_types: vec![], result: Some(schema) }
    }
}

/// Plans (without running) a statement to learn its parameter and result types.
pub async fn describe_statement(
    engine: &Engine,
    session: &Session,
    statement: &WeirStatement,
) -> SqlResult<StatementDescription> {
    use StatementKind as K;
    let planned = match classify(statement.clone()) {
        K::CreateMaterializedView { explain: true, emit_on_window_close: false, .. } => {
            return Ok(StatementDescription::rows(create_mv::explain_schema()))
        }
        K::Query(statement) | K::Insert(statement) => statement,
        K::Update(update) => dml::update_select(engine, &update)?.0,
        K::Delete(delete) => dml::delete_select(engine, &delete)?.0,
        K::ShowVariable(variable) => return Ok(StatementDescription::rows(settings::show_schema(&variable))),
        K::ShowTables => return Ok(StatementDescription::rows(show_tables::schema())),
        // No parameters and no columns. `EXPLAIN CREATE MATERIALIZED VIEW ... EMIT ON WINDOW
        // CLOSE` does return rows, but statements in Weir's own syntax have never been
        // described, and this keeps it so.
        K::CreateMaterializedView { .. }
        | K::CreateTable { .. }
        | K::Drop { .. }
        | K::CreateSource(_)
        | K::CreateSink(_)
        | K::DropStream(_)
        | K::Copy { .. }
        | K::Set(_)
        | K::Reset(_)
        | K::Begin
        | K::Commit
        | K::Rollback
        | K::Discard
        | K::Deallocate
        | K::Flush
        | K::InjectFailure(_)
        | K::AlterParallelism { .. }
        | K::Comment { .. }
        | K::CreateRole(_)
        | K::AlterRole { .. }
        | K::DropRole { .. }
        | K::Grant(_)
        | K::Revoke(_)
        | K::RoleMembership { .. }
        | K::AlterTable(_)
        | K::AlterRename { .. }
        | K::CreateIndex(_)
        | K::Misplaced(_)
        | K::Unsupported(_)
        | K::Internal(_) => return Ok(StatementDescription::default()),
    };
    describe_planned(engine, session, planned).await
}

/// Plans `statement` in the session's catalog and reads the parameter types off the plan.
/// Columns are reported when the planned statement is a query or EXPLAIN: an UPDATE or
/// DELETE is described by the SELECT that computes it, so it reports that SELECT's columns.
async fn describe_planned(
    engine: &Engine,
    session: &Session,
    statement: Statement,
) -> SqlResult<StatementDescription> {
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
        Statement::Query(_) | Statement::Explain { .. } => {
            let schema = Arc::new(plan.schema().as_arrow().clone());
            Some(super::declared_types::with_declared_modifiers(schema, &plan, &engine.store))
        }
        _ => None,
    };
    Ok(StatementDescription { param_types, result })
}
