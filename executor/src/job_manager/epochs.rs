//! Epochs: barriers injected at every source, and commits once every task of every job
//! taking part has finished an epoch. Views' contents are published per committed epoch,
//! all together, so a query sees every view at one consistent point.

use std::sync::Arc;

use tracing::debug;

use super::{drain_where, Actor};
use crate::error::ExecError;
use crate::message::{Barrier, Mutation};

impl Actor {
    /// Injects the next barrier (not a checkpoint) at every source.
    pub(super) fn inject(&mut self, mutation: Option<Arc<Mutation>>) {
        self.inject_barrier(mutation, false);
    }

    /// Injects the next barrier at every source of every running job that takes part; a
    /// checkpoint barrier starts a checkpoint of every job that takes checkpoints.
    pub(super) fn inject_barrier(&mut self, mutation: Option<Arc<Mutation>>, checkpoint: bool) {
        self.injected += 1;
        let epoch = self.injected;
        let checkpointing = match checkpoint {
            true => {
                self.last_checkpoint = std::time::Instant::now();
                self.trigger_checkpoints(epoch)
            }
            false => Default::default(),
        };
        let mut failed = Vec::new();
        for (id, job) in &self.jobs {
            if !job.running() || job.first_epoch > epoch {
                continue;
            }
            let base_checkpoint =
                job.coordinator.as_ref().and_then(|c| c.latest_committed()).map(|m| m.epoch);
            let barrier =
                Barrier { checkpoint: checkpointing.contains(id), base_checkpoint, ..Barrier::new(epoch) };
            let barrier = Barrier { mutation: mutation.clone(), ..barrier };
            for source in &job.sources {
                let tm = job.tasks.get(source).map(|t| t.tm).unwrap_or(0);
                let result = self
                    .task_managers
                    .iter()
                    .find(|m| m.id() == tm)
                    .ok_or_else(|| ExecError::Internal(format!("no taskmanager {tm}")))
                    .and_then(|m| m.inject_barrier(*source, barrier.clone()));
                match result {
                    // The source has stopped: it failed and reports why itself (its event
                    // may still be queued), or its job is being cancelled.
                    Err(ExecError::ChannelClosed(what)) => debug!(%what, "barrier not delivered"),
                    Err(e) => failed.push((*id, e.to_string(), e.sqlstate())),
                    Ok(()) => {}
                }
            }
        }
        for (job, error, sqlstate) in failed {
            self.fail_job(job, error, sqlstate);
        }
        debug!(epoch = self.injected, "barrier injected");
    }

    /// Commits every epoch whose tasks have all finished it, in order.
    pub(super) fn try_commit(&mut self) {
        while self.committed < self.injected {
            let epoch = self.committed + 1;
            let complete = self
                .jobs
                .values()
                .filter(|j| j.running() && j.first_epoch <= epoch)
                .all(|j| j.tasks.values().all(|t| t.last_epoch.is_some_and(|e| e >= epoch)));
            if !complete {
                break;
            }
            self.view_states.commit(epoch);
            self.committed = epoch;
            for job in self.jobs.values_mut() {
                if job.running() && job.first_epoch <= epoch {
                    job.last_committed = Some(epoch);
                    job.state.committed();
                }
            }
            debug!(epoch, "epoch committed");
        }
        let committed = self.committed;
        for (_, waiter) in drain_where(&mut self.flush_waiters, |(e, _)| *e <= committed) {
            let _ = waiter.send(Ok(committed));
        }
        for (_, _, waiter) in drain_where(&mut self.deploy_waiters, |(_, e, _)| *e <= committed) {
            let _ = waiter.send(Ok(()));
        }
    }
}
