//! Lowering Top-N: `ROW_NUMBER() OVER (PARTITION BY p ORDER BY o) AS rn` under a filter
//! `rn <= N` (or `rn < N`, `rn = 1`) becomes a `TopN` vertex behind a hash exchange on `p`
//! (a single subtask without `PARTITION BY`); so does `ORDER BY o LIMIT N` (one partition,
//! no rank).
//!
//! The filter is what makes the window function maintainable: a view cannot keep a rank for
//! every row (one insert at the top would renumber the whole partition), but it can keep
//! the first N. The window node is lowered first; the nodes between it and the filter
//! (projections, aliases) are then lowered on top of it as usual, and if none of them reads
//! the rank, the `TopN` leaves it out so a row that only changes rank is not re-emitted.

use datafusion::common::{Column, ScalarValue};
use datafusion::logical_expr::{BinaryExpr, Expr, Filter, LogicalPlan, Operator, Sort, Window};
use weir_plan::job_graph::{OperatorSpec, Partitioning, SortColumn, StreamProperties, TopNSpec};

use super::{fields_of, unalias, Lowering, WithChain};
use crate::error::{SqlError, SqlResult};

impl Lowering<'_> {
    /// Lowers `filter` as a Top-N if it limits a `ROW_NUMBER()`; `None` if it does not.
    pub(super) fn try_lower_top_n(&mut self, filter: &Filter) -> SqlResult<Option<usize>> {
        let Some((column, limit)) = rank_limit(&filter.predicate) else { return Ok(None) };
        let Ok(index) = filter.input.schema().index_of_column(&column) else { return Ok(None) };
        let Some((window_plan, window, rank_column)) = find_window(&filter.input, index) else {
            return Ok(None);
        };
        let width = window.input.schema().fields().len();
        if rank_column < width {
            return Ok(None);
        }
        if window.window_expr.len() != 1 {
            return Err(SqlError::unsupported(
                "several window functions over one ranking in a materialized view",
            ));
        }
        let Expr::WindowFunction(function) = unalias(&window.window_expr[0]) else { return Ok(None) };
        let name = function.fun.name().to_ascii_lowercase();
        if name != "row_number" {
            return Err(SqlError::unsupported(format!("{name}() in a materialized view"))
                .with_hint("Use ROW_NUMBER() ... WHERE rn <= N to keep the first N rows per partition."));
        }
        if limit == 0 {
            return Err(SqlError::unsupported("a rank filter that keeps no row in a materialized view"));
        }
        let params = &function.params;
        if params.order_by.is_empty() {
            return Err(SqlError::unsupported("ROW_NUMBER() without ORDER BY in a materialized view")
                .with_hint("Which rows are first must not depend on arrival order: add ORDER BY."));
        }

        let input = self.lower(&window.input)?;
        let schema = window.input.schema();
        let keys: Vec<Expr> = params
            .partition_by
            .iter()
            .cloned()
            .chain(params.order_by.iter().map(|s| s.expr.clone()))
            .collect();
        let (input_fields, key_columns) = self.with_key_columns(input, schema, &keys)?;
        let (partition, order_columns) = key_columns.split_at(params.partition_by.len());
        let order = params
            .order_by
            .iter()
            .zip(order_columns)
            .map(|(sort, &column)| SortColumn {
                column,
                descending: !sort.asc,
                nulls_first: sort.nulls_first,
            })
            .collect();
        let append_only_input = self.vertices[input].output.append_only;
        let spec = TopNSpec {
            partition: partition.to_vec(),
            order,
            limit,
            width,
            input_fields,
            emit_rank: true,
            append_only_input,
            state_ttl_ms: self.state_ttl_ms,
        };
        let (parallelism, partitioning) = match partition.is_empty() {
            true => (1, Partitioning::Single),
            false => (self.parallelism, Partitioning::Hash(partition.to_vec())),
        };
        let edge = weir_plan::job_graph::Edge { from: input, partitioning };
        let top = self.add_vertex(parallelism, None, vec![edge]).with_chain(self, OperatorSpec::TopN(spec));
        // The first rows change as rows come and go: a retracting stream, keyed by the
        // partition and rank.
        let key = partition.iter().copied().chain([width]).collect();
        self.vertices[top].output =
            StreamProperties { append_only: false, stream_key: Some(key), ..Default::default() };
        if fields_of(window.schema.as_arrow()).len() != width + 1 {
            return Err(SqlError::internal("a ROW_NUMBER() window must add one column"));
        }

        // The nodes between the window and the filter, on top of the TopN vertex.
        self.pre_lowered = Some((window_plan as *const LogicalPlan, top));
        let lowered = self.lower(&filter.input);
        self.pre_lowered = None;
        let vertex = lowered?;
        self.drop_unread_rank(top, width);
        Ok(Some(vertex))
    }

    /// `ORDER BY ... LIMIT N`: a global Top-N (one subtask) without the rank.
    pub(super) fn lower_sort_limit(&mut self, sort: &Sort) -> SqlResult<usize> {
        let limit = sort.fetch.unwrap_or(0) as u64;
        if limit == 0 {
            return Err(SqlError::unsupported("LIMIT 0 in a materialized view"));
        }
        let input = self.lower(&sort.input)?;
        let schema = sort.input.schema();
        let width = schema.fields().len();
        let keys: Vec<Expr> = sort.expr.iter().map(|s| s.expr.clone()).collect();
        let (input_fields, order_columns) = self.with_key_columns(input, schema, &keys)?;
        let order = sort
            .expr
            .iter()
            .zip(order_columns)
            .map(|(s, column)| SortColumn { column, descending: !s.asc, nulls_first: s.nulls_first })
            .collect();
        let spec = TopNSpec {
            partition: vec![],
            order,
            limit,
            width,
            input_fields,
            emit_rank: false,
            append_only_input: self.vertices[input].output.append_only,
            state_ttl_ms: self.state_ttl_ms,
        };
        let edge = weir_plan::job_graph::Edge { from: input, partitioning: Partitioning::Single };
        let top = self.add_vertex(1, None, vec![edge]).with_chain(self, OperatorSpec::TopN(spec));
        self.vertices[top].output = StreamProperties { append_only: false, ..Default::default() };
        self.push_project(top, (0..width).map(|i| format!("_c{i}")).collect(), fields_of(schema.as_arrow()));
        Ok(top)
    }

    /// If the operator after the `TopN` is a projection that does not read the rank, the
    /// `TopN` need not emit it.
    fn drop_unread_rank(&mut self, vertex: usize, rank_column: usize) {
        let chain = &mut self.vertices[vertex].chain;
        let Some(position) = chain.iter().position(|op| matches!(op, OperatorSpec::TopN(_))) else { return };
        let reads_rank = match chain.get(position + 1) {
            Some(OperatorSpec::Project { exprs, .. }) => {
                exprs.iter().any(|e| mentions_column(e, rank_column))
            }
            _ => true,
        };
        if !reads_rank {
            if let Some(OperatorSpec::TopN(spec)) = chain.get_mut(position) {
                spec.emit_rank = false;
                self.vertices[vertex].output.stream_key = None;
            }
        }
    }
}

