//! Live progress of every source reader, for `weir_catalog.sources` and the logs.
//!
//! Readers run on the TaskManager; the registry is process-wide so the system table can
//! list them without a round trip through the JobManager. A standalone server has one
//! TaskManager in-process; a TaskManager process sends its readers' figures
//! ([`reports`]) with its heartbeats, and the JobManager process enters them into its own
//! registry ([`apply_reports`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::task::TaskId;

/// One split reader's counters.
#[derive(Debug, Default)]
pub struct SourceMetrics {
    pub source_id: u64,
    pub source_name: String,
    pub connector: String,
    pub split: usize,
    pub rows_read: AtomicU64,
    pub parse_errors: AtomicU64,
    /// Microseconds; `i64::MIN` until the first watermark.
    pub watermark: AtomicI64,
    /// Microseconds the reader was paused by watermark alignment, in all.
    pub paused_us: AtomicU64,
    state: Mutex<ReaderState>,
}

#[derive(Debug, Default, Clone)]
pub struct ReaderState {
    pub status: String,
    pub last_error: Option<String>,
    pub offset: String,
}

impl SourceMetrics {
    pub fn new(source_id: u64, source_name: &str, connector: &str, split: usize) -> Self {
        Self {
            source_id,
            source_name: source_name.to_string(),
            connector: connector.to_string(),
            split,
            watermark: AtomicI64::new(i64::MIN),
            state: Mutex::new(ReaderState { status: "starting".into(), ..Default::default() }),
            ..Default::default()
        }
    }

    pub fn state(&self) -> ReaderState {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn set_status(&self, status: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.status = status.to_string();
        }
    }

    pub fn set_offset(&self, offset: String) {
        if let Ok(mut s) = self.state.lock() {
            s.offset = offset;
        }
    }

    pub fn set_error(&self, error: String) {
        if let Ok(mut s) = self.state.lock() {
            s.last_error = Some(error);
        }
    }

    pub fn add_rows(&self, rows: u64) {
        self.rows_read.fetch_add(rows, Ordering::Relaxed);
    }

    pub fn add_paused(&self, paused: std::time::Duration) {
        self.paused_us.fetch_add(u64::try_from(paused.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

type Registry = Mutex<BTreeMap<TaskId, Arc<SourceMetrics>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(BTreeMap::new()))
}

/// Registers the reader of source task `task`.
pub fn register(task: TaskId, metrics: Arc<SourceMetrics>) {
    if let Ok(mut r) = registry().lock() {
        r.insert(task, metrics);
    }
}

/// Forgets every reader of a job (it was dropped).
pub fn unregister_job(job: u64) {
    if let Ok(mut r) = registry().lock() {
        r.retain(|t, _| t.job != job);
    }
}

/// Every registered reader, by task.
pub fn snapshot() -> Vec<(TaskId, Arc<SourceMetrics>)> {
    registry().lock().map(|r| r.iter().map(|(t, m)| (*t, m.clone())).collect()).unwrap_or_default()
}

/// One reader's figures as they cross processes.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SourceReport {
    pub task: TaskId,
    pub source_id: u64,
    pub source_name: String,
    pub connector: String,
    pub split: usize,
    pub rows_read: u64,
    pub parse_errors: u64,
    pub watermark: i64,
    pub status: String,
    pub last_error: Option<String>,
    pub offset: String,
    #[serde(default)]
    pub paused_us: u64,
}

/// Every reader of this process, as reports.
pub fn reports() -> Vec<SourceReport> {
    reports_where(|_| true)
}

/// The readers of the tasks `keep` selects, as reports.
pub fn reports_where(keep: impl Fn(&TaskId) -> bool) -> Vec<SourceReport> {
    snapshot()
        .into_iter()
        .filter(|(task, _)| keep(task))
        .map(|(task, m)| {
            let state = m.state();
            SourceReport {
                task,
                source_id: m.source_id,
                source_name: m.source_name.clone(),
                connector: m.connector.clone(),
                split: m.split,
                rows_read: count(&m.rows_read),
                parse_errors: count(&m.parse_errors),
                watermark: load(&m.watermark),
                status: state.status,
                last_error: state.last_error,
                offset: state.offset,
                paused_us: count(&m.paused_us),
            }
        })
        .collect()
}

/// Enters readers reported by another process (a TaskManager's heartbeat).
pub fn apply_reports(reports: Vec<SourceReport>) {
    for report in reports {
        let metrics =
            SourceMetrics::new(report.source_id, &report.source_name, &report.connector, report.split);
        metrics.rows_read.store(report.rows_read, Ordering::Relaxed);
        metrics.parse_errors.store(report.parse_errors, Ordering::Relaxed);
        metrics.watermark.store(report.watermark, Ordering::Relaxed);
        metrics.paused_us.store(report.paused_us, Ordering::Relaxed);
        if let Ok(mut state) = metrics.state.lock() {
            *state =
                ReaderState { status: report.status, last_error: report.last_error, offset: report.offset };
        }
        register(report.task, Arc::new(metrics));
    }
}

pub fn load(value: &AtomicI64) -> i64 {
    value.load(Ordering::Relaxed)
}

pub fn count(value: &AtomicU64) -> u64 {
    value.load(Ordering::Relaxed)
}
