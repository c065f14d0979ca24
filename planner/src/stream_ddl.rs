//! Weir's streaming DDL: `CREATE SOURCE`, `CREATE SINK`, `DROP SOURCE`, `DROP SINK`, and the
//! `EMIT ON WINDOW CLOSE` clause of a materialized view. sqlparser does not know these, so
//! they are parsed here with its token-level API, reusing its column-definition, expression
//! and query parsers for the parts that are standard SQL.
//!
//! `WITH (...)` options follow RisingWave: keys may be dotted (`nexmark.table.type`) or
//! quoted, values are string literals or numbers.

use std::collections::BTreeMap;

use datafusion::sql::sqlparser::ast::{
    ColumnDef as SqlColumnDef, DataType, Expr, FunctionArguments, Ident, ObjectName, Query, TimezoneInfo,
    VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;
use weir_plan::catalog::{ColumnDef, SourceDef, Watermark};

use crate::create_table::{normalize_ident, split_name};
use crate::error::{sqlstate, SqlError, SqlResult};

#[derive(Debug, Clone)]
pub struct CreateSource {
    pub name: ObjectName,
    pub if_not_exists: bool,
    pub columns: Vec<SqlColumnDef>,
    /// `WATERMARK FOR column AS expr`.
    pub watermark: Option<(Ident, Expr)>,
    /// `name AS expr` computed columns: the index in `columns` (where a `timestamptz`
    /// column of that name stands) and the expression. Only `PROCTIME()` is accepted, when
    /// planned.
    pub computed: Vec<(usize, Expr)>,
    pub options: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct CreateSink {
    pub name: ObjectName,
    pub if_not_exists: bool,
    pub query: Box<Query>,
    pub emit_on_window_close: bool,
    pub options: Vec<(String, String)>,
}

/// `DROP SOURCE` / `DROP SINK`.
#[derive(Debug, Clone)]
pub struct DropStream {
    pub sink: bool,
    pub if_exists: bool,
    pub names: Vec<ObjectName>,
    pub cascade: bool,
}

fn word_is(token: &Token, word: &str) -> bool {
    matches!(token, Token::Word(w) if w.value.eq_ignore_ascii_case(word) && w.quote_style.is_none())
}

/// Whether the parser stands at `CREATE SOURCE`, `CREATE SINK`, `DROP SOURCE` or `DROP SINK`.
pub(crate) fn starts_stream_ddl(parser: &Parser<'_>) -> bool {
    let first = parser.peek_nth_token(0).token;
    let second = parser.peek_nth_token(1).token;
    (word_is(&first, "create") || word_is(&first, "drop"))
        && (word_is(&second, "source") || word_is(&second, "sink"))
}

pub(crate) enum StreamDdl {
    CreateSource(Box<CreateSource>),
    CreateSink(Box<CreateSink>),
    Drop(DropStream),
}

pub(crate) fn parse_stream_ddl(parser: &mut Parser<'_>) -> Result<StreamDdl, ParserError> {
    let create = word_is(&parser.next_token().token, "create");
    let sink = word_is(&parser.next_token().token, "sink");
    if !create {
        let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        let names = parser.parse_comma_separated(|p| p.parse_object_name(false))?;
        let cascade = parser.parse_keyword(Keyword::CASCADE);
        if !cascade {
            let _ = parser.parse_keyword(Keyword::RESTRICT);
        }
        return Ok(StreamDdl::Drop(DropStream { sink, if_exists, names, cascade }));
    }
    let if_not_exists = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = parser.parse_object_name(false)?;
    if sink {
        if !parser.parse_keyword(Keyword::AS) {
            return parser.expected("AS followed by a query", parser.peek_token());
        }
        // `... FROM t WITH (...)` would parse as table hints, so the statement is split at
        // its last top-level `WITH (` first: the query before it, the options after.
        let mut tokens = Vec::new();
        let mut depth = 0i32;
        loop {
            let token = parser.peek_token();
            match token.token {
                Token::EOF => break,
                Token::SemiColon if depth == 0 => break,
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                _ => {}
            }
            tokens.push(parser.next_token());
        }
        let mut depth = 0i32;
        let mut split = None;
        for (i, token) in tokens.iter().enumerate() {
            match &token.token {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                Token::Word(w) if depth == 0 && w.keyword == Keyword::WITH => {
                    if matches!(tokens.get(i + 1).map(|t| &t.token), Some(Token::LParen)) {
                        split = Some(i);
                    }
                }
                _ => {}
            }
        }
        let Some(split) = split else {
            return parser
                .expected("WITH (connector = '...', ...) after the sink's query", parser.peek_token());
        };
        let options_tokens = tokens.split_off(split);
        let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
        let mut query_parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
        let query = query_parser.parse_query()?;
        query_parser.expect_token(&Token::EOF)?;
        let mut options_parser = Parser::new(&dialect).with_tokens_with_locations(options_tokens);
        let options = parse_with_options(&mut options_parser)?;
        options_parser.expect_token(&Token::EOF)?;
        // `EMIT ON WINDOW CLOSE` was taken out of the tokens before parsing (see `parser.rs`).
        return Ok(StreamDdl::CreateSink(Box::new(CreateSink {
            name,
            if_not_exists,
            query,
            emit_on_window_close: false,
            options,
        })));
    }
    parser.expect_token(&Token::LParen)?;
    let mut columns = Vec::new();
    let mut watermark = None;
    let mut computed = Vec::new();
    loop {
        if word_is(&parser.peek_token().token, "watermark")
            && !matches!(parser.peek_nth_token(1).token, Token::Word(ref w) if !w.value.eq_ignore_ascii_case("for"))
        {
            parser.next_token();
            parser.expect_keyword(Keyword::FOR)?;
            if watermark.is_some() {
                return Err(ParserError::ParserError("a source takes one WATERMARK FOR clause".into()));
            }
            let column = parser.parse_identifier()?;
            parser.expect_keyword(Keyword::AS)?;
            watermark = Some((column, parser.parse_expr()?));
        } else if matches!(parser.peek_nth_token(0).token, Token::Word(_))
            && matches!(parser.peek_nth_token(1).token, Token::Word(ref w) if w.keyword == Keyword::AS)
        {
            // `proc_time AS PROCTIME()`: a column the source computes.
            let name = parser.parse_identifier()?;
            parser.expect_keyword(Keyword::AS)?;
            let expr = parser.parse_expr()?;
            computed.push((columns.len(), expr));
            columns.push(SqlColumnDef {
                name,
                data_type: DataType::Timestamp(None, TimezoneInfo::WithTimeZone),
                options: Vec::new(),
            });
        } else {
            columns.push(parser.parse_column_def()?);
        }
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    parser.expect_token(&Token::RParen)?;
    let options = parse_with_options(parser)?;
    Ok(StreamDdl::CreateSource(Box::new(CreateSource {
        name,
        if_not_exists,
        columns,
        watermark,
        computed,
        options,
    })))
}

/// `WITH (key = 'value', ...)`; keys are lower-cased unless quoted.
fn parse_with_options(parser: &mut Parser<'_>) -> Result<Vec<(String, String)>, ParserError> {
    if !parser.parse_keyword(Keyword::WITH) {
        return parser.expected("WITH (connector = '...', ...)", parser.peek_token());
    }
    parser.expect_token(&Token::LParen)?;
    let mut options = Vec::new();
    loop {
        let mut key = String::new();
        loop {
            let token = parser.next_token();
            match token.token {
                Token::Word(w) if w.quote_style.is_some() => key.push_str(&w.value),
                Token::Word(w) => key.push_str(&w.value.to_ascii_lowercase()),
                Token::SingleQuotedString(s) => key.push_str(&s),
                _ => return parser.expected("an option name", token),
            }
            if !parser.consume_token(&Token::Period) {
                break;
            }
            key.push('.');
        }
        parser.expect_token(&Token::Eq)?;
        let token = parser.next_token();
        let value = match token.token {
            Token::SingleQuotedString(s) => s,
            Token::Number(n, _) => n,
            Token::Word(w) => w.value,
            _ => return parser.expected("an option value in single quotes", token),
        };
        options.push((key, value));
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    parser.expect_token(&Token::RParen)?;
    Ok(options)
}

/// Options as a map without `connector`, rejecting duplicates; returns (connector, options).
pub fn split_connector(options: &[(String, String)]) -> SqlResult<(String, BTreeMap<String, String>)> {
    let mut map = BTreeMap::new();
    for (key, value) in options {
        if map.insert(key.clone(), value.clone()).is_some() {
            return Err(SqlError::new(
                sqlstate::SYNTAX_ERROR,
                format!("option \"{key}\" specified more than once"),
            ));
        }
    }
    let connector = map.remove("connector").ok_or_else(|| {
        SqlError::new(sqlstate::INVALID_PARAMETER_VALUE, "missing option connector")
            .with_hint("Add WITH (connector = 'file' | 'nexmark' | 'datagen', ...).")
    })?;
    Ok((connector.to_ascii_lowercase(), map))
}

/// A source's rows go from its connector to the views that read it without passing a
/// table's store, which is where a declared `timestamp(3)` rounds its values: a source
/// column declared with fewer than six digits is refused rather than shown with a
/// precision its values do not have.
fn reject_rounding_precisions(columns: &[weir_plan::catalog::ColumnDef]) -> SqlResult<()> {
    use weir_plan::time_precision::MAX_TIME_PRECISION;
    let Some(column) =
        columns.iter().find(|c| c.column_type.time_precision().is_some_and(|p| p < MAX_TIME_PRECISION))
    else {
        return Ok(());
    };
    Err(SqlError::unsupported(format!(
        "source column \"{}\" of type {}: sources do not round values to a declared precision",
        column.name,
        column.column_type.pg_display_name()
    ))
    .with_hint(format!(
        "Declare the column {} and round in the view that reads it, e.g. date_trunc('second', {}).",
        column.column_type.assignment_cast_name(),
        column.name
    )))
}

/// Validates a `CREATE SOURCE` into its catalog definition (id 0, connector options not yet
/// checked: that is the connector's job).
pub fn plan_create_source(stmt: &CreateSource) -> SqlResult<SourceDef> {
    let (schema_name, name) = split_name(&stmt.name)?;
    if stmt.columns.is_empty() {
        return Err(SqlError::unsupported("a source without columns"));
    }
    let (columns, _) = crate::create_table::plan_columns(&stmt.columns, &name, false)?;
    reject_rounding_precisions(&columns)?;
    let proctime_column = plan_proctime_column(&stmt.computed, &columns)?;
    if stmt.columns.len() == stmt.computed.len() {
        return Err(SqlError::unsupported("a source whose only column is its processing time")
            .with_hint("Declare the columns the connector reads besides proc_time AS PROCTIME()."));
    }
    let watermark = match &stmt.watermark {
        None => None,
        Some((column, expr)) => Some(plan_watermark(&columns, column, expr)?),
    };
    if let (Some(w), Some(p)) = (&watermark, proctime_column) {
        if w.column == p {
            return Err(SqlError::unsupported(format!(
                "WATERMARK FOR the processing-time column \"{}\"",
                columns[p].name
            ))
            .with_hint(
                "A watermark tracks event time, a column the rows carry; proc_time AS PROCTIME() is the time \
                 Weir reads them. Declare the watermark on an event-time column.",
            ));
        }
    }
    let (connector, options) = split_connector(&stmt.options)?;
    Ok(SourceDef {
        id: 0,
        schema_name,
        name,
        columns,
        watermark,
        proctime_column,
        connector,
        options,
        created_at: 0,
    })
}

/// The processing-time column among a source's computed columns: one `name AS PROCTIME()`
/// at most; any other computed column is not supported.
fn plan_proctime_column(computed: &[(usize, Expr)], columns: &[ColumnDef]) -> SqlResult<Option<usize>> {
    let mut proctime = None;
    for (index, expr) in computed {
        if !is_proctime_call(expr) {
            return Err(SqlError::unsupported(format!(
                "computed column \"{}\" AS {expr} in CREATE SOURCE",
                columns[*index].name
            ))
            .with_hint(
                "The only computed column a source takes is its processing time, name AS PROCTIME(). \
                 Compute other values in the views that read the source.",
            ));
        }
        if proctime.replace(*index).is_some() {
            return Err(SqlError::unsupported(
                "more than one processing-time column (AS PROCTIME()) in a source",
            )
            .with_hint("Declare one name AS PROCTIME() column; views can copy it under other names."));
        }
    }
    Ok(proctime)
}

/// `PROCTIME()`: the call that names the processing time, in a computed column or
/// `FOR SYSTEM_TIME AS OF`.
pub fn is_proctime_call(expr: &Expr) -> bool {
    matches!(expr, Expr::Function(f)
    if f.name.to_string().eq_ignore_ascii_case("proctime")
        && match &f.args {
            FunctionArguments::None => true,
            FunctionArguments::List(list) => list.args.is_empty(),
            FunctionArguments::Subquery(_) => false,
        })
}

/// Validates `WATERMARK FOR column AS expr` against a table's or source's columns.
pub fn plan_watermark(columns: &[ColumnDef], column: &Ident, expr: &Expr) -> SqlResult<Watermark> {
    let name = normalize_ident(column);
    let index = columns.iter().position(|c| c.name == name).ok_or_else(|| {
        SqlError::new(
            sqlstate::UNDEFINED_COLUMN,
            format!("column \"{name}\" named in WATERMARK FOR does not exist"),
        )
    })?;
    if !matches!(
        columns[index].column_type,
        weir_plan::catalog::ColumnType::Timestamp { .. } | weir_plan::catalog::ColumnType::Timestamptz { .. }
    ) {
        return Err(SqlError::new(
            sqlstate::DATATYPE_MISMATCH,
            format!(
                "WATERMARK FOR column \"{name}\" must be a timestamp, not {}",
                columns[index].column_type.pg_display_name()
            ),
        ));
    }
    let mut positional = expr.clone();
    let mut rewriter = Positional { columns, error: None };
    let _ = positional.visit(&mut rewriter);
    if let Some(e) = rewriter.error {
        return Err(e);
    }
    Ok(Watermark { column: index, expr: expr.to_string(), positional_expr: positional.to_string() })
}

/// Rewrites column names to `_cN`.
struct Positional<'a> {
    columns: &'a [ColumnDef],
    error: Option<SqlError>,
}

impl VisitorMut for Positional<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> std::ops::ControlFlow<()> {
        if let Expr::Identifier(ident) = expr {
            let name = normalize_ident(ident);
            match self.columns.iter().position(|c| c.name == name) {
                Some(i) => *expr = Expr::Identifier(Ident::new(format!("_c{i}"))),
                None => {
                    self.error = Some(SqlError::new(
                        sqlstate::UNDEFINED_COLUMN,
                        format!("column \"{name}\" in the WATERMARK expression does not exist"),
                    ));
                    return std::ops::ControlFlow::Break(());
                }
            }
        }
        std::ops::ControlFlow::Continue(())
    }
}
