//! Staging and commit, in memory: the [`ViewStateStore`] of a single process.
//!
//! Staged versions wait per partition, in epoch order, until a commit at or after their
//! epoch takes the latest of them; a view is published once every partition has a version.
//! Everything here is lost with the process, and a restart rebuilds views from the tables.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use arrow::datatypes::SchemaRef;

use weir_plan::catalog::TableId;

use super::{ViewRows, ViewSnapshot, ViewStateStore, ViewVersion};

struct Registered {
    schema: SchemaRef,
    /// The deployment of the view's job whose materialize tasks stage versions.
    deployment: u64,
    /// Latest staged version per partition with its epoch; `None` until the subtask first
    /// finishes an epoch.
    staged: Vec<Vec<(u64, ViewRows)>>,
    current: Vec<Option<ViewRows>>,
    /// Set when the view's job failed: staged versions are ignored from then on.
    frozen: bool,
    /// What the view showed before its job was deployed again with another number of
    /// partitions (a rescale): published until every new partition has a version.
    before_rescale: Option<Vec<ViewRows>>,
}

/// The in-memory [`ViewStateStore`]: staged versions and the published snapshot of every
/// view live in this process; a restart rebuilds them from the tables.
#[derive(Default)]
pub struct InMemoryViewStates {
    registered: Mutex<HashMap<TableId, Registered>>,
    committed: RwLock<Arc<ViewSnapshot>>,
}

impl InMemoryViewStates {
    pub fn new() -> Self {
        Self::default()
    }
}

impl ViewStateStore for InMemoryViewStates {
    /// Starts tracking a view with `partitions` materialize subtasks. It becomes visible with
    /// the first commit after every partition has staged a version.
    fn register(&self, view: TableId, deployment: u64, schema: SchemaRef, partitions: usize) {
        if let Ok(mut registered) = self.registered.lock() {
            // A job deployed again after a failure: its view keeps showing what it last
            // published until every partition has staged again.
            if let Some(r) = registered.get_mut(&view).filter(|r| r.current.len() == partitions) {
                r.frozen = false;
                r.schema = schema;
                r.deployment = deployment;
                r.staged.iter_mut().for_each(Vec::clear);
                return;
            }
            // Rescaled: the old partitions' contents stay visible until the new ones are in.
            let before_rescale = registered.get(&view).and_then(|r| {
                let published: Option<Vec<ViewRows>> = r.current.iter().cloned().collect();
                published.or_else(|| r.before_rescale.clone())
            });
            registered.insert(
                view,
                Registered {
                    schema,
                    deployment,
                    staged: vec![Vec::new(); partitions],
                    current: vec![None; partitions],
                    frozen: false,
                    before_rescale,
                },
            );
        }
    }

    /// Records partition `partition` of `view` as of the end of `epoch`.
    fn stage(&self, view: TableId, deployment: u64, partition: usize, epoch: u64, rows: ViewRows) {
        if let Ok(mut registered) = self.registered.lock() {
            let live = registered.get_mut(&view).filter(|r| !r.frozen && r.deployment == deployment);
            if let Some(slot) = live.and_then(|r| r.staged.get_mut(partition)) {
                slot.push((epoch, rows));
            }
        }
    }

    /// Publishes every view as of `epoch`: each partition's latest version staged at or
    /// before `epoch`. Returns the new snapshot.
    fn commit(&self, epoch: u64) -> Arc<ViewSnapshot> {
        let mut views = HashMap::new();
        if let Ok(mut registered) = self.registered.lock() {
            for (id, view) in registered.iter_mut() {
                for (staged, current) in view.staged.iter_mut().zip(view.current.iter_mut()) {
                    // Versions are staged in epoch order.
                    let upto = staged.iter().take_while(|(e, _)| *e <= epoch).count();
                    if let Some((_, rows)) = staged.drain(..upto).next_back() {
                        *current = Some(rows);
                    }
                }
                if view.current.iter().all(Option::is_some) {
                    view.before_rescale = None;
                    let partitions = view.current.iter().flatten().cloned().collect();
                    views.insert(*id, Arc::new(ViewVersion { schema: view.schema.clone(), partitions }));
                } else if let Some(partitions) = &view.before_rescale {
                    let partitions = partitions.clone();
                    views.insert(*id, Arc::new(ViewVersion { schema: view.schema.clone(), partitions }));
                }
            }
        }
        let snapshot = Arc::new(ViewSnapshot { epoch, views });
        if let Ok(mut committed) = self.committed.write() {
            *committed = snapshot.clone();
        }
        snapshot
    }

    /// Keeps a view at its last published contents: versions staged after a failure may
    /// cover only some partitions, so none of them is published.
    fn freeze(&self, view: TableId) {
        if let Ok(mut registered) = self.registered.lock() {
            if let Some(r) = registered.get_mut(&view) {
                r.frozen = true;
                r.staged.iter_mut().for_each(Vec::clear);
            }
        }
    }

