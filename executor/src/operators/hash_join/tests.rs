use std::sync::Arc;

use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::DataType;
use weir_plan::job_graph::{FieldSpec, JoinKind, JoinSpec};
use weir_storage::keyed_state::{InMemoryStateBackend, KeyedStateBackend, StateNamespace};

use super::*;
use crate::operators::test_util::{assert_output, batch, format};

const NS: StateNamespace = StateNamespace { job: 9, deployment: 0, vertex: 1, subtask: 0, operator_index: 0 };

fn spec(kind: JoinKind, filter: Option<&str>) -> JoinSpec {
    JoinSpec {
        kind,
        left_keys: vec![0],
        right_keys: vec![0],
        null_equals_null: false,
        left_fields: vec![FieldSpec::new("k", &DataType::Int64), FieldSpec::new("l", &DataType::Utf8)],
        right_fields: vec![FieldSpec::new("k2", &DataType::Int64), FieldSpec::new("r", &DataType::Utf8)],
        filter: filter.map(str::to_string),
        left_state_bound: None,
        right_state_bound: None,
        left_expiry: None,
        right_expiry: None,
        lateness: None,
        state_ttl_ms: None,
    }
}

fn join_with(
    kind: JoinKind,
    filter: Option<&str>,
    backend: Arc<dyn KeyedStateBackend>,
    cache: usize,
) -> HashJoin {
    HashJoin::new(&spec(kind, filter), &ExprCompiler::default(), backend, NS, cache).unwrap()
}

fn join(kind: JoinKind) -> HashJoin {
    join_with(kind, None, Arc::new(InMemoryStateBackend::default()), usize::MAX)
}

fn side(keys: Vec<Option<i64>>, values: Vec<&str>, ops: Option<Vec<i8>>) -> StreamBatch {
    batch(
        vec![
            ("k", Arc::new(Int64Array::from(keys)) as ArrayRef),
            ("v", Arc::new(StringArray::from(values)) as ArrayRef),
        ],
        ops,
    )
}

fn feed(join: &mut HashJoin, input: usize, b: StreamBatch) -> Vec<StreamBatch> {
    let mut out = Vec::new();
    join.process_batch(input, b, &mut out).unwrap();
    out
}

#[test]
fn an_inner_join_matches_duplicates_and_retracts_exactly() {
    let mut j = join(JoinKind::Inner);
    assert!(feed(&mut j, LEFT, side(vec![Some(1), Some(1), Some(2)], vec!["a", "a", "b"], None)).is_empty());
    let out = feed(&mut j, RIGHT, side(vec![Some(1), Some(3)], vec!["x", "y"], None));
    assert_output(
        &out,
        &[
            "+----+---+---+----+---+",
            "| op | k | l | k2 | r |",
            "+----+---+---+----+---+",
            "| +  | 1 | a | 1  | x |",
            "| +  | 1 | a | 1  | x |",
            "+----+---+---+----+---+",
        ],
    );
    // One copy of the left row goes: one joined row goes with it.
    let out = feed(&mut j, LEFT, side(vec![Some(1)], vec!["a"], Some(vec![-1])));
    assert_output(
        &out,
        &[
            "+----+---+---+----+---+",
            "| op | k | l | k2 | r |",
            "+----+---+---+----+---+",
            "| -  | 1 | a | 1  | x |",
            "+----+---+---+----+---+",
        ],
    );
    assert_eq!(j.state_rows(), 4);
}

