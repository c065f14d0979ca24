//! Statement dispatch: one file per statement kind, and the one place statements are told
//! apart.
//!
//! [`classify`] sorts a parsed statement into a [`StatementKind`]. Both consumers match on
//! that kind and nothing else: [`execute`] runs one statement for a session and returns an
//! [`Outcome`] for the wire layer to encode, and [`describe_statement`] reports what a
//! prepared statement takes and returns. Both matches are exhaustive, so a new kind of
//! statement has to say how it runs and what Describe reports.
//!
//! [`execute`] also enforces Weir's transaction-block rules (see `docs/sql-reference.md`):
//! every statement is atomic and durable on its own; a block only groups statements for the
//! client, and after an error in a block everything up to COMMIT/ROLLBACK is refused, as in
//! Postgres.
//!
//! Shared by the handlers: `planning.rs` (how DataFusion-run statements are planned) and
//! `access.rs` (the privilege checks statements make before they act).

mod access;
mod alter_column;
mod alter_parallelism;
mod alter_table;
mod atomic_ddl;
mod comment;
mod copy_from;
mod create_index;
mod create_mv;
mod create_table;
mod declared_types;
mod definition_rename;
mod describe;
mod dml;
mod drop;
mod flush;
mod implicit_coercion;
mod inject_failure;
mod insert_defaults;
mod planning;
mod query;
mod rename;
mod roles;
mod settings;
mod show_tables;
mod stream_ddl;
mod transaction;

use std::sync::{Arc, Mutex, MutexGuard};

use arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::execution::SendableRecordBatchStream;
use weir_planner::sqlparser::ast::{
    AlterRoleOperation, AlterTable, CommentObject, CopyLegacyOption, CopyOption, CopySource, CopyTarget,
    CreateIndex, CreateRole, CreateTable, CreateView, Delete, Expr, Grant, Ident, ObjectName, ObjectType,
    Reset, Revoke, Set, Statement, Update,
};
use weir_planner::{
    sqlstate, CreateSink, CreateSource, DropStream, RenameTarget, RenamedKind, SqlError, SqlResult,
    WeirStatement,
};

use crate::engine::Engine;
use crate::session::{Session, TransactionState};

pub use describe::{describe_statement, StatementDescription};

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

    /// Raises Postgres' warning for each time type of `declared` with more than six digits
    /// after the second (`TIMESTAMP(7) precision reduced to maximum allowed, 6`), which the
    /// column keeps as six.
    pub fn warn_reduced_precisions<'t>(
        &self,
        declared: impl IntoIterator<Item = &'t weir_planner::sqlparser::ast::DataType>,
    ) -> SqlResult<()> {
        let warnings: Vec<String> =
            declared.into_iter().filter_map(weir_planner::precision_warning).collect();
        if !warnings.is_empty() {
            let session = self.session()?;
            warnings.into_iter().for_each(|w| session.notices.warn(w));
        }
        Ok(())
    }
}

