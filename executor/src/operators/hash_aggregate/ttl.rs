//! State time-to-live for an aggregate without windows (`streaming_state_ttl`,
//! `WITH (state_ttl = ...)`, like Flink's `table.exec.state.ttl`): a group not updated for
//! the TTL, in wall-clock time, is dropped from state **and its row is retracted from the
//! output**, so the view always equals what the state knows. A later row for its key
//! starts the group afresh.
//!
//! Each group carries its expiry (the wall-clock time of its last update plus the TTL),
//! stored with the group (the last 8 bytes of its encoding), so it is checkpointed and
//! restored with it and survives a restart: a group whose time passed while the job was down
//! expires at the first barrier after the restore.
//!
//! Barriers look for expired groups in an index of group keys by expiry bucket
//! ([`EXPIRY_GRANULE`] wide), never in all groups. A group is listed once, under the bucket
//! of its expiry when it was listed; updates move its expiry later without listing it
//! again, and when its bucket comes due a group that is not expired after all is listed again
//! under its current expiry. The index holds keys, not slots, so groups evicted to the state
//! backend stay listed and are loaded back to expire (their retraction needs their last
//! row). With a backend, a restore leaves the groups in the backend only: the index is
//! rebuilt from one scan of the stored groups, reading each one's expiry, at the next barrier.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::HashAggregate;
use crate::error::{ExecError, ExecResult};

/// Expiry times are grouped into buckets this wide (µs, about 0.13 s), so a busy group
/// is not listed again and again.
const EXPIRY_GRANULE: i64 = 1 << 17;

/// Bucket `b` holds the expiries in `((b - 1) * G, b * G]`.
fn bucket_of(expires: i64) -> i64 {
    expires.saturating_add(EXPIRY_GRANULE - 1).div_euclid(EXPIRY_GRANULE)
}

/// The groups' expiries and the index that finds the expired ones.
pub(super) struct GroupExpiry {
    ttl_us: i64,
    /// Per slot: when the group expires (wall-clock µs; `i64::MAX` for a free slot).
    expires: Vec<i64>,
    /// Per slot: the bucket the group is listed under, if it is.
    listed: Vec<Option<i64>>,
    by_expiry: BTreeMap<i64, Vec<Arc<[u8]>>>,
    /// The groups are in the state backend only (after a restore): the index is rebuilt
    /// from it at the next barrier.
    rebuild_from_backend: bool,
    /// Tests set the clock.
    #[cfg(test)]
    pub(super) fixed_now: Option<i64>,
}

impl GroupExpiry {
    pub(super) fn new(ttl_ms: u64) -> Self {
        Self {
            ttl_us: i64::try_from(ttl_ms.saturating_mul(1000)).unwrap_or(i64::MAX),
            expires: Vec::new(),
            listed: Vec::new(),
            by_expiry: BTreeMap::new(),
            rebuild_from_backend: false,
            #[cfg(test)]
            fixed_now: None,
        }
    }

    pub(super) fn now(&self) -> i64 {
        #[cfg(test)]
        if let Some(now) = self.fixed_now {
            return now;
        }
        crate::clock::wall_clock_us()
    }

    pub(super) fn resize(&mut self, slots: usize) {
        self.expires.resize(slots, i64::MAX);
        self.listed.resize(slots, None);
    }

    /// The group in `slot` was updated at `now`.
    pub(super) fn touch(&mut self, slot: u32, key: &Arc<[u8]>, now: i64) {
        self.set(slot, key, now.saturating_add(self.ttl_us));
    }

    /// The group in `slot` expires at `expires` (loaded from state).
    pub(super) fn set(&mut self, slot: u32, key: &Arc<[u8]>, expires: i64) {
        let s = slot as usize;
        self.expires[s] = expires;
        if self.listed[s].is_none() {
            let bucket = bucket_of(expires);
            self.listed[s] = Some(bucket);
            self.by_expiry.entry(bucket).or_default().push(Arc::clone(key));
        }
    }

    /// The slot is free (its key may stay listed: it is skipped when due).
    pub(super) fn free(&mut self, slot: u32) {
        self.expires[slot as usize] = i64::MAX;
        self.listed[slot as usize] = None;
    }

    pub(super) fn expires(&self, slot: u32) -> i64 {
        self.expires[slot as usize]
    }

    /// Forgets the index (a full restore replaces every group).
    pub(super) fn clear_index(&mut self) {
        self.by_expiry.clear();
    }

