//! The JobManager's side of checkpoints and failover: it drives one
//! [`CheckpointCoordinator`] per job (the decisions are there, as pure logic) and performs
//! the effects — commit records, deletions, restarts.
//!
//! Every `checkpoint_interval` the barrier the timer injects is a checkpoint barrier. Each
//! task of a job that takes checkpoints snapshots its chain when the barrier passes, uploads
//! the snapshot and acknowledges with the piece's path (sources add their offset). When the
//! coordinator reports the checkpoint complete, its commit record
//! (`job-<id>/epoch-<n>/_metadata.json`) is written, and only then are checkpoints beyond
//! the retention deleted: a crash at any point leaves at least one complete checkpoint.
//!
//! A failed job is restarted after a backoff that doubles with every failure, from its
//! latest committed checkpoint (or from scratch when it has none).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::{info, warn};
use weir_storage::CheckpointStore;

use super::lifecycle::JobState;
use super::{Actor, Command};
use crate::checkpoint_protocol::{
    choose_restore, AbandonReason, Abandoned, AckOutcome, CheckpointConfig, CheckpointCoordinator,
    CheckpointMetadata, DeclineOutcome, Progress, StatePiece, StoredCheckpoint,
};
use crate::error::{ExecError, ExecResult};
use crate::message::Epoch;
use crate::task::{epoch_dir, job_prefix, TaskId};
use crate::task_manager::TaskRestore;

const METADATA_FILE: &str = "_metadata.json";
/// Checkpoints kept per job in `weir_catalog.checkpoints`.
const HISTORY_PER_JOB: usize = 50;

#[derive(Clone)]
pub struct CheckpointSettings {
    pub store: CheckpointStore,
    pub interval: Duration,
    pub protocol: CheckpointConfig,
}

/// A job's checkpoints found at startup: the one to restore and every committed one.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub chosen: CheckpointMetadata,
    pub committed: Vec<CheckpointMetadata>,
}

impl Recovered {
    /// What task `task` resumes from.
    pub fn task_restore(&self, task: TaskId) -> TaskRestore {
        TaskRestore {
            epoch: self.chosen.epoch,
            pieces: self.chosen.pieces.iter().filter(|p| p.task == task).cloned().collect(),
            source_offset: self.chosen.source_offsets.get(&task).cloned(),
            rescale: None,
        }
    }
}

