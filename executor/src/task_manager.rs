//! TaskManagers run tasks in slots. The JobManager reaches every TaskManager through the
//! [`TaskManager`] trait, whether it runs in this process or in another one (a cluster's
//! worker, reached over gRPC by `weir-cluster`); the [`TaskDescriptor`] it deploys is plain
//! serializable data.
//!
//! A [`LocalTaskManager`] runs the tasks it is given in this process. In the frontend
//! process it has the stored tables and the view store, so it runs table sources, view
//! sources and materialize tasks; in a `weir taskmanager` process it has neither and runs
//! everything else.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use weir_plan::job_graph::{schema_of, FieldSpec, OperatorSpec, Partitioning, Vertex};
use weir_storage::keyed_state::{InMemoryStateBackend, KeyedStateBackend, StateNamespace};
use weir_storage::state_table::{StateTable, StateTableOptions};
use weir_storage::{CheckpointStore, Store, ViewStateStore};

use crate::connectors::FileAccess;
use crate::data_plane::{ChannelId, DataPlane};
use crate::error::{ExecError, ExecResult};
use crate::exchange::OutputGate;
use crate::expr::ExprCompiler;
use crate::lease::Lease;
use crate::message::Barrier;
use crate::operators::filter::Filter;
use crate::operators::hash_aggregate::HashAggregate;
use crate::operators::hash_join::HashJoin;
use crate::operators::lookup_join::LookupJoin;
use crate::operators::materialize::Materialize;
use crate::operators::projection::Projection;
use crate::operators::session_window::SessionWindow;
use crate::operators::sink::{Sink, SinkConfig};
use crate::operators::top_n::TopN;
use crate::operators::union::Union;
use crate::operators::window_assign::WindowAssign;
use crate::operators::window_close::WindowClose;
use crate::operators::Operator;
use crate::sources::SourceContext;
use crate::task::{Chain, Task, TaskId, TaskInput};
use crate::task_events::{JobManagerEndpoint, TaskEvent};

/// Everything a TaskManager needs to start one subtask.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskDescriptor {
    pub id: TaskId,
    pub slot: usize,
    pub vertex: Vertex,
    /// The columns of each input edge (of the source, or of each upstream vertex's output).
    pub input_schemas: Vec<Vec<FieldSpec>>,
    /// Input channels, each with the input edge it belongs to (all are aligned alike).
    pub inputs: Vec<InputChannel>,
    /// One entry per output edge: partitioning and one channel per consumer subtask.
    pub outputs: Vec<(Partitioning, Vec<ChannelId>)>,
    /// What to resume from: the task's piece of a committed checkpoint and, for a source,
    /// the offset recorded with it. `None` starts from scratch.
    #[serde(default)]
    pub restore: Option<TaskRestore>,
    /// Whether the task snapshots its state at checkpoint barriers.
    #[serde(default)]
    pub checkpointed: bool,
    /// Output channels whose consumer runs in another process, with the data address of
    /// that process; every other channel is local.
    #[serde(default)]
    pub remote_outputs: BTreeMap<ChannelId, String>,
    /// The deployment of the job this task is part of: unique across JobManager restarts,
    /// it keeps the checkpoint pieces of different attempts apart.
    #[serde(default)]
    pub deployment: u64,
    /// The job's watermark alignment, for the subtasks of its event-time sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark_alignment: Option<crate::sources::alignment::SourceAlignment>,
}

/// One input channel of a task and the vertex's input edge it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputChannel {
    pub channel: ChannelId,
    pub edge: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskRestore {
    /// The epoch of the checkpoint.
    pub epoch: u64,
    /// The task's state in it: a full snapshot and the deltas after it, in order (none for
    /// a stateless task).
    pub pieces: Vec<crate::checkpoint_protocol::StatePiece>,
    pub source_offset: Option<serde_json::Value>,
    /// Set instead of `pieces` when the checkpoint was taken with another layout of the
    /// job (a rescale): the old tasks' snapshots this task takes its share of.
    #[serde(default)]
    pub rescale: Option<RescaleRestore>,
}

