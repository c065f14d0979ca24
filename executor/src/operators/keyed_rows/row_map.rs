//! [`RowMap`]: the rows of one key, ordered by their bytes, with their state.
//!
//! Most keys hold one row or a few: a window join's key is the window and the join key, a
//! dedup partition keeps one row. A `BTreeMap` allocates a whole node (room for eleven rows,
//! over 500 bytes) for the first row of every key, which made those nodes most of a join's
//! memory. So a key's first rows are kept in a sorted vector, exactly as long as it needs,
//! and only a key that grows past [`FEW`] rows moves to a `BTreeMap`, where inserting stays
//! cheap however many rows a hot key gathers.

use std::collections::btree_map;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::RowState;

/// Past this many rows a key's rows move to a `BTreeMap`.
const FEW: usize = 16;

#[derive(Debug)]
pub enum RowMap {
    /// Sorted by row bytes, each row once.
    Few(Vec<(Arc<[u8]>, RowState)>),
    Many(BTreeMap<Arc<[u8]>, RowState>),
}

impl Default for RowMap {
    fn default() -> Self {
        RowMap::Few(Vec::new())
    }
}

impl RowMap {
    pub fn len(&self) -> usize {
        match self {
            RowMap::Few(rows) => rows.len(),
            RowMap::Many(rows) => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rows in order of their bytes.
    pub fn iter(&self) -> Iter<'_> {
        match self {
            RowMap::Few(rows) => Iter::Few(rows.iter()),
            RowMap::Many(rows) => Iter::Many(rows.iter()),
        }
    }

    /// Rows in order of their bytes, their states to change.
    pub fn iter_mut(&mut self) -> IterMut<'_> {
        match self {
            RowMap::Few(rows) => IterMut::Few(rows.iter_mut()),
            RowMap::Many(rows) => IterMut::Many(rows.iter_mut()),
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &Arc<[u8]>> {
        self.iter().map(|(row, _)| row)
    }

    pub fn get(&self, row: &[u8]) -> Option<&RowState> {
        self.get_key_value(row).map(|(_, state)| state)
    }

    /// The stored row equal to `row` (to share its bytes) and its state.
    pub fn get_key_value(&self, row: &[u8]) -> Option<(&Arc<[u8]>, &RowState)> {
        match self {
            RowMap::Few(rows) => {
                let at = find(rows, row).ok()?;
                rows.get(at).map(|(r, s)| (r, s))
            }
            RowMap::Many(rows) => rows.get_key_value(row),
        }
    }

    pub fn get_mut(&mut self, row: &[u8]) -> Option<&mut RowState> {
        match self {
            RowMap::Few(rows) => {
                let at = find(rows, row).ok()?;
                rows.get_mut(at).map(|(_, s)| s)
            }
            RowMap::Many(rows) => rows.get_mut(row),
        }
    }

    /// Sets the state of `row`.
    pub fn insert(&mut self, row: Arc<[u8]>, state: RowState) {
        *self.get_or_insert_default(row) = state;
    }

    /// The state of `row`, inserted as the default state if the key does not hold it.
    pub fn get_or_insert_default(&mut self, row: Arc<[u8]>) -> &mut RowState {
        if let RowMap::Few(rows) = self {
            if rows.len() >= FEW && find(rows, &row).is_err() {
                let many: BTreeMap<_, _> = std::mem::take(rows).into_iter().collect();
                *self = RowMap::Many(many);
            }
        }
        match self {
            RowMap::Few(rows) => {
                let at = match find(rows, &row) {
                    Ok(at) => at,
                    Err(at) => {
                        if rows.is_empty() {
                            // Most keys never get a second row.
                            rows.reserve_exact(1);
                        }
                        rows.insert(at, (row, RowState::default()));
                        at
                    }
                };
                &mut rows[at].1
            }
            RowMap::Many(rows) => rows.entry(row).or_default(),
        }
    }

    pub fn remove(&mut self, row: &[u8]) -> Option<RowState> {
        match self {
            RowMap::Few(rows) => {
                let at = find(rows, row).ok()?;
                let (_, state) = rows.remove(at);
                if rows.capacity() > 2 * rows.len() + 4 {
                    rows.shrink_to_fit();
                }
                Some(state)
            }
            RowMap::Many(rows) => rows.remove(row),
        }
    }

    /// Keeps the rows for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Arc<[u8]>, &mut RowState) -> bool) {
        match self {
            RowMap::Few(rows) => rows.retain_mut(|(row, state)| keep(row, state)),
            RowMap::Many(rows) => rows.retain(|row, state| keep(row, state)),
        }
    }
}

/// Where `row` is in sorted `rows`, or where it would go.
fn find(rows: &[(Arc<[u8]>, RowState)], row: &[u8]) -> Result<usize, usize> {
    rows.binary_search_by(|(stored, _)| stored.as_ref().cmp(row))
}

pub enum Iter<'a> {
    Few(std::slice::Iter<'a, (Arc<[u8]>, RowState)>),
    Many(btree_map::Iter<'a, Arc<[u8]>, RowState>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a Arc<[u8]>, &'a RowState);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Few(rows) => rows.next().map(|(r, s)| (r, s)),
            Iter::Many(rows) => rows.next(),
        }
    }
}

