//! Per-connection session state: settings (`SET`/`SHOW`), transaction block state, and an
//! in-progress `COPY FROM STDIN`.

use std::collections::BTreeMap;
use std::sync::Arc;

use weir_planner::{sqlstate, SqlError, SqlResult};

use crate::commit_gate::CommitGate;
use crate::copy_in::CopyIn;

/// Settings every session starts with, with the values Postgres reports by default.
/// `(name, default, description)`.
pub const DEFAULT_SETTINGS: &[(&str, &str, &str)] = &[
    ("application_name", "", "Sets the application name to be reported in statistics and logs."),
    ("client_encoding", "UTF8", "Sets the client's character set encoding."),
    ("DateStyle", "ISO, MDY", "Sets the display format for date and time values."),
    (
        "default_transaction_isolation",
        "read committed",
        "Sets the transaction isolation level of each new transaction.",
    ),
    ("extra_float_digits", "1", "Sets the number of digits displayed for floating-point values."),
    (
        "idle_in_transaction_session_timeout",
        "0",
        "Sets the maximum allowed idle time between queries, when in a transaction (0 disables).",
    ),
    (
        "idle_session_timeout",
        "0",
        "Sets the maximum allowed idle time between queries, when not in a transaction (0 disables).",
    ),
    ("IntervalStyle", "postgres", "Sets the display format for interval values."),
    (
        "search_path",
        "\"$user\", public",
        "Sets the schema search order for names that are not schema-qualified.",
    ),
    ("server_encoding", "UTF8", "Shows the server (database) character set encoding."),
    ("standard_conforming_strings", "on", "Causes '...' strings to treat backslashes literally."),
    ("statement_timeout", "0", "Sets the maximum allowed duration of any statement (0 disables)."),
    (
        "streaming_state_ttl",
        "0",
        "Drops join and Top-N state of new materialized views not written for this long (0 disables).",
    ),
    ("TimeZone", "UTC", "Sets the time zone for displaying and interpreting time stamps."),
    ("transaction_isolation", "read committed", "Shows the current transaction's isolation level."),
    ("integer_datetimes", "on", "Shows whether datetimes are integer based."),
    ("lc_messages", "C", "Sets the language in which messages are displayed."),
    ("max_identifier_length", "63", "Shows the maximum identifier length."),
];

/// Weir's own session settings (besides those in [`DEFAULT_SETTINGS`]).
const WEIR_SETTINGS: &[&str] =
    &["streaming_parallelism", "streaming_state_ttl", "streaming_watermark_alignment_max_drift"];

