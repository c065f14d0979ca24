//! A task: one subtask of a vertex, running its operator chain.
//!
//! The run loop owns everything operators should not have to think about: it reads every
//! input channel, aligns barriers (an input that delivered `Barrier(e)` is not read again
//! until all inputs have, so the epoch's rows are exactly those before the barrier on every
//! input), merges watermarks (the minimum over inputs), pushes batches through the chain,
//! routes the results through the output gates, applies barrier mutations and reports each
//! finished epoch to the JobManager.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::select_all;
use tracing::{debug, info, info_span, Instrument};
use weir_storage::{CheckpointStore, StorageError};

use crate::checkpoint_protocol::StatePiece;
use crate::data_plane::{ChannelReceiver, DataPlane};
use crate::error::{ExecError, ExecResult};
use crate::exchange::OutputGate;
use crate::lease::Lease;
use crate::message::{Barrier, Epoch, Message, Mutation, StreamBatch};
use crate::operators::materialize::Materialize;
use crate::operators::{Operator, OperatorSnapshot, RescaleScope};
use crate::task_events::{JobManagerEndpoint, OperatorStats, TaskEvent};
use crate::task_manager::RescaleRestore;
use crate::task_snapshot::{read_task_snapshot, write_task_snapshot};

pub use weir_plan::TaskId;

/// The operators of a task, in order, ending in an optional materialize.
pub struct Chain {
    pub operators: Vec<Box<dyn Operator>>,
    pub materialize: Option<Materialize>,
}

impl Chain {
    fn ops(&mut self) -> impl Iterator<Item = &mut dyn Operator> {
        self.operators
            .iter_mut()
            .map(|o| o.as_mut() as &mut dyn Operator)
            .chain(self.materialize.iter_mut().map(|m| m as &mut dyn Operator))
    }

    fn names(&self) -> String {
        let mut names: Vec<&str> = self.operators.iter().map(|o| o.name()).collect();
        if self.materialize.is_some() {
            names.push("Materialize");
        }
        names.join(" -> ")
    }

    fn stats(&self) -> Vec<OperatorStats> {
        let ops = self.operators.iter().map(|o| o.as_ref() as &dyn Operator);
        ops.chain(self.materialize.iter().map(|m| m as &dyn Operator))
            .map(|o| OperatorStats {
                name: o.name().to_string(),
                late_rows: o.late_rows(),
                state_rows: o.state_rows(),
                state_rows_in_memory: o.state_rows_in_memory(),
            })
            .collect()
    }

    /// Pushes one batch from input edge `edge` through every operator (the first operator
    /// sees the edge; the rest have one input each).
    fn process(&mut self, edge: usize, batch: StreamBatch, epoch: Epoch) -> ExecResult<Vec<StreamBatch>> {
        let mut current = vec![batch];
        for (i, op) in self.ops().enumerate() {
            let mut next = Vec::with_capacity(current.len());
            for batch in current {
                op.process_batch(if i == 0 { edge } else { 0 }, batch, &mut next)
                    .map_err(|e| e.in_operator(op.name(), epoch))?;
            }
            if next.is_empty() {
                return Ok(next);
            }
            current = next;
        }
        Ok(current)
    }

    /// Ends the epoch in every operator, in order: what one emits at the barrier flows
    /// through the rest before they see the barrier themselves.
    fn barrier(&mut self, barrier: &Barrier) -> ExecResult<Vec<StreamBatch>> {
        let mut carried = Vec::new();
        for op in self.ops() {
            let mut next = Vec::new();
            for batch in carried {
                op.process_batch(0, batch, &mut next).map_err(|e| e.in_operator(op.name(), barrier.epoch))?;
            }
            op.on_barrier(barrier, &mut next).map_err(|e| e.in_operator(op.name(), barrier.epoch))?;
            carried = next;
        }
        Ok(carried)
    }

    /// Every stateful operator's snapshot, by its index in the chain.
    fn snapshot(&mut self, incremental: bool) -> ExecResult<Vec<(u32, OperatorSnapshot)>> {
        let mut sections = Vec::new();
        for (i, op) in self.ops().enumerate() {
            if let Some(snapshot) = op.snapshot(incremental).map_err(|e| e.in_operator(op.name(), 0))? {
                sections.push((i as u32, snapshot));
            }
        }
        Ok(sections)
    }