/// What a task restores after a rescale: from each old subtask whose state may hold some of
/// its key groups (or whose files it takes over), the operators' snapshots.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RescaleRestore {
    /// The task's vertex's parallelism now.
    pub parallelism: usize,
    pub sources: Vec<RescaleSource>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RescaleSource {
    pub old_subtask: usize,
    /// The old task's pieces: a full snapshot and the deltas after it, in order.
    pub pieces: Vec<crate::checkpoint_protocol::StatePiece>,
    /// Index of an operator in the old task's chain -> its index in this task's chain.
    /// Operators of the old chain not listed are not this task's.
    pub operators: BTreeMap<u32, u32>,
    /// The old subtask had exactly this task's key groups and partition (same vertex
    /// layout): its state is restored whole, as without a rescale.
    pub whole: bool,
}

/// Where a TaskManager keeps operator state and sends checkpoints.
#[derive(Clone)]
pub struct StateServices {
    /// Keyed operator state (memory or RocksDB), one per TaskManager.
    pub backend: Arc<dyn KeyedStateBackend>,
    /// Groups a keyed operator keeps in memory before it evicts clean ones to the backend;
    /// `usize::MAX` keeps them all in memory (and out of the backend).
    pub cache_groups: usize,
    /// The checkpoint store; `None` when checkpoints are off.
    pub checkpoints: Option<CheckpointStore>,
}

impl Default for StateServices {
    fn default() -> Self {
        Self {
            backend: Arc::new(InMemoryStateBackend::default()),
            cache_groups: usize::MAX,
            checkpoints: None,
        }
    }
}

/// What a TaskManager can run, for placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskManagerRole {
    /// In the frontend process: has the stored tables and the view store. In standalone mode
    /// every TaskManager is one and runs everything.
    Frontend,
    /// A `weir taskmanager` process: runs everything but table sources, view sources and
    /// materialize tasks, in as many slots as it offers.
    Worker,
}

pub trait TaskManager: Send + Sync {
    fn id(&self) -> usize;
    fn slots(&self) -> usize;
    fn role(&self) -> TaskManagerRole {
        TaskManagerRole::Frontend
    }
    /// Where other processes send the data of this TaskManager's input channels; `None`
    /// when every channel is in-process (standalone).
    fn data_address(&self) -> Option<String> {
        None
    }
    /// When this TaskManager last showed it is alive (`None` for one in this process).
    fn last_heartbeat(&self) -> Option<std::time::SystemTime> {
        None
    }
    /// Starts a task; fails if its operators cannot be built.
    fn deploy(&self, task: TaskDescriptor) -> ExecResult<()>;
    /// Hands a barrier to a source task.
    fn inject_barrier(&self, task: TaskId, barrier: Barrier) -> ExecResult<()>;
    /// Stops every task of a job.
    fn cancel_job(&self, job: u64);
    /// The job was dropped (its tasks were cancelled): nothing of it may reach the checkpoint
    /// store any more. Returns what resolves once this TaskManager's uploads of it have
    /// ended and later ones are refused, so the job's checkpoints can be deleted for good;
    /// `None` when there is nothing to wait for here (a TaskManager in the JobManager's
    /// process shares its checkpoint store, which fences its own writes).
    fn fence_dropped_job(&self, _job: u64) -> Option<tokio::sync::oneshot::Receiver<()>> {
        None
    }
    /// Forgets channels of a stopped job (or of one whose deployment failed).
    fn release_channels(&self, channels: &[ChannelId]);
}

struct RunningTask {
    handles: Vec<tokio::task::AbortHandle>,
    barriers: Option<mpsc::UnboundedSender<Barrier>>,
}

