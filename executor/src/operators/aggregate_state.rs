//! Columnar per-group accumulators for [`HashAggregate`](super::hash_aggregate::HashAggregate).
//!
//! Every accumulator keeps its state in vectors indexed by group slot, and every update is
//! weighted by the row's op (`+1`/`-1`), so the state is a commutative group: applying rows
//! in any order (even a delete before its insert) gives the same state once all have arrived.
//! Integer and decimal sums use wrapping `i128` arithmetic for the same reason (a transient
//! overflow cancels out). Min/max and count(DISTINCT) keep a multiset of arrow-row encoded
//! values per group, so retracting the current extreme reveals the next one.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, ArrowPrimitiveType, AsArray, BooleanArray, Decimal128Array,
    Float64Array, Int64Array,
};
use arrow::datatypes::*;
use arrow::row::{RowConverter, SortField};

use crate::error::{ExecError, ExecResult};
use crate::job_graph::AggregateKind;

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
    exact: Vec<i128>,
    float: Vec<f64>,
    counts: Vec<i64>,
}

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
        Ok(Self { num, finish, exact: vec![], float: vec![], counts: vec![] })
    }
}

/// A running sum: exact (wrapping, so transient overflows cancel) or floating.
trait Summand: Copy {
    fn add_weighted(self, value: Self, weight: i8) -> Self;
}

impl Summand for i128 {
    fn add_weighted(self, value: i128, weight: i8) -> i128 {
        self.wrapping_add(value.wrapping_mul(i128::from(weight)))
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
) -> ExecResult<()>
where
    T::Native: Into<S>,
{
    let values = values.as_primitive_opt::<T>().ok_or_else(|| internal("sum", values.data_type()))?;
    let raw = values.values();
    for (i, (&g, &w)) in groups.iter().zip(weights).enumerate().filter(|(i, _)| values.is_valid(*i)) {
        sums[g as usize] = sums[g as usize].add_weighted(raw[i].into(), w);
        counts[g as usize] += i64::from(w);
    }
    Ok(())
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
            _ => self.exact.resize(groups, 0),
        }
        self.counts.resize(groups, 0);
    }
    fn reset(&mut self, group: usize) {
        match self.num {
            Num::Float => self.float[group] = 0.0,
            _ => self.exact[group] = 0,
        }
        self.counts[group] = 0;
    }
    fn update(&mut self, values: Option<&ArrayRef>, groups: &[u32], weights: &[i8]) -> ExecResult<()> {
        let values = values.ok_or_else(|| ExecError::Internal("sum/avg without input".into()))?;
        let (e, f, c) = (&mut self.exact, &mut self.float, &mut self.counts);
        match values.data_type() {
            DataType::Int8 => add::<Int8Type, _>(values, groups, weights, e, c),
            DataType::Int16 => add::<Int16Type, _>(values, groups, weights, e, c),
            DataType::Int32 => add::<Int32Type, _>(values, groups, weights, e, c),
            DataType::Int64 => add::<Int64Type, _>(values, groups, weights, e, c),
            DataType::UInt8 => add::<UInt8Type, _>(values, groups, weights, e, c),
            DataType::UInt16 => add::<UInt16Type, _>(values, groups, weights, e, c),
            DataType::UInt32 => add::<UInt32Type, _>(values, groups, weights, e, c),
            DataType::UInt64 => add::<UInt64Type, _>(values, groups, weights, e, c),
            DataType::Decimal128(..) => add::<Decimal128Type, _>(values, groups, weights, e, c),
            DataType::Float16 => add::<Float16Type, _>(values, groups, weights, f, c),
            DataType::Float32 => add::<Float32Type, _>(values, groups, weights, f, c),
            DataType::Float64 => add::<Float64Type, _>(values, groups, weights, f, c),
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
                let sums = groups.iter().map(|&g| (count(g) > 0).then(|| exact[g as usize]));
                Arc::new(Decimal128Array::from_iter(sums).with_precision_and_scale(38, scale)?)
            }
            Finish::AvgFloat => {
                let divisor = if let Num::Decimal(s) = num { 10f64.powi(i32::from(s)) } else { 1.0 };
                Arc::new(Float64Array::from_iter(groups.iter().map(|&g| {
                    let g_ = g as usize;
                    let sum = if num == Num::Float { float[g_] } else { exact[g_] as f64 / divisor };
                    (count(g) > 0).then(|| sum / count(g) as f64)
                })))
            }
            Finish::AvgDecimal(out_scale) => {
                let in_scale = if let Num::Decimal(s) = num { s } else { 0 };
                let diff = i32::from(out_scale) - i32::from(in_scale);
                let pow = 10i128
                    .checked_pow(diff.unsigned_abs())
                    .ok_or_else(|| ExecError::Internal(format!("avg: rescale by 10^{diff} overflows")))?;
                let mut avgs = Vec::with_capacity(groups.len());
                for &g in groups {
                    let (sum, n) = (exact[g as usize], i128::from(count(g)));
                    avgs.push(match n {
                        n if n <= 0 => None,
                        n if diff >= 0 => Some(
                            sum.checked_mul(pow)
                                .ok_or_else(|| ExecError::Internal("avg: decimal overflow".into()))?
                                / n,
                        ),
                        n => Some(sum / pow / n),
                    });
                }
                Arc::new(Decimal128Array::from(avgs).with_precision_and_scale(38, out_scale)?)
            }
        })
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
        let rows = self.converter.convert_columns(std::slice::from_ref(values))?;
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
}
