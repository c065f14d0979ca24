//! Configuration: command-line flags over a TOML file over defaults. Every flag has a
//! config-file key of the same name (`--data-dir` is `data_dir`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:4566";
pub const DEFAULT_RPC: &str = "127.0.0.1:6123";
pub const DEFAULT_LISTEN_DATA: &str = "127.0.0.1:0";
pub const DEFAULT_DATA_DIR: &str = "./weir-data";
/// The bootstrap superuser's name (`auth.user`).
pub const DEFAULT_USER: &str = "weir";

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Log filter, e.g. `info` or `weir_server=debug` (overridden by WEIR_LOG / RUST_LOG).
    pub log: String,
    /// A SCRAM-SHA-256 verifier; when set, clients must authenticate with the password.
    pub password: Option<String>,
    /// The bootstrap superuser (`auth.user`): always a superuser, never dropped.
    pub user: String,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Refuse clients that do not use TLS (`tls.required`).
    pub tls_required: bool,
    /// Client sessions at once; one more is refused with `53300` (`max_connections`).
    pub max_connections: usize,
    /// `idle_session_timeout` of new sessions, in milliseconds; 0 = none (`idle_session_timeout_ms`).
    pub idle_session_timeout_ms: u64,
    /// How often the JobManager closes an epoch (`[streaming] barrier_interval_ms`).
    pub barrier_interval_ms: u64,
    /// Default maximum drift of watermark alignment for jobs reading more than one
    /// event-time source, in milliseconds; 0 = off
    /// (`[streaming] watermark_alignment_max_drift_ms`).
    pub watermark_alignment_max_drift_ms: u64,
    /// Where operators keep keyed state (`[state]`).
    pub state: StateConfig,
    /// Checkpoints (`[checkpoint]`); `None` when `interval = "off"`.
    pub checkpoint: Option<CheckpointConfig>,
    /// First delay before a failed job restarts (`[restart] backoff`); zero turns restarts off.
    pub restart_backoff: Duration,
    pub max_restart_backoff: Duration,
    /// The only directories `file` sources and sinks may use (`[file] allowed_dirs`);
    /// `None` means the default, `DATA_DIR/files` (created at start).
    pub file_allowed_dirs: Option<Vec<PathBuf>>,
    /// `[sources]`: the reader pool and the cap on splits per source.
    pub sources: SourcesConfig,
    /// Memory one batch query may use (`[query] memory_limit_mb`).
    pub query_memory_limit_bytes: usize,
    /// Which role this process runs (the subcommand).
    pub mode: Mode,
    /// `[cluster]`: JobManager and TaskManager settings.
    pub cluster: ClusterConfig,
}

/// The role of a `weir` process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Frontend, JobManager and TaskManager in one process (no subcommand).
    #[default]
    Standalone,
    /// `weir jobmanager`: frontend and JobManager; tasks run on registered TaskManagers.
    JobManager,
    /// `weir taskmanager`: runs tasks for a JobManager.
    TaskManager,
}

/// As Postgres.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100;

/// How far (in event time) one source of a job may read ahead of its slowest one, by
/// default: ten seconds, a few batches of a fast generator, far less than the state a
/// source reading freely ahead fills.
pub const DEFAULT_WATERMARK_ALIGNMENT_MAX_DRIFT_MS: u64 = 10_000;

/// `[sources]`: how connector sources share the process.
#[derive(Debug, Clone, Copy)]
pub struct SourcesConfig {
    /// Threads that run connector reads, shared by every source (`reader_threads`).
    pub reader_threads: usize,
    /// The most splits one source may have (`max_splits`).
    pub split_limit: weir_executor::connectors::SplitLimit,
}

impl Default for SourcesConfig {
    fn default() -> Self {
        Self {
            reader_threads: weir_executor::sources::reader_pool::default_reader_threads(),
            split_limit: Default::default(),
        }
    }
}

