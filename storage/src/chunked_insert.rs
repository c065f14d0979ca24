//! Inserting more rows than fit in memory, still all or nothing.
//!
//! A small insert is one synced `WriteBatch` ([`TableStore::insert`]). `COPY ... FROM STDIN`
//! of gigabytes and `INSERT ... SELECT` over a large query cannot be: RocksDB builds a
//! `WriteBatch` in memory, so one batch for the whole statement holds every row (encoded
//! twice, rows and changelog) at once. A [`ChunkedInsert`] writes the statement's rows in
//! bounded chunks as they arrive and keeps the statement atomic:
//!
//! * **Rows go where they will stay.** Each chunk is checked (NOT NULL, `varchar(n)`, primary
//!   key against the rows stored *now*, which include the earlier chunks, so uniqueness holds
//!   across chunks) and written to `table_rows` and `table_log` under the sequence numbers
//!   after the last committed one, in one unsynced `WriteBatch`. Committing moves nothing:
//!   a statement of any size commits in one small synced write.
//! * **Readers do not see them until the commit.** Just before the first chunk, the table
//!   pins a RocksDB snapshot (`TableStore::pinned`), and every reader (scans, key lookups,
//!   the changelog that running materialized views follow) reads at it; `next_seq` and the
//!   commit watch do not move. At the commit the pin is dropped and the commit published:
//!   every row becomes visible at once, and views read the new changelog entries as one
//!   more committed change. (Staging the rows in a separate column family and copying them
//!   at the commit would need that copy in one batch to be atomic, which is the unbounded
//!   memory again, or a copy in steps that readers could see half done.)
//! * **A statement that does not commit leaves nothing.** A durable marker in the catalog
//!   column family (`staging/` · table id → first sequence number) is written, synced,
//!   before the first chunk; the commit is the synced write that deletes it. A bad row, a
//!   cancel, a timeout or a dropped connection drops the [`ChunkedInsert`] unfinished, and
//!   its `Drop` deletes the chunks' rows (by the keys of the rows in its changelog entries,
//!   which are all new keys: the key check refused existing ones) and changelog entries,
//!   then the marker. After a crash, opening the table finds the marker and does the same
//!   ([`recover`]) before anything reads it. The rollback is idempotent, so a crash during
//!   it is recovered the same way.
//!
//! The caller holds the table's write lock for the whole statement, from the first chunk to
//! the commit or the end of the rollback: no other writer takes sequence numbers or keys
//! meanwhile, and `ALTER TABLE` waits. A statement whose rows fit in one chunk never stages:
//! it is written by [`TableStore::insert`], as before.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch, WriteOptions};
use tracing::{debug, info, warn};

use crate::error::{StorageError, StorageResult};
use crate::owned_snapshot::OwnedSnapshot;
use crate::store::CF_CATALOG;
use crate::table::{TableStore, SCAN_BATCH_ROWS};

/// Arrow memory buffered before a chunk is written: bounds what one statement holds.
pub const CHUNK_BYTES: usize = 16 << 20;

/// `staging/` · table id: the first sequence number of a chunked insert not yet committed.
const STAGING_KEY_PREFIX: &[u8] = b"staging/";

pub(crate) fn staging_key(table_id: u64) -> Vec<u8> {
    let mut key = STAGING_KEY_PREFIX.to_vec();
    key.extend_from_slice(&table_id.to_be_bytes());
    key
}

/// One statement's insert into one table, written in chunks and committed at once. See the
/// module documentation; dropping it unfinished rolls back what it wrote (blocking I/O).
pub struct ChunkedInsert {
    table: Arc<TableStore>,
    chunk_bytes: usize,
    pending: Vec<RecordBatch>,
    pending_bytes: usize,
    rows: usize,
    staged: Option<Staged>,
}

/// What a chunked insert has written so far.
struct Staged {
    first_seq: u64,
    next_seq: u64,
    chunks: usize,
    started: Instant,
}

impl TableStore {
    /// Starts an insert that may be larger than memory. Call it holding
    /// [`TableStore::write_lock`] and keep it until [`ChunkedInsert::finish`] returns or the
    /// insert is dropped.
    pub fn chunked_insert(self: &Arc<Self>) -> ChunkedInsert {
        ChunkedInsert {
            table: self.clone(),
            chunk_bytes: CHUNK_BYTES,
            pending: Vec::new(),
            pending_bytes: 0,
            rows: 0,
            staged: None,
        }
    }
}

