//! Filter: keeps the rows whose predicate is true (NULL counts as false, as in SQL), with a
//! vectorized DataFusion physical expression. A delete passes exactly when its insert did,
//! because the predicate sees the same row values.

use std::sync::Arc;

use arrow::array::{Array, BooleanArray};
use arrow::datatypes::SchemaRef;
use datafusion::physical_expr::PhysicalExpr;

use super::Operator;
use crate::error::{ExecError, ExecResult};
use crate::expr::ExprCompiler;
use crate::message::StreamBatch;

pub struct Filter {
    predicate: Arc<dyn PhysicalExpr>,
}

impl Filter {
    pub fn new(compiler: &ExprCompiler, predicate: &str, input: &SchemaRef) -> ExecResult<Self> {
        Ok(Self { predicate: compiler.compile_predicate(predicate, input)? })
    }
}

impl Operator for Filter {
    fn name(&self) -> &'static str {
        "Filter"
    }

    fn process_batch(
        &mut self,
        _input: usize,
        batch: StreamBatch,
        out: &mut Vec<StreamBatch>,
    ) -> ExecResult<()> {
        let mask = self.predicate.evaluate(&batch.data)?.into_array(batch.num_rows())?;
        let mask = mask
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| ExecError::Internal("filter predicate did not return booleans".into()))?;
        if mask.true_count() == batch.num_rows() && mask.null_count() == 0 {
            out.push(batch);
        } else if mask.true_count() > 0 {
            // `filter` treats NULL as "not selected".
            out.push(batch.filter(mask)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{ArrayRef, Float64Array, Int64Array};

    use super::*;
    use crate::operators::test_util::{assert_output, batch};

    #[test]
    fn keeps_true_rows_and_their_ops() {
        let input = batch(
            vec![
                ("id", Arc::new(Int64Array::from(vec![1, 2, 3, 4])) as ArrayRef),
                ("amount", Arc::new(Float64Array::from(vec![Some(5.0), Some(-1.0), None, Some(9.0)]))),
            ],
            Some(vec![1, 1, 1, -1]),
        );
        let mut op = Filter::new(&ExprCompiler::default(), "_c1 > 0", &input.data.schema()).unwrap();
        let mut out = vec![];
        op.process_batch(0, input, &mut out).unwrap();
        assert_output(
            &out,
            &[
                "+----+----+--------+",
                "| op | id | amount |",
                "+----+----+--------+",
                "| +  | 1  | 5.0    |",
                "| -  | 4  | 9.0    |",
                "+----+----+--------+",
            ],
        );
    }

    #[test]
    fn drops_batches_with_no_match() {
        let input = batch(vec![("x", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef)], None);
        let mut op = Filter::new(&ExprCompiler::default(), "_c0 > 10", &input.data.schema()).unwrap();
        let mut out = vec![];
        op.process_batch(0, input, &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn rejects_non_boolean_predicates() {
        let input = batch(vec![("x", Arc::new(Int64Array::from(vec![1])) as ArrayRef)], None);
        assert!(Filter::new(&ExprCompiler::default(), "_c0 + 1", &input.data.schema()).is_err());
    }
}
