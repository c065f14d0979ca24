//! [`KeyedRows`]: a multiset of rows grouped by key, with the keyed state backend behind an
//! in-memory cache of whole keys. One side of a join keeps its rows by join key in one;
//! Top-N keeps each partition's rows, ordered, in one.
//!
//! These operators read all rows of one key at a time (a join matches a change against the
//! other side's rows of its key; Top-N ranks a partition), so the cache holds keys, not
//! single rows: a key is either resident with every row it has, or absent (and then, once
//! something was evicted or restored, loaded from the backend with one prefix scan of its
//! key group). A key's rows are ordered by their bytes (Arrow's row format orders bytes as
//! it orders values). Each stored row carries its multiplicity, so duplicates and
//! retractions are exact, and an operator-defined count — a join's *degree*: how many rows
//! of the other side match it, with their multiplicity.
//!
//! Changes are tracked per row and written on checkpoint barriers, on any barrier when the
//! cache is over its limit, and within an epoch once it holds [`EPOCH_SLACK`] times its limit
//! ([`KeyedRows::flush`], [`KeyedRows::over_memory_limit`]): the rows in memory stay
//! bounded by the cache however many an epoch brings. A stored row whose count drops to
//! zero stays as a tombstone until then, so its delete is written too, while a row that came
//! and went in between is forgotten at the next barrier ([`KeyedRows::drop_gone`]). Between
//! checkpoints the backend is read only by the operator itself, for keys it evicted, and
//! those are clean. Eviction happens right after a flush, when every key is clean. A row's bytes are shared
//! (`Arc`) by the map, the list of changed rows and the operators' lists of candidates, so
//! that tracking or matching a row never copies it.
//!
//! Stored layout, under the join's namespace and the row's key group:
//! `tag (1 byte: a join's side) | key length (u32 LE) | key bytes | row bytes` → `count | degree | expires` (each i64 LE),
//! where key and row bytes are Arrow's row format of the key columns and of the whole row.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::common::hash_utils::RandomState;

use weir_storage::keyed_state::{KeyedStateBackend, StateNamespace, StateWriteBatch};

use crate::error::{ExecError, ExecResult};

mod row_map;
pub mod snapshot;

pub use row_map::RowMap;

/// How far past the cache size the rows in memory may grow between two barriers before
/// they are written and evicted early. Not at the cache size itself: an interval join's
/// rows mostly expire within a few epochs of arriving, and a row that comes and goes
/// between two flushes is never written, while one written early must be read back and
/// deleted when it expires (q9 with a 100,000-row cache ran at half the speed when writing
/// at twice the cache, for no less memory).
pub const EPOCH_SLACK: usize = 4;

/// A stored row's multiplicity and degree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowState {
    /// Copies of the row (0: deleted since the last flush; removed then).
    pub count: i64,
    /// Rows of the other side matching it, with their multiplicity (only where tracked).
    pub degree: i64,
    /// The row is dropped once the operator's clock passes this (`i64::MAX`: never). The
    /// clock is the operator's: event time for an interval join, wall time for a TTL.
    pub expires: i64,
    /// Changed since the last flush (and listed in the key's `dirty`).
    dirty: bool,
    /// The backend holds the row: a row that comes and goes between two flushes (an
    /// interval join's row that expires within the epoch it arrived in) is never written,
    /// and so needs no delete either.
    stored: bool,
}

impl Default for RowState {
    fn default() -> Self {
        Self { count: 0, degree: 0, expires: i64::MAX, dirty: false, stored: false }
    }
}

/// The rows of one key.
#[derive(Debug, Default)]
pub struct RowsOfKey {
    pub rows: RowMap,
    key_group: u16,
    /// Rows changed since the last flush.
    dirty: Vec<Arc<[u8]>>,
    /// The flush count when the key was last used: eviction order.
    touched: u64,
    /// The earliest expiry bucket the key is listed under in `KeyedRows::by_expiry` since
    /// it was loaded or last swept (`None`: not listed since), so that a key is listed
    /// once per bucket rather than once per row.
    listed: Option<i64>,
}

impl RowsOfKey {
    /// The rows present (count > 0), in order, with their state.
    pub fn live(&self) -> impl Iterator<Item = (&[u8], RowState)> {
        self.live_shared().map(|(r, s)| (r.as_ref(), s))
    }

    /// [`Self::live`], each row's bytes shared rather than borrowed.
    pub fn live_shared(&self) -> impl Iterator<Item = (&Arc<[u8]>, RowState)> {
        self.rows.iter().filter(|(_, s)| s.count > 0).map(|(r, s)| (r, *s))
    }
}

