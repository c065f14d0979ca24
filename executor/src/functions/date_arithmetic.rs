//! `date ± integer` and `integer + date` as Postgres has them: a `date` that many days later
//! (or earlier), `22008 date out of range` past the type's range.
//!
//! DataFusion plans these itself by turning the integer into an interval (`CAST(CAST(n *
//! 86400 AS Duration(s)) AS Interval)`); the range analysis it runs on every filter cannot
//! follow those casts, so a `WHERE d = DATE '…' + n` failed to plan with an internal error
//! (found by the SQL fuzzer). [`DateArithmetic`] plans them as the function `date_add_days`,
//! which that analysis leaves alone.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Date32Array};
use arrow::datatypes::{DataType, Date32Type, Int64Type};
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    cast, ColumnarValue, Expr, ExprSchemable, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;

/// `date_add_days(d, n)` (or `(n, d)`, the operands kept in the order they were written, so
/// that `d + 5` and `5 + d` in one select list are two expressions): the date `n` days after
/// `d`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct DateAddDays {
    signature: Signature,
}

pub fn date_add_days() -> ScalarUDF {
    ScalarUDF::new_from_impl(DateAddDays {
        signature: Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Date32, DataType::Int64]),
                TypeSignature::Exact(vec![DataType::Int64, DataType::Date32]),
            ],
            Volatility::Immutable,
        ),
    })
}

fn add_days(date: i32, days: i64) -> Result<i32> {
    i64::from(date)
        .checked_add(days)
        .and_then(|d| i32::try_from(d).ok())
        .ok_or_else(|| crate::error::ExecError::DatetimeOverflow("date out of range".into()).into())
}

impl ScalarUDFImpl for DateAddDays {
    fn name(&self) -> &str {
        "date_add_days"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if scalar { 1 } else { args.number_rows };
        let (date, days) = match args.args.as_slice() {
            [a, b] if a.data_type() == DataType::Date32 => (a, b),
            [a, b] => (b, a),
            _ => return Err(DataFusionError::Internal("date_add_days takes two arguments".into())),
        };
        let (dates, days) = (date.to_array(rows)?, days.to_array(rows)?);
        let (dates, days) = (dates.as_primitive::<Date32Type>(), days.as_primitive::<Int64Type>());
        let out = (0..rows)
            .map(|i| {
                (dates.is_valid(i) && days.is_valid(i))
                    .then(|| add_days(dates.value(i), days.value(i)))
                    .transpose()
            })
            .collect::<Result<Date32Array>>()?;
        let out: Arc<dyn Array> = Arc::new(out);
        super::columnar(out, scalar)
    }
}

/// Plans `date + integer`, `integer + date` and `date - integer`.
#[derive(Debug, Default)]
pub struct DateArithmetic;

impl ExprPlanner for DateArithmetic {
    fn plan_binary_op(&self, expr: RawBinaryExpr, schema: &DFSchema) -> Result<PlannerResult<RawBinaryExpr>> {
        let (Ok(l), Ok(r)) = (expr.left.get_type(schema), expr.right.get_type(schema)) else {
            return Ok(PlannerResult::Original(expr));
        };
        let date = |t: &DataType| matches!(t, DataType::Date32);
        let integer = |t: &DataType| t.is_integer();
        let days = |e: Expr| cast(e, DataType::Int64);
        Ok(match expr.op {
            BinaryOperator::Plus if date(&l) && integer(&r) => {
                PlannerResult::Planned(date_add_days().call(vec![expr.left, days(expr.right)]))
            }
            BinaryOperator::Plus if integer(&l) && date(&r) => {
                PlannerResult::Planned(date_add_days().call(vec![days(expr.left), expr.right]))
            }
            BinaryOperator::Minus if date(&l) && integer(&r) => {
                PlannerResult::Planned(date_add_days().call(vec![expr.left, -days(expr.right)]))
            }
            _ => PlannerResult::Original(expr),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_added_and_the_range_is_checked() {
        assert_eq!(add_days(0, 5).ok(), Some(5));
        assert_eq!(add_days(10, -11).ok(), Some(-1));
        assert!(add_days(i32::MAX, 1).is_err());
        assert!(add_days(0, i64::MIN).is_err());
    }
}
