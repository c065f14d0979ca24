//! What the benchmarks share: a real Weir server started in this process on a free
//! loopback port with a temporary data directory, and a client connected to it.

use std::time::Duration;

/// The allocator the `weir` binary uses (see its `main.rs`), so that the benchmarks measure
/// what a server runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The running server's data directory (removed when dropped) and a connected client.
pub struct BenchServer {
    pub _dir: tempfile::TempDir,
    pub client: tokio_postgres::Client,
}

/// Starts Weir with `adjust` applied to its configuration and connects to it.
pub async fn start(
    adjust: impl FnOnce(&mut weir_server::config::Config),
) -> Result<BenchServer, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut config = weir_server::config::Config::load(
        None,
        weir_server::config::Overrides {
            listen: Some(format!("127.0.0.1:{port}")),
            data_dir: Some(dir.path().join("data")),
            ..Default::default()
        },
    )?;
    apply_state_settings(&mut config)?;
    adjust(&mut config);
    // The bootstrap superuser: the only role a fresh data directory has.
    let user = config.user.clone();
    tokio::spawn(async move {
        if let Err(e) = weir_server::serve(config).await {
            eprintln!("server failed: {e}");
        }
    });
    let conn = format!("host=127.0.0.1 port={port} user={user} dbname=weir");
    let started = std::time::Instant::now();
    let client = loop {
        match tokio_postgres::connect(&conn, tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                break client;
            }
            // Refused while the server starts; anything else (a login error) is final.
            Err(e) if e.as_db_error().is_none() && started.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => return Err(format!("connecting to the benchmark's server: {e}").into()),
        }
    };
    Ok(BenchServer { _dir: dir, client })
}

/// `WEIR_BENCH_CHECKPOINT` (`off`, or an interval such as `1s`; default: Weir's default),
/// `WEIR_BENCH_STATE` (`memory` or `rocksdb`), `WEIR_BENCH_CACHE_GROUPS` (groups or rows an
/// operator keeps in memory before evicting to the backend) and `WEIR_BENCH_BLOCK_CACHE_MB`
/// (RocksDB's block cache) choose how a benchmark's server keeps state;
/// `WEIR_BENCH_ALIGNMENT_MS` sets the default maximum drift of watermark alignment (`0`:
/// sources unaligned).
fn apply_state_settings(config: &mut weir_server::config::Config) -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(drift) = std::env::var("WEIR_BENCH_ALIGNMENT_MS") {
        config.watermark_alignment_max_drift_ms = drift.parse()?;
    }
    if let Ok(interval) = std::env::var("WEIR_BENCH_CHECKPOINT") {
        match interval.as_str() {
            "off" => config.checkpoint = None,
            text => {
                let interval = weir_server::config::parse_duration("WEIR_BENCH_CHECKPOINT", text)?;
                if let Some(checkpoint) = &mut config.checkpoint {
                    checkpoint.interval = interval;
                }
            }
        }
    }
    if let Ok(backend) = std::env::var("WEIR_BENCH_STATE") {
        config.state.backend = match backend.as_str() {
            "rocksdb" => weir_server::config::StateBackendKind::RocksDb,
            _ => weir_server::config::StateBackendKind::Memory,
        };
        if config.state.backend == weir_server::config::StateBackendKind::RocksDb {
            config.state.cache_groups = weir_server::config::DEFAULT_ROCKSDB_CACHE_GROUPS;
        }
    }
    // A small cache, to run state several times larger than memory.
    if let Ok(groups) = std::env::var("WEIR_BENCH_CACHE_GROUPS") {
        config.state.cache_groups = groups.parse()?;
    }
    if let Ok(mb) = std::env::var("WEIR_BENCH_BLOCK_CACHE_MB") {
        config.state.block_cache_bytes = mb.parse::<usize>()? << 20;
    }
    eprintln!(
        "state backend {:?}, watermark alignment max drift {} ms, checkpoints {}",
        config.state.backend,
        config.watermark_alignment_max_drift_ms,
        config.checkpoint.as_ref().map_or("off".to_string(), |c| format!("every {:?}", c.interval))
    );
    Ok(())
}
