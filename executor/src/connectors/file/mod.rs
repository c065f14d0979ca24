//! The `file` connector: reads CSV, JSON-lines or Parquet files into the source's declared
//! schema.
//!
//! Why it looks the way it does:
//!
//! * **One split per file.** `path` may be a glob; the matching files, sorted by path, are the
//!   splits, so a source with N files runs N subtasks that each read one file from start to end
//!   (the connector is bounded).
//! * **Fast path in whole chunks.** CSV and JSON are decoded by arrow-csv and arrow-json, a
//!   batch of records at a time ([`text`] finds the record boundaries and line numbers first).
//!   Only when a chunk fails to decode are its records decoded one by one, to isolate the bad
//!   ones, which are skipped and reported through [`SplitReader::take_errors`] with their file
//!   name and 1-based physical line number. Good rows are never lost and keep their order.
//! * **Declared types win.** Values are decoded straight into the declared Arrow types (CSV
//!   columns by position, JSON keys by exact name, Parquet columns by case-insensitive name and
//!   then cast). [`convert`] applies the last fix-ups common to every format: casts the decoders
//!   cannot do themselves and the NOT NULL check, both of which can make a row malformed.
//! * **Confined.** `path` is resolved and checked by [`FileAccess`] at CREATE time, and every
//!   file is checked again when a reader opens it (see `file_access`).
//! * **Resumable.** CSV/JSON offsets are `{"byte": .., "line": ..}` right after the last record
//!   consumed; Parquet offsets are `{"row": n}`. Seeking a fresh reader there continues exactly
//!   where an uninterrupted read would.

mod convert;
mod csv;
mod csv_plain;
mod json;
mod parquet;
mod text;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;

use super::file_access::FileAccess;
use super::options::{invalid_value, parse_bool, parse_in_range, BoolWords};
use super::{
    check_known_options, Connector, ConnectorOptions, OptionError, SplitLimit, SplitReader,
    DEFAULT_BATCH_ROWS,
};
use crate::error::{ExecError, ExecResult};

/// Every option the connector understands (some only for one format).
const KNOWN_OPTIONS: &[&str] = &["path", "format", "header", "delimiter", "batch.size", "split.size"];

/// CSV and JSON files larger than this are read as several splits (byte ranges) in
/// parallel, unless `split.size` says otherwise. Large: on a 2-core machine one reader
/// plus the operators after it already use both cores (see docs/benchmarks.md), and every
/// extra split reading further ahead in event time keeps more windows open downstream.
const DEFAULT_SPLIT_BYTES: u64 = 1 << 30;

/// Largest accepted `batch.size`.
const MAX_BATCH_ROWS: usize = 1 << 20;

/// The file formats the connector reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    /// One JSON object per line.
    Json,
    Parquet,
}

/// CSV dialect options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvOptions {
    /// Skip the first record of each file.
    pub header: bool,
    /// Field separator (one byte).
    pub delimiter: u8,
}

/// A validated `file` source: the files to read and how to decode them.
#[derive(Debug)]
pub struct FileConnector {
    files: Vec<PathBuf>,
    /// (file index, first byte, end byte) per split.
    splits: Vec<(usize, u64, u64)>,
    format: FileFormat,
    csv: CsvOptions,
    batch_size: usize,
    schema: SchemaRef,
    access: FileAccess,
}

impl FileConnector {
    /// Validates `options` against the declared `schema` and lists the files `path` matches,
    /// every one of which `access` must allow, and which together must not make more splits
    /// than `limit` allows.
    pub fn new(
        options: &ConnectorOptions,
        schema: SchemaRef,
        access: &FileAccess,
        limit: SplitLimit,
    ) -> ExecResult<Self> {
        check_known_options("file", options, KNOWN_OPTIONS)?;
        let pattern = options.get("path").ok_or_else(|| {
            OptionError("connector 'file' needs option 'path' (a file path or a glob)".into())
        })?;
        let format = match options.get("format").map(|f| f.trim().to_ascii_lowercase()) {
            None => {
                return Err(OptionError(
                    "connector 'file' needs option 'format': 'csv', 'json' or 'parquet'".into(),
                )
                .into())
            }
            Some(f) if f == "csv" => FileFormat::Csv,
            Some(f) if f == "json" => FileFormat::Json,
            Some(f) if f == "parquet" => FileFormat::Parquet,
            Some(f) => {
                return Err(OptionError(format!(
                    "unknown format '{f}' for connector 'file'; use 'csv', 'json' or 'parquet'"
                ))
                .into())
            }
        };
        if format != FileFormat::Csv {
            for key in ["header", "delimiter"] {
                if options.contains_key(key) {
                    return Err(OptionError(format!("option '{key}' only applies to format 'csv'")).into());
                }
            }
        }
        let csv = CsvOptions {
            header: parse_header(options.get("header"))?,
            delimiter: parse_delimiter(options.get("delimiter"))?,
        };
        let batch_size = parse_batch_size(options.get("batch.size"))?;
        if schema.fields().is_empty() {
            return Err(OptionError("a 'file' source needs at least one column".into()).into());
        }
        for field in schema.fields() {
            convert::check_supported(field)?;
        }
        let split_bytes = parse_split_size(options.get("split.size"))?;
        let files = access.source_files(pattern)?;
        // Before anything is read or listed per file: every file is a split at least.
        limit.check(files.len(), || format!("'{pattern}' matches {} files", files.len()))?;
        if format == FileFormat::Parquet {
            // A file that is not Parquet is malformed data, reported when it is read, so the
            // other files' rows are kept; a source none of whose files is Parquet is refused.
            let mut malformed = None;
            let mut readable = 0;
            for file in &files {
                match parquet::resolve_columns(access, file, &schema)? {
                    Ok(()) => readable += 1,
                    Err(why) => {
                        tracing::warn!(file = %file.display(), %why, "a source's Parquet file is malformed");
                        malformed.get_or_insert_with(|| format!("'{}' is {why}", file.display()));
                    }
                }
            }
            if let (0, Some(why)) = (readable, malformed) {
                return Err(ExecError::Connector(why));
            }
        }
        let mut splits = Vec::new();
        for (i, file) in files.iter().enumerate() {
            let len = std::fs::metadata(file)
                .map_err(|e| OptionError(format!("cannot read '{}': {e}", file.display())))?
                .len();
            // Parquet files are one split each; a text file is cut into byte ranges.
            let pieces = match format {
                FileFormat::Parquet => 1,
                _ => len.div_ceil(split_bytes).max(1),
            };
            // Counted before the ranges are listed: `split.size = '1'` on a large file would
            // otherwise list one range per byte.
            let total =
                (splits.len() as u64).saturating_add(pieces).saturating_add((files.len() - i - 1) as u64);
            limit.check(usize::try_from(total).unwrap_or(usize::MAX), || {
                format!("split.size {} cuts '{}' alone into {pieces} splits", split_bytes, display_name(file))
            })?;
            let step = len.div_ceil(pieces).max(1);
            for p in 0..pieces {
                splits.push((i, p * step, if p + 1 == pieces { u64::MAX } else { (p + 1) * step }));
            }
        }
        Ok(FileConnector { files, splits, format, csv, batch_size, schema, access: access.clone() })
    }

