//! `COPY FROM STDIN`: data (Postgres' text and CSV formats) parsed and written as it arrives.
//!
//! Data comes in CopyData messages of any size, cut anywhere. It is buffered only until the
//! buffer holds [`PARSE_BYTES`]; then everything up to the end of its last complete record
//! (a newline outside CSV quotes) is parsed and handed to the statement's [`TableWriter`],
//! which writes it in bounded chunks that stay invisible until the commit. Memory is
//! bounded by a few chunks whatever the size of the stream; one record may not exceed
//! [`MAX_RECORD_BYTES`] (`54000`, like Postgres' limit on one field).
//!
//! Fields are first collected as strings per column, then converted with Arrow's vectorized
//! casts; the first value that does not convert is reported with its line number, like
//! Postgres' `CONTEXT: COPY t, line 3, column amount: "abc"`.
//!
//! The statement stays atomic: a bad row anywhere, a cancel request, `statement_timeout`,
//! CopyFail or a closed connection rolls back every chunk written, and the rows become
//! visible all at once when the client's CopyDone commits them. A cancel or timeout rolls
//! back at once, even while the client sends nothing (a watcher task waits for either), so
//! the table's write lock is not held for a client that stalls. A failure is reported when
//! the client ends the data (CopyDone), as the extended protocol requires; the data sent
//! after it is discarded unparsed.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arrow::array::{new_null_array, Array, ArrayRef, BinaryBuilder, RecordBatch, StringArray, StringBuilder};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::DataType;
use weir_plan::catalog::ColumnType;
use weir_planner::{sqlstate, SqlError, SqlResult};
use weir_storage::TableStore;

use crate::commit_gate::CommitGate;
use crate::table_writer::TableWriter;
use crate::wire::errors::from_storage;

/// Rows converted per batch; bounds the transient string buffers.
const CHUNK_ROWS: usize = 65_536;

/// Data buffered before it is parsed and written.
pub const PARSE_BYTES: usize = 4 << 20;

/// The longest record (one row) accepted.
pub const MAX_RECORD_BYTES: usize = 1 << 30;

#[derive(Debug, Clone)]
pub struct CopyFormat {
    pub csv: bool,
    pub header: bool,
    pub delimiter: u8,
    pub null: String,
    pub quote: u8,
    pub escape: u8,
}

impl CopyFormat {
    pub fn text() -> Self {
        Self { csv: false, header: false, delimiter: b'\t', null: "\\N".into(), quote: b'"', escape: b'"' }
    }

    pub fn csv_with(header: bool) -> Self {
        Self { csv: true, header, delimiter: b',', null: String::new(), quote: b'"', escape: b'"' }
    }

    /// The end of the last complete record in `data`: 0 if there is none yet.
    fn records_end(&self, data: &[u8]) -> usize {
        if !self.csv {
            return data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        }
        let (quote, escape) = (self.quote, self.escape);
        let (mut in_quotes, mut end, mut i) = (false, 0, 0);
        while i < data.len() {
            let b = data[i];
            if in_quotes {
                if b == escape && escape != quote && data.get(i + 1) == Some(&quote) {
                    i += 2;
                    continue;
                }
                // A doubled quote closes and reopens: the state after it is the same.
                in_quotes = b != quote;
            } else if b == quote {
                in_quotes = true;
            } else if b == b'\n' {
                end = i + 1;
            }
            i += 1;
        }
        end
    }
}

/// A `COPY FROM STDIN` in progress, as the session holds it: shared with the watcher that
/// rolls it back on a cancel or timeout.
pub type CopyIn = Arc<tokio::sync::Mutex<CopyInState>>;

/// A `COPY FROM STDIN` in progress on a session.
pub struct CopyInState {
    /// `None` while it runs on a blocking thread, or once the COPY failed.
    parser: Option<CopyParser>,
    writer: TableWriter,
    format: CopyFormat,
    /// Received, not yet parsed: at most one incomplete record past [`PARSE_BYTES`].
    pending: Vec<u8>,
    /// Parse when `pending` reaches this (doubles while one record is longer).
    parse_at: usize,
    deadline: Option<Instant>,
    /// Why the COPY failed, reported at CopyDone; what arrives meanwhile is discarded.
    failed: Option<SqlError>,
    /// The task that rolls the COPY back on a cancel or timeout; ended with it.
    watcher: Option<tokio::task::AbortHandle>,
}

