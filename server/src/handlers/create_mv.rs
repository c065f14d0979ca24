//! `CREATE MATERIALIZED VIEW [IF NOT EXISTS] name [(columns)] [WITH (state_ttl = '...',
//! watermark_alignment_max_drift = '...')] AS query` and
//! `EXPLAIN CREATE MATERIALIZED VIEW ...`.
//!
//! The query is bound and optimized by DataFusion in the session's catalog, lowered into a
//! JobGraph by the planner and deployed; once the view holds the backfilled contents of what
//! it reads, the statement commits: the view is stored in the catalog and other sessions
//! see it. Until then its name is claimed (`crate::name_claims`): other sessions get
//! `42P01` for it, and a concurrent CREATE of the same name waits for this one to end.

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::TableReference;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use weir_plan::catalog::{ColumnDef, ColumnType, TableDef, ViewDef};
use weir_plan::job_graph::JobGraph;
use weir_planner::sqlparser::ast::{
    CreateTableOptions, CreateView, Expr as SqlExpr, Query, SqlOption, Statement, Value as SqlValue,
};
use weir_planner::{
    check_temporal_versions, name_result_columns, normalize_ident, plan_job_graph, result_column_name,
    rewrite_for_datafusion, split_name, sqlstate, temporal_tables, JobOptions, SqlError, SqlResult,
    StreamCatalog, StreamInput,
};
use weir_storage::Store;

use super::atomic_ddl::UnfinishedJob;
use super::planning::rows;
use super::{Context, Outcome};
use crate::engine::DEFAULT_SCHEMA;
use crate::wire::errors::{from_datafusion, from_exec, from_storage};

pub async fn run(
    cx: &Context<'_>,
    create: CreateView,
    explain: bool,
    emit_on_window_close: bool,
) -> SqlResult<Outcome> {
    if !create.materialized {
        return Err(SqlError::unsupported("CREATE VIEW (non-materialized views)")
            .with_hint("Use CREATE MATERIALIZED VIEW."));
    }
    if create.or_replace || create.or_alter {
        return Err(SqlError::unsupported("CREATE OR REPLACE MATERIALIZED VIEW"));
    }
    let (schema, name) = split_name(&create.name)?;
    if schema != DEFAULT_SCHEMA {
        return Err(SqlError::new(
            sqlstate::INVALID_SCHEMA_NAME,
            format!("schema \"{schema}\" does not exist"),
        ));
    }
    let store = &cx.engine.store;
    // Until this statement commits, the name is claimed: a concurrent CREATE of it waits
    // here, then finds it taken (or free, if this one is undone); see name_claims.
    let _claim = match explain {
        true => None,
        false => Some(cx.engine.name_claims.claim(&schema, &name).await),
    };
    let taken = store.table(&schema, &name).is_some()
        || store.view(&schema, &name).is_some()
        || store.source(&schema, &name).is_some()
        || store.sink(&schema, &name).is_some();
    if !explain && taken {
        if create.if_not_exists {
            return Ok(Outcome::Command { tag: "CREATE MATERIALIZED VIEW", rows: None });
        }
        return Err(SqlError::new(sqlstate::DUPLICATE_TABLE, format!("relation \"{name}\" already exists")));
    }

    super::access::require_create_in(cx, &schema)?;
    let view_options = view_options(&create.options)?;
    let state_ttl_ms = match view_options.state_ttl_ms {
        Some(ttl) => (ttl > 0).then_some(ttl),
        None => cx.session()?.streaming_state_ttl_ms(),
    };
    let watermark_alignment_max_drift_ms = alignment_drift_ms(cx, view_options.alignment_drift_ms)?;
    let view_id = if explain { 0 } else { store.allocate_id().map_err(from_storage)? };
    let options = JobOptions {
        emit_on_window_close,
        sink: None,
        state_ttl_ms,
        watermark_alignment_max_drift_ms,
        ..Default::default()
    };
    let (graph, optimized) = plan_stream_job(cx, &create.query, view_id, &name, &options).await?;
    super::access::require_reads_of(cx, &stream_inputs(&graph))?;
    if explain {
        let text = graph.to_string();
        let schema = explain_schema();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(text.lines().collect::<Vec<_>>()))],
        )
        .map_err(|e| SqlError::internal(e.to_string()))?;
        return Ok(rows(batch));
    }

    // Types after optimization: the optimizer reconciles UNION and CASE branch types.
    let output = optimized.schema().as_arrow().clone();
    let names = column_names(&create, &output)?;
    let declared = super::declared_types::declared_column_types(&optimized, store);
    let def = ViewDef {
        relation: TableDef {
            id: view_id,
            schema_name: schema.clone(),
            name: name.clone(),
            columns: names
                .iter()
                .zip(output.fields())
                .zip(declared)
                .map(|((n, f), declared)| ColumnDef {
                    name: n.clone(),
                    // The input column's declared type where it passes through unchanged
                    // (and is stored as the same Arrow type), else the type of the values.
                    column_type: declared
                        .filter(|t| t.arrow_type() == *f.data_type())
                        .unwrap_or_else(|| ColumnType::from_arrow(f.data_type())),
                    not_null: false,
                    default: None,
                })
                .collect(),
            primary_key: vec![],
            watermark: None,
            primary_key_name: None,
        },
        // Exactly the types the job writes, so the view's rows always decode.
        arrow_types: graph
            .materialize_vertex()
            .and_then(|v| graph.output_fields(v.id))
            .map_err(|e| SqlError::internal(e.to_string()))?
            .into_iter()
            .map(|f| f.data_type)
            .collect(),
        definition: create.query.to_string(),
        parallelism: graph.materialize_vertex().map_err(|e| SqlError::internal(e.to_string()))?.parallelism,
        depends_on: stream_inputs(&graph),
        job_graph: graph.clone(),
        created_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    };
    // Nothing of a failed or cancelled CREATE remains: until it commits, the guard stops
    // the job (and deletes its checkpoints) if this statement ends early.
    let mut guard = UnfinishedJob::view(cx, view_id, &schema, &name)?;
    guard.deploying();
    if let Err(e) = cx.engine.jobs.deploy(graph).await {
        let e = from_exec(e);
        return Err(SqlError::new(
            e.code,
            format!("materialized view \"{name}\" could not be started: {}", e.message),
        ));
    }
    // The backfill is visible: the statement commits, and only now do other sessions see
    // the view (as Postgres shows nobody a relation before its transaction commits). No
    // await from here to the end: a cancel can no longer come between.
    if let Some(gone) = def.depends_on.iter().find(|id| !relation_exists(store, **id)) {
        return Err(SqlError::new(
            sqlstate::UNDEFINED_TABLE,
            format!("materialized view \"{name}\" could not be created: a relation it reads (id {gone}) was dropped meanwhile"),
        ));
    }
    store.create_view(def).map_err(from_storage)?;
    guard.cataloged();
    super::access::record_owner(cx, view_id)?;
    guard.finish();
    Ok(Outcome::Command { tag: "CREATE MATERIALIZED VIEW", rows: None })
}

