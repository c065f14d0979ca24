//! The SQL-standard `information_schema` views, derived from the same relation model as
//! `pg_class`/`pg_attribute` so both always agree.
//!
//! Values are Postgres' spellings: `data_type` is `bigint`, `character varying`,
//! `timestamp without time zone`; yes/no columns hold `YES`/`NO`; a NOT NULL column shows up
//! as a `CHECK` constraint named `<nspoid>_<reloid>_<attnum>_not_null`, as Postgres 15 does.
//! Postgres' domain types (`sql_identifier`, `cardinal_number`, ...) are reported as their
//! base types (`name`, `integer`, text).

use super::columns::{row, Col, Columns, Row, Value};
use super::namespaces::{namespace_name, namespace_oid, namespaces};
use super::relations::{all_relations, Attribute, Relation};
use super::{cluster, table_oid, types, CatalogSnapshot};

fn yes_no(v: bool) -> &'static str {
    if v {
        "YES"
    } else {
        "NO"
    }
}

/// Tables and views (not indexes), with their schema name. Materialized views are not
/// SQL-standard objects and, as in Postgres, appear in no `information_schema` view.
fn tables_and_views(snapshot: &CatalogSnapshot) -> Vec<(String, Relation)> {
    all_relations(snapshot)
        .into_iter()
        .filter(|r| r.kind == "r" || r.kind == "v")
        .map(|r| (namespace_name(snapshot, r.namespace).unwrap_or_default(), r))
        .collect()
}

pub static SCHEMATA: Columns = &[
    ("catalog_name", Col::Name),
    ("schema_name", Col::Name),
    ("schema_owner", Col::Name),
    ("default_character_set_catalog", Col::Name),
    ("default_character_set_schema", Col::Name),
    ("default_character_set_name", Col::Name),
    ("sql_path", Col::Text),
];

pub fn schemata(snapshot: &CatalogSnapshot) -> Vec<Row> {
    namespaces(snapshot)
        .into_iter()
        .map(|n| {
            row![
                snapshot.database.as_str(),
                n.name,
                cluster::role_name(snapshot, n.owner),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
            ]
        })
        .collect()
}

pub static TABLES: Columns = &[
    ("table_catalog", Col::Name),
    ("table_schema", Col::Name),
    ("table_name", Col::Name),
    ("table_type", Col::Text),
    ("self_referencing_column_name", Col::Name),
    ("reference_generation", Col::Text),
    ("user_defined_type_catalog", Col::Name),
    ("user_defined_type_schema", Col::Name),
    ("user_defined_type_name", Col::Name),
    ("is_insertable_into", Col::Text),
    ("is_typed", Col::Text),
    ("commit_action", Col::Text),
];

pub fn tables(snapshot: &CatalogSnapshot) -> Vec<Row> {
    tables_and_views(snapshot)
        .into_iter()
        .map(|(schema, r)| {
            let is_table = r.kind == "r";
            row![
                snapshot.database.as_str(),
                schema,
                r.name,
                if is_table { "BASE TABLE" } else { "VIEW" },
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                yes_no(is_table),
                "NO",
                Value::Null,
            ]
        })
        .collect()
}

pub static COLUMNS: Columns = &[
    ("table_catalog", Col::Name),
    ("table_schema", Col::Name),
    ("table_name", Col::Name),
    ("column_name", Col::Name),
    ("ordinal_position", Col::Int4),
    ("column_default", Col::Text),
    ("is_nullable", Col::Text),
    ("data_type", Col::Text),
    ("character_maximum_length", Col::Int4),
    ("character_octet_length", Col::Int4),
    ("numeric_precision", Col::Int4),
    ("numeric_precision_radix", Col::Int4),
    ("numeric_scale", Col::Int4),
    ("datetime_precision", Col::Int4),
    ("interval_type", Col::Text),
    ("interval_precision", Col::Int4),
    ("character_set_catalog", Col::Name),
    ("character_set_schema", Col::Name),
    ("character_set_name", Col::Name),
    ("collation_catalog", Col::Name),
    ("collation_schema", Col::Name),
    ("collation_name", Col::Name),
    ("domain_catalog", Col::Name),
    ("domain_schema", Col::Name),
    ("domain_name", Col::Name),
    ("udt_catalog", Col::Name),
    ("udt_schema", Col::Name),
    ("udt_name", Col::Name),
    ("scope_catalog", Col::Name),
    ("scope_schema", Col::Name),
    ("scope_name", Col::Name),
    ("maximum_cardinality", Col::Int4),
    ("dtd_identifier", Col::Name),
    ("is_self_referencing", Col::Text),
    ("is_identity", Col::Text),
    ("identity_generation", Col::Text),
    ("identity_start", Col::Text),
    ("identity_increment", Col::Text),
    ("identity_maximum", Col::Text),
    ("identity_minimum", Col::Text),
    ("identity_cycle", Col::Text),
    ("is_generated", Col::Text),
    ("generation_expression", Col::Text),
    ("is_updatable", Col::Text),
];

