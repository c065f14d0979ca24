//! The JobManager's side of the cluster: the gRPC server on the rpc address that
//! TaskManagers register with (and that also carries the frontend's data service), and the
//! watch over each registered TaskManager's control stream and heartbeats.
//!
//! A TaskManager is lost when its control stream ends or breaks (a killed process: at
//! once) or when no heartbeat arrives for the heartbeat timeout (a stopped or partitioned
//! one). Its jobs then fail and restart from their latest checkpoints on the slots left;
//! if it comes back, it finds its stream closed, cancels its tasks and registers anew.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::Stream;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};
use weir_executor::connectors::metrics;
use weir_executor::task_events::{JobManagerEndpoint, TaskEvent};
use weir_executor::JobManager;

use crate::auth::ClusterSecret;
use crate::data_plane::NetworkDataPlane;
use crate::proto::job_manager_message::Kind as Command;
use crate::proto::job_manager_service_server::{JobManagerService, JobManagerServiceServer};
use crate::proto::task_manager_message::Kind as Report;
use crate::proto::{HeartbeatAck, JobManagerMessage, Registered, TaskManagerMessage, PROTOCOL_VERSION};
use crate::remote_task_manager::{DropFences, RemoteTaskManager};

/// How the JobManager treats TaskManagers.
#[derive(Clone)]
pub struct ControlSettings {
    pub secret: ClusterSecret,
    /// A TaskManager silent this long is lost.
    pub heartbeat_timeout: Duration,
    /// Where TaskManagers write checkpoint pieces (the JobManager's store); empty when
    /// checkpoints are off.
    pub checkpoint_store: String,
}

impl ControlSettings {
    /// TaskManagers send a heartbeat this often: several per timeout.
    pub fn heartbeat_interval(&self) -> Duration {
        (self.heartbeat_timeout / 4).max(Duration::from_millis(50))
    }
}

pub struct ControlService {
    jobs: JobManager,
    events: Arc<dyn JobManagerEndpoint>,
    settings: ControlSettings,
    /// TaskManager ids; 0 is the frontend's own.
    next_id: AtomicUsize,
}

impl ControlService {
    pub fn new(jobs: JobManager, events: Arc<dyn JobManagerEndpoint>, settings: ControlSettings) -> Self {
        Self { jobs, events, settings, next_id: AtomicUsize::new(1) }
    }
}

type CommandStream = std::pin::Pin<Box<dyn Stream<Item = Result<JobManagerMessage, Status>> + Send>>;

#[tonic::async_trait]
impl JobManagerService for ControlService {
    type ControlStream = CommandStream;

    async fn control(
        &self,
        request: Request<Streaming<TaskManagerMessage>>,
    ) -> Result<Response<CommandStream>, Status> {
        self.settings.secret.check(&request)?;
        let peer = request.remote_addr().map(|a| a.to_string()).unwrap_or_default();
        let mut reports = request.into_inner();
        let register = match reports.message().await? {
            Some(TaskManagerMessage { kind: Some(Report::Register(register)) }) => register,
            _ => return Err(Status::invalid_argument("a control stream starts with Register")),
        };
        if register.protocol_version != PROTOCOL_VERSION {
            warn!(peer = %peer, version = register.protocol_version, "refused a taskmanager of another protocol version");
            return Err(Status::failed_precondition(format!(
                "cluster protocol version {} is not this JobManager's {PROTOCOL_VERSION}: run the same weir release",
                register.protocol_version
            )));
        }
        if register.slots == 0 || register.data_address.is_empty() {
            return Err(Status::invalid_argument("a taskmanager needs at least one slot and a data address"));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (commands, outgoing) = mpsc::unbounded_channel();
        let interval = self.settings.heartbeat_interval();
        let _ = commands.send(JobManagerMessage {
            kind: Some(Command::Registered(Registered {
                taskmanager_id: id as u64,
                heartbeat_interval_ms: interval.as_millis() as u64,
                checkpoint_store: self.settings.checkpoint_store.clone(),
                heartbeat_timeout_ms: self.settings.heartbeat_timeout.as_millis() as u64,
            })),
        });
        let last_heartbeat = Arc::new(Mutex::new(SystemTime::now()));
        let acks = commands.clone();
        let fences = Arc::new(DropFences::default());
        let tm = RemoteTaskManager {
            id,
            slots: register.slots as usize,
            data_address: register.data_address.clone(),
            commands,
            last_heartbeat: last_heartbeat.clone(),
            fences: fences.clone(),
        };
        info!(taskmanager = id, host = %register.host, peer = %peer, slots = register.slots, data = %register.data_address, "taskmanager registering");
        self.jobs.add_task_manager(Arc::new(tm)).map_err(|e| Status::unavailable(e.to_string()))?;
        tokio::spawn(watch(
            id,
            reports,
            acks,
            Answers { last_heartbeat, fences },
            self.jobs.clone(),
            self.events.clone(),
            self.settings.heartbeat_timeout,
        ));
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(outgoing).map(Ok))))
    }
}

