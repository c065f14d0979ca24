//! `TopN`: the first `limit` rows of each partition by an order, maintained under inserts
//! and deletes (`ROW_NUMBER() OVER (PARTITION BY ... ORDER BY ...)` filtered by rank,
//! deduplication with `rn = 1`).
//!
//! The input arrives hash-partitioned on the partition columns. Each partition's rows are
//! kept in [`KeyedRows`] under the partition key, as Arrow row-format bytes of the order
//! columns (with their direction and NULL placement) followed by every column, so a
//! partition's rows iterate in rank order, ties broken by the whole row. For each batch the
//! operator notes the first `limit` rows of every partition the batch touches, applies the
//! batch, and emits the difference: a deleted top row is replaced by the next one, and with
//! the rank in the output, rows that move up or down are re-emitted with their new rank.
//!
//! Over an append-only input a row past the limit can never move up again, so such rows
//! are dropped and a partition holds at most `limit` rows.

use crate::operators::float_keys::normalized;
use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int8Array, RecordBatch, RecordBatchOptions, UInt32Array, UInt64Array};
use arrow::compute::SortOptions;
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, RowParser, Rows, SortField};
use weir_plan::job_graph::{schema_of, TopNSpec};
use weir_storage::keyed_state::{KeyedStateBackend, StateNamespace};

use super::keyed_rows::snapshot::{split_meta, RowsState};
use super::keyed_rows::KeyedRows;
use super::{Operator, OperatorSnapshot};
use crate::clock::wall_clock_us;
use crate::error::{ExecError, ExecResult};
use crate::exchange::key_groups;
use crate::message::{Barrier, StreamBatch, OP_DELETE, OP_INSERT};

/// Most rows in one output batch.
const OUTPUT_BATCH_ROWS: usize = 8192;

pub struct TopN {
    spec: TopNSpec,
    partition_converter: Option<RowConverter>,
    /// Order columns (with their sort options), then every column of the input.
    row_converter: RowConverter,
    /// The order columns alone: their bytes are a prefix of a row's, enough to reject a
    /// row that ranks past a full partition's limit without encoding the whole row.
    order_converter: RowConverter,
    parser: RowParser,
    rows: KeyedRows,
    schema: SchemaRef,
    backend: Arc<dyn KeyedStateBackend>,
    namespace: StateNamespace,
    cache_rows: usize,
    /// Rows are kept in memory only (the memory backend): checkpoints encode them from
    /// memory, and nothing is written to the backend.
    in_memory: bool,
    /// State time-to-live in microseconds of wall-clock time.
    ttl_us: Option<i64>,
}

/// A partition's top rows: (row bytes, rank).
type Ranked = Vec<(Box<[u8]>, u64)>;