pub struct KeyedRows {
    /// The first byte of every stored key (0 and 1 for a join's left and right side), so
    /// that several of these share one namespace.
    side: u8,
    /// Each key's rows behind a pointer: most keys have one row, and the table's slots,
    /// twice as many as keys right after it grows, stay small.
    keys: HashMap<Box<[u8]>, Box<RowsOfKey>, RandomState>,
    /// Keys with changes since the last flush.
    dirty_keys: Vec<Box<[u8]>>,
    /// Live rows (count > 0) in memory, for eviction.
    cached_rows: usize,
    /// Distinct live rows of this side, in memory or not (for `weir_catalog.tasks`).
    pub total_rows: u64,
    /// The backend may hold keys that are not in memory (after an eviction or a restore).
    backend_has_more: bool,
    flushes: u64,
    /// A full snapshot of this side was taken since it started or was restored, so that
    /// the next may be a delta (see [`snapshot`]).
    has_full_snapshot: bool,
    /// Kept in memory only: changes are tracked for delta snapshots once a full one was
    /// taken (before, every row is in the next full snapshot anyway, and without
    /// checkpoints nothing would ever clear the lists).
    in_memory: bool,
    /// Keys holding rows that expire, by expiry (rounded up to [`EXPIRY_GRANULE`]): where
    /// [`Self::expire`] looks, so that it never walks rows that cannot have expired. A key
    /// may be listed more than once, or after its rows are gone.
    by_expiry: BTreeMap<i64, Vec<Box<[u8]>>>,
}

/// Expiry times are grouped into buckets this wide (in the operator's clock units), so a
/// busy key is listed once per bucket rather than once per row.
const EXPIRY_GRANULE: i64 = 1 << 17;

impl KeyedRows {
    pub fn new(tag: u8) -> Self {
        let side = tag;
        Self {
            side,
            keys: HashMap::default(),
            dirty_keys: Vec::new(),
            cached_rows: 0,
            total_rows: 0,
            backend_has_more: false,
            flushes: 0,
            has_full_snapshot: false,
            in_memory: false,
            by_expiry: BTreeMap::new(),
        }
    }

    /// A side kept in memory only (see [`snapshot`]).
    pub fn kept_in_memory(mut self) -> Self {
        self.in_memory = true;
        self
    }

    /// Whether changes are listed for the next flush or delta.
    fn tracks_changes(&self) -> bool {
        !self.in_memory || self.has_full_snapshot
    }

    fn prefix(&self, key: &[u8]) -> Vec<u8> {
        prefix_of(self.side, key)
    }

    /// Makes `key` resident (loading its rows from the backend if it may hold them) and
    /// returns its rows, to change them.
    pub fn load(
        &mut self,
        backend: &dyn KeyedStateBackend,
        ns: StateNamespace,
        key_group: u16,
        key: &[u8],
    ) -> ExecResult<&mut RowsOfKey> {
        if !self.keys.contains_key(key) {
            let entry = match self.backend_has_more {
                true => self.read_from_backend(backend, ns, key_group, key)?,
                false => RowsOfKey { key_group, ..Default::default() },
            };
            self.cached_rows += entry.rows.len();
            self.keys.insert(key.into(), Box::new(entry));
        }
        let flushes = self.flushes;
        let entry = self
            .keys
            .get_mut(key)
            .ok_or_else(|| ExecError::Internal("keyed rows: a loaded key is missing".into()))?;
        entry.touched = flushes;
        Ok(entry)
    }

    /// The rows of `key`, to read them: resident, or loaded from the backend if it may hold
    /// them. A key without rows is not cached (a join probing keys the other side never had
    /// would otherwise fill memory with empty entries).
    pub fn peek(
        &mut self,
        backend: &dyn KeyedStateBackend,
        ns: StateNamespace,
        key_group: u16,
        key: &[u8],
    ) -> ExecResult<Option<&RowsOfKey>> {
        if !self.keys.contains_key(key) {
            if !self.backend_has_more {
                return Ok(None);
            }
            let entry = self.read_from_backend(backend, ns, key_group, key)?;
            if entry.rows.is_empty() {
                return Ok(None);
            }
            self.cached_rows += entry.rows.len();
            self.keys.insert(key.into(), Box::new(entry));
        }
        let flushes = self.flushes;
        Ok(self.keys.get_mut(key).map(|entry| {
            entry.touched = flushes;
            &**entry
        }))
    }

