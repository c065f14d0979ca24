//! Arithmetic with intervals as Postgres does it.
//!
//! * `date ± interval` is a `timestamp`: `date '2020-01-01' + interval '1 hour'` is
//!   `2020-01-01 01:00:00`. Arrow kept a `date` and dropped the hours: a wrong answer
//!   (`date '2020-01-01' - interval '1 hour'` was `2020-01-01`, not `2019-12-31 23:00`).
//! * `interval * number`, `number * interval` and `interval / number` scale an interval
//!   (DataFusion refused them), with Postgres' carrying of fractions: a fraction of a
//!   month becomes 30-day days, a fraction of a day becomes hours (`interval '1 mon' * 1.5`
//!   is `1 mon 15 days`). Division by zero is `22012`; a result whose months or days
//!   leave 32 bits is `22008` `interval out of range`.
//!
//! [`IntervalArithmetic`] plans these when SQL is planned.

use std::sync::Arc;

use arrow::array::{Array, AsArray, IntervalMonthDayNanoArray};
use arrow::datatypes::{
    DataType, Float64Type, IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit, TimeUnit,
};
use arrow::error::ArrowError;
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    cast, ColumnarValue, Expr, ExprSchemable, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;

const DAYS_PER_MONTH: f64 = 30.0;
const SECONDS_PER_DAY: f64 = 86_400.0;
const NANOS_PER_SECOND: f64 = 1e9;

#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Scaling {
    Multiply,
    Divide,
}

/// `interval_mul(i, f)` / `interval_div(i, f)`: an interval scaled by a `double precision`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ScaleInterval {
    scaling: Scaling,
    signature: Signature,
}

pub fn interval_mul() -> ScalarUDF {
    ScalarUDF::new_from_impl(ScaleInterval {
        scaling: Scaling::Multiply,
        signature: Signature::exact(vec![interval_type(), DataType::Float64], Volatility::Immutable),
    })
}

pub fn interval_div() -> ScalarUDF {
    ScalarUDF::new_from_impl(ScaleInterval {
        scaling: Scaling::Divide,
        signature: Signature::exact(vec![interval_type(), DataType::Float64], Volatility::Immutable),
    })
}

fn interval_type() -> DataType {
    DataType::Interval(IntervalUnit::MonthDayNano)
}

/// `22008 interval out of range`, as in Postgres.
fn out_of_range() -> DataFusionError {
    crate::error::ExecError::DatetimeOverflow("interval out of range".into()).into()
}

/// Rounds to microseconds, as Postgres' `TSROUND`.
fn round_to_micros(x: f64) -> f64 {
    (x * 1e6).round_ties_even() / 1e6
}

fn to_i32(x: f64) -> Result<i32> {
    if x.is_nan() || x < f64::from(i32::MIN) || x >= f64::from(i32::MAX) + 1.0 {
        return Err(out_of_range());
    }
    Ok(x.trunc() as i32)
}

/// Postgres' `interval_mul`/`interval_div`: each part scaled, whole months and days kept,
/// their fractions carried down into days and time.
fn scale(v: IntervalMonthDayNano, factor: f64, scaling: Scaling) -> Result<IntervalMonthDayNano> {
    let apply = |x: f64| match scaling {
        Scaling::Multiply => x * factor,
        Scaling::Divide => x / factor,
    };
    if scaling == Scaling::Divide && factor == 0.0 {
        return Err(DataFusionError::ArrowError(Box::new(ArrowError::DivideByZero), None));
    }
    let months_exact = apply(f64::from(v.months));
    let days_exact = apply(f64::from(v.days));
    let months = to_i32(months_exact)?;
    let mut days = to_i32(days_exact)?;
    let month_remainder_days = round_to_micros((months_exact - f64::from(months)) * DAYS_PER_MONTH);
    let whole_remainder_days = month_remainder_days.trunc();
    let mut seconds_remainder = round_to_micros(
        (days_exact - f64::from(days) + month_remainder_days - whole_remainder_days) * SECONDS_PER_DAY,
    );
    if seconds_remainder.abs() >= SECONDS_PER_DAY {
        let carried = (seconds_remainder / SECONDS_PER_DAY).trunc();
        days = days.checked_add(to_i32(carried)?).ok_or_else(out_of_range)?;
        seconds_remainder -= carried * SECONDS_PER_DAY;
    }
    days = days.checked_add(to_i32(whole_remainder_days)?).ok_or_else(out_of_range)?;
    let nanos = (apply(v.nanoseconds as f64) + seconds_remainder * NANOS_PER_SECOND).round_ties_even();
    if !nanos.is_finite() || nanos.abs() >= 9.2e18 {
        return Err(out_of_range());
    }
    Ok(IntervalMonthDayNano { months, days, nanoseconds: nanos as i64 })
}

