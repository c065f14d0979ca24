//! Writes are atomic under cancel and `statement_timeout`.
//!
//! A statement that changes a table (INSERT, UPDATE, DELETE, COPY) has two phases: a
//! cancellable one (planning, reading the rows it changes, checks) and a write. Once the
//! write starts it runs to its end: a cancel request or a timeout that arrives during it is
//! ignored, the statement completes and the client is told so. One that arrives before it
//! stops the statement with `57014` and nothing is written. Never both: the decision is
//! taken under one lock per session ([`CommitGate`]), by [`CommitGate::begin`] on the writer's
//! side and [`CommitGate::try_cancel`] on the canceller's.
//!
//! DDL follows the same rule (see `handlers::atomic_ddl`): a statement that changes the
//! catalog in several steps (DROP ... CASCADE, ALTER TABLE) enters the write phase before its
//! first change; `CREATE MATERIALIZED VIEW` and `CREATE SINK` stay cancellable through their
//! backfill and undo themselves when stopped, and the `57014` reply waits for the undo
//! ([`CommitGate::defer_undo`], [`CommitGate::undone`]).
//!
//! The write itself runs on a blocking thread that owns the table's write lock
//! ([`write_with_lock`]): even if the statement's future is dropped (a connection closed
//! mid-write), the lock is held until the write has finished, so no second writer can
//! interleave with it.

use std::sync::Mutex;

use tokio::sync::OwnedMutexGuard;
use weir_planner::{sqlstate, SqlError, SqlResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Cancellable: a cancel or timeout stops the statement.
    Running,
    /// A cancel or timeout was decided; the statement must not start writing.
    Cancelled,
    /// Writing: runs to its end whatever arrives.
    Writing,
}

/// One per session: whether its current statement may still be cancelled.
#[derive(Debug)]
pub struct CommitGate {
    phase: Mutex<Phase>,
    /// Woken when a cancel or timeout stops the statement.
    cancelled: tokio::sync::Notify,
    /// Undo work of a stopped statement that its `57014` reply waits for.
    undo: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Woken when a write phase ends (a session asked to terminate waits for it).
    write_ended: tokio::sync::Notify,
}

impl Default for CommitGate {
    fn default() -> Self {
        Self {
            phase: Mutex::new(Phase::Running),
            cancelled: tokio::sync::Notify::new(),
            undo: Mutex::new(Vec::new()),
            write_ended: tokio::sync::Notify::new(),
        }
    }
}

/// [`Writing`] that owns its gate, for statements that hold it across awaits.
pub struct OwnedWriting {
    gate: std::sync::Arc<CommitGate>,
}

impl Drop for OwnedWriting {
    fn drop(&mut self) {
        self.gate.end_write();
    }
}

/// While alive, the session's statement is writing; dropping it ends the write phase.
pub struct Writing<'a> {
    gate: &'a CommitGate,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.gate.end_write();
    }
}

impl CommitGate {
    fn set(&self, phase: Phase) {
        match self.phase.lock() {
            Ok(mut p) => *p = phase,
            Err(poisoned) => *poisoned.into_inner() = phase,
        }
    }

