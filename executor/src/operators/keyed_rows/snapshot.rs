//! Checkpoints of the operators that keep their rows in [`KeyedRows`] (joins, Top-N).
//!
//! **Kept in memory** (the memory backend, where nothing is evicted): the rows in memory are
//! the state, so a checkpoint encodes them straight from memory on the data path: every row
//! (a full snapshot), or, when the previous snapshot is committed, only the rows changed
//! since it (a delta). Copying each change into the backend's map at every checkpoint and
//! writing that map out whole, as a backend needs, cost about a fifth of a join's CPU.
//!
//! **In a backend** (RocksDB, whose rows may outgrow memory): the operator has written its
//! changes at the barrier, and the checkpoint streams the backend's snapshot of the
//! namespace off the data path.
//!
//! A piece's kind is the first byte of the operator's meta; either way of keeping state
//! restores either kind of piece, so a job restarted with the other backend keeps its state.
//! Checkpoints written before kinds existed are backend snapshots.
//!
//! Entries of a memory piece: `PUT key_group stored_key value` | `REMOVE key_group
//! stored_key`, then `END`; the key group is a `u16`, stored keys are `u32`-length prefixed
//! and laid out as in the backend (`tag | key length | key | row`), values are 24 bytes.

use std::io::{BufReader, BufWriter, Read, Write};
use std::sync::Arc;

use weir_storage::keyed_state::{KeyedStateBackend, StateNamespace, StateWriteBatch};

use super::{decode_value, ChangeSink, KeyedRows};
use crate::error::{ExecError, ExecResult};
use crate::operators::{DeferredState, RescaleScope};
use crate::state_codec;

/// A piece with every row, encoded from memory.
pub const FULL: u8 = 0;
/// A piece with the rows changed since the previous one, encoded from memory.
pub const DELTA: u8 = 1;
/// The backend's snapshot of the operator's namespace.
pub const BACKEND: u8 = 2;

const PUT: u8 = 0;
const REMOVE: u8 = 1;
const END: u8 = 2;

/// A memory piece's entries as taken at the barrier: the rows are shared, not copied, and
/// encoded later, off the data path, by [`Entries::write_to`].
#[derive(Default)]
struct Entries {
    items: Vec<Item>,
    /// The key of the rows being added (the last `Item::Key`).
    current: Option<(u16, Box<[u8]>)>,
}

enum Item {
    /// The rows that follow are of this key group and stored-key prefix.
    Key(u16, Box<[u8]>),
    Put(Arc<[u8]>, [u8; 24]),
    Remove(Arc<[u8]>),
}

impl Entries {
    fn key(&mut self, key_group: u16, prefix: &[u8]) {
        if self.current.as_ref().is_some_and(|(group, current)| *group == key_group && **current == *prefix) {
            return;
        }
        self.current = Some((key_group, prefix.into()));
        self.items.push(Item::Key(key_group, prefix.into()));
    }

    fn write_to(self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut out = BufWriter::with_capacity(1 << 20, out);
        let (mut group, mut prefix): (u16, Box<[u8]>) = (0, Box::default());
        for item in self.items {
            let (tag, row, value) = match item {
                Item::Key(g, p) => {
                    (group, prefix) = (g, p);
                    continue;
                }
                Item::Put(row, value) => (PUT, row, Some(value)),
                Item::Remove(row) => (REMOVE, row, None),
            };
            out.write_all(&[tag])?;
            out.write_all(&group.to_le_bytes())?;
            out.write_all(&((prefix.len() + row.len()) as u32).to_le_bytes())?;
            out.write_all(&prefix)?;
            out.write_all(&row)?;
            if let Some(value) = value {
                out.write_all(&value)?;
            }
        }
        out.write_all(&[END])?;
        out.flush()
    }
}

impl ChangeSink for Entries {
    fn put(&mut self, key_group: u16, prefix: &[u8], row: &Arc<[u8]>, value: [u8; 24]) {
        self.key(key_group, prefix);
        self.items.push(Item::Put(Arc::clone(row), value));
    }

