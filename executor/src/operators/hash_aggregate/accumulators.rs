//! Columnar per-group accumulators for [`HashAggregate`](super::HashAggregate).
//!
//! Every accumulator keeps its state in vectors indexed by group slot, and every update is
//! weighted by the row's op (`+1`/`-1`), so the state is a commutative group: applying rows
//! in any order (even a delete before its insert) gives the same state once all have arrived.
//! Integer and decimal sums use wrapping 256-bit arithmetic for the same reason (a transient
//! overflow cancels out), and 256 bits never wrap for real (2^63 values below 2^128), so the
//! sum is exact and a result outside its type is an error, `numeric out of range`, never a
//! wrapped value. Decimal averages round half away from zero, as Postgres does. Min/max and count(DISTINCT) keep a multiset of arrow-row encoded
//! values per group, so retracting the current extreme reveals the next one.
//!
//! For checkpoints, [`GroupAccumulator::save`] appends one group's complete state to a byte
//! buffer and [`GroupAccumulator::load`] reads it back into a slot (see [`codec`] for the
//! encoding). Min/max/count(DISTINCT) values are kept as their arrow-row bytes, so the saved
//! state is only readable by the same Arrow row format (i.e. the same Arrow major version).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, ArrowPrimitiveType, AsArray, BooleanArray, Decimal128Array,
    Float64Array, Int64Array,
};
use arrow::datatypes::i256;
use arrow::datatypes::*;
use arrow::row::{RowConverter, SortField};

use crate::error::{ExecError, ExecResult};
use crate::functions::numeric::fit;
use crate::functions::numeric_aggregates::decimal_avg;
use crate::functions::numeric_special::{self, SpecialCounts};
use weir_plan::job_graph::AggregateKind;

/// The state of one aggregate call over all groups of the operator.
pub(crate) trait GroupAccumulator: Send {
    /// The type [`Self::evaluate`] returns (cast to the declared output type afterwards).
    fn output_type(&self) -> DataType;
    /// Grows the state to `groups` slots.
    fn resize(&mut self, groups: usize);
    /// Empties slot `group` so it can be reused by another group.
    fn reset(&mut self, group: usize);
    /// Adds row `i` of `values` (None for count(*)) to group `groups[i]` with weight `weights[i]`.
    fn update(&mut self, values: Option<&ArrayRef>, groups: &[u32], weights: &[i8]) -> ExecResult<()>;
    /// The current value of each listed group.
    fn evaluate(&mut self, groups: &[u32]) -> ExecResult<ArrayRef>;
    /// Appends the complete state of slot `group` to `out`: loading it into any slot gives a
    /// group that updates and evaluates exactly as this one does.
    fn save(&self, group: usize, out: &mut Vec<u8>);
    /// Reads what [`Self::save`] appended from the front of `input` (advancing it past those
    /// bytes only) into slot `group`, which must exist (see [`Self::resize`]). The slot is
    /// overwritten whatever it held, and left unchanged if the input is truncated or corrupt.
    fn load(&mut self, group: usize, input: &mut &[u8]) -> ExecResult<()>;
}

/// Builds the accumulator of one aggregate call; `input` is the argument's type (None for
/// count(*)), `output` the declared result type.
pub(crate) fn create_accumulator(
    kind: AggregateKind,
    input: Option<&DataType>,
    output: &DataType,
    append_only: bool,
) -> ExecResult<Box<dyn GroupAccumulator>> {
    let arg = || input.ok_or_else(|| ExecError::InvalidGraph(format!("{kind:?} needs an input column")));
    Ok(match kind {
        AggregateKind::CountRows => Box::new(Counts::new(Counted::Rows)),
        AggregateKind::Count => {
            arg()?;
            Box::new(Counts::new(Counted::NonNull))
        }
        AggregateKind::Sum | AggregateKind::Avg => Box::new(SumAvg::new(kind, arg()?, output)?),
        AggregateKind::Min if append_only => Box::new(Extreme::new(arg()?, false)?),
        AggregateKind::Max if append_only => Box::new(Extreme::new(arg()?, true)?),
        AggregateKind::Min => Box::new(Multiset::new(arg()?, SetMode::Min)?),
        AggregateKind::Max => Box::new(Multiset::new(arg()?, SetMode::Max)?),
        AggregateKind::CountDistinct => Box::new(Multiset::new(arg()?, SetMode::Distinct)?),
        AggregateKind::BoolAnd | AggregateKind::BoolOr => {
            let dt = arg()?;
            if dt != &DataType::Boolean {
                return Err(ExecError::InvalidGraph(format!("{kind:?} over {dt}: expected Boolean")));
            }
            let or = kind == AggregateKind::BoolOr;
            Box::new(Counts::new(if or { Counted::BoolOr } else { Counted::BoolAnd }))
        }
    })
}

fn internal(what: &str, dt: &DataType) -> ExecError {
    ExecError::Internal(format!("{what}: unexpected input type {dt}"))
}

/// The byte encoding of saved group state: versionless, little-endian. Integers are LEB128
/// varints (signed ones zigzag-mapped first), floats their IEEE bits as 8 fixed bytes, byte
/// strings a varint length then the bytes. Readers take `&mut &[u8]`, advance it past what
/// they read, and fail with [`ExecError::Internal`] on truncated or malformed input.
mod codec {
    use crate::error::{ExecError, ExecResult};
    use arrow::datatypes::i256;

    pub(super) fn corrupt(what: &str) -> ExecError {
        ExecError::Internal(format!("corrupt aggregate state: {what}"))
    }

