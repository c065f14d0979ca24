//! A `weir taskmanager` process: serves its data plane, registers with the JobManager over
//! one control stream, runs the tasks it is sent in its slots and reports their events.
//!
//! When the control stream ends (the JobManager restarted, or declared this TaskManager
//! lost after missed heartbeats), every task here is cancelled, since the JobManager
//! restarts their jobs elsewhere, and the TaskManager registers again as a new one. Only a
//! refusal (wrong cluster secret, another protocol version) stops the process.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tonic::{Code, Request};
use tracing::{debug, error, info, warn};
use weir_executor::connectors::{metrics, FileAccess};
use weir_executor::lease::Lease;
use weir_executor::message::Barrier;
use weir_executor::task::{job_prefix, TaskId};
use weir_executor::task_events::{JobManagerEndpoint, TaskEvent};
use weir_executor::task_manager::{StateServices, TaskDescriptor, TaskManager};
use weir_executor::{ExecError, ExecResult, LocalTaskManager};
use weir_storage::{CheckpointStore, S3Options};

use crate::auth::ClusterSecret;
use crate::data_plane::{ExchangeBatching, NetworkDataPlane};
use crate::jobmanager::now_ms;
use crate::proto::job_manager_message::Kind as Command;
use crate::proto::job_manager_service_client::JobManagerServiceClient;
use crate::proto::task_manager_message::Kind as Report;
use crate::proto::{self, Heartbeat, Register, TaskManagerMessage, PROTOCOL_VERSION};
use crate::tls::ClusterTls;

/// Between attempts to reach the JobManager.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

pub struct TaskManagerSettings {
    /// The JobManager's rpc address, `HOST:PORT`.
    pub jobmanager: String,
    pub slots: usize,
    /// Where the data service listens (`HOST:PORT`; port 0 picks one).
    pub listen_data: String,
    /// The data address other processes use; by default the listening address.
    pub advertise_data: Option<String>,
    pub secret: ClusterSecret,
    /// TLS for the data service, the data plane's connections and the control stream.
    pub tls: Option<ClusterTls>,
    /// How small batches are coalesced before they cross to another process.
    pub batching: ExchangeBatching,
    /// Keyed state backend and cache; checkpoints go where the JobManager says.
    pub state: StateServices,
    pub files: FileAccess,
    /// The most splits a source may have, and the threads connector reads run on.
    pub split_limit: weir_executor::connectors::SplitLimit,
    pub readers: weir_executor::sources::reader_pool::ReaderPool,
    /// How this process reaches an `s3://` checkpoint store (its own credentials; the
    /// JobManager sends only the store's URL).
    pub s3: S3Options,
}

