//! Postgres' system catalogs (`pg_catalog`) and `information_schema`, answered from Weir's
//! own catalog.
//!
//! psql's meta-commands (`\d`, `\dt`, `\l`, ...), drivers and GUI tools discover a database
//! by querying these tables and calling a handful of system functions, with exactly the SQL
//! they send to Postgres. Weir answers that SQL with DataFusion, so the catalogs are ordinary
//! in-memory tables built from a [`CatalogSnapshot`] taken when the statement is planned:
//! every table a statement reads agrees with every other, and nothing is maintained
//! incrementally. The tables are tiny (a few hundred rows), so they are rebuilt on demand.
//!
//! Values follow Postgres 15 wherever a client can see them: oids of built-in objects, type
//! names and modifiers, column names and order, `"char"` codes, owner and collation rules.
//! Catalogs of features Weir does not have (policies, publications, inheritance, ...) exist
//! with the right columns and no rows, because psql queries them unconditionally.
//!
//! - [`columns`]: how a table is declared and turned into Arrow data.
//! - [`registry`]: every system table and view, with its oid, namespace and columns.
//! - [`relations`]: the relation model every relation catalog is derived from: system
//!   catalogs, user tables (relkind `r`), their primary-key indexes (`i`) and materialized
//!   views (`m`).
//! - [`namespaces`]: schemas (`pg_namespace`), the search path, `current_schema()` and
//!   visibility.
//! - [`naming`]: relation names read and printed as `regclass` does, and `quote_ident`.
//! - [`pg_class`]: `pg_class` and `pg_attribute`.
//! - [`indexes`]: `pg_index`, `pg_constraint`, `pg_get_indexdef` / `pg_get_constraintdef`.
//! - [`foreign_tables`]: sources as foreign tables (relkind `f`), their connectors as
//!   foreign servers.
//! - [`relation_views`]: `pg_tables`, `pg_views`, `pg_matviews`, `pg_indexes`.
//! - [`empty_catalogs`]: catalogs of features Weir lacks, which psql reads anyway.
//! - [`cluster`]: databases, roles, settings, access methods, collations, tablespaces.
//! - [`types`]: built-in types, type modifiers and `format_type()`.
//! - [`information_schema`]: the SQL-standard views over the same data.
//! - [`functions`]: system functions (`format_type`, `pg_get_indexdef`, `::regclass`, ...).
//! - [`backend_functions`]: `pg_backend_pid`, `pg_cancel_backend`, `pg_terminate_backend`.
//! - [`stat_activity`]: `pg_stat_activity`, one row per session.
//! - [`viewdef`]: `pg_get_viewdef`, a view's stored query in Postgres' layout.
//!
//! Oids are `Int64` columns tagged as `oid` for the wire layer. DataFusion compares them with
//! the quoted literals psql inlines (`c.oid = '16385'`) by casting the literal.

mod backend_functions;
mod cluster;
pub(crate) mod columns;
mod empty_catalogs;
mod foreign_tables;
mod functions;
mod indexes;
mod information_schema;
mod namespaces;
mod naming;
mod pg_class;
mod registry;
mod relation_views;
mod relations;
mod stat_activity;
mod types;
mod viewdef;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::SchemaProvider;
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::error::Result as DfResult;
use weir_plan::catalog::{SourceDef, TableDef, ViewDef};

pub use backend_functions::signals_sessions;
pub use functions::register_functions;
pub use naming::quote_ident;
pub use types::{format_type, type_modifier, type_oid};

/// What the catalog looks like at the moment a statement is planned.
#[derive(Debug, Clone)]
pub struct CatalogSnapshot {
    pub tables: Vec<TableDef>,
    /// Materialized views (shown in `pg_class` with relkind `m`).
    pub views: Vec<ViewDef>,
    /// Sources (shown in `pg_class` as foreign tables, relkind `f`).
    pub sources: Vec<SourceDef>,
    /// Current database name, e.g. "weir".
    pub database: String,
    /// Current user, e.g. "weir".
    pub user: String,
    /// Session settings, name -> value (for `pg_settings` / `current_setting`).
    pub settings: Vec<(String, String)>,
    /// e.g. "15.0".
    pub server_version: String,
    /// `COMMENT ON` texts by (relation oid, column number; 0 for the relation).
    pub comments: std::collections::BTreeMap<(u64, i32), String>,
    /// Roles, memberships, owners and grants.
    pub privileges: Arc<crate::privileges::PrivilegeCatalog>,
    /// The server's sessions, live (for `pg_stat_activity` and the functions that signal
    /// sessions).
    pub sessions: Arc<crate::backends::Backends>,
    /// The statement's own session's pid (`pg_backend_pid()`).
    pub backend_pid: i32,
    /// Where the statement's warnings go.
    pub notices: Arc<crate::session::Notices>,
}

