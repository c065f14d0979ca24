//! Declared time precisions where `.slt` files cannot reach: bound parameters (extended
//! protocol), `COPY FROM STDIN`, and the type modifier RowDescription reports for a result
//! column. Driven by psycopg 3, whose `pgresult.fmod` is the modifier on the wire.
//! Expected values are PostgreSQL 15's.

use std::process::Command;

use crate::clients::{check, show};
use crate::support::TestServer;

pub async fn parameters_copy_and_row_description() -> Result<(), String> {
    let probe = Command::new("python3").args(["-c", "import psycopg"]).output().map_err(show)?;
    if !probe.status.success() {
        return Err("Python psycopg 3 is not installed (pip install 'psycopg[binary]')".into());
    }
    let dir = tempfile::tempdir().map_err(show)?;
    let server = TestServer::start(&dir.path().join("data"));
    let script = format!(
        r#"
import psycopg, datetime
with psycopg.connect("host=127.0.0.1 port={port} user=weir dbname=weir", autocommit=True) as conn:
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id int, a timestamp(0), b timestamptz(3), c time(2), d interval(1), n numeric(10,2), e timestamp)")
    # Bound parameters, typed by the driver (timestamp, timestamptz, time, interval).
    utc = datetime.timezone.utc
    cur.execute("INSERT INTO t (id, a, b, c, d) VALUES (%s, %s, %s, %s, %s)",
        (1, datetime.datetime(2020, 1, 1, 12, 0, 0, 500000), datetime.datetime(2020, 1, 1, 12, 0, 0, 123450, tzinfo=utc),
         datetime.time(12, 0, 0, 125000), datetime.timedelta(seconds=0.15)))
    # Text parameters (binary=False is psycopg's default for these; sent as text with a type).
    cur.execute("INSERT INTO t (id, a) VALUES (%s, %s::text::timestamp)", (2, "1969-12-31 23:59:58.5"))
    with cur.copy("COPY t (id, a, b, c, d) FROM STDIN") as copy:
        copy.write("3\t2020-01-01 12:00:00.5\t1999-12-31 23:59:59.9995+00\t23:59:59.995\t1 day 0.15 seconds\n")
    cur.execute("SELECT id, a::text, b::text, c::text, d::text FROM t ORDER BY id")
    rows = cur.fetchall()
    expected = [
        (1, "2020-01-01 12:00:01", "2020-01-01 12:00:00.123+00", "12:00:00.13", "00:00:00.2"),
        (2, "1969-12-31 23:59:58", None, None, None),
        (3, "2020-01-01 12:00:01", "1999-12-31 23:59:59.999+00", "24:00:00", "1 day 00:00:00.2"),
    ]
    assert rows == expected, rows
    # RowDescription: a column passed through keeps its declared modifier, others -1.
    for prepare in (False, True):
        cur.execute("SELECT a, b, c, d, n, e, a + interval '1 s', id FROM t WHERE id = %s", (1,), prepare=prepare)
        fmods = [cur.pgresult.fmod(i) for i in range(cur.pgresult.nfields)]
        assert fmods == [0, 3, 2, 2147418113, 655366, -1, -1, -1], fmods
print("ok")
"#,
        port = server.port
    );
    let out = Command::new("python3").args(["-c", &script]).output().map_err(show)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    check(
        out.status.success() && stdout.trim() == "ok",
        format!("psycopg script failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)),
    )
}
