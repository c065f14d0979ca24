//! What the benchmarks share: a real Weir server started in this process on a free
//! loopback port with a temporary data directory, and a client connected to it.

use std::time::Duration;

/// The running server's data directory (removed when dropped) and a connected client.
pub struct BenchServer {
    pub _dir: tempfile::TempDir,
    pub client: tokio_postgres::Client,
}

/// Starts Weir with `adjust` applied to its configuration and connects to it.
pub async fn start(
    adjust: impl FnOnce(&mut weir_server::config::Config),
) -> Result<BenchServer, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut config = weir_server::config::Config::load(
        None,
        weir_server::config::Overrides {
            listen: Some(format!("127.0.0.1:{port}")),
            data_dir: Some(dir.path().join("data")),
            ..Default::default()
        },
    )?;
    adjust(&mut config);
    tokio::spawn(async move {
        if let Err(e) = weir_server::serve(config).await {
            eprintln!("server failed: {e}");
        }
    });
    let conn = format!("host=127.0.0.1 port={port} user=bench dbname=weir");
    let client = loop {
        match tokio_postgres::connect(&conn, tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                break client;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    Ok(BenchServer { _dir: dir, client })
}
