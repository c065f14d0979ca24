//! End-to-end checks with real clients and real process kills.

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use futures::SinkExt;

use crate::support::TestServer;

pub fn check(condition: bool, what: impl Into<String>) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(what.into())
    }
}

pub fn show<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

pub fn db_code(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map(|d| d.code().code().to_string()).unwrap_or_else(|| e.to_string())
}

/// Rows acknowledged to a client survive SIGKILL: INSERT, COPY, UPDATE and DELETE results
/// are all there after restart, and a DDL change too.
pub async fn kill_9_keeps_acknowledged_rows() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let mut server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer TEXT, amount DOUBLE PRECISION, ts TIMESTAMP);
             CREATE TABLE gone (x INT);
             INSERT INTO orders VALUES (1, 'ada', 12.5, '2026-01-01 10:00:00'), (2, 'bob', 3, NULL);
             UPDATE orders SET amount = amount * 2 WHERE id = 1;
             DROP TABLE gone;",
        )
        .await
        .map_err(show)?;
    let sink =
        client.copy_in::<_, bytes::Bytes>("COPY orders FROM STDIN WITH (FORMAT csv)").await.map_err(show)?;
    futures::pin_mut!(sink);
    let mut data = String::new();
    for i in 3..=1000 {
        data.push_str(&format!("{i},c{},{}.5,2026-01-02 00:00:00\n", i % 7, i));
    }
    sink.send(bytes::Bytes::from(data)).await.map_err(show)?;
    let copied = sink.finish().await.map_err(show)?;
    check(copied == 998, format!("COPY reported {copied} rows"))?;
    client.execute("DELETE FROM orders WHERE id = 2", &[]).await.map_err(show)?;
    drop(client);

    server.restart();
    let client = server.connect().await;
    let row =
        client.query_one("SELECT count(*), sum(amount), max(id) FROM orders", &[]).await.map_err(show)?;
    let (count, sum, max): (i64, f64, i64) = (row.get(0), row.get(1), row.get(2));
    let expected_sum = 25.0 + (3..=1000).map(|i| i as f64 + 0.5).sum::<f64>();
    check(count == 999, format!("count after restart {count}"))?;
    check((sum - expected_sum).abs() < 1e-6, format!("sum after restart {sum}, expected {expected_sum}"))?;
    check(max == 1000, format!("max id {max}"))?;
    let err = client.simple_query("SELECT * FROM gone").await.err().map(|e| db_code(&e));
    check(err.as_deref() == Some("42P01"), format!("dropped table still answers: {err:?}"))?;
    // The primary key index survived too.
    let dup =
        client.execute("INSERT INTO orders VALUES (1, 'x', 1, NULL)", &[]).await.err().map(|e| db_code(&e));
    check(dup.as_deref() == Some("23505"), format!("duplicate key after restart: {dup:?}"))
}

/// Extended protocol: Parse/Bind/Describe/Execute with typed parameters and binary results.
pub async fn tokio_postgres_prepared_statements() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("step 1: {e:?}"))?;
    let server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR(20), score DOUBLE PRECISION, ok BOOLEAN, \
             small SMALLINT, mid INT, price NUMERIC(10,2), day DATE, at TIMESTAMP, raw BYTEA)",
        )
        .await
        .map_err(|e| format!("step 2: {e:?}"))?;
    let insert = client
        .prepare("INSERT INTO t (id, name, score, ok, small, mid) VALUES ($1, $2, $3, $4, $5, $6)")
        .await
        .map_err(|e| format!("step 3: {e:?}"))?;
    for i in 0..20i64 {
        let name = format!("n{i}");
        client
            .execute(&insert, &[&i, &name, &(i as f64 / 2.0), &(i % 2 == 0), &(i as i16), &(i as i32)])
            .await
            .map_err(|e| format!("step 4: {e:?}"))?;
    }
    client
        .batch_execute("UPDATE t SET price = 12.34, day = '2026-03-04', at = '2026-03-04 05:06:07.5', raw = '\\x0102' WHERE id = 3")
        .await
        .map_err(|e| format!("step 5: {e:?}"))?;
    let select = client
        .prepare(
            "SELECT id, name, score, ok, small, mid, day, at, raw FROM t WHERE id >= $1 ORDER BY id LIMIT 3",
        )
        .await
        .map_err(|e| format!("step 6: {e:?}"))?;
    let rows = client.query(&select, &[&2i64]).await.map_err(|e| format!("step 7: {e:?}"))?;
    check(rows.len() == 3, format!("{} rows", rows.len()))?;
    let r = &rows[1];
    check(r.get::<_, i64>(0) == 3, "id")?;
    check(r.get::<_, String>(1) == "n3", "name")?;
    check(r.get::<_, f64>(2) == 1.5, "score")?;
    check(!r.get::<_, bool>(3), "ok")?;
    check(r.get::<_, i16>(4) == 3 && r.get::<_, i32>(5) == 3, "ints")?;
    check(r.get::<_, Vec<u8>>(8) == vec![1u8, 2], "bytea")?;
    let price = client
        .query_one("SELECT price::text FROM t WHERE id = 3", &[])
        .await
        .map_err(|e| format!("step 8: {e:?}"))?;
    check(price.get::<_, String>(0) == "12.34", format!("numeric text {}", price.get::<_, String>(0)))?;
    let described = client
        .prepare("SELECT name, score FROM t WHERE id = $1")
        .await
        .map_err(|e| format!("step 9: {e:?}"))?;
    check(
        described.params() == [tokio_postgres::types::Type::INT8],
        format!("param types {:?}", described.params()),
    )?;
    check(described.columns().len() == 2, "described columns")?;
    // A syntax error points at the offending token, as Postgres' error cursor does.
    let err = client.simple_query("SELECT 1;\nSELEC oops").await.err().ok_or("no syntax error")?;
    let db = err.as_db_error().ok_or("syntax error is not a database error")?;
    check(db.code().code() == "42601", format!("syntax error code {}", db.code().code()))?;
    check(
        matches!(db.position(), Some(tokio_postgres::error::ErrorPosition::Original(11))),
        format!("syntax error position {:?}", db.position()),
    )?;
    // Errors through the extended protocol carry SQLSTATEs and leave the session usable.
    let e = client.prepare("SELECT nope FROM t").await.err().map(|e| db_code(&e));
    check(e.as_deref() == Some("42703"), format!("unknown column: {e:?}"))?;
    let e = client
        .execute(&insert, &[&1i64, &"dup", &0.0f64, &true, &1i16, &1i32])
        .await
        .err()
        .map(|e| db_code(&e));
    check(e.as_deref() == Some("23505"), format!("duplicate: {e:?}"))?;
    let n: i64 =
        client.query_one("SELECT count(*) FROM t", &[]).await.map_err(|e| format!("step 10: {e:?}"))?.get(0);
    check(n == 20, format!("count {n}"))
}

