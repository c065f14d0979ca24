//! Connection start-up: which database, who is connecting, and how they prove it.
//!
//! * Without a configured password Weir trusts the bootstrap user (`auth.user`) and roles
//!   without a password, and the server refuses to start on a non-loopback address in that
//!   mode (see `config.rs`). A role with a password always authenticates with it.
//! * With `auth.password` set to a SCRAM-SHA-256 verifier (`weir hash-password` makes one),
//!   every connection authenticates with SCRAM-SHA-256: the bootstrap user with that
//!   verifier, other roles with the verifier `CREATE ROLE ... PASSWORD` stored; with TLS
//!   configured, channel binding (`SCRAM-SHA-256-PLUS`) is offered too.
//! * A role must exist and have `LOGIN` (`28000` otherwise, as in Postgres; under password
//!   authentication an unknown role fails like a wrong password, `28P01`, so the error does
//!   not tell which roles exist).
//!
//! * At most `max_connections` sessions at once: one more is refused (`53300`), as in
//!   Postgres.
//! * With `tls.required = true`, a client that did not negotiate TLS is refused before
//!   authentication (`28000`), as a Postgres `hostssl`-only `pg_hba.conf` refuses it.
//!
//! Either way the connection is registered for query cancellation and gets a [`Session`].

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use futures::Sink;
use pgwire::api::auth::sasl::scram::{ScramAuth, ScramSecret};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata, AuthSource, LoginInfo,
    Password, ServerParameterProvider, StartupHandler,
};
use pgwire::api::{
    ClientInfo, ConnectionGuard, ConnectionHandle, ConnectionManager, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator, METADATA_APPLICATION_NAME, METADATA_USER,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::backends::{Backend, Identity};
use crate::engine::{Engine, PG_SERVER_VERSION};
use crate::session::Session;

pub struct WeirStartup {
    engine: Arc<Engine>,
    connections: Arc<ConnectionManager>,
    parameters: Arc<WeirParameters>,
    scram: SASLAuthStartupHandler<WeirParameters>,
    /// Whether `auth.password` is set (otherwise the bootstrap user is trusted).
    password_configured: bool,
    /// One generator for both ways in (trusted and SCRAM), so no two sessions share a pid.
    pids: Arc<RandomPidSecretKeyGenerator>,
    tls_required: bool,
    /// Sessions started and not yet ended, and how many may be.
    sessions: Arc<std::sync::atomic::AtomicUsize>,
    max_sessions: usize,
}

/// Held by a session for its life: the session count goes down when it ends.
struct CountedSession(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for CountedSession {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl WeirStartup {
    pub fn new(
        engine: Arc<Engine>,
        connections: Arc<ConnectionManager>,
        verifier: Option<ScramVerifier>,
        tls_certificate_pem: Option<Vec<u8>>,
    ) -> Result<Self, String> {
        let parameters = Arc::new(WeirParameters { roles: engine.roles.clone() });
        let password_configured = verifier.is_some();
        let mut scram_auth =
            ScramAuth::new(Arc::new(RoleSecrets { roles: engine.roles.clone(), bootstrap: verifier }));
        if let Some(pem) = &tls_certificate_pem {
            scram_auth
                .configure_certificate(pem)
                .map_err(|e| format!("TLS certificate for SCRAM channel binding: {e}"))?;
        }
        let pids = Arc::new(RandomPidSecretKeyGenerator::default());
        let scram = SASLAuthStartupHandler::new(parameters.clone())
            .with_scram(scram_auth)
            .with_pid_secret_key_generator(pids.clone())
            .with_connection_manager(connections.clone());
        Ok(Self {
            engine,
            connections,
            parameters,
            scram,
            password_configured,
            pids,
            tls_required: false,
            sessions: Arc::default(),
            max_sessions: usize::MAX,
        })
    }

    /// Refuses sessions beyond `max` at once (`53300`).
    pub fn limiting_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max;
        self
    }

    /// Refuses clients that did not negotiate TLS.
    pub fn requiring_tls(mut self, required: bool) -> Self {
        self.tls_required = required;
        self
    }
}

#[async_trait]
impl StartupHandler for WeirStartup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(startup) = &message {
            let user = startup.parameters.get(METADATA_USER).cloned().unwrap_or_else(|| "weir".into());
            let database = startup.parameters.get("database").cloned().unwrap_or_else(|| user.clone());
            if self.tls_required && !client.is_secure() {
                return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                    "FATAL".into(),
                    "28000".into(),
                    format!(
                        "connection for user \"{user}\" to database \"{database}\" refused: no encryption \
                         (this server requires TLS: connect with sslmode=require)"
                    ),
                ))));
            }
            let counted = self.sessions.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            let session = CountedSession(self.sessions.clone());
            if counted >= self.max_sessions {
                drop(session);
                return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                    "FATAL".into(),
                    "53300".into(),
                    "sorry, too many clients already".into(),
                ))));
            }
            client.session_extensions().insert(session);
            if !self.engine.database_exists(&database) {
                return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                    "FATAL".into(),
                    "3D000".into(),
                    format!("database \"{database}\" does not exist"),
                ))));
            }
            let trusted = self.trusts(&user)?;
            let mut new_session = Session::new(user, database);
            let default_idle = self.engine.config.idle_session_timeout_ms;
            if default_idle > 0 {
                new_session
                    .set_startup("idle_session_timeout", &default_idle.to_string())
                    .map_err(super::to_pgwire)?;
            }
            if let Some(name) = startup.parameters.get(METADATA_APPLICATION_NAME) {
                new_session.set_startup("application_name", name).map_err(super::to_pgwire)?;
            }
            let new_session = Mutex::new(new_session);
            super::arm_idle_timeout(&new_session, client.is_secure());
            client.session_extensions().insert(new_session);
            if !trusted {
                client.session_extensions().insert(UsesScram);
            }
        }
        if client.session_extensions().get::<UsesScram>().is_some() {
            self.scram.on_startup(client, message).await?;
            self.register_cancel(client);
            return Ok(());
        }
        if let PgWireFrontendMessage::Startup(startup) = &message {
            protocol_negotiation(client, startup).await?;
            save_startup_parameters_to_metadata(client, startup);
            let (pid, secret) = self.pids.generate(client);
            client.set_pid_and_secret_key(pid, secret.clone());
            let (handle, guard) = self.connections.register(pid, secret);
            client.session_extensions().insert::<Arc<ConnectionHandle>>(handle);
            client.session_extensions().insert::<ConnectionGuard>(guard);
            self.register_cancel(client);
            finish_authentication(client, self.parameters.as_ref()).await?;
        }
        Ok(())
    }
}

