//! Which files `file` sources and sinks may touch: only files under the directories the
//! operator listed in `[file] allowed_dirs` (by default `DATA_DIR/files`).
//!
//! Why it looks the way it does:
//!
//! * **Resolved, not compared as text.** A path is checked after resolving symlinks and `..`
//!   (`allowed/link/x`, `allowed/../etc/passwd` and `/etc/passwd` are all the same to the
//!   check). For a path that does not exist yet (a sink's file), the longest existing prefix
//!   is resolved and the rest appended; a `..` after a component that does not exist is
//!   refused, since it can never be resolved.
//! * **Globs are checked twice.** The fixed prefix of a pattern (the components before the
//!   first one with `*`, `?` or `[`) must resolve inside, and so must every file it matches
//!   (a match may be a symlink, or reached through one). A `..` after a wildcard is refused.
//! * **Checked again when a file is opened**, not only at `CREATE`: a symlink swapped in
//!   later is refused then. On Linux the file actually opened is looked up again through
//!   `/proc/self/fd`, which closes the window between the check and the open; a sink's file
//!   is opened with `O_NOFOLLOW` so a symlink cannot make it create a file elsewhere.
//! * **The refusal says nothing about the file.** Every path outside gets the same message,
//!   whether or not it exists, is a directory or is unreadable (SQLSTATE 42501, like
//!   Postgres' `pg_read_server_files` check), so the error cannot be used to probe the
//!   server's file system.
//! * **Relative paths** are relative to the first allowed directory, the way Postgres
//!   resolves a relative `COPY` path against its data directory.

use std::fs::{File, OpenOptions};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::error::{ExecError, ExecResult};

/// The directories file sources and sinks are confined to (resolved once, at start-up).
/// The default allows nothing.
#[derive(Debug, Clone, Default)]
pub struct FileAccess {
    allowed: Arc<[PathBuf]>,
}

impl FileAccess {
    /// Allows the files under `dirs`, each of which must be an existing directory.
    pub fn new<P: AsRef<Path>>(dirs: &[P]) -> Result<Self, String> {
        let mut allowed = Vec::with_capacity(dirs.len());
        for dir in dirs {
            let dir = dir.as_ref();
            let canonical = std::fs::canonicalize(dir)
                .map_err(|e| format!("file.allowed_dirs: cannot use '{}': {e}", dir.display()))?;
            if !canonical.is_dir() {
                return Err(format!("file.allowed_dirs: '{}' is not a directory", dir.display()));
            }
            allowed.push(canonical);
        }
        Ok(Self { allowed: allowed.into() })
    }

