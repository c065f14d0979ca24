//! Keeps `numeric`'s special values away from every Arrow and DataFusion kernel that does
//! not know them (see [`super::numeric_special`] for how they are stored).
//!
//! Run last among the analyzer rules, after type coercion has made every operand's type
//! explicit, [`NumericSpecialValues`] rewrites each expression that computes with a
//! decimal:
//!
//! * `+ - * / %` over decimals become `numeric_arith` (Postgres' rules for `NaN` and the
//!   infinities, exact arithmetic for numbers, the type DataFusion gave the operator);
//!   unary `-` becomes `numeric_neg`;
//! * a cast of a decimal to a decimal becomes `numeric_cast`, to a float
//!   `numeric_to_float`, to an integer passes `numeric_finite(x, 'integer')` first
//!   (Postgres' `22003` "cannot convert infinity to integer"), and a cast of a float to a
//!   decimal becomes `float_to_numeric`;
//! * functions and aggregates that know the sentinels or only compare and pass values on
//!   (`round`, `coalesce`, `min`, `sum`, ...) are kept; every other one gets its decimal
//!   arguments through `numeric_finite`, which raises `0A000` on a special value. An error,
//!   never a wrong number.
//!
//! Comparisons, `CASE`, `IN`, `DISTINCT`, grouping, sorting and joins need nothing: the
//! sentinels' integer order is Postgres' order of the values.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::expr::{
    AggregateFunction, Cast, ScalarFunction, TryCast, WindowFunction, WindowFunctionDefinition,
};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;

use super::numeric_special::{
    float_to_numeric, integer_type_name, numeric_arith, numeric_cast, numeric_finite, numeric_neg,
    numeric_to_float,
};

/// Scalar functions that compute correctly with the special values (Weir's numeric
/// kernels) or never compute with them (they compare, or pass a value on).
const AWARE_FUNCTIONS: &[&str] = &[
    "numeric_arith",
    "numeric_neg",
    "numeric_cast",
    "numeric_to_float",
    "float_to_numeric",
    "numeric_finite",
    "numeric_mul",
    "numeric_div",
    "numeric_round",
    "numeric_text",
    "round",
    "ceil",
    "floor",
    "abs",
    "trunc",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "pg_typeof",
    // Formats NaN and the infinities as Postgres does.
    "to_char",
];

/// Aggregate and window functions that do (`sum` and `avg` count the special values,
/// `DISTINCT` or not).
const AWARE_AGGREGATES: &[&str] =
    &["sum", "avg", "min", "max", "count", "first_value", "last_value", "nth_value", "lag", "lead"];

#[derive(Debug, Default)]
pub struct NumericSpecialValues;

impl AnalyzerRule for NumericSpecialValues {
    fn name(&self) -> &str {
        "weir_numeric_special_values"
    }
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            let schema = expression_schema(&node);
            let names = NamePreserver::new(&node);
            node.map_expressions(|e| {
                let name = names.save(&e);
                Ok(e.transform_up(|e| rewrite(e, &schema))?.update_data(|e| name.restore(e)))
            })
        })
        .map(|t| t.data)
    }
}

/// The columns a node's expressions read: its input's, both inputs' for a join (whose
/// conditions read both sides), none for a leaf (`VALUES`).
fn expression_schema(node: &LogicalPlan) -> Arc<DFSchema> {
    match node.inputs().as_slice() {
        [] => Arc::new(DFSchema::empty()),
        [input] => Arc::clone(input.schema()),
        inputs => {
            let mut all = DFSchema::empty();
            for input in inputs {
                match all.join(input.schema()) {
                    Ok(joined) => all = joined,
                    Err(_) => return Arc::clone(node.schema()),
                }
            }
            Arc::new(all)
        }
    }
}

fn decimal(e: &Expr, schema: &DFSchema) -> Option<DataType> {
    match e.get_type(schema) {
        Ok(t @ DataType::Decimal128(..)) => Some(t),
        _ => None,
    }
}

fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64)
}

fn text(s: &str) -> Expr {
    Expr::Literal(ScalarValue::Utf8(Some(s.to_string())), None)
}

fn int(v: impl Into<i64>) -> Expr {
    Expr::Literal(ScalarValue::Int64(Some(v.into())), None)
}

/// `numeric_finite(e, what)`.
fn guarded(e: Expr, what: &str) -> Expr {
    numeric_finite().call(vec![e, text(what)])
}

/// Guards the decimal arguments of a function `name` that does not know the sentinels.
fn guard_arguments(args: Vec<Expr>, name: &str, schema: &DFSchema) -> (Vec<Expr>, bool) {
    let mut changed = false;
    let args = args
        .into_iter()
        .map(|a| match decimal(&a, schema) {
            Some(_) => {
                changed = true;
                guarded(a, name)
            }
            None => a,
        })
        .collect();
    (args, changed)
}

fn aware_aggregate(name: &str) -> bool {
    AWARE_AGGREGATES.contains(&name)
}

