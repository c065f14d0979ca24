//! Materialize: applies a changelog to one partition of a view's contents.
//!
//! The partition and everything about its rows (their encoding, staging, decoding and
//! checkpoint format) belong to the view store (`weir_storage::view_store`); this operator
//! feeds it. Each batch of changes is applied to the partition; at each barrier the
//! partition is staged in the [`ViewStateStore`] (an O(1) copy thanks to structural sharing)
//! for the JobManager to publish when the epoch commits. Rows pass through unchanged, so
//! views defined on this view can follow its changes.

use std::io::{Read, Write};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use weir_storage::view_store::{read_rows, write_rows, ViewPartition};
use weir_storage::ViewStateStore;

use super::{DeferredState, Operator, OperatorSnapshot};
use crate::error::{ExecError, ExecResult};
use crate::message::{Barrier, StreamBatch};
use crate::view_table::decode_error;

pub struct Materialize {
    view_id: u64,
    partition: usize,
    rows: ViewPartition,
    states: Arc<dyn ViewStateStore>,
    /// The columns the exchange in front of this operator hashes, when it is a vertex of
    /// its own behind one (a rescaled view): a row's partition then follows from its values,
    /// so the rows can be spread over another number of partitions.
    key_columns: Option<Vec<usize>>,
    /// The deployment of the view's job this task belongs to, named when it stages.
    deployment: u64,
}

impl Materialize {
    pub fn new(
        view_id: u64,
        partition: usize,
        schema: SchemaRef,
        states: Arc<dyn ViewStateStore>,
    ) -> ExecResult<Self> {
        Ok(Self {
            view_id,
            partition,
            rows: ViewPartition::new(schema)?,
            states,
            key_columns: None,
            deployment: 0,
        })
    }

    /// The task belongs to `deployment` of the view's job (see `ViewStateStore::stage`).
    pub fn in_deployment(mut self, deployment: u64) -> Self {
        self.deployment = deployment;
        self
    }

    /// Rows reach this partition by the hash of `columns` (see `key_columns`).
    pub fn keyed_by(mut self, columns: Vec<usize>) -> Self {
        self.key_columns = Some(columns);
        self
    }

    pub fn view_id(&self) -> u64 {
        self.view_id
    }

    /// The partition's current contents as insert batches, for a view that starts reading
    /// this one.
    pub fn contents(&self) -> ExecResult<Vec<StreamBatch>> {
        self.rows.batches().map(|batch| Ok(StreamBatch::inserts(batch.map_err(decode_error)?))).collect()
    }
}

