//! [`StateTable`]: one operator's keyed state in a [`KeyedStateBackend`], with the operator's
//! memory as its cache.
//!
//! A stateful operator (an aggregate today; joins and session windows next) keeps its hot
//! entries in memory in whatever form updates fastest there (an aggregate: columnar
//! accumulators indexed by a dense *slot* number), and only needs the backend for what
//! outgrows memory and for checkpoints. What is the same for every such operator lives here:
//!
//! * **the namespace**: the table stores entries by (key group, key bytes) under its
//!   [`StateNamespace`]; the operator never builds stored keys;
//! * **dirty tracking**: [`StateTable::mark_updated`] records, per slot and without touching
//!   the backend, which entries changed since the last flush;
//! * **one write per barrier**: the operator encodes the updated entries
//!   ([`StateTable::take_updated`], [`StateTable::put`]), removed entries are deleted
//!   ([`StateTable::remove`]), and [`StateTable::flush`] applies it all as one write batch —
//!   never a backend call per row;
//! * **eviction**: past `cache_entries` entries in memory, [`StateTable::evict`] picks the
//!   least recently updated clean entries for the operator to free; they stay in the backend,
//!   and [`StateTable::lookup`] brings a missing key back (it costs nothing until something
//!   has been evicted or restored);
//! * **snapshot and restore**: after a flush the backend holds every entry as of the barrier,
//!   so a checkpoint is the backend's cheap snapshot handle, written out off the data path;
//!   a restore streams a snapshot into the backend and entries come back on lookup;
//! * **time to live** (optional): entries not updated for `ttl` are dropped: those in memory
//!   when the operator asks for [`StateTable::expired`] ones, those only in the backend when
//!   looked up.
//!
//! The values are the operator's bytes; the table adds nothing to them unless a TTL is set
//! (then each stored value starts with the 8-byte time it was last updated).

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{StorageError, StorageResult};
use weir_plan::KEY_GROUPS;

use crate::keyed_state::{KeyedStateBackend, StateNamespace, StateSnapshot, StateWriteBatch};

/// An entry's place in the operator's memory: a dense index the operator chooses (and
/// reuses once the entry is gone).
pub type Slot = u32;

/// How a [`StateTable`] caches and ages its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateTableOptions {
    /// Entries kept in memory: past this many, [`StateTable::evict`] frees clean ones down
    /// to three quarters of it (so that eviction does not run at every flush).
    pub cache_entries: usize,
    /// Entries not updated for this long are dropped; `None` keeps them forever. Time
    /// advances at flushes, so an entry's age is counted from the start of the flush
    /// interval it was last updated in.
    pub ttl: Option<Duration>,
}

impl StateTableOptions {
    /// A cache of `cache_entries` and no TTL.
    pub fn cached(cache_entries: usize) -> Self {
        Self { cache_entries, ttl: None }
    }
}

/// What the table knows of one slot.
#[derive(Debug, Clone, Copy, Default)]
struct SlotState {
    /// The slot holds an entry (updated or loaded, and neither removed nor evicted since).
    resident: bool,
    /// Updated since the last flush (and listed in `StateTable::updated`).
    updated: bool,
    /// The key group under which the backend holds the slot's entry, if it does.
    stored: Option<u16>,
    /// The flush count when the slot was last updated: eviction order.
    touched: u64,
}

/// Keyed state of one operator: a namespace in a backend, with the operator's memory as its
/// cache. See the module documentation for the protocol.
pub struct StateTable {
    backend: Arc<dyn KeyedStateBackend>,
    namespace: StateNamespace,
    cache_entries: usize,
    /// The TTL in milliseconds, if any.
    ttl_ms: Option<u64>,
    slots: Vec<SlotState>,
    /// With a TTL: when each slot was last updated (the table's clock then), in ms.
    updated_at: Vec<u64>,
    /// Slots updated since the last flush, in the order of their first update.
    updated: Vec<Slot>,
    resident: usize,
    /// Deletes and puts to apply at the next flush, in order.
    pending: StateWriteBatch,
    /// The backend may hold entries that are not in memory (after an eviction or restore).
    backend_has_more: bool,
    flushes: u64,
    /// The table's clock (ms since the Unix epoch): the time of the last flush.
    now_ms: u64,
}

