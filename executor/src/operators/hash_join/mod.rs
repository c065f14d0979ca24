//! `HashJoin`: a streaming equi-join with full retraction semantics.
//!
//! Both inputs arrive hash-partitioned on their join keys, so every row of one key meets
//! every row of the other side's key in one subtask. Each side keeps its rows by join key
//! ([`super::keyed_rows`]); a change (insert or delete) on one side is joined with the other
//! side's current rows of its key and emitted at once, with the change's op:
//!
//! * **inner**: `(x, o)` for every matching `o`, as many times as `o` is held;
//! * **outer**: a side that pads emits `(x, NULL…)` while `x` has no match; when the other
//!   side's first match for `x` arrives that padded row is retracted, and when its last
//!   match goes it comes back. Whether a row is matched is its *degree*, kept with it;
//! * **semi / anti** (`EXISTS` / `NOT EXISTS`): a left row is emitted, once per copy, while
//!   its degree is above zero (semi) or zero (anti).
//!
//! An extra `ON` condition is evaluated per candidate pair, so a "match" is a pair with
//! equal keys that also passes it. A NULL key matches nothing (unless the keys are
//! `IS NOT DISTINCT FROM`). Output is cut into batches of at most [`OUTPUT_BATCH_ROWS`], so
//! a key with a hundred thousand matches does not build one huge batch.
//!
//! State lives in the keyed state backend (memory or RocksDB) under the operator's
//! namespace, key-group prefixed like aggregate state; memory holds a cache of whole keys
//! bounded by the TaskManager's cache setting. Changes are written once per barrier, and a
//! checkpoint is the backend's snapshot of the namespace.

use crate::operators::float_keys::normalized;
use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, BooleanArray, Int8Array, RecordBatch, RecordBatchOptions,
    TimestampMicrosecondArray,
};
use arrow::buffer::NullBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::row::{RowConverter, RowParser, SortField};
use datafusion::common::hash_utils::RandomState;
use datafusion::physical_expr::PhysicalExpr;
use weir_plan::job_graph::{schema_of, JoinKind, JoinSpec, TimeBound};
use weir_storage::keyed_state::{KeyedStateBackend, StateNamespace};

use super::keyed_rows::snapshot::{split_meta, RowsState};
use super::keyed_rows::{write_and_evict, KeyedRows, RowState};
use super::{Operator, OperatorSnapshot};
use crate::clock::wall_clock_us;
use crate::error::{ExecError, ExecResult};
use crate::exchange::key_groups;
use crate::expr::ExprCompiler;
use crate::message::{Barrier, StreamBatch, OP_DELETE, OP_INSERT};

/// Most rows in one output batch.
pub const OUTPUT_BATCH_ROWS: usize = 8192;

/// Candidate pairs gathered before the extra condition is evaluated over them at once.
const CHUNK_PAIRS: usize = 8192;

/// One input row of a chunk: whether its key is NULL, when it expires, and its candidate
/// pairs.
struct RowPlan {
    row: usize,
    null_key: bool,
    expires: i64,
    candidates: std::ops::Range<usize>,
}

const LEFT: usize = 0;
const RIGHT: usize = 1;

/// How one input is read: its key columns and the converters to and from row bytes.
struct SideInfo {
    keys: Vec<usize>,
    key_converter: RowConverter,
    row_converter: RowConverter,
    parser: RowParser,
    /// Whether this side's rows need their degree (they are emitted while unmatched, or,
    /// for semi and anti joins, by whether they are matched).
    tracks_degree: bool,
    /// Interval join: when a row of this side can no longer match.
    expiry: Option<TimeBound>,
    /// Interval join: the column on which a row of this side is late (older than the
    /// watermark), so dropped: rows of the other side may have expired on it.
    late_column: Option<usize>,
}

