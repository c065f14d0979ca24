//! The functions about sessions: `pg_backend_pid()`, `pg_cancel_backend(pid)` and
//! `pg_terminate_backend(pid [, timeout])`, with Postgres 15's results, warnings and
//! permission errors (see `crate::backends` for what cancel and terminate do).
//!
//! The signalling functions have side effects, so they are volatile (never folded or
//! skipped by the optimizer), and a query that calls them runs to its end before its first
//! row is sent ([`signals_sessions`]): their warnings ("PID n is not a PostgreSQL backend
//! process") reach the client before the result, and a statement interrupted while sending
//! rows has already sent every signal.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::ArrayRef;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, LogicalPlan, ScalarUDF, Volatility};
use weir_planner::{sqlstate, SqlError};

use super::functions::{
    arg, bool_rows, boolean, function_with_volatility, int4, int4_rows, int_at, ints, Returns,
};
use super::CatalogSnapshot;
use crate::backends::{Signal, Signalled};

const CANCEL: &str = "pg_cancel_backend";
const TERMINATE: &str = "pg_terminate_backend";

pub(super) fn functions(snapshot: &Arc<CatalogSnapshot>) -> Vec<ScalarUDF> {
    let pid = snapshot.backend_pid;
    let cancel = snapshot.clone();
    let terminate = snapshot.clone();
    vec![
        function_with_volatility(
            "pg_backend_pid",
            &[0],
            Volatility::Stable,
            Returns::Fixed(int4),
            move |_, rows| int4_rows(rows, |_| Ok(Some(pid))),
        ),
        function_with_volatility(
            CANCEL,
            &[1],
            Volatility::Volatile,
            Returns::Fixed(boolean),
            move |args, rows| signal_each(&cancel, args, rows, Signal::Cancel),
        ),
        function_with_volatility(
            TERMINATE,
            &[1, 2],
            Volatility::Volatile,
            Returns::Fixed(boolean),
            move |args, rows| signal_each(&terminate, args, rows, Signal::Terminate),
        ),
    ]
}

/// Whether `plan` calls a function that signals sessions (so its rows are computed before
/// any is sent).
pub fn signals_sessions(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply_with_subqueries(|node| {
        for expr in node.expressions() {
            let calls = expr
                .exists(|e| {
                    Ok(matches!(e, Expr::ScalarFunction(f) if [CANCEL, TERMINATE].contains(&f.name())))
                })
                .unwrap_or(false);
            if calls {
                found = true;
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

fn error(code: &'static str, message: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(SqlError::new(code, message)))
}

/// Sends `signal` to the session of each row's pid: NULL for a NULL argument (the functions
/// are strict), `false` with a warning for a pid that is no session, `42501` if the
/// statement's role may not signal it.
fn signal_each(
    snapshot: &CatalogSnapshot,
    args: &[ArrayRef],
    rows: usize,
    signal: Signal,
) -> Result<ArrayRef> {
    let pids = ints(arg(args, 0)?)?;
    let timeouts = args.get(1).map(ints).transpose()?;
    bool_rows(rows, |row| {
        let Some(pid) = int_at(&pids, row) else { return Ok(None) };
        let timeout_ms = match &timeouts {
            Some(timeouts) => match int_at(timeouts, row) {
                Some(ms) => ms,
                None => return Ok(None),
            },
            None => 0,
        };
        if timeout_ms < 0 {
            return Err(error(sqlstate::INVALID_PARAMETER_VALUE, "\"timeout\" must not be negative"));
        }
        let pid = i32::try_from(pid)
            .map_err(|_| error(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "integer out of range"))?;
        let signalled = snapshot
            .sessions
            .signal(pid, signal, &snapshot.user, &snapshot.privileges)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        if signalled == Signalled::NoSuchBackend {
            snapshot.notices.warn(format!("PID {pid} is not a PostgreSQL backend process"));
            return Ok(Some(false));
        }
        if timeout_ms == 0 {
            return Ok(Some(true));
        }
        let ended = wait_for_end(snapshot, pid, Duration::from_millis(timeout_ms.unsigned_abs()));
        if !ended {
            snapshot
                .notices
                .warn(format!("backend with PID {pid} did not terminate within {timeout_ms} milliseconds"));
        }
        Ok(Some(ended))
    })
}

/// Waits for session `pid` to end (`pg_terminate_backend` with a timeout). A function's body
/// is synchronous, so the wait blocks its thread, handed over to the runtime first where it
/// allows that (a multi-threaded runtime, which the server runs on).
fn wait_for_end(snapshot: &CatalogSnapshot, pid: i32, timeout: Duration) -> bool {
    let Some(backend) = snapshot.sessions.get(pid) else { return true };
    let multi_threaded = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_threaded {
        tokio::task::block_in_place(|| backend.wait_ended(timeout))
    } else {
        backend.wait_ended(timeout)
    }
}
