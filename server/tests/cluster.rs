//! Distributed mode on loopback: a `weir jobmanager` and `weir taskmanager` processes.
//!
//! * The `.slt` suites of views, event time, joins and sinks run against a cluster as
//!   against a standalone server (see `integration.rs` for the list).
//! * TaskManagers (and twice the JobManager) are killed with SIGKILL at random moments,
//!   and twice a TaskManager is paused (SIGSTOP) past the heartbeat timeout and resumed,
//!   while a file source and a paced nexmark source are read; at the end every view equals
//!   an undisturbed standalone reference's, which is itself checked against the input.
//! * A TaskManager without the cluster secret is refused and says why.

use std::time::{Duration, Instant};

use crate::clients::{check, show};
use crate::recovery::{
    allow_files, bids_of, compare_views, ddl, fast_failover_config, finish_and_flush, job_status, join_row,
    reference_config, rows, write_config, write_csv_files, Lcg, Splits, VIEWS,
};
use crate::support::cluster::TestCluster;
use crate::support::TestServer;

/// Slots per TaskManager: the four views at parallelism 2 or 1 fit on two of the three.
const SLOTS: usize = 4;

pub async fn kill_9_taskmanagers_and_jobmanager_is_exactly_once() -> Result<(), String> {
    let test = "kill_9_taskmanagers_and_jobmanager_is_exactly_once";
    let mut rng = Lcg::from_env_or_clock(test);
    let dir = tempfile::tempdir().map_err(show)?;
    let expected = write_csv_files(dir.path(), 2, 600_000)?;
    let nexmark_events = 1_500_000;
    let config = fast_failover_config(dir.path(), "1s", 1000)?;
    let mut cluster = TestCluster::start(dir.path(), 3, SLOTS, Some(&config));
    cluster.wait_for_taskmanagers(3).await?;
    let reference = TestServer::start_with(&dir.path().join("reference"), &reference_config(dir.path())?);
    let glob = dir.path().join("part-*.csv").display().to_string();
    let statements = ddl(&glob, nexmark_events);
    for (name, server) in [("reference", &reference), ("cluster", &cluster.jobmanager)] {
        let client = server.connect().await;
        client.batch_execute(&statements).await.map_err(|e| format!("{name} DDL: {e:?}"))?;
    }
    let placed = rows(
        &cluster.jobmanager.connect().await,
        "SELECT count(DISTINCT taskmanager) FROM weir_catalog.tasks t JOIN weir_catalog.taskmanagers m \
         ON t.taskmanager = m.id WHERE m.role = 'worker'",
    )
    .await?;
    check(
        placed[0][0].as_deref().is_some_and(|n| n != "0"),
        format!("no task runs on a taskmanager: {placed:?}\n{}", cluster.logs(40)),
    )?;

    let started = Instant::now();
    let deadline = started + Duration::from_secs(180);
    let (mut tm_kills, mut jm_kills, mut pauses) = (0, 0, 0);
    let mut recoveries = Vec::new();
    loop {
        tokio::time::sleep(Duration::from_millis(rng.between(500, 2500))).await;
        let splits = tokio::time::timeout(Duration::from_secs(3), async {
            let client = crate::recovery::connect(&cluster.jobmanager).await?;
            Splits::read(&client).await
        })
        .await
        .unwrap_or_else(|_| Err("no answer within 3 s".to_string()));
        let finished = splits.as_ref().is_ok_and(Splits::all_finished);
        if finished && tm_kills >= 12 && jm_kills >= 2 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "after {tm_kills} taskmanager and {jm_kills} jobmanager kills in {:.0}s the sources have not \
                 finished ({})\n{}",
                started.elapsed().as_secs_f64(),
                splits.map(|s| s.summary()).unwrap_or_else(|e| e),
                cluster.logs(40)
            ));
        }
        // Every fifth kill is the JobManager's; the others a random TaskManager's, started
        // again at once (it registers as a new one).
        if (tm_kills + jm_kills) % 5 == 2 && pauses < 2 {
            // Paused past the heartbeat timeout: its jobs move away; resumed, it finds itself
            // dropped, cancels what it still ran and registers anew.
            let victim = rng.between(0, cluster.taskmanagers.len() as u64 - 1) as usize;
            pauses += 1;
            tm_kills += 1;
            println!("  pause {pauses}: taskmanager {victim} stopped for 2.5 s");
            cluster.taskmanagers[victim].signal("STOP");
            tokio::time::sleep(Duration::from_millis(2500)).await;
            cluster.taskmanagers[victim].signal("CONT");
        } else if (tm_kills + jm_kills) % 5 == 4 && jm_kills < 2 {
            jm_kills += 1;
            println!("  kill {}: the jobmanager", tm_kills + jm_kills);
            tokio::task::block_in_place(|| cluster.jobmanager.restart());
        } else {
            let victim = rng.between(0, cluster.taskmanagers.len() as u64 - 1) as usize;
            tm_kills += 1;
            println!(
                "  kill {}: taskmanager {victim} ({})",
                tm_kills + jm_kills,
                splits.map(|s| s.summary()).unwrap_or_else(|e| e)
            );
            let before = committed_epochs(&cluster.jobmanager).await;
            tokio::task::block_in_place(|| cluster.taskmanagers[victim].kill());
            // Recovery time: from the kill to the first committed epoch of every job after
            // it (on the TaskManagers left; the killed one starts again afterwards).
            if let Ok(before) = before {
                if let Some(took) = wait_for_commits_after(&cluster.jobmanager, &before).await {
                    println!("    every job committed again {} ms after the kill", took.as_millis());
                    recoveries.push(took);
                }
            }
            tokio::task::block_in_place(|| cluster.taskmanagers[victim].restart());
        }
    }
    recoveries.sort();
    if let (Some(median), Some(max)) = (recoveries.get(recoveries.len() / 2), recoveries.last()) {
        println!(
            "  recovery after a taskmanager kill (heartbeat timeout 1 s, restart backoff 200 ms): median {} ms, \
             max {} ms over {} kills",
            median.as_millis(),
            max.as_millis(),
            recoveries.len()
        );
    }
    println!(
        "  {tm_kills} taskmanager and {jm_kills} jobmanager kills in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let reference = finish_and_flush(&reference, "reference", Duration::from_secs(120)).await?;
    let victim = finish_and_flush(&cluster.jobmanager, "cluster", Duration::from_secs(120)).await?;
    let problems = compare_views(&victim, &reference, &expected, bids_of(nexmark_events)).await?;
    if !problems.is_empty() {
        let jobs =
            rows(&victim, "SELECT view, status, restarts, last_failure FROM weir_catalog.jobs").await?;
        let logs = cluster.logs(60);
        drop(cluster);
        // The processes' whole logs and data directories stay for a post-mortem.
        let kept = dir.keep();
        return Err(format!(
            "{}\n\njobs: {:?}\nlogs and data kept in {}\n{logs}",
            problems.join("\n\n"),
            jobs.iter().map(|r| join_row(r)).collect::<Vec<_>>(),
            kept.display()
        ));
    }
    // A materialize that is told to delete rows it never had sees state that does not match
    // its own: some task restored or kept state of another run.
    let mismatches = cluster.jobmanager.log().matches("delete rows it does not hold").count();
    check(mismatches == 0, format!("{mismatches} times a view partition lost track of its rows"))?;
    let jobs = job_status(&victim).await?;
    check(
        jobs.len() == VIEWS.len() && jobs.values().all(|(status, _, _)| status == "running"),
        format!("jobs after the last kill: {jobs:?}"),
    )?;
    check(
        cluster.jobmanager.log().contains("taskmanager lost"),
        "the jobmanager never noticed a lost taskmanager",
    )?;
    Ok(())
}

