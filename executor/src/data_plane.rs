//! The data plane: channels between tasks, named by id.
//!
//! The JobManager decides which channels a job needs and gives each an id (see
//! [`ChannelIds`]); it creates nothing. A TaskManager resolves the ids in a task's
//! descriptor through its [`DataPlane`] when it deploys the task. Inside a task every
//! channel end is an in-process bounded channel ([`ChannelSender`], [`ChannelReceiver`]),
//! so a slow consumer back-pressures its producers: [`LocalDataPlane`] connects both ends
//! directly; a data plane for TaskManagers in other processes resolves an id whose other
//! end is remote to a local channel that a network stream fills or drains, with the
//! channel's capacity as the consumer's credit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::mpsc;
pub use weir_plan::ChannelId;

use crate::error::{ExecError, ExecResult};
use crate::message::Message;

/// Messages buffered per channel before the producer waits.
pub const CHANNEL_CAPACITY: usize = 16;

/// The sending end of a channel, as a task's output gate holds it.
pub type ChannelSender = mpsc::Sender<Message>;
/// The receiving end of a channel, as a task's input holds it.
pub type ChannelReceiver = mpsc::Receiver<Message>;

/// A bounded in-process channel, for the ends a task makes for itself (its source's output).
pub fn local_channel() -> (ChannelSender, ChannelReceiver) {
    mpsc::channel(CHANNEL_CAPACITY)
}

/// Resolves channel ids to the ends a task reads and writes.
pub trait DataPlane: Send + Sync {
    /// Learns about a task about to be deployed here: which of its outputs go to another
    /// process, and where (a network data plane routes them; a local one has nothing to
    /// learn).
    fn prepare(&self, _task: &crate::task_manager::TaskDescriptor) {}
    /// The sending end of channel `id`; each end is opened once.
    fn open_sender(&self, id: ChannelId) -> ExecResult<ChannelSender>;
    /// The receiving end of channel `id`; each end is opened once.
    fn open_receiver(&self, id: ChannelId) -> ExecResult<ChannelReceiver>;
    /// Forgets channels of a stopped job, including ends that were never opened.
    fn release(&self, ids: &[ChannelId]);
}

/// Hands out channel ids, unique for the JobManager's life.
#[derive(Default)]
pub struct ChannelIds {
    next: AtomicU64,
}

impl ChannelIds {
    /// Ids that also differ from those of any earlier JobManager of the cluster (they start
    /// at the current time in milliseconds, shifted past a million ids per millisecond), so
    /// a frame still in flight from a job of a JobManager that restarted can never be taken
    /// for one of a new job's channels.
    pub fn unique_across_restarts() -> Self {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self { next: AtomicU64::new(now_ms << 20) }
    }

    pub fn allocate(&self) -> ChannelId {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

/// The ends of a channel not opened yet. Once both are, the entry stays (empty) until the
/// job releases its channels, so that opening an end twice is an error, not a new channel.
struct Ends {
    sender: Option<ChannelSender>,
    receiver: Option<ChannelReceiver>,
}

/// Every channel in this process: the tokio channel behind an id is made when either of
/// its ends is first opened.
#[derive(Default)]
pub struct LocalDataPlane {
    channels: Mutex<HashMap<ChannelId, Ends>>,
}

impl LocalDataPlane {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets every channel (the JobManager that named them is gone).
    pub fn clear(&self) {
        if let Ok(mut channels) = self.channels.lock() {
            channels.clear();
        }
    }

    fn open<T>(&self, id: ChannelId, take: impl FnOnce(&mut Ends) -> Option<T>, what: &str) -> ExecResult<T> {
        let mut channels =
            self.channels.lock().map_err(|_| ExecError::Internal("data plane lock poisoned".into()))?;
        let ends = channels.entry(id).or_insert_with(|| {
            let (sender, receiver) = local_channel();
            Ends { sender: Some(sender), receiver: Some(receiver) }
        });
        take(ends).ok_or_else(|| ExecError::InvalidGraph(format!("channel {id} has no free {what} end")))
    }
}

impl DataPlane for LocalDataPlane {
    fn open_sender(&self, id: ChannelId) -> ExecResult<ChannelSender> {
        self.open(id, |ends| ends.sender.take(), "sending")
    }

    fn open_receiver(&self, id: ChannelId) -> ExecResult<ChannelReceiver> {
        self.open(id, |ends| ends.receiver.take(), "receiving")
    }

    fn release(&self, ids: &[ChannelId]) {
        if let Ok(mut channels) = self.channels.lock() {
            for id in ids {
                // An end still unopened may yet be asked for (a subscription applied after its
                // reader was dropped): it stays as an empty entry, so that the request fails
                // instead of making a channel nobody reads. Ids are never reused.
                match channels.get_mut(id) {
                    Some(ends) if ends.sender.is_some() || ends.receiver.is_some() => {
                        *ends = Ends { sender: None, receiver: None };
                    }
                    _ => {
                        channels.remove(id);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    #[tokio::test]
    async fn either_end_may_be_opened_first_and_each_once() {
        let plane = LocalDataPlane::new();
        let ids = ChannelIds::default();
        let (a, b) = (ids.allocate(), ids.allocate());
        assert_ne!(a, b);
        let mut rx = plane.open_receiver(a).unwrap();
        let tx = plane.open_sender(a).unwrap();
        tx.send(Message::Watermark(7)).await.unwrap();
        assert!(matches!(rx.recv().await, Some(Message::Watermark(7))));
        assert!(plane.open_receiver(a).is_err(), "a receiving end opens once");

        let tx = plane.open_sender(b).unwrap();
        assert!(plane.open_sender(b).is_err(), "a sending end opens once");
        let mut rx = plane.open_receiver(b).unwrap();
        tx.send(Message::Idle).await.unwrap();
        assert!(matches!(rx.recv().await, Some(Message::Idle)));
    }

    #[test]
    fn a_released_channel_cannot_be_opened_again() {
        let plane = LocalDataPlane::new();
        let _tx = plane.open_sender(3).unwrap();
        let _rx = plane.open_receiver(4).unwrap();
        let _tx = plane.open_sender(4).unwrap();
        plane.release(&[3, 4]);
        assert!(plane.open_receiver(3).is_err(), "the other end of a released channel is gone");
        assert_eq!(plane.channels.lock().unwrap().len(), 1, "fully opened channels are forgotten");
    }
}
