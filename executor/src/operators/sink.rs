//! Sink: the end of a `CREATE SINK` job, where rows leave Weir.
//!
//! * `blackhole` consumes and discards every row (what benchmarks use, as in Flink and
//!   RisingWave); the rows still count in `weir_catalog.tasks`.
//! * `file` appends rows to a file as CSV or JSON lines, flushed at every barrier. Only
//!   append-only queries can write to a file (the planner checks), since a file cannot take
//!   back a row. Each subtask writes its own file: `path` for subtask 0, `path.N` for N > 0.
//!   A new sink appends to whatever the file holds. At a checkpoint the sink records the
//!   file's length; a sink restored from it truncates the file back to that length (the rows
//!   after it are replayed), so a recovered job writes each row once. A job that starts
//!   again with no checkpoint to restore replays from the beginning, so its sink cuts the file
//!   back to where the sink's first attempt began (see [`start`]).
//!
//! While a file sink has its file open it holds an exclusive lock on it (`flock`), and it
//! writes only while its TaskManager's [`Lease`] holds: a TaskManager that was paused past
//! the heartbeat timeout, whose job restarted elsewhere, writes nothing when it resumes, and
//! the new attempt opens the file only once the old one let go of it (a sink that finds its
//! file locked fails, and its job tries again after the restart backoff). Two sinks writing
//! to one file are refused the same way.
//!
//! A file sink may only write under `[file] allowed_dirs`: its path is checked at
//! `CREATE SINK` ([`SinkConfig::check_access`]) and again whenever a sink opens its file
//! (see `connectors::file_access`).

mod start;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use tracing::info;

use self::start::StartMarker;
pub use self::start::{cut_back_to_start, remove_markers};
use super::{DeferredState, Operator, OperatorSnapshot};
use crate::connectors::{check_known_options, FileAccess, OptionError};
use crate::error::{ExecError, ExecResult};
use crate::lease::Lease;
use crate::message::{Barrier, StreamBatch};

/// A configured sink, checked at `CREATE SINK`.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkConfig {
    Blackhole,
    File { path: String, format: FileFormat, header: bool },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FileFormat {
    Csv,
    Json,
}

impl SinkConfig {
    pub fn parse(connector: &str, options: &BTreeMap<String, String>) -> Result<Self, OptionError> {
        match connector.to_ascii_lowercase().as_str() {
            "blackhole" => {
                check_known_options("blackhole", options, &[])?;
                Ok(SinkConfig::Blackhole)
            }
            "file" => {
                check_known_options("file", options, &["path", "format", "header"])?;
                let path = options
                    .get("path")
                    .cloned()
                    .ok_or_else(|| OptionError("sink connector 'file' needs a path option".into()))?;
                let format = match options.get("format").map(|f| f.to_ascii_lowercase()).as_deref() {
                    Some("csv") | None => FileFormat::Csv,
                    Some("json") => FileFormat::Json,
                    Some(other) => {
                        return Err(OptionError(format!(
                            "unknown sink format '{other}'; use 'csv' or 'json'"
                        )))
                    }
                };
                let header = match options.get("header").map(|h| h.to_ascii_lowercase()).as_deref() {
                    Some("true") => true,
                    Some("false") | None => false,
                    Some(other) => {
                        return Err(OptionError(format!("header must be 'true' or 'false', not '{other}'")))
                    }
                };
                Ok(SinkConfig::File { path, format, header })
            }
            other => Err(OptionError(format!(
                "unknown sink connector '{other}'; the sink connectors are 'blackhole' and 'file'"
            ))),
        }
    }
}

impl SinkConfig {
    /// Whether `access` allows the files the sink writes (checked again at every open).
    pub fn check_access(&self, access: &FileAccess) -> ExecResult<()> {
        match self {
            SinkConfig::Blackhole => Ok(()),
            SinkConfig::File { path, .. } => access.sink_path(path).map(|_| ()),
        }
    }
}