/// Every job's last committed epoch.
async fn committed_epochs(server: &TestServer) -> Result<Vec<(String, i64)>, String> {
    let client = crate::recovery::connect(server).await?;
    let rows = rows(&client, "SELECT view, coalesce(last_committed_epoch, 0) FROM weir_catalog.jobs").await?;
    Ok(rows
        .iter()
        .map(|r| {
            (r[0].clone().unwrap_or_default(), r[1].as_deref().and_then(|e| e.parse().ok()).unwrap_or(0))
        })
        .collect())
}

/// How long until every job of `before` is running and has committed an epoch after the
/// one it had; `None` after 30 s.
async fn wait_for_commits_after(server: &TestServer, before: &[(String, i64)]) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(client) = crate::recovery::connect(server).await {
            let sql = "SELECT view, status, coalesce(last_committed_epoch, 0) FROM weir_catalog.jobs";
            if let Ok(now) = rows(&client, sql).await {
                let done = before.iter().all(|(view, epoch)| {
                    now.iter().any(|r| {
                        r[0].as_deref() == Some(view.as_str())
                            && r[1].as_deref() == Some("running")
                            && r[2].as_deref().and_then(|e| e.parse::<i64>().ok()).is_some_and(|e| e > *epoch)
                    })
                });
                if done {
                    return Some(started.elapsed());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// A TaskManager with the wrong cluster secret is refused, exits, and its log says why;
/// jobs keep running on the others.
pub async fn a_taskmanager_without_the_secret_is_refused() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let config = dir.path().join("cluster.toml");
    write_config(&config, "[cluster]\nsecret = \"right-secret\"\n")?;
    let mut cluster = TestCluster::start(dir.path(), 1, 2, Some(&config));
    cluster.wait_for_taskmanagers(1).await?;
    let wrong = dir.path().join("wrong.toml");
    write_config(&wrong, "[cluster]\nsecret = \"wrong-secret\"\n")?;
    let intruder = cluster.add_taskmanager(2, &["--config", &wrong.display().to_string()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = cluster.taskmanagers[intruder].exited() {
            break status;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the taskmanager with a wrong secret is still running\n{}",
                cluster.logs(20)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    check(!status.success(), format!("a refused taskmanager exits with an error, not {status}"))?;
    let log = cluster.taskmanagers[intruder].log();
    check(log.contains("cluster secret missing or wrong"), format!("the refused taskmanager's log: {log}"))?;
    check(
        cluster.jobmanager.log().contains("refused a cluster connection without the right cluster secret"),
        "the jobmanager logs the refusal",
    )?;
    let client = cluster.jobmanager.connect().await;
    let workers =
        rows(&client, "SELECT count(*) FROM weir_catalog.taskmanagers WHERE role = 'worker'").await?;
    check(workers[0][0].as_deref() == Some("1"), format!("registered workers: {workers:?}"))?;
    client
        .batch_execute(
            "CREATE TABLE t (k INT, v INT); INSERT INTO t VALUES (1, 10), (1, 5), (2, 7);
             CREATE MATERIALIZED VIEW s AS SELECT k, sum(v) AS total FROM t GROUP BY k; FLUSH;",
        )
        .await
        .map_err(show)?;
    let got = rows(&client, "SELECT k, total FROM s ORDER BY k").await?;
    check(
        got.iter().map(|r| join_row(r)).collect::<Vec<_>>() == ["1|15", "2|7"],
        format!("view on the cluster: {got:?}"),
    )?;
    Ok(())
}

/// A moto S3 server (from PyPI: `moto[server]`) on a free loopback port, with one bucket.
struct S3Server {
    child: std::process::Child,
    port: u16,
}

impl S3Server {
    fn start(bucket: &str, log: &std::path::Path) -> Result<Self, String> {
        let port = crate::support::free_port();
        let log = std::fs::File::create(log).map_err(show)?;
        let child = std::process::Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(log.try_clone().map_err(show)?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start moto (pip install 'moto[server]'): {e}"))?;
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match server.request("PUT", &format!("/{bucket}")) {
                Ok(response) if response.starts_with("HTTP/1.1 200") => return Ok(server),
                Ok(response) => return Err(format!("creating bucket {bucket}: {response}")),
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => return Err(format!("moto did not start: {e}")),
            }
        }
    }

    /// One unsigned HTTP/1.1 request (moto does not check signatures); the whole response.
    fn request(&self, method: &str, path: &str) -> Result<String, String> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).map_err(show)?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .map_err(show)?;
        let mut response = String::new();
        stream.read_to_string(&mut response).map_err(show)?;
        Ok(response)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checkpoints in an S3-compatible store (a real moto server): every process writes its
/// pieces there, a TaskManager killed mid-read and a restarted JobManager both resume from
/// them, and the view is exact.
pub async fn checkpoints_in_an_s3_compatible_store() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let s3 = S3Server::start("weir-checkpoints", &dir.path().join("moto.log"))?;
    let expected = write_csv_files(dir.path(), 2, 300_000)?;
    let config = dir.path().join("cluster.toml");
    write_config(
        &config,
        &format!(
            "state.backend = \"rocksdb\"\n[checkpoint]\ninterval = \"300ms\"\nstore = \"s3://weir-checkpoints/cluster\"\n\
             [checkpoint.s3]\nendpoint = \"http://127.0.0.1:{}\"\nregion = \"us-east-1\"\naccess_key_id = \"test\"\n\
             secret_access_key = \"test\"\nallow_http = true\n\
             [streaming]\nbarrier_interval_ms = 100\n[restart]\nbackoff = \"200ms\"\n\
             [cluster]\nheartbeat_timeout_ms = 1000\n{}",
            s3.port,
            allow_files(dir.path())
        ),
    )?;
    let mut cluster = TestCluster::start(dir.path(), 2, 4, Some(&config));
    cluster.wait_for_taskmanagers(2).await?;
    let glob = dir.path().join("part-*.csv").display().to_string();
    let client = cluster.jobmanager.connect().await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE f (id BIGINT, key BIGINT, amount BIGINT, ts TIMESTAMP)
               WITH (connector = 'file', path = '{glob}', format = 'csv');
             SET streaming_parallelism = 2;
             CREATE MATERIALIZED VIEW f_agg AS
               SELECT key, count(*) AS n, sum(amount) AS s, min(amount) AS lo, max(amount) AS hi
               FROM f GROUP BY key;"
        ))
        .await
        .map_err(show)?;
    // A TaskManager dies while the files are read; later the JobManager does.
    tokio::time::sleep(Duration::from_millis(800)).await;
    tokio::task::block_in_place(|| cluster.taskmanagers[0].restart());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let listing = s3.request("GET", "/weir-checkpoints?list-type=2&prefix=cluster/")?;
    check(
        listing.contains("<Key>cluster/job-"),
        format!("no checkpoint objects in the bucket: {}", &listing[..listing.len().min(2000)]),
    )?;
    tokio::task::block_in_place(|| cluster.jobmanager.restart());
    let victim =
        crate::recovery::finish_and_flush_splits(&cluster.jobmanager, "cluster", Duration::from_secs(120), 2)
            .await?;
    let got = rows(&victim, "SELECT key, n, s, lo, hi FROM f_agg").await?;
    let mut got: Vec<String> = got.iter().map(|r| join_row(r)).collect();
    got.sort_unstable();
    let mut wanted: Vec<String> =
        expected.iter().map(|(k, (n, s, lo, hi))| format!("{k}|{n}|{s}|{lo}|{hi}")).collect();
    wanted.sort_unstable();
    if got != wanted {
        let missing = wanted.iter().filter(|w| got.binary_search(w).is_err()).take(5).collect::<Vec<_>>();
        return Err(format!(
            "f_agg has {} rows, expected {}; first expected rows missing: {missing:?}\n{}",
            got.len(),
            wanted.len(),
            cluster.logs(40)
        ));
    }
    let log = cluster.jobmanager.log();
    check(
        log.contains("from_checkpoint=Some("),
        format!("the restarted jobmanager did not resume from a checkpoint:\n{}", cluster.logs(30)),
    )?;
    Ok(())
}
