//! HashAggregate: incremental GROUP BY over a changelog stream.
//!
//! Each input row is a weighted change (`+1` insert, `-1` delete) to its group's state, and
//! every accumulator (see [`accumulators`]) is a commutative group under these
//! changes: rows may arrive in any order within an epoch (a delete can overtake its insert
//! when they travel different paths), and only the state at the barrier matters.
//!
//! `process_batch` only updates state: the group columns of the whole batch are encoded
//! once with an arrow [`RowConverter`], each row's group slot is looked up in a hash map of
//! those keys, and each accumulator updates its columnar per-slot vectors in one typed pass.
//! Touched groups are remembered in a dirty list. Output is produced at the barrier, as the
//! epoch's net change: emitting per batch would publish intermediate results (and twice as
//! many retractions) that the barrier-consistent view never needs. For every dirty group we
//! keep the last emitted output row (arrow-row encoded) and emit `-old`/`+new` when it
//! changed, only `-old` when the group's row count dropped to 0 (its slot then goes to a free
//! list), nothing when it did not change. Deletes come first, then inserts, in one batch.
//!
//! Min and max cannot be maintained as a single running value once rows are retracted
//! (deleting the current max must reveal the previous one), so they keep an ordered multiset
//! of the group's values; count(DISTINCT) keeps the same multiset.
//!
//! Windowed groups (`spec.window`: a group column carries the watermark, e.g. `window_end`)
//! close when the watermark passes them. A row for a closed group is late: it is dropped and
//! counted. In emit-on-update mode a closed group's last row stays in the view and its state
//! is dropped after the next barrier; with `EMIT ON WINDOW CLOSE` nothing is emitted at
//! barriers and each group is emitted once, final, as an insert when the watermark closes it.
//! Either way, state holds only open windows, so it stays bounded on an endless stream.
//!
//! Without windows, a state TTL (`spec.state_ttl_ms`) drops groups not updated for that
//! long, retracting their rows (see [`ttl`]).
//!
//! Without GROUP BY (`spec.global`) there is one group that always exists: its row is emitted
//! on the first barrier even over no input (count 0, sum NULL, as in SQL) and never deleted.

use crate::operators::float_keys::normalized;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int8Array, RecordBatch};
use arrow::compute::{can_cast_types, CastOptions};
use arrow::datatypes::TimestampMicrosecondType;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::row::{RowConverter, SortField};
use datafusion::common::hash_utils::RandomState;
use weir_storage::state_table::StateTable;

use super::Operator;
use crate::error::{ExecError, ExecResult};
use crate::message::{Barrier, StreamBatch, OP_DELETE, OP_INSERT};
use weir_plan::job_graph::{schema_of, AggregateSpec, WindowedGroups};

mod accumulators;
mod persistence;
mod ttl;

use accumulators::{create_accumulator, GroupAccumulator};

/// A windowed group's slot, with its key to recognise a slot freed and reused meanwhile.
type OpenGroup = (u32, Arc<[u8]>);

pub struct HashAggregate {
    group_columns: usize,
    global: bool,
    input_schema: SchemaRef,
    output_schema: SchemaRef,
    /// Input column of each aggregate (None for count(*)), parallel to `accumulators`.
    inputs: Vec<Option<usize>>,
    accumulators: Vec<Box<dyn GroupAccumulator>>,
    /// Encodes the group columns; None without group columns (the key is then empty).
    group_converter: Option<RowConverter>,
    /// Encodes full output rows, to remember and compare what was emitted.
    output_converter: RowConverter,
    /// Group key (arrow-row bytes) -> slot. Slots index every per-group vector below and
    /// the accumulators' state.
    slots: HashMap<Arc<[u8]>, u32, RandomState>,
    /// The key of a free slot (shared, so freeing a slot allocates nothing).
    no_key: Arc<[u8]>,
    keys: Vec<Arc<[u8]>>,
    /// Net row count (sum of ops) per slot.
    row_counts: Vec<i64>,
    /// The output row last emitted for the slot, arrow-row encoded.
    emitted: Vec<Option<Box<[u8]>>>,
    dirty: Vec<u32>,
    is_dirty: Vec<bool>,
    free: Vec<u32>,
    window: Option<WindowedGroups>,
    watermark: i64,
    late_rows: u64,
    /// Windowed groups by their window column's value (microseconds), to close them in order.
    /// The key is kept to recognise a slot that was freed and reused meanwhile.
    open: BTreeMap<i64, Vec<OpenGroup>>,
    /// Emit-on-update: groups closed by the watermark, dropped after the next barrier's output.
    closing: Vec<u32>,
    /// The groups' copy in a state backend, when they may outgrow memory (see
    /// [`persistence`]); the slots above are its cache.
    state_table: Option<StateTable>,
    /// Without one: the groups changed since the last checkpoint snapshot.
    changed_groups: persistence::ChangedGroups,
    /// State time-to-live of an aggregate without windows (see [`ttl`]).
    expiry: Option<ttl::GroupExpiry>,
}

fn invalid(msg: String) -> ExecError {
    ExecError::InvalidGraph(format!("HashAggregate: {msg}"))
}