impl SideInfo {
    fn new(
        schema: &SchemaRef,
        keys: &[usize],
        tracks_degree: bool,
        expiry: Option<TimeBound>,
        late_column: Option<usize>,
    ) -> ExecResult<Self> {
        let sort = |i: usize| -> ExecResult<SortField> {
            let field = schema
                .fields()
                .get(i)
                .ok_or_else(|| ExecError::InvalidGraph(format!("join key column {i} out of range")))?;
            Ok(SortField::new(field.data_type().clone()))
        };
        let key_converter = RowConverter::new(keys.iter().map(|&k| sort(k)).collect::<ExecResult<_>>()?)?;
        let row_converter =
            RowConverter::new((0..schema.fields().len()).map(sort).collect::<ExecResult<_>>()?)?;
        let parser = row_converter.parser();
        Ok(Self {
            keys: keys.to_vec(),
            key_converter,
            row_converter,
            parser,
            tracks_degree,
            expiry,
            late_column,
        })
    }

    /// The key group of a key in row bytes (for keys that are not in memory).
    fn key_group(&self, key: &[u8]) -> ExecResult<u16> {
        let columns = self.key_converter.convert_rows([self.key_converter.parser().parse(key)])?;
        let fields: Vec<Field> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| Field::new(format!("k{i}"), c.data_type().clone(), true))
            .collect();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        let all: Vec<usize> = (0..self.keys.len()).collect();
        let groups = key_groups(&StreamBatch::inserts(batch), &all)?;
        Ok(groups.first().copied().unwrap_or(0) as u16)
    }

    /// The times (microseconds) of column `column` of `batch`, if there is one.
    fn times(batch: &StreamBatch, column: Option<usize>) -> ExecResult<Option<TimestampMicrosecondArray>> {
        let Some(column) = column else { return Ok(None) };
        let column = batch
            .data
            .columns()
            .get(column)
            .ok_or_else(|| ExecError::InvalidGraph(format!("join time column {column} out of range")))?;
        let micros = cast(column, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
        Ok(micros.as_any().downcast_ref::<TimestampMicrosecondArray>().cloned())
    }
}

pub struct HashJoin {
    kind: JoinKind,
    null_equals_null: bool,
    sides: [SideInfo; 2],
    states: [KeyedRows; 2],
    /// The extra `ON` condition, over the left columns then the right ones.
    filter: Option<Arc<dyn PhysicalExpr>>,
    pair_schema: SchemaRef,
    output_schema: SchemaRef,
    backend: Arc<dyn KeyedStateBackend>,
    namespace: StateNamespace,
    /// Rows each side keeps in memory before evicting keys to the backend.
    cache_rows: usize,
    /// Rows are kept in memory only (the memory backend): checkpoints encode them from
    /// memory, and nothing is written to the backend.
    in_memory: bool,
    /// State time-to-live in microseconds of wall-clock time.
    ttl_us: Option<i64>,
    /// The input watermark (event time in microseconds); rows of a side with an expiry
    /// that are older are late.
    watermark: i64,
    late_rows: u64,
}

