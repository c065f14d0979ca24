//! Row encoding for stored tables.
//!
//! Both keys and values use Arrow's row format (`arrow::row`): encoding and decoding are
//! vectorized over whole batches, and key bytes compare in the same order as the key values,
//! so a RocksDB scan returns rows in primary-key order.

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, Rows, SortField};

use crate::error::StorageResult;
use weir_plan::catalog::TableDef;

pub(crate) struct RowCodec {
    schema: SchemaRef,
    value_converter: RowConverter,
    key_converter: Option<RowConverter>,
    key_indices: Vec<usize>,
}

impl RowCodec {
    pub(crate) fn new(def: &TableDef) -> StorageResult<Self> {
        let schema = def.arrow_schema();
        let value_converter = RowConverter::new(
            schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect(),
        )?;
        let key_converter = if def.primary_key.is_empty() {
            None
        } else {
            Some(RowConverter::new(
                def.primary_key
                    .iter()
                    .map(|&i| SortField::new(schema.field(i).data_type().clone()))
                    .collect(),
            )?)
        };
        Ok(Self { schema, value_converter, key_converter, key_indices: def.primary_key.clone() })
    }

    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub(crate) fn encode_values(&self, batch: &RecordBatch) -> StorageResult<Rows> {
        Ok(self.value_converter.convert_columns(batch.columns())?)
    }

    /// Primary-key bytes per row, or `None` for a table without a primary key.
    pub(crate) fn encode_keys(&self, batch: &RecordBatch) -> StorageResult<Option<Rows>> {
        let Some(converter) = &self.key_converter else { return Ok(None) };
        let columns: Vec<ArrayRef> = self.key_indices.iter().map(|&i| batch.column(i).clone()).collect();
        Ok(Some(converter.convert_columns(&columns)?))
    }

    /// Primary-key bytes of key values given column by column (in key order, of the key's
    /// types), or `None` for a table without a primary key.
    pub(crate) fn encode_key_columns(&self, columns: &[ArrayRef]) -> StorageResult<Option<Rows>> {
        let Some(converter) = &self.key_converter else { return Ok(None) };
        Ok(Some(converter.convert_columns(columns)?))
    }

    pub(crate) fn key_indices(&self) -> &[usize] {
        &self.key_indices
    }

    /// Decodes stored values back into a batch with the table's schema.
    pub(crate) fn decode_values<'a>(
        &self,
        values: impl IntoIterator<Item = &'a [u8]>,
    ) -> StorageResult<RecordBatch> {
        let parser = self.value_converter.parser();
        let rows: Vec<_> = values.into_iter().map(|v| parser.parse(v)).collect();
        if rows.is_empty() {
            return Ok(RecordBatch::new_empty(self.schema.clone()));
        }
        let columns = self.value_converter.convert_rows(rows)?;
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}
