//! The JobGraph: what the planner hands the runtime, typed and serializable.
//!
//! A JobGraph is a DAG of vertices. A vertex is a chain of operators that run in one task
//! per unit of parallelism (forward edges between same-parallelism operators are chained by
//! the planner, so no channel hop separates them). Edges say how a producer's rows are
//! spread over the consumer's subtasks. Expressions are carried as SQL text over positional
//! column names (`_c0`, `_c1`, ...) and compiled against the input schema at deploy time, so
//! a graph can be shipped to a TaskManager in another process as JSON.

use std::fmt::{self, Write as _};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

pub use crate::catalog::Watermark;
use crate::error::{PlanError, PlanResult};
use crate::ids::{JobId, VertexId};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobGraph {
    /// What the job maintains; its id also names the job.
    pub target: JobTarget,
    pub vertices: Vec<Vertex>,
    /// Whether the job's event-time sources read in step (see [`WatermarkAlignment`]);
    /// `None` when they read as fast as they can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark_alignment: Option<WatermarkAlignment>,
}

/// Watermark alignment of a job's sources: a source subtask whose watermark is more than
/// `max_drift_us` ahead of the slowest active event-time source subtask of the job pauses
/// reading until the others catch up, so a fast source does not fill the job's state (a
/// join's build side, open windows) with rows the slow one's watermark cannot yet close.
/// Applied to jobs that read more than one event-time source (see `docs/event-time.md`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct WatermarkAlignment {
    /// The most a source subtask's watermark may lead the slowest one's, in microseconds.
    pub max_drift_us: i64,
}

/// The catalog object a job keeps up to date: a materialized view or a sink. Its id names
/// the job, its tasks, its checkpoints and its state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobTarget {
    pub id: JobId,
    pub name: String,
    pub kind: TargetKind,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum TargetKind {
    MaterializedView,
    Sink,
}

impl TargetKind {
    /// How `weir_catalog.jobs` names the kind.
    pub fn label(self) -> &'static str {
        match self {
            TargetKind::MaterializedView => "materialized view",
            TargetKind::Sink => "sink",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Vertex {
    pub id: VertexId,
    pub parallelism: usize,
    pub source: Option<SourceSpec>,
    pub inputs: Vec<Edge>,
    /// Operators applied in order to every message of the vertex.
    pub chain: Vec<OperatorSpec>,
    /// What the planner derived about the rows the chain emits.
    #[serde(default)]
    pub output: StreamProperties,
}

/// Plan properties of a stream, derived per vertex by the planner.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StreamProperties {
    /// Only inserts ever flow; otherwise deletes (and updates as delete + insert) too.
    pub append_only: bool,
    /// Columns that identify a row; `None` when rows form a multiset (duplicates possible).
    pub stream_key: Option<Vec<usize>>,
    /// Columns the event-time watermark bounds: after `Watermark(w)`, an on-time row has
    /// `column >= w` (the source's event-time column; `window_end` of a window, which is
    /// even `> w`). Windowed operators close state by these columns.
    #[serde(default)]
    pub watermark_columns: Vec<usize>,
    /// The watermarked columns that are a window's exclusive end (`window_end`).
    #[serde(default)]
    pub window_end_columns: Vec<usize>,
    /// Columns that are a window's start (`window_start` of TUMBLE, HOP, CUMULATE over a
    /// watermarked time column), with the window's length in microseconds: such a window
    /// closes once the watermark reaches start + length.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub window_start_columns: Vec<(usize, i64)>,
}

impl fmt::Display for StreamProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.append_only { "append-only" } else { "retracting" })?;
        match &self.stream_key {
            Some(key) if key.is_empty() => write!(f, ", at most one row"),
            Some(key) => {
                let cols: Vec<String> = key.iter().map(|c| format!("_c{c}")).collect();
                write!(f, ", stream key [{}]", cols.join(", "))
            }
            None => write!(f, ", no stream key"),
        }?;
        if !self.watermark_columns.is_empty() {
            let cols: Vec<String> = self.watermark_columns.iter().map(|c| format!("_c{c}")).collect();
            write!(f, ", watermark on [{}]", cols.join(", "))?;
        }
        Ok(())
    }
}

/// Where a vertex's rows come from when it has no upstream vertex in this job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum SourceSpec {
    /// A stored table: a snapshot of its rows, then its changelog.
    Table {
        table_id: u64,
        table_name: String,
        schema: Vec<FieldSpec>,
        /// `WATERMARK FOR` of an append-only table.
        #[serde(default)]
        watermark: Option<Watermark>,
    },
    /// Another view's materialize subtasks (one channel from each; `parallelism` of this
    /// vertex equals the upstream view's).
    View { view_id: u64, view_name: String, schema: Vec<FieldSpec> },
    /// A source declared with `CREATE SOURCE`: one subtask per split of its connector.
    Connector {
        source_id: u64,
        source_name: String,
        connector: String,
        options: std::collections::BTreeMap<String, String>,
        schema: Vec<FieldSpec>,
        /// `WATERMARK FOR`: the event-time column and the watermark expression over `_cN`.
        watermark: Option<Watermark>,
        /// `proc_time AS PROCTIME()`: the column the source fills with the time it emits
        /// each batch; the connector reads the others.
        #[serde(default)]
        proctime_column: Option<usize>,
        /// The columns the job uses (ascending, of `schema`), when not all of them: the
        /// connector may hand the others on as placeholders instead of their values.
        #[serde(default)]
        read_columns: Option<Vec<usize>>,
    },
}

