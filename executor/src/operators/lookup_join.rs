//! LookupJoin: a temporal join (`JOIN t FOR SYSTEM_TIME AS OF PROCTIME()`). Each row of the
//! (append-only) input looks its key up in a stored table's current rows, one batched point
//! read per input batch, and comes out joined with the row it found (or NULL-padded, for a
//! `LEFT JOIN`, or not at all).
//!
//! It keeps no state: what a row joins with is the table as it is when the row is processed,
//! and later changes to the table leave emitted rows alone (Flink's and RisingWave's
//! semantics). After a recovery, rows replayed from the last checkpoint are looked up again
//! and may meet a newer version of the table than in the run that failed; the view still
//! holds each row exactly once.
//!
//! The table lives in the frontend process's table store, so the planner places this
//! operator's vertex there (standalone and cluster alike).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow::compute::{filter, take, CastOptions};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::physical_expr::PhysicalExpr;
use weir_plan::job_graph::{schema_of, LookupJoinSpec, OperatorSpec};
use weir_storage::TableStore;

use super::projection::Projection;
use super::Operator;
use crate::error::{ExecError, ExecResult};
use crate::expr::ExprCompiler;
use crate::message::{StreamBatch, OP_INSERT};

/// One step of what the query does to a looked-up row.
enum TableStep {
    Filter(Arc<dyn PhysicalExpr>),
    Project(Projection),
}

pub struct LookupJoin {
    table: Arc<TableStore>,
    left_outer: bool,
    key_columns: Vec<usize>,
    /// The primary key's types, which the keys are cast to.
    key_types: Vec<DataType>,
    steps: Vec<TableStep>,
    condition: Option<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
}

