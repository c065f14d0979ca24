//! `x IS [NOT] TRUE`, `x IS [NOT] FALSE` and `x IS [NOT] UNKNOWN` as expressions whose
//! physical plan agrees with the logical one about NULLs.
//!
//! DataFusion's logical `IS TRUE` is never NULL, but its physical expression (an
//! `IS NOT DISTINCT FROM true`) says it may be, so a query that computes one below an
//! aggregate (`SELECT DISTINCT x IS TRUE FROM t`, or a subquery's `x IS TRUE AS b` grouped
//! by `b`) failed with "Physical input schema should be the same as the one converted from
//! logical input schema" (found by `pg_table_differential.py`). [`BooleanTests`] plans them
//! as `coalesce`, which both agree is never NULL when its last argument is not:
//! `x IS TRUE` is `coalesce(x, false)`, `x IS NOT FALSE` is `coalesce(x, true)`, and so on;
//! `x IS UNKNOWN` is `x IS NULL`.

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::DFSchema;
use datafusion::error::Result;
use datafusion::functions::expr_fn::coalesce;
use datafusion::logical_expr::{lit, not, Expr, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub struct BooleanTests;

impl AnalyzerRule for BooleanTests {
    fn name(&self) -> &str {
        "weir_boolean_tests"
    }
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        super::rewrite_plan_expressions(plan, rewrite_expr)
    }
}

fn rewrite_expr(e: Expr, _schema: &DFSchema) -> Result<Transformed<Expr>> {
    Ok(Transformed::yes(match e {
        Expr::IsTrue(x) => coalesce(vec![*x, lit(false)]),
        Expr::IsNotTrue(x) => not(coalesce(vec![*x, lit(false)])),
        Expr::IsFalse(x) => coalesce(vec![not(*x), lit(false)]),
        Expr::IsNotFalse(x) => coalesce(vec![*x, lit(true)]),
        Expr::IsUnknown(x) => x.is_null(),
        Expr::IsNotUnknown(x) => x.is_not_null(),
        other => return Ok(Transformed::no(other)),
    }))
}
