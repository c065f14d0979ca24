//! Flink's spelling of window table-valued functions, rewritten to Weir's before parsing:
//!
//! ```text
//! TABLE(TUMBLE(TABLE bid, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
//!     -> TUMBLE(bid, date_time, INTERVAL '10' SECOND)
//! TABLE(SESSION(TABLE bid PARTITION BY bidder, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
//!     -> SESSION(bid, date_time, INTERVAL '10' SECOND, bidder)
//! ```
//!
//! sqlparser cannot parse `TABLE name` or `DESCRIPTOR(...)` as arguments, so this works on
//! tokens: anything that does not match the pattern exactly is left alone (and the parser
//! then reports it as usual).

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

const FUNCTIONS: [&str; 4] = ["tumble", "hop", "cumulate", "session"];

fn is_word(token: &Token, word: &str) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

fn significant(token: &Token) -> bool {
    !matches!(token, Token::Whitespace(_))
}

/// Rewrites every Flink-style window call in `tokens`.
pub(crate) fn rewrite_window_tvfs(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if let Some((replacement, next)) = match_call(&tokens, i) {
            out.extend(replacement);
            i = next;
        } else {
            out.push(tokens[i].clone());
            i += 1;
        }
    }
    out
}

/// Indexes of significant tokens from `start`, in order.
fn significant_from(tokens: &[TokenWithSpan], start: usize) -> impl Iterator<Item = usize> + '_ {
    (start..tokens.len()).filter(|&j| significant(&tokens[j].token))
}

/// Matches `TABLE ( FN ( TABLE name [PARTITION BY cols] , DESCRIPTOR ( col ) , rest... ) )`
/// at `start`; returns the rewritten tokens and the index after the match.
fn match_call(tokens: &[TokenWithSpan], start: usize) -> Option<(Vec<TokenWithSpan>, usize)> {
    if !matches!(&tokens[start].token, Token::Word(w) if w.keyword == Keyword::TABLE) {
        return None;
    }
    let mut sig = significant_from(tokens, start + 1);
    let open_outer = sig.next()?;
    if tokens[open_outer].token != Token::LParen {
        return None;
    }
    let function = sig.next()?;
    if !FUNCTIONS.iter().any(|f| is_word(&tokens[function].token, f)) {
        return None;
    }
    let open_call = sig.next()?;
    let inner_table = sig.next()?;
    if tokens[open_call].token != Token::LParen
        || !matches!(&tokens[inner_table].token, Token::Word(w) if w.keyword == Keyword::TABLE)
    {
        return None;
    }
    // The source name: words and dots up to PARTITION or the comma.
    let mut name = Vec::new();
    let mut keys = Vec::new();
    let mut j = sig.next()?;
    while matches!(tokens[j].token, Token::Word(_) | Token::Period) && !is_word(&tokens[j].token, "partition")
    {
        name.push(tokens[j].clone());
        j = sig.next()?;
    }
    if is_word(&tokens[j].token, "partition") {
        let by = sig.next()?;
        if !is_word(&tokens[by].token, "by") {
            return None;
        }
        // The keys run up to the comma before DESCRIPTOR (commas between keys are kept).
        loop {
            j = sig.next()?;
            let before_descriptor = tokens[j].token == Token::Comma
                && significant_from(tokens, j + 1)
                    .next()
                    .is_some_and(|n| is_word(&tokens[n].token, "descriptor"));
            if before_descriptor {
                break;
            }
            keys.push(tokens[j].clone());
        }
    }
    if name.is_empty() || tokens[j].token != Token::Comma {
        return None;
    }
    let descriptor = sig.next()?;
    let open_desc = sig.next()?;
    let column = sig.next()?;
    let close_desc = sig.next()?;
    if !is_word(&tokens[descriptor].token, "descriptor")
        || tokens[open_desc].token != Token::LParen
        || !matches!(tokens[column].token, Token::Word(_))
        || tokens[close_desc].token != Token::RParen
    {
        return None;
    }
    // The remaining arguments, up to the call's closing parenthesis.
    let mut depth = 0;
    let mut rest = Vec::new();
    let mut k = close_desc + 1;
    let close_call = loop {
        let token = tokens.get(k)?;
        match token.token {
            Token::LParen => depth += 1,
            Token::RParen if depth == 0 => break k,
            Token::RParen => depth -= 1,
            _ => {}
        }
        rest.push(token.clone());
        k += 1;
    };
    let close_outer = significant_from(tokens, close_call + 1).next()?;
    if tokens[close_outer].token != Token::RParen {
        return None;
    }
    let comma = || TokenWithSpan::wrap(Token::Comma);
    let space =
        || TokenWithSpan::wrap(Token::Whitespace(datafusion::sql::sqlparser::tokenizer::Whitespace::Space));
    let mut out = vec![tokens[function].clone(), tokens[open_call].clone()];
    out.extend(name);
    out.push(comma());
    out.push(space());
    out.push(tokens[column].clone());
    out.extend(rest);
    if !keys.is_empty() {
        out.push(comma());
        out.push(space());
        out.extend(keys);
    }
    out.push(tokens[close_call].clone());
    Some((out, close_outer + 1))
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    fn rewrite(sql: &str) -> String {
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize_with_location().unwrap();
        super::rewrite_window_tvfs(tokens).iter().map(|t| t.token.to_string()).collect()
    }

    #[test]
    fn rewrites_flink_window_calls() {
        assert_eq!(
            rewrite(
                "SELECT * FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(date_time), INTERVAL '10' SECOND)) AS w"
            ),
            "SELECT * FROM TUMBLE(bid, date_time, INTERVAL '10' SECOND) AS w"
        );
        assert_eq!(
            rewrite("FROM TABLE( HOP( TABLE public.bid, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND ) )"),
            "FROM HOP(public.bid, ts, INTERVAL '2' SECOND, INTERVAL '10' SECOND )"
        );
        assert_eq!(
            rewrite(
                "FROM TABLE(SESSION(TABLE bid PARTITION BY bidder, DESCRIPTOR(ts), INTERVAL '10' SECOND))"
            ),
            "FROM SESSION(bid, ts, INTERVAL '10' SECOND, bidder)"
        );
        // Anything else is left for the parser.
        assert_eq!(rewrite("SELECT * FROM TABLE(foo(1))"), "SELECT * FROM TABLE(foo(1))");
        assert_eq!(rewrite("CREATE TABLE t (a INT)"), "CREATE TABLE t (a INT)");
    }
}
