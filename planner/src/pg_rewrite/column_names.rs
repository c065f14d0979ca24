//! The names Postgres gives a query's result columns, and the way Weir hands them to the
//! client although DataFusion wants every name in a select list unique.
//!
//! Postgres names an unaliased select-list expression by its parse tree
//! (`FigureColname`): a column by its name, a function call by the function's name
//! (`count`, `pg_typeof`; `substring`, `extract`, `btrim` for the SQL-standard forms), a
//! cast by its operand's name when that has a strong one (`a::bigint` is `a`) and else by
//! the type's internal name (`1::int` is `int4`), `CASE` as `case`, `EXISTS` as `exists`,
//! `ARRAY[...]` as `array`, a scalar subquery by its own first column, and every operator
//! and constant `?column?`. Clients show these names, and some read columns by them.
//! DataFusion names by the expression's text (`pg_typeof(Int64(1))`), so the outermost
//! select list gets aliases with Postgres' names.
//!
//! Postgres allows two result columns of one name (`SELECT pg_typeof(1), pg_typeof(2)`);
//! DataFusion refuses a projection with duplicate names. Such columns, and every
//! unaliased one beside a `*` (whose columns may have the same names), are aliased
//! `name` + [`MARK`] + position: unique for DataFusion, and [`result_column_name`] gives
//! back the name to show. The wire protocol's row description and a view's column list
//! read names through it, so the marked form never reaches a client; a view with two
//! columns of one name is then refused as Postgres refuses it (`42701`).

use datafusion::sql::sqlparser::ast::{
    CastKind, DataType, Expr, Ident, ObjectName, Query, SelectItem, SetExpr, Statement, TimezoneInfo,
    TrimWhereField,
};

/// Separates a result column's Postgres name from the position that makes it unique.
const MARK: char = '\u{1}';

/// The name a client sees for a result column DataFusion named `field_name`.
pub fn result_column_name(field_name: &str) -> &str {
    field_name.split(MARK).next().unwrap_or(field_name)
}

/// Gives the outermost select list of `statement` (a query) Postgres' column names; see
/// the module docs.
pub fn name_result_columns(statement: &mut Statement) {
    if let Statement::Query(query) = statement {
        name_columns(&mut query.body);
    }
}

fn name_columns(body: &mut SetExpr) {
    let select = match body {
        SetExpr::Select(select) => select,
        // A set operation's columns are named by its first query.
        SetExpr::SetOperation { left, .. } => return name_columns(left),
        SetExpr::Query(query) => return name_columns(&mut query.body),
        _ => return,
    };
    let wildcard = select
        .projection
        .iter()
        .any(|i| matches!(i, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)));
    let names: Vec<Option<String>> = select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) => Some(figure_column_name(e)),
            SelectItem::ExprWithAlias { alias, .. } => Some(identifier(alias)),
            _ => None,
        })
        .collect();
    for (i, item) in select.projection.iter_mut().enumerate() {
        let Some(name) = &names[i] else { continue };
        let duplicate = names[..i].iter().any(|n| n.as_ref() == Some(name));
        match item {
            // An alias is kept unless an earlier column has its name: `ORDER BY` may use it.
            SelectItem::ExprWithAlias { alias, .. } if duplicate => {
                *alias = Ident::with_quote('"', format!("{name}{MARK}{i}"));
            }
            SelectItem::UnnamedExpr(e) => {
                let alias = match (duplicate || wildcard, &*e) {
                    (true, _) => format!("{name}{MARK}{i}"),
                    // DataFusion names a column by its name already.
                    (false, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) => continue,
                    (false, _) => name.clone(),
                };
                *item = SelectItem::ExprWithAlias { expr: e.clone(), alias: Ident::with_quote('"', alias) };
            }
            _ => {}
        }
    }
}

/// Postgres' name for an unaliased select-list expression (`FigureColname`).
pub fn figure_column_name(expr: &Expr) -> String {
    match figure(expr) {
        (_, Strength::None) => "?column?".into(),
        (name, _) => name,
    }
}

/// How sure a name is: a cast takes its operand's name only when that is [`Strong`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Strength {
    None,
    /// `CASE`, or a cast named by its type.
    Weak,
    Strong,
}

fn strong(name: &str) -> (String, Strength) {
    (name.to_string(), Strength::Strong)
}

