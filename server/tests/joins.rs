//! Join views maintained under random inserts, updates and deletes on every side, with
//! join state in RocksDB behind a cache far smaller than the state (so keys are evicted and
//! read back), and a kill -9 in the middle: after each round every view must equal its
//! query run in batch, as a multiset (`EXCEPT ALL` both ways is empty and the counts agree).

use std::time::Duration;

use tokio_postgres::Client;

use crate::clients::{check, db_code, show};
use crate::support::TestServer;

/// (view, defining query). Keys come from a small domain so that keys match many rows.
const VIEWS: &[(&str, &str)] = &[
    ("j_inner", "SELECT a.id AS a_id, a.v, b.id AS b_id, b.w FROM a JOIN b ON a.k = b.k"),
    ("j_left", "SELECT a.id AS a_id, a.v, b.id AS b_id, b.w FROM a LEFT JOIN b ON a.k = b.k"),
    ("j_right", "SELECT a.id AS a_id, b.id AS b_id, b.w FROM a RIGHT JOIN b ON b.k = a.k"),
    (
        "j_full",
        "SELECT a.id AS a_id, a.v, b.id AS b_id, b.w FROM a FULL OUTER JOIN b ON a.k = b.k AND a.v < b.w",
    ),
    ("j_semi", "SELECT id, v FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.k = a.k AND b.w > 10)"),
    ("j_anti", "SELECT id, k FROM a WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.k = a.k)"),
    ("j_dups", "SELECT a.k, count(*) AS n, sum(c.x) AS s FROM a JOIN c ON a.k = c.k GROUP BY a.k"),
    ("j_three", "SELECT a.id AS a_id, b.id AS b_id, c.x FROM a JOIN b ON a.k = b.k JOIN c ON c.k = b.k + 1"),
];

/// A server keeping state in RocksDB behind a cache of `cache_groups` rows per side, with
/// small RocksDB buffers and frequent barriers and checkpoints; its data directory goes when
/// the first value is dropped.
fn rocksdb_server(cache_groups: usize) -> Result<(tempfile::TempDir, TestServer), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let config = dir.path().join("weir.toml");
    std::fs::write(
        &config,
        format!(
            "[state]\nbackend = \"rocksdb\"\nblock_cache_mb = 4\nwrite_buffer_mb = 4\n\
             cache_groups = {cache_groups}\n[checkpoint]\ninterval = \"300ms\"\n\
             [streaming]\nbarrier_interval_ms = 100\n"
        ),
    )
    .map_err(show)?;
    let server =
        TestServer::start_with(&dir.path().join("data"), &["--config".into(), config.display().to_string()]);
    Ok((dir, server))
}

/// xorshift, seeded per test run so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> i64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n) as i64
    }
}

pub async fn random_changes_on_both_sides_agree_with_batch_across_kill_9() -> Result<(), String> {
    let (_dir, mut server) = rocksdb_server(40)?;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE a (id INT PRIMARY KEY, k INT, v INT);
             CREATE TABLE b (id INT PRIMARY KEY, k BIGINT, w INT);
             CREATE TABLE c (k INT, x INT);
             SET streaming_parallelism = 3;",
        )
        .await
        .map_err(show)?;
    for (view, query) in VIEWS {
        client.batch_execute(&format!("CREATE MATERIALIZED VIEW {view} AS {query}")).await.map_err(show)?;
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 | 1)
        .unwrap_or(7);
    println!("  joins: seed {seed}");
    let mut rng = Rng(seed);
    let mut client = client;
    for round in 0..4 {
        random_changes(&client, &mut rng, 250).await?;
        if round == 1 {
            // Join state in RocksDB and checkpoints of it, then kill -9 mid-stream.
            tokio::time::sleep(Duration::from_millis(700)).await;
            random_changes(&client, &mut rng, 50).await?;
            server.restart();
            client = server.connect().await;
        }
        client.batch_execute("FLUSH").await.map_err(show)?;
        for (view, query) in VIEWS {
            compare(&client, view, query).await.map_err(|e| format!("round {round}, seed {seed}: {e}"))?;
        }
    }
    Ok(())
}

