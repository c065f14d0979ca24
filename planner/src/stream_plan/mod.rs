//! Lowers a DataFusion `LogicalPlan` into a [`JobGraph`] that maintains it incrementally.
//!
//! DataFusion binds names, coerces types and optimizes (projection pruning, `DISTINCT` to
//! aggregation); this module then maps each plan node onto streaming operators:
//!
//! | plan node            | streaming form                                             |
//! |----------------------|------------------------------------------------------------|
//! | `TableScan`          | a source vertex: table (snapshot + changelog) or view      |
//! | `Projection`/`Filter`| chained into the current vertex                            |
//! | `Aggregate`          | a pre-projection (keys, arguments), a hash exchange on the |
//! |                      | keys, and a `HashAggregate` vertex                          |
//! | `Union` (ALL)        | a `Union` vertex fed by hash exchanges                      |
//! | `Join` (equi)        | a `HashJoin` vertex fed by hash exchanges on the join keys |
//! |                      | (see [`join`])                                             |
//!
//! Anything else is rejected with `0A000` naming the construct. Expressions are written as
//! SQL over positional names (`_c0`, ...) so the graph is self-contained and serializable.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, ScalarValue, TableReference};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{cast, lit, Distinct, Expr, ExprSchemable, LogicalPlan, Volatility};
use weir_plan::catalog::Watermark;
use weir_plan::job_graph::{
    AggregateCall, AggregateKind, AggregateSpec, Edge, FieldSpec, JobGraph, JobTarget, OperatorSpec,
    Partitioning, SourceSpec, StreamProperties, TargetKind, Vertex, WindowKind, WindowedGroups,
};

use crate::window_tvf::WindowTvf;

mod interval_bounds;
mod join;
mod temporal_join;
mod top_n;

pub use temporal_join::{check_temporal_versions, temporal_tables, TemporalTable};

use crate::error::{SqlError, SqlResult};

/// A relation a view can read, as the catalog knows it.
pub enum StreamInput {
    /// `primary_key`: column indexes (empty without a primary key).
    Table {
        id: u64,
        name: String,
        primary_key: Vec<usize>,
        /// `WATERMARK FOR`: the table is append-only and carries event time.
        watermark: Option<Watermark>,
    },
    View {
        id: u64,
        name: String,
        parallelism: usize,
        properties: StreamProperties,
    },
    /// A `CREATE SOURCE`: `splits` source subtasks, append-only.
    Source {
        id: u64,
        name: String,
        connector: String,
        options: std::collections::BTreeMap<String, String>,
        splits: usize,
        watermark: Option<Watermark>,
        /// `proc_time AS PROCTIME()`: the processing-time column's index.
        proctime_column: Option<usize>,
    },
}

/// What a job ends in, and how it emits.
#[derive(Debug, Clone, Default)]
pub struct JobOptions {
    /// `EMIT ON WINDOW CLOSE`.
    pub emit_on_window_close: bool,
    /// `Some((connector, options))` for `CREATE SINK`; otherwise the job materializes a view.
    pub sink: Option<(String, std::collections::BTreeMap<String, String>)>,
    /// State time-to-live for join, Top-N and unwindowed aggregate state (`streaming_state_ttl`,
    /// `WITH (state_ttl = ...)`), in milliseconds.
    pub state_ttl_ms: Option<u64>,
    /// The tables the query reads `FOR SYSTEM_TIME AS OF PROCTIME()` (see [`temporal_tables`]).
    pub temporal_tables: Vec<TemporalTable>,
    /// Watermark alignment of the job's sources (`WITH (watermark_alignment_max_drift =
    /// ...)`, `streaming_watermark_alignment_max_drift`, `[streaming]
    /// watermark_alignment_max_drift_ms`), in milliseconds; 0 leaves sources unaligned.
    /// Applies only to jobs that read more than one event-time source.
    pub watermark_alignment_max_drift_ms: u64,
}

/// Looks relations up by the name a plan's `TableScan` carries.
pub trait StreamCatalog {
    fn resolve(&self, name: &TableReference) -> Option<StreamInput>;
}