/// The numeric facts `information_schema.columns` reports for a column's type:
/// (character_maximum_length, character_octet_length, numeric_precision, radix, scale,
/// datetime_precision).
type TypeFacts = (Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<i64>);

fn type_facts(a: &Attribute) -> TypeFacts {
    /// Postgres reports 1 GB as the octet length of unbounded strings.
    const MAX_OCTETS: i64 = 1_073_741_824;
    /// UTF-8: up to 4 bytes per character.
    const MAX_BYTES_PER_CHAR: i64 = 4;
    let typmod = i64::from(a.typmod);
    match a.type_oid {
        types::VARCHAR | types::BPCHAR => {
            let length = (typmod >= 4).then_some(typmod - 4);
            let octets = length.map_or(MAX_OCTETS, |n| n * MAX_BYTES_PER_CHAR);
            (length, Some(octets), None, None, None, None)
        }
        types::TEXT => (None, Some(MAX_OCTETS), None, None, None, None),
        types::INT2 => (None, None, Some(16), Some(2), Some(0), None),
        types::INT4 => (None, None, Some(32), Some(2), Some(0), None),
        types::INT8 => (None, None, Some(64), Some(2), Some(0), None),
        types::FLOAT4 => (None, None, Some(24), Some(2), None, None),
        types::FLOAT8 => (None, None, Some(53), Some(2), None, None),
        types::NUMERIC => {
            if a.typmod >= 4 {
                let (p, s) = types::numeric_precision_scale(a.typmod);
                (None, None, Some(p.into()), Some(10), Some(s.into()), None)
            } else {
                (None, None, None, Some(10), None, None)
            }
        }
        types::DATE => (None, None, None, None, None, Some(0)),
        types::TIME | types::TIMETZ | types::TIMESTAMP | types::TIMESTAMPTZ => {
            (None, None, None, None, None, Some(if typmod >= 0 { typmod } else { 6 }))
        }
        types::INTERVAL => {
            let precision = types::interval_precision(a.typmod).map_or(6, i64::from);
            (None, None, None, None, None, Some(precision))
        }
        _ => (None, None, None, None, None, None),
    }
}

pub fn columns(snapshot: &CatalogSnapshot) -> Vec<Row> {
    let mut rows = Vec::new();
    for (schema, r) in tables_and_views(snapshot) {
        for (i, a) in r.attributes.iter().enumerate() {
            let (char_len, octets, precision, radix, scale, dt_precision) = type_facts(a);
            let position = i + 1;
            rows.push(row![
                snapshot.database.as_str(),
                schema.as_str(),
                r.name.as_str(),
                a.name.as_str(),
                position,
                Value::Null,
                yes_no(!a.not_null),
                types::information_schema_data_type(a.type_oid),
                char_len,
                octets,
                precision,
                radix,
                scale,
                dt_precision,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                snapshot.database.as_str(),
                "pg_catalog",
                types::type_name(a.type_oid),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                position.to_string(),
                "NO",
                "NO",
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                "NO",
                "NEVER",
                Value::Null,
                yes_no(r.kind == "r"),
            ]);
        }
    }
    rows
}

pub static VIEWS: Columns = &[
    ("table_catalog", Col::Name),
    ("table_schema", Col::Name),
    ("table_name", Col::Name),
    ("view_definition", Col::Text),
    ("check_option", Col::Text),
    ("is_updatable", Col::Text),
    ("is_insertable_into", Col::Text),
    ("is_trigger_updatable", Col::Text),
    ("is_trigger_deletable", Col::Text),
    ("is_trigger_insertable_into", Col::Text),
];

pub fn views(snapshot: &CatalogSnapshot) -> Vec<Row> {
    tables_and_views(snapshot)
        .into_iter()
        .filter(|(_, r)| r.kind == "v")
        .map(|(schema, r)| {
            row![
                snapshot.database.as_str(),
                schema,
                r.name,
                Value::Null,
                "NONE",
                "NO",
                "NO",
                "NO",
                "NO",
                "NO"
            ]
        })
        .collect()
}