impl StateTable {
    pub fn new(
        backend: Arc<dyn KeyedStateBackend>,
        namespace: StateNamespace,
        options: StateTableOptions,
    ) -> Self {
        let ttl_ms = options.ttl.map(|ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        Self {
            backend,
            namespace,
            cache_entries: options.cache_entries.max(1),
            ttl_ms,
            slots: Vec::new(),
            updated_at: Vec::new(),
            updated: Vec::new(),
            resident: 0,
            pending: StateWriteBatch::default(),
            backend_has_more: false,
            flushes: 0,
            now_ms: match ttl_ms {
                Some(_) => wall_clock_ms(),
                None => 0,
            },
        }
    }

    pub fn namespace(&self) -> StateNamespace {
        self.namespace
    }

    /// Entries kept in memory before [`Self::evict`] frees some.
    pub fn cache_entries(&self) -> usize {
        self.cache_entries
    }

    /// Entries in memory (updated or loaded, not removed, evicted or expired since).
    pub fn len(&self) -> usize {
        self.resident
    }

    pub fn is_empty(&self) -> bool {
        self.resident == 0
    }

    fn slot_mut(&mut self, slot: Slot) -> &mut SlotState {
        let s = slot as usize;
        if s >= self.slots.len() {
            self.slots.resize(s + 1, SlotState::default());
            if self.ttl_ms.is_some() {
                self.updated_at.resize(s + 1, 0);
            }
        }
        &mut self.slots[s]
    }

    /// Records that the entry in `slot` changed (or was just created there). Called for
    /// every updated row, so it only flips a flag the first time in a flush interval.
    #[inline]
    pub fn mark_updated(&mut self, slot: Slot) {
        let flushes = self.flushes;
        let state = self.slot_mut(slot);
        let newly_resident = !state.resident;
        state.resident = true;
        if !state.updated {
            state.updated = true;
            state.touched = flushes;
            self.updated.push(slot);
            if self.ttl_ms.is_some() {
                self.updated_at[slot as usize] = self.now_ms;
            }
        }
        if newly_resident {
            self.resident += 1;
        }
    }

    /// Records that the operator put an entry it got from [`Self::lookup`] in key group
    /// `key_group` into `slot`: in memory, clean, and held by the backend.
    pub fn mark_loaded(&mut self, slot: Slot, key_group: u16) {
        let (flushes, now) = (self.flushes, self.now_ms);
        let state = self.slot_mut(slot);
        let newly_resident = !state.resident;
        state.resident = true;
        state.stored = Some(key_group);
        state.touched = flushes;
        if self.ttl_ms.is_some() {
            self.updated_at[slot as usize] = now;
        }
        if newly_resident {
            self.resident += 1;
        }
    }

    /// The slots updated since the last flush that still hold an entry, in the order of
    /// their first update; clears their marks. The operator encodes each and [`Self::put`]s
    /// it before [`Self::flush`].
    pub fn take_updated(&mut self) -> Vec<Slot> {
        let mut updated = std::mem::take(&mut self.updated);
        updated.retain(|&slot| match self.slots.get_mut(slot as usize) {
            Some(state) => {
                state.updated = false;
                state.resident
            }
            None => false,
        });
        updated
    }

    /// Stages the entry of `slot` (key `key` in key group `key_group`, encoded as `value`)
    /// for the next flush.
    pub fn put(&mut self, slot: Slot, key_group: u16, key: Vec<u8>, value: Vec<u8>) {
        let value = match self.ttl_ms {
            None => value,
            Some(_) => {
                let updated_at = self.updated_at.get(slot as usize).copied().unwrap_or(self.now_ms);
                let mut stamped = Vec::with_capacity(8 + value.len());
                stamped.extend_from_slice(&updated_at.to_le_bytes());
                stamped.extend_from_slice(&value);
                stamped
            }
        };
        self.slot_mut(slot).stored = Some(key_group);
        self.pending.put(key_group, key, value);
    }

    /// The entry of `slot` (key `key`) is gone: the slot is free, and the backend's copy, if
    /// any, is deleted at the next flush.
    pub fn remove(&mut self, slot: Slot, key: &[u8]) {
        let Some(state) = self.slots.get_mut(slot as usize) else { return };
        if state.resident {
            state.resident = false;
            self.resident -= 1;
        }
        if let Some(group) = state.stored.take() {
            self.pending.delete(group, key);
        }
    }

    /// Writes everything staged since the last flush in one batch (nothing when nothing
    /// changed), and advances the table's clock.
    pub fn flush(&mut self) -> StorageResult<()> {
        // The wall clock may step back; the table's clock does not.
        let now = match self.ttl_ms {
            Some(_) => wall_clock_ms().max(self.now_ms),
            None => self.now_ms,
        };
        self.flush_at(now)
    }

    /// [`Self::flush`] with the clock set to `now_ms` (for tests and deterministic callers).
    pub fn flush_at(&mut self, now_ms: u64) -> StorageResult<()> {
        if !self.pending.is_empty() {
            self.backend.write(self.namespace, std::mem::take(&mut self.pending))?;
        }
        self.flushes += 1;
        self.now_ms = now_ms;
        Ok(())
    }

    /// Past `cache_entries` entries in memory: picks clean entries, least recently updated
    /// first, down to three quarters of the cache, and forgets them (the backend keeps them).
    /// The operator frees the returned slots without calling [`Self::remove`]. Call it right
    /// after a flush, when every entry is clean.
    pub fn evict(&mut self) -> Vec<Slot> {
        if self.resident <= self.cache_entries {
            return Vec::new();
        }
        let target = self.cache_entries / 4 * 3;
        let mut by_age: Vec<(u64, Slot)> = (0..self.slots.len())
            .filter(|&s| self.slots[s].resident && !self.slots[s].updated)
            .map(|s| (self.slots[s].touched, s as Slot))
            .collect();
        let excess = self.resident.saturating_sub(target).min(by_age.len());
        if excess < by_age.len() {
            by_age.select_nth_unstable(excess);
        }
        by_age.truncate(excess);
        let evicted: Vec<Slot> = by_age.into_iter().map(|(_, slot)| slot).collect();
        for &slot in &evicted {
            let state = &mut self.slots[slot as usize];
            state.resident = false;
            state.stored = None;
        }
        self.resident -= evicted.len();
        if !evicted.is_empty() {
            self.backend_has_more = true;
        }
        evicted
    }

    /// With a TTL: the clean entries in memory that were not updated for the TTL. The
    /// operator drops each, with [`Self::remove`] (which deletes its backend copy at the next
    /// flush), and frees its slot. Without a TTL, none.
    pub fn expired(&self) -> Vec<Slot> {
        let Some(ttl) = self.ttl_ms else { return Vec::new() };
        (0..self.slots.len())
            .filter(|&s| {
                let state = &self.slots[s];
                state.resident && !state.updated && self.updated_at[s].saturating_add(ttl) <= self.now_ms
            })
            .map(|s| s as Slot)
            .collect()
    }

    /// Whether the backend may hold entries that are not in memory (after an eviction or a
    /// restore): only then does [`Self::lookup`] ask the backend.
    pub fn lookups_needed(&self) -> bool {
        self.backend_has_more
    }

    /// The stored value of a key that is not in memory, if the backend holds it (and, with a
    /// TTL, it has not expired: an expired entry is deleted at the next flush). Without
    /// evictions or a restore, answers `None` without asking the backend.
    pub fn lookup(&mut self, key_group: u16, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        if !self.backend_has_more {
            return Ok(None);
        }
        let Some(mut value) = self.backend.get(self.namespace, key_group, key)? else { return Ok(None) };
        let Some(ttl) = self.ttl_ms else { return Ok(Some(value)) };
        let stamp: [u8; 8] = value
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| StorageError::Invalid("state table: stored value without its time".into()))?;
        if u64::from_le_bytes(stamp).saturating_add(ttl) <= self.now_ms {
            self.pending.delete(key_group, key);
            return Ok(None);
        }
        value.drain(..8);
        Ok(Some(value))
    }

