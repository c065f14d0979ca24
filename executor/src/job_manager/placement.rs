//! Placement: which TaskManager slot runs each subtask of a job.
//!
//! Standalone, every TaskManager is in this process and subtasks go round the slots as
//! before. In a cluster, slots are shared as in Flink: a slot runs at most one subtask of
//! each vertex of a job, so a job needs as many free worker slots as its highest
//! parallelism, and subtask `i` of every worker vertex runs in the job's `i`-th slot (the
//! subtasks that exchange the most data, `i` of one vertex and `i` of the next over a
//! forward edge, share a slot). Table sources, view sources and materialize tasks need the
//! stored tables or the view store and run in the frontend process, outside the slots.

use std::collections::{BTreeMap, BTreeSet};

use weir_plan::job_graph::{JobGraph, OperatorSpec, SourceSpec, Vertex};

use crate::error::{ExecError, ExecResult};
use crate::task_manager::TaskManagerRole;

/// How worker slots are chosen for a job in a cluster (`cluster.placement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlotPolicy {
    /// Over as many TaskManagers as possible (each next slot from the TaskManager with the
    /// most free slots).
    #[default]
    Spread,
    /// Filling one TaskManager before the next.
    Pack,
}

impl SlotPolicy {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "spread" => Some(SlotPolicy::Spread),
            "pack" => Some(SlotPolicy::Pack),
            _ => None,
        }
    }
}

/// A TaskManager as placement sees it.
#[derive(Debug, Clone)]
pub struct SlotOwner {
    pub id: usize,
    pub slots: usize,
    pub role: TaskManagerRole,
}

/// Where each subtask runs: (vertex, subtask) to (taskmanager, slot).
pub type Placement = BTreeMap<(usize, usize), (usize, usize)>;

/// Whether a vertex must run in the frontend process: it reads tables (as a source or by
/// lookup) or views, or writes a view.
pub fn runs_in_frontend(vertex: &Vertex) -> bool {
    matches!(vertex.source, Some(SourceSpec::Table { .. } | SourceSpec::View { .. }))
        || vertex
            .chain
            .iter()
            .any(|op| matches!(op, OperatorSpec::Materialize { .. } | OperatorSpec::LookupJoin(_)))
}

/// Places every subtask of `graph`. `used` are the worker slots other jobs hold; `offset`
/// rotates standalone placement so jobs do not all start on slot 0.
pub fn place(
    graph: &JobGraph,
    owners: &[SlotOwner],
    used: &BTreeSet<(usize, usize)>,
    policy: SlotPolicy,
    offset: usize,
) -> ExecResult<Placement> {
    let frontend = owners.iter().find(|o| o.role == TaskManagerRole::Frontend);
    let workers: Vec<&SlotOwner> = owners.iter().filter(|o| o.role == TaskManagerRole::Worker).collect();
    let mut placement = Placement::new();
    if workers.is_empty() && !owners.is_empty() {
        // Standalone: every TaskManager runs everything.
        let slots: Vec<(usize, usize)> =
            owners.iter().flat_map(|o| (0..o.slots).map(move |s| (o.id, s))).collect();
        if slots.is_empty() {
            return Err(ExecError::Internal("no taskmanager slots".into()));
        }
        for vertex in &graph.vertices {
            for subtask in 0..vertex.parallelism {
                placement.insert((vertex.id, subtask), slots[(subtask + offset) % slots.len()]);
            }
        }
        return Ok(placement);
    }
    let needed =
        graph.vertices.iter().filter(|v| !runs_in_frontend(v)).map(|v| v.parallelism).max().unwrap_or(0);
    let chosen = choose_slots(&workers, used, needed, policy)?;
    for vertex in &graph.vertices {
        for subtask in 0..vertex.parallelism {
            let at = if runs_in_frontend(vertex) {
                let frontend = frontend.ok_or_else(|| {
                    ExecError::Internal("the frontend has no taskmanager for tables and views".into())
                })?;
                (frontend.id, subtask % frontend.slots.max(1))
            } else {
                *chosen.get(subtask).ok_or_else(|| {
                    ExecError::Internal(format!(
                        "no slot chosen for subtask {subtask} of vertex {}",
                        vertex.id
                    ))
                })?
            };
            placement.insert((vertex.id, subtask), at);
        }
    }
    Ok(placement)
}

