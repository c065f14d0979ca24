//! Multiplication of unconstrained `numeric`: exact, then rounded to the unconstrained
//! scale, instead of a scale that grows with every factor.
//!
//! Arrow gives `Decimal128(p1, s1) * Decimal128(p2, s2)` the scale `s1 + s2`, Postgres'
//! rule; but Postgres applies it to each value's own display scale (`58140000 * 0.95` has
//! scale 2), while Weir's unconstrained `numeric` has scale 10 for every value. A
//! three-way product of unconstrained values would have scale 30 and room for only 8
//! digits before the point, and its sum would overflow on ordinary data. So a product
//! with an unconstrained factor (and any product whose scale would pass 38) is computed
//! exactly in 256 bits by `numeric_mul` and rounded half away from zero to unconstrained
//! `numeric` (`Decimal128(38, 10)`); a result beyond 38 digits raises `22003`. Products
//! of constrained `numeric(p, s)` values keep Arrow's (and Postgres') `s1 + s2`.
//!
//! [`NumericSemantics`] makes the replacement as SQL is planned, so every type derived from
//! the product (and the streaming expressions written back from the plan) sees its real type.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Decimal128Array};
use arrow::datatypes::{i256, DataType, Decimal128Type};
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, ExprSchemable, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;

use super::numeric::{fit, is_unconstrained, unconstrained, UNCONSTRAINED_PRECISION, UNCONSTRAINED_SCALE};
use super::numeric_special::{arith, is_special, Op};

/// `numeric_mul(a, b)`: the exact product of two numerics (or integers), as unconstrained numeric.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NumericMul {
    signature: Signature,
}

pub fn numeric_mul() -> ScalarUDF {
    ScalarUDF::new_from_impl(NumericMul { signature: Signature::any(2, Volatility::Immutable) })
}

/// The scale of a decimal or integer operand, `None` for anything else.
pub(super) fn exact_scale(dt: &DataType) -> Option<i8> {
    match dt {
        DataType::Decimal128(_, s) => Some(*s),
        dt if dt.is_integer() => Some(0),
        _ => None,
    }
}

/// Whether `left * right` must be computed by `numeric_mul`.
pub fn needs_numeric_mul(left: &DataType, right: &DataType) -> bool {
    let (Some(ls), Some(rs)) = (exact_scale(left), exact_scale(right)) else { return false };
    let decimals = matches!(left, DataType::Decimal128(..)) && matches!(right, DataType::Decimal128(..));
    decimals && (is_unconstrained(left) || is_unconstrained(right) || i32::from(ls) + i32::from(rs) > 38)
}

/// An argument as 128-bit decimal values and their scale.
pub(super) fn as_decimal(value: &ColumnarValue, rows: usize) -> Result<(Decimal128Array, i8)> {
    let array = value.to_array(rows)?;
    let scale = exact_scale(array.data_type())
        .ok_or_else(|| DataFusionError::Plan(format!("numeric arithmetic over {}", array.data_type())))?;
    let decimal: ArrayRef = match array.data_type() {
        DataType::Decimal128(..) => array,
        _ => arrow::compute::cast(&array, &DataType::Decimal128(38, 0))?,
    };
    Ok((decimal.as_primitive::<Decimal128Type>().clone(), scale))
}

impl ScalarUDFImpl for NumericMul {
    fn name(&self) -> &str {
        "numeric_mul"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [l, r] if exact_scale(l).is_some() && exact_scale(r).is_some() => Ok(unconstrained()),
            _ => Err(DataFusionError::Plan(format!("numeric_mul takes two numerics, not {arg_types:?}"))),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if scalar { 1 } else { args.number_rows };
        let (left, ls) = as_decimal(&args.args[0], rows)?;
        let (right, rs) = as_decimal(&args.args[1], rows)?;
        let mut out = Vec::with_capacity(rows);
        for i in 0..rows {
            out.push(if left.is_null(i) || right.is_null(i) {
                None
            } else {
                let (l, r) = (left.value(i), right.value(i));
                Some(match is_special(l) || is_special(r) {
                    true => arith(Op::Mul, l, ls, r, rs, UNCONSTRAINED_PRECISION, UNCONSTRAINED_SCALE)?,
                    false => {
                        let product = i256::from_i128(l).wrapping_mul(i256::from_i128(r));
                        fit(product, ls + rs, UNCONSTRAINED_PRECISION, UNCONSTRAINED_SCALE)?
                    }
                })
            });
        }
        let array = Decimal128Array::from(out)
            .with_precision_and_scale(UNCONSTRAINED_PRECISION, UNCONSTRAINED_SCALE)?;
        if scalar {
            return Ok(ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&array, 0)?));
        }
        Ok(ColumnarValue::Array(Arc::new(array)))
    }
}

