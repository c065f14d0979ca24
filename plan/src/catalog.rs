//! Definitions of tables, views, sources and sinks as the catalog stores them.
//!
//! Weir keeps Postgres-level types (`varchar(20)`, `numeric(10,2)`, `jsonb`) in the catalog,
//! because Arrow alone cannot tell `text` from `json` or remember a declared length, and
//! clients see these names through `pg_catalog`. [`ColumnType::arrow_type`] gives the Arrow
//! type the data is stored and processed as.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, IntervalUnit, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::job_graph::JobGraph;

pub type TableId = u64;

/// Default precision/scale for `NUMERIC` without a type modifier.
pub const DEFAULT_NUMERIC_PRECISION: u8 = 38;
pub const DEFAULT_NUMERIC_SCALE: i8 = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ColumnType {
    Boolean,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// `numeric(precision, scale)`; `None` when declared without a modifier.
    Numeric {
        precision: Option<u8>,
        scale: Option<i8>,
    },
    Text,
    Varchar {
        length: Option<u32>,
    },
    Bytea,
    Date,
    /// `time(precision)`, `timestamp(precision)`, `timestamptz(precision)` and
    /// `interval(precision)`: digits kept after the second (0 to 6), `None` when declared
    /// without a modifier. Catalogs written before the precision was kept have no field
    /// and read as `None`; a column without one is written as before.
    Time {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        precision: Option<u8>,
    },
    Timestamp {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        precision: Option<u8>,
    },
    Timestamptz {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        precision: Option<u8>,
    },
    Interval {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        precision: Option<u8>,
    },
    Json,
    Jsonb,
}

impl ColumnType {
    pub fn arrow_type(&self) -> DataType {
        match self {
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Int2 => DataType::Int16,
            ColumnType::Int4 => DataType::Int32,
            ColumnType::Int8 => DataType::Int64,
            ColumnType::Float4 => DataType::Float32,
            ColumnType::Float8 => DataType::Float64,
            ColumnType::Numeric { precision, scale } => DataType::Decimal128(
                precision.unwrap_or(DEFAULT_NUMERIC_PRECISION),
                scale.unwrap_or(if precision.is_some() { 0 } else { DEFAULT_NUMERIC_SCALE }),
            ),
            ColumnType::Text | ColumnType::Varchar { .. } | ColumnType::Json | ColumnType::Jsonb => {
                DataType::Utf8
            }
            ColumnType::Bytea => DataType::Binary,
            ColumnType::Date => DataType::Date32,
            ColumnType::Time { .. } => DataType::Time64(TimeUnit::Microsecond),
            ColumnType::Timestamp { .. } => DataType::Timestamp(TimeUnit::Microsecond, None),
            ColumnType::Timestamptz { .. } => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("+00:00")))
            }
            ColumnType::Interval { .. } => DataType::Interval(IntervalUnit::MonthDayNano),
        }
    }

    /// The column type a view column of Arrow type `t` is shown as in `pg_catalog`.
    pub fn from_arrow(t: &DataType) -> ColumnType {
        match t {
            DataType::Boolean => ColumnType::Boolean,
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => ColumnType::Int2,
            DataType::Int32 | DataType::UInt16 => ColumnType::Int4,
            DataType::Int64 | DataType::UInt32 | DataType::UInt64 => ColumnType::Int8,
            DataType::Float16 | DataType::Float32 => ColumnType::Float4,
            DataType::Float64 => ColumnType::Float8,
            // The type unconstrained `numeric` is stored and computed as.
            DataType::Decimal128(DEFAULT_NUMERIC_PRECISION, DEFAULT_NUMERIC_SCALE) => {
                ColumnType::Numeric { precision: None, scale: None }
            }
            DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
                ColumnType::Numeric { precision: Some(*p), scale: Some(*s) }
            }
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => ColumnType::Bytea,
            DataType::Date32 | DataType::Date64 => ColumnType::Date,
            DataType::Time32(_) | DataType::Time64(_) => ColumnType::Time { precision: None },
            DataType::Timestamp(_, None) => ColumnType::Timestamp { precision: None },
            DataType::Timestamp(_, Some(_)) => ColumnType::Timestamptz { precision: None },
            DataType::Interval(_) => ColumnType::Interval { precision: None },
            _ => ColumnType::Text,
        }
    }

    /// The name `format_type()` prints, e.g. `character varying(20)`.
    pub fn pg_display_name(&self) -> String {
        match self {
            ColumnType::Boolean => "boolean".into(),
            ColumnType::Int2 => "smallint".into(),
            ColumnType::Int4 => "integer".into(),
            ColumnType::Int8 => "bigint".into(),
            ColumnType::Float4 => "real".into(),
            ColumnType::Float8 => "double precision".into(),
            ColumnType::Numeric { precision: Some(p), scale } => {
                format!("numeric({},{})", p, scale.unwrap_or(0))
            }
            ColumnType::Numeric { precision: None, .. } => "numeric".into(),
            ColumnType::Text => "text".into(),
            ColumnType::Varchar { length: Some(n) } => format!("character varying({n})"),
            ColumnType::Varchar { length: None } => "character varying".into(),
            ColumnType::Bytea => "bytea".into(),
            ColumnType::Date => "date".into(),
            ColumnType::Time { precision } => format!("time{} without time zone", modifier(precision)),
            ColumnType::Timestamp { precision } => {
                format!("timestamp{} without time zone", modifier(precision))
            }
            ColumnType::Timestamptz { precision } => {
                format!("timestamp{} with time zone", modifier(precision))
            }
            ColumnType::Interval { precision } => format!("interval{}", modifier(precision)),
            ColumnType::Json => "json".into(),
            ColumnType::Jsonb => "jsonb".into(),
        }
    }

    /// The declared fractional-seconds precision of a time, timestamp or interval column.
    pub fn time_precision(&self) -> Option<u8> {
        match self {
            ColumnType::Time { precision }
            | ColumnType::Timestamp { precision }
            | ColumnType::Timestamptz { precision }
            | ColumnType::Interval { precision } => *precision,
            _ => None,
        }
    }

    /// The type a value assigned to the column is cast to in SQL before the column's store
    /// fits it to the declared length or precision (`22001` for a too long `varchar(n)`,
    /// rounding for `timestamp(p)`), as a Postgres assignment does. An explicit cast to
    /// `varchar(n)` would cut the value, and DataFusion has no `timestamp(2)`.
    pub fn assignment_cast_name(&self) -> String {
        match self {
            ColumnType::Varchar { .. } => "text".into(),
            ColumnType::Time { .. } => ColumnType::Time { precision: None }.pg_display_name(),
            ColumnType::Timestamp { .. } => ColumnType::Timestamp { precision: None }.pg_display_name(),
            ColumnType::Timestamptz { .. } => ColumnType::Timestamptz { precision: None }.pg_display_name(),
            ColumnType::Interval { .. } => ColumnType::Interval { precision: None }.pg_display_name(),
            other => other.pg_display_name(),
        }
    }
}

