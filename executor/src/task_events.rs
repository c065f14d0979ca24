//! What tasks tell the JobManager, and the endpoint they tell it through.
//!
//! Tasks report finished epochs, checkpoint acknowledgements and failures as
//! [`TaskEvent`]s, plain serializable data, through a [`JobManagerEndpoint`]. In one process
//! the endpoint is the JobManager actor's event channel ([`LocalEndpoint`]); a TaskManager in
//! another process implements it over its control connection.

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::checkpoint_protocol::StatePiece;
use crate::error::{ExecError, ExecResult};
use crate::message::Epoch;
use crate::task::TaskId;

/// What an operator reports at each barrier, for `weir_catalog.watermarks` and `tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorStats {
    pub name: String,
    pub late_rows: u64,
    pub state_rows: u64,
    /// Of `state_rows`, those in memory (absent from reports of older releases).
    #[serde(default)]
    pub state_rows_in_memory: u64,
}

/// What a task tells the JobManager.
///
/// Every event names the deployment of the task's job it comes from (its
/// `TaskDescriptor::deployment`; 0 when the reporter cannot know, which means the current
/// one). A cancelled task does not stop at once, and a task of a JobManager that restarted
/// may still finish an upload, so events of earlier deployments of a job keep coming for a
/// while; the JobManager ignores them rather than failing, committing or checkpointing the
/// current deployment with them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TaskEvent {
    /// The task has processed and forwarded every message of `epoch`.
    EpochDone {
        task: TaskId,
        deployment: u64,
        epoch: Epoch,
        rows_in: u64,
        rows_out: u64,
        /// The task's input watermark (`i64::MIN` before the first one).
        watermark: i64,
        /// Per operator of the chain: (name, late rows dropped so far, state entries).
        operators: Vec<OperatorStats>,
    },
    Failed {
        task: TaskId,
        deployment: u64,
        error: String,
        /// The SQLSTATE of the error ([`ExecError::sqlstate`]), so that the statement that
        /// created the job fails with it (`22012` for a division by zero in a view's query).
        #[serde(default)]
        sqlstate: Option<String>,
    },
    /// The task's state as of checkpoint `epoch` is in the checkpoint store (`piece`, if it
    /// has state); a source task also reports where it will resume from.
    Checkpointed {
        task: TaskId,
        deployment: u64,
        epoch: Epoch,
        /// The task's state: one piece, or a full piece followed by deltas.
        pieces: Vec<StatePiece>,
        source_offset: Option<serde_json::Value>,
    },
    /// The task could not write its state for checkpoint `epoch`.
    CheckpointFailed { task: TaskId, deployment: u64, epoch: Epoch, error: String },
}

impl TaskEvent {
    /// The task failed with `error`.
    pub fn failed(task: TaskId, deployment: u64, error: &ExecError) -> Self {
        TaskEvent::Failed {
            task,
            deployment,
            error: error.to_string(),
            sqlstate: error.sqlstate().map(str::to_string),
        }
    }

    /// The task the event is about.
    pub fn task(&self) -> TaskId {
        match self {
            TaskEvent::EpochDone { task, .. }
            | TaskEvent::Failed { task, .. }
            | TaskEvent::Checkpointed { task, .. }
            | TaskEvent::CheckpointFailed { task, .. } => *task,
        }
    }

    /// The deployment the event comes from (0: the reporter could not tell).
    pub fn deployment(&self) -> u64 {
        match self {
            TaskEvent::EpochDone { deployment, .. }
            | TaskEvent::Failed { deployment, .. }
            | TaskEvent::Checkpointed { deployment, .. }
            | TaskEvent::CheckpointFailed { deployment, .. } => *deployment,
        }
    }
}

/// Where tasks report to the JobManager.
pub trait JobManagerEndpoint: Send + Sync {
    /// Delivers one event; fails only when the JobManager is gone.
    fn report(&self, event: TaskEvent) -> ExecResult<()>;
}

/// The endpoint of a JobManager in this process: its actor's event channel.
pub struct LocalEndpoint {
    events: mpsc::UnboundedSender<TaskEvent>,
}

impl LocalEndpoint {
    /// An endpoint and the receiving end the JobManager actor reads.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<TaskEvent>) {
        let (events, receiver) = mpsc::unbounded_channel();
        (Self { events }, receiver)
    }
}

impl JobManagerEndpoint for LocalEndpoint {
    fn report(&self, event: TaskEvent) -> ExecResult<()> {
        self.events.send(event).map_err(|_| ExecError::ChannelClosed("job manager".into()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::message::{Barrier, Mutation, Subscription};

    /// Control messages cross processes as data: what is sent is what arrives.
    #[test]
    fn control_messages_round_trip_through_serde() {
        let task = TaskId { job: 3, vertex: 1, subtask: 2 };
        let event = TaskEvent::EpochDone {
            task,
            deployment: 77,
            epoch: 9,
            rows_in: 10,
            rows_out: 4,
            watermark: -5,
            operators: vec![OperatorStats {
                name: "HashAggregate".into(),
                late_rows: 1,
                state_rows: 7,
                state_rows_in_memory: 7,
            }],
        };
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(serde_json::to_string(&serde_json::from_str::<TaskEvent>(&json).unwrap()).unwrap(), json);

        let subscription = Subscription { view_id: 4, channels: vec![11, 12] };
        let barrier = Barrier {
            mutation: Some(Arc::new(Mutation::Subscribe(vec![subscription]))),
            source_offset: Some(Arc::new(serde_json::json!({"line": 5}))),
            ..Barrier::checkpoint(9)
        };
        let back: Barrier = serde_json::from_str(&serde_json::to_string(&barrier).unwrap()).unwrap();
        assert_eq!(back.epoch, 9);
        assert!(back.checkpoint);
        assert_eq!(back.source_offset.as_deref(), Some(&serde_json::json!({"line": 5})));
        match back.mutation.as_deref() {
            Some(Mutation::Subscribe(s)) => {
                assert_eq!((s[0].view_id, s[0].channels.clone()), (4, vec![11, 12]))
            }
            other => panic!("mutation lost: {other:?}"),
        }
    }
}