#[test]
fn a_left_join_pads_unmatched_rows_and_swaps_the_padding_as_matches_come_and_go() {
    let mut j = join(JoinKind::LeftOuter);
    let out = feed(&mut j, LEFT, side(vec![Some(1), None], vec!["a", "n"], None));
    assert_output(
        &out,
        &[
            "+----+---+---+----+---+",
            "| op | k | l | k2 | r |",
            "+----+---+---+----+---+",
            "| +  | 1 | a |    |   |",
            "| +  |   | n |    |   |",
            "+----+---+---+----+---+",
        ],
    );
    let out = feed(&mut j, RIGHT, side(vec![Some(1), Some(1)], vec!["x", "y"], None));
    assert_output(
        &out,
        &[
            "+----+---+---+----+---+",
            "| op | k | l | k2 | r |",
            "+----+---+---+----+---+",
            "| -  | 1 | a |    |   |",
            "| +  | 1 | a | 1  | x |",
            "| +  | 1 | a | 1  | y |",
            "+----+---+---+----+---+",
        ],
    );
    let out = feed(&mut j, RIGHT, side(vec![Some(1), Some(1)], vec!["x", "y"], Some(vec![-1, -1])));
    assert_output(
        &out,
        &[
            "+----+---+---+----+---+",
            "| op | k | l | k2 | r |",
            "+----+---+---+----+---+",
            "| -  | 1 | a | 1  | x |",
            "| -  | 1 | a | 1  | y |",
            "| +  | 1 | a |    |   |",
            "+----+---+---+----+---+",
        ],
    );
    // The NULL-keyed row is retracted as it was emitted.
    let out = feed(&mut j, LEFT, side(vec![None], vec!["n"], Some(vec![-1])));
    assert_eq!(format(&out)[3], "| -  |   | n |    |   |");
}

#[test]
fn a_full_join_pads_both_sides() {
    let mut j = join(JoinKind::FullOuter);
    let mut out = feed(&mut j, RIGHT, side(vec![Some(1)], vec!["x"], None));
    out.extend(feed(&mut j, LEFT, side(vec![Some(1), Some(2)], vec!["a", "b"], None)));
    out.extend(feed(&mut j, LEFT, side(vec![Some(1)], vec!["a"], Some(vec![-1]))));
    assert_output(
        &out,
        &[
            "+----+---+---+----+---+",
            "| op | k | l | k2 | r |",
            "+----+---+---+----+---+",
            "| +  |   |   | 1  | x |",
            "| -  |   |   | 1  | x |",
            "| +  | 1 | a | 1  | x |",
            "| +  | 2 | b |    |   |",
            "| -  | 1 | a | 1  | x |",
            "| +  |   |   | 1  | x |",
            "+----+---+---+----+---+",
        ],
    );
}

#[test]
fn an_extra_condition_decides_what_counts_as_a_match() {
    // ON l.k = r.k AND l.l < r.r
    let mut j = join_with(
        JoinKind::LeftOuter,
        Some("_c1 < _c3"),
        Arc::new(InMemoryStateBackend::default()),
        usize::MAX,
    );
    feed(&mut j, LEFT, side(vec![Some(1), Some(1)], vec!["b", "d"], None));
    let out = feed(&mut j, RIGHT, side(vec![Some(1)], vec!["c"], None));
    assert_output(
        &out,
        &[
            "+----+---+---+----+---+",
            "| op | k | l | k2 | r |",
            "+----+---+---+----+---+",
            "| -  | 1 | b |    |   |",
            "| +  | 1 | b | 1  | c |",
            "+----+---+---+----+---+",
        ],
    );
}

#[test]
fn rows_of_a_batch_matching_the_same_rows_pair_with_each_of_them_under_the_condition() {
    // ON l.k = r.k AND l.l < r.r: the left rows are candidates of several right rows of
    // one batch (each decoded once for all of them).
    let mut j =
        join_with(JoinKind::Inner, Some("_c1 < _c3"), Arc::new(InMemoryStateBackend::default()), usize::MAX);
    feed(&mut j, LEFT, side(vec![Some(1), Some(1), Some(2)], vec!["b", "d", "x"], None));
    let out =
        feed(&mut j, RIGHT, side(vec![Some(1), Some(1), Some(2), Some(1)], vec!["c", "e", "a", "a"], None));
    assert_output(
        &out,
        &[
            "+----+---+---+----+---+",
            "| op | k | l | k2 | r |",
            "+----+---+---+----+---+",
            "| +  | 1 | b | 1  | c |",
            "| +  | 1 | b | 1  | e |",
            "| +  | 1 | d | 1  | e |",
            "+----+---+---+----+---+",
        ],
    );
}

