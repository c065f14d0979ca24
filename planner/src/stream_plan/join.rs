//! Lowering a DataFusion `Join` into a `HashJoin` vertex.
//!
//! Both inputs are lowered on their own, their key expressions are appended as columns where
//! they are not plain columns (and cast to one common type, so equal keys hash alike), and
//! each input reaches the join through a hash exchange on its keys. A join needs at least one
//! equality between its sides: without one, every row would meet every row of the other
//! side in one subtask, and the state could only grow.
//!
//! `RIGHT SEMI`/`RIGHT ANTI` (DataFusion's form of some `EXISTS` subqueries) are planned as
//! left ones with the inputs swapped; the output order is restored by a projection.

use datafusion::common::NullEquality;
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::type_coercion::binary::comparison_coercion;
use datafusion::logical_expr::{Expr, ExprSchemable, Join, JoinType, LogicalPlan};
use weir_plan::job_graph::{
    Edge, FieldSpec, JoinKind, JoinLateness, JoinSpec, OperatorSpec, Partitioning, StreamProperties,
    TimeBound,
};

use super::interval_bounds::{describe, interval_bounds, window_bounds, JoinBounds};
use super::{expr_sql_mapped, fields_of, Lowering, WithChain};
use crate::error::{sqlstate, SqlError, SqlResult};

/// One input of the join as lowered: its vertex, its columns (with appended key columns),
/// and its key column indexes.
struct JoinInput {
    vertex: usize,
    fields: Vec<FieldSpec>,
    keys: Vec<usize>,
    /// Columns of the input's plan (before appended keys).
    width: usize,
}

