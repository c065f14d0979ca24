//! Lowering a temporal (lookup) join, `s JOIN t FOR SYSTEM_TIME AS OF PROCTIME() ON s.k = t.pk`,
//! into a `LookupJoin` vertex.
//!
//! `FOR SYSTEM_TIME AS OF s.proc_time` means the same when `proc_time` is the processing-time
//! column of source `s` (`proc_time AS PROCTIME()`, Flink's processing-time attribute),
//! read directly or through subqueries that pass it on unchanged: the lookup does not read
//! the column's value, it reads the table as it is when the row is processed. `AS OF` any
//! other column would be an event-time versioned join (the table as it was at the row's
//! time), which needs the table's history: Weir keeps only its current version.
//!
//! As in Flink and RisingWave, each row of the stream `s` is joined with the row of table `t`
//! its key finds when the row is processed; nothing of `s` is kept, and later changes to `t`
//! do not touch rows already emitted. So:
//!
//! * `t` must be a table with a primary key, and the `ON` equalities must cover all of it:
//!   a lookup finds at most one row, by key, in the table store;
//! * `s` must be append-only (a retraction would look up a newer version of `t` than its
//!   insert did, and take back a row that was never emitted);
//! * the output is append-only, keyed like `s`, and keeps `s`'s watermark: each row of `s`
//!   yields at most one row (`LEFT JOIN`: exactly one), at once.
//!
//! The table side's own filters and projections (DataFusion pushes `WHERE t.x = ...` down
//! to it) are lowered as usual onto a vertex that is then taken apart: its chain runs on
//! each looked-up row instead.

use datafusion::common::TableReference;
use datafusion::logical_expr::{Expr, Join, JoinType, LogicalPlan};
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, ObjectNamePart, Query, TableFactor, TableVersion, Visit, Visitor,
};
use weir_plan::job_graph::{Edge, LookupJoinSpec, OperatorSpec, Partitioning, SourceSpec, StreamProperties};

use super::{expr_sql_mapped, fields_of, Lowering, StreamCatalog, StreamInput, WithChain};
use crate::create_table::normalize_ident;
use crate::error::{sqlstate, SqlError, SqlResult};
use crate::stream_ddl::is_proctime_call;

/// A table read `FOR SYSTEM_TIME AS OF PROCTIME()` (or a processing-time column), by its
/// name and the alias it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemporalTable {
    pub table: String,
    pub alias: Option<String>,
    /// `AS OF s.proc_time`: the column named (qualifier parts then name, normalized), which
    /// must turn out to be a source's processing-time column; `None` for `AS OF PROCTIME()`.
    pub as_of_column: Option<Vec<String>>,
}