/// COPY through the driver (a bad row rejects the whole COPY) and query cancellation.
pub async fn tokio_postgres_copy_and_cancel() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    client.batch_execute("CREATE TABLE c (a INT PRIMARY KEY, b TEXT)").await.map_err(show)?;
    let sink = client.copy_in::<_, bytes::Bytes>("COPY c FROM STDIN").await.map_err(show)?;
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"1\tone\n2\ttwo\nthree\t3\n4\tfour\n")).await.map_err(show)?;
    let err = sink.finish().await.err().ok_or("bad COPY accepted")?;
    let db = err.as_db_error().ok_or("COPY error is not a database error")?;
    check(db.code().code() == "22P02", format!("COPY error code {}", db.code().code()))?;
    check(
        db.where_().is_some_and(|w| w.contains("line 3")),
        format!("COPY error context {:?}", db.where_()),
    )?;
    let n: i64 = client.query_one("SELECT count(*) FROM c", &[]).await.map_err(show)?.get(0);
    check(n == 0, format!("a failed COPY left {n} rows"))?;

    let cancel = client.cancel_token();
    let slow = tokio::spawn(async move {
        // A cross join large enough to run for a long time.
        let r = client
            .simple_query("SELECT count(*) FROM generate_series(1, 100000000) a, generate_series(1, 1000) b")
            .await;
        r.err().map(|e| db_code(&e))
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    cancel.cancel_query(tokio_postgres::NoTls).await.map_err(show)?;
    let code = tokio::time::timeout(Duration::from_secs(30), slow)
        .await
        .map_err(|_| "cancel did not stop the query".to_string())?
        .map_err(show)?;
    check(code.as_deref() == Some("57014"), format!("cancelled query returned {code:?}"))
}

/// The real psql: `\copy`, `\dt`, `\d NAME`, `\dn`, `\l`, `\dm` against expected output.
pub async fn psql_meta_commands_and_copy() -> Result<(), String> {
    if Command::new("psql").arg("--version").output().is_err() {
        return Err("psql is not installed (apt-get install postgresql-client)".into());
    }
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let csv = dir.path().join("orders.csv");
    let mut f = std::fs::File::create(&csv).map_err(show)?;
    writeln!(f, "id,customer,amount,ts").map_err(show)?;
    for i in 1..=100 {
        writeln!(f, "{i},{},{}.25,2026-01-01 10:00:00", ["ada", "bob", "cy"][i % 3], i).map_err(show)?;
    }
    drop(f);
    let psql = |command: &str| -> Result<(String, String, bool), String> {
        let out = Command::new("psql")
            .args([
                "-X",
                "-h",
                "127.0.0.1",
                "-p",
                &server.port.to_string(),
                "-U",
                "weir",
                "-d",
                "weir",
                "-c",
                command,
            ])
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .map_err(show)?;
        Ok((
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.success(),
        ))
    };
    let run_ok = |command: &str| -> Result<String, String> {
        let (out, err, ok) = psql(command)?;
        if ok && err.is_empty() {
            Ok(out)
        } else {
            Err(format!("psql -c {command:?} failed: {err}\n{out}"))
        }
    };
    run_ok(
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer TEXT, amount DOUBLE PRECISION, ts TIMESTAMP)",
    )?;
    run_ok("CREATE TABLE items (sku TEXT NOT NULL, qty INT)")?;
    let copied = run_ok(&format!("\\copy orders FROM '{}' CSV HEADER", csv.display()))?;
    check(copied.trim() == "COPY 100", format!("\\copy said {copied:?}"))?;
    let totals = run_ok("SELECT customer, sum(amount) FROM orders GROUP BY customer ORDER BY 2 DESC")?;
    check(totals.contains("(3 rows)"), format!("aggregate output:\n{totals}"))?;

    let expected_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql-tests/psql/expected");
    let mut mismatches = Vec::new();
    let mut compare = |commands: &[(&str, &str)]| -> Result<(), String> {
        for (command, file) in commands {
            let (out, err, _) = psql(command)?;
            let actual = format!("{out}{err}");
            match std::fs::read_to_string(expected_dir.join(file)) {
                Ok(expected) if expected == actual => {}
                Ok(expected) => mismatches.push(format!("{command}: expected\n{expected}\ngot\n{actual}")),
                Err(_) => mismatches
                    .push(format!("{command}: missing expectation file {file}; output was\n{actual}")),
            }
        }
        Ok(())
    };
    compare(&[
        ("\\dt", "dt.out"),
        ("\\d", "d.out"),
        ("\\d orders", "d_orders.out"),
        ("\\d items", "d_items.out"),
        ("\\d orders_pkey", "d_orders_pkey.out"),
        ("\\d+ orders", "d_plus_orders.out"),
        ("\\di", "di.out"),
        ("\\dn", "dn.out"),
        ("\\du", "du.out"),
        ("\\l", "l.out"),
        ("\\dv", "dv.out"),
        ("\\dm", "dm.out"),
        ("\\d nosuchtable", "d_nosuchtable.out"),
    ])?;
    // A materialized view, as PostgreSQL 15's psql shows it; \dt, \dv and \di leave it out.
    run_ok(
        "CREATE MATERIALIZED VIEW customer_totals AS \
         SELECT customer, sum(amount) AS total, count(*) AS n FROM orders GROUP BY customer",
    )?;
    compare(&[
        ("\\dm", "dm_with_view.out"),
        ("\\d", "d_with_view.out"),
        ("\\d customer_totals", "d_customer_totals.out"),
        ("\\d+ customer_totals", "d_plus_customer_totals.out"),
        ("\\dt", "dt.out"),
        ("\\dv", "dv.out"),
        ("\\di", "di.out"),
    ])?;
    // A source is a foreign table to psql: its connector the server, its options the
    // table's. \dt and \dm leave it out.
    run_ok(
        "CREATE SOURCE bids (auction BIGINT, price BIGINT, date_time TIMESTAMP, proc_time AS PROCTIME(), \
         WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND) \
         WITH (connector = 'nexmark', nexmark.table.type = 'Bid', nexmark.event.num = '10')",
    )?;
    compare(&[
        ("\\d", "d_with_source.out"),
        ("\\dE", "dE.out"),
        ("\\d bids", "d_bids.out"),
        ("\\dt", "dt.out"),
        ("\\dm", "dm_with_view.out"),
    ])?;
    // Declared time precisions, in a table and in a view passing its columns through.
    run_ok(
        "CREATE TABLE stamps (id BIGINT PRIMARY KEY, a TIMESTAMP(0), b TIMESTAMPTZ(3), c TIME(2), \
         d INTERVAL(1), e TIMESTAMP)",
    )?;
    run_ok(
        "CREATE MATERIALIZED VIEW stamps_view AS \
         SELECT a, b, c, d, a + INTERVAL '1 second' AS later FROM stamps",
    )?;
    compare(&[("\\d stamps", "d_stamps.out"), ("\\d stamps_view", "d_stamps_view.out")])?;
    let (_, err, ok) = psql("CREATE TABLE wide (t TIMESTAMP(7))")?;
    check(
        ok && err.contains("WARNING:  TIMESTAMP(7) precision reduced to maximum allowed, 6"),
        format!("CREATE TABLE with timestamp(7): {err}"),
    )?;
    // ROLLBACK cannot undo a statement that already ran, and says so.
    let out = Command::new("psql")
        .args(["-X", "-h", "127.0.0.1", "-p", &server.port.to_string(), "-U", "weir", "-d", "weir"])
        .args(["-c", "BEGIN", "-c", "INSERT INTO items VALUES ('kept', 1)", "-c", "ROLLBACK"])
        .output()
        .map_err(show)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(
        stderr.contains("WARNING:  Weir commits every statement when it runs"),
        format!("ROLLBACK after a write: {stderr}"),
    )?;
    let kept = run_ok("SELECT count(*) FROM items WHERE sku = 'kept'")?;
    check(kept.contains(" 1\n"), format!("row written inside the block: {kept}"))?;
    let (_, err, ok) = psql("\\d nosuchtable")?;
    check(
        !ok && err.contains("Did not find any relation named \"nosuchtable\""),
        format!("\\d nosuchtable: {err}"),
    )?;
    check(mismatches.is_empty(), mismatches.join("\n----\n"))
}

