//! Weir's distributed mode: the JobManager and TaskManagers as separate processes.
//!
//! The executor runs the same tasks in every mode; what differs is how its seams are
//! implemented. Here, the [`TaskManager`](weir_executor::TaskManager) trait is a
//! [`RemoteTaskManager`](remote_task_manager::RemoteTaskManager) whose calls are commands on
//! a gRPC control stream ([`jobmanager`], [`taskmanager`]), task events come back over the
//! same stream, and the [`DataPlane`](weir_executor::data_plane::DataPlane) is a
//! [`NetworkDataPlane`](data_plane::NetworkDataPlane) that carries channels between
//! processes as Arrow IPC frames with credit-based flow control. The protocol is
//! `proto/weir/cluster/v1/cluster.proto`.

pub mod auth;
pub mod data_plane;
pub mod error;
pub mod frame;
pub mod jobmanager;
pub mod proto;
pub mod remote_task_manager;
pub mod taskmanager;
pub mod tls;

pub use auth::ClusterSecret;
pub use error::{ClusterError, ClusterResult};
pub use tls::ClusterTls;
