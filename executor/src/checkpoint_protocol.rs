//! The checkpoint coordinator's decisions, as pure logic.
//!
//! A checkpoint of a job is identified by an epoch: when every task of the job has passed
//! `Barrier(N)` (barriers are aligned, see [`crate::task`]) and uploaded the state it held at
//! that point, the pieces together with the sources' offsets are a consistent snapshot of
//! the job as of `N` (Flink's asynchronous barrier snapshots).
//!
//! This module decides *what* happens — which acknowledgements count, when a checkpoint is
//! complete, when it is abandoned, which stored files may be deleted, what to restore — and
//! never *does* anything: no I/O, no async, no clock reads. Time comes in as millisecond
//! values supplied by the caller. That keeps every rule testable deterministically (a
//! timeout is a number, not a sleep) and leaves the effects — writing commit records,
//! deleting files — to the one place that owns the store.
//!
//! The JobManager actor ([`crate::job_manager`]) will keep one [`CheckpointCoordinator`] per
//! job and drive it from its event loop:
//!
//! * when it injects `Barrier(N)` it calls [`CheckpointCoordinator::trigger`] with the tasks
//!   of the job (it stops injecting while [`CheckpointCoordinator::in_flight`] is at its
//!   limit);
//! * each task's report becomes [`CheckpointCoordinator::acknowledge`] or
//!   [`CheckpointCoordinator::decline`]; on its timer it calls
//!   [`CheckpointCoordinator::expire`]; when the job fails or restarts,
//!   [`CheckpointCoordinator::abandon_all`];
//! * every [`Progress`] returned lists, in epoch order, the checkpoints to commit (write each
//!   [`CheckpointMetadata`] as the commit record) and then the paths to delete — deletion is
//!   only safe once the commit records before it are durable;
//! * every [`Abandoned`] lists pieces to delete;
//! * at startup it reads the commit records, picks one with [`choose_restore`], seeds a
//!   coordinator with [`CheckpointCoordinator::recovered`] and, before triggering anything,
//!   sweeps the store with [`orphan_paths`].
//!
//! Ordering rule: checkpoints commit in epoch order. A checkpoint whose tasks have all
//! acknowledged while an earlier one is still pending waits; it is committed as soon as every
//! earlier one is committed or abandoned (so it may commit in the same call that abandons an
//! earlier one). Only checkpoints still missing acknowledgements time out: a waiting one
//! started after the one it waits for, so that one times out first.
//!
//! Pieces may be shared between checkpoints (incremental state): a path is never reported
//! for deletion while a retained or in-flight checkpoint still refers to it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::message::Epoch;
use crate::task::TaskId;

/// One file of state a task wrote for a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatePiece {
    pub task: TaskId,
    pub path: String,
    pub bytes: u64,
}

/// The commit record of a completed checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMetadata {
    pub job: u64,
    pub epoch: Epoch,
    /// When the checkpoint was triggered, in the caller's milliseconds (wall clock, e.g.
    /// since the Unix epoch).
    pub started: u64,
    /// From trigger to commit.
    pub duration: Duration,
    pub pieces: Vec<StatePiece>,
    /// Offsets reported by source tasks. Serialized as a list of `{task, offset}` entries
    /// (JSON object keys must be strings).
    #[serde(with = "offsets_as_list")]
    pub source_offsets: BTreeMap<TaskId, Value>,
    /// Total bytes of `pieces`.
    pub bytes: u64,
    /// The shape of the deployment the checkpoint was taken of; a job deployed with another
    /// shape (rescaled) restores it by key groups. Absent in records of older releases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<Vec<VertexLayout>>,
}

/// One vertex of a deployment as a checkpoint records it: its parallelism and the
/// operators of its chain, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VertexLayout {
    pub vertex: usize,
    pub parallelism: usize,
    pub operators: Vec<String>,
}

impl CheckpointMetadata {
    /// Whether the record is internally consistent: every piece and offset belongs to the
    /// record's job and `bytes` is the sum of the pieces.
    pub fn is_consistent(&self) -> bool {
        let total = self.pieces.iter().try_fold(0u64, |acc, p| acc.checked_add(p.bytes));
        total == Some(self.bytes)
            && self.pieces.iter().all(|p| p.task.job == self.job)
            && self.source_offsets.keys().all(|t| t.job == self.job)
    }
}

/// Serde for `BTreeMap<TaskId, Value>` as a list of `{task, offset}` entries.
mod offsets_as_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    use crate::task::TaskId;

    #[derive(Serialize)]
    struct EntryRef<'a> {
        task: TaskId,
        offset: &'a Value,
    }

    #[derive(Deserialize)]
    struct Entry {
        task: TaskId,
        offset: Value,
    }

    pub fn serialize<S: Serializer>(map: &BTreeMap<TaskId, Value>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter().map(|(task, offset)| EntryRef { task: *task, offset }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<TaskId, Value>, D::Error> {
        let entries = Vec::<Entry>::deserialize(d)?;
        Ok(entries.into_iter().map(|e| (e.task, e.offset)).collect())
    }
}

/// Coordinator settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointConfig {
    /// A checkpoint not acknowledged by every task this long after its trigger is abandoned.
    pub timeout: Duration,
    /// How many committed checkpoints to keep; values below 1 are treated as 1.
    pub retained: usize,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(600), retained: 1 }
    }
}

