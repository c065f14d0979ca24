//! Subqueries in catalog queries, reshaped so DataFusion can decorrelate them.
//!
//! psql describes a table with correlated subqueries DataFusion refuses as written:
//!
//! - a scalar subquery without an aggregate (`(SELECT c.collname FROM pg_collation c, ...
//!   WHERE c.oid = a.attcollation ...)`): DataFusion only decorrelates aggregated ones;
//! - a condition on outer columns alone inside the subquery (`... AND a.atthasdef`);
//! - a non-equality between outer and inner columns (`a.attcollation <> t.typcollation`);
//! - `ARRAY(SELECT ...)`, which DataFusion does not have at all;
//! - correlated subqueries over catalogs Weir keeps empty (`pg_policy`, publications), whose
//!   shapes (`oid = ANY(pol.polroles)`, `generate_series(..., pr.prattrs) s`) no rewrite
//!   can make decorrelatable.
//!
//! Each rewrite below preserves the meaning of the query:
//!
//! - A single-column scalar subquery returns at most one row or fails in Postgres, so
//!   `max(x)` over its rows is `x`. This is applied only to subqueries reading nothing but
//!   system catalogs, where psql's queries are known to be single-row by construction, so a
//!   user query that Postgres would reject is never silently accepted.
//! - A conjunct mentioning only outer columns is moved out: `(SELECT ... WHERE p AND outer)`
//!   is `CASE WHEN outer THEN (SELECT ... WHERE p) END` (both are NULL when it is false or
//!   NULL).
//! - In `... WHERE inner_col = outer_col AND f(outer_col, ...)`, the other conjuncts may use
//!   `inner_col` for `outer_col`: rows where they differ are filtered out anyway.
//! - `ARRAY(SELECT x FROM ... ORDER BY y)` is `coalesce((SELECT array_agg(x ORDER BY y) FROM
//!   ...), [])`: the same elements in the same order, and `{}` for no rows.
//! - `ARRAY(SELECT f(x) FROM unnest(a) x [WHERE p(x)])`, a map over an array (psql's
//!   `\d+` writes one), is `coalesce(array_transform(array_filter(a, x -> p(x)), x -> f(x)),
//!   [])` when `f` and `p` use no column but `x`.
//! - `EXISTS (SELECT ... FROM catalogs ...)` in a select list (DataFusion runs EXISTS only
//!   as a filter) is `(SELECT count(*) FROM catalogs ...) > 0`.
//! - A `SELECT` without aggregation that inner-joins a catalog listed in
//!   [`ALWAYS_EMPTY_CATALOG_TABLES`] returns no rows, so its select list is never evaluated:
//!   select-list expressions containing subqueries are replaced by `NULL`.

use std::ops::ControlFlow;

use super::call;
use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    visit_expressions, visit_expressions_mut, BinaryOperator, CaseWhen, Expr, Function, FunctionArg,
    FunctionArgExpr, FunctionArgumentClause, FunctionArgumentList, FunctionArguments, GroupByExpr, Ident,
    JoinOperator, LambdaFunction, LambdaFunctionParameter, LambdaSyntax, ObjectName, ObjectNamePart,
    OneOrManyWithParens, OrderByExpr, OrderByKind, Query, Select, SelectItem, SetExpr, TableFactor, Value,
    Visit, Visitor,
};
use datafusion::sql::sqlparser::tokenizer::Span;

/// System catalogs the server always serves empty because Weir has no such objects.
/// `server/src/pg_catalog` tests that each of these is indeed empty there.
pub const ALWAYS_EMPTY_CATALOG_TABLES: &[&str] = &[
    "pg_policy",
    "pg_publication",
    "pg_publication_namespace",
    "pg_publication_rel",
    "pg_inherits",
    "pg_statistic_ext",
    "pg_attrdef",
    "pg_trigger",
    "pg_rewrite",
    "pg_partitioned_table",
    "pg_description",
    "pg_enum",
    "pg_range",
];

/// Aggregate functions: a select list using one is aggregated (one row on empty input).
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "jsonb_object_agg",
    "stddev",
    "variance",
];

// ---------------------------------------------------------------------------------------
// ARRAY(subquery)

