//! `ALTER TABLE ... ALTER [COLUMN] c` with `[SET DATA] TYPE t [USING expr]`, `SET DEFAULT`,
//! `DROP DEFAULT`, `SET NOT NULL` and `DROP NOT NULL`, and `ADD [CONSTRAINT name] PRIMARY
//! KEY (...)`, as Postgres runs them; `alter_table.rs` applies the new definition.
//!
//! A type change computes the column's new values from the rows as they were (Postgres'
//! `USING` reads the old row; without it the column is cast), with Weir's casts, so a value
//! that does not convert fails the statement (`22P02`, `22003`, ...) and the table is left
//! as it was. Without `USING` only the casts Postgres applies in an assignment are taken
//! (`42804` otherwise, with Postgres' hint to write `USING`). A view or sink that uses the
//! column keeps its type, so the change is refused while one does (`0A000`, as in
//! Postgres); readers that do not use the column keep running.
//!
//! `SET NOT NULL` checks the stored rows (`23502`); a new or retyped primary key rewrites the
//! rows under their new keys and fails on a duplicate (`23505`). A table without a primary
//! key keys its rows by hidden row ids that running views track, so adding a key while a
//! view or sink reads the table is refused.
//!
//! `UNIQUE`, `CHECK`, `FOREIGN KEY` and `EXCLUDE` constraints are `0A000`: Weir enforces
//! primary keys and NOT NULL only (it has no secondary indexes), in `CREATE TABLE` alike.

use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::common::tree_node::TreeNode;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_expr::PhysicalExpr;
use weir_plan::catalog::{ColumnType, TableDef};
use weir_planner::sqlparser::ast::{AlterColumnOperation, Expr, Ident, TableConstraint};
use weir_planner::{column_type_from_sql, normalize_ident, sqlstate, SqlError, SqlResult};
use weir_storage::{StorageError, TableStore};

use super::alter_table::{default_value, readers_of, ColumnSource};
use super::Context;
use crate::wire::errors::from_datafusion;

/// A column's new values: an expression over the table's columns as they were.
pub(super) struct Conversion {
    expr: Arc<dyn PhysicalExpr>,
    /// The old layout's position of each column of the batch `expr` reads.
    reads: Vec<usize>,
    input: arrow::datatypes::SchemaRef,
    /// The first error a batch gave, handed back by [`Conversion::error`] with its SQLSTATE
    /// (the storage layer only learns that the conversion failed).
    failure: Mutex<Option<DataFusionError>>,
}

impl Conversion {
    /// The new values of the column for `batch`, a batch of rows in the old layout.
    pub(super) fn evaluate(&self, batch: &RecordBatch) -> Result<ArrayRef, StorageError> {
        let computed = (|| {
            let columns = self.reads.iter().map(|&i| batch.column(i).clone()).collect();
            let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
            let input = RecordBatch::try_new_with_options(self.input.clone(), columns, &options)?;
            self.expr.evaluate(&input)?.into_array(batch.num_rows())
        })();
        computed.map_err(|e| {
            let message = format!("converting a column's values: {e}");
            if let Ok(mut failure) = self.failure.lock() {
                failure.get_or_insert(e);
            }
            StorageError::Invalid(message)
        })
    }

    /// The error that made [`Conversion::evaluate`] fail, if it did.
    pub(super) fn error(&self) -> Option<SqlError> {
        self.failure.lock().ok()?.take().map(from_datafusion)
    }
}

/// What one `ALTER TABLE` statement changes, built up action by action.
pub(super) struct Altering<'a> {
    pub table: &'a Arc<TableStore>,
    /// The definition before the statement (`USING` reads these columns).
    pub before: &'a TableDef,
    pub def: &'a mut TableDef,
    pub sources: &'a mut Vec<ColumnSource>,
}