/// The maximum drift of a new job's watermark alignment, in milliseconds (0: off): the
/// statement's own option, else the session's `streaming_watermark_alignment_max_drift`,
/// else the server's `[streaming] watermark_alignment_max_drift_ms`.
pub(crate) fn alignment_drift_ms(cx: &Context<'_>, option: Option<u64>) -> SqlResult<u64> {
    Ok(match option {
        Some(ms) => ms,
        None => cx
            .session()?
            .streaming_watermark_alignment_max_drift_ms()
            .unwrap_or(cx.engine.config.watermark_alignment_max_drift_ms),
    })
}

/// Whether table, view or source `id` exists.
fn relation_exists(store: &Store, id: u64) -> bool {
    store.tables().iter().any(|t| t.def().id == id)
        || store.views().iter().any(|v| v.id() == id)
        || store.sources().iter().any(|s| s.id == id)
}

/// The tables, views and sources a job reads, by id.
pub(crate) fn stream_inputs(graph: &weir_plan::JobGraph) -> Vec<u64> {
    graph.table_inputs().into_iter().chain(graph.view_inputs()).chain(graph.source_inputs()).collect()
}

/// The options of `CREATE MATERIALIZED VIEW ... WITH (...)`, each `None` unless given.
#[derive(Default)]
struct ViewOptions {
    /// `state_ttl`, in milliseconds (0: none).
    state_ttl_ms: Option<u64>,
    /// `watermark_alignment_max_drift`, in milliseconds (0: off).
    alignment_drift_ms: Option<u64>,
}

/// Parses a view option's duration into milliseconds; the error is a hint.
type DurationParser = fn(&str) -> Result<u64, String>;

/// `WITH (state_ttl = '...', watermark_alignment_max_drift = '...')` of `CREATE
/// MATERIALIZED VIEW`; any other option is an error.
fn view_options(options: &CreateTableOptions) -> SqlResult<ViewOptions> {
    let list = match options {
        CreateTableOptions::None => return Ok(ViewOptions::default()),
        CreateTableOptions::With(list) => list,
        _ => return Err(SqlError::unsupported("these options on CREATE MATERIALIZED VIEW")),
    };
    let mut parsed = ViewOptions::default();
    for option in list {
        let SqlOption::KeyValue { key, value } = option else {
            return Err(SqlError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("unknown view option {option}"),
            ));
        };
        let text = match value {
            SqlExpr::Value(v) => match &v.value {
                SqlValue::SingleQuotedString(s) => s.clone(),
                SqlValue::Number(n, _) => n.clone(),
                other => other.to_string(),
            },
            other => other.to_string(),
        };
        let name = key.value.to_ascii_lowercase();
        let (parse, slot): (DurationParser, _) = match name.as_str() {
            "state_ttl" => (crate::session::parse_state_ttl, &mut parsed.state_ttl_ms),
            "watermark_alignment_max_drift" => {
                (crate::session::parse_alignment_drift, &mut parsed.alignment_drift_ms)
            }
            _ => return Err(SqlError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("unknown materialized view option \"{}\"", key.value),
            )
            .with_hint(
                "A materialized view takes WITH (state_ttl = '...', watermark_alignment_max_drift = '...').",
            )),
        };
        let ms = parse(&text).map_err(|hint| {
            SqlError::new(sqlstate::INVALID_PARAMETER_VALUE, format!("invalid value for {name}: \"{text}\""))
                .with_hint(hint)
        })?;
        *slot = Some(ms);
    }
    Ok(parsed)
}

