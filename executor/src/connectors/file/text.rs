//! The reader shared by the line-oriented formats (CSV, JSON lines): buffered chunked IO,
//! record boundaries with physical line numbers, batching, offsets and row errors.
//!
//! The file is read with plain blocking `std::fs::File` reads into buffers of a few MiB.
//! A [`RecordFormat`] says where each record ends (a CSV record may span lines inside quotes)
//! and decodes a run of whole records at once; this reader turns its output into batches of
//! the declared schema and keeps `{"byte", "line"}` just after the last record returned.
//!
//! Finding record ends is one pass over the bytes; decoding them is several times more work.
//! So the reader splits the two: it cuts the buffer into chunks of whole records (slices
//! sharing the buffer, not copies) and, when given a [`ReaderPool`], queues the decoding of
//! the next few chunks there, up to [`READ_AHEAD`] ahead of the batch asked for. The pool's
//! other threads decode them while this one scans on, and batches still come out in file
//! order with their row errors and offsets. A chunk no other thread has started by the time
//! its batch is needed is decoded by the reader itself (see [`Stealable`]), so a busy or
//! one-thread pool never leaves a read waiting on another. Without a pool every chunk is
//! decoded when its batch is asked for.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use bytes::Bytes;

use super::convert::{self, Unused};
use super::{display_name, io_error, offset_field};
use crate::connectors::file_access::FileAccess;
use crate::connectors::{ReadOutcome, RowError, SplitReader};
use crate::error::{ExecError, ExecResult};
use crate::sources::reader_pool::{ReaderPool, Stealable};

/// Bytes read from the file at a time into a fresh buffer.
pub(super) const READ_CHUNK: usize = 1 << 20;

/// A new buffer is taken when less than this is left unscanned in the current one.
const REFILL_BELOW: usize = 64 << 10;

/// Room left free at the start of each buffer read, where the unscanned end of the buffer
/// before it is copied, so a record cut by the read boundary is whole without copying the
/// new buffer.
const HEADROOM: usize = REFILL_BELOW;

/// Chunks scanned and queued for decoding beyond the batch being returned, when a pool
/// decodes them.
pub(super) const READ_AHEAD: usize = 2;

/// A record longer than this (e.g. an unterminated quote swallowing the file) fails the read.
const MAX_RECORD_BYTES: usize = 64 << 20;

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

/// A line-oriented file format. Shared by the threads that decode a reader's chunks.
pub(super) trait RecordFormat: Send + Sync + 'static {
    /// Finds the end of the record starting at `buf[0]`. `None` if the record may continue
    /// past the end of `buf` (never when `eof`, unless `buf` is empty).
    fn scan(&self, buf: &[u8], eof: bool) -> Option<Scanned>;

    /// Whether a record's content holds no row at all (a blank line).
    fn is_blank(&self, content: &[u8]) -> bool;

    /// Decodes `records` (ranges of `chunk`, which holds them contiguously along with any
    /// blank lines between them). A column the job does not use may be decoded as its
    /// placeholder once its values are checked.
    fn decode(&self, chunk: &[u8], records: &[Record], unused: &Unused) -> ExecResult<Decoded>;
}

/// A chunk's rows and its malformed records.
struct DecodedChunk {
    batch: Option<RecordBatch>,
    /// (split-relative line of the record, reason), in record order.
    errors: Vec<(u64, String)>,
}

/// A chunk of whole records, cut from the buffer and being decoded.
struct Chunk {
    decoding: Stealable<ExecResult<DecodedChunk>>,
    /// The file offset and lines consumed just after the chunk's last record.
    end: (u64, u64),
}

