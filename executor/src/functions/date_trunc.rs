//! DataFusion's `date_trunc`, with the values under NULLs zeroed first.
//!
//! DataFusion truncates every slot of a timestamp array, NULL slots included, with
//! unchecked arithmetic: a NULL slot holding an extreme value (which some kernels leave
//! there) overflows, which panics in a debug build and ends the client's session. The SQL
//! fuzzer found it (`UPDATE t SET c = c WHERE date_trunc('hour', ts) IS NOT NULL`).
//!
//! Truncation to a week or longer of Weir's microsecond timestamps is computed here, on
//! the calendar: DataFusion's goes through nanoseconds, which end in 1677 and 2262, so
//! `date_trunc('month', ts)` of a row in the year 1600 was `22008`. Postgres' centuries and
//! millennia start in a year ending in 01 (`date_trunc('century', '2000-05-04')` is
//! `1901-01-01`).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use arrow::datatypes::{
    ArrowTimestampType, DataType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

#[derive(Debug)]
struct DateTrunc {
    inner: Arc<dyn ScalarUDFImpl>,
}

udf_identity!(DateTrunc, |_function| ());

pub fn date_trunc() -> ScalarUDF {
    ScalarUDF::new_from_impl(DateTrunc {
        inner: Arc::clone(datafusion::functions::datetime::date_trunc().inner()),
    })
}

/// `array` with 0 under its NULLs (the values are the same).
fn zero_nulls<T: ArrowTimestampType>(array: &ArrayRef) -> ArrayRef {
    let timestamps = array.as_primitive::<T>();
    let cleaned: PrimitiveArray<T> = timestamps.iter().collect();
    Arc::new(cleaned.with_timezone_opt(timestamps.timezone().map(str::to_string)))
}

impl ScalarUDFImpl for DateTrunc {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.inner.return_type(args)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<arrow::datatypes::FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let Some(out) = coarse_microseconds(&args)? {
            return Ok(out);
        }
        for arg in args.args.iter_mut() {
            let ColumnarValue::Array(array) = arg else { continue };
            if array.null_count() == 0 {
                continue;
            }
            let cleaned = match array.data_type() {
                DataType::Timestamp(TimeUnit::Second, _) => zero_nulls::<TimestampSecondType>(array),
                DataType::Timestamp(TimeUnit::Millisecond, _) => {
                    zero_nulls::<TimestampMillisecondType>(array)
                }
                DataType::Timestamp(TimeUnit::Microsecond, _) => {
                    zero_nulls::<TimestampMicrosecondType>(array)
                }
                DataType::Timestamp(TimeUnit::Nanosecond, _) => zero_nulls::<TimestampNanosecondType>(array),
                _ => continue,
            };
            *arg = ColumnarValue::Array(cleaned);
        }
        self.inner.invoke_with_args(args)
    }
}

/// `date_trunc` to a week or longer of a microsecond timestamp, on the calendar (see the
/// module docs); `None` for other arguments, which DataFusion truncates.
fn coarse_microseconds(args: &ScalarFunctionArgs) -> Result<Option<ColumnarValue>> {
    let [ColumnarValue::Scalar(unit), value] = args.args.as_slice() else { return Ok(None) };
    let Some(unit) = unit.try_as_str().flatten().map(str::to_ascii_lowercase) else { return Ok(None) };
    if !matches!(unit.as_str(), "week" | "month" | "quarter" | "year" | "decade" | "century" | "millennium") {
        return Ok(None);
    }
    if !matches!(value.data_type(), DataType::Timestamp(TimeUnit::Microsecond, _)) {
        return Ok(None);
    }
    let scalar = matches!(value, ColumnarValue::Scalar(_));
    let array = value.to_array(if scalar { 1 } else { args.number_rows })?;
    let timestamps = array.as_primitive::<TimestampMicrosecondType>();
    let out: PrimitiveArray<TimestampMicrosecondType> =
        timestamps.iter().map(|v| v.map(|v| truncate(v, &unit)).transpose()).collect::<Result<_>>()?;
    let out: ArrayRef = Arc::new(out.with_timezone_opt(timestamps.timezone().map(str::to_string)));
    super::columnar(out, scalar).map(Some)
}

