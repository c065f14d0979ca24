//! The RocksDB instance under the data directory and the catalog it holds.
//!
//! The catalog column family maps `table/<id>` to a JSON [`TableDef`]. Creating or dropping
//! a table is one synced `WriteBatch` (dropping also range-deletes the table's rows and
//! changelog), so the catalog and data never disagree after a crash.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};
use tracing::info;

use crate::error::{StorageError, StorageResult};
use crate::table::{RowConversion, TableStore};
use weir_plan::catalog::{SinkDef, SourceDef, TableDef, TableId, ViewDef};
use weir_plan::JobGraph;

pub(crate) const CF_CATALOG: &str = "catalog";
pub(crate) const CF_ROWS: &str = "table_rows";
pub(crate) const CF_LOG: &str = "table_log";

const TABLE_KEY_PREFIX: &[u8] = b"table/";
const VIEW_KEY_PREFIX: &[u8] = b"view/";
const SOURCE_KEY_PREFIX: &[u8] = b"source/";
const SINK_KEY_PREFIX: &[u8] = b"sink/";
const NEXT_TABLE_ID_KEY: &[u8] = b"meta/next_table_id";
/// `comment/` · relation id (`u64`) · column number (`i32`, 0 for the relation): the text of
/// a `COMMENT ON`.
const COMMENT_KEY_PREFIX: &[u8] = b"comment/";
/// Roles, memberships, owners and grants: one JSON document the server's privilege module
/// owns (see `weir_server::privileges`). The store keeps its bytes, synced, and nothing else.
const PRIVILEGES_KEY: &[u8] = b"meta/privileges";

/// New definitions of existing objects (found by id; a name may change), written in one
/// synced batch by [`Store::alter`]: `ALTER TABLE`, and renames with the definitions of the
/// views and sinks that read the renamed object.
#[derive(Debug, Default)]
pub struct CatalogChange {
    /// At most one table: the one altered.
    pub table: Option<TableDef>,
    pub views: Vec<ViewDef>,
    pub sources: Vec<SourceDef>,
    pub sinks: Vec<SinkDef>,
    /// Columns removed, in order, from relation `.0` at column number `.1` (1-based): each
    /// one's comment goes and the comments of the columns after it move down one.
    pub dropped_columns: Vec<(TableId, i32)>,
}

/// The durable store: catalog plus every table. Cheap to share behind an `Arc`.
pub struct Store {
    db: Arc<DB>,
    /// Tables by (schema, name). Guarded for concurrent DDL; table data itself is not here.
    tables: RwLock<BTreeMap<(String, String), Arc<TableStore>>>,
    /// Materialized views by (schema, name). Their contents live in memory (`ViewStateStore`).
    views: RwLock<BTreeMap<(String, String), ViewDef>>,
    /// Sources and sinks by (schema, name); definitions only.
    sources: RwLock<BTreeMap<(String, String), SourceDef>>,
    sinks: RwLock<BTreeMap<(String, String), SinkDef>>,
    /// `COMMENT ON` texts by (relation id, column number; 0 for the relation itself).
    comments: RwLock<BTreeMap<(u64, i32), String>>,
}