/// A window table-valued function's assignment of rows to windows. Times in microseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd)]
pub enum WindowKind {
    /// `TUMBLE(src, ts, size [, offset])`: one window `[start, start + size)` per row.
    Tumble { size: i64, offset: i64 },
    /// `HOP(src, ts, slide, size [, offset])`: the `size / slide` windows containing the row.
    Hop { slide: i64, size: i64, offset: i64 },
    /// `CUMULATE(src, ts, step, size)`: windows `[start, start + k * step)` within each
    /// `size`-long period that contain the row.
    Cumulate { step: i64, size: i64, offset: i64 },
    /// `SESSION(src, ts, gap [, key...])`: rows of one key closer than `gap` form a window.
    Session { gap: i64 },
}

impl fmt::Display for WindowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |us: i64| format_interval(us);
        match *self {
            WindowKind::Tumble { size, offset: 0 } => write!(f, "tumble(size {})", d(size)),
            WindowKind::Tumble { size, offset } => {
                write!(f, "tumble(size {}, offset {})", d(size), d(offset))
            }
            WindowKind::Hop { slide, size, offset: 0 } => {
                write!(f, "hop(slide {}, size {})", d(slide), d(size))
            }
            WindowKind::Hop { slide, size, offset } => {
                write!(f, "hop(slide {}, size {}, offset {})", d(slide), d(size), d(offset))
            }
            WindowKind::Cumulate { step, size, offset: 0 } => {
                write!(f, "cumulate(step {}, size {})", d(step), d(size))
            }
            WindowKind::Cumulate { step, size, offset } => {
                write!(f, "cumulate(step {}, size {}, offset {})", d(step), d(size), d(offset))
            }
            WindowKind::Session { gap } => write!(f, "session(gap {})", d(gap)),
        }
    }
}

