//! Every system table and view Weir answers, in `pg_catalog` or `information_schema`.
//!
//! The list is data, not code, so `pg_class`/`pg_attribute` can describe the system
//! relations themselves (`\d pg_class` works as in Postgres) from the same declarations the
//! tables are built from. Oids of tables are Postgres' own; views get oids from a private
//! range since Postgres assigns theirs at `initdb`.

use arrow::record_batch::RecordBatch;
use datafusion::error::Result;

use super::columns::{build_batch, Columns, Row};
use super::empty_catalogs as empty;
use super::foreign_tables as foreign;
use super::{
    cluster, indexes, information_schema as info, namespaces, pg_class, relation_views, stat_activity, types,
};
use super::{CatalogSnapshot, INFORMATION_SCHEMA_NAMESPACE_OID, PG_CATALOG_NAMESPACE_OID};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemKind {
    Table,
    View,
}

pub struct SystemRelation {
    pub name: &'static str,
    pub oid: i64,
    pub namespace: i64,
    pub kind: SystemKind,
    pub columns: Columns,
    pub rows: fn(&CatalogSnapshot) -> Vec<Row>,
}

impl SystemRelation {
    pub fn build(&self, snapshot: &CatalogSnapshot) -> Result<RecordBatch> {
        build_batch(self.name, self.columns, &(self.rows)(snapshot))
    }
}

pub fn in_namespace(namespace: i64) -> impl Iterator<Item = &'static SystemRelation> {
    SYSTEM_RELATIONS.iter().filter(move |r| r.namespace == namespace)
}

pub fn all() -> &'static [SystemRelation] {
    SYSTEM_RELATIONS
}

/// `COMMENT ON` texts of the relations and columns that exist, on `pg_class` (1259).
fn pg_description(snapshot: &CatalogSnapshot) -> Vec<Row> {
    snapshot
        .comments_of_relations()
        .into_iter()
        .map(|(oid, column, text)| {
            vec![oid.into(), 1259i64.into(), i64::from(column).into(), text.to_string().into()]
        })
        .collect()
}

fn no_rows(_: &CatalogSnapshot) -> Vec<Row> {
    Vec::new()
}

const fn table(
    name: &'static str,
    oid: i64,
    columns: Columns,
    rows: fn(&CatalogSnapshot) -> Vec<Row>,
) -> SystemRelation {
    SystemRelation { name, oid, namespace: PG_CATALOG_NAMESPACE_OID, kind: SystemKind::Table, columns, rows }
}

const fn view(
    name: &'static str,
    oid: i64,
    columns: Columns,
    rows: fn(&CatalogSnapshot) -> Vec<Row>,
) -> SystemRelation {
    SystemRelation { name, oid, namespace: PG_CATALOG_NAMESPACE_OID, kind: SystemKind::View, columns, rows }
}

const fn info_view(
    name: &'static str,
    oid: i64,
    columns: Columns,
    rows: fn(&CatalogSnapshot) -> Vec<Row>,
) -> SystemRelation {
    SystemRelation {
        name,
        oid,
        namespace: INFORMATION_SCHEMA_NAMESPACE_OID,
        kind: SystemKind::View,
        columns,
        rows,
    }
}