#[test]
fn semi_and_anti_joins_follow_whether_a_left_row_has_a_match() {
    for (kind, expected) in [
        (JoinKind::LeftSemi, ["| +  | 1 | a |", "| -  | 1 | a |"]),
        (JoinKind::LeftAnti, ["| -  | 1 | a |", "| +  | 1 | a |"]),
    ] {
        let mut j = join(kind);
        let first = feed(&mut j, LEFT, side(vec![Some(1)], vec!["a"], None));
        assert_eq!(!first.is_empty(), kind == JoinKind::LeftAnti, "{kind:?}");
        // Two matches arrive, then both go: one change each way.
        let mut out = feed(&mut j, RIGHT, side(vec![Some(1), Some(1)], vec!["x", "y"], None));
        out.extend(feed(&mut j, RIGHT, side(vec![Some(1), Some(1)], vec!["x", "y"], Some(vec![-1, -1]))));
        let lines = format(&out);
        assert_eq!(&lines[3..5], &expected, "{kind:?}: {lines:#?}");
        assert_eq!(lines.len(), 6, "{kind:?}: {lines:#?}");
    }
}

#[test]
fn a_hot_key_comes_out_in_bounded_batches() {
    let mut j = join(JoinKind::Inner);
    let n = OUTPUT_BATCH_ROWS * 2 + 10;
    let keys = vec![Some(7); n];
    let values: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
    feed(&mut j, RIGHT, side(keys, values.iter().map(String::as_str).collect(), None));
    let out = feed(&mut j, LEFT, side(vec![Some(7)], vec!["hot"], None));
    assert_eq!(out.iter().map(StreamBatch::num_rows).collect::<Vec<_>>(), vec![8192, 8192, 10]);
}

#[test]
fn state_survives_eviction_and_a_snapshot_restore_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let rocks =
        weir_storage::keyed_state::RocksDbStateBackend::open(dir.path(), &Default::default()).unwrap();
    let backends: Vec<Arc<dyn KeyedStateBackend>> =
        vec![Arc::new(InMemoryStateBackend::default()), Arc::new(rocks)];
    for backend in backends {
        // A cache of 4 rows for 200 keys: most keys live only in the backend.
        let mut j = join_with(JoinKind::LeftOuter, None, backend.clone(), 4);
        let keys: Vec<Option<i64>> = (0..200).map(Some).collect();
        let values = vec!["a"; 200];
        feed(&mut j, LEFT, side(keys.clone(), values.clone(), None));
        let barrier = Barrier::checkpoint(1);
        j.on_barrier(&barrier, &mut Vec::new()).unwrap();
        assert!(j.states[LEFT].cached_rows() <= 4);
        let snapshot = j.snapshot(false).unwrap().unwrap();
        let mut bytes = Vec::new();
        (snapshot.deferred.unwrap())(&mut bytes).unwrap();

        // A fresh operator (another namespace's worth of leftovers is dropped by restore).
        let mut restored = join_with(JoinKind::LeftOuter, None, backend.clone(), 4);
        restored.restore(&snapshot.meta, Some(&mut bytes.as_slice())).unwrap();
        assert_eq!(restored.state_rows(), 200);
        let out = feed(&mut restored, RIGHT, side(vec![Some(150)], vec!["x"], None));
        assert_output(
            &out,
            &[
                "+----+-----+---+-----+---+",
                "| op | k   | l | k2  | r |",
                "+----+-----+---+-----+---+",
                "| -  | 150 | a |     |   |",
                "| +  | 150 | a | 150 | x |",
                "+----+-----+---+-----+---+",
            ],
        );
    }
}