impl TopN {
    pub fn new(
        spec: &TopNSpec,
        backend: Arc<dyn KeyedStateBackend>,
        namespace: StateNamespace,
        cache_rows: usize,
    ) -> ExecResult<Self> {
        let input = schema_of(&spec.input_fields)?;
        let field = |c: usize| {
            input
                .fields()
                .get(c)
                .map(|f| f.data_type().clone())
                .ok_or_else(|| ExecError::InvalidGraph(format!("top-n column {c} out of range")))
        };
        let partition_converter = match spec.partition.is_empty() {
            true => None,
            false => Some(RowConverter::new(
                spec.partition.iter().map(|&c| Ok(SortField::new(field(c)?))).collect::<ExecResult<_>>()?,
            )?),
        };
        let mut sort_fields = Vec::new();
        for o in &spec.order {
            let options = SortOptions { descending: o.descending, nulls_first: o.nulls_first };
            sort_fields.push(SortField::new_with_options(field(o.column)?, options));
        }
        let order_converter = RowConverter::new(sort_fields.clone())?;
        for c in 0..input.fields().len() {
            sort_fields.push(SortField::new(field(c)?));
        }
        let row_converter = RowConverter::new(sort_fields)?;
        let parser = row_converter.parser();
        Ok(Self {
            spec: spec.clone(),
            partition_converter,
            row_converter,
            order_converter,
            parser,
            rows: match cache_rows {
                usize::MAX => KeyedRows::new(0).kept_in_memory(),
                _ => KeyedRows::new(0),
            },
            schema: schema_of(&spec.output())?,
            backend,
            namespace,
            cache_rows: cache_rows.max(1),
            in_memory: cache_rows == usize::MAX,
            ttl_us: spec.state_ttl_ms.map(|ms| i64::try_from(ms.saturating_mul(1000)).unwrap_or(i64::MAX)),
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn rows_state(&mut self) -> RowsState<'_> {
        RowsState {
            sides: std::slice::from_mut(&mut self.rows),
            backend: self.backend.as_ref(),
            namespace: self.namespace,
            in_memory: self.in_memory,
        }
    }

    /// The first `limit` rows of a resident partition, each copy with its rank.
    fn top(&self, key: &[u8]) -> Ranked {
        let mut top = Vec::new();
        let Some(rows) = self.rows.get(key) else { return top };
        for (row, state) in rows.live() {
            for _ in 0..state.count {
                if top.len() as u64 >= self.spec.limit {
                    return top;
                }
                let rank = top.len() as u64 + 1;
                top.push((Box::from(row), rank));
            }
        }
        top
    }

    /// Whether `row` would rank after the last of `limit` rows the partition already holds.
    /// Given only the row's order columns (`order_only`), whether they alone rank it after
    /// that row: as the order bytes are a prefix of the row's, equal order values compare
    /// as less, and the whole row decides.
    fn ranks_past_the_limit(&self, key: &[u8], row: &[u8], order_only: bool) -> bool {
        let Some(rows) = self.rows.get(key) else { return false };
        let mut held = 0u64;
        for (kept, state) in rows.live() {
            held += state.count as u64;
            if held >= self.spec.limit {
                return if order_only { row > kept } else { row >= kept };
            }
        }
        false
    }

    /// Over an append-only input, the rows of `batch` that may enter their partition's
    /// first `limit` rows (all of them otherwise), judged by their order columns against
    /// the partitions as they are before the batch (a partition's last kept row only moves
    /// up as rows come, so a row rejected now would be rejected later in the batch too).
    fn candidates(
        &mut self,
        batch: &StreamBatch,
        keys: Option<&Rows>,
        groups: &[usize],
    ) -> ExecResult<Vec<u32>> {
        let n = batch.num_rows();
        if !self.spec.append_only_input {
            return Ok((0..n as u32).collect());
        }
        let order: Vec<ArrayRef> =
            self.spec.order.iter().map(|o| batch.data.column(o.column).clone()).collect();
        let order = self.order_converter.convert_columns(&order)?;
        let backend = self.backend.clone();
        let mut candidates = Vec::with_capacity(n);
        for (i, &group) in groups.iter().enumerate() {
            let key: &[u8] = keys.map_or(&[], |k| k.row(i).data());
            self.rows.load(backend.as_ref(), self.namespace, group as u16, key)?;
            if !self.ranks_past_the_limit(key, order.row(i).data(), true) {
                candidates.push(i as u32);
            }
        }
        Ok(candidates)
    }

    /// Over an append-only input, drops the rows of a partition past the limit.
    fn trim(&mut self, key: &[u8]) -> ExecResult<()> {
        let Some(rows) = self.rows.get(key) else { return Ok(()) };
        let mut kept = 0u64;
        let mut drop = Vec::new();
        for (row, state) in rows.live() {
            let keep = state.count.min((self.spec.limit - kept.min(self.spec.limit)) as i64);
            kept += keep as u64;
            if keep < state.count {
                drop.push((Box::<[u8]>::from(row), state.count - keep));
            }
        }
        for (row, extra) in drop {
            self.rows.apply(key, &row, -extra, 0, i64::MAX)?;
        }
        Ok(())
    }

    /// Drops rows that outlived the TTL; a partition whose first rows change that way shows
    /// the next rows in their place.
    fn expire_ttl(&mut self, out: &mut Vec<StreamBatch>) -> ExecResult<()> {
        let now = wall_clock_us();
        let backend = self.backend.clone();
        let mut emit = Emitter::new();
        for key in self.rows.take_due(now) {
            let group = self.rows.key_group_of(&key, &|key| self.partition_key_group(key))?;
            self.rows.load(backend.as_ref(), self.namespace, group, &key)?;
            let before = self.top(&key);
            if self.rows.expire_key(backend.as_ref(), self.namespace, group, &key, now)? > 0 {
                let after = self.top(&key);
                self.emit_difference(before, after, &mut emit);
            }
        }
        out.append(&mut emit.finish(self)?);
        Ok(())
    }

    /// The key group of a partition key in row bytes (for partitions not in memory).
    fn partition_key_group(&self, key: &[u8]) -> ExecResult<u16> {
        let Some(converter) = &self.partition_converter else { return Ok(0) };
        let columns = converter.convert_rows([converter.parser().parse(key)])?;
        let fields: Vec<arrow::datatypes::Field> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| arrow::datatypes::Field::new(format!("p{i}"), c.data_type().clone(), true))
            .collect();
        let batch = RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)?;
        let all: Vec<usize> = (0..self.spec.partition.len()).collect();
        Ok(key_groups(&StreamBatch::inserts(batch), &all)?.first().copied().unwrap_or(0) as u16)
    }

