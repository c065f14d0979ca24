//! Numeric literals in exponent form, as Postgres reads them.
//!
//! Postgres types `1.5e3` and `9e27` as `numeric` 1500 and 9000000000000000000000000000.
//! Weir plans decimal literals as `numeric` too (DataFusion's `parse_float_as_decimal`),
//! but DataFusion gives an exponent that moves the point right a negative decimal scale,
//! which Arrow computes with but Postgres clients cannot be shown. Writing such a literal
//! out in plain digits with a trailing point (`1000.`) first gives it scale 0, still a
//! `numeric` (`ceil(1e3)` is the numeric `1000`, not a `bigint` or a `double precision`).

/// `digits[.digits]e[+-]exp` whose value is whole, written as plain digits and a point;
/// `None` for every other literal (left as it is: DataFusion reads a fraction's exponent
/// right).
pub(super) fn plain_digits(literal: &str) -> Option<String> {
    let (mantissa, exponent) = literal.split_once(['e', 'E'])?;
    let exponent: i64 = exponent.parse().ok()?;
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fraction_digits = i64::try_from(frac_part.len()).ok()?;
    // The value is digits * 10^(exponent - fraction_digits).
    let zeros = exponent - fraction_digits;
    if !(0..=1000).contains(&zeros) {
        return None;
    }
    let digits = format!("{int_part}{frac_part}");
    let trimmed = digits.trim_start_matches('0');
    let mut out = if trimmed.is_empty() { "0".to_string() } else { trimmed.to_string() };
    if out != "0" {
        out.extend(std::iter::repeat_n('0', zeros as usize));
    }
    out.push('.');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::plain_digits;

    #[test]
    fn exponents_that_leave_no_fraction_become_plain_digits() {
        assert_eq!(plain_digits("9e27").as_deref(), Some("9000000000000000000000000000."));
        assert_eq!(plain_digits("1.5e3").as_deref(), Some("1500."));
        assert_eq!(plain_digits("1.5E+1").as_deref(), Some("15."));
        assert_eq!(plain_digits("0e5").as_deref(), Some("0."));
        assert_eq!(plain_digits("1.25e1"), None);
        assert_eq!(plain_digits("1.5e-3"), None);
        assert_eq!(plain_digits("42"), None);
        assert_eq!(plain_digits("1.5"), None);
    }
}
