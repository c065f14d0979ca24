//! `varchar(n)` holds at most `n` characters, as in Postgres: a longer value is refused
//! with `22001` (`value too long for type character varying(n)`), except that spaces
//! beyond the `n`th character are cut off silently, Postgres' one exception. Checked where
//! every write to a table passes (INSERT, UPDATE, COPY), so no path can store a value its
//! column cannot hold.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::DataType;
use weir_plan::catalog::{ColumnType, TableDef};

use crate::error::{StorageError, StorageResult};

/// `batch` with every `varchar(n)` value fitted to `n` characters (trailing spaces cut),
/// or `22001` for a value whose other characters do not fit. Borrows `batch` when nothing
/// needs cutting.
pub(crate) fn fit_declared_lengths<'a>(
    def: &TableDef,
    batch: &'a RecordBatch,
) -> StorageResult<Cow<'a, RecordBatch>> {
    let mut columns: Option<Vec<ArrayRef>> = None;
    for (i, column) in def.columns.iter().enumerate() {
        let ColumnType::Varchar { length: Some(limit) } = column.column_type else { continue };
        let Some(values) = batch.columns().get(i) else { continue };
        if let Some(fitted) = fit_column(values, limit as usize)? {
            columns.get_or_insert_with(|| batch.columns().to_vec())[i] = fitted;
        }
    }
    match columns {
        None => Ok(Cow::Borrowed(batch)),
        Some(columns) => Ok(Cow::Owned(RecordBatch::try_new(batch.schema(), columns)?)),
    }
}

/// The column with trailing spaces past `limit` cut, if any value had some; `22001` if a
/// value is longer than `limit` without them.
fn fit_column(values: &ArrayRef, limit: usize) -> StorageResult<Option<ArrayRef>> {
    if values.data_type() != &DataType::Utf8 {
        return Ok(None);
    }
    let strings = values.as_string::<i32>();
    let mut needs_cut = false;
    for value in strings.iter().flatten() {
        if value.chars().count() > limit {
            if value.trim_end_matches(' ').chars().count() > limit {
                return Err(StorageError::StringTooLong { type_name: format!("character varying({limit})") });
            }
            needs_cut = true;
        }
    }
    if !needs_cut {
        return Ok(None);
    }
    let cut: StringArray = strings
        .iter()
        .map(|v| v.map(|s| s.char_indices().nth(limit).map_or(s, |(at, _)| &s[..at])))
        .collect();
    Ok(Some(Arc::new(cut)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};
    use weir_plan::catalog::ColumnDef;

    fn table() -> TableDef {
        let column = |name: &str, column_type| ColumnDef {
            name: name.into(),
            column_type,
            not_null: false,
            default: None,
        };
        TableDef {
            id: 1,
            schema_name: "public".into(),
            name: "t".into(),
            columns: vec![
                column("short", ColumnType::Varchar { length: Some(3) }),
                column("free", ColumnType::Text),
            ],
            primary_key: Vec::new(),
            primary_key_name: None,
            watermark: None,
        }
    }

    fn batch(short: Vec<Option<&str>>, free: Vec<Option<&str>>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("short", DataType::Utf8, true),
            Field::new("free", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(short)), Arc::new(StringArray::from(free))],
        )
        .unwrap()
    }

    #[test]
    fn values_that_fit_are_kept_as_they_are() {
        let b = batch(vec![Some("abc"), Some("ü€x"), None], vec![Some("a long text"), None, None]);
        assert!(matches!(fit_declared_lengths(&table(), &b), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn a_longer_value_is_22001_and_only_spaces_are_cut() {
        let b = batch(vec![Some("abcd")], vec![None]);
        let e = fit_declared_lengths(&table(), &b).unwrap_err();
        assert_eq!(e.sqlstate(), "22001");
        assert_eq!(e.to_string(), "value too long for type character varying(3)");
        let b = batch(vec![Some("ab    "), Some("x")], vec![Some("free    "), None]);
        let fitted = fit_declared_lengths(&table(), &b).unwrap();
        let short = fitted.column(0).as_string::<i32>();
        assert_eq!((short.value(0), short.value(1)), ("ab ", "x"));
        assert_eq!(fitted.column(1).as_string::<i32>().value(0), "free    ");
    }
}