#[test]
fn within_an_epoch_rows_in_memory_stay_bounded_by_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let rocks =
        weir_storage::keyed_state::RocksDbStateBackend::open(dir.path(), &Default::default()).unwrap();
    let backend: Arc<dyn KeyedStateBackend> = Arc::new(rocks);
    // A cache of 10 rows, and 500 left rows in batches of 10 with no barrier between them.
    let mut j = join_with(JoinKind::LeftOuter, None, backend.clone(), 10);
    for b in 0..50 {
        let keys: Vec<Option<i64>> = (b * 10..b * 10 + 10).map(Some).collect();
        feed(&mut j, LEFT, side(keys, vec!["a"; 10], None));
        assert!(j.states[LEFT].cached_rows() <= 40, "batch {b}: {} rows", j.states[LEFT].cached_rows());
    }
    assert_eq!(j.state_rows(), 500);
    // Rows written early are still matched and retracted exactly: one is deleted, and a
    // right row for every key replaces the padded rows of the 499 left.
    let out = feed(&mut j, LEFT, side(vec![Some(3)], vec!["a"], Some(vec![-1])));
    assert_eq!(format(&out).len(), 5, "the padded row of key 3 goes: {:?}", format(&out));
    let keys: Vec<Option<i64>> = (0..500).map(Some).collect();
    let out = feed(&mut j, RIGHT, side(keys, vec!["x"; 500], None));
    let (deletes, inserts) = out.iter().fold((0, 0), |(d, i), b| {
        let deleted = (0..b.num_rows()).filter(|&r| b.op(r) == OP_DELETE).count();
        (d + deleted, i + b.num_rows() - deleted)
    });
    assert_eq!((deletes, inserts), (499, 499));
    assert!(j.states[RIGHT].cached_rows() <= 40, "{} rows", j.states[RIGHT].cached_rows());
    j.on_barrier(&Barrier::checkpoint(1), &mut Vec::new()).unwrap();
    assert!(j.states[LEFT].cached_rows() <= 10 && j.states[RIGHT].cached_rows() <= 10);
    assert_eq!(j.state_rows(), 999);
}

#[test]
fn a_retraction_of_a_row_never_inserted_is_an_error_not_a_wrong_answer() {
    let mut j = join(JoinKind::Inner);
    let mut out = Vec::new();
    let result = j.process_batch(LEFT, side(vec![Some(1)], vec!["a"], Some(vec![-1])), &mut out);
    assert!(result.is_err());
}

fn timed(keys: Vec<i64>, seconds: Vec<i64>) -> StreamBatch {
    let micros: Vec<i64> = seconds.iter().map(|s| s * 1_000_000).collect();
    batch(
        vec![
            ("k", Arc::new(Int64Array::from(keys)) as ArrayRef),
            ("t", Arc::new(arrow::array::TimestampMicrosecondArray::from(micros)) as ArrayRef),
        ],
        None,
    )
}

/// `ON l.k = r.k AND l.t BETWEEN r.t - 10 s AND r.t`: a left row can match right rows up to
/// `l.t + 10 s`, a right row left rows up to `r.t`.
fn interval_join() -> HashJoin {
    let ts = DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None);
    let spec = JoinSpec {
        left_fields: vec![FieldSpec::new("k", &DataType::Int64), FieldSpec::new("t", &ts)],
        right_fields: vec![FieldSpec::new("k2", &DataType::Int64), FieldSpec::new("t2", &ts)],
        filter: Some("_c1 >= _c3 - INTERVAL '10' SECOND AND _c1 <= _c3".into()),
        left_expiry: Some(weir_plan::job_graph::TimeBound { column: 1, offset_us: 10_000_000 }),
        right_expiry: Some(weir_plan::job_graph::TimeBound { column: 1, offset_us: 0 }),
        ..spec(JoinKind::Inner, None)
    };
    HashJoin::new(&spec, &ExprCompiler::default(), Arc::new(InMemoryStateBackend::default()), NS, usize::MAX)
        .unwrap()
}

#[test]
fn an_interval_join_drops_rows_the_watermark_has_closed_and_late_rows() {
    let mut j = interval_join();
    feed(&mut j, LEFT, timed(vec![1, 1], vec![100, 130]));
    let out = feed(&mut j, RIGHT, timed(vec![1], vec![105]));
    assert_eq!(out.iter().map(StreamBatch::num_rows).sum::<usize>(), 1);
    assert_eq!(j.state_rows(), 3);
    // At watermark 111 s the left row of 100 s (open until 110 s) and the right row of
    // 105 s (open until 105 s) can match nothing more.
    j.on_watermark(111_000_000, &mut Vec::new()).unwrap();
    j.on_barrier(&Barrier::new(1), &mut Vec::new()).unwrap();
    assert_eq!(j.state_rows(), 1);
    // A left row older than the watermark is late: dropped and counted.
    let out = feed(&mut j, LEFT, timed(vec![1], vec![104]));
    assert!(out.is_empty());
    assert_eq!(j.late_rows(), 1);
    // The left row of 130 s still matches a right row of 135 s.
    let out = feed(&mut j, RIGHT, timed(vec![1], vec![135]));
    assert_eq!(out.iter().map(StreamBatch::num_rows).sum::<usize>(), 1);
    // Key 1 stays listed for its later rows: they go once the watermark passes them.
    j.on_watermark(141_000_000, &mut Vec::new()).unwrap();
    j.on_barrier(&Barrier::new(2), &mut Vec::new()).unwrap();
    assert_eq!(j.state_rows(), 0);
}

