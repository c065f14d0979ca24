//! The JobManager: deploys JobGraphs onto TaskManagers, drives epochs and commits them.
//!
//! It runs as one actor task; everything else talks to it through [`JobManager`]
//! (commands) and tasks report to it through events. Every barrier interval it injects
//! `Barrier(e)` at every source of every job. When every task that takes part in epoch `e`
//! has reported it done, `e` is committed: every view's contents as of `e` are published
//! together, so queries see all views at one consistent point. `FLUSH` injects a barrier at
//! once and waits for its commit.
//!
//! A new job that reads other views joins the dataflow at a barrier: the JobManager injects
//! an extra barrier `E` carrying a subscribe mutation; the upstream materialize tasks, right
//! after passing `E`, send their contents and then every later change to the new job. The
//! new job's own table sources start receiving barriers at `E + 1`, its first epoch.
//!
//! The actor's work is split by concern: [`actor`] receives commands and task events,
//! `epochs` injects barriers and commits epochs, `deploy` expands a JobGraph into tasks
//! and places them (`placement` chooses the slots), `lifecycle` moves jobs between their
//! states (creating, running, failed, restarting, waiting for slots), `membership` adds
//! and loses TaskManagers, `checkpoints` coordinates checkpoints and restarts, and
//! `status` answers the system tables.

mod actor;
mod checkpoints;
mod deploy;
mod epochs;
mod lifecycle;
mod membership;
pub mod placement;
pub mod rescale;
mod status;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};
use weir_plan::JobGraph;
use weir_storage::ViewStateStore;

pub use self::checkpoints::{CheckpointRecord, CheckpointSettings, Recovered};
pub use self::lifecycle::JobState;
pub use self::placement::SlotPolicy;
pub use self::status::{ClusterStatus, JobStatus, TaskManagerStatus, TaskStatus};
use crate::checkpoint_protocol::CheckpointCoordinator;
use crate::data_plane::{ChannelId, ChannelIds};
use crate::error::{ExecError, ExecResult};
use crate::message::Epoch;
use crate::task::{job_prefix, TaskId};
use crate::task_events::{OperatorStats, TaskEvent};
use crate::task_manager::TaskManager;

/// How long dropping a job waits for the TaskManagers' uploads of it to end (as long as a
/// TaskManager waits for them itself).
const FENCE_WAIT: Duration = Duration::from_secs(65);

/// Whether a job takes checkpoints: one that reads other views rebuilds its state from
/// them instead, so it is never ahead of or behind what it reads.
fn takes_checkpoints(graph: &JobGraph) -> bool {
    graph.view_inputs().is_empty()
}

#[derive(Clone)]
pub struct JobManagerConfig {
    pub barrier_interval: Duration,
    /// Injected but uncommitted epochs allowed before the timer stops injecting (so a
    /// back-pressured job is not flooded with barriers).
    pub max_epochs_in_flight: u64,
    /// Checkpoints; `None` turns them off (jobs then start from scratch after a restart).
    pub checkpoints: Option<CheckpointSettings>,
    /// A failed job is restarted after this delay, doubled at every failure up to
    /// `max_restart_backoff`; zero turns restarts off.
    pub restart_backoff: Duration,
    pub max_restart_backoff: Duration,
    /// `Some` in a cluster: jobs run in the slots of worker TaskManagers chosen by this
    /// policy (and wait for them), and materialize runs in the frontend. `None`: standalone.
    pub cluster: Option<SlotPolicy>,
}

impl Default for JobManagerConfig {
    fn default() -> Self {
        Self {
            barrier_interval: Duration::from_secs(1),
            max_epochs_in_flight: 8,
            checkpoints: None,
            restart_backoff: Duration::from_secs(1),
            max_restart_backoff: Duration::from_secs(30),
            cluster: None,
        }
    }
}

/// What a `Drop` replies: the fences of the TaskManagers' checkpoint uploads of the job
/// (see [`TaskManager::fence_dropped_job`]).
type UploadFences = Vec<oneshot::Receiver<()>>;

