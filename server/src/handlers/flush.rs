//! `FLUSH`: returns once every write acknowledged before it is visible in every view.
//! The JobManager closes an epoch at once (sources read their changelogs to the end
//! before passing the barrier) and waits for that epoch to commit.

use weir_planner::SqlResult;

use super::{Context, Outcome};

pub async fn run(cx: &Context<'_>) -> SqlResult<Outcome> {
    let epoch = cx.engine.jobs.flush().await.map_err(crate::wire::errors::from_exec)?;
    tracing::debug!(epoch, "flushed");
    Ok(Outcome::Command { tag: "FLUSH", rows: None })
}
