//! `INSERT`, `UPDATE` and `DELETE`.
//!
//! INSERT is planned by DataFusion (VALUES or SELECT, column lists, type coercion) and
//! written by the table's sink. UPDATE and DELETE are turned into a SELECT of the affected
//! rows — old values, and for UPDATE the new ones — so every expression DataFusion supports
//! works in SET and WHERE; the rows are then replaced or removed by primary key (in a table
//! without one, stored rows of equal values, one per row selected) in one atomic write. The table's write lock is held from the SELECT to the write, so concurrent
//! statements on a table apply one after another and never lose an update. INSERT is
//! planned and run by DataFusion too, but its rows are not collected: each batch goes to
//! the statement's `TableWriter` as it is produced, which writes them in bounded chunks
//! kept invisible until the commit, so `INSERT ... SELECT` over a large query holds one
//! chunk in memory, and is still all or nothing.
//!
//! The write goes through the session's commit gate (`commit_gate::write_with_lock`, or the
//! `TableWriter`'s commit): a cancel or `statement_timeout` before it stops the statement
//! with nothing written, one during it is ignored, and the lock is held until the write has
//! finished (or been rolled back) even if the statement's future is dropped.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use arrow::compute::{concat_batches, CastOptions};
use arrow::datatypes::DataType;
use datafusion::logical_expr::LogicalPlan;
use futures::StreamExt;
use weir_plan::catalog::ColumnType;
use weir_planner::sqlparser::ast::{
    AssignmentTarget, Delete, FromTable, Statement, TableFactor, TableWithJoins, Update,
};
use weir_planner::{normalize_ident, parse_sql, split_name, sqlstate, SqlError, SqlResult, WeirStatement};
use weir_storage::TableStore;

use super::access::{Object, ObjectKind};
use super::planning::{collect, plan, stream};
use super::{Context, Outcome};
use crate::commit_gate::write_with_lock;
use crate::engine::Engine;
use crate::privileges::PrivilegeSet;
use crate::table_writer::TableWriter;
use crate::wire::errors::{from_arrow, from_datafusion, from_storage};

pub async fn insert(cx: &Context<'_>, mut statement: Statement) -> SqlResult<Outcome> {
    let Statement::Insert(insert) = &mut statement else {
        return Err(SqlError::internal("insert handler called with another statement"));
    };
    if insert.returning.is_some() {
        return Err(SqlError::unsupported("INSERT ... RETURNING"));
    }
    if insert.on.is_some() {
        return Err(SqlError::unsupported("INSERT ... ON CONFLICT"));
    }
    let name = match &insert.table {
        weir_planner::sqlparser::ast::TableObject::TableName(name) => name.clone(),
        other => return Err(SqlError::unsupported(format!("INSERT INTO {other}"))),
    };
    let table = resolve_table(cx.engine, &name)?;
    super::access::require(cx, &table_object(&table), PrivilegeSet::INSERT)?;
    super::insert_defaults::fill_defaults(insert, &table.def())?;
    let (ctx, plan) = plan(cx, statement).await?;
    // DataFusion's INSERT plan: its input gives the table's columns in order, coerced.
    let LogicalPlan::Dml(dml) = plan else {
        return Err(SqlError::internal(format!("INSERT planned as {}", plan.display())));
    };
    let commit = cx.session()?.commit.clone();
    let mut writer = TableWriter::lock(&table).await;
    let schema = table.schema();
    let mut batches = stream(&ctx, dml.input.as_ref().clone()).await?;
    while let Some(batch) = batches.next().await {
        let batch = batch.map_err(from_datafusion)?;
        // The input may carry different field names or nullability; the table's own schema
        // is what gets stored.
        writer
            .push(RecordBatch::try_new(schema.clone(), batch.columns().to_vec()).map_err(from_arrow)?)
            .await?;
    }
    let n = writer.commit(&commit).await?;
    Ok(Outcome::Command { tag: "INSERT", rows: Some(n) })
}

