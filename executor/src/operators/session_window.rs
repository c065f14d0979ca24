//! SessionWindow: the SESSION window table-valued function.
//!
//! Rows of one key (the optional partition columns) whose event times are closer than
//! `gap` belong to one session `[first time, last time + gap)`. A session can still grow or
//! merge with a neighbour until the watermark passes its end, so rows are held per key and
//! emitted — with `window_start` / `window_end` appended, append-only — once the watermark
//! closes their session. A row whose own window `[ts, ts + gap)` is already closed when it
//! arrives is late: dropped and counted. Input must be append-only (the planner checks).
//!
//! Keys to look at are found through a deadline index (`ts + gap` of every held row), so a
//! watermark only touches keys that may have a closed session.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{SchemaRef, TimestampMicrosecondType};
use arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::hash_utils::RandomState;

use super::window_assign::{time_type, timestamps, window_schema};
use super::Operator;
use crate::error::{ExecError, ExecResult};
use crate::message::{StreamBatch, OP_DELETE};

pub struct SessionWindow {
    gap: i64,
    time_column: usize,
    keys: Vec<usize>,
    output_schema: SchemaRef,
    time_type: arrow::datatypes::DataType,
    key_converter: RowConverter,
    row_converter: RowConverter,
    /// Held rows per key: (event time, the full input row).
    held: HashMap<Arc<[u8]>, Vec<(i64, OwnedRow)>, RandomState>,
    /// `ts + gap` of held rows -> keys to re-examine once the watermark reaches it.
    deadlines: BTreeMap<i64, Vec<Arc<[u8]>>>,
    held_rows: u64,
    watermark: i64,
    late_rows: u64,
}

