//! `generate_series` in `FROM` with Postgres' result types and column name.
//!
//! DataFusion's series is always `bigint` (or a nanosecond `timestamp`) in a column named
//! `value`; Postgres' is `integer` for integer arguments, `bigint` when one is a `bigint`,
//! `timestamp` / `timestamp with time zone` for a timestamp or date series with an
//! interval step, in a column named `generate_series`. [`generate_series`] wraps
//! DataFusion's function: DataFusion still produces the values (lazily, batch by batch),
//! and a projection casts them to Postgres' type, with microsecond timestamps as Weir
//! stores them (a nanosecond series ended in the year 2262).
//!
//! A step of zero is Postgres' `22023` "step size cannot equal zero". DataFusion
//! constant-folds the arguments before they get here, where a `bigint` literal and an
//! `integer` one cast to `bigint` look alike: the planner makes integer literals that fit
//! 32 bits `integer` first (`pg_rewrite`). A series of `numeric` arguments (`numeric`
//! values, at the largest scale of the arguments) and a timestamp or date series with an
//! interval step are Weir's own ([`super::series_values`]): DataFusion's takes no
//! decimals and counts timestamps in nanoseconds, which end in the year 2262. `NaN` and
//! the infinities are Postgres' `22023` errors.

use std::sync::Arc;

use arrow::datatypes::{i256, DataType, Field, IntervalMonthDayNano, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_expr::expressions::{CastExpr, Column};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::ExecutionPlan;

use super::series_values::{interval_sign, SeriesTable, SeriesValues};

/// Postgres' `generate_series(start, stop [, step])`, wrapping DataFusion's (`inner`).
pub fn generate_series(inner: Arc<dyn TableFunctionImpl>) -> Arc<dyn TableFunctionImpl> {
    Arc::new(GenerateSeries { inner })
}

#[derive(Debug)]
struct GenerateSeries {
    inner: Arc<dyn TableFunctionImpl>,
}

/// The column Postgres names a series by.
const COLUMN: &str = "generate_series";

impl TableFunctionImpl for GenerateSeries {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let values: Vec<Option<&ScalarValue>> = exprs
            .iter()
            .map(|e| match e {
                Expr::Literal(v, _) => Some(v),
                _ => None,
            })
            .collect();
        if let Some(series) = own_series(&values)? {
            return Ok(Arc::new(series));
        }
        if let Some(Some(step)) = values.get(2) {
            let zero = match step {
                ScalarValue::IntervalMonthDayNano(Some(v)) => {
                    v.months == 0 && v.days == 0 && v.nanoseconds == 0
                }
                ScalarValue::IntervalDayTime(Some(v)) => v.days == 0 && v.milliseconds == 0,
                ScalarValue::IntervalYearMonth(Some(v)) => *v == 0,
                other if other.data_type().is_integer() => {
                    other.cast_to(&DataType::Int64).ok() == Some(ScalarValue::Int64(Some(0)))
                }
                _ => false,
            };
            if zero {
                return Err(step_is_zero());
            }
        }
        // DataFusion's function reads integers as `bigint` literals only.
        let widened: Vec<Expr> = exprs
            .iter()
            .zip(&values)
            .map(|(e, v)| match v {
                Some(v) if v.data_type().is_integer() && v.data_type() != DataType::Int64 => {
                    Ok(Expr::Literal(v.cast_to(&DataType::Int64)?, None))
                }
                // And timestamps as nanoseconds: a series ends in the year 2262.
                Some(ScalarValue::TimestampMicrosecond(micros, zone)) => {
                    let nanos = match micros {
                        Some(m) => Some(m.checked_mul(1000).ok_or_else(|| {
                            DataFusionError::External(Box::new(crate::error::ExecError::DatetimeOverflow(
                                "timestamp out of range: generate_series in Weir ends in the year 2262"
                                    .into(),
                            )))
                        })?),
                        None => None,
                    };
                    Ok(Expr::Literal(ScalarValue::TimestampNanosecond(nanos, zone.clone()), None))
                }
                _ => Ok(e.clone()),
            })
            .collect::<Result<_>>()?;
        let inner = self.inner.call_with_args(TableFunctionArgs::new(&widened, args.session())).map_err(
            |e| match e.to_string().contains("Step cannot be zero") {
                true => step_is_zero(),
                false => e,
            },
        )?;
        let Some(series) = inner.schema().fields().first().map(|f| f.data_type().clone()) else {
            return Ok(inner);
        };
        let postgres = match &series {
            DataType::Int64 if values.iter().all(|v| v.is_none_or(fits_integer)) => DataType::Int32,
            DataType::Int64 => DataType::Int64,
            // A date series is `timestamp with time zone` in Postgres (dates are read as such).
            DataType::Timestamp(_, None) if values.first().is_some_and(|v| v.is_some_and(is_date)) => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("+00:00")))
            }
            DataType::Timestamp(_, zone) => DataType::Timestamp(TimeUnit::Microsecond, zone.clone()),
            other => other.clone(),
        };
        let schema = Arc::new(Schema::new(vec![Field::new(COLUMN, postgres, false)]));
        Ok(Arc::new(TypedSeries { inner, schema }))
    }
}