    /// Forgets a dropped view; the next commit no longer contains it.
    fn remove(&self, view: TableId) {
        if let Ok(mut registered) = self.registered.lock() {
            registered.remove(&view);
        }
        if let Ok(mut committed) = self.committed.write() {
            if committed.views.contains_key(&view) {
                let mut next = (**committed).clone();
                next.views.remove(&view);
                *committed = Arc::new(next);
            }
        }
    }

    /// The latest committed snapshot.
    fn snapshot(&self) -> Arc<ViewSnapshot> {
        self.committed.read().map(|c| c.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::Schema;

    use super::*;

    fn rows(items: &[(&[u8], i64)]) -> ViewRows {
        items.iter().map(|(k, v)| (Arc::<[u8]>::from(*k), *v)).collect()
    }

    #[test]
    fn a_view_becomes_visible_once_every_partition_staged() {
        let states = InMemoryViewStates::new();
        states.register(7, 0, Arc::new(Schema::empty()), 2);
        states.stage(7, 0, 0, 1, rows(&[(b"a", 1)]));
        assert!(states.commit(1).views.is_empty());
        states.stage(7, 0, 1, 2, rows(&[(b"b", 2)]));
        let snap = states.commit(2);
        assert_eq!(snap.epoch, 2);
        assert_eq!(snap.views[&7].row_count(), 3);
    }

    #[test]
    fn commit_takes_the_latest_version_not_after_the_epoch() {
        let states = InMemoryViewStates::new();
        states.register(1, 0, Arc::new(Schema::empty()), 1);
        states.stage(1, 0, 0, 1, rows(&[(b"a", 1)]));
        states.stage(1, 0, 0, 2, rows(&[(b"a", 1), (b"b", 1)]));
        states.stage(1, 0, 0, 3, rows(&[]));
        assert_eq!(states.commit(2).views[&1].row_count(), 2);
        // Readers holding the epoch-2 snapshot keep seeing it after later commits.
        let old = states.snapshot();
        assert_eq!(states.commit(3).views[&1].row_count(), 0);
        assert_eq!(old.views[&1].row_count(), 2);
    }

    #[test]
    fn a_view_registered_again_with_other_partitions_shows_its_old_contents_until_all_new_ones_stage() {
        let states = InMemoryViewStates::new();
        states.register(1, 0, Arc::new(Schema::empty()), 2);
        states.stage(1, 0, 0, 1, rows(&[(b"a", 1)]));
        states.stage(1, 0, 1, 1, rows(&[(b"b", 1)]));
        assert_eq!(states.commit(1).views[&1].row_count(), 2);
        states.register(1, 0, Arc::new(Schema::empty()), 3);
        states.stage(1, 0, 0, 2, rows(&[(b"a", 1)]));
        assert_eq!(states.commit(2).views[&1].row_count(), 2, "still the old partitions");
        states.stage(1, 0, 1, 3, rows(&[]));
        states.stage(1, 0, 2, 3, rows(&[(b"b", 1), (b"c", 1)]));
        assert_eq!(states.commit(3).views[&1].row_count(), 3);
    }

    #[test]
    fn a_frozen_view_keeps_its_last_published_contents() {
        let states = InMemoryViewStates::new();
        states.register(1, 0, Arc::new(Schema::empty()), 2);
        states.stage(1, 0, 0, 1, rows(&[(b"a", 1)]));
        states.stage(1, 0, 1, 1, rows(&[(b"b", 1)]));
        states.commit(1);
        // Partition 0 finished epoch 2, then partition 1 failed.
        states.stage(1, 0, 0, 2, rows(&[]));
        states.freeze(1);
        states.stage(1, 0, 0, 3, rows(&[]));
        assert_eq!(states.commit(3).views[&1].row_count(), 2);
    }

    #[test]
    fn versions_of_an_earlier_deployment_are_ignored() {
        let states = InMemoryViewStates::new();
        states.register(1, 10, Arc::new(Schema::empty()), 1);
        states.stage(1, 10, 0, 1, rows(&[(b"a", 1)]));
        states.commit(1);
        // The job fails and is deployed again; its cancelled task stages once more, with an
        // epoch below the new task's, after the new one did.
        states.freeze(1);
        states.register(1, 11, Arc::new(Schema::empty()), 1);
        states.stage(1, 11, 0, 5, rows(&[(b"b", 1)]));
        states.stage(1, 10, 0, 4, rows(&[(b"stale", 1), (b"x", 1), (b"y", 1)]));
        assert_eq!(states.commit(5).views[&1].row_count(), 1);
        states.stage(1, 10, 0, 6, rows(&[(b"stale", 1), (b"x", 1)]));
        assert_eq!(states.commit(6).views[&1].row_count(), 1);
    }

    #[test]
    fn removed_views_disappear() {
        let states = InMemoryViewStates::new();
        states.register(1, 0, Arc::new(Schema::empty()), 1);
        states.stage(1, 0, 0, 1, rows(&[(b"a", 1)]));
        states.commit(1);
        states.remove(1);
        assert!(states.snapshot().views.is_empty());
        assert!(states.commit(2).views.is_empty());
    }
}
