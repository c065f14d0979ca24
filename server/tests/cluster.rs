//! Distributed mode on loopback: a `weir jobmanager` and `weir taskmanager` processes.
//!
//! * The `.slt` suites of views, event time, joins and sinks run against a cluster as
//!   against a standalone server (see `integration.rs` for the list).
//! * TaskManagers (and twice the JobManager) are killed with SIGKILL at random moments
//!   while a file source and a paced nexmark source are read; at the end every view equals
//!   an undisturbed standalone reference's, which is itself checked against the input.
//! * A TaskManager without the cluster secret is refused and says why.

use std::time::{Duration, Instant};

use crate::clients::{check, show};
use crate::recovery::{
    allow_files, bids_of, compare_views, ddl, finish_and_flush, job_status, join_row, reference_config, rows,
    write_config, write_csv_files, Lcg, Splits, VIEWS,
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
    let checkpoints = dir.path().join("checkpoints");
    let config = dir.path().join("cluster.toml");
    write_config(
        &config,
        &format!(
            "state.backend = \"rocksdb\"\ncheckpoint.interval = \"300ms\"\ncheckpoint.dir = \"file://{}\"\n\
             [streaming]\nbarrier_interval_ms = 100\n[restart]\nbackoff = \"200ms\"\nmax_backoff = \"1s\"\n\
             [cluster]\nheartbeat_timeout_ms = 1000\nsecret = \"test-secret\"\n{}",
            checkpoints.display(),
            allow_files(dir.path())
        ),
    )?;
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
    let (mut tm_kills, mut jm_kills) = (0, 0);
    loop {
        tokio::time::sleep(Duration::from_millis(rng.between(500, 2500))).await;
        let splits = tokio::time::timeout(Duration::from_secs(3), async {
            let client = crate::recovery::connect(&cluster.jobmanager).await?;
            Splits::read(&client).await
        })
        .await
        .unwrap_or_else(|_| Err("no answer within 3 s".to_string()));
        let finished = splits.as_ref().is_ok_and(Splits::all_finished);
        if finished && tm_kills >= 10 && jm_kills >= 2 {
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
        if (tm_kills + jm_kills) % 5 == 4 && jm_kills < 2 {
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
            tokio::task::block_in_place(|| cluster.taskmanagers[victim].restart());
        }
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
        return Err(format!(
            "{}\n\njobs: {:?}\n{}",
            problems.join("\n\n"),
            jobs.iter().map(|r| join_row(r)).collect::<Vec<_>>(),
            cluster.logs(60)
        ));
    }
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
