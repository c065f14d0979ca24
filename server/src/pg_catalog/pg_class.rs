//! `pg_class` and `pg_attribute`: one row per relation and one per column of the relation
//! model ([`super::relations`]), for system catalogs, user tables, primary-key indexes and
//! materialized views alike. Values follow Postgres 15 (storage, persistence, replica
//! identity, type length/alignment/storage of each column).

use super::columns::{row, Col, Columns, Row, Value};
use super::relations::all_relations;
use super::{types, CatalogSnapshot};

pub static PG_CLASS: Columns = &[
    ("oid", Col::Oid),
    ("relname", Col::Name),
    ("relnamespace", Col::Oid),
    ("reltype", Col::Oid),
    ("reloftype", Col::Oid),
    ("relowner", Col::Oid),
    ("relam", Col::Oid),
    ("relfilenode", Col::Oid),
    ("reltablespace", Col::Oid),
    ("relpages", Col::Int4),
    ("reltuples", Col::Float4),
    ("relallvisible", Col::Int4),
    ("reltoastrelid", Col::Oid),
    ("relhasindex", Col::Bool),
    ("relisshared", Col::Bool),
    ("relpersistence", Col::Char),
    ("relkind", Col::Char),
    ("relnatts", Col::Int2),
    ("relchecks", Col::Int2),
    ("relhasrules", Col::Bool),
    ("relhastriggers", Col::Bool),
    ("relhassubclass", Col::Bool),
    ("relrowsecurity", Col::Bool),
    ("relforcerowsecurity", Col::Bool),
    ("relispopulated", Col::Bool),
    ("relreplident", Col::Char),
    ("relispartition", Col::Bool),
    ("relrewrite", Col::Oid),
    ("relfrozenxid", Col::Int8),
    ("relminmxid", Col::Int8),
    ("relacl", Col::TextArray),
    ("reloptions", Col::TextArray),
    ("relpartbound", Col::Text),
];

pub fn pg_class(snapshot: &CatalogSnapshot) -> Vec<Row> {
    all_relations(snapshot)
        .into_iter()
        .map(|r| {
            // System views have no storage; a materialized view is stored like a table and,
            // as in Postgres, has rules (its `_RETURN` rule, which psql does not list).
            let is_view = r.kind == "v";
            let has_rules = matches!(r.kind, "v" | "m");
            row![
                r.oid,
                r.name.as_str(),
                r.namespace,
                0i64,
                0i64,
                snapshot.owner_oid(r.object),
                r.access_method(),
                if is_view { 0 } else { r.oid },
                0i64,
                0i64,
                if is_view { 0.0 } else { -1.0 },
                0i64,
                0i64,
                r.has_index,
                matches!(
                    r.name.as_str(),
                    "pg_database" | "pg_authid" | "pg_auth_members" | "pg_tablespace" | "pg_shdescription"
                ),
                "p",
                r.kind,
                r.attributes.len(),
                0i64,
                has_rules,
                false,
                false,
                false,
                false,
                true,
                if r.user && matches!(r.kind, "r" | "m") { "d" } else { "n" },
                false,
                0i64,
                0i64,
                0i64,
                relacl(snapshot, r.object),
                Value::Null,
                Value::Null,
            ]
        })
        .collect()
}

/// `relacl`: NULL for the default ACL (as psql's `\dp` expects), else the ACL items.
fn relacl(snapshot: &CatalogSnapshot, object: Option<u64>) -> Value {
    match object.and_then(|id| snapshot.privileges.acl_items(id)) {
        Some(items) => Value::List(items.into_iter().map(Value::Text).collect()),
        None => Value::Null,
    }
}

pub static PG_ATTRIBUTE: Columns = &[
    ("attrelid", Col::Oid),
    ("attname", Col::Name),
    ("atttypid", Col::Oid),
    ("attstattarget", Col::Int4),
    ("attlen", Col::Int2),
    ("attnum", Col::Int2),
    ("attndims", Col::Int4),
    ("attcacheoff", Col::Int4),
    ("atttypmod", Col::Int4),
    ("attbyval", Col::Bool),
    ("attalign", Col::Char),
    ("attstorage", Col::Char),
    ("attcompression", Col::Char),
    ("attnotnull", Col::Bool),
    ("atthasdef", Col::Bool),
    ("atthasmissing", Col::Bool),
    ("attidentity", Col::Char),
    ("attgenerated", Col::Char),
    ("attisdropped", Col::Bool),
    ("attislocal", Col::Bool),
    ("attinhcount", Col::Int4),
    ("attcollation", Col::Oid),
    ("attacl", Col::TextArray),
    ("attoptions", Col::TextArray),
    ("attfdwoptions", Col::TextArray),
    ("attmissingval", Col::TextArray),
];

/// `pg_attrdef`: one row per column with a `DEFAULT`; `adbin` holds the expression's SQL,
/// which `pg_get_expr` shows as is.
pub fn pg_attrdef(snapshot: &CatalogSnapshot) -> Vec<Row> {
    let mut rows = Vec::new();
    for relation in all_relations(snapshot) {
        for (i, a) in relation.attributes.iter().enumerate() {
            if let Some(default) = &a.default {
                let attnum = i as i64 + 1;
                rows.push(row![
                    relation.oid.saturating_mul(1 << 16).saturating_add(attnum),
                    relation.oid,
                    attnum,
                    default.as_str()
                ]);
            }
        }
    }
    rows
}

pub fn pg_attribute(snapshot: &CatalogSnapshot) -> Vec<Row> {
    let mut rows = Vec::new();
    for relation in all_relations(snapshot) {
        for (i, a) in relation.attributes.iter().enumerate() {
            let is_array = types::type_name(a.type_oid).is_some_and(|n| n.starts_with('_'));
            rows.push(row![
                relation.oid,
                a.name.as_str(),
                a.type_oid,
                -1i64,
                types::type_len(a.type_oid),
                i + 1,
                if is_array { 1 } else { 0 },
                -1i64,
                i64::from(a.typmod),
                types::type_by_val(a.type_oid),
                types::type_align(a.type_oid),
                types::type_storage(a.type_oid),
                "",
                a.not_null,
                a.default.is_some(),
                false,
                "",
                "",
                false,
                true,
                0i64,
                types::type_collation(a.type_oid),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
            ]);
        }
    }
    rows
}
