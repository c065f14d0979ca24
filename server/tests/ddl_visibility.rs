//! A `CREATE MATERIALIZED VIEW` that has not committed (its backfill still runs) is
//! invisible to other sessions, as an uncommitted relation is in Postgres: they get `42P01`
//! for its name and cannot build on it. A concurrent CREATE of the same name waits for it:
//! it succeeds if the first is undone (cancelled), and fails with `42P07` if the first
//! commits. The undone CREATE leaves nothing behind and its name is free.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::support::TestServer;

/// Rows of the table the slow view joins with itself.
const ROWS: i64 = 300_000;

/// A view whose backfill takes seconds: a self-join of the whole table.
const SLOW_QUERY: &str = "SELECT a.id, b.v FROM t a JOIN t b ON a.id = b.id";

fn show(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// How a statement ended: "ok", or "CODE message".
fn ended<T>(result: Result<T, tokio_postgres::Error>) -> String {
    match result {
        Ok(_) => "ok".to_string(),
        Err(e) => match e.as_db_error() {
            Some(db) => format!("{} {}", db.code().code(), db.message()),
            None => format!("error {e}"),
        },
    }
}

async fn count(client: &Client, sql: &str) -> Result<i64, String> {
    client
        .query_one(sql, &[])
        .await
        .map_err(|e| format!("{sql}: {}", ended::<()>(Err(e))))?
        .try_get(0)
        .map_err(show)
}

/// Waits until `condition` (a query giving a count) is positive.
async fn wait_until(client: &Client, condition: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(client, condition).await? == 0 {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for: {condition}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Runs `sql` on a new session in the background; its outcome.
async fn spawn(server: &TestServer, sql: String) -> tokio::task::JoinHandle<String> {
    let client = server.connect().await;
    tokio::spawn(async move { ended(client.batch_execute(&sql).await) })
}

async fn outcome(task: tokio::task::JoinHandle<String>, what: &str) -> Result<String, String> {
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .map_err(|_| format!("{what} did not end"))?
        .map_err(show)
}

pub async fn an_uncommitted_view_is_invisible_and_its_name_waits() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let observer = server.connect().await;
    observer.batch_execute("CREATE TABLE t (id BIGINT, v TEXT)").await.map_err(show)?;
    observer
        .batch_execute(&format!(
            "INSERT INTO t SELECT i, 'value ' || CAST(i AS TEXT) FROM generate_series(1, {ROWS}) AS g(i)"
        ))
        .await
        .map_err(show)?;

    // A's CREATE backfills: its job runs, its view is not committed.
    let first = spawn(&server, format!("CREATE MATERIALIZED VIEW j AS {SLOW_QUERY}")).await;
    wait_until(&observer, "SELECT count(*) FROM weir_catalog.jobs WHERE view = 'j'").await?;
    let select = ended(observer.query_one("SELECT count(*) FROM j", &[]).await);
    let listed = count(&observer, "SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'j'").await?;
    let built_on = ended(observer.batch_execute("CREATE MATERIALIZED VIEW k AS SELECT id FROM j").await);
    if select != "42P01 relation \"j\" does not exist" || listed != 0 || !built_on.starts_with("42P01") {
        return Err(format!(
            "during the backfill another session saw the view: SELECT gave {select}, pg_class lists it \
             {listed} times, a view on it gave {built_on}"
        ));
    }

    // A second CREATE of the name waits for the first.
    let small = "CREATE MATERIALIZED VIEW j AS SELECT id FROM t WHERE id <= 5";
    let second = spawn(&server, small.into()).await;
    wait_until(
        &observer,
        &format!("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = '{small}'"),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    if second.is_finished() {
        let result = outcome(second, "the second CREATE").await?;
        return Err(format!("the second CREATE did not wait for the first: {result}"));
    }
    // The first is cancelled and undone: the second succeeds, alone under the name.
    let pid: i32 = observer
        .query_one(
            &format!(
                "SELECT pid FROM pg_stat_activity WHERE query = 'CREATE MATERIALIZED VIEW j AS {SLOW_QUERY}'"
            ),
            &[],
        )
        .await
        .map_err(show)?
        .get(0);
    let cancelled: bool =
        observer.query_one(&format!("SELECT pg_cancel_backend({pid})"), &[]).await.map_err(show)?.get(0);
    let first = outcome(first, "the cancelled CREATE").await?;
    let second = outcome(second, "the second CREATE").await?;
    if !cancelled || !first.starts_with("57014") || second != "ok" {
        return Err(format!("cancelled {cancelled} sessions; first CREATE: {first}; second: {second}"));
    }
    let rows = count(&observer, "SELECT count(*) FROM j").await?;
    let jobs = count(&observer, "SELECT count(*) FROM weir_catalog.jobs WHERE view = 'j'").await?;
    if rows != 5 || jobs != 1 {
        return Err(format!("after the undone CREATE, j has {rows} rows (expected 5) and {jobs} jobs"));
    }

    // A CREATE of a name whose first CREATE commits fails with 42P07 once it does.
    let first = spawn(&server, format!("CREATE MATERIALIZED VIEW j2 AS {SLOW_QUERY}")).await;
    wait_until(&observer, "SELECT count(*) FROM weir_catalog.jobs WHERE view = 'j2'").await?;
    let second = spawn(&server, "CREATE TABLE j2 (x BIGINT)".into()).await;
    let first = outcome(first, "the committing CREATE").await?;
    let second = outcome(second, "the waiting CREATE TABLE").await?;
    let rows = count(&observer, "SELECT count(*) FROM j2").await?;
    if first != "ok" || second != "42P07 relation \"j2\" already exists" || rows != ROWS {
        return Err(format!("first CREATE: {first}; second: {second}; j2 has {rows} rows"));
    }
    Ok(())
}