/// psycopg 3, the most common Python driver: its implicit transactions, parameters, and
/// executemany.
pub async fn psycopg_round_trip() -> Result<(), String> {
    let probe = Command::new("python3").args(["-c", "import psycopg"]).output().map_err(show)?;
    if !probe.status.success() {
        return Err("Python psycopg 3 is not installed (pip install 'psycopg[binary]')".into());
    }
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let script = format!(
        r#"
import psycopg, datetime
with psycopg.connect("host=127.0.0.1 port={port} user=weir dbname=weir") as conn:
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE p (id BIGINT PRIMARY KEY, name TEXT, at TIMESTAMP, score DOUBLE PRECISION)")
        cur.executemany("INSERT INTO p VALUES (%s, %s, %s, %s)",
            [(i, f"name{{i}}", datetime.datetime(2026, 1, 1, 0, 0, i), i * 1.5) for i in range(10)])
    conn.commit()
    with conn.cursor() as cur:
        for _ in range(7):
            cur.execute("SELECT name, at, score FROM p WHERE id = %s", (3,))
            assert cur.fetchone() == ("name3", datetime.datetime(2026, 1, 1, 0, 0, 3), 4.5)
        cur.execute("SELECT count(*) FROM p WHERE name LIKE %s", ("name%",))
        assert cur.fetchone()[0] == 10
        try:
            cur.execute("SELECT * FROM missing")
            raise SystemExit("no error for a missing table")
        except psycopg.errors.UndefinedTable:
            pass
    conn.rollback()
    with conn.cursor() as cur:
        cur.execute("SELECT version(), current_database(), current_user, current_schema()")
        v, db, user, schema = cur.fetchone()
        assert "Weir" in v and db == "weir" and user == "weir" and schema == "public", (v, db, user, schema)
print("ok")
"#,
        port = server.port
    );
    let out = Command::new("python3").args(["-c", &script]).output().map_err(show)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    check(
        out.status.success() && stdout.trim() == "ok",
        format!("psycopg script failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)),
    )
}

/// Malformed protocol bytes end that connection only.
pub async fn garbage_bytes() -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let healthy = server.connect().await;
    for payload in [
        &b"\x00\x00\x00\x08\x04\xd2\x16\x2fgarbage"[..],
        &b"\xff\xff\xff\xff\xff\xff\xff\xff"[..],
        &b"\x00\x00\x00\x09\x00\x03\x00\x00\x00"[..],
        &b"GET / HTTP/1.1\r\n\r\n"[..],
    ] {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.map_err(show)?;
        let _ = s.write_all(payload).await;
        let mut buf = [0u8; 256];
        let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
    }
    // A started session that then sends a bogus message type.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.map_err(show)?;
    let mut startup = Vec::new();
    let params = b"user\0weir\0database\0weir\0\0";
    startup.extend_from_slice(&((8 + params.len()) as i32).to_be_bytes());
    startup.extend_from_slice(&196608i32.to_be_bytes());
    startup.extend_from_slice(params);
    s.write_all(&startup).await.map_err(show)?;
    s.write_all(b"Z\x00\x00\x00\x04Q\x7f\xff\xff\xff").await.map_err(show)?;
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
    let row = healthy.query_one("SELECT 1 + 1", &[]).await.map_err(show)?;
    check(row.get::<_, i32>(0) == 2, "healthy session broken")
}

