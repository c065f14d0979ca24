//! A TaskManager in another process, as the JobManager sees it: every [`TaskManager`] call
//! becomes a command on that process's control stream.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::mpsc;
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
        let _ = self.send(Kind::Cancel(proto::CancelJob { job }));
    }

    fn release_channels(&self, channels: &[ChannelId]) {
        let _ = self.send(Kind::Release(proto::ReleaseChannels { channels: channels.to_vec() }));
    }
}
