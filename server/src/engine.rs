//! The engine: what every session shares — the durable store and the configuration — and
//! the DataFusion context a statement is planned in.
//!
//! A fresh DataFusion `SessionContext` is built per statement. It is cheap (no data is
//! copied: user tables are providers over RocksDB, catalog tables are built from a small
//! catalog snapshot) and it means every statement sees the catalog as of its start.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, SchemaProvider};
use datafusion::datasource::TableProvider;
use datafusion::error::Result as DfResult;
use datafusion::execution::config::SessionConfig;
use datafusion::prelude::SessionContext;
use weir_executor::connectors::FileAccess;
use weir_executor::{JobManager, StoredTable, ViewTable};
use weir_plan::catalog::ViewDef;
use weir_storage::{InMemoryViewStates, Store, ViewSnapshot, ViewStateStore};

use crate::config::Config;
use crate::pg_catalog::{self, CatalogSnapshot};
use crate::session::Session;

pub const DEFAULT_DATABASE: &str = "weir";
pub const DEFAULT_SCHEMA: &str = "public";
/// The Postgres version Weir speaks; psql picks its catalog queries by it.
pub const PG_SERVER_VERSION: &str = "15.0";

/// The directories of `[file] allowed_dirs`, resolved; the default `DATA_DIR/files` is
/// created if missing, a configured directory must exist.
pub fn file_access(config: &Config) -> Result<FileAccess, String> {
    if config.file_allowed_dirs.is_none() {
        let dir = config.data_dir.join("files");
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    FileAccess::new(&config.file_dirs())
}

pub struct Engine {
    pub store: Arc<Store>,
    pub config: Config,
    /// The streaming runtime: deploys views' jobs and commits epochs.
    pub jobs: JobManager,
    /// Every view's committed contents.
    pub view_states: Arc<dyn ViewStateStore>,
    /// The files `file` sources and sinks may use (`[file] allowed_dirs`).
    pub files: FileAccess,
    /// Roles, owners and grants (see `privileges.rs`).
    pub roles: Arc<crate::privileges::Roles>,
    /// Every connected session (see `backends.rs`).
    pub backends: Arc<crate::backends::Backends>,
    /// Relation names being created by statements that have not committed.
    pub name_claims: Arc<crate::name_claims::NameClaims>,
}

impl Engine {
    /// The most splits a source may have (`[sources] max_splits`).
    pub fn split_limit(&self) -> weir_executor::connectors::SplitLimit {
        self.config.sources.split_limit
    }
}

impl Engine {
    /// Creates the engine and starts the streaming runtime (must run inside tokio).
    pub fn new(store: Arc<Store>, config: Config) -> Result<Self, String> {
        let view_states: Arc<dyn ViewStateStore> = Arc::new(InMemoryViewStates::new());
        let files = file_access(&config)?;
        let roles = Arc::new(crate::privileges::Roles::open(store.clone(), &config.user)?);
        let jobs = crate::runtime::start(&store, &view_states, &config, &files)?;
        Ok(Self {
            store,
            config,
            jobs,
            view_states,
            files,
            roles,
            backends: Arc::default(),
            name_claims: Arc::default(),
        })
    }

    pub fn database_exists(&self, name: &str) -> bool {
        name == DEFAULT_DATABASE
    }

    pub fn catalog_snapshot(&self, session: &Session) -> Arc<CatalogSnapshot> {
        Arc::new(CatalogSnapshot {
            tables: self.store.tables().iter().map(|t| t.def().as_ref().clone()).collect(),
            views: self.store.views(),
            sources: self.store.sources(),
            database: session.database.clone(),
            user: session.user.clone(),
            settings: session.settings(),
            server_version: PG_SERVER_VERSION.to_string(),
            comments: self.store.comments(),
            privileges: self.roles.snapshot(),
            sessions: self.backends.clone(),
            backend_pid: session.backend_pid,
            notices: session.notices.clone(),
        })
    }

    /// A DataFusion context whose default schema is `public` (Weir's tables), with
    /// `pg_catalog` and `information_schema` answering from a catalog snapshot.
    pub fn session_context(&self, session: &Session) -> DfResult<SessionContext> {
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(DEFAULT_DATABASE, DEFAULT_SCHEMA)
            .with_information_schema(false)
            .with_create_default_catalog_and_schema(false)
            .set_bool("datafusion.sql_parser.map_string_types_to_utf8view", false)
            .set_bool("datafusion.execution.parquet.schema_force_view_types", false);
        let runtime = crate::query_memory::query_runtime(self.config.query_memory_limit_bytes)?;
        let ctx = weir_executor::functions::session_context_with_runtime(
            config,
            runtime,
            vec![Arc::new(crate::single_stream_results::SingleStreamResults)],
        );
        let snapshot = self.catalog_snapshot(session);
        let pg = pg_catalog::pg_catalog_schema(snapshot.clone());
        let catalog = MemoryCatalogProvider::new();
        let user_schema = Arc::new(UserSchema {
            store: self.store.clone(),
            views: self.view_states.snapshot(),
            name: DEFAULT_SCHEMA.into(),
            fallback: pg.clone(),
        });
        catalog.register_schema(DEFAULT_SCHEMA, user_schema.clone())?;
        catalog.register_schema(
            "weir_catalog",
            crate::system_tables::schema(self.jobs.clone(), self.store.clone()),
        )?;
        catalog.register_schema("pg_catalog", pg)?;
        catalog.register_schema("information_schema", pg_catalog::information_schema(snapshot.clone()))?;
        ctx.register_catalog(DEFAULT_DATABASE, Arc::new(catalog));
        let resolve = move |name: &datafusion::common::TableReference| {
            let schema = name.schema().unwrap_or(DEFAULT_SCHEMA);
            if schema != DEFAULT_SCHEMA {
                return None;
            }
            user_schema
                .user_relation(name.table())
                .ok()
                .flatten()
                .map(datafusion::datasource::provider_as_source)
        };
        ctx.register_relation_planner(Arc::new(weir_planner::WindowTvfPlanner::new(Arc::new(resolve))))?;
        pg_catalog::register_functions(&ctx, snapshot);
        Ok(ctx)
    }
}

/// A user schema: Weir's stored tables. Unqualified names that are not user tables fall
/// back to `pg_catalog`, as Postgres' `search_path` does implicitly.
struct UserSchema {
    store: Arc<Store>,
    /// Views are read at this one committed epoch for the whole statement.
    views: Arc<ViewSnapshot>,
    name: String,
    fallback: Arc<dyn SchemaProvider>,
}

impl fmt::Debug for UserSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSchema").field("name", &self.name).finish()
    }
}