    fn read_from_backend(
        &self,
        backend: &dyn KeyedStateBackend,
        ns: StateNamespace,
        key_group: u16,
        key: &[u8],
    ) -> ExecResult<RowsOfKey> {
        let mut entry = RowsOfKey { key_group, ..Default::default() };
        let prefix = self.prefix(key);
        let mut corrupt = false;
        backend.scan(ns, key_group..key_group + 1, &prefix, &mut |_, stored, value| {
            match (stored.get(prefix.len()..), decode_value(value)) {
                (Some(row), Some((count, degree, expires))) if count > 0 => {
                    entry.rows.insert(
                        Arc::from(row),
                        RowState { count, degree, expires, dirty: false, stored: true },
                    );
                }
                _ => corrupt = true,
            }
            !corrupt
        })?;
        if corrupt {
            return Err(ExecError::Internal("keyed rows: a stored row is corrupt".into()));
        }
        Ok(entry)
    }

    /// The resident rows of `key` (call [`Self::load`] first).
    pub fn get(&self, key: &[u8]) -> Option<&RowsOfKey> {
        self.keys.get(key).map(|entry| &**entry)
    }

    /// Adds `delta` copies of `row` under the resident `key`, setting its degree and when it
    /// expires (`i64::MAX`: never). A delete of a row the side does not hold is an error: the
    /// input's changelog is inconsistent.
    pub fn apply(&mut self, key: &[u8], row: &[u8], delta: i64, degree: i64, expires: i64) -> ExecResult<()> {
        let tracking = self.tracks_changes();
        let entry = self.keys.get_mut(key).ok_or_else(not_loaded)?;
        let shared = match entry.rows.get_key_value(row) {
            Some((stored, _)) => Arc::clone(stored),
            None => Arc::from(row),
        };
        let state = entry.rows.get_or_insert_default(Arc::clone(&shared));
        let before = state.count;
        let after = before + delta;
        if after < 0 {
            return Err(ExecError::Internal(
                "join input retracted a row it never inserted (inconsistent changelog)".into(),
            ));
        }
        if after == 0 && !state.stored {
            // Came and went since the last flush: nothing to write, so it goes now. A copy
            // of its `Arc` in `dirty` is left without the map's and skipped.
            entry.rows.remove(row);
            if entry.rows.is_empty() && entry.dirty.is_empty() {
                self.keys.remove(key);
            }
            self.count_live(before > 0, false);
            return Ok(());
        }
        state.count = after;
        state.degree = degree;
        let relist = expires != i64::MAX && after > 0 && state.expires != expires;
        state.expires = expires;
        let newly_dirty = tracking && !state.dirty;
        state.dirty |= tracking;
        if relist {
            let bucket = bucket_of(expires);
            if entry.listed.is_none_or(|listed| bucket < listed) {
                entry.listed = Some(bucket);
                self.by_expiry.entry(bucket).or_default().push(key.into());
            }
        }
        if newly_dirty {
            if entry.dirty.is_empty() {
                self.dirty_keys.push(key.into());
            }
            entry.dirty.push(shared);
        }
        self.count_live(before > 0, after > 0);
        Ok(())
    }

    /// Keeps the live-row counters as a row goes from present or not to present or not.
    fn count_live(&mut self, was_live: bool, is_live: bool) {
        match (was_live, is_live) {
            (false, true) => {
                self.cached_rows += 1;
                self.total_rows += 1;
            }
            (true, false) => {
                self.cached_rows -= 1;
                self.total_rows = self.total_rows.saturating_sub(1);
            }
            _ => {}
        }
    }

    /// Adds `delta` to the degree of `row` under the resident `key`.
    pub fn add_degree(&mut self, key: &[u8], row: &[u8], delta: i64) -> ExecResult<()> {
        let tracking = self.tracks_changes();
        let entry = self.keys.get_mut(key).ok_or_else(not_loaded)?;
        let (shared, was_dirty) = match entry.rows.get_key_value(row) {
            Some((stored, state)) => (Arc::clone(stored), state.dirty || !tracking),
            None => return Err(ExecError::Internal("join state: a matched row is missing".into())),
        };
        if let Some(state) = entry.rows.get_mut(row) {
            state.degree += delta;
            state.dirty |= tracking;
        }
        if !was_dirty {
            if entry.dirty.is_empty() {
                self.dirty_keys.push(key.into());
            }
            entry.dirty.push(shared);
        }
        Ok(())
    }

