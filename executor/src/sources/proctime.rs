//! The processing-time column of a source (`proc_time AS PROCTIME()` in `CREATE SOURCE`,
//! Flink's processing-time attribute): the connector reads every other column, and the
//! source task puts the wall-clock time at which it emits a batch into this one, the same
//! value for every row of the batch. It is a `timestamp with time zone` (Flink's
//! `TIMESTAMP_LTZ`), in microseconds.
//!
//! The value is not replayed: after recovery, re-read rows get the time they are read
//! again, as in Flink. A temporal join `FOR SYSTEM_TIME AS OF s.proc_time` does not read the
//! value at all; it looks the table up as it is when the row is processed.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::SchemaRef;

use crate::error::{ExecError, ExecResult};

/// Fills a source's processing-time column.
#[derive(Debug, Clone)]
pub struct ProctimeFiller {
    /// The source's full schema, the processing-time column included.
    schema: SchemaRef,
    column: usize,
}

impl ProctimeFiller {
    pub fn new(schema: SchemaRef, column: usize) -> ExecResult<Self> {
        if column >= schema.fields().len() {
            return Err(ExecError::InvalidGraph(format!(
                "processing-time column {column} beyond the source's {} columns",
                schema.fields().len()
            )));
        }
        Ok(Self { schema, column })
    }

    /// `batch` (the connector's columns) with the processing-time column, `now_micros` in
    /// every row, inserted at its place.
    pub fn fill(&self, batch: &RecordBatch, now_micros: i64) -> ExecResult<RecordBatch> {
        let field = self.schema.field(self.column);
        let times: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from_value(now_micros, batch.num_rows())
                .with_data_type(field.data_type().clone()),
        );
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        if columns.len() + 1 != self.schema.fields().len() {
            return Err(ExecError::Internal(format!(
                "a source read {} columns, expected {} besides its processing-time column",
                columns.len(),
                self.schema.fields().len() - 1
            )));
        }
        columns.insert(self.column, times);
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;

    fn full_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("proc_time", DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())), true),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    #[test]
    fn every_row_gets_the_emit_time_at_the_column_s_place() {
        let read = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            read,
            vec![Arc::new(Int64Array::from(vec![1, 2, 3])), Arc::new(StringArray::from(vec!["a", "b", "c"]))],
        )
        .unwrap();
        let filler = ProctimeFiller::new(full_schema(), 1).unwrap();
        let filled = filler.fill(&batch, 1_700_000_000_000_000).unwrap();
        assert_eq!(filled.schema(), full_schema());
        let times = filled.column(1).as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap();
        assert_eq!(times.null_count(), 0);
        assert!(times.iter().all(|t| t == Some(1_700_000_000_000_000)));
        assert_eq!(filled.column(0).as_ref(), batch.column(0).as_ref());
        assert_eq!(filled.column(2).as_ref(), batch.column(1).as_ref());
    }

    #[test]
    fn a_batch_of_the_wrong_width_is_an_error_not_a_panic() {
        let filler = ProctimeFiller::new(full_schema(), 1).unwrap();
        let one = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        let batch = RecordBatch::try_new(one, vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
        assert!(filler.fill(&batch, 0).is_err());
        assert!(ProctimeFiller::new(full_schema(), 3).is_err());
    }

    #[test]
    fn the_clock_is_after_2020() {
        assert!(crate::clock::wall_clock_us() > 1_577_836_800_000_000);
    }
}
