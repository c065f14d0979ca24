//! Watermark alignment end to end: the event-time sources of one job read in step.
//!
//! Nexmark's auction source covers about fifteen times more event time per row than its bid
//! source, so read freely it runs far ahead, and an interval join of the two (q4/q9's shape)
//! holds every auction the bids' watermark has not closed yet. Aligned, the auction source
//! pauses while its watermark leads the bids' by more than the drift, and the join holds
//! only the auctions near the bids. A finished or idle source must not hold an aligned one
//! back.

use std::time::{Duration, Instant};

use crate::clients::show;
use crate::stream_joins::{peak_join_state, rows_differing, sampled_server};

/// Two nexmark sources of `events` events, 1024 rows a batch, watermark 100 ms behind.
fn nexmark_sources(events: u64) -> String {
    let options = format!("nexmark.event.num = '{events}', nexmark.max.chunk.size = '1024'");
    format!(
        "CREATE SOURCE auction (id BIGINT, date_time TIMESTAMP, expires TIMESTAMP,
           WATERMARK FOR date_time AS date_time - INTERVAL '100' MILLISECOND)
         WITH (connector = 'nexmark', nexmark.table.type = 'Auction', {options});
         CREATE SOURCE bid (auction BIGINT, price BIGINT, date_time TIMESTAMP,
           WATERMARK FOR date_time AS date_time - INTERVAL '100' MILLISECOND)
         WITH (connector = 'nexmark', nexmark.table.type = 'Bid', {options});"
    )
}

const INTERVAL_JOIN: &str = "SELECT A.id, A.expires, B.price, B.date_time FROM auction A, bid B \
                             WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires";

/// The same interval join with and without alignment: aligned, its state stays a fraction of
/// what it holds when the auction source reads ahead, and it still equals the batch join.
pub async fn aligned_sources_keep_interval_join_state_bounded() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = sampled_server(dir.path())?;
    let client = server.connect().await;
    client
        .batch_execute(&format!(
            "{}
             SET streaming_parallelism = 2;
             CREATE MATERIALIZED VIEW auctions AS SELECT * FROM auction;
             CREATE MATERIALIZED VIEW bids AS SELECT * FROM bid;",
            nexmark_sources(500_000)
        ))
        .await
        .map_err(show)?;
    let explain: Vec<String> = client
        .query(&format!("EXPLAIN CREATE MATERIALIZED VIEW e AS {INTERVAL_JOIN}"), &[])
        .await
        .map_err(show)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !explain.iter().any(|l| l.contains("Watermark alignment") && l.contains("10000 ms")) {
        return Err(format!("EXPLAIN does not show the default alignment:\n{}", explain.join("\n")));
    }
    client
        .batch_execute(&format!(
            "CREATE MATERIALIZED VIEW aligned WITH (watermark_alignment_max_drift = '1s') AS {INTERVAL_JOIN}"
        ))
        .await
        .map_err(show)?;
    let (aligned, samples) = peak_join_state(&client, "aligned").await?;
    let paused: i64 = client
        .query_one(
            "SELECT sum(paused_ms)::BIGINT FROM weir_catalog.sources WHERE job = 'aligned' AND source = 'auction'",
            &[],
        )
        .await
        .map_err(show)?
        .get(0);
    client
        .batch_execute(&format!(
            "CREATE MATERIALIZED VIEW free WITH (watermark_alignment_max_drift = 'off') AS {INTERVAL_JOIN}"
        ))
        .await
        .map_err(show)?;
    let (free, free_samples) = peak_join_state(&client, "free").await?;
    client.batch_execute("FLUSH").await.map_err(show)?;
    let auctions: i64 = client.query_one("SELECT count(*) FROM auctions", &[]).await.map_err(show)?.get(0);
    println!(
        "  {auctions} auctions; peak join state {aligned} rows aligned ({samples} samples, auction source paused \
         {paused} ms), {free} rows unaligned ({free_samples} samples)"
    );
    if paused == 0 {
        return Err("the auction source of the aligned job never paused".into());
    }
    // Unaligned, a subtask of the join holds most of its half of the auctions at some point;
    // aligned, about the auctions of the drift and one batch of event time.
    if free * 2 < auctions / 2 {
        return Err(format!(
            "unaligned, the join held only {free} rows of {auctions} auctions: the test no longer shows \
             the auction source reading ahead"
        ));
    }
    if aligned * 4 > free {
        return Err(format!("aligned, the join held {aligned} rows, not far below {free} unaligned"));
    }
    let batch = INTERVAL_JOIN.replace("FROM auction A, bid B", "FROM auctions A, bids B");
    for view in ["aligned", "free"] {
        let differ = rows_differing(&client, view, &batch).await?;
        if differ != 0 {
            return Err(format!("{view} differs from the batch join in {differ} rows"));
        }
    }
    Ok(())
}

