//! A `timestamp` cast to text reads as Postgres prints it: `2026-01-01 10:00:00.5`, and a
//! `timestamp with time zone` with the session's offset, `2026-01-01 10:00:00.5+00` (UTC is
//! the only time zone). Arrow's cast wrote ISO 8601 (`2026-01-01T10:00:00.500`, without a
//! zone), so `now()::text`, `'at ' || ts` and text comparisons disagreed with Postgres.
//!
//! [`TimestampToText`] plans every such cast as `timestamp_text`, which formats the value
//! as the wire protocol shows it, and a `date` cast to text as `date_text` (Arrow wrote
//! `+20200-01-01` and `0000-01-01` where Postgres writes `20200-01-01` and `0001-01-01 BC`),
//! an `interval` cast to text as `interval_text` (see `interval_text`), and a `time` as
//! `time_text` (Arrow wrote `12:00:00.130` and refused `24:00:00`).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, IntervalUnit, Time64MicrosecondType, TimeUnit,
    TimestampMicrosecondType,
};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    cast, Cast, ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

/// `timestamp_text(ts, with_zone)`: Postgres' text of a timestamp in microseconds.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TimestampText {
    /// `timestamp with time zone`: the UTC offset follows.
    with_zone: bool,
    signature: Signature,
}

/// Any timestamp (see `timestamp_diff`: operators compile the call over their own types).
fn timestamp_text(with_zone: bool) -> ScalarUDF {
    ScalarUDF::new_from_impl(TimestampText { with_zone, signature: Signature::any(1, Volatility::Immutable) })
}

pub fn timestamp_text_udfs() -> [ScalarUDF; 4] {
    [timestamp_text(false), timestamp_text(true), date_text(), time_text()]
}

/// `time_text(t)`: Postgres' text of a `time` (Arrow's cast wrote `12:00:00.130` for
/// `12:00:00.13` and refused `24:00:00`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct TimeText {
    signature: Signature,
}

fn time_text() -> ScalarUDF {
    ScalarUDF::new_from_impl(TimeText {
        signature: Signature::exact(vec![DataType::Time64(TimeUnit::Microsecond)], Volatility::Immutable),
    })
}

impl ScalarUDFImpl for TimeText {
    fn name(&self) -> &str {
        "time_text"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        texts_of::<Time64MicrosecondType>(
            args,
            self.name(),
            |value, rows| value.to_array(rows),
            super::datetime_text::time_text,
        )
    }
}

/// `date_text(d)`: Postgres' text of a `date`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct DateText {
    signature: Signature,
}

fn date_text() -> ScalarUDF {
    ScalarUDF::new_from_impl(DateText {
        signature: Signature::exact(vec![DataType::Date32], Volatility::Immutable),
    })
}

impl ScalarUDFImpl for DateText {
    fn name(&self) -> &str {
        "date_text"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        texts_of::<Date32Type>(
            args,
            self.name(),
            |value, rows| value.to_array(rows),
            super::datetime_text::date_text,
        )
    }
}

/// Postgres' output (see [`super::datetime_text`]).
fn format(micros: i64, with_zone: bool) -> Option<String> {
    super::datetime_text::timestamp_text(micros, with_zone)
}

impl ScalarUDFImpl for TimestampText {
    fn name(&self) -> &str {
        match self.with_zone {
            true => "timestamptz_text",
            false => "timestamp_text",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        texts_of::<TimestampMicrosecondType>(args, self.name(), super::timestamp_diff::as_micros, |micros| {
            format(micros, self.with_zone)
        })
    }
}

/// The text of each value of a one-argument call: `values` turns the argument into an array
/// of `T`, `text` gives a value's text (`None`: NULL).
fn texts_of<T: ArrowPrimitiveType>(
    args: ScalarFunctionArgs,
    name: &str,
    values: impl Fn(&ColumnarValue, usize) -> Result<ArrayRef>,
    text: impl Fn(T::Native) -> Option<String>,
) -> Result<ColumnarValue> {
    let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let rows = if scalar { 1 } else { args.number_rows };
    let [value] = args.args.as_slice() else {
        return Err(DataFusionError::Internal(format!("{name} takes one argument")));
    };
    let values = values(value, rows)?;
    let values = values.as_primitive::<T>();
    let out: StringArray =
        (0..rows).map(|i| values.is_valid(i).then(|| text(values.value(i))).flatten()).collect();
    super::columnar(Arc::new(out), scalar)
}

/// Plans every cast of a timestamp to text as `timestamp_text` / `timestamptz_text`.
#[derive(Debug, Default)]
pub struct TimestampToText;

impl AnalyzerRule for TimestampToText {
    fn name(&self) -> &str {
        "weir_timestamp_to_text"
    }
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        super::rewrite_plan_expressions(plan, rewrite_expr)
    }
}

fn rewrite_expr(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::Cast(Cast { expr, field }) = e else { return Ok(Transformed::no(e)) };
    if !matches!(field.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
        return Ok(Transformed::no(Expr::Cast(Cast { expr, field })));
    }
    let text = match expr.get_type(schema) {
        Ok(DataType::Timestamp(_, zone)) => {
            let micros = cast(*expr, DataType::Timestamp(TimeUnit::Microsecond, None));
            timestamp_text(zone.is_some()).call(vec![micros])
        }
        Ok(DataType::Date32) => date_text().call(vec![*expr]),
        Ok(DataType::Time32(_) | DataType::Time64(_)) => {
            time_text().call(vec![cast(*expr, DataType::Time64(TimeUnit::Microsecond))])
        }
        Ok(DataType::Interval(IntervalUnit::MonthDayNano)) => {
            super::interval_text::interval_text().call(vec![*expr])
        }
        _ => return Ok(Transformed::no(Expr::Cast(Cast { expr, field }))),
    };
    Ok(Transformed::yes(match field.data_type() {
        DataType::Utf8 => text,
        other => text.cast_to(other, schema)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::format;

    #[test]
    fn timestamps_read_as_postgres_prints_them() {
        let at = 1_767_261_600_500_000; // 2026-01-01 10:00:00.5 UTC
        assert_eq!(format(at, false).as_deref(), Some("2026-01-01 10:00:00.5"));
        assert_eq!(format(at, true).as_deref(), Some("2026-01-01 10:00:00.5+00"));
        assert_eq!(format(at - 500_000, true).as_deref(), Some("2026-01-01 10:00:00+00"));
        assert_eq!(format(-1, false).as_deref(), Some("1969-12-31 23:59:59.999999"));
    }
}
