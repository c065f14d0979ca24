//! The one way a plan can be wrong: it does not describe a runnable graph.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum PlanError {
    /// The JobGraph cannot be deployed as written (a planner bug or a stale catalog entry).
    #[error("invalid job graph: {0}")]
    InvalidGraph(String),
}

pub type PlanResult<T> = Result<T, PlanError>;