/// Runs the TaskManager until it is refused or its data service fails.
pub async fn run(settings: TaskManagerSettings) -> Result<(), String> {
    let plane =
        NetworkDataPlane::configured(settings.secret.clone(), settings.tls.clone(), settings.batching);
    let listener = TcpListener::bind(&settings.listen_data)
        .await
        .map_err(|e| format!("cannot listen for data on {}: {e}", settings.listen_data))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let data_address = match &settings.advertise_data {
        Some(address) => address.clone(),
        None if bound.ip().is_unspecified() => {
            return Err(format!(
                "--listen-data {} listens on every interface: give the address other processes reach it at with cluster.advertise_data",
                settings.listen_data
            ))
        }
        None => bound.to_string(),
    };
    let service = plane.service();
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &settings.tls {
        builder = builder.tls_config(tls.server()).map_err(|e| format!("cluster TLS: {e}"))?;
    }
    let server = tokio::spawn(async move {
        builder
            .tcp_nodelay(true)
            .initial_connection_window_size(crate::data_plane::CONNECTION_WINDOW_BYTES)
            .initial_stream_window_size(crate::data_plane::STREAM_WINDOW_BYTES)
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
    });
    info!(data = %data_address, slots = settings.slots, jobmanager = %settings.jobmanager, "taskmanager started");
    let mut attempt = 0u64;
    loop {
        if server.is_finished() {
            return Err("the data service stopped".into());
        }
        match session(&settings, &plane, &data_address).await {
            Ok(()) => info!("the JobManager closed the control stream; registering again"),
            Err(Refused(reason)) => {
                error!(reason = %reason, "the JobManager refused this taskmanager");
                return Err(format!("refused by the JobManager: {reason}"));
            }
            Err(Retry(reason)) => {
                attempt += 1;
                if attempt == 1 || attempt.is_multiple_of(30) {
                    warn!(jobmanager = %settings.jobmanager, reason = %reason, attempt, "cannot reach the JobManager; retrying");
                }
            }
        }
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

enum SessionEnd {
    /// Worth trying again (the JobManager is not up yet, or restarted).
    Retry(String),
    /// The JobManager will never take this process as it is configured.
    Refused(String),
}
use SessionEnd::{Refused, Retry};

/// One registration: runs tasks until the control stream ends.
async fn session(
    settings: &TaskManagerSettings,
    plane: &Arc<NetworkDataPlane>,
    data_address: &str,
) -> Result<(), SessionEnd> {
    let endpoint = ClusterTls::endpoint(settings.tls.as_ref(), &settings.jobmanager)
        .map_err(|e| Refused(format!("--jobmanager {}: {e}", settings.jobmanager)))?
        .tcp_nodelay(true);
    let channel = endpoint.connect().await.map_err(|e| Retry(e.to_string()))?;
    let mut client = JobManagerServiceClient::new(channel).max_decoding_message_size(256 << 20);
    let (reports, outgoing) = mpsc::unbounded_channel();
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let register = Register {
        protocol_version: PROTOCOL_VERSION,
        slots: settings.slots as u32,
        data_address: data_address.to_string(),
        host,
    };
    let _ = reports.send(TaskManagerMessage { kind: Some(Report::Register(register)) });
    let mut request = Request::new(UnboundedReceiverStream::new(outgoing));
    settings.secret.attach(&mut request).map_err(|s| Refused(s.message().to_string()))?;
    let mut commands = match client.control(request).await {
        Ok(response) => response.into_inner(),
        Err(status)
            if matches!(
                status.code(),
                Code::Unauthenticated | Code::FailedPrecondition | Code::InvalidArgument
            ) =>
        {
            return Err(Refused(status.message().to_string()))
        }
        Err(status) => return Err(Retry(status.message().to_string())),
    };
    let registered = match commands.message().await {
        Ok(Some(proto::JobManagerMessage { kind: Some(Command::Registered(r)) })) => r,
        Ok(_) => return Err(Retry("the JobManager did not confirm the registration".into())),
        Err(status) => return Err(Retry(status.message().to_string())),
    };
    let id = registered.taskmanager_id as usize;
    let endpoint: Arc<ControlEndpoint> = Arc::new(ControlEndpoint { reports: reports.clone() });
    plane.report_to(endpoint.clone());
    let mut state = settings.state.clone();
    state.checkpoints = match registered.checkpoint_store.as_str() {
        "" => None,
        store => Some(
            CheckpointStore::open_with(store, &settings.s3)
                .map_err(|e| Refused(format!("checkpoint store {store}: {e}")))?,
        ),
    };
    // Until the first heartbeat is answered, the registration itself is the JobManager's
    // word; a JobManager of this release always sends its timeout.
    let timeout = Duration::from_millis(registered.heartbeat_timeout_ms.max(1));
    let lease = Lease::valid_for(timeout);
    let drop_fence = DropFence { checkpoints: state.checkpoints.clone(), reports: reports.clone() };
    let tm = LocalTaskManager::worker(id, settings.slots, plane.clone(), endpoint.clone())
        .with_lease(lease.clone())
        .with_state(state)
        .with_file_access(settings.files.clone())
        .with_source_readers(settings.split_limit, settings.readers.clone())
        .with_data_address(data_address.to_string());
    info!(taskmanager = id, "registered with the JobManager");
    let interval = Duration::from_millis(registered.heartbeat_interval_ms.max(10));
    // When each unanswered heartbeat was sent: its answer renews the lease from then.
    let sent: Arc<Mutex<VecDeque<(u64, Instant)>>> = Arc::default();
    let unanswered = sent.clone();
    let heartbeats = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        let mut sequence = 0u64;
        loop {
            ticker.tick().await;
            sequence += 1;
            if let Ok(mut sent) = unanswered.lock() {
                sent.push_back((sequence, Instant::now()));
                // Answers that never came (the lease runs out without them).
                while sent.len() > 1024 {
                    sent.pop_front();
                }
            }
            let sources_json = serde_json::to_vec(&metrics::reports()).unwrap_or_default();
            let beat = Heartbeat { sent_unix_ms: now_ms(), sources_json, sequence };
            let beat = TaskManagerMessage { kind: Some(Report::Heartbeat(beat)) };
            if reports.send(beat).is_err() {
                return;
            }
        }
    });
    let ended = loop {
        match commands.message().await {
            Ok(Some(proto::JobManagerMessage { kind: Some(Command::HeartbeatAck(ack)) })) => {
                if let Ok(mut sent) = sent.lock() {
                    while let Some(&(sequence, at)) = sent.front() {
                        if sequence > ack.sequence {
                            break;
                        }
                        sent.pop_front();
                        if sequence == ack.sequence {
                            lease.extend_to(at + timeout);
                        }
                    }
                }
            }
            Ok(Some(message)) => {
                if let Some(command) = message.kind {
                    handle(&tm, &*endpoint, &drop_fence, command);
                }
            }
            Ok(None) => break "closed".to_string(),
            Err(status) => break status.message().to_string(),
        }
    };
    // The JobManager no longer counts on this process: nothing more is written for the
    // tasks it ran, even before they have all stopped.
    lease.revoke();
    heartbeats.abort();
    tm.cancel_all();
    plane.reset();
    info!(taskmanager = id, reason = %ended, "control stream ended; every task here was cancelled");
    Ok(())
}

