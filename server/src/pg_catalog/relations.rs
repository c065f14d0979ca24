//! The relation model every relation-describing catalog is derived from.
//!
//! A [`Relation`] is a relation as `pg_class` sees it, with its [`Attribute`]s. `pg_class`,
//! `pg_attribute`, `information_schema`, `regclass` and functions like `pg_get_indexdef` are
//! all computed from [`all_relations`], so they cannot disagree. A user table with a primary
//! key has, as in Postgres, a unique btree index `<table>_pkey` (relkind `i`) and a
//! constraint of the same name backed by it (see [`super::indexes`]). A materialized view is
//! a relation of kind `m` with its columns and no indexes; `pg_matviews` lists it with its
//! definition.

use weir_plan::catalog::{SourceDef, TableDef, ViewDef};

use super::namespaces::namespace_oid;
use super::registry::{self, SystemKind};
use super::{primary_key_index_oid, table_oid, view_oid, BTREE_AM_OID, HEAP_AM_OID};
use super::{types, CatalogSnapshot};

/// A relation as `pg_class` sees it.
#[derive(Debug, Clone)]
pub struct Relation {
    pub oid: i64,
    pub name: String,
    pub namespace: i64,
    /// `pg_class.relkind`: `r` table, `v` view, `m` materialized view, `i` index, `f`
    /// foreign table (a source).
    pub kind: &'static str,
    pub attributes: Vec<Attribute>,
    pub has_index: bool,
    /// False for the system catalogs.
    pub user: bool,
    /// The user table or view this relation is or belongs to (its owner and ACL).
    pub object: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: String,
    pub type_oid: i64,
    pub typmod: i32,
    pub not_null: bool,
    /// The column's `DEFAULT` expression, as SQL.
    pub default: Option<String>,
}

impl Relation {
    pub fn access_method(&self) -> i64 {
        match self.kind {
            "r" | "m" => HEAP_AM_OID,
            "i" => BTREE_AM_OID,
            _ => 0,
        }
    }
}

fn user_table(def: &TableDef) -> Relation {
    Relation {
        oid: table_oid(def),
        name: def.name.clone(),
        namespace: namespace_oid(&def.schema_name),
        kind: "r",
        attributes: def
            .columns
            .iter()
            .map(|c| Attribute {
                name: c.name.clone(),
                type_oid: types::type_oid(&c.column_type),
                typmod: types::type_modifier(&c.column_type),
                not_null: c.not_null,
                default: c.default.clone(),
            })
            .collect(),
        has_index: def.has_primary_key(),
        user: true,
        object: Some(def.id),
    }
}

/// A source: a foreign table (its rows live outside Weir), never indexed.
fn user_source(def: &SourceDef) -> Relation {
    Relation { kind: "f", has_index: false, ..user_table(&def.relation()) }
}

/// A materialized view: its columns as a table's, stored in the heap, never indexed.
fn user_view(def: &ViewDef) -> Relation {
    Relation { oid: view_oid(def), kind: "m", has_index: false, ..user_table(&def.relation) }
}

fn primary_key_index(def: &TableDef) -> Relation {
    Relation {
        oid: primary_key_index_oid(def),
        name: def.primary_key_constraint_name(),
        namespace: namespace_oid(&def.schema_name),
        kind: "i",
        attributes: def
            .primary_key
            .iter()
            .filter_map(|&i| def.columns.get(i))
            .map(|c| Attribute {
                name: c.name.clone(),
                type_oid: types::type_oid(&c.column_type),
                typmod: types::type_modifier(&c.column_type),
                not_null: false,
                default: None,
            })
            .collect(),
        has_index: false,
        user: true,
        object: Some(def.id),
    }
}

fn system_relation(r: &registry::SystemRelation) -> Relation {
    Relation {
        oid: r.oid,
        name: r.name.to_string(),
        namespace: r.namespace,
        kind: match r.kind {
            SystemKind::Table => "r",
            SystemKind::View => "v",
        },
        attributes: r
            .columns
            .iter()
            .map(|(name, col)| Attribute {
                name: name.to_string(),
                type_oid: col.type_oid(),
                typmod: -1,
                not_null: false,
                default: None,
            })
            .collect(),
        has_index: false,
        user: false,
        object: None,
    }
}

/// Every relation: system catalogs, user tables and their primary-key indexes,
/// materialized views.
pub fn all_relations(snapshot: &CatalogSnapshot) -> Vec<Relation> {
    let mut relations: Vec<Relation> = registry::all().iter().map(system_relation).collect();
    for def in &snapshot.tables {
        relations.push(user_table(def));
        if def.has_primary_key() {
            relations.push(primary_key_index(def));
        }
    }
    relations.extend(snapshot.views.iter().map(user_view));
    relations.extend(snapshot.sources.iter().map(user_source));
    relations
}

fn table_by_oid(snapshot: &CatalogSnapshot, oid: i64) -> Option<&TableDef> {
    snapshot.tables.iter().find(|t| table_oid(t) == oid)
}

/// Whether a relation can be published (`pg_relation_is_publishable`): user tables.
pub fn is_publishable(snapshot: &CatalogSnapshot, oid: i64) -> bool {
    table_by_oid(snapshot, oid).is_some()
}
