//! `COMMENT ON TABLE | MATERIALIZED VIEW | COLUMN name IS 'text' | NULL`: comments kept in
//! the catalog and shown where Postgres shows them (`pg_description`, `obj_description`,
//! `col_description`, psql's `\d+` and `\dt+`).

use weir_planner::sqlparser::ast::{CommentObject, ObjectName};
use weir_planner::{normalize_ident, sqlstate, SqlError, SqlResult};

use super::{Context, Outcome};
use crate::engine::DEFAULT_SCHEMA;
use crate::wire::errors::from_storage;

pub fn run(
    cx: &Context<'_>,
    object_type: &CommentObject,
    name: &ObjectName,
    comment: Option<&str>,
) -> SqlResult<Outcome> {
    let parts: Vec<String> = name.0.iter().filter_map(|p| p.as_ident()).map(normalize_ident).collect();
    let store = &cx.engine.store;
    let relation = |schema: &str, relation: &str, kind: &CommentObject| -> SqlResult<(u64, Vec<String>)> {
        let table = store
            .table(schema, relation)
            .map(|t| (t.def().id, t.def().columns.iter().map(|c| c.name.clone()).collect()));
        let view = store
            .view(schema, relation)
            .map(|v| (v.id(), v.relation.columns.iter().map(|c| c.name.clone()).collect()));
        match (kind, table, view) {
            (CommentObject::Table, Some(found), _) | (CommentObject::MaterializedView, _, Some(found)) => {
                Ok(found)
            }
            (CommentObject::Column, Some(found), _) | (CommentObject::Column, None, Some(found)) => Ok(found),
            (CommentObject::Table, None, Some(_)) => {
                Err(SqlError::new(sqlstate::WRONG_OBJECT_TYPE, format!("\"{relation}\" is not a table")))
            }
            (CommentObject::MaterializedView, Some(_), None) => Err(SqlError::new(
                sqlstate::WRONG_OBJECT_TYPE,
                format!("\"{relation}\" is not a materialized view"),
            )),
            _ => Err(SqlError::new(
                sqlstate::UNDEFINED_TABLE,
                format!("relation \"{relation}\" does not exist"),
            )),
        }
    };
    let (object, column) = match object_type {
        CommentObject::Table | CommentObject::MaterializedView => {
            let (schema, name) = match parts.as_slice() {
                [name] => (DEFAULT_SCHEMA.to_string(), name.clone()),
                [schema, name] => (schema.clone(), name.clone()),
                _ => {
                    return Err(SqlError::new(
                        sqlstate::SYNTAX_ERROR,
                        format!("improper relation name: {name}"),
                    ))
                }
            };
            (relation(&schema, &name, object_type)?.0, 0)
        }
        CommentObject::Column => {
            let (schema, table, column) = match parts.as_slice() {
                [table, column] => (DEFAULT_SCHEMA.to_string(), table.clone(), column.clone()),
                [schema, table, column] => (schema.clone(), table.clone(), column.clone()),
                _ => {
                    return Err(SqlError::new(
                        sqlstate::SYNTAX_ERROR,
                        "column name must be qualified: COMMENT ON COLUMN table.column",
                    ))
                }
            };
            let (id, columns) = relation(&schema, &table, object_type)?;
            let position = columns.iter().position(|c| *c == column).ok_or_else(|| {
                SqlError::new(
                    sqlstate::UNDEFINED_COLUMN,
                    format!("column \"{column}\" of relation \"{table}\" does not exist"),
                )
            })?;
            (id, position as i32 + 1)
        }
        other => return Err(SqlError::unsupported(format!("COMMENT ON {other}"))),
    };
    if let Some(owned) = super::access::all_objects(store).into_iter().find(|o| o.id == object) {
        super::access::require_owner(cx, &owned)?;
    }
    // An empty comment removes it, as in Postgres.
    let comment = comment.filter(|c| !c.is_empty());
    store.set_comment(object, column, comment).map_err(from_storage)?;
    Ok(Outcome::Command { tag: "COMMENT", rows: None })
}