/// SCRAM-SHA-256 with a stored verifier, TLS with a configured certificate, an unknown
/// database, and the refusal to run without a password on a non-loopback address.
pub async fn scram_tls_and_startup_errors() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let bin = env!("CARGO_BIN_EXE_weir");
    let verifier = crate::support::hash_password("pencil")?;
    check(verifier.starts_with("SCRAM-SHA-256$4096:"), format!("verifier {verifier}"))?;

    let (cert, key) = self_signed_certificate(dir.path())?;
    let config = dir.path().join("weir.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\npassword = \"{verifier}\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    )
    .map_err(show)?;
    let server =
        TestServer::start_with(&dir.path().join("data"), &["--config".into(), config.display().to_string()]);

    let connect = |password: &str, dbname: &str| {
        format!("host=127.0.0.1 port={} user=weir dbname={dbname} password={password}", server.port)
    };
    let (client, connection) =
        tokio_postgres::connect(&connect("pencil", "weir"), tokio_postgres::NoTls).await.map_err(show)?;
    tokio::spawn(connection);
    let two: i32 = client.query_one("SELECT 1 + 1", &[]).await.map_err(show)?.get(0);
    check(two == 2, "query after SCRAM login")?;
    let wrong = tokio_postgres::connect(&connect("wrong", "weir"), tokio_postgres::NoTls)
        .await
        .err()
        .map(|e| db_code(&e));
    check(wrong.as_deref() == Some("28P01"), format!("wrong password: {wrong:?}"))?;

    // psql over TLS (sslmode=require fails unless the server really speaks TLS).
    let psql = Command::new("psql")
        .args(["-X", "-At", "-c", "SELECT 42"])
        .arg(format!("host=127.0.0.1 port={} user=weir dbname=weir sslmode=require", server.port))
        .env("PGPASSWORD", "pencil")
        .output()
        .map_err(show)?;
    check(
        psql.status.success() && String::from_utf8_lossy(&psql.stdout).trim() == "42",
        format!("psql over TLS: {}", String::from_utf8_lossy(&psql.stderr)),
    )?;
    let unknown_db = tokio_postgres::connect(&connect("pencil", "nope"), tokio_postgres::NoTls)
        .await
        .err()
        .map(|e| db_code(&e));
    check(unknown_db.as_deref() == Some("3D000"), format!("unknown database: {unknown_db:?}"))?;

    // No password, non-loopback address: refuse to start.
    let refused = Command::new(bin)
        .args(["--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path().join("other"))
        .output()
        .map_err(show)?;
    check(
        !refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("without a password"),
        format!("non-loopback start: {}", String::from_utf8_lossy(&refused.stderr)),
    )
}

/// A self-signed certificate for localhost and its key, written into `dir` by openssl.
fn self_signed_certificate(
    dir: &std::path::Path,
) -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let openssl = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .map_err(show)?;
    check(openssl.status.success(), format!("openssl: {}", String::from_utf8_lossy(&openssl.stderr)))?;
    Ok((cert, key))
}

/// `max_connections = 2`: a third session is refused with 53300; once one ends, a new one
/// gets in (cancel requests do not count).
pub async fn max_connections_refuses_one_more_session() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let config = dir.path().join("weir.toml");
    std::fs::write(&config, "max_connections = 2\n").map_err(show)?;
    let server =
        TestServer::start_with(&dir.path().join("data"), &["--config".into(), config.display().to_string()]);
    let first = server.connect().await;
    let second = server.connect().await;
    let url = format!("host=127.0.0.1 port={} user=weir dbname=weir", server.port);
    let refused = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.err();
    let code = refused.as_ref().map(db_code);
    check(code.as_deref() == Some("53300"), format!("a third session: {refused:?}"))?;
    // A cancel request is not a session.
    first.cancel_token().cancel_query(tokio_postgres::NoTls).await.map_err(show)?;
    drop(second);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                let one: i64 = client.query_one("SELECT CAST(1 AS BIGINT)", &[]).await.map_err(show)?.get(0);
                check(one == 1, "a query on the new session")?;
                break;
            }
            Err(e) if std::time::Instant::now() > deadline => {
                return Err(format!("no session after one ended: {e:?}"));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    let still: i64 = first.query_one("SELECT CAST(2 AS BIGINT)", &[]).await.map_err(show)?.get(0);
    check(still == 2, "the first session still works")
}

