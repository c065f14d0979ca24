//! Weir's SQL semantics on top of DataFusion's function library: the functions and rules
//! that make results match Postgres where DataFusion's defaults differ. One context
//! builder serves both the batch queries the server plans and the expressions streaming
//! operators compile, so a view computes exactly what the same `SELECT` returns.

use std::sync::Arc;

use datafusion::execution::config::SessionConfig;
use datafusion::execution::FunctionRegistry;
use datafusion::prelude::SessionContext;

pub mod numeric;
mod numeric_aggregates;
mod numeric_mul;

pub use numeric_aggregates::decimal_result as sum_avg_decimal_result;

/// A DataFusion context with Weir's semantics: decimal literals are `numeric`, numeric
/// arithmetic and aggregates are exact or raise `22003`.
pub fn session_context(config: SessionConfig) -> SessionContext {
    let config = config.set_bool("datafusion.sql_parser.parse_float_as_decimal", true);
    let mut ctx = SessionContext::new_with_config(config);
    ctx.register_udaf(numeric_aggregates::sum());
    ctx.register_udaf(numeric_aggregates::avg());
    ctx.register_udf(numeric_mul::numeric_mul());
    // Registered planners are consulted after DataFusion's own, which leave `*` alone.
    if let Err(e) = ctx.register_expr_planner(Arc::new(numeric_mul::NumericSemantics)) {
        tracing::error!("numeric semantics not registered: {e}");
    }
    ctx
}