/// Why [`CheckpointCoordinator::trigger`] refused a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    #[error("checkpoint {epoch} is not after the last triggered or committed epoch {last}")]
    NotAfterLast { epoch: Epoch, last: Epoch },
    #[error("checkpoint {epoch} has no tasks to acknowledge it")]
    NoTasks { epoch: Epoch },
    #[error("{task} does not belong to job {job}")]
    ForeignTask { job: u64, task: TaskId },
}

/// Why a task's report was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// No checkpoint with this epoch was ever triggered.
    UnknownCheckpoint,
    /// The checkpoint was already committed or abandoned (a late report).
    AlreadyFinished,
    /// The task is not one that must acknowledge this checkpoint.
    ForeignTask,
    /// The task already acknowledged this checkpoint.
    Duplicate,
}

/// What became of an acknowledgement.
#[derive(Debug, Clone, PartialEq)]
pub enum AckOutcome {
    /// Recorded; `remaining` tasks still have to acknowledge.
    Accepted { remaining: usize },
    /// Recorded and every task has acknowledged, but the earlier checkpoint `earlier` is
    /// still pending: this one commits once it is committed or abandoned.
    WaitingForEarlier { earlier: Epoch },
    /// Recorded, and this checkpoint (plus any later ones that were waiting for it) is
    /// committed.
    Committed(Progress),
    /// Not recorded; the pieces it names are not referenced by anything this coordinator
    /// keeps (see [`orphan_paths`]).
    Ignored(Ignored),
}

/// Why a checkpoint was abandoned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbandonReason {
    /// A task declined it.
    TaskFailed { task: TaskId, error: String },
    /// It was not acknowledged by every task within the timeout.
    Timeout,
    /// The job failed or is restarting.
    JobFailed,
}

/// A checkpoint given up on.
#[derive(Debug, Clone, PartialEq)]
pub struct Abandoned {
    pub epoch: Epoch,
    pub reason: AbandonReason,
    /// Pieces already uploaded for it that nothing else refers to: delete them.
    pub pieces: Vec<StatePiece>,
}

/// Checkpoints committed by one step, and the files retention lets go of.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Progress {
    /// In epoch order: write each as a commit record.
    pub committed: Vec<CheckpointMetadata>,
    /// Committed checkpoints that fell out of the retention window, oldest first: delete
    /// their commit records, after the new ones are durable.
    pub expired: Vec<CheckpointMetadata>,
    /// Pieces of `expired` no retained checkpoint refers to: delete them.
    pub delete_paths: Vec<String>,
}

impl Progress {
    pub fn is_empty(&self) -> bool {
        self.committed.is_empty() && self.expired.is_empty() && self.delete_paths.is_empty()
    }

    fn absorb(&mut self, other: Progress) {
        self.committed.extend(other.committed);
        self.expired.extend(other.expired);
        self.delete_paths.extend(other.delete_paths);
    }
}

/// What became of a task's failure report for a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum DeclineOutcome {
    /// The checkpoint is abandoned; later checkpoints that were waiting for it may have been
    /// committed.
    Abandoned {
        abandoned: Abandoned,
        progress: Progress,
    },
    Ignored(Ignored),
}

/// A checkpoint triggered and neither committed nor abandoned.
#[derive(Debug, Clone)]
struct Pending {
    started: u64,
    awaiting: BTreeSet<TaskId>,
    acknowledged: BTreeSet<TaskId>,
    pieces: Vec<StatePiece>,
    source_offsets: BTreeMap<TaskId, Value>,
}

/// The checkpoint state of one job. See the module documentation.
#[derive(Debug, Clone)]
pub struct CheckpointCoordinator {
    job: u64,
    timeout: Duration,
    retained_limit: usize,
    pending: BTreeMap<Epoch, Pending>,
    /// The last triggered (or, after recovery, restored) epoch.
    last_epoch: Option<Epoch>,
    /// Committed checkpoints kept, oldest first; at most `retained_limit`.
    retained: VecDeque<CheckpointMetadata>,
    /// The deployment's shape, recorded with every checkpoint it commits.
    layout: Option<Vec<VertexLayout>>,
}

impl CheckpointCoordinator {
    pub fn new(job: u64, config: CheckpointConfig) -> Self {
        Self {
            job,
            timeout: config.timeout,
            retained_limit: config.retained.max(1),
            pending: BTreeMap::new(),
            last_epoch: None,
            retained: VecDeque::new(),
            layout: None,
        }
    }

    /// Records `layout` with every checkpoint committed from now on.
    pub fn with_layout(mut self, layout: Vec<VertexLayout>) -> Self {
        self.layout = Some(layout);
        self
    }

    /// A coordinator for a job recovering with the commit records found in the store
    /// (records of other jobs, inconsistent ones and duplicate epochs are dropped). New
    /// checkpoints must come after the latest of them. Returns the coordinator and what
    /// retention lets go of if more than `config.retained` were found.
    pub fn recovered(
        job: u64,
        config: CheckpointConfig,
        committed: impl IntoIterator<Item = CheckpointMetadata>,
    ) -> (Self, Progress) {
        let mut coordinator = Self::new(job, config);
        let mut by_epoch: BTreeMap<Epoch, CheckpointMetadata> = BTreeMap::new();
        for m in committed {
            if m.job == job && m.is_consistent() {
                by_epoch.entry(m.epoch).or_insert(m);
            }
        }
        coordinator.last_epoch = by_epoch.keys().next_back().copied();
        let mut progress = Progress::default();
        for (_, m) in by_epoch {
            coordinator.retained.push_back(m);
        }
        coordinator.apply_retention(&mut progress);
        (coordinator, progress)
    }

