//! Weir's durable storage layer.
//!
//! Everything that must survive a crash lives here, in one RocksDB instance under the data
//! directory:
//!
//! * the **catalog**: definitions of tables, views, sources and sinks (their types live in
//!   `weir_plan::catalog`), with a format version, see [`Store`] and [`CATALOG_FORMAT`];
//! * **table rows**, keyed by primary key (or a hidden row id), see [`TableStore`];
//! * each table's **changelog**: every insert and delete in commit order, keyed by a per-table
//!   sequence number, so a streaming job can read a table as "snapshot at offset N, then every
//!   change after N" and resume from any offset it has recorded.
//!
//! Materialized views' contents are held in memory as versioned, epoch-committed state
//! ([`ViewStateStore`], in memory for now: [`InMemoryViewStates`]) and restored from checkpoints
//! or rebuilt from the tables when the server restarts. Everything about a view's rows
//! (encoding, staging, commit, decoding, checkpoint format) is in [`view_store`].
//!
//! Operators' keyed state lives in a [`keyed_state`] backend (memory or RocksDB), reached
//! through a [`state_table::StateTable`] per operator.
//!
//! Checkpoints (state snapshots and their manifests) go to a [`CheckpointStore`], a directory of
//! objects that may later live in an object store instead of on the local disk.
//!
//! Writes are applied as one RocksDB `WriteBatch` with a synced WAL, so a statement is either
//! entirely durable or not applied at all, and it is durable before the client is told so.
//! An insert too large for one batch in memory is written in chunks that readers do not see
//! and a crash discards, and committed by one small synced write ([`ChunkedInsert`]).
//!
//! This crate must not own operators, SQL or the JobGraph's meaning: it stores what the
//! layers above hand it.

mod catalog_format;
mod checkpoint_store;
mod chunked_insert;
mod codec;
mod declared_length;
mod declared_precision;
mod error;
pub mod keyed_state;
mod owned_snapshot;
pub mod state_table;
mod store;
mod table;
pub mod view_store;

pub use catalog_format::CATALOG_FORMAT;
pub use checkpoint_store::{CheckpointStore, S3Options};
pub use chunked_insert::{ChunkedInsert, CHUNK_BYTES};
pub use error::{StorageError, StorageResult};
pub use store::{CatalogChange, Store};
pub use table::{ChangeOp, ChangelogEntry, RowConversion, TableScan, TableStore, SCAN_BATCH_ROWS};
pub use view_store::{InMemoryViewStates, ViewRows, ViewSnapshot, ViewStateStore, ViewVersion};
