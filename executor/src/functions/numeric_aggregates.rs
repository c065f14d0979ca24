//! `sum` and `avg` that are exact or raise `22003`, for batch queries.
//!
//! DataFusion sums `Decimal128` and `Int64` with wrapping 128/64-bit additions, so a sum
//! that leaves the type's range silently becomes a wrong (even negative) number, and its
//! decimal `avg` fails on an intermediate overflow even when the average fits. These
//! wrappers keep DataFusion's functions for every other input and, for decimals and
//! `bigint`, accumulate in 256 bits and check the result against the return type when it
//! is produced. Streaming views do the same in their own accumulators
//! (`operators/hash_aggregate/accumulators.rs`); both return the types declared here.
//!
//! `NaN` and the infinities are counted apart from the sum (see
//! [`SpecialCounts`]): `sum` of `Infinity` and `-Infinity` is `NaN`, as in Postgres.
//!
//! Return types: `sum(numeric(p, s))` is `numeric(38, s)`; `avg(numeric(p, s))` is
//! `numeric(38, max(16, s))` (fewer places when `p - s` digits before the point need the
//! room), and unconstrained `numeric` stays unconstrained for both. As in Postgres, `avg`
//! of integers is `numeric` (`numeric(38, 16)`, see [`decimal_avg`]) and
//! `sum(bigint)` is `numeric` (`numeric(38, 0)`); `sum` of smaller integers is `bigint`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{i256, DataType, Decimal128Type, Decimal256Type, Field, FieldRef, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, GroupsAccumulator, ReversedUDAF,
    SetMonotonicity, Signature,
};

use super::numeric::{fit, is_unconstrained, postgres_quotient, printed_scale, UNCONSTRAINED_SCALE};
use super::numeric_special::SpecialCounts;

/// Which of the two aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Sum,
    Avg,
}

/// `sum` or `avg`: DataFusion's function, with exact accumulation for decimals and bigint.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ExactSumAvg {
    kind: Kind,
    inner: Arc<AggregateUDF>,
    signature: Signature,
}

/// `sum`, replacing DataFusion's.
pub fn sum() -> AggregateUDF {
    let inner = datafusion::functions_aggregate::sum::sum_udaf();
    let signature = Signature::user_defined(datafusion::logical_expr::Volatility::Immutable);
    AggregateUDF::new_from_impl(ExactSumAvg { kind: Kind::Sum, inner, signature })
}

/// `avg`, replacing DataFusion's.
pub fn avg() -> AggregateUDF {
    AggregateUDF::new_from_impl(ExactSumAvg {
        kind: Kind::Avg,
        inner: datafusion::functions_aggregate::average::avg_udaf(),
        signature: avg_signature(),
    })
}

/// DataFusion's `avg` signature, except that integers stay integers (DataFusion's makes
/// them `double precision`): their average is an exact `numeric`.
fn avg_signature() -> Signature {
    use datafusion::common::types::{logical_float64, NativeType};
    use datafusion::logical_expr::{Coercion, TypeSignature, TypeSignatureClass, Volatility};
    let exact = |class| TypeSignature::Coercible(vec![Coercion::new_exact(class)]);
    Signature::one_of(
        vec![
            exact(TypeSignatureClass::Decimal),
            exact(TypeSignatureClass::Integer),
            exact(TypeSignatureClass::Duration),
            TypeSignature::Coercible(vec![Coercion::new_implicit(
                TypeSignatureClass::Native(logical_float64()),
                vec![TypeSignatureClass::Float],
                NativeType::Float64,
            )]),
        ],
        Volatility::Immutable,
    )
}

/// The scale of `avg` over integers (see [`decimal_avg`]).
pub const INTEGER_AVG_SCALE: i8 = 16;

/// `avg` as Postgres computes it: `sum / count` (`sum` at `sum_scale`) rounded half away
/// from zero at the places Postgres keeps (its `select_div_scale`: 16 significant digits,
/// counted in base-10000 digits, and no fewer than the values' scale), written at
/// `out_scale`: `1.6666666666666667`, `6173.8350000000000000` as in Postgres;
/// `1000000000.5000000000000000` where Postgres prints `1000000000.50000000`, the same
/// value. Past `out_scale` places (an average below 1, with 20 in Postgres) the value is
/// rounded at `out_scale`. Unconstrained `numeric` (its sum and average both at scale 10)
/// counts the places its sum prints, as for quotients.
pub fn decimal_avg(sum: i256, sum_scale: i8, count: i64, out_scale: i8) -> Result<i128> {
    let unconstrained = sum_scale == UNCONSTRAINED_SCALE && out_scale == UNCONSTRAINED_SCALE;
    let sum_dscale = match unconstrained {
        true => printed_scale(sum, sum_scale),
        false => i32::from(sum_scale),
    };
    let count = i256::from_i128(i128::from(count));
    postgres_quotient((sum, sum_scale, sum_dscale), (count, 0, 0), 38, out_scale)
}

