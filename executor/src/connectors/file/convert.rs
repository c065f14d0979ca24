//! Declared types: which are supported, what the decoders are asked to produce, and the
//! last step from decoded columns to a batch of the declared schema.
//!
//! The decoders produce a "read schema" (every column nullable, Binary, dates and timestamps
//! read as text). Then [`conform`] reads dates and timestamps as Postgres reads them (the
//! reader of casts and `COPY`), casts what still differs (text to Binary, or a Parquet
//! file's own types) and checks NOT NULL; a value that cannot be read or cast or a NULL in a
//! NOT NULL column makes its row malformed, and the row is filtered out and reported rather
//! than failing the batch.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{cast, cast_with_options, filter, CastOptions};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use super::OptionError;
use crate::connectors::type_names::sql_type_name;
use crate::error::ExecResult;
use crate::functions::text_to_timestamp::read_column_each;

/// A column of `len` placeholder values of `data_type` (zeros, false, empty strings; no
/// NULLs, so it fits a NOT NULL column), for a column the job does not use. `None` for a type
/// without one.
pub(super) fn placeholder(data_type: &DataType, len: usize) -> Option<ArrayRef> {
    let zeros = arrow::array::ArrayData::new_null(data_type, len).into_builder().nulls(None).build().ok()?;
    Some(arrow::array::make_array(zeros))
}

/// The columns a job does not use, and their placeholders: made once per reader at its
/// batch size and sliced for each batch, so they cost no memory per batch.
#[derive(Default)]
pub(super) struct Unused {
    /// Per column: its placeholder if the job does not use it.
    columns: Vec<Option<ArrayRef>>,
}

impl Unused {
    /// Placeholders of up to `rows` rows for the columns of `schema` not in `used`.
    pub(super) fn new(schema: &Schema, used: &[usize], rows: usize) -> Self {
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, field)| (!used.contains(&i)).then(|| placeholder(field.data_type(), rows)).flatten())
            .collect();
        Unused { columns }
    }

    /// Whether the job does not use column `column`.
    pub(super) fn is_unused(&self, column: usize) -> bool {
        matches!(self.columns.get(column), Some(Some(_)))
    }

    /// `rows` placeholders for column `column` if the job does not use it.
    pub(super) fn placeholder(&self, column: usize, rows: usize) -> Option<ArrayRef> {
        let full = self.columns.get(column)?.as_ref()?;
        (rows <= full.len()).then(|| full.slice(0, rows))
    }

    /// `batch` with placeholders in the unused columns, which frees their values.
    pub(super) fn blank(&self, batch: RecordBatch) -> ExecResult<RecordBatch> {
        if self.columns.iter().all(Option::is_none) {
            return Ok(batch);
        }
        let rows = batch.num_rows();
        let columns = batch
            .columns()
            .iter()
            .enumerate()
            .map(|(i, column)| match self.placeholder(i, rows) {
                Some(blank) if blank.data_type() == column.data_type() => blank,
                _ => Arc::clone(column),
            })
            .collect();
        Ok(RecordBatch::try_new(batch.schema(), columns)?)
    }
}

/// Longest value text quoted in a row error.
const MAX_VALUE_CHARS: usize = 60;

/// Rejects declared column types the connector cannot produce.
pub(super) fn check_supported(field: &Field) -> Result<(), OptionError> {
    let ok = match field.data_type() {
        DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(_, _)
        | DataType::Boolean
        | DataType::Utf8
        | DataType::Date32
        | DataType::Binary => true,
        DataType::Timestamp(_, None) => true,
        DataType::Timestamp(_, Some(tz)) => tz.parse::<arrow::array::timezone::Tz>().is_ok(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(OptionError(format!(
            "column {}: type {} is not supported by connector 'file'",
            field.name(),
            sql_type_name(field.data_type())
        )))
    }
}

/// The type the text decoders produce for a declared type. Dates and timestamps are read
/// as text and converted by [`conform`] with the reader casts use (Arrow's decoders want
/// the seconds and refuse `Z` for a `timestamp`, where Postgres reads both).
fn read_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Binary => DataType::Utf8,
        t if read_as_time(t) => DataType::Utf8,
        other => other.clone(),
    }
}

