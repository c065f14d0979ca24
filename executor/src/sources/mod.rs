//! Sources: where a vertex's rows come from when no upstream vertex of its job feeds it.
//!
//! There are three kinds, one per [`SourceSpec`]:
//!
//! * **table** ([`table`]): a stored table's snapshot, then its changelog;
//! * **connector** ([`connector`]): one split of a `CREATE SOURCE`'s connector, read a batch
//!   at a time on the bounded [`reader_pool`], with the split's watermark ([`watermark`]),
//!   in step with the job's other event-time sources when the job aligns them
//!   ([`alignment`]);
//! * **view**: another view's materialize subtask. It needs no reader here: the JobManager
//!   gives the task an input channel, and the upstream materialize task, at the barrier
//!   carrying the subscription, sends its contents and then every change into it.
//!
//! A table or connector source runs beside its task and feeds it through one more input
//! channel (edge 0). The JobManager injects barriers into the source, which forwards them in
//! order with its rows and, on checkpoint barriers, records its offset. [`start`] is the one
//! place that wires a source for a task.

pub mod alignment;
pub mod connector;
pub mod proctime;
pub mod reader_pool;
pub mod table;
pub mod watermark;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::Instrument;
use weir_plan::job_graph::{schema_of, SourceSpec};
use weir_storage::Store;

use self::connector::{ConnectorSource, OnError, SourceSettings};
use self::table::TableSource;
use self::watermark::WatermarkGenerator;
use crate::connectors::metrics::SourceMetrics;
use crate::data_plane::local_channel;
use crate::error::{ExecError, ExecResult};
use crate::message::Barrier;
use crate::task::{TaskId, TaskInput};
use crate::task_events::{JobManagerEndpoint, TaskEvent};

/// A source split with no rows for this long stops holding back the watermark.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 5000;

/// The options every source takes besides its connector's: `on_error` and `idle_timeout_ms`.
pub fn source_settings(options: &BTreeMap<String, String>) -> ExecResult<SourceSettings> {
    let on_error = match options.get("on_error").map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("skip") => OnError::Skip,
        Some("fail") => OnError::Fail,
        Some(other) => {
            return Err(ExecError::Connector(format!("on_error must be 'skip' or 'fail', not '{other}'")))
        }
    };
    let idle_timeout_ms = match options.get("idle_timeout_ms") {
        None => DEFAULT_IDLE_TIMEOUT_MS,
        Some(v) => v.parse::<u64>().map_err(|_| {
            ExecError::Connector(format!("idle_timeout_ms must be a whole number of milliseconds, not '{v}'"))
        })?,
    };
    Ok(SourceSettings { on_error, idle_timeout: std::time::Duration::from_millis(idle_timeout_ms) })
}

/// A source started for a task: the input it feeds, where the JobManager's barriers go in,
/// and how to abort it (it also stops when its barrier sender is dropped).
pub struct StartedSource {
    pub input: TaskInput,
    pub barriers: mpsc::UnboundedSender<Barrier>,
    pub abort: Option<tokio::task::AbortHandle>,
}

/// What a source needs from the TaskManager that starts it.
pub struct SourceContext<'a> {
    pub task: TaskId,
    /// The deployment of the task's job, for the events the source reports.
    pub deployment: u64,
    /// The stored tables: only in the frontend process.
    pub store: Option<&'a Store>,
    pub events: Arc<dyn JobManagerEndpoint>,
    /// The offset recorded in the checkpoint the task restores from, if any.
    pub offset: Option<&'a serde_json::Value>,
    /// The files a `file` source may read.
    pub files: &'a crate::connectors::FileAccess,
    /// The most splits a source may have.
    pub split_limit: crate::connectors::SplitLimit,
    /// Where connector reads run.
    pub readers: &'a reader_pool::ReaderPool,
    /// The process's watermark alignment groups, and the job's alignment if it has one.
    pub alignment: &'a alignment::AlignmentGroups,
    pub watermark_alignment: Option<alignment::SourceAlignment>,
}