/// Marks a connection that authenticates with SCRAM (its later messages go to SCRAM).
struct UsesScram;

impl WeirStartup {
    /// Whether `user` connects without a password: only when `auth.password` is not set,
    /// for the bootstrap user and roles without a password. Refuses unknown roles and roles
    /// without `LOGIN` then; with a password configured SCRAM decides.
    fn trusts(&self, user: &str) -> PgWireResult<bool> {
        if self.password_configured {
            return Ok(false);
        }
        let roles = self.engine.roles.snapshot();
        if user == roles.bootstrap() {
            return Ok(true);
        }
        match roles.role(user) {
            None => Err(fatal("28000", format!("role \"{user}\" does not exist"))),
            Some(role) if !role.login => {
                Err(fatal("28000", format!("role \"{user}\" is not permitted to log in")))
            }
            Some(role) => Ok(role.password.is_none()),
        }
    }

    /// Registers the session (for cancel requests, `pg_cancel_backend`, `pg_stat_activity`)
    /// once its pid and secret key are known.
    fn register_cancel<C: ClientInfo>(&self, client: &C) {
        let (pid, secret) = client.pid_and_secret_key();
        if pid == 0 || client.session_extensions().get::<Arc<Backend>>().is_some() {
            return;
        }
        let session = super::session_of(client);
        let Ok(mut session) = session.lock() else { return };
        session.backend_pid = pid;
        let identity = Identity {
            user: session.user.clone(),
            database: session.database.clone(),
            client: Some(client.socket_addr()),
            application_name: session.get("application_name").unwrap_or_default().to_string(),
        };
        let (backend, registration) =
            self.engine.backends.register(pid, &secret.to_bytes(), identity, session.commit.clone());
        drop(session);
        client.session_extensions().insert::<Arc<Backend>>(backend);
        client.session_extensions().insert(registration);
    }
}

fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("FATAL".into(), code.into(), message)))
}

/// The parameters reported to clients after authentication.
pub struct WeirParameters {
    roles: Arc<crate::privileges::Roles>,
}

