//! `BEGIN` / `COMMIT` / `ROLLBACK`.
//!
//! Weir applies and persists each statement when it runs. A transaction block is accepted so
//! drivers that wrap statements in one (psycopg does by default) work, but `ROLLBACK` cannot
//! undo statements already applied: it warns when the block changed data, instead of
//! pretending.

use weir_planner::SqlResult;

use super::{Context, Outcome};
use crate::session::TransactionState;

pub fn begin(cx: &Context<'_>) -> SqlResult<Outcome> {
    let mut session = cx.session()?;
    if session.transaction == TransactionState::Idle {
        session.transaction = TransactionState::InBlock { wrote: false };
    }
    Ok(Outcome::TransactionStart)
}

pub fn commit(cx: &Context<'_>) -> SqlResult<Outcome> {
    let mut session = cx.session()?;
    let tag = if session.transaction == TransactionState::Failed { "ROLLBACK" } else { "COMMIT" };
    session.transaction = TransactionState::Idle;
    Ok(Outcome::TransactionEnd { tag, warning: None })
}

pub fn rollback(cx: &Context<'_>) -> SqlResult<Outcome> {
    let mut session = cx.session()?;
    let warning = match session.transaction {
        TransactionState::InBlock { wrote: true } => Some(
            "Weir commits every statement when it runs; the changes made in this transaction block were not rolled back"
                .to_string(),
        ),
        _ => None,
    };
    session.transaction = TransactionState::Idle;
    Ok(Outcome::TransactionEnd { tag: "ROLLBACK", warning })
}
