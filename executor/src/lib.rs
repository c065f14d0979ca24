//! Weir's execution layer.
//!
//! For batch SQL, stored tables are exposed to DataFusion as [`StoredTable`] providers: a
//! `SELECT` streams rows straight out of RocksDB (one consistent snapshot per scan, decoded
//! into Arrow batches), and `INSERT` writes through [`StoredTableSink`] in one atomic, durable
//! write. Streaming operators (the JobGraph runtime) will live here too.

mod stored_table;
mod table_sink;

pub use stored_table::StoredTable;
pub use table_sink::StoredTableSink;

/// Maps a storage error into a DataFusion error, keeping the original as the source so the
/// server can recover its SQLSTATE.
pub fn storage_error(e: weir_storage::StorageError) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::External(Box::new(e))
}