pub struct Sink {
    writer: Option<FileWriter>,
    lease: Arc<Lease>,
    /// Where this sink may write: also the files of old subtasks it cuts back after a
    /// rescale.
    access: FileAccess,
}

struct FileWriter {
    path: String,
    /// `path` resolved inside the allowed directories.
    resolved: PathBuf,
    format: FileFormat,
    header: bool,
    wrote_header: bool,
    out: BufWriter<File>,
}

impl Sink {
    pub fn new(config: &SinkConfig, subtask: usize, access: &FileAccess) -> ExecResult<Self> {
        let writer = match config {
            SinkConfig::Blackhole => None,
            SinkConfig::File { path, format, header } => {
                let path = match subtask {
                    0 => path.clone(),
                    n => format!("{path}.{n}"),
                };
                let resolved = access.sink_path(&path)?;
                let file = access.open_append(&path)?;
                lock(&file, &path)?;
                let wrote_header = file.metadata().map(|m| m.len() > 0).unwrap_or(false);
                Some(FileWriter {
                    path,
                    resolved,
                    format: *format,
                    header: *header,
                    wrote_header,
                    out: BufWriter::new(file),
                })
            }
        };
        Ok(Self { writer, lease: Lease::unbounded(), access: access.clone() })
    }

    /// Writes only while `lease` holds.
    pub fn with_lease(mut self, lease: Arc<Lease>) -> Self {
        self.lease = lease;
        self
    }

    /// For a job that starts with no checkpoint to restore (its sources replay from their
    /// beginning): cuts the file back to where this sink's first attempt began, or, on the
    /// first attempt, records where that is (see [`start`]). `sink_id` is the sink's catalog
    /// id. A sink restored from a checkpoint is cut back by [`Operator::restore`] instead.
    pub fn start_without_checkpoint(mut self, sink_id: u64) -> ExecResult<Self> {
        self.check_lease()?;
        let Some(writer) = &mut self.writer else { return Ok(self) };
        let marker = StartMarker::beside(&writer.resolved, sink_id)?;
        match marker.read()? {
            Some(len) => {
                let before = writer.flushed_len()?;
                writer.truncate(len, "when this sink first started")?;
                writer.wrote_header = len > 0;
                info!(path = %writer.path, from = before, to = len, "sink file cut back to where its job first started");
            }
            None => marker.record(writer.flushed_len()?)?,
        }
        Ok(self)
    }

    fn check_lease(&self) -> ExecResult<()> {
        match &self.writer {
            // The message is only built when the lease has run out (this runs per batch).
            Some(writer) if !self.lease.is_valid() => {
                self.lease.check(&format!("to sink file {}", writer.path))
            }
            _ => Ok(()),
        }
    }
}

impl Drop for Sink {
    /// Rows still buffered are flushed on the way out, unless the lease ran out: then they
    /// are dropped, since the job's next attempt owns the file.
    fn drop(&mut self) {
        if !self.lease.is_valid() {
            if let Some(writer) = self.writer.take() {
                let (_file, _unwritten) = writer.out.into_parts();
            }
        }
    }
}

/// Takes the exclusive lock on a sink file, or says who may hold it.
fn lock(file: &File, path: &str) -> ExecResult<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(ExecError::Connector(format!(
            "sink file {path} is in use by another writer: another sink writing to the same file, or the \
             previous attempt of this job on a taskmanager that lost contact with the JobManager and has not \
             stopped yet (the job tries again)"
        ))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(ExecError::Connector(format!("cannot lock sink file {path}: {e}")))
        }
    }
}

