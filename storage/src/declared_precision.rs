//! `timestamp(0)`, `timestamptz(3)`, `time(2)` and `interval(1)` columns hold their values
//! rounded to the declared number of digits after the second, as in Postgres
//! (`2020-01-01 12:00:00.5` stored in a `timestamp(0)` is `12:00:01`). Rounded where every
//! write to a table passes (INSERT, UPDATE, COPY, ALTER COLUMN TYPE), next to the
//! `varchar(n)` length check, so no way in stores a finer value, whatever computed it
//! (a literal, an expression, a bound parameter, another table's column). The rounding
//! itself is [`weir_plan::time_precision`]'s, the same the cast to `timestamp(3)` uses.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, IntervalMonthDayNanoArray, PrimitiveArray, RecordBatch, Time64MicrosecondArray,
};
use arrow::datatypes::{DataType, IntervalMonthDayNano, IntervalUnit, TimeUnit, TimestampMicrosecondType};
use weir_plan::catalog::{ColumnType, TableDef};
use weir_plan::time_precision::{round_interval_micros, round_time, round_timestamp, MAX_TIME_PRECISION};

use crate::declared_length::fit_declared_lengths;
use crate::error::StorageResult;

/// `batch` as its table's declared types hold it: `varchar(n)` values fitted to their
/// length (or `22001`), time values rounded to their precision. Borrows `batch` when
/// nothing changes.
pub(crate) fn fit_declared_types<'a>(
    def: &TableDef,
    batch: &'a RecordBatch,
) -> StorageResult<Cow<'a, RecordBatch>> {
    match fit_declared_lengths(def, batch)? {
        Cow::Borrowed(batch) => round_declared_precisions(def, batch),
        Cow::Owned(fitted) => Ok(Cow::Owned(round_declared_precisions(def, &fitted)?.into_owned())),
    }
}

/// `batch` with every value of a column declared with a precision below 6 rounded to it.
fn round_declared_precisions<'a>(
    def: &TableDef,
    batch: &'a RecordBatch,
) -> StorageResult<Cow<'a, RecordBatch>> {
    let mut columns: Option<Vec<ArrayRef>> = None;
    for (i, column) in def.columns.iter().enumerate() {
        let Some(precision) = column.column_type.time_precision().filter(|p| *p < MAX_TIME_PRECISION) else {
            continue;
        };
        let Some(values) = batch.columns().get(i) else { continue };
        if let Some(rounded) = round_column(values, &column.column_type, precision) {
            columns.get_or_insert_with(|| batch.columns().to_vec())[i] = rounded;
        }
    }
    match columns {
        None => Ok(Cow::Borrowed(batch)),
        Some(columns) => Ok(Cow::Owned(RecordBatch::try_new(batch.schema(), columns)?)),
    }
}