impl HashJoin {
    pub fn new(
        spec: &JoinSpec,
        compiler: &ExprCompiler,
        backend: Arc<dyn KeyedStateBackend>,
        namespace: StateNamespace,
        cache_rows: usize,
    ) -> ExecResult<Self> {
        if spec.left_keys.is_empty() || spec.left_keys.len() != spec.right_keys.len() {
            return Err(ExecError::InvalidGraph("a hash join needs pairs of key columns".into()));
        }
        let left_schema = schema_of(&spec.left_fields)?;
        let right_schema = schema_of(&spec.right_fields)?;
        let [left_late, right_late] = spec.late_columns();
        let left = SideInfo::new(
            &left_schema,
            &spec.left_keys,
            spec.kind.pads_left() || spec.kind.left_only(),
            spec.left_expiry,
            left_late,
        )?;
        let right = SideInfo::new(
            &right_schema,
            &spec.right_keys,
            spec.kind.pads_right(),
            spec.right_expiry,
            right_late,
        )?;
        let mut pair_fields = left_schema.fields().to_vec();
        pair_fields.extend(right_schema.fields().iter().cloned());
        let pair_schema = Arc::new(Schema::new(pair_fields));
        let filter = spec.filter.as_ref().map(|f| compiler.compile_predicate(f, &pair_schema)).transpose()?;
        Ok(Self {
            kind: spec.kind,
            null_equals_null: spec.null_equals_null,
            sides: [left, right],
            states: [LEFT, RIGHT].map(|side| match cache_rows {
                usize::MAX => KeyedRows::new(side as u8).kept_in_memory(),
                _ => KeyedRows::new(side as u8),
            }),
            filter,
            pair_schema,
            output_schema: schema_of(&spec.output())?,
            backend,
            namespace,
            cache_rows: cache_rows.max(1),
            in_memory: cache_rows == usize::MAX,
            ttl_us: spec.state_ttl_ms.map(|ms| i64::try_from(ms.saturating_mul(1000)).unwrap_or(i64::MAX)),
            watermark: i64::MIN,
            late_rows: 0,
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.output_schema
    }

    /// Which rows of a batch have a NULL in a key column (they match nothing).
    fn null_keys(&self, side: usize, batch: &StreamBatch) -> Option<NullBuffer> {
        if self.null_equals_null {
            return None;
        }
        self.sides[side]
            .keys
            .iter()
            .map(|&k| batch.data.column(k).logical_nulls())
            .fold(None, |acc, n| NullBuffer::union(acc.as_ref(), n.as_ref()))
    }

    /// Which candidate pairs pass the extra condition: pair `p` is input row `rows[p]` of
    /// `batch` (side `side`) with row `of_pair[p]` of the other side's distinct candidates,
    /// whose columns are `theirs`. One evaluation for all pairs; all pass without a
    /// condition.
    fn passing(
        &self,
        side: usize,
        batch: &StreamBatch,
        rows: &[u32],
        theirs: &[ArrayRef],
        of_pair: &[u32],
    ) -> ExecResult<Vec<bool>> {
        let Some(filter) = &self.filter else { return Ok(vec![true; rows.len()]) };
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let indices = arrow::array::UInt32Array::from(rows.to_vec());
        let mine = batch
            .data
            .columns()
            .iter()
            .map(|c| arrow::compute::take(c.as_ref(), &indices, None))
            .collect::<Result<Vec<_>, _>>()?;
        let pairs_of = arrow::array::UInt32Array::from(of_pair.to_vec());
        let theirs = theirs
            .iter()
            .map(|c| arrow::compute::take(c.as_ref(), &pairs_of, None))
            .collect::<Result<Vec<_>, _>>()?;
        let columns: Vec<ArrayRef> = match side {
            LEFT => mine.into_iter().chain(theirs).collect(),
            _ => theirs.into_iter().chain(mine).collect(),
        };
        let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
        let pairs = RecordBatch::try_new_with_options(self.pair_schema.clone(), columns, &options)?;
        let result = filter.evaluate(&pairs)?.into_array(rows.len())?;
        let result = result
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| ExecError::Internal("join condition is not boolean".into()))?;
        Ok((0..result.len()).map(|i| result.is_valid(i) && result.value(i)).collect())
    }

    /// Input row `row` that cannot match (a NULL key): emitted as it is, padded, if its
    /// side keeps unmatched rows.
    fn unmatched(&self, side: usize, row: u32, op: i8, emit: &mut Emitter) {
        let shows_unmatched = match (side, self.kind) {
            (LEFT, JoinKind::LeftAnti) => true,
            (LEFT, kind) => kind.pads_left(),
            (_, kind) => kind.pads_right(),
        };
        if shows_unmatched {
            emit.push(Some(row), None, op, 1);
        }
    }

    /// Applies one change of side `side` (input row `input_row`, `row` in row bytes, with
    /// key `key`) and emits its effect. `candidates` are the other side's rows of the key
    /// (read before this batch; only their degrees change while it is applied, so those are
    /// read now), numbered from `first_candidate` in the chunk, `passing` whether each
    /// passes the extra condition with `row`.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        side: usize,
        key: &[u8],
        key_group: u16,
        input_row: u32,
        row: &[u8],
        op: i8,
        expires: i64,
        candidates: &[Arc<[u8]>],
        first_candidate: usize,
        passing: &[bool],
        emit: &mut Emitter,
    ) -> ExecResult<()> {
        let other = 1 - side;
        let backend = self.backend.clone();
        self.states[side].load(backend.as_ref(), self.namespace, key_group, key)?;
        let current = self.states[other].get(key);
        let matches: Vec<(u32, &[u8], RowState)> = candidates
            .iter()
            .zip(passing)
            .enumerate()
            .filter(|(_, (_, pass))| **pass)
            .filter_map(|(n, (c, _))| {
                let state = current?.rows.get(c).filter(|s| s.count > 0)?;
                Some(((first_candidate + n) as u32, c.as_ref(), *state))
            })
            .collect();
        let degree: i64 = matches.iter().map(|(_, _, s)| s.count).sum();
        let delta = if op == OP_DELETE { -1 } else { 1 };
        let tracks = self.sides[side].tracks_degree;
        self.states[side].apply(key, row, delta, if tracks { degree } else { 0 }, expires)?;
        let mine = Some(input_row);

        if self.kind.left_only() {
            let semi = self.kind == JoinKind::LeftSemi;
            if side == LEFT {
                if semi == (degree > 0) {
                    emit.push(mine, None, op, 1);
                }
                return Ok(());
            }
            for (theirs, left_row, state) in matches {
                let after = state.degree + delta;
                let flips = (state.degree == 0) != (after == 0);
                if flips {
                    // A semi join shows the row while matched, an anti join while not.
                    let shown_now = semi == (after > 0);
                    let op = if shown_now { OP_INSERT } else { OP_DELETE };
                    emit.push(None, Some(theirs), op, state.count);
                }
                self.states[LEFT].add_degree(key, left_row, delta)?;
            }
            return Ok(());
        }

        let other_pads = self.sides[other].tracks_degree;
        let pads = self.sides[side].tracks_degree;
        // A delete takes back the padded row last; an insert retracts it first.
        if op == OP_DELETE && pads && degree == 0 {
            emit.push(mine, None, op, 1);
        }
        for (theirs, their_row, state) in matches {
            if other_pads {
                let after = state.degree + delta;
                if state.degree == 0 && after > 0 {
                    emit.push(None, Some(theirs), OP_DELETE, state.count);
                }
                emit.push(mine, Some(theirs), op, state.count);
                if state.degree > 0 && after == 0 {
                    emit.push(None, Some(theirs), OP_INSERT, state.count);
                }
                self.states[other].add_degree(key, their_row, delta)?;
            } else {
                emit.push(mine, Some(theirs), op, state.count);
            }
        }
        if op != OP_DELETE && pads && degree == 0 {
            emit.push(mine, None, op, 1);
        }
        Ok(())
    }

