//! The runtime end to end without a server: a JobManager with an in-process TaskManager
//! deploying hand-written JobGraphs over a real stored table.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::DataType;
use arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use weir_plan::catalog::{ColumnDef, ColumnType, TableDef};
use weir_plan::job_graph::{
    AggregateCall, AggregateKind, AggregateSpec, Edge, FieldSpec, JobTarget, OperatorSpec, Partitioning,
    SourceSpec, TargetKind, Vertex,
};
use weir_storage::{InMemoryViewStates, Store, TableStore, ViewStateStore};

use super::*;
use crate::data_plane::{DataPlane, LocalDataPlane};
use crate::error::ExecError;
use crate::task_events::{JobManagerEndpoint, LocalEndpoint};
use crate::task_manager::{LocalTaskManager, TaskManager};
use crate::ViewTable;

struct Fixture {
    _dir: tempfile::TempDir,
    table: Arc<TableStore>,
    states: Arc<dyn ViewStateStore>,
    jobs: JobManager,
    /// What the TaskManagers report through.
    events: Arc<dyn JobManagerEndpoint>,
}

fn fixture() -> Fixture {
    fixture_with(1, 2)
}

/// `task_managers` in-process TaskManagers with `slots` slots each.
fn fixture_with(task_managers: usize, slots: usize) -> Fixture {
    fixture_full(task_managers, slots, false)
}

/// With `checkpoints`, a checkpoint every 100 ms into a store in the fixture's directory,
/// and restarts after 50 ms.
fn fixture_full(task_managers: usize, slots: usize, checkpoints: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (store, table) = store_with_table(dir.path());
    let states: Arc<dyn ViewStateStore> = Arc::new(InMemoryViewStates::new());
    let plane: Arc<dyn DataPlane> = Arc::new(LocalDataPlane::new());
    let (endpoint, events_rx) = LocalEndpoint::new();
    let endpoint: Arc<dyn JobManagerEndpoint> = Arc::new(endpoint);
    let store_dir = dir.path().join("checkpoints");
    let settings = checkpoints.then(|| CheckpointSettings {
        store: weir_storage::CheckpointStore::open(&store_dir.display().to_string()).unwrap(),
        interval: Duration::from_millis(100),
        protocol: Default::default(),
    });
    let state = crate::task_manager::StateServices {
        checkpoints: settings.as_ref().map(|s| s.store.clone()),
        ..Default::default()
    };
    let tms: Vec<Arc<dyn TaskManager>> = (0..task_managers)
        .map(|id| {
            Arc::new(
                LocalTaskManager::new(
                    id,
                    slots,
                    store.clone(),
                    states.clone(),
                    plane.clone(),
                    endpoint.clone(),
                )
                .with_state(state.clone()),
            ) as Arc<dyn TaskManager>
        })
        .collect();
    let config = JobManagerConfig {
        barrier_interval: Duration::from_millis(50),
        max_epochs_in_flight: 8,
        checkpoints: settings,
        restart_backoff: Duration::from_millis(50),
        ..JobManagerConfig::default()
    };
    let jobs = JobManager::start(config, tms, states.clone(), events_rx);
    Fixture { _dir: dir, table, states, jobs, events: endpoint }
}

/// A store in `dir` with table `t (id BIGINT PRIMARY KEY, k TEXT, v BIGINT)`.
fn store_with_table(dir: &std::path::Path) -> (Arc<Store>, Arc<TableStore>) {
    let store = Arc::new(Store::open(dir).unwrap());
    let table = store
        .create_table(TableDef {
            id: 0,
            schema_name: "public".into(),
            name: "t".into(),
            columns: vec![
                ColumnDef { name: "id".into(), column_type: ColumnType::Int8, not_null: true, default: None },
                ColumnDef { name: "k".into(), column_type: ColumnType::Text, not_null: false, default: None },
                ColumnDef { name: "v".into(), column_type: ColumnType::Int8, not_null: false, default: None },
            ],
            primary_key: vec![0],
            watermark: None,
            primary_key_name: None,
        })
        .unwrap();
    (store, table)
}

