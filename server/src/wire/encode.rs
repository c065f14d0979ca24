//! Arrow values to Postgres wire values.
//!
//! Each Arrow type maps to one Postgres type OID, and each value is written in the text
//! format Postgres itself prints (`t`/`f`, `2026-01-01 10:00:00`, `1 day 02:00:00`, shortest
//! round-trip floats) or in Postgres' binary format, as the client asked per column.

use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use bytes::{BufMut, BytesMut};
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::api::Type;
use pgwire::messages::data::DataRow;
use weir_executor::functions::interval_text::format_interval;
use weir_planner::SqlError;

/// Arrow field metadata key carrying the Postgres type name when Arrow's type is ambiguous
/// (`varchar` vs `text` vs `json` are all Utf8).
pub const PG_TYPE_METADATA_KEY: &str = "weir.pg_type";

/// Arrow field metadata key carrying a result column's Postgres type modifier (`atttypmod`,
/// e.g. 0 for a `timestamp(0)` column), sent in RowDescription; -1 without it.
pub const PG_TYPMOD_METADATA_KEY: &str = "weir.pg_typmod";

/// Days between 1970-01-01 (Arrow's epoch) and 2000-01-01 (Postgres' epoch).
const PG_EPOCH_DAYS: i32 = 10_957;
const PG_EPOCH_MICROS: i64 = PG_EPOCH_DAYS as i64 * MICROS_PER_DAY;
const MICROS_PER_DAY: i64 = 86_400_000_000;

pub fn pg_type(field: &Field) -> Type {
    if let Some(name) = field.metadata().get(PG_TYPE_METADATA_KEY) {
        match name.as_str() {
            "varchar" => return Type::VARCHAR,
            "json" => return Type::JSON,
            "jsonb" => return Type::JSONB,
            "name" => return Type::NAME,
            "char" => return Type::CHAR,
            "oid" => return Type::OID,
            _ => {}
        }
    }
    pg_type_of(field.data_type())
}

pub fn pg_type_of(data_type: &DataType) -> Type {
    match data_type {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Type::INT2,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        DataType::Int64 | DataType::UInt32 => Type::INT8,
        DataType::UInt64 | DataType::Decimal128(..) | DataType::Decimal256(..) => Type::NUMERIC,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Type::TEXT,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            Type::BYTEA
        }
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::Time32(_) | DataType::Time64(_) => Type::TIME,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        DataType::Interval(_) | DataType::Duration(_) => Type::INTERVAL,
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            match pg_type_of(f.data_type()) {
                Type::BOOL => Type::BOOL_ARRAY,
                Type::INT2 => Type::INT2_ARRAY,
                Type::INT4 => Type::INT4_ARRAY,
                Type::INT8 => Type::INT8_ARRAY,
                Type::FLOAT4 => Type::FLOAT4_ARRAY,
                Type::FLOAT8 => Type::FLOAT8_ARRAY,
                Type::NUMERIC => Type::NUMERIC_ARRAY,
                _ => Type::TEXT_ARRAY,
            }
        }
        _ => Type::TEXT,
    }
}

/// Row description for a result schema with the client's requested formats.
pub fn field_infos(schema: &Schema, format: &Format) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let ty = pg_type(f);
            let format = if binary_supported(&ty) { format.format_for(i) } else { FieldFormat::Text };
            let typmod = f.metadata().get(PG_TYPMOD_METADATA_KEY).and_then(|m| m.parse::<i32>().ok());
            FieldInfo::new(weir_planner::result_column_name(f.name()).to_string(), None, None, ty, format)
                .with_type_modifier(typmod.unwrap_or(-1))
        })
        .collect()
}

/// Arrays go out as text; every scalar type has a binary encoding below.
fn binary_supported(ty: &Type) -> bool {
    !ty.name().starts_with('_')
}

