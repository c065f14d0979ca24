//! Floating-point keys compared as Postgres compares them: `-0` equals `0` and every `NaN`
//! equals every other `NaN`, so they group, join, partition and route as one key.
//!
//! Keys are encoded byte-wise (arrow-row) and hashed from their bits; `-0.0` and `0.0` (and
//! NaNs of different payloads) have different bits, so a view grouped by a `float8` column
//! kept two groups where Postgres and a batch query have one. Key columns are normalized
//! before they are encoded or hashed: `-0` becomes `0`, every NaN the canonical NaN.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::kernels::arity::unary;
use arrow::datatypes::{DataType, Float32Type, Float64Type};

/// `columns` with their float columns normalized; other columns are passed through (a cheap
/// `Arc` clone).
pub fn normalized(columns: &[ArrayRef]) -> Vec<ArrayRef> {
    columns.iter().map(normalize).collect()
}

fn normalize(column: &ArrayRef) -> ArrayRef {
    match column.data_type() {
        DataType::Float64 => {
            let values = column.as_primitive::<Float64Type>();
            Arc::new(unary::<_, _, Float64Type>(values, |v| {
                if v == 0.0 {
                    0.0
                } else if v.is_nan() {
                    f64::NAN
                } else {
                    v
                }
            }))
        }
        DataType::Float32 => {
            let values = column.as_primitive::<Float32Type>();
            Arc::new(unary::<_, _, Float32Type>(values, |v| {
                if v == 0.0 {
                    0.0
                } else if v.is_nan() {
                    f32::NAN
                } else {
                    v
                }
            }))
        }
        _ => column.clone(),
    }
}

/// Whether any column is a float column (otherwise [`normalized`] changes nothing).
pub fn any_float(columns: &[ArrayRef]) -> bool {
    columns.iter().any(|c| matches!(c.data_type(), DataType::Float32 | DataType::Float64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int32Array};
    use arrow::row::{RowConverter, SortField};

    #[test]
    fn minus_zero_and_nans_encode_as_one_key() {
        let floats: ArrayRef =
            Arc::new(Float64Array::from(vec![Some(0.0), Some(-0.0), Some(f64::NAN), Some(-f64::NAN), None]));
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![1, 1, 1, 1, 1]));
        let converter =
            RowConverter::new(vec![SortField::new(DataType::Float64), SortField::new(DataType::Int32)])
                .expect("converter");
        let raw = converter.convert_columns(&[floats.clone(), ints.clone()]).expect("rows");
        assert_ne!(raw.row(0), raw.row(1), "arrow-row tells -0 from 0");
        let rows = converter.convert_columns(&normalized(&[floats, ints])).expect("rows");
        assert_eq!(rows.row(0), rows.row(1));
        assert_eq!(rows.row(2), rows.row(3));
        assert_ne!(rows.row(0), rows.row(2));
        assert_ne!(rows.row(4), rows.row(0), "NULL stays NULL");
    }
}
