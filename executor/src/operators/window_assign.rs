//! WindowAssign: the TUMBLE, HOP and CUMULATE window table-valued functions.
//!
//! Stateless: every row is copied once per window that contains its event time, with
//! `window_start` and `window_end` appended (same type as the time column). A tumble gives
//! one copy, a hop `size / slide`, a cumulate one per step end after the row inside its
//! period. Retractions keep their op, so the operator works on any changelog. A row whose
//! time is NULL belongs to no window and is not emitted, as in Flink.
//!
//! Grouping by the window columns is an ordinary aggregate downstream; it closes windows by
//! `window_end` when the watermark passes it.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};

use super::Operator;
use crate::error::{ExecError, ExecResult};
use crate::message::StreamBatch;
use weir_plan::job_graph::WindowKind;

pub struct WindowAssign {
    kind: WindowKind,
    time_column: usize,
    output_schema: SchemaRef,
}

impl WindowAssign {
    pub fn new(kind: WindowKind, time_column: usize, input_schema: &SchemaRef) -> ExecResult<Self> {
        let time_type = time_type(input_schema, time_column)?;
        let positive = match kind {
            WindowKind::Tumble { size, .. } => size > 0,
            WindowKind::Hop { slide, size, .. } => slide > 0 && size > 0,
            WindowKind::Cumulate { step, size, .. } => step > 0 && size > 0 && size % step == 0,
            WindowKind::Session { .. } => {
                return Err(ExecError::InvalidGraph("WindowAssign: sessions need SessionWindow".into()))
            }
        };
        if !positive {
            return Err(ExecError::InvalidGraph(format!("WindowAssign: invalid window {kind}")));
        }
        Ok(Self { kind, time_column, output_schema: window_schema(input_schema, &time_type) })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.output_schema
    }

    /// Pushes `(row, start)` for every window of row `row` at time `ts`; returns the size
    /// (end - start) of the windows, or for cumulate pushes explicit ends.
    fn assign(&self, row: u32, ts: i64, rows: &mut Vec<u32>, starts: &mut Vec<i64>, ends: &mut Vec<i64>) {
        match self.kind {
            WindowKind::Tumble { size, offset } => {
                let start = ts.saturating_sub(ts.wrapping_sub(offset).rem_euclid(size));
                rows.push(row);
                starts.push(start);
                ends.push(start.saturating_add(size));
            }
            WindowKind::Hop { slide, size, offset } => {
                let mut start = ts.saturating_sub(ts.wrapping_sub(offset).rem_euclid(slide));
                // Oldest window first, so output is ordered by window within a row.
                let mut windows = Vec::new();
                while start > ts.saturating_sub(size) {
                    windows.push(start);
                    start = start.saturating_sub(slide);
                    if start == i64::MIN {
                        break;
                    }
                }
                for start in windows.into_iter().rev() {
                    rows.push(row);
                    starts.push(start);
                    ends.push(start.saturating_add(size));
                }
            }
            WindowKind::Cumulate { step, size, offset } => {
                let start = ts.saturating_sub(ts.wrapping_sub(offset).rem_euclid(size));
                let last = start.saturating_add(size);
                let mut end = start.saturating_add(step);
                while end <= last {
                    if end > ts {
                        rows.push(row);
                        starts.push(start);
                        ends.push(end);
                    }
                    if end == i64::MAX {
                        break;
                    }
                    end = end.saturating_add(step);
                }
            }
            WindowKind::Session { .. } => {}
        }
    }
}

/// The type of the event-time column, which must be a microsecond timestamp.
pub(crate) fn time_type(schema: &SchemaRef, column: usize) -> ExecResult<DataType> {
    match schema.fields().get(column).map(|f| f.data_type()) {
        Some(t @ DataType::Timestamp(TimeUnit::Microsecond, _)) => Ok(t.clone()),
        Some(other) => {
            Err(ExecError::InvalidGraph(format!("window time column {column} is {other}, not a timestamp")))
        }
        None => Err(ExecError::InvalidGraph(format!("no window time column {column}"))),
    }
}