/// A checkpoint as `weir_catalog.checkpoints` shows it.
#[derive(Debug, Clone)]
pub struct CheckpointRecord {
    pub job: u64,
    pub job_name: String,
    pub epoch: Epoch,
    pub started: SystemTime,
    pub duration: Option<Duration>,
    pub bytes: u64,
    /// `in_progress`, `completed` or `failed`.
    pub status: &'static str,
    pub failure: Option<String>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn metadata_path(job: u64, epoch: Epoch) -> String {
    format!("{}/{}/{METADATA_FILE}", job_prefix(job), epoch_dir(epoch))
}

/// Reads the commit records of `job`, picks the one to restore, and deletes what no
/// retained checkpoint needs (partial checkpoints of a crash, expired ones).
pub(super) async fn load_recovery_point(
    settings: &CheckpointSettings,
    job: u64,
) -> ExecResult<Option<Recovered>> {
    let store = &settings.store;
    let prefix = format!("{}/", job_prefix(job));
    let listing = store.list(&prefix).await?;
    let mut found = Vec::new();
    for path in listing.iter().filter(|p| p.ends_with(METADATA_FILE)) {
        let Some(bytes) = store.get_bytes(path).await? else { continue };
        match serde_json::from_slice::<CheckpointMetadata>(&bytes) {
            Ok(metadata) => {
                // A record whose pieces are not all there cannot be restored.
                let intact = metadata.pieces.iter().all(|p| listing.contains(&p.path));
                if !intact {
                    warn!(path = %path, "checkpoint record with missing pieces; not restorable");
                }
                found.push(StoredCheckpoint { metadata, intact })
            }
            Err(e) => warn!(path = %path, error = %e, "ignoring an unreadable checkpoint record"),
        }
    }
    let Some(chosen) = choose_restore(job, found.iter().cloned()) else {
        if !listing.is_empty() {
            store.delete_prefix(&prefix).await?;
        }
        return Ok(None);
    };
    let committed: Vec<CheckpointMetadata> = found
        .into_iter()
        .filter(|s| s.intact)
        .map(|s| s.metadata)
        .filter(|m| m.epoch <= chosen.epoch)
        .collect();
    let (coordinator, _) = CheckpointCoordinator::recovered(job, settings.protocol, committed.clone());
    // Keep the retained records and every piece they refer to (a delta chain reaches into
    // older checkpoints' folders); everything else is left over from crashes and expiry.
    let keep: std::collections::BTreeSet<String> = coordinator
        .retained()
        .flat_map(|m| m.pieces.iter().map(|p| p.path.clone()).chain([metadata_path(job, m.epoch)]))
        .collect();
    for path in listing.iter().filter(|p| !keep.contains(p.as_str())) {
        store.delete(path).await?;
    }
    let committed = coordinator.retained().cloned().collect();
    info!(job, epoch = chosen.epoch, bytes = chosen.bytes, "recovering from checkpoint");
    Ok(Some(Recovered { chosen, committed }))
}

impl Actor {
    /// Checkpoints found in the store when a job is deployed from one show as completed.
    pub(super) fn remember_committed(&mut self, job: u64, name: &str, committed: &[CheckpointMetadata]) {
        for m in committed {
            let started = UNIX_EPOCH + Duration::from_millis(m.started);
            self.history.entry((job, m.epoch)).or_insert(CheckpointRecord {
                job,
                job_name: name.to_string(),
                epoch: m.epoch,
                started,
                duration: Some(m.duration),
                bytes: m.bytes,
                status: "completed",
                failure: None,
            });
        }
    }

    /// Whether the next timer barrier should be a checkpoint.
    pub(super) fn checkpoint_due(&self) -> bool {
        self.config.checkpoints.as_ref().is_some_and(|c| self.last_checkpoint.elapsed() >= c.interval)
    }

    /// Starts checkpoint `epoch` in every running job that takes checkpoints and is not still
    /// writing its previous one (one at a time per job, as Flink's default: a slow upload
    /// delays that job's next checkpoint instead of piling more onto the disk or network,
    /// and does not hold back the other jobs). Returns the jobs it started in.
    pub(super) fn trigger_checkpoints(&mut self, epoch: Epoch) -> BTreeSet<u64> {
        let started = now_ms();
        let mut triggered = BTreeSet::new();
        for (id, job) in self.jobs.iter_mut() {
            if !job.running() || job.first_epoch > epoch {
                continue;
            }
            let Some(coordinator) = job.coordinator.as_mut() else { continue };
            if coordinator.in_flight() > 0 {
                continue;
            }
            match coordinator.trigger(epoch, job.tasks.keys().copied(), started) {
                Ok(()) => {
                    triggered.insert(*id);
                    self.history.insert(
                        (*id, epoch),
                        CheckpointRecord {
                            job: *id,
                            job_name: job.graph.target.name.clone(),
                            epoch,
                            started: SystemTime::now(),
                            duration: None,
                            bytes: 0,
                            status: "in_progress",
                            failure: None,
                        },
                    );
                }
                Err(e) => warn!(job = id, epoch, error = %e, "checkpoint not triggered"),
            }
        }
        self.prune_history();
        triggered
    }

