//! JSON lines: one JSON object per line, decoded a chunk at a time with arrow-json.
//!
//! Columns are matched to keys by exact name; a missing key is NULL and keys that are not
//! columns are ignored. Strings are parsed into numbers, dates and timestamps where the column
//! asks for them, and numbers or booleans are accepted for text columns. Blank lines are
//! ignored. A line that is not one JSON object, or whose values do not fit their columns, is
//! malformed; it is found by decoding the chunk's lines one at a time after the chunk failed.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow_json::ReaderBuilder;

use super::convert::{quote_value, read_schema, Unused};
use super::text::{Decoded, Record, RecordFormat, Scanned};
use crate::connectors::type_names::sql_type_name;
use crate::error::ExecResult;

/// The JSON-lines [`RecordFormat`] of one source.
pub(super) struct JsonFormat {
    declared: SchemaRef,
    read: SchemaRef,
}

impl JsonFormat {
    pub(super) fn new(declared: SchemaRef) -> Self {
        let read = read_schema(&declared);
        JsonFormat { declared, read }
    }

    /// Decodes `bytes` with arrow-json. `Ok(None)` if they hold more than `expected` rows.
    fn decode_bytes(
        schema: &SchemaRef,
        bytes: &[u8],
        expected: usize,
    ) -> Result<Option<RecordBatch>, ArrowError> {
        let mut decoder = ReaderBuilder::new(Arc::clone(schema))
            .with_batch_size(expected + 1)
            .with_coerce_primitive(true)
            .with_strict_mode(false)
            .build_decoder()?;
        let mut off = 0;
        while off < bytes.len() {
            let n = decoder.decode(&bytes[off..])?;
            if n == 0 {
                break;
            }
            off += n;
        }
        if off < bytes.len() {
            return Ok(None);
        }
        decoder.flush()
    }

    /// Why one line cannot be decoded, for a person to fix it.
    fn diagnose(&self, line: &[u8], error: &ArrowError) -> String {
        let value: serde_json::Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => return format!("invalid JSON: {e}"),
        };
        let Some(object) = value.as_object() else {
            return "expected a JSON object".into();
        };
        for (field, declared) in self.read.fields().iter().zip(self.declared.fields()) {
            let Some(value) = object.get(field.name()) else { continue };
            let one = Arc::new(Schema::new(vec![Field::new(field.name(), field.data_type().clone(), true)]));
            let mut single = serde_json::Map::new();
            single.insert(field.name().clone(), value.clone());
            let text = serde_json::Value::Object(single).to_string();
            if Self::decode_bytes(&one, text.as_bytes(), 1).is_err() {
                let shown = match value {
                    serde_json::Value::String(s) => quote_value(s),
                    other => other.to_string(),
                };
                return format!(
                    "column {}: cannot parse {shown} as {}",
                    field.name(),
                    sql_type_name(declared.data_type())
                );
            }
        }
        error.to_string()
    }
}

impl RecordFormat for JsonFormat {
    fn scan(&self, buf: &[u8], eof: bool) -> Option<Scanned> {
        match memchr::memchr(b'\n', buf) {
            Some(i) => Some(Scanned { content_end: i, next: i + 1, newlines: 1, flag: false }),
            None if eof && !buf.is_empty() => {
                Some(Scanned { content_end: buf.len(), next: buf.len(), newlines: 1, flag: false })
            }
            None => None,
        }
    }

    fn is_blank(&self, content: &[u8]) -> bool {
        content.iter().all(u8::is_ascii_whitespace)
    }

    fn decode(&self, chunk: &[u8], records: &[Record], _unused: &Unused) -> ExecResult<Decoded> {
        if let Ok(Some(batch)) = Self::decode_bytes(&self.read, chunk, records.len()) {
            if batch.num_rows() == records.len() {
                let rows = (0..records.len()).collect();
                return Ok(Decoded { columns: batch.columns().to_vec(), rows, errors: Vec::new() });
            }
        }
        let mut good = Vec::new();
        let mut decoded = Decoded { columns: Vec::new(), rows: Vec::new(), errors: Vec::new() };
        for (i, record) in records.iter().enumerate() {
            let line = &chunk[record.start..record.end];
            match Self::decode_bytes(&self.read, line, 1) {
                Ok(Some(batch)) if batch.num_rows() == 1 => {
                    good.push(batch);
                    decoded.rows.push(i);
                }
                Ok(_) => decoded.errors.push((i, "expected one JSON object on the line".into())),
                Err(e) => decoded.errors.push((i, self.diagnose(line, &e))),
            }
        }
        if !good.is_empty() {
            decoded.columns = concat_batches(&self.read, &good)?.columns().to_vec();
        }
        Ok(decoded)
    }
}
