//! The data plane between processes: channels whose two ends are in different processes,
//! carried as Arrow IPC frames over one gRPC `Exchange` stream per (producer process,
//! consumer process) pair, with credit-based flow control per channel.
//!
//! Tasks never see the network. Every channel end a task holds is an in-process bounded
//! channel, as standalone. For an output whose consumer is elsewhere ([`TaskDescriptor::
//! remote_outputs`]), [`NetworkDataPlane::open_sender`] hands out a local channel that a
//! forwarder drains into the consumer's process; a consumer's input channel is filled by
//! the [`DataService`] this process serves.
//!
//! Flow control, as Flink's credit-based network stack: the consumer grants each channel
//! credits, one per message it has room for (its queue's capacity at the start, then one
//! for each message the task takes, sent back in groups while the channel is busy). The producer's forwarder sends a message only
//! against a credit, so a slow consumer back-pressures exactly the channels it is slow on,
//! across processes, while other channels on the same connection keep flowing; barrier
//! alignment, which stops reading some channels until the others catch up, cannot
//! deadlock the connection. Nothing buffers without bound: a channel holds at most its
//! credits in flight plus its queue.
//!
//! Small batches are coalesced before they cross ([`ExchangeBatching`]): a batch of fewer
//! rows than `rows` waits up to `linger` for more batches of its channel, and goes as soon
//! as they add up to `rows`, the linger is over, or any other message (a watermark, a
//! barrier) comes, which follows it at once. So at high rates frames are large and credits
//! go further, and at low rates a row waits at most `linger` (default 5 ms; 0 sends every
//! batch as it comes).
//!
//! A connection that breaks does not end the channels it carried: their consumers keep
//! waiting, and the tasks on both sides report the failure, so the JobManager restarts the
//! job from its last checkpoint. Only a producer's explicit `Close` ends a consumer's input.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::Stream;
use tokio::sync::{mpsc, Semaphore};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, warn};
use weir_executor::data_plane::{
    local_channel, ChannelId, ChannelReceiver, ChannelSender, DataPlane, LocalDataPlane, CHANNEL_CAPACITY,
};
use weir_executor::message::Message;
use weir_executor::task::TaskId;
use weir_executor::task_events::{JobManagerEndpoint, TaskEvent};
use weir_executor::task_manager::TaskDescriptor;
use weir_executor::{ExecError, ExecResult};

use crate::auth::ClusterSecret;
use crate::frame::{self, Decoded};
use crate::proto::data_frame::Kind;
use crate::proto::data_service_client::DataServiceClient;
use crate::proto::data_service_server::{DataService, DataServiceServer};
use crate::proto::{Credit, DataFrame};
use crate::tls::ClusterTls;

/// How long a producer keeps trying to reach a consumer's process before it reports the
/// channel failed.
const CONNECT_ATTEMPTS: u32 = 20;
const CONNECT_RETRY: Duration = Duration::from_millis(250);

/// An output channel whose consumer is in another process.
struct Route {
    address: String,
    task: TaskId,
    /// The deployment of the task's job, for failure reports.
    deployment: u64,
}

#[derive(Default)]
struct PlaneState {
    routes: HashMap<ChannelId, Route>,
    /// The consuming task (and its job's deployment) of each input channel that may come
    /// from another process.
    inputs: HashMap<ChannelId, (TaskId, u64)>,
    /// Open connections to consumer processes, by address.
    peers: HashMap<String, Arc<Peer>>,
    /// Forwarders of remote outputs, and of remote inputs into their local channels.
    outbound: HashMap<ChannelId, tokio::task::AbortHandle>,
    inbound: HashMap<ChannelId, tokio::task::AbortHandle>,
    /// Input channels whose connection broke: their senders are kept (so the consumer does
    /// not see its input end) until the JobManager releases them.
    held: HashMap<ChannelId, ChannelSender>,
}

/// The data plane of a process in a cluster.
pub struct NetworkDataPlane {
    local: LocalDataPlane,
    secret: ClusterSecret,
    /// TLS for every connection of this process's data plane (and its data service).
    tls: Option<ClusterTls>,
    batching: ExchangeBatching,
    state: Mutex<PlaneState>,
    /// Where failures of remote channels are reported (the TaskManager's control stream).
    events: Mutex<Option<Arc<dyn JobManagerEndpoint>>>,
    me: Weak<NetworkDataPlane>,
}

