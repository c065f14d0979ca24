//! Weir's SQL front half: parsing (Postgres dialect plus Weir's statements), turning DDL into
//! catalog definitions, lowering materialized views' queries into JobGraphs, and the rewrites that let DataFusion run the SQL Postgres clients send.
//!
//! Every error leaving this crate is a [`SqlError`] with a SQLSTATE, so the wire layer can
//! answer exactly as Postgres would.
//!
//! It produces plans and runs nothing: it depends on DataFusion and `weir-plan` only, never
//! on the executor or storage, so it builds and tests without RocksDB, tokio or the
//! connectors.

mod create_table;
mod error;
mod flink_syntax;
mod hop_panes;
mod literal_types;
mod parser;
mod pg_rewrite;
mod stream_ddl;
mod stream_plan;
mod temporal_syntax;
mod types;
mod window_tvf;

pub use create_table::{normalize_ident, plan_added_column, plan_create_table, split_name, CreateTablePlan};
pub use error::{sqlstate, ErrorDetails, SqlError, SqlResult};
pub use literal_types::type_integer_literals;
pub use parser::{parse_sql, RenameTarget, RenamedKind, WeirStatement};
pub use pg_rewrite::{
    figure_column_name, name_result_columns, result_column_name, rewrite_for_datafusion,
    ALWAYS_EMPTY_CATALOG_TABLES,
};
pub use stream_ddl::{
    plan_create_source, plan_watermark, split_connector, CreateSink, CreateSource, DropStream,
};
pub use stream_plan::{
    check_temporal_versions, plan_job_graph, temporal_tables, JobOptions, StreamCatalog, StreamInput,
    TemporalTable,
};
pub use types::{column_type_from_sql, precision_warning};
pub use window_tvf::{WindowTvf, WindowTvfPlanner};

/// Re-export of the SQL AST so callers use the exact version DataFusion does.
pub use datafusion::sql::sqlparser;
