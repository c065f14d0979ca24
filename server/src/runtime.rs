//! Starts the standalone streaming runtime: the JobManager and in-process TaskManagers,
//! connected by a local data plane, and re-deploys every view's job from the catalog.

use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info};
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

use crate::config::{Config, StateBackendKind};

/// In-process TaskManagers in standalone mode.
const LOCAL_TASK_MANAGERS: usize = 1;

/// Where operators keep keyed state and send checkpoints. The RocksDB state directory is a
/// working copy: durable state is in the checkpoints, so it starts empty.
fn state_services(config: &Config) -> Result<StateServices, String> {
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
        Some(c) => Some(CheckpointStore::open(&c.dir).map_err(|e| format!("checkpoint.dir: {e}"))?),
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
    let data_plane: Arc<dyn DataPlane> = Arc::new(LocalDataPlane::new());
    let (endpoint, events_rx) = LocalEndpoint::new();
    let endpoint: Arc<dyn JobManagerEndpoint> = Arc::new(endpoint);
    let slots = std::thread::available_parallelism().map_or(1, |n| n.get());
    let task_managers: Vec<Arc<dyn TaskManager>> = (0..LOCAL_TASK_MANAGERS)
        .map(|id| {
            Arc::new(
                LocalTaskManager::new(
                    id,
                    slots,
                    store.clone(),
                    view_states.clone(),
                    data_plane.clone(),
                    endpoint.clone(),
                )
                .with_state(state.clone())
                .with_file_access(files.clone()),
            ) as Arc<dyn TaskManager>
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
    let jm_config = JobManagerConfig {
        barrier_interval: Duration::from_millis(config.barrier_interval_ms),
        checkpoints,
        restart_backoff: config.restart_backoff,
        max_restart_backoff: config.max_restart_backoff,
        ..JobManagerConfig::default()
    };
    info!(
        state_backend = ?config.state.backend,
        checkpoints = config.checkpoint.as_ref().map(|c| c.dir.as_str()).unwrap_or("off"),
        "streaming runtime started"
    );
    Ok(JobManager::start(jm_config, task_managers, view_states.clone(), events_rx))
}

/// Re-deploys the job of every view and sink in the catalog, in creation order (so a view
/// comes after the views it reads). A job with a committed checkpoint resumes from it, its
/// sources rewound to the checkpoint's offsets; one without (or reading other views)
/// rebuilds its contents from its inputs.
pub async fn redeploy_views(store: &Store, jobs: &JobManager) {
    let mut all: Vec<JobGraph> = store.views().into_iter().map(|v| v.job_graph).collect();
    all.extend(store.sinks().into_iter().map(|s| s.job_graph));
    all.sort_by_key(JobGraph::id);
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
