//! Sessions over the wire: `pg_backend_pid()` is the pid the client got in `BackendKeyData`,
//! `pg_stat_activity` lists every session under that pid with what it is doing, and
//! `pg_cancel_backend` / `pg_terminate_backend` stop another session's statement (atomically,
//! as a protocol cancel request does: `57014` and nothing written) or end the session
//! (FATAL `57P01`), with Postgres 15's warnings and permission errors.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use futures::SinkExt;
use tokio_postgres::{AsyncMessage, Client, NoTls};

use crate::support::TestServer;

fn show(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// How a statement ended: "ok VALUE", "CODE message", or "closed".
fn failure<T: std::fmt::Debug>(result: Result<T, tokio_postgres::Error>) -> String {
    match result {
        Ok(v) => format!("ok {v:?}"),
        Err(e) => match e.as_db_error() {
            Some(db) => format!("{} {}", db.code().code(), db.message()),
            None if e.is_closed() => "closed".to_string(),
            None => format!("error {e}"),
        },
    }
}

/// A client of `user` whose notices (warnings) arrive on the returned channel.
async fn connect(
    server: &TestServer,
    user: &str,
    application_name: &str,
) -> Result<(Client, tokio::sync::mpsc::UnboundedReceiver<String>), String> {
    let url = format!(
        "host=127.0.0.1 port={} user={user} dbname=weir application_name={application_name}",
        server.port
    );
    let (client, mut connection) = tokio_postgres::connect(&url, NoTls).await.map_err(show)?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = futures::StreamExt::next(&mut messages).await {
            match message {
                Ok(AsyncMessage::Notice(notice)) => {
                    let _ = tx.send(format!("{} {}", notice.severity(), notice.message()));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    Ok((client, rx))
}

async fn scalar<T: for<'a> tokio_postgres::types::FromSql<'a>>(
    client: &Client,
    sql: &str,
) -> Result<T, String> {
    client
        .query_one(sql, &[])
        .await
        .map_err(|e| format!("{sql}: {}", failure::<()>(Err(e))))?
        .try_get(0)
        .map_err(show)
}

/// Waits until `pg_stat_activity` shows an active session running a statement that starts
/// with `prefix`; its pid.
async fn active_pid(observer: &Client, prefix: &str) -> Result<i32, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = observer
            .query(
                "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND starts_with(query, $1)",
                &[&prefix],
            )
            .await
            .map_err(show)?;
        if let Some(row) = rows.first() {
            return row.try_get(0).map_err(show);
        }
        if Instant::now() > deadline {
            return Err(format!("no active session runs {prefix}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The pid in the `BackendKeyData` of a raw protocol start-up, and what `pg_backend_pid()`
/// answers on that same connection.
fn key_data_pid_and_backend_pid(port: u16) -> Result<(i32, i32), String> {
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(show)?;
    socket.set_read_timeout(Some(Duration::from_secs(10))).map_err(show)?;
    let mut body = 196_608i32.to_be_bytes().to_vec();
    for part in ["user", "weir", "database", "weir"] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut startup = (body.len() as i32 + 4).to_be_bytes().to_vec();
    startup.extend_from_slice(&body);
    socket.write_all(&startup).map_err(show)?;
    let mut key_pid = None;
    read_until_ready(&mut socket, |tag, payload| {
        if tag == b'K' && payload.len() >= 4 {
            key_pid = Some(i32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]));
        }
    })?;
    let sql = b"SELECT pg_backend_pid()\0";
    let mut query = vec![b'Q'];
    query.extend_from_slice(&(sql.len() as i32 + 4).to_be_bytes());
    query.extend_from_slice(sql);
    socket.write_all(&query).map_err(show)?;
    let mut answered = None;
    read_until_ready(&mut socket, |tag, payload| {
        // DataRow: column count (2), then length (4) and text of the one value.
        if tag == b'D' && payload.len() > 6 {
            answered = std::str::from_utf8(&payload[6..]).ok().and_then(|t| t.parse::<i32>().ok());
        }
    })?;
    match (key_pid, answered) {
        (Some(k), Some(a)) => Ok((k, a)),
        other => Err(format!("no BackendKeyData pid or pg_backend_pid() answer: {other:?}")),
    }
}

/// Reads backend messages up to ReadyForQuery, handing each to `seen`.
fn read_until_ready(socket: &mut std::net::TcpStream, mut seen: impl FnMut(u8, &[u8])) -> Result<(), String> {
    loop {
        let mut header = [0u8; 5];
        socket.read_exact(&mut header).map_err(show)?;
        let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]);
        let mut payload = vec![0u8; usize::try_from(len - 4).map_err(show)?];
        socket.read_exact(&mut payload).map_err(show)?;
        if header[0] == b'E' {
            return Err(format!("server error: {}", String::from_utf8_lossy(&payload)));
        }
        seen(header[0], &payload);
        if header[0] == b'Z' {
            return Ok(());
        }
    }
}

/// Each session's `pg_backend_pid()` is its own and the one its client got in
/// `BackendKeyData`; `pg_stat_activity` lists it under that pid.
pub async fn backend_pid_is_the_key_data_pid_and_listed_in_pg_stat_activity() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let port = server.port;
    let (key_pid, backend_pid) =
        tokio::task::spawn_blocking(move || key_data_pid_and_backend_pid(port)).await.map_err(show)??;
    if key_pid != backend_pid {
        return Err(format!("BackendKeyData said pid {key_pid}, pg_backend_pid() {backend_pid}"));
    }
    let (a, _) = connect(&server, "weir", "first").await?;
    let (b, _) = connect(&server, "weir", "second").await?;
    let pid_a: i32 = scalar(&a, "SELECT pg_backend_pid()").await?;
    let pid_b: i32 = scalar(&b, "SELECT pg_backend_pid()").await?;
    if pid_a == pid_b {
        return Err(format!("two sessions share pid {pid_a}"));
    }
    let row = a
        .query_one(
            "SELECT datname, usename, application_name, client_addr, state, query, \
             backend_start <= query_start, backend_type FROM pg_stat_activity WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(show)?;
    let seen: (String, String, String, String, String, String, bool, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4), row.get(5), row.get(6), row.get(7));
    let query = "SELECT datname, usename, application_name, client_addr, state, query, backend_start <= \
                 query_start, backend_type FROM pg_stat_activity WHERE pid = pg_backend_pid()";
    let expected = (
        "weir".to_string(),
        "weir".to_string(),
        "first".to_string(),
        "127.0.0.1".to_string(),
        "active".to_string(),
        query.to_string(),
        true,
        "client backend".to_string(),
    );
    if seen != expected {
        return Err(format!("own pg_stat_activity row: {seen:?}, expected {expected:?}"));
    }
    // The other session is idle, with its last statement and its SET application_name.
    b.batch_execute("SET application_name = 'renamed'").await.map_err(show)?;
    let other = a
        .query_one("SELECT state, query, application_name FROM pg_stat_activity WHERE pid = $1", &[&pid_b])
        .await
        .map_err(show)?;
    let other: (String, String, String) = (other.get(0), other.get(1), other.get(2));
    if other != ("idle".into(), "SET application_name = 'renamed'".into(), "renamed".into()) {
        return Err(format!("the other session's row: {other:?}"));
    }
    let listed: i64 = scalar(&a, "SELECT count(*) FROM pg_stat_activity").await?;
    if listed != 2 {
        return Err(format!("pg_stat_activity lists {listed} sessions, expected 2"));
    }
    Ok(())
}

/// Session A's INSERT waits for the table's write lock (held by a COPY in progress);
/// session B finds A in `pg_stat_activity` and cancels it: A gets `57014` and none of its
/// rows is ever written. Cancelling the COPY the same way rolls it back.
pub async fn pg_cancel_backend_stops_a_statement_atomically() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let (admin, mut notices) = connect(&server, "weir", "admin").await?;
    admin.batch_execute("CREATE TABLE t (id BIGINT PRIMARY KEY)").await.map_err(show)?;

    // Not a session: false, with Postgres' warning; NULL for NULL.
    let missing: bool = scalar(&admin, "SELECT pg_cancel_backend(1)").await?;
    let warning = tokio::time::timeout(Duration::from_secs(5), notices.recv()).await.ok().flatten();
    if missing || warning.as_deref() != Some("WARNING PID 1 is not a PostgreSQL backend process") {
        return Err(format!("pg_cancel_backend(1) gave {missing} and warning {warning:?}"));
    }
    let null: Option<bool> = scalar(&admin, "SELECT pg_cancel_backend(NULL)").await?;
    if null.is_some() {
        return Err(format!("pg_cancel_backend(NULL) gave {null:?}"));
    }
    let negative = failure(admin.query_one("SELECT pg_terminate_backend(1, -1)", &[]).await);
    if negative != "22023 \"timeout\" must not be negative" {
        return Err(format!("a negative timeout gave {negative}"));
    }

    let (holder, _) = connect(&server, "weir", "holder").await?;
    let copy = holder.copy_in::<_, bytes::Bytes>("COPY t FROM STDIN").await.map_err(show)?;
    let mut copy = Box::pin(copy);
    let (a, _) = connect(&server, "weir", "blocked").await?;
    let insert = "INSERT INTO t SELECT i FROM generate_series(1, 1000) AS g(i)";
    let blocked = tokio::spawn(async move { failure(a.execute(insert, &[]).await) });
    let pid = active_pid(&admin, "INSERT INTO t").await?;
    let sent: bool = scalar(&admin, &format!("SELECT pg_cancel_backend({pid})")).await?;
    if !sent {
        return Err("pg_cancel_backend of a running session gave false".into());
    }
    let outcome = tokio::time::timeout(Duration::from_secs(20), blocked)
        .await
        .map_err(|_| "the cancelled INSERT did not end".to_string())?
        .map_err(show)?;
    if outcome != "57014 canceling statement due to user request" {
        return Err(format!("the cancelled INSERT ended with {outcome}"));
    }
    // The COPY still holds the table: it commits its own row, and nothing of the INSERT.
    copy.send(bytes::Bytes::from_static(b"5000\n")).await.map_err(show)?;
    let copied = copy.as_mut().finish().await.map_err(show)?;
    let count: i64 = scalar(&admin, "SELECT count(*) FROM t").await?;
    if copied != 1 || count != 1 {
        return Err(format!("COPY wrote {copied}, the table holds {count} rows; expected 1 and 1"));
    }

    // A COPY waiting for its data, cancelled by pid: rolled back, and the lock released.
    let copy = holder.copy_in::<_, bytes::Bytes>("COPY t FROM STDIN").await.map_err(show)?;
    let mut copy = Box::pin(copy);
    copy.send(bytes::Bytes::from_static(b"6000\n")).await.map_err(show)?;
    copy.flush().await.map_err(show)?;
    let holder_pid: i32 = scalar(
        &admin,
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'holder' AND query = 'COPY t FROM STDIN'",
    )
    .await?;
    let sent: bool = scalar(&admin, &format!("SELECT pg_cancel_backend({holder_pid})")).await?;
    let inserted =
        tokio::time::timeout(Duration::from_secs(20), admin.execute("INSERT INTO t VALUES (7000)", &[]))
            .await
            .map_err(|_| "the cancelled COPY kept the table's write lock".to_string())?
            .map_err(show)?;
    let finished = failure(copy.as_mut().finish().await);
    let count: i64 = scalar(&admin, "SELECT count(*) FROM t").await?;
    if !sent || inserted != 1 || !finished.starts_with("57014") || count != 2 {
        return Err(format!(
            "cancelled COPY: sent {sent}, insert after it {inserted}, COPY ended with {finished}, {count} rows \
             (expected 2)"
        ));
    }
    Ok(())
}

/// `pg_terminate_backend` ends a session running a statement (its rows never written) and
/// an idle one, each with FATAL `57P01`; with a timeout it waits until the session is gone.
pub async fn pg_terminate_backend_ends_the_session() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let (admin, _) = connect(&server, "weir", "admin").await?;
    admin.batch_execute("CREATE TABLE t (id BIGINT PRIMARY KEY)").await.map_err(show)?;
    let (holder, _) = connect(&server, "weir", "holder").await?;
    let copy = holder.copy_in::<_, bytes::Bytes>("COPY t FROM STDIN").await.map_err(show)?;
    let copy = Box::pin(copy);

    let (a, _) = connect(&server, "weir", "blocked").await?;
    let insert = "INSERT INTO t SELECT i FROM generate_series(1, 1000) AS g(i)";
    let blocked = tokio::spawn(async move {
        let outcome = failure(a.execute(insert, &[]).await);
        (outcome, failure(a.simple_query("SELECT 1").await), a.is_closed())
    });
    let pid = active_pid(&admin, "INSERT INTO t").await?;
    let ended: bool = scalar(&admin, &format!("SELECT pg_terminate_backend({pid}, 10000)")).await?;
    let (outcome, after, closed) = tokio::time::timeout(Duration::from_secs(20), blocked)
        .await
        .map_err(|_| "the terminated session's INSERT did not end".to_string())?
        .map_err(show)?;
    let fatal = outcome == "57P01 terminating connection due to administrator command" || outcome == "closed";
    if !ended || !fatal || !closed || after != "closed" {
        return Err(format!(
            "terminate: returned {ended}, INSERT ended with {outcome}, then {after}, closed {closed}"
        ));
    }
    let listed: i64 =
        scalar(&admin, &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}")).await?;
    drop(copy);
    drop(holder);
    let count: i64 = scalar(&admin, "SELECT count(*) FROM t").await?;
    if listed != 0 || count != 0 {
        return Err(format!("after terminate: still listed {listed}, {count} rows written"));
    }

    // An idle session.
    let (idle, _) = connect(&server, "weir", "idle").await?;
    let idle_pid: i32 = scalar(&idle, "SELECT pg_backend_pid()").await?;
    let sent: bool = scalar(&admin, &format!("SELECT pg_terminate_backend({idle_pid})")).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let next = failure(idle.simple_query("SELECT 1").await);
    let fatal = next == "57P01 terminating connection due to administrator command" || next == "closed";
    if !sent || !fatal {
        return Err(format!("terminating an idle session: returned {sent}, its next query got {next}"));
    }
    Ok(())
}