/// The source offset a restored task resumes from.
fn restore_offset(desc: &TaskDescriptor) -> Option<&serde_json::Value> {
    desc.restore.as_ref().and_then(|r| r.source_offset.as_ref())
}

/// A TaskManager inside this process: its channels are local ones.
pub struct LocalTaskManager {
    id: usize,
    slots: usize,
    /// The stored tables and the view store: only in the frontend process.
    store: Option<Arc<Store>>,
    view_states: Option<Arc<dyn ViewStateStore>>,
    data_address: Option<String>,
    data_plane: Arc<dyn DataPlane>,
    events: Arc<dyn JobManagerEndpoint>,
    tasks: Mutex<HashMap<TaskId, RunningTask>>,
    state: StateServices,
    /// The files `file` sources and sinks may use (none unless configured).
    files: FileAccess,
    /// The most splits a source may have, and the threads their reads run on.
    split_limit: crate::connectors::SplitLimit,
    readers: crate::sources::reader_pool::ReaderPool,
    /// The watermark alignment groups of the jobs whose sources run here: one for the
    /// process, shared by its in-process TaskManagers.
    alignment: Arc<crate::sources::alignment::AlignmentGroups>,
    /// Whether this process may still write for its tasks' jobs (see `lease`).
    lease: Arc<Lease>,
    /// Where tasks run: a runtime of their own (see [`LocalTaskManager::with_runtime`]), or
    /// the caller's.
    runtime: Option<tokio::runtime::Handle>,
}

impl LocalTaskManager {
    pub fn new(
        id: usize,
        slots: usize,
        store: Arc<Store>,
        view_states: Arc<dyn ViewStateStore>,
        data_plane: Arc<dyn DataPlane>,
        events: Arc<dyn JobManagerEndpoint>,
    ) -> Self {
        Self::with_stores(id, slots, Some(store), Some(view_states), data_plane, events)
    }

    /// The TaskManager of a `weir taskmanager` process: no stored tables, no view store.
    pub fn worker(
        id: usize,
        slots: usize,
        data_plane: Arc<dyn DataPlane>,
        events: Arc<dyn JobManagerEndpoint>,
    ) -> Self {
        Self::with_stores(id, slots, None, None, data_plane, events)
    }

    fn with_stores(
        id: usize,
        slots: usize,
        store: Option<Arc<Store>>,
        view_states: Option<Arc<dyn ViewStateStore>>,
        data_plane: Arc<dyn DataPlane>,
        events: Arc<dyn JobManagerEndpoint>,
    ) -> Self {
        Self {
            id,
            slots,
            store,
            view_states,
            data_address: None,
            data_plane,
            events,
            tasks: Mutex::new(HashMap::new()),
            state: StateServices::default(),
            files: FileAccess::default(),
            split_limit: Default::default(),
            readers: Default::default(),
            alignment: Arc::default(),
            lease: Lease::unbounded(),
            runtime: None,
        }
    }

