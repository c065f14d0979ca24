//! Starts the streaming runtime and re-deploys every view's job from the catalog.
//!
//! Standalone, the JobManager runs its jobs on an in-process TaskManager over a local data
//! plane. As `weir jobmanager`, the in-process TaskManager keeps only what needs this
//! process's tables and view store (table sources, view sources, materialize), every
//! other task runs on the TaskManagers that register on the rpc address, and channels
//! between processes go over the network data plane served on that same address.

use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info, warn};
use weir_executor::checkpoint_protocol::CheckpointConfig as CheckpointProtocol;
use weir_executor::data_plane::{DataPlane, LocalDataPlane};
use weir_executor::job_manager::CheckpointSettings;
use weir_executor::task_events::{JobManagerEndpoint, LocalEndpoint};
use weir_executor::task_manager::StateServices;
use weir_executor::{JobManager, JobManagerConfig, LocalTaskManager, TaskManager};
use weir_plan::JobGraph;
use weir_storage::keyed_state::{
    InMemoryStateBackend, KeyedStateBackend, RocksDbStateBackend, RocksDbStateOptions,
};
use weir_storage::{CheckpointStore, Store, ViewStateStore};

use weir_cluster::jobmanager::{ControlService, ControlSettings};
use weir_cluster::{data_plane::NetworkDataPlane, ClusterSecret};

use crate::config::{Config, Mode, StateBackendKind};

/// In-process TaskManagers in standalone mode.
const LOCAL_TASK_MANAGERS: usize = 1;

/// Where operators keep keyed state and send checkpoints. The RocksDB state directory is a
/// working copy: durable state is in the checkpoints, so it starts empty.
pub fn state_services(config: &Config) -> Result<StateServices, String> {
    let backend: Arc<dyn KeyedStateBackend> = match config.state.backend {
        StateBackendKind::Memory => Arc::new(InMemoryStateBackend::default()),
        StateBackendKind::RocksDb => {
            let dir = config.data_dir.join("operator-state");
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .map_err(|e| format!("cannot clear the state directory {}: {e}", dir.display()))?;
            }
            let tuning = RocksDbStateOptions {
                block_cache_bytes: config.state.block_cache_bytes,
                write_buffer_bytes: config.state.write_buffer_bytes,
            };
            let backend = RocksDbStateBackend::open(&dir, &tuning)
                .map_err(|e| format!("cannot open the RocksDB state backend in {}: {e}", dir.display()))?;
            Arc::new(backend)
        }
    };
    let checkpoints = match &config.checkpoint {
        Some(c) => {
            Some(CheckpointStore::open_with(&c.dir, &c.s3).map_err(|e| format!("checkpoint.store: {e}"))?)
        }
        None => None,
    };
    Ok(StateServices { backend, cache_groups: config.state.cache_groups, checkpoints })
}

pub fn start(
    store: &Arc<Store>,
    view_states: &Arc<dyn ViewStateStore>,
    config: &Config,
    files: &weir_executor::connectors::FileAccess,
) -> Result<JobManager, String> {
    let state = state_services(config)?;
    let cluster = config.mode == Mode::JobManager;
    let tls = config.cluster.load_tls()?;
    let secret = ClusterSecret::new(config.cluster.secret.clone());
    let network = cluster.then(|| NetworkDataPlane::configured(secret, tls, config.cluster.exchange));
    let data_plane: Arc<dyn DataPlane> = match &network {
        Some(network) => network.clone(),
        None => Arc::new(LocalDataPlane::new()),
    };
    let (endpoint, events_rx) = LocalEndpoint::new();
    let endpoint: Arc<dyn JobManagerEndpoint> = Arc::new(endpoint);
    let slots = std::thread::available_parallelism().map_or(1, |n| n.get());
    // One reader pool for the process, shared by its in-process TaskManagers.
    let readers = config.sources.reader_pool();
    // And one set of watermark alignment groups, so a job's sources align across them.
    let alignment = Arc::new(weir_executor::sources::alignment::AlignmentGroups::default());
    let dataflow = dataflow_runtime()?;
    let task_managers: Vec<Arc<dyn TaskManager>> = (0..LOCAL_TASK_MANAGERS)
        .map(|id| {
            let tm = LocalTaskManager::new(
                id,
                slots,
                store.clone(),
                view_states.clone(),
                data_plane.clone(),
                endpoint.clone(),
            )
            .with_state(state.clone())
            .with_file_access(files.clone())
            .with_source_readers(config.sources.split_limit, readers.clone())
            .with_alignment_groups(alignment.clone())
            .with_runtime(dataflow.clone());
            let tm = match cluster {
                true => tm.with_data_address(rpc_advertised(config)),
                false => tm,
            };
            Arc::new(tm) as Arc<dyn TaskManager>
        })
        .collect();
    let checkpoints = match (&config.checkpoint, state.checkpoints) {
        (Some(c), Some(store)) => Some(CheckpointSettings {
            store,
            interval: c.interval,
            protocol: CheckpointProtocol { timeout: c.timeout, retained: c.retained },
        }),
        _ => None,
    };
    let checkpoint_store = match &config.checkpoint {
        Some(c) => absolute_store(&c.dir)?,
        None => String::new(),
    };
    let jm_config = JobManagerConfig {
        barrier_interval: Duration::from_millis(config.barrier_interval_ms),
        checkpoints,
        restart_backoff: config.restart_backoff,
        max_restart_backoff: config.max_restart_backoff,
        cluster: cluster.then_some(config.cluster.placement),
        ..JobManagerConfig::default()
    };
    info!(
        state_backend = ?config.state.backend,
        checkpoints = config.checkpoint.as_ref().map(|c| c.dir.as_str()).unwrap_or("off"),
        mode = ?config.mode,
        "streaming runtime started"
    );
    let jobs = JobManager::start(jm_config, task_managers, view_states.clone(), events_rx);
    if let Some(network) = network {
        network.report_to(endpoint.clone());
        let listener = std::net::TcpListener::bind(config.cluster.rpc)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(tokio::net::TcpListener::from_std)
            .map_err(|e| format!("cannot listen for taskmanagers on {}: {e}", config.cluster.rpc))?;
        let settings = ControlSettings {
            secret: ClusterSecret::new(config.cluster.secret.clone()),
            heartbeat_timeout: config.cluster.heartbeat_timeout,
            checkpoint_store,
        };
        let control = ControlService::new(jobs.clone(), endpoint, settings);
        info!(
            rpc = %config.cluster.rpc,
            secret = config.cluster.secret.is_some(),
            tls = config.cluster.tls.is_some(),
            "jobmanager accepting taskmanagers"
        );
        tokio::spawn(async move {
            if let Err(e) = weir_cluster::jobmanager::serve(listener, control, network).await {
                error!(error = %e, "the jobmanager's rpc service stopped");
            }
        });
    }
    Ok(jobs)
}

