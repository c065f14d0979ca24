//! `weir_catalog`: the streaming runtime as SQL tables. Each scan asks the JobManager for
//! its current status, so the rows are live.
//!
//! * `jobs`: one row per materialized view's job — view, status, parallelism, created,
//!   last committed epoch.
//! * `tasks`: one row per subtask — job, vertex, subtask, operators, taskmanager, slot,
//!   status, rows in / out, last finished epoch.

use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, Session};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use weir_executor::{ClusterStatus, JobManager};

pub fn schema(jobs: JobManager) -> Arc<dyn SchemaProvider> {
    Arc::new(WeirCatalog { jobs })
}

struct WeirCatalog {
    jobs: JobManager,
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
}

const TABLES: [(&str, Kind); 2] = [("jobs", Kind::Jobs), ("tasks", Kind::Tasks)];

#[async_trait]
impl SchemaProvider for WeirCatalog {
    fn table_names(&self) -> Vec<String> {
        TABLES.iter().map(|(n, _)| n.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(TABLES.iter().find(|(n, _)| *n == name).map(|(_, kind)| {
            Arc::new(SystemTable { kind: *kind, jobs: self.jobs.clone() }) as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLES.iter().any(|(n, _)| *n == name)
    }
}

struct SystemTable {
    kind: Kind,
    jobs: JobManager,
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
                ]
            }
        };
        Ok(RecordBatch::try_new(self.table_schema(), columns)?)
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
