//! Division of floating-point numbers by zero raises `22012 division by zero`, as in
//! Postgres, instead of giving `Infinity` or `NaN` (IEEE's answer, DataFusion's): a
//! difference `pg_differential.py` found. [`FloatDivision`] plans `/` with a float operand
//! as `float_div`, which checks the divisor: in double precision when an operand is, in
//! `real` when the float operand is `real` and the other an integer or a `real` (the type
//! DataFusion gives that division).

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float32Type, Float64Type};
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, ExprSchemable, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;

#[derive(Debug, PartialEq, Eq, Hash)]
struct FloatDiv {
    signature: Signature,
}

pub fn float_div() -> ScalarUDF {
    ScalarUDF::new_from_impl(FloatDiv { signature: Signature::any(2, Volatility::Immutable) })
}

/// The float type `l / r` divides in, if an operand is a float and the other a number:
/// `double precision` if either is, `real` if the other is an integer or a `real` (a
/// `real` and a `numeric` keep DataFusion's division).
fn float_division_type(l: &DataType, r: &DataType) -> Option<DataType> {
    let narrow = |t: &DataType| matches!(t, DataType::Float16 | DataType::Float32);
    let double = *l == DataType::Float64 || *r == DataType::Float64;
    if !l.is_numeric() || !r.is_numeric() {
        return None;
    }
    if double && !narrow(l) && !narrow(r) {
        return Some(DataType::Float64);
    }
    let real_or_integer = |t: &DataType| narrow(t) || t.is_integer();
    (!double && (narrow(l) || narrow(r)) && real_or_integer(l) && real_or_integer(r))
        .then_some(DataType::Float32)
}

impl ScalarUDFImpl for FloatDiv {
    fn name(&self) -> &str {
        "float_div"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [l, r] => float_division_type(l, r)
                .ok_or_else(|| DataFusionError::Plan(format!("float_div of {l} and {r}"))),
            _ => Err(DataFusionError::Plan("float_div takes two arguments".into())),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if scalar { 1 } else { args.number_rows };
        let float = args.return_field.data_type().clone();
        let a = arrow::compute::cast(&args.args[0].to_array(rows)?, &float)?;
        let b = arrow::compute::cast(&args.args[1].to_array(rows)?, &float)?;
        // A NULL operand makes the quotient NULL, whatever the divisor (Postgres' `/` is
        // strict: `NULL / 0` is NULL).
        let divides = |i: usize| a.is_valid(i) && b.is_valid(i);
        let zero_divisor = match &float {
            DataType::Float32 => {
                let divisors = b.as_primitive::<Float32Type>();
                (0..divisors.len()).any(|i| divides(i) && divisors.value(i) == 0.0)
            }
            _ => {
                let divisors = b.as_primitive::<Float64Type>();
                (0..divisors.len()).any(|i| divides(i) && divisors.value(i) == 0.0)
            }
        };
        if zero_divisor {
            return Err(DataFusionError::ArrowError(Box::new(arrow::error::ArrowError::DivideByZero), None));
        }
        let out: Arc<dyn Array> = Arc::new(arrow::compute::kernels::numeric::div(&a, &b)?);
        super::columnar(out, scalar)
    }
}

/// Plans `/` with a float operand (the other a number) as `float_div`.
#[derive(Debug, Default)]
pub struct FloatDivision;

impl ExprPlanner for FloatDivision {
    fn plan_binary_op(&self, expr: RawBinaryExpr, schema: &DFSchema) -> Result<PlannerResult<RawBinaryExpr>> {
        if expr.op != BinaryOperator::Divide {
            return Ok(PlannerResult::Original(expr));
        }
        match (expr.left.get_type(schema), expr.right.get_type(schema)) {
            (Ok(l), Ok(r)) if float_division_type(&l, &r).is_some() => {
                Ok(PlannerResult::Planned(float_div().call(vec![expr.left, expr.right])))
            }
            _ => Ok(PlannerResult::Original(expr)),
        }
    }
}