    /// On a checkpoint barrier, or when a side must evict: writes both sides' changes since
    /// the last flush in one batch, then evicts. Otherwise the changes wait in memory for
    /// the next checkpoint (rows that came and went are forgotten now): between
    /// checkpoints nothing reads the backend but this operator. Rows kept in memory only
    /// are never written; the checkpoint encodes them.
    fn flush(&mut self, barrier: &Barrier) -> ExecResult<()> {
        let must_evict = self.states.iter().any(|s| s.over_cache(self.cache_rows));
        if self.in_memory && barrier.checkpoint {
            // The checkpoint's snapshot takes the changes next.
            return Ok(());
        }
        if self.in_memory || (!barrier.checkpoint && !must_evict) {
            for state in &mut self.states {
                state.drop_gone();
            }
            return Ok(());
        }
        self.write_and_evict()
    }

    /// Writes both sides' changes in one batch and evicts (see [`write_and_evict`]).
    fn write_and_evict(&mut self) -> ExecResult<()> {
        write_and_evict(&mut self.states, self.backend.as_ref(), self.namespace, self.cache_rows)
    }
}

impl HashJoin {
    fn rows_state(&mut self) -> RowsState<'_> {
        RowsState {
            sides: &mut self.states,
            backend: self.backend.as_ref(),
            namespace: self.namespace,
            in_memory: self.in_memory,
        }
    }
}