/// The return type of `sum`/`avg` over a decimal of scale `s`, and of `avg` over integers
/// and `sum` over `bigint` (both `numeric`, as in Postgres), as declared for views too.
pub fn decimal_result(kind_is_avg: bool, input: &DataType) -> Option<DataType> {
    match (kind_is_avg, input) {
        (true, t) if t.is_integer() => return Some(DataType::Decimal128(38, INTEGER_AVG_SCALE)),
        _ => {}
    }
    let DataType::Decimal128(p, s) = input else { return None };
    let scale = match (kind_is_avg, is_unconstrained(input)) {
        (_, true) => UNCONSTRAINED_SCALE,
        (false, false) => *s,
        // Postgres' 16 places for an average of 1 to 9999 (more places where the values
        // have more), less where the values' digits before the point need the room.
        (true, false) => {
            let whole_digits = (i16::from(*p) - i16::from(*s)).max(0);
            INTEGER_AVG_SCALE.max(*s).min((38 - whole_digits) as i8)
        }
    };
    Some(DataType::Decimal128(38, scale))
}

impl ExactSumAvg {
    /// Whether this call is computed here rather than by DataFusion: decimals and
    /// integers, `DISTINCT` or not (DataFusion's `DISTINCT` sum of decimals wrapped around
    /// in 128 bits and added `NaN`'s sentinel as a number; its `avg(DISTINCT int)` had no
    /// accumulator for Weir's return type).
    fn exact(&self, input: &DataType) -> bool {
        matches!(input, DataType::Decimal128(..)) || is_signed_integer(input)
    }

    fn accumulator_for(&self, args: &AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let input = args.expr_fields[0].data_type();
        let exact = ExactAccumulator::new(self.kind, input, args.return_field.data_type());
        Ok(match args.is_distinct {
            true => Box::new(DistinctExact { input: input.clone(), values: Default::default(), exact }),
            false => Box::new(exact),
        })
    }
}

impl AggregateUDFImpl for ExactSumAvg {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    /// `sum`: DataFusion's coercions, except that a `bigint` argument is summed as
    /// `numeric(38, 0)`, so that its sum is `numeric` as in Postgres, and smaller integers
    /// stay as they are (DataFusion makes them `bigint`, whose sum would then be `numeric`
    /// too, where Postgres' `sum(int)` is `bigint`). Coercing twice changes nothing.
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let fields: Vec<FieldRef> =
            arg_types.iter().map(|t| Arc::new(Field::new("argument", t.clone(), true))).collect();
        let coerced = datafusion::logical_expr::type_coercion::functions::fields_with_udf(
            &fields,
            self.inner.as_ref(),
        )?;
        Ok(arg_types
            .iter()
            .zip(coerced)
            .map(|(given, field)| match given {
                DataType::Int64 => DataType::Decimal128(38, 0),
                t if is_signed_integer(t) => t.clone(),
                _ => field.data_type().clone(),
            })
            .collect())
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if self.kind == Kind::Sum && arg_types.first().is_some_and(is_signed_integer) {
            return Ok(DataType::Int64);
        }
        match arg_types.first().and_then(|t| decimal_result(self.kind == Kind::Avg, t)) {
            Some(t) => Ok(t),
            None => self.inner.return_type(arg_types),
        }
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let input = args.expr_fields[0].data_type().clone();
        if self.exact(&input) {
            return self.accumulator_for(&args);
        }
        self.inner.inner().accumulator(args)
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let input = args.input_fields[0].data_type();
        if !self.exact(input) {
            return self.inner.inner().state_fields(args);
        }
        if args.is_distinct {
            let item = Arc::new(Field::new_list_field(input.clone(), true));
            let name = format_state_name(args.name, "distinct");
            return Ok(vec![Arc::new(Field::new(name, DataType::List(item), true))]);
        }
        let scale = match input {
            DataType::Decimal128(_, s) => *s,
            _ => 0,
        };
        Ok(vec![
            Arc::new(Field::new(format_state_name(args.name, "sum"), DataType::Decimal256(76, scale), true)),
            Arc::new(Field::new(format_state_name(args.name, "count"), DataType::Int64, true)),
            Arc::new(Field::new(format_state_name(args.name, "nan"), DataType::Int64, true)),
            Arc::new(Field::new(format_state_name(args.name, "pos_inf"), DataType::Int64, true)),
            Arc::new(Field::new(format_state_name(args.name, "neg_inf"), DataType::Int64, true)),
        ])
    }
    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        !self.exact(args.expr_fields[0].data_type()) && self.inner.inner().groups_accumulator_supported(args)
    }
    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        self.inner.inner().create_groups_accumulator(args)
    }
    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let input = args.expr_fields[0].data_type().clone();
        if self.exact(&input) {
            return self.accumulator_for(&args);
        }
        self.inner.inner().create_sliding_accumulator(args)
    }
    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }
    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.inner.inner().set_monotonicity(data_type)
    }
}

