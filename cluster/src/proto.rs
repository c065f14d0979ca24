//! The generated code of `proto/weir/cluster/v1/cluster.proto`.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

tonic::include_proto!("weir.cluster.v1");

/// The protocol version a TaskManager registers with; the JobManager refuses others.
pub const PROTOCOL_VERSION: u32 = 1;