impl ServerParameterProvider for WeirParameters {
    fn server_parameters<C: ClientInfo>(&self, client: &C) -> Option<HashMap<String, String>> {
        let mut p = HashMap::new();
        p.insert("server_version".into(), PG_SERVER_VERSION.into());
        p.insert("server_encoding".into(), "UTF8".into());
        p.insert("client_encoding".into(), "UTF8".into());
        p.insert("DateStyle".into(), "ISO, MDY".into());
        p.insert("TimeZone".into(), "UTC".into());
        p.insert("IntervalStyle".into(), "postgres".into());
        p.insert("integer_datetimes".into(), "on".into());
        p.insert("standard_conforming_strings".into(), "on".into());
        let superuser =
            client.metadata().get(METADATA_USER).is_some_and(|user| self.roles.snapshot().is_superuser(user));
        p.insert("is_superuser".into(), if superuser { "on" } else { "off" }.into());
        p.insert("default_transaction_read_only".into(), "off".into());
        p.insert("in_hot_standby".into(), "off".into());
        p.insert(
            "application_name".into(),
            client.metadata().get(METADATA_APPLICATION_NAME).cloned().unwrap_or_default(),
        );
        if let Some(user) = client.metadata().get(METADATA_USER) {
            p.insert("session_authorization".into(), user.clone());
        }
        Some(p)
    }
}

/// A parsed Postgres-style SCRAM-SHA-256 verifier:
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64 parts).
#[derive(Debug, Clone)]
pub struct ScramVerifier {
    pub iterations: usize,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl ScramVerifier {
    pub fn parse(text: &str) -> Result<Self, String> {
        let malformed = || "expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>".to_string();
        let rest = text.strip_prefix("SCRAM-SHA-256$").ok_or_else(malformed)?;
        let (iter_salt, keys) = rest.split_once('$').ok_or_else(malformed)?;
        let (iterations, salt) = iter_salt.split_once(':').ok_or_else(malformed)?;
        let (stored, server) = keys.split_once(':').ok_or_else(malformed)?;
        let b64 = base64::engine::general_purpose::STANDARD;
        Ok(Self {
            iterations: iterations.parse().map_err(|_| malformed())?,
            salt: b64.decode(salt).map_err(|_| malformed())?,
            stored_key: b64.decode(stored).map_err(|_| malformed())?,
            server_key: b64.decode(server).map_err(|_| malformed())?,
        })
    }

    /// Derives a verifier for `password` with a fresh random salt.
    pub fn generate(password: &str, iterations: usize) -> Result<String, String> {
        let mut salt = [0u8; 16];
        use std::io::Read;
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut salt))
            .map_err(|e| format!("cannot read random salt: {e}"))?;
        let salted = pgwire::api::auth::sasl::scram::gen_salted_password(password, &salt, iterations);
        let ScramSecret::Verifier { stored_key, server_key, .. } =
            ScramSecret::verifier_from_salted_password(salt.to_vec(), salted, iterations)
        else {
            return Err("unexpected SCRAM secret kind".into());
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        Ok(format!(
            "SCRAM-SHA-256${iterations}:{}${}:{}",
            b64.encode(salt),
            b64.encode(stored_key),
            b64.encode(server_key)
        ))
    }
}

/// Where SCRAM finds a user's verifier: `auth.password` for the bootstrap user, the role
/// catalog for every other role (read at each login, so `ALTER ROLE ... PASSWORD` applies
/// to the next connection).
struct RoleSecrets {
    roles: Arc<crate::privileges::Roles>,
    bootstrap: Option<ScramVerifier>,
}

impl Debug for RoleSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleSecrets").finish_non_exhaustive()
    }
}

#[async_trait]
impl AuthSource for RoleSecrets {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        Err(PgWireError::InvalidPassword(login.user().unwrap_or_default().to_owned()))
    }

    async fn get_scram_secret(&self, login: &LoginInfo) -> PgWireResult<(ScramSecret, Option<()>)> {
        let user = login.user().unwrap_or_default();
        let roles = self.roles.snapshot();
        let failed = || PgWireError::InvalidPassword(user.to_owned());
        let verifier = if user == roles.bootstrap() {
            self.bootstrap.clone().ok_or_else(failed)?
        } else {
            let role = roles.role(user).ok_or_else(failed)?;
            if !role.login {
                return Err(fatal("28000", format!("role \"{user}\" is not permitted to log in")));
            }
            let stored = role.password.ok_or_else(failed)?;
            ScramVerifier::parse(&stored).map_err(|_| failed())?
        };
        Ok((
            ScramSecret::Verifier {
                salt: verifier.salt,
                iterations: verifier.iterations,
                stored_key: verifier.stored_key,
                server_key: verifier.server_key,
            },
            None,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_round_trip() {
        let text = ScramVerifier::generate("pencil", 4096).unwrap();
        let v = ScramVerifier::parse(&text).unwrap();
        assert_eq!(v.iterations, 4096);
        assert_eq!(v.salt.len(), 16);
        assert_eq!(v.stored_key.len(), 32);
        assert!(ScramVerifier::parse("md5abc").is_err());
    }
}
