//! Row-by-row results of a one-partition source stay in that one partition.
//!
//! DataFusion computes a projection or filter of a one-partition input (a stored table's
//! scan, a series) on `target_partitions` partitions: `EnforceDistribution` puts a
//! round-robin `RepartitionExec` below it, and the result is merged again for the client.
//! The repartition's queues only stop taking batches once every output holds one, and the
//! merge keeps more behind them, so a large result read by a slow client held several
//! batches per partition of wide rows in memory (83 MB against 23 MB for the plain scan of
//! a 300 MB table). For such a plan the split buys little: the work is per row and cheap
//! next to encoding and sending the rows. This rule removes the split when everything
//! above it, up to the plan's root, is row-by-row (projections, filters): the result then
//! streams from the source's one partition, one batch at a time. Plans with an aggregate,
//! a join, a sort or a window above the split keep it; those benefit from the partitions
//! and do not stream their input to the client.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::error::Result as DfResult;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, Partitioning};

/// The physical optimizer rule, run after DataFusion's own (see the module docs).
#[derive(Debug, Default)]
pub struct SingleStreamResults;

impl PhysicalOptimizerRule for SingleStreamResults {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        match unsplit(&plan)? {
            Some(unsplit) => {
                tracing::debug!(plan = %plan.name(), "result kept in its source's one partition");
                Ok(unsplit)
            }
            None => Ok(plan),
        }
    }

    fn name(&self) -> &str {
        "single_stream_results"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `plan` without the round-robin split of a one-partition input that its row-by-row top
/// sits on, or `None` when it has no such split.
fn unsplit(plan: &Arc<dyn ExecutionPlan>) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    if let Some(repartition) = plan.downcast_ref::<RepartitionExec>() {
        let input = repartition.input();
        let splits_one = matches!(repartition.partitioning(), Partitioning::RoundRobinBatch(_))
            && input.output_partitioning().partition_count() == 1;
        return Ok(splits_one.then(|| Arc::clone(input)));
    }
    let merge = plan.downcast_ref::<CoalescePartitionsExec>();
    let row_by_row = plan.is::<ProjectionExec>()
        || plan.is::<FilterExec>()
        // A merge with a row limit is a LIMIT's: left alone (the result is bounded).
        || merge.is_some_and(|m| m.fetch().is_none());
    let [child] = plan.children()[..] else {
        return Ok(None);
    };
    if !row_by_row {
        return Ok(None);
    }
    match unsplit(child)? {
        // The merge of the split's partitions has nothing left to merge.
        Some(unsplit) if merge.is_some() => Ok(Some(unsplit)),
        Some(unsplit) => {
            let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
            Ok(Some(Arc::clone(plan).replace_children(vec![unsplit], options)?))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// Rows enough (more than a batch) for DataFusion to split a scan of them.
    const ROWS: i32 = 20_000;

    /// A context with two target partitions, the rule if `with_rule`, and a one-partition
    /// table `t` of [`ROWS`] rows.
    fn context(with_rule: bool) -> SessionContext {
        let config = SessionConfig::new().with_target_partitions(2);
        let state = SessionStateBuilder::new().with_config(config).with_default_features();
        let state =
            if with_rule { state.with_physical_optimizer_rule(Arc::new(SingleStreamResults)) } else { state };
        let ctx = SessionContext::new_with_state(state.build());
        let schema = Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int32, false),
            Field::new("s", DataType::Utf8, false),
        ]));
        let i = Int32Array::from_iter_values(1..=ROWS);
        let s = StringArray::from_iter_values((1..=ROWS).map(|i| format!("s{}", i % 7)));
        let table = RecordBatch::try_new(schema.clone(), vec![Arc::new(i), Arc::new(s)])
            .map_err(datafusion::error::DataFusionError::from)
            .and_then(|b| datafusion::datasource::MemTable::try_new(schema, vec![vec![b]]))
            .and_then(|table| ctx.register_table("t", Arc::new(table)));
        if let Err(e) = table {
            panic!("test table: {e}");
        }
        ctx
    }

    async fn plan_of(sql: &str, with_rule: bool) -> String {
        let plan = match context(with_rule).sql(sql).await {
            Ok(df) => df.create_physical_plan().await,
            Err(e) => Err(e),
        };
        match plan {
            Ok(plan) => displayable(plan.as_ref()).indent(false).to_string(),
            Err(e) => panic!("{sql}: {e}"),
        }
    }

    /// The rows of `sql`, sorted, as text.
    async fn rows_of(sql: &str, with_rule: bool) -> Vec<String> {
        let batches = match context(with_rule).sql(sql).await {
            Ok(df) => df.collect().await,
            Err(e) => Err(e),
        };
        let text =
            batches.and_then(|b| Ok(datafusion::arrow::util::pretty::pretty_format_batches(&b)?.to_string()));
        match text {
            Ok(text) => {
                let mut rows: Vec<String> = text.lines().map(str::to_string).collect();
                rows.sort();
                rows
            }
            Err(e) => panic!("{sql}: {e}"),
        }
    }

    const ROW_BY_ROW: [&str; 2] = ["SELECT i * 2, s FROM t", "SELECT i * 2, s FROM t WHERE i % 3 = 1"];

    #[tokio::test]
    async fn a_projection_or_filter_of_one_partition_is_not_split() {
        for sql in ROW_BY_ROW {
            assert!(
                plan_of(sql, false).await.contains("RoundRobinBatch(2)"),
                "{sql} is not split without the rule"
            );
            let plan = plan_of(sql, true).await;
            assert!(!plan.contains("RepartitionExec"), "{sql}:\n{plan}");
            assert!(!plan.contains("CoalescePartitionsExec"), "{sql}:\n{plan}");
        }
    }

    #[tokio::test]
    async fn the_rows_are_the_same() {
        for sql in ROW_BY_ROW {
            let rows = rows_of(sql, true).await;
            assert!(rows.len() > ROWS as usize / 3, "{sql} returned {} lines", rows.len());
            assert_eq!(rows, rows_of(sql, false).await, "{sql}");
        }
    }

    #[tokio::test]
    async fn an_aggregate_or_a_limit_keeps_its_partitions() {
        for sql in ["SELECT s, count(*), sum(i * 2) FROM t GROUP BY s", "SELECT i * 2, s FROM t LIMIT 5"] {
            assert_eq!(plan_of(sql, true).await, plan_of(sql, false).await, "{sql}");
        }
        let plan = plan_of("SELECT s, count(*) FROM t GROUP BY s", true).await;
        assert!(plan.contains("RoundRobinBatch(2)"), "the aggregate is not split:\n{plan}");
        {}
    }
}