    /// Hands the sections of a task snapshot to the operators they belong to: all of them
    /// for the last piece of a checkpoint, only those of operators that write deltas for the
    /// pieces before it (the others' state is all in the last piece).
    fn restore(&mut self, input: &mut dyn std::io::Read, last: bool) -> ExecResult<()> {
        let mut ops: Vec<&mut dyn Operator> = self.ops().collect();
        read_task_snapshot(input, |index, meta, state| {
            let op = ops.get_mut(index as usize).ok_or_else(|| {
                ExecError::Internal(format!("snapshot of operator {index}, not in the chain"))
            })?;
            if !last && !op.writes_deltas() {
                return Ok(());
            }
            op.restore(meta, state).map_err(|e| e.in_operator(op.name(), 0))
        })
    }

    /// [`Self::restore`] after a rescale: sections go to the operators `operators` maps them
    /// to, which keep their share (`scope`), or take it whole.
    fn restore_share(
        &mut self,
        input: &mut dyn std::io::Read,
        operators: &BTreeMap<u32, u32>,
        scope: &RescaleScope,
        whole: bool,
    ) -> ExecResult<()> {
        let mut ops: Vec<&mut dyn Operator> = self.ops().collect();
        read_task_snapshot(input, |index, meta, state| {
            let Some(&target) = operators.get(&index) else { return Ok(()) };
            let op = ops.get_mut(target as usize).ok_or_else(|| {
                ExecError::Internal(format!(
                    "snapshot of operator {index} for operator {target}, not in the chain"
                ))
            })?;
            if !scope.last_piece && !op.writes_deltas() {
                return Ok(());
            }
            let result = match whole {
                true => op.restore(meta, state),
                false => op.restore_rescaled(meta, state, scope),
            };
            result.map_err(|e| e.in_operator(op.name(), 0))
        })
    }

    fn watermark(&mut self, watermark: i64, epoch: Epoch) -> ExecResult<(Option<i64>, Vec<StreamBatch>)> {
        let mut carried = Vec::new();
        let mut current = Some(watermark);
        for op in self.ops() {
            let mut next = Vec::new();
            for batch in carried {
                op.process_batch(0, batch, &mut next).map_err(|e| e.in_operator(op.name(), epoch))?;
            }
            if let Some(w) = current {
                current = op.on_watermark(w, &mut next).map_err(|e| e.in_operator(op.name(), epoch))?;
            }
            carried = next;
        }
        Ok((current, carried))
    }
}

pub struct Task {
    pub id: TaskId,
    pub chain: Chain,
    /// Every input channel, aligned alike; several may belong to one input edge (one per
    /// upstream subtask).
    pub inputs: Vec<TaskInput>,
    pub outputs: Vec<OutputGate>,
    pub events: Arc<dyn JobManagerEndpoint>,
    pub data_plane: Arc<dyn DataPlane>,
    /// Where input polling starts next (see `next_message`).
    pub poll_start: usize,
    /// Where checkpoint barriers send the task's state; `None` when checkpoints are off.
    pub checkpoints: Option<CheckpointStore>,
    /// The pieces of a checkpoint to restore the chain from before the first message (a
    /// full snapshot and the deltas after it, in order), and that checkpoint's epoch.
    pub restore_from: Vec<StatePiece>,
    pub restored_epoch: Option<Epoch>,
    /// After a rescale, what to restore instead of `restore_from`.
    pub rescale_from: Option<RescaleRestore>,
    /// The pieces of the task's latest snapshot, and its epoch: the next snapshot may be a
    /// delta on top of them if that epoch is the job's latest committed checkpoint.
    pub pieces: Arc<std::sync::Mutex<Vec<StatePiece>>>,
    pub pieces_epoch: Option<Epoch>,
    /// Set by an injected failure: the next batch fails the task.
    pub fail_next_batch: bool,
    /// Checkpoint pieces are uploaded only while this holds (see `lease`).
    pub lease: Arc<Lease>,
    /// Which deployment of the job this task belongs to (see [`piece_path`]).
    pub deployment: u64,
}

/// One input channel of a task and the input edge of the vertex it belongs to, which is
/// what operators with several inputs (a union, a join) tell their sides apart by.
pub struct TaskInput {
    pub edge: usize,
    pub channel: ChannelReceiver,
}

impl TaskInput {
    pub fn new(edge: usize, channel: ChannelReceiver) -> Self {
        Self { edge, channel }
    }
}

/// Deltas after a full snapshot before the next one is full again (a restore reads them all).
const MAX_DELTAS: usize = 8;

