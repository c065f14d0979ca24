//! Rescaling mid-stream on a cluster: the views of the kill test and a file sink are
//! rescaled 2 → 4 → 1 (the tumbling window 1 → 3 → 2) while a paced nexmark source and a
//! file source are read, with checkpoints in RocksDB; at the end every view, and the sink's
//! rows, equal an undisturbed standalone reference's.

use std::time::{Duration, Instant};

use crate::clients::{check, show};
use crate::recovery::{
    bids_of, compare_views, ddl, fast_failover_config, finish_and_flush_splits, join_row, reference_config,
    rows, write_csv_files,
};
use crate::support::cluster::TestCluster;
use crate::support::TestServer;

fn sink_ddl(path: &std::path::Path) -> String {
    format!(
        "CREATE SINK win_out AS
           SELECT window_start, window_end, count(*) AS n, sum(price) AS s
           FROM TUMBLE(bid, date_time, INTERVAL '1' SECOND) GROUP BY window_start, window_end EMIT ON WINDOW CLOSE
           WITH (connector = 'file', path = '{}', format = 'csv')",
        path.display()
    )
}

/// The lines of every file a sink at `path` wrote (`path`, `path.1`, ...), sorted.
fn sink_lines(path: &std::path::Path) -> Result<Vec<String>, String> {
    let dir = path.parent().ok_or("no directory")?;
    let name = path.file_name().and_then(|n| n.to_str()).ok_or("no file name")?;
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(show)? {
        let entry = entry.map_err(show)?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if file == name || file.strip_prefix(&format!("{name}.")).is_some_and(|n| n.parse::<u32>().is_ok()) {
            let text = std::fs::read_to_string(entry.path()).map_err(show)?;
            lines.extend(text.lines().map(str::to_string));
        }
    }
    lines.sort();
    Ok(lines)
}

pub async fn rescale_2_4_1_mid_stream_is_exact() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let expected = write_csv_files(dir.path(), 2, 600_000)?;
    let nexmark_events = 1_500_000;
    let config = fast_failover_config(dir.path(), "1s", 2000)?;
    let cluster = TestCluster::start(dir.path(), 3, 8, Some(&config));
    cluster.wait_for_taskmanagers(3).await?;
    let reference = TestServer::start_with(&dir.path().join("reference"), &reference_config(dir.path())?);
    let glob = dir.path().join("part-*.csv").display().to_string();
    let (reference_sink, cluster_sink) =
        (dir.path().join("win-reference.csv"), dir.path().join("win-cluster.csv"));
    for (name, server, sink) in
        [("reference", &reference, &reference_sink), ("cluster", &cluster.jobmanager, &cluster_sink)]
    {
        let client = server.connect().await;
        let statements = format!("{}; {}", ddl(&glob, nexmark_events), sink_ddl(sink));
        client.batch_execute(&statements).await.map_err(|e| format!("{name} DDL: {e:?}"))?;
    }
    let client = cluster.jobmanager.connect().await;
    let started = Instant::now();
    for (step, (wide, tumble)) in [(4, 3), (1, 2)].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_secs(3)).await;
        for (object, n) in [
            ("MATERIALIZED VIEW bid_agg", wide),
            ("MATERIALIZED VIEW bid_hop", wide),
            ("MATERIALIZED VIEW f_agg", wide),
            ("MATERIALIZED VIEW bid_tumble", tumble),
            ("SINK win_out", wide),
        ] {
            let took = Instant::now();
            client
                .batch_execute(&format!("ALTER {object} SET PARALLELISM = {n}"))
                .await
                .map_err(|e| format!("step {step}: ALTER {object} to {n}: {e:?}\n{}", cluster.logs(40)))?;
            println!("  ALTER {object} SET PARALLELISM = {n}: {} ms", took.elapsed().as_millis());
        }
        let jobs =
            rows(&client, "SELECT view, parallelism, status FROM weir_catalog.jobs ORDER BY view").await?;
        println!(
            "  after step {step} ({:.1} s): {:?}",
            started.elapsed().as_secs_f64(),
            jobs.iter().map(|r| join_row(r)).collect::<Vec<_>>()
        );
    }
    // The kill test's five splits and the sink's nexmark split.
    let reference = finish_and_flush_splits(&reference, "reference", Duration::from_secs(120), 6).await?;
    let victim = finish_and_flush_splits(&cluster.jobmanager, "cluster", Duration::from_secs(120), 6).await?;
    let mut problems = compare_views(&victim, &reference, &expected, bids_of(nexmark_events)).await?;
    let (want, got) = (sink_lines(&reference_sink)?, sink_lines(&cluster_sink)?);
    println!("  win_out: {} rows on the reference, {} on the cluster", want.len(), got.len());
    if want != got || want.is_empty() {
        problems.push(format!("the sink wrote {} rows, the reference {}", got.len(), want.len()));
    }
    let parallelism = rows(&victim, "SELECT view, parallelism FROM weir_catalog.jobs ORDER BY view").await?;
    let parallelism: Vec<String> = parallelism.iter().map(|r| join_row(r)).collect();
    // A job's parallelism is its widest vertex's: f_agg's reader has one subtask per file.
    let wanted = ["bid_agg|1", "bid_hop|1", "bid_tumble|2", "f_agg|2", "win_out|1"];
    if parallelism != wanted {
        problems.push(format!("parallelism after the rescales: {parallelism:?}, expected {wanted:?}"));
    }
    let restored = cluster.taskmanagers.iter().any(|tm| tm.log().contains("after a rescale"))
        || cluster.jobmanager.log().contains("after a rescale");
    if !problems.is_empty() {
        return Err(format!("{}\n{}", problems.join("\n\n"), cluster.logs(60)));
    }
    check(restored, "no task restored state after a rescale (was there no checkpoint?)")?;
    Ok(())
}