/// Nexmark q9's shape: `ON a.id = b.auction AND b.t BETWEEN a.t AND a.expires`. An auction
/// expires on `expires` (no watermark on it) because bids are late on their own time.
#[test]
fn an_interval_join_expires_rows_on_a_column_without_a_watermark() {
    let ts = DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None);
    let spec = JoinSpec {
        left_fields: vec![
            FieldSpec::new("id", &DataType::Int64),
            FieldSpec::new("t", &ts),
            FieldSpec::new("expires", &ts),
        ],
        right_fields: vec![FieldSpec::new("auction", &DataType::Int64), FieldSpec::new("t2", &ts)],
        filter: Some("_c4 >= _c1 AND _c4 <= _c2".into()),
        left_expiry: Some(weir_plan::job_graph::TimeBound { column: 2, offset_us: 0 }),
        right_expiry: Some(weir_plan::job_graph::TimeBound { column: 1, offset_us: 0 }),
        lateness: Some(weir_plan::job_graph::JoinLateness { left: Some(1), right: Some(1) }),
        ..spec(JoinKind::Inner, None)
    };
    let mut j = HashJoin::new(
        &spec,
        &ExprCompiler::default(),
        Arc::new(InMemoryStateBackend::default()),
        NS,
        usize::MAX,
    )
    .unwrap();
    let secs = |v: Vec<i64>| -> ArrayRef {
        Arc::new(arrow::array::TimestampMicrosecondArray::from(
            v.iter().map(|s| s * 1_000_000).collect::<Vec<_>>(),
        ))
    };
    let auctions = |ids: Vec<i64>, t: Vec<i64>, expires: Vec<i64>| {
        batch(
            vec![
                ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
                ("t", secs(t)),
                ("expires", secs(expires)),
            ],
            None,
        )
    };
    let rows = |out: &[StreamBatch]| out.iter().map(StreamBatch::num_rows).sum::<usize>();
    feed(&mut j, LEFT, auctions(vec![1], vec![100], vec![200]));
    assert_eq!(rows(&feed(&mut j, RIGHT, timed(vec![1], vec![150]))), 1);
    // At 160 s the bid of 150 s is gone; the auction, open until 200 s, stays.
    j.on_watermark(160_000_000, &mut Vec::new()).unwrap();
    j.on_barrier(&Barrier::new(1), &mut Vec::new()).unwrap();
    assert_eq!(j.state_rows(), 1);
    // A bid older than the watermark is late, though its auction is still open.
    assert!(feed(&mut j, RIGHT, timed(vec![1], vec![155])).is_empty());
    assert_eq!(j.late_rows(), 1);
    assert_eq!(rows(&feed(&mut j, RIGHT, timed(vec![1], vec![170]))), 1);
    // Past 200 s the auction can match no on-time bid: dropped. An auction older than the
    // watermark is late even if it expires later.
    j.on_watermark(201_000_000, &mut Vec::new()).unwrap();
    j.on_barrier(&Barrier::new(2), &mut Vec::new()).unwrap();
    assert_eq!(j.state_rows(), 0);
    assert!(feed(&mut j, LEFT, auctions(vec![2], vec![190], vec![300])).is_empty());
    assert_eq!(j.late_rows(), 2);
}