/// `tls.required = true`: a plain connection is refused with 28000 before authentication,
/// whatever the password; psql with `sslmode=require` gets in.
pub async fn tls_required_refuses_plain_connections() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let (cert, key) = self_signed_certificate(dir.path())?;
    let config = dir.path().join("weir.toml");
    let text = format!(
        "[tls]
cert = \"{}\"
key = \"{}\"
required = true
",
        cert.display(),
        key.display()
    );
    std::fs::write(&config, text).map_err(show)?;
    let server =
        TestServer::start_with(&dir.path().join("data"), &["--config".into(), config.display().to_string()]);
    let plain = format!("host=127.0.0.1 port={} user=weir dbname=weir", server.port);
    let refused = tokio_postgres::connect(&plain, tokio_postgres::NoTls).await.err();
    let code = refused.as_ref().map(db_code);
    check(code.as_deref() == Some("28000"), format!("plain connection: {refused:?}"))?;
    let message =
        refused.as_ref().and_then(|e| e.as_db_error()).map(|d| d.message().to_string()).unwrap_or_default();
    check(message.contains("requires TLS"), format!("the refusal says why: {message}"))?;
    let psql = |sslmode: &str| {
        Command::new("psql")
            .args(["-X", "-At", "-c", "SELECT 42"])
            .arg(format!("host=127.0.0.1 port={} user=weir dbname=weir sslmode={sslmode}", server.port))
            .output()
    };
    let secure = psql("require").map_err(show)?;
    check(
        secure.status.success() && String::from_utf8_lossy(&secure.stdout).trim() == "42",
        format!("psql over TLS: {}", String::from_utf8_lossy(&secure.stderr)),
    )?;
    let insecure = psql("disable").map_err(show)?;
    check(
        !insecure.status.success() && String::from_utf8_lossy(&insecure.stderr).contains("requires TLS"),
        format!("psql without TLS: {}", String::from_utf8_lossy(&insecure.stderr)),
    )?;
    // Without a certificate the setting cannot be met: the server refuses to start.
    std::fs::write(&config, "[tls]\nrequired = true\n").map_err(show)?;
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["--config", &config.display().to_string(), "--data-dir"])
        .arg(dir.path().join("other"))
        .output()
        .map_err(show)?;
    check(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("tls.required needs"),
        format!("tls.required without a certificate: {}", String::from_utf8_lossy(&out.stderr)),
    )
}

