//! The Postgres types of a view's columns that are its inputs' columns passed through.
//!
//! Arrow cannot tell `text` from `varchar(20)` or `jsonb`, nor `numeric(10,2)` from a
//! computed `numeric`, so a view typed from its plan's Arrow schema alone showed
//! `text` in `\d` where Postgres shows `character varying(20)` or `jsonb`. A column that
//! reaches the view's output unchanged (through projections, filters, sorts, joins and
//! GROUP BY keys) keeps the type declared on the table, view or source it comes from; any
//! other column is typed from its Arrow type.
//!
//! The same tracing gives a query's result columns their Postgres type modifier in
//! RowDescription ([`with_declared_modifiers`]): `SELECT ts FROM t` over a `timestamp(0)`
//! column reports modifier 0, as Postgres does, and a computed column -1.

use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::TableReference;
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan};
use weir_plan::catalog::{ColumnDef, ColumnType};
use weir_storage::Store;

use crate::engine::DEFAULT_SCHEMA;
use crate::pg_catalog;
use crate::wire::encode;

/// The declared type of each output column of `plan` that passes an input column through.
pub fn declared_column_types(plan: &LogicalPlan, store: &Store) -> Vec<Option<ColumnType>> {
    (0..plan.schema().fields().len()).map(|i| trace(plan, i, store)).collect()
}

/// `schema` (the result of `plan`) with each column that passes a declared column through
/// annotated with that column's type modifier, when the wire type it is sent as is the
/// declared type's (`numeric(10,2)`, `timestamp(3)`; not `varchar(n)`, sent as `text`).
pub fn with_declared_modifiers(schema: SchemaRef, plan: &LogicalPlan, store: &Store) -> SchemaRef {
    let declared = declared_column_types(plan, store);
    if declared.iter().all(Option::is_none) {
        return schema;
    }
    let fields = schema.fields().iter().zip(declared).map(|(field, declared)| {
        let typmod = declared
            .filter(|t| i64::from(encode::pg_type(field).oid()) == pg_catalog::type_oid(t))
            .map(|t| pg_catalog::type_modifier(&t))
            .filter(|m| *m >= 0);
        match typmod {
            Some(typmod) => Arc::new(encode::with_type_modifier(field.as_ref().clone(), typmod)),
            None => field.clone(),
        }
    });
    Arc::new(Schema::new_with_metadata(fields.collect::<Vec<_>>(), schema.metadata().clone()))
}

fn trace(plan: &LogicalPlan, i: usize, store: &Store) -> Option<ColumnType> {
    match plan {
        LogicalPlan::Projection(p) => {
            let Expr::Column(column) = unalias(p.expr.get(i)?) else { return None };
            let j = p.input.schema().index_of_column(column).ok()?;
            trace(&p.input, j, store)
        }
        LogicalPlan::Aggregate(a) => {
            let Expr::Column(column) = unalias(a.group_expr.get(i)?) else { return None };
            let j = a.input.schema().index_of_column(column).ok()?;
            trace(&a.input, j, store)
        }
        LogicalPlan::Filter(f) => trace(&f.input, i, store),
        LogicalPlan::Sort(s) => trace(&s.input, i, store),
        LogicalPlan::Limit(l) => trace(&l.input, i, store),
        LogicalPlan::SubqueryAlias(s) => trace(&s.input, i, store),
        LogicalPlan::Repartition(r) => trace(&r.input, i, store),
        LogicalPlan::Window(w) if i < w.input.schema().fields().len() => trace(&w.input, i, store),
        LogicalPlan::Join(j) => {
            let left = j.left.schema().fields().len();
            match j.join_type {
                JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full if i < left => {
                    trace(&j.left, i, store)
                }
                JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => {
                    trace(&j.right, i - left, store)
                }
                JoinType::LeftSemi | JoinType::LeftAnti => trace(&j.left, i, store),
                JoinType::RightSemi | JoinType::RightAnti => trace(&j.right, i, store),
                _ => None,
            }
        }
        LogicalPlan::TableScan(scan) => {
            let name = scan.projected_schema.field(i).name();
            relation_columns(&scan.table_name, store)?
                .into_iter()
                .find(|c| c.name == *name)
                .map(|c| c.column_type)
        }
        _ => None,
    }
}

fn unalias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(alias) => unalias(&alias.expr),
        other => other,
    }
}

/// The declared columns of the table, view or source `name` names.
fn relation_columns(name: &TableReference, store: &Store) -> Option<Vec<ColumnDef>> {
    let schema = name.schema().unwrap_or(DEFAULT_SCHEMA);
    let table = name.table();
    store
        .table(schema, table)
        .map(|t| t.def().columns.clone())
        .or_else(|| store.view(schema, table).map(|v| v.relation.columns))
        .or_else(|| store.source(schema, table).map(|s| s.columns))
}