    /// Hands every change since the last flush to `sink` (puts, and deletes of stored rows
    /// that are gone); drops tombstones and keys left empty. The rows are then clean and
    /// stored: in the backend, or in the checkpoint chain of a side kept in memory.
    pub fn flush(&mut self, sink: &mut dyn ChangeSink) {
        for key in std::mem::take(&mut self.dirty_keys) {
            let prefix = self.prefix(&key);
            let Some(entry) = self.keys.get_mut(&key) else { continue };
            for row in std::mem::take(&mut entry.dirty) {
                if is_gone(&row) {
                    continue;
                }
                match entry.rows.get_mut(&row) {
                    Some(state) if state.count > 0 => {
                        state.dirty = false;
                        state.stored = true;
                        sink.put(
                            entry.key_group,
                            &prefix,
                            &row,
                            encode_value(state.count, state.degree, state.expires),
                        );
                    }
                    Some(state) if !state.stored => {
                        entry.rows.remove(&row);
                    }
                    Some(_) => {
                        entry.rows.remove(&row);
                        sink.delete(entry.key_group, &prefix, &row);
                    }
                    None => {}
                }
            }
            if entry.rows.is_empty() {
                self.keys.remove(&key);
            }
        }
        self.flushes += 1;
    }

    /// Hands every live row to `sink` (a full snapshot of a side kept in memory): all rows
    /// are clean and stored afterwards, tombstones and pending changes gone.
    pub fn write_all(&mut self, sink: &mut dyn ChangeSink) {
        self.dirty_keys.clear();
        let side = self.side;
        self.keys.retain(|key, entry| {
            entry.dirty.clear();
            entry.rows.retain(|_, state| state.count > 0);
            let prefix = prefix_of(side, key);
            for (row, state) in entry.rows.iter_mut() {
                state.dirty = false;
                state.stored = true;
                sink.put(
                    entry.key_group,
                    &prefix,
                    row,
                    encode_value(state.count, state.degree, state.expires),
                );
            }
            !entry.rows.is_empty()
        });
        self.flushes += 1;
        self.has_full_snapshot = true;
    }

    /// Between checkpoints: forgets the pending changes of rows that came and went since
    /// the last flush (they left the map when their count reached zero, and the backend
    /// never had them, so they need no delete); every other change stays to be written by
    /// the next [`Self::flush`]. Cheap: a gone row is one whose `Arc` only `dirty` holds.
    pub fn drop_gone(&mut self) {
        let mut still_dirty = Vec::with_capacity(self.dirty_keys.len());
        for key in std::mem::take(&mut self.dirty_keys) {
            let Some(entry) = self.keys.get_mut(&key) else { continue };
            entry.dirty.retain(|row| !is_gone(row));
            match (entry.dirty.is_empty(), entry.rows.is_empty()) {
                (_, true) => {
                    self.keys.remove(&key);
                }
                (false, false) => still_dirty.push(key),
                (true, false) => {}
            }
        }
        self.dirty_keys = still_dirty;
        self.flushes += 1;
    }

    /// Whether more than `limit` rows are in memory: the next barrier must flush, so that
    /// keys can be evicted.
    pub fn over_cache(&self, limit: usize) -> bool {
        self.cached_rows > limit
    }

    /// Whether the rows in memory have reached [`EPOCH_SLACK`] times `limit` within an
    /// epoch: the operator then writes its changes and evicts before the next barrier, so
    /// that memory stays bounded by the cache however many rows an epoch brings.
    pub fn over_memory_limit(&self, limit: usize) -> bool {
        self.cached_rows > limit.saturating_mul(EPOCH_SLACK)
    }

    /// Past `limit` rows in memory, forgets the least recently used keys (all clean: call it
    /// right after [`Self::flush`]) down to three quarters of it; the backend keeps them.
    pub fn evict(&mut self, limit: usize) {
        if self.cached_rows <= limit {
            return;
        }
        let target = limit / 4 * 3;
        let mut by_age: Vec<(u64, Box<[u8]>)> =
            self.keys.iter().map(|(k, e)| (e.touched, k.clone())).collect();
        by_age.sort_unstable_by_key(|(touched, _)| *touched);
        for (_, key) in by_age {
            if self.cached_rows <= target {
                break;
            }
            if let Some(entry) = self.keys.remove(&key) {
                self.cached_rows -= entry.rows.len();
                self.backend_has_more = true;
            }
        }
    }

    /// Forgets every row (a full snapshot is restored next).
    pub fn clear(&mut self) {
        self.keys.clear();
        self.dirty_keys.clear();
        self.by_expiry.clear();
        self.cached_rows = 0;
        self.total_rows = 0;
        self.backend_has_more = false;
        self.has_full_snapshot = false;
    }