fn rows(t: &TableStore, ids: Vec<i64>, ks: Vec<&str>, vs: Vec<i64>) -> RecordBatch {
    RecordBatch::try_new(
        t.schema(),
        vec![
            Arc::new(Int64Array::from(ids)) as ArrayRef,
            Arc::new(StringArray::from(ks)),
            Arc::new(Int64Array::from(vs)),
        ],
    )
    .unwrap()
}

fn field(name: &str, t: DataType) -> FieldSpec {
    FieldSpec::new(name, &t)
}

/// `SELECT k, count(*), sum(v) FROM t GROUP BY k` at parallelism 2, as view 10.
fn aggregate_graph(table: &TableStore) -> JobGraph {
    let source_schema = FieldSpec::from_schema(&table.schema());
    let output = vec![field("k", DataType::Utf8), field("n", DataType::Int64), field("s", DataType::Int64)];
    JobGraph {
        watermark_alignment: None,
        target: JobTarget { id: 10, name: "agg".into(), kind: TargetKind::MaterializedView },
        vertices: vec![
            Vertex {
                id: 0,
                parallelism: 1,
                source: Some(SourceSpec::Table {
                    table_id: table.def().id,
                    table_name: "t".into(),
                    schema: source_schema,
                    watermark: None,
                }),
                inputs: vec![],
                chain: vec![OperatorSpec::Project {
                    exprs: vec!["_c1".into(), "_c2".into()],
                    output: vec![field("k", DataType::Utf8), field("v", DataType::Int64)],
                }],
                output: Default::default(),
            },
            Vertex {
                id: 1,
                parallelism: 2,
                source: None,
                inputs: vec![Edge { from: 0, partitioning: Partitioning::Hash(vec![0]) }],
                chain: vec![
                    OperatorSpec::HashAggregate(AggregateSpec {
                        group_columns: 1,
                        aggregates: vec![
                            AggregateCall { kind: AggregateKind::CountRows, input_column: None },
                            AggregateCall { kind: AggregateKind::Sum, input_column: Some(1) },
                        ],
                        output: output.clone(),
                        global: false,
                        window: None,
                        append_only_input: false,
                        state_ttl_ms: None,
                    }),
                    OperatorSpec::Materialize { view_id: 10 },
                ],
                output: Default::default(),
            },
        ],
    }
}

/// `SELECT * FROM agg WHERE s > 5` as view 11, reading view 10's two partitions.
fn filter_graph() -> JobGraph {
    let schema = vec![field("k", DataType::Utf8), field("n", DataType::Int64), field("s", DataType::Int64)];
    JobGraph {
        watermark_alignment: None,
        target: JobTarget { id: 11, name: "big".into(), kind: TargetKind::MaterializedView },
        vertices: vec![Vertex {
            id: 0,
            parallelism: 2,
            source: Some(SourceSpec::View { view_id: 10, view_name: "agg".into(), schema }),
            inputs: vec![],
            chain: vec![
                OperatorSpec::Filter { predicate: "_c2 > 5".into() },
                OperatorSpec::Materialize { view_id: 11 },
            ],
            output: Default::default(),
        }],
    }
}