    /// After a restore into the state backend: rebuild the index from it at the next barrier.
    pub(super) fn rebuild_later(&mut self) {
        self.by_expiry.clear();
        self.rebuild_from_backend = true;
    }

    /// The keys listed under buckets that are wholly before `now`, each once; the slots
    /// `slot_of` finds for them are no longer listed.
    fn take_due(&mut self, now: i64, slot_of: impl Fn(&[u8]) -> Option<u32>) -> Vec<Arc<[u8]>> {
        let due = bucket_of(now);
        let later = self.by_expiry.split_off(&due);
        let buckets = std::mem::replace(&mut self.by_expiry, later);
        let mut keys: Vec<Arc<[u8]>> = buckets.into_values().flatten().collect();
        keys.sort_unstable();
        keys.dedup();
        for key in &keys {
            if let Some(slot) = slot_of(key) {
                if self.listed[slot as usize].is_some_and(|b| b < due) {
                    self.listed[slot as usize] = None;
                }
            }
        }
        keys
    }

    /// Lists a stored group not in memory under its expiry (the index rebuild).
    fn list_stored(&mut self, key: &[u8], expires: i64) {
        self.by_expiry.entry(bucket_of(expires)).or_default().push(Arc::from(key));
    }
}

/// The expiry at the end of an encoded group.
pub(super) fn expiry_of_encoded(value: &[u8]) -> Option<i64> {
    let tail = value.len().checked_sub(8).and_then(|start| value.get(start..))?;
    Some(i64::from_le_bytes(tail.try_into().ok()?))
}

impl HashAggregate {
    /// At a barrier, before the epoch's output: the groups not updated for the TTL are
    /// emptied, so that the output retracts their rows and their state is freed.
    pub(super) fn expire_groups(&mut self) -> ExecResult<()> {
        let Some(expiry) = &mut self.expiry else { return Ok(()) };
        if expiry.rebuild_from_backend {
            expiry.rebuild_from_backend = false;
            self.rebuild_expiry_index()?;
        }
        let Some(expiry) = &mut self.expiry else { return Ok(()) };
        let now = expiry.now();
        let slots = &self.slots;
        let due = expiry.take_due(now, |key| slots.get(key).copied());
        if due.is_empty() {
            return Ok(());
        }
        self.load_keys(&due)?;
        let mut expired = 0usize;
        for key in &due {
            let Some(&slot) = self.slots.get(&key[..]) else { continue };
            let Some(expiry) = &mut self.expiry else { break };
            if expiry.expires(slot) >= now {
                // Updated since it was listed: listed again under its current expiry.
                let expires = expiry.expires(slot);
                expiry.set(slot, key, expires);
                continue;
            }
            self.empty_group(slot);
            expired += 1;
        }
        if expired > 0 {
            tracing::debug!(expired, groups = self.slots.len(), "aggregate groups expired (state_ttl)");
        }
        Ok(())
    }

    /// Empties a group: the next output retracts its row, and the group is freed then.
    fn empty_group(&mut self, slot: u32) {
        let s = slot as usize;
        self.row_counts[s] = 0;
        for acc in &mut self.accumulators {
            acc.reset(s);
        }
        self.mark_dirty(slot);
    }

    /// Groups listed as due that are only in the state backend come back into memory.
    fn load_keys(&mut self, keys: &[Arc<[u8]>]) -> ExecResult<()> {
        if !self.state_table.as_ref().is_some_and(|t| t.lookups_needed()) {
            return Ok(());
        }
        let absent: Vec<&Arc<[u8]>> = keys.iter().filter(|k| !self.slots.contains_key(&k[..])).collect();
        if absent.is_empty() {
            return Ok(());
        }
        let groups = self.key_groups_of_keys(absent.iter().map(|k| &k[..]))?;
        for (key, group) in absent.into_iter().zip(groups) {
            self.load_stored(key, group)?;
        }
        Ok(())
    }

    /// Lists every stored group under its expiry: one scan of the state backend.
    fn rebuild_expiry_index(&mut self) -> ExecResult<()> {
        let (Some(table), Some(expiry)) = (&self.state_table, &mut self.expiry) else { return Ok(()) };
        let mut listed = 0u64;
        let mut corrupt = false;
        table.scan_stored(&mut |_, key, value| match expiry_of_encoded(value) {
            Some(expires) => {
                expiry.list_stored(key, expires);
                listed += 1;
                true
            }
            None => {
                corrupt = true;
                false
            }
        })?;
        if corrupt {
            return Err(ExecError::Internal(
                "HashAggregate state is corrupt: a group without its expiry".into(),
            ));
        }
        tracing::info!(groups = listed, "aggregate state_ttl index rebuilt from the state backend");
        Ok(())
    }