/// `1500000` -> `1.5 s`, `60000000` -> `60 s`.
fn format_interval(us: i64) -> String {
    if us % 1_000_000 == 0 {
        format!("{} s", us / 1_000_000)
    } else if us % 1000 == 0 {
        format!("{} ms", us / 1000)
    } else {
        format!("{us} us")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Edge {
    pub from: VertexId,
    pub partitioning: Partitioning,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Partitioning {
    /// Subtask `i` feeds subtask `i` (same parallelism).
    Forward,
    /// Rows are routed by the hash of these columns (key group, then subtask).
    Hash(Vec<usize>),
    /// Everything goes to the single consumer subtask.
    Single,
    /// Every row goes to every consumer subtask.
    Broadcast,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum OperatorSpec {
    Project {
        exprs: Vec<String>,
        output: Vec<FieldSpec>,
    },
    Filter {
        predicate: String,
    },
    HashAggregate(AggregateSpec),
    /// Merges its inputs (UNION ALL).
    Union {
        output: Vec<FieldSpec>,
    },
    Materialize {
        view_id: u64,
    },
    /// Appends `window_start` and `window_end` to every row, expanding a row into one copy
    /// per window containing it (TUMBLE, HOP, CUMULATE).
    WindowAssign {
        kind: WindowKind,
        time_column: usize,
    },
    /// SESSION windows: holds rows per key until the watermark closes their session, then
    /// emits them with `window_start` / `window_end` appended.
    SessionWindow {
        gap: i64,
        time_column: usize,
        keys: Vec<usize>,
    },
    /// `EMIT ON WINDOW CLOSE` on a window query without an aggregate: holds each row until
    /// the watermark passes its window's end (`column`), then emits it; later rows of a
    /// closed window are late.
    WindowClose {
        column: usize,
    },
    /// An equi-join of the vertex's two input edges (edge 0 the left side, edge 1 the right),
    /// both hash-partitioned on their join keys. Must be the first operator of its chain.
    HashJoin(JoinSpec),
    /// The first rows of each partition by an order (`ROW_NUMBER() ... WHERE rn <= N`).
    TopN(TopNSpec),
    /// A temporal join (`JOIN t FOR SYSTEM_TIME AS OF PROCTIME()`): each row of the vertex's
    /// one (append-only) input looks its key up in a stored table's current rows. Keeps no
    /// state; reads the table, so it runs in the frontend process.
    LookupJoin(LookupJoinSpec),
    /// Writes the rows out of Weir (`CREATE SINK`).
    Sink {
        sink_id: u64,
        connector: String,
        options: std::collections::BTreeMap<String, String>,
    },
}

/// Incremental grouped aggregation. The input's first `group_columns` columns are the group
/// key; each aggregate reads one input column (none for `count(*)`). Output: group columns,
/// then one column per aggregate, typed as `output`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AggregateSpec {
    pub group_columns: usize,
    pub aggregates: Vec<AggregateCall>,
    pub output: Vec<FieldSpec>,
    /// With no GROUP BY the view has exactly one row, even over no input (as in SQL).
    pub global: bool,
    /// Set when a group column carries the watermark: groups close by it.
    #[serde(default)]
    pub window: Option<WindowedGroups>,
    /// The input never retracts a row, so min/max keep only the current extreme.
    #[serde(default)]
    pub append_only_input: bool,
    /// State time-to-live in wall-clock milliseconds, for an aggregate without windows: a
    /// group not updated for that long is dropped and its row retracted.
    #[serde(default)]
    pub state_ttl_ms: Option<u64>,
}

impl AggregateSpec {
    /// Whether nothing bounds the groups it keeps: no window closes them, no TTL drops
    /// them, and there is more than the one group of an aggregate without GROUP BY.
    pub fn holds_unbounded_state(&self) -> bool {
        self.window.is_none() && !self.global && self.state_ttl_ms.is_none()
    }
}

/// How an aggregate grouped by a watermarked column (a window's `window_end`, or the event
/// time itself) closes groups.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WindowedGroups {
    /// The group column (an index below `group_columns`) that carries the watermark.
    pub column: usize,
    /// `window_end` is exclusive: a group with `window_end <= w` is closed. For an event-time
    /// column a group is closed only when `value < w`.
    pub exclusive_end: bool,
    /// `EMIT ON WINDOW CLOSE`: emit each group once, final, when it closes (append-only
    /// output); otherwise emit changes every epoch and drop closed groups' state.
    pub emit_on_close: bool,
    /// Microseconds from the column's value to the window's end: 0 for `window_end`, the
    /// window's length for `window_start` (grouping by the start alone).
    #[serde(default)]
    pub close_after: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AggregateCall {
    pub kind: AggregateKind,
    pub input_column: Option<usize>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum AggregateKind {
    /// `count(*)`: rows in the group.
    CountRows,
    /// `count(x)`: non-null values.
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    BoolAnd,
    BoolOr,
}

/// A streaming equi-join: each side keeps its rows by join key in keyed state, and every
/// change on one side is joined with the other side's current rows (insert or retract).
/// Output: the left side's columns, then the right side's (only the left side's for semi
/// and anti joins).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JoinSpec {
    pub kind: JoinKind,
    /// Key columns of the left input, pairwise equal (same types) to `right_keys`.
    pub left_keys: Vec<usize>,
    pub right_keys: Vec<usize>,
    /// `IS NOT DISTINCT FROM` keys: NULL matches NULL. Otherwise a NULL key matches nothing.
    #[serde(default)]
    pub null_equals_null: bool,
    /// The left input's columns (edge 0) and the right input's (edge 1).
    pub left_fields: Vec<FieldSpec>,
    pub right_fields: Vec<FieldSpec>,
    /// Extra condition on a matching pair, as SQL over the left columns then the right
    /// columns (`_c0` ... `_c{left+right-1}`).
    #[serde(default)]
    pub filter: Option<String>,
    /// What bounds each side's state, for EXPLAIN (`None`: nothing; kept forever).
    #[serde(default)]
    pub left_state_bound: Option<String>,
    #[serde(default)]
    pub right_state_bound: Option<String>,
    /// Interval join bounds: a row of that side can no longer match once the watermark
    /// passes its time plus the offset (derived from the join condition over event-time
    /// columns); it is then dropped, and rows later than the watermark are dropped as late.
    #[serde(default)]
    pub left_expiry: Option<TimeBound>,
    #[serde(default)]
    pub right_expiry: Option<TimeBound>,
    /// Which column of each side makes its rows late (dropped and counted) once the
    /// watermark has passed it: the column the other side's expiry counts on. `None` in a
    /// job graph stored before this field existed: each side's expiry column.
    #[serde(default)]
    pub lateness: Option<JoinLateness>,
    /// State time-to-live (`streaming_state_ttl`, `WITH (state_ttl = ...)`): a row not
    /// written for this long (wall-clock) is dropped. Only where nothing else bounds state.
    #[serde(default)]
    pub state_ttl_ms: Option<u64>,
}

/// A temporal (lookup) join of a stream with a table's current version. Output: the
/// stream's columns, then the looked-up row's (`lookup_fields`; NULL when `left_outer` and
/// nothing matched). Each stream row yields at most one row: the key covers the table's
/// primary key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LookupJoinSpec {
    /// `LEFT JOIN`: a stream row without a match comes out NULL-padded.
    pub left_outer: bool,
    pub table_id: u64,
    pub table_name: String,
    /// The stream's columns (the vertex's input).
    pub stream_fields: Vec<FieldSpec>,
    /// Stream columns holding the looked-up key: one per primary-key column of the table, in
    /// its order. Cast to the key's types at lookup; a value that does not fit matches
    /// nothing.
    pub key_columns: Vec<usize>,
    /// What the table side of the query does to a looked-up row (its own filters and
    /// projections, `Filter` and `Project` only), over the table's columns.
    pub table_chain: Vec<OperatorSpec>,
    /// The table side's columns after `table_chain`.
    pub lookup_fields: Vec<FieldSpec>,
    /// The whole join condition (its equalities too, so a key cast cannot make a false
    /// match), over the stream's columns then `lookup_fields`.
    pub condition: Option<String>,
}

impl LookupJoinSpec {
    pub fn output(&self) -> Vec<FieldSpec> {
        self.stream_fields.iter().chain(&self.lookup_fields).cloned().collect()
    }
}

/// A row whose timestamp column `column` holds `t` may match rows of the other side only
/// up to event time `t + offset_us`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct TimeBound {
    pub column: usize,
    pub offset_us: i64,
}

/// The late-row columns of an interval join. A side's row may expire on a column the
/// watermark does not bound (q9's `expires`), as long as the other side's rows are checked
/// for lateness on the column the condition compares it with: then no on-time row of the
/// other side can still match it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct JoinLateness {
    pub left: Option<usize>,
    pub right: Option<usize>,
}

