//! Table source: reads a stored table as a stream — first a consistent snapshot of its
//! rows, then every later insert and delete from its changelog, in commit order.
//!
//! The reader's position is a changelog offset (the next sequence number to read), so it
//! can resume from any recorded offset. It reads new changes as soon as a write commits
//! and, when the JobManager injects a barrier, first reads the changelog to its end: every
//! write acknowledged before the barrier was injected belongs to that epoch or an earlier
//! one. That is what makes `FLUSH` exact.

use std::sync::{Arc, Mutex};

use arrow::array::{Int8Array, RecordBatch};
use arrow::datatypes::{Field, Schema};
use tokio::sync::mpsc;
use tracing::info;
use weir_storage::{ChangeOp, TableStore};

use crate::data_plane::ChannelSender;
use crate::error::{ExecError, ExecResult};
use crate::message::{Barrier, Message, StreamBatch, OP_DELETE, OP_INSERT};
use crate::sources::watermark::WatermarkGenerator;

/// A snapshot logs its progress every this many rows.
const SNAPSHOT_PROGRESS_ROWS: usize = 1_000_000;

/// Changelog entries per emitted batch.
const CHANGELOG_BATCH_ROWS: usize = 8192;

pub struct TableSource {
    table: Arc<TableStore>,
    /// The names of the columns the job was planned over, the table's first columns; empty
    /// for all of them as they are now. See [`planned_shape`].
    planned: Arc<Vec<String>>,
    /// Set for a table declared with `WATERMARK FOR` (append-only, read with event time).
    watermark: Option<Arc<Mutex<WatermarkGenerator>>>,
    /// `None`: start with a snapshot. `Some(seq)`: resume the changelog at `seq`.
    offset: Option<u64>,
    out: ChannelSender,
    barriers: mpsc::UnboundedReceiver<Barrier>,
}

impl TableSource {
    pub fn new(
        table: Arc<TableStore>,
        offset: Option<u64>,
        out: ChannelSender,
        barriers: mpsc::UnboundedReceiver<Barrier>,
    ) -> Self {
        Self { table, planned: Arc::new(Vec::new()), watermark: None, offset, out, barriers }
    }

    /// Emits the table's rows in the shape the job was planned over: its first
    /// `names.len()` columns, under these names, whatever `ALTER TABLE` added after them or
    /// renamed since.
    pub fn with_planned_columns(mut self, names: Vec<String>) -> Self {
        self.planned = Arc::new(names);
        self
    }

    /// Generates watermarks from the rows read, as a source does.
    pub fn with_watermark(mut self, generator: WatermarkGenerator) -> Self {
        self.watermark = Some(Arc::new(Mutex::new(generator)));
        self
    }

