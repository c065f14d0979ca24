//! Division of `numeric`: exact, rounded half away from zero to the unconstrained scale.
//!
//! Arrow divides `Decimal128` values at a scale that depends on the operands' types (four
//! places more than the dividend's, at most), and truncates: `-634786 / 210118.635` was
//! `-3.0210` where Postgres says `-3.0210790204305296`, and `0.1 / 838112.117` was `0.0`.
//! Both wrong answers were found by `pg_differential.py`. Postgres picks each quotient's
//! scale from its operands' values (at least 16 significant digits); Weir's `numeric` has
//! one scale per column, so a quotient with a `numeric` operand is unconstrained
//! `numeric` (`Decimal128(38, 10)`, ten places, as products with an unconstrained factor
//! are), computed exactly in 256 bits and rounded half away from zero as Postgres rounds.
//! A divisor of zero raises `22012`; a quotient beyond 28 digits before the point raises
//! `22003`. Integer division is untouched. `NaN` and the infinities divide as in Postgres
//! (see [`super::numeric_special`]).

use std::sync::Arc;

use arrow::array::{Array, Decimal128Array};
use arrow::datatypes::{i256, DataType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::numeric::{
    div_round, out_of_range, pow10, unconstrained, UNCONSTRAINED_PRECISION, UNCONSTRAINED_SCALE,
};
use super::numeric_mul::{as_decimal, exact_scale};

/// `numeric_div(a, b)`: `a / b` for numerics (or a numeric and an integer), as unconstrained numeric.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NumericDiv {
    signature: Signature,
}

pub fn numeric_div() -> ScalarUDF {
    ScalarUDF::new_from_impl(NumericDiv { signature: Signature::any(2, Volatility::Immutable) })
}

/// Whether `left / right` must be computed by `numeric_div`: a decimal divided by a
/// decimal or an integer, or an integer by a decimal.
pub fn needs_numeric_div(left: &DataType, right: &DataType) -> bool {
    let decimal = |t: &DataType| matches!(t, DataType::Decimal128(..));
    exact_scale(left).is_some() && exact_scale(right).is_some() && (decimal(left) || decimal(right))
}

/// `(a / 10^sa) / (b / 10^sb)` at the unconstrained scale, rounded half away from zero.
fn quotient(a: i128, sa: i8, b: i128, sb: i8) -> Result<i128> {
    use super::numeric_special::{arith, is_special, Op};
    if is_special(a) || is_special(b) {
        return arith(Op::Div, a, sa, b, sb, UNCONSTRAINED_PRECISION, UNCONSTRAINED_SCALE);
    }
    if b == 0 {
        return Err(DataFusionError::ArrowError(Box::new(arrow::error::ArrowError::DivideByZero), None));
    }
    // a·10^(sb + S - sa) / b, with the power moved to the divisor when it is negative.
    let shift = i32::from(sb) + i32::from(UNCONSTRAINED_SCALE) - i32::from(sa);
    let too_big = || out_of_range("the quotient does not fit numeric(38,10)");
    let (dividend, divisor) = if shift >= 0 {
        (i256::from_i128(a).checked_mul(pow10(shift.unsigned_abs())).ok_or_else(too_big)?, i256::from_i128(b))
    } else {
        (i256::from_i128(a), i256::from_i128(b).checked_mul(pow10(shift.unsigned_abs())).ok_or_else(too_big)?)
    };
    let q = div_round(dividend, divisor).ok_or_else(too_big)?;
    match q.checked_abs() {
        Some(abs) if abs < pow10(u32::from(UNCONSTRAINED_PRECISION)) => q.to_i128().ok_or_else(too_big),
        _ => Err(too_big()),
    }
}

impl ScalarUDFImpl for NumericDiv {
    fn name(&self) -> &str {
        "numeric_div"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [l, r] if needs_numeric_div(l, r) => Ok(unconstrained()),
            _ => Err(DataFusionError::Plan(format!("numeric_div takes two numerics, not {arg_types:?}"))),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if scalar { 1 } else { args.number_rows };
        let [left, right] = args.args.as_slice() else {
            return Err(DataFusionError::Internal("numeric_div takes two arguments".into()));
        };
        let (left, ls) = as_decimal(left, rows)?;
        let (right, rs) = as_decimal(right, rows)?;
        // A NULL operand makes the quotient NULL whatever the divisor (`/` is strict).
        let out = (0..rows)
            .map(|i| {
                (left.is_valid(i) && right.is_valid(i))
                    .then(|| quotient(left.value(i), ls, right.value(i), rs))
                    .transpose()
            })
            .collect::<Result<Decimal128Array>>()?
            .with_precision_and_scale(UNCONSTRAINED_PRECISION, UNCONSTRAINED_SCALE)?;
        let out: Arc<dyn Array> = Arc::new(out);
        super::columnar(out, scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i128 = 10_000_000_000; // 10^10: one at the unconstrained scale

    #[test]
    fn quotients_round_half_away_from_zero_at_ten_places() {
        // -634785 / 210118.635 = -3.02107902043...
        assert_eq!(quotient(-634785, 0, 210118635, 3).ok(), Some(-30210790204));
        // 0.1 / 838112.117 = 0.000000119315...
        assert_eq!(quotient(1, 1, 838112117, 3).ok(), Some(1193));
        assert_eq!(quotient(2, 0, 3, 0).ok(), Some(6666666667));
        assert_eq!(quotient(-2, 0, 3, 0).ok(), Some(-6666666667));
        assert_eq!(quotient(1, 0, 8, 0).ok(), Some(1250000000));
        assert_eq!(quotient(10 * S, 10, 4 * S, 10).ok(), Some(25 * S / 10));
    }

    #[test]
    fn a_zero_divisor_and_a_quotient_too_large_are_errors() {
        assert!(
            matches!(quotient(1, 0, 0, 2), Err(DataFusionError::ArrowError(e, _)) if matches!(*e, arrow::error::ArrowError::DivideByZero))
        );
        assert!(quotient(10i128.pow(27), 0, 1, 3).is_err());
    }
}