    pub fn job(&self) -> u64 {
        self.job
    }

    /// Checkpoints triggered and neither committed nor abandoned (including those fully
    /// acknowledged but waiting for an earlier one).
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Epochs in flight, ascending.
    pub fn in_flight_epochs(&self) -> impl Iterator<Item = Epoch> + '_ {
        self.pending.keys().copied()
    }

    /// The retained committed checkpoints, oldest first.
    pub fn retained(&self) -> impl Iterator<Item = &CheckpointMetadata> {
        self.retained.iter()
    }

    pub fn latest_committed(&self) -> Option<&CheckpointMetadata> {
        self.retained.back()
    }

    /// Starts checkpoint `epoch`, which every task of `tasks` must acknowledge. Epochs must
    /// increase.
    pub fn trigger(
        &mut self,
        epoch: Epoch,
        tasks: impl IntoIterator<Item = TaskId>,
        started_ms: u64,
    ) -> Result<(), TriggerError> {
        if let Some(last) = self.last_epoch {
            if epoch <= last {
                return Err(TriggerError::NotAfterLast { epoch, last });
            }
        }
        let awaiting: BTreeSet<TaskId> = tasks.into_iter().collect();
        if let Some(task) = awaiting.iter().find(|t| t.job != self.job) {
            return Err(TriggerError::ForeignTask { job: self.job, task: *task });
        }
        if awaiting.is_empty() {
            return Err(TriggerError::NoTasks { epoch });
        }
        self.last_epoch = Some(epoch);
        self.pending.insert(
            epoch,
            Pending {
                started: started_ms,
                awaiting,
                acknowledged: BTreeSet::new(),
                pieces: Vec::new(),
                source_offsets: BTreeMap::new(),
            },
        );
        Ok(())
    }

    /// Why a report from `task` for `epoch` cannot be applied, if it cannot.
    fn check_report(&self, epoch: Epoch, task: TaskId) -> Result<(), Ignored> {
        let Some(pending) = self.pending.get(&epoch) else {
            return Err(match self.last_epoch {
                Some(last) if epoch <= last => Ignored::AlreadyFinished,
                _ => Ignored::UnknownCheckpoint,
            });
        };
        if pending.acknowledged.contains(&task) {
            Err(Ignored::Duplicate)
        } else if !pending.awaiting.contains(&task) {
            Err(Ignored::ForeignTask)
        } else {
            Ok(())
        }
    }

    /// Records `task`'s acknowledgement of `epoch` with the pieces it uploaded and, for a
    /// source, its offset. `now_ms` is in the same clock as the trigger's `started_ms`.
    pub fn acknowledge(
        &mut self,
        epoch: Epoch,
        task: TaskId,
        pieces: Vec<StatePiece>,
        source_offset: Option<Value>,
        now_ms: u64,
    ) -> AckOutcome {
        if let Err(ignored) = self.check_report(epoch, task) {
            return AckOutcome::Ignored(ignored);
        }
        let Some(pending) = self.pending.get_mut(&epoch) else {
            return AckOutcome::Ignored(Ignored::UnknownCheckpoint);
        };
        pending.awaiting.remove(&task);
        pending.acknowledged.insert(task);
        pending.pieces.extend(pieces);
        if let Some(offset) = source_offset {
            pending.source_offsets.insert(task, offset);
        }
        let remaining = pending.awaiting.len();
        if remaining > 0 {
            return AckOutcome::Accepted { remaining };
        }
        let progress = self.commit_ready(now_ms);
        if progress.committed.iter().any(|m| m.epoch == epoch) {
            AckOutcome::Committed(progress)
        } else {
            let earlier = self.pending.keys().next().copied().unwrap_or(epoch);
            AckOutcome::WaitingForEarlier { earlier }
        }
    }

    /// `task` failed to take its snapshot for `epoch`: the checkpoint is abandoned.
    pub fn decline(&mut self, epoch: Epoch, task: TaskId, error: String, now_ms: u64) -> DeclineOutcome {
        match self.check_report(epoch, task) {
            // A task that acknowledged and then fails still dooms the checkpoint: its
            // report means the snapshot cannot be relied on.
            Ok(()) | Err(Ignored::Duplicate) => {}
            Err(ignored) => return DeclineOutcome::Ignored(ignored),
        }
        let abandoned = match self.abandon(epoch, AbandonReason::TaskFailed { task, error }) {
            Some(a) => a,
            None => return DeclineOutcome::Ignored(Ignored::UnknownCheckpoint),
        };
        let progress = self.commit_ready(now_ms);
        DeclineOutcome::Abandoned { abandoned, progress }
    }

    /// Abandons every checkpoint still missing acknowledgements whose timeout has passed at
    /// `now_ms`, and commits what that unblocks.
    pub fn expire(&mut self, now_ms: u64) -> (Vec<Abandoned>, Progress) {
        let timeout_ms = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        let overdue: Vec<Epoch> = self
            .pending
            .iter()
            .filter(|(_, p)| !p.awaiting.is_empty() && now_ms.saturating_sub(p.started) >= timeout_ms)
            .map(|(e, _)| *e)
            .collect();
        let abandoned: Vec<Abandoned> =
            overdue.into_iter().filter_map(|e| self.abandon(e, AbandonReason::Timeout)).collect();
        let progress = self.commit_ready(now_ms);
        (abandoned, progress)
    }

    /// The job failed or is restarting: every checkpoint in flight is abandoned, in epoch
    /// order. Committed checkpoints are kept.
    pub fn abandon_all(&mut self) -> Vec<Abandoned> {
        let epochs: Vec<Epoch> = self.pending.keys().copied().collect();
        epochs.into_iter().filter_map(|e| self.abandon(e, AbandonReason::JobFailed)).collect()
    }

    /// Removes pending checkpoint `epoch`, returning its pieces that nothing else refers to.
    fn abandon(&mut self, epoch: Epoch, reason: AbandonReason) -> Option<Abandoned> {
        let pending = self.pending.remove(&epoch)?;
        let live = self.live_paths();
        let mut seen = BTreeSet::new();
        let pieces = pending
            .pieces
            .into_iter()
            .filter(|p| !live.contains(p.path.as_str()) && seen.insert(p.path.clone()))
            .collect();
        Some(Abandoned { epoch, reason, pieces })
    }

    /// Paths referenced by retained and in-flight checkpoints.
    fn live_paths(&self) -> BTreeSet<&str> {
        self.retained
            .iter()
            .flat_map(|m| m.pieces.iter())
            .chain(self.pending.values().flat_map(|p| p.pieces.iter()))
            .map(|p| p.path.as_str())
            .collect()
    }

    /// Commits, in order, the fully acknowledged checkpoints at the head of the pending
    /// queue.
    fn commit_ready(&mut self, now_ms: u64) -> Progress {
        let mut progress = Progress::default();
        while let Some(entry) = self.pending.first_entry() {
            if !entry.get().awaiting.is_empty() {
                break;
            }
            let epoch = *entry.key();
            let pending = entry.remove();
            let bytes = pending.pieces.iter().fold(0u64, |acc, p| acc.saturating_add(p.bytes));
            let metadata = CheckpointMetadata {
                job: self.job,
                epoch,
                started: pending.started,
                duration: Duration::from_millis(now_ms.saturating_sub(pending.started)),
                pieces: pending.pieces,
                source_offsets: pending.source_offsets,
                bytes,
                layout: self.layout.clone(),
            };
            progress.committed.push(metadata.clone());
            self.retained.push_back(metadata);
            let mut step = Progress::default();
            self.apply_retention(&mut step);
            progress.absorb(step);
        }
        progress
    }

    /// Drops the oldest retained checkpoints beyond the limit into `progress`.
    fn apply_retention(&mut self, progress: &mut Progress) {
        let mut expired = Vec::new();
        while self.retained.len() > self.retained_limit {
            match self.retained.pop_front() {
                Some(m) => expired.push(m),
                None => break,
            }
        }
        if expired.is_empty() {
            return;
        }
        let live = self.live_paths();
        let mut seen = BTreeSet::new();
        for m in &expired {
            for p in &m.pieces {
                if !live.contains(p.path.as_str()) && seen.insert(p.path.as_str()) {
                    progress.delete_paths.push(p.path.clone());
                }
            }
        }
        progress.expired.extend(expired);
    }

    /// The paths of `listing` no retained or in-flight checkpoint refers to, or `None` while
    /// checkpoints are in flight: a task may have uploaded a piece it has not acknowledged
    /// yet, which would look like an orphan.
    pub fn orphan_paths<'a>(&self, listing: impl IntoIterator<Item = &'a str>) -> Option<Vec<String>> {
        if !self.pending.is_empty() {
            return None;
        }
        Some(orphan_paths(listing, self.retained.iter()))
    }
}