/// Plans the job that maintains view `view_id` defined by `plan` (already optimized).
pub fn plan_job_graph(
    plan: &LogicalPlan,
    view_id: u64,
    view_name: &str,
    parallelism: usize,
    catalog: &dyn StreamCatalog,
    options: &JobOptions,
) -> SqlResult<JobGraph> {
    let mut lowering = Lowering {
        vertices: Vec::new(),
        parallelism: parallelism.max(1),
        catalog,
        emit_on_window_close: options.emit_on_window_close,
        emits_on_close: false,
        pre_lowered: None,
        state_ttl_ms: options.state_ttl_ms,
        temporal: options.temporal_tables.clone(),
        temporal_joins: 0,
    };
    // ORDER BY of a view's defining query does not order the view (as in RisingWave).
    let root = match plan {
        LogicalPlan::Sort(sort) if sort.fetch.is_none() => sort.input.as_ref(),
        LogicalPlan::Projection(projection) => match projection.input.as_ref() {
            // The optimizer may put a projection above the sort.
            LogicalPlan::Sort(sort) if sort.fetch.is_none() => {
                return plan_job_graph(
                    &LogicalPlan::Projection(datafusion::logical_expr::Projection::try_new_with_schema(
                        projection.expr.clone(),
                        sort.input.clone(),
                        projection.schema.clone(),
                    )?),
                    view_id,
                    view_name,
                    parallelism,
                    catalog,
                    options,
                )
            }
            _ => plan,
        },
        other => other,
    };
    let stream = lowering.lower(root)?;
    if lowering.temporal_joins < options.temporal_tables.len() {
        return Err(temporal_join::misplaced());
    }
    if options.emit_on_window_close && !lowering.emits_on_close {
        lowering.emit_rows_on_window_close(stream)?;
    }
    let terminal = match &options.sink {
        None => OperatorSpec::Materialize { view_id },
        Some((connector, sink_options)) => {
            if connector == "file" && !lowering.vertices[stream].output.append_only {
                return Err(SqlError::unsupported("a file sink over a query that updates or deletes rows")
                    .with_hint(
                        "A file cannot take back a row. Use EMIT ON WINDOW CLOSE on a window aggregate, \
                         a query without aggregation, or connector = 'blackhole'.",
                    ));
            }
            OperatorSpec::Sink {
                sink_id: view_id,
                connector: connector.clone(),
                options: sink_options.clone(),
            }
        }
    };
    lowering.vertices[stream].chain.push(terminal);
    crate::hop_panes::combine_hop_panes(&mut lowering.vertices);
    let kind = match options.sink {
        Some(_) => TargetKind::Sink,
        None => TargetKind::MaterializedView,
    };
    let target = JobTarget { id: view_id, name: view_name.to_string(), kind };
    let graph = JobGraph { target, vertices: lowering.vertices, watermark_alignment: None };
    Ok(graph.with_watermark_alignment(options.watermark_alignment_max_drift_ms))
}

impl Lowering<'_> {
    /// `EMIT ON WINDOW CLOSE` on a window query without an aggregate: each row is emitted
    /// once its window has closed. SESSION rows already come out only then; TUMBLE, HOP and
    /// CUMULATE rows are held by a `WindowClose` until the watermark passes their
    /// `window_end`, which the query must keep among its columns.
    fn emit_rows_on_window_close(&mut self, stream: usize) -> SqlResult<()> {
        let vertex = &self.vertices[stream];
        let output = &vertex.output;
        if vertex.chain.last().is_some_and(|op| matches!(op, OperatorSpec::SessionWindow { .. })) {
            self.emits_on_close = true;
            return Ok(());
        }
        let Some(&end) = output.window_end_columns.first() else { return Err(unbounded_window_close()) };
        if !output.append_only {
            return Err(unbounded_window_close());
        }
        // Held rows are not keyed: the vertex must be one whose parallelism never changes.
        if vertex.source.is_none() {
            return Err(SqlError::unsupported(
                "EMIT ON WINDOW CLOSE without an aggregate over a UNION or join",
            )
            .with_hint("Apply EMIT ON WINDOW CLOSE to each window query, or aggregate the rows."));
        }
        self.vertices[stream].chain.push(OperatorSpec::WindowClose { column: end });
        self.emits_on_close = true;
        Ok(())
    }
}

fn unbounded_window_close() -> SqlError {
    SqlError::unsupported("EMIT ON WINDOW CLOSE on a query whose groups never close").with_hint(
        "EMIT ON WINDOW CLOSE needs every aggregate to GROUP BY window_end (or window_start) of TUMBLE, HOP, \
         CUMULATE or SESSION over a source or table with a WATERMARK FOR clause; otherwise no group ever \
         closes and the state would grow without bound.",
    )
}

struct Lowering<'a> {
    vertices: Vec<Vertex>,
    parallelism: usize,
    catalog: &'a dyn StreamCatalog,
    emit_on_window_close: bool,
    /// Set once an aggregate has been planned to emit on window close.
    emits_on_close: bool,
    /// A plan node already lowered (a Top-N's window), and its vertex: lowering the nodes
    /// above it ends there.
    pre_lowered: Option<(*const LogicalPlan, usize)>,
    state_ttl_ms: Option<u64>,
    /// Tables read `FOR SYSTEM_TIME AS OF`, and how many temporal joins were planned.
    temporal: Vec<TemporalTable>,
    temporal_joins: usize,
}

