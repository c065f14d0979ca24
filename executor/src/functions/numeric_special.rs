//! `numeric`'s `NaN`, `Infinity` and `-Infinity`, as Postgres has them.
//!
//! Weir stores `numeric` as Arrow's `Decimal128`, whose values of at most 38 digits leave
//! the `i128`s beyond ±10^38 unused. Three of them stand for the special values:
//!
//! | value       | `i128`            |
//! |-------------|-------------------|
//! | `-Infinity` | `i128::MIN`       |
//! | `Infinity`  | `i128::MAX - 1`   |
//! | `NaN`       | `i128::MAX`       |
//!
//! The order of the integers is Postgres' order of the values (`-Infinity` below every
//! number, `NaN` above `Infinity`, and `NaN = NaN`), so comparisons, sorting, `min`/`max`,
//! `DISTINCT`, grouping, hashing and joins, which Arrow does on the integers (and on their
//! row encoding, which keeps the order), are right without knowing the sentinels. Arrow
//! never validates a decimal's precision when it builds, exchanges or stores arrays, so the
//! sentinels travel through IPC, Flight and state unchanged.
//!
//! Everything that computes with a value must know them: Weir's own numeric kernels do
//! (arithmetic, casts, `round`/`ceil`/`floor`, `sum`/`avg`, text input and output), and
//! [`super::numeric_special_rule::NumericSpecialValues`] routes every other use of a
//! decimal in a plan either to one of these kernels or through [`numeric_finite`], which
//! raises `0A000` on a special value, so that no Arrow kernel can compute a wrong number
//! from a sentinel.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Decimal128Array, Float64Array};
use arrow::datatypes::{i256, DataType, Decimal128Type, Field, FieldRef};
use arrow::error::ArrowError;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::numeric::{div_round, fit, is_unconstrained, out_of_range, pow10};

/// `NaN`: the largest `i128`, so it sorts above every other value.
pub const NAN: i128 = i128::MAX;
/// `Infinity`: above every number, below `NaN`.
pub const POS_INF: i128 = i128::MAX - 1;
/// `-Infinity`: below every number.
pub const NEG_INF: i128 = i128::MIN;

/// A special `numeric` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    NaN,
    PosInf,
    NegInf,
}

impl Special {
    /// The stored value of this special.
    pub fn stored(self) -> i128 {
        match self {
            Special::NaN => NAN,
            Special::PosInf => POS_INF,
            Special::NegInf => NEG_INF,
        }
    }

    /// How Postgres prints it.
    pub fn text(self) -> &'static str {
        match self {
            Special::NaN => "NaN",
            Special::PosInf => "Infinity",
            Special::NegInf => "-Infinity",
        }
    }
}

/// The special value `v` stands for, `None` for a number.
pub fn special(v: i128) -> Option<Special> {
    match v {
        NAN => Some(Special::NaN),
        POS_INF => Some(Special::PosInf),
        NEG_INF => Some(Special::NegInf),
        _ => None,
    }
}

/// Whether `v` is `NaN` or an infinity.
pub fn is_special(v: i128) -> bool {
    special(v).is_some()
}

/// `text` (already trimmed) read as a special value: `NaN`, `Infinity`, `inf`, with an
/// optional sign on the infinities, in any case, as Postgres reads them.
pub fn parse_special(text: &str) -> Option<Special> {
    if text.eq_ignore_ascii_case("nan") {
        return Some(Special::NaN);
    }
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let infinite = unsigned.eq_ignore_ascii_case("infinity") || unsigned.eq_ignore_ascii_case("inf");
    match (infinite, negative) {
        (false, _) => None,
        (true, false) => Some(Special::PosInf),
        (true, true) => Some(Special::NegInf),
    }
}

/// `22003`, Postgres' error for an infinity assigned to `numeric(p, s)`.
pub fn infinity_overflow(precision: u8, scale: i8) -> DataFusionError {
    DataFusionError::ArrowError(
        Box::new(ArrowError::ArithmeticOverflow(format!(
            "numeric field overflow: a field with precision {precision}, scale {scale} cannot hold an \
             infinite value"
        ))),
        None,
    )
}

/// Whether a value of type `source` that is infinite may become a value of `target`:
/// always into unconstrained `numeric`; into `numeric(p, s)` only from another constrained
/// type (an infinity there was computed, `ceil('Infinity')`, and keeps going); never from
/// unconstrained `numeric`, as Postgres refuses `'Infinity'::numeric(10,2)`.
pub fn infinity_fits(source: &DataType, target: &DataType) -> bool {
    is_unconstrained(target) || matches!(source, DataType::Decimal128(..)) && !is_unconstrained(source)
}

fn division_by_zero() -> DataFusionError {
    DataFusionError::ArrowError(Box::new(ArrowError::DivideByZero), None)
}

/// How many `NaN`s and infinities a group of `sum`/`avg` holds (a retraction counts -1),
/// so that retracting the last infinity brings the finite sum back.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SpecialCounts {
    pub nan: i64,
    pub pos_inf: i64,
    pub neg_inf: i64,
}

impl SpecialCounts {
    /// Counts `v` with `weight` if it is special; `false` (nothing counted) for a number.
    pub fn count(&mut self, v: i128, weight: i64) -> bool {
        match special(v) {
            Some(Special::NaN) => self.nan += weight,
            Some(Special::PosInf) => self.pos_inf += weight,
            Some(Special::NegInf) => self.neg_inf += weight,
            None => return false,
        }
        true
    }