impl JoinSpec {
    /// The column each side's rows are late on (see [`JoinLateness`]).
    pub fn late_columns(&self) -> [Option<usize>; 2] {
        match self.lateness {
            Some(l) => [l.left, l.right],
            None => [self.left_expiry.map(|b| b.column), self.right_expiry.map(|b| b.column)],
        }
    }
}

/// Top-N per partition: `ROW_NUMBER() OVER (PARTITION BY partition ORDER BY order)` kept
/// to ranks `1..=limit`. Every row of a partition is kept (rows past the limit move up when
/// a top row is deleted), except over an append-only input, where rows past the limit can
/// never come back and are dropped. Output: the input's first `width` columns, then the
/// rank (`UInt64`; NULL when `emit_rank` is false because nothing reads it, so a row that
/// only changes rank is not re-emitted).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopNSpec {
    pub partition: Vec<usize>,
    pub order: Vec<SortColumn>,
    pub limit: u64,
    pub width: usize,
    pub input_fields: Vec<FieldSpec>,
    pub emit_rank: bool,
    pub append_only_input: bool,
    /// State time-to-live in wall-clock milliseconds (see [`JoinSpec::state_ttl_ms`]).
    #[serde(default)]
    pub state_ttl_ms: Option<u64>,
}

impl TopNSpec {
    /// Whether nothing bounds its state: without a TTL it keeps every row of a retracting
    /// input, and the first rows of every partition of an append-only one.
    pub fn holds_unbounded_state(&self) -> bool {
        self.state_ttl_ms.is_none() && (!self.append_only_input || !self.partition.is_empty())
    }

    pub fn output(&self) -> Vec<FieldSpec> {
        let mut fields: Vec<FieldSpec> = self.input_fields.iter().take(self.width).cloned().collect();
        fields.push(FieldSpec::new("rank", &DataType::UInt64));
        fields
    }
}

/// One `ORDER BY` item over an input column.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct SortColumn {
    pub column: usize,
    pub descending: bool,
    pub nulls_first: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    /// Every left row, NULL-padded while nothing on the right matches it.
    LeftOuter,
    RightOuter,
    FullOuter,
    /// Left rows that have a match (`EXISTS`, `IN`), once each.
    LeftSemi,
    /// Left rows that have no match (`NOT EXISTS`).
    LeftAnti,
}

impl JoinKind {
    /// Left rows without a match are emitted NULL-padded.
    pub fn pads_left(self) -> bool {
        matches!(self, JoinKind::LeftOuter | JoinKind::FullOuter)
    }

    /// Right rows without a match are emitted NULL-padded.
    pub fn pads_right(self) -> bool {
        matches!(self, JoinKind::RightOuter | JoinKind::FullOuter)
    }

    /// Only the left side's columns come out.
    pub fn left_only(self) -> bool {
        matches!(self, JoinKind::LeftSemi | JoinKind::LeftAnti)
    }

    pub fn label(self) -> &'static str {
        match self {
            JoinKind::Inner => "inner",
            JoinKind::LeftOuter => "left outer",
            JoinKind::RightOuter => "right outer",
            JoinKind::FullOuter => "full outer",
            JoinKind::LeftSemi => "left semi",
            JoinKind::LeftAnti => "left anti",
        }
    }
}

