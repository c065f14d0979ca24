//! DDL is atomic under cancel, `statement_timeout` and kill -9: a statement stopped with
//! `57014` leaves nothing of itself (catalog, `weir_catalog.jobs`, checkpoint directories,
//! a file sink's rows and markers) and its name can be used again; one that completes says
//! so; a restart shows the same state. Covers CREATE MATERIALIZED VIEW and CREATE SINK
//! stopped during their backfill, DROP ... CASCADE, ALTER TABLE ADD/DROP COLUMN and CREATE
//! TABLE under timeouts, and kill -9 during a view's backfill.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::support::TestServer;

/// Rows of the table the slow views join with itself.
const ROWS: i64 = 300_000;

/// A view whose backfill takes seconds: a self-join of the whole table.
const SLOW_QUERY: &str = "SELECT a.id, b.v FROM t a JOIN t b ON a.id = b.id";

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

async fn rows(client: &Client, sql: &str) -> Result<Vec<String>, String> {
    Ok(client
        .simple_query(sql)
        .await
        .map_err(|e| format!("{sql}: {}", e.as_db_error().map_or(e.to_string(), |d| d.to_string())))?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => {
                Some((0..row.len()).map(|i| row.get(i).unwrap_or("NULL")).collect::<Vec<_>>().join("|"))
            }
            _ => None,
        })
        .collect())
}

/// Everything a DDL statement could leave behind: relations, columns, jobs, and the
/// checkpoint and file directories.
async fn state(client: &Client, data_dir: &Path) -> Result<Vec<String>, String> {
    let mut out = rows(
        client,
        "SELECT c.relname, c.relkind FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' ORDER BY 1",
    )
    .await?;
    out.extend(
        rows(
            client,
            "SELECT table_name, column_name FROM information_schema.columns \
             WHERE table_schema = 'public' ORDER BY 1, ordinal_position",
        )
        .await?,
    );
    out.extend(rows(client, "SELECT view, kind FROM weir_catalog.jobs ORDER BY 1").await?);
    for dir in ["checkpoints", "files"] {
        let mut names: Vec<String> = std::fs::read_dir(data_dir.join(dir))
            .map(|entries| {
                entries.flatten().map(|e| format!("{dir}/{}", e.file_name().to_string_lossy())).collect()
            })
            .unwrap_or_default();
        names.sort();
        out.extend(names);
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug)]
enum Stop {
    Timeout,
    CancelRequest,
}

/// Runs `sql`, stopped after `after` by `stop`; the error if it failed, `None` if it
/// completed.
async fn stopped(client: &Client, sql: &str, after: Duration, stop: Stop) -> Result<Option<String>, String> {
    let result = match stop {
        Stop::Timeout => {
            client
                .batch_execute(&format!("SET statement_timeout = {}", after.as_millis().max(1)))
                .await
                .map_err(show)?;
            let result = client.batch_execute(sql).await;
            client.batch_execute("SET statement_timeout = 0").await.map_err(show)?;
            result
        }
        Stop::CancelRequest => {
            let token = client.cancel_token();
            let canceller = tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let _ = token.cancel_query(tokio_postgres::NoTls).await;
            });
            let result = client.batch_execute(sql).await;
            let _ = canceller.await;
            // A cancel request that arrives after the statement completed must not stop the
            // next one (it is handled on another connection, as in Postgres).
            tokio::time::sleep(Duration::from_millis(300)).await;
            result
        }
    };
    Ok(result.err().map(|e| db_code(&e)))
}

async fn start_with_table(dir: &Path) -> Result<(TestServer, Client), String> {
    let server = TestServer::start(&dir.join("data"));
    let client = server.connect().await;
    client.batch_execute("CREATE TABLE t (id BIGINT, v TEXT)").await.map_err(show)?;
    client
        .batch_execute(&format!(
            "INSERT INTO t SELECT i, 'value ' || CAST(i AS TEXT) FROM generate_series(1, {ROWS}) AS g(i)"
        ))
        .await
        .map_err(show)?;
    Ok((server, client))
}

