//! Deployment: a JobGraph expanded into its ExecutionGraph (one task per subtask, placed on
//! a slot, a channel id for every producer/consumer pair of every edge, each input channel
//! tagged with its edge) and handed to the TaskManagers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use tracing::info;
use weir_plan::job_graph::{schema_of, JobGraph, Partitioning, SourceSpec};

use super::checkpoints::Recovered;
use super::lifecycle::JobState;
use super::placement::{self, Placement, SlotOwner, SlotPolicy};
use super::{takes_checkpoints, Actor, Job, TaskState};
use crate::checkpoint_protocol::CheckpointCoordinator;
use crate::data_plane::{ChannelId, ChannelIds};
use crate::error::{ExecError, ExecResult};
use crate::message::{Epoch, Mutation, Subscription};
use crate::sources::alignment::SourceAlignment;
use crate::task::TaskId;
use crate::task_manager::{InputChannel, TaskDescriptor, TaskManagerRole};

impl Actor {
    /// Where each subtask of `graph` runs, given the slots other jobs hold (an earlier
    /// deployment of the same job, stopping, holds none).
    pub(super) fn place(&self, graph: &JobGraph) -> ExecResult<Placement> {
        let owners: Vec<SlotOwner> = self
            .task_managers
            .iter()
            .map(|tm| SlotOwner { id: tm.id(), slots: tm.slots(), role: tm.role() })
            .collect();
        let workers: BTreeSet<usize> =
            owners.iter().filter(|o| o.role == TaskManagerRole::Worker).map(|o| o.id).collect();
        let used: BTreeSet<(usize, usize)> = self
            .jobs
            .values()
            .filter(|job| job.running() && job.graph.id() != graph.id())
            .flat_map(|job| job.tasks.values().map(|t| (t.tm, t.slot)))
            .filter(|(tm, _)| workers.contains(tm))
            .collect();
        match self.config.cluster {
            None if !workers.is_empty() => {
                Err(ExecError::Internal("a standalone job manager was given worker taskmanagers".into()))
            }
            None => placement::place(graph, &owners, &used, SlotPolicy::Spread, graph.id() as usize),
            Some(_) if workers.is_empty() => {
                let needed = graph.vertices.iter().map(|v| v.parallelism).max().unwrap_or(1);
                Err(ExecError::NotEnoughSlots { needed, free: 0 })
            }
            Some(policy) => placement::place(graph, &owners, &used, policy, 0),
        }
    }

