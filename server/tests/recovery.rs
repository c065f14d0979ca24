//! Exactly-once recovery: a victim server whose jobs are killed (SIGKILL) or failed
//! (`INJECT FAILURE`) again and again while a file source and a paced nexmark source run,
//! compared at the end with a reference server that read the same input undisturbed. Equal
//! view contents mean that no row was lost and none was counted twice. The kill test keeps
//! state in RocksDB, the injected-failure test in memory (with delta checkpoints), so both
//! backends go through recovery.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::clients::{check, show};
use crate::support::TestServer;

/// A seeded linear congruential generator (Knuth's MMIX constants), so that a failing run
/// can be replayed with `WEIR_RECOVERY_SEED`.
pub(crate) struct Lcg(u64);

impl Lcg {
    pub(crate) fn from_env_or_clock(test: &str) -> Self {
        let seed =
            std::env::var("WEIR_RECOVERY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(42)
            });
        println!("  {test}: seed {seed} (replay with WEIR_RECOVERY_SEED={seed})");
        Lcg(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

// --- Input.

const DISTINCT_KEYS: u64 = 50_000;

/// `(count, sum, min, max)` of `amount` per key, as the file aggregate must end up.
pub(crate) type Expected = BTreeMap<i64, (i64, i64, i64, i64)>;

/// Writes `files` CSV files `part-N.csv` of `rows_per_file` rows `id,key,amount,ts` into
/// `dir` and returns the per-key aggregate they should produce.
pub(crate) fn write_csv_files(dir: &Path, files: usize, rows_per_file: u64) -> Result<Expected, String> {
    let mut expected = Expected::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut id: u64 = 0;
    for file in 0..files {
        let f = std::fs::File::create(dir.join(format!("part-{file}.csv"))).map_err(show)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, f);
        for _ in 0..rows_per_file {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = (x % DISTINCT_KEYS) as i64;
            let amount = ((x >> 20) % 100_000) as i64 - 20_000;
            let ms = id % 86_400_000;
            writeln!(
                out,
                "{id},{key},{amount},2024-01-01 {:02}:{:02}:{:02}.{:03}",
                ms / 3_600_000,
                ms / 60_000 % 60,
                ms / 1000 % 60,
                ms % 1000
            )
            .map_err(show)?;
            let e = expected.entry(key).or_insert((0, 0, i64::MAX, i64::MIN));
            e.0 += 1;
            e.1 += amount;
            e.2 = e.2.min(amount);
            e.3 = e.3.max(amount);
            id += 1;
        }
        out.flush().map_err(show)?;
    }
    Ok(expected)
}

/// The sources and views both servers run. `bid` is paced to wall-clock time, so it lasts
/// `nexmark_events * 10 µs` from the creation of each view. The file is read as fast as it
/// goes, so its view comes last.
pub(crate) fn ddl(csv_glob: &str, nexmark_events: u64) -> String {
    format!(
        "CREATE SOURCE f (id BIGINT, key BIGINT, amount BIGINT, ts TIMESTAMP)
           WITH (connector = 'file', path = '{csv_glob}', format = 'csv');
         CREATE SOURCE bid (auction BIGINT, price BIGINT, date_time TIMESTAMP,
             WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
           WITH (connector = 'nexmark', nexmark.table.type = 'Bid', nexmark.event.num = '{nexmark_events}',
                 nexmark.min.event.gap.in.ns = '10000', nexmark.use.real.time = 'true');
         SET streaming_parallelism = 2;
         CREATE MATERIALIZED VIEW bid_agg AS
           SELECT auction, count(*) AS n, max(price) AS top FROM bid GROUP BY auction;
         SET streaming_parallelism = 1;
         CREATE MATERIALIZED VIEW bid_tumble AS
           SELECT window_start, window_end, count(*) AS n, sum(price) AS s
           FROM TUMBLE(bid, date_time, INTERVAL '1' SECOND)
           GROUP BY window_start, window_end EMIT ON WINDOW CLOSE;
         SET streaming_parallelism = 2;
         CREATE MATERIALIZED VIEW bid_hop AS
           SELECT window_start, window_end, count(*) AS n, max(price) AS top
           FROM HOP(bid, date_time, INTERVAL '1' SECOND, INTERVAL '3' SECOND)
           GROUP BY window_start, window_end;
         CREATE MATERIALIZED VIEW f_agg AS
           SELECT key, count(*) AS n, sum(amount) AS s, min(amount) AS lo, max(amount) AS hi
           FROM f GROUP BY key;"
    )
}

/// Every view with its number of columns (all of them are in its ORDER BY).
pub(crate) const VIEWS: [(&str, usize); 4] =
    [("f_agg", 5), ("bid_agg", 3), ("bid_tumble", 4), ("bid_hop", 4)];
/// Source splits: two files for `f_agg`, one nexmark split for each of the three others.
const SPLITS: usize = 5;

pub(crate) fn write_config(path: &Path, text: &str) -> Result<Vec<String>, String> {
    std::fs::write(path, text).map_err(show)?;
    Ok(vec!["--config".into(), path.display().to_string()])
}

/// Writes `dir/cluster.toml` for a test cluster that fails over fast: RocksDB state,
/// checkpoints every 300 ms under `dir`, barriers every 100 ms, a restart backoff of 200 ms
/// up to `max_backoff`, the given heartbeat timeout, a cluster secret, and files under `dir`.
pub(crate) fn fast_failover_config(
    dir: &Path,
    max_backoff: &str,
    heartbeat_timeout_ms: u64,
) -> Result<std::path::PathBuf, String> {
    let config = dir.join("cluster.toml");
    write_config(
        &config,
        &format!(
            "state.backend = \"rocksdb\"\ncheckpoint.interval = \"300ms\"\ncheckpoint.dir = \"file://{}\"\n\
             [streaming]\nbarrier_interval_ms = 100\n[restart]\nbackoff = \"200ms\"\nmax_backoff = \"{max_backoff}\"\n\
             [cluster]\nheartbeat_timeout_ms = {heartbeat_timeout_ms}\nsecret = \"test-secret\"\n{}",
            dir.join("checkpoints").display(),
            allow_files(dir)
        ),
    )?;
    Ok(config)
}

/// Lets the servers' file sources read the CSV files written into `dir`.
pub(crate) fn allow_files(dir: &Path) -> String {
    format!("[file]\nallowed_dirs = [{:?}]\n", dir.display().to_string())
}

/// The victim checkpoints every 300 ms, its state in `backend` (`rocksdb` or `memory`). Its
/// restart backoff stays short however often a job fails: with the default cap (30 s), a
/// view failed nine times on a slow machine waited longer than the test's deadline.
fn victim_config(dir: &Path, backend: &str) -> Result<Vec<String>, String> {
    let checkpoints = dir.join("victim-checkpoints");
    write_config(
        &dir.join("victim.toml"),
        &format!(
            "state.backend = \"{backend}\"\ncheckpoint.interval = \"300ms\"\ncheckpoint.dir = \"file://{}\"\n\
             [streaming]\nbarrier_interval_ms = 100\n[restart]\nbackoff = \"200ms\"\nmax_backoff = \"2s\"\n{}",
            checkpoints.display(),
            allow_files(dir)
        ),
    )
}

/// The reference keeps its state in memory and takes no checkpoints: it shares as little of
/// the machinery under test as it can.
pub(crate) fn reference_config(dir: &Path) -> Result<Vec<String>, String> {
    write_config(
        &dir.join("reference.toml"),
        &format!(
            "state.backend = \"memory\"\ncheckpoint.interval = \"off\"\n[streaming]\nbarrier_interval_ms = 100\n{}",
            allow_files(dir)
        ),
    )
}

// --- Talking to a server.

pub(crate) async fn connect(server: &TestServer) -> Result<Client, String> {
    let conninfo = server.connection_string();
    let connecting = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls);
    let (client, connection) = tokio::time::timeout(Duration::from_secs(30), connecting)
        .await
        .map_err(|_| format!("connecting to port {} timed out", server.port))?
        .map_err(|e| format!("connecting to port {}: {e}", server.port))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

pub(crate) type Rows = Vec<Vec<Option<String>>>;

pub(crate) async fn rows(client: &Client, sql: &str) -> Result<Rows, String> {
    let messages = tokio::time::timeout(Duration::from_secs(60), client.simple_query(sql))
        .await
        .map_err(|_| format!("{sql}: no answer within 60 s"))?
        .map_err(|e| match e.as_db_error() {
            Some(db) => format!("{sql}: {} {}", db.code().code(), db.message()),
            None => format!("{sql}: {e}"),
        })?;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .collect())
}

pub(crate) fn text(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("NULL")
}

/// The source splits of every job, as `weir_catalog.sources` reports them.
pub(crate) struct Splits(pub(crate) Rows);

impl Splits {
    pub(crate) async fn read(client: &Client) -> Result<Self, String> {
        let rows = rows(
            client,
            "SELECT job, split, status, \"offset\" FROM weir_catalog.sources ORDER BY job, split",
        )
        .await?;
        Ok(Splits(rows.into_iter().filter(|r| r[0].is_some()).collect()))
    }