impl Store {
    /// Opens (or creates) the store in `dir` and loads the catalog.
    pub fn open(dir: &Path) -> StorageResult<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StorageError::Invalid(format!("cannot create data directory {}: {e}", dir.display()))
        })?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        opts.increase_parallelism(2);
        let cfs = [CF_CATALOG, CF_ROWS, CF_LOG].map(|name| {
            let mut cf_opts = Options::default();
            cf_opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(name, cf_opts)
        });
        let db = Arc::new(DB::open_cf_descriptors(&opts, dir.join("rocksdb"), cfs)?);
        let store = Self {
            db,
            tables: RwLock::new(BTreeMap::new()),
            views: RwLock::new(BTreeMap::new()),
            sources: RwLock::new(BTreeMap::new()),
            sinks: RwLock::new(BTreeMap::new()),
            comments: RwLock::new(BTreeMap::new()),
        };
        crate::catalog_format::upgrade(
            &store.db,
            store.cf(CF_CATALOG)?,
            &[VIEW_KEY_PREFIX, SINK_KEY_PREFIX],
        )?;
        store.load_catalog()?;
        Ok(store)
    }

    fn load_catalog(&self) -> StorageResult<()> {
        let cf = self.cf(CF_CATALOG)?;
        let mut tables = BTreeMap::new();
        for item in self.db.prefix_iterator_cf(cf, TABLE_KEY_PREFIX) {
            let (key, value) = item?;
            if !key.starts_with(TABLE_KEY_PREFIX) {
                break;
            }
            let def: TableDef = decode_definition(&value, "table")?;
            let table = TableStore::open(self.db.clone(), def.clone())?;
            tables.insert((def.schema_name.clone(), def.name.clone()), Arc::new(table));
        }
        let mut views = BTreeMap::new();
        for item in self.db.prefix_iterator_cf(cf, VIEW_KEY_PREFIX) {
            let (key, value) = item?;
            if !key.starts_with(VIEW_KEY_PREFIX) {
                break;
            }
            let def: ViewDef = decode_definition(&value, "materialized view")?;
            views.insert((def.relation.schema_name.clone(), def.relation.name.clone()), def);
        }
        let sources: BTreeMap<_, SourceDef> = self
            .load_objects(SOURCE_KEY_PREFIX, "source")?
            .into_iter()
            .map(|d: SourceDef| ((d.schema_name.clone(), d.name.clone()), d))
            .collect();
        let sinks: BTreeMap<_, SinkDef> = self
            .load_objects(SINK_KEY_PREFIX, "sink")?
            .into_iter()
            .map(|d: SinkDef| ((d.schema_name.clone(), d.name.clone()), d))
            .collect();
        info!(
            tables = tables.len(),
            views = views.len(),
            sources = sources.len(),
            sinks = sinks.len(),
            "catalog loaded"
        );
        *self.tables.write().map_err(|_| poisoned())? = tables;
        *self.views.write().map_err(|_| poisoned())? = views;
        *self.sources.write().map_err(|_| poisoned())? = sources;
        *self.sinks.write().map_err(|_| poisoned())? = sinks;
        let mut comments = BTreeMap::new();
        for item in self.db.prefix_iterator_cf(self.cf(CF_CATALOG)?, COMMENT_KEY_PREFIX) {
            let (key, value) = item?;
            let Some(rest) = key.strip_prefix(COMMENT_KEY_PREFIX) else { break };
            let (Some(object), Some(column)) = (rest.get(..8), rest.get(8..12)) else {
                return Err(StorageError::CorruptCatalog("a comment key of the wrong length".into()));
            };
            let object = u64::from_be_bytes(object.try_into().unwrap_or_default());
            let column = i32::from_be_bytes(column.try_into().unwrap_or_default());
            let text = String::from_utf8(value.to_vec())
                .map_err(|_| StorageError::CorruptCatalog("a comment that is not UTF-8".into()))?;
            comments.insert((object, column), text);
        }
        *self.comments.write().map_err(|_| poisoned())? = comments;
        Ok(())
    }

    /// Sets (or with `None` removes) the comment on relation `object` (column `column`, 0
    /// for the relation itself), durably.
    pub fn set_comment(&self, object: u64, column: i32, comment: Option<&str>) -> StorageResult<()> {
        let mut comments = self.comments.write().map_err(|_| poisoned())?;
        let key = comment_key(object, column);
        let mut wb = WriteBatch::default();
        match comment {
            Some(text) => wb.put_cf(self.cf(CF_CATALOG)?, &key, text.as_bytes()),
            None => wb.delete_cf(self.cf(CF_CATALOG)?, &key),
        }
        self.write_synced(wb)?;
        match comment {
            Some(text) => comments.insert((object, column), text.to_string()),
            None => comments.remove(&(object, column)),
        };
        Ok(())
    }

    /// The stored privilege catalog (roles and grants), if one was ever written.
    pub fn privileges_document(&self) -> StorageResult<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(CF_CATALOG)?, PRIVILEGES_KEY)?)
    }

    /// Replaces the privilege catalog durably (one synced write).
    pub fn set_privileges_document(&self, document: &[u8]) -> StorageResult<()> {
        self.write_synced_put(PRIVILEGES_KEY, document)
    }

    /// Every comment, by (relation id, column number).
    pub fn comments(&self) -> BTreeMap<(u64, i32), String> {
        self.comments.read().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn view(&self, schema: &str, name: &str) -> Option<ViewDef> {
        self.views.read().ok()?.get(&(schema.to_string(), name.to_string())).cloned()
    }

    /// All materialized views, in creation order (so a view comes after those it reads).
    pub fn views(&self) -> Vec<ViewDef> {
        let mut views: Vec<ViewDef> =
            self.views.read().map(|v| v.values().cloned().collect()).unwrap_or_default();
        views.sort_by_key(|v| v.id());
        views
    }

    /// Allocates the id of a relation about to be created (tables and views share ids, which
    /// become their `pg_class` oids).
    pub fn allocate_id(&self) -> StorageResult<TableId> {
        let _tables = self.tables.write().map_err(|_| poisoned())?;
        let id = self.next_table_id()?;
        self.write_synced_put(NEXT_TABLE_ID_KEY, &(id + 1).to_be_bytes())?;
        Ok(id)
    }

    /// Persists a view definition whose id came from [`Store::allocate_id`].
    pub fn create_view(&self, def: ViewDef) -> StorageResult<()> {
        let tables = self.tables.read().map_err(|_| poisoned())?;
        let mut views = self.views.write().map_err(|_| poisoned())?;
        let key = (def.relation.schema_name.clone(), def.relation.name.clone());
        if tables.contains_key(&key) || views.contains_key(&key) || self.is_stream_object(&key)? {
            return Err(StorageError::TableExists(def.relation.name));
        }
        let json = serde_json::to_vec(&def)
            .map_err(|e| StorageError::CorruptCatalog(format!("encode view definition: {e}")))?;
        self.write_synced_put(&view_key(def.id()), &json)?;
        info!(view = %def.relation.name, id = def.id(), "materialized view created");
        views.insert(key, def);
        Ok(())
    }

    pub fn drop_view(&self, schema: &str, name: &str) -> StorageResult<ViewDef> {
        let mut views = self.views.write().map_err(|_| poisoned())?;
        let key = (schema.to_string(), name.to_string());
        let def = views.get(&key).ok_or_else(|| StorageError::TableNotFound(name.to_string()))?.clone();
        let mut wb = WriteBatch::default();
        wb.delete_cf(self.cf(CF_CATALOG)?, view_key(def.id()));
        self.write_synced(wb)?;
        views.remove(&key);
        info!(view = name, id = def.id(), "materialized view dropped");
        Ok(def)
    }

    /// Replaces the job graph of view `schema.name` (a rescale), with the parallelism of
    /// its materialize operator; returns the definition as it was.
    pub fn set_view_graph(
        &self,
        schema: &str,
        name: &str,
        graph: JobGraph,
        parallelism: usize,
    ) -> StorageResult<ViewDef> {
        let mut views = self.views.write().map_err(|_| poisoned())?;
        let key = (schema.to_string(), name.to_string());
        let before = views.get(&key).ok_or_else(|| StorageError::TableNotFound(name.to_string()))?.clone();
        let def = ViewDef { job_graph: graph, parallelism, ..before.clone() };
        let json = serde_json::to_vec(&def)
            .map_err(|e| StorageError::CorruptCatalog(format!("encode view definition: {e}")))?;
        self.write_synced_put(&view_key(def.id()), &json)?;
        info!(view = name, id = def.id(), parallelism, "materialized view rescaled");
        views.insert(key, def);
        Ok(before)
    }

    /// Replaces the job graph of sink `schema.name` (a rescale); returns the definition as
    /// it was.
    pub fn set_sink_graph(&self, schema: &str, name: &str, graph: JobGraph) -> StorageResult<SinkDef> {
        let mut sinks = self.sinks.write().map_err(|_| poisoned())?;
        let key = (schema.to_string(), name.to_string());
        let before = sinks.get(&key).ok_or_else(|| StorageError::TableNotFound(name.to_string()))?.clone();
        let def = SinkDef { job_graph: graph, ..before.clone() };
        let json = serde_json::to_vec(&def)
            .map_err(|e| StorageError::CorruptCatalog(format!("encode sink definition: {e}")))?;
        self.write_synced_put(&object_key(SINK_KEY_PREFIX, def.id), &json)?;
        info!(sink = name, id = def.id, "sink rescaled");
        sinks.insert(key, def);
        Ok(before)
    }

    /// Applies `change` atomically and durably: every definition in it replaces the one
    /// with its id, under its (possibly new) name. With `convert`, the table's rows and
    /// changelog are rewritten into its new layout in the same write (see
    /// [`TableStore::relayout`]). A new name taken by another object fails with
    /// [`StorageError::TableExists`] and changes nothing.
    pub fn alter(&self, change: CatalogChange, convert: Option<&RowConversion>) -> StorageResult<()> {
        let mut tables = self.tables.write().map_err(|_| poisoned())?;
        let mut views = self.views.write().map_err(|_| poisoned())?;
        let mut sources = self.sources.write().map_err(|_| poisoned())?;
        let mut sinks = self.sinks.write().map_err(|_| poisoned())?;
        let cf = self.cf(CF_CATALOG)?;
        let key_of = |schema: &str, name: &str| (schema.to_string(), name.to_string());
        // Every name in use, with the id that holds it.
        let mut taken: BTreeMap<(String, String), TableId> = BTreeMap::new();
        taken.extend(tables.iter().map(|(k, t)| (k.clone(), t.def().id)));
        taken.extend(views.iter().map(|(k, v)| (k.clone(), v.id())));
        taken.extend(sources.iter().map(|(k, s)| (k.clone(), s.id)));
        taken.extend(sinks.iter().map(|(k, s)| (k.clone(), s.id)));
        let mut renamed: Vec<(TableId, (String, String))> = Vec::new();
        let mut claim = |id: TableId, key: (String, String)| -> StorageResult<()> {
            match taken.get(&key) {
                Some(holder) if *holder != id => Err(StorageError::TableExists(key.1)),
                _ => {
                    renamed.push((id, key));
                    Ok(())
                }
            }
        };
        let mut wb = WriteBatch::default();
        let table = match &change.table {
            Some(def) => {
                let (_, store) = tables
                    .iter()
                    .find(|(_, t)| t.def().id == def.id)
                    .ok_or_else(|| StorageError::TableNotFound(def.name.clone()))?;
                claim(def.id, key_of(&def.schema_name, &def.name))?;
                wb.put_cf(cf, table_key(def.id), to_json(def, "table")?);
                Some(store.clone())
            }
            None => None,
        };
        for def in &change.views {
            if !views.values().any(|v| v.id() == def.id()) {
                return Err(StorageError::TableNotFound(def.relation.name.clone()));
            }
            claim(def.id(), key_of(&def.relation.schema_name, &def.relation.name))?;
            wb.put_cf(cf, view_key(def.id()), to_json(def, "view")?);
        }
        for def in &change.sources {
            if !sources.values().any(|s| s.id == def.id) {
                return Err(StorageError::TableNotFound(def.name.clone()));
            }
            claim(def.id, key_of(&def.schema_name, &def.name))?;
            wb.put_cf(cf, object_key(SOURCE_KEY_PREFIX, def.id), to_json(def, "source")?);
        }
        for def in &change.sinks {
            if !sinks.values().any(|s| s.id == def.id) {
                return Err(StorageError::TableNotFound(def.name.clone()));
            }
            claim(def.id, key_of(&def.schema_name, &def.name))?;
            wb.put_cf(cf, object_key(SINK_KEY_PREFIX, def.id), to_json(def, "sink")?);
        }
        let mut comments = self.comments.write().map_err(|_| poisoned())?;
        let mut new_comments = comments.clone();
        for &(object, dropped) in &change.dropped_columns {
            let moved: Vec<((u64, i32), String)> = new_comments
                .range((object, dropped)..=(object, i32::MAX))
                .map(|(k, v)| (*k, v.clone()))
                .collect();
            for ((_, column), text) in moved {
                new_comments.remove(&(object, column));
                wb.delete_cf(cf, comment_key(object, column));
                if column > dropped {
                    new_comments.insert((object, column - 1), text.clone());
                    wb.put_cf(cf, comment_key(object, column - 1), text.as_bytes());
                }
            }
        }
        match (&table, change.table.clone()) {
            (Some(store), Some(def)) => store.relayout(def, convert, wb)?,
            _ => self.write_synced(wb)?,
        }
        // Durable: now the in-memory catalog follows.
        *comments = new_comments;
        if let (Some(store), Some(def)) = (table, &change.table) {
            tables.retain(|_, t| t.def().id != def.id);
            tables.insert(key_of(&def.schema_name, &def.name), store);
        }
        for def in change.views {
            views.retain(|_, v| v.id() != def.id());
            views.insert(key_of(&def.relation.schema_name, &def.relation.name), def);
        }
        for def in change.sources {
            sources.retain(|_, s| s.id != def.id);
            sources.insert(key_of(&def.schema_name, &def.name), def);
        }
        for def in change.sinks {
            sinks.retain(|_, s| s.id != def.id);
            sinks.insert(key_of(&def.schema_name, &def.name), def);
        }
        info!(renamed = ?renamed, "catalog altered");
        Ok(())
    }

    fn load_objects<T: serde::de::DeserializeOwned>(
        &self,
        prefix: &[u8],
        what: &str,
    ) -> StorageResult<Vec<T>> {
        let cf = self.cf(CF_CATALOG)?;
        let mut out = Vec::new();
        for item in self.db.prefix_iterator_cf(cf, prefix) {
            let (key, value) = item?;
            if !key.starts_with(prefix) {
                break;
            }
            out.push(decode_definition(&value, what)?);
        }
        Ok(out)
    }

    /// Whether a source or sink already has this name.
    fn is_stream_object(&self, key: &(String, String)) -> StorageResult<bool> {
        Ok(self.sources.read().map_err(|_| poisoned())?.contains_key(key)
            || self.sinks.read().map_err(|_| poisoned())?.contains_key(key))
    }

    pub fn source(&self, schema: &str, name: &str) -> Option<SourceDef> {
        self.sources.read().ok()?.get(&(schema.to_string(), name.to_string())).cloned()
    }

    /// All sources, in creation order.
    pub fn sources(&self) -> Vec<SourceDef> {
        let mut all: Vec<SourceDef> =
            self.sources.read().map(|v| v.values().cloned().collect()).unwrap_or_default();
        all.sort_by_key(|s| s.id);
        all
    }

    /// Persists a source whose id came from [`Store::allocate_id`].
    pub fn create_source(&self, def: SourceDef) -> StorageResult<()> {
        let tables = self.tables.read().map_err(|_| poisoned())?;
        let views = self.views.read().map_err(|_| poisoned())?;
        let mut sources = self.sources.write().map_err(|_| poisoned())?;
        let key = (def.schema_name.clone(), def.name.clone());
        let taken = tables.contains_key(&key)
            || views.contains_key(&key)
            || sources.contains_key(&key)
            || self.sinks.read().map_err(|_| poisoned())?.contains_key(&key);
        if taken {
            return Err(StorageError::TableExists(def.name));
        }
        let json = serde_json::to_vec(&def)
            .map_err(|e| StorageError::CorruptCatalog(format!("encode source definition: {e}")))?;
        self.write_synced_put(&object_key(SOURCE_KEY_PREFIX, def.id), &json)?;
        info!(source = %def.name, id = def.id, connector = %def.connector, "source created");
        sources.insert(key, def);
        Ok(())
    }

    pub fn drop_source(&self, schema: &str, name: &str) -> StorageResult<SourceDef> {
        let mut sources = self.sources.write().map_err(|_| poisoned())?;
        let key = (schema.to_string(), name.to_string());
        let def = sources.get(&key).ok_or_else(|| StorageError::TableNotFound(name.to_string()))?.clone();
        let mut wb = WriteBatch::default();
        wb.delete_cf(self.cf(CF_CATALOG)?, object_key(SOURCE_KEY_PREFIX, def.id));
        self.write_synced(wb)?;
        sources.remove(&key);
        info!(source = name, id = def.id, "source dropped");
        Ok(def)
    }

    pub fn sink(&self, schema: &str, name: &str) -> Option<SinkDef> {
        self.sinks.read().ok()?.get(&(schema.to_string(), name.to_string())).cloned()
    }

    /// All sinks, in creation order.
    pub fn sinks(&self) -> Vec<SinkDef> {
        let mut all: Vec<SinkDef> =
            self.sinks.read().map(|v| v.values().cloned().collect()).unwrap_or_default();
        all.sort_by_key(|s| s.id);
        all
    }

    /// Persists a sink whose id came from [`Store::allocate_id`].
    pub fn create_sink(&self, def: SinkDef) -> StorageResult<()> {
        let tables = self.tables.read().map_err(|_| poisoned())?;
        let views = self.views.read().map_err(|_| poisoned())?;
        // Lock order everywhere: tables, views, sources, sinks.
        let sources = self.sources.read().map_err(|_| poisoned())?;
        let mut sinks = self.sinks.write().map_err(|_| poisoned())?;
        let key = (def.schema_name.clone(), def.name.clone());
        let taken = tables.contains_key(&key)
            || views.contains_key(&key)
            || sinks.contains_key(&key)
            || sources.contains_key(&key);
        if taken {
            return Err(StorageError::TableExists(def.name));
        }
        let json = serde_json::to_vec(&def)
            .map_err(|e| StorageError::CorruptCatalog(format!("encode sink definition: {e}")))?;
        self.write_synced_put(&object_key(SINK_KEY_PREFIX, def.id), &json)?;
        info!(sink = %def.name, id = def.id, connector = %def.connector, "sink created");
        sinks.insert(key, def);
        Ok(())
    }

    pub fn drop_sink(&self, schema: &str, name: &str) -> StorageResult<SinkDef> {
        let mut sinks = self.sinks.write().map_err(|_| poisoned())?;
        let key = (schema.to_string(), name.to_string());
        let def = sinks.get(&key).ok_or_else(|| StorageError::TableNotFound(name.to_string()))?.clone();
        let mut wb = WriteBatch::default();
        wb.delete_cf(self.cf(CF_CATALOG)?, object_key(SINK_KEY_PREFIX, def.id));
        self.write_synced(wb)?;
        sinks.remove(&key);
        info!(sink = name, id = def.id, "sink dropped");
        Ok(def)
    }

    fn write_synced_put(&self, key: &[u8], value: &[u8]) -> StorageResult<()> {
        let mut wb = WriteBatch::default();
        wb.put_cf(self.cf(CF_CATALOG)?, key, value);
        self.write_synced(wb)
    }

    pub fn table(&self, schema: &str, name: &str) -> Option<Arc<TableStore>> {
        self.tables.read().ok()?.get(&(schema.to_string(), name.to_string())).cloned()
    }

    /// All tables, ordered by schema and name.
    pub fn tables(&self) -> Vec<Arc<TableStore>> {
        self.tables.read().map(|t| t.values().cloned().collect()).unwrap_or_default()
    }

    /// Persists a new table. `def.id` is ignored and assigned here.
    pub fn create_table(&self, mut def: TableDef) -> StorageResult<Arc<TableStore>> {
        let mut tables = self.tables.write().map_err(|_| poisoned())?;
        let key = (def.schema_name.clone(), def.name.clone());
        let view_exists = self.views.read().map_err(|_| poisoned())?.contains_key(&key);
        if tables.contains_key(&key) || view_exists || self.is_stream_object(&key)? {
            return Err(StorageError::TableExists(def.name));
        }
        let cf = self.cf(CF_CATALOG)?;
        let id = self.next_table_id()?;
        def.id = id;
        let json = serde_json::to_vec(&def)
            .map_err(|e| StorageError::CorruptCatalog(format!("encode table definition: {e}")))?;
        let mut wb = WriteBatch::default();
        wb.put_cf(cf, table_key(id), json);
        wb.put_cf(cf, NEXT_TABLE_ID_KEY, (id + 1).to_be_bytes());
        self.write_synced(wb)?;
        let table = Arc::new(TableStore::open(self.db.clone(), def)?);
        tables.insert(key, table.clone());
        info!(table = %table.def().name, id, "table created");
        Ok(table)
    }

    /// Removes a table, its rows and its changelog.
    pub fn drop_table(&self, schema: &str, name: &str) -> StorageResult<()> {
        let mut tables = self.tables.write().map_err(|_| poisoned())?;
        let key = (schema.to_string(), name.to_string());
        let table = tables.get(&key).ok_or_else(|| StorageError::TableNotFound(name.to_string()))?;
        let id = table.def().id;
        let mut wb = WriteBatch::default();
        wb.delete_cf(self.cf(CF_CATALOG)?, table_key(id));
        let (from, to) = (id.to_be_bytes(), (id + 1).to_be_bytes());
        wb.delete_range_cf(self.cf(CF_ROWS)?, from, to);
        wb.delete_range_cf(self.cf(CF_LOG)?, from, to);
        wb.delete_cf(self.cf(CF_CATALOG)?, crate::chunked_insert::staging_key(id));
        self.write_synced(wb)?;
        tables.remove(&key);
        info!(table = name, id, "table dropped");
        Ok(())
    }

    fn next_table_id(&self) -> StorageResult<TableId> {
        let cf = self.cf(CF_CATALOG)?;
        Ok(match self.db.get_cf(cf, NEXT_TABLE_ID_KEY)? {
            Some(v) => u64::from_be_bytes(
                v.as_slice().try_into().map_err(|_| StorageError::CorruptCatalog("next table id".into()))?,
            ),
            None => 1,
        })
    }

    fn write_synced(&self, wb: WriteBatch) -> StorageResult<()> {
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        Ok(self.db.write_opt(wb, &opts)?)
    }

    fn cf(&self, name: &str) -> StorageResult<&rocksdb::ColumnFamily> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StorageError::CorruptCatalog(format!("missing column family {name}")))
    }
}