    /// Adds another group's counts (a merged partial state).
    pub fn merge(&mut self, other: SpecialCounts) {
        self.nan += other.nan;
        self.pos_inf += other.pos_inf;
        self.neg_inf += other.neg_inf;
    }

    pub fn is_zero(&self) -> bool {
        *self == SpecialCounts::default()
    }

    /// The `sum` (and `avg`) of the group when it holds a special value, by Postgres'
    /// rules: `NaN` if any value is `NaN` or both infinities are there, else the infinity.
    pub fn result(&self) -> Option<i128> {
        match (self.nan > 0, self.pos_inf > 0, self.neg_inf > 0) {
            (true, _, _) | (_, true, true) => Some(NAN),
            (_, true, false) => Some(POS_INF),
            (_, false, true) => Some(NEG_INF),
            _ => None,
        }
    }
}

/// An arithmetic operator over `numeric`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl Op {
    fn code(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::Div => "/",
            Op::Mod => "%",
        }
    }

    fn from_code(code: &str) -> Option<Op> {
        [Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Mod].into_iter().find(|op| op.code() == code)
    }
}

/// The sign of a stored value (`NaN` has none; callers handle it first).
fn signum(v: i128) -> i128 {
    match special(v) {
        Some(Special::PosInf) => 1,
        Some(Special::NegInf) => -1,
        _ => v.signum(),
    }
}

/// An infinity of the sign `sign` (±1).
fn infinity(sign: i128) -> i128 {
    if sign < 0 {
        NEG_INF
    } else {
        POS_INF
    }
}

/// `-v` for any stored value: `NaN` stays, the infinities swap.
pub fn negate(v: i128) -> i128 {
    match special(v) {
        Some(Special::NaN) => NAN,
        Some(Special::PosInf) => NEG_INF,
        Some(Special::NegInf) => POS_INF,
        // |v| < 10^38, far from i128::MIN.
        None => -v,
    }
}

/// `a op b` when an operand is special, by Postgres' rules (`Infinity - Infinity` and
/// `0 * Infinity` are `NaN`, `x / Infinity` is 0, a zero divisor is still `22012`);
/// `None` when both are numbers. `finite_result(x)` puts a finite operand `x` of scale
/// `from` at the result's scale (`5 % Infinity` is 5).
fn special_arith(
    op: Op,
    a: i128,
    b: i128,
    finite_result: impl Fn(i128) -> Result<i128>,
) -> Option<Result<i128>> {
    let (sa, sb) = (special(a), special(b));
    if sa.is_none() && sb.is_none() {
        return None;
    }
    if sa == Some(Special::NaN) || sb == Some(Special::NaN) {
        return Some(Ok(NAN));
    }
    Some(match op {
        Op::Add | Op::Sub => {
            let b = if op == Op::Sub { negate(b) } else { b };
            match (special(a), special(b)) {
                (Some(x), Some(y)) if x != y => Ok(NAN),
                (Some(_), _) => Ok(a),
                _ => Ok(b),
            }
        }
        Op::Mul => match signum(a) * signum(b) {
            0 => Ok(NAN),
            sign => Ok(infinity(sign)),
        },
        Op::Div => match (sa, sb) {
            (_, None) if b == 0 => Err(division_by_zero()),
            (Some(_), Some(_)) => Ok(NAN),
            (Some(_), None) => Ok(infinity(signum(a) * signum(b))),
            _ => Ok(0),
        },
        Op::Mod => match (sa, sb) {
            (_, None) if b == 0 => Err(division_by_zero()),
            (Some(_), _) => Ok(NAN),
            _ => finite_result(a),
        },
    })
}

/// `a op b` for numbers `a` (scale `sa`) and `b` (scale `sb`), exactly, then rounded half
/// away from zero to `numeric(p, s)`, or `22003` when it does not fit.
fn finite_arith(op: Op, a: i128, sa: i8, b: i128, sb: i8, p: u8, s: i8) -> Result<i128> {
    let (a, b) = (i256::from_i128(a), i256::from_i128(b));
    let common = sa.max(sb);
    let align = |v: i256, from: i8| v.wrapping_mul(pow10((common - from).unsigned_abs().into()));
    match op {
        Op::Add => fit(align(a, sa).wrapping_add(align(b, sb)), common, p, s),
        Op::Sub => fit(align(a, sa).wrapping_sub(align(b, sb)), common, p, s),
        Op::Mul => fit(a.wrapping_mul(b), sa + sb, p, s),
        Op::Div => {
            if b == i256::ZERO {
                return Err(division_by_zero());
            }
            // a·10^(sb + s - sa) / b, with the power on the divisor when negative.
            let shift = i32::from(sb) + i32::from(s) - i32::from(sa);
            let power = pow10(shift.unsigned_abs());
            let too_big = || out_of_range(format!("the quotient does not fit numeric({p},{s})"));
            let q = match shift >= 0 {
                true => div_round(a.checked_mul(power).ok_or_else(too_big)?, b),
                false => div_round(a, b.checked_mul(power).ok_or_else(too_big)?),
            };
            fit(q.ok_or_else(too_big)?, s, p, s)
        }
        Op::Mod => {
            let (a, b) = (align(a, sa), align(b, sb));
            if b == i256::ZERO {
                return Err(division_by_zero());
            }
            fit(a.checked_rem(b).ok_or_else(|| out_of_range("%"))?, common, p, s)
        }
    }
}