/// The replacement of a cast of `inner` (of type `from`) to `to`, if it needs one.
fn cast(inner: Expr, from: &DataType, to: &DataType) -> Option<Expr> {
    match (from, to) {
        (DataType::Decimal128(..), DataType::Decimal128(p, s)) => {
            Some(numeric_cast().call(vec![inner, int(*p), int(*s)]))
        }
        (DataType::Decimal128(..), DataType::Float64) => Some(numeric_to_float().call(vec![inner])),
        (DataType::Decimal128(..), t) if is_float(t) => {
            Some(Expr::Cast(Cast::new(Box::new(numeric_to_float().call(vec![inner])), t.clone())))
        }
        (DataType::Decimal128(..), t) => {
            let what = integer_type_name(t).map_or_else(|| format!("a cast to {t}"), str::to_string);
            Some(Expr::Cast(Cast::new(Box::new(guarded(inner, &what)), t.clone())))
        }
        (f, DataType::Decimal128(p, s)) if is_float(f) => {
            Some(float_to_numeric().call(vec![inner, int(*p), int(*s)]))
        }
        _ => None,
    }
}

fn arithmetic(op: Operator) -> Option<&'static str> {
    match op {
        Operator::Plus => Some("+"),
        Operator::Minus => Some("-"),
        Operator::Multiply => Some("*"),
        Operator::Divide => Some("/"),
        Operator::Modulo => Some("%"),
        _ => None,
    }
}

fn rewrite(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let exact = |t: &Option<DataType>| matches!(t, Some(t) if t.is_integer() || matches!(t, DataType::Decimal128(..)));
    match e {
        Expr::Cast(Cast { expr, field }) => {
            let from = expr.get_type(schema).ok();
            match from.as_ref().and_then(|from| cast(*expr.clone(), from, field.data_type())) {
                Some(replaced) => Ok(Transformed::yes(replaced)),
                None => Ok(Transformed::no(Expr::Cast(Cast { expr, field }))),
            }
        }
        Expr::TryCast(TryCast { expr, field }) => match decimal(&expr, schema) {
            // TRY_CAST (not Postgres syntax) keeps Arrow's cast, for numbers only.
            Some(_) => Ok(Transformed::yes(Expr::TryCast(TryCast {
                expr: Box::new(guarded(*expr, "TRY_CAST")),
                field,
            }))),
            None => Ok(Transformed::no(Expr::TryCast(TryCast { expr, field }))),
        },
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let operands = (left.get_type(schema).ok(), right.get_type(schema).ok());
            let e = Expr::BinaryExpr(BinaryExpr { left, op, right });
            let (Some(code), true, true) = (arithmetic(op), exact(&operands.0), exact(&operands.1)) else {
                return Ok(Transformed::no(e));
            };
            let (Some(DataType::Decimal128(p, s)), Expr::BinaryExpr(BinaryExpr { left, right, .. })) =
                (decimal(&e, schema), &e)
            else {
                return Ok(Transformed::no(e));
            };
            let args = vec![text(code), left.as_ref().clone(), right.as_ref().clone(), int(p), int(s)];
            Ok(Transformed::yes(numeric_arith().call(args)))
        }
        Expr::Negative(inner) if decimal(&inner, schema).is_some() => {
            Ok(Transformed::yes(numeric_neg().call(vec![*inner])))
        }
        Expr::ScalarFunction(ScalarFunction { func, args }) if !AWARE_FUNCTIONS.contains(&func.name()) => {
            let (args, changed) = guard_arguments(args, func.name(), schema);
            let e = Expr::ScalarFunction(ScalarFunction { func, args });
            Ok(if changed { Transformed::yes(e) } else { Transformed::no(e) })
        }
        Expr::AggregateFunction(mut aggregate) if !aware_aggregate(aggregate.func.name()) => {
            let name = aggregate.func.name().to_string();
            let (args, changed) = guard_arguments(std::mem::take(&mut aggregate.params.args), &name, schema);
            aggregate.params.args = args;
            let e = Expr::AggregateFunction(AggregateFunction { ..aggregate });
            Ok(if changed { Transformed::yes(e) } else { Transformed::no(e) })
        }
        Expr::WindowFunction(mut window) if !aware_window(&window) => {
            let name = window.fun.name().to_string();
            let (args, changed) = guard_arguments(std::mem::take(&mut window.params.args), &name, schema);
            window.params.args = args;
            let e = Expr::WindowFunction(window);
            Ok(if changed { Transformed::yes(e) } else { Transformed::no(e) })
        }
        other => Ok(Transformed::no(other)),
    }
}

fn aware_window(window: &WindowFunction) -> bool {
    match &window.fun {
        WindowFunctionDefinition::AggregateUDF(f) => aware_aggregate(f.name()),
        WindowFunctionDefinition::WindowUDF(f) => AWARE_AGGREGATES.contains(&f.name()),
    }
}
