//! Files written after the kill.
//!
//! `tsc --watch` writing into a repository after its agent died is a leak even when no
//! port is involved. At the kill the harness records every file under each watched
//! directory (size, modification time, inode); at the verdict it records them again. A
//! file that appeared, changed or was renamed in between was written after the kill.
//! Where a surviving process of the tree has the file (or its directory) open, or runs
//! with its working directory there, it is named as the likely writer.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use procfs::process::FDTarget;

use crate::procs;

/// What one file looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    inode: u64,
}

/// The files under some directories at one moment.
#[derive(Debug, Clone, Default)]
pub(crate) struct DirWatch {
    roots: Vec<PathBuf>,
    files: BTreeMap<PathBuf, Stamp>,
}

/// Upper bound on files recorded per directory tree, so a huge tree cannot stall a
/// verdict.
const MAX_FILES: usize = 100_000;

impl DirWatch {
    /// Records the files under `roots` now.
    pub(crate) fn start(roots: &[PathBuf]) -> DirWatch {
        let mut files = BTreeMap::new();
        for root in roots {
            walk(root, &mut files);
        }
        DirWatch {
            roots: roots.to_vec(),
            files,
        }
    }

    /// Records `path` again as it is now: the harness's own write to it (the touch after
    /// the kill) is not a write by the tree.
    pub(crate) fn restamp(&mut self, path: &Path) {
        let Ok(path) = fs::canonicalize(path) else {
            return;
        };
        let Some(stamp) = stamp(&path) else {
            return;
        };
        for root in &self.roots {
            let Ok(canonical_root) = fs::canonicalize(root) else {
                continue;
            };
            if let Ok(rel) = path.strip_prefix(&canonical_root) {
                // The key as the walk spells it: the root as given, then the names.
                self.files.insert(root.join(rel), stamp);
            }
        }
    }

    /// The directories watched.
    pub(crate) fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Files under `root` created, changed or removed since the start.
    pub(crate) fn changes_under(&self, root: &Path) -> Vec<FileChange> {
        let mut now = BTreeMap::new();
        walk(root, &mut now);
        let mut out = Vec::new();
        for (path, stamp) in &now {
            match self.files.get(path) {
                None => out.push(FileChange {
                    path: path.clone(),
                    change: "created",
                    writers: Vec::new(),
                }),
                Some(old) if old != stamp => out.push(FileChange {
                    path: path.clone(),
                    change: if old.inode != stamp.inode {
                        "replaced"
                    } else {
                        "modified"
                    },
                    writers: Vec::new(),
                }),
                Some(_) => {}
            }
        }
        for path in self.files.keys().filter(|p| p.starts_with(root)) {
            if !now.contains_key(path) {
                out.push(FileChange {
                    path: path.clone(),
                    change: "removed",
                    writers: Vec::new(),
                });
            }
        }
        out
    }
}

fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Stamp>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if out.len() >= MAX_FILES {
            return;
        }
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk(&path, out);
        } else {
            out.insert(path, stamp_of(&meta));
        }
    }
}

fn stamp_of(meta: &fs::Metadata) -> Stamp {
    Stamp {
        size: meta.size(),
        mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
        inode: meta.ino(),
    }
}

fn stamp(path: &Path) -> Option<Stamp> {
    fs::symlink_metadata(path).ok().map(|m| stamp_of(&m))
}

/// A file written after the kill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FileChange {
    /// The file.
    pub path: PathBuf,
    /// `created`, `modified`, `replaced` (renamed over) or `removed`.
    pub change: &'static str,
    /// Surviving processes that have it (or its directory) open or as working directory,
    /// or else whose command line names the watched directory, or else the only watcher
    /// left (the one survivor with an inotify descriptor, or the one survivor).
    pub writers: Vec<i32>,
}

/// Pids among `candidates` that have `path` (or a directory above it, up to `root`)
/// open, or as their working directory; failing that, those whose command line names
/// `root` (a watcher started with `--dir <root>` opens its files only for an instant);
/// failing that, the only watcher left: the one candidate with an inotify descriptor,
/// or the one candidate at all.
pub(crate) fn likely_writers(path: &Path, root: &Path, candidates: &[i32]) -> Vec<i32> {
    let by_files = holding(path, root, candidates);
    if !by_files.is_empty() {
        return by_files;
    }
    let needle = root.to_string_lossy().into_owned();
    let by_args: Vec<i32> = candidates
        .iter()
        .copied()
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    c.split(|b| *b == 0)
                        .any(|arg| String::from_utf8_lossy(arg).contains(&needle))
                })
                .unwrap_or(false)
        })
        .collect();
    if !by_args.is_empty() {
        return by_args;
    }
    let watching: Vec<i32> = candidates
        .iter()
        .copied()
        .filter(|pid| has_inotify(*pid))
        .collect();
    match (watching.as_slice(), candidates) {
        ([one], _) | ([], [one]) => vec![*one],
        _ => Vec::new(),
    }
}

/// Whether the process holds an inotify descriptor (`anon_inode:inotify`).
fn has_inotify(pid: i32) -> bool {
    procs::fd_links(pid).any(|(_, link)| {
        matches!(procs::fd_target(&link), Some(FDTarget::AnonInode(kind)) if kind == "inotify")
    })
}

fn holding(path: &Path, root: &Path, candidates: &[i32]) -> Vec<i32> {
    candidates
        .iter()
        .copied()
        .filter(|pid| {
            let touches = |target: &Path| {
                target == path || (path.starts_with(target) && target.starts_with(root))
            };
            let cwd = fs::read_link(format!("/proc/{pid}/cwd")).ok();
            if cwd.as_deref().is_some_and(touches) {
                return true;
            }
            // The raw link, not procfs's reading of it: a path need not be UTF-8.
            procs::fd_links(*pid).any(|(_, link)| touches(&link))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_modified_and_removed_files_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        fs::write(root.join("keep"), b"1").unwrap();
        fs::write(root.join("change"), b"1").unwrap();
        fs::write(root.join("gone"), b"1").unwrap();
        let watch = DirWatch::start(std::slice::from_ref(&root));
        fs::write(root.join("change"), b"22").unwrap();
        fs::remove_file(root.join("gone")).unwrap();
        fs::create_dir(root.join("sub")).unwrap();
        fs::write(root.join("sub/new"), b"1").unwrap();
        let mut changes: Vec<(String, &str)> = watch
            .changes_under(&root)
            .into_iter()
            .map(|c| {
                (
                    c.path.strip_prefix(&root).unwrap().display().to_string(),
                    c.change,
                )
            })
            .collect();
        changes.sort();
        assert_eq!(
            changes,
            [
                ("change".into(), "modified"),
                ("gone".into(), "removed"),
                ("sub/new".into(), "created")
            ]
        );
    }
}