    /// Runs tasks on `runtime` instead of the runtime that deploys them. An operator works
    /// through a batch without yielding, so tasks that always have input (a backfill) keep
    /// every worker thread of their runtime busy for seconds at a time; on a runtime of their
    /// own they cannot delay the server's sessions, whose timers (`statement_timeout`),
    /// cancel requests and queries then run on threads the operating system schedules
    /// beside them.
    pub fn with_runtime(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Sinks write and checkpoints upload only while `lease` holds: the lease a TaskManager
    /// process holds from the JobManager.
    pub fn with_lease(mut self, lease: Arc<Lease>) -> Self {
        self.lease = lease;
        self
    }

    /// Other processes reach this TaskManager's input channels at `address`.
    pub fn with_data_address(mut self, address: String) -> Self {
        self.data_address = Some(address);
        self
    }

    /// Stops every task (the JobManager that deployed them is gone).
    pub fn cancel_all(&self) {
        let jobs: std::collections::BTreeSet<u64> =
            self.tasks.lock().map(|t| t.keys().map(|id| id.job).collect()).unwrap_or_default();
        for job in jobs {
            self.cancel_job(job);
        }
    }

    /// Lets `file` sources and sinks use the files `files` allows.
    pub fn with_file_access(mut self, files: FileAccess) -> Self {
        self.files = files;
        self
    }

    /// Caps every source at `split_limit` splits and runs their reads on `readers`.
    pub fn with_source_readers(
        mut self,
        split_limit: crate::connectors::SplitLimit,
        readers: crate::sources::reader_pool::ReaderPool,
    ) -> Self {
        self.split_limit = split_limit;
        self.readers = readers;
        self
    }

    /// Aligns the sources of a job with those in `groups` (shared by the TaskManagers of a
    /// process, so a job's sources align across them).
    pub fn with_alignment_groups(mut self, groups: Arc<crate::sources::alignment::AlignmentGroups>) -> Self {
        self.alignment = groups;
        self
    }

    /// Keeps keyed state in `state.backend` and checkpoints to `state.checkpoints`.
    pub fn with_state(mut self, state: StateServices) -> Self {
        self.state = state;
        self
    }

    /// The keyed-state namespace of operator `index` of `desc`'s task: its own per subtask
    /// and per deployment of the job. Unless the task restores into it, whatever is there
    /// (from an earlier run) is dropped first.
    fn state_namespace(&self, desc: &TaskDescriptor, index: usize) -> ExecResult<StateNamespace> {
        let namespace =
            StateNamespace::new(desc.id.job, desc.deployment, desc.id.vertex, desc.id.subtask, index)?;
        if desc.restore.as_ref().is_none_or(|r| r.pieces.is_empty()) {
            self.state.backend.drop_namespace(namespace)?;
        }
        Ok(namespace)
    }

    fn build_chain(&self, desc: &TaskDescriptor) -> ExecResult<Chain> {
        let compiler = ExprCompiler::default();
        // Operators with several input edges receive batches of each edge's schema; the
        // planner makes them equal where an operator needs that (a union).
        let first = desc
            .input_schemas
            .first()
            .ok_or_else(|| ExecError::InvalidGraph(format!("{} has no input schema", desc.id)))?;
        let mut schema: SchemaRef = schema_of(first)?;
        let mut operators: Vec<Box<dyn Operator>> = Vec::new();
        let mut materialize = None;
        for (index, spec) in desc.vertex.chain.iter().enumerate() {
            if materialize.is_some() {
                return Err(ExecError::InvalidGraph("materialize must end its chain".into()));
            }
            match spec {
                OperatorSpec::Project { exprs, output } => {
                    let op = Projection::new(&compiler, exprs, output, &schema)?;
                    schema = op.schema().clone();
                    operators.push(Box::new(op));
                }
                OperatorSpec::Filter { predicate } => {
                    operators.push(Box::new(Filter::new(&compiler, predicate, &schema)?));
                }
                OperatorSpec::HashAggregate(spec) => {
                    let mut op = HashAggregate::new(spec, schema.clone())?;
                    // Groups go to the backend only when they may outgrow memory; otherwise
                    // checkpoints encode them straight from memory.
                    if self.state.cache_groups != usize::MAX {
                        let namespace = self.state_namespace(desc, index)?;
                        let backend = self.state.backend.clone();
                        let options = StateTableOptions::cached(self.state.cache_groups);
                        op = op.with_state(StateTable::new(backend, namespace, options));
                    }
                    operators.push(Box::new(op));
                    schema = schema_of(&spec.output)?;
                }
                OperatorSpec::HashJoin(spec) => {
                    if index != 0 || desc.input_schemas.len() != 2 {
                        return Err(ExecError::InvalidGraph(format!(
                            "{}: a join must be first in its chain, with two input edges",
                            desc.id
                        )));
                    }
                    let namespace = self.state_namespace(desc, index)?;
                    let op = HashJoin::new(
                        spec,
                        &compiler,
                        self.state.backend.clone(),
                        namespace,
                        self.state.cache_groups,
                    )?;
                    schema = op.schema().clone();
                    operators.push(Box::new(op));
                }
                OperatorSpec::TopN(spec) => {
                    let namespace = self.state_namespace(desc, index)?;
                    let op = TopN::new(spec, self.state.backend.clone(), namespace, self.state.cache_groups)?;
                    schema = op.schema().clone();
                    operators.push(Box::new(op));
                }
                OperatorSpec::LookupJoin(spec) => {
                    let table = self
                        .store
                        .as_ref()
                        .ok_or_else(|| {
                            ExecError::InvalidGraph(format!(
                                "{}: a lookup join reads table {} in the frontend process only",
                                desc.id, spec.table_name
                            ))
                        })?
                        .tables()
                        .into_iter()
                        .find(|t| t.def().id == spec.table_id)
                        .ok_or_else(|| {
                            ExecError::InvalidGraph(format!("table {} no longer exists", spec.table_name))
                        })?;
                    let op = LookupJoin::new(spec, &compiler, &schema, table)?;
                    schema = op.schema().clone();
                    operators.push(Box::new(op));
                }
                OperatorSpec::Union { output } => {
                    operators.push(Box::new(Union::new(output)?));
                    schema = schema_of(output)?;
                }
                OperatorSpec::WindowAssign { kind, time_column } => {
                    let op = WindowAssign::new(*kind, *time_column, &schema)?;
                    schema = op.schema().clone();
                    operators.push(Box::new(op));
                }
                OperatorSpec::WindowClose { column } => {
                    operators.push(Box::new(WindowClose::new(*column, &schema)?));
                }
                OperatorSpec::SessionWindow { gap, time_column, keys } => {
                    let op = SessionWindow::new(*gap, *time_column, keys.clone(), &schema)?;
                    schema = op.schema().clone();
                    operators.push(Box::new(op));
                }
                OperatorSpec::Sink { sink_id, connector, options } => {
                    let config = SinkConfig::parse(connector, options)?;
                    let mut sink =
                        Sink::new(&config, desc.id.subtask, &self.files)?.with_lease(self.lease.clone());
                    if desc.restore.is_none() {
                        sink = sink.start_without_checkpoint(*sink_id)?;
                    }
                    operators.push(Box::new(sink));
                }
                OperatorSpec::Materialize { view_id } => {
                    let view_states = self.view_states.clone().ok_or_else(|| {
                        ExecError::InvalidGraph(format!(
                            "{}: materialize tasks run in the frontend process, not on a taskmanager",
                            desc.id
                        ))
                    })?;
                    let mut op = Materialize::new(*view_id, desc.id.subtask, schema.clone(), view_states)?
                        .in_deployment(desc.deployment);
                    // A vertex of its own behind a hash exchange (a rescaled view): its rows
                    // are partitioned by those columns.
                    if let ([], [edge]) = (&desc.vertex.chain[..index], &desc.vertex.inputs[..]) {
                        if let Partitioning::Hash(keys) = &edge.partitioning {
                            op = op.keyed_by(keys.clone());
                        }
                    }
                    materialize = Some(op);
                }
            }
        }
        Ok(Chain { operators, materialize })
    }

    fn lock(&self) -> ExecResult<std::sync::MutexGuard<'_, HashMap<TaskId, RunningTask>>> {
        self.tasks.lock().map_err(|_| ExecError::Internal("task table lock poisoned".into()))
    }
}

