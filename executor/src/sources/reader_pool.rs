//! The source reader pool: a bounded set of threads that run connector reads.
//!
//! A connector's [`SplitReader`] is blocking code (file reads, decoding). Each split used to
//! run on a thread of Tokio's shared blocking pool for its whole life, also while it waited
//! for barriers after its end, so a source with more splits than that pool has threads
//! (`split.size = '1'`, a glob matching thousands of files) took every thread, and every
//! client whose statement needed one (a table write, a DDL) stalled behind it.
//!
//! Now a split is an async task that holds no thread while it waits, and each read of one
//! batch runs here, on one of at most `[sources] reader_threads` threads shared by every
//! source of the process. Reads of many splits take turns a batch at a time, so a huge source
//! only slows itself; Tokio's blocking pool stays free for everyone else. Threads are started
//! as reads need them, up to the bound, and stop when the pool is dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::connectors::{ReadOutcome, SplitReader};
use crate::error::{ExecError, ExecResult};

/// Reader threads when the configuration does not say: the cores, and at least four so a
/// slow file (a network mount) does not stop every other source.
pub fn default_reader_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).max(4)
}

type Job = Box<dyn FnOnce() + Send>;

/// Where a job joins the queue.
enum Priority {
    First,
    Last,
}

/// A handle to the pool; clones share its threads. The threads stop once every handle is
/// gone and the queued reads are done.
#[derive(Clone)]
pub struct ReaderPool {
    handle: Arc<Handle>,
}

/// Closes the queue when the last [`ReaderPool`] clone is dropped.
struct Handle {
    shared: Arc<Shared>,
}

struct Shared {
    max_threads: usize,
    queue: Mutex<Queue>,
    ready: Condvar,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
    closed: bool,
}

impl std::fmt::Debug for ReaderPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderPool").field("max_threads", &self.handle.shared.max_threads).finish()
    }
}

impl Default for ReaderPool {
    fn default() -> Self {
        Self::new(default_reader_threads())
    }
}

impl ReaderPool {
    /// A pool of at most `max_threads` threads (at least one).
    pub fn new(max_threads: usize) -> Self {
        let shared = Arc::new(Shared {
            max_threads: max_threads.max(1),
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
        });
        ReaderPool { handle: Arc::new(Handle { shared }) }
    }

    /// The most threads the pool runs at once.
    pub fn max_threads(&self) -> usize {
        self.handle.shared.max_threads
    }

    /// Reads the next batch of `reader` on a pool thread and hands the reader back with it.
    pub async fn next_batch(
        &self,
        mut reader: Box<dyn SplitReader>,
    ) -> ExecResult<(Box<dyn SplitReader>, ExecResult<ReadOutcome>)> {
        // Ahead of queued decoding: a source waits for its read, while decoding queued by
        // readers is work for threads that would otherwise be idle.
        self.run_queued(
            move || {
                let outcome = reader.next_batch();
                (reader, outcome)
            },
            Priority::First,
        )
        .await
    }

    /// Runs `work` on a pool thread. If the task awaiting it is dropped, the work still runs
    /// to its end and its result is dropped.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> ExecResult<T> {
        self.run_queued(work, Priority::Last).await
    }

    async fn run_queued<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
        priority: Priority,
    ) -> ExecResult<T> {
        let (tx, rx) = oneshot::channel();
        self.submit(
            Box::new(move || {
                let _ = tx.send(work());
            }),
            priority,
        );
        rx.await.map_err(|_| ExecError::Internal("a source read panicked on its reader thread".into()))
    }

    /// Queues `work` on the pool and returns at once. The caller can later
    /// [`join`](Stealable::join) it: if no pool thread has started it by then, the caller
    /// runs it itself. A reader can so hand work to the pool without ever waiting for a
    /// thread the pool may not have free (every thread may be a reader waiting in turn).
    pub fn spawn_stealable<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Stealable<T> {
        let slot = Slot::queued(work);
        let queued = Arc::clone(&slot);
        self.submit(
            Box::new(move || {
                queued.run_if_queued(true);
            }),
            Priority::Last,
        );
        Stealable { slot }
    }

    fn submit(&self, job: Job, priority: Priority) {
        let shared = &self.handle.shared;
        let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
        match priority {
            Priority::First => queue.jobs.push_front(job),
            Priority::Last => queue.jobs.push_back(job),
        }
        if queue.idle == 0 && queue.threads < shared.max_threads {
            queue.threads += 1;
            let index = queue.threads;
            let worker = Arc::clone(shared);
            let spawned = std::thread::Builder::new()
                .name(format!("weir-source-reader-{index}"))
                .spawn(move || worker.work());
            if let Err(e) = spawned {
                // The reads wait for the threads already running (there is at least one
                // unless this was the first, which then fails loudly below).
                queue.threads -= 1;
                tracing::error!(error = %e, "cannot start a source reader thread");
                if queue.threads == 0 {
                    queue.jobs.clear();
                }
            }
        } else {
            shared.ready.notify_one();
        }
    }
}

impl Shared {
    fn work(&self) {
        loop {
            let job = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if let Some(job) = queue.jobs.pop_front() {
                        break job;
                    }
                    if queue.closed {
                        queue.threads -= 1;
                        return;
                    }
                    queue.idle += 1;
                    queue = self.ready.wait(queue).unwrap_or_else(PoisonError::into_inner);
                    queue.idle -= 1;
                }
            };
            // A panicking reader drops its result sender, which its source reports as an
            // error; the thread itself carries on with the next read.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut queue = self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.closed = true;
        self.shared.ready.notify_all();
    }
}

