//! `ALTER TABLE [IF EXISTS] name action [, ...]` with `ADD [COLUMN] [IF NOT EXISTS]` and
//! `DROP [COLUMN] [IF EXISTS] ... [RESTRICT | CASCADE]`; its renames are in `rename.rs`.
//!
//! Weir stores a table's rows and changelog in Arrow's row format, which has no room for a
//! schema version, so changing the columns rewrites them: every stored row and changelog
//! entry is decoded in the old layout, converted (the new column's default appended, a
//! dropped column removed) and written back in one synced write together with the new
//! definition (see `TableStore::relayout`). The statement is atomic and durable, and takes
//! time and memory proportional to the table's rows and changelog.
//!
//! Running views keep reading the table: a column added comes after the ones they were
//! planned over, and the table's source hands them only those (by their planned names).
//! Dropping a column shifts the columns after it, so it is refused while a view or sink
//! reads the table, as Postgres refuses it for the views that use the column (`2BP01`);
//! with `CASCADE` the readers are dropped first, when all of them use the column.
//!
//! The default of an added column is computed once for the existing rows (Postgres computes
//! a volatile default such as `random()` once per row).

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use datafusion::common::ScalarValue;
use weir_plan::catalog::TableDef;
use weir_planner::sqlparser::ast::{AlterTable, AlterTableOperation, DropBehavior, RenameTableNameKind};
use weir_planner::sqlparser::dialect::PostgreSqlDialect;
use weir_planner::sqlparser::tokenizer::{Token, Tokenizer};
use weir_planner::{normalize_ident, plan_added_column, split_name, sqlstate, SqlError, SqlResult};
use weir_storage::{CatalogChange, StorageError, TableStore};

use super::alter_column::{self, Altering, Conversion};
use super::rename::{self, Statement};
use super::{Context, Outcome};
use crate::wire::errors::from_storage;

const TAG: Outcome = Outcome::Command { tag: "ALTER TABLE", rows: None };

/// Where a column of the altered table comes from.
#[derive(Clone)]
pub(super) enum ColumnSource {
    /// Column `i` of the table as it was.
    Kept(usize),
    /// A new column: this value in every existing row.
    Added(ScalarValue),
    /// A column whose type changed: computed from the row as it was.
    Converted(Arc<Conversion>),
}

