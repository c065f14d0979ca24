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

/// Re-deploys the job of every view in the catalog, upstream views first. Their contents
/// are rebuilt from the tables (there are no checkpoints yet).
pub async fn redeploy_views(store: &Store, jobs: &JobManager) {
    let views = store.views();
    if views.is_empty() {
        return;
    }
    info!(views = views.len(), "re-deploying materialized views");
    for view in views {
        let graph: JobGraph = match serde_json::from_str(&view.job_graph) {
            Ok(graph) => graph,
            Err(e) => {
                error!(view = %view.name(), error = %e, "stored job graph is unreadable; view not maintained");
                continue;
            }
        };
        let started = std::time::Instant::now();
        match jobs.deploy(graph).await {
            Ok(()) => {
                info!(view = %view.name(), elapsed_ms = started.elapsed().as_millis() as u64, "view rebuilt")
            }
            Err(e) => error!(view = %view.name(), error = %e, "view could not be re-deployed"),
        }
    }
}