impl HashAggregate {
    pub fn new(spec: &AggregateSpec, input_schema: SchemaRef) -> ExecResult<Self> {
        let output_schema = schema_of(&spec.output)?;
        let gc = spec.group_columns;
        if output_schema.fields().len() != gc + spec.aggregates.len() || output_schema.fields().is_empty() {
            return Err(invalid(format!(
                "{} output columns for {gc} group columns and {} aggregates",
                output_schema.fields().len(),
                spec.aggregates.len()
            )));
        }
        if gc > input_schema.fields().len() {
            return Err(invalid(format!(
                "{gc} group columns over {} input columns",
                input_schema.fields().len()
            )));
        }
        if spec.global && gc > 0 {
            return Err(invalid("a global aggregate cannot have group columns".into()));
        }
        if let Some(w) = &spec.window {
            let timestamp = input_schema.fields().get(w.column).map(|f| f.data_type());
            if w.column >= gc
                || !matches!(timestamp, Some(DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, _)))
            {
                return Err(invalid(format!("window column {} is not a timestamp group column", w.column)));
            }
        }
        let out_types: Vec<&DataType> = output_schema.fields().iter().map(|f| f.data_type()).collect();
        let group_types: Vec<DataType> =
            input_schema.fields()[..gc].iter().map(|f| f.data_type().clone()).collect();
        for (from, to) in group_types.iter().zip(&out_types) {
            if !can_cast_types(from, to) {
                return Err(invalid(format!("group column of type {from} cannot be output as {to}")));
            }
        }
        let mut accumulators = Vec::with_capacity(spec.aggregates.len());
        for (call, out_type) in spec.aggregates.iter().zip(&out_types[gc..]) {
            let input_type = match call.input_column {
                Some(c) => Some(
                    input_schema
                        .fields()
                        .get(c)
                        .ok_or_else(|| invalid(format!("{:?} reads missing input column {c}", call.kind)))?
                        .data_type(),
                ),
                None => None,
            };
            let acc = create_accumulator(call.kind, input_type, out_type, spec.append_only_input)?;
            if !can_cast_types(&acc.output_type(), out_type) {
                return Err(invalid(format!(
                    "{:?} produces {}, declared {out_type}",
                    call.kind,
                    acc.output_type()
                )));
            }
            accumulators.push(acc);
        }
        let sort_fields = |types: Vec<DataType>| types.into_iter().map(SortField::new).collect::<Vec<_>>();
        let group_converter = match gc {
            0 => None,
            _ => Some(
                RowConverter::new(sort_fields(group_types))
                    .map_err(|e| invalid(format!("group key: {e}")))?,
            ),
        };
        let output_converter = RowConverter::new(sort_fields(out_types.into_iter().cloned().collect()))
            .map_err(|e| invalid(format!("output row: {e}")))?;
        let mut op = Self {
            group_columns: gc,
            global: spec.global,
            input_schema,
            output_schema,
            inputs: spec.aggregates.iter().map(|a| a.input_column).collect(),
            accumulators,
            group_converter,
            output_converter,
            slots: HashMap::default(),
            no_key: Arc::from(&[][..]),
            keys: vec![],
            row_counts: vec![],
            emitted: vec![],
            dirty: vec![],
            is_dirty: vec![],
            free: vec![],
            window: spec.window.clone(),
            watermark: i64::MIN,
            late_rows: 0,
            open: BTreeMap::new(),
            closing: vec![],
            state_table: None,
            changed_groups: Default::default(),
            expiry: match (&spec.window, spec.global, spec.state_ttl_ms) {
                (None, false, Some(ms)) => Some(ttl::GroupExpiry::new(ms)),
                _ => None,
            },
        };
        if op.global {
            // The one group exists from the start; dirty so the first barrier emits it.
            let slot = op.slot_for(&[])?;
            op.mark_dirty(slot);
        }
        Ok(op)
    }

    /// The slot of group `key`, allocating one (from the free list first) for a new group.
    fn slot_for(&mut self, key: &[u8]) -> ExecResult<u32> {
        Ok(self.find_or_create(key)?.0)
    }

    /// The slot of group `key` and whether it was just created.
    fn find_or_create(&mut self, key: &[u8]) -> ExecResult<(u32, bool)> {
        if let Some(&slot) = self.slots.get(key) {
            return Ok((slot, false));
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                let slot = u32::try_from(self.keys.len())
                    .map_err(|_| ExecError::Internal("HashAggregate: too many groups".into()))?;
                self.keys.push(Arc::clone(&self.no_key));
                self.row_counts.push(0);
                self.emitted.push(None);
                self.is_dirty.push(false);
                for acc in &mut self.accumulators {
                    acc.resize(self.keys.len());
                }
                if let Some(expiry) = &mut self.expiry {
                    expiry.resize(self.keys.len());
                }
                slot
            }
        };
        let key: Arc<[u8]> = Arc::from(key);
        self.keys[slot as usize] = Arc::clone(&key);
        self.slots.insert(key, slot);
        Ok((slot, true))
    }

    /// Whether a group whose window column is `value` can no longer receive on-time rows.
    fn is_closed(&self, value: i64) -> bool {
        match &self.window {
            Some(w) if w.exclusive_end => value.saturating_add(w.close_after) <= self.watermark,
            Some(_) => value < self.watermark,
            None => false,
        }
    }

    /// Drops the rows of closed windows from `batch`, counting them.
    fn drop_late_rows(&mut self, batch: StreamBatch, column: usize) -> ExecResult<StreamBatch> {
        let values =
            batch.data.column(column).as_primitive_opt::<TimestampMicrosecondType>().ok_or_else(|| {
                ExecError::Internal("HashAggregate: window column is not a timestamp".into())
            })?;
        let keep: BooleanArray =
            (0..values.len()).map(|i| Some(values.is_null(i) || !self.is_closed(values.value(i)))).collect();
        let late = keep.false_count();
        if late == 0 {
            return Ok(batch);
        }
        self.late_rows += late as u64;
        tracing::debug!(late, watermark = self.watermark, "late rows dropped");
        Ok(batch.filter(&keep)?)
    }

    /// Removes and returns the groups the current watermark closes.
    fn take_closed(&mut self) -> Vec<u32> {
        let Some(w) = &self.window else { return vec![] };
        // `open` keeps the keys that are still open: `> watermark` (exclusive end) or `>= watermark`.
        let first_open = match w.exclusive_end {
            true => self.watermark.saturating_sub(w.close_after).saturating_add(1),
            false => self.watermark,
        };
        let still_open = self.open.split_off(&first_open);
        let closed = std::mem::replace(&mut self.open, still_open);
        closed
            .into_values()
            .flatten()
            .filter(|(slot, key)| Arc::ptr_eq(&self.keys[*slot as usize], key))
            .map(|(slot, _)| slot)
            .collect()
    }

    /// `EMIT ON WINDOW CLOSE`: the final rows of the closed groups, as inserts; frees them.
    fn emit_closed(&mut self, closed: Vec<u32>, out: &mut Vec<StreamBatch>) -> ExecResult<()> {
        let live: Vec<u32> = closed.iter().copied().filter(|&s| self.row_counts[s as usize] > 0).collect();
        if !live.is_empty() {
            let columns = self.evaluate(&live)?;
            out.push(StreamBatch::inserts(RecordBatch::try_new(Arc::clone(&self.output_schema), columns)?));
        }
        for slot in closed {
            self.free_slot(slot);
        }
        Ok(())
    }

    fn mark_dirty(&mut self, slot: u32) {
        if !self.is_dirty[slot as usize] {
            self.is_dirty[slot as usize] = true;
            self.dirty.push(slot);
        }
    }

    fn free_slot(&mut self, slot: u32) {
        self.release_slot(slot, false);
    }

    /// Frees a clean slot whose group stays in the state backend.
    fn free_slot_evicted(&mut self, slot: u32) {
        self.release_slot(slot, true);
    }

    fn release_slot(&mut self, slot: u32, evicted: bool) {
        let s = slot as usize;
        let key = std::mem::replace(&mut self.keys[s], Arc::clone(&self.no_key));
        self.forget_group(slot, &key, evicted);
        self.slots.remove(&key[..]);
        self.row_counts[s] = 0;
        self.emitted[s] = None;
        for acc in &mut self.accumulators {
            acc.reset(s);
        }
        if let Some(expiry) = &mut self.expiry {
            expiry.free(slot);
        }
        self.free.push(slot);
    }

    /// The batch must have the input schema's types at the columns this operator reads.
    fn check_input(&self, batch: &StreamBatch) -> ExecResult<()> {
        let mut used = (0..self.group_columns).chain(self.inputs.iter().flatten().copied());
        let expected = |c: usize| Some(self.input_schema.field(c).data_type());
        if let Some(c) = used.find(|&c| batch.data.columns().get(c).map(|col| col.data_type()) != expected(c))
        {
            let msg = format!("input column {c} is not of type {}", self.input_schema.field(c).data_type());
            return Err(ExecError::Internal(format!("HashAggregate: {msg}")));
        }
        match &batch.ops {
            Some(ops) if ops.len() != batch.num_rows() => {
                Err(ExecError::Internal("HashAggregate: ops column length differs from the batch".into()))
            }
            _ => Ok(()),
        }
    }

    /// Output rows (as arrays of the output schema) of the listed live groups.
    fn evaluate(&mut self, live: &[u32]) -> ExecResult<Vec<ArrayRef>> {
        let mut columns = match &self.group_converter {
            Some(converter) => {
                let parser = converter.parser();
                converter.convert_rows(live.iter().map(|&s| parser.parse(&self.keys[s as usize])))?
            }
            None => vec![],
        };
        for acc in &mut self.accumulators {
            columns.push(acc.evaluate(live)?);
        }
        let options = CastOptions { safe: false, ..Default::default() };
        columns
            .into_iter()
            .zip(self.output_schema.fields())
            .map(|(col, field)| match col.data_type() == field.data_type() {
                true => Ok(col),
                false => {
                    Ok(crate::functions::numeric_special::cast_array(&col, field.data_type(), &options)?)
                }
            })
            .collect()
    }
}