/// The paths of `listing` (the store's piece files) that no checkpoint of `retained` refers
/// to: left by abandoned checkpoints, crashed partial ones or interrupted deletions. Only
/// meaningful while no checkpoint is in flight (at startup, before the first trigger).
/// Returned sorted and without duplicates.
pub fn orphan_paths<'a, 'm>(
    listing: impl IntoIterator<Item = &'a str>,
    retained: impl IntoIterator<Item = &'m CheckpointMetadata>,
) -> Vec<String> {
    let live: BTreeSet<&str> =
        retained.into_iter().flat_map(|m| m.pieces.iter()).map(|p| p.path.as_str()).collect();
    let orphans: BTreeSet<&str> = listing.into_iter().filter(|p| !live.contains(p)).collect();
    orphans.into_iter().map(str::to_owned).collect()
}

/// A commit record read from the store, as the caller found it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCheckpoint {
    pub metadata: CheckpointMetadata,
    /// False when the caller found the record corrupt or partial (bad checksum, missing
    /// pieces, ...).
    pub intact: bool,
}

/// Chooses the checkpoint of `job` to restore from the commit records found in the store:
/// the highest epoch among records that are intact, belong to the job and are consistent
/// ([`CheckpointMetadata::is_consistent`]). Order does not matter. Identical duplicates
/// count once; if two usable records of one epoch differ, that epoch is ambiguous and
/// skipped. `None` means start from scratch.
pub fn choose_restore(
    job: u64,
    found: impl IntoIterator<Item = StoredCheckpoint>,
) -> Option<CheckpointMetadata> {
    let mut by_epoch: BTreeMap<Epoch, Option<CheckpointMetadata>> = BTreeMap::new();
    for stored in found {
        let m = stored.metadata;
        if !stored.intact || m.job != job || !m.is_consistent() {
            continue;
        }
        match by_epoch.get_mut(&m.epoch) {
            None => {
                by_epoch.insert(m.epoch, Some(m));
            }
            Some(slot) => {
                if slot.as_ref() != Some(&m) {
                    *slot = None;
                }
            }
        }
    }
    by_epoch.into_values().rev().flatten().next()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const JOB: u64 = 7;

    fn task(vertex: usize, subtask: usize) -> TaskId {
        TaskId { job: JOB, vertex, subtask }
    }

    fn piece(t: TaskId, path: &str, bytes: u64) -> StatePiece {
        StatePiece { task: t, path: path.to_owned(), bytes }
    }

    fn tasks() -> Vec<TaskId> {
        vec![task(0, 0), task(1, 0), task(1, 1)]
    }

    fn coordinator(retained: usize) -> CheckpointCoordinator {
        CheckpointCoordinator::new(JOB, CheckpointConfig { timeout: Duration::from_millis(1000), retained })
    }

    /// Acknowledges `epoch` from every task, each writing `<epoch>/<vertex>-<subtask>`; the
    /// source (vertex 0) reports offset `epoch`. Returns the last outcome.
    fn ack_all(c: &mut CheckpointCoordinator, epoch: Epoch, now: u64) -> AckOutcome {
        let mut last = AckOutcome::Accepted { remaining: 0 };
        for t in tasks() {
            let path = format!("{epoch}/{}-{}", t.vertex, t.subtask);
            let offset = (t.vertex == 0).then(|| json!(epoch));
            last = c.acknowledge(epoch, t, vec![piece(t, &path, 10)], offset, now);
        }
        last
    }

    fn committed(outcome: AckOutcome) -> Progress {
        match outcome {
            AckOutcome::Committed(p) => p,
            other => panic!("expected a commit, got {other:?}"),
        }
    }

    fn epochs(ms: &[CheckpointMetadata]) -> Vec<Epoch> {
        ms.iter().map(|m| m.epoch).collect()
    }

    #[test]
    fn completes_when_every_task_acknowledges() {
        let mut c = coordinator(1);
        c.trigger(1, tasks(), 100).expect("trigger");
        assert_eq!(c.in_flight(), 1);
        let first = c.acknowledge(1, task(0, 0), vec![piece(task(0, 0), "1/0-0", 5)], Some(json!(42)), 110);
        assert_eq!(first, AckOutcome::Accepted { remaining: 2 });
        let second = c.acknowledge(1, task(1, 0), vec![piece(task(1, 0), "1/1-0", 7)], None, 120);
        assert_eq!(second, AckOutcome::Accepted { remaining: 1 });
        let progress = committed(c.acknowledge(1, task(1, 1), vec![], None, 150));
        assert_eq!(progress.committed.len(), 1);
        let m = &progress.committed[0];
        assert_eq!((m.job, m.epoch, m.started), (JOB, 1, 100));
        assert_eq!(m.duration, Duration::from_millis(50));
        assert_eq!(m.bytes, 12);
        assert_eq!(m.pieces.len(), 2);
        assert_eq!(m.source_offsets, BTreeMap::from([(task(0, 0), json!(42))]));
        assert!(progress.expired.is_empty() && progress.delete_paths.is_empty());
        assert_eq!(c.in_flight(), 0);
        assert_eq!(c.latest_committed(), Some(m));
        // The commit record round-trips through JSON.
        let text = serde_json::to_string(m).expect("serialize");
        let back: CheckpointMetadata = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(&back, m);
        assert!(back.is_consistent());
    }

    #[test]
    fn incomplete_while_one_task_is_missing() {
        let mut c = coordinator(1);
        c.trigger(1, tasks(), 0).expect("trigger");
        c.acknowledge(1, task(0, 0), vec![], None, 1);
        let outcome = c.acknowledge(1, task(1, 0), vec![], None, 2);
        assert_eq!(outcome, AckOutcome::Accepted { remaining: 1 });
        assert_eq!(c.in_flight(), 1);
        assert!(c.latest_committed().is_none());
        // Before the timeout nothing expires either.
        let (abandoned, progress) = c.expire(999);
        assert!(abandoned.is_empty() && progress.is_empty());
        assert_eq!(c.in_flight(), 1);
    }

    #[test]
    fn later_checkpoint_waits_for_earlier_to_complete() {
        let mut c = coordinator(3);
        c.trigger(1, tasks(), 0).expect("trigger 1");
        c.trigger(2, tasks(), 10).expect("trigger 2");
        assert_eq!(c.in_flight(), 2);
        assert_eq!(ack_all(&mut c, 2, 20), AckOutcome::WaitingForEarlier { earlier: 1 });
        assert!(c.latest_committed().is_none());
        assert_eq!(c.in_flight(), 2);
        let progress = committed(ack_all(&mut c, 1, 30));
        assert_eq!(epochs(&progress.committed), vec![1, 2]);
        assert_eq!(progress.committed[1].duration, Duration::from_millis(20));
        assert_eq!(c.latest_committed().map(|m| m.epoch), Some(2));
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn later_checkpoint_commits_when_earlier_is_abandoned() {
        let mut c = coordinator(3);
        c.trigger(1, tasks(), 0).expect("trigger 1");
        c.trigger(2, tasks(), 10).expect("trigger 2");
        c.acknowledge(1, task(0, 0), vec![piece(task(0, 0), "1/0-0", 3)], None, 11);
        assert_eq!(ack_all(&mut c, 2, 20), AckOutcome::WaitingForEarlier { earlier: 1 });
        match c.decline(1, task(1, 1), "disk full".into(), 25) {
            DeclineOutcome::Abandoned { abandoned, progress } => {
                assert_eq!(abandoned.epoch, 1);
                assert_eq!(
                    abandoned.reason,
                    AbandonReason::TaskFailed { task: task(1, 1), error: "disk full".into() }
                );
                assert_eq!(abandoned.pieces, vec![piece(task(0, 0), "1/0-0", 3)]);
                assert_eq!(epochs(&progress.committed), vec![2]);
            }
            other => panic!("expected abandonment, got {other:?}"),
        }
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn abandoned_by_task_failure_returns_uploaded_pieces() {
        let mut c = coordinator(1);
        c.trigger(1, tasks(), 0).expect("trigger");
        c.acknowledge(1, task(0, 0), vec![piece(task(0, 0), "1/0-0", 3)], Some(json!(1)), 1);
        c.acknowledge(1, task(1, 0), vec![piece(task(1, 0), "1/1-0", 4)], None, 2);
        let outcome = c.decline(1, task(1, 1), "boom".into(), 3);
        let DeclineOutcome::Abandoned { abandoned, progress } = outcome else {
            panic!("expected abandonment, got {outcome:?}");
        };
        assert_eq!(abandoned.pieces.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(), ["1/0-0", "1/1-0"]);
        assert!(progress.is_empty());
        assert_eq!(c.in_flight(), 0);
        assert!(c.latest_committed().is_none());
        // The remaining task's ack arrives late, and so does a second failure report.
        let late = c.acknowledge(1, task(1, 1), vec![], None, 4);
        assert_eq!(late, AckOutcome::Ignored(Ignored::AlreadyFinished));
        let again = c.decline(1, task(1, 1), "boom".into(), 5);
        assert_eq!(again, DeclineOutcome::Ignored(Ignored::AlreadyFinished));
    }

    #[test]
    fn failure_after_acknowledging_still_abandons() {
        let mut c = coordinator(1);
        c.trigger(1, tasks(), 0).expect("trigger");
        let t = task(1, 0);
        c.acknowledge(1, t, vec![piece(t, "1/1-0", 4)], None, 1);
        let outcome = c.decline(1, t, "lost its upload".into(), 2);
        let DeclineOutcome::Abandoned { abandoned, .. } = outcome else {
            panic!("expected abandonment, got {outcome:?}");
        };
        assert_eq!(abandoned.pieces, vec![piece(t, "1/1-0", 4)]);
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn abandoned_by_timeout_returns_uploaded_pieces() {
        let mut c = coordinator(1);
        c.trigger(1, tasks(), 100).expect("trigger 1");
        c.trigger(2, tasks(), 600).expect("trigger 2");
        c.acknowledge(1, task(1, 0), vec![piece(task(1, 0), "1/1-0", 4)], None, 150);
        let (abandoned, progress) = c.expire(1099);
        assert!(abandoned.is_empty() && progress.is_empty());
        let (abandoned, progress) = c.expire(1100);
        assert_eq!(abandoned.len(), 1);
        assert_eq!(abandoned[0].epoch, 1);
        assert_eq!(abandoned[0].reason, AbandonReason::Timeout);
        assert_eq!(abandoned[0].pieces, vec![piece(task(1, 0), "1/1-0", 4)]);
        assert!(progress.is_empty());
        assert_eq!(c.in_flight_epochs().collect::<Vec<_>>(), vec![2]);
        let (abandoned, _) = c.expire(1600);
        assert_eq!(abandoned.iter().map(|a| a.epoch).collect::<Vec<_>>(), vec![2]);
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn fully_acknowledged_checkpoint_does_not_time_out_while_waiting() {
        let mut c = coordinator(1);
        c.trigger(1, tasks(), 0).expect("trigger 1");
        c.trigger(2, tasks(), 500).expect("trigger 2");
        assert_eq!(ack_all(&mut c, 2, 600), AckOutcome::WaitingForEarlier { earlier: 1 });
        // 1 times out; 2 is complete and is committed in the same step.
        let (abandoned, progress) = c.expire(2000);
        assert_eq!(abandoned.iter().map(|a| a.epoch).collect::<Vec<_>>(), vec![1]);
        assert_eq!(epochs(&progress.committed), vec![2]);
        assert_eq!(progress.committed[0].duration, Duration::from_millis(1500));
    }

    #[test]
    fn job_failure_abandons_everything_in_flight_and_keeps_commits() {
        let mut c = coordinator(1);
        c.trigger(1, tasks(), 0).expect("trigger 1");
        committed(ack_all(&mut c, 1, 5));
        c.trigger(2, tasks(), 10).expect("trigger 2");
        c.trigger(3, tasks(), 20).expect("trigger 3");
        c.acknowledge(3, task(0, 0), vec![piece(task(0, 0), "3/0-0", 1)], None, 21);
        let abandoned = c.abandon_all();
        assert_eq!(abandoned.iter().map(|a| a.epoch).collect::<Vec<_>>(), vec![2, 3]);
        assert!(abandoned.iter().all(|a| a.reason == AbandonReason::JobFailed));
        assert!(abandoned[0].pieces.is_empty());
        assert_eq!(abandoned[1].pieces.len(), 1);
        assert_eq!(c.in_flight(), 0);
        assert_eq!(c.latest_committed().map(|m| m.epoch), Some(1));
        // After the restart epochs keep increasing.
        assert_eq!(c.trigger(3, tasks(), 30), Err(TriggerError::NotAfterLast { epoch: 3, last: 3 }));
        c.trigger(4, tasks(), 30).expect("trigger 4");
    }

    #[test]
    fn duplicate_foreign_unknown_and_late_acks_are_ignored() {
        let mut c = coordinator(1);
        c.trigger(1, tasks(), 0).expect("trigger");
        let t = task(0, 0);
        assert_eq!(
            c.acknowledge(1, t, vec![piece(t, "1/a", 1)], None, 1),
            AckOutcome::Accepted { remaining: 2 }
        );
        // Duplicate: the second ack's pieces are not recorded.
        assert_eq!(
            c.acknowledge(1, t, vec![piece(t, "1/b", 1)], None, 2),
            AckOutcome::Ignored(Ignored::Duplicate)
        );
        // A task outside the set, in the same job or another.
        assert_eq!(c.acknowledge(1, task(5, 0), vec![], None, 3), AckOutcome::Ignored(Ignored::ForeignTask));
        let other_job = TaskId { job: JOB + 1, vertex: 0, subtask: 0 };
        assert_eq!(c.acknowledge(1, other_job, vec![], None, 3), AckOutcome::Ignored(Ignored::ForeignTask));
        // A checkpoint never triggered.
        assert_eq!(c.acknowledge(9, t, vec![], None, 4), AckOutcome::Ignored(Ignored::UnknownCheckpoint));
        assert_eq!(c.decline(9, t, "x".into(), 4), DeclineOutcome::Ignored(Ignored::UnknownCheckpoint));
        assert_eq!(c.decline(1, task(5, 0), "x".into(), 4), DeclineOutcome::Ignored(Ignored::ForeignTask));
        let progress = committed(ack_all(&mut c, 1, 5));
        assert_eq!(
            progress.committed[0].pieces.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(),
            ["1/a", "1/1-0", "1/1-1"]
        );
        // Late, after the commit.
        assert_eq!(c.acknowledge(1, t, vec![], None, 6), AckOutcome::Ignored(Ignored::AlreadyFinished));
        assert_eq!(c.decline(1, t, "x".into(), 6), DeclineOutcome::Ignored(Ignored::AlreadyFinished));
        assert_eq!(c.latest_committed().map(|m| m.pieces.len()), Some(3));
    }

    #[test]
    fn trigger_validation() {
        let mut c = coordinator(1);
        assert_eq!(c.trigger(1, Vec::new(), 0), Err(TriggerError::NoTasks { epoch: 1 }));
        let foreign = TaskId { job: JOB + 1, vertex: 0, subtask: 0 };
        assert_eq!(
            c.trigger(1, vec![task(0, 0), foreign], 0),
            Err(TriggerError::ForeignTask { job: JOB, task: foreign })
        );
        assert_eq!(c.in_flight(), 0);
        c.trigger(5, tasks(), 0).expect("trigger");
        assert_eq!(c.trigger(4, tasks(), 0), Err(TriggerError::NotAfterLast { epoch: 4, last: 5 }));
        // Refused triggers leave no trace: an ack for 4 is for an already passed epoch.
        assert_eq!(
            c.acknowledge(4, task(0, 0), vec![], None, 0),
            AckOutcome::Ignored(Ignored::AlreadyFinished)
        );
        assert_eq!(c.in_flight(), 1);
    }

    #[test]
    fn retention_keeps_one() {
        let mut c = coordinator(1);
        c.trigger(1, tasks(), 0).expect("trigger 1");
        let p1 = committed(ack_all(&mut c, 1, 1));
        assert!(p1.expired.is_empty());
        c.trigger(2, tasks(), 2).expect("trigger 2");
        let p2 = committed(ack_all(&mut c, 2, 3));
        assert_eq!(epochs(&p2.committed), vec![2]);
        assert_eq!(epochs(&p2.expired), vec![1]);
        assert_eq!(p2.delete_paths, vec!["1/0-0", "1/1-0", "1/1-1"]);
        assert_eq!(c.retained().map(|m| m.epoch).collect::<Vec<_>>(), vec![2]);
        // A retention of 0 is treated as 1.
        let mut zero = coordinator(0);
        zero.trigger(1, tasks(), 0).expect("trigger");
        assert!(committed(ack_all(&mut zero, 1, 1)).expired.is_empty());
        assert_eq!(zero.retained().count(), 1);
    }

    #[test]
    fn retention_keeps_three() {
        let mut c = coordinator(3);
        for e in 1..=3 {
            c.trigger(e, tasks(), e).expect("trigger");
            assert!(committed(ack_all(&mut c, e, e)).expired.is_empty());
        }
        c.trigger(4, tasks(), 4).expect("trigger 4");
        c.trigger(5, tasks(), 5).expect("trigger 5");
        assert_eq!(ack_all(&mut c, 5, 6), AckOutcome::WaitingForEarlier { earlier: 4 });
        // 4 and 5 commit together, expiring 1 and 2.
        let p = committed(ack_all(&mut c, 4, 7));
        assert_eq!(epochs(&p.committed), vec![4, 5]);
        assert_eq!(epochs(&p.expired), vec![1, 2]);
        assert_eq!(p.delete_paths.len(), 6);
        assert!(p.delete_paths.iter().all(|path| path.starts_with("1/") || path.starts_with("2/")));
        assert_eq!(c.retained().map(|m| m.epoch).collect::<Vec<_>>(), vec![3, 4, 5]);
    }

    #[test]
    fn shared_pieces_are_not_deleted_while_referenced() {
        let mut c = coordinator(1);
        let t = task(0, 0);
        let only = vec![t];
        c.trigger(1, only.clone(), 0).expect("trigger 1");
        committed(c.acknowledge(1, t, vec![piece(t, "base", 10), piece(t, "delta-1", 1)], None, 1));
        // Checkpoint 2 reuses "base" (incremental state).
        c.trigger(2, only.clone(), 2).expect("trigger 2");
        let p = committed(c.acknowledge(2, t, vec![piece(t, "base", 10), piece(t, "delta-2", 1)], None, 3));
        assert_eq!(epochs(&p.expired), vec![1]);
        assert_eq!(p.delete_paths, vec!["delta-1"]);
        // An abandoned checkpoint referring to "base" does not delete it either.
        c.trigger(3, vec![t, task(1, 0)], 4).expect("trigger 3");
        c.acknowledge(3, t, vec![piece(t, "base", 10), piece(t, "delta-3", 1)], None, 5);
        let abandoned = c.abandon_all();
        assert_eq!(abandoned[0].pieces, vec![piece(t, "delta-3", 1)]);
    }

    #[test]
    fn orphans_are_stored_paths_no_retained_checkpoint_refers_to() {
        let mut c = coordinator(2);
        for e in 1..=3 {
            c.trigger(e, tasks(), e).expect("trigger");
            committed(ack_all(&mut c, e, e));
        }
        // Retained: 2 and 3. Stored: leftovers of the expired 1, of an abandoned 4 and a
        // crashed upload, plus everything retained.
        let mut listing: Vec<String> = (1..=3)
            .flat_map(|e| tasks().into_iter().map(move |t| format!("{e}/{}-{}", t.vertex, t.subtask)))
            .collect();
        listing.push("4/0-0".into());
        listing.push("tmp/partial".into());
        listing.push("4/0-0".into());
        let orphans = orphan_paths(listing.iter().map(String::as_str), c.retained());
        assert_eq!(orphans, vec!["1/0-0", "1/1-0", "1/1-1", "4/0-0", "tmp/partial"]);
        assert_eq!(c.orphan_paths(listing.iter().map(String::as_str)), Some(orphans));
        // Nothing retained: everything is an orphan.
        assert_eq!(orphan_paths(["a", "b"], []), vec!["a", "b"]);
        // While a checkpoint is in flight its unacknowledged uploads look like orphans, so
        // the coordinator refuses to sweep.
        c.trigger(5, tasks(), 10).expect("trigger 5");
        assert_eq!(c.orphan_paths(["5/0-0"]), None);
    }

    fn stored(epoch: Epoch, intact: bool) -> StoredCheckpoint {
        let t = task(0, 0);
        let metadata = CheckpointMetadata {
            job: JOB,
            epoch,
            started: epoch * 10,
            duration: Duration::from_millis(3),
            pieces: vec![piece(t, &format!("{epoch}/0-0"), 8)],
            source_offsets: BTreeMap::from([(t, json!(epoch))]),
            bytes: 8,
            layout: None,
        };
        StoredCheckpoint { metadata, intact }
    }

    #[test]
    fn restore_chooses_the_latest_usable_checkpoint() {
        // Unordered, with an identical duplicate.
        let found = vec![stored(3, true), stored(7, true), stored(5, true), stored(7, true)];
        assert_eq!(choose_restore(JOB, found).map(|m| m.epoch), Some(7));
        // Nothing found, or nothing of this job.
        assert_eq!(choose_restore(JOB, Vec::new()), None);
        assert_eq!(choose_restore(JOB + 1, vec![stored(3, true)]), None);
        // Everything flagged.
        assert_eq!(choose_restore(JOB, vec![stored(3, false)]), None);
    }

    #[test]
    fn restore_skips_corrupt_inconsistent_and_ambiguous_records() {
        // The latest one is flagged corrupt by the caller.
        let found = vec![stored(3, true), stored(9, false), stored(5, true)];
        assert_eq!(choose_restore(JOB, found).map(|m| m.epoch), Some(5));
        // A record whose byte count does not match its pieces.
        let mut bad = stored(9, true);
        bad.metadata.bytes = 1;
        assert!(!bad.metadata.is_consistent());
        assert_eq!(choose_restore(JOB, vec![stored(5, true), bad]).map(|m| m.epoch), Some(5));
        // Two different records for one epoch: neither is trusted.
        let mut other = stored(9, true);
        other.metadata.source_offsets.insert(task(0, 0), json!("elsewhere"));
        let found = vec![stored(5, true), stored(9, true), other];
        assert_eq!(choose_restore(JOB, found).map(|m| m.epoch), Some(5));
    }

    #[test]
    fn recovered_coordinator_continues_after_restored_checkpoints() {
        let found = [1, 4, 2, 4, 3].map(|e| stored(e, true).metadata);
        let (mut c, progress) = CheckpointCoordinator::recovered(
            JOB,
            CheckpointConfig { timeout: Duration::from_secs(1), retained: 2 },
            found,
        );
        assert_eq!(epochs(&progress.expired), vec![1, 2]);
        assert_eq!(progress.delete_paths, vec!["1/0-0", "2/0-0"]);
        assert!(progress.committed.is_empty());
        assert_eq!(c.retained().map(|m| m.epoch).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(c.trigger(4, tasks(), 0), Err(TriggerError::NotAfterLast { epoch: 4, last: 4 }));
        c.trigger(5, tasks(), 0).expect("trigger 5");
        let p = committed(ack_all(&mut c, 5, 1));
        assert_eq!(epochs(&p.expired), vec![3]);
    }
}
