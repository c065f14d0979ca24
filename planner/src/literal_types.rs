//! Integer literals typed as Postgres types them.
//!
//! Postgres makes a whole-number literal `integer` when it fits 32 bits, `bigint` when it
//! fits 64 and `numeric` beyond (`pg_typeof(1)` is `integer`, `pg_typeof(2147483648)`
//! `bigint`, `pg_typeof(9223372036854775808)` `numeric`; a negative literal by its negated
//! value, so `-2147483648` is `integer`). DataFusion makes every one `Int64` (and a
//! literal beyond `i64` an unsigned `UInt64`), so `int_col + 1` computed in `bigint`,
//! `2147483647 + 1` answered `2147483648` where Postgres raises `22003`, and a view
//! `SELECT 1 AS x` had a `bigint` column.
//!
//! [`type_integer_literals`] retypes them in a freshly planned statement, before
//! DataFusion's analyzer runs: an `Int64` literal that fits 32 bits becomes `Int32`, a
//! `UInt64` one `numeric` (`Decimal128(20, 0)`). Doing it on the plan rather than on the SQL
//! text keeps everything DataFusion resolves from literals while it plans as it was:
//! `ORDER BY 1` and `GROUP BY 1` positions, `LIMIT`/`OFFSET`, table functions such as
//! `generate_series`, and `-2147483648` read as one negative literal. Each node's
//! schema is recomputed, so a function whose result type depends on a literal argument
//! (`round(x, 2)`) and every column above see the new type; the analyzer's type coercion
//! then casts as it would for an `integer` column.
//!
//! Left `bigint`: `LIMIT`/`OFFSET` values (DataFusion reads them as `Int64` constants),
//! `count(*)`'s constant (DataFusion and the stream planner recognise `count(Int64(1))`),
//! and literals cast to a date or time type (DataFusion reads `CAST(n AS timestamp)` as
//! seconds since the epoch only for an `Int64`).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    Cast, DmlStatement, Expr, ExprSchemable, LogicalPlan, Projection, Union, Values, WriteOp,
};

/// The type Postgres gives the integer literal DataFusion planned as `value`, when it
/// differs from DataFusion's.
fn postgres_literal(value: &ScalarValue) -> Option<ScalarValue> {
    match value {
        ScalarValue::Int64(Some(v)) => i32::try_from(*v).ok().map(|v| ScalarValue::Int32(Some(v))),
        ScalarValue::UInt64(Some(v)) if i64::try_from(*v).is_err() => {
            Some(ScalarValue::Decimal128(Some(i128::from(*v)), 20, 0))
        }
        _ => None,
    }
}

/// Retypes the integer literals of `plan` (subqueries included) as Postgres types them;
/// see the module docs.
pub fn type_integer_literals(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| match node {
        // DataFusion reads LIMIT and OFFSET as Int64 constants.
        LogicalPlan::Limit(_) => Ok(Transformed::no(node)),
        LogicalPlan::Values(values) => retype_values(values),
        // DataFusion keeps a union's schema when recomputing it; built as the SQL planner
        // builds it, it takes its inputs' new types (the analyzer then coerces inputs that
        // differ, `SELECT 1 UNION SELECT 2147483648` to `bigint`).
        LogicalPlan::Union(union) => {
            Ok(Transformed::yes(LogicalPlan::Union(Union::try_new_with_loose_types(union.inputs)?)))
        }
        LogicalPlan::Dml(dml) if matches!(dml.op, WriteOp::Insert(_)) => cast_to_target(dml),
        node => {
            let names = NamePreserver::new(&node);
            let node = node.map_expressions(|e| {
                let name = names.save(&e);
                Ok(retype_expression(e)?.update_data(|e| name.restore(e)))
            })?;
            // An input's column may have changed type even where this node's expressions
            // did not.
            node.map_data(|n| n.recompute_schema())
        }
    })
    .map(|t| t.data)
}

/// Retypes the literals of one expression, leaving `count(*)`'s constant and the operand of
/// a cast to a date or time type as they are.
fn retype_expression(expr: Expr) -> Result<Transformed<Expr>> {
    expr.transform_down(|e| match &e {
        Expr::AggregateFunction(AggregateFunction { func, .. }) if func.name() == "count" => {
            // Its argument's other parts (a CASE, a column) have no literal worth a type.
            Ok(Transformed::new(e, false, TreeNodeRecursion::Jump))
        }
        Expr::Cast(Cast { field, .. }) if field.data_type().is_temporal() => {
            Ok(Transformed::new(e, false, TreeNodeRecursion::Jump))
        }
        Expr::Literal(value, metadata) => match postgres_literal(value) {
            Some(typed) => Ok(Transformed::yes(Expr::Literal(typed, metadata.clone()))),
            None => Ok(Transformed::no(e)),
        },
        _ => Ok(Transformed::no(e)),
    })
}

