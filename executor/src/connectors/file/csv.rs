//! CSV: record boundaries, chunk decoding with arrow-csv, and isolating malformed records.
//!
//! Dialect: fields separated by the `delimiter` byte, records by `\n` or `\r\n`; a field may be
//! enclosed in double quotes, inside which delimiters and newlines are data and `""` is one
//! quote (RFC 4180). A quote in the middle of an unquoted field is an ordinary character.
//! Blank lines are ignored. Columns are positional: a record must have exactly as many
//! fields as the source has columns. An empty unquoted field is NULL; a quoted empty field
//! (`""`) is the empty string for text columns and NULL for the others.
//!
//! The scan here mirrors the parser arrow-csv uses (csv-core), so the records it finds are the
//! rows arrow-csv decodes; a disagreement (a lone `\r` outside quotes, which csv-core takes as
//! a record end) shows as a row count mismatch and sends the chunk to the per-record path.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow::compute::concat_batches;
use arrow::csv::ReaderBuilder;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;

use super::convert::{quote_value, read_schema, Unused};
use super::csv_plain;
use super::text::{Decoded, Record, RecordFormat, Scanned};
use super::CsvOptions;
use crate::connectors::type_names::sql_type_name;
use crate::error::ExecResult;

const QUOTE: u8 = b'"';

/// The CSV [`RecordFormat`] of one source.
pub(super) struct CsvFormat {
    declared: SchemaRef,
    read: SchemaRef,
    delimiter: u8,
    /// Columns read as text (where `""` must become the empty string, not NULL).
    text_columns: Vec<bool>,
}

impl CsvFormat {
    pub(super) fn new(declared: SchemaRef, options: CsvOptions) -> Self {
        let read = read_schema(&declared);
        // Dates and timestamps are read as text too, but their `""` is NULL.
        let text_columns = declared
            .fields()
            .iter()
            .map(|f| matches!(f.data_type(), DataType::Utf8 | DataType::Binary))
            .collect();
        CsvFormat { declared, read, delimiter: options.delimiter, text_columns }
    }

    /// Decodes `bytes` (whole records) with arrow-csv. `Ok(None)` if they hold more than
    /// `expected` rows.
    fn decode_bytes(
        &self,
        schema: &SchemaRef,
        bytes: &[u8],
        expected: usize,
    ) -> Result<Option<RecordBatch>, ArrowError> {
        let mut decoder = ReaderBuilder::new(Arc::clone(schema))
            .with_header(false)
            .with_delimiter(self.delimiter)
            .with_batch_size(expected + 1)
            .build_decoder();
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
        // End of input: completes a last record that has no line terminator.
        decoder.decode(&[])?;
        decoder.flush()
    }

    /// Why one record cannot be decoded, for a person to fix it.
    fn diagnose(&self, record: &[u8], error: &ArrowError) -> String {
        if std::str::from_utf8(record).is_err() {
            return "invalid UTF-8".into();
        }
        let fields = split_fields(record, self.delimiter);
        let columns = self.read.fields().len();
        if fields.len() != columns {
            return format!("expected {columns} fields, found {}", fields.len());
        }
        for ((value, _), (field, declared)) in
            fields.iter().zip(self.read.fields().iter().zip(self.declared.fields()))
        {
            let one = Arc::new(Schema::new(vec![Field::new(field.name(), field.data_type().clone(), true)]));
            if self.decode_bytes(&one, &requote(value), 1).is_err() {
                return format!(
                    "column {}: cannot parse {} as {}",
                    field.name(),
                    quote_value(&String::from_utf8_lossy(value)),
                    sql_type_name(declared.data_type())
                );
            }
        }
        error.to_string()
    }