    /// Visits every stored entry (key group, key, value as the operator put it) until `visit`
    /// returns false: one pass over the whole namespace, for an operator rebuilding an index
    /// of its entries after a restore. Entries staged since the last flush are not seen.
    pub fn scan_stored(&self, visit: &mut crate::keyed_state::Visitor<'_>) -> StorageResult<()> {
        let stamped = self.ttl_ms.is_some();
        self.backend.scan(self.namespace, 0..KEY_GROUPS, &[], &mut |group, key, value| {
            visit(group, key, if stamped { value.get(8..).unwrap_or_default() } else { value })
        })
    }

    /// Captures every entry as of the last flush (call it right after one, at a barrier) for a
    /// checkpoint; the handle writes them out later, off the data path.
    pub fn snapshot_handle(&self) -> StorageResult<Box<dyn StateSnapshot>> {
        self.backend.snapshot_handle(self.namespace, 0..KEY_GROUPS)
    }

    /// Replaces the table's contents with a snapshot written by a handle of
    /// [`Self::snapshot_handle`] (of this namespace or another). Memory is left empty: the
    /// operator must hold no entries, and gets them back through [`Self::lookup`].
    pub fn restore(&mut self, input: &mut dyn Read) -> StorageResult<()> {
        self.slots.clear();
        self.updated_at.clear();
        self.updated.clear();
        self.resident = 0;
        self.pending = StateWriteBatch::default();
        self.backend.restore(self.namespace, input)?;
        self.backend_has_more = true;
        Ok(())
    }

