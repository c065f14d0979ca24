//! Rescaling: a job deployed again with other parallelisms, from a checkpoint taken with the
//! old ones, by key-group ranges (as Flink does).
//!
//! * [`rescaled_graph`] gives a job's graph at a new parallelism: every keyed vertex (all
//!   its inputs hash-partitioned) takes it; sources keep theirs (their splits and offsets
//!   belong to their readers), single-subtask vertices stay single. A view's materialize
//!   operator moves behind an exchange on the view's key (or all its columns), so that a
//!   view row's partition follows from its values and the view's rows can be spread over
//!   another number of partitions.
//! * Every checkpoint records the shape of the deployment that took it
//!   ([`VertexLayout`]). When a job is deployed with another shape, each task restores,
//!   from every old subtask whose key groups overlap its own, the state of its own key
//!   groups ([`Recovered::restore_for`]); a file sink's subtask also takes its own old
//!   file, and cuts back the files of old subtasks that no longer exist.

use std::collections::BTreeMap;

use tokio::sync::oneshot;
use tracing::info;
use weir_plan::job_graph::{Edge, JobGraph, OperatorSpec, Partitioning, Vertex};

use super::checkpoints::Recovered;
use super::lifecycle::JobState;
use super::{placement, Actor, Command};
use crate::checkpoint_protocol::VertexLayout;
use crate::error::{ExecError, ExecResult};
use crate::exchange::key_group_range;
use crate::task::TaskId;
use crate::task_manager::{RescaleRestore, RescaleSource, TaskRestore};

/// The shape of a deployed graph, as checkpoints record it.
pub fn layout_of(graph: &JobGraph) -> Vec<VertexLayout> {
    graph
        .vertices
        .iter()
        .map(|v| VertexLayout {
            vertex: v.id,
            parallelism: v.parallelism,
            operators: v.chain.iter().map(|op| op.name().to_string()).collect(),
        })
        .collect()
}

/// Whether every input of `vertex` is hash-partitioned on some columns: its state is keyed,
/// so it can run at any parallelism.
fn is_keyed(vertex: &Vertex) -> bool {
    vertex.source.is_none()
        && !vertex.inputs.is_empty()
        && vertex
            .inputs
            .iter()
            .all(|e| matches!(&e.partitioning, Partitioning::Hash(keys) if !keys.is_empty()))
}

/// `graph` with its keyed vertices at `parallelism` (see the module docs).
pub fn rescaled_graph(graph: &JobGraph, parallelism: usize) -> ExecResult<JobGraph> {
    if parallelism == 0 {
        return Err(ExecError::InvalidGraph("a parallelism of 0".into()));
    }
    let mut graph = graph.clone();
    // A view's materialize at the end of a keyed vertex becomes a vertex of its own.
    if !graph.is_sink() {
        let last = graph.vertices.iter().position(|v| {
            is_keyed(v)
                && v.chain.len() > 1
                && matches!(v.chain.last(), Some(OperatorSpec::Materialize { .. }))
        });
        if let Some(index) = last {
            let producer = &mut graph.vertices[index];
            let materialize =
                producer.chain.pop().ok_or_else(|| ExecError::Internal("no materialize".into()))?;
            let (producer_id, output) = (producer.id, producer.output.clone());
            let columns = graph.output_fields(producer_id)?.len();
            let key = match &output.stream_key {
                Some(key) if !key.is_empty() => key.clone(),
                _ => (0..columns).collect(),
            };
            let id = graph.vertices.len();
            graph.vertices.push(Vertex {
                id,
                parallelism,
                source: None,
                inputs: vec![Edge { from: producer_id, partitioning: Partitioning::Hash(key) }],
                chain: vec![materialize],
                output,
            });
        }
    }
    for i in 0..graph.vertices.len() {
        let vertex = &graph.vertices[i];
        let new = if vertex.source.is_some() {
            vertex.parallelism
        } else if is_keyed(vertex) {
            parallelism
        } else if vertex.inputs.iter().any(|e| e.partitioning == Partitioning::Single) {
            1
        } else if let Some(Edge { from, partitioning: Partitioning::Forward }) = vertex.inputs.first() {
            graph.vertices.get(*from).map_or(vertex.parallelism, |u| u.parallelism)
        } else {
            vertex.parallelism
        };
        graph.vertices[i].parallelism = new;
    }
    Ok(graph)
}