/// `a op b` over stored values of scales `sa` and `sb`, as `numeric(p, s)`.
pub fn arith(op: Op, a: i128, sa: i8, b: i128, sb: i8, p: u8, s: i8) -> Result<i128> {
    let finite_result = |x: i128| fit(i256::from_i128(x), sa, p, s);
    match special_arith(op, a, b, finite_result) {
        Some(result) => result,
        None => finite_arith(op, a, sa, b, sb, p, s),
    }
}

/// Moves a stored value of type `from` to `numeric(p, s)`: the special values stay what
/// they are (an infinity only where [`infinity_fits`]), numbers are rounded and checked.
pub fn rescale(v: i128, from: &DataType, p: u8, s: i8) -> Result<i128> {
    let to = DataType::Decimal128(p, s);
    match special(v) {
        Some(Special::NaN) => Ok(NAN),
        Some(_) if infinity_fits(from, &to) => Ok(v),
        Some(_) => Err(infinity_overflow(p, s)),
        None => {
            let scale = match from {
                DataType::Decimal128(_, scale) => *scale,
                _ => 0,
            };
            fit(i256::from_i128(v), scale, p, s)
        }
    }
}

/// A stored value as `double precision`: the specials as the float's own, numbers as
/// Arrow's cast computes them.
pub fn to_f64(v: i128, scale: i8) -> f64 {
    match special(v) {
        Some(Special::NaN) => f64::NAN,
        Some(Special::PosInf) => f64::INFINITY,
        Some(Special::NegInf) => f64::NEG_INFINITY,
        None => v as f64 / 10f64.powi(i32::from(scale)),
    }
}

/// Calls `f`, a function of a decimal first argument that does not know the sentinels
/// (DataFusion's `round`), on the numbers only, and gives each special value of the
/// argument back unchanged in the result (`round`, `ceil`, `floor` of `NaN` and the
/// infinities are themselves). The result must be a decimal of the argument's length.
pub fn keep_specials(
    args: ScalarFunctionArgs,
    f: impl FnOnce(ScalarFunctionArgs) -> Result<ColumnarValue>,
) -> Result<ColumnarValue> {
    map_specials(args, |v| v, f)
}

/// [`keep_specials`], with the infinities mapped by `infinite` (`abs` makes both positive).
fn map_specials(
    mut args: ScalarFunctionArgs,
    infinite: impl Fn(i128) -> i128,
    f: impl FnOnce(ScalarFunctionArgs) -> Result<ColumnarValue>,
) -> Result<ColumnarValue> {
    let Some(first) = args.args.first() else { return f(args) };
    if !matches!(first.data_type(), DataType::Decimal128(..)) {
        return f(args);
    }
    let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let rows = if scalar { 1 } else { args.number_rows };
    let input = first.to_array(rows)?;
    let values = input.as_primitive::<Decimal128Type>().clone();
    if !values.iter().flatten().any(is_special) {
        return f(args);
    }
    let numbers = values.unary::<_, Decimal128Type>(|v| if is_special(v) { 0 } else { v });
    let numbers = numbers.with_data_type(input.data_type().clone());
    args.args[0] = match first {
        ColumnarValue::Scalar(_) => ColumnarValue::Scalar(ScalarValue::try_from_array(&numbers, 0)?),
        ColumnarValue::Array(_) => ColumnarValue::Array(Arc::new(numbers)),
    };
    let out = f(args)?.to_array(rows)?;
    let DataType::Decimal128(p, s) = out.data_type().clone() else {
        return Err(not_supported("a function whose result is not numeric"));
    };
    let merged: Decimal128Array = values
        .iter()
        .zip(out.as_primitive::<Decimal128Type>().iter())
        .map(|(v, o)| match v.and_then(special) {
            Some(Special::NaN) => Some(NAN),
            Some(special) => Some(infinite(special.stored())),
            None => o,
        })
        .collect();
    super::columnar(Arc::new(merged.with_precision_and_scale(p, s)?), scalar)
}

/// `0A000` for a special value where Weir cannot compute with it.
pub fn not_supported(context: &str) -> DataFusionError {
    DataFusionError::ArrowError(
        Box::new(ArrowError::NotYetImplemented(format!(
            "numeric NaN and Infinity are not supported by {context} in Weir"
        ))),
        None,
    )
}

fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64)
}

/// A constant argument of a function (the operator, a precision or scale).
fn constant<'a>(args: &'a [Option<&ScalarValue>], i: usize, what: &str) -> Result<&'a ScalarValue> {
    args.get(i)
        .copied()
        .flatten()
        .ok_or_else(|| DataFusionError::Plan(format!("{what} needs a constant argument {i}")))
}

fn int_constant(args: &[Option<&ScalarValue>], i: usize, what: &str) -> Result<i64> {
    match constant(args, i, what)? {
        ScalarValue::Int64(Some(v)) => Ok(*v),
        other => Err(DataFusionError::Plan(format!("{what} needs an integer constant, not {other:?}"))),
    }
}