/// `(p)` for a declared precision, nothing without one.
fn modifier(precision: &Option<u8>) -> String {
    precision.map(|p| format!("({p})")).unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub column_type: ColumnType,
    pub not_null: bool,
    /// `DEFAULT expression`, as SQL: what an INSERT that leaves the column out writes
    /// (NULL without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDef {
    pub id: TableId,
    pub schema_name: String,
    pub name: String,
    pub columns: Vec<ColumnDef>,
    /// Indexes into `columns` of the primary key, in key order. Empty: no primary key, rows
    /// are keyed by a hidden, monotonically increasing row id.
    pub primary_key: Vec<usize>,
    /// `WATERMARK FOR` in `CREATE TABLE`: the table is append-only and views read it with
    /// event time, like a source.
    #[serde(default)]
    pub watermark: Option<Watermark>,
    /// The primary key constraint's name when it is not `<table>_pkey`: a renamed table
    /// keeps the name its key was created with, as in Postgres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key_name: Option<String>,
}

impl TableDef {
    /// The Arrow schema of the table's rows. Every field is nullable at the Arrow level: NOT
    /// NULL is enforced by the storage layer with a proper constraint error instead.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.column_type.arrow_type(), true))
                .collect::<Vec<_>>(),
        ))
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn primary_key_constraint_name(&self) -> String {
        self.primary_key_name.clone().unwrap_or_else(|| format!("{}_pkey", self.name))
    }

    pub fn has_primary_key(&self) -> bool {
        !self.primary_key.is_empty()
    }
}

/// A materialized view in the catalog: its relation (columns as `pg_catalog` shows them,
/// no primary key), its definition, and the JobGraph that maintains it, so the job is
/// re-deployed as planned when the server restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewDef {
    pub relation: TableDef,
    /// Exact Arrow types of the columns (as Arrow prints them).
    pub arrow_types: Vec<String>,
    /// The `SELECT` the view was created with.
    pub definition: String,
    /// Parallelism of the view's materialize operator: its contents' partitions, which is
    /// also the parallelism of the first vertex of every view that reads this one.
    pub parallelism: usize,
    /// Tables and views this view reads, by id.
    pub depends_on: Vec<TableId>,
    pub job_graph: JobGraph,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
}

impl ViewDef {
    pub fn id(&self) -> TableId {
        self.relation.id
    }