impl TaskManager for LocalTaskManager {
    fn id(&self) -> usize {
        self.id
    }

    fn slots(&self) -> usize {
        self.slots
    }

    fn data_address(&self) -> Option<String> {
        self.data_address.clone()
    }

    fn deploy(&self, desc: TaskDescriptor) -> ExecResult<()> {
        let chain = self.build_chain(&desc)?;
        self.data_plane.prepare(&desc);
        let mut inputs = desc
            .inputs
            .iter()
            .map(|input| Ok(TaskInput::new(input.edge, self.data_plane.open_receiver(input.channel)?)))
            .collect::<ExecResult<Vec<_>>>()?;
        let outputs = desc
            .outputs
            .iter()
            .map(|(partitioning, channels)| {
                let senders = channels
                    .iter()
                    .map(|c| self.data_plane.open_sender(*c))
                    .collect::<ExecResult<Vec<_>>>()?;
                Ok(OutputGate::new(partitioning.clone(), senders))
            })
            .collect::<ExecResult<Vec<_>>>()?;

        let source = crate::sources::start(
            desc.vertex.source.as_ref(),
            SourceContext {
                task: desc.id,
                deployment: desc.deployment,
                store: self.store.as_deref(),
                events: self.events.clone(),
                offset: restore_offset(&desc),
                files: &self.files,
                split_limit: self.split_limit,
                readers: &self.readers,
                alignment: &self.alignment,
                watermark_alignment: desc.watermark_alignment,
            },
        )?;
        let mut handles = Vec::new();
        let mut barriers = None;
        if let Some(source) = source {
            inputs.push(source.input);
            barriers = Some(source.barriers);
            handles.extend(source.abort);
        }
        let task = Task {
            id: desc.id,
            chain,
            inputs,
            outputs,
            events: self.events.clone(),
            data_plane: self.data_plane.clone(),
            poll_start: 0,
            checkpoints: self.state.checkpoints.clone().filter(|_| desc.checkpointed),
            restore_from: desc.restore.as_ref().map(|r| r.pieces.clone()).unwrap_or_default(),
            restored_epoch: desc.restore.as_ref().map(|r| r.epoch),
            rescale_from: desc.restore.as_ref().and_then(|r| r.rescale.clone()),
            pieces: Default::default(),
            pieces_epoch: None,
            fail_next_batch: false,
            lease: self.lease.clone(),
            deployment: desc.deployment,
        };
        let events = self.events.clone();
        let (id, deployment) = (desc.id, desc.deployment);
        let inner = match &self.runtime {
            Some(runtime) => runtime.spawn(task.run()),
            None => tokio::spawn(task.run()),
        };
        handles.push(inner.abort_handle());
        // A panic inside the task is caught here and reported like any failure.
        tokio::spawn(async move {
            if let Err(e) = inner.await {
                if e.is_panic() {
                    let error = format!("task panicked: {e}");
                    let _ = events.report(TaskEvent::Failed { task: id, deployment, error, sqlstate: None });
                }
            }
        });
        self.lock()?.insert(desc.id, RunningTask { handles, barriers });
        Ok(())
    }

    fn inject_barrier(&self, task: TaskId, barrier: Barrier) -> ExecResult<()> {
        let tasks = self.lock()?;
        let sender = tasks
            .get(&task)
            .and_then(|t| t.barriers.as_ref())
            .ok_or_else(|| ExecError::Internal(format!("{task} is not a running source")))?;
        sender.send(barrier).map_err(|_| ExecError::ChannelClosed(format!("source {task}")))
    }

    fn cancel_job(&self, job: u64) {
        if let Ok(mut tasks) = self.tasks.lock() {
            let ids: Vec<TaskId> = tasks.keys().filter(|t| t.job == job).copied().collect();
            for id in ids {
                if let Some(task) = tasks.remove(&id) {
                    for handle in task.handles {
                        handle.abort();
                    }
                }
            }
        }
        // Its state is in its checkpoints; a restarted job restores or rebuilds it.
        if let Err(e) = self.state.backend.drop_job(job) {
            tracing::warn!(job, error = %e, "could not drop the state of a stopped job");
        }
    }

    fn release_channels(&self, channels: &[ChannelId]) {
        self.data_plane.release(channels);
    }
}
