//! WindowClose: `EMIT ON WINDOW CLOSE` on a window query without an aggregate
//! (`SELECT * FROM TUMBLE(...) EMIT ON WINDOW CLOSE`, as RisingWave has it).
//!
//! Each row is held until the watermark passes the end of its window (its `window_end`
//! column, exclusive), then emitted, append-only, in window order; a row whose window has
//! already closed when it arrives is late: dropped and counted. The input is append-only
//! (the planner checks), so nothing is ever taken back.
//!
//! Checkpoints: `meta` holds the watermark and the late-row count; the deferred state the
//! held rows per window end, in order, so a restored operator emits what an uninterrupted
//! one would.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::datatypes::{SchemaRef, TimestampMicrosecondType};
use arrow::row::{OwnedRow, RowConverter, SortField};

use super::{DeferredState, Operator, OperatorSnapshot};
use crate::error::{ExecError, ExecResult};
use crate::message::StreamBatch;
use crate::state_codec::{read_bytes, read_u64, take_i64};

pub struct WindowClose {
    column: usize,
    schema: SchemaRef,
    rows: RowConverter,
    /// Held rows by their window's end.
    held: BTreeMap<i64, Vec<OwnedRow>>,
    held_rows: u64,
    watermark: i64,
    late_rows: u64,
}

fn corrupt(what: &str) -> ExecError {
    ExecError::Internal(format!("WindowClose state is corrupt: {what}"))
}

impl WindowClose {
    pub fn new(column: usize, schema: &SchemaRef) -> ExecResult<Self> {
        match schema.fields().get(column).map(|f| f.data_type()) {
            Some(arrow::datatypes::DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, _)) => {}
            other => {
                return Err(ExecError::InvalidGraph(format!(
                    "WindowClose: column {column} is {other:?}, not a timestamp"
                )))
            }
        }
        let fields = schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect();
        Ok(Self {
            column,
            schema: schema.clone(),
            rows: RowConverter::new(fields)?,
            held: BTreeMap::new(),
            held_rows: 0,
            watermark: i64::MIN,
            late_rows: 0,
        })
    }
}

