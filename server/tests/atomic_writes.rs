//! A cancelled or timed-out write is all or nothing, over the wire: the statement either
//! fails with `57014` and nothing of it is ever written, or it succeeds and all of it is.
//! Timeouts and cancel requests are swept across the whole run of the statement (planning,
//! reading, writing), measured first, so some land while the rows are being written.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::support::TestServer;

const ROWS: i64 = 60_000;
const TRIALS: i64 = 16;

fn show(e: impl std::fmt::Display) -> String {
    e.to_string()
}

async fn count(client: &Client, sql: &str) -> Result<i64, String> {
    client.query_one(sql, &[]).await.map_err(show).map(|row| row.get::<_, i64>(0))
}

/// The statement's outcome: `Ok(true)` done, `Ok(false)` cancelled with 57014.
fn outcome(result: Result<u64, tokio_postgres::Error>) -> Result<bool, String> {
    match result {
        Ok(_) => Ok(true),
        Err(e) => match e.as_db_error() {
            Some(db) if db.code().code() == "57014" => Ok(false),
            _ => Err(format!("neither done nor cancelled: {e}")),
        },
    }
}

/// Runs `sql` under a timeout (`by_timeout`) or a cancel request after `delay`.
async fn interrupted(client: &Client, sql: &str, delay: Duration, by_timeout: bool) -> Result<bool, String> {
    if by_timeout {
        client
            .batch_execute(&format!("SET statement_timeout = {}", delay.as_millis().max(1)))
            .await
            .map_err(show)?;
        let result = outcome(client.execute(sql, &[]).await);
        client.batch_execute("SET statement_timeout = 0").await.map_err(show)?;
        return result;
    }
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let _ = token.cancel_query(tokio_postgres::NoTls).await;
    });
    let result = outcome(client.execute(sql, &[]).await);
    let _ = canceller.await;
    result
}

pub async fn cancelled_writes_are_all_or_nothing() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    client.batch_execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT)").await.map_err(show)?;
    let insert =
        |base: i64| format!("INSERT INTO t SELECT i + {base}, 0 FROM generate_series(1, {ROWS}) AS g(i)");
    // How long one INSERT and one UPDATE of every row take, uninterrupted.
    let started = Instant::now();
    client.batch_execute(&insert(0)).await.map_err(show)?;
    let insert_time = started.elapsed();
    let started = Instant::now();
    client.batch_execute("UPDATE t SET v = -1").await.map_err(show)?;
    let update_time = started.elapsed();

    let (mut done, mut cancelled) = (0, 0);
    for trial in 1..=TRIALS {
        let by_timeout = trial % 2 == 0;
        // Spread over the statement's whole run, and a little past it.
        let fraction = trial as f64 / TRIALS as f64 * 1.2;
        let before = count(&client, "SELECT count(*) FROM t").await?;
        let sql = insert(trial * ROWS);
        let ok = interrupted(&client, &sql, insert_time.mul_f64(fraction), by_timeout).await?;
        // A write the client was told was cancelled must never land later.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = count(&client, "SELECT count(*) FROM t").await?;
        let expected = if ok { before + ROWS } else { before };
        if after != expected {
            return Err(format!(
                "INSERT trial {trial} ({}): the client was told {}, but the table went from {before} to {after} rows",
                if by_timeout { "timeout" } else { "cancel" },
                if ok { "it succeeded" } else { "57014" },
            ));
        }

        let sql = format!("UPDATE t SET v = {trial}");
        let ok_update = interrupted(&client, &sql, update_time.mul_f64(fraction), by_timeout).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let changed = count(&client, &format!("SELECT count(*) FROM t WHERE v = {trial}")).await?;
        let expected = if ok_update { after } else { 0 };
        if changed != expected {
            return Err(format!(
                "UPDATE trial {trial}: the client was told {}, but {changed} of {after} rows changed",
                if ok_update { "it succeeded" } else { "57014" },
            ));
        }
        for ok in [ok, ok_update] {
            if ok {
                done += 1;
            } else {
                cancelled += 1;
            }
        }
    }
    println!(
        "  {done} writes completed, {cancelled} cancelled (INSERT {:.0} ms, UPDATE {:.0} ms uninterrupted)",
        insert_time.as_secs_f64() * 1e3,
        update_time.as_secs_f64() * 1e3
    );
    if cancelled == 0 {
        return Err("no write was cancelled: the sweep does not exercise cancellation".into());
    }
    // The table is still writable: no lock was left behind.
    tokio::time::timeout(Duration::from_secs(30), client.batch_execute("UPDATE t SET v = 0 WHERE id = 1"))
        .await
        .map_err(|_| "a write after the trials waited for a lock that was never released".to_string())?
        .map_err(show)?;
    Ok(())
}