    /// Sets `row` of `key` to a restored state (`None`: the row is gone), clean and stored.
    pub fn restore_row(&mut self, key_group: u16, key: &[u8], row: &[u8], value: Option<(i64, i64, i64)>) {
        let entry = match self.keys.get_mut(key) {
            Some(entry) => entry,
            None => self
                .keys
                .entry(key.into())
                .or_insert_with(|| Box::new(RowsOfKey { key_group, ..Default::default() })),
        };
        let was_live = entry.rows.get(row).is_some_and(|s| s.count > 0);
        let is_live = match value {
            Some((count, degree, expires)) if count > 0 => {
                let state = RowState { count, degree, expires, dirty: false, stored: true };
                entry.rows.insert(Arc::from(row), state);
                if expires != i64::MAX {
                    let bucket = bucket_of(expires);
                    if entry.listed.is_none_or(|listed| bucket < listed) {
                        entry.listed = Some(bucket);
                        self.by_expiry.entry(bucket).or_default().push(key.into());
                    }
                }
                true
            }
            _ => {
                entry.rows.remove(row);
                if entry.rows.is_empty() {
                    self.keys.remove(key);
                }
                false
            }
        };
        self.count_live(was_live, is_live);
    }

    /// Moves every row of this side the backend holds into memory (a side kept in memory
    /// restoring a backend snapshot); the caller drops the namespace after.
    pub fn load_all_from_backend(
        &mut self,
        backend: &dyn KeyedStateBackend,
        ns: StateNamespace,
    ) -> ExecResult<()> {
        let mut rows = Vec::new();
        let mut corrupt = false;
        backend.scan(ns, 0..weir_plan::KEY_GROUPS, &[self.side], &mut |group, stored, value| {
            let len = stored.get(1..5).and_then(|l| l.try_into().ok()).map(u32::from_le_bytes);
            let parts =
                len.and_then(|len| Some((stored.get(5..5 + len as usize)?, stored.get(5 + len as usize..)?)));
            match (parts, decode_value(value)) {
                (Some((key, row)), Some(value)) => rows.push((group, key.to_vec(), row.to_vec(), value)),
                _ => corrupt = true,
            }
            !corrupt
        })?;
        if corrupt {
            return Err(ExecError::Internal("keyed rows: a stored row is corrupt".into()));
        }
        for (group, key, row, value) in rows {
            self.restore_row(group, &key, &row, Some(value));
        }
        Ok(())
    }

    /// Forgets everything in memory: the backend now holds the side's state (a restore).
    /// Rows that expire are indexed again from the backend.
    pub fn reset_to_backend(
        &mut self,
        backend: &dyn KeyedStateBackend,
        ns: StateNamespace,
        total_rows: Option<u64>,
    ) -> ExecResult<()> {
        self.keys.clear();
        self.dirty_keys.clear();
        self.by_expiry.clear();
        self.cached_rows = 0;
        self.backend_has_more = true;
        let mut by_expiry: BTreeMap<i64, Vec<Box<[u8]>>> = BTreeMap::new();
        let mut counted = 0u64;
        backend.scan(ns, 0..weir_plan::KEY_GROUPS, &[self.side], &mut |_, stored, value| {
            counted += 1;
            let key = stored
                .get(1..5)
                .and_then(|l| l.try_into().ok())
                .map(|l| u32::from_le_bytes(l) as usize)
                .and_then(|len| stored.get(5..5 + len));
            if let (Some(key), Some((_, _, expires))) = (key, decode_value(value)) {
                if expires != i64::MAX {
                    let bucket = bucket_of(expires);
                    let keys = by_expiry.entry(bucket).or_default();
                    if keys.last().is_none_or(|last| **last != *key) {
                        keys.push(key.into());
                    }
                }
            }
            true
        })?;
        self.by_expiry = by_expiry;
        // Every stored entry is one distinct row.
        self.total_rows = total_rows.unwrap_or(counted);
        Ok(())
    }

    /// Drops every row whose expiry is before `now` (deletes written at the next flush);
    /// returns how many distinct rows went. Walks only keys listed with expiries before
    /// `now`, loading evicted ones from the backend; `key_group` gives a key's key group.
    pub fn expire(
        &mut self,
        backend: &dyn KeyedStateBackend,
        ns: StateNamespace,
        now: i64,
        key_group: &dyn Fn(&[u8]) -> ExecResult<u16>,
    ) -> ExecResult<u64> {
        let mut dropped = 0;
        for key in self.take_due(now) {
            let group = self.key_group_of(&key, key_group)?;
            dropped += self.expire_key(backend, ns, group, &key, now)?;
        }
        Ok(dropped)
    }

