//! `+`, `-`, `*`, `/`, unary `-` and `abs` of integers raise `22003` on overflow, as
//! Postgres does (`smallint out of range`, `integer out of range`, `bigint out of range`),
//! instead of DataFusion's silent wrap-around: a wrong answer `pg_differential.py` found
//! (`-896242622679 * 870197977268` gave `1375295732989511892`). Division, negation and
//! `abs` overflow only at the smallest value (`-2147483648 / -1`, `-(-2147483648)`,
//! `abs(-2147483648)`), where Arrow's own error did not say which type, or DataFusion's
//! `abs` wrapped. `%` never overflows: the smallest value `% -1` is `0`, as in Postgres
//! (Arrow's checked remainder raised an overflow there).
//!
//! [`IntegerOverflow`] plans those binary operators over two integer operands as `int_add`,
//! `int_sub`, `int_mul`, `int_div` and `int_mod`, which compute in the wider of the two
//! types with Arrow's checked kernels; [`IntegerNegation`] makes `-x` of an integer
//! `int_sub(0, x)`; [`checked_abs`] is `abs` of an integer array.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, ArrowNativeTypeOp, AsArray, PrimitiveArray};
use arrow::compute::kernels::numeric;
use arrow::datatypes::{ArrowPrimitiveType, DataType, Int16Type, Int32Type, Int64Type};
use arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::sql::sqlparser::ast::BinaryOperator;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CheckedInteger {
    op: Op,
    signature: Signature,
}

fn udf(op: Op) -> ScalarUDF {
    ScalarUDF::new_from_impl(CheckedInteger { op, signature: Signature::any(2, Volatility::Immutable) })
}

pub fn int_add() -> ScalarUDF {
    udf(Op::Add)
}

pub fn int_sub() -> ScalarUDF {
    udf(Op::Sub)
}

pub fn int_mul() -> ScalarUDF {
    udf(Op::Mul)
}

pub fn int_div() -> ScalarUDF {
    udf(Op::Div)
}

pub fn int_mod() -> ScalarUDF {
    udf(Op::Mod)
}

/// The type two integers of these types compute in: the wider one.
fn result_type(a: &DataType, b: &DataType) -> Option<DataType> {
    let width = |t: &DataType| match t {
        DataType::Int8 | DataType::Int16 => Some(2),
        DataType::Int32 => Some(4),
        DataType::Int64 => Some(8),
        _ => None,
    };
    Some(match width(a)?.max(width(b)?) {
        2 => DataType::Int16,
        4 => DataType::Int32,
        _ => DataType::Int64,
    })
}

fn out_of_range(t: &DataType) -> DataFusionError {
    let name = match t {
        DataType::Int16 => "smallint",
        DataType::Int32 => "integer",
        _ => "bigint",
    };
    DataFusionError::ArrowError(
        Box::new(arrow::error::ArrowError::ArithmeticOverflow(format!("{name} out of range"))),
        None,
    )
}