/// Encodes every row of `batch` as a `DataRow`, each column in its field's format.
pub fn encode_batch(batch: &RecordBatch, fields: &[FieldInfo]) -> Result<Vec<DataRow>, SqlError> {
    let columns: Vec<ArrayRef> = batch.columns().iter().map(normalize).collect::<Result<_, _>>()?;
    let mut rows = Vec::with_capacity(batch.num_rows());
    let mut buf = BytesMut::with_capacity(64 * batch.num_rows().max(1));
    for row in 0..batch.num_rows() {
        for (col, field) in columns.iter().zip(fields) {
            if col.is_null(row) {
                buf.put_i32(-1);
                continue;
            }
            let len_at = buf.len();
            buf.put_i32(0);
            match field.format() {
                FieldFormat::Binary if *field.datatype() == Type::OID => {
                    let oid =
                        col.as_primitive_opt::<arrow::datatypes::Int64Type>().map_or(0, |a| a.value(row));
                    buf.put_u32(oid as u32)
                }
                FieldFormat::Binary if *field.datatype() == Type::CHAR => {
                    let byte =
                        col.as_string_opt::<i32>().and_then(|a| a.value(row).bytes().next()).unwrap_or(0);
                    buf.put_u8(byte)
                }
                FieldFormat::Binary => write_binary(col, row, &mut buf)?,
                FieldFormat::Text => write_text(col, row, &mut buf)?,
            }
            let len = (buf.len() - len_at - 4) as i32;
            buf[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
        }
        rows.push(DataRow::new(buf.split(), columns.len() as i16));
    }
    Ok(rows)
}

/// Casts the Arrow types with several physical layouts to one layout per Postgres type.
fn normalize(col: &ArrayRef) -> Result<ArrayRef, SqlError> {
    let target = match col.data_type() {
        DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => DataType::Utf8,
        DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => DataType::Binary,
        DataType::Int8 | DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 => DataType::Int64,
        DataType::UInt64 => DataType::Decimal128(20, 0),
        DataType::Float16 => DataType::Float32,
        DataType::Date64 => DataType::Date32,
        DataType::Time32(_) | DataType::Time64(TimeUnit::Nanosecond) => {
            DataType::Time64(TimeUnit::Microsecond)
        }
        DataType::Timestamp(unit, tz) if *unit != TimeUnit::Microsecond => {
            DataType::Timestamp(TimeUnit::Microsecond, tz.clone())
        }
        DataType::Interval(_) | DataType::Duration(_) => {
            DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano)
        }
        DataType::Decimal256(..) => DataType::Utf8,
        DataType::Null => DataType::Utf8,
        _ => return Ok(col.clone()),
    };
    if col.data_type() == &target {
        return Ok(col.clone());
    }
    arrow::compute::cast(col, &target)
        .map_err(|e| SqlError::internal(format!("cannot encode result column: {e}")))
}

fn write_text(col: &ArrayRef, row: usize, buf: &mut BytesMut) -> Result<(), SqlError> {
    use std::fmt::Write;
    let mut w = BufWriter(buf);
    match col.data_type() {
        DataType::Boolean => w.0.put_slice(if col.as_boolean().value(row) { b"t" } else { b"f" }),
        DataType::Int16 => {
            let _ = write!(w, "{}", col.as_primitive::<arrow::datatypes::Int16Type>().value(row));
        }
        DataType::Int32 => {
            let _ = write!(w, "{}", col.as_primitive::<arrow::datatypes::Int32Type>().value(row));
        }
        DataType::Int64 => {
            let _ = write!(w, "{}", col.as_primitive::<arrow::datatypes::Int64Type>().value(row));
        }
        DataType::Float32 => w.0.put_slice(
            format_float(col.as_primitive::<arrow::datatypes::Float32Type>().value(row) as f64, true)
                .as_bytes(),
        ),
        DataType::Float64 => w.0.put_slice(
            format_float(col.as_primitive::<arrow::datatypes::Float64Type>().value(row), false).as_bytes(),
        ),
        DataType::Decimal128(_, scale) => {
            let v = col.as_primitive::<arrow::datatypes::Decimal128Type>().value(row);
            w.0.put_slice(format_decimal(v, *scale).as_bytes())
        }
        DataType::Utf8 => w.0.put_slice(col.as_string::<i32>().value(row).as_bytes()),
        DataType::Binary => {
            w.0.put_slice(b"\\x");
            for b in col.as_binary::<i32>().value(row) {
                write!(w, "{b:02x}").ok();
            }
        }
        DataType::Date32 => w
            .0
            .put_slice(format_date(col.as_primitive::<arrow::datatypes::Date32Type>().value(row)).as_bytes()),
        DataType::Time64(_) => {
            let micros = col.as_primitive::<arrow::datatypes::Time64MicrosecondType>().value(row);
            w.0.put_slice(format_time(micros).as_bytes())
        }
        DataType::Timestamp(_, tz) => {
            let micros = col.as_primitive::<arrow::datatypes::TimestampMicrosecondType>().value(row);
            w.0.put_slice(format_timestamp(micros, tz.is_some()).as_bytes())
        }
        DataType::Interval(_) => {
            let v = col.as_primitive::<arrow::datatypes::IntervalMonthDayNanoType>().value(row);
            w.0.put_slice(format_interval(v).as_bytes())
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
            let values = match col.data_type() {
                DataType::List(_) => col.as_list::<i32>().value(row),
                DataType::LargeList(_) => col.as_list::<i64>().value(row),
                _ => col.as_fixed_size_list().value(row),
            };
            let values = normalize(&values)?;
            w.0.put_u8(b'{');
            for i in 0..values.len() {
                if i > 0 {
                    w.0.put_u8(b',');
                }
                if values.is_null(i) {
                    w.0.put_slice(b"NULL");
                } else {
                    let mut item = BytesMut::new();
                    write_text(&values, i, &mut item)?;
                    write_array_element(&item, w.0);
                }
            }
            w.0.put_u8(b'}');
        }
        _ => {
            let formatter = arrow::util::display::ArrayFormatter::try_new(col.as_ref(), &Default::default())
                .map_err(|e| SqlError::internal(format!("cannot format value: {e}")))?;
            write!(w, "{}", formatter.value(row)).ok();
        }
    }
    Ok(())
}