fn is_signed_integer(t: &DataType) -> bool {
    matches!(t, DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64)
}

/// A 256-bit running sum and count; the result is checked against the return type.
#[derive(Debug)]
struct ExactAccumulator {
    kind: Kind,
    /// Scale of the input (0 for bigint).
    scale: i8,
    output: DataType,
    sum: i256,
    count: i64,
    /// `NaN`s and infinities among the values, which are not in `sum`.
    specials: SpecialCounts,
}

impl ExactAccumulator {
    fn new(kind: Kind, input: &DataType, output: &DataType) -> Self {
        let scale = match input {
            DataType::Decimal128(_, s) => *s,
            _ => 0,
        };
        ExactAccumulator {
            kind,
            scale,
            output: output.clone(),
            sum: i256::ZERO,
            count: 0,
            specials: SpecialCounts::default(),
        }
    }

    fn add(&mut self, values: &ArrayRef, sign: i64) -> Result<()> {
        let weight = i256::from_i128(i128::from(sign));
        let specials = &mut self.specials;
        let mut add = |v: i256| {
            // Exact: 2^255 is beyond any sum of 2^63 values below 2^128.
            self.sum = self.sum.wrapping_add(v.wrapping_mul(weight));
            self.count += sign;
        };
        match values.data_type() {
            DataType::Decimal128(..) => {
                let values = values.as_primitive::<Decimal128Type>();
                for v in values.iter().flatten() {
                    match specials.count(v, sign) {
                        // Counted, and in the count of values `avg` divides by.
                        true => add(i256::ZERO),
                        false => add(i256::from_i128(v)),
                    }
                }
            }
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
                let values = arrow::compute::cast(values, &DataType::Int64)?;
                let values = values.as_primitive::<Int64Type>();
                values.iter().flatten().for_each(|v| add(i256::from_i128(i128::from(v))));
            }
            other => return Err(DataFusionError::Internal(format!("exact sum over {other}"))),
        }
        Ok(())
    }
}

impl Accumulator for ExactAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], 1)
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], -1)
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Decimal256(Some(self.sum), 76, self.scale),
            ScalarValue::Int64(Some(self.count)),
            ScalarValue::Int64(Some(self.specials.nan)),
            ScalarValue::Int64(Some(self.specials.pos_inf)),
            ScalarValue::Int64(Some(self.specials.neg_inf)),
        ])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let sums = states[0].as_primitive::<Decimal256Type>();
        let counts = states[1].as_primitive::<Int64Type>();
        let special = |at: usize, i: usize| {
            states
                .get(at)
                .map(|s| s.as_primitive::<Int64Type>())
                .filter(|s| s.is_valid(i))
                .map_or(0, |s| s.value(i))
        };
        for i in 0..sums.len() {
            if sums.is_valid(i) && counts.is_valid(i) {
                self.sum = self.sum.wrapping_add(sums.value(i));
                self.count += counts.value(i);
                self.specials.merge(SpecialCounts {
                    nan: special(2, i),
                    pos_inf: special(3, i),
                    neg_inf: special(4, i),
                });
            }
        }
        Ok(())
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.count <= 0 {
            return ScalarValue::try_from(&self.output);
        }
        if let (DataType::Decimal128(p, s), Some(special)) = (&self.output, self.specials.result()) {
            return Ok(ScalarValue::Decimal128(Some(special), *p, *s));
        }
        match (&self.output, self.kind) {
            (DataType::Decimal128(p, s), Kind::Sum) => {
                Ok(ScalarValue::Decimal128(Some(fit(self.sum, self.scale, *p, *s)?), *p, *s))
            }
            (DataType::Decimal128(p, s), Kind::Avg) => {
                Ok(ScalarValue::Decimal128(Some(decimal_avg(self.sum, self.scale, self.count, *s)?), *p, *s))
            }
            (DataType::Int64, Kind::Sum) => match self.sum.to_i128().and_then(|v| i64::try_from(v).ok()) {
                Some(v) => Ok(ScalarValue::Int64(Some(v))),
                None => Err(DataFusionError::ArrowError(
                    Box::new(arrow::error::ArrowError::ArithmeticOverflow("bigint out of range".into())),
                    None,
                )),
            },
            (other, _) => Err(DataFusionError::Internal(format!("exact sum returning {other}"))),
        }
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

