//! Keyed operator state: one trait, two backends (memory and RocksDB).
//!
//! Operators (aggregates, windows, joins later) keep per-key state. This module is where it
//! lives once it outgrows the operator's own memory, and what checkpoints snapshot:
//!
//! * Every entry belongs to a [`StateNamespace`] (one operator of one job) and a *key group*
//!   (`0..KEY_GROUPS`, the same key groups the hash exchange routes by). A stored key is
//!   `namespace | key group | user key`, so one subtask's state is a few contiguous key
//!   ranges, and a later rescale hands whole key-group ranges to other subtasks without
//!   rewriting any key.
//! * Writes go in [`StateWriteBatch`]es, applied atomically: operators keep hot state in
//!   memory and flush changes at barriers, not one backend call per row. Operators use a
//!   backend through a [`StateTable`](crate::state_table::StateTable), which does that
//!   bookkeeping.
//! * [`KeyedStateBackend::snapshot_handle`] captures a point-in-time view of a namespace's
//!   key groups cheaply (an `imbl` map clone in memory, a RocksDB snapshot on disk) at the
//!   barrier; the returned [`StateSnapshot`] writes it out later, on another thread, as a
//!   self-describing stream of entries (checkpoints upload it) while writers carry on.
//!   [`KeyedStateBackend::restore`] loads such a stream back.

use std::io::{Read, Write};
use std::ops::{Bound, Range};
use std::path::Path;
use std::sync::{Arc, RwLock};

use imbl::OrdMap;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, Direction, IngestExternalFileOptions, IteratorMode,
    Options, Snapshot, SstFileWriter, WriteBatch, DB,
};

use weir_plan::KEY_GROUPS;

use crate::error::{StorageError, StorageResult};
use crate::owned_snapshot::OwnedSnapshot;

/// Magic bytes at the start of a serialized snapshot (format version 1).
const SNAPSHOT_MAGIC: &[u8; 8] = b"WEIRST01";

const CF_STATE: &str = "keyed_state";

/// A RocksDB restore writes SST files of at most about this size, so restoring a snapshot
/// larger than memory never holds more than one file's worth of writer buffers.
const RESTORE_SST_BYTES: u64 = 256 << 20;

/// Length of the namespace every stored key starts with (see [`StateNamespace::prefix`]).
pub const NAMESPACE_PREFIX_LEN: usize = 24;

/// Whose state an entry is: one operator (by its index in the vertex's chain) of one subtask
/// of one vertex of one job. Each subtask has its own namespace, so subtasks of one vertex
/// never share keys even when they share a backend.
///
/// Each *deployment* of a job (its first start, and every restart after a failure, a
/// rescale or a JobManager restart) has namespaces of its own, so the state a task restored
/// can never be touched by an earlier run of the same task on the same TaskManager that has
/// not stopped writing yet: a cancelled task stops only at its next await, and the blocking
/// part of a restore runs to its end. Without that, such a run's last writes could land in
/// a restarted task's state after its restore, and the restarted job would count rows
/// twice.
///
/// Stored keys start with the namespace packed into [`NAMESPACE_PREFIX_LEN`] bytes (see
/// [`Self::prefix`]): job, deployment, vertex, subtask and operator index, each big-endian,
/// the job first so that [`KeyedStateBackend::drop_job`] is one range. The database is
/// emptied at every start, and snapshot streams strip the prefix, so neither old
/// directories nor checkpoints depend on this layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateNamespace {
    pub job: u64,
    /// The deployment of the job the task belongs to (`TaskDescriptor::deployment`).
    pub deployment: u64,
    pub vertex: u32,
    pub subtask: u16,
    /// The operator's index in its vertex's chain.
    pub operator_index: u16,
}

impl StateNamespace {
    /// The namespace of operator `operator_index` of a subtask; an error if an id is too
    /// large for its field.
    pub fn new(
        job: u64,
        deployment: u64,
        vertex: usize,
        subtask: usize,
        operator_index: usize,
    ) -> StorageResult<Self> {
        let fits = |what: &str, n: usize| invalid(&format!("{what} {n} does not fit a state namespace"));
        Ok(Self {
            job,
            deployment,
            vertex: u32::try_from(vertex).map_err(|_| fits("vertex", vertex))?,
            subtask: u16::try_from(subtask).map_err(|_| fits("subtask", subtask))?,
            operator_index: u16::try_from(operator_index)
                .map_err(|_| fits("operator index", operator_index))?,
        })
    }

    /// The bytes every stored key of this namespace starts with.
    pub fn prefix(&self) -> [u8; NAMESPACE_PREFIX_LEN] {
        let mut out = [0u8; NAMESPACE_PREFIX_LEN];
        out[..8].copy_from_slice(&self.job.to_be_bytes());
        out[8..16].copy_from_slice(&self.deployment.to_be_bytes());
        out[16..20].copy_from_slice(&self.vertex.to_be_bytes());
        out[20..22].copy_from_slice(&self.subtask.to_be_bytes());
        out[22..].copy_from_slice(&self.operator_index.to_be_bytes());
        out
    }

    /// The stored key of `key` in key group `key_group`.
    fn key(&self, key_group: u16, key: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(NAMESPACE_PREFIX_LEN + 2 + key.len());
        out.extend_from_slice(&self.prefix());
        out.extend_from_slice(&key_group.to_be_bytes());
        out.extend_from_slice(key);
        out
    }

    /// [`Self::key`] built straight into a shared buffer (one allocation), for the memory
    /// backend's map.
    fn shared_key(&self, key_group: u16, key: &[u8]) -> Arc<[u8]> {
        let group = key_group.to_be_bytes();
        self.prefix().iter().chain(&group).chain(key).copied().collect()
    }

    /// Stored keys of key groups `groups` start at the first bound and end before the second.
    fn bounds(&self, groups: &Range<u16>) -> (Vec<u8>, Vec<u8>) {
        (self.key(groups.start, &[]), self.key(groups.end, &[]))
    }

    /// The stored-key ranges that hold the entries of key groups `groups` whose key starts
    /// with `prefix`: one range per key group (a scan seeks straight to the prefix and stops
    /// after it, rather than reading the whole key group), or one range for no prefix.
    fn prefix_ranges(&self, groups: &Range<u16>, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        if prefix.is_empty() {
            return vec![self.bounds(groups)];
        }
        groups
            .clone()
            .map(|group| {
                let from = self.key(group, prefix);
                let to = successor(&from).unwrap_or_else(|| self.key(group + 1, &[]));
                (from, to)
            })
            .collect()
    }
}

