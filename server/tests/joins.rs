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
    let dir = tempfile::tempdir().map_err(show)?;
    let config = dir.path().join("weir.toml");
    std::fs::write(
        &config,
        "[state]\nbackend = \"rocksdb\"\nblock_cache_mb = 4\nwrite_buffer_mb = 4\ncache_groups = 40\n\
         [checkpoint]\ninterval = \"300ms\"\n[streaming]\nbarrier_interval_ms = 100\n",
    )
    .map_err(show)?;
    let mut server =
        TestServer::start_with(&dir.path().join("data"), &["--config".into(), config.display().to_string()]);
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