/// How long an uninterrupted `CREATE {kind} name AS SLOW_QUERY {with}` takes (then dropped).
async fn backfill_time(client: &Client, create: &str, drop: &str) -> Result<Duration, String> {
    let started = Instant::now();
    client.batch_execute(create).await.map_err(show)?;
    let took = started.elapsed();
    client.batch_execute(drop).await.map_err(show)?;
    Ok(took)
}

/// `CREATE MATERIALIZED VIEW` and `CREATE SINK` stopped by a timeout or a cancel request
/// during their backfill: `57014`, and nothing left (catalog, job, checkpoints); the name
/// is free at once; the same after a restart.
pub async fn create_view_and_sink_stopped_mid_backfill_leave_nothing() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let (mut server, client) = start_with_table(dir.path()).await?;
    let data = dir.path().join("data");
    let before = state(&client, &data).await?;
    let statements = [
        (
            format!("CREATE MATERIALIZED VIEW j AS {SLOW_QUERY}"),
            "DROP MATERIALIZED VIEW j",
            "CREATE MATERIALIZED VIEW j AS SELECT id FROM t WHERE id <= 10",
        ),
        (
            format!("CREATE SINK j AS {SLOW_QUERY} WITH (connector = 'blackhole')"),
            "DROP SINK j",
            "CREATE SINK j AS SELECT id FROM t WHERE id <= 10 WITH (connector = 'blackhole')",
        ),
    ];
    for (create, drop, small) in &statements {
        let full = backfill_time(&client, create, drop).await?;
        eprintln!("uninterrupted: {create} took {full:?}");
        let now = state(&client, &data).await?;
        check(now == before, format!("DROP after `{create}` left {now:?} (before: {before:?})"))?;
        for stop in [Stop::Timeout, Stop::CancelRequest] {
            let after = full / 3;
            let started = Instant::now();
            let outcome = stopped(&client, create, after, stop).await?;
            eprintln!("{stop:?} after {after:?}: {outcome:?} in {:?}", started.elapsed());
            check(
                outcome.as_deref() == Some("57014"),
                format!("`{create}` stopped by {stop:?} after {after:?} gave {outcome:?}"),
            )?;
            let now = state(&client, &data).await?;
            check(
                now == before,
                format!("`{create}` stopped by {stop:?} left {now:?} (before: {before:?})"),
            )?;
            // The name is free at once.
            client.batch_execute(small).await.map_err(|e| format!("`{small}` after the 57014: {e}"))?;
            client.batch_execute(drop).await.map_err(show)?;
        }
    }
    // A restart shows the same state.
    server.restart();
    let client = server.connect().await;
    let after_restart = state(&client, &data).await?;
    check(after_restart == before, format!("after a restart: {after_restart:?} (before: {before:?})"))
}

/// A file sink whose CREATE is stopped leaves no rows in its file and no start marker,
/// whenever the stop comes (before, during or after its first rows were written), or
/// completes and keeps writing.
pub async fn a_stopped_file_sink_leaves_no_rows() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    let files = dir.path().join("data").join("files");
    let mut csv = String::with_capacity(40 << 20);
    for i in 1..=1_000_000 {
        csv.push_str(&format!("{i},row {i}\n"));
    }
    std::fs::write(files.join("in.csv"), csv).map_err(show)?;
    client
        .batch_execute(
            "CREATE SOURCE src (id BIGINT, v TEXT) WITH (connector = 'file', path = 'in.csv', format = 'csv')",
        )
        .await
        .map_err(show)?;
    let before = state(&client, &dir.path().join("data")).await?;
    let (mut stopped_count, mut completed) = (0, 0);
    for (trial, millis) in [1u64, 2, 5, 50, 200, 500, 1000, 2000].into_iter().enumerate() {
        let stop = if trial % 2 == 0 { Stop::Timeout } else { Stop::CancelRequest };
        let create = "CREATE SINK out AS SELECT id, v FROM src WITH (connector = 'file', path = 'out.csv', format = 'csv')";
        let outcome = stopped(&client, create, Duration::from_millis(millis), stop).await?;
        match outcome.as_deref() {
            Some("57014") => {
                stopped_count += 1;
                let now = state(&client, &dir.path().join("data")).await?;
                check(
                    now == before,
                    format!("a file sink stopped by {stop:?} after {millis} ms left {now:?}"),
                )?;
            }
            None => {
                completed += 1;
                client.batch_execute("DROP SINK out").await.map_err(show)?;
                let _ = std::fs::remove_file(files.join("out.csv"));
            }
            Some(other) => return Err(format!("CREATE SINK stopped after {millis} ms failed with {other}")),
        }
    }
    eprintln!("file sink: {stopped_count} stopped, {completed} completed");
    check(stopped_count > 0, "no CREATE SINK was stopped: the test did not test anything")
}

