//! Timestamps keep Postgres' range (4713 BC to 294276 AD) by staying in microseconds.
//!
//! Weir stores `timestamp` and `timestamp with time zone` as Arrow microseconds (about
//! ±292,000 years around 1970); DataFusion's own timestamp type is nanoseconds, which end
//! in the years 1677 and 2262. DataFusion types `TIMESTAMP '…'` literals and `CAST(… AS
//! timestamp)` as nanoseconds, and coerces a date compared with a timestamp (or a
//! microsecond timestamp compared with a nanosecond one) to nanoseconds, so a row in the
//! year 2300 failed a query, and a view's job, with "converted value exceeds the
//! representable i64 range". The planner names `timestamp` as `timestamp(6)` (see
//! `pg_rewrite`), and [`MicrosecondTimestamps`] makes every cast to a nanosecond timestamp
//! that DataFusion's coercion adds (and every nanosecond literal) microseconds, so
//! comparisons, `CASE`, `COALESCE` and `UNION` of dates and timestamps compute in the range
//! the columns have. (`date_bin`'s origin stays nanoseconds, the only unit DataFusion's
//! function takes.)

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::expr::{Cast, TryCast};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, Union};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub struct MicrosecondTimestamps;

impl AnalyzerRule for MicrosecondTimestamps {
    fn name(&self) -> &str {
        "weir_microsecond_timestamps"
    }
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            if let LogicalPlan::Union(union) = node {
                // A union's columns take its inputs' (new) types.
                let changed = union.inputs.iter().any(|input| {
                    input
                        .schema()
                        .fields()
                        .iter()
                        .zip(union.schema.fields())
                        .any(|(a, b)| a.data_type() != b.data_type())
                });
                return match changed {
                    true => Ok(Transformed::yes(LogicalPlan::Union(Union::try_new_with_loose_types(
                        union.inputs,
                    )?))),
                    false => Ok(Transformed::no(LogicalPlan::Union(union))),
                };
            }
            // Expressions read the columns of the node's inputs (both sides of a join).
            let schema = match node.inputs().as_slice() {
                [] => DFSchema::empty(),
                [input] => input.schema().as_ref().clone(),
                [left, right, ..] => {
                    let mut joined = left.schema().as_ref().clone();
                    joined.merge(right.schema());
                    joined
                }
            };
            let names = NamePreserver::new(&node);
            let node = node.map_expressions(|e| {
                let name = names.save(&e);
                Ok(e.transform_up(|e| in_microseconds(e, &schema))?.update_data(|e| name.restore(e)))
            })?;
            // An input's column may have changed type even where this node's expressions
            // did not.
            node.map_data(|n| n.recompute_schema())
        })
        .map(|t| t.data)
    }
}

/// A nanosecond timestamp type's microsecond counterpart.
fn microseconds(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Timestamp(TimeUnit::Nanosecond, zone) => {
            Some(DataType::Timestamp(TimeUnit::Microsecond, zone.clone()))
        }
        _ => None,
    }
}

/// Whether `expr` computes nanoseconds itself (a function of DataFusion's): a cast of it
/// stays as DataFusion planned it.
fn is_nanoseconds(expr: &Expr, schema: &DFSchema) -> bool {
    matches!(expr.get_type(schema), Ok(DataType::Timestamp(TimeUnit::Nanosecond, _)))
}

fn in_microseconds(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    match e {
        Expr::Literal(ScalarValue::TimestampNanosecond(v, zone), metadata) => {
            // Postgres keeps microseconds: a finer literal is rounded to them.
            let micros = v.map(|v| v.div_euclid(1000) + i64::from(v.rem_euclid(1000) >= 500));
            Ok(Transformed::yes(Expr::Literal(ScalarValue::TimestampMicrosecond(micros, zone), metadata)))
        }
        Expr::Cast(Cast { expr, field }) => match microseconds(field.data_type()) {
            Some(to) if !is_nanoseconds(&expr, schema) => {
                Ok(Transformed::yes(Expr::Cast(Cast::new(expr, to))))
            }
            _ => Ok(Transformed::no(Expr::Cast(Cast { expr, field }))),
        },
        Expr::TryCast(TryCast { expr, field }) => match microseconds(field.data_type()) {
            Some(to) if !is_nanoseconds(&expr, schema) => {
                Ok(Transformed::yes(Expr::TryCast(TryCast::new(expr, to))))
            }
            _ => Ok(Transformed::no(Expr::TryCast(TryCast { expr, field }))),
        },
        // DataFusion's `date_bin` takes its origin in nanoseconds only.
        Expr::ScalarFunction(mut f) if f.name() == "date_bin" && f.args.len() == 3 => {
            match f.args[2].get_type(schema) {
                Ok(DataType::Timestamp(unit, zone)) if unit != TimeUnit::Nanosecond => {
                    let origin = f.args[2].clone();
                    f.args[2] = Expr::Cast(Cast::new(
                        Box::new(origin),
                        DataType::Timestamp(TimeUnit::Nanosecond, zone),
                    ));
                    Ok(Transformed::yes(Expr::ScalarFunction(f)))
                }
                _ => Ok(Transformed::no(Expr::ScalarFunction(f))),
            }
        }
        other => Ok(Transformed::no(other)),
    }
}