    pub(super) fn deploy(&mut self, graph: JobGraph, restore: Option<Recovered>) -> ExecResult<Epoch> {
        // In a cluster the view's changes come to the frontend from the workers.
        let graph = match self.config.cluster {
            Some(_) => placement::split_materialize(graph),
            None => graph,
        };
        let job_id = graph.id();
        if self.jobs.contains_key(&job_id) {
            return Err(ExecError::InvalidGraph(format!("job {job_id} is already running")));
        }
        for upstream in graph.view_inputs() {
            match self.jobs.get(&upstream) {
                Some(job) if job.running() => {}
                Some(job) => {
                    return Err(ExecError::InputNotRunning {
                        view: format!("\"{}\"", job.graph.target.name),
                        state: job.state.label(),
                    })
                }
                None => {
                    return Err(ExecError::InputNotRunning {
                        view: format!("with id {upstream}"),
                        state: "stopped".into(),
                    })
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
        let placement = self.place(&graph)?;
        let addresses: BTreeMap<usize, String> =
            self.task_managers.iter().filter_map(|tm| Some((tm.id(), tm.data_address()?))).collect();
        let mut plan = execution_graph(&graph, &placement, &addresses, &self.channel_ids, |view| {
            let upstream = self
                .jobs
                .get(&view)
                .ok_or_else(|| ExecError::InvalidGraph(format!("view {view} is not running")))?;
            Ok(upstream.graph.materialize_vertex()?.parallelism)
        })?;
        let checkpointed = self.config.checkpoints.is_some() && takes_checkpoints(&graph);
        for task in &mut plan.tasks {
            task.checkpointed = checkpointed;
            task.restore = restore.as_ref().map(|r| r.restore_for(&graph, task.id)).transpose()?;
        }
        if let Some((view_schema, parallelism)) = materialized {
            self.view_states.register(job_id, plan.deployment, view_schema, parallelism);
        }

        let protocol = self.config.checkpoints.as_ref().map(|c| c.protocol);
        let coordinator = match (protocol, checkpointed) {
            (Some(protocol), true) => {
                let committed = restore.map(|r| r.committed).unwrap_or_default();
                self.remember_committed(job_id, &graph.target.name, &committed);
                let coordinator = CheckpointCoordinator::recovered(job_id, protocol, committed).0;
                Some(coordinator.with_layout(super::rescale::layout_of(&graph)))
            }
            _ => None,
        };
        let mut job = Job {
            graph: graph.clone(),
            created: SystemTime::now(),
            state: JobState::deployed(0),
            coordinator,
            restarts: 0,
            last_failure: None,
            first_epoch: Epoch::MAX,
            last_committed: None,
            tasks: BTreeMap::new(),
            sources: Vec::new(),
            channels: plan.channels.clone(),
            deployment: plan.deployment,
            pending_restore: None,
        };
        for desc in plan.tasks {
            let tm_id = placement
                .get(&(desc.id.vertex, desc.id.subtask))
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
                    tm.cancel_job(job_id);
                }
                self.release_channels(&plan.channels);
                self.view_states.remove(job_id);
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
        info!(job = %graph.target.name, tasks = job.tasks.len(), "job deployed");
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
        self.jobs.insert(job_id, job);
        Ok(first_epoch)
    }
}

/// Expands a JobGraph into its ExecutionGraph: one task per subtask, on the (taskmanager,
/// slot) `placement` gives it, with a channel id from `ids` for every producer/consumer pair
/// of every edge; every input channel carries the index of its input edge, and every task
/// the columns of each edge. An output channel whose consumer runs on another TaskManager
/// with a data address (in another process) carries that address. `view_parallelism` gives
/// the materialize parallelism of a running view this job reads.
fn execution_graph(
    graph: &JobGraph,
    placement: &Placement,
    addresses: &BTreeMap<usize, String>,
    ids: &ChannelIds,
    view_parallelism: impl Fn(u64) -> ExecResult<usize>,
) -> ExecResult<ExecutionGraph> {
    let at = |vertex: usize, subtask: usize| {
        placement.get(&(vertex, subtask)).copied().ok_or_else(|| {
            ExecError::Internal(format!("subtask {subtask} of vertex {vertex} was not placed"))
        })
    };
    let mut plan = ExecutionGraph::default();
    // Channel ids are unique across JobManager restarts: so is a number taken from them.
    let deployment = ids.allocate();
    plan.deployment = deployment;
    // channel[(consumer vertex, edge index)][(producer subtask, consumer subtask)]
    let mut edge_channels: BTreeMap<(usize, usize), BTreeMap<(usize, usize), ChannelId>> = BTreeMap::new();
    for vertex in &graph.vertices {
        for (e, edge) in vertex.inputs.iter().enumerate() {
            let producer = graph.vertex(edge.from)?;
            let pairs = edge_pairs(&edge.partitioning, producer.parallelism, vertex.parallelism)?;
            let channels = edge_channels.entry((vertex.id, e)).or_default();
            for pair in pairs {
                let id = ids.allocate();
                plan.channels.push(id);
                channels.insert(pair, id);
            }
        }
    }
    let alignment = aligned_sources_by_process(graph, placement, addresses)?;
    for vertex in &graph.vertices {
        let input_schemas = graph.edge_fields(vertex.id)?;
        let mut subscription = Vec::new();
        for subtask in 0..vertex.parallelism {
            let (tm, slot) = at(vertex.id, subtask)?;
            let id = TaskId { job: graph.id(), vertex: vertex.id, subtask };
            let mut inputs = Vec::new();
            for e in 0..vertex.inputs.len() {
                let channels =
                    edge_channels.get(&(vertex.id, e)).ok_or_else(|| missing_edge(vertex.id, e))?;
                for ((_, consumer), channel) in channels {
                    if *consumer == subtask {
                        inputs.push(InputChannel { channel: *channel, edge: e });
                    }
                }
            }
            if let Some(SourceSpec::View { .. }) = &vertex.source {
                let channel = ids.allocate();
                plan.channels.push(channel);
                subscription.push(channel);
                inputs.push(InputChannel { channel, edge: 0 });
            }
            let mut outputs = Vec::new();
            let mut remote_outputs = BTreeMap::new();
            for consumer in &graph.vertices {
                for (e, edge) in consumer.inputs.iter().enumerate().filter(|(_, edge)| edge.from == vertex.id)
                {
                    let mut channels = Vec::new();
                    for ((producer, consumer_subtask), channel) in
                        edge_channels.get(&(consumer.id, e)).ok_or_else(|| missing_edge(consumer.id, e))?
                    {
                        if *producer != subtask {
                            continue;
                        }
                        channels.push(*channel);
                        let (consumer_tm, _) = at(consumer.id, *consumer_subtask)?;
                        if consumer_tm != tm {
                            if let Some(address) = addresses.get(&consumer_tm) {
                                remote_outputs.insert(*channel, address.clone());
                            }
                        }
                    }
                    outputs.push((edge.partitioning.clone(), channels));
                }
            }
            plan.tasks.push(TaskDescriptor {
                id,
                slot,
                vertex: vertex.clone(),
                input_schemas: input_schemas.clone(),
                inputs,
                outputs,
                restore: None,
                checkpointed: false,
                remote_outputs,
                deployment,
                watermark_alignment: match (&graph.watermark_alignment, aligned_source(vertex)) {
                    (Some(aligned), true) => Some(SourceAlignment {
                        max_drift_us: aligned.max_drift_us,
                        members_in_process: alignment.get(&addresses.get(&tm)).copied().unwrap_or(0),
                    }),
                    _ => None,
                },
            });
        }
        if let Some(SourceSpec::View { view_id, .. }) = &vertex.source {
            let upstream_parallelism = view_parallelism(*view_id)?;
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

/// Whether the subtasks of `vertex` take part in its job's watermark alignment: those of an
/// event-time `CREATE SOURCE`.
fn aligned_source(vertex: &weir_plan::job_graph::Vertex) -> bool {
    matches!(&vertex.source, Some(SourceSpec::Connector { watermark: Some(_), .. }))
}

/// How many aligned source subtasks of `graph` run in each process, by the data address of
/// the process (`None`: this one). A process's sources align with each other, so each
/// process's group waits for its own members only.
fn aligned_sources_by_process<'a>(
    graph: &JobGraph,
    placement: &Placement,
    addresses: &'a BTreeMap<usize, String>,
) -> ExecResult<BTreeMap<Option<&'a String>, usize>> {
    let mut counts = BTreeMap::new();
    if graph.watermark_alignment.is_none() {
        return Ok(counts);
    }
    for vertex in graph.vertices.iter().filter(|v| aligned_source(v)) {
        for subtask in 0..vertex.parallelism {
            let (tm, _) = placement.get(&(vertex.id, subtask)).copied().ok_or_else(|| {
                ExecError::Internal(format!("subtask {subtask} of vertex {} was not placed", vertex.id))
            })?;
            *counts.entry(addresses.get(&tm)).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// A JobGraph expanded for deployment: every subtask's descriptor and placement, the
/// channels between them, and the channels new subscriptions to upstream views will use.
#[derive(Default)]
struct ExecutionGraph {
    /// This deployment's id, unique across JobManager restarts (every descriptor has it).
    deployment: u64,
    tasks: Vec<TaskDescriptor>,
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

#[cfg(test)]
mod tests {
    use arrow::datatypes::DataType;
    use weir_plan::job_graph::{Edge, FieldSpec, JobTarget, OperatorSpec, TargetKind, Vertex};

    use super::*;

    fn table_vertex(id: usize, table_id: u64, schema: Vec<FieldSpec>) -> Vertex {
        Vertex {
            id,
            parallelism: 3,
            source: Some(SourceSpec::Table {
                table_id,
                table_name: format!("t{table_id}"),
                schema,
                watermark: None,
            }),
            inputs: vec![],
            chain: vec![],
            output: Default::default(),
        }
    }

    #[test]
    fn every_input_channel_carries_its_edge_at_parallelism_three_on_both_sides() {
        let left = vec![FieldSpec::new("a", &DataType::Int64)];
        let right = vec![FieldSpec::new("b", &DataType::Utf8), FieldSpec::new("c", &DataType::Int64)];
        let graph = JobGraph {
            watermark_alignment: None,
            target: JobTarget { id: 7, name: "two_inputs".into(), kind: TargetKind::MaterializedView },
            vertices: vec![
                table_vertex(0, 1, left.clone()),
                table_vertex(1, 2, right.clone()),
                Vertex {
                    id: 2,
                    parallelism: 3,
                    source: None,
                    inputs: vec![
                        Edge { from: 0, partitioning: Partitioning::Hash(vec![0]) },
                        Edge { from: 1, partitioning: Partitioning::Hash(vec![1]) },
                    ],
                    chain: vec![OperatorSpec::Materialize { view_id: 7 }],
                    output: Default::default(),
                },
            ],
        };
        let slots = [(0, 0), (0, 1), (1, 0)];
        let placement: Placement = graph
            .vertices
            .iter()
            .flat_map(|v| (0..v.parallelism).map(move |s| ((v.id, s), slots[s])))
            .collect();
        let addresses = BTreeMap::from([(0, "a:1".to_string()), (1, "b:2".to_string())]);
        let plan = execution_graph(&graph, &placement, &addresses, &ChannelIds::default(), |view| {
            Err(ExecError::Internal(format!("reads no view, asked for {view}")))
        })
        .unwrap();
        let task = |vertex, subtask| {
            plan.tasks.iter().find(|t| t.id.vertex == vertex && t.id.subtask == subtask).unwrap()
        };
        for subtask in 0..3 {
            let consumer = task(2, subtask);
            assert_eq!(consumer.input_schemas, vec![left.clone(), right.clone()]);
            for (edge, producer_vertex) in [(0, 0), (1, 1)] {
                // Each producer subtask has one channel to this consumer, on this edge.
                let mut expected: Vec<ChannelId> =
                    (0..3).map(|p| task(producer_vertex, p).outputs[0].1[subtask]).collect();
                let mut got: Vec<ChannelId> =
                    consumer.inputs.iter().filter(|i| i.edge == edge).map(|i| i.channel).collect();
                expected.sort();
                got.sort();
                assert_eq!(got, expected, "edge {edge} of subtask {subtask}");
            }
            assert_eq!(consumer.inputs.len(), 6);
        }
        // Subtask 2 is on taskmanager 1; the others on taskmanager 0: channels between them
        // carry the consumer's address, the rest are local.
        for producer in [task(0, 0), task(1, 2)] {
            let remote: Vec<&String> = producer.remote_outputs.values().collect();
            let expected = if producer.id.subtask == 2 { vec!["a:1", "a:1"] } else { vec!["b:2"] };
            assert_eq!(remote, expected, "{}", producer.id);
        }
        // 3 × 3 channels per edge, all distinct.
        let mut channels = plan.channels.clone();
        channels.sort();
        channels.dedup();
        assert_eq!(channels.len(), 18);
    }
}
