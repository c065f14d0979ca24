//! On a cluster, a dropped view leaves no checkpoint files: its TaskManagers, in other
//! processes, may be uploading a checkpoint piece of it when the DROP arrives, and such a
//! late upload must neither land after the DROP returned nor stay behind.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::cluster::TestCluster;

fn show(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn db(e: tokio_postgres::Error) -> String {
    e.as_db_error().map_or_else(|| e.to_string(), |d| format!("{}: {}", d.code().code(), d.message()))
}

/// Every file under `dir`, recursively (none if it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

pub async fn a_dropped_view_leaves_no_checkpoint_files() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let config = dir.path().join("weir.toml");
    std::fs::write(&config, "state.backend = \"rocksdb\"\n[checkpoint]\ninterval = \"100ms\"\n")
        .map_err(show)?;
    let cluster = TestCluster::start(dir.path(), 2, 4, Some(&config));
    cluster.wait_for_taskmanagers(2).await?;
    let client = cluster.jobmanager.connect().await;
    client.batch_execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)").await.map_err(db)?;
    client
        .batch_execute(
            "INSERT INTO t SELECT i, 'value ' || CAST(i AS TEXT) FROM generate_series(1, 30000) AS g(i)",
        )
        .await
        .map_err(db)?;
    // Rows keep coming, so every checkpoint has state to upload.
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let writer_client = cluster.jobmanager.connect().await;
        let writing = writing.clone();
        tokio::spawn(async move {
            let mut next = 30_001i64;
            while writing.load(Ordering::Relaxed) {
                let sql = format!(
                    "INSERT INTO t SELECT i, 'more ' || CAST(i AS TEXT) FROM generate_series({next}, {}) AS g(i)",
                    next + 499
                );
                if writer_client.batch_execute(&sql).await.is_err() {
                    break;
                }
                next += 500;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let checkpoints = cluster.jobmanager.data_dir.join("checkpoints");
    let mut late = Vec::new();
    for round in 0..4 {
        let name = format!("v{round}");
        client
            .batch_execute(&format!(
                "CREATE MATERIALIZED VIEW {name} AS SELECT a.id, b.v FROM t a JOIN t b ON a.id = b.id"
            ))
            .await
            .map_err(db)?;
        let id: i64 = client
            .query_one("SELECT view_id FROM weir_catalog.jobs WHERE view = $1", &[&name])
            .await
            .map_err(db)?
            .get(0);
        let job_dir = checkpoints.join(format!("job-{id}"));
        // Until the job has checkpoints, and a little longer, so uploads are under way.
        let deadline = Instant::now() + Duration::from_secs(30);
        while files_under(&job_dir).is_empty() {
            if Instant::now() > deadline {
                return Err(format!("no checkpoint of {name} appeared in {}", job_dir.display()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(50 * (round + 1))).await;
        client.batch_execute(&format!("DROP MATERIALIZED VIEW {name}")).await.map_err(db)?;
        // Nothing of the job may be there once DROP returned, nor appear later.
        let watch_until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < watch_until {
            let left = files_under(&job_dir);
            if !left.is_empty() {
                late.push(format!("{name} (job {id}): {left:?}"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    writing.store(false, Ordering::Relaxed);
    let _ = writer.await;
    if !late.is_empty() {
        return Err(format!(
            "checkpoint files of dropped views after DROP returned:\n{}\n{}",
            late.join("\n"),
            cluster.logs(20)
        ));
    }
    Ok(())
}
