//! Rewrites that let DataFusion run the SQL Postgres clients send about the catalog.
//!
//! psql and drivers write `c.relname OPERATOR(pg_catalog.~) '^(t)$' COLLATE pg_catalog.default`,
//! `pg_catalog.format_type(...)`, `c.oid::pg_catalog.regclass` and similar. These are
//! rewritten, meaning-preserving, into forms DataFusion understands: the operator becomes the
//! regex match it names, collations are dropped (Weir compares strings bytewise, like the `C`
//! collation), the `pg_catalog.` qualifier is dropped from functions and types, and casts to
//! the `reg*` types become calls to `weir_regclass()` / `weir_regtype()` / ... functions the
//! server registers (they translate between oids and names). Bare `current_schema` and
//! friends become the function calls they are in Postgres, as `@ x` becomes `abs(x)`, and
//! unaliased select-list expressions that DataFusion would name identically get distinct
//! names (the outermost select list is named as Postgres names it first, see
//! [`column_names`]).
//!
//! Correlated subqueries in catalog queries are reshaped in [`catalog_subqueries`].

mod catalog_subqueries;
mod column_names;
mod numeric_literals;

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CharacterLength, DataType, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentList, FunctionArguments, Ident, ObjectName, ObjectNamePart, Query, SelectItem, SetExpr,
    Statement, TableAliasColumnDef, TableFactor, UnaryOperator, VisitMut, VisitorMut,
};

pub use catalog_subqueries::ALWAYS_EMPTY_CATALOG_TABLES;
pub use column_names::{figure_column_name, name_result_columns, result_column_name};

/// Applies every compatibility rewrite to `statement` in place.
pub fn rewrite_for_datafusion(statement: &mut Statement) {
    let _ = statement.visit(&mut PgCompat);
}

struct PgCompat;

impl VisitorMut for PgCompat {
    type Break = ();

