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

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};
use weir_storage::ViewStateStore;

use crate::checkpoint_protocol::CheckpointCoordinator;
use crate::data_plane::{ChannelId, LocalDataPlane};
use crate::error::{ExecError, ExecResult};
use crate::job_graph::{schema_of, JobGraph, Partitioning, SourceSpec};
use crate::message::{Barrier, Epoch, Mutation, Subscription};
use crate::task::{job_prefix, OperatorStats, TaskEvent, TaskId};
pub use checkpoints::{CheckpointRecord, CheckpointSettings, Recovered};

#[path = "job_checkpoints.rs"]
mod checkpoints;

/// Whether a job takes checkpoints: one that reads other views rebuilds its state from
/// them instead, so it is never ahead of or behind what it reads.
fn takes_checkpoints(graph: &JobGraph) -> bool {
    graph.view_inputs().is_empty()
}
use crate::task_manager::{TaskDescriptor, TaskManager};

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
}

impl Default for JobManagerConfig {
    fn default() -> Self {
        Self {
            barrier_interval: Duration::from_secs(1),
            max_epochs_in_flight: 8,
            checkpoints: None,
            restart_backoff: Duration::from_secs(1),
            max_restart_backoff: Duration::from_secs(30),
        }
    }
}

/// A job as `weir_catalog.jobs` shows it.
#[derive(Debug, Clone)]
pub struct JobStatus {
    pub view_id: u64,
    pub view_name: String,
    pub status: String,
    pub parallelism: usize,
    pub created: SystemTime,
    pub last_committed_epoch: Option<Epoch>,
    /// `materialized view` or `sink`.
    pub kind: &'static str,
    /// Times the job was restarted after a failure, and the last failure.
    pub restarts: u32,
    pub last_failure: Option<String>,
}

/// A task as `weir_catalog.tasks` shows it.
#[derive(Debug, Clone)]
pub struct TaskStatus {
    pub view_id: u64,
    pub view_name: String,
    pub vertex: usize,
    pub subtask: usize,
    pub operators: String,
    pub taskmanager: usize,
    pub slot: usize,
    pub status: String,
    pub rows_in: u64,
    pub rows_out: u64,
    pub last_epoch: Option<Epoch>,
    /// The task's input watermark (microseconds), once it has one.
    pub watermark: Option<i64>,
    /// Per operator: late rows dropped and state entries held.
    pub operator_stats: Vec<OperatorStats>,
    /// Size of the task's state in its latest checkpoint.
    pub state_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct ClusterStatus {
    pub jobs: Vec<JobStatus>,
    pub tasks: Vec<TaskStatus>,
    pub committed_epoch: Epoch,
    pub checkpoints: Vec<CheckpointRecord>,
}

enum Command {
    Deploy { graph: JobGraph, restore: Option<Recovered>, reply: oneshot::Sender<ExecResult<()>> },
    StartAt { epoch: Epoch },
    Restart { view_id: u64 },
    InjectFailure { view_id: u64, reply: oneshot::Sender<ExecResult<()>> },
    CheckpointWritten { job: u64, epoch: Epoch, result: Result<(), String> },
    Drop { view_id: u64, reply: oneshot::Sender<()> },
    Flush { reply: oneshot::Sender<ExecResult<Epoch>> },
    Status { reply: oneshot::Sender<ClusterStatus> },
}

/// Handle to the JobManager actor. Cheap to clone.
#[derive(Clone)]
pub struct JobManager {
    commands: mpsc::UnboundedSender<Command>,
    checkpoints: Option<CheckpointSettings>,
}

impl JobManager {
    /// Starts the actor. `events` is the receiving end of the channel given to the
    /// TaskManagers.
    pub fn start(
        config: JobManagerConfig,
        task_managers: Vec<Arc<dyn TaskManager>>,
        data_plane: Arc<LocalDataPlane>,
        view_states: Arc<dyn ViewStateStore>,
        events: mpsc::UnboundedReceiver<TaskEvent>,
    ) -> Self {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let slots = task_managers.iter().flat_map(|tm| (0..tm.slots()).map(move |s| (tm.id(), s))).collect();
        let checkpoints = config.checkpoints.clone();
        let actor = Actor {
            commands: commands.clone(),
            last_checkpoint: std::time::Instant::now(),
            history: BTreeMap::new(),
            config,
            task_managers,
            slots,
            data_plane,
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
            settings.store.delete_prefix(&format!("{}/", job_prefix(graph.view_id))).await?;
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
                checkpoints::load_recovery_point(settings, graph.view_id).await
            }
            _ => Ok(None),
        }
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

