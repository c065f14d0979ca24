//! A job's lifecycle as an explicit state machine, and the actor's transitions of it:
//! stopping (DROP) and failing (a task error), which also fails the jobs reading its view.
//!
//! ```text
//!   deploy ──▶ Creating ──first epoch committed──▶ Running
//!                 │                                   │
//!                 └──────────── task failed ──────────┴──▶ Failed ──backoff──▶ Restarting
//!                                                                               │
//!                        Running ◀──first epoch after the restart committed─────┘
//!
//!   Running ──ALTER … SET PARALLELISM──▶ Rescaling ──(its tasks stopped)──▶ Restarting
//! ```
//! A dropped job leaves the table of jobs in any state.

use tracing::{error, info, warn};

use super::{drain_where, Actor};
use crate::error::ExecError;

/// Where a job is in its life, as `weir_catalog.jobs` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Deployed for the first time; its first epoch (the backfill) is not committed yet.
    Creating,
    /// Deployed again after a failure, from its latest checkpoint; its first epoch since is
    /// not committed yet.
    Restarting,
    /// Every epoch it takes part in commits.
    Running,
    /// A task failed; its tasks are stopped until the restart.
    Failed { reason: String },
    /// Not enough free worker slots: it runs once TaskManagers with enough slots register.
    WaitingForSlots { needed: usize, free: usize },
    /// Stopped to be deployed again at another parallelism (`ALTER … SET PARALLELISM`).
    Rescaling { parallelism: usize },
}

impl JobState {
    /// The state of a job just deployed (`restarts` times before).
    pub fn deployed(restarts: u32) -> Self {
        match restarts {
            0 => JobState::Creating,
            _ => JobState::Restarting,
        }
    }

    /// An epoch of the job committed.
    pub fn committed(&mut self) {
        if matches!(self, JobState::Creating | JobState::Restarting) {
            *self = JobState::Running;
        }
    }

    /// The status column of `weir_catalog.jobs`.
    pub fn label(&self) -> String {
        match self {
            JobState::Creating => "creating".into(),
            JobState::Restarting => "restarting".into(),
            JobState::Running => "running".into(),
            JobState::Failed { reason } => format!("failed: {reason}"),
            JobState::WaitingForSlots { .. } => "waiting_for_slots".into(),
            JobState::Rescaling { parallelism } => format!("rescaling to {parallelism}"),
        }
    }
}

impl Actor {
    pub(super) fn stop_job(&mut self, job_id: u64) {
        if let Some(job) = self.jobs.remove(&job_id) {
            for tm in &self.task_managers {
                tm.cancel_job(job_id);
            }
            self.release_channels(&job.channels);
            crate::connectors::metrics::unregister_job(job_id);
            self.forget_checkpoints(job_id);
            info!(job = %job.graph.target.name, "job stopped");
        }
        for (_, _, waiter) in drain_where(&mut self.deploy_waiters, |(v, _, _)| *v == job_id) {
            let _ = waiter
                .send(Err(ExecError::Internal("the view was dropped while it was being created".into())));
        }
    }

    /// Marks a job failed, stops its tasks, and fails the jobs that read its view. A
    /// statement waiting for the job to start fails with `sqlstate`, the code of the error
    /// that failed the job (`XX000` when it has none).
    pub(super) fn fail_job(&mut self, job_id: u64, reason: String, sqlstate: Option<&'static str>) {
        let Some(job) = self.jobs.get_mut(&job_id) else { return };
        if !job.running() {
            return;
        }
        error!(job = %job.graph.target.name, reason = %reason, restarts = job.restarts, "job failed");
        job.state = JobState::Failed { reason: reason.clone() };
        job.last_failure = Some(reason.clone());
        let abandoned = job.coordinator.as_mut().map(|c| c.abandon_all()).unwrap_or_default();
        self.checkpoints_abandoned(job_id, abandoned);
        self.schedule_restart(job_id);
        // Some partitions may have finished an epoch the others never will.
        self.view_states.freeze(job_id);
        for tm in &self.task_managers {
            tm.cancel_job(job_id);
        }
        for (_, _, waiter) in drain_where(&mut self.deploy_waiters, |(v, _, _)| *v == job_id) {
            let _ = waiter.send(Err(ExecError::JobFailed { reason: reason.clone(), sqlstate }));
        }
        // FLUSHes waiting for an epoch this job takes part in will not see it commit there.
        if let Some(job) = self.jobs.get(&job_id) {
            let first_epoch = job.first_epoch;
            for (_, waiter) in drain_where(&mut self.flush_waiters, |(epoch, _)| *epoch >= first_epoch) {
                let _ = waiter.send(Err(ExecError::ViewFailed {
                    view: job.graph.target.name.clone(),
                    reason: reason.clone(),
                }));
            }
        }
        let readers: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.graph.view_inputs().contains(&job_id))
            .map(|(id, _)| *id)
            .collect();
        let name = self.jobs.get(&job_id).map(|j| j.graph.target.name.clone()).unwrap_or_default();
        for reader in readers {
            warn!(job_id = reader, "failing a job whose input view failed");
            // 55000: the reader is fine, the view it reads is not.
            self.fail_job(reader, format!("input view \"{name}\" failed"), Some("55000"));
        }
        self.try_commit();
    }
}

#[cfg(test)]
mod tests {
    use super::JobState;

    #[test]
    fn a_job_runs_once_its_first_epoch_commits_and_shows_why_it_failed() {
        let mut state = JobState::deployed(0);
        assert_eq!(state.label(), "creating");
        state.committed();
        assert_eq!(state, JobState::Running);
        let mut restarted = JobState::deployed(2);
        assert_eq!(restarted.label(), "restarting");
        restarted.committed();
        assert_eq!(restarted.label(), "running");
        let mut failed = JobState::Failed { reason: "boom".into() };
        failed.committed();
        assert_eq!(failed.label(), "failed: boom");
    }
}
