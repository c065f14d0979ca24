//! Schemas and the search path: which namespaces exist (`pg_namespace`), their oids, the
//! session's `search_path`, `current_schema()` and whether a relation is visible
//! (`pg_table_is_visible`).
//!
//! Besides the four built-in schemas, every schema a user table or view lives in is a
//! namespace; its oid is derived from its name so it is the same in every statement.

use super::columns::{row, Col, Columns, Row, Value};
use super::relations::Relation;
use super::CatalogSnapshot;
use super::{
    BOOTSTRAP_SUPERUSER_OID, DATABASE_OWNER_ROLE_OID, INFORMATION_SCHEMA_NAMESPACE_OID,
    PG_CATALOG_NAMESPACE_OID, PG_TOAST_NAMESPACE_OID, PUBLIC_NAMESPACE_OID,
};

pub struct Namespace {
    pub oid: i64,
    pub name: String,
    pub owner: i64,
}

/// The oid of a schema by name. Schemas other than the built-in ones get a stable oid
/// derived from the name (FNV-1a), so it never changes between statements.
pub fn namespace_oid(name: &str) -> i64 {
    match name {
        "pg_catalog" => PG_CATALOG_NAMESPACE_OID,
        "pg_toast" => PG_TOAST_NAMESPACE_OID,
        "public" => PUBLIC_NAMESPACE_OID,
        "information_schema" => INFORMATION_SCHEMA_NAMESPACE_OID,
        other => {
            let hash = other
                .bytes()
                .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
            900_000 + i64::try_from(hash % 90_000).unwrap_or(0)
        }
    }
}

pub fn namespaces(snapshot: &CatalogSnapshot) -> Vec<Namespace> {
    let mut out = vec![
        Namespace {
            oid: PG_CATALOG_NAMESPACE_OID,
            name: "pg_catalog".into(),
            owner: BOOTSTRAP_SUPERUSER_OID,
        },
        Namespace { oid: PG_TOAST_NAMESPACE_OID, name: "pg_toast".into(), owner: BOOTSTRAP_SUPERUSER_OID },
        Namespace { oid: PUBLIC_NAMESPACE_OID, name: "public".into(), owner: DATABASE_OWNER_ROLE_OID },
        Namespace {
            oid: INFORMATION_SCHEMA_NAMESPACE_OID,
            name: "information_schema".into(),
            owner: BOOTSTRAP_SUPERUSER_OID,
        },
    ];
    let user_schemas = snapshot.tables.iter().chain(snapshot.views.iter().map(|v| &v.relation));
    for def in user_schemas {
        if !out.iter().any(|n| n.name == def.schema_name) {
            out.push(Namespace {
                oid: namespace_oid(&def.schema_name),
                name: def.schema_name.clone(),
                owner: BOOTSTRAP_SUPERUSER_OID,
            });
        }
    }
    out
}

pub fn namespace_name(snapshot: &CatalogSnapshot, oid: i64) -> Option<String> {
    namespaces(snapshot).into_iter().find(|n| n.oid == oid).map(|n| n.name)
}

/// The schemas of the session's `search_path` that exist, in order, with `pg_catalog`
/// first unless the path places it explicitly (as Postgres does).
pub fn search_path(snapshot: &CatalogSnapshot) -> Vec<Namespace> {
    let path = snapshot.setting("search_path").unwrap_or("\"$user\", public");
    let existing = namespaces(snapshot);
    let mut names: Vec<String> = path
        .split(',')
        .map(|item| {
            let item = item.trim();
            match item.strip_prefix('"').and_then(|i| i.strip_suffix('"')) {
                Some(quoted) => quoted.to_string(),
                None => item.to_ascii_lowercase(),
            }
        })
        .map(|name| if name == "$user" { snapshot.user.clone() } else { name })
        .collect();
    if !names.iter().any(|n| n == "pg_catalog") {
        names.insert(0, "pg_catalog".into());
    }
    let mut out = Vec::new();
    for name in names {
        if let Some(ns) = existing.iter().find(|n| n.name == name) {
            if !out.iter().any(|n: &Namespace| n.name == name) {
                out.push(Namespace { oid: ns.oid, name: ns.name.clone(), owner: ns.owner });
            }
        }
    }
    out
}

/// The first schema on the search path, as `current_schema()` reports it (`pg_catalog`
/// only counts when listed explicitly).
pub fn current_schema(snapshot: &CatalogSnapshot) -> Option<String> {
    let explicit_catalog = snapshot
        .setting("search_path")
        .is_some_and(|p| p.split(',').any(|i| i.trim().trim_matches('"') == "pg_catalog"));
    search_path(snapshot)
        .into_iter()
        .find(|n| explicit_catalog || n.oid != PG_CATALOG_NAMESPACE_OID)
        .map(|n| n.name)
}

/// `pg_table_is_visible`: the relation's schema is on the search path and no schema before
/// it holds a relation of the same name.
pub fn is_visible(snapshot: &CatalogSnapshot, relations: &[Relation], relation: &Relation) -> bool {
    for ns in search_path(snapshot) {
        if let Some(first) = relations.iter().find(|r| r.namespace == ns.oid && r.name == relation.name) {
            return first.oid == relation.oid;
        }
    }
    false
}

pub static PG_NAMESPACE: Columns =
    &[("oid", Col::Oid), ("nspname", Col::Name), ("nspowner", Col::Oid), ("nspacl", Col::TextArray)];

pub fn pg_namespace(snapshot: &CatalogSnapshot) -> Vec<Row> {
    namespaces(snapshot)
        .into_iter()
        .map(|n| {
            let acl = match n.oid == PUBLIC_NAMESPACE_OID {
                true => Value::List(
                    snapshot.privileges.public_schema_acl().into_iter().map(Value::Text).collect(),
                ),
                false => Value::Null,
            };
            row![n.oid, n.name, n.owner, acl]
        })
        .collect()
}
