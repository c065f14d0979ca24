//! Malformed source data at scale: CSV files with wrong column counts, invalid UTF-8, huge
//! fields (good and bad), unparsable numbers and an unterminated quote; JSON lines that are
//! not objects or have wrong types; a Parquet file cut in half and a good one: alone the cut
//! file is refused at CREATE SOURCE (with its name), in a glob with the good one it is one
//! malformed-data error and the good file's rows are all read.
//!
//! Every bad row must be counted in `weir_catalog.sources.parse_errors` and named in
//! `last_error`, every good row must reach the view, and the server must stay up.
//! Rows per CSV file: 4,000 by default, `WEIR_FUZZ_SOURCE_ROWS` for more.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use tokio_postgres::Client;

use crate::clients::{check, show};
use crate::support::fuzz::FuzzRng;
use crate::support::TestServer;

/// What the good rows of a source add up to, and how many bad rows it has.
#[derive(Default, Debug, PartialEq, Eq, Clone, Copy)]
struct Expected {
    rows: i64,
    sum_id: i64,
    sum_len: i64,
    bad: i64,
}

impl Expected {
    fn good(&mut self, id: i64, name: &str) {
        self.rows += 1;
        self.sum_id += id;
        self.sum_len += name.chars().count() as i64;
    }
}

fn csv_files(dir: &Path, rng: &mut FuzzRng, files: usize, rows: usize) -> Result<Expected, String> {
    std::fs::create_dir_all(dir).map_err(show)?;
    let mut expected = Expected::default();
    let mut id = 0i64;
    for f in 0..files {
        let mut out = Vec::new();
        for _ in 0..rows {
            id += 1;
            let k = rng.between(0, 9);
            let bad: Option<Vec<u8>> = match rng.below(100) {
                0 => Some(format!("{id},{k}\n").into_bytes()),
                1 => Some(format!("{id},{k},name,extra\n").into_bytes()),
                2 => Some([format!("{id},{k},").as_bytes(), b"caf\xe9 \xff\xfe\n"].concat()),
                3 => Some([format!("{id}").as_bytes(), b"\xff,", format!("{k},x\n").as_bytes()].concat()),
                4 => Some(format!("{},{k},long number\n", "9".repeat(100_000)).into_bytes()),
                5 => Some(format!("id{id},{k},not a number\n").into_bytes()),
                _ => None,
            };
            match bad {
                Some(line) => {
                    out.extend(line);
                    expected.bad += 1;
                }
                None => {
                    // Now and then a huge but valid field, or one quoted with commas,
                    // quotes and a newline inside.
                    let name = match rng.below(200) {
                        0 => "h".repeat(1 << 20),
                        1 | 2 => "a, \"quoted\"\nname".to_string(),
                        _ => format!("n{}", rng.below(1000)),
                    };
                    let field = if name.contains([',', '"', '\n']) {
                        format!("\"{}\"", name.replace('"', "\"\""))
                    } else {
                        name.clone()
                    };
                    out.extend(format!("{id},{k},{field}\n").into_bytes());
                    expected.good(id, &name);
                }
            }
        }
        if f == files - 1 {
            // A quote never closed: the rest of the file becomes one record (documented;
            // PostgreSQL's COPY refuses it instead), here a good one.
            id += 1;
            out.extend(format!("{id},1,\"never closed\n").into_bytes());
            expected.good(id, "never closed\n");
        }
        std::fs::write(dir.join(format!("part-{f}.csv")), out).map_err(show)?;
    }
    Ok(expected)
}

fn json_file(dir: &Path, rng: &mut FuzzRng, rows: usize) -> Result<Expected, String> {
    std::fs::create_dir_all(dir).map_err(show)?;
    let mut expected = Expected::default();
    let mut out = Vec::new();
    for id in 1..=rows as i64 {
        let k = rng.between(0, 9);
        let bad: Option<Vec<u8>> = match rng.below(50) {
            0 => Some(format!("{{\"id\": {id}, \"k\": {k}, \"name\": \"cut\n").into_bytes()),
            1 => Some(format!("[{id}, {k}]\n").into_bytes()),
            2 => Some(format!("{{\"id\": \"x{id}\", \"k\": {k}, \"name\": \"n\"}}\n").into_bytes()),
            3 => Some(
                [format!("{{\"id\": {id}, \"k\": {k}, \"name\": \"").as_bytes(), b"\xff\xfe\"}\n"].concat(),
            ),
            4 => Some(format!("{{\"id\": {id}}} {{\"id\": 1}}\n").into_bytes()),
            _ => None,
        };
        match bad {
            Some(line) => {
                out.extend(line);
                expected.bad += 1;
            }
            None => {
                let name = format!("j{}", rng.below(100));
                out.extend(
                    format!("{{\"id\": {id}, \"k\": {k}, \"name\": \"{name}\", \"extra\": [1]}}\n")
                        .into_bytes(),
                );
                expected.good(id, &name);
            }
        }
    }
    std::fs::write(dir.join("events.json"), out).map_err(show)?;
    Ok(expected)
}