/// DROP ... CASCADE, ALTER TABLE ADD/DROP COLUMN and CREATE TABLE under timeouts from
/// 1 ms up: each either completes (and says so) or leaves nothing changed with `57014`;
/// never a 57014 with the change made (or made later), never half a CASCADE.
pub async fn drop_cascade_alter_and_create_table_are_all_or_nothing() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let (mut server, client) = start_with_table(dir.path()).await?;
    let data = dir.path().join("data");
    let mut tally = std::collections::BTreeMap::<&str, (u32, u32)>::new();
    for millis in [1u64, 3, 10, 30, 100, 300] {
        for stop in [Stop::Timeout, Stop::CancelRequest] {
            // ALTER TABLE rewrites every row: it takes a while.
            let before = state(&client, &data).await?;
            let outcome = stopped(
                &client,
                "ALTER TABLE t ADD COLUMN w BIGINT DEFAULT 7",
                Duration::from_millis(millis),
                stop,
            )
            .await?;
            // A change the client was told was cancelled must not land later either.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let after = state(&client, &data).await?;
            let has_w = after.iter().any(|r| r == "t|w");
            match outcome.as_deref() {
                Some("57014") => {
                    check(
                        after == before,
                        format!("ALTER ADD stopped by {stop:?} after {millis} ms changed {after:?}"),
                    )?;
                    tally.entry("alter").or_default().0 += 1;
                }
                None => {
                    check(has_w, "ALTER ADD COLUMN completed without the column")?;
                    tally.entry("alter").or_default().1 += 1;
                    let n: i64 = client
                        .query_one("SELECT count(*) FROM t WHERE w = 7", &[])
                        .await
                        .map_err(show)?
                        .get(0);
                    check(n == ROWS, format!("after ADD COLUMN, {n} rows have the default"))?;
                    client.batch_execute("ALTER TABLE t DROP COLUMN w").await.map_err(show)?;
                }
                Some(other) => return Err(format!("ALTER TABLE failed with {other}")),
            }

            // DROP TABLE ... CASCADE of a table that three views read.
            for (i, view) in ["v1", "v2", "v3"].iter().enumerate() {
                client
                    .batch_execute(&format!("CREATE TABLE IF NOT EXISTS d (id BIGINT); CREATE MATERIALIZED VIEW {view} AS SELECT id + {i} AS x FROM d"))
                    .await
                    .map_err(show)?;
            }
            let before = state(&client, &data).await?;
            let outcome =
                stopped(&client, "DROP TABLE d CASCADE", Duration::from_millis(millis), stop).await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let after = state(&client, &data).await?;
            let left: Vec<&String> = after
                .iter()
                .filter(|r| ["d|", "v1|", "v2|", "v3|"].iter().any(|p| r.starts_with(p)))
                .collect();
            match outcome.as_deref() {
                Some("57014") => {
                    check(
                        after == before,
                        format!("DROP CASCADE stopped by {stop:?} after {millis} ms changed {after:?}"),
                    )?;
                    tally.entry("drop").or_default().0 += 1;
                    client.batch_execute("DROP TABLE d CASCADE").await.map_err(show)?;
                }
                None => {
                    check(left.is_empty(), format!("DROP CASCADE completed but left {left:?}"))?;
                    tally.entry("drop").or_default().1 += 1;
                }
                Some(other) => return Err(format!("DROP CASCADE failed with {other}")),
            }

            // CREATE TABLE.
            let outcome = stopped(
                &client,
                "CREATE TABLE c (id BIGINT PRIMARY KEY, v TEXT)",
                Duration::from_millis(millis),
                stop,
            )
            .await?;
            let exists = !rows(&client, "SELECT relname FROM pg_catalog.pg_class WHERE relname = 'c'")
                .await?
                .is_empty();
            match outcome.as_deref() {
                Some("57014") => {
                    check(
                        !exists,
                        format!("CREATE TABLE stopped by {stop:?} after {millis} ms created the table"),
                    )?;
                    tally.entry("create table").or_default().0 += 1;
                }
                None => {
                    check(exists, "CREATE TABLE completed without the table")?;
                    tally.entry("create table").or_default().1 += 1;
                    client.batch_execute("DROP TABLE c").await.map_err(show)?;
                }
                Some(other) => return Err(format!("CREATE TABLE failed with {other}")),
            }
        }
    }
    eprintln!("(stopped, completed) per statement: {tally:?}");
    let before = state(&client, &data).await?;
    server.restart();
    let client = server.connect().await;
    let after = state(&client, &data).await?;
    check(after == before, format!("after a restart: {after:?} (before: {before:?})"))
}

