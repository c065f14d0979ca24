//! Where checkpoints are kept: a directory of objects behind the `object_store` crate.
//!
//! A checkpoint is a handful of objects (one state snapshot per operator subtask and a
//! manifest naming them), written once and read back on recovery. Going through
//! `object_store` rather than `std::fs` keeps the checkpoint code blind to where the bytes
//! land: the local file system (`file://` or a plain directory) and S3-compatible object
//! stores (`s3://bucket/prefix`, with [`S3Options`] or the usual `AWS_*` environment
//! variables) are compiled in.
//!
//! Operator state can be larger than memory, so the streamed calls never hold a whole object:
//! [`CheckpointStore::put_streamed`] runs a synchronous writer on a blocking thread and hands
//! its output, a few MiB at a time over a bounded channel, to a multipart upload;
//! [`CheckpointStore::get_streamed`] does the reverse for a synchronous reader. Either way at
//! most a few chunks are in memory at once, however large the object.

use std::io::{self, Read, Write};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::sync::mpsc;

use crate::error::{StorageError, StorageResult};

/// Bytes per chunk handed from the writer thread to the upload (and per uploaded part).
const CHUNK_BYTES: usize = 8 << 20;

/// Chunks queued between the blocking side and the async side; with the chunk being filled
/// and the parts in flight this bounds a streamed transfer's memory.
const CHANNEL_CHUNKS: usize = 2;

/// Parts uploaded concurrently by a streamed put.
const PARTS_IN_FLIGHT: usize = 2;

/// How to reach an S3-compatible store (`[checkpoint.s3]`); anything left `None` comes
/// from the `AWS_*` environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_REGION`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`), as the AWS tools read them.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// A server other than AWS's (MinIO, Ceph, moto): `http://host:port`.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Plain HTTP to the endpoint (a server on a private network or loopback).
    pub allow_http: bool,
}

/// A place to put checkpoint objects, addressed by `/`-separated relative paths.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    url: String,
    store: Arc<dyn ObjectStore>,
    /// Prefixes of dropped jobs and the writes in flight (see
    /// [`CheckpointStore::retire_prefix`]), shared by clones.
    retirement: Arc<Retirement>,
}

#[derive(Debug, Default)]
struct Retirement {
    state: std::sync::Mutex<RetirementState>,
    /// Woken when a write ends.
    write_ended: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct RetirementState {
    retired: std::collections::BTreeSet<String>,
    /// Paths being written (one entry per write).
    writing: Vec<String>,
}

/// A write in flight, registered with its store's [`Retirement`] until dropped.
struct InFlightWrite {
    retirement: Arc<Retirement>,
    path: String,
}

impl Drop for InFlightWrite {
    fn drop(&mut self) {
        if let Ok(mut state) = self.retirement.state.lock() {
            if let Some(i) = state.writing.iter().position(|p| *p == self.path) {
                state.writing.swap_remove(i);
            }
        }
        self.retirement.write_ended.notify_waiters();
    }
}

/// How long retiring a prefix waits for the writes in flight under it.
const RETIRE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

impl CheckpointStore {
    /// Opens the store at `url`: `file:///absolute/dir`, or a plain (absolute or relative)
    /// directory path (created if missing), or `s3://bucket/prefix` with S3 settings from
    /// the environment.
    pub fn open(url: &str) -> StorageResult<CheckpointStore> {
        Self::open_with(url, &S3Options::default())
    }

