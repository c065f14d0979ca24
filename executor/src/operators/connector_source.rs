//! Connector source: drives one split reader of a `CREATE SOURCE` as a stream.
//!
//! The reader is blocking code, so the source runs on a blocking thread: it reads a batch,
//! sends it, and between batches serves barriers (recording the split's offset, which is
//! what a checkpoint will store). It also generates the split's watermark from the declared
//! `WATERMARK FOR` expression: after each batch, the maximum of the expression over the rows
//! seen so far, sent when it advances. When a rate-limited or unbounded split has had no
//! rows for `idle_timeout`, it sends `Idle` so the split does not hold back the watermark of
//! the operators downstream; its next rows make it active again. A bounded split that has
//! been read to its end sends a final `Watermark(i64::MAX)`, which closes every window, and
//! keeps serving barriers until the job is stopped.
//!
//! A malformed row is counted, logged with its location and reason, and skipped; with
//! `on_error = 'fail'` it fails the source (and so the job) instead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{SchemaRef, TimestampMicrosecondType};
use datafusion::physical_expr::PhysicalExpr;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tracing::{info, warn};

use crate::connectors::metrics::SourceMetrics;
use crate::connectors::{ReadOutcome, SplitReader};
use crate::error::{ExecError, ExecResult};
use crate::expr::ExprCompiler;
use crate::job_graph::WatermarkSpec;
use crate::message::{Barrier, Message, StreamBatch};

/// Longest sleep between checks for barriers while a reader has nothing to return.
const MAX_POLL_SLEEP: Duration = Duration::from_millis(10);

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

struct WatermarkGenerator {
    expr: Arc<dyn PhysicalExpr>,
    current: i64,
}

pub struct ConnectorSource {
    reader: Box<dyn SplitReader>,
    watermark: Option<WatermarkGenerator>,
    settings: SourceSettings,
    metrics: Arc<SourceMetrics>,
    out: mpsc::Sender<Message>,
    barriers: mpsc::UnboundedReceiver<Barrier>,
}

impl ConnectorSource {
    pub fn new(
        reader: Box<dyn SplitReader>,
        schema: &SchemaRef,
        watermark: Option<&WatermarkSpec>,
        settings: SourceSettings,
        metrics: Arc<SourceMetrics>,
        out: mpsc::Sender<Message>,
        barriers: mpsc::UnboundedReceiver<Barrier>,
    ) -> ExecResult<Self> {
        let watermark = match watermark {
            Some(spec) => {
                let time_type = schema
                    .fields()
                    .get(spec.column)
                    .map(|f| f.data_type().clone())
                    .ok_or_else(|| ExecError::InvalidGraph(format!("no watermark column {}", spec.column)))?;
                let expr = ExprCompiler::default().compile(&spec.expr, schema, Some(&time_type))?;
                Some(WatermarkGenerator { expr, current: i64::MIN })
            }
            None => None,
        };
        Ok(Self { reader, watermark, settings, metrics, out, barriers })
    }

    /// Reads until the job is stopped (the barrier channel closes) or the consumer is gone.
    /// Blocking: run it with `spawn_blocking`.
    pub fn run_blocking(mut self) -> ExecResult<()> {
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
                    Ok(barrier) => self.barrier(barrier)?,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return Ok(()),
                }
            }
            if finished {
                match self.barriers.blocking_recv() {
                    Some(barrier) => self.barrier(barrier)?,
                    None => return Ok(()),
                }
                continue;
            }
            match self.reader.next_batch() {
                Ok(ReadOutcome::Batch(batch)) => {
                    self.report_errors()?;
                    if batch.num_rows() == 0 {
                        continue;
                    }
                    idle = false;
                    last_rows = Instant::now();
                    self.metrics.add_rows(batch.num_rows() as u64);
                    let watermark = self.advance_watermark(&batch)?;
                    self.send(Message::Batch(StreamBatch::inserts(batch)))?;
                    if let Some(w) = watermark {
                        self.send(Message::Watermark(w))?;
                    }
                }
                Ok(ReadOutcome::Wait(wait)) => {
                    self.report_errors()?;
                    if !idle && self.watermark.is_some() && last_rows.elapsed() >= self.settings.idle_timeout {
                        idle = true;
                        self.metrics.set_status("idle");
                        info!(source = %name, split, "source split is idle; it no longer holds back the watermark");
                        self.send(Message::Idle)?;
                    }
                    std::thread::sleep(wait.min(MAX_POLL_SLEEP));
                }
                Ok(ReadOutcome::Finished) => {
                    self.report_errors()?;
                    finished = true;
                    self.metrics.set_status("finished");
                    self.metrics.set_offset(self.reader.offset().to_string());
                    info!(source = %name, split, rows = crate::connectors::metrics::count(&self.metrics.rows_read), "source split finished");
                    if self.watermark.is_some() {
                        self.metrics.watermark.store(i64::MAX, std::sync::atomic::Ordering::Relaxed);
                        self.send(Message::Watermark(i64::MAX))?;
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

    fn barrier(&mut self, barrier: Barrier) -> ExecResult<()> {
        self.metrics.set_offset(self.reader.offset().to_string());
        self.send(Message::Barrier(barrier))
    }

    fn send(&self, message: Message) -> ExecResult<()> {
        self.out.blocking_send(message).map_err(|_| ExecError::ChannelClosed("source output".into()))
    }

    /// Counts and logs the rows the reader skipped; fails under `on_error = 'fail'`.
    fn report_errors(&mut self) -> ExecResult<()> {
        let errors = self.reader.take_errors();
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
        let values = generator.expr.evaluate(batch)?.into_array(batch.num_rows())?;
        let values = values
            .as_primitive_opt::<TimestampMicrosecondType>()
            .ok_or_else(|| ExecError::Internal("watermark expression is not a timestamp".into()))?;
        let max = match values.null_count() {
            0 => values.values().iter().copied().max(),
            _ => values.iter().flatten().max(),
        };
        match max {
            Some(max) if max > generator.current => {
                generator.current = max;
                self.metrics.watermark.store(max, std::sync::atomic::Ordering::Relaxed);
                Ok(Some(max))
            }
            _ => Ok(None),
        }
    }
}
