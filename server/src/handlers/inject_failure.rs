//! `INJECT FAILURE name`: a testing statement that makes the job of a materialized view or
//! sink fail on its next batch, through the path an operator error takes, so recovery from
//! the latest checkpoint can be exercised end to end.

use weir_planner::sqlparser::ast::ObjectName;
use weir_planner::{split_name, sqlstate, SqlError, SqlResult};

use super::{Context, Outcome};

/// `INJECT FAILURE name`: the job of view or sink `name` fails on its next batch, through
/// the path an operator error takes, and restarts from its latest checkpoint.
pub async fn run(cx: &Context<'_>, name: &ObjectName) -> SqlResult<Outcome> {
    let (schema, relation) = split_name(name)?;
    let store = &cx.engine.store;
    let id = store
        .view(&schema, &relation)
        .map(|v| v.id())
        .or_else(|| store.sink(&schema, &relation).map(|s| s.id));
    let Some(id) = id else {
        return Err(SqlError::new(
            sqlstate::UNDEFINED_TABLE,
            format!("materialized view or sink \"{relation}\" does not exist"),
        ));
    };
    cx.engine.jobs.inject_failure(id).await.map_err(|e| SqlError::new("55000", e.to_string()))?;
    Ok(Outcome::Command { tag: "INJECT FAILURE", rows: None })
}