    /// Opens the store at `url`, reaching an `s3://` one with `s3`.
    pub fn open_with(url: &str, s3: &S3Options) -> StorageResult<CheckpointStore> {
        if let Some(rest) = url.strip_prefix("s3://") {
            return Self::open_s3(url, rest, s3);
        }
        let dir = match url.split_once("://") {
            Some(("file", path)) if path.starts_with('/') => path,
            Some(("file", _)) => {
                return Err(StorageError::Invalid(format!(
                    "checkpoint location {url}: a file:// URL must name an absolute path (file:///dir)"
                )))
            }
            Some((scheme, _)) => {
                return Err(StorageError::Invalid(format!(
                    "checkpoint location {url}: the {scheme}:// scheme is not supported \
                     (use file:///dir, a directory path, or s3://bucket/prefix)"
                )))
            }
            None => url,
        };
        std::fs::create_dir_all(dir).map_err(|e| {
            StorageError::Invalid(format!("checkpoint location {url}: cannot create {dir}: {e}"))
        })?;
        let local = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| StorageError::Invalid(format!("checkpoint location {url}: {e}")))?
            // Deleting a checkpoint's last object removes its now empty directories.
            .with_automatic_cleanup(true);
        Ok(CheckpointStore { url: url.to_string(), store: Arc::new(local), retirement: Default::default() })
    }

    fn open_s3(url: &str, rest: &str, s3: &S3Options) -> StorageResult<CheckpointStore> {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(StorageError::Invalid(format!(
                "checkpoint location {url}: no bucket (s3://bucket/prefix)"
            )));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(endpoint) = &s3.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &s3.region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &s3.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &s3.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        if s3.allow_http {
            builder = builder.with_allow_http(true);
        }
        let bucket_store =
            builder.build().map_err(|e| StorageError::Invalid(format!("checkpoint location {url}: {e}")))?;
        let prefix = prefix.trim_matches('/');
        let store: Arc<dyn ObjectStore> = match prefix {
            "" => Arc::new(bucket_store),
            prefix => Arc::new(PrefixStore::new(bucket_store, prefix)),
        };
        Ok(CheckpointStore { url: url.to_string(), store, retirement: Default::default() })
    }

    /// The location this store was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Writes `data` to `path`, replacing any object there. Atomic: readers see the old
    /// object or the new one, never part of it (the local backend writes a temporary file and
    /// renames it into place).
    pub async fn put_bytes(&self, path: &str, data: Bytes) -> StorageResult<()> {
        let _writing = self.start_write(path)?;
        let location = self.location(path)?;
        self.store
            .put(&location, PutPayload::from_bytes(data))
            .await
            .map_err(|e| self.error("write", path, e))?;
        Ok(())
    }

