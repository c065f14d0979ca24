//! Limits on what one statement may take from the server, over the wire: a source with many
//! splits must not stall other clients (sql-tests/slt/limits.slt checks what one session can
//! see, such as the refusal of a source over `[sources] max_splits`).

use std::time::Duration;

use tokio_postgres::Client;

use crate::support::TestServer;

fn show(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Runs `sql` on `client`, failing if it takes longer than `limit`.
async fn within(
    client: &Client,
    sql: &str,
    limit: Duration,
) -> Result<Vec<tokio_postgres::SimpleQueryMessage>, String> {
    match tokio::time::timeout(limit, client.simple_query(sql)).await {
        Ok(result) => result.map_err(|e| format!("{sql}: {e}")),
        Err(_) => Err(format!("{sql}: no answer within {limit:?}; the server stalled")),
    }
}

fn first_row(messages: &[tokio_postgres::SimpleQueryMessage]) -> Option<Vec<String>> {
    messages.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => {
            Some((0..row.len()).map(|i| row.get(i).unwrap_or("NULL").to_string()).collect())
        }
        _ => None,
    })
}

/// More splits than Tokio's blocking pool has threads (512): each used to hold one thread
/// for its whole life, so every statement that needed one (CREATE TABLE, INSERT) waited
/// forever. With the bounded reader pool (two threads here) the view is created, reads
/// every row exactly once, and another client is served meanwhile.
pub async fn many_splits_do_not_stall_other_clients() -> Result<(), String> {
    const BYTES: usize = 700;
    let dir = tempfile::tempdir().map_err(show)?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("files")).map_err(show)?;
    // 350 rows of one digit and a newline: 700 splits of one byte each.
    let rows: Vec<usize> = (0..BYTES / 2).map(|i| i % 10).collect();
    let csv: String = rows.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(data.join("files").join("many.csv"), csv).map_err(show)?;
    let config = dir.path().join("weir.toml");
    std::fs::write(&config, "[sources]\nreader_threads = 2\nmax_splits = 5000\n").map_err(show)?;
    let server = TestServer::start_with(&data, &["--config".into(), config.display().to_string()]);
    let client = server.connect().await;
    let other = server.connect().await;
    let minute = Duration::from_secs(60);
    within(
        &client,
        "CREATE SOURCE s (v BIGINT) WITH (connector = 'file', path = 'many.csv', format = 'csv', split.size = '1')",
        minute,
    )
    .await?;
    within(&client, "CREATE MATERIALIZED VIEW mv AS SELECT count(*) AS n, sum(v) AS total FROM s", minute)
        .await?;
    // Another client's statements that need a blocking thread are answered promptly.
    let prompt = Duration::from_secs(20);
    within(&other, "CREATE TABLE t (x BIGINT)", prompt).await?;
    within(&other, "INSERT INTO t VALUES (1), (2)", prompt).await?;
    let sum = first_row(&within(&other, "SELECT sum(x) FROM t", prompt).await?);
    if sum != Some(vec!["3".to_string()]) {
        return Err(format!("SELECT sum(x) FROM t gave {sum:?}"));
    }
    within(&client, "FLUSH", minute).await?;
    let got = first_row(&within(&client, "SELECT n, total FROM mv", prompt).await?);
    let want = vec![rows.len().to_string(), rows.iter().sum::<usize>().to_string()];
    if got != Some(want.clone()) {
        return Err(format!("the view over 700 one-byte splits has {got:?}, expected {want:?}"));
    }
    Ok(())
}

/// A batch query that needs more than `[query] memory_limit_mb` fails with 53200 and a hint
/// naming the setting; the server stays up and serves the next query, on the same session
/// and on others. Without a memory pool the join ran to completion however large it grew.
pub async fn a_query_over_the_memory_limit_fails_with_53200() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let config = dir.path().join("weir.toml");
    std::fs::write(&config, "[query]\nmemory_limit_mb = 1\n").map_err(show)?;
    let server =
        TestServer::start_with(&dir.path().join("data"), &["--config".into(), config.display().to_string()]);
    let client = server.connect().await;
    // The build side of a hash join (a million rows) cannot spill.
    let join = "SELECT count(*) FROM generate_series(1, 1000000) AS a(i) \
                JOIN generate_series(1, 1000000) AS b(j) ON i = j";
    let err = match client.simple_query(join).await {
        Ok(_) => return Err("a million-row hash join ran within a 1 MB memory limit".into()),
        Err(e) => e,
    };
    let db = err.as_db_error().ok_or_else(|| format!("not a server error: {err}"))?;
    if db.code().code() != "53200" || !db.hint().unwrap_or_default().contains("[query] memory_limit_mb") {
        return Err(format!("expected 53200 with a hint naming [query] memory_limit_mb, got {db:?}"));
    }
    // Small queries still run, here and in a new session.
    let small = "SELECT count(*) FROM generate_series(1, 1000) AS a(i) JOIN generate_series(1, 1000) AS b(j) ON i = j";
    for c in [&client, &server.connect().await] {
        let row = first_row(&c.simple_query(small).await.map_err(show)?);
        if row != Some(vec!["1000".to_string()]) {
            return Err(format!("a small join after the failure gave {row:?}"));
        }
    }
    Ok(())
}