    /// The keys that may hold rows expiring before `now` (each once), no longer listed:
    /// the caller passes each to [`Self::expire_key`].
    pub fn take_due(&mut self, now: i64) -> Vec<Box<[u8]>> {
        // Bucket `b` holds expiries in `((b - 1) * G, b * G]`: every row of the buckets
        // below `ceil(now / G)` expires before `now`; a partly passed bucket waits.
        let due = now.saturating_add(EXPIRY_GRANULE - 1).div_euclid(EXPIRY_GRANULE);
        let later = self.by_expiry.split_off(&due);
        let buckets = std::mem::replace(&mut self.by_expiry, later);
        let mut keys: Vec<Box<[u8]>> = buckets.into_values().flatten().collect();
        keys.sort_unstable();
        keys.dedup();
        for key in &keys {
            if let Some(entry) = self.keys.get_mut(key) {
                entry.listed = None;
            }
        }
        keys
    }

    /// The key group of `key`: its entry's if resident, else computed by `key_group`.
    pub fn key_group_of(&self, key: &[u8], key_group: &dyn Fn(&[u8]) -> ExecResult<u16>) -> ExecResult<u16> {
        match self.keys.get(key) {
            Some(entry) => Ok(entry.key_group),
            None => key_group(key),
        }
    }

    /// Loads `key` and drops its rows that expire before `now`; returns how many went. One
    /// pass over the key's rows, which also finds when the next of them expires.
    pub fn expire_key(
        &mut self,
        backend: &dyn KeyedStateBackend,
        ns: StateNamespace,
        key_group: u16,
        key: &[u8],
        now: i64,
    ) -> ExecResult<u64> {
        if self.peek(backend, ns, key_group, key)?.is_none() {
            return Ok(0);
        }
        let tracking = self.tracks_changes();
        let Some(RowsOfKey { rows, dirty, listed, .. }) = self.keys.get_mut(key).map(|entry| &mut **entry)
        else {
            return Ok(0);
        };
        let was_clean = dirty.is_empty();
        let mut expired = 0u64;
        let mut next = i64::MAX;
        rows.retain(|row, state| {
            if state.count == 0 {
                return true;
            }
            if state.expires >= now {
                next = next.min(state.expires);
                return true;
            }
            expired += 1;
            if !state.stored {
                return false;
            }
            state.count = 0;
            state.expires = i64::MAX;
            if tracking && !state.dirty {
                state.dirty = true;
                dirty.push(Arc::clone(row));
            }
            true
        });
        // Rows that expire later keep the key listed, under the earliest of their buckets.
        let relist = (next != i64::MAX).then(|| bucket_of(next)).filter(|&b| listed.is_none_or(|l| b < l));
        if let Some(bucket) = relist {
            *listed = Some(bucket);
        }
        let now_dirty = !dirty.is_empty();
        if rows.is_empty() && !now_dirty {
            self.keys.remove(key);
        }
        if let Some(bucket) = relist {
            self.by_expiry.entry(bucket).or_default().push(key.into());
        }
        if was_clean && now_dirty {
            self.dirty_keys.push(key.into());
        }
        self.cached_rows -= expired as usize;
        self.total_rows = self.total_rows.saturating_sub(expired);
        Ok(expired)
    }

    /// Keys in memory.
    #[cfg(test)]
    pub fn resident_keys(&self) -> usize {
        self.keys.len()
    }

    /// Rows in memory.
    pub fn cached_rows(&self) -> usize {
        self.cached_rows
    }
}

/// Writes the changes of `states` (a join's two sides, or a Top-N's one) since their last
/// flush to `backend` in one batch, then evicts keys past `limit` rows from each. Called at
/// barriers, and between them once a state is over [`KeyedRows::over_memory_limit`]: the
/// backend is the operator's working copy (a checkpoint snapshots it at the barrier, after
/// the flush), so changes may reach it at any time.
pub fn write_and_evict(
    states: &mut [KeyedRows],
    backend: &dyn KeyedStateBackend,
    ns: StateNamespace,
    limit: usize,
) -> ExecResult<()> {
    let mut batch = StateWriteBatch::default();
    for state in states.iter_mut() {
        state.flush(&mut batch);
    }
    if !batch.is_empty() {
        backend.write(ns, batch)?;
    }
    for state in states.iter_mut() {
        state.evict(limit);
    }
    Ok(())
}