    /// Emits the change from `before` to `after` for one partition.
    fn emit_difference(&self, before: Ranked, after: Ranked, out: &mut Emitter) {
        let with_rank = self.spec.emit_rank;
        let mut counts: HashMap<(Box<[u8]>, u64), i64> = HashMap::new();
        let entry = |(row, rank): (Box<[u8]>, u64)| (row, if with_rank { rank } else { 0 });
        let mut order = Vec::new();
        for item in before {
            let item = entry(item);
            *counts.entry(item.clone()).or_default() -= 1;
            order.push(item);
        }
        for item in after {
            let item = entry(item);
            *counts.entry(item.clone()).or_default() += 1;
            order.push(item);
        }
        // Deletes first, then inserts, each in rank order.
        for wanted in [-1i64, 1] {
            for item in &order {
                let Some(count) = counts.get_mut(item) else { continue };
                if count.signum() == wanted {
                    let op = if wanted < 0 { OP_DELETE } else { OP_INSERT };
                    out.push(&item.0, with_rank.then_some(item.1), op);
                    *count -= wanted;
                }
            }
        }
    }

    /// Writes the changes and evicts partitions (see [`super::keyed_rows::write_and_evict`]).
    fn write_and_evict(&mut self) -> ExecResult<()> {
        let rows = std::slice::from_mut(&mut self.rows);
        super::keyed_rows::write_and_evict(rows, self.backend.as_ref(), self.namespace, self.cache_rows)
    }
}

