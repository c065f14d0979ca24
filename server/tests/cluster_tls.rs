//! TLS between cluster processes: a JobManager and two TaskManagers with certificates of a
//! test CA run a view across processes; a TaskManager without TLS cannot register.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::clients::{check, show};
use crate::recovery::{join_row, rows, write_config};
use crate::support::cluster::TestCluster;

/// A CA and a certificate it signed for 127.0.0.1 and localhost, for servers and clients.
fn certificates(dir: &std::path::Path) -> Result<(String, String, String), String> {
    let path = |name: &str| dir.join(name).display().to_string();
    let openssl = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("openssl").args(args).output().map_err(show)?;
        check(out.status.success(), format!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
    };
    std::fs::write(
        dir.join("node.ext"),
        "subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth, clientAuth\n\
         basicConstraints = CA:FALSE\n",
    )
    .map_err(show)?;
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=weir test CA",
        "-keyout",
        &path("ca.key"),
        "-out",
        &path("ca.crt"),
    ])?;
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        &path("node.key"),
        "-out",
        &path("node.csr"),
    ])?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        &path("node.csr"),
        "-CA",
        &path("ca.crt"),
        "-CAkey",
        &path("ca.key"),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &path("node.ext"),
        "-out",
        &path("node.crt"),
    ])?;
    Ok((path("node.crt"), path("node.key"), path("ca.crt")))
}

pub async fn processes_talk_over_mutual_tls() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let (cert, key, ca) = certificates(dir.path())?;
    let config = dir.path().join("cluster.toml");
    write_config(
        &config,
        &format!(
            "[cluster]\nsecret = \"s3cret\"\ntls_cert = \"{cert}\"\ntls_key = \"{key}\"\ntls_ca = \"{ca}\"\n"
        ),
    )?;
    let mut cluster = TestCluster::start(dir.path(), 2, 4, Some(&config));
    cluster.wait_for_taskmanagers(2).await?;
    let client = cluster.jobmanager.connect().await;
    client
        .batch_execute(
            "CREATE SOURCE bid (auction BIGINT, price BIGINT, date_time TIMESTAMP)
               WITH (connector = 'nexmark', nexmark.table.type = 'Bid', nexmark.event.num = '100000');
             SET streaming_parallelism = 2;
             CREATE MATERIALIZED VIEW per_auction AS SELECT auction, count(*) AS n FROM bid GROUP BY auction;
             CREATE MATERIALIZED VIEW total AS SELECT sum(n) AS n FROM per_auction;",
        )
        .await
        .map_err(|e| format!("{e:?}\n{}", cluster.logs(30)))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        rows(&client, "FLUSH").await?;
        let total = rows(&client, "SELECT n FROM total").await?;
        // 46 bids in every 50 events.
        if total.first().map(|r| join_row(r)).as_deref() == Some("92000") {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("the views never counted every bid: {total:?}\n{}", cluster.logs(30)));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let spread =
        rows(&client, "SELECT count(DISTINCT taskmanager) FROM weir_catalog.tasks WHERE job = 'per_auction'")
            .await?;
    check(spread[0][0].as_deref() != Some("1"), format!("per_auction ran in one process: {spread:?}"))?;
    check(cluster.jobmanager.log().contains("tls=true"), "the jobmanager does not say it uses TLS")?;

    // Without TLS a TaskManager cannot even connect; it keeps trying and says why.
    let plain = dir.path().join("plain.toml");
    write_config(&plain, "[cluster]\nsecret = \"s3cret\"\n")?;
    let intruder = cluster.add_taskmanager(2, &["--config", &plain.display().to_string()]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let workers =
        rows(&client, "SELECT count(*) FROM weir_catalog.taskmanagers WHERE role = 'worker'").await?;
    check(workers[0][0].as_deref() == Some("2"), format!("a plain taskmanager registered: {workers:?}"))?;
    let log = cluster.taskmanagers[intruder].log();
    check(log.contains("cannot reach the JobManager"), format!("the plain taskmanager's log: {log}"))?;
    Ok(())
}