/// Where task `id` of deployment `deployment` stores its state for checkpoint `epoch`.
/// Deployments are numbered uniquely across JobManager restarts, so a piece still being
/// uploaded by an earlier attempt of the job (on a TaskManager that has not noticed it was
/// replaced) can never overwrite a piece of the current one, even for the same epoch.
pub fn piece_path(id: TaskId, epoch: Epoch, deployment: u64) -> String {
    format!(
        "{}/{}/v{}-s{}-d{deployment:x}.state",
        job_prefix(id.job),
        epoch_dir(epoch),
        id.vertex,
        id.subtask
    )
}

fn poisoned() -> ExecError {
    ExecError::Internal("task checkpoint pieces lock poisoned".into())
}

/// The folder of a job's checkpoints in the store.
pub fn job_prefix(job: u64) -> String {
    format!("job-{job}")
}

/// The folder of one checkpoint inside its job's folder (zero-padded so listings sort).
pub fn epoch_dir(epoch: Epoch) -> String {
    format!("epoch-{epoch:012}")
}

struct Counters {
    rows_in: u64,
    rows_out: u64,
}

impl Task {
    /// Runs until every input has ended or an error occurs. Failures are reported to the
    /// JobManager as well as returned.
    pub async fn run(self) -> ExecResult<()> {
        let (id, deployment) = (self.id, self.deployment);
        let events = self.events.clone();
        let span = info_span!("task", job = id.job, vertex = id.vertex, subtask = id.subtask);
        let result = self.run_loop().instrument(span).await;
        if let Err(e) = &result {
            tracing::error!(task = %id, error = %e, "task failed");
            let _ = events.report(TaskEvent::failed(id, deployment, e));
        }
        result
    }

    async fn run_loop(mut self) -> ExecResult<()> {
        debug!(chain = %self.chain.names(), inputs = self.inputs.len(), "task started");
        let pieces = std::mem::take(&mut self.restore_from);
        for (i, piece) in pieces.iter().enumerate() {
            self.restore(piece.path.clone(), i + 1 == pieces.len()).await?;
        }
        if !pieces.is_empty() {
            self.pieces_epoch = self.restored_epoch;
            *self.pieces.lock().map_err(|_| poisoned())? = pieces;
        }
        if let Some(rescale) = self.rescale_from.take() {
            self.restore_rescaled(rescale).await?;
        }
        let n = self.inputs.len();
        let mut blocked = vec![false; n];
        let mut ended = vec![false; n];
        let mut watermarks = vec![i64::MIN; n];
        let mut idle = vec![false; n];
        let mut current_watermark = i64::MIN;
        let mut aligned = 0usize;
        let mut aligning: Option<Epoch> = None;
        let mut epoch: Epoch = 0;
        let mut counters = Counters { rows_in: 0, rows_out: 0 };
        loop {
            let Some((input, message)) = self.next_message(&blocked, &ended).await else {
                debug!("all inputs ended");
                return Ok(());
            };
            let Some(message) = message else {
                ended[input] = true;
                continue;
            };
            match message {
                Message::Batch(batch) => {
                    if self.fail_next_batch {
                        return Err(ExecError::Internal("failure injected by weir_inject_failure".into()));
                    }
                    idle[input] = false;
                    counters.rows_in += batch.num_rows() as u64;
                    let edge = self.inputs[input].edge;
                    let out = self.chain.process(edge, batch, epoch + 1)?;
                    self.emit(out, &mut counters).await?;
                }
                Message::Watermark(w) => {
                    idle[input] = false;
                    watermarks[input] = watermarks[input].max(w);
                    self.advance_watermark(&watermarks, &idle, &mut current_watermark, epoch, &mut counters)
                        .await?;
                }
                Message::Idle => {
                    idle[input] = true;
                    if idle.iter().all(|i| *i) {
                        // Every input is idle: so is this task, for the operators downstream.
                        self.broadcast(Message::Idle).await?;
                    } else {
                        self.advance_watermark(
                            &watermarks,
                            &idle,
                            &mut current_watermark,
                            epoch,
                            &mut counters,
                        )
                        .await?;
                    }
                }
                Message::Barrier(barrier) => {
                    // Every input carries the same epochs; anything else is a wiring bug
                    // that would silently mix epochs, so it fails the task.
                    match aligning {
                        Some(e) if e != barrier.epoch => {
                            return Err(ExecError::Internal(format!(
                                "barrier {} on input {input} while aligning barrier {e}",
                                barrier.epoch
                            )))
                        }
                        _ => aligning = Some(barrier.epoch),
                    }
                    blocked[input] = true;
                    aligned += 1;
                    if aligned < n - ended.iter().filter(|e| **e).count() {
                        continue;
                    }
                    blocked.iter_mut().for_each(|b| *b = false);
                    aligned = 0;
                    aligning = None;
                    epoch = barrier.epoch;
                    let span = tracing::debug_span!("barrier", epoch);
                    async {
                        let out = self.chain.barrier(&barrier)?;
                        self.emit(out, &mut counters).await?;
                        // The offset is this task's source's, not one for the tasks downstream.
                        let forwarded = Barrier { source_offset: None, ..barrier.clone() };
                        self.broadcast(Message::Barrier(forwarded)).await?;
                        if let Some(mutation) = &barrier.mutation {
                            self.apply(mutation).await?;
                        }
                        if barrier.checkpoint {
                            self.checkpoint(&barrier)?;
                        }
                        ExecResult::Ok(())
                    }
                    .instrument(span)
                    .await?;
                    self.events.report(TaskEvent::EpochDone {
                        task: self.id,
                        deployment: self.deployment,
                        epoch,
                        rows_in: counters.rows_in,
                        rows_out: counters.rows_out,
                        watermark: current_watermark,
                        operators: self.chain.stats(),
                    })?;
                }
            }
        }
    }