/// Every kind of statement Weir accepts, told apart once by [`classify`]. Each holds the
/// parts of the statement its handler needs.
enum StatementKind {
    /// `SELECT`, `VALUES`, and `EXPLAIN` of anything but `CREATE MATERIALIZED VIEW`.
    Query(Statement),
    /// `[EXPLAIN] CREATE [MATERIALIZED] VIEW ... [EMIT ON WINDOW CLOSE]`.
    CreateMaterializedView {
        create: CreateView,
        explain: bool,
        emit_on_window_close: bool,
    },
    Insert(Statement),
    Update(Update),
    Delete(Delete),
    /// `CREATE TABLE`, with `WATERMARK FOR column AS expression` if given.
    CreateTable {
        create: Box<CreateTable>,
        watermark: Option<(Ident, Expr)>,
    },
    /// `DROP TABLE`, `DROP MATERIALIZED VIEW` (other object types are refused by the handler).
    Drop {
        object_type: ObjectType,
        if_exists: bool,
        names: Vec<ObjectName>,
        cascade: bool,
    },
    CreateSource(Box<CreateSource>),
    CreateSink(Box<CreateSink>),
    /// `DROP SOURCE`, `DROP SINK`.
    DropStream(DropStream),
    Copy {
        source: CopySource,
        to: bool,
        target: CopyTarget,
        options: Vec<CopyOption>,
        legacy_options: Vec<CopyLegacyOption>,
    },
    ShowTables,
    Set(Set),
    /// `RESET name`, `RESET ALL`.
    Reset(Reset),
    ShowVariable(Vec<Ident>),
    Begin,
    Commit,
    Rollback,
    Discard,
    Deallocate,
    Flush,
    InjectFailure(ObjectName),
    AlterParallelism {
        sink: bool,
        name: ObjectName,
        parallelism: u64,
    },
    Comment {
        object_type: CommentObject,
        name: ObjectName,
        comment: Option<String>,
    },
    CreateRole(CreateRole),
    AlterRole {
        name: Ident,
        operation: AlterRoleOperation,
    },
    DropRole {
        names: Vec<ObjectName>,
        if_exists: bool,
    },
    /// `GRANT privileges ON objects TO roles`.
    Grant(Grant),
    Revoke(Revoke),
    /// `GRANT role TO member` / `REVOKE role FROM member`.
    RoleMembership {
        grant: bool,
        roles: Vec<Ident>,
        members: Vec<Ident>,
    },
    /// `ALTER TABLE`: add, drop and rename columns, rename the table.
    AlterTable(AlterTable),
    /// `ALTER { MATERIALIZED VIEW | VIEW | SOURCE | SINK } name RENAME ...`.
    AlterRename {
        kind: RenamedKind,
        name: ObjectName,
        target: RenameTarget,
    },
    /// `CREATE INDEX`: refused with what Weir does instead.
    CreateIndex(Box<CreateIndex>),
    /// A Weir clause attached to a statement it does not belong to: the syntax error to
    /// report.
    Misplaced(&'static str),
    /// Anything else sqlparser accepts.
    Unsupported(Statement),
    /// A statement [`classify`] failed to take apart after checking its shape (cannot
    /// happen): the internal error to report.
    Internal(&'static str),
}

impl StatementKind {
    /// Whether the statement is written in Weir's own syntax (`FLUSH`, `INJECT FAILURE`,
    /// `CREATE/DROP SOURCE/SINK`, `WATERMARK FOR`, `EMIT ON WINDOW CLOSE`) rather than
    /// Postgres'. Those have always run outside the transaction-block rules: they are not
    /// refused after an error in a block, and their own errors and writes do not change the
    /// block's state.
    fn is_weir_syntax(&self) -> bool {
        matches!(
            self,
            Self::Flush
                | Self::InjectFailure(_)
                | Self::AlterParallelism { .. }
                | Self::CreateSource(_)
                | Self::CreateSink(_)
                | Self::DropStream(_)
                | Self::AlterRename { kind: RenamedKind::Source | RenamedKind::Sink, .. }
                | Self::Misplaced(_)
                | Self::CreateTable { watermark: Some(_), .. }
                | Self::CreateMaterializedView { emit_on_window_close: true, .. }
        )
    }
}

const WATERMARK_MISPLACED: &str = "WATERMARK FOR belongs in CREATE TABLE or CREATE SOURCE";
const EMIT_MISPLACED: &str = "EMIT ON WINDOW CLOSE ends a CREATE MATERIALIZED VIEW";

/// Tells what kind of statement `statement` is: the one match over statement shapes.
fn classify(statement: WeirStatement) -> StatementKind {
    use StatementKind as K;
    let statement = match statement {
        WeirStatement::Sql(statement) => *statement,
        WeirStatement::Flush => return K::Flush,
        WeirStatement::InjectFailure(name) => return K::InjectFailure(name),
        WeirStatement::AlterParallelism { sink, name, parallelism } => {
            return K::AlterParallelism { sink, name, parallelism }
        }
        WeirStatement::AlterRename { kind, name, target } => return K::AlterRename { kind, name, target },
        WeirStatement::CreateSource(create) => return K::CreateSource(create),
        WeirStatement::CreateSink(create) => return K::CreateSink(create),
        WeirStatement::DropStream(drop) => return K::DropStream(drop),
        WeirStatement::RoleMembership { grant, roles, members } => {
            return K::RoleMembership { grant, roles, members }
        }
        WeirStatement::EmitOnWindowClose(statement) => {
            let (create, explain) = match *statement {
                Statement::CreateView(create) => (create, false),
                Statement::Explain { statement, .. } => match *statement {
                    Statement::CreateView(create) => (create, true),
                    _ => return K::Misplaced(EMIT_MISPLACED),
                },
                _ => return K::Misplaced(EMIT_MISPLACED),
            };
            return K::CreateMaterializedView { create, explain, emit_on_window_close: true };
        }
        WeirStatement::CreateTableWithWatermark(create) => {
            let (statement, column, expr) = *create;
            return match statement {
                Statement::CreateTable(create) => {
                    K::CreateTable { create: Box::new(create), watermark: Some((column, expr)) }
                }
                _ => K::Misplaced(WATERMARK_MISPLACED),
            };
        }
    };
    match statement {
        Statement::Explain { statement: explained, .. } if matches!(*explained, Statement::CreateView(_)) => {
            match *explained {
                Statement::CreateView(create) => {
                    K::CreateMaterializedView { create, explain: true, emit_on_window_close: false }
                }
                _ => K::Internal("EXPLAIN target changed while dispatching"),
            }
        }
        Statement::Query(_) | Statement::Explain { .. } => K::Query(statement),
        Statement::CreateView(create) => {
            K::CreateMaterializedView { create, explain: false, emit_on_window_close: false }
        }
        Statement::Insert(_) => K::Insert(statement),
        Statement::Update(update) => K::Update(update),
        Statement::Delete(delete) => K::Delete(delete),
        Statement::CreateTable(create) => K::CreateTable { create: Box::new(create), watermark: None },
        Statement::CreateRole(create) => K::CreateRole(create),
        Statement::AlterRole { name, operation } => K::AlterRole { name, operation },
        Statement::Drop { object_type: ObjectType::Role | ObjectType::User, if_exists, names, .. } => {
            K::DropRole { names, if_exists }
        }
        Statement::Grant(grant) => K::Grant(grant),
        Statement::Revoke(revoke) => K::Revoke(revoke),
        Statement::Drop { object_type, if_exists, names, cascade, .. } => {
            K::Drop { object_type, if_exists, names, cascade }
        }
        Statement::Copy { source, to, target, options, legacy_options, .. } => {
            K::Copy { source, to, target, options, legacy_options }
        }
        Statement::ShowTables { .. } => K::ShowTables,
        Statement::Set(set) => K::Set(set),
        Statement::Reset(reset) => K::Reset(reset.reset),
        Statement::ShowVariable { variable } => K::ShowVariable(variable),
        Statement::StartTransaction { .. } => K::Begin,
        Statement::Commit { .. } => K::Commit,
        Statement::Rollback { .. } => K::Rollback,
        Statement::Discard { .. } => K::Discard,
        Statement::Deallocate { .. } => K::Deallocate,
        Statement::Comment { object_type, object_name, comment, .. } => {
            K::Comment { object_type, name: object_name, comment }
        }
        Statement::AlterTable(alter) => K::AlterTable(alter),
        Statement::CreateIndex(create) => K::CreateIndex(Box::new(create)),
        other => K::Unsupported(other),
    }
}

/// Runs one parsed statement for the session, under the transaction-block rules.
pub async fn execute(cx: &Context<'_>, statement: WeirStatement) -> SqlResult<Outcome> {
    let kind = classify(statement);
    if kind.is_weir_syntax() {
        return run(cx, kind).await;
    }
    let is_transaction_control = matches!(kind, StatementKind::Commit | StatementKind::Rollback);
    let state = cx.session()?.transaction;
    if state == TransactionState::Failed && !is_transaction_control {
        return Err(SqlError::new(
            "25P02",
            "current transaction is aborted, commands ignored until end of transaction block",
        ));
    }
    let result = run(cx, kind).await;
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
                    | "CREATE ROLE"
                    | "ALTER ROLE"
                    | "DROP ROLE"
                    | "GRANT"
                    | "REVOKE"
                    | "GRANT ROLE"
                    | "REVOKE ROLE"
                    | "ALTER TABLE"
                    | "ALTER MATERIALIZED VIEW"
                    | "ALTER VIEW"
            ) =>
        {
            session.transaction = TransactionState::InBlock { wrote: true }
        }
        _ => {}
    }
    result
}