    fn delete(&mut self, key_group: u16, prefix: &[u8], row: &Arc<[u8]>) {
        self.key(key_group, prefix);
        self.items.push(Item::Remove(Arc::clone(row)));
    }
}

/// An operator's rows (`sides`, indexed by their tag) and where they are kept.
pub struct RowsState<'a> {
    pub sides: &'a mut [KeyedRows],
    pub backend: &'a dyn KeyedStateBackend,
    pub namespace: StateNamespace,
    /// Kept in memory only: nothing is ever written to the backend.
    pub in_memory: bool,
}

impl RowsState<'_> {
    /// The checkpoint's piece: its kind, its deferred bytes, and whether it is a delta.
    /// Kept in memory, `incremental` asks for a delta; in a backend the barrier already
    /// wrote every change.
    pub fn snapshot(self, incremental: bool) -> ExecResult<(u8, DeferredState, bool)> {
        if !self.in_memory {
            let handle = self.backend.snapshot_handle(self.namespace, 0..weir_plan::KEY_GROUPS)?;
            let deferred: DeferredState = Box::new(move |out: &mut dyn Write| {
                handle.write_to(out)?;
                Ok(())
            });
            return Ok((BACKEND, deferred, false));
        }
        // A delta needs a full piece of this instance before it: the first piece after a
        // start or a restore is full.
        let incremental = incremental && self.sides.iter().all(|side| side.has_full_snapshot);
        let mut entries = Entries::default();
        for side in self.sides.iter_mut() {
            match incremental {
                true => side.flush(&mut entries),
                false => side.write_all(&mut entries),
            }
        }
        let deferred: DeferredState = Box::new(move |out: &mut dyn Write| {
            entries.write_to(out).map_err(|e| ExecError::Internal(format!("keyed rows snapshot: {e}")))
        });
        Ok((if incremental { DELTA } else { FULL }, deferred, incremental))
    }

    /// Restores one piece of a chain (oldest first) of kind `kind`. Without `scope` a full
    /// piece replaces the rows; with it (a rescale) only rows of the key groups the scope
    /// owns are added. `totals` are the sides' row counts a backend piece was taken with
    /// (`None`: count them).
    pub fn restore(
        self,
        kind: u8,
        input: &mut dyn Read,
        scope: Option<&RescaleScope>,
        totals: Option<&[u64]>,
    ) -> ExecResult<()> {
        let RowsState { sides, backend, namespace, in_memory } = self;
        let scope = scope.map(|scope| (scope.key_groups.clone(), scope.last_piece));
        match kind {
            // A backend piece is full: of an old subtask's chain (of such pieces, when other
            // operators of its task wrote deltas) only the last counts.
            BACKEND if scope.as_ref().is_some_and(|(_, last)| !last) => Ok(()),
            DELTA if !in_memory => Err(ExecError::Internal(
                "the checkpoint holds rows kept in memory as a chain of deltas, which state \
                 in a backend cannot restore: restart with state.backend = 'memory', or \
                 restore from a full checkpoint"
                    .into(),
            )),
            BACKEND => {
                let scope = scope.map(|(groups, _)| groups);
                match &scope {
                    Some(groups) => {
                        backend.restore_within(namespace, input, groups.clone())?;
                    }
                    None => backend.restore(namespace, input)?,
                }
                if in_memory {
                    for side in sides.iter_mut() {
                        if scope.is_none() {
                            side.clear();
                        }
                        side.load_all_from_backend(backend, namespace)?;
                    }
                    backend.drop_namespace(namespace)?;
                } else {
                    for (i, side) in sides.iter_mut().enumerate() {
                        let total = totals.and_then(|t| t.get(i).copied()).filter(|_| scope.is_none());
                        side.reset_to_backend(backend, namespace, total)?;
                    }
                }
                Ok(())
            }
            FULL | DELTA => {
                let scope = scope.map(|(groups, _)| groups);
                let replace = kind == FULL && scope.is_none();
                let mut batch = StateWriteBatch::default();
                if replace {
                    match in_memory {
                        true => sides.iter_mut().for_each(KeyedRows::clear),
                        false => backend.drop_namespace(namespace)?,
                    }
                }
                read_entries(input, &mut |key_group, stored, value| {
                    if scope.as_ref().is_some_and(|groups| !groups.contains(&key_group)) {
                        return Ok(());
                    }
                    if !in_memory {
                        match value {
                            Some(value) => batch.put(key_group, stored, value.to_vec()),
                            None => batch.delete(key_group, stored),
                        }
                        return Ok(());
                    }
                    let (tag, key, row) = split_stored_key(stored)?;
                    let side = sides
                        .get_mut(tag as usize)
                        .ok_or_else(|| corrupt(&format!("an entry of side {tag}")))?;
                    let value = match value {
                        Some(value) => Some(decode_value(value).ok_or_else(|| corrupt("a value"))?),
                        None => None,
                    };
                    side.restore_row(key_group, key, row, value);
                    Ok(())
                })?;
                if !in_memory {
                    backend.write(namespace, batch)?;
                    for side in sides.iter_mut() {
                        side.reset_to_backend(backend, namespace, None)?;
                    }
                }
                Ok(())
            }
            other => Err(corrupt(&format!("piece kind {other}"))),
        }
    }
}