/// What a TaskManager's reports update besides the JobManager: when it was last heard
/// from, and who waits for its `JobFenced` answers.
struct Answers {
    last_heartbeat: Arc<Mutex<SystemTime>>,
    fences: Arc<DropFences>,
}

/// Reads one TaskManager's control stream until it ends, breaks or goes silent, then
/// reports the TaskManager lost. Each periodic heartbeat is answered on `acks`, which
/// renews the TaskManager's lease; once this gives up, nothing renews it any more.
async fn watch(
    id: usize,
    mut reports: Streaming<TaskManagerMessage>,
    acks: mpsc::UnboundedSender<JobManagerMessage>,
    answers: Answers,
    jobs: JobManager,
    events: Arc<dyn JobManagerEndpoint>,
    timeout: Duration,
) {
    let Answers { last_heartbeat, fences } = answers;
    let reason = loop {
        match tokio::time::timeout(timeout, reports.message()).await {
            Err(_) => break format!("no heartbeat for {} ms", timeout.as_millis()),
            Ok(Err(e)) => break format!("control stream broke: {}", e.message()),
            Ok(Ok(None)) => break "control stream closed".to_string(),
            Ok(Ok(Some(message))) => match message.kind {
                Some(Report::Heartbeat(beat)) => {
                    if let Ok(mut at) = last_heartbeat.lock() {
                        *at = SystemTime::now();
                    }
                    if beat.sequence != 0 {
                        let ack = HeartbeatAck { sequence: beat.sequence };
                        let _ = acks.send(JobManagerMessage { kind: Some(Command::HeartbeatAck(ack)) });
                    }
                    match serde_json::from_slice::<Vec<metrics::SourceReport>>(&beat.sources_json) {
                        Ok(reports) => metrics::apply_reports(reports),
                        Err(e) if !beat.sources_json.is_empty() => {
                            break format!("sent malformed source figures: {e}")
                        }
                        Err(_) => {}
                    }
                }
                Some(Report::Event(event)) => match serde_json::from_slice::<TaskEvent>(&event.event_json) {
                    Ok(event) => {
                        if let Ok(mut at) = last_heartbeat.lock() {
                            *at = SystemTime::now();
                        }
                        if events.report(event).is_err() {
                            return;
                        }
                    }
                    Err(e) => break format!("sent a malformed task event: {e}"),
                },
                Some(Report::Fenced(fenced)) => fences.fenced(fenced.job),
                Some(Report::Register(_)) | None => break "sent an unexpected control message".to_string(),
            },
        }
    };
    fences.release_all();
    let _ = jobs.task_manager_lost(id, reason);
}

/// Serves the control service and the frontend's data service on `listener` until the
/// process ends.
pub async fn serve(
    listener: TcpListener,
    control: ControlService,
    data_plane: Arc<NetworkDataPlane>,
) -> Result<(), tonic::transport::Error> {
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = data_plane.tls() {
        server = server.tls_config(tls.server())?;
    }
    server
        .tcp_nodelay(true)
        .initial_connection_window_size(crate::data_plane::CONNECTION_WINDOW_BYTES)
        .initial_stream_window_size(crate::data_plane::STREAM_WINDOW_BYTES)
        .add_service(JobManagerServiceServer::new(control))
        .add_service(data_plane.service())
        .serve_with_incoming(TcpListenerStream::new(listener))
        .await
}

/// Milliseconds since the Unix epoch, for heartbeats.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Whether every address `addr` may resolve to stays on this host.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}
