//! Parsing `COPY FROM STDIN` data (Postgres' text and CSV formats) into Arrow batches.
//!
//! Data arrives in arbitrary chunks; it is buffered and parsed when the client sends
//! CopyDone. Fields are first collected as strings per column, then converted with Arrow's
//! vectorized casts; the first value that does not convert is reported with its line number,
//! like Postgres' `CONTEXT: COPY t, line 3, column amount: "abc"`. Nothing is written unless
//! every row parses, and then all rows are written in one atomic, durable write.

use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, BinaryBuilder, RecordBatch, StringArray, StringBuilder};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::DataType;
use weir_plan::catalog::ColumnType;
use weir_planner::{sqlstate, SqlError, SqlResult};
use weir_storage::TableStore;

/// Rows converted per batch; bounds the transient string buffers.
const CHUNK_ROWS: usize = 65_536;

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
}

pub struct CopyInState {
    pub table: Arc<TableStore>,
    columns: Vec<usize>,
    format: CopyFormat,
    buffer: Vec<u8>,
}

/// One parsed field: `None` is SQL NULL.
type Field = Option<String>;

impl CopyInState {
    pub fn new(table: Arc<TableStore>, columns: Vec<usize>, format: CopyFormat) -> Self {
        Self { table, columns, format, buffer: Vec::new() }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// Parses everything received into batches with the table's schema.
    pub fn parse(&self) -> SqlResult<Vec<RecordBatch>> {
        let text = std::str::from_utf8(&self.buffer).map_err(|e| {
            SqlError::new(
                "22021",
                format!("invalid byte sequence for encoding \"UTF8\" at byte {}", e.valid_up_to()),
            )
        })?;
        let mut chunk = Chunk::new(self.columns.len());
        let mut batches = Vec::new();
        let mut first = true;
        let mut on_record = |line: usize, fields: Vec<Field>| -> SqlResult<()> {
            if first && self.format.header {
                first = false;
                return Ok(());
            }
            first = false;
            self.check_width(line, &fields)?;
            chunk.push(line, fields);
            if chunk.lines.len() >= CHUNK_ROWS {
                batches.push(self.convert(&mut chunk)?);
            }
            Ok(())
        };
        if self.format.csv {
            parse_csv(text, &self.format, &mut on_record)?;
        } else {
            parse_text(text, &self.format, &mut on_record)?;
        }
        if !chunk.lines.is_empty() {
            batches.push(self.convert(&mut chunk)?);
        }
        Ok(batches)
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
    let type_name = column_type.pg_display_name();
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
/// Postgres, which says "numeric field overflow"), `0A000` for NaN and infinities, else
/// `22P02`.
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
/// NULL, backslash escapes; a line `\.` ends the data.
fn parse_text(
    text: &str,
    format: &CopyFormat,
    on_record: &mut dyn FnMut(usize, Vec<Field>) -> SqlResult<()>,
) -> SqlResult<()> {
    let delimiter = format.delimiter as char;
    for (index, raw_line) in text.split('\n').enumerate() {
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        if line == "\\." {
            break;
        }
        if line.is_empty() && index + 1 == text.split('\n').count() {
            break;
        }
        let fields = split_text_line(line, delimiter)
            .into_iter()
            .map(|raw| if raw == format.null { None } else { Some(unescape_text(&raw)) })
            .collect();
        on_record(index + 1, fields)?;
    }
    Ok(())
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
fn parse_csv(
    text: &str,
    format: &CopyFormat,
    on_record: &mut dyn FnMut(usize, Vec<Field>) -> SqlResult<()>,
) -> SqlResult<()> {
    let bytes = text.as_bytes();
    let (delimiter, quote, escape) = (format.delimiter, format.quote, format.escape);
    let mut line = 1;
    let mut record_line = 1;
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
                return Ok(());
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
    Ok(())
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
            parse_csv(text, format, &mut push).unwrap();
        } else {
            parse_text(text, format, &mut push).unwrap();
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
        let nan = StringArray::from(vec![Some("NaN")]);
        let (_, code, _) = convert_column(&nan, &column_type, &DataType::Decimal128(10, 2)).expect_err("NaN");
        assert_eq!(code, "0A000");
    }
}
