//! Dropping objects, of every kind: `DROP TABLE` and `DROP MATERIALIZED VIEW`
//! `[IF EXISTS] name [, ...] [CASCADE]`, `DROP SOURCE` and `DROP SINK`, and the dependency
//! rules they share (which materialized views and sinks read what, and removing those jobs).
//!
//! All names and dependencies are checked before anything is dropped, so a failing DROP
//! drops nothing. Dropping a relation or source a view or sink reads fails with `2BP01`
//! unless `CASCADE` is given, which drops the dependent jobs first (the most recently
//! created first, so a view always goes before the views it reads). A sink has no
//! dependents.

use std::collections::BTreeSet;

use weir_executor::operators::sink::{remove_markers, SinkConfig};
use weir_plan::catalog::{SinkDef, TableId, ViewDef};
use weir_planner::sqlparser::ast::{ObjectName, ObjectType};
use weir_planner::{split_name, sqlstate, DropStream, SqlError, SqlResult};

use super::{Context, Outcome};
use crate::wire::errors::from_storage;

/// `DROP TABLE` and `DROP MATERIALIZED VIEW`.
pub async fn run(
    cx: &Context<'_>,
    object_type: ObjectType,
    if_exists: bool,
    names: &[ObjectName],
    cascade: bool,
) -> SqlResult<Outcome> {
    let (kind, tag) = match object_type {
        ObjectType::Index => return drop_index(cx, if_exists, names),
        ObjectType::Table => ("table", "DROP TABLE"),
        ObjectType::MaterializedView => ("materialized view", "DROP MATERIALIZED VIEW"),
        other => return Err(SqlError::unsupported(format!("DROP {other}"))),
    };
    let store = &cx.engine.store;
    let views = dependent_jobs(cx);
    let mut tables = Vec::new();
    let mut requested = Vec::new();
    for name in names {
        let (schema, relation) = split_name(name)?;
        let id = match object_type {
            ObjectType::Table => store.table(&schema, &relation).map(|t| t.def().id),
            _ => store.view(&schema, &relation).map(|v| v.id()),
        };
        let Some(id) = id else {
            if let Some(other) = wrong_kind(cx, &schema, &relation, object_type) {
                return Err(SqlError::new(
                    sqlstate::WRONG_OBJECT_TYPE,
                    format!("\"{relation}\" is not a {kind}"),
                )
                .with_hint(format!("Use DROP {other} to remove a {}.", other.to_lowercase())));
            }
            if if_exists {
                continue;
            }
            return Err(SqlError::new(
                sqlstate::UNDEFINED_TABLE,
                format!("{kind} \"{relation}\" does not exist"),
            ));
        };
        super::access::require_owner_of(cx, &schema, &relation)?;
        requested.push((id, relation.clone()));
        if object_type == ObjectType::Table {
            tables.push((schema, relation));
        }
    }
    // Views named in this statement may depend on each other: only others block the drop.
    let named: BTreeSet<TableId> = requested.iter().map(|(id, _)| *id).collect();
    let mut doomed_views: BTreeSet<TableId> = BTreeSet::new();
    for (id, relation) in &requested {
        let dependents = dependents_of(*id, &views);
        if !cascade {
            if let Some(first) = dependents.iter().find(|d| !named.contains(d)) {
                let dependent =
                    views.iter().find(|v| v.id == *first).map_or("?".to_string(), |v| v.describe());
                return Err(SqlError::new(
                    sqlstate::DEPENDENT_OBJECTS_STILL_EXIST,
                    format!("cannot drop {kind} {relation} because other objects depend on it"),
                )
                .with_detail(format!("{dependent} depends on {kind} {relation}"))
                .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
            }
        }
        doomed_views.extend(dependents);
        if object_type == ObjectType::MaterializedView {
            doomed_views.insert(*id);
        }
    }
    // From here the DROP runs to its end: a cancel or timeout no longer stops it half-way
    // (see atomic_ddl).
    let _writing = super::atomic_ddl::write_phase(cx)?;
    // A table is dropped under its write lock: a running write (a COPY of many chunks)
    // finishes or rolls back first, and none starts meanwhile. Taken in name order, so two
    // DROPs of the same tables cannot wait for each other.
    let mut write_locks = Vec::with_capacity(tables.len());
    let mut lock_order: Vec<&(String, String)> = tables.iter().collect();
    lock_order.sort();
    for (schema, table) in lock_order {
        if let Some(stored) = store.table(schema, table) {
            write_locks.push(stored.write_lock.clone().lock_owned().await);
        }
    }
    drop_jobs(cx, &views, &doomed_views).await?;
    for (schema, table) in tables {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.drop_table(&schema, &table))
            .await
            .map_err(|e| SqlError::internal(format!("drop table task failed: {e}")))?
            .map_err(from_storage)?;
    }
    drop(write_locks);
    for (id, _) in &requested {
        super::access::forget_object(cx, *id);
    }
    Ok(Outcome::Command { tag, rows: None })
}