/// Whether SQL text over positional names mentions `_c{column}` (not `_c{column}0`).
fn mentions_column(sql: &str, column: usize) -> bool {
    let name = format!("_c{column}");
    sql.match_indices(&name).any(|(at, _)| {
        let after = sql[at + name.len()..].chars().next();
        let before = sql[..at].chars().next_back();
        !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// `rn <= N`, `rn < N`, `rn = 1` (either way round): the rank column and the number of
/// rows kept.
fn rank_limit(predicate: &Expr) -> Option<(Column, u64)> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = predicate else { return None };
    let (column, op, value) = match (strip_cast(left), strip_cast(right)) {
        (Expr::Column(c), Expr::Literal(v, _)) => (c.clone(), *op, v),
        (Expr::Literal(v, _), Expr::Column(c)) => (c.clone(), op.swap()?, v),
        _ => return None,
    };
    let n = match value.cast_to(&arrow::datatypes::DataType::Int64).ok()? {
        ScalarValue::Int64(Some(n)) => n,
        _ => return None,
    };
    let limit = match op {
        Operator::LtEq => n,
        Operator::Lt => n - 1,
        Operator::Eq if n == 1 => 1,
        _ => return None,
    };
    Some((column, limit.max(0) as u64))
}

fn strip_cast(expr: &Expr) -> &Expr {
    match expr {
        Expr::Cast(cast) => strip_cast(&cast.expr),
        Expr::TryCast(cast) => strip_cast(&cast.expr),
        other => other,
    }
}

/// Follows column `index` of `plan` down through projections and aliases to a window
/// node: the window's plan node, the window, and the column's index in its output.
fn find_window(plan: &LogicalPlan, index: usize) -> Option<(&LogicalPlan, &Window, usize)> {
    match plan {
        LogicalPlan::Window(window) => Some((plan, window, index)),
        LogicalPlan::SubqueryAlias(alias) => find_window(&alias.input, index),
        LogicalPlan::Projection(projection) => {
            let Expr::Column(column) = unalias(projection.expr.get(index)?) else { return None };
            let below = projection.input.schema().index_of_column(column).ok()?;
            find_window(&projection.input, below)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_is_found_by_its_whole_positional_name() {
        assert!(mentions_column("_c3", 3));
        assert!(mentions_column("_c1 + _c3", 3));
        assert!(!mentions_column("_c30", 3));
        assert!(!mentions_column("x_c3", 3));
    }
}