    pub(crate) fn all_finished(&self) -> bool {
        self.all_of_finished(SPLITS)
    }

    /// Whether there are `splits` splits and every one has finished.
    pub(crate) fn all_of_finished(&self, splits: usize) -> bool {
        self.0.len() == splits && self.0.iter().all(|r| text(&r[2]) == "finished")
    }

    fn job_finished(&self, job: &str) -> bool {
        let of_job: Vec<_> = self.0.iter().filter(|r| text(&r[0]) == job).collect();
        !of_job.is_empty() && of_job.iter().all(|r| text(&r[2]) == "finished")
    }

    pub(crate) fn summary(&self) -> String {
        self.0
            .iter()
            .map(|r| format!("{}/{} {} {}", text(&r[0]), text(&r[1]), text(&r[2]), text(&r[3])))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Waits until every split of every job has read its input to the end, then FLUSHes.
pub(crate) async fn finish_and_flush(
    server: &TestServer,
    name: &str,
    timeout: Duration,
) -> Result<Client, String> {
    finish_and_flush_splits(server, name, timeout, SPLITS).await
}

/// [`finish_and_flush`] for a server whose jobs read `splits` splits in all.
pub(crate) async fn finish_and_flush_splits(
    server: &TestServer,
    name: &str,
    timeout: Duration,
    splits_wanted: usize,
) -> Result<Client, String> {
    let deadline = Instant::now() + timeout;
    let mut last;
    loop {
        // A fresh connection each time: a server that was just restarted may not answer yet.
        let attempt = async {
            let client = connect(server).await?;
            let splits = Splits::read(&client).await?;
            Ok::<_, String>((client, splits))
        };
        match attempt.await {
            Ok((client, splits)) if splits.all_of_finished(splits_wanted) => {
                rows(&client, "FLUSH").await?;
                return Ok(client);
            }
            Ok((_, splits)) => last = splits.summary(),
            Err(e) => last = e,
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{name}: sources not finished after {timeout:?}: {last}\n{name} log tail:\n{}",
                log_tail(server, 60)
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub(crate) fn log_tail(server: &TestServer, lines: usize) -> String {
    let log = server.log();
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub(crate) fn join_row(row: &[Option<String>]) -> String {
    row.iter().map(text).collect::<Vec<_>>().join("|")
}

async fn view_contents(client: &Client, view: &str, columns: usize) -> Result<Vec<String>, String> {
    let order: Vec<String> = (1..=columns).map(|i| i.to_string()).collect();
    let rows = rows(client, &format!("SELECT * FROM {view} ORDER BY {}", order.join(", "))).await?;
    Ok(rows.iter().map(|r| join_row(r)).collect())
}

/// A multiset difference of two views' rows: counts, and the first rows found only on one
/// side.
fn diff(view: &str, left_name: &str, left: &[String], right_name: &str, right: &[String]) -> Option<String> {
    if left == right {
        return None;
    }
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for row in left {
        *counts.entry(row).or_default() += 1;
    }
    for row in right {
        *counts.entry(row).or_default() -= 1;
    }
    let mut only_left: Vec<&str> = counts.iter().filter(|(_, c)| **c > 0).map(|(r, _)| *r).collect();
    let mut only_right: Vec<&str> = counts.iter().filter(|(_, c)| **c < 0).map(|(r, _)| *r).collect();
    only_left.sort_unstable();
    only_right.sort_unstable();
    let first =
        |rows: &[&str]| rows.iter().take(8).map(|r| format!("    {r}")).collect::<Vec<_>>().join("\n");
    Some(format!(
        "view {view}: {left_name} has {} rows, {right_name} has {}; {} rows only in {left_name}, {} only in \
         {right_name}\n  first rows only in {left_name}:\n{}\n  first rows only in {right_name}:\n{}",
        left.len(),
        right.len(),
        only_left.len(),
        only_right.len(),
        first(&only_left),
        first(&only_right),
    ))
}

/// Compares every view between the two servers, and checks the reference's own contents
/// against what the input must give (so that equal means right, not equally wrong).
pub(crate) async fn compare_views(
    victim: &Client,
    reference: &Client,
    expected_file: &Expected,
    bids: u64,
) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    for (view, columns) in VIEWS {
        let on_victim = view_contents(victim, view, columns).await?;
        let on_reference = view_contents(reference, view, columns).await?;
        println!("  {view}: {} rows on the reference, {} on the victim", on_reference.len(), on_victim.len());
        if let Some(d) = diff(view, "victim", &on_victim, "reference", &on_reference) {
            problems.push(d);
        }
        if view == "f_agg" {
            let mut wanted: Vec<String> =
                expected_file.iter().map(|(k, (n, s, lo, hi))| format!("{k}|{n}|{s}|{lo}|{hi}")).collect();
            wanted.sort_unstable();
            let mut got = on_reference.clone();
            got.sort_unstable();
            if let Some(d) = diff(view, "reference", &got, "computed from the input", &wanted) {
                problems.push(d);
            }
        }
    }
    // Every bid is counted once per tumbling window and per auction, three times over the
    // 3-second hopping windows.
    let totals = rows(
        reference,
        "SELECT (SELECT sum(n) FROM bid_agg), (SELECT sum(n) FROM bid_tumble), (SELECT sum(n) FROM bid_hop)",
    )
    .await?;
    let totals: Vec<String> = totals[0].iter().map(|v| text(v).to_string()).collect();
    let wanted = vec![bids.to_string(), bids.to_string(), (3 * bids).to_string()];
    if totals != wanted {
        problems.push(format!("reference bid totals (agg, tumble, hop) {totals:?}, expected {wanted:?}"));
    }
    Ok(problems)
}

/// A nexmark sequence of `events` events holds 46 bids in every 50 events.
pub(crate) fn bids_of(events: u64) -> u64 {
    events / 50 * 46 + (events % 50).saturating_sub(4)
}

struct Setup {
    /// Holds the input files and both data directories until the test ends.
    _dir: tempfile::TempDir,
    expected: Expected,
    victim: TestServer,
    reference: TestServer,
    nexmark_events: u64,
}

async fn setup(
    test: &str,
    backend: &str,
    files: usize,
    rows_per_file: u64,
    nexmark_events: u64,
) -> Result<Setup, String> {
    let dir = tempfile::tempdir().map_err(show)?;
    let started = Instant::now();
    let expected = write_csv_files(dir.path(), files, rows_per_file)?;
    println!(
        "  {test}: wrote {} rows over {} keys in {files} files in {:.1}s",
        files as u64 * rows_per_file,
        expected.len(),
        started.elapsed().as_secs_f64()
    );
    let victim = TestServer::start_with(&dir.path().join("victim"), &victim_config(dir.path(), backend)?);
    let reference = TestServer::start_with(&dir.path().join("reference"), &reference_config(dir.path())?);
    let glob = dir.path().join("part-*.csv").display().to_string();
    // Both at once, so that they read their input at about the same time.
    let run_ddl = |name: &'static str, server: &TestServer| {
        let conninfo = server.connection_string();
        let statements = ddl(&glob, nexmark_events);
        async move {
            let (client, connection) =
                tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await.map_err(show)?;
            tokio::spawn(connection);
            let started = Instant::now();
            client.batch_execute(&statements).await.map_err(|e| format!("{name} DDL: {e:?}"))?;
            println!("  {test}: {name} DDL took {:.1}s", started.elapsed().as_secs_f64());
            Ok::<(), String>(())
        }
    };
    let (r, v) = tokio::join!(run_ddl("reference", &reference), run_ddl("victim", &victim));
    r?;
    v?;
    Ok(Setup { _dir: dir, expected, victim, reference, nexmark_events })
}

/// Final comparison; on failure, the differences and the victim's log tail.
async fn final_comparison(s: &Setup) -> Result<(Client, Client), String> {
    let reference = finish_and_flush(&s.reference, "reference", Duration::from_secs(120)).await?;
    let victim = finish_and_flush(&s.victim, "victim", Duration::from_secs(120)).await?;
    let problems = compare_views(&victim, &reference, &s.expected, bids_of(s.nexmark_events)).await?;
    if !problems.is_empty() {
        return Err(format!(
            "{}\n\nvictim jobs: {:?}\nvictim log tail:\n{}",
            problems.join("\n\n"),
            rows(
                &victim,
                "SELECT view, status, restarts, last_committed_epoch, last_failure FROM weir_catalog.jobs"
            )
            .await
            .map(|r| r.iter().map(|r| join_row(r)).collect::<Vec<_>>()),
            log_tail(&s.victim, 80)
        ));
    }
    Ok((victim, reference))
}

pub(crate) async fn job_status(
    client: &Client,
) -> Result<HashMap<String, (String, i64, Option<String>)>, String> {
    let rows = rows(client, "SELECT view, status, restarts, last_failure FROM weir_catalog.jobs").await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let restarts = text(&r[2]).parse().unwrap_or(-1);
            (text(&r[0]).to_string(), (text(&r[1]).to_string(), restarts, r[3].clone()))
        })
        .collect())
}

// --- The tests.

/// SIGKILL at pseudo-random moments, at least 10 times, until both sources have been read
/// to the end; then every view equals the reference's.
pub async fn kill_9_at_random_moments_is_exactly_once() -> Result<(), String> {
    let test = "kill_9_at_random_moments_is_exactly_once";
    let mut rng = Lcg::from_env_or_clock(test);
    let mut s = setup(test, "rocksdb", 2, 1_500_000, 2_000_000).await?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(150);
    let mut kills = 0;
    let mut kills_while_file_read = 0;
    let mut kills_while_bids_read = 0;
    loop {
        let delay = rng.between(300, 2000);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        // Where the sources are, asked just before the kill (briefly: the kill must not wait).
        let asking = async {
            let client = connect(&s.victim).await?;
            Splits::read(&client).await
        };
        let splits = tokio::time::timeout(Duration::from_secs(3), asking)
            .await
            .unwrap_or_else(|_| Err("no answer within 3 s".to_string()));
        tokio::task::block_in_place(|| s.victim.kill());
        kills += 1;
        let finished = match &splits {
            Ok(splits) => {
                println!("  kill {kills} at {delay} ms: {}", splits.summary());
                if splits.0.iter().any(|r| text(&r[0]) == "f_agg" && text(&r[2]) == "running") {
                    kills_while_file_read += 1;
                }
                if splits.0.iter().any(|r| text(&r[0]) != "f_agg" && text(&r[2]) == "running") {
                    kills_while_bids_read += 1;
                }
                splits.all_finished()
            }
            Err(e) => {
                println!("  kill {kills} at {delay} ms: (no status: {e})");
                false
            }
        };
        if finished && kills >= 10 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "after {kills} kills in {:.0}s the victim's sources have not finished (last status: {})\n\
                 victim log tail:\n{}",
                started.elapsed().as_secs_f64(),
                splits.map(|s| s.summary()).unwrap_or_else(|e| e),
                log_tail(&s.victim, 60)
            ));
        }
        let restarting = Instant::now();
        tokio::task::block_in_place(|| s.victim.restart());
        println!("    listening again after {} ms", restarting.elapsed().as_millis());
    }
    println!(
        "  {kills} kills in {:.1}s: {kills_while_file_read} while the file was read, {kills_while_bids_read} \
         while bids were read",
        started.elapsed().as_secs_f64()
    );
    tokio::task::block_in_place(|| s.victim.restart());
    let (victim, _reference) = final_comparison(&s).await?;

    check(
        kills_while_file_read >= 2 && kills_while_bids_read >= 2,
        format!(
            "the sources were not killed mid-read often enough ({kills_while_file_read} kills while the file \
             was read, {kills_while_bids_read} while bids were): make the input larger"
        ),
    )?;
    let completed = rows(
        &victim,
        "SELECT job, count(*) FROM weir_catalog.checkpoints WHERE status = 'completed' GROUP BY job ORDER BY job",
    )
    .await?;
    check(
        completed.len() == VIEWS.len(),
        format!(
            "jobs with completed checkpoints on the victim: {:?}",
            completed.iter().map(|r| join_row(r)).collect::<Vec<_>>()
        ),
    )?;
    let jobs = job_status(&victim).await?;
    check(
        jobs.len() == VIEWS.len() && jobs.values().all(|(status, _, _)| status == "running"),
        format!("victim jobs after the last restart: {jobs:?}"),
    )?;
    let log = s.victim.log();
    let recoveries = log.matches("recovering from checkpoint").count();
    check(recoveries >= 10, format!("the victim log shows {recoveries} recoveries from a checkpoint"))?;
    check(
        !log.contains("panicked"),
        format!(
            "the victim panicked:\n{}",
            log.lines().filter(|l| l.contains("panicked")).collect::<Vec<_>>().join("\n")
        ),
    )?;
    s.reference.kill();
    s.victim.kill();
    Ok(())
}

