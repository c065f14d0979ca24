//! The Postgres wire protocol, via `pgwire`: simple and extended query protocol, COPY FROM
//! STDIN, cancellation and authentication. This layer knows nothing about storage: it parses,
//! hands statements to `handlers::execute`, and encodes what comes back.

pub mod auth;
pub mod cancel;
pub mod connection;
pub mod encode;
pub mod errors;
pub mod frame_guard;
pub mod idle;
pub mod params;
pub mod portal_execute;

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::datatypes::DataType;
use async_trait::async_trait;
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{CopyResponse, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, ConnectionManager, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::response::NoticeResponse;
use pgwire::messages::PgWireBackendMessage;
use tracing::{debug, warn};
use weir_planner::{parse_sql, sqlstate, SqlError, SqlResult, WeirStatement};

use crate::backends::{self, Backend};
use crate::engine::Engine;
use crate::handlers::{self, describe_statement, Context, Outcome, StatementDescription};
use crate::session::Session;
use errors::to_pgwire;

/// All protocol handlers for one server; cheap to clone per connection.
pub struct WeirHandlers {
    pub engine: Arc<Engine>,
    pub queries: Arc<QueryHandler>,
    pub startup: Arc<auth::WeirStartup>,
    pub connections: Arc<ConnectionManager>,
}

impl PgWireServerHandlers for WeirHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.queries.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.queries.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        self.startup.clone()
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.queries.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::new(cancel::WeirCancelHandler {
            backends: self.engine.backends.clone(),
            connections: self.connections.clone(),
        })
    }
}

/// A statement prepared with Parse: its AST and what Describe reports.
#[derive(Debug)]
pub struct Prepared {
    pub sql: String,
    pub statement: WeirStatement,
    pub description: StatementDescription,
}

pub struct QueryHandler {
    engine: Arc<Engine>,
    parser: Arc<WeirQueryParser>,
}

impl QueryHandler {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { parser: Arc::new(WeirQueryParser { engine: engine.clone() }), engine }
    }
}

/// The session of a connection (created at startup; created here if a client skipped it).
pub fn session_of<C: ClientInfo + ?Sized>(client: &C) -> Arc<Mutex<Session>> {
    let metadata = client.metadata();
    let user = metadata.get(pgwire::api::METADATA_USER).cloned().unwrap_or_else(|| "weir".into());
    let database = metadata.get(pgwire::api::METADATA_DATABASE).cloned().unwrap_or_else(|| user.clone());
    let session = client.session_extensions().get_or_insert_with(|| Mutex::new(Session::new(user, database)));
    // `get_or_insert_with` hands out `Arc<Mutex<Session>>`.
    session
}

/// Tells the connection's idle clock the session's current timeout: `idle_session_timeout`,
/// or inside a transaction block `idle_in_transaction_session_timeout`.
pub fn arm_idle_timeout(session: &Mutex<Session>, secure: bool) {
    if let Ok(s) = session.lock() {
        let (ms, kind) = match s.transaction {
            crate::session::TransactionState::Idle => (s.idle_session_timeout_ms(), idle::IdleKind::Session),
            _ => (s.idle_in_transaction_session_timeout_ms(), idle::IdleKind::InTransaction),
        };
        idle::set_timeout(ms, kind, secure);
    }
}

/// Rolls back a COPY the connection is no longer in: one that left copy-in mode on a
/// protocol error (an unexpected message), without CopyDone or CopyFail. Its table's write
/// lock is released at once, not when the session next runs a statement or goes away.
pub async fn end_abandoned_copy<C: ClientInfo + ?Sized>(client: &C) {
    let Some(session) = client.session_extensions().get::<Mutex<Session>>() else { return };
    let copy = session.lock().ok().and_then(|mut s| s.copy_in.take());
    if let Some(copy) = copy {
        tracing::info!("COPY abandoned by a protocol error; rolling it back");
        copy.lock().await.abort().await;
    }
}

/// The statement deadline shared by the session's result streams.
fn deadline_of<C: ClientInfo + ?Sized>(client: &C) -> Arc<cancel::StatementDeadline> {
    client.session_extensions().get_or_insert_with(cancel::StatementDeadline::default)
}

/// What can stop a session's statement: its cancel signal (if it registered one at
/// start-up) and its `statement_timeout` deadline.
struct Interrupts {
    cancel: Option<tokio::sync::watch::Receiver<u64>>,
    deadline: Arc<cancel::StatementDeadline>,
    /// The session's registry entry (if it registered at start-up), told when statements
    /// start and end for `pg_stat_activity`.
    backend: Option<Arc<Backend>>,
}

fn interrupts_of<C: ClientInfo + ?Sized>(client: &C) -> Interrupts {
    let backend = client.session_extensions().get::<Arc<Backend>>().map(|b| b.as_ref().clone());
    Interrupts { cancel: cancel_of(client), deadline: deadline_of(client), backend }
}