impl Operator for TopN {
    fn name(&self) -> &'static str {
        "TopN"
    }

    fn process_batch(
        &mut self,
        _input: usize,
        batch: StreamBatch,
        out: &mut Vec<StreamBatch>,
    ) -> ExecResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.num_rows();
        let keys = match &self.partition_converter {
            Some(converter) => {
                let columns: Vec<ArrayRef> =
                    self.spec.partition.iter().map(|&c| batch.data.column(c).clone()).collect();
                Some(converter.convert_columns(&normalized(&columns))?)
            }
            None => None,
        };
        let groups = match self.spec.partition.is_empty() {
            true => vec![0; n],
            false => key_groups(&batch, &self.spec.partition)?,
        };
        let candidates = self.candidates(&batch, keys.as_ref(), &groups)?;
        if candidates.is_empty() {
            return Ok(());
        }
        // Only the candidates are encoded whole.
        let mut sort_columns: Vec<ArrayRef> =
            self.spec.order.iter().map(|o| batch.data.column(o.column).clone()).collect();
        sort_columns.extend(batch.data.columns().iter().cloned());
        if candidates.len() < n {
            let indices = UInt32Array::from(candidates.clone());
            sort_columns = sort_columns
                .iter()
                .map(|c| arrow::compute::take(c.as_ref(), &indices, None))
                .collect::<Result<_, _>>()?;
        }
        let rows = self.row_converter.convert_columns(&sort_columns)?;

        // The partitions this batch touches, in order of first touch, with their top rows
        // before it.
        let mut touched: Vec<Box<[u8]>> = Vec::new();
        let mut before: HashMap<Box<[u8]>, Ranked> = HashMap::new();
        let backend = self.backend.clone();
        let expires = self.ttl_us.map_or(i64::MAX, |ttl| wall_clock_us().saturating_add(ttl));
        for (j, &i) in candidates.iter().enumerate() {
            let i = i as usize;
            let key: &[u8] = keys.as_ref().map_or(&[], |k| k.row(i).data());
            let row = rows.row(j);
            // Loaded again: a delete earlier in the batch may have left the key empty, and
            // an empty key leaves memory.
            self.rows.load(backend.as_ref(), self.namespace, groups[i] as u16, key)?;
            // Over an append-only input, a row that ranks after a full partition's last kept
            // row can never be shown: it changes nothing and is not kept.
            if self.spec.append_only_input && self.ranks_past_the_limit(key, row.data(), false) {
                continue;
            }
            if !before.contains_key(key) {
                before.insert(key.into(), self.top(key));
                touched.push(key.into());
            }
            let delta = if batch.op(i) == OP_DELETE { -1 } else { 1 };
            self.rows.apply(key, row.data(), delta, 0, expires)?;
        }
        let mut emit = Emitter::new();
        for key in touched {
            let after = self.top(&key);
            if self.spec.append_only_input {
                self.trim(&key)?;
            }
            let before = before.remove(&key).unwrap_or_default();
            self.emit_difference(before, after, &mut emit);
        }
        let mut done = emit.finish(self)?;
        out.append(&mut done);
        if !self.in_memory && self.rows.over_memory_limit(self.cache_rows) {
            self.write_and_evict()?;
        }
        Ok(())
    }

    /// Changes are written on checkpoint barriers, or when the cache must evict; between
    /// checkpoints nothing reads the backend but this operator.
    fn on_barrier(&mut self, barrier: &Barrier, out: &mut Vec<StreamBatch>) -> ExecResult<()> {
        if self.ttl_us.is_some() {
            self.expire_ttl(out)?;
        }
        if self.in_memory {
            // A checkpoint's snapshot takes the changes next.
            if !barrier.checkpoint {
                self.rows.drop_gone();
            }
            return Ok(());
        }
        if !barrier.checkpoint && !self.rows.over_cache(self.cache_rows) {
            self.rows.drop_gone();
            return Ok(());
        }
        self.write_and_evict()
    }

    /// A partition's top rows can change with any later row, whatever its time.
    fn on_watermark(&mut self, _watermark: i64, _out: &mut Vec<StreamBatch>) -> ExecResult<Option<i64>> {
        Ok(None)
    }

    fn state_rows(&self) -> u64 {
        self.rows.total_rows
    }

    fn state_rows_in_memory(&self) -> u64 {
        self.rows.cached_rows() as u64
    }

    fn snapshot(&mut self, incremental: bool) -> ExecResult<Option<OperatorSnapshot>> {
        let (kind, deferred, delta) = self.rows_state().snapshot(incremental)?;
        let mut meta = vec![kind];
        meta.extend_from_slice(&self.rows.total_rows.to_le_bytes());
        Ok(Some(OperatorSnapshot { meta, deferred: Some(deferred), delta }))
    }

    fn writes_deltas(&self) -> bool {
        self.in_memory
    }

    fn restore(&mut self, meta: &[u8], deferred: Option<&mut dyn Read>) -> ExecResult<()> {
        let (kind, fields) = split_meta(meta, 8)?;
        let total = fields
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| ExecError::Internal("top-n snapshot: meta is corrupt".into()))?;
        let input = deferred.ok_or_else(|| ExecError::Internal("top-n snapshot without its rows".into()))?;
        self.rows_state().restore(kind, input, None, Some(&[total]))
    }

    /// The partitions of the key groups this subtask owns now are added to its (new,
    /// empty) state; the rows are counted again.
    fn restore_rescaled(
        &mut self,
        meta: &[u8],
        deferred: Option<&mut dyn Read>,
        scope: &super::RescaleScope,
    ) -> ExecResult<()> {
        let (kind, _) = split_meta(meta, 8)?;
        let input = deferred.ok_or_else(|| ExecError::Internal("top-n snapshot without its rows".into()))?;
        self.rows_state().restore(kind, input, Some(scope), None)
    }
}

