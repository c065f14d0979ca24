//! COPY reads date and time fields as SQL casts do (Postgres' input: no seconds, a `T`,
//! rounded fractions, five-digit years, zones), where `.slt` files cannot send COPY data.

use futures::SinkExt;

use crate::clients::{check, show};
use crate::support::TestServer;

pub async fn copy_reads_dates_and_times_as_postgres_does() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE times (id INT PRIMARY KEY, ts TIMESTAMP, tz TIMESTAMPTZ, d DATE)")
        .await
        .map_err(show)?;
    let sink = client.copy_in::<_, bytes::Bytes>("COPY times FROM STDIN").await.map_err(show)?;
    futures::pin_mut!(sink);
    let rows = "1\t2020-01-01 12:00\t2020-01-01T12:00+02\t20200-01-01\n\
                2\t2000-01-01 00:00:00.1234567\t2020-01-01 12:00 Europe/Paris\t2020-01-01 23:00\n";
    sink.send(bytes::Bytes::from(rows)).await.map_err(show)?;
    let copied = sink.finish().await.map_err(show)?;
    check(copied == 2, format!("COPY reported {copied} rows"))?;
    let text = client
        .simple_query("SELECT id, ts, tz, d FROM times ORDER BY id")
        .await
        .map_err(show)?
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => {
                Some((0..4).map(|i| row.get(i).unwrap_or("NULL").to_string()).collect::<Vec<_>>().join("|"))
            }
            _ => None,
        })
        .collect::<Vec<_>>();
    // PostgreSQL 15's answers for the same COPY.
    let expected = [
        "1|2020-01-01 12:00:00|2020-01-01 10:00:00+00|20200-01-01",
        "2|2000-01-01 00:00:00.123457|2020-01-01 11:00:00+00|2020-01-01",
    ];
    check(text == expected, format!("COPY read {text:?}"))?;

    // A field out of range fails the COPY with Postgres' code, naming the line.
    let sink = client.copy_in::<_, bytes::Bytes>("COPY times FROM STDIN").await.map_err(show)?;
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"3\t2020-01-01\t\\N\t2020-01-02\n4\t2021-02-29 10:00\t\\N\t\\N\n"))
        .await
        .map_err(show)?;
    let err = sink.finish().await.err().ok_or("a COPY of 2021-02-29 was accepted")?;
    let db = err.as_db_error().ok_or("COPY error is not a database error")?;
    check(db.code().code() == "22008", format!("COPY error {} {}", db.code().code(), db.message()))?;
    check(
        db.where_().is_some_and(|w| w.contains("line 2")),
        format!("COPY error context {:?}", db.where_()),
    )?;
    let n: i64 = client.query_one("SELECT count(*) FROM times", &[]).await.map_err(show)?.get(0);
    check(n == 2, format!("a failed COPY left {n} rows"))
}
