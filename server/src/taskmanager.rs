//! `weir taskmanager`: a process that runs tasks for a JobManager. It keeps its operator
//! state under its own data directory, reads `file` sources and writes `file` sinks on its
//! own host (under its own `[file] allowed_dirs`), and writes checkpoints to the store the
//! JobManager names.

use weir_cluster::taskmanager::TaskManagerSettings;
use weir_cluster::ClusterSecret;

use crate::config::Config;

pub async fn run(config: Config) -> Result<(), String> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", config.data_dir.display()))?;
    // Checkpoints go where the JobManager says, not to a store of this process's own.
    let local = Config { checkpoint: None, ..config.clone() };
    let state = crate::runtime::state_services(&local)?;
    let files = crate::engine::file_access(&config)?;
    let jobmanager = config.cluster.jobmanager.clone().ok_or("a taskmanager needs --jobmanager HOST:PORT")?;
    weir_cluster::taskmanager::run(TaskManagerSettings {
        jobmanager,
        slots: config.cluster.slots,
        listen_data: config.cluster.listen_data.clone(),
        advertise_data: config.cluster.advertise_data.clone(),
        secret: ClusterSecret::new(config.cluster.secret.clone()),
        tls: config.cluster.load_tls()?,
        batching: config.cluster.exchange,
        state,
        files,
        split_limit: config.sources.split_limit,
        readers: config.sources.reader_pool(),
        s3: config.checkpoint.as_ref().map(|c| c.s3.clone()).unwrap_or_default(),
    })
    .await
}
