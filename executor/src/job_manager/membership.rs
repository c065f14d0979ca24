//! TaskManagers joining and leaving. A worker that registers adds its slots, and jobs
//! waiting for slots are placed again; a worker that is lost (its control connection broke
//! or its heartbeats stopped) fails every job with a task on it, and those jobs restart
//! from their latest committed checkpoints on the slots that remain, exactly once: an epoch
//! commits only when every task of it has finished it, so nothing the lost worker held
//! past the last commit counts.

use std::sync::Arc;
use std::time::SystemTime;

use tracing::{info, warn};
use weir_plan::JobGraph;

use super::checkpoints::Recovered;
use super::lifecycle::JobState;
use super::{Actor, Job};
use crate::task_manager::TaskManager;

/// Lost TaskManagers `weir_catalog.taskmanagers` keeps showing.
const LOST_KEPT: usize = 16;

impl Actor {
    pub(super) fn add_task_manager(&mut self, tm: Arc<dyn TaskManager>) {
        info!(taskmanager = tm.id(), slots = tm.slots(), address = ?tm.data_address(), "taskmanager registered");
        self.task_managers.retain(|m| m.id() != tm.id());
        self.task_managers.push(tm);
        let waiting: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, job)| matches!(job.state, JobState::WaitingForSlots { .. }))
            .map(|(id, _)| *id)
            .collect();
        for view_id in waiting {
            self.restart(view_id);
        }
    }

    pub(super) fn task_manager_lost(&mut self, id: usize, reason: String) {
        let Some(position) = self.task_managers.iter().position(|m| m.id() == id) else { return };
        let tm = self.task_managers.remove(position);
        warn!(taskmanager = id, reason = %reason, "taskmanager lost");
        self.lost_task_managers.insert(id, (tm.slots(), reason.clone(), SystemTime::now()));
        while self.lost_task_managers.len() > LOST_KEPT {
            self.lost_task_managers.pop_first();
        }
        let affected: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, job)| job.running() && job.tasks.values().any(|t| t.tm == id))
            .map(|(job_id, _)| *job_id)
            .collect();
        for job in affected {
            self.fail_job(job, format!("taskmanager {id} lost: {reason}"), None);
        }
    }

    /// Records a new job that cannot be placed yet; it is deployed when slots appear.
    pub(super) fn wait_for_slots(
        &mut self,
        graph: JobGraph,
        restore: Option<Recovered>,
        needed: usize,
        free: usize,
    ) {
        warn!(job = %graph.target.name, needed, free, "job waiting for task slots");
        let job = Job {
            graph: graph.clone(),
            created: SystemTime::now(),
            state: JobState::WaitingForSlots { needed, free },
            coordinator: None,
            restarts: 0,
            last_failure: None,
            first_epoch: crate::message::Epoch::MAX,
            last_committed: None,
            tasks: Default::default(),
            sources: Vec::new(),
            channels: Vec::new(),
            deployment: 0,
            pending_restore: restore,
        };
        self.jobs.insert(graph.id(), job);
    }
}
