//! Materialize: applies a changelog to one partition of a view's contents.
//!
//! The partition is a persistent ordered map from the row (Arrow row format) to its
//! multiplicity, so a view needs no key: an insert adds one, a delete takes one away, and a
//! row disappears at zero. Counts may dip below zero within an epoch when a delete overtakes
//! its insert on another path; only the state at a barrier is published. At each barrier
//! the partition is staged in [`ViewStateStore`] (an O(1) copy thanks to structural sharing)
//! for the JobManager to publish when the epoch commits. Rows pass through unchanged, so
//! views defined on this view can follow its changes.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use weir_storage::{ViewRows, ViewStateStore};

use std::io::{Read, Write};

use super::{DeferredState, Operator, OperatorSnapshot};
use crate::error::{ExecError, ExecResult};
use crate::message::{Barrier, StreamBatch};
use crate::view_table::ViewBatches;

pub struct Materialize {
    view_id: u64,
    partition: usize,
    schema: SchemaRef,
    converter: RowConverter,
    rows: ViewRows,
    states: Arc<dyn ViewStateStore>,
}

impl Materialize {
    pub fn new(
        view_id: u64,
        partition: usize,
        schema: SchemaRef,
        states: Arc<dyn ViewStateStore>,
    ) -> ExecResult<Self> {
        let converter = RowConverter::new(
            schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect(),
        )?;
        Ok(Self { view_id, partition, schema, converter, rows: ViewRows::new(), states })
    }

    pub fn view_id(&self) -> u64 {
        self.view_id
    }

    /// The partition's current contents as insert batches, for a view that starts reading
    /// this one.
    pub fn contents(&self) -> ExecResult<Vec<StreamBatch>> {
        ViewBatches::new(self.schema.clone(), vec![self.rows.clone()])
            .map(|batch| Ok(StreamBatch::inserts(batch?)))
            .collect()
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
        let encoded = self.converter.convert_columns(batch.data.columns())?;
        for (i, row) in encoded.iter().enumerate() {
            let delta = i64::from(batch.op(i));
            let key = row.as_ref();
            let remove = match self.rows.get_mut(key) {
                Some(count) => {
                    *count += delta;
                    *count == 0
                }
                None => {
                    self.rows.insert(Arc::from(key), delta);
                    false
                }
            };
            if remove {
                self.rows.remove(key);
            }
        }
        out.push(batch);
        Ok(())
    }

    fn on_barrier(&mut self, barrier: &Barrier, _out: &mut Vec<StreamBatch>) -> ExecResult<()> {
        self.states.stage(self.view_id, self.partition, barrier.epoch, self.rows.clone());
        Ok(())
    }

    /// The partition is a persistent map: capturing it is an O(1) copy, written out later.
    fn snapshot(&mut self, _incremental: bool) -> ExecResult<Option<OperatorSnapshot>> {
        let rows = self.rows.clone();
        let deferred: DeferredState = Box::new(move |out: &mut dyn Write| write_rows(&rows, out).map_err(io));
        Ok(Some(OperatorSnapshot { meta: vec![], deferred: Some(deferred), delta: false }))
    }

    fn restore(&mut self, _meta: &[u8], deferred: Option<&mut dyn Read>) -> ExecResult<()> {
        let input =
            deferred.ok_or_else(|| ExecError::Internal("Materialize: snapshot without rows".into()))?;
        self.rows = read_rows(input).map_err(io)?;
        Ok(())
    }
}

fn io(e: std::io::Error) -> ExecError {
    ExecError::Internal(format!("Materialize state: {e}"))
}

/// Rows as (`u32` length, row bytes, `i64` multiplicity)..., then `u32::MAX`.
fn write_rows(rows: &ViewRows, out: &mut dyn Write) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(out);
    for (row, count) in rows.iter() {
        let len = u32::try_from(row.len()).map_err(|_| std::io::Error::other("row too large"))?;
        out.write_all(&len.to_le_bytes())?;
        out.write_all(row)?;
        out.write_all(&count.to_le_bytes())?;
    }
    out.write_all(&u32::MAX.to_le_bytes())?;
    out.flush()
}

fn read_rows(input: &mut dyn Read) -> std::io::Result<ViewRows> {
    let mut input = std::io::BufReader::new(input);
    let mut rows = ViewRows::new();
    loop {
        let mut len = [0u8; 4];
        input.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len);
        if len == u32::MAX {
            return Ok(rows);
        }
        let mut row = vec![0u8; len as usize];
        input.read_exact(&mut row)?;
        let mut count = [0u8; 8];
        input.read_exact(&mut count)?;
        rows.insert(Arc::from(row), i64::from_le_bytes(count));
    }
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
        states.register(9, schema.clone(), 1);
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
        assert!(op.rows.is_empty());
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
}