/// `ARRAY(SELECT x FROM ... [ORDER BY ...])` -> `coalesce((SELECT array_agg(x [ORDER BY
/// ...]) FROM ...), make_array())`. Other shapes (aggregates, DISTINCT, LIMIT, set
/// operations) are left alone.
pub fn rewrite_array_subquery(expr: &mut Expr) {
    let Expr::Function(function) = expr else {
        return;
    };
    let is_array = function.name.0.len() == 1
        && function.name.0[0].as_ident().is_some_and(|i| i.value.eq_ignore_ascii_case("array"));
    let FunctionArguments::Subquery(query) = &function.args else {
        return;
    };
    if !is_array || query.limit_clause.is_some() || query.fetch.is_some() || query.with.is_some() {
        return;
    }
    if let Some(mapped) = array_map(query).or_else(|| options_as_unnest(query).and_then(|q| array_map(&q))) {
        *expr = mapped;
        return;
    }
    let mut query = query.clone();
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    if select.projection.len() != 1
        || select.distinct.is_some()
        || has_grouping(select)
        || select.projection.iter().any(|item| item_expr(item).is_some_and(has_aggregate))
    {
        return;
    }
    let (element, alias) = match select.projection.remove(0) {
        SelectItem::UnnamedExpr(e) => (e, None),
        SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias)),
        _ => return,
    };
    let order_by: Vec<OrderByExpr> = match query.order_by.take().map(|o| o.kind) {
        Some(OrderByKind::Expressions(items)) => items
            .into_iter()
            .map(|mut item| {
                if refers_to_output(&item.expr, alias.as_ref()) {
                    item.expr = element.clone();
                }
                item
            })
            .collect(),
        Some(OrderByKind::All(_)) => return,
        None => Vec::new(),
    };
    let mut clauses = Vec::new();
    if !order_by.is_empty() {
        clauses.push(FunctionArgumentClause::OrderBy(order_by));
    }
    let aggregate = Expr::Function(Function {
        name: name("array_agg"),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(element))],
            clauses,
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    });
    select.projection.push(SelectItem::UnnamedExpr(aggregate));
    let mut subquery = Expr::Subquery(query);
    normalize_scalar_subquery(&mut subquery);
    *expr = call("coalesce", vec![subquery, call("make_array", vec![])]);
}

/// `SELECT f(x) FROM unnest(a) x [WHERE p(x)]` as array functions with lambdas.
fn array_map(query: &Query) -> Option<Expr> {
    if query.order_by.is_some()
        || query.limit_clause.is_some()
        || query.fetch.is_some()
        || query.with.is_some()
    {
        return None;
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let [table] = select.from.as_slice() else {
        return None;
    };
    if !table.joins.is_empty()
        || select.distinct.is_some()
        || has_grouping(select)
        || select.projection.len() != 1
    {
        return None;
    }
    let TableFactor::Table { name, alias: Some(alias), args: Some(args), .. } = &table.relation else {
        return None;
    };
    let is_unnest =
        name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| i.value.eq_ignore_ascii_case("unnest"));
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(array))] = args.args.as_slice() else {
        return None;
    };
    let element = match alias.columns.as_slice() {
        [] => alias.name.clone(),
        [column] => column.name.clone(),
        _ => return None,
    };
    let element_expr = item_expr(select.projection.first()?)?;
    let only_element = |e: &Expr| {
        let r = references(e);
        let mut foreign = false;
        let _ = visit_expressions(e, |sub| {
            match sub {
                Expr::Identifier(i) if !i.value.eq_ignore_ascii_case(&element.value) => foreign = true,
                Expr::CompoundIdentifier(_) => foreign = true,
                _ => {}
            }
            ControlFlow::<()>::Continue(())
        });
        !foreign && !r.subquery && !r.aggregate
    };
    if !is_unnest || !only_element(element_expr) || !select.selection.as_ref().is_none_or(only_element) {
        return None;
    }
    let lambda = |body: &Expr| {
        Expr::Lambda(LambdaFunction {
            params: OneOrManyWithParens::One(LambdaFunctionParameter {
                name: element.clone(),
                data_type: None,
            }),
            body: Box::new(body.clone()),
            syntax: LambdaSyntax::Arrow,
        })
    };
    let mut source = array.clone();
    if let Some(predicate) = &select.selection {
        source = call("array_filter", vec![source, lambda(predicate)]);
    }
    let mapped = call("array_transform", vec![source, lambda(element_expr)]);
    Some(call("coalesce", vec![mapped, call("make_array", vec![])]))
}