impl Recovered {
    /// What task `task` of `graph` restores from this checkpoint: its own pieces when the
    /// checkpoint was taken with the same shape, otherwise its share of the old subtasks'.
    pub fn restore_for(&self, graph: &JobGraph, task: TaskId) -> ExecResult<TaskRestore> {
        let new = layout_of(graph);
        let Some(old) = self.chosen.layout.as_ref().filter(|old| **old != new) else {
            return Ok(self.task_restore(task));
        };
        let vertex = graph.vertex(task.vertex)?;
        let chain: Vec<&str> = vertex.chain.iter().map(OperatorSpec::name).collect();
        let was = old.iter().find(|l| l.vertex == vertex.id);
        if vertex.source.is_some() {
            // Readers keep their splits: their vertex is never rescaled.
            match was {
                Some(l) if l.parallelism == vertex.parallelism => {}
                _ => {
                    return Err(ExecError::InvalidGraph(format!(
                        "vertex {} reads a source: its parallelism cannot change",
                        vertex.id
                    )))
                }
            }
            if was.is_some_and(|l| l.operators == chain) {
                return Ok(self.task_restore(task));
            }
        }
        let forward_from =
            |u: usize| vertex.inputs.iter().any(|e| e.from == u && e.partitioning == Partitioning::Forward);
        let mut sources = Vec::new();
        for u in old {
            // Operators of the old vertex that are now in this one: the same operator at the
            // same place of the same vertex, or the view's materialize wherever it went.
            let operators: BTreeMap<u32, u32> = u
                .operators
                .iter()
                .enumerate()
                .filter_map(|(i, name)| {
                    let target = match name.as_str() {
                        "Materialize" => chain.iter().position(|n| *n == "Materialize")?,
                        _ if u.vertex == vertex.id && chain.get(i) == Some(&name.as_str()) => i,
                        _ => return None,
                    };
                    Some((i as u32, target as u32))
                })
                .collect();
            if operators.is_empty() {
                continue;
            }
            let whole =
                u.parallelism == vertex.parallelism && (u.vertex == vertex.id || forward_from(u.vertex));
            let (mine, old_total, new_total) = (task.subtask, u.parallelism, vertex.parallelism);
            for j in 0..old_total {
                let relevant = match whole {
                    true => j == mine,
                    false => {
                        let (a, b) = (key_group_range(j, old_total), key_group_range(mine, new_total));
                        a.start.max(b.start) < a.end.min(b.end) || j % new_total == mine
                    }
                };
                let pieces: Vec<_> = self
                    .chosen
                    .pieces
                    .iter()
                    .filter(|p| p.task == TaskId { job: task.job, vertex: u.vertex, subtask: j })
                    .cloned()
                    .collect();
                if relevant && !pieces.is_empty() {
                    sources.push(RescaleSource {
                        old_subtask: j,
                        pieces,
                        operators: operators.clone(),
                        whole,
                    });
                }
            }
        }
        Ok(TaskRestore {
            epoch: self.chosen.epoch,
            pieces: vec![],
            source_offset: None,
            rescale: (!sources.is_empty())
                .then_some(RescaleRestore { parallelism: vertex.parallelism, sources }),
        })
    }
}

impl Actor {
    /// Stops job `graph.id()` and deploys it again as `graph`, once its tasks have had the
    /// restart backoff to stop, from its latest committed checkpoint (see
    /// [`super::JobManager::rescale`]). `reply` is answered when the first epoch commits.
    pub(super) fn rescale(&mut self, graph: JobGraph, reply: oneshot::Sender<ExecResult<()>>) {
        let view_id = graph.id();
        if let Err(e) = self.check_rescale(&graph) {
            let _ = reply.send(Err(e));
            return;
        }
        let parallelism = graph.vertices.iter().map(|v| v.parallelism).max().unwrap_or(1);
        let Some(job) = self.jobs.get_mut(&view_id) else { return };
        info!(job = %job.graph.target.name, parallelism, "job rescaling");
        let abandoned = job.coordinator.as_mut().map(|c| c.abandon_all()).unwrap_or_default();
        job.state = JobState::Rescaling { parallelism };
        job.graph = graph;
        self.checkpoints_abandoned(view_id, abandoned);
        // Some partitions may have finished an epoch the others never will.
        self.view_states.freeze(view_id);
        for tm in &self.task_managers {
            tm.cancel_job(view_id);
        }
        self.deploy_waiters.push((view_id, crate::message::Epoch::MAX, reply));
        // The old tasks stop at their next await; the new ones use the same ids and state
        // namespaces, so they start after the restart backoff, as after a failure.
        let delay = self.config.restart_backoff.max(std::time::Duration::from_millis(50));
        let commands = self.commands.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = commands.send(Command::Restart { view_id });
        });
        self.try_commit();
    }

    /// Whether job `graph.id()` can be deployed as `graph` now.
    fn check_rescale(&self, graph: &JobGraph) -> ExecResult<()> {
        let view_id = graph.id();
        let job = self
            .jobs
            .get(&view_id)
            .filter(|j| j.running())
            .ok_or_else(|| ExecError::InvalidGraph(format!("job {view_id} is not running")))?;
        if let Some(reader) = self.jobs.values().find(|j| j.graph.view_inputs().contains(&view_id)) {
            return Err(ExecError::InvalidGraph(format!(
                "\"{}\" is read by \"{}\", whose readers of it have the view's parallelism: drop it or \
                 change the parallelism before creating it",
                job.graph.target.name, reader.graph.target.name
            )));
        }
        if graph.is_sink() && job.coordinator.is_none() {
            return Err(ExecError::InvalidGraph(format!(
                "sink \"{}\" takes no checkpoints: without one to restart from, its rows would be written again",
                job.graph.target.name
            )));
        }
        // The old tasks' slots are free once they stop.
        let deployed = match self.config.cluster {
            Some(_) => placement::split_materialize(graph.clone()),
            None => graph.clone(),
        };
        self.place(&deployed).map(|_| ())
    }
}
