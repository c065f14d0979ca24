//! Intervals compare, sort and group as Postgres does.
//!
//! Arrow's `Interval(MonthDayNano)` keeps months, days and nanoseconds apart, and
//! DataFusion compares them field by field, so `INTERVAL '24 hours' = INTERVAL '1 day'`
//! is false and `SELECT DISTINCT` keeps both. Postgres compares intervals by one
//! normalized value, with a month of 30 days and a day of 24 hours. Weir does the same:
//!
//! * comparisons between two intervals are planned over [`interval_key`] of each side
//!   (nanoseconds as `numeric`), by [`IntervalComparisons`] when SQL is planned;
//! * `ORDER BY` an interval sorts by its key, and `GROUP BY`/`DISTINCT` group by
//!   `justify_interval` of it (Postgres' function: the same value with days carried into
//!   months and hours into days), by the analyzer rule [`IntervalGrouping`]. A group of
//!   `'24 hours'` and `'1 day'` is shown as `1 day`, where Postgres shows one of its
//!   members.
//! * `count(DISTINCT iv)` (any DISTINCT aggregate) counts the justified values, and `min`
//!   and `max` pick by key, the same rule rewriting them: `min(iv)` is
//!   `interval_from_key(min(interval_key(iv)))`, so it shows the justified value too.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Decimal128Array, IntervalMonthDayNanoArray};
use arrow::datatypes::Decimal128Type;
use arrow::datatypes::{DataType, IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, Distinct, Expr, ExprSchemable, LogicalPlan, Projection, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, SortExpr, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::sql::sqlparser::ast::BinaryOperator;

const NANOS_PER_DAY: i128 = 86_400_000_000_000;

fn interval_type() -> DataType {
    DataType::Interval(IntervalUnit::MonthDayNano)
}

/// The value Postgres compares intervals by, in nanoseconds.
fn key(v: IntervalMonthDayNano) -> i128 {
    (i128::from(v.months) * 30 + i128::from(v.days)) * NANOS_PER_DAY + i128::from(v.nanoseconds)
}

/// Postgres' `justify_interval`: whole days out of the time part, whole 30-day months out
/// of the days, all parts with the value's sign. `None` if the months leave `i32`.
fn justify(v: IntervalMonthDayNano) -> Option<IntervalMonthDayNano> {
    from_key(key(v))
}

/// The justified interval of a [`key`]: every interval of that value justifies to it.
fn from_key(total: i128) -> Option<IntervalMonthDayNano> {
    let month = 30 * NANOS_PER_DAY;
    let months = i32::try_from(total / month).ok()?;
    let rest = total % month;
    let days = i32::try_from(rest / NANOS_PER_DAY).ok()?;
    let nanoseconds = i64::try_from(rest % NANOS_PER_DAY).ok()?;
    Some(IntervalMonthDayNano { months, days, nanoseconds })
}

#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Which {
    Key,
    Justify,
    FromKey,
}

/// `interval_key(interval)` and `justify_interval(interval)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IntervalFunction {
    which: Which,
    signature: Signature,
}

pub fn interval_key() -> ScalarUDF {
    ScalarUDF::new_from_impl(IntervalFunction {
        which: Which::Key,
        signature: Signature::exact(vec![interval_type()], Volatility::Immutable),
    })
}

pub fn justify_interval() -> ScalarUDF {
    ScalarUDF::new_from_impl(IntervalFunction {
        which: Which::Justify,
        signature: Signature::exact(vec![interval_type()], Volatility::Immutable),
    })
}

/// `interval_from_key(numeric)`: the justified interval of a key, for `min` and `max`.
pub fn interval_from_key() -> ScalarUDF {
    ScalarUDF::new_from_impl(IntervalFunction {
        which: Which::FromKey,
        signature: Signature::exact(vec![DataType::Decimal128(38, 0)], Volatility::Immutable),
    })
}