/// `DROP INDEX`: Weir's only indexes are primary keys, which belong to their constraint.
fn drop_index(cx: &Context<'_>, if_exists: bool, names: &[ObjectName]) -> SqlResult<Outcome> {
    for name in names {
        let (schema, index) = split_name(name)?;
        let owner = cx.engine.store.tables().into_iter().map(|t| t.def()).find(|t| {
            t.schema_name == schema && t.has_primary_key() && t.primary_key_constraint_name() == index
        });
        match owner {
            Some(table) => {
                return Err(SqlError::new(
                    sqlstate::DEPENDENT_OBJECTS_STILL_EXIST,
                    format!(
                        "cannot drop index {index} because constraint {index} on table {} requires it",
                        table.name
                    ),
                )
                .with_hint(format!("You can drop constraint {index} on table {} instead.", table.name)))
            }
            None if if_exists => continue,
            None => {
                return Err(SqlError::new(
                    sqlstate::UNDEFINED_OBJECT,
                    format!("index \"{index}\" does not exist"),
                ))
            }
        }
    }
    Ok(Outcome::Command { tag: "DROP INDEX", rows: None })
}

/// `DROP SOURCE` and `DROP SINK`.
pub async fn run_stream(cx: &Context<'_>, stmt: &DropStream) -> SqlResult<Outcome> {
    let (kind, tag) = if stmt.sink { ("sink", "DROP SINK") } else { ("source", "DROP SOURCE") };
    let store = &cx.engine.store;
    let jobs = dependent_jobs(cx);
    let mut sources = Vec::new();
    let mut doomed: BTreeSet<TableId> = BTreeSet::new();
    for name in &stmt.names {
        let (schema, relation) = split_name(name)?;
        let id = match stmt.sink {
            true => store.sink(&schema, &relation).map(|s| s.id),
            false => store.source(&schema, &relation).map(|s| s.id),
        };
        let Some(id) = id else {
            if stmt.if_exists {
                continue;
            }
            return Err(SqlError::new(
                sqlstate::UNDEFINED_OBJECT,
                format!("{kind} \"{relation}\" does not exist"),
            ));
        };
        super::access::require_owner_of(cx, &schema, &relation)?;
        if stmt.sink {
            doomed.insert(id);
            continue;
        }
        let dependents = dependents_of(id, &jobs);
        if let (false, Some(first)) = (stmt.cascade, dependents.iter().next()) {
            let dependent = jobs.iter().find(|j| j.id == *first).map_or("?".to_string(), |j| j.describe());
            return Err(SqlError::new(
                sqlstate::DEPENDENT_OBJECTS_STILL_EXIST,
                format!("cannot drop source {relation} because other objects depend on it"),
            )
            .with_detail(format!("{dependent} depends on source {relation}"))
            .with_hint("Use DROP SOURCE ... CASCADE to drop the dependent objects too."));
        }
        doomed.extend(dependents);
        sources.push((schema, relation));
    }
    // From here the DROP runs to its end (see atomic_ddl).
    let _writing = super::atomic_ddl::write_phase(cx)?;
    drop_jobs(cx, &jobs, &doomed).await?;
    for (schema, name) in sources {
        let source = store.drop_source(&schema, &name).map_err(from_storage)?;
        super::access::forget_object(cx, source.id);
    }
    Ok(Outcome::Command { tag, rows: None })
}

