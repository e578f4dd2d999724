//! Provoking a watcher: change a source file after the kill.
//!
//! A surviving `tsc --watch` or bundler does no visible harm until a source changes; then
//! it rebuilds into the repository although its agent is gone. With
//! [`Scenario::touch_after_kill`](crate::Scenario::touch_after_kill) the harness changes
//! the file once the kill plan has run (the moment is in the report), so that a file
//! written after the kill proves a watcher is still alive, and the report names its
//! likely writer.

use serde::Serialize;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// How the touched file is changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TouchMode {
    /// Write the same bytes back (its modification time changes, its content does not):
    /// what an editor's save of an unchanged buffer does. Watchers that compare times
    /// (tsc, webpack, nodemon) rebuild.
    #[default]
    Rewrite,
    /// Append one line (`// touched by orphan-check`): a real edit, which also wakes
    /// watchers that compare contents.
    AppendLine,
}

impl TouchMode {
    /// `rewrite` or `append`, the CLI's words.
    pub fn name(self) -> &'static str {
        match self {
            TouchMode::Rewrite => "rewrite",
            TouchMode::AppendLine => "append",
        }
    }
}

/// The line [`TouchMode::AppendLine`] appends.
pub const TOUCH_LINE: &str = "// touched by orphan-check\n";

/// The touch as it happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TouchRecord {
    /// The file changed.
    pub path: PathBuf,
    /// `rewrite` or `append`.
    pub mode: &'static str,
    /// When, in milliseconds since the start.
    pub at_ms: f64,
    /// When, in milliseconds after the kill plan finished.
    pub after_kill_ms: f64,
    /// Why it could not be changed, when it could not.
    pub error: Option<String>,
}

/// Checks before the start that `path` is a regular file the harness can rewrite.
pub(crate) fn validate(path: &Path) -> Result<(), Error> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::InvalidCommand(format!(
            "the file to touch after the kill, {}, cannot be read: {e}",
            path.display()
        ))
    })?;
    if !meta.is_file() {
        return Err(Error::InvalidCommand(format!(
            "the file to touch after the kill, {}, is not a regular file",
            path.display()
        )));
    }
    OpenOptions::new().append(true).open(path).map_err(|e| {
        Error::InvalidCommand(format!(
            "the file to touch after the kill, {}, is not writable: {e}",
            path.display()
        ))
    })?;
    Ok(())
}

/// Changes `path` as `mode` says; the error text when it could not.
pub(crate) fn touch(path: &Path, mode: TouchMode) -> Result<(), String> {
    let result = match mode {
        // Truncate-and-write in place (not a rename): the inode stays, as with an
        // editor's save, so a watcher holding the file open sees the change.
        // The time is then set from the fine clock: file times come from a coarse clock
        // (a few ms), and a rewrite within the same tick as the last write would
        // otherwise look unchanged to a watcher that compares times.
        TouchMode::Rewrite => std::fs::read(path).and_then(|bytes| {
            std::fs::write(path, bytes)?;
            std::fs::File::options()
                .write(true)
                .open(path)?
                .set_modified(std::time::SystemTime::now())
        }),
        TouchMode::AppendLine => OpenOptions::new()
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(TOUCH_LINE.as_bytes())),
    };
    result.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn rewrite_keeps_the_bytes_and_the_inode_and_moves_the_time() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.ts");
        std::fs::write(&file, b"let x = 1;\n").unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let before = std::fs::metadata(&file).unwrap();
        touch(&file, TouchMode::Rewrite).unwrap();
        let after = std::fs::metadata(&file).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"let x = 1;\n");
        assert_eq!(before.ino(), after.ino());
        assert!(after.modified().unwrap() > before.modified().unwrap());
    }

    #[test]
    fn append_adds_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.ts");
        std::fs::write(&file, b"let x = 1;\n").unwrap();
        touch(&file, TouchMode::AppendLine).unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("let x = 1;\n{TOUCH_LINE}")
        );
    }

    #[test]
    fn a_missing_or_odd_file_is_refused_before_the_start() {
        let dir = tempfile::tempdir().unwrap();
        assert!(validate(&dir.path().join("nope")).is_err());
        assert!(validate(dir.path()).is_err());
        let file = dir.path().join("ok");
        std::fs::write(&file, b"").unwrap();
        assert!(validate(&file).is_ok());
    }
}