    /// `generate_series` as Postgres has it. Its one column is named by the function's
    /// alias: `FROM generate_series(1, 3) AS g` has the column `g`. Its integer literals
    /// that fit 32 bits are `integer` (DataFusion folds the arguments to constants before
    /// the function sees them, where a `bigint` literal and one cast to `bigint` look
    /// alike), so the series is `integer` unless an argument is a `bigint`.
    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, args: Some(args), alias, .. } = factor {
            let series = name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case("generate_series"));
            if !series {
                return ControlFlow::Continue(());
            }
            if let Some(alias) = alias.as_mut().filter(|a| a.columns.is_empty()) {
                alias.columns.push(TableAliasColumnDef { name: alias.name.clone(), data_type: None });
            }
            for arg in &mut args.args {
                if let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = arg {
                    if let Some(read) = numeric_text(e) {
                        *e = read;
                    } else if integer_literal(e) {
                        let literal =
                            std::mem::replace(e, Expr::value(datafusion::sql::sqlparser::ast::Value::Null));
                        *e = Expr::Cast {
                            kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
                            expr: Box::new(literal),
                            data_type: DataType::Int(None),
                            array: false,
                            format: None,
                        };
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::Value(v) => {
                if let datafusion::sql::sqlparser::ast::Value::Number(digits, _) = &mut v.value {
                    if let Some(plain) = numeric_literals::plain_digits(digits) {
                        *digits = plain;
                    }
                }
            }
            Expr::BinaryOp { op: op @ BinaryOperator::PGCustomBinaryOperator(_), .. } => {
                if let BinaryOperator::PGCustomBinaryOperator(parts) = op {
                    if let Some(mapped) = parts.last().and_then(|p| builtin_operator(p)) {
                        *op = mapped;
                    }
                }
            }
            Expr::Collate { expr: inner, .. } => {
                *expr = std::mem::replace(
                    inner.as_mut(),
                    Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
                );
            }
            Expr::Cast { expr: inner, data_type, .. } => {
                // `timestamp` is microseconds, as Weir stores it (DataFusion's default is
                // nanoseconds, which end in 2262; see `functions::timestamp_range`).
                microsecond_timestamp(data_type);
                if let Some(function) = reg_cast_function(data_type) {
                    let arg = std::mem::replace(
                        inner.as_mut(),
                        Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
                    );
                    *expr = call(function, vec![arg]);
                } else if matches!(data_type, DataType::Array(_)) {
                    // `x::int2[]` on catalog arrays: the catalog already stores typed lists.
                    *expr = std::mem::replace(
                        inner.as_mut(),
                        Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
                    );
                } else if let Some(length) = varchar_length(data_type) {
                    // An explicit cast to varchar(n) cuts the text to n characters, as in
                    // Postgres ('abcdef'::varchar(3) is 'abc'); storing a longer value in a
                    // varchar(n) column is an error instead (the storage layer's check).
                    let arg = std::mem::replace(
                        inner.as_mut(),
                        Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
                    );
                    let text = Expr::Cast {
                        kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
                        expr: Box::new(arg),
                        data_type: DataType::Text,
                        array: false,
                        format: None,
                    };
                    let n = Expr::value(datafusion::sql::sqlparser::ast::Value::Number(
                        length.to_string(),
                        false,
                    ));
                    *expr = call("left", vec![text, n]);
                } else if let Some(simple) = simplify_type(data_type) {
                    *data_type = simple;
                }
            }
            Expr::Function(function) => {
                strip_pg_catalog(&mut function.name);
                catalog_subqueries::rewrite_array_subquery(expr);
            }
            Expr::Subquery(_) => catalog_subqueries::normalize_scalar_subquery(expr),
            Expr::TypedString(typed) => microsecond_timestamp(&mut typed.data_type),
            // A negated number is a number, as Postgres' parser folds it: `-(-2147483648)`
            // is the bigint 2147483648, `-(2147483648)` the integer -2147483648.
            Expr::UnaryOp { op: UnaryOperator::Minus, expr: operand } => {
                let mut inner = operand.as_mut();
                while let Expr::Nested(nested) = inner {
                    inner = nested.as_mut();
                }
                match inner {
                    Expr::Value(v)
                        if matches!(v.value, datafusion::sql::sqlparser::ast::Value::Number(..)) =>
                    {
                        let number = inner.clone();
                        **operand = number;
                    }
                    Expr::UnaryOp { op: UnaryOperator::Minus, expr: number } if matches!(number.as_ref(), Expr::Value(v) if matches!(v.value, datafusion::sql::sqlparser::ast::Value::Number(..))) =>
                    {
                        *expr = number.as_ref().clone();
                    }
                    _ => {}
                }
            }
            // Postgres' prefix `@` is `abs` (DataFusion has no such operator).
            Expr::UnaryOp { op: UnaryOperator::PGAbs, expr: operand } => {
                let operand = std::mem::replace(
                    operand.as_mut(),
                    Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
                );
                *expr = call("abs", vec![operand]);
            }
            Expr::Identifier(ident) if ident.quote_style.is_none() => {
                let lower = ident.value.to_ascii_lowercase();
                if SQL_VALUE_FUNCTIONS.contains(&lower.as_str()) {
                    *expr = call(&lower, vec![]);
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        catalog_subqueries::rewrite_select_list_exists(&mut query.body);
        catalog_subqueries::prune_empty_catalog_selects(&mut query.body);
        dedupe_projection_names(&mut query.body);
        ControlFlow::Continue(())
    }
}

/// An approximation of the name DataFusion gives an expression: casts are transparent.
fn datafusion_name(expr: &Expr) -> String {
    let mut expr = expr.clone();
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(&mut expr, |e| {
        if let Expr::Cast { expr: inner, .. } = e {
            *e = inner.as_ref().clone();
        }
        ControlFlow::<()>::Continue(())
    });
    expr.to_string()
}

/// Key words Postgres evaluates as functions without parentheses.
const SQL_VALUE_FUNCTIONS: &[&str] =
    &["current_schema", "current_catalog", "current_role", "current_user", "session_user", "user"];

/// DataFusion refuses a select list with two expressions of the same name (psql sends
/// `SELECT pubname, NULL, NULL ...`); Postgres names both `?column?`. Unaliased duplicates
/// get Postgres' name, suffixed `_1`, `_2`, ... after the first.
fn dedupe_projection_names(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            let names: Vec<Option<String>> = select
                .projection
                .iter()
                .map(|item| match item {
                    SelectItem::UnnamedExpr(e) => Some(datafusion_name(e)),
                    _ => None,
                })
                .collect();
            for (i, item) in select.projection.iter_mut().enumerate() {
                let Some(name) = &names[i] else { continue };
                let same: Vec<usize> = names
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| n.as_ref() == Some(name))
                    .map(|(j, _)| j)
                    .collect();
                if same.len() < 2 {
                    continue;
                }
                let rank = same.iter().position(|&j| j == i).unwrap_or(0);
                if let SelectItem::UnnamedExpr(e) = item {
                    let base = catalog_subqueries::default_column_name(e);
                    let alias = if rank == 0 { base } else { format!("{base}_{rank}") };
                    *item =
                        SelectItem::ExprWithAlias { expr: e.clone(), alias: Ident::with_quote('"', alias) };
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            dedupe_projection_names(left);
            dedupe_projection_names(right);
        }
        SetExpr::Query(query) => dedupe_projection_names(&mut query.body),
        _ => {}
    }
}

fn builtin_operator(op: &str) -> Option<BinaryOperator> {
    Some(match op {
        "~" => BinaryOperator::PGRegexMatch,
        "~*" => BinaryOperator::PGRegexIMatch,
        "!~" => BinaryOperator::PGRegexNotMatch,
        "!~*" => BinaryOperator::PGRegexNotIMatch,
        "=" => BinaryOperator::Eq,
        "<>" | "!=" => BinaryOperator::NotEq,
        "<" => BinaryOperator::Lt,
        "<=" => BinaryOperator::LtEq,
        ">" => BinaryOperator::Gt,
        ">=" => BinaryOperator::GtEq,
        "~~" => return None,
        _ => return None,
    })
}

fn type_name(data_type: &DataType) -> Option<String> {
    match data_type {
        DataType::Regclass => Some("regclass".into()),
        DataType::Custom(name, modifiers) if modifiers.is_empty() => {
            name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_lowercase())
        }
        _ => None,
    }
}

fn reg_cast_function(data_type: &DataType) -> Option<&'static str> {
    Some(match type_name(data_type)?.as_str() {
        "regclass" => "weir_regclass",
        "regtype" => "weir_regtype",
        "regnamespace" => "weir_regnamespace",
        "regproc" | "regprocedure" => "weir_regproc",
        "regrole" => "weir_regrole",
        _ => return None,
    })
}