/// The series of `numeric` arguments, or of a timestamp or date and an interval step, as
/// Weir makes it; `None` for the series DataFusion's function makes (integers).
fn own_series(values: &[Option<&ScalarValue>]) -> Result<Option<SeriesTable>> {
    if values.len() < 2 || values.len() > 3 || values.iter().any(Option::is_none) {
        return Ok(None);
    }
    let values: Vec<&ScalarValue> = values.iter().flatten().copied().collect();
    let decimal = |v: &&ScalarValue| matches!(v, ScalarValue::Decimal128(..));
    if values.iter().any(decimal)
        && values.iter().all(|v| decimal(v) || v.data_type().is_integer() || v.is_null())
    {
        return numeric_series(&values).map(Some);
    }
    let moment = |v: &ScalarValue| match v {
        ScalarValue::TimestampMicrosecond(m, zone) => Some((*m, zone.clone())),
        ScalarValue::TimestampNanosecond(n, zone) => Some((n.map(|n| n.div_euclid(1000)), zone.clone())),
        // A date series is `timestamp with time zone` in Postgres (dates are read as such).
        ScalarValue::Date32(d) => Some((d.map(|d| i64::from(d) * 86_400_000_000), Some(Arc::from("+00:00")))),
        _ => None,
    };
    let (Some((start, zone)), Some((stop, _)), Some(step)) =
        (moment(values[0]), moment(values[1]), values.get(2).and_then(|s| interval_step(s)))
    else {
        return Ok(None);
    };
    let schema = Arc::new(Schema::new(vec![Field::new(
        COLUMN,
        DataType::Timestamp(TimeUnit::Microsecond, zone.clone()),
        false,
    )]));
    let values = match (start, stop, step) {
        (Some(start), Some(stop), Some(step)) => {
            if interval_sign(step).is_eq() {
                return Err(step_is_zero());
            }
            SeriesValues::Timestamp { start, stop, step, zone }
        }
        _ => SeriesValues::Empty,
    };
    Ok(Some(SeriesTable { schema, values }))
}

/// An interval literal as a month-day-nanosecond interval (`Some(None)` for a NULL).
fn interval_step(v: &ScalarValue) -> Option<Option<IntervalMonthDayNano>> {
    match v {
        ScalarValue::IntervalMonthDayNano(v) => Some(*v),
        ScalarValue::IntervalDayTime(v) => {
            Some(v.map(|v| IntervalMonthDayNano::new(0, v.days, i64::from(v.milliseconds) * 1_000_000)))
        }
        ScalarValue::IntervalYearMonth(v) => Some(v.map(|v| IntervalMonthDayNano::new(v, 0, 0))),
        _ => None,
    }
}

/// A series of `numeric` (and integer) arguments: `numeric` at the largest scale among
/// them, by a step of 1 when none is given.
fn numeric_series(values: &[&ScalarValue]) -> Result<SeriesTable> {
    use super::numeric::pow10;
    use super::numeric_special::{special, Special};
    let scale_of = |v: &ScalarValue| match v {
        ScalarValue::Decimal128(_, _, s) => *s,
        _ => 0,
    };
    let scale = values.iter().map(|v| scale_of(v)).max().unwrap_or(0).max(0);
    let schema = Arc::new(Schema::new(vec![Field::new(COLUMN, DataType::Decimal128(38, scale), false)]));
    let names = ["start value", "stop value", "step size"];
    let mut read = Vec::with_capacity(3);
    for (v, name) in values.iter().zip(names) {
        let (raw, s) = match v {
            ScalarValue::Decimal128(raw, _, s) => (*raw, *s),
            other if other.is_null() => (None, 0),
            other => match other.cast_to(&DataType::Int64)? {
                ScalarValue::Int64(i) => (i.map(i128::from), 0),
                _ => (None, 0),
            },
        };
        let Some(raw) = raw else {
            return Ok(SeriesTable { schema, values: SeriesValues::Empty });
        };
        match special(raw) {
            Some(Special::NaN) => return Err(invalid_parameter(format!("{name} cannot be NaN"))),
            Some(_) => return Err(invalid_parameter(format!("{name} cannot be infinity"))),
            None => {}
        }
        let shift = pow10(u32::try_from(scale - s.max(0)).unwrap_or(0).min(76));
        read.push(i256::from_i128(raw).wrapping_mul(shift));
    }
    let step = read.get(2).copied().unwrap_or_else(|| pow10(scale.unsigned_abs().into()));
    if step == i256::ZERO {
        return Err(step_is_zero());
    }
    Ok(SeriesTable { schema, values: SeriesValues::Numeric { start: read[0], stop: read[1], step, scale } })
}

fn invalid_parameter(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(crate::error::ExecError::InvalidParameter(message)))
}

fn step_is_zero() -> DataFusionError {
    DataFusionError::External(Box::new(crate::error::ExecError::InvalidParameter(
        "step size cannot equal zero".into(),
    )))
}

/// An argument of a series Postgres types `integer`: not a `bigint` (the planner makes
/// integer literals that fit 32 bits `integer`; a NULL counts as any type).
fn fits_integer(v: &ScalarValue) -> bool {
    !matches!(v, ScalarValue::Int64(Some(_)))
}

fn is_date(v: &ScalarValue) -> bool {
    matches!(v, ScalarValue::Date32(_) | ScalarValue::Date64(_))
}

/// DataFusion's series, cast to Postgres' type and named `generate_series`.
#[derive(Debug)]
struct TypedSeries {
    inner: Arc<dyn TableProvider>,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for TypedSeries {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self.inner.scan(state, projection, filters, limit).await?;
        if plan.schema().fields().is_empty() {
            // Only the number of rows is read (`count(*)`).
            return Ok(plan);
        }
        let target = self.schema.field(0).data_type().clone();
        let value = Arc::new(Column::new(plan.schema().field(0).name(), 0));
        let cast = Arc::new(CastExpr::new(value, target, None));
        let projection = ProjectionExec::try_new(
            vec![(cast as Arc<dyn datafusion::physical_expr::PhysicalExpr>, COLUMN.to_string())],
            plan,
        )?;
        Ok(Arc::new(projection))
    }
}
