//! The HashAggregate's state in checkpoints, and in a keyed state backend when it may
//! outgrow memory.
//!
//! Groups live in the operator's slots, in memory, where updates are fast. A group's state
//! is encoded as its row count, its last emitted row and each accumulator's state.
//!
//! **In memory** (the memory backend, and every windowed or global aggregate): a checkpoint
//! encodes every group at the barrier and hands the bytes to the upload. The watermark
//! keeps windowed groups few, so that is cheap; restore loads them all back and rebuilds
//! the index that closes windows.
//!
//! **With a backend** (RocksDB, for an aggregate without windows, whose groups have no
//! bound): the groups go to a [`StateTable`], which does the generic part — dirty tracking,
//! one write batch per barrier, eviction order, lookups of groups not in memory, snapshot
//! and restore — while the groups stay in the operator's slots, which are its cache. At
//! every barrier the groups changed since the last one are encoded and written and freed
//! groups deleted. Past `cache_groups` groups in memory, the least recently updated clean
//! groups are evicted after the flush, and a group missing from memory is looked up in the
//! backend before it is created. Within an epoch, at twice the cache size, the epoch's
//! changes are emitted early so that groups can be evicted: memory stays bounded however
//! many new groups an epoch brings. A checkpoint only takes the table's snapshot handle and
//! streams it to the store off the data path; restore streams the snapshot into the
//! backend, and groups come back into memory as rows for them arrive.
//!
//! With a state TTL each group's encoding ends with its expiry, and the operator keeps an
//! index of groups by expiry (see [`super::ttl`]).
//!
//! State keys are the group's arrow-row encoding, under its key group (the hash of the group
//! columns, as the exchange routes them); each subtask has its own namespace. A slot number
//! is the same in the operator and in its table.

use std::io::{Read, Write};
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::TimestampMicrosecondType;
use weir_storage::state_table::StateTable;

use super::HashAggregate;
use crate::error::{ExecError, ExecResult};
use crate::exchange::key_groups;
use crate::message::StreamBatch;
use crate::operators::{DeferredState, OperatorSnapshot};
use crate::state_codec;

/// Groups changed or removed since the last snapshot, for delta snapshots of groups kept in
/// memory. Tracking starts with the first snapshot (or restore), so it costs nothing when
/// checkpoints are off.
#[derive(Default)]
pub(super) struct ChangedGroups {
    tracking: bool,
    changed: Vec<u32>,
    is_changed: Vec<bool>,
    removed: Vec<Arc<[u8]>>,
}

impl ChangedGroups {
    /// Starts a new interval; `track` says whether to record changes in it at all.
    fn reset(&mut self, track: bool) {
        self.tracking = track;
        for &slot in &self.changed {
            if let Some(flag) = self.is_changed.get_mut(slot as usize) {
                *flag = false;
            }
        }
        self.changed.clear();
        self.removed.clear();
    }
}

/// Snapshot kinds (the first byte of the meta) and entry tags of in-memory snapshots.
const FULL: u8 = 0;
const DELTA: u8 = 1;
const PUT: u8 = 0;
const REMOVE: u8 = 1;
const END: u8 = 2;

fn read_u8(input: &mut impl Read) -> ExecResult<u8> {
    state_codec::read_u8(input).map_err(|e| corrupt(&e.to_string()))
}

fn read_bytes(input: &mut impl Read, buf: &mut Vec<u8>) -> ExecResult<()> {
    state_codec::read_bytes(input, buf).map_err(|e| corrupt(&e.to_string()))
}

fn corrupt(what: &str) -> ExecError {
    ExecError::Internal(format!("HashAggregate state is corrupt: {what}"))
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> ExecResult<&'a [u8]> {
    state_codec::take(input, n).ok_or_else(|| corrupt("truncated group"))
}

fn take_u32(input: &mut &[u8]) -> ExecResult<u32> {
    state_codec::take_u32(input).ok_or_else(|| corrupt("truncated group"))
}

fn take_i64(input: &mut &[u8]) -> ExecResult<i64> {
    state_codec::take_i64(input).ok_or_else(|| corrupt("truncated group"))
}

