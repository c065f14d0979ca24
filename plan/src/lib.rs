//! What Weir's layers hand each other, and nothing that runs.
//!
//! * [`job_graph`]: the typed, serializable JobGraph the planner produces and the runtime
//!   deploys;
//! * [`catalog`]: the definitions of tables, views, sources and sinks as the catalog stores
//!   them (a view's definition holds its JobGraph);
//! * [`time_precision`]: what a declared `timestamp(p)` precision does to a value;
//! * [`ids`]: the names the runtime gives its parts (jobs, tasks, epochs, channels) and the
//!   key groups keyed state and exchanges agree on.
//!
//! This crate sits under the planner, the executor and storage so that each can name these
//! types without depending on the others: the planner builds without RocksDB or tokio, and
//! storage keeps a view's JobGraph as a typed value. It must not own parsing, operators,
//! storage engines or I/O.

pub mod catalog;
mod error;
pub mod ids;
pub mod job_graph;
pub mod time_precision;

pub use catalog::{
    ColumnDef, ColumnType, SinkDef, SourceDef, TableDef, TableId, ViewDef, Watermark,
    DEFAULT_NUMERIC_PRECISION, DEFAULT_NUMERIC_SCALE,
};
pub use error::{PlanError, PlanResult};
pub use ids::{ChannelId, Epoch, JobId, TaskId, VertexId, KEY_GROUPS};
pub use job_graph::{JobGraph, JobTarget, TargetKind};