impl SourcesConfig {
    /// The pool a process's sources read on.
    pub fn reader_pool(&self) -> weir_executor::sources::reader_pool::ReaderPool {
        weir_executor::sources::reader_pool::ReaderPool::new(self.reader_threads)
    }
}

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Shared by the JobManager and its TaskManagers (`cluster.secret` or
    /// `WEIR_CLUSTER_SECRET`); required when any cluster address is beyond loopback.
    pub secret: Option<String>,
    /// A TaskManager silent this long is lost (`cluster.heartbeat_timeout_ms`).
    pub heartbeat_timeout: Duration,
    /// `spread` or `pack` (`cluster.placement`).
    pub placement: weir_executor::SlotPolicy,
    /// The JobManager's control address (`--rpc`, `cluster.rpc`).
    pub rpc: SocketAddr,
    /// The JobManager a TaskManager registers with (`--jobmanager`, `cluster.jobmanager`).
    pub jobmanager: Option<String>,
    /// Task slots a TaskManager offers (`--slots`, `cluster.slots`; default: its cores).
    pub slots: usize,
    /// Where a TaskManager's data service listens (`--listen-data`, `cluster.listen_data`).
    pub listen_data: String,
    /// The data address other processes use when the listening one is not reachable as
    /// given, e.g. `0.0.0.0:7000` (`cluster.advertise_data`).
    pub advertise_data: Option<String>,
    /// Mutual TLS between cluster processes: this process's certificate and key and the
    /// cluster's CA (`cluster.tls_cert`, `cluster.tls_key`, `cluster.tls_ca`), all or none.
    pub tls: Option<ClusterTlsFiles>,
    /// Coalescing of small batches between processes (`cluster.exchange_batch_rows`,
    /// `cluster.exchange_linger_ms`).
    pub exchange: weir_cluster::data_plane::ExchangeBatching,
}

#[derive(Debug, Clone)]
pub struct ClusterTlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl ClusterConfig {
    /// The cluster TLS settings, read from their files.
    pub fn load_tls(&self) -> Result<Option<weir_cluster::ClusterTls>, String> {
        self.tls.as_ref().map(|t| weir_cluster::ClusterTls::load(&t.cert, &t.key, &t.ca)).transpose()
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            secret: None,
            heartbeat_timeout: Duration::from_millis(5000),
            placement: weir_executor::SlotPolicy::Spread,
            rpc: DEFAULT_RPC.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 6123))),
            jobmanager: None,
            slots: std::thread::available_parallelism().map_or(1, |n| n.get()),
            listen_data: DEFAULT_LISTEN_DATA.into(),
            advertise_data: None,
            tls: None,
            exchange: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateBackendKind {
    Memory,
    RocksDb,
}

#[derive(Debug, Clone)]
pub struct StateConfig {
    pub backend: StateBackendKind,
    pub block_cache_bytes: usize,
    pub write_buffer_bytes: usize,
    /// Groups an aggregate keeps in memory before it evicts clean ones to the backend
    /// (unlimited with the memory backend).
    pub cache_groups: usize,
}

#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    pub interval: Duration,
    /// An object-store URL (`file:///...`, `s3://bucket/prefix`); a plain path is a local
    /// directory (`checkpoint.store`, or its older name `checkpoint.dir`).
    pub dir: String,
    /// How to reach an `s3://` store (`[checkpoint.s3]`).
    pub s3: weir_storage::S3Options,
    pub retained: usize,
    pub timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 4566))),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            log: "info".into(),
            password: None,
            user: DEFAULT_USER.into(),
            tls_cert: None,
            tls_key: None,
            tls_required: false,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_session_timeout_ms: 0,
            barrier_interval_ms: 1000,
            watermark_alignment_max_drift_ms: DEFAULT_WATERMARK_ALIGNMENT_MAX_DRIFT_MS,
            state: StateConfig {
                backend: StateBackendKind::Memory,
                block_cache_bytes: 64 << 20,
                write_buffer_bytes: 32 << 20,
                cache_groups: usize::MAX,
            },
            checkpoint: Some(CheckpointConfig {
                interval: Duration::from_secs(1),
                dir: Path::new(DEFAULT_DATA_DIR).join("checkpoints").display().to_string(),
                s3: Default::default(),
                retained: 2,
                timeout: Duration::from_secs(600),
            }),
            restart_backoff: Duration::from_secs(1),
            max_restart_backoff: Duration::from_secs(30),
            file_allowed_dirs: None,
            sources: SourcesConfig::default(),
            query_memory_limit_bytes: crate::query_memory::DEFAULT_MEMORY_LIMIT_MB << 20,
            mode: Mode::Standalone,
            cluster: ClusterConfig::default(),
        }
    }
}

