//! One client connection: `pgwire`'s TLS negotiation and message dispatch, with Weir's
//! [`FrameGuard`] between the decrypted stream and pgwire's decoder (why: see
//! [`super::frame_guard`]). The loop is pgwire's `process_socket` loop, which is not
//! public in a form that lets the stream be wrapped after TLS, plus `pg_terminate_backend`:
//! a session asked to terminate ends with FATAL `57P01`, whether it waits for its client or
//! runs a statement (stopped as a cancel stops it; see `crate::backends`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pgwire::api::{ClientInfo, PgWireConnectionState, PgWireServerHandlers};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{negotiate_tls, process_error, process_message, PgWireMessageServerCodec};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, FramedParts};

use super::frame_guard::{FrameGuard, MalformedMessage};
use crate::backends::Backend;

/// A client must finish start-up and authentication within this time (pgwire's limit).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves one client until it disconnects. `sasl`: the server authenticates with SCRAM.
pub async fn serve<H: PgWireServerHandlers>(
    socket: TcpStream,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    handlers: H,
    sasl: bool,
) -> io::Result<()> {
    let startup_deadline = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(startup_deadline);
    let negotiated = tokio::select! {
        () = &mut startup_deadline => return Ok(()),
        negotiated = negotiate_tls(socket, tls) => negotiated?,
    };
    // A direct TLS connection to a server without TLS.
    let Some(negotiated) = negotiated else { return Ok(()) };
    let parts = negotiated.into_parts();
    let guarded = FrameGuard::new(parts.io, parts.read_buf, sasl);
    let mut new_parts = FramedParts::new(guarded, parts.codec);
    new_parts.write_buf = parts.write_buf;
    let mut socket: Framed<_, PgWireMessageServerCodec<_>> = Framed::from_parts(new_parts);

    let startup_handler = handlers.startup_handler();
    let simple_query_handler = handlers.simple_query_handler();
    let extended_query_handler = handlers.extended_query_handler();
    let copy_handler = handlers.copy_handler();
    let cancel_handler = handlers.cancel_handler();
    // The session's registry entry, once start-up registered it (for `pg_terminate_backend`).
    let mut backend: Option<Arc<Backend>> = None;
    loop {
        if backend.is_none() {
            backend = socket.session_extensions().get::<Arc<Backend>>().map(|b| b.as_ref().clone());
        }
        let starting = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup | PgWireConnectionState::AuthenticationInProgress
        );
        let next = if starting {
            tokio::select! {
                () = &mut startup_deadline => None,
                next = socket.next() => next,
            }
        } else if let Some(backend) = &backend {
            tokio::select! {
                next = socket.next() => next,
                () = backend.termination_requested() => {
                    terminate(&mut socket, backend).await;
                    break;
                }
            }
        } else {
            socket.next().await
        };
        let message = match next {
            Some(Ok(message)) => message,
            Some(Err(e)) => {
                refuse(&mut socket, e).await;
                break;
            }
            None => break,
        };
        // Terminate closes the connection; a cancel request's connection carries nothing else.
        if matches!(message, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        let is_cancel = matches!(message, PgWireFrontendMessage::CancelRequest(_));
        let extended = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => message.is_extended_query(),
        };
        let processing = process_message(
            message,
            &mut socket,
            startup_handler.clone(),
            simple_query_handler.clone(),
            extended_query_handler.clone(),
            copy_handler.clone(),
            cancel_handler.clone(),
        );
        let processed = match &backend {
            Some(backend) => unless_terminated(processing, backend).await,
            None => Some(processing.await),
        };
        let Some(processed) = processed else {
            if let Some(backend) = &backend {
                terminate(&mut socket, backend).await;
            }
            break;
        };
        if let Err(e) = processed {
            let fatal = e.is_fatal();
            process_error(&mut socket, e, extended).await?;
            if fatal {
                break;
            }
        }
        if !matches!(socket.state(), PgWireConnectionState::CopyInProgress(_)) {
            super::end_abandoned_copy(&socket).await;
        }
        if is_cancel {
            break;
        }
    }
    Ok(())
}

/// Handles a message unless the session is asked to terminate first (`pg_terminate_backend`):
/// then its statement is stopped through the commit gate, as a cancel would stop it, and
/// `None` is returned (the statement's future is dropped). A statement that is writing is
/// left to finish, and its client is told how it ended, before the session ends.
async fn unless_terminated<F: std::future::Future>(processing: F, backend: &Backend) -> Option<F::Output> {
    tokio::pin!(processing);
    tokio::select! {
        processed = &mut processing => return Some(processed),
        () = backend.termination_requested() => {}
    }
    loop {
        if backend.commit().try_cancel() {
            return None;
        }
        tokio::select! {
            processed = &mut processing => return Some(processed),
            () = backend.commit().wait_not_writing() => {}
        }
    }
}

/// Ends a session asked to terminate, as Postgres does: whatever its stopped statement
/// must undo (a view it was creating, a COPY in progress) is undone, then FATAL `57P01`.
async fn terminate<S>(socket: &mut S, backend: &Backend)
where
    S: ClientInfo + futures::Sink<PgWireBackendMessage> + Unpin,
{
    // The statement stopped through the gate; a session idle between statements has
    // nothing to stop, and the next statement would start afresh.
    backend.commit().try_cancel();
    backend.commit().undone().await;
    super::end_abandoned_copy(socket).await;
    tracing::info!(pid = backend.pid, "terminating connection due to administrator command");
    let info = ErrorInfo::new(
        "FATAL".into(),
        "57P01".into(),
        "terminating connection due to administrator command".into(),
    );
    let _ = socket.send(PgWireBackendMessage::ErrorResponse(info.into())).await;
}

/// A malformed message ends the session with `08P01`, as in PostgreSQL; a read error (the
/// client went away) just ends it.
async fn refuse<S>(socket: &mut S, error: PgWireError)
where
    S: futures::Sink<PgWireBackendMessage> + Unpin,
{
    let message = match &error {
        PgWireError::IoError(io) => match io.get_ref().and_then(|e| e.downcast_ref::<MalformedMessage>()) {
            Some(malformed) => malformed.to_string(),
            None => return,
        },
        other => format!("invalid frontend message: {other}"),
    };
    tracing::debug!(%message, "closing a connection that sent a malformed message");
    let info = ErrorInfo::new("FATAL".into(), "08P01".into(), message);
    let _ = socket.send(PgWireBackendMessage::ErrorResponse(info.into())).await;
}