/// DataFusion casts an INSERT's values to the table's column types where they differ when
/// it plans the statement; a value retyped `integer` since is cast again to the `bigint`
/// (or `numeric`, ...) column it goes to.
fn cast_to_target(mut dml: DmlStatement) -> Result<Transformed<LogicalPlan>> {
    let target = dml.target.schema();
    let input = dml.input.schema();
    let differs = |(a, b): (&Arc<Field>, &Arc<Field>)| a.data_type() != b.data_type();
    if input.fields().len() != target.fields().len()
        || !input.fields().iter().zip(target.fields()).any(differs)
    {
        return Ok(Transformed::no(LogicalPlan::Dml(dml)));
    }
    let exprs = input
        .columns()
        .into_iter()
        .zip(target.fields())
        .map(|(column, field)| {
            let name = column.name.clone();
            let value = Expr::Column(column);
            match value.get_type(input)? == *field.data_type() {
                true => Ok(value),
                false => Ok(Expr::Cast(Cast::new(Box::new(value), field.data_type().clone())).alias(name)),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    dml.input = Arc::new(LogicalPlan::Projection(Projection::try_new(exprs, Arc::clone(&dml.input))?));
    Ok(Transformed::yes(LogicalPlan::Dml(dml)))
}

/// A `VALUES` column whose rows are all integer literals Postgres types `integer` (or
/// NULL) becomes `integer`; a column mixing other expressions keeps DataFusion's type,
/// which every row is cast to.
fn retype_values(values: Values) -> Result<Transformed<LogicalPlan>> {
    let Values { schema, mut values } = values;
    let columns = schema.fields().len();
    let retyped: Vec<bool> = (0..columns)
        .map(|c| {
            schema.field(c).data_type() == &DataType::Int64
                && values
                    .iter()
                    .any(|row| matches!(row.get(c), Some(Expr::Literal(ScalarValue::Int64(Some(_)), _))))
                && values.iter().all(|row| match row.get(c) {
                    Some(Expr::Literal(ScalarValue::Int64(None), _)) => true,
                    Some(Expr::Literal(v @ ScalarValue::Int64(Some(_)), _)) => {
                        matches!(postgres_literal(v), Some(ScalarValue::Int32(_)))
                    }
                    _ => false,
                })
        })
        .collect();
    if !retyped.contains(&true) {
        return Ok(Transformed::no(LogicalPlan::Values(Values { schema, values })));
    }
    for row in &mut values {
        for (c, expr) in row.iter_mut().enumerate() {
            if !retyped[c] {
                continue;
            }
            if let Expr::Literal(v, metadata) = expr {
                let typed = match v {
                    ScalarValue::Int64(Some(n)) => ScalarValue::Int32(i32::try_from(*n).ok()),
                    _ => ScalarValue::Int32(None),
                };
                *expr = Expr::Literal(typed, metadata.clone());
            }
        }
    }
    let fields: Vec<(Option<datafusion::common::TableReference>, Arc<Field>)> = schema
        .iter()
        .zip(&retyped)
        .map(|((qualifier, field), retyped)| {
            let field = match retyped {
                true => Arc::new(field.as_ref().clone().with_data_type(DataType::Int32)),
                false => Arc::clone(field),
            };
            (qualifier.cloned(), field)
        })
        .collect();
    let schema = Arc::new(DFSchema::new_with_metadata(fields, schema.metadata().clone())?);
    Ok(Transformed::yes(LogicalPlan::Values(Values { schema, values })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_take_the_narrowest_postgres_type() {
        assert_eq!(postgres_literal(&ScalarValue::Int64(Some(1))), Some(ScalarValue::Int32(Some(1))));
        assert_eq!(
            postgres_literal(&ScalarValue::Int64(Some(-2147483648))),
            Some(ScalarValue::Int32(Some(i32::MIN)))
        );
        assert_eq!(postgres_literal(&ScalarValue::Int64(Some(2147483648))), None);
        assert_eq!(postgres_literal(&ScalarValue::Int64(None)), None);
        assert_eq!(
            postgres_literal(&ScalarValue::UInt64(Some(9223372036854775808))),
            Some(ScalarValue::Decimal128(Some(9223372036854775808), 20, 0))
        );
        assert_eq!(postgres_literal(&ScalarValue::Float64(Some(1.0))), None);
    }
}
