//! Roles and privileges over real logins: a server with a bootstrap password, roles made
//! with `CREATE ROLE ... LOGIN PASSWORD`, each connecting with SCRAM through tokio-postgres,
//! every allow and deny path of reads, writes, DDL, grants and file sources/sinks, and the
//! roles, owners and grants still in force after a restart. Also how roles log in when no
//! password is configured (trust for the bootstrap user on loopback).

use tokio_postgres::{Client, NoTls};

use crate::clients::{check, db_code, show};
use crate::support::{hash_password, TestServer};

async fn login(server: &TestServer, user: &str, password: &str) -> Result<Client, tokio_postgres::Error> {
    let mut url = format!("host=127.0.0.1 port={} user={user} dbname=weir", server.port);
    if !password.is_empty() {
        url.push_str(&format!(" password={password}"));
    }
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The SQLSTATE and message a statement fails with ("ok" if it succeeds).
async fn outcome(client: &Client, sql: &str) -> String {
    match client.batch_execute(sql).await {
        Ok(()) => "ok".into(),
        Err(e) => match e.as_db_error() {
            Some(db) => format!("{} {}", db.code().code(), db.message()),
            None => e.to_string(),
        },
    }
}

async fn expect(client: &Client, sql: &str, wanted: &str) -> Result<(), String> {
    let got = outcome(client, sql).await;
    check(
        got == wanted || (wanted != "ok" && got.starts_with(wanted)),
        format!("{sql}\n  wanted: {wanted}\n  got:    {got}"),
    )
}

async fn login_code(server: &TestServer, user: &str, password: &str) -> String {
    match login(server, user, password).await {
        Ok(_) => "ok".into(),
        Err(e) => db_code(&e),
    }
}

async fn scalar(client: &Client, sql: &str) -> Result<String, String> {
    let row = client.query_one(sql, &[]).await.map_err(|e| format!("{sql}: {}", show(e)))?;
    Ok(row.get::<_, String>(0))
}

/// psql's output for `command`, logged in as the bootstrap user with password `boot`.
fn psql(server: &TestServer, command: &str) -> Result<String, String> {
    let out = std::process::Command::new("psql")
        .args(["-X", "-c", command])
        .arg(format!("host=127.0.0.1 port={} user=weir dbname=weir", server.port))
        .env("PGPASSWORD", "boot")
        .output()
        .map_err(show)?;
    check(out.status.success(), format!("psql {command}: {}", String::from_utf8_lossy(&out.stderr)))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub async fn roles_and_privileges_over_scram() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let config = dir.path().join("weir.toml");
    std::fs::write(&config, format!("[auth]\npassword = \"{}\"\n", hash_password("boot")?)).map_err(show)?;
    let data = dir.path().join("data");
    let mut server = TestServer::start_with(&data, &["--config".into(), config.display().to_string()]);
    std::fs::write(data.join("files").join("in.csv"), "1\n2\n").map_err(show)?;
    let admin = login(&server, "weir", "boot").await.map_err(show)?;
    admin
        .batch_execute(
            "CREATE TABLE t (a INT); INSERT INTO t VALUES (1); CREATE TABLE u (a INT);
             CREATE MATERIALIZED VIEW v AS SELECT count(*) AS n FROM t;
             CREATE ROLE alice LOGIN PASSWORD 'alice-pw'; CREATE ROLE bob LOGIN PASSWORD 'bob-pw';
             CREATE ROLE quiet PASSWORD 'quiet-pw'",
        )
        .await
        .map_err(show)?;

    // Logging in: a wrong password and an unknown role fail alike; NOLOGIN is refused.
    check(login_code(&server, "alice", "wrong").await == "28P01", "alice with a wrong password")?;
    check(login_code(&server, "nobody", "x").await == "28P01", "an unknown role")?;
    check(login_code(&server, "quiet", "quiet-pw").await == "28000", "a NOLOGIN role")?;
    let alice = login(&server, "alice", "alice-pw").await.map_err(show)?;
    check(scalar(&alice, "SELECT current_user").await? == "alice", "current_user")?;
    check(scalar(&alice, "SHOW is_superuser").await? == "off", "is_superuser of alice")?;
    check(scalar(&admin, "SHOW is_superuser").await? == "on", "is_superuser of weir")?;

    // Nothing granted: every read, write and DDL on weir's objects is refused.
    let denied_t = "42501 permission denied for table t";
    expect(&alice, "SELECT * FROM t", denied_t).await?;
    expect(&alice, "SELECT * FROM (SELECT a FROM t) s WHERE a IN (SELECT a FROM t)", denied_t).await?;
    expect(&alice, "SELECT n FROM v", "42501 permission denied for materialized view v").await?;
    expect(&alice, "INSERT INTO t VALUES (2)", denied_t).await?;
    expect(&alice, "UPDATE t SET a = 3", denied_t).await?;
    expect(&alice, "DELETE FROM t", denied_t).await?;
    // On a connection of its own: after a COPY that fails to start (here, or on an unknown
    // table) the next statement on that tokio-postgres connection gets "unexpected message
    // from server" from Weir, a separate defect.
    let copier = login(&server, "alice", "alice-pw").await.map_err(show)?;
    let copy = copier.copy_in::<_, bytes::Bytes>("COPY t FROM STDIN").await.err().map(|e| db_code(&e));
    check(copy.as_deref() == Some("42501"), format!("COPY FROM without INSERT: {copy:?}"))?;
    expect(&alice, "CREATE TABLE mine (x INT)", "42501 permission denied for schema public").await?;
    expect(&alice, "DROP TABLE t", "42501 must be owner of table t").await?;
    expect(&alice, "DROP MATERIALIZED VIEW v", "42501 must be owner of materialized view v").await?;
    expect(&alice, "COMMENT ON TABLE t IS 'x'", "42501 must be owner of table t").await?;
    expect(&alice, "GRANT SELECT ON t TO alice", denied_t).await?;
    expect(&alice, "CREATE ROLE eve", "42501 permission denied to create role").await?;
    expect(&alice, "ALTER ROLE bob PASSWORD 'x'", "42501 permission denied to alter role").await?;
    expect(&alice, "GRANT pg_read_server_files TO alice", "42501").await?;
    check(
        scalar(&alice, "SELECT count(*)::text FROM pg_class WHERE relname = 't'").await? == "1",
        "catalogs stay readable",
    )?;

    // Grants open exactly what they name.
    admin
        .batch_execute(
            "GRANT SELECT, INSERT ON t, v TO alice; GRANT UPDATE ON TABLE t TO alice;
             GRANT CREATE ON SCHEMA public TO alice",
        )
        .await
        .map_err(show)?;
    expect(&alice, "SELECT * FROM t", "ok").await?;
    expect(&alice, "SELECT n FROM v", "ok").await?;
    expect(&alice, "INSERT INTO t VALUES (2)", "ok").await?;
    expect(&alice, "UPDATE t SET a = a + 10 WHERE a = 2", "ok").await?;
    expect(&alice, "DELETE FROM t WHERE a = 12", denied_t).await?;
    expect(&alice, "SELECT * FROM t JOIN u ON t.a = u.a", "42501 permission denied for table u").await?;
    expect(&alice, "INSERT INTO t SELECT a FROM u", "42501 permission denied for table u").await?;
    // An object alice creates is hers: she may do anything with it and grant on it.
    expect(&alice, "CREATE TABLE mine (x INT); INSERT INTO mine VALUES (7)", "ok").await?;
    expect(&alice, "CREATE MATERIALIZED VIEW mv_t AS SELECT count(*) AS n FROM t", "ok").await?;
    expect(
        &alice,
        "CREATE MATERIALIZED VIEW mv_u AS SELECT count(*) AS n FROM u",
        "42501 permission denied for table u",
    )
    .await?;
    expect(&alice, "GRANT SELECT ON mine TO bob", "ok").await?;
    check(
        scalar(&admin, "SELECT tableowner::text FROM pg_tables WHERE tablename = 'mine'").await? == "alice",
        "owner of mine",
    )?;

    // Server-side files need pg_read_server_files / pg_write_server_files.
    let file_source = "CREATE SOURCE fs (a INT) WITH (connector = 'file', path = 'in.csv', format = 'csv')";
    let file_sink =
        "CREATE SINK fk AS SELECT a FROM fs WITH (connector = 'file', path = 'out.csv', format = 'csv')";
    expect(
        &alice,
        file_source,
        "42501 must be superuser or have privileges of the pg_read_server_files role",
    )
    .await?;
    expect(&alice, file_sink, "42501 must be superuser or have privileges of the pg_write_server_files role")
        .await?;
    admin.batch_execute("GRANT pg_read_server_files, pg_write_server_files TO alice").await.map_err(show)?;
    expect(&alice, file_source, "ok").await?;
    expect(&alice, file_sink, "ok").await?;

    // bob: only what alice granted him.
    let bob = login(&server, "bob", "bob-pw").await.map_err(show)?;
    expect(&bob, "SELECT x FROM mine", "ok").await?;
    expect(&bob, "SELECT * FROM t", denied_t).await?;
    expect(&bob, "SELECT a FROM fs", "42501 permission denied for source fs").await?;
    expect(&bob, "DROP TABLE mine", "42501 must be owner of table mine").await?;
    expect(&bob, "DROP SINK fk", "42501 must be owner of sink fk").await?;

    // A role that owns objects or holds grants cannot be dropped.
    let drop_alice = outcome(&admin, "DROP ROLE alice").await;
    check(
        drop_alice.starts_with("2BP01 role \"alice\" cannot be dropped because some objects depend on it"),
        format!("DROP ROLE alice: {drop_alice}"),
    )?;

    // Everything survives a restart: roles, passwords, memberships, owners and grants.
    drop((alice, bob, admin));
    server.restart();
    let admin = login(&server, "weir", "boot").await.map_err(show)?;
    let alice = login(&server, "alice", "alice-pw").await.map_err(show)?;
    expect(&alice, "SELECT * FROM t", "ok").await?;
    expect(&alice, "DELETE FROM t", denied_t).await?;
    expect(&alice, "INSERT INTO mine VALUES (8)", "ok").await?;
    check(
        scalar(&admin, "SELECT array_to_string(relacl, ',') FROM pg_class WHERE relname = 't'").await?
            == "weir=arwdDxt/weir,alice=arw/weir",
        "relacl of t after restart",
    )?;
    check(
        scalar(
            &admin,
            "SELECT string_agg(r.rolname, ',' ORDER BY r.rolname) FROM pg_auth_members m \
             JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles a ON a.oid = m.member WHERE a.rolname = 'alice'",
        )
        .await?
            == "pg_read_server_files,pg_write_server_files",
        "alice's memberships after restart",
    )?;
    check(login_code(&server, "bob", "bob-pw").await == "ok", "bob after restart")?;
    // psql's \du and \dp print roles and grants as Postgres does.
    let du = psql(&server, "\\du alice")?;
    check(
        du.contains("alice") && du.contains("{pg_read_server_files,pg_write_server_files}"),
        format!("\\du alice:\n{du}"),
    )?;
    let dp = psql(&server, "\\dp t")?;
    check(dp.contains("weir=arwdDxt/weir+") && dp.contains("alice=arw/weir"), format!("\\dp t:\n{dp}"))?;

    // A role changes its own password; a superuser takes LOGIN away.
    expect(&alice, "ALTER ROLE alice PASSWORD 'new-pw'", "ok").await?;
    check(login_code(&server, "alice", "alice-pw").await == "28P01", "old password after ALTER ROLE")?;
    check(login_code(&server, "alice", "new-pw").await == "ok", "new password after ALTER ROLE")?;
    expect(&admin, "ALTER ROLE alice NOLOGIN", "ok").await?;
    check(login_code(&server, "alice", "new-pw").await == "28000", "NOLOGIN after ALTER ROLE")?;

    // Once its objects and grants are gone, the role can be dropped.
    admin
        .batch_execute(
            "DROP SINK fk; DROP SOURCE fs; DROP MATERIALIZED VIEW mv_t; DROP TABLE mine;
             REVOKE ALL ON t, v FROM alice; REVOKE CREATE ON SCHEMA public FROM alice; DROP ROLE alice",
        )
        .await
        .map_err(show)?;
    check(login_code(&server, "alice", "new-pw").await == "28P01", "a dropped role")
}

/// Without `auth.password` (trust on loopback): the bootstrap user and roles without a
/// password connect as they are, a role with a password must give it, unknown and NOLOGIN
/// roles are refused.
pub async fn roles_under_trust_authentication() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let admin = server.connect().await;
    admin
        .batch_execute("CREATE ROLE open LOGIN; CREATE ROLE locked LOGIN PASSWORD 'pw'; CREATE ROLE shut")
        .await
        .map_err(show)?;
    check(login_code(&server, "open", "").await == "ok", "a role without a password under trust")?;
    check(login_code(&server, "locked", "wrong").await == "28P01", "a role with a password, wrong one")?;
    check(login_code(&server, "locked", "pw").await == "ok", "a role with a password, right one")?;
    check(login_code(&server, "shut", "").await == "28000", "a NOLOGIN role")?;
    check(login_code(&server, "nobody", "").await == "28000", "an unknown role")?;
    let open = login(&server, "open", "").await.map_err(show)?;
    expect(&open, "CREATE TABLE x (a INT)", "42501 permission denied for schema public").await
}