/// Output rows (row bytes and rank) turned into batches of at most [`OUTPUT_BATCH_ROWS`].
struct Emitter {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    ranks: Vec<Option<u64>>,
    ops: Vec<i8>,
    done: Vec<StreamBatch>,
}

impl Emitter {
    fn new() -> Self {
        Self { bytes: Vec::new(), ends: Vec::new(), ranks: Vec::new(), ops: Vec::new(), done: Vec::new() }
    }

    fn push(&mut self, row: &[u8], rank: Option<u64>, op: i8) {
        self.bytes.extend_from_slice(row);
        self.ends.push(self.bytes.len());
        self.ranks.push(rank);
        self.ops.push(op);
    }

    fn finish(mut self, top: &TopN) -> ExecResult<Vec<StreamBatch>> {
        let total = self.ops.len();
        let mut start_row = 0;
        let mut start_byte = 0;
        while start_row < total {
            let end_row = (start_row + OUTPUT_BATCH_ROWS).min(total);
            let mut from = start_byte;
            let parsed = self.ends[start_row..end_row].iter().map(|&end| {
                let row = top.parser.parse(&self.bytes[from..end]);
                from = end;
                row
            });
            let columns = top.row_converter.convert_rows(parsed)?;
            let skip = top.spec.order.len();
            let mut output: Vec<ArrayRef> = columns.into_iter().skip(skip).take(top.spec.width).collect();
            output.push(Arc::new(UInt64Array::from(self.ranks[start_row..end_row].to_vec())));
            let options = RecordBatchOptions::new().with_row_count(Some(end_row - start_row));
            let data = RecordBatch::try_new_with_options(top.schema.clone(), output, &options)?;
            let ops = &self.ops[start_row..end_row];
            self.done.push(match ops.iter().all(|&op| op == OP_INSERT) {
                true => StreamBatch::inserts(data),
                false => StreamBatch::with_ops(data, Int8Array::from(ops.to_vec())),
            });
            start_byte = self.ends[end_row - 1];
            start_row = end_row;
        }
        Ok(self.done)
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::DataType;
    use weir_plan::job_graph::{FieldSpec, SortColumn};
    use weir_storage::keyed_state::InMemoryStateBackend;

    use super::*;
    use crate::operators::test_util::{assert_output, batch};

    const NS: StateNamespace =
        StateNamespace { job: 5, deployment: 0, vertex: 1, subtask: 0, operator_index: 0 };

    fn top_n(limit: u64, emit_rank: bool, append_only_input: bool) -> TopN {
        let spec = TopNSpec {
            partition: vec![0],
            order: vec![SortColumn { column: 1, descending: true, nulls_first: false }],
            limit,
            width: 3,
            input_fields: vec![
                FieldSpec::new("g", &DataType::Utf8),
                FieldSpec::new("price", &DataType::Int64),
                FieldSpec::new("id", &DataType::Int64),
            ],
            emit_rank,
            append_only_input,
            state_ttl_ms: None,
        };
        TopN::new(&spec, Arc::new(InMemoryStateBackend::default()), NS, usize::MAX).unwrap()
    }

    fn rows(g: Vec<&str>, price: Vec<i64>, id: Vec<i64>, ops: Option<Vec<i8>>) -> StreamBatch {
        batch(
            vec![
                ("g", Arc::new(StringArray::from(g)) as ArrayRef),
                ("price", Arc::new(Int64Array::from(price)) as ArrayRef),
                ("id", Arc::new(Int64Array::from(id)) as ArrayRef),
            ],
            ops,
        )
    }

    fn feed(op: &mut TopN, b: StreamBatch) -> Vec<StreamBatch> {
        let mut out = Vec::new();
        op.process_batch(0, b, &mut out).unwrap();
        out
    }

    #[test]
    fn a_deleted_top_row_is_replaced_by_the_next_and_ranks_move() {
        let mut t = top_n(2, true, false);
        let out = feed(&mut t, rows(vec!["a", "a", "a", "b"], vec![5, 9, 7, 1], vec![1, 2, 3, 4], None));
        assert_output(
            &out,
            &[
                "+----+---+-------+----+------+",
                "| op | g | price | id | rank |",
                "+----+---+-------+----+------+",
                "| +  | a | 9     | 2  | 1    |",
                "| +  | a | 7     | 3  | 2    |",
                "| +  | b | 1     | 4  | 1    |",
                "+----+---+-------+----+------+",
            ],
        );
        let out = feed(&mut t, rows(vec!["a"], vec![9], vec![2], Some(vec![-1])));
        assert_output(
            &out,
            &[
                "+----+---+-------+----+------+",
                "| op | g | price | id | rank |",
                "+----+---+-------+----+------+",
                "| -  | a | 9     | 2  | 1    |",
                "| -  | a | 7     | 3  | 2    |",
                "| +  | a | 7     | 3  | 1    |",
                "| +  | a | 5     | 1  | 2    |",
                "+----+---+-------+----+------+",
            ],
        );
    }

    #[test]
    fn without_the_rank_a_row_that_only_moves_is_not_reemitted() {
        let mut t = top_n(2, false, false);
        feed(&mut t, rows(vec!["a", "a"], vec![5, 7], vec![1, 2], None));
        let out = feed(&mut t, rows(vec!["a"], vec![9], vec![3], None));
        assert_output(
            &out,
            &[
                "+----+---+-------+----+------+",
                "| op | g | price | id | rank |",
                "+----+---+-------+----+------+",
                "| -  | a | 5     | 1  |      |",
                "| +  | a | 9     | 3  |      |",
                "+----+---+-------+----+------+",
            ],
        );
    }

    #[test]
    fn over_an_append_only_input_only_the_top_rows_are_kept() {
        let mut t = top_n(1, false, true);
        feed(&mut t, rows(vec!["a"; 5], vec![1, 2, 3, 4, 5], vec![1, 2, 3, 4, 5], None));
        feed(&mut t, rows(vec!["b"; 3], vec![1, 2, 3], vec![6, 7, 8], None));
        assert_eq!(t.state_rows(), 2);
    }

    #[test]
    fn over_an_append_only_input_rows_past_the_limit_change_nothing_and_ties_go_by_the_whole_row() {
        let mut t = top_n(1, false, true);
        feed(&mut t, rows(vec!["a", "b"], vec![5, 3], vec![9, 1], None));
        // Lower prices (rejected by their order columns alone), then a tie on the price that
        // the whole row ranks first (id 1 before id 9), then a tie it ranks after.
        let out = feed(
            &mut t,
            rows(vec!["a", "a", "b", "a", "a"], vec![4, 1, 2, 5, 5], vec![1, 2, 3, 1, 10], None),
        );
        assert_output(
            &out,
            &[
                "+----+---+-------+----+------+",
                "| op | g | price | id | rank |",
                "+----+---+-------+----+------+",
                "| -  | a | 5     | 9  |      |",
                "| +  | a | 5     | 1  |      |",
                "+----+---+-------+----+------+",
            ],
        );
        assert!(feed(&mut t, rows(vec!["a", "b"], vec![1, 3], vec![0, 2], None)).is_empty());
        assert_eq!(t.state_rows(), 2);
        let out = feed(&mut t, rows(vec!["b"], vec![6], vec![0], None));
        assert_output(
            &out,
            &[
                "+----+---+-------+----+------+",
                "| op | g | price | id | rank |",
                "+----+---+-------+----+------+",
                "| -  | b | 3     | 1  |      |",
                "| +  | b | 6     | 0  |      |",
                "+----+---+-------+----+------+",
            ],
        );
    }

    #[test]
    fn within_an_epoch_rows_in_memory_stay_bounded_by_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let rocks =
            weir_storage::keyed_state::RocksDbStateBackend::open(dir.path(), &Default::default()).unwrap();
        let mut spec = top_n(2, true, false).spec;
        spec.append_only_input = false;
        // A cache of 8 rows; 100 partitions of 3 rows, 10 partitions a batch, no barrier.
        let mut t = TopN::new(&spec, Arc::new(rocks), NS, 8).unwrap();
        for b in 0..10 {
            let groups: Vec<String> = (b * 10..b * 10 + 10).flat_map(|p| vec![format!("p{p}"); 3]).collect();
            let prices: Vec<i64> = (0..30).map(|i| i % 3).collect();
            let ids: Vec<i64> = (0..30).map(|i| b * 30 + i).collect();
            feed(&mut t, rows(groups.iter().map(String::as_str).collect(), prices, ids, None));
            assert!(t.rows.cached_rows() <= 32, "batch {b}: {} rows", t.rows.cached_rows());
        }
        assert_eq!(t.state_rows(), 300);
        // Partition p0, written early and evicted: its top row goes, the second moves up to
        // rank 1 and the third into rank 2.
        let out = feed(&mut t, rows(vec!["p0"], vec![2], vec![2], Some(vec![-1])));
        assert_output(
            &out,
            &[
                "+----+----+-------+----+------+",
                "| op | g  | price | id | rank |",
                "+----+----+-------+----+------+",
                "| -  | p0 | 2     | 2  | 1    |",
                "| -  | p0 | 1     | 1  | 2    |",
                "| +  | p0 | 1     | 1  | 1    |",
                "| +  | p0 | 0     | 0  | 2    |",
                "+----+----+-------+----+------+",
            ],
        );
    }