async fn contents(states: &Arc<dyn ViewStateStore>, view: u64) -> Vec<String> {
    let snapshot = states.snapshot();
    let version = snapshot.views.get(&view).cloned().expect("view is committed");
    let ctx = SessionContext::new();
    ctx.register_table("v", Arc::new(ViewTable::new("v".into(), version.schema.clone(), Some(version))))
        .unwrap();
    let batches = ctx.sql("SELECT * FROM v ORDER BY 1").await.unwrap().collect().await.unwrap();
    pretty_format_batches(&batches).unwrap().to_string().lines().map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfills_maintains_and_flushes_a_view() {
    let f = fixture();
    f.table.insert(&rows(&f.table, vec![1, 2], vec!["a", "b"], vec![5, 7])).unwrap();
    f.jobs.deploy(aggregate_graph(&f.table)).await.unwrap();
    // CREATE returns with the backfill visible.
    assert_eq!(
        contents(&f.states, 10).await,
        [
            "+---+---+---+",
            "| k | n | s |",
            "+---+---+---+",
            "| a | 1 | 5 |",
            "| b | 1 | 7 |",
            "+---+---+---+"
        ]
    );

    f.table.insert(&rows(&f.table, vec![3], vec!["a"], vec![1])).unwrap();
    f.table.delete(&rows(&f.table, vec![2], vec!["b"], vec![7])).unwrap();
    f.jobs.flush().await.unwrap();
    assert_eq!(
        contents(&f.states, 10).await,
        ["+---+---+---+", "| k | n | s |", "+---+---+---+", "| a | 2 | 6 |", "+---+---+---+"]
    );

    let status = f.jobs.status().await.unwrap();
    assert_eq!(status.jobs.len(), 1);
    assert_eq!(status.jobs[0].status, "running");
    assert_eq!(status.tasks.len(), 3, "one source subtask and two aggregate subtasks");
    assert!(status.jobs[0].last_committed_epoch.is_some());

    f.jobs.drop_job(10).await.unwrap();
    assert!(f.states.snapshot().views.is_empty());
    assert!(f.jobs.status().await.unwrap().jobs.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_over_a_view_starts_from_its_contents_and_follows_its_changes() {
    let f = fixture();
    f.table.insert(&rows(&f.table, vec![1, 2, 3], vec!["a", "b", "c"], vec![5, 7, 9])).unwrap();
    f.jobs.deploy(aggregate_graph(&f.table)).await.unwrap();
    f.jobs.deploy(filter_graph()).await.unwrap();
    assert_eq!(
        contents(&f.states, 11).await,
        [
            "+---+---+---+",
            "| k | n | s |",
            "+---+---+---+",
            "| b | 1 | 7 |",
            "| c | 1 | 9 |",
            "+---+---+---+"
        ]
    );

    f.table.insert(&rows(&f.table, vec![4], vec!["a"], vec![3])).unwrap();
    f.table.delete(&rows(&f.table, vec![3], vec!["c"], vec![9])).unwrap();
    f.jobs.flush().await.unwrap();
    // Both views show the same epoch.
    assert_eq!(
        contents(&f.states, 11).await,
        [
            "+---+---+---+",
            "| k | n | s |",
            "+---+---+---+",
            "| a | 2 | 8 |",
            "| b | 1 | 7 |",
            "+---+---+---+"
        ]
    );

    // The upstream view cannot go away under a running reader.
    f.jobs.drop_job(11).await.unwrap();
    f.table.insert(&rows(&f.table, vec![5], vec!["b"], vec![1])).unwrap();
    f.jobs.flush().await.unwrap();
    assert_eq!(
        contents(&f.states, 10).await,
        [
            "+---+---+---+",
            "| k | n | s |",
            "+---+---+---+",
            "| a | 2 | 8 |",
            "| b | 2 | 8 |",
            "+---+---+---+"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_operator_fails_its_job_and_commits_go_on() {
    let f = fixture();
    let mut graph = aggregate_graph(&f.table);
    // 1 / (v - 5) divides by zero on the row with v = 5.
    graph.vertices[0].chain = vec![OperatorSpec::Project {
        exprs: vec!["_c1".into(), "10 / (_c2 - 5)".into()],
        output: vec![field("k", DataType::Utf8), field("v", DataType::Int64)],
    }];
    f.jobs.deploy(graph).await.unwrap();
    f.table.insert(&rows(&f.table, vec![1], vec!["a"], vec![5])).unwrap();
    // FLUSH returns (rather than waiting for the failed view forever) and says which view
    // failed and why.
    match f.jobs.flush().await {
        Err(ExecError::ViewFailed { view, reason }) => {
            assert_eq!(view, "agg");
            assert!(reason.contains("Divide by zero"), "{reason}");
        }
        other => panic!("FLUSH over a failed view returned {other:?}"),
    }
    let status = f.jobs.status().await.unwrap();
    assert!(status.jobs[0].status.starts_with("failed:"), "{}", status.jobs[0].status);
    let failure = status.jobs[0].last_failure.clone().unwrap_or_default();
    assert!(failure.contains("Divide by zero"), "{failure}");
    // The job is restarted after its backoff; the same row fails it again.
    for _ in 0..100 {
        if f.jobs.status().await.unwrap().jobs[0].restarts >= 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the failed job was not restarted");
}

/// A cancelled task winds down after its job was deployed again: what it reports then is
/// about a deployment that is gone, and must neither fail nor advance the running one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_an_earlier_deployment_are_ignored() {
    let f = fixture();
    f.jobs.deploy(aggregate_graph(&f.table)).await.unwrap();
    f.jobs.flush().await.unwrap();
    let task = TaskId { job: 10, vertex: 0, subtask: 0 };
    let stale = TaskEvent::Failed {
        task,
        deployment: 1,
        error: "a cancelled run's last words".into(),
        sqlstate: None,
    };
    f.events.report(stale).unwrap();
    f.table.insert(&rows(&f.table, vec![1], vec!["a"], vec![5])).unwrap();
    f.jobs.flush().await.unwrap();
    let status = f.jobs.status().await.unwrap();
    assert_eq!(status.jobs[0].status, "running", "{:?}", status.jobs[0].last_failure);
    assert_eq!(
        contents(&f.states, 10).await,
        ["+---+---+---+", "| k | n | s |", "+---+---+---+", "| a | 1 | 5 |", "+---+---+---+"]
    );
    // A failure whose reporter cannot tell the deployment is taken as the current one's.
    let current = TaskEvent::Failed { task, deployment: 0, error: "lost".into(), sqlstate: None };
    f.events.report(current).unwrap();
    for _ in 0..100 {
        let status = f.jobs.status().await.unwrap();
        if status.jobs[0].last_failure.as_deref().is_some_and(|e| e.contains("lost")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("a failure of the current deployment did not fail the job");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subtasks_spread_over_taskmanagers_and_agree_with_one() {
    let f = fixture_with(2, 1);
    let keys: Vec<i64> = (0..2000).collect();
    let names: Vec<String> = keys.iter().map(|k| format!("k{}", k % 37)).collect();
    f.table
        .insert(&rows(&f.table, keys.clone(), names.iter().map(String::as_str).collect(), keys.clone()))
        .unwrap();
    f.jobs.deploy(aggregate_graph(&f.table)).await.unwrap();
    let status = f.jobs.status().await.unwrap();
    let used: std::collections::BTreeSet<usize> = status.tasks.iter().map(|t| t.taskmanager).collect();
    assert_eq!(used.len(), 2, "both taskmanagers run subtasks: {:?}", status.tasks);
    let spread = contents(&f.states, 10).await;

    let single = fixture_with(1, 1);
    single
        .table
        .insert(&rows(&single.table, keys.clone(), names.iter().map(String::as_str).collect(), keys))
        .unwrap();
    single.jobs.deploy(aggregate_graph(&single.table)).await.unwrap();
    assert_eq!(spread, contents(&single.states, 10).await);
    assert_eq!(spread.len(), 37 + 4, "37 groups plus the table frame");
}

/// The latest commit record of job 10 in the fixture's store, read without touching the
/// store (`recovery_point` also sweeps it, which only startup may do).
async fn latest_record(f: &Fixture) -> Option<crate::checkpoint_protocol::CheckpointMetadata> {
    let store =
        weir_storage::CheckpointStore::open(&f._dir.path().join("checkpoints").display().to_string()).ok()?;
    let mut latest: Option<crate::checkpoint_protocol::CheckpointMetadata> = None;
    for path in store.list("job-10/").await.ok()?.iter().filter(|p| p.ends_with("_metadata.json")) {
        let bytes = store.get_bytes(path).await.ok()??;
        let m: crate::checkpoint_protocol::CheckpointMetadata = serde_json::from_slice(&bytes).ok()?;
        if latest.as_ref().is_none_or(|l| l.epoch < m.epoch) {
            latest = Some(m);
        }
    }
    latest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_restarts_from_its_checkpoint_and_loses_nothing() {
    let f = fixture_full(1, 2, true);
    f.table.insert(&rows(&f.table, vec![1, 2, 3], vec!["a", "b", "a"], vec![5, 7, 1])).unwrap();
    f.jobs.deploy(aggregate_graph(&f.table)).await.unwrap();
    // Wait for a committed checkpoint: its record names a piece per stateful task and the
    // table source's changelog offset.
    let record = loop {
        if let Some(r) = latest_record(&f).await {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(record.pieces.iter().any(|p| p.task.vertex == 1), "{record:?}");
    assert_eq!(record.source_offsets.len(), 1);
    let status = f.jobs.status().await.unwrap();
    assert!(status.checkpoints.iter().any(|c| c.status == "completed"), "{:?}", status.checkpoints);

    // Rows after the checkpoint, then a failure: the restarted job restores the checkpoint
    // and reads the changelog from its offset, so every row counts once.
    f.table.insert(&rows(&f.table, vec![4], vec!["b"], vec![10])).unwrap();
    f.jobs.flush().await.unwrap();
    // Later checkpoints of the aggregate are deltas on top of a full snapshot. The records
    // are read directly: `recovery_point` sweeps partial checkpoints, which would race the
    // running job's uploads.
    let chained = |r: &crate::checkpoint_protocol::CheckpointMetadata| {
        r.pieces.iter().filter(|p| p.task.vertex == 1 && p.task.subtask == 0).count()
    };
    for _ in 0..250 {
        if latest_record(&f).await.is_some_and(|r| chained(&r) >= 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let latest = latest_record(&f).await.expect("a checkpoint");
    assert!(chained(&latest) >= 2, "{:?}", latest.pieces);
    f.jobs.inject_failure(10).await.unwrap();
    f.table.insert(&rows(&f.table, vec![5], vec!["c"], vec![2])).unwrap();
    for _ in 0..200 {
        let status = f.jobs.status().await.unwrap();
        if status.jobs[0].restarts >= 1 && status.jobs[0].status == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = f.jobs.status().await.unwrap();
    assert_eq!((status.jobs[0].restarts, status.jobs[0].status.as_str()), (1, "running"));
    assert!(status.jobs[0].last_failure.as_deref().unwrap_or("").contains("failure injected"));
    f.table.insert(&rows(&f.table, vec![6], vec!["a"], vec![100])).unwrap();
    f.jobs.flush().await.unwrap();
    assert_eq!(
        contents(&f.states, 10).await,
        [
            "+---+---+-----+",
            "| k | n | s   |",
            "+---+---+-----+",
            "| a | 3 | 106 |",
            "| b | 2 | 17  |",
            "| c | 1 | 2   |",
            "+---+---+-----+"
        ]
    );
}

/// A worker TaskManager in this process: a TaskManager without tables or view store that
/// placement treats as a cluster worker.
struct InProcessWorker(LocalTaskManager);

impl TaskManager for InProcessWorker {
    fn id(&self) -> usize {
        self.0.id()
    }
    fn slots(&self) -> usize {
        self.0.slots()
    }
    fn role(&self) -> crate::task_manager::TaskManagerRole {
        crate::task_manager::TaskManagerRole::Worker
    }
    fn deploy(&self, task: crate::task_manager::TaskDescriptor) -> ExecResult<()> {
        self.0.deploy(task)
    }
    fn inject_barrier(&self, task: TaskId, barrier: crate::message::Barrier) -> ExecResult<()> {
        self.0.inject_barrier(task, barrier)
    }
    fn cancel_job(&self, job: u64) {
        self.0.cancel_job(job)
    }
    fn release_channels(&self, channels: &[ChannelId]) {
        self.0.release_channels(channels)
    }
}

/// A cluster-mode JobManager: views wait for worker slots, run on the workers with their
/// materialize in the frontend, and move to the remaining worker when one is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_jobs_wait_for_slots_and_move_off_a_lost_worker() {
    let dir = tempfile::tempdir().unwrap();
    let (store, table) = store_with_table(dir.path());
    let states: Arc<dyn ViewStateStore> = Arc::new(InMemoryViewStates::new());
    let plane: Arc<dyn DataPlane> = Arc::new(LocalDataPlane::new());
    let (endpoint, events_rx) = LocalEndpoint::new();
    let endpoint: Arc<dyn JobManagerEndpoint> = Arc::new(endpoint);
    let frontend: Arc<dyn TaskManager> =
        Arc::new(LocalTaskManager::new(0, 2, store.clone(), states.clone(), plane.clone(), endpoint.clone()));
    let config = JobManagerConfig {
        barrier_interval: Duration::from_millis(50),
        restart_backoff: Duration::from_millis(50),
        cluster: Some(SlotPolicy::Spread),
        ..JobManagerConfig::default()
    };
    let jobs = JobManager::start(config, vec![frontend], states.clone(), events_rx);
    table.insert(&rows(&table, vec![1, 2], vec!["a", "b"], vec![5, 7])).unwrap();

    // No worker yet: the view waits (and says so), then runs once slots appear.
    let creating = tokio::spawn({
        let jobs = jobs.clone();
        let graph = aggregate_graph(&table);
        async move { jobs.deploy(graph).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(jobs.status().await.unwrap().jobs[0].status, "waiting_for_slots");
    let worker = |id| {
        Arc::new(InProcessWorker(LocalTaskManager::worker(id, 2, plane.clone(), endpoint.clone())))
            as Arc<dyn TaskManager>
    };
    // One worker with two slots is enough for parallelism 2.
    jobs.add_task_manager(worker(1)).unwrap();
    creating.await.unwrap().unwrap();
    let expected_before = [
        "+---+---+---+",
        "| k | n | s |",
        "+---+---+---+",
        "| a | 1 | 5 |",
        "| b | 1 | 7 |",
        "+---+---+---+",
    ];
    assert_eq!(contents(&states, 10).await, expected_before);
    let status = jobs.status().await.unwrap();
    let on = |tm: usize| {
        status.tasks.iter().filter(|t| t.taskmanager == tm).map(|t| t.operators.clone()).collect::<Vec<_>>()
    };
    assert_eq!(on(0).len(), 3, "table source and both materialize subtasks in the frontend: {:?}", on(0));
    assert!(on(0).iter().all(|ops| !ops.contains("HashAggregate")), "{:?}", on(0));
    assert_eq!(on(1), vec!["HashAggregate".to_string(); 2], "in the worker's two slots");

    // Worker 1 is lost: the job restarts with both aggregate subtasks on worker 2.
    jobs.add_task_manager(worker(2)).unwrap();
    jobs.task_manager_lost(1, "test".into()).unwrap();
    table.insert(&rows(&table, vec![3], vec!["a"], vec![1])).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = jobs.status().await.unwrap();
        if status.jobs[0].status == "running" && status.tasks.iter().all(|t| t.taskmanager != 1) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not running again: {:?}", status.jobs);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    jobs.flush().await.unwrap();
    assert_eq!(
        contents(&states, 10).await,
        [
            "+---+---+---+",
            "| k | n | s |",
            "+---+---+---+",
            "| a | 2 | 6 |",
            "| b | 1 | 7 |",
            "+---+---+---+"
        ]
    );
    let status = jobs.status().await.unwrap();
    let lost = status.task_managers.iter().find(|t| t.id == 1).unwrap();
    assert_eq!(lost.state, "lost: test");
    let remaining = status.task_managers.iter().find(|t| t.id == 2).unwrap();
    assert_eq!((remaining.slots_used, remaining.tasks), (2, 2));
}

#[tokio::test]
async fn startup_sweeps_the_checkpoints_of_jobs_the_catalog_does_not_have() {
    let f = fixture_full(1, 2, true);
    let store = weir_storage::CheckpointStore::open(&f._dir.path().join("checkpoints").display().to_string())
        .unwrap();
    for path in ["job-3/epoch-000000000001/v0-s0-d1.state", "job-4/epoch-000000000001/v0-s0-d1.state"] {
        store.put_bytes(path, vec![1u8].into()).await.unwrap();
    }
    let keep = std::collections::BTreeSet::from([3u64]);
    assert_eq!(f.jobs.sweep_checkpoints_except(&keep).await.unwrap(), 1);
    assert_eq!(store.list("").await.unwrap(), ["job-3/epoch-000000000001/v0-s0-d1.state"]);
}
