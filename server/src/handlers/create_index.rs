//! `CREATE INDEX`: refused with `0A000`, saying what Weir does instead.
//!
//! Weir has no secondary indexes: a table's rows are stored in primary-key order (its one
//! index, `<table>_pkey` in `pg_index`), scans read every row, and a query that should be
//! fast is kept up to date as a materialized view. Accepting `CREATE INDEX` without building
//! one would promise a speed-up that never comes, and `pg_index` would disagree with it.
//! `DROP INDEX` is in `drop.rs`.

use weir_planner::sqlparser::ast::CreateIndex;
use weir_planner::{split_name, sqlstate, SqlError, SqlResult};

use super::{Context, Outcome};

pub fn refuse(cx: &Context<'_>, create: &CreateIndex) -> SqlResult<Outcome> {
    let (schema, table) = split_name(&create.table_name)?;
    let store = &cx.engine.store;
    if store.table(&schema, &table).is_none() && store.view(&schema, &table).is_none() {
        return Err(SqlError::new(sqlstate::UNDEFINED_TABLE, format!("relation \"{table}\" does not exist")));
    }
    Err(SqlError::new(
        sqlstate::FEATURE_NOT_SUPPORTED,
        "CREATE INDEX is not supported: Weir has no secondary indexes",
    )
    .with_hint(
        "A table's PRIMARY KEY is its one index (rows are stored in key order). To make a query fast, keep its \
         result up to date with CREATE MATERIALIZED VIEW.",
    ))
}
