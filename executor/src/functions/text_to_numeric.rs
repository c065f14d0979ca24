//! Text cast to `numeric` reads what Postgres reads: scientific notation (`'1e2'`,
//! `'-2.5E-3'`), surrounding blanks, and a value rounded half away from zero to the type's
//! scale. Arrow's cast refused exponents (`'1e2'::numeric` was an error), and its messages
//! were not Postgres'. [`TextToNumeric`] plans every cast of text to a decimal, written or
//! added by coercion (an `INSERT` of a string into a `numeric` column), as `text_to_numeric`.
//!
//! `NaN`, `Infinity` and `-Infinity` (also `inf`, any case) are read as Postgres reads them
//! (see [`super::numeric_special`]); an infinity fits unconstrained `numeric` only.
//!
//! Errors: `22P02 invalid input syntax for type numeric`, `22003` when the value does not fit
//! the type. `TRY_CAST` (not Postgres syntax) keeps Arrow's cast.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Decimal128Array};
use arrow::datatypes::{i256, DataType};
use arrow::datatypes::{Field, FieldRef};
use arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::DFSchema;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use super::numeric::{fit, pow10};

/// `text_to_numeric(text, precision, scale)`: the text as a `numeric(precision, scale)`
/// (both constants).
#[derive(Debug, PartialEq, Eq, Hash)]
struct TextToNumericFn {
    signature: Signature,
}

pub fn text_to_numeric() -> ScalarUDF {
    ScalarUDF::new_from_impl(TextToNumericFn { signature: Signature::any(3, Volatility::Immutable) })
}

/// The decimal type named by the constant precision and scale arguments.
fn target_type(args: &[Option<&ScalarValue>]) -> Result<DataType> {
    let constant = |i: usize| match args.get(i).copied().flatten() {
        Some(ScalarValue::Int64(Some(v))) => Ok(*v),
        other => {
            Err(DataFusionError::Plan(format!("text_to_numeric needs constant integers, not {other:?}")))
        }
    };
    let precision = u8::try_from(constant(1)?).map_err(|e| DataFusionError::Plan(e.to_string()))?;
    let scale = i8::try_from(constant(2)?).map_err(|e| DataFusionError::Plan(e.to_string()))?;
    Ok(DataType::Decimal128(precision, scale))
}

impl ScalarUDFImpl for TextToNumericFn {
    fn name(&self) -> &str {
        "text_to_numeric"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Err(DataFusionError::Internal("text_to_numeric's type follows from its arguments".into()))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(self.name(), target_type(args.scalar_arguments)?, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let DataType::Decimal128(precision, scale) = args.return_field.data_type().clone() else {
            return Err(DataFusionError::Internal("text_to_numeric to a non-decimal".into()));
        };
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let input = args.args[0].to_array(if scalar { 1 } else { args.number_rows })?;
        let text = arrow::compute::cast(&input, &DataType::Utf8)?;
        let values = text
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(|v| parse_numeric(v, precision, scale)).transpose())
            .collect::<Result<Decimal128Array>>()?
            .with_precision_and_scale(precision, scale)?;
        let out: Arc<dyn Array> = Arc::new(values);
        super::columnar(out, scalar)
    }
}

fn invalid(text: &str) -> DataFusionError {
    DataFusionError::ArrowError(
        Box::new(ArrowError::ParseError(format!("invalid input syntax for type numeric: \"{text}\""))),
        None,
    )
}