impl ChunkedInsert {
    /// Writes a chunk whenever this much Arrow memory is buffered (tests use small chunks).
    pub fn with_chunk_bytes(mut self, bytes: usize) -> Self {
        self.chunk_bytes = bytes.max(1);
        self
    }

    /// Rows taken so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Whether [`ChunkedInsert::push`] of `batch` writes a chunk (blocking I/O) rather than
    /// only buffering it.
    pub fn push_writes(&self, batch: &RecordBatch) -> bool {
        self.pending_bytes + batch.get_array_memory_size() >= self.chunk_bytes
    }

    /// Takes `batch` (the table's columns, in order); writes a chunk when enough is buffered.
    /// An error (a bad row, a duplicate key) leaves the insert to be dropped.
    pub fn push(&mut self, batch: RecordBatch) -> StorageResult<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let writes = self.push_writes(&batch);
        self.rows += batch.num_rows();
        self.pending_bytes += batch.get_array_memory_size();
        self.pending.push(batch);
        if writes {
            self.write_chunk()?;
        }
        Ok(())
    }

    /// Commits every row taken: they become visible to readers at once, durably. Returns the
    /// number of rows.
    pub fn finish(mut self) -> StorageResult<usize> {
        if self.staged.is_none() {
            // Everything fits in one write: the ordinary atomic insert.
            let batch = self.take_pending()?;
            if batch.num_rows() > 0 {
                self.table.insert(&batch)?;
            }
            return Ok(self.rows);
        }
        self.write_chunk()?;
        let Some(staged) = &self.staged else { return Ok(self.rows) };
        let table = &self.table;
        // The chunks were written unsynced: make them durable before the commit that
        // publishes them.
        table.db.flush_wal(true)?;
        let mut wb = WriteBatch::default();
        wb.delete_cf(table.cf(CF_CATALOG)?, staging_key(table.id));
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        table.db.write_opt(wb, &opts)?;
        let next_seq = staged.next_seq;
        info!(
            table = %table.def().name,
            rows = self.rows,
            chunks = staged.chunks,
            seconds = staged.started.elapsed().as_secs_f64(),
            "chunked insert committed"
        );
        self.staged = None;
        unpin(table);
        table.next_seq.store(next_seq, Ordering::SeqCst);
        table.committed_seq.send_replace(next_seq);
        Ok(self.rows)
    }

    fn take_pending(&mut self) -> StorageResult<RecordBatch> {
        let batch = arrow::compute::concat_batches(&self.table.schema(), &self.pending)?;
        self.pending.clear();
        self.pending_bytes = 0;
        Ok(batch)
    }

    /// Writes the buffered rows as one chunk, staging first if this is the first.
    fn write_chunk(&mut self) -> StorageResult<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = self.take_pending()?;
        if self.staged.is_none() {
            self.staged = Some(begin(&self.table)?);
        }
        let Some(staged) = self.staged.as_mut() else { return Ok(()) };
        let table = &self.table;
        let (wb, next_seq) = table.prepare_insert(&table.layout(), &batch, staged.next_seq)?;
        // Unsynced: only the commit needs to be durable, and it syncs everything before it.
        table.db.write(wb)?;
        staged.next_seq = next_seq;
        staged.chunks += 1;
        debug!(table = %table.def().name, chunk = staged.chunks, rows = self.rows, "chunk written");
        Ok(())
    }
}

impl Drop for ChunkedInsert {
    fn drop(&mut self) {
        let Some(staged) = self.staged.take() else { return };
        let name = self.table.def().name.clone();
        match rollback(&self.table, staged.first_seq) {
            Ok(()) => {
                info!(table = %name, rows = self.rows, chunks = staged.chunks, "chunked insert rolled back")
            }
            // The marker stays: the next start of the server finishes the rollback.
            Err(e) => warn!(table = %name, error = %e, "chunked insert could not be rolled back"),
        }
    }
}

/// Pins the table's read point and writes the durable marker, before the first chunk.
fn begin(table: &TableStore) -> StorageResult<Staged> {
    let first_seq = table.next_seq.load(Ordering::SeqCst);
    *table.pinned.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
        Some(Arc::new(OwnedSnapshot::take(&table.db)));
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    let written =
        table.db.put_cf_opt(table.cf(CF_CATALOG)?, staging_key(table.id), first_seq.to_be_bytes(), &opts);
    if let Err(e) = written {
        unpin(table);
        return Err(e.into());
    }
    info!(table = %table.def().name, first_seq, "chunked insert staging");
    Ok(Staged { first_seq, next_seq: first_seq, chunks: 0, started: Instant::now() })
}

