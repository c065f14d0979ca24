//! The server's sessions, as Postgres calls them "backends": who is connected, what each is
//! doing, and how one session stops another's statement or ends it.
//!
//! Every session that finished start-up is registered here under the process id the server
//! sent it in `BackendKeyData`. That one number is what `pg_backend_pid()` returns, what
//! `pg_stat_activity.pid` shows, what a protocol CancelRequest (psql's Ctrl-C) names together
//! with its secret key, and what `pg_cancel_backend(pid)` / `pg_terminate_backend(pid)` take;
//! so all of them address the same session.
//!
//! * **Cancel** (a CancelRequest with the right secret key, or `pg_cancel_backend` by a role
//!   allowed to) goes through the session's commit gate (`commit_gate`), the one atomic cancel
//!   path: a statement that has not started writing stops with `57014` and writes nothing
//!   (a view it was creating is undone first); one that is writing finishes and says so.
//! * **Terminate** (`pg_terminate_backend`) asks the session's connection to end: it stops
//!   the running statement through the same gate (or lets a write in progress finish), then
//!   sends FATAL `57P01` and closes the connection (`wire::connection`).
//! * **Activity**: each session records its state (`active`, `idle`, `idle in transaction`),
//!   its current or last statement and when it started, for `pg_stat_activity`.
//!
//! Permissions are Postgres 15's (`may_signal`): a superuser may signal anyone; others only
//! sessions of roles they are members of (their own included), or any non-superuser session
//! as members of `pg_signal_backend`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use weir_planner::{sqlstate, SqlError, SqlResult};

use crate::commit_gate::CommitGate;
use crate::privileges::{PrivilegeCatalog, SIGNAL_BACKEND};

/// Every registered session, by process id.
#[derive(Default)]
pub struct Backends {
    sessions: Mutex<HashMap<i32, Arc<Backend>>>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sessions = self.sessions.lock().map(|s| s.len()).unwrap_or_default();
        f.debug_struct("Backends").field("sessions", &sessions).finish()
    }
}

/// What a session is doing, as `pg_stat_activity.state` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Active,
    Idle,
    IdleInTransaction,
    /// A statement failed inside a transaction block.
    IdleInTransactionAborted,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Idle => "idle",
            State::IdleInTransaction => "idle in transaction",
            State::IdleInTransactionAborted => "idle in transaction (aborted)",
        }
    }
}

/// A session's current activity.
#[derive(Debug, Clone)]
pub struct Activity {
    pub state: State,
    /// The running statement's text, or the last one's when idle (empty before the first).
    pub query: String,
    pub query_start: Option<SystemTime>,
    pub state_change: SystemTime,
    /// When the current transaction (block, or single statement) started.
    pub xact_start: Option<SystemTime>,
    pub application_name: String,
}

/// Who a session is, known when it registers.
pub struct Identity {
    pub user: String,
    pub database: String,
    /// The client's address and port; `None` for a connection without one.
    pub client: Option<SocketAddr>,
    pub application_name: String,
}

/// One registered session.
pub struct Backend {
    pub pid: i32,
    secret: Vec<u8>,
    pub user: String,
    pub database: String,
    pub client: Option<SocketAddr>,
    pub backend_start: SystemTime,
    activity: Mutex<Activity>,
    /// Bumped by each cancel; the session's result streams stop with `57014` when it moves.
    cancel_generation: watch::Sender<u64>,
    /// Whether the running statement may be stopped (see `commit_gate`).
    commit: Arc<CommitGate>,
    /// Set once the session was asked to terminate.
    terminate: watch::Sender<bool>,
    /// Set (and waiters woken) when the session has ended.
    ended: (Mutex<bool>, Condvar),
}

/// Which signal a function sends, with Postgres' wording for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Cancel,
    Terminate,
}

/// Whether a signal reached a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signalled {
    Sent,
    /// No session has this pid (Postgres warns "PID n is not a PostgreSQL backend process").
    NoSuchBackend,
}

/// Removes a session from the registry when its connection ends, and wakes those waiting
/// for it to end (`pg_terminate_backend(pid, timeout)`).
pub struct Registration {
    backends: Arc<Backends>,
    backend: Arc<Backend>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut sessions) = self.backends.sessions.lock() {
            sessions.remove(&self.backend.pid);
        }
        let (ended, woken) = &self.backend.ended;
        match ended.lock() {
            Ok(mut e) => *e = true,
            Err(poisoned) => *poisoned.into_inner() = true,
        }
        woken.notify_all();
        tracing::debug!(pid = self.backend.pid, "session ended");
    }
}

