//! `CREATE SOURCE` and `CREATE SINK` (`DROP SOURCE` and `DROP SINK` are in `drop.rs`).
//!
//! A source is only a catalog entry until a view or sink reads it: each reading job runs
//! its own readers (one per split). Its connector options are checked at CREATE, so a
//! mistake is reported there with SQLSTATE 22023 rather than when a view first reads it. A
//! sink is a job like a materialized view whose rows leave Weir instead of being stored.

use weir_executor::expr::ExprCompiler;
use weir_plan::catalog::{SinkDef, Watermark};
use weir_planner::{plan_create_source, split_connector, split_name, sqlstate, CreateSink, CreateSource};
use weir_planner::{JobOptions, SqlError, SqlResult};

use super::atomic_ddl::UnfinishedJob;
use super::create_mv::plan_stream_job;
use super::{Context, Outcome};
use crate::engine::DEFAULT_SCHEMA;
use crate::wire::errors::{from_exec, from_storage};

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn check_schema(schema: &str) -> SqlResult<()> {
    match schema == DEFAULT_SCHEMA {
        true => Ok(()),
        false => {
            Err(SqlError::new(sqlstate::INVALID_SCHEMA_NAME, format!("schema \"{schema}\" does not exist")))
        }
    }
}

fn name_taken(cx: &Context<'_>, schema: &str, name: &str) -> bool {
    let store = &cx.engine.store;
    store.table(schema, name).is_some()
        || store.view(schema, name).is_some()
        || store.source(schema, name).is_some()
        || store.sink(schema, name).is_some()
}

fn invalid_option(e: impl std::fmt::Display) -> SqlError {
    SqlError::new(sqlstate::INVALID_PARAMETER_VALUE, e.to_string())
}

pub async fn create_source(cx: &Context<'_>, stmt: &CreateSource) -> SqlResult<Outcome> {
    let mut def = plan_create_source(stmt)?;
    cx.warn_reduced_precisions(stmt.columns.iter().map(|c| &c.data_type))?;
    check_schema(&def.schema_name)?;
    // Waits for a concurrent statement creating the same name (see name_claims).
    let _claim = cx.engine.name_claims.claim(&def.schema_name, &def.name).await;
    if name_taken(cx, &def.schema_name, &def.name) {
        if stmt.if_not_exists {
            return Ok(Outcome::Command { tag: "CREATE SOURCE", rows: None });
        }
        return Err(SqlError::new(
            sqlstate::DUPLICATE_TABLE,
            format!("relation \"{}\" already exists", def.name),
        ));
    }
    super::access::require_create_in(cx, &def.schema_name)?;
    if def.connector == "file" {
        super::access::require_file_access(cx, false)?;
    }
    let schema = def.relation().arrow_schema();
    // The connector checks its options against the columns it reads; the watermark must compile.
    weir_executor::connectors::open_connector(
        &def.connector,
        &def.options,
        def.connector_schema(),
        &cx.engine.files,
        cx.engine.split_limit(),
    )
    .map_err(from_exec)?;
    weir_executor::sources::source_settings(&def.options).map_err(invalid_option)?;
    if let Some(w) = &def.watermark {
        check_watermark_expression(&schema, w)?;
    }
    def.id = cx.engine.store.allocate_id().map_err(from_storage)?;
    def.created_at = now_secs();
    let (id, schema_name, name) = (def.id, def.schema_name.clone(), def.name.clone());
    cx.engine.store.create_source(def).map_err(from_storage)?;
    if let Err(e) = super::access::record_owner(cx, id) {
        // A failed statement leaves nothing behind.
        let _ = cx.engine.store.drop_source(&schema_name, &name);
        return Err(e);
    }
    Ok(Outcome::Command { tag: "CREATE SOURCE", rows: None })
}

