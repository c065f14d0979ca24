//! Window and temporal joins end to end, where an `.slt` file cannot express the test.
//!
//! A window join (Nexmark q8's shape: two window aggregates that emit on update, joined on
//! their key and `window_end`) on a long stream: the join drops each window's rows once the
//! watermark passes it, so its state stays near the open windows' size while its output
//! grows, and the view still equals the same join run in batch over the two aggregates. A
//! temporal join restarted from a checkpoint looks the replayed rows up again, once each.
//! An interval join of Nexmark q4/q9's shape drops auctions once the watermark passes
//! their `expires` and bids once it passes their time, so its state stays near the open
//! auctions' size.

use std::time::Duration;

use crate::clients::show;
use crate::support::TestServer;

pub async fn window_join_state_stays_bounded_on_a_long_stream() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = sampled_server(dir.path())?;
    let client = server.connect().await;
    // A million events per second of wall time, one per microsecond of event time, into
    // 100 ms windows: about 20 windows over 2 s.
    let counts = "SELECT auction, window_start, window_end, count(*) AS n \
                  FROM TUMBLE(bid, date_time, INTERVAL '100' MILLISECOND) GROUP BY auction, window_start, window_end";
    let tops = "SELECT auction, window_start, window_end, max(price) AS top \
                FROM TUMBLE(bid, date_time, INTERVAL '100' MILLISECOND) GROUP BY auction, window_start, window_end";
    client
        .batch_execute(&format!(
            "CREATE SOURCE bid (auction BIGINT, price BIGINT, date_time TIMESTAMP,
               WATERMARK FOR date_time AS date_time - INTERVAL '100' MILLISECOND)
             WITH (connector = 'nexmark', nexmark.table.type = 'Bid', nexmark.event.num = '2000000',
                   nexmark.min.event.gap.in.ns = '1000', nexmark.use.real.time = 'true');
             SET streaming_parallelism = 2;
             CREATE MATERIALIZED VIEW counts AS {counts};
             CREATE MATERIALIZED VIEW tops AS {tops};
             CREATE MATERIALIZED VIEW joined AS
               SELECT c.auction, c.window_end, c.n, t.top FROM ({counts}) c JOIN ({tops}) t
               ON c.auction = t.auction AND c.window_start = t.window_start AND c.window_end = t.window_end;"
        ))
        .await
        .map_err(show)?;
    let explain: Vec<String> = client
        .query(&format!("EXPLAIN CREATE MATERIALIZED VIEW e AS SELECT c.auction FROM ({counts}) c JOIN ({tops}) t ON c.auction = t.auction AND c.window_end = t.window_end"), &[])
        .await
        .map_err(show)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !explain.iter().any(|l| l.contains("HashJoin") && l.contains("dropped once the watermark passes")) {
        return Err(format!("EXPLAIN does not show the window bound:\n{}", explain.join("\n")));
    }
    let unbounded: Option<String> = client
        .query_one("SELECT unbounded_state FROM weir_catalog.jobs WHERE view = 'joined'", &[])
        .await
        .map_err(show)?
        .get(0);
    if let Some(unbounded) = unbounded.filter(|u| u.contains("HashJoin")) {
        return Err(format!("the window join is listed as unbounded: {unbounded}"));
    }
    let (peak, samples) = peak_join_state(&client, "joined").await?;
    client.batch_execute("FLUSH").await.map_err(show)?;
    let joined: i64 = client.query_one("SELECT count(*) FROM joined", &[]).await.map_err(show)?.get(0);
    let windows: i64 =
        client.query_one("SELECT count(DISTINCT window_end) FROM joined", &[]).await.map_err(show)?.get(0);
    println!(
        "  {joined} joined rows over {windows} windows, peak join state {peak} rows in {samples} samples"
    );
    if windows < 10 || joined < 10_000 {
        return Err(format!("too little output: {joined} rows over {windows} windows"));
    }
    // Unbounded, a subtask would end up holding about as many rows as the view has.
    if peak == 0 || peak * 3 > joined {
        return Err(format!(
            "peak join state {peak} rows is not bounded by the open windows ({joined} joined)"
        ));
    }
    // The view equals the same join run in batch over the two aggregates, as multisets.
    let differ = rows_differing(
        &client,
        "joined",
        "SELECT c.auction, c.window_end, c.n, t.top FROM counts c JOIN tops t \
         ON c.auction = t.auction AND c.window_end = t.window_end",
    )
    .await?;
    if differ != 0 {
        return Err(format!("the window join differs from batch in {differ} rows"));
    }
    Ok(())
}

