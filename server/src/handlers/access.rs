//! The privilege checks statements make before they act, with Postgres' errors (`42501`):
//! `permission denied for table t`, `must be owner of materialized view v`, `permission
//! denied for schema public`. The rules themselves are in `privileges.rs`; this file
//! names objects and reads the session's role.
//!
//! Checks run before a statement changes anything, so a refused statement changes nothing.

use datafusion::logical_expr::LogicalPlan;
use weir_planner::{sqlstate, SqlError, SqlResult};
use weir_storage::Store;

use super::Context;
use crate::engine::DEFAULT_SCHEMA;
use crate::privileges::{PrivilegeSet, READ_SERVER_FILES, WRITE_SERVER_FILES};

/// What kind of object a user object id is, as Postgres' messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Table,
    MaterializedView,
    Source,
    Sink,
}

impl ObjectKind {
    pub fn noun(self) -> &'static str {
        match self {
            ObjectKind::Table => "table",
            ObjectKind::MaterializedView => "materialized view",
            ObjectKind::Source => "source",
            ObjectKind::Sink => "sink",
        }
    }
}

/// A named user object: its id, kind and name.
#[derive(Debug, Clone)]
pub struct Object {
    pub id: u64,
    pub kind: ObjectKind,
    pub name: String,
}

/// The table, view, source or sink `name` in `schema`.
pub fn object_named(store: &Store, schema: &str, name: &str) -> Option<Object> {
    let found = store
        .table(schema, name)
        .map(|t| (t.def().id, ObjectKind::Table))
        .or_else(|| store.view(schema, name).map(|v| (v.id(), ObjectKind::MaterializedView)))
        .or_else(|| store.source(schema, name).map(|s| (s.id, ObjectKind::Source)))
        .or_else(|| store.sink(schema, name).map(|s| (s.id, ObjectKind::Sink)));
    found.map(|(id, kind)| Object { id, kind, name: name.to_string() })
}

/// Every user object, in id order.
pub fn all_objects(store: &Store) -> Vec<Object> {
    let mut out: Vec<Object> = store
        .tables()
        .iter()
        .map(|t| Object { id: t.def().id, kind: ObjectKind::Table, name: t.def().name.clone() })
        .chain(store.views().into_iter().map(|v| Object {
            id: v.id(),
            kind: ObjectKind::MaterializedView,
            name: v.relation.name.clone(),
        }))
        .chain(store.sources().into_iter().map(|s| Object {
            id: s.id,
            kind: ObjectKind::Source,
            name: s.name,
        }))
        .chain(store.sinks().into_iter().map(|s| Object { id: s.id, kind: ObjectKind::Sink, name: s.name }))
        .collect();
    out.sort_by_key(|o| o.id);
    out
}

/// The session's role.
pub fn current_role(cx: &Context<'_>) -> SqlResult<String> {
    Ok(cx.session()?.user.clone())
}

pub fn permission_denied(object: &Object) -> SqlError {
    SqlError::new(
        sqlstate::INSUFFICIENT_PRIVILEGE,
        format!("permission denied for {} {}", object.kind.noun(), object.name),
    )
}

/// Refuses unless the session's role holds `wanted` on `object`.
pub fn require(cx: &Context<'_>, object: &Object, wanted: PrivilegeSet) -> SqlResult<()> {
    let role = current_role(cx)?;
    match cx.engine.roles.snapshot().has_privilege(&role, object.id, wanted) {
        true => Ok(()),
        false => {
            tracing::info!(role, object = %object.name, privileges = %wanted.letters(), "permission denied");
            Err(permission_denied(object))
        }
    }
}

/// Refuses unless the session's role owns `object` (or is a superuser).
pub fn require_owner(cx: &Context<'_>, object: &Object) -> SqlResult<()> {
    let role = current_role(cx)?;
    match cx.engine.roles.snapshot().owns(&role, object.id) {
        true => Ok(()),
        false => Err(SqlError::new(
            sqlstate::INSUFFICIENT_PRIVILEGE,
            format!("must be owner of {} {}", object.kind.noun(), object.name),
        )),
    }
}

