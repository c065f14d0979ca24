//! A SELECT in the extended query protocol (Parse/Bind/Execute, what every driver uses)
//! streams its rows: the server never holds the whole result, an Execute with a row limit
//! suspends the portal and the next Execute continues it, and a cancel request or
//! `statement_timeout` ends the stream with `57014` and leaves the session usable. The
//! per-query memory limit still applies.

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::support::TestServer;

fn show(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn check(condition: bool, message: impl Into<String>) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(message.into())
    }
}

fn db_code(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map(|d| d.code().code().to_string()).unwrap_or_else(|| e.to_string())
}

const NO_PARAMS: [&(dyn ToSql + Sync); 0] = [];

/// The rows of `sql` through the simple query protocol, as text.
async fn simple_rows(client: &Client, sql: &str) -> Result<Vec<Vec<String>>, String> {
    Ok(client
        .simple_query(sql)
        .await
        .map_err(show)?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => {
                Some((0..row.len()).map(|i| row.get(i).unwrap_or("NULL").to_string()).collect())
            }
            _ => None,
        })
        .collect())
}

fn as_text(rows: &[tokio_postgres::Row]) -> Vec<Vec<String>> {
    rows.iter().map(|r| vec![r.get::<_, i32>(0).to_string(), r.get::<_, String>(1)]).collect()
}

/// Two portals of one statement, executed alternately with row limits, each give the first
/// N rows, then the next ones on re-execution, then the rest: together exactly the rows the
/// simple protocol returns. A portal that has finished returns no more rows.
pub async fn a_portal_with_a_row_limit_is_suspended_and_resumed() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let mut client = server.connect().await;
    let expected = simple_rows(
        &client,
        "SELECT i, 'row ' || CAST(i AS TEXT) FROM generate_series(1, 1000) AS g(i) WHERE i <= 997 ORDER BY i",
    )
    .await?;
    check(expected.len() == 997, format!("the simple protocol returned {} rows", expected.len()))?;

    let tx = client.transaction().await.map_err(show)?;
    let statement = tx
        .prepare("SELECT i, 'row ' || CAST(i AS TEXT) FROM generate_series(1, 1000) AS g(i) WHERE i <= $1 ORDER BY i")
        .await
        .map_err(show)?;
    let first = tx.bind(&statement, &[&997i32]).await.map_err(show)?;
    let second = tx.bind(&statement, &[&997i32]).await.map_err(show)?;
    let (mut from_first, mut from_second) = (Vec::new(), Vec::new());
    for (limit, first_gets) in [(300, 300), (300, 300), (300, 300), (300, 97)] {
        let rows = tx.query_portal(&first, limit).await.map_err(show)?;
        check(
            rows.len() == first_gets,
            format!("an Execute limited to {limit} rows returned {} (expected {first_gets})", rows.len()),
        )?;
        from_first.extend(as_text(&rows));
        // The other portal advances on its own.
        from_second.extend(as_text(&tx.query_portal(&second, 250).await.map_err(show)?));
    }
    from_second.extend(as_text(&tx.query_portal(&second, 0).await.map_err(show)?));
    let after_end = tx.query_portal(&first, 10).await.map_err(show)?;
    tx.commit().await.map_err(show)?;
    check(from_first == expected, "the first portal's rows differ from the simple protocol's")?;
    check(from_second == expected, "the second portal's rows differ from the simple protocol's")?;
    check(after_end.is_empty(), format!("a finished portal returned {} more rows", after_end.len()))?;
    // The session goes on.
    let n: i64 = client
        .query_one("SELECT count(*) FROM generate_series(1, 10) AS g(i)", &[])
        .await
        .map_err(show)?
        .get(0);
    check(n == 10, format!("a query after the portals counted {n}"))
}

/// About 800 MB of rows through Parse/Bind/Execute (no row limit, as drivers send it):
/// the server's peak resident memory stays far below the result size, because each batch
/// is sent before the next is produced.
pub async fn a_large_extended_select_streams_in_bounded_memory() -> Result<(), String> {
    const ROWS: i64 = 800_000;
    const WIDTH: i64 = 1_000;
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    // Warm up (catalogs, DataFusion, the first batch buffers), then take the baseline.
    let warm = format!("SELECT i, repeat('x', {WIDTH}) FROM generate_series(1, 20000) AS g(i)");
    client.query(&warm, &[]).await.map_err(show)?;
    let baseline = server.peak_rss_kib().ok_or("no VmHWM for the server")?;

    let started = Instant::now();
    let sql = format!("SELECT i, repeat('x', {WIDTH}) FROM generate_series(1, {ROWS}) AS g(i)");
    let rows = client.query_raw(&sql, NO_PARAMS).await.map_err(show)?;
    futures::pin_mut!(rows);
    let (mut received, mut bytes) = (0i64, 0u64);
    while let Some(row) = rows.try_next().await.map_err(show)? {
        received += 1;
        bytes += row.get::<_, String>(1).len() as u64 + 8;
    }
    let peak = server.peak_rss_kib().ok_or("no VmHWM for the server")?;
    check(received == ROWS, format!("the SELECT returned {received} rows, expected {ROWS}"))?;
    let grown_mb = peak.saturating_sub(baseline) / 1024;
    let result_mb = bytes / (1 << 20);
    eprintln!(
        "extended SELECT of {result_mb} MB in {:?}: peak RSS {} MB (baseline {} MB, grew {grown_mb} MB)",
        started.elapsed(),
        peak / 1024,
        baseline / 1024
    );
    check(
        grown_mb * 4 < result_mb,
        format!(
            "the server's peak memory grew by {grown_mb} MB for a {result_mb} MB result: the result was collected"
        ),
    )
}