    /// The allowed directories, resolved.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.allowed
    }

    /// The regular files `pattern` (a path or a glob) matches, resolved and sorted; every
    /// one of them is inside an allowed directory.
    pub fn source_files(&self, pattern: &str) -> ExecResult<Vec<PathBuf>> {
        let absolute = self.absolute(pattern)?;
        let components: Vec<Component<'_>> = absolute.components().collect();
        let first_glob =
            components.iter().position(|c| has_glob_meta(c.as_os_str().to_string_lossy().as_ref()));
        let Some(first_glob) = first_glob else {
            // A plain path: resolve it as it is.
            let resolved = self.resolve_inside(&absolute, pattern)?;
            if !resolved.is_file() {
                return Err(ExecError::Connector(format!("no file matches path '{pattern}'")));
            }
            return Ok(vec![resolved]);
        };
        if components[first_glob..].iter().any(|c| matches!(c, Component::ParentDir)) {
            return Err(denied(pattern));
        }
        let prefix: PathBuf = components[..first_glob].iter().collect();
        self.resolve_inside(&prefix, pattern)?;
        let text = absolute
            .to_str()
            .ok_or_else(|| ExecError::Connector(format!("option 'path' is not valid UTF-8: '{pattern}'")))?;
        let paths = glob::glob(text).map_err(|e| {
            ExecError::Connector(format!("option 'path' is not a valid glob pattern '{pattern}': {e}"))
        })?;
        let mut files = Vec::new();
        for path in paths.filter_map(Result::ok) {
            let resolved = std::fs::canonicalize(&path).map_err(|_| denied(pattern))?;
            if !self.is_inside(&resolved) {
                return Err(denied(pattern));
            }
            if resolved.is_file() {
                files.push(resolved);
            }
        }
        if files.is_empty() {
            return Err(ExecError::Connector(format!("no file matches path '{pattern}'")));
        }
        files.sort();
        files.dedup();
        Ok(files)
    }

    /// Opens `path` (a file [`source_files`](Self::source_files) listed) for reading, after
    /// checking again that it is inside.
    pub fn open_read(&self, path: &Path) -> ExecResult<File> {
        let shown = path.display().to_string();
        let resolved = self.resolve_inside(path, &shown)?;
        let file = File::open(&resolved)
            .map_err(|e| ExecError::Connector(format!("file source: cannot open '{shown}': {e}")))?;
        self.check_opened(&file, &shown)?;
        Ok(file)
    }

    /// Where a sink writing to `path` writes: resolved and inside (the file need not exist).
    pub fn sink_path(&self, path: &str) -> ExecResult<PathBuf> {
        let absolute = self.absolute(path)?;
        self.resolve_inside(&absolute, path)
    }

    /// Opens (creating it if needed) the sink file `path` for appending.
    pub fn open_append(&self, path: &str) -> ExecResult<File> {
        let resolved = self.sink_path(path)?;
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.custom_flags(libc::O_NOFOLLOW);
        }
        let file = options.open(&resolved).map_err(|e| match e.raw_os_error() {
            // O_NOFOLLOW met a symlink swapped in since the path was resolved.
            #[cfg(unix)]
            Some(libc::ELOOP) => denied(path),
            _ => ExecError::Connector(format!("cannot open sink file {path}: {e}")),
        })?;
        self.check_opened(&file, path)?;
        Ok(file)
    }

    /// A relative path is relative to the first allowed directory.
    fn absolute(&self, path: &str) -> ExecResult<PathBuf> {
        let path = Path::new(path);
        if path.is_absolute() {
            return Ok(path.to_path_buf());
        }
        match self.allowed.first() {
            Some(base) => Ok(base.join(path)),
            None => Err(denied(&path.display().to_string())),
        }
    }

    /// `path` with symlinks and `..` resolved, if that is inside an allowed directory.
    fn resolve_inside(&self, path: &Path, shown: &str) -> ExecResult<PathBuf> {
        match resolve(path) {
            Some(resolved) if self.is_inside(&resolved) => Ok(resolved),
            _ => Err(denied(shown)),
        }
    }

    fn is_inside(&self, resolved: &Path) -> bool {
        self.allowed.iter().any(|dir| resolved.starts_with(dir))
    }

    /// Looks up the file actually opened (on Linux), in case a path component was swapped
    /// for a symlink between the check and the open.
    fn check_opened(&self, file: &File, shown: &str) -> ExecResult<()> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            if let Ok(real) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
                if !self.is_inside(&real) {
                    return Err(denied(shown));
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (file, shown);
        Ok(())
    }
}

/// The same refusal for every path outside, whether or not it exists.
fn denied(path: &str) -> ExecError {
    ExecError::PermissionDenied(format!(
        "permission denied for file path '{path}': file sources and sinks may only use files \
         under the directories listed in the server's [file] allowed_dirs setting"
    ))
}

fn has_glob_meta(component: &str) -> bool {
    component.contains(['*', '?', '['])
}