/// Changes to apply atomically: `(key group, key, Some(value))` puts, `None` deletes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StateWriteBatch {
    pub changes: Vec<(u16, Vec<u8>, Option<Vec<u8>>)>,
}

impl StateWriteBatch {
    pub fn put(&mut self, key_group: u16, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.changes.push((key_group, key.into(), Some(value.into())));
    }

    pub fn delete(&mut self, key_group: u16, key: impl Into<Vec<u8>>) {
        self.changes.push((key_group, key.into(), None));
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Receives entries of a scan in key order; returns `false` to stop.
pub type Visitor<'a> = dyn FnMut(u16, &[u8], &[u8]) -> bool + 'a;

/// Receives stored (key, value) pairs; `Ok(false)` stops the scan.
type RawVisitor<'a> = dyn FnMut(&[u8], &[u8]) -> StorageResult<bool> + 'a;

pub trait KeyedStateBackend: Send + Sync {
    fn get(&self, ns: StateNamespace, key_group: u16, key: &[u8]) -> StorageResult<Option<Vec<u8>>>;

    /// Applies every change of `batch`, all or none.
    fn write(&self, ns: StateNamespace, batch: StateWriteBatch) -> StorageResult<()>;

    /// Visits the entries of key groups `groups` whose key starts with `prefix`, in order of
    /// (key group, key).
    fn scan(
        &self,
        ns: StateNamespace,
        groups: Range<u16>,
        prefix: &[u8],
        visit: &mut Visitor<'_>,
    ) -> StorageResult<()>;

    /// Captures key groups `groups` of `ns` as they are now, to be written out later by the
    /// returned handle. Cheap (no entry is copied), so it can be taken at a barrier; writes
    /// made after it returns do not change what the handle writes.
    fn snapshot_handle(
        &self,
        ns: StateNamespace,
        groups: Range<u16>,
    ) -> StorageResult<Box<dyn StateSnapshot>>;

    /// Writes a consistent copy of key groups `groups` of `ns` to `out`; returns the bytes
    /// written. Later writes to the backend do not change what is written.
    fn snapshot(&self, ns: StateNamespace, groups: Range<u16>, out: &mut dyn Write) -> StorageResult<u64> {
        self.snapshot_handle(ns, groups)?.write_to(out)
    }

    /// Replaces the contents of the key groups a snapshot covers with the snapshot's entries.
    /// If it fails part way (a damaged or truncated stream), those key groups may hold part
    /// of the snapshot: restore again, or drop the namespace, before using them.
    fn restore(&self, ns: StateNamespace, input: &mut dyn Read) -> StorageResult<()>;

    /// Adds the snapshot's entries of the key groups in `keep` to `ns` and skips the rest:
    /// a subtask's share of an old subtask's snapshot after a rescale. Nothing is replaced,
    /// so the shares of several snapshots add up; `ns` should start empty. Returns how many
    /// entries were added.
    fn restore_within(
        &self,
        ns: StateNamespace,
        input: &mut dyn Read,
        keep: Range<u16>,
    ) -> StorageResult<u64>;

    /// Removes every entry of `ns` (its job was dropped).
    fn drop_namespace(&self, ns: StateNamespace) -> StorageResult<()>;

    /// Removes every entry of every namespace of `job` (the job was stopped or dropped).
    fn drop_job(&self, job: u64) -> StorageResult<()>;
}

/// Stored keys of every namespace of `job` start at the first bound and end before the second.
fn job_bounds(job: u64) -> (Vec<u8>, Vec<u8>) {
    let to = match job.checked_add(1) {
        Some(next) => next.to_be_bytes().to_vec(),
        None => vec![0xff; NAMESPACE_PREFIX_LEN + 1],
    };
    (job.to_be_bytes().to_vec(), to)
}

/// A point-in-time view of some key groups, captured by
/// [`KeyedStateBackend::snapshot_handle`] and not yet written out. It holds that view (and,
/// for RocksDB, keeps the database's older versions of the entries) until it is written or
/// dropped, so write it soon.
pub trait StateSnapshot: Send {
    /// Writes the captured entries to `out` in the snapshot stream format that
    /// [`KeyedStateBackend::restore`] reads; returns the bytes written.
    fn write_to(self: Box<Self>, out: &mut dyn Write) -> StorageResult<u64>;
}

fn check_groups(groups: &Range<u16>) -> StorageResult<()> {
    match groups.start <= groups.end && groups.end <= KEY_GROUPS {
        true => Ok(()),
        false => Err(StorageError::Invalid(format!("key groups {groups:?} are outside 0..{KEY_GROUPS}"))),
    }
}

/// Reads a snapshot's entries (after its header, which said they are in `groups`) of the
/// key groups in `keep`, as stored keys of `ns` and values.
fn read_entries_within(
    ns: StateNamespace,
    input: &mut dyn Read,
    groups: &Range<u16>,
    keep: &Range<u16>,
) -> StorageResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let prefix = ns.prefix();
    let mut entries = Vec::new();
    read_snapshot_entries(input, groups, |group_and_key, value| {
        if in_groups(&group_and_key, keep) {
            let mut key = prefix.to_vec();
            key.extend_from_slice(&group_and_key);
            entries.push((key, value));
        }
        Ok(())
    })?;
    Ok(entries)
}

/// Whether a snapshot entry (key group, then key) is in `groups`.
fn in_groups(group_and_key: &[u8], groups: &Range<u16>) -> bool {
    group_and_key.get(..2).is_some_and(|g| groups.contains(&u16::from_be_bytes([g[0], g[1]])))
}

/// The smallest key above every key that starts with `prefix` (`None` if there is none:
/// `prefix` is all `0xFF`).
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last != u8::MAX {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

fn split_key(stored: &[u8]) -> Option<(u16, &[u8])> {
    let group_at = NAMESPACE_PREFIX_LEN..NAMESPACE_PREFIX_LEN + 2;
    let group = u16::from_be_bytes(stored.get(group_at)?.try_into().ok()?);
    Some((group, &stored[NAMESPACE_PREFIX_LEN + 2..]))
}

/// Snapshot stream: magic, key-group range, then `(u32 key length, key, u32 value length,
/// value)` per entry with the namespace stripped (so it restores into another namespace, as
/// a job restarted under a new id would), and a final `u32::MAX`.
struct SnapshotWriter<'a> {
    out: &'a mut dyn Write,
    bytes: u64,
}

impl SnapshotWriter<'_> {
    fn put(&mut self, data: &[u8]) -> StorageResult<()> {
        self.out.write_all(data).map_err(io)?;
        self.bytes += data.len() as u64;
        Ok(())
    }