impl CatalogSnapshot {
    /// A session setting, matched case-insensitively as Postgres does.
    pub fn setting(&self, name: &str) -> Option<&str> {
        self.settings.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The comment on the relation of pg_class oid `oid` (column `column`, 0 for the
    /// relation), if the relation exists.
    pub fn comment(&self, oid: i64, column: i32) -> Option<&str> {
        let id = self
            .tables
            .iter()
            .find(|t| table_oid(t) == oid)
            .map(|t| t.id)
            .or_else(|| self.views.iter().find(|v| view_oid(v) == oid).map(|v| v.id()))?;
        self.comments.get(&(id, column)).map(String::as_str)
    }

    /// The name of the role owning user object `object` (the bootstrap role owns the
    /// system catalogs).
    pub fn owner_name(&self, object: Option<u64>) -> String {
        match object {
            Some(id) => self.privileges.owner_of(id).to_string(),
            None => self.privileges.bootstrap().to_string(),
        }
    }

    /// The oid of the role owning user object `object`.
    pub fn owner_oid(&self, object: Option<u64>) -> i64 {
        let name = self.owner_name(object);
        self.privileges.role(&name).map_or(BOOTSTRAP_SUPERUSER_OID, |r| r.oid)
    }

    /// Every comment of an existing relation: (pg_class oid, column, text).
    pub fn comments_of_relations(&self) -> Vec<(i64, i32, &str)> {
        let tables = self.tables.iter().map(|t| (t.id, table_oid(t)));
        let views = self.views.iter().map(|v| (v.id(), view_oid(v)));
        let oids: std::collections::HashMap<u64, i64> = tables.chain(views).collect();
        self.comments
            .iter()
            .filter_map(|((id, column), text)| Some((*oids.get(id)?, *column, text.as_str())))
            .collect()
    }
}

pub const PG_CATALOG_NAMESPACE_OID: i64 = 11;
pub const PG_TOAST_NAMESPACE_OID: i64 = 99;
pub const PUBLIC_NAMESPACE_OID: i64 = 2200;
pub const INFORMATION_SCHEMA_NAMESPACE_OID: i64 = 13181;
/// The bootstrap superuser (`auth.user`) has the oid Postgres gives its own.
pub const BOOTSTRAP_SUPERUSER_OID: i64 = 10;
/// The role that owns `public` since Postgres 15 (`\dn` shows it).
pub const DATABASE_OWNER_ROLE_OID: i64 = 6171;
/// The one database.
pub const DATABASE_OID: i64 = 5;
/// `pg_am` oids of the two access methods Weir's relations report.
pub const HEAP_AM_OID: i64 = 2;
pub const BTREE_AM_OID: i64 = 403;

/// First oid of user objects, as in Postgres (`FirstNormalObjectId`).
const FIRST_USER_OID: i64 = 16384;
/// Indexes and constraints get oids from a separate range, two per table.
const FIRST_INDEX_OID: i64 = 1_000_000;

/// The oid of a user table: stable for the table's life, derived from its id.
pub fn table_oid(def: &TableDef) -> i64 {
    FIRST_USER_OID.saturating_add(i64::try_from(def.id).unwrap_or(i64::MAX / 4))
}

/// The oid of a materialized view: views and tables share one id space, so the same rule.
pub fn view_oid(def: &ViewDef) -> i64 {
    table_oid(&def.relation)
}

/// The oid of a table's primary-key index.
pub fn primary_key_index_oid(def: &TableDef) -> i64 {
    FIRST_INDEX_OID.saturating_add(i64::try_from(def.id).unwrap_or(i64::MAX / 4).saturating_mul(2))
}

/// The oid of a table's primary-key constraint (`pg_constraint.oid`).
pub fn primary_key_constraint_oid(def: &TableDef) -> i64 {
    primary_key_index_oid(def).saturating_add(1)
}

/// The `pg_catalog` schema: system tables and views.
pub fn pg_catalog_schema(snapshot: Arc<CatalogSnapshot>) -> Arc<dyn SchemaProvider> {
    Arc::new(SystemSchema { snapshot, namespace: PG_CATALOG_NAMESPACE_OID })
}

/// The `information_schema` schema.
pub fn information_schema(snapshot: Arc<CatalogSnapshot>) -> Arc<dyn SchemaProvider> {
    Arc::new(SystemSchema { snapshot, namespace: INFORMATION_SCHEMA_NAMESPACE_OID })
}

/// A schema of system relations, each built from the snapshot when a query names it.
struct SystemSchema {
    snapshot: Arc<CatalogSnapshot>,
    namespace: i64,
}

impl fmt::Debug for SystemSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemSchema").field("namespace", &self.namespace).finish()
    }
}

#[async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        registry::in_namespace(self.namespace).map(|r| r.name.to_string()).collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(relation) = registry::in_namespace(self.namespace).find(|r| r.name == name) else {
            return Ok(None);
        };
        let batch = relation.build(&self.snapshot)?;
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
        Ok(Some(Arc::new(table)))
    }

    fn table_exist(&self, name: &str) -> bool {
        registry::in_namespace(self.namespace).any(|r| r.name == name)
    }
}

/// Registers `pg_catalog` and `information_schema` functions and schemas in a bare context;
/// for tests that run client queries without the server.
#[cfg(test)]
pub(crate) fn test_context(snapshot: Arc<CatalogSnapshot>) -> datafusion::prelude::SessionContext {
    use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};
    use datafusion::execution::config::SessionConfig;

    let config = SessionConfig::new()
        .with_default_catalog_and_schema("weir", "pg_catalog")
        .with_information_schema(false)
        .with_create_default_catalog_and_schema(false);
    let ctx = datafusion::prelude::SessionContext::new_with_config(config);
    let catalog = MemoryCatalogProvider::new();
    let _ = catalog.register_schema("pg_catalog", pg_catalog_schema(snapshot.clone()));
    let _ = catalog.register_schema("information_schema", information_schema(snapshot.clone()));
    ctx.register_catalog("weir", Arc::new(catalog));
    register_functions(&ctx, snapshot);
    ctx
}

#[cfg(test)]
mod tests;