impl NetworkDataPlane {
    pub fn new(secret: ClusterSecret) -> Arc<Self> {
        Self::configured(secret, None, ExchangeBatching::default())
    }

    /// A data plane whose connections and service use `tls`, coalescing small batches as
    /// `batching` says.
    pub fn configured(
        secret: ClusterSecret,
        tls: Option<ClusterTls>,
        batching: ExchangeBatching,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            local: LocalDataPlane::new(),
            secret,
            tls,
            batching,
            state: Mutex::new(PlaneState::default()),
            events: Mutex::new(None),
            me: me.clone(),
        })
    }

    /// The TLS settings of this process's data service, if any.
    pub fn tls(&self) -> Option<&ClusterTls> {
        self.tls.as_ref()
    }

    /// Reports channel failures to `events` from now on.
    pub fn report_to(&self, events: Arc<dyn JobManagerEndpoint>) {
        if let Ok(mut slot) = self.events.lock() {
            *slot = Some(events);
        }
    }

    /// Forgets every channel, route and connection: the JobManager that named them is gone
    /// (its successor names channels afresh).
    pub fn reset(&self) {
        self.local.clear();
        if let Ok(mut guard) = self.state.lock() {
            let state = std::mem::take(&mut *guard);
            for handle in state.outbound.into_values().chain(state.inbound.into_values()) {
                handle.abort();
            }
        }
    }

    /// The gRPC service through which other processes fill this process's input channels.
    pub fn service(self: &Arc<Self>) -> DataServiceServer<DataServer> {
        DataServiceServer::new(DataServer { plane: self.clone() }).max_decoding_message_size(MAX_FRAME_BYTES)
    }

    fn lock(&self) -> ExecResult<std::sync::MutexGuard<'_, PlaneState>> {
        self.state.lock().map_err(|_| ExecError::Internal("data plane lock poisoned".into()))
    }

    fn report(&self, task: TaskId, deployment: u64, error: String) {
        let events = self.events.lock().ok().and_then(|e| e.clone());
        match events {
            Some(events) => {
                let _ = events.report(TaskEvent::Failed { task, deployment, error, sqlstate: None });
            }
            None => warn!(task = %task, error = %error, "channel failed with no JobManager to tell"),
        }
    }

    /// The connection to `address`, made on first use.
    fn peer(&self, address: &str) -> ExecResult<Arc<Peer>> {
        let mut state = self.lock()?;
        if let Some(peer) = state.peers.get(address) {
            return Ok(peer.clone());
        }
        let peer = Peer::connect(address.to_string(), self.secret.clone(), self.me.clone());
        state.peers.insert(address.to_string(), peer.clone());
        Ok(peer)
    }

    /// A connection broke: every channel still routed over it fails its task.
    fn peer_broken(&self, address: &str, reason: &str) {
        let failed: Vec<(TaskId, u64)> = match self.state.lock() {
            Ok(mut state) => {
                state.peers.remove(address);
                state
                    .routes
                    .values()
                    .filter(|r| r.address == address)
                    .map(|r| (r.task, r.deployment))
                    .collect()
            }
            Err(_) => return,
        };
        let mut reported = std::collections::BTreeSet::new();
        for (task, deployment) in failed {
            if reported.insert((task, deployment)) {
                self.report(task, deployment, format!("data connection to {address} lost: {reason}"));
            }
        }
    }

    /// An input's connection broke before the producer closed it.
    fn input_broken(&self, channel: ChannelId, sender: ChannelSender, reason: &str) {
        let (task, deployment) = match self.state.lock() {
            Ok(mut state) => {
                let Some(consumer) = state.inputs.get(&channel).copied() else { return };
                state.held.insert(channel, sender);
                consumer
            }
            Err(_) => return,
        };
        self.report(task, deployment, format!("data connection of input channel {channel} lost: {reason}"));
    }
}

impl DataPlane for NetworkDataPlane {
    /// Learns where a task's remote outputs go and which of its inputs may come from
    /// elsewhere (for failure reports).
    fn prepare(&self, task: &TaskDescriptor) {
        if let Ok(mut state) = self.state.lock() {
            for (channel, address) in &task.remote_outputs {
                let route = Route { address: address.clone(), task: task.id, deployment: task.deployment };
                state.routes.insert(*channel, route);
            }
            for input in &task.inputs {
                state.inputs.insert(input.channel, (task.id, task.deployment));
            }
        }
    }