fn write_array_element(item: &[u8], out: &mut BytesMut) {
    let needs_quotes = item.is_empty()
        || item.eq_ignore_ascii_case(b"null")
        || item.iter().any(|b| matches!(b, b',' | b'{' | b'}' | b'"' | b'\\' | b' ' | b'\t' | b'\n'));
    if !needs_quotes {
        out.put_slice(item);
        return;
    }
    out.put_u8(b'"');
    for &b in item {
        if b == b'"' || b == b'\\' {
            out.put_u8(b'\\');
        }
        out.put_u8(b);
    }
    out.put_u8(b'"');
}

fn write_binary(col: &ArrayRef, row: usize, buf: &mut BytesMut) -> Result<(), SqlError> {
    match col.data_type() {
        DataType::Boolean => buf.put_u8(col.as_boolean().value(row) as u8),
        DataType::Int16 => buf.put_i16(col.as_primitive::<arrow::datatypes::Int16Type>().value(row)),
        DataType::Int32 => buf.put_i32(col.as_primitive::<arrow::datatypes::Int32Type>().value(row)),
        DataType::Int64 => buf.put_i64(col.as_primitive::<arrow::datatypes::Int64Type>().value(row)),
        DataType::Float32 => buf.put_f32(col.as_primitive::<arrow::datatypes::Float32Type>().value(row)),
        DataType::Float64 => buf.put_f64(col.as_primitive::<arrow::datatypes::Float64Type>().value(row)),
        DataType::Decimal128(_, scale) => {
            let v = col.as_primitive::<arrow::datatypes::Decimal128Type>().value(row);
            write_numeric_binary(v, *scale, buf)
        }
        DataType::Utf8 => buf.put_slice(col.as_string::<i32>().value(row).as_bytes()),
        DataType::Binary => buf.put_slice(col.as_binary::<i32>().value(row)),
        DataType::Date32 => {
            buf.put_i32(col.as_primitive::<arrow::datatypes::Date32Type>().value(row) - PG_EPOCH_DAYS)
        }
        DataType::Time64(_) => {
            buf.put_i64(col.as_primitive::<arrow::datatypes::Time64MicrosecondType>().value(row))
        }
        DataType::Timestamp(..) => buf.put_i64(
            col.as_primitive::<arrow::datatypes::TimestampMicrosecondType>().value(row) - PG_EPOCH_MICROS,
        ),
        DataType::Interval(_) => {
            let v = col.as_primitive::<arrow::datatypes::IntervalMonthDayNanoType>().value(row);
            buf.put_i64(v.nanoseconds / 1000);
            buf.put_i32(v.days);
            buf.put_i32(v.months);
        }
        other => {
            return Err(SqlError::unsupported(format!("binary output of type {other}"))
                .with_hint("request text format for this column"))
        }
    }
    Ok(())
}

/// Postgres' binary `numeric`: base-10000 digits with weight, sign and display scale.
fn write_numeric_binary(value: i128, scale: i8, buf: &mut BytesMut) {
    use weir_executor::functions::numeric_special::{special, Special};
    // NaN and the infinities: no digits, and their own sign words.
    if let Some(special) = special(value) {
        let sign: u16 = match special {
            Special::NaN => 0xC000,
            Special::PosInf => 0xD000,
            Special::NegInf => 0xF000,
        };
        buf.put_i16(0);
        buf.put_i16(0);
        buf.put_u16(sign);
        buf.put_i16(0);
        return;
    }
    let negative = value < 0;
    let scale = scale.max(0) as u32;
    let digits_str = value.unsigned_abs().to_string();
    let (int_part, frac_part) = if digits_str.len() as u32 > scale {
        let split = digits_str.len() - scale as usize;
        (digits_str[..split].to_string(), digits_str[split..].to_string())
    } else {
        ("0".to_string(), format!("{:0>width$}", digits_str, width = scale as usize))
    };
    // Group the integer part in 4s from the right, the fraction in 4s from the left.
    let int_trimmed = int_part.trim_start_matches('0');
    let pad_int = (4 - int_trimmed.len() % 4) % 4;
    let int_padded = format!("{}{}", "0".repeat(pad_int), int_trimmed);
    let pad_frac = (4 - frac_part.len() % 4) % 4;
    let frac_padded = format!("{}{}", frac_part, "0".repeat(pad_frac));
    let mut groups: Vec<i16> = Vec::new();
    for chunk in int_padded.as_bytes().chunks(4).chain(frac_padded.as_bytes().chunks(4)) {
        let s = std::str::from_utf8(chunk).unwrap_or("0");
        groups.push(s.parse().unwrap_or(0));
    }
    let int_groups = int_padded.len() as i16 / 4;
    let mut weight = int_groups - 1;
    // Strip leading zero groups (adjusting weight) and trailing zero groups.
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    buf.put_i16(groups.len() as i16);
    buf.put_i16(weight);
    buf.put_u16(if negative && !groups.is_empty() { 0x4000 } else { 0 });
    buf.put_u16(scale as u16);
    for g in groups {
        buf.put_i16(g);
    }
}