/// A finished source and an idle one leave the minimum: an aligned job whose other source
/// is far ahead of them still reads that source to its end.
pub async fn finished_and_idle_sources_do_not_stall_aligned_ones() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = sampled_server(dir.path())?;
    let client = server.connect().await;
    // Nexmark starts at 2015-07-15 00:00:00: `few` ends one second of event time after it,
    // `tick` stays there, one row (one second of event time) every 20 s, idle after 300 ms
    // without one; `bid` runs on for 40 s of event time. Were `few` still counted once
    // finished, or `tick` while idle, `bid` would wait for them for good, or for some 800 s.
    client
        .batch_execute(
            "CREATE SOURCE few (id BIGINT, date_time TIMESTAMP, expires TIMESTAMP,
               WATERMARK FOR date_time AS date_time)
             WITH (connector = 'nexmark', nexmark.table.type = 'Auction', nexmark.event.num = '10000');
             CREATE SOURCE tick (n BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts)
             WITH (connector = 'datagen', datagen.rows.per.second = '0.05', idle_timeout_ms = '300',
                   fields.n.kind = 'sequence', fields.n.start = '0',
                   fields.ts.kind = 'sequence', fields.ts.start = '2015-07-15 00:00:00', fields.ts.step = '1 second');
             CREATE SOURCE bid (auction BIGINT, price BIGINT, date_time TIMESTAMP,
               WATERMARK FOR date_time AS date_time)
             WITH (connector = 'nexmark', nexmark.table.type = 'Bid', nexmark.event.num = '400000',
                   nexmark.max.chunk.size = '1024');
             SET streaming_parallelism = 2;
             SET streaming_watermark_alignment_max_drift = '1s';
             CREATE MATERIALIZED VIEW after_finished AS
               SELECT A.id, B.price FROM few A, bid B
               WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires;
             CREATE MATERIALIZED VIEW after_idle AS
               SELECT date_time AS t, price AS v FROM bid UNION ALL SELECT ts, n FROM tick;",
        )
        .await
        .map_err(show)?;
    let started = Instant::now();
    loop {
        let rows = client
            .query(
                "SELECT job, status, paused_ms FROM weir_catalog.sources WHERE source = 'bid' ORDER BY job",
                &[],
            )
            .await
            .map_err(show)?;
        let states: Vec<(String, String, i64)> =
            rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
        if states.len() == 2 && states.iter().all(|(_, status, _)| status == "finished") {
            println!("  bid readers finished: {states:?}");
            // Alignment was at work: the bid reader waited for `tick` whenever it had a row.
            if !states.iter().any(|(job, _, paused)| job == "after_idle" && *paused > 0) {
                return Err(format!("the bid reader of after_idle never paused: {states:?}"));
            }
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err(format!("an aligned bid source stalled: {states:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client.batch_execute("FLUSH").await.map_err(show)?;
    let union: i64 = client.query_one("SELECT count(*) FROM after_idle", &[]).await.map_err(show)?.get(0);
    let joined: i64 =
        client.query_one("SELECT count(*) FROM after_finished", &[]).await.map_err(show)?.get(0);
    println!("  {union} rows in the union, {joined} rows joined with the finished source");
    // 46 in 50 of the 400,000 events are bids, all of them in the union with the ticks.
    if union < 368_000 || joined == 0 {
        return Err(format!("too little output: {union} rows in the union, {joined} joined"));
    }
    Ok(())
}