    /// Makes the job's tasks fail on their next batch, as an operator error would.
    pub async fn inject_failure(&self, view_id: u64) -> ExecResult<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::InjectFailure { view_id, reply })?;
        rx.await.map_err(|_| gone())?
    }

    /// Stops a job and forgets its view's contents.
    pub async fn drop_job(&self, view_id: u64) -> ExecResult<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Drop { view_id, reply })?;
        rx.await.map_err(|_| gone())
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
    failure: Option<String>,
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
}

impl Job {
    fn running(&self) -> bool {
        self.failure.is_none()
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
    /// Every (taskmanager, slot) pair.
    slots: Vec<(usize, usize)>,
    data_plane: Arc<LocalDataPlane>,
    view_states: Arc<dyn ViewStateStore>,
    injected: Epoch,
    committed: Epoch,
    jobs: BTreeMap<u64, Job>,
    flush_waiters: Vec<(Epoch, oneshot::Sender<ExecResult<Epoch>>)>,
    deploy_waiters: Vec<(u64, Epoch, oneshot::Sender<ExecResult<()>>)>,
}

impl Actor {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut events: mpsc::UnboundedReceiver<TaskEvent>,
    ) {
        let mut ticker = tokio::time::interval(self.config.barrier_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.handle_command(command),
                    None => return,
                },
                Some(event) = events.recv() => self.handle_event(event),
                _ = ticker.tick() => {
                    self.expire_checkpoints();
                    if self.injected - self.committed < self.config.max_epochs_in_flight {
                        let checkpoint = self.checkpoint_due();
                        self.inject_barrier(None, checkpoint);
                        self.try_commit();
                    }
                }
            }
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Deploy { graph, restore, reply } => {
                let view_id = graph.view_id;
                match self.deploy(graph, restore) {
                    Ok(first_epoch) => {
                        self.deploy_waiters.push((view_id, first_epoch, reply));
                        // Do not wait for the timer: the first barrier closes the backfill.
                        while self.injected < first_epoch {
                            self.inject(None);
                        }
                        self.try_commit();
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Drop { view_id, reply } => {
                self.stop_job(view_id);
                self.view_states.remove(view_id);
                self.try_commit();
                let _ = reply.send(());
            }
            Command::Flush { reply } => {
                self.inject(None);
                self.flush_waiters.push((self.injected, reply));
                self.try_commit();
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::StartAt { epoch } => {
                if self.jobs.is_empty() && epoch > self.injected {
                    self.injected = epoch;
                    self.committed = epoch;
                }
            }
            Command::Restart { view_id } => self.restart(view_id),
            Command::InjectFailure { view_id, reply } => {
                let result = match self.jobs.get(&view_id) {
                    Some(job) if job.running() => {
                        self.inject(Some(Arc::new(Mutation::InjectFailure { job: view_id })));
                        Ok(())
                    }
                    _ => Err(ExecError::InvalidGraph(format!("job {view_id} is not running"))),
                };
                let _ = reply.send(result);
            }
            Command::CheckpointWritten { job, epoch, result } => self.checkpoint_written(job, epoch, result),
        }
    }

    fn handle_event(&mut self, event: TaskEvent) {
        match event {
            TaskEvent::EpochDone { task, epoch, rows_in, rows_out, watermark, operators } => {
                if let Some(state) = self.jobs.get_mut(&task.job).and_then(|j| j.tasks.get_mut(&task)) {
                    state.last_epoch = Some(epoch);
                    state.rows_in = rows_in;
                    state.rows_out = rows_out;
                    state.watermark = watermark;
                    state.operator_stats = operators;
                }
                self.try_commit();
            }
            TaskEvent::Failed { task, error } => self.fail_job(task.job, format!("{task}: {error}")),
            TaskEvent::Checkpointed { task, epoch, pieces, source_offset } => {
                self.checkpoint_acknowledged(task, epoch, pieces, source_offset)
            }
            TaskEvent::CheckpointFailed { task, epoch, error } => {
                self.checkpoint_declined(task, epoch, error)
            }
        }
    }

    /// Injects the next barrier (not a checkpoint) at every source.
    fn inject(&mut self, mutation: Option<Arc<Mutation>>) {
        self.inject_barrier(mutation, false);
    }

    /// Injects the next barrier at every source of every running job that takes part; a
    /// checkpoint barrier starts a checkpoint of every job that takes checkpoints.
    fn inject_barrier(&mut self, mutation: Option<Arc<Mutation>>, checkpoint: bool) {
        self.injected += 1;
        let epoch = self.injected;
        let checkpointing = match checkpoint {
            true => {
                self.last_checkpoint = std::time::Instant::now();
                self.trigger_checkpoints(epoch)
            }
            false => Default::default(),
        };
        let mut failed = Vec::new();
        for (id, job) in &self.jobs {
            if !job.running() || job.first_epoch > epoch {
                continue;
            }
            let base_checkpoint =
                job.coordinator.as_ref().and_then(|c| c.latest_committed()).map(|m| m.epoch);
            let barrier =
                Barrier { checkpoint: checkpointing.contains(id), base_checkpoint, ..Barrier::new(epoch) };
            let barrier = Barrier { mutation: mutation.clone(), ..barrier };
            for source in &job.sources {
                let tm = job.tasks.get(source).map(|t| t.tm).unwrap_or(0);
                let result = self
                    .task_managers
                    .iter()
                    .find(|m| m.id() == tm)
                    .ok_or_else(|| ExecError::Internal(format!("no taskmanager {tm}")))
                    .and_then(|m| m.inject_barrier(*source, barrier.clone()));
                match result {
                    // The source has stopped: it failed and reports why itself (its event
                    // may still be queued), or its job is being cancelled.
                    Err(ExecError::ChannelClosed(what)) => debug!(%what, "barrier not delivered"),
                    Err(e) => failed.push((*id, e.to_string())),
                    Ok(()) => {}
                }
            }
        }
        for (job, error) in failed {
            self.fail_job(job, error);
        }
        debug!(epoch = self.injected, "barrier injected");
    }

    /// Commits every epoch whose tasks have all finished it, in order.
    fn try_commit(&mut self) {
        while self.committed < self.injected {
            let epoch = self.committed + 1;
            let complete = self
                .jobs
                .values()
                .filter(|j| j.running() && j.first_epoch <= epoch)
                .all(|j| j.tasks.values().all(|t| t.last_epoch.is_some_and(|e| e >= epoch)));
            if !complete {
                break;
            }
            self.view_states.commit(epoch);
            self.committed = epoch;
            for job in self.jobs.values_mut() {
                if job.running() && job.first_epoch <= epoch {
                    job.last_committed = Some(epoch);
                }
            }
            debug!(epoch, "epoch committed");
        }
        let committed = self.committed;
        for (_, waiter) in drain_where(&mut self.flush_waiters, |(e, _)| *e <= committed) {
            let _ = waiter.send(Ok(committed));
        }
        for (_, _, waiter) in drain_where(&mut self.deploy_waiters, |(_, e, _)| *e <= committed) {
            let _ = waiter.send(Ok(()));
        }
    }

    fn deploy(&mut self, graph: JobGraph, restore: Option<Recovered>) -> ExecResult<Epoch> {
        let view_id = graph.view_id;
        if self.jobs.contains_key(&view_id) {
            return Err(ExecError::InvalidGraph(format!("job {view_id} is already running")));
        }
        for upstream in graph.view_inputs() {
            match self.jobs.get(&upstream) {
                Some(job) if job.running() => {}
                _ => {
                    return Err(ExecError::InvalidGraph(format!(
                        "view {upstream} that this view reads is not running"
                    )))
                }
            }
        }
        let materialized = match graph.is_sink() {
            true => None,
            false => {
                let materialize = graph.materialize_vertex()?;
                Some((schema_of(&graph.output_fields(materialize.id)?)?, materialize.parallelism))
            }
        };
        let mut plan = self.execution_graph(&graph)?;
        let checkpointed = self.config.checkpoints.is_some() && takes_checkpoints(&graph);
        for task in &mut plan.tasks {
            task.checkpointed = checkpointed;
            task.restore = restore.as_ref().map(|r| r.task_restore(task.id));
        }
        if let Some((view_schema, parallelism)) = materialized {
            self.view_states.register(view_id, view_schema, parallelism);
        }

        let protocol = self.config.checkpoints.as_ref().map(|c| c.protocol);
        let coordinator = match (protocol, checkpointed) {
            (Some(protocol), true) => {
                let committed = restore.map(|r| r.committed).unwrap_or_default();
                self.remember_committed(view_id, &graph.view_name, &committed);
                Some(CheckpointCoordinator::recovered(view_id, protocol, committed).0)
            }
            _ => None,
        };
        let mut job = Job {
            graph: graph.clone(),
            created: SystemTime::now(),
            failure: None,
            coordinator,
            restarts: 0,
            last_failure: None,
            first_epoch: Epoch::MAX,
            last_committed: None,
            tasks: BTreeMap::new(),
            sources: Vec::new(),
            channels: plan.channels.clone(),
        };
        for desc in plan.tasks {
            let tm_id = plan
                .placement
                .get(&desc.id)
                .map(|(tm, _)| *tm)
                .ok_or_else(|| ExecError::Internal(format!("{} was not placed", desc.id)))?;
            let slot = desc.slot;
            let tm = self
                .task_managers
                .iter()
                .find(|m| m.id() == tm_id)
                .ok_or_else(|| ExecError::Internal(format!("no taskmanager {tm_id}")))?;
            if matches!(desc.vertex.source, Some(SourceSpec::Table { .. } | SourceSpec::Connector { .. })) {
                job.sources.push(desc.id);
            }
            let operators = desc.vertex.operator_names();
            let id = desc.id;
            if let Err(e) = tm.deploy(desc) {
                for tm in &self.task_managers {
                    tm.cancel_job(view_id);
                }
                self.data_plane.release(&plan.channels);
                self.view_states.remove(view_id);
                return Err(e);
            }
            job.tasks.insert(
                id,
                TaskState {
                    tm: tm_id,
                    slot,
                    operators,
                    last_epoch: None,
                    rows_in: 0,
                    rows_out: 0,
                    watermark: i64::MIN,
                    operator_stats: Vec::new(),
                    state_bytes: None,
                },
            );
        }
        info!(view = %graph.view_name, tasks = job.tasks.len(), "job deployed");
        // Subscriptions to upstream views ride one barrier; the job joins right after it.
        if !plan.subscriptions.is_empty() {
            let subscriptions = plan
                .subscriptions
                .into_iter()
                .map(|(view_id, channels)| Subscription { view_id, channels })
                .collect();
            self.inject(Some(Arc::new(Mutation::Subscribe(subscriptions))));
        }
        job.first_epoch = self.injected + 1;
        let first_epoch = job.first_epoch;
        self.jobs.insert(view_id, job);
        Ok(first_epoch)
    }

    /// Expands a JobGraph into its ExecutionGraph: one task per subtask, placed on a slot,
    /// with a channel for every producer/consumer pair of every edge.
    fn execution_graph(&self, graph: &JobGraph) -> ExecResult<ExecutionGraph> {
        if self.slots.is_empty() {
            return Err(ExecError::Internal("no taskmanager slots".into()));
        }
        let mut plan = ExecutionGraph::default();
        // channel[(consumer vertex, edge index)][(producer subtask, consumer subtask)]
        let mut edge_channels: BTreeMap<(usize, usize), BTreeMap<(usize, usize), ChannelId>> =
            BTreeMap::new();
        for vertex in &graph.vertices {
            for (e, edge) in vertex.inputs.iter().enumerate() {
                let producer = graph.vertex(edge.from)?;
                let pairs = edge_pairs(&edge.partitioning, producer.parallelism, vertex.parallelism)?;
                let channels = edge_channels.entry((vertex.id, e)).or_default();
                for pair in pairs {
                    let id = self.data_plane.create();
                    plan.channels.push(id);
                    channels.insert(pair, id);
                }
            }
        }
        let offset = graph.view_id as usize;
        for vertex in &graph.vertices {
            let input_schema = graph.input_fields(vertex.id)?;
            let mut subscription = Vec::new();
            for subtask in 0..vertex.parallelism {
                let (tm, slot) = self.slots[(subtask + offset) % self.slots.len()];
                let id = TaskId { job: graph.view_id, vertex: vertex.id, subtask };
                let mut inputs = Vec::new();
                let mut input_edges = Vec::new();
                for (e, _) in vertex.inputs.iter().enumerate() {
                    let channels =
                        edge_channels.get(&(vertex.id, e)).ok_or_else(|| missing_edge(vertex.id, e))?;
                    for ((_, consumer), channel) in channels {
                        if *consumer == subtask {
                            inputs.push(*channel);
                            input_edges.push(e);
                        }
                    }
                }
                if let Some(SourceSpec::View { .. }) = &vertex.source {
                    let channel = self.data_plane.create();
                    plan.channels.push(channel);
                    subscription.push(channel);
                    inputs.push(channel);
                    input_edges.push(0);
                }
                let mut outputs = Vec::new();
                for (consumer, edge) in graph.consumers(vertex.id) {
                    let e = consumer.inputs.iter().position(|x| x == edge).unwrap_or(0);
                    let channels: Vec<ChannelId> = edge_channels
                        .get(&(consumer.id, e))
                        .ok_or_else(|| missing_edge(consumer.id, e))?
                        .iter()
                        .filter(|((producer, _), _)| *producer == subtask)
                        .map(|(_, c)| *c)
                        .collect();
                    outputs.push((edge.partitioning.clone(), channels));
                }
                plan.placement.insert(id, (tm, slot));
                plan.tasks.push(TaskDescriptor {
                    id,
                    slot,
                    vertex: vertex.clone(),
                    input_schema: input_schema.clone(),
                    inputs,
                    input_edges,
                    outputs,
                    restore: None,
                    checkpointed: false,
                });
            }
            if let Some(SourceSpec::View { view_id, .. }) = &vertex.source {
                let upstream = self
                    .jobs
                    .get(view_id)
                    .ok_or_else(|| ExecError::InvalidGraph(format!("view {view_id} is not running")))?;
                let upstream_parallelism = upstream.graph.materialize_vertex()?.parallelism;
                if upstream_parallelism != vertex.parallelism {
                    return Err(ExecError::InvalidGraph(format!(
                        "a vertex reading view {view_id} must have its parallelism {upstream_parallelism}"
                    )));
                }
                plan.subscriptions.push((*view_id, subscription));
            }
        }
        Ok(plan)
    }

    fn stop_job(&mut self, view_id: u64) {
        if let Some(job) = self.jobs.remove(&view_id) {
            for tm in &self.task_managers {
                tm.cancel_job(view_id);
            }
            self.data_plane.release(&job.channels);
            crate::connectors::metrics::unregister_job(view_id);
            self.forget_checkpoints(view_id);
            info!(view = %job.graph.view_name, "job stopped");
        }
        for (_, _, waiter) in drain_where(&mut self.deploy_waiters, |(v, _, _)| *v == view_id) {
            let _ = waiter
                .send(Err(ExecError::Internal("the view was dropped while it was being created".into())));
        }
    }

    /// Marks a job failed, stops its tasks, and fails the jobs that read its view.
    fn fail_job(&mut self, view_id: u64, reason: String) {
        let Some(job) = self.jobs.get_mut(&view_id) else { return };
        if !job.running() {
            return;
        }
        error!(view = %job.graph.view_name, reason = %reason, restarts = job.restarts, "job failed");
        job.failure = Some(reason.clone());
        job.last_failure = Some(reason.clone());
        let abandoned = job.coordinator.as_mut().map(|c| c.abandon_all()).unwrap_or_default();
        self.checkpoints_abandoned(view_id, abandoned);
        self.schedule_restart(view_id);
        // Some partitions may have finished an epoch the others never will.
        self.view_states.freeze(view_id);
        for tm in &self.task_managers {
            tm.cancel_job(view_id);
        }
        for (_, _, waiter) in drain_where(&mut self.deploy_waiters, |(v, _, _)| *v == view_id) {
            let _ = waiter.send(Err(ExecError::Internal(format!("the view's job failed: {reason}"))));
        }
        let readers: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.graph.view_inputs().contains(&view_id))
            .map(|(id, _)| *id)
            .collect();
        for reader in readers {
            warn!(view_id = reader, "failing a job whose input view failed");
            self.fail_job(reader, format!("input view {view_id} failed"));
        }
        self.try_commit();
    }

    fn status(&self) -> ClusterStatus {
        let mut status = ClusterStatus { committed_epoch: self.committed, ..Default::default() };
        status.checkpoints = self.history.values().cloned().collect();
        for (id, job) in &self.jobs {
            let state = match &job.failure {
                Some(reason) => format!("failed: {reason}"),
                None if job.last_committed.is_none() && job.restarts > 0 => "restarting".to_string(),
                None if job.last_committed.is_none() => "creating".to_string(),
                None => "running".to_string(),
            };
            status.jobs.push(JobStatus {
                view_id: *id,
                view_name: job.graph.view_name.clone(),
                status: state.clone(),
                parallelism: job.parallelism(),
                created: job.created,
                last_committed_epoch: job.last_committed,
                kind: if job.graph.is_sink() { "sink" } else { "materialized view" },
                restarts: job.restarts,
                last_failure: job.last_failure.clone(),
            });
            for (task, t) in &job.tasks {
                status.tasks.push(TaskStatus {
                    view_id: *id,
                    view_name: job.graph.view_name.clone(),
                    vertex: task.vertex,
                    subtask: task.subtask,
                    operators: t.operators.clone(),
                    taskmanager: t.tm,
                    slot: t.slot,
                    status: if job.running() { "running".into() } else { "failed".into() },
                    rows_in: t.rows_in,
                    rows_out: t.rows_out,
                    last_epoch: t.last_epoch,
                    watermark: (t.watermark != i64::MIN).then_some(t.watermark),
                    operator_stats: t.operator_stats.clone(),
                    state_bytes: t.state_bytes,
                });
            }
        }
        status
    }
}

/// A JobGraph expanded for deployment: every subtask's descriptor and placement, the
/// channels between them, and the channels new subscriptions to upstream views will use.
#[derive(Default)]
struct ExecutionGraph {
    tasks: Vec<TaskDescriptor>,
    placement: BTreeMap<TaskId, (usize, usize)>,
    channels: Vec<ChannelId>,
    subscriptions: Vec<(u64, Vec<ChannelId>)>,
}

/// The (producer subtask, consumer subtask) pairs an edge connects.
fn edge_pairs(
    partitioning: &Partitioning,
    producers: usize,
    consumers: usize,
) -> ExecResult<Vec<(usize, usize)>> {
    match partitioning {
        Partitioning::Forward if producers == consumers => Ok((0..producers).map(|i| (i, i)).collect()),
        Partitioning::Forward => Err(ExecError::InvalidGraph(format!(
            "forward edge between parallelism {producers} and {consumers}"
        ))),
        Partitioning::Single if consumers == 1 => Ok((0..producers).map(|i| (i, 0)).collect()),
        Partitioning::Single => Err(ExecError::InvalidGraph("single edge into a parallel vertex".into())),
        Partitioning::Hash(_) | Partitioning::Broadcast => {
            Ok((0..producers).flat_map(|p| (0..consumers).map(move |c| (p, c))).collect())
        }
    }
}

fn missing_edge(vertex: usize, edge: usize) -> ExecError {
    ExecError::Internal(format!("no channels for input {edge} of vertex {vertex}"))
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

#[cfg(test)]
#[path = "job_manager_tests.rs"]
mod tests;
