//! Weir's execution layer.
//!
//! * Batch SQL: stored tables are DataFusion [`StoredTable`] providers (a `SELECT` streams
//!   rows out of RocksDB; `INSERT` writes through [`StoredTableSink`] atomically), and
//!   materialized views are [`ViewTable`] providers over their committed contents.
//! * Streaming: the [`JobGraph`](weir_plan::JobGraph) runtime. The [`JobManager`] deploys
//!   graphs onto [`TaskManager`]s, injects barriers and commits epochs; tasks run chains of
//!   [`operators`] connected by bounded channels carrying [`Message`]s. Tasks get their
//!   channels from a [`data_plane::DataPlane`], start their [`sources`] in one place, and
//!   report to the JobManager through a [`task_events::JobManagerEndpoint`], so a
//!   TaskManager in another process is an implementation of those traits.
//!
//! It runs what `weir-plan` describes and must not own SQL text, parsing or the wire
//! protocol; durable bytes (catalog, tables, keyed state, checkpoints) belong to storage.

pub mod checkpoint_protocol;
pub mod clock;
pub mod connectors;
pub mod data_plane;
pub mod error;
pub mod exchange;
pub mod expr;
pub mod functions;
pub mod job_manager;
pub mod lease;
pub mod message;
pub mod operators;
pub mod sources;
mod state_codec;
mod stored_table;
mod table_sink;
pub mod task;
pub mod task_events;
pub mod task_manager;
pub mod task_snapshot;
mod view_table;

pub use error::{ExecError, ExecResult};
pub use job_manager::{ClusterStatus, JobManager, JobManagerConfig, JobStatus, SlotPolicy, TaskStatus};
pub use message::Message;
pub use stored_table::StoredTable;
pub use table_sink::StoredTableSink;
pub use task_manager::{LocalTaskManager, TaskManager};
pub use view_table::ViewTable;

/// Maps a storage error into a DataFusion error, keeping the original as the source so the
/// server can recover its SQLSTATE.
pub fn storage_error(e: weir_storage::StorageError) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::External(Box::new(e))
}