    /// Restores the chain from a checkpoint piece, streamed from the store.
    async fn restore(&mut self, path: String, last: bool) -> ExecResult<()> {
        let store = self
            .checkpoints
            .clone()
            .ok_or_else(|| ExecError::Internal("a restore without a checkpoint store".into()))?;
        let started = std::time::Instant::now();
        let mut chain = std::mem::replace(&mut self.chain, Chain { operators: vec![], materialize: None });
        let (chain, result) = store
            .get_streamed(&path, move |input| {
                let result = chain.restore(input, last);
                Ok((chain, result))
            })
            .await?;
        self.chain = chain;
        result?;
        info!(piece = %path, elapsed_ms = started.elapsed().as_millis() as u64, "task state restored");
        Ok(())
    }

    /// Restores the chain's share of the old subtasks' state after a rescale. The first
    /// checkpoint after it is a full one (no earlier pieces are this task's).
    async fn restore_rescaled(&mut self, rescale: RescaleRestore) -> ExecResult<()> {
        let store = self
            .checkpoints
            .clone()
            .ok_or_else(|| ExecError::Internal("a restore without a checkpoint store".into()))?;
        let started = std::time::Instant::now();
        let subtask = self.id.subtask;
        for source in rescale.sources {
            let operators = Arc::new(source.operators);
            for (i, piece) in source.pieces.iter().enumerate() {
                let scope = RescaleScope {
                    last_piece: i + 1 == source.pieces.len(),
                    ..RescaleScope::new(source.old_subtask, subtask, rescale.parallelism)
                };
                let whole = source.whole;
                let operators = Arc::clone(&operators);
                let mut chain =
                    std::mem::replace(&mut self.chain, Chain { operators: vec![], materialize: None });
                let (chain, result) = store
                    .get_streamed(&piece.path, move |input| {
                        let result = chain.restore_share(input, &operators, &scope, whole);
                        Ok((chain, result))
                    })
                    .await?;
                self.chain = chain;
                result?;
            }
        }
        info!(elapsed_ms = started.elapsed().as_millis() as u64, "task state restored after a rescale");
        Ok(())
    }