/// The columns of a source a scan uses, when not all: those it projects, those its
/// pushed-down filters read, and those the source's watermark is computed from.
fn read_columns(
    scan: &datafusion::logical_expr::TableScan,
    watermark: Option<&Watermark>,
) -> Option<Vec<usize>> {
    let projection = scan.projection.as_ref()?;
    let schema = scan.source.schema();
    let mut columns: std::collections::BTreeSet<usize> = projection.iter().copied().collect();
    for filter in &scan.filters {
        for column in filter.column_refs() {
            columns.insert(schema.index_of(&column.name).ok()?);
        }
    }
    if let Some(watermark) = watermark {
        columns.insert(watermark.column);
        columns.extend(positional_columns(&watermark.positional_expr));
    }
    (columns.len() < schema.fields().len()).then(|| columns.into_iter().collect())
}

/// The `_cN` columns SQL text over positional names mentions (any `_cN` in it, so a
/// string literal may add a column, never lose one).
fn positional_columns(sql: &str) -> impl Iterator<Item = usize> + '_ {
    sql.match_indices("_c").filter_map(move |(at, _)| {
        let digits: String = sql[at + 2..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

impl Lowering<'_> {
    /// Lowers `plan`; returns the vertex whose chain produces its rows.
    fn lower(&mut self, plan: &LogicalPlan) -> SqlResult<usize> {
        if let Some((node, vertex)) = self.pre_lowered {
            if std::ptr::eq(plan, node) {
                return Ok(vertex);
            }
        }
        match plan {
            LogicalPlan::TableScan(scan) => {
                if scan.fetch.is_some() {
                    return Err(SqlError::unsupported("LIMIT in a materialized view"));
                }
                let source = self.catalog.resolve(&scan.table_name).ok_or_else(|| {
                    SqlError::unsupported(format!(
                        "reading \"{}\" in a materialized view (only tables and materialized views can be read)",
                        scan.table_name
                    ))
                })?;
                let schema = fields_of(scan.source.schema().as_ref());
                let (source, parallelism, properties) = match source {
                    StreamInput::Table { id, name, primary_key, watermark } => {
                        // Tables take UPDATE and DELETE, unless declared with a watermark;
                        // without a primary key rows may repeat.
                        let properties = StreamProperties {
                            append_only: watermark.is_some(),
                            stream_key: (!primary_key.is_empty()).then_some(primary_key),
                            watermark_columns: watermark.iter().map(|w| w.column).collect(),
                            ..Default::default()
                        };
                        let source = SourceSpec::Table {
                            table_id: id,
                            table_name: name,
                            schema: schema.clone(),
                            watermark,
                        };
                        (source, 1, properties)
                    }
                    StreamInput::View { id, name, parallelism, properties } => (
                        SourceSpec::View { view_id: id, view_name: name, schema: schema.clone() },
                        parallelism,
                        properties,
                    ),
                    StreamInput::Source { id, name, connector, options, splits, watermark, proctime_column } => {
                        let properties = StreamProperties {
                            append_only: true,
                            stream_key: None,
                            watermark_columns: watermark.iter().map(|w| w.column).collect(),
                            ..Default::default()
                        };
                        let read_columns = read_columns(scan, watermark.as_ref());
                        let source = SourceSpec::Connector {
                            source_id: id,
                            source_name: name,
                            connector,
                            options,
                            schema: schema.clone(),
                            watermark,
                            proctime_column,
                            read_columns,
                        };
                        (source, splits.max(1), properties)
                    }
                };
                let vertex = self.add_vertex(parallelism, Some(source), vec![]);
                self.vertices[vertex].output = properties;
                for filter in &scan.filters {
                    let full =
                        DFSchema::try_from_qualified_schema(scan.table_name.clone(), &scan.source.schema())?;
                    let predicate = expr_sql(filter, &full)?;
                    self.vertices[vertex].chain.push(OperatorSpec::Filter { predicate });
                }
                if let Some(projection) = &scan.projection {
                    let exprs = projection.iter().map(|i| format!("_c{i}")).collect();
                    let output = projection.iter().map(|i| schema[*i].clone()).collect();
                    self.push_project(vertex, exprs, output);
                }
                Ok(vertex)
            }
            LogicalPlan::Projection(projection) => {
                let vertex = self.lower(&projection.input)?;
                let exprs = projection
                    .expr
                    .iter()
                    .map(|e| expr_sql(e, projection.input.schema()))
                    .collect::<SqlResult<Vec<_>>>()?;
                let output = fields_of(projection.schema.as_arrow());
                self.push_project(vertex, exprs, output);
                Ok(vertex)
            }
            LogicalPlan::Filter(filter) => {
                if let Some(vertex) = self.try_lower_top_n(filter)? {
                    return Ok(vertex);
                }
                let vertex = self.lower(&filter.input)?;
                let predicate = expr_sql(&filter.predicate, filter.input.schema())?;
                self.vertices[vertex].chain.push(OperatorSpec::Filter { predicate });
                Ok(vertex)
            }
            LogicalPlan::SubqueryAlias(alias) => self.lower(&alias.input),
            LogicalPlan::Aggregate(aggregate) => self.lower_aggregate(
                &aggregate.input,
                &aggregate.group_expr,
                &aggregate.aggr_expr,
                &aggregate.schema,
            ),
            LogicalPlan::Distinct(Distinct::All(input)) => {
                let group: Vec<Expr> = input.schema().columns().into_iter().map(Expr::Column).collect();
                self.lower_aggregate(input, &group, &[], input.schema())
            }
            LogicalPlan::Union(union) => {
                let inputs = union.inputs.iter().map(|i| self.lower(i)).collect::<SqlResult<Vec<_>>>()?;
                let output = fields_of(union.schema.as_arrow());
                let append_only = inputs.iter().all(|v| self.vertices[*v].output.append_only);
                // A column carries the watermark after the union if it does in every input
                // (the union's watermark is the minimum over its inputs).
                let in_all = |pick: fn(&StreamProperties) -> &Vec<usize>| -> Vec<usize> {
                    (0..output.len())
                        .filter(|c| inputs.iter().all(|v| pick(&self.vertices[*v].output).contains(c)))
                        .collect()
                };
                let watermark_columns = in_all(|p| &p.watermark_columns);
                let window_end_columns = in_all(|p| &p.window_end_columns);
                let window_start_columns: Vec<(usize, i64)> = self.vertices[inputs[0]]
                    .output
                    .window_start_columns
                    .iter()
                    .filter(|c| inputs.iter().all(|v| self.vertices[*v].output.window_start_columns.contains(c)))
                    .copied()
                    .collect();
                let all_columns: Vec<usize> = (0..output.len()).collect();
                let edges = inputs
                    .into_iter()
                    .map(|from| Edge { from, partitioning: Partitioning::Hash(all_columns.clone()) })
                    .collect();
                let vertex = self
                    .add_vertex(self.parallelism, None, edges)
                    .with_chain(self, OperatorSpec::Union { output });
                // A union may repeat rows across its inputs: no key survives.
                self.vertices[vertex].output = StreamProperties {
                    append_only,
                    stream_key: None,
                    watermark_columns,
                    window_end_columns,
                    window_start_columns,
                };
                Ok(vertex)
            }
            LogicalPlan::Extension(extension) => {
                let Some(window) = extension.node.as_any().downcast_ref::<WindowTvf>() else {
                    return Err(SqlError::unsupported(format!(
                        "{} in a materialized view",
                        extension.node.name()
                    )));
                };
                self.lower_window(window)
            }
            LogicalPlan::Join(join) => match self.try_lower_temporal_join(join)? {
                Some(vertex) => Ok(vertex),
                None => self.lower_join(join),
            },
            LogicalPlan::Window(_) => Err(SqlError::unsupported(
                "window functions (OVER) in a materialized view, other than ROW_NUMBER() filtered by rank",
            )
            .with_hint("A view can keep the first N rows per group: SELECT ... FROM (SELECT ..., ROW_NUMBER() OVER (PARTITION BY ... ORDER BY ...) AS rn FROM ...) WHERE rn <= N.")),
            LogicalPlan::Limit(_) => Err(SqlError::unsupported(
                "LIMIT without ORDER BY (or with OFFSET) in a materialized view",
            )
            .with_hint("Which rows a bare LIMIT keeps depends on arrival order; ORDER BY ... LIMIT N keeps the first N.")),
            LogicalPlan::Sort(sort) if sort.fetch.is_some() => self.lower_sort_limit(sort),
            LogicalPlan::Sort(_) => Err(SqlError::unsupported("ORDER BY inside a materialized view's query")),
            LogicalPlan::Values(_) => Err(SqlError::unsupported("VALUES in a materialized view")),
            LogicalPlan::EmptyRelation(_) => {
                Err(SqlError::unsupported("a materialized view that reads no table"))
            }
            LogicalPlan::Distinct(Distinct::On(_)) => {
                Err(SqlError::unsupported("DISTINCT ON in a materialized view"))
            }
            LogicalPlan::Subquery(_) => Err(SqlError::unsupported("subqueries in a materialized view")),
            LogicalPlan::Unnest(_) => Err(SqlError::unsupported("UNNEST in a materialized view")),
            LogicalPlan::RecursiveQuery(_) => {
                Err(SqlError::unsupported("WITH RECURSIVE in a materialized view"))
            }
            other => Err(SqlError::unsupported(format!(
                "{} in a materialized view",
                other.display().to_string().split(':').next().unwrap_or("this query")
            ))),
        }
    }

    fn lower_aggregate(
        &mut self,
        input: &Arc<LogicalPlan>,
        group_expr: &[Expr],
        aggr_expr: &[Expr],
        output_schema: &DFSchema,
    ) -> SqlResult<usize> {
        let source = self.lower(input)?;
        let input_schema = input.schema();
        let mut exprs = Vec::new();
        let mut fields = Vec::new();
        for (i, group) in group_expr.iter().enumerate() {
            if matches!(group, Expr::GroupingSet(_)) {
                return Err(SqlError::unsupported("GROUPING SETS, CUBE and ROLLUP in a materialized view"));
            }
            exprs.push(expr_sql(group, input_schema)?);
            fields.push(field_spec(output_schema, i));
        }
        let mut aggregates = Vec::new();
        for aggr in aggr_expr {
            let Expr::AggregateFunction(AggregateFunction { func, params }) = unalias(aggr) else {
                return Err(SqlError::unsupported(format!(
                    "aggregate expression {aggr} in a materialized view"
                )));
            };
            if params.filter.is_some() {
                return Err(SqlError::unsupported("FILTER (WHERE ...) on aggregates in a materialized view"));
            }
            if !params.order_by.is_empty() {
                return Err(SqlError::unsupported("ORDER BY inside aggregate calls in a materialized view"));
            }
            let name = func.name().to_ascii_lowercase();
            let counts_rows = name == "count"
                && !params.distinct
                && params.args.iter().all(|a| matches!(a, Expr::Literal(v, _) if !v.is_null()));
            let kind = match (name.as_str(), params.distinct) {
                ("count", false) if counts_rows => AggregateKind::CountRows,
                ("count", false) => AggregateKind::Count,
                ("count", true) => AggregateKind::CountDistinct,
                ("sum", false) => AggregateKind::Sum,
                ("avg" | "mean", false) => AggregateKind::Avg,
                // min and max ignore DISTINCT.
                ("min", _) => AggregateKind::Min,
                ("max", _) => AggregateKind::Max,
                ("bool_and", _) => AggregateKind::BoolAnd,
                ("bool_or", _) => AggregateKind::BoolOr,
                (other, distinct) => {
                    let what = if distinct { format!("{other}(DISTINCT ...)") } else { format!("{other}()") };
                    return Err(SqlError::unsupported(format!("aggregate {what} in a materialized view")));
                }
            };
            let input_column = if kind == AggregateKind::CountRows {
                None
            } else {
                let [arg] = params.args.as_slice() else {
                    return Err(SqlError::unsupported(format!(
                        "{name} with several arguments in a materialized view"
                    )));
                };
                let arg_type = arg.get_type(input_schema)?;
                // The view's accumulators add numbers only: refused here, with 0A000, rather
                // than by the job graph's check when the view starts.
                if matches!(kind, AggregateKind::Sum | AggregateKind::Avg)
                    && matches!(arg_type, arrow::datatypes::DataType::Interval(_))
                {
                    return Err(SqlError::unsupported(format!("{name}(interval) in a materialized view")));
                }
                exprs.push(expr_sql(arg, input_schema)?);
                fields.push(FieldSpec::new(format!("_arg{}", aggregates.len()), &arg_type));
                Some(exprs.len() - 1)
            };
            aggregates.push(AggregateCall { kind, input_column });
        }
        self.push_project(source, exprs, fields);

        let group_columns = group_expr.len();
        let global = group_columns == 0;
        // A group column carrying the watermark closes groups; prefer a window end.
        let properties = &self.vertices[source].output;
        let window_column = (0..group_columns)
            .find(|c| properties.window_end_columns.contains(c))
            .or_else(|| (0..group_columns).find(|c| properties.watermark_columns.contains(c)))
            .map(|c| (c, 0))
            .or_else(|| {
                // Grouped by a window's start alone: it closes a window length later.
                (0..group_columns)
                    .find_map(|c| properties.window_start_columns.iter().find(|(s, _)| *s == c).copied())
            });
        let window = window_column.map(|(column, close_after)| WindowedGroups {
            column,
            exclusive_end: close_after > 0 || properties.window_end_columns.contains(&column),
            emit_on_close: self.emit_on_window_close,
            close_after,
        });
        if self.emit_on_window_close {
            if window.is_none() {
                return Err(unbounded_window_close());
            }
            self.emits_on_close = true;
        }
        let output = fields_of(output_schema.as_arrow());
        let (parallelism, partitioning) = if global {
            (1, Partitioning::Single)
        } else {
            (self.parallelism, Partitioning::Hash((0..group_columns).collect()))
        };
        let emit_on_close = window.as_ref().is_some_and(|w| w.emit_on_close);
        let by_end = window.iter().filter(|w| w.close_after == 0);
        let closing: Vec<usize> = by_end.clone().map(|w| w.column).collect();
        let window_end = by_end.filter(|w| w.exclusive_end).map(|w| w.column).collect();
        let window_start =
            window.iter().filter(|w| w.close_after > 0).map(|w| (w.column, w.close_after)).collect();
        let append_only_input = self.vertices[source].output.append_only;
        // A state TTL bounds what nothing else does: groups of an aggregate without windows.
        let state_ttl_ms = self.state_ttl_ms.filter(|_| window.is_none() && !global);
        let spec = AggregateSpec {
            group_columns,
            aggregates,
            output,
            global,
            window,
            append_only_input,
            state_ttl_ms,
        };
        let vertex = self
            .add_vertex(parallelism, None, vec![Edge { from: source, partitioning }])
            .with_chain(self, OperatorSpec::HashAggregate(spec));
        // One row per group, updated in place: a retracting stream keyed by the group; or,
        // emitting on window close, each group once.
        self.vertices[vertex].output = StreamProperties {
            append_only: emit_on_close,
            stream_key: Some((0..group_columns).collect()),
            watermark_columns: closing,
            window_end_columns: window_end,
            window_start_columns: window_start,
        };
        Ok(vertex)
    }

    /// A window TVF: `WindowAssign` chained onto its input, or a `SessionWindow` vertex
    /// behind a hash exchange on the session keys.
    fn lower_window(&mut self, window: &WindowTvf) -> SqlResult<usize> {
        let input = self.lower(&window.input)?;
        let width = window.input.schema().fields().len();
        let (start, end) = (width, width + 1);
        let properties = self.vertices[input].output.clone();
        let time_has_watermark = properties.watermark_columns.contains(&window.time_column);
        let mut output = properties.clone();
        if time_has_watermark {
            output.watermark_columns.push(end);
            output.window_end_columns.push(end);
            let length = match window.kind {
                WindowKind::Tumble { size, .. }
                | WindowKind::Hop { size, .. }
                | WindowKind::Cumulate { size, .. } => Some(size),
                WindowKind::Session { .. } => None,
            };
            output.window_start_columns.extend(length.map(|l| (start, l)));
        }
        match window.kind {
            WindowKind::Session { gap } => {
                if !properties.append_only {
                    return Err(SqlError::unsupported(
                        "SESSION windows over a table that takes updates or deletes",
                    )
                    .with_hint("SESSION reads append-only sources."));
                }
                if !time_has_watermark {
                    return Err(SqlError::unsupported("SESSION windows over a time column without a watermark")
                        .with_hint("Declare WATERMARK FOR the time column on the source: sessions close when the watermark passes them."));
                }
                let (parallelism, partitioning) = match window.keys.is_empty() {
                    true => (1, Partitioning::Single),
                    false => (self.parallelism, Partitioning::Hash(window.keys.clone())),
                };
                let op = OperatorSpec::SessionWindow {
                    gap,
                    time_column: window.time_column,
                    keys: window.keys.clone(),
                };
                let vertex = self
                    .add_vertex(parallelism, None, vec![Edge { from: input, partitioning }])
                    .with_chain(self, op);
                output.stream_key = None;
                self.vertices[vertex].output = output;
                Ok(vertex)
            }
            kind => {
                self.vertices[input]
                    .chain
                    .push(OperatorSpec::WindowAssign { kind, time_column: window.time_column });
                // A row becomes one row per window: a key needs the window to stay unique.
                if !matches!(kind, WindowKind::Tumble { .. }) {
                    output.stream_key = output.stream_key.map(|mut k| {
                        k.push(start);
                        k
                    });
                }
                self.vertices[input].output = output;
                Ok(input)
            }
        }
    }

    /// Appends a projection to a vertex's chain. A projection that only picks columns is
    /// folded into a projection right before it, so no batch is built twice.
    fn push_project(&mut self, vertex: usize, exprs: Vec<String>, output: Vec<FieldSpec>) {
        // The stream key survives if every key column is passed through as is.
        let key = self.vertices[vertex].output.stream_key.take();
        self.vertices[vertex].output.stream_key = key.and_then(|key| {
            key.iter().map(|k| exprs.iter().position(|e| *e == format!("_c{k}"))).collect::<Option<Vec<_>>>()
        });
        // Watermarked columns survive where they are passed through as is.
        let passed = |columns: &[usize]| -> Vec<usize> {
            (0..exprs.len()).filter(|i| columns.iter().any(|c| exprs[*i] == format!("_c{c}"))).collect()
        };
        let out = &mut self.vertices[vertex].output;
        out.watermark_columns = passed(&out.watermark_columns);
        out.window_end_columns = passed(&out.window_end_columns);
        out.window_start_columns = (0..exprs.len())
            .filter_map(|i| {
                out.window_start_columns
                    .iter()
                    .find(|(c, _)| exprs[i] == format!("_c{c}"))
                    .map(|(_, l)| (i, *l))
            })
            .collect();
        let picked: Option<Vec<usize>> = exprs.iter().map(|e| e.strip_prefix("_c")?.parse().ok()).collect();
        if let (Some(picked), Some(OperatorSpec::Project { exprs: before, output: before_out })) =
            (&picked, self.vertices[vertex].chain.last())
        {
            let same_types = picked
                .iter()
                .zip(&output)
                .all(|(i, o)| before_out.get(*i).is_some_and(|b| b.data_type == o.data_type));
            if same_types && picked.iter().all(|i| *i < before.len()) {
                let exprs = picked.iter().map(|i| before[*i].clone()).collect();
                if let Some(last) = self.vertices[vertex].chain.last_mut() {
                    *last = OperatorSpec::Project { exprs, output };
                }
                return;
            }
        }
        self.vertices[vertex].chain.push(OperatorSpec::Project { exprs, output });
    }

    /// Makes `keys` (expressions over `schema`, the vertex's output) columns of the vertex:
    /// a plain column is used as it is, anything else is computed by a projection that
    /// appends it. Returns the vertex's columns after that and each key's column.
    fn with_key_columns(
        &mut self,
        vertex: usize,
        schema: &DFSchema,
        keys: &[Expr],
    ) -> SqlResult<(Vec<FieldSpec>, Vec<usize>)> {
        let mut fields = fields_of(schema.as_arrow());
        let width = fields.len();
        let mut exprs: Vec<String> = (0..width).map(|i| format!("_c{i}")).collect();
        let mut key_columns = Vec::new();
        for key in keys {
            let sql = expr_sql(key, schema)?;
            match exprs.iter().position(|e| *e == sql) {
                Some(existing) => key_columns.push(existing),
                None => {
                    exprs.push(sql);
                    fields.push(FieldSpec::new(
                        format!("_key{}", fields.len() - width),
                        &key.get_type(schema)?,
                    ));
                    key_columns.push(exprs.len() - 1);
                }
            }
        }
        if exprs.len() > width {
            self.push_project(vertex, exprs, fields.clone());
        }
        Ok((fields, key_columns))
    }

    fn add_vertex(&mut self, parallelism: usize, source: Option<SourceSpec>, inputs: Vec<Edge>) -> usize {
        let id = self.vertices.len();
        self.vertices.push(Vertex {
            id,
            parallelism,
            source,
            inputs,
            chain: Vec::new(),
            output: Default::default(),
        });
        id
    }
}

trait WithChain {
    fn with_chain(self, lowering: &mut Lowering<'_>, op: OperatorSpec) -> usize;
}

impl WithChain for usize {
    fn with_chain(self, lowering: &mut Lowering<'_>, op: OperatorSpec) -> usize {
        lowering.vertices[self].chain.push(op);
        self
    }
}

fn unalias(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => unalias(&alias.expr),
        other => other,
    }
}

/// The fields of `schema`, named as a client sees them (a sink writes these names), not by
/// the unique names duplicate result columns get for DataFusion (see
/// [`crate::result_column_name`]).
fn fields_of(schema: &arrow::datatypes::Schema) -> Vec<FieldSpec> {
    FieldSpec::from_schema(schema)
        .into_iter()
        .map(|f| FieldSpec { name: crate::result_column_name(&f.name).to_string(), data_type: f.data_type })
        .collect()
}

fn field_spec(schema: &DFSchema, i: usize) -> FieldSpec {
    let field = schema.field(i);
    FieldSpec::new(crate::result_column_name(field.name()), field.data_type())
}

/// Writes `expr` as SQL over positional column names of `schema`.
fn expr_sql(expr: &Expr, schema: &DFSchema) -> SqlResult<String> {
    expr_sql_mapped(expr, schema, &|i| i)
}

/// [`expr_sql`], with column `i` of `schema` written as `_c{position(i)}`.
fn expr_sql_mapped(expr: &Expr, schema: &DFSchema, position: &dyn Fn(usize) -> usize) -> SqlResult<String> {
    let positional = unalias(expr)
        .clone()
        .transform_up(|e| match e {
            Expr::Column(column) => {
                let index = position(schema.index_of_column(&column)?);
                Ok(Transformed::yes(Expr::Column(Column::new_unqualified(format!("_c{index}")))))
            }
            // A delete must compute exactly the row its insert computed; a volatile
            // function would not, and the view would keep rows that no longer exist.
            Expr::ScalarFunction(ref f) if f.func.signature().volatility == Volatility::Volatile => {
                Err(datafusion::error::DataFusionError::NotImplemented(format!(
                    "volatile function {}() in a materialized view",
                    f.name()
                )))
            }
            Expr::IsNull(x) => Ok(guard_not(x).update_data(Expr::IsNull)),
            Expr::IsNotNull(x) => Ok(guard_not(x).update_data(Expr::IsNotNull)),
            Expr::IsTrue(x) => Ok(guard_not(x).update_data(Expr::IsTrue)),
            Expr::IsNotTrue(x) => Ok(guard_not(x).update_data(Expr::IsNotTrue)),
            Expr::IsFalse(x) => Ok(guard_not(x).update_data(Expr::IsFalse)),
            Expr::IsNotFalse(x) => Ok(guard_not(x).update_data(Expr::IsNotFalse)),
            Expr::IsUnknown(x) => Ok(guard_not(x).update_data(Expr::IsUnknown)),
            Expr::IsNotUnknown(x) => Ok(guard_not(x).update_data(Expr::IsNotUnknown)),
            // A float constant written as a number would be read back as a `numeric` (Weir
            // reads decimal literals as Postgres does), and compared with a `real` column
            // as a decimal the column's values can overflow: written as text cast to its type.
            Expr::Literal(ScalarValue::Float32(Some(v)), _) => {
                Ok(Transformed::yes(cast(lit(v.to_string()), arrow::datatypes::DataType::Float32)))
            }
            Expr::Literal(ScalarValue::Float64(Some(v)), _) => {
                Ok(Transformed::yes(cast(lit(v.to_string()), arrow::datatypes::DataType::Float64)))
            }
            Expr::ScalarSubquery(_)
            | Expr::Exists(_)
            | Expr::InSubquery(_)
            | Expr::OuterReferenceColumn(..) => Err(datafusion::error::DataFusionError::NotImplemented(
                "subqueries in a materialized view".into(),
            )),
            other => Ok(Transformed::no(other)),
        })
        .map_err(|e| match e {
            datafusion::error::DataFusionError::NotImplemented(what) => SqlError::unsupported(what),
            other => SqlError::internal(format!("cannot plan expression {expr}: {other}")),
        })?
        .data;
    datafusion::sql::unparser::Unparser::new(&ExpressionDialect)
        .expr_to_sql(&positional)
        .map(|sql| sql.to_string())
        .map_err(|e| SqlError::unsupported(format!("expression {expr} in a materialized view ({e})")))
}

/// `NOT x` as the operand of `IS [NOT] NULL / TRUE / FALSE / UNKNOWN`, written as a cast to
/// `boolean`, which the unparser puts in parentheses of its own: it writes `(NOT x) IS NULL`
/// as `NOT x IS NULL`, which reads back as `NOT (x IS NULL)`, another predicate (a view
/// `WHERE NOT (b IS FALSE)`, which DataFusion simplifies to `(NOT b) IS NULL OR b`, kept the
/// rows it should drop; found by `pg_table_differential.py`).
fn guard_not(operand: Box<Expr>) -> Transformed<Box<Expr>> {
    match *operand {
        Expr::Not(_) => Transformed::yes(Box::new(cast(*operand, arrow::datatypes::DataType::Boolean))),
        _ => Transformed::no(operand),
    }
}

/// How the JobGraph writes an expression: DataFusion's default dialect, except that a
/// timestamp type keeps its unit (`TIMESTAMP(6)`), so that the TaskManager that parses it
/// computes in the microseconds Weir stores rather than DataFusion's default nanoseconds,
/// which end in the year 2262 (see `weir_executor::functions::timestamp_range`).
struct ExpressionDialect;

impl datafusion::sql::unparser::dialect::Dialect for ExpressionDialect {
    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        datafusion::sql::unparser::dialect::DefaultDialect {}.identifier_quote_style(identifier)
    }

    fn timestamp_cast_dtype(
        &self,
        unit: &arrow::datatypes::TimeUnit,
        zone: &Option<Arc<str>>,
    ) -> datafusion::sql::sqlparser::ast::DataType {
        use arrow::datatypes::TimeUnit;
        use datafusion::sql::sqlparser::ast::TimezoneInfo;
        let precision = match unit {
            TimeUnit::Second => 0,
            TimeUnit::Millisecond => 3,
            TimeUnit::Microsecond => 6,
            TimeUnit::Nanosecond => 9,
        };
        let zone = match zone {
            Some(_) => TimezoneInfo::WithTimeZone,
            None => TimezoneInfo::None,
        };
        datafusion::sql::sqlparser::ast::DataType::Timestamp(Some(precision), zone)
    }
}