/// `SELECT f(option_name, option_value) FROM pg_options_to_table(a)` (psql's `\d` of a
/// foreign table lists its options so) as `SELECT f(..) FROM unnest(a) weir_option`, each
/// `name=value` element split at its first `=` as Postgres does.
fn options_as_unnest(query: &Query) -> Option<Query> {
    let mut query = query.clone();
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    let [table] = select.from.as_mut_slice() else {
        return None;
    };
    let TableFactor::Table { name, alias, args: Some(_), .. } = &mut table.relation else {
        return None;
    };
    if !name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .is_some_and(|i| i.value.eq_ignore_ascii_case("pg_options_to_table"))
    {
        return None;
    }
    let element = Ident::new("weir_option");
    *name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new("unnest"))]);
    *alias = Some(datafusion::sql::sqlparser::ast::TableAlias {
        explicit: false,
        name: element.clone(),
        columns: vec![],
        at: None,
    });
    let option = || Expr::Identifier(element.clone());
    let equals = || Expr::Value(Value::SingleQuotedString("=".into()).into());
    let option_name =
        call("split_part", vec![option(), equals(), Expr::Value(Value::Number("1".into(), false).into())]);
    let after_equals = Expr::BinaryOp {
        left: Box::new(call("strpos", vec![option(), equals()])),
        op: BinaryOperator::Plus,
        right: Box::new(Expr::Value(Value::Number("1".into(), false).into())),
    };
    let option_value = call("substr", vec![option(), after_equals]);
    let _ = visit_expressions_mut(&mut select.projection, |e| {
        if let Expr::Identifier(i) = e {
            if i.value.eq_ignore_ascii_case("option_name") {
                *e = option_name.clone();
            } else if i.value.eq_ignore_ascii_case("option_value") {
                *e = option_value.clone();
            }
        }
        ControlFlow::<()>::Continue(())
    });
    Some(query)
}

