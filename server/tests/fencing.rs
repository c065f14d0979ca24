//! Fencing: a TaskManager paused (SIGSTOP) past the heartbeat timeout, whose job moved to
//! another TaskManager meanwhile, writes nothing for that job when it resumes.
//!
//! A paced nexmark source feeds a file sink. The TaskManager running the sink is paused
//! twice for three heartbeat timeouts and resumed; at the end the sink's file holds exactly
//! the rows of an undisturbed standalone server's sink file, none lost, none twice.

use std::time::Duration;

use crate::clients::{check, show};
use crate::recovery::{fast_failover_config, finish_and_flush_splits, reference_config, rows};
use crate::support::cluster::TestCluster;
use crate::support::{free_port, TestServer};

/// A paced nexmark source of `events` events, `gap_ns` apart, and a CSV file sink `out` of
/// its bids (with a header line if `header`).
pub(crate) fn paced_bids_to_file(events: u64, gap_ns: u64, out: &std::path::Path, header: bool) -> String {
    format!(
        "CREATE SOURCE bid (auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP)
           WITH (connector = 'nexmark', nexmark.table.type = 'Bid', nexmark.event.num = '{events}',
                 nexmark.min.event.gap.in.ns = '{gap_ns}', nexmark.use.real.time = 'true');
         CREATE SINK out AS SELECT auction, bidder, price, date_time FROM bid
           WITH (connector = 'file', path = '{}', format = 'csv', header = '{header}');",
        out.display()
    )
}

/// The lines of a file, sorted: the sink's rows as a multiset.
fn sorted_lines(path: &std::path::Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    Ok(lines)
}

pub async fn a_paused_taskmanager_writes_nothing_after_its_job_moved() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let events = 1_200_000;
    let config = fast_failover_config(dir.path(), "500ms", 1000)?;
    let mut cluster = TestCluster::start(dir.path(), 0, 2, Some(&config));
    let ports = [free_port(), free_port()];
    for port in ports {
        cluster.add_taskmanager(2, &["--listen-data", &format!("127.0.0.1:{port}")]);
    }
    cluster.wait_for_taskmanagers(2).await?;
    let reference = TestServer::start_with(&dir.path().join("reference"), &reference_config(dir.path())?);
    let (expected_file, out_file) = (dir.path().join("expected.csv"), dir.path().join("out.csv"));
    for (name, server, file) in
        [("reference", &reference, &expected_file), ("cluster", &cluster.jobmanager, &out_file)]
    {
        let client = server.connect().await;
        client
            .batch_execute(&paced_bids_to_file(events, 10_000, file, false))
            .await
            .map_err(|e| format!("{name} DDL: {e:?}"))?;
    }

    for pause in 1..=2 {
        // Pause whichever TaskManager runs the sink now, once it is writing.
        let mut victim = None;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let client = crate::recovery::connect(&cluster.jobmanager).await?;
            let found = rows(
                &client,
                "SELECT m.address FROM weir_catalog.tasks t JOIN weir_catalog.taskmanagers m \
                 ON t.taskmanager = m.id WHERE t.job = 'out' AND t.status = 'running' AND t.rows_in > 0",
            )
            .await?;
            let address = found.first().and_then(|r| r[0].clone()).unwrap_or_default();
            victim = ports.iter().position(|p| address.ends_with(&format!(":{p}")));
            if victim.is_some() {
                break;
            }
        }
        let victim =
            victim.ok_or_else(|| format!("the sink never ran on a taskmanager\n{}", cluster.logs(40)))?;
        println!("  pause {pause}: taskmanager {victim}, which runs the sink, stopped for 3 s");
        cluster.taskmanagers[victim].signal("STOP");
        tokio::time::sleep(Duration::from_secs(3)).await;
        cluster.taskmanagers[victim].signal("CONT");
    }

    finish_and_flush_splits(&reference, "reference", Duration::from_secs(120), 1).await?;
    let client = finish_and_flush_splits(&cluster.jobmanager, "cluster", Duration::from_secs(120), 1).await?;
    // The sink writes each epoch's rows at its barrier; FLUSH waited for the last epoch.
    let (expected, got) = (sorted_lines(&expected_file)?, sorted_lines(&out_file)?);
    if expected != got {
        let jobs =
            rows(&client, "SELECT view, status, restarts, last_failure FROM weir_catalog.jobs").await?;
        let twice = got.windows(2).filter(|w| w[0] == w[1]).count();
        let logs = cluster.logs(40);
        drop(cluster);
        // The processes' whole logs, data directories and both files stay for a post-mortem.
        let kept = dir.keep();
        return Err(format!(
            "the sink file has {} rows, the reference {} ({twice} adjacent repeats)\njobs: {jobs:?}\n\
             logs, data and files kept in {}\n{logs}",
            got.len(),
            expected.len(),
            kept.display()
        ));
    }
    check(!expected.is_empty(), "the reference sink wrote nothing")?;
    let restarts = rows(&client, "SELECT restarts FROM weir_catalog.jobs WHERE view = 'out'").await?;
    check(
        restarts.first().and_then(|r| r[0].as_deref()).is_some_and(|n| n != "0"),
        format!("the sink's job never moved: {restarts:?}\n{}", cluster.logs(40)),
    )?;
    let fenced = cluster.taskmanagers.iter().any(|tm| tm.log().contains("lost its lease"))
        || cluster.jobmanager.log().contains("in use by another writer");
    println!("  {} rows in both files; the paused taskmanager was fenced: {fenced}", got.len());
    Ok(())
}
