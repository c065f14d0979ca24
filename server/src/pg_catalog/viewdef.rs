//! `pg_get_viewdef`: a materialized view's `SELECT`, laid out the way Postgres 15 prints view
//! definitions.
//!
//! Weir stores the query text a view was created with, not a parsed tree, so the text is
//! parsed again and reprinted in Postgres' layout: a leading space, one select-list item per
//! line, `FROM`/`WHERE`/`GROUP BY`/... on lines of their own at Postgres' indents, and a
//! trailing `;`. Like Postgres 15 it qualifies column references with their relation's name
//! or alias, names every select-list expression (`AS total`) unless it is a column of that
//! name, expands `*`, and prints `ORDER BY`/`GROUP BY` references to output columns as the
//! expressions they stand for. Without `pretty`, operators are parenthesized and joins
//! nested as Postgres does.
//!
//! Postgres prints a deparsed plan, so some details cannot be reproduced from the text: the
//! casts it adds to literals (`10::double precision`), the unnecessary parentheses it drops
//! in pretty mode, and expressions it rewrites (`BETWEEN`). A definition this module cannot
//! lay out (a set operation, `WITH`, ...) is printed as stored, as `" <definition>;"`.

use std::ops::ControlFlow;

use weir_planner::sqlparser::ast::{
    visit_expressions, visit_expressions_mut, Distinct, Expr, GroupByExpr, Ident, Join, JoinConstraint,
    JoinOperator, LimitClause, ObjectName, ObjectNamePart, OrderByExpr, OrderByKind, Query, Select,
    SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Statement, TableAlias, TableFactor, TableWithJoins,
    UnaryOperator, Value, WildcardAdditionalOptions,
};
use weir_planner::sqlparser::dialect::PostgreSqlDialect;
use weir_planner::sqlparser::parser::Parser;

use super::naming::{quote_ident, regclass_name, regclass_oid};
use super::relations::all_relations;
use super::{view_oid, CatalogSnapshot};

/// `pg_get_viewdef(oid, pretty)`: NULL unless `oid` is a materialized view.
pub fn view_definition(snapshot: &CatalogSnapshot, oid: i64, pretty: bool) -> Option<String> {
    let view = snapshot.views.iter().find(|v| view_oid(v) == oid)?;
    let names: Vec<String> = view.relation.columns.iter().map(|c| c.name.clone()).collect();
    let text = view.definition.trim().trim_end_matches(';').trim_end();
    Some(format_definition(snapshot, text, &names, pretty).unwrap_or_else(|| format!(" {text};")))
}

/// A relation in `FROM`: the name its columns are qualified with, and its columns when known.
struct Source {
    qualifier: String,
    columns: Option<Vec<String>>,
}

