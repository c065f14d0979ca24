//! Window table-valued functions in `FROM`: `TUMBLE(src, ts, size [, offset])`,
//! `HOP(src, ts, slide, size [, offset])`, `CUMULATE(src, ts, step, size [, offset])` and
//! `SESSION(src, ts, gap [, key, ...])`.
//!
//! DataFusion's SQL planner hands every table factor to [`WindowTvfPlanner`] first; a window
//! call becomes a [`WindowTvf`] extension node over the planned `src`, whose schema is the
//! source's columns plus `window_start` and `window_end`. The stream planner lowers the node
//! to a `WindowAssign` (or `SessionWindow`) operator; a window aggregate is then an ordinary
//! `GROUP BY window_start, window_end, ...`.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use datafusion::common::{
    plan_err, Column, DFSchema, DFSchemaRef, Result as DfResult, ScalarValue, TableReference,
};
use datafusion::logical_expr::planner::{
    PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::logical_expr::{
    Expr, Extension, LogicalPlan, LogicalPlanBuilder, TableSource, UserDefinedLogicalNodeCore,
};
use datafusion::sql::sqlparser::ast::{self, FunctionArg, FunctionArgExpr, TableFactor};
use weir_plan::job_graph::WindowKind;

use crate::error::{sqlstate, SqlError};

/// The logical node of a window TVF.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WindowTvf {
    pub input: LogicalPlan,
    pub kind: WindowKind,
    /// Index of the event-time column in the input.
    pub time_column: usize,
    /// SESSION partition columns (input indexes).
    pub keys: Vec<usize>,
    schema: DFSchemaRef,
}

impl PartialOrd for WindowTvf {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (&self.kind, self.time_column, &self.keys)
            .partial_cmp(&(&other.kind, other.time_column, &other.keys))
            .filter(|o| *o != Ordering::Equal)
            .or_else(|| self.input.partial_cmp(&other.input))
    }
}

impl WindowTvf {
    pub fn try_new(
        input: LogicalPlan,
        kind: WindowKind,
        time_column: usize,
        keys: Vec<usize>,
    ) -> DfResult<Self> {
        let input_schema = input.schema();
        let (_, time_field) = input_schema.qualified_field(time_column);
        let time_type = time_field.data_type().clone();
        let mut fields: Vec<_> = input_schema.iter().map(|(q, f)| (q.cloned(), f.clone())).collect();
        for name in ["window_start", "window_end"] {
            fields.push((None, Arc::new(arrow::datatypes::Field::new(name, time_type.clone(), true))));
        }
        let schema = Arc::new(DFSchema::new_with_metadata(fields, input_schema.metadata().clone())?);
        Ok(Self { input, kind, time_column, keys, schema })
    }
}

impl UserDefinedLogicalNodeCore for WindowTvf {
    fn name(&self) -> &str {
        "WindowTvf"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "WindowTvf: {} on column {}", self.kind, self.time_column)
    }

    /// Filters on the window columns cannot move below the node that creates them.
    fn prevent_predicate_push_down_columns(&self) -> std::collections::HashSet<String> {
        ["window_start", "window_end"].into_iter().map(String::from).collect()
    }

    /// Projection pushdown: the input columns a parent needs, plus the time and key columns.
    /// Rows then carry only those through the window operators (a row is copied once per
    /// window, and SESSION holds rows until their session closes).
    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        let width = self.input.schema().fields().len();
        let mut needed: Vec<usize> = output_columns.iter().copied().filter(|c| *c < width).collect();
        needed.push(self.time_column);
        needed.extend(&self.keys);
        needed.sort_unstable();
        needed.dedup();
        Some(vec![needed])
    }

    /// The input may come back with fewer columns (after projection pushdown): the time and
    /// key columns are found again by name.
    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, mut inputs: Vec<LogicalPlan>) -> DfResult<Self> {
        let (Some(input), true) = (inputs.pop(), inputs.is_empty()) else {
            return plan_err!("WindowTvf takes exactly one input");
        };
        let old = self.input.schema();
        let find = |index: usize| -> DfResult<usize> {
            let (qualifier, field) = old.qualified_field(index);
            input.schema().index_of_column(&Column::new(qualifier.cloned(), field.name()))
        };
        let time_column = find(self.time_column)?;
        let keys = self.keys.iter().map(|k| find(*k)).collect::<DfResult<Vec<_>>>()?;
        Self::try_new(input, self.kind, time_column, keys)
    }
}