    /// The whole object at `path`, or `None` if there is none.
    pub async fn get_bytes(&self, path: &str) -> StorageResult<Option<Bytes>> {
        let location = self.location(path)?;
        let found = match self.store.get(&location).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error("read", path, e)),
        };
        found.bytes().await.map(Some).map_err(|e| self.error("read", path, e))
    }

    /// Writes the object at `path` from whatever `write` writes, in bounded memory; returns
    /// the bytes written. `write` runs on a blocking thread, so it may do slow synchronous
    /// work (iterating a RocksDB snapshot). If `write` or the upload fails, the upload is
    /// abandoned and no object appears at `path` (an existing one is left as it was).
    pub async fn put_streamed<F>(&self, path: &str, write: F) -> StorageResult<u64>
    where
        F: FnOnce(&mut dyn Write) -> StorageResult<()> + Send + 'static,
    {
        let _writing = self.start_write(path)?;
        self.put_streamed_unregistered(path, write).await
    }

    async fn put_streamed_unregistered<F>(&self, path: &str, write: F) -> StorageResult<u64>
    where
        F: FnOnce(&mut dyn Write) -> StorageResult<()> + Send + 'static,
    {
        let location = self.location(path)?;
        let (chunks, mut received) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
        let producer = tokio::task::spawn_blocking(move || {
            let mut sink = ChunkSender { chunks, filling: Vec::with_capacity(CHUNK_BYTES), written: 0 };
            write(&mut sink)?;
            sink.finish()
        });
        let upload = match self.store.put_multipart(&location).await {
            Ok(upload) => upload,
            Err(e) => {
                // Closing the channel makes the writer's next write fail, so it stops early.
                drop(received);
                let _ = producer.await;
                return Err(self.error("write", path, e));
            }
        };
        let mut upload = WriteMultipart::new_with_chunk_size(upload, CHUNK_BYTES);
        while let Some(chunk) = received.recv().await {
            if let Err(e) = upload.wait_for_capacity(PARTS_IN_FLIGHT).await {
                drop(received);
                let _ = producer.await;
                self.abandon(upload, path).await;
                return Err(self.error("write", path, e));
            }
            upload.put(chunk);
        }
        match producer.await {
            Ok(Ok(written)) => {
                upload.finish().await.map_err(|e| self.error("write", path, e))?;
                Ok(written)
            }
            Ok(Err(e)) => {
                self.abandon(upload, path).await;
                Err(e)
            }
            Err(e) => {
                self.abandon(upload, path).await;
                Err(StorageError::Invalid(format!("checkpoint {path}: the writer stopped: {e}")))
            }
        }
    }

    /// Reads the object at `path` through `read`, in bounded memory, and returns what `read`
    /// returns. `read` runs on a blocking thread. A missing object is an error.
    pub async fn get_streamed<F, R>(&self, path: &str, read: F) -> StorageResult<R>
    where
        F: FnOnce(&mut dyn Read) -> StorageResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let location = self.location(path)?;
        let found = self.store.get(&location).await.map_err(|e| self.error("read", path, e))?;
        let (pieces, received) = mpsc::channel::<Piece>(CHANNEL_CHUNKS);
        let consumer = tokio::task::spawn_blocking(move || {
            read(&mut ChunkReceiver { pieces: received, current: Bytes::new(), ended: false })
        });
        let mut stream = found.into_stream();
        let mut last = Piece::End;
        while let Some(item) = stream.next().await {
            let piece = match item {
                Ok(bytes) => Piece::Data(bytes),
                Err(e) => {
                    last = Piece::Failed(io::Error::other(self.error("read", path, e)));
                    break;
                }
            };
            if pieces.send(piece).await.is_err() {
                // The reader is done and dropped its end; the rest is not wanted.
                break;
            }
        }
        let _ = pieces.send(last).await;
        drop(pieces);
        consumer
            .await
            .map_err(|e| StorageError::Invalid(format!("checkpoint {path}: the reader stopped: {e}")))?
    }

    /// Paths of every object under `prefix` (a `/`-separated directory, `""` for all), in
    /// order. `a/b` covers `a/b/c` but not `a/bc`.
    pub async fn list(&self, prefix: &str) -> StorageResult<Vec<String>> {
        let prefix = self.prefix(prefix)?;
        let mut paths: Vec<String> = self
            .store
            .list(prefix.as_ref())
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .map_err(|e| self.error("list", prefix.as_ref().map_or("", |p| p.as_ref()), e))?;
        paths.sort();
        Ok(paths)
    }

    /// Deletes the object at `path`; deleting a missing object is not an error.
    pub async fn delete(&self, path: &str) -> StorageResult<()> {
        let location = self.location(path)?;
        match self.store.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("delete", path, e)),
        }
    }

    /// Deletes every object under `prefix` for good: a dropped job's checkpoints. Writes
    /// under it are refused from now on, and the ones in flight (a task's upload, a commit
    /// record, both run in the background and may outlive their job) are waited for (up to
    /// a minute) before the deletion, so nothing of the job reappears after this returns.
    /// [`CheckpointStore::reopen_prefix`] undoes it.
    pub async fn retire_prefix(&self, prefix: &str) -> StorageResult<()> {
        self.fence_prefix(prefix).await;
        self.delete_prefix(prefix).await
    }

    /// Refuses writes under `prefix` from now on and returns once the ones in flight have
    /// ended (or after a minute): the first half of [`CheckpointStore::retire_prefix`], for
    /// a process whose writes another one deletes (a TaskManager's uploads of a dropped job,
    /// which the JobManager deletes once every TaskManager is fenced).
    pub async fn fence_prefix(&self, prefix: &str) {
        let retirement = &self.retirement;
        if let Ok(mut state) = retirement.state.lock() {
            state.retired.insert(prefix.to_string());
        }
        let writes_ended = async {
            loop {
                let ended = retirement.write_ended.notified();
                tokio::pin!(ended);
                ended.as_mut().enable();
                let writing = retirement
                    .state
                    .lock()
                    .map(|s| s.writing.iter().any(|p| p.starts_with(prefix)))
                    .unwrap_or(false);
                if !writing {
                    return;
                }
                ended.await;
            }
        };
        if tokio::time::timeout(RETIRE_WAIT, writes_ended).await.is_err() {
            tracing::warn!(prefix, "checkpoint writes of a dropped job still running after a minute");
        }
    }

    /// Accepts writes under a retired `prefix` again (a job deployed anew under it).
    pub fn reopen_prefix(&self, prefix: &str) {
        if let Ok(mut state) = self.retirement.state.lock() {
            state.retired.remove(prefix);
        }
    }

    /// Registers a write of `path`, or refuses it under a retired prefix.
    fn start_write(&self, path: &str) -> StorageResult<InFlightWrite> {
        let mut state = self
            .retirement
            .state
            .lock()
            .map_err(|_| StorageError::Invalid("checkpoint store state poisoned".into()))?;
        if state.retired.iter().any(|prefix| path.starts_with(prefix.as_str())) {
            return Err(StorageError::Invalid(format!("checkpoint object {path} belongs to a dropped job")));
        }
        state.writing.push(path.to_string());
        Ok(InFlightWrite { retirement: self.retirement.clone(), path: path.to_string() })
    }

    /// Deletes every object under `prefix` (as [`CheckpointStore::list`] counts them).
    pub async fn delete_prefix(&self, prefix: &str) -> StorageResult<()> {
        let listed = self.store.list(self.prefix(prefix)?.as_ref()).map_ok(|meta| meta.location).boxed();
        let mut deleted = self.store.delete_stream(listed);
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.error("delete", prefix, e)),
            }
        }
        Ok(())
    }

    fn location(&self, path: &str) -> StorageResult<ObjectPath> {
        match ObjectPath::parse(path) {
            Ok(location) if !location.as_ref().is_empty() => Ok(location),
            Ok(_) => {
                Err(StorageError::Invalid(format!("checkpoint store {}: an object path is empty", self.url)))
            }
            Err(e) => Err(StorageError::Invalid(format!(
                "checkpoint store {}: bad object path {path:?}: {e}",
                self.url
            ))),
        }
    }

    fn prefix(&self, prefix: &str) -> StorageResult<Option<ObjectPath>> {
        match prefix.trim_matches('/') {
            "" => Ok(None),
            prefix => self.location(prefix).map(Some),
        }
    }

    /// Gives up a streamed upload. Its parts are cleaned up best effort: an abort that fails
    /// leaves at worst an unreferenced temporary object, never one at the target path.
    async fn abandon(&self, upload: WriteMultipart, path: &str) {
        if let Err(e) = upload.abort().await {
            tracing::warn!(store = %self.url, path, error = %e, "could not clean up an abandoned checkpoint upload");
        }
    }

    fn error(&self, what: &str, path: &str, e: object_store::Error) -> StorageError {
        StorageError::Invalid(format!("checkpoint store {}: cannot {what} {path}: {e}", self.url))
    }
}

