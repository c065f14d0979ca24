//! Errors of the cluster layer: a peer that speaks the protocol wrongly, a transport that
//! fails, or a runtime error from the executor underneath.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("cluster protocol error: {0}")]
    Protocol(String),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("malformed JSON document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("{0}")]
    Status(#[from] tonic::Status),
    #[error(transparent)]
    Exec(#[from] weir_executor::ExecError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type ClusterResult<T> = Result<T, ClusterError>;
