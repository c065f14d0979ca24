//! Weir's SQL semantics on top of DataFusion's function library: the functions and rules
//! that make results match Postgres where DataFusion's defaults differ. One context
//! builder serves both the batch queries the server plans and the expressions streaming
//! operators compile, so a view computes exactly what the same `SELECT` returns.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::DFSchema;
use datafusion::execution::config::SessionConfig;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{ColumnarValue, Expr, LogicalPlan};
use datafusion::prelude::SessionContext;

/// Equality and hashing for a function that wraps one of DataFusion's (an
/// `Arc<dyn ScalarUDFImpl>`, which has neither): two are the same function when `$key`
/// (computed from `$s`, the function) is equal.
macro_rules! udf_identity {
    ($t:ty, |$s:ident| $key:expr) => {
        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                let key = |$s: &Self| $key;
                key(self) == key(other)
            }
        }
        impl Eq for $t {}
        impl std::hash::Hash for $t {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                let key = |$s: &Self| $key;
                key(self).hash(state)
            }
        }
    };
}

mod boolean_tests;
mod date_arithmetic;
mod date_trunc;
pub mod datetime_text;
mod float_division;
mod generate_series;
mod integer_arithmetic;
mod interval;
mod interval_arithmetic;
pub mod interval_text;
pub mod numeric;
pub mod numeric_aggregates;
mod numeric_div;
mod numeric_mul;
mod numeric_rounding;
pub mod numeric_special;
mod numeric_special_rule;
mod numeric_to_integer;
mod numeric_to_text;
mod series_values;
mod statement_time;
mod text_to_numeric;
pub mod text_to_timestamp;
mod timestamp_diff;
pub mod timestamp_input;
mod timestamp_range;
mod timestamp_to_text;

pub use text_to_numeric::parse_numeric;
mod to_char;
mod to_timestamp;
mod zone_abbreviations;

pub use numeric_aggregates::decimal_result as sum_avg_decimal_result;

/// A DataFusion context with Weir's semantics: decimal literals are `numeric`, numeric
/// arithmetic and aggregates are exact or raise `22003`, intervals compare and group by
/// their normalized value.
pub fn session_context(config: SessionConfig) -> SessionContext {
    session_context_with_runtime(config, Default::default(), Vec::new())
}

