//! `weir_catalog`: the streaming runtime as SQL tables. Each scan asks the JobManager for
//! its current status, so the rows are live.
//!
//! * `jobs`: one row per materialized view's job — view, status (`creating`, `running`,
//!   `restarting`, `failed: …`, `waiting_for_slots`), parallelism, created, last committed
//!   epoch, restarts and attempts, the last failure (naming the TaskManager it came from).
//! * `tasks`: one row per subtask — job, vertex, subtask, operators, taskmanager, slot,
//!   status, rows in / out, last finished epoch, input watermark, state entries (and how
//!   many of them are in memory).
//! * `sources`: one row per source split being read (and one per source no job reads) —
//!   status, rows read, malformed rows skipped, last error, offset, watermark.
//! * `watermarks`: one row per operator of every task that has a watermark — its current
//!   watermark and the late rows it dropped.
//! * `checkpoints`: the recent checkpoints of every job — epoch, start, duration (seconds),
//!   bytes, status (`in_progress`, `completed`, `failed`) and why one failed.
//! * `taskmanagers`: the TaskManagers the JobManager knows — id, data address, role
//!   (`frontend` or `worker`), slots, slots used, state (`active`, or `lost: <why>`), last
//!   heartbeat, tasks and their checkpointed state bytes.

use std::fmt;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, Session};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use weir_executor::connectors::metrics;
use weir_executor::{ClusterStatus, JobManager};
use weir_storage::Store;

pub fn schema(jobs: JobManager, store: Arc<Store>) -> Arc<dyn SchemaProvider> {
    Arc::new(WeirCatalog { jobs, store })
}

struct WeirCatalog {
    jobs: JobManager,
    store: Arc<Store>,
}

impl fmt::Debug for WeirCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WeirCatalog")
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Jobs,
    Tasks,
    Sources,
    Watermarks,
    Checkpoints,
    TaskManagers,
}

const TABLES: [(&str, Kind); 6] = [
    ("jobs", Kind::Jobs),
    ("tasks", Kind::Tasks),
    ("sources", Kind::Sources),
    ("watermarks", Kind::Watermarks),
    ("checkpoints", Kind::Checkpoints),
    ("taskmanagers", Kind::TaskManagers),
];

#[async_trait]
impl SchemaProvider for WeirCatalog {
    fn table_names(&self) -> Vec<String> {
        TABLES.iter().map(|(n, _)| n.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(TABLES.iter().find(|(n, _)| *n == name).map(|(_, kind)| {
            Arc::new(SystemTable { kind: *kind, jobs: self.jobs.clone(), store: self.store.clone() })
                as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLES.iter().any(|(n, _)| *n == name)
    }
}

struct SystemTable {
    kind: Kind,
    jobs: JobManager,
    store: Arc<Store>,
}

impl fmt::Debug for SystemTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SystemTable({:?})", self.kind)
    }
}

fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, false)
}

fn int(name: &str) -> Field {
    Field::new(name, DataType::Int32, false)
}

fn bigint(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Int64, nullable)
}

fn timestamp(name: &str) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, None), true)
}

/// A watermark as a timestamp column value: none before the first, and the end-of-input
/// watermark of a finished source shown as the largest timestamp.
fn watermark_value(w: Option<i64>) -> Option<i64> {
    w.filter(|w| *w != i64::MIN).map(|w| w.min(MAX_TIMESTAMP_MICROS))
}

/// 9999-12-31 23:59:59.999999, the largest timestamp clients print.
const MAX_TIMESTAMP_MICROS: i64 = 253_402_300_799_999_999;