/// The whole definition in Postgres' layout, or None when the query has a shape this module
/// does not lay out.
fn format_definition(
    snapshot: &CatalogSnapshot,
    sql: &str,
    names: &[String],
    pretty: bool,
) -> Option<String> {
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    if statements.len() != 1 {
        return None;
    }
    let Statement::Query(query) = statements.remove(0) else {
        return None;
    };
    let Query {
        with,
        body,
        order_by,
        limit_clause,
        fetch,
        locks,
        for_clause,
        settings,
        format_clause,
        pipe_operators,
    } = *query;
    if with.is_some()
        || !pipe_operators.is_empty()
        || fetch.is_some()
        || !locks.is_empty()
        || for_clause.is_some()
        || settings.is_some()
        || format_clause.is_some()
    {
        return None;
    }
    let SetExpr::Select(select) = *body else {
        return None;
    };
    let mut select = *select;
    if !is_plain(&select) {
        return None;
    }
    let mut order: Vec<OrderByExpr> = match order_by {
        None => Vec::new(),
        Some(o) if o.interpolate.is_none() => match o.kind {
            OrderByKind::Expressions(exprs) => exprs,
            OrderByKind::All(_) => return None,
        },
        Some(_) => return None,
    };
    let (limit, offset) = match limit_clause {
        None => (None, None),
        Some(LimitClause::LimitOffset { limit, offset, limit_by }) if limit_by.is_empty() => {
            (limit, offset.map(|o| o.value))
        }
        Some(_) => return None,
    };
    let GroupByExpr::Expressions(mut group, modifiers) =
        std::mem::replace(&mut select.group_by, GroupByExpr::Expressions(Vec::new(), Vec::new()))
    else {
        return None;
    };
    if !modifiers.is_empty() {
        return None;
    }

    let sources = sources(snapshot, &select.from);
    let mut items = expand_wildcards(std::mem::take(&mut select.projection), &sources)?;
    let outputs: Vec<Option<String>> = if items.iter().all(|i| i.expr.is_some()) && items.len() == names.len()
    {
        names.iter().cloned().map(Some).collect()
    } else {
        items.iter().map(|i| i.alias.clone()).collect()
    };

    // ORDER BY and GROUP BY name output columns by position or name; Postgres prints the
    // expressions they stand for.
    for o in &mut order {
        if let Some(e) = output_reference(&o.expr, &items, &outputs, &sources, true) {
            o.expr = e;
        }
    }
    for g in &mut group {
        if let Some(e) = output_reference(g, &items, &outputs, &sources, false) {
            *g = e;
        }
    }

    // Column references, qualified when the relation they belong to is certain. A subquery
    // has a scope of its own, so nothing is qualified in a query that has one.
    let mut clauses: Vec<&mut Expr> = Vec::new();
    clauses.extend(items.iter_mut().filter_map(|i| i.expr.as_mut()));
    if let Some(Distinct::On(exprs)) = &mut select.distinct {
        clauses.extend(exprs.iter_mut());
    }
    clauses.extend(select.selection.as_mut());
    clauses.extend(group.iter_mut());
    clauses.extend(select.having.as_mut());
    clauses.extend(order.iter_mut().map(|o| &mut o.expr));
    for table in &mut select.from {
        for join in &mut table.joins {
            if let Some(JoinConstraint::On(e)) = join_constraint_mut(&mut join.join_operator) {
                clauses.push(e);
            }
        }
    }
    let qualify = !clauses.iter().any(|e| has_subquery(e));
    for expr in clauses {
        normalize_names(expr, &sources, qualify);
        if pretty {
            strip_outer_parens(expr);
        } else {
            parenthesize_operators(expr);
        }
    }

    let mut out = String::from(" SELECT ");
    match &select.distinct {
        Some(Distinct::Distinct) => out.push_str("DISTINCT "),
        Some(Distinct::On(exprs)) => out.push_str(&format!("DISTINCT ON ({}) ", join_exprs(exprs))),
        Some(Distinct::All) | None => {}
    }
    let rendered: Vec<String> =
        items.iter().zip(&outputs).map(|(i, name)| i.render(name.as_deref())).collect();
    out.push_str(&rendered.join(",\n    "));
    if !select.from.is_empty() {
        let from =
            select.from.iter().map(|t| table_with_joins(snapshot, t, pretty)).collect::<Option<Vec<_>>>()?;
        out.push_str("\n   FROM ");
        out.push_str(&from.join(",\n    "));
    }
    if let Some(e) = &select.selection {
        out.push_str(&format!("\n  WHERE {e}"));
    }
    if !group.is_empty() {
        let group: Vec<String> = group.iter().map(|g| sort_group_expr(g, pretty)).collect();
        out.push_str(&format!("\n  GROUP BY {}", group.join(", ")));
    }
    if let Some(e) = &select.having {
        out.push_str(&format!("\n HAVING {e}"));
    }
    if !order.is_empty() {
        let order: Vec<String> = order.iter().map(|o| order_item(o, pretty)).collect();
        out.push_str(&format!("\n  ORDER BY {}", order.join(", ")));
    }
    if let Some(e) = offset {
        out.push_str(&format!("\n OFFSET {e}"));
    }
    if let Some(e) = limit {
        out.push_str(&format!("\n LIMIT {e}"));
    }
    out.push(';');
    Some(out)
}

/// A `SELECT` using only clauses this module prints.
fn is_plain(select: &Select) -> bool {
    select.top.is_none()
        && select.into.is_none()
        && select.exclude.is_none()
        && select.lateral_views.is_empty()
        && select.prewhere.is_none()
        && select.connect_by.is_empty()
        && select.cluster_by.is_empty()
        && select.distribute_by.is_empty()
        && select.sort_by.is_empty()
        && select.named_window.is_empty()
        && select.qualify.is_none()
        && select.value_table_mode.is_none()
}

