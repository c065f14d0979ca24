//! Operators: the small, synchronous units of a task's chain.
//!
//! An operator sees one batch at a time and pushes whatever it produces to `out`; the task
//! run loop (see `task.rs`) does everything else — reading inputs, aligning barriers,
//! merging watermarks, routing outputs — so an operator is plain data transformation plus
//! the state it keeps between batches.

pub mod aggregate_state;
pub mod connector_source;
pub mod exchange;
pub mod filter;
pub mod hash_aggregate;
pub mod materialize;
pub mod projection;
pub mod session_window;
pub mod sink;
pub mod table_source;
pub mod union;
pub mod watermark;
pub mod window_assign;

#[cfg(test)]
pub(crate) mod test_util;

use crate::error::ExecResult;
use crate::message::{Barrier, StreamBatch};

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
}