impl Drop for CopyInState {
    fn drop(&mut self) {
        if let Some(watcher) = self.watcher.take() {
            watcher.abort();
        }
    }
}

/// Turns complete records into batches of the table's schema, counting lines across chunks.
struct CopyParser {
    table: Arc<TableStore>,
    columns: Vec<usize>,
    format: CopyFormat,
    /// Lines and bytes parsed before the next chunk (for error positions).
    lines: usize,
    bytes: usize,
    header_pending: bool,
    /// The text format's `\.` end marker was seen: later data is ignored.
    ended: bool,
}

/// One parsed field: `None` is SQL NULL.
type Field = Option<String>;

impl CopyInState {
    /// A COPY into `writer`'s table of `columns` (indices into its columns), stopped by a
    /// cancel of `gate`'s statement or by `statement_timeout_ms` (0: never) counted from now.
    pub async fn start(
        writer: TableWriter,
        table: Arc<TableStore>,
        columns: Vec<usize>,
        format: CopyFormat,
        statement_timeout_ms: u64,
        gate: Arc<CommitGate>,
    ) -> CopyIn {
        let state = Self::new(writer, table, columns, format, statement_timeout_ms);
        let deadline = state.deadline;
        let copy = Arc::new(tokio::sync::Mutex::new(state));
        let watcher = tokio::spawn(roll_back_when_interrupted(Arc::downgrade(&copy), gate, deadline));
        copy.lock().await.watcher = Some(watcher.abort_handle());
        copy
    }

    fn new(
        writer: TableWriter,
        table: Arc<TableStore>,
        columns: Vec<usize>,
        format: CopyFormat,
        statement_timeout_ms: u64,
    ) -> Self {
        let deadline =
            (statement_timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(statement_timeout_ms));
        let parser = CopyParser {
            table,
            columns,
            header_pending: format.header,
            format: format.clone(),
            lines: 0,
            bytes: 0,
            ended: false,
        };
        Self {
            parser: Some(parser),
            writer,
            format,
            pending: Vec::new(),
            parse_at: PARSE_BYTES,
            deadline,
            failed: None,
            watcher: None,
        }
    }

    /// Takes one CopyData message. A failure rolls back what was written and is kept for
    /// [`CopyInState::finish`].
    pub async fn receive(&mut self, data: &[u8], gate: &CommitGate) {
        if self.failed.is_some() || self.parser.as_ref().is_some_and(|p| p.ended) {
            return;
        }
        if let Err(e) = self.receive_data(data, gate).await {
            self.fail(e).await;
        }
    }

    async fn receive_data(&mut self, data: &[u8], gate: &CommitGate) -> SqlResult<()> {
        self.check_interrupted(gate)?;
        self.pending.extend_from_slice(data);
        if self.pending.len() < self.parse_at {
            return Ok(());
        }
        let end = self.format.records_end(&self.pending);
        if end == 0 {
            if self.pending.len() > MAX_RECORD_BYTES {
                return Err(SqlError::new(
                    "54000",
                    format!("COPY row is longer than {} MB", MAX_RECORD_BYTES >> 20),
                ));
            }
            self.parse_at = self.pending.len().saturating_mul(2);
            return Ok(());
        }
        let rest = self.pending.split_off(end);
        let records = std::mem::replace(&mut self.pending, rest);
        self.parse_at = PARSE_BYTES;
        self.write(records).await
    }

