//! Operators: the small, synchronous units of a task's chain.
//!
//! An operator sees one batch at a time and pushes whatever it produces to `out`; the task
//! run loop (see `task.rs`) does everything else — reading inputs, aligning barriers,
//! merging watermarks, routing outputs — so an operator is plain data transformation plus
//! the state it keeps between batches.

pub mod filter;
pub mod float_keys;
pub mod hash_aggregate;
pub mod hash_join;
pub mod keyed_rows;
pub mod lookup_join;
pub mod materialize;
pub mod projection;
pub mod session_window;
pub mod sink;
pub mod top_n;
pub mod union;
pub mod window_assign;
pub mod window_close;

#[cfg(test)]
pub(crate) mod test_util;

use crate::error::{ExecError, ExecResult};
use crate::message::{Barrier, StreamBatch};

/// The bulk of an operator's state, captured cheaply at a checkpoint barrier (an O(1) copy
/// of a persistent map, or a storage snapshot) and written out later by the checkpoint
/// upload, off the data path.
pub type DeferredState = Box<dyn FnOnce(&mut dyn std::io::Write) -> ExecResult<()> + Send>;

/// What an operator hands over when a checkpoint barrier passes.
pub struct OperatorSnapshot {
    /// Small state read at the barrier (a watermark, counters), stored as is.
    pub meta: Vec<u8>,
    pub deferred: Option<DeferredState>,
    /// Only the changes since the operator's previous snapshot (see
    /// [`Operator::snapshot`]); restoring it needs that snapshot's chain first.
    pub delta: bool,
}

pub trait Operator: Send {
    /// Short name for logs, EXPLAIN and `weir_catalog.tasks`.
    fn name(&self) -> &'static str;

    /// Processes one batch from input `input` (0 for single-input operators).
    fn process_batch(
        &mut self,
        input: usize,
        batch: StreamBatch,
        out: &mut Vec<StreamBatch>,
    ) -> ExecResult<()>;

    /// Called once every input has delivered `barrier`, before it is forwarded: the end of
    /// the epoch. Stateful operators emit the epoch's net changes here.
    fn on_barrier(&mut self, _barrier: &Barrier, _out: &mut Vec<StreamBatch>) -> ExecResult<()> {
        Ok(())
    }

    /// Called when the task's input watermark advances; returns the watermark to forward
    /// (an operator may hold it back).
    fn on_watermark(&mut self, watermark: i64, _out: &mut Vec<StreamBatch>) -> ExecResult<Option<i64>> {
        Ok(Some(watermark))
    }

    /// Rows dropped so far because they arrived after the watermark closed their window.
    fn late_rows(&self) -> u64 {
        0
    }

    /// Entries of state the operator holds now (groups, buffered rows), for
    /// `weir_catalog.tasks`; 0 for stateless operators.
    fn state_rows(&self) -> u64 {
        0
    }

    /// Of [`Self::state_rows`], those held in memory; the rest are in the state backend
    /// (RocksDB), read back when needed. All of them unless the operator evicts.
    fn state_rows_in_memory(&self) -> u64 {
        self.state_rows()
    }

    /// Called right after `on_barrier` of a checkpoint barrier: the state as of the end of
    /// the epoch, or `None` for a stateless operator. Only the cheap part may run here; the
    /// rest goes into [`OperatorSnapshot::deferred`]. With `incremental`, the previous
    /// snapshot is part of a committed checkpoint, so the operator may return only what
    /// changed since then (a delta); otherwise it must return all of its state.
    fn snapshot(&mut self, _incremental: bool) -> ExecResult<Option<OperatorSnapshot>> {
        Ok(None)
    }

    /// Whether `snapshot(true)` may return deltas. A restore applies every piece of a chain
    /// to such an operator, and only the last piece to the others (their snapshots are
    /// always full).
    fn writes_deltas(&self) -> bool {
        false
    }

    /// Called before the first message, with what `snapshot` produced: `meta` and, if the
    /// snapshot had deferred state, a reader of exactly what it wrote. A checkpoint may be a
    /// chain of snapshots, restored oldest first: a full snapshot replaces the operator's
    /// state, a delta applies to it.
    fn restore(&mut self, _meta: &[u8], _deferred: Option<&mut dyn std::io::Read>) -> ExecResult<()> {
        Err(ExecError::Internal(format!("{} keeps no state to restore", self.name())))
    }

    /// Like [`Self::restore`], after a rescale: called with the snapshots of every old
    /// subtask `scope` names (each old subtask's chain of snapshots oldest first, one old
    /// subtask after another), of which the operator keeps its new subtask's share, the
    /// state of the key groups in `scope.key_groups`. Nothing is replaced: the old
    /// subtasks' key groups never overlap, so the shares add up.
    fn restore_rescaled(
        &mut self,
        _meta: &[u8],
        _deferred: Option<&mut dyn std::io::Read>,
        _scope: &RescaleScope,
    ) -> ExecResult<()> {
        Err(ExecError::Internal(format!("{} cannot be rescaled", self.name())))
    }
}

/// Which share of an old subtask's snapshot a subtask restores after a rescale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RescaleScope {
    /// The old subtask whose snapshot this is.
    pub old_subtask: usize,
    /// The restoring subtask, and how many there are now.
    pub subtask: usize,
    pub parallelism: usize,
    /// The key groups the restoring subtask owns.
    pub key_groups: std::ops::Range<u16>,
    /// Whether this is the last snapshot of the old subtask's chain (counters in `meta`
    /// are totals, so they are added once, from the last).
    pub last_piece: bool,
}

impl RescaleScope {
    pub fn new(old_subtask: usize, subtask: usize, parallelism: usize) -> Self {
        let key_groups = crate::exchange::key_group_range(subtask, parallelism);
        Self { old_subtask, subtask, parallelism, key_groups, last_piece: true }
    }

    /// Whether this subtask owns key group `group`.
    pub fn owns(&self, group: usize) -> bool {
        group < u16::MAX as usize && self.key_groups.contains(&(group as u16))
    }
}