/// What a TaskManager does for a dropped job besides cancelling its tasks: it refuses the
/// job's checkpoint writes and tells the JobManager once those under way have ended.
struct DropFence {
    checkpoints: Option<CheckpointStore>,
    reports: mpsc::UnboundedSender<TaskManagerMessage>,
}

impl DropFence {
    fn dropped(&self, job: u64) {
        let (checkpoints, reports) = (self.checkpoints.clone(), self.reports.clone());
        tokio::spawn(async move {
            if let Some(store) = checkpoints {
                store.fence_prefix(&format!("{}/", job_prefix(job))).await;
            }
            debug!(job, "checkpoint uploads of the dropped job fenced");
            let _ = reports.send(TaskManagerMessage { kind: Some(Report::Fenced(proto::JobFenced { job })) });
        });
    }
}

fn handle(tm: &LocalTaskManager, events: &dyn JobManagerEndpoint, drop_fence: &DropFence, command: Command) {
    match command {
        Command::Deploy(deploy) => {
            let desc: TaskDescriptor = match serde_json::from_slice(&deploy.descriptor_json) {
                Ok(desc) => desc,
                Err(e) => {
                    error!(error = %e, "a task descriptor this taskmanager cannot read");
                    return;
                }
            };
            let (task, deployment) = (desc.id, desc.deployment);
            if let Err(e) = tm.deploy(desc) {
                let _ = events.report(TaskEvent::failed(task, deployment, &e));
            }
        }
        Command::Barrier(inject) => {
            let Some(task) = inject.task else { return };
            let task = TaskId { job: task.job, vertex: task.vertex as usize, subtask: task.subtask as usize };
            let result = serde_json::from_slice::<Barrier>(&inject.barrier_json)
                .map_err(|e| ExecError::Internal(format!("malformed barrier: {e}")))
                .and_then(|barrier| tm.inject_barrier(task, barrier));
            match result {
                Ok(()) => {}
                // The source stopped; it reports why itself, or its job is being cancelled.
                Err(ExecError::ChannelClosed(what)) => debug!(%what, "barrier not delivered"),
                // A barrier is for the job's current deployment (0: the current one).
                Err(e) => {
                    let _ = events.report(TaskEvent::failed(task, 0, &e));
                }
            }
        }
        Command::Cancel(cancel) => {
            tm.cancel_job(cancel.job);
            // Its readers are gone from this process; the frontend keeps their last figures.
            metrics::unregister_job(cancel.job);
            if cancel.dropped {
                drop_fence.dropped(cancel.job);
            }
        }
        Command::Release(release) => tm.release_channels(&release.channels),
        Command::Registered(_) | Command::HeartbeatAck(_) => {}
    }
}

/// Task events go to the JobManager on the control stream.
struct ControlEndpoint {
    reports: mpsc::UnboundedSender<TaskManagerMessage>,
}

impl JobManagerEndpoint for ControlEndpoint {
    fn report(&self, event: TaskEvent) -> ExecResult<()> {
        if let TaskEvent::EpochDone { task, .. } = &event {
            // A source task's reader figures go first, so that once the epoch commits the
            // frontend's `weir_catalog.sources` shows at least what the epoch read.
            let readers = metrics::reports_where(|t| t == task);
            if !readers.is_empty() {
                let sources_json = serde_json::to_vec(&readers).unwrap_or_default();
                let beat = Heartbeat { sent_unix_ms: now_ms(), sources_json, sequence: 0 };
                let _ = self.reports.send(TaskManagerMessage { kind: Some(Report::Heartbeat(beat)) });
            }
        }
        let event_json = serde_json::to_vec(&event)
            .map_err(|e| ExecError::Internal(format!("cannot encode a task event: {e}")))?;
        self.reports
            .send(TaskManagerMessage { kind: Some(Report::Event(proto::TaskEvent { event_json })) })
            .map_err(|_| ExecError::ChannelClosed("the JobManager's control stream".into()))
    }
}