    fn open_sender(&self, id: ChannelId) -> ExecResult<ChannelSender> {
        let address = self.lock()?.routes.get(&id).map(|r| r.address.clone());
        let Some(address) = address else { return self.local.open_sender(id) };
        let peer = self.peer(&address)?;
        let (sender, receiver) = local_channel();
        let forwarder = tokio::spawn(forward(peer, id, receiver, self.batching));
        self.lock()?.outbound.insert(id, forwarder.abort_handle());
        Ok(sender)
    }

    fn open_receiver(&self, id: ChannelId) -> ExecResult<ChannelReceiver> {
        self.local.open_receiver(id)
    }

    fn release(&self, ids: &[ChannelId]) {
        self.local.release(ids);
        if let Ok(mut state) = self.state.lock() {
            for id in ids {
                state.routes.remove(id);
                state.inputs.remove(id);
                state.held.remove(id);
                if let Some(handle) = state.outbound.remove(id) {
                    handle.abort();
                }
                if let Some(handle) = state.inbound.remove(id) {
                    handle.abort();
                }
            }
        }
    }
}

/// How small batches are coalesced before they cross to another process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeBatching {
    /// A batch of fewer rows waits for more (`cluster.exchange_batch_rows`). Batches are
    /// copied into one when coalesced, so only small ones are worth waiting for: at 8192
    /// rows, the halves of a full batch that a hash exchange over two subtasks makes were
    /// held for each other, and q7 on a cluster lost 36 % of its throughput.
    pub rows: usize,
    /// For at most this long (`cluster.exchange_linger_ms`); zero sends every batch as it
    /// comes.
    pub linger: Duration,
}

impl Default for ExchangeBatching {
    fn default() -> Self {
        Self { rows: 1024, linger: Duration::from_millis(5) }
    }
}

/// Sends one output channel's messages to its consumer's process, each against a credit,
/// small batches coalesced as `batching` says.
async fn forward(
    peer: Arc<Peer>,
    channel: ChannelId,
    mut messages: ChannelReceiver,
    batching: ExchangeBatching,
) {
    let credits = peer.open_channel(channel);
    // A message taken while coalescing, to send after the coalesced batch.
    let mut next: Option<Message> = None;
    let mut ended = false;
    while !ended || next.is_some() {
        let message = match next.take() {
            Some(message) => message,
            None => match messages.recv().await {
                Some(message) => message,
                None => break,
            },
        };
        let message = match message {
            Message::Batch(first) if first.num_rows() < batching.rows && !batching.linger.is_zero() => {
                let deadline = tokio::time::Instant::now() + batching.linger;
                let mut rows = first.num_rows();
                let mut parts = vec![first];
                while rows < batching.rows && !ended {
                    match tokio::time::timeout_at(deadline, messages.recv()).await {
                        Ok(Some(Message::Batch(more))) => {
                            rows += more.num_rows();
                            parts.push(more);
                        }
                        Ok(Some(other)) => {
                            next = Some(other);
                            break;
                        }
                        Ok(None) => ended = true,
                        Err(_) => break,
                    }
                }
                match weir_executor::message::StreamBatch::concat(&parts) {
                    Ok(Some(batch)) => Message::Batch(batch),
                    Ok(None) => continue,
                    Err(e) => {
                        peer.fail(&format!("cannot coalesce batches of channel {channel}: {e}"));
                        return;
                    }
                }
            }
            other => other,
        };
        match credits.acquire().await {
            Ok(permit) => permit.forget(),
            // The connection broke; the peer reported it.
            Err(_) => return,
        }
        let frame = match frame::encode(channel, &message) {
            Ok(frame) => frame,
            Err(e) => {
                peer.fail(&format!("cannot encode a message of channel {channel}: {e}"));
                return;
            }
        };
        if peer.frames.send(frame).is_err() {
            return;
        }
    }
    // The producing task ended: so does the consumer's input.
    let _ = peer.frames.send(DataFrame { channel, kind: Some(Kind::Close(Default::default())) });
    peer.close_channel(channel);
}

