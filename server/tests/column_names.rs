//! Result column names as clients see them in RowDescription (sqllogictest cannot see
//! names): Postgres names an unaliased expression by its function, its cast's type or
//! `?column?` (`FigureColname`), allows two result columns of one name, and names a
//! view's columns the same way. Expected names are PostgreSQL 15's.

use crate::clients::{check, db_code, show};
use crate::support::TestServer;

/// Each query and the column names PostgreSQL 15 gives its result.
const QUERIES: &[(&str, &[&str])] = &[
    ("SELECT pg_typeof(1), pg_typeof(2)", &["pg_typeof", "pg_typeof"]),
    ("SELECT abs(-1), sum(a), count(*), max(a) FROM t", &["abs", "sum", "count", "max"]),
    ("SELECT 1 + 1, -a, a * 2, NULL, 'x', true FROM t", &["?column?"; 6]),
    (
        "SELECT 1::int, 1::bigint, CAST(1 AS numeric(10,2)), 'x'::varchar(3), 1.5::float8",
        &["int4", "int8", "numeric", "varchar", "float8"],
    ),
    (
        "SELECT a::bigint, abs(a)::text, (a), a::text::int, 1::text::int, (1 + 2)::text FROM t",
        &["a", "abs", "a", "a", "int4", "text"],
    ),
    (
        "SELECT CASE WHEN a > 0 THEN 1 END, coalesce(a, 1), nullif(a, 1), greatest(a, 2) FROM t",
        &["case", "coalesce", "nullif", "greatest"],
    ),
    (
        "SELECT extract(year FROM ts), substring(b FROM 1 FOR 2), trim(b), date_trunc('day', ts) FROM t",
        &["extract", "substring", "btrim", "date_trunc"],
    ),
    (
        "SELECT interval '1 day', timestamp '2020-01-01', date '2020-01-01', now()",
        &["interval", "timestamp", "date", "now"],
    ),
    (
        "SELECT a IS NULL, a IN (1, 2), (SELECT 1 AS q), (SELECT max(a) FROM t) FROM t",
        &["?column?", "?column?", "q", "max"],
    ),
    ("SELECT a, a, 1 AS a FROM t", &["a", "a", "a"]),
    ("SELECT *, abs(a), a FROM t", &["a", "b", "ts", "abs", "a"]),
    ("SELECT sum(a), sum(a) FROM t GROUP BY b", &["sum", "sum"]),
    ("SELECT @ -5, 2 % 3", &["?column?", "?column?"]),
    ("SELECT * FROM generate_series(1, 2)", &["generate_series"]),
    ("SELECT * FROM generate_series(1, 2) AS g", &["g"]),
    ("SELECT pg_typeof(1) UNION ALL SELECT pg_typeof(2)", &["pg_typeof"]),
];

pub async fn result_columns_have_postgres_names() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE t (a INT, b TEXT, ts TIMESTAMP);
             INSERT INTO t VALUES (1, 'x', '2020-01-01 10:00:00');",
        )
        .await
        .map_err(show)?;
    for (sql, expected) in QUERIES {
        // Describe (extended protocol) and the rows of an execution report the same names.
        let statement = client.prepare(sql).await.map_err(|e| format!("{sql}: {e:?}"))?;
        let described: Vec<&str> = statement.columns().iter().map(|c| c.name()).collect();
        check(described == *expected, format!("{sql}: described as {described:?}, expected {expected:?}"))?;
        let rows = client.query(&statement, &[]).await.map_err(|e| format!("{sql}: {e:?}"))?;
        if let Some(row) = rows.first() {
            let names: Vec<&str> = row.columns().iter().map(|c| c.name()).collect();
            check(names == *expected, format!("{sql}: rows named {names:?}, expected {expected:?}"))?;
        }
        // The simple protocol's RowDescription.
        let messages = client.simple_query(sql).await.map_err(|e| format!("{sql}: {e:?}"))?;
        for message in messages {
            if let tokio_postgres::SimpleQueryMessage::RowDescription(columns) = message {
                let names: Vec<&str> = columns.iter().map(|c| c.name()).collect();
                check(names == *expected, format!("{sql} (simple): named {names:?}, expected {expected:?}"))?;
            }
        }
    }

    // A view's columns are named as its query's, as `\d` shows them.
    client
        .batch_execute(
            "CREATE MATERIALIZED VIEW named AS SELECT b, count(*), sum(a), a::bigint, 1::int, a + 1 FROM t GROUP BY a, b;
             CREATE MATERIALIZED VIEW starred AS SELECT *, abs(a) FROM t;",
        )
        .await
        .map_err(show)?;
    for (view, expected) in [
        ("named", &["b", "count", "sum", "a", "int4", "?column?"][..]),
        ("starred", &["a", "b", "ts", "abs"][..]),
    ] {
        let rows = client
            .query(
                "SELECT attname::text FROM pg_catalog.pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 ORDER BY attnum",
                &[&view],
            )
            .await
            .map_err(show)?;
        let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        check(names == expected, format!("view {view} has columns {names:?}, expected {expected:?}"))?;
        let rows = client.query(&format!("SELECT * FROM {view}"), &[]).await.map_err(show)?;
        let shown: Vec<&str> =
            rows.first().map(|r| r.columns().iter().map(|c| c.name()).collect()).unwrap_or_default();
        check(shown == expected, format!("SELECT * FROM {view} shows {shown:?}, expected {expected:?}"))?;
    }
    // Postgres refuses a view with two columns of one name, naming it.
    match client.batch_execute("CREATE MATERIALIZED VIEW twice AS SELECT abs(a), abs(a + 1) FROM t").await {
        Ok(()) => Err("a view with two columns named abs was created".into()),
        Err(e)
            if db_code(&e) == "42701" && e.as_db_error().is_some_and(|d| d.message().contains("\"abs\"")) =>
        {
            Ok(())
        }
        Err(e) => Err(format!("a view with two columns named abs: {e:?}")),
    }
}