/// Applies one `ALTER [COLUMN] column operation` to `altering`.
pub(super) async fn alter_column(
    cx: &Context<'_>,
    altering: &mut Altering<'_>,
    column: &Ident,
    operation: &AlterColumnOperation,
) -> SqlResult<()> {
    let name = normalize_ident(column);
    let table = altering.def.name.clone();
    let position = altering.def.column_index(&name).ok_or_else(|| {
        SqlError::new(
            sqlstate::UNDEFINED_COLUMN,
            format!("column \"{name}\" of relation \"{table}\" does not exist"),
        )
    })?;
    match operation {
        AlterColumnOperation::SetNotNull => {
            if let ColumnSource::Kept(old) = altering.sources[position] {
                if has_null(altering.table, old).await? {
                    return Err(contains_nulls(&name, &table));
                }
            }
            // Computed values are checked as the rows are rewritten.
            altering.def.columns[position].not_null = true;
        }
        AlterColumnOperation::DropNotNull => {
            if altering.def.primary_key.contains(&position) {
                return Err(SqlError::new(
                    sqlstate::INVALID_TABLE_DEFINITION,
                    format!("column \"{name}\" is in a primary key"),
                ));
            }
            altering.def.columns[position].not_null = false;
        }
        AlterColumnOperation::SetDefault { value } => {
            let default = value.to_string();
            // Checked as Postgres does: the expression must give a value of the column's type.
            default_value(cx, &default, &altering.def.columns[position].column_type).await?;
            altering.def.columns[position].default = Some(default);
        }
        AlterColumnOperation::DropDefault => altering.def.columns[position].default = None,
        AlterColumnOperation::SetDataType { data_type, using, .. } => {
            let new_type = column_type_from_sql(data_type)?;
            cx.warn_reduced_precisions([data_type])?;
            set_type(cx, altering, position, new_type, using.as_ref()).await?;
        }
        AlterColumnOperation::AddGenerated { .. } => {
            return Err(SqlError::unsupported("ALTER COLUMN ... ADD GENERATED ... AS IDENTITY")
                .with_hint("Weir has no sequences; give the column its values in INSERT"));
        }
    }
    Ok(())
}

/// `ALTER COLUMN ... TYPE new_type [USING using]`.
async fn set_type(
    cx: &Context<'_>,
    altering: &mut Altering<'_>,
    position: usize,
    new_type: ColumnType,
    using: Option<&Expr>,
) -> SqlResult<()> {
    let def = &*altering.def;
    let (name, table) = (def.columns[position].name.clone(), def.name.clone());
    let ColumnSource::Kept(old) = altering.sources[position] else {
        return Err(SqlError::unsupported(format!(
            "changing the type of column \"{name}\", added or changed earlier in the same statement"
        ))
        .with_hint("run the ALTER TYPE as a statement of its own"));
    };
    if def.watermark.as_ref().is_some_and(|w| w.column == position) {
        return Err(SqlError::unsupported(format!(
            "changing the type of column \"{name}\", the event time of table \"{table}\"'s WATERMARK FOR"
        )));
    }
    let readers = readers_of(cx, def.id);
    if let Some(reader) = readers.iter().find(|r| r.uses(&name)) {
        return Err(SqlError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "cannot alter type of a column used by a view or rule",
        )
        .with_detail(format!("{} depends on column \"{name}\"", reader.label)));
    }
    let old_type = &altering.before.columns[old].column_type;
    let source = match using {
        Some(expr) => expr.to_string(),
        None => quote_ident(&name),
    };
    let from_plan = plan_over_table(cx, altering.before, &format!("({source})")).await?;
    let from = match from_plan.schema().fields().first() {
        Some(field) => field.data_type().clone(),
        None => return Err(SqlError::internal("a USING expression planned without a column")),
    };
    let assignable = match using {
        None => assignment_cast(category_of(old_type), category_of(&new_type)),
        Some(_) => assignment_cast(category_of_arrow(&from), category_of(&new_type)),
    };
    if !assignable {
        let type_name = new_type.pg_display_name();
        return Err(match using {
            None => SqlError::new(
                sqlstate::DATATYPE_MISMATCH,
                format!("column \"{name}\" cannot be cast automatically to type {type_name}"),
            )
            .with_hint(format!("You might need to specify \"USING {name}::{type_name}\".")),
            Some(_) => SqlError::new(
                sqlstate::DATATYPE_MISMATCH,
                format!("result of USING clause for column \"{name}\" cannot be cast automatically to type {type_name}"),
            )
            .with_hint("You might need to add an explicit cast."),
        });
    }
    // A varchar(n) value is cast to text and its length checked as the row is stored
    // (`22001`), as in an assignment; an explicit cast would cut it. A timestamp(p) value
    // is rounded to its precision as the row is stored.
    let target = new_type.assignment_cast_name();
    let plan = plan_over_table(cx, altering.before, &format!("CAST(({source}) AS {target})")).await?;
    let conversion = conversion_of(cx, plan, altering.before)?;
    tracing::debug!(table = %table, column = %name, to = %new_type.pg_display_name(), "changing a column's type");
    altering.def.columns[position].column_type = new_type;
    altering.sources[position] = ColumnSource::Converted(Arc::new(conversion));
    Ok(())
}