impl JoinSpec {
    /// The columns the join emits.
    pub fn output(&self) -> Vec<FieldSpec> {
        let mut fields = self.left_fields.clone();
        if !self.kind.left_only() {
            fields.extend(self.right_fields.iter().cloned());
        }
        fields
    }
}

/// A column of a schema, with its Arrow type written as Arrow's `Display` (parseable back).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FieldSpec {
    pub name: String,
    pub data_type: String,
}

impl FieldSpec {
    pub fn new(name: impl Into<String>, data_type: &DataType) -> Self {
        Self { name: name.into(), data_type: data_type.to_string() }
    }

    pub fn from_schema(schema: &Schema) -> Vec<FieldSpec> {
        schema.fields().iter().map(|f| FieldSpec::new(f.name(), f.data_type())).collect()
    }

    pub fn data_type(&self) -> PlanResult<DataType> {
        self.data_type
            .parse::<DataType>()
            .map_err(|e| PlanError::InvalidGraph(format!("type {} of {}: {e}", self.data_type, self.name)))
    }
}

/// Builds an Arrow schema (every column nullable) from field specs.
pub fn schema_of(fields: &[FieldSpec]) -> PlanResult<SchemaRef> {
    let fields = fields
        .iter()
        .map(|f| Ok(Field::new(&f.name, f.data_type()?, true)))
        .collect::<PlanResult<Vec<_>>>()?;
    Ok(std::sync::Arc::new(Schema::new(fields)))
}

impl OperatorSpec {
    pub fn name(&self) -> &'static str {
        match self {
            OperatorSpec::Project { .. } => "Project",
            OperatorSpec::Filter { .. } => "Filter",
            OperatorSpec::HashAggregate(_) => "HashAggregate",
            OperatorSpec::Union { .. } => "Union",
            OperatorSpec::Materialize { .. } => "Materialize",
            OperatorSpec::WindowAssign { .. } => "WindowAssign",
            OperatorSpec::SessionWindow { .. } => "SessionWindow",
            OperatorSpec::WindowClose { .. } => "WindowClose",
            OperatorSpec::HashJoin(_) => "HashJoin",
            OperatorSpec::TopN(_) => "TopN",
            OperatorSpec::LookupJoin(_) => "LookupJoin",
            OperatorSpec::Sink { .. } => "Sink",
        }
    }
}

impl Vertex {
    /// The vertex's source and operators in data-flow order, e.g.
    /// `TableSource -> Filter -> Project` (as `weir_catalog.tasks` shows them).
    pub fn operator_names(&self) -> String {
        let source = match &self.source {
            Some(SourceSpec::Table { .. }) => Some("TableSource"),
            Some(SourceSpec::View { .. }) => Some("ViewSource"),
            Some(SourceSpec::Connector { .. }) => Some("ConnectorSource"),
            None => None,
        };
        source.into_iter().chain(self.chain.iter().map(OperatorSpec::name)).collect::<Vec<_>>().join(" -> ")
    }
}

impl JobGraph {
    pub fn vertex(&self, id: VertexId) -> PlanResult<&Vertex> {
        self.vertices.get(id).ok_or_else(|| PlanError::InvalidGraph(format!("no vertex {id}")))
    }

    /// Vertices that read from `id`, with the edge.
    pub fn consumers(&self, id: VertexId) -> Vec<(&Vertex, &Edge)> {
        self.vertices
            .iter()
            .flat_map(|v| v.inputs.iter().filter(move |e| e.from == id).map(move |e| (v, e)))
            .collect()
    }

    /// The upstream views this job reads.
    pub fn view_inputs(&self) -> Vec<u64> {
        self.vertices
            .iter()
            .filter_map(|v| match &v.source {
                Some(SourceSpec::View { view_id, .. }) => Some(*view_id),
                _ => None,
            })
            .collect()
    }

    /// The sources (`CREATE SOURCE`) this job reads.
    pub fn source_inputs(&self) -> Vec<u64> {
        self.vertices
            .iter()
            .filter_map(|v| match &v.source {
                Some(SourceSpec::Connector { source_id, .. }) => Some(*source_id),
                _ => None,
            })
            .collect()
    }

    /// How many vertices read a `CREATE SOURCE` with a `WATERMARK` (a source read twice
    /// counts twice: its two readers can drift apart like two sources).
    pub fn event_time_sources(&self) -> usize {
        self.vertices
            .iter()
            .filter(|v| matches!(&v.source, Some(SourceSpec::Connector { watermark: Some(_), .. })))
            .count()
    }

    /// Aligns the job's sources' watermarks within `max_drift_ms` (0: not at all) when it
    /// reads more than one event-time source; a job with one has nothing to align.
    pub fn with_watermark_alignment(mut self, max_drift_ms: u64) -> Self {
        self.watermark_alignment =
            (max_drift_ms > 0 && self.event_time_sources() > 1).then(|| WatermarkAlignment {
                max_drift_us: i64::try_from(max_drift_ms.saturating_mul(1000)).unwrap_or(i64::MAX),
            });
        self
    }