    /// Records the updates of `groups` (the slots of a batch's rows).
    pub(super) fn touch_groups(&mut self, groups: &[u32]) {
        let Some(expiry) = &mut self.expiry else { return };
        let now = expiry.now();
        for &slot in groups {
            expiry.touch(slot, &self.keys[slot as usize], now);
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::DataType;
    use weir_plan::job_graph::{AggregateCall, AggregateKind, AggregateSpec, FieldSpec};
    use weir_storage::keyed_state::{
        InMemoryStateBackend, KeyedStateBackend, RocksDbStateBackend, StateNamespace,
    };
    use weir_storage::state_table::{StateTable, StateTableOptions};

    use super::*;
    use crate::message::{Barrier, StreamBatch};
    use crate::operators::test_util::{assert_output, batch};
    use crate::operators::Operator;

    const S: i64 = 1_000_000;
    const NS: StateNamespace =
        StateNamespace { job: 9, deployment: 0, vertex: 0, subtask: 0, operator_index: 0 };

    /// `SELECT k, count(*), sum(v) ... GROUP BY k` with a 10 s TTL, its clock at 0.
    fn op() -> HashAggregate {
        let spec = AggregateSpec {
            group_columns: 1,
            aggregates: vec![
                AggregateCall { kind: AggregateKind::CountRows, input_column: None },
                AggregateCall { kind: AggregateKind::Sum, input_column: Some(1) },
            ],
            output: vec![
                FieldSpec::new("k", &DataType::Utf8),
                FieldSpec::new("n", &DataType::Int64),
                FieldSpec::new("s", &DataType::Int64),
            ],
            global: false,
            window: None,
            append_only_input: false,
            state_ttl_ms: Some(10_000),
        };
        let mut op = HashAggregate::new(&spec, rows(&[], &[]).data.schema()).unwrap();
        at(&mut op, 0);
        op
    }

    fn at(op: &mut HashAggregate, seconds: i64) {
        op.expiry.as_mut().expect("a TTL").fixed_now = Some(seconds * S);
    }

    fn rows(keys: &[&str], values: &[i64]) -> StreamBatch {
        batch(
            vec![
                ("k", Arc::new(StringArray::from(keys.to_vec())) as ArrayRef),
                ("v", Arc::new(Int64Array::from(values.to_vec())) as ArrayRef),
            ],
            None,
        )
    }

    /// Feeds `input` at `seconds`, then a barrier; returns its output.
    fn epoch(op: &mut HashAggregate, seconds: i64, input: Vec<StreamBatch>, epoch: u64) -> Vec<StreamBatch> {
        at(op, seconds);
        let mut out = Vec::new();
        for b in input {
            op.process_batch(0, b, &mut out).unwrap();
        }
        op.on_barrier(&Barrier::new(epoch), &mut out).unwrap();
        out
    }

    fn table(op: HashAggregate, backend: &Arc<dyn KeyedStateBackend>, cache: usize) -> HashAggregate {
        op.with_state(StateTable::new(Arc::clone(backend), NS, StateTableOptions::cached(cache)))
    }

    fn checkpoint(op: &mut HashAggregate) -> (Vec<u8>, Vec<u8>) {
        let snapshot = op.snapshot(false).unwrap().expect("stateful");
        let mut state = Vec::new();
        (snapshot.deferred.expect("deferred groups"))(&mut state).unwrap();
        (snapshot.meta, state)
    }

    const NONE: &[&str] = &[];

    #[test]
    fn an_idle_group_expires_and_its_row_is_retracted_while_an_updated_one_stays() {
        let mut op = op();
        epoch(&mut op, 0, vec![rows(&["a", "b"], &[1, 2])], 1);
        // a is updated at 5 s: it now expires at 15 s; b still at 10 s.
        assert_output(
            &epoch(&mut op, 5, vec![rows(&["a"], &[10])], 2),
            &[
                "+----+---+---+----+",
                "| op | k | n | s  |",
                "+----+---+---+----+",
                "| -  | a | 1 | 1  |",
                "| +  | a | 2 | 11 |",
                "+----+---+---+----+",
            ],
        );
        assert_output(&epoch(&mut op, 9, vec![], 3), NONE);
        assert_output(
            &epoch(&mut op, 12, vec![], 4),
            &[
                "+----+---+---+---+",
                "| op | k | n | s |",
                "+----+---+---+---+",
                "| -  | b | 1 | 2 |",
                "+----+---+---+---+",
            ],
        );
        assert_eq!(op.state_rows(), 1);
        // A later row for b starts its group afresh.
        assert_output(
            &epoch(&mut op, 13, vec![rows(&["b"], &[7])], 5),
            &[
                "+----+---+---+---+",
                "| op | k | n | s |",
                "+----+---+---+---+",
                "| +  | b | 1 | 7 |",
                "+----+---+---+---+",
            ],
        );
        assert_output(
            &epoch(&mut op, 16, vec![], 6),
            &[
                "+----+---+---+----+",
                "| op | k | n | s  |",
                "+----+---+---+----+",
                "| -  | a | 2 | 11 |",
                "+----+---+---+----+",
            ],
        );
        assert_eq!(op.state_rows(), 1);
    }

    #[test]
    fn expiry_survives_a_restore_in_memory_and_from_a_backend() {
        let backend: Arc<dyn KeyedStateBackend> = Arc::new(InMemoryStateBackend::default());
        for with_backend in [false, true] {
            let make = || if with_backend { table(op(), &backend, 1000) } else { op() };
            let mut first = make();
            epoch(&mut first, 0, vec![rows(&["a", "b"], &[1, 2])], 1);
            epoch(&mut first, 5, vec![rows(&["a"], &[10])], 2);
            let cp = checkpoint(&mut first);
            drop(first);

            let fresh_backend: Arc<dyn KeyedStateBackend> = Arc::new(InMemoryStateBackend::default());
            let mut restored = if with_backend { table(op(), &fresh_backend, 1000) } else { op() };
            restored.restore(&cp.0, Some(&mut cp.1.as_slice())).unwrap();
            // b (last updated at 0 s) expires by 12 s, a (5 s) not before 15 s.
            assert_output(
                &epoch(&mut restored, 12, vec![], 3),
                &[
                    "+----+---+---+---+",
                    "| op | k | n | s |",
                    "+----+---+---+---+",
                    "| -  | b | 1 | 2 |",
                    "+----+---+---+---+",
                ],
            );
            assert_output(
                &epoch(&mut restored, 16, vec![], 4),
                &[
                    "+----+---+---+----+",
                    "| op | k | n | s  |",
                    "+----+---+---+----+",
                    "| -  | a | 2 | 11 |",
                    "+----+---+---+----+",
                ],
            );
        }
    }

    #[test]
    fn groups_evicted_to_the_backend_expire_too() {
        let dir = tempfile::tempdir().unwrap();
        let rocksdb: Arc<dyn KeyedStateBackend> =
            Arc::new(RocksDbStateBackend::open(dir.path(), &Default::default()).unwrap());
        let memory: Arc<dyn KeyedStateBackend> = Arc::new(InMemoryStateBackend::default());
        for backend in [memory, rocksdb] {
            evicted_groups_expire(&backend);
        }
    }

    fn evicted_groups_expire(backend: &Arc<dyn KeyedStateBackend>) {
        // A cache of 4 groups for 20: most are evicted after the first flush.
        let mut op = table(op(), backend, 4);
        let keys: Vec<String> = (0..20).map(|i| format!("k{i:02}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let values: Vec<i64> = (0..20).collect();
        epoch(&mut op, 0, vec![rows(&keys, &values)], 1);
        assert!(op.slots.len() < 20, "groups were evicted");
        let expired = epoch(&mut op, 11, vec![], 2);
        let retracted: usize = expired.iter().map(|b| b.num_rows()).sum();
        assert_eq!(retracted, 20, "every group's row is retracted");
        assert!(expired.iter().all(|b| (0..b.num_rows()).all(|i| b.op(i) < 0)));
        // Nothing is left in the backend either.
        let mut stored = 0;
        if let Some(table) = &op.state_table {
            table
                .scan_stored(&mut |_, _, _| {
                    stored += 1;
                    true
                })
                .unwrap();
        }
        assert_eq!(stored, 0);
    }
}
