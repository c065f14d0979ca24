//! The actor's loop: commands from [`JobManager`](super::JobManager) handles, events from
//! tasks, and the barrier timer, handled one at a time so the JobManager's state needs no
//! locks.

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::debug;

use super::{Actor, Command};
use crate::error::ExecError;
use crate::message::Mutation;
use crate::task_events::TaskEvent;

impl Actor {
    pub(super) async fn run(
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
                    self.expire_checkpoints();
                    if self.injected - self.committed < self.config.max_epochs_in_flight {
                        let checkpoint = self.checkpoint_due();
                        self.inject_barrier(None, checkpoint);
                        self.try_commit();
                    }
                }
            }
        }
    }

    pub(super) fn handle_command(&mut self, command: Command) {
        match command {
            Command::Deploy { graph, restore, reply } => {
                let view_id = graph.id();
                match self.deploy(graph.clone(), restore.clone()) {
                    Ok(first_epoch) => {
                        self.deploy_waiters.push((view_id, first_epoch, reply));
                        // Do not wait for the timer: the first barrier closes the backfill.
                        while self.injected < first_epoch {
                            self.inject(None);
                        }
                        self.try_commit();
                    }
                    Err(ExecError::NotEnoughSlots { needed, free }) => {
                        self.wait_for_slots(graph, restore, needed, free);
                        // The statement returns once the job runs and its first epoch commits.
                        self.deploy_waiters.push((view_id, crate::message::Epoch::MAX, reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::AddTaskManager { tm } => self.add_task_manager(tm),
            Command::TaskManagerLost { id, reason } => self.task_manager_lost(id, reason),
            Command::Drop { view_id, reply } => {
                self.stop_job(view_id);
                self.view_states.remove(view_id);
                self.try_commit();
                // Asked of every TaskManager, also when the job was stopped already (an
                // undone CREATE stops it first): any of them may have run a task of it.
                let fences =
                    self.task_managers.iter().filter_map(|tm| tm.fence_dropped_job(view_id)).collect();
                let _ = reply.send(fences);
            }
            Command::Flush { reply } => {
                // A failed view would be skipped: FLUSH says so instead of succeeding.
                if let Some(failed) = self.jobs.values().find_map(|job| job.failure()) {
                    let _ = reply.send(Err(failed));
                    return;
                }
                self.inject(None);
                self.flush_waiters.push((self.injected, reply));
                self.try_commit();
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::StartAt { epoch } => {
                if self.jobs.is_empty() && epoch > self.injected {
                    self.injected = epoch;
                    self.committed = epoch;
                }
            }
            Command::Restart { view_id } => self.restart(view_id),
            Command::Rescale { graph, reply } => self.rescale(graph, reply),
            Command::InjectFailure { view_id, reply } => {
                let result = match self.jobs.get(&view_id) {
                    Some(job) if job.running() => {
                        self.inject(Some(Arc::new(Mutation::InjectFailure { job: view_id })));
                        Ok(())
                    }
                    _ => Err(ExecError::InvalidGraph(format!("job {view_id} is not running"))),
                };
                let _ = reply.send(result);
            }
            Command::CheckpointWritten { job, epoch, result } => self.checkpoint_written(job, epoch, result),
        }
    }

    pub(super) fn handle_event(&mut self, event: TaskEvent) {
        let (task, deployment) = (event.task(), event.deployment());
        let current = self.jobs.get(&task.job).map(|j| j.deployment);
        if deployment != 0 && current.is_some_and(|current| current != deployment) {
            debug!(%task, deployment, "an event of an earlier deployment of the job, ignored");
            return;
        }
        match event {
            TaskEvent::EpochDone { task, epoch, rows_in, rows_out, watermark, operators, .. } => {
                if let Some(state) = self.jobs.get_mut(&task.job).and_then(|j| j.tasks.get_mut(&task)) {
                    state.last_epoch = Some(epoch);
                    state.rows_in = rows_in;
                    state.rows_out = rows_out;
                    state.watermark = watermark;
                    state.operator_stats = operators;
                }
                self.try_commit();
            }
            TaskEvent::Failed { task, error, sqlstate, .. } => {
                // Which TaskManager it ran on, when there are several kinds.
                let on = self
                    .jobs
                    .get(&task.job)
                    .and_then(|j| j.tasks.get(&task))
                    .map(|t| t.tm)
                    .and_then(|tm| self.task_managers.iter().find(|m| m.id() == tm))
                    .filter(|tm| tm.role() == crate::task_manager::TaskManagerRole::Worker)
                    .map(|tm| format!(" on taskmanager {}", tm.id()))
                    .unwrap_or_default();
                let sqlstate = sqlstate.as_deref().and_then(crate::error::known_sqlstate);
                self.fail_job(task.job, format!("{task}{on}: {error}"), sqlstate)
            }
            TaskEvent::Checkpointed { task, epoch, pieces, source_offset, .. } => {
                self.checkpoint_acknowledged(task, epoch, pieces, source_offset)
            }
            TaskEvent::CheckpointFailed { task, epoch, error, .. } => {
                self.checkpoint_declined(task, epoch, error)
            }
        }
    }
}