impl ScalarUDFImpl for CheckedInteger {
    fn name(&self) -> &str {
        match self.op {
            Op::Add => "int_add",
            Op::Sub => "int_sub",
            Op::Mul => "int_mul",
            Op::Div => "int_div",
            Op::Mod => "int_mod",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [a, b] => result_type(a, b)
                .ok_or_else(|| DataFusionError::Plan(format!("{} of {a} and {b}", self.name()))),
            _ => Err(DataFusionError::Plan(format!("{} takes two integers", self.name()))),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if scalar { 1 } else { args.number_rows };
        let t = args.return_field.data_type().clone();
        let a = arrow::compute::cast(&args.args[0].to_array(rows)?, &t)?;
        let b = arrow::compute::cast(&args.args[1].to_array(rows)?, &t)?;
        // Arrow's `add`, `sub`, `mul` and `div` are the checked kernels (`div` truncates
        // toward zero as Postgres does, and raises DivideByZero, `22012`).
        let out = match self.op {
            Op::Add => numeric::add(&a, &b),
            Op::Sub => numeric::sub(&a, &b),
            Op::Mul => numeric::mul(&a, &b),
            Op::Div => numeric::div(&a, &b),
            Op::Mod => remainder(&a, &b),
        }
        .map_err(|e| match e {
            arrow::error::ArrowError::ArithmeticOverflow(_) => out_of_range(&t),
            other => other.into(),
        })?;
        super::columnar(Arc::new(out), scalar)
    }
}

/// `a % b` of two integer arrays of one type: Postgres' remainder (the sign of `a`), `0`
/// for the smallest value `% -1` (Rust's and Arrow's checked remainder overflow there),
/// `22012` for a zero divisor.
fn remainder(a: &dyn Array, b: &dyn Array) -> std::result::Result<ArrayRef, arrow::error::ArrowError> {
    fn rem<T: ArrowPrimitiveType>(a: &dyn Array, b: &dyn Array) -> std::result::Result<ArrayRef, ArrowError> {
        let out: PrimitiveArray<T> =
            arrow::compute::try_binary(a.as_primitive::<T>(), b.as_primitive::<T>(), |x, y| {
                match y.is_zero() {
                    true => Err(ArrowError::DivideByZero),
                    false => Ok(x.mod_wrapping(y)),
                }
            })?;
        Ok(Arc::new(out))
    }
    match a.data_type() {
        DataType::Int16 => rem::<Int16Type>(a, b),
        DataType::Int32 => rem::<Int32Type>(a, b),
        DataType::Int64 => rem::<Int64Type>(a, b),
        other => Err(ArrowError::InvalidArgumentError(format!("int_mod of {other}"))),
    }
}

/// `abs` of an integer array, `22003` for the smallest value of its type (DataFusion's
/// `abs` returned it negative, or wrapped), `None` for another type.
pub(crate) fn checked_abs(values: &dyn Array) -> Option<Result<ArrayRef>> {
    fn abs<T: ArrowPrimitiveType>(values: &dyn Array) -> Result<ArrayRef> {
        let out: PrimitiveArray<T> = values
            .as_primitive::<T>()
            .try_unary(|v| match v.is_lt(T::Native::ZERO) {
                true => v.neg_checked(),
                false => Ok(v),
            })
            .map_err(|_| out_of_range(values.data_type()))?;
        Ok(Arc::new(out))
    }
    Some(match values.data_type() {
        DataType::Int16 => abs::<Int16Type>(values),
        DataType::Int32 => abs::<Int32Type>(values),
        DataType::Int64 => abs::<Int64Type>(values),
        _ => return None,
    })
}

/// Plans `+`, `-`, `*`, `/`, `%` of two integers as their checked functions.
#[derive(Debug, Default)]
pub struct IntegerOverflow;

impl ExprPlanner for IntegerOverflow {
    fn plan_binary_op(&self, expr: RawBinaryExpr, schema: &DFSchema) -> Result<PlannerResult<RawBinaryExpr>> {
        let op = match expr.op {
            BinaryOperator::Plus => int_add(),
            BinaryOperator::Minus => int_sub(),
            BinaryOperator::Multiply => int_mul(),
            BinaryOperator::Divide => int_div(),
            BinaryOperator::Modulo => int_mod(),
            _ => return Ok(PlannerResult::Original(expr)),
        };
        // Operands whose type is not known yet (parameters) are left to DataFusion.
        match (expr.left.get_type(schema), expr.right.get_type(schema)) {
            (Ok(l), Ok(r)) if result_type(&l, &r).is_some() => {
                Ok(PlannerResult::Planned(op.call(vec![expr.left, expr.right])))
            }
            _ => Ok(PlannerResult::Original(expr)),
        }
    }
}

/// `-x` of an integer as `int_sub(0, x)`, which raises `22003` for the smallest value
/// (DataFusion's negation raised Arrow's `Overflow happened on: - -2147483648`).
#[derive(Debug, Default)]
pub struct IntegerNegation;

impl AnalyzerRule for IntegerNegation {
    fn name(&self) -> &str {
        "weir_integer_negation"
    }
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        super::rewrite_plan_expressions(plan, negate_checked)
    }
}

fn negate_checked(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::Negative(inner) = e else { return Ok(Transformed::no(e)) };
    let zero = match inner.get_type(schema) {
        Ok(DataType::Int16) => ScalarValue::Int16(Some(0)),
        Ok(DataType::Int32) => ScalarValue::Int32(Some(0)),
        Ok(DataType::Int64) => ScalarValue::Int64(Some(0)),
        _ => return Ok(Transformed::no(Expr::Negative(inner))),
    };
    Ok(Transformed::yes(int_sub().call(vec![Expr::Literal(zero, None), *inner])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_types_widen_and_only_integers_qualify() {
        assert_eq!(result_type(&DataType::Int32, &DataType::Int64), Some(DataType::Int64));
        assert_eq!(result_type(&DataType::Int16, &DataType::Int16), Some(DataType::Int16));
        assert_eq!(result_type(&DataType::Int32, &DataType::Float64), None);
        assert_eq!(result_type(&DataType::Utf8, &DataType::Int32), None);
    }

    #[test]
    fn remainder_of_the_smallest_value_by_minus_one_is_zero() {
        let a = arrow::array::Int32Array::from(vec![Some(i32::MIN), Some(-7), None, Some(7)]);
        let b = arrow::array::Int32Array::from(vec![Some(-1), Some(3), Some(0), Some(-3)]);
        let out = remainder(&a, &b).unwrap();
        assert_eq!(
            out.as_primitive::<Int32Type>(),
            &arrow::array::Int32Array::from(vec![Some(0), Some(-1), None, Some(1)])
        );
        let zero = arrow::array::Int32Array::from(vec![Some(0)]);
        assert!(matches!(remainder(&a.slice(0, 1), &zero), Err(ArrowError::DivideByZero)));
    }

    #[test]
    fn abs_of_the_smallest_value_is_out_of_range() {
        let small = arrow::array::Int16Array::from(vec![i16::MIN]);
        let err = checked_abs(&small).unwrap().unwrap_err().to_string();
        assert!(err.contains("smallint out of range"), "{err}");
        let ints = arrow::array::Int64Array::from(vec![Some(-5), None, Some(i64::MAX)]);
        let out = checked_abs(&ints).unwrap().unwrap();
        assert_eq!(
            out.as_primitive::<Int64Type>(),
            &arrow::array::Int64Array::from(vec![Some(5), None, Some(i64::MAX)])
        );
        assert!(checked_abs(&arrow::array::Float64Array::from(vec![-1.0])).is_none());
    }
}