/// Materialized views survive kill -9: they are re-deployed from the catalog at startup,
/// rebuilt from their tables, and keep following new writes; views over views included.
pub async fn views_are_redeployed_after_kill_9() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let mut server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer TEXT, amount BIGINT);
             INSERT INTO orders SELECT i, 'c' || (i % 13), i FROM generate_series(1, 5000) AS g(i);
             SET streaming_parallelism = 2;
             CREATE MATERIALIZED VIEW revenue AS
               SELECT customer, count(*) AS n, sum(amount) AS total, max(amount) AS biggest
               FROM orders GROUP BY customer;
             CREATE MATERIALIZED VIEW big AS SELECT customer, total FROM revenue WHERE n > 384;
             DELETE FROM orders WHERE id % 10 = 0;
             FLUSH;",
        )
        .await
        .map_err(show)?;
    let query =
        "SELECT (SELECT count(*) FROM revenue) AS groups, (SELECT sum(n)::BIGINT FROM revenue) AS rows_, \
                 (SELECT count(*) FROM big) AS big_groups";
    let before = client.query_one(query, &[]).await.map_err(show)?;
    let before: (i64, i64, i64) = (before.get(0), before.get::<_, i64>(1), before.get(2));
    check(before.1 == 4500, format!("rows counted before the kill: {before:?}"))?;
    drop(client);

    server.restart();
    let client = server.connect().await;
    let after = client.query_one(query, &[]).await.map_err(show)?;
    let after: (i64, i64, i64) = (after.get(0), after.get::<_, i64>(1), after.get(2));
    check(before == after, format!("views after restart {after:?}, before {before:?}"))?;

    client.batch_execute("INSERT INTO orders VALUES (10, 'new', 7); FLUSH;").await.map_err(show)?;
    let row = client
        .query_one("SELECT n, total::BIGINT FROM revenue WHERE customer = 'new'", &[])
        .await
        .map_err(show)?;
    check(row.get::<_, i64>(0) == 1 && row.get::<_, i64>(1) == 7, "a new write reaches the rebuilt view")?;
    let jobs: Vec<String> = client
        .query("SELECT view || ':' || status FROM weir_catalog.jobs ORDER BY view", &[])
        .await
        .map_err(show)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    check(jobs == ["big:running", "revenue:running"], format!("jobs after restart: {jobs:?}"))?;
    Ok(())
}

/// Four sessions insert, update and delete concurrently while views at parallelism 4
/// follow; after FLUSH every view equals its query run in batch.
pub async fn concurrent_writers_agree_with_batch() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE events (id BIGINT PRIMARY KEY, k INT, v BIGINT, tag TEXT);
             SET streaming_parallelism = 4;
             CREATE MATERIALIZED VIEW per_k AS
               SELECT k, count(*) AS n, sum(v) AS s, min(v) AS lo, max(v) AS hi,
                      count(DISTINCT tag) AS tags
               FROM events GROUP BY k;
             CREATE MATERIALIZED VIEW positive AS SELECT id, k, v FROM events WHERE v > 0;
             CREATE MATERIALIZED VIEW per_k_big AS SELECT k, n FROM per_k WHERE n > 3;",
        )
        .await
        .map_err(show)?;
    let mut writers = Vec::new();
    for w in 0..4i64 {
        let client = server.connect().await;
        writers.push(tokio::spawn(async move {
            // A small deterministic generator per writer (no shared state).
            let mut x: i64 = 0x2545_F491 + w;
            let mut next = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.rem_euclid(1_000_000)
            };
            for i in 0..150i64 {
                let id = w * 10_000 + next() % 400;
                let sql = match next() % 4 {
                    0 | 1 => format!(
                        "INSERT INTO events VALUES ({id}, {}, {}, 't{}')",
                        next() % 17,
                        next() % 200 - 50,
                        next() % 5
                    ),
                    2 => format!(
                        "UPDATE events SET v = v + {}, k = {} WHERE id = {id}",
                        next() % 30 - 15,
                        i % 17
                    ),
                    _ => format!("DELETE FROM events WHERE id = {id}"),
                };
                // Duplicate keys are expected now and then; they change nothing.
                if let Err(e) = client.batch_execute(&sql).await {
                    if db_code(&e) != "23505" {
                        return Err(format!("{sql}: {e}"));
                    }
                }
            }
            Ok::<(), String>(())
        }));
    }
    for writer in writers {
        writer.await.map_err(show)??;
    }
    client.batch_execute("FLUSH").await.map_err(show)?;
    for (view, query) in [
        (
            "per_k",
            "SELECT k, count(*) AS n, sum(v) AS s, min(v) AS lo, max(v) AS hi, count(DISTINCT tag) AS tags \
             FROM events GROUP BY k",
        ),
        ("positive", "SELECT id, k, v FROM events WHERE v > 0"),
        ("per_k_big", "SELECT k, count(*) AS n FROM events GROUP BY k HAVING count(*) > 3"),
    ] {
        let differences = format!(
            "SELECT count(*) FROM ((SELECT * FROM {view} EXCEPT SELECT * FROM ({query}) b) \
             UNION ALL (SELECT * FROM ({query}) b EXCEPT SELECT * FROM {view})) d"
        );
        let row = client.query_one(&differences, &[]).await.map_err(show)?;
        let counts = client
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM {view}) AS v, (SELECT count(*) FROM ({query}) b) AS b"
                ),
                &[],
            )
            .await
            .map_err(show)?;
        let (in_view, in_batch): (i64, i64) = (counts.get(0), counts.get(1));
        check(
            row.get::<_, i64>(0) == 0 && in_view == in_batch,
            format!(
                "{view}: {} differing rows; {in_view} rows in the view, {in_batch} in batch",
                row.get::<_, i64>(0)
            ),
        )?;
    }
    Ok(())
}

