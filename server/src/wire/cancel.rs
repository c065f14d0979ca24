//! Query cancellation.
//!
//! pgwire would drop a statement's future when a CancelRequest arrives, but rows are produced
//! later, while the result is sent, and a statement stopped half-way may have to undo what it
//! did before its client is told. So Weir keeps its own registry of sessions
//! (`crate::backends`, by pid, checked against the secret key); a cancel request stops the
//! session's statement through its commit gate (which `super::run_statement` waits on, and
//! which a statement that is writing refuses) and bumps the session's cancel generation, and
//! every result stream stops with `57014` when the generation it started under changes.
//! `pg_cancel_backend` takes the same path.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures::{Future, Stream};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::ConnectionManager;
use pgwire::messages::cancel::CancelRequest;
use tokio::sync::watch;

use crate::backends::Backends;

pub struct WeirCancelHandler {
    pub backends: Arc<Backends>,
    pub connections: Arc<ConnectionManager>,
}

#[async_trait]
impl CancelHandler for WeirCancelHandler {
    async fn on_cancel_request(&self, request: CancelRequest) {
        match self.backends.cancel_request(request.pid, &request.secret_key.to_bytes()) {
            // Writing: the statement completes and its client is told so.
            Some(false) => {
                tracing::info!(pid = request.pid, "cancel request ignored: the statement is writing")
            }
            // Weir's own signal stops the statement (and waits for its undo, see
            // `super::run_statement`) and its rows.
            Some(true) => tracing::info!(pid = request.pid, "cancel request"),
            // A session Weir did not register: pgwire's signal stops its statement.
            None => {
                let found = self.connections.cancel(request.pid, &request.secret_key).await;
                tracing::info!(pid = request.pid, found, "cancel request");
            }
        }
    }
}

/// Ends `inner` with an error item once the session is cancelled, or once its statement's
/// `statement_timeout` passes ([`Cancellable::with_deadline`]).
pub struct Cancellable<S> {
    inner: S,
    cancelled: Pin<Box<dyn Future<Output = ()> + Send>>,
    deadline: Option<Arc<StatementDeadline>>,
    /// The timer armed for the deadline last read from `deadline`.
    timer: Option<(tokio::time::Instant, Pin<Box<tokio::time::Sleep>>)>,
    done: bool,
}

/// When the session's statement must end under `statement_timeout`, shared by the session's
/// result streams. PostgreSQL counts the timeout from each Execute message of the extended
/// protocol, so a portal resumed after `PortalSuspended` gets a new deadline
/// (`super::portal_execute`); a stream reads the deadline each time it is polled, which is
/// only while its statement or Execute runs.
#[derive(Debug, Default)]
pub struct StatementDeadline(Mutex<Option<tokio::time::Instant>>);

impl StatementDeadline {
    /// Sets the deadline of the statement (or Execute) that starts now; `None`: no timeout.
    pub fn set(&self, deadline: Option<tokio::time::Instant>) {
        if let Ok(mut d) = self.0.lock() {
            *d = deadline;
        }
    }

    fn get(&self) -> Option<tokio::time::Instant> {
        self.0.lock().ok().and_then(|d| *d)
    }
}

impl<S> Cancellable<S> {
    pub fn new(inner: S, mut receiver: watch::Receiver<u64>) -> Self {
        receiver.mark_unchanged();
        let cancelled = Box::pin(async move {
            if receiver.changed().await.is_err() {
                // The session is gone; never fire.
                futures::future::pending::<()>().await;
            }
        });
        Self { inner, cancelled, deadline: None, timer: None, done: false }
    }

    /// A stream that only ends at its statement's deadline (a session without a cancel
    /// signal).
    pub fn never_cancelled(inner: S) -> Self {
        Self {
            inner,
            cancelled: Box::pin(futures::future::pending()),
            deadline: None,
            timer: None,
            done: false,
        }
    }

    /// Also ends the stream with `57014` when the session's statement deadline passes.
    pub fn with_deadline(mut self, deadline: Arc<StatementDeadline>) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Whether the current statement deadline has passed (re-arming the timer when the
    /// deadline moved, so the task is woken when the new one passes).
    fn timed_out(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(at) = self.deadline.as_ref().and_then(|d| d.get()) else { return false };
        if !matches!(&self.timer, Some((armed, _)) if *armed == at) {
            self.timer = Some((at, Box::pin(tokio::time::sleep_until(at))));
        }
        self.timer.as_mut().is_some_and(|(_, sleep)| sleep.as_mut().poll(cx).is_ready())
    }
}

impl<S, T> Stream for Cancellable<S>
where
    S: Stream<Item = pgwire::error::PgWireResult<T>> + Unpin,
{
    type Item = pgwire::error::PgWireResult<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let reason = if self.cancelled.as_mut().poll(cx).is_ready() {
            Some("canceling statement due to user request")
        } else if self.timed_out(cx) {
            Some("canceling statement due to statement timeout")
        } else {
            None
        };
        if let Some(reason) = reason {
            self.done = true;
            return Poll::Ready(Some(Err(super::errors::to_pgwire(weir_planner::SqlError::new(
                weir_planner::sqlstate::QUERY_CANCELED,
                reason,
            )))));
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}