/// Drops the views and sinks `ids` and everything that reads them, newest first
/// (`ALTER TABLE ... DROP COLUMN ... CASCADE`).
pub(super) async fn drop_readers(cx: &Context<'_>, ids: &BTreeSet<TableId>) -> SqlResult<()> {
    let jobs = dependent_jobs(cx);
    let mut doomed = ids.clone();
    for id in ids {
        doomed.extend(dependents_of(*id, &jobs));
    }
    drop_jobs(cx, &jobs, &doomed).await
}

/// A materialized view or a sink: a job that reads other relations.
struct DependentJob {
    pub id: TableId,
    pub schema: String,
    pub name: String,
    pub sink: bool,
    pub depends_on: Vec<TableId>,
}

impl DependentJob {
    pub fn describe(&self) -> String {
        match self.sink {
            true => format!("sink {}", self.name),
            false => format!("materialized view {}", self.name),
        }
    }
}

/// Every materialized view and sink.
fn dependent_jobs(cx: &Context<'_>) -> Vec<DependentJob> {
    let views = cx.engine.store.views().into_iter().map(|v: ViewDef| DependentJob {
        id: v.id(),
        schema: v.relation.schema_name.clone(),
        name: v.relation.name.clone(),
        sink: false,
        depends_on: v.depends_on,
    });
    let sinks = cx.engine.store.sinks().into_iter().map(|s| DependentJob {
        id: s.id,
        schema: s.schema_name,
        name: s.name,
        sink: true,
        depends_on: s.depends_on,
    });
    views.chain(sinks).collect()
}

/// Stops and removes the jobs `doomed`, newest first (a view goes before those it reads).
async fn drop_jobs(cx: &Context<'_>, jobs: &[DependentJob], doomed: &BTreeSet<TableId>) -> SqlResult<()> {
    for id in doomed.iter().rev() {
        let Some(job) = jobs.iter().find(|v| v.id == *id) else { continue };
        cx.engine.jobs.drop_job(job.id).await.map_err(crate::wire::errors::from_exec)?;
        let store = &cx.engine.store;
        match job.sink {
            true => store.drop_sink(&job.schema, &job.name).map(|sink| remove_start_markers(cx, &sink)),
            false => store.drop_view(&job.schema, &job.name).map(|_| ()),
        }
        .map_err(from_storage)?;
        super::access::forget_object(cx, job.id);
    }
    Ok(())
}

/// Removes a dropped file sink's start markers (see `weir_executor::operators::sink`), where
/// this server can reach its files: a TaskManager on another host keeps its own.
fn remove_start_markers(cx: &Context<'_>, sink: &SinkDef) {
    let Ok(SinkConfig::File { path, .. }) = SinkConfig::parse(&sink.connector, &sink.options) else { return };
    let Ok(file) = cx.engine.files.sink_path(&path) else { return };
    match remove_markers(&file, sink.id) {
        Ok(removed) => tracing::debug!(sink = %sink.name, removed, "sink start markers removed"),
        Err(e) => tracing::warn!(sink = %sink.name, error = %e, "sink start markers not removed"),
    }
}

/// Every view or sink that reads `id`, directly or through other views.
fn dependents_of(id: TableId, jobs: &[DependentJob]) -> BTreeSet<TableId> {
    let mut found = BTreeSet::new();
    let mut frontier = vec![id];
    while let Some(current) = frontier.pop() {
        for job in jobs {
            if job.depends_on.contains(&current) && found.insert(job.id) {
                frontier.push(job.id);
            }
        }
    }
    found
}

/// The other relation kind `name` is, if it exists as one.
fn wrong_kind(cx: &Context<'_>, schema: &str, name: &str, asked: ObjectType) -> Option<&'static str> {
    if cx.engine.store.source(schema, name).is_some() {
        return Some("SOURCE");
    }
    if cx.engine.store.sink(schema, name).is_some() {
        return Some("SINK");
    }
    match asked {
        ObjectType::Table if cx.engine.store.view(schema, name).is_some() => Some("MATERIALIZED VIEW"),
        ObjectType::MaterializedView if cx.engine.store.table(schema, name).is_some() => Some("TABLE"),
        _ => None,
    }
}