/// A long Nexmark stream under window views: the aggregates' state holds only the windows
/// the watermark has not closed, so it stays small while the views keep growing. The
/// generator is paced at a million events per second of wall time, one event per
/// microsecond of event time, into 100 ms windows: 5.5 M events are about 55 windows over
/// 5.5 s, while the state is sampled. (The source is bounded only so that the test ends.)
pub async fn window_state_stays_bounded_on_a_long_stream() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    // Operators report their state at barriers: a short interval samples the run often.
    let config = dir.path().join("weir.toml");
    std::fs::write(&config, "[streaming]\nbarrier_interval_ms = 50\n").map_err(show)?;
    let server =
        TestServer::start_with(&dir.path().join("data"), &["--config".into(), config.display().to_string()]);
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE SOURCE bid (auction BIGINT, price BIGINT, date_time TIMESTAMP,
               WATERMARK FOR date_time AS date_time - INTERVAL '100' MILLISECOND)
             WITH (connector = 'nexmark', nexmark.table.type = 'Bid', nexmark.event.num = '5500000',
                   nexmark.min.event.gap.in.ns = '1000', nexmark.use.real.time = 'true');
             SET streaming_parallelism = 2;
             CREATE MATERIALIZED VIEW on_close AS
               SELECT auction, window_start, window_end, count(*) AS n, max(price) AS top
               FROM TUMBLE(bid, date_time, INTERVAL '100' MILLISECOND)
               GROUP BY auction, window_start, window_end EMIT ON WINDOW CLOSE;
             CREATE MATERIALIZED VIEW on_update AS
               SELECT auction, window_start, window_end, count(*) AS n
               FROM TUMBLE(bid, date_time, INTERVAL '100' MILLISECOND)
               GROUP BY auction, window_start, window_end;",
        )
        .await
        .map_err(show)?;
    let started = std::time::Instant::now();
    let mut max_state = [0i64; 2];
    let mut samples = 0;
    loop {
        if started.elapsed() > Duration::from_secs(300) {
            return Err("the source did not finish in 300 s".into());
        }
        let row = client
            .query_one(
                "SELECT coalesce(max(state_rows) FILTER (WHERE job = 'on_close'), 0),
                        coalesce(max(state_rows) FILTER (WHERE job = 'on_update'), 0)
                 FROM weir_catalog.tasks WHERE operators LIKE 'HashAggregate%'",
                &[],
            )
            .await
            .map_err(show)?;
        let (close_state, update_state): (i64, i64) = (row.get(0), row.get(1));
        max_state = [max_state[0].max(close_state), max_state[1].max(update_state)];
        samples += 1;
        if crate::clients::sources_finished(&client).await? {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.batch_execute("FLUSH").await.map_err(show)?;
    let rows_read: i64 = client
        .query_one("SELECT sum(rows_read)::BIGINT FROM weir_catalog.sources", &[])
        .await
        .map_err(show)?
        .get(0);
    let emitted: i64 = client.query_one("SELECT count(*) FROM on_close", &[]).await.map_err(show)?.get(0);
    let total: i64 = client.query_one("SELECT count(*) FROM on_update", &[]).await.map_err(show)?.get(0);
    let windows: i64 = client
        .query_one("SELECT count(DISTINCT window_start) FROM on_close", &[])
        .await
        .map_err(show)?
        .get(0);
    // 3 M bids are 300 s of event time: about 30 windows. Each view has emitted tens of
    // thousands of groups, while each aggregate subtask holds only the open windows' groups.
    println!(
        "  {rows_read} bids read by the two views, {windows} windows, {emitted} groups emitted, \
         peak state {max_state:?} in {samples} samples"
    );
    if windows < 40 || emitted < 100_000 || total < emitted {
        return Err(format!(
            "too little output: {windows} windows, {emitted} rows on close, {total} on update"
        ));
    }
    for (view, peak) in ["on_close", "on_update"].iter().zip(max_state) {
        if peak == 0 || peak * 4 > emitted {
            return Err(format!(
                "{view}: peak state {peak} rows is not bounded by the open windows ({emitted} emitted)"
            ));
        }
    }
    Ok(())
}

/// `on_error = 'fail'`: the first malformed row fails the view's job, and the reason names
/// the row. The source may fail while CREATE waits for the backfill (CREATE then fails) or
/// just after it returned (the job is then shown failed): either way the reason is there.
pub async fn on_error_fail_reports_the_row() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    // The file is read from the default allowed directory, DATA_DIR/files, by a relative path.
    let files = dir.path().join("data/files");
    std::fs::create_dir_all(&files).map_err(show)?;
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql-tests/data/bad.csv");
    std::fs::copy(&data, files.join("bad.csv")).map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE SOURCE badf (id BIGINT, name VARCHAR, ts TIMESTAMP)
             WITH (connector = 'file', path = 'bad.csv', format = 'csv', header = 'true', on_error = 'fail')",
        )
        .await
        .map_err(show)?;
    let expected = "bad.csv line 4";
    let reason = match client.batch_execute("CREATE MATERIALIZED VIEW badf_v AS SELECT * FROM badf").await {
        Err(e) => e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string()),
        Ok(()) => {
            let mut status = String::new();
            for _ in 0..100 {
                let row = client
                    .query_one("SELECT status FROM weir_catalog.jobs WHERE view = 'badf_v'", &[])
                    .await
                    .map_err(show)?;
                status = row.get(0);
                if status.starts_with("failed") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            status
        }
    };
    if !reason.contains(expected) || !reason.contains("on_error = 'fail'") {
        return Err(format!("the failure does not name {expected}: {reason}"));
    }
    Ok(())
}

