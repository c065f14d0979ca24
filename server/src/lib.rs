//! The `weir` server: everything between a Postgres client and Weir's planner, executor and
//! storage.
//!
//! It owns:
//! - the Postgres wire protocol (pgwire): startup, authentication, TLS, cancellation, and
//!   encoding results ([`wire`]);
//! - sessions: settings, transaction-block state, `COPY FROM STDIN` in progress
//!   ([`session`], [`copy_in`]), every session's pid, activity, cancel and terminate
//!   ([`backends`]), and the chunked, atomic writer of inserted rows
//!   ([`table_writer`]);
//! - statement dispatch: telling statements apart and running each with its handler, and
//!   Describe of prepared statements ([`handlers`]);
//! - the per-statement DataFusion context over the durable catalog ([`engine`],
//!   [`source_table`]);
//! - the catalog views clients discover a database through (`pg_catalog`,
//!   `information_schema`: [`pg_catalog`]) and Weir's own system tables (`weir_catalog`:
//!   [`system_tables`]);
//! - starting the standalone streaming runtime in-process ([`runtime`]), the `weir` binary
//!   and its configuration ([`config`]).
//!
//! It must not own operator logic (that is `weir-executor`'s: operators, state, the
//! JobManager and TaskManagers) or the planning of streaming jobs (that is
//! `weir-planner`'s: lowering a bound query to a JobGraph). Handlers call into those crates
//! and store what they return; they do not reimplement either.

pub mod backends;
pub mod commit_gate;
pub mod config;
pub mod copy_in;
pub mod engine;
pub mod handlers;
pub mod name_claims;
pub mod pg_catalog;
pub mod postgres_settings;
pub mod privileges;
pub mod query_memory;
pub mod runtime;
pub mod session;
pub mod single_stream_results;
pub mod source_table;
pub mod system_tables;
pub mod table_writer;
pub mod taskmanager;
pub mod wire;

use std::sync::Arc;

use pgwire::api::ConnectionManager;
use tokio::net::TcpListener;
use tracing::{error, info, warn};
use weir_storage::Store;

use crate::config::Config;
use crate::engine::Engine;
use crate::wire::auth::{ScramVerifier, WeirStartup};
use crate::wire::{QueryHandler, WeirHandlers};

/// Opens the data directory and serves clients until the process is stopped.
pub async fn serve(config: Config) -> Result<(), String> {
    let store = Store::open(&config.data_dir).map_err(|e| format!("cannot open data directory: {e}"))?;
    let engine = Arc::new(Engine::new(Arc::new(store), config.clone())?);
    runtime::redeploy_views(&engine.store, &engine.jobs).await;
    let verifier = config.password.as_deref().map(ScramVerifier::parse).transpose()?;
    let (tls, cert_pem) = load_tls(&config)?;
    let connections = Arc::new(ConnectionManager::new());
    let startup = WeirStartup::new(engine.clone(), connections.clone(), verifier, cert_pem)?
        .requiring_tls(config.tls_required)
        .limiting_sessions(config.max_connections);
    let handlers = Arc::new(WeirHandlers {
        engine: engine.clone(),
        queries: Arc::new(QueryHandler::new(engine.clone())),
        startup: Arc::new(startup),
        connections,
    });
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    info!(
        listen = %config.listen,
        data_dir = %config.data_dir.display(),
        auth = if config.password.is_some() { "scram-sha-256" } else { "trust" },
        tls = tls.is_some(),
        "weir is ready"
    );
    let sasl = config.password.is_some();
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!(error = %e, "accept failed");
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        // A duplicate of the socket for `wire::idle` to write its FATAL on.
        let (socket, raw) = match duplicate(socket) {
            Ok(pair) => pair,
            Err(e) => {
                warn!(%peer, error = %e, "cannot set up connection");
                continue;
            }
        };
        let handlers = handlers.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            // Each connection runs in its own task: a failure here never affects others.
            let connection = wire::connection::serve(socket, tls, handlers, sasl);
            if let Err(e) = wire::idle::serve(connection, raw).await {
                warn!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

/// The socket and a duplicate of its descriptor (`None` if the system refused one).
fn duplicate(
    socket: tokio::net::TcpStream,
) -> std::io::Result<(tokio::net::TcpStream, Option<std::net::TcpStream>)> {
    let std_socket = socket.into_std()?;
    let raw = std_socket.try_clone().ok();
    Ok((tokio::net::TcpStream::from_std(std_socket)?, raw))
}

fn load_tls(config: &Config) -> Result<(Option<pgwire::tokio::TlsAcceptor>, Option<Vec<u8>>), String> {
    use pgwire::tokio::tokio_rustls::rustls;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert_path), Some(key_path)) = (&config.tls_cert, &config.tls_key) else {
        return Ok((None, None));
    };
    let cert_pem =
        std::fs::read(cert_path).map_err(|e| format!("cannot read {}: {e}", cert_path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid certificate {}: {e}", cert_path.display()))?;
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| format!("invalid key {}: {e}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate and key do not match: {e}"))?;
    if let Err(e) = rustls::crypto::ring::default_provider().install_default() {
        error!(?e, "a TLS crypto provider was already installed");
    }
    Ok((Some(pgwire::tokio::TlsAcceptor::from(Arc::new(server_config))), Some(cert_pem)))
}