impl Backends {
    /// Registers a session that finished start-up under the `pid` and `secret` key sent to
    /// its client.
    pub fn register(
        self: &Arc<Self>,
        pid: i32,
        secret: &[u8],
        identity: Identity,
        commit: Arc<CommitGate>,
    ) -> (Arc<Backend>, Registration) {
        let now = SystemTime::now();
        let backend = Arc::new(Backend {
            pid,
            secret: secret.to_vec(),
            user: identity.user,
            database: identity.database,
            client: identity.client,
            backend_start: now,
            activity: Mutex::new(Activity {
                state: State::Idle,
                query: String::new(),
                query_start: None,
                state_change: now,
                xact_start: None,
                application_name: identity.application_name,
            }),
            cancel_generation: watch::channel(0).0,
            commit,
            terminate: watch::channel(false).0,
            ended: (Mutex::new(false), Condvar::new()),
        });
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.insert(pid, backend.clone());
        }
        tracing::debug!(pid, user = %backend.user, "session registered");
        (backend.clone(), Registration { backends: self.clone(), backend })
    }

    pub fn get(&self, pid: i32) -> Option<Arc<Backend>> {
        self.sessions.lock().ok().and_then(|s| s.get(&pid).cloned())
    }

    /// Every session, in pid order.
    pub fn all(&self) -> Vec<Arc<Backend>> {
        let mut all: Vec<_> = self.sessions.lock().map(|s| s.values().cloned().collect()).unwrap_or_default();
        all.sort_by_key(|b| b.pid);
        all
    }

    /// A protocol CancelRequest: cancels the statement of the session with this pid and
    /// secret key. `None` if there is none, `Some(false)` if its statement is writing and is
    /// left to finish.
    pub fn cancel_request(&self, pid: i32, secret: &[u8]) -> Option<bool> {
        let backend = self.get(pid).filter(|b| b.secret == secret)?;
        Some(backend.cancel())
    }

    /// `pg_cancel_backend` / `pg_terminate_backend` by role `me`: `42501` unless `me` may
    /// signal the session (see [`may_signal`]).
    pub fn signal(
        &self,
        pid: i32,
        signal: Signal,
        me: &str,
        privileges: &PrivilegeCatalog,
    ) -> SqlResult<Signalled> {
        let Some(backend) = self.get(pid) else { return Ok(Signalled::NoSuchBackend) };
        may_signal(privileges, me, &backend.user, signal)?;
        match signal {
            Signal::Cancel => {
                let stopped = backend.cancel();
                tracing::info!(pid, by = %me, stopped, "pg_cancel_backend");
            }
            Signal::Terminate => {
                backend.request_termination();
                tracing::info!(pid, by = %me, "pg_terminate_backend");
            }
        }
        Ok(Signalled::Sent)
    }
}

/// Postgres 15's rule (`pg_signal_backend` in signalfuncs.c): only a superuser signals a
/// superuser's session; otherwise a member of the session's role, or of `pg_signal_backend`.
pub fn may_signal(privileges: &PrivilegeCatalog, me: &str, target: &str, signal: Signal) -> SqlResult<()> {
    let superuser = privileges.is_superuser(me);
    if privileges.is_superuser(target) && !superuser {
        return Err(SqlError::new(
            sqlstate::INSUFFICIENT_PRIVILEGE,
            match signal {
                Signal::Cancel => "must be a superuser to cancel superuser query",
                Signal::Terminate => "must be a superuser to terminate superuser process",
            },
        ));
    }
    if superuser || privileges.is_member_of(me, target) || privileges.is_member_of(me, SIGNAL_BACKEND) {
        return Ok(());
    }
    Err(SqlError::new(
        sqlstate::INSUFFICIENT_PRIVILEGE,
        match signal {
            Signal::Cancel => {
                "must be a member of the role whose query is being canceled or member of pg_signal_backend"
            }
            Signal::Terminate => {
                "must be a member of the role whose process is being terminated or member of pg_signal_backend"
            }
        },
    ))
}

/// Whether role `me` may see what a session of role `target` is doing (`pg_stat_activity`
/// shows others `<insufficient privilege>`): a superuser, a member of the role, or of
/// `pg_read_all_stats`.
pub fn may_see_activity(privileges: &PrivilegeCatalog, me: &str, target: &str) -> bool {
    privileges.is_superuser(me)
        || privileges.is_member_of(me, target)
        || privileges.is_member_of(me, crate::privileges::READ_ALL_STATS)
}

impl Backend {
    /// The session's cancel signal, for its result streams.
    pub fn subscribe_cancel(&self) -> watch::Receiver<u64> {
        self.cancel_generation.subscribe()
    }

    /// Cancels the running statement through the commit gate: `false` if it is writing and
    /// is left to finish.
    pub fn cancel(&self) -> bool {
        if !self.commit.try_cancel() {
            return false;
        }
        self.cancel_generation.send_modify(|g| *g = g.wrapping_add(1));
        true
    }

