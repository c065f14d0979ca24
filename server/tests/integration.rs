//! Weir's end-to-end tests: every `.slt` file under `sql-tests/` run over the Postgres wire
//! protocol against a freshly started `weir` process, plus the checks a `.slt` file cannot
//! express — kill -9 and restart, the real `psql` client, prepared statements through
//! tokio-postgres, and psycopg 3.
//!
//! `cargo test -p weir-server --test integration -- [--complete] [FILTER]`: `--complete`
//! rewrites the `.slt` expectations from the server's actual output; FILTER runs only tests
//! whose name contains it.

mod alter_table;
mod atomic_writes;
mod clients;
mod cluster;
mod cluster_drop;
mod cluster_tls;
mod column_names;
mod ddl_atomicity;
mod ddl_visibility;
mod differential;
mod disk_full;
mod extended_streaming;
mod fencing;
mod fuzz_sources;
mod fuzz_sql;
mod fuzz_wire;
mod idle_timeout;
mod joins;
mod limits;
mod recovery;
mod rescale;
mod roles;
mod session_startup;
mod sessions;
mod sink_restarts;
mod slt;
mod stream_joins;
mod streamed_results;
mod streaming_writes;
mod support;
mod time_precision;
mod timestamp_input;
mod watermark_alignment;

use std::future::Future;
use std::pin::Pin;

type TestFuture = Pin<Box<dyn Future<Output = Result<(), String>>>>;
type TestFn = fn() -> TestFuture;
type Test = Box<dyn FnOnce() -> TestFuture>;

