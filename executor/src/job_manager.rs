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

use crate::data_plane::{ChannelId, LocalDataPlane};
use crate::error::{ExecError, ExecResult};
use crate::job_graph::{schema_of, JobGraph, Partitioning, SourceSpec};
use crate::message::{Barrier, Epoch, Mutation, Subscription};
use crate::task::{OperatorStats, TaskEvent, TaskId};
use crate::task_manager::{TaskDescriptor, TaskManager};

#[derive(Debug, Clone)]
pub struct JobManagerConfig {
    pub barrier_interval: Duration,
    /// Injected but uncommitted epochs allowed before the timer stops injecting (so a
    /// back-pressured job is not flooded with barriers).
    pub max_epochs_in_flight: u64,
}

impl Default for JobManagerConfig {
    fn default() -> Self {
        Self { barrier_interval: Duration::from_secs(1), max_epochs_in_flight: 8 }
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
}

#[derive(Debug, Clone, Default)]
pub struct ClusterStatus {
    pub jobs: Vec<JobStatus>,
    pub tasks: Vec<TaskStatus>,
    pub committed_epoch: Epoch,
}

enum Command {
    Deploy { graph: JobGraph, reply: oneshot::Sender<ExecResult<()>> },
    Drop { view_id: u64, reply: oneshot::Sender<()> },
    Flush { reply: oneshot::Sender<ExecResult<Epoch>> },
    Status { reply: oneshot::Sender<ClusterStatus> },
}

/// Handle to the JobManager actor. Cheap to clone.
#[derive(Clone)]
pub struct JobManager {
    commands: mpsc::UnboundedSender<Command>,
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
        let actor = Actor {
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
        Self { commands }
    }

    /// Deploys a job and returns once its view holds the backfilled contents (the job's
    /// first epoch is committed).
    pub async fn deploy(&self, graph: JobGraph) -> ExecResult<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Deploy { graph, reply })?;
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
}

struct Job {
    graph: JobGraph,
    created: SystemTime,
    failure: Option<String>,
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
                    if self.injected - self.committed < self.config.max_epochs_in_flight {
                        self.inject(None);
                        self.try_commit();
                    }
                }
            }
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Deploy { graph, reply } => {
                let view_id = graph.view_id;
                match self.deploy(graph) {
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
        }
    }

    /// Injects the next barrier at every source of every running job that takes part.
    fn inject(&mut self, mutation: Option<Arc<Mutation>>) {
        self.injected += 1;
        let barrier = Barrier { epoch: self.injected, mutation };
        let mut failed = Vec::new();
        for (id, job) in &self.jobs {
            if !job.running() || job.first_epoch > barrier.epoch {
                continue;
            }
            for source in &job.sources {
                let tm = job.tasks.get(source).map(|t| t.tm).unwrap_or(0);
                let result = self
                    .task_managers
                    .iter()
                    .find(|m| m.id() == tm)
                    .ok_or_else(|| ExecError::Internal(format!("no taskmanager {tm}")))
                    .and_then(|m| m.inject_barrier(*source, barrier.clone()));
                if let Err(e) = result {
                    failed.push((*id, e.to_string()));
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

    fn deploy(&mut self, graph: JobGraph) -> ExecResult<Epoch> {
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
        let plan = self.execution_graph(&graph)?;
        if let Some((view_schema, parallelism)) = materialized {
            self.view_states.register(view_id, view_schema, parallelism);
        }

        let mut job = Job {
            graph: graph.clone(),
            created: SystemTime::now(),
            failure: None,
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
        error!(view = %job.graph.view_name, reason = %reason, "job failed");
        job.failure = Some(reason.clone());
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
        for (id, job) in &self.jobs {
            let state = match &job.failure {
                Some(reason) => format!("failed: {reason}"),
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
