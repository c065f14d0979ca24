//! Renames inside the stored definitions of materialized views and sinks.
//!
//! A view's running job reads tables, views and sources by id, and its stored JobGraph is
//! what restarts it, so a rename never changes what a view computes. Its definition, though,
//! is kept as SQL text (for `pg_get_viewdef`, `\d+`, `information_schema.views`), and that
//! text must name the objects as they are called now, as Postgres' deparsed definitions do.
//!
//! The text is parsed, the references to the renamed relation or column are replaced in
//! the syntax tree, and the tree is printed again. This is done only when it is certainly
//! right: every occurrence of the old name in the text must be one of the references
//! replaced (not an alias, a CTE, a function or another relation's column of that name),
//! and the new name must not occur in the text at all. Otherwise the rename is refused,
//! saying which definition is in the way, rather than leaving a definition that means
//! something else.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use weir_planner::normalize_ident;
use weir_planner::sqlparser::ast::{
    visit_expressions_mut, visit_relations_mut, Expr, Ident, ObjectNamePart, Statement,
};
use weir_planner::sqlparser::dialect::PostgreSqlDialect;
use weir_planner::sqlparser::parser::Parser;
use weir_planner::sqlparser::tokenizer::{Token, Tokenizer, Word};

use crate::pg_catalog::quote_ident;

/// What is renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renamed {
    /// A table, view or source: `FROM old`, `old.column`, `TUMBLE(old, ...)`.
    Relation,
    /// A column of one relation the definition reads: `old`, `relation.old`.
    Column,
}

/// `sql` with `old` renamed to `new`, or why that cannot be done with certainty.
/// `other_columns`: the column names of the relations the definition reads, except a
/// renamed column itself (a column of another relation with the old name would be renamed
/// too, so it refuses).
pub fn rename_in_definition(
    sql: &str,
    what: Renamed,
    old: &str,
    new: &str,
    other_columns: &BTreeSet<String>,
) -> Result<String, String> {
    let occurrences = |text: &str, name: &str| -> Result<usize, String> {
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, text)
            .tokenize()
            .map_err(|e| format!("its definition cannot be read again: {e}"))?;
        Ok(tokens.iter().filter(|t| matches!(t, Token::Word(w) if word_name(w) == name)).count())
    };
    let before = occurrences(sql, old)?;
    if before == 0 {
        return Ok(sql.to_string());
    }
    if occurrences(sql, new)? > 0 {
        return Err(format!("its definition already uses the name \"{new}\""));
    }
    if other_columns.contains(old) {
        return Err(format!("a column of another relation it reads is named \"{old}\""));
    }
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|e| format!("its definition cannot be parsed again: {e}"))?;
    let (Some(mut statement), 1) = (statements.pop(), statements.len() + 1) else {
        return Err("its definition is not one query".into());
    };
    if !matches!(statement, Statement::Query(_)) {
        return Err("its definition is not a query".into());
    }
    // Quoted as Postgres prints names.
    let replacement = match quote_ident(new) == new {
        true => Ident::new(new),
        false => Ident::with_quote('"', new),
    };
    let is_old = |ident: &Ident| normalize_ident(ident) == old;
    let mut replaced = 0usize;
    if what == Renamed::Relation {
        let _ = visit_relations_mut(&mut statement, |name| {
            if let Some(ObjectNamePart::Identifier(ident)) = name.0.last_mut() {
                if is_old(ident) {
                    *ident = replacement.clone();
                    replaced += 1;
                }
            }
            ControlFlow::<()>::Continue(())
        });
    }
    let _ = visit_expressions_mut(&mut statement, |expr| {
        match expr {
            // A bare name is a column, or a relation only as a window TVF's argument.
            Expr::Identifier(ident) if is_old(ident) => {
                *ident = replacement.clone();
                replaced += 1;
            }
            Expr::CompoundIdentifier(parts) => {
                // `relation.column` (or `schema.relation.column`).
                let at = match what {
                    Renamed::Column => parts.len().checked_sub(1),
                    Renamed::Relation => parts.len().checked_sub(2),
                };
                if let Some(ident) = at.and_then(|i| parts.get_mut(i)).filter(|ident| is_old(ident)) {
                    *ident = replacement.clone();
                    replaced += 1;
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    let text = statement.to_string();
    if replaced != before || occurrences(&text, old)? != 0 {
        return Err(format!("its definition uses the name \"{old}\" for something else too"));
    }
    Ok(text)
}

/// A word of the query as the name it stands for (unquoted words fold to lower case).
pub fn word_name(word: &Word) -> String {
    match word.quote_style {
        Some(_) => word.value.clone(),
        None => word.value.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_relation_is_renamed_where_it_is_read_and_qualifies() {
        let sql = "SELECT t.id, sum(b) AS total FROM t JOIN u ON t.id = u.id GROUP BY t.id";
        let out =
            rename_in_definition(sql, Renamed::Relation, "t", "orders", &columns(&["id", "b"])).unwrap();
        assert_eq!(
            out,
            "SELECT orders.id, sum(b) AS total FROM orders JOIN u ON orders.id = u.id GROUP BY orders.id"
        );
    }

    #[test]
    fn a_column_is_renamed_bare_and_qualified() {
        let sql = "SELECT id, a FROM t WHERE t.a > 1 ORDER BY a";
        let out = rename_in_definition(sql, Renamed::Column, "a", "b2", &columns(&["id"])).unwrap();
        assert_eq!(out, "SELECT id, b2 FROM t WHERE t.b2 > 1 ORDER BY b2");
    }

    #[test]
    fn a_definition_without_the_name_is_kept_as_is() {
        let sql = "SELECT count(*) FROM t";
        assert_eq!(rename_in_definition(sql, Renamed::Column, "a", "b", &columns(&[])).unwrap(), sql);
    }

    #[test]
    fn ambiguous_definitions_are_refused() {
        // The old name is also an output alias.
        let err = rename_in_definition("SELECT x AS a, a FROM t", Renamed::Column, "a", "b", &columns(&[]));
        assert!(err.unwrap_err().contains("something else"));
        // The new name is already used.
        let err = rename_in_definition("SELECT a, b FROM t", Renamed::Column, "a", "b", &columns(&[]));
        assert!(err.unwrap_err().contains("already uses"));
        // Another relation has a column of that name.
        let err = rename_in_definition("SELECT a FROM t, u", Renamed::Column, "a", "c", &columns(&["a"]));
        assert!(err.unwrap_err().contains("another relation"));
        // A table alias with the old name.
        let err =
            rename_in_definition("SELECT t.x FROM u AS t", Renamed::Relation, "t", "v", &columns(&["x"]));
        assert!(err.is_err(), "{err:?}");
    }
}
