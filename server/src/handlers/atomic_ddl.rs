//! DDL is atomic under cancel and `statement_timeout`, like writes (see `commit_gate`):
//! either nothing of the statement remains and the client gets `57014`, or it completed and
//! the client is told so.
//!
//! * Statements that change the catalog in several steps (`DROP ... CASCADE`, which stops
//!   jobs one by one; `ALTER TABLE`, which may drop readers and then rewrites the table;
//!   `CREATE TABLE`, whose catalog write runs on a blocking thread) enter the write phase
//!   ([`write_phase`]) after their checks and before their first change: a cancel or timeout
//!   before it stops them with nothing changed, one during it is ignored and they complete.
//! * `CREATE MATERIALIZED VIEW` and `CREATE SINK` stay cancellable through their backfill,
//!   which may take minutes: the job is deployed under an [`UnfinishedJob`] guard. A view's
//!   catalog entry is written only once its backfill is visible (the commit; until then no
//!   other session sees it or builds on it, see `crate::name_claims`); a sink's before its
//!   job starts. If the statement is stopped (its future dropped) before it completes, the
//!   guard removes the catalog entry (if written) and the owner record at once, and starts
//!   the rest of the undo, which the `57014` reply waits for: the job stopped and its
//!   checkpoints deleted, and a file sink's files cut back to where the sink began (removed
//!   if it began them), with its start markers. The name is free again when the client
//!   hears `57014`.
//!
//! A kill -9 during a view's backfill leaves no catalog entry: the view is absent after the
//! restart, as an uncommitted Postgres transaction is. A sink's entry is written first: the
//! restarted server deploys its job again and listens only once every job has committed
//! its first epoch (docs/security.md).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use weir_planner::SqlResult;

use super::Context;
use crate::commit_gate::{CommitGate, OwnedWriting};
use crate::engine::Engine;

/// How long an undone file sink's files may stay locked by its stopping tasks.
const SINK_FILE_RELEASE: Duration = Duration::from_secs(10);

/// Enters the write phase of the session's statement: `57014` if it was stopped already;
/// afterwards cancel and timeout are ignored until the returned guard is dropped.
pub(super) fn write_phase(cx: &Context<'_>) -> SqlResult<OwnedWriting> {
    let gate = cx.session()?.commit.clone();
    gate.begin_owned()
}

/// What an unfinished job writes besides its catalog entry.
enum JobKind {
    View,
    /// A sink, with its file (subtask 0's; the others' are `path.N`) if it writes one this
    /// server can reach.
    Sink {
        file: Option<PathBuf>,
    },
}

/// Undoes a `CREATE MATERIALIZED VIEW` or `CREATE SINK` whose statement ends between
/// [`UnfinishedJob::created`] (its catalog entry is written) and [`UnfinishedJob::finish`].
pub(super) struct UnfinishedJob {
    engine: Arc<Engine>,
    gate: Arc<CommitGate>,
    id: u64,
    schema: String,
    name: String,
    kind: JobKind,
    /// The job may be running: an early end stops it.
    armed: bool,
    /// The catalog entry is written: an early end removes it.
    cataloged: bool,
}

impl UnfinishedJob {
    pub(super) fn view(cx: &Context<'_>, id: u64, schema: &str, name: &str) -> SqlResult<Self> {
        Self::new(cx, id, schema, name, JobKind::View)
    }

    pub(super) fn sink(
        cx: &Context<'_>,
        id: u64,
        schema: &str,
        name: &str,
        file: Option<PathBuf>,
    ) -> SqlResult<Self> {
        Self::new(cx, id, schema, name, JobKind::Sink { file })
    }

    fn new(cx: &Context<'_>, id: u64, schema: &str, name: &str, kind: JobKind) -> SqlResult<Self> {
        Ok(Self {
            engine: cx.engine.clone(),
            gate: cx.session()?.commit.clone(),
            id,
            schema: schema.to_string(),
            name: name.to_string(),
            kind,
            armed: false,
            cataloged: false,
        })
    }

    /// The catalog entry is written and the job about to be deployed: from now on, an
    /// early end undoes both.
    pub(super) fn created(&mut self) {
        self.armed = true;
        self.cataloged = true;
    }

    /// The job is about to be deployed, before its catalog entry: an early end stops it.
    pub(super) fn deploying(&mut self) {
        self.armed = true;
    }

    /// The catalog entry is written (after [`UnfinishedJob::deploying`]).
    pub(super) fn cataloged(&mut self) {
        self.cataloged = true;
    }

    /// The job's backfill is visible: the statement completed.
    pub(super) fn finish(mut self) {
        self.armed = false;
    }
}

impl Drop for UnfinishedJob {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let what = match self.kind {
            JobKind::View => "materialized view",
            JobKind::Sink { .. } => "sink",
        };
        tracing::info!(name = %self.name, id = self.id, what, "undoing a CREATE that did not complete");
        // Commands are handled in order: any later statement sees the job gone.
        self.engine.jobs.stop_job(self.id);
        let store = &self.engine.store;
        let removed = match (self.cataloged, &self.kind) {
            (false, _) => Ok(()),
            (true, JobKind::View) => store.drop_view(&self.schema, &self.name).map(|_| ()),
            (true, JobKind::Sink { .. }) => store.drop_sink(&self.schema, &self.name).map(|_| ()),
        };
        if let Err(e) = removed {
            tracing::warn!(name = %self.name, error = %e, "could not remove the unfinished {what} from the catalog");
        }
        // Its owner entry, if already written.
        let id = self.id;
        let _ = self.engine.roles.update(|catalog| {
            catalog.forget_object(id);
            Ok(())
        });
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let jobs = self.engine.jobs.clone();
        let file = match &self.kind {
            JobKind::Sink { file } => file.clone(),
            JobKind::View => None,
        };
        let name = self.name.clone();
        let undo = runtime.spawn(async move {
            if let Err(e) = jobs.drop_job(id).await {
                tracing::warn!(name = %name, error = %e, "could not stop the unfinished job");
            }
            let Some(file) = file else { return };
            let cut = tokio::task::spawn_blocking(move || {
                weir_executor::operators::sink::cut_back_to_start(&file, id, SINK_FILE_RELEASE)
            })
            .await;
            match cut {
                Ok(Ok(files)) => tracing::info!(name = %name, files, "unfinished sink's files cut back"),
                Ok(Err(e)) => {
                    tracing::warn!(name = %name, error = %e, "could not cut back the unfinished sink's files")
                }
                Err(e) => tracing::warn!(name = %name, error = %e, "cutting back the sink's files failed"),
            }
        });
        self.gate.defer_undo(undo);
    }
}
