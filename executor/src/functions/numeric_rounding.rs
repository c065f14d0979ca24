//! `ceil`, `floor` and `round` of a `numeric` with Postgres' result scale.
//!
//! * `ceil` and `floor` give a whole `numeric`: `ceil(0.1)` is `1` and
//!   `floor(99.9::numeric(3,1))` is `99`. DataFusion's keep the argument's precision and
//!   scale, so `ceil(2.1)` printed `3.0`, and `ceil(0.1)` (a `numeric(1,1)`, with no room
//!   for a whole digit) failed with a decimal overflow.
//! * `round(x, n)` with a constant `n` has scale `n`: `round(0.1, 2)` is `0.10`. DataFusion's
//!   never raises the scale above the argument's, so it printed `0.1`.
//!
//! Both were found by `pg_differential.py`. Other argument types keep DataFusion's
//! functions, which these wrap. `NaN` and the infinities are their own `ceil`, `floor`
//! and `round`, as in Postgres.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Decimal128Type};
use arrow::datatypes::{Field, FieldRef};
use datafusion::common::plan_err;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

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

udf_identity!(WholeNumeric, |function| function.direction);

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
        super::numeric_special::keep_specials(args, |args| self.whole_numbers(args))
    }
}

impl WholeNumeric {
    fn whole_numbers(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
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
        super::columnar(out, scalar)
    }
}

/// DataFusion's `round`, with scale `n` for `round(numeric, n)` when `n` is a constant above
/// the argument's scale (below it, DataFusion's already has scale `n`).
///
/// It also takes the places as any integer, not only `int`: DataFusion's coerces an
/// `Int64` literal `2` to `CAST(2 AS Int32)`, which its result type cannot see through, so
/// the type used to plan around the call (`numeric(10,3)` for `round(240980.758, 2)`)
/// differed from the type after constant folding (`numeric(9,2)`), and comparing the
/// result failed with "Invalid comparison operation".
#[derive(Debug)]
struct RoundToPlaces {
    inner: Arc<dyn ScalarUDFImpl>,
    signature: Signature,
}

udf_identity!(RoundToPlaces, |_function| ());

pub fn round() -> ScalarUDF {
    ScalarUDF::new_from_impl(RoundToPlaces {
        inner: Arc::clone(datafusion::functions::math::round().inner()),
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// `round`'s argument types: decimals, integers and `real` as they are, other numbers as
/// `double precision`; the places as `bigint` (DataFusion's takes them as `int`, cast in
/// [`places_as_int`] at evaluation, where the type no longer matters to planning).
fn round_argument_types(arg_types: &[DataType]) -> Result<Vec<DataType>> {
    let value = |t: &DataType| match t {
        DataType::Decimal128(..) | DataType::Decimal256(..) | DataType::Float32 | DataType::Float64 => {
            Ok(t.clone())
        }
        t if t.is_integer() => Ok(t.clone()),
        DataType::Null => Ok(DataType::Float64),
        t if t.is_numeric() => Ok(DataType::Float64),
        other => plan_err!("function round(unknown) does not exist for an argument of type {other}"),
    };
    match arg_types {
        [x] => Ok(vec![value(x)?]),
        // An integer keeps its type: a cast would hide a constant's value from the result
        // type (`round(x, 2)` has 2 places).
        [x, places] if places.is_integer() => Ok(vec![value(x)?, places.clone()]),
        [x, places] if places.is_null() => Ok(vec![value(x)?, DataType::Int64]),
        [_, places] => {
            plan_err!("round's second argument (the decimal places) must be an integer, not {places}")
        }
        _ => plan_err!("round takes one or two arguments"),
    }
}

/// The places argument as the `int` DataFusion's `round` evaluates with.
fn places_as_int(args: &mut ScalarFunctionArgs) -> Result<()> {
    if let Some(places) = args.args.get_mut(1) {
        *places = places.cast_to(&DataType::Int32, None)?;
        if let Some(field) = args.arg_fields.get_mut(1) {
            *field = Arc::new(Field::new(field.name(), DataType::Int32, field.is_nullable()));
        }
    }
    Ok(())
}

/// The type Postgres gives `round(x, places)` where DataFusion's scale falls short: the
/// argument's digits with `places` decimals, if that fits 38 digits.
fn padded_type(argument: &DataType, places: Option<&ScalarValue>) -> Option<DataType> {
    let DataType::Decimal128(precision, scale) = argument else { return None };
    let places = match places? {
        ScalarValue::Int64(Some(n)) => *n,
        ScalarValue::Int32(Some(n)) => i64::from(*n),
        _ => return None,
    };
    let places = i8::try_from(places).ok().filter(|n| *n > *scale)?;
    let padded = i16::from(*precision) + i16::from(places) - i16::from(*scale);
    (padded <= 38).then_some(DataType::Decimal128(padded as u8, places))
}

impl ScalarUDFImpl for RoundToPlaces {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        round_argument_types(arg_types)
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.inner.return_type(args)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let argument = args.arg_fields.first().map(|f| f.data_type().clone());
        let places = args.scalar_arguments.get(1).copied().flatten();
        match argument.as_ref().and_then(|a| padded_type(a, places)) {
            Some(padded) => {
                let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
                Ok(Arc::new(Field::new(self.name(), padded, nullable)))
            }
            None => self.inner.return_field_from_args(args),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        super::numeric_special::keep_specials(args, |args| self.round_numbers(args))
    }
}

impl RoundToPlaces {
    fn round_numbers(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        places_as_int(&mut args)?;
        let (DataType::Decimal128(_, places), Some(argument)) =
            (args.return_type().clone(), args.arg_fields.first().map(|f| f.data_type().clone()))
        else {
            return self.inner.invoke_with_args(args);
        };
        let DataType::Decimal128(precision, scale) = argument else {
            return self.inner.invoke_with_args(args);
        };
        if places <= scale {
            return self.inner.invoke_with_args(args);
        }
        // Rounding to more places than the value has changes nothing: DataFusion's round
        // gives the value at its own scale, padded here to `places`.
        let padded = args.return_field.clone();
        args.return_field = Arc::new(Field::new(self.name(), DataType::Decimal128(precision, scale), true));
        let rounded = self.inner.invoke_with_args(args)?;
        let factor = 10i128.pow(u32::from(places.abs_diff(scale)));
        let scalar = matches!(rounded, ColumnarValue::Scalar(_));
        let values = rounded.to_array(1)?;
        let DataType::Decimal128(p, s) = padded.data_type().clone() else {
            return Err(DataFusionError::Internal("round's padded type is a decimal".into()));
        };
        let out = values
            .as_primitive::<Decimal128Type>()
            .try_unary::<_, Decimal128Type, _>(|v| {
                v.checked_mul(factor).ok_or_else(|| {
                    arrow::error::ArrowError::ArithmeticOverflow(format!(
                        "numeric out of range: numeric({p},{s})"
                    ))
                })
            })?
            .with_precision_and_scale(p, s)?;
        let out: Arc<dyn Array> = Arc::new(out);
        super::columnar(out, scalar)
    }
}