    /// The session's commit gate.
    pub fn commit(&self) -> &Arc<CommitGate> {
        &self.commit
    }

    /// Asks the session's connection to end (`pg_terminate_backend`).
    pub fn request_termination(&self) {
        self.terminate.send_replace(true);
    }

    /// Returns once the session was asked to terminate.
    pub async fn termination_requested(&self) {
        let mut receiver = self.terminate.subscribe();
        // The sender lives as long as `self`, so this only ends when it is set.
        let _ = receiver.wait_for(|requested| *requested).await;
    }

    /// Waits up to `timeout` for the session to end; whether it did. Blocks the calling
    /// thread (a system function's body is synchronous).
    pub fn wait_ended(&self, timeout: Duration) -> bool {
        let (ended, woken) = &self.ended;
        let Ok(guard) = ended.lock() else { return false };
        match woken.wait_timeout_while(guard, timeout, |ended| !*ended) {
            Ok((guard, _)) => *guard,
            Err(_) => false,
        }
    }

    pub fn activity(&self) -> Option<Activity> {
        self.activity.lock().ok().map(|a| a.clone())
    }

    /// A statement starts: the session is active with `query`.
    pub fn statement_started(&self, query: &str, application_name: &str) {
        if let Ok(mut a) = self.activity.lock() {
            let now = SystemTime::now();
            a.state = State::Active;
            a.query = query.to_string();
            a.query_start = Some(now);
            a.state_change = now;
            a.xact_start.get_or_insert(now);
            a.application_name = application_name.to_string();
        }
    }

    /// The statement ended; the session is now in `state` (idle, or in a block).
    pub fn statement_ended(&self, state: State, application_name: &str) {
        if let Ok(mut a) = self.activity.lock() {
            a.state = state;
            a.state_change = SystemTime::now();
            if state == State::Idle {
                a.xact_start = None;
            }
            a.application_name = application_name.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privileges::Role;

    fn role(name: &str) -> Role {
        Role { oid: 0, name: name.into(), superuser: false, login: true, create_role: false, password: None }
    }

    fn catalog() -> PrivilegeCatalog {
        let mut c = PrivilegeCatalog::empty("weir");
        for name in ["alice", "bob", "signaller"] {
            c.create_role(role(name)).expect("create role");
        }
        c.grant_membership(SIGNAL_BACKEND, "signaller").expect("grant");
        c
    }

    fn identity(user: &str) -> Identity {
        Identity { user: user.into(), database: "weir".into(), client: None, application_name: String::new() }
    }

    #[test]
    fn only_superusers_members_and_pg_signal_backend_may_signal() {
        let c = catalog();
        let code = |r: SqlResult<()>| r.err().map(|e| e.code);
        assert_eq!(code(may_signal(&c, "alice", "alice", Signal::Cancel)), None);
        assert_eq!(code(may_signal(&c, "weir", "alice", Signal::Terminate)), None);
        assert_eq!(code(may_signal(&c, "signaller", "alice", Signal::Cancel)), None);
        assert_eq!(code(may_signal(&c, "bob", "alice", Signal::Cancel)), Some("42501"));
        let superuser = may_signal(&c, "signaller", "weir", Signal::Terminate).err().map(|e| e.message);
        assert_eq!(superuser.as_deref(), Some("must be a superuser to terminate superuser process"));
        assert!(may_see_activity(&c, "weir", "alice") && !may_see_activity(&c, "bob", "alice"));
    }

    #[test]
    fn a_cancel_request_needs_the_secret_key_and_a_session_ends_when_unregistered() {
        let backends = Arc::new(Backends::default());
        let gate = Arc::new(CommitGate::default());
        let (backend, registration) = backends.register(7, b"key", identity("alice"), gate.clone());
        let mut generation = backend.subscribe_cancel();
        assert_eq!(backends.cancel_request(7, b"wrong"), None);
        assert_eq!(backends.cancel_request(7, b"key"), Some(true));
        assert!(gate.is_cancelled() && generation.has_changed().unwrap_or(false));
        generation.mark_unchanged();
        let c = catalog();
        assert_eq!(backends.signal(8, Signal::Cancel, "weir", &c).ok(), Some(Signalled::NoSuchBackend));
        assert_eq!(backends.signal(7, Signal::Terminate, "bob", &c).err().map(|e| e.code), Some("42501"));
        assert_eq!(backends.signal(7, Signal::Terminate, "alice", &c).ok(), Some(Signalled::Sent));
        assert!(!backend.wait_ended(Duration::from_millis(10)));
        drop(registration);
        assert!(backend.wait_ended(Duration::from_millis(10)));
        assert!(backends.get(7).is_none());
    }
}
