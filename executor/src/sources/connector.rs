//! Connector source: drives one split reader of a `CREATE SOURCE` as a stream.
//!
//! The reader is blocking code, so each read of a batch runs on the process's bounded
//! [`ReaderPool`]; the source itself is an async task that holds no thread while it waits. It
//! reads a batch, sends it, and between batches serves barriers (recording the split's offset, which is
//! what a checkpoint will store). It also generates the split's watermark from the declared
//! `WATERMARK FOR` expression: after each batch, the maximum of the expression over the rows
//! seen so far, sent when it advances. When a rate-limited or unbounded split has had no
//! rows for `idle_timeout`, it sends `Idle` so the split does not hold back the watermark of
//! the operators downstream; its next rows make it active again. A bounded split that has
//! been read to its end sends a final `Watermark(i64::MAX)`, which closes every window, and
//! keeps serving barriers until the job is stopped.
//!
//! In a job whose sources are aligned ([`alignment`](super::alignment)), the source reports
//! its watermark to its job's group after each batch, and before each read pauses while
//! its watermark leads the job's slowest source by more than the maximum drift, still
//! serving barriers.
//!
//! A source with a processing-time column (`proc_time AS PROCTIME()`) fills it here, with
//! the time each batch is emitted ([`ProctimeFiller`]), before the watermark sees the batch.
//!
//! A malformed row is counted, logged with its location and reason, and skipped; with
//! `on_error = 'fail'` it fails the source (and so the job) instead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tracing::{info, warn};

use crate::clock::wall_clock_us;
use crate::connectors::metrics::SourceMetrics;
use crate::connectors::{ReadOutcome, SplitReader};
use crate::data_plane::ChannelSender;
use crate::error::{ExecError, ExecResult};
use crate::message::{Barrier, Message, StreamBatch};
use crate::sources::alignment::AlignmentMember;
use crate::sources::proctime::ProctimeFiller;
use crate::sources::reader_pool::ReaderPool;
use crate::sources::watermark::WatermarkGenerator;
use weir_plan::catalog::Watermark;

/// Longest sleep between checks for barriers while a reader has nothing to return.
const MAX_POLL_SLEEP: Duration = Duration::from_millis(10);

/// A paused source checks its alignment at least this often, besides when woken.
const PAUSED_RECHECK: Duration = Duration::from_millis(100);

/// How a source treats malformed rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    Skip,
    Fail,
}

pub struct SourceSettings {
    pub on_error: OnError,
    pub idle_timeout: Duration,
}

pub struct ConnectorSource {
    /// `None` only while a read of it runs on the pool.
    reader: Option<Box<dyn SplitReader>>,
    watermark: Option<WatermarkGenerator>,
    proctime: Option<ProctimeFiller>,
    settings: SourceSettings,
    metrics: Arc<SourceMetrics>,
    out: ChannelSender,
    barriers: mpsc::UnboundedReceiver<Barrier>,
    /// The split's place in its job's watermark alignment; `None` when not aligned.
    alignment: Option<AlignmentMember>,
}

/// Whether watermark alignment held a source back before a read.
enum Held {
    No,
    Paused,
    /// The job was stopped while the source waited.
    Stopped,
}

/// What woke a paused source.
enum Wake {
    Barrier(Option<Barrier>),
    Check,
}

impl ConnectorSource {
    pub fn new(
        reader: Box<dyn SplitReader>,
        schema: &SchemaRef,
        watermark: Option<&Watermark>,
        settings: SourceSettings,
        metrics: Arc<SourceMetrics>,
        out: ChannelSender,
        barriers: mpsc::UnboundedReceiver<Barrier>,
    ) -> ExecResult<Self> {
        let watermark = watermark.map(|spec| WatermarkGenerator::new(spec, schema)).transpose()?;
        Ok(Self {
            reader: Some(reader),
            watermark,
            proctime: None,
            settings,
            metrics,
            out,
            barriers,
            alignment: None,
        })
    }

    /// Reads in step with the other members of `member`'s group (its job's event-time
    /// sources). A source without a watermark is never aligned.
    pub fn with_alignment(mut self, member: AlignmentMember) -> Self {
        if self.watermark.is_some() {
            self.alignment = Some(member);
        }
        self
    }

    /// Fills column `column` of `schema` (the source's columns; the reader reads the others)
    /// with the time each batch is emitted.
    pub fn with_proctime(mut self, schema: &SchemaRef, column: usize) -> ExecResult<Self> {
        self.proctime = Some(ProctimeFiller::new(schema.clone(), column)?);
        Ok(self)
    }