    pub(super) fn put_u128(out: &mut Vec<u8>, mut v: u128) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    pub(super) fn get_u128(input: &mut &[u8]) -> ExecResult<u128> {
        let mut v = 0u128;
        for (i, &b) in input.iter().enumerate() {
            let shift = 7 * i as u32;
            // 19 bytes hold 133 bits: the last may only carry the top 2 bits of a u128.
            if shift >= 128 || (shift == 126 && b > 0b11) {
                return Err(corrupt("varint overflows 128 bits"));
            }
            v |= u128::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                *input = &input[i + 1..];
                return Ok(v);
            }
        }
        Err(corrupt("truncated varint"))
    }

    pub(super) fn put_i128(out: &mut Vec<u8>, v: i128) {
        put_u128(out, ((v << 1) ^ (v >> 127)) as u128);
    }

    pub(super) fn get_i128(input: &mut &[u8]) -> ExecResult<i128> {
        let z = get_u128(input)?;
        Ok((z >> 1) as i128 ^ -((z & 1) as i128))
    }

    /// A zigzag varint of 256 bits; for values within `i128` the bytes are exactly
    /// [`put_i128`]'s, so states saved before sums were widened still load.
    pub(super) fn put_i256(out: &mut Vec<u8>, v: i256) {
        if let Some(narrow) = v.to_i128() {
            return put_i128(out, narrow);
        }
        let (lo, hi) = v.to_parts();
        // zigzag: 2v for v >= 0, 2(!v) + 1 for v < 0.
        let (lo, hi, bit) = if v.is_negative() { (!lo, !(hi as u128), 1) } else { (lo, hi as u128, 0) };
        let (mut lo, mut hi) = (lo << 1 | bit, hi << 1 | lo >> 127);
        while hi != 0 || lo >= 0x80 {
            out.push((lo as u8) | 0x80);
            lo = lo >> 7 | hi << 121;
            hi >>= 7;
        }
        out.push(lo as u8);
    }

    pub(super) fn get_i256(input: &mut &[u8]) -> ExecResult<i256> {
        let (mut lo, mut hi) = (0u128, 0u128);
        for (i, &b) in input.iter().enumerate() {
            let shift = 7 * i as u32;
            // 37 bytes hold 259 bits: the last may only carry the top 4 bits.
            if shift >= 256 || (shift == 252 && b > 0b1111) {
                return Err(corrupt("varint overflows 256 bits"));
            }
            let bits = u128::from(b & 0x7f);
            if shift < 128 {
                lo |= bits << shift;
                if shift > 121 {
                    hi |= bits >> (128 - shift);
                }
            } else {
                hi |= bits << (shift - 128);
            }
            if b & 0x80 == 0 {
                *input = &input[i + 1..];
                let negative = lo & 1 == 1;
                let (lo, hi) = (lo >> 1 | hi << 127, hi >> 1);
                let (lo, hi) = if negative { (!lo, !hi) } else { (lo, hi) };
                return Ok(i256::from_parts(lo, hi as i128));
            }
        }
        Err(corrupt("truncated varint"))
    }

    pub(super) fn put_i64(out: &mut Vec<u8>, v: i64) {
        put_i128(out, i128::from(v));
    }

    pub(super) fn get_i64(input: &mut &[u8]) -> ExecResult<i64> {
        i64::try_from(get_i128(input)?).map_err(|_| corrupt("integer out of i64 range"))
    }

    pub(super) fn get_len(input: &mut &[u8]) -> ExecResult<usize> {
        usize::try_from(get_u128(input)?).map_err(|_| corrupt("length out of range"))
    }

    fn take<'a>(input: &mut &'a [u8], n: usize, what: &str) -> ExecResult<&'a [u8]> {
        if input.len() < n {
            return Err(corrupt(&format!("truncated {what} ({n} bytes wanted, {} left)", input.len())));
        }
        let (head, rest) = input.split_at(n);
        *input = rest;
        Ok(head)
    }

    pub(super) fn put_f64(out: &mut Vec<u8>, v: f64) {
        out.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    pub(super) fn get_f64(input: &mut &[u8]) -> ExecResult<f64> {
        let mut bits = [0u8; 8];
        bits.copy_from_slice(take(input, 8, "float")?);
        Ok(f64::from_bits(u64::from_le_bytes(bits)))
    }

    pub(super) fn put_u8(out: &mut Vec<u8>, v: u8) {
        out.push(v);
    }

    pub(super) fn get_u8(input: &mut &[u8]) -> ExecResult<u8> {
        Ok(take(input, 1, "byte")?[0])
    }

    pub(super) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
        put_u128(out, bytes.len() as u128);
        out.extend_from_slice(bytes);
    }

    pub(super) fn get_bytes<'a>(input: &mut &'a [u8]) -> ExecResult<&'a [u8]> {
        let n = get_len(input)?;
        take(input, n, "byte string")
    }
}

/// Reads one saved arrow-row encoded value. Every type whose row encoding has a fixed width
/// (the NULL row's) is checked to have it, so corrupt bytes fail here instead of panicking
/// in the row decoder; variable-width values (strings, binaries, nested types) are only
/// framed, their content trusted (the state backend checksums what it stores).
fn get_row_value(input: &mut &[u8], input_type: &DataType, null_row: &[u8]) -> ExecResult<Box<[u8]>> {
    let value = codec::get_bytes(input)?;
    let fixed =
        input_type.is_primitive() || matches!(input_type, DataType::Boolean | DataType::FixedSizeBinary(_));
    if value.is_empty() || (fixed && value.len() != null_row.len()) {
        let msg = format!("a {input_type} value of {} bytes", value.len());
        return Err(codec::corrupt(&msg));
    }
    Ok(value.into())
}

#[derive(Clone, Copy, PartialEq)]
enum Counted {
    Rows,
    NonNull,
    BoolAnd,
    BoolOr,
}

/// count(*), count(x), and bool_and/bool_or (counts of true and false values) per group.
struct Counts {
    what: Counted,
    /// Rows, non-null values, or true values.
    counts: Vec<i64>,
    falses: Vec<i64>,
}

impl Counts {
    fn new(what: Counted) -> Self {
        Self { what, counts: vec![], falses: vec![] }
    }
}

