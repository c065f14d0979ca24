//! psql's and drivers' catalog queries, run as the server runs them (parse, Postgres
//! compatibility rewrites, DataFusion) against a catalog of two tables and a materialized
//! view, with Postgres' answers as expectations.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use datafusion::sql::parser::Statement as DfStatement;
use weir_plan::catalog::{ColumnDef, ColumnType, TableDef, ViewDef};
use weir_planner::{parse_sql, rewrite_for_datafusion, WeirStatement};

use super::{test_context, CatalogSnapshot};

const PSQL_QUERIES: &str = include_str!("testdata/psql15_queries.sql");

/// The tables and the materialized view of the reference capture, with ids chosen so the
/// oids match it (orders = 16385, items = 16392, customer_totals = 16397).
fn snapshot() -> Arc<CatalogSnapshot> {
    let column = |name: &str, column_type, not_null| ColumnDef {
        name: name.into(),
        column_type,
        not_null,
        default: None,
    };
    Arc::new(CatalogSnapshot {
        tables: vec![
            TableDef {
                id: 1,
                schema_name: "public".into(),
                name: "orders".into(),
                columns: vec![
                    column("id", ColumnType::Int8, true),
                    column("customer", ColumnType::Text, false),
                    column("amount", ColumnType::Float8, false),
                    column("ts", ColumnType::Timestamp { precision: None }, false),
                ],
                primary_key: vec![0],
                watermark: None,
                primary_key_name: None,
            },
            TableDef {
                id: 8,
                schema_name: "public".into(),
                name: "items".into(),
                columns: vec![column("sku", ColumnType::Text, true), column("qty", ColumnType::Int4, false)],
                primary_key: vec![],
                watermark: None,
                primary_key_name: None,
            },
        ],
        views: vec![view(
            13,
            "customer_totals",
            vec![
                column("customer", ColumnType::Text, false),
                column("total", ColumnType::Float8, false),
                column("n", ColumnType::Int8, false),
            ],
            "SELECT customer, sum(amount) AS total, count(*) AS n FROM orders GROUP BY customer",
        )],
        sources: Vec::new(),
        database: "weir".into(),
        user: "weir".into(),
        settings: vec![
            ("search_path".into(), "\"$user\", public".into()),
            ("DateStyle".into(), "ISO, MDY".into()),
        ],
        server_version: "15.0".into(),
        comments: Default::default(),
        privileges: Default::default(),
        sessions: Default::default(),
        backend_pid: 0,
        notices: Default::default(),
    })
}

/// A materialized view in `public` as `CREATE MATERIALIZED VIEW` stores it.
fn view(id: u64, name: &str, columns: Vec<ColumnDef>, definition: &str) -> ViewDef {
    ViewDef {
        relation: TableDef {
            id,
            schema_name: "public".into(),
            name: name.into(),
            columns,
            primary_key: vec![],
            watermark: None,
            primary_key_name: None,
        },
        arrow_types: vec![],
        definition: definition.into(),
        parallelism: 1,
        depends_on: vec![1],
        job_graph: weir_plan::JobGraph {
            watermark_alignment: None,
            target: weir_plan::JobTarget {
                id,
                name: name.into(),
                kind: weir_plan::TargetKind::MaterializedView,
            },
            vertices: vec![],
        },
        created_at: 0,
    }
}

async fn run(sql: &str) -> Result<Vec<RecordBatch>, String> {
    run_in(snapshot(), sql).await
}

async fn run_in(snapshot: Arc<CatalogSnapshot>, sql: &str) -> Result<Vec<RecordBatch>, String> {
    let ctx = test_context(snapshot);
    let mut statements = parse_sql(sql).map_err(|e| format!("parse: {e:?}"))?;
    let WeirStatement::Sql(mut statement) = statements.remove(0) else { return Err("not SQL".into()) };
    rewrite_for_datafusion(&mut statement);
    let plan = ctx
        .state()
        .statement_to_plan(DfStatement::Statement(statement))
        .await
        .map_err(|e| format!("plan: {e}"))?;
    let df = ctx.execute_logical_plan(plan).await.map_err(|e| format!("execute: {e}"))?;
    df.collect().await.map_err(|e| format!("collect: {e}"))
}

async fn table(sql: &str) -> String {
    match run(sql).await {
        Ok(batches) => {
            pretty_format_batches(&batches).map(|t| t.to_string()).unwrap_or_else(|e| e.to_string())
        }
        Err(e) => format!("ERROR {e}"),
    }
}