impl SessionWindow {
    pub fn new(gap: i64, time_column: usize, keys: Vec<usize>, input_schema: &SchemaRef) -> ExecResult<Self> {
        let time_type = time_type(input_schema, time_column)?;
        if gap <= 0 {
            return Err(ExecError::InvalidGraph("SessionWindow: the gap must be positive".into()));
        }
        let field = |c: usize| {
            input_schema
                .fields()
                .get(c)
                .map(|f| SortField::new(f.data_type().clone()))
                .ok_or_else(|| ExecError::InvalidGraph(format!("SessionWindow: no column {c}")))
        };
        let key_fields = keys.iter().map(|&c| field(c)).collect::<ExecResult<Vec<_>>>()?;
        let row_fields = (0..input_schema.fields().len()).map(field).collect::<ExecResult<Vec<_>>>()?;
        Ok(Self {
            gap,
            time_column,
            keys,
            output_schema: window_schema(input_schema, &time_type),
            time_type,
            key_converter: RowConverter::new(key_fields)?,
            row_converter: RowConverter::new(row_fields)?,
            held: HashMap::default(),
            deadlines: BTreeMap::new(),
            held_rows: 0,
            watermark: i64::MIN,
            late_rows: 0,
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.output_schema
    }

    /// Emits every closed session of `key`, keeping the rest.
    fn close_sessions(
        &mut self,
        key: &Arc<[u8]>,
        rows: &mut Vec<OwnedRow>,
        starts: &mut Vec<i64>,
        ends: &mut Vec<i64>,
    ) {
        let Some(mut held) = self.held.remove(key) else { return };
        held.sort_by_key(|(ts, _)| *ts);
        let mut kept = Vec::new();
        let mut rows_in_order = held.into_iter().peekable();
        // One session per pass: rows while the next starts before the session's end.
        while let Some(first) = rows_in_order.next() {
            let start = first.0;
            let mut end = start.saturating_add(self.gap);
            let mut session = vec![first];
            while let Some(next) = rows_in_order.next_if(|(ts, _)| *ts < end) {
                end = end.max(next.0.saturating_add(self.gap));
                session.push(next);
            }
            if end <= self.watermark {
                self.held_rows -= session.len() as u64;
                for (_, row) in session {
                    rows.push(row);
                    starts.push(start);
                    ends.push(end);
                }
            } else {
                // Still open: keep the rows with their times, to extend the session later.
                kept.extend(session);
            }
        }
        if !kept.is_empty() {
            self.held.insert(Arc::clone(key), kept);
        }
    }
}

impl Operator for SessionWindow {
    fn name(&self) -> &'static str {
        "SessionWindow"
    }

    fn process_batch(
        &mut self,
        _input: usize,
        batch: StreamBatch,
        _out: &mut Vec<StreamBatch>,
    ) -> ExecResult<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if batch.ops.as_ref().is_some_and(|ops| ops.values().contains(&OP_DELETE)) {
            return Err(ExecError::Internal("SessionWindow: input must be append-only".into()));
        }
        let times = batch
            .data
            .columns()
            .get(self.time_column)
            .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
            .ok_or_else(|| ExecError::Internal("SessionWindow: time column is not a timestamp".into()))?;
        let key_columns: Vec<_> = self.keys.iter().map(|&c| batch.data.column(c).clone()).collect();
        // Without key columns every row belongs to the one empty key.
        let keys = match key_columns.is_empty() {
            true => None,
            false => Some(self.key_converter.convert_columns(&key_columns)?),
        };
        let rows = self.row_converter.convert_columns(batch.data.columns())?;
        for i in 0..batch.num_rows() {
            if times.is_null(i) {
                continue;
            }
            let ts = times.value(i);
            if ts.saturating_add(self.gap) <= self.watermark {
                self.late_rows += 1;
                continue;
            }
            let key_bytes: &[u8] = match &keys {
                Some(keys) => keys.row(i).data(),
                None => &[],
            };
            let key: Arc<[u8]> = match self.held.get_key_value(key_bytes) {
                Some((k, _)) => Arc::clone(k),
                None => Arc::from(key_bytes),
            };
            self.held.entry(Arc::clone(&key)).or_default().push((ts, rows.row(i).owned()));
            self.deadlines.entry(ts.saturating_add(self.gap)).or_default().push(key);
            self.held_rows += 1;
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<StreamBatch>) -> ExecResult<Option<i64>> {
        if watermark <= self.watermark {
            return Ok(Some(watermark));
        }
        self.watermark = watermark;
        let pending = self.deadlines.split_off(&watermark.saturating_add(1));
        let due = std::mem::replace(&mut self.deadlines, pending);
        let mut seen: HashSet<Arc<[u8]>, RandomState> = HashSet::default();
        let (mut rows, mut starts, mut ends) = (Vec::new(), Vec::new(), Vec::new());
        for key in due.into_values().flatten() {
            if seen.insert(Arc::clone(&key)) {
                self.close_sessions(&key, &mut rows, &mut starts, &mut ends);
            }
        }
        if !rows.is_empty() {
            let mut columns = self.row_converter.convert_rows(rows.iter().map(|r| r.row()))?;
            columns.push(timestamps(starts, &self.time_type));
            columns.push(timestamps(ends, &self.time_type));
            out.push(StreamBatch::inserts(RecordBatch::try_new(self.output_schema.clone(), columns)?));
        }
        Ok(Some(watermark))
    }

    fn late_rows(&self) -> u64 {
        self.late_rows
    }

    fn state_rows(&self) -> u64 {
        self.held_rows
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, TimestampMicrosecondArray};

    use super::*;
    use crate::operators::test_util::{assert_output, batch};

    const S: i64 = 1_000_000;

    fn rows(keys: Vec<i64>, secs: Vec<i64>) -> StreamBatch {
        batch(
            vec![
                ("k", Arc::new(Int64Array::from(keys))),
                (
                    "ts",
                    Arc::new(TimestampMicrosecondArray::from(
                        secs.into_iter().map(|s| s * S).collect::<Vec<_>>(),
                    )),
                ),
            ],
            None,
        )
    }

    #[test]
    fn sessions_close_at_the_watermark_per_key() {
        let input = rows(vec![1, 1, 2, 1], vec![0, 3, 1, 20]);
        let mut op = SessionWindow::new(5 * S, 1, vec![0], &input.data.schema()).expect("operator");
        let mut out = vec![];
        op.process_batch(0, input, &mut out).expect("process");
        op.on_watermark(7 * S, &mut out).expect("watermark");
        // key 1's session [0, 8) is still open at 7 s; key 2's [1, 6) has closed.
        assert_output(
            &out,
            &[
                "+----+---+---------------------+---------------------+---------------------+",
                "| op | k | ts                  | window_start        | window_end          |",
                "+----+---+---------------------+---------------------+---------------------+",
                "| +  | 2 | 1970-01-01T00:00:01 | 1970-01-01T00:00:01 | 1970-01-01T00:00:06 |",
                "+----+---+---------------------+---------------------+---------------------+",
            ],
        );
        out.clear();
        op.on_watermark(8 * S, &mut out).expect("watermark");
        assert_output(
            &out,
            &[
                "+----+---+---------------------+---------------------+---------------------+",
                "| op | k | ts                  | window_start        | window_end          |",
                "+----+---+---------------------+---------------------+---------------------+",
                "| +  | 1 | 1970-01-01T00:00:00 | 1970-01-01T00:00:00 | 1970-01-01T00:00:08 |",
                "| +  | 1 | 1970-01-01T00:00:03 | 1970-01-01T00:00:00 | 1970-01-01T00:00:08 |",
                "+----+---+---------------------+---------------------+---------------------+",
            ],
        );
        assert_eq!(op.state_rows(), 1, "the row at 20 s is still held");
        // A row whose own window already closed is late.
        out.clear();
        op.process_batch(0, rows(vec![3], vec![2]), &mut out).expect("process");
        assert_eq!(op.late_rows(), 1);
        assert!(out.is_empty());
    }

    #[test]
    fn an_out_of_order_row_merges_two_sessions() {
        let input = rows(vec![1, 1, 1], vec![0, 8, 4]);
        let mut op = SessionWindow::new(5 * S, 1, vec![], &input.data.schema()).expect("operator");
        let mut out = vec![];
        op.process_batch(0, input, &mut out).expect("process");
        op.on_watermark(100 * S, &mut out).expect("watermark");
        let b = &out[0].data;
        let ends = b.column(3).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(b.num_rows(), 3);
        assert!(ends.values().iter().all(|&e| e == 13 * S), "one session [0, 13)");
    }
}
