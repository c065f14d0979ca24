//! Errors of the streaming runtime. Each says which layer failed; task-level failures are
//! wrapped with the operator and epoch they happened in. Each variant carries the SQLSTATE
//! a client gets for it ([`ExecError::sqlstate`]).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ExecError {
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error(transparent)]
    Storage(#[from] weir_storage::StorageError),
    #[error(transparent)]
    Plan(#[from] weir_plan::PlanError),
    /// The JobGraph cannot be deployed as written (a planner bug or a stale catalog entry).
    #[error("invalid job graph: {0}")]
    InvalidGraph(String),
    /// A peer task or the JobManager went away.
    #[error("channel closed: {0}")]
    ChannelClosed(String),
    /// A source's definition or input is wrong in a way the user must fix (SQLSTATE 22023
    /// at CREATE time).
    #[error("{0}")]
    Connector(String),
    /// A file source or sink names a file outside `[file] allowed_dirs` (SQLSTATE 42501).
    #[error("{0}")]
    PermissionDenied(String),
    /// The cluster's free task slots are fewer than a job's highest parallelism: the job
    /// waits for TaskManagers to register (SQLSTATE 53000).
    #[error("the job needs {needed} free task slots and the cluster has {free}; start more taskmanagers or lower the parallelism")]
    NotEnoughSlots { needed: usize, free: usize },
    /// A write refused because this TaskManager lost its lease: the JobManager may have
    /// moved its jobs elsewhere (see `lease`).
    #[error("{0}")]
    Fenced(String),
    /// A date, time or interval result out of its type's range (SQLSTATE 22008).
    #[error("{0}")]
    DatetimeOverflow(String),
    /// Text that does not read as the date/time template says (SQLSTATE 22007).
    #[error("{0}")]
    InvalidDatetimeFormat(String),
    /// A feature Weir does not have, said so (SQLSTATE 0A000).
    #[error("{0}")]
    Unsupported(String),
    /// A statement asks for more than a limit the server's configuration sets (SQLSTATE
    /// 53400); the message names the setting to raise.
    #[error("{0}")]
    LimitExceeded(String),
    /// Likely a bug in Weir.
    #[error("internal error: {0}")]
    Internal(String),
    #[error("operator {operator} (epoch {epoch}): {source}")]
    InOperator { operator: String, epoch: u64, source: Box<ExecError> },
}

pub type ExecResult<T> = Result<T, ExecError>;

impl ExecError {
    /// The SQLSTATE a client gets for this error; `None` for wrapped errors of other
    /// libraries (Arrow, DataFusion), whose codes the server derives from their own variants.
    pub fn sqlstate(&self) -> Option<&'static str> {
        match self {
            ExecError::Arrow(_) | ExecError::DataFusion(_) => None,
            ExecError::Storage(e) => Some(e.sqlstate()),
            ExecError::Plan(_)
            | ExecError::InvalidGraph(_)
            | ExecError::Internal(_)
            | ExecError::ChannelClosed(_)
            | ExecError::Fenced(_) => Some("XX000"),
            ExecError::Connector(_) => Some("22023"),
            ExecError::PermissionDenied(_) => Some("42501"),
            ExecError::NotEnoughSlots { .. } => Some("53000"),
            ExecError::DatetimeOverflow(_) => Some("22008"),
            ExecError::InvalidDatetimeFormat(_) => Some("22007"),
            ExecError::Unsupported(_) => Some("0A000"),
            ExecError::LimitExceeded(_) => Some("53400"),
            ExecError::InOperator { source, .. } => source.sqlstate(),
        }
    }

    pub fn in_operator(self, operator: &str, epoch: u64) -> Self {
        ExecError::InOperator { operator: operator.to_string(), epoch, source: Box::new(self) }
    }
}