    fn begin(&mut self, groups: &Range<u16>) -> StorageResult<()> {
        self.put(SNAPSHOT_MAGIC)?;
        self.put(&groups.start.to_be_bytes())?;
        self.put(&groups.end.to_be_bytes())
    }

    fn entry(&mut self, group_and_key: &[u8], value: &[u8]) -> StorageResult<()> {
        let key_len = u32::try_from(group_and_key.len()).map_err(|_| invalid("state key too long"))?;
        let value_len = u32::try_from(value.len()).map_err(|_| invalid("state value too long"))?;
        self.put(&key_len.to_be_bytes())?;
        self.put(group_and_key)?;
        self.put(&value_len.to_be_bytes())?;
        self.put(value)
    }

    fn finish(&mut self) -> StorageResult<u64> {
        self.put(&u32::MAX.to_be_bytes())?;
        Ok(self.bytes)
    }
}

/// Reads a snapshot stream's header: the key-group range it covers.
fn read_snapshot_header(input: &mut dyn Read) -> StorageResult<Range<u16>> {
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic).map_err(io)?;
    if &magic != SNAPSHOT_MAGIC {
        return Err(invalid("not a keyed state snapshot (bad magic)"));
    }
    let mut u16s = [0u8; 4];
    input.read_exact(&mut u16s).map_err(io)?;
    let groups = u16::from_be_bytes([u16s[0], u16s[1]])..u16::from_be_bytes([u16s[2], u16s[3]]);
    check_groups(&groups)?;
    Ok(groups)
}

/// Reads the entries following the header (which said they are in `groups`), as (key group
/// and key, value), up to the end marker.
fn read_snapshot_entries(
    input: &mut dyn Read,
    groups: &Range<u16>,
    mut entry: impl FnMut(Vec<u8>, Vec<u8>) -> StorageResult<()>,
) -> StorageResult<()> {
    let read_len = |input: &mut dyn Read| -> StorageResult<u32> {
        let mut len = [0u8; 4];
        input.read_exact(&mut len).map_err(io)?;
        Ok(u32::from_be_bytes(len))
    };
    loop {
        let key_len = read_len(input)?;
        if key_len == u32::MAX {
            return Ok(());
        }
        let mut key = vec![0u8; key_len as usize];
        input.read_exact(&mut key).map_err(io)?;
        let value_len = read_len(input)?;
        let mut value = vec![0u8; value_len as usize];
        input.read_exact(&mut value).map_err(io)?;
        match key.get(..2).map(|g| u16::from_be_bytes([g[0], g[1]])) {
            Some(group) if groups.contains(&group) => entry(key, value)?,
            _ => return Err(invalid("snapshot entry outside its key groups")),
        }
    }
}

fn io(e: std::io::Error) -> StorageError {
    StorageError::Invalid(format!("keyed state snapshot I/O: {e}"))
}

fn invalid(what: &str) -> StorageError {
    StorageError::Invalid(format!("keyed state: {what}"))
}

/// State in memory: one ordered persistent map, so a snapshot is an O(1) clone.
///
/// Keys are shared (`Arc`) like values: a write after a snapshot copies each tree node it
/// touches, and copying a node must not allocate and copy each of its keys (with owned
/// keys, checkpoints every second made a join spend most of its time copying its state).
#[derive(Default)]
pub struct InMemoryStateBackend {
    entries: RwLock<EntryMap>,
}

type EntryMap = OrdMap<Arc<[u8]>, Arc<[u8]>>;

/// `from..to` over the map's shared keys.
fn key_range<'a>(from: &'a [u8], to: &'a [u8]) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    (Bound::Included(from), Bound::Excluded(to))
}

impl InMemoryStateBackend {
    fn read(&self) -> StorageResult<EntryMap> {
        self.entries.read().map(|e| e.clone()).map_err(|_| invalid("state lock poisoned"))
    }

    fn replace_range(&self, from: &[u8], to: &[u8], entries: Vec<(Vec<u8>, Vec<u8>)>) -> StorageResult<()> {
        let mut map = self.entries.write().map_err(|_| invalid("state lock poisoned"))?;
        let doomed: Vec<Arc<[u8]>> =
            map.range::<_, [u8]>(key_range(from, to)).map(|(k, _)| Arc::clone(k)).collect();
        for key in doomed {
            map.remove(&key[..]);
        }
        for (key, value) in entries {
            map.insert(Arc::from(key), Arc::from(value));
        }
        Ok(())
    }
}

impl KeyedStateBackend for InMemoryStateBackend {
    fn get(&self, ns: StateNamespace, key_group: u16, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        let map = self.entries.read().map_err(|_| invalid("state lock poisoned"))?;
        Ok(map.get(&ns.key(key_group, key)[..]).map(|v| v.to_vec()))
    }

    fn write(&self, ns: StateNamespace, batch: StateWriteBatch) -> StorageResult<()> {
        for (group, _, _) in &batch.changes {
            check_groups(&(*group..*group + 1))?;
        }
        let mut map = self.entries.write().map_err(|_| invalid("state lock poisoned"))?;
        for (group, key, value) in batch.changes {
            match value {
                Some(value) => map.insert(ns.shared_key(group, &key), Arc::from(value)),
                None => map.remove(&ns.key(group, &key)[..]),
            };
        }
        Ok(())
    }