/// `ORDER BY 1` or `ORDER BY <alias>` in a one-column subquery.
fn refers_to_output(expr: &Expr, alias: Option<&Ident>) -> bool {
    match expr {
        Expr::Value(v) => matches!(&v.value, Value::Number(n, _) if n == "1"),
        Expr::Identifier(ident) => alias.is_some_and(|a| a.value.eq_ignore_ascii_case(&ident.value)),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// Correlated scalar subqueries over catalogs

/// Applies the correlation rewrites (see the module docs) to a scalar subquery that reads
/// only system catalogs.
pub fn normalize_scalar_subquery(expr: &mut Expr) {
    let Expr::Subquery(query) = expr else { return };
    let limited = query.limit_clause.is_some() || query.fetch.is_some();
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    if !reads_only_catalogs(select) {
        return;
    }
    let inner = inner_qualifiers(select);
    let mut hoisted = Vec::new();
    if let Some(selection) = select.selection.take() {
        let mut conjuncts = split_conjuncts(selection);
        substitute_equated_outer_columns(&mut conjuncts, &inner);
        let (outer_only, rest): (Vec<Expr>, Vec<Expr>) =
            conjuncts.into_iter().partition(|c| is_outer_only(c, &inner));
        hoisted = outer_only;
        select.selection = join_conjuncts(rest);
    }
    let correlated = !hoisted.is_empty() || mentions_outer(select, &inner);
    let single_unaggregated = select.projection.len() == 1
        && select.distinct.is_none()
        && !has_grouping(select)
        && !limited
        && !select.projection.iter().any(|item| item_expr(item).is_some_and(has_aggregate));
    if correlated && single_unaggregated {
        if let Some(item) = select.projection.first_mut() {
            wrap_in_max(item);
        }
        query.order_by = None;
    }
    if let Some(condition) = join_conjuncts(hoisted) {
        let subquery = std::mem::replace(expr, null());
        *expr = Expr::Case {
            case_token: AttachedToken::empty(),
            end_token: AttachedToken::empty(),
            operand: None,
            conditions: vec![CaseWhen { condition, result: subquery }],
            else_result: None,
        };
    }
}

fn wrap_in_max(item: &mut SelectItem) {
    let target = match item {
        SelectItem::UnnamedExpr(e) => e,
        SelectItem::ExprWithAlias { expr, .. } => expr,
        _ => return,
    };
    let inner = std::mem::replace(target, null());
    *target = call("max", vec![inner]);
}

/// Lower-cased names by which this SELECT's own relations are referenced.
fn inner_qualifiers(select: &Select) -> Vec<String> {
    let mut names = Vec::new();
    for table in &select.from {
        for factor in std::iter::once(&table.relation).chain(table.joins.iter().map(|j| &j.relation)) {
            let alias = match factor {
                TableFactor::Table { name, alias, .. } => alias
                    .as_ref()
                    .map(|a| a.name.value.to_lowercase())
                    .or_else(|| name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_lowercase())),
                TableFactor::Derived { alias, .. }
                | TableFactor::Function { alias, .. }
                | TableFactor::UNNEST { alias, .. } => alias.as_ref().map(|a| a.name.value.to_lowercase()),
                _ => None,
            };
            names.extend(alias);
        }
    }
    names
}

/// Whether every relation in FROM is a system catalog table (not a table function).
fn reads_only_catalogs(select: &Select) -> bool {
    !select.from.is_empty()
        && select.from.iter().all(|table| {
            std::iter::once(&table.relation)
                .chain(table.joins.iter().map(|j| &j.relation))
                .all(|factor| catalog_table_name(factor).is_some())
        })
}

/// The table name of a plain reference to `pg_catalog.x`, `information_schema.x`, or an
/// unqualified `pg_x`.
fn catalog_table_name(factor: &TableFactor) -> Option<String> {
    let TableFactor::Table { name, args: None, .. } = factor else {
        return None;
    };
    let parts: Vec<String> =
        name.0.iter().filter_map(|p| p.as_ident()).map(|i| i.value.to_lowercase()).collect();
    match parts.as_slice() {
        [schema, table] if schema == "pg_catalog" || schema == "information_schema" => Some(table.clone()),
        [table] if table.starts_with("pg_") => Some(table.clone()),
        _ => None,
    }
}

/// The qualifier of a column reference: `a` in `a.col`, `t` in `s.t.col`.
fn qualifier(expr: &Expr) -> Option<String> {
    match expr {
        Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
            parts.get(parts.len() - 2).map(|i| i.value.to_lowercase())
        }
        _ => None,
    }
}

/// What an expression refers to, not looking into nested subqueries.
#[derive(Default)]
struct References {
    /// Qualifiers of column references (`a` of `a.x`), lower-cased.
    qualifiers: Vec<String>,
    /// An unqualified column reference.
    unqualified: bool,
    subquery: bool,
    /// An aggregate or window function call.
    aggregate: bool,
    depth: usize,
}

impl Visitor for References {
    type Break = ();

    fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.subquery = true;
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.depth = self.depth.saturating_sub(1);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if self.depth > 0 {
            return ControlFlow::Continue(());
        }
        match expr {
            Expr::Identifier(_) => self.unqualified = true,
            Expr::CompoundIdentifier(_) => self.qualifiers.extend(qualifier(expr)),
            Expr::Function(f) => {
                let name = f.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_lowercase());
                if f.over.is_some() || name.is_some_and(|n| AGGREGATES.contains(&n.as_str())) {
                    self.aggregate = true;
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

fn references(expr: &Expr) -> References {
    let mut references = References::default();
    let _ = expr.visit(&mut references);
    references
}

fn is_outer_only(conjunct: &Expr, inner: &[String]) -> bool {
    let r = references(conjunct);
    !r.qualifiers.is_empty()
        && !r.unqualified
        && !r.subquery
        && r.qualifiers.iter().all(|q| !inner.contains(q))
}

fn is_outer_column(expr: &Expr, inner: &[String]) -> bool {
    qualifier(expr).is_some_and(|q| !inner.contains(&q))
}

fn is_inner_column(expr: &Expr, inner: &[String]) -> bool {
    qualifier(expr).is_some_and(|q| inner.contains(&q))
}

fn mentions_outer(select: &Select, inner: &[String]) -> bool {
    let mut found = false;
    let mut check = |e: &Expr| {
        found |= references(e).qualifiers.iter().any(|q| !inner.contains(q));
    };
    select.projection.iter().filter_map(item_expr).for_each(&mut check);
    if let Some(selection) = &select.selection {
        check(selection);
    }
    found
}

/// In conjuncts that mix inner and outer columns (other than the `inner = outer` equalities
/// themselves), replaces an outer column by the inner column it is equated with.
fn substitute_equated_outer_columns(conjuncts: &mut [Expr], inner: &[String]) {
    let mut equated: Vec<(Expr, Expr)> = Vec::new();
    for conjunct in conjuncts.iter() {
        if let Some(pair) = inner_outer_equality(conjunct, inner) {
            equated.push(pair);
        }
    }
    if equated.is_empty() {
        return;
    }
    for conjunct in conjuncts.iter_mut() {
        if inner_outer_equality(conjunct, inner).is_some() || is_outer_only(conjunct, inner) {
            continue;
        }
        let _ = visit_expressions_mut(conjunct, |e| {
            if let Some((inner_column, _)) = equated.iter().find(|(_, outer)| outer == e) {
                *e = inner_column.clone();
            }
            ControlFlow::<()>::Continue(())
        });
    }
}

/// `inner.x = outer.y` (either way round) -> (inner column, outer column).
fn inner_outer_equality(expr: &Expr, inner: &[String]) -> Option<(Expr, Expr)> {
    let Expr::BinaryOp { left, op: BinaryOperator::Eq, right } = expr else {
        return None;
    };
    if is_inner_column(left, inner) && is_outer_column(right, inner) {
        Some((left.as_ref().clone(), right.as_ref().clone()))
    } else if is_outer_column(left, inner) && is_inner_column(right, inner) {
        Some((right.as_ref().clone(), left.as_ref().clone()))
    } else {
        None
    }
}

fn split_conjuncts(expr: Expr) -> Vec<Expr> {
    match expr {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            let mut out = split_conjuncts(*left);
            out.extend(split_conjuncts(*right));
            out
        }
        Expr::Nested(inner) if matches!(inner.as_ref(), Expr::BinaryOp { op: BinaryOperator::And, .. }) => {
            split_conjuncts(*inner)
        }
        other => vec![other],
    }
}

fn join_conjuncts(conjuncts: Vec<Expr>) -> Option<Expr> {
    conjuncts.into_iter().reduce(|left, right| Expr::BinaryOp {
        left: Box::new(left),
        op: BinaryOperator::And,
        right: Box::new(right),
    })
}

// ---------------------------------------------------------------------------------------
// EXISTS in select lists

/// Rewrites `[NOT] EXISTS (catalog subquery)` in the select lists of `body` into a count.
pub fn rewrite_select_list_exists(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            for item in &mut select.projection {
                let expr = match item {
                    SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
                    _ => continue,
                };
                let _ = visit_expressions_mut(expr, |e| {
                    exists_to_count(e);
                    ControlFlow::<()>::Continue(())
                });
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            rewrite_select_list_exists(left);
            rewrite_select_list_exists(right);
        }
        SetExpr::Query(query) => rewrite_select_list_exists(&mut query.body),
        _ => {}
    }
}

fn exists_to_count(expr: &mut Expr) {
    let Expr::Exists { subquery, negated } = expr else {
        return;
    };
    let mut query = subquery.clone();
    {
        let SetExpr::Select(select) = query.body.as_mut() else {
            return;
        };
        if !reads_only_catalogs(select) || has_grouping(select) || select.distinct.is_some() {
            return;
        }
        let count_star = Expr::Function(Function {
            name: name("count"),
            uses_odbc_syntax: false,
            parameters: FunctionArguments::None,
            args: FunctionArguments::List(FunctionArgumentList {
                duplicate_treatment: None,
                args: vec![FunctionArg::Unnamed(FunctionArgExpr::Wildcard)],
                clauses: vec![],
            }),
            filter: None,
            null_treatment: None,
            over: None,
            within_group: vec![],
        });
        select.projection = vec![SelectItem::UnnamedExpr(count_star)];
    }
    if query.limit_clause.is_some() || query.fetch.is_some() {
        return;
    }
    query.order_by = None;
    let mut count = Expr::Subquery(query);
    normalize_scalar_subquery(&mut count);
    let op = if *negated { BinaryOperator::Eq } else { BinaryOperator::Gt };
    *expr = Expr::Nested(Box::new(Expr::BinaryOp {
        left: Box::new(count),
        op,
        right: Box::new(Expr::value(Value::Number("0".into(), false))),
    }));
}

// ---------------------------------------------------------------------------------------
// SELECTs over always-empty catalogs

/// Replaces select-list subqueries of every SELECT in `body` that provably returns no rows.
pub fn prune_empty_catalog_selects(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => prune_select(select),
        SetExpr::SetOperation { left, right, .. } => {
            prune_empty_catalog_selects(left);
            prune_empty_catalog_selects(right);
        }
        SetExpr::Query(query) => prune_empty_catalog_selects(&mut query.body),
        _ => {}
    }
}