/// `SELECT <expression> FROM <table>`, planned and analyzed in the session (Weir's casts
/// and functions), over the table as it was before the statement.
async fn plan_over_table(cx: &Context<'_>, before: &TableDef, expression: &str) -> SqlResult<LogicalPlan> {
    let query = format!(
        "SELECT {expression} FROM {}.{}",
        quote_ident(&before.schema_name),
        quote_ident(&before.name)
    );
    let statement = match weir_planner::parse_sql(&query)?.pop() {
        Some(weir_planner::WeirStatement::Sql(statement)) => *statement,
        _ => return Err(SqlError::syntax(format!("USING expression in {query}"))),
    };
    let (ctx, plan) = super::planning::plan(cx, statement).await?;
    let state = ctx.state();
    state.analyzer().execute_and_check(plan, state.config_options(), |_, _| {}).map_err(from_datafusion)
}

/// The physical expression of `plan` (`SELECT expr FROM table`, analyzed), to evaluate on
/// the table's stored batches.
fn conversion_of(cx: &Context<'_>, plan: LogicalPlan, before: &TableDef) -> SqlResult<Conversion> {
    let ctx = {
        let session = cx.session()?;
        cx.engine.session_context(&session).map_err(from_datafusion)?
    };
    let (LogicalPlan::Projection(projection), true) = (&plan, plan.schema().fields().len() == 1) else {
        return Err(SqlError::internal("a column conversion did not plan as a projection of one column"));
    };
    let Some(expr) = projection.expr.first() else {
        return Err(SqlError::internal("a column conversion planned without an expression"));
    };
    let reads_subquery = expr
        .exists(|e| {
            Ok(matches!(
                e,
                datafusion::logical_expr::Expr::ScalarSubquery(_)
                    | datafusion::logical_expr::Expr::Exists(_)
                    | datafusion::logical_expr::Expr::InSubquery(_)
            ))
        })
        .unwrap_or(true);
    if reads_subquery {
        return Err(SqlError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "cannot use subquery in transform expression",
        ));
    }
    let input_schema = projection.input.schema();
    let reads = input_schema
        .fields()
        .iter()
        .map(|f| {
            before.column_index(f.name()).ok_or_else(|| {
                SqlError::internal(format!("column conversion reads unknown column {}", f.name()))
            })
        })
        .collect::<SqlResult<Vec<usize>>>()?;
    let expr = ctx.create_physical_expr(expr.clone(), input_schema).map_err(from_datafusion)?;
    Ok(Conversion {
        expr,
        reads,
        input: Arc::new(input_schema.as_arrow().clone()),
        failure: Mutex::new(None),
    })
}

/// Which kind of value a type holds, for Postgres' assignment casts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Boolean,
    Number,
    Text,
    Bytes,
    Date,
    Time,
    Timestamp,
    Interval,
    Json,
}

fn category_of(t: &ColumnType) -> Category {
    match t {
        ColumnType::Boolean => Category::Boolean,
        ColumnType::Int2
        | ColumnType::Int4
        | ColumnType::Int8
        | ColumnType::Float4
        | ColumnType::Float8
        | ColumnType::Numeric { .. } => Category::Number,
        ColumnType::Text | ColumnType::Varchar { .. } => Category::Text,
        ColumnType::Bytea => Category::Bytes,
        ColumnType::Date => Category::Date,
        ColumnType::Time { .. } => Category::Time,
        ColumnType::Timestamp { .. } | ColumnType::Timestamptz { .. } => Category::Timestamp,
        ColumnType::Interval { .. } => Category::Interval,
        ColumnType::Json | ColumnType::Jsonb => Category::Json,
    }
}

fn category_of_arrow(t: &DataType) -> Category {
    match t {
        DataType::Boolean => Category::Boolean,
        t if t.is_numeric() => Category::Number,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Category::Bytes,
        DataType::Date32 | DataType::Date64 => Category::Date,
        DataType::Time32(_) | DataType::Time64(_) => Category::Time,
        DataType::Timestamp(..) => Category::Timestamp,
        DataType::Interval(_) | DataType::Duration(_) => Category::Interval,
        // Text, and NULL (a NULL constant is assignable to any type).
        _ => Category::Text,
    }
}

