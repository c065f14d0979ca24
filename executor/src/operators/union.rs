//! Union (UNION ALL): merges its inputs into one stream. The planner has already made the
//! inputs' column types equal; the union only relabels batches with its own schema.

use arrow::datatypes::SchemaRef;

use super::Operator;
use crate::error::{ExecError, ExecResult};
use crate::message::StreamBatch;
use weir_plan::job_graph::{schema_of, FieldSpec};

pub struct Union {
    schema: SchemaRef,
}

impl Union {
    pub fn new(output: &[FieldSpec]) -> ExecResult<Self> {
        Ok(Self { schema: schema_of(output)? })
    }
}

impl Operator for Union {
    fn name(&self) -> &'static str {
        "Union"
    }

    fn process_batch(
        &mut self,
        input: usize,
        batch: StreamBatch,
        out: &mut Vec<StreamBatch>,
    ) -> ExecResult<()> {
        let columns = batch.data.columns().to_vec();
        for (column, field) in columns.iter().zip(self.schema.fields()) {
            if column.data_type() != field.data_type() {
                return Err(ExecError::Internal(format!(
                    "union input {input}: column {} is {}, expected {}",
                    field.name(),
                    column.data_type(),
                    field.data_type()
                )));
            }
        }
        out.push(batch.with_columns(self.schema.clone(), columns)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array};
    use arrow::datatypes::DataType;

    use super::*;
    use crate::operators::test_util::{assert_output, batch};

    #[test]
    fn relabels_every_input_with_the_union_schema() {
        let mut op = Union::new(&[FieldSpec::new("v", &DataType::Int64)]).unwrap();
        let mut out = vec![];
        let a = batch(vec![("a", Arc::new(Int64Array::from(vec![1])) as ArrayRef)], None);
        let b = batch(vec![("b", Arc::new(Int64Array::from(vec![2])) as ArrayRef)], Some(vec![-1]));
        op.process_batch(0, a, &mut out).unwrap();
        op.process_batch(1, b, &mut out).unwrap();
        assert_output(
            &out,
            &["+----+---+", "| op | v |", "+----+---+", "| +  | 1 |", "| -  | 2 |", "+----+---+"],
        );
    }

    #[test]
    fn rejects_mismatched_types() {
        let mut op = Union::new(&[FieldSpec::new("v", &DataType::Int64)]).unwrap();
        let a = batch(vec![("a", Arc::new(arrow::array::Int32Array::from(vec![1])) as ArrayRef)], None);
        assert!(op.process_batch(0, a, &mut vec![]).is_err());
    }
}
