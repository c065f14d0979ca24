//! SQL names of column types, for the messages connectors show users.
//!
//! Why here: a user declares `price BIGINT`, not `Int64`, so a message about a column's type
//! should name it the way it was declared. The connectors used to carry their own tables;
//! this is the one table. The connectors' messages differ in two ways users already see, and
//! which are kept as they are: `datagen` calls character columns `text` and names the types
//! it cannot generate by their Arrow names ([`datagen_type_name`]); `nexmark` writes the names
//! in upper case, as its documentation lists its columns.

use arrow::datatypes::{DataType, TimeUnit};

/// The SQL name of `data_type` (`bigint`, `varchar`, `numeric(10,2)`, `timestamptz`...), or
/// its Arrow name when SQL has none.
pub fn sql_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal128(p, s) => format!("numeric({p},{s})"),
        DataType::Boolean => "boolean".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "varchar".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(_)) => "timestamptz".into(),
        DataType::Binary => "bytea".into(),
        other => other.to_string(),
    }
}

/// The name `datagen`'s messages give `data_type`: its SQL name, with `text` for character
/// columns, for the types it can generate; the Arrow name for every other type.
pub fn datagen_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Utf8 => "text".into(),
        DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(..)
        | DataType::Boolean
        | DataType::Date32
        | DataType::Timestamp(TimeUnit::Microsecond, _) => sql_type_name(data_type),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let tz = DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
        let ms = DataType::Timestamp(TimeUnit::Millisecond, None);
        let cases = [
            (DataType::Int8, "tinyint", "Int8"),
            (DataType::Int16, "smallint", "smallint"),
            (DataType::Int32, "integer", "integer"),
            (DataType::Int64, "bigint", "bigint"),
            (DataType::Float32, "real", "real"),
            (DataType::Float64, "double precision", "double precision"),
            (DataType::Decimal128(10, 2), "numeric(10,2)", "numeric(10,2)"),
            (DataType::Boolean, "boolean", "boolean"),
            (DataType::Utf8, "varchar", "text"),
            (DataType::LargeUtf8, "varchar", "LargeUtf8"),
            (DataType::Date32, "date", "date"),
            (DataType::Timestamp(TimeUnit::Microsecond, None), "timestamp", "timestamp"),
            (tz, "timestamptz", "timestamptz"),
            (ms, "timestamp", "Timestamp(ms)"),
            (DataType::Binary, "bytea", "Binary"),
            (DataType::UInt8, "UInt8", "UInt8"),
        ];
        for (data_type, sql, datagen) in cases {
            assert_eq!(sql_type_name(&data_type), sql, "{data_type}");
            assert_eq!(datagen_type_name(&data_type), datagen, "{data_type}");
        }
    }
}