/// `INJECT FAILURE` at pseudo-random moments on views whose input is still being read: each
/// job fails through the operator-error path, restarts from its latest checkpoint and ends
/// equal to the reference.
pub async fn injected_failures_recover_exactly_once() -> Result<(), String> {
    let test = "injected_failures_recover_exactly_once";
    let mut rng = Lcg::from_env_or_clock(test);
    let s = setup(test, "memory", 2, 1_500_000, 2_000_000).await?;
    let client = connect(&s.victim).await?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(90);
    // Failures injected per view, and the restart count each view had when its latest
    // injection was made: a view is failed again only once that one has struck (two
    // injections before the next batch would make one failure).
    let mut injected: BTreeMap<&str, i64> = BTreeMap::new();
    let mut pending: HashMap<&str, i64> = HashMap::new();
    let mut first = true;
    loop {
        // The file is read in a few seconds: its view is failed first, early.
        let delay = if first { rng.between(100, 400) } else { rng.between(300, 1500) };
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let jobs = job_status(&client).await?;
        let splits = Splits::read(&client).await?;
        pending.retain(|view, before| jobs.get(*view).is_some_and(|j| j.1 <= *before));
        let eligible: Vec<&str> = VIEWS
            .iter()
            .map(|(v, _)| *v)
            .filter(|v| !splits.job_finished(v) && !pending.contains_key(v))
            .filter(|v| jobs.get(*v).is_some_and(|j| j.0 == "running"))
            .collect();
        let total: i64 = injected.values().sum();
        if splits.all_finished() || (total >= 10 && injected.len() == VIEWS.len()) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the victim's sources have not finished after {:.0}s: {}\nvictim log tail:\n{}",
                started.elapsed().as_secs_f64(),
                splits.summary(),
                log_tail(&s.victim, 60)
            ));
        }
        let view = if first && eligible.contains(&"f_agg") {
            "f_agg"
        } else if eligible.is_empty() {
            continue;
        } else {
            // Views never failed yet go first.
            let fresh: Vec<&str> = eligible.iter().copied().filter(|v| !injected.contains_key(v)).collect();
            let pool = if fresh.is_empty() { &eligible } else { &fresh };
            pool[rng.next() as usize % pool.len()]
        };
        first = false;
        match rows(&client, &format!("INJECT FAILURE {view}")).await {
            Ok(_) => {}
            // The job failed for another reason or its restart began meanwhile.
            Err(e) if e.contains("is not running") => continue,
            Err(e) => return Err(e),
        }
        let restarts = jobs.get(view).map(|j| j.1).unwrap_or(0);
        pending.insert(view, restarts);
        *injected.entry(view).or_default() += 1;
        println!(
            "  {:.1}s: INJECT FAILURE {view} ({restarts} restarts so far); sources: {}",
            started.elapsed().as_secs_f64(),
            splits.summary()
        );
    }
    let total: i64 = injected.values().sum();
    println!("  injected {total} failures in {:.1}s: {injected:?}", started.elapsed().as_secs_f64());

    let (victim, _reference) = final_comparison(&s).await?;
    let jobs = job_status(&victim).await?;
    println!("  victim jobs at the end: {jobs:?}");
    let restarted: i64 = jobs.values().map(|j| j.1).sum();
    check(
        restarted >= 5 && injected.len() == VIEWS.len(),
        format!("too few failures struck: {restarted} restarts after injections {injected:?}; jobs {jobs:?}"),
    )?;
    for (view, count) in &injected {
        let (status, restarts, last_failure) = jobs.get(*view).cloned().unwrap_or_default();
        check(status == "running", format!("{view} is {status} at the end"))?;
        // An injection made just before the view's input ended has no batch left to fail.
        check(
            restarts >= 1 && restarts <= *count,
            format!("{view}: weir_catalog.jobs.restarts = {restarts} after {count} injected failures"),
        )?;
        check(
            last_failure.as_deref().is_some_and(|f| f.contains("failure injected")),
            format!(
                "{view}: last_failure {last_failure:?} does not mention the injected failure (the job's failure \
                 is reported by a consequence of it, not by its cause)"
            ),
        )?;
    }
    let log = s.victim.log();
    check(
        !log.contains("panicked"),
        format!(
            "the victim panicked:\n{}",
            log.lines().filter(|l| l.contains("panicked")).collect::<Vec<_>>().join("\n")
        ),
    )
}
