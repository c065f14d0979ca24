//! Statement dispatch: one file per statement kind.
//!
//! [`execute`] runs one parsed statement for a session and returns an [`Outcome`] for the
//! wire layer to encode. It also enforces Weir's transaction-block rules (see
//! `docs/sql-reference.md`): every statement is atomic and durable on its own; a block only
//! groups statements for the client, and after an error in a block everything up to
//! COMMIT/ROLLBACK is refused, as in Postgres.

mod copy_from;
mod create_mv;
mod create_table;
mod dml;
mod drop;
mod flush;
mod inject_failure;
mod planning;
mod settings;
mod show_tables;
mod stream_ddl;
mod transaction;

use std::sync::{Arc, Mutex, MutexGuard};

use arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::execution::SendableRecordBatchStream;
use weir_planner::sqlparser::ast::Statement;
use weir_planner::{sqlstate, SqlError, SqlResult, WeirStatement};

use crate::engine::Engine;
use crate::session::{Session, TransactionState};

pub use planning::{describe_statement, StatementDescription};

/// What a statement produced.
pub enum Outcome {
    Rows {
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
    },
    /// A command tag such as `CREATE TABLE`, or `INSERT` / `UPDATE` / `DELETE` with a row count.
    Command {
        tag: &'static str,
        rows: Option<usize>,
    },
    /// `COPY ... FROM STDIN` accepted: the client may now send data.
    CopyIn {
        columns: usize,
    },
    TransactionStart,
    TransactionEnd {
        tag: &'static str,
        warning: Option<String>,
    },
}

pub struct Context<'a> {
    pub engine: &'a Arc<Engine>,
    pub session: &'a Arc<Mutex<Session>>,
    pub params: &'a [ScalarValue],
}

impl Context<'_> {
    pub fn session(&self) -> SqlResult<MutexGuard<'_, Session>> {
        self.session.lock().map_err(|_| SqlError::internal("session state poisoned by an earlier panic"))
    }
}

pub async fn execute(cx: &Context<'_>, statement: WeirStatement) -> SqlResult<Outcome> {
    let statement = match statement {
        WeirStatement::Sql(statement) => *statement,
        WeirStatement::Flush => return flush::run(cx).await,
        WeirStatement::InjectFailure(name) => return inject_failure::run(cx, &name).await,
        WeirStatement::CreateSource(create) => return stream_ddl::create_source(cx, &create).await,
        WeirStatement::CreateSink(create) => return stream_ddl::create_sink(cx, &create).await,
        WeirStatement::DropStream(stmt) => return drop::run_stream(cx, &stmt).await,
        WeirStatement::EmitOnWindowClose(statement) => {
            return dispatch_emit_on_window_close(cx, *statement).await
        }
        WeirStatement::CreateTableWithWatermark(create) => {
            let (statement, column, expr) = *create;
            return match statement {
                Statement::CreateTable(create) => {
                    create_table::run(cx, &create, Some((&column, &expr))).await
                }
                _ => Err(SqlError::syntax("WATERMARK FOR belongs in CREATE TABLE or CREATE SOURCE")),
            };
        }
    };
    let is_transaction_control = matches!(statement, Statement::Commit { .. } | Statement::Rollback { .. });
    let state = cx.session()?.transaction;
    if state == TransactionState::Failed && !is_transaction_control {
        return Err(SqlError::new(
            "25P02",
            "current transaction is aborted, commands ignored until end of transaction block",
        ));
    }
    let result = dispatch(cx, statement).await;
    let mut session = cx.session()?;
    match (&result, session.transaction) {
        (Err(_), TransactionState::InBlock { .. }) => session.transaction = TransactionState::Failed,
        (Ok(Outcome::Command { tag, .. }), TransactionState::InBlock { .. })
            if matches!(
                *tag,
                "INSERT"
                    | "UPDATE"
                    | "DELETE"
                    | "CREATE TABLE"
                    | "DROP TABLE"
                    | "CREATE MATERIALIZED VIEW"
                    | "DROP MATERIALIZED VIEW"
            ) =>
        {
            session.transaction = TransactionState::InBlock { wrote: true }
        }
        _ => {}
    }
    result
}

async fn dispatch_emit_on_window_close(cx: &Context<'_>, statement: Statement) -> SqlResult<Outcome> {
    match statement {
        Statement::CreateView(create) => create_mv::run(cx, create, false, true).await,
        Statement::Explain { statement, .. } => match *statement {
            Statement::CreateView(create) => create_mv::run(cx, create, true, true).await,
            _ => Err(SqlError::syntax("EMIT ON WINDOW CLOSE ends a CREATE MATERIALIZED VIEW")),
        },
        _ => Err(SqlError::syntax("EMIT ON WINDOW CLOSE ends a CREATE MATERIALIZED VIEW")),
    }
}

async fn dispatch(cx: &Context<'_>, statement: Statement) -> SqlResult<Outcome> {
    match statement {
        Statement::Explain { statement: explained, .. } if matches!(*explained, Statement::CreateView(_)) => {
            match *explained {
                Statement::CreateView(create) => create_mv::run(cx, create, true, false).await,
                _ => Err(SqlError::internal("EXPLAIN target changed while dispatching")),
            }
        }
        Statement::Query(_) | Statement::Explain { .. } => planning::run(cx, statement).await,
        Statement::CreateView(create) => create_mv::run(cx, create, false, false).await,
        Statement::Insert(_) => dml::insert(cx, statement).await,
        Statement::Update(update) => dml::update(cx, update).await,
        Statement::Delete(delete) => dml::delete(cx, delete).await,
        Statement::CreateTable(create) => create_table::run(cx, &create, None).await,
        Statement::Drop { object_type, if_exists, names, cascade, .. } => {
            drop::run(cx, object_type, if_exists, &names, cascade).await
        }
        Statement::Copy { source, to, target, options, legacy_options, .. } => {
            copy_from::start(cx, source, to, target, options, legacy_options).await
        }
        Statement::ShowTables { .. } => show_tables::run(cx).await,
        Statement::Set(set) => settings::set(cx, set),
        Statement::ShowVariable { variable } => settings::show(cx, &variable).await,
        Statement::StartTransaction { .. } => transaction::begin(cx),
        Statement::Commit { .. } => transaction::commit(cx),
        Statement::Rollback { .. } => transaction::rollback(cx),
        Statement::Discard { .. } => Ok(Outcome::Command { tag: "DISCARD ALL", rows: None }),
        Statement::Deallocate { .. } => Ok(Outcome::Command { tag: "DEALLOCATE", rows: None }),
        other => Err(SqlError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!("statement {} is not supported by Weir yet", statement_kind(&other)),
        )),
    }
}

/// The leading keywords of a statement, for error messages.
fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}