impl Operator for HashJoin {
    fn name(&self) -> &'static str {
        "HashJoin"
    }

    fn process_batch(
        &mut self,
        input: usize,
        batch: StreamBatch,
        out: &mut Vec<StreamBatch>,
    ) -> ExecResult<()> {
        if input > RIGHT {
            return Err(ExecError::InvalidGraph(format!("a join has two inputs, not input {input}")));
        }
        if batch.is_empty() {
            return Ok(());
        }
        let info = &self.sides[input];
        let key_columns: Vec<ArrayRef> = info.keys.iter().map(|&k| batch.data.column(k).clone()).collect();
        let keys = info.key_converter.convert_columns(&normalized(&key_columns))?;
        let rows = info.row_converter.convert_columns(batch.data.columns())?;
        let groups = key_groups(&batch, &info.keys)?;
        let null_keys = self.null_keys(input, &batch);
        let times = SideInfo::times(&batch, info.expiry.map(|b| b.column))?;
        // Usually the column a row expires on is the one it is late on: cast it once.
        let late_times = match info.late_column == info.expiry.map(|b| b.column) {
            true => times.clone(),
            false => SideInfo::times(&batch, info.late_column)?,
        };
        let bound = info.expiry;
        let ttl_expiry = self.ttl_us.map(|ttl| wall_clock_us().saturating_add(ttl));
        let backend = self.backend.clone();
        let n = batch.num_rows();
        let mut next = 0;
        while next < n {
            // Gather the rows of a chunk and their candidates (up to a chunk of pairs), so
            // that the candidates are decoded once, for the extra condition and the output.
            let mut plans: Vec<RowPlan> = Vec::new();
            let mut pair_rows: Vec<u32> = Vec::new();
            let mut candidates: Vec<Arc<[u8]>> = Vec::new();
            // Each distinct candidate is decoded once (many rows of a chunk often match the
            // same row: a hot auction's bids); `distinct_of` maps a pair to its candidate's.
            let mut distinct = Distinct::default();
            while next < n && candidates.len() < CHUNK_PAIRS {
                let i = next;
                next += 1;
                // Its matches may be gone already: dropped, as windows drop late rows.
                if late_times.as_ref().is_some_and(|t| t.is_valid(i) && t.value(i) < self.watermark) {
                    self.late_rows += 1;
                    continue;
                }
                let expires = match (&times, bound) {
                    (Some(times), Some(bound)) if times.is_valid(i) => {
                        times.value(i).saturating_add(bound.offset_us)
                    }
                    _ => ttl_expiry.unwrap_or(i64::MAX),
                };
                let null_key = null_keys.as_ref().is_some_and(|nulls| nulls.is_null(i));
                let first = candidates.len();
                if !null_key {
                    let key = keys.row(i);
                    let group = groups[i] as u16;
                    if let Some(found) =
                        self.states[1 - input].peek(backend.as_ref(), self.namespace, group, key.as_ref())?
                    {
                        for (row, _) in found.live_shared() {
                            distinct.add(row);
                            candidates.push(Arc::clone(row));
                            pair_rows.push(i as u32);
                        }
                    }
                }
                plans.push(RowPlan { row: i, null_key, expires, candidates: first..candidates.len() });
            }
            let other = &self.sides[1 - input];
            let theirs =
                other.row_converter.convert_rows(distinct.rows.iter().map(|r| other.parser.parse(r)))?;
            let passing = self.passing(input, &batch, &pair_rows, &theirs, &distinct.of_pair)?;
            let mut emit = Emitter::default();
            for plan in plans {
                let i = plan.row;
                if plan.null_key {
                    self.unmatched(input, i as u32, batch.op(i), &mut emit);
                    continue;
                }
                self.apply(
                    input,
                    keys.row(i).as_ref(),
                    groups[i] as u16,
                    i as u32,
                    rows.row(i).as_ref(),
                    batch.op(i),
                    plan.expires,
                    &candidates[plan.candidates.clone()],
                    plan.candidates.start,
                    &passing[plan.candidates],
                    &mut emit,
                )?;
            }
            emit.finish(self, input, &batch, &theirs, &distinct.of_pair, out)?;
        }
        if !self.in_memory && self.states.iter().any(|s| s.over_memory_limit(self.cache_rows)) {
            self.write_and_evict()?;
        }
        Ok(())
    }

    fn on_barrier(&mut self, barrier: &Barrier, _out: &mut Vec<StreamBatch>) -> ExecResult<()> {
        // Rows that can no longer match (interval joins) or have outlived the TTL go first.
        let now = wall_clock_us();
        for side in [LEFT, RIGHT] {
            let clock = match (self.sides[side].expiry, self.ttl_us) {
                (Some(_), _) => self.watermark,
                (None, Some(_)) => now,
                (None, None) => continue,
            };
            let info = &self.sides[side];
            self.states[side]
                .expire(self.backend.as_ref(), self.namespace, clock, &|key| info.key_group(key))?;
        }
        self.flush(barrier)
    }

    /// A regular join may emit a row of any age whenever the other side changes, so no
    /// watermark holds for its output: it is not forwarded. An interval join uses it to
    /// drop rows that can no longer match.
    fn on_watermark(&mut self, watermark: i64, _out: &mut Vec<StreamBatch>) -> ExecResult<Option<i64>> {
        self.watermark = self.watermark.max(watermark);
        Ok(None)
    }

    fn late_rows(&self) -> u64 {
        self.late_rows
    }

    fn state_rows(&self) -> u64 {
        self.states[LEFT].total_rows + self.states[RIGHT].total_rows
    }

    fn state_rows_in_memory(&self) -> u64 {
        self.states.iter().map(|s| s.cached_rows() as u64).sum()
    }

    fn snapshot(&mut self, incremental: bool) -> ExecResult<Option<OperatorSnapshot>> {
        let (kind, deferred, delta) = self.rows_state().snapshot(incremental)?;
        let mut meta = Vec::with_capacity(33);
        meta.push(kind);
        meta.extend_from_slice(&self.states[LEFT].total_rows.to_le_bytes());
        meta.extend_from_slice(&self.states[RIGHT].total_rows.to_le_bytes());
        meta.extend_from_slice(&self.watermark.to_le_bytes());
        meta.extend_from_slice(&self.late_rows.to_le_bytes());
        Ok(Some(OperatorSnapshot { meta, deferred: Some(deferred), delta }))
    }

    fn writes_deltas(&self) -> bool {
        self.in_memory
    }

    fn restore(&mut self, meta: &[u8], deferred: Option<&mut dyn Read>) -> ExecResult<()> {
        let (kind, fields) = split_meta(meta, META_FIELDS)?;
        let [left, right, watermark, late_rows] = meta_fields(fields)?;
        self.watermark = watermark as i64;
        self.late_rows = late_rows;
        let input = deferred.ok_or_else(|| ExecError::Internal("join snapshot without its rows".into()))?;
        self.rows_state().restore(kind, input, None, Some(&[left, right]))
    }

    /// Both sides' rows of the key groups this subtask owns now are added to its (new,
    /// empty) state; the row counts are counted again.
    fn restore_rescaled(
        &mut self,
        meta: &[u8],
        deferred: Option<&mut dyn Read>,
        scope: &super::RescaleScope,
    ) -> ExecResult<()> {
        let (kind, fields) = split_meta(meta, META_FIELDS)?;
        let [_, _, watermark, late_rows] = meta_fields(fields)?;
        self.watermark = self.watermark.max(watermark as i64);
        if scope.last_piece {
            self.late_rows += late_rows;
        }
        let input = deferred.ok_or_else(|| ExecError::Internal("join snapshot without its rows".into()))?;
        self.rows_state().restore(kind, input, Some(scope), None)
    }
}