async fn random_changes(client: &Client, rng: &mut Rng, n: usize) -> Result<(), String> {
    for _ in 0..n {
        let id = rng.below(60);
        let sql = match rng.below(9) {
            0 | 1 => format!("INSERT INTO a VALUES ({id}, {}, {})", rng.below(12), rng.below(30)),
            2 | 3 => format!("INSERT INTO b VALUES ({id}, {}, {})", rng.below(12), rng.below(30)),
            4 => format!("UPDATE a SET k = {}, v = v + 1 WHERE id = {id}", rng.below(12)),
            5 => format!("UPDATE b SET w = {} WHERE id = {id}", rng.below(30)),
            6 => format!("DELETE FROM {} WHERE id = {id}", if rng.below(2) == 0 { "a" } else { "b" }),
            // Duplicates and NULL keys on the side without a key.
            _ => match rng.below(5) {
                0 => format!("INSERT INTO c VALUES (NULL, {id})"),
                _ => format!("INSERT INTO c VALUES ({}, {})", rng.below(12), rng.below(3)),
            },
        };
        if let Err(e) = client.batch_execute(&sql).await {
            if db_code(&e) != "23505" {
                return Err(format!("{sql}: {e}"));
            }
        }
    }
    Ok(())
}

async fn compare(client: &Client, view: &str, query: &str) -> Result<(), String> {
    let differences = format!(
        "SELECT count(*) FROM ((SELECT * FROM {view} EXCEPT ALL SELECT * FROM ({query}) q) \
         UNION ALL (SELECT * FROM ({query}) q EXCEPT ALL SELECT * FROM {view})) d"
    );
    let differing: i64 = client.query_one(&differences, &[]).await.map_err(show)?.get(0);
    let counts =
        format!("SELECT (SELECT count(*) FROM {view}) AS v, (SELECT count(*) FROM ({query}) q) AS b");
    let row = client.query_one(&counts, &[]).await.map_err(show)?;
    let (in_view, in_batch): (i64, i64) = (row.get(0), row.get(1));
    check(
        differing == 0 && in_view == in_batch,
        format!("{view}: {differing} rows differ from batch ({in_view} in the view, {in_batch} in batch)"),
    )
}

/// A join whose state is a hundred times its cache, arriving in one statement per side (one
/// epoch each): the join writes and evicts within the epoch, `weir_catalog.tasks` shows the
/// rows in memory staying near the cache while the state holds every row, and the view
/// equals batch after the inserts, after deleting half of one side (rows that are only in
/// RocksDB), and after a kill -9.
pub async fn a_join_state_far_larger_than_its_cache_stays_bounded_and_exact() -> Result<(), String> {
    let (_dir, mut server) = rocksdb_server(100)?;
    let client = server.connect().await;
    let query = "SELECT a.id AS a_id, a.k, b.id AS b_id FROM a LEFT JOIN b ON a.k = b.k";
    client
        .batch_execute(&format!(
            "CREATE TABLE a (id INT PRIMARY KEY, k INT);
             CREATE TABLE b (id INT PRIMARY KEY, k INT);
             SET streaming_parallelism = 2;
             CREATE MATERIALIZED VIEW big_join AS {query};
             INSERT INTO a SELECT i, i % 5000 FROM generate_series(1, 10000) AS g(i);
             INSERT INTO b SELECT i, i FROM generate_series(1, 10000) AS g(i);
             FLUSH;"
        ))
        .await
        .map_err(show)?;
    let state = "SELECT count(*), sum(state_rows)::BIGINT, sum(state_rows_in_memory)::BIGINT \
                 FROM weir_catalog.tasks WHERE job = 'big_join' AND operators LIKE '%HashJoin%'";
    let row = client.query_one(state, &[]).await.map_err(show)?;
    let (subtasks, rows, in_memory): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    // After a barrier each side of each subtask keeps at most its cache (100 rows).
    check(
        subtasks == 2 && rows == 20_000 && in_memory <= 400,
        format!(
            "{subtasks} join subtasks hold {rows} rows (2 and 20000 expected), {in_memory} of them in memory \
             (at most 400 expected)"
        ),
    )?;
    compare(&client, "big_join", query).await.map_err(|e| format!("after the inserts: {e}"))?;
    client.batch_execute("DELETE FROM a WHERE id % 2 = 0; FLUSH;").await.map_err(show)?;
    compare(&client, "big_join", query).await.map_err(|e| format!("after the deletes: {e}"))?;
    // A checkpoint after the deletes, then kill -9.
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.restart();
    let client = server.connect().await;
    client
        .batch_execute("INSERT INTO b SELECT i, i % 100 FROM generate_series(10001, 12000) AS g(i); FLUSH;")
        .await
        .map_err(show)?;
    compare(&client, "big_join", query).await.map_err(|e| format!("after the restart: {e}"))
}