/// The `numeric(p, s)` named by constant arguments `at` and `at + 1`.
fn decimal_constants(args: &[Option<&ScalarValue>], at: usize, what: &str) -> Result<(u8, i8)> {
    let precision =
        u8::try_from(int_constant(args, at, what)?).map_err(|e| DataFusionError::Plan(e.to_string()))?;
    let scale =
        i8::try_from(int_constant(args, at + 1, what)?).map_err(|e| DataFusionError::Plan(e.to_string()))?;
    Ok((precision, scale))
}

/// The argument `i` as an array of `rows` rows.
fn argument(args: &ScalarFunctionArgs, i: usize, rows: usize) -> Result<ArrayRef> {
    args.args.get(i).ok_or_else(|| DataFusionError::Internal(format!("missing argument {i}")))?.to_array(rows)
}

/// Whether every argument is one value, and the number of rows to compute.
fn shape(args: &ScalarFunctionArgs) -> (bool, usize) {
    let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    (scalar, if scalar { 1 } else { args.number_rows })
}

fn decimals(array: &ArrayRef) -> Result<(&Decimal128Array, i8)> {
    match array.data_type() {
        DataType::Decimal128(_, s) => Ok((array.as_primitive::<Decimal128Type>(), *s)),
        other => Err(DataFusionError::Internal(format!("a numeric kernel over {other}"))),
    }
}

/// Arrays of integers are read as `numeric(38, 0)`.
fn as_decimals(array: ArrayRef) -> Result<ArrayRef> {
    match array.data_type() {
        DataType::Decimal128(..) => Ok(array),
        t if t.is_integer() => Ok(arrow::compute::cast(&array, &DataType::Decimal128(38, 0))?),
        other => Err(DataFusionError::Internal(format!("a numeric kernel over {other}"))),
    }
}

/// `numeric_arith(op, a, b, p, s)`: `a op b` as `numeric(p, s)` (the type DataFusion gave
/// the operator), with the special values and exact, checked arithmetic.
#[derive(Debug, PartialEq, Eq, Hash)]
struct NumericArith {
    signature: Signature,
}

pub fn numeric_arith() -> ScalarUDF {
    ScalarUDF::new_from_impl(NumericArith { signature: Signature::any(5, Volatility::Immutable) })
}

