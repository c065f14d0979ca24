//! Watermark alignment: the event-time sources of one job read in step.
//!
//! Sources read as fast as they can, so in a job that reads two of them one may run far
//! ahead of the other in event time (Nexmark's auction source covers about fifteen times
//! more event time per row than its bid source). Everything the fast one reads beyond the
//! slow one's watermark waits in the job's state (a join's build side, open windows) until
//! the slow one catches up, however small the state backend's cache. Flink answers this
//! with `scan.watermark.alignment`; so does Weir: a source subtask whose watermark leads the
//! slowest member of its job's [`AlignmentGroup`] by more than the job's maximum drift
//! pauses reading until the others catch up.
//!
//! It can never stall a job:
//!
//! * a split that has not read yet counts as the slowest, until it reads rows or goes idle,
//!   and so does one that has not even started: a group knows how many members to expect
//!   in the process (otherwise the first source deployed would read freely until the
//!   others had started and read their first rows);
//! * an idle split (it sent `Idle`), a finished one, and one whose rows carry no event time
//!   do not count, and a subtask that stops (its job was cancelled) leaves the group;
//! * the slowest counted member is never paused (it cannot lead itself), so some source
//!   always reads, and as it advances the others resume;
//! * a paused source keeps serving barriers, so checkpoints and `FLUSH` complete while it
//!   waits.
//!
//! Sources without a watermark and tables are not members: a table's watermark moves only
//! when rows are written, so it would hold a source back forever. Groups live in the
//! process ([`AlignmentGroups`], one per server, shared by its in-process TaskManagers): on
//! a cluster, the sources of a job that run on one TaskManager are aligned with each other.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::watch;

use crate::task::TaskId;

/// A source subtask's part in its job's alignment, as the JobManager deploys it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceAlignment {
    /// The most its watermark may lead the slowest member's, in microseconds.
    pub max_drift_us: i64,
    /// The aligned source subtasks of the deployment that run in the same process (the
    /// members its group waits for).
    pub members_in_process: usize,
}

/// Where a member of a group is in event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Nothing read yet: counted as behind every other member.
    Starting,
    /// Rows read, none with an event time (a NULL time column): not counted, or such a
    /// split would hold the others back for good.
    Untimed,
    /// Reading, with this watermark (microseconds): counted.
    Active(i64),
    /// Idle (no rows for its `idle_timeout_ms`): not counted, like downstream.
    Idle,
    /// Read to its end: not counted.
    Finished,
}

/// Whether `me` must pause in a group whose members are at `members`, with `missing`
/// members yet to join: `Some(slowest)` (the smallest watermark counted) when `me` is
/// active and its watermark leads it by more than `max_drift`, else `None`.
pub fn must_pause(
    members: &BTreeMap<TaskId, Progress>,
    missing: usize,
    me: TaskId,
    max_drift: i64,
) -> Option<i64> {
    let Some(Progress::Active(mine)) = members.get(&me) else { return None };
    let not_started = (missing > 0).then_some(i64::MIN);
    let slowest = members
        .values()
        .filter_map(|p| match p {
            Progress::Active(w) => Some(*w),
            Progress::Starting => Some(i64::MIN),
            Progress::Untimed | Progress::Idle | Progress::Finished => None,
        })
        .chain(not_started)
        .min()?;
    (*mine > slowest.saturating_add(max_drift)).then_some(slowest)
}

/// The aligned sources of one deployment of one job.
pub struct AlignmentGroup {
    job: u64,
    max_drift: i64,
    members: Mutex<Members>,
    /// Bumped at every change of a member, to wake paused ones.
    changed: watch::Sender<u64>,
}

/// The members of a group: where each is, and how many have not joined yet.
struct Members {
    progress: BTreeMap<TaskId, Progress>,
    /// Members expected in the process that have not joined yet. One that joined and left
    /// (its task stopped) is not waited for again.
    missing: usize,
}

