//! The data plane: channels between tasks, named by id.
//!
//! The JobManager decides which channels a job needs and gives each an id; tasks look
//! their ends up here when they start. In standalone mode every channel is a bounded tokio
//! channel, so a slow consumer back-pressures its producers; a TaskManager in another
//! process would resolve the same ids to network streams.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::mpsc;

use crate::error::{ExecError, ExecResult};
use crate::message::Message;

pub type ChannelId = u64;

/// Messages buffered per channel before the producer waits.
pub const CHANNEL_CAPACITY: usize = 16;

#[derive(Default)]
pub struct LocalDataPlane {
    next_id: AtomicU64,
    senders: Mutex<HashMap<ChannelId, mpsc::Sender<Message>>>,
    receivers: Mutex<HashMap<ChannelId, mpsc::Receiver<Message>>>,
}

impl LocalDataPlane {
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates a channel; each end can be taken once.
    pub fn create(&self) -> ChannelId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        if let (Ok(mut s), Ok(mut r)) = (self.senders.lock(), self.receivers.lock()) {
            s.insert(id, tx);
            r.insert(id, rx);
        }
        id
    }

    pub fn take_sender(&self, id: ChannelId) -> ExecResult<mpsc::Sender<Message>> {
        self.senders
            .lock()
            .map_err(|_| ExecError::Internal("data plane lock poisoned".into()))?
            .remove(&id)
            .ok_or_else(|| ExecError::InvalidGraph(format!("channel {id} has no free sending end")))
    }

    pub fn take_receiver(&self, id: ChannelId) -> ExecResult<mpsc::Receiver<Message>> {
        self.receivers
            .lock()
            .map_err(|_| ExecError::Internal("data plane lock poisoned".into()))?
            .remove(&id)
            .ok_or_else(|| ExecError::InvalidGraph(format!("channel {id} has no free receiving end")))
    }

    /// Forgets channels whose ends were never taken (a job dropped before they were used).
    pub fn release(&self, ids: &[ChannelId]) {
        if let (Ok(mut s), Ok(mut r)) = (self.senders.lock(), self.receivers.lock()) {
            for id in ids {
                s.remove(id);
                r.remove(id);
            }
        }
    }
}
