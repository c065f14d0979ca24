//! Renames: `ALTER TABLE name RENAME TO new`, `ALTER { MATERIALIZED VIEW | VIEW | SOURCE |
//! SINK } name RENAME TO new`, and `ALTER { TABLE | MATERIALIZED VIEW } name RENAME [COLUMN]
//! a TO b`.
//!
//! Running jobs read what they read by id and restart from their stored JobGraphs, so a
//! rename never stops or changes a view: a table's source hands a job its rows under the
//! column names it was planned with (see `weir_executor::sources::table`). What changes is
//! the catalog: the object's definition, and the stored SQL of every view and sink that
//! reads it, rewritten to the new name (see [`super::definition_rename`]) so that
//! `pg_get_viewdef` shows the new names as Postgres does. All of it is one synced catalog
//! write; a rename that cannot rewrite a dependent's definition with certainty is refused
//! with `0A000` and changes nothing.

use std::collections::BTreeSet;

use weir_plan::catalog::{ColumnDef, SinkDef, TableDef, TableId, ViewDef};
use weir_plan::job_graph::SourceSpec;
use weir_plan::JobGraph;
use weir_planner::sqlparser::ast::{Ident, ObjectName};
use weir_planner::{normalize_ident, split_name, sqlstate, RenamedKind, SqlError, SqlResult};
use weir_storage::{CatalogChange, StorageError, Store};

use super::definition_rename::{rename_in_definition, Renamed};
use super::{Context, Outcome};
use crate::wire::errors::from_storage;

/// The statement a rename came in, which decides the kinds of object it may name and its
/// command tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statement {
    AlterTable,
    Alter(RenamedKind),
}

impl Statement {
    pub fn tag(self) -> &'static str {
        match self {
            Statement::AlterTable => "ALTER TABLE",
            Statement::Alter(RenamedKind::MaterializedView) => "ALTER MATERIALIZED VIEW",
            Statement::Alter(RenamedKind::View) => "ALTER VIEW",
            Statement::Alter(RenamedKind::Source) => "ALTER SOURCE",
            Statement::Alter(RenamedKind::Sink) => "ALTER SINK",
        }
    }
}

/// A relation found by name, with its definition.
enum Found {
    Table(TableDef),
    View(ViewDef),
    Source(weir_plan::catalog::SourceDef),
    Sink(SinkDef),
}

impl Found {
    fn id(&self) -> TableId {
        match self {
            Found::Table(t) => t.id,
            Found::View(v) => v.id(),
            Found::Source(s) => s.id,
            Found::Sink(s) => s.id,
        }
    }
}

/// Finds `name` as an object `statement` may alter; `None` when nothing has the name.
fn find(store: &Store, statement: Statement, schema: &str, name: &str) -> SqlResult<Option<Found>> {
    let found = if let Some(table) = store.table(schema, name) {
        Found::Table(table.def().as_ref().clone())
    } else if let Some(view) = store.view(schema, name) {
        Found::View(view)
    } else if let Some(source) = store.source(schema, name) {
        Found::Source(source)
    } else if let Some(sink) = store.sink(schema, name) {
        Found::Sink(sink)
    } else {
        return Ok(None);
    };
    // As in Postgres, ALTER TABLE renames any relation; the other statements only their kind.
    let wrong =
        |what: &str| Err(SqlError::new(sqlstate::WRONG_OBJECT_TYPE, format!("\"{name}\" is not {what}")));
    match (statement, &found) {
        (Statement::AlterTable, Found::Table(_) | Found::View(_)) => Ok(Some(found)),
        (Statement::AlterTable, _) => wrong("a table"),
        (Statement::Alter(RenamedKind::MaterializedView), Found::View(_)) => Ok(Some(found)),
        (Statement::Alter(RenamedKind::MaterializedView), _) => wrong("a materialized view"),
        // Weir's views are all materialized: ALTER VIEW renames them too.
        (Statement::Alter(RenamedKind::View), Found::View(_)) => Ok(Some(found)),
        (Statement::Alter(RenamedKind::View), _) => wrong("a view"),
        (Statement::Alter(RenamedKind::Source), Found::Source(_)) => Ok(Some(found)),
        (Statement::Alter(RenamedKind::Source), _) => wrong("a source"),
        (Statement::Alter(RenamedKind::Sink), Found::Sink(_)) => Ok(Some(found)),
        (Statement::Alter(RenamedKind::Sink), _) => wrong("a sink"),
    }
}