/// The blocking writer's end of a streamed put: fills a chunk, then sends it.
struct ChunkSender {
    chunks: mpsc::Sender<Bytes>,
    filling: Vec<u8>,
    written: u64,
}

impl ChunkSender {
    fn send_filled(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.filling, Vec::with_capacity(CHUNK_BYTES));
        self.chunks
            .blocking_send(Bytes::from(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the checkpoint upload stopped"))
    }

    /// Sends the last, partly filled chunk; returns the bytes written in all.
    fn finish(mut self) -> StorageResult<u64> {
        if !self.filling.is_empty() {
            self.send_filled().map_err(|e| StorageError::Invalid(format!("checkpoint upload: {e}")))?;
        }
        Ok(self.written)
    }
}

impl Write for ChunkSender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let taken = buf.len().min(CHUNK_BYTES - self.filling.len());
        self.filling.extend_from_slice(&buf[..taken]);
        self.written += taken as u64;
        if self.filling.len() == CHUNK_BYTES {
            self.send_filled()?;
        }
        Ok(taken)
    }

    /// Chunks are sent when full; there is nothing to flush before [`ChunkSender::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What the download side sends the blocking reader. The end is explicit so that a
/// download cut short (its task cancelled) reads as an error, never as a shorter object.
enum Piece {
    Data(Bytes),
    End,
    Failed(io::Error),
}

