//! Parsing: the Postgres dialect of `sqlparser`, with errors turned into Postgres-style
//! `42601 syntax error at or near "..."` carrying the cursor position of the offending token.

use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::error::{SqlError, SqlResult};

/// A parsed statement. Kept as an enum so Weir's own statements (FLUSH, CREATE SOURCE, ...)
/// can join standard SQL without a second parser pass.
#[derive(Debug, Clone)]
pub enum WeirStatement {
    Sql(Box<Statement>),
    /// `FLUSH`: wait until every acknowledged write is visible in every view.
    Flush,
}

/// Parses one or more `;`-separated statements.
pub fn parse_sql(sql: &str) -> SqlResult<Vec<WeirStatement>> {
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(200)
        .try_with_sql(sql)
        .map_err(|e| syntax_error(sql, e))?;
    parse_statements(&mut parser).map_err(|e| syntax_error(sql, e))
}

/// sqlparser's statement loop, plus Weir's own statements (`FLUSH`).
fn parse_statements(parser: &mut Parser<'_>) -> Result<Vec<WeirStatement>, ParserError> {
    let mut statements = Vec::new();
    let mut expecting_delimiter = false;
    loop {
        while parser.consume_token(&Token::SemiColon) {
            expecting_delimiter = false;
        }
        let next = parser.peek_token();
        if next.token == Token::EOF {
            return Ok(statements);
        }
        if expecting_delimiter {
            return parser.expected("end of statement", next);
        }
        let is_flush = matches!(&next.token, Token::Word(w) if w.value.eq_ignore_ascii_case("flush"))
            && matches!(parser.peek_nth_token(1).token, Token::SemiColon | Token::EOF);
        if is_flush {
            parser.next_token();
            statements.push(WeirStatement::Flush);
        } else {
            statements.push(WeirStatement::Sql(Box::new(parser.parse_statement()?)));
        }
        expecting_delimiter = true;
    }
}

fn syntax_error(sql: &str, e: ParserError) -> SqlError {
    let raw = match &e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m.clone(),
        ParserError::RecursionLimitExceeded => {
            return SqlError::new(crate::sqlstate::SYNTAX_ERROR, "statement is nested too deeply")
        }
    };
    let (text, position) = split_location(sql, &raw);
    let near = text.rsplit_once("found: ").map(|(_, tok)| tok.trim().to_string()).filter(|t| !t.is_empty());
    let message = match near.as_deref() {
        Some("EOF") => "syntax error at end of input".to_string(),
        Some(tok) => format!("syntax error at or near \"{tok}\""),
        None => format!("syntax error: {text}"),
    };
    let mut err = SqlError::syntax(message).with_detail(text);
    if let Some(p) = position {
        err = err.with_position(p);
    }
    err
}

/// Splits sqlparser's "... at Line: L, Column: C" suffix off a message and converts the
/// location into Postgres' 1-based character position.
fn split_location(sql: &str, message: &str) -> (String, Option<usize>) {
    let Some(idx) = message.rfind(" at Line: ") else { return (message.to_string(), None) };
    let (text, loc) = message.split_at(idx);
    let mut nums = loc
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse::<usize>().ok());
    let (Some(line), Some(column)) = (nums.next(), nums.next()) else {
        return (text.to_string(), None);
    };
    let mut position = 0;
    for (i, l) in sql.split('\n').enumerate() {
        if i + 1 == line {
            return (text.to_string(), Some(position + column));
        }
        position += l.chars().count() + 1;
    }
    (text.to_string(), None)
}

#[cfg(test)]
mod tests {
    #[test]
    fn flush_is_a_statement_of_its_own() {
        let parsed = super::parse_sql("INSERT INTO t VALUES (1); flush ; SELECT 1").unwrap();
        assert!(matches!(
            parsed.as_slice(),
            [super::WeirStatement::Sql(_), super::WeirStatement::Flush, super::WeirStatement::Sql(_)]
        ));
        assert!(super::parse_sql("FLUSH x").is_err());
    }

    use super::*;

    #[test]
    fn syntax_error_names_token_and_position() {
        let err = parse_sql("SELECT * FORM t").unwrap_err();
        assert_eq!(err.code, "42601");
        assert_eq!(err.message, "syntax error at or near \"t\"");
        assert_eq!(err.details.position, Some(15));
    }

    #[test]
    fn position_counts_lines() {
        let err = parse_sql("SELECT 1;\nSELEC 2").unwrap_err();
        assert_eq!(err.details.position, Some(11));
    }

    #[test]
    fn parses_several_statements() {
        assert_eq!(parse_sql("SELECT 1; SELECT 2;").unwrap().len(), 2);
    }
}