/// The column rounded to `precision`; `None` when its Arrow type is not the microsecond
/// layout the column type is stored as (the shape check reports that).
fn round_column(values: &ArrayRef, column_type: &ColumnType, precision: u8) -> Option<ArrayRef> {
    match (column_type, values.data_type()) {
        (
            ColumnType::Timestamp { .. } | ColumnType::Timestamptz { .. },
            DataType::Timestamp(TimeUnit::Microsecond, zone),
        ) => {
            let rounded: PrimitiveArray<TimestampMicrosecondType> =
                values.as_primitive::<TimestampMicrosecondType>().unary(|v| round_timestamp(v, precision));
            Some(Arc::new(rounded.with_timezone_opt(zone.clone())))
        }
        (ColumnType::Time { .. }, DataType::Time64(TimeUnit::Microsecond)) => {
            let times = values.as_any().downcast_ref::<Time64MicrosecondArray>()?;
            let rounded: Time64MicrosecondArray = times.unary(|v| round_time(v, precision));
            Some(Arc::new(rounded))
        }
        (ColumnType::Interval { .. }, DataType::Interval(IntervalUnit::MonthDayNano)) => {
            let intervals = values.as_any().downcast_ref::<IntervalMonthDayNanoArray>()?;
            let rounded: IntervalMonthDayNanoArray = intervals.unary(|v| {
                let micros = round_interval_micros(v.nanoseconds.div_euclid(1000), precision);
                IntervalMonthDayNano::new(v.months, v.days, micros.saturating_mul(1000))
            });
            Some(Arc::new(rounded))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::TimestampMicrosecondArray;
    use weir_plan::catalog::ColumnDef;

    /// 2020-01-01 12:00:00 in microseconds since 1970.
    const NOON_2020: i64 = 1_577_880_000_000_000;

    fn table(types: Vec<ColumnType>) -> TableDef {
        let columns = types
            .into_iter()
            .enumerate()
            .map(|(i, column_type)| ColumnDef {
                name: format!("c{i}"),
                column_type,
                not_null: false,
                default: None,
            })
            .collect();
        TableDef {
            id: 1,
            schema_name: "public".into(),
            name: "t".into(),
            columns,
            primary_key: Vec::new(),
            primary_key_name: None,
            watermark: None,
        }
    }

    fn batch(def: &TableDef, columns: Vec<ArrayRef>) -> RecordBatch {
        RecordBatch::try_new(def.arrow_schema(), columns).unwrap()
    }

    #[test]
    fn timestamps_are_rounded_to_their_column_precision() {
        let def = table(vec![
            ColumnType::Timestamp { precision: Some(0) },
            ColumnType::Timestamptz { precision: Some(3) },
            ColumnType::Timestamp { precision: None },
        ]);
        let ts = |v: Vec<Option<i64>>| TimestampMicrosecondArray::from(v);
        let b = batch(
            &def,
            vec![
                Arc::new(ts(vec![Some(NOON_2020 + 500_000), Some(-1_500_000), None])),
                Arc::new(ts(vec![Some(NOON_2020 + 123_450); 3]).with_timezone("+00:00")),
                Arc::new(ts(vec![Some(NOON_2020 + 123_456); 3])),
            ],
        );
        let fitted = fit_declared_types(&def, &b).unwrap();
        let column =
            |i: usize| fitted.column(i).as_primitive::<TimestampMicrosecondType>().iter().collect::<Vec<_>>();
        assert_eq!(column(0), vec![Some(NOON_2020 + 1_000_000), Some(-2_000_000), None]);
        assert_eq!(column(1), vec![Some(NOON_2020 + 123_000); 3]);
        assert_eq!(column(2), vec![Some(NOON_2020 + 123_456); 3], "no precision: kept as it is");
        assert_eq!(fitted.schema(), b.schema(), "the zone stays");
    }

    #[test]
    fn times_and_intervals_are_rounded_to_their_column_precision() {
        let def =
            table(vec![ColumnType::Time { precision: Some(2) }, ColumnType::Interval { precision: Some(1) }]);
        let b = batch(
            &def,
            vec![
                Arc::new(Time64MicrosecondArray::from(vec![86_399_995_000, 43_200_125_000])),
                Arc::new(IntervalMonthDayNanoArray::from(vec![
                    IntervalMonthDayNano::new(0, 1, 150_000_000),
                    IntervalMonthDayNano::new(1, 0, -50_000_000),
                ])),
            ],
        );
        let fitted = fit_declared_types(&def, &b).unwrap();
        let times = fitted.column(0).as_any().downcast_ref::<Time64MicrosecondArray>().unwrap();
        assert_eq!(times.values().to_vec(), vec![86_400_000_000, 43_200_130_000]);
        let intervals = fitted.column(1).as_any().downcast_ref::<IntervalMonthDayNanoArray>().unwrap();
        assert_eq!(
            intervals.values().to_vec(),
            vec![IntervalMonthDayNano::new(0, 1, 200_000_000), IntervalMonthDayNano::new(1, 0, -100_000_000)]
        );
    }

    #[test]
    fn a_table_without_precisions_is_borrowed() {
        let def = table(vec![ColumnType::Timestamp { precision: Some(6) }, ColumnType::Text]);
        let b = batch(
            &def,
            vec![
                Arc::new(TimestampMicrosecondArray::from(vec![NOON_2020 + 1])),
                Arc::new(arrow::array::StringArray::from(vec!["x"])),
            ],
        );
        assert!(matches!(fit_declared_types(&def, &b), Ok(Cow::Borrowed(_))));
    }
}
