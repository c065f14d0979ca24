//! Postgres' `to_char(value, format)` for timestamps, dates and numbers, replacing
//! DataFusion's (which reads chrono's `%`-formats and returns a Postgres pattern as
//! literal text, a wrong answer). See [`datetime`] and [`number`] for the patterns.

mod datetime;
mod number;

pub(crate) use datetime::{template, Item, DAYS, MONTHS};

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::datatypes::{
    DataType, Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
    UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::error::{DataFusionError, Result};

use crate::functions::numeric_special::Special as NumericSpecial;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

pub fn to_char() -> ScalarUDF {
    ScalarUDF::new_from_impl(ToChar { signature: Signature::any(2, Volatility::Immutable) })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ToChar {
    signature: Signature,
}

fn unsupported(what: String) -> DataFusionError {
    DataFusionError::NotImplemented(what)
}

impl ScalarUDFImpl for ToChar {
    fn name(&self) -> &str {
        "to_char"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [value, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null]
                if supported(value) =>
            {
                Ok(DataType::Utf8)
            }
            [value, _] if supported(value) => {
                Err(DataFusionError::Plan("to_char's format must be text".into()))
            }
            [value, _] => Err(unsupported(format!("to_char of {value}"))),
            _ => Err(DataFusionError::Plan("to_char takes a value and a format".into())),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if scalar { 1 } else { args.number_rows };
        let value = args.args[0].to_array(rows)?;
        let format = arrow::compute::cast(&args.args[1].to_array(rows)?, &DataType::Utf8)?;
        let format = format.as_string::<i32>();
        let mut out = StringBuilder::with_capacity(rows, rows * 16);
        for i in 0..rows {
            if value.is_null(i) || format.is_null(i) {
                out.append_null();
                continue;
            }
            out.append_value(format_one(&value, i, format.value(i))?);
        }
        let out: ArrayRef = Arc::new(out.finish());
        crate::functions::columnar(out, scalar)
    }
}

fn supported(t: &DataType) -> bool {
    t.is_numeric() || matches!(t, DataType::Timestamp(..) | DataType::Date32 | DataType::Null)
}

/// Row `i` of `value` formatted with `format`.
fn format_one(value: &ArrayRef, i: usize, format: &str) -> Result<String> {
    let number = |text: String| -> Result<String> {
        let negative = text.starts_with('-');
        let digits = text.trim_start_matches('-');
        let (integer, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        number::format(negative, integer, fraction, format).map_err(format_error)
    };
    let special = |special: number::Special| number::format_special(special, format).map_err(format_error);
    let timestamp = |micros: Option<i64>, zone: Option<&str>| -> Result<String> {
        let t = micros
            .and_then(chrono::DateTime::from_timestamp_micros)
            .ok_or_else(|| DataFusionError::Execution("timestamp out of range".into()))?
            .naive_utc();
        Ok(datetime::format(&t, format, zone))
    };
    match value.data_type() {
        DataType::Timestamp(unit, zone) => {
            let zone = zone.as_ref().map(|_| "UTC");
            let micros = match unit {
                TimeUnit::Second => {
                    value.as_primitive::<TimestampSecondType>().value(i).checked_mul(1_000_000)
                }
                TimeUnit::Millisecond => {
                    value.as_primitive::<TimestampMillisecondType>().value(i).checked_mul(1000)
                }
                TimeUnit::Microsecond => Some(value.as_primitive::<TimestampMicrosecondType>().value(i)),
                TimeUnit::Nanosecond => Some(value.as_primitive::<TimestampNanosecondType>().value(i) / 1000),
            };
            timestamp(micros, zone)
        }
        DataType::Date32 => {
            let days = i64::from(value.as_primitive::<Date32Type>().value(i));
            timestamp(days.checked_mul(86_400_000_000), None)
        }
        DataType::Int8 => number(value.as_primitive::<Int8Type>().value(i).to_string()),
        DataType::Int16 => number(value.as_primitive::<Int16Type>().value(i).to_string()),
        DataType::Int32 => number(value.as_primitive::<Int32Type>().value(i).to_string()),
        DataType::Int64 => number(value.as_primitive::<Int64Type>().value(i).to_string()),
        DataType::UInt8 => number(value.as_primitive::<UInt8Type>().value(i).to_string()),
        DataType::UInt16 => number(value.as_primitive::<UInt16Type>().value(i).to_string()),
        DataType::UInt32 => number(value.as_primitive::<UInt32Type>().value(i).to_string()),
        DataType::UInt64 => number(value.as_primitive::<UInt64Type>().value(i).to_string()),
        DataType::Float32 => float(f64::from(value.as_primitive::<Float32Type>().value(i)), number, special),
        DataType::Float64 => float(value.as_primitive::<Float64Type>().value(i), number, special),
        DataType::Decimal128(_, scale) => {
            let v = value.as_primitive::<arrow::datatypes::Decimal128Type>().value(i);
            match crate::functions::numeric_special::special(v) {
                Some(NumericSpecial::NaN) => special(number::Special::NaN),
                Some(NumericSpecial::PosInf) => special(number::Special::Infinity { negative: false }),
                Some(NumericSpecial::NegInf) => special(number::Special::Infinity { negative: true }),
                None => number(decimal_text(v, *scale)),
            }
        }
        other => Err(unsupported(format!("to_char of {other}"))),
    }
}

/// `to_char`'s error for a pattern it cannot apply.
fn format_error(e: number::FormatError) -> DataFusionError {
    match e {
        number::FormatError::Unsupported(message) => unsupported(message),
        number::FormatError::NotANumber => DataFusionError::ArrowError(
            Box::new(arrow::error::ArrowError::ParseError("\"NaN\" is not a number".into())),
            None,
        ),
    }
}

/// A float as plain decimal digits (15 significant ones, as Postgres uses for float8);
/// `NaN` and the infinities as Postgres formats them.
fn float(
    v: f64,
    number: impl Fn(String) -> Result<String>,
    special: impl Fn(number::Special) -> Result<String>,
) -> Result<String> {
    if v.is_nan() {
        return special(number::Special::NaN);
    }
    if v.is_infinite() {
        return special(number::Special::Infinity { negative: v < 0.0 });
    }
    let text = format!("{:.*e}", 14, v);
    let value: f64 = text.parse().unwrap_or(v);
    // Display never uses an exponent, and is the shortest text that reads back the same.
    number(format!("{value}"))
}

/// A Decimal128 value of `scale` as plain decimal text.
fn decimal_text(v: i128, scale: i8) -> String {
    let negative = v < 0;
    let digits = v.unsigned_abs().to_string();
    let text = match scale {
        s if s <= 0 => format!("{digits}{}", "0".repeat(s.unsigned_abs() as usize)),
        s => {
            let s = s as usize;
            let padded = format!("{digits:0>width$}", width = s + 1);
            let (int, frac) = padded.split_at(padded.len() - s);
            format!("{int}.{frac}")
        }
    };
    if negative {
        format!("-{text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_and_floats_become_plain_digits() {
        assert_eq!(decimal_text(123450, 2), "1234.50");
        assert_eq!(decimal_text(-5, 3), "-0.005");
        assert_eq!(decimal_text(12, -2), "1200");
        let as_text = |v: f64| float(v, Ok, |_| Ok(String::new())).unwrap();
        assert_eq!(as_text(12345678.9), "12345678.9");
        assert_eq!(as_text(0.1 + 0.2), "0.3");
    }
}