/// The watermark expression must compile over the columns and give a timestamp.
pub(crate) fn check_watermark_expression(
    schema: &arrow::datatypes::SchemaRef,
    w: &Watermark,
) -> SqlResult<()> {
    let hint = "Write it as the column minus an interval, e.g. ts - INTERVAL '5' SECOND.";
    let expr = ExprCompiler::default().compile(&w.positional_expr, schema, None).map_err(|e| {
        SqlError::new(sqlstate::DATATYPE_MISMATCH, format!("invalid WATERMARK expression {}: {e}", w.expr))
            .with_hint(hint)
    })?;
    let actual = expr.data_type(schema).map_err(|e| SqlError::internal(e.to_string()))?;
    if !matches!(actual, arrow::datatypes::DataType::Timestamp(_, _)) {
        return Err(SqlError::new(
            sqlstate::DATATYPE_MISMATCH,
            format!("the WATERMARK expression {} must be a timestamp, not {actual}", w.expr),
        )
        .with_hint(hint));
    }
    Ok(())
}

/// The option of `CREATE SINK ... WITH (...)` that sets the job's watermark alignment.
const ALIGNMENT_OPTION: &str = "watermark_alignment_max_drift";

pub async fn create_sink(cx: &Context<'_>, stmt: &CreateSink) -> SqlResult<Outcome> {
    let (schema, name) = split_name(&stmt.name)?;
    check_schema(&schema)?;
    let _claim = cx.engine.name_claims.claim(&schema, &name).await;
    if name_taken(cx, &schema, &name) {
        if stmt.if_not_exists {
            return Ok(Outcome::Command { tag: "CREATE SINK", rows: None });
        }
        return Err(SqlError::new(sqlstate::DUPLICATE_TABLE, format!("relation \"{name}\" already exists")));
    }
    super::access::require_create_in(cx, &schema)?;
    let (connector, mut options) = split_connector(&stmt.options)?;
    // The job's own option, not the connector's.
    let alignment_drift = match options.remove(ALIGNMENT_OPTION) {
        Some(text) => Some(crate::session::parse_alignment_drift(&text).map_err(|hint| {
            SqlError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("invalid value for {ALIGNMENT_OPTION}: \"{text}\""),
            )
            .with_hint(hint)
        })?),
        None => None,
    };
    if connector == "file" {
        super::access::require_file_access(cx, true)?;
    }
    let config =
        weir_executor::operators::sink::SinkConfig::parse(&connector, &options).map_err(invalid_option)?;
    config.check_access(&cx.engine.files).map_err(from_exec)?;
    let store = &cx.engine.store;
    let id = store.allocate_id().map_err(from_storage)?;
    // Apart from the struct below: each reads the session, whose lock a temporary would hold.
    let watermark_alignment_max_drift_ms = super::create_mv::alignment_drift_ms(cx, alignment_drift)?;
    let job_options = JobOptions {
        emit_on_window_close: stmt.emit_on_window_close,
        sink: Some((connector.clone(), options.clone())),
        state_ttl_ms: cx.session()?.streaming_state_ttl_ms(),
        watermark_alignment_max_drift_ms,
        ..Default::default()
    };
    let (graph, _) = plan_stream_job(cx, &stmt.query, id, &name, &job_options).await?;
    super::access::require_reads_of(cx, &super::create_mv::stream_inputs(&graph))?;
    let def = SinkDef {
        id,
        schema_name: schema.clone(),
        name: name.clone(),
        definition: stmt.query.to_string(),
        connector,
        options,
        depends_on: super::create_mv::stream_inputs(&graph),
        job_graph: graph.clone(),
        created_at: now_secs(),
    };
    // A failed, cancelled or timed-out CREATE leaves nothing behind: not the catalog entry,
    // not the job, not the rows it wrote to its file (see atomic_ddl).
    let file = match &config {
        weir_executor::operators::sink::SinkConfig::File { path, .. } => cx.engine.files.sink_path(path).ok(),
        _ => None,
    };
    let mut guard = UnfinishedJob::sink(cx, id, &schema, &name, file)?;
    store.create_sink(def).map_err(from_storage)?;
    guard.created();
    super::access::record_owner(cx, id)?;
    if let Err(e) = cx.engine.jobs.deploy(graph).await {
        let e = from_exec(e);
        return Err(SqlError::new(e.code, format!("sink \"{name}\" could not be started: {}", e.message)));
    }
    guard.finish();
    Ok(Outcome::Command { tag: "CREATE SINK", rows: None })
}
