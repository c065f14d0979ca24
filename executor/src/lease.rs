//! A TaskManager's lease on its tasks: how a process the JobManager gave up on is kept from
//! writing anything for jobs that have moved.
//!
//! A paused or partitioned TaskManager (SIGSTOP, a long GC-like stall, a network split)
//! cannot know that the JobManager declared it lost and restarted its jobs elsewhere. When
//! it runs again its tasks would go on where they stopped: append to sink files the new
//! attempt already truncated, upload checkpoint pieces. So every such write first checks the
//! lease. The lease is renewed by the JobManager's answer to each heartbeat, and runs out
//! one heartbeat timeout after the heartbeat was *sent*: the JobManager only gives up one
//! timeout after it last *received* one, so the lease always runs out first. When the
//! control stream ends the lease is revoked at once, before the tasks are cancelled.
//!
//! A write that passed the check just before the process was stopped can still land after
//! it resumes; for files, the sink also holds an exclusive lock on its file (see
//! `operators::sink`), so the new attempt opens the file only once the old one is gone,
//! and then truncates it back to the checkpoint.
//!
//! Standalone, the JobManager is in the same process: the lease never runs out.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{ExecError, ExecResult};

pub struct Lease {
    /// `None`: never runs out (standalone).
    base: Option<Instant>,
    /// Milliseconds after `base` when the lease runs out.
    until_ms: AtomicU64,
    revoked: AtomicBool,
}

impl Lease {
    /// The lease of a process that is its own JobManager.
    pub fn unbounded() -> Arc<Lease> {
        Arc::new(Lease { base: None, until_ms: AtomicU64::new(u64::MAX), revoked: AtomicBool::new(false) })
    }

    /// A lease valid for `valid_for` from now (a registration just confirmed).
    pub fn valid_for(valid_for: Duration) -> Arc<Lease> {
        let lease = Lease {
            base: Some(Instant::now()),
            until_ms: AtomicU64::new(0),
            revoked: AtomicBool::new(false),
        };
        lease.extend_to(Instant::now() + valid_for);
        Arc::new(lease)
    }

    /// Renews the lease up to `deadline` (never shortens it).
    pub fn extend_to(&self, deadline: Instant) {
        let Some(base) = self.base else { return };
        let ms = u64::try_from(deadline.saturating_duration_since(base).as_millis()).unwrap_or(u64::MAX);
        self.until_ms.fetch_max(ms, Ordering::AcqRel);
    }

    /// Ends the lease for good: the JobManager no longer counts on this process.
    pub fn revoke(&self) {
        self.revoked.store(true, Ordering::Release);
    }

    /// Whether tasks may still write for their jobs.
    pub fn is_valid(&self) -> bool {
        if self.revoked.load(Ordering::Acquire) {
            return false;
        }
        match self.base {
            None => true,
            Some(base) => {
                let now = u64::try_from(base.elapsed().as_millis()).unwrap_or(u64::MAX);
                now < self.until_ms.load(Ordering::Acquire)
            }
        }
    }

    /// `Ok` while the lease holds; otherwise an error naming `what` was about to be written.
    pub fn check(&self, what: &str) -> ExecResult<()> {
        match self.is_valid() {
            true => Ok(()),
            false => Err(ExecError::Fenced(format!(
                "not writing {what}: this taskmanager lost its lease (no answer from the JobManager within \
                 the heartbeat timeout), so its jobs may already run elsewhere"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbounded_lease_holds_until_revoked() {
        let lease = Lease::unbounded();
        assert!(lease.check("rows").is_ok());
        lease.extend_to(Instant::now());
        assert!(lease.is_valid());
        lease.revoke();
        assert!(matches!(lease.check("rows"), Err(ExecError::Fenced(_))));
    }

    #[test]
    fn lease_runs_out_unless_renewed_and_never_shrinks() {
        let lease = Lease::valid_for(Duration::from_millis(30));
        assert!(lease.is_valid());
        // An older answer cannot shorten it.
        lease.extend_to(Instant::now());
        assert!(lease.is_valid());
        std::thread::sleep(Duration::from_millis(40));
        assert!(!lease.is_valid());
        lease.extend_to(Instant::now() + Duration::from_secs(60));
        assert!(lease.is_valid());
        lease.revoke();
        lease.extend_to(Instant::now() + Duration::from_secs(120));
        assert!(!lease.is_valid(), "a revoked lease stays revoked");
    }
}