// ---------------------------------------------------------------------------------------
// FROM

fn normalize(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// An identifier that prints as Postgres' `quote_ident` would.
fn ident(name: &str) -> Ident {
    if quote_ident(name) == name {
        Ident::new(name)
    } else {
        Ident::with_quote('"', name)
    }
}

fn plain_table(factor: &TableFactor) -> Option<(&ObjectName, Option<&TableAlias>)> {
    match factor {
        TableFactor::Table {
            name,
            alias,
            args: None,
            with_hints,
            version: None,
            partitions,
            with_ordinality: false,
            json_path: None,
            sample: None,
            index_hints,
        } if with_hints.is_empty() && partitions.is_empty() && index_hints.is_empty() => {
            Some((name, alias.as_ref()))
        }
        _ => None,
    }
}

/// The relations of a `FROM` list, in order, with their columns when they are catalog
/// relations.
fn sources(snapshot: &CatalogSnapshot, from: &[TableWithJoins]) -> Vec<Source> {
    let relations = all_relations(snapshot);
    let factors =
        from.iter().flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)));
    factors
        .map(|factor| {
            let Some((name, alias)) = plain_table(factor) else {
                let qualifier = match factor {
                    TableFactor::Derived { alias: Some(a), .. }
                    | TableFactor::Function { alias: Some(a), .. } => normalize(&a.name),
                    _ => String::new(),
                };
                return Source { qualifier, columns: None };
            };
            let last = name.0.last().and_then(ObjectNamePart::as_ident).map(normalize).unwrap_or_default();
            let mut columns = regclass_oid(snapshot, &name.to_string())
                .and_then(|oid| relations.iter().find(|r| r.oid == oid))
                .map(|r| r.attributes.iter().map(|a| a.name.clone()).collect::<Vec<_>>());
            if let (Some(columns), Some(alias)) = (columns.as_mut(), alias) {
                for (column, renamed) in columns.iter_mut().zip(&alias.columns) {
                    *column = normalize(&renamed.name);
                }
            }
            Source { qualifier: alias.map_or(last, |a| normalize(&a.name)), columns }
        })
        .collect()
}

/// A relation as Postgres prints it in `FROM`: its name qualified only when not visible,
/// then its alias without `AS`.
fn table_factor(snapshot: &CatalogSnapshot, factor: &TableFactor) -> String {
    let Some((name, alias)) = plain_table(factor) else {
        return factor.to_string();
    };
    let mut out = match regclass_oid(snapshot, &name.to_string()) {
        Some(oid) if all_relations(snapshot).iter().any(|r| r.oid == oid) => regclass_name(snapshot, oid),
        _ => name.to_string(),
    };
    if let Some(alias) = alias {
        out.push(' ');
        out.push_str(&quote_ident(&normalize(&alias.name)));
        if !alias.columns.is_empty() {
            let columns: Vec<String> =
                alias.columns.iter().map(|c| quote_ident(&normalize(&c.name))).collect();
            out.push_str(&format!("({})", columns.join(", ")));
        }
    }
    out
}

fn join_constraint_mut(op: &mut JoinOperator) -> Option<&mut JoinConstraint> {
    match op {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c)
        | JoinOperator::CrossJoin(c) => Some(c),
        _ => None,
    }
}

fn join(snapshot: &CatalogSnapshot, join: &Join, pretty: bool) -> Option<String> {
    let (keyword, constraint) = match &join.join_operator {
        JoinOperator::Join(c) | JoinOperator::Inner(c) => ("JOIN", c),
        JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => ("LEFT JOIN", c),
        JoinOperator::Right(c) | JoinOperator::RightOuter(c) => ("RIGHT JOIN", c),
        JoinOperator::FullOuter(c) => ("FULL JOIN", c),
        JoinOperator::CrossJoin(c) => ("CROSS JOIN", c),
        _ => return None,
    };
    if join.global {
        return None;
    }
    let relation = table_factor(snapshot, &join.relation);
    Some(match constraint {
        JoinConstraint::On(e) if pretty => format!("{keyword} {relation} ON {e}"),
        JoinConstraint::On(e) => format!("{keyword} {relation} ON ({e})"),
        JoinConstraint::Using(columns) => {
            let columns: Vec<String> = columns.iter().map(ToString::to_string).collect();
            format!("{keyword} {relation} USING ({})", columns.join(", "))
        }
        JoinConstraint::Natural => format!("NATURAL {keyword} {relation}"),
        JoinConstraint::None => format!("{keyword} {relation}"),
    })
}

