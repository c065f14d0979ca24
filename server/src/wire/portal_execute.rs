//! `Execute` in the extended query protocol, with a portal's rows streamed to the client.
//!
//! pgwire 0.42's default `on_execute` runs the statement, then `Portal::fetch` collects up to
//! the Execute's row limit, and *all* rows when there is none (what every driver asks for
//! outside a cursor), into a vector before sending the first. A large `SELECT` through
//! psycopg, JDBC or tokio-postgres then held its whole encoded result in the server's memory.
//!
//! Here the rows go to the client as the query produces them: each `DataRow` is fed to the
//! connection's sink, which writes to the socket whenever its buffer fills, so a slow client
//! back-pressures the query and memory stays bounded by a batch. The row limit of `Execute`
//! is honoured as in Postgres: after `max_rows` rows the portal keeps its stream and answers
//! `PortalSuspended`; the next Execute of the same portal continues where it stopped, and the
//! one that reaches the end answers `CommandComplete` with the rows it sent. A portal that has
//! completed answers `SELECT 0` again.
//!
//! `statement_timeout` counts from each Execute, as in Postgres (the deadline shared by the
//! session's streams is moved when a suspended portal is resumed); a cancel request or the
//! timeout ends the stream with `57014`, and the portal is finished.
//!
//! Everything but the row loop mirrors pgwire's `_on_execute`, which offers no hook for it.

use std::fmt::Debug;
use std::ops::DerefMut;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{select, Either};
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::portal::{Portal, PortalExecutionState};
use pgwire::api::query::{send_execution_response, ExtendedQueryHandler};
use pgwire::api::results::{Response, Tag};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{
    copy, ClientInfo, ClientPortalStore, ConnectionHandle, PgWireConnectionState, DEFAULT_NAME,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::extendedquery::{Execute, PortalSuspended};
use pgwire::messages::response::EmptyQueryResponse;
use pgwire::messages::PgWireBackendMessage;
use tracing::debug;

use super::{deadline_of, session_of, Prepared, QueryHandler};

/// Runs (or resumes) the portal named by `message` and sends its rows.
pub async fn execute<C>(handler: &QueryHandler, client: &mut C, message: Execute) -> PgWireResult<()>
where
    C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::PortalStore: PortalStore<Statement = Arc<Prepared>>,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
        return Err(PgWireError::NotReadyForQuery);
    }
    let mut transaction_status = client.transaction_status();
    client.set_state(PgWireConnectionState::QueryInProgress);

    let portal_name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
    // Zero or negative: no limit (Postgres treats both so).
    let max_rows = usize::try_from(message.max_rows).unwrap_or(0);
    let portal = match client.portal_store().get_portal(portal_name) {
        Some(Entry::Value(portal)) => portal,
        Some(Entry::Empty) => {
            client.feed(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new())).await?;
            client.set_state(PgWireConnectionState::ReadyForQuery);
            return Ok(());
        }
        None => return Err(PgWireError::PortalNotFound(portal_name.to_owned())),
    };

    let not_started = matches!(*portal.state().lock().await, PortalExecutionState::Initial);
    let has_rows = if not_started {
        match run(handler, client, &portal, max_rows).await? {
            Response::Query(results) => {
                portal.start(results).await;
                true
            }
            Response::EmptyQuery => {
                client.feed(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new())).await?;
                false
            }
            Response::Execution(tag) => {
                send_execution_response(client, tag).await?;
                false
            }
            Response::TransactionStart(tag) => {
                send_execution_response(client, tag).await?;
                transaction_status = transaction_status.to_in_transaction_state();
                false
            }
            Response::TransactionEnd(tag) => {
                send_execution_response(client, tag).await?;
                transaction_status = transaction_status.to_idle_state();
                client.portal_store().rm_portal(DEFAULT_NAME);
                false
            }
            Response::Error(err) => {
                client.send(PgWireBackendMessage::ErrorResponse((*err).into())).await?;
                transaction_status = transaction_status.to_error_state();
                false
            }
            Response::CopyIn(result) => {
                client.set_state(PgWireConnectionState::CopyInProgress(true));
                copy::send_copy_in_response(client, result).await?;
                false
            }
            Response::CopyOut(result) => {
                copy::send_copy_out_response(client, result).await?;
                false
            }
            Response::CopyBoth(result) => {
                client.set_state(PgWireConnectionState::CopyInProgress(true));
                copy::send_copy_both_response(client, result).await?;
                false
            }
        }
    } else {
        restart_statement_timeout(client);
        true
    };

    if has_rows {
        send_rows(client, &portal, max_rows).await?;
    }
    if !matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) {
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(transaction_status);
    }
    Ok(())
}

/// Runs the portal's statement; a cancel request stops it while it plans (pgwire's signal;
/// Weir's own stops the rows later, see `super::cancel`).
async fn run<C>(
    handler: &QueryHandler,
    client: &mut C,
    portal: &Portal<Arc<Prepared>>,
    max_rows: usize,
) -> PgWireResult<Response>
where
    C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::PortalStore: PortalStore<Statement = Arc<Prepared>>,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let connection = client.session_extensions().get::<Arc<ConnectionHandle>>();
    match connection {
        Some(connection) => {
            let cancelled = connection.start_query().await;
            let query = std::pin::pin!(handler.do_query(client, portal, max_rows));
            match select(query, cancelled).await {
                Either::Left((result, _)) => result,
                Either::Right(_) => Err(PgWireError::QueryCanceled),
            }
        }
        None => handler.do_query(client, portal, max_rows).await,
    }
}

/// A resumed portal's rows get the whole `statement_timeout` again, counted from now.
fn restart_statement_timeout<C: ClientInfo + ?Sized>(client: &C) {
    let timeout_ms = session_of(client).lock().map(|s| s.statement_timeout_ms()).unwrap_or(0);
    let deadline = (timeout_ms > 0).then(|| tokio::time::Instant::now() + Duration::from_millis(timeout_ms));
    deadline_of(client).set(deadline);
}

/// Sends up to `max_rows` rows (0: all) of a started portal as they come, then
/// `PortalSuspended` if rows remain or `CommandComplete` if the portal reached its end. An
/// error (a failed batch, a cancel, the timeout) finishes the portal.
async fn send_rows<C>(client: &mut C, portal: &Portal<Arc<Prepared>>, max_rows: usize) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let state = portal.state();
    let mut state = state.lock().await;
    let response = match state.deref_mut() {
        PortalExecutionState::Suspended(response) => response,
        PortalExecutionState::Finished => {
            client
                .send(PgWireBackendMessage::CommandComplete(Tag::new("SELECT").with_rows(0).into()))
                .await?;
            return Ok(());
        }
        PortalExecutionState::Initial => return Err(PgWireError::PortalNotStarted),
    };
    let tag = response.command_tag().to_owned();
    let mut sent = 0usize;
    let mut suspended = true;
    while max_rows == 0 || sent < max_rows {
        match response.data_rows().next().await {
            Some(Ok(row)) => {
                client.feed(PgWireBackendMessage::DataRow(row)).await?;
                sent += 1;
            }
            Some(Err(e)) => {
                *state = PortalExecutionState::Finished;
                return Err(e);
            }
            None => {
                suspended = false;
                break;
            }
        }
    }
    if suspended {
        debug!(portal = %portal.name, rows = sent, "portal suspended");
        client.send(PgWireBackendMessage::PortalSuspended(PortalSuspended::new())).await?;
    } else {
        *state = PortalExecutionState::Finished;
        client.send(PgWireBackendMessage::CommandComplete(Tag::new(&tag).with_rows(sent).into())).await?;
    }
    Ok(())
}