enum Command {
    Deploy { graph: JobGraph, restore: Option<Recovered>, reply: oneshot::Sender<ExecResult<()>> },
    StartAt { epoch: Epoch },
    Restart { view_id: u64 },
    Rescale { graph: JobGraph, reply: oneshot::Sender<ExecResult<()>> },
    InjectFailure { view_id: u64, reply: oneshot::Sender<ExecResult<()>> },
    CheckpointWritten { job: u64, epoch: Epoch, result: Result<(), String> },
    Drop { view_id: u64, reply: oneshot::Sender<UploadFences> },
    Flush { reply: oneshot::Sender<ExecResult<Epoch>> },
    Status { reply: oneshot::Sender<ClusterStatus> },
    AddTaskManager { tm: Arc<dyn TaskManager> },
    TaskManagerLost { id: usize, reason: String },
}

/// Handle to the JobManager actor. Cheap to clone.
#[derive(Clone)]
pub struct JobManager {
    commands: mpsc::UnboundedSender<Command>,
    checkpoints: Option<CheckpointSettings>,
}

impl JobManager {
    /// Starts the actor. `events` is what the TaskManagers' [`JobManagerEndpoint`]s
    /// deliver.
    ///
    /// [`JobManagerEndpoint`]: crate::task_events::JobManagerEndpoint
    pub fn start(
        config: JobManagerConfig,
        task_managers: Vec<Arc<dyn TaskManager>>,
        view_states: Arc<dyn ViewStateStore>,
        events: mpsc::UnboundedReceiver<TaskEvent>,
    ) -> Self {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let checkpoints = config.checkpoints.clone();
        let actor = Actor {
            commands: commands.clone(),
            last_checkpoint: std::time::Instant::now(),
            history: BTreeMap::new(),
            config,
            task_managers,
            lost_task_managers: BTreeMap::new(),
            channel_ids: ChannelIds::unique_across_restarts(),
            view_states,
            injected: 0,
            committed: 0,
            jobs: BTreeMap::new(),
            flush_waiters: Vec::new(),
            deploy_waiters: Vec::new(),
        };
        tokio::spawn(actor.run(command_rx, events));
        Self { commands, checkpoints }
    }

    /// Deploys a new job and returns once its view holds the backfilled contents (the job's
    /// first epoch is committed). Checkpoints left by an earlier job of the same id are
    /// discarded.
    pub async fn deploy(&self, graph: JobGraph) -> ExecResult<()> {
        if let Some(settings) = &self.checkpoints {
            let prefix = format!("{}/", job_prefix(graph.id()));
            settings.store.reopen_prefix(&prefix);
            settings.store.delete_prefix(&prefix).await?;
        }
        let (reply, rx) = oneshot::channel();
        self.send(Command::Deploy { graph, restore: None, reply })?;
        rx.await.map_err(|_| gone())?
    }

    /// What a job deployed again after a restart resumes from: its latest committed
    /// checkpoint, if it has one and takes part in checkpoints. Also clears what partial
    /// and expired checkpoints left in the store, so call it only at startup, before the
    /// job runs.
    pub async fn recovery_point(&self, graph: &JobGraph) -> ExecResult<Option<Recovered>> {
        match &self.checkpoints {
            Some(settings) if takes_checkpoints(graph) => {
                checkpoints::load_recovery_point(settings, graph.id()).await
            }
            _ => Ok(None),
        }
    }

