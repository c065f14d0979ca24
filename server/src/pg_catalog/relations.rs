//! Namespaces, relations and what hangs off them: `pg_namespace`, `pg_class`,
//! `pg_attribute`, `pg_index`, `pg_constraint`, the `pg_tables`-style views, and the empty
//! catalogs psql reads while describing a table (policies, statistics, publications, ...).
//!
//! Everything is derived from one [`Relation`] model so that `pg_class`, `pg_attribute`,
//! `information_schema` and functions like `pg_get_indexdef` cannot disagree. A user table
//! with a primary key has, as in Postgres, a unique btree index `<table>_pkey` (relkind `i`)
//! and a constraint of the same name backed by it. A materialized view is a relation of
//! kind `m` with its columns and no indexes; `pg_matviews` lists it with its definition.

use weir_plan::catalog::{TableDef, ViewDef};

use super::columns::{row, Col, Columns, Row, Value};
use super::registry::{self, SystemKind};
use super::{
    primary_key_constraint_oid, primary_key_index_oid, table_oid, view_oid, BOOTSTRAP_SUPERUSER_OID,
    BTREE_AM_OID, DATABASE_OWNER_ROLE_OID, HEAP_AM_OID, INFORMATION_SCHEMA_NAMESPACE_OID,
    PG_CATALOG_NAMESPACE_OID, PG_TOAST_NAMESPACE_OID, PUBLIC_NAMESPACE_OID,
};
use super::{types, viewdef, CatalogSnapshot};

/// A relation as `pg_class` sees it.
#[derive(Debug, Clone)]
pub struct Relation {
    pub oid: i64,
    pub name: String,
    pub namespace: i64,
    /// `pg_class.relkind`: `r` table, `v` view, `m` materialized view, `i` index.
    pub kind: &'static str,
    pub attributes: Vec<Attribute>,
    pub has_index: bool,
    /// False for the system catalogs.
    pub user: bool,
}

#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: String,
    pub type_oid: i64,
    pub typmod: i32,
    pub not_null: bool,
}

impl Relation {
    fn access_method(&self) -> i64 {
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
            })
            .collect(),
        has_index: def.has_primary_key(),
        user: true,
    }
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
            })
            .collect(),
        has_index: false,
        user: true,
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
            })
            .collect(),
        has_index: false,
        user: false,
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
    relations
}

fn table_by_oid(snapshot: &CatalogSnapshot, oid: i64) -> Option<&TableDef> {
    snapshot.tables.iter().find(|t| table_oid(t) == oid)
}

fn table_by_index_oid(snapshot: &CatalogSnapshot, oid: i64) -> Option<&TableDef> {
    snapshot.tables.iter().find(|t| t.has_primary_key() && primary_key_index_oid(t) == oid)
}

fn table_by_constraint_oid(snapshot: &CatalogSnapshot, oid: i64) -> Option<&TableDef> {
    snapshot.tables.iter().find(|t| t.has_primary_key() && primary_key_constraint_oid(t) == oid)
}

// ---------------------------------------------------------------------------------------
// Namespaces and visibility

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

/// A relation's name as `regclass` prints it: qualified only when not visible.
pub fn regclass_name(snapshot: &CatalogSnapshot, oid: i64) -> String {
    let relations = all_relations(snapshot);
    let Some(relation) = relations.iter().find(|r| r.oid == oid) else {
        return oid.to_string();
    };
    qualified_if_needed(snapshot, &relations, relation)
}

fn qualified_if_needed(snapshot: &CatalogSnapshot, relations: &[Relation], relation: &Relation) -> String {
    if is_visible(snapshot, relations, relation) {
        quote_ident(&relation.name)
    } else {
        let schema = namespace_name(snapshot, relation.namespace).unwrap_or_default();
        format!("{}.{}", quote_ident(&schema), quote_ident(&relation.name))
    }
}

/// Resolves a relation name as `'name'::regclass` does: an optional schema, identifiers
/// folded to lower case unless double-quoted, otherwise searched along the search path.
/// A number is taken as an oid.
pub fn regclass_oid(snapshot: &CatalogSnapshot, name: &str) -> Option<i64> {
    let name = name.trim();
    if let Ok(oid) = name.parse::<i64>() {
        return Some(oid);
    }
    let parts = split_qualified_name(name);
    let relations = all_relations(snapshot);
    match parts.as_slice() {
        [relname] => search_path(snapshot).iter().find_map(|ns| {
            relations.iter().find(|r| r.namespace == ns.oid && &r.name == relname).map(|r| r.oid)
        }),
        [schema, relname] => {
            let ns = namespace_oid(schema);
            relations.iter().find(|r| r.namespace == ns && &r.name == relname).map(|r| r.oid)
        }
        [_catalog, schema, relname] => {
            let ns = namespace_oid(schema);
            relations.iter().find(|r| r.namespace == ns && &r.name == relname).map(|r| r.oid)
        }
        _ => None,
    }
}

