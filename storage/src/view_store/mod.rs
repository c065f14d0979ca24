//! The view store: materialized views' contents, from the changes a materialize task applies
//! to the rows a query reads.
//!
//! A view's contents are split into partitions, one per materialize subtask, and follow one
//! path through this module:
//!
//! 1. **Encoding** ([`ViewPartition`], `encoding.rs`): a partition is a persistent ordered map
//!    from a row, in Arrow's row format, to its multiplicity. A view needs no key: an insert
//!    adds one, a delete takes one away, and a row disappears at zero. Row bytes sort like the
//!    rows' values, so scans come back ordered by the view's columns, and rows whose first
//!    column has a given value are one range of the map ([`rows_with_prefix`]).
//! 2. **Staging and commit** ([`ViewStateStore`], in memory: [`InMemoryViewStates`],
//!    `in_memory.rs`): at the end of every epoch a materialize task stages a copy of its
//!    partition (O(1) thanks to structural sharing; the task keeps mutating its own version).
//!    When the JobManager has seen every task pass epoch `e`, it commits, which publishes one
//!    immutable [`ViewSnapshot`] with every view at `e`. A query takes the snapshot once, so
//!    all views it reads agree, and readers never block writers.
//! 3. **Decoding** ([`ViewBatches`], `decoding.rs`): a version's rows back into Arrow batches,
//!    each row repeated by its multiplicity, for scans and for a new reader of a view.
//! 4. **Checkpoints** ([`write_rows`], [`read_rows`], `checkpoint.rs`): a partition's rows in
//!    a checkpoint snapshot, so a materialize task restores exactly what it had at a barrier.
//!
//! The operator that applies a changelog (`Materialize`) and the DataFusion table provider
//! that scans a version (`ViewTable`) live in the executor and only use this module.

mod checkpoint;
mod decoding;
mod encoding;
mod in_memory;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;

use weir_plan::catalog::TableId;

pub use checkpoint::{read_rows, write_rows};
pub use decoding::{ViewBatches, ViewDecodeError, VIEW_SCAN_BATCH_ROWS};
pub use encoding::{leading_prefix, rows_with_prefix, ViewPartition};
pub use in_memory::InMemoryViewStates;

/// One partition of a view: encoded row → how many times it is present. Rows are shared
/// (`Arc`), so the node copies a persistent map makes after a snapshot, and scans of a
/// shared map, copy pointers rather than row bytes.
pub type ViewRows = imbl::OrdMap<Arc<[u8]>, i64>;

/// A view's contents at one epoch.
#[derive(Clone)]
pub struct ViewVersion {
    pub schema: SchemaRef,
    pub partitions: Vec<ViewRows>,
}

impl ViewVersion {
    /// Number of rows (counting duplicates).
    pub fn row_count(&self) -> u64 {
        self.partitions.iter().flat_map(|p| p.values()).map(|&n| n.max(0) as u64).sum()
    }
}

/// Every view's committed contents at one epoch.
#[derive(Clone, Default)]
pub struct ViewSnapshot {
    pub epoch: u64,
    pub views: HashMap<TableId, Arc<ViewVersion>>,
}

/// Where materialized views' contents live between epochs: materialize tasks stage a
/// version of their partition at each barrier, the JobManager commits epochs, and queries
/// read one consistent snapshot of every view. A durable implementation (RocksDB, with
/// checkpoints) slots in behind this trait.
pub trait ViewStateStore: Send + Sync {
    /// Starts tracking a view with `partitions` materialize subtasks, of `deployment` of its
    /// job. It becomes visible with the first commit after every partition has staged a
    /// version.
    fn register(&self, view: TableId, deployment: u64, schema: SchemaRef, partitions: usize);
    /// Records partition `partition` of `view` as of the end of `epoch`. A version of a
    /// deployment other than the registered one (a cancelled materialize task, winding down
    /// after its job was deployed again) is ignored.
    fn stage(&self, view: TableId, deployment: u64, partition: usize, epoch: u64, rows: ViewRows);
    /// Publishes every view as of `epoch`: each partition's latest version staged at or
    /// before `epoch`. Returns the new snapshot.
    fn commit(&self, epoch: u64) -> Arc<ViewSnapshot>;
    /// Keeps a view at its last published contents (its job failed).
    fn freeze(&self, view: TableId);
    /// Forgets a dropped view; the next commit no longer contains it.
    fn remove(&self, view: TableId);
    /// The latest committed snapshot.
    fn snapshot(&self) -> Arc<ViewSnapshot>;
}