    /// Runs until the barrier channel closes (the job is stopped) or the consumer goes away.
    pub async fn run(mut self) -> ExecResult<()> {
        let mut commits = self.table.watch_commits();
        let started = std::time::Instant::now();
        let mut offset = match self.offset {
            Some(offset) => offset,
            None => self.snapshot().await?,
        };
        info!(
            table = %self.table.def().name,
            offset,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "table source read its snapshot; following the changelog"
        );
        loop {
            tokio::select! {
                barrier = self.barriers.recv() => {
                    let Some(mut barrier) = barrier else { return Ok(()) };
                    offset = self.read_changelog(offset).await?;
                    if barrier.checkpoint {
                        barrier.source_offset = Some(Arc::new(serde_json::Value::from(offset)));
                    }
                    self.send(Message::Barrier(barrier)).await?;
                }
                changed = commits.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    offset = self.read_changelog(offset).await?;
                }
            }
        }
    }

    async fn send(&self, message: Message) -> ExecResult<()> {
        self.out.send(message).await.map_err(|_| ExecError::ChannelClosed("table source output".into()))
    }

    /// Emits every row of the table as inserts; returns the offset the snapshot reflects.
    async fn snapshot(&self) -> ExecResult<u64> {
        let table = self.table.clone();
        let out = self.out.clone();
        let watermark = self.watermark.clone();
        let planned = self.planned.clone();
        let scan = tokio::task::spawn_blocking(move || {
            let mut rows = 0usize;
            let name = table.def().name.clone();
            let mut failed = None;
            let scan = table.scan(|batch| {
                let batch = match planned_shape(batch, &planned) {
                    Ok(batch) => batch,
                    Err(e) => {
                        failed = Some(e);
                        return false;
                    }
                };
                // A large backfill says how far it got.
                let before = rows / SNAPSHOT_PROGRESS_ROWS;
                rows += batch.num_rows();
                if rows / SNAPSHOT_PROGRESS_ROWS > before {
                    info!(table = %name, rows, "table source snapshot in progress");
                }
                let advanced = observe(&watermark, &batch);
                out.blocking_send(Message::Batch(StreamBatch::inserts(batch))).is_ok()
                    && advanced.is_none_or(|w| out.blocking_send(Message::Watermark(w)).is_ok())
            });
            match failed {
                Some(e) => Err(e),
                None => scan.map_err(ExecError::from),
            }
        })
        .await
        .map_err(|e| ExecError::Internal(format!("table snapshot task: {e}")))??;
        Ok(scan.next_seq)
    }

    /// Emits the changelog from `offset` to its current end; returns the new offset.
    async fn read_changelog(&self, offset: u64) -> ExecResult<u64> {
        if self.table.next_seq() <= offset {
            return Ok(offset);
        }
        let table = self.table.clone();
        let out = self.out.clone();
        let watermark = self.watermark.clone();
        let planned = self.planned.clone();
        tokio::task::spawn_blocking(move || {
            let mut failed = None;
            let resume = table.read_changelog(offset, CHANGELOG_BATCH_ROWS, |entry| {
                let rows = match planned_shape(entry.rows, &planned) {
                    Ok(rows) => rows,
                    Err(e) => {
                        failed = Some(e);
                        return false;
                    }
                };
                let advanced = observe(&watermark, &rows);
                let ops: Int8Array = entry
                    .ops
                    .iter()
                    .map(|op| if *op == ChangeOp::Delete { OP_DELETE } else { OP_INSERT })
                    .collect::<Vec<i8>>()
                    .into();
                out.blocking_send(Message::Batch(StreamBatch::with_ops(rows, ops))).is_ok()
                    && advanced.is_none_or(|w| out.blocking_send(Message::Watermark(w)).is_ok())
            });
            match failed {
                Some(e) => Err(e),
                None => resume.map_err(ExecError::from),
            }
        })
        .await
        .map_err(|e| ExecError::Internal(format!("changelog reader task: {e}")))?
    }
}

/// `batch`, rows of the table as it is now, in the shape a job planned earlier reads: the
/// first `planned.len()` columns under the planned names (`ALTER TABLE ... ADD COLUMN` adds
/// columns after them, `RENAME COLUMN` renames them; dropping a column a job reads is
/// refused). Unchanged when nothing was altered, or `planned` is empty.
fn planned_shape(batch: RecordBatch, planned: &[String]) -> ExecResult<RecordBatch> {
    let schema = batch.schema();
    let unchanged = schema.fields().len() == planned.len()
        && schema.fields().iter().zip(planned).all(|(field, name)| field.name() == name);
    if planned.is_empty() || unchanged {
        return Ok(batch);
    }
    if schema.fields().len() < planned.len() {
        return Err(ExecError::Internal(format!(
            "the table has {} columns, fewer than the {} this job was planned over",
            schema.fields().len(),
            planned.len()
        )));
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(planned)
        .map(|(field, name)| field.as_ref().clone().with_name(name))
        .collect();
    let columns = batch.columns()[..planned.len()].to_vec();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| ExecError::Internal(format!("reshaping table rows: {e}")))
}

