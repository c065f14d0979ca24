//! SQL type names to Weir column types.

use datafusion::sql::sqlparser::ast::{CharacterLength, DataType, ExactNumberInfo, TimezoneInfo};
use weir_plan::catalog::ColumnType;

use crate::error::{sqlstate, SqlError, SqlResult};

pub fn column_type_from_sql(data_type: &DataType) -> SqlResult<ColumnType> {
    use DataType as D;
    Ok(match data_type {
        D::Bool | D::Boolean => ColumnType::Boolean,
        D::SmallInt(_) | D::Int2(_) => ColumnType::Int2,
        D::Int(_) | D::Integer(_) | D::Int4(_) => ColumnType::Int4,
        D::BigInt(_) | D::Int8(_) => ColumnType::Int8,
        D::Real | D::Float4 => ColumnType::Float4,
        D::Float(ExactNumberInfo::Precision(p)) if *p <= 24 => ColumnType::Float4,
        D::DoublePrecision | D::Float8 | D::Float(_) | D::Double(ExactNumberInfo::None) => ColumnType::Float8,
        D::Numeric(info) | D::Decimal(info) | D::Dec(info) => numeric(info)?,
        D::Text | D::String(None) => ColumnType::Text,
        D::Varchar(len) | D::CharacterVarying(len) | D::CharVarying(len) => {
            ColumnType::Varchar { length: char_length(len)? }
        }
        D::Bytea => ColumnType::Bytea,
        D::Date => ColumnType::Date,
        D::Time(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => ColumnType::Time,
        D::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => ColumnType::Timestamp,
        D::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => ColumnType::Timestamptz,
        D::Interval { .. } => ColumnType::Interval,
        D::JSON => ColumnType::Json,
        D::JSONB => ColumnType::Jsonb,
        D::Custom(name, modifiers) if modifiers.is_empty() => {
            match name.to_string().to_ascii_lowercase().as_str() {
                "timestamptz" => ColumnType::Timestamptz,
                "float" => ColumnType::Float8,
                "serial" | "bigserial" | "smallserial" => {
                    return Err(SqlError::unsupported(format!("type {name}"))
                        .with_hint("declare the column as integer/bigint and supply the values"))
                }
                _ => return Err(unknown_type(&name.to_string())),
            }
        }
        D::Char(_) | D::Character(_) => {
            return Err(SqlError::unsupported(format!("type {data_type}")).with_hint("use varchar(n) or text"))
        }
        other => return Err(SqlError::unsupported(format!("type {other}"))),
    })
}

fn unknown_type(name: &str) -> SqlError {
    SqlError::new(sqlstate::UNDEFINED_OBJECT, format!("type \"{name}\" does not exist"))
}

fn numeric(info: &ExactNumberInfo) -> SqlResult<ColumnType> {
    let out_of_range = || {
        SqlError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            "NUMERIC precision must be between 1 and 38 and scale between 0 and the precision",
        )
    };
    Ok(match info {
        ExactNumberInfo::None => ColumnType::Numeric { precision: None, scale: None },
        ExactNumberInfo::Precision(p) => {
            let p = u8::try_from(*p).ok().filter(|p| (1..=38).contains(p)).ok_or_else(out_of_range)?;
            ColumnType::Numeric { precision: Some(p), scale: Some(0) }
        }
        ExactNumberInfo::PrecisionAndScale(p, s) => {
            let p = u8::try_from(*p).ok().filter(|p| (1..=38).contains(p)).ok_or_else(out_of_range)?;
            let s = i8::try_from(*s).ok().filter(|s| *s >= 0 && (*s as u8) <= p).ok_or_else(out_of_range)?;
            ColumnType::Numeric { precision: Some(p), scale: Some(s) }
        }
    })
}

fn char_length(len: &Option<CharacterLength>) -> SqlResult<Option<u32>> {
    match len {
        None => Ok(None),
        Some(CharacterLength::IntegerLength { length, .. }) => {
            u32::try_from(*length).map(Some).map_err(|_| {
                SqlError::new(sqlstate::INVALID_PARAMETER_VALUE, "length for type varchar is too large")
            })
        }
        Some(CharacterLength::Max) => Ok(None),
    }
}
