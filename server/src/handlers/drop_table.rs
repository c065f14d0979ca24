//! `DROP TABLE [IF EXISTS] name [, ...]`. All names are checked before anything is dropped,
//! so a failing DROP drops nothing.

use weir_planner::sqlparser::ast::{ObjectName, ObjectType};
use weir_planner::{split_name, sqlstate, SqlError, SqlResult};

use super::{Context, Outcome};
use crate::wire::errors::from_storage;

pub async fn run(
    cx: &Context<'_>,
    object_type: ObjectType,
    if_exists: bool,
    names: &[ObjectName],
    _cascade: bool,
) -> SqlResult<Outcome> {
    if object_type != ObjectType::Table {
        return Err(SqlError::unsupported(format!("DROP {object_type}")));
    }
    let mut to_drop = Vec::new();
    for name in names {
        let (schema, table) = split_name(name)?;
        if cx.engine.store.table(&schema, &table).is_some() {
            to_drop.push((schema, table));
        } else if !if_exists {
            return Err(SqlError::new(
                sqlstate::UNDEFINED_TABLE,
                format!("table \"{table}\" does not exist"),
            ));
        }
    }
    for (schema, table) in to_drop {
        let store = cx.engine.store.clone();
        tokio::task::spawn_blocking(move || store.drop_table(&schema, &table))
            .await
            .map_err(|e| SqlError::internal(format!("drop table task failed: {e}")))?
            .map_err(from_storage)?;
    }
    Ok(Outcome::Command { tag: "DROP TABLE", rows: None })
}