impl AlignmentGroup {
    fn set(&self, task: TaskId, progress: Option<Progress>) {
        let Ok(mut members) = self.members.lock() else { return };
        let before = members.progress.get(&task).copied();
        match progress {
            Some(p) => members.progress.insert(task, p),
            None => members.progress.remove(&task),
        };
        drop(members);
        if before != progress {
            self.changed.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    fn enter(&self, task: TaskId) {
        if let Ok(mut members) = self.members.lock() {
            if !members.progress.contains_key(&task) {
                members.missing = members.missing.saturating_sub(1);
            }
        }
        self.set(task, Some(Progress::Starting));
    }

    fn check(&self, task: TaskId) -> Option<i64> {
        let members = self.members.lock().ok()?;
        must_pause(&members.progress, members.missing, task, self.max_drift)
    }
}

/// Every alignment group of the process, by job and deployment. A group lives as long as
/// one of its members.
#[derive(Default)]
pub struct AlignmentGroups {
    groups: Mutex<HashMap<(u64, u64), Weak<AlignmentGroup>>>,
}

impl AlignmentGroups {
    /// Enters source subtask `task` of `deployment` into its job's group.
    pub fn join(&self, task: TaskId, deployment: u64, alignment: SourceAlignment) -> AlignmentMember {
        let group = match self.groups.lock() {
            Ok(mut groups) => {
                groups.retain(|_, g| g.strong_count() > 0);
                match groups.get(&(task.job, deployment)).and_then(Weak::upgrade) {
                    Some(group) => group,
                    None => {
                        let group = Arc::new(new_group(task.job, alignment));
                        groups.insert((task.job, deployment), Arc::downgrade(&group));
                        group
                    }
                }
            }
            // A poisoned table: align this subtask with nobody rather than fail the job.
            Err(_) => Arc::new(new_group(task.job, SourceAlignment { members_in_process: 1, ..alignment })),
        };
        group.enter(task);
        let changes = group.changed.subscribe();
        AlignmentMember { group, task, changes }
    }
}

fn new_group(job: u64, alignment: SourceAlignment) -> AlignmentGroup {
    AlignmentGroup {
        job,
        max_drift: alignment.max_drift_us,
        members: Mutex::new(Members { progress: BTreeMap::new(), missing: alignment.members_in_process }),
        changed: watch::channel(0).0,
    }
}

/// A source subtask's place in its job's alignment group; it leaves the group when dropped.
pub struct AlignmentMember {
    group: Arc<AlignmentGroup>,
    task: TaskId,
    changes: watch::Receiver<u64>,
}

impl AlignmentMember {
    pub fn job(&self) -> u64 {
        self.group.job
    }

    /// The job's maximum drift, in microseconds.
    pub fn max_drift(&self) -> i64 {
        self.group.max_drift
    }

    /// The member read rows; its watermark is `watermark` (`None`: none yet).
    pub fn reading(&self, watermark: Option<i64>) {
        self.group.set(self.task, Some(watermark.map_or(Progress::Untimed, Progress::Active)));
    }

    pub fn idle(&self) {
        self.group.set(self.task, Some(Progress::Idle));
    }

    pub fn finished(&self) {
        self.group.set(self.task, Some(Progress::Finished));
    }

    /// `Some(slowest watermark)` while this member must pause.
    pub fn must_pause(&self) -> Option<i64> {
        self.group.check(self.task)
    }

    /// Resolves when a member of the group changed since the last call.
    pub async fn changed(&mut self) {
        if self.changes.changed().await.is_err() {
            // The sender lives in the group this member holds: it cannot be gone, but a
            // caller that is woken for nothing only checks again.
            tokio::task::yield_now().await;
        }
    }
}

impl Drop for AlignmentMember {
    fn drop(&mut self) {
        self.group.set(self.task, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn task(subtask: usize) -> TaskId {
        TaskId { job: 1, vertex: subtask, subtask: 0 }
    }

    fn members(progress: &[Progress]) -> BTreeMap<TaskId, Progress> {
        progress.iter().enumerate().map(|(i, p)| (task(i), *p)).collect()
    }

    #[test]
    fn a_member_pauses_only_beyond_the_drift_from_the_slowest() {
        let m = members(&[Progress::Active(100 * S), Progress::Active(110 * S), Progress::Active(111 * S)]);
        assert_eq!(must_pause(&m, 0, task(0), 10 * S), None, "the slowest never pauses");
        assert_eq!(must_pause(&m, 0, task(1), 10 * S), None, "exactly the drift ahead reads on");
        assert_eq!(must_pause(&m, 0, task(2), 10 * S), Some(100 * S));
        assert_eq!(must_pause(&m, 0, task(2), 11 * S), None);
    }

    fn aligned(members_in_process: usize) -> SourceAlignment {
        SourceAlignment { max_drift_us: S, members_in_process }
    }

    #[test]
    fn a_member_that_has_not_started_holds_the_others_back() {
        let m = members(&[Progress::Active(0), Progress::Active(500 * S)]);
        assert_eq!(must_pause(&m, 1, task(0), S), Some(i64::MIN));
        let groups = AlignmentGroups::default();
        let first = groups.join(task(0), 1, aligned(2));
        first.reading(Some(500 * S));
        assert_eq!(first.must_pause(), Some(i64::MIN), "the second source has not started");
        let second = groups.join(task(1), 1, aligned(2));
        assert_eq!(first.must_pause(), Some(i64::MIN), "the second source has not read");
        second.reading(Some(499 * S));
        assert_eq!(first.must_pause(), None);
        // One that leaves is not waited for again.
        drop(second);
        assert_eq!(first.must_pause(), None);
    }

    #[test]
    fn a_member_that_has_not_read_yet_holds_the_others_back() {
        let m = members(&[Progress::Starting, Progress::Active(i64::MIN + 1), Progress::Starting]);
        assert_eq!(must_pause(&m, 0, task(1), 0), Some(i64::MIN));
        // It reads, of course.
        assert_eq!(must_pause(&m, 0, task(0), 0), None);
        assert_eq!(must_pause(&m, 0, task(2), 0), None);
    }

    #[test]
    fn idle_finished_and_untimed_members_do_not_hold_others_back() {
        for other in [Progress::Idle, Progress::Finished, Progress::Untimed] {
            let m = members(&[other, Progress::Active(500 * S)]);
            assert_eq!(must_pause(&m, 0, task(1), S), None, "{other:?}");
            // Nor are they paused themselves.
            assert_eq!(must_pause(&m, 0, task(0), S), None, "{other:?}");
        }
        // An idle member that reads again counts again, from its watermark.
        let m = members(&[Progress::Active(10 * S), Progress::Active(500 * S)]);
        assert_eq!(must_pause(&m, 0, task(1), S), Some(10 * S));
    }

    #[test]
    fn some_member_can_always_read() {
        // However the watermarks lie, the slowest counted member is never paused.
        let cases: &[&[i64]] = &[&[0, 0], &[i64::MIN, i64::MAX], &[5, 1_000, 2_000, 3_000], &[7; 4]];
        for watermarks in cases {
            let m = members(&watermarks.iter().map(|w| Progress::Active(*w)).collect::<Vec<_>>());
            let reading = (0..watermarks.len()).filter(|&i| must_pause(&m, 0, task(i), 0).is_none()).count();
            assert!(reading >= 1, "{watermarks:?}");
        }
    }

    #[test]
    fn members_leave_their_group_and_wake_paused_ones() {
        let groups = AlignmentGroups::default();
        let slow = groups.join(task(0), 9, aligned(2));
        let mut fast = groups.join(task(1), 9, aligned(2));
        let other_deployment = groups.join(task(0), 10, aligned(1));
        other_deployment.reading(Some(0));
        slow.reading(Some(10 * S));
        fast.reading(Some(20 * S));
        assert_eq!(fast.must_pause(), Some(10 * S));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            fast.changed().await;
            // The slow one advancing wakes the fast one, which may read again.
            slow.reading(Some(19 * S));
            fast.changed().await;
            assert_eq!(fast.must_pause(), None);
            slow.reading(Some(12 * S));
            assert_eq!(fast.must_pause(), Some(12 * S));
            // A stopped member leaves: nothing holds the fast one back.
            drop(slow);
            fast.changed().await;
            assert_eq!(fast.must_pause(), None);
        });
        drop(fast);
        drop(other_deployment);
        assert!(groups.groups.lock().unwrap().values().all(|g| g.strong_count() == 0));
    }
}