impl GroupAccumulator for Counts {
    fn output_type(&self) -> DataType {
        match self.what {
            Counted::Rows | Counted::NonNull => DataType::Int64,
            Counted::BoolAnd | Counted::BoolOr => DataType::Boolean,
        }
    }
    fn resize(&mut self, groups: usize) {
        self.counts.resize(groups, 0);
        if self.output_type() == DataType::Boolean {
            self.falses.resize(groups, 0);
        }
    }
    fn reset(&mut self, group: usize) {
        self.counts[group] = 0;
        if let Some(falses) = self.falses.get_mut(group) {
            *falses = 0;
        }
    }
    fn update(&mut self, values: Option<&ArrayRef>, groups: &[u32], weights: &[i8]) -> ExecResult<()> {
        let rows = groups.iter().zip(weights).enumerate();
        match values {
            Some(v) if matches!(self.what, Counted::BoolAnd | Counted::BoolOr) => {
                let bools = v.as_boolean_opt().ok_or_else(|| internal("bool_and/or", v.data_type()))?;
                for (i, (&g, &w)) in rows.filter(|(i, _)| bools.is_valid(*i)) {
                    let counts = if bools.value(i) { &mut self.counts } else { &mut self.falses };
                    counts[g as usize] += i64::from(w);
                }
            }
            Some(v) if self.what == Counted::NonNull && v.null_count() > 0 => rows
                .filter(|(i, _)| v.is_valid(*i))
                .for_each(|(_, (&g, &w))| self.counts[g as usize] += i64::from(w)),
            _ => groups.iter().zip(weights).for_each(|(&g, &w)| self.counts[g as usize] += i64::from(w)),
        }
        Ok(())
    }
    fn evaluate(&mut self, groups: &[u32]) -> ExecResult<ArrayRef> {
        let counts = groups.iter().map(|&g| self.counts[g as usize]);
        if matches!(self.what, Counted::Rows | Counted::NonNull) {
            return Ok(Arc::new(Int64Array::from_iter_values(counts)));
        }
        // bool_or: true if any true; bool_and: false if any false; NULL over no values.
        let or = self.what == Counted::BoolOr;
        let result = groups.iter().map(|&g| {
            let (t, f) = (self.counts[g as usize] > 0, self.falses[g as usize] > 0);
            (t || f).then_some(if or { t } else { !f })
        });
        Ok(Arc::new(BooleanArray::from_iter(result)))
    }
    fn save(&self, group: usize, out: &mut Vec<u8>) {
        codec::put_i64(out, self.counts[group]);
        if let Some(&falses) = self.falses.get(group) {
            codec::put_i64(out, falses);
        }
    }
    fn load(&mut self, group: usize, input: &mut &[u8]) -> ExecResult<()> {
        let mut rest = *input;
        let count = codec::get_i64(&mut rest)?;
        let falses = match self.output_type() {
            DataType::Boolean => Some(codec::get_i64(&mut rest)?),
            _ => None,
        };
        self.counts[group] = count;
        if let (Some(slot), Some(falses)) = (self.falses.get_mut(group), falses) {
            *slot = falses;
        }
        *input = rest;
        Ok(())
    }
}

/// An exact sum as a float, for `avg` returning `double precision`.
fn i256_to_f64(v: i256) -> f64 {
    v.to_i128().map_or_else(|| v.to_string().parse().unwrap_or(f64::NAN), |v| v as f64)
}

#[derive(Clone, Copy, PartialEq)]
enum Num {
    /// Signed/unsigned integers, summed exactly in i128.
    Int,
    /// Decimal128 of this scale, summed exactly in i128.
    Decimal(i8),
    Float,
}

#[derive(Clone, Copy)]
enum Finish {
    Sum,
    AvgFloat,
    /// Average as a decimal of this scale (truncating integer division).
    AvgDecimal(i8),
}

/// sum(x) and avg(x): a running sum and the count of non-null values per group.
struct SumAvg {
    num: Num,
    finish: Finish,
    exact: Vec<i256>,
    float: Vec<f64>,
    counts: Vec<i64>,
    /// Decimal `NaN`s and infinities, which are not in `exact` (see [`SpecialCounts`]).
    specials: Vec<SpecialCounts>,
}

/// Marks a saved decimal group that holds special values: written where the count would
/// be (a value no `i64` count takes), then the count and the three special counts. Groups
/// without special values are saved as before, so older checkpoints load.
const SPECIALS_FOLLOW: i128 = 1 << 100;

impl SumAvg {
    fn new(kind: AggregateKind, input: &DataType, output: &DataType) -> ExecResult<Self> {
        let num = match input {
            dt if dt.is_integer() => Num::Int,
            DataType::Decimal128(_, s) => Num::Decimal(*s),
            dt if dt.is_floating() => Num::Float,
            dt => {
                return Err(ExecError::InvalidGraph(format!(
                    "{kind:?} over {dt} is not supported (only integers, floats and Decimal128)"
                )))
            }
        };
        let finish = match (kind, num, output) {
            (AggregateKind::Sum, ..) => Finish::Sum,
            (_, Num::Int | Num::Decimal(_), DataType::Decimal128(_, s)) => Finish::AvgDecimal(*s),
            _ => Finish::AvgFloat,
        };
        Ok(Self { num, finish, exact: vec![], float: vec![], counts: vec![], specials: vec![] })
    }
}

/// A running sum: exact (wrapping, so transient overflows cancel) or floating.
trait Summand: Copy {
    fn add_weighted(self, value: Self, weight: i8) -> Self;
}

impl Summand for i256 {
    fn add_weighted(self, value: i256, weight: i8) -> i256 {
        self.wrapping_add(value.wrapping_mul(i256::from(weight)))
    }
}

impl Summand for f64 {
    fn add_weighted(self, value: f64, weight: i8) -> f64 {
        self + value * f64::from(weight)
    }
}

/// Adds the non-null `values` (of Arrow type `T`) into `sums` and `counts`, typed once.
fn add<T: ArrowPrimitiveType, S: Summand>(
    values: &ArrayRef,
    groups: &[u32],
    weights: &[i8],
    sums: &mut [S],
    counts: &mut [i64],
    convert: impl Fn(T::Native) -> S,
) -> ExecResult<()> {
    let values = values.as_primitive_opt::<T>().ok_or_else(|| internal("sum", values.data_type()))?;
    let raw = values.values();
    for (i, (&g, &w)) in groups.iter().zip(weights).enumerate().filter(|(i, _)| values.is_valid(*i)) {
        sums[g as usize] = sums[g as usize].add_weighted(convert(raw[i]), w);
        counts[g as usize] += i64::from(w);
    }
    Ok(())
}

/// [`add`] for decimals: the special values are counted in `specials`, not summed.
fn add_decimals(
    values: &ArrayRef,
    groups: &[u32],
    weights: &[i8],
    sums: &mut [i256],
    counts: &mut [i64],
    specials: &mut [SpecialCounts],
) -> ExecResult<()> {
    let values =
        values.as_primitive_opt::<Decimal128Type>().ok_or_else(|| internal("sum", values.data_type()))?;
    let raw = values.values();
    for (i, (&g, &w)) in groups.iter().zip(weights).enumerate().filter(|(i, _)| values.is_valid(*i)) {
        let g = g as usize;
        if !specials[g].count(raw[i], i64::from(w)) {
            sums[g] = sums[g].add_weighted(i256::from(raw[i]), w);
        }
        counts[g] += i64::from(w);
    }
    Ok(())
}

impl SumAvg {
    /// The group's result when it holds a special value.
    fn special(&self, group: u32) -> Option<i128> {
        self.specials.get(group as usize).and_then(SpecialCounts::result)
    }
}

