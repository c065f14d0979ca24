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

/// A decimal's weight and leading digit in Postgres' base-10000 representation (digits
/// aligned on the point: `0.5` is the digit 5000 at weight -1); 0 has both 0.
fn base_10000(value: i256, scale: i8) -> (i32, i256) {
    if value == i256::ZERO {
        return (0, i256::ZERO);
    }
    let scale = i32::from(scale);
    let aligned_scale = (scale.max(0) + 3) / 4 * 4;
    let mut digits = value.wrapping_abs().wrapping_mul(pow10((aligned_scale - scale).unsigned_abs()));
    let (ten_thousand, mut weight) = (i256::from_i128(10_000), 0i32);
    while digits >= ten_thousand {
        digits = digits.wrapping_div(ten_thousand);
        weight += 1;
    }
    (weight - aligned_scale / 4, digits)
}

/// The places Postgres keeps in the quotient `a / b` (its `select_div_scale`): at least 16
/// significant digits, counted in base-10000 digits, and no fewer places than either
/// operand's display scale (`a_dscale`, `b_dscale`). `a` and `b` are decimals of scales
/// `a_scale` and `b_scale`.
pub fn postgres_div_scale(a: i256, a_scale: i8, b: i256, b_scale: i8, a_dscale: i32, b_dscale: i32) -> i32 {
    let (a_weight, a_first) = base_10000(a, a_scale);
    let (b_weight, b_first) = base_10000(b, b_scale);
    let mut quotient_weight = a_weight - b_weight;
    if a_first <= b_first {
        quotient_weight -= 1;
    }
    (16 - 4 * quotient_weight).max(a_dscale).max(b_dscale).clamp(0, 1000)
}

/// The display scale Weir gives a value of unconstrained `numeric`: the places it prints,
/// trailing zeros dropped (see [`numeric_text`]).
pub fn printed_scale(value: i256, scale: i8) -> i32 {
    let (mut places, mut v, ten) = (i32::from(scale.max(0)), value, i256::from_i128(10));
    while places > 0 && v.wrapping_rem(ten) == i256::ZERO {
        v = v.wrapping_div(ten);
        places -= 1;
    }
    places
}

/// `(a / 10^a_scale) / (b / 10^b_scale)` as Postgres computes it, rounded half away from zero
/// at the places it keeps ([`postgres_div_scale`]) or at `out_scale` when that is fewer, as a
/// decimal of `precision` and `out_scale`. `b` is not zero.
pub fn postgres_quotient(
    (a, a_scale, a_dscale): (i256, i8, i32),
    (b, b_scale, b_dscale): (i256, i8, i32),
    precision: u8,
    out_scale: i8,
) -> Result<i128, DataFusionError> {
    let places = postgres_div_scale(a, a_scale, b, b_scale, a_dscale, b_dscale).min(i32::from(out_scale));
    let too_big = || out_of_range(format!("the quotient does not fit numeric({precision},{out_scale})"));
    // a·10^(places + b_scale - a_scale) / b, the power moved to the divisor when negative.
    let shift = places + i32::from(b_scale) - i32::from(a_scale);
    let (dividend, divisor) = match shift >= 0 {
        true => (a.checked_mul(pow10(shift.unsigned_abs())).ok_or_else(too_big)?, b),
        false => (a, b.checked_mul(pow10(shift.unsigned_abs())).ok_or_else(too_big)?),
    };
    let quotient = div_round(dividend, divisor).ok_or_else(too_big)?;
    fit(quotient, places as i8, precision, out_scale)
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

    #[test]
    fn quotients_keep_the_places_postgres_keeps() {
        let q = |a: i128, sa: i8, b: i128, sb: i8, out: i8| {
            let (a, b) = (i256::from_i128(a), i256::from_i128(b));
            postgres_quotient((a, sa, i32::from(sa)), (b, sb, i32::from(sb)), 38, out).unwrap()
        };
        // Postgres: 1/3 = 0.33333333333333333333 (20 places), here at most `out`.
        assert_eq!(q(1, 0, 3, 0, 20), 33_333_333_333_333_333_333);
        assert_eq!(q(1, 0, 3, 0, 10), 3_333_333_333);
        // 1000000000/7 = 142857142.85714286 (8 places), written at 10.
        assert_eq!(q(1_000_000_000, 0, 7, 0, 10), 1_428_571_428_571_428_600);
        // -634785 / 210118.635 = -3.0210790204305296 (16 places).
        assert_eq!(q(-634_785, 0, 210_118_635, 3, 16), -30_210_790_204_305_296);
        // 12345678901234 / 7 = 1763668414462.0000 (4 places).
        assert_eq!(q(12_345_678_901_234, 0, 7, 0, 10), 17_636_684_144_620_000_000_000);
        // avg(12345.67, 2.00) = 6173.8350000000000000 (16 places), the sum's scale 2.
        assert_eq!(q(1_234_767, 2, 2, 0, 16), 61_738_350_000_000_000_000);
        assert_eq!(postgres_div_scale(i256::ZERO, 0, i256::from_i128(3), 0, 0, 0), 20);
        assert_eq!(postgres_div_scale(i256::from_i128(15), 1, i256::from_i128(2), 0, 0, 0), 20);
        assert_eq!(postgres_div_scale(i256::from_i128(30), 1, i256::from_i128(2), 0, 0, 0), 16);
        assert_eq!(printed_scale(i256::from_i128(25_000_000_000), 10), 1);
        assert_eq!(printed_scale(i256::ZERO, 10), 0);
    }
}