/// `pg_catalog.text`, `name`, `oid`, `"char"` ... to the types DataFusion knows.
/// `n` of `varchar(n)` / `character varying(n)`.
fn varchar_length(data_type: &DataType) -> Option<u64> {
    match data_type {
        DataType::Varchar(Some(CharacterLength::IntegerLength { length, .. }))
        | DataType::CharacterVarying(Some(CharacterLength::IntegerLength { length, .. })) => Some(*length),
        _ => None,
    }
}

fn simplify_type(data_type: &DataType) -> Option<DataType> {
    let DataType::Custom(..) = data_type else { return None };
    Some(match type_name(data_type)?.as_str() {
        "text" | "name" | "char" | "bpchar" | "varchar" => DataType::Text,
        "oid" | "int8" | "xid" => DataType::BigInt(None),
        "int4" => DataType::Int(None),
        "int2" => DataType::SmallInt(None),
        "bool" => DataType::Boolean,
        "float8" => DataType::DoublePrecision,
        "float4" => DataType::Real,
        _ => return None,
    })
}

fn strip_pg_catalog(name: &mut ObjectName) {
    if name.0.len() == 2 {
        let is_pg_catalog = name.0[0].as_ident().is_some_and(|i| i.value.eq_ignore_ascii_case("pg_catalog"));
        if is_pg_catalog {
            name.0.remove(0);
        }
    }
}

/// A whole-number literal Postgres types `integer` (it fits 32 bits), possibly negated.
fn integer_literal(e: &Expr) -> bool {
    let number = |e: &Expr| match e {
        Expr::Value(v) => match &v.value {
            datafusion::sql::sqlparser::ast::Value::Number(digits, _) => Some(digits.clone()),
            _ => None,
        },
        _ => None,
    };
    let text = match e {
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => number(expr).map(|d| format!("-{d}")),
        other => number(other),
    };
    text.is_some_and(|t| t.parse::<i32>().is_ok())
}

