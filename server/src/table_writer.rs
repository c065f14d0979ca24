//! One statement's inserted rows, written as they are produced, all or nothing.
//!
//! `COPY ... FROM STDIN` and `INSERT` hand their rows to a [`TableWriter`] batch by batch
//! instead of collecting them first, so a statement holds one chunk in memory, not its whole
//! input; storage keeps the chunks invisible until the commit and removes them if the
//! statement does not commit (`weir_storage::ChunkedInsert`).
//!
//! The writer holds the table's write lock from the statement's start to its commit or
//! rollback. Storage work runs on blocking threads, and the insert and the lock travel
//! together ([`Held`]) into each of them: if the statement's future is dropped while one runs
//! (a cancel request, `statement_timeout`, a closed connection), that thread rolls the insert
//! back and only then releases the lock, so no second writer can take the sequence numbers
//! or keys a rollback is still removing. The commit goes through the session's
//! [`CommitGate`]: a cancel or timeout before it stops the statement with `57014` and nothing
//! of it is kept; once it has begun it finishes and the client is told so.

use std::sync::Arc;

use arrow::array::RecordBatch;
use tokio::sync::OwnedMutexGuard;
use weir_planner::{SqlError, SqlResult};
use weir_storage::{ChunkedInsert, TableStore};

use crate::commit_gate::CommitGate;
use crate::wire::errors::from_storage;

pub struct TableWriter {
    held: Option<Held>,
}

/// The insert and the table's write lock. Fields drop in declaration order: the insert (and
/// with it an unfinished insert's rollback) before the lock is released.
struct Held {
    insert: ChunkedInsert,
    _lock: OwnedMutexGuard<()>,
}

fn finished() -> SqlError {
    SqlError::internal("the statement's writer was used after it finished")
}

impl TableWriter {
    /// Waits for `table`'s write lock and starts an insert under it.
    pub async fn lock(table: &Arc<TableStore>) -> Self {
        let lock = table.write_lock.clone().lock_owned().await;
        Self { held: Some(Held { insert: table.chunked_insert(), _lock: lock }) }
    }

    /// Takes a batch of rows in the table's schema; writes a chunk when enough is buffered.
    pub async fn push(&mut self, batch: RecordBatch) -> SqlResult<()> {
        let held = self.held.as_mut().ok_or_else(finished)?;
        if !held.insert.push_writes(&batch) {
            // Only buffered: no I/O, no need for a blocking thread.
            return held.insert.push(batch).map_err(from_storage);
        }
        self.run(move |insert| insert.push(batch).map_err(from_storage)).await
    }

    /// Runs `work` on a blocking thread with the insert (which may write chunks).
    pub async fn run<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&mut ChunkedInsert) -> SqlResult<T> + Send + 'static,
    ) -> SqlResult<T> {
        let mut held = self.held.take().ok_or_else(finished)?;
        let (held, result) = tokio::task::spawn_blocking(move || {
            let result = work(&mut held.insert);
            (held, result)
        })
        .await
        .map_err(|e| SqlError::internal(format!("write task failed: {e}")))?;
        self.held = Some(held);
        result
    }

    /// Rolls back whatever was written and releases the lock, waiting for both.
    pub async fn abort(&mut self) {
        if let Some(held) = self.held.take() {
            let _ = tokio::task::spawn_blocking(move || drop(held)).await;
        }
    }

    /// Commits every row taken, unless the statement was cancelled first (`57014`, and
    /// everything is rolled back). Returns the number of rows.
    pub async fn commit(&mut self, gate: &CommitGate) -> SqlResult<usize> {
        let writing = match gate.begin() {
            Ok(writing) => writing,
            Err(e) => {
                self.abort().await;
                return Err(e);
            }
        };
        let held = self.held.take().ok_or_else(finished)?;
        let committed = tokio::task::spawn_blocking(move || {
            let Held { insert, _lock } = held;
            // An insert that fails to commit rolls itself back before the lock goes.
            insert.finish().map_err(from_storage)
        })
        .await
        .map_err(|e| SqlError::internal(format!("write task failed: {e}")))?;
        drop(writing);
        committed
    }
}

impl Drop for TableWriter {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else { return };
        // A rollback may delete many rows: off the async threads when there is a runtime.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(move || drop(held));
            }
            Err(_) => drop(held),
        }
    }
}
