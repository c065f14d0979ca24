//! Helpers for operator unit tests: build changelog batches by hand and print outputs as
//! tables (with an `op` column) that can be pasted back in as expectations.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int8Array, RecordBatch};
use arrow::datatypes::{Field, Schema};
use arrow::util::pretty::pretty_format_batches;

use crate::message::StreamBatch;

/// A batch from named columns; `ops` of `None` makes it append-only.
pub fn batch(columns: Vec<(&str, ArrayRef)>, ops: Option<Vec<i8>>) -> StreamBatch {
    let schema = Schema::new(
        columns.iter().map(|(name, a)| Field::new(*name, a.data_type().clone(), true)).collect::<Vec<_>>(),
    );
    let data = RecordBatch::try_new(Arc::new(schema), columns.into_iter().map(|(_, a)| a).collect())
        .expect("test batch");
    match ops {
        Some(ops) => StreamBatch::with_ops(data, Int8Array::from(ops)),
        None => StreamBatch::inserts(data),
    }
}

/// Pretty-prints batches with a leading `op` column (`+`/`-`), one table, for assertions.
pub fn format(batches: &[StreamBatch]) -> Vec<String> {
    let printable: Vec<RecordBatch> = batches
        .iter()
        .filter(|b| !b.is_empty())
        .map(|b| {
            let ops: Vec<&str> = (0..b.num_rows()).map(|i| if b.op(i) > 0 { "+" } else { "-" }).collect();
            let mut fields = vec![Field::new("op", arrow::datatypes::DataType::Utf8, false)];
            fields.extend(b.data.schema().fields().iter().map(|f| f.as_ref().clone()));
            let mut columns: Vec<ArrayRef> = vec![Arc::new(arrow::array::StringArray::from(ops))];
            columns.extend(b.data.columns().iter().cloned());
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("printable batch")
        })
        .collect();
    if printable.is_empty() {
        return vec![];
    }
    pretty_format_batches(&printable).expect("format").to_string().lines().map(str::to_string).collect()
}

/// Asserts that `batches` print as `expected` (lines of a pretty table).
#[track_caller]
pub fn assert_output(batches: &[StreamBatch], expected: &[&str]) {
    let actual = format(batches);
    assert_eq!(actual, expected, "\nactual:\n{}\n", actual.join("\n"));
}

/// The rows of `batch` that the hash exchange on `keys` sends to each of `parallelism`
/// subtasks, as it would route them.
pub fn route(batch: &StreamBatch, keys: &[usize], parallelism: usize) -> Vec<StreamBatch> {
    let groups = crate::exchange::key_groups(batch, keys).expect("key groups");
    (0..parallelism)
        .map(|subtask| {
            let mask: arrow::array::BooleanArray = groups
                .iter()
                .map(|&g| Some(crate::exchange::subtask_of(g, parallelism) == subtask))
                .collect();
            batch.filter(&mask).expect("filter")
        })
        .collect()
}

/// Applies a changelog's rows to a multiset of printed rows (what a view holds).
pub fn apply(view: &mut std::collections::BTreeMap<String, i64>, out: &[StreamBatch]) {
    for line in format(out).iter().filter(|l| l.starts_with("| +") || l.starts_with("| -")) {
        let weight = if line.starts_with("| +") { 1 } else { -1 };
        // Cells without the padding, which depends on the other rows of the table.
        let row: Vec<&str> = line[4..].split('|').map(str::trim).collect();
        *view.entry(row.join("|")).or_default() += weight;
    }
    view.retain(|_, n| *n != 0);
}