/// `micros` (since the epoch, UTC) truncated to the start of its `unit`.
fn truncate(micros: i64, unit: &str) -> Result<i64> {
    use chrono::{Datelike, NaiveDate};
    let out_of_range = || {
        datafusion::error::DataFusionError::from(crate::error::ExecError::DatetimeOverflow(
            "timestamp out of range".into(),
        ))
    };
    let date = chrono::DateTime::from_timestamp_micros(micros).ok_or_else(out_of_range)?.date_naive();
    let first_of = |year: i32, month: u32| NaiveDate::from_ymd_opt(year, month, 1);
    // Postgres' decades, centuries and millennia (years before 1 count down from 0).
    let start_year = |span: i32, offset: i32| {
        let year = date.year();
        match year > 0 {
            true => (year - offset).div_euclid(span) * span + offset,
            false => -(((-year + span - 1 + offset).div_euclid(span)) * span) + offset,
        }
    };
    let start = match unit {
        "week" => date.checked_sub_days(chrono::Days::new(u64::from(date.weekday().num_days_from_monday()))),
        "month" => first_of(date.year(), date.month()),
        "quarter" => first_of(date.year(), (date.month() - 1) / 3 * 3 + 1),
        "year" => first_of(date.year(), 1),
        "decade" => first_of(date.year().div_euclid(10) * 10, 1),
        "century" => first_of(start_year(100, 1), 1),
        _ => first_of(start_year(1000, 1), 1),
    };
    let start = start.and_then(|d| d.and_hms_opt(0, 0, 0)).ok_or_else(out_of_range)?;
    Ok(start.and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests {
    #[test]
    fn coarse_units_follow_the_calendar_beyond_nanoseconds() {
        let micros = |text: &str| {
            let t = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap();
            t.and_utc().timestamp_micros()
        };
        // Expected values from PostgreSQL 15.
        let cases = [
            ("1600-06-04 10:00:00", "week", "1600-05-29 00:00:00"),
            ("2300-05-04 10:00:00", "quarter", "2300-04-01 00:00:00"),
            ("2300-05-04 10:00:00", "decade", "2300-01-01 00:00:00"),
            ("2300-05-04 10:00:00", "century", "2201-01-01 00:00:00"),
            ("2300-05-04 10:00:00", "millennium", "2001-01-01 00:00:00"),
            ("2000-05-04 10:00:00", "century", "1901-01-01 00:00:00"),
            ("2000-05-04 00:00:00", "millennium", "1001-01-01 00:00:00"),
            ("1999-05-04 00:00:00", "decade", "1990-01-01 00:00:00"),
            ("1600-06-04 10:00:00", "month", "1600-06-01 00:00:00"),
            ("2300-05-04 10:00:00", "year", "2300-01-01 00:00:00"),
        ];
        for (value, unit, expected) in cases {
            assert_eq!(
                truncate(micros(value), unit).unwrap(),
                micros(expected),
                "date_trunc('{unit}', '{value}')"
            );
        }
    }

    use super::*;
    use arrow::array::TimestampMicrosecondArray;
    use arrow::buffer::{NullBuffer, ScalarBuffer};
    use arrow::datatypes::Field;
    use datafusion::common::config::ConfigOptions;
    use datafusion::common::ScalarValue;

    #[test]
    fn an_extreme_value_under_a_null_does_not_overflow() {
        let values = ScalarBuffer::from(vec![i64::MIN, 3_700_000_000]);
        let array = TimestampMicrosecondArray::new(values, Some(NullBuffer::from(vec![false, true])));
        let field = |name: &str, t: DataType| Arc::new(Field::new(name, t, true));
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        let args = ScalarFunctionArgs {
            args: vec![
                ColumnarValue::Scalar(ScalarValue::Utf8(Some("hour".into()))),
                ColumnarValue::Array(Arc::new(array)),
            ],
            arg_fields: vec![field("g", DataType::Utf8), field("t", ts.clone())],
            number_rows: 2,
            return_field: field("r", ts),
            config_options: Arc::new(ConfigOptions::default()),
        };
        let Ok(ColumnarValue::Array(out)) = date_trunc().invoke_with_args(args) else { panic!("an array") };
        let out = out.as_primitive::<TimestampMicrosecondType>();
        assert!(out.is_null(0));
        assert_eq!(out.value(1), 3_600_000_000);
    }
}