/// `text` as a decimal of `precision` and `scale`, rounded half away from zero.
pub fn parse_numeric(text: &str, precision: u8, scale: i8) -> Result<i128> {
    let trimmed = text.trim();
    if let Some(special) = super::numeric_special::parse_special(trimmed) {
        return super::numeric_special::rescale(special.stored(), &DataType::Utf8, precision, scale);
    }
    let (negative, body) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((w, f)) => (w, f),
        None => (mantissa, ""),
    };
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + fraction.len() == 0 || !digits_only(whole) || !digits_only(fraction) {
        return Err(invalid(text));
    }
    let exponent: i64 = match exponent {
        None => 0,
        Some(e) => {
            let digits = e.trim_start_matches(['+', '-']);
            if digits.is_empty() || e.len() - digits.len() > 1 || !digits_only(digits) {
                return Err(invalid(text));
            }
            // Beyond this, the value is either 0 or out of range at any scale Weir has.
            e.parse::<i64>().unwrap_or(if e.starts_with('-') { -1000 } else { 1000 }).clamp(-1000, 1000)
        }
    };
    // The digits as one integer, leading zeros dropped; its scale is the fraction's length
    // less the exponent.
    let significant = format!("{whole}{fraction}");
    let significant = significant.trim_start_matches('0');
    let type_name = format!("numeric({precision},{scale})");
    let overflow = || {
        DataFusionError::ArrowError(
            Box::new(ArrowError::ArithmeticOverflow(format!(
                "numeric field overflow: \"{}\" does not fit {type_name}",
                trimmed
            ))),
            None,
        )
    };
    if significant.is_empty() {
        return Ok(0);
    }
    if significant.len() > 76 {
        return Err(overflow());
    }
    let mut value = i256::ZERO;
    for b in significant.bytes() {
        value = value
            .checked_mul(i256::from_i128(10))
            .and_then(|v| v.checked_add(i256::from_i128(i128::from(b - b'0'))))
            .ok_or_else(overflow)?;
    }
    // value × 10^(exponent - fraction digits), brought to `scale`.
    let shift = exponent - fraction.len() as i64 + i64::from(scale);
    let scaled = if shift >= 0 {
        if shift > 76 {
            return Err(overflow());
        }
        value.checked_mul(pow10(shift as u32)).ok_or_else(overflow)?
    } else if -shift > 76 {
        // Far below the scale's last digit: rounds to zero.
        i256::ZERO
    } else {
        let rounded = fit(value, (-shift).min(i64::from(i8::MAX)) as i8, 76, 0).map_err(|_| overflow())?;
        i256::from_i128(rounded)
    };
    let scaled = if negative { scaled.checked_neg().ok_or_else(overflow)? } else { scaled };
    fit(scaled, scale, precision, scale).map_err(|_| overflow())
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Plans every cast of text to a decimal as `text_to_numeric`.
#[derive(Debug, Default)]
pub struct TextToNumeric;

impl AnalyzerRule for TextToNumeric {
    fn name(&self) -> &str {
        "weir_text_to_numeric"
    }
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        super::rewrite_plan_expressions(plan, rewrite_expr)
    }
}

fn rewrite_expr(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let text = |inner: &Expr| inner.get_type(schema).is_ok_and(|t| is_text(&t));
    let constant = |v: i64| Expr::Literal(ScalarValue::Int64(Some(v)), None);
    match e {
        Expr::Cast(Cast { expr, field }) if text(&expr) => match field.data_type() {
            DataType::Decimal128(precision, scale) => {
                let args = vec![*expr, constant(i64::from(*precision)), constant(i64::from(*scale))];
                Ok(Transformed::yes(text_to_numeric().call(args)))
            }
            _ => Ok(Transformed::no(Expr::Cast(Cast { expr, field }))),
        },
        other => Ok(Transformed::no(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, precision: u8, scale: i8) -> std::result::Result<i128, String> {
        parse_numeric(text, precision, scale).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_plain_and_scientific_notation_as_postgres_does() {
        assert_eq!(parse("1e2", 38, 10), Ok(100 * 10i128.pow(10)));
        assert_eq!(parse(" 1.5E3 ", 38, 0), Ok(1500));
        assert_eq!(parse("-2E-2", 10, 2), Ok(-2));
        assert_eq!(parse("+0.5e+1", 10, 0), Ok(5));
        assert_eq!(parse(".5", 10, 1), Ok(5));
        assert_eq!(parse("5.", 10, 0), Ok(5));
        assert_eq!(parse("000123.4500", 10, 2), Ok(12345));
        // Rounded half away from zero to the scale.
        assert_eq!(parse("2.555", 4, 2), Ok(256));
        assert_eq!(parse("-2.555", 4, 2), Ok(-256));
        assert_eq!(parse("1e-300", 38, 10), Ok(0));
        assert_eq!(parse("0e999999999999", 38, 10), Ok(0));
    }

    #[test]
    fn bad_text_and_values_that_do_not_fit_are_errors() {
        for bad in ["", " ", "abc", "1e", "1e+", "--1", "1.2.3", "1e2e3", "e5", ".", "1 2", "0x10"] {
            let e = parse(bad, 38, 10).expect_err(bad);
            assert!(e.contains("invalid input syntax for type numeric"), "{bad}: {e}");
        }
        for big in ["1e40", "123.45", "1e999999"] {
            let e = parse(big, 4, 2).expect_err(big);
            assert!(e.contains("numeric field overflow"), "{big}: {e}");
        }
        use super::super::numeric_special::{NAN, NEG_INF, POS_INF};
        assert_eq!(parse(" NaN ", 38, 10), Ok(NAN));
        assert_eq!(parse("nan", 5, 2), Ok(NAN));
        assert_eq!(parse("Infinity", 38, 10), Ok(POS_INF));
        assert_eq!(parse("-inf", 38, 10), Ok(NEG_INF));
        let e = parse("+infinity", 10, 2).expect_err("infinity in numeric(10,2)");
        assert!(e.contains("cannot hold an infinite value"), "{e}");
        let e = parse("-NaN", 38, 10).expect_err("-NaN");
        assert!(e.contains("invalid input syntax"), "{e}");
    }
}
