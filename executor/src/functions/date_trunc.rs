//! DataFusion's `date_trunc`, with the values under NULLs zeroed first.
//!
//! DataFusion truncates every slot of a timestamp array, NULL slots included, with
//! unchecked arithmetic: a NULL slot holding an extreme value (which some kernels leave
//! there) overflows, which panics in a debug build and ends the client's session. The SQL
//! fuzzer found it (`UPDATE t SET c = c WHERE date_trunc('hour', ts) IS NOT NULL`).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use arrow::datatypes::{
    ArrowTimestampType, DataType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

#[derive(Debug)]
struct DateTrunc {
    inner: Arc<dyn ScalarUDFImpl>,
}

udf_identity!(DateTrunc, |_function| ());

pub fn date_trunc() -> ScalarUDF {
    ScalarUDF::new_from_impl(DateTrunc {
        inner: Arc::clone(datafusion::functions::datetime::date_trunc().inner()),
    })
}

/// `array` with 0 under its NULLs (the values are the same).
fn zero_nulls<T: ArrowTimestampType>(array: &ArrayRef) -> ArrayRef {
    let timestamps = array.as_primitive::<T>();
    let cleaned: PrimitiveArray<T> = timestamps.iter().collect();
    Arc::new(cleaned.with_timezone_opt(timestamps.timezone().map(str::to_string)))
}

impl ScalarUDFImpl for DateTrunc {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.inner.return_type(args)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<arrow::datatypes::FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        for arg in args.args.iter_mut() {
            let ColumnarValue::Array(array) = arg else { continue };
            if array.null_count() == 0 {
                continue;
            }
            let cleaned = match array.data_type() {
                DataType::Timestamp(TimeUnit::Second, _) => zero_nulls::<TimestampSecondType>(array),
                DataType::Timestamp(TimeUnit::Millisecond, _) => {
                    zero_nulls::<TimestampMillisecondType>(array)
                }
                DataType::Timestamp(TimeUnit::Microsecond, _) => {
                    zero_nulls::<TimestampMicrosecondType>(array)
                }
                DataType::Timestamp(TimeUnit::Nanosecond, _) => zero_nulls::<TimestampNanosecondType>(array),
                _ => continue,
            };
            *arg = ColumnarValue::Array(cleaned);
        }
        self.inner.invoke_with_args(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::TimestampMicrosecondArray;
    use arrow::buffer::{NullBuffer, ScalarBuffer};
    use arrow::datatypes::Field;
    use datafusion::common::config::ConfigOptions;
    use datafusion::common::ScalarValue;

    #[test]
    fn an_extreme_value_under_a_null_does_not_overflow() {
        let values = ScalarBuffer::from(vec![i64::MIN, 3_700_000_000]);
        let array = TimestampMicrosecondArray::new(values, Some(NullBuffer::from(vec![false, true])));
        let field = |name: &str, t: DataType| Arc::new(Field::new(name, t, true));
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        let args = ScalarFunctionArgs {
            args: vec![
                ColumnarValue::Scalar(ScalarValue::Utf8(Some("hour".into()))),
                ColumnarValue::Array(Arc::new(array)),
            ],
            arg_fields: vec![field("g", DataType::Utf8), field("t", ts.clone())],
            number_rows: 2,
            return_field: field("r", ts),
            config_options: Arc::new(ConfigOptions::default()),
        };
        let Ok(ColumnarValue::Array(out)) = date_trunc().invoke_with_args(args) else { panic!("an array") };
        let out = out.as_primitive::<TimestampMicrosecondType>();
        assert!(out.is_null(0));
        assert_eq!(out.value(1), 3_600_000_000);
    }
}
