//! The views over relations that list them by kind: `pg_tables`, `pg_views`,
//! `pg_matviews` and `pg_indexes`, derived from the same relation model as `pg_class` so a
//! table listed here is the one `\d` describes.

use super::columns::{row, Col, Columns, Row, Value};
use super::indexes::index_def;
use super::namespaces::namespace_name;
use super::relations::all_relations;
use super::{primary_key_index_oid, view_oid, viewdef, CatalogSnapshot};

pub static PG_TABLES: Columns = &[
    ("schemaname", Col::Name),
    ("tablename", Col::Name),
    ("tableowner", Col::Name),
    ("tablespace", Col::Name),
    ("hasindexes", Col::Bool),
    ("hasrules", Col::Bool),
    ("hastriggers", Col::Bool),
    ("rowsecurity", Col::Bool),
];

pub fn pg_tables(snapshot: &CatalogSnapshot) -> Vec<Row> {
    all_relations(snapshot)
        .into_iter()
        .filter(|r| r.kind == "r")
        .map(|r| {
            row![
                namespace_name(snapshot, r.namespace),
                r.name,
                snapshot.owner_name(r.object),
                Value::Null,
                r.has_index,
                false,
                false,
                false,
            ]
        })
        .collect()
}

pub static PG_VIEWS: Columns = &[
    ("schemaname", Col::Name),
    ("viewname", Col::Name),
    ("viewowner", Col::Name),
    ("definition", Col::Text),
];

pub fn pg_views(snapshot: &CatalogSnapshot) -> Vec<Row> {
    all_relations(snapshot)
        .into_iter()
        .filter(|r| r.kind == "v")
        .map(|r| row![namespace_name(snapshot, r.namespace), r.name, snapshot.user.as_str(), Value::Null])
        .collect()
}

pub static PG_MATVIEWS: Columns = &[
    ("schemaname", Col::Name),
    ("matviewname", Col::Name),
    ("matviewowner", Col::Name),
    ("tablespace", Col::Name),
    ("hasindexes", Col::Bool),
    ("ispopulated", Col::Bool),
    ("definition", Col::Text),
];

pub fn pg_matviews(snapshot: &CatalogSnapshot) -> Vec<Row> {
    snapshot
        .views
        .iter()
        .map(|def| {
            row![
                def.relation.schema_name.as_str(),
                def.relation.name.as_str(),
                snapshot.owner_name(Some(def.id())),
                Value::Null,
                false,
                true,
                viewdef::view_definition(snapshot, view_oid(def), false),
            ]
        })
        .collect()
}

pub static PG_INDEXES: Columns = &[
    ("schemaname", Col::Name),
    ("tablename", Col::Name),
    ("indexname", Col::Name),
    ("tablespace", Col::Name),
    ("indexdef", Col::Text),
];

pub fn pg_indexes(snapshot: &CatalogSnapshot) -> Vec<Row> {
    snapshot
        .tables
        .iter()
        .filter(|def| def.has_primary_key())
        .map(|def| {
            row![
                def.schema_name.as_str(),
                def.name.as_str(),
                def.primary_key_constraint_name(),
                Value::Null,
                index_def(snapshot, primary_key_index_oid(def), 0, false),
            ]
        })
        .collect()
}
