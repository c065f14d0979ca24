//! Weir's SQL semantics on top of DataFusion's function library: the functions and rules
//! that make results match Postgres where DataFusion's defaults differ. One context
//! builder serves both the batch queries the server plans and the expressions streaming
//! operators compile, so a view computes exactly what the same `SELECT` returns.

use std::sync::Arc;

use datafusion::execution::config::SessionConfig;
use datafusion::execution::FunctionRegistry;
use datafusion::prelude::SessionContext;

mod float_division;
mod integer_arithmetic;
mod interval;
pub mod numeric;
mod numeric_aggregates;
mod numeric_mul;
mod numeric_rounding;
mod numeric_to_integer;
mod text_to_numeric;

pub use text_to_numeric::parse_numeric;
mod to_char;

pub use numeric_aggregates::decimal_result as sum_avg_decimal_result;

/// A DataFusion context with Weir's semantics: decimal literals are `numeric`, numeric
/// arithmetic and aggregates are exact or raise `22003`, intervals compare and group by
/// their normalized value.
pub fn session_context(config: SessionConfig) -> SessionContext {
    let config = config.set_bool("datafusion.sql_parser.parse_float_as_decimal", true);
    let mut ctx = SessionContext::new_with_config(config);
    ctx.register_udaf(numeric_aggregates::sum());
    ctx.register_udaf(numeric_aggregates::avg());
    ctx.register_udf(numeric_mul::numeric_mul());
    ctx.register_udf(float_division::float_div());
    for checked in
        [integer_arithmetic::int_add(), integer_arithmetic::int_sub(), integer_arithmetic::int_mul()]
    {
        ctx.register_udf(checked);
    }
    ctx.register_udf(interval::interval_key());
    ctx.register_udf(interval::justify_interval());
    // Postgres' patterns, replacing DataFusion's chrono-format to_char.
    ctx.register_udf(to_char::to_char());
    ctx.add_analyzer_rule(Arc::new(interval::IntervalGrouping));
    ctx.register_udf(numeric_to_integer::numeric_round());
    ctx.add_analyzer_rule(Arc::new(numeric_to_integer::NumericToInteger));
    ctx.register_udf(text_to_numeric::text_to_numeric());
    // Replacing DataFusion's: whole numbers for a numeric argument.
    ctx.register_udf(numeric_rounding::ceil());
    ctx.register_udf(numeric_rounding::floor());
    ctx.register_udf(numeric_rounding::round());
    ctx.add_analyzer_rule(Arc::new(text_to_numeric::TextToNumeric));
    // Registered planners are consulted after DataFusion's own, which leave `*` and
    // comparisons alone.
    for planner in [
        Arc::new(numeric_mul::NumericSemantics) as Arc<dyn datafusion::logical_expr::planner::ExprPlanner>,
        Arc::new(interval::IntervalComparisons),
        Arc::new(integer_arithmetic::IntegerOverflow),
        Arc::new(float_division::FloatDivision),
    ] {
        if let Err(e) = ctx.register_expr_planner(planner) {
            tracing::error!("Weir's expression planner not registered: {e}");
        }
    }
    ctx
}
