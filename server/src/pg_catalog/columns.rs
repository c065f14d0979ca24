//! How a catalog table is declared and turned into Arrow data.
//!
//! Every system table is a static list of `(column name, Postgres type)` plus a function that
//! produces rows of loosely typed [`Value`]s. Declaring the Postgres type (not the Arrow type)
//! keeps one place deciding both the Arrow layout and the wire type clients see: `oid`,
//! `name` and `"char"` have no Arrow type of their own, so they travel as Int64 / Utf8 with
//! a field metadata tag the wire encoder reads. The same declarations also describe the
//! system tables themselves in `pg_class` / `pg_attribute`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Float32Builder, Int16Builder, Int32Builder, Int64Builder,
    ListBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion::error::{DataFusionError, Result};

use super::types;

/// Field metadata key the wire encoder reads to tell `name`/`oid`/`"char"` from text and
/// int8 (it must equal `wire::encode::PG_TYPE_METADATA_KEY`).
pub const PG_TYPE_METADATA_KEY: &str = "weir.pg_type";

/// The Postgres type of a catalog column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    Oid,
    Name,
    /// The one-byte `"char"` type (`relkind`, `contype`, ...).
    Char,
    Text,
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Timestamptz,
    /// `text[]`, and the array types clients only ever read as text (`aclitem[]`, `name[]`).
    TextArray,
    /// `oid[]` and `oidvector`.
    OidArray,
    /// `int2[]` and `int2vector`.
    Int2Array,
    /// `"char"[]`.
    CharArray,
}

impl Col {
    pub fn data_type(self) -> DataType {
        match self {
            Col::Oid | Col::Int8 => DataType::Int64,
            Col::Name | Col::Char | Col::Text => DataType::Utf8,
            Col::Bool => DataType::Boolean,
            Col::Int2 => DataType::Int16,
            Col::Int4 => DataType::Int32,
            Col::Float4 => DataType::Float32,
            Col::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            Col::TextArray | Col::CharArray => list_of(DataType::Utf8),
            Col::OidArray => list_of(DataType::Int64),
            Col::Int2Array => list_of(DataType::Int16),
        }
    }

    /// The wire type tag for types Arrow cannot express.
    fn metadata(self) -> Option<&'static str> {
        match self {
            Col::Oid => Some("oid"),
            Col::Name => Some("name"),
            Col::Char => Some("char"),
            _ => None,
        }
    }

    /// The type's oid, for `pg_attribute.atttypid` of the system tables.
    pub fn type_oid(self) -> i64 {
        match self {
            Col::Oid => types::OID,
            Col::Name => types::NAME,
            Col::Char => types::CHAR,
            Col::Text => types::TEXT,
            Col::Bool => types::BOOL,
            Col::Int2 => types::INT2,
            Col::Int4 => types::INT4,
            Col::Int8 => types::INT8,
            Col::Float4 => types::FLOAT4,
            Col::Timestamptz => types::TIMESTAMPTZ,
            Col::TextArray => types::TEXT_ARRAY,
            Col::OidArray => types::OID_ARRAY,
            Col::Int2Array => types::INT2_ARRAY,
            Col::CharArray => types::CHAR_ARRAY,
        }
    }

    pub fn field(self, name: &str) -> Field {
        let field = Field::new(name, self.data_type(), true);
        match self.metadata() {
            Some(tag) => {
                field.with_metadata(HashMap::from([(PG_TYPE_METADATA_KEY.to_string(), tag.to_string())]))
            }
            None => field,
        }
    }
}

fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(item, true)))
}

/// Column declarations of one table.
pub type Columns = &'static [(&'static str, Col)];

pub fn schema(columns: Columns) -> SchemaRef {
    Arc::new(Schema::new(columns.iter().map(|(name, col)| col.field(name)).collect::<Vec<_>>()))
}

/// One cell of a catalog row, converted to the column's Arrow type when the batch is built.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<Value>),
}

pub type Row = Vec<Value>;

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v.into())
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::List(v.into_iter().map(Into::into).collect())
    }
}

/// `row![a, b, ...]`: a catalog row from anything convertible to [`Value`].
macro_rules! row {
    ($($v:expr),* $(,)?) => {
        vec![$($crate::pg_catalog::columns::Value::from($v)),*]
    };
}
pub(crate) use row;