impl FileWriter {
    fn write(&mut self, batch: &StreamBatch) -> ExecResult<()> {
        // Arrow's CSV and JSON writers would print the integers that stand for them.
        crate::functions::numeric_special::reject_specials(&batch.data, "a file sink")?;
        match self.format {
            FileFormat::Csv => {
                let with_header = self.header && !self.wrote_header;
                let mut writer =
                    arrow::csv::WriterBuilder::new().with_header(with_header).build(&mut self.out);
                writer.write(&batch.data)?;
                self.wrote_header = true;
            }
            FileFormat::Json => {
                let mut writer = arrow_json::LineDelimitedWriter::new(&mut self.out);
                writer.write(&batch.data)?;
                writer.finish()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> ExecResult<()> {
        self.out.flush().map_err(|e| self.error("writing", e))
    }

    fn error(&self, doing: &str, e: std::io::Error) -> ExecError {
        ExecError::Connector(format!("{doing} sink file {}: {e}", self.path))
    }

    /// Flushes and returns the file's length: every row written so far is in the file.
    fn flushed_len(&mut self) -> ExecResult<u64> {
        self.flush()?;
        self.out.get_ref().metadata().map(|m| m.len()).map_err(|e| self.error("reading the length of", e))
    }

    /// Cuts the file back to `len` bytes, the length it had `at` (a checkpoint); writing goes
    /// on from there (the file is opened for appending).
    fn truncate(&mut self, len: u64, at: &str) -> ExecResult<()> {
        let now = self.flushed_len()?;
        if now < len {
            return Err(ExecError::Connector(format!(
                "sink file {} has {now} bytes, fewer than the {len} it had {at}: it was changed outside Weir",
                self.path
            )));
        }
        if now > len {
            self.out.get_ref().set_len(len).map_err(|e| self.error("truncating", e))?;
        }
        Ok(())
    }
}

const SNAPSHOT_VERSION: u8 = 1;

impl Operator for Sink {
    fn name(&self) -> &'static str {
        "Sink"
    }

    fn process_batch(
        &mut self,
        _input: usize,
        batch: StreamBatch,
        _out: &mut Vec<StreamBatch>,
    ) -> ExecResult<()> {
        self.check_lease()?;
        if let Some(writer) = &mut self.writer {
            if batch.ops.as_ref().is_some_and(|ops| ops.values().iter().any(|&op| op < 0)) {
                return Err(ExecError::Internal("file sink received a retraction".into()));
            }
            if batch.num_rows() > 0 {
                writer.write(&batch)?;
            }
        }
        Ok(())
    }

    fn on_barrier(&mut self, _barrier: &Barrier, _out: &mut Vec<StreamBatch>) -> ExecResult<()> {
        self.check_lease()?;
        match &mut self.writer {
            Some(writer) => writer.flush(),
            None => Ok(()),
        }
    }

    /// A file sink's position: `meta` is the format version, whether the CSV header is
    /// written, the file's length (`u64`) and its path. The deferred part writes nothing: it
    /// only syncs the file to disk, off the data path, before the checkpoint can commit.
    /// A blackhole has no state.
    fn snapshot(&mut self, _incremental: bool) -> ExecResult<Option<OperatorSnapshot>> {
        self.check_lease()?;
        let Some(writer) = &mut self.writer else { return Ok(None) };
        let len = writer.flushed_len()?;
        let mut meta = Vec::with_capacity(10 + writer.path.len());
        meta.push(SNAPSHOT_VERSION);
        meta.push(u8::from(writer.wrote_header));
        meta.extend_from_slice(&len.to_le_bytes());
        meta.extend_from_slice(writer.path.as_bytes());
        let file = writer.out.get_ref().try_clone().map_err(|e| writer.error("opening", e))?;
        let path = writer.path.clone();
        let deferred: DeferredState = Box::new(move |_out: &mut dyn Write| {
            file.sync_data().map_err(|e| ExecError::Connector(format!("syncing sink file {path}: {e}")))
        });
        Ok(Some(OperatorSnapshot { meta, deferred: Some(deferred), delta: false }))
    }

    fn restore(&mut self, meta: &[u8], _deferred: Option<&mut dyn Read>) -> ExecResult<()> {
        self.check_lease()?;
        let Some(writer) = &mut self.writer else {
            return Err(ExecError::Internal("a blackhole sink keeps no state to restore".into()));
        };
        let (wrote_header, len, path) = read_meta(meta)?;
        if path != writer.path {
            return Err(ExecError::Connector(format!(
                "the checkpoint has the sink writing to {path}, the sink is configured for {}",
                writer.path
            )));
        }
        writer.truncate(len, "at the checkpoint being restored")?;
        writer.wrote_header = wrote_header;
        Ok(())
    }

    /// A file sink's files stay with their subtask numbers: subtask `i` restores the file
    /// of old subtask `i`, and the files of old subtasks that no longer exist are cut back
    /// to their checkpointed lengths (by subtask `old % parallelism`) and then left alone,
    /// so that the rows replayed after the checkpoint are written once, by their new owner.
    fn restore_rescaled(
        &mut self,
        meta: &[u8],
        deferred: Option<&mut dyn Read>,
        scope: &super::RescaleScope,
    ) -> ExecResult<()> {
        if scope.old_subtask == scope.subtask {
            return self.restore(meta, deferred);
        }
        if scope.old_subtask < scope.parallelism || scope.old_subtask % scope.parallelism != scope.subtask {
            return Ok(());
        }
        self.check_lease()?;
        let Some((format, header)) = self.writer.as_ref().map(|w| (w.format, w.header)) else {
            return Err(ExecError::Internal("a blackhole sink keeps no state to restore".into()));
        };
        let (_, len, path) = read_meta(meta)?;
        let resolved = self.access.sink_path(path)?;
        let file = self.access.open_append(path)?;
        lock(&file, path)?;
        let mut orphan = FileWriter {
            path: path.to_string(),
            resolved,
            format,
            header,
            wrote_header: true,
            out: BufWriter::new(file),
        };
        orphan.truncate(len, "at the checkpoint being restored")
    }
}

/// A file sink snapshot's meta: whether the header was written, the file's length and path.
fn read_meta(meta: &[u8]) -> ExecResult<(bool, u64, &str)> {
    let corrupt = || ExecError::Internal("Sink: the snapshot is corrupt".into());
    let (&version, rest) = meta.split_first().ok_or_else(corrupt)?;
    if version != SNAPSHOT_VERSION {
        return Err(ExecError::Internal(format!("Sink: unknown snapshot version {version}")));
    }
    let (&wrote_header, rest) = rest.split_first().ok_or_else(corrupt)?;
    let (len, path) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
    let path = std::str::from_utf8(path).map_err(|_| corrupt())?;
    Ok((wrote_header != 0, u64::from_le_bytes(*len), path))
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray};

    use super::*;
    use crate::operators::test_util::batch;

    /// These tests write temporary files wherever they are.
    fn anywhere() -> FileAccess {
        FileAccess::new(&["/"]).expect("root")
    }

    #[test]
    fn a_file_sink_writes_only_under_the_allowed_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let allowed = dir.path().join("allowed");
        std::fs::create_dir_all(&allowed).expect("mkdir");
        let access = FileAccess::new(&[&allowed]).expect("access");
        let outside = dir.path().join("victim.csv");
        std::fs::write(&outside, "precious\n").expect("write");
        let config = file_config(&outside.display().to_string(), "csv", false);
        let refused = config.check_access(&access).expect_err("outside");
        assert!(matches!(refused, ExecError::PermissionDenied(_)), "{refused}");
        let refused = Sink::new(&config, 0, &access).err().expect("outside");
        assert!(matches!(refused, ExecError::PermissionDenied(_)), "{refused}");
        let inside = file_config("out.csv", "csv", false);
        inside.check_access(&access).expect("inside");
        Sink::new(&inside, 0, &access).expect("inside");
        assert!(allowed.join("out.csv").exists());
        assert_eq!(std::fs::read_to_string(&outside).expect("read"), "precious\n");
    }