    /// The client's CopyDone: parses what is left and commits every row, unless the COPY
    /// failed or was cancelled. Returns the number of rows.
    pub async fn finish(&mut self, gate: &CommitGate) -> SqlResult<usize> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let done = async {
            self.check_interrupted(gate)?;
            let last = std::mem::take(&mut self.pending);
            if !self.parser.as_ref().is_some_and(|p| p.ended) {
                self.write(last).await?;
            }
            Ok(())
        };
        if let Err(e) = done.await {
            self.writer.abort().await;
            return Err(e);
        }
        self.writer.commit(gate).await
    }

    /// The client's CopyFail, or a statement that ends without its data: nothing is kept.
    pub async fn abort(&mut self) {
        self.writer.abort().await;
    }

    async fn fail(&mut self, e: SqlError) {
        tracing::warn!(code = e.code, error = %e.message, "COPY failed; rolling back");
        self.writer.abort().await;
        self.pending = Vec::new();
        self.parser = None;
        self.failed = Some(e);
    }

    fn check_interrupted(&self, gate: &CommitGate) -> SqlResult<()> {
        if gate.is_cancelled() {
            return Err(SqlError::new(sqlstate::QUERY_CANCELED, "canceling statement due to user request"));
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) && gate.try_cancel() {
            return Err(SqlError::new(
                sqlstate::QUERY_CANCELED,
                "canceling statement due to statement timeout",
            ));
        }
        Ok(())
    }

    /// Parses complete `records` and writes their rows, on a blocking thread.
    async fn write(&mut self, records: Vec<u8>) -> SqlResult<()> {
        let mut parser =
            self.parser.take().ok_or_else(|| SqlError::internal("COPY parser used after a failure"))?;
        let parser = self
            .writer
            .run(move |insert| {
                parser.parse(&records, &mut |batch| insert.push(batch).map_err(from_storage))?;
                Ok(parser)
            })
            .await?;
        self.parser = Some(parser);
        Ok(())
    }
}

/// Waits for a cancel of the COPY's statement or its deadline and rolls it back then; the
/// client hears of it at its next message. Holds the COPY weakly: a COPY that ends first
/// (the session gone) is not kept alive by it.
async fn roll_back_when_interrupted(
    copy: Weak<tokio::sync::Mutex<CopyInState>>,
    gate: Arc<CommitGate>,
    deadline: Option<Instant>,
) {
    let timeout = async {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = gate.wait_cancelled() => {}
        () = timeout => {}
    }
    let Some(copy) = copy.upgrade() else { return };
    let mut copy = copy.lock().await;
    if copy.failed.is_none() {
        if let Err(e) = copy.check_interrupted(&gate) {
            copy.fail(e).await;
        }
    }
}

impl CopyParser {
    /// Parses complete records into batches of the table's schema, handing each to `sink`.
    fn parse(&mut self, data: &[u8], sink: &mut dyn FnMut(RecordBatch) -> SqlResult<()>) -> SqlResult<()> {
        let text = std::str::from_utf8(data).map_err(|e| {
            SqlError::new(
                "22021",
                format!(
                    "invalid byte sequence for encoding \"UTF8\" at byte {}",
                    self.bytes + e.valid_up_to()
                ),
            )
        })?;
        let mut chunk = Chunk::new(self.columns.len());
        let mut header_pending = self.header_pending;
        let first_line = self.lines + 1;
        let this = &*self;
        let mut on_record = |line: usize, fields: Vec<Field>| -> SqlResult<()> {
            if header_pending {
                header_pending = false;
                return Ok(());
            }
            this.check_width(line, &fields)?;
            chunk.push(line, fields);
            if chunk.lines.len() >= CHUNK_ROWS {
                sink(this.convert(&mut chunk)?)?;
            }
            Ok(())
        };
        let ended = if self.format.csv {
            parse_csv(text, &self.format, first_line, &mut on_record)?
        } else {
            parse_text(text, &self.format, first_line, &mut on_record)?
        };
        if !chunk.lines.is_empty() {
            sink(self.convert(&mut chunk)?)?;
        }
        self.header_pending = header_pending;
        self.ended = ended;
        self.lines += data.iter().filter(|&&b| b == b'\n').count();
        self.bytes += data.len();
        Ok(())
    }