/// One `FROM` item: joins on lines of their own, and (without `pretty`) nested in
/// parentheses as Postgres prints its join tree.
fn table_with_joins(snapshot: &CatalogSnapshot, table: &TableWithJoins, pretty: bool) -> Option<String> {
    let mut out = String::new();
    if !pretty {
        out.push_str(&"(".repeat(table.joins.len()));
    }
    out.push_str(&table_factor(snapshot, &table.relation));
    for j in &table.joins {
        out.push_str("\n     ");
        out.push_str(&join(snapshot, j, pretty)?);
        if !pretty {
            out.push(')');
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------
// The select list

/// A select-list entry: an expression with the alias written for it, or (for a `*` whose
/// relations are unknown) text printed as written.
struct Item {
    expr: Option<Expr>,
    alias: Option<String>,
    raw: String,
}

impl Item {
    fn expr(expr: Expr, alias: Option<String>) -> Item {
        Item { expr: Some(expr), alias, raw: String::new() }
    }

    /// `expr AS name`, without the alias when the expression is a column of that name.
    fn render(&self, name: Option<&str>) -> String {
        let Some(expr) = &self.expr else {
            return self.raw.clone();
        };
        match name {
            Some(name) if column_name(expr) != Some(name) => format!("{expr} AS {}", quote_ident(name)),
            _ => expr.to_string(),
        }
    }
}

fn column_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Identifier(i) => Some(&i.value),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.as_str()),
        _ => None,
    }
}

fn plain_wildcard(options: &WildcardAdditionalOptions) -> bool {
    options.opt_ilike.is_none()
        && options.opt_exclude.is_none()
        && options.opt_except.is_none()
        && options.opt_replace.is_none()
        && options.opt_rename.is_none()
        && options.opt_alias.is_none()
}

fn qualified_columns(source: &Source) -> Option<Vec<Item>> {
    let columns = source.columns.as_ref()?;
    Some(
        columns
            .iter()
            .map(|c| Item::expr(Expr::CompoundIdentifier(vec![ident(&source.qualifier), ident(c)]), None))
            .collect(),
    )
}

/// The select list with `*` and `t.*` expanded to qualified columns, as Postgres stores
/// them. None for select-list forms this module does not print.
fn expand_wildcards(projection: Vec<SelectItem>, sources: &[Source]) -> Option<Vec<Item>> {
    let mut items = Vec::new();
    for item in projection {
        match item {
            SelectItem::UnnamedExpr(e) => items.push(Item::expr(e, None)),
            SelectItem::ExprWithAlias { expr, alias } => {
                items.push(Item::expr(expr, Some(normalize(&alias))))
            }
            SelectItem::Wildcard(options) if plain_wildcard(&options) => {
                match sources.iter().map(qualified_columns).collect::<Option<Vec<_>>>() {
                    Some(columns) if !sources.is_empty() => items.extend(columns.into_iter().flatten()),
                    _ => items.push(Item { expr: None, alias: None, raw: "*".into() }),
                }
            }
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(name), options)
                if plain_wildcard(&options) =>
            {
                let qualifier = name.0.last().and_then(ObjectNamePart::as_ident).map(normalize);
                match sources
                    .iter()
                    .find(|s| Some(&s.qualifier) == qualifier.as_ref())
                    .and_then(qualified_columns)
                {
                    Some(columns) => items.extend(columns),
                    None => items.push(Item { expr: None, alias: None, raw: format!("{name}.*") }),
                }
            }
            _ => return None,
        }
    }
    Some(items)
}