    /// The tables this job reads: as a source, or by lookup in a temporal join.
    pub fn table_inputs(&self) -> Vec<u64> {
        let scanned = self.vertices.iter().filter_map(|v| match &v.source {
            Some(SourceSpec::Table { table_id, .. }) => Some(*table_id),
            _ => None,
        });
        let looked_up = self.vertices.iter().flat_map(|v| &v.chain).filter_map(|op| match op {
            OperatorSpec::LookupJoin(spec) => Some(spec.table_id),
            _ => None,
        });
        scanned.chain(looked_up).collect()
    }
}

impl fmt::Display for JobGraph {
    /// The EXPLAIN form: one block per vertex, sinks first, like a plan tree read top-down.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "JobGraph for {} {}", self.target.kind.label(), self.target.name)?;
        if let Some(alignment) = &self.watermark_alignment {
            writeln!(
                f,
                "Watermark alignment: a source pauses while its watermark leads the slowest by more than {} ms",
                alignment.max_drift_us / 1000
            )?;
        }
        for vertex in self.vertices.iter().rev() {
            let mut line =
                format!("Vertex {} (parallelism {}; {})", vertex.id, vertex.parallelism, vertex.output);
            for edge in &vertex.inputs {
                let _ = write!(line, " <- vertex {} [{}]", edge.from, edge.partitioning);
            }
            writeln!(f, "{line}")?;
            for op in vertex.chain.iter().rev() {
                match op {
                    OperatorSpec::Materialize { .. } => writeln!(
                        f,
                        "  Materialize: {}; state: the view's rows with their multiplicity",
                        self.target.name
                    )?,
                    other => writeln!(f, "  {other}")?,
                }
            }
            match &vertex.source {
                Some(SourceSpec::Table { table_name, .. }) => {
                    writeln!(f, "  TableSource: {table_name} (snapshot, then changelog)")?
                }
                Some(SourceSpec::View { view_name, .. }) => {
                    writeln!(f, "  ViewSource: {view_name} (contents, then changes)")?
                }
                Some(SourceSpec::Connector {
                    source_name,
                    connector,
                    watermark,
                    proctime_column,
                    read_columns,
                    ..
                }) => {
                    let wm = match watermark {
                        Some(w) => format!("watermark {}", w.positional_expr),
                        None => "no watermark".into(),
                    };
                    let proctime = match proctime_column {
                        Some(c) => format!("; processing time in _c{c}"),
                        None => String::new(),
                    };
                    let reads = match read_columns {
                        Some(columns) => {
                            let names = columns.iter().map(|c| format!("_c{c}")).collect::<Vec<_>>();
                            format!("; reads {}", names.join(", "))
                        }
                        None => String::new(),
                    };
                    writeln!(f, "  ConnectorSource: {source_name} ({connector}; {wm}{proctime}{reads})")?
                }
                None => {}
            }
        }
        Ok(())
    }
}

impl fmt::Display for Partitioning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Partitioning::Forward => write!(f, "forward"),
            Partitioning::Hash(cols) => {
                let cols: Vec<String> = cols.iter().map(|c| format!("_c{c}")).collect();
                write!(f, "hash({})", cols.join(", "))
            }
            Partitioning::Single => write!(f, "single"),
            Partitioning::Broadcast => write!(f, "broadcast"),
        }
    }
}