impl ScalarUDFImpl for ScaleInterval {
    fn name(&self) -> &str {
        match self.scaling {
            Scaling::Multiply => "interval_mul",
            Scaling::Divide => "interval_div",
        }
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
        let [interval, factor] = args.args.as_slice() else {
            return Err(DataFusionError::Internal(format!("{} takes two arguments", self.name())));
        };
        let intervals = interval.to_array(rows)?;
        let factors = factor.to_array(rows)?;
        let (intervals, factors) =
            (intervals.as_primitive::<IntervalMonthDayNanoType>(), factors.as_primitive::<Float64Type>());
        let out = (0..rows)
            .map(|i| {
                (intervals.is_valid(i) && factors.is_valid(i))
                    .then(|| scale(intervals.value(i), factors.value(i), self.scaling))
                    .transpose()
            })
            .collect::<Result<IntervalMonthDayNanoArray>>()?;
        let out: Arc<dyn Array> = Arc::new(out);
        super::columnar(out, scalar)
    }
}

/// Plans `date ± interval`, `interval * number`, `number * interval` and `interval / number`.
#[derive(Debug, Default)]
pub struct IntervalArithmetic;

impl ExprPlanner for IntervalArithmetic {
    fn plan_binary_op(&self, expr: RawBinaryExpr, schema: &DFSchema) -> Result<PlannerResult<RawBinaryExpr>> {
        let (Ok(l), Ok(r)) = (expr.left.get_type(schema), expr.right.get_type(schema)) else {
            return Ok(PlannerResult::Original(expr));
        };
        let interval = |t: &DataType| matches!(t, DataType::Interval(_));
        let date = |t: &DataType| matches!(t, DataType::Date32 | DataType::Date64);
        let number = |t: &DataType| t.is_numeric();
        let timestamp = |e: Expr| cast(e, DataType::Timestamp(TimeUnit::Microsecond, None));
        let float = |e: Expr| cast(e, DataType::Float64);
        let as_interval = |e: Expr, t: &DataType| match t {
            DataType::Interval(IntervalUnit::MonthDayNano) => e,
            _ => cast(e, interval_type()),
        };
        use BinaryOperator::*;
        Ok(match expr.op {
            Plus | Minus if date(&l) && interval(&r) => PlannerResult::Original(RawBinaryExpr {
                op: expr.op,
                left: timestamp(expr.left),
                right: expr.right,
            }),
            Plus if interval(&l) && date(&r) => PlannerResult::Original(RawBinaryExpr {
                op: expr.op,
                left: expr.left,
                right: timestamp(expr.right),
            }),
            Multiply if interval(&l) && number(&r) => PlannerResult::Planned(
                interval_mul().call(vec![as_interval(expr.left, &l), float(expr.right)]),
            ),
            Multiply if number(&l) && interval(&r) => PlannerResult::Planned(
                interval_mul().call(vec![as_interval(expr.right, &r), float(expr.left)]),
            ),
            Divide if interval(&l) && number(&r) => PlannerResult::Planned(
                interval_div().call(vec![as_interval(expr.left, &l), float(expr.right)]),
            ),
            _ => PlannerResult::Original(expr),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(months: i32, days: i32, seconds: f64) -> IntervalMonthDayNano {
        IntervalMonthDayNano { months, days, nanoseconds: (seconds * NANOS_PER_SECOND) as i64 }
    }

    #[test]
    fn fractions_of_months_and_days_carry_down_as_in_postgres() {
        // Postgres: interval '1 mon' * 1.5 = 1 mon 15 days; interval '1 day' * 1.5 = 1 day 12:00:00
        assert_eq!(scale(iv(1, 0, 0.0), 1.5, Scaling::Multiply).ok(), Some(iv(1, 15, 0.0)));
        assert_eq!(scale(iv(0, 1, 0.0), 1.5, Scaling::Multiply).ok(), Some(iv(0, 1, 43_200.0)));
        // interval '1 hour' / 2 = 00:30:00; interval '1 mon 1 day' / 3 = 10 days 08:00:00
        assert_eq!(scale(iv(0, 0, 3600.0), 2.0, Scaling::Divide).ok(), Some(iv(0, 0, 1800.0)));
        assert_eq!(scale(iv(1, 1, 0.0), 3.0, Scaling::Divide).ok(), Some(iv(0, 10, 28_800.0)));
        // interval '-1 mon' * 0.5 = -15 days
        assert_eq!(scale(iv(-1, 0, 0.0), 0.5, Scaling::Multiply).ok(), Some(iv(0, -15, 0.0)));
    }

    #[test]
    fn division_by_zero_and_overflow_are_errors() {
        assert!(scale(iv(0, 1, 0.0), 0.0, Scaling::Divide).is_err());
        assert!(scale(iv(i32::MAX, 0, 0.0), 2.0, Scaling::Multiply).is_err());
    }
}