/// Finds a table, view or source by name for a window call's first argument.
pub type ResolveTable = dyn Fn(&TableReference) -> Option<Arc<dyn TableSource>> + Send + Sync;

/// Plans `TUMBLE(...)`, `HOP(...)`, `CUMULATE(...)` and `SESSION(...)` in `FROM`.
///
/// DataFusion fetches the tables a statement names before planning it, but a window call's
/// source is an argument, not a table reference, so it is looked up here with `resolve`.
pub struct WindowTvfPlanner {
    resolve: Arc<ResolveTable>,
}

impl WindowTvfPlanner {
    pub fn new(resolve: Arc<ResolveTable>) -> Self {
        Self { resolve }
    }
}

impl fmt::Debug for WindowTvfPlanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WindowTvfPlanner")
    }
}

impl RelationPlanner for WindowTvfPlanner {
    fn plan_relation(
        &self,
        relation: TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> DfResult<RelationPlanning> {
        let TableFactor::Table { name, args: Some(args), alias, .. } = &relation else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let function = match name.0.as_slice() {
            [part] => part.as_ident().map(|i| i.value.to_ascii_lowercase()).unwrap_or_default(),
            _ => String::new(),
        };
        if !matches!(function.as_str(), "tumble" | "hop" | "cumulate" | "session") {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        }
        let args: Vec<&ast::Expr> = args
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
                other => Err(sql_error(
                    sqlstate::SYNTAX_ERROR,
                    format!("{}: unsupported argument {other}", function.to_uppercase()),
                )),
            })
            .collect::<DfResult<_>>()?;
        let usage = match function.as_str() {
            "tumble" => "TUMBLE(source, time_column, size [, offset])",
            "hop" => "HOP(source, time_column, slide, size [, offset])",
            "cumulate" => "CUMULATE(source, time_column, step, size [, offset])",
            _ => "SESSION(source, time_column, gap [, key_column, ...])",
        };
        let (min_args, max_args) = match function.as_str() {
            "tumble" => (3, 4),
            "hop" | "cumulate" => (4, 5),
            _ => (3, usize::MAX),
        };
        if args.len() < min_args || args.len() > max_args {
            return Err(sql_error(
                sqlstate::UNDEFINED_FUNCTION,
                format!("wrong number of arguments; use {usage}"),
            ));
        }
        // The source: a table, view or source name.
        let source_name = match args[0] {
            ast::Expr::Identifier(i) => ast::ObjectName::from(vec![i.clone()]),
            ast::Expr::CompoundIdentifier(parts) => ast::ObjectName::from(parts.clone()),
            other => {
                return Err(sql_error(
                    sqlstate::SYNTAX_ERROR,
                    format!("the first argument of {usage} must name a table or source, not {other}"),
                ))
            }
        };
        let reference = context.object_name_to_table_reference(source_name)?;
        let table = match context.context_provider().get_table_source(reference.clone()) {
            Ok(table) => table,
            Err(_) => match (self.resolve)(&reference) {
                Some(table) => table,
                None => {
                    return Err(sql_error(
                        sqlstate::UNDEFINED_TABLE,
                        format!("relation \"{reference}\" does not exist (the first argument of {usage})"),
                    ))
                }
            },
        };
        let input = LogicalPlanBuilder::scan(reference, table, None)?.build()?;
        let column = |expr: &ast::Expr, what: &str| -> DfResult<usize> {
            let ast::Expr::Identifier(ident) = expr else {
                return Err(sql_error(
                    sqlstate::SYNTAX_ERROR,
                    format!("the {what} argument of {usage} must be a column name, not {expr}"),
                ));
            };
            let name =
                if ident.quote_style.is_some() { ident.value.clone() } else { ident.value.to_lowercase() };
            match input.schema().fields().iter().position(|f| f.name() == &name) {
                Some(i) => Ok(i),
                None => Err(sql_error(
                    sqlstate::UNDEFINED_COLUMN,
                    format!("column \"{name}\" (the {what} argument of {usage}) does not exist"),
                )),
            }
        };
        let time_column = column(args[1], "time column")?;
        let time_type = input.schema().field(time_column).data_type().clone();
        if !matches!(time_type, arrow::datatypes::DataType::Timestamp(_, _)) {
            return Err(sql_error(
                sqlstate::DATATYPE_MISMATCH,
                format!(
                    "the time column of {usage} must be a timestamp; column {} is {time_type}",
                    input.schema().field(time_column).name()
                ),
            ));
        }
        let mut interval = |expr: &ast::Expr, what: &str| -> DfResult<i64> {
            let planned = context.sql_to_expr(expr.clone(), &DFSchema::empty())?;
            let us = interval_micros(&planned).ok_or_else(|| {
                sql_error(
                    sqlstate::DATATYPE_MISMATCH,
                    format!(
                        "the {what} of {usage} must be an interval such as INTERVAL '10' SECOND, not {expr}"
                    ),
                )
            })?;
            if what != "offset" && us <= 0 {
                return Err(sql_error(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    format!("the {what} of {usage} must be positive"),
                ));
            }
            Ok(us)
        };
        let (kind, keys) = match function.as_str() {
            "tumble" => {
                let size = interval(args[2], "size")?;
                let offset = args.get(3).map(|a| interval(a, "offset")).transpose()?.unwrap_or(0);
                (WindowKind::Tumble { size, offset }, vec![])
            }
            "hop" => {
                let slide = interval(args[2], "slide")?;
                let size = interval(args[3], "size")?;
                let offset = args.get(4).map(|a| interval(a, "offset")).transpose()?.unwrap_or(0);
                if size % slide != 0 {
                    return Err(sql_error(
                        sqlstate::INVALID_PARAMETER_VALUE,
                        format!("the size of {usage} must be a multiple of its slide"),
                    ));
                }
                (WindowKind::Hop { slide, size, offset }, vec![])
            }
            "cumulate" => {
                let step = interval(args[2], "step")?;
                let size = interval(args[3], "size")?;
                let offset = args.get(4).map(|a| interval(a, "offset")).transpose()?.unwrap_or(0);
                if size % step != 0 {
                    return Err(sql_error(
                        sqlstate::INVALID_PARAMETER_VALUE,
                        format!("the size of {usage} must be a multiple of its step"),
                    ));
                }
                (WindowKind::Cumulate { step, size, offset }, vec![])
            }
            _ => {
                let gap = interval(args[2], "gap")?;
                let keys = args[3..].iter().map(|a| column(a, "key")).collect::<DfResult<Vec<_>>>()?;
                (WindowKind::Session { gap }, keys)
            }
        };
        let node = WindowTvf::try_new(input, kind, time_column, keys)?;
        let plan = LogicalPlan::Extension(Extension { node: Arc::new(node) });
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(plan, alias.clone()))))
    }
}

/// An error with its SQLSTATE, carried through DataFusion to the client.
fn sql_error(code: &'static str, message: String) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::External(Box::new(SqlError::new(code, message)))
}

/// An interval literal in microseconds (no months: a month has no fixed length).
fn interval_micros(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::Literal(ScalarValue::IntervalMonthDayNano(Some(v)), _) if v.months == 0 => {
            Some(i64::from(v.days) * 86_400_000_000 + v.nanoseconds / 1000)
        }
        Expr::Literal(ScalarValue::IntervalDayTime(Some(v)), _) => {
            Some(i64::from(v.days) * 86_400_000_000 + i64::from(v.milliseconds) * 1000)
        }
        Expr::Literal(ScalarValue::IntervalYearMonth(_), _) => None,
        Expr::Cast(cast) => interval_micros(&cast.expr),
        _ => None,
    }
}