/// Work queued by [`ReaderPool::spawn_stealable`]. Dropping it before it starts cancels it.
pub struct Stealable<T> {
    slot: Arc<Slot<T>>,
}

struct Slot<T> {
    state: Mutex<SlotState<T>>,
    done: Condvar,
}

enum SlotState<T> {
    Queued(Box<dyn FnOnce() -> T + Send>),
    Running,
    Done(ExecResult<T>),
    /// Its result was taken, or it was cancelled before it started.
    Gone,
}

impl<T> Slot<T> {
    fn queued(work: impl FnOnce() -> T + Send + 'static) -> Arc<Self> {
        Arc::new(Slot { state: Mutex::new(SlotState::Queued(Box::new(work))), done: Condvar::new() })
    }

    /// Runs the work here if nobody has started it. On a pool thread a panic becomes an
    /// error result (the joining reader reports it); on the joining thread it propagates.
    fn run_if_queued(&self, on_pool: bool) -> bool {
        let work = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            match std::mem::replace(&mut *state, SlotState::Running) {
                SlotState::Queued(work) => work,
                other => {
                    *state = other;
                    return false;
                }
            }
        };
        let result = if on_pool {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                .map_err(|_| ExecError::Internal("a source decode panicked on its reader thread".into()))
        } else {
            Ok(work())
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *state = SlotState::Done(result);
        self.done.notify_all();
        true
    }
}

impl<T> Stealable<T> {
    /// Work that no pool will run: [`join`](Self::join) runs it on the joining thread.
    pub fn deferred(work: impl FnOnce() -> T + Send + 'static) -> Self {
        Stealable { slot: Slot::queued(work) }
    }

    /// Runs the work on this thread if no pool thread has started it yet; true if it did.
    pub fn run_here_if_queued(&self) -> bool {
        self.slot.run_if_queued(false)
    }

    /// Whether a pool thread is running the work right now.
    pub fn is_running(&self) -> bool {
        matches!(*self.slot.state.lock().unwrap_or_else(PoisonError::into_inner), SlotState::Running)
    }

    /// The work's result: run here if not started, else waited for.
    pub fn join(self) -> ExecResult<T> {
        self.slot.run_if_queued(false);
        let mut state = self.slot.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match std::mem::replace(&mut *state, SlotState::Gone) {
                SlotState::Done(result) => return result,
                SlotState::Running => {
                    *state = SlotState::Running;
                    state = self.slot.done.wait(state).unwrap_or_else(PoisonError::into_inner);
                }
                SlotState::Queued(_) | SlotState::Gone => {
                    return Err(ExecError::Internal("a source decode was lost".into()))
                }
            }
        }
    }
}

impl<T> Drop for Stealable<T> {
    fn drop(&mut self) {
        let mut state = self.slot.state.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(*state, SlotState::Queued(_)) {
            *state = SlotState::Gone;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_runs_more_reads_at_once_than_its_threads() {
        let pool = ReaderPool::new(3);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let reads = (0..40).map(|_| {
            let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
            tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            })
        });
        for read in reads.collect::<Vec<_>>() {
            read.await.unwrap().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 3);
        assert_eq!(pool.handle.shared.queue.lock().unwrap().threads, 3);
    }

    /// Waits until a pool thread has finished `work`, without running it here.
    fn wait_until_done<T>(work: &Stealable<T>) {
        while !matches!(*work.slot.state.lock().unwrap(), SlotState::Done(_)) {
            std::thread::yield_now();
        }
    }

    /// Queues work that holds the pool's only thread until the returned sender is used.
    fn occupy(pool: &ReaderPool) -> (std::sync::mpsc::Sender<()>, Stealable<bool>) {
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let busy = pool.spawn_stealable(move || blocked.recv().is_ok());
        while !busy.is_running() {
            std::thread::yield_now();
        }
        (release, busy)
    }

    #[test]
    fn stealable_work_runs_once_on_the_pool_or_on_the_joining_thread() {
        // The pool's one thread is busy: the joining thread runs the work itself, once.
        let pool = ReaderPool::new(1);
        let (release, busy) = occupy(&pool);
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let stolen = pool.spawn_stealable(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            std::thread::current().id()
        });
        assert_eq!(stolen.join().unwrap(), std::thread::current().id());
        release.send(()).unwrap();
        assert!(busy.join().unwrap());
        // Queued after the stolen work: once it is done, the pool thread has passed the
        // stolen work's job without running it again.
        let marker = pool.spawn_stealable(|| std::thread::current().name().map(str::to_owned));
        wait_until_done(&marker);
        let name = marker.join().unwrap().unwrap_or_default();
        assert!(name.starts_with("weir-source-reader"), "{name}");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn dropped_stealable_work_never_runs_and_a_panic_is_an_error() {
        let pool = ReaderPool::new(1);
        let (release, busy) = occupy(&pool);
        let ran = Arc::new(AtomicUsize::new(0));
        let counted = ran.clone();
        drop(pool.spawn_stealable(move || counted.fetch_add(1, Ordering::SeqCst)));
        let panics = pool.spawn_stealable(|| -> u32 { panic!("decoder bug") });
        release.send(()).unwrap();
        assert!(busy.join().unwrap());
        wait_until_done(&panics);
        assert!(panics.join().unwrap_err().to_string().contains("panicked"));
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_panicking_read_is_an_error_and_the_pool_carries_on() {
        let pool = ReaderPool::new(1);
        let err = pool.run(|| -> () { panic!("reader bug") }).await.unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err}");
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
    }
}
