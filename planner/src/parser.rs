//! Parsing: the Postgres dialect of `sqlparser`, with errors turned into Postgres-style
//! `42601 syntax error at or near "..."` carrying the cursor position of the offending token.

use datafusion::sql::sqlparser::ast::{Expr, Ident, ObjectName, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::error::{SqlError, SqlResult};
use crate::stream_ddl::{
    parse_stream_ddl, starts_stream_ddl, CreateSink, CreateSource, DropStream, StreamDdl,
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
    /// `CREATE TABLE (..., WATERMARK FOR column AS expression)`: an append-only table with
    /// event time.
    CreateTableWithWatermark(Box<(Statement, Ident, Expr)>),
    CreateSource(Box<CreateSource>),
    CreateSink(Box<CreateSink>),
    DropStream(DropStream),
    /// `INJECT FAILURE name`: fails the job of view or sink `name` on its next batch, as an
    /// operator error would (for testing recovery).
    InjectFailure(ObjectName),
    /// `ALTER MATERIALIZED VIEW name SET PARALLELISM { = | TO } n` and the same for
    /// `ALTER SINK`: rescales the job from its latest checkpoint.
    AlterParallelism {
        sink: bool,
        name: ObjectName,
        parallelism: u64,
    },
    /// `GRANT role [, ...] TO member [, ...]` (`grant`) or `REVOKE role [, ...] FROM member
    /// [, ...]`: role membership, which sqlparser does not parse.
    RoleMembership {
        grant: bool,
        roles: Vec<Ident>,
        members: Vec<Ident>,
    },
    /// `ALTER { MATERIALIZED VIEW | VIEW | SOURCE | SINK } name RENAME TO new_name`, and
    /// `RENAME [COLUMN] a TO b` of a materialized view's column.
    AlterRename {
        kind: RenamedKind,
        name: ObjectName,
        target: RenameTarget,
    },
}

/// What `ALTER ... RENAME` names (ALTER TABLE's renames are sqlparser's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenamedKind {
    MaterializedView,
    /// `ALTER VIEW`: Weir's views are all materialized.
    View,
    Source,
    Sink,
}

/// The new name `ALTER ... RENAME` gives.
#[derive(Debug, Clone)]
pub enum RenameTarget {
    /// `RENAME TO new_name`.
    Relation(Ident),
    /// `RENAME [COLUMN] old TO new`.
    Column(Ident, Ident),
}

/// Parses one or more `;`-separated statements.
pub fn parse_sql(sql: &str) -> SqlResult<Vec<WeirStatement>> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| syntax_error(sql, ParserError::TokenizerError(e.to_string())))?;
    if let Some(column) = create_table_proctime_column(&tokens) {
        return Err(SqlError::new(
            crate::error::sqlstate::FEATURE_NOT_SUPPORTED,
            format!("processing-time column \"{column}\" AS PROCTIME() in CREATE TABLE is not supported"),
        )
        .with_hint(
            "A table's rows are stored and updated, so the time they were read is not one value: declare \
             proc_time AS PROCTIME() on a CREATE SOURCE, or join FOR SYSTEM_TIME AS OF PROCTIME().",
        ));
    }
    let (tokens, emits) = take_emit_on_window_close(crate::flink_syntax::rewrite_window_tvfs(tokens));
    let (tokens, watermarks) = take_table_watermarks(tokens);
    let (tokens, system_time) = crate::temporal_syntax::take_system_time(tokens);
    let mut parser = Parser::new(&dialect).with_recursion_limit(200).with_tokens_with_locations(tokens);
    let mut statements =
        parse_statements(&mut parser, &emits, &watermarks).map_err(|e| syntax_error(sql, e))?;
    crate::temporal_syntax::attach(&mut statements, system_time).map_err(|e| syntax_error(sql, e))?;
    Ok(statements)
}

/// A `WATERMARK FOR ...` clause taken out of a `CREATE TABLE` column list (sqlparser does
/// not know it): the token index it stood at, and its tokens.
type TableWatermark = (usize, Vec<TokenWithSpan>);