/// The join's own meta fields: both sides' row counts, the watermark, the late rows.
const META_FIELDS: usize = 32;

fn meta_fields(fields: &[u8]) -> ExecResult<[u64; 4]> {
    let field = |i: usize| -> ExecResult<u64> {
        fields
            .get(i * 8..i * 8 + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| ExecError::Internal("join snapshot: meta is corrupt".into()))
    };
    Ok([field(0)?, field(1)?, field(2)?, field(3)?])
}

/// Collects the output rows of one chunk, each as an input row and a candidate of the other
/// side (either may be absent: NULL padding), and builds batches of them by `take`: the
/// input side from the input batch, the other side from the chunk's decoded candidates.
/// No row is decoded from row bytes for the output.
#[derive(Default)]
struct Emitter {
    mine: Vec<Option<u32>>,
    theirs: Vec<Option<u32>>,
    ops: Vec<i8>,
}

impl Emitter {
    fn push(&mut self, mine: Option<u32>, theirs: Option<u32>, op: i8, times: i64) {
        for _ in 0..times.max(0) {
            self.mine.push(mine);
            self.theirs.push(theirs);
            self.ops.push(op);
        }
    }

    /// Turns the collected rows into batches of at most [`OUTPUT_BATCH_ROWS`] rows, appended
    /// to `out`. `input` is the side of `batch`, `theirs` the other side's distinct
    /// candidates, `of_pair` a pair's candidate among them.
    fn finish(
        mut self,
        join: &HashJoin,
        input: usize,
        batch: &StreamBatch,
        theirs: &[ArrayRef],
        of_pair: &[u32],
        out: &mut Vec<StreamBatch>,
    ) -> ExecResult<()> {
        for pair in self.theirs.iter_mut().flatten() {
            *pair = of_pair.get(*pair as usize).copied().ok_or_else(|| {
                ExecError::Internal("join output names a candidate the chunk does not have".into())
            })?;
        }
        let pick = |columns: &[ArrayRef], rows: &[Option<u32>]| -> ExecResult<Vec<ArrayRef>> {
            let indices = arrow::array::UInt32Array::from(rows.to_vec());
            columns
                .iter()
                .map(|c| match indices.null_count() == indices.len() {
                    // No row of this side: all padding (the candidates may be empty).
                    true => Ok(new_null_array(c.data_type(), indices.len())),
                    false => Ok(arrow::compute::take(c.as_ref(), &indices, None)?),
                })
                .collect()
        };
        let mut start = 0;
        while start < self.ops.len() {
            let end = (start + OUTPUT_BATCH_ROWS).min(self.ops.len());
            let mine = || pick(batch.data.columns(), &self.mine[start..end]);
            let theirs = || pick(theirs, &self.theirs[start..end]);
            let columns: Vec<ArrayRef> = match (join.kind.left_only(), input) {
                (true, LEFT) => mine()?,
                (true, _) => theirs()?,
                (false, LEFT) => mine()?.into_iter().chain(theirs()?).collect(),
                (false, _) => theirs()?.into_iter().chain(mine()?).collect(),
            };
            let options = RecordBatchOptions::new().with_row_count(Some(end - start));
            let data = RecordBatch::try_new_with_options(join.output_schema.clone(), columns, &options)?;
            let ops = &self.ops[start..end];
            out.push(match ops.iter().all(|&op| op == OP_INSERT) {
                true => StreamBatch::inserts(data),
                false => StreamBatch::with_ops(data, Int8Array::from(ops.to_vec())),
            });
            start = end;
        }
        Ok(())
    }
}

/// A chunk's distinct candidates, told apart by their shared allocation (the same row of
/// the other side is the same `Arc` in every pair it is in).
#[derive(Default)]
struct Distinct {
    rows: Vec<Arc<[u8]>>,
    /// For each pair, its candidate's index in `rows`.
    of_pair: Vec<u32>,
    index: HashMap<*const u8, u32, RandomState>,
}

impl Distinct {
    fn add(&mut self, row: &Arc<[u8]>) {
        let next = self.rows.len() as u32;
        let index = *self.index.entry(Arc::as_ptr(row) as *const u8).or_insert(next);
        if index == next {
            self.rows.push(Arc::clone(row));
        }
        self.of_pair.push(index);
    }
}

#[cfg(test)]
mod tests;
