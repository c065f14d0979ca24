//! Relation names as Postgres reads and prints them: `'name'::regclass` resolution along the
//! search path, the `regclass` output form (qualified only when not visible), splitting
//! `a.B."C d"` into parts, and `quote_ident` with Postgres' reserved words.
//!
//! Every place that prints an identifier for a client (`regclass`, `pg_get_indexdef`,
//! `pg_get_viewdef`, `quote_ident()`) goes through here so they quote alike.

use super::namespaces::{is_visible, namespace_name, namespace_oid, search_path};
use super::relations::{all_relations, Relation};
use super::CatalogSnapshot;

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

/// A string as a SQL literal, as Postgres' `quote_literal` writes it: in single quotes,
/// quotes doubled, and with backslashes doubled behind an `E` prefix.
pub fn quote_literal(value: &str) -> String {
    let quoted = value.replace('\'', "''");
    match value.contains('\\') {
        true => format!("E'{}'", quoted.replace('\\', "\\\\")),
        false => format!("'{quoted}'"),
    }
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