/// What an `ORDER BY`/`GROUP BY` entry refers to when it names an output column: by
/// position (`ORDER BY 2`), or by name. An output name wins over an input column in `ORDER
/// BY`; in `GROUP BY` an input column wins, as in Postgres.
fn output_reference(
    expr: &Expr,
    items: &[Item],
    outputs: &[Option<String>],
    sources: &[Source],
    output_first: bool,
) -> Option<Expr> {
    let index = match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.to_string().parse::<usize>().ok()?.checked_sub(1)?,
            _ => return None,
        },
        Expr::Identifier(i) => {
            let name = normalize(i);
            let is_input = sources.iter().any(|s| s.columns.as_ref().is_none_or(|c| c.contains(&name)));
            if is_input && !output_first {
                return None;
            }
            outputs.iter().position(|o| o.as_deref() == Some(name.as_str()))?
        }
        _ => return None,
    };
    items.get(index)?.expr.clone()
}

// ---------------------------------------------------------------------------------------
// Expressions

fn has_subquery(expr: &Expr) -> bool {
    visit_expressions(expr, |e| match e {
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// Identifiers as Postgres prints them: folded to lower case unless quoted, column
/// references qualified (when `qualify`) with the one relation that has such a column, and
/// function names in lower case.
fn normalize_names(expr: &mut Expr, sources: &[Source], qualify: bool) {
    let complete = sources.iter().all(|s| s.columns.is_some());
    let _ = visit_expressions_mut(expr, |e| {
        match e {
            Expr::Identifier(i) => {
                let name = normalize(i);
                let mut owners =
                    sources.iter().filter(|s| s.columns.as_ref().is_some_and(|c| c.contains(&name)));
                match (owners.next(), owners.next()) {
                    (Some(owner), None) if qualify && complete => {
                        *e = Expr::CompoundIdentifier(vec![ident(&owner.qualifier), ident(&name)]);
                    }
                    _ => *i = ident(&name),
                }
            }
            Expr::CompoundIdentifier(parts) => {
                for part in parts {
                    *part = ident(&normalize(part));
                }
            }
            Expr::Function(f) => {
                for part in &mut f.name.0 {
                    if let ObjectNamePart::Identifier(i) = part {
                        if i.quote_style.is_none() {
                            i.value = i.value.to_lowercase();
                        }
                    }
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}

fn strip_outer_parens(expr: &mut Expr) {
    while let Expr::Nested(inner) = expr {
        let inner = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
        *expr = inner;
    }
}

/// Postgres' non-pretty output: every operator in parentheses of its own, and no others.
fn parenthesize_operators(expr: &mut Expr) {
    let _ = visit_expressions_mut(expr, |e| {
        if let Expr::Nested(inner) = e {
            // Its content, if an operator, is already parenthesized.
            let inner = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
            *e = inner;
        } else if is_operator(e) {
            let inner = std::mem::replace(e, Expr::value(Value::Null));
            *e = Expr::Nested(Box::new(inner));
        }
        ControlFlow::<()>::Continue(())
    });
}

fn is_operator(expr: &Expr) -> bool {
    matches!(
        expr,
        Expr::BinaryOp { .. }
            | Expr::UnaryOp { op: UnaryOperator::Not, .. }
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::IsTrue(_)
            | Expr::IsNotTrue(_)
            | Expr::IsFalse(_)
            | Expr::IsNotFalse(_)
            | Expr::IsUnknown(_)
            | Expr::IsNotUnknown(_)
            | Expr::IsDistinctFrom(..)
            | Expr::IsNotDistinctFrom(..)
            | Expr::InList { .. }
            | Expr::Between { .. }
            | Expr::Like { .. }
            | Expr::ILike { .. }
            | Expr::SimilarTo { .. }
    )
}

/// A `GROUP BY`/`ORDER BY` expression: Postgres parenthesizes all but plain columns and
/// constants in pretty mode, and function calls always.
fn sort_group_expr(expr: &Expr, pretty: bool) -> String {
    let plain =
        matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::Value(_) | Expr::Nested(_));
    if !plain && (pretty || matches!(expr, Expr::Function(_))) {
        format!("({expr})")
    } else {
        expr.to_string()
    }
}

fn order_item(o: &OrderByExpr, pretty: bool) -> String {
    let mut out = sort_group_expr(&o.expr, pretty);
    let descending = o.options.asc == Some(false);
    if descending {
        out.push_str(" DESC");
    }
    match o.options.nulls_first {
        Some(true) if !descending => out.push_str(" NULLS FIRST"),
        Some(false) if descending => out.push_str(" NULLS LAST"),
        _ => {}
    }
    out
}

fn join_exprs(exprs: &[Expr]) -> String {
    exprs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}