impl ScalarUDFImpl for NumericArith {
    fn name(&self) -> &str {
        "numeric_arith"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Err(DataFusionError::Internal("numeric_arith's type follows from its arguments".into()))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let (p, s) = decimal_constants(args.scalar_arguments, 3, self.name())?;
        Ok(Arc::new(Field::new(self.name(), DataType::Decimal128(p, s), true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let DataType::Decimal128(p, s) = args.return_field.data_type().clone() else {
            return Err(DataFusionError::Internal("numeric_arith to a non-decimal".into()));
        };
        let op = match &args.args[0] {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(code))) => Op::from_code(code),
            _ => None,
        }
        .ok_or_else(|| DataFusionError::Internal("numeric_arith's operator".into()))?;
        let (scalar, rows) = shape(&args);
        let (left, right) =
            (as_decimals(argument(&args, 1, rows)?)?, as_decimals(argument(&args, 2, rows)?)?);
        let ((left, ls), (right, rs)) = (decimals(&left)?, decimals(&right)?);
        let out = (0..rows)
            .map(|i| {
                (left.is_valid(i) && right.is_valid(i))
                    .then(|| arith(op, left.value(i), ls, right.value(i), rs, p, s))
                    .transpose()
            })
            .collect::<Result<Decimal128Array>>()?
            .with_precision_and_scale(p, s)?;
        super::columnar(Arc::new(out), scalar)
    }
}

/// `numeric_neg(x)`: `-x`, with `-NaN` = `NaN` and the infinities swapped.
#[derive(Debug, PartialEq, Eq, Hash)]
struct NumericNeg {
    signature: Signature,
}

pub fn numeric_neg() -> ScalarUDF {
    ScalarUDF::new_from_impl(NumericNeg { signature: Signature::any(1, Volatility::Immutable) })
}

impl ScalarUDFImpl for NumericNeg {
    fn name(&self) -> &str {
        "numeric_neg"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [t @ DataType::Decimal128(..)] => Ok(t.clone()),
            other => Err(DataFusionError::Plan(format!("numeric_neg of {other:?}"))),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (scalar, rows) = shape(&args);
        let input = argument(&args, 0, rows)?;
        let (values, _) = decimals(&input)?;
        let out = values.unary::<_, Decimal128Type>(negate).with_data_type(input.data_type().clone());
        super::columnar(Arc::new(out), scalar)
    }
}

/// `numeric_cast(x, p, s)`: a decimal (or integer) as `numeric(p, s)`, see [`rescale`].
#[derive(Debug, PartialEq, Eq, Hash)]
struct NumericCast {
    signature: Signature,
}

pub fn numeric_cast() -> ScalarUDF {
    ScalarUDF::new_from_impl(NumericCast { signature: Signature::any(3, Volatility::Immutable) })
}

impl ScalarUDFImpl for NumericCast {
    fn name(&self) -> &str {
        "numeric_cast"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Err(DataFusionError::Internal("numeric_cast's type follows from its arguments".into()))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let (p, s) = decimal_constants(args.scalar_arguments, 1, self.name())?;
        Ok(Arc::new(Field::new(self.name(), DataType::Decimal128(p, s), true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let DataType::Decimal128(p, s) = args.return_field.data_type().clone() else {
            return Err(DataFusionError::Internal("numeric_cast to a non-decimal".into()));
        };
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let input = argument(&args, 0, if scalar { 1 } else { args.number_rows })?;
        let from = input.data_type().clone();
        let (values, _) = decimals(&input)?;
        let out = values
            .iter()
            .map(|v| v.map(|v| rescale(v, &from, p, s)).transpose())
            .collect::<Result<Decimal128Array>>()?
            .with_precision_and_scale(p, s)?;
        super::columnar(Arc::new(out), scalar)
    }
}

/// `numeric_to_float(x)`: a decimal as `double precision`, `NaN` and the infinities
/// becoming the float's own.
#[derive(Debug, PartialEq, Eq, Hash)]
struct NumericToFloat {
    signature: Signature,
}

pub fn numeric_to_float() -> ScalarUDF {
    ScalarUDF::new_from_impl(NumericToFloat { signature: Signature::any(1, Volatility::Immutable) })
}

impl ScalarUDFImpl for NumericToFloat {
    fn name(&self) -> &str {
        "numeric_to_float"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (scalar, rows) = shape(&args);
        let input = argument(&args, 0, rows)?;
        let (values, scale) = decimals(&input)?;
        let out: Float64Array = values.iter().map(|v| v.map(|v| to_f64(v, scale))).collect();
        super::columnar(Arc::new(out), scalar)
    }
}

/// `float_to_numeric(x, p, s)`: a float as `numeric(p, s)`, its `NaN` and infinities
/// becoming `numeric`'s (an infinity only into unconstrained `numeric`); numbers by Arrow's
/// cast.
#[derive(Debug, PartialEq, Eq, Hash)]
struct FloatToNumeric {
    signature: Signature,
}

pub fn float_to_numeric() -> ScalarUDF {
    ScalarUDF::new_from_impl(FloatToNumeric { signature: Signature::any(3, Volatility::Immutable) })
}

impl ScalarUDFImpl for FloatToNumeric {
    fn name(&self) -> &str {
        "float_to_numeric"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Err(DataFusionError::Internal("float_to_numeric's type follows from its arguments".into()))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let (p, s) = decimal_constants(args.scalar_arguments, 1, self.name())?;
        Ok(Arc::new(Field::new(self.name(), DataType::Decimal128(p, s), true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let target = args.return_field.data_type().clone();
        let DataType::Decimal128(p, s) = target else {
            return Err(DataFusionError::Internal("float_to_numeric to a non-decimal".into()));
        };
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let input = argument(&args, 0, if scalar { 1 } else { args.number_rows })?;
        let floats = arrow::compute::cast(&input, &DataType::Float64)?;
        let floats = floats.as_primitive::<arrow::datatypes::Float64Type>();
        let finite: ArrayRef =
            Arc::new(
                floats.unary::<_, arrow::datatypes::Float64Type>(|v| if v.is_finite() { v } else { 0.0 }),
            );
        let options = arrow::compute::CastOptions { safe: false, ..Default::default() };
        let numbers = arrow::compute::cast_with_options(&finite, &target, &options)?;
        let numbers = numbers.as_primitive::<Decimal128Type>();
        let out = floats
            .iter()
            .zip(numbers.iter())
            .map(|(f, n)| match f {
                Some(f) if f.is_nan() => Ok(Some(NAN)),
                Some(f) if f.is_infinite() && !is_unconstrained(&target) => Err(infinity_overflow(p, s)),
                Some(f) if f.is_infinite() => Ok(Some(infinity(if f < 0.0 { -1 } else { 1 }))),
                _ => Ok(n),
            })
            .collect::<Result<Decimal128Array>>()?
            .with_precision_and_scale(p, s)?;
        super::columnar(Arc::new(out), scalar)
    }
}

/// DataFusion's `abs` or `trunc`, with `NaN` and the infinities as Postgres has them:
/// `trunc` keeps them, `abs` keeps `NaN` and makes both infinities `Infinity`. `abs` of an
/// integer raises `22003` for the type's smallest value, as Postgres does.
#[derive(Debug)]
struct KeepsSpecials {
    inner: Arc<dyn ScalarUDFImpl>,
    /// `abs`: `-Infinity` becomes `Infinity`.
    absolute: bool,
}

impl PartialEq for KeepsSpecials {
    fn eq(&self, other: &Self) -> bool {
        self.absolute == other.absolute
    }
}
impl Eq for KeepsSpecials {}
impl std::hash::Hash for KeepsSpecials {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.absolute.hash(state)
    }
}

/// `abs`, replacing DataFusion's.
pub fn abs() -> ScalarUDF {
    let inner = Arc::clone(datafusion::functions::math::abs().inner());
    ScalarUDF::new_from_impl(KeepsSpecials { inner, absolute: true })
}

/// `trunc`, replacing DataFusion's.
pub fn trunc() -> ScalarUDF {
    let inner = Arc::clone(datafusion::functions::math::trunc().inner());
    ScalarUDF::new_from_impl(KeepsSpecials { inner, absolute: false })
}

impl ScalarUDFImpl for KeepsSpecials {
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
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let (true, [value]) = (self.absolute, args.args.as_slice()) {
            let scalar = matches!(value, ColumnarValue::Scalar(_));
            let values = value.to_array(if scalar { 1 } else { args.number_rows })?;
            if let Some(out) = super::integer_arithmetic::checked_abs(&values) {
                return super::columnar(out?, scalar);
            }
        }
        let infinite = |v: i128| if self.absolute { POS_INF } else { v };
        map_specials(args, infinite, |args| self.inner.invoke_with_args(args))
    }
}

/// `numeric_finite(x, 'what')`: `x` itself when it holds no special value, else `0A000`
/// naming `what`. Guards every use of a decimal by a kernel that does not know the
/// sentinels; `numeric_finite(x, 'integer')` is Postgres' `22003` for a cast to an integer
/// type ("cannot convert infinity to integer").
#[derive(Debug, PartialEq, Eq, Hash)]
struct NumericFinite {
    signature: Signature,
}

pub fn numeric_finite() -> ScalarUDF {
    ScalarUDF::new_from_impl(NumericFinite { signature: Signature::any(2, Volatility::Immutable) })
}

/// Postgres' error for a special value cast to an integer type named `to`.
fn cannot_convert(special: Special, to: &str) -> DataFusionError {
    let what = if special == Special::NaN { "NaN" } else { "infinity" };
    DataFusionError::ArrowError(
        Box::new(ArrowError::ArithmeticOverflow(format!("cannot convert {what} to {to}"))),
        None,
    )
}

/// The Postgres name of an integer type, for [`cannot_convert`].
pub fn integer_type_name(t: &DataType) -> Option<&'static str> {
    match t {
        DataType::Int8 | DataType::Int16 => Some("smallint"),
        DataType::Int32 => Some("integer"),
        DataType::Int64 => Some("bigint"),
        _ => None,
    }
}

impl ScalarUDFImpl for NumericFinite {
    fn name(&self) -> &str {
        "numeric_finite"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [t @ DataType::Decimal128(..), _] => Ok(t.clone()),
            other => Err(DataFusionError::Plan(format!("numeric_finite of {other:?}"))),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let what = match &args.args[1] {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(what))) => what.clone(),
            _ => return Err(DataFusionError::Internal("numeric_finite's context".into())),
        };
        let found = |v: Option<i128>| v.and_then(special);
        let first = match &args.args[0] {
            ColumnarValue::Scalar(ScalarValue::Decimal128(v, ..)) => found(*v),
            ColumnarValue::Array(a) => decimals(a)?.0.iter().find_map(found),
            ColumnarValue::Scalar(other) => {
                return Err(DataFusionError::Internal(format!("numeric_finite of {other:?}")))
            }
        };
        match first {
            None => Ok(args.args[0].clone()),
            Some(special) if matches!(what.as_str(), "smallint" | "integer" | "bigint") => {
                Err(cannot_convert(special, &what))
            }
            Some(_) => Err(not_supported(&what)),
        }
    }
}

/// Arrow's `cast_with_options`, except that decimals holding special values become
/// what Postgres makes of them (see [`rescale`], [`to_f64`]; `22003` for an integer
/// type), and floats' `NaN` and infinities become `numeric`'s. For the casts Weir makes
/// outside a plan (`UPDATE`'s assignments, an aggregate's output, join keys).
pub fn cast_array(
    array: &ArrayRef,
    to: &DataType,
    options: &arrow::compute::CastOptions,
) -> std::result::Result<ArrayRef, ArrowError> {
    let arrow_error = |e: DataFusionError| match e {
        DataFusionError::ArrowError(e, _) => *e,
        other => ArrowError::ComputeError(other.to_string()),
    };
    let from = array.data_type();
    if from == to {
        return Ok(Arc::clone(array));
    }
    if let (DataType::Float16 | DataType::Float32 | DataType::Float64, DataType::Decimal128(p, s)) =
        (from, to)
    {
        let floats = arrow::compute::cast(array, &DataType::Float64)?;
        if floats.as_primitive::<arrow::datatypes::Float64Type>().iter().flatten().all(f64::is_finite) {
            return arrow::compute::cast_with_options(array, to, options);
        }
        let out = floats
            .as_primitive::<arrow::datatypes::Float64Type>()
            .iter()
            .map(|f| match f {
                Some(f) if f.is_nan() => Ok(Some(NAN)),
                Some(f) if f.is_infinite() && !is_unconstrained(to) => {
                    Err(arrow_error(infinity_overflow(*p, *s)))
                }
                Some(f) if f.is_infinite() => Ok(Some(infinity(if f < 0.0 { -1 } else { 1 }))),
                Some(f) => {
                    let one = arrow::array::Float64Array::from(vec![f]);
                    let cast = arrow::compute::cast_with_options(&one, to, options)?;
                    let cast = cast.as_primitive::<Decimal128Type>();
                    Ok(cast.is_valid(0).then(|| cast.value(0)))
                }
                None => Ok(None),
            })
            .collect::<std::result::Result<Decimal128Array, ArrowError>>()?
            .with_precision_and_scale(*p, *s)?;
        return Ok(Arc::new(out));
    }
    let DataType::Decimal128(_, scale) = from else {
        return arrow::compute::cast_with_options(array, to, options);
    };
    let values = array.as_primitive::<Decimal128Type>();
    let Some(first) = values.iter().flatten().find_map(special) else {
        return arrow::compute::cast_with_options(array, to, options);
    };
    // A safe cast makes what does not fit NULL (a lookup key that finds nothing).
    let fits = |v: i128| match (special(v), to) {
        (None, _) | (Some(Special::NaN), DataType::Decimal128(..)) => true,
        (Some(_), DataType::Decimal128(..)) => infinity_fits(from, to),
        (Some(_), t) => is_float(t) || t == &DataType::Utf8,
    };
    if options.safe && values.iter().flatten().any(|v| !fits(v)) {
        let kept: ArrayRef = Arc::new(
            values
                .iter()
                .map(|v| v.filter(|v| fits(*v)))
                .collect::<Decimal128Array>()
                .with_data_type(from.clone()),
        );
        return cast_array(&kept, to, options);
    }
    match to {
        DataType::Decimal128(p, s) => {
            let out = values
                .iter()
                .map(|v| v.map(|v| rescale(v, from, *p, *s)).transpose())
                .collect::<Result<Decimal128Array>>()
                .map_err(arrow_error)?
                .with_precision_and_scale(*p, *s)?;
            Ok(Arc::new(out))
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let floats: ArrayRef =
                Arc::new(values.iter().map(|v| v.map(|v| to_f64(v, *scale))).collect::<Float64Array>());
            arrow::compute::cast_with_options(&floats, to, options)
        }
        DataType::Utf8 => Ok(Arc::new(
            values
                .iter()
                .map(|v| v.map(|v| super::numeric::numeric_text(v, *scale)))
                .collect::<arrow::array::StringArray>(),
        )),
        t => match integer_type_name(t) {
            Some(name) => Err(arrow_error(cannot_convert(first, name))),
            None => Err(arrow_error(not_supported(&format!("a cast to {t}")))),
        },
    }
}

/// An expression for a special value of `numeric(p, s)` that survives being written as
/// SQL (streaming expressions travel as SQL text, and a sentinel written as a number would
/// be read back as a different number): `text_to_numeric('NaN', p, s)`; an infinity of a
/// constrained type (a folded `ceil('Infinity')`), which text input refuses there, is
/// `Infinity + 0` computed as that type. `None` for a number.
pub fn special_literal(v: i128, p: u8, s: i8) -> Option<datafusion::logical_expr::Expr> {
    use datafusion::logical_expr::Expr;
    let special = special(v)?;
    let literal = |v: ScalarValue| Expr::Literal(v, None);
    let int = |v: i64| literal(ScalarValue::Int64(Some(v)));
    let text = |t: &str| literal(ScalarValue::Utf8(Some(t.to_string())));
    let target = DataType::Decimal128(p, s);
    if special == Special::NaN || is_unconstrained(&target) {
        return Some(super::text_to_numeric::text_to_numeric().call(vec![
            text(special.text()),
            int(i64::from(p)),
            int(i64::from(s)),
        ]));
    }
    let unconstrained = super::numeric::unconstrained();
    let DataType::Decimal128(up, us) = unconstrained else { return None };
    let infinity = super::text_to_numeric::text_to_numeric().call(vec![
        text(special.text()),
        int(i64::from(up)),
        int(i64::from(us)),
    ]);
    Some(numeric_arith().call(vec![text("+"), infinity, int(0), int(i64::from(p)), int(i64::from(s))]))
}

/// Rewrites every special-value literal of `plan` as its [`special_literal`], for a plan
/// whose expressions are written as SQL (a view's).
pub fn spell_special_literals(
    plan: datafusion::logical_expr::LogicalPlan,
) -> Result<datafusion::logical_expr::LogicalPlan> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::logical_expr::Expr;
    plan.transform_up_with_subqueries(|node| {
        let names = datafusion::logical_expr::expr_rewriter::NamePreserver::new(&node);
        node.map_expressions(|e| {
            let name = names.save(&e);
            let spelled = e.transform_up(|e| match e {
                Expr::Literal(ScalarValue::Decimal128(Some(v), p, s), _) if is_special(v) => {
                    Ok(special_literal(v, p, s).map_or_else(|| Transformed::no(e.clone()), Transformed::yes))
                }
                other => Ok(Transformed::no(other)),
            })?;
            Ok(spelled.update_data(|e| name.restore(e)))
        })
    })
    .map(|t| t.data)
}

/// `0A000` when a decimal column of `batch` holds a special value, for writers whose
/// format Weir does not control (`context` names them).
pub fn reject_specials(batch: &arrow::record_batch::RecordBatch, context: &str) -> Result<()> {
    for column in batch.columns() {
        if let Some(values) = column.as_primitive_opt::<Decimal128Type>() {
            if values.iter().flatten().any(is_special) {
                return Err(not_supported(context));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: (u8, i8) = (38, 10);
    const ONE: i128 = 10_000_000_000; // 1 at scale 10

    fn op(op: Op, a: i128, b: i128) -> Result<i128> {
        arith(op, a, 10, b, 10, U.0, U.1)
    }

    #[test]
    fn the_sentinels_sort_as_postgres_orders_the_values() {
        let max_number = 10i128.pow(38) - 1;
        assert!(NEG_INF < -max_number && max_number < POS_INF && POS_INF < NAN);
    }

    #[test]
    fn reads_the_spellings_postgres_reads() {
        assert_eq!(parse_special("NaN"), Some(Special::NaN));
        assert_eq!(parse_special("nan"), Some(Special::NaN));
        assert_eq!(parse_special("-NaN"), None);
        assert_eq!(parse_special("inf"), Some(Special::PosInf));
        assert_eq!(parse_special("+Infinity"), Some(Special::PosInf));
        assert_eq!(parse_special("-INF"), Some(Special::NegInf));
        assert_eq!(parse_special("infinit"), None);
    }

    #[test]
    fn infinity_arithmetic_follows_postgres() {
        assert_eq!(op(Op::Add, POS_INF, ONE).unwrap(), POS_INF);
        assert_eq!(op(Op::Sub, POS_INF, POS_INF).unwrap(), NAN);
        assert_eq!(op(Op::Add, NEG_INF, POS_INF).unwrap(), NAN);
        assert_eq!(op(Op::Sub, ONE, POS_INF).unwrap(), NEG_INF);
        assert_eq!(op(Op::Mul, 0, POS_INF).unwrap(), NAN);
        assert_eq!(op(Op::Mul, -2 * ONE, POS_INF).unwrap(), NEG_INF);
        assert_eq!(op(Op::Mul, NEG_INF, POS_INF).unwrap(), NEG_INF);
        assert_eq!(op(Op::Div, ONE, POS_INF).unwrap(), 0);
        assert_eq!(op(Op::Div, POS_INF, -5 * ONE).unwrap(), NEG_INF);
        assert_eq!(op(Op::Div, POS_INF, POS_INF).unwrap(), NAN);
        assert_eq!(op(Op::Mod, POS_INF, 2 * ONE).unwrap(), NAN);
        assert_eq!(op(Op::Mod, 5 * ONE, POS_INF).unwrap(), 5 * ONE);
        assert_eq!(op(Op::Add, NAN, ONE).unwrap(), NAN);
        assert_eq!(op(Op::Mul, NAN, 0).unwrap(), NAN);
        assert_eq!(op(Op::Div, NAN, 0).unwrap(), NAN);
        assert_eq!(op(Op::Mod, NAN, 0).unwrap(), NAN);
    }

    #[test]
    fn a_zero_divisor_is_an_error_even_for_infinity() {
        for (o, a) in [(Op::Div, POS_INF), (Op::Mod, POS_INF), (Op::Div, ONE), (Op::Mod, ONE)] {
            let e = op(o, a, 0).unwrap_err();
            assert!(
                matches!(e, DataFusionError::ArrowError(ref e, _) if matches!(**e, ArrowError::DivideByZero))
            );
        }
    }

    #[test]
    fn numbers_are_exact_and_checked() {
        // 1.5 + 0.25 at scale 2
        assert_eq!(arith(Op::Add, 15, 1, 25, 2, 10, 2).unwrap(), 175);
        assert_eq!(arith(Op::Sub, 15, 1, 25, 2, 10, 2).unwrap(), 125);
        assert_eq!(arith(Op::Mul, 15, 1, 25, 2, 10, 3).unwrap(), 375);
        // 7.5 % 2 = 1.5; -7.5 % 2 = -1.5
        assert_eq!(arith(Op::Mod, 75, 1, 2, 0, 10, 1).unwrap(), 15);
        assert_eq!(arith(Op::Mod, -75, 1, 2, 0, 10, 1).unwrap(), -15);
        // 2 / 3 at scale 4, rounded
        assert_eq!(arith(Op::Div, 2, 0, 3, 0, 10, 4).unwrap(), 6667);
        let max = 10i128.pow(38) - 1;
        assert!(arith(Op::Add, max, 0, 1, 0, 38, 0).is_err());
    }

    #[test]
    fn rescaling_keeps_nan_and_refuses_infinity_in_a_constrained_type() {
        let u = DataType::Decimal128(38, 10);
        assert_eq!(rescale(NAN, &u, 5, 2).unwrap(), NAN);
        assert_eq!(rescale(POS_INF, &u, 38, 10).unwrap(), POS_INF);
        let e = rescale(NEG_INF, &u, 10, 2).unwrap_err().to_string();
        assert!(e.contains("precision 10, scale 2 cannot hold an infinite value"), "{e}");
        // A computed infinity of a constrained type keeps going.
        assert_eq!(rescale(POS_INF, &DataType::Decimal128(29, 0), 38, 10).unwrap(), POS_INF);
        assert_eq!(rescale(12345, &DataType::Decimal128(10, 2), 10, 1).unwrap(), 1235);
    }

    #[test]
    fn negation_and_floats() {
        assert_eq!(negate(POS_INF), NEG_INF);
        assert_eq!(negate(NEG_INF), POS_INF);
        assert_eq!(negate(NAN), NAN);
        assert_eq!(to_f64(POS_INF, 10), f64::INFINITY);
        assert_eq!(to_f64(NEG_INF, 10), f64::NEG_INFINITY);
        assert!(to_f64(NAN, 10).is_nan());
        assert_eq!(to_f64(15, 1), 1.5);
    }
}
