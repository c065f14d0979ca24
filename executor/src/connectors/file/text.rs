//! The reader shared by the line-oriented formats (CSV, JSON lines): buffered chunked IO,
//! record boundaries with physical line numbers, batching, offsets and row errors.
//!
//! The file is read with plain blocking `std::fs::File` reads into one buffer of a few MiB.
//! A [`RecordFormat`] says where each record ends (a CSV record may span lines inside quotes)
//! and decodes a run of whole records at once; this reader turns its output into batches of
//! the declared schema and keeps `{"byte", "line"}` just after the last record consumed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow::array::ArrayRef;
use arrow::datatypes::SchemaRef;

use super::{convert, display_name, io_error, offset_field};
use crate::connectors::file_access::FileAccess;
use crate::connectors::{ReadOutcome, RowError, SplitReader};
use crate::error::{ExecError, ExecResult};

/// Bytes read from the file at a time; the buffer is refilled when less than half is left.
pub(super) const READ_CHUNK: usize = 4 << 20;

/// A record longer than this (e.g. an unterminated quote swallowing the file) fails the read.
const MAX_RECORD_BYTES: usize = 64 << 20;

/// Position of the first byte of `buf` equal to `a` or `b`. Scans eight bytes at a time
/// (a byte-wise "has zero" test on `u64` words), since finding line ends is the one pass
/// over every input byte outside arrow's decoders.
pub(super) fn find_either(buf: &[u8], a: u8, b: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let (pa, pb) = (ONES * u64::from(a), ONES * u64::from(b));
    let mut words = buf.chunks_exact(8);
    let mut at = 0;
    for word in words.by_ref() {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let v = u64::from_le_bytes(bytes);
        let (xa, xb) = (v ^ pa, v ^ pb);
        let hits = (xa.wrapping_sub(ONES) & !xa & HIGHS) | (xb.wrapping_sub(ONES) & !xb & HIGHS);
        if hits != 0 {
            // The lowest flagged byte is exact (borrows only run towards higher bytes).
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words.remainder().iter().position(|&c| c == a || c == b).map(|i| at + i)
}

/// Where a record found by [`RecordFormat::scan`] ends, relative to its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Scanned {
    /// End of the record's content (before its line terminator).
    pub content_end: usize,
    /// Start of the next record (after the terminator).
    pub next: usize,
    /// Line terminators consumed, including the record's own.
    pub newlines: u64,
    /// A format-specific mark (CSV: the record has a quoted empty field).
    pub flag: bool,
}

/// One record of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Record {
    /// Content range within the chunk (terminator excluded).
    pub start: usize,
    pub end: usize,
    /// 1-based physical line number of its first line.
    pub line: u64,
    pub flag: bool,
}

/// What [`RecordFormat::decode`] made of a chunk.
pub(super) struct Decoded {
    /// The good rows, one array per declared column, in the read types of
    /// [`convert::read_schema`] or already in the declared type; empty when there is no
    /// good row.
    pub columns: Vec<ArrayRef>,
    /// For each good row, the index of its record in the chunk.
    pub rows: Vec<usize>,
    /// Malformed records: (index of the record, reason).
    pub errors: Vec<(usize, String)>,
}

/// A line-oriented file format.
pub(super) trait RecordFormat: Send {
    /// Finds the end of the record starting at `buf[0]`. `None` if the record may continue
    /// past the end of `buf` (never when `eof`, unless `buf` is empty).
    fn scan(&self, buf: &[u8], eof: bool) -> Option<Scanned>;

    /// Whether a record's content holds no row at all (a blank line).
    fn is_blank(&self, content: &[u8]) -> bool;

    /// Decodes `records` (ranges of `chunk`, which holds them contiguously along with any
    /// blank lines between them).
    fn decode(&self, chunk: &[u8], records: &[Record]) -> ExecResult<Decoded>;
}

