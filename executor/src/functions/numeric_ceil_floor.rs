//! `ceil` and `floor` of a `numeric` give a whole `numeric`, as Postgres' do: `ceil(0.1)`
//! is `1` and `floor(99.9::numeric(3,1))` is `99`. DataFusion's keep the argument's
//! precision and scale, so `ceil(2.1)` printed `3.0`, and `ceil(0.1)` (a `numeric(1,1)`,
//! with no room for a whole digit) failed with a decimal overflow (found by
//! `pg_differential.py`). Other argument types keep DataFusion's functions, which this
//! wraps.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Decimal128Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Direction {
    Ceil,
    Floor,
}

/// DataFusion's `ceil` or `floor`, with whole-number results for decimals.
#[derive(Debug)]
struct WholeNumeric {
    direction: Direction,
    inner: Arc<dyn ScalarUDFImpl>,
    /// Postgres' other names (`ceiling`).
    aliases: Vec<String>,
}

impl PartialEq for WholeNumeric {
    fn eq(&self, other: &Self) -> bool {
        self.direction == other.direction
    }
}

impl Eq for WholeNumeric {}

impl std::hash::Hash for WholeNumeric {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.direction.hash(state);
    }
}

pub fn ceil() -> ScalarUDF {
    let inner = Arc::clone(datafusion::functions::math::ceil().inner());
    let aliases = vec!["ceiling".to_string()];
    ScalarUDF::new_from_impl(WholeNumeric { direction: Direction::Ceil, inner, aliases })
}

pub fn floor() -> ScalarUDF {
    let inner = Arc::clone(datafusion::functions::math::floor().inner());
    ScalarUDF::new_from_impl(WholeNumeric { direction: Direction::Floor, inner, aliases: Vec::new() })
}

/// The whole-number type of a decimal's `ceil`/`floor`: its integer digits and one more
/// (a carry), at scale 0.
fn whole_type(precision: u8, scale: i8) -> DataType {
    let integer_digits = i16::from(precision) - i16::from(scale.max(0));
    DataType::Decimal128((integer_digits + 1).clamp(1, 38) as u8, 0)
}

impl ScalarUDFImpl for WholeNumeric {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        &self.aliases
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [DataType::Decimal128(precision, scale)] => Ok(whole_type(*precision, *scale)),
            other => self.inner.return_type(other),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [argument] = args.args.as_slice() else { return self.inner.invoke_with_args(args) };
        let DataType::Decimal128(precision, scale) = argument.data_type() else {
            return self.inner.invoke_with_args(args);
        };
        let scalar = matches!(argument, ColumnarValue::Scalar(_));
        let input = argument.to_array(if scalar { 1 } else { args.number_rows })?;
        let divisor = 10i128.checked_pow(u32::try_from(scale.max(0)).unwrap_or(0)).ok_or_else(|| {
            DataFusionError::Internal(format!("a decimal scale of {scale} in {}", self.name()))
        })?;
        let direction = self.direction;
        let whole = input.as_primitive::<Decimal128Type>().unary::<_, Decimal128Type>(|v| {
            let (quotient, remainder) = (v / divisor, v % divisor);
            match direction {
                Direction::Ceil if remainder > 0 => quotient + 1,
                Direction::Floor if remainder < 0 => quotient - 1,
                _ => quotient,
            }
        });
        let DataType::Decimal128(p, s) = whole_type(precision, scale) else {
            return Err(DataFusionError::Internal("whole_type is a decimal".into()));
        };
        let out: Arc<dyn Array> = Arc::new(whole.with_precision_and_scale(p, s)?);
        match scalar {
            true => Ok(ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&out, 0)?)),
            false => Ok(ColumnarValue::Array(out)),
        }
    }
}