/// A temporal join's job fails (`INJECT FAILURE`) and restarts from its last checkpoint:
/// the stream rows after it are looked up again, and each is in the view exactly once.
pub async fn temporal_join_recovers_exactly_once() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE customers (id INT PRIMARY KEY, name TEXT);
             INSERT INTO customers SELECT i, 'c' || i FROM generate_series(0, 99) AS s(i);
             CREATE TABLE orders (id BIGINT, customer_id BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts);
             SET streaming_parallelism = 2;
             CREATE MATERIALIZED VIEW enriched AS
               SELECT o.id, c.name FROM orders o LEFT JOIN customers FOR SYSTEM_TIME AS OF PROCTIME() c
               ON o.customer_id = c.id;
             INSERT INTO orders SELECT i, i % 150, TIMESTAMP '2026-01-01 00:00:00'
               FROM generate_series(1, 1000) AS s(i);
             FLUSH;
             INJECT FAILURE enriched;
             INSERT INTO orders SELECT i, i % 150, TIMESTAMP '2026-01-01 00:00:00'
               FROM generate_series(1001, 2000) AS s(i);",
        )
        .await
        .map_err(show)?;
    // The job fails on its next batch and restarts from its latest checkpoint.
    let started = std::time::Instant::now();
    loop {
        let row = client
            .query_one("SELECT status, restarts::BIGINT FROM weir_catalog.jobs WHERE view = 'enriched'", &[])
            .await
            .map_err(show)?;
        let (status, restarts): (String, i64) = (row.get(0), row.get(1));
        if status == "running" && restarts >= 1 {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("the job did not restart: {status}, {restarts} restarts"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.batch_execute("FLUSH").await.map_err(show)?;
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT id), count(name),
                    count(*) FILTER (WHERE name IS DISTINCT FROM CASE WHEN id % 150 < 100 THEN 'c' || (id % 150) END)
             FROM enriched",
            &[],
        )
        .await
        .map_err(show)?;
    let (rows, distinct, named, wrong): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    println!("  {rows} rows ({distinct} distinct ids, {named} with a customer) after the restart");
    if rows != 2000 || distinct != 2000 || wrong != 0 {
        return Err(format!(
            "expected each of 2000 orders once and joined right: {rows} rows, {distinct} ids, {wrong} wrong"
        ));
    }
    Ok(())
}