impl Operator for HashAggregate {
    fn name(&self) -> &'static str {
        "HashAggregate"
    }

    fn process_batch(
        &mut self,
        _input: usize,
        batch: StreamBatch,
        out: &mut Vec<StreamBatch>,
    ) -> ExecResult<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        self.check_input(&batch)?;
        let window_column = self.window.as_ref().map(|w| w.column);
        let batch = match window_column {
            Some(column) => self.drop_late_rows(batch, column)?,
            None => batch,
        };
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let all_inserts;
        let weights: &[i8] = match &batch.ops {
            Some(ops) => ops.values(),
            None => {
                all_inserts = vec![OP_INSERT; n];
                &all_inserts
            }
        };
        let keys = match &self.group_converter {
            Some(converter) => {
                Some(converter.convert_columns(&normalized(&batch.data.columns()[..self.group_columns]))?)
            }
            None => None,
        };
        if let Some(keys) = &keys {
            self.load_missing(&batch, keys)?;
        }
        let mut groups = Vec::with_capacity(n);
        match (&keys, window_column) {
            (Some(keys), Some(column)) => {
                let values = batch.data.column(column).as_primitive::<TimestampMicrosecondType>();
                for (i, key) in keys.iter().enumerate() {
                    let (slot, created) = self.find_or_create(key.as_ref())?;
                    if created && values.is_valid(i) {
                        let key = Arc::clone(&self.keys[slot as usize]);
                        self.open.entry(values.value(i)).or_default().push((slot, key));
                    }
                    groups.push(slot);
                }
            }
            (Some(keys), None) => {
                for key in keys.iter() {
                    groups.push(self.slot_for(key.as_ref())?);
                }
            }
            (None, _) => groups.resize(n, self.slot_for(&[])?),
        }
        let emit_on_close = self.window.as_ref().is_some_and(|w| w.emit_on_close);
        for (&slot, &w) in groups.iter().zip(weights) {
            self.row_counts[slot as usize] += i64::from(w);
            if !emit_on_close {
                self.mark_dirty(slot);
            }
        }
        if let Some(table) = &mut self.state_table {
            for &slot in &groups {
                table.mark_updated(slot);
            }
        } else if self.tracks_changed_groups() {
            for &slot in &groups {
                self.mark_changed(slot);
            }
        }
        for (acc, input) in self.accumulators.iter_mut().zip(&self.inputs) {
            acc.update(input.map(|c| batch.data.column(c)), &groups, weights)?;
        }
        self.touch_groups(&groups);
        if self.over_memory_limit() {
            // Groups changed in this epoch cannot leave memory before their change is
            // emitted: emit now (the changes are the same, only earlier) so they can.
            self.emit_and_flush(out)?;
        }
        Ok(())
    }

    fn on_barrier(&mut self, _barrier: &Barrier, out: &mut Vec<StreamBatch>) -> ExecResult<()> {
        self.expire_groups()?;
        self.emit_and_flush(out)
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<StreamBatch>) -> ExecResult<Option<i64>> {
        if watermark <= self.watermark || self.window.is_none() {
            self.watermark = self.watermark.max(watermark);
            return Ok(Some(watermark));
        }
        self.watermark = watermark;
        let closed = self.take_closed();
        match self.window.as_ref().is_some_and(|w| w.emit_on_close) {
            true => self.emit_closed(closed, out)?,
            false if closed.is_empty() => {}
            // The closed windows' last changes go out before the watermark that closes
            // them (with the epoch's other changes so far: the same changes, earlier), so
            // nothing downstream sees a change for a window after the watermark passed it:
            // a window join relies on that to drop the closed windows' rows.
            false => {
                self.closing.extend(closed);
                self.emit_and_flush(out)?;
            }
        }
        Ok(Some(watermark))
    }

    fn late_rows(&self) -> u64 {
        self.late_rows
    }

    fn state_rows(&self) -> u64 {
        self.slots.len() as u64
    }

    fn writes_deltas(&self) -> bool {
        self.writes_deltas_in_memory()
    }

    fn snapshot(&mut self, incremental: bool) -> ExecResult<Option<super::OperatorSnapshot>> {
        self.snapshot_state(incremental)
    }

    fn restore(&mut self, meta: &[u8], deferred: Option<&mut dyn std::io::Read>) -> ExecResult<()> {
        self.restore_state(meta, deferred)
    }

    fn restore_rescaled(
        &mut self,
        meta: &[u8],
        deferred: Option<&mut dyn std::io::Read>,
        scope: &super::RescaleScope,
    ) -> ExecResult<()> {
        self.restore_rescaled_state(meta, deferred, scope)
    }
}