struct BufWriter<'a>(&'a mut BytesMut);

impl std::fmt::Write for BufWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

/// Shortest round-trip float text, with Postgres' exponent style for very large/small values.
pub fn format_float(v: f64, single: bool) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let abs = v.abs();
    let exp_threshold = if single { 1e6 } else { 1e15 };
    if abs != 0.0 && (abs >= exp_threshold || abs < 1e-4) {
        let s = if single { format!("{:e}", v as f32) } else { format!("{v:e}") };
        // Rust prints 1e20 / 1.5e-5; Postgres prints 1e+20 / 1.5e-05.
        if let Some((mantissa, exp)) = s.split_once('e') {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            return format!("{mantissa}e{sign}{digits:0>2}");
        }
        return s;
    }
    if single {
        format!("{}", v as f32)
    } else {
        format!("{v}")
    }
}

pub fn format_decimal(value: i128, scale: i8) -> String {
    weir_executor::functions::numeric::numeric_text(value, scale)
}

pub fn format_date(days: i32) -> String {
    weir_executor::functions::datetime_text::date_text(days).unwrap_or_else(|| days.to_string())
}

pub fn format_time(micros: i64) -> String {
    weir_executor::functions::datetime_text::time_text(micros).unwrap_or_else(|| micros.to_string())
}

pub fn format_timestamp(micros: i64, with_tz: bool) -> String {
    weir_executor::functions::datetime_text::timestamp_text(micros, with_tz)
        .unwrap_or_else(|| micros.to_string())
}

/// A schema's field with Weir's Postgres type annotation.
pub fn annotate(field: Field, pg_type_name: &str) -> Field {
    let mut metadata = field.metadata().clone();
    metadata.insert(PG_TYPE_METADATA_KEY.to_string(), pg_type_name.to_string());
    field.with_metadata(metadata)
}

/// A result field with the Postgres type modifier RowDescription reports for it.
pub fn with_type_modifier(field: Field, typmod: i32) -> Field {
    let mut metadata = field.metadata().clone();
    metadata.insert(PG_TYPMOD_METADATA_KEY.to_string(), typmod.to_string());
    field.with_metadata(metadata)
}

pub fn schema_ref(fields: Vec<Field>) -> Arc<Schema> {
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::IntervalMonthDayNano;

    #[test]
    fn floats_print_like_postgres() {
        assert_eq!(format_float(12.5, false), "12.5");
        assert_eq!(format_float(1e20, false), "1e+20");
        assert_eq!(format_float(0.000015, false), "1.5e-05");
        assert_eq!(format_float(f64::NAN, false), "NaN");
        assert_eq!(format_float(0.1, false), "0.1");
    }

    #[test]
    fn temporal_text() {
        assert_eq!(format_date(20454), "2026-01-01");
        assert_eq!(format_timestamp(1_767_261_600_000_000, false), "2026-01-01 10:00:00");
        assert_eq!(format_timestamp(1_767_261_600_500_000, true), "2026-01-01 10:00:00.5+00");
        assert_eq!(format_time(3_723_000_000), "01:02:03");
        let iv = IntervalMonthDayNano { months: 14, days: 3, nanoseconds: 14_706_000_000_000 };
        assert_eq!(format_interval(iv), "1 year 2 mons 3 days 04:05:06");
    }

    #[test]
    fn decimals() {
        assert_eq!(format_decimal(12345, 2), "123.45");
        assert_eq!(format_decimal(-5, 2), "-0.05");
        assert_eq!(format_decimal(125_000_000_000, 10), "12.5");
    }

    #[test]
    fn numeric_binary_layout() {
        let mut buf = BytesMut::new();
        write_numeric_binary(12345678, 2, &mut buf); // 123456.78
        assert_eq!(&buf[..], &[0, 3, 0, 1, 0, 0, 0, 2, 0, 12, 13, 128, 30, 120]);
    }
}
