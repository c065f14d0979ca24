//! `ceil`, `floor` and `round` of a `numeric` with Postgres' result scale.
//!
//! * `ceil` and `floor` give a whole `numeric`: `ceil(0.1)` is `1` and
//!   `floor(99.9::numeric(3,1))` is `99`. DataFusion's keep the argument's precision and
//!   scale, so `ceil(2.1)` printed `3.0`, and `ceil(0.1)` (a `numeric(1,1)`, with no room
//!   for a whole digit) failed with a decimal overflow.
//! * `round(x, n)` with a constant `n` has scale `n`: `round(0.1, 2)` is `0.10`. DataFusion's
//!   never raises the scale above the argument's, so it printed `0.1`.
//!
//! * `ceil`, `floor` and `round` (without places) of unconstrained `numeric` are
//!   unconstrained `numeric` (see [`whole_unconstrained`]).
//! * `round` of a float rounds half to even, as Postgres' (found by
//!   `pg_table_differential.py`).
//!
//! The first two were found by `pg_differential.py`. Other argument types keep DataFusion's
//! functions, which these wrap. `NaN` and the infinities are their own `ceil`, `floor`
//! and `round`, as in Postgres.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Decimal128Type, Float32Type, Float64Type};
use arrow::datatypes::{Field, FieldRef};
use datafusion::common::plan_err;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::numeric::{is_unconstrained, unconstrained, UNCONSTRAINED_PRECISION, UNCONSTRAINED_SCALE};

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
            [t] if is_unconstrained(t) => Ok(unconstrained()),
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
        let whole_of = move |v: i128| {
            let (quotient, remainder) = (v / divisor, v % divisor);
            match direction {
                Direction::Ceil if remainder > 0 => quotient + 1,
                Direction::Floor if remainder < 0 => quotient - 1,
                _ => quotient,
            }
        };
        if is_unconstrained(&argument.data_type()) {
            return super::columnar(whole_unconstrained(&input, divisor, whole_of)?, scalar);
        }
        let whole = input.as_primitive::<Decimal128Type>().unary::<_, Decimal128Type>(whole_of);
        let DataType::Decimal128(p, s) = whole_type(precision, scale) else {
            return Err(DataFusionError::Internal("whole_type is a decimal".into()));
        };
        let out: Arc<dyn Array> = Arc::new(whole.with_precision_and_scale(p, s)?);
        super::columnar(out, scalar)
    }
}

/// `ceil`, `floor` and `round` (without places) of unconstrained `numeric` are unconstrained
/// `numeric`, as in Postgres, holding the whole value `whole_of` gives (a quotient by
/// `divisor`, the scale's power of ten). A `numeric(38,0)` result, as DataFusion's `round`
/// gave, left no room for places in what is computed from it: `avg(round(x))` of 1.2 and
/// 2.1 was 2, where Postgres gives 1.5 (found by `pg_table_differential.py`).
fn whole_unconstrained(input: &ArrayRef, divisor: i128, whole_of: impl Fn(i128) -> i128) -> Result<ArrayRef> {
    let out = input
        .as_primitive::<Decimal128Type>()
        .try_unary::<_, Decimal128Type, _>(|v| {
            whole_of(v)
                .checked_mul(divisor)
                .ok_or_else(|| arrow::error::ArrowError::ArithmeticOverflow("numeric out of range".into()))
        })?
        .with_precision_and_scale(UNCONSTRAINED_PRECISION, UNCONSTRAINED_SCALE)?;
    Ok(Arc::new(out))
}

/// Half away from zero, as Postgres rounds `numeric`.
fn round_half_away(v: i128, divisor: i128) -> i128 {
    let (quotient, remainder) = (v / divisor, v % divisor);
    match remainder.unsigned_abs() * 2 >= divisor.unsigned_abs() {
        true => quotient + v.signum(),
        false => quotient,
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

/// `round`'s argument types: decimals and integers as they are, other numbers as `double
/// precision` (`real` too, without places, as in Postgres); the places as `bigint`
/// (DataFusion's takes them as `int`, cast in [`places_as_int`] at evaluation, where the
/// type no longer matters to planning).
fn round_argument_types(arg_types: &[DataType]) -> Result<Vec<DataType>> {
    let value = |t: &DataType| match t {
        DataType::Decimal128(..) | DataType::Decimal256(..) | DataType::Float64 => Ok(t.clone()),
        // Postgres has no round(real): a `real` is rounded as `double precision`.
        DataType::Float32 if arg_types.len() == 1 => Ok(DataType::Float64),
        DataType::Float32 => Ok(t.clone()),
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
        if let [value] = args.arg_fields {
            if is_unconstrained(value.data_type()) {
                return Ok(Arc::new(Field::new(self.name(), unconstrained(), value.is_nullable())));
            }
        }
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
        if let [value] = args.args.as_slice() {
            if let Some(rounded) = round_float_ties_even(value) {
                return Ok(rounded);
            }
        }
        super::numeric_special::keep_specials(args, |args| self.round_numbers(args))
    }
}

/// `round` of a `double precision` or `real` rounds half to even, as Postgres' (C's
/// `rint`): `round(2.5::float8)` is 2 and `round(-0.5::float8)` is -0. DataFusion's rounds
/// half away from zero (3 and -1). `None` for other types.
fn round_float_ties_even(value: &ColumnarValue) -> Option<ColumnarValue> {
    Some(match value {
        ColumnarValue::Scalar(ScalarValue::Float64(v)) => {
            ColumnarValue::Scalar(ScalarValue::Float64(v.map(f64::round_ties_even)))
        }
        ColumnarValue::Scalar(ScalarValue::Float32(v)) => {
            ColumnarValue::Scalar(ScalarValue::Float32(v.map(f32::round_ties_even)))
        }
        ColumnarValue::Array(a) => match a.data_type() {
            DataType::Float64 => ColumnarValue::Array(Arc::new(
                a.as_primitive::<Float64Type>().unary::<_, Float64Type>(f64::round_ties_even),
            )),
            DataType::Float32 => ColumnarValue::Array(Arc::new(
                a.as_primitive::<Float32Type>().unary::<_, Float32Type>(f32::round_ties_even),
            )),
            _ => return None,
        },
        _ => return None,
    })
}

impl RoundToPlaces {
    fn round_numbers(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let [value] = args.args.as_slice() {
            if is_unconstrained(&value.data_type()) {
                let scalar = matches!(value, ColumnarValue::Scalar(_));
                let input = value.to_array(if scalar { 1 } else { args.number_rows })?;
                let divisor = 10i128.pow(UNCONSTRAINED_SCALE as u32);
                let out = whole_unconstrained(&input, divisor, |v| round_half_away(v, divisor))?;
                return super::columnar(out, scalar);
            }
        }
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