/// `sum(DISTINCT x)` and `avg(DISTINCT x)` of decimals and integers: the distinct values
/// (a decimal's `NaN` and infinities among them, by their sentinels), summed exactly by an
/// [`ExactAccumulator`] when the result is asked for.
#[derive(Debug)]
struct DistinctExact {
    input: DataType,
    /// The distinct values, integers widened to `i128`.
    values: std::collections::HashSet<i128>,
    /// Empty; fed the distinct values at [`Accumulator::evaluate`].
    exact: ExactAccumulator,
}

impl DistinctExact {
    fn insert(&mut self, values: &ArrayRef) -> Result<()> {
        match values.data_type() {
            DataType::Decimal128(..) => {
                self.values.extend(values.as_primitive::<Decimal128Type>().iter().flatten())
            }
            _ => {
                let values = arrow::compute::cast(values, &DataType::Int64)?;
                self.values.extend(values.as_primitive::<Int64Type>().iter().flatten().map(i128::from));
            }
        }
        Ok(())
    }

    /// The distinct values as an array of the input's type.
    fn array(&self) -> Result<ArrayRef> {
        let values: Vec<i128> = self.values.iter().copied().collect();
        Ok(match &self.input {
            DataType::Decimal128(p, s) => {
                Arc::new(arrow::array::Decimal128Array::from(values).with_precision_and_scale(*p, *s)?)
            }
            other => {
                // Each came from a value of the input's integer type.
                let narrow: Vec<i64> = values.iter().map(|v| i64::try_from(*v).unwrap_or_default()).collect();
                arrow::compute::cast(&arrow::array::Int64Array::from(narrow), other)?
            }
        })
    }
}

