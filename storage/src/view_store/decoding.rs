//! Decoding: a view's rows back into Arrow batches.
//!
//! Lazily, a batch at a time, partition after partition, each row repeated by its
//! multiplicity (rows at zero or below are not there). Used by scans of a committed version
//! and by materialize tasks sending their contents to a view that starts reading theirs.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::row::{RowConverter, SortField};
use thiserror::Error;

use super::ViewRows;

/// Rows per decoded batch.
pub const VIEW_SCAN_BATCH_ROWS: usize = 8192;

/// Why rows could not be decoded.
#[derive(Debug, Error)]
pub enum ViewDecodeError {
    /// The view's column types have no row format. A view like that never has rows (its
    /// materialize tasks cannot start), so this is likely a bug.
    #[error("view columns cannot be row-decoded")]
    NoRowFormat,
    #[error(transparent)]
    Arrow(#[from] ArrowError),
}

/// The batches of a view's rows; see the module documentation.
pub struct ViewBatches {
    schema: SchemaRef,
    converter: Option<RowConverter>,
    partitions: std::vec::IntoIter<ViewRows>,
    current: Option<imbl::ordmap::ConsumingIter<Arc<[u8]>, i64, imbl::shared_ptr::DefaultSharedPtr>>,
    /// Copies of a duplicated row still to emit.
    repeat: Option<(Arc<[u8]>, i64)>,
    failed: bool,
}

impl ViewBatches {
    /// Decodes `partitions` (rows of `schema`), in order. A schema without a row format is
    /// only an error once there is a row to decode.
    pub fn new(schema: SchemaRef, partitions: Vec<ViewRows>) -> Self {
        let converter = RowConverter::new(
            schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect(),
        )
        .ok();
        Self {
            schema,
            converter,
            partitions: partitions.into_iter(),
            current: None,
            repeat: None,
            failed: false,
        }
    }

    fn next_row(&mut self) -> Option<Arc<[u8]>> {
        loop {
            if let Some((row, left)) = &mut self.repeat {
                if *left > 0 {
                    *left -= 1;
                    return Some(row.clone());
                }
                self.repeat = None;
            }
            match self.current.as_mut().and_then(Iterator::next) {
                Some((row, count)) if count > 0 => self.repeat = Some((row, count)),
                Some(_) => {}
                None => self.current = Some(self.partitions.next()?.into_iter()),
            }
        }
    }

    fn decode(&self, rows: &[Arc<[u8]>]) -> Result<RecordBatch, ViewDecodeError> {
        let converter = self.converter.as_ref().ok_or(ViewDecodeError::NoRowFormat)?;
        let parser = converter.parser();
        let columns = converter.convert_rows(rows.iter().map(|r| parser.parse(r.as_ref())))?;
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

impl Iterator for ViewBatches {
    type Item = Result<RecordBatch, ViewDecodeError>;

    /// The next batch; after an error, `None`.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let mut rows = Vec::with_capacity(VIEW_SCAN_BATCH_ROWS);
        while rows.len() < VIEW_SCAN_BATCH_ROWS {
            match self.next_row() {
                Some(row) => rows.push(row),
                None => break,
            }
        }
        if rows.is_empty() {
            return None;
        }
        let result = self.decode(&rows);
        self.failed = result.is_err();
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, ArrayRef, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::super::ViewPartition;
    use super::*;

    #[test]
    fn rows_repeat_by_multiplicity_across_partitions_and_batches() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true)]));
        let mut a = ViewPartition::new(schema.clone()).unwrap();
        let mut b = ViewPartition::new(schema.clone()).unwrap();
        let ks: ArrayRef = Arc::new(Int64Array::from(vec![3, 1, 2]));
        a.apply(std::slice::from_ref(&ks), |i| [VIEW_SCAN_BATCH_ROWS as i64, 1, -1][i]).unwrap();
        b.apply(&[ks], |i| [0, 0, 2][i]).unwrap();
        let batches = ViewBatches::new(schema, vec![a.rows().clone(), b.rows().clone()])
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(), [VIEW_SCAN_BATCH_ROWS, 3]);
        let values: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec())
            .collect();
        // Partition a in row order (1 once, 3 many times; 2 is at -1), then b (2 twice).
        assert_eq!(values[..2], [1, 3]);
        assert_eq!(values[VIEW_SCAN_BATCH_ROWS - 1..], [3, 3, 2, 2]);
    }
}