/// The input schema with `window_start` and `window_end` appended.
pub(crate) fn window_schema(input: &SchemaRef, time_type: &DataType) -> SchemaRef {
    let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("window_start", time_type.clone(), true));
    fields.push(Field::new("window_end", time_type.clone(), true));
    Arc::new(Schema::new(fields))
}

/// Microsecond timestamps as an array of `time_type` (keeping its time zone).
pub(crate) fn timestamps(values: Vec<i64>, time_type: &DataType) -> ArrayRef {
    let array = PrimitiveArray::<TimestampMicrosecondType>::from(values);
    match time_type {
        DataType::Timestamp(_, Some(tz)) => Arc::new(array.with_timezone(tz.clone())),
        _ => Arc::new(array),
    }
}

impl Operator for WindowAssign {
    fn name(&self) -> &'static str {
        "WindowAssign"
    }

    fn process_batch(
        &mut self,
        _input: usize,
        batch: StreamBatch,
        out: &mut Vec<StreamBatch>,
    ) -> ExecResult<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let times = batch
            .data
            .columns()
            .get(self.time_column)
            .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
            .ok_or_else(|| ExecError::Internal("WindowAssign: time column is not a timestamp".into()))?;
        let mut rows = Vec::with_capacity(n);
        let mut starts = Vec::with_capacity(n);
        let mut ends = Vec::with_capacity(n);
        for i in 0..n {
            if times.is_valid(i) {
                self.assign(i as u32, times.value(i), &mut rows, &mut starts, &mut ends);
            }
        }
        if rows.is_empty() {
            return Ok(());
        }
        let expanded = match rows.len() == n {
            // A tumble over rows without NULL times keeps every row once, in order.
            true => batch,
            false => batch.take(&UInt32Array::from(rows))?,
        };
        let time_type = self.output_schema.field(self.time_column).data_type();
        let mut columns = expanded.data.columns().to_vec();
        columns.push(timestamps(starts, time_type));
        columns.push(timestamps(ends, time_type));
        out.push(expanded.with_columns(self.output_schema.clone(), columns)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, TimestampMicrosecondArray};

    use super::*;
    use crate::operators::test_util::{assert_output, batch};

    const S: i64 = 1_000_000;

    fn input(times: Vec<Option<i64>>, ops: Option<Vec<i8>>) -> StreamBatch {
        let ids: Vec<i64> = (0..times.len() as i64).collect();
        batch(
            vec![
                ("id", Arc::new(Int64Array::from(ids))),
                ("ts", Arc::new(TimestampMicrosecondArray::from(times))),
            ],
            ops,
        )
    }

    fn run(kind: WindowKind, b: StreamBatch) -> Vec<StreamBatch> {
        let mut op = WindowAssign::new(kind, 1, &b.data.schema()).expect("operator");
        let mut out = vec![];
        op.process_batch(0, b, &mut out).expect("process");
        out
    }

    #[test]
    fn tumble_assigns_one_window_and_skips_null_times() {
        let out = run(
            WindowKind::Tumble { size: 10 * S, offset: 0 },
            input(vec![Some(0), Some(9 * S + 999_999), Some(10 * S), None, Some(-1)], None),
        );
        assert_output(
            &out,
            &[
                "+----+----+----------------------------+---------------------+---------------------+",
                "| op | id | ts                         | window_start        | window_end          |",
                "+----+----+----------------------------+---------------------+---------------------+",
                "| +  | 0  | 1970-01-01T00:00:00        | 1970-01-01T00:00:00 | 1970-01-01T00:00:10 |",
                "| +  | 1  | 1970-01-01T00:00:09.999999 | 1970-01-01T00:00:00 | 1970-01-01T00:00:10 |",
                "| +  | 2  | 1970-01-01T00:00:10        | 1970-01-01T00:00:10 | 1970-01-01T00:00:20 |",
                "| +  | 4  | 1969-12-31T23:59:59.999999 | 1969-12-31T23:59:50 | 1970-01-01T00:00:00 |",
                "+----+----+----------------------------+---------------------+---------------------+",
            ],
        );
    }

    #[test]
    fn tumble_with_offset() {
        let out = run(
            WindowKind::Tumble { size: 10 * S, offset: 3 * S },
            input(vec![Some(2 * S), Some(3 * S)], None),
        );
        assert_output(
            &out,
            &[
                "+----+----+---------------------+---------------------+---------------------+",
                "| op | id | ts                  | window_start        | window_end          |",
                "+----+----+---------------------+---------------------+---------------------+",
                "| +  | 0  | 1970-01-01T00:00:02 | 1969-12-31T23:59:53 | 1970-01-01T00:00:03 |",
                "| +  | 1  | 1970-01-01T00:00:03 | 1970-01-01T00:00:03 | 1970-01-01T00:00:13 |",
                "+----+----+---------------------+---------------------+---------------------+",
            ],
        );
    }

    #[test]
    fn hop_copies_a_row_into_every_window_and_keeps_ops() {
        let out = run(
            WindowKind::Hop { slide: 2 * S, size: 6 * S, offset: 0 },
            input(vec![Some(5 * S)], Some(vec![-1])),
        );
        assert_output(
            &out,
            &[
                "+----+----+---------------------+---------------------+---------------------+",
                "| op | id | ts                  | window_start        | window_end          |",
                "+----+----+---------------------+---------------------+---------------------+",
                "| -  | 0  | 1970-01-01T00:00:05 | 1970-01-01T00:00:00 | 1970-01-01T00:00:06 |",
                "| -  | 0  | 1970-01-01T00:00:05 | 1970-01-01T00:00:02 | 1970-01-01T00:00:08 |",
                "| -  | 0  | 1970-01-01T00:00:05 | 1970-01-01T00:00:04 | 1970-01-01T00:00:10 |",
                "+----+----+---------------------+---------------------+---------------------+",
            ],
        );
    }

    #[test]
    fn cumulate_emits_every_growing_window_containing_the_row() {
        let out =
            run(WindowKind::Cumulate { step: 2 * S, size: 6 * S, offset: 0 }, input(vec![Some(3 * S)], None));
        assert_output(
            &out,
            &[
                "+----+----+---------------------+---------------------+---------------------+",
                "| op | id | ts                  | window_start        | window_end          |",
                "+----+----+---------------------+---------------------+---------------------+",
                "| +  | 0  | 1970-01-01T00:00:03 | 1970-01-01T00:00:00 | 1970-01-01T00:00:04 |",
                "| +  | 0  | 1970-01-01T00:00:03 | 1970-01-01T00:00:00 | 1970-01-01T00:00:06 |",
                "+----+----+---------------------+---------------------+---------------------+",
            ],
        );
    }

    #[test]
    fn rejects_a_non_timestamp_time_column() {
        let b = input(vec![Some(0)], None);
        assert!(WindowAssign::new(WindowKind::Tumble { size: S, offset: 0 }, 0, &b.data.schema()).is_err());
        assert!(
            WindowAssign::new(WindowKind::Hop { slide: 0, size: S, offset: 0 }, 1, &b.data.schema()).is_err()
        );
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        for kind in [
            WindowKind::Tumble { size: 10 * S, offset: 0 },
            WindowKind::Hop { slide: 2 * S, size: 10 * S, offset: 0 },
            WindowKind::Cumulate { step: 2 * S, size: 10 * S, offset: 0 },
        ] {
            let out = run(kind, input(vec![Some(i64::MIN + 1), Some(i64::MAX - 1)], None));
            assert!(!out.is_empty(), "{kind}");
        }
    }
}