impl Config {
    /// The directories `file` sources and sinks may use.
    pub fn file_dirs(&self) -> Vec<PathBuf> {
        match &self.file_allowed_dirs {
            Some(dirs) => dirs.clone(),
            None => vec![self.data_dir.join("files")],
        }
    }
}

/// Groups a RocksDB-backed aggregate keeps in memory by default.
pub const DEFAULT_ROCKSDB_CACHE_GROUPS: usize = 1_000_000;

/// The TOML file layout.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub log: Option<String>,
    pub max_connections: Option<usize>,
    pub idle_session_timeout_ms: Option<u64>,
    #[serde(default)]
    pub auth: AuthSection,
    #[serde(default)]
    pub tls: TlsSection,
    #[serde(default)]
    pub streaming: StreamingSection,
    #[serde(default)]
    pub state: StateSection,
    #[serde(default)]
    pub checkpoint: CheckpointSection,
    #[serde(default)]
    pub restart: RestartSection,
    #[serde(default)]
    pub file: FileSection,
    #[serde(default)]
    pub sources: SourcesSection,
    #[serde(default)]
    pub query: QuerySection,
    #[serde(default)]
    pub cluster: ClusterSection,
}

/// `[query]`: limits of batch queries.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySection {
    pub memory_limit_mb: Option<usize>,
}

/// `[sources]`: the source reader pool and the cap on splits per source.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesSection {
    pub reader_threads: Option<usize>,
    pub max_splits: Option<usize>,
}

impl SourcesSection {
    fn resolve(&self) -> Result<SourcesConfig, String> {
        let defaults = SourcesConfig::default();
        let reader_threads = match self.reader_threads {
            Some(0) => return Err("sources.reader_threads must be at least 1".into()),
            Some(n) => n,
            None => defaults.reader_threads,
        };
        let split_limit = match self.max_splits {
            Some(0) => return Err("sources.max_splits must be at least 1".into()),
            Some(n) => weir_executor::connectors::SplitLimit::new(n),
            None => defaults.split_limit,
        };
        Ok(SourcesConfig { reader_threads, split_limit })
    }
}

/// `[cluster]`: distributed mode.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    pub secret: Option<String>,
    pub heartbeat_timeout_ms: Option<u64>,
    pub placement: Option<String>,
    pub rpc: Option<String>,
    pub jobmanager: Option<String>,
    pub slots: Option<usize>,
    pub listen_data: Option<String>,
    pub advertise_data: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    pub exchange_batch_rows: Option<usize>,
    pub exchange_linger_ms: Option<u64>,
}

/// `[file]`: where `file` sources and sinks may read and write.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSection {
    pub allowed_dirs: Option<Vec<PathBuf>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSection {
    /// `memory` (default) or `rocksdb`.
    pub backend: Option<String>,
    pub block_cache_mb: Option<usize>,
    pub write_buffer_mb: Option<usize>,
    pub cache_groups: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSection {
    /// A duration (`"1s"`, `"500ms"`) or `"off"`.
    pub interval: Option<String>,
    /// Where checkpoints go: a directory, `file:///dir` or `s3://bucket/prefix`.
    pub store: Option<String>,
    /// The older name of `store`.
    pub dir: Option<String>,
    #[serde(default)]
    pub s3: S3Section,
    pub retained: Option<usize>,
    pub timeout: Option<String>,
}

/// `[checkpoint.s3]`: an S3-compatible checkpoint store; unset keys come from `AWS_*`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Section {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub allow_http: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartSection {
    pub backoff: Option<String>,
    pub max_backoff: Option<String>,
}

/// `mb` megabytes in bytes; checked, since a shift would silently drop the high bits.
fn megabytes(key: &str, mb: usize) -> Result<usize, String> {
    mb.checked_mul(1 << 20).ok_or_else(|| format!("{key}: {mb} MB is more than this machine can address"))
}