    /// The files read, one per split, in split order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

impl Connector for FileConnector {
    fn splits(&self) -> usize {
        self.splits.len()
    }

    fn open(&self, split: usize) -> ExecResult<Box<dyn SplitReader>> {
        let (path, range) = self
            .splits
            .get(split)
            .and_then(|(file, start, end)| Some((self.files.get(*file)?, (*start, *end))))
            .ok_or_else(|| {
                ExecError::Internal(format!(
                    "file source has {} splits, asked for split {split}",
                    self.splits.len()
                ))
            })?;
        let schema = Arc::clone(&self.schema);
        Ok(match self.format {
            FileFormat::Csv => {
                let format = csv::CsvFormat::new(Arc::clone(&schema), self.csv);
                Box::new(text::TextReader::open(
                    &self.access,
                    path,
                    format,
                    schema,
                    self.batch_size,
                    self.csv.header,
                    range,
                )?)
            }
            FileFormat::Json => {
                let format = json::JsonFormat::new(Arc::clone(&schema));
                Box::new(text::TextReader::open(
                    &self.access,
                    path,
                    format,
                    schema,
                    self.batch_size,
                    false,
                    range,
                )?)
            }
            FileFormat::Parquet => {
                Box::new(parquet::ParquetReader::open(&self.access, path, schema, self.batch_size)?)
            }
        })
    }

    fn bounded(&self) -> bool {
        true
    }
}

/// `split.size`: bytes per split of a CSV or JSON file, e.g. `'64MB'`, `'1GB'` or `'1048576'`.
fn parse_split_size(value: Option<&String>) -> Result<u64, OptionError> {
    let Some(value) = value else { return Ok(DEFAULT_SPLIT_BYTES) };
    let text = value.trim().to_ascii_uppercase();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text.as_str(), ""),
    };
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "K" => 1 << 10,
        "MB" | "M" => 1 << 20,
        "GB" | "G" => 1 << 30,
        _ => 0,
    };
    match digits.parse::<u64>() {
        Ok(n) if n > 0 && multiplier > 0 => Ok(n.saturating_mul(multiplier)),
        _ => Err(invalid_value(
            "split.size",
            "a positive size such as '64MB', '1GB' or a number of bytes",
            value,
        )),
    }
}

fn parse_header(value: Option<&String>) -> Result<bool, OptionError> {
    let Some(value) = value else { return Ok(false) };
    parse_bool(value, BoolWords::TrueFalse)
        .ok_or_else(|| invalid_value("header", "'true' or 'false'", &value.trim().to_ascii_lowercase()))
}

fn parse_delimiter(value: Option<&String>) -> Result<u8, OptionError> {
    let Some(value) = value else { return Ok(b',') };
    let byte = match value.as_str() {
        "\\t" | "\t" => b'\t',
        v if v.len() == 1 => v.as_bytes()[0],
        v => return Err(invalid_value("delimiter", "a single character (or '\\t' for a tab)", v)),
    };
    if matches!(byte, b'"' | b'\n' | b'\r') {
        return Err(OptionError(
            "option 'delimiter' cannot be a double quote, a newline or a carriage return".into(),
        ));
    }
    Ok(byte)
}

fn parse_batch_size(value: Option<&String>) -> Result<usize, OptionError> {
    let Some(value) = value else { return Ok(DEFAULT_BATCH_ROWS) };
    parse_in_range(value.trim(), 1..=MAX_BATCH_ROWS).ok_or_else(|| {
        invalid_value("batch.size", &format!("a whole number of rows between 1 and {MAX_BATCH_ROWS}"), value)
    })
}

/// How a file is named in row error locations: its file name.
fn display_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

/// A connector error about `path` (cannot open, cannot read...).
fn io_error(path: &Path, what: &str, e: impl std::fmt::Display) -> ExecError {
    ExecError::Connector(format!("file source: cannot {what} '{}': {e}", path.display()))
}

/// Reads a non-negative integer member of an offset value.
fn offset_field(offset: &serde_json::Value, key: &str) -> ExecResult<u64> {
    offset
        .get(key)
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| ExecError::Internal(format!("file source: offset {offset} has no '{key}' position")))
}