impl LookupJoin {
    pub fn new(
        spec: &LookupJoinSpec,
        compiler: &ExprCompiler,
        input: &SchemaRef,
        table: Arc<TableStore>,
    ) -> ExecResult<Self> {
        let table_schema = table.schema();
        let key_types: Vec<DataType> =
            table.def().primary_key.iter().map(|&i| table_schema.field(i).data_type().clone()).collect();
        if key_types.len() != spec.key_columns.len()
            || spec.key_columns.iter().any(|&c| c >= input.fields().len())
        {
            return Err(ExecError::InvalidGraph(format!(
                "lookup join on {}: key columns {:?} do not match its primary key",
                spec.table_name, spec.key_columns
            )));
        }
        let mut schema = table_schema.clone();
        let mut steps = Vec::new();
        for op in &spec.table_chain {
            match op {
                OperatorSpec::Filter { predicate } => {
                    steps.push(TableStep::Filter(compiler.compile_predicate(predicate, &schema)?))
                }
                OperatorSpec::Project { exprs, output } => {
                    let projection = Projection::new(compiler, exprs, output, &schema)?;
                    schema = projection.schema().clone();
                    steps.push(TableStep::Project(projection));
                }
                other => {
                    return Err(ExecError::InvalidGraph(format!(
                        "{} on the table side of a lookup join",
                        other.name()
                    )))
                }
            }
        }
        let lookup = schema_of(&spec.lookup_fields)?;
        let fields: Vec<Field> = input
            .fields()
            .iter()
            .chain(lookup.fields().iter())
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let condition =
            spec.condition.as_ref().map(|c| compiler.compile_predicate(c, &schema)).transpose()?;
        Ok(Self {
            table,
            left_outer: spec.left_outer,
            key_columns: spec.key_columns.clone(),
            key_types,
            steps,
            condition,
            schema,
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The table-side rows for `keys`: for each row found (and kept by the table side's
    /// filters), the input row it belongs to, and the rows as the table side shapes them.
    fn look_up(&mut self, keys: &[ArrayRef]) -> ExecResult<(UInt32Array, RecordBatch)> {
        let (positions, rows) = self.table.lookup(keys)?;
        let mut positions = UInt32Array::from(positions);
        let mut rows = StreamBatch::inserts(rows);
        for step in &mut self.steps {
            match step {
                TableStep::Filter(predicate) => {
                    let mask = predicate.evaluate(&rows.data)?.into_array(rows.num_rows())?;
                    let mask = as_mask(&mask)?;
                    positions = downcast_positions(filter(&positions, mask)?)?;
                    rows = rows.filter(mask)?;
                }
                TableStep::Project(projection) => {
                    let mut out = Vec::with_capacity(1);
                    projection.process_batch(0, rows, &mut out)?;
                    rows = out
                        .pop()
                        .ok_or_else(|| ExecError::Internal("projection returned no batch".into()))?;
                }
            }
        }
        Ok((positions, rows.data))
    }

    /// The input's columns next to the looked-up rows `found[i]` (NULL where `None`).
    fn joined(
        &self,
        batch: &RecordBatch,
        lookup: &RecordBatch,
        found: &[Option<u32>],
    ) -> ExecResult<RecordBatch> {
        let indices = UInt32Array::from(found.to_vec());
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        for column in lookup.columns() {
            columns.push(take(column.as_ref(), &indices, None)?);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)?)
    }
}

fn as_mask(array: &ArrayRef) -> ExecResult<&BooleanArray> {
    array
        .as_any()
        .downcast_ref::<BooleanArray>()
        .ok_or_else(|| ExecError::Internal("a lookup join predicate did not return booleans".into()))
}

fn downcast_positions(array: ArrayRef) -> ExecResult<UInt32Array> {
    array
        .as_any()
        .downcast_ref::<UInt32Array>()
        .cloned()
        .ok_or_else(|| ExecError::Internal("lookup positions are not u32".into()))
}

impl Operator for LookupJoin {
    fn name(&self) -> &'static str {
        "LookupJoin"
    }

    fn process_batch(
        &mut self,
        _input: usize,
        batch: StreamBatch,
        out: &mut Vec<StreamBatch>,
    ) -> ExecResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        if let Some(ops) = &batch.ops {
            if ops.values().iter().any(|op| *op != OP_INSERT) {
                return Err(ExecError::InvalidGraph(
                    "a temporal join's input retracted a row (the planner admits append-only inputs only)"
                        .into(),
                ));
            }
        }
        // A key that does not fit the primary key's type finds nothing.
        let options = CastOptions { safe: true, ..Default::default() };
        let keys = self
            .key_columns
            .iter()
            .zip(&self.key_types)
            .map(|(&c, t)| crate::functions::numeric_special::cast_array(batch.data.column(c), t, &options))
            .collect::<Result<Vec<_>, _>>()?;
        let (positions, lookup) = self.look_up(&keys)?;
        let mut found: Vec<Option<u32>> = vec![None; batch.num_rows()];
        for (row, position) in positions.values().iter().enumerate() {
            found[*position as usize] = Some(row as u32);
        }
        let mut joined = self.joined(&batch.data, &lookup, &found)?;
        // The whole condition decides what is a match (a cast key may find a row it is not
        // equal to).
        if let Some(condition) = &self.condition {
            let mask = condition.evaluate(&joined)?.into_array(joined.num_rows())?;
            let mask = as_mask(&mask)?;
            let mut changed = false;
            for (i, f) in found.iter_mut().enumerate() {
                if f.is_some() && !(mask.is_valid(i) && mask.value(i)) {
                    *f = None;
                    changed = true;
                }
            }
            if changed {
                joined = self.joined(&batch.data, &lookup, &found)?;
            }
        }
        if !self.left_outer {
            let matched: BooleanArray = found.iter().map(|f| Some(f.is_some())).collect();
            if matched.true_count() == 0 {
                return Ok(());
            }
            joined = arrow::compute::filter_record_batch(&joined, &matched)?;
        }
        out.push(StreamBatch::inserts(joined));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int32Array, Int64Array, StringArray};
    use weir_plan::catalog::{ColumnDef, ColumnType, TableDef};
    use weir_plan::job_graph::FieldSpec;
    use weir_storage::Store;

    use super::*;
    use crate::operators::test_util::{assert_output, batch};

    fn customers(store: &Store) -> Arc<TableStore> {
        let column = |name: &str, column_type, not_null| ColumnDef {
            name: name.into(),
            column_type,
            not_null,
            default: None,
        };
        let def = TableDef {
            id: 0,
            schema_name: "public".into(),
            name: "customers".into(),
            columns: vec![
                column("id", ColumnType::Int4, true),
                column("name", ColumnType::Text, false),
                column("region", ColumnType::Text, false),
            ],
            primary_key: vec![0],
            primary_key_name: None,
            watermark: None,
        };
        let table = store.create_table(def).unwrap();
        let rows = RecordBatch::try_new(
            table.schema(),
            vec![
                Arc::new(Int32Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec!["ada", "bob", "cy"])),
                Arc::new(StringArray::from(vec!["eu", "us", "eu"])),
            ],
        )
        .unwrap();
        table.insert(&rows).unwrap();
        table
    }

    /// Orders (id, customer_id BIGINT) joined with customers on customer_id = id.
    fn spec(
        left_outer: bool,
        table_chain: Vec<OperatorSpec>,
        lookup_fields: Vec<FieldSpec>,
    ) -> LookupJoinSpec {
        LookupJoinSpec {
            left_outer,
            table_id: 0,
            table_name: "customers".into(),
            stream_fields: vec![
                FieldSpec::new("id", &DataType::Int64),
                FieldSpec::new("customer_id", &DataType::Int64),
            ],
            key_columns: vec![1],
            table_chain,
            condition: Some("_c1 = CAST(_c2 AS BIGINT)".into()),
            lookup_fields,
        }
    }