static SYSTEM_RELATIONS: &[SystemRelation] = &[
    // Objects in the database.
    table("pg_namespace", 2615, namespaces::PG_NAMESPACE, namespaces::pg_namespace),
    table("pg_class", 1259, pg_class::PG_CLASS, pg_class::pg_class),
    table("pg_attribute", 1249, pg_class::PG_ATTRIBUTE, pg_class::pg_attribute),
    table("pg_type", 1247, types::PG_TYPE_COLUMNS, types::pg_type_rows),
    table("pg_index", 2610, indexes::PG_INDEX, indexes::pg_index),
    table("pg_constraint", 2606, indexes::PG_CONSTRAINT, indexes::pg_constraint),
    table("pg_attrdef", 2604, empty::PG_ATTRDEF, pg_class::pg_attrdef),
    table("pg_description", 2609, empty::PG_DESCRIPTION, pg_description),
    table("pg_depend", 2608, empty::PG_DEPEND, no_rows),
    table("pg_inherits", 2611, empty::PG_INHERITS, no_rows),
    table("pg_partitioned_table", 3350, empty::PG_PARTITIONED_TABLE, no_rows),
    table("pg_trigger", 2620, empty::PG_TRIGGER, no_rows),
    table("pg_rewrite", 2618, empty::PG_REWRITE, no_rows),
    table("pg_sequence", 2224, empty::PG_SEQUENCE, no_rows),
    table("pg_policy", 3256, empty::PG_POLICY, no_rows),
    table("pg_statistic_ext", 3381, empty::PG_STATISTIC_EXT, no_rows),
    table("pg_publication", 6104, empty::PG_PUBLICATION, no_rows),
    table("pg_publication_namespace", 6237, empty::PG_PUBLICATION_NAMESPACE, no_rows),
    table("pg_publication_rel", 6106, empty::PG_PUBLICATION_REL, no_rows),
    table("pg_event_trigger", 3466, empty::PG_EVENT_TRIGGER, no_rows),
    table("pg_subscription", 6100, empty::PG_SUBSCRIPTION, no_rows),
    table("pg_foreign_data_wrapper", 2328, empty::PG_FOREIGN_DATA_WRAPPER, foreign::pg_foreign_data_wrapper),
    table("pg_foreign_server", 1417, empty::PG_FOREIGN_SERVER, foreign::pg_foreign_server),
    table("pg_foreign_table", 3118, empty::PG_FOREIGN_TABLE, foreign::pg_foreign_table),
    table("pg_proc", 1255, cluster::PG_PROC, no_rows),
    table("pg_enum", 3501, cluster::PG_ENUM, no_rows),
    table("pg_range", 3541, cluster::PG_RANGE, no_rows),
    table("pg_extension", 3079, cluster::PG_EXTENSION, no_rows),
    table("pg_language", 2612, cluster::PG_LANGUAGE, cluster::pg_language),
    table("pg_collation", 3456, cluster::PG_COLLATION, cluster::pg_collation),
    table("pg_am", 2601, cluster::PG_AM, cluster::pg_am),
    // Objects of the cluster.
    table("pg_database", 1262, cluster::PG_DATABASE, cluster::pg_database),
    table("pg_authid", 1260, cluster::PG_AUTHID, cluster::pg_authid),
    table("pg_auth_members", 1261, cluster::PG_AUTH_MEMBERS, cluster::pg_auth_members),
    table("pg_tablespace", 1213, cluster::PG_TABLESPACE, cluster::pg_tablespace),
    table("pg_shdescription", 2396, empty::PG_SHDESCRIPTION, no_rows),
    // Views.
    view("pg_roles", 12001, cluster::PG_ROLES, cluster::pg_roles),
    view("pg_user", 12002, cluster::PG_USER, cluster::pg_user),
    view("pg_settings", 12003, cluster::PG_SETTINGS, cluster::pg_settings),
    view("pg_tables", 12004, relation_views::PG_TABLES, relation_views::pg_tables),
    view("pg_views", 12005, relation_views::PG_VIEWS, relation_views::pg_views),
    view("pg_matviews", 12006, relation_views::PG_MATVIEWS, relation_views::pg_matviews),
    view("pg_indexes", 12007, relation_views::PG_INDEXES, relation_views::pg_indexes),
    view("pg_stat_activity", 12008, stat_activity::PG_STAT_ACTIVITY, stat_activity::pg_stat_activity),
    // information_schema.
    info_view("schemata", 13201, info::SCHEMATA, info::schemata),
    info_view("tables", 13202, info::TABLES, info::tables),
    info_view("columns", 13203, info::COLUMNS, info::columns),
    info_view("views", 13204, info::VIEWS, info::views),
    info_view("table_constraints", 13205, info::TABLE_CONSTRAINTS, info::table_constraints),
    info_view("key_column_usage", 13206, info::KEY_COLUMN_USAGE, info::key_column_usage),
    info_view("constraint_column_usage", 13207, info::CONSTRAINT_COLUMN_USAGE, info::constraint_column_usage),
    info_view("referential_constraints", 13208, info::REFERENTIAL_CONSTRAINTS, no_rows),
    info_view("sequences", 13210, info::SEQUENCES, no_rows),
];