/// Runs one statement with the handler of its kind.
async fn run(cx: &Context<'_>, kind: StatementKind) -> SqlResult<Outcome> {
    use StatementKind as K;
    match kind {
        K::Query(statement) => query::run(cx, statement).await,
        K::CreateMaterializedView { create, explain, emit_on_window_close } => {
            create_mv::run(cx, create, explain, emit_on_window_close).await
        }
        K::Insert(statement) => dml::insert(cx, statement).await,
        K::Update(update) => dml::update(cx, update).await,
        K::Delete(delete) => dml::delete(cx, delete).await,
        K::CreateTable { create, watermark } => {
            create_table::run(cx, &create, watermark.as_ref().map(|(column, expr)| (column, expr))).await
        }
        K::Drop { object_type, if_exists, names, cascade } => {
            drop::run(cx, object_type, if_exists, &names, cascade).await
        }
        K::CreateSource(create) => stream_ddl::create_source(cx, &create).await,
        K::CreateSink(create) => stream_ddl::create_sink(cx, &create).await,
        K::DropStream(stmt) => drop::run_stream(cx, &stmt).await,
        K::Copy { source, to, target, options, legacy_options } => {
            copy_from::start(cx, source, to, target, options, legacy_options).await
        }
        K::ShowTables => show_tables::run(cx).await,
        K::Set(set) => settings::set(cx, set),
        K::Reset(reset) => settings::reset(cx, reset),
        K::ShowVariable(variable) => settings::show(cx, &variable).await,
        K::Begin => transaction::begin(cx),
        K::Commit => transaction::commit(cx),
        K::Rollback => transaction::rollback(cx),
        K::Discard => Ok(Outcome::Command { tag: "DISCARD ALL", rows: None }),
        K::Deallocate => Ok(Outcome::Command { tag: "DEALLOCATE", rows: None }),
        K::Flush => flush::run(cx).await,
        K::InjectFailure(name) => inject_failure::run(cx, &name).await,
        K::AlterParallelism { sink, name, parallelism } => {
            alter_parallelism::run(cx, sink, &name, parallelism).await
        }
        K::Comment { object_type, name, comment } => {
            comment::run(cx, &object_type, &name, comment.as_deref())
        }
        K::CreateRole(create) => roles::create_role(cx, &create),
        K::AlterRole { name, operation } => roles::alter_role(cx, &name, &operation),
        K::DropRole { names, if_exists } => roles::drop_role(cx, &names, if_exists),
        K::Grant(grant) => roles::change_privileges(
            cx,
            true,
            &grant.privileges,
            grant.objects.as_ref(),
            &grant.grantees,
            grant.with_grant_option,
        ),
        K::Revoke(revoke) => roles::change_privileges(
            cx,
            false,
            &revoke.privileges,
            revoke.objects.as_ref(),
            &revoke.grantees,
            false,
        ),
        K::RoleMembership { grant, roles, members } => roles::role_membership(cx, grant, &roles, &members),
        K::AlterTable(alter) => alter_table::run(cx, alter).await,
        K::AlterRename { kind, name, target } => {
            let statement = rename::Statement::Alter(kind);
            match target {
                RenameTarget::Relation(new) => rename::rename_relation(cx, statement, &name, &new, false),
                RenameTarget::Column(old, new) => {
                    rename::rename_column(cx, statement, &name, &old, &new, false)
                }
            }
        }
        K::CreateIndex(create) => create_index::refuse(cx, &create),
        K::Misplaced(message) => Err(SqlError::syntax(message)),
        K::Internal(message) => Err(SqlError::internal(message)),
        K::Unsupported(other) => Err(SqlError::new(
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
