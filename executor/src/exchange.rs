//! Exchange: routes a task's output batches to the subtasks of the next vertex.
//!
//! Hash routing hashes the key columns with a fixed seed (vectorized, DataFusion's
//! `create_hashes`), maps the hash to one of [`KEY_GROUPS`] key groups and the key
//! group to a subtask by range. Every process computes the same route for the same key,
//! and a later rescale only moves whole key-group ranges. Barriers and watermarks go to
//! every consumer.

use arrow::array::UInt32Array;
use datafusion::common::hash_utils::{create_hashes, RandomState};

use crate::data_plane::ChannelSender;
use crate::error::{ExecError, ExecResult};
use crate::message::{Message, StreamBatch};
use crate::operators::float_keys::{any_float, normalized};
use weir_plan::job_graph::Partitioning;
use weir_plan::KEY_GROUPS;

/// Fixed so that every process routes a key to the same key group.
const HASH_SEED: u64 = 0x5745_4952_6b65_7967;

/// The key group of each row, by the hash of `key_columns`.
pub fn key_groups(batch: &StreamBatch, key_columns: &[usize]) -> ExecResult<Vec<usize>> {
    let columns = key_columns
        .iter()
        .map(|&c| {
            batch
                .data
                .columns()
                .get(c)
                .cloned()
                .ok_or_else(|| ExecError::InvalidGraph(format!("hash key column {c} out of range")))
        })
        .collect::<ExecResult<Vec<_>>>()?;
    // -0 and 0 (and every NaN) are one key: they must reach the same subtask.
    let columns = match any_float(&columns) {
        true => normalized(&columns),
        false => columns,
    };
    let state = RandomState::with_seed(HASH_SEED);
    let mut hashes = vec![0u64; batch.num_rows()];
    create_hashes(&columns, &state, &mut hashes)?;
    Ok(hashes.into_iter().map(|h| (h % KEY_GROUPS as u64) as usize).collect())
}

/// The subtask that owns `key_group` among `parallelism` subtasks.
pub fn subtask_of(key_group: usize, parallelism: usize) -> usize {
    key_group * parallelism / KEY_GROUPS as usize
}

/// The key groups subtask `subtask` of `parallelism` owns: those [`subtask_of`] maps to it.
pub fn key_group_range(subtask: usize, parallelism: usize) -> std::ops::Range<u16> {
    let parallelism = parallelism.max(1);
    let total = KEY_GROUPS as usize;
    // The smallest g with g * parallelism / total >= s.
    let first = |s: usize| (s * total).div_ceil(parallelism).min(total) as u16;
    first(subtask)..first(subtask + 1)
}

/// One output edge of a task: the consumers' channels and how rows are spread over them.
pub struct OutputGate {
    partitioning: Partitioning,
    senders: Vec<ChannelSender>,
    /// Set on gates to views reading this one: if that reader is dropped, the gate closes
    /// instead of failing the task.
    detachable: bool,
}

impl OutputGate {
    pub fn new(partitioning: Partitioning, senders: Vec<ChannelSender>) -> Self {
        Self { partitioning, senders, detachable: false }
    }

    pub fn subscriber(sender: ChannelSender) -> Self {
        Self { partitioning: Partitioning::Single, senders: vec![sender], detachable: true }
    }

    /// Sends a batch; returns `false` if the gate is detachable and its reader went away.
    pub async fn send_batch(&self, batch: StreamBatch) -> ExecResult<bool> {
        match &self.partitioning {
            Partitioning::Hash(keys) if self.senders.len() > 1 => {
                let groups = key_groups(&batch, keys)?;
                let n = self.senders.len();
                let mut indices: Vec<Vec<u32>> = vec![Vec::new(); n];
                for (row, group) in groups.into_iter().enumerate() {
                    indices[subtask_of(group, n)].push(row as u32);
                }
                for (target, rows) in indices.into_iter().enumerate() {
                    if rows.is_empty() {
                        continue;
                    }
                    let part = if rows.len() == batch.num_rows() {
                        batch.clone()
                    } else {
                        batch.take(&UInt32Array::from(rows))?
                    };
                    if !self.send_to(target, Message::Batch(part)).await? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Partitioning::Broadcast => self.send_all(Message::Batch(batch)).await,
            // Forward gates hold the one matching consumer; single gates the only one.
            _ => self.send_to(0, Message::Batch(batch)).await,
        }
    }

    /// Sends a control message (barrier, watermark) to every consumer.
    pub async fn send_all(&self, message: Message) -> ExecResult<bool> {
        for target in 0..self.senders.len() {
            if !self.send_to(target, message.clone()).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn send_to(&self, target: usize, message: Message) -> ExecResult<bool> {
        let sender =
            self.senders.get(target).ok_or_else(|| ExecError::Internal("no such consumer".into()))?;
        match sender.send(message).await {
            Ok(()) => Ok(true),
            Err(_) if self.detachable => Ok(false),
            Err(_) => Err(ExecError::ChannelClosed("downstream task".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array};
    use tokio::sync::mpsc;

    use super::*;
    use crate::operators::test_util::batch;

    #[test]
    fn key_group_ranges_are_what_the_exchange_routes_to_each_subtask() {
        for parallelism in [1, 2, 3, 4, 7, 128] {
            let mut next = 0u16;
            for subtask in 0..parallelism {
                let range = key_group_range(subtask, parallelism);
                assert_eq!(range.start, next, "ranges tile the key groups");
                for group in range.clone() {
                    assert_eq!(subtask_of(group as usize, parallelism), subtask);
                }
                next = range.end;
            }
            assert_eq!(next as usize, KEY_GROUPS as usize);
        }
    }

    #[test]
    fn equal_keys_land_in_equal_key_groups() {
        let b = batch(vec![("k", Arc::new(Int64Array::from(vec![5, 6, 5, 7, 6])) as ArrayRef)], None);
        let groups = key_groups(&b, &[0]).unwrap();
        assert_eq!(groups[0], groups[2]);
        assert_eq!(groups[1], groups[4]);
        assert!(groups.iter().all(|g| *g < KEY_GROUPS as usize));
    }

    #[test]
    fn key_groups_map_to_subtasks_by_range() {
        assert_eq!(subtask_of(0, 4), 0);
        assert_eq!(subtask_of(31, 4), 0);
        assert_eq!(subtask_of(32, 4), 1);
        assert_eq!(subtask_of(127, 4), 3);
        assert_eq!(subtask_of(127, 1), 0);
    }

    #[tokio::test]
    async fn hash_gate_splits_rows_and_broadcasts_barriers() {
        let (tx0, mut rx0) = mpsc::channel(8);
        let (tx1, mut rx1) = mpsc::channel(8);
        let gate = OutputGate::new(Partitioning::Hash(vec![0]), vec![tx0, tx1]);
        let keys: Vec<i64> = (0..100).collect();
        let b = batch(vec![("k", Arc::new(Int64Array::from(keys)) as ArrayRef)], None);
        assert!(gate.send_batch(b).await.unwrap());
        assert!(gate.send_all(Message::Barrier(crate::message::Barrier::new(1))).await.unwrap());
        let mut total = 0;
        for rx in [&mut rx0, &mut rx1] {
            while let Ok(m) = rx.try_recv() {
                match m {
                    Message::Batch(b) => total += b.num_rows(),
                    Message::Barrier(b) => assert_eq!(b.epoch, 1),
                    Message::Watermark(_) | Message::Idle => unreachable!(),
                }
            }
        }
        assert_eq!(total, 100);
    }
}