/// Where [`KeyedRows::flush`] and [`KeyedRows::write_all`] send rows: a backend's write
/// batch, or the entries of a checkpoint of a side kept in memory. `prefix` is the side's
/// tag and the key (see the module docs for the layout).
pub trait ChangeSink {
    fn put(&mut self, key_group: u16, prefix: &[u8], row: &Arc<[u8]>, value: [u8; 24]);
    fn delete(&mut self, key_group: u16, prefix: &[u8], row: &Arc<[u8]>);
}

impl ChangeSink for StateWriteBatch {
    fn put(&mut self, key_group: u16, prefix: &[u8], row: &Arc<[u8]>, value: [u8; 24]) {
        StateWriteBatch::put(self, key_group, [prefix, row].concat(), value.to_vec());
    }

    fn delete(&mut self, key_group: u16, prefix: &[u8], row: &Arc<[u8]>) {
        StateWriteBatch::delete(self, key_group, [prefix, row].concat());
    }
}

/// A stored key's prefix: the side's tag and the key, length first.
fn prefix_of(side: u8, key: &[u8]) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(5 + key.len());
    prefix.push(side);
    prefix.extend_from_slice(&(key.len() as u32).to_le_bytes());
    prefix.extend_from_slice(key);
    prefix
}

/// A row listed in a key's `dirty` that has left the map since (only the list holds it).
fn is_gone(row: &Arc<[u8]>) -> bool {
    Arc::strong_count(row) == 1
}

/// The expiry bucket of a time: bucket `b` holds `((b - 1) * G, b * G]`.
fn bucket_of(expires: i64) -> i64 {
    expires.saturating_add(EXPIRY_GRANULE - 1).div_euclid(EXPIRY_GRANULE)
}

fn not_loaded() -> ExecError {
    ExecError::Internal("join state: key not loaded".into())
}

fn encode_value(count: i64, degree: i64, expires: i64) -> [u8; 24] {
    let mut value = [0u8; 24];
    value[..8].copy_from_slice(&count.to_le_bytes());
    value[8..16].copy_from_slice(&degree.to_le_bytes());
    value[16..].copy_from_slice(&expires.to_le_bytes());
    value
}

fn decode_value(value: &[u8]) -> Option<(i64, i64, i64)> {
    let count = i64::from_le_bytes(value.get(..8)?.try_into().ok()?);
    let degree = i64::from_le_bytes(value.get(8..16)?.try_into().ok()?);
    let expires = i64::from_le_bytes(value.get(16..24)?.try_into().ok()?);
    Some((count, degree, expires))
}

#[cfg(test)]
mod tests {
    use weir_storage::keyed_state::InMemoryStateBackend;

    use super::*;

    const NS: StateNamespace =
        StateNamespace { job: 1, deployment: 0, vertex: 2, subtask: 0, operator_index: 0 };

    fn rows(side: &KeyedRows, key: &[u8]) -> Vec<(Vec<u8>, i64, i64)> {
        let mut rows: Vec<_> = side
            .get(key)
            .map(|e| e.live().map(|(r, s)| (r.to_vec(), s.count, s.degree)).collect())
            .unwrap_or_default();
        rows.sort();
        rows
    }

    #[test]
    fn rows_come_back_from_the_backend_after_eviction_with_counts_and_degrees() {
        let backend = InMemoryStateBackend::default();
        let mut side = KeyedRows::new(0);
        for (key, group) in [(b"k1", 3u16), (b"k2", 7)] {
            side.load(&backend, NS, group, key).unwrap();
            side.apply(key, b"row-a", 2, 1, i64::MAX).unwrap();
            side.apply(key, b"row-b", 1, 0, i64::MAX).unwrap();
        }
        side.apply(b"k1", b"row-b", -1, 0, i64::MAX).unwrap();
        assert_eq!(side.total_rows, 3);
        let mut batch = StateWriteBatch::default();
        side.flush(&mut batch);
        backend.write(NS, batch).unwrap();
        side.evict(1);
        assert_eq!(side.cached_rows(), 0);
        assert!(side.get(b"k1").is_none());

        side.load(&backend, NS, 3, b"k1").unwrap();
        side.load(&backend, NS, 7, b"k2").unwrap();
        assert_eq!(rows(&side, b"k1"), vec![(b"row-a".to_vec(), 2, 1)]);
        assert_eq!(rows(&side, b"k2"), vec![(b"row-a".to_vec(), 2, 1), (b"row-b".to_vec(), 1, 0)]);
        // The same key bytes on the other side are another entry.
        let mut other = KeyedRows::new(1);
        other.reset_to_backend(&backend, NS, Some(0)).unwrap();
        assert!(other.load(&backend, NS, 3, b"k1").unwrap().rows.is_empty());
    }