impl GroupAccumulator for SumAvg {
    fn output_type(&self) -> DataType {
        match (self.finish, self.num) {
            (Finish::Sum, Num::Int) => DataType::Decimal128(38, 0),
            (Finish::Sum, Num::Decimal(s)) | (Finish::AvgDecimal(s), _) => DataType::Decimal128(38, s),
            _ => DataType::Float64,
        }
    }
    fn resize(&mut self, groups: usize) {
        match self.num {
            Num::Float => self.float.resize(groups, 0.0),
            _ => self.exact.resize(groups, i256::ZERO),
        }
        self.counts.resize(groups, 0);
        if matches!(self.num, Num::Decimal(_)) {
            self.specials.resize(groups, SpecialCounts::default());
        }
    }
    fn reset(&mut self, group: usize) {
        match self.num {
            Num::Float => self.float[group] = 0.0,
            _ => self.exact[group] = i256::ZERO,
        }
        self.counts[group] = 0;
        if let Some(specials) = self.specials.get_mut(group) {
            *specials = SpecialCounts::default();
        }
    }
    fn update(&mut self, values: Option<&ArrayRef>, groups: &[u32], weights: &[i8]) -> ExecResult<()> {
        let values = values.ok_or_else(|| ExecError::Internal("sum/avg without input".into()))?;
        let (e, f, c) = (&mut self.exact, &mut self.float, &mut self.counts);
        match values.data_type() {
            DataType::Int8 => add::<Int8Type, _>(values, groups, weights, e, c, i256::from),
            DataType::Int16 => add::<Int16Type, _>(values, groups, weights, e, c, i256::from),
            DataType::Int32 => add::<Int32Type, _>(values, groups, weights, e, c, i256::from),
            DataType::Int64 => add::<Int64Type, _>(values, groups, weights, e, c, i256::from),
            DataType::UInt8 => {
                add::<UInt8Type, _>(values, groups, weights, e, c, |v| i256::from(i64::from(v)))
            }
            DataType::UInt16 => {
                add::<UInt16Type, _>(values, groups, weights, e, c, |v| i256::from(i64::from(v)))
            }
            DataType::UInt32 => {
                add::<UInt32Type, _>(values, groups, weights, e, c, |v| i256::from(i64::from(v)))
            }
            DataType::UInt64 => {
                add::<UInt64Type, _>(values, groups, weights, e, c, |v| i256::from(i128::from(v)))
            }
            DataType::Decimal128(..) => add_decimals(values, groups, weights, e, c, &mut self.specials),
            DataType::Float16 => add::<Float16Type, _>(values, groups, weights, f, c, f64::from),
            DataType::Float32 => add::<Float32Type, _>(values, groups, weights, f, c, f64::from),
            DataType::Float64 => add::<Float64Type, _>(values, groups, weights, f, c, |v| v),
            dt => Err(internal("sum", dt)),
        }
    }
    fn evaluate(&mut self, groups: &[u32]) -> ExecResult<ArrayRef> {
        let (num, count) = (self.num, |g: u32| self.counts[g as usize]);
        if num == Num::Float {
            for &g in groups {
                // No values left: drop the rounding residue of the retracted ones.
                if count(g) == 0 {
                    self.float[g as usize] = 0.0;
                }
            }
        }
        let (exact, float) = (&self.exact, &self.float);
        Ok(match self.finish {
            Finish::Sum if num == Num::Float => Arc::new(Float64Array::from_iter(
                groups.iter().map(|&g| (count(g) > 0).then(|| float[g as usize])),
            )),
            Finish::Sum => {
                let scale = if let Num::Decimal(s) = num { s } else { 0 };
                let mut sums = Vec::with_capacity(groups.len());
                for &g in groups {
                    sums.push(match (count(g) > 0, self.special(g)) {
                        (false, _) => None,
                        (true, Some(special)) => Some(special),
                        (true, None) => Some(fit(exact[g as usize], scale, 38, scale)?),
                    });
                }
                Arc::new(Decimal128Array::from(sums).with_precision_and_scale(38, scale)?)
            }
            Finish::AvgFloat => {
                let divisor = if let Num::Decimal(s) = num { 10f64.powi(i32::from(s)) } else { 1.0 };
                Arc::new(Float64Array::from_iter(groups.iter().map(|&g| {
                    let g_ = g as usize;
                    let sum = if num == Num::Float { float[g_] } else { i256_to_f64(exact[g_]) / divisor };
                    let special = self.special(g).map(|v| numeric_special::to_f64(v, 0));
                    (count(g) > 0).then(|| special.unwrap_or(sum / count(g) as f64))
                })))
            }
            Finish::AvgDecimal(out_scale) => {
                let in_scale = if let Num::Decimal(s) = num { s } else { 0 };
                let mut avgs = Vec::with_capacity(groups.len());
                for &g in groups {
                    avgs.push(match count(g) {
                        n if n <= 0 => None,
                        _ if self.special(g).is_some() => self.special(g),
                        // Postgres' places for the quotient, as in batch queries.
                        n => Some(
                            decimal_avg(exact[g as usize], in_scale, n, out_scale)
                                .map_err(ExecError::DataFusion)?,
                        ),
                    });
                }
                Arc::new(Decimal128Array::from(avgs).with_precision_and_scale(38, out_scale)?)
            }
        })
    }
    fn save(&self, group: usize, out: &mut Vec<u8>) {
        match self.num {
            // The raw sum, including the rounding residue of retracted values.
            Num::Float => codec::put_f64(out, self.float[group]),
            _ => codec::put_i256(out, self.exact[group]),
        }
        match self.specials.get(group).filter(|s| !s.is_zero()) {
            None => codec::put_i64(out, self.counts[group]),
            Some(specials) => {
                codec::put_i128(out, SPECIALS_FOLLOW);
                for count in [self.counts[group], specials.nan, specials.pos_inf, specials.neg_inf] {
                    codec::put_i64(out, count);
                }
            }
        }
    }
    fn load(&mut self, group: usize, input: &mut &[u8]) -> ExecResult<()> {
        let mut rest = *input;
        match self.num {
            Num::Float => {
                let sum = codec::get_f64(&mut rest)?;
                let count = codec::get_i64(&mut rest)?;
                self.float[group] = sum;
                self.counts[group] = count;
            }
            _ => {
                let sum = codec::get_i256(&mut rest)?;
                let count = match codec::get_i128(&mut rest)? {
                    SPECIALS_FOLLOW => {
                        let count = codec::get_i64(&mut rest)?;
                        let specials = SpecialCounts {
                            nan: codec::get_i64(&mut rest)?,
                            pos_inf: codec::get_i64(&mut rest)?,
                            neg_inf: codec::get_i64(&mut rest)?,
                        };
                        let slot =
                            self.specials.get_mut(group).ok_or_else(|| codec::corrupt("special counts"))?;
                        *slot = specials;
                        count
                    }
                    count => i64::try_from(count).map_err(|_| codec::corrupt("integer out of i64 range"))?,
                };
                self.exact[group] = sum;
                self.counts[group] = count;
            }
        }
        *input = rest;
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq)]
enum SetMode {
    Min,
    Max,
    Distinct,
}