/// Rows of update-mode window aggregates, `(key, window_end seconds, count)`, with ops.
fn window_rows(keys: Vec<i64>, ends: Vec<i64>, counts: Vec<i64>, ops: Vec<i8>) -> StreamBatch {
    let micros: Vec<i64> = ends.iter().map(|s| s * 1_000_000).collect();
    batch(
        vec![
            ("k", Arc::new(Int64Array::from(keys)) as ArrayRef),
            ("window_end", Arc::new(arrow::array::TimestampMicrosecondArray::from(micros)) as ArrayRef),
            ("n", Arc::new(Int64Array::from(counts)) as ArrayRef),
        ],
        Some(ops),
    )
}

/// `ON l.k = r.k AND l.window_end = r.window_end` over two window aggregates that emit on
/// update (Nexmark q8's shape): each side's rows go once the watermark passes their window.
#[test]
fn a_window_join_of_retracting_aggregates_drops_closed_windows() {
    let ts = DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None);
    let fields = |names: [&str; 3]| {
        vec![
            FieldSpec::new(names[0], &DataType::Int64),
            FieldSpec::new(names[1], &ts),
            FieldSpec::new(names[2], &DataType::Int64),
        ]
    };
    let bound = Some(weir_plan::job_graph::TimeBound { column: 1, offset_us: 0 });
    let spec = JoinSpec {
        left_keys: vec![0, 1],
        right_keys: vec![0, 1],
        left_fields: fields(["k", "window_end", "n"]),
        right_fields: fields(["k2", "window_end2", "n2"]),
        left_expiry: bound,
        right_expiry: bound,
        ..spec(JoinKind::Inner, None)
    };
    let mut j = HashJoin::new(
        &spec,
        &ExprCompiler::default(),
        Arc::new(InMemoryStateBackend::default()),
        NS,
        usize::MAX,
    )
    .unwrap();
    feed(&mut j, LEFT, window_rows(vec![1, 1], vec![10, 20], vec![1, 1], vec![1, 1]));
    feed(&mut j, RIGHT, window_rows(vec![1], vec![10], vec![5], vec![1]));
    // Window 10's last change on the left (count 1 -> 2) comes before the watermark 10 s.
    let out = feed(&mut j, LEFT, window_rows(vec![1, 1], vec![10, 10], vec![1, 2], vec![-1, 1]));
    assert_output(
        &out,
        &[
            "+----+---+---------------------+---+----+---------------------+----+",
            "| op | k | window_end          | n | k2 | window_end2         | n2 |",
            "+----+---+---------------------+---+----+---------------------+----+",
            "| -  | 1 | 1970-01-01T00:00:10 | 1 | 1  | 1970-01-01T00:00:10 | 5  |",
            "| +  | 1 | 1970-01-01T00:00:10 | 2 | 1  | 1970-01-01T00:00:10 | 5  |",
            "+----+---+---------------------+---+----+---------------------+----+",
        ],
    );
    assert_eq!(j.state_rows(), 3);
    // Both sides have passed 10 s: window 10 can change no more, its rows go.
    j.on_watermark(11_000_000, &mut Vec::new()).unwrap();
    j.on_barrier(&Barrier::new(1), &mut Vec::new()).unwrap();
    assert_eq!(j.state_rows(), 1, "only window 20 is left");
    // Window 20 still joins.
    let out = feed(&mut j, RIGHT, window_rows(vec![1], vec![20], vec![7], vec![1]));
    assert_eq!(out.iter().map(StreamBatch::num_rows).sum::<usize>(), 1);
    j.on_watermark(21_000_000, &mut Vec::new()).unwrap();
    j.on_barrier(&Barrier::new(2), &mut Vec::new()).unwrap();
    assert_eq!(j.state_rows(), 0);
}

#[test]
fn rows_outlive_no_state_ttl() {
    let spec = JoinSpec { state_ttl_ms: Some(0), ..spec(JoinKind::Inner, None) };
    let mut j =
        HashJoin::new(&spec, &ExprCompiler::default(), Arc::new(InMemoryStateBackend::default()), NS, 4)
            .unwrap();
    feed(&mut j, LEFT, side(vec![Some(1), Some(2)], vec!["a", "b"], None));
    assert_eq!(j.state_rows(), 2);
    // Expiry is checked in buckets of about 131 ms.
    std::thread::sleep(std::time::Duration::from_millis(300));
    j.on_barrier(&Barrier::new(1), &mut Vec::new()).unwrap();
    assert_eq!(j.state_rows(), 0);
    assert!(feed(&mut j, RIGHT, side(vec![Some(1)], vec!["x"], None)).is_empty());
}