impl HashAggregate {
    /// Keeps the groups in `table` too, when they may outgrow memory: an aggregate without
    /// windows. Windowed and global aggregates keep every group in memory (the watermark
    /// bounds them) and checkpoint them directly (see [`Self::snapshot_in_memory`]), which
    /// costs far less than writing every changed group to a backend at every barrier.
    pub fn with_state(mut self, table: StateTable) -> Self {
        if self.window.is_some() || self.global {
            return self;
        }
        self.state_table = Some(table);
        self
    }

    /// Whether the groups in memory have reached twice the cache size within one epoch: its
    /// changes are then emitted early so that groups can be evicted (memory stays bounded
    /// however many new groups an epoch brings).
    pub(super) fn over_memory_limit(&self) -> bool {
        self.state_table.as_ref().is_some_and(|t| self.slots.len() > t.cache_entries().saturating_mul(2))
    }

    /// Groups kept in memory are snapshotted as deltas; a backend's snapshots are full.
    /// Unbounded groups kept in memory are snapshotted as deltas. Windowed groups are few
    /// but change and close all the time (a delta would be as large as a full snapshot, and
    /// tracking costs on every row), a global aggregate has one group, and a backend's
    /// snapshots are full.
    pub(super) fn writes_deltas_in_memory(&self) -> bool {
        self.state_table.is_none() && self.window.is_none() && !self.global
    }

    pub(super) fn tracks_changed_groups(&self) -> bool {
        self.changed_groups.tracking
    }

    /// Records that a group in memory changed, for the next delta snapshot.
    pub(super) fn mark_changed(&mut self, slot: u32) {
        let c = &mut self.changed_groups;
        if !c.tracking {
            return;
        }
        if c.is_changed.len() <= slot as usize {
            c.is_changed.resize(self.keys.len().max(slot as usize + 1), false);
        }
        if !c.is_changed[slot as usize] {
            c.is_changed[slot as usize] = true;
            c.changed.push(slot);
        }
    }

    /// The slot is being freed: the backend's copy goes too, unless it is only evicted (the
    /// table has forgotten it already).
    pub(super) fn forget_group(&mut self, slot: u32, key: &Arc<[u8]>, evicted: bool) {
        if evicted {
            return;
        }
        if self.changed_groups.tracking {
            self.changed_groups.removed.push(Arc::clone(key));
        }
        if let Some(table) = &mut self.state_table {
            table.remove(slot, key);
        }
    }

    /// Before a batch updates its groups: brings groups the backend holds and memory does not
    /// into slots.
    pub(super) fn load_missing(&mut self, batch: &StreamBatch, keys: &arrow::row::Rows) -> ExecResult<()> {
        if !self.state_table.as_ref().is_some_and(|t| t.lookups_needed()) {
            return Ok(());
        }
        let missing: Vec<usize> = keys
            .iter()
            .enumerate()
            .filter(|(_, k)| !self.slots.contains_key(k.as_ref()))
            .map(|(i, _)| i)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let columns: Vec<usize> = (0..self.group_columns).collect();
        let groups = key_groups(batch, &columns)?;
        for i in missing {
            let key = keys.row(i);
            if self.slots.contains_key(key.as_ref()) {
                continue; // an earlier row of this batch loaded it
            }
            self.load_stored(key.as_ref(), groups[i] as u16)?;
        }
        Ok(())
    }

    /// Brings group `key` of key group `group` from the backend into a slot, if the backend
    /// holds it.
    pub(super) fn load_stored(&mut self, key: &[u8], group: u16) -> ExecResult<()> {
        let Some(table) = &mut self.state_table else { return Ok(()) };
        if let Some(value) = table.lookup(group, key)? {
            let (slot, _) = self.load_group(key, &value)?;
            if let Some(table) = &mut self.state_table {
                table.mark_loaded(slot, group);
            }
        }
        Ok(())
    }