    /// Reads until the job is stopped (the barrier channel closes) or the consumer is gone,
    /// each batch on a thread of `readers`.
    pub async fn run(&mut self, readers: &ReaderPool) -> ExecResult<()> {
        let name = self.metrics.source_name.clone();
        let split = self.metrics.split;
        self.metrics.set_status("running");
        let mut finished = false;
        let mut idle = false;
        let mut last_rows = Instant::now();
        loop {
            // Barriers first: they must not wait behind a long read.
            loop {
                match self.barriers.try_recv() {
                    Ok(barrier) => self.barrier(barrier).await?,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return Ok(()),
                }
            }
            if finished {
                match self.barriers.recv().await {
                    Some(barrier) => self.barrier(barrier).await?,
                    None => return Ok(()),
                }
                continue;
            }
            if !idle && self.alignment.is_some() {
                match self.hold_while_ahead().await? {
                    Held::No => {}
                    // Time spent paused is not time without rows.
                    Held::Paused => last_rows = Instant::now(),
                    Held::Stopped => return Ok(()),
                }
            }
            match self.read(readers).await? {
                Ok(ReadOutcome::Batch(batch)) => {
                    self.report_errors()?;
                    if batch.num_rows() == 0 {
                        continue;
                    }
                    if idle {
                        self.metrics.set_status("running");
                    }
                    idle = false;
                    last_rows = Instant::now();
                    self.metrics.add_rows(batch.num_rows() as u64);
                    let batch = match &self.proctime {
                        Some(filler) => filler.fill(&batch, wall_clock_us())?,
                        None => batch,
                    };
                    let watermark = self.advance_watermark(&batch)?;
                    if let Some(member) = &self.alignment {
                        member.reading(self.watermark.as_ref().and_then(WatermarkGenerator::current));
                    }
                    self.send(Message::Batch(StreamBatch::inserts(batch))).await?;
                    if let Some(w) = watermark {
                        self.send(Message::Watermark(w)).await?;
                    }
                }
                Ok(ReadOutcome::Wait(wait)) => {
                    self.report_errors()?;
                    if !idle && self.watermark.is_some() && last_rows.elapsed() >= self.settings.idle_timeout
                    {
                        idle = true;
                        self.metrics.set_status("idle");
                        info!(source = %name, split, "source split is idle; it no longer holds back the watermark");
                        if let Some(member) = &self.alignment {
                            member.idle();
                        }
                        self.send(Message::Idle).await?;
                    }
                    tokio::time::sleep(wait.min(MAX_POLL_SLEEP)).await;
                }
                Ok(ReadOutcome::Finished) => {
                    self.report_errors()?;
                    finished = true;
                    if let Some(member) = &self.alignment {
                        member.finished();
                    }
                    self.metrics.set_status("finished");
                    let offset = self.reader()?.offset();
                    self.metrics.set_offset(offset.to_string());
                    info!(source = %name, split, rows = crate::connectors::metrics::count(&self.metrics.rows_read), "source split finished");
                    if self.watermark.is_some() {
                        self.metrics.watermark.store(i64::MAX, std::sync::atomic::Ordering::Relaxed);
                        self.send(Message::Watermark(i64::MAX)).await?;
                    }
                }
                Err(e) => {
                    self.metrics.set_status("failed");
                    self.metrics.set_error(e.to_string());
                    return Err(e);
                }
            }
        }
    }

