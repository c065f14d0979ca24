//! Settings a client gives when it connects: `application_name` in the startup packet is
//! the session's value (`SHOW`, `current_setting`) and what `RESET` and `RESET ALL` go back
//! to, as in Postgres (Weir showed `''` and reset it to `''`).

use crate::clients::{check, show};
use crate::support::TestServer;

pub async fn reset_restores_the_startup_application_name() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let dsn = format!("host=127.0.0.1 port={} user=weir dbname=weir application_name=boot", server.port);
    let (client, connection) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls).await.map_err(show)?;
    tokio::spawn(connection);
    let show_name = || async {
        client.query_one("SHOW application_name", &[]).await.map(|r| r.get::<_, String>(0)).map_err(show)
    };
    check(show_name().await? == "boot", "the startup value is the session's")?;
    client.batch_execute("SET application_name = 'other'; RESET application_name").await.map_err(show)?;
    let after_reset = show_name().await?;
    check(after_reset == "boot", format!("RESET goes back to the startup value, not {after_reset:?}"))?;
    client.batch_execute("SET application_name = 'other'; RESET ALL").await.map_err(show)?;
    let after_reset_all = show_name().await?;
    check(
        after_reset_all == "boot",
        format!("RESET ALL goes back to the startup value, not {after_reset_all:?}"),
    )
}
