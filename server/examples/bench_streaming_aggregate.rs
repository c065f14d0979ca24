//! Benchmark: rows through an incrementally maintained aggregate view while a table is
//! loaded, and the delay from a committed INSERT to its visibility in the view.
//!
//! Starts a real Weir server in this process (loopback port, temporary data directory)
//! and drives it over the Postgres wire protocol with tokio-postgres.
//!
//! ```sh
//! cargo run --release -p weir-server --example bench_streaming_aggregate -- \
//!     [ROWS=1000000] [KEYS=10000] [PARALLELISM=2] [BARRIER_INTERVAL_MS=1000]
//! ```
//!
//! 1. `CREATE MATERIALIZED VIEW agg AS SELECT k, count(*), sum(x), min(x), max(x) FROM bench
//!    GROUP BY k`, then COPY `ROWS` rows in chunks of 100,000 and `FLUSH`. Prints rows/s
//!    from the start of the load until the view reflects every row (load + changelog read +
//!    exchange + aggregate + materialize), and the same for the view alone (time from the
//!    end of the COPY to the end of the FLUSH).
//! 2. The same view created again over the loaded table: rows/s of the backfill (snapshot
//!    scan + exchange + aggregate + materialize, nothing else running).
//! 3. 50 single-row INSERTs, each followed by polling the view until the row's group shows
//!    it: prints the median and maximum delay (governed by the barrier interval, since
//!    views change only when an epoch commits).

use std::time::{Duration, Instant};

use futures::SinkExt;

mod support;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let keys: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let parallelism: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(2);
    let barrier_interval_ms: u64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let server = support::start(|config| {
        config.log = "warn".into();
        config.barrier_interval_ms = barrier_interval_ms;
    })
    .await?;
    let client = &server.client;
    client
        .batch_execute(&format!(
            "CREATE TABLE bench (id BIGINT PRIMARY KEY, k BIGINT, x DOUBLE PRECISION);
             SET streaming_parallelism = {parallelism};
             CREATE MATERIALIZED VIEW agg AS
               SELECT k, count(*) AS n, sum(x) AS total, min(x) AS lo, max(x) AS hi FROM bench GROUP BY k;"
        ))
        .await?;

    let started = Instant::now();
    let chunk_rows = 100_000;
    let mut loaded = 0;
    while loaded < rows {
        let end = (loaded + chunk_rows).min(rows);
        let mut csv = String::with_capacity((end - loaded) * 32);
        for i in loaded..end {
            csv.push_str(&format!("{i},{},{}.5\n", (i * 7919) % keys, i % 1000));
        }
        let sink = client.copy_in::<_, bytes::Bytes>("COPY bench FROM STDIN WITH (FORMAT csv)").await?;
        futures::pin_mut!(sink);
        sink.send(bytes::Bytes::from(csv)).await?;
        sink.finish().await?;
        loaded = end;
    }
    let copied = started.elapsed().as_secs_f64();
    client.batch_execute("FLUSH").await?;
    let total = started.elapsed().as_secs_f64();
    let check = client.query_one("SELECT sum(n)::BIGINT, count(*)::BIGINT FROM agg", &[]).await?;
    let (counted, groups): (i64, i64) = (check.get(0), check.get(1));
    assert_eq!(counted as usize, rows, "the view must count every loaded row");
    println!("load:        {rows} rows by COPY in {copied:.2} s");
    println!(
        "view:        {groups} groups; load + view caught up in {total:.2} s = {:.0} rows/s end to end",
        rows as f64 / total
    );
    println!("view lag:    FLUSH after the last COPY took {:.2} s", total - copied);

    let started = Instant::now();
    client
        .batch_execute(
            "CREATE MATERIALIZED VIEW agg_backfilled AS
               SELECT k, count(*) AS n, sum(x) AS total, min(x) AS lo, max(x) AS hi FROM bench GROUP BY k",
        )
        .await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "backfill:    CREATE MATERIALIZED VIEW over {rows} rows in {secs:.2} s = {:.0} rows/s",
        rows as f64 / secs
    );

    let mut delays = Vec::new();
    for i in 0..50 {
        let key = 1_000_000_000 + i as i64;
        let sent = Instant::now();
        client.execute("INSERT INTO bench VALUES ($1, $2, 1.0)", &[&(key + rows as i64), &key]).await?;
        loop {
            let found = client.query("SELECT n FROM agg WHERE k = $1", &[&key]).await?;
            if !found.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        delays.push(sent.elapsed());
    }
    delays.sort();
    println!(
        "visibility:  INSERT to visible in the view: median {:.0} ms, max {:.0} ms (50 inserts)",
        delays[delays.len() / 2].as_secs_f64() * 1000.0,
        delays[delays.len() - 1].as_secs_f64() * 1000.0
    );
    Ok(())
}