    pub(super) fn checkpoint_acknowledged(
        &mut self,
        task: TaskId,
        epoch: Epoch,
        pieces: Vec<StatePiece>,
        source_offset: Option<serde_json::Value>,
    ) {
        // The piece this acknowledgement uploaded; earlier ones belong to earlier checkpoints.
        let uploaded = pieces.last().map(|p| p.path.clone()).filter(|p| p.contains(&epoch_dir(epoch)));
        if let Some(state) = self.jobs.get_mut(&task.job).and_then(|j| j.tasks.get_mut(&task)) {
            state.state_bytes = Some(pieces.iter().map(|p| p.bytes).sum());
        }
        let outcome = match self.jobs.get_mut(&task.job).and_then(|j| j.coordinator.as_mut()) {
            Some(coordinator) => coordinator.acknowledge(epoch, task, pieces, source_offset, now_ms()),
            None => AckOutcome::Ignored(crate::checkpoint_protocol::Ignored::UnknownCheckpoint),
        };
        match outcome {
            AckOutcome::Committed(progress) => self.checkpoints_committed(task.job, progress),
            AckOutcome::Ignored(reason) => {
                // A late or stray upload: nothing will ever refer to it.
                warn!(%task, epoch, ?reason, "checkpoint acknowledgement ignored");
                if let Some(path) = uploaded {
                    self.delete_paths(vec![path]);
                }
            }
            AckOutcome::Accepted { .. } | AckOutcome::WaitingForEarlier { .. } => {}
        }
    }

    pub(super) fn checkpoint_declined(&mut self, task: TaskId, epoch: Epoch, error: String) {
        warn!(%task, epoch, error = %error, "task could not write its checkpoint");
        let Some(coordinator) = self.jobs.get_mut(&task.job).and_then(|j| j.coordinator.as_mut()) else {
            return;
        };
        if let DeclineOutcome::Abandoned { abandoned, progress } =
            coordinator.decline(epoch, task, error, now_ms())
        {
            self.checkpoints_abandoned(task.job, vec![abandoned]);
            self.checkpoints_committed(task.job, progress);
        }
    }

    /// Abandons checkpoints that timed out.
    pub(super) fn expire_checkpoints(&mut self) {
        let now = now_ms();
        let mut results = Vec::new();
        for (id, job) in self.jobs.iter_mut() {
            if let Some(coordinator) = job.coordinator.as_mut() {
                let (abandoned, progress) = coordinator.expire(now);
                if !abandoned.is_empty() || !progress.is_empty() {
                    results.push((*id, abandoned, progress));
                }
            }
        }
        for (job, abandoned, progress) in results {
            self.checkpoints_abandoned(job, abandoned);
            self.checkpoints_committed(job, progress);
        }
    }

    pub(super) fn checkpoints_abandoned(&mut self, job: u64, abandoned: Vec<Abandoned>) {
        let mut paths = Vec::new();
        for a in abandoned {
            let reason = match &a.reason {
                AbandonReason::TaskFailed { task, error } => format!("{task}: {error}"),
                AbandonReason::Timeout => "timed out".to_string(),
                AbandonReason::JobFailed => "the job failed".to_string(),
            };
            warn!(job, epoch = a.epoch, reason = %reason, "checkpoint abandoned");
            if let Some(record) = self.history.get_mut(&(job, a.epoch)) {
                record.status = "failed";
                record.failure = Some(reason);
            }
            // Only pieces no other checkpoint refers to (the coordinator checked).
            paths.extend(a.pieces.into_iter().map(|p| p.path));
        }
        self.delete_paths(paths);
    }