    /// Decodes records one at a time, keeping the good ones.
    fn decode_each(&self, chunk: &[u8], records: &[Record]) -> ExecResult<(Option<RecordBatch>, Decoded)> {
        let mut good = Vec::new();
        let mut decoded = Decoded { columns: Vec::new(), rows: Vec::new(), errors: Vec::new() };
        for (i, record) in records.iter().enumerate() {
            let bytes = &chunk[record.start..record.end];
            match self.decode_bytes(&self.read, bytes, 1) {
                Ok(Some(batch)) if batch.num_rows() == 1 => {
                    good.push(batch);
                    decoded.rows.push(i);
                }
                Ok(_) => decoded.errors.push((i, "a carriage return outside quotes splits the row".into())),
                Err(e) => decoded.errors.push((i, self.diagnose(bytes, &e))),
            }
        }
        let batch = if good.is_empty() { None } else { Some(concat_batches(&self.read, &good)?) };
        Ok((batch, decoded))
    }

    /// Quoted empty fields of text columns become "" (arrow-csv reads every empty field as NULL).
    fn restore_empty_strings(
        &self,
        chunk: &[u8],
        records: &[Record],
        rows: &[usize],
        columns: &mut [ArrayRef],
    ) {
        if !self.text_columns.contains(&true) {
            return;
        }
        let mut patches: Vec<Vec<usize>> = vec![Vec::new(); columns.len()];
        for (row, &record) in rows.iter().enumerate() {
            let Some(record) = records.get(record).filter(|r| r.flag) else { continue };
            let fields = split_fields(&chunk[record.start..record.end], self.delimiter);
            for (col, (value, quoted)) in fields.iter().enumerate() {
                if *quoted && value.is_empty() && self.text_columns.get(col) == Some(&true) {
                    patches[col].push(row);
                }
            }
        }
        for (column, rows) in columns.iter_mut().zip(patches) {
            if rows.is_empty() {
                continue;
            }
            let Some(strings) = column.as_any().downcast_ref::<StringArray>() else { continue };
            let patched: StringArray = strings
                .iter()
                .enumerate()
                .map(|(i, v)| if rows.binary_search(&i).is_ok() { Some("") } else { v })
                .collect();
            *column = Arc::new(patched);
        }
    }
}

impl RecordFormat for CsvFormat {
    fn scan(&self, buf: &[u8], eof: bool) -> Option<Scanned> {
        // Fast path: a line without quotes.
        match memchr::memchr2(b'\n', QUOTE, buf) {
            Some(i) if buf[i] == b'\n' => Some(line_end(buf, i, false)),
            Some(_) => scan_quoted(buf, eof, self.delimiter),
            None if eof && !buf.is_empty() => {
                Some(Scanned { content_end: buf.len(), next: buf.len(), newlines: 1, flag: false })
            }
            None => None,
        }
    }

    fn is_blank(&self, content: &[u8]) -> bool {
        content.is_empty()
    }

    fn decode(&self, chunk: &[u8], records: &[Record], unused: &Unused) -> ExecResult<Decoded> {
        if let Some(columns) = csv_plain::decode(chunk, records, &self.declared, self.delimiter, unused) {
            let rows = (0..records.len()).collect();
            return Ok(Decoded { columns, rows, errors: Vec::new() });
        }
        self.decode_general(chunk, records)
    }
}

impl CsvFormat {
    /// Decodes a chunk with arrow-csv: in one piece when every record is good, else record
    /// by record.
    pub(super) fn decode_general(&self, chunk: &[u8], records: &[Record]) -> ExecResult<Decoded> {
        let fast = match self.decode_bytes(&self.read, chunk, records.len()) {
            Ok(Some(batch)) if batch.num_rows() == records.len() => Some(batch),
            _ => None,
        };
        let (batch, mut decoded) = match fast {
            Some(batch) => {
                let rows = (0..records.len()).collect();
                (Some(batch), Decoded { columns: Vec::new(), rows, errors: Vec::new() })
            }
            None => self.decode_each(chunk, records)?,
        };
        if let Some(batch) = batch {
            let mut columns = batch.columns().to_vec();
            if records.iter().any(|r| r.flag) {
                self.restore_empty_strings(chunk, records, &decoded.rows, &mut columns);
            }
            decoded.columns = columns;
        }
        Ok(decoded)
    }
}

