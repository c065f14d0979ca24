//! The `weir` binary. Without a subcommand it runs standalone: one process serving the
//! Postgres wire protocol, with its data under the data directory. `weir jobmanager` and
//! `weir taskmanager` run the same engine as a cluster of processes.

use std::io::BufRead;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use weir_server::config::{Config, Mode, Overrides};

/// mimalloc rather than glibc's allocator: operators that keep rows allocate and free one
/// buffer per row, and glibc's `malloc`/`free` (with its arena consolidation) took about a
/// quarter of a join's CPU, and its per-thread arenas held hundreds of MB of freed memory.
/// Built without transparent huge pages (see `Cargo.toml`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "weir", version, about = "Weir: a streaming SQL database that speaks the Postgres protocol")]
struct Cli {
    /// Address to listen on for Postgres clients [default: 127.0.0.1:4566]
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Directory holding all data [default: ./weir-data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// TOML configuration file; flags given on the command line override it
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log filter (e.g. info, debug); WEIR_LOG or RUST_LOG take precedence
    #[arg(long, value_name = "FILTER")]
    log: Option<String>,
    /// PEM certificate for TLS (needs --tls-key)
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for TLS
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Read a password from stdin and print the SCRAM-SHA-256 verifier to put in the config
    /// file as auth.password
    HashPassword,
    /// Run the frontend (Postgres protocol, catalog, tables) and the JobManager, with the
    /// tasks of every view on the TaskManagers that register on --rpc
    Jobmanager {
        /// Address to listen on for Postgres clients [default: 127.0.0.1:4566]
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<String>,
        /// Address TaskManagers register on (cluster.rpc); beyond loopback it needs the
        /// cluster secret (cluster.secret or WEIR_CLUSTER_SECRET) [default: 127.0.0.1:6123]
        #[arg(long, value_name = "HOST:PORT")]
        rpc: Option<String>,
        /// Directory holding the catalog, tables and checkpoints [default: ./weir-data]
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// TOML configuration file ([cluster] holds the cluster settings)
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Run tasks for a JobManager: register on its rpc address and offer task slots
    Taskmanager {
        /// The JobManager's rpc address (cluster.jobmanager)
        #[arg(long, value_name = "HOST:PORT")]
        jobmanager: Option<String>,
        /// Task slots offered: a job needs as many as its highest parallelism (cluster.slots)
        /// [default: number of cores]
        #[arg(long, value_name = "N")]
        slots: Option<usize>,
        /// Directory for operator state and the files file sources may read [default: ./weir-data]
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Address the data service listens on for other processes' channels
        /// (cluster.listen_data; beyond loopback it needs the cluster secret) [default: 127.0.0.1:0]
        #[arg(long, value_name = "HOST:PORT")]
        listen_data: Option<String>,
        /// TOML configuration file ([cluster] holds the cluster settings)
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    let mut cli = Cli::parse();
    if let Some(Command::HashPassword) = cli.command {
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line).is_err()
            || line.trim_end_matches(['\r', '\n']).is_empty()
        {
            eprintln!("weir: expected a password on stdin");
            return std::process::ExitCode::FAILURE;
        }
        return match weir_server::wire::auth::ScramVerifier::generate(
            line.trim_end_matches(['\r', '\n']),
            4096,
        ) {
            Ok(v) => {
                println!("{v}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("weir: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let mut overrides = Overrides {
        listen: cli.listen,
        data_dir: cli.data_dir,
        log: cli.log,
        tls_cert: cli.tls_cert,
        tls_key: cli.tls_key,
        ..Default::default()
    };
    match cli.command.take() {
        Some(Command::Jobmanager { listen, rpc, data_dir, config }) => {
            overrides.mode = Mode::JobManager;
            overrides.listen = listen.or(overrides.listen);
            overrides.rpc = rpc;
            overrides.data_dir = data_dir.or(overrides.data_dir);
            cli.config = config.or(cli.config);
        }
        Some(Command::Taskmanager { jobmanager, slots, data_dir, listen_data, config }) => {
            overrides.mode = Mode::TaskManager;
            overrides.jobmanager = jobmanager;
            overrides.slots = slots;
            overrides.data_dir = data_dir.or(overrides.data_dir);
            overrides.listen_data = listen_data;
            cli.config = config.or(cli.config);
        }
        Some(Command::HashPassword) | None => {}
    }
    let config = match Config::load(cli.config.as_deref(), overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("weir: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let filter = std::env::var("WEIR_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| config.log.clone());
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("weir: cannot start runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match config.mode {
        Mode::TaskManager => runtime.block_on(weir_server::taskmanager::run(config)),
        Mode::Standalone | Mode::JobManager => runtime.block_on(weir_server::serve(config)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weir: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