impl Lowering<'_> {
    pub(super) fn lower_join(&mut self, join: &Join) -> SqlResult<usize> {
        let (kind, swapped) = match join.join_type {
            JoinType::Inner => (JoinKind::Inner, false),
            JoinType::Left => (JoinKind::LeftOuter, false),
            JoinType::Right => (JoinKind::RightOuter, false),
            JoinType::Full => (JoinKind::FullOuter, false),
            JoinType::LeftSemi => (JoinKind::LeftSemi, false),
            JoinType::LeftAnti => (JoinKind::LeftAnti, false),
            JoinType::RightSemi => (JoinKind::LeftSemi, true),
            JoinType::RightAnti => (JoinKind::LeftAnti, true),
            JoinType::LeftMark | JoinType::RightMark => {
                return Err(SqlError::unsupported("this subquery form (a mark join) in a materialized view"))
            }
        };
        if join.null_aware {
            return Err(SqlError::unsupported("NOT IN (subquery) in a materialized view").with_hint(
                "NOT IN is false for every row once the subquery yields one NULL; write NOT EXISTS (SELECT ... \
                 WHERE ...), which a view can maintain.",
            ));
        }
        if join.on.is_empty() {
            return Err(SqlError::unsupported(
                "a join without an equality between its two sides (a cross join, or a join on inequalities only) \
                 in a materialized view",
            )
            .with_hint(
                "A view keeps both sides of a join and matches rows by equal keys; without a key every row meets \
                 every row of the other side. Add an equality (ON a.x = b.y) between the two sides.",
            ));
        }

        // Key pairs of one common type, so that equal keys hash alike on both sides.
        let (left_schema, right_schema) = (join.left.schema(), join.right.schema());
        let mut left_keys = Vec::new();
        let mut right_keys = Vec::new();
        for (l, r) in &join.on {
            let (lt, rt) = (l.get_type(left_schema)?, r.get_type(right_schema)?);
            let common = comparison_coercion(&lt, &rt).ok_or_else(|| {
                SqlError::new(
                    sqlstate::DATATYPE_MISMATCH,
                    format!("join keys {l} ({lt}) and {r} ({rt}) cannot be compared"),
                )
            })?;
            let cast = |e: &Expr, t: &arrow::datatypes::DataType| match t == &common {
                true => e.clone(),
                false => Expr::Cast(Cast::new(Box::new(e.clone()), common.clone())),
            };
            left_keys.push(cast(l, &lt));
            right_keys.push(cast(r, &rt));
        }
        let (first_plan, second_plan, first_keys, second_keys) = match swapped {
            false => (&join.left, &join.right, left_keys, right_keys),
            true => (&join.right, &join.left, right_keys, left_keys),
        };
        let first = self.lower_join_input(first_plan, &first_keys)?;
        let second = self.lower_join_input(second_plan, &second_keys)?;

        // The extra condition, over the first input's columns then the second's.
        let combined = join.left.schema().join(join.right.schema())?;
        let left_width = join.left.schema().fields().len();
        let first_width = first.fields.len();
        let position = |i: usize| -> usize {
            match (swapped, i < left_width) {
                (false, true) => i,
                (false, false) => first_width + (i - left_width),
                (true, false) => i - left_width,
                (true, true) => first_width + i,
            }
        };
        let filter = join.filter.as_ref().map(|f| expr_sql_mapped(f, &combined, &position)).transpose()?;

        // Window-join or interval-join bounds (only for the unswapped form: semi and anti
        // joins keep state like regular joins), then the TTL for what they leave unbounded.
        let (first_output, second_output) =
            (&self.vertices[first.vertex].output, &self.vertices[second.vertex].output);
        let bounds = match swapped {
            false => match window_bounds(&first.keys, &second.keys, first_output, second_output) {
                Some((left, right)) => JoinBounds {
                    left: Some(left),
                    right: Some(right),
                    lateness: JoinLateness { left: Some(left.column), right: Some(right.column) },
                },
                None => {
                    interval_bounds(join.filter.as_ref(), &combined, left_width, first_output, second_output)
                }
            },
            true => JoinBounds::default(),
        };
        let (left_expiry, right_expiry) = (bounds.left, bounds.right);
        let ttl = self.state_ttl_ms;

        let properties = self.join_properties(kind, &first, &second);
        let edges = vec![
            Edge { from: first.vertex, partitioning: Partitioning::Hash(first.keys.clone()) },
            Edge { from: second.vertex, partitioning: Partitioning::Hash(second.keys.clone()) },
        ];
        let spec = JoinSpec {
            kind,
            left_keys: first.keys.clone(),
            right_keys: second.keys.clone(),
            null_equals_null: join.null_equality == NullEquality::NullEqualsNull,
            left_fields: first.fields.clone(),
            right_fields: second.fields.clone(),
            filter,
            left_state_bound: describe(left_expiry, ttl),
            // Named as in the join's condition: the right side's columns after the left's.
            right_state_bound: describe(
                right_expiry.map(|b| TimeBound { column: first.fields.len() + b.column, ..b }),
                ttl,
            ),
            left_expiry,
            right_expiry,
            lateness: Some(bounds.lateness),
            state_ttl_ms: ttl,
        };
        let vertex =
            self.add_vertex(self.parallelism, None, edges).with_chain(self, OperatorSpec::HashJoin(spec));
        self.vertices[vertex].output = properties;

        // Back to the join's own columns, in its order (dropping appended keys).
        // (Only semi and anti joins are swapped, and they keep the first input's columns.)
        let columns: Vec<usize> = match kind.left_only() {
            true => (0..first.width).collect(),
            false => (0..first.width).chain(first_width..first_width + second.width).collect(),
        };
        let identity = columns.len()
            == first.fields.len() + if kind.left_only() { 0 } else { second.fields.len() }
            && columns.iter().enumerate().all(|(i, c)| i == *c);
        if !identity {
            let exprs = columns.iter().map(|c| format!("_c{c}")).collect();
            self.push_project(vertex, exprs, fields_of(join.schema.as_arrow()));
        }
        Ok(vertex)
    }

    /// Lowers one input and appends its key expressions that are not plain columns.
    fn lower_join_input(&mut self, plan: &LogicalPlan, keys: &[Expr]) -> SqlResult<JoinInput> {
        let vertex = self.lower(plan)?;
        let width = plan.schema().fields().len();
        let (fields, keys) = self.with_key_columns(vertex, plan.schema(), keys)?;
        Ok(JoinInput { vertex, fields, keys, width })
    }

    /// What the join's output is: append-only only when nothing can be taken back, keyed
    /// when both inputs are (an inner join's row is one row of each), and without a
    /// watermark (a regular join emits rows of any age).
    fn join_properties(&self, kind: JoinKind, first: &JoinInput, second: &JoinInput) -> StreamProperties {
        let (a, b) = (&self.vertices[first.vertex].output, &self.vertices[second.vertex].output);
        let append_only =
            a.append_only && b.append_only && matches!(kind, JoinKind::Inner | JoinKind::LeftSemi);
        let stream_key = match kind {
            JoinKind::Inner => match (&a.stream_key, &b.stream_key) {
                (Some(ka), Some(kb)) => {
                    Some(ka.iter().copied().chain(kb.iter().map(|k| k + first.fields.len())).collect())
                }
                _ => None,
            },
            JoinKind::LeftSemi | JoinKind::LeftAnti => a.stream_key.clone(),
            _ => None,
        };
        StreamProperties { append_only, stream_key, ..Default::default() }
    }
}