    /// Deletes the checkpoints of every job but `keep` (the views and sinks of the catalog):
    /// those of a `CREATE` that a crash interrupted before it committed. Call only at
    /// startup, before any job runs. Returns how many jobs' checkpoints went.
    pub async fn sweep_checkpoints_except(
        &self,
        keep: &std::collections::BTreeSet<u64>,
    ) -> ExecResult<usize> {
        let Some(settings) = &self.checkpoints else { return Ok(0) };
        let orphans: std::collections::BTreeSet<u64> = settings
            .store
            .list("")
            .await?
            .iter()
            .filter_map(|path| path.strip_prefix("job-")?.split('/').next()?.parse().ok())
            .filter(|job| !keep.contains(job))
            .collect();
        for job in &orphans {
            tracing::info!(job, "deleting the checkpoints of a job the catalog does not have");
            settings.store.delete_prefix(&format!("{}/", job_prefix(*job))).await?;
        }
        Ok(orphans.len())
    }

    /// Before any job is deployed at startup: epochs continue after `epoch` (the latest
    /// checkpoint found), so new checkpoints never reuse an epoch.
    pub fn start_at(&self, epoch: Epoch) -> ExecResult<()> {
        self.send(Command::StartAt { epoch })
    }

    /// Deploys a job found in the catalog at startup, from `restore` when given.
    pub async fn recover(&self, graph: JobGraph, restore: Option<Recovered>) -> ExecResult<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Deploy { graph, restore, reply })?;
        rx.await.map_err(|_| gone())?
    }

    /// Deploys a running job again as `graph` (the same job at other parallelisms, see
    /// [`rescale::rescaled_graph`]) from its latest committed checkpoint; returns once the
    /// first epoch after it is committed. Fails, changing nothing, when other views read the
    /// job's view or the cluster lacks the slots.
    pub async fn rescale(&self, graph: JobGraph) -> ExecResult<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Rescale { graph, reply })?;
        rx.await.map_err(|_| gone())?
    }

    /// Makes the job's tasks fail on their next batch, as an operator error would.
    pub async fn inject_failure(&self, view_id: u64) -> ExecResult<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::InjectFailure { view_id, reply })?;
        rx.await.map_err(|_| gone())?
    }

    /// Stops a job and forgets its view's contents; returns once its checkpoints are
    /// deleted too (the actor also deletes them, in the background). The deletion waits
    /// until no TaskManager is uploading a piece of the job (each fences its uploads, see
    /// [`TaskManager::fence_dropped_job`]; a lost one can no longer write once its lease ran
    /// out), so no late upload lands after it.
    pub async fn drop_job(&self, view_id: u64) -> ExecResult<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Drop { view_id, reply })?;
        let fences = rx.await.map_err(|_| gone())?;
        let waiting = fences.len();
        // A fence whose TaskManager went away resolves with an error: nothing to wait for.
        let fenced = futures::future::join_all(fences);
        if tokio::time::timeout(FENCE_WAIT, fenced).await.is_err() {
            tracing::warn!(job = view_id, waiting, "uploads of a dropped job still running; deleting anyway");
        }
        if let Some(settings) = &self.checkpoints {
            settings.store.retire_prefix(&format!("{}/", job_prefix(view_id))).await?;
        }
        Ok(())
    }

    /// Stops a job without waiting (for cleanup paths that cannot await). Commands are
    /// handled in order, so any later command sees the job gone.
    pub fn stop_job(&self, view_id: u64) {
        let (reply, _) = oneshot::channel();
        let _ = self.send(Command::Drop { view_id, reply });
    }

    /// Returns once everything written before the call is visible in every view.
    pub async fn flush(&self) -> ExecResult<Epoch> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Flush { reply })?;
        rx.await.map_err(|_| gone())?
    }

    /// A TaskManager joined (a worker registered): jobs waiting for slots are placed again.
    pub fn add_task_manager(&self, tm: Arc<dyn TaskManager>) -> ExecResult<()> {
        self.send(Command::AddTaskManager { tm })
    }

    /// A TaskManager is gone (its connection broke or its heartbeats stopped): every job
    /// with a task on it fails and restarts from its latest checkpoint elsewhere.
    pub fn task_manager_lost(&self, id: usize, reason: String) -> ExecResult<()> {
        self.send(Command::TaskManagerLost { id, reason })
    }

    pub async fn status(&self) -> ExecResult<ClusterStatus> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Status { reply })?;
        rx.await.map_err(|_| gone())
    }

    fn send(&self, command: Command) -> ExecResult<()> {
        self.commands.send(command).map_err(|_| gone())
    }
}

