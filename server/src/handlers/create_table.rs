//! `CREATE TABLE`.

use weir_planner::sqlparser::ast::{CreateTable, Expr, Ident};
use weir_planner::{plan_create_table, plan_watermark, SqlError, SqlResult};
use weir_storage::StorageError;

use super::{Context, Outcome};
use crate::wire::errors::from_storage;

/// `watermark`: `WATERMARK FOR column AS expr`, which makes the table append-only.
pub async fn run(
    cx: &Context<'_>,
    create: &CreateTable,
    watermark: Option<(&Ident, &Expr)>,
) -> SqlResult<Outcome> {
    let mut plan = plan_create_table(create)?;
    cx.warn_reduced_precisions(create.columns.iter().map(|c| &c.data_type))?;
    if let Some((column, expr)) = watermark {
        let def = plan_watermark(&plan.def.columns, column, expr)?;
        super::stream_ddl::check_watermark_expression(&plan.def.arrow_schema(), &def)?;
        plan.def.watermark = Some(def);
    }
    if plan.def.schema_name != crate::engine::DEFAULT_SCHEMA {
        return Err(SqlError::new("3F000", format!("schema \"{}\" does not exist", plan.def.schema_name)));
    }
    // A default must compute a value of the column's type without reading any column.
    for column in &plan.def.columns {
        let Some(default) = &column.default else { continue };
        let check = format!("SELECT CAST(({default}) AS {})", column.column_type.assignment_cast_name());
        let statement = match weir_planner::parse_sql(&check)?.pop() {
            Some(weir_planner::WeirStatement::Sql(statement)) => *statement,
            _ => return Err(SqlError::internal("a default's check did not parse as a query")),
        };
        let invalid = |e: SqlError| {
            SqlError::new(e.code, format!("invalid DEFAULT for column \"{}\": {}", column.name, e.message))
        };
        // Run, not only planned: a constant that does not convert fails only when computed.
        let (ctx, plan) = super::planning::plan(cx, statement).await.map_err(invalid)?;
        super::planning::collect(&ctx, plan).await.map_err(invalid)?;
    }
    if plan.def.name.starts_with("pg_") {
        return Err(SqlError::new("42939", format!("unacceptable table name \"{}\"", plan.def.name))
            .with_detail("The prefix \"pg_\" is reserved for system catalogs."));
    }
    super::access::require_create_in(cx, &plan.def.schema_name)?;
    // Waits for a concurrent statement creating the same name (see name_claims).
    let _claim = cx.engine.name_claims.claim(&plan.def.schema_name, &plan.def.name).await;
    let store = cx.engine.store.clone();
    let if_not_exists = plan.if_not_exists;
    // The table is created and its owner recorded, or neither (see atomic_ddl).
    let _writing = super::atomic_ddl::write_phase(cx)?;
    let result = tokio::task::spawn_blocking(move || store.create_table(plan.def))
        .await
        .map_err(|e| SqlError::internal(format!("create table task failed: {e}")))?;
    match result {
        Ok(table) => {
            if let Err(e) = super::access::record_owner(cx, table.def().id) {
                // A failed statement leaves nothing behind.
                let def = table.def();
                let _ = cx.engine.store.drop_table(&def.schema_name, &def.name);
                return Err(e);
            }
            Ok(Outcome::Command { tag: "CREATE TABLE", rows: None })
        }
        Err(StorageError::TableExists(_)) if if_not_exists => {
            Ok(Outcome::Command { tag: "CREATE TABLE", rows: None })
        }
        Err(e) => Err(from_storage(e)),
    }
}
