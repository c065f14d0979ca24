//! Where a file sink's job began writing its file: for starts that have no checkpoint.
//!
//! A sink restored from a checkpoint cuts its file back to the length the checkpoint
//! recorded, and its sources resume where the checkpoint left them. But a job can also
//! start again with no checkpoint to restore: it failed, or its TaskManager was lost, or the
//! server was killed, before its first checkpoint committed; or checkpoints are off; or the
//! sink reads a view (such sinks rebuild from the view instead of checkpointing). Its sources
//! then replay from their beginning, and every row the earlier attempt wrote would be in the
//! file twice. So before a sink that starts without a checkpoint writes its first row, it
//! looks for a marker beside its file, `.NAME.weir-sink-ID` (`ID` the sink's catalog id):
//! if there is one, it cuts the file back to the length recorded there, where this sink's
//! first attempt began; if not, this is the first attempt, and it records the file's length
//! (synced to disk before any row is written). The marker is kept for the sink's life, since
//! any start without a checkpoint replays from the beginning; `DROP SINK` removes it where
//! the dropping server can reach the file (see [`remove_markers`]).
//!
//! The marker is beside the file rather than in the catalog because a sink's file is on the
//! host of the TaskManager that writes it, which the catalog's process may not see.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{ExecError, ExecResult};

const SUFFIX: &str = ".weir-sink-";

/// The start marker of one sink file.
pub(super) struct StartMarker {
    path: PathBuf,
}

impl StartMarker {
    /// The marker of `file` (a resolved path inside the allowed directories) for sink `sink_id`.
    pub(super) fn beside(file: &Path, sink_id: u64) -> ExecResult<Self> {
        let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
            return Err(ExecError::Connector(format!("sink file {} has no file name", file.display())));
        };
        let name = format!(".{}{SUFFIX}{sink_id}", name.to_string_lossy());
        Ok(Self { path: dir.join(name) })
    }

    /// The length recorded by the sink's first attempt; `None` if there is no marker. A
    /// marker is written whole or not at all (see [`StartMarker::record`]).
    pub(super) fn read(&self) -> ExecResult<Option<u64>> {
        let mut text = String::new();
        match no_follow(OpenOptions::new().read(true)).open(&self.path) {
            Ok(mut file) => file.read_to_string(&mut text).map_err(|e| self.error("reading", e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error("opening", e)),
        };
        text.trim().parse().map(Some).map_err(|_| {
            ExecError::Connector(format!(
                "the sink start marker {} is not a file length: remove it if it was not written by Weir",
                self.path.display()
            ))
        })
    }

    /// Records `len` durably: written to a temporary file, synced, renamed to the marker's
    /// name, and the directory synced, so a crash leaves the whole marker or none.
    pub(super) fn record(&self, len: u64) -> ExecResult<()> {
        let mut temporary = self.path.clone().into_os_string();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        let mut file = no_follow(OpenOptions::new().write(true).create(true).truncate(true))
            .open(&temporary)
            .map_err(|e| self.error("creating", e))?;
        file.write_all(format!("{len}\n").as_bytes()).map_err(|e| self.error("writing", e))?;
        file.sync_all().map_err(|e| self.error("syncing", e))?;
        std::fs::rename(&temporary, &self.path).map_err(|e| self.error("renaming", e))?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| self.error("syncing the directory of", e))?;
        }
        Ok(())
    }

    fn error(&self, doing: &str, e: std::io::Error) -> ExecError {
        ExecError::Connector(format!("{doing} the sink start marker {}: {e}", self.path.display()))
    }
}