#[test]
fn probing_keys_the_other_side_never_had_leaves_nothing_in_memory() {
    let mut j = join(JoinKind::Inner);
    let keys: Vec<Option<i64>> = (0..1000).map(Some).collect();
    feed(&mut j, LEFT, side(keys, vec!["a"; 1000], None));
    j.on_barrier(&Barrier::new(1), &mut Vec::new()).unwrap();
    assert_eq!(j.states[RIGHT].resident_keys(), 0);
    assert_eq!(j.states[LEFT].resident_keys(), 1000);
}

#[test]
fn a_rescaled_join_gives_the_view_an_unrescaled_one_gives() {
    use crate::operators::test_util::{apply, route};
    use crate::operators::RescaleScope;
    let dir = tempfile::tempdir().unwrap();
    let rocks: Arc<dyn KeyedStateBackend> = Arc::new(
        weir_storage::keyed_state::RocksDbStateBackend::open(dir.path(), &Default::default()).unwrap(),
    );
    let at = |subtask: u16, cache: usize| {
        let ns = StateNamespace { subtask, ..NS };
        HashJoin::new(&spec(JoinKind::FullOuter, None), &ExprCompiler::default(), rocks.clone(), ns, cache)
            .unwrap()
    };
    let input = |i: i64| {
        let keys: Vec<Option<i64>> = (0..60).map(|k| Some((k * 7 + i) % 40)).collect();
        let left = side(keys.clone(), vec!["l"; 60], None);
        let right = side(keys[..20 + i as usize].to_vec(), vec!["r"; 20 + i as usize], None);
        // Retract a row inserted in the previous round.
        let gone = side(vec![Some((i + 39) % 40)], vec!["l"], Some(vec![-1]));
        (left, right, gone)
    };
    let mut reference = at(50, usize::MAX);
    let (mut expected, mut view) = (Default::default(), Default::default());
    let round = |ops: &mut Vec<HashJoin>, parallelism: usize, i: i64, view: &mut _| {
        let (left, right, gone) = input(i);
        for (edge, batch) in [(LEFT, left), (RIGHT, right)].into_iter().chain((i > 0).then_some((LEFT, gone)))
        {
            for (subtask, part) in route(&batch, &[0], parallelism).into_iter().enumerate() {
                apply(view, &feed(&mut ops[subtask], edge, part));
            }
        }
        for op in ops.iter_mut() {
            op.on_barrier(&Barrier::checkpoint(i as u64 + 1), &mut Vec::new()).unwrap();
        }
    };
    for i in 0..6 {
        let mut one = vec![reference];
        round(&mut one, 1, i, &mut expected);
        reference = one.pop().unwrap();
    }
    let mut old: Vec<HashJoin> = (0..2).map(|s| at(s, 8)).collect();
    for i in 0..3 {
        round(&mut old, 2, i, &mut view);
    }
    let snapshots: Vec<(Vec<u8>, Vec<u8>)> = old
        .iter_mut()
        .map(|op| {
            let snapshot = op.snapshot(false).unwrap().unwrap();
            let mut bytes = Vec::new();
            (snapshot.deferred.unwrap())(&mut bytes).unwrap();
            (snapshot.meta, bytes)
        })
        .collect();
    let rows_before: u64 = old.iter().map(|op| op.state_rows()).sum();
    let mut new: Vec<HashJoin> = (0..3)
        .map(|subtask| {
            let mut op = at(10 + subtask as u16, 8);
            for (old_subtask, (meta, bytes)) in snapshots.iter().enumerate() {
                let scope = RescaleScope::new(old_subtask, subtask, 3);
                op.restore_rescaled(meta, Some(&mut bytes.as_slice()), &scope).unwrap();
            }
            op
        })
        .collect();
    assert_eq!(new.iter().map(|op| op.state_rows()).sum::<u64>(), rows_before);
    for i in 3..6 {
        round(&mut new, 3, i, &mut view);
    }
    assert_eq!(view, expected);
}