/// One connection to a consumer process: the frames of every channel to it, and the
/// credits it granted per channel.
struct Peer {
    address: String,
    frames: mpsc::UnboundedSender<DataFrame>,
    credits: Mutex<HashMap<ChannelId, Arc<Semaphore>>>,
    plane: Weak<NetworkDataPlane>,
}

impl Peer {
    fn connect(address: String, secret: ClusterSecret, plane: Weak<NetworkDataPlane>) -> Arc<Self> {
        let (frames, outgoing) = mpsc::unbounded_channel();
        let peer =
            Arc::new(Self { address: address.clone(), frames, credits: Mutex::new(HashMap::new()), plane });
        let running = peer.clone();
        tokio::spawn(async move {
            let reason = match running.exchange(outgoing, secret).await {
                Ok(()) => "the consumer closed the connection".to_string(),
                Err(e) => e.to_string(),
            };
            running.fail(&reason);
        });
        peer
    }

    /// Runs the exchange: frames out, credits in, until either side ends.
    async fn exchange(
        &self,
        outgoing: mpsc::UnboundedReceiver<DataFrame>,
        secret: ClusterSecret,
    ) -> Result<(), Status> {
        let tls = self.plane.upgrade().and_then(|p| p.tls.clone());
        let endpoint = ClusterTls::endpoint(tls.as_ref(), &self.address)
            .map_err(|e| Status::invalid_argument(format!("data address {}: {e}", self.address)))?
            .tcp_nodelay(true)
            .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
            .initial_stream_window_size(STREAM_WINDOW_BYTES);
        let mut attempt = 0;
        let channel = loop {
            match endpoint.connect().await {
                Ok(channel) => break channel,
                Err(e) if attempt + 1 >= CONNECT_ATTEMPTS => {
                    return Err(Status::unavailable(format!("cannot connect to {}: {e}", self.address)))
                }
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(CONNECT_RETRY).await;
                }
            }
        };
        let mut client = DataServiceClient::new(channel)
            .max_decoding_message_size(MAX_FRAME_BYTES)
            .max_encoding_message_size(MAX_FRAME_BYTES);
        let mut request = Request::new(UnboundedReceiverStream::new(outgoing));
        secret.attach(&mut request)?;
        let mut credits = client.exchange(request).await?.into_inner();
        while let Some(credit) = credits.message().await? {
            self.grant(credit.channel, credit.credits as usize);
        }
        Ok(())
    }

    fn open_channel(&self, channel: ChannelId) -> Arc<Semaphore> {
        let credits = Arc::new(Semaphore::new(0));
        if let Ok(mut map) = self.credits.lock() {
            map.insert(channel, credits.clone());
        }
        let _ = self.frames.send(DataFrame { channel, kind: Some(Kind::Open(Default::default())) });
        credits
    }

    fn close_channel(&self, channel: ChannelId) {
        if let Ok(mut map) = self.credits.lock() {
            map.remove(&channel);
        }
    }

    fn grant(&self, channel: ChannelId, credits: usize) {
        if let Some(semaphore) = self.credits.lock().ok().and_then(|m| m.get(&channel).cloned()) {
            semaphore.add_permits(credits.min(CHANNEL_CAPACITY * 4));
        }
    }

    /// The connection is unusable: its forwarders stop, and their tasks are reported failed.
    fn fail(&self, reason: &str) {
        debug!(peer = %self.address, reason, "data connection ended");
        if let Ok(map) = self.credits.lock() {
            for semaphore in map.values() {
                semaphore.close();
            }
        }
        if let Some(plane) = self.plane.upgrade() {
            plane.peer_broken(&self.address, reason);
        }
    }
}

/// HTTP/2 flow-control windows of data connections. HTTP/2's default, 64 KiB, would cap a
/// connection at 64 KiB per round trip, far below what the exchange carries; Weir's own
/// per-channel credits bound the memory in flight, so the transport's windows only need to
/// keep out of their way.
pub const CONNECTION_WINDOW_BYTES: u32 = 32 << 20;
pub const STREAM_WINDOW_BYTES: u32 = 32 << 20;

/// Credits returned in one message while a channel is busy (a quarter of its initial
/// credit, so the producer always has most of its window).
const CREDIT_BATCH: u32 = (CHANNEL_CAPACITY / 4) as u32;