/// min, max and count(DISTINCT): per group an ordered multiset of arrow-row encoded values
/// (their byte order is the value order) with multiplicities; entries at 0 are dropped.
struct Multiset {
    mode: SetMode,
    input_type: DataType,
    converter: RowConverter,
    /// The encoding of NULL, decoded for groups without values.
    null_row: Box<[u8]>,
    sets: Vec<BTreeMap<Box<[u8]>, i64>>,
    /// Per group, the number of values with a positive multiplicity (for Distinct).
    distinct: Vec<i64>,
}

impl Multiset {
    fn new(input: &DataType, mode: SetMode) -> ExecResult<Self> {
        let converter = RowConverter::new(vec![SortField::new(input.clone())])
            .map_err(|e| ExecError::InvalidGraph(format!("min/max/count distinct over {input}: {e}")))?;
        let null_row = converter.convert_columns(&[new_null_array(input, 1)])?.row(0).as_ref().into();
        Ok(Self { mode, input_type: input.clone(), converter, null_row, sets: vec![], distinct: vec![] })
    }
}

impl GroupAccumulator for Multiset {
    fn output_type(&self) -> DataType {
        if self.mode == SetMode::Distinct {
            DataType::Int64
        } else {
            self.input_type.clone()
        }
    }
    fn resize(&mut self, groups: usize) {
        self.sets.resize_with(groups, BTreeMap::new);
        self.distinct.resize(groups, 0);
    }
    fn reset(&mut self, group: usize) {
        self.sets[group] = BTreeMap::new();
        self.distinct[group] = 0;
    }
    fn update(&mut self, values: Option<&ArrayRef>, groups: &[u32], weights: &[i8]) -> ExecResult<()> {
        let values = values.ok_or_else(|| ExecError::Internal("min/max without input".into()))?;
        // count(DISTINCT x) counts -0 and 0 once, as Postgres does.
        let rows = self
            .converter
            .convert_columns(&crate::operators::float_keys::normalized(std::slice::from_ref(values)))?;
        for (i, (&g, &w)) in groups.iter().zip(weights).enumerate() {
            if values.is_null(i) || w == 0 {
                continue;
            }
            let (set, key) = (&mut self.sets[g as usize], rows.row(i));
            let before = set.get(key.as_ref()).copied().unwrap_or(0);
            let after = before + i64::from(w);
            if after == 0 {
                set.remove(key.as_ref());
            } else if let Some(m) = set.get_mut(key.as_ref()) {
                *m = after;
            } else {
                set.insert(key.as_ref().into(), after);
            }
            self.distinct[g as usize] += i64::from(after > 0) - i64::from(before > 0);
        }
        Ok(())
    }
    fn evaluate(&mut self, groups: &[u32]) -> ExecResult<ArrayRef> {
        if self.mode == SetMode::Distinct {
            let counts = groups.iter().map(|&g| self.distinct[g as usize]);
            return Ok(Arc::new(Int64Array::from_iter_values(counts)));
        }
        let parser = self.converter.parser();
        let rows = groups.iter().map(|&g| {
            let mut present = self.sets[g as usize].iter().filter(|(_, &m)| m > 0);
            let extreme = if self.mode == SetMode::Max { present.next_back() } else { present.next() };
            parser.parse(extreme.map_or(&self.null_row, |(value, _)| value))
        });
        let mut columns = self.converter.convert_rows(rows)?;
        columns.pop().ok_or_else(|| ExecError::Internal("min/max: no column decoded".into()))
    }
    /// The number of entries, then each (in value order) as its row bytes and multiplicity.
    fn save(&self, group: usize, out: &mut Vec<u8>) {
        let set = &self.sets[group];
        codec::put_u128(out, set.len() as u128);
        for (value, &multiplicity) in set {
            codec::put_bytes(out, value);
            codec::put_i64(out, multiplicity);
        }
    }
    fn load(&mut self, group: usize, input: &mut &[u8]) -> ExecResult<()> {
        let mut rest = *input;
        let entries = codec::get_len(&mut rest)?;
        let (mut set, mut distinct) = (BTreeMap::new(), 0);
        // Each entry takes at least 2 bytes, so a corrupt count fails on the input's end.
        for _ in 0..entries {
            let value = get_row_value(&mut rest, &self.input_type, &self.null_row)?;
            let multiplicity = codec::get_i64(&mut rest)?;
            if multiplicity == 0 {
                return Err(codec::corrupt("a multiset entry of multiplicity 0"));
            }
            if set.insert(value, multiplicity).is_some() {
                return Err(codec::corrupt("a repeated multiset entry"));
            }
            distinct += i64::from(multiplicity > 0);
        }
        self.sets[group] = set;
        self.distinct[group] = distinct;
        *input = rest;
        Ok(())
    }
}

/// min and max over an append-only input: nothing is ever retracted, so each group keeps
/// only its current extreme (arrow-row encoded, whose byte order is the value order).
struct Extreme {
    max: bool,
    input_type: DataType,
    converter: RowConverter,
    null_row: Box<[u8]>,
    best: Vec<Option<Box<[u8]>>>,
}

impl Extreme {
    fn new(input: &DataType, max: bool) -> ExecResult<Self> {
        let converter = RowConverter::new(vec![SortField::new(input.clone())])
            .map_err(|e| ExecError::InvalidGraph(format!("min/max over {input}: {e}")))?;
        let null_row = converter.convert_columns(&[new_null_array(input, 1)])?.row(0).as_ref().into();
        Ok(Self { max, input_type: input.clone(), converter, null_row, best: vec![] })
    }
}

