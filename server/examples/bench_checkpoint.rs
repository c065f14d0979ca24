//! Benchmark: checkpoints of large keyed state, and recovery after kill -9.
//!
//! ```sh
//! cargo build --release -p weir-server --bin weir --example bench_checkpoint
//! target/release/examples/bench_checkpoint [KEYS=4000000] [BACKEND=rocksdb] [PAYLOAD_BYTES=100]
//! ```
//!
//! Starts the release `weir` binary (next to this example's directory) as a child process
//! with 1 s checkpoints, and builds an aggregate whose state holds KEYS groups, each keeping
//! a PAYLOAD_BYTES string (`max(payload)`) besides its count: about 1 GB of keyed state with
//! the defaults. Once the source has finished, it reports the size and duration of the
//! checkpoints of that state (from `weir_catalog.checkpoints`). Then it kills the server
//! with SIGKILL, starts it again, and reports the recovery time: from the restart to the
//! first new checkpoint committed after the restored one (the job restored, its state back
//! in the backend and the dataflow running again).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    port: u16,
}

fn weir_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = exe.parent().and_then(Path::parent).ok_or("no target directory")?;
    let binary = dir.join("weir");
    match binary.exists() {
        true => Ok(binary),
        false => Err(format!(
            "{} not found: build it with `cargo build --release -p weir-server`",
            binary.display()
        )),
    }
}

fn start(
    config: &Path,
    data_dir: &Path,
    port: u16,
    log: &Path,
) -> Result<Server, Box<dyn std::error::Error>> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let child = Command::new(weir_binary()?)
        .args(["--config", &config.display().to_string(), "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data_dir)
        .env("WEIR_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    Ok(Server { child, port })
}

async fn connect(port: u16) -> tokio_postgres::Client {
    let conn = format!("host=127.0.0.1 port={port} user=bench dbname=weir");
    loop {
        if let Ok((client, connection)) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await {
            tokio::spawn(connection);
            return client;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The latest completed checkpoint: (epoch, bytes, duration in seconds).
async fn latest_checkpoint(client: &tokio_postgres::Client) -> Option<(i64, i64, f64)> {
    let rows = client
        .query(
            "SELECT epoch, bytes, duration FROM weir_catalog.checkpoints WHERE status = 'completed' \
             ORDER BY epoch DESC LIMIT 1",
            &[],
        )
        .await
        .ok()?;
    rows.first().map(|r| (r.get(0), r.get(1), r.get(2)))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let keys: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(4_000_000);
    let backend = args.get(2).cloned().unwrap_or_else(|| "rocksdb".into());
    let payload: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(100);
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("weir.toml");
    std::fs::write(&config, format!("state.backend = \"{backend}\"\ncheckpoint.interval = \"1s\"\n"))?;
    let data_dir = dir.path().join("data");
    let log = dir.path().join("weir.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut server = start(&config, &data_dir, port, &log)?;
    let client = connect(server.port).await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE keys (k BIGINT, payload VARCHAR) WITH (connector = 'datagen',
               datagen.rows.per.second = '100000000', datagen.split.num = '2',
               fields.k.kind = 'sequence', fields.k.start = '1', fields.k.end = '{keys}',
               fields.payload.length = '{payload}');
             SET streaming_parallelism = 2;
             CREATE MATERIALIZED VIEW totals AS
               SELECT count(*) AS groups, sum(n) AS rows_, sum(length(p)) AS payload_bytes
               FROM (SELECT k, count(*) AS n, max(payload) AS p FROM keys GROUP BY k) g;"
        ))
        .await?;
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let done: bool = client
            .query_one(
                "SELECT count(*) FILTER (WHERE status = 'finished') = count(*) FROM weir_catalog.sources \
                 WHERE job = 'totals'",
                &[],
            )
            .await?
            .get(0);
        if done {
            break;
        }
    }
    client.batch_execute("FLUSH").await?;
    let ingest = started.elapsed();
    let groups: i64 = client.query_one("SELECT groups FROM totals", &[]).await?.get(0);
    println!(
        "state: {groups} groups ({backend}) built in {:.1} s ({:.0} keys/s)",
        ingest.as_secs_f64(),
        groups as f64 / ingest.as_secs_f64()
    );
    // Checkpoints of the whole state, now that it no longer changes.
    let first = latest_checkpoint(&client).await.map_or(0, |c| c.0);
    let mut measured = Vec::new();
    while measured.len() < 3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(c) = latest_checkpoint(&client).await {
            if c.0 > first && measured.last().is_none_or(|m: &(i64, i64, f64)| m.0 < c.0) {
                measured.push(c);
            }
        }
    }
    for (epoch, bytes, seconds) in &measured {
        println!(
            "checkpoint epoch {epoch}: {:.1} MB in {seconds:.2} s ({:.0} MB/s)",
            *bytes as f64 / 1e6,
            *bytes as f64 / 1e6 / seconds.max(1e-9)
        );
    }
    let restored_epoch = measured.last().map_or(0, |c| c.0);

    // kill -9, then time until a new checkpoint commits after the restored one.
    server.child.kill()?;
    server.child.wait()?;
    let restart = Instant::now();
    let mut server = start(&config, &data_dir, port, &log)?;
    let client = connect(server.port).await;
    let listening = restart.elapsed();
    let recovered = loop {
        if let Some((epoch, ..)) = latest_checkpoint(&client).await {
            if epoch > restored_epoch {
                break restart.elapsed();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let after: i64 = client.query_one("SELECT groups FROM totals", &[]).await?.get(0);
    println!(
        "recovery after kill -9: listening after {:.2} s, first new checkpoint committed after {:.2} s \
         (view has {after} groups, {groups} before the kill)",
        listening.as_secs_f64(),
        recovered.as_secs_f64()
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    for line in text.lines().filter(|l| l.contains("task state restored") || l.contains("recovering from")) {
        println!("  log: {}", line.split_once("  INFO ").map_or(line, |(_, rest)| rest));
    }
    server.child.kill()?;
    server.child.wait()?;
    Ok(())
}