impl Operator for Materialize {
    fn name(&self) -> &'static str {
        "Materialize"
    }

    fn process_batch(
        &mut self,
        _input: usize,
        batch: StreamBatch,
        out: &mut Vec<StreamBatch>,
    ) -> ExecResult<()> {
        let missing = self.rows.apply(batch.data.columns(), |i| i64::from(batch.op(i)))?;
        if missing > 0 {
            tracing::warn!(
                view = self.view_id,
                partition = self.partition,
                rows = missing,
                "a view partition was told to delete rows it does not hold"
            );
        }
        out.push(batch);
        Ok(())
    }

    fn on_barrier(&mut self, barrier: &Barrier, _out: &mut Vec<StreamBatch>) -> ExecResult<()> {
        let rows = self.rows.rows().clone();
        self.states.stage(self.view_id, self.deployment, self.partition, barrier.epoch, rows);
        Ok(())
    }

    /// The partition is a persistent map: capturing it is an O(1) copy, written out later.
    fn snapshot(&mut self, _incremental: bool) -> ExecResult<Option<OperatorSnapshot>> {
        let rows = self.rows.rows().clone();
        let deferred: DeferredState = Box::new(move |out: &mut dyn Write| write_rows(&rows, out).map_err(io));
        Ok(Some(OperatorSnapshot { meta: vec![], deferred: Some(deferred), delta: false }))
    }

    fn restore(&mut self, _meta: &[u8], deferred: Option<&mut dyn Read>) -> ExecResult<()> {
        let input =
            deferred.ok_or_else(|| ExecError::Internal("Materialize: snapshot without rows".into()))?;
        self.rows.set_rows(read_rows(input).map_err(io)?);
        Ok(())
    }

    /// The old partition's rows whose key columns hash to this partition's key groups.
    fn restore_rescaled(
        &mut self,
        _meta: &[u8],
        deferred: Option<&mut dyn Read>,
        scope: &super::RescaleScope,
    ) -> ExecResult<()> {
        let keys = self.key_columns.clone().ok_or_else(|| {
            ExecError::Internal("Materialize: a rescale needs the view's rows hashed by key".into())
        })?;
        let input =
            deferred.ok_or_else(|| ExecError::Internal("Materialize: snapshot without rows".into()))?;
        let rows = read_rows(input).map_err(io)?;
        let schema = self.rows.schema().clone();
        let mut failure = None;
        self.rows.add_rows_where(&rows, |columns| {
            let batch = arrow::array::RecordBatch::try_new(schema, columns.to_vec())?;
            match crate::exchange::key_groups(&StreamBatch::inserts(batch), &keys) {
                Ok(groups) => Ok(groups.into_iter().map(|g| scope.owns(g)).collect()),
                Err(e) => {
                    failure = Some(e);
                    Ok(vec![])
                }
            }
        })?;
        failure.map_or(Ok(()), Err)
    }
}

fn io(e: std::io::Error) -> ExecError {
    ExecError::Internal(format!("Materialize state: {e}"))
}

#[cfg(test)]
mod tests {
    use arrow::array::{ArrayRef, Int64Array, StringArray};

    use weir_storage::InMemoryViewStates;

    use super::*;
    use crate::operators::test_util::{assert_output, batch};

    fn rows(names: Vec<&str>, n: Vec<i64>, ops: Option<Vec<i8>>) -> StreamBatch {
        batch(
            vec![
                ("name", Arc::new(StringArray::from(names)) as ArrayRef),
                ("n", Arc::new(Int64Array::from(n)) as ArrayRef),
            ],
            ops,
        )
    }

    #[test]
    fn applies_changes_and_publishes_at_commit() {
        let states: Arc<dyn ViewStateStore> = Arc::new(InMemoryViewStates::new());
        let first = rows(vec!["b", "a", "a"], vec![2, 1, 1], None);
        let schema = first.data.schema();
        states.register(9, 0, schema.clone(), 1);
        let mut op = Materialize::new(9, 0, schema, states.clone()).unwrap();
        let mut out = vec![];
        op.process_batch(0, first, &mut out).unwrap();
        op.on_barrier(&Barrier::new(1), &mut out).unwrap();
        // Staged but not committed: readers see nothing yet.
        assert!(states.snapshot().views.is_empty());
        assert_eq!(states.commit(1).views[&9].row_count(), 3);

        op.process_batch(0, rows(vec!["a", "c"], vec![1, 3], Some(vec![-1, 1])), &mut out).unwrap();
        op.on_barrier(&Barrier::new(2), &mut out).unwrap();
        assert_eq!(states.commit(2).views[&9].row_count(), 3);
        assert_output(
            &op.contents().unwrap(),
            &[
                "+----+------+---+",
                "| op | name | n |",
                "+----+------+---+",
                "| +  | a    | 1 |",
                "| +  | b    | 2 |",
                "| +  | c    | 3 |",
                "+----+------+---+",
            ],
        );
    }