    /// Adds the entries of key groups `keep` of a snapshot (another subtask's, before a
    /// rescale) to the table; see [`KeyedStateBackend::restore_within`]. Called once per
    /// snapshot the subtask's key groups came from, on a new table (an empty namespace).
    pub fn restore_within(&mut self, input: &mut dyn Read, keep: std::ops::Range<u16>) -> StorageResult<u64> {
        if !self.slots.is_empty() || !self.pending.is_empty() {
            return Err(crate::StorageError::Invalid("a state table restored while it holds entries".into()));
        }
        let kept = self.backend.restore_within(self.namespace, input, keep)?;
        self.backend_has_more = true;
        Ok(kept)
    }
}

fn wall_clock_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::ops::Range;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::keyed_state::{InMemoryStateBackend, RocksDbStateBackend, RocksDbStateOptions, Visitor};

    const NS: StateNamespace =
        StateNamespace { job: 3, deployment: 0, vertex: 1, subtask: 2, operator_index: 0 };
    const OTHER: StateNamespace =
        StateNamespace { job: 4, deployment: 0, vertex: 1, subtask: 2, operator_index: 0 };

    /// A backend that counts the calls that reach it.
    struct Counting {
        inner: Arc<dyn KeyedStateBackend>,
        gets: AtomicUsize,
        writes: AtomicUsize,
    }

    impl KeyedStateBackend for Counting {
        fn get(&self, ns: StateNamespace, key_group: u16, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
            self.gets.fetch_add(1, Ordering::Relaxed);
            self.inner.get(ns, key_group, key)
        }
        fn write(&self, ns: StateNamespace, batch: StateWriteBatch) -> StorageResult<()> {
            self.writes.fetch_add(1, Ordering::Relaxed);
            self.inner.write(ns, batch)
        }
        fn scan(
            &self,
            ns: StateNamespace,
            groups: Range<u16>,
            prefix: &[u8],
            visit: &mut Visitor<'_>,
        ) -> StorageResult<()> {
            self.inner.scan(ns, groups, prefix, visit)
        }
        fn snapshot_handle(
            &self,
            ns: StateNamespace,
            groups: Range<u16>,
        ) -> StorageResult<Box<dyn StateSnapshot>> {
            self.inner.snapshot_handle(ns, groups)
        }
        fn restore(&self, ns: StateNamespace, input: &mut dyn Read) -> StorageResult<()> {
            self.inner.restore(ns, input)
        }
        fn restore_within(
            &self,
            ns: StateNamespace,
            input: &mut dyn Read,
            keep: Range<u16>,
        ) -> StorageResult<u64> {
            self.inner.restore_within(ns, input, keep)
        }
        fn drop_namespace(&self, ns: StateNamespace) -> StorageResult<()> {
            self.inner.drop_namespace(ns)
        }
        fn drop_job(&self, job: u64) -> StorageResult<()> {
            self.inner.drop_job(job)
        }
    }

    impl Counting {
        fn calls(&self) -> (usize, usize) {
            (self.gets.load(Ordering::Relaxed), self.writes.load(Ordering::Relaxed))
        }
    }

    /// Runs `check` against both backends, each behind a call counter.
    fn both(check: impl Fn(Arc<Counting>)) {
        let counting =
            |inner| Arc::new(Counting { inner, gets: Default::default(), writes: Default::default() });
        check(counting(Arc::new(InMemoryStateBackend::default())));
        let dir = tempfile::tempdir().expect("tempdir");
        let rocks = RocksDbStateBackend::open(dir.path(), &RocksDbStateOptions::default()).expect("open");
        check(counting(Arc::new(rocks)));
    }

    fn table(backend: &Arc<Counting>, ns: StateNamespace, options: StateTableOptions) -> StateTable {
        StateTable::new(Arc::clone(backend) as Arc<dyn KeyedStateBackend>, ns, options)
    }

    fn stored(backend: &Counting, ns: StateNamespace, group: u16, key: &str) -> Option<Vec<u8>> {
        backend.inner.get(ns, group, key.as_bytes()).expect("get")
    }

    /// Updates `slot` (key `key` in key group `key % 7`) to `value` and stages it.
    fn update(t: &mut StateTable, slot: Slot, key: &str, value: &str) {
        t.mark_updated(slot);
        t.put(slot, group(key), key.into(), value.into());
    }

    fn group(key: &str) -> u16 {
        key.bytes().map(u16::from).sum::<u16>() % 7
    }

    #[test]
    fn updates_are_written_in_one_batch_per_flush_and_removals_deleted() {
        both(|b| {
            let mut t = table(&b, NS, StateTableOptions::cached(100));
            for slot in [0, 1, 0, 0, 1, 2] {
                t.mark_updated(slot);
            }
            assert_eq!(t.take_updated(), [0, 1, 2], "each updated slot once, in order");
            assert_eq!(t.take_updated(), Vec::<Slot>::new());
            assert_eq!(t.len(), 3);
            t.put(0, group("a"), b"a".to_vec(), b"1".to_vec());
            t.put(1, group("b"), b"b".to_vec(), b"2".to_vec());
            assert_eq!(stored(&b, NS, group("a"), "a"), None, "nothing is written before the flush");
            t.flush().expect("flush");
            assert_eq!(b.calls(), (0, 1));
            assert_eq!(stored(&b, NS, group("a"), "a"), Some(b"1".to_vec()), "values are stored as given");
            assert_eq!(stored(&b, NS, group("b"), "b"), Some(b"2".to_vec()));
            // A removed entry is deleted at the next flush; one never stored costs nothing.
            t.remove(1, b"b");
            t.remove(2, b"c");
            t.mark_updated(2);
            t.remove(2, b"c");
            assert_eq!(t.take_updated(), Vec::<Slot>::new(), "removed slots are not updated ones");
            assert_eq!(t.len(), 1);
            t.flush().expect("flush");
            assert_eq!(stored(&b, NS, group("b"), "b"), None);
            // Nothing was evicted or restored: lookups do not reach the backend.
            assert!(!t.lookups_needed());
            assert_eq!(t.lookup(group("a"), b"a").expect("lookup"), None);
            t.flush().expect("an empty flush");
            assert_eq!(b.calls(), (0, 2), "no get, and no write for an empty flush");
        });
    }

    #[test]
    fn eviction_frees_the_least_recently_updated_clean_entries() {
        both(|b| {
            let mut t = table(&b, NS, StateTableOptions::cached(4));
            for (slot, key) in [(0, "k0"), (1, "k1"), (2, "k2")] {
                update(&mut t, slot, key, &format!("{key}@1"));
            }
            t.take_updated();
            t.flush().expect("flush");
            for (slot, key) in [(3, "k3"), (4, "k4"), (5, "k5")] {
                update(&mut t, slot, key, &format!("{key}@2"));
            }
            t.take_updated();
            t.flush().expect("flush");
            update(&mut t, 0, "k0", "k0@3");
            t.take_updated();
            t.flush().expect("flush");
            update(&mut t, 5, "k5", "dirty");
            // Six entries over a cache of 4: down to 3, the oldest clean ones first; k0 was
            // updated last, k5 is dirty.
            let mut evicted = t.evict();
            evicted.sort_unstable();
            assert_eq!(evicted.len(), 3, "{evicted:?}");
            assert!(evicted.starts_with(&[1, 2]) && !evicted.contains(&0) && !evicted.contains(&5));
            assert_eq!(t.len(), 3);
            assert!(t.lookups_needed());
            assert_eq!(t.lookup(group("k1"), b"k1").expect("lookup"), Some(b"k1@1".to_vec()));
            assert_eq!(t.lookup(group("nope"), b"nope").expect("lookup"), None);
            t.mark_loaded(1, group("k1"));
            assert_eq!(t.len(), 4);
            assert_eq!(t.evict(), Vec::<Slot>::new(), "within the cache");
            // A loaded entry is stored: removing it deletes it.
            t.remove(1, b"k1");
            assert_eq!(t.take_updated(), [5]);
            t.flush().expect("flush");
            assert_eq!(stored(&b, NS, group("k1"), "k1"), None);
        });
    }

    #[test]
    fn a_snapshot_restores_into_another_table_and_entries_come_back_on_lookup() {
        both(|b| {
            let mut t = table(&b, NS, StateTableOptions::cached(100));
            for i in 0..20u32 {
                update(&mut t, i, &format!("k{i}"), &format!("v{i}"));
            }
            t.take_updated();
            t.flush().expect("flush");
            let handle = t.snapshot_handle().expect("snapshot");
            // Changes after the snapshot are not in it.
            update(&mut t, 3, "k3", "later");
            t.remove(4, b"k4");
            t.take_updated();
            t.flush().expect("flush");
            let mut image = Vec::new();
            handle.write_to(&mut image).expect("write");
            let memory = Counting {
                inner: Arc::new(InMemoryStateBackend::default()),
                gets: Default::default(),
                writes: Default::default(),
            };
            for into in [Arc::clone(&b), Arc::new(memory)] {
                let mut copy = table(&into, OTHER, StateTableOptions::cached(100));
                update(&mut copy, 0, "stale", "gone after the restore");
                copy.flush().expect("flush");
                copy.restore(&mut image.as_slice()).expect("restore");
                assert!(copy.is_empty() && copy.lookups_needed());
                assert_eq!(copy.lookup(group("k3"), b"k3").expect("lookup"), Some(b"v3".to_vec()));
                assert_eq!(copy.lookup(group("k4"), b"k4").expect("lookup"), Some(b"v4".to_vec()));
                assert_eq!(copy.lookup(group("stale"), b"stale").expect("lookup"), None);
            }
            assert!(table(&b, NS, StateTableOptions::cached(1)).restore(&mut &image[..9]).is_err());
        });
    }

    #[test]
    fn entries_not_updated_for_the_ttl_expire_in_memory_and_in_the_backend() {
        both(|b| {
            let options = StateTableOptions { cache_entries: 1, ttl: Some(Duration::from_millis(1000)) };
            let mut t = table(&b, NS, options);
            t.flush_at(10_000).expect("flush");
            update(&mut t, 0, "a", "a1");
            update(&mut t, 1, "b", "b1");
            t.take_updated();
            t.flush_at(10_500).expect("flush");
            assert_eq!(t.expired(), Vec::<Slot>::new());
            // Both leave memory (a cache of 1 keeps none after a flush).
            let mut evicted = t.evict();
            evicted.sort_unstable();
            assert_eq!(evicted, [0, 1]);
            // `a` is young enough; it comes back and is updated.
            assert_eq!(t.lookup(group("a"), b"a").expect("lookup"), Some(b"a1".to_vec()));
            t.mark_loaded(0, group("a"));
            update(&mut t, 0, "a", "a2");
            t.take_updated();
            t.flush_at(11_200).expect("flush");
            // `b` was last updated at 10 000: expired, and deleted from the backend.
            assert_eq!(t.lookup(group("b"), b"b").expect("lookup"), None);
            t.flush_at(11_300).expect("flush");
            assert_eq!(stored(&b, NS, group("b"), "b"), None);
            // `a` was last updated in the interval that began at 10 500.
            assert_eq!(t.expired(), Vec::<Slot>::new());
            t.flush_at(11_600).expect("flush");
            assert_eq!(t.expired(), [0]);
            t.remove(0, b"a");
            t.flush_at(11_700).expect("flush");
            assert_eq!(stored(&b, NS, group("a"), "a"), None);
            assert!(t.is_empty());
        });
    }
}