    pub fn name(&self) -> &str {
        &self.relation.name
    }
}

/// `WATERMARK FOR column AS expr`: the event-time column of a source or table and how its
/// watermark follows the rows (typically `column - INTERVAL '4' SECOND`, a bounded
/// out-of-orderness). The catalog and the JobGraph's sources carry the same value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// Index of the event-time column.
    pub column: usize,
    /// The expression as SQL text over the source's column names, e.g. `date_time - INTERVAL '4' SECOND`.
    pub expr: String,
    /// The same expression over positional names (`_c5 - INTERVAL '4' SECOND`), as the
    /// runtime compiles it.
    pub positional_expr: String,
}

/// A source: an unpersisted stream declared with `CREATE SOURCE`, read by the views over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceDef {
    pub id: TableId,
    pub schema_name: String,
    pub name: String,
    pub columns: Vec<ColumnDef>,
    pub watermark: Option<Watermark>,
    /// `proc_time AS PROCTIME()`: index into `columns` of the processing-time column, a
    /// `timestamp with time zone` the source fills with the wall-clock time at which it
    /// emits each batch (Flink's processing-time attribute). The connector does not read it.
    #[serde(default)]
    pub proctime_column: Option<usize>,
    pub connector: String,
    /// `WITH (...)` options except `connector`, keys lower-cased.
    pub options: std::collections::BTreeMap<String, String>,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
}

impl SourceDef {
    /// The columns as a table definition (sources and tables share column handling).
    pub fn relation(&self) -> TableDef {
        TableDef {
            id: self.id,
            schema_name: self.schema_name.clone(),
            name: self.name.clone(),
            columns: self.columns.clone(),
            primary_key: Vec::new(),
            watermark: self.watermark.clone(),
            primary_key_name: None,
        }
    }

    /// The columns the connector reads: all but the processing-time column.
    pub fn connector_schema(&self) -> SchemaRef {
        connector_schema(&self.relation().arrow_schema(), self.proctime_column)
    }
}

/// A source's columns without its processing-time column (which the source fills, not the
/// connector).
pub fn connector_schema(schema: &SchemaRef, proctime_column: Option<usize>) -> SchemaRef {
    match proctime_column {
        None => schema.clone(),
        Some(column) => Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != column)
                .map(|(_, f)| f.clone())
                .collect::<Vec<_>>(),
        )),
    }
}

/// A sink: a continuous query whose rows leave Weir (`CREATE SINK ... AS SELECT ... WITH (...)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SinkDef {
    pub id: TableId,
    pub schema_name: String,
    pub name: String,
    /// The `SELECT` the sink was created with.
    pub definition: String,
    pub connector: String,
    pub options: std::collections::BTreeMap<String, String>,
    /// Tables, views and sources the sink reads, by id.
    pub depends_on: Vec<TableId>,
    pub job_graph: JobGraph,
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_types_written_before_precisions_were_kept_still_read() {
        // A column as catalogs before declared precisions stored it.
        for (json, expected) in [
            (r#"{"type":"timestamp"}"#, ColumnType::Timestamp { precision: None }),
            (r#"{"type":"timestamptz"}"#, ColumnType::Timestamptz { precision: None }),
            (r#"{"type":"time"}"#, ColumnType::Time { precision: None }),
            (r#"{"type":"interval"}"#, ColumnType::Interval { precision: None }),
        ] {
            let read: ColumnType = serde_json::from_str(json).unwrap();
            assert_eq!(read, expected);
            // Written back as before: an older Weir still reads it.
            assert_eq!(serde_json::to_string(&read).unwrap(), json);
        }
        let declared = ColumnType::Timestamptz { precision: Some(3) };
        let json = serde_json::to_string(&declared).unwrap();
        assert_eq!(json, r#"{"type":"timestamptz","precision":3}"#);
        assert_eq!(serde_json::from_str::<ColumnType>(&json).unwrap(), declared);
    }

    #[test]
    fn precisions_show_as_postgres_names_them() {
        let names = [
            (ColumnType::Timestamp { precision: Some(0) }, "timestamp(0) without time zone"),
            (ColumnType::Timestamptz { precision: Some(3) }, "timestamp(3) with time zone"),
            (ColumnType::Time { precision: Some(2) }, "time(2) without time zone"),
            (ColumnType::Interval { precision: Some(1) }, "interval(1)"),
            (ColumnType::Timestamp { precision: None }, "timestamp without time zone"),
        ];
        for (t, name) in names {
            assert_eq!(t.pg_display_name(), name);
        }
        let t = ColumnType::Timestamp { precision: Some(2) };
        assert_eq!(t.assignment_cast_name(), "timestamp without time zone");
        assert_eq!(t.time_precision(), Some(2));
    }
}
