//! Large writes are streamed and still atomic, over the wire: a `COPY FROM STDIN` is written
//! in chunks while its data arrives (the data directory grows before the client finishes),
//! yet a bad row near the end, a cancel request, `statement_timeout`, a dropped connection
//! or a kill -9 leaves nothing of it (a cancelled or timed-out one is rolled back even while
//! its client sends nothing): not in the table, not in a materialized view over it,
//! not after a restart. `INSERT ... SELECT` goes through the same writer.

use std::ops::Range;
use std::path::Path;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::SinkExt;
use tokio_postgres::{Client, CopyInSink};

use crate::support::TestServer;

/// Rows per large COPY: about 50 MB of text, several storage chunks.
const ROWS: i64 = 800_000;

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

fn line(id: i64) -> String {
    format!("{id}\tthe quick brown fox jumps over row {id:>10}\n")
}

type Sink = Pin<Box<CopyInSink<bytes::Bytes>>>;

/// Swaps the line of a row (by id) for another, or keeps it (`None`).
type Replace = Box<dyn Fn(i64) -> Option<String>>;

async fn start_copy(client: &Client, table: &str) -> Result<Sink, String> {
    Ok(Box::pin(client.copy_in::<_, bytes::Bytes>(&format!("COPY {table} FROM STDIN")).await.map_err(show)?))
}

/// Sends the rows `ids` in messages of about 1 MB; `replace` may swap a row's line.
async fn send(
    sink: &mut Sink,
    ids: Range<i64>,
    replace: &dyn Fn(i64) -> Option<String>,
) -> Result<(), String> {
    let mut buffer = String::with_capacity(1 << 20);
    for id in ids {
        buffer.push_str(&replace(id).unwrap_or_else(|| line(id)));
        if buffer.len() >= 1 << 20 {
            sink.send(bytes::Bytes::from(std::mem::take(&mut buffer))).await.map_err(show)?;
        }
    }
    if !buffer.is_empty() {
        sink.send(bytes::Bytes::from(buffer)).await.map_err(show)?;
    }
    Ok(())
}

fn no_change(_: i64) -> Option<String> {
    None
}

fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_usage(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Waits until the data directory has grown by `bytes` since `before`: chunks of the COPY
/// are being written while its data still arrives (a COPY that buffers everything until
/// CopyDone writes nothing before it).
async fn wait_for_chunks(server: &TestServer, before: u64, bytes: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = disk_usage(&server.data_dir);
        if now >= before + bytes {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the data directory grew by {} bytes while the COPY's data arrived: its rows are not written \
                 as they come",
                now.saturating_sub(before)
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn count(client: &Client, table: &str) -> Result<i64, String> {
    client.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.map_err(show).map(|r| r.get(0))
}

/// The view `tv` (count and sum of `t.id`) after a FLUSH.
async fn view(client: &Client) -> Result<(i64, i64), String> {
    client.batch_execute("FLUSH").await.map_err(show)?;
    let row = client.query_one("SELECT n, s FROM tv", &[]).await.map_err(show)?;
    Ok((row.get(0), row.get(1)))
}

/// `t` with ten rows and the view `tv` over it.
async fn setup(client: &Client) -> Result<(), String> {
    client
        .batch_execute(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, v VARCHAR(60));
             INSERT INTO t SELECT i, 'before' FROM generate_series(1, 10) AS g(i);
             CREATE MATERIALIZED VIEW tv AS SELECT count(*) AS n, sum(id)::BIGINT AS s FROM t;",
        )
        .await
        .map_err(show)?;
    check(view(client).await? == (10, 55), "the view over t does not count its ten rows")
}

fn db_code(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_string())
        .unwrap_or_else(|| format!("not a database error: {e}"))
}

pub async fn copy_with_a_bad_row_near_the_end_leaves_nothing() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let mut server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    let observer = server.connect().await;
    setup(&client).await?;
    // (what is wrong, the row near the end that is wrong, the SQLSTATE)
    let near_end = ROWS - 10;
    let cases: [(&str, Replace, &str); 3] = [
        (
            "an integer that does not parse",
            Box::new(move |id| (id == near_end).then(|| "x1\tbad\n".into())),
            "22P02",
        ),
        (
            "a primary key that an earlier chunk wrote",
            Box::new(move |id| (id == near_end).then(|| line(1000))),
            "23505",
        ),
        (
            "a value too long for varchar(60)",
            Box::new(move |id| (id == near_end).then(|| format!("{id}\t{}\n", "y".repeat(100)))),
            "22001",
        ),
    ];
    for (what, replace, code) in cases {
        let before = disk_usage(&server.data_dir);
        let mut sink = start_copy(&client, "t").await?;
        send(&mut sink, 100..near_end - 1000, &no_change).await?;
        wait_for_chunks(&server, before, 16 << 20).await?;
        // Written, and seen by no one yet.
        check(
            count(&observer, "t").await? == 10,
            format!("{what}: another session saw rows of a running COPY"),
        )?;
        check(view(&observer).await? == (10, 55), format!("{what}: the view saw rows of a running COPY"))?;
        send(&mut sink, near_end - 1000..ROWS, replace.as_ref()).await?;
        let error = sink.as_mut().finish().await.err().ok_or(format!("{what}: the COPY was accepted"))?;
        check(db_code(&error) == code, format!("{what}: the COPY failed with {error:?}, not {code}"))?;
        if let Some(db) = error.as_db_error().filter(|_| code == "22P02") {
            let expected = format!("line {}", near_end - 99);
            check(
                db.where_().is_some_and(|w| w.contains(&expected)),
                format!("{what}: error context {:?} does not name {expected}", db.where_()),
            )?;
        }
        check(count(&client, "t").await? == 10, format!("{what}: the failed COPY left rows"))?;
        check(view(&client).await? == (10, 55), format!("{what}: the view saw rows of the failed COPY"))?;
    }
    drop((client, observer));
    server.restart();
    let client = server.connect().await;
    check(count(&client, "t").await? == 10, "rows of the failed COPYs are back after a restart")?;
    check(view(&client).await? == (10, 55), "the view counts rows of the failed COPYs after a restart")?;
    // The keys the failed COPYs wrote are free, and the table takes writes.
    client.batch_execute("INSERT INTO t VALUES (1000, 'after')").await.map_err(show)?;
    check(view(&client).await? == (11, 1055), "the view misses a write after the failed COPYs")
}

/// While a cancelled or timed-out COPY's client sends nothing more, the COPY is rolled back
/// anyway: another session can write the key it had written, at once.
async fn writer_gets_the_table(other: &Client, id: i64, by: &str) -> Result<(), String> {
    let insert = format!("INSERT INTO t VALUES ({id}, 'meanwhile')");
    tokio::time::timeout(Duration::from_secs(20), other.batch_execute(&insert))
        .await
        .map_err(|_| format!("after {by}, a stalled COPY still holds the table's write lock"))?
        .map_err(show)?;
    other.batch_execute(&format!("DELETE FROM t WHERE id = {id}")).await.map_err(show)
}

