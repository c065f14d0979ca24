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
//!
//! Checkpoints: `meta` holds the gap, the watermark and the late-row count; the deferred
//! state holds the held rows per key and the deadline index, both in their in-memory order
//! (which decides the order of emitted rows), so a restored operator emits exactly what an
//! uninterrupted one would.

use crate::operators::float_keys::normalized;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{SchemaRef, TimestampMicrosecondType};
use arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::hash_utils::RandomState;

use super::window_assign::{time_type, timestamps, window_schema};
use super::{DeferredState, Operator, OperatorSnapshot};
use crate::error::{ExecError, ExecResult};
use crate::message::{StreamBatch, OP_DELETE};
use crate::state_codec;

/// Held rows per key: (event time, the full input row).
type HeldRows = HashMap<Arc<[u8]>, Vec<(i64, OwnedRow)>, RandomState>;
/// `ts + gap` of held rows -> keys to re-examine once the watermark reaches it.
type Deadlines = BTreeMap<i64, Vec<Arc<[u8]>>>;

pub struct SessionWindow {
    gap: i64,
    time_column: usize,
    keys: Vec<usize>,
    output_schema: SchemaRef,
    time_type: arrow::datatypes::DataType,
    key_converter: RowConverter,
    row_converter: RowConverter,
    held: HeldRows,
    deadlines: Deadlines,
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
            false => Some(self.key_converter.convert_columns(&normalized(&key_columns))?),
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

    /// The held rows are plain (not persistent) maps, so they are encoded here, on the data
    /// path: a copy of every held row's bytes, O(held rows) per checkpoint. The watermark
    /// bounds what is held (rows of sessions that are still open), and one flat buffer costs
    /// less than cloning the maps row by row.
    fn snapshot(&mut self, _incremental: bool) -> ExecResult<Option<OperatorSnapshot>> {
        let mut meta = Vec::with_capacity(25);
        meta.push(SNAPSHOT_VERSION);
        meta.extend_from_slice(&self.gap.to_le_bytes());
        meta.extend_from_slice(&self.watermark.to_le_bytes());
        meta.extend_from_slice(&self.late_rows.to_le_bytes());
        let state = self.encode_state()?;
        let deferred: DeferredState = Box::new(move |out: &mut dyn Write| out.write_all(&state).map_err(io));
        Ok(Some(OperatorSnapshot { meta, deferred: Some(deferred), delta: false }))
    }

    fn restore(&mut self, meta: &[u8], deferred: Option<&mut dyn Read>) -> ExecResult<()> {
        let (watermark, late_rows) = self.read_meta(meta)?;
        let input = deferred.ok_or_else(|| corrupt("no held rows in the snapshot"))?;
        let (held, deadlines, held_rows) = self.decode_state(&mut std::io::BufReader::new(input))?;
        self.held = held;
        self.deadlines = deadlines;
        self.held_rows = held_rows;
        self.watermark = watermark;
        self.late_rows = late_rows;
        Ok(())
    }

    /// The keys of the key groups this subtask owns now, with their rows and deadlines, join
    /// those already restored.
    fn restore_rescaled(
        &mut self,
        meta: &[u8],
        deferred: Option<&mut dyn Read>,
        scope: &super::RescaleScope,
    ) -> ExecResult<()> {
        let (watermark, late_rows) = self.read_meta(meta)?;
        let input = deferred.ok_or_else(|| corrupt("no held rows in the snapshot"))?;
        let (held, deadlines, _) = self.decode_state(&mut std::io::BufReader::new(input))?;
        let keys: Vec<Arc<[u8]>> = held.keys().cloned().collect();
        let parser = self.key_converter.parser();
        let columns = self.key_converter.convert_rows(keys.iter().map(|k| parser.parse(k)))?;
        let fields: Vec<_> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| arrow::datatypes::Field::new(format!("k{i}"), c.data_type().clone(), true))
            .collect();
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(keys.len()));
        let batch = arrow::array::RecordBatch::try_new_with_options(
            Arc::new(arrow::datatypes::Schema::new(fields)),
            columns,
            &options,
        )?;
        let all: Vec<usize> = (0..self.keys.len()).collect();
        let groups = crate::exchange::key_groups(&StreamBatch::inserts(batch), &all)?;
        let mut held = held;
        let mut owned = std::collections::HashSet::new();
        for (key, group) in keys.into_iter().zip(groups) {
            if let Some(rows) = held.remove(&key) {
                if scope.owns(group) {
                    self.held_rows += rows.len() as u64;
                    owned.insert(Arc::clone(&key));
                    if self.held.insert(key, rows).is_some() {
                        return Err(corrupt("a key held by two subtasks"));
                    }
                }
            }
        }
        for (deadline, keys) in deadlines {
            let keys = keys.into_iter().filter(|k| owned.contains(k));
            self.deadlines.entry(deadline).or_default().extend(keys);
        }
        self.deadlines.retain(|_, keys| !keys.is_empty());
        self.watermark = self.watermark.max(watermark);
        if scope.last_piece {
            self.late_rows += late_rows;
        }
        Ok(())
    }
}