/// A declared type whose text the shared date and time reader converts.
fn read_as_time(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Date32 | DataType::Timestamp(..))
}

/// The schema handed to arrow-csv / arrow-json: declared names and (readable) types, all
/// nullable so that a NULL in a NOT NULL column is reported per row by [`conform`].
pub(super) fn read_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> =
        schema.fields().iter().map(|f| Field::new(f.name(), read_type(f.data_type()), true)).collect();
    Arc::new(Schema::new(fields))
}

/// `value` quoted for a message, shortened if long.
pub(super) fn quote_value(value: &str) -> String {
    if value.chars().count() > MAX_VALUE_CHARS {
        let short: String = value.chars().take(MAX_VALUE_CHARS).collect();
        format!("\"{short}...\"")
    } else {
        format!("\"{value}\"")
    }
}

/// Turns decoded `columns` (one per declared column, in order) into a batch of `schema`.
/// Rows that cannot be converted are dropped and pushed to `bad` as (row index in `columns`,
/// reason), ascending. Returns `None` when no row is left.
pub(super) fn conform(
    columns: Vec<ArrayRef>,
    schema: &SchemaRef,
    bad: &mut Vec<(usize, String)>,
) -> ExecResult<Option<RecordBatch>> {
    let rows = columns.first().map_or(0, |c| c.len());
    let mut reasons: Vec<Option<String>> = Vec::new();
    let flag = |reasons: &mut Vec<Option<String>>, row: usize, reason: String| {
        if reasons.is_empty() {
            reasons.resize(rows, None);
        }
        if reasons[row].is_none() {
            reasons[row] = Some(reason);
        }
    };
    let mut out = Vec::with_capacity(columns.len());
    for (column, field) in columns.into_iter().zip(schema.fields()) {
        let column = if column.data_type() == field.data_type() {
            column
        } else if let (Some(strings), true) = (column.as_string_opt::<i32>(), read_as_time(field.data_type()))
        {
            read_column_each(strings, field.data_type(), |row, _| {
                let text = quote_value(strings.value(row));
                let reason = format!(
                    "column {}: cannot parse {text} as {}",
                    field.name(),
                    sql_type_name(field.data_type())
                );
                flag(&mut reasons, row, reason);
                Ok(())
            })?
        } else {
            let strict = CastOptions { safe: false, ..Default::default() };
            match cast_with_options(&column, field.data_type(), &strict) {
                Ok(c) => c,
                Err(_) => {
                    // Some values do not convert: cast leniently and flag the rows that became NULL.
                    let lenient = cast(&column, field.data_type())?;
                    let options = FormatOptions::default();
                    let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
                    for row in 0..rows {
                        if column.is_valid(row) && lenient.is_null(row) {
                            let value = formatter.value(row).to_string();
                            flag(
                                &mut reasons,
                                row,
                                format!(
                                    "column {}: cannot convert {} to {}",
                                    field.name(),
                                    quote_value(&value),
                                    sql_type_name(field.data_type())
                                ),
                            );
                        }
                    }
                    lenient
                }
            }
        };
        if !field.is_nullable() && column.null_count() > 0 {
            for row in 0..rows {
                if column.is_null(row) {
                    flag(&mut reasons, row, format!("column {}: NULL in a NOT NULL column", field.name()));
                }
            }
        }
        out.push(column);
    }
    if reasons.is_empty() {
        return Ok((rows > 0).then(|| RecordBatch::try_new(Arc::clone(schema), out)).transpose()?);
    }
    let keep: BooleanArray = reasons.iter().map(|r| Some(r.is_none())).collect();
    for (row, reason) in reasons.into_iter().enumerate() {
        if let Some(reason) = reason {
            bad.push((row, reason));
        }
    }
    if keep.true_count() == 0 {
        return Ok(None);
    }
    let out = out.iter().map(|c| filter(c, &keep)).collect::<Result<Vec<_>, _>>()?;
    Ok(Some(RecordBatch::try_new(Arc::clone(schema), out)?))
}