pub async fn update(cx: &Context<'_>, update: Update) -> SqlResult<Outcome> {
    let (select, table) = update_select(cx.engine, &update)?;
    let reads_target =
        update.selection.is_some() || update.assignments.iter().any(|a| reads_columns(&a.value));
    let exempt = check_write(cx, &table, PrivilegeSet::UPDATE, reads_target)?;
    let width = table.def().columns.len();
    let commit = cx.session()?.commit.clone();
    let lock = table.write_lock.clone().lock_owned().await;
    let rows = select_rows(cx, select, exempt).await?;
    if rows.num_rows() == 0 {
        return Ok(Outcome::Command { tag: "UPDATE", rows: Some(0) });
    }
    let schema = table.schema();
    let old = RecordBatch::try_new(schema.clone(), rows.columns()[..width].to_vec())
        .map_err(|e| SqlError::internal(e.to_string()))?;
    let options = CastOptions { safe: false, ..Default::default() };
    let mut new_columns = Vec::with_capacity(width);
    for (i, field) in schema.fields().iter().enumerate() {
        let column = rows.column(width + i);
        if field.data_type() == &arrow::datatypes::DataType::Binary
            && column.data_type() == &arrow::datatypes::DataType::Utf8
        {
            new_columns.push(bytea_from_text(column, field.name())?);
            continue;
        }
        let column_type = &table.def().columns[i].column_type;
        new_columns.push(
            weir_executor::functions::numeric_special::cast_array(column, field.data_type(), &options)
                .map_err(|e| assignment_error(column.data_type(), column_type, field.name(), e))?,
        );
    }
    let new = RecordBatch::try_new(schema, new_columns).map_err(|e| SqlError::internal(e.to_string()))?;
    let store = table.clone();
    let n = write_with_lock(&commit, lock, move || store.update(&old, &new).map_err(from_storage)).await?;
    Ok(Outcome::Command { tag: "UPDATE", rows: Some(n) })
}

pub async fn delete(cx: &Context<'_>, delete: Delete) -> SqlResult<Outcome> {
    let (select, table) = delete_select(cx.engine, &delete)?;
    let exempt = check_write(cx, &table, PrivilegeSet::DELETE, delete.selection.is_some())?;
    let commit = cx.session()?.commit.clone();
    let lock = table.write_lock.clone().lock_owned().await;
    let rows = select_rows(cx, select, exempt).await?;
    if rows.num_rows() == 0 {
        return Ok(Outcome::Command { tag: "DELETE", rows: Some(0) });
    }
    let rows = RecordBatch::try_new(table.schema(), rows.columns().to_vec())
        .map_err(|e| SqlError::internal(e.to_string()))?;
    let store = table.clone();
    let n = write_with_lock(&commit, lock, move || store.delete(&rows).map_err(from_storage)).await?;
    Ok(Outcome::Command { tag: "DELETE", rows: Some(n) })
}

/// Why a value assigned to a column of `target` type does not convert, as Postgres says it:
/// a number too large for a numeric column is `22003` in Postgres' words (`integer out of
/// range`, `numeric field overflow`), text that does not read as the type `22P02`, anything
/// else a type mismatch.
fn assignment_error(
    from: &DataType,
    target: &ColumnType,
    column: &str,
    e: arrow::error::ArrowError,
) -> SqlError {
    let from_number = from.is_numeric();
    let out_of_range = match target {
        ColumnType::Int2 if from_number => Some(("smallint out of range", None)),
        ColumnType::Int4 if from_number => Some(("integer out of range", None)),
        ColumnType::Int8 if from_number => Some(("bigint out of range", None)),
        ColumnType::Numeric { precision, scale } if from_number => {
            let detail = precision.map(|p| {
                let scale = scale.unwrap_or(0);
                format!(
                    "A field with precision {p}, scale {scale} must round to an absolute value less than 10^{}.",
                    i16::from(p) - i16::from(scale)
                )
            });
            Some(("numeric field overflow", detail))
        }
        _ => None,
    };
    if let Some((message, detail)) = out_of_range {
        let error = SqlError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, message);
        return match detail {
            Some(detail) => error.with_detail(detail),
            None => error,
        };
    }
    let code = match from {
        DataType::Utf8 => sqlstate::INVALID_TEXT_REPRESENTATION,
        _ => sqlstate::DATATYPE_MISMATCH,
    };
    SqlError::new(
        code,
        format!(
            "column \"{column}\" is of type {} but the expression cannot be converted: {e}",
            target.pg_display_name()
        ),
    )
}