/// An operator's meta: the piece's kind, then the operator's own fields. Meta written
/// before kinds existed is exactly `legacy_len` bytes of fields, with a backend piece.
pub fn split_meta(meta: &[u8], legacy_len: usize) -> ExecResult<(u8, &[u8])> {
    match meta.len() == legacy_len {
        true => Ok((BACKEND, meta)),
        false => meta.split_first().map(|(kind, rest)| (*kind, rest)).ok_or_else(|| corrupt("an empty meta")),
    }
}

/// `tag | key length | key | row` split into its parts.
fn split_stored_key(stored: &[u8]) -> ExecResult<(u8, &[u8], &[u8])> {
    let (&tag, rest) = stored.split_first().ok_or_else(|| corrupt("an empty key"))?;
    let len = rest
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| corrupt("a key length"))? as usize;
    let key = rest.get(4..4 + len).ok_or_else(|| corrupt("a key"))?;
    let row = rest.get(4 + len..).ok_or_else(|| corrupt("a row"))?;
    Ok((tag, key, row))
}

/// Receives a memory piece's entry: key group, stored key, value (`None`: removed).
type EntryVisitor<'a> = dyn FnMut(u16, &[u8], Option<&[u8]>) -> ExecResult<()> + 'a;

/// Reads a memory piece's entries up to `END`, each as key group, stored key and value
/// (`None`: removed).
fn read_entries(input: &mut dyn Read, apply: &mut EntryVisitor<'_>) -> ExecResult<()> {
    let mut input = BufReader::new(input);
    let mut stored = Vec::new();
    let mut value = [0u8; 24];
    loop {
        let tag = state_codec::read_u8(&mut input).map_err(|e| corrupt(&e.to_string()))?;
        if tag == END {
            return Ok(());
        }
        let mut group = [0u8; 2];
        input.read_exact(&mut group).map_err(|e| corrupt(&e.to_string()))?;
        state_codec::read_bytes(&mut input, &mut stored).map_err(|e| corrupt(&e.to_string()))?;
        match tag {
            PUT => {
                input.read_exact(&mut value).map_err(|e| corrupt(&e.to_string()))?;
                apply(u16::from_le_bytes(group), &stored, Some(&value))?;
            }
            REMOVE => apply(u16::from_le_bytes(group), &stored, None)?,
            other => return Err(corrupt(&format!("entry tag {other}"))),
        }
    }
}

fn corrupt(what: &str) -> ExecError {
    ExecError::Internal(format!("keyed rows snapshot: {what} is corrupt"))
}

#[cfg(test)]
mod tests {
    use weir_storage::keyed_state::InMemoryStateBackend;

    use super::*;