/// Postgres' permissions: a role signals its own sessions; another role's only as a member
/// of it or of `pg_signal_backend`, and a superuser's never (`42501`).
pub async fn only_permitted_roles_signal_sessions() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let (admin, _) = connect(&server, "weir", "admin").await?;
    admin.batch_execute("CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN").await.map_err(show)?;
    let (alice, _) = connect(&server, "alice", "alice").await?;
    let (bob, _) = connect(&server, "bob", "bob").await?;
    let alice_pid: i32 = scalar(&alice, "SELECT pg_backend_pid()").await?;
    let admin_pid: i32 = scalar(&admin, "SELECT pg_backend_pid()").await?;

    let denied = failure(bob.query_one(&format!("SELECT pg_cancel_backend({alice_pid})"), &[]).await);
    let expected =
        "42501 must be a member of the role whose query is being canceled or member of pg_signal_backend";
    if denied != expected {
        return Err(format!("bob cancelling alice: {denied}"));
    }
    let denied = failure(bob.query_one(&format!("SELECT pg_terminate_backend({alice_pid})"), &[]).await);
    let expected =
        "42501 must be a member of the role whose process is being terminated or member of pg_signal_backend";
    if denied != expected {
        return Err(format!("bob terminating alice: {denied}"));
    }
    // bob sees alice connected, but not what she runs.
    let hidden: String =
        scalar(&bob, &format!("SELECT query FROM pg_stat_activity WHERE pid = {alice_pid}")).await?;
    if hidden != "<insufficient privilege>" {
        return Err(format!("bob reads alice's query: {hidden}"));
    }
    // Her own session: allowed.
    let own: bool = scalar(&alice, &format!("SELECT pg_cancel_backend({alice_pid})")).await.or_else(|e| {
        // Cancelling itself stops the statement that asked, as in Postgres.
        if e.contains("57014") {
            Ok(true)
        } else {
            Err(e)
        }
    })?;
    if !own {
        return Err("alice could not cancel her own session".into());
    }
    admin.batch_execute("GRANT pg_signal_backend TO bob").await.map_err(show)?;
    let sent: bool = scalar(&bob, &format!("SELECT pg_cancel_backend({alice_pid})")).await?;
    let denied = failure(bob.query_one(&format!("SELECT pg_terminate_backend({admin_pid})"), &[]).await);
    if !sent || denied != "42501 must be a superuser to terminate superuser process" {
        return Err(format!(
            "bob in pg_signal_backend: cancel alice {sent}, terminate the superuser: {denied}"
        ));
    }
    // Still connected: a denied signal did nothing.
    let alive: i32 = scalar(&admin, "SELECT 1").await?;
    if alive != 1 {
        return Err("the superuser's session was hurt".into());
    }
    Ok(())
}