/// Plans products that need it as `numeric_mul` (see the module docs) and quotients with a
/// `numeric` operand as [`numeric_div`](super::numeric_div). It runs when SQL is turned
/// into a plan, before any type is derived from the result.
#[derive(Debug, Default)]
pub struct NumericSemantics;

impl ExprPlanner for NumericSemantics {
    fn plan_binary_op(&self, expr: RawBinaryExpr, schema: &DFSchema) -> Result<PlannerResult<RawBinaryExpr>> {
        // Operands whose type is not known yet (parameters) are left to DataFusion.
        let (Ok(l), Ok(r)) = (expr.left.get_type(schema), expr.right.get_type(schema)) else {
            return Ok(PlannerResult::Original(expr));
        };
        match expr.op {
            BinaryOperator::Multiply if needs_numeric_mul(&l, &r) => {
                Ok(PlannerResult::Planned(numeric_mul().call(vec![expr.left, expr.right])))
            }
            BinaryOperator::Divide if super::numeric_div::needs_numeric_div(&l, &r) => Ok(
                PlannerResult::Planned(super::numeric_div::numeric_div().call(vec![expr.left, expr.right])),
            ),
            _ => Ok(PlannerResult::Original(expr)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;
    use datafusion::common::config::ConfigOptions;
    use datafusion::common::ScalarValue;

    fn call(a: ScalarValue, b: ScalarValue) -> Result<ScalarValue> {
        let args = vec![ColumnarValue::Scalar(a.clone()), ColumnarValue::Scalar(b.clone())];
        let out = NumericMul { signature: Signature::any(2, Volatility::Immutable) }.invoke_with_args(
            ScalarFunctionArgs {
                arg_fields: vec![
                    Arc::new(Field::new("a", a.data_type(), true)),
                    Arc::new(Field::new("b", b.data_type(), true)),
                ],
                args,
                number_rows: 1,
                return_field: Arc::new(Field::new("r", unconstrained(), true)),
                config_options: Arc::new(ConfigOptions::default()),
            },
        )?;
        match out {
            ColumnarValue::Scalar(s) => Ok(s),
            ColumnarValue::Array(a) => ScalarValue::try_from_array(&a, 0),
        }
    }

    fn dec(v: i128, s: i8) -> ScalarValue {
        ScalarValue::Decimal128(Some(v), 38, s)
    }

    #[test]
    fn products_round_to_the_unconstrained_scale() {
        // 0.0000000001 * 0.5 = 0.00000000005, rounded away from zero at 10 places.
        assert_eq!(call(dec(1, 10), dec(5, 1)).unwrap(), dec(1, 10));
        // 58140000 * 0.95 = 55233000
        assert_eq!(
            call(dec(58_140_000 * 10i128.pow(10), 10), dec(95, 2)).unwrap(),
            dec(55_233_000 * 10i128.pow(10), 10)
        );
        assert_eq!(call(dec(3, 0), ScalarValue::Int64(Some(-2))).unwrap(), dec(-6 * 10i128.pow(10), 10));
        assert_eq!(
            call(dec(3, 0), ScalarValue::Decimal128(None, 38, 10)).unwrap(),
            ScalarValue::Decimal128(None, 38, 10)
        );
    }

    #[test]
    fn products_beyond_38_digits_are_out_of_range() {
        let e = call(dec(10i128.pow(20), 0), dec(10i128.pow(20), 0)).unwrap_err().to_string();
        assert!(e.contains("numeric out of range"), "{e}");
    }

    #[test]
    fn which_products_are_replaced() {
        let u = unconstrained();
        assert!(needs_numeric_mul(&u, &DataType::Decimal128(3, 2)));
        assert!(!needs_numeric_mul(&u, &DataType::Int64));
        assert!(!needs_numeric_mul(&DataType::Decimal128(15, 2), &DataType::Decimal128(15, 2)));
        assert!(needs_numeric_mul(&DataType::Decimal128(38, 30), &DataType::Decimal128(15, 10)));
        assert!(!needs_numeric_mul(&u, &DataType::Float64));
    }
}