/// Reads one CSV or JSON-lines file.
pub(super) struct TextReader<F> {
    path: PathBuf,
    name: String,
    format: F,
    schema: SchemaRef,
    batch_size: usize,
    file: File,
    /// Unconsumed input is `buf[pos..]`; `buf[0]` is at file offset `buf_offset`.
    buf: Vec<u8>,
    pos: usize,
    buf_offset: u64,
    eof: bool,
    /// Physical lines consumed so far (before `buf[pos]`).
    line: u64,
    /// The first record is a header still to be skipped.
    header_pending: bool,
    finished: bool,
    errors: Vec<RowError>,
    /// This split's byte range of the file: records that start in `[start, end)`.
    range: (u64, u64),
    /// Lines of the file before `range.0`, counted the first time an error needs them.
    lines_before: Option<u64>,
    /// Checks the file again whenever it is reopened.
    access: FileAccess,
}

impl<F: RecordFormat> TextReader<F> {
    /// Opens the split of `path` holding the records that start in bytes `range`. A split
    /// that does not start the file begins after the first line end at or after its start
    /// (the record under way belongs to the split before).
    pub(super) fn open(
        access: &FileAccess,
        path: &Path,
        format: F,
        schema: SchemaRef,
        batch_size: usize,
        header: bool,
        range: (u64, u64),
    ) -> ExecResult<Self> {
        let file = access.open_read(path)?;
        let mut reader = TextReader {
            access: access.clone(),
            path: path.to_path_buf(),
            name: display_name(path),
            format,
            schema,
            batch_size,
            file,
            buf: Vec::new(),
            pos: 0,
            buf_offset: 0,
            eof: false,
            line: 0,
            header_pending: header && range.0 == 0,
            finished: false,
            errors: Vec::new(),
            range,
            lines_before: (range.0 == 0).then_some(0),
        };
        if range.0 > 0 {
            reader.skip_to_record_start()?;
        }
        Ok(reader)
    }

    /// Positions a split that starts mid-file at the first record starting at or after
    /// `range.0`: right after the first `\n` at or after `range.0 - 1`.
    fn skip_to_record_start(&mut self) -> ExecResult<()> {
        let from = self.range.0 - 1;
        self.file.seek(SeekFrom::Start(from)).map_err(|e| io_error(&self.path, "seek in", e))?;
        self.buf_offset = from;
        loop {
            self.fill(READ_CHUNK)?;
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                self.pos = i + 1;
                // From here on the split starts at its first record.
                self.range.0 = self.buf_offset + self.pos as u64;
                return Ok(());
            }
            if self.eof {
                self.pos = self.buf.len();
                self.finished = true;
                return Ok(());
            }
            self.pos = self.buf.len();
        }
    }

    /// The file's line number of line `line` of this split (counting the lines before the
    /// split once, when first needed: only error messages need it).
    fn file_line(&mut self, line: u64) -> u64 {
        if self.lines_before.is_none() {
            self.lines_before = Some(count_lines_before(&self.access, &self.path, self.range.0).unwrap_or(0));
        }
        self.lines_before.unwrap_or(0) + line
    }

    /// Drops consumed bytes and reads until `want` unconsumed bytes are buffered or the file ends.
    fn fill(&mut self, want: usize) -> ExecResult<()> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.buf_offset += self.pos as u64;
            self.pos = 0;
        }
        while !self.eof && self.buf.len() < want {
            let ask = (want - self.buf.len()).max(READ_CHUNK / 4);
            // `read_to_end` on a `take` appends without zero-filling the buffer first.
            match (&mut self.file).take(ask as u64).read_to_end(&mut self.buf) {
                Ok(n) if n < ask => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(&self.path, "read", e)),
            }
        }
        Ok(())
    }

    /// Consumes up to `batch_size` records from the buffer. Returns them with the end of the
    /// consumed bytes and the line count after them; consumes nothing if no record is complete.
    fn collect(&mut self) -> (Vec<Record>, usize, u64) {
        let mut records = Vec::new();
        let mut p = self.pos;
        let mut line = self.line;
        while records.len() < self.batch_size && p < self.buf.len() {
            if self.buf_offset + p as u64 >= self.range.1 {
                // The next record starts in the following split.
                break;
            }
            let Some(s) = self.format.scan(&self.buf[p..], self.eof) else { break };
            let content = &self.buf[p..p + s.content_end];
            if self.header_pending {
                self.header_pending = false;
            } else if !self.format.is_blank(content) {
                records.push(Record {
                    start: p - self.pos,
                    end: p - self.pos + s.content_end,
                    line: line + 1,
                    flag: s.flag,
                });
            }
            line += s.newlines;
            p += s.next;
        }
        (records, p, line)
    }

    /// Decodes a chunk of records into a batch (if any row is good), recording row errors.
    fn decode_chunk(
        &mut self,
        records: &[Record],
        end: usize,
    ) -> ExecResult<Option<arrow::array::RecordBatch>> {
        let chunk = &self.buf[self.pos..end];
        let decoded = self.format.decode(chunk, records)?;
        let mut errors = decoded.errors;
        let batch = if decoded.rows.is_empty() {
            None
        } else {
            let mut bad = Vec::new();
            let batch = convert::conform(decoded.columns, &self.schema, &mut bad)?;
            errors.extend(bad.into_iter().map(|(row, reason)| (decoded.rows[row], reason)));
            batch
        };
        errors.sort_by_key(|(record, _)| *record);
        for (record, reason) in errors {
            let line = records.get(record).map_or(0, |r| r.line);
            let line = self.file_line(line);
            self.errors.push(RowError { location: format!("{} line {line}", self.name), reason });
        }
        Ok(batch)
    }
}