fn is_word(token: &Token, word: &str) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

/// Removes `, WATERMARK FOR col AS expr` from the column lists of `CREATE TABLE` statements.
fn take_table_watermarks(tokens: Vec<TokenWithSpan>) -> (Vec<TokenWithSpan>, Vec<TableWatermark>) {
    let significant =
        |from: usize| (from..tokens.len()).find(|&j| !matches!(tokens[j].token, Token::Whitespace(_)));
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut found = Vec::new();
    let mut in_create_table = false;
    let mut depth = 0i32;
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i].token;
        if is_word(token, "create") && significant(i + 1).is_some_and(|j| is_word(&tokens[j].token, "table"))
        {
            in_create_table = true;
            depth = 0;
        }
        match token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    in_create_table = false;
                }
            }
            Token::SemiColon => in_create_table = false,
            _ => {}
        }
        let starts_clause = in_create_table
            && depth == 1
            && is_word(token, "watermark")
            && significant(i + 1).is_some_and(|j| is_word(&tokens[j].token, "for"));
        if !starts_clause {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        // The clause runs to the next comma or closing parenthesis of the column list.
        let mut end = i;
        let mut inner = 0i32;
        while end < tokens.len() {
            match tokens[end].token {
                Token::LParen => inner += 1,
                Token::RParen if inner == 0 => break,
                Token::RParen => inner -= 1,
                Token::Comma if inner == 0 => break,
                _ => {}
            }
            end += 1;
        }
        // Drop the comma before it (or, first in the list, the comma after it).
        while matches!(out.last().map(|t| &t.token), Some(Token::Whitespace(_))) {
            out.pop();
        }
        let mut next = end;
        if matches!(out.last().map(|t| &t.token), Some(Token::Comma)) {
            out.pop();
        } else if matches!(tokens.get(end).map(|t| &t.token), Some(Token::Comma)) {
            next = end + 1;
        }
        found.push((out.len(), tokens[i..end].to_vec()));
        i = next;
    }
    (out, found)
}

/// The name of a `name AS PROCTIME()` column in the column list of a `CREATE TABLE`, if any
/// (sqlparser would report a bare syntax error).
fn create_table_proctime_column(tokens: &[TokenWithSpan]) -> Option<String> {
    let significant: Vec<&Token> =
        tokens.iter().map(|t| &t.token).filter(|t| !matches!(t, Token::Whitespace(_))).collect();
    let mut in_create_table = false;
    for (i, window) in significant.windows(5).enumerate() {
        if matches!(window[0], Token::SemiColon) || i == 0 {
            let first = if i == 0 { 0 } else { 1 };
            in_create_table = is_word(window[first], "create") && is_word(window[first + 1], "table");
        }
        if in_create_table
            && matches!(window[0], Token::LParen | Token::Comma)
            && is_word(window[2], "as")
            && is_word(window[3], "proctime")
            && matches!(window[4], Token::LParen)
        {
            if let Token::Word(name) = window[1] {
                return Some(name.value.clone());
            }
        }
    }
    None
}

/// Parses a `WATERMARK FOR column AS expression` clause.
fn parse_table_watermark(tokens: &[TokenWithSpan]) -> Result<(Ident, Expr), ParserError> {
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens.to_vec());
    parser.next_token();
    parser.expect_keyword(Keyword::FOR)?;
    let column = parser.parse_identifier()?;
    parser.expect_keyword(Keyword::AS)?;
    let expr = parser.parse_expr()?;
    parser.expect_token(&Token::EOF)?;
    Ok((column, expr))
}