pub static TABLE_CONSTRAINTS: Columns = &[
    ("constraint_catalog", Col::Name),
    ("constraint_schema", Col::Name),
    ("constraint_name", Col::Name),
    ("table_catalog", Col::Name),
    ("table_schema", Col::Name),
    ("table_name", Col::Name),
    ("constraint_type", Col::Text),
    ("is_deferrable", Col::Text),
    ("initially_deferred", Col::Text),
    ("enforced", Col::Text),
    ("nulls_distinct", Col::Text),
];

pub fn table_constraints(snapshot: &CatalogSnapshot) -> Vec<Row> {
    let db = snapshot.database.as_str();
    let mut rows = Vec::new();
    for def in &snapshot.tables {
        let schema = def.schema_name.as_str();
        if def.has_primary_key() {
            rows.push(row![
                db,
                schema,
                def.primary_key_constraint_name(),
                db,
                schema,
                def.name.as_str(),
                "PRIMARY KEY",
                "NO",
                "NO",
                "YES",
                Value::Null,
            ]);
        }
        for (i, c) in def.columns.iter().enumerate() {
            let is_key = def.primary_key.contains(&i);
            if c.not_null || is_key {
                let name = format!("{}_{}_{}_not_null", namespace_oid(schema), table_oid(def), i + 1);
                rows.push(row![
                    db,
                    schema,
                    name,
                    db,
                    schema,
                    def.name.as_str(),
                    "CHECK",
                    "NO",
                    "NO",
                    "YES",
                    Value::Null
                ]);
            }
        }
    }
    rows
}

pub static KEY_COLUMN_USAGE: Columns = &[
    ("constraint_catalog", Col::Name),
    ("constraint_schema", Col::Name),
    ("constraint_name", Col::Name),
    ("table_catalog", Col::Name),
    ("table_schema", Col::Name),
    ("table_name", Col::Name),
    ("column_name", Col::Name),
    ("ordinal_position", Col::Int4),
    ("position_in_unique_constraint", Col::Int4),
];

pub fn key_column_usage(snapshot: &CatalogSnapshot) -> Vec<Row> {
    let db = snapshot.database.as_str();
    let mut rows = Vec::new();
    for def in &snapshot.tables {
        let schema = def.schema_name.as_str();
        for (position, c) in def.primary_key.iter().filter_map(|&i| def.columns.get(i)).enumerate() {
            rows.push(row![
                db,
                schema,
                def.primary_key_constraint_name(),
                db,
                schema,
                def.name.as_str(),
                c.name.as_str(),
                position + 1,
                Value::Null,
            ]);
        }
    }
    rows
}

pub static CONSTRAINT_COLUMN_USAGE: Columns = &[
    ("table_catalog", Col::Name),
    ("table_schema", Col::Name),
    ("table_name", Col::Name),
    ("column_name", Col::Name),
    ("constraint_catalog", Col::Name),
    ("constraint_schema", Col::Name),
    ("constraint_name", Col::Name),
];

pub fn constraint_column_usage(snapshot: &CatalogSnapshot) -> Vec<Row> {
    let db = snapshot.database.as_str();
    let mut rows = Vec::new();
    for def in &snapshot.tables {
        let schema = def.schema_name.as_str();
        for c in def.primary_key.iter().filter_map(|&i| def.columns.get(i)) {
            rows.push(row![
                db,
                schema,
                def.name.as_str(),
                c.name.as_str(),
                db,
                schema,
                def.primary_key_constraint_name(),
            ]);
        }
    }
    rows
}

pub static REFERENTIAL_CONSTRAINTS: Columns = &[
    ("constraint_catalog", Col::Name),
    ("constraint_schema", Col::Name),
    ("constraint_name", Col::Name),
    ("unique_constraint_catalog", Col::Name),
    ("unique_constraint_schema", Col::Name),
    ("unique_constraint_name", Col::Name),
    ("match_option", Col::Text),
    ("update_rule", Col::Text),
    ("delete_rule", Col::Text),
];

pub static SEQUENCES: Columns = &[
    ("sequence_catalog", Col::Name),
    ("sequence_schema", Col::Name),
    ("sequence_name", Col::Name),
    ("data_type", Col::Text),
    ("numeric_precision", Col::Int4),
    ("numeric_precision_radix", Col::Int4),
    ("numeric_scale", Col::Int4),
    ("start_value", Col::Text),
    ("minimum_value", Col::Text),
    ("maximum_value", Col::Text),
    ("increment", Col::Text),
    ("cycle_option", Col::Text),
];
