//! Benchmark: bulk load over the wire with COPY, then a grouped aggregate over the loaded
//! rows. Starts a real Weir server in this process on a free loopback port and a temporary
//! data directory, and drives it with tokio-postgres, exactly as `\copy` and psql would.
//!
//! ```sh
//! cargo run --release -p weir-server --example bench_copy_aggregate -- [ROWS] [KEYS]
//! ```
//!
//! Prints rows/s for the COPY (parse + durable write) and for
//! `SELECT k, count(*), sum(x) FROM bench GROUP BY k` (scan from RocksDB + aggregate).

use std::time::Instant;

use futures::SinkExt;

mod support;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let keys: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let server = support::start(|_| {}).await?;
    let client = &server.client;
    client
        .batch_execute("CREATE TABLE bench (id BIGINT PRIMARY KEY, k INT, x DOUBLE PRECISION, note TEXT)")
        .await?;

    let mut csv = String::with_capacity(rows * 40);
    for i in 0..rows {
        csv.push_str(&format!("{i},{},{}.5,note-{}\n", i % keys, i % 1000, i % 97));
    }
    let bytes = csv.len();
    let started = Instant::now();
    let sink = client.copy_in::<_, bytes::Bytes>("COPY bench FROM STDIN WITH (FORMAT csv)").await?;
    futures::pin_mut!(sink);
    for chunk in csv.as_bytes().chunks(1 << 20) {
        sink.send(bytes::Bytes::copy_from_slice(chunk)).await?;
    }
    let copied = sink.finish().await?;
    let copy_secs = started.elapsed().as_secs_f64();
    println!(
        "copy:      {copied} rows, {:.1} MB in {copy_secs:.2} s = {:.0} rows/s",
        bytes as f64 / 1e6,
        copied as f64 / copy_secs
    );

    let query = "SELECT k, count(*), sum(x) FROM bench GROUP BY k";
    let mut best = f64::MAX;
    for run in 0..3 {
        let started = Instant::now();
        let result = client.simple_query(query).await?;
        let secs = started.elapsed().as_secs_f64();
        best = best.min(secs);
        let groups =
            result.iter().filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_))).count();
        println!(
            "aggregate: run {run}: {groups} groups over {rows} rows in {secs:.3} s = {:.0} rows/s",
            rows as f64 / secs
        );
    }
    println!("aggregate: best {:.0} rows/s", rows as f64 / best);
    Ok(())
}
