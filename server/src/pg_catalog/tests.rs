//! psql's and drivers' catalog queries, run as the server runs them (parse, Postgres
//! compatibility rewrites, DataFusion) against a two-table catalog, with Postgres' answers
//! as expectations.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use datafusion::sql::parser::Statement as DfStatement;
use weir_planner::{parse_sql, rewrite_for_datafusion, WeirStatement};
use weir_storage::{ColumnDef, ColumnType, TableDef};

use super::{test_context, CatalogSnapshot};

const PSQL_QUERIES: &str = include_str!("testdata/psql15_queries.sql");

/// The tables of the reference capture, with ids chosen so the oids match it
/// (orders = 16385, items = 16392).
fn snapshot() -> Arc<CatalogSnapshot> {
    let column = |name: &str, column_type, not_null| ColumnDef { name: name.into(), column_type, not_null };
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
                    column("ts", ColumnType::Timestamp, false),
                ],
                primary_key: vec![0],
            },
            TableDef {
                id: 8,
                schema_name: "public".into(),
                name: "items".into(),
                columns: vec![column("sku", ColumnType::Text, true), column("qty", ColumnType::Int4, false)],
                primary_key: vec![],
            },
        ],
        database: "weir".into(),
        user: "weir".into(),
        settings: vec![
            ("search_path".into(), "\"$user\", public".into()),
            ("DateStyle".into(), "ISO, MDY".into()),
        ],
        server_version: "15.0".into(),
    })
}

async fn run(sql: &str) -> Result<Vec<RecordBatch>, String> {
    let ctx = test_context(snapshot());
    let mut statements = parse_sql(sql).map_err(|e| format!("parse: {e:?}"))?;
    let WeirStatement::Sql(mut statement) = statements.remove(0);
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
        Ok(batches) => pretty_format_batches(&batches).map(|t| t.to_string()).unwrap_or_else(|e| e.to_string()),
        Err(e) => format!("ERROR {e}"),
    }
}

fn psql_query(name: &str) -> String {
    let header = format!("-- query: {name}\n");
    let start = PSQL_QUERIES.find(&header).map(|i| i + header.len()).unwrap_or_else(|| panic!("no query {name}"));
    let rest = &PSQL_QUERIES[start..];
    let end = rest.find("-- query:").unwrap_or(rest.len());
    rest[..end].trim().to_string()
}

fn lines(s: &str) -> Vec<String> {
    s.trim().lines().map(|l| l.trim_end().to_string()).collect()
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

/// Development aid: runs the `;;`-separated statements in $WEIR_SCRATCH_SQL.
#[tokio::test]
#[ignore]
async fn scratch() {
    let Ok(path) = std::env::var("WEIR_SCRATCH_SQL") else { return };
    let sql = std::fs::read_to_string(path).unwrap_or_default();
    for statement in sql.split(";;").map(str::trim).filter(|s| !s.is_empty()) {
        println!("=== {statement}\n{}", table(statement).await);
    }
}
