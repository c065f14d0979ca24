//! `idle_session_timeout`, as in PostgreSQL 15: a session that waits for its client's next
//! message longer than the timeout is ended with FATAL `57P05` and its slot is freed.
//!
//! `pgwire` owns the socket loop and never hands it back while it waits for a message, so
//! the timer lives outside it: [`serve`] runs a connection's whole message loop inside a
//! task-local [`IdleClock`]. The handlers (which run in that same task) mark the session busy
//! while they work and while pgwire still sends a statement's rows ([`Busy`]), and tell the
//! clock the session's current timeout. When the clock expires, [`serve`] drops the message
//! loop (releasing the session, its `max_connections` slot and its cancel registration) and
//! writes the FATAL ErrorResponse on a duplicate of the TCP socket. Over TLS the bytes would
//! have to be encrypted by the session's TLS state, which pgwire keeps to itself, so a TLS
//! client sees the connection closed without the message.

use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::info;

/// Which timeout applies: outside a transaction block `idle_session_timeout`, inside one
/// `idle_in_transaction_session_timeout` (each with PostgreSQL's SQLSTATE and message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleKind {
    Session,
    InTransaction,
}

impl IdleKind {
    fn code(self) -> &'static str {
        match self {
            IdleKind::Session => "57P05",
            IdleKind::InTransaction => "25P03",
        }
    }

    fn message(self) -> &'static str {
        match self {
            IdleKind::Session => "terminating connection due to idle-session timeout",
            IdleKind::InTransaction => "terminating connection due to idle-in-transaction timeout",
        }
    }
}

tokio::task_local! {
    static CLOCK: Arc<IdleClock>;
}

/// How long a connection has been waiting for its client, and how long it may.
#[derive(Debug)]
pub struct IdleClock {
    state: Mutex<ClockState>,
    changed: Notify,
}

#[derive(Debug)]
struct ClockState {
    /// Handlers and row streams at work; the session is idle at 0.
    busy: usize,
    idle_since: Instant,
    timeout_ms: u64,
    kind: IdleKind,
    /// The client negotiated TLS (then the FATAL cannot be written in plain text).
    secure: bool,
}

impl Default for IdleClock {
    fn default() -> Self {
        Self {
            state: Mutex::new(ClockState {
                busy: 0,
                idle_since: Instant::now(),
                timeout_ms: 0,
                kind: IdleKind::Session,
                secure: false,
            }),
            changed: Notify::new(),
        }
    }
}

impl IdleClock {
    fn update(&self, f: impl FnOnce(&mut ClockState)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
        }
        self.changed.notify_one();
    }

    /// When the session has been idle past its timeout; pending while it is busy or has none.
    async fn expired(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            // A poisoned clock never expires.
            let deadline = self
                .state
                .lock()
                .ok()
                .filter(|s| s.busy == 0 && s.timeout_ms > 0)
                .map(|s| s.idle_since + Duration::from_millis(s.timeout_ms));
            match deadline {
                None => changed.await,
                Some(deadline) if Instant::now() >= deadline => return,
                Some(deadline) => {
                    tokio::select! {
                        () = &mut changed => {}
                        () = tokio::time::sleep_until(deadline) => {}
                    }
                }
            }
        }
    }

    fn secure(&self) -> bool {
        self.state.lock().map(|s| s.secure).unwrap_or(true)
    }
}

/// Marks the connection busy until dropped (a handler at work, or rows still being sent).
pub struct Busy(Option<Arc<IdleClock>>);

impl Busy {
    pub fn new() -> Self {
        let clock = CLOCK.try_with(Arc::clone).ok();
        if let Some(clock) = &clock {
            clock.update(|s| s.busy += 1);
        }
        Busy(clock)
    }
}

impl Default for Busy {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(clock) = &self.0 {
            clock.update(|s| {
                s.busy = s.busy.saturating_sub(1);
                s.idle_since = Instant::now();
            });
        }
    }
}

/// Tells the connection's clock the session's `idle_session_timeout` and whether the client
/// uses TLS (no-op outside [`serve`]).
pub fn set_timeout(timeout_ms: u64, kind: IdleKind, secure: bool) {
    let _ = CLOCK.try_with(|clock| {
        clock.update(|s| {
            s.timeout_ms = timeout_ms;
            s.kind = kind;
            s.secure = secure;
        })
    });
}

/// Runs a connection's message loop; ends it with FATAL `57P05` once it is idle too long.
/// `raw` is a duplicate of the connection's TCP socket to write that message on.
pub async fn serve<F>(connection: F, raw: Option<std::net::TcpStream>) -> std::io::Result<()>
where
    F: Future<Output = std::io::Result<()>>,
{
    let clock = Arc::new(IdleClock::default());
    let served = Box::pin(CLOCK.scope(clock.clone(), connection));
    let mut served = served;
    tokio::select! {
        result = &mut served => return result,
        () = clock.expired() => {}
    }
    // Ends the session first: its slot, cancel key and state go with the message loop.
    drop(served);
    let (timeout_ms, kind) =
        clock.state.lock().map(|s| (s.timeout_ms, s.kind)).unwrap_or((0, IdleKind::Session));
    info!(timeout_ms, ?kind, "{}", kind.message());
    if let Some(mut raw) = raw.filter(|_| !clock.secure()) {
        // The socket is idle and in non-blocking mode: a short message fits its buffer.
        let _ = raw.write_all(&fatal_error_response(kind));
        let _ = raw.shutdown(std::net::Shutdown::Both);
    }
    Ok(())
}

/// The ErrorResponse ('E') PostgreSQL sends: severity, code and message fields.
fn fatal_error_response(kind: IdleKind) -> Vec<u8> {
    let mut fields = Vec::new();
    for (tag, value) in [(b'S', "FATAL"), (b'V', "FATAL"), (b'C', kind.code()), (b'M', kind.message())] {
        fields.push(tag);
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut message = vec![b'E'];
    message.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
    message.extend_from_slice(&fields);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatal_message_is_a_well_formed_error_response() {
        let m = fatal_error_response(IdleKind::Session);
        assert_eq!(m[0], b'E');
        let len = u32::from_be_bytes([m[1], m[2], m[3], m[4]]) as usize;
        assert_eq!(len + 1, m.len());
        let text = String::from_utf8_lossy(&m[5..]);
        assert!(text.contains("C57P05\0"), "{text}");
    }

    #[tokio::test]
    async fn a_busy_session_never_expires_an_idle_one_does() {
        let clock = Arc::new(IdleClock::default());
        let c = clock.clone();
        CLOCK
            .scope(clock.clone(), async move {
                set_timeout(100, IdleKind::Session, false);
                let busy = Busy::new();
                let expired = tokio::time::timeout(Duration::from_millis(300), c.expired()).await;
                assert!(expired.is_err(), "busy sessions are not idle");
                drop(busy);
                let expired = tokio::time::timeout(Duration::from_millis(1000), c.expired()).await;
                assert!(expired.is_ok(), "idle past the timeout");
            })
            .await;
    }
}