fn to_json<T: serde::Serialize>(def: &T, what: &str) -> StorageResult<Vec<u8>> {
    serde_json::to_vec(def)
        .map_err(|e| StorageError::CorruptCatalog(format!("encode {what} definition: {e}")))
}

fn comment_key(object: u64, column: i32) -> Vec<u8> {
    let mut key = COMMENT_KEY_PREFIX.to_vec();
    key.extend_from_slice(&object.to_be_bytes());
    key.extend_from_slice(&column.to_be_bytes());
    key
}

fn table_key(id: TableId) -> Vec<u8> {
    let mut key = TABLE_KEY_PREFIX.to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

fn view_key(id: TableId) -> Vec<u8> {
    let mut key = VIEW_KEY_PREFIX.to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

fn object_key(prefix: &[u8], id: TableId) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// Reads one catalog definition; what cannot be read is named in the error, which stops
/// the server at startup (a view without its job would silently stop updating).
fn decode_definition<T: serde::de::DeserializeOwned>(value: &[u8], what: &str) -> StorageResult<T> {
    serde_json::from_slice(value).map_err(|e| {
        let name = serde_json::from_slice::<serde_json::Value>(value).ok().and_then(|v| {
            let name = v.get("name").or_else(|| v.get("relation").and_then(|r| r.get("name")));
            name.and_then(|n| n.as_str()).map(str::to_string)
        });
        let name = name.map_or_else(|| "(unnamed)".to_string(), |n| format!("\"{n}\""));
        StorageError::CorruptCatalog(format!(
            "the definition of {what} {name} cannot be read by this version of Weir (catalog format {}): {e}",
            crate::catalog_format::CATALOG_FORMAT
        ))
    })
}

fn poisoned() -> StorageError {
    StorageError::Invalid("catalog lock poisoned by an earlier panic".into())
}