pub async fn interrupted_copy_leaves_nothing() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let mut server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    setup(&client).await?;

    // A cancel request in the middle of the data.
    let before = disk_usage(&server.data_dir);
    let mut sink = start_copy(&client, "t").await?;
    send(&mut sink, 100..ROWS / 2, &no_change).await?;
    wait_for_chunks(&server, before, 16 << 20).await?;
    client.cancel_token().cancel_query(tokio_postgres::NoTls).await.map_err(show)?;
    let other = server.connect().await;
    writer_gets_the_table(&other, 300, "a cancel").await?;
    send(&mut sink, ROWS / 2..ROWS / 2 + 1000, &no_change).await?;
    let error = sink.as_mut().finish().await.err().ok_or("a cancelled COPY was accepted")?;
    check(db_code(&error) == "57014", format!("a cancelled COPY failed with {error:?}"))?;
    check(count(&client, "t").await? == 10, "a cancelled COPY left rows")?;

    // statement_timeout passing while the data arrives.
    client.batch_execute("SET statement_timeout = '1s'").await.map_err(show)?;
    let mut sink = start_copy(&client, "t").await?;
    send(&mut sink, 100..ROWS / 4, &no_change).await?;
    writer_gets_the_table(&other, 301, "statement_timeout").await?;
    send(&mut sink, ROWS / 4..ROWS / 4 + 1000, &no_change).await?;
    let error = sink.as_mut().finish().await.err().ok_or("a timed-out COPY was accepted")?;
    check(db_code(&error) == "57014", format!("a timed-out COPY failed with {error:?}"))?;
    client.batch_execute("SET statement_timeout = 0").await.map_err(show)?;
    check(count(&client, "t").await? == 10, "a timed-out COPY left rows")?;

    // The connection closes in the middle of the data: the COPY is rolled back and its lock
    // released.
    let before = disk_usage(&server.data_dir);
    let dropped = server.connect().await;
    let mut sink = start_copy(&dropped, "t").await?;
    send(&mut sink, 100..ROWS / 2, &no_change).await?;
    wait_for_chunks(&server, before, 16 << 20).await?;
    drop((sink, dropped));
    tokio::time::timeout(
        Duration::from_secs(60),
        client.batch_execute("INSERT INTO t VALUES (200, 'after')"),
    )
    .await
    .map_err(|_| "a write waited for the lock of a COPY whose connection closed".to_string())?
    .map_err(show)?;
    check(view(&client).await? == (11, 255), "a COPY whose connection closed left rows")?;

    // kill -9 in the middle of the data: the chunks written are discarded at startup.
    let before = disk_usage(&server.data_dir);
    let mut sink = start_copy(&client, "t").await?;
    send(&mut sink, 1000..ROWS / 2, &no_change).await?;
    wait_for_chunks(&server, before, 16 << 20).await?;
    drop(sink);
    drop(client);
    server.restart();
    let client = server.connect().await;
    check(view(&client).await? == (11, 255), "rows of a COPY killed mid-stream are there after the restart")?;
    check(
        server.log().contains("uncommitted chunked insert discarded at startup"),
        "the restart did not discard the killed COPY's chunks",
    )?;
    client.batch_execute("INSERT INTO t VALUES (1000, 'after')").await.map_err(show)?;
    check(count(&client, "t").await? == 12, "the table does not take a row the killed COPY had written")?;

    // DROP TABLE waits for a running COPY into the table (its write lock) instead of
    // dropping the table under it.
    client.batch_execute("CREATE TABLE u (id BIGINT PRIMARY KEY, v TEXT)").await.map_err(show)?;
    let mut sink = start_copy(&client, "u").await?;
    send(&mut sink, 1..ROWS / 4, &no_change).await?;
    let dropper = server.connect().await;
    let drop = tokio::spawn(async move { dropper.batch_execute("DROP TABLE u").await.map_err(show) });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    check(!drop.is_finished(), "DROP TABLE did not wait for the COPY into the table")?;
    let copied = sink.as_mut().finish().await.map_err(show)?;
    check(copied == (ROWS / 4 - 1) as u64, format!("the COPY before the DROP wrote {copied} rows"))?;
    tokio::time::timeout(Duration::from_secs(60), drop)
        .await
        .map_err(|_| "DROP TABLE did not finish after the COPY".to_string())?
        .map_err(show)??;
    let gone = client.query_one("SELECT count(*) FROM u", &[]).await.err().map(|e| db_code(&e));
    check(gone.as_deref() == Some("42P01"), format!("u after DROP TABLE: {gone:?}"))
}

