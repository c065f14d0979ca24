//! Encoding: one partition of a view as its materialize task keeps it, and the row-format
//! facts scans rely on.
//!
//! Rows are stored in Arrow's row format, whose bytes sort like the values and encode the
//! columns one after the other. So the map is ordered by the view's columns, and every row
//! whose first column equals a value starts with that value's encoding alone: a prefix, hence
//! a range of the map.

use std::ops::Bound;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::row::{RowConverter, SortField};

use super::decoding::ViewBatches;
use super::ViewRows;

/// One partition of a view: its rows with their multiplicities, and the converter that
/// encodes rows of the view's schema.
pub struct ViewPartition {
    schema: SchemaRef,
    converter: RowConverter,
    rows: ViewRows,
}

impl ViewPartition {
    /// An empty partition of a view with `schema`; fails if its columns have no row format.
    pub fn new(schema: SchemaRef) -> Result<Self, ArrowError> {
        let converter = RowConverter::new(
            schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect(),
        )?;
        Ok(Self { schema, converter, rows: ViewRows::new() })
    }

    /// Applies a batch of changes: row `i` of `columns` is added `delta(i)` times (a delete
    /// is `-1`). Counts may dip below zero within an epoch when a delete overtakes its insert
    /// on another path; a row whose count reaches zero is gone.
    ///
    /// Returns how many rows it deleted that the partition did not hold (their count went
    /// below zero): a changelog that deletes only what it inserted never does that, so a
    /// non-zero result means the view has lost track of some of its rows.
    pub fn apply(&mut self, columns: &[ArrayRef], delta: impl Fn(usize) -> i64) -> Result<u64, ArrowError> {
        let encoded = self.converter.convert_columns(columns)?;
        let mut missing = 0;
        for (i, row) in encoded.iter().enumerate() {
            let delta = delta(i);
            let key = row.as_ref();
            let remove = match self.rows.get_mut(key) {
                Some(count) => {
                    let before = *count;
                    *count += delta;
                    if delta < 0 && *count < 0 && before >= 0 {
                        missing += 1;
                    }
                    *count == 0
                }
                None => {
                    if delta < 0 {
                        missing += 1;
                    }
                    self.rows.insert(Arc::from(key), delta);
                    false
                }
            };
            if remove {
                self.rows.remove(key);
            }
        }
        Ok(missing)
    }

    /// The partition's rows. Cloning them is O(1): that is how a version is staged or
    /// captured for a checkpoint while the partition keeps changing.
    pub fn rows(&self) -> &ViewRows {
        &self.rows
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Replaces the rows (restoring a checkpoint).
    pub fn set_rows(&mut self, rows: ViewRows) {
        self.rows = rows;
    }

    /// Adds the rows of `rows` (another partition's, restored after a rescale) for which
    /// `keep`, given them decoded into columns, says `true`, with their counts.
    pub fn add_rows_where(
        &mut self,
        rows: &ViewRows,
        keep: impl FnOnce(&[ArrayRef]) -> Result<Vec<bool>, ArrowError>,
    ) -> Result<(), ArrowError> {
        if rows.is_empty() {
            return Ok(());
        }
        let parser = self.converter.parser();
        let columns = self.converter.convert_rows(rows.keys().map(|row| parser.parse(row)))?;
        let kept = keep(&columns)?;
        for ((row, count), keep) in rows.iter().zip(kept) {
            if keep {
                let total = self.rows.get(row).copied().unwrap_or(0) + count;
                match total {
                    0 => self.rows.remove(row),
                    n => self.rows.insert(Arc::clone(row), n),
                };
            }
        }
        Ok(())
    }

    /// The current rows decoded into batches.
    pub fn batches(&self) -> ViewBatches {
        ViewBatches::new(self.schema.clone(), vec![self.rows.clone()])
    }
}

/// The row-format bytes every row whose first column equals `value[0]` starts with.
pub fn leading_prefix(value: &ArrayRef) -> Result<Vec<u8>, ArrowError> {
    let converter = RowConverter::new(vec![SortField::new(value.data_type().clone())])?;
    let rows = converter.convert_columns(std::slice::from_ref(value))?;
    Ok(rows.row(0).as_ref().to_vec())
}

/// The rows of a partition that start with `prefix`: a range of the ordered map.
pub fn rows_with_prefix(rows: &ViewRows, prefix: &[u8]) -> ViewRows {
    rows.range::<_, [u8]>((Bound::Included(prefix), Bound::Unbounded))
        .take_while(|(row, _)| row.starts_with(prefix))
        .map(|(row, count)| (row.clone(), *count))
        .collect()
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn a_delete_before_its_insert_cancels_out() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true)]));
        let mut partition = ViewPartition::new(schema).unwrap();
        let column: ArrayRef = Arc::new(Int64Array::from(vec![1, 1, 2]));
        partition.apply(std::slice::from_ref(&column), |_| -1).unwrap();
        assert_eq!(partition.rows().values().copied().collect::<Vec<_>>(), [-2, -1]);
        partition.apply(&[column], |_| 1).unwrap();
        assert!(partition.rows().is_empty());
    }

    #[test]
    fn rows_of_a_first_column_value_are_a_prefix_range() {
        let rows: ViewRows = [(&b"\x01ab"[..], 1), (b"\x01ac", 2), (b"\x02ab", 1), (b"\x01", 1)]
            .into_iter()
            .map(|(k, n)| (Arc::<[u8]>::from(k), n))
            .collect();
        let narrowed = rows_with_prefix(&rows, b"\x01a");
        assert_eq!(narrowed.len(), 2);
        assert_eq!(narrowed.values().sum::<i64>(), 3);

        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let mut partition = ViewPartition::new(schema).unwrap();
        let k: ArrayRef = Arc::new(Int64Array::from(vec![2, 2, 22]));
        let name: ArrayRef = Arc::new(StringArray::from(vec!["b", "c", "e"]));
        partition.apply(&[k, name], |_| 1).unwrap();
        let prefix = leading_prefix(&(Arc::new(Int64Array::from(vec![2])) as ArrayRef)).unwrap();
        assert_eq!(rows_with_prefix(partition.rows(), &prefix).len(), 2);
    }
}