/// The blocking reader's end of a streamed get.
struct ChunkReceiver {
    pieces: mpsc::Receiver<Piece>,
    current: Bytes,
    ended: bool,
}

impl Read for ChunkReceiver {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() && !self.ended {
            match self.pieces.blocking_recv() {
                Some(Piece::Data(bytes)) => self.current = bytes,
                Some(Piece::End) => self.ended = true,
                Some(Piece::Failed(e)) => return Err(e),
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the checkpoint download stopped",
                    ))
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &tempfile::TempDir) -> CheckpointStore {
        CheckpointStore::open(&dir.path().to_string_lossy()).expect("open")
    }

    /// Deterministic, non-repeating-looking content: byte `i` of the stream.
    fn pattern(i: u64) -> u8 {
        (i.wrapping_mul(2_654_435_761) >> 13) as u8
    }

    #[tokio::test]
    async fn a_retired_prefix_stays_empty_until_reopened() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        store.put_bytes("job-7/epoch-1/_metadata.json", Bytes::from_static(b"m")).await.expect("put");
        store.put_bytes("job-70/epoch-1/_metadata.json", Bytes::from_static(b"m")).await.expect("put");
        // A clone (as the background writers hold) shares the retirement.
        let writer = store.clone();
        store.retire_prefix("job-7/").await.expect("retire");
        assert!(store.list("job-7/").await.expect("list").is_empty());
        assert!(writer.put_bytes("job-7/epoch-2/_metadata.json", Bytes::from_static(b"late")).await.is_err());
        let streamed = writer
            .put_streamed("job-7/epoch-2/piece", |out| {
                out.write_all(b"late").map_err(|e| StorageError::Invalid(e.to_string()))
            })
            .await;
        assert!(streamed.is_err(), "a late upload of a dropped job is refused");
        assert!(store.list("job-7/").await.expect("list").is_empty());
        assert!(!dir.path().join("job-7").exists(), "no empty directory is left");
        // Another job's prefix is untouched.
        assert_eq!(store.list("job-70/").await.expect("list").len(), 1);
        store.reopen_prefix("job-7/");
        store.put_bytes("job-7/epoch-3/_metadata.json", Bytes::from_static(b"new")).await.expect("put again");
    }

    #[tokio::test]
    async fn bytes_round_trip_and_missing_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        store
            .put_bytes("job-1/ckpt-3/manifest.json", Bytes::from_static(b"{\"epoch\":3}"))
            .await
            .expect("put");
        let read = store.get_bytes("job-1/ckpt-3/manifest.json").await.expect("get");
        assert_eq!(read.as_deref(), Some(&b"{\"epoch\":3}"[..]));
        store.put_bytes("job-1/ckpt-3/manifest.json", Bytes::from_static(b"v2")).await.expect("overwrite");
        assert_eq!(
            store.get_bytes("job-1/ckpt-3/manifest.json").await.expect("get").as_deref(),
            Some(&b"v2"[..])
        );
        assert_eq!(store.get_bytes("job-1/ckpt-4/manifest.json").await.expect("get missing"), None);
    }

    #[tokio::test]
    async fn a_large_object_streams_in_and_out_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        const TOTAL: u64 = 50 << 20;
        let written = store
            .put_streamed("job-1/ckpt-1/state-0", |out| {
                // Uneven write sizes so chunk boundaries fall mid-write.
                let mut at = 0u64;
                let mut size = 1usize;
                while at < TOTAL {
                    let n = size.min((TOTAL - at) as usize);
                    let block: Vec<u8> = (at..at + n as u64).map(pattern).collect();
                    out.write_all(&block).map_err(|e| StorageError::Invalid(e.to_string()))?;
                    at += n as u64;
                    size = size * 7 % 1_000_003 + 1;
                }
                Ok(())
            })
            .await
            .expect("put_streamed");
        assert_eq!(written, TOTAL);
        let (length, mismatches) = store
            .get_streamed("job-1/ckpt-1/state-0", |input| {
                let mut buf = vec![0u8; 1 << 16];
                let (mut at, mut mismatches) = (0u64, 0u64);
                loop {
                    let n = input.read(&mut buf).map_err(|e| StorageError::Invalid(e.to_string()))?;
                    if n == 0 {
                        return Ok((at, mismatches));
                    }
                    mismatches +=
                        buf[..n].iter().zip(at..).filter(|(b, i)| **b != pattern(*i)).count() as u64;
                    at += n as u64;
                }
            })
            .await
            .expect("get_streamed");
        assert_eq!((length, mismatches), (TOTAL, 0));
    }

    #[tokio::test]
    async fn a_failing_writer_leaves_no_object() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let failed = store
            .put_streamed("job-1/ckpt-2/state-0", |out| {
                out.write_all(&vec![7u8; 20 << 20]).map_err(|e| StorageError::Invalid(e.to_string()))?;
                Err(StorageError::Invalid("operator state unreadable".into()))
            })
            .await;
        let message = failed.expect_err("the writer failed").to_string();
        assert!(message.contains("operator state unreadable"), "{message}");
        assert_eq!(store.get_bytes("job-1/ckpt-2/state-0").await.expect("get"), None);
        assert!(store.list("").await.expect("list").is_empty());
        // Nothing else (no temporary file) is left on disk either.
        let leftovers: Vec<_> = walk(dir.path());
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            match path.is_dir() {
                true => files.extend(walk(&path)),
                false => files.push(path),
            }
        }
        files
    }

    #[tokio::test]
    async fn list_and_delete_by_path_and_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        for path in ["job-1/ckpt-1/a", "job-1/ckpt-1/b", "job-1/ckpt-10/a", "job-2/ckpt-1/a"] {
            store.put_bytes(path, Bytes::from(path.to_string())).await.expect("put");
        }
        assert_eq!(store.list("job-1/ckpt-1").await.expect("list"), ["job-1/ckpt-1/a", "job-1/ckpt-1/b"]);
        assert_eq!(store.list("").await.expect("list").len(), 4);
        assert!(store.list("job-9").await.expect("list missing prefix").is_empty());
        store.delete("job-1/ckpt-1/a").await.expect("delete");
        store.delete("job-1/ckpt-1/a").await.expect("deleting a missing object is fine");
        assert_eq!(store.list("job-1").await.expect("list"), ["job-1/ckpt-1/b", "job-1/ckpt-10/a"]);
        store.delete_prefix("job-1").await.expect("delete_prefix");
        assert_eq!(store.list("").await.expect("list"), ["job-2/ckpt-1/a"]);
        store.delete_prefix("job-1").await.expect("deleting an empty prefix is fine");
    }

    #[tokio::test]
    async fn file_urls_and_plain_paths_open_the_same_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("checkpoints");
        let url = format!("file://{}", root.display());
        let by_url = CheckpointStore::open(&url).expect("open file://");
        assert_eq!(by_url.url(), url);
        by_url.put_bytes("x/y", Bytes::from_static(b"same")).await.expect("put");
        let by_path = CheckpointStore::open(&root.to_string_lossy()).expect("open path");
        assert_eq!(by_path.get_bytes("x/y").await.expect("get").as_deref(), Some(&b"same"[..]));
        assert!(root.join("x").join("y").is_file());
    }

    #[test]
    fn other_schemes_are_refused_with_a_reason() {
        let error = CheckpointStore::open("gs://bucket/checkpoints").expect_err("no gcs").to_string();
        assert!(error.contains("gs:// scheme is not supported"), "{error}");
        assert!(error.contains("s3://bucket/prefix"), "{error}");
        let error = CheckpointStore::open("s3:///checkpoints").expect_err("no bucket").to_string();
        assert!(error.contains("no bucket"), "{error}");
        let error = CheckpointStore::open("file://relative/dir").expect_err("not absolute").to_string();
        assert!(error.contains("absolute path"), "{error}");
    }
}