    /// Waits while watermark alignment says this split leads its job's slowest source by
    /// more than the maximum drift, serving barriers meanwhile (so checkpoints complete).
    async fn hold_while_ahead(&mut self) -> ExecResult<Held> {
        let Some(member) = &self.alignment else { return Ok(Held::No) };
        let Some(slowest) = member.must_pause() else { return Ok(Held::No) };
        let (job, max_drift_ms) = (member.job(), member.max_drift() / 1000);
        let (source, split) = (self.metrics.source_name.clone(), self.metrics.split);
        let watermark = self.watermark.as_ref().and_then(WatermarkGenerator::current).unwrap_or(i64::MIN);
        info!(
            job,
            source = %source,
            split,
            watermark = %event_time(watermark),
            slowest = %event_time(slowest),
            max_drift_ms,
            "source split paused: its watermark leads the job's slowest source by more than the maximum drift"
        );
        self.metrics.set_status("paused");
        let started = Instant::now();
        let mut counted = started;
        while let Some(member) = self.alignment.as_mut() {
            let wake = tokio::select! {
                barrier = self.barriers.recv() => Wake::Barrier(barrier),
                () = member.changed() => Wake::Check,
                () = tokio::time::sleep(PAUSED_RECHECK) => Wake::Check,
            };
            let now = Instant::now();
            self.metrics.add_paused(now - counted);
            counted = now;
            match wake {
                Wake::Barrier(Some(barrier)) => self.barrier(barrier).await?,
                Wake::Barrier(None) => return Ok(Held::Stopped),
                Wake::Check => {}
            }
            if self.alignment.as_ref().and_then(AlignmentMember::must_pause).is_none() {
                break;
            }
        }
        self.metrics.set_status("running");
        info!(
            job,
            source = %source,
            split,
            paused_ms = started.elapsed().as_millis() as u64,
            "source split resumed: the job's slowest source caught up"
        );
        Ok(Held::Paused)
    }

    /// Reads the next batch on the pool; the outer error is the pool's, the inner the reader's.
    async fn read(&mut self, readers: &ReaderPool) -> ExecResult<ExecResult<ReadOutcome>> {
        let reader = self.reader.take().ok_or_else(reader_gone)?;
        let (reader, outcome) = readers.next_batch(reader).await?;
        self.reader = Some(reader);
        Ok(outcome)
    }

    fn reader(&mut self) -> ExecResult<&mut Box<dyn SplitReader>> {
        self.reader.as_mut().ok_or_else(reader_gone)
    }

    async fn barrier(&mut self, mut barrier: Barrier) -> ExecResult<()> {
        let offset = self.reader()?.offset();
        self.metrics.set_offset(offset.to_string());
        if barrier.checkpoint {
            barrier.source_offset = Some(Arc::new(offset));
        }
        self.send(Message::Barrier(barrier)).await
    }

    async fn send(&mut self, message: Message) -> ExecResult<()> {
        self.out.send(message).await.map_err(|_| ExecError::ChannelClosed("source output".into()))
    }

    /// Counts and logs the rows the reader skipped; fails under `on_error = 'fail'`.
    fn report_errors(&mut self) -> ExecResult<()> {
        let errors = self.reader()?.take_errors();
        if errors.is_empty() {
            return Ok(());
        }
        let source = &self.metrics.source_name;
        self.metrics.parse_errors.fetch_add(errors.len() as u64, std::sync::atomic::Ordering::Relaxed);
        for e in &errors {
            warn!(source = %source, location = %e.location, reason = %e.reason, "malformed source row skipped");
        }
        if let Some(last) = errors.last() {
            self.metrics.set_error(format!("{}: {}", last.location, last.reason));
        }
        if self.settings.on_error == OnError::Fail {
            let first = &errors[0];
            self.metrics.set_status("failed");
            return Err(ExecError::Connector(format!(
                "source {source}: malformed row at {}: {} (on_error = 'fail')",
                first.location, first.reason
            )));
        }
        Ok(())
    }