const SNAPSHOT_VERSION: u8 = 1;

impl SessionWindow {
    /// The held rows and the deadline index (see [`Self::decode_state`]).
    ///
    /// * held: `u64` keys, then per key: key (`u32` length, bytes), `u64` rows, then per row
    ///   `i64` event time and the row (`u32` length, arrow-row bytes), in held order;
    /// * deadlines: `u64` entries, then per entry: `i64` deadline, `u64` keys, each key
    ///   (`u32` length, bytes), in index order.
    fn encode_state(&self) -> ExecResult<Vec<u8>> {
        let row_bytes: usize =
            self.held.values().flatten().map(|(_, row)| row.row().as_ref().len() + 12).sum();
        let mut out = Vec::with_capacity(row_bytes + 16);
        out.extend_from_slice(&(self.held.len() as u64).to_le_bytes());
        for (key, rows) in &self.held {
            put_bytes(&mut out, key)?;
            out.extend_from_slice(&(rows.len() as u64).to_le_bytes());
            for (ts, row) in rows {
                out.extend_from_slice(&ts.to_le_bytes());
                put_bytes(&mut out, row.row().as_ref())?;
            }
        }
        out.extend_from_slice(&(self.deadlines.len() as u64).to_le_bytes());
        for (deadline, keys) in &self.deadlines {
            out.extend_from_slice(&deadline.to_le_bytes());
            out.extend_from_slice(&(keys.len() as u64).to_le_bytes());
            for key in keys {
                put_bytes(&mut out, key)?;
            }
        }
        Ok(out)
    }

    /// The watermark and late-row count of a snapshot's meta, checked against this operator.
    fn read_meta(&self, mut meta: &[u8]) -> ExecResult<(i64, u64)> {
        let version = take(&mut meta, 1)?[0];
        if version != SNAPSHOT_VERSION {
            return Err(corrupt(&format!("unknown snapshot version {version}")));
        }
        let gap = take_i64(&mut meta)?;
        if gap != self.gap {
            return Err(corrupt(&format!("the snapshot has a gap of {gap}, the operator {}", self.gap)));
        }
        let watermark = take_i64(&mut meta)?;
        let late_rows = take_i64(&mut meta)? as u64;
        if !meta.is_empty() {
            return Err(corrupt("trailing bytes in meta"));
        }
        Ok((watermark, late_rows))
    }

    /// The held rows, the deadline index and the row count [`Self::encode_state`] wrote.
    fn decode_state(&self, input: &mut impl Read) -> ExecResult<(HeldRows, Deadlines, u64)> {
        let parser = self.row_converter.parser();
        let mut held: HeldRows = HashMap::default();
        let mut held_rows = 0u64;
        for _ in 0..read_u64(input)? {
            let key: Arc<[u8]> = read_bytes(input)?.into();
            let count = read_u64(input)?;
            let mut rows = Vec::new();
            for _ in 0..count {
                let ts = read_u64(input)? as i64;
                let bytes = read_bytes(input)?;
                rows.push((ts, parser.parse(&bytes).owned()));
            }
            held_rows += count;
            if held.insert(key, rows).is_some() {
                return Err(corrupt("a key held twice"));
            }
        }
        let mut deadlines: Deadlines = BTreeMap::new();
        for _ in 0..read_u64(input)? {
            let deadline = read_u64(input)? as i64;
            let count = read_u64(input)?;
            let mut keys = Vec::new();
            for _ in 0..count {
                let bytes = read_bytes(input)?;
                // Share the held key's allocation, as `process_batch` does.
                keys.push(match held.get_key_value(bytes.as_slice()) {
                    Some((key, _)) => Arc::clone(key),
                    None => Arc::from(bytes),
                });
            }
            if deadlines.insert(deadline, keys).is_some() {
                return Err(corrupt("a deadline listed twice"));
            }
        }
        if input.read(&mut [0u8; 1]).map_err(io)? != 0 {
            return Err(corrupt("trailing bytes after the deadlines"));
        }
        Ok((held, deadlines, held_rows))
    }
}