/// Text assigned to a bytea column, read in Postgres' hex input format.
fn bytea_from_text(column: &arrow::array::ArrayRef, name: &str) -> SqlResult<arrow::array::ArrayRef> {
    let strings = column
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .ok_or_else(|| SqlError::internal("text column is not a string array"))?;
    let mut builder = arrow::array::BinaryBuilder::new();
    for value in strings.iter() {
        match value {
            None => builder.append_null(),
            Some(v) => builder.append_value(crate::copy_in::decode_bytea(v).ok_or_else(|| {
                SqlError::new(
                    sqlstate::INVALID_TEXT_REPRESENTATION,
                    format!("invalid input syntax for type bytea in column \"{name}\": \"{v}\""),
                )
            })?),
        }
    }
    Ok(Arc::new(builder.finish()))
}

/// The table as the privilege checks name it.
fn table_object(table: &TableStore) -> Object {
    Object { id: table.def().id, kind: ObjectKind::Table, name: table.def().name.clone() }
}

/// UPDATE and DELETE need their privilege on the table, and SELECT too when they read its
/// columns (a WHERE clause, `SET a = a + 1`), as in Postgres. Returns the table to exempt
/// from the read check of the statement's internal SELECT when it reads no column.
fn check_write(
    cx: &Context<'_>,
    table: &TableStore,
    privilege: PrivilegeSet,
    reads_columns: bool,
) -> SqlResult<Option<u64>> {
    let object = table_object(table);
    super::access::require(cx, &object, privilege)?;
    match reads_columns {
        true => super::access::require(cx, &object, PrivilegeSet::SELECT).map(|_| None),
        false => Ok(Some(object.id)),
    }
}

/// Whether an expression reads a column (any identifier; `DEFAULT` and literals do not).
fn reads_columns(expr: &weir_planner::sqlparser::ast::Expr) -> bool {
    use weir_planner::sqlparser::ast::{visit_expressions, Expr};
    let found = visit_expressions(expr, |e| match e {
        Expr::Identifier(i) if !i.value.eq_ignore_ascii_case("default") || i.quote_style.is_some() => {
            std::ops::ControlFlow::Break(())
        }
        Expr::CompoundIdentifier(_) => std::ops::ControlFlow::Break(()),
        _ => std::ops::ControlFlow::Continue(()),
    });
    found.is_break()
}

async fn select_rows(cx: &Context<'_>, select: Statement, exempt: Option<u64>) -> SqlResult<RecordBatch> {
    let (ctx, plan) = super::planning::plan_reading(cx, select, exempt).await?;
    let planned = Arc::new(plan.schema().as_arrow().clone());
    let batches = collect(&ctx, plan).await?;
    // The types of the rows as they ran: type coercion, which runs after planning, may
    // widen a CASE or COALESCE past the type the planned schema shows (`CASE WHEN c THEN
    // int_col ELSE bigint_col END` is planned as integer and runs as bigint).
    let schema = batches.first().map(|b| b.schema()).unwrap_or(planned);
    concat_batches(&schema, &batches).map_err(|e| SqlError::internal(e.to_string()))
}

/// The SELECT that computes an UPDATE: every old column, then every new column value.
pub fn update_select(engine: &Engine, update: &Update) -> SqlResult<(Statement, Arc<TableStore>)> {
    if update.from.is_some() {
        return Err(SqlError::unsupported("UPDATE ... FROM"));
    }
    if update.returning.is_some() {
        return Err(SqlError::unsupported("UPDATE ... RETURNING"));
    }
    let (table, relation) = target_of(engine, &update.table, "UPDATE")?;
    let def = table.def();
    let mut assigned: HashMap<usize, String> = HashMap::new();
    for assignment in &update.assignments {
        let AssignmentTarget::ColumnName(name) = &assignment.target else {
            return Err(SqlError::unsupported("assigning to a tuple of columns"));
        };
        let column = name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(normalize_ident)
            .ok_or_else(|| SqlError::syntax(format!("invalid column name {name}")))?;
        let index = def.column_index(&column).ok_or_else(|| {
            SqlError::new(
                sqlstate::UNDEFINED_COLUMN,
                format!("column \"{column}\" of relation \"{}\" does not exist", def.name),
            )
        })?;
        if assigned.insert(index, assignment.value.to_string()).is_some() {
            return Err(SqlError::syntax(format!("multiple assignments to same column \"{column}\"")));
        }
    }
    // Aliases keep the output names unique: an unchanged column appears as old and new.
    let old: Vec<String> = def
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} AS \"old {i}\"", quote_ident(&c.name)))
        .collect();
    let new: Vec<String> = (0..def.columns.len())
        .map(|i| {
            let value = assigned.get(&i).cloned().unwrap_or_else(|| quote_ident(&def.columns[i].name));
            format!("{value} AS \"new {i}\"")
        })
        .collect();
    let sql = format!(
        "SELECT {}, {} FROM {}{}",
        old.join(", "),
        new.join(", "),
        relation,
        update.selection.as_ref().map(|w| format!(" WHERE {w}")).unwrap_or_default()
    );
    Ok((reparse(&sql)?, table))
}