pub async fn multi_chunk_copy_and_insert_select_are_complete_or_nothing() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let mut server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    setup(&client).await?;
    let mut sink = start_copy(&client, "t").await?;
    send(&mut sink, 11..ROWS + 11, &no_change).await?;
    let copied = sink.as_mut().finish().await.map_err(show)?;
    check(copied == ROWS as u64, format!("COPY reported {copied} rows"))?;
    let total = ROWS + 10;
    let sum = total * (total + 1) / 2;
    check(view(&client).await? == (total, sum), "the view does not see every row of the COPY")?;
    let row = client.query_one("SELECT count(*), sum(id)::BIGINT FROM t", &[]).await.map_err(show)?;
    check((row.get::<_, i64>(0), row.get::<_, i64>(1)) == (total, sum), "the table lacks rows of the COPY")?;

    // An INSERT ... SELECT that reads the table it writes, over several chunks, reads it as
    // it was before the statement: it copies each row once.
    let copied = client.execute("INSERT INTO t SELECT id + 100000000, v FROM t", &[]).await.map_err(show)?;
    check(
        copied == total as u64,
        format!("INSERT INTO t SELECT ... FROM t wrote {copied} rows, not {total}"),
    )?;
    check(count(&client, "t").await? == 2 * total, "INSERT INTO t SELECT ... FROM t saw its own rows")?;
    client.batch_execute("DELETE FROM t WHERE id > 100000000").await.map_err(show)?;

    // INSERT ... SELECT of several chunks, then one whose duplicate key is near its end.
    client.batch_execute("CREATE TABLE d (id BIGINT PRIMARY KEY, v TEXT)").await.map_err(show)?;
    let n = client
        .execute(
            &format!("INSERT INTO d SELECT i, repeat('x', 40) FROM generate_series(1, {ROWS}) AS g(i)"),
            &[],
        )
        .await
        .map_err(show)?;
    check(
        n == ROWS as u64 && count(&client, "d").await? == ROWS,
        format!("INSERT ... SELECT wrote {n} rows"),
    )?;
    let duplicate = client
        .execute(
            &format!(
                "INSERT INTO d SELECT CASE WHEN i = {} THEN 5 ELSE i END, repeat('y', 40) \
                 FROM generate_series({}, {}) AS g(i)",
                2 * ROWS - 10,
                ROWS + 1,
                2 * ROWS
            ),
            &[],
        )
        .await
        .err()
        .ok_or("an INSERT ... SELECT with a duplicate key was accepted")?;
    check(db_code(&duplicate) == "23505", format!("the duplicate failed with {duplicate:?}"))?;
    check(count(&client, "d").await? == ROWS, "a failed INSERT ... SELECT left rows")?;
    drop(client);
    server.restart();
    let client = server.connect().await;
    check(count(&client, "d").await? == ROWS, "rows of a failed INSERT ... SELECT are back after a restart")?;
    check(count(&client, "t").await? == total, "the committed COPY lost rows in the restart")?;
    client.batch_execute(&format!("INSERT INTO d VALUES ({}, 'after')", ROWS + 1)).await.map_err(show)?;
    check(count(&client, "d").await? == ROWS + 1, "a key of the failed INSERT ... SELECT is not free")
}

/// Under `statement_timeout` a SELECT's rows are sent as they are produced, not collected
/// first: a client receives rows of a result far larger than it could collect in time, then
/// `57014` when the timeout passes; a query that ends in time is complete. (Simple query
/// protocol: in the extended protocol pgwire's portal still collects a result before
/// sending it.)
pub async fn a_select_under_statement_timeout_streams_its_rows() -> Result<(), String> {
    use futures::TryStreamExt;
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    client.batch_execute("SET statement_timeout = '3s'").await.map_err(show)?;
    let started = Instant::now();
    let rows = client
        .simple_query_raw("SELECT i, repeat('x', 200) FROM generate_series(1, 1000000000) AS g(i)")
        .await
        .map_err(show)?;
    futures::pin_mut!(rows);
    let mut received = 0u64;
    let error = loop {
        match rows.try_next().await {
            Ok(Some(tokio_postgres::SimpleQueryMessage::Row(_))) => received += 1,
            Ok(Some(_)) => {}
            Ok(None) => return Err("a billion rows arrived within the statement timeout".into()),
            Err(e) => break e,
        }
    };
    check(db_code(&error) == "57014", format!("the timed-out SELECT failed with {error:?}"))?;
    check(received > 0, "no row arrived before the statement timeout: the result was collected first")?;
    check(
        started.elapsed() < Duration::from_secs(30),
        format!("the statement timeout of 3 s ended the SELECT after {:?}", started.elapsed()),
    )?;
    let n: i64 = client
        .query_one("SELECT count(*) FROM generate_series(1, 100000) AS g(i)", &[])
        .await
        .map_err(show)?
        .get(0);
    check(n == 100_000, format!("a SELECT within the timeout counted {n}"))
}