    fn scan(
        &self,
        ns: StateNamespace,
        groups: Range<u16>,
        prefix: &[u8],
        visit: &mut Visitor<'_>,
    ) -> StorageResult<()> {
        check_groups(&groups)?;
        let map = self.read()?;
        for (from, to) in ns.prefix_ranges(&groups, prefix) {
            for (key, value) in map.range::<_, [u8]>(key_range(&from, &to)) {
                let Some((group, user_key)) = split_key(key) else { continue };
                if user_key.starts_with(prefix) && !visit(group, user_key, value) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn snapshot_handle(
        &self,
        ns: StateNamespace,
        groups: Range<u16>,
    ) -> StorageResult<Box<dyn StateSnapshot>> {
        check_groups(&groups)?;
        Ok(Box::new(InMemorySnapshot { map: self.read()?, ns, groups }))
    }

    /// Collects the entries first and swaps them in under one lock: the state is in memory
    /// anyway, and the swap is all or nothing.
    fn restore(&self, ns: StateNamespace, input: &mut dyn Read) -> StorageResult<()> {
        let groups = read_snapshot_header(input)?;
        let entries = read_entries_within(ns, input, &groups, &groups)?;
        let (from, to) = ns.bounds(&groups);
        self.replace_range(&from, &to, entries)
    }

    fn restore_within(
        &self,
        ns: StateNamespace,
        input: &mut dyn Read,
        keep: Range<u16>,
    ) -> StorageResult<u64> {
        let groups = read_snapshot_header(input)?;
        let entries = read_entries_within(ns, input, &groups, &keep)?;
        let added = entries.len() as u64;
        let mut map = self.entries.write().map_err(|_| invalid("state lock poisoned"))?;
        for (key, value) in entries {
            map.insert(Arc::from(key), Arc::from(value));
        }
        Ok(added)
    }

    fn drop_namespace(&self, ns: StateNamespace) -> StorageResult<()> {
        let (from, to) = ns.bounds(&(0..KEY_GROUPS));
        self.replace_range(&from, &to, Vec::new())
    }

    fn drop_job(&self, job: u64) -> StorageResult<()> {
        let (from, to) = job_bounds(job);
        self.replace_range(&from, &to, Vec::new())
    }
}

/// The memory backend's snapshot: its own O(1) clone of the map, untouched by later writes.
struct InMemorySnapshot {
    map: EntryMap,
    ns: StateNamespace,
    groups: Range<u16>,
}

impl StateSnapshot for InMemorySnapshot {
    fn write_to(self: Box<Self>, out: &mut dyn Write) -> StorageResult<u64> {
        let (from, to) = self.ns.bounds(&self.groups);
        let mut writer = SnapshotWriter { out, bytes: 0 };
        writer.begin(&self.groups)?;
        for (key, value) in self.map.range::<_, [u8]>(key_range(&from, &to)) {
            writer.entry(&key[NAMESPACE_PREFIX_LEN..], value)?;
        }
        writer.finish()
    }
}

/// Tuning of the RocksDB backend (from the server's configuration).
#[derive(Debug, Clone)]
pub struct RocksDbStateOptions {
    pub block_cache_bytes: usize,
    pub write_buffer_bytes: usize,
}

impl Default for RocksDbStateOptions {
    fn default() -> Self {
        Self { block_cache_bytes: 256 << 20, write_buffer_bytes: 64 << 20 }
    }
}

/// State on disk: one RocksDB instance (per TaskManager) with one column family; namespaces
/// and key groups are key prefixes. Larger than memory works: reads go through the block
/// cache, writes through the memtable. The database is shared with the snapshot handles,
/// which may outlive the backend.
pub struct RocksDbStateBackend {
    db: Arc<DB>,
    /// Where restores write the SST files they ingest.
    dir: std::path::PathBuf,
    /// The column family's options, which ingested SST files must be written with.
    cf_options: Options,
    restores: std::sync::atomic::AtomicU64,
}

impl RocksDbStateBackend {
    /// Writes the snapshot entries of key groups `keep` (the rest of the stream, whose
    /// header said `groups`) into SST files of bounded size and ingests them; returns how
    /// many entries were written.
    fn ingest(
        &self,
        ns: StateNamespace,
        input: &mut dyn Read,
        groups: &Range<u16>,
        keep: &Range<u16>,
    ) -> StorageResult<u64> {
        let cf = self.cf()?;
        let prefix = ns.prefix();
        let mut kept = 0u64;
        let mut files = Vec::new();
        let mut writer: Option<SstFileWriter<'_>> = None;
        let mut key = Vec::new();
        let result = read_snapshot_entries(input, groups, |group_and_key, value| {
            if !in_groups(&group_and_key, keep) {
                return Ok(());
            }
            kept += 1;
            if writer.as_ref().is_none_or(|w| w.file_size() >= RESTORE_SST_BYTES) {
                if let Some(mut full) = writer.take() {
                    full.finish()?;
                }
                let n = self.restores.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let path = self.dir.join(format!("restore-{n}.sst"));
                let fresh = SstFileWriter::create(&self.cf_options);
                fresh.open(&path)?;
                files.push(path);
                writer = Some(fresh);
            }
            key.clear();
            key.extend_from_slice(&prefix);
            key.extend_from_slice(&group_and_key);
            match writer.as_mut() {
                Some(w) => Ok(w.put(&key, &value)?),
                None => Err(invalid("no SST writer")),
            }
        });
        let result = result.and_then(|()| match writer.take() {
            Some(mut last) => Ok(last.finish()?),
            None => Ok(()),
        });
        let result = result.and_then(|()| {
            if files.is_empty() {
                return Ok(());
            }
            let mut options = IngestExternalFileOptions::default();
            options.set_move_files(true);
            Ok(self.db.ingest_external_file_cf_opts(cf, &options, files.clone())?)
        });
        for file in &files {
            let _ = std::fs::remove_file(file); // moved when ingested; leftovers on failure
        }
        result.map(|()| kept)
    }

    pub fn open(dir: &Path, tuning: &RocksDbStateOptions) -> StorageResult<Self> {
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_background_jobs(2);
        let mut cf_opts = Options::default();
        cf_opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        cf_opts.set_write_buffer_size(tuning.write_buffer_bytes);
        // One memtable takes writes while at most one more is flushed: memtables never hold
        // more than twice the write buffer.
        cf_opts.set_max_write_buffer_number(2);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&Cache::new_lru_cache(tuning.block_cache_bytes));
        // Operators look up keys that are mostly absent (a new group): bloom filters answer
        // those without reading data blocks. Filters and indexes grow with the state (over a
        // byte per key), so they live in the block cache too, where its size bounds them:
        // partitioned into blocks of 4 KiB, so a lookup reads one partition back, not a
        // file's whole filter; only each file's small top-level index stays pinned. They
        // are cached at high priority, ahead of data blocks.
        table.set_bloom_filter(10.0, false);
        table.set_optimize_filters_for_memory(true);
        table.set_index_type(rocksdb::BlockBasedIndexType::TwoLevelIndexSearch);
        table.set_partition_filters(true);
        table.set_metadata_block_size(4096);
        table.set_cache_index_and_filter_blocks(true);
        table.set_cache_index_and_filter_blocks_with_high_priority(true);
        table.set_pin_top_level_index_and_filter(true);
        cf_opts.set_block_based_table_factory(&table);
        let cf_options = cf_opts.clone();
        let db = DB::open_cf_descriptors(&db_opts, dir, [ColumnFamilyDescriptor::new(CF_STATE, cf_opts)])?;
        Ok(Self {
            db: Arc::new(db),
            dir: dir.to_path_buf(),
            cf_options,
            restores: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Writes without RocksDB's write-ahead log: this database is a working copy of state
    /// whose durable form is the checkpoints (it is emptied at every start), so logging
    /// every write would only halve the write throughput.
    fn write_unlogged(&self, batch: WriteBatch) -> StorageResult<()> {
        let mut options = rocksdb::WriteOptions::default();
        options.disable_wal(true);
        Ok(self.db.write_opt(batch, &options)?)
    }

    fn cf(&self) -> StorageResult<&rocksdb::ColumnFamily> {
        state_cf(&self.db)
    }
}

fn state_cf(db: &DB) -> StorageResult<&rocksdb::ColumnFamily> {
    db.cf_handle(CF_STATE).ok_or_else(|| invalid("missing column family"))
}

/// Visits stored (key, value) pairs of `db` in `[from, to)` as of `snapshot` (or now).
fn visit_range(
    db: &DB,
    from: &[u8],
    to: &[u8],
    snapshot: Option<&Snapshot<'_>>,
    visit: &mut RawVisitor<'_>,
) -> StorageResult<()> {
    let mut read = rocksdb::ReadOptions::default();
    read.set_iterate_upper_bound(to.to_vec());
    if let Some(snapshot) = snapshot {
        read.set_snapshot(snapshot);
    }
    let iter = db.iterator_cf_opt(state_cf(db)?, read, IteratorMode::From(from, Direction::Forward));
    for item in iter {
        let (key, value) = item?;
        if !visit(&key, &value)? {
            break;
        }
    }
    Ok(())
}

/// The RocksDB backend's snapshot: a RocksDB snapshot (the sequence number it pins, so
/// compaction keeps the versions it sees) with its database, and the range it covers.
struct RocksDbSnapshot {
    snapshot: OwnedSnapshot,
    ns: StateNamespace,
    groups: Range<u16>,
}

impl RocksDbSnapshot {
    fn take(db: &Arc<DB>, ns: StateNamespace, groups: Range<u16>) -> Self {
        RocksDbSnapshot { snapshot: OwnedSnapshot::take(db), ns, groups }
    }
}

impl StateSnapshot for RocksDbSnapshot {
    fn write_to(self: Box<Self>, out: &mut dyn Write) -> StorageResult<u64> {
        let (from, to) = self.ns.bounds(&self.groups);
        let mut writer = SnapshotWriter { out, bytes: 0 };
        writer.begin(&self.groups)?;
        visit_range(self.snapshot.db(), &from, &to, Some(self.snapshot.get()), &mut |key, value| {
            writer.entry(&key[NAMESPACE_PREFIX_LEN..], value)?;
            Ok(true)
        })?;
        writer.finish()
    }
}

impl KeyedStateBackend for RocksDbStateBackend {
    fn get(&self, ns: StateNamespace, key_group: u16, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf()?, ns.key(key_group, key))?)
    }

    fn write(&self, ns: StateNamespace, batch: StateWriteBatch) -> StorageResult<()> {
        let cf = self.cf()?;
        let mut wb = WriteBatch::default();
        for (group, key, value) in batch.changes {
            check_groups(&(group..group + 1))?;
            match value {
                Some(value) => wb.put_cf(cf, ns.key(group, &key), value),
                None => wb.delete_cf(cf, ns.key(group, &key)),
            }
        }
        // Not synced: state is made durable by checkpoints, not by each write.
        self.write_unlogged(wb)
    }

    fn scan(
        &self,
        ns: StateNamespace,
        groups: Range<u16>,
        prefix: &[u8],
        visit: &mut Visitor<'_>,
    ) -> StorageResult<()> {
        check_groups(&groups)?;
        let mut stopped = false;
        for (from, to) in ns.prefix_ranges(&groups, prefix) {
            visit_range(&self.db, &from, &to, None, &mut |key, value| {
                let Some((group, user_key)) = split_key(key) else { return Ok(true) };
                stopped = user_key.starts_with(prefix) && !visit(group, user_key, value);
                Ok(!stopped)
            })?;
            if stopped {
                break;
            }
        }
        Ok(())
    }

    fn snapshot_handle(
        &self,
        ns: StateNamespace,
        groups: Range<u16>,
    ) -> StorageResult<Box<dyn StateSnapshot>> {
        check_groups(&groups)?;
        Ok(Box::new(RocksDbSnapshot::take(&self.db, ns, groups)))
    }

    /// Streams the snapshot in: the header names the key groups, so their old contents are
    /// deleted first; the entries, which a snapshot lists in key order, are written straight
    /// into SST files of bounded size and ingested, bypassing the memtable, the write path
    /// and compactions of L0 (a bulk load, several times faster than write batches).
    fn restore(&self, ns: StateNamespace, input: &mut dyn Read) -> StorageResult<()> {
        let groups = read_snapshot_header(input)?;
        let (from, to) = ns.bounds(&groups);
        let mut wb = WriteBatch::default();
        wb.delete_range_cf(self.cf()?, &from, &to);
        self.write_unlogged(wb)?;
        self.ingest(ns, input, &groups, &groups).map(|_| ())
    }

    fn restore_within(
        &self,
        ns: StateNamespace,
        input: &mut dyn Read,
        keep: Range<u16>,
    ) -> StorageResult<u64> {
        let groups = read_snapshot_header(input)?;
        self.ingest(ns, input, &groups, &keep)
    }

    fn drop_namespace(&self, ns: StateNamespace) -> StorageResult<()> {
        let (from, to) = ns.bounds(&(0..KEY_GROUPS));
        let mut wb = WriteBatch::default();
        wb.delete_range_cf(self.cf()?, from, to);
        self.write_unlogged(wb)
    }

    fn drop_job(&self, job: u64) -> StorageResult<()> {
        let (from, to) = job_bounds(job);
        let mut wb = WriteBatch::default();
        wb.delete_range_cf(self.cf()?, from, to);
        self.write_unlogged(wb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: StateNamespace =
        StateNamespace { job: 7, deployment: 0, vertex: 1, subtask: 0, operator_index: 2 };
    const OTHER: StateNamespace =
        StateNamespace { job: 7, deployment: 0, vertex: 1, subtask: 0, operator_index: 3 };

    #[test]
    fn a_namespace_packs_job_deployment_vertex_subtask_and_operator_in_order() {
        let ns = StateNamespace {
            job: 0x0102_0304_0506_0708,
            deployment: 0x1112_1314_1516_1718,
            vertex: 9,
            subtask: 3,
            operator_index: 2,
        };
        let mut packed = Vec::new();
        packed.extend_from_slice(&ns.job.to_be_bytes());
        packed.extend_from_slice(&ns.deployment.to_be_bytes());
        packed.extend_from_slice(&9u32.to_be_bytes());
        packed.extend_from_slice(&3u16.to_be_bytes());
        packed.extend_from_slice(&2u16.to_be_bytes());
        assert_eq!(ns.prefix().to_vec(), packed);
        assert_eq!(StateNamespace::new(ns.job, ns.deployment, 9, 3, 2).expect("fits"), ns);
        assert!(StateNamespace::new(1, 0, 0, 1 << 16, 0).is_err(), "a subtask beyond u16");
        assert_eq!(ns.key(5, b"k"), [&packed[..], &[0, 5], b"k"].concat());
        // Subtasks of one vertex, and deployments of one job, have disjoint key ranges
        // inside the job's range.
        let next = StateNamespace { subtask: 4, operator_index: 0, ..ns };
        assert!(ns.bounds(&(0..KEY_GROUPS)).1 <= next.bounds(&(0..KEY_GROUPS)).0);
        let later = StateNamespace { deployment: ns.deployment + 1, vertex: 0, subtask: 0, ..ns };
        assert!(ns.bounds(&(0..KEY_GROUPS)).1 <= later.bounds(&(0..KEY_GROUPS)).0);
        let (job_from, job_to) = job_bounds(ns.job);
        assert!(job_from <= ns.bounds(&(0..KEY_GROUPS)).0 && later.bounds(&(0..KEY_GROUPS)).1 <= job_to);
    }

    /// Runs `check` against both backends.
    fn both(check: impl Fn(&dyn KeyedStateBackend)) {
        check(&InMemoryStateBackend::default());
        let dir = tempfile::tempdir().expect("tempdir");
        let rocks = RocksDbStateBackend::open(dir.path(), &RocksDbStateOptions::default()).expect("open");
        check(&rocks);
    }

    fn scan_all(
        backend: &dyn KeyedStateBackend,
        ns: StateNamespace,
        groups: Range<u16>,
        prefix: &[u8],
    ) -> Vec<String> {
        let mut seen = Vec::new();
        backend
            .scan(ns, groups, prefix, &mut |group, key, value| {
                seen.push(format!(
                    "{group}:{}={}",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(value)
                ));
                true
            })
            .expect("scan");
        seen
    }

    #[test]
    fn a_prefix_scan_seeks_to_the_prefix_and_stops_after_it() {
        both(|b| {
            let mut batch = StateWriteBatch::default();
            for (group, key) in
                [(2, &b"a\xff"[..]), (2, b"a\xff\xff"), (2, b"a\xffz"), (2, b"b"), (5, b"a\xff1"), (5, b"a")]
            {
                batch.put(group, key, "v");
            }
            // Many entries after the prefix in its key group: a scan that read the whole
            // group would still be right, only slow; the stop below checks the bound.
            for i in 0..100u32 {
                batch.put(2, [b"c".as_slice(), &i.to_be_bytes()].concat(), "v");
            }
            b.write(NS, batch).expect("write");
            let keys = |groups: Range<u16>, prefix: &[u8]| {
                let mut seen = Vec::new();
                b.scan(NS, groups, prefix, &mut |group, key, _| {
                    seen.push((group, key.to_vec()));
                    true
                })
                .expect("scan");
                seen
            };
            assert_eq!(
                keys(0..KEY_GROUPS, b"a\xff"),
                [
                    (2, b"a\xff".to_vec()),
                    (2, b"a\xffz".to_vec()),
                    (2, b"a\xff\xff".to_vec()),
                    (5, b"a\xff1".to_vec())
                ]
            );
            assert_eq!(keys(2..3, b"\xff"), []);
            assert_eq!(keys(5..6, b"a"), [(5, b"a".to_vec()), (5, b"a\xff1".to_vec())]);
            // A visitor that stops ends the scan across key groups too.
            let mut visited = 0;
            b.scan(NS, 0..KEY_GROUPS, b"a", &mut |_, _, _| {
                visited += 1;
                false
            })
            .expect("scan");
            assert_eq!(visited, 1);
            assert_eq!(successor(b"a\xff"), Some(b"b".to_vec()));
            assert_eq!(successor(b"\xff\xff"), None);
        });
    }

    #[test]
    fn batches_apply_puts_and_deletes_per_namespace_and_key_group() {
        both(|b| {
            let mut batch = StateWriteBatch::default();
            batch.put(3, "apple", "1");
            batch.put(3, "apricot", "2");
            batch.put(9, "apple", "3");
            batch.put(3, "banana", "4");
            b.write(NS, batch).expect("write");
            let mut other = StateWriteBatch::default();
            other.put(3, "apple", "other");
            b.write(OTHER, other).expect("write");
            assert_eq!(b.get(NS, 3, b"apple").expect("get"), Some(b"1".to_vec()));
            assert_eq!(b.get(NS, 9, b"apple").expect("get"), Some(b"3".to_vec()));
            assert_eq!(b.get(OTHER, 3, b"apple").expect("get"), Some(b"other".to_vec()));
            assert_eq!(b.get(NS, 4, b"apple").expect("get"), None);
            assert_eq!(scan_all(b, NS, 0..KEY_GROUPS, b"ap"), ["3:apple=1", "3:apricot=2", "9:apple=3"]);
            assert_eq!(scan_all(b, NS, 4..KEY_GROUPS, b""), ["9:apple=3"]);
            let mut delete = StateWriteBatch::default();
            delete.delete(3, "apple");
            delete.put(3, "banana", "5");
            b.write(NS, delete).expect("write");
            assert_eq!(scan_all(b, NS, 3..4, b""), ["3:apricot=2", "3:banana=5"]);
            let mut bad = StateWriteBatch::default();
            bad.put(KEY_GROUPS, "x", "y");
            assert!(b.write(NS, bad).is_err(), "key group out of range");
            // Dropping a job removes all its namespaces and nothing of other jobs.
            let next_job = StateNamespace { job: NS.job + 1, ..NS };
            let mut batch = StateWriteBatch::default();
            batch.put(0, "kept", "1");
            b.write(next_job, batch).expect("write");
            b.drop_job(NS.job).expect("drop job");
            assert!(scan_all(b, NS, 0..KEY_GROUPS, b"").is_empty());
            assert!(scan_all(b, OTHER, 0..KEY_GROUPS, b"").is_empty());
            assert_eq!(scan_all(b, next_job, 0..KEY_GROUPS, b""), ["0:kept=1"]);
        });
    }

    #[test]
    fn a_rescaled_subtask_restores_only_its_key_groups_from_each_snapshot() {
        both(|b| {
            // Two old subtasks: key groups 0..5 and 5..10, ten keys in each group.
            let old = [StateNamespace { subtask: 0, ..NS }, StateNamespace { subtask: 1, ..NS }];
            let mut images = Vec::new();
            for (i, ns) in old.iter().enumerate() {
                let mut batch = StateWriteBatch::default();
                for g in (i as u16 * 5)..(i as u16 * 5 + 5) {
                    for k in 0..10 {
                        batch.put(g, format!("k{k}"), format!("{g}"));
                    }
                }
                b.write(*ns, batch).expect("write");
                let mut image = Vec::new();
                b.snapshot(*ns, (i as u16 * 5)..(i as u16 * 5 + 5), &mut image).expect("snapshot");
                images.push(image);
            }
            // The new subtask owns key groups 3..8: parts of both. What its namespace holds
            // stays (it should start empty).
            let new = StateNamespace { subtask: 7, ..NS };
            let mut before = StateWriteBatch::default();
            before.put(9, "elsewhere", "y");
            b.write(new, before).expect("write");
            let kept: u64 = images
                .iter()
                .map(|image| b.restore_within(new, &mut image.as_slice(), 3..8).expect("restore"))
                .sum();
            assert_eq!(kept, 50);
            assert_eq!(scan_all(b, new, 3..8, b"").len(), 50);
            assert!(scan_all(b, new, 0..3, b"").is_empty());
            assert_eq!(b.get(new, 9, b"elsewhere").expect("get"), Some(b"y".to_vec()));
            assert_eq!(b.get(new, 6, b"k3").expect("get"), Some(b"6".to_vec()));
        });
    }

    #[test]
    fn a_snapshot_is_a_consistent_copy_that_restores_exactly() {
        both(|b| {
            let mut batch = StateWriteBatch::default();
            for i in 0..100u32 {
                batch.put((i % 10) as u16, format!("k{i:03}"), i.to_be_bytes());
            }
            b.write(NS, batch).expect("write");
            let mut image = Vec::new();
            let bytes = b.snapshot(NS, 0..5, &mut image).expect("snapshot");
            assert_eq!(bytes as usize, image.len());
            // Later changes do not reach the snapshot; restoring brings key groups 0..5 back
            // and leaves the others alone.
            let mut later = StateWriteBatch::default();
            later.put(1, "k001", "changed");
            later.put(2, "new", "x");
            later.put(7, "k007", "changed too");
            b.write(NS, later).expect("write");
            b.restore(NS, &mut image.as_slice()).expect("restore");
            assert_eq!(b.get(NS, 1, b"k001").expect("get"), Some(1u32.to_be_bytes().to_vec()));
            assert_eq!(b.get(NS, 2, b"new").expect("get"), None);
            assert_eq!(b.get(NS, 7, b"k007").expect("get"), Some(b"changed too".to_vec()));
            assert_eq!(scan_all(b, NS, 0..5, b"").len(), 50);
            // Into another namespace (a job restored under a new id).
            b.restore(OTHER, &mut image.as_slice()).expect("restore elsewhere");
            assert_eq!(scan_all(b, OTHER, 0..KEY_GROUPS, b"").len(), 50);
            // A damaged image is an error, not a panic.
            assert!(b.restore(NS, &mut &image[..image.len() / 2]).is_err());
            assert!(b.restore(NS, &mut &b"nonsense"[..]).is_err());
            b.drop_namespace(NS).expect("drop");
            assert!(scan_all(b, NS, 0..KEY_GROUPS, b"").is_empty());
            assert_eq!(scan_all(b, OTHER, 0..KEY_GROUPS, b"").len(), 50);
        });
    }

    #[test]
    fn a_handle_writes_the_state_as_of_when_it_was_taken() {
        both(|b| {
            let mut batch = StateWriteBatch::default();
            for i in 0..50u32 {
                batch.put((i % 5) as u16, format!("k{i:02}"), format!("v{i}"));
            }
            b.write(NS, batch).expect("write");
            let handle = b.snapshot_handle(NS, 0..KEY_GROUPS).expect("handle");
            // Writes and deletes after the handle was taken, while it is written out on
            // another thread.
            let writer = std::thread::spawn(move || {
                let mut image = Vec::new();
                handle.write_to(&mut image).map(|_| image)
            });
            let mut later = StateWriteBatch::default();
            for i in 0..50u32 {
                match i % 2 {
                    0 => later.delete((i % 5) as u16, format!("k{i:02}")),
                    _ => later.put((i % 5) as u16, format!("k{i:02}"), "changed"),
                }
            }
            later.put(3, "new", "x");
            b.write(NS, later).expect("write");
            let image = writer.join().expect("join").expect("write_to");
            b.restore(OTHER, &mut image.as_slice()).expect("restore");
            let restored = scan_all(b, OTHER, 0..KEY_GROUPS, b"");
            assert_eq!(restored.len(), 50);
            assert!(restored.contains(&"2:k37=v37".to_string()), "{restored:?}");
            assert!(restored.contains(&"0:k00=v0".to_string()), "{restored:?}");
            assert_eq!(scan_all(b, NS, 0..KEY_GROUPS, b"").len(), 26);
            // The default `snapshot` is a handle written at once.
            let mut now = Vec::new();
            b.snapshot(OTHER, 0..KEY_GROUPS, &mut now).expect("snapshot");
            assert_eq!(now, image);
        });
    }

    #[test]
    fn a_rocksdb_handle_outlives_its_backend() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = RocksDbStateBackend::open(dir.path(), &RocksDbStateOptions::default()).expect("open");
        let mut batch = StateWriteBatch::default();
        batch.put(1, "k", "v");
        b.write(NS, batch).expect("write");
        let handle = b.snapshot_handle(NS, 0..2).expect("handle");
        drop(b);
        let mut image = Vec::new();
        handle.write_to(&mut image).expect("write_to");
        let memory = InMemoryStateBackend::default();
        memory.restore(NS, &mut image.as_slice()).expect("restore");
        assert_eq!(memory.get(NS, 1, b"k").expect("get"), Some(b"v".to_vec()));
    }

    #[test]
    fn rocksdb_restores_a_large_snapshot_in_batches() {
        let source = InMemoryStateBackend::default();
        const ENTRIES: u32 = 300_000;
        for chunk in 0..ENTRIES / 50_000 {
            let mut batch = StateWriteBatch::default();
            for i in chunk * 50_000..(chunk + 1) * 50_000 {
                batch.put((i % KEY_GROUPS as u32) as u16, i.to_be_bytes(), vec![(i % 251) as u8; 40]);
            }
            source.write(NS, batch).expect("write");
        }
        let mut image = Vec::new();
        source.snapshot(NS, 0..KEY_GROUPS, &mut image).expect("snapshot");
        let dir = tempfile::tempdir().expect("tempdir");
        let b = RocksDbStateBackend::open(dir.path(), &RocksDbStateOptions::default()).expect("open");
        let mut stale = StateWriteBatch::default();
        stale.put(5, "stale", "gone after restore");
        b.write(NS, stale).expect("write");
        b.restore(NS, &mut image.as_slice()).expect("restore");
        assert_eq!(b.get(NS, 5, b"stale").expect("get"), None);
        for i in (0..ENTRIES).step_by(1009) {
            let value = b.get(NS, (i % KEY_GROUPS as u32) as u16, &i.to_be_bytes()).expect("get");
            assert_eq!(value, Some(vec![(i % 251) as u8; 40]), "key {i}");
        }
        let mut count = 0;
        b.scan(NS, 0..KEY_GROUPS, b"", &mut |_, _, _| {
            count += 1;
            true
        })
        .expect("scan");
        assert_eq!(count, ENTRIES);
    }

    #[test]
    fn rocksdb_state_outgrows_a_small_block_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tuning = RocksDbStateOptions { block_cache_bytes: 1 << 20, write_buffer_bytes: 1 << 20 };
        let b = RocksDbStateBackend::open(dir.path(), &tuning).expect("open");
        // 200k keys of 100-byte values: ~20 MB of state through a 1 MB cache and memtable.
        for chunk in 0..20u32 {
            let mut batch = StateWriteBatch::default();
            for i in chunk * 10_000..(chunk + 1) * 10_000 {
                batch.put((i % KEY_GROUPS as u32) as u16, i.to_be_bytes(), vec![(i % 251) as u8; 100]);
            }
            b.write(NS, batch).expect("write");
        }
        for i in (0..200_000u32).step_by(997) {
            let value = b.get(NS, (i % KEY_GROUPS as u32) as u16, &i.to_be_bytes()).expect("get");
            assert_eq!(value, Some(vec![(i % 251) as u8; 100]), "key {i}");
        }
        let mut count = 0;
        b.scan(NS, 0..KEY_GROUPS, b"", &mut |_, _, _| {
            count += 1;
            true
        })
        .expect("scan");
        assert_eq!(count, 200_000);
    }

    /// A task restored from a checkpoint on a TaskManager where an earlier run of it kept
    /// writing past that checkpoint (and was then cancelled): every key reads as the
    /// checkpoint has it, whether the earlier values are in the memtable or in SST files, and
    /// whether the earlier run itself started from a restore.
    #[test]
    fn a_restore_hides_what_a_cancelled_earlier_run_wrote_after_the_checkpoint() {
        const KEYS: u32 = 25_000;
        let value = |i: u32, version: u32| format!("{i}:v{version}:{}", "x".repeat(80));
        let write_all = |b: &RocksDbStateBackend, version: u32| {
            let mut batch = StateWriteBatch::default();
            for i in 0..KEYS {
                batch.put((i % KEY_GROUPS as u32) as u16, i.to_be_bytes(), value(i, version));
            }
            b.write(NS, batch).expect("write");
        };
        for small_memtable in [false, true] {
            let dir = tempfile::tempdir().expect("tempdir");
            let tuning = match small_memtable {
                true => RocksDbStateOptions { block_cache_bytes: 1 << 20, write_buffer_bytes: 256 << 10 },
                false => RocksDbStateOptions::default(),
            };
            let b = RocksDbStateBackend::open(dir.path(), &tuning).expect("open");
            // The first run, restored from an older checkpoint.
            write_all(&b, 0);
            let mut older = Vec::new();
            b.snapshot(NS, 0..KEY_GROUPS, &mut older).expect("snapshot");
            b.drop_job(NS.job).expect("drop");
            b.restore(NS, &mut older.as_slice()).expect("restore");
            for version in 1..=3 {
                write_all(&b, version);
            }
            let checkpoint = b.snapshot_handle(NS, 0..KEY_GROUPS).expect("handle");
            // It runs on past the checkpoint (its upload still running), then is cancelled.
            let upload = std::thread::spawn(move || {
                let mut image = Vec::new();
                checkpoint.write_to(&mut image).map(|_| image)
            });
            for version in 4..=6 {
                write_all(&b, version);
            }
            // Keys the checkpoint does not have.
            let mut batch = StateWriteBatch::default();
            for i in KEYS..KEYS + 1000 {
                batch.put((i % KEY_GROUPS as u32) as u16, i.to_be_bytes(), value(i, 9));
            }
            b.write(NS, batch).expect("write");
            let image = upload.join().expect("upload thread").expect("upload");
            b.drop_job(NS.job).expect("drop");
            b.restore(NS, &mut image.as_slice()).expect("restore");
            for i in 0..KEYS {
                let got = b.get(NS, (i % KEY_GROUPS as u32) as u16, &i.to_be_bytes()).expect("get");
                assert_eq!(got, Some(value(i, 3).into_bytes()), "key {i}, small memtable: {small_memtable}");
            }
            for i in KEYS..KEYS + 1000 {
                let got = b.get(NS, (i % KEY_GROUPS as u32) as u16, &i.to_be_bytes()).expect("get");
                assert_eq!(got, None, "key {i} is not in the checkpoint, small memtable: {small_memtable}");
            }
        }
    }
}