#[cfg(test)]
impl ChunkedInsert {
    /// What a crash leaves: the chunks and the marker, and no rollback.
    fn abandon(mut self) {
        self.staged = None;
        unpin(&self.table);
    }
}

fn unpin(table: &TableStore) {
    *table.pinned.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
}

/// Finishes the rollback of a chunked insert the server did not live to commit or roll back.
pub(crate) fn recover(table: &TableStore) -> StorageResult<()> {
    let Some(value) = table.db.get_cf(table.cf(CF_CATALOG)?, staging_key(table.id))? else {
        return Ok(());
    };
    let first_seq = u64::from_be_bytes(
        value
            .as_slice()
            .try_into()
            .map_err(|_| StorageError::CorruptCatalog("a staging marker of the wrong length".into()))?,
    );
    rollback(table, first_seq)?;
    info!(table = %table.def().name, first_seq, "uncommitted chunked insert discarded at startup");
    Ok(())
}

/// Deletes the rows and changelog entries from `first_seq` on, then the marker (synced), and
/// unpins the read point.
fn rollback(table: &TableStore, first_seq: u64) -> StorageResult<()> {
    let layout = table.layout();
    let (rows_cf, log_cf) = table.cfs()?;
    let table_end = (table.id + 1).to_be_bytes();
    if layout.def.has_primary_key() {
        // The changelog entries hold the full rows: their keys are the rows to delete.
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(table_end.to_vec());
        let start = table.log_key(first_seq);
        let iter = table.db.iterator_cf_opt(log_cf, opts, IteratorMode::From(&start, Direction::Forward));
        let mut values: Vec<Box<[u8]>> = Vec::with_capacity(SCAN_BATCH_ROWS);
        let delete = |values: &mut Vec<Box<[u8]>>| -> StorageResult<()> {
            if values.is_empty() {
                return Ok(());
            }
            let rows = layout.codec.decode_values(values.iter().map(|v| v.get(1..).unwrap_or_default()))?;
            let mut wb = WriteBatch::default();
            if let Some(keys) = layout.codec.encode_keys(&rows)? {
                for key in keys.iter() {
                    wb.delete_cf(rows_cf, table.row_key(key.as_ref()));
                }
            }
            table.db.write(wb)?;
            values.clear();
            Ok(())
        };
        for item in iter {
            let (_, value) = item?;
            values.push(value);
            if values.len() == SCAN_BATCH_ROWS {
                delete(&mut values)?;
            }
        }
        delete(&mut values)?;
    }
    let mut wb = WriteBatch::default();
    if !layout.def.has_primary_key() {
        // Hidden row ids are the sequence numbers of the inserts: those from `first_seq` on
        // are exactly this statement's rows.
        wb.delete_range_cf(rows_cf, table.row_key(&first_seq.to_be_bytes()), table_end.to_vec());
    }
    wb.delete_range_cf(log_cf, table.log_key(first_seq).to_vec(), table_end.to_vec());
    wb.delete_cf(table.cf(CF_CATALOG)?, staging_key(table.id));
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    table.db.write_opt(wb, &opts)?;
    unpin(table);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use weir_plan::catalog::{ColumnDef, ColumnType, TableDef};

    use crate::{StorageError, Store, TableStore};

    fn def(name: &str, primary_key: Vec<usize>) -> TableDef {
        TableDef {
            id: 0,
            schema_name: "public".into(),
            name: name.into(),
            columns: vec![
                ColumnDef { name: "id".into(), column_type: ColumnType::Int8, not_null: true, default: None },
                ColumnDef { name: "v".into(), column_type: ColumnType::Text, not_null: false, default: None },
            ],
            primary_key,
            watermark: None,
            primary_key_name: None,
        }
    }

    fn rows(table: &TableStore, ids: std::ops::Range<i64>) -> RecordBatch {
        let names: Vec<String> = ids.clone().map(|i| format!("row {i}")).collect();
        RecordBatch::try_new(
            table.schema(),
            vec![Arc::new(Int64Array::from(ids.collect::<Vec<_>>())), Arc::new(StringArray::from(names))],
        )
        .unwrap()
    }

    /// Row count seen by a scan, and changelog entries from 1.
    fn visible(table: &TableStore) -> (usize, usize) {
        let mut scanned = 0;
        table
            .scan(|b| {
                scanned += b.num_rows();
                true
            })
            .unwrap();
        let mut logged = 0;
        table
            .read_changelog(1, 1000, |e| {
                logged += e.ops.len();
                true
            })
            .unwrap();
        (scanned, logged)
    }

    #[test]
    fn chunks_are_invisible_until_the_commit_and_then_all_visible() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t = store.create_table(def("t", vec![0])).unwrap();
        t.insert(&rows(&t, 0..10)).unwrap();
        let commits = t.watch_commits();
        let mut insert = t.chunked_insert().with_chunk_bytes(1);
        for start in (10..1010).step_by(100) {
            insert.push(rows(&t, start..start + 100)).unwrap();
        }
        assert!(insert.staged.as_ref().is_some_and(|s| s.chunks == 10), "every push wrote a chunk");
        assert_eq!(visible(&t), (10, 10), "readers see none of an uncommitted insert");
        assert_eq!(t.next_seq(), 11);
        assert!(!commits.has_changed().unwrap());
        assert_eq!(insert.finish().unwrap(), 1000);
        assert_eq!(visible(&t), (1010, 1010));
        assert_eq!(t.next_seq(), 1011);
        assert!(commits.has_changed().unwrap());
        // Small inserts that fit one chunk are written in one batch, without staging.
        let mut small = t.chunked_insert();
        small.push(rows(&t, 2000..2005)).unwrap();
        assert!(small.staged.is_none());
        assert_eq!(small.finish().unwrap(), 5);
        assert_eq!(visible(&t), (1015, 1015));
    }

    #[test]
    fn a_duplicate_key_in_a_later_chunk_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t = store.create_table(def("t", vec![0])).unwrap();
        t.insert(&rows(&t, 0..3)).unwrap();
        let mut insert = t.chunked_insert().with_chunk_bytes(1);
        insert.push(rows(&t, 100..200)).unwrap();
        insert.push(rows(&t, 200..300)).unwrap();
        // Duplicates a row of the first chunk: uniqueness holds across chunks.
        let err = insert.push(rows(&t, 150..151)).unwrap_err();
        assert!(matches!(err, StorageError::UniqueViolation { .. }), "{err}");
        drop(insert);
        assert_eq!(visible(&t), (3, 3));
        assert_eq!(t.next_seq(), 4);
        // The keys are free again and the sequence numbers are reused without a gap.
        t.insert(&rows(&t, 100..101)).unwrap();
        assert_eq!(visible(&t), (4, 4));
        assert_eq!(t.next_seq(), 5);
    }

    #[test]
    fn an_uncommitted_insert_is_discarded_when_the_store_reopens() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let keyed = store.create_table(def("keyed", vec![0])).unwrap();
            let keyless = store.create_table(def("keyless", vec![])).unwrap();
            for t in [&keyed, &keyless] {
                t.insert(&rows(t, 0..5)).unwrap();
                let mut insert = t.chunked_insert().with_chunk_bytes(1);
                insert.push(rows(t, 5..500)).unwrap();
                insert.push(rows(t, 500..600)).unwrap();
                insert.abandon();
            }
        }
        let store = Store::open(dir.path()).unwrap();
        for name in ["keyed", "keyless"] {
            let t = store.table("public", name).unwrap();
            assert_eq!(visible(&t), (5, 5), "{name}");
            assert_eq!(t.next_seq(), 6, "{name}");
            t.insert(&rows(&t, 5..7)).unwrap();
            assert_eq!(visible(&t), (7, 7), "{name}");
        }
    }

    #[test]
    fn a_dropped_insert_of_a_keyless_table_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t = store.create_table(def("t", vec![])).unwrap();
        t.insert(&rows(&t, 0..2)).unwrap();
        let mut insert = t.chunked_insert().with_chunk_bytes(1);
        insert.push(rows(&t, 0..100)).unwrap();
        insert.push(rows(&t, 0..100)).unwrap();
        drop(insert);
        assert_eq!(visible(&t), (2, 2));
        assert_eq!(t.next_seq(), 3);
    }
}