/// `a.B."C d"` -> `["a", "b", "C d"]`.
pub fn split_qualified_name(name: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            '.' if !quoted => {
                parts.push(finish_part(&mut current, &mut was_quoted));
            }
            c => current.push(c),
        }
    }
    parts.push(finish_part(&mut current, &mut was_quoted));
    parts
}

fn finish_part(current: &mut String, was_quoted: &mut bool) -> String {
    let part = std::mem::take(current);
    let part = if *was_quoted { part } else { part.trim().to_lowercase() };
    *was_quoted = false;
    part
}

/// Postgres' `quote_ident`: quotes unless the name is a plain lower-case identifier and not
/// a reserved word.
pub fn quote_ident(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain && !RESERVED_WORDS.contains(&name) {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// Postgres' reserved key words (and the non-reserved ones it also quotes in output).
static RESERVED_WORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "system_user",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlnamespaces",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
];

// ---------------------------------------------------------------------------------------
// Definitions printed by pg_get_indexdef / pg_get_constraintdef

fn key_column_list(def: &TableDef) -> String {
    def.primary_key
        .iter()
        .filter_map(|&i| def.columns.get(i))
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `pg_get_indexdef(index_oid, column, pretty)`: the whole `CREATE INDEX` when `column` is
/// 0, else that key column's name. Pretty output qualifies the table only when it is not
/// visible, as Postgres does.
pub fn index_def(snapshot: &CatalogSnapshot, index_oid: i64, column: i64, pretty: bool) -> Option<String> {
    let def = table_by_index_oid(snapshot, index_oid)?;
    if column > 0 {
        let position = usize::try_from(column - 1).ok()?;
        let index = *def.primary_key.get(position)?;
        return def.columns.get(index).map(|c| quote_ident(&c.name));
    }
    let table = if pretty {
        regclass_name(snapshot, table_oid(def))
    } else {
        format!("{}.{}", quote_ident(&def.schema_name), quote_ident(&def.name))
    };
    Some(format!(
        "CREATE UNIQUE INDEX {} ON {} USING btree ({})",
        quote_ident(&def.primary_key_constraint_name()),
        table,
        key_column_list(def)
    ))
}

/// `pg_get_constraintdef(constraint_oid)`.
pub fn constraint_def(snapshot: &CatalogSnapshot, constraint_oid: i64) -> Option<String> {
    let def = table_by_constraint_oid(snapshot, constraint_oid)?;
    Some(format!("PRIMARY KEY ({})", key_column_list(def)))
}

/// Whether a relation can be published (`pg_relation_is_publishable`): user tables.
pub fn is_publishable(snapshot: &CatalogSnapshot, oid: i64) -> bool {
    table_by_oid(snapshot, oid).is_some()
}

// ---------------------------------------------------------------------------------------
// pg_namespace

pub static PG_NAMESPACE: Columns =
    &[("oid", Col::Oid), ("nspname", Col::Name), ("nspowner", Col::Oid), ("nspacl", Col::TextArray)];

pub fn pg_namespace(snapshot: &CatalogSnapshot) -> Vec<Row> {
    namespaces(snapshot).into_iter().map(|n| row![n.oid, n.name, n.owner, Value::Null]).collect()
}

// ---------------------------------------------------------------------------------------
// pg_class

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
                BOOTSTRAP_SUPERUSER_OID,
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
                Value::Null,
                Value::Null,
                Value::Null,
            ]
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// pg_attribute

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
                false,
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

// ---------------------------------------------------------------------------------------
// pg_index and pg_constraint

pub static PG_INDEX: Columns = &[
    ("indexrelid", Col::Oid),
    ("indrelid", Col::Oid),
    ("indnatts", Col::Int2),
    ("indnkeyatts", Col::Int2),
    ("indisunique", Col::Bool),
    ("indnullsnotdistinct", Col::Bool),
    ("indisprimary", Col::Bool),
    ("indisexclusion", Col::Bool),
    ("indimmediate", Col::Bool),
    ("indisclustered", Col::Bool),
    ("indisvalid", Col::Bool),
    ("indcheckxmin", Col::Bool),
    ("indisready", Col::Bool),
    ("indislive", Col::Bool),
    ("indisreplident", Col::Bool),
    ("indkey", Col::Int2Array),
    ("indcollation", Col::OidArray),
    ("indclass", Col::OidArray),
    ("indoption", Col::Int2Array),
    ("indexprs", Col::Text),
    ("indpred", Col::Text),
];

/// 1-based attribute numbers of the primary key.
fn key_attnums(def: &TableDef) -> Vec<i64> {
    def.primary_key.iter().map(|&i| i64::try_from(i).unwrap_or(0) + 1).collect()
}

pub fn pg_index(snapshot: &CatalogSnapshot) -> Vec<Row> {
    snapshot
        .tables
        .iter()
        .filter(|def| def.has_primary_key())
        .map(|def| {
            let keys = key_attnums(def);
            let collations: Vec<i64> = def
                .primary_key
                .iter()
                .filter_map(|&i| def.columns.get(i))
                .map(|c| types::type_collation(types::type_oid(&c.column_type)))
                .collect();
            let n = keys.len();
            row![
                primary_key_index_oid(def),
                table_oid(def),
                n,
                n,
                true,
                false,
                true,
                false,
                true,
                false,
                true,
                false,
                true,
                true,
                false,
                keys,
                collations,
                vec![0i64; n],
                vec![0i64; n],
                Value::Null,
                Value::Null,
            ]
        })
        .collect()
}

pub static PG_CONSTRAINT: Columns = &[
    ("oid", Col::Oid),
    ("conname", Col::Name),
    ("connamespace", Col::Oid),
    ("contype", Col::Char),
    ("condeferrable", Col::Bool),
    ("condeferred", Col::Bool),
    ("convalidated", Col::Bool),
    ("conrelid", Col::Oid),
    ("contypid", Col::Oid),
    ("conindid", Col::Oid),
    ("conparentid", Col::Oid),
    ("confrelid", Col::Oid),
    ("confupdtype", Col::Char),
    ("confdeltype", Col::Char),
    ("confmatchtype", Col::Char),
    ("conislocal", Col::Bool),
    ("coninhcount", Col::Int4),
    ("connoinherit", Col::Bool),
    ("conkey", Col::Int2Array),
    ("confkey", Col::Int2Array),
    ("conpfeqop", Col::OidArray),
    ("conppeqop", Col::OidArray),
    ("conffeqop", Col::OidArray),
    ("confdelsetcols", Col::Int2Array),
    ("conexclop", Col::OidArray),
    ("conbin", Col::Text),
];

pub fn pg_constraint(snapshot: &CatalogSnapshot) -> Vec<Row> {
    snapshot
        .tables
        .iter()
        .filter(|def| def.has_primary_key())
        .map(|def| {
            row![
                primary_key_constraint_oid(def),
                def.primary_key_constraint_name(),
                namespace_oid(&def.schema_name),
                "p",
                false,
                false,
                true,
                table_oid(def),
                0i64,
                primary_key_index_oid(def),
                0i64,
                0i64,
                " ",
                " ",
                " ",
                true,
                0i64,
                true,
                key_attnums(def),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
            ]
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Views over relations: pg_tables, pg_views, pg_indexes, pg_matviews

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
                snapshot.user.as_str(),
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
                snapshot.user.as_str(),
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

// ---------------------------------------------------------------------------------------
// Catalogs of features Weir does not have: the right columns, no rows.

pub static PG_ATTRDEF: Columns =
    &[("oid", Col::Oid), ("adrelid", Col::Oid), ("adnum", Col::Int2), ("adbin", Col::Text)];

pub static PG_DESCRIPTION: Columns =
    &[("objoid", Col::Oid), ("classoid", Col::Oid), ("objsubid", Col::Int4), ("description", Col::Text)];

pub static PG_SHDESCRIPTION: Columns =
    &[("objoid", Col::Oid), ("classoid", Col::Oid), ("description", Col::Text)];

pub static PG_DEPEND: Columns = &[
    ("classid", Col::Oid),
    ("objid", Col::Oid),
    ("objsubid", Col::Int4),
    ("refclassid", Col::Oid),
    ("refobjid", Col::Oid),
    ("refobjsubid", Col::Int4),
    ("deptype", Col::Char),
];

pub static PG_INHERITS: Columns = &[
    ("inhrelid", Col::Oid),
    ("inhparent", Col::Oid),
    ("inhseqno", Col::Int4),
    ("inhdetachpending", Col::Bool),
];

pub static PG_PARTITIONED_TABLE: Columns = &[
    ("partrelid", Col::Oid),
    ("partstrat", Col::Char),
    ("partnatts", Col::Int2),
    ("partdefid", Col::Oid),
    ("partattrs", Col::Int2Array),
    ("partclass", Col::OidArray),
    ("partcollation", Col::OidArray),
    ("partexprs", Col::Text),
];

pub static PG_TRIGGER: Columns = &[
    ("oid", Col::Oid),
    ("tgrelid", Col::Oid),
    ("tgparentid", Col::Oid),
    ("tgname", Col::Name),
    ("tgfoid", Col::Oid),
    ("tgtype", Col::Int2),
    ("tgenabled", Col::Char),
    ("tgisinternal", Col::Bool),
    ("tgconstrrelid", Col::Oid),
    ("tgconstrindid", Col::Oid),
    ("tgconstraint", Col::Oid),
    ("tgdeferrable", Col::Bool),
    ("tginitdeferred", Col::Bool),
    ("tgnargs", Col::Int2),
    ("tgattr", Col::Int2Array),
    ("tgargs", Col::Text),
    ("tgqual", Col::Text),
    ("tgoldtable", Col::Name),
    ("tgnewtable", Col::Name),
];

pub static PG_REWRITE: Columns = &[
    ("oid", Col::Oid),
    ("rulename", Col::Name),
    ("ev_class", Col::Oid),
    ("ev_type", Col::Char),
    ("ev_enabled", Col::Char),
    ("is_instead", Col::Bool),
    ("ev_qual", Col::Text),
    ("ev_action", Col::Text),
];

pub static PG_SEQUENCE: Columns = &[
    ("seqrelid", Col::Oid),
    ("seqtypid", Col::Oid),
    ("seqstart", Col::Int8),
    ("seqincrement", Col::Int8),
    ("seqmax", Col::Int8),
    ("seqmin", Col::Int8),
    ("seqcache", Col::Int8),
    ("seqcycle", Col::Bool),
];

pub static PG_POLICY: Columns = &[
    ("oid", Col::Oid),
    ("polname", Col::Name),
    ("polrelid", Col::Oid),
    ("polcmd", Col::Char),
    ("polpermissive", Col::Bool),
    ("polroles", Col::OidArray),
    ("polqual", Col::Text),
    ("polwithcheck", Col::Text),
];

pub static PG_STATISTIC_EXT: Columns = &[
    ("oid", Col::Oid),
    ("stxrelid", Col::Oid),
    ("stxname", Col::Name),
    ("stxnamespace", Col::Oid),
    ("stxowner", Col::Oid),
    ("stxstattarget", Col::Int4),
    ("stxkeys", Col::Int2Array),
    ("stxkind", Col::CharArray),
    ("stxexprs", Col::Text),
];

pub static PG_PUBLICATION: Columns = &[
    ("oid", Col::Oid),
    ("pubname", Col::Name),
    ("pubowner", Col::Oid),
    ("puballtables", Col::Bool),
    ("pubinsert", Col::Bool),
    ("pubupdate", Col::Bool),
    ("pubdelete", Col::Bool),
    ("pubtruncate", Col::Bool),
    ("pubviaroot", Col::Bool),
];

pub static PG_PUBLICATION_NAMESPACE: Columns =
    &[("oid", Col::Oid), ("pnpubid", Col::Oid), ("pnnspid", Col::Oid)];

pub static PG_PUBLICATION_REL: Columns = &[
    ("oid", Col::Oid),
    ("prpubid", Col::Oid),
    ("prrelid", Col::Oid),
    ("prqual", Col::Text),
    ("prattrs", Col::Int2Array),
];

/// Event triggers, subscriptions and foreign data: none exist in a fresh Postgres either.
pub static PG_EVENT_TRIGGER: Columns = &[
    ("oid", Col::Oid),
    ("evtname", Col::Name),
    ("evtevent", Col::Name),
    ("evtowner", Col::Oid),
    ("evtfoid", Col::Oid),
    ("evtenabled", Col::Char),
    ("evttags", Col::TextArray),
];

pub static PG_SUBSCRIPTION: Columns = &[
    ("oid", Col::Oid),
    ("subdbid", Col::Oid),
    ("subskiplsn", Col::Text),
    ("subname", Col::Name),
    ("subowner", Col::Oid),
    ("subenabled", Col::Bool),
    ("subbinary", Col::Bool),
    ("substream", Col::Bool),
    ("subtwophasestate", Col::Char),
    ("subdisableonerr", Col::Bool),
    ("subconninfo", Col::Text),
    ("subslotname", Col::Name),
    ("subsynccommit", Col::Text),
    ("subpublications", Col::TextArray),
];

pub static PG_FOREIGN_DATA_WRAPPER: Columns = &[
    ("oid", Col::Oid),
    ("fdwname", Col::Name),
    ("fdwowner", Col::Oid),
    ("fdwhandler", Col::Oid),
    ("fdwvalidator", Col::Oid),
    ("fdwacl", Col::TextArray),
    ("fdwoptions", Col::TextArray),
];

pub static PG_FOREIGN_SERVER: Columns = &[
    ("oid", Col::Oid),
    ("srvname", Col::Name),
    ("srvowner", Col::Oid),
    ("srvfdw", Col::Oid),
    ("srvtype", Col::Text),
    ("srvversion", Col::Text),
    ("srvacl", Col::TextArray),
    ("srvoptions", Col::TextArray),
];

pub static PG_FOREIGN_TABLE: Columns =
    &[("ftrelid", Col::Oid), ("ftserver", Col::Oid), ("ftoptions", Col::TextArray)];