    #[test]
    fn duplicates_take_one_rank_each_and_state_survives_a_snapshot() {
        let mut t = top_n(3, true, false);
        feed(&mut t, rows(vec!["a"; 3], vec![4, 4, 2], vec![1, 1, 9], None));
        t.on_barrier(&Barrier::checkpoint(1), &mut Vec::new()).unwrap();
        let snapshot = t.snapshot(false).unwrap().unwrap();
        let mut bytes = Vec::new();
        (snapshot.deferred.unwrap())(&mut bytes).unwrap();
        let mut restored = top_n(3, true, false);
        restored.restore(&snapshot.meta, Some(&mut bytes.as_slice())).unwrap();
        let out = feed(&mut restored, rows(vec!["a"], vec![4], vec![1], Some(vec![-1])));
        assert_output(
            &out,
            &[
                "+----+---+-------+----+------+",
                "| op | g | price | id | rank |",
                "+----+---+-------+----+------+",
                "| -  | a | 4     | 1  | 2    |",
                "| -  | a | 2     | 9  | 3    |",
                "| +  | a | 2     | 9  | 2    |",
                "+----+---+-------+----+------+",
            ],
        );
    }
}

#[cfg(test)]
mod ttl_tests {
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::DataType;
    use weir_plan::job_graph::{FieldSpec, SortColumn};
    use weir_storage::keyed_state::InMemoryStateBackend;