impl GroupAccumulator for Extreme {
    fn output_type(&self) -> DataType {
        self.input_type.clone()
    }
    fn resize(&mut self, groups: usize) {
        self.best.resize(groups, None);
    }
    fn reset(&mut self, group: usize) {
        self.best[group] = None;
    }
    fn update(&mut self, values: Option<&ArrayRef>, groups: &[u32], weights: &[i8]) -> ExecResult<()> {
        let values = values.ok_or_else(|| ExecError::Internal("min/max without input".into()))?;
        let rows = self.converter.convert_columns(std::slice::from_ref(values))?;
        for (i, (&g, &w)) in groups.iter().zip(weights).enumerate() {
            if w < 0 {
                return Err(ExecError::Internal(
                    "min/max planned for an append-only input got a delete".into(),
                ));
            }
            if values.is_null(i) || w == 0 {
                continue;
            }
            let value = rows.row(i);
            let better = match &self.best[g as usize] {
                None => true,
                Some(best) if self.max => value.as_ref() > &best[..],
                Some(best) => value.as_ref() < &best[..],
            };
            if better {
                self.best[g as usize] = Some(value.as_ref().into());
            }
        }
        Ok(())
    }
    fn evaluate(&mut self, groups: &[u32]) -> ExecResult<ArrayRef> {
        let parser = self.converter.parser();
        let rows =
            groups.iter().map(|&g| parser.parse(self.best[g as usize].as_deref().unwrap_or(&self.null_row)));
        let mut columns = self.converter.convert_rows(rows)?;
        columns.pop().ok_or_else(|| ExecError::Internal("min/max: no column decoded".into()))
    }
    /// 0 without a value yet, else 1 then the value's row bytes.
    fn save(&self, group: usize, out: &mut Vec<u8>) {
        match &self.best[group] {
            None => codec::put_u8(out, 0),
            Some(best) => {
                codec::put_u8(out, 1);
                codec::put_bytes(out, best);
            }
        }
    }
    fn load(&mut self, group: usize, input: &mut &[u8]) -> ExecResult<()> {
        let mut rest = *input;
        let best = match codec::get_u8(&mut rest)? {
            0 => None,
            1 => Some(get_row_value(&mut rest, &self.input_type, &self.null_row)?),
            tag => return Err(codec::corrupt(&format!("min/max presence tag {tag}"))),
        };
        self.best[group] = best;
        *input = rest;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Decimal128Array, Float64Array, Int32Array, StringArray};

    use super::*;
    use AggregateKind::*;

    fn make(
        kind: AggregateKind,
        input: Option<DataType>,
        output: DataType,
        append_only: bool,
    ) -> impl Fn() -> Box<dyn GroupAccumulator> {
        move || {
            let mut acc = create_accumulator(kind, input.as_ref(), &output, append_only).unwrap();
            acc.resize(3);
            acc
        }
    }

    fn ints(values: &[Option<i64>]) -> Option<ArrayRef> {
        Some(Arc::new(Int64Array::from(values.to_vec())))
    }

    fn strs(values: &[Option<&str>]) -> Option<ArrayRef> {
        Some(Arc::new(StringArray::from(values.to_vec())))
    }

    fn floats(values: &[Option<f64>]) -> Option<ArrayRef> {
        Some(Arc::new(Float64Array::from(values.to_vec())))
    }

    fn decimals(values: &[Option<i128>]) -> Option<ArrayRef> {
        Some(Arc::new(Decimal128Array::from(values.to_vec()).with_precision_and_scale(10, 2).unwrap()))
    }

    /// Rows spread over groups 0..3 (group = row index % 3), with these weights.
    struct Rows(Option<ArrayRef>, Vec<i8>);

    fn spread(acc: &mut dyn GroupAccumulator, rows: &Rows) {
        let groups: Vec<u32> = (0..rows.1.len() as u32).map(|i| i % 3).collect();
        acc.update(rows.0.as_ref(), &groups, &rows.1).unwrap();
    }

    /// Applies `before` to an accumulator, saves its group 1 and loads it into slot 2 of a
    /// fresh one (whose slot 2 held other state, then was reset); both must evaluate alike,
    /// and still after each of `after` (whose rows all go to the moved group) is applied.
    fn round_trip(make: impl Fn() -> Box<dyn GroupAccumulator>, before: &[Rows], after: &[Rows]) {
        let (mut original, mut restored) = (make(), make());
        for rows in before {
            spread(original.as_mut(), rows);
            spread(restored.as_mut(), rows);
        }
        restored.reset(2);
        let mut saved = b"prefix".to_vec();
        original.save(1, &mut saved);
        saved.extend_from_slice(b"next");
        let mut input = &saved[6..];
        restored.load(2, &mut input).unwrap();
        assert_eq!(input, b"next", "load reads exactly what save wrote");
        let mut again = vec![];
        restored.save(2, &mut again);
        assert_eq!(again, saved[6..saved.len() - 4], "saving the loaded slot gives the same bytes");

        let check = |original: &mut Box<dyn GroupAccumulator>, restored: &mut Box<dyn GroupAccumulator>| {
            assert_eq!(
                original.evaluate(&[1]).unwrap().to_data(),
                restored.evaluate(&[2]).unwrap().to_data()
            );
            // The other groups of the fresh accumulator are untouched by the load.
            assert_eq!(
                original.evaluate(&[0]).unwrap().to_data(),
                restored.evaluate(&[0]).unwrap().to_data()
            );
        };
        check(&mut original, &mut restored);
        for Rows(values, weights) in after {
            original.update(values.as_ref(), &vec![1; weights.len()], weights).unwrap();
            restored.update(values.as_ref(), &vec![2; weights.len()], weights).unwrap();
            check(&mut original, &mut restored);
        }
        // Every strict prefix of the state is rejected, leaving the slot as it was.
        let state = &saved[6..saved.len() - 4];
        let expected = restored.evaluate(&[2]).unwrap().to_data();
        for len in 0..state.len() {
            let mut input = &state[..len];
            let err = restored.load(2, &mut input).unwrap_err();
            assert!(matches!(err, ExecError::Internal(_)), "{err}");
            assert_eq!(restored.evaluate(&[2]).unwrap().to_data(), expected);
        }
    }

    #[test]
    fn decimal_sums_with_special_values_round_trip() {
        use crate::functions::numeric_special::{NAN, NEG_INF, POS_INF};
        // Group 1 (rows 1, 4, 7) holds NaN and both infinities: NaN; after the retractions
        // of the NaN and of -Infinity, Infinity.
        let values = [Some(1), Some(NAN), Some(3), Some(4), Some(NEG_INF), Some(6), None, Some(POS_INF)];
        let before = [Rows(decimals(&values), vec![1; 8])];
        let after =
            [Rows(decimals(&[Some(5), Some(NAN), Some(2), Some(8), Some(NEG_INF)]), vec![1, -1, 1, 1, -1])];
        let sum = DataType::Decimal128(38, 2);
        round_trip(make(Sum, Some(DataType::Decimal128(10, 2)), sum.clone(), false), &before, &after);
        round_trip(
            make(Avg, Some(DataType::Decimal128(10, 2)), DataType::Decimal128(38, 6), false),
            &before,
            &after,
        );
        let mut acc = make(Sum, Some(DataType::Decimal128(10, 2)), sum, false)();
        spread(acc.as_mut(), &before[0]);
        let results = |acc: &mut Box<dyn GroupAccumulator>| {
            let out = acc.evaluate(&[1]).unwrap();
            out.as_primitive::<Decimal128Type>().value(0)
        };
        assert_eq!(results(&mut acc), NAN);
        spread(acc.as_mut(), &after[0]);
        assert_eq!(results(&mut acc), POS_INF);
    }

