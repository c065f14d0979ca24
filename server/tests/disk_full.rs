//! A full disk under the data directory: a small tmpfs mounted there, then filled.
//!
//! Writes (INSERT, COPY, DDL) must fail with `53100` and change nothing; checkpoints fail and
//! are tried again at the next interval; nothing acknowledged is lost; once space returns
//! the server takes writes again by itself (RocksDB resumes when the disk has room for a
//! memtable, 64 MiB), and after a kill -9 every acknowledged row is back and the view equals
//! its query.
//!
//! Mounting needs root (CI runs as root). Without `CAP_SYS_ADMIN` the test re-runs itself in
//! a user and mount namespace (`unshare --user --map-root-user --mount`); if neither works it
//! says so loudly and skips.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::clients::{check, show};
use crate::support::TestServer;

const IN_NAMESPACE: &str = "WEIR_DISK_FULL_IN_NAMESPACE";
/// Room for RocksDB to resume (it waits for 64 MiB free) plus what the test writes.
const TMPFS_SIZE: &str = "160m";

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount_tmpfs(at: &Path) -> Result<Mount, String> {
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_SIZE}"), "tmpfs"])
        .arg(at)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        Ok(Mount(at.to_path_buf()))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

pub async fn writes_fail_with_53100_and_the_server_recovers() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).map_err(show)?;
    let _mount = match mount_tmpfs(&data) {
        Ok(mount) => mount,
        Err(why) if std::env::var_os(IN_NAMESPACE).is_none() => return rerun_in_namespace(&why),
        Err(why) => return Err(format!("mount failed even in a mount namespace: {why}")),
    };
    // The data directory is the mount point, so the server's log (beside it) stays writable.
    let mut server = TestServer::start(&data);
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE t (id INT PRIMARY KEY, pad TEXT);
             CREATE MATERIALIZED VIEW v AS SELECT count(*) AS n, sum(id) AS s FROM t;",
        )
        .await
        .map_err(show)?;
    let mut acknowledged: Vec<i32> = Vec::new();
    for id in 1..=50 {
        client.execute("INSERT INTO t VALUES ($1, repeat('x', 1000))", &[&id]).await.map_err(show)?;
        acknowledged.push(id);
    }

    // Fill the disk, then write until RocksDB has no room (its WAL is preallocated, so
    // some rows still fit): stop after a few refusals.
    let filler = data.join("filler");
    fill(&filler)?;
    let mut refused = 0;
    let mut codes = Vec::new();
    for id in 1000..1300 {
        match client.execute("INSERT INTO t VALUES ($1, repeat('y', 1000000))", &[&id]).await {
            Ok(_) => acknowledged.push(id),
            Err(e) => {
                refused += 1;
                codes.push(
                    e.as_db_error().map(|d| d.code().code().to_string()).unwrap_or_else(|| e.to_string()),
                );
                if refused == 3 {
                    break;
                }
            }
        }
    }
    check(refused > 0, "no write failed on a full disk")?;
    check(codes.iter().all(|c| c == "53100"), format!("writes on a full disk failed with {codes:?}"))?;
    // DDL and a small write, now that the database has stopped, are refused the same way.
    for statement in ["CREATE TABLE u (id INT)", "INSERT INTO t VALUES (2000, 'z')"] {
        let code = client
            .batch_execute(statement)
            .await
            .err()
            .and_then(|e| e.as_db_error().map(|d| d.code().code().to_string()));
        check(code.as_deref() == Some("53100"), format!("{statement} on a full disk: {code:?}"))?;
    }
    // Checkpoints fail while the disk is full, and reads still work.
    let failed =
        wait_for(&client, "SELECT count(*) FROM weir_catalog.checkpoints WHERE status = 'failed'", |n| n > 0)
            .await?;
    println!("  disk_full: {refused} writes refused with 53100, {failed} checkpoints failed");
    let n: i64 = client.query_one("SELECT count(*) FROM t", &[]).await.map_err(show)?.get(0);
    check(
        n as usize == acknowledged.len(),
        format!("{n} rows readable, {} acknowledged", acknowledged.len()),
    )?;

    // Space returns: writes succeed again without a restart, and checkpoints complete.
    std::fs::remove_file(&filler).map_err(show)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match client.execute("INSERT INTO t VALUES (3000, 'back')", &[]).await {
            Ok(_) => break,
            Err(e) if Instant::now() > deadline => {
                return Err(format!("no write succeeded after space returned: {e:?}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    acknowledged.push(3000);
    client.batch_execute("CREATE TABLE u (id INT); FLUSH").await.map_err(show)?;
    let before: i64 = client
        .query_one(
            "SELECT coalesce(max(epoch), 0) FROM weir_catalog.checkpoints WHERE status = 'completed'",
            &[],
        )
        .await
        .map_err(show)?
        .get(0);
    wait_for(
        &client,
        &format!(
            "SELECT count(*) FROM weir_catalog.checkpoints WHERE status = 'completed' AND epoch > {before}"
        ),
        |n| n > 0,
    )
    .await?;

    // Nothing acknowledged is lost across a kill -9, and the view agrees.
    drop(client);
    server.restart();
    let client = server.connect().await;
    client.batch_execute("FLUSH").await.map_err(show)?;
    let rows = client.query("SELECT id FROM t ORDER BY id", &[]).await.map_err(show)?;
    let ids: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    acknowledged.sort();
    check(
        ids == acknowledged,
        format!("after restart the table holds {ids:?}, acknowledged {acknowledged:?}"),
    )?;
    let view = client.query_one("SELECT n, s FROM v", &[]).await.map_err(show)?;
    let expected_sum: i64 = acknowledged.iter().map(|i| *i as i64).sum();
    let (n, s): (i64, i64) = (view.get(0), view.get::<_, Option<i64>>(1).unwrap_or(0));
    check(
        n as usize == acknowledged.len() && s == expected_sum,
        format!("view holds ({n}, {s}), expected ({}, {expected_sum})", acknowledged.len()),
    )
}

/// Writes zeros to `path` until the file system refuses more.
fn fill(path: &Path) -> Result<(), String> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(show)?;
    let chunk = vec![0u8; 1 << 20];
    loop {
        match file.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => return Err(format!("filling the disk: {e}")),
        }
    }
    // Whatever is left below a megabyte.
    while file.write_all(&[0u8; 4096]).is_ok() {}
    Ok(())
}

async fn wait_for(client: &Client, sql: &str, done: impl Fn(i64) -> bool) -> Result<i64, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = client.query_one(sql, &[]).await.map_err(show)?.get(0);
        if done(n) {
            return Ok(n);
        }
        if Instant::now() > deadline {
            return Err(format!("still {n} after 30 s: {sql}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs this test again inside a user and mount namespace, where mounting a tmpfs needs no
/// privilege; skips (loudly) if that is not possible either.
fn rerun_in_namespace(why_not_here: &str) -> Result<(), String> {
    const UNSHARE: [&str; 3] = ["--user", "--map-root-user", "--mount"];
    let probe = Command::new("unshare").args(UNSHARE).arg("true").output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        let why = match probe {
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        println!(
            "  !!! SKIPPED storage::disk_full: cannot mount a tmpfs ({why_not_here}) nor enter a user+mount \
             namespace ({why}); run the suite as root or allow unprivileged user namespaces"
        );
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(show)?;
    let status = Command::new("unshare")
        .args(UNSHARE)
        .arg(&exe)
        .arg("storage::disk_full")
        .env(IN_NAMESPACE, "1")
        .status()
        .map_err(show)?;
    check(status.success(), "the disk-full test failed inside a user+mount namespace (output above)")
}