/// Keyed state larger than the memory it may use: an aggregate over 400,000 keys keeps at
/// most `cache_groups` of them in memory and the rest in RocksDB (4 MB block cache), takes
/// checkpoints of all of them, survives kill -9 in the middle, and ends exactly right.
pub async fn rocksdb_state_outgrows_memory_and_survives_kill_9() -> Result<(), String> {
    const KEYS: i64 = 400_000;
    const ROWS: i64 = 600_000;
    const CACHE: i64 = 20_000;
    let dir = tempfile::tempdir().map_err(show)?;
    let config = dir.path().join("weir.toml");
    std::fs::write(
        &config,
        format!(
            "[state]\nbackend = \"rocksdb\"\nblock_cache_mb = 4\nwrite_buffer_mb = 4\ncache_groups = {CACHE}\n\
             [checkpoint]\ninterval = \"500ms\"\n[streaming]\nbarrier_interval_ms = 100\n"
        ),
    )
    .map_err(show)?;
    let mut server =
        TestServer::start_with(&dir.path().join("data"), &["--config".into(), config.display().to_string()]);
    let client = server.connect().await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE keys (k BIGINT) WITH (connector = 'datagen', datagen.rows.per.second = '200000',
               fields.k.kind = 'sequence', fields.k.start = '1', fields.k.end = '{ROWS}');
             SET streaming_parallelism = 2;
             CREATE MATERIALIZED VIEW totals AS
               SELECT count(*) AS groups, sum(n)::BIGINT AS rows_, max(n) AS most
               FROM (SELECT k % {KEYS} AS key, count(*) AS n FROM keys GROUP BY k % {KEYS}) g;"
        ))
        .await
        .map_err(show)?;
    let in_memory = "SELECT coalesce(max(state_rows), 0) FROM weir_catalog.tasks \
                     WHERE job = 'totals' AND vertex = 1";
    let progress = "SELECT coalesce((SELECT groups FROM totals), 0)";
    let finished = "SELECT count(*) FILTER (WHERE status = 'finished') = count(*) FROM weir_catalog.sources \
                    WHERE job = 'totals'";
    let mut peak = 0i64;
    let mut killed = false;
    let started = std::time::Instant::now();
    let mut client = client;
    loop {
        if started.elapsed() > Duration::from_secs(240) {
            return Err(format!("the source did not finish in 240 s; log:\n{}", server.log()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Ok(row) = client.query_one(in_memory, &[]).await else { continue };
        peak = peak.max(row.get::<_, i64>(0));
        let groups: i64 = client.query_one(progress, &[]).await.map_err(show)?.get(0);
        if !killed && groups > KEYS / 3 {
            // A checkpoint of state mostly in RocksDB, then kill -9 in the middle of the stream.
            server.restart();
            client = server.connect().await;
            killed = true;
            continue;
        }
        if killed && client.query_one(finished, &[]).await.map_err(show)?.get::<_, bool>(0) {
            break;
        }
    }
    client.batch_execute("FLUSH").await.map_err(show)?;
    let row = client.query_one("SELECT groups, rows_, most FROM totals", &[]).await.map_err(show)?;
    let result: (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    check(result == (KEYS, ROWS, 2), format!("totals {result:?}, expected ({KEYS}, {ROWS}, 2)"))?;
    // Between barriers the groups an epoch touches are added; evictions bring memory back
    // to three quarters of the cache at each barrier.
    check(
        peak > 0 && peak <= 2 * CACHE,
        format!("{peak} groups in one task's memory (cache {CACHE}, {KEYS} groups in all)"),
    )?;
    check(server.log().contains("recovering from checkpoint"), "the restart did not restore a checkpoint")
}

/// Whether every source has read all its input.
pub async fn sources_finished(client: &tokio_postgres::Client) -> Result<bool, String> {
    let row = client
        .query_one("SELECT coalesce(bool_and(status = 'finished'), false) FROM weir_catalog.sources", &[])
        .await
        .map_err(show)?;
    Ok(row.get(0))
}