/// A string cast to `numeric` (`'NaN'::numeric`) as the call of Weir's reader of numeric
/// text, `text_to_numeric(text, precision, scale)`, which the analyzer makes of such a cast
/// elsewhere: the arguments of `generate_series` are folded to constants before any
/// analyzer rule runs, with Arrow's cast, which refuses `NaN` and the infinities (`22P02`
/// where Postgres' series says `22023` `start value cannot be NaN`).
fn numeric_text(e: &Expr) -> Option<Expr> {
    use datafusion::sql::sqlparser::ast::{ExactNumberInfo, Value};
    use weir_plan::catalog::{DEFAULT_NUMERIC_PRECISION, DEFAULT_NUMERIC_SCALE};
    let Expr::Cast { expr, data_type: DataType::Numeric(info) | DataType::Decimal(info), .. } = e else {
        return None;
    };
    let Expr::Value(v) = expr.as_ref() else { return None };
    let Value::SingleQuotedString(_) = &v.value else { return None };
    let (precision, scale) = match info {
        ExactNumberInfo::None => (u64::from(DEFAULT_NUMERIC_PRECISION), i64::from(DEFAULT_NUMERIC_SCALE)),
        ExactNumberInfo::Precision(p) => (*p, 0),
        ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
    };
    let number = |n: String| Expr::value(Value::Number(n, false));
    Some(call(
        "text_to_numeric",
        vec![*expr.clone(), number(precision.to_string()), number(scale.to_string())],
    ))
}

/// `timestamp` and `timestamp(9)` (nanoseconds in DataFusion) as `timestamp(6)`.
fn microsecond_timestamp(data_type: &mut DataType) {
    if let DataType::Timestamp(precision @ (None | Some(9)), _) = data_type {
        *precision = Some(6);
    }
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args.into_iter().map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a))).collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{parse_sql, WeirStatement};

    fn rewrite(sql: &str) -> String {
        let WeirStatement::Sql(mut stmt) = parse_sql(sql).unwrap().remove(0) else { panic!("not SQL") };
        rewrite_for_datafusion(&mut stmt);
        stmt.to_string()
    }

    fn named(sql: &str) -> String {
        let WeirStatement::Sql(mut stmt) = parse_sql(sql).unwrap().remove(0) else { panic!("not SQL") };
        name_result_columns(&mut stmt);
        rewrite_for_datafusion(&mut stmt);
        stmt.to_string()
    }

    #[test]
    fn result_columns_get_postgres_names() {
        assert_eq!(
            named("SELECT customer, sum(amount), count(*)::int, 1 + 1 FROM orders GROUP BY customer"),
            "SELECT customer, sum(amount) AS \"sum\", count(*)::INT AS \"count\", 1 + 1 AS \"?column?\" FROM orders GROUP BY customer"
        );
        // Names are taken before the rewrites: a cast to regclass is named as written.
        assert_eq!(named("SELECT 'orders'::regclass"), "SELECT weir_regclass('orders') AS \"regclass\"");
    }

    #[test]
    fn psql_relation_lookup() {
        assert_eq!(
            rewrite("SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(orders)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid)"),
            "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname ~ '^(orders)$' AND pg_table_is_visible(c.oid)"
        );
    }

    #[test]
    fn reg_casts_become_functions() {
        assert_eq!(
            rewrite("SELECT c.oid::pg_catalog.regclass::pg_catalog.text, 'orders'::regclass"),
            "SELECT weir_regclass(c.oid)::TEXT, weir_regclass('orders')"
        );
    }

    #[test]
    fn duplicate_unnamed_columns_get_distinct_names() {
        assert_eq!(
            rewrite("SELECT pubname, NULL, NULL FROM pg_catalog.pg_publication"),
            "SELECT pubname, NULL AS \"?column?\", NULL AS \"?column?_1\" FROM pg_catalog.pg_publication"
        );
    }

    #[test]
    fn bare_current_schema_is_a_function_call() {
        assert_eq!(rewrite("SELECT current_schema"), "SELECT current_schema()");
    }
}