pub enum IterMut<'a> {
    Few(std::slice::IterMut<'a, (Arc<[u8]>, RowState)>),
    Many(btree_map::IterMut<'a, Arc<[u8]>, RowState>),
}

impl<'a> Iterator for IterMut<'a> {
    type Item = (&'a Arc<[u8]>, &'a mut RowState);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            IterMut::Few(rows) => rows.next().map(|(r, s)| (&*r, s)),
            IterMut::Many(rows) => rows.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(count: i64) -> RowState {
        RowState { count, ..Default::default() }
    }

    /// The same operations on a `RowMap` and a `BTreeMap` leave the same rows, in the same
    /// order, across the move from a vector to a tree.
    #[test]
    fn behaves_as_an_ordered_map_before_and_after_it_grows() {
        let mut map = RowMap::default();
        let mut model: BTreeMap<Arc<[u8]>, RowState> = BTreeMap::new();
        // A fixed pseudo-random walk of inserts, updates and removes over 40 rows.
        let mut x: u64 = 7;
        for step in 0..2000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let row: Arc<[u8]> = Arc::from(format!("row{:02}", (x >> 33) % 40).as_bytes());
            match (x >> 20) % 4 {
                0 => assert_eq!(map.remove(&row).map(|s| s.count), model.remove(&row).map(|s| s.count)),
                1 => {
                    map.insert(row.clone(), state(step));
                    model.insert(row, state(step));
                }
                _ => {
                    map.get_or_insert_default(row.clone()).count += 1;
                    model.entry(row).or_default().count += 1;
                }
            }
            assert_eq!(map.len(), model.len());
            let ours: Vec<_> = map.iter().map(|(r, s)| (r.clone(), s.count)).collect();
            let theirs: Vec<_> = model.iter().map(|(r, s)| (r.clone(), s.count)).collect();
            assert_eq!(ours, theirs, "step {step}");
        }
        assert!(matches!(map, RowMap::Many(_)), "40 rows outgrow the vector");
        map.retain(|row, _| row.as_ref() < b"row20".as_slice());
        model.retain(|row, _| row.as_ref() < b"row20".as_slice());
        assert!(map.keys().eq(model.keys()));
        for (_, s) in map.iter_mut() {
            s.degree = 5;
        }
        assert!(map.iter().all(|(_, s)| s.degree == 5));
        assert_eq!(map.get(b"row03").map(|s| s.count), model.get(b"row03".as_slice()).map(|s| s.count));
    }

    #[test]
    fn a_key_with_one_row_holds_one_slot() {
        let mut map = RowMap::default();
        map.get_or_insert_default(Arc::from(b"only".as_slice())).count = 1;
        match &map {
            RowMap::Few(rows) => assert_eq!(rows.capacity(), 1),
            RowMap::Many(_) => panic!("one row is kept in the vector"),
        }
        assert_eq!(
            map.get_key_value(b"only").map(|(r, s)| (r.as_ref(), s.count)),
            Some((b"only".as_slice(), 1))
        );
    }
}