fn prune_select(select: &mut Select) {
    if !returns_no_rows(select)
        || has_grouping(select)
        || select.projection.iter().any(|item| item_expr(item).is_some_and(has_aggregate))
    {
        return;
    }
    for item in &mut select.projection {
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(e) => (e.clone(), None),
            SelectItem::ExprWithAlias { expr, alias } => (expr.clone(), Some(alias.clone())),
            _ => continue,
        };
        if !references(&expr).subquery {
            continue;
        }
        let alias = alias.unwrap_or_else(|| Ident::with_quote('"', default_column_name(&expr)));
        *item = SelectItem::ExprWithAlias { expr: null(), alias };
    }
}

/// A SELECT inner-joining (or cross-joining) an always-empty catalog, with no outer join
/// that could bring rows back.
fn returns_no_rows(select: &Select) -> bool {
    let is_empty = |factor: &TableFactor| {
        catalog_table_name(factor).is_some_and(|name| ALWAYS_EMPTY_CATALOG_TABLES.contains(&name.as_str()))
    };
    select.from.iter().any(|table| {
        let reintroduces_rows = table.joins.iter().any(|j| {
            matches!(
                j.join_operator,
                JoinOperator::Right(_) | JoinOperator::RightOuter(_) | JoinOperator::FullOuter(_)
            )
        });
        let inner_join_with_empty = table.joins.iter().any(|j| {
            matches!(
                j.join_operator,
                JoinOperator::Join(_) | JoinOperator::Inner(_) | JoinOperator::CrossJoin(_)
            ) && is_empty(&j.relation)
        });
        !reintroduces_rows && (is_empty(&table.relation) || inner_join_with_empty)
    })
}

// ---------------------------------------------------------------------------------------
// Shared helpers

fn item_expr(item: &SelectItem) -> Option<&Expr> {
    match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    }
}

fn has_grouping(select: &Select) -> bool {
    let grouped = match &select.group_by {
        GroupByExpr::All(_) => true,
        GroupByExpr::Expressions(exprs, _) => !exprs.is_empty(),
    };
    grouped || select.having.is_some()
}

/// An aggregate or window function call outside nested subqueries.
fn has_aggregate(expr: &Expr) -> bool {
    references(expr).aggregate
}

/// The name Postgres gives an unaliased select-list expression.
pub fn default_column_name(expr: &Expr) -> String {
    match expr {
        Expr::Identifier(i) => i.value.clone(),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.clone()).unwrap_or_default(),
        Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| i.value.clone())
            .unwrap_or_else(|| "?column?".into()),
        Expr::Case { .. } => "case".into(),
        Expr::Nested(inner) => default_column_name(inner),
        _ => "?column?".into(),
    }
}

fn null() -> Expr {
    Expr::value(Value::Null)
}

fn name(function: &str) -> ObjectName {
    ObjectName(vec![ObjectNamePart::Identifier(Ident::with_span(Span::empty(), function))])
}