    /// Puts a stored group into a slot; returns the slot and whether it is a new one.
    fn load_group(&mut self, key: &[u8], mut value: &[u8]) -> ExecResult<(u32, bool)> {
        let (slot, created) = self.find_or_create(key)?;
        let s = slot as usize;
        for acc in &mut self.accumulators {
            acc.reset(s);
        }
        self.row_counts[s] = take_i64(&mut value)?;
        self.emitted[s] = match take_u32(&mut value)? {
            u32::MAX => None,
            len => Some(take(&mut value, len as usize)?.into()),
        };
        for acc in &mut self.accumulators {
            acc.load(s, &mut value)?;
        }
        if let Some(expiry) = &mut self.expiry {
            let expires = take_i64(&mut value)?;
            expiry.set(slot, &self.keys[s], expires);
        }
        if !value.is_empty() {
            return Err(corrupt("trailing bytes after a group"));
        }
        Ok((slot, created))
    }

    fn encode_group(&self, slot: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.row_counts[slot].to_le_bytes());
        match &self.emitted[slot] {
            Some(row) => {
                out.extend_from_slice(&(row.len() as u32).to_le_bytes());
                out.extend_from_slice(row);
            }
            None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
        }
        for acc in &self.accumulators {
            acc.save(slot, out);
        }
        // With a state TTL, the expiry comes last (see [`super::ttl`]).
        if let Some(expiry) = &self.expiry {
            out.extend_from_slice(&expiry.expires(slot as u32).to_le_bytes());
        }
    }

    /// At the end of every barrier: writes the changed groups and deletes the freed ones in
    /// one batch, then evicts clean groups beyond the cache size.
    pub(super) fn flush(&mut self) -> ExecResult<()> {
        let Some(table) = &mut self.state_table else { return Ok(()) };
        let updated = table.take_updated();
        let mut puts = Vec::with_capacity(updated.len());
        if !updated.is_empty() {
            let groups = self.key_groups_of(&updated)?;
            let mut value = Vec::new();
            for (&slot, group) in updated.iter().zip(groups) {
                value.clear();
                self.encode_group(slot as usize, &mut value);
                puts.push((slot, group, self.keys[slot as usize].to_vec(), value.clone()));
            }
        }
        let Some(table) = &mut self.state_table else { return Ok(()) };
        for (slot, group, key, value) in puts {
            table.put(slot, group, key, value);
        }
        table.flush()?;
        let evicted = table.evict();
        if !evicted.is_empty() {
            for &slot in &evicted {
                self.free_slot_evicted(slot);
            }
            tracing::debug!(
                evicted = evicted.len(),
                kept = self.slots.len(),
                "aggregate groups evicted to the state backend"
            );
        }
        Ok(())
    }

    /// The key group of each slot's group: the hash of its group columns, as routed.
    fn key_groups_of(&self, slots: &[u32]) -> ExecResult<Vec<u16>> {
        let keys: Vec<&[u8]> = slots.iter().map(|&s| &self.keys[s as usize][..]).collect();
        self.key_groups_of_keys(keys.into_iter())
    }

    /// The key group of each group key (arrow-row bytes): the hash of its group columns.
    pub(super) fn key_groups_of_keys<'k>(
        &self,
        keys: impl ExactSizeIterator<Item = &'k [u8]>,
    ) -> ExecResult<Vec<u16>> {
        let n = keys.len();
        let Some(converter) = &self.group_converter else { return Ok(vec![0; n]) };
        let parser = converter.parser();
        let columns = converter.convert_rows(keys.map(|k| parser.parse(k)))?;
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(n));
        let fields: Vec<_> = self.input_schema.fields()[..self.group_columns].to_vec();
        let schema = Arc::new(arrow::datatypes::Schema::new(fields));
        let batch = arrow::array::RecordBatch::try_new_with_options(schema, columns, &options)?;
        let all: Vec<usize> = (0..self.group_columns).collect();
        Ok(key_groups(&StreamBatch::inserts(batch), &all)?.into_iter().map(|g| g as u16).collect())
    }

    /// The checkpoint's share: the backend already holds the barrier's state; without a
    /// backend, the groups are encoded from memory (only the changed ones when
    /// `incremental`).
    pub(super) fn snapshot_state(&mut self, incremental: bool) -> ExecResult<Option<OperatorSnapshot>> {
        let Some(table) = &self.state_table else { return Ok(Some(self.snapshot_in_memory(incremental))) };
        let handle = table.snapshot_handle()?;
        let meta = self.snapshot_meta(FULL);
        let deferred: DeferredState = Box::new(move |out: &mut dyn Write| {
            handle.write_to(out)?;
            Ok(())
        });
        Ok(Some(OperatorSnapshot { meta, deferred: Some(deferred), delta: false }))
    }

    pub(super) fn restore_state(&mut self, meta: &[u8], deferred: Option<&mut dyn Read>) -> ExecResult<()> {
        let (kind, mut rest) = meta.split_first().ok_or_else(|| corrupt("empty meta"))?;
        self.watermark = take_i64(&mut rest)?;
        self.late_rows = take_i64(&mut rest)? as u64;
        let input = deferred.ok_or_else(|| corrupt("no groups in the snapshot"))?;
        let Some(table) = &mut self.state_table else { return self.restore_in_memory(*kind, input) };
        if *kind != FULL {
            return Err(corrupt("a delta snapshot for state in a backend"));
        }
        // Groups come back into memory as rows for them arrive.
        table.restore(input)?;
        if let Some(expiry) = &mut self.expiry {
            expiry.rebuild_later();
        }
        Ok(())
    }

    /// This subtask's share of an old subtask's snapshot after a rescale: its groups of the
    /// key groups the subtask owns are added (in memory, or to the backend), the watermark
    /// is the highest restored (all subtasks see the same watermarks, so they agree), and the
    /// late-row counts add up.
    pub(super) fn restore_rescaled_state(
        &mut self,
        meta: &[u8],
        deferred: Option<&mut dyn Read>,
        scope: &crate::operators::RescaleScope,
    ) -> ExecResult<()> {
        let (kind, mut rest) = meta.split_first().ok_or_else(|| corrupt("empty meta"))?;
        let watermark = take_i64(&mut rest)?;
        let late_rows = take_i64(&mut rest)? as u64;
        self.watermark = self.watermark.max(watermark);
        if scope.last_piece {
            self.late_rows += late_rows;
        }
        let input = deferred.ok_or_else(|| corrupt("no groups in the snapshot"))?;
        if let Some(table) = &mut self.state_table {
            if *kind != FULL {
                return Err(corrupt("a delta snapshot for state in a backend"));
            }
            table.restore_within(input, scope.key_groups.clone())?;
            if let Some(expiry) = &mut self.expiry {
                expiry.rebuild_later();
            }
            return Ok(());
        }
        // A group already loaded from an earlier piece is owned and indexed.
        let mut loaded = self.apply_entries(input)?;
        // Slots freed by a later entry (and maybe reused) are counted once, if still used.
        loaded.sort_unstable();
        loaded.dedup();
        loaded.retain(|&slot| !self.keys[slot as usize].is_empty());
        // Groups of other subtasks' key groups go again.
        let groups = self.key_groups_of(&loaded)?;
        let mut kept = Vec::with_capacity(loaded.len());
        for (slot, group) in loaded.into_iter().zip(groups) {
            match scope.owns(group as usize) {
                true => kept.push(slot),
                false => self.free_slot(slot),
            }
        }
        let track = self.writes_deltas_in_memory();
        self.changed_groups.reset(track);
        self.reindex_open_windows(&kept)
    }

    /// The operator's meta: whether the snapshot is full or a delta, its watermark and its
    /// late-row count.
    fn snapshot_meta(&self, kind: u8) -> Vec<u8> {
        let mut meta = Vec::with_capacity(17);
        meta.push(kind);
        meta.extend_from_slice(&self.watermark.to_le_bytes());
        meta.extend_from_slice(&self.late_rows.to_le_bytes());
        meta
    }

    /// Encodes the groups now, on the data path, and hands the bytes to the upload: every
    /// group (a full snapshot), or with `incremental` only those changed or removed since
    /// the previous snapshot (a delta). Entries: `PUT` key value | `REMOVE` key, then `END`;
    /// keys and values are `u32`-length prefixed.
    fn snapshot_in_memory(&mut self, incremental: bool) -> OperatorSnapshot {
        let delta = incremental && self.changed_groups.tracking;
        let mut out = Vec::new();
        let mut value = Vec::new();
        let mut put = |out: &mut Vec<u8>, key: &[u8], slot: u32, this: &Self| {
            value.clear();
            this.encode_group(slot as usize, &mut value);
            out.push(PUT);
            out.extend_from_slice(&(key.len() as u32).to_le_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
            out.extend_from_slice(&value);
        };
        if delta {
            for key in &self.changed_groups.removed {
                out.push(REMOVE);
                out.extend_from_slice(&(key.len() as u32).to_le_bytes());
                out.extend_from_slice(key);
            }
            for &slot in &self.changed_groups.changed {
                // Freed since (its key is in `removed`), unless reused or global.
                if self.global || !self.keys[slot as usize].is_empty() {
                    put(&mut out, &self.keys[slot as usize], slot, self);
                }
            }
        } else {
            for (key, &slot) in &self.slots {
                put(&mut out, key, slot, self);
            }
        }
        out.push(END);
        let track = self.writes_deltas_in_memory();
        self.changed_groups.reset(track);
        let deferred: DeferredState = Box::new(move |sink: &mut dyn Write| {
            sink.write_all(&out).map_err(|e| ExecError::Internal(format!("HashAggregate state: {e}")))
        });
        let meta = self.snapshot_meta(if delta { DELTA } else { FULL });
        OperatorSnapshot { meta, deferred: Some(deferred), delta }
    }

    /// A full snapshot replaces the groups; a delta applies to them.
    fn restore_in_memory(&mut self, kind: u8, input: &mut dyn Read) -> ExecResult<()> {
        if kind == FULL {
            let all: Vec<u32> = self.slots.values().copied().collect();
            for slot in all {
                self.free_slot(slot);
            }
            self.open.clear();
            if let Some(expiry) = &mut self.expiry {
                expiry.clear_index();
            }
        }
        let loaded = self.apply_entries(input)?;
        // Later snapshots are deltas of this state.
        let track = self.writes_deltas_in_memory();
        self.changed_groups.reset(track);
        self.reindex_open_windows(&loaded)
    }

    /// Applies a snapshot's entries (`PUT` a group, `REMOVE` one) to the groups in memory;
    /// returns the slots it created (a group already loaded from an earlier piece is
    /// already indexed).
    fn apply_entries(&mut self, input: &mut dyn Read) -> ExecResult<Vec<u32>> {
        let mut input = std::io::BufReader::new(input);
        let (mut key, mut value) = (Vec::new(), Vec::new());
        let mut created_slots = Vec::new();
        loop {
            match read_u8(&mut input)? {
                END => return Ok(created_slots),
                PUT => {
                    read_bytes(&mut input, &mut key)?;
                    read_bytes(&mut input, &mut value)?;
                    let (slot, created) = self.load_group(&key, &value)?;
                    if created {
                        created_slots.push(slot);
                    }
                }
                REMOVE => {
                    read_bytes(&mut input, &mut key)?;
                    if let Some(&slot) = self.slots.get(&key[..]) {
                        self.free_slot(slot);
                    }
                }
                _ => return Err(corrupt("unknown entry")),
            }
        }
    }

    /// Windowed groups loaded from a snapshot join the index that closes them.
    fn reindex_open_windows(&mut self, slots: &[u32]) -> ExecResult<()> {
        let (Some(window), Some(converter)) = (&self.window, &self.group_converter) else { return Ok(()) };
        if slots.is_empty() {
            return Ok(());
        }
        let parser = converter.parser();
        let columns = converter.convert_rows(slots.iter().map(|&s| parser.parse(&self.keys[s as usize])))?;
        let values = columns
            .get(window.column)
            .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
            .ok_or_else(|| corrupt("window column is not a timestamp"))?
            .clone();
        for (i, &slot) in slots.iter().enumerate() {
            if values.is_valid(i) {
                let key = Arc::clone(&self.keys[slot as usize]);
                self.open.entry(values.value(i)).or_default().push((slot, key));
            }
        }
        Ok(())
    }
}