/// Parses `"250ms"`, `"1s"`, `"2m"`, `"1h"` (a bare number is milliseconds).
pub fn parse_duration(key: &str, text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{key}: \"{text}\" is not a duration like \"500ms\" or \"1s\""))?;
    let millis = match unit.trim() {
        "" | "ms" => Some(value),
        "s" => value.checked_mul(1000),
        "m" | "min" => value.checked_mul(60_000),
        "h" => value.checked_mul(3_600_000),
        other => return Err(format!("{key}: unknown unit \"{other}\" (use ms, s, m or h)")),
    };
    millis.map(Duration::from_millis).ok_or_else(|| format!("{key}: \"{text}\" is too long"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamingSection {
    pub barrier_interval_ms: Option<u64>,
    pub watermark_alignment_max_drift_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    pub password: Option<String>,
    pub user: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub required: Option<bool>,
}

/// Flag values; `None` means "not given on the command line".
#[derive(Debug, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub log: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub mode: Mode,
    pub rpc: Option<String>,
    pub jobmanager: Option<String>,
    pub slots: Option<usize>,
    pub listen_data: Option<String>,
}

impl Config {
    pub fn load(config_file: Option<&Path>, flags: Overrides) -> Result<Self, String> {
        let file: FileConfig = match config_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
                toml::from_str(&text).map_err(|e| format!("invalid config file {}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let defaults = Config::default();
        let cluster = cluster_config(file.cluster, &flags)?;
        let listen_text = flags.listen.or(file.listen);
        let listen = match listen_text {
            Some(text) => text.parse().map_err(|e| format!("invalid listen address \"{text}\": {e}"))?,
            None => defaults.listen,
        };
        let data_dir = flags.data_dir.or(file.data_dir).unwrap_or(defaults.data_dir);
        let backend = match file.state.backend.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("memory") => StateBackendKind::Memory,
            Some("rocksdb") => StateBackendKind::RocksDb,
            Some(other) => {
                return Err(format!("state.backend must be \"memory\" or \"rocksdb\", not \"{other}\""))
            }
        };
        let state = StateConfig {
            backend,
            block_cache_bytes: file
                .state
                .block_cache_mb
                .map_or(Ok(defaults.state.block_cache_bytes), |mb| megabytes("state.block_cache_mb", mb))?,
            write_buffer_bytes: file
                .state
                .write_buffer_mb
                .map_or(Ok(defaults.state.write_buffer_bytes), |mb| megabytes("state.write_buffer_mb", mb))?,
            cache_groups: match (file.state.cache_groups, backend) {
                (Some(0), _) => return Err("state.cache_groups must be at least 1".into()),
                (Some(n), _) => n,
                (None, StateBackendKind::Memory) => usize::MAX,
                (None, StateBackendKind::RocksDb) => DEFAULT_ROCKSDB_CACHE_GROUPS,
            },
        };
        let checkpoint = match file.checkpoint.interval.as_deref().map(str::trim) {
            Some("off") => None,
            interval => {
                let interval = match interval {
                    Some(text) => parse_duration("checkpoint.interval", text)?,
                    None => Duration::from_secs(1),
                };
                if interval.is_zero() {
                    return Err("checkpoint.interval must be positive (or \"off\")".into());
                }
                Some(CheckpointConfig {
                    interval,
                    dir: file
                        .checkpoint
                        .store
                        .or(file.checkpoint.dir)
                        .unwrap_or_else(|| data_dir.join("checkpoints").display().to_string()),
                    s3: weir_storage::S3Options {
                        endpoint: file.checkpoint.s3.endpoint,
                        region: file.checkpoint.s3.region,
                        access_key_id: file.checkpoint.s3.access_key_id,
                        secret_access_key: file.checkpoint.s3.secret_access_key,
                        allow_http: file.checkpoint.s3.allow_http.unwrap_or(false),
                    },
                    retained: file.checkpoint.retained.unwrap_or(2).max(1),
                    timeout: match file.checkpoint.timeout {
                        Some(text) => parse_duration("checkpoint.timeout", &text)?,
                        None => Duration::from_secs(600),
                    },
                })
            }
        };
        let restart_backoff = match file.restart.backoff {
            Some(text) => parse_duration("restart.backoff", &text)?,
            None => defaults.restart_backoff,
        };
        let max_restart_backoff = match file.restart.max_backoff {
            Some(text) => parse_duration("restart.max_backoff", &text)?,
            None => defaults.max_restart_backoff,
        };
        let config = Config {
            mode: flags.mode,
            cluster,
            file_allowed_dirs: file.file.allowed_dirs,
            sources: file.sources.resolve()?,
            query_memory_limit_bytes: match file.query.memory_limit_mb {
                Some(0) => return Err("query.memory_limit_mb must be at least 1".into()),
                Some(mb) => megabytes("query.memory_limit_mb", mb)?,
                None => defaults.query_memory_limit_bytes,
            },
            listen,
            data_dir,
            state,
            checkpoint,
            restart_backoff,
            max_restart_backoff,
            log: flags.log.or(file.log).unwrap_or(defaults.log),
            // An environment variable keeps the verifier out of files (a Kubernetes secret).
            password: std::env::var("WEIR_PASSWORD").ok().filter(|p| !p.is_empty()).or(file.auth.password),
            user: file.auth.user.unwrap_or_else(|| DEFAULT_USER.into()),
            tls_cert: flags.tls_cert.or(file.tls.cert),
            tls_key: flags.tls_key.or(file.tls.key),
            tls_required: file.tls.required.unwrap_or(false),
            max_connections: match file.max_connections {
                Some(0) => return Err("max_connections must be at least 1".into()),
                Some(n) => n,
                None => DEFAULT_MAX_CONNECTIONS,
            },
            idle_session_timeout_ms: match file.idle_session_timeout_ms {
                Some(ms) if ms > i32::MAX as u64 => {
                    return Err(format!("idle_session_timeout_ms must be at most {}", i32::MAX))
                }
                Some(ms) => ms,
                None => 0,
            },
            barrier_interval_ms: match file.streaming.barrier_interval_ms {
                Some(0) => return Err("streaming.barrier_interval_ms must be at least 1".into()),
                Some(ms) => ms,
                None => 1000,
            },
            watermark_alignment_max_drift_ms: file
                .streaming
                .watermark_alignment_max_drift_ms
                .unwrap_or(DEFAULT_WATERMARK_ALIGNMENT_MAX_DRIFT_MS),
        };
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), String> {
        let secret = self.cluster.secret.is_some();
        if self.mode == Mode::JobManager && !self.cluster.rpc.ip().is_loopback() && !secret {
            return Err(format!(
                "refusing to accept taskmanagers on {} without a cluster secret: set cluster.secret or WEIR_CLUSTER_SECRET \
                 (the same on every process of the cluster), or keep --rpc on loopback",
                self.cluster.rpc
            ));
        }
        if self.mode == Mode::JobManager
            && self.cluster.rpc.ip().is_unspecified()
            && self.cluster.advertise_data.is_none()
        {
            return Err(format!(
                "--rpc {} listens on every interface: set cluster.advertise_data (or WEIR_ADVERTISE_DATA) to the \
                 address TaskManagers reach this process at",
                self.cluster.rpc
            ));
        }
        if self.mode == Mode::TaskManager {
            if self.cluster.jobmanager.is_none() {
                return Err("a taskmanager needs --jobmanager HOST:PORT (or cluster.jobmanager)".into());
            }
            let loopback =
                self.cluster.listen_data.parse::<SocketAddr>().map(|a| a.ip().is_loopback()).unwrap_or(false);
            if !loopback && !secret {
                return Err(format!(
                    "refusing to serve data on {} without a cluster secret: set cluster.secret or WEIR_CLUSTER_SECRET",
                    self.cluster.listen_data
                ));
            }
            if self.cluster.slots == 0 {
                return Err("--slots must be at least 1".into());
            }
        }
        if !self.listen.ip().is_loopback() && self.password.is_none() {
            return Err(format!(
                "refusing to listen on {} without a password: trust authentication is only allowed on loopback. \
                 Set auth.password in the config file (generate it with `weir hash-password`)",
                self.listen
            ));
        }
        if self.user.is_empty() || self.user.starts_with("pg_") || self.user.eq_ignore_ascii_case("public") {
            return Err(format!(
                "auth.user \"{}\" is not a usable role name (empty, PUBLIC, or starting with pg_)",
                self.user
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("TLS needs both a certificate (tls.cert) and a key (tls.key)".into());
        }
        if self.tls_required && self.tls_cert.is_none() {
            return Err("tls.required needs a certificate and key (tls.cert, tls.key)".into());
        }
        if let Some(verifier) = &self.password {
            crate::wire::auth::ScramVerifier::parse(verifier).map_err(|e| format!("auth.password: {e}"))?;
        }
        Ok(())
    }
}

/// `[cluster]` under the cluster flags, with `WEIR_CLUSTER_SECRET` over `cluster.secret`.
fn cluster_config(section: ClusterSection, flags: &Overrides) -> Result<ClusterConfig, String> {
    let defaults = ClusterConfig::default();
    let rpc = match flags.rpc.clone().or(section.rpc) {
        Some(text) => text.parse().map_err(|e| format!("invalid rpc address \"{text}\": {e}"))?,
        None => defaults.rpc,
    };
    let placement = match section.placement.as_deref() {
        None => defaults.placement,
        Some(text) => weir_executor::SlotPolicy::parse(text)
            .ok_or_else(|| format!("cluster.placement must be \"spread\" or \"pack\", not \"{text}\""))?,
    };
    let secret = std::env::var("WEIR_CLUSTER_SECRET").ok().or(section.secret).filter(|s| !s.is_empty());
    if let Some(secret) = &secret {
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the cluster secret must be printable ASCII without spaces".into());
        }
    }
    let tls = match (section.tls_cert, section.tls_key, section.tls_ca) {
        (None, None, None) => None,
        (Some(cert), Some(key), Some(ca)) => Some(ClusterTlsFiles { cert, key, ca }),
        _ => {
            return Err("cluster TLS needs all of cluster.tls_cert, cluster.tls_key and cluster.tls_ca".into())
        }
    };
    let exchange = weir_cluster::data_plane::ExchangeBatching {
        rows: match section.exchange_batch_rows {
            Some(0) => return Err("cluster.exchange_batch_rows must be positive".into()),
            Some(rows) => rows,
            None => defaults.exchange.rows,
        },
        linger: match section.exchange_linger_ms {
            Some(ms) if ms > 1000 => {
                return Err(
                    "cluster.exchange_linger_ms is at most 1000 (a row waits that long at low rates)".into()
                )
            }
            Some(ms) => Duration::from_millis(ms),
            None => defaults.exchange.linger,
        },
    };
    Ok(ClusterConfig {
        tls,
        exchange,
        secret,
        heartbeat_timeout: match section.heartbeat_timeout_ms {
            Some(0) => return Err("cluster.heartbeat_timeout_ms must be positive".into()),
            Some(ms) => Duration::from_millis(ms),
            None => defaults.heartbeat_timeout,
        },
        placement,
        rpc,
        jobmanager: flags.jobmanager.clone().or(section.jobmanager),
        slots: flags.slots.or(section.slots).unwrap_or(defaults.slots),
        listen_data: flags.listen_data.clone().or(section.listen_data).unwrap_or(defaults.listen_data),
        advertise_data: std::env::var("WEIR_ADVERTISE_DATA")
            .ok()
            .filter(|a| !a.is_empty())
            .or(section.advertise_data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_addresses_beyond_loopback_need_the_secret() {
        let jm =
            |rpc: &str| Overrides { mode: Mode::JobManager, rpc: Some(rpc.into()), ..Default::default() };
        assert!(Config::load(None, jm("127.0.0.1:6123")).is_ok());
        let err = Config::load(None, jm("0.0.0.0:6123")).unwrap_err();
        assert!(err.contains("cluster secret"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weir.toml");
        std::fs::write(
            &path,
            "[cluster]\nsecret = \"s3cret\"\nplacement = \"pack\"\nheartbeat_timeout_ms = 1000\n",
        )
        .unwrap();
        let err = Config::load(Some(&path), jm("0.0.0.0:6123")).unwrap_err();
        assert!(err.contains("advertise_data"), "{err}");
        std::fs::write(
            &path,
            "[cluster]\nsecret = \"s3cret\"\nplacement = \"pack\"\nheartbeat_timeout_ms = 1000\nadvertise_data = \"jm:6123\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), jm("0.0.0.0:6123")).unwrap();
        assert_eq!(c.cluster.placement, weir_executor::SlotPolicy::Pack);
        assert_eq!(c.cluster.heartbeat_timeout, Duration::from_secs(1));
        assert_eq!(c.cluster.rpc.port(), 6123);
        let tm = Overrides { mode: Mode::TaskManager, ..Default::default() };
        assert!(Config::load(None, tm).unwrap_err().contains("--jobmanager"));
        let tm = Overrides {
            mode: Mode::TaskManager,
            jobmanager: Some("10.0.0.1:6123".into()),
            listen_data: Some("0.0.0.0:7000".into()),
            ..Default::default()
        };
        assert!(Config::load(None, tm).unwrap_err().contains("cluster secret"));
        std::fs::write(&path, "[cluster]\nplacement = \"random\"\n").unwrap();
        assert!(Config::load(Some(&path), Overrides::default()).unwrap_err().contains("placement"));
    }

    #[test]
    fn flags_override_file_and_loopback_rule() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weir.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:5000\"\ndata_dir = \"/tmp/x\"\n").unwrap();
        let c =
            Config::load(Some(&path), Overrides { data_dir: Some("/tmp/y".into()), ..Default::default() })
                .unwrap();
        assert_eq!(c.listen.port(), 5000);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/y"));

        let err = Config::load(None, Overrides { listen: Some("0.0.0.0:4566".into()), ..Default::default() })
            .unwrap_err();
        assert!(err.contains("without a password"));

        std::fs::write(&path, "bogus = 1\n").unwrap();
        assert!(Config::load(Some(&path), Overrides::default()).is_err());
    }

    #[test]
    fn state_and_checkpoint_sections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weir.toml");
        let text = "state.backend = \"rocksdb\"\ncheckpoint.interval = \"250ms\"\n\
                    checkpoint.dir = \"file:///tmp/ck\"\n[restart]\nbackoff = \"2s\"\n";
        std::fs::write(&path, text).unwrap();
        let c = Config::load(Some(&path), Overrides::default()).unwrap();
        assert_eq!(c.state.backend, StateBackendKind::RocksDb);
        assert_eq!(c.state.cache_groups, DEFAULT_ROCKSDB_CACHE_GROUPS);
        let checkpoint = c.checkpoint.unwrap();
        assert_eq!(checkpoint.interval, Duration::from_millis(250));
        assert_eq!(checkpoint.dir, "file:///tmp/ck");
        assert_eq!(c.restart_backoff, Duration::from_secs(2));

        std::fs::write(&path, "checkpoint.interval = \"off\"\n").unwrap();
        assert!(Config::load(Some(&path), Overrides::default()).unwrap().checkpoint.is_none());
        std::fs::write(&path, "checkpoint.interval = \"1 fortnight\"\n").unwrap();
        let err = Config::load(Some(&path), Overrides::default()).unwrap_err();
        assert!(err.contains("unknown unit"), "{err}");
        std::fs::write(&path, "[file]\nallowed_dirs = [\"/srv/in\", \"/srv/out\"]\n").unwrap();
        let c = Config::load(Some(&path), Overrides::default()).unwrap();
        assert_eq!(c.file_dirs(), vec![PathBuf::from("/srv/in"), PathBuf::from("/srv/out")]);
        let c = Config::load(None, Overrides { data_dir: Some("/d".into()), ..Default::default() }).unwrap();
        assert_eq!(c.file_dirs(), vec![PathBuf::from("/d/files")]);
        std::fs::write(&path, "[state]\nblock_cache_mb = 9223372036854775807\n").unwrap();
        let err = Config::load(Some(&path), Overrides::default()).unwrap_err();
        assert!(err.contains("state.block_cache_mb"), "{err}");
        std::fs::write(&path, "state.backend = \"tape\"\n").unwrap();
        assert!(Config::load(Some(&path), Overrides::default()).unwrap_err().contains("state.backend"));
    }
}