impl fmt::Display for OperatorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OperatorSpec::Project { exprs, output } => {
                let items: Vec<String> =
                    exprs.iter().zip(output).map(|(e, o)| format!("{e} AS {}", o.name)).collect();
                write!(f, "Project: {}", items.join(", "))
            }
            OperatorSpec::Filter { predicate } => write!(f, "Filter: {predicate}"),
            OperatorSpec::HashAggregate(spec) => {
                let groups: Vec<String> = (0..spec.group_columns).map(|c| format!("_c{c}")).collect();
                let aggs: Vec<String> = spec
                    .aggregates
                    .iter()
                    .zip(spec.output.iter().skip(spec.group_columns))
                    .map(|(a, o)| {
                        let arg = a.input_column.map_or("*".to_string(), |c| format!("_c{c}"));
                        let call = match a.kind {
                            AggregateKind::CountRows | AggregateKind::Count => format!("count({arg})"),
                            AggregateKind::CountDistinct => format!("count(DISTINCT {arg})"),
                            AggregateKind::Sum => format!("sum({arg})"),
                            AggregateKind::Avg => format!("avg({arg})"),
                            AggregateKind::Min => format!("min({arg})"),
                            AggregateKind::Max => format!("max({arg})"),
                            AggregateKind::BoolAnd => format!("bool_and({arg})"),
                            AggregateKind::BoolOr => format!("bool_or({arg})"),
                        };
                        format!("{call} AS {}", o.name)
                    })
                    .collect();
                let has = |kinds: &[AggregateKind]| spec.aggregates.iter().any(|a| kinds.contains(&a.kind));
                let state = if has(&[AggregateKind::CountDistinct])
                    || (!spec.append_only_input && has(&[AggregateKind::Min, AggregateKind::Max]))
                {
                    "per group: row count, accumulators, value multisets for min/max/distinct"
                } else {
                    "per group: row count, accumulators"
                };
                let window = match &spec.window {
                    Some(w) if w.emit_on_close => format!("; emit on close of _c{}", w.column),
                    Some(w) => format!("; groups close by _c{}", w.column),
                    None => String::new(),
                };
                let ttl = match spec.state_ttl_ms {
                    Some(ms) => format!(" (state_ttl {ms} ms: idle groups dropped and retracted)"),
                    None if spec.holds_unbounded_state() => " (unbounded: grows with distinct groups)".into(),
                    None => String::new(),
                };
                write!(
                    f,
                    "HashAggregate: group by [{}], [{}]{window}; state: {state}{ttl}",
                    groups.join(", "),
                    aggs.join(", ")
                )
            }
            OperatorSpec::Union { .. } => write!(f, "Union"),
            OperatorSpec::WindowClose { column } => {
                write!(f, "WindowClose: rows held until the watermark passes _c{column}; state: rows of open windows")
            }
            OperatorSpec::Materialize { view_id } => {
                write!(f, "Materialize: view {view_id}; state: view rows with multiplicity")
            }
            OperatorSpec::WindowAssign { kind, time_column } => {
                write!(f, "WindowAssign: {kind} on _c{time_column}")
            }
            OperatorSpec::SessionWindow { gap, time_column, keys } => {
                let keys: Vec<String> = keys.iter().map(|c| format!("_c{c}")).collect();
                write!(
                    f,
                    "SessionWindow: gap {} on _c{time_column}, per [{}]; state: rows of open sessions",
                    format_interval(*gap),
                    keys.join(", ")
                )
            }
            OperatorSpec::HashJoin(spec) => {
                let left = spec.left_fields.len();
                let pairs: Vec<String> = spec
                    .left_keys
                    .iter()
                    .zip(&spec.right_keys)
                    .map(|(l, r)| {
                        let eq = if spec.null_equals_null { "IS NOT DISTINCT FROM" } else { "=" };
                        format!("_c{l} {eq} _c{}", left + r)
                    })
                    .collect();
                let filter = spec.filter.as_ref().map(|p| format!(" AND {p}")).unwrap_or_default();
                let bound = |b: &Option<String>| b.clone().unwrap_or_else(|| "unbounded".into());
                write!(
                    f,
                    "HashJoin: {} on {}{filter}; state: left rows by key ({}), right rows by key ({})",
                    spec.kind.label(),
                    pairs.join(" AND "),
                    bound(&spec.left_state_bound),
                    bound(&spec.right_state_bound),
                )
            }
            OperatorSpec::TopN(spec) => {
                let partition: Vec<String> = spec.partition.iter().map(|c| format!("_c{c}")).collect();
                let order: Vec<String> = spec
                    .order
                    .iter()
                    .map(|o| {
                        let dir = if o.descending { "DESC" } else { "ASC" };
                        let nulls = if o.nulls_first { "NULLS FIRST" } else { "NULLS LAST" };
                        format!("_c{} {dir} {nulls}", o.column)
                    })
                    .collect();
                let state = match (spec.append_only_input, spec.state_ttl_ms) {
                    (true, Some(ms)) => format!("the first rows of each partition (state_ttl {ms} ms)"),
                    (true, None) if spec.holds_unbounded_state() => {
                        "the first rows of each partition (unbounded: grows with partitions)".to_string()
                    }
                    (true, None) => "the first rows".to_string(),
                    (false, Some(ms)) => format!("every row of each partition (state_ttl {ms} ms)"),
                    (false, None) => "every row of each partition (unbounded)".to_string(),
                };
                write!(
                    f,
                    "TopN: first {} per [{}] by [{}]; state: {state}",
                    spec.limit,
                    partition.join(", "),
                    order.join(", ")
                )
            }
            OperatorSpec::LookupJoin(spec) => {
                let kind = if spec.left_outer { "left outer" } else { "inner" };
                let keys: Vec<String> = spec.key_columns.iter().map(|c| format!("_c{c}")).collect();
                let condition = spec.condition.as_ref().map(|c| format!(" where {c}")).unwrap_or_default();
                write!(
                    f,
                    "LookupJoin: {kind}, each row looks up {} (current version) by primary key [{}]{condition}; \
                     state: none (rows read from the table at lookup)",
                    spec.table_name,
                    keys.join(", ")
                )
            }
            OperatorSpec::Sink { connector, .. } => write!(f, "Sink: {connector}"),
        }
    }
}

