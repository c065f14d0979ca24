//! `SHOW TABLES`: the user's tables, as RisingWave and MySQL users expect.

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use weir_planner::{SqlError, SqlResult};

use super::{planning::rows, Context, Outcome};

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("Name", DataType::Utf8, false)]))
}

pub async fn run(cx: &Context<'_>) -> SqlResult<Outcome> {
    let names: Vec<String> = cx.engine.store.tables().iter().map(|t| t.def().name.clone()).collect();
    let batch = RecordBatch::try_new(schema(), vec![Arc::new(StringArray::from(names))])
        .map_err(|e| SqlError::internal(e.to_string()))?;
    Ok(rows(batch))
}
