//! `idle_session_timeout` over the wire: a session idle past it is ended by the server with
//! FATAL `57P05` and its `max_connections` slot is freed; a busy session stays up, and a
//! statement that runs longer than the timeout is not cut.

use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::support::TestServer;

fn show(e: impl std::fmt::Debug) -> String {
    format!("{e:?}")
}

/// Fails unless `client`'s next query finds its connection ended by the idle timeout.
async fn expect_ended(client: &Client, what: &str) -> Result<(), String> {
    expect_ended_with(client, SqlState::IDLE_SESSION_TIMEOUT, what).await
}

async fn expect_ended_with(client: &Client, expected: SqlState, what: &str) -> Result<(), String> {
    match client.simple_query("SELECT 1").await {
        Ok(_) => Err(format!("{what}: the idle session was not ended")),
        Err(e) => {
            // tokio-postgres surfaces the FATAL if it read it before seeing the socket close.
            if let Some(code) = e.code() {
                if *code != expected {
                    return Err(format!("{what}: expected {expected:?}, got {code:?}: {e}"));
                }
            } else if !e.is_closed() {
                return Err(format!("{what}: expected a closed connection, got {e}"));
            }
            Ok(())
        }
    }
}

/// SET idle_session_timeout: idle past it ends the session (and frees its only slot);
/// queries faster than it keep another session up; the setting shows in SHOW.
pub async fn idle_sessions_are_ended_with_57p05() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let config = dir.path().join("weir.toml");
    std::fs::write(&config, "max_connections = 2\n").map_err(show)?;
    let server =
        TestServer::start_with(&dir.path().join("data"), &["--config".into(), config.display().to_string()]);

    let idle = server.connect().await;
    idle.batch_execute("SET idle_session_timeout = '300ms'").await.map_err(show)?;
    let shown = idle.simple_query("SHOW idle_session_timeout").await.map_err(show)?;
    let value = shown.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    });
    if value.as_deref() != Some("300") {
        return Err(format!("SHOW idle_session_timeout gave {value:?}, expected 300 (milliseconds)"));
    }

    let busy = server.connect().await;
    busy.batch_execute("SET idle_session_timeout = 300").await.map_err(show)?;
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        busy.simple_query("SELECT 1").await.map_err(|e| format!("a busy session was ended: {e}"))?;
    }
    // By now `idle` has waited well past its 300 ms.
    expect_ended(&idle, "SET idle_session_timeout = '300ms'").await?;

    // Its slot is free again: with max_connections = 2 a third client gets in.
    let (third, connection) = tokio_postgres::connect(&server.connection_string(), tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("the ended session's max_connections slot was not released: {e}"))?;
    tokio::spawn(connection);
    third.simple_query("SELECT 1").await.map_err(show)?;
    busy.simple_query("SELECT 1").await.map_err(show)?;

    // Inside a transaction block idle_session_timeout does not apply (as in Postgres).
    busy.batch_execute("BEGIN").await.map_err(show)?;
    tokio::time::sleep(Duration::from_millis(600)).await;
    busy.simple_query("SELECT 1").await.map_err(|e| format!("ended inside a transaction block: {e}"))?;
    busy.batch_execute("COMMIT").await.map_err(show)?;

    // 0 turns it off again.
    busy.batch_execute("SET idle_session_timeout = 0").await.map_err(show)?;
    tokio::time::sleep(Duration::from_millis(600)).await;
    busy.simple_query("SELECT 1").await.map_err(|e| format!("ended with the timeout off: {e}"))?;

    // Bad values are refused as in Postgres.
    let err = busy.batch_execute("SET idle_session_timeout = 'soon'").await.err().ok_or("'soon' accepted")?;
    if err.code() != Some(&SqlState::INVALID_PARAMETER_VALUE) {
        return Err(format!("SET idle_session_timeout = 'soon': expected 22023, got {err}"));
    }
    Ok(())
}

/// `idle_session_timeout_ms` in the server config is the default of every new session.
pub async fn the_config_default_applies_to_new_sessions() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let config = dir.path().join("weir.toml");
    std::fs::write(&config, "idle_session_timeout_ms = 300\n").map_err(show)?;
    let server =
        TestServer::start_with(&dir.path().join("data"), &["--config".into(), config.display().to_string()]);
    let client = server.connect().await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    expect_ended(&client, "idle_session_timeout_ms = 300").await?;

    // A session may turn it off.
    let client = server.connect().await;
    client.batch_execute("SET idle_session_timeout = 0").await.map_err(show)?;
    tokio::time::sleep(Duration::from_millis(900)).await;
    client.simple_query("SELECT 1").await.map_err(|e| format!("ended with idle_session_timeout = 0: {e}"))?;
    Ok(())
}

/// `idle_in_transaction_session_timeout`: a session idle inside BEGIN ... is ended with 25P03.
pub async fn idle_transactions_are_ended_with_25p03() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    client.batch_execute("SET idle_in_transaction_session_timeout = '300ms'").await.map_err(show)?;
    // Outside a block it does not apply.
    tokio::time::sleep(Duration::from_millis(600)).await;
    client.batch_execute("BEGIN").await.map_err(|e| format!("ended outside a transaction block: {e}"))?;
    tokio::time::sleep(Duration::from_millis(900)).await;
    expect_ended_with(&client, SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT, "idle in transaction").await
}

/// A statement that runs longer than `idle_session_timeout` is not idle: it finishes, and
/// the session is still up after it.
pub async fn a_long_statement_is_not_cut() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    client.batch_execute("SET idle_session_timeout = 200").await.map_err(show)?;
    let started = std::time::Instant::now();
    let rows = client
        .simple_query("SELECT count(*) FROM generate_series(1, 300000000) AS g(i) WHERE i % 7 = 3")
        .await
        .map_err(|e| format!("a long statement was cut: {e}"))?;
    let took = started.elapsed();
    if took < Duration::from_millis(400) {
        return Err(format!("the statement took only {took:?}; it must outlast the 200 ms timeout"));
    }
    let count = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    });
    if count.as_deref() != Some("42857143") {
        return Err(format!("count gave {count:?}"));
    }
    client.simple_query("SELECT 1").await.map_err(|e| format!("ended right after a long statement: {e}"))?;
    Ok(())
}
