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
    if let Some((column, expr)) = watermark {
        let def = plan_watermark(&plan.def.columns, column, expr)?;
        super::stream_ddl::check_watermark_expression(&plan.def.arrow_schema(), &def)?;
        plan.def.watermark = Some(def);
    }
    if plan.def.schema_name != crate::engine::DEFAULT_SCHEMA {
        return Err(SqlError::new("3F000", format!("schema \"{}\" does not exist", plan.def.schema_name)));
    }
    if plan.def.name.starts_with("pg_") {
        return Err(SqlError::new("42939", format!("unacceptable table name \"{}\"", plan.def.name))
            .with_detail("The prefix \"pg_\" is reserved for system catalogs."));
    }
    let store = cx.engine.store.clone();
    let if_not_exists = plan.if_not_exists;
    let result = tokio::task::spawn_blocking(move || store.create_table(plan.def))
        .await
        .map_err(|e| SqlError::internal(format!("create table task failed: {e}")))?;
    match result {
        Ok(_) => Ok(Outcome::Command { tag: "CREATE TABLE", rows: None }),
        Err(StorageError::TableExists(_)) if if_not_exists => {
            Ok(Outcome::Command { tag: "CREATE TABLE", rows: None })
        }
        Err(e) => Err(from_storage(e)),
    }
}
