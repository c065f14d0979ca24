//! Parquet: declared columns looked up by name (case-insensitively, an exact match first),
//! read with the Parquet reader DataFusion re-exports, then cast to the declared types.
//!
//! Only the declared columns are decoded (a projection). A value the cast cannot convert, or a
//! NULL in a NOT NULL column, makes its row malformed (`<file> row <n>`, 1-based). A file that
//! is not Parquet at all (truncated: no footer) or whose data stops decoding part way is
//! malformed data too: reported as one error (`<file>`, or `<file> row <n>` where decoding
//! stopped), its rows up to there kept, and the other files of the source read as usual.
//! Offsets count rows consumed: `{"row": n}`; resuming skips that many rows.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow::array::ArrayRef;
use arrow::compute::can_cast_types;
use arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use datafusion::parquet::arrow::ProjectionMask;

use super::convert::conform;
use super::{display_name, io_error, offset_field};
use crate::connectors::file_access::FileAccess;
use crate::connectors::type_names::sql_type_name;
use crate::connectors::{ReadOutcome, RowError, SplitReader};
use crate::error::{ExecError, ExecResult};

/// A Parquet file opened: a reader builder and, for each declared column, the index of the
/// file's column to read; or why the file is not Parquet (its footer cannot be read).
enum Opened {
    Readable(ParquetRecordBatchReaderBuilder<File>, Vec<usize>),
    Malformed(String),
}

/// Opens `path` and finds, for each declared column, the index of the file's column to read.
/// A file that cannot be opened, or lacks a declared column, is an error; one that is not
/// Parquet is [`Opened::Malformed`].
fn open_builder(access: &FileAccess, path: &Path, schema: &SchemaRef) -> ExecResult<Opened> {
    let file = access.open_read(path)?;
    let builder = match ParquetRecordBatchReaderBuilder::try_new(file) {
        Ok(builder) => builder,
        Err(e) => return Ok(Opened::Malformed(format!("not a readable Parquet file: {e}"))),
    };
    let file_schema = builder.schema();
    let mut indices = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let found = file_schema.index_of(field.name()).ok().or_else(|| {
            file_schema.fields().iter().position(|f| f.name().eq_ignore_ascii_case(field.name()))
        });
        let Some(index) = found else {
            let names: Vec<&str> = file_schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(ExecError::Connector(format!(
                "Parquet file '{}' has no column '{}' (its columns: {})",
                path.display(),
                field.name(),
                names.join(", ")
            )));
        };
        let file_type = file_schema.field(index).data_type();
        if !can_cast_types(file_type, field.data_type()) {
            return Err(ExecError::Connector(format!(
                "column {}: Parquet file '{}' stores it as {file_type}, which cannot be read as {}",
                field.name(),
                path.display(),
                sql_type_name(field.data_type())
            )));
        }
        indices.push(index);
    }
    Ok(Opened::Readable(builder, indices))
}

/// Checks that `path` has every declared column, in a type that casts to the declared one.
/// `Ok(Err(why))` when the file is not Parquet: malformed data, which the reader reports.
pub(super) fn resolve_columns(
    access: &FileAccess,
    path: &Path,
    schema: &SchemaRef,
) -> ExecResult<Result<(), String>> {
    Ok(match open_builder(access, path, schema)? {
        Opened::Readable(..) => Ok(()),
        Opened::Malformed(why) => Err(why),
    })
}

/// Reads one Parquet file.
pub(super) struct ParquetReader {
    path: PathBuf,
    name: String,
    schema: SchemaRef,
    batch_size: usize,
    /// Built at the first read, starting at `row`.
    reader: Option<(ParquetRecordBatchReader, Vec<String>)>,
    /// Rows consumed so far.
    row: u64,
    finished: bool,
    errors: Vec<RowError>,
    /// Checks the file again whenever it is reopened.
    access: FileAccess,
}

