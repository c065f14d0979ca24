//! Postgres' refusals of implicit coercions between type categories, checked on the plan
//! as written, before DataFusion's coercion runs.
//!
//! DataFusion finds a common type for `CASE WHEN c THEN int_col ELSE text_col END` (text),
//! `COALESCE(int_col, text_col)`, `int_col IN (1, text_col)` (compared as text: a wrong
//! `true`) and `SELECT int_col UNION SELECT text_col`; Postgres refuses them with `42804`
//! "CASE types text and integer cannot be matched" (`42883` "operator does not exist:
//! integer = text" for `IN` and `NULLIF`). This check gives Postgres' errors, naming the
//! types, for operands of different categories among numbers, strings, booleans and
//! date/times. A quoted literal is left out, as Postgres reads an untyped literal as the
//! type the context wants (`CASE WHEN c THEN 1 ELSE '2' END` is an integer there).

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan};
use weir_plan::catalog::ColumnType;
use weir_planner::{sqlstate, SqlError};

use crate::wire::errors::{pg_type_name, type_category};

/// The first implicit coercion in `plan` that Postgres refuses, as its error.
pub(super) fn check(plan: &LogicalPlan) -> Result<(), SqlError> {
    let mut found = None;
    let _ = plan.apply_with_subqueries(|node| {
        found = check_node(node);
        Ok(if found.is_some() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    });
    found.map_or(Ok(()), Err)
}

fn check_node(node: &LogicalPlan) -> Option<SqlError> {
    if let LogicalPlan::Union(union) = node {
        return check_union(&union.inputs);
    }
    let schema = expression_schema(node)?;
    let mut found = None;
    let _ = node.apply_expressions(|e| {
        e.apply(|e| {
            found = check_expr(e, &schema);
            Ok(if found.is_some() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
        })
    });
    found
}

/// The columns a node's expressions read (both sides' for a join).
fn expression_schema(node: &LogicalPlan) -> Option<Arc<DFSchema>> {
    match node.inputs().as_slice() {
        [] => Some(Arc::new(DFSchema::empty())),
        [input] => Some(Arc::clone(input.schema())),
        inputs => {
            let mut all = DFSchema::empty();
            for input in inputs {
                all = all.join(input.schema()).ok()?;
            }
            Some(Arc::new(all))
        }
    }
}

/// A category Postgres keeps apart: numbers, strings, booleans, dates and times.
fn category(t: &DataType) -> Option<(char, ColumnType)> {
    if t == &DataType::Null {
        return None;
    }
    let column_type = ColumnType::from_arrow(t);
    let c = type_category(&column_type);
    ['N', 'S', 'B', 'D'].contains(&c).then_some((c, column_type))
}

/// A literal whose type Postgres would take from the context: a quoted string, NULL, a
/// parameter.
fn untyped(e: &Expr) -> bool {
    match e {
        Expr::Literal(ScalarValue::Utf8(_) | ScalarValue::LargeUtf8(_) | ScalarValue::Utf8View(_), _)
        | Expr::Placeholder(_) => true,
        Expr::Literal(v, _) => v.is_null(),
        Expr::Alias(alias) => untyped(&alias.expr),
        _ => false,
    }
}

/// The first two of `operands` (typed ones only) whose categories differ.
fn mismatch<'a>(operands: impl IntoIterator<Item = &'a Expr>, schema: &DFSchema) -> Option<(String, String)> {
    let mut first: Option<(char, ColumnType)> = None;
    for e in operands.into_iter().filter(|e| !untyped(e)) {
        let Some((c, t)) = e.get_type(schema).ok().as_ref().and_then(category) else { continue };
        match &first {
            None => first = Some((c, t)),
            Some((fc, ft)) if *fc != c => return Some((pg_type_name(ft), pg_type_name(&t))),
            Some(_) => {}
        }
    }
    None
}

fn cannot_be_matched(construct: &str, (a, b): (String, String)) -> SqlError {
    SqlError::new(sqlstate::DATATYPE_MISMATCH, format!("{construct} types {a} and {b} cannot be matched"))
}

fn no_operator((a, b): (String, String)) -> SqlError {
    SqlError::new(sqlstate::UNDEFINED_FUNCTION, format!("operator does not exist: {a} = {b}")).with_hint(
        "No operator matches the given name and argument types. You might need to add explicit type casts.",
    )
}

fn check_expr(e: &Expr, schema: &DFSchema) -> Option<SqlError> {
    match e {
        // Postgres compares the ELSE branch first.
        Expr::Case(case) => {
            let branches = case
                .else_expr
                .iter()
                .map(|e| e.as_ref())
                .chain(case.when_then_expr.iter().map(|(_, t)| t.as_ref()));
            mismatch(branches, schema).map(|m| cannot_be_matched("CASE", m))
        }
        Expr::ScalarFunction(f) => match f.name() {
            name @ ("coalesce" | "greatest" | "least") => {
                mismatch(&f.args, schema).map(|m| cannot_be_matched(&name.to_ascii_uppercase(), m))
            }
            "nullif" => mismatch(&f.args, schema).map(no_operator),
            _ => None,
        },
        Expr::InList(in_list) => {
            mismatch(std::iter::once(in_list.expr.as_ref()).chain(&in_list.list), schema).map(no_operator)
        }
        _ => None,
    }
}

/// `UNION`'s columns: each input's column of one category.
fn check_union(inputs: &[Arc<LogicalPlan>]) -> Option<SqlError> {
    let first = inputs.first()?;
    for column in 0..first.schema().fields().len() {
        let mut seen: Option<(char, ColumnType)> = None;
        for input in inputs {
            if untyped_column(input, column) {
                continue;
            }
            let Some(field) = input.schema().fields().get(column) else { continue };
            let Some((c, t)) = category(field.data_type()) else { continue };
            match &seen {
                None => seen = Some((c, t)),
                Some((sc, st)) if *sc != c => {
                    return Some(cannot_be_matched("UNION", (pg_type_name(st), pg_type_name(&t))))
                }
                Some(_) => {}
            }
        }
    }
    None
}

/// Whether column `i` of `plan` is a quoted literal (`SELECT '2'`), untyped in Postgres.
fn untyped_column(plan: &LogicalPlan, i: usize) -> bool {
    match plan {
        LogicalPlan::Projection(p) => p.expr.get(i).is_some_and(untyped),
        LogicalPlan::SubqueryAlias(s) => untyped_column(&s.input, i),
        LogicalPlan::Values(v) => v.values.iter().all(|row| row.get(i).is_some_and(untyped)),
        _ => false,
    }
}