    #[test]
    fn file_sink_appends_csv_and_flushes_at_barriers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.csv").display().to_string();
        let options =
            BTreeMap::from([("path".to_string(), path.clone()), ("header".to_string(), "true".to_string())]);
        let config = SinkConfig::parse("file", &options).expect("config");
        let mut sink = Sink::new(&config, 0, &anywhere()).expect("sink");
        let rows = batch(
            vec![
                ("id", std::sync::Arc::new(Int64Array::from(vec![1, 2]))),
                ("name", std::sync::Arc::new(StringArray::from(vec![Some("a"), None]))),
            ],
            None,
        );
        sink.process_batch(0, rows.clone(), &mut vec![]).expect("write");
        sink.process_batch(0, rows, &mut vec![]).expect("write");
        sink.on_barrier(&Barrier::new(1), &mut vec![]).expect("flush");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "id,name\n1,a\n2,\n1,a\n2,\n");
    }

    fn file_config(path: &str, format: &str, header: bool) -> SinkConfig {
        let options = BTreeMap::from([
            ("path".to_string(), path.to_string()),
            ("format".to_string(), format.to_string()),
            ("header".to_string(), header.to_string()),
        ]);
        SinkConfig::parse("file", &options).expect("config")
    }

    fn numbers(from: i64, to: i64) -> StreamBatch {
        let names: Vec<String> = (from..to).map(|i| format!("n{i}")).collect();
        batch(
            vec![
                ("id", std::sync::Arc::new(Int64Array::from((from..to).collect::<Vec<_>>()))),
                ("name", std::sync::Arc::new(StringArray::from(names))),
            ],
            None,
        )
    }

    fn write(sink: &mut Sink, batch: StreamBatch) {
        sink.process_batch(0, batch, &mut vec![]).expect("write");
    }

    fn barrier(sink: &mut Sink, epoch: u64) {
        sink.on_barrier(&Barrier::new(epoch), &mut vec![]).expect("barrier");
    }

    /// What `snapshot` hands over, with its deferred part run (it writes nothing).
    fn checkpoint(sink: &mut Sink, epoch: u64) -> Vec<u8> {
        barrier(sink, epoch);
        let snapshot = sink.snapshot(false).expect("snapshot").expect("a file sink has state");
        let mut written = Vec::new();
        if let Some(deferred) = snapshot.deferred {
            deferred(&mut written).expect("sync");
        }
        assert!(written.is_empty());
        snapshot.meta
    }

    /// Rows 0..10 in batches, with barriers between, into a file nobody interrupts.
    fn uninterrupted(path: &str, config: &SinkConfig) -> String {
        let mut sink = Sink::new(config, 0, &anywhere()).expect("sink");
        for (i, (from, to)) in [(0, 3), (3, 5), (5, 10)].into_iter().enumerate() {
            write(&mut sink, numbers(from, to));
            barrier(&mut sink, i as u64 + 1);
        }
        std::fs::read_to_string(path).expect("read")
    }

    #[test]
    fn a_restored_file_sink_writes_each_row_once() {
        for (format, header) in [("csv", true), ("csv", false), ("json", false)] {
            let dir = tempfile::tempdir().expect("tempdir");
            let expected_path = dir.path().join("expected").display().to_string();
            let expected = uninterrupted(&expected_path, &file_config(&expected_path, format, header));

            let path = dir.path().join("out").display().to_string();
            let config = file_config(&path, format, header);
            let mut sink = Sink::new(&config, 0, &anywhere()).expect("sink");
            write(&mut sink, numbers(0, 3));
            let meta = checkpoint(&mut sink, 1);
            // Epoch 2 reaches the file but its checkpoint never completes; then a crash.
            write(&mut sink, numbers(3, 5));
            barrier(&mut sink, 2);
            write(&mut sink, numbers(5, 6));
            drop(sink);
            assert!(std::fs::metadata(&path).expect("file").len() > 0);

            let mut restored = Sink::new(&config, 0, &anywhere()).expect("sink");
            restored.restore(&meta, None).expect("restore");
            // The replay after checkpoint 1.
            write(&mut restored, numbers(3, 5));
            barrier(&mut restored, 2);
            write(&mut restored, numbers(5, 10));
            barrier(&mut restored, 3);
            let text = std::fs::read_to_string(&path).expect("read");
            assert_eq!(text, expected, "format {format}, header {header}");
        }
    }

    #[test]
    fn a_sink_started_again_without_a_checkpoint_cuts_its_file_back_to_its_first_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.csv").display().to_string();
        std::fs::write(&path, "kept\n").expect("write");
        let config = file_config(&path, "csv", true);
        for attempt in 0..3 {
            let mut sink =
                Sink::new(&config, 0, &anywhere()).expect("sink").start_without_checkpoint(9).expect("start");
            // Each attempt replays from the beginning; the first two are cut short.
            write(&mut sink, numbers(0, 3));
            barrier(&mut sink, 1);
            if attempt < 2 {
                write(&mut sink, numbers(3, 4));
                barrier(&mut sink, 2);
                continue;
            }
            write(&mut sink, numbers(3, 5));
            barrier(&mut sink, 2);
        }
        // The header was in the file before the sink: it is not written again.
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "kept\n0,n0\n1,n1\n2,n2\n3,n3\n4,n4\n");
        // A restored sink leaves the marker alone and cuts back to its checkpoint instead.
        let mut sink = Sink::new(&config, 0, &anywhere()).expect("sink");
        let meta = checkpoint(&mut sink, 3);
        write(&mut sink, numbers(5, 6));
        barrier(&mut sink, 4);
        drop(sink);
        let mut restored = Sink::new(&config, 0, &anywhere()).expect("sink");
        restored.restore(&meta, None).expect("restore");
        drop(restored);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
        assert_eq!(remove_markers(std::path::Path::new(&path), 9).expect("remove"), 1);
    }

    #[test]
    fn a_sink_restored_to_an_empty_checkpoint_writes_the_header_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.csv").display().to_string();
        let config = file_config(&path, "csv", true);
        let mut sink = Sink::new(&config, 0, &anywhere()).expect("sink");
        let meta = checkpoint(&mut sink, 1);
        write(&mut sink, numbers(0, 3));
        barrier(&mut sink, 2);
        drop(sink);

        let mut restored = Sink::new(&config, 0, &anywhere()).expect("sink");
        restored.restore(&meta, Some(&mut &b""[..])).expect("restore");
        for (i, (from, to)) in [(0, 3), (3, 5), (5, 10)].into_iter().enumerate() {
            write(&mut restored, numbers(from, to));
            barrier(&mut restored, i as u64 + 2);
        }
        let expected_path = dir.path().join("expected.csv").display().to_string();
        let expected = uninterrupted(&expected_path, &file_config(&expected_path, "csv", true));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), expected);
    }

    #[test]
    fn a_sink_whose_lease_ran_out_writes_nothing_more() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.csv").display().to_string();
        let config = file_config(&path, "csv", false);
        let lease = Lease::valid_for(std::time::Duration::from_secs(60));
        let mut sink = Sink::new(&config, 0, &anywhere()).expect("sink").with_lease(lease.clone());
        write(&mut sink, numbers(0, 2));
        barrier(&mut sink, 1);
        write(&mut sink, numbers(2, 3));
        // Once the JobManager may have given up on this process, no more rows are written,
        // not even those still buffered when the sink is dropped.
        lease.revoke();
        let refused = sink.process_batch(0, numbers(3, 4), &mut vec![]).expect_err("fenced");
        assert!(matches!(refused, ExecError::Fenced(_)), "{refused}");
        assert!(matches!(sink.on_barrier(&Barrier::new(2), &mut vec![]), Err(ExecError::Fenced(_))));
        assert!(matches!(sink.snapshot(false), Err(ExecError::Fenced(_))));
        drop(sink);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "0,n0\n1,n1\n2,n2\n");
    }

    #[test]
    fn a_sink_file_has_one_writer_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.csv").display().to_string();
        let config = file_config(&path, "csv", false);
        let first = Sink::new(&config, 0, &anywhere()).expect("sink");
        let refused = Sink::new(&config, 0, &anywhere()).err().expect("locked");
        assert!(refused.to_string().contains("in use by another writer"), "{refused}");
        // Other subtasks write files of their own.
        Sink::new(&config, 1, &anywhere()).expect("subtask 1");
        drop(first);
        Sink::new(&config, 0, &anywhere()).expect("free again");
    }

    #[test]
    fn rescaled_file_sinks_write_each_row_once() {
        use crate::operators::RescaleScope;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.csv").display().to_string();
        let config = file_config(&path, "csv", false);
        let file = |i: usize| if i == 0 { path.clone() } else { format!("{path}.{i}") };
        // Four subtasks, a checkpoint, then rows the checkpoint does not cover.
        let mut metas = Vec::new();
        for i in 0..4 {
            let mut sink = Sink::new(&config, i, &anywhere()).expect("sink");
            write(&mut sink, numbers(i as i64 * 10, i as i64 * 10 + 2));
            metas.push(checkpoint(&mut sink, 1));
            write(&mut sink, numbers(100, 103));
            barrier(&mut sink, 2);
        }
        // Down to one: subtask 0 keeps its file and cuts the others back; then 0 to 2 again.
        let mut one = Sink::new(&config, 0, &anywhere()).expect("sink");
        for (old, meta) in metas.iter().enumerate() {
            one.restore_rescaled(meta, None, &RescaleScope::new(old, 0, 1)).expect("restore");
        }
        write(&mut one, numbers(100, 103));
        barrier(&mut one, 2);
        drop(one);
        let read = |i: usize| std::fs::read_to_string(file(i)).expect("read");
        assert_eq!(read(0), "0,n0\n1,n1\n100,n100\n101,n101\n102,n102\n");
        for i in 1..4 {
            assert_eq!(read(i), format!("{},n{}\n{},n{}\n", i * 10, i * 10, i * 10 + 1, i * 10 + 1));
        }
        // A subtask whose old subtask still exists leaves that file to it.
        let mut other = Sink::new(&config, 1, &anywhere()).expect("sink");
        other.restore_rescaled(&metas[0], None, &RescaleScope::new(0, 1, 2)).expect("restore");
        assert!(read(0).contains("102,n102"));
    }

    #[test]
    fn a_new_sink_still_appends_to_an_existing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.csv").display().to_string();
        std::fs::write(&path, "id,name\n").expect("existing file");
        let mut sink = Sink::new(&file_config(&path, "csv", true), 0, &anywhere()).expect("sink");
        write(&mut sink, numbers(0, 1));
        barrier(&mut sink, 1);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "id,name\n0,n0\n");
    }

    #[test]
    fn a_file_shorter_than_its_checkpoint_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.csv").display().to_string();
        let config = file_config(&path, "csv", false);
        let mut sink = Sink::new(&config, 0, &anywhere()).expect("sink");
        write(&mut sink, numbers(0, 3));
        let meta = checkpoint(&mut sink, 1);
        drop(sink);
        std::fs::write(&path, "0,n0\n").expect("someone else's edit");
        let mut restored = Sink::new(&config, 0, &anywhere()).expect("sink");
        let error = restored.restore(&meta, None).expect_err("shorter file");
        assert!(error.to_string().contains("changed outside Weir"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "0,n0\n", "left as it was");

        // Another subtask's file is not this one's checkpoint.
        let mut other = Sink::new(&config, 1, &anywhere()).expect("sink");
        assert!(other.restore(&meta, None).is_err());
    }

    #[test]
    fn a_blackhole_has_no_state() {
        let mut sink = Sink::new(&SinkConfig::Blackhole, 0, &FileAccess::default()).expect("sink");
        write(&mut sink, numbers(0, 3));
        assert!(sink.snapshot(false).expect("snapshot").is_none());
    }

    #[test]
    fn options_are_checked() {
        assert!(SinkConfig::parse("blackhole", &BTreeMap::new()).is_ok());
        assert!(SinkConfig::parse("file", &BTreeMap::new()).is_err());
        assert!(SinkConfig::parse("kafka", &BTreeMap::new()).is_err());
        let bad = BTreeMap::from([
            ("path".to_string(), "/tmp/x".to_string()),
            ("format".to_string(), "xml".to_string()),
        ]);
        assert!(SinkConfig::parse("file", &bad).is_err());
    }
}