impl ScalarUDFImpl for IntervalFunction {
    fn name(&self) -> &str {
        match self.which {
            Which::Key => "interval_key",
            Which::Justify => "justify_interval",
            Which::FromKey => "interval_from_key",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.which {
            Which::Key => DataType::Decimal128(38, 0),
            Which::Justify | Which::FromKey => interval_type(),
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let array = args.args[0].to_array(if scalar { 1 } else { args.number_rows })?;
        let intervals = || array.as_primitive::<IntervalMonthDayNanoType>();
        let out: Arc<dyn Array> = match self.which {
            Which::Key => Arc::new(
                intervals()
                    .iter()
                    .map(|v| v.map(key))
                    .collect::<Decimal128Array>()
                    .with_precision_and_scale(38, 0)?,
            ),
            Which::Justify => Arc::new(
                intervals()
                    .iter()
                    .map(|v| v.map(|v| justify(v).ok_or_else(out_of_range)).transpose())
                    .collect::<Result<IntervalMonthDayNanoArray>>()?,
            ),
            Which::FromKey => Arc::new(
                array
                    .as_primitive::<Decimal128Type>()
                    .iter()
                    .map(|k| k.map(|k| from_key(k).ok_or_else(out_of_range)).transpose())
                    .collect::<Result<IntervalMonthDayNanoArray>>()?,
            ),
        };
        super::columnar(out, scalar)
    }
}

fn out_of_range() -> DataFusionError {
    DataFusionError::ArrowError(
        Box::new(arrow::error::ArrowError::ArithmeticOverflow("interval out of range".into())),
        None,
    )
}

fn is_interval(e: &Expr, schema: &DFSchema) -> bool {
    e.get_type(schema).is_ok_and(|t| t == interval_type())
}

/// Plans comparisons of two intervals over their keys.
#[derive(Debug, Default)]
pub struct IntervalComparisons;

impl ExprPlanner for IntervalComparisons {
    fn plan_binary_op(&self, expr: RawBinaryExpr, schema: &DFSchema) -> Result<PlannerResult<RawBinaryExpr>> {
        use BinaryOperator::*;
        let comparison = matches!(expr.op, Eq | NotEq | Lt | LtEq | Gt | GtEq);
        if !comparison || !is_interval(&expr.left, schema) || !is_interval(&expr.right, schema) {
            return Ok(PlannerResult::Original(expr));
        }
        let key = interval_key();
        Ok(PlannerResult::Original(RawBinaryExpr {
            op: expr.op,
            left: key.call(vec![expr.left]),
            right: key.call(vec![expr.right]),
        }))
    }
}

/// Groups (`GROUP BY`, `DISTINCT`) and sorts intervals by their normalized value.
#[derive(Debug, Default)]
pub struct IntervalGrouping;

impl AnalyzerRule for IntervalGrouping {
    fn name(&self) -> &str {
        "weir_interval_grouping"
    }
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(rewrite_node).map(|t| t.data)
    }
}

fn rewrite_node(node: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    match node {
        LogicalPlan::Aggregate(mut aggregate) => {
            let schema = aggregate.input.schema().clone();
            let preserver = NamePreserver::new_for_projection();
            let mut changed = false;
            for group in aggregate.group_expr.iter_mut() {
                // Every interval key, a column or an expression (`GROUP BY -iv`).
                if is_interval(group, &schema) {
                    let name = preserver.save(group);
                    *group = name.restore(justify_interval().call(vec![group.clone()]));
                    changed = true;
                }
            }
            for e in aggregate.aggr_expr.iter_mut() {
                let name = preserver.save(e);
                let rewritten = e.clone().transform_up(|e| distinct_intervals_by_value(e, &schema))?;
                if rewritten.transformed {
                    *e = name.restore(rewritten.data);
                    changed = true;
                }
            }
            let mut over_keys = Vec::new();
            for (i, e) in aggregate.aggr_expr.iter_mut().enumerate() {
                if let Some(keyed) = min_max_over_key(e, &schema) {
                    let name = preserver.save(e);
                    *e = name.restore(keyed);
                    over_keys.push(i);
                }
            }
            let aggregates = aggregate.aggr_expr.len();
            let plan = LogicalPlan::Aggregate(aggregate);
            if !changed && over_keys.is_empty() {
                return Ok(Transformed::no(plan));
            }
            let plan = plan.recompute_schema()?;
            if over_keys.is_empty() {
                return Ok(Transformed::yes(plan));
            }
            // `min`/`max` over keys give numbers: back to intervals, under the same names.
            let output = plan.schema().clone();
            let first_aggregate = output.fields().len() - aggregates;
            let exprs = output
                .iter()
                .enumerate()
                .map(|(i, (qualifier, field))| {
                    let column = Expr::Column(datafusion::common::Column::from((qualifier, field)));
                    match i.checked_sub(first_aggregate).is_some_and(|a| over_keys.contains(&a)) {
                        true => interval_from_key()
                            .call(vec![column])
                            .alias_qualified(qualifier.cloned(), field.name()),
                        false => column,
                    }
                })
                .collect();
            Ok(Transformed::yes(LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(plan))?)))
        }
        LogicalPlan::Distinct(Distinct::All(input)) => {
            let schema = input.schema().clone();
            if !schema.fields().iter().any(|f| f.data_type() == &interval_type()) {
                return Ok(Transformed::no(LogicalPlan::Distinct(Distinct::All(input))));
            }
            let exprs = schema
                .iter()
                .map(|(qualifier, field)| {
                    let column = Expr::Column(datafusion::common::Column::from((qualifier, field)));
                    match field.data_type() == &interval_type() {
                        true => justify_interval()
                            .call(vec![column])
                            .alias_qualified(qualifier.cloned(), field.name()),
                        false => column,
                    }
                })
                .collect();
            let projection = LogicalPlan::Projection(Projection::try_new(exprs, input)?);
            Ok(Transformed::yes(LogicalPlan::Distinct(Distinct::All(Arc::new(projection)))))
        }
        LogicalPlan::Sort(mut sort) => {
            let schema = sort.input.schema().clone();
            let mut changed = false;
            for SortExpr { expr, .. } in sort.expr.iter_mut() {
                if is_interval(expr, &schema) {
                    *expr = interval_key().call(vec![expr.clone()]);
                    changed = true;
                }
            }
            Ok(if changed {
                Transformed::yes(LogicalPlan::Sort(sort))
            } else {
                Transformed::no(LogicalPlan::Sort(sort))
            })
        }
        other => Ok(Transformed::no(other)),
    }
}