/// Starts the source of a task whose vertex reads a table or a connector; `None` for a
/// vertex without a source or reading a view (its input channel is already in the
/// task's descriptor).
pub fn start(spec: Option<&SourceSpec>, cx: SourceContext<'_>) -> ExecResult<Option<StartedSource>> {
    match spec {
        Some(SourceSpec::Table { table_id, table_name, schema, watermark }) => {
            let store = cx.store.ok_or_else(|| {
                ExecError::InvalidGraph(format!("table {table_name} is read in the frontend process only"))
            })?;
            let table = store
                .tables()
                .into_iter()
                .find(|t| t.def().id == *table_id)
                .ok_or_else(|| ExecError::InvalidGraph(format!("table {table_name} no longer exists")))?;
            let offset = match cx.offset {
                Some(offset) => Some(offset.as_u64().ok_or_else(|| {
                    ExecError::Internal(format!("table offset {offset} in a checkpoint is not a number"))
                })?),
                None => None,
            };
            let (tx, rx) = local_channel();
            let (barrier_tx, barrier_rx) = mpsc::unbounded_channel();
            let planned = schema.iter().map(|field| field.name.clone()).collect();
            let mut source = TableSource::new(table, offset, tx, barrier_rx).with_planned_columns(planned);
            if let Some(watermark) = watermark {
                source = source.with_watermark(WatermarkGenerator::new(watermark, &schema_of(schema)?)?);
            }
            let (id, deployment, events) = (cx.task, cx.deployment, cx.events);
            let span = tracing::info_span!("table_source", job = id.job, table = %table_name);
            let reader = tokio::spawn(
                async move {
                    match source.run().await {
                        Err(ExecError::ChannelClosed(_)) => tracing::debug!("table source output closed"),
                        Err(e) => {
                            tracing::error!(error = %e, "table source failed");
                            let _ = events.report(TaskEvent::failed(id, deployment, &e));
                        }
                        Ok(()) => {}
                    }
                }
                .instrument(span),
            );
            Ok(Some(StartedSource {
                input: TaskInput::new(0, rx),
                barriers: barrier_tx,
                abort: Some(reader.abort_handle()),
            }))
        }
        Some(SourceSpec::Connector {
            source_id,
            source_name,
            connector,
            options,
            schema,
            watermark,
            proctime_column,
            read_columns,
        }) => {
            let schema = schema_of(schema)?;
            let settings = source_settings(options)?;
            let split = cx.task.subtask;
            let mut reader = crate::connectors::open_connector(
                connector,
                options,
                weir_plan::catalog::connector_schema(&schema, *proctime_column),
                cx.files,
                cx.split_limit,
            )?
            .open(split)?;
            if let Some(offset) = cx.offset {
                reader.seek(offset)?;
            }
            reader.decode_on(cx.readers);
            if let Some(columns) = read_columns {
                // The connector's columns are the source's without the processing-time column.
                let proctime = proctime_column.unwrap_or(usize::MAX);
                let connector_columns: Vec<usize> = columns
                    .iter()
                    .filter(|c| **c != proctime)
                    .map(|c| if *c > proctime { c - 1 } else { *c })
                    .collect();
                reader.read_only(&connector_columns);
            }
            let metrics = Arc::new(SourceMetrics::new(*source_id, source_name, connector, split));
            crate::connectors::metrics::register(cx.task, metrics.clone());
            let (tx, rx) = local_channel();
            let (barrier_tx, barrier_rx) = mpsc::unbounded_channel();
            let mut source =
                ConnectorSource::new(reader, &schema, watermark.as_ref(), settings, metrics, tx, barrier_rx)?;
            if let Some(column) = proctime_column {
                source = source.with_proctime(&schema, *column)?;
            }
            if let (Some(alignment), Some(_)) = (cx.watermark_alignment, watermark) {
                source = source.with_alignment(cx.alignment.join(cx.task, cx.deployment, alignment));
            }
            let (id, deployment, events) = (cx.task, cx.deployment, cx.events);
            let span = tracing::info_span!("source", job = id.job, source = %source_name, split);
            let readers = cx.readers.clone();
            let reader = tokio::spawn(
                async move {
                    // The failure is reported while the source still holds its barrier channel,
                    // so the JobManager hears the reason before it finds the channel closed.
                    match source.run(&readers).await {
                        // Its task has stopped; the task reports why (or its job was stopped).
                        Err(ExecError::ChannelClosed(_)) => tracing::debug!("source output closed"),
                        Err(e) => {
                            tracing::error!(error = %e, "source failed");
                            let _ = events.report(TaskEvent::failed(id, deployment, &e));
                        }
                        Ok(()) => {}
                    }
                    drop(source);
                }
                .instrument(span),
            );
            Ok(Some(StartedSource {
                input: TaskInput::new(0, rx),
                barriers: barrier_tx,
                abort: Some(reader.abort_handle()),
            }))
        }
        Some(SourceSpec::View { .. }) | None => Ok(None),
    }
}