/// Builds the batch for `table` from `rows`. A row that does not match the declaration is
/// a bug in this module, reported as an internal error rather than a panic.
pub fn build_batch(table: &str, columns: Columns, rows: &[Row]) -> Result<RecordBatch> {
    if let Some(row) = rows.iter().find(|row| row.len() != columns.len()) {
        return Err(DataFusionError::Internal(format!(
            "pg_catalog: a row of {table} has {} values, the table has {} columns",
            row.len(),
            columns.len()
        )));
    }
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (index, (name, col)) in columns.iter().enumerate() {
        let cells: Vec<&Value> = rows.iter().map(|row| &row[index]).collect();
        let array = build_column(*col, &cells).map_err(|value| {
            DataFusionError::Internal(format!(
                "pg_catalog: {table}.{name} is declared {col:?} but a row holds {value:?}"
            ))
        })?;
        arrays.push(array);
    }
    Ok(RecordBatch::try_new(schema(columns), arrays)?)
}

/// `Err(value)` is the first cell that does not fit the column type.
fn build_column(col: Col, cells: &[&Value]) -> std::result::Result<ArrayRef, Value> {
    let array: ArrayRef = match col {
        Col::Oid | Col::Int8 => {
            let mut b = Int64Builder::new();
            for cell in cells {
                b.append_option(int(cell)?);
            }
            Arc::new(b.finish())
        }
        Col::Int4 => {
            let mut b = Int32Builder::new();
            for cell in cells {
                b.append_option(int(cell)?.map(|v| v as i32));
            }
            Arc::new(b.finish())
        }
        Col::Int2 => {
            let mut b = Int16Builder::new();
            for cell in cells {
                b.append_option(int(cell)?.map(|v| v as i16));
            }
            Arc::new(b.finish())
        }
        Col::Float4 => {
            let mut b = Float32Builder::new();
            for cell in cells {
                b.append_option(float(cell)?.map(|v| v as f32));
            }
            Arc::new(b.finish())
        }
        Col::Bool => {
            let mut b = BooleanBuilder::new();
            for cell in cells {
                match cell {
                    Value::Null => b.append_null(),
                    Value::Bool(v) => b.append_value(*v),
                    other => return Err((*other).clone()),
                }
            }
            Arc::new(b.finish())
        }
        Col::Name | Col::Char | Col::Text => {
            let mut b = StringBuilder::new();
            for cell in cells {
                b.append_option(text(cell)?);
            }
            Arc::new(b.finish())
        }
        Col::Timestamptz => {
            let mut b = TimestampMicrosecondBuilder::new().with_timezone("+00:00");
            for cell in cells {
                b.append_option(int(cell)?);
            }
            Arc::new(b.finish())
        }
        Col::TextArray | Col::CharArray => {
            build_list(cells, DataType::Utf8, StringBuilder::new(), |b, item| {
                b.append_option(text(item)?);
                Ok(())
            })?
        }
        Col::OidArray => build_list(cells, DataType::Int64, Int64Builder::new(), |b, item| {
            b.append_option(int(item)?);
            Ok(())
        })?,
        Col::Int2Array => build_list(cells, DataType::Int16, Int16Builder::new(), |b, item| {
            b.append_option(int(item)?.map(|v| v as i16));
            Ok(())
        })?,
    };
    Ok(array)
}

fn build_list<B: ArrayBuilder>(
    cells: &[&Value],
    item_type: DataType,
    values: B,
    mut push: impl FnMut(&mut B, &Value) -> std::result::Result<(), Value>,
) -> std::result::Result<ArrayRef, Value> {
    let mut b = ListBuilder::new(values).with_field(Field::new_list_field(item_type, true));
    for cell in cells {
        match cell {
            Value::Null => b.append(false),
            Value::List(items) => {
                for item in items {
                    push(b.values(), item)?;
                }
                b.append(true);
            }
            other => return Err((*other).clone()),
        }
    }
    Ok(Arc::new(b.finish()))
}

fn int(cell: &Value) -> std::result::Result<Option<i64>, Value> {
    match cell {
        Value::Null => Ok(None),
        Value::Int(v) => Ok(Some(*v)),
        other => Err(other.clone()),
    }
}

fn float(cell: &Value) -> std::result::Result<Option<f64>, Value> {
    match cell {
        Value::Null => Ok(None),
        Value::Float(v) => Ok(Some(*v)),
        Value::Int(v) => Ok(Some(*v as f64)),
        other => Err(other.clone()),
    }
}

fn text(cell: &Value) -> std::result::Result<Option<&str>, Value> {
    match cell {
        Value::Null => Ok(None),
        Value::Text(v) => Ok(Some(v.as_str())),
        other => Err(other.clone()),
    }
}