    #[test]
    fn a_delete_before_its_insert_cancels_out() {
        let states: Arc<dyn ViewStateStore> = Arc::new(InMemoryViewStates::new());
        let del = rows(vec!["x"], vec![1], Some(vec![-1]));
        let mut op = Materialize::new(1, 0, del.data.schema(), states).unwrap();
        let mut out = vec![];
        op.process_batch(0, del, &mut out).unwrap();
        op.process_batch(0, rows(vec!["x"], vec![1], None), &mut out).unwrap();
        assert!(op.contents().unwrap().is_empty());
        assert!(op.rows.rows().is_empty());
    }

    #[test]
    fn a_snapshot_taken_at_a_barrier_restores_that_state() {
        let states: Arc<dyn ViewStateStore> = Arc::new(InMemoryViewStates::new());
        let first = rows(vec!["a", "b", "b"], vec![1, 2, 2], None);
        let schema = first.data.schema();
        let mut op = Materialize::new(3, 0, schema.clone(), states.clone()).unwrap();
        let mut out = vec![];
        op.process_batch(0, first, &mut out).unwrap();
        let snapshot = op.snapshot(false).unwrap().unwrap();
        // Changes after the barrier are not part of the snapshot.
        op.process_batch(0, rows(vec!["c"], vec![3], None), &mut out).unwrap();
        let mut file = Vec::new();
        (snapshot.deferred.unwrap())(&mut file).unwrap();

        let mut restored = Materialize::new(3, 0, schema, states).unwrap();
        restored.restore(&snapshot.meta, Some(&mut file.as_slice())).unwrap();
        assert_output(
            &restored.contents().unwrap(),
            &[
                "+----+------+---+",
                "| op | name | n |",
                "+----+------+---+",
                "| +  | a    | 1 |",
                "| +  | b    | 2 |",
                "| +  | b    | 2 |",
                "+----+------+---+",
            ],
        );
    }

    #[test]
    fn rescaled_partitions_hold_each_row_where_its_key_is_routed() {
        use crate::operators::test_util::route;
        use crate::operators::RescaleScope;
        let states: Arc<dyn ViewStateStore> = Arc::new(InMemoryViewStates::new());
        let names: Vec<String> = (0..200).map(|i| format!("n{}", i % 70)).collect();
        let all = rows(names.iter().map(String::as_str).collect(), (0..200).map(|i| i % 3).collect(), None);
        let schema = all.data.schema();
        let partition =
            |i: usize| Materialize::new(4, i, schema.clone(), states.clone()).unwrap().keyed_by(vec![0]);
        // Two old partitions, filled by some other routing (here: halves of the input).
        let mut snapshots = Vec::new();
        for half in [all.data.slice(0, 120), all.data.slice(120, 80)] {
            let mut op = partition(0);
            op.process_batch(0, StreamBatch::inserts(half), &mut vec![]).unwrap();
            let snapshot = op.snapshot(false).unwrap().unwrap();
            let mut bytes = Vec::new();
            (snapshot.deferred.unwrap())(&mut bytes).unwrap();
            snapshots.push(bytes);
        }
        let routed = route(&all, &[0], 3);
        for (subtask, expected_rows) in routed.into_iter().enumerate() {
            let mut op = partition(subtask);
            for (old, bytes) in snapshots.iter().enumerate() {
                op.restore_rescaled(&[], Some(&mut bytes.as_slice()), &RescaleScope::new(old, subtask, 3))
                    .unwrap();
            }
            let mut expected = partition(subtask);
            expected.process_batch(0, expected_rows, &mut vec![]).unwrap();
            assert_eq!(op.rows.rows(), expected.rows.rows(), "partition {subtask}");
            // A retraction routed here finds its row.
            let mut out = vec![];
            let first = expected.contents().unwrap();
            if let Some(batch) = first.first() {
                let one = batch.data.slice(0, 1);
                op.process_batch(
                    0,
                    StreamBatch::with_ops(one, arrow::array::Int8Array::from(vec![-1])),
                    &mut out,
                )
                .unwrap();
                assert!(op.rows.rows().values().all(|&n| n > 0));
            }
        }
    }
}