/// Removes every `EMIT ON WINDOW CLOSE` (outside parentheses) from the tokens and returns
/// the token index each stood at. As a trailing clause it would otherwise parse as an alias
/// (`SELECT * FROM t EMIT ...`); the statement whose tokens span such an index gets it.
fn take_emit_on_window_close(tokens: Vec<TokenWithSpan>) -> (Vec<TokenWithSpan>, Vec<usize>) {
    let words = ["emit", "on", "window", "close"];
    let mut out = Vec::with_capacity(tokens.len());
    let mut emits = Vec::new();
    let mut depth = 0i32;
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i].token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            let significant: Vec<usize> = (i..tokens.len())
                .filter(|&j| !matches!(tokens[j].token, Token::Whitespace(_)))
                .take(words.len())
                .collect();
            let matches = significant.len() == words.len()
                && significant.iter().zip(words).all(|(&j, w)| {
                    matches!(&tokens[j].token, Token::Word(word) if word.quote_style.is_none() && word.value.eq_ignore_ascii_case(w))
                });
            if matches {
                emits.push(out.len());
                i = significant[words.len() - 1] + 1;
                continue;
            }
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    (out, emits)
}

/// sqlparser's statement loop, plus Weir's own statements (`FLUSH`).
fn parse_statements(
    parser: &mut Parser<'_>,
    emits: &[usize],
    watermarks: &[TableWatermark],
) -> Result<Vec<WeirStatement>, ParserError> {
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
        let start = parser.index();
        let emit_here = |end: usize| emits.iter().any(|&e| e > start && e <= end);
        let is_flush = matches!(&next.token, Token::Word(w) if w.value.eq_ignore_ascii_case("flush"))
            && matches!(parser.peek_nth_token(1).token, Token::SemiColon | Token::EOF);
        let is_inject = matches!(&next.token, Token::Word(w) if w.value.eq_ignore_ascii_case("inject"))
            && matches!(&parser.peek_nth_token(1).token, Token::Word(w) if w.value.eq_ignore_ascii_case("failure"));
        let word = |n: usize, word: &str| matches!(&parser.peek_nth_token(n).token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word));
        let alter_view = word(0, "alter") && word(1, "materialized") && word(2, "view");
        let alter_sink = word(0, "alter") && word(1, "sink");
        let alter_plain_view = word(0, "alter") && word(1, "view");
        let alter_source = word(0, "alter") && word(1, "source");
        if is_flush {
            parser.next_token();
            statements.push(WeirStatement::Flush);
        } else if is_role_membership(parser) {
            statements.push(parse_role_membership(parser)?);
        } else if alter_view || alter_sink || alter_plain_view || alter_source {
            for _ in 0..if alter_view { 3 } else { 2 } {
                parser.next_token();
            }
            let name = parser.parse_object_name(false)?;
            let renaming = parser.parse_keyword(Keyword::RENAME);
            if renaming || alter_plain_view || alter_source {
                // ALTER VIEW and ALTER SOURCE only rename.
                if !renaming {
                    parser.expect_keyword(Keyword::RENAME)?;
                }
                let kind = match (alter_view, alter_sink, alter_plain_view) {
                    (true, _, _) => RenamedKind::MaterializedView,
                    (_, true, _) => RenamedKind::Sink,
                    (_, _, true) => RenamedKind::View,
                    _ => RenamedKind::Source,
                };
                let target = match parser.parse_keyword(Keyword::TO) {
                    true => RenameTarget::Relation(parser.parse_identifier()?),
                    false => {
                        let _ = parser.parse_keyword(Keyword::COLUMN);
                        let old = parser.parse_identifier()?;
                        parser.expect_keyword(Keyword::TO)?;
                        RenameTarget::Column(old, parser.parse_identifier()?)
                    }
                };
                statements.push(WeirStatement::AlterRename { kind, name, target });
                expecting_delimiter = true;
                continue;
            }
            parser.expect_keyword(Keyword::SET)?;
            let next = parser.next_token();
            if !is_word(&next.token, "parallelism") {
                return parser.expected(
                    "PARALLELISM (the only setting ALTER MATERIALIZED VIEW and ALTER SINK change)",
                    next,
                );
            }
            if !parser.consume_token(&Token::Eq) {
                parser.expect_keyword(Keyword::TO)?;
            }
            let parallelism = parser.parse_literal_uint()?;
            statements.push(WeirStatement::AlterParallelism { sink: alter_sink, name, parallelism });
        } else if is_inject {
            parser.next_token();
            parser.next_token();
            statements.push(WeirStatement::InjectFailure(parser.parse_object_name(false)?));
        } else if starts_stream_ddl(parser) {
            let ddl = parse_stream_ddl(parser)?;
            let emit = emit_here(parser.index());
            statements.push(match ddl {
                StreamDdl::CreateSource(_) | StreamDdl::Drop(_) if emit => {
                    return Err(ParserError::ParserError("EMIT ON WINDOW CLOSE ends a query".into()))
                }
                StreamDdl::CreateSource(c) => WeirStatement::CreateSource(c),
                StreamDdl::CreateSink(mut c) => {
                    c.emit_on_window_close |= emit;
                    WeirStatement::CreateSink(c)
                }
                StreamDdl::Drop(d) => WeirStatement::DropStream(d),
            });
        } else {
            let statement = parser.parse_statement()?;
            let creates_view = match &statement {
                Statement::CreateView(_) => true,
                Statement::Explain { statement, .. } => matches!(**statement, Statement::CreateView(_)),
                _ => false,
            };
            let end = parser.index();
            let table_watermarks: Vec<&TableWatermark> =
                watermarks.iter().filter(|(at, _)| *at > start && *at <= end).collect();
            if !table_watermarks.is_empty() {
                let (Statement::CreateTable(_), [(_, clause)]) = (&statement, table_watermarks.as_slice())
                else {
                    return Err(ParserError::ParserError("a table takes one WATERMARK FOR clause".into()));
                };
                let (column, expr) = parse_table_watermark(clause)?;
                statements.push(WeirStatement::CreateTableWithWatermark(Box::new((statement, column, expr))));
                expecting_delimiter = true;
                continue;
            }
            let emit = emit_here(end);
            if emit && !creates_view {
                return Err(ParserError::ParserError(
                    "EMIT ON WINDOW CLOSE ends the query of CREATE MATERIALIZED VIEW or CREATE SINK".into(),
                ));
            }
            if emit {
                statements.push(WeirStatement::EmitOnWindowClose(Box::new(statement)));
            } else {
                statements.push(WeirStatement::Sql(Box::new(statement)));
            }
        }
        expecting_delimiter = true;
    }
}

