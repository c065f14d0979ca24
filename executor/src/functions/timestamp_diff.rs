//! `timestamp - timestamp` is an `interval`, as in Postgres: whole days and the time left
//! over (`timestamp '2026-01-01' - timestamp '2020-01-01'` is `2192 days`, `'… 10:30' -
//! '… 00:00'` is `10:30:00`), never months.
//!
//! DataFusion made it a `Duration`, which Weir printed as hours (`52608:00:00`) and which
//! compared with an interval as false (`now() - ts > interval '1 day'` was false for a
//! timestamp years back): a wrong answer. `timestamp with time zone` operands are read in
//! UTC, the session's only time zone, so they subtract with `timestamp`s too.

use std::sync::Arc;

use arrow::array::{Array, AsArray, IntervalMonthDayNanoArray};
use arrow::datatypes::{DataType, IntervalMonthDayNano, TimeUnit, TimestampMicrosecondType};
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    cast, ColumnarValue, Expr, ExprSchemable, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;

const MICROS_PER_DAY: i64 = 86_400_000_000;

fn interval_type() -> DataType {
    DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano)
}

/// `timestamp_diff(a, b)`: `a - b` as an interval of days and time.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TimestampDiff {
    signature: Signature,
}

/// Any two timestamps: a view's operators compile the call again over their own input
/// types (a window's bounds are in nanoseconds there), so the arguments are brought to
/// microseconds when it runs.
pub fn timestamp_diff() -> ScalarUDF {
    ScalarUDF::new_from_impl(TimestampDiff { signature: Signature::any(2, Volatility::Immutable) })
}

/// `value` as microseconds without a time zone (UTC).
pub(super) fn as_micros(value: &ColumnarValue, rows: usize) -> Result<arrow::array::ArrayRef> {
    let micros = DataType::Timestamp(TimeUnit::Microsecond, None);
    Ok(arrow::compute::cast(&value.to_array(rows)?, &micros)?)
}

/// Postgres' `timestamp_mi`: the difference in microseconds, whole days moved out of the
/// time (both keep the difference's sign), `22008` if it does not fit.
fn difference(a: i64, b: i64) -> Result<IntervalMonthDayNano> {
    let overflow =
        || DataFusionError::from(crate::error::ExecError::DatetimeOverflow("interval out of range".into()));
    let micros = a.checked_sub(b).ok_or_else(overflow)?;
    let days = i32::try_from(micros / MICROS_PER_DAY).map_err(|_| overflow())?;
    Ok(IntervalMonthDayNano { months: 0, days, nanoseconds: (micros % MICROS_PER_DAY) * 1000 })
}

impl ScalarUDFImpl for TimestampDiff {
    fn name(&self) -> &str {
        "timestamp_diff"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(interval_type())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if scalar { 1 } else { args.number_rows };
        let [a, b] = args.args.as_slice() else {
            return Err(DataFusionError::Internal("timestamp_diff takes two arguments".into()));
        };
        let (a, b) = (as_micros(a, rows)?, as_micros(b, rows)?);
        let (a, b) =
            (a.as_primitive::<TimestampMicrosecondType>(), b.as_primitive::<TimestampMicrosecondType>());
        let out = (0..rows)
            .map(|i| (a.is_valid(i) && b.is_valid(i)).then(|| difference(a.value(i), b.value(i))).transpose())
            .collect::<Result<IntervalMonthDayNanoArray>>()?;
        super::columnar(Arc::new(out), scalar)
    }
}

/// Plans `timestamp - timestamp` (either with or without a time zone) as `timestamp_diff`.
#[derive(Debug, Default)]
pub struct TimestampSubtraction;

impl ExprPlanner for TimestampSubtraction {
    fn plan_binary_op(&self, expr: RawBinaryExpr, schema: &DFSchema) -> Result<PlannerResult<RawBinaryExpr>> {
        let timestamp = |e: &Expr| matches!(e.get_type(schema), Ok(DataType::Timestamp(..)));
        if expr.op != BinaryOperator::Minus || !timestamp(&expr.left) || !timestamp(&expr.right) {
            return Ok(PlannerResult::Original(expr));
        }
        let micros = |e: Expr| cast(e, DataType::Timestamp(TimeUnit::Microsecond, None));
        Ok(PlannerResult::Planned(timestamp_diff().call(vec![micros(expr.left), micros(expr.right)])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_days_and_time_with_their_sign() {
        let hours = |h: i64| h * 3_600_000_000;
        let d = difference(hours(24 * 2192), 0).ok();
        assert_eq!(d, Some(IntervalMonthDayNano { months: 0, days: 2192, nanoseconds: 0 }));
        let d = difference(hours(10) + 1, 0).ok();
        assert_eq!(d, Some(IntervalMonthDayNano { months: 0, days: 0, nanoseconds: (hours(10) + 1) * 1000 }));
        let d = difference(0, hours(25)).ok();
        assert_eq!(d, Some(IntervalMonthDayNano { months: 0, days: -1, nanoseconds: -hours(1) * 1000 }));
        assert!(difference(i64::MAX, -1).is_err());
    }
}