    /// Raises the watermark to the largest value of the expression seen; returns it if it
    /// advanced.
    fn advance_watermark(&mut self, batch: &arrow::array::RecordBatch) -> ExecResult<Option<i64>> {
        let Some(generator) = &mut self.watermark else { return Ok(None) };
        let advanced = generator.observe(batch)?;
        if let Some(w) = advanced {
            self.metrics.watermark.store(w, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(advanced)
    }
}

/// A watermark for the log: a UTC timestamp, or what `i64::MIN` stands for there (a source
/// of the job that has not read yet).
fn event_time(micros: i64) -> String {
    match (micros, chrono::DateTime::from_timestamp_micros(micros)) {
        (i64::MIN, _) => "a source that has not read yet".into(),
        (_, Some(t)) => t.naive_utc().to_string(),
        (_, None) => format!("{micros} us"),
    }
}

/// The reader was lost with a read that never came back (its thread panicked).
fn reader_gone() -> ExecError {
    ExecError::Internal("source reader lost after a failed read".into())
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use arrow::array::{RecordBatch, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;
    use crate::connectors::RowError;

    const S: i64 = 1_000_000;

    /// Returns scripted outcomes, then `Finished` (or waits forever when `endless`).
    struct Scripted {
        script: VecDeque<ReadOutcome>,
        errors: Vec<RowError>,
        endless: bool,
        read: usize,
    }

    impl SplitReader for Scripted {
        fn next_batch(&mut self) -> ExecResult<ReadOutcome> {
            match self.script.pop_front() {
                Some(outcome) => {
                    self.read += 1;
                    Ok(outcome)
                }
                None if self.endless => Ok(ReadOutcome::Wait(Duration::from_millis(5))),
                None => Ok(ReadOutcome::Finished),
            }
        }

        fn take_errors(&mut self) -> Vec<RowError> {
            std::mem::take(&mut self.errors)
        }

        fn offset(&self) -> serde_json::Value {
            serde_json::json!({ "read": self.read })
        }

        fn seek(&mut self, _offset: &serde_json::Value) -> ExecResult<()> {
            Ok(())
        }
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true)]))
    }

    fn rows(secs: &[i64]) -> ReadOutcome {
        let ts = TimestampMicrosecondArray::from(secs.iter().map(|s| s * S).collect::<Vec<_>>());
        ReadOutcome::Batch(RecordBatch::try_new(schema(), vec![Arc::new(ts)]).unwrap())
    }

    /// Starts a source over `reader`; returns its output, its barrier sender and metrics.
    fn start(
        reader: Scripted,
        on_error: OnError,
        idle_ms: u64,
    ) -> (
        mpsc::Receiver<Message>,
        mpsc::UnboundedSender<Barrier>,
        Arc<SourceMetrics>,
        std::thread::JoinHandle<ExecResult<()>>,
    ) {
        start_aligned(reader, on_error, idle_ms, None)
    }

    /// [`start`], the source a member of an alignment group.
    fn start_aligned(
        reader: Scripted,
        on_error: OnError,
        idle_ms: u64,
        alignment: Option<AlignmentMember>,
    ) -> (
        mpsc::Receiver<Message>,
        mpsc::UnboundedSender<Barrier>,
        Arc<SourceMetrics>,
        std::thread::JoinHandle<ExecResult<()>>,
    ) {
        let (tx, rx) = mpsc::channel(64);
        let (barrier_tx, barrier_rx) = mpsc::unbounded_channel();
        let metrics = Arc::new(SourceMetrics::new(1, "s", "test", 0));
        let watermark = Watermark {
            column: 0,
            expr: "t - INTERVAL '4' SECOND".into(),
            positional_expr: "_c0 - INTERVAL '4' SECOND".into(),
        };
        let settings = SourceSettings { on_error, idle_timeout: Duration::from_millis(idle_ms) };
        let mut source = ConnectorSource::new(
            Box::new(reader),
            &schema(),
            Some(&watermark),
            settings,
            metrics.clone(),
            tx,
            barrier_rx,
        )
        .unwrap();
        if let Some(member) = alignment {
            source = source.with_alignment(member);
        }
        let handle = std::thread::spawn(move || {
            let mut source = source;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(source.run(&ReaderPool::new(1)))
        });
        (rx, barrier_tx, metrics, handle)
    }

    fn describe(message: &Message) -> String {
        match message {
            Message::Batch(b) => format!("rows {}", b.num_rows()),
            Message::Watermark(i64::MAX) => "W end".into(),
            Message::Watermark(w) => format!("W {}", w / S),
            Message::Idle => "idle".into(),
            Message::Barrier(b) => format!("B{}", b.epoch),
        }
    }

    #[test]
    fn watermarks_follow_the_rows_and_the_end_closes_everything() {
        let script = VecDeque::from([rows(&[10, 12]), rows(&[11]), rows(&[20])]);
        let reader = Scripted { script, errors: vec![], endless: false, read: 0 };
        let (mut rx, barriers, metrics, handle) = start(reader, OnError::Skip, 60_000);
        let mut seen = Vec::new();
        while seen.last().map(String::as_str) != Some("W end") {
            seen.push(describe(&rx.blocking_recv().unwrap()));
        }
        // 11 s does not move the watermark back or repeat it.
        assert_eq!(seen, ["rows 2", "W 8", "rows 1", "rows 1", "W 16", "W end"]);
        // A finished source keeps passing barriers, with its final offset recorded.
        barriers.send(Barrier::new(1)).unwrap();
        assert_eq!(describe(&rx.blocking_recv().unwrap()), "B1");
        assert_eq!(metrics.state().status, "finished");
        assert_eq!(metrics.state().offset, r#"{"read":3}"#);
        assert_eq!(crate::connectors::metrics::count(&metrics.rows_read), 4);
        drop(barriers);
        handle.join().unwrap().unwrap();
    }

    #[test]
    fn a_split_without_rows_goes_idle() {
        let reader =
            Scripted { script: VecDeque::from([rows(&[10])]), errors: vec![], endless: true, read: 0 };
        let (mut rx, barriers, metrics, handle) = start(reader, OnError::Skip, 50);
        let seen: Vec<String> = (0..3).map(|_| describe(&rx.blocking_recv().unwrap())).collect();
        assert_eq!(seen, ["rows 1", "W 6", "idle"]);
        assert_eq!(metrics.state().status, "idle");
        barriers.send(Barrier::new(1)).unwrap();
        assert_eq!(describe(&rx.blocking_recv().unwrap()), "B1");
        drop(barriers);
        handle.join().unwrap().unwrap();
    }

    #[test]
    fn a_source_ahead_of_its_job_pauses_serving_barriers_until_the_slowest_catches_up() {
        let groups = crate::sources::alignment::AlignmentGroups::default();
        let task = |vertex| crate::task::TaskId { job: 1, vertex, subtask: 0 };
        let alignment =
            crate::sources::alignment::SourceAlignment { max_drift_us: 5 * S, members_in_process: 2 };
        let slow = groups.join(task(0), 1, alignment);
        slow.reading(Some(0));
        let script = VecDeque::from([rows(&[10]), rows(&[20]), rows(&[30]), rows(&[40])]);
        let reader = Scripted { script, errors: vec![], endless: true, read: 0 };
        let member = groups.join(task(1), 1, alignment);
        let (mut rx, barriers, metrics, handle) = start_aligned(reader, OnError::Skip, 60_000, Some(member));
        let next = |rx: &mut mpsc::Receiver<Message>| describe(&rx.blocking_recv().unwrap());
        assert_eq!([next(&mut rx), next(&mut rx)], ["rows 1", "W 6"]);
        // 6 s leads the slowest (0 s) by more than 5 s: nothing more is read...
        std::thread::sleep(Duration::from_millis(300));
        assert!(rx.try_recv().is_err(), "a source beyond the drift read on");
        assert_eq!(metrics.state().status, "paused");
        // ...but barriers pass, so checkpoints complete.
        barriers.send(Barrier::new(1)).unwrap();
        assert_eq!(next(&mut rx), "B1");
        assert!(crate::connectors::metrics::count(&metrics.paused_us) > 0);
        // The slowest catching up to within the drift lets it read on while it stays within
        // it: 16 s is within 5 s of 12 s, 26 s is not.
        slow.reading(Some(12 * S));
        assert_eq!(
            [next(&mut rx), next(&mut rx), next(&mut rx), next(&mut rx)],
            ["rows 1", "W 16", "rows 1", "W 26"]
        );
        std::thread::sleep(Duration::from_millis(300));
        assert!(rx.try_recv().is_err(), "26 s leads 12 s by more than 5 s");
        // A finished (or stopped) slowest member holds nothing back.
        slow.finished();
        assert_eq!([next(&mut rx), next(&mut rx)], ["rows 1", "W 36"]);
        assert_eq!(metrics.state().status, "running");
        drop(barriers);
        handle.join().unwrap().unwrap();
    }

    #[test]
    fn malformed_rows_are_counted_or_fail_the_source() {
        let error = RowError { location: "f.csv line 3".into(), reason: "bad".into() };
        let make = || Scripted {
            script: VecDeque::from([rows(&[1])]),
            errors: vec![error.clone()],
            endless: false,
            read: 0,
        };
        let (mut rx, barriers, metrics, handle) = start(make(), OnError::Skip, 60_000);
        assert_eq!(describe(&rx.blocking_recv().unwrap()), "rows 1");
        assert_eq!(crate::connectors::metrics::count(&metrics.parse_errors), 1);
        assert_eq!(metrics.state().last_error.as_deref(), Some("f.csv line 3: bad"));
        drop(barriers);
        drop(rx);
        let _ = handle.join().unwrap();

        let (_rx, _barriers, metrics, handle) = start(make(), OnError::Fail, 60_000);
        let err = handle.join().unwrap().unwrap_err();
        assert!(err.to_string().contains("f.csv line 3"), "{err}");
        assert_eq!(metrics.state().status, "failed");
    }
}