    /// Snapshots the chain at a checkpoint barrier: the cheap part here, on the data path;
    /// writing it to the store runs on its own and acknowledges to the JobManager when done.
    fn checkpoint(&mut self, barrier: &Barrier) -> ExecResult<()> {
        // A job that takes no checkpoints can still see checkpoint barriers of the views it
        // reads.
        let Some(store) = self.checkpoints.clone() else {
            return Ok(());
        };
        // A delta builds on the previous snapshot, so that one must be committed: the
        // JobManager names the job's latest committed checkpoint on the barrier (and starts
        // the next checkpoint only once the previous one is committed or abandoned).
        let earlier = self.pieces.lock().map_err(|_| poisoned())?.clone();
        let incremental = !earlier.is_empty()
            && self.pieces_epoch.is_some()
            && barrier.base_checkpoint == self.pieces_epoch
            && earlier.len() <= MAX_DELTAS;
        let sections = self.chain.snapshot(incremental)?;
        let source_offset = barrier.source_offset.as_deref().cloned();
        let (task, epoch, events) = (self.id, barrier.epoch, self.events.clone());
        let deployment = self.deployment;
        self.pieces_epoch = Some(epoch);
        if sections.is_empty() {
            self.pieces.lock().map_err(|_| poisoned())?.clear();
            let _ = events.report(TaskEvent::Checkpointed {
                task,
                deployment,
                epoch,
                pieces: vec![],
                source_offset,
            });
            return Ok(());
        }
        let mut chain = match sections.iter().any(|(_, s)| s.delta) {
            true => earlier,
            false => Vec::new(),
        };
        let path = piece_path(task, epoch, self.deployment);
        let pieces = Arc::clone(&self.pieces);
        let lease = Arc::clone(&self.lease);
        // Until the upload reports its size the piece counts 0 bytes; the next checkpoint
        // starts only after this one is acknowledged.
        chain.push(StatePiece { task, path: path.clone(), bytes: 0 });
        *pieces.lock().map_err(|_| poisoned())? = chain.clone();
        tokio::spawn(
            async move {
                let write = move |out: &mut dyn std::io::Write| {
                    write_task_snapshot(sections, out).map_err(|e| StorageError::Invalid(e.to_string()))
                };
                let upload = async {
                    lease
                        .check(&format!("checkpoint piece {path}"))
                        .map_err(|e| StorageError::Invalid(e.to_string()))?;
                    store.put_streamed(&path, write).await
                };
                let event = match upload.await {
                    Ok(bytes) => {
                        debug!(bytes, deltas = chain.len() - 1, "task state uploaded");
                        if let Some(last) = chain.last_mut() {
                            last.bytes = bytes;
                        }
                        if let Ok(mut shared) = pieces.lock() {
                            *shared = chain.clone();
                        }
                        TaskEvent::Checkpointed { task, deployment, epoch, pieces: chain, source_offset }
                    }
                    Err(e) => TaskEvent::CheckpointFailed { task, deployment, epoch, error: e.to_string() },
                };
                let _ = events.report(event);
            }
            .instrument(tracing::debug_span!("checkpoint_upload", epoch)),
        );
        Ok(())
    }