/// Removes the start markers of sink `sink_id` beside `file` (every subtask's: `file`,
/// `file.1`, ...). Returns how many were removed.
pub fn remove_markers(file: &Path, sink_id: u64) -> std::io::Result<usize> {
    let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else { return Ok(0) };
    let (prefix, suffix) = (format!(".{}", name.to_string_lossy()), format!("{SUFFIX}{sink_id}"));
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let entry_name = entry.file_name();
        let entry_name = entry_name.to_string_lossy();
        if entry_name.starts_with(&prefix) && entry_name.ends_with(&suffix) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Undoes what sink `sink_id` wrote beside `file` (subtask 0's file; the others are
/// `file.N`) for a `CREATE SINK` that did not complete: every file with a start marker of
/// this sink is cut back to the length the marker recorded (removed if the sink began it,
/// at length 0), then the marker is removed. Waits up to `wait` for the sink's stopping
/// tasks to let go of each file's lock. Returns how many files were cut back.
pub fn cut_back_to_start(file: &Path, sink_id: u64, wait: std::time::Duration) -> std::io::Result<usize> {
    let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else { return Ok(0) };
    let (prefix, suffix) = (format!(".{}", name.to_string_lossy()), format!("{SUFFIX}{sink_id}"));
    let mut cut = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let entry_name = entry.file_name().to_string_lossy().into_owned();
        let Some(data_name) =
            entry_name.strip_suffix(&suffix).filter(|_| entry_name.starts_with(&prefix)).map(|n| &n[1..])
        else {
            continue;
        };
        let marker = StartMarker { path: entry.path() };
        let length = marker.read().map_err(std::io::Error::other)?;
        let data = dir.join(data_name);
        if let Some(length) = length {
            cut_file(&data, length, wait)?;
            cut += 1;
        }
        std::fs::remove_file(entry.path())?;
    }
    Ok(cut)
}

/// Cuts `file` back to `length` once no sink holds its lock (removes it at length 0).
fn cut_file(file: &Path, length: u64, wait: std::time::Duration) -> std::io::Result<()> {
    let handle = match no_follow(OpenOptions::new().write(true)).open(file) {
        Ok(handle) => handle,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let deadline = std::time::Instant::now() + wait;
    loop {
        match handle.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(std::io::Error::other(format!("{} is still locked by its sink", file.display())))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
    match length {
        0 => std::fs::remove_file(file),
        _ => {
            handle.set_len(length)?;
            handle.sync_all()
        }
    }
}

/// Never follows a symlink swapped in for the marker.
fn no_follow(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_records_a_length_and_is_removed_with_its_sink() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("out.csv");
        let marker = StartMarker::beside(&file, 7).expect("marker");
        assert_eq!(marker.read().expect("read"), None);
        marker.record(42).expect("record");
        assert_eq!(marker.read().expect("read"), Some(42));
        assert!(dir.path().join(".out.csv.weir-sink-7").exists());
        StartMarker::beside(&dir.path().join("out.csv.1"), 7).expect("marker").record(0).expect("record");
        StartMarker::beside(&file, 8).expect("marker").record(5).expect("record");

        assert_eq!(remove_markers(&file, 7).expect("remove"), 2);
        assert_eq!(marker.read().expect("read"), None);
        // Another sink's marker stays.
        assert_eq!(StartMarker::beside(&file, 8).expect("marker").read().expect("read"), Some(5));
    }

    #[test]
    fn an_unfinished_sink_is_cut_back_to_where_it_began() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("out.csv");
        // Subtask 0 appended to a file that held 6 bytes; subtask 1 began its file.
        std::fs::write(&file, "before").expect("write");
        StartMarker::beside(&file, 3).expect("marker").record(6).expect("record");
        std::fs::write(&file, "before1,a\n2,b\n").expect("write");
        let second = dir.path().join("out.csv.1");
        StartMarker::beside(&second, 3).expect("marker").record(0).expect("record");
        std::fs::write(&second, "3,c\n").expect("write");
        // Another sink's file and marker are not touched.
        let other = dir.path().join("other.csv");
        std::fs::write(&other, "x,y\n").expect("write");
        StartMarker::beside(&other, 3).expect("marker").record(0).expect("record");

        let cut = cut_back_to_start(&file, 3, std::time::Duration::from_secs(1)).expect("cut back");
        assert_eq!(cut, 2);
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "before");
        assert!(!second.exists(), "the file the sink began is removed");
        assert_eq!(StartMarker::beside(&file, 3).expect("marker").read().expect("read"), None);
        assert_eq!(std::fs::read_to_string(&other).expect("read"), "x,y\n");
    }

    #[test]
    fn cutting_back_waits_for_the_sinks_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("out.csv");
        std::fs::write(&file, "ab").expect("write");
        StartMarker::beside(&file, 4).expect("marker").record(1).expect("record");
        let held = File::open(&file).expect("open");
        held.lock().expect("lock");
        let refused = cut_back_to_start(&file, 4, std::time::Duration::from_millis(100));
        assert!(refused.is_err(), "a file still locked by its sink is not cut");
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            drop(held);
        });
        cut_back_to_start(&file, 4, std::time::Duration::from_secs(5)).expect("cut back once released");
        releaser.join().expect("join");
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "a");
    }

    #[test]
    fn a_marker_that_is_not_a_length_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("out.csv");
        std::fs::write(dir.path().join(".out.csv.weir-sink-1"), "garbage").expect("write");
        let refused = StartMarker::beside(&file, 1).expect("marker").read().expect_err("garbage");
        assert!(refused.to_string().contains("not a file length"), "{refused}");
    }
}