#[cfg(test)]
mod tests {
    use crate::parser::{parse_sql, WeirStatement};
    use crate::pg_rewrite::rewrite_for_datafusion;

    fn rewrite(sql: &str) -> String {
        let WeirStatement::Sql(mut stmt) = parse_sql(sql).unwrap().remove(0) else { panic!("not SQL") };
        rewrite_for_datafusion(&mut stmt);
        stmt.to_string()
    }

    #[test]
    fn correlated_scalar_subquery_is_aggregated_and_outer_conditions_hoisted() {
        assert_eq!(
            rewrite(
                "SELECT (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) FROM pg_catalog.pg_attrdef d \
                 WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef) FROM pg_catalog.pg_attribute a"
            ),
            "SELECT CASE WHEN a.atthasdef THEN (SELECT max(pg_get_expr(d.adbin, d.adrelid, true)) \
             FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum) END \
             FROM pg_catalog.pg_attribute a"
        );
    }

    #[test]
    fn outer_column_in_non_equality_is_replaced_by_its_equated_inner_column() {
        assert_eq!(
            rewrite(
                "SELECT (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t \
                 WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) \
                 FROM pg_catalog.pg_attribute a"
            ),
            "SELECT (SELECT max(c.collname) FROM pg_catalog.pg_collation c, pg_catalog.pg_type t \
             WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND c.oid <> t.typcollation) \
             FROM pg_catalog.pg_attribute a"
        );
    }

    #[test]
    fn subqueries_over_user_tables_are_left_alone() {
        let sql = "SELECT (SELECT o.amount FROM orders o WHERE o.id = i.id) FROM items i";
        assert_eq!(rewrite(sql), sql);
    }

    #[test]
    fn array_subquery_becomes_array_agg() {
        assert_eq!(
            rewrite(
                "SELECT ARRAY(SELECT b.rolname FROM pg_catalog.pg_auth_members m \
                 JOIN pg_catalog.pg_roles b ON (m.roleid = b.oid) WHERE m.member = r.oid ORDER BY 1) \
                 FROM pg_catalog.pg_roles r"
            ),
            "SELECT coalesce((SELECT array_agg(b.rolname ORDER BY b.rolname) FROM pg_catalog.pg_auth_members m \
             JOIN pg_catalog.pg_roles b ON (m.roleid = b.oid) WHERE m.member = r.oid), make_array()) \
             FROM pg_catalog.pg_roles r"
        );
    }

    #[test]
    fn options_of_a_foreign_table_become_array_transform() {
        assert_eq!(
            rewrite(
                "SELECT pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.quote_ident(option_name) || ' ' || \
                 pg_catalog.quote_literal(option_value) FROM pg_catalog.pg_options_to_table(ftoptions)), ', ') \
                 FROM pg_catalog.pg_foreign_table f"
            ),
            "SELECT array_to_string(coalesce(array_transform(ftoptions, weir_option -> \
             quote_ident(split_part(weir_option, '=', 1)) || ' ' || \
             quote_literal(substr(weir_option, strpos(weir_option, '=') + 1))), make_array()), ', ') \
             FROM pg_catalog.pg_foreign_table f"
        );
    }

    #[test]
    fn array_of_unnest_becomes_array_transform() {
        assert_eq!(
            rewrite("SELECT array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x) FROM pg_catalog.pg_class tc"),
            "SELECT coalesce(array_transform(tc.reloptions, x -> 'toast.' || x), make_array()) \
             FROM pg_catalog.pg_class tc"
        );
    }

    #[test]
    fn subqueries_in_selects_over_empty_catalogs_become_null() {
        assert_eq!(
            rewrite(
                "SELECT pol.polname, array(select rolname from pg_catalog.pg_roles where oid = any (pol.polroles)) \
                 FROM pg_catalog.pg_policy pol"
            ),
            "SELECT pol.polname, NULL AS \"coalesce\" FROM pg_catalog.pg_policy pol"
        );
        // An aggregate over an empty table still returns a row: nothing is pruned.
        let counted = "SELECT count(*), (SELECT 1) FROM pg_catalog.pg_policy";
        assert_eq!(rewrite(counted), counted);
    }
}
