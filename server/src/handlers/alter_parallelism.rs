//! `ALTER MATERIALIZED VIEW name SET PARALLELISM = n` and `ALTER SINK name SET PARALLELISM = n`:
//! rescale a running job from its latest checkpoint, by key-group ranges.
//!
//! The job's keyed vertices take the new parallelism; its source readers keep theirs (their
//! splits and offsets belong to them) and single-subtask vertices stay single (see
//! `weir_executor::job_manager::rescale`). The new graph is written to the catalog first,
//! then the JobManager stops the job and deploys it again: a crash in between finds the new
//! graph and a checkpoint of the old layout, which restores into it the same way. The
//! statement returns once the rescaled job has committed its first epoch.
//!
//! A view that other views read cannot be rescaled: their readers of it run at its
//! parallelism.

use weir_executor::job_manager::rescale::rescaled_graph;
use weir_planner::sqlparser::ast::ObjectName;
use weir_planner::{split_name, sqlstate, SqlError, SqlResult};

use super::{Context, Outcome};
use crate::wire::errors::{from_exec, from_storage};

pub async fn run(cx: &Context<'_>, sink: bool, name: &ObjectName, parallelism: u64) -> SqlResult<Outcome> {
    let (schema, relation) = split_name(name)?;
    let store = &cx.engine.store;
    let what = if sink { "sink" } else { "materialized view" };
    let (id, graph) = match sink {
        true => store.sink(&schema, &relation).map(|s| (s.id, s.job_graph)),
        false => store.view(&schema, &relation).map(|v| (v.id(), v.job_graph)),
    }
    .ok_or_else(|| {
        SqlError::new(sqlstate::UNDEFINED_TABLE, format!("{what} \"{relation}\" does not exist"))
    })?;
    super::access::require_owner_of(cx, &schema, &relation)?;
    let max = weir_plan::KEY_GROUPS as u64;
    if !(1..=max).contains(&parallelism) {
        return Err(SqlError::new("22023", format!("parallelism {parallelism} is out of range"))
            .with_hint(format!("the parallelism is a whole number from 1 to {max}")));
    }
    let readers: Vec<String> = store
        .views()
        .into_iter()
        .filter(|v| v.depends_on.contains(&id))
        .map(|v| format!("materialized view \"{}\"", v.relation.name))
        .chain(
            store
                .sinks()
                .into_iter()
                .filter(|s| s.depends_on.contains(&id))
                .map(|s| format!("sink \"{}\"", s.name)),
        )
        .collect();
    if let Some(reader) = readers.first() {
        return Err(SqlError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!("cannot change the parallelism of {what} \"{relation}\": {reader} reads it"),
        )
        .with_hint(
            "a view's readers run at its parallelism; drop them first, or rescale before creating them",
        ));
    }
    let rescaled = rescaled_graph(&graph, parallelism as usize).map_err(from_exec)?;
    let tag = if sink { "ALTER SINK" } else { "ALTER MATERIALIZED VIEW" };
    if rescaled == graph {
        // Already there, or nothing in the job has a parallelism of its own.
        let other = rescaled_graph(&graph, if parallelism == 1 { 2 } else { 1 }).map_err(from_exec)?;
        return match other != graph {
            true => Ok(Outcome::Command { tag, rows: None }),
            false => Err(SqlError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                format!(
                    "{what} \"{relation}\" has no operator keyed by a GROUP BY, join or PARTITION BY key: it runs at \
                     the parallelism of its sources' splits, or as one subtask"
                ),
            )),
        };
    }
    let before = match sink {
        true => store.set_sink_graph(&schema, &relation, rescaled.clone()).map(|s| s.job_graph),
        false => {
            let partitions =
                rescaled.materialize_vertex().map_err(|e| SqlError::internal(e.to_string()))?.parallelism;
            store.set_view_graph(&schema, &relation, rescaled.clone(), partitions).map(|v| v.job_graph)
        }
    }
    .map_err(from_storage)?;
    if let Err(e) = cx.engine.jobs.rescale(rescaled).await {
        // Refused before the job was touched (no slots, not running): put the old graph back.
        let _ = match sink {
            true => store.set_sink_graph(&schema, &relation, before.clone()).map(|_| ()),
            false => {
                let partitions = before.materialize_vertex().map(|m| m.parallelism).unwrap_or(1);
                store.set_view_graph(&schema, &relation, before, partitions).map(|_| ())
            }
        };
        return Err(from_exec(e));
    }
    Ok(Outcome::Command { tag, rows: None })
}