    /// Writes the commit records of newly complete checkpoints, then deletes what retention
    /// let go of (only once the records are durable).
    pub(super) fn checkpoints_committed(&mut self, job: u64, progress: Progress) {
        if progress.is_empty() {
            return;
        }
        let Some(settings) = self.config.checkpoints.clone() else { return };
        for m in &progress.committed {
            if let Some(record) = self.history.get_mut(&(job, m.epoch)) {
                record.duration = Some(m.duration);
                record.bytes = m.bytes;
            }
        }
        let commands = self.commands.clone();
        tokio::spawn(async move {
            let mut durable = true;
            for m in &progress.committed {
                let result = match serde_json::to_vec(m) {
                    Ok(json) => settings
                        .store
                        .put_bytes(&metadata_path(job, m.epoch), json.into())
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                durable &= result.is_ok();
                let _ = commands.send(Command::CheckpointWritten { job, epoch: m.epoch, result });
            }
            if !durable {
                return;
            }
            // Expired records, and their pieces that no retained checkpoint shares.
            let records = progress.expired.iter().map(|m| metadata_path(job, m.epoch));
            for path in records.chain(progress.delete_paths.iter().cloned()) {
                if let Err(e) = settings.store.delete(&path).await {
                    warn!(path = %path, error = %e, "could not delete an expired checkpoint");
                }
            }
        });
    }

    pub(super) fn checkpoint_written(&mut self, job: u64, epoch: Epoch, result: Result<(), String>) {
        let Some(record) = self.history.get_mut(&(job, epoch)) else { return };
        match result {
            Ok(()) => {
                record.status = "completed";
                info!(
                    job,
                    epoch,
                    bytes = record.bytes,
                    duration_ms = record.duration.map(|d| d.as_millis() as u64),
                    "checkpoint committed"
                );
            }
            Err(e) => {
                warn!(job, epoch, error = %e, "checkpoint commit record not written");
                record.status = "failed";
                record.failure = Some(format!("commit record not written: {e}"));
            }
        }
    }

    fn delete_paths(&self, paths: Vec<String>) {
        if paths.is_empty() {
            return;
        }
        let Some(settings) = self.config.checkpoints.clone() else { return };
        tokio::spawn(async move {
            for path in paths {
                let _ = settings.store.delete(&path).await;
            }
        });
    }

    /// A dropped job's checkpoints go with it.
    pub(super) fn forget_checkpoints(&mut self, job: u64) {
        self.history.retain(|(j, _), _| *j != job);
        let Some(settings) = self.config.checkpoints.clone() else { return };
        tokio::spawn(async move {
            if let Err(e) = settings.store.retire_prefix(&format!("{}/", job_prefix(job))).await {
                warn!(job, error = %e, "could not delete a dropped job's checkpoints");
            }
        });
    }

    fn prune_history(&mut self) {
        let jobs: Vec<u64> = self.history.keys().map(|(j, _)| *j).collect();
        for job in jobs {
            let epochs: Vec<Epoch> =
                self.history.keys().filter(|(j, _)| *j == job).map(|(_, e)| *e).collect();
            for epoch in epochs.iter().take(epochs.len().saturating_sub(HISTORY_PER_JOB)) {
                self.history.remove(&(job, *epoch));
            }
        }
    }

    /// Restarts a failed job after its backoff (if restarts are on).
    pub(super) fn schedule_restart(&mut self, view_id: u64) {
        let base = self.config.restart_backoff;
        if base.is_zero() {
            return;
        }
        let Some(job) = self.jobs.get_mut(&view_id) else { return };
        let delay = base.saturating_mul(1u32 << job.restarts.min(16)).min(self.config.max_restart_backoff);
        info!(view = %job.graph.target.name, delay_ms = delay.as_millis() as u64, "job restart scheduled");
        let commands = self.commands.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = commands.send(Command::Restart { view_id });
        });
    }

