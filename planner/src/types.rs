//! SQL type names to Weir column types.
//!
//! Type modifiers are kept, not parsed and dropped: `varchar(20)`'s length, `numeric(10,2)`'s
//! precision and scale, and the fractional-seconds precision of `timestamp(0)`,
//! `timestamptz(3)`, `time(2)` and `interval(1)`, which the column's store rounds every
//! value to ([`weir_plan::time_precision`]). A precision above 6 is reduced to 6 with the
//! warning Postgres gives ([`precision_warning`]).

use datafusion::sql::sqlparser::ast::{CharacterLength, DataType, ExactNumberInfo, TimezoneInfo};
use weir_plan::catalog::ColumnType;
use weir_plan::time_precision::MAX_TIME_PRECISION;

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
        D::Time(p, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            ColumnType::Time { precision: time_precision(*p) }
        }
        D::Timestamp(p, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            ColumnType::Timestamp { precision: time_precision(*p) }
        }
        D::Timestamp(p, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => {
            ColumnType::Timestamptz { precision: time_precision(*p) }
        }
        // Interval fields (`interval day to second`) are accepted and not kept.
        D::Interval { precision, .. } => ColumnType::Interval { precision: time_precision(*precision) },
        D::JSON => ColumnType::Json,
        D::JSONB => ColumnType::Jsonb,
        D::Custom(name, modifiers) if modifiers.is_empty() => {
            match name.to_string().to_ascii_lowercase().as_str() {
                "timestamptz" => ColumnType::Timestamptz { precision: None },
                "float" => ColumnType::Float8,
                "serial" | "bigserial" | "smallserial" => {
                    return Err(SqlError::unsupported(format!("type {name}"))
                        .with_hint("declare the column as integer/bigint and supply the values"))
                }
                _ => return Err(unknown_type(&name.to_string())),
            }
        }
        D::Custom(name, modifiers) if name.to_string().eq_ignore_ascii_case("timestamptz") => {
            match modifiers.as_slice() {
                [p] => ColumnType::Timestamptz { precision: time_precision(Some(parse_precision(p)?)) },
                _ => return Err(SqlError::syntax(format!("invalid type modifier for {data_type}"))),
            }
        }
        D::Char(_) | D::Character(_) => {
            return Err(SqlError::unsupported(format!("type {data_type}")).with_hint("use varchar(n) or text"))
        }
        other => return Err(SqlError::unsupported(format!("type {other}"))),
    })
}

/// A declared precision as stored: above [`MAX_TIME_PRECISION`] it is reduced to it, as
/// Postgres does (with the warning of [`precision_warning`]).
fn time_precision(declared: Option<u64>) -> Option<u8> {
    declared.map(|p| u8::try_from(p).unwrap_or(u8::MAX).min(MAX_TIME_PRECISION))
}

fn parse_precision(text: &str) -> SqlResult<u64> {
    text.trim().parse::<u64>().map_err(|_| SqlError::syntax(format!("syntax error at or near \"{text}\"")))
}

/// The warning Postgres gives for a time type declared with more than six digits, e.g.
/// `TIMESTAMP(7) precision reduced to maximum allowed, 6`; `None` for any other type.
pub fn precision_warning(data_type: &DataType) -> Option<String> {
    use DataType as D;
    let (name, declared) = match data_type {
        D::Time(Some(p), _) => (format!("TIME({p})"), *p),
        D::Timestamp(Some(p), TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => {
            (format!("TIMESTAMP({p}) WITH TIME ZONE"), *p)
        }
        D::Timestamp(Some(p), _) => (format!("TIMESTAMP({p})"), *p),
        D::Interval { precision: Some(p), .. } => (format!("INTERVAL({p})"), *p),
        D::Custom(name, modifiers) if name.to_string().eq_ignore_ascii_case("timestamptz") => {
            let p = modifiers.first().and_then(|m| m.trim().parse::<u64>().ok())?;
            (format!("TIMESTAMP({p}) WITH TIME ZONE"), p)
        }
        _ => return None,
    };
    (declared > u64::from(MAX_TIME_PRECISION))
        .then(|| format!("{name} precision reduced to maximum allowed, {MAX_TIME_PRECISION}"))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{parse_sql, WeirStatement};
    use datafusion::sql::sqlparser::ast::Statement;

    /// The declared type of the one column of `CREATE TABLE t (c <type>)`.
    fn declared(type_sql: &str) -> DataType {
        let sql = format!("CREATE TABLE t (c {type_sql})");
        let WeirStatement::Sql(stmt) = parse_sql(&sql).unwrap().remove(0) else { panic!("not SQL") };
        let Statement::CreateTable(create) = *stmt else { panic!("not CREATE TABLE") };
        create.columns[0].data_type.clone()
    }

    #[test]
    fn time_precisions_are_kept() {
        for (sql, expected) in [
            ("timestamp(0)", ColumnType::Timestamp { precision: Some(0) }),
            ("timestamp", ColumnType::Timestamp { precision: None }),
            ("timestamp(3) with time zone", ColumnType::Timestamptz { precision: Some(3) }),
            ("timestamptz(3)", ColumnType::Timestamptz { precision: Some(3) }),
            ("timestamptz", ColumnType::Timestamptz { precision: None }),
            ("time(2)", ColumnType::Time { precision: Some(2) }),
            ("time(2) without time zone", ColumnType::Time { precision: Some(2) }),
            ("interval(1)", ColumnType::Interval { precision: Some(1) }),
            ("interval", ColumnType::Interval { precision: None }),
        ] {
            assert_eq!(column_type_from_sql(&declared(sql)).unwrap(), expected, "{sql}");
            assert_eq!(precision_warning(&declared(sql)), None, "{sql}");
        }
    }

    #[test]
    fn a_precision_above_six_is_six_with_postgres_warning() {
        for (sql, expected, warning) in [
            ("timestamp(7)", ColumnType::Timestamp { precision: Some(6) }, "TIMESTAMP(7)"),
            ("timestamptz(7)", ColumnType::Timestamptz { precision: Some(6) }, "TIMESTAMP(7) WITH TIME ZONE"),
            ("time(9)", ColumnType::Time { precision: Some(6) }, "TIME(9)"),
            ("interval(7)", ColumnType::Interval { precision: Some(6) }, "INTERVAL(7)"),
        ] {
            assert_eq!(column_type_from_sql(&declared(sql)).unwrap(), expected, "{sql}");
            assert_eq!(
                precision_warning(&declared(sql)),
                Some(format!("{warning} precision reduced to maximum allowed, 6")),
            );
        }
    }
}
