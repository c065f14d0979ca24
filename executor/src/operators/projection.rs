//! Projection: computes the output columns from each input batch with vectorized
//! DataFusion physical expressions. Ops pass through unchanged (a projection of an insert
//! is an insert; of a delete, a delete).

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::SchemaRef;
use datafusion::physical_expr::PhysicalExpr;

use super::Operator;
use crate::error::ExecResult;
use crate::expr::ExprCompiler;
use crate::message::StreamBatch;
use weir_plan::job_graph::{schema_of, FieldSpec};

pub struct Projection {
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
}

impl Projection {
    pub fn new(
        compiler: &ExprCompiler,
        exprs: &[String],
        output: &[FieldSpec],
        input: &SchemaRef,
    ) -> ExecResult<Self> {
        let schema = schema_of(output)?;
        let exprs = exprs
            .iter()
            .zip(schema.fields())
            .map(|(sql, field)| compiler.compile(sql, input, Some(field.data_type())))
            .collect::<ExecResult<Vec<_>>>()?;
        Ok(Self { exprs, schema })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }
}

impl Operator for Projection {
    fn name(&self) -> &'static str {
        "Project"
    }

    fn process_batch(
        &mut self,
        _input: usize,
        batch: StreamBatch,
        out: &mut Vec<StreamBatch>,
    ) -> ExecResult<()> {
        let rows = batch.num_rows();
        let columns = self
            .exprs
            .iter()
            .map(|e| e.evaluate(&batch.data)?.into_array(rows))
            .collect::<Result<Vec<ArrayRef>, _>>()?;
        out.push(batch.with_columns(self.schema.clone(), columns)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Float64Array, Int64Array, StringArray};
    use arrow::datatypes::DataType;

    use super::*;
    use crate::operators::test_util::{assert_output, batch};

    #[test]
    fn computes_expressions_and_keeps_ops() {
        let input = batch(
            vec![
                ("id", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
                ("name", Arc::new(StringArray::from(vec![Some("ada"), None, Some("bob")]))),
                ("amount", Arc::new(Float64Array::from(vec![1.5, 2.0, -3.0]))),
            ],
            Some(vec![1, -1, 1]),
        );
        let output = vec![
            FieldSpec::new("upper_name", &DataType::Utf8),
            FieldSpec::new("doubled", &DataType::Float64),
            FieldSpec::new("id_plus", &DataType::Int64),
        ];
        let exprs = ["upper(_c1)".to_string(), "_c2 * 2".to_string(), "_c0 + 10".to_string()];
        let mut op =
            Projection::new(&ExprCompiler::default(), &exprs, &output, &input.data.schema()).unwrap();
        let mut out = vec![];
        op.process_batch(0, input, &mut out).unwrap();
        assert_output(
            &out,
            &[
                "+----+------------+---------+---------+",
                "| op | upper_name | doubled | id_plus |",
                "+----+------------+---------+---------+",
                "| +  | ADA        | 3.0     | 11      |",
                "| -  |            | 4.0     | 12      |",
                "| +  | BOB        | -6.0    | 13      |",
                "+----+------------+---------+---------+",
            ],
        );
    }

    #[test]
    fn casts_to_the_declared_type() {
        let input = batch(vec![("x", Arc::new(Int64Array::from(vec![7])) as ArrayRef)], None);
        let output = vec![FieldSpec::new("x", &DataType::Float64)];
        let mut op =
            Projection::new(&ExprCompiler::default(), &["_c0".to_string()], &output, &input.data.schema())
                .unwrap();
        let mut out = vec![];
        op.process_batch(0, input, &mut out).unwrap();
        assert_eq!(out[0].data.column(0).data_type(), &DataType::Float64);
    }
}