pub async fn run(cx: &Context<'_>, alter: AlterTable) -> SqlResult<Outcome> {
    let renames = alter.operations.iter().filter(|op| is_rename(op)).count();
    if renames > 0 && alter.operations.len() > 1 {
        return Err(SqlError::syntax("RENAME cannot be combined with other ALTER TABLE actions"));
    }
    match alter.operations.first() {
        Some(AlterTableOperation::RenameTable { table_name }) => {
            let (RenameTableNameKind::To(new) | RenameTableNameKind::As(new)) = table_name;
            let new = match new.0.as_slice() {
                [part] => part.as_ident().cloned(),
                _ => None,
            }
            .ok_or_else(|| SqlError::syntax("RENAME TO takes a name without a schema"))?;
            return rename::rename_relation(cx, Statement::AlterTable, &alter.name, &new, alter.if_exists);
        }
        Some(AlterTableOperation::RenameColumn { old_column_name, new_column_name }) => {
            return rename::rename_column(
                cx,
                Statement::AlterTable,
                &alter.name,
                old_column_name,
                new_column_name,
                alter.if_exists,
            );
        }
        _ => {}
    }
    let (schema, name) = split_name(&alter.name)?;
    let store = &cx.engine.store;
    let Some(table) = store.table(&schema, &name) else {
        if store.view(&schema, &name).is_some() || store.source(&schema, &name).is_some() {
            return Err(SqlError::new(sqlstate::WRONG_OBJECT_TYPE, format!("\"{name}\" is not a table")));
        }
        return match alter.if_exists {
            true => Ok(TAG),
            false => {
                Err(SqlError::new(sqlstate::UNDEFINED_TABLE, format!("relation \"{name}\" does not exist")))
            }
        };
    };
    // No other statement writes the table until the new layout is in place.
    let _writing = table.write_lock.clone().lock_owned().await;
    let before = table.def();
    let mut def = before.as_ref().clone();
    let mut sources: Vec<ColumnSource> = (0..def.columns.len()).map(ColumnSource::Kept).collect();
    let mut dropped_columns = Vec::new();
    let mut cascade_to: BTreeSet<u64> = BTreeSet::new();
    for operation in &alter.operations {
        match operation {
            AlterTableOperation::AddColumn { if_not_exists, column_def, column_position: None, .. } => {
                let (column, primary_key) = plan_added_column(column_def, &name)?;
                cx.warn_reduced_precisions([&column_def.data_type])?;
                if def.column_index(&column.name).is_some() {
                    if *if_not_exists {
                        continue;
                    }
                    return Err(SqlError::new(
                        sqlstate::DUPLICATE_COLUMN,
                        format!("column \"{}\" of relation \"{name}\" already exists", column.name),
                    ));
                }
                if primary_key {
                    return Err(match def.has_primary_key() {
                        true => SqlError::new(
                            sqlstate::INVALID_TABLE_DEFINITION,
                            format!("multiple primary keys for table \"{name}\" are not allowed"),
                        ),
                        false => SqlError::unsupported("adding a PRIMARY KEY to an existing table")
                            .with_hint("a table's primary key is declared in CREATE TABLE"),
                    });
                }
                let value = match &column.default {
                    Some(default) => default_value(cx, default, &column.column_type).await?,
                    None => ScalarValue::try_from(&column.column_type.arrow_type())
                        .map_err(|e| SqlError::internal(format!("a NULL of the column's type: {e}")))?,
                };
                if column.not_null && value.is_null() && has_rows(&table).await? {
                    return Err(SqlError::new(
                        sqlstate::NOT_NULL_VIOLATION,
                        format!("column \"{}\" of relation \"{name}\" contains null values", column.name),
                    ));
                }
                def.columns.push(column);
                sources.push(ColumnSource::Added(value));
            }
            AlterTableOperation::DropColumn { column_names, if_exists, drop_behavior, .. } => {
                for column in column_names {
                    let column = normalize_ident(column);
                    let Some(position) = def.column_index(&column) else {
                        if *if_exists {
                            continue;
                        }
                        return Err(SqlError::new(
                            sqlstate::UNDEFINED_COLUMN,
                            format!("column \"{column}\" of relation \"{name}\" does not exist"),
                        ));
                    };
                    let cascade = matches!(drop_behavior, Some(DropBehavior::Cascade));
                    cascade_to.extend(readers_to_drop(cx, &def, &column, cascade)?);
                    drop_column(&mut def, position)?;
                    sources.remove(position);
                    dropped_columns.push((def.id, position as i32 + 1));
                }
            }
            AlterTableOperation::AlterColumn { column_name, op } => {
                let mut altering = Altering { table: &table, before: &before, def: &mut def, sources: &mut sources };
                alter_column::alter_column(cx, &mut altering, column_name, op).await?;
            }
            AlterTableOperation::AddConstraint { constraint, .. } => {
                let mut altering = Altering { table: &table, before: &before, def: &mut def, sources: &mut sources };
                alter_column::add_constraint(cx, &mut altering, constraint)?;
            }
            other => {
                return Err(SqlError::unsupported(format!("ALTER TABLE ... {}", action_name(other))).with_hint(
                    "Weir's ALTER TABLE adds, drops, renames and alters columns, adds a primary key and renames tables",
                ))
            }
        }
    }
    if def == *before {
        return Ok(TAG);
    }
    // From here the ALTER runs to its end: a cancel or timeout no longer stops it between
    // dropping the readers and rewriting the table, nor leaves the rewrite running without
    // the table's write lock (see atomic_ddl).
    let _committing = super::atomic_ddl::write_phase(cx)?;
    if !cascade_to.is_empty() {
        // The readers stop before the layout changes under them.
        super::drop::drop_readers(cx, &cascade_to).await?;
    }
    // Defaults and NOT NULL dropped change the definition only; anything else rewrites the
    // rows (which checks NOT NULL and the key).
    let same_rows = sources.iter().enumerate().all(|(i, s)| matches!(s, ColumnSource::Kept(k) if *k == i))
        && sources.len() == before.columns.len()
        && def.primary_key == before.primary_key
        && def
            .columns
            .iter()
            .zip(&before.columns)
            .all(|(a, b)| a.column_type == b.column_type && (a.not_null <= b.not_null));
    let conversions: Vec<Arc<Conversion>> = sources
        .iter()
        .filter_map(|s| match s {
            ColumnSource::Converted(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    let schema_after = def.arrow_schema();
    let convert = move |batch: &RecordBatch| -> Result<RecordBatch, StorageError> {
        let columns = sources
            .iter()
            .zip(schema_after.fields())
            .map(|(source, field)| match source {
                ColumnSource::Kept(i) => Ok(batch.column(*i).clone()),
                ColumnSource::Converted(conversion) => conversion.evaluate(batch),
                ColumnSource::Added(value) => {
                    let array = value
                        .to_array_of_size(batch.num_rows())
                        .map_err(|e| StorageError::Invalid(format!("the new column's default: {e}")))?;
                    match array.data_type() == field.data_type() {
                        true => Ok(array),
                        false => Ok(arrow::compute::cast(&array, field.data_type())?),
                    }
                }
            })
            .collect::<Result<Vec<ArrayRef>, StorageError>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(schema_after.clone(), columns, &options)?)
    };
    tracing::info!(table = %name, columns = def.columns.len(), "altering table: rewriting its rows and changelog");
    let change = CatalogChange { table: Some(def), dropped_columns, ..Default::default() };
    let store = store.clone();
    let altered = tokio::task::spawn_blocking(move || match same_rows {
        true => store.alter(change, None),
        false => store.alter(change, Some(&convert)),
    })
    .await
    .map_err(|e| SqlError::internal(format!("alter table task failed: {e}")))?;
    altered.map_err(|e| {
        // A value that did not convert, with the SQLSTATE its cast gave.
        if let Some(error) = conversions.iter().find_map(|c| c.error()) {
            return error;
        }
        match e {
            // Postgres' words when stored rows break a NOT NULL or key the statement adds.
            StorageError::NotNullViolation { table, column } => alter_column::contains_nulls(&column, &table),
            StorageError::UniqueViolation { constraint, detail } => SqlError::new(
                sqlstate::UNIQUE_VIOLATION,
                format!("could not create unique index \"{constraint}\""),
            )
            .with_detail(detail.replace(" already exists.", " is duplicated.")),
            other => from_storage(other),
        }
    })?;
    Ok(TAG)
}

fn is_rename(operation: &AlterTableOperation) -> bool {
    matches!(operation, AlterTableOperation::RenameTable { .. } | AlterTableOperation::RenameColumn { .. })
}

/// The leading words of an unsupported action, for its error.
fn action_name(operation: &AlterTableOperation) -> String {
    operation.to_string().split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// Computes a column's `DEFAULT` once, as a value of the column's type (errors as the
/// cast gives them, e.g. `22001` for a text too long).
pub(super) async fn default_value(
    cx: &Context<'_>,
    default: &str,
    column_type: &weir_plan::catalog::ColumnType,
) -> SqlResult<ScalarValue> {
    let query = format!("SELECT CAST(({default}) AS {})", column_type.assignment_cast_name());
    let statement = match weir_planner::parse_sql(&query)?.pop() {
        Some(weir_planner::WeirStatement::Sql(statement)) => *statement,
        _ => return Err(SqlError::internal("a default's query did not parse as a query")),
    };
    let (ctx, plan) = super::planning::plan(cx, statement).await?;
    let batches = super::planning::collect(&ctx, plan).await?;
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| SqlError::internal("a default's query returned no row"))?;
    ScalarValue::try_from_array(batch.column(0), 0)
        .map_err(|e| SqlError::internal(format!("reading a default's value: {e}")))
}

/// Whether the table holds any row.
async fn has_rows(table: &Arc<TableStore>) -> SqlResult<bool> {
    let table = table.clone();
    tokio::task::spawn_blocking(move || {
        let mut any = false;
        table.scan(|batch| {
            any = batch.num_rows() > 0;
            !any
        })?;
        Ok::<bool, StorageError>(any)
    })
    .await
    .map_err(|e| SqlError::internal(format!("table scan task failed: {e}")))?
    .map_err(from_storage)
}

/// Removes column `position` from `def`. A primary key with the column goes with it, as in
/// Postgres (the rows get hidden row ids).
fn drop_column(def: &mut TableDef, position: usize) -> SqlResult<()> {
    let column = def.columns[position].name.clone();
    if def.watermark.is_some() {
        return Err(SqlError::unsupported(format!(
            "dropping column \"{column}\" of table \"{}\", which has a WATERMARK FOR",
            def.name
        ))
        .with_hint("an append-only table with event time keeps its columns"));
    }
    if def.columns.len() == 1 {
        return Err(SqlError::unsupported(format!(
            "dropping column \"{column}\", the only column of table \"{}\"",
            def.name
        ))
        .with_hint("Weir's tables have at least one column; drop the table instead"));
    }
    def.columns.remove(position);
    if def.primary_key.contains(&position) {
        def.primary_key.clear();
        def.primary_key_name = None;
    } else {
        for key in &mut def.primary_key {
            if *key > position {
                *key -= 1;
            }
        }
    }
    Ok(())
}

/// A materialized view or sink that reads a table.
pub(super) struct Reader {
    pub id: u64,
    /// `materialized view v`, `sink s`.
    pub label: String,
    definition: String,
}

impl Reader {
    /// Whether its query may use `column` (names it, or selects `*`).
    pub fn uses(&self, column: &str) -> bool {
        mentions(&self.definition, column)
    }
}

/// The views and sinks that read table `table`.
pub(super) fn readers_of(cx: &Context<'_>, table: u64) -> Vec<Reader> {
    let store = &cx.engine.store;
    store
        .views()
        .into_iter()
        .filter(|v| v.depends_on.contains(&table))
        .map(|v| Reader {
            id: v.id(),
            label: format!("materialized view {}", v.relation.name),
            definition: v.definition,
        })
        .chain(store.sinks().into_iter().filter(|s| s.depends_on.contains(&table)).map(|s| Reader {
            id: s.id,
            label: format!("sink {}", s.name),
            definition: s.definition,
        }))
        .collect()
}

/// The views and sinks to drop before `column` of `def` is dropped: none when nothing reads
/// the table; with `cascade`, those that read it (all of which must use the column). A
/// running view reads a table's columns by position, so one that reads the table without
/// using the column still cannot stay.
fn readers_to_drop(
    cx: &Context<'_>,
    def: &TableDef,
    column: &str,
    cascade: bool,
) -> SqlResult<BTreeSet<u64>> {
    let readers = readers_of(cx, def.id);
    if readers.is_empty() {
        return Ok(BTreeSet::new());
    }
    let table = &def.name;
    let (using, other): (Vec<_>, Vec<_>) = readers.into_iter().partition(|r| r.uses(column));
    if let (true, Some(reader)) = (cascade, other.first()) {
        let reader = &reader.label;
        return Err(SqlError::unsupported(format!(
            "dropping column {column} of table {table} while {reader} reads the table without using it: Weir's \
             running views read a table's columns by position"
        ))
        .with_hint(format!("drop {reader} first, then the column, then create {reader} again")));
    }
    if !cascade {
        let detail: Vec<String> = using
            .iter()
            .map(|r| format!("{} depends on column {column} of table {table}", r.label))
            .chain(other.iter().map(|r| format!("{} depends on table {table}", r.label)))
            .collect();
        let hint = match other.first() {
            None => "Use DROP ... CASCADE to drop the dependent objects too.".to_string(),
            Some(reader) => format!(
                "Weir's running views read a table's columns by position: drop {} first, then the column",
                reader.label
            ),
        };
        return Err(SqlError::new(
            sqlstate::DEPENDENT_OBJECTS_STILL_EXIST,
            format!("cannot drop column {column} of table {table} because other objects depend on it"),
        )
        .with_detail(detail.join("\n"))
        .with_hint(hint));
    }
    Ok(using.into_iter().map(|r| r.id).collect())
}

/// Whether query text `sql` may use column `column`: it names it, or selects `*`.
fn mentions(sql: &str, column: &str) -> bool {
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else { return true };
    tokens.iter().any(|token| match token {
        Token::Mul => true,
        Token::Word(word) => super::definition_rename::word_name(word) == column,
        _ => false,
    })
}
