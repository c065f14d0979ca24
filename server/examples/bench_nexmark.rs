//! Benchmark: Nexmark queries into blackhole sinks, with the built-in generator or over a
//! CSV file of bids, on a real Weir server started in this process.
//!
//! ```sh
//! cargo run --release -p weir-server --example bench_nexmark -- \
//!     [QUERIES=q0,q1,q2,q5,q7] [SOURCE=generator|/path/bids.csv] [EVENTS=10000000] [PARALLELISM=2] \
//!     [SPLIT_SIZE]
//! ```
//!
//! For each query (`sql-tests/nexmark/<q>.sql`), the sink is created over a fresh `bid`
//! source; the run ends when every split of the source has read all its input and a FLUSH
//! has passed through the job (so every row has reached the sink). Prints the bids read,
//! wall time, events per second and the process's CPU seconds per million events.
//!
//! With the generator, EVENTS counts Nexmark events of all types (46 in 50 are bids, as in
//! RisingWave's `nexmark.event.num`) and the source has PARALLELISM splits. A CSV file is
//! read as splits of SPLIT_SIZE bytes (the file connector's `split.size`, default 1GB),
//! one source subtask each.
//!
//! The join queries (q3, q4, q7_join, q8, q9) read the `person`, `auction` and `bid` sources:
//! from the generator, or with SOURCE a prefix of CSV files (`PREFIX_person.csv`,
//! `PREFIX_auction.csv`, `PREFIX_bid.csv`, as `gen_nexmark.py --out-prefix` writes them).
//! Their events/s divide all events of the three tables by the time, whichever tables the
//! query reads (as the Flink peer counts them). Peak RSS is the process's high-water mark
//! so far: run one query per invocation to see each query's own.

use std::path::PathBuf;
use std::time::{Duration, Instant};

mod support;

/// Queries that read the three Nexmark tables rather than `bid` alone.
const JOIN_QUERIES: &[&str] = &["q3", "q4", "q7_join", "q8", "q9"];

fn query_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sql-tests/nexmark")
}

/// The process's peak resident set size so far, in MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// Lines of a file (rows of a headerless CSV).
fn lines_of(path: &str) -> Result<u64, std::io::Error> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(lines);
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let queries: Vec<String> =
        args.get(1).map_or("q0,q1,q2,q5,q7", String::as_str).split(',').map(str::to_string).collect();
    let source = args.get(2).cloned().unwrap_or_else(|| "generator".into());
    let events: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(10_000_000);
    let parallelism: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(2);
    let split_size = args.get(5).cloned();
    // A CSV source file (or a prefix of the three Nexmark files) is read where it is: its
    // directory is the one file sources may use.
    let csv_dir = (source != "generator")
        .then(|| {
            let parent = std::path::Path::new(&source).parent()?;
            let parent = if parent.as_os_str().is_empty() { std::path::Path::new(".") } else { parent };
            std::fs::canonicalize(parent).ok()
        })
        .flatten();
    let server = support::start(move |config| {
        config.log = "warn".into();
        if let Some(dir) = csv_dir {
            config.file_allowed_dirs = Some(vec![dir]);
        }
    })
    .await?;
    let client = &server.client;
    client.batch_execute(&format!("SET streaming_parallelism = {parallelism}")).await?;

    let source_sql = if source == "generator" {
        std::fs::read_to_string(query_dir().join("source_generator.sql"))?
            .replace("__EVENTS__", &events.to_string())
            .replace("__SPLITS__", &parallelism.to_string())
    } else {
        let sql =
            std::fs::read_to_string(query_dir().join("source_csv.sql"))?.replace("__BIDS_CSV__", &source);
        match &split_size {
            Some(size) => {
                sql.replace("header = 'false')", &format!("header = 'false', split.size = '{size}')"))
            }
            None => sql,
        }
    };
    println!(
        "source: {source}, parallelism {parallelism}, split size {}",
        split_size.as_deref().unwrap_or("default")
    );
    let join_sources_sql = if source == "generator" {
        std::fs::read_to_string(query_dir().join("sources_generator.sql"))?
            .replace("__EVENTS__", &events.to_string())
            .replace("__SPLITS__", &parallelism.to_string())
    } else {
        std::fs::read_to_string(query_dir().join("sources_csv.sql"))?.replace("__PREFIX__", &source)
    };
    println!("| query | rows read | events | seconds | events/s | CPU s per M events | peak RSS MB |");
    println!("|---|---|---|---|---|---|---|");
    for query in &queries {
        let joins = JOIN_QUERIES.contains(&query.as_str());
        client.batch_execute(if joins { &join_sources_sql } else { &source_sql }).await?;
        let sql = std::fs::read_to_string(query_dir().join(format!("{query}.sql")))?;
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        client.batch_execute(&sql).await?;
        // Each poll is a planned catalog query: every 20 ms (under 1 % of a run's time) keeps
        // the harness from taking CPU the job would use, as polling every 5 ms did.
        let mut polls = 0u64;
        let rows = loop {
            polls += 1;
            let row = client
                .query_one(
                    "SELECT bool_and(status = 'finished'), sum(rows_read)::BIGINT FROM weir_catalog.sources WHERE job = $1",
                    &[query],
                )
                .await?;
            if row.get::<_, Option<bool>>(0) == Some(true) {
                break row.get::<_, Option<i64>>(1).unwrap_or(0);
            }
            if !polls.is_multiple_of(25) {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            let failed = client
                .query_opt(
                    "SELECT status FROM weir_catalog.jobs WHERE view = $1 AND status LIKE 'failed%'",
                    &[query],
                )
                .await?;
            if let Some(failed) = failed {
                return Err(format!("{query}: {}", failed.get::<_, String>(0)).into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        client.batch_execute("FLUSH").await?;
        let seconds = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu_before;
        let all_events = match (joins, source == "generator") {
            (false, _) => rows as u64,
            (true, true) => events,
            (true, false) => ["person", "auction", "bid"]
                .iter()
                .map(|t| lines_of(&format!("{source}_{t}.csv")))
                .sum::<Result<u64, _>>()?,
        };
        println!(
            "| {query} | {rows} | {all_events} | {seconds:.2} | {:.0} | {:.2} | {:.0} |",
            all_events as f64 / seconds,
            cpu / (all_events as f64 / 1e6),
            peak_rss_mb()
        );
        let drop = if joins {
            "DROP SOURCE person; DROP SOURCE auction; DROP SOURCE bid"
        } else {
            "DROP SOURCE bid"
        };
        client.batch_execute(&format!("DROP SINK {query}; {drop}")).await?;
    }
    Ok(())
}