fn figure(expr: &Expr) -> (String, Strength) {
    match expr {
        Expr::Identifier(i) => (identifier(i), Strength::Strong),
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(i) => (identifier(i), Strength::Strong),
            None => none(),
        },
        Expr::Nested(inner) | Expr::Collate { expr: inner, .. } => figure(inner),
        Expr::Cast { expr: inner, data_type, kind, .. } => match figure(inner) {
            strong @ (_, Strength::Strong) => strong,
            // `x::int` is parsed as `x :: int`; the SQL-standard names are the same.
            _ if matches!(
                kind,
                CastKind::Cast | CastKind::DoubleColon | CastKind::TryCast | CastKind::SafeCast
            ) =>
            {
                (type_name(data_type), Strength::Weak)
            }
            _ => none(),
        },
        Expr::TypedString(typed) => (type_name(&typed.data_type), Strength::Weak),
        Expr::Interval(_) => ("interval".into(), Strength::Weak),
        Expr::Function(f) => match function_name(&f.name) {
            Some(name) => (name, Strength::Strong),
            None => none(),
        },
        Expr::Case { .. } => ("case".into(), Strength::Weak),
        Expr::Exists { negated: false, .. } => strong("exists"),
        Expr::Array(_) => strong("array"),
        Expr::Tuple(_) => strong("row"),
        Expr::Subquery(query) => first_column_name(query),
        Expr::Extract { .. } => strong("extract"),
        Expr::Ceil { .. } => strong("ceil"),
        Expr::Floor { .. } => strong("floor"),
        Expr::Position { .. } => strong("position"),
        Expr::Substring { .. } => strong("substring"),
        Expr::Overlay { .. } => strong("overlay"),
        Expr::AtTimeZone { .. } => strong("timezone"),
        Expr::Trim { trim_where, .. } => strong(match trim_where {
            Some(TrimWhereField::Leading) => "ltrim",
            Some(TrimWhereField::Trailing) => "rtrim",
            Some(TrimWhereField::Both) | None => "btrim",
        }),
        _ => none(),
    }
}

fn none() -> (String, Strength) {
    ("?column?".into(), Strength::None)
}

/// A scalar subquery is named by its first column (`?column?` for an unnamed constant).
fn first_column_name(query: &Query) -> (String, Strength) {
    let mut body = query.body.as_ref();
    loop {
        match body {
            SetExpr::SetOperation { left, .. } => body = left,
            SetExpr::Query(q) => body = &q.body,
            SetExpr::Select(select) => {
                return match select.projection.first() {
                    Some(SelectItem::UnnamedExpr(e)) => (figure_column_name(e), Strength::Strong),
                    Some(SelectItem::ExprWithAlias { alias, .. }) => (identifier(alias), Strength::Strong),
                    _ => none(),
                };
            }
            _ => return none(),
        }
    }
}