    fn orders(ids: Vec<i64>, customers: Vec<Option<i64>>) -> StreamBatch {
        batch(
            vec![
                ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
                ("customer_id", Arc::new(Int64Array::from(customers))),
            ],
            None,
        )
    }

    fn all_columns() -> Vec<FieldSpec> {
        vec![
            FieldSpec::new("id", &DataType::Int32),
            FieldSpec::new("name", &DataType::Utf8),
            FieldSpec::new("region", &DataType::Utf8),
        ]
    }

    fn run(op: &mut LookupJoin, input: StreamBatch) -> Vec<StreamBatch> {
        let mut out = Vec::new();
        op.process_batch(0, input, &mut out).unwrap();
        out
    }

    #[test]
    fn inner_join_reads_the_current_version_and_never_retracts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let table = customers(&store);
        let input = orders(vec![0], vec![Some(0)]).data.schema();
        let mut op = LookupJoin::new(
            &spec(false, vec![], all_columns()),
            &ExprCompiler::default(),
            &input,
            table.clone(),
        )
        .unwrap();
        // A key out of INT's range, a NULL and a missing key find nothing.
        let out = run(
            &mut op,
            orders(vec![10, 11, 12, 13, 14], vec![Some(2), Some(1 << 40), None, Some(9), Some(1)]),
        );
        assert_output(
            &out,
            &[
                "+----+----+-------------+----+------+--------+",
                "| op | id | customer_id | id | name | region |",
                "+----+----+-------------+----+------+--------+",
                "| +  | 10 | 2           | 2  | bob  | us     |",
                "| +  | 14 | 1           | 1  | ada  | eu     |",
                "+----+----+-------------+----+------+--------+",
            ],
        );
        // The table changes: later rows see the new version; nothing earlier is taken back.
        let old = RecordBatch::try_new(
            table.schema(),
            vec![
                Arc::new(Int32Array::from(vec![2])),
                Arc::new(StringArray::from(vec!["bob"])),
                Arc::new(StringArray::from(vec!["us"])),
            ],
        )
        .unwrap();
        let new = RecordBatch::try_new(
            table.schema(),
            vec![
                Arc::new(Int32Array::from(vec![2])),
                Arc::new(StringArray::from(vec!["bob"])),
                Arc::new(StringArray::from(vec!["asia"])),
            ],
        )
        .unwrap();
        table.update(&old, &new).unwrap();
        let out = run(&mut op, orders(vec![15], vec![Some(2)]));
        assert_output(
            &out,
            &[
                "+----+----+-------------+----+------+--------+",
                "| op | id | customer_id | id | name | region |",
                "+----+----+-------------+----+------+--------+",
                "| +  | 15 | 2           | 2  | bob  | asia   |",
                "+----+----+-------------+----+------+--------+",
            ],
        );
    }

    #[test]
    fn left_join_pads_rows_the_table_side_does_not_keep() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let table = customers(&store);
        let input = orders(vec![0], vec![Some(0)]).data.schema();
        // The table side keeps customers in 'eu' and reads (id, name).
        let chain = vec![
            OperatorSpec::Filter { predicate: "_c2 = 'eu'".into() },
            OperatorSpec::Project {
                exprs: vec!["_c0".into(), "_c1".into()],
                output: vec![FieldSpec::new("id", &DataType::Int32), FieldSpec::new("name", &DataType::Utf8)],
            },
        ];
        let lookup_fields = chain_output(&chain);
        let mut op =
            LookupJoin::new(&spec(true, chain, lookup_fields), &ExprCompiler::default(), &input, table)
                .unwrap();
        let out = run(&mut op, orders(vec![10, 11, 12, 13], vec![Some(1), Some(2), Some(3), None]));
        assert_output(
            &out,
            &[
                "+----+----+-------------+----+------+",
                "| op | id | customer_id | id | name |",
                "+----+----+-------------+----+------+",
                "| +  | 10 | 1           | 1  | ada  |",
                "| +  | 11 | 2           |    |      |",
                "| +  | 12 | 3           | 3  | cy   |",
                "| +  | 13 |             |    |      |",
                "+----+----+-------------+----+------+",
            ],
        );
    }

    fn chain_output(chain: &[OperatorSpec]) -> Vec<FieldSpec> {
        match chain.last() {
            Some(OperatorSpec::Project { output, .. }) => output.clone(),
            _ => all_columns(),
        }
    }

    #[test]
    fn a_retraction_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let table = customers(&store);
        let input = orders(vec![0], vec![Some(0)]).data.schema();
        let mut op =
            LookupJoin::new(&spec(false, vec![], all_columns()), &ExprCompiler::default(), &input, table)
                .unwrap();
        let retraction = batch(
            vec![
                ("id", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
                ("customer_id", Arc::new(Int64Array::from(vec![1]))),
            ],
            Some(vec![-1]),
        );
        assert!(op.process_batch(0, retraction, &mut Vec::new()).is_err());
    }
}
