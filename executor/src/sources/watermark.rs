//! Watermark generation at a source: the largest value of the declared `WATERMARK FOR`
//! expression over the rows seen so far, reported when it advances.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::{SchemaRef, TimestampMicrosecondType};
use datafusion::physical_expr::PhysicalExpr;

use crate::error::{ExecError, ExecResult};
use crate::expr::ExprCompiler;
use weir_plan::catalog::Watermark;

pub struct WatermarkGenerator {
    expr: Arc<dyn PhysicalExpr>,
    /// The event-time column, when the expression reads no other column: it is then applied
    /// to the batch's largest event time only, not to every row (`ts - INTERVAL ...` is
    /// monotonic, so the result is the same).
    time_only: Option<usize>,
    current: i64,
}

impl WatermarkGenerator {
    pub fn new(spec: &Watermark, schema: &SchemaRef) -> ExecResult<Self> {
        let time_type = schema
            .fields()
            .get(spec.column)
            .map(|f| f.data_type().clone())
            .ok_or_else(|| ExecError::InvalidGraph(format!("no watermark column {}", spec.column)))?;
        let expr = ExprCompiler::default().compile(&spec.positional_expr, schema, Some(&time_type))?;
        let time_only = reads_only(&expr, spec.column).then_some(spec.column);
        Ok(Self { expr, time_only, current: i64::MIN })
    }

    /// The watermark so far; `None` before the first row with an event time.
    pub fn current(&self) -> Option<i64> {
        (self.current != i64::MIN).then_some(self.current)
    }

    /// Takes in a batch of the source's rows; returns the new watermark if it advanced.
    pub fn observe(&mut self, batch: &RecordBatch) -> ExecResult<Option<i64>> {
        if batch.num_rows() == 0 {
            return Ok(None);
        }
        let max = match self.time_only {
            Some(column) => {
                let times = batch
                    .column(column)
                    .as_primitive_opt::<TimestampMicrosecondType>()
                    .ok_or_else(|| ExecError::Internal("event-time column is not a timestamp".into()))?;
                match arrow::compute::max(times) {
                    // The expression over a one-row batch holding the largest time.
                    Some(latest) => {
                        let row = batch.slice(0, 1);
                        let mut columns = row.columns().to_vec();
                        let latest = TimestampMicrosecondArray::from(vec![latest]);
                        columns[column] = match times.timezone() {
                            Some(tz) => Arc::new(latest.with_timezone(tz)),
                            None => Arc::new(latest),
                        };
                        let row = RecordBatch::try_new(row.schema(), columns)?;
                        max_time(&self.expr.evaluate(&row)?.into_array(1)?)?
                    }
                    None => None,
                }
            }
            None => max_time(&self.expr.evaluate(batch)?.into_array(batch.num_rows())?)?,
        };
        match max {
            Some(max) if max > self.current => {
                self.current = max;
                Ok(Some(max))
            }
            _ => Ok(None),
        }
    }
}

/// The largest non-null timestamp of a watermark expression's result.
fn max_time(values: &ArrayRef) -> ExecResult<Option<i64>> {
    let values = values
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or_else(|| ExecError::Internal("watermark expression is not a timestamp".into()))?;
    Ok(arrow::compute::max(values))
}

/// Whether `expr` reads column `column` and no other.
fn reads_only(expr: &Arc<dyn PhysicalExpr>, column: usize) -> bool {
    let columns = datafusion::physical_expr::utils::collect_columns(expr);
    !columns.is_empty() && columns.iter().all(|c| c.index() == column)
}