impl Operator for WindowClose {
    fn name(&self) -> &'static str {
        "WindowClose"
    }

    fn process_batch(
        &mut self,
        _input: usize,
        batch: StreamBatch,
        _out: &mut Vec<StreamBatch>,
    ) -> ExecResult<()> {
        if batch.ops.as_ref().is_some_and(|ops| ops.values().iter().any(|&op| op < 0)) {
            return Err(ExecError::Internal("WindowClose received a retraction".into()));
        }
        let ends = batch
            .data
            .column(self.column)
            .as_primitive_opt::<TimestampMicrosecondType>()
            .ok_or_else(|| ExecError::Internal("WindowClose: window_end is not a timestamp".into()))?
            .clone();
        // A window ending at or before the watermark is closed.
        let on_time: BooleanArray =
            (0..ends.len()).map(|i| Some(ends.is_valid(i) && ends.value(i) > self.watermark)).collect();
        self.late_rows += on_time.false_count() as u64;
        let kept = batch.filter(&on_time)?;
        let rows = self.rows.convert_columns(kept.data.columns())?;
        let ends = kept.data.column(self.column).as_primitive::<TimestampMicrosecondType>();
        for (i, row) in rows.iter().enumerate() {
            self.held.entry(ends.value(i)).or_default().push(row.owned());
        }
        self.held_rows += rows.num_rows() as u64;
        Ok(())
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<StreamBatch>) -> ExecResult<Option<i64>> {
        self.watermark = self.watermark.max(watermark);
        let open = self.held.split_off(&self.watermark.saturating_add(1));
        let closed = std::mem::replace(&mut self.held, open);
        let rows: Vec<OwnedRow> = closed.into_values().flatten().collect();
        if !rows.is_empty() {
            self.held_rows -= rows.len() as u64;
            let columns = self.rows.convert_rows(rows.iter().map(|r| r.row()))?;
            let batch = arrow::array::RecordBatch::try_new(self.schema.clone(), columns)?;
            out.push(StreamBatch::inserts(batch));
        }
        Ok(Some(watermark))
    }

    fn late_rows(&self) -> u64 {
        self.late_rows
    }

    fn state_rows(&self) -> u64 {
        self.held_rows
    }

    /// The held rows: `u64` windows, then per window its end (`i64`), `u64` rows and each
    /// row (`u32` length, arrow-row bytes).
    fn snapshot(&mut self, _incremental: bool) -> ExecResult<Option<OperatorSnapshot>> {
        let mut meta = Vec::with_capacity(16);
        meta.extend_from_slice(&self.watermark.to_le_bytes());
        meta.extend_from_slice(&self.late_rows.to_le_bytes());
        let mut state = Vec::new();
        state.extend_from_slice(&(self.held.len() as u64).to_le_bytes());
        for (end, rows) in &self.held {
            state.extend_from_slice(&end.to_le_bytes());
            state.extend_from_slice(&(rows.len() as u64).to_le_bytes());
            for row in rows {
                let row = row.row();
                let bytes = row.as_ref();
                let len = u32::try_from(bytes.len()).map_err(|_| corrupt("a row over 4 GiB"))?;
                state.extend_from_slice(&len.to_le_bytes());
                state.extend_from_slice(bytes);
            }
        }
        let deferred: DeferredState = Box::new(move |out: &mut dyn Write| {
            out.write_all(&state).map_err(|e| ExecError::Internal(format!("WindowClose state: {e}")))
        });
        Ok(Some(OperatorSnapshot { meta, deferred: Some(deferred), delta: false }))
    }

    fn restore(&mut self, mut meta: &[u8], deferred: Option<&mut dyn Read>) -> ExecResult<()> {
        self.watermark = take_i64(&mut meta).ok_or_else(|| corrupt("meta"))?;
        self.late_rows = take_i64(&mut meta).ok_or_else(|| corrupt("meta"))? as u64;
        let mut input = std::io::BufReader::new(deferred.ok_or_else(|| corrupt("no held rows"))?);
        let io = |e: std::io::Error| corrupt(&e.to_string());
        let parser = self.rows.parser();
        let (mut held, mut held_rows, mut bytes) = (BTreeMap::new(), 0u64, Vec::new());
        for _ in 0..read_u64(&mut input).map_err(io)? {
            let end = read_u64(&mut input).map_err(io)? as i64;
            let count = read_u64(&mut input).map_err(io)?;
            let mut rows = Vec::new();
            for _ in 0..count {
                read_bytes(&mut input, &mut bytes).map_err(io)?;
                rows.push(parser.parse(&bytes).owned());
            }
            held_rows += count;
            held.insert(end, rows);
        }
        self.held = held;
        self.held_rows = held_rows;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, TimestampMicrosecondArray};

    use super::*;
    use crate::operators::test_util::{assert_output, batch};

    const S: i64 = 1_000_000;

    fn rows(ids: Vec<i64>, ends: Vec<i64>) -> StreamBatch {
        batch(
            vec![
                ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
                (
                    "window_end",
                    Arc::new(TimestampMicrosecondArray::from(
                        ends.into_iter().map(|e| e * S).collect::<Vec<_>>(),
                    )),
                ),
            ],
            None,
        )
    }

    #[test]
    fn rows_wait_for_their_window_to_close_and_survive_a_restore() {
        let input = rows(vec![1, 2, 3], vec![10, 20, 10]);
        let schema = input.data.schema();
        let mut op = WindowClose::new(1, &schema).unwrap();
        let mut out = vec![];
        op.process_batch(0, input, &mut out).unwrap();
        assert!(out.is_empty(), "nothing before a window closes");
        op.on_watermark(9 * S, &mut out).unwrap();
        assert!(out.is_empty());
        op.on_watermark(10 * S, &mut out).unwrap();
        assert_output(
            &out,
            &[
                "+----+----+---------------------+",
                "| op | id | window_end          |",
                "+----+----+---------------------+",
                "| +  | 1  | 1970-01-01T00:00:10 |",
                "| +  | 3  | 1970-01-01T00:00:10 |",
                "+----+----+---------------------+",
            ],
        );
        // Late: its window closed at 10 s.
        op.process_batch(0, rows(vec![4], vec![10]), &mut vec![]).unwrap();
        assert_eq!(op.late_rows(), 1);
        let snapshot = op.snapshot(false).unwrap().unwrap();
        let mut state = Vec::new();
        (snapshot.deferred.unwrap())(&mut state).unwrap();
        let mut restored = WindowClose::new(1, &schema).unwrap();
        restored.restore(&snapshot.meta, Some(&mut state.as_slice())).unwrap();
        assert_eq!((restored.state_rows(), restored.late_rows()), (1, 1));
        let mut out = vec![];
        restored.on_watermark(25 * S, &mut out).unwrap();
        assert_eq!(out.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
        assert_eq!(restored.state_rows(), 0);
    }
}