/// `count(DISTINCT iv)` and other DISTINCT aggregates of intervals count equal values
/// once (`'24 hours'` and `'1 day'` are one), by their justified form, as `GROUP BY` does.
fn distinct_intervals_by_value(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    match e {
        Expr::AggregateFunction(mut f)
            if f.params.distinct && f.params.args.iter().any(|a| is_interval(a, schema)) =>
        {
            f.params.args = std::mem::take(&mut f.params.args)
                .into_iter()
                .map(|a| match is_interval(&a, schema) {
                    true => justify_interval().call(vec![a]),
                    false => a,
                })
                .collect();
            Ok(Transformed::yes(Expr::AggregateFunction(f)))
        }
        other => Ok(Transformed::no(other)),
    }
}

/// `min(iv)` / `max(iv)` as the same aggregate of `interval_key(iv)`: the least and greatest
/// by value, as in Postgres (`1 mon` is less than `31 days`), where DataFusion's compare
/// months, then days, then nanoseconds. The caller turns the key back into an interval.
fn min_max_over_key(e: &Expr, schema: &DFSchema) -> Option<Expr> {
    let Expr::AggregateFunction(f) = e else { return None };
    let [argument] = f.params.args.as_slice() else { return None };
    if !matches!(f.func.name(), "min" | "max") || !is_interval(argument, schema) {
        return None;
    }
    let mut keyed = f.clone();
    keyed.params.args = vec![interval_key().call(vec![argument.clone()])];
    Some(Expr::AggregateFunction(keyed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(months: i32, days: i32, nanoseconds: i64) -> IntervalMonthDayNano {
        IntervalMonthDayNano { months, days, nanoseconds }
    }

    #[test]
    fn a_day_is_24_hours_and_a_month_30_days() {
        let hour = 3_600_000_000_000;
        assert_eq!(key(iv(0, 1, 0)), key(iv(0, 0, 24 * hour)));
        assert_eq!(key(iv(1, 0, 0)), key(iv(0, 30, 0)));
        assert!(key(iv(0, 40, 0)) > key(iv(1, 0, 0)));
    }

    #[test]
    fn justify_carries_like_postgres() {
        let hour = 3_600_000_000_000;
        assert_eq!(justify(iv(0, 0, 24 * hour)), Some(iv(0, 1, 0)));
        assert_eq!(justify(iv(0, 35, 25 * hour)), Some(iv(1, 6, hour)));
        // justify_interval('1 mon -1 hour') = '29 days 23:00:00'
        assert_eq!(justify(iv(1, 0, -hour)), Some(iv(0, 29, 23 * hour)));
    }
}
