//! `FOR SYSTEM_TIME AS OF ...` after a table in `FROM` (a temporal, or lookup, join in Flink
//! and RisingWave). sqlparser's Postgres dialect does not parse table versions, so the clause
//! is taken out of the token stream before parsing and put back afterwards as the table
//! factor's `version` (which is where other dialects keep it, and how the statement prints).
//!
//! ```text
//! ... JOIN customers FOR SYSTEM_TIME AS OF PROCTIME() AS c ON ...     (Flink's order)
//! ... JOIN customers c FOR SYSTEM_TIME AS OF PROCTIME() ON ...        (how sqlparser prints it)
//! ```
//!
//! The clause's expression is a name (`o.proc_time`) or a call (`PROCTIME()`): dotted words,
//! optionally followed by one parenthesized group. Whether it is one Weir can maintain is
//! decided when the view is planned ([`crate::stream_plan`]).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, ObjectNamePart, TableFactor, TableVersion, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Span, Token, TokenWithSpan};

use crate::parser::WeirStatement;

/// One `FOR SYSTEM_TIME AS OF expr` taken out: the span of the word before it (the table's
/// name or alias) and the expression's tokens.
#[derive(Debug)]
pub(crate) struct SystemTimeClause {
    table_span: Span,
    expr: Vec<TokenWithSpan>,
}

fn keyword_at(tokens: &[TokenWithSpan], i: usize, keyword: Keyword) -> bool {
    matches!(tokens.get(i), Some(TokenWithSpan { token: Token::Word(w), .. }) if w.keyword == keyword)
}

/// Index of the next non-whitespace token at or after `i`.
fn skip_space(tokens: &[TokenWithSpan], mut i: usize) -> usize {
    while matches!(tokens.get(i), Some(TokenWithSpan { token: Token::Whitespace(_), .. })) {
        i += 1;
    }
    i
}

/// Removes every `FOR SYSTEM_TIME AS OF expr` that follows a word; anything else is left for
/// the parser to report.
pub(crate) fn take_system_time(tokens: Vec<TokenWithSpan>) -> (Vec<TokenWithSpan>, Vec<SystemTimeClause>) {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut clauses = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if let Some((clause, next)) = match_clause(&tokens, i, &out) {
            clauses.push(clause);
            i = next;
        } else {
            out.push(tokens[i].clone());
            i += 1;
        }
    }
    (out, clauses)
}

/// Matches `FOR SYSTEM_TIME AS OF expr` at `start`, preceded (in `before`) by a word.
fn match_clause(
    tokens: &[TokenWithSpan],
    start: usize,
    before: &[TokenWithSpan],
) -> Option<(SystemTimeClause, usize)> {
    if !keyword_at(tokens, start, Keyword::FOR) {
        return None;
    }
    let mut i = start + 1;
    for keyword in [Keyword::SYSTEM_TIME, Keyword::AS, Keyword::OF] {
        i = skip_space(tokens, i);
        if !keyword_at(tokens, i, keyword) {
            return None;
        }
        i += 1;
    }
    let table = before.iter().rev().find(|t| !matches!(t.token, Token::Whitespace(_)))?;
    if !matches!(table.token, Token::Word(_)) {
        return None;
    }
    // Dotted words, then at most one parenthesized group.
    let mut expr = Vec::new();
    loop {
        i = skip_space(tokens, i);
        let word = tokens.get(i).filter(|t| matches!(t.token, Token::Word(_)))?;
        expr.push(word.clone());
        i += 1;
        if !matches!(tokens.get(i), Some(TokenWithSpan { token: Token::Period, .. })) {
            break;
        }
        expr.push(tokens[i].clone());
        i += 1;
    }
    let open = skip_space(tokens, i);
    if matches!(tokens.get(open), Some(TokenWithSpan { token: Token::LParen, .. })) {
        let mut depth = 0usize;
        let mut j = open;
        loop {
            let token = tokens.get(j)?;
            match token.token {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                Token::EOF => return None,
                _ => {}
            }
            expr.push(token.clone());
            j += 1;
            if depth == 0 {
                break;
            }
        }
        i = j;
    }
    Some((SystemTimeClause { table_span: table.span, expr }, i))
}

