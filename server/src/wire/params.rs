//! Bind parameters (text or binary, as the client chose) to DataFusion scalars of the type
//! the planner inferred for each `$n`.
//!
//! Binary values are client input: moving a DATE or TIMESTAMP from the Postgres epoch
//! (2000-01-01) to the Unix epoch is checked arithmetic, and a value that does not fit (or a
//! TIME outside a day) is `22008 datetime_field_overflow`, never a wrapped value.

use arrow::datatypes::{DataType, IntervalMonthDayNano, TimeUnit};
use bytes::Bytes;
use datafusion::common::ScalarValue;
use pgwire::api::Type;
use weir_planner::{sqlstate, SqlError, SqlResult};

const PG_EPOCH_DAYS: i32 = 10_957;
const PG_EPOCH_MICROS: i64 = PG_EPOCH_DAYS as i64 * MICROS_PER_DAY;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Why a parameter value was refused: its SQLSTATE and what is wrong.
struct BadParam(&'static str, String);

impl From<String> for BadParam {
    fn from(why: String) -> Self {
        BadParam(sqlstate::INVALID_TEXT_REPRESENTATION, why)
    }
}

fn out_of_range(what: &str) -> BadParam {
    BadParam(sqlstate::DATETIME_FIELD_OVERFLOW, format!("{what} out of range"))
}

/// The Arrow type a client-declared parameter type stands for.
pub fn arrow_type_of(ty: &Type) -> Option<DataType> {
    Some(match *ty {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 | Type::OID => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::NUMERIC => DataType::Decimal128(38, 10),
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR | Type::JSON | Type::JSONB => DataType::Utf8,
        Type::BYTEA => DataType::Binary,
        Type::DATE => DataType::Date32,
        Type::TIME => DataType::Time64(TimeUnit::Microsecond),
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        Type::INTERVAL => DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano),
        _ => return None,
    })
}

/// Decodes parameter `index` (0-based) into a scalar of `target` (or text when unknown).
pub fn decode_param(
    index: usize,
    value: Option<&Bytes>,
    binary: bool,
    wire_type: Option<&Type>,
    target: Option<&DataType>,
) -> SqlResult<ScalarValue> {
    let target = target.cloned().or_else(|| wire_type.and_then(arrow_type_of)).unwrap_or(DataType::Utf8);
    let Some(bytes) = value else {
        return ScalarValue::try_from(&target).map_err(|e| SqlError::internal(e.to_string()));
    };
    let bad = |why: String| {
        SqlError::new(
            sqlstate::INVALID_TEXT_REPRESENTATION,
            format!("invalid value for parameter ${}: {why}", index + 1),
        )
    };
    let scalar = if binary {
        decode_binary(bytes, wire_type.cloned().unwrap_or(Type::UNKNOWN), &target).map_err(
            |BadParam(code, why)| {
                SqlError::new(code, format!("invalid value for parameter ${}: {why}", index + 1))
            },
        )?
    } else {
        let text = std::str::from_utf8(bytes).map_err(|e| bad(e.to_string()))?;
        match &target {
            DataType::Boolean => ScalarValue::Boolean(Some(
                crate::copy_in::parse_bool(text)
                    .ok_or_else(|| bad(format!("\"{text}\" is not a boolean")))?,
            )),
            DataType::Binary => ScalarValue::Binary(Some(
                crate::copy_in::decode_bytea(text).ok_or_else(|| bad(format!("\"{text}\" is not bytea")))?,
            )),
            // Postgres' date and time input, as casts read it.
            DataType::Date32 | DataType::Timestamp(..) => {
                let strings = arrow::array::StringArray::from(vec![text]);
                let column = weir_executor::functions::text_to_timestamp::read_column(&strings, &target)
                    .map_err(|e| {
                        SqlError::new(
                            e.sqlstate().unwrap_or(sqlstate::INVALID_TEXT_REPRESENTATION),
                            format!("invalid value for parameter ${}: {e}", index + 1),
                        )
                    })?;
                ScalarValue::try_from_array(&column, 0).map_err(|e| SqlError::internal(e.to_string()))?
            }
            _ => ScalarValue::Utf8(Some(text.to_string())),
        }
    };
    if scalar.data_type() == target {
        return Ok(scalar);
    }
    // A date or time that does not fit the target (a far DATE as a TIMESTAMP) is out of
    // range, not malformed.
    let temporal = scalar.data_type().is_temporal();
    match scalar.cast_to(&target) {
        Ok(cast) if !cast.is_null() => Ok(cast),
        Ok(_) | Err(_) if temporal => Err(SqlError::new(
            sqlstate::DATETIME_FIELD_OVERFLOW,
            format!("invalid value for parameter ${}: {scalar} is out of range for {target}", index + 1),
        )),
        Ok(_) => Err(bad(format!("cannot convert {scalar} to {target}"))),
        Err(e) => Err(bad(format!("cannot convert to {target}: {e}"))),
    }
}