/// While alive, the session's statement is `active` in `pg_stat_activity`; dropped when the
/// statement ends, or with its row stream once every row was sent.
struct StatementActivity {
    backend: Arc<Backend>,
    session: Arc<Mutex<Session>>,
}

impl StatementActivity {
    fn start(backend: Option<Arc<Backend>>, session: &Arc<Mutex<Session>>, query: &str) -> Option<Self> {
        let backend = backend?;
        let application_name = application_name_of(session);
        backend.statement_started(query, &application_name);
        Some(Self { backend, session: session.clone() })
    }
}

impl Drop for StatementActivity {
    fn drop(&mut self) {
        use crate::session::TransactionState;
        let state = match self.session.lock().map(|s| s.transaction) {
            Ok(TransactionState::Idle) | Err(_) => backends::State::Idle,
            Ok(TransactionState::InBlock { .. }) => backends::State::IdleInTransaction,
            Ok(TransactionState::Failed) => backends::State::IdleInTransactionAborted,
        };
        self.backend.statement_ended(state, &application_name_of(&self.session));
    }
}

fn application_name_of(session: &Mutex<Session>) -> String {
    session.lock().ok().and_then(|s| s.get("application_name").map(str::to_string)).unwrap_or_default()
}

/// How a statement's rows reach the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowDelivery {
    /// pgwire sends them after the handler returned (simple query protocol): the stream
    /// itself keeps the session busy for the idle clock.
    AfterReturn,
    /// `portal_execute` sends them while its Execute runs, and holds the session busy
    /// itself; a suspended portal's stream must not keep an idle session busy.
    DuringExecute,
}

/// The cancel signal of the client's session, if it registered one at start-up.
fn cancel_of<C: ClientInfo + ?Sized>(client: &C) -> Option<tokio::sync::watch::Receiver<u64>> {
    client.session_extensions().get::<Arc<crate::backends::Backend>>().map(|b| b.subscribe_cancel())
}

/// Runs one statement (`query`: the text `pg_stat_activity` shows for it); returns its
/// response and the warnings it raised, to send before it.
#[allow(clippy::too_many_arguments)]
async fn run_statement(
    engine: &Arc<Engine>,
    session: &Arc<Mutex<Session>>,
    statement: WeirStatement,
    query: &str,
    params: &[datafusion::common::ScalarValue],
    format: &Format,
    interrupts: Interrupts,
    delivery: RowDelivery,
) -> SqlResult<(Response, Vec<String>)> {
    let Interrupts { cancel, deadline: statement_deadline, backend } = interrupts;
    let (timeout_ms, commit, notices) = match session.lock() {
        Ok(s) => (s.statement_timeout_ms(), s.commit.clone(), s.notices.clone()),
        Err(_) => return Err(SqlError::internal("session poisoned")),
    };
    // Warnings of an earlier statement that failed before they were sent are stale now.
    notices.take();
    let activity = StatementActivity::start(backend, session, query);
    commit.start_statement();
    let deadline = (timeout_ms > 0).then(|| tokio::time::Instant::now() + Duration::from_millis(timeout_ms));
    statement_deadline.set(deadline);
    let cx = Context { engine, session, params };
    let user = session.lock().map(|s| s.user.clone()).unwrap_or_default();
    let span = tracing::info_span!("statement", %user, params = params.len());
    let work = async {
        let outcome = handlers::execute(&cx, statement).await?;
        // A warning (ROLLBACK that could not undo writes) goes out as a notice first.
        let warning = match &outcome {
            Outcome::TransactionEnd { warning, .. } => warning.clone(),
            _ => None,
        };
        Ok((to_response(outcome, format, statement_deadline, cancel, delivery, activity).await?, warning))
    };
    let work = tracing::Instrument::instrument(work, span);
    // Cancel requests and the timeout stop the statement here rather than in pgwire, so a
    // statement that undoes itself when stopped (CREATE MATERIALIZED VIEW, CREATE SINK) has
    // undone everything before its client hears `57014` (see commit_gate).
    let mut work = Box::pin(work);
    let timeout = async {
        match timeout_ms {
            0 => futures::future::pending().await,
            ms => tokio::time::sleep(Duration::from_millis(ms)).await,
        }
    };
    let result = tokio::select! {
        result = &mut work => result,
        // A statement that is writing finishes and reports it (see commit_gate).
        () = timeout => match commit.try_cancel() {
            true => Err(SqlError::new(sqlstate::QUERY_CANCELED, "canceling statement due to statement timeout")),
            false => (&mut work).await,
        },
        () = commit.wait_cancelled() => {
            Err(SqlError::new(sqlstate::QUERY_CANCELED, "canceling statement due to user request"))
        }
    };
    // A stopped or failed statement's undo is done before its client hears of it.
    drop(work);
    commit.undone().await;
    let mut warnings = notices.take();
    result.map(|(response, warning)| {
        warnings.extend(warning);
        (response, warnings)
    })
}