impl SystemTable {
    fn table_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(match self.kind {
            Kind::Jobs => vec![
                bigint("view_id", false),
                text("view"),
                text("status"),
                int("parallelism"),
                Field::new(
                    "created",
                    DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                    false,
                ),
                bigint("last_committed_epoch", true),
                text("kind"),
                int("restarts"),
                int("attempts"),
                Field::new("last_failure", DataType::Utf8, true),
                Field::new("unbounded_state", DataType::Utf8, true),
            ],
            Kind::Tasks => vec![
                text("job"),
                int("vertex"),
                int("subtask"),
                text("operators"),
                int("taskmanager"),
                int("slot"),
                text("status"),
                bigint("rows_in", false),
                bigint("rows_out", false),
                bigint("last_epoch", true),
                timestamp("watermark"),
                bigint("state_rows", false),
                bigint("state_bytes", true),
                bigint("state_rows_in_memory", false),
            ],
            Kind::Sources => vec![
                text("source"),
                text("connector"),
                Field::new("job", DataType::Utf8, true),
                Field::new("split", DataType::Int32, true),
                text("status"),
                bigint("rows_read", false),
                bigint("parse_errors", false),
                Field::new("last_error", DataType::Utf8, true),
                Field::new("offset", DataType::Utf8, true),
                timestamp("watermark"),
                bigint("paused_ms", false),
            ],
            Kind::Watermarks => vec![
                text("job"),
                int("vertex"),
                int("subtask"),
                text("operator"),
                timestamp("watermark"),
                bigint("late_rows", false),
            ],
            Kind::Checkpoints => vec![
                text("job"),
                bigint("epoch", false),
                Field::new(
                    "started",
                    DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                    false,
                ),
                Field::new("duration", DataType::Float64, true),
                bigint("bytes", false),
                text("status"),
                Field::new("failure_reason", DataType::Utf8, true),
            ],
            Kind::TaskManagers => vec![
                int("id"),
                Field::new("address", DataType::Utf8, true),
                text("role"),
                int("slots"),
                int("slots_used"),
                text("state"),
                Field::new(
                    "last_heartbeat",
                    DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                    true,
                ),
                int("tasks"),
                bigint("state_bytes", false),
            ],
        }))
    }

    fn rows(&self, status: &ClusterStatus) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = match self.kind {
            Kind::Jobs => {
                let jobs = &status.jobs;
                vec![
                    Arc::new(Int64Array::from_iter_values(jobs.iter().map(|j| j.view_id as i64))),
                    Arc::new(StringArray::from_iter_values(jobs.iter().map(|j| j.view_name.as_str()))),
                    Arc::new(StringArray::from_iter_values(jobs.iter().map(|j| j.status.as_str()))),
                    Arc::new(Int32Array::from_iter_values(jobs.iter().map(|j| j.parallelism as i32))),
                    Arc::new(
                        TimestampMicrosecondArray::from_iter_values(jobs.iter().map(|j| {
                            j.created
                                .duration_since(std::time::UNIX_EPOCH)
                                .map_or(0, |d| d.as_micros() as i64)
                        }))
                        .with_timezone("+00:00"),
                    ),
                    Arc::new(Int64Array::from_iter(
                        jobs.iter().map(|j| j.last_committed_epoch.map(|e| e as i64)),
                    )),
                    Arc::new(StringArray::from_iter_values(jobs.iter().map(|j| j.kind))),
                    Arc::new(Int32Array::from_iter_values(jobs.iter().map(|j| j.restarts as i32))),
                    // Deployments of the job: the first one and every restart.
                    Arc::new(Int32Array::from_iter_values(jobs.iter().map(|j| j.restarts as i32 + 1))),
                    Arc::new(StringArray::from_iter(jobs.iter().map(|j| j.last_failure.as_deref()))),
                    Arc::new(StringArray::from_iter(jobs.iter().map(|j| j.unbounded_state.as_deref()))),
                ]
            }
            Kind::Tasks => {
                let tasks = &status.tasks;
                vec![
                    Arc::new(StringArray::from_iter_values(tasks.iter().map(|t| t.view_name.as_str()))),
                    Arc::new(Int32Array::from_iter_values(tasks.iter().map(|t| t.vertex as i32))),
                    Arc::new(Int32Array::from_iter_values(tasks.iter().map(|t| t.subtask as i32))),
                    Arc::new(StringArray::from_iter_values(tasks.iter().map(|t| t.operators.as_str()))),
                    Arc::new(Int32Array::from_iter_values(tasks.iter().map(|t| t.taskmanager as i32))),
                    Arc::new(Int32Array::from_iter_values(tasks.iter().map(|t| t.slot as i32))),
                    Arc::new(StringArray::from_iter_values(tasks.iter().map(|t| t.status.as_str()))),
                    Arc::new(Int64Array::from_iter_values(tasks.iter().map(|t| t.rows_in as i64))),
                    Arc::new(Int64Array::from_iter_values(tasks.iter().map(|t| t.rows_out as i64))),
                    Arc::new(Int64Array::from_iter(tasks.iter().map(|t| t.last_epoch.map(|e| e as i64)))),
                    Arc::new(TimestampMicrosecondArray::from_iter(
                        tasks.iter().map(|t| watermark_value(t.watermark)),
                    )),
                    Arc::new(Int64Array::from_iter_values(
                        tasks
                            .iter()
                            .map(|t| t.operator_stats.iter().map(|o| o.state_rows as i64).sum::<i64>()),
                    )),
                    Arc::new(Int64Array::from_iter(tasks.iter().map(|t| t.state_bytes.map(|b| b as i64)))),
                    Arc::new(Int64Array::from_iter_values(tasks.iter().map(|t| {
                        t.operator_stats.iter().map(|o| o.state_rows_in_memory as i64).sum::<i64>()
                    }))),
                ]
            }
            Kind::Sources => self.source_rows(status),
            Kind::Checkpoints => {
                let rows = &status.checkpoints;
                let micros = |t: std::time::SystemTime| {
                    t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
                };
                vec![
                    Arc::new(StringArray::from_iter_values(rows.iter().map(|c| c.job_name.as_str()))),
                    Arc::new(Int64Array::from_iter_values(rows.iter().map(|c| c.epoch as i64))),
                    Arc::new(
                        TimestampMicrosecondArray::from_iter_values(rows.iter().map(|c| micros(c.started)))
                            .with_timezone("+00:00"),
                    ),
                    Arc::new(Float64Array::from_iter(
                        rows.iter().map(|c| c.duration.map(|d| d.as_secs_f64())),
                    )),
                    Arc::new(Int64Array::from_iter_values(rows.iter().map(|c| c.bytes as i64))),
                    Arc::new(StringArray::from_iter_values(rows.iter().map(|c| c.status))),
                    Arc::new(StringArray::from_iter(rows.iter().map(|c| c.failure.as_deref()))),
                ]
            }
            Kind::TaskManagers => {
                let rows = &status.task_managers;
                let micros = |t: std::time::SystemTime| {
                    t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
                };
                vec![
                    Arc::new(Int32Array::from_iter_values(rows.iter().map(|t| t.id as i32))),
                    Arc::new(StringArray::from_iter(rows.iter().map(|t| t.address.as_deref()))),
                    Arc::new(StringArray::from_iter_values(rows.iter().map(|t| t.role))),
                    Arc::new(Int32Array::from_iter_values(rows.iter().map(|t| t.slots as i32))),
                    Arc::new(Int32Array::from_iter_values(rows.iter().map(|t| t.slots_used as i32))),
                    Arc::new(StringArray::from_iter_values(rows.iter().map(|t| t.state.as_str()))),
                    Arc::new(
                        TimestampMicrosecondArray::from_iter(
                            rows.iter().map(|t| t.last_heartbeat.map(micros)),
                        )
                        .with_timezone("+00:00"),
                    ),
                    Arc::new(Int32Array::from_iter_values(rows.iter().map(|t| t.tasks as i32))),
                    Arc::new(Int64Array::from_iter_values(rows.iter().map(|t| t.state_bytes as i64))),
                ]
            }
            Kind::Watermarks => {
                let rows: Vec<_> = status
                    .tasks
                    .iter()
                    .flat_map(|t| t.operator_stats.iter().map(move |o| (t, o)))
                    .filter(|(t, o)| t.watermark.is_some() || o.late_rows > 0)
                    .collect();
                vec![
                    Arc::new(StringArray::from_iter_values(rows.iter().map(|(t, _)| t.view_name.as_str()))),
                    Arc::new(Int32Array::from_iter_values(rows.iter().map(|(t, _)| t.vertex as i32))),
                    Arc::new(Int32Array::from_iter_values(rows.iter().map(|(t, _)| t.subtask as i32))),
                    Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, o)| o.name.as_str()))),
                    Arc::new(TimestampMicrosecondArray::from_iter(
                        rows.iter().map(|(t, _)| watermark_value(t.watermark)),
                    )),
                    Arc::new(Int64Array::from_iter_values(rows.iter().map(|(_, o)| o.late_rows as i64))),
                ]
            }
        };
        Ok(RecordBatch::try_new(self.table_schema(), columns)?)
    }
}

