//! A `numeric` cast to an integer type rounds half away from zero, as Postgres does
//! (`CAST(2.5 AS integer)` is 3, `CAST(-437830.564 AS bigint)` is -437831); Arrow's cast
//! truncates, a wrong answer `pg_differential.py` found. [`NumericToInteger`] rounds the
//! value first, with `numeric_round`, in every cast of a plan — written ones and those
//! coercion adds (an INSERT of a `numeric` into an `integer` column). A `double precision`
//! or `real` cast to an integer type rounds half to even, as Postgres' (`rint`), with
//! `round` (found by `pg_table_differential.py`).

use std::sync::Arc;

use arrow::array::{Array, AsArray, Decimal128Array};
use arrow::datatypes::{i256, DataType, Decimal128Type};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::{Cast, TryCast};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use super::numeric::fit;

/// `numeric_round(x)`: `x` rounded half away from zero to a whole number, as `numeric(38, 0)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct NumericRound {
    signature: Signature,
}

pub fn numeric_round() -> ScalarUDF {
    ScalarUDF::new_from_impl(NumericRound { signature: Signature::any(1, Volatility::Immutable) })
}

impl ScalarUDFImpl for NumericRound {
    fn name(&self) -> &str {
        "numeric_round"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [DataType::Decimal128(..)] => Ok(DataType::Decimal128(38, 0)),
            other => Err(DataFusionError::Plan(format!("numeric_round of {other:?}"))),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        // The special values stay: the cast around this raises Postgres' error for them.
        super::numeric_special::keep_specials(args, round_numbers)
    }
}

fn round_numbers(args: ScalarFunctionArgs) -> Result<ColumnarValue> {
    let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
    let input = args.args[0].to_array(if scalar { 1 } else { args.number_rows })?;
    let DataType::Decimal128(_, scale) = input.data_type() else {
        return Err(DataFusionError::Internal("numeric_round of a non-decimal".into()));
    };
    let values = input.as_primitive::<Decimal128Type>();
    let rounded = values
        .iter()
        .map(|v| v.map(|v| fit(i256::from_i128(v), *scale, 38, 0)).transpose())
        .collect::<Result<Decimal128Array>>()?
        .with_precision_and_scale(38, 0)?;
    let out: Arc<dyn Array> = Arc::new(rounded);
    super::columnar(out, scalar)
}

fn is_integer(t: &DataType) -> bool {
    matches!(t, DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64)
}

/// Rounds the `numeric` operand of every cast to an integer type.
#[derive(Debug, Default)]
pub struct NumericToInteger;

impl AnalyzerRule for NumericToInteger {
    fn name(&self) -> &str {
        "weir_numeric_to_integer"
    }
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        super::rewrite_plan_expressions(plan, rewrite_expr)
    }
}

fn rewrite_expr(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let decimal = |inner: &Expr| matches!(inner.get_type(schema), Ok(DataType::Decimal128(_, s)) if s > 0);
    let float = |inner: &Expr| matches!(inner.get_type(schema), Ok(DataType::Float32 | DataType::Float64));
    match e {
        Expr::Cast(Cast { expr, field }) if is_integer(field.data_type()) && decimal(&expr) => {
            Ok(Transformed::yes(Expr::Cast(Cast {
                expr: Box::new(numeric_round().call(vec![*expr])),
                field,
            })))
        }
        Expr::TryCast(TryCast { expr, field }) if is_integer(field.data_type()) && decimal(&expr) => {
            Ok(Transformed::yes(Expr::TryCast(TryCast {
                expr: Box::new(numeric_round().call(vec![*expr])),
                field,
            })))
        }
        // A float rounds half to even, as Postgres' rint (`CAST(2.5::float8 AS int)` is 2,
        // `CAST(1.5::float8 AS bigint)` 2); Arrow's cast truncated (1).
        Expr::Cast(Cast { expr, field }) if is_integer(field.data_type()) && float(&expr) => {
            Ok(Transformed::yes(Expr::Cast(Cast {
                expr: Box::new(super::numeric_rounding::round().call(vec![*expr])),
                field,
            })))
        }
        other => Ok(Transformed::no(other)),
    }
}