/// A good Parquet file, and the same file cut in half (its footer gone) in `truncated/`;
/// `mixed/` holds both.
fn parquet_files(dir: &Path, rows: usize) -> Result<Expected, String> {
    std::fs::create_dir_all(dir).map_err(show)?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("k", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
    ]));
    let ids: Vec<i64> = (1..=rows as i64).collect();
    let names: Vec<String> = ids.iter().map(|i| format!("p{i}")).collect();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(Int64Array::from(ids.iter().map(|i| i % 10).collect::<Vec<_>>())),
            Arc::new(StringArray::from(names.clone())),
        ],
    )
    .map_err(show)?;
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, schema, None).map_err(show)?;
    writer.write(&batch).map_err(show)?;
    writer.close().map_err(show)?;
    std::fs::write(dir.join("good.parquet"), &bytes).map_err(show)?;
    std::fs::create_dir_all(dir.join("truncated")).map_err(show)?;
    let mut truncated = std::fs::File::create(dir.join("truncated/truncated.parquet")).map_err(show)?;
    truncated.write_all(&bytes[..bytes.len() / 2]).map_err(show)?;
    std::fs::create_dir_all(dir.join("mixed")).map_err(show)?;
    std::fs::write(dir.join("mixed/good.parquet"), &bytes).map_err(show)?;
    std::fs::write(dir.join("mixed/truncated.parquet"), &bytes[..bytes.len() / 2]).map_err(show)?;
    let mut expected = Expected::default();
    for (id, name) in ids.iter().zip(&names) {
        expected.good(*id, name);
    }
    Ok(expected)
}

pub async fn malformed_rows_are_counted_and_good_rows_kept() -> Result<(), String> {
    let mut rng = FuzzRng::for_fuzzer("malformed_sources");
    let rows: usize =
        std::env::var("WEIR_FUZZ_SOURCE_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(4000);
    let dir = tempfile::tempdir().map_err(show)?;
    let files = dir.path().join("data/files");
    let csv = csv_files(&files.join("csv"), &mut rng, 4, rows)?;
    let json = json_file(&files.join("json"), &mut rng, rows)?;
    let parquet = parquet_files(&files.join("pq"), rows)?;
    let server = TestServer::start(&dir.path().join("data"));
    let client = server.connect().await;
    let mut failures = Vec::new();
    // The cut file in a glob with the good one: one malformed-data error, every good row.
    let mixed = Expected { bad: 1, ..parquet };
    for (source, format, path, expected) in [
        ("src_csv", "csv", "csv/*.csv", csv),
        ("src_json", "json", "json/*.json", json),
        ("src_parquet", "parquet", "pq/good.parquet", parquet),
        ("src_mixed", "parquet", "pq/mixed/*.parquet", mixed),
    ] {
        let ddl = format!(
            "CREATE SOURCE {source} (id BIGINT, k BIGINT, name VARCHAR)
               WITH (connector = 'file', path = '{path}', format = '{format}');
             CREATE MATERIALIZED VIEW {source}_v AS
               SELECT count(*) AS n, sum(id)::BIGINT AS s, sum(length(name)) AS l FROM {source}"
        );
        if let Err(e) = client.batch_execute(&ddl).await {
            failures.push(format!("{source}: {e:?}"));
            continue;
        }
        match settle(&client, source, expected).await {
            Ok(line) => println!("  malformed_sources: {line}"),
            Err(e) => failures.push(e),
        }
    }
    // A Parquet file without its footer is refused when the source is created (22023,
    // naming the file): its rows cannot be told apart, so none is read.
    let truncated = client
        .batch_execute(
            "CREATE SOURCE src_cut (id BIGINT, k BIGINT, name VARCHAR)
               WITH (connector = 'file', path = 'pq/truncated/*.parquet', format = 'parquet')",
        )
        .await
        .err()
        .and_then(|e| e.as_db_error().map(|d| (d.code().code().to_string(), d.message().to_string())));
    match truncated {
        Some((code, message)) if code == "22023" && message.contains("truncated.parquet") => {
            println!("  malformed_sources: truncated Parquet refused: {message}")
        }
        other => failures.push(format!("a truncated Parquet file: {other:?}")),
    }
    let alive = client.query_one("SELECT 1 + 1", &[]).await.map_err(show)?;
    check(alive.get::<_, i32>(0) == 2, "the server answers (an integer, as in Postgres)")?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// Waits until `source`'s view and error count reach `expected` (or 60 s pass).
async fn settle(client: &Client, source: &str, expected: Expected) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        client.batch_execute("FLUSH").await.map_err(show)?;
        let view = client
            .query_one(&format!("SELECT n, coalesce(s, 0), coalesce(l, 0) FROM {source}_v"), &[])
            .await
            .map_err(show)?;
        let errors = client
            .query_one(
                "SELECT coalesce(sum(parse_errors), 0)::bigint, max(last_error) FROM weir_catalog.sources WHERE source = $1",
                &[&source],
            )
            .await
            .map_err(show)?;
        let got =
            Expected { rows: view.get(0), sum_id: view.get(1), sum_len: view.get(2), bad: errors.get(0) };
        let last_error: Option<String> = errors.get(1);
        if got == expected {
            return Ok(format!(
                "{source}: {} good rows kept, {} bad rows counted (last: {})",
                got.rows,
                got.bad,
                last_error.unwrap_or_default().chars().take(120).collect::<String>()
            ));
        }
        if Instant::now() > deadline {
            let status = client
                .query(
                    "SELECT split::text, status, last_error FROM weir_catalog.sources WHERE source = $1",
                    &[&source],
                )
                .await
                .map_err(show)?
                .iter()
                .map(|r| {
                    format!(
                        "{:?}/{:?}/{:?}",
                        r.get::<_, Option<String>>(0),
                        r.get::<_, Option<String>>(1),
                        r.get::<_, Option<String>>(2)
                    )
                })
                .collect::<Vec<_>>();
            return Err(format!("{source}: expected {expected:?}, got {got:?}; splits {status:?}"));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