/// The tables `query` reads `FOR SYSTEM_TIME AS OF`; an error for a version Weir cannot
/// maintain (anything but the processing time).
pub fn temporal_tables(query: &Query) -> SqlResult<Vec<TemporalTable>> {
    struct Collect(Vec<SqlResult<TemporalTable>>);
    impl Visitor for Collect {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> std::ops::ControlFlow<()> {
            if let TableFactor::Table { name, alias, version: Some(version), .. } = factor {
                let table = name.0.last().and_then(ObjectNamePart::as_ident).map(normalize_ident);
                let alias = alias.as_ref().map(|a| normalize_ident(&a.name));
                self.0.push(check_version(version).and_then(|as_of_column| {
                    let table = table
                        .ok_or_else(|| SqlError::unsupported("FOR SYSTEM_TIME AS OF on this relation"))?;
                    Ok(TemporalTable { table, alias, as_of_column })
                }));
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let mut collect = Collect(Vec::new());
    let _ = query.visit(&mut collect);
    collect.0.into_iter().collect()
}

/// Only the processing time is a version a view can maintain: `AS OF PROCTIME()`, or
/// `AS OF` a column (returned, to be checked against the plan for a processing-time column).
fn check_version(version: &TableVersion) -> SqlResult<Option<Vec<String>>> {
    let TableVersion::ForSystemTimeAsOf(expr) = version else {
        return Err(SqlError::unsupported(format!("{version}")));
    };
    match expr {
        expr if is_proctime_call(expr) => Ok(None),
        SqlExpr::Identifier(ident) => Ok(Some(vec![normalize_ident(ident)])),
        SqlExpr::CompoundIdentifier(parts) => Ok(Some(parts.iter().map(normalize_ident).collect())),
        other => Err(SqlError::unsupported(format!(
            "FOR SYSTEM_TIME AS OF {other} (reading a table's past)"
        ))
        .with_hint(
            "Weir keeps only a table's current version: write FOR SYSTEM_TIME AS OF PROCTIME(), or AS OF \
                 a source's processing-time column (proc_time AS PROCTIME()).",
        )),
    }
}

/// Checks that every `FOR SYSTEM_TIME AS OF column` of `plan` names a processing-time column
/// of the join's left side. `plan` must be the plan before optimization: the optimizer drops
/// columns the query does not otherwise read, and the `AS OF` column is often one of them.
pub fn check_temporal_versions(
    plan: &LogicalPlan,
    temporal: &[TemporalTable],
    catalog: &dyn StreamCatalog,
) -> SqlResult<()> {
    if temporal.iter().all(|t| t.as_of_column.is_none()) {
        return Ok(());
    }
    if let LogicalPlan::Join(join) = plan {
        if let Some((_, TemporalTable { as_of_column: Some(column), .. })) =
            versioned_scan(&join.right, temporal)
        {
            check_proctime_column(&join.left, column, catalog)?;
        }
    }
    plan.inputs().into_iter().try_for_each(|input| check_temporal_versions(input, temporal, catalog))
}

/// Checks that `column` (as written after `AS OF`) is, in the stream side `plan`, a source's
/// processing-time column passed on unchanged.
fn check_proctime_column(
    plan: &LogicalPlan,
    column: &[String],
    catalog: &dyn StreamCatalog,
) -> SqlResult<()> {
    let written = column.join(".");
    let (qualifier, name) = match column {
        [name] => (None, name),
        [qualifier @ .., name] => (Some(TableReference::from(qualifier.join("."))), name),
        [] => return Err(SqlError::internal("an empty FOR SYSTEM_TIME AS OF column")),
    };
    let index = plan.schema().index_of_column_by_name(qualifier.as_ref(), name).ok_or_else(|| {
        SqlError::new(
            sqlstate::UNDEFINED_COLUMN,
            format!("column {written} named in FOR SYSTEM_TIME AS OF does not exist on the join's left side"),
        )
    })?;
    let is_proctime = column_origin(plan, index).is_some_and(|(table, column)| {
        matches!(catalog.resolve(&table), Some(StreamInput::Source { proctime_column: Some(p), .. }) if p == column)
    });
    if is_proctime {
        return Ok(());
    }
    Err(SqlError::new(
        sqlstate::FEATURE_NOT_SUPPORTED,
        format!(
            "FOR SYSTEM_TIME AS OF {written}: \"{name}\" is not a processing-time column, and joining a table's \
             version as of an event time (an event-time temporal join) is not supported"
        ),
    )
    .with_hint(
        "Weir keeps only each table's current version, so it joins each row with the table as it is when the \
         row is processed. Write FOR SYSTEM_TIME AS OF PROCTIME(), or declare proc_time AS PROCTIME() in the \
         source's column list and write FOR SYSTEM_TIME AS OF s.proc_time.",
    ))
}

/// The relation and column that column `index` of `plan`'s output is an unchanged copy of,
/// through aliases, filters and projections; `None` for a computed column.
fn column_origin(plan: &LogicalPlan, index: usize) -> Option<(TableReference, usize)> {
    match plan {
        LogicalPlan::SubqueryAlias(a) => column_origin(&a.input, index),
        LogicalPlan::Filter(f) => column_origin(&f.input, index),
        LogicalPlan::Projection(p) => {
            let mut expr = p.expr.get(index)?;
            while let Expr::Alias(alias) = expr {
                expr = &alias.expr;
            }
            let Expr::Column(column) = expr else { return None };
            column_origin(&p.input, p.input.schema().index_of_column(column).ok()?)
        }
        LogicalPlan::TableScan(scan) => {
            let column = match &scan.projection {
                Some(projection) => *projection.get(index)?,
                None => index,
            };
            Some((scan.table_name.clone(), column))
        }
        _ => None,
    }
}

/// The scan of a temporal table under `plan` (through aliases, projections and filters),
/// and the alias it is read under.
fn versioned_scan<'p, 't>(
    plan: &'p LogicalPlan,
    temporal: &'t [TemporalTable],
) -> Option<(&'p datafusion::logical_expr::TableScan, &'t TemporalTable)> {
    let mut alias: Option<&str> = None;
    let mut node = plan;
    loop {
        match node {
            LogicalPlan::SubqueryAlias(a) => {
                alias.get_or_insert(a.alias.table());
                node = &a.input;
            }
            LogicalPlan::Projection(p) => node = &p.input,
            LogicalPlan::Filter(f) => node = &f.input,
            LogicalPlan::TableScan(scan) => {
                let table = scan.table_name.table();
                let found = temporal.iter().find(|t| match (&t.alias, alias) {
                    (Some(wanted), Some(alias)) => wanted == alias,
                    (None, alias) => t.table == table && alias.is_none_or(|a| a == table),
                    (Some(_), None) => false,
                });
                return found.map(|t| (scan, t));
            }
            _ => return None,
        }
    }
}

impl Lowering<'_> {
    /// Lowers `join` as a temporal join if its right side is a table read
    /// `FOR SYSTEM_TIME AS OF`; `None` if neither side is.
    pub(super) fn try_lower_temporal_join(&mut self, join: &Join) -> SqlResult<Option<usize>> {
        if versioned_scan(&join.left, &self.temporal).is_some() {
            return Err(misplaced());
        }
        let Some((scan, _)) = versioned_scan(&join.right, &self.temporal) else { return Ok(None) };
        let left_outer = match join.join_type {
            JoinType::Inner => false,
            JoinType::Left => true,
            _ => return Err(misplaced()),
        };
        let (table_id, table_name, primary_key) = match self.catalog.resolve(&scan.table_name) {
            Some(StreamInput::Table { id, name, primary_key, .. }) => (id, name, primary_key),
            _ => return Err(not_a_table(&scan.table_name)),
        };
        if primary_key.is_empty() {
            return Err(SqlError::new(
                sqlstate::INVALID_COLUMN_REFERENCE,
                format!("table \"{table_name}\" read FOR SYSTEM_TIME AS OF has no primary key"),
            )
            .with_hint(
                "A temporal join looks each row up by the table's primary key, and finds at most one row. \
                 Declare a PRIMARY KEY on the table, or use a regular join.",
            ));
        }
        let stream = self.lower(&join.left)?;
        if !self.vertices[stream].output.append_only {
            return Err(SqlError::unsupported(
                "a temporal join (FOR SYSTEM_TIME AS OF) of a stream that updates or deletes rows",
            )
            .with_hint(
                "A temporal join keeps nothing of its left side, so it cannot take a joined row back. Its left \
                 side must be append-only: a source, a table with WATERMARK FOR, or an EMIT ON WINDOW CLOSE \
                 aggregate. Use a regular join otherwise.",
            ));
        }

        // The table side, lowered as usual onto a vertex that is then taken apart.
        let table_side = self.lower(&join.right)?;
        if table_side + 1 != self.vertices.len() {
            return Err(SqlError::internal(
                "the table side of a temporal join planned into several vertices",
            ));
        }
        let table_side = self.vertices.pop().ok_or_else(|| SqlError::internal("no table-side vertex"))?;
        let Some(SourceSpec::Table { schema: table_fields, .. }) = &table_side.source else {
            return Err(not_a_table(&scan.table_name));
        };
        let table_chain = table_side.chain.clone();
        let mut lookup_fields = table_fields.clone();
        for op in &table_chain {
            match op {
                OperatorSpec::Project { output, .. } => lookup_fields = output.clone(),
                OperatorSpec::Filter { .. } => {}
                _ => {
                    return Err(SqlError::internal(format!(
                        "{} on the table side of a temporal join",
                        op.name()
                    )))
                }
            }
        }

        // Each primary-key column must be equal to a stream expression.
        let mut key_exprs: Vec<Option<Expr>> = vec![None; primary_key.len()];
        for (l, r) in &join.on {
            let Some(column) = table_column(r, join.right.schema(), &table_chain) else { continue };
            if let Some(k) = primary_key.iter().position(|p| *p == column) {
                key_exprs[k].get_or_insert_with(|| l.clone());
            }
        }
        let missing: Vec<&str> = primary_key
            .iter()
            .zip(&key_exprs)
            .filter(|(_, e)| e.is_none())
            .map(|(p, _)| table_fields[*p].name.as_str())
            .collect();
        if !missing.is_empty() {
            let key: Vec<&str> = primary_key.iter().map(|p| table_fields[*p].name.as_str()).collect();
            return Err(SqlError::new(
                sqlstate::INVALID_COLUMN_REFERENCE,
                format!(
                    "the ON condition of a temporal join with \"{table_name}\" does not cover its primary key ({}): \
                     no equality for {}",
                    key.join(", "),
                    missing.join(", ")
                ),
            )
            .with_hint(
                "A temporal join looks each row up by the table's primary key: add an equality \
                 ON stream_column = table.key_column for every primary-key column.",
            ));
        }
        let key_exprs: Vec<Expr> = key_exprs.into_iter().flatten().collect();
        let (stream_fields, key_columns) = self.with_key_columns(stream, join.left.schema(), &key_exprs)?;

        // The whole condition, equalities included, over the stream's columns then the
        // table side's.
        let combined = join.left.schema().join(join.right.schema())?;
        let left_width = join.left.schema().fields().len();
        let stream_width = stream_fields.len();
        let position = |i: usize| if i < left_width { i } else { stream_width + (i - left_width) };
        let conjuncts: Vec<Expr> =
            join.on.iter().map(|(l, r)| l.clone().eq(r.clone())).chain(join.filter.iter().cloned()).collect();
        let condition = conjuncts
            .into_iter()
            .reduce(Expr::and)
            .map(|c| expr_sql_mapped(&c, &combined, &position))
            .transpose()?;

        let mut properties: StreamProperties = self.vertices[stream].output.clone();
        properties.append_only = true;
        let spec = LookupJoinSpec {
            left_outer,
            table_id,
            table_name,
            stream_fields: stream_fields.clone(),
            key_columns: key_columns.clone(),
            table_chain,
            lookup_fields: lookup_fields.clone(),
            condition,
        };
        // Any partitioning would do (no state); by key spreads the lookups.
        let edge = Edge { from: stream, partitioning: Partitioning::Hash(key_columns) };
        let vertex = self
            .add_vertex(self.parallelism, None, vec![edge])
            .with_chain(self, OperatorSpec::LookupJoin(spec));
        self.vertices[vertex].output = properties;
        self.temporal_joins += 1;

        // Back to the join's columns (dropping appended key columns).
        if stream_width != left_width {
            let columns = (0..left_width).chain(stream_width..stream_width + lookup_fields.len());
            let exprs = columns.map(|c| format!("_c{c}")).collect();
            self.push_project(vertex, exprs, fields_of(join.schema.as_arrow()));
        }
        Ok(Some(vertex))
    }
}

/// The table column `expr` (over the table side's output `schema`) reads, through the
/// table side's projections; `None` unless it is a plain column (or a cast of one).
fn table_column(expr: &Expr, schema: &datafusion::common::DFSchema, chain: &[OperatorSpec]) -> Option<usize> {
    let mut expr = expr;
    while let Expr::Cast(cast) = expr {
        expr = &cast.expr;
    }
    let Expr::Column(column) = expr else { return None };
    let mut index = schema.index_of_column(column).ok()?;
    for op in chain.iter().rev() {
        if let OperatorSpec::Project { exprs, .. } = op {
            index = exprs.get(index)?.strip_prefix("_c")?.parse().ok()?;
        }
    }
    Some(index)
}

pub(super) fn misplaced() -> SqlError {
    SqlError::unsupported("FOR SYSTEM_TIME AS OF other than on the right side of JOIN or LEFT JOIN")
        .with_hint(
            "A temporal join looks each row of its left side up in the table on its right: write \
         stream JOIN table FOR SYSTEM_TIME AS OF PROCTIME() ON ... (or LEFT JOIN).",
        )
}

fn not_a_table(name: &TableReference) -> SqlError {
    SqlError::new(
        sqlstate::WRONG_OBJECT_TYPE,
        format!("\"{name}\" read FOR SYSTEM_TIME AS OF is not a table"),
    )
    .with_hint("A temporal join looks rows up in a table by its primary key; views and sources have none.")
}
