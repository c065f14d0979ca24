//! Sources as Postgres foreign tables.
//!
//! A source's rows live outside Weir (files, a generator, a broker), which is what a foreign
//! table is in Postgres: `pg_class` lists each source with relkind `f`, so psql's `\d` lists
//! it (as "foreign table") and `\d name` shows its columns, its connector as the foreign
//! server and its `WITH (...)` options as the table's options. Each connector in use is a
//! foreign server named after it, all served by one foreign-data wrapper, `weir`.

use weir_plan::catalog::SourceDef;

use super::columns::{row, Row, Value};
use super::{table_oid, CatalogSnapshot, BOOTSTRAP_SUPERUSER_OID};

/// The `weir` foreign-data wrapper's oid (from the range Weir uses for catalog objects it
/// defines itself).
const WEIR_FDW_OID: i64 = 16_001;
/// The first foreign server's oid: servers are numbered by connector name, in order.
const FIRST_SERVER_OID: i64 = 16_002;

/// A source's oid in `pg_class`: sources share the id space of tables and views.
pub fn source_oid(def: &SourceDef) -> i64 {
    table_oid(&def.relation())
}

/// The connectors the sources use, in name order: the foreign servers.
fn connectors(snapshot: &CatalogSnapshot) -> Vec<&str> {
    let mut names: Vec<&str> = snapshot.sources.iter().map(|s| s.connector.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn server_oid(connectors: &[&str], connector: &str) -> i64 {
    let index = connectors.iter().position(|c| *c == connector).unwrap_or(0);
    FIRST_SERVER_OID.saturating_add(i64::try_from(index).unwrap_or(0))
}

/// Options as Postgres stores them: `name=value` texts.
fn options(def: &SourceDef) -> Value {
    Value::List(def.options.iter().map(|(k, v)| Value::Text(format!("{k}={v}"))).collect())
}

pub fn pg_foreign_data_wrapper(snapshot: &CatalogSnapshot) -> Vec<Row> {
    match snapshot.sources.is_empty() {
        true => Vec::new(),
        false => {
            vec![row![WEIR_FDW_OID, "weir", BOOTSTRAP_SUPERUSER_OID, 0i64, 0i64, Value::Null, Value::Null]]
        }
    }
}

pub fn pg_foreign_server(snapshot: &CatalogSnapshot) -> Vec<Row> {
    let connectors = connectors(snapshot);
    connectors
        .iter()
        .map(|c| {
            row![
                server_oid(&connectors, c),
                c.to_string(),
                BOOTSTRAP_SUPERUSER_OID,
                WEIR_FDW_OID,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null
            ]
        })
        .collect()
}

pub fn pg_foreign_table(snapshot: &CatalogSnapshot) -> Vec<Row> {
    let connectors = connectors(snapshot);
    snapshot
        .sources
        .iter()
        .map(|s| row![source_oid(s), server_oid(&connectors, &s.connector), options(s)])
        .collect()
}