    #[test]
    fn count_rows_round_trips() {
        let before = [Rows(None, vec![1, 1, 1, 1, 1, 1, 1, -1])];
        round_trip(
            make(CountRows, None, DataType::Int64, false),
            &before,
            &[Rows(None, vec![1, -1, -1, -1])],
        );
    }

    #[test]
    fn count_with_nulls_round_trips() {
        let before = [Rows(ints(&[Some(1), None, None, Some(2), Some(3), None, None, Some(4)]), vec![1; 8])];
        let after = [Rows(ints(&[None, Some(5), Some(3)]), vec![1, 1, -1])];
        round_trip(make(Count, Some(DataType::Int64), DataType::Int64, false), &before, &after);
    }

    #[test]
    fn bool_and_or_round_trip() {
        let bools =
            |v: &[Option<bool>]| -> Option<ArrayRef> { Some(Arc::new(BooleanArray::from(v.to_vec()))) };
        for kind in [BoolAnd, BoolOr] {
            let before =
                [Rows(bools(&[Some(true), Some(false), None, None, Some(true), Some(true)]), vec![1; 6])];
            let after = [
                Rows(bools(&[Some(false), None]), vec![1, 1]),
                Rows(bools(&[Some(false), Some(true)]), vec![-1, -1]),
            ];
            round_trip(make(kind, Some(DataType::Boolean), DataType::Boolean, false), &before, &after);
        }
    }

    #[test]
    fn sums_round_trip() {
        let before =
            [Rows(ints(&[Some(1), Some(i64::MAX), None, Some(-7), Some(i64::MAX), Some(2)]), vec![1; 6])];
        let after = [Rows(ints(&[Some(i64::MAX), None, Some(-7)]), vec![1, 1, -1])];
        let out = DataType::Decimal128(38, 0);
        round_trip(make(Sum, Some(DataType::Int64), out, false), &before, &after);

        let before =
            [Rows(decimals(&[Some(150), None, Some(-1), Some(-250), Some(99_999), None]), vec![1; 6])];
        let after = [Rows(decimals(&[Some(99_999), Some(1)]), vec![-1, 1])];
        let out = DataType::Decimal128(38, 2);
        round_trip(make(Sum, Some(DataType::Decimal128(10, 2)), out, false), &before, &after);

        // A retraction leaves a rounding residue, which must be saved as is.
        let before = [Rows(
            floats(&[Some(0.1), Some(0.1), None, Some(0.2), Some(1e-300), Some(f64::MIN_POSITIVE)]),
            vec![1; 6],
        )];
        let after = [
            Rows(floats(&[Some(0.3), Some(0.1)]), vec![1, -1]),
            Rows(floats(&[Some(1e-300), Some(0.3)]), vec![-1, -1]),
        ];
        round_trip(make(Sum, Some(DataType::Float64), DataType::Float64, false), &before, &after);
    }

    #[test]
    fn averages_round_trip() {
        let before = [Rows(ints(&[Some(1), Some(2), Some(3), Some(4), Some(5), None, Some(6)]), vec![1; 7])];
        let after = [Rows(ints(&[Some(10), Some(5), None]), vec![1, -1, 1])];
        round_trip(make(Avg, Some(DataType::Int64), DataType::Float64, false), &before, &after);
        let out = DataType::Decimal128(38, 4);
        round_trip(make(Avg, Some(DataType::Int64), out, false), &before, &after);

        let before = [Rows(
            floats(&[Some(0.5), Some(0.25), Some(f64::NAN), Some(1.5), Some(-0.0), Some(0.1)]),
            vec![1; 6],
        )];
        let after = [Rows(floats(&[Some(0.1), Some(-0.0)]), vec![1, -1])];
        round_trip(make(Avg, Some(DataType::Float64), DataType::Float64, false), &before, &after);
    }

    #[test]
    fn min_max_with_retractions_round_trip() {
        for kind in [Min, Max] {
            let before = [
                Rows(
                    ints(&[Some(5), Some(9), Some(1), Some(3), Some(9), None, Some(7), Some(-4), Some(0)]),
                    vec![1; 9],
                ),
                // Group 1 holds 9 twice, -4, and a retraction that arrived before its insert.
                Rows(ints(&[None, Some(42)]), vec![1, -1]),
            ];
            // Retracting the extremes reveals the previous ones; the early delete is matched.
            let after = [
                Rows(ints(&[Some(9), Some(-4)]), vec![-1, -1]),
                Rows(ints(&[Some(9), Some(42)]), vec![-1, 1]),
                Rows(ints(&[Some(100), Some(-100)]), vec![1, 1]),
                Rows(ints(&[Some(100), Some(-100)]), vec![-1, -1]),
            ];
            round_trip(make(kind, Some(DataType::Int64), DataType::Int64, false), &before, &after);

            let before = [Rows(
                strs(&[
                    Some("b"),
                    Some("pear"),
                    None,
                    Some(""),
                    Some("apple"),
                    Some("zz"),
                    Some("c"),
                    Some(&"long".repeat(20)),
                    Some("é"),
                ]),
                vec![1; 9],
            )];
            let after = [
                Rows(strs(&[Some(&"long".repeat(20)), Some("pear")]), vec![-1, -1]),
                Rows(strs(&[Some("apple")]), vec![-1]),
                Rows(strs(&[Some("apple"), Some("a")]), vec![1, 1]),
            ];
            round_trip(make(kind, Some(DataType::Utf8), DataType::Utf8, false), &before, &after);
        }
    }

    #[test]
    fn count_distinct_round_trips() {
        let before = [Rows(
            ints(&[Some(1), Some(2), Some(3), Some(1), Some(5), None, Some(2), Some(5), Some(9)]),
            vec![1, 1, 1, 1, 1, 1, 1, 1, -1],
        )];
        let after = [
            Rows(ints(&[Some(5), Some(5), Some(9), Some(2)]), vec![-1, 1, 1, -1]),
            Rows(ints(&[Some(5), None]), vec![-1, 1]),
        ];
        round_trip(make(CountDistinct, Some(DataType::Int64), DataType::Int64, false), &before, &after);
    }