/// [`session_context`] whose queries run in `runtime` (its memory pool, its spill files),
/// with `physical_rules` run after DataFusion's physical optimizer rules.
pub fn session_context_with_runtime(
    config: SessionConfig,
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    physical_rules: Vec<Arc<dyn datafusion::physical_optimizer::PhysicalOptimizerRule + Send + Sync>>,
) -> SessionContext {
    let config = config
        .set_bool("datafusion.sql_parser.parse_float_as_decimal", true)
        // `timestamp with time zone` literals and casts are UTC-tagged, as Weir's
        // timestamptz columns are (DataFusion made them `timestamp` without a zone).
        .set_str("datafusion.execution.time_zone", "+00:00");
    let state = physical_rules.into_iter().fold(
        datafusion::execution::session_state::SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features(),
        |state, rule| state.with_physical_optimizer_rule(rule),
    );
    let mut ctx = SessionContext::new_with_state(state.build());
    ctx.register_udaf(numeric_aggregates::sum());
    ctx.register_udaf(numeric_aggregates::avg());
    // Postgres' `variance` is `var_samp` (DataFusion has no `variance`).
    let var_samp = datafusion::functions_aggregate::variance::var_samp_udaf();
    ctx.register_udaf(var_samp.as_ref().clone().with_aliases(["variance"]));
    ctx.register_udf(numeric_mul::numeric_mul());
    ctx.register_udf(numeric_div::numeric_div());
    ctx.register_udf(float_division::float_div());
    for checked in [
        integer_arithmetic::int_add(),
        integer_arithmetic::int_sub(),
        integer_arithmetic::int_mul(),
        integer_arithmetic::int_div(),
        integer_arithmetic::int_mod(),
    ] {
        ctx.register_udf(checked);
    }
    // First, before other rules read the types of casts and literals.
    ctx.add_analyzer_rule(Arc::new(timestamp_range::MicrosecondTimestamps));
    ctx.add_analyzer_rule(Arc::new(integer_arithmetic::IntegerNegation));
    ctx.add_analyzer_rule(Arc::new(boolean_tests::BooleanTests));
    // Postgres' timestamp and date input, after the rule above made the casts microseconds.
    ctx.register_udf(text_to_timestamp::text_to_timestamp());
    ctx.add_analyzer_rule(Arc::new(text_to_timestamp::TextToTimestamp));
    ctx.register_udf(interval::interval_key());
    ctx.register_udf(interval::justify_interval());
    ctx.register_udf(interval::interval_from_key());
    ctx.register_udf(interval_arithmetic::interval_mul());
    ctx.register_udf(interval_arithmetic::interval_div());
    // Postgres' patterns, replacing DataFusion's chrono-format to_char.
    ctx.register_udf(to_char::to_char());
    ctx.register_udf(date_trunc::date_trunc());
    // `timestamp with time zone`, replacing DataFusion's `timestamp`; and `localtimestamp`.
    ctx.register_udf(statement_time::now());
    ctx.register_udf(statement_time::localtimestamp());
    ctx.register_udf(timestamp_diff::timestamp_diff());
    for text in timestamp_to_text::timestamp_text_udfs() {
        ctx.register_udf(text);
    }
    ctx.register_udf(interval_text::interval_text());
    ctx.add_analyzer_rule(Arc::new(timestamp_to_text::TimestampToText));
    ctx.register_udf(date_arithmetic::date_add_days());
    ctx.register_udf(to_timestamp::to_timestamp());
    ctx.register_udf(to_timestamp::to_date());
    ctx.add_analyzer_rule(Arc::new(interval::IntervalGrouping));
    ctx.register_udf(numeric_to_integer::numeric_round());
    ctx.add_analyzer_rule(Arc::new(numeric_to_integer::NumericToInteger));
    ctx.register_udf(text_to_numeric::text_to_numeric());
    // Replacing DataFusion's: whole numbers for a numeric argument.
    ctx.register_udf(numeric_rounding::ceil());
    ctx.register_udf(numeric_rounding::floor());
    ctx.register_udf(numeric_rounding::round());
    ctx.add_analyzer_rule(Arc::new(text_to_numeric::TextToNumeric));
    ctx.register_udf(numeric_to_text::numeric_to_text());
    ctx.add_analyzer_rule(Arc::new(numeric_to_text::NumericToText));
    // NaN and ±Infinity: last, so that it sees every cast and operator the rules above leave.
    for special in [
        numeric_special::numeric_arith(),
        numeric_special::numeric_neg(),
        numeric_special::numeric_cast(),
        numeric_special::numeric_to_float(),
        numeric_special::float_to_numeric(),
        numeric_special::numeric_finite(),
        numeric_special::abs(),
        numeric_special::trunc(),
    ] {
        ctx.register_udf(special);
    }
    ctx.add_analyzer_rule(Arc::new(numeric_special_rule::NumericSpecialValues));
    // Postgres' result types for `generate_series` in FROM, replacing DataFusion's.
    match ctx.table_function("generate_series") {
        Ok(series) => ctx.register_udtf(
            "generate_series",
            generate_series::generate_series(Arc::clone(series.function())),
        ),
        Err(e) => tracing::error!("DataFusion's generate_series not found: {e}"),
    }
    // Registered planners are consulted after DataFusion's own, which leave `*` and
    // comparisons alone.
    for planner in [
        Arc::new(numeric_mul::NumericSemantics) as Arc<dyn datafusion::logical_expr::planner::ExprPlanner>,
        Arc::new(interval::IntervalComparisons),
        Arc::new(interval_arithmetic::IntervalArithmetic),
        Arc::new(date_arithmetic::DateArithmetic),
        Arc::new(integer_arithmetic::IntegerOverflow),
        Arc::new(float_division::FloatDivision),
        Arc::new(timestamp_diff::TimestampSubtraction),
    ] {
        if let Err(e) = ctx.register_expr_planner(planner) {
            tracing::error!("Weir's expression planner not registered: {e}");
        }
    }
    ctx
}

/// A function's result: one value when every argument was one (`scalar`), else the column.
pub(crate) fn columnar(
    out: arrow::array::ArrayRef,
    scalar: bool,
) -> datafusion::error::Result<ColumnarValue> {
    match scalar {
        true => Ok(ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&out, 0)?)),
        false => Ok(ColumnarValue::Array(out)),
    }
}

/// Rewrites every expression of every node of `plan` (subqueries included) bottom-up with
/// `rewrite`, which sees the schema of the node's input. The nodes keep their output
/// column names. Joins (two inputs) are left as they are.
pub(crate) fn rewrite_plan_expressions(
    plan: LogicalPlan,
    rewrite: fn(Expr, &DFSchema) -> datafusion::error::Result<Transformed<Expr>>,
) -> datafusion::error::Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| {
        // Expressions read the columns of the node's one input; a leaf's (VALUES) read none.
        let schema: Arc<DFSchema> = match node.inputs().as_slice() {
            [input] => Arc::clone(input.schema()),
            [] => Arc::new(DFSchema::empty()),
            _ => return Ok(Transformed::no(node)),
        };
        let names = NamePreserver::new(&node);
        node.map_expressions(|e| {
            let name = names.save(&e);
            Ok(e.transform_up(|e| rewrite(e, &schema))?.update_data(|e| name.restore(e)))
        })
    })
    .map(|t| t.data)
}