    fn check_width(&self, line: usize, fields: &[Field]) -> SqlResult<()> {
        let def = self.table.def();
        if fields.len() < self.columns.len() {
            let missing = &def.columns[self.columns[fields.len()]].name;
            return Err(self.bad_format(line, format!("missing data for column \"{missing}\"")));
        }
        if fields.len() > self.columns.len() {
            return Err(self.bad_format(line, "extra data after last expected column".into()));
        }
        Ok(())
    }

    fn bad_format(&self, line: usize, message: String) -> SqlError {
        SqlError::new(sqlstate::BAD_COPY_FILE_FORMAT, message)
            .with_context(format!("COPY {}, line {line}", self.table.def().name))
    }

    fn convert(&self, chunk: &mut Chunk) -> SqlResult<RecordBatch> {
        let def = self.table.def();
        let schema = self.table.schema();
        let rows = chunk.lines.len();
        let mut arrays: Vec<ArrayRef> =
            schema.fields().iter().map(|f| new_null_array(f.data_type(), rows)).collect();
        for (slot, &column) in self.columns.iter().enumerate() {
            let strings = chunk.columns[slot].finish();
            let col_def = &def.columns[column];
            arrays[column] = convert_column(&strings, &col_def.column_type, schema.field(column).data_type())
                .map_err(|(row, code, message)| {
                    let value = strings.value(row);
                    SqlError::new(code, format!("{message}: \"{value}\"")).with_context(format!(
                        "COPY {}, line {}, column {}: \"{value}\"",
                        def.name, chunk.lines[row], col_def.name
                    ))
                })?;
        }
        chunk.lines.clear();
        RecordBatch::try_new(schema, arrays).map_err(|e| SqlError::internal(e.to_string()))
    }
}

struct Chunk {
    lines: Vec<usize>,
    columns: Vec<StringBuilder>,
}

impl Chunk {
    fn new(width: usize) -> Self {
        Self { lines: Vec::new(), columns: (0..width).map(|_| StringBuilder::new()).collect() }
    }

    fn push(&mut self, line: usize, fields: Vec<Field>) {
        self.lines.push(line);
        for (builder, field) in self.columns.iter_mut().zip(fields) {
            builder.append_option(field);
        }
    }
}