impl ParquetReader {
    pub(super) fn open(
        access: &FileAccess,
        path: &Path,
        schema: SchemaRef,
        batch_size: usize,
    ) -> ExecResult<Self> {
        // A file that is not Parquet is reported at the first read, as malformed data.
        resolve_columns(access, path, &schema)?.ok();
        Ok(ParquetReader {
            access: access.clone(),
            path: path.to_path_buf(),
            name: display_name(path),
            schema,
            batch_size,
            reader: None,
            row: 0,
            finished: false,
            errors: Vec::new(),
        })
    }

    /// The reader, from row `self.row` on; `Err(why)` when the file is not Parquet.
    fn build(&self) -> ExecResult<Result<(ParquetRecordBatchReader, Vec<String>), String>> {
        let (builder, indices) = match open_builder(&self.access, &self.path, &self.schema)? {
            Opened::Readable(builder, indices) => (builder, indices),
            Opened::Malformed(why) => return Ok(Err(why)),
        };
        let names: Vec<String> = indices.iter().map(|&i| builder.schema().field(i).name().clone()).collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
        let offset =
            usize::try_from(self.row).map_err(|_| ExecError::Internal("row offset too large".into()))?;
        let reader = builder
            .with_projection(mask)
            .with_batch_size(self.batch_size)
            .with_offset(offset)
            .build()
            .map_err(|e| io_error(&self.path, "read", e))?;
        Ok(Ok((reader, names)))
    }

    /// The rest of the file cannot be read: reported as one malformed-data error at
    /// `location`, and the file is finished (the rows read before it are kept).
    fn malformed(&mut self, location: String, reason: String) -> ReadOutcome {
        tracing::warn!(file = %self.name, %location, %reason, "malformed Parquet file skipped");
        self.errors.push(RowError { location, reason });
        self.finished = true;
        self.reader = None;
        ReadOutcome::Finished
    }
}

impl SplitReader for ParquetReader {
    fn next_batch(&mut self) -> ExecResult<ReadOutcome> {
        if self.finished {
            return Ok(ReadOutcome::Finished);
        }
        if self.reader.is_none() {
            match self.build()? {
                Ok(reader) => self.reader = Some(reader),
                Err(why) => return Ok(self.malformed(self.name.clone(), why)),
            }
        }
        loop {
            let Some((reader, names)) = self.reader.as_mut() else { return Ok(ReadOutcome::Finished) };
            let batch = match reader.next() {
                None => {
                    self.finished = true;
                    return Ok(ReadOutcome::Finished);
                }
                Some(Ok(batch)) => batch,
                Some(Err(e)) => {
                    let location = format!("{} row {}", self.name, self.row + 1);
                    return Ok(self.malformed(location, format!("unreadable Parquet data: {e}")));
                }
            };
            if batch.num_rows() == 0 {
                continue;
            }
            let first_row = self.row;
            self.row += batch.num_rows() as u64;
            let columns = names
                .iter()
                .map(|name| {
                    batch.column_by_name(name).cloned().ok_or_else(|| {
                        ExecError::Internal(format!("Parquet projection lost column '{name}'"))
                    })
                })
                .collect::<ExecResult<Vec<ArrayRef>>>()?;
            let mut bad = Vec::new();
            let out = conform(columns, &self.schema, &mut bad)?;
            for (row, reason) in bad {
                let location = format!("{} row {}", self.name, first_row + row as u64 + 1);
                self.errors.push(RowError { location, reason });
            }
            return Ok(match out {
                Some(batch) => ReadOutcome::Batch(batch),
                None => ReadOutcome::Wait(Duration::ZERO),
            });
        }
    }

    fn take_errors(&mut self) -> Vec<RowError> {
        std::mem::take(&mut self.errors)
    }

    fn offset(&self) -> serde_json::Value {
        serde_json::json!({ "row": self.row })
    }

    fn seek(&mut self, offset: &serde_json::Value) -> ExecResult<()> {
        self.row = offset_field(offset, "row")?;
        self.reader = None;
        self.finished = false;
        Ok(())
    }
}