/// Puts each clause back on the table factor it followed.
pub(crate) fn attach(
    statements: &mut [WeirStatement],
    clauses: Vec<SystemTimeClause>,
) -> Result<(), ParserError> {
    if clauses.is_empty() {
        return Ok(());
    }
    let mut versions = Vec::with_capacity(clauses.len());
    for clause in clauses {
        let mut parser = Parser::new(&PostgreSqlDialect {}).with_tokens_with_locations(clause.expr);
        versions.push((clause.table_span, Some(parser.parse_expr()?)));
    }
    let mut attacher = Attacher { versions };
    for statement in statements.iter_mut() {
        let _ = match statement {
            WeirStatement::Sql(s) | WeirStatement::EmitOnWindowClose(s) => s.visit(&mut attacher),
            WeirStatement::CreateSink(sink) => sink.query.visit(&mut attacher),
            _ => ControlFlow::Continue(()),
        };
    }
    if attacher.versions.iter().any(|(_, expr)| expr.is_some()) {
        return Err(ParserError::ParserError(
            "FOR SYSTEM_TIME AS OF must follow a table name (or its alias) in FROM".into(),
        ));
    }
    Ok(())
}

struct Attacher {
    /// Each clause's table span and its expression, taken once attached.
    versions: Vec<(Span, Option<Expr>)>,
}

impl VisitorMut for Attacher {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, alias, version, .. } = factor {
            let name_span = name.0.last().and_then(ObjectNamePart::as_ident).map(|i| i.span);
            let alias_span = alias.as_ref().map(|a| a.name.span);
            for (span, expr) in &mut self.versions {
                if Some(*span) == name_span || Some(*span) == alias_span {
                    if let Some(expr) = expr.take() {
                        *version = Some(TableVersion::ForSystemTimeAsOf(expr));
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::ast::{SetExpr, Statement};

    use crate::parser::{parse_sql, WeirStatement};

    fn version_of_join(sql: &str) -> String {
        let statements = parse_sql(sql).unwrap();
        let WeirStatement::Sql(statement) = &statements[0] else { panic!("not SQL") };
        let Statement::Query(query) = statement.as_ref() else { panic!("not a query") };
        let SetExpr::Select(select) = query.body.as_ref() else { panic!("not a select") };
        select.from[0].joins[0].relation.to_string()
    }

    #[test]
    fn clause_moves_onto_the_table_in_either_order() {
        assert_eq!(
            version_of_join(
                "SELECT * FROM o JOIN customers FOR SYSTEM_TIME AS OF PROCTIME() AS c ON o.k = c.id"
            ),
            "customers AS c FOR SYSTEM_TIME AS OF PROCTIME()"
        );
        assert_eq!(
            version_of_join(
                "SELECT * FROM o JOIN customers c FOR SYSTEM_TIME AS OF o.proc_time ON o.k = c.id"
            ),
            "customers c FOR SYSTEM_TIME AS OF o.proc_time"
        );
        // Printed and parsed again, it is the same.
        let printed =
            "SELECT * FROM o LEFT JOIN customers AS c FOR SYSTEM_TIME AS OF PROCTIME() ON o.k = c.id";
        assert_eq!(version_of_join(printed), "customers AS c FOR SYSTEM_TIME AS OF PROCTIME()");
    }

    #[test]
    fn clause_anywhere_else_is_an_error() {
        assert!(parse_sql("SELECT * FROM (SELECT 1) FOR SYSTEM_TIME AS OF PROCTIME()").is_err());
        assert!(parse_sql("SELECT 1 FOR SYSTEM_TIME AS OF PROCTIME()").is_err());
    }
}