/// Reads rows of an endless extended-protocol SELECT until it fails; returns the error and
/// how many rows arrived before it. `after_rows`: called once when that many rows arrived.
async fn read_until_error(
    client: &Client,
    after: u64,
    on_rows: impl std::future::Future<Output = ()>,
) -> Result<(tokio_postgres::Error, u64), String> {
    let sql = "SELECT i, repeat('x', 200) FROM generate_series(1, 1000000000) AS g(i)";
    let rows = client.query_raw(sql, NO_PARAMS).await.map_err(show)?;
    futures::pin_mut!(rows);
    let mut on_rows = Some(Box::pin(on_rows));
    let mut received = 0u64;
    loop {
        match rows.try_next().await {
            Ok(Some(_)) => {
                received += 1;
                if received == after {
                    if let Some(f) = on_rows.take() {
                        f.await;
                    }
                }
            }
            Ok(None) => return Err("a billion rows arrived without the cancel or timeout".into()),
            Err(e) => return Ok((e, received)),
        }
    }
}

/// A cancel request and `statement_timeout` stop a streaming extended-protocol SELECT with
/// `57014` after rows have been sent, and the session is usable afterwards. A portal
/// suspended by a row limit gets the whole timeout again at each Execute, as in Postgres.
/// A query over `[query] memory_limit_mb` still fails with `53200`.
pub async fn cancel_and_timeout_stop_a_streaming_select() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let config = dir.path().join("weir.toml");
    std::fs::write(&config, "[query]\nmemory_limit_mb = 1\n").map_err(show)?;
    let server =
        TestServer::start_with(&dir.path().join("data"), &["--config".into(), config.display().to_string()]);
    let mut client = server.connect().await;

    // The cancel request, sent after 1,000 rows arrived.
    let token = client.cancel_token();
    let started = Instant::now();
    let (error, received) = read_until_error(&client, 1_000, async move {
        let _ = token.cancel_query(tokio_postgres::NoTls).await;
    })
    .await?;
    check(db_code(&error) == "57014", format!("the cancelled SELECT failed with {error:?}"))?;
    check(received >= 1_000, format!("only {received} rows arrived before the cancel"))?;
    check(started.elapsed() < Duration::from_secs(60), format!("the cancel took {:?}", started.elapsed()))?;
    let n: i64 = client
        .query_one("SELECT count(*) FROM generate_series(1, 7) AS g(i)", &[])
        .await
        .map_err(show)?
        .get(0);
    check(n == 7, format!("a query after the cancel counted {n}"))?;

    // statement_timeout, mid-stream.
    client.batch_execute("SET statement_timeout = '2s'").await.map_err(show)?;
    let started = Instant::now();
    let (error, received) = read_until_error(&client, 0, async {}).await?;
    check(db_code(&error) == "57014", format!("the timed-out SELECT failed with {error:?}"))?;
    check(received > 0, "no row arrived before the statement timeout: the result was collected first")?;
    check(
        started.elapsed() < Duration::from_secs(30),
        format!("the 2 s statement timeout ended the SELECT after {:?}", started.elapsed()),
    )?;
    let n: i64 = client
        .query_one("SELECT count(*) FROM generate_series(1, 8) AS g(i)", &[])
        .await
        .map_err(show)?
        .get(0);
    check(n == 8, format!("a query after the timeout counted {n}"))?;

    // A suspended portal read slowly: each Execute is within the timeout, the whole is not.
    client.batch_execute("SET statement_timeout = '1s'").await.map_err(show)?;
    let tx = client.transaction().await.map_err(show)?;
    let statement = tx.prepare("SELECT i FROM generate_series(1, 100) AS g(i)").await.map_err(show)?;
    let portal = tx.bind(&statement, &[]).await.map_err(show)?;
    let mut fetched = 0;
    for _ in 0..3 {
        fetched +=
            tx.query_portal(&portal, 10).await.map_err(|e| format!("a resumed Execute failed: {e:?}"))?.len();
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    fetched += tx.query_portal(&portal, 0).await.map_err(show)?.len();
    tx.commit().await.map_err(show)?;
    check(fetched == 100, format!("the slowly read portal gave {fetched} rows"))?;
    client.batch_execute("SET statement_timeout = 0").await.map_err(show)?;

    // The per-query memory pool still applies to extended-protocol queries.
    let join = "SELECT count(*) FROM generate_series(1, 1000000) AS a(i) JOIN generate_series(1, 1000000) AS b(j) ON i = j";
    match client.query(join, &[]).await {
        Ok(_) => return Err("a million-row hash join ran within a 1 MB memory limit".into()),
        Err(e) => check(db_code(&e) == "53200", format!("the join over the memory limit failed with {e:?}"))?,
    }
    let n: i64 = client
        .query_one("SELECT count(*) FROM generate_series(1, 9) AS g(i)", &[])
        .await
        .map_err(show)?
        .get(0);
    check(n == 9, format!("a query after the memory error counted {n}"))
}
