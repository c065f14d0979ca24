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
//! Return types: `sum(numeric(p, s))` is `numeric(38, s)`; `avg(numeric(p, s))` is
//! `numeric(38, s + 4)`, and unconstrained `numeric` stays unconstrained for both. `sum`
//! and `avg` of integers keep DataFusion's types (`bigint`, `double precision`).

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

use super::numeric::{div_round, fit, is_unconstrained, out_of_range, pow10, UNCONSTRAINED_SCALE};

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
}

/// `sum`, replacing DataFusion's.
pub fn sum() -> AggregateUDF {
    AggregateUDF::new_from_impl(ExactSumAvg {
        kind: Kind::Sum,
        inner: datafusion::functions_aggregate::sum::sum_udaf(),
    })
}

/// `avg`, replacing DataFusion's.
pub fn avg() -> AggregateUDF {
    AggregateUDF::new_from_impl(ExactSumAvg {
        kind: Kind::Avg,
        inner: datafusion::functions_aggregate::average::avg_udaf(),
    })
}

/// The return type of `sum`/`avg` over a decimal of scale `s`, as declared for views too.
pub fn decimal_result(kind_is_avg: bool, input: &DataType) -> Option<DataType> {
    let DataType::Decimal128(_, s) = input else { return None };
    let scale = match (kind_is_avg, is_unconstrained(input)) {
        (_, true) => UNCONSTRAINED_SCALE,
        (false, false) => *s,
        (true, false) => (*s + 4).min(38),
    };
    Some(DataType::Decimal128(38, scale))
}

impl ExactSumAvg {
    /// Whether this call is computed here rather than by DataFusion.
    fn exact(&self, input: &DataType, distinct: bool) -> bool {
        !distinct
            && matches!((self.kind, input), (_, DataType::Decimal128(..)) | (Kind::Sum, DataType::Int64))
    }

    fn accumulator_for(&self, input: &DataType, output: &DataType) -> Result<Box<dyn Accumulator>> {
        let scale = match input {
            DataType::Decimal128(_, s) => *s,
            _ => 0,
        };
        Ok(Box::new(ExactAccumulator {
            kind: self.kind,
            scale,
            output: output.clone(),
            sum: i256::ZERO,
            count: 0,
        }))
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
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first().and_then(|t| decimal_result(self.kind == Kind::Avg, t)) {
            Some(t) => Ok(t),
            None => self.inner.return_type(arg_types),
        }
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let input = args.expr_fields[0].data_type().clone();
        if self.exact(&input, args.is_distinct) {
            return self.accumulator_for(&input, args.return_field.data_type());
        }
        self.inner.inner().accumulator(args)
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let input = args.input_fields[0].data_type();
        if !self.exact(input, args.is_distinct) {
            return self.inner.inner().state_fields(args);
        }
        let scale = match input {
            DataType::Decimal128(_, s) => *s,
            _ => 0,
        };
        Ok(vec![
            Arc::new(Field::new(format_state_name(args.name, "sum"), DataType::Decimal256(76, scale), true)),
            Arc::new(Field::new(format_state_name(args.name, "count"), DataType::Int64, true)),
        ])
    }
    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        !self.exact(args.expr_fields[0].data_type(), args.is_distinct)
            && self.inner.inner().groups_accumulator_supported(args)
    }
    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        self.inner.inner().create_groups_accumulator(args)
    }
    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let input = args.expr_fields[0].data_type().clone();
        if self.exact(&input, args.is_distinct) {
            return self.accumulator_for(&input, args.return_field.data_type());
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

/// A 256-bit running sum and count; the result is checked against the return type.
#[derive(Debug)]
struct ExactAccumulator {
    kind: Kind,
    /// Scale of the input (0 for bigint).
    scale: i8,
    output: DataType,
    sum: i256,
    count: i64,
}

impl ExactAccumulator {
    fn add(&mut self, values: &ArrayRef, sign: i64) -> Result<()> {
        let weight = i256::from_i128(i128::from(sign));
        let mut add = |v: i256| {
            // Exact: 2^255 is beyond any sum of 2^63 values below 2^128.
            self.sum = self.sum.wrapping_add(v.wrapping_mul(weight));
            self.count += sign;
        };
        match values.data_type() {
            DataType::Decimal128(..) => {
                let values = values.as_primitive::<Decimal128Type>();
                values.iter().flatten().for_each(|v| add(i256::from_i128(v)));
            }
            DataType::Int64 => {
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
        ])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let sums = states[0].as_primitive::<Decimal256Type>();
        let counts = states[1].as_primitive::<Int64Type>();
        for i in 0..sums.len() {
            if sums.is_valid(i) && counts.is_valid(i) {
                self.sum = self.sum.wrapping_add(sums.value(i));
                self.count += counts.value(i);
            }
        }
        Ok(())
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.count <= 0 {
            return ScalarValue::try_from(&self.output);
        }
        match (&self.output, self.kind) {
            (DataType::Decimal128(p, s), Kind::Sum) => {
                Ok(ScalarValue::Decimal128(Some(fit(self.sum, self.scale, *p, *s)?), *p, *s))
            }
            (DataType::Decimal128(p, s), Kind::Avg) => {
                // Divide at two more digits than the result, then round once in `fit`.
                let extra = i32::from(*s) - i32::from(self.scale) + 2;
                let n = i256::from_i128(i128::from(self.count));
                let scaled = if extra >= 0 {
                    self.sum.checked_mul(pow10(extra.unsigned_abs()))
                } else {
                    div_round(self.sum, pow10(extra.unsigned_abs()))
                };
                let avg = scaled.and_then(|v| div_round(v, n)).ok_or_else(|| out_of_range("avg"))?;
                Ok(ScalarValue::Decimal128(Some(fit(avg, *s + 2, *p, *s)?), *p, *s))
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
        ExactAccumulator { kind, scale, output, sum: i256::ZERO, count: 0 }
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
        // -2/3 = -0.66666666... at scale 4.
        assert_eq!(a.evaluate().unwrap(), ScalarValue::Decimal128(Some(-6667), 38, 4));
    }

    #[test]
    fn bigint_sum_overflow_is_an_error() {
        let mut a = acc(Kind::Sum, DataType::Int64);
        a.update_batch(&[Arc::new(Int64Array::from(vec![i64::MAX, 1])) as ArrayRef]).unwrap();
        assert!(a.evaluate().unwrap_err().to_string().contains("bigint out of range"));
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
