//! Starts the standalone streaming runtime: the JobManager and in-process TaskManagers,
//! connected by a local data plane, and re-deploys every view's job from the catalog.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{error, info};
use weir_executor::data_plane::LocalDataPlane;
use weir_executor::job_graph::JobGraph;
use weir_executor::{JobManager, JobManagerConfig, LocalTaskManager, TaskManager};
use weir_storage::{Store, ViewStateStore};

use crate::config::Config;

/// In-process TaskManagers in standalone mode.
const LOCAL_TASK_MANAGERS: usize = 1;

pub fn start(store: &Arc<Store>, view_states: &Arc<dyn ViewStateStore>, config: &Config) -> JobManager {
    let data_plane = Arc::new(LocalDataPlane::new());
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let slots = std::thread::available_parallelism().map_or(1, |n| n.get());
    let task_managers: Vec<Arc<dyn TaskManager>> = (0..LOCAL_TASK_MANAGERS)
        .map(|id| {
            Arc::new(LocalTaskManager::new(
                id,
                slots,
                store.clone(),
                view_states.clone(),
                data_plane.clone(),
                events_tx.clone(),
            )) as Arc<dyn TaskManager>
        })
        .collect();
    let jm_config = JobManagerConfig {
        barrier_interval: Duration::from_millis(config.barrier_interval_ms),
        ..JobManagerConfig::default()
    };
    JobManager::start(jm_config, task_managers, data_plane, view_states.clone(), events_rx)
}

/// Re-deploys the job of every view and sink in the catalog, in creation order (so a view
/// comes after the views it reads). Their contents are rebuilt from the tables and sources
/// (there are no checkpoints yet).
pub async fn redeploy_views(store: &Store, jobs: &JobManager) {
    let mut all: Vec<(u64, String, String)> =
        store.views().into_iter().map(|v| (v.id(), v.name().to_string(), v.job_graph)).collect();
    all.extend(store.sinks().into_iter().map(|s| (s.id, s.name, s.job_graph)));
    all.sort_by_key(|(id, _, _)| *id);
    if all.is_empty() {
        return;
    }
    info!(jobs = all.len(), "re-deploying materialized views and sinks");
    for (_, name, job_graph) in all {
        let graph: JobGraph = match serde_json::from_str(&job_graph) {
            Ok(graph) => graph,
            Err(e) => {
                error!(job = %name, error = %e, "stored job graph is unreadable; job not started");
                continue;
            }
        };
        let started = std::time::Instant::now();
        match jobs.deploy(graph).await {
            Ok(()) => {
                info!(job = %name, elapsed_ms = started.elapsed().as_millis() as u64, "job re-deployed")
            }
            Err(e) => error!(job = %name, error = %e, "job could not be re-deployed"),
        }
    }
}