/// Frames above this size are refused (a batch is at most a few MB; this bounds what a
/// length field can make the receiver allocate).
const MAX_FRAME_BYTES: usize = 256 << 20;

/// The consumer side: fills this process's input channels from other processes' frames.
pub struct DataServer {
    plane: Arc<NetworkDataPlane>,
}

/// What the connection hands a channel's forwarder.
enum Inbound {
    Message(Message),
    Close,
}

type CreditStream = std::pin::Pin<Box<dyn Stream<Item = Result<Credit, Status>> + Send>>;

#[tonic::async_trait]
impl DataService for DataServer {
    type ExchangeStream = CreditStream;

    async fn exchange(
        &self,
        request: Request<Streaming<DataFrame>>,
    ) -> Result<Response<CreditStream>, Status> {
        self.plane.secret.check(&request)?;
        let peer = request.remote_addr().map(|a| a.to_string()).unwrap_or_default();
        let mut frames = request.into_inner();
        let (credit_tx, credit_rx) = mpsc::unbounded_channel();
        let plane = self.plane.clone();
        tokio::spawn(async move {
            let mut queues: HashMap<ChannelId, mpsc::UnboundedSender<Inbound>> = HashMap::new();
            let reason = loop {
                let frame = match frames.message().await {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break "the producer closed the connection".to_string(),
                    Err(e) => break e.to_string(),
                };
                let channel = frame.channel;
                let decoded = match frame.kind.map(frame::decode) {
                    Some(Ok(decoded)) => decoded,
                    Some(Err(e)) => break format!("bad frame on channel {channel}: {e}"),
                    None => break format!("empty frame on channel {channel}"),
                };
                match decoded {
                    Decoded::Open => match plane.local.open_sender(channel) {
                        Ok(sender) => {
                            let (queue, queued) = mpsc::unbounded_channel();
                            queues.insert(channel, queue);
                            let task = tokio::spawn(deliver(
                                plane.clone(),
                                channel,
                                queued,
                                sender,
                                credit_tx.clone(),
                            ));
                            if let Ok(mut state) = plane.state.lock() {
                                state.inbound.insert(channel, task.abort_handle());
                            }
                            let _ = credit_tx.send(Ok(Credit { channel, credits: CHANNEL_CAPACITY as u32 }));
                        }
                        // Released already (its job stopped): its producer gets no credit.
                        Err(e) => {
                            debug!(channel, error = %e, "frames for a channel this process does not have")
                        }
                    },
                    Decoded::Message(message) => {
                        if let Some(queue) = queues.get(&channel) {
                            let _ = queue.send(Inbound::Message(message));
                        }
                    }
                    Decoded::Close => {
                        if let Some(queue) = queues.remove(&channel) {
                            let _ = queue.send(Inbound::Close);
                        }
                    }
                }
            };
            if !queues.is_empty() {
                warn!(peer = %peer, open_channels = queues.len(), reason = %reason, "data connection broke");
            }
            // Dropping the queues tells each open channel's forwarder its connection broke.
        });
        let credits: CreditStream = Box::pin(UnboundedReceiverStream::new(credit_rx));
        Ok(Response::new(credits))
    }
}

/// Moves one channel's messages from its connection into the consuming task's channel,
/// granting a credit for each one delivered.
async fn deliver(
    plane: Arc<NetworkDataPlane>,
    channel: ChannelId,
    mut queued: mpsc::UnboundedReceiver<Inbound>,
    sender: ChannelSender,
    credits: mpsc::UnboundedSender<Result<Credit, Status>>,
) {
    // Credits go back in groups while messages keep coming, and at once when the queue runs
    // dry, so a producer never waits for credits the consumer could already give.
    let mut earned = 0u32;
    loop {
        match queued.recv().await {
            Some(Inbound::Message(message)) => {
                if sender.send(message).await.is_err() {
                    // The consuming task is gone (its job is stopping).
                    return;
                }
                earned += 1;
                if earned >= CREDIT_BATCH || queued.is_empty() {
                    let _ = credits.send(Ok(Credit { channel, credits: earned }));
                    earned = 0;
                }
            }
            Some(Inbound::Close) => return,
            None => {
                plane.input_broken(
                    channel,
                    sender,
                    "the connection broke before the producer closed the channel",
                );
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