impl<F: RecordFormat> SplitReader for TextReader<F> {
    fn next_batch(&mut self) -> ExecResult<ReadOutcome> {
        loop {
            if self.finished {
                return Ok(ReadOutcome::Finished);
            }
            if !self.eof && self.buf.len() - self.pos < READ_CHUNK / 2 {
                self.fill(READ_CHUNK)?;
            }
            let (records, end, line) = self.collect();
            if end == self.pos {
                let at_range_end = self.buf_offset + self.pos as u64 >= self.range.1;
                if at_range_end || (self.pos == self.buf.len() && self.eof) {
                    self.finished = true;
                    continue;
                }
                // One record longer than the buffered input: read more.
                let pending = self.buf.len() - self.pos;
                if pending >= MAX_RECORD_BYTES {
                    let line = self.file_line(self.line + 1);
                    return Err(ExecError::Connector(format!(
                        "file source: {} line {line}: a record is longer than {} MiB (unterminated quote?)",
                        self.name,
                        MAX_RECORD_BYTES >> 20
                    )));
                }
                self.fill(pending + READ_CHUNK)?;
                continue;
            }
            if records.is_empty() {
                // Only blank lines or the header.
                self.pos = end;
                self.line = line;
                continue;
            }
            let batch = self.decode_chunk(&records, end)?;
            self.pos = end;
            self.line = line;
            return Ok(match batch {
                Some(batch) => ReadOutcome::Batch(batch),
                // Every row was bad: give the caller a chance to drain the errors.
                None => ReadOutcome::Wait(Duration::ZERO),
            });
        }
    }

    fn take_errors(&mut self) -> Vec<RowError> {
        std::mem::take(&mut self.errors)
    }

    fn offset(&self) -> serde_json::Value {
        serde_json::json!({ "byte": self.buf_offset + self.pos as u64, "line": self.line })
    }

    fn seek(&mut self, offset: &serde_json::Value) -> ExecResult<()> {
        let byte = offset_field(offset, "byte")?;
        let line = offset_field(offset, "line")?;
        let len = self.file.metadata().map_err(|e| io_error(&self.path, "read", e))?.len();
        if byte > len {
            return Err(ExecError::Connector(format!(
                "file source: cannot resume '{}' at byte {byte}: the file has only {len} bytes",
                self.path.display()
            )));
        }
        self.file.seek(SeekFrom::Start(byte)).map_err(|e| io_error(&self.path, "seek in", e))?;
        self.buf.clear();
        self.pos = 0;
        self.buf_offset = byte;
        self.eof = false;
        self.line = line;
        self.finished = false;
        if byte > self.range.0 {
            self.header_pending = false;
        }
        Ok(())
    }
}

/// Newlines in the first `bytes` bytes of the file at `path`.
fn count_lines_before(access: &FileAccess, path: &Path, bytes: u64) -> ExecResult<u64> {
    let mut file = access.open_read(path)?.take(bytes);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut lines = 0;
    loop {
        let n = file.read(&mut buf).map_err(|e| io_error(path, "read", e))?;
        if n == 0 {
            return Ok(lines);
        }
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
    }
}