/// The SELECT that finds the rows a DELETE removes.
pub fn delete_select(engine: &Engine, delete: &Delete) -> SqlResult<(Statement, Arc<TableStore>)> {
    if delete.using.is_some() {
        return Err(SqlError::unsupported("DELETE ... USING"));
    }
    if delete.returning.is_some() {
        return Err(SqlError::unsupported("DELETE ... RETURNING"));
    }
    if delete.limit.is_some() || !delete.order_by.is_empty() {
        return Err(SqlError::unsupported("DELETE with ORDER BY or LIMIT"));
    }
    let tables = match &delete.from {
        FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
    };
    let [target] = tables.as_slice() else {
        return Err(SqlError::unsupported("DELETE from several tables"));
    };
    let (table, relation) = target_of(engine, target, "DELETE")?;
    let columns: Vec<String> = table.def().columns.iter().map(|c| quote_ident(&c.name)).collect();
    let sql = format!(
        "SELECT {} FROM {}{}",
        columns.join(", "),
        relation,
        delete.selection.as_ref().map(|w| format!(" WHERE {w}")).unwrap_or_default()
    );
    Ok((reparse(&sql)?, table))
}

/// A table declared with `WATERMARK FOR` is append-only: views read it with event time and
/// cannot take back rows of windows they have closed.
fn refuse_append_only(table: &TableStore, statement: &str) -> SqlResult<()> {
    match table.def().watermark {
        Some(_) => Err(SqlError::unsupported(format!("{statement} of table \"{}\"", table.def().name))
            .with_hint("A table with WATERMARK FOR is append-only: only INSERT and COPY add rows to it.")),
        None => Ok(()),
    }
}

/// The stored table a DML statement targets, and its FROM-clause text (keeping the alias).
fn target_of(
    engine: &Engine,
    target: &TableWithJoins,
    statement: &str,
) -> SqlResult<(Arc<TableStore>, String)> {
    if !target.joins.is_empty() {
        return Err(SqlError::unsupported("joins in the target of UPDATE or DELETE"));
    }
    let TableFactor::Table { name, alias, .. } = &target.relation else {
        return Err(SqlError::unsupported(format!("UPDATE or DELETE on {}", target.relation)));
    };
    let table = resolve_table(engine, name)?;
    refuse_append_only(&table, statement)?;
    let relation = match alias {
        Some(alias) => format!("{} AS {}", quote_ident(&table.def().name), alias),
        None => quote_ident(&table.def().name),
    };
    Ok((table, relation))
}

fn resolve_table(
    engine: &Engine,
    name: &weir_planner::sqlparser::ast::ObjectName,
) -> SqlResult<Arc<TableStore>> {
    let (schema, table) = split_name(name)?;
    if schema == "pg_catalog" || schema == "information_schema" {
        return Err(SqlError::new(
            sqlstate::WRONG_OBJECT_TYPE,
            format!("cannot change system catalog relation \"{table}\""),
        ));
    }
    engine
        .store
        .table(&schema, &table)
        .ok_or_else(|| crate::engine::not_a_writable_table(&engine.store, &schema, &table))
}

fn reparse(sql: &str) -> SqlResult<Statement> {
    match parse_sql(sql)?.into_iter().next() {
        Some(WeirStatement::Sql(statement)) => Ok(*statement),
        Some(_) | None => Err(SqlError::internal("empty derived statement")),
    }
}

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
