//! The series `generate_series` makes itself, where DataFusion's cannot: `numeric` series
//! (DataFusion's takes integers and timestamps only) and timestamp series in
//! microseconds (DataFusion's counts nanoseconds, which end in the year 2262).
//!
//! Each is a lazy generator in one partition ([`LazyMemoryExec`] with one generator), so a
//! large series streams batch by batch in bounded memory, as DataFusion's own does. Values
//! follow Postgres: a numeric series adds the step exactly (`generate_series(1.5, 3.5,
//! 0.5)` is 1.5, 2.0, 2.5, 3.0, 3.5, at the largest scale of the arguments); a timestamp
//! series adds the interval to the previous value (months first, then days, then time, as
//! Postgres adds an interval), so `2020-01-31` by `1 mon` is `2020-02-29`, `2020-03-29`.

use std::any::Any;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{ArrayRef, Decimal128Array, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::{i256, IntervalMonthDayNano, SchemaRef, TimestampMicrosecondType};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::memory::{LazyBatchGenerator, LazyMemoryExec};
use datafusion::physical_plan::ExecutionPlan;
use parking_lot::RwLock;

/// What a series counts.
#[derive(Debug, Clone)]
pub(super) enum SeriesValues {
    /// A NULL argument: no rows.
    Empty,
    /// Decimals at one scale: from `start` by `step` while not past `stop`.
    Numeric { start: i256, stop: i256, step: i256, scale: i8 },
    /// Microseconds since 1970 (`zone`: the column's time zone) by an interval.
    Timestamp { start: i64, stop: i64, step: IntervalMonthDayNano, zone: Option<Arc<str>> },
}

/// A series' values as a table of one column (`schema`).
#[derive(Debug)]
pub(super) struct SeriesTable {
    pub schema: SchemaRef,
    pub values: SeriesValues,
}

#[async_trait]
impl TableProvider for SeriesTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
    fn table_type(&self) -> TableType {
        TableType::Base
    }
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let generator = Generator {
            schema: Arc::clone(&self.schema),
            initial: self.values.clone(),
            values: self.values.clone(),
            batch_size: state.config_options().execution.batch_size.get(),
            finished: false,
        };
        let exec = LazyMemoryExec::try_new(Arc::clone(&self.schema), vec![Arc::new(RwLock::new(generator))])?
            .with_projection(projection.cloned());
        Ok(Arc::new(exec))
    }
}

/// The state of one scan of a series: `values`' start is the next value.
#[derive(Debug, Clone)]
struct Generator {
    schema: SchemaRef,
    /// The series as it starts, for a new scan.
    initial: SeriesValues,
    values: SeriesValues,
    batch_size: usize,
    finished: bool,
}

impl fmt::Display for Generator {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match &self.values {
            SeriesValues::Empty => write!(f, "generate_series: empty"),
            SeriesValues::Numeric { start, stop, step, scale } => {
                write!(f, "generate_series: numeric start={start} stop={stop} step={step} scale={scale}")
            }
            SeriesValues::Timestamp { start, stop, step, .. } => {
                write!(f, "generate_series: timestamp start={start} stop={stop} step={step:?}")
            }
        }
    }
}

/// Whether an interval step goes forward, backward or nowhere, comparing it as Postgres
/// compares intervals (a month is 30 days, a day 24 hours).
pub(super) fn interval_sign(step: IntervalMonthDayNano) -> std::cmp::Ordering {
    let day = 86_400_000_000_000i128;
    let total =
        i128::from(step.months) * 30 * day + i128::from(step.days) * day + i128::from(step.nanoseconds);
    total.cmp(&0)
}

impl LazyBatchGenerator for Generator {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn generate_next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.finished {
            return Ok(None);
        }
        let column: ArrayRef = match &mut self.values {
            SeriesValues::Empty => {
                self.finished = true;
                return Ok(None);
            }
            SeriesValues::Numeric { start, stop, step, scale } => {
                let mut values = Vec::with_capacity(self.batch_size);
                while values.len() < self.batch_size {
                    let past = if step.is_negative() { *start < *stop } else { *start > *stop };
                    // Between start and stop, each value fits as the arguments did.
                    let value = start.to_i128().filter(|_| !past);
                    let next = start.checked_add(*step);
                    match (value, next) {
                        (Some(v), Some(next)) => {
                            values.push(v);
                            *start = next;
                        }
                        (Some(v), None) => {
                            values.push(v);
                            self.finished = true;
                            break;
                        }
                        (None, _) => {
                            self.finished = true;
                            break;
                        }
                    }
                }
                Arc::new(Decimal128Array::from(values).with_precision_and_scale(38, *scale)?)
            }
            SeriesValues::Timestamp { start, stop, step, zone } => {
                let tz = Tz::from_str(zone.as_deref().unwrap_or("+00:00"))?;
                let backward = interval_sign(*step).is_lt();
                let mut values = Vec::with_capacity(self.batch_size);
                while values.len() < self.batch_size {
                    if if backward { *start < *stop } else { *start > *stop } {
                        self.finished = true;
                        break;
                    }
                    values.push(*start);
                    // Past the last timestamp Weir holds the series has passed its stop.
                    match TimestampMicrosecondType::add_month_day_nano(*start, *step, tz) {
                        Some(next) => *start = next,
                        None => {
                            self.finished = true;
                            break;
                        }
                    }
                }
                Arc::new(TimestampMicrosecondArray::from(values).with_timezone_opt(zone.clone()))
            }
        };
        if column.is_empty() {
            return Ok(None);
        }
        Ok(Some(RecordBatch::try_new(Arc::clone(&self.schema), vec![column])?))
    }
    fn reset_state(&self) -> Arc<RwLock<dyn LazyBatchGenerator>> {
        let mut fresh = self.clone();
        fresh.values = self.initial.clone();
        fresh.finished = false;
        Arc::new(RwLock::new(fresh))
    }
}
