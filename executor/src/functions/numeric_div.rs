//! Division of `numeric`: exact, rounded half away from zero to the places Postgres keeps,
//! at most the unconstrained scale.
//!
//! Arrow divides `Decimal128` values at a scale that depends on the operands' types (four
//! places more than the dividend's, at most), and truncates: `-634786 / 210118.635` was
//! `-3.0210` where Postgres says `-3.0210790204305296`, and `0.1 / 838112.117` was `0.0`.
//! Both wrong answers were found by `pg_differential.py`. Postgres picks each quotient's
//! scale from its operands' values (at least 16 significant digits); Weir's `numeric` has
//! one scale per column, so a quotient with a `numeric` operand is unconstrained
//! `numeric` (`Decimal128(38, 10)`, ten places, as products with an unconstrained factor
//! are), computed exactly in 256 bits and rounded half away from zero as Postgres rounds,
//! at the places Postgres keeps when they are fewer than ten (a quotient of 10^8 or more:
//! `1000000000 / 7` is `142857142.85714286`, as in Postgres). An unconstrained operand's
//! display scale, which Postgres' choice of places reads, is the places Weir prints.
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
    is_unconstrained, postgres_quotient, printed_scale, unconstrained, UNCONSTRAINED_PRECISION,
    UNCONSTRAINED_SCALE,
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

/// An operand of a quotient: its value, scale, and display scale (for unconstrained
/// `numeric`, the places Weir prints; else its type's scale).
type Operand = (i128, i8, bool);

fn display_scale((value, scale, unconstrained): Operand) -> i32 {
    match unconstrained {
        true => printed_scale(i256::from_i128(value), scale),
        false => i32::from(scale),
    }
}

/// `a / b` as Postgres computes it ([`postgres_quotient`]), at no more than the
/// unconstrained scale, rounded half away from zero.
fn quotient(a: Operand, b: Operand) -> Result<i128> {
    use super::numeric_special::{arith, is_special, Op};
    if is_special(a.0) || is_special(b.0) {
        return arith(Op::Div, a.0, a.1, b.0, b.1, UNCONSTRAINED_PRECISION, UNCONSTRAINED_SCALE);
    }
    if b.0 == 0 {
        return Err(DataFusionError::ArrowError(Box::new(arrow::error::ArrowError::DivideByZero), None));
    }
    postgres_quotient(
        (i256::from_i128(a.0), a.1, display_scale(a)),
        (i256::from_i128(b.0), b.1, display_scale(b)),
        UNCONSTRAINED_PRECISION,
        UNCONSTRAINED_SCALE,
    )
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
        let (lu, ru) = (is_unconstrained(left.data_type()), is_unconstrained(right.data_type()));
        // A NULL operand makes the quotient NULL whatever the divisor (`/` is strict).
        let out = (0..rows)
            .map(|i| {
                (left.is_valid(i) && right.is_valid(i))
                    .then(|| quotient((left.value(i), ls, lu), (right.value(i), rs, ru)))
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

    /// An operand of a constrained type (its display scale is its type's).
    fn c(value: i128, scale: i8) -> Operand {
        (value, scale, false)
    }

    #[test]
    fn quotients_round_half_away_from_zero_at_ten_places() {
        // -634785 / 210118.635 = -3.02107902043...
        assert_eq!(quotient(c(-634785, 0), c(210118635, 3)).ok(), Some(-30210790204));
        // 0.1 / 838112.117 = 0.000000119315...
        assert_eq!(quotient(c(1, 1), c(838112117, 3)).ok(), Some(1193));
        assert_eq!(quotient(c(2, 0), c(3, 0)).ok(), Some(6666666667));
        assert_eq!(quotient(c(-2, 0), c(3, 0)).ok(), Some(-6666666667));
        assert_eq!(quotient(c(1, 0), c(8, 0)).ok(), Some(1250000000));
        assert_eq!(quotient((10 * S, 10, true), (4 * S, 10, true)).ok(), Some(25 * S / 10));
    }

    #[test]
    fn large_quotients_keep_the_places_postgres_keeps() {
        // Postgres: 1000000000 / 7 = 142857142.85714286, eight places, not ten.
        assert_eq!(quotient((1_000_000_000 * S, 10, true), c(7, 0)).ok(), Some(1_428_571_428_571_428_600));
        // 12345678901234 / 7 = 1763668414462.0000.
        assert_eq!(quotient(c(12_345_678_901_234, 0), c(7, 0)).ok(), Some(1_763_668_414_462 * S));
        // An operand's own places count: 1000000000.123456789 / 1 keeps nine.
        assert_eq!(
            quotient((10_000_000_001_234_567_890, 10, true), c(1, 0)).ok(),
            Some(10_000_000_001_234_567_890)
        );
    }

    #[test]
    fn a_zero_divisor_and_a_quotient_too_large_are_errors() {
        assert!(
            matches!(quotient(c(1, 0), c(0, 2)), Err(DataFusionError::ArrowError(e, _)) if matches!(*e, arrow::error::ArrowError::DivideByZero))
        );
        assert!(quotient(c(10i128.pow(27), 0), c(1, 3)).is_err());
    }
}
