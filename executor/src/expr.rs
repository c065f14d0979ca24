//! Compiles the JobGraph's SQL expression text into DataFusion physical expressions.
//!
//! The planner writes expressions over positional column names (`_c0`, `_c1`, ...), so a
//! TaskManager needs only the input's types to rebuild them: the text is parsed, type-coerced
//! and simplified by DataFusion against a schema whose columns carry those names, then cast
//! to the type the planner declared if DataFusion arrives at a different one.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::physical_expr::expressions::CastExpr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;

use crate::error::{ExecError, ExecResult};

/// Builds expressions for one task; holds the function registry.
pub struct ExprCompiler {
    ctx: SessionContext,
}

impl Default for ExprCompiler {
    fn default() -> Self {
        Self { ctx: crate::functions::session_context(datafusion::prelude::SessionConfig::new()) }
    }
}

/// The positional name of input column `i`.
pub fn positional_name(i: usize) -> String {
    format!("_c{i}")
}

impl ExprCompiler {
    /// Compiles `sql` over `input`; if `expected` is given the result is cast to it.
    pub fn compile(
        &self,
        sql: &str,
        input: &SchemaRef,
        expected: Option<&DataType>,
    ) -> ExecResult<Arc<dyn PhysicalExpr>> {
        let positional = Schema::new(
            input
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| Field::new(positional_name(i), f.data_type().clone(), true))
                .collect::<Vec<_>>(),
        );
        let df_schema = DFSchema::try_from(positional.clone())?;
        let expr = self.ctx.parse_sql_expr(sql, &df_schema)?;
        let physical = self.ctx.create_physical_expr(expr, &df_schema)?;
        let actual = physical.data_type(&positional)?;
        match expected {
            Some(expected) if &actual != expected => {
                Ok(Arc::new(CastExpr::new(physical, expected.clone(), None)) as Arc<dyn PhysicalExpr>)
            }
            _ => Ok(physical),
        }
    }

    /// Compiles a predicate; it must be boolean.
    pub fn compile_predicate(&self, sql: &str, input: &SchemaRef) -> ExecResult<Arc<dyn PhysicalExpr>> {
        let expr = self.compile(sql, input, None)?;
        if expr.data_type(input)? != DataType::Boolean {
            return Err(ExecError::InvalidGraph(format!("filter predicate {sql} is not boolean")));
        }
        Ok(expr)
    }
}