/// `needed` free worker slots, in the order subtasks take them.
fn choose_slots(
    workers: &[&SlotOwner],
    used: &BTreeSet<(usize, usize)>,
    needed: usize,
    policy: SlotPolicy,
) -> ExecResult<Vec<(usize, usize)>> {
    let mut free: Vec<Vec<(usize, usize)>> = workers
        .iter()
        .map(|w| (0..w.slots).map(|s| (w.id, s)).filter(|slot| !used.contains(slot)).collect())
        .collect();
    let total: usize = free.iter().map(Vec::len).sum();
    if total < needed {
        return Err(ExecError::NotEnoughSlots { needed, free: total });
    }
    let mut chosen = Vec::with_capacity(needed);
    while chosen.len() < needed {
        let next = match policy {
            SlotPolicy::Pack => free.iter().position(|f| !f.is_empty()),
            // The TaskManager with the most free slots left (the first of equals).
            SlotPolicy::Spread => free
                .iter()
                .enumerate()
                .filter(|(_, f)| !f.is_empty())
                .max_by(|(a, fa), (b, fb)| fa.len().cmp(&fb.len()).then(b.cmp(a)))
                .map(|(i, _)| i),
        };
        let Some(i) = next else { break };
        chosen.push(free[i].remove(0));
    }
    Ok(chosen)
}

/// Moves a materialize that ends a worker vertex's chain into a vertex of its own, reading
/// the rest of the chain over a forward edge, so the work runs on the workers and only the
/// view's changes come to the frontend. Vertex ids stay as they were (the new vertex comes
/// last), so checkpoints keep matching their tasks. Idempotent.
pub fn split_materialize(mut graph: JobGraph) -> JobGraph {
    let Some(index) = graph.vertices.iter().position(|v| {
        v.chain.len() > 1
            && matches!(v.chain.last(), Some(OperatorSpec::Materialize { .. }))
            && !matches!(v.source, Some(SourceSpec::Table { .. } | SourceSpec::View { .. }))
    }) else {
        return graph;
    };
    let Some(materialize) = graph.vertices[index].chain.pop() else { return graph };
    let producer = &graph.vertices[index];
    let vertex = Vertex {
        id: graph.vertices.len(),
        parallelism: producer.parallelism,
        source: None,
        inputs: vec![weir_plan::job_graph::Edge {
            from: producer.id,
            partitioning: weir_plan::job_graph::Partitioning::Forward,
        }],
        chain: vec![materialize],
        output: producer.output.clone(),
    };
    graph.vertices.push(vertex);
    graph
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(id: usize, slots: usize, role: TaskManagerRole) -> SlotOwner {
        SlotOwner { id, slots, role }
    }

    #[test]
    fn spread_takes_slots_from_every_worker_and_pack_fills_one_first() {
        let workers = [owner(1, 2, TaskManagerRole::Worker), owner(2, 2, TaskManagerRole::Worker)];
        let refs: Vec<&SlotOwner> = workers.iter().collect();
        let none = BTreeSet::new();
        assert_eq!(choose_slots(&refs, &none, 2, SlotPolicy::Spread).unwrap(), vec![(1, 0), (2, 0)]);
        assert_eq!(choose_slots(&refs, &none, 2, SlotPolicy::Pack).unwrap(), vec![(1, 0), (1, 1)]);
        let used = BTreeSet::from([(1, 0)]);
        assert_eq!(choose_slots(&refs, &used, 3, SlotPolicy::Spread).unwrap(), vec![(2, 0), (1, 1), (2, 1)]);
        match choose_slots(&refs, &used, 4, SlotPolicy::Spread) {
            Err(ExecError::NotEnoughSlots { needed: 4, free: 3 }) => {}
            other => panic!("expected not enough slots, got {other:?}"),
        }
    }
}