fn psql_query(name: &str) -> String {
    let header = format!("-- query: {name}\n");
    let start =
        PSQL_QUERIES.find(&header).map(|i| i + header.len()).unwrap_or_else(|| panic!("no query {name}"));
    let rest = &PSQL_QUERIES[start..];
    let end = rest.find("-- query:").unwrap_or(rest.len());
    rest[..end].trim().to_string()
}

fn lines(s: &str) -> Vec<String> {
    s.trim().lines().map(|l| l.trim().to_string()).collect()
}

macro_rules! assert_table {
    ($sql:expr, $expected:expr) => {
        let actual = table(&$sql).await;
        assert_eq!(lines(&actual), lines($expected), "\nactual:\n{actual}\n");
    };
}

#[tokio::test]
async fn every_psql_query_runs() {
    let mut failures = Vec::new();
    for header in PSQL_QUERIES.lines().filter_map(|l| l.strip_prefix("-- query: ")) {
        let sql = psql_query(header);
        if let Err(e) = run(&sql).await {
            failures.push(format!("{header}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{} queries failed:\n{}", failures.len(), failures.join("\n"));
}

// Expected values are Postgres 15's answers (wire capture of the same queries), with the
// owner being the connecting user `weir`.

#[tokio::test]
async fn dt_lists_user_tables() {
    assert_table!(
        psql_query("dt.1"),
        "
        +--------+--------+-------+-------+
        | Schema | Name   | Type  | Owner |
        +--------+--------+-------+-------+
        | public | items  | table | weir  |
        | public | orders | table | weir  |
        +--------+--------+-------+-------+"
    );
}

#[tokio::test]
async fn describe_table_resolves_name_then_describes_by_oid() {
    assert_table!(
        psql_query("d_orders.1"),
        "
        +-------+---------+---------+
        | oid   | nspname | relname |
        +-------+---------+---------+
        | 16385 | public  | orders  |
        +-------+---------+---------+"
    );
    let details = run(&psql_query("d_orders.2")).await.expect("runs");
    let row: Vec<String> = (0..details[0].num_columns())
        .map(|c| arrow::util::display::array_value_to_string(details[0].column(c), 0).unwrap_or_default())
        .collect();
    assert_eq!(
        row,
        [
            "0", "r", "true", "false", "false", "false", "false", "false", "false", "", "0", "", "p", "d",
            "heap"
        ]
    );
}

#[tokio::test]
async fn describe_table_columns_and_indexes() {
    let columns = run(&psql_query("d_orders.3")).await.expect("runs");
    let rendered: Vec<Vec<String>> = (0..columns[0].num_rows())
        .map(|r| {
            (0..columns[0].num_columns())
                .map(|c| {
                    let col = columns[0].column(c);
                    if col.is_null(r) {
                        "NULL".into()
                    } else {
                        arrow::util::display::array_value_to_string(col, r).unwrap_or_default()
                    }
                })
                .collect()
        })
        .collect();
    assert_eq!(
        rendered,
        [
            ["id", "bigint", "NULL", "true", "NULL", "", ""],
            ["customer", "text", "NULL", "false", "NULL", "", ""],
            ["amount", "double precision", "NULL", "false", "NULL", "", ""],
            ["ts", "timestamp without time zone", "NULL", "false", "NULL", "", ""],
        ]
    );
    let indexes = run(&psql_query("d_orders.4")).await.expect("runs");
    let index_def = arrow::util::display::array_value_to_string(indexes[0].column(5), 0).unwrap_or_default();
    let constraint_def =
        arrow::util::display::array_value_to_string(indexes[0].column(6), 0).unwrap_or_default();
    assert_eq!(index_def, "CREATE UNIQUE INDEX orders_pkey ON orders USING btree (id)");
    assert_eq!(constraint_def, "PRIMARY KEY (id)");
}

#[tokio::test]
async fn describe_table_footer_queries_find_nothing() {
    for name in ["d_orders.5", "d_orders.6", "d_orders.7", "d_orders.8", "d_orders.9"] {
        let batches = run(&psql_query(name)).await.expect("runs");
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0, "{name}");
    }
}

#[tokio::test]
async fn schemas_databases_indexes_roles() {
    assert_table!(
        psql_query("dn.1"),
        "
        +--------+-------------------+
        | Name   | Owner             |
        +--------+-------------------+
        | public | pg_database_owner |
        +--------+-------------------+"
    );
    assert_table!(
        psql_query("l.1"),
        "
        +------+-------+----------+---------+---------+------------+-----------------+-------------------+
        | Name | Owner | Encoding | Collate | Ctype   | ICU Locale | Locale Provider | Access privileges |
        +------+-------+----------+---------+---------+------------+-----------------+-------------------+
        | weir | weir  | UTF8     | C.UTF-8 | C.UTF-8 |            | libc            |                   |
        +------+-------+----------+---------+---------+------------+-----------------+-------------------+"
    );
    assert_table!(
        psql_query("di.1"),
        "
        +--------+-------------+-------+-------+--------+
        | Schema | Name        | Type  | Owner | Table  |
        +--------+-------------+-------+-------+--------+
        | public | orders_pkey | index | weir  | orders |
        +--------+-------------+-------+-------+--------+"
    );
    assert_table!(
        "SELECT r.rolname, r.rolsuper, ARRAY(SELECT b.rolname FROM pg_catalog.pg_auth_members m \
         JOIN pg_catalog.pg_roles b ON (m.roleid = b.oid) WHERE m.member = r.oid) as memberof \
         FROM pg_catalog.pg_roles r WHERE r.rolname !~ '^pg_' ORDER BY 1",
        "
        +---------+----------+----------+
        | rolname | rolsuper | memberof |
        +---------+----------+----------+
        | weir    | true     | []       |
        +---------+----------+----------+"
    );
}

#[tokio::test]
async fn information_schema_uses_postgres_type_names() {
    assert_table!(
        "SELECT table_name, column_name, ordinal_position, is_nullable, data_type, udt_name \
         FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
        "
        +------------+-------------+------------------+-------------+-----------------------------+-----------+
        | table_name | column_name | ordinal_position | is_nullable | data_type                   | udt_name  |
        +------------+-------------+------------------+-------------+-----------------------------+-----------+
        | items      | sku         | 1                | NO          | text                        | text      |
        | items      | qty         | 2                | YES         | integer                     | int4      |
        | orders     | id          | 1                | NO          | bigint                      | int8      |
        | orders     | customer    | 2                | YES         | text                        | text      |
        | orders     | amount      | 3                | YES         | double precision            | float8    |
        | orders     | ts          | 4                | YES         | timestamp without time zone | timestamp |
        +------------+-------------+------------------+-------------+-----------------------------+-----------+"
    );
}

#[tokio::test]
async fn reg_casts_translate_names_and_oids() {
    assert_table!(
        "SELECT 'orders'::regclass::oid AS oid, 16385::regclass AS name, 'int4'::regtype::oid AS t, \
         1043::regtype AS tn, 2200::regnamespace AS ns",
        "
        +-------+--------+----+-------------------+--------+
        | oid   | name   | t  | tn                | ns     |
        +-------+--------+----+-------------------+--------+
        | 16385 | orders | 23 | character varying | public |
        +-------+--------+----+-------------------+--------+"
    );
    let error = run("SELECT 'nosuch'::regclass").await.expect_err("unknown relation");
    assert!(error.contains("relation \"nosuch\" does not exist"), "{error}");
}

/// The query rewriter drops select-list subqueries over catalogs it knows are empty; they
/// must really be empty here.
#[tokio::test]
async fn catalogs_the_rewriter_treats_as_empty_are_empty() {
    for name in weir_planner::ALWAYS_EMPTY_CATALOG_TABLES {
        let relation = super::registry::in_namespace(super::PG_CATALOG_NAMESPACE_OID)
            .find(|r| r.name == *name)
            .unwrap_or_else(|| panic!("{name} is not a pg_catalog table"));
        let batch = relation.build(&snapshot()).expect("builds");
        assert_eq!(batch.num_rows(), 0, "{name} has rows");
    }
}

#[tokio::test]
async fn every_system_relation_can_be_selected() {
    for relation in super::registry::all() {
        let schema = if relation.namespace == super::INFORMATION_SCHEMA_NAMESPACE_OID {
            "information_schema"
        } else {
            "pg_catalog"
        };
        let sql = format!("SELECT * FROM {schema}.{}", relation.name);
        if let Err(e) = run(&sql).await {
            panic!("{sql}: {e}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Materialized views

fn cell(batch: &RecordBatch, column: usize, row: usize) -> String {
    let array = batch.column(column);
    if array.is_null(row) {
        "NULL".into()
    } else {
        arrow::util::display::array_value_to_string(array, row).unwrap_or_default()
    }
}

fn first_row(batches: &[RecordBatch]) -> Vec<String> {
    let batch = batches.iter().find(|b| b.num_rows() > 0).expect("a row");
    (0..batch.num_columns()).map(|c| cell(batch, c, 0)).collect()
}

#[tokio::test]
async fn dm_and_d_list_materialized_views_and_dt_does_not() {
    assert_table!(
        psql_query("dm.1"),
        "
        +--------+-----------------+-------------------+-------+
        | Schema | Name            | Type              | Owner |
        +--------+-----------------+-------------------+-------+
        | public | customer_totals | materialized view | weir  |
        +--------+-----------------+-------------------+-------+"
    );
    assert_table!(
        psql_query("d.1"),
        "
        +--------+-----------------+-------------------+-------+
        | Schema | Name            | Type              | Owner |
        +--------+-----------------+-------------------+-------+
        | public | customer_totals | materialized view | weir  |
        | public | items           | table             | weir  |
        | public | orders          | table             | weir  |
        +--------+-----------------+-------------------+-------+"
    );
    assert_table!(
        psql_query("dm_plus.1"),
        "
        +--------+-----------------+-------------------+-------+-------------+---------------+---------+-------------+
        | Schema | Name            | Type              | Owner | Persistence | Access method | Size    | Description |
        +--------+-----------------+-------------------+-------+-------------+---------------+---------+-------------+
        | public | customer_totals | materialized view | weir  | permanent   | heap          | 0 bytes |             |
        +--------+-----------------+-------------------+-------+-------------+---------------+---------+-------------+"
    );
    // dv.1 lists views (relkind 'v') only: none.
    let views = run(&psql_query("dv.1")).await.expect("runs");
    assert_eq!(views.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
}

/// Postgres 15's `pg_class` row of a materialized view (reltype aside: Weir's relations have
/// no row types).
#[tokio::test]
async fn materialized_view_in_pg_class_and_pg_attribute() {
    assert_table!(
        "SELECT oid, relkind, relam, relfilenode, relhasindex, relhasrules, relpersistence, relnatts, \
         relispopulated, relreplident, reltuples FROM pg_catalog.pg_class WHERE relname = 'customer_totals'",
        "
        +-------+---------+-------+-------------+-------------+-------------+----------------+----------+----------------+--------------+-----------+
        | oid   | relkind | relam | relfilenode | relhasindex | relhasrules | relpersistence | relnatts | relispopulated | relreplident | reltuples |
        +-------+---------+-------+-------------+-------------+-------------+----------------+----------+----------------+--------------+-----------+
        | 16397 | m       | 2     | 16397       | false       | true        | p              | 3        | true           | d            | -1.0      |
        +-------+---------+-------+-------------+-------------+-------------+----------------+----------+----------------+--------------+-----------+"
    );
    assert_table!(
        "SELECT attname, atttypid, attnum, attnotnull, attstorage FROM pg_catalog.pg_attribute \
         WHERE attrelid = 'customer_totals'::regclass ORDER BY attnum",
        "
        +----------+----------+--------+------------+------------+
        | attname  | atttypid | attnum | attnotnull | attstorage |
        +----------+----------+--------+------------+------------+
        | customer | 25       | 1      | false      | x          |
        | total    | 701      | 2      | false      | p          |
        | n        | 20       | 3      | false      | p          |
        +----------+----------+--------+------------+------------+"
    );
}

#[tokio::test]
async fn describe_materialized_view() {
    assert_table!(
        psql_query("d_plus_customer_totals.1"),
        "
        +-------+---------+-----------------+
        | oid   | nspname | relname         |
        +-------+---------+-----------------+
        | 16397 | public  | customer_totals |
        +-------+---------+-----------------+"
    );
    assert_eq!(
        first_row(&run(&psql_query("d_plus_customer_totals.2")).await.expect("runs")),
        [
            "0", "m", "false", "true", "false", "false", "false", "false", "false", "", "0", "", "p", "d",
            "heap"
        ]
    );
    let columns = run(&psql_query("d_plus_customer_totals.3")).await.expect("runs");
    let rendered: Vec<Vec<String>> = columns
        .iter()
        .flat_map(|b| (0..b.num_rows()).map(move |r| (0..b.num_columns()).map(|c| cell(b, c, r)).collect()))
        .collect();
    assert_eq!(
        rendered,
        [
            ["customer", "text", "NULL", "false", "NULL", "", "", "x", "", "NULL", "NULL"],
            ["total", "double precision", "NULL", "false", "NULL", "", "", "p", "", "NULL", "NULL"],
            ["n", "bigint", "NULL", "false", "NULL", "", "", "p", "", "NULL", "NULL"],
        ]
    );
    // psql prints this under "View definition:", exactly as Postgres 15 does.
    assert_eq!(
        first_row(&run(&psql_query("d_plus_customer_totals.7")).await.expect("runs")),
        [" SELECT orders.customer,\n    sum(orders.amount) AS total,\n    count(*) AS n\n   FROM orders\n  GROUP BY orders.customer;"]
    );
    // No rules but the view's own, and no policies, statistics, publications or inheritance.
    for name in ["4", "5", "6", "8", "9", "10"] {
        let batches = run(&psql_query(&format!("d_plus_customer_totals.{name}"))).await.expect("runs");
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0, "d_plus_customer_totals.{name}");
    }
}

#[tokio::test]
async fn pg_get_viewdef_forms_and_pg_matviews() {
    let definition =
        " SELECT orders.customer,\n    sum(orders.amount) AS total,\n    count(*) AS n\n   FROM orders\n  GROUP BY orders.customer;";
    let row = first_row(
        &run(
            "SELECT pg_get_viewdef(16397), pg_get_viewdef(16397, false), pg_get_viewdef('customer_totals'), \
              pg_get_viewdef('customer_totals'::regclass, 80), pg_get_viewdef(16385), pg_get_viewdef(0)",
        )
        .await
        .expect("runs"),
    );
    assert_eq!(row, [definition, definition, definition, definition, "NULL", "NULL"]);
    assert_table!(
        "SELECT schemaname, matviewname, matviewowner, tablespace, hasindexes, ispopulated \
         FROM pg_catalog.pg_matviews",
        "
        +------------+-----------------+--------------+------------+------------+-------------+
        | schemaname | matviewname     | matviewowner | tablespace | hasindexes | ispopulated |
        +------------+-----------------+--------------+------------+------------+-------------+
        | public     | customer_totals | weir         |            | false      | true        |
        +------------+-----------------+--------------+------------+------------+-------------+"
    );
    let row = first_row(&run("SELECT definition FROM pg_catalog.pg_matviews").await.expect("runs"));
    assert_eq!(row, [definition]);
}

/// Postgres lists materialized views in neither `information_schema.tables` nor `.columns`,
/// nor in `pg_tables`.
#[tokio::test]
async fn information_schema_and_pg_tables_leave_out_materialized_views() {
    for sql in [
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'customer_totals'",
        "SELECT count(*) AS n FROM information_schema.columns WHERE table_name = 'customer_totals'",
        "SELECT count(*) AS n FROM information_schema.views WHERE table_name = 'customer_totals'",
        "SELECT count(*) AS n FROM pg_catalog.pg_tables WHERE tablename = 'customer_totals'",
    ] {
        assert_table!(sql, "+---+\n| n |\n+---+\n| 0 |\n+---+");
    }
    assert_table!(
        "SELECT 'customer_totals'::regclass::oid AS oid, 16397::regclass AS name",
        "
        +-------+-----------------+
        | oid   | name            |
        +-------+-----------------+
        | 16397 | customer_totals |
        +-------+-----------------+"
    );
}

/// Definitions laid out by `pg_get_viewdef`, each compared with what Postgres 15.18 prints
/// for the same `CREATE MATERIALIZED VIEW` (both pretty and not, where they differ).
#[test]
fn pg_get_viewdef_matches_postgres_layout() {
    let mut base = (*snapshot()).clone();
    let cases: &[(&str, &[&str], &str, Option<&str>)] = &[
        (
            "SELECT customer, count(*) FROM orders GROUP BY customer ORDER BY count(*) DESC, customer",
            &["customer", "count"],
            " SELECT orders.customer,\n    count(*) AS count\n   FROM orders\n  GROUP BY orders.customer\n  ORDER BY (count(*)) DESC, orders.customer;",
            None,
        ),
        (
            "SELECT customer AS \"Cust\", amount AS amount FROM orders",
            &["Cust", "amount"],
            " SELECT orders.customer AS \"Cust\",\n    orders.amount\n   FROM orders;",
            None,
        ),
        ("SELECT * FROM items", &["sku", "qty"], " SELECT items.sku,\n    items.qty\n   FROM items;", None),
        (
            "SELECT customer, sum(amount) AS total FROM orders GROUP BY 1 ORDER BY 2",
            &["customer", "total"],
            " SELECT orders.customer,\n    sum(orders.amount) AS total\n   FROM orders\n  GROUP BY orders.customer\n  ORDER BY (sum(orders.amount));",
            None,
        ),
        (
            "SELECT DISTINCT customer FROM orders",
            &["customer"],
            " SELECT DISTINCT orders.customer\n   FROM orders;",
            None,
        ),
        (
            "SELECT customer, amount FROM orders",
            &["a", "b"],
            " SELECT orders.customer AS a,\n    orders.amount AS b\n   FROM orders;",
            None,
        ),
        (
            "SELECT o.id, i.qty FROM orders o, items i WHERE o.customer = i.sku ORDER BY o.id LIMIT 5 OFFSET 2",
            &["id", "qty"],
            " SELECT o.id,\n    i.qty\n   FROM orders o,\n    items i\n  WHERE o.customer = i.sku\n  ORDER BY o.id\n OFFSET 2\n LIMIT 5;",
            Some(" SELECT o.id,\n    i.qty\n   FROM orders o,\n    items i\n  WHERE (o.customer = i.sku)\n  ORDER BY o.id\n OFFSET 2\n LIMIT 5;"),
        ),
        (
            "SELECT o.id, i.qty FROM orders o LEFT JOIN items i ON o.customer = i.sku JOIN orders o2 ON o2.id = o.id",
            &["id", "qty"],
            " SELECT o.id,\n    i.qty\n   FROM orders o\n     LEFT JOIN items i ON o.customer = i.sku\n     JOIN orders o2 ON o2.id = o.id;",
            Some(" SELECT o.id,\n    i.qty\n   FROM ((orders o\n     LEFT JOIN items i ON ((o.customer = i.sku)))\n     JOIN orders o2 ON ((o2.id = o.id)));"),
        ),
        (
            "SELECT o.id, i.qty FROM orders o JOIN items i ON o.customer = i.sku, items i2 \
             WHERE NOT (o.id > 1 AND o.customer IS NULL) GROUP BY 1, 2 ORDER BY i.qty + 1",
            &["id", "qty"],
            " SELECT o.id,\n    i.qty\n   FROM orders o\n     JOIN items i ON o.customer = i.sku,\n    items i2\n  WHERE NOT (o.id > 1 AND o.customer IS NULL)\n  GROUP BY o.id, i.qty\n  ORDER BY (i.qty + 1);",
            Some(" SELECT o.id,\n    i.qty\n   FROM (orders o\n     JOIN items i ON ((o.customer = i.sku))),\n    items i2\n  WHERE (NOT ((o.id > 1) AND (o.customer IS NULL)))\n  GROUP BY o.id, i.qty\n  ORDER BY (i.qty + 1);"),
        ),
        (
            "SELECT o.customer, count(*) AS n FROM orders o JOIN items i ON o.customer = i.sku \
             GROUP BY o.customer HAVING count(*) > 1 ORDER BY n DESC LIMIT 10",
            &["customer", "n"],
            " SELECT o.customer,\n    count(*) AS n\n   FROM orders o\n     JOIN items i ON o.customer = i.sku\n  GROUP BY o.customer\n HAVING count(*) > 1\n  ORDER BY (count(*)) DESC\n LIMIT 10;",
            Some(" SELECT o.customer,\n    count(*) AS n\n   FROM (orders o\n     JOIN items i ON ((o.customer = i.sku)))\n  GROUP BY o.customer\n HAVING (count(*) > 1)\n  ORDER BY (count(*)) DESC\n LIMIT 10;"),
        ),
        // Shapes that are not laid out are printed as stored.
        ("SELECT 1 UNION SELECT 2", &["?column?"], " SELECT 1 UNION SELECT 2;", None),
    ];
    let column = |name: &str| ColumnDef {
        name: name.into(),
        column_type: ColumnType::Int8,
        not_null: false,
        default: None,
    };
    for (i, (sql, names, _, _)) in cases.iter().enumerate() {
        let id = 100 + i as u64;
        base.views.push(view(id, &format!("v{id}"), names.iter().map(|n| column(n)).collect(), sql));
    }
    for (i, (sql, _, pretty, plain)) in cases.iter().enumerate() {
        let oid = 16384 + 100 + i as i64;
        assert_eq!(super::viewdef::view_definition(&base, oid, true).as_deref(), Some(*pretty), "{sql}");
        let plain = plain.unwrap_or(pretty);
        assert_eq!(super::viewdef::view_definition(&base, oid, false).as_deref(), Some(plain), "{sql}");
    }
    assert_eq!(super::viewdef::view_definition(&base, 16385, true), None);
}