/// Resolves the longest existing prefix of an absolute `path` and appends the rest; `None`
/// when the rest has a `..` (it follows a component that does not exist).
fn resolve(path: &Path) -> Option<PathBuf> {
    let mut existing = path.to_path_buf();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(resolved) = std::fs::canonicalize(&existing) {
            let mut out = resolved;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return Some(out);
        }
        let name = existing.file_name()?.to_os_string();
        if name == ".." {
            return None;
        }
        rest.push(name);
        if !existing.pop() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, FileAccess, PathBuf) {
        let root = tempfile::tempdir().expect("tempdir");
        let allowed = root.path().join("allowed");
        let outside = root.path().join("outside");
        std::fs::create_dir_all(&allowed).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::fs::write(allowed.join("a.csv"), "1\n").expect("write");
        std::fs::write(allowed.join("b.csv"), "2\n").expect("write");
        std::fs::write(outside.join("secret.csv"), "s\n").expect("write");
        let access = FileAccess::new(&[&allowed]).expect("access");
        (root, access, allowed)
    }

    fn is_denied(r: ExecResult<impl std::fmt::Debug>) -> bool {
        matches!(r, Err(ExecError::PermissionDenied(_)))
    }

    #[test]
    fn files_inside_are_allowed_by_absolute_and_relative_path_and_glob() {
        let (_root, access, allowed) = setup();
        let a = std::fs::canonicalize(allowed.join("a.csv")).expect("canonical");
        assert_eq!(
            access.source_files(&allowed.join("a.csv").display().to_string()).expect("a"),
            vec![a.clone()]
        );
        assert_eq!(access.source_files("a.csv").expect("relative"), vec![a.clone()]);
        assert_eq!(access.source_files(&format!("{}/*.csv", allowed.display())).expect("glob").len(), 2);
        assert!(access.open_read(&a).is_ok());
        assert!(access.open_append("out.csv").is_ok());
    }

    #[test]
    fn paths_outside_are_refused_the_same_way_whether_or_not_they_exist() {
        let (root, access, allowed) = setup();
        let outside = root.path().join("outside");
        let refused = [
            outside.join("secret.csv").display().to_string(),
            outside.join("missing.csv").display().to_string(),
            "/etc/passwd".into(),
            "/no/such/dir/file".into(),
            format!("{}/../outside/secret.csv", allowed.display()),
            "../outside/secret.csv".into(),
            format!("{}/*.csv", outside.display()),
            format!("{}/../outside/*.csv", allowed.display()),
            format!("{}/*/../../outside/secret.csv", allowed.display()),
            format!("{}/missing/../../outside/secret.csv", allowed.display()),
        ];
        let mut messages = Vec::new();
        for path in &refused {
            match access.source_files(path) {
                Err(ExecError::PermissionDenied(m)) => messages.push(m.replace(path.as_str(), "P")),
                other => panic!("{path}: expected permission denied, got {other:?}"),
            }
            assert!(is_denied(access.sink_path(path)), "sink {path}");
        }
        messages.dedup();
        assert_eq!(messages.len(), 1, "{messages:?}");
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_resolved_at_create_and_again_at_open() {
        let (root, access, allowed) = setup();
        let outside = root.path().join("outside");
        std::os::unix::fs::symlink(outside.join("secret.csv"), allowed.join("link.csv")).expect("symlink");
        std::os::unix::fs::symlink(&outside, allowed.join("dir")).expect("symlink");
        assert!(is_denied(access.source_files(&allowed.join("link.csv").display().to_string())));
        assert!(is_denied(access.source_files(&format!("{}/*.csv", allowed.display()))));
        assert!(is_denied(access.source_files(&format!("{}/dir/*.csv", allowed.display()))));
        assert!(is_denied(access.sink_path(&allowed.join("link.csv").display().to_string())));
        assert!(is_denied(access.open_append(&allowed.join("dir/new.csv").display().to_string())));
        assert!(!outside.join("new.csv").exists());

        // Checked at CREATE, then swapped for a symlink: refused when opened.
        let b = allowed.join("b.csv");
        let listed = access.source_files(&b.display().to_string()).expect("inside");
        std::fs::remove_file(&b).expect("rm");
        std::os::unix::fs::symlink(outside.join("secret.csv"), &b).expect("symlink");
        assert!(is_denied(access.open_read(&listed[0])));
        assert!(is_denied(access.open_append(&b.display().to_string())));
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        let access = FileAccess::default();
        assert!(is_denied(access.source_files("a.csv")));
        assert!(is_denied(access.source_files("/tmp/a.csv")));
        assert!(is_denied(access.sink_path("/tmp/a.csv")));
    }
}
