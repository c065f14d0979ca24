//! Names of the runtime's parts, shared by the JobManager, TaskManagers, the data plane and
//! the state backends, so that a task, an epoch or a channel means the same thing in every
//! process.

use serde::{Deserialize, Serialize};

/// A job is named by the id of what it maintains (a view or a sink: its [`JobTarget`]).
///
/// [`JobTarget`]: crate::job_graph::JobTarget
pub type JobId = u64;

/// A vertex of a JobGraph: its index in [`JobGraph::vertices`](crate::JobGraph::vertices).
pub type VertexId = usize;

/// Epochs number the intervals between barriers; they only grow.
pub type Epoch = u64;

/// A channel between two tasks, allocated by the JobManager and resolved by the data plane.
pub type ChannelId = u64;

/// Keyed state and hash exchanges split the key space into this many key groups: a key's
/// hash picks its group, and a vertex of parallelism `p` gives each subtask a contiguous
/// range of groups. It is also the highest parallelism a keyed vertex can have. Rescaling
/// reassigns ranges of groups; changing this number would re-key all stored state.
pub const KEY_GROUPS: u16 = 128;

/// One subtask of one vertex of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TaskId {
    pub job: JobId,
    pub vertex: VertexId,
    pub subtask: usize,
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "job {} vertex {} subtask {}", self.job, self.vertex, self.subtask)
    }
}
