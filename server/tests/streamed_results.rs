//! A large batch `SELECT` over a table streams in bounded memory, through the simple and
//! the extended query protocol, also when it computes an expression of each row and when
//! the client reads slowly. DataFusion computes such a projection (or filter) of a
//! one-partition scan on several partitions behind a round-robin repartition; its queues
//! held tens of MB more of the result than the plain scan did (see the server's
//! `single_stream_results` rule).

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::support::TestServer;

fn show(e: impl std::fmt::Display) -> String {
    e.to_string()
}

const NO_PARAMS: [&(dyn ToSql + Sync); 0] = [];

const ROWS: i64 = 300_000;
const WIDTH: i64 = 1_000;

/// The protocol a query is sent with.
#[derive(Clone, Copy, Debug)]
enum Protocol {
    Simple,
    Extended,
}

/// Reads every row of `sql`, pausing now and then as a slow client does; returns the rows
/// and the bytes of text received.
async fn read_slowly(client: &Client, sql: &str, protocol: Protocol) -> Result<(i64, u64), String> {
    let (mut rows, mut bytes) = (0i64, 0u64);
    let mut count = |width: usize| {
        rows += 1;
        bytes += width as u64 + 8;
        rows % 5_000 == 0
    };
    match protocol {
        Protocol::Simple => {
            let messages = client.simple_query_raw(sql).await.map_err(show)?;
            futures::pin_mut!(messages);
            while let Some(message) = messages.try_next().await.map_err(show)? {
                if let SimpleQueryMessage::Row(row) = message {
                    if count(row.get(1).map_or(0, str::len)) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }
        Protocol::Extended => {
            let stream = client.query_raw(sql, NO_PARAMS).await.map_err(show)?;
            futures::pin_mut!(stream);
            while let Some(row) = stream.try_next().await.map_err(show)? {
                if count(row.get::<_, String>(1).len()) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
    Ok((rows, bytes))
}

/// About 300 MB of table rows, plain, with a computed column, and filtered, through both
/// protocols, read slowly: the server's peak resident memory grows by less than a quarter
/// of the result each time. Each query runs in a freshly started server (the allocator keeps
/// what an earlier query freed, which would hide the growth).
pub async fn a_large_select_with_expressions_streams_in_bounded_memory() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let mut server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    client.batch_execute("CREATE TABLE t (i int, s text)").await.map_err(show)?;
    for start in (0..ROWS).step_by(50_000) {
        let insert = format!(
            "INSERT INTO t SELECT i, repeat('x', {WIDTH}) FROM generate_series({}, {}) AS g(i)",
            start + 1,
            (start + 50_000).min(ROWS)
        );
        client.batch_execute(&insert).await.map_err(show)?;
    }
    drop(client);

    let queries = [
        ("SELECT i, s FROM t", ROWS),
        ("SELECT i * 2, s FROM t", ROWS),
        ("SELECT i * 2, s FROM t WHERE i % 5 <> 0", ROWS / 5 * 4),
    ];
    let mut failures = Vec::new();
    for (sql, expected) in queries {
        for protocol in [Protocol::Simple, Protocol::Extended] {
            server.restart();
            let client = server.connect().await;
            // Warm up (catalogs, DataFusion, the first batch buffers, and the code of this
            // query's expressions, whose pages count in the resident set once run), then take
            // the baseline.
            read_slowly(&client, &format!("{sql} LIMIT 20000"), protocol).await?;
            let baseline = server.peak_rss_kib().ok_or("no VmHWM for the server")?;
            let started = Instant::now();
            let (received, bytes) = read_slowly(&client, sql, protocol).await?;
            let peak = server.peak_rss_kib().ok_or("no VmHWM for the server")?;
            if received != expected {
                return Err(format!("{sql} ({protocol:?}) returned {received} rows, expected {expected}"));
            }
            let grown_mb = peak.saturating_sub(baseline) / 1024;
            let result_mb = bytes / (1 << 20);
            eprintln!(
                "{sql} ({protocol:?}): {result_mb} MB in {:?}, peak RSS {} MB (baseline {} MB, grew {grown_mb} MB)",
                started.elapsed(),
                peak / 1024,
                baseline / 1024
            );
            if grown_mb * 4 >= result_mb {
                failures
                    .push(format!("{sql} ({protocol:?}): grew by {grown_mb} MB for a {result_mb} MB result"));
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("the server's peak memory grew with the result: {}", failures.join("; ")))
    }
}