fn not_found(statement: Statement, name: &str) -> SqlError {
    match statement {
        Statement::Alter(RenamedKind::Source) => {
            SqlError::new(sqlstate::UNDEFINED_OBJECT, format!("source \"{name}\" does not exist"))
        }
        Statement::Alter(RenamedKind::Sink) => {
            SqlError::new(sqlstate::UNDEFINED_OBJECT, format!("sink \"{name}\" does not exist"))
        }
        _ => SqlError::new(sqlstate::UNDEFINED_TABLE, format!("relation \"{name}\" does not exist")),
    }
}

/// `... RENAME TO new_name`.
pub fn rename_relation(
    cx: &Context<'_>,
    statement: Statement,
    name: &ObjectName,
    new_name: &Ident,
    if_exists: bool,
) -> SqlResult<Outcome> {
    let tag = Outcome::Command { tag: statement.tag(), rows: None };
    let (schema, old) = split_name(name)?;
    let new = normalize_ident(new_name);
    let store = &cx.engine.store;
    let Some(found) = find(store, statement, &schema, &old)? else {
        return match if_exists {
            true => Ok(tag),
            false => Err(not_found(statement, &old)),
        };
    };
    if new == old {
        return Err(SqlError::new(sqlstate::DUPLICATE_TABLE, format!("relation \"{new}\" already exists")));
    }
    // A name a concurrent statement is creating (see name_claims).
    let Some(_claim) = cx.engine.name_claims.try_claim(&schema, &new) else {
        return Err(SqlError::new(
            "55006",
            format!("relation \"{new}\" is being created by a concurrent statement"),
        )
        .with_hint("Retry once that statement has ended."));
    };
    let id = found.id();
    let mut change = CatalogChange::default();
    match found {
        Found::Table(mut def) => {
            if def.has_primary_key() {
                def.primary_key_name = Some(def.primary_key_constraint_name());
            }
            def.name = new.clone();
            change.table = Some(def);
        }
        Found::View(mut def) => {
            def.relation.name = new.clone();
            def.job_graph.target.name = new.clone();
            change.views.push(def);
        }
        Found::Source(mut def) => {
            def.name = new.clone();
            change.sources.push(def);
        }
        Found::Sink(mut def) => {
            def.name = new.clone();
            def.job_graph.target.name = new.clone();
            change.sinks.push(def);
        }
    }
    rewrite_dependents(store, &mut change, id, Renamed::Relation, &old, &new, &|def| {
        relabel_sources(def, id, &new)
    })
    .map_err(|(reader, reason)| {
        SqlError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!("cannot rename \"{old}\" to \"{new}\": the definition of {reader} cannot be rewritten: {reason}"),
        )
        .with_hint(format!("drop {reader} first, rename, then create it again"))
    })?;
    alter_catalog(store, change)?;
    tracing::info!(from = %old, to = %new, kind = statement.tag(), "relation renamed");
    Ok(tag)
}

/// `... RENAME [COLUMN] old TO new` of a table or a materialized view.
pub fn rename_column(
    cx: &Context<'_>,
    statement: Statement,
    name: &ObjectName,
    old_column: &Ident,
    new_column: &Ident,
    if_exists: bool,
) -> SqlResult<Outcome> {
    let tag = Outcome::Command { tag: statement.tag(), rows: None };
    let (schema, relation) = split_name(name)?;
    let (old, new) = (normalize_ident(old_column), normalize_ident(new_column));
    let store = &cx.engine.store;
    let Some(found) = find(store, statement, &schema, &relation)? else {
        return match if_exists {
            true => Ok(tag),
            false => Err(not_found(statement, &relation)),
        };
    };
    let id = found.id();
    let mut change = CatalogChange::default();
    let columns: &mut Vec<ColumnDef> = match found {
        Found::Table(def) => &mut change.table.insert(def).columns,
        Found::View(def) => {
            change.views.push(def);
            match change.views.last_mut() {
                Some(view) => &mut view.relation.columns,
                None => return Err(SqlError::internal("the renamed view went missing")),
            }
        }
        Found::Source(_) | Found::Sink(_) => {
            return Err(SqlError::unsupported("renaming a column of a source or sink")
                .with_hint("drop the source or sink and create it again with the new name"))
        }
    };
    let position = columns.iter().position(|c| c.name == old).ok_or_else(|| {
        SqlError::new(sqlstate::UNDEFINED_COLUMN, format!("column \"{old}\" does not exist"))
    })?;
    if columns.iter().any(|c| c.name == new) {
        return Err(SqlError::new(
            sqlstate::DUPLICATE_COLUMN,
            format!("column \"{new}\" of relation \"{relation}\" already exists"),
        ));
    }
    columns[position].name = new.clone();
    if let Some(table) = change.table.as_mut() {
        if let Some(watermark) = table.watermark.as_mut() {
            // The watermark's display text names columns; its positional form does not change.
            let select = format!("SELECT {}", watermark.expr);
            let renamed = rename_in_definition(&select, Renamed::Column, &old, &new, &BTreeSet::new())
                .map_err(|reason| {
                    SqlError::unsupported(format!(
                        "renaming column \"{old}\" of \"{relation}\": its WATERMARK FOR {reason}"
                    ))
                })?;
            watermark.expr = renamed.trim_start_matches("SELECT ").to_string();
        }
    }
    rewrite_dependents(store, &mut change, id, Renamed::Column, &old, &new, &|_| {}).map_err(
        |(reader, reason)| {
            SqlError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                format!(
                    "cannot rename column \"{old}\" of \"{relation}\" to \"{new}\": the definition of {reader} cannot \
                     be rewritten: {reason}"
                ),
            )
            .with_hint(format!("drop {reader} first, rename, then create it again"))
        },
    )?;
    alter_catalog(store, change)?;
    tracing::info!(relation = %relation, from = %old, to = %new, "column renamed");
    Ok(tag)
}