impl HashAggregate {
    /// Emits the epoch's net change of every dirty group (deletes first, then inserts, in
    /// one batch), frees groups that are gone, and writes the changes to the state backend.
    fn emit_and_flush(&mut self, out: &mut Vec<StreamBatch>) -> ExecResult<()> {
        let dirty = std::mem::take(&mut self.dirty);
        for &slot in &dirty {
            self.is_dirty[slot as usize] = false;
        }
        // A negative count is an epoch that saw a delete without its insert: not present.
        let (live, gone): (Vec<u32>, Vec<u32>) =
            dirty.into_iter().partition(|&s| self.global || self.row_counts[s as usize] > 0);
        let new_rows = match live.is_empty() {
            true => None,
            false => {
                let columns = self.evaluate(&live)?;
                Some(self.output_converter.convert_columns(&columns)?)
            }
        };
        // Slots whose previous row is deleted, and (slot, index into new_rows) inserted.
        let mut deletes = Vec::new();
        let mut inserts = Vec::new();
        if let Some(rows) = &new_rows {
            for (i, &slot) in live.iter().enumerate() {
                match &self.emitted[slot as usize] {
                    Some(old) if old[..] == *rows.row(i).as_ref() => continue,
                    Some(_) => deletes.push(slot),
                    None => {}
                }
                inserts.push((slot, i));
            }
        }
        deletes.extend(gone.iter().copied().filter(|&s| self.emitted[s as usize].is_some()));

        if !deletes.is_empty() || !inserts.is_empty() {
            let parser = self.output_converter.parser();
            let old_rows =
                deletes.iter().filter_map(|&s| self.emitted[s as usize].as_deref()).map(|r| parser.parse(r));
            let ins_rows = new_rows.iter().flat_map(|rows| inserts.iter().map(move |&(_, i)| rows.row(i)));
            let columns = self.output_converter.convert_rows(old_rows.chain(ins_rows))?;
            let ops: Vec<i8> = std::iter::repeat_n(OP_DELETE, deletes.len())
                .chain(std::iter::repeat_n(OP_INSERT, inserts.len()))
                .collect();
            let data = RecordBatch::try_new(Arc::clone(&self.output_schema), columns)?;
            out.push(StreamBatch::with_ops(data, Int8Array::from(ops)));
        }

        for &slot in &gone {
            self.emitted[slot as usize] = None;
            if self.row_counts[slot as usize] == 0 {
                self.free_slot(slot);
            }
        }
        if let Some(rows) = &new_rows {
            for &(slot, i) in &inserts {
                self.emitted[slot as usize] = Some(rows.row(i).as_ref().into());
            }
        }
        // Closed windows: their final row stays in the view; their state goes.
        for slot in std::mem::take(&mut self.closing) {
            if !self.keys[slot as usize].is_empty() {
                self.free_slot(slot);
            }
        }
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{BooleanArray, Decimal128Array, Float64Array, Int64Array, StringArray};

    use super::*;
    use crate::operators::test_util::{assert_output, batch, format};
    use weir_plan::job_graph::{AggregateCall, AggregateKind, AggregateKind::*, FieldSpec};
    use DataType::{Boolean, Decimal128, Float64, Int64, Utf8};

    type Calls<'a> = &'a [(AggregateKind, Option<usize>)];

    fn spec(group_columns: usize, calls: Calls, output: &[(&str, DataType)]) -> AggregateSpec {
        AggregateSpec {
            group_columns,
            aggregates: calls
                .iter()
                .map(|&(kind, input_column)| AggregateCall { kind, input_column })
                .collect(),
            output: output.iter().map(|(name, dt)| FieldSpec::new(*name, dt)).collect(),
            global: group_columns == 0,
            window: None,
            append_only_input: false,
            state_ttl_ms: None,
        }
    }

    /// Feeds `batches`, then barrier `epoch`; returns what the barrier emitted.
    fn epoch(op: &mut HashAggregate, batches: Vec<StreamBatch>, epoch: u64) -> Vec<StreamBatch> {
        let mut out = vec![];
        for b in batches {
            op.process_batch(0, b, &mut out).unwrap();
        }
        assert!(out.is_empty(), "process_batch must not emit");
        op.on_barrier(&Barrier::new(epoch), &mut out).unwrap();
        assert!(out.len() <= 1, "one batch per barrier");
        out
    }

    fn kv(keys: Vec<Option<&str>>, values: Vec<Option<i64>>, ops: Option<Vec<i8>>) -> StreamBatch {
        batch(
            vec![
                ("k", Arc::new(StringArray::from(keys)) as ArrayRef),
                ("v", Arc::new(Int64Array::from(values))),
            ],
            ops,
        )
    }

    /// Groups `kv` batches by `k`; each aggregate is (output name, kind, input column, output type).
    fn kv_op(aggs: &[(&str, AggregateKind, Option<usize>, DataType)]) -> HashAggregate {
        let calls: Vec<_> = aggs.iter().map(|a| (a.1, a.2)).collect();
        let output: Vec<_> =
            [("k", Utf8)].into_iter().chain(aggs.iter().map(|a| (a.0, a.3.clone()))).collect();
        HashAggregate::new(&spec(1, &calls, &output), kv(vec![], vec![], None).data.schema()).unwrap()
    }

    fn sum_max_op() -> HashAggregate {
        kv_op(&[("n", CountRows, None, Int64), ("s", Sum, Some(1), Int64), ("mx", Max, Some(1), Int64)])
    }

    #[test]
    fn grouped_aggregates_over_inserts() {
        let mut op = kv_op(&[
            ("n", CountRows, None, Int64),
            ("c", Count, Some(1), Int64),
            ("s", Sum, Some(1), Int64),
            ("mn", Min, Some(1), Int64),
            ("mx", Max, Some(1), Int64),
            ("a", Avg, Some(1), Float64),
        ]);
        let input = kv(
            vec![Some("a"), Some("b"), Some("a"), Some("b"), None, Some("c")],
            vec![Some(1), Some(5), Some(4), None, Some(7), None],
            None,
        );
        assert_output(
            &epoch(&mut op, vec![input], 1),
            &[
                "+----+---+---+---+---+----+----+-----+",
                "| op | k | n | c | s | mn | mx | a   |",
                "+----+---+---+---+---+----+----+-----+",
                "| +  | a | 2 | 2 | 5 | 1  | 4  | 2.5 |",
                "| +  | b | 2 | 1 | 5 | 5  | 5  | 5.0 |",
                "| +  |   | 1 | 1 | 7 | 7  | 7  | 7.0 |",
                "| +  | c | 1 | 0 |   |    |    |     |",
                "+----+---+---+---+---+----+----+-----+",
            ],
        );
    }

    #[test]
    fn updates_max_retraction_and_groups_coming_and_going() {
        let mut op = sum_max_op();
        let first = kv(
            vec![Some("a"), Some("a"), Some("a"), Some("b")],
            vec![Some(1), Some(5), Some(3), Some(2)],
            None,
        );
        assert_output(
            &epoch(&mut op, vec![first], 1),
            &[
                "+----+---+---+---+----+",
                "| op | k | n | s | mx |",
                "+----+---+---+---+----+",
                "| +  | a | 3 | 9 | 5  |",
                "| +  | b | 1 | 2 | 2  |",
                "+----+---+---+---+----+",
            ],
        );
        // Delete the current max of `a`; update `b` from 2 to 9.
        let second =
            kv(vec![Some("a"), Some("b"), Some("b")], vec![Some(5), Some(2), Some(9)], Some(vec![-1, -1, 1]));
        assert_output(
            &epoch(&mut op, vec![second], 2),
            &[
                "+----+---+---+---+----+",
                "| op | k | n | s | mx |",
                "+----+---+---+---+----+",
                "| -  | a | 3 | 9 | 5  |",
                "| -  | b | 1 | 2 | 2  |",
                "| +  | a | 2 | 4 | 3  |",
                "| +  | b | 1 | 9 | 9  |",
                "+----+---+---+---+----+",
            ],
        );
        // The last row of `b` goes, and so does the group; it comes back with fresh state.
        let gone = kv(vec![Some("b")], vec![Some(9)], Some(vec![-1]));
        assert_output(
            &epoch(&mut op, vec![gone], 3),
            &[
                "+----+---+---+---+----+",
                "| op | k | n | s | mx |",
                "+----+---+---+---+----+",
                "| -  | b | 1 | 9 | 9  |",
                "+----+---+---+---+----+",
            ],
        );
        assert_output(&epoch(&mut op, vec![], 4), &[]);
        let back = kv(vec![Some("b")], vec![Some(7)], None);
        assert_output(
            &epoch(&mut op, vec![back], 5),
            &[
                "+----+---+---+---+----+",
                "| op | k | n | s | mx |",
                "+----+---+---+---+----+",
                "| +  | b | 1 | 7 | 7  |",
                "+----+---+---+---+----+",
            ],
        );
    }

    #[test]
    fn batches_of_one_epoch_coalesce_and_early_deletes_do_not_panic() {
        let mut op = sum_max_op();
        // The delete of (a, 5) overtakes its insert; only the net change is emitted.
        let early_delete = kv(vec![Some("a")], vec![Some(5)], Some(vec![-1]));
        let inserts = kv(vec![Some("a"), Some("a")], vec![Some(5), Some(2)], None);
        assert_output(
            &epoch(&mut op, vec![early_delete, inserts], 1),
            &[
                "+----+---+---+---+----+",
                "| op | k | n | s | mx |",
                "+----+---+---+---+----+",
                "| +  | a | 1 | 2 | 2  |",
                "+----+---+---+---+----+",
            ],
        );
        // A net no-op in an epoch: the group is unchanged, nothing is emitted.
        let noop = kv(vec![Some("a"), Some("a")], vec![Some(2), Some(2)], Some(vec![-1, 1]));
        assert_output(&epoch(&mut op, vec![noop], 2), &[]);
    }

    #[test]
    fn count_distinct_with_duplicates_and_retractions() {
        let mut op = kv_op(&[("d", CountDistinct, Some(1), Int64)]);
        let input = kv(vec![Some("a"); 4], vec![Some(1), Some(1), Some(2), None], None);
        assert_output(
            &epoch(&mut op, vec![input], 1),
            &["+----+---+---+", "| op | k | d |", "+----+---+---+", "| +  | a | 2 |", "+----+---+---+"],
        );
        // One of the two 1s goes: still two distinct values, nothing to emit.
        assert_output(&epoch(&mut op, vec![kv(vec![Some("a")], vec![Some(1)], Some(vec![-1]))], 2), &[]);
        assert_output(
            &epoch(&mut op, vec![kv(vec![Some("a")], vec![Some(1)], Some(vec![-1]))], 3),
            &[
                "+----+---+---+",
                "| op | k | d |",
                "+----+---+---+",
                "| -  | a | 2 |",
                "| +  | a | 1 |",
                "+----+---+---+",
            ],
        );
    }

    #[test]
    fn bool_and_or() {
        let input = |keys: Vec<&str>, values: Vec<Option<bool>>, ops| {
            batch(
                vec![
                    ("k", Arc::new(StringArray::from(keys)) as ArrayRef),
                    ("b", Arc::new(BooleanArray::from(values))),
                ],
                ops,
            )
        };
        let first = input(
            vec!["t", "t", "mixed", "mixed", "null"],
            vec![Some(true), Some(true), Some(true), Some(false), None],
            None,
        );
        let out = [("k", Utf8), ("all", Boolean), ("any", Boolean)];
        let mut op =
            HashAggregate::new(&spec(1, &[(BoolAnd, Some(1)), (BoolOr, Some(1))], &out), first.data.schema())
                .unwrap();
        assert_output(
            &epoch(&mut op, vec![first], 1),
            &[
                "+----+-------+-------+------+",
                "| op | k     | all   | any  |",
                "+----+-------+-------+------+",
                "| +  | t     | true  | true |",
                "| +  | mixed | false | true |",
                "| +  | null  |       |      |",
                "+----+-------+-------+------+",
            ],
        );
        let retract_false = input(vec!["mixed"], vec![Some(false)], Some(vec![-1]));
        assert_output(
            &epoch(&mut op, vec![retract_false], 2),
            &[
                "+----+-------+-------+------+",
                "| op | k     | all   | any  |",
                "+----+-------+-------+------+",
                "| -  | mixed | false | true |",
                "| +  | mixed | true  | true |",
                "+----+-------+-------+------+",
            ],
        );
    }

    #[test]
    fn global_aggregate_always_has_one_row() {
        let values = |v: Vec<i64>, ops| batch(vec![("v", Arc::new(Int64Array::from(v)) as ArrayRef)], ops);
        let out = [("n", Int64), ("s", Int64)];
        let spec = spec(0, &[(CountRows, None), (Sum, Some(0))], &out);
        let mut op = HashAggregate::new(&spec, values(vec![], None).data.schema()).unwrap();
        assert_output(
            &epoch(&mut op, vec![], 1),
            &["+----+---+---+", "| op | n | s |", "+----+---+---+", "| +  | 0 |   |", "+----+---+---+"],
        );
        assert_output(&epoch(&mut op, vec![], 2), &[]);
        assert_output(
            &epoch(&mut op, vec![values(vec![5], None)], 3),
            &[
                "+----+---+---+",
                "| op | n | s |",
                "+----+---+---+",
                "| -  | 0 |   |",
                "| +  | 1 | 5 |",
                "+----+---+---+",
            ],
        );
        assert_output(
            &epoch(&mut op, vec![values(vec![5], Some(vec![-1]))], 4),
            &[
                "+----+---+---+",
                "| op | n | s |",
                "+----+---+---+",
                "| -  | 1 | 5 |",
                "| +  | 0 |   |",
                "+----+---+---+",
            ],
        );
    }

    #[test]
    fn decimal_and_float_sums_and_averages_with_nulls() {
        let input = batch(
            vec![
                ("k", Arc::new(StringArray::from(vec!["a", "a", "a", "n"])) as ArrayRef),
                (
                    "d",
                    Arc::new(
                        Decimal128Array::from(vec![Some(125), Some(250), None, None])
                            .with_precision_and_scale(10, 2)
                            .unwrap(),
                    ),
                ),
                ("f", Arc::new(Float64Array::from(vec![Some(0.5), None, Some(0.25), None]))),
            ],
            None,
        );
        let calls = [(Sum, Some(1)), (Avg, Some(1)), (Sum, Some(2)), (Avg, Some(2)), (Count, Some(2))];
        let out = [
            ("k", Utf8),
            ("sd", Decimal128(20, 2)),
            ("ad", Decimal128(14, 6)),
            ("sf", Float64),
            ("af", Float64),
            ("cf", Int64),
        ];
        let mut op = HashAggregate::new(&spec(1, &calls, &out), input.data.schema()).unwrap();
        assert_output(
            &epoch(&mut op, vec![input], 1),
            &[
                "+----+---+------+----------+------+-------+----+",
                "| op | k | sd   | ad       | sf   | af    | cf |",
                "+----+---+------+----------+------+-------+----+",
                "| +  | a | 3.75 | 1.875000 | 0.75 | 0.375 | 2  |",
                "| +  | n |      |          |      |       | 0  |",
                "+----+---+------+----------+------+-------+----+",
            ],
        );
    }

    #[test]
    fn rejects_sum_over_strings() {
        let schema = kv(vec![], vec![], None).data.schema();
        let spec = spec(1, &[(Sum, Some(0))], &[("k", Utf8), ("s", Int64)]);
        let err = HashAggregate::new(&spec, schema).err().expect("sum over Utf8 must be rejected");
        assert!(matches!(err, ExecError::InvalidGraph(_)), "{err}");
        assert!(err.to_string().contains("Sum over Utf8"), "{err}");
    }

    const S: i64 = 1_000_000;

    /// Rows (window_end seconds, value) grouped by window_end; count(*) and sum(v).
    fn windowed(emit_on_close: bool) -> HashAggregate {
        let ts = DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None);
        let mut spec = spec(
            1,
            &[(CountRows, None), (Sum, Some(1))],
            &[("window_end", ts.clone()), ("n", Int64), ("s", Int64)],
        );
        spec.window = Some(WindowedGroups { column: 0, exclusive_end: true, emit_on_close, close_after: 0 });
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("window_end", ts, true),
            arrow::datatypes::Field::new("v", Int64, true),
        ]));
        HashAggregate::new(&spec, schema).unwrap()
    }

    fn ends(ends: Vec<i64>, values: Vec<i64>) -> StreamBatch {
        batch(
            vec![
                (
                    "window_end",
                    Arc::new(arrow::array::TimestampMicrosecondArray::from(
                        ends.into_iter().map(|e| e * S).collect::<Vec<_>>(),
                    )) as ArrayRef,
                ),
                ("v", Arc::new(Int64Array::from(values))),
            ],
            None,
        )
    }

    #[test]
    fn emit_on_window_close_emits_each_window_once_when_the_watermark_passes_it() {
        let mut op = windowed(true);
        let mut out = vec![];
        op.process_batch(0, ends(vec![10, 10, 20], vec![1, 2, 3]), &mut out).unwrap();
        op.on_barrier(&Barrier::new(1), &mut out).unwrap();
        assert!(out.is_empty(), "nothing before the window closes");
        assert_eq!(op.state_rows(), 2);
        // The window ending at 10 s closes once the watermark reaches 10 s.
        op.on_watermark(9 * S, &mut out).unwrap();
        assert!(out.is_empty());
        op.on_watermark(10 * S, &mut out).unwrap();
        assert_output(
            &out,
            &[
                "+----+---------------------+---+---+",
                "| op | window_end          | n | s |",
                "+----+---------------------+---+---+",
                "| +  | 1970-01-01T00:00:10 | 2 | 3 |",
                "+----+---------------------+---+---+",
            ],
        );
        assert_eq!(op.state_rows(), 1, "the closed window's state is gone");
        // A row for the closed window is late: dropped and counted.
        out.clear();
        op.process_batch(0, ends(vec![10, 20], vec![100, 4]), &mut out).unwrap();
        assert_eq!(op.late_rows(), 1);
        op.on_watermark(i64::MAX, &mut out).unwrap();
        assert_output(
            &out,
            &[
                "+----+---------------------+---+---+",
                "| op | window_end          | n | s |",
                "+----+---------------------+---+---+",
                "| +  | 1970-01-01T00:00:20 | 2 | 7 |",
                "+----+---------------------+---+---+",
            ],
        );
        assert_eq!(op.state_rows(), 0);
    }

    #[test]
    fn emit_on_update_emits_a_closing_window_before_its_watermark_and_drops_its_state() {
        let mut op = windowed(false);
        let first = epoch(&mut op, vec![ends(vec![10, 20], vec![1, 2])], 1);
        assert_eq!(first[0].num_rows(), 2);
        let mut out = vec![];
        // The watermark closes window 10 in the middle of epoch 2, after a row for it arrived.
        op.process_batch(0, ends(vec![10], vec![5]), &mut out).unwrap();
        op.on_watermark(9 * S, &mut out).unwrap();
        assert!(out.is_empty(), "a watermark that closes nothing emits nothing");
        // Its last change comes out before the watermark is forwarded.
        assert_eq!(op.on_watermark(15 * S, &mut out).unwrap(), Some(15 * S));
        assert_output(
            &out,
            &[
                "+----+---------------------+---+---+",
                "| op | window_end          | n | s |",
                "+----+---------------------+---+---+",
                "| -  | 1970-01-01T00:00:10 | 1 | 1 |",
                "| +  | 1970-01-01T00:00:10 | 2 | 6 |",
                "+----+---------------------+---+---+",
            ],
        );
        assert_eq!(op.state_rows(), 1, "window 10 is evicted without a retraction");
        out.clear();
        op.on_barrier(&Barrier::new(2), &mut out).unwrap();
        assert!(out.is_empty(), "nothing left for the barrier");
        op.process_batch(0, ends(vec![10, 20], vec![7, 8]), &mut out).unwrap();
        assert_eq!(op.late_rows(), 1);
        op.on_barrier(&Barrier::new(3), &mut out).unwrap();
        assert_output(
            &out,
            &[
                "+----+---------------------+---+----+",
                "| op | window_end          | n | s  |",
                "+----+---------------------+---+----+",
                "| -  | 1970-01-01T00:00:20 | 1 | 2  |",
                "| +  | 1970-01-01T00:00:20 | 2 | 10 |",
                "+----+---------------------+---+----+",
            ],
        );
    }

    #[test]
    fn append_only_min_max_keep_the_extreme_and_refuse_deletes() {
        let mut spec =
            spec(1, &[(Max, Some(1)), (Min, Some(1))], &[("k", Utf8), ("max", Int64), ("min", Int64)]);
        spec.append_only_input = true;
        let mut op = HashAggregate::new(&spec, kv(vec![], vec![], None).data.schema()).unwrap();
        epoch(
            &mut op,
            vec![kv(vec![Some("a"), Some("a"), Some("b")], vec![Some(3), Some(5), None], None)],
            1,
        );
        // a's 4 changes neither extreme, so a's row is not re-emitted.
        let out = epoch(&mut op, vec![kv(vec![Some("a"), Some("b")], vec![Some(4), Some(1)], None)], 2);
        assert_output(
            &out,
            &[
                "+----+---+-----+-----+",
                "| op | k | max | min |",
                "+----+---+-----+-----+",
                "| -  | b |     |     |",
                "| +  | b | 1   | 1   |",
                "+----+---+-----+-----+",
            ],
        );
        let delete = kv(vec![Some("a")], vec![Some(5)], Some(vec![-1]));
        assert!(op.process_batch(0, delete, &mut vec![]).is_err());
    }

    use weir_storage::keyed_state::{
        InMemoryStateBackend, KeyedStateBackend, RocksDbStateBackend, StateNamespace,
    };
    use weir_storage::state_table::StateTableOptions;

    use crate::operators::test_util::{apply, route};
    use crate::operators::RescaleScope;

    const NS: StateNamespace =
        StateNamespace { job: 1, deployment: 0, vertex: 0, subtask: 0, operator_index: 0 };

    fn keyed(op: HashAggregate, backend: &Arc<dyn KeyedStateBackend>, cache: usize) -> HashAggregate {
        op.with_state(StateTable::new(Arc::clone(backend), NS, StateTableOptions::cached(cache)))
    }

    fn memory() -> Arc<dyn KeyedStateBackend> {
        Arc::new(InMemoryStateBackend::default())
    }

    /// Takes a checkpoint snapshot and writes it out, as a task's upload would.
    fn checkpoint(op: &mut HashAggregate) -> (Vec<u8>, Vec<u8>) {
        let snapshot = op.snapshot(false).unwrap().expect("stateful");
        let mut state = Vec::new();
        (snapshot.deferred.expect("deferred groups"))(&mut state).unwrap();
        (snapshot.meta, state)
    }

    fn restored(
        fresh: HashAggregate,
        backend: &Arc<dyn KeyedStateBackend>,
        cache: usize,
        cp: &(Vec<u8>, Vec<u8>),
    ) -> HashAggregate {
        let mut op = keyed(fresh, backend, cache);
        op.restore(&cp.0, Some(&mut cp.1.as_slice())).unwrap();
        op
    }

    fn keys_and_values(n: i64, offset: i64) -> StreamBatch {
        let keys: Vec<String> = (0..n).map(|i| format!("k{}", i % 50)).collect();
        let keys: Vec<Option<&str>> = keys.iter().map(|k| Some(k.as_str())).collect();
        kv(keys, (0..n).map(|i| Some(i + offset)).collect(), None)
    }

    #[test]
    fn a_restored_aggregate_continues_like_one_that_never_stopped() {
        let backend = memory();
        let mut op = keyed(sum_max_op(), &backend, usize::MAX);
        epoch(&mut op, vec![keys_and_values(200, 0)], 1);
        let cp = checkpoint(&mut op);
        // What happens after the checkpoint is replayed into the restored copy.
        let later = vec![
            keys_and_values(120, 1000),
            kv(vec![Some("k3"), Some("k7")], vec![Some(1003), Some(7)], Some(vec![-1, -1])),
        ];
        let expected = epoch(&mut op, later.clone(), 2);
        let mut copy = restored(sum_max_op(), &memory(), usize::MAX, &cp);
        assert_eq!(format(&epoch(&mut copy, later, 2)), format(&expected));
        assert_eq!(copy.state_rows(), op.state_rows());
    }

    /// Feeds `batches` then a barrier, allowing early emission; returns everything emitted.
    fn epoch_any(op: &mut HashAggregate, batches: Vec<StreamBatch>, epoch: u64) -> Vec<StreamBatch> {
        let mut out = vec![];
        for b in batches {
            op.process_batch(0, b, &mut out).unwrap();
        }
        op.on_barrier(&Barrier::new(epoch), &mut out).unwrap();
        out
    }

    #[test]
    fn evicted_groups_come_back_from_rocksdb_with_their_emitted_rows() {
        let dir = tempfile::tempdir().unwrap();
        let rocks: Arc<dyn KeyedStateBackend> =
            Arc::new(RocksDbStateBackend::open(dir.path(), &Default::default()).unwrap());
        let mut small = keyed(sum_max_op(), &rocks, 8);
        let mut all_in_memory = sum_max_op();
        let (mut view, mut expected_view) = (Default::default(), Default::default());
        let inputs = [keys_and_values(500, 0), keys_and_values(70, 5000), keys_and_values(500, 9)];
        for (i, batch) in inputs.into_iter().enumerate() {
            let retract = kv(vec![Some("k1")], vec![Some(5001)], Some(vec![-1]));
            let input = vec![batch, retract];
            apply(&mut expected_view, &epoch(&mut all_in_memory, input.clone(), i as u64 + 1));
            // 50 keys in batches against a cache of 8: changes are emitted early and groups
            // evicted within the epoch; the view they build is the same.
            apply(&mut view, &epoch_any(&mut small, input, i as u64 + 1));
            assert_eq!(view, expected_view, "epoch {}", i + 1);
            assert!(small.state_rows() <= 8, "{} groups in memory", small.state_rows());
        }
        // A restore from its checkpoint keeps agreeing.
        let cp = checkpoint(&mut small);
        let mut copy = restored(sum_max_op(), &rocks, 8, &cp);
        let input = vec![keys_and_values(60, 77)];
        apply(&mut expected_view, &epoch(&mut all_in_memory, input.clone(), 4));
        apply(&mut view, &epoch_any(&mut copy, input, 4));
        assert_eq!(view, expected_view);
    }

    #[test]
    fn restored_windows_still_close_on_the_watermark() {
        let backend = memory();
        let mut op = keyed(windowed(true), &backend, usize::MAX);
        let mut out = vec![];
        op.process_batch(0, ends(vec![10, 10, 20], vec![1, 2, 3]), &mut out).unwrap();
        op.on_watermark(5 * S, &mut out).unwrap();
        op.on_barrier(&Barrier::new(1), &mut out).unwrap();
        let cp = checkpoint(&mut op);
        let mut copy = restored(windowed(true), &memory(), 3, &cp);
        assert_eq!(copy.state_rows(), 2, "windowed groups are loaded eagerly");
        // Late for the watermark restored with the state.
        copy.process_batch(0, ends(vec![5, 20], vec![9, 4]), &mut out).unwrap();
        assert_eq!(copy.late_rows(), 1);
        copy.on_watermark(i64::MAX, &mut out).unwrap();
        assert_output(
            &out,
            &[
                "+----+---------------------+---+---+",
                "| op | window_end          | n | s |",
                "+----+---------------------+---+---+",
                "| +  | 1970-01-01T00:00:10 | 2 | 3 |",
                "| +  | 1970-01-01T00:00:20 | 2 | 7 |",
                "+----+---------------------+---+---+",
            ],
        );
    }

    /// Writes a snapshot's deferred state out, as the upload would.
    fn written(snapshot: crate::operators::OperatorSnapshot) -> (Vec<u8>, Vec<u8>, bool) {
        let mut state = Vec::new();
        (snapshot.deferred.expect("deferred groups"))(&mut state).unwrap();
        (snapshot.meta, state, snapshot.delta)
    }

    #[test]
    fn a_chain_of_delta_snapshots_restores_the_latest_state() {
        // Windowed (groups are created, updated and dropped between snapshots) and plain.
        for windowed_op in [true, false] {
            let fresh = || if windowed_op { windowed(true) } else { sum_max_op() };
            let input = |i: i64| match windowed_op {
                true => ends(vec![10 + i, 10 + i, 12 + i, 30], vec![i, 2 * i, 3, i]),
                false => keys_and_values(40 + i, i * 100),
            };
            let mut op = fresh();
            let mut chain = Vec::new();
            for i in 0..4i64 {
                let mut out = vec![];
                op.process_batch(0, input(i), &mut out).unwrap();
                if windowed_op {
                    op.on_watermark((11 + i) * S, &mut out).unwrap();
                } else {
                    // A retraction that removes a group entirely.
                    op.process_batch(
                        0,
                        kv(vec![Some("k7")], vec![Some(7 + i * 100)], Some(vec![-1])),
                        &mut out,
                    )
                    .unwrap();
                }
                op.on_barrier(&Barrier::new(i as u64 + 1), &mut out).unwrap();
                let (meta, state, delta) = written(op.snapshot(i > 0).unwrap().expect("stateful"));
                // Windowed groups churn: their snapshots stay full.
                assert_eq!(delta, i > 0 && !windowed_op, "snapshot {i}");
                chain.push((meta, state));
            }
            // Restore the chain into a fresh operator; both continue identically.
            let mut copy = fresh();
            for (meta, state) in &chain {
                copy.restore(meta, Some(&mut state.as_slice())).unwrap();
            }
            assert_eq!(copy.state_rows(), op.state_rows(), "windowed {windowed_op}");
            let (mut a, mut b) = (vec![], vec![]);
            op.process_batch(0, input(9), &mut a).unwrap();
            copy.process_batch(0, input(9), &mut b).unwrap();
            op.on_barrier(&Barrier::new(9), &mut a).unwrap();
            copy.on_barrier(&Barrier::new(9), &mut b).unwrap();
            op.on_watermark(i64::MAX, &mut a).unwrap();
            copy.on_watermark(i64::MAX, &mut b).unwrap();
            assert_eq!(format(&b), format(&a), "windowed {windowed_op}");
            assert_eq!(copy.late_rows(), op.late_rows());
        }
    }

    /// Rescales `old` subtasks (each with its checkpoint chain) to `new` subtasks made by
    /// `fresh`: every new subtask restores its share of every old chain.
    fn rescaled(
        chains: &[Vec<(Vec<u8>, Vec<u8>)>],
        new: usize,
        fresh: impl Fn(usize) -> HashAggregate,
    ) -> Vec<HashAggregate> {
        (0..new)
            .map(|subtask| {
                // Namespaces of their own, empty, as a TaskManager gives a rescaled task.
                let mut op = fresh(10 + subtask);
                for (old, chain) in chains.iter().enumerate() {
                    for (i, (meta, state)) in chain.iter().enumerate() {
                        let scope = RescaleScope {
                            last_piece: i + 1 == chain.len(),
                            ..RescaleScope::new(old, subtask, new)
                        };
                        op.restore_rescaled(meta, Some(&mut state.as_slice()), &scope).unwrap();
                    }
                }
                op
            })
            .collect()
    }

    #[test]
    fn a_rescaled_aggregate_gives_the_view_an_unrescaled_one_gives() {
        // In memory (with delta snapshots), windowed, and in a backend with a small cache.
        for case in ["memory", "windowed", "backend"] {
            let dir = tempfile::tempdir().unwrap();
            let rocks: Arc<dyn KeyedStateBackend> =
                Arc::new(RocksDbStateBackend::open(dir.path(), &Default::default()).unwrap());
            let fresh = |subtask: usize| match case {
                "windowed" => windowed(false),
                "backend" => sum_max_op().with_state(StateTable::new(
                    Arc::clone(&rocks),
                    StateNamespace { subtask: subtask as u16, ..NS },
                    StateTableOptions::cached(4),
                )),
                _ => sum_max_op(),
            };
            let input = |i: i64| match case {
                "windowed" => ends(vec![10 + i, 10 + i, 12 + i, 30, 11 + i], vec![i, 2 * i, 3, i, 5]),
                _ => {
                    let retract = kv(vec![Some("k7")], vec![Some(7 + i * 100)], Some(vec![-1]));
                    StreamBatch::concat(&[keys_and_values(40 + i, i * 100), retract]).unwrap().unwrap()
                }
            };
            let mut reference = fresh(9);
            let mut expected = std::collections::BTreeMap::new();
            let mut view = std::collections::BTreeMap::new();
            let feed = |op: &mut HashAggregate, batch: StreamBatch, epoch: u64, watermark: i64| {
                let mut out = vec![];
                op.process_batch(0, batch, &mut out).unwrap();
                if case == "windowed" {
                    op.on_watermark(watermark, &mut out).unwrap();
                }
                op.on_barrier(&Barrier::new(epoch), &mut out).unwrap();
                out
            };
            // Two subtasks, three checkpoints each (deltas after the first, in memory).
            let mut old: Vec<HashAggregate> = (0..2).map(fresh).collect();
            let mut chains = vec![Vec::new(), Vec::new()];
            for i in 0..3i64 {
                let watermark = (10 + i) * S;
                apply(&mut expected, &feed(&mut reference, input(i), i as u64 + 1, watermark));
                for (subtask, part) in route(&input(i), &[0], 2).into_iter().enumerate() {
                    apply(&mut view, &feed(&mut old[subtask], part, i as u64 + 1, watermark));
                    chains[subtask].push(written(old[subtask].snapshot(i > 0).unwrap().expect("stateful")));
                }
            }
            let chains: Vec<Vec<(Vec<u8>, Vec<u8>)>> =
                chains.into_iter().map(|c| c.into_iter().map(|(m, s, _)| (m, s)).collect()).collect();
            drop(old);
            assert_eq!(view, expected, "{case} before the rescale");
            // Rescaled to three, then fed the same input as the reference.
            let mut new = rescaled(&chains, 3, fresh);
            for i in 3..6i64 {
                let watermark = if i == 5 { i64::MAX } else { (10 + i) * S };
                apply(&mut expected, &feed(&mut reference, input(i), i as u64 + 1, watermark));
                for (subtask, part) in route(&input(i), &[0], 3).into_iter().enumerate() {
                    apply(&mut view, &feed(&mut new[subtask], part, i as u64 + 1, watermark));
                }
            }
            assert_eq!(view, expected, "{case} after the rescale");
            let late: u64 = new.iter().map(|op| op.late_rows()).sum();
            assert_eq!(late, reference.late_rows(), "{case}");
        }
    }
}