/// The first bad field of a column: its row, SQLSTATE and message.
type BadField = (usize, &'static str, String);

/// Converts strings to a column's type; on failure returns the first bad field.
fn convert_column(
    strings: &StringArray,
    column_type: &ColumnType,
    target: &DataType,
) -> Result<ArrayRef, BadField> {
    let type_name = crate::wire::errors::pg_type_name(column_type);
    let invalid =
        || (sqlstate::INVALID_TEXT_REPRESENTATION, format!("invalid input syntax for type {type_name}"));
    match column_type {
        ColumnType::Bytea => {
            let mut builder = BinaryBuilder::new();
            for (row, value) in strings.iter().enumerate() {
                match value {
                    None => builder.append_null(),
                    Some(v) => builder.append_value(decode_bytea(v).ok_or_else(|| bad(row, invalid()))?),
                }
            }
            return Ok(Arc::new(builder.finish()));
        }
        ColumnType::Json | ColumnType::Jsonb => {
            for (row, value) in strings.iter().enumerate() {
                if let Some(v) = value {
                    if serde_json::from_str::<serde_json::Value>(v).is_err() {
                        return Err((
                            row,
                            sqlstate::INVALID_TEXT_REPRESENTATION,
                            "invalid input syntax for type json".into(),
                        ));
                    }
                }
            }
        }
        // Postgres' numeric input (exponents, rounding half away from zero), as in SQL casts.
        ColumnType::Numeric { .. } => {
            if let DataType::Decimal128(precision, scale) = target {
                let mut values = Vec::with_capacity(strings.len());
                for (row, value) in strings.iter().enumerate() {
                    let parsed =
                        value.map(|v| weir_executor::functions::parse_numeric(v, *precision, *scale));
                    values.push(parsed.transpose().map_err(|e| numeric_field_error(row, e, invalid))?);
                }
                let array = arrow::array::Decimal128Array::from(values)
                    .with_precision_and_scale(*precision, *scale)
                    .map_err(|e| (0, sqlstate::INTERNAL_ERROR, e.to_string()))?;
                return Ok(Arc::new(array));
            }
        }
        // Postgres' date and time input, as in SQL casts.
        ColumnType::Date | ColumnType::Timestamp { .. } | ColumnType::Timestamptz { .. } => {
            return weir_executor::functions::text_to_timestamp::read_column(strings, target).map_err(|e| {
                let row = (0..strings.len())
                    .find(|&i| {
                        let one = strings.slice(i, 1);
                        weir_executor::functions::text_to_timestamp::read_column(&one, target).is_err()
                    })
                    .unwrap_or(0);
                (row, e.sqlstate().unwrap_or(sqlstate::INVALID_TEXT_REPRESENTATION), e.to_string())
            });
        }
        ColumnType::Boolean => {
            let mut builder = arrow::array::BooleanBuilder::new();
            for (row, value) in strings.iter().enumerate() {
                match value {
                    None => builder.append_null(),
                    Some(v) => builder.append_value(parse_bool(v).ok_or_else(|| bad(row, invalid()))?),
                }
            }
            return Ok(Arc::new(builder.finish()));
        }
        _ => {}
    }
    if target == &DataType::Utf8 {
        return Ok(Arc::new(strings.clone()));
    }
    let options = CastOptions { safe: true, ..Default::default() };
    let trimmed: StringArray = strings.iter().map(|v| v.map(str::trim)).collect();
    let converted = cast_with_options(&trimmed, target, &options)
        .map_err(|e| (0, sqlstate::INVALID_TEXT_REPRESENTATION, e.to_string()))?;
    if converted.null_count() != strings.null_count() {
        if let Some(row) = (0..strings.len()).find(|&i| strings.is_valid(i) && converted.is_null(i)) {
            return Err(bad(row, invalid()));
        }
    }
    Ok(converted)
}

fn bad(row: usize, (code, message): (&'static str, String)) -> BadField {
    (row, code, message)
}

/// A numeric field that does not read: `22003` when it is too big for its column (as in
/// Postgres, which says "numeric field overflow"; also an infinity in `numeric(p, s)`),
/// else `22P02`.
fn numeric_field_error(
    row: usize,
    e: datafusion::error::DataFusionError,
    invalid: impl Fn() -> (&'static str, String),
) -> BadField {
    use arrow::error::ArrowError;
    match e {
        datafusion::error::DataFusionError::ArrowError(e, _) => match *e {
            ArrowError::ArithmeticOverflow(_) => {
                (row, sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "numeric field overflow".to_string())
            }
            ArrowError::NotYetImplemented(message) => (row, sqlstate::FEATURE_NOT_SUPPORTED, message),
            _ => bad(row, invalid()),
        },
        _ => bad(row, invalid()),
    }
}

/// Postgres' boolean input: t/true/yes/on/1 and f/false/no/off/0, any case.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "yes" | "y" | "on" | "1" => Some(true),
        "f" | "false" | "no" | "n" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// `\x0a0b` hex format, as Postgres prints bytea.
pub fn decode_bytea(v: &str) -> Option<Vec<u8>> {
    match v.strip_prefix("\\x") {
        Some(hex) if hex.len() % 2 == 0 => {
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
        }
        Some(_) => None,
        None => Some(v.as_bytes().to_vec()),
    }
}

/// Postgres' text format: one row per line, fields separated by the delimiter, `\N` for
/// NULL, backslash escapes; a line `\.` ends the data. Lines are numbered from `first_line`;
/// returns whether the end marker was seen.
fn parse_text(
    text: &str,
    format: &CopyFormat,
    first_line: usize,
    on_record: &mut dyn FnMut(usize, Vec<Field>) -> SqlResult<()>,
) -> SqlResult<bool> {
    let delimiter = format.delimiter as char;
    let mut lines = text.split('\n').enumerate().peekable();
    while let Some((index, raw_line)) = lines.next() {
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        if line == "\\." {
            return Ok(true);
        }
        if line.is_empty() && lines.peek().is_none() {
            break;
        }
        let fields = split_text_line(line, delimiter)
            .into_iter()
            .map(|raw| if raw == format.null { None } else { Some(unescape_text(&raw)) })
            .collect();
        on_record(first_line + index, fields)?;
    }
    Ok(false)
}

/// Splits on unescaped delimiters, keeping escapes for [`unescape_text`].
fn split_text_line(line: &str, delimiter: char) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            current.push(c);
            if let Some(next) = chars.next() {
                current.push(next);
            }
        } else if c == delimiter {
            fields.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    fields.push(current);
    fields
}

fn unescape_text(raw: &str) -> String {
    if !raw.contains('\\') {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('v') => out.push('\u{b}'),
            Some(d @ '0'..='7') => {
                let mut value = d.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(v) => {
                            value = value * 8 + v;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(value).unwrap_or('\u{fffd}'));
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// CSV as Postgres reads it: quoted fields may hold delimiters, quotes (doubled) and
/// newlines; an unquoted field equal to the NULL string is NULL, a quoted one never is.
/// Lines are numbered from `first_line`; returns whether the end marker `\.` was seen.
fn parse_csv(
    text: &str,
    format: &CopyFormat,
    first_line: usize,
    on_record: &mut dyn FnMut(usize, Vec<Field>) -> SqlResult<()>,
) -> SqlResult<bool> {
    let bytes = text.as_bytes();
    let (delimiter, quote, escape) = (format.delimiter, format.quote, format.escape);
    let mut line = first_line;
    let mut record_line = first_line;
    let mut fields: Vec<Field> = Vec::new();
    let mut field: Vec<u8> = Vec::new();
    let mut quoted = false;
    let mut in_quotes = false;
    let mut at_record_start = true;
    let mut i = 0;
    let finish_field = |field: &mut Vec<u8>, quoted: bool, fields: &mut Vec<Field>| {
        let value = String::from_utf8_lossy(field).into_owned();
        field.clear();
        if !quoted && value == format.null {
            fields.push(None);
        } else {
            fields.push(Some(value));
        }
    };
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            if b == escape && escape != quote && bytes.get(i + 1) == Some(&quote) {
                field.push(quote);
                i += 2;
                continue;
            }
            if b == quote {
                if escape == quote && bytes.get(i + 1) == Some(&quote) {
                    field.push(quote);
                    i += 2;
                    continue;
                }
                in_quotes = false;
            } else {
                if b == b'\n' {
                    line += 1;
                }
                field.push(b);
            }
            i += 1;
            continue;
        }
        if at_record_start && bytes[i..].starts_with(b"\\.") {
            let rest = &bytes[i + 2..];
            if rest.is_empty() || rest[0] == b'\n' || rest.starts_with(b"\r\n") {
                return Ok(true);
            }
        }
        at_record_start = false;
        match b {
            _ if b == quote => {
                quoted = true;
                in_quotes = true;
            }
            _ if b == delimiter => {
                finish_field(&mut field, quoted, &mut fields);
                quoted = false;
            }
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {}
            b'\n' => {
                finish_field(&mut field, quoted, &mut fields);
                quoted = false;
                on_record(record_line, std::mem::take(&mut fields))?;
                line += 1;
                record_line = line;
                at_record_start = true;
            }
            _ => field.push(b),
        }
        i += 1;
    }
    if in_quotes {
        return Err(SqlError::new(sqlstate::BAD_COPY_FILE_FORMAT, "unterminated CSV quoted field")
            .with_context(format!("COPY, line {record_line}")));
    }
    if !at_record_start {
        finish_field(&mut field, quoted, &mut fields);
        on_record(record_line, fields)?;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &str, format: &CopyFormat) -> Vec<(usize, Vec<Field>)> {
        let mut out = Vec::new();
        let mut push = |line: usize, fields: Vec<Field>| {
            out.push((line, fields));
            Ok(())
        };
        if format.csv {
            parse_csv(text, format, 1, &mut push).unwrap();
        } else {
            parse_text(text, format, 1, &mut push).unwrap();
        }
        out
    }

    #[test]
    fn csv_quotes_nulls_and_newlines() {
        let r = records("1,\"a,b\",\n2,\"\",\"x\"\"y\"\n3,\"multi\nline\",z\n", &CopyFormat::csv_with(false));
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].1, vec![Some("1".into()), Some("a,b".into()), None]);
        assert_eq!(r[1].1, vec![Some("2".into()), Some("".into()), Some("x\"y".into())]);
        assert_eq!(r[2].0, 3);
        assert_eq!(r[2].1[1], Some("multi\nline".into()));
    }

    #[test]
    fn text_format_escapes_and_end_marker() {
        let r = records("1\ta\\tb\t\\N\n2\tx\\\\y\tz\n\\.\nignored\n", &CopyFormat::text());
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].1, vec![Some("1".into()), Some("a\tb".into()), None]);
        assert_eq!(r[1].1[1], Some("x\\y".into()));
    }

    #[test]
    fn records_end_at_the_last_newline_outside_quotes() {
        let csv = CopyFormat::csv_with(false);
        assert_eq!(csv.records_end(b"1,a\n2,\"b\nc\"\n3,\"d\n"), 12);
        assert_eq!(csv.records_end(b"1,\"a\"\"\n\"\n"), 9);
        assert_eq!(csv.records_end(b"1,\"no end\n"), 0);
        let backslash = CopyFormat { escape: b'\\', ..CopyFormat::csv_with(false) };
        assert_eq!(backslash.records_end(b"1,\"a\\\"\n\"\n2"), 9);
        assert_eq!(CopyFormat::text().records_end(b"1\ta\n2\tb"), 4);
        assert_eq!(CopyFormat::text().records_end(b"1\ta"), 0);
    }

    #[test]
    fn bytea_and_bool_input() {
        assert_eq!(decode_bytea("\\x0aff"), Some(vec![10, 255]));
        assert_eq!(decode_bytea("\\x0"), None);
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn numeric_fields_read_exponents_and_round_as_postgres_does() {
        let strings = StringArray::from(vec![Some("1e2"), Some(" 2.555 "), None, Some("-2E-2")]);
        let column_type = ColumnType::Numeric { precision: Some(10), scale: Some(2) };
        let converted =
            convert_column(&strings, &column_type, &DataType::Decimal128(10, 2)).expect("numbers");
        let values = converted.as_any().downcast_ref::<arrow::array::Decimal128Array>().expect("decimals");
        assert_eq!(values.iter().collect::<Vec<_>>(), vec![Some(10000), Some(256), None, Some(-2)]);
        let bad = StringArray::from(vec![Some("1"), Some("abc")]);
        let (row, code, message) =
            convert_column(&bad, &column_type, &DataType::Decimal128(10, 2)).expect_err("abc");
        assert_eq!((row, code), (1, "22P02"));
        assert!(message.contains("invalid input syntax for type numeric"), "{message}");
        let too_big = StringArray::from(vec![Some("1"), Some("1e9")]);
        let (row, code, message) =
            convert_column(&too_big, &column_type, &DataType::Decimal128(10, 2)).expect_err("1e9");
        assert_eq!((row, code, message.as_str()), (1, "22003", "numeric field overflow"));
        // NaN fits numeric(10,2); an infinity does not, as in Postgres.
        let nan = StringArray::from(vec![Some("NaN")]);
        let converted = convert_column(&nan, &column_type, &DataType::Decimal128(10, 2)).expect("NaN");
        let values = converted.as_any().downcast_ref::<arrow::array::Decimal128Array>().expect("decimals");
        assert_eq!(values.value(0), weir_executor::functions::numeric_special::NAN);
        let infinity = StringArray::from(vec![Some("-Infinity")]);
        let (_, code, _) =
            convert_column(&infinity, &column_type, &DataType::Decimal128(10, 2)).expect_err("-Infinity");
        assert_eq!(code, "22003");
    }
}