/// Adds to `change` the definitions of the views and sinks that read `id`, with the name
/// `old` renamed to `new` in their SQL and `relabel` applied to their JobGraphs. Fails with
/// the reader and the reason when a definition cannot be rewritten with certainty.
fn rewrite_dependents(
    store: &Store,
    change: &mut CatalogChange,
    id: TableId,
    what: Renamed,
    old: &str,
    new: &str,
    relabel: &dyn Fn(&mut JobGraph),
) -> Result<(), (String, String)> {
    let other_columns = |depends_on: &[TableId]| -> BTreeSet<String> {
        depends_on
            .iter()
            .filter(|read| what == Renamed::Relation || **read != id)
            .flat_map(|read| columns_of(store, *read))
            .collect()
    };
    for mut view in store.views().into_iter().filter(|v| v.depends_on.contains(&id)) {
        let reader = format!("materialized view \"{}\"", view.relation.name);
        view.definition =
            rename_in_definition(&view.definition, what, old, new, &other_columns(&view.depends_on))
                .map_err(|reason| (reader, reason))?;
        relabel(&mut view.job_graph);
        // The view itself may be in the change already (a view renamed that reads itself
        // cannot happen; a view's column renamed is not read by the view).
        change.views.push(view);
    }
    for mut sink in store.sinks().into_iter().filter(|s| s.depends_on.contains(&id)) {
        let reader = format!("sink \"{}\"", sink.name);
        sink.definition =
            rename_in_definition(&sink.definition, what, old, new, &other_columns(&sink.depends_on))
                .map_err(|reason| (reader, reason))?;
        relabel(&mut sink.job_graph);
        change.sinks.push(sink);
    }
    Ok(())
}

/// The column names of relation `id` (table, view or source).
fn columns_of(store: &Store, id: TableId) -> Vec<String> {
    let names = |columns: &[ColumnDef]| columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    if let Some(table) = store.tables().into_iter().find(|t| t.def().id == id) {
        return names(&table.def().columns);
    }
    if let Some(view) = store.views().into_iter().find(|v| v.id() == id) {
        return names(&view.relation.columns);
    }
    store.sources().into_iter().find(|s| s.id == id).map(|s| names(&s.columns)).unwrap_or_default()
}

/// Renames the reads of relation `id` in a JobGraph (labels in logs and EXPLAIN; jobs
/// find what they read by id).
fn relabel_sources(graph: &mut JobGraph, id: TableId, new: &str) {
    for vertex in &mut graph.vertices {
        match &mut vertex.source {
            Some(SourceSpec::Table { table_id, table_name, .. }) if *table_id == id => {
                *table_name = new.to_string()
            }
            Some(SourceSpec::View { view_id, view_name, .. }) if *view_id == id => {
                *view_name = new.to_string()
            }
            Some(SourceSpec::Connector { source_id, source_name, .. }) if *source_id == id => {
                *source_name = new.to_string()
            }
            _ => {}
        }
    }
}

/// Writes `change` (renames only: no rows change).
fn alter_catalog(store: &Store, change: CatalogChange) -> SqlResult<()> {
    store.alter(change, None).map_err(|e| match e {
        StorageError::TableExists(name) => {
            SqlError::new(sqlstate::DUPLICATE_TABLE, format!("relation \"{name}\" already exists"))
        }
        other => from_storage(other),
    })
}