    /// Deploys a failed job (or one waiting for slots) again, from its latest committed
    /// checkpoint.
    pub(super) fn restart(&mut self, view_id: u64) {
        let Some(old) = self.jobs.get(&view_id) else { return };
        if old.running() {
            return;
        }
        let Some(mut old) = self.jobs.remove(&view_id) else { return };
        self.release_channels(&old.channels);
        let restore = old.pending_restore.take().or_else(|| {
            old.coordinator.as_ref().and_then(|c| {
                let chosen = c.latest_committed()?.clone();
                Some(Recovered { chosen, committed: c.retained().cloned().collect() })
            })
        });
        let from = restore.as_ref().map(|r| r.chosen.epoch);
        if matches!(old.state, JobState::Failed { .. }) {
            old.restarts += 1;
        }
        match self.deploy(old.graph.clone(), restore.clone()) {
            Ok(first_epoch) => {
                if let Some(job) = self.jobs.get_mut(&view_id) {
                    job.restarts = old.restarts;
                    job.state = JobState::deployed(old.restarts);
                    job.last_failure = old.last_failure.clone();
                    job.created = old.created;
                }
                for (view, epoch, _) in &mut self.deploy_waiters {
                    if *view == view_id && *epoch == Epoch::MAX {
                        *epoch = first_epoch;
                    }
                }
                info!(view = %old.graph.target.name, restarts = old.restarts, from_checkpoint = ?from, "job deployed again");
                while self.injected < first_epoch {
                    self.inject(None);
                }
                self.try_commit();
            }
            Err(ExecError::NotEnoughSlots { needed, free }) => {
                // Tried again when a TaskManager registers.
                warn!(view = %old.graph.target.name, needed, free, "job waiting for task slots");
                old.state = JobState::WaitingForSlots { needed, free };
                old.pending_restore = restore;
                self.jobs.insert(view_id, old);
            }
            Err(e) => {
                // Put the failed job back and try again later (an input view may still be
                // restarting).
                warn!(view = %old.graph.target.name, error = %e, "job restart failed");
                old.state = JobState::Failed { reason: e.to_string() };
                old.last_failure = Some(e.to_string());
                old.pending_restore = restore;
                self.jobs.insert(view_id, old);
                self.schedule_restart(view_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn record(epoch: Epoch, pieces: &[&str]) -> CheckpointMetadata {
        let task = TaskId { job: 3, vertex: 1, subtask: 0 };
        CheckpointMetadata {
            job: 3,
            epoch,
            started: 1,
            duration: Duration::from_millis(5),
            pieces: pieces.iter().map(|p| StatePiece { task, path: p.to_string(), bytes: 1 }).collect(),
            source_offsets: BTreeMap::new(),
            bytes: pieces.len() as u64,
            layout: None,
        }
    }

    #[tokio::test]
    async fn recovery_skips_a_checkpoint_with_a_missing_piece_and_sweeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(&dir.path().display().to_string()).unwrap();
        let settings = CheckpointSettings {
            store: store.clone(),
            interval: Duration::from_secs(1),
            protocol: Default::default(),
        };
        let piece = |epoch| format!("job-3/{}/v1-s0.state", epoch_dir(epoch));
        for (epoch, write_piece) in [(5, true), (7, false)] {
            let m = record(epoch, &[&piece(epoch)]);
            store.put_bytes(&metadata_path(3, epoch), serde_json::to_vec(&m).unwrap().into()).await.unwrap();
            if write_piece {
                store.put_bytes(&piece(epoch), vec![1u8].into()).await.unwrap();
            }
        }
        // A crash in the middle of checkpoint 9: a piece without a commit record.
        store.put_bytes(&piece(9), vec![1u8].into()).await.unwrap();

        let recovered = load_recovery_point(&settings, 3).await.unwrap().expect("a checkpoint to restore");
        assert_eq!(recovered.chosen.epoch, 5);
        let restore = recovered.task_restore(TaskId { job: 3, vertex: 1, subtask: 0 });
        assert_eq!(restore.pieces.iter().map(|p| p.path.clone()).collect::<Vec<_>>(), [piece(5)]);
        // Only the restorable checkpoint is left.
        let left = store.list("job-3/").await.unwrap();
        assert_eq!(left, vec![metadata_path(3, 5), piece(5)]);
        assert!(load_recovery_point(&settings, 4).await.unwrap().is_none(), "another job has none");
    }
}