    fn update<T>(&self, f: impl FnOnce(&mut Phase) -> T) -> T {
        match self.phase.lock() {
            Ok(mut p) => f(&mut p),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    fn end_write(&self) {
        self.set(Phase::Running);
        self.write_ended.notify_waiters();
    }

    /// Returns once the statement is not writing (at once if it is not).
    pub async fn wait_not_writing(&self) {
        loop {
            let ended = self.write_ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if self.update(|phase| *phase != Phase::Writing) {
                return;
            }
            ended.await;
        }
    }

    /// A new statement starts: cancellable, with no cancel pending.
    pub fn start_statement(&self) {
        self.set(Phase::Running);
    }

    /// The statement is about to write: from now on it is not cancelled. `57014` if a
    /// cancel or timeout came first.
    pub fn begin(&self) -> SqlResult<Writing<'_>> {
        self.enter_write_phase()?;
        Ok(Writing { gate: self })
    }

    /// [`CommitGate::begin`] for a statement that holds the write phase across awaits.
    pub fn begin_owned(self: &std::sync::Arc<Self>) -> SqlResult<OwnedWriting> {
        self.enter_write_phase()?;
        Ok(OwnedWriting { gate: self.clone() })
    }

    fn enter_write_phase(&self) -> SqlResult<()> {
        self.update(|phase| match *phase {
            Phase::Cancelled => Err(cancelled()),
            _ => {
                *phase = Phase::Writing;
                Ok(())
            }
        })
    }

    /// Registers undo work of the running statement (started by a guard dropped with the
    /// statement); [`CommitGate::undone`] waits for it.
    pub fn defer_undo(&self, undo: tokio::task::JoinHandle<()>) {
        match self.undo.lock() {
            Ok(mut u) => u.push(undo),
            Err(poisoned) => poisoned.into_inner().push(undo),
        }
    }

    /// Returns once the undo work of a stopped statement has finished.
    pub async fn undone(&self) {
        loop {
            let next = match self.undo.lock() {
                Ok(mut u) => u.pop(),
                Err(poisoned) => poisoned.into_inner().pop(),
            };
            let Some(undo) = next else { return };
            if let Err(e) = undo.await {
                tracing::warn!(error = %e, "undo of a stopped statement failed");
            }
        }
    }

    /// Whether a cancel or timeout has stopped the statement (a `COPY FROM STDIN` looks at
    /// each message of data).
    pub fn is_cancelled(&self) -> bool {
        self.update(|phase| *phase == Phase::Cancelled)
    }

    /// Called for a cancel request or a timeout: `true` if the statement may be stopped
    /// (it will not start writing), `false` if it is writing and must be left to finish.
    pub fn try_cancel(&self) -> bool {
        let cancelled = self.update(|phase| match *phase {
            Phase::Writing => false,
            _ => {
                *phase = Phase::Cancelled;
                true
            }
        });
        if cancelled {
            self.cancelled.notify_waiters();
        }
        cancelled
    }

    /// Returns once a cancel or timeout has stopped the statement (a `COPY FROM STDIN`
    /// waiting for its client's data rolls back then).
    pub async fn wait_cancelled(&self) {
        loop {
            let notified = self.cancelled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

fn cancelled() -> SqlError {
    SqlError::new(sqlstate::QUERY_CANCELED, "canceling statement due to user request")
}

/// Runs `write` on a blocking thread that holds `lock` (the table's write lock) until the
/// write has finished, after [`CommitGate::begin`]: nothing is written if the statement was
/// cancelled first, and once writing, the statement finishes.
pub async fn write_with_lock<T: Send + 'static>(
    gate: &CommitGate,
    lock: OwnedMutexGuard<()>,
    write: impl FnOnce() -> SqlResult<T> + Send + 'static,
) -> SqlResult<T> {
    let _writing = gate.begin()?;
    tokio::task::spawn_blocking(move || {
        let _lock = lock;
        write()
    })
    .await
    .map_err(|e| SqlError::internal(format!("write task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_before_the_write_stops_it_and_one_during_it_is_ignored() {
        let gate = CommitGate::default();
        assert!(gate.try_cancel());
        assert_eq!(gate.begin().err().map(|e| e.code), Some("57014"));
        gate.start_statement();
        let writing = gate.begin().expect("not cancelled");
        assert!(!gate.try_cancel(), "a write in progress is not cancelled");
        drop(writing);
        assert!(gate.try_cancel());
    }

    #[tokio::test]
    async fn the_lock_is_held_until_the_write_ends_even_if_the_statement_is_dropped() {
        let lock = std::sync::Arc::new(tokio::sync::Mutex::new(()));
        let gate = std::sync::Arc::new(CommitGate::default());
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (finish_tx, finish_rx) = std::sync::mpsc::channel::<()>();
        let guard = lock.clone().lock_owned().await;
        let statement = {
            let gate = gate.clone();
            tokio::spawn(async move {
                write_with_lock(&gate, guard, move || {
                    let _ = started_tx.send(());
                    let _ = finish_rx.recv();
                    Ok(())
                })
                .await
            })
        };
        tokio::task::spawn_blocking(move || started_rx.recv()).await.expect("join").expect("started");
        statement.abort();
        let _ = statement.await;
        assert!(lock.try_lock().is_err(), "the write still holds the lock");
        finish_tx.send(()).expect("finish");
        let _free =
            tokio::time::timeout(std::time::Duration::from_secs(5), lock.lock()).await.expect("released");
    }
}
