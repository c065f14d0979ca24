//! `pg_stat_activity`: one row per client session, with Postgres 15's columns.
//!
//! The rows come from the server's live session registry (`crate::backends`), read when a
//! statement names the view: `pid` is the process id the session's client got in
//! `BackendKeyData`, the one `pg_backend_pid()` returns and `pg_cancel_backend` /
//! `pg_terminate_backend` take. `state`, `query` and `query_start` are the running statement
//! (`active`) or the last one (`idle`, `idle in transaction`). As in Postgres, a role that is
//! neither a superuser, nor a member of the session's role, nor of `pg_read_all_stats` sees
//! who is connected but not what they do (`query` is `<insufficient privilege>`, the times,
//! state and client address are NULL).
//!
//! Weir has no background workers in this view, no transaction ids and no wait events:
//! `backend_type` is always `client backend`, `backend_xid`, `backend_xmin`, `wait_event*`,
//! `query_id` and `leader_pid` are NULL. `client_addr` is the address as text (Weir has no
//! `inet` type).

use std::time::{SystemTime, UNIX_EPOCH};

use super::columns::{row, Col, Columns, Row, Value};
use super::{CatalogSnapshot, DATABASE_OID};
use crate::backends::may_see_activity;

pub const PG_STAT_ACTIVITY: Columns = &[
    ("datid", Col::Oid),
    ("datname", Col::Name),
    ("pid", Col::Int4),
    ("leader_pid", Col::Int4),
    ("usesysid", Col::Oid),
    ("usename", Col::Name),
    ("application_name", Col::Text),
    ("client_addr", Col::Text),
    ("client_hostname", Col::Text),
    ("client_port", Col::Int4),
    ("backend_start", Col::Timestamptz),
    ("xact_start", Col::Timestamptz),
    ("query_start", Col::Timestamptz),
    ("state_change", Col::Timestamptz),
    ("wait_event_type", Col::Text),
    ("wait_event", Col::Text),
    ("state", Col::Text),
    ("backend_xid", Col::Text),
    ("backend_xmin", Col::Text),
    ("query_id", Col::Int8),
    ("query", Col::Text),
    ("backend_type", Col::Text),
];

/// Microseconds since the epoch, as a `timestamptz` cell.
fn micros(at: SystemTime) -> Value {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).map_or(Value::Null, Value::Int),
        Err(_) => Value::Null,
    }
}

fn optional_micros(at: Option<SystemTime>) -> Value {
    at.map_or(Value::Null, micros)
}

pub fn pg_stat_activity(snapshot: &CatalogSnapshot) -> Vec<Row> {
    snapshot
        .sessions
        .all()
        .into_iter()
        .filter_map(|backend| {
            let activity = backend.activity()?;
            let role_oid = snapshot.privileges.role(&backend.user).map(|r| r.oid);
            let head = row![
                DATABASE_OID,
                backend.database.as_str(),
                backend.pid,
                Value::Null,
                role_oid,
                backend.user.as_str()
            ];
            let visible = may_see_activity(&snapshot.privileges, &snapshot.user, &backend.user);
            let rest = if visible {
                row![
                    activity.application_name,
                    backend.client.map(|a| a.ip().to_string()),
                    Value::Null,
                    backend.client.map(|a| i32::from(a.port())),
                    micros(backend.backend_start),
                    optional_micros(activity.xact_start),
                    optional_micros(activity.query_start),
                    micros(activity.state_change),
                    Value::Null,
                    Value::Null,
                    activity.state.as_str(),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    activity.query,
                    "client backend",
                ]
            } else {
                let mut hidden = row![activity.application_name];
                hidden.extend(std::iter::repeat_n(Value::Null, 13));
                hidden.extend(row!["<insufficient privilege>", "client backend"]);
                hidden
            };
            Some(head.into_iter().chain(rest).collect())
        })
        .collect()
}