    const NS: StateNamespace =
        StateNamespace { job: 1, deployment: 0, vertex: 2, subtask: 0, operator_index: 0 };

    fn state<'a>(
        sides: &'a mut [KeyedRows],
        backend: &'a InMemoryStateBackend,
        in_memory: bool,
    ) -> RowsState<'a> {
        RowsState { sides, backend, namespace: NS, in_memory }
    }

    /// A piece's kind, bytes and delta flag.
    fn piece(side: &mut KeyedRows, backend: &InMemoryStateBackend, incremental: bool) -> (u8, Vec<u8>, bool) {
        let (kind, deferred, delta) =
            state(std::slice::from_mut(side), backend, true).snapshot(incremental).unwrap();
        let mut bytes = Vec::new();
        deferred(&mut bytes).unwrap();
        (kind, bytes, delta)
    }

    /// A live row: key, row, count, degree, expires.
    type Held = (Vec<u8>, Vec<u8>, i64, i64, i64);

    /// Every live row, sorted.
    fn contents(side: &KeyedRows) -> Vec<Held> {
        let mut all: Vec<_> = side
            .keys
            .iter()
            .flat_map(|(key, entry)| {
                entry.live().map(move |(row, s)| (key.to_vec(), row.to_vec(), s.count, s.degree, s.expires))
            })
            .collect();
        all.sort();
        all
    }

    fn apply(
        side: &mut KeyedRows,
        backend: &InMemoryStateBackend,
        group: u16,
        key: &[u8],
        row: &[u8],
        delta: i64,
    ) {
        side.load(backend, NS, group, key).unwrap();
        side.apply(key, row, delta, 1, 77).unwrap();
    }

    #[test]
    fn rows_kept_in_memory_checkpoint_as_a_full_piece_then_deltas_that_restore_the_same_rows() {
        let backend = InMemoryStateBackend::default();
        let mut side = KeyedRows::new(0).kept_in_memory();
        apply(&mut side, &backend, 3, b"k", b"a", 2);
        apply(&mut side, &backend, 3, b"k", b"b", 1);
        // The first piece is full even when a delta is allowed.
        let (kind, full, delta) = piece(&mut side, &backend, true);
        assert_eq!((kind, delta), (FULL, false));
        // Then: a stored row goes, a row comes and goes, a new key comes.
        apply(&mut side, &backend, 3, b"k", b"a", -2);
        apply(&mut side, &backend, 3, b"k", b"brief", 1);
        apply(&mut side, &backend, 3, b"k", b"brief", -1);
        apply(&mut side, &backend, 5, b"k2", b"d", 1);
        side.drop_gone();
        let (kind, changes, delta) = piece(&mut side, &backend, true);
        assert_eq!((kind, delta), (DELTA, true));
        let mut entries = Vec::new();
        read_entries(&mut changes.as_slice(), &mut |group, stored, value| {
            entries.push((group, split_stored_key(stored)?.2.to_vec(), value.is_some()));
            Ok(())
        })
        .unwrap();
        entries.sort();
        assert_eq!(
            entries,
            vec![(3, b"a".to_vec(), false), (5, b"d".to_vec(), true)],
            "the brief row is not in it"
        );

        // Both pieces, in order, give back the rows, counts, degrees and expiries.
        let mut restored = KeyedRows::new(0).kept_in_memory();
        for (kind, bytes) in [(FULL, &full), (DELTA, &changes)] {
            state(std::slice::from_mut(&mut restored), &backend, true)
                .restore(kind, &mut bytes.as_slice(), None, None)
                .unwrap();
        }
        assert_eq!(contents(&restored), contents(&side));
        assert_eq!(restored.total_rows, 2);
        // A full piece replaces what was there.
        let (_, full_again, _) = piece(&mut side, &backend, false);
        apply(&mut restored, &backend, 9, b"stale", b"x", 1);
        state(std::slice::from_mut(&mut restored), &backend, true)
            .restore(FULL, &mut full_again.as_slice(), None, None)
            .unwrap();
        assert_eq!(contents(&restored), contents(&side));
    }

    #[test]
    fn a_rescale_keeps_the_owned_key_groups_and_a_backend_restores_a_full_piece_but_refuses_a_delta() {
        let backend = InMemoryStateBackend::default();
        let mut side = KeyedRows::new(0).kept_in_memory();
        apply(&mut side, &backend, 3, b"k3", b"a", 1);
        apply(&mut side, &backend, 100, b"k100", b"b", 1);
        let (_, full, _) = piece(&mut side, &backend, false);

        let scope = RescaleScope::new(0, 0, 2);
        assert!(scope.owns(3) && !scope.owns(100));
        let mut share = KeyedRows::new(0).kept_in_memory();
        state(std::slice::from_mut(&mut share), &backend, true)
            .restore(FULL, &mut full.as_slice(), Some(&scope), None)
            .unwrap();
        assert_eq!(contents(&share), vec![(b"k3".to_vec(), b"a".to_vec(), 1, 1, 77)]);

        // State in a backend (a restart with RocksDB) takes the full piece into the backend.
        let mut in_backend = KeyedRows::new(0);
        state(std::slice::from_mut(&mut in_backend), &backend, false)
            .restore(FULL, &mut full.as_slice(), None, None)
            .unwrap();
        assert_eq!(in_backend.total_rows, 2);
        in_backend.load(&backend, NS, 100, b"k100").unwrap();
        assert_eq!(in_backend.get(b"k100").map(|e| e.live().count()), Some(1));
        let delta = [END];
        let refused = state(std::slice::from_mut(&mut in_backend), &backend, false).restore(
            DELTA,
            &mut delta.as_slice(),
            None,
            None,
        );
        assert!(refused.is_err());
    }

    #[test]
    fn rows_kept_in_memory_restore_a_backend_snapshot_written_before_pieces_had_kinds() {
        // As a join or Top-N wrote checkpoints before: its rows in the backend, the
        // backend's snapshot of the namespace as the piece.
        let backend = InMemoryStateBackend::default();
        let mut old = KeyedRows::new(0);
        apply(&mut old, &backend, 3, b"k", b"a", 2);
        let mut batch = StateWriteBatch::default();
        old.flush(&mut batch);
        backend.write(NS, batch).unwrap();
        let mut legacy = Vec::new();
        backend.snapshot(NS, 0..weir_plan::KEY_GROUPS, &mut legacy).unwrap();
        backend.drop_namespace(NS).unwrap();

        let meta = 1u64.to_le_bytes();
        let (kind, fields) = split_meta(&meta, 8).unwrap();
        assert_eq!((kind, fields), (BACKEND, meta.as_slice()));
        let mut side = KeyedRows::new(0).kept_in_memory();
        state(std::slice::from_mut(&mut side), &backend, true)
            .restore(kind, &mut legacy.as_slice(), None, Some(&[1]))
            .unwrap();
        assert_eq!(contents(&side), vec![(b"k".to_vec(), b"a".to_vec(), 2, 1, 77)]);
        // Nothing stays behind in the backend, and the next piece is full.
        let mut left = 0;
        backend
            .scan(NS, 0..weir_plan::KEY_GROUPS, &[], &mut |_, _, _| {
                left += 1;
                true
            })
            .unwrap();
        assert_eq!(left, 0);
        assert_eq!(piece(&mut side, &backend, true).0, FULL);
    }

    #[test]
    fn without_checkpoints_rows_kept_in_memory_leave_nothing_behind_when_they_go() {
        let backend = InMemoryStateBackend::default();
        let mut side = KeyedRows::new(0).kept_in_memory();
        for i in 0..100u32 {
            apply(&mut side, &backend, 1, &i.to_le_bytes(), b"r", 1);
            apply(&mut side, &backend, 1, &i.to_le_bytes(), b"r", -1);
        }
        assert_eq!(side.resident_keys(), 0);
        assert!(side.dirty_keys.is_empty());
        assert_eq!(side.total_rows, 0);
    }
}