/// Settings whose value Weir cannot honour other than the default.
const FIXED_SETTINGS: &[(&str, &[&str])] = &[
    ("client_encoding", &["utf8", "utf-8", "unicode"]),
    ("server_encoding", &["utf8"]),
    ("timezone", &["utc", "etc/utc", "gmt", "z", "+00:00", "0", "utc0", "zulu"]),
    ("integer_datetimes", &["on"]),
    ("standard_conforming_strings", &["on"]),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionState {
    Idle,
    /// Inside BEGIN ... COMMIT; `wrote` is set once a statement changed data.
    InBlock {
        wrote: bool,
    },
    /// A statement failed inside a block: everything but COMMIT/ROLLBACK is refused.
    Failed,
}

pub struct Session {
    pub user: String,
    pub database: String,
    settings: BTreeMap<String, (String, String)>,
    /// The values the session started with where they are not the defaults: given by the
    /// client at startup (`application_name`) or by the server's configuration
    /// (`idle_session_timeout`). `RESET` goes back to them, as in Postgres.
    startup: BTreeMap<String, String>,
    pub transaction: TransactionState,
    pub copy_in: Option<CopyIn>,
    /// Whether the running statement may still be cancelled (see `commit_gate`).
    pub commit: Arc<CommitGate>,
    /// The process id the client was sent in `BackendKeyData` (`pg_backend_pid()`); 0 until
    /// the session is registered (see `backends.rs`).
    pub backend_pid: i32,
    /// Warnings the running statement raised, sent to the client before its result.
    pub notices: Arc<Notices>,
}

/// Warnings a statement raises while it runs (a system function's `WARNING`, such as
/// `pg_cancel_backend` of a pid that is no session), sent before its result.
#[derive(Debug, Default)]
pub struct Notices(std::sync::Mutex<Vec<String>>);

impl Notices {
    pub fn warn(&self, message: String) {
        match self.0.lock() {
            Ok(mut n) => n.push(message),
            Err(poisoned) => poisoned.into_inner().push(message),
        }
    }

    /// The warnings raised since the last call.
    pub fn take(&self) -> Vec<String> {
        match self.0.lock() {
            Ok(mut n) => std::mem::take(&mut *n),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

impl Session {
    pub fn new(user: String, database: String) -> Self {
        let settings = DEFAULT_SETTINGS
            .iter()
            .map(|(name, value, _)| (name.to_ascii_lowercase(), (name.to_string(), value.to_string())))
            .collect();
        Self {
            user,
            database,
            settings,
            startup: BTreeMap::new(),
            transaction: TransactionState::Idle,
            copy_in: None,
            commit: Arc::default(),
            backend_pid: 0,
            notices: Arc::default(),
        }
    }

    /// A copy of the settings and identity, without any in-progress COPY, for planning
    /// outside the session lock.
    pub fn snapshot_of(other: &Session) -> Session {
        Session {
            user: other.user.clone(),
            database: other.database.clone(),
            settings: other.settings.clone(),
            startup: other.startup.clone(),
            transaction: other.transaction,
            copy_in: None,
            commit: other.commit.clone(),
            backend_pid: other.backend_pid,
            notices: other.notices.clone(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.settings.get(&name.to_ascii_lowercase()).map(|(_, v)| v.as_str())
    }

    /// All settings as (display name, value), sorted by name.
    pub fn settings(&self) -> Vec<(String, String)> {
        self.settings.values().cloned().collect()
    }

    /// `42704` unless `name` is a setting Weir or Postgres has, or a custom one (with a dot).
    fn check_known(name: &str) -> SqlResult<()> {
        let key = name.to_ascii_lowercase();
        let weirs_own = DEFAULT_SETTINGS.iter().any(|(n, _, _)| n.eq_ignore_ascii_case(&key))
            || WEIR_SETTINGS.contains(&key.as_str());
        if !weirs_own && !crate::postgres_settings::is_settable(&key) {
            return Err(SqlError::new(
                sqlstate::UNDEFINED_OBJECT,
                format!("unrecognized configuration parameter \"{name}\""),
            )
            .with_hint("custom settings need a dot in their name, as in myapp.user_id"));
        }
        Ok(())
    }

    pub fn set(&mut self, name: &str, value: &str) -> SqlResult<()> {
        let key = name.to_ascii_lowercase();
        Self::check_known(name)?;
        if let Some((_, allowed)) = FIXED_SETTINGS.iter().find(|(n, _)| *n == key) {
            if !allowed.contains(&value.to_ascii_lowercase().as_str()) {
                return Err(SqlError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    format!("invalid value for parameter \"{name}\": \"{value}\""),
                )
                .with_hint(format!("Weir only supports {}", allowed[0].to_uppercase())));
            }
        }
        let value = match key.as_str() {
            "statement_timeout" | "idle_session_timeout" | "idle_in_transaction_session_timeout" => {
                parse_duration_ms(name, value)?.to_string()
            }
            "extra_float_digits" => {
                let v: i32 = value.parse().map_err(|_| invalid_value(name, value))?;
                if !(-15..=3).contains(&v) {
                    return Err(invalid_value(name, value));
                }
                v.to_string()
            }
            "datestyle" => {
                let upper = value.to_ascii_uppercase();
                if !upper.contains("ISO") {
                    return Err(invalid_value(name, value).with_hint("Weir prints dates in ISO style only"));
                }
                "ISO, MDY".to_string()
            }
            "timezone" => "UTC".to_string(),
            "streaming_parallelism" => {
                let max = weir_plan::KEY_GROUPS as usize;
                match value.parse::<usize>() {
                    Ok(n) if (1..=max).contains(&n) => n.to_string(),
                    _ => {
                        return Err(invalid_value(name, value)
                            .with_hint(format!("streaming_parallelism is a whole number from 1 to {max}")))
                    }
                }
            }
            "client_encoding" => "UTF8".to_string(),
            "streaming_state_ttl" => {
                parse_state_ttl(value).map_err(|hint| invalid_value(name, value).with_hint(hint))?.to_string()
            }
            "streaming_watermark_alignment_max_drift" => parse_alignment_drift(value)
                .map_err(|hint| invalid_value(name, value).with_hint(hint))?
                .to_string(),
            _ => value.to_string(),
        };
        let display = self.settings.get(&key).map(|(n, _)| n.clone()).unwrap_or_else(|| name.to_string());
        self.settings.insert(key, (display, value));
        Ok(())
    }

    /// Sets `name` as the session starts: the value `RESET` goes back to.
    pub fn set_startup(&mut self, name: &str, value: &str) -> SqlResult<()> {
        self.set(name, value)?;
        let key = name.to_ascii_lowercase();
        if let Some((_, value)) = self.settings.get(&key) {
            self.startup.insert(key, value.clone());
        }
        Ok(())
    }

    /// `RESET name` (and `SET name TO DEFAULT`): the value the session started with again.
    pub fn reset(&mut self, name: &str) -> SqlResult<()> {
        Self::check_known(name)?;
        self.reset_known(name);
        Ok(())
    }

    /// `RESET ALL`: every setting's starting value again.
    pub fn reset_all(&mut self) {
        let names: Vec<String> = self.settings.keys().cloned().collect();
        for name in names {
            self.reset_known(&name);
        }
    }

    fn reset_known(&mut self, name: &str) {
        let key = name.to_ascii_lowercase();
        if let Some(value) = self.startup.get(&key) {
            let display = self.settings.get(&key).map_or_else(|| name.to_string(), |(n, _)| n.clone());
            self.settings.insert(key, (display, value.clone()));
        } else if let Some((n, v, _)) = DEFAULT_SETTINGS.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(&key))
        {
            self.settings.insert(key, (n.to_string(), v.to_string()));
        } else {
            self.settings.remove(&key);
        }
    }

    /// Parallelism of new materialized views: `SET streaming_parallelism`, else the number
    /// of cores.
    pub fn streaming_parallelism(&self) -> usize {
        self.get("streaming_parallelism")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// `streaming_state_ttl` in milliseconds; `None` when off.
    pub fn streaming_state_ttl_ms(&self) -> Option<u64> {
        self.get("streaming_state_ttl").and_then(|v| v.parse().ok()).filter(|&ms| ms > 0)
    }

    /// `streaming_watermark_alignment_max_drift` in milliseconds (0: off); `None` when the
    /// session has not set it (the server's default applies).
    pub fn streaming_watermark_alignment_max_drift_ms(&self) -> Option<u64> {
        self.get("streaming_watermark_alignment_max_drift").and_then(|v| v.parse().ok())
    }

    /// `statement_timeout` in milliseconds; 0 means none.
    pub fn statement_timeout_ms(&self) -> u64 {
        self.get("statement_timeout").and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// `idle_session_timeout` in milliseconds; 0 means none.
    pub fn idle_session_timeout_ms(&self) -> u64 {
        self.get("idle_session_timeout").and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// `idle_in_transaction_session_timeout` in milliseconds; 0 means none.
    pub fn idle_in_transaction_session_timeout_ms(&self) -> u64 {
        self.get("idle_in_transaction_session_timeout").and_then(|v| v.parse().ok()).unwrap_or(0)
    }
}

fn invalid_value(name: &str, value: &str) -> SqlError {
    SqlError::new(
        sqlstate::INVALID_PARAMETER_VALUE,
        format!("invalid value for parameter \"{name}\": \"{value}\""),
    )
}

/// The largest timeout (`statement_timeout`, `idle_session_timeout`), in milliseconds (Postgres keeps it in an `int`).
const MAX_TIMEOUT_MS: u64 = i32::MAX as u64;

/// `5000`, `'5s'`, `'250ms'`, `'1min'` to milliseconds, as Postgres accepts for timeouts.
/// Client input: the arithmetic is checked, and a value beyond Postgres' range is `22023`
/// rather than a wrapped (or, in a debug build, panicking) multiplication.
fn parse_duration_ms(name: &str, value: &str) -> SqlResult<u64> {
    let v = value.trim().to_ascii_lowercase();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    if num.is_empty() {
        return Err(invalid_value(name, value));
    }
    let out_of_range = || {
        SqlError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!(
                "{} is outside the valid range for parameter \"{name}\" (0 .. {MAX_TIMEOUT_MS})",
                value.trim()
            ),
        )
    };
    // Only digits: a parse failure is a number too large for u64.
    let n: u64 = num.parse().map_err(|_| out_of_range())?;
    let ms = match unit.trim() {
        "us" => Some(n / 1000),
        "" | "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "min" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => {
            return Err(invalid_value(name, value).with_hint(
                "Valid units for this parameter are \"us\", \"ms\", \"s\", \"min\", \"h\", and \"d\".",
            ))
        }
    };
    match ms {
        Some(ms) if ms <= MAX_TIMEOUT_MS => Ok(ms),
        _ => Err(out_of_range()),
    }
}

/// A state TTL (`'1 hour'`, `'30 min'`, `'10s'`, `'500ms'`, `'2 days'`, a bare number of
/// milliseconds; `0` turns it off) in milliseconds; the error is a hint saying what fits.
pub fn parse_state_ttl(value: &str) -> Result<u64, String> {
    let hint = || {
        "a state TTL is a whole number with a unit: ms, s, min, h or d (for example '1 hour'), or 0 for none"
            .to_string()
    };
    let v = value.trim().to_ascii_lowercase();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let n: u64 = number.parse().map_err(|_| hint())?;
    let factor: u64 = match unit.trim() {
        "" | "ms" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1000,
        "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return Err(hint()),
    };
    n.checked_mul(factor).ok_or_else(|| "the state TTL is too long".to_string())
}

/// A watermark alignment drift (`'10s'`, `'1 min'`, `'500ms'`, a bare number of
/// milliseconds; `0` or `'off'` for no alignment) in milliseconds; the error is a hint
/// saying what fits.
pub fn parse_alignment_drift(value: &str) -> Result<u64, String> {
    if value.trim().eq_ignore_ascii_case("off") {
        return Ok(0);
    }
    parse_state_ttl(value).map_err(|_| {
        "a maximum drift is a whole number with a unit: ms, s, min, h or d (for example '10s'), \
         or 0 or 'off' for no alignment"
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_drifts_take_units_and_off() {
        assert_eq!(parse_alignment_drift("10s"), Ok(10_000));
        assert_eq!(parse_alignment_drift("1 min"), Ok(60_000));
        assert_eq!(parse_alignment_drift("250"), Ok(250));
        assert_eq!(parse_alignment_drift("OFF"), Ok(0));
        assert_eq!(parse_alignment_drift("0"), Ok(0));
        assert!(parse_alignment_drift("soon").unwrap_err().contains("'off'"));
        let mut s = Session::new("u".into(), "d".into());
        assert_eq!(s.streaming_watermark_alignment_max_drift_ms(), None);
        s.set("streaming_watermark_alignment_max_drift", "2s").unwrap();
        assert_eq!(s.streaming_watermark_alignment_max_drift_ms(), Some(2000));
        assert!(s.set("streaming_watermark_alignment_max_drift", "-1s").is_err());
    }

    #[test]
    fn state_ttls_take_units_and_refuse_overflow() {
        assert_eq!(parse_state_ttl("1 hour"), Ok(3_600_000));
        assert_eq!(parse_state_ttl("10s"), Ok(10_000));
        assert_eq!(parse_state_ttl("0"), Ok(0));
        assert!(parse_state_ttl("1 fortnight").is_err());
        assert!(parse_state_ttl("99999999999999999 days").is_err());
        let mut s = Session::new("u".into(), "weir".into());
        assert_eq!(s.streaming_state_ttl_ms(), None);
        s.set("streaming_state_ttl", "2 min").unwrap();
        assert_eq!(s.streaming_state_ttl_ms(), Some(120_000));
        assert!(s.set("streaming_state_ttl", "soon").is_err());
    }

    #[test]
    fn settings_round_trip() {
        let mut s = Session::new("u".into(), "weir".into());
        s.set("application_name", "psql").unwrap();
        assert_eq!(s.get("APPLICATION_NAME"), Some("psql"));
        s.set("statement_timeout", "5s").unwrap();
        assert_eq!(s.statement_timeout_ms(), 5000);
        assert!(s.set("client_encoding", "LATIN1").is_err());
        s.set("TimeZone", "UTC").unwrap();
        s.reset("application_name").unwrap();
        assert_eq!(s.get("application_name"), Some(""));
        // A value the client gave at startup is what RESET goes back to.
        s.set_startup("application_name", "psql").unwrap();
        s.set("application_name", "other").unwrap();
        s.reset("application_name").unwrap();
        assert_eq!(s.get("application_name"), Some("psql"));
        s.set("application_name", "other").unwrap();
        s.reset_all();
        assert_eq!(s.get("application_name"), Some("psql"));
        assert!(s.reset("no_such_setting").is_err());
        s.set("myapp.user_id", "7").unwrap();
        s.reset_all();
        assert_eq!((s.statement_timeout_ms(), s.get("myapp.user_id")), (0, None));
    }

    #[test]
    fn statement_timeout_out_of_range_is_an_error_not_an_overflow() {
        let mut s = Session::new("u".into(), "weir".into());
        for value in ["99999999999999999h", "99999999999999999999999", "2147483648", "600000h", "25000d"] {
            let err = s.set("statement_timeout", value).expect_err(value);
            assert_eq!(err.code, "22023", "{value}: {}", err.message);
            assert!(err.message.contains("outside the valid range"), "{}", err.message);
        }
        s.set("statement_timeout", "2147483647").unwrap();
        assert_eq!(s.statement_timeout_ms(), 2_147_483_647);
        s.set("statement_timeout", "1d").unwrap();
        assert_eq!(s.statement_timeout_ms(), 86_400_000);
        assert_eq!(s.set("statement_timeout", "-1").unwrap_err().code, "22023");
        assert_eq!(s.set("statement_timeout", "5 fortnights").unwrap_err().code, "22023");
    }
}