/// The one column `EXPLAIN CREATE MATERIALIZED VIEW` returns: the job graph, a line a row.
pub fn explain_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("QUERY PLAN", DataType::Utf8, false)]))
}

/// Plans `query` as the job `id` named `name`: DataFusion binds and optimizes it in the
/// session's catalog, then the stream planner lowers it to a JobGraph.
pub(crate) async fn plan_stream_job(
    cx: &Context<'_>,
    query: &Query,
    id: u64,
    name: &str,
    options: &JobOptions,
) -> SqlResult<(JobGraph, LogicalPlan)> {
    let (ctx, parallelism) = {
        let session = cx.session()?;
        (cx.engine.session_context(&session).map_err(from_datafusion)?, session.streaming_parallelism())
    };
    let mut statement = Statement::Query(Box::new(query.clone()));
    // Named as written, before the rewrites change expressions (`x::regclass`).
    name_result_columns(&mut statement);
    rewrite_for_datafusion(&mut statement);
    let state = ctx.state();
    let plan = state
        .statement_to_plan(DfStatement::Statement(Box::new(statement)))
        .await
        .map_err(from_datafusion)?;
    let plan = weir_planner::type_integer_literals(plan).map_err(from_datafusion)?;
    let catalog = Catalog {
        store: cx.engine.store.clone(),
        files: cx.engine.files.clone(),
        split_limit: cx.engine.split_limit(),
    };
    let options = JobOptions { temporal_tables: temporal_tables(query)?, ..options.clone() };
    super::implicit_coercion::check(&plan)?;
    check_temporal_versions(&plan, &options.temporal_tables, &catalog)?;
    let optimized = state.optimize(&plan).map_err(from_datafusion)?;
    let optimized = weir_executor::functions::numeric_special::spell_special_literals(optimized)
        .map_err(from_datafusion)?;
    let graph = plan_job_graph(&optimized, id, name, parallelism, &catalog, &options)?;
    Ok((graph, optimized))
}

/// The view's column names: the optional column list, else the query's result names.
fn column_names(create: &CreateView, output: &Schema) -> SqlResult<Vec<String>> {
    let names: Vec<String> = if create.columns.is_empty() {
        output.fields().iter().map(|f| result_column_name(f.name()).to_string()).collect()
    } else {
        if create.columns.len() > output.fields().len() {
            return Err(SqlError::new(
                sqlstate::SYNTAX_ERROR,
                "CREATE MATERIALIZED VIEW specifies more column names than columns",
            ));
        }
        let mut names: Vec<String> = create.columns.iter().map(|c| normalize_ident(&c.name)).collect();
        names.extend(
            output.fields().iter().skip(names.len()).map(|f| result_column_name(f.name()).to_string()),
        );
        names
    };
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(SqlError::new(
                sqlstate::DUPLICATE_COLUMN,
                format!("column \"{n}\" specified more than once"),
            )
            .with_hint("Give the columns distinct names with AS."));
        }
    }
    Ok(names)
}

struct Catalog {
    store: Arc<Store>,
    files: weir_executor::connectors::FileAccess,
    split_limit: weir_executor::connectors::SplitLimit,
}

impl StreamCatalog for Catalog {
    fn resolve(&self, name: &TableReference) -> Option<StreamInput> {
        let schema = name.schema().unwrap_or(DEFAULT_SCHEMA);
        if let Some(source) = self.store.source(schema, name.table()) {
            // Options were checked at CREATE SOURCE; the split count comes from the connector.
            let splits = weir_executor::connectors::open_connector(
                &source.connector,
                &source.options,
                source.connector_schema(),
                &self.files,
                self.split_limit,
            )
            .map(|c| c.splits())
            .unwrap_or(1);
            return Some(StreamInput::Source {
                id: source.id,
                name: source.name.clone(),
                connector: source.connector.clone(),
                options: source.options.clone(),
                splits,
                watermark: source.watermark.clone(),
                proctime_column: source.proctime_column,
            });
        }
        if let Some(table) = self.store.table(schema, name.table()) {
            let def = table.def();
            return Some(StreamInput::Table {
                id: def.id,
                name: def.name.clone(),
                primary_key: def.primary_key.clone(),
                watermark: def.watermark.clone(),
            });
        }
        self.store.view(schema, name.table()).map(|v| {
            // What the upstream job's planner derived about the view's rows.
            let properties = v.job_graph.materialize_vertex().map(|m| m.output.clone()).unwrap_or_default();
            StreamInput::View {
                id: v.id(),
                name: v.relation.name.clone(),
                parallelism: v.parallelism,
                properties,
            }
        })
    }
}