    #[test]
    fn append_only_min_max_round_trip() {
        for kind in [Min, Max] {
            let before = [Rows(ints(&[Some(5), Some(9), Some(1), Some(3), None, Some(7)]), vec![1; 6])];
            let after = [Rows(ints(&[Some(4), None, Some(-20), Some(20)]), vec![1; 4])];
            round_trip(make(kind, Some(DataType::Int64), DataType::Int64, true), &before, &after);
            // A group without values yet.
            let before = [Rows(ints(&[Some(5), None, Some(1)]), vec![1; 3])];
            round_trip(make(kind, Some(DataType::Int64), DataType::Int64, true), &before, &after);

            let before =
                [Rows(strs(&[Some("b"), Some("pear"), Some("x"), Some(""), Some("apple")]), vec![1; 5])];
            let after = [Rows(strs(&[Some("peach"), Some("zebra"), Some("")]), vec![1; 3])];
            round_trip(make(kind, Some(DataType::Utf8), DataType::Utf8, true), &before, &after);
        }
    }

    #[test]
    fn corrupt_state_is_an_error() {
        let load =
            |acc: &mut Box<dyn GroupAccumulator>, bytes: &[u8]| acc.load(0, &mut &bytes[..]).unwrap_err();
        let mut min = make(Min, Some(DataType::Int32), DataType::Int32, false)();
        min.update(Some(&(Arc::new(Int32Array::from(vec![3])) as ArrayRef)), &[0], &[1]).unwrap();
        let mut state = vec![];
        min.save(0, &mut state);
        // One entry whose value lost a byte: the length no longer is an Int32 row's.
        let mut short = vec![1, state[1] - 1];
        short.extend_from_slice(&state[2..state.len() - 2]);
        short.push(2);
        assert!(load(&mut min, &short).to_string().contains("bytes"), "{}", load(&mut min, &short));
        // A multiplicity of 0, and an entry listed twice.
        let mut zero = state.clone();
        *zero.last_mut().unwrap() = 0;
        assert!(load(&mut min, &zero).to_string().contains("multiplicity 0"));
        let mut twice = state.clone();
        twice[0] = 2;
        twice.extend_from_slice(&state[1..]);
        assert!(load(&mut min, &twice).to_string().contains("repeated"));
        // A huge entry count fails on the end of the input, without allocating for it.
        assert!(load(&mut min, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])
            .to_string()
            .contains("truncated"));
        assert_eq!(min.evaluate(&[0]).unwrap().as_primitive::<Int32Type>().value(0), 3);

        let mut extreme = make(Max, Some(DataType::Int64), DataType::Int64, true)();
        assert!(load(&mut extreme, &[7]).to_string().contains("tag 7"));
        let mut counts = make(CountRows, None, DataType::Int64, false)();
        assert!(load(&mut counts, &[0xff; 20]).to_string().contains("overflows"));
        assert!(load(&mut counts, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1])
            .to_string()
            .contains("out of i64 range"));
    }

    #[test]
    fn decimal_sums_beyond_128_bits_are_exact_or_out_of_range() {
        let big = 9 * 10i128.pow(37);
        let wide = || {
            Some(Arc::new(Decimal128Array::from(vec![big; 3]).with_precision_and_scale(38, 0).unwrap())
                as ArrayRef)
        };
        let mut acc = make(Sum, Some(DataType::Decimal128(38, 0)), DataType::Decimal128(38, 0), false)();
        // Three rows into group 0: 2.7e38 does not fit 128 bits, let alone 38 digits.
        acc.update(wide().as_ref(), &[0, 0, 0], &[1, 1, 1]).unwrap();
        let e = acc.evaluate(&[0]).unwrap_err().to_string();
        assert!(e.contains("numeric out of range"), "{e}");
        // The state survives a checkpoint; retracting two rows brings the exact value back.
        let mut saved = vec![];
        acc.save(0, &mut saved);
        let mut restored = make(Sum, Some(DataType::Decimal128(38, 0)), DataType::Decimal128(38, 0), false)();
        restored.load(0, &mut &saved[..]).unwrap();
        restored.update(wide().as_ref(), &[0, 0, 1], &[-1, -1, 1]).unwrap();
        let out = restored.evaluate(&[0]).unwrap();
        assert_eq!(out.as_primitive::<Decimal128Type>().value(0), big);
    }

    #[test]
    fn decimal_averages_round_half_away_from_zero() {
        let mut acc = make(Avg, Some(DataType::Decimal128(10, 2)), DataType::Decimal128(38, 2), false)();
        // (0.01 + 0.02) / 2 = 0.015 -> 0.02; (-0.01 - 0.02) / 2 -> -0.02
        acc.update(decimals(&[Some(1), Some(2), Some(-1), Some(-2)]).as_ref(), &[0, 0, 1, 1], &[1; 4])
            .unwrap();
        let out = acc.evaluate(&[0, 1]).unwrap();
        let out = out.as_primitive::<Decimal128Type>();
        assert_eq!((out.value(0), out.value(1)), (2, -2));
    }

    #[test]
    fn wide_varints_round_trip_and_keep_the_narrow_encoding() {
        let values = [
            i256::ZERO,
            i256::MINUS_ONE,
            i256::from_i128(i128::MAX),
            i256::from_i128(i128::MIN),
            i256::from_i128(i128::MAX).wrapping_add(i256::ONE),
            i256::from_i128(i128::MIN).wrapping_sub(i256::ONE),
            i256::from_i128(i128::MAX).wrapping_mul(i256::from_i128(1 << 100)),
            i256::MAX,
            i256::MIN,
        ];
        let mut out = vec![];
        for v in values {
            codec::put_i256(&mut out, v);
        }
        let mut input = &out[..];
        for v in values {
            assert_eq!(codec::get_i256(&mut input).unwrap(), v);
        }
        assert!(input.is_empty());
        for v in [0, -1, 12345, i128::MAX, i128::MIN] {
            let (mut narrow, mut wide) = (vec![], vec![]);
            codec::put_i128(&mut narrow, v);
            codec::put_i256(&mut wide, i256::from_i128(v));
            assert_eq!(narrow, wide);
        }
    }

    #[test]
    fn varints_round_trip() {
        let mut out = vec![];
        let values =
            [0, 1, -1, 63, -64, 64, i128::from(i64::MAX), i128::from(i64::MIN), i128::MAX, i128::MIN];
        for v in values {
            codec::put_i128(&mut out, v);
        }
        assert_eq!(out[..3], [0, 2, 1]);
        let mut input = &out[..];
        for v in values {
            assert_eq!(codec::get_i128(&mut input).unwrap(), v);
        }
        assert!(input.is_empty());
    }
}