/// `.slt` files not also run against a JobManager with three TaskManagers, and why.
const NOT_ON_CLUSTER: [(&str, &str); 1] = [(
    "streaming_lifecycle",
    "counts the vertices of a job in weir_catalog.tasks, where a cluster shows the view's materialize as a \
     vertex of its own (it runs in the frontend process, the rest on the TaskManagers)",
)];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let complete = args.iter().any(|a| a == "--complete");
    let filter = args.iter().find(|a| !a.starts_with("--")).cloned();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");

    let mut tests: Vec<(String, Test)> = Vec::new();
    for file in slt::files() {
        let name = format!(
            "slt::{}",
            file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
        );
        tests.push((name, Box::new(move || Box::pin(slt::run_file(file, complete)))));
    }
    // Every suite again on a cluster, which must answer exactly as a standalone server does.
    for file in slt::files() {
        let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if !NOT_ON_CLUSTER.iter().any(|(skipped, _)| *skipped == stem) {
            let name = format!("cluster::slt::{stem}");
            tests.push((
                name,
                Box::new(move || Box::pin(slt::run_file_on(file, false, slt::Target::Cluster))),
            ));
        }
    }
    let extra: Vec<(&str, TestFn)> = vec![
        ("restart::kill_9_keeps_acknowledged_rows", || Box::pin(clients::kill_9_keeps_acknowledged_rows())),
        ("restart::a_file_sink_killed_before_its_first_checkpoint_writes_each_row_once", || {
            Box::pin(sink_restarts::a_file_sink_killed_before_its_first_checkpoint_writes_each_row_once())
        }),
        ("restart::altered_and_renamed_table_survives_kill_9", || {
            Box::pin(alter_table::altered_and_renamed_table_survives_kill_9())
        }),
        ("restart::retyped_and_rekeyed_table_survives_kill_9", || {
            Box::pin(alter_table::retyped_and_rekeyed_table_survives_kill_9())
        }),
        ("restart::views_are_redeployed_after_kill_9", || {
            Box::pin(clients::views_are_redeployed_after_kill_9())
        }),
        ("joins::random_changes_on_both_sides_agree_with_batch_across_kill_9", || {
            Box::pin(joins::random_changes_on_both_sides_agree_with_batch_across_kill_9())
        }),
        ("joins::a_join_state_far_larger_than_its_cache_stays_bounded_and_exact", || {
            Box::pin(joins::a_join_state_far_larger_than_its_cache_stays_bounded_and_exact())
        }),
        ("streaming::concurrent_writers_agree_with_batch", || {
            Box::pin(clients::concurrent_writers_agree_with_batch())
        }),
        ("streaming::window_state_stays_bounded_on_a_long_stream", || {
            Box::pin(clients::window_state_stays_bounded_on_a_long_stream())
        }),
        ("streaming::window_join_state_stays_bounded_on_a_long_stream", || {
            Box::pin(stream_joins::window_join_state_stays_bounded_on_a_long_stream())
        }),
        ("streaming::interval_join_state_stays_bounded_on_a_long_stream", || {
            Box::pin(stream_joins::interval_join_state_stays_bounded_on_a_long_stream())
        }),
        ("streaming::aligned_sources_keep_interval_join_state_bounded", || {
            Box::pin(watermark_alignment::aligned_sources_keep_interval_join_state_bounded())
        }),
        ("streaming::finished_and_idle_sources_do_not_stall_aligned_ones", || {
            Box::pin(watermark_alignment::finished_and_idle_sources_do_not_stall_aligned_ones())
        }),
        ("recovery::temporal_join_recovers_exactly_once", || {
            Box::pin(stream_joins::temporal_join_recovers_exactly_once())
        }),
        ("recovery::kill_9_at_random_moments_is_exactly_once", || {
            Box::pin(recovery::kill_9_at_random_moments_is_exactly_once())
        }),
        ("recovery::rocksdb_state_outgrows_memory_and_survives_kill_9", || {
            Box::pin(clients::rocksdb_state_outgrows_memory_and_survives_kill_9())
        }),
        ("recovery::injected_failures_recover_exactly_once", || {
            Box::pin(recovery::injected_failures_recover_exactly_once())
        }),
        ("sources::on_error_fail_reports_the_row", || Box::pin(clients::on_error_fail_reports_the_row())),
        ("tokio_postgres::prepared_statements", || Box::pin(clients::tokio_postgres_prepared_statements())),
        ("tokio_postgres::copy_and_cancel", || Box::pin(clients::tokio_postgres_copy_and_cancel())),
        ("time_precision::parameters_copy_and_row_description", || {
            Box::pin(time_precision::parameters_copy_and_row_description())
        }),
        ("copy::reads_dates_and_times_as_postgres_does", || {
            Box::pin(timestamp_input::copy_reads_dates_and_times_as_postgres_does())
        }),
        ("atomicity::cancelled_writes_are_all_or_nothing", || {
            Box::pin(atomic_writes::cancelled_writes_are_all_or_nothing())
        }),
        ("differential::random_expressions_agree_with_postgres", || {
            Box::pin(differential::random_expressions_agree_with_postgres())
        }),
        ("differential::random_table_queries_and_views_agree_with_postgres", || {
            Box::pin(differential::random_table_queries_and_views_agree_with_postgres())
        }),
        ("column_names::result_columns_have_postgres_names", || {
            Box::pin(column_names::result_columns_have_postgres_names())
        }),
        ("psql::meta_commands_and_copy", || Box::pin(clients::psql_meta_commands_and_copy())),
        ("psycopg::driver_round_trip", || Box::pin(clients::psycopg_round_trip())),
        ("session::reset_restores_the_startup_application_name", || {
            Box::pin(session_startup::reset_restores_the_startup_application_name())
        }),
        ("sessions::backend_pid_is_the_key_data_pid_and_listed_in_pg_stat_activity", || {
            Box::pin(sessions::backend_pid_is_the_key_data_pid_and_listed_in_pg_stat_activity())
        }),
        ("sessions::pg_cancel_backend_stops_a_statement_atomically", || {
            Box::pin(sessions::pg_cancel_backend_stops_a_statement_atomically())
        }),
        ("sessions::pg_terminate_backend_ends_the_session", || {
            Box::pin(sessions::pg_terminate_backend_ends_the_session())
        }),
        ("sessions::only_permitted_roles_signal_sessions", || {
            Box::pin(sessions::only_permitted_roles_signal_sessions())
        }),
        ("protocol::garbage_does_not_hurt_other_sessions", || Box::pin(clients::garbage_bytes())),
        ("security::scram_tls_and_startup_errors", || Box::pin(clients::scram_tls_and_startup_errors())),
        ("security::max_connections_refuses_one_more_session", || {
            Box::pin(clients::max_connections_refuses_one_more_session())
        }),
        ("security::roles_and_privileges_over_scram", || Box::pin(roles::roles_and_privileges_over_scram())),
        (
            "security::roles_under_trust_authentication",
            || Box::pin(roles::roles_under_trust_authentication()),
        ),
        ("security::tls_required_refuses_plain_connections", || {
            Box::pin(clients::tls_required_refuses_plain_connections())
        }),
        ("idle_timeout::idle_sessions_are_ended_with_57p05", || {
            Box::pin(idle_timeout::idle_sessions_are_ended_with_57p05())
        }),
        ("idle_timeout::a_long_statement_is_not_cut", || {
            Box::pin(idle_timeout::a_long_statement_is_not_cut())
        }),
        ("idle_timeout::idle_transactions_are_ended_with_25p03", || {
            Box::pin(idle_timeout::idle_transactions_are_ended_with_25p03())
        }),
        ("idle_timeout::the_config_default_applies_to_new_sessions", || {
            Box::pin(idle_timeout::the_config_default_applies_to_new_sessions())
        }),
        ("limits::many_splits_do_not_stall_other_clients", || {
            Box::pin(limits::many_splits_do_not_stall_other_clients())
        }),
        ("limits::a_query_over_the_memory_limit_fails_with_53200", || {
            Box::pin(limits::a_query_over_the_memory_limit_fails_with_53200())
        }),
        ("streaming_writes::copy_with_a_bad_row_near_the_end_leaves_nothing", || {
            Box::pin(streaming_writes::copy_with_a_bad_row_near_the_end_leaves_nothing())
        }),
        ("streaming_writes::interrupted_copy_leaves_nothing", || {
            Box::pin(streaming_writes::interrupted_copy_leaves_nothing())
        }),
        ("streaming_writes::multi_chunk_copy_and_insert_select_are_complete_or_nothing", || {
            Box::pin(streaming_writes::multi_chunk_copy_and_insert_select_are_complete_or_nothing())
        }),
        ("streaming_writes::a_select_under_statement_timeout_streams_its_rows", || {
            Box::pin(streaming_writes::a_select_under_statement_timeout_streams_its_rows())
        }),
        ("ddl_atomicity::create_view_and_sink_stopped_mid_backfill_leave_nothing", || {
            Box::pin(ddl_atomicity::create_view_and_sink_stopped_mid_backfill_leave_nothing())
        }),
        ("ddl_atomicity::a_stopped_file_sink_leaves_no_rows", || {
            Box::pin(ddl_atomicity::a_stopped_file_sink_leaves_no_rows())
        }),
        ("ddl_atomicity::drop_cascade_alter_and_create_table_are_all_or_nothing", || {
            Box::pin(ddl_atomicity::drop_cascade_alter_and_create_table_are_all_or_nothing())
        }),
        ("ddl_visibility::an_uncommitted_view_is_invisible_and_its_name_waits", || {
            Box::pin(ddl_visibility::an_uncommitted_view_is_invisible_and_its_name_waits())
        }),
        ("ddl_atomicity::kill_9_during_a_view_backfill_leaves_it_complete_or_absent", || {
            Box::pin(ddl_atomicity::kill_9_during_a_view_backfill_leaves_it_complete_or_absent())
        }),
        ("extended_streaming::a_portal_with_a_row_limit_is_suspended_and_resumed", || {
            Box::pin(extended_streaming::a_portal_with_a_row_limit_is_suspended_and_resumed())
        }),
        ("extended_streaming::a_large_extended_select_streams_in_bounded_memory", || {
            Box::pin(extended_streaming::a_large_extended_select_streams_in_bounded_memory())
        }),
        ("streamed_results::a_large_select_with_expressions_streams_in_bounded_memory", || {
            Box::pin(streamed_results::a_large_select_with_expressions_streams_in_bounded_memory())
        }),
        ("extended_streaming::cancel_and_timeout_stop_a_streaming_select", || {
            Box::pin(extended_streaming::cancel_and_timeout_stop_a_streaming_select())
        }),
        ("storage::disk_full_writes_fail_with_53100_and_the_server_recovers", || {
            Box::pin(disk_full::writes_fail_with_53100_and_the_server_recovers())
        }),
        ("fuzz::sql_generator_statements_succeed_or_fail_cleanly", || {
            Box::pin(fuzz_sql::sql_generator_statements_succeed_or_fail_cleanly())
        }),
        ("fuzz::malformed_source_rows_are_counted_and_good_rows_kept", || {
            Box::pin(fuzz_sources::malformed_rows_are_counted_and_good_rows_kept())
        }),
        ("fuzz::wire_decoder_never_panics_nor_allocates_from_a_length", || {
            Box::pin(fuzz_wire::decoder_never_panics_nor_allocates_from_a_length())
        }),
        ("fuzz::wire_live_server_survives_random_messages", || {
            Box::pin(fuzz_wire::live_server_survives_random_messages())
        }),
        ("cluster::kill_9_taskmanagers_and_jobmanager_is_exactly_once", || {
            Box::pin(cluster::kill_9_taskmanagers_and_jobmanager_is_exactly_once())
        }),
        ("cluster::checkpoints_in_an_s3_compatible_store", || {
            Box::pin(cluster::checkpoints_in_an_s3_compatible_store())
        }),
        ("cluster::rescale_2_4_1_mid_stream_is_exact", || {
            Box::pin(rescale::rescale_2_4_1_mid_stream_is_exact())
        }),
        ("cluster::a_paused_taskmanager_writes_nothing_after_its_job_moved", || {
            Box::pin(fencing::a_paused_taskmanager_writes_nothing_after_its_job_moved())
        }),
        ("cluster::a_dropped_view_leaves_no_checkpoint_files", || {
            Box::pin(cluster_drop::a_dropped_view_leaves_no_checkpoint_files())
        }),
        ("cluster::processes_talk_over_mutual_tls", || {
            Box::pin(cluster_tls::processes_talk_over_mutual_tls())
        }),
        ("cluster::a_taskmanager_without_the_secret_is_refused", || {
            Box::pin(cluster::a_taskmanager_without_the_secret_is_refused())
        }),
    ];
    for (name, f) in extra {
        tests.push((name.to_string(), Box::new(f)));
    }

    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, test) in tests {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let started = std::time::Instant::now();
        let result = runtime.block_on(test());
        match result {
            Ok(()) => println!("test {name} ... ok ({:.1}s)", started.elapsed().as_secs_f64()),
            Err(e) => {
                println!("test {name} ... FAILED\n{e}\n");
                failed.push(name);
            }
        }
    }
    println!("\n{ran} tests, {} failed", failed.len());
    if !failed.is_empty() {
        for name in &failed {
            println!("  failed: {name}");
        }
        std::process::exit(1);
    }
}
