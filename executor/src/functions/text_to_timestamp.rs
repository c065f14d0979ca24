//! Text cast to `timestamp`, `timestamp with time zone` or `date` reads what Postgres reads
//! ([`super::timestamp_input`]). [`TextToTimestamp`] plans every such cast, written
//! (`CAST(s AS timestamp)`, `TIMESTAMP '2020-01-01 12:00'`) or added by coercion (a string
//! inserted into a `timestamp` column), as `text_to_timestamp(text, target)`, whose second
//! argument names the target type as Arrow writes it (a constant string, which survives
//! the streaming plan's expressions as a typed NULL would not). The same function rounds a
//! timestamp cast to `timestamp(0)` or `timestamp(3)` as Postgres rounds it (Arrow's cast
//! cut it). `TRY_CAST` (not Postgres syntax) keeps Arrow's
//! cast.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Array, PrimitiveArray};
use arrow::datatypes::{
    DataType, Field, FieldRef, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use super::timestamp_input::{parse_date, parse_timestamp};
use crate::error::ExecError;

#[derive(Debug, PartialEq, Eq, Hash)]
struct TextToTimestampFn {
    signature: Signature,
}

pub fn text_to_timestamp() -> ScalarUDF {
    ScalarUDF::new_from_impl(TextToTimestampFn { signature: Signature::any(2, Volatility::Immutable) })
}

/// A date or timestamp type the text can be read as.
fn readable(t: &DataType) -> bool {
    matches!(t, DataType::Date32 | DataType::Timestamp(..))
}

impl ScalarUDFImpl for TextToTimestampFn {
    fn name(&self) -> &str {
        "text_to_timestamp"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Err(DataFusionError::Internal("text_to_timestamp's type follows from its arguments".into()))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let target = match args.scalar_arguments.get(1).copied().flatten() {
            Some(ScalarValue::Utf8(Some(name)) | ScalarValue::Utf8View(Some(name))) => {
                name.parse::<DataType>().ok()
            }
            _ => None,
        };
        match target {
            Some(t) if readable(&t) => Ok(Arc::new(Field::new(self.name(), t, true))),
            other => Err(DataFusionError::Plan(format!(
                "text_to_timestamp needs a constant date or timestamp type, not {other:?}"
            ))),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let input = args.args[0].to_array(if scalar { 1 } else { args.number_rows })?;
        let out = match (input.data_type(), args.return_field.data_type()) {
            // A timestamp to a coarser precision.
            (DataType::Timestamp(TimeUnit::Microsecond, _), DataType::Timestamp(unit, zone)) => {
                let values = input.as_primitive::<TimestampMicrosecondType>().iter().collect();
                in_unit(values, unit, zone)
            }
            (_, target) => {
                read_column(arrow::compute::cast(&input, &DataType::Utf8)?.as_string::<i32>(), target)
            }
        }
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
        super::columnar(out, scalar)
    }
}

/// Every string of `strings` read as `target` (a date or timestamp type); the first that
/// does not read is the error. Shared with `COPY`, which reads a column of fields.
pub fn read_column(
    strings: &arrow::array::StringArray,
    target: &DataType,
) -> std::result::Result<ArrayRef, ExecError> {
    read_column_each(strings, target, |_, e| Err(e))
}

/// Every string of `strings` read as `target` (a date or timestamp type); a string that
/// does not read is handed to `bad` with its row, which either ends the reading with an
/// error or makes the value NULL (`Ok`): the `file` source counts such rows as malformed.
pub fn read_column_each(
    strings: &arrow::array::StringArray,
    target: &DataType,
    bad: impl FnMut(usize, ExecError) -> std::result::Result<(), ExecError>,
) -> std::result::Result<ArrayRef, ExecError> {
    read_texts_each(strings.iter(), target, bad)
}

/// [`read_column_each`] over texts not gathered in an array (the `file` source's CSV
/// fields, read where they lie in the input).
pub fn read_texts_each<'a>(
    texts: impl ExactSizeIterator<Item = Option<&'a str>> + Clone,
    target: &DataType,
    mut bad: impl FnMut(usize, ExecError) -> std::result::Result<(), ExecError>,
) -> std::result::Result<ArrayRef, ExecError> {
    let mut read = |parse: &dyn Fn(&str) -> std::result::Result<i64, ExecError>| {
        let mut values = Vec::with_capacity(texts.len());
        for (row, text) in texts.clone().enumerate() {
            values.push(match text.map(parse).transpose() {
                Ok(value) => value,
                Err(e) => bad(row, e).map(|()| None)?,
            });
        }
        Ok::<_, ExecError>(values)
    };
    let array: ArrayRef = match target {
        DataType::Date32 => {
            let days = read(&|text| parse_date(text).map(i64::from))?;
            Arc::new(days.into_iter().map(|d| d.map(|d| d as i32)).collect::<Date32Array>())
        }
        DataType::Timestamp(unit, zone) => {
            let with_zone = zone.is_some();
            in_unit(read(&|text| parse_timestamp(text, with_zone))?, unit, zone)?
        }
        other => return Err(ExecError::Internal(format!("text read as {other}"))),
    };
    Ok(array)
}

/// Timestamps in microseconds as a column of `unit` (rounded as Postgres rounds to a
/// coarser precision) and `zone`.
fn in_unit(
    values: Vec<Option<i64>>,
    unit: &TimeUnit,
    zone: &Option<Arc<str>>,
) -> std::result::Result<ArrayRef, ExecError> {
    let out_of_range = || ExecError::DatetimeOverflow("timestamp out of range".into());
    let zone = zone.clone();
    let coarser = |unit| values.iter().map(|v| v.map(|v| round_to(v, unit))).collect::<Vec<_>>();
    Ok(match unit {
        TimeUnit::Microsecond => {
            Arc::new(PrimitiveArray::<TimestampMicrosecondType>::from(values).with_timezone_opt(zone))
        }
        TimeUnit::Nanosecond => {
            let nanos = values
                .iter()
                .map(|v| v.map(|v| v.checked_mul(1000).ok_or_else(out_of_range)).transpose())
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Arc::new(PrimitiveArray::<TimestampNanosecondType>::from(nanos).with_timezone_opt(zone))
        }
        TimeUnit::Millisecond => {
            Arc::new(PrimitiveArray::<TimestampMillisecondType>::from(coarser(1000)).with_timezone_opt(zone))
        }
        TimeUnit::Second => {
            Arc::new(PrimitiveArray::<TimestampSecondType>::from(coarser(1_000_000)).with_timezone_opt(zone))
        }
    })
}

/// Microseconds since 1970 in units of `unit` microseconds, as Postgres rounds
/// `timestamp(0)` and `timestamp(3)`: the rounding a column declared `timestamp(p)` stores
/// its values with, defined once in [`weir_plan::time_precision`].
fn round_to(micros: i64, unit: i64) -> i64 {
    weir_plan::time_precision::timestamp_in_units(micros, unit)
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Plans every cast of text to a date or timestamp as `text_to_timestamp`.
#[derive(Debug, Default)]
pub struct TextToTimestamp;

impl AnalyzerRule for TextToTimestamp {
    fn name(&self) -> &str {
        "weir_text_to_timestamp"
    }
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        super::rewrite_plan_expressions(plan, rewrite_expr)
    }
}

fn rewrite_expr(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    // Arrow cuts a timestamp cast to `timestamp(0)` or `timestamp(3)`; Postgres rounds.
    let to_coarser =
        |t: &DataType| matches!(t, DataType::Timestamp(TimeUnit::Second | TimeUnit::Millisecond, _));
    let microseconds = |t: &DataType| matches!(t, DataType::Timestamp(TimeUnit::Microsecond, _));
    match e {
        Expr::Cast(Cast { expr, field })
            if readable(field.data_type()) && expr.get_type(schema).is_ok_and(|t| is_text(&t))
                || to_coarser(field.data_type()) && expr.get_type(schema).is_ok_and(|t| microseconds(&t)) =>
        {
            let target = Expr::Literal(ScalarValue::Utf8(Some(field.data_type().to_string())), None);
            Ok(Transformed::yes(text_to_timestamp().call(vec![*expr, target])))
        }
        other => Ok(Transformed::no(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarser_units_round_as_postgres_does() {
        let second = 1_000_000;
        // 2020-01-01 12:00:00.5 and 1969-12-31 23:59:58.5, as Postgres rounds them.
        assert_eq!(round_to(1_577_880_000_500_000, second), 1_577_880_001);
        assert_eq!(round_to(-1_500_000, second), -2);
        assert_eq!(round_to(1_577_880_000_000_500, 1000), 1_577_880_000_001);
        assert_eq!(round_to(1_577_880_000_400_000, second), 1_577_880_000);
    }

    #[test]
    fn target_types_survive_their_names() {
        for t in [
            DataType::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
        ] {
            assert_eq!(t.to_string().parse::<DataType>().ok(), Some(t));
        }
    }
}
