//! What `weir_catalog.jobs`, `tasks`, `watermarks` and `checkpoints` show of the
//! JobManager.

use std::time::SystemTime;

use super::checkpoints::CheckpointRecord;
use super::Actor;
use crate::message::Epoch;
use crate::task_events::OperatorStats;

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

#[derive(Debug, Clone, Default)]
pub struct ClusterStatus {
    pub jobs: Vec<JobStatus>,
    pub tasks: Vec<TaskStatus>,
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
        status
    }
}