    #[test]
    fn a_row_that_comes_and_goes_between_flushes_is_never_written() {
        let backend = InMemoryStateBackend::default();
        let mut side = KeyedRows::new(0);
        side.load(&backend, NS, 0, b"k").unwrap();
        side.apply(b"k", b"brief", 1, 0, i64::MAX).unwrap();
        side.apply(b"k", b"kept", 1, 0, i64::MAX).unwrap();
        side.apply(b"k", b"brief", -1, 0, i64::MAX).unwrap();
        let mut batch = StateWriteBatch::default();
        side.flush(&mut batch);
        assert_eq!(batch.changes.len(), 1, "only the kept row is written; the brief one needs no delete");
        backend.write(NS, batch).unwrap();
        // A stored row that goes is deleted.
        side.apply(b"k", b"kept", -1, 0, i64::MAX).unwrap();
        let mut batch = StateWriteBatch::default();
        side.flush(&mut batch);
        assert_eq!(batch.changes.len(), 1);
        backend.write(NS, batch).unwrap();
        side.reset_to_backend(&backend, NS, Some(0)).unwrap();
        assert!(side.load(&backend, NS, 0, b"k").unwrap().rows.is_empty());
    }

    #[test]
    fn between_checkpoints_changes_wait_in_memory_and_rows_that_came_and_went_are_forgotten() {
        let backend = InMemoryStateBackend::default();
        let mut side = KeyedRows::new(0);
        side.load(&backend, NS, 0, b"k").unwrap();
        side.apply(b"k", b"kept", 1, 0, i64::MAX).unwrap();
        let mut batch = StateWriteBatch::default();
        side.flush(&mut batch);
        backend.write(NS, batch).unwrap();
        // Between two checkpoints: a stored row goes, another comes and goes, a third comes.
        side.apply(b"k", b"kept", -1, 0, i64::MAX).unwrap();
        side.apply(b"k", b"brief", 1, 0, i64::MAX).unwrap();
        side.apply(b"k", b"brief", -1, 0, i64::MAX).unwrap();
        side.apply(b"k", b"new", 1, 0, i64::MAX).unwrap();
        side.drop_gone();
        let held: Vec<&[u8]> = side.get(b"k").unwrap().rows.keys().map(|r| r.as_ref()).collect();
        assert_eq!(held, vec![b"kept".as_slice(), b"new"], "the brief row is forgotten, the tombstone kept");
        // A key whose rows all came and went leaves memory.
        side.load(&backend, NS, 0, b"gone").unwrap();
        side.apply(b"gone", b"r", 1, 0, i64::MAX).unwrap();
        side.apply(b"gone", b"r", -1, 0, i64::MAX).unwrap();
        side.drop_gone();
        assert!(side.get(b"gone").is_none());
        // The next checkpoint writes what waited: the delete and the new row.
        let mut batch = StateWriteBatch::default();
        side.flush(&mut batch);
        assert_eq!(batch.changes.len(), 2);
        backend.write(NS, batch).unwrap();
        side.reset_to_backend(&backend, NS, Some(1)).unwrap();
        assert_eq!(rows(&side, b"k"), vec![]);
        side.load(&backend, NS, 0, b"k").unwrap();
        assert_eq!(rows(&side, b"k"), vec![(b"new".to_vec(), 1, 0)]);
    }

    #[test]
    fn a_deleted_row_is_deleted_from_the_backend_and_an_unknown_delete_is_an_error() {
        let backend = InMemoryStateBackend::default();
        let mut side = KeyedRows::new(0);
        side.load(&backend, NS, 0, b"k").unwrap();
        side.apply(b"k", b"r", 1, 0, i64::MAX).unwrap();
        let mut batch = StateWriteBatch::default();
        side.flush(&mut batch);
        backend.write(NS, batch).unwrap();
        side.apply(b"k", b"r", -1, 0, i64::MAX).unwrap();
        let mut batch = StateWriteBatch::default();
        side.flush(&mut batch);
        backend.write(NS, batch).unwrap();
        side.reset_to_backend(&backend, NS, Some(0)).unwrap();
        assert!(side.load(&backend, NS, 0, b"k").unwrap().rows.is_empty());
        assert!(side.apply(b"k", b"r", -1, 0, i64::MAX).is_err());
    }
}