/// Whether the next statement is `GRANT`/`REVOKE` of roles: no `ON` before `TO`/`FROM`
/// (privileges on objects always name them with `ON`).
fn is_role_membership(parser: &Parser<'_>) -> bool {
    let word = |n: usize| match parser.peek_nth_token(n).token {
        Token::Word(w) => Some(w),
        _ => None,
    };
    let grant = match word(0) {
        Some(w) if w.keyword == Keyword::GRANT => true,
        Some(w) if w.keyword == Keyword::REVOKE => false,
        _ => return false,
    };
    for n in 1.. {
        match parser.peek_nth_token(n).token {
            Token::SemiColon | Token::EOF => return false,
            Token::Word(w) if w.keyword == Keyword::ON => return false,
            Token::Word(w) if w.keyword == if grant { Keyword::TO } else { Keyword::FROM } => return n > 1,
            _ => {}
        }
    }
    false
}

fn parse_role_membership(parser: &mut Parser<'_>) -> Result<WeirStatement, ParserError> {
    let grant = parser.parse_keyword(Keyword::GRANT);
    if !grant {
        parser.expect_keyword(Keyword::REVOKE)?;
        if parser.parse_keywords(&[Keyword::ADMIN, Keyword::OPTION, Keyword::FOR]) {
            return Err(ParserError::ParserError("REVOKE ADMIN OPTION FOR is not supported by Weir".into()));
        }
    }
    let roles = parser.parse_comma_separated(|p| p.parse_identifier())?;
    parser.expect_keyword(if grant { Keyword::TO } else { Keyword::FROM })?;
    let members = parser.parse_comma_separated(|p| p.parse_identifier())?;
    if grant && parser.parse_keywords(&[Keyword::WITH, Keyword::ADMIN, Keyword::OPTION]) {
        return Err(ParserError::ParserError("GRANT ... WITH ADMIN OPTION is not supported by Weir".into()));
    }
    if !grant {
        // RESTRICT is the default and CASCADE has nothing to cascade to without ADMIN OPTION.
        let _ = parser.parse_one_of_keywords(&[Keyword::CASCADE, Keyword::RESTRICT]);
    }
    Ok(WeirStatement::RoleMembership { grant, roles, members })
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
    fn role_membership_is_told_from_object_privileges() {
        let parsed = super::parse_sql(
            "GRANT pg_read_server_files, readers TO alice; REVOKE readers FROM alice, bob CASCADE; \
             GRANT SELECT ON t TO alice; REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC",
        )
        .unwrap();
        let [super::WeirStatement::RoleMembership { grant: true, roles, members }, super::WeirStatement::RoleMembership { grant: false, roles: revoked, members: from }, super::WeirStatement::Sql(_), super::WeirStatement::Sql(_)] =
            parsed.as_slice()
        else {
            panic!("parsed as {} statements of other kinds", parsed.len())
        };
        assert_eq!(
            roles.iter().map(|i| i.value.as_str()).collect::<Vec<_>>(),
            ["pg_read_server_files", "readers"]
        );
        assert_eq!(members[0].value, "alice");
        assert_eq!(revoked[0].value, "readers");
        assert_eq!(from.len(), 2);
        assert!(super::parse_sql("GRANT readers TO alice WITH ADMIN OPTION").is_err());
    }

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
    fn alter_parallelism_of_views_and_sinks() {
        let parsed =
            parse_sql("ALTER MATERIALIZED VIEW s.v SET PARALLELISM = 4; alter sink k set parallelism to 1")
                .unwrap();
        let [WeirStatement::AlterParallelism { sink: false, name, parallelism: 4 }, WeirStatement::AlterParallelism { sink: true, parallelism: 1, .. }] =
            parsed.as_slice()
        else {
            panic!("{parsed:?}")
        };
        assert_eq!(name.to_string(), "s.v");
        for bad in [
            "ALTER SINK k SET PARALLELISM = -1",
            "ALTER SINK k SET WIDTH = 2",
            "ALTER MATERIALIZED VIEW v SET PARALLELISM",
        ] {
            assert_eq!(parse_sql(bad).unwrap_err().code, "42601", "{bad}");
        }
        // Other ALTERs are sqlparser's.
        assert!(matches!(
            parse_sql("ALTER TABLE t ADD COLUMN c INT").unwrap().as_slice(),
            [WeirStatement::Sql(_)]
        ));
    }

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
    fn a_source_takes_a_processing_time_column() {
        let parsed = parse_sql(
            "CREATE SOURCE s (id BIGINT, \"Proc\" AS PROCTIME(), ts TIMESTAMP, WATERMARK FOR ts AS ts) \
             WITH (connector = 'datagen')",
        )
        .unwrap();
        let WeirStatement::CreateSource(source) = &parsed[0] else { panic!("{parsed:?}") };
        let def = crate::stream_ddl::plan_create_source(source).unwrap();
        assert_eq!(def.proctime_column, Some(1));
        assert_eq!(def.columns[1].name, "Proc");
        assert_eq!(
            def.columns[1].column_type,
            weir_plan::catalog::ColumnType::Timestamptz { precision: None }
        );
        assert_eq!(def.watermark.as_ref().map(|w| w.column), Some(2));
        assert_eq!(def.connector_schema().fields().len(), 2);

        let refused = |sql: &str| {
            let parsed = parse_sql(sql).unwrap();
            let WeirStatement::CreateSource(source) = &parsed[0] else { panic!("{parsed:?}") };
            crate::stream_ddl::plan_create_source(source).unwrap_err().code
        };
        assert_eq!(refused("CREATE SOURCE s (id BIGINT, x AS id + 1) WITH (connector = 'datagen')"), "0A000");
        assert_eq!(refused("CREATE SOURCE s (p AS PROCTIME()) WITH (connector = 'datagen')"), "0A000");
        assert_eq!(
            refused(
                "CREATE SOURCE s (a INT, p AS PROCTIME(), WATERMARK FOR p AS p) WITH (connector = 'datagen')"
            ),
            "0A000"
        );
        // A source does not round its values to a declared precision; six digits is every value.
        assert_eq!(refused("CREATE SOURCE s (ts TIMESTAMP(3)) WITH (connector = 'datagen')"), "0A000");
        assert_eq!(refused("CREATE SOURCE s (a INT, t TIME(0)) WITH (connector = 'datagen')"), "0A000");
        let six = parse_sql("CREATE SOURCE s (ts TIMESTAMP(6)) WITH (connector = 'datagen')").unwrap();
        let WeirStatement::CreateSource(six) = &six[0] else { panic!("{six:?}") };
        assert!(crate::stream_ddl::plan_create_source(six).is_ok());
        let err = parse_sql("CREATE TABLE t (id INT, proc_time AS PROCTIME())").unwrap_err();
        assert_eq!(err.code, "0A000", "{}", err.message);
        // Not a column list: untouched.
        assert!(parse_sql("CREATE TABLE t AS SELECT 1 AS proctime").is_ok());
    }

    #[test]
    fn parses_streaming_ddl() {
        let parsed = parse_sql(
            "CREATE SOURCE bid (auction BIGINT, date_time TIMESTAMP, \
             WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND) \
             WITH (connector = 'nexmark', nexmark.table.type = 'Bid', \"nexmark.event.num\" = 10);
             CREATE MATERIALIZED VIEW v AS SELECT * FROM t EMIT ON WINDOW CLOSE;
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
        assert!(matches!(&parsed[2], WeirStatement::CreateSink(s) if !s.emit_on_window_close));
        let sink = parse_sql(
            "CREATE SINK s AS SELECT * FROM v EMIT ON WINDOW CLOSE WITH (connector = 'blackhole'); SELECT 1",
        )
        .unwrap();
        assert!(matches!(&sink[0], WeirStatement::CreateSink(s) if s.emit_on_window_close));
        assert!(matches!(&sink[1], WeirStatement::Sql(_)));
        assert!(parse_sql("SELECT 1 EMIT ON WINDOW CLOSE").is_err());
        assert!(matches!(&parsed[3], WeirStatement::DropStream(d) if d.if_exists && d.cascade && !d.sink));
        let plan = crate::stream_ddl::plan_create_source(source).unwrap();
        assert_eq!(plan.watermark.unwrap().positional_expr, "_c1 - INTERVAL '4' SECOND");
        assert!(parse_sql("CREATE SOURCE s (a INT) WITH (connector = )").is_err());
    }

    #[test]
    fn create_table_takes_a_watermark() {
        let parsed = parse_sql(
            "CREATE TABLE t (id INT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND, v INT); \
             CREATE TABLE u (WATERMARK FOR ts AS ts, ts TIMESTAMP); CREATE TABLE plain (a INT)",
        )
        .unwrap();
        let WeirStatement::CreateTableWithWatermark(create) = &parsed[0] else { panic!("{parsed:?}") };
        let (table, column, expr) = create.as_ref();
        assert_eq!(table.to_string(), "CREATE TABLE t (id INT, ts TIMESTAMP, v INT)");
        assert_eq!((column.value.as_str(), expr.to_string().as_str()), ("ts", "ts - INTERVAL '1' SECOND"));
        assert!(matches!(&parsed[1], WeirStatement::CreateTableWithWatermark(t)
            if t.0.to_string() == "CREATE TABLE u (ts TIMESTAMP)"));
        assert!(matches!(&parsed[2], WeirStatement::Sql(_)));
        assert!(parse_sql("CREATE TABLE t (ts TIMESTAMP, WATERMARK FOR ts AS ts, WATERMARK FOR ts AS ts)")
            .is_err());
    }

    #[test]
    fn parses_several_statements() {
        assert_eq!(parse_sql("SELECT 1; SELECT 2;").unwrap().len(), 2);
    }
}
