//! Column defaults in INSERT, as Postgres has them: `INSERT INTO t VALUES (1, 2)` into a
//! wider table, a column list that leaves columns out, `DEFAULT` in a `VALUES` row and
//! `INSERT ... DEFAULT VALUES` all write each missing column's `DEFAULT` expression (NULL
//! without one).
//!
//! A `VALUES` insert is rewritten before DataFusion plans it: every row gets every column
//! of the table, in order. For `INSERT ... (columns) SELECT`, DataFusion asks the table
//! provider for the defaults of the columns left out (`StoredTable::get_column_default`).

use weir_plan::catalog::TableDef;
use weir_planner::sqlparser::ast::{Expr, Ident, Insert, ObjectName, Parens, Query, SetExpr, Values};
use weir_planner::sqlparser::dialect::PostgreSqlDialect;
use weir_planner::sqlparser::parser::Parser;
use weir_planner::{normalize_ident, sqlstate, SqlError, SqlResult};

/// Rewrites `insert` into `table` so that its `VALUES` rows name every column.
pub fn fill_defaults(insert: &mut Insert, table: &TableDef) -> SqlResult<()> {
    let defaults = table
        .columns
        .iter()
        .map(|c| match &c.default {
            Some(sql) => parse_default(sql),
            None => Ok(Expr::Value(weir_planner::sqlparser::ast::Value::Null.into())),
        })
        .collect::<SqlResult<Vec<Expr>>>()?;
    let all_columns: Vec<ObjectName> = table
        .columns
        .iter()
        .map(|c| ObjectName::from(vec![Ident::with_quote('"', c.name.clone())]))
        .collect();
    let Some(source) = insert.source.as_mut() else {
        // INSERT ... DEFAULT VALUES
        insert.columns = all_columns;
        insert.source = Some(Box::new(values_query(vec![defaults])));
        return Ok(());
    };
    let SetExpr::Values(values) = source.body.as_mut() else { return Ok(()) };
    // The columns each row's values are for, by index into the table's columns.
    let targets: Vec<usize> = match insert.columns.is_empty() {
        true => {
            let width = values.rows.iter().map(|row| row.content.len()).max().unwrap_or(0);
            if width > table.columns.len() {
                return Err(SqlError::new(
                    sqlstate::SYNTAX_ERROR,
                    "INSERT has more expressions than target columns",
                ));
            }
            (0..width).collect()
        }
        false => insert
            .columns
            .iter()
            .map(|column| {
                let name =
                    column.0.last().and_then(|part| part.as_ident()).map(normalize_ident).unwrap_or_default();
                table.columns.iter().position(|c| c.name == name).ok_or_else(|| {
                    SqlError::new(
                        sqlstate::UNDEFINED_COLUMN,
                        format!("column \"{name}\" of relation \"{}\" does not exist", table.name),
                    )
                })
            })
            .collect::<SqlResult<_>>()?,
    };
    for row in values.rows.iter_mut() {
        let row = &mut row.content;
        if row.len() != targets.len() {
            return Err(SqlError::new(sqlstate::SYNTAX_ERROR, "VALUES lists must all be the same length"));
        }
        let mut full = defaults.clone();
        for (value, &column) in row.drain(..).zip(&targets) {
            full[column] = match is_default_keyword(&value) {
                true => defaults[column].clone(),
                false => value,
            };
        }
        *row = full;
    }
    insert.columns = all_columns;
    Ok(())
}

/// `DEFAULT` in a VALUES row (sqlparser reads it as a column named default).
fn is_default_keyword(expr: &Expr) -> bool {
    matches!(expr, Expr::Identifier(ident) if ident.quote_style.is_none() && ident.value.eq_ignore_ascii_case("default"))
}

/// A column's stored `DEFAULT` expression.
pub fn parse_default(sql: &str) -> SqlResult<Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| SqlError::internal(format!("the stored default {sql} does not parse: {e}")))
}

/// A query that is only `VALUES rows`.
fn values_query(rows: Vec<Vec<Expr>>) -> Query {
    Query {
        with: None,
        body: Box::new(SetExpr::Values(Values {
            explicit_row: false,
            value_keyword: false,
            rows: rows.into_iter().map(Parens::with_empty_span).collect(),
        })),
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks: vec![],
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators: vec![],
    }
}
