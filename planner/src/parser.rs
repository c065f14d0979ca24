//! Parsing: the Postgres dialect of `sqlparser`, with errors turned into Postgres-style
//! `42601 syntax error at or near "..."` carrying the cursor position of the offending token.

use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::error::{SqlError, SqlResult};
use crate::stream_ddl::{
    parse_emit_on_window_close, parse_stream_ddl, starts_stream_ddl, CreateSink, CreateSource, DropStream, StreamDdl,
};

/// A parsed statement. Kept as an enum so Weir's own statements (FLUSH, CREATE SOURCE, ...)
/// can join standard SQL without a second parser pass.
#[derive(Debug, Clone)]
pub enum WeirStatement {
    Sql(Box<Statement>),
    /// `FLUSH`: wait until every acknowledged write is visible in every view.
    Flush,
    /// `[EXPLAIN] CREATE MATERIALIZED VIEW ... EMIT ON WINDOW CLOSE`.
    EmitOnWindowClose(Box<Statement>),
    CreateSource(Box<CreateSource>),
    CreateSink(Box<CreateSink>),
    DropStream(DropStream),
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
        } else if starts_stream_ddl(parser) {
            statements.push(match parse_stream_ddl(parser)? {
                StreamDdl::CreateSource(c) => WeirStatement::CreateSource(Box::new(c)),
                StreamDdl::CreateSink(c) => WeirStatement::CreateSink(Box::new(c)),
                StreamDdl::Drop(d) => WeirStatement::DropStream(d),
            });
        } else {
            let statement = parser.parse_statement()?;
            let creates_view = match &statement {
                Statement::CreateView(_) => true,
                Statement::Explain { statement, .. } => matches!(**statement, Statement::CreateView(_)),
                _ => false,
            };
            if creates_view && parse_emit_on_window_close(parser)? {
                statements.push(WeirStatement::EmitOnWindowClose(Box::new(statement)));
            } else {
                statements.push(WeirStatement::Sql(Box::new(statement)));
            }
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
    fn parses_streaming_ddl() {
        let parsed = parse_sql(
            "CREATE SOURCE bid (auction BIGINT, date_time TIMESTAMP, \
             WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND) \
             WITH (connector = 'nexmark', nexmark.table.type = 'Bid', \"nexmark.event.num\" = 10);
             CREATE MATERIALIZED VIEW v AS SELECT 1 EMIT ON WINDOW CLOSE;
             CREATE SINK s AS SELECT * FROM v WHERE a IN (SELECT 1) WITH (connector = 'blackhole');
             DROP SOURCE IF EXISTS bid CASCADE",
        )
        .unwrap();
        let WeirStatement::CreateSource(source) = &parsed[0] else { panic!("{parsed:?}") };
        assert_eq!(source.columns.len(), 2);
        assert_eq!(source.watermark.as_ref().unwrap().1.to_string(), "date_time - INTERVAL '4' SECOND");
        assert_eq!(
            source.options,
            vec![
                ("connector".to_string(), "nexmark".to_string()),
                ("nexmark.table.type".to_string(), "Bid".to_string()),
                ("nexmark.event.num".to_string(), "10".to_string())
            ]
        );
        assert!(matches!(parsed[1], WeirStatement::EmitOnWindowClose(_)));
        assert!(matches!(parsed[2], WeirStatement::CreateSink(_)));
        assert!(matches!(&parsed[3], WeirStatement::DropStream(d) if d.if_exists && d.cascade && !d.sink));
        let plan = crate::stream_ddl::plan_create_source(source).unwrap();
        assert_eq!(plan.watermark.unwrap().positional_expr, "_c1 - INTERVAL '4' SECOND");
        assert!(parse_sql("CREATE SOURCE s (a INT) WITH (connector = )").is_err());
    }

    #[test]
    fn parses_several_statements() {
        assert_eq!(parse_sql("SELECT 1; SELECT 2;").unwrap().len(), 2);
    }
}