/// A query's rows are streamed to the client as they are produced, never collected first
/// (in both protocols; the extended one through [`portal_execute`]): under
/// `statement_timeout` the stream itself ends with `57014` at the deadline (the rows sent
/// before it are the client's to discard, as with Postgres).
async fn to_response(
    outcome: Outcome,
    format: &Format,
    deadline: Arc<cancel::StatementDeadline>,
    cancel: Option<tokio::sync::watch::Receiver<u64>>,
    delivery: RowDelivery,
    activity: Option<StatementActivity>,
) -> SqlResult<Response> {
    Ok(match outcome {
        Outcome::Rows { schema, stream } => {
            let fields = Arc::new(encode::field_infos(&schema, format));
            let row_fields = fields.clone();
            // The session is not idle while pgwire still sends these rows.
            let busy = (delivery == RowDelivery::AfterReturn).then(idle::Busy::new);
            let rows = stream.flat_map(move |batch| {
                let _ = (&busy, &activity);
                let encoded = match batch {
                    Ok(batch) => match encode::encode_batch(&batch, &row_fields) {
                        Ok(rows) => rows.into_iter().map(Ok).collect(),
                        Err(e) => vec![Err(to_pgwire(e))],
                    },
                    Err(e) => vec![Err(to_pgwire(errors::from_datafusion(e)))],
                };
                futures::stream::iter(encoded)
            });
            let rows = match cancel {
                Some(receiver) => cancel::Cancellable::new(Box::pin(rows), receiver),
                None => cancel::Cancellable::never_cancelled(Box::pin(rows)),
            };
            let rows = rows.with_deadline(deadline);
            Response::Query(QueryResponse::new(fields, rows))
        }
        Outcome::Command { tag, rows } => {
            let mut t = Tag::new(tag);
            if tag == "INSERT" {
                t = t.with_oid(0);
            }
            if let Some(n) = rows {
                t = t.with_rows(n);
            }
            Response::Execution(t)
        }
        Outcome::CopyIn { columns } => {
            Response::CopyIn(CopyResponse::new(0, columns, futures::stream::empty()))
        }
        Outcome::TransactionStart => Response::TransactionStart(Tag::new("BEGIN")),
        Outcome::TransactionEnd { tag, .. } => Response::TransactionEnd(Tag::new(tag)),
    })
}

fn error_response(e: &SqlError) -> Response {
    debug!(code = e.code, message = %e.message, "statement failed");
    Response::Error(Box::new(errors::to_error_info(e)))
}

async fn send_warning<C>(client: &mut C, message: String) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let info = ErrorInfo::new("WARNING".into(), "01000".into(), message);
    client.send(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(info))).await?;
    Ok(())
}

#[async_trait]
impl SimpleQueryHandler for QueryHandler {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        debug!(query, "simple query");
        let _busy = idle::Busy::new();
        let session = session_of(client);
        let responses = self.simple_query(client, &session, query).await;
        arm_idle_timeout(&session, client.is_secure());
        responses
    }
}

impl QueryHandler {
    async fn simple_query<C>(
        &self,
        client: &mut C,
        session: &Arc<Mutex<Session>>,
        query: &str,
    ) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = match parse_sql(query) {
            Ok(s) => s,
            Err(e) => return Ok(vec![error_response(&e)]),
        };
        let mut responses = Vec::with_capacity(statements.len());
        for statement in statements {
            match run_statement(
                &self.engine,
                session,
                statement,
                query,
                &[],
                &Format::UnifiedText,
                interrupts_of(client),
                RowDelivery::AfterReturn,
            )
            .await
            {
                Ok((response, warnings)) => {
                    for message in warnings {
                        send_warning(client, message).await?;
                    }
                    let is_copy = matches!(response, Response::CopyIn(_));
                    responses.push(response);
                    if is_copy {
                        break;
                    }
                }
                Err(e) => {
                    responses.push(error_response(&e));
                    break;
                }
            }
        }
        Ok(responses)
    }
}

pub struct WeirQueryParser {
    engine: Arc<Engine>,
}