/// An identifier as Postgres reads it: folded to lower case unless quoted.
fn identifier(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

fn function_name(name: &ObjectName) -> Option<String> {
    name.0.last().and_then(|p| p.as_ident()).map(identifier)
}

/// A type's internal name, as Postgres names a column cast to it (`int4`, `varchar`,
/// `timestamptz`).
fn type_name(data_type: &DataType) -> String {
    use DataType as D;
    let name = match data_type {
        D::SmallInt(_) | D::Int2(_) => "int2",
        D::Int(_) | D::Integer(_) | D::Int4(_) => "int4",
        D::BigInt(_) | D::Int8(_) => "int8",
        D::Real | D::Float4 => "float4",
        D::Float(datafusion::sql::sqlparser::ast::ExactNumberInfo::Precision(p)) if *p <= 24 => "float4",
        D::Float(_) | D::Float8 | D::Double(_) | D::DoublePrecision => "float8",
        D::Numeric(_) | D::Decimal(_) | D::Dec(_) => "numeric",
        D::Bool | D::Boolean => "bool",
        D::Text => "text",
        D::Varchar(_) | D::CharacterVarying(_) | D::CharVarying(_) => "varchar",
        D::Char(_) | D::Character(_) => "bpchar",
        D::Bytea => "bytea",
        D::Date => "date",
        D::Time(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => "timetz",
        D::Time(..) => "time",
        D::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => "timestamptz",
        D::Timestamp(..) => "timestamp",
        D::Interval { .. } => "interval",
        D::JSON => "json",
        D::JSONB => "jsonb",
        D::Uuid => "uuid",
        D::Regclass => "regclass",
        D::Bit(_) => "bit",
        D::BitVarying(_) | D::VarBit(_) => "varbit",
        // `int[]` is named by its element type, as Postgres names it.
        D::Array(elem) => match elem {
            datafusion::sql::sqlparser::ast::ArrayElemTypeDef::SquareBracket(t, _)
            | datafusion::sql::sqlparser::ast::ArrayElemTypeDef::AngleBracket(t)
            | datafusion::sql::sqlparser::ast::ArrayElemTypeDef::Parenthesis(t) => return type_name(t),
            datafusion::sql::sqlparser::ast::ArrayElemTypeDef::None => "anyarray",
        },
        D::Custom(name, _) => {
            return match name.0.last().and_then(|p| p.as_ident()).map(identifier) {
                Some(n) if n == "float" => "float8".into(),
                Some(n) if n == "decimal" => "numeric".into(),
                Some(n) => n,
                None => "?column?".into(),
            }
        }
        other => return other.to_string().to_lowercase(),
    };
    name.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{parse_sql, WeirStatement};

    fn select_list_names(sql: &str) -> Vec<String> {
        let Ok(mut statements) = parse_sql(sql) else { panic!("parse {sql}") };
        let WeirStatement::Sql(mut statement) = statements.remove(0) else { panic!("not SQL") };
        name_result_columns(&mut statement);
        let Statement::Query(query) = *statement else { panic!("not a query") };
        let SetExpr::Select(select) = *query.body else { panic!("not a select") };
        select
            .projection
            .iter()
            .map(|item| match item {
                SelectItem::ExprWithAlias { alias, .. } => result_column_name(&alias.value).to_string(),
                SelectItem::UnnamedExpr(e) => format!("unaliased {e}"),
                other => format!("{other}"),
            })
            .collect()
    }

    /// Expected names are PostgreSQL 15's.
    #[test]
    fn names_follow_postgres_figure_colname() {
        let sql = "SELECT 1::int, 1::bigint, CAST(1 AS numeric(10,2)), 'x'::varchar(3), a::bigint, \
                   abs(a)::text, -a, a + 1, (a), CASE WHEN true THEN 1 END, coalesce(a, 1), nullif(a, 1), \
                   extract(year FROM ts), substring(b FROM 1 FOR 2), position('a' IN b), trim(b), \
                   trim(LEADING 'x' FROM b), ts AT TIME ZONE 'UTC', interval '1 day', \
                   timestamp '2020-01-01', a IS NULL, a IN (1), EXISTS (SELECT 1), (SELECT 1 AS q), \
                   (SELECT 1), ARRAY[1], current_date, 1, NULL, ceil(1.5), count(*) OVER (), nt.a, \
                   1::text::int, a::text::int, (1 + 2)::text, 1.5::float8, 1::real, 'x'::char(2), \
                   CASE WHEN true THEN 1 END::text, pg_typeof(1), Upper(b), \"Q\", 1 AS \"1x\" FROM nt";
        let expected = [
            "int4",
            "int8",
            "numeric",
            "varchar",
            "a",
            "abs",
            "?column?",
            "?column?",
            "a",
            "case",
            "coalesce",
            "nullif",
            "extract",
            "substring",
            "position",
            "btrim",
            "ltrim",
            "timezone",
            "interval",
            "timestamp",
            "?column?",
            "?column?",
            "exists",
            "q",
            "?column?",
            "array",
            "current_date",
            "?column?",
            "?column?",
            "ceil",
            "count",
            "a",
            "int4",
            "a",
            "text",
            "float8",
            "float4",
            "bpchar",
            "text",
            "pg_typeof",
            "upper",
            "unaliased \"Q\"",
            "1x",
        ];
        assert_eq!(select_list_names(sql), expected);
    }

    #[test]
    fn duplicate_names_are_marked_unique_and_shown_alike() {
        let names = select_list_names("SELECT pg_typeof(1), pg_typeof(2), a, a, 1 AS a FROM t");
        assert_eq!(names, ["pg_typeof", "pg_typeof", "unaliased a", "a", "a"]);
        let names = select_list_names("SELECT *, abs(a), b FROM t");
        assert_eq!(names, ["*", "abs", "b"]);
    }
}
