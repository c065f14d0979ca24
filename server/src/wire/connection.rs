//! One client connection: `pgwire`'s TLS negotiation and message dispatch, with Weir's
//! [`FrameGuard`] between the decrypted stream and pgwire's decoder (why: see
//! [`super::frame_guard`]). The loop is pgwire's `process_socket` loop, which is not
//! public in a form that lets the stream be wrapped after TLS.

use std::io;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pgwire::api::{ClientInfo, PgWireConnectionState, PgWireServerHandlers};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{negotiate_tls, process_error, process_message, PgWireMessageServerCodec};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, FramedParts};

use super::frame_guard::{FrameGuard, MalformedMessage};

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
    loop {
        let starting = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup | PgWireConnectionState::AuthenticationInProgress
        );
        let next = if starting {
            tokio::select! {
                () = &mut startup_deadline => None,
                next = socket.next() => next,
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
        if let Err(e) = process_message(
            message,
            &mut socket,
            startup_handler.clone(),
            simple_query_handler.clone(),
            extended_query_handler.clone(),
            copy_handler.clone(),
            cancel_handler.clone(),
        )
        .await
        {
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