fn gone() -> ExecError {
    ExecError::ChannelClosed("job manager stopped".into())
}

struct TaskState {
    tm: usize,
    slot: usize,
    operators: String,
    last_epoch: Option<Epoch>,
    rows_in: u64,
    rows_out: u64,
    watermark: i64,
    operator_stats: Vec<OperatorStats>,
    state_bytes: Option<u64>,
}

struct Job {
    graph: JobGraph,
    created: SystemTime,
    state: JobState,
    /// `None` for a job that takes no checkpoints (checkpoints are off, or it reads views).
    coordinator: Option<CheckpointCoordinator>,
    restarts: u32,
    last_failure: Option<String>,
    /// The first epoch this job takes part in.
    first_epoch: Epoch,
    last_committed: Option<Epoch>,
    tasks: BTreeMap<TaskId, TaskState>,
    sources: Vec<TaskId>,
    channels: Vec<ChannelId>,
    /// The deployment its tasks run in (0 while it waits for slots): events of tasks of any
    /// other deployment of it (cancelled, still winding down) are ignored.
    deployment: u64,
    /// What a job waiting for slots restores from once placed (a job recovered at startup
    /// before the workers registered).
    pending_restore: Option<Recovered>,
}

impl Job {
    /// Whether the job's tasks run: it has not failed and is not waiting for slots (it may
    /// still be creating).
    /// FLUSH's error while this job has failed (before its restart).
    fn failure(&self) -> Option<ExecError> {
        match &self.state {
            JobState::Failed { reason } => {
                Some(ExecError::ViewFailed { view: self.graph.target.name.clone(), reason: reason.clone() })
            }
            _ => None,
        }
    }

    fn running(&self) -> bool {
        !matches!(
            self.state,
            JobState::Failed { .. } | JobState::WaitingForSlots { .. } | JobState::Rescaling { .. }
        )
    }

    fn parallelism(&self) -> usize {
        self.graph.vertices.iter().map(|v| v.parallelism).max().unwrap_or(1)
    }
}

struct Actor {
    config: JobManagerConfig,
    /// For work spawned off the actor to report back.
    commands: mpsc::UnboundedSender<Command>,
    last_checkpoint: std::time::Instant,
    /// Recent checkpoints by (job, epoch), for `weir_catalog.checkpoints`.
    history: BTreeMap<(u64, Epoch), CheckpointRecord>,
    task_managers: Vec<Arc<dyn TaskManager>>,
    /// TaskManagers lost recently, and why, for `weir_catalog.taskmanagers`.
    lost_task_managers: BTreeMap<usize, (usize, String, SystemTime)>,
    /// Names the channels of deployed jobs; the TaskManagers' data planes make them.
    channel_ids: ChannelIds,
    view_states: Arc<dyn ViewStateStore>,
    injected: Epoch,
    committed: Epoch,
    jobs: BTreeMap<u64, Job>,
    flush_waiters: Vec<(Epoch, oneshot::Sender<ExecResult<Epoch>>)>,
    deploy_waiters: Vec<(u64, Epoch, oneshot::Sender<ExecResult<()>>)>,
}

impl Actor {
    /// Tells every TaskManager to forget a stopped job's channels.
    fn release_channels(&self, channels: &[ChannelId]) {
        for tm in &self.task_managers {
            tm.release_channels(channels);
        }
    }
}

fn drain_where<T>(items: &mut Vec<T>, mut pred: impl FnMut(&T) -> bool) -> Vec<T> {
    let mut taken = Vec::new();
    let mut i = 0;
    while i < items.len() {
        if pred(&items[i]) {
            taken.push(items.remove(i));
        } else {
            i += 1;
        }
    }
    taken
}
