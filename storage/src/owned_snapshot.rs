//! A RocksDB snapshot that owns (a count on) its database, so it can be kept in a struct,
//! shared behind an `Arc` and outlive the call that took it.
//!
//! `rocksdb::Snapshot` borrows its database, and rocksdb 0.25 has no owning variant. Keyed
//! state's checkpoint snapshots and a table's pinned read point (see `chunked_insert`) both
//! need one that lives as long as its users, so the borrow is stretched to `'static` here,
//! once, and the database is kept alive by the `Arc` stored alongside it.

use std::sync::Arc;

use rocksdb::{Snapshot, DB};

pub(crate) struct OwnedSnapshot {
    /// Declared before `db` so that it is dropped (the RocksDB snapshot released) first.
    snapshot: Snapshot<'static>,
    db: Arc<DB>,
}

impl OwnedSnapshot {
    /// Takes a snapshot of `db` as of now.
    pub(crate) fn take(db: &Arc<DB>) -> Self {
        let db = Arc::clone(db);
        // SAFETY: the reference points into the `Arc`'s heap allocation, which neither moves
        // nor is freed while `db` (stored in the same struct) holds a count on it. The
        // reference lives only inside `snapshot`; it never leaves this struct (`get` lends
        // the snapshot for no longer than `&self`), and struct fields drop in declaration
        // order, so `snapshot` (which releases the RocksDB snapshot through the reference)
        // is dropped while `db` still keeps the database open. `DB` is `Sync`, so using it
        // through a shared reference from any thread is fine.
        let pinned: &'static DB = unsafe { &*Arc::as_ptr(&db) };
        OwnedSnapshot { snapshot: pinned.snapshot(), db }
    }

    /// The snapshot, to read through (`ReadOptions::set_snapshot`).
    pub(crate) fn get(&self) -> &Snapshot<'_> {
        &self.snapshot
    }

    /// The database the snapshot belongs to.
    pub(crate) fn db(&self) -> &Arc<DB> {
        &self.db
    }
}