/// The rpc address TaskManagers send the frontend's channels to.
fn rpc_advertised(config: &Config) -> String {
    config.cluster.advertise_data.clone().unwrap_or_else(|| config.cluster.rpc.to_string())
}

/// The runtime the in-process TaskManagers run their tasks on, apart from the one that
/// serves sessions (see `LocalTaskManager::with_runtime`): a backfill that keeps every
/// dataflow thread busy no longer holds back a `statement_timeout`, a cancel request or
/// another client's query. Created once, for the life of the process.
fn dataflow_runtime() -> Result<tokio::runtime::Handle, String> {
    static RUNTIME: std::sync::OnceLock<Result<tokio::runtime::Runtime, String>> = std::sync::OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("weir-dataflow")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the dataflow runtime: {e}"))
    });
    runtime.as_ref().map(|r| r.handle().clone()).map_err(Clone::clone)
}

/// The checkpoint store as every process of a cluster can open it: a relative local path
/// made absolute (TaskManagers run in other directories).
fn absolute_store(dir: &str) -> Result<String, String> {
    if dir.contains("://") || std::path::Path::new(dir).is_absolute() {
        return Ok(dir.to_string());
    }
    let cwd = std::env::current_dir().map_err(|e| format!("checkpoint.dir: {e}"))?;
    Ok(cwd.join(dir).display().to_string())
}

/// Re-deploys the job of every view and sink in the catalog, in creation order (so a view
/// comes after the views it reads). A job with a committed checkpoint resumes from it, its
/// sources rewound to the checkpoint's offsets; one without (or reading other views)
/// rebuilds its contents from its inputs.
pub async fn redeploy_views(store: &Store, jobs: &JobManager) {
    let mut all: Vec<JobGraph> = store.views().into_iter().map(|v| v.job_graph).collect();
    all.extend(store.sinks().into_iter().map(|s| s.job_graph));
    all.sort_by_key(JobGraph::id);
    // A view's catalog entry is written only when its CREATE commits: the checkpoints of
    // one a crash interrupted during its backfill belong to no job.
    let known = all.iter().map(JobGraph::id).collect();
    match jobs.sweep_checkpoints_except(&known).await {
        Ok(0) => {}
        Ok(swept) => info!(jobs = swept, "checkpoints of uncommitted jobs deleted"),
        Err(e) => warn!(error = %e, "could not sweep the checkpoints of uncommitted jobs"),
    }
    if all.is_empty() {
        return;
    }
    info!(jobs = all.len(), "re-deploying materialized views and sinks");
    let mut recovering = Vec::new();
    for graph in all {
        let name = graph.target.name.clone();
        let restore = match jobs.recovery_point(&graph).await {
            Ok(restore) => restore,
            Err(e) => {
                error!(job = %name, error = %e, "checkpoints unreadable; the job starts from scratch");
                None
            }
        };
        recovering.push((name, graph, restore));
    }
    // Epochs continue after the latest checkpoint so that new ones never reuse an epoch.
    let latest = recovering.iter().filter_map(|(_, _, r)| r.as_ref().map(|r| r.chosen.epoch)).max();
    if let Some(epoch) = latest {
        if let Err(e) = jobs.start_at(epoch) {
            error!(error = %e, "the job manager stopped");
        }
    }
    for (name, graph, restore) in recovering {
        let started = std::time::Instant::now();
        let from = restore.as_ref().map(|r| r.chosen.epoch);
        match jobs.recover(graph, restore).await {
            Ok(()) => info!(
                job = %name,
                from_checkpoint = ?from,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "job re-deployed"
            ),
            Err(e) => error!(job = %name, error = %e, "job could not be re-deployed"),
        }
    }
}