/// The record ends with the `\n` at `i` (a `\r` before it is part of the terminator).
fn line_end(buf: &[u8], i: usize, flag: bool) -> Scanned {
    let content_end = if i > 0 && buf[i - 1] == b'\r' { i - 1 } else { i };
    Scanned { content_end, next: i + 1, newlines: 1, flag }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: either the first of `""` or the closing quote.
    QuoteInQuoted,
}

/// Scans a record that contains quotes, byte by byte. Flags a quoted empty field.
fn scan_quoted(buf: &[u8], eof: bool, delimiter: u8) -> Option<Scanned> {
    let mut state = State::FieldStart;
    let mut newlines = 0;
    let mut quoted_empty = false;
    let mut empty_so_far = false;
    for (i, &b) in buf.iter().enumerate() {
        match state {
            State::FieldStart | State::Unquoted => {
                if b == b'\n' {
                    return Some(Scanned { newlines: newlines + 1, ..line_end(buf, i, quoted_empty) });
                } else if b == delimiter {
                    state = State::FieldStart;
                } else if b == QUOTE && state == State::FieldStart {
                    state = State::Quoted;
                    empty_so_far = true;
                } else {
                    state = State::Unquoted;
                }
            }
            State::Quoted => {
                if b == QUOTE {
                    state = State::QuoteInQuoted;
                } else {
                    empty_so_far = false;
                    if b == b'\n' {
                        newlines += 1;
                    }
                }
            }
            State::QuoteInQuoted => {
                if b == QUOTE {
                    state = State::Quoted;
                    empty_so_far = false;
                    continue;
                }
                if empty_so_far && (b == delimiter || b == b'\n' || b == b'\r') {
                    quoted_empty = true;
                }
                if b == b'\n' {
                    return Some(Scanned { newlines: newlines + 1, ..line_end(buf, i, quoted_empty) });
                }
                state = if b == delimiter { State::FieldStart } else { State::Unquoted };
            }
        }
    }
    if !eof || buf.is_empty() {
        return None;
    }
    if state == State::QuoteInQuoted && empty_so_far {
        quoted_empty = true;
    }
    Some(Scanned { content_end: buf.len(), next: buf.len(), newlines: newlines + 1, flag: quoted_empty })
}

/// Splits one record into its field values (unquoted) and whether each was quoted.
fn split_fields(record: &[u8], delimiter: u8) -> Vec<(Vec<u8>, bool)> {
    let mut fields = Vec::new();
    let mut value = Vec::new();
    let mut quoted = false;
    let mut state = State::FieldStart;
    for &b in record {
        match state {
            State::FieldStart | State::Unquoted => {
                if b == delimiter {
                    fields.push((std::mem::take(&mut value), quoted));
                    quoted = false;
                    state = State::FieldStart;
                } else if b == QUOTE && state == State::FieldStart {
                    quoted = true;
                    state = State::Quoted;
                } else {
                    value.push(b);
                    state = State::Unquoted;
                }
            }
            State::Quoted => {
                if b == QUOTE {
                    state = State::QuoteInQuoted;
                } else {
                    value.push(b);
                }
            }
            State::QuoteInQuoted => {
                if b == QUOTE {
                    value.push(b);
                    state = State::Quoted;
                } else if b == delimiter {
                    fields.push((std::mem::take(&mut value), quoted));
                    quoted = false;
                    state = State::FieldStart;
                } else {
                    value.push(b);
                    state = State::Unquoted;
                }
            }
        }
    }
    fields.push((value, quoted));
    fields
}

/// `value` as one quoted CSV field (so a delimiter or quote in it stays data).
fn requote(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 2);
    out.push(QUOTE);
    for &b in value {
        if b == QUOTE {
            out.push(QUOTE);
        }
        out.push(b);
    }
    out.push(QUOTE);
    out
}
