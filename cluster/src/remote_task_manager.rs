//! A TaskManager in another process, as the JobManager sees it: every [`TaskManager`] call
//! becomes a command on that process's control stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot};
use weir_executor::data_plane::ChannelId;
use weir_executor::message::Barrier;
use weir_executor::task::TaskId;
use weir_executor::task_manager::{TaskDescriptor, TaskManager, TaskManagerRole};
use weir_executor::{ExecError, ExecResult};

use crate::proto::job_manager_message::Kind;
use crate::proto::{self, JobManagerMessage};

pub struct RemoteTaskManager {
    pub(crate) id: usize,
    pub(crate) slots: usize,
    pub(crate) data_address: String,
    pub(crate) commands: mpsc::UnboundedSender<JobManagerMessage>,
    pub(crate) last_heartbeat: Arc<Mutex<SystemTime>>,
    /// Who waits for the TaskManager's `JobFenced` of each dropped job.
    pub(crate) fences: Arc<DropFences>,
}

/// The fences of dropped jobs a TaskManager has not confirmed yet (see
/// [`TaskManager::fence_dropped_job`]).
#[derive(Default)]
pub struct DropFences(Mutex<FenceState>);

#[derive(Default)]
struct FenceState {
    waiting: HashMap<u64, Vec<oneshot::Sender<()>>>,
    /// The TaskManager's control stream ended: it writes nothing more.
    gone: bool,
}

impl DropFences {
    /// Resolves when the TaskManager confirms `job` fenced, or (with an error) once it is gone.
    fn wait_for(&self, job: u64) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut state) = self.0.lock() {
            if !state.gone {
                state.waiting.entry(job).or_default().push(tx);
            }
        }
        rx
    }

    /// The TaskManager confirmed `job` fenced.
    pub(crate) fn fenced(&self, job: u64) {
        let waiters = self.0.lock().ok().and_then(|mut s| s.waiting.remove(&job)).unwrap_or_default();
        for waiter in waiters {
            let _ = waiter.send(());
        }
    }

    /// The TaskManager is gone: it writes nothing more (its lease runs out), nobody need
    /// wait for it.
    pub(crate) fn release_all(&self) {
        if let Ok(mut state) = self.0.lock() {
            state.gone = true;
            state.waiting.clear();
        }
    }
}

impl RemoteTaskManager {
    fn send(&self, kind: Kind) -> ExecResult<()> {
        self.commands
            .send(JobManagerMessage { kind: Some(kind) })
            .map_err(|_| ExecError::ChannelClosed(format!("taskmanager {} is gone", self.id)))
    }
}

fn encoding(e: serde_json::Error) -> ExecError {
    ExecError::Internal(format!("cannot encode a control message: {e}"))
}

impl TaskManager for RemoteTaskManager {
    fn id(&self) -> usize {
        self.id
    }

    fn slots(&self) -> usize {
        self.slots
    }

    fn role(&self) -> TaskManagerRole {
        TaskManagerRole::Worker
    }

    fn data_address(&self) -> Option<String> {
        Some(self.data_address.clone())
    }

    fn last_heartbeat(&self) -> Option<SystemTime> {
        self.last_heartbeat.lock().ok().map(|t| *t)
    }

    /// Sends the task; a task that cannot be built there is reported failed by the
    /// TaskManager, which fails the job like any task failure.
    fn deploy(&self, task: TaskDescriptor) -> ExecResult<()> {
        let descriptor_json = serde_json::to_vec(&task).map_err(encoding)?;
        self.send(Kind::Deploy(proto::DeployTask { descriptor_json }))
    }

    fn inject_barrier(&self, task: TaskId, barrier: Barrier) -> ExecResult<()> {
        let barrier_json = serde_json::to_vec(&barrier).map_err(encoding)?;
        let task = proto::TaskId { job: task.job, vertex: task.vertex as u64, subtask: task.subtask as u64 };
        self.send(Kind::Barrier(proto::InjectBarrier { task: Some(task), barrier_json }))
    }

    fn cancel_job(&self, job: u64) {
        let _ = self.send(Kind::Cancel(proto::CancelJob { job, dropped: false }));
    }

    fn fence_dropped_job(&self, job: u64) -> Option<oneshot::Receiver<()>> {
        let fenced = self.fences.wait_for(job);
        // A TaskManager that is gone cannot answer, nor write any more.
        self.send(Kind::Cancel(proto::CancelJob { job, dropped: true })).ok()?;
        Some(fenced)
    }

    fn release_channels(&self, channels: &[ChannelId]) {
        let _ = self.send(Kind::Release(proto::ReleaseChannels { channels: channels.to_vec() }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_resolves_when_confirmed_or_when_its_taskmanager_is_gone() {
        let fences = DropFences::default();
        let mut confirmed = fences.wait_for(7);
        let mut other = fences.wait_for(8);
        fences.fenced(7);
        assert_eq!(confirmed.try_recv(), Ok(()));
        assert!(matches!(other.try_recv(), Err(oneshot::error::TryRecvError::Empty)));
        fences.release_all();
        assert!(matches!(other.try_recv(), Err(oneshot::error::TryRecvError::Closed)));
        let mut late = fences.wait_for(9);
        assert!(matches!(late.try_recv(), Err(oneshot::error::TryRecvError::Closed)), "nothing to wait for");
    }
}