impl Accumulator for DistinctExact {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.insert(&values[0])
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let array = self.array()?;
        let values =
            (0..array.len()).map(|i| ScalarValue::try_from_array(&array, i)).collect::<Result<Vec<_>>>()?;
        Ok(vec![ScalarValue::List(ScalarValue::new_list_nullable(&values, &self.input))])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for list in lists.iter().flatten() {
            self.insert(&list)?;
        }
        Ok(())
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut exact = ExactAccumulator::new(self.exact.kind, &self.input, &self.exact.output);
        exact.update_batch(&[self.array()?])?;
        exact.evaluate()
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * std::mem::size_of::<i128>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Decimal128Array, Int64Array};

    fn decimals(values: &[i128], p: u8, s: i8) -> ArrayRef {
        Arc::new(Decimal128Array::from(values.to_vec()).with_precision_and_scale(p, s).unwrap())
    }

    fn acc(kind: Kind, input: DataType) -> ExactAccumulator {
        let is_avg = kind == Kind::Avg;
        let output = decimal_result(is_avg, &input).unwrap_or(DataType::Int64);
        let scale = if let DataType::Decimal128(_, s) = input { s } else { 0 };
        ExactAccumulator {
            kind,
            scale,
            output,
            sum: i256::ZERO,
            count: 0,
            specials: SpecialCounts::default(),
        }
    }

    fn distinct(kind: Kind, input: DataType) -> DistinctExact {
        let exact = acc(kind, input.clone());
        DistinctExact { input, values: Default::default(), exact }
    }

    /// Expected values from PostgreSQL 15 (`sum(DISTINCT x)` over `Infinity`, 1,
    /// `Infinity`; over `-Infinity`, 2.5, 2.5).
    #[test]
    fn distinct_sums_count_each_value_once_specials_included() {
        use super::super::numeric_special::{NAN, NEG_INF, POS_INF};
        let mut sum = distinct(Kind::Sum, DataType::Decimal128(38, 10));
        sum.update_batch(&[decimals(&[POS_INF, 10_000_000_000, POS_INF], 38, 10)]).unwrap();
        assert_eq!(sum.evaluate().unwrap(), ScalarValue::Decimal128(Some(POS_INF), 38, 10));
        let mut avg = distinct(Kind::Avg, DataType::Decimal128(38, 1));
        avg.update_batch(&[decimals(&[NEG_INF, 25, 25], 38, 1)]).unwrap();
        assert_eq!(avg.evaluate().unwrap(), ScalarValue::Decimal128(Some(NEG_INF), 38, 1));
        avg.update_batch(&[decimals(&[POS_INF], 38, 1)]).unwrap();
        assert_eq!(avg.evaluate().unwrap(), ScalarValue::Decimal128(Some(NAN), 38, 1));
        // Partial states merge as a union: 1 + 2 + 3, each once.
        let ints = |v: Vec<i32>| Arc::new(arrow::array::Int32Array::from(v)) as ArrayRef;
        let (mut a, mut b) = (distinct(Kind::Avg, DataType::Int32), distinct(Kind::Avg, DataType::Int32));
        a.update_batch(&[ints(vec![1, 2, 2])]).unwrap();
        b.update_batch(&[ints(vec![2, 3])]).unwrap();
        let state = b.state().unwrap().remove(0).to_array().unwrap();
        a.merge_batch(&[state]).unwrap();
        assert_eq!(a.evaluate().unwrap(), ScalarValue::Decimal128(Some(20_000_000_000_000_000), 38, 16));
    }

    #[test]
    fn sum_beyond_i128_is_an_error_not_a_wrapped_value() {
        let mut a = acc(Kind::Sum, DataType::Decimal128(38, 0));
        let big = 9 * 10i128.pow(37);
        a.update_batch(&[decimals(&[big, big], 38, 0)]).unwrap();
        let e = a.evaluate().unwrap_err().to_string();
        assert!(e.contains("numeric out of range"), "{e}");
        // Retracting one brings it back in range, exactly.
        a.retract_batch(&[decimals(&[big], 38, 0)]).unwrap();
        assert_eq!(a.evaluate().unwrap(), ScalarValue::Decimal128(Some(big), 38, 0));
    }

    #[test]
    fn avg_is_exact_where_the_intermediate_sum_overflows_i128() {
        let mut a = acc(Kind::Avg, DataType::Decimal128(38, 10));
        let v = 9 * 10i128.pow(27 + 10);
        a.update_batch(&[decimals(&[v; 8], 38, 10)]).unwrap();
        assert_eq!(a.evaluate().unwrap(), ScalarValue::Decimal128(Some(v), 38, 10));
    }

    #[test]
    fn avg_rounds_half_away_from_zero() {
        let mut a = acc(Kind::Avg, DataType::Decimal128(10, 0));
        a.update_batch(&[decimals(&[-1, -1, 0], 10, 0)]).unwrap();
        // -2/3 = -0.66666666... at scale 16 (Postgres: 20 places).
        assert_eq!(a.evaluate().unwrap(), ScalarValue::Decimal128(Some(-6_666_666_666_666_667), 38, 16));
    }

    #[test]
    fn decimal_averages_have_postgres_places_rounded_once() {
        let avg = |values: &[i128], p: u8, s: i8| {
            let mut a = acc(Kind::Avg, DataType::Decimal128(p, s));
            a.update_batch(&[decimals(values, p, s)]).unwrap();
            match a.evaluate().unwrap() {
                ScalarValue::Decimal128(Some(v), 38, scale) => super::super::numeric::numeric_text(v, scale),
                other => panic!("{other:?}"),
            }
        };
        // Expected values from PostgreSQL 15.
        assert_eq!(avg(&[100, 200], 10, 2), "1.5000000000000000");
        assert_eq!(avg(&[1_234_567, 200], 10, 2), "6173.8350000000000000");
        // Postgres: 0.01500000000000000000; the same value at 16 places.
        assert_eq!(avg(&[1, 2], 10, 2), "0.0150000000000000");
        // 1/20001 = 0.0000499975...: once rounded at 16 places, not at 6 and then at 4
        // (which gave 0.0001).
        let mut values = vec![0i128; 20_000];
        values.push(1);
        assert_eq!(avg(&values, 10, 0), "0.0000499975001250");
        // Unconstrained: the places the sum prints (Postgres: 61728395.875000000000).
        assert_eq!(avg(&[1_234_567_895_000_000_000, 22_500_000_000], 38, 10), "61728395.875");
    }

    #[test]
    fn bigint_sums_are_numeric_past_bigint() {
        // bigint arguments are coerced to numeric(38, 0) (see `coerce_types`).
        let coerce = |t: DataType| sum().coerce_types(&[t]).unwrap();
        assert_eq!(coerce(DataType::Int64), vec![DataType::Decimal128(38, 0)]);
        assert_eq!(coerce(DataType::Int32), vec![DataType::Int32]);
        // Coercing again changes nothing.
        assert_eq!(coerce(DataType::Decimal128(38, 0)), vec![DataType::Decimal128(38, 0)]);
        let mut a = acc(Kind::Sum, DataType::Decimal128(38, 0));
        let max = i128::from(i64::MAX);
        a.update_batch(&[decimals(&[max, max], 38, 0)]).unwrap();
        assert_eq!(a.evaluate().unwrap(), ScalarValue::Decimal128(Some(2 * max), 38, 0));
    }

    #[test]
    fn integer_averages_have_postgres_scale() {
        let avg = |values: Vec<i64>| {
            let mut a = acc(Kind::Avg, DataType::Int64);
            a.update_batch(&[Arc::new(Int64Array::from(values)) as ArrayRef]).unwrap();
            match a.evaluate().unwrap() {
                ScalarValue::Decimal128(Some(v), 38, 16) => super::super::numeric::numeric_text(v, 16),
                other => panic!("{other:?}"),
            }
        };
        // Expected values from PostgreSQL 15.
        assert_eq!(avg(vec![1, 2, 2]), "1.6666666666666667");
        assert_eq!(avg(vec![-1, -2, -2]), "-1.6666666666666667");
        assert_eq!(avg(vec![1, 2, 3]), "2.0000000000000000");
        assert_eq!(avg(vec![12345, 12346]), "12345.5000000000000000");
        // Postgres: 1000000000.50000000 (8 places), the same value.
        assert_eq!(avg(vec![1_000_000_000, 1_000_000_001]), "1000000000.5000000000000000");
        // Postgres: 9223372036854775807, rounded to a whole number.
        assert_eq!(avg(vec![i64::MAX, i64::MAX - 1]), "9223372036854775807.0000000000000000");
    }

    #[test]
    fn special_values_are_counted_and_can_be_retracted() {
        use super::super::numeric_special::{NAN, NEG_INF, POS_INF};
        let mut sum = acc(Kind::Sum, DataType::Decimal128(38, 10));
        sum.update_batch(&[decimals(&[POS_INF, 5, NEG_INF], 38, 10)]).unwrap();
        assert_eq!(sum.evaluate().unwrap(), ScalarValue::Decimal128(Some(NAN), 38, 10));
        sum.retract_batch(&[decimals(&[NEG_INF], 38, 10)]).unwrap();
        assert_eq!(sum.evaluate().unwrap(), ScalarValue::Decimal128(Some(POS_INF), 38, 10));
        sum.retract_batch(&[decimals(&[POS_INF], 38, 10)]).unwrap();
        assert_eq!(sum.evaluate().unwrap(), ScalarValue::Decimal128(Some(5), 38, 10));
        let mut avg = acc(Kind::Avg, DataType::Decimal128(10, 2));
        avg.update_batch(&[decimals(&[NAN, 100], 10, 2)]).unwrap();
        let state: Vec<ArrayRef> = avg.state().unwrap().iter().map(|v| v.to_array().unwrap()).collect();
        let mut merged = acc(Kind::Avg, DataType::Decimal128(10, 2));
        merged.merge_batch(&state).unwrap();
        assert_eq!(merged.evaluate().unwrap(), ScalarValue::Decimal128(Some(NAN), 38, 16));
    }

    #[test]
    fn merged_partial_states_sum_exactly() {
        let mut a = acc(Kind::Sum, DataType::Decimal128(38, 2));
        let mut b = acc(Kind::Sum, DataType::Decimal128(38, 2));
        a.update_batch(&[decimals(&[150, -25], 38, 2)]).unwrap();
        b.update_batch(&[decimals(&[1], 38, 2)]).unwrap();
        let state: Vec<ArrayRef> = b.state().unwrap().iter().map(|v| v.to_array().unwrap()).collect();
        a.merge_batch(&state).unwrap();
        assert_eq!(a.evaluate().unwrap(), ScalarValue::Decimal128(Some(126), 38, 2));
    }
}