/// The largest state any subtask of the join in `job` reported while the sources ran, and
/// how many samples were taken.
pub(crate) async fn peak_join_state(
    client: &tokio_postgres::Client,
    job: &str,
) -> Result<(i64, u32), String> {
    let started = std::time::Instant::now();
    let mut peak = 0i64;
    let mut samples = 0;
    loop {
        if started.elapsed() > Duration::from_secs(300) {
            return Err("the sources did not finish in 300 s".into());
        }
        let state: i64 = client
            .query_one(
                "SELECT coalesce(max(state_rows), 0) FROM weir_catalog.tasks
                 WHERE job = $1 AND operators LIKE 'HashJoin%'",
                &[&job],
            )
            .await
            .map_err(show)?
            .get(0);
        peak = peak.max(state);
        samples += 1;
        if crate::clients::sources_finished(client).await? {
            return Ok((peak, samples));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Nexmark q4/q9's join, `B.date_time BETWEEN A.date_time AND A.expires`, on a long
/// stream: auctions expire on `expires` (a column without a watermark), bids on their time.
/// While the sources run, how much the join holds depends on how far the auction source
/// runs ahead of the bid source (within the default watermark alignment's drift; see
/// `watermark_alignment.rs` for the bound it gives), so that is only printed; once
/// both have finished, the final watermark closes every auction and the join holds nothing
/// (an unbounded auction side would keep all of them).
pub async fn interval_join_state_stays_bounded_on_a_long_stream() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = sampled_server(dir.path())?;
    let client = server.connect().await;
    // 50,000 events per second of wall time, one per 20 us of event time; an auction lasts
    // up to some 70 ms of event time, and the watermark lags 5 ms.
    let options = "nexmark.event.num = '400000', nexmark.min.event.gap.in.ns = '20000', \
                   nexmark.use.real.time = 'true'";
    client
        .batch_execute(&format!(
            "CREATE SOURCE auction (id BIGINT, date_time TIMESTAMP, expires TIMESTAMP,
               WATERMARK FOR date_time AS date_time - INTERVAL '5' MILLISECOND)
             WITH (connector = 'nexmark', nexmark.table.type = 'Auction', {options});
             CREATE SOURCE bid (auction BIGINT, price BIGINT, date_time TIMESTAMP,
               WATERMARK FOR date_time AS date_time - INTERVAL '5' MILLISECOND)
             WITH (connector = 'nexmark', nexmark.table.type = 'Bid', {options});
             SET streaming_parallelism = 2;
             CREATE MATERIALIZED VIEW auctions AS SELECT * FROM auction;
             CREATE MATERIALIZED VIEW bids AS SELECT * FROM bid;
             CREATE MATERIALIZED VIEW joined AS
               SELECT A.id, A.expires, B.price, B.date_time FROM auction A, bid B
               WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires;"
        ))
        .await
        .map_err(show)?;
    let unbounded: Option<String> = client
        .query_one("SELECT unbounded_state FROM weir_catalog.jobs WHERE view = 'joined'", &[])
        .await
        .map_err(show)?
        .get(0);
    if let Some(unbounded) = unbounded {
        return Err(format!("the interval join is listed as unbounded: {unbounded}"));
    }
    let (peak, samples) = peak_join_state(&client, "joined").await?;
    client.batch_execute("FLUSH").await.map_err(show)?;
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.map_err(show).map(|r| r.get::<_, i64>(0)) }
    };
    let (joined, auctions) =
        (count("SELECT count(*) FROM joined").await?, count("SELECT count(*) FROM auctions").await?);
    if auctions < 20_000 || joined < 10_000 {
        return Err(format!("too little input or output: {auctions} auctions, {joined} joined rows"));
    }
    // State is reported at barriers: the one after the final watermark empties the join.
    let final_state = "SELECT coalesce(sum(state_rows), 0)::BIGINT FROM weir_catalog.tasks \
                       WHERE job = 'joined' AND operators LIKE 'HashJoin%'";
    let mut held = count(final_state).await?;
    for _ in 0..100 {
        if held == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        held = count(final_state).await?;
    }
    println!(
        "  {joined} joined rows of {auctions} auctions, peak join state {peak} rows in {samples} samples, {held} at the end"
    );
    if held != 0 {
        return Err(format!(
            "the join still holds {held} rows after the final watermark ({auctions} auctions)"
        ));
    }
    let batch = "SELECT A.id, A.expires, B.price, B.date_time FROM auctions A, bids B \
                 WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires";
    let differ = rows_differing(&client, "joined", batch).await?;
    if differ != 0 {
        return Err(format!("the interval join differs from batch in {differ} rows"));
    }
    Ok(())
}

/// A server whose operators report their state at 50 ms barriers, so a run is sampled often.
pub(crate) fn sampled_server(dir: &std::path::Path) -> Result<TestServer, String> {
    let config = dir.join("weir.toml");
    std::fs::write(&config, "[streaming]\nbarrier_interval_ms = 50\n").map_err(show)?;
    Ok(TestServer::start_with(&dir.join("data"), &["--config".into(), config.display().to_string()]))
}

/// How many rows `view` and the batch query `batch` differ in, as multisets.
pub(crate) async fn rows_differing(
    client: &tokio_postgres::Client,
    view: &str,
    batch: &str,
) -> Result<i64, String> {
    let sql = format!(
        "SELECT (SELECT count(*) FROM (SELECT * FROM {view} EXCEPT ALL {batch}) x)
              + (SELECT count(*) FROM ({batch} EXCEPT ALL SELECT * FROM {view}) y)"
    );
    Ok(client.query_one(&sql, &[]).await.map_err(show)?.get(0))
}
