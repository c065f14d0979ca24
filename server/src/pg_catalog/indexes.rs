//! Indexes and constraints: `pg_index`, `pg_constraint`, and the definitions
//! `pg_get_indexdef` / `pg_get_constraintdef` print.
//!
//! Weir's only index and only constraint are a table's primary key: as in Postgres, a
//! unique btree index `<table>_pkey` and a `PRIMARY KEY` constraint of the same name backed
//! by it. Their oids come from a range of their own (see [`super::primary_key_index_oid`]).

use weir_plan::catalog::TableDef;

use super::columns::{row, Col, Columns, Row, Value};
use super::namespaces::namespace_oid;
use super::naming::{quote_ident, regclass_name};
use super::{primary_key_constraint_oid, primary_key_index_oid, table_oid, types, CatalogSnapshot};

fn table_by_index_oid(snapshot: &CatalogSnapshot, oid: i64) -> Option<&TableDef> {
    snapshot.tables.iter().find(|t| t.has_primary_key() && primary_key_index_oid(t) == oid)
}

fn table_by_constraint_oid(snapshot: &CatalogSnapshot, oid: i64) -> Option<&TableDef> {
    snapshot.tables.iter().find(|t| t.has_primary_key() && primary_key_constraint_oid(t) == oid)
}

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
