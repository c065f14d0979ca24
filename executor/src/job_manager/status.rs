//! What `weir_catalog.jobs`, `tasks`, `watermarks` and `checkpoints` show of the
//! JobManager.

use std::time::SystemTime;

use super::checkpoints::CheckpointRecord;
use super::Actor;
use crate::message::Epoch;
use crate::task_events::OperatorStats;
use crate::task_manager::TaskManagerRole;

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
    /// Operators whose state nothing bounds (see `JobGraph::unbounded_state`), or `None`.
    pub unbounded_state: Option<String>,
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

/// A TaskManager as `weir_catalog.taskmanagers` shows it.
#[derive(Debug, Clone)]
pub struct TaskManagerStatus {
    pub id: usize,
    /// Its data address (`None` in standalone mode, where every channel is in-process).
    pub address: Option<String>,
    /// `frontend` or `worker`.
    pub role: &'static str,
    pub slots: usize,
    /// Worker slots running a subtask of some job (a frontend's tasks take no slots).
    pub slots_used: usize,
    /// `active`, or `lost: <why>`.
    pub state: String,
    pub last_heartbeat: Option<SystemTime>,
    pub tasks: usize,
    /// Size of its tasks' state in their latest checkpoints.
    pub state_bytes: u64,
}

#[derive(Debug, Clone, Default)]
pub struct ClusterStatus {
    pub jobs: Vec<JobStatus>,
    pub tasks: Vec<TaskStatus>,
    pub task_managers: Vec<TaskManagerStatus>,
    pub committed_epoch: Epoch,
    pub checkpoints: Vec<CheckpointRecord>,
}

impl Actor {
    pub(super) fn status(&self) -> ClusterStatus {
        let mut status = ClusterStatus { committed_epoch: self.committed, ..Default::default() };
        status.checkpoints = self.history.values().cloned().collect();
        for (id, job) in &self.jobs {
            let state = job.state.label();
            status.jobs.push(JobStatus {
                view_id: *id,
                view_name: job.graph.target.name.clone(),
                status: state.clone(),
                parallelism: job.parallelism(),
                created: job.created,
                last_committed_epoch: job.last_committed,
                kind: job.graph.target.kind.label(),
                restarts: job.restarts,
                last_failure: job.last_failure.clone(),
                unbounded_state: Some(job.graph.unbounded_state().join(", ")).filter(|s| !s.is_empty()),
            });
            for (task, t) in &job.tasks {
                status.tasks.push(TaskStatus {
                    view_id: *id,
                    view_name: job.graph.target.name.clone(),
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
        for tm in &self.task_managers {
            let tasks: Vec<&super::TaskState> = self
                .jobs
                .values()
                .filter(|job| job.running())
                .flat_map(|job| job.tasks.values())
                .filter(|t| t.tm == tm.id())
                .collect();
            let worker = tm.role() == TaskManagerRole::Worker;
            let slots_used: std::collections::BTreeSet<usize> = tasks.iter().map(|t| t.slot).collect();
            status.task_managers.push(TaskManagerStatus {
                id: tm.id(),
                address: tm.data_address(),
                role: if worker { "worker" } else { "frontend" },
                slots: tm.slots(),
                slots_used: if worker { slots_used.len() } else { 0 },
                state: "active".into(),
                last_heartbeat: tm.last_heartbeat(),
                tasks: tasks.len(),
                state_bytes: tasks.iter().filter_map(|t| t.state_bytes).sum(),
            });
        }
        for (id, (slots, reason, at)) in &self.lost_task_managers {
            status.task_managers.push(TaskManagerStatus {
                id: *id,
                address: None,
                role: "worker",
                slots: *slots,
                slots_used: 0,
                state: format!("lost: {reason}"),
                last_heartbeat: Some(*at),
                tasks: 0,
                state_bytes: 0,
            });
        }
        status
    }
}