/// kill -9 during a view's backfill: after the restart the view is either absent, or there
/// and complete (equal to its query run in batch), and its name works either way.
pub async fn kill_9_during_a_view_backfill_leaves_it_complete_or_absent() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let (mut server, client) = start_with_table(dir.path()).await?;
    let full = backfill_time(
        &client,
        &format!("CREATE MATERIALIZED VIEW j AS {SLOW_QUERY}"),
        "DROP MATERIALIZED VIEW j",
    )
    .await?;
    let connection = server.connection_string();
    let creating = tokio::spawn(async move {
        let Ok((client, conn)) = tokio_postgres::connect(&connection, tokio_postgres::NoTls).await else {
            return;
        };
        tokio::spawn(conn);
        let _ = client.batch_execute(&format!("CREATE MATERIALIZED VIEW j AS {SLOW_QUERY}")).await;
    });
    tokio::time::sleep(full / 2).await;
    server.restart();
    let _ = creating.await;
    let client = server.connect().await;
    let exists =
        !rows(&client, "SELECT relname FROM pg_catalog.pg_class WHERE relname = 'j'").await?.is_empty();
    if exists {
        let n: i64 = client.query_one("SELECT count(*) FROM j", &[]).await.map_err(show)?.get(0);
        check(n == ROWS, format!("the view after kill -9 and restart has {n} rows, not {ROWS}"))?;
        client.batch_execute("DROP MATERIALIZED VIEW j").await.map_err(show)?;
    } else {
        // An uncommitted CREATE leaves no checkpoints either (swept at startup).
        let left = state(&client, &server.data_dir).await?;
        let checkpoints: Vec<&String> = left.iter().filter(|e| e.starts_with("checkpoints/")).collect();
        check(checkpoints.is_empty(), format!("the uncommitted view's checkpoints remain: {checkpoints:?}"))?;
    }
    eprintln!(
        "after kill -9 during the backfill the view {}",
        if exists { "is complete" } else { "is absent" }
    );
    client
        .batch_execute("CREATE MATERIALIZED VIEW j AS SELECT id FROM t WHERE id <= 5")
        .await
        .map_err(show)?;
    let n: i64 = client.query_one("SELECT count(*) FROM j", &[]).await.map_err(show)?.get(0);
    check(n == 5, format!("the view created again has {n} rows"))
}