    use super::*;
    use crate::operators::test_util::{batch, format};

    #[test]
    fn a_top_row_that_outlives_the_ttl_gives_way_to_the_next() {
        let spec = TopNSpec {
            partition: vec![0],
            order: vec![SortColumn { column: 1, descending: true, nulls_first: false }],
            limit: 1,
            width: 2,
            input_fields: vec![FieldSpec::new("g", &DataType::Utf8), FieldSpec::new("v", &DataType::Int64)],
            emit_rank: false,
            append_only_input: false,
            state_ttl_ms: Some(1000),
        };
        let ns = StateNamespace { job: 6, deployment: 0, vertex: 1, subtask: 0, operator_index: 0 };
        let mut t = TopN::new(&spec, Arc::new(InMemoryStateBackend::default()), ns, usize::MAX).unwrap();
        let rows = |v: Vec<i64>| {
            batch(
                vec![
                    ("g", Arc::new(StringArray::from(vec!["a"; v.len()])) as ArrayRef),
                    ("v", Arc::new(Int64Array::from(v)) as ArrayRef),
                ],
                None,
            )
        };
        let mut out = Vec::new();
        t.process_batch(0, rows(vec![9]), &mut out).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(600));
        t.process_batch(0, rows(vec![5]), &mut out).unwrap();
        // At 1.2 s 9 has expired (checked in buckets of about 131 ms) and 5 (1.6 s) not.
        std::thread::sleep(std::time::Duration::from_millis(600));
        let mut expired = Vec::new();
        t.on_barrier(&Barrier::new(1), &mut expired).unwrap();
        let lines = format(&expired);
        assert_eq!(&lines[3..5], &["| -  | a | 9 |      |", "| +  | a | 5 |      |"], "{lines:#?}");
        assert_eq!(t.state_rows(), 1);
    }
}