#[async_trait]
impl QueryParser for WeirQueryParser {
    type Statement = Arc<Prepared>;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let _busy = idle::Busy::new();
        let mut statements = parse_sql(sql).map_err(to_pgwire)?;
        if statements.len() > 1 {
            return Err(to_pgwire(SqlError::syntax(
                "cannot insert multiple commands into a prepared statement",
            )));
        }
        let Some(statement) = statements.pop() else { return Ok(None) };
        let session = session_of(client);
        let snapshot_session = {
            let s = session.lock().map_err(|_| to_pgwire(SqlError::internal("session poisoned")))?;
            Session::snapshot_of(&s)
        };
        let mut description =
            describe_statement(&self.engine, &snapshot_session, &statement).await.map_err(to_pgwire)?;
        for (i, ty) in types.iter().enumerate() {
            if let Some(declared) = ty.as_ref().and_then(params::arrow_type_of) {
                if description.param_types.len() <= i {
                    description.param_types.resize(i + 1, None);
                }
                if description.param_types[i].is_none() {
                    description.param_types[i] = Some(declared);
                }
            }
        }
        Ok(Some(Arc::new(Prepared { sql: sql.to_string(), statement, description })))
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        Ok(stmt
            .description
            .param_types
            .iter()
            .map(|t| t.as_ref().map(encode::pg_type_of).unwrap_or(Type::TEXT))
            .collect())
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(match &stmt.description.result {
            Some(schema) => encode::field_infos(schema, format.unwrap_or(&Format::UnifiedText)),
            None => vec![],
        })
    }
}

#[async_trait]
impl ExtendedQueryHandler for QueryHandler {
    type Statement = Arc<Prepared>;
    type QueryParser = WeirQueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    /// pgwire's own Execute collects a portal's rows (all of them without a row limit)
    /// before sending any; Weir's streams them (see [`portal_execute`]).
    async fn on_execute<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::extendedquery::Execute,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _busy = idle::Busy::new();
        let resumed = portal_execute::execute(self, client, message).await;
        if let Some(session) = client.session_extensions().get::<Mutex<Session>>() {
            arm_idle_timeout(&session, client.is_secure());
        }
        resumed
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _busy = idle::Busy::new();
        let prepared = &portal.statement.statement;
        let declared = &portal.statement.parameter_types;
        let mut values = Vec::with_capacity(portal.parameter_len());
        for i in 0..portal.parameter_len() {
            let target: Option<&DataType> = prepared.description.param_types.get(i).and_then(|t| t.as_ref());
            // Clients that let the server infer parameter types send values in the type the
            // ParameterDescription announced.
            let announced = target.map(encode::pg_type_of);
            let wire_type = declared.get(i).and_then(|t| t.as_ref()).or(announced.as_ref());
            let value = params::decode_param(
                i,
                portal.parameters.get(i).and_then(|v| v.as_ref()),
                portal.parameter_format.is_binary(i),
                wire_type,
                target,
            )
            .map_err(to_pgwire)?;
            values.push(value);
        }
        let session = session_of(client);
        let result = run_statement(
            &self.engine,
            &session,
            prepared.statement.clone(),
            &prepared.sql,
            &values,
            &portal.result_column_format,
            interrupts_of(client),
            RowDelivery::DuringExecute,
        )
        .await;
        arm_idle_timeout(&session, client.is_secure());
        match result {
            Ok((response, warnings)) => {
                for message in warnings {
                    send_warning(client, message).await?;
                }
                Ok(response)
            }
            Err(e) => {
                debug!(code = e.code, message = %e.message, "statement failed");
                Err(to_pgwire(e))
            }
        }
    }
}

#[async_trait]
impl CopyHandler for QueryHandler {
    async fn on_copy_data<C>(&self, client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _busy = idle::Busy::new();
        let session = session_of(client);
        let (copy, gate) = {
            let s = session.lock().map_err(|_| to_pgwire(SqlError::internal("session poisoned")))?;
            (s.copy_in.clone(), s.commit.clone())
        };
        if let Some(copy) = copy {
            copy.lock().await.receive(&copy_data.data, &gate).await;
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _busy = idle::Busy::new();
        let session = session_of(client);
        let (copy, gate) = {
            let mut s = session.lock().map_err(|_| to_pgwire(SqlError::internal("session poisoned")))?;
            (s.copy_in.take(), s.commit.clone())
        };
        let copy = copy
            .ok_or_else(|| to_pgwire(SqlError::new(sqlstate::PROTOCOL_VIOLATION, "no COPY in progress")))?;
        let finished = copy.lock().await.finish(&gate).await;
        match finished {
            Ok(n) => {
                let tag = Tag::new("COPY").with_rows(n);
                client.send(PgWireBackendMessage::CommandComplete(tag.into())).await?;
                Ok(())
            }
            Err(e) => {
                warn!(error = %e, "COPY rejected");
                Err(to_pgwire(e))
            }
        }
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(client);
        let copy = session.lock().ok().and_then(|mut s| s.copy_in.take());
        if let Some(copy) = copy {
            copy.lock().await.abort().await;
        }
        to_pgwire(SqlError::new(
            sqlstate::QUERY_CANCELED,
            format!("COPY from stdin failed: {}", fail.message),
        ))
    }
}