/// Reads one CSV or JSON-lines file.
pub(super) struct TextReader<F> {
    path: PathBuf,
    name: String,
    format: Arc<F>,
    schema: SchemaRef,
    batch_size: usize,
    /// Read at explicit offsets, from this thread or the pool's.
    file: Arc<File>,
    /// File offset of the next buffer to read.
    next_read: u64,
    /// The next buffer, being read ahead on the pool (or read when joined).
    reading: Option<Stealable<std::io::Result<Block>>>,
    /// Unscanned input is `buf[pos..]`; `buf[0]` is at file offset `buf_offset`.
    buf: Bytes,
    pos: usize,
    buf_offset: u64,
    eof: bool,
    /// Physical lines scanned so far (before `buf[pos]`).
    line: u64,
    /// The first record is a header still to be skipped.
    header_pending: bool,
    /// Every record of the split has been scanned.
    scanned_all: bool,
    /// Chunks scanned but not yet returned, oldest first.
    ahead: VecDeque<Chunk>,
    /// Where chunks are decoded besides on this thread; `None`: each chunk when needed.
    helpers: Option<ReaderPool>,
    /// Columns the job does not use, returned as placeholders (empty: every column is used).
    unused: Arc<Unused>,
    /// `{"byte", "line"}` just after the last chunk returned.
    returned: (u64, u64),
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
            format: Arc::new(format),
            schema,
            batch_size,
            file: Arc::new(file),
            next_read: 0,
            reading: None,
            buf: Bytes::new(),
            pos: 0,
            buf_offset: 0,
            eof: false,
            line: 0,
            header_pending: header && range.0 == 0,
            scanned_all: false,
            ahead: VecDeque::new(),
            helpers: None,
            unused: Arc::default(),
            returned: (0, 0),
            errors: Vec::new(),
            range,
            lines_before: (range.0 == 0).then_some(0),
        };
        if range.0 > 0 {
            reader.skip_to_record_start()?;
        }
        reader.returned = (reader.buf_offset + reader.pos as u64, reader.line);
        Ok(reader)
    }

    /// Positions a split that starts mid-file at the first record starting at or after
    /// `range.0`: right after the first `\n` at or after `range.0 - 1`.
    fn skip_to_record_start(&mut self) -> ExecResult<()> {
        let from = self.range.0 - 1;
        self.next_read = from;
        self.buf_offset = from;
        loop {
            self.fill(READ_CHUNK)?;
            if let Some(i) = self.buf[self.pos..].iter().position(|b| *b == b'\n') {
                self.pos += i + 1;
                // From here on the split starts at its first record.
                self.range.0 = self.buf_offset + self.pos as u64;
                return Ok(());
            }
            self.pos = self.buf.len();
            if self.eof {
                self.scanned_all = true;
                return Ok(());
            }
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

    /// Unless the file has ended or `want` unscanned bytes are buffered already, makes the
    /// next buffer(s) read the current one: the unscanned bytes followed by the file's next
    /// bytes, until `want` are unscanned. The old buffer lives on in the chunks cut from it
    /// until they are decoded. The buffer after is then read ahead on the pool.
    fn fill(&mut self, want: usize) -> ExecResult<()> {
        while !self.eof && self.buf.len() - self.pos < want {
            let reading = match self.reading.take() {
                Some(reading) => reading,
                None => self.read_block(),
            };
            let block = reading.join()?.map_err(|e| io_error(&self.path, "read", e))?;
            self.eof = block.eof;
            self.next_read += block.len() as u64;
            let tail = &self.buf[self.pos..];
            self.buf_offset += self.pos as u64;
            self.pos = 0;
            self.buf = block.after(tail);
            if !self.eof {
                self.reading = Some(self.read_block());
            }
        }
        Ok(())
    }

    /// Starts reading the [`READ_CHUNK`] bytes at `next_read`.
    fn read_block(&self) -> Stealable<std::io::Result<Block>> {
        let (file, at) = (Arc::clone(&self.file), self.next_read);
        self.start(move || Block::read(&file, at))
    }

    /// Queues `work` on the pool if the reader has one; else it runs when joined.
    fn start<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Stealable<T> {
        match &self.helpers {
            Some(pool) => pool.spawn_stealable(work),
            None => Stealable::deferred(work),
        }
    }

    /// Scans up to `batch_size` records from the buffer. Returns them with the end of the
    /// scanned bytes and the line count after them; scans nothing if no record is complete.
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

    /// Cuts the next chunk of records from the file and queues its decoding (on the pool,
    /// if the reader has one). `None` once the split has been scanned to its end.
    fn scan_chunk(&mut self) -> ExecResult<Option<Chunk>> {
        loop {
            if self.scanned_all {
                return Ok(None);
            }
            if self.buf.len() - self.pos < REFILL_BELOW {
                self.fill(READ_CHUNK)?;
            }
            let (records, end, line) = self.collect();
            if end == self.pos {
                let at_range_end = self.buf_offset + self.pos as u64 >= self.range.1;
                if at_range_end || (self.pos == self.buf.len() && self.eof) {
                    self.scanned_all = true;
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
            let bytes = self.buf.slice(self.pos..end);
            self.pos = end;
            self.line = line;
            let chunk_end = (self.buf_offset + end as u64, line);
            let (format, schema, unused) =
                (Arc::clone(&self.format), Arc::clone(&self.schema), Arc::clone(&self.unused));
            let decoding = self.start(move || decode_chunk(&*format, &schema, &bytes, &records, &unused));
            return Ok(Some(Chunk { decoding, end: chunk_end }));
        }
    }
}

/// Decodes a chunk of records into a batch (if any row is good) and its malformed records,
/// with placeholders in the `unused` columns.
fn decode_chunk<F: RecordFormat>(
    format: &F,
    schema: &SchemaRef,
    chunk: &[u8],
    records: &[Record],
    unused: &Unused,
) -> ExecResult<DecodedChunk> {
    if records.is_empty() {
        // Only blank lines or the header.
        return Ok(DecodedChunk { batch: None, errors: Vec::new() });
    }
    let decoded = format.decode(chunk, records, unused)?;
    let mut errors = decoded.errors;
    let batch = if decoded.rows.is_empty() {
        None
    } else {
        let mut bad = Vec::new();
        let batch = convert::conform(decoded.columns, schema, &mut bad)?;
        errors.extend(bad.into_iter().map(|(row, reason)| (decoded.rows[row], reason)));
        batch.map(|batch| unused.blank(batch)).transpose()?
    };
    errors.sort_by_key(|(record, _)| *record);
    let errors = errors
        .into_iter()
        .map(|(record, reason)| (records.get(record).map_or(0, |r| r.line), reason))
        .collect();
    Ok(DecodedChunk { batch, errors })
}

impl<F: RecordFormat> SplitReader for TextReader<F> {
    fn next_batch(&mut self) -> ExecResult<ReadOutcome> {
        loop {
            let depth = if self.helpers.is_some() { READ_AHEAD + 1 } else { 1 };
            while self.ahead.len() < depth {
                match self.scan_chunk()? {
                    Some(chunk) => self.ahead.push_back(chunk),
                    None => break,
                }
            }
            let Some(chunk) = self.ahead.pop_front() else { return Ok(ReadOutcome::Finished) };
            if chunk.decoding.is_running() {
                // Another thread decodes the oldest chunk: decode a later one meanwhile.
                for later in &self.ahead {
                    if later.decoding.run_here_if_queued() {
                        break;
                    }
                }
            }
            let decoded = chunk.decoding.join()??;
            let had_errors = !decoded.errors.is_empty();
            for (line, reason) in decoded.errors {
                let line = self.file_line(line);
                self.errors.push(RowError { location: format!("{} line {line}", self.name), reason });
            }
            self.returned = chunk.end;
            match decoded.batch {
                Some(batch) => return Ok(ReadOutcome::Batch(batch)),
                // Every row was bad: give the caller a chance to drain the errors.
                None if had_errors => return Ok(ReadOutcome::Wait(Duration::ZERO)),
                // Only blank lines or the header.
                None => {}
            }
        }
    }

    fn take_errors(&mut self) -> Vec<RowError> {
        std::mem::take(&mut self.errors)
    }

    fn offset(&self) -> serde_json::Value {
        serde_json::json!({ "byte": self.returned.0, "line": self.returned.1 })
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
        // What was read ahead of the old position is dropped (and so never decoded).
        self.next_read = byte;
        self.reading = None;
        self.ahead.clear();
        self.buf = Bytes::new();
        self.pos = 0;
        self.buf_offset = byte;
        self.eof = false;
        self.line = line;
        self.returned = (byte, line);
        self.scanned_all = false;
        if byte > self.range.0 {
            self.header_pending = false;
        }
        Ok(())
    }

    fn decode_on(&mut self, pool: &ReaderPool) {
        self.helpers = Some(pool.clone());
    }

    fn read_only(&mut self, columns: &[usize]) {
        self.unused = Arc::new(Unused::new(&self.schema, columns, self.batch_size));
    }
}

/// [`READ_CHUNK`] bytes of the file (fewer at its end), after [`HEADROOM`] free bytes.
struct Block {
    bytes: Vec<u8>,
    eof: bool,
}

impl Block {
    /// Reads the block at file offset `at`.
    fn read(file: &File, at: u64) -> std::io::Result<Block> {
        let mut bytes = vec![0u8; HEADROOM + READ_CHUNK];
        let mut filled = HEADROOM;
        while filled < bytes.len() {
            match file.read_at(&mut bytes[filled..], at + (filled - HEADROOM) as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let eof = filled < bytes.len();
        bytes.truncate(filled);
        Ok(Block { bytes, eof })
    }

    /// Bytes read from the file.
    fn len(&self) -> usize {
        self.bytes.len() - HEADROOM
    }

    /// `tail` (the unscanned end of the buffer before) followed by the block: in place
    /// when it fits the headroom, as it does but for records longer than it.
    fn after(mut self, tail: &[u8]) -> Bytes {
        if tail.len() <= HEADROOM {
            let start = HEADROOM - tail.len();
            self.bytes[start..HEADROOM].copy_from_slice(tail);
            Bytes::from(self.bytes).slice(start..)
        } else {
            let mut joined = Vec::with_capacity(tail.len() + self.len());
            joined.extend_from_slice(tail);
            joined.extend_from_slice(&self.bytes[HEADROOM..]);
            Bytes::from(joined)
        }
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