    /// The next message from any input that is neither blocked on a barrier nor ended;
    /// `None` once every input has ended. `Some((i, None))` means input `i` just ended.
    async fn next_message(&mut self, blocked: &[bool], ended: &[bool]) -> Option<(usize, Option<Message>)> {
        // Polling starts at a rotating input so a busy input cannot starve the others.
        let n = self.inputs.len().max(1);
        self.poll_start = (self.poll_start + 1) % n;
        let start = self.poll_start;
        let mut ready: Vec<_> = self
            .inputs
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| !blocked[*i] && !ended[*i])
            .map(|(i, input)| Box::pin(async move { (i, input.channel.recv().await) }))
            .collect();
        let shift = start.min(ready.len().saturating_sub(1));
        ready.rotate_left(shift);
        match ready.len() {
            0 => None,
            1 => Some(ready.remove(0).await),
            _ => Some(select_all(ready).await.0),
        }
    }

    /// The watermark is the minimum over the inputs that are not idle; when it advances, the
    /// chain sees it and the result goes downstream.
    async fn advance_watermark(
        &mut self,
        watermarks: &[i64],
        idle: &[bool],
        current: &mut i64,
        epoch: Epoch,
        counters: &mut Counters,
    ) -> ExecResult<()> {
        let min = watermarks.iter().zip(idle).filter(|(_, idle)| !**idle).map(|(w, _)| *w).min();
        let Some(min) = min else { return Ok(()) };
        if min <= *current {
            return Ok(());
        }
        *current = min;
        let (forward, out) = self.chain.watermark(min, epoch + 1)?;
        self.emit(out, counters).await?;
        if let Some(w) = forward {
            self.broadcast(Message::Watermark(w)).await?;
        }
        Ok(())
    }

    async fn emit(&mut self, batches: Vec<StreamBatch>, counters: &mut Counters) -> ExecResult<()> {
        for batch in batches {
            if batch.is_empty() {
                continue;
            }
            counters.rows_out += batch.num_rows() as u64;
            let mut closed = Vec::new();
            for (i, gate) in self.outputs.iter().enumerate() {
                if !gate.send_batch(batch.clone()).await? {
                    closed.push(i);
                }
            }
            self.remove_gates(closed);
        }
        Ok(())
    }

    async fn broadcast(&mut self, message: Message) -> ExecResult<()> {
        let mut closed = Vec::new();
        for (i, gate) in self.outputs.iter().enumerate() {
            if !gate.send_all(message.clone()).await? {
                closed.push(i);
            }
        }
        self.remove_gates(closed);
        Ok(())
    }

    fn remove_gates(&mut self, closed: Vec<usize>) {
        for i in closed.into_iter().rev() {
            debug!("a view reading this one went away; detaching it");
            self.outputs.remove(i);
        }
    }

    /// Applies a barrier's mutation after the barrier has been forwarded.
    async fn apply(&mut self, mutation: &Mutation) -> ExecResult<()> {
        match mutation {
            Mutation::InjectFailure { job } => {
                self.fail_next_batch |= *job == self.id.job;
                Ok(())
            }
            Mutation::Subscribe(subscriptions) => {
                let Some(materialize) = &self.chain.materialize else { return Ok(()) };
                for subscription in subscriptions.iter().filter(|s| s.view_id == materialize.view_id()) {
                    let channel = subscription.channels.get(self.id.subtask).ok_or_else(|| {
                        ExecError::InvalidGraph(format!(
                            "no subscription channel for subtask {}",
                            self.id.subtask
                        ))
                    })?;
                    let sender = match self.data_plane.open_sender(*channel) {
                        Ok(sender) => sender,
                        Err(e) => {
                            // The reading job was dropped before this barrier arrived.
                            debug!(view_id = subscription.view_id, error = %e, "subscriber gone");
                            continue;
                        }
                    };
                    let gate = OutputGate::subscriber(sender);
                    let mut attached = true;
                    for batch in materialize.contents()? {
                        if !gate.send_batch(batch).await? {
                            attached = false;
                            break;
                        }
                    }
                    if attached {
                        debug!(view_id = subscription.view_id, "a new view reads this one");
                        self.outputs.push(gate);
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array};
    use arrow::datatypes::DataType;

    use tokio::sync::mpsc;
    use weir_plan::job_graph::{FieldSpec, Partitioning};

    use super::*;
    use crate::data_plane::LocalDataPlane;
    use crate::operators::test_util::batch;
    use crate::operators::union::Union;
    use crate::task_events::LocalEndpoint;

    struct Harness {
        inputs: Vec<mpsc::Sender<Message>>,
        output: mpsc::Receiver<Message>,
        events: mpsc::UnboundedReceiver<TaskEvent>,
        handle: tokio::task::JoinHandle<ExecResult<()>>,
    }

    /// A two-input union task whose output goes to one channel.
    fn union_task() -> Harness {
        let union = Union::new(&[FieldSpec::new("v", &DataType::Int64)]).unwrap();
        task_with(Box::new(union), &[0, 1])
    }

    /// A task running `operator` with one input channel per entry of `edges` (the channel's
    /// input edge), whose output goes to one channel.
    fn task_with(operator: Box<dyn Operator>, edges: &[usize]) -> Harness {
        let (senders, inputs): (Vec<_>, Vec<_>) = edges
            .iter()
            .map(|edge| {
                let (tx, rx) = mpsc::channel(8);
                (tx, TaskInput::new(*edge, rx))
            })
            .unzip();
        let (out_tx, output) = mpsc::channel(64);
        let (endpoint, events) = LocalEndpoint::new();
        let task = Task {
            id: TaskId { job: 1, vertex: 0, subtask: 0 },
            chain: Chain { operators: vec![operator], materialize: None },
            inputs,
            outputs: vec![OutputGate::new(Partitioning::Forward, vec![out_tx])],
            events: Arc::new(endpoint),
            data_plane: Arc::new(LocalDataPlane::new()),
            poll_start: 0,
            checkpoints: None,
            restore_from: vec![],
            restored_epoch: None,
            rescale_from: None,
            pieces: Default::default(),
            pieces_epoch: None,
            fail_next_batch: false,
            lease: Lease::unbounded(),
            deployment: 0,
        };
        Harness { inputs: senders, output, events, handle: tokio::spawn(task.run()) }
    }

    fn values(v: Vec<i64>) -> Message {
        Message::Batch(batch(vec![("v", Arc::new(Int64Array::from(v)) as ArrayRef)], None))
    }

    /// What came out, as `[1, 2]` for batches, `B1` for barriers, `W5` for watermarks.
    fn describe(message: Message) -> String {
        match message {
            Message::Batch(b) => {
                let col = b.data.column(0).as_any().downcast_ref::<Int64Array>().unwrap().clone();
                format!("{:?}", col.values().to_vec())
            }
            Message::Barrier(b) => format!("B{}", b.epoch),
            Message::Watermark(w) => format!("W{w}"),
            Message::Idle => "I".to_string(),
        }
    }

    #[tokio::test]
    async fn barriers_are_aligned_across_inputs() {
        let mut h = union_task();
        h.inputs[0].send(values(vec![1])).await.unwrap();
        h.inputs[0].send(Message::Barrier(Barrier::new(1))).await.unwrap();
        // Sent after input 0's barrier: belongs to epoch 2 and must wait for input 1's barrier.
        h.inputs[0].send(values(vec![3])).await.unwrap();
        h.inputs[1].send(values(vec![2])).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        h.inputs[1].send(Message::Barrier(Barrier::new(1))).await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(describe(h.output.recv().await.unwrap()));
        }
        // Epoch 1's rows in either order, then the barrier, then epoch 2's row.
        seen[..2].sort();
        assert_eq!(seen, ["[1]", "[2]", "B1", "[3]"]);
        match h.events.recv().await.unwrap() {
            TaskEvent::EpochDone { epoch, rows_in, .. } => {
                assert_eq!(epoch, 1);
                assert_eq!(rows_in, 2);
            }
            other => panic!("unexpected {other:?}"),
        }
        drop(h.inputs);
        h.handle.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn the_watermark_is_the_minimum_over_inputs() {
        let mut h = union_task();
        h.inputs[0].send(Message::Watermark(5)).await.unwrap();
        h.inputs[1].send(Message::Watermark(3)).await.unwrap();
        assert_eq!(describe(h.output.recv().await.unwrap()), "W3");
        h.inputs[1].send(Message::Watermark(7)).await.unwrap();
        assert_eq!(describe(h.output.recv().await.unwrap()), "W5");
        drop(h.inputs);
        h.handle.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn mismatched_barriers_fail_the_task() {
        let mut h = union_task();
        h.inputs[0].send(Message::Barrier(Barrier::new(1))).await.unwrap();
        h.inputs[1].send(Message::Barrier(Barrier::new(2))).await.unwrap();
        let err = h.handle.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("while aligning barrier"), "{err}");
        assert!(matches!(h.events.recv().await, Some(TaskEvent::Failed { .. })));
    }

    /// Tags every row with the input edge its batch arrived on (`v * 10 + edge`), as a
    /// two-input operator tells its sides apart.
    struct EdgeTagger;

    impl Operator for EdgeTagger {
        fn name(&self) -> &'static str {
            "EdgeTagger"
        }

        fn process_batch(
            &mut self,
            edge: usize,
            batch: StreamBatch,
            out: &mut Vec<StreamBatch>,
        ) -> ExecResult<()> {
            let values = batch.data.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let tagged: Int64Array = values.iter().map(|v| v.map(|v| v * 10 + edge as i64)).collect();
            out.push(batch.with_columns(batch.data.schema(), vec![Arc::new(tagged)])?);
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_two_input_operator_sees_the_edge_at_parallelism_three_on_both_sides() {
        // Channels 0, 2, 4 come from the three subtasks of edge 0 and channels 1, 3, 5 from
        // those of edge 1: the channel index is not the side.
        let edges = [0, 1, 0, 1, 0, 1];
        let mut h = task_with(Box::new(EdgeTagger), &edges);
        for (channel, input) in h.inputs.iter().enumerate() {
            input.send(values(vec![channel as i64])).await.unwrap();
            input.send(Message::Barrier(Barrier::new(1))).await.unwrap();
        }
        let mut rows = Vec::new();
        for _ in 0..edges.len() {
            rows.push(describe(h.output.recv().await.unwrap()));
        }
        rows.sort();
        assert_eq!(rows, ["[0]", "[11]", "[20]", "[31]", "[40]", "[51]"]);
        // The barrier comes out once, after every channel delivered it.
        assert_eq!(describe(h.output.recv().await.unwrap()), "B1");
        drop(h.inputs);
        h.handle.await.unwrap().unwrap();
    }
}
