//! What Weir's `numeric` is in Arrow terms, and the exact arithmetic the numeric functions
//! share.
//!
//! Postgres' `numeric` keeps every value at its own display scale with unbounded digits;
//! Arrow's `Decimal128(p, s)` has one scale per column and at most 38 digits. Weir stores
//! `numeric(p, s)` as `Decimal128(p, s)` and unconstrained `numeric` as
//! `Decimal128(38, 10)`, which is also the type of every computation whose exact result
//! scale would not leave room for ordinary values (see [`super::numeric_mul`]). Results are
//! computed exactly in 256 bits and then either fit their type or raise `22003`: never a
//! wrapped or truncated value.

use arrow::datatypes::{i256, DataType};
use arrow::error::ArrowError;
use datafusion::error::DataFusionError;

/// Precision of the type unconstrained `numeric` is stored as.
pub const UNCONSTRAINED_PRECISION: u8 = 38;
/// Scale of the type unconstrained `numeric` is stored as.
pub const UNCONSTRAINED_SCALE: i8 = 10;

/// The Arrow type of unconstrained `numeric`.
pub fn unconstrained() -> DataType {
    DataType::Decimal128(UNCONSTRAINED_PRECISION, UNCONSTRAINED_SCALE)
}

/// Whether `dt` is the type unconstrained `numeric` is stored as.
pub fn is_unconstrained(dt: &DataType) -> bool {
    dt == &unconstrained()
}

/// A decimal as Postgres prints it: every digit of its scale, except that unconstrained
/// `numeric` (stored at scale 10) drops the padding zeros, as Postgres prints the value
/// that was written. The wire protocol's encoder and casts to text share it.
pub fn numeric_text(value: i128, scale: i8) -> String {
    if let Some(special) = super::numeric_special::special(value) {
        return special.text().to_string();
    }
    let digits = value.unsigned_abs().to_string();
    let places = scale.max(0) as usize;
    let mut text = if places == 0 {
        digits
    } else if digits.len() > places {
        format!("{}.{}", &digits[..digits.len() - places], &digits[digits.len() - places..])
    } else {
        format!("0.{digits:0>places$}")
    };
    if scale == UNCONSTRAINED_SCALE && text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    if value < 0 {
        text.insert(0, '-');
    }
    text
}

/// `22003`: the wire layer maps Arrow's arithmetic-overflow errors to it.
pub fn out_of_range(what: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::ArrowError(
        Box::new(ArrowError::ArithmeticOverflow(format!("numeric out of range: {what}"))),
        None,
    )
}

/// `10^exp` in 256 bits (`exp` ≤ 76).
pub fn pow10(exp: u32) -> i256 {
    i256::from_i128(10).wrapping_pow(exp)
}

/// `value / divisor`, rounded half away from zero as Postgres rounds numeric results.
pub fn div_round(value: i256, divisor: i256) -> Option<i256> {
    let quotient = value.checked_div(divisor)?;
    let remainder = value.checked_rem(divisor)?;
    // |2 * remainder| >= |divisor| rounds away from zero.
    let twice = remainder.checked_mul(i256::from_i128(2))?.checked_abs()?;
    if twice >= divisor.checked_abs()? {
        let away = if value.is_negative() != divisor.is_negative() { i256::MINUS_ONE } else { i256::ONE };
        quotient.checked_add(away)
    } else {
        Some(quotient)
    }
}

/// Moves `value` from scale `from` to scale `to` (rounding half away from zero when the
/// scale shrinks), checks it has at most `precision` digits, and narrows it to `i128`.
pub fn fit(value: i256, from: i8, precision: u8, to: i8) -> Result<i128, DataFusionError> {
    let type_name = || format!("numeric({precision},{to})");
    let shift = i32::from(to) - i32::from(from);
    let scaled = if shift >= 0 {
        value.checked_mul(pow10(shift.unsigned_abs()))
    } else {
        div_round(value, pow10(shift.unsigned_abs()))
    };
    let scaled = scaled.ok_or_else(|| out_of_range(format!("the result does not fit {}", type_name())))?;
    let limit = pow10(u32::from(precision));
    match scaled.checked_abs() {
        Some(abs) if abs < limit => scaled.to_i128().ok_or_else(|| out_of_range(type_name())),
        _ => Err(out_of_range(format!("the result does not fit {}", type_name()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_away_from_zero() {
        let r =
            |v: i128, d: i128| div_round(i256::from_i128(v), i256::from_i128(d)).unwrap().to_i128().unwrap();
        assert_eq!(r(5, 2), 3);
        assert_eq!(r(-5, 2), -3);
        assert_eq!(r(4, 3), 1);
        assert_eq!(r(-4, 3), -1);
        assert_eq!(r(7, -2), -4);
    }

    #[test]
    fn fit_checks_precision_and_rescales() {
        assert_eq!(fit(i256::from_i128(12345), 2, 38, 1).unwrap(), 1235);
        assert_eq!(fit(i256::from_i128(12), 0, 38, 10).unwrap(), 120_000_000_000);
        assert!(fit(i256::from_i128(1000), 0, 3, 0).is_err());
        assert!(fit(pow10(40), 0, 38, 0).is_err());
        assert!(fit(pow10(37), 0, 38, 10).is_err());
    }
}
