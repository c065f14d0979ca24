//! `ALTER TABLE` and renames survive kill -9: the rewritten rows, the new catalog, and the
//! running views over the altered and renamed table, which restart from their stored
//! JobGraphs and keep the right answer.

use crate::clients::{check, show};
use crate::support::TestServer;

/// A view over a table whose columns are added and renamed, and which is then renamed with
/// the view, keeps running; after kill -9 the rows, the names, the view's definition and
/// its answer are all as before, and new writes still reach it.
pub async fn altered_and_renamed_table_survives_kill_9() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let mut server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer TEXT, amount BIGINT);
             INSERT INTO orders SELECT i, 'c' || (i % 7), i FROM generate_series(1, 1000) AS g(i);
             CREATE MATERIALIZED VIEW revenue AS
               SELECT customer, count(*) AS n, sum(amount) AS total FROM orders GROUP BY customer;
             FLUSH;
             ALTER TABLE orders ADD COLUMN status TEXT DEFAULT 'open';
             ALTER TABLE orders RENAME COLUMN amount TO price;
             ALTER TABLE orders RENAME TO sales;
             ALTER MATERIALIZED VIEW revenue RENAME TO revenue_by_customer;
             INSERT INTO sales VALUES (1001, 'c0', 1001, 'closed');
             UPDATE sales SET price = price + 1 WHERE id = 7;
             FLUSH;",
        )
        .await
        .map_err(show)?;
    let view = "SELECT sum(n)::bigint, sum(total)::bigint FROM revenue_by_customer";
    let table = "SELECT count(*), sum(price)::bigint, count(*) FILTER (WHERE status = 'open') FROM sales";
    let expected_total = 500_500 + 1001 + 1;
    let read = |row: tokio_postgres::Row| -> (i64, i64) { (row.get(0), row.get(1)) };
    let before = read(client.query_one(view, &[]).await.map_err(show)?);
    check(before == (1001, expected_total), format!("view before the kill: {before:?}"))?;
    drop(client);

    server.restart();
    let client = server.connect().await;
    let after = read(client.query_one(view, &[]).await.map_err(show)?);
    check(after == before, format!("view after restart {after:?}, before {before:?}"))?;
    let row = client.query_one(table, &[]).await.map_err(show)?;
    let rows: (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    check(rows == (1001, expected_total, 1000), format!("table after restart: {rows:?}"))?;
    let definition: String = client
        .query_one("SELECT pg_get_viewdef('revenue_by_customer'::regclass)", &[])
        .await
        .map_err(show)?
        .get(0);
    check(
        definition.contains("FROM sales") && definition.contains("sum(sales.price) AS total"),
        format!("the view's definition names the table and column as they are now: {definition}"),
    )?;
    let columns: Vec<String> = client
        .query(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'sales'::regclass AND attnum > 0 ORDER BY attnum",
            &[],
        )
        .await
        .map_err(show)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    check(columns == ["id", "customer", "price", "status"], format!("columns after restart: {columns:?}"))?;

    client
        .batch_execute("INSERT INTO sales (id, customer, price) VALUES (1002, 'new', 5); FLUSH;")
        .await
        .map_err(show)?;
    let row = client
        .query_one("SELECT n, total::BIGINT FROM revenue_by_customer WHERE customer = 'new'", &[])
        .await
        .map_err(show)?;
    check(row.get::<_, i64>(0) == 1 && row.get::<_, i64>(1) == 5, "a new write reaches the restarted view")?;
    let status: String =
        client.query_one("SELECT status FROM sales WHERE id = 1002", &[]).await.map_err(show)?.get(0);
    check(status == "open", format!("the added column's default after restart: {status}"))
}

/// A column's type changed (with a running view over the table that does not use it), a
/// primary key added to a table without one, and a default and NOT NULL set: after kill -9
/// the rows are in the new types under their new keys, the key is enforced, the default
/// applies, and the view keeps its answer and new writes.
pub async fn retyped_and_rekeyed_table_survives_kill_9() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let mut server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE readings (sensor TEXT, reading TEXT, note TEXT);
             INSERT INTO readings SELECT 's' || i, (i * 10)::text, 'n' FROM generate_series(1, 500) AS g(i);
             ALTER TABLE readings ADD PRIMARY KEY (sensor);
             CREATE MATERIALIZED VIEW sensors AS SELECT count(sensor) AS n FROM readings WHERE note = 'n';
             ALTER TABLE readings ALTER COLUMN reading TYPE bigint USING reading::bigint,
                                  ALTER COLUMN note SET DEFAULT 'n', ALTER COLUMN note SET NOT NULL;
             INSERT INTO readings (sensor, reading) VALUES ('s501', 5010);
             FLUSH;",
        )
        .await
        .map_err(show)?;
    let table = "SELECT count(*), sum(reading)::bigint, pg_typeof(min(reading))::text FROM readings";
    let read = |row: tokio_postgres::Row| -> (i64, i64, String) { (row.get(0), row.get(1), row.get(2)) };
    let expected = (501, 10 * 501 * 502 / 2, "bigint".to_string());
    let before = read(client.query_one(table, &[]).await.map_err(show)?);
    check(before == expected, format!("table before the kill: {before:?}"))?;
    let view: i64 = client.query_one("SELECT n FROM sensors", &[]).await.map_err(show)?.get(0);
    check(view == 501, format!("view before the kill: {view}"))?;
    drop(client);

    server.restart();
    let client = server.connect().await;
    let after = read(client.query_one(table, &[]).await.map_err(show)?);
    check(after == expected, format!("table after restart: {after:?}"))?;
    let duplicate = client.execute("INSERT INTO readings VALUES ('s1', 1, 'n')", &[]).await;
    check(
        duplicate.as_ref().err().and_then(|e| e.code()).map(|c| c.code()) == Some("23505"),
        format!("the added key is enforced after restart: {duplicate:?}"),
    )?;
    let null_note = client.execute("INSERT INTO readings VALUES ('s600', 1, NULL)", &[]).await;
    check(
        null_note.as_ref().err().and_then(|e| e.code()).map(|c| c.code()) == Some("23502"),
        format!("NOT NULL is enforced after restart: {null_note:?}"),
    )?;
    client
        .batch_execute("INSERT INTO readings (sensor, reading) VALUES ('s502', 1); FLUSH;")
        .await
        .map_err(show)?;
    let view: i64 = client.query_one("SELECT n FROM sensors", &[]).await.map_err(show)?.get(0);
    check(view == 502, format!("a new write (with the default) reaches the restarted view: {view}"))
}