/// [`require_owner`] for the object `name` in `schema`, if it exists (a missing object is
/// the statement's own error to report).
pub fn require_owner_of(cx: &Context<'_>, schema: &str, name: &str) -> SqlResult<()> {
    match object_named(&cx.engine.store, schema, name) {
        Some(object) => require_owner(cx, &object),
        None => Ok(()),
    }
}

/// Refuses creating objects in `schema` without `CREATE` on it.
pub fn require_create_in(cx: &Context<'_>, schema: &str) -> SqlResult<()> {
    let role = current_role(cx)?;
    if schema != DEFAULT_SCHEMA || cx.engine.roles.snapshot().may_create_in_public(&role) {
        return Ok(());
    }
    Err(SqlError::new(sqlstate::INSUFFICIENT_PRIVILEGE, format!("permission denied for schema {schema}"))
        .with_hint(format!(
            "The owner of schema {schema} can run GRANT CREATE ON SCHEMA {schema} TO {role}."
        )))
}

/// Server-side files: a `file` source needs `pg_read_server_files`, a `file` sink
/// `pg_write_server_files` (or superuser), as `COPY ... FROM/TO 'file'` does in Postgres.
pub fn require_file_access(cx: &Context<'_>, writing: bool) -> SqlResult<()> {
    let role = current_role(cx)?;
    let (group, what) = match writing {
        true => (WRITE_SERVER_FILES, "create a file sink"),
        false => (READ_SERVER_FILES, "create a file source"),
    };
    let roles = cx.engine.roles.snapshot();
    if roles.is_superuser(&role) || roles.is_member_of(&role, group) {
        return Ok(());
    }
    Err(SqlError::new(
        sqlstate::INSUFFICIENT_PRIVILEGE,
        format!("must be superuser or have privileges of the {group} role to {what}"),
    )
    .with_hint(format!("A superuser can run GRANT {group} TO {role}.")))
}

/// SELECT on every user relation the plan reads (subqueries included), except `exempt`
/// (the target of an UPDATE or DELETE that reads none of its columns).
pub fn require_reads(cx: &Context<'_>, plan: &LogicalPlan, exempt: Option<u64>) -> SqlResult<()> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    let mut read = Vec::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let schema = scan.table_name.schema().unwrap_or(DEFAULT_SCHEMA);
            if schema == DEFAULT_SCHEMA {
                read.push(scan.table_name.table().to_string());
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(crate::wire::errors::from_datafusion)?;
    for name in read {
        let Some(object) = object_named(&cx.engine.store, DEFAULT_SCHEMA, &name) else { continue };
        if Some(object.id) != exempt {
            require(cx, &object, PrivilegeSet::SELECT)?;
        }
    }
    Ok(())
}

/// SELECT on each object a continuous query reads, by id.
pub fn require_reads_of(cx: &Context<'_>, ids: &[u64]) -> SqlResult<()> {
    let objects = all_objects(&cx.engine.store);
    for id in ids {
        if let Some(object) = objects.iter().find(|o| o.id == *id) {
            require(cx, object, PrivilegeSet::SELECT)?;
        }
    }
    Ok(())
}

/// Records the session's role as the owner of the object just created.
pub fn record_owner(cx: &Context<'_>, id: u64) -> SqlResult<()> {
    let role = current_role(cx)?;
    cx.engine.roles.update(|catalog| {
        catalog.set_owner(id, &role);
        Ok(())
    })
}

/// Forgets the owner and grants of a dropped object.
pub fn forget_object(cx: &Context<'_>, id: u64) {
    if let Err(e) = cx.engine.roles.update(|catalog| {
        catalog.forget_object(id);
        Ok(())
    }) {
        // A stale entry is harmless: ids are never reused and checks skip missing objects.
        tracing::warn!(object = id, error = %e.message, "could not forget the privileges of a dropped object");
    }
}