/// The watermark after `batch`, if the table has one and it advanced. An expression that
/// cannot be evaluated is logged and yields no watermark (the rows still flow).
fn observe(
    generator: &Option<Arc<Mutex<WatermarkGenerator>>>,
    batch: &arrow::array::RecordBatch,
) -> Option<i64> {
    let mut generator = generator.as_ref()?.lock().ok()?;
    match generator.observe(batch) {
        Ok(advanced) => advanced,
        Err(e) => {
            tracing::warn!(error = %e, "table watermark expression failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use weir_plan::catalog::{ColumnDef, ColumnType, TableDef};
    use weir_storage::Store;

    use super::*;
    use crate::operators::test_util::assert_output;

    fn table(store: &Store) -> Arc<TableStore> {
        let def = TableDef {
            id: 0,
            schema_name: "public".into(),
            name: "t".into(),
            columns: vec![
                ColumnDef { name: "id".into(), column_type: ColumnType::Int8, not_null: true, default: None },
                ColumnDef {
                    name: "name".into(),
                    column_type: ColumnType::Text,
                    not_null: false,
                    default: None,
                },
            ],
            primary_key: vec![0],
            watermark: None,
            primary_key_name: None,
        };
        store.create_table(def).unwrap()
    }

    fn rows(t: &TableStore, ids: Vec<i64>, names: Vec<&str>) -> RecordBatch {
        RecordBatch::try_new(
            t.schema(),
            vec![Arc::new(Int64Array::from(ids)) as ArrayRef, Arc::new(StringArray::from(names))],
        )
        .unwrap()
    }

    async fn until_barrier(rx: &mut mpsc::Receiver<Message>) -> (Vec<StreamBatch>, u64) {
        let mut batches = vec![];
        loop {
            match rx.recv().await.unwrap() {
                Message::Batch(b) => batches.push(b),
                Message::Barrier(b) => return (batches, b.epoch),
                Message::Watermark(_) | Message::Idle => {}
            }
        }
    }

    #[tokio::test]
    async fn snapshot_then_changelog_split_by_barriers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t = table(&store);
        t.insert(&rows(&t, vec![2, 1], vec!["b", "a"])).unwrap();

        let (out_tx, mut out_rx) = mpsc::channel(4);
        let (barrier_tx, barrier_rx) = mpsc::unbounded_channel();
        let source = tokio::spawn(TableSource::new(t.clone(), None, out_tx, barrier_rx).run());

        barrier_tx.send(Barrier::new(1)).unwrap();
        let (batches, epoch) = until_barrier(&mut out_rx).await;
        assert_eq!(epoch, 1);
        assert_output(
            &batches,
            &[
                "+----+----+------+",
                "| op | id | name |",
                "+----+----+------+",
                "| +  | 1  | a    |",
                "| +  | 2  | b    |",
                "+----+----+------+",
            ],
        );

        t.update(&rows(&t, vec![1], vec!["a"]), &rows(&t, vec![1], vec!["z"])).unwrap();
        t.delete(&rows(&t, vec![2], vec!["b"])).unwrap();
        barrier_tx.send(Barrier::new(2)).unwrap();
        let (batches, epoch) = until_barrier(&mut out_rx).await;
        assert_eq!(epoch, 2);
        let all = StreamBatch::concat(&batches).unwrap().into_iter().collect::<Vec<_>>();
        assert_output(
            &all,
            &[
                "+----+----+------+",
                "| op | id | name |",
                "+----+----+------+",
                "| -  | 1  | a    |",
                "| +  | 1  | z    |",
                "| -  | 2  | b    |",
                "+----+----+------+",
            ],
        );

        drop(barrier_tx);
        source.await.unwrap().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_consumer_that_does_not_read_holds_the_snapshot_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t = table(&store);
        let ids: Vec<i64> = (0..50_000).collect();
        let names: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
        t.insert(&rows(&t, ids, names.iter().map(String::as_str).collect())).unwrap();

        let (out_tx, mut out_rx) = mpsc::channel(2);
        let (barrier_tx, barrier_rx) = mpsc::unbounded_channel();
        barrier_tx.send(Barrier::new(1)).unwrap();
        let source = tokio::spawn(TableSource::new(t.clone(), None, out_tx, barrier_rx).run());
        // Bounded channel: two batches wait, and the scan stays parked on the third.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while out_rx.len() < 2 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(out_rx.len(), 2);
        assert!(!source.is_finished());
        let (batches, epoch) = until_barrier(&mut out_rx).await;
        assert_eq!(epoch, 1);
        assert_eq!(batches.iter().map(StreamBatch::num_rows).sum::<usize>(), 50_000);
        drop(barrier_tx);
        source.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn resumes_from_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t = table(&store);
        t.insert(&rows(&t, vec![1], vec!["a"])).unwrap();
        let offset = t.next_seq();
        t.insert(&rows(&t, vec![2], vec!["b"])).unwrap();

        let (out_tx, mut out_rx) = mpsc::channel(4);
        let (barrier_tx, barrier_rx) = mpsc::unbounded_channel();
        let source = tokio::spawn(TableSource::new(t.clone(), Some(offset), out_tx, barrier_rx).run());
        barrier_tx.send(Barrier::new(1)).unwrap();
        let (batches, _) = until_barrier(&mut out_rx).await;
        assert_output(
            &batches,
            &[
                "+----+----+------+",
                "| op | id | name |",
                "+----+----+------+",
                "| +  | 2  | b    |",
                "+----+----+------+",
            ],
        );
        drop(barrier_tx);
        source.await.unwrap().unwrap();
    }
}
