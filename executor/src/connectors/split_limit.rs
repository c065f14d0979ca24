//! The cap on splits per source (`[sources] max_splits`).
//!
//! Every split is a source subtask: a task with its channels, operator chain and state, and a
//! turn on the reader pool. Without a cap, `split.size = '1'` on a large file or a glob such as
//! `'**'` over a big tree asks for millions of them (and, before any is started, a list of
//! millions of byte ranges). A source over the cap is refused when it is created, and a job
//! whose source has grown past it (more files matching its glob) fails to deploy with the same
//! message.
//!
//! The error is SQLSTATE `53400` configuration_limit_exceeded: the statement is fine, but it
//! asks for more than a limit the server's configuration sets, which is how Postgres reports
//! running into `max_replication_slots` or `max_worker_processes`. (`54000`
//! program_limit_exceeded is for limits built into the program, such as 1,600 columns per
//! table, which no setting raises.)

use crate::error::ExecError;

/// Splits a source may have unless `[sources] max_splits` says otherwise; the most the
/// `datagen` and `nexmark` connectors allow, too.
pub const DEFAULT_MAX_SPLITS: usize = 1024;

/// The most splits one source may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitLimit {
    pub max_splits: usize,
}

impl Default for SplitLimit {
    fn default() -> Self {
        SplitLimit { max_splits: DEFAULT_MAX_SPLITS }
    }
}

impl SplitLimit {
    pub fn new(max_splits: usize) -> Self {
        SplitLimit { max_splits: max_splits.max(1) }
    }

    /// Fails once a source would have more than `max_splits` splits; `count` may be a lower
    /// bound (a connector stops counting as soon as it is over). `what` says what made them.
    pub fn check(&self, count: usize, what: impl FnOnce() -> String) -> Result<(), ExecError> {
        if count <= self.max_splits {
            return Ok(());
        }
        Err(ExecError::LimitExceeded(format!(
            "the source would have more than {} splits ({}); read fewer files, raise split.size, \
             or raise the server's [sources] max_splits",
            self.max_splits,
            what()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_only_past_the_cap_with_53400() {
        let limit = SplitLimit::new(3);
        assert!(limit.check(3, || unreachable!()).is_ok());
        let err = limit.check(4, || "4 files match".into()).unwrap_err();
        assert_eq!(err.sqlstate(), Some("53400"));
        assert!(err.to_string().contains("more than 3 splits (4 files match)"), "{err}");
    }
}