impl JobGraph {
    /// The columns vertex `id` receives: its source's, or its first upstream vertex's output.
    pub fn input_fields(&self, id: VertexId) -> PlanResult<Vec<FieldSpec>> {
        let vertex = self.vertex(id)?;
        match (&vertex.source, vertex.inputs.first()) {
            (Some(SourceSpec::Table { schema, .. }), _)
            | (Some(SourceSpec::View { schema, .. }), _)
            | (Some(SourceSpec::Connector { schema, .. }), _) => Ok(schema.clone()),
            (None, Some(edge)) if edge.from < id => self.output_fields(edge.from),
            _ => Err(PlanError::InvalidGraph(format!("vertex {id} has no input"))),
        }
    }

    /// The columns of each input edge of vertex `id`, in edge order: its producer's output,
    /// or, for a vertex with a source, the source's columns as its one edge.
    pub fn edge_fields(&self, id: VertexId) -> PlanResult<Vec<Vec<FieldSpec>>> {
        let vertex = self.vertex(id)?;
        if vertex.source.is_some() {
            return Ok(vec![self.input_fields(id)?]);
        }
        vertex
            .inputs
            .iter()
            .map(|edge| match edge.from < id {
                true => self.output_fields(edge.from),
                false => {
                    Err(PlanError::InvalidGraph(format!("vertex {id} reads vertex {} after it", edge.from)))
                }
            })
            .collect()
    }

    /// The columns vertex `id` produces.
    pub fn output_fields(&self, id: VertexId) -> PlanResult<Vec<FieldSpec>> {
        let mut fields = self.input_fields(id)?;
        for op in &self.vertex(id)?.chain {
            match op {
                OperatorSpec::Project { output, .. } | OperatorSpec::Union { output } => {
                    fields = output.clone()
                }
                OperatorSpec::HashAggregate(spec) => fields = spec.output.clone(),
                OperatorSpec::HashJoin(spec) => fields = spec.output(),
                OperatorSpec::TopN(spec) => fields = spec.output(),
                OperatorSpec::LookupJoin(spec) => fields = spec.output(),
                OperatorSpec::WindowAssign { time_column, .. }
                | OperatorSpec::SessionWindow { time_column, .. } => {
                    let ts = fields
                        .get(*time_column)
                        .ok_or_else(|| PlanError::InvalidGraph(format!("no time column {time_column}")))?
                        .data_type
                        .clone();
                    fields.push(FieldSpec { name: "window_start".into(), data_type: ts.clone() });
                    fields.push(FieldSpec { name: "window_end".into(), data_type: ts });
                }
                OperatorSpec::Filter { .. }
                | OperatorSpec::WindowClose { .. }
                | OperatorSpec::Materialize { .. }
                | OperatorSpec::Sink { .. } => {}
            }
        }
        Ok(fields)
    }

    /// The operators whose state nothing in the query bounds (it grows with distinct keys
    /// or rows unless rows are deleted), e.g. `HashJoin left (vertex 2)`; what
    /// `weir_catalog.jobs.unbounded_state` lists. Window aggregates, session windows and
    /// interval-join sides drop state as the watermark passes; a state TTL bounds joins,
    /// Top-N and aggregates; an aggregate without GROUP BY holds one row.
    pub fn unbounded_state(&self) -> Vec<String> {
        let mut unbounded = Vec::new();
        for vertex in &self.vertices {
            for op in &vertex.chain {
                match op {
                    OperatorSpec::HashJoin(spec) if spec.state_ttl_ms.is_none() => {
                        if spec.left_expiry.is_none() {
                            unbounded.push(format!("HashJoin left (vertex {})", vertex.id));
                        }
                        if spec.right_expiry.is_none() {
                            unbounded.push(format!("HashJoin right (vertex {})", vertex.id));
                        }
                    }
                    OperatorSpec::TopN(spec) if spec.holds_unbounded_state() => {
                        unbounded.push(format!("TopN (vertex {})", vertex.id));
                    }
                    OperatorSpec::HashAggregate(spec) if spec.holds_unbounded_state() => {
                        unbounded.push(format!("HashAggregate (vertex {})", vertex.id));
                    }
                    _ => {}
                }
            }
        }
        unbounded
    }

    /// The job's id: its target's.
    pub fn id(&self) -> JobId {
        self.target.id
    }

    /// Whether the job ends in a sink rather than a materialized view.
    pub fn is_sink(&self) -> bool {
        self.target.kind == TargetKind::Sink
    }

    /// The vertex holding the view's materialize operator.
    pub fn materialize_vertex(&self) -> PlanResult<&Vertex> {
        self.vertices
            .iter()
            .find(|v| v.chain.iter().any(|op| matches!(op, OperatorSpec::Materialize { .. })))
            .ok_or_else(|| PlanError::InvalidGraph("job has no materialize operator".into()))
    }
}
