//! Division of floating-point numbers by zero raises `22012 division by zero`, as in
//! Postgres, instead of giving `Infinity` or `NaN` (IEEE's answer, DataFusion's): a
//! difference `pg_differential.py` found. [`FloatDivision`] plans `/` with a float operand
//! in double precision as `float_div`, which checks the divisor.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type};
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

/// Whether `l / r` divides in double precision: one operand is, the other is a number
/// other than a narrower float (a `real` division keeps DataFusion's, for its type).
fn divides_in_double(l: &DataType, r: &DataType) -> bool {
    let narrow = |t: &DataType| matches!(t, DataType::Float16 | DataType::Float32);
    (*l == DataType::Float64 || *r == DataType::Float64)
        && l.is_numeric()
        && r.is_numeric()
        && !narrow(l)
        && !narrow(r)
}

impl ScalarUDFImpl for FloatDiv {
    fn name(&self) -> &str {
        "float_div"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if scalar { 1 } else { args.number_rows };
        let a = arrow::compute::cast(&args.args[0].to_array(rows)?, &DataType::Float64)?;
        let b = arrow::compute::cast(&args.args[1].to_array(rows)?, &DataType::Float64)?;
        let divisors = b.as_primitive::<Float64Type>();
        if (0..divisors.len()).any(|i| divisors.is_valid(i) && divisors.value(i) == 0.0) {
            return Err(DataFusionError::ArrowError(Box::new(arrow::error::ArrowError::DivideByZero), None));
        }
        let out: Arc<dyn Array> = Arc::new(arrow::compute::kernels::numeric::div(&a, &b)?);
        match scalar {
            true => Ok(ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&out, 0)?)),
            false => Ok(ColumnarValue::Array(out)),
        }
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
            (Ok(l), Ok(r)) if divides_in_double(&l, &r) => {
                Ok(PlannerResult::Planned(float_div().call(vec![expr.left, expr.right])))
            }
            _ => Ok(PlannerResult::Original(expr)),
        }
    }
}