impl SystemTable {
    /// Every running split reader, then every source no job reads.
    fn source_rows(&self, status: &ClusterStatus) -> Vec<ArrayRef> {
        let readers = metrics::snapshot();
        let job_name = |job: u64| status.jobs.iter().find(|j| j.view_id == job).map(|j| j.view_name.clone());
        let mut source = Vec::new();
        let mut connector = Vec::new();
        let mut job = Vec::new();
        let mut split = Vec::new();
        let mut state = Vec::new();
        let mut rows_read = Vec::new();
        let mut parse_errors = Vec::new();
        let mut last_error = Vec::new();
        let mut offset = Vec::new();
        let mut watermark = Vec::new();
        let mut paused_ms = Vec::new();
        for (task, m) in &readers {
            let s = m.state();
            source.push(m.source_name.clone());
            connector.push(m.connector.clone());
            job.push(job_name(task.job));
            split.push(Some(m.split as i32));
            state.push(s.status);
            rows_read.push(metrics::count(&m.rows_read) as i64);
            parse_errors.push(metrics::count(&m.parse_errors) as i64);
            last_error.push(s.last_error);
            offset.push((!s.offset.is_empty()).then_some(s.offset));
            watermark.push(watermark_value(Some(metrics::load(&m.watermark))));
            paused_ms.push((metrics::count(&m.paused_us) / 1000) as i64);
        }
        for def in self.store.sources() {
            if readers.iter().any(|(_, m)| m.source_id == def.id) {
                continue;
            }
            source.push(def.name.clone());
            connector.push(def.connector.clone());
            job.push(None);
            split.push(None);
            state.push("not read by any view".to_string());
            rows_read.push(0);
            parse_errors.push(0);
            last_error.push(None);
            offset.push(None);
            watermark.push(None);
            paused_ms.push(0);
        }
        vec![
            Arc::new(StringArray::from(source)),
            Arc::new(StringArray::from(connector)),
            Arc::new(StringArray::from(job)),
            Arc::new(Int32Array::from(split)),
            Arc::new(StringArray::from(state)),
            Arc::new(Int64Array::from(rows_read)),
            Arc::new(Int64Array::from(parse_errors)),
            Arc::new(StringArray::from(last_error)),
            Arc::new(StringArray::from(offset)),
            Arc::new(TimestampMicrosecondArray::from(watermark)),
            Arc::new(Int64Array::from(paused_ms)),
        ]
    }
}

#[async_trait]
impl TableProvider for SystemTable {
    fn schema(&self) -> SchemaRef {
        self.table_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let status = self.jobs.status().await.map_err(|e| DataFusionError::External(Box::new(e)))?;
        let batch = self.rows(&status)?;
        Ok(MemorySourceConfig::try_new_exec(&[vec![batch]], self.table_schema(), projection.cloned())?)
    }
}