fn corrupt(what: &str) -> ExecError {
    ExecError::Internal(format!("SessionWindow state is corrupt: {what}"))
}

fn io(e: std::io::Error) -> ExecError {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => corrupt("truncated"),
        _ => ExecError::Internal(format!("SessionWindow state: {e}")),
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> ExecResult<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| ExecError::Internal("SessionWindow: a row over 4 GiB".into()))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

fn read_u64(input: &mut impl Read) -> ExecResult<u64> {
    state_codec::read_u64(input).map_err(io)
}

fn read_bytes(input: &mut impl Read) -> ExecResult<Vec<u8>> {
    let mut bytes = Vec::new();
    state_codec::read_bytes(input, &mut bytes).map_err(io)?;
    Ok(bytes)
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> ExecResult<&'a [u8]> {
    state_codec::take(input, n).ok_or_else(|| corrupt("truncated meta"))
}

fn take_i64(input: &mut &[u8]) -> ExecResult<i64> {
    state_codec::take_i64(input).ok_or_else(|| corrupt("truncated meta"))
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, TimestampMicrosecondArray};

    use super::*;
    use crate::operators::test_util::{assert_output, batch, format};

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

    fn named_rows(keys: Vec<i64>, names: Vec<&str>, secs: Vec<i64>) -> StreamBatch {
        batch(
            vec![
                ("k", Arc::new(Int64Array::from(keys))),
                ("name", Arc::new(arrow::array::StringArray::from(names))),
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

    /// Input B and its watermarks, fed to an operator; everything it emits.
    fn feed_b(op: &mut SessionWindow) -> Vec<StreamBatch> {
        let mut out = vec![];
        // Key 1's sessions [6, 11) and [14, 19) merge through the row at 10 s; key 3 is new.
        op.process_batch(0, named_rows(vec![1, 3, 2], vec!["bridge", "new", "b2"], vec![10, 9, 8]), &mut out)
            .expect("process");
        op.on_watermark(12 * S, &mut out).expect("watermark"); // nothing closes
                                                               // Late: its window [1, 6) closed at 12 s.
        op.process_batch(0, named_rows(vec![2], vec!["late"], vec![1]), &mut out).expect("process");
        op.process_batch(0, named_rows(vec![3, 1], vec!["x", "y"], vec![13, 16]), &mut out).expect("process");
        op.on_watermark(14 * S, &mut out).expect("watermark");
        op.on_watermark(100 * S, &mut out).expect("watermark");
        out
    }

    #[test]
    fn a_restored_operator_emits_what_an_uninterrupted_one_does() {
        let a = named_rows(
            vec![1, 2, 1, 2, 4, 2, 5],
            vec!["a", "bb", "c", "dd", "e", "ff", "g"],
            vec![6, 2, 14, 6, 3, 7, 30],
        );
        let schema = a.data.schema();
        let mut op = SessionWindow::new(5 * S, 2, vec![0], &schema).expect("operator");
        let mut out_a = vec![];
        op.process_batch(0, a, &mut out_a).expect("process");
        // Key 4's [3, 8) closes; key 2's [2, 12) stays open; key 1 has two open sessions,
        // [6, 11) and [14, 19), that input B merges.
        op.on_watermark(8 * S, &mut out_a).expect("watermark");
        op.process_batch(0, named_rows(vec![4], vec!["late"], vec![1]), &mut out_a).expect("process");
        assert_eq!(format(&out_a).len(), 5, "one row emitted before the checkpoint: {out_a:?}");
        op.on_barrier(&crate::message::Barrier::new(1), &mut out_a).expect("barrier");
        let snapshot = op.snapshot(false).expect("snapshot").expect("stateful");
        let mut state = Vec::new();
        (snapshot.deferred.expect("held rows"))(&mut state).expect("write state");

        let mut restored = SessionWindow::new(5 * S, 2, vec![0], &schema).expect("operator");
        restored.restore(&snapshot.meta, Some(&mut state.as_slice())).expect("restore");
        assert_eq!(restored.state_rows(), op.state_rows());
        assert_eq!(restored.late_rows(), 1);

        let expected = feed_b(&mut op);
        let actual = feed_b(&mut restored);
        assert_eq!(format(&actual), format(&expected));
        assert_eq!(restored.late_rows(), op.late_rows());
        assert_eq!(restored.late_rows(), 2);
        assert_eq!(restored.state_rows(), 0);
        assert_output(
            &expected,
            &[
                "+----+---+--------+---------------------+---------------------+---------------------+",
                "| op | k | name   | ts                  | window_start        | window_end          |",
                "+----+---+--------+---------------------+---------------------+---------------------+",
                "| +  | 2 | bb     | 1970-01-01T00:00:02 | 1970-01-01T00:00:02 | 1970-01-01T00:00:13 |",
                "| +  | 2 | dd     | 1970-01-01T00:00:06 | 1970-01-01T00:00:02 | 1970-01-01T00:00:13 |",
                "| +  | 2 | ff     | 1970-01-01T00:00:07 | 1970-01-01T00:00:02 | 1970-01-01T00:00:13 |",
                "| +  | 2 | b2     | 1970-01-01T00:00:08 | 1970-01-01T00:00:02 | 1970-01-01T00:00:13 |",
                "| +  | 1 | a      | 1970-01-01T00:00:06 | 1970-01-01T00:00:06 | 1970-01-01T00:00:21 |",
                "| +  | 1 | bridge | 1970-01-01T00:00:10 | 1970-01-01T00:00:06 | 1970-01-01T00:00:21 |",
                "| +  | 1 | c      | 1970-01-01T00:00:14 | 1970-01-01T00:00:06 | 1970-01-01T00:00:21 |",
                "| +  | 1 | y      | 1970-01-01T00:00:16 | 1970-01-01T00:00:06 | 1970-01-01T00:00:21 |",
                "| +  | 3 | new    | 1970-01-01T00:00:09 | 1970-01-01T00:00:09 | 1970-01-01T00:00:18 |",
                "| +  | 3 | x      | 1970-01-01T00:00:13 | 1970-01-01T00:00:09 | 1970-01-01T00:00:18 |",
                "| +  | 5 | g      | 1970-01-01T00:00:30 | 1970-01-01T00:00:30 | 1970-01-01T00:00:35 |",
                "+----+---+--------+---------------------+---------------------+---------------------+",
            ],
        );
    }

    #[test]
    fn an_empty_operator_snapshots_and_restores() {
        let input = rows(vec![1], vec![0]);
        let mut op = SessionWindow::new(5 * S, 1, vec![0], &input.data.schema()).expect("operator");
        let snapshot = op.snapshot(false).expect("snapshot").expect("stateful");
        let mut state = Vec::new();
        (snapshot.deferred.expect("held rows"))(&mut state).expect("write state");
        let mut restored = SessionWindow::new(5 * S, 1, vec![0], &input.data.schema()).expect("operator");
        restored.restore(&snapshot.meta, Some(&mut state.as_slice())).expect("restore");
        let mut out = vec![];
        restored.process_batch(0, input, &mut out).expect("process");
        restored.on_watermark(5 * S, &mut out).expect("watermark");
        assert_eq!(out.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    }

    #[test]
    fn a_snapshot_of_another_gap_or_a_truncated_one_is_refused() {
        let input = rows(vec![1, 2], vec![0, 1]);
        let mut op = SessionWindow::new(5 * S, 1, vec![0], &input.data.schema()).expect("operator");
        op.process_batch(0, input.clone(), &mut vec![]).expect("process");
        let snapshot = op.snapshot(false).expect("snapshot").expect("stateful");
        let mut state = Vec::new();
        (snapshot.deferred.expect("held rows"))(&mut state).expect("write state");
        let mut other = SessionWindow::new(6 * S, 1, vec![0], &input.data.schema()).expect("operator");
        assert!(other.restore(&snapshot.meta, Some(&mut state.as_slice())).is_err());
        let mut same = SessionWindow::new(5 * S, 1, vec![0], &input.data.schema()).expect("operator");
        let cut = &state[..state.len() - 3];
        assert!(same.restore(&snapshot.meta, Some(&mut &cut[..])).is_err());
        assert!(same.restore(&snapshot.meta, None).is_err());
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

    #[test]
    fn a_rescaled_operator_emits_what_an_unrescaled_one_does() {
        use crate::operators::test_util::{apply, route};
        use crate::operators::RescaleScope;
        let a = named_rows(
            vec![1, 2, 1, 2, 4, 2, 5, 6, 7, 8],
            vec!["a", "bb", "c", "dd", "e", "ff", "g", "h", "i", "j"],
            vec![6, 2, 14, 6, 3, 7, 30, 9, 9, 10],
        );
        let schema = a.data.schema();
        let fresh = || SessionWindow::new(5 * S, 2, vec![0], &schema).expect("operator");
        let mut reference = fresh();
        let mut expected = Default::default();
        let mut out = vec![];
        reference.process_batch(0, a.clone(), &mut out).expect("process");
        reference.on_watermark(8 * S, &mut out).expect("watermark");
        apply(&mut expected, &out);
        apply(&mut expected, &feed_b(&mut reference));
        // 2 subtasks before the checkpoint, 3 after; then 3 to 1.
        for (before, after) in [(2, 3), (3, 1)] {
            let mut view = Default::default();
            let mut snapshots = Vec::new();
            for part in route(&a, &[0], before) {
                let mut op = fresh();
                let mut out = vec![];
                op.process_batch(0, part, &mut out).expect("process");
                op.on_watermark(8 * S, &mut out).expect("watermark");
                apply(&mut view, &out);
                let snapshot = op.snapshot(false).expect("snapshot").expect("stateful");
                let mut state = Vec::new();
                (snapshot.deferred.expect("held rows"))(&mut state).expect("write state");
                snapshots.push((snapshot.meta, state));
            }
            for subtask in 0..after {
                let mut op = fresh();
                for (old, (meta, state)) in snapshots.iter().enumerate() {
                    let scope = RescaleScope::new(old, subtask, after);
                    op.restore_rescaled(meta, Some(&mut state.as_slice()), &scope).expect("restore");
                }
                // Feeding B whole: rows of other subtasks' keys would not reach it, so route.
                let mut out = vec![];
                let b = feed_b_routed(&mut op, subtask, after);
                out.extend(b);
                apply(&mut view, &out);
            }
            assert_eq!(view, expected, "{before} -> {after}");
        }
    }

    /// [`feed_b`] with only the rows the exchange sends to `subtask` of `parallelism`.
    fn feed_b_routed(op: &mut SessionWindow, subtask: usize, parallelism: usize) -> Vec<StreamBatch> {
        use crate::operators::test_util::route;
        let part = |b: StreamBatch| route(&b, &[0], parallelism).swap_remove(subtask);
        let mut out = vec![];
        op.process_batch(
            0,
            part(named_rows(vec![1, 3, 2], vec!["bridge", "new", "b2"], vec![10, 9, 8])),
            &mut out,
        )
        .expect("process");
        op.on_watermark(12 * S, &mut out).expect("watermark");
        op.process_batch(0, part(named_rows(vec![2], vec!["late"], vec![1])), &mut out).expect("process");
        op.process_batch(0, part(named_rows(vec![3, 1], vec!["x", "y"], vec![13, 16])), &mut out)
            .expect("process");
        op.on_watermark(14 * S, &mut out).expect("watermark");
        op.on_watermark(100 * S, &mut out).expect("watermark");
        out
    }
}