/// Whether Postgres casts a value of category `from` to `to` in an assignment (an
/// implicit or assignment cast exists): numbers among themselves, anything to text, dates
/// and timestamps among themselves, a timestamp or interval to a time.
fn assignment_cast(from: Category, to: Category) -> bool {
    use Category::*;
    from == to
        || to == Text
        || matches!((from, to), (Date, Timestamp) | (Timestamp, Date) | (Timestamp, Time) | (Interval, Time))
}

/// `ADD [CONSTRAINT name] PRIMARY KEY (...)`; other constraints are `0A000`.
pub(super) fn add_constraint(
    cx: &Context<'_>,
    altering: &mut Altering<'_>,
    constraint: &TableConstraint,
) -> SqlResult<()> {
    let TableConstraint::PrimaryKey(key) = constraint else {
        let kind = match constraint {
            TableConstraint::Unique(_) | TableConstraint::UniqueUsingIndex(_) => "UNIQUE",
            TableConstraint::ForeignKey(_) => "FOREIGN KEY",
            TableConstraint::Check(_) => "CHECK",
            TableConstraint::PrimaryKeyUsingIndex(_) => "PRIMARY KEY USING INDEX",
            _ => "index",
        };
        return Err(SqlError::unsupported(format!("ALTER TABLE ... ADD {kind} constraints"))
            .with_hint("Weir enforces PRIMARY KEY and NOT NULL only (it has no secondary indexes)"));
    };
    let table = altering.def.name.clone();
    if altering.def.has_primary_key() {
        return Err(SqlError::new(
            sqlstate::INVALID_TABLE_DEFINITION,
            format!("multiple primary keys for table \"{table}\" are not allowed"),
        ));
    }
    if let Some(reader) = readers_of(cx, altering.def.id).first() {
        return Err(SqlError::unsupported(format!(
            "adding a primary key to table \"{table}\" while {} reads it: running views track its rows by \
             hidden row ids",
            reader.label
        ))
        .with_hint(format!("drop {} first, add the key, then create it again", reader.label)));
    }
    let mut columns = Vec::new();
    for key_column in &key.columns {
        let Expr::Identifier(ident) = &key_column.column.expr else {
            return Err(SqlError::unsupported("an expression in a primary key"));
        };
        let name = normalize_ident(ident);
        let position = altering.def.column_index(&name).ok_or_else(|| {
            SqlError::new(
                sqlstate::UNDEFINED_COLUMN,
                format!("column \"{name}\" named in key does not exist"),
            )
        })?;
        if columns.contains(&position) {
            return Err(SqlError::new(
                sqlstate::DUPLICATE_COLUMN,
                format!("column \"{name}\" appears twice in primary key constraint"),
            ));
        }
        columns.push(position);
    }
    for &position in &columns {
        altering.def.columns[position].not_null = true;
    }
    altering.def.primary_key = columns;
    // Rows are rewritten under their keys, which checks NULLs and duplicates.
    altering.def.primary_key_name =
        key.name.as_ref().map(normalize_ident).filter(|n| *n != format!("{table}_pkey"));
    Ok(())
}

/// Postgres' error for NOT NULL over stored NULLs.
pub(super) fn contains_nulls(column: &str, table: &str) -> SqlError {
    SqlError::new(
        sqlstate::NOT_NULL_VIOLATION,
        format!("column \"{column}\" of relation \"{table}\" contains null values"),
    )
}

/// Whether column `column` of any stored row is NULL.
async fn has_null(table: &Arc<TableStore>, column: usize) -> SqlResult<bool> {
    let table = table.clone();
    tokio::task::spawn_blocking(move || {
        let mut found = false;
        table.scan(|batch| {
            found = batch.column(column).null_count() > 0;
            !found
        })?;
        Ok::<bool, StorageError>(found)
    })
    .await
    .map_err(|e| SqlError::internal(format!("table scan task failed: {e}")))?
    .map_err(crate::wire::errors::from_storage)
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_casts_follow_postgres() {
        use Category::*;
        assert!(assignment_cast(Number, Number));
        assert!(assignment_cast(Boolean, Text));
        assert!(assignment_cast(Timestamp, Date));
        assert!(!assignment_cast(Text, Number));
        assert!(!assignment_cast(Number, Boolean));
        assert!(!assignment_cast(Text, Json));
    }
}