impl UserSchema {
    /// The user's table, view or source `name` (sources plan but cannot be scanned).
    fn user_relation(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if let Some(table) = self.store.table(&self.name, name) {
            return Ok(Some(Arc::new(StoredTable::new(table))));
        }
        if let Some(view) = self.store.view(&self.name, name) {
            let version = self.views.views.get(&view.id()).cloned();
            return Ok(Some(Arc::new(ViewTable::new(
                view.relation.name.clone(),
                view_schema(&view)?,
                version,
            ))));
        }
        if let Some(source) = self.store.source(&self.name, name) {
            let schema = source.relation().arrow_schema();
            return Ok(Some(Arc::new(crate::source_table::SourceTable { name: source.name, schema })));
        }
        Ok(None)
    }
}

#[async_trait]
impl SchemaProvider for UserSchema {
    fn table_names(&self) -> Vec<String> {
        self.store
            .tables()
            .iter()
            .filter(|t| t.def().schema_name == self.name)
            .map(|t| t.def().name.clone())
            .chain(
                self.store
                    .views()
                    .into_iter()
                    .filter(|v| v.relation.schema_name == self.name)
                    .map(|v| v.relation.name),
            )
            .chain(self.store.sources().into_iter().filter(|s| s.schema_name == self.name).map(|s| s.name))
            .collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        match self.user_relation(name)? {
            Some(table) => Ok(Some(table)),
            None => self.fallback.table(name).await,
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.store.table(&self.name, name).is_some()
            || self.store.view(&self.name, name).is_some()
            || self.store.source(&self.name, name).is_some()
            || self.fallback.table_exist(name)
    }
}

/// The error for writing to `name`, which is not a table: `42809` naming what it is, or
/// `42P01` when nothing has that name.
pub fn not_a_writable_table(store: &Store, schema: &str, name: &str) -> weir_planner::SqlError {
    use weir_planner::{sqlstate, SqlError};
    let what = if store.view(schema, name).is_some() {
        Some("a materialized view: it is maintained from its query")
    } else if store.source(schema, name).is_some() {
        Some("a source: its rows come from its connector")
    } else if store.sink(schema, name).is_some() {
        Some("a sink")
    } else {
        None
    };
    match what {
        Some(what) => {
            SqlError::new(sqlstate::WRONG_OBJECT_TYPE, format!("cannot write to \"{name}\": it is {what}"))
        }
        None => SqlError::new(sqlstate::UNDEFINED_TABLE, format!("relation \"{name}\" does not exist")),
    }
}

/// A view's Arrow schema: its column names with the exact types its job produces.
pub fn view_schema(view: &ViewDef) -> DfResult<arrow::datatypes::SchemaRef> {
    let fields = view
        .relation
        .columns
        .iter()
        .zip(&view.arrow_types)
        .map(|(c, t)| {
            let data_type = t.parse::<arrow::datatypes::DataType>()?;
            Ok(arrow::datatypes::Field::new(&c.name, data_type, true))
        })
        .collect::<DfResult<Vec<_>>>()?;
    Ok(Arc::new(arrow::datatypes::Schema::new(fields)))
}