fn decode_binary(bytes: &[u8], ty: Type, target: &DataType) -> Result<ScalarValue, BadParam> {
    let fixed = |n: usize| -> Result<&[u8], BadParam> {
        if bytes.len() == n {
            Ok(bytes)
        } else {
            Err(format!("expected {n} bytes for binary {}, got {}", ty.name(), bytes.len()).into())
        }
    };
    let be8 = |b: &[u8]| -> [u8; 8] { b.try_into().unwrap_or([0; 8]) };
    let be4 = |b: &[u8]| -> [u8; 4] { b.try_into().unwrap_or([0; 4]) };
    let timestamp = |b: &[u8]| -> Result<i64, BadParam> {
        i64::from_be_bytes(be8(b)).checked_add(PG_EPOCH_MICROS).ok_or_else(|| out_of_range("timestamp"))
    };
    Ok(match ty {
        Type::BOOL => ScalarValue::Boolean(Some(fixed(1)?[0] != 0)),
        Type::INT2 => ScalarValue::Int16(Some(i16::from_be_bytes([fixed(2)?[0], bytes[1]]))),
        Type::INT4 => ScalarValue::Int32(Some(i32::from_be_bytes(be4(fixed(4)?)))),
        Type::INT8 => ScalarValue::Int64(Some(i64::from_be_bytes(be8(fixed(8)?)))),
        Type::OID => ScalarValue::Int64(Some(u32::from_be_bytes(be4(fixed(4)?)) as i64)),
        Type::FLOAT4 => ScalarValue::Float32(Some(f32::from_be_bytes(be4(fixed(4)?)))),
        Type::FLOAT8 => ScalarValue::Float64(Some(f64::from_be_bytes(be8(fixed(8)?)))),
        Type::BYTEA => ScalarValue::Binary(Some(bytes.to_vec())),
        Type::DATE => ScalarValue::Date32(Some(
            i32::from_be_bytes(be4(fixed(4)?))
                .checked_add(PG_EPOCH_DAYS)
                .ok_or_else(|| out_of_range("date"))?,
        )),
        Type::TIME => {
            let micros = i64::from_be_bytes(be8(fixed(8)?));
            if !(0..=MICROS_PER_DAY).contains(&micros) {
                return Err(out_of_range("time"));
            }
            ScalarValue::Time64Microsecond(Some(micros))
        }
        Type::TIMESTAMP => ScalarValue::TimestampMicrosecond(Some(timestamp(fixed(8)?)?), None),
        Type::TIMESTAMPTZ => {
            ScalarValue::TimestampMicrosecond(Some(timestamp(fixed(8)?)?), Some("+00:00".into()))
        }
        // Microseconds, days and months, as Postgres sends an interval.
        Type::INTERVAL => {
            let b = fixed(16)?;
            let micros = i64::from_be_bytes(be8(&b[..8]));
            let days = i32::from_be_bytes(be4(&b[8..12]));
            let months = i32::from_be_bytes(be4(&b[12..]));
            let nanos = micros.checked_mul(1000).ok_or_else(|| out_of_range("interval"))?;
            ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(months, days, nanos)))
        }
        Type::NUMERIC => {
            return Err(BadParam(
                sqlstate::FEATURE_NOT_SUPPORTED,
                "binary numeric parameters are not supported; send numeric as text".into(),
            ))
        }
        _ if matches!(target, DataType::Binary) => ScalarValue::Binary(Some(bytes.to_vec())),
        _ => ScalarValue::Utf8(Some(String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())?)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_dates_and_timestamps_read_as_postgres_reads_them() {
        let text = |t: &'static str, target: DataType| {
            decode_param(0, Some(&Bytes::from_static(t.as_bytes())), false, None, Some(&target))
        };
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        // 2020-01-01 12:00:00, without its seconds.
        assert_eq!(
            text("2020-01-01 12:00", ts.clone()).ok(),
            Some(ScalarValue::TimestampMicrosecond(Some(1_577_880_000_000_000), None))
        );
        assert_eq!(text("1970-01-02", DataType::Date32).ok(), Some(ScalarValue::Date32(Some(1))));
        assert_eq!(text("2021-02-29", ts).map_err(|e| e.code).err(), Some("22008"));
        assert_eq!(text("noon", DataType::Date32).map_err(|e| e.code).err(), Some("22P02"));
    }

    #[test]
    fn a_binary_interval_is_microseconds_days_and_months() {
        let interval = DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano);
        let wire = |micros: i64, days: i32, months: i32| {
            let mut bytes = micros.to_be_bytes().to_vec();
            bytes.extend(days.to_be_bytes());
            bytes.extend(months.to_be_bytes());
            decode_param(0, Some(&Bytes::from(bytes)), true, Some(&Type::INTERVAL), Some(&interval))
        };
        assert_eq!(
            wire(-150_000, 1, 14).ok(),
            Some(ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(14, 1, -150_000_000))))
        );
        assert_eq!(wire(i64::MAX, 0, 0).map_err(|e| e.code).err(), Some("22008"));
        let short =
            decode_param(0, Some(&Bytes::from(vec![0u8; 8])), true, Some(&Type::INTERVAL), Some(&interval));
        assert_eq!(short.map_err(|e| e.code).err(), Some("22P02"));
    }

    #[test]
    fn text_and_binary_parameters() {
        let v =
            decode_param(0, Some(&Bytes::from_static(b"42")), false, None, Some(&DataType::Int64)).unwrap();
        assert_eq!(v, ScalarValue::Int64(Some(42)));
        let v = decode_param(
            0,
            Some(&Bytes::from(7i32.to_be_bytes().to_vec())),
            true,
            Some(&Type::INT4),
            Some(&DataType::Int64),
        )
        .unwrap();
        assert_eq!(v, ScalarValue::Int64(Some(7)));
        let err = decode_param(1, Some(&Bytes::from_static(b"x")), false, None, Some(&DataType::Int32))
            .unwrap_err();
        assert_eq!(err.code, "22P02");
        assert_eq!(
            decode_param(0, None, false, None, Some(&DataType::Utf8)).unwrap(),
            ScalarValue::Utf8(None)
        );
    }

    fn binary(ty: Type, bytes: Vec<u8>, target: DataType) -> SqlResult<ScalarValue> {
        decode_param(0, Some(&Bytes::from(bytes)), true, Some(&ty), Some(&target))
    }

    #[test]
    fn binary_dates_and_timestamps_near_the_limits_are_range_errors() {
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        for micros in [i64::MAX, i64::MAX - PG_EPOCH_MICROS + 1] {
            let err = binary(Type::TIMESTAMP, micros.to_be_bytes().to_vec(), ts.clone()).unwrap_err();
            assert_eq!(err.code, "22008", "{}", err.message);
            let err = binary(Type::TIMESTAMPTZ, micros.to_be_bytes().to_vec(), ts.clone()).unwrap_err();
            assert_eq!(err.code, "22008", "{}", err.message);
        }
        let last = i64::MAX - PG_EPOCH_MICROS;
        assert_eq!(
            binary(Type::TIMESTAMP, last.to_be_bytes().to_vec(), ts.clone()).unwrap(),
            ScalarValue::TimestampMicrosecond(Some(i64::MAX), None)
        );
        // The most negative timestamp moves away from the limit: still representable.
        assert!(binary(Type::TIMESTAMP, i64::MIN.to_be_bytes().to_vec(), ts.clone()).is_ok());
        let err = binary(Type::DATE, i32::MAX.to_be_bytes().to_vec(), DataType::Date32).unwrap_err();
        assert_eq!(err.code, "22008", "{}", err.message);
        // A date that fits a DATE but not a TIMESTAMP.
        let err = binary(Type::DATE, (i32::MAX - PG_EPOCH_DAYS).to_be_bytes().to_vec(), ts).unwrap_err();
        assert_eq!(err.code, "22008", "{}", err.message);
        let err = binary(Type::TIME, (-1i64).to_be_bytes().to_vec(), DataType::Time64(TimeUnit::Microsecond))
            .unwrap_err();
        assert_eq!(err.code, "22008", "{}", err.message);
    }
}
