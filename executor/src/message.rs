//! What flows between operators: one in-band protocol of data and control.
//!
//! Every channel between tasks carries [`Message`]s. Data is an Arrow batch; a stream that
//! can retract carries an op per row (`+1` insert, `-1` delete; an update is a delete
//! followed by an insert, like Flink's RowKind). Barriers mark epoch boundaries: an
//! operator has seen everything of epoch `e` once it has seen `Barrier(e)` on every input.
//! Watermarks promise that no later row on the channel has an event time below them.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int8Array, RecordBatch};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::error::ArrowError;
use serde::{Deserialize, Serialize};

/// Op of a row in a changelog batch.
pub const OP_INSERT: i8 = 1;
pub const OP_DELETE: i8 = -1;

pub use weir_plan::Epoch;

/// A batch of rows, with per-row ops when the stream is a changelog.
#[derive(Debug, Clone)]
pub struct StreamBatch {
    pub data: RecordBatch,
    /// `None`: every row is an insert (an append-only stream). Otherwise one op per row.
    pub ops: Option<Int8Array>,
}

impl StreamBatch {
    /// A batch of inserts.
    pub fn inserts(data: RecordBatch) -> Self {
        Self { data, ops: None }
    }

    /// A changelog batch; `ops` must have one entry per row.
    pub fn with_ops(data: RecordBatch, ops: Int8Array) -> Self {
        debug_assert_eq!(data.num_rows(), ops.len());
        Self { data, ops: Some(ops) }
    }

    pub fn num_rows(&self) -> usize {
        self.data.num_rows()
    }

    pub fn is_empty(&self) -> bool {
        self.data.num_rows() == 0
    }

    /// The op of row `i`.
    pub fn op(&self, i: usize) -> i8 {
        self.ops.as_ref().map_or(OP_INSERT, |ops| ops.value(i))
    }

    /// The same rows and ops with other columns (a projection or a relabelling).
    pub fn with_columns(
        &self,
        schema: arrow::datatypes::SchemaRef,
        columns: Vec<ArrayRef>,
    ) -> Result<Self, ArrowError> {
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(self.num_rows()));
        let data = RecordBatch::try_new_with_options(schema, columns, &options)?;
        Ok(Self { data, ops: self.ops.clone() })
    }

    /// Keeps the rows where `mask` is true (ops follow their rows).
    pub fn filter(&self, mask: &arrow::array::BooleanArray) -> Result<Self, ArrowError> {
        let data = filter_record_batch(&self.data, mask)?;
        let ops = match &self.ops {
            Some(ops) => {
                let kept = arrow::compute::filter(ops, mask)?;
                Some(downcast_ops(&kept)?)
            }
            None => None,
        };
        Ok(Self { data, ops })
    }

    /// Takes the rows at `indices`, in that order.
    pub fn take(&self, indices: &arrow::array::UInt32Array) -> Result<Self, ArrowError> {
        // Not `take_record_batch`: it cannot rebuild a batch without columns (`count(*)`).
        let columns = self
            .data
            .columns()
            .iter()
            .map(|c| arrow::compute::take(c.as_ref(), indices, None))
            .collect::<Result<Vec<ArrayRef>, _>>()?;
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(indices.len()));
        let data = RecordBatch::try_new_with_options(self.data.schema(), columns, &options)?;
        let ops = match &self.ops {
            Some(ops) => Some(downcast_ops(&arrow::compute::take(ops, indices, None)?)?),
            None => None,
        };
        Ok(Self { data, ops })
    }

    /// Concatenates batches of one schema into one (ops become explicit if any has them).
    pub fn concat(batches: &[StreamBatch]) -> Result<Option<Self>, ArrowError> {
        let Some(first) = batches.first() else { return Ok(None) };
        if batches.len() == 1 {
            return Ok(Some(first.clone()));
        }
        let data = concat_batches(&first.data.schema(), batches.iter().map(|b| &b.data))?;
        let ops = if batches.iter().any(|b| b.ops.is_some()) {
            let mut ops = Vec::with_capacity(data.num_rows());
            for b in batches {
                ops.extend((0..b.num_rows()).map(|i| b.op(i)));
            }
            Some(Int8Array::from(ops))
        } else {
            None
        };
        Ok(Some(Self { data, ops }))
    }
}

fn downcast_ops(array: &ArrayRef) -> Result<Int8Array, ArrowError> {
    array
        .as_any()
        .downcast_ref::<Int8Array>()
        .cloned()
        .ok_or_else(|| ArrowError::InvalidArgumentError("op column is not Int8".into()))
}

/// A change to the running dataflow that takes effect exactly at a barrier, so every task
/// applies it at the same point of the stream.
#[derive(Debug, Serialize, Deserialize)]
pub enum Mutation {
    /// A new job reads the output of views' materialize tasks: after passing this barrier,
    /// subtask `i` of each listed view's materialize sends its current contents to
    /// `channels[i]`, then every later change and barrier. All of a job's subscriptions
    /// ride one barrier, so its inputs start at the same epoch.
    Subscribe(Vec<Subscription>),
    /// Test and chaos tooling: the tasks of `job` fail on the next batch they process after
    /// this barrier, through the same path as any operator error.
    InjectFailure { job: u64 },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Subscription {
    pub view_id: u64,
    pub channels: Vec<weir_plan::ChannelId>,
}

/// Serializable, like every control message, so that it can cross to another process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Barrier {
    pub epoch: Epoch,
    /// Shared by every copy of the barrier in this process; sent by value between processes.
    #[serde(with = "shared")]
    pub mutation: Option<Arc<Mutation>>,
    /// Every task snapshots its state for this epoch and acknowledges it to the JobManager.
    pub checkpoint: bool,
    /// Set by the source that emits the barrier: its position once every row before the
    /// barrier is sent, so recovery from this epoch resumes exactly there.
    #[serde(with = "shared")]
    pub source_offset: Option<Arc<serde_json::Value>>,
    /// On a checkpoint barrier: the job's latest committed checkpoint, which a task's
    /// snapshot may be a delta of.
    pub base_checkpoint: Option<Epoch>,
}

/// Serde for an optional `Arc`: the value itself (serde's own impl needs its `rc` feature,
/// which would rebuild every crate that uses serde).
mod shared {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(value: &Option<Arc<T>>, s: S) -> Result<S::Ok, S::Error> {
        value.as_deref().serialize(s)
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Arc<T>>, D::Error> {
        Ok(Option::<T>::deserialize(d)?.map(Arc::new))
    }
}

impl Barrier {
    pub fn new(epoch: Epoch) -> Self {
        Self { epoch, mutation: None, checkpoint: false, source_offset: None, base_checkpoint: None }
    }

    /// A barrier that takes a checkpoint.
    pub fn checkpoint(epoch: Epoch) -> Self {
        Self { checkpoint: true, ..Self::new(epoch) }
    }
}

#[derive(Debug, Clone)]
pub enum Message {
    Batch(StreamBatch),
    /// Event time in microseconds since the Unix epoch.
    Watermark(i64),
    /// The producer has had no rows for its idle timeout: leave it out of the watermark
    /// minimum until it sends a row or a watermark again.
    Idle,
    Barrier(Barrier),
}
