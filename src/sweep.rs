//! Finding what runs left behind, and ending it: the `ORPHAN_CHECK_RUN` marker sweep.
//!
//! Every agent (and everything it starts, unless it scrubs its environment) carries
//! `ORPHAN_CHECK_RUN=<run id>`. A sweep lists this user's processes (same real uid)
//! with that marker, for run ids starting with a prefix, and the leftover
//! `orphan-check-*` cgroups that hold no process any more.
//!
//! Ending one is a race with pid reuse: between reading `/proc/<pid>` and sending the
//! signal, the process may exit and its pid go to a stranger. So each kill goes through
//! one mechanism, shared with the rest of the crate: a pidfd is opened first, the process
//! is read again and must have the same start time and still carry the marker, and only
//! then is the signal sent through the pidfd. The same mechanism ends the survivors of
//! a run whose sentinel was lost (see `lost.rs`). A sweep never signals the caller, any
//! of its ancestors, or a process without the marker.

use std::collections::BTreeSet;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};

use crate::kill::signal_checked;
use crate::procs::ProcessInfo;
use crate::signal::Signal;

/// A cgroup this young may belong to a scenario that is starting right now.
const CGROUP_MIN_AGE: Duration = Duration::from_secs(10);

/// What runs left behind, as [`find`] saw it.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Leftovers {
    /// Processes carrying the marker, by pid.
    pub processes: Vec<MarkedProcess>,
    /// Empty `orphan-check-*` cgroups older than a few seconds, sorted.
    pub cgroups: Vec<PathBuf>,
}

impl Leftovers {
    /// Whether nothing was left behind.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty() && self.cgroups.is_empty()
    }
}

/// One process carrying the marker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MarkedProcess {
    /// Its `ORPHAN_CHECK_RUN` value.
    pub run_id: String,
    /// The process as it was read when found.
    pub process: ProcessInfo,
}

/// How ending a [`MarkedProcess`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ended {
    /// SIGKILLed, and it exited.
    Killed,
    /// It had exited before the signal.
    Gone,
    /// Its pid names another process now (or it lost the marker): nothing was sent.
    Changed,
    /// SIGKILLed, and still not gone after the patience.
    StillAlive,
    /// Still that process, and the kernel refused the signal.
    Refused,
}

impl Ended {
    /// Whether the process is no longer there (killed, or gone on its own). A changed
    /// pid counts as gone: the process that was found does not exist any more.
    pub fn is_gone(self) -> bool {
        !matches!(self, Ended::StillAlive | Ended::Refused)
    }
}

/// This user's processes carrying the marker with a run id starting with `prefix` (all
/// of them for `""`), never the caller or its ancestors, and the empty leftover
/// cgroups of those runs.
pub fn find(prefix: &str) -> Leftovers {
    let protected = ancestors_and_self();
    let processes = marked(|run_id| run_id.starts_with(prefix))
        .into_iter()
        .filter(|m| !protected.contains(&m.process.pid))
        .collect();
    Leftovers {
        processes,
        cgroups: empty_cgroups(prefix),
    }
}

impl MarkedProcess {
    /// SIGKILLs the process only if it is still that very process and still carries
    /// the same marker, and waits up to `patience` for it to exit.
    pub fn end(&self, patience: Duration) -> Ended {
        let Some(pidfd) = crate::kill::pidfd(self.process.pid) else {
            return Ended::Gone;
        };
        let sent = signal_checked(&pidfd, &self.process, Signal::Kill, |now| {
            run_marker(now.pid).as_deref() == Some(self.run_id.as_str())
        });
        if sent {
            if wait_exit(&pidfd, patience) {
                Ended::Killed
            } else {
                Ended::StillAlive
            }
        } else {
            match ProcessInfo::read(self.process.pid) {
                None => Ended::Gone,
                Some(now) if now.same_process(&self.process) && now.is_zombie() => Ended::Gone,
                Some(now)
                    if now.same_process(&self.process)
                        && run_marker(now.pid).as_deref() == Some(self.run_id.as_str()) =>
                {
                    Ended::Refused
                }
                Some(_) => Ended::Changed,
            }
        }
    }
}

/// Removes an empty leftover cgroup ([`Leftovers::cgroups`]). The kernel refuses to
/// remove a cgroup that holds a process.
pub fn remove_cgroup(dir: &Path) -> std::io::Result<()> {
    std::fs::remove_dir(dir)
}

/// This user's processes whose marker satisfies `wanted`, sorted by pid.
pub(crate) fn marked(wanted: impl Fn(&str) -> bool) -> Vec<MarkedProcess> {
    let uid = rustix::process::getuid().as_raw();
    let mut out: Vec<MarkedProcess> = crate::procs::all_pids()
        .into_iter()
        .filter_map(|pid| {
            let run_id = run_marker(pid).filter(|r| wanted(r))?;
            let process = ProcessInfo::read(pid).filter(|p| p.uid == uid)?;
            Some(MarkedProcess { run_id, process })
        })
        .collect();
    out.sort_by_key(|m| m.process.pid);
    out
}

/// Whether `marker` belongs to run `run_id`: the run itself, or a scenario run inside
/// it (`<run_id>.<more>`).
pub(crate) fn of_run(marker: &str, run_id: &str) -> bool {
    marker
        .strip_prefix(run_id)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// The process's `ORPHAN_CHECK_RUN` value, when it has one and it can be read.
pub(crate) fn run_marker(pid: i32) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let key = format!("{}=", crate::RUN_ENV);
    environ
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(key.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// This process and its ancestors: never signalled, whatever their environment says
/// (a CI job that exports `ORPHAN_CHECK_RUN` for its own runs).
pub(crate) fn ancestors_and_self() -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    let mut pid = std::process::id() as i32;
    while pid > 0 && out.insert(pid) {
        pid = ProcessInfo::read(pid).map_or(0, |p| p.ppid);
    }
    out
}

/// Waits until the process behind `pidfd` has exited (the pidfd becomes readable).
pub(crate) fn wait_exit(pidfd: &OwnedFd, patience: Duration) -> bool {
    let until = Instant::now() + patience;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        let timeout = Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        match poll(&mut fds, Some(&timeout)) {
            Ok(n) if n > 0 => return true,
            Ok(_) => return false,
            Err(rustix::io::Errno::INTR) if !left.is_zero() => continue,
            Err(_) => return false,
        }
    }
}

/// Empty `orphan-check-*` cgroups of runs starting with `prefix`, older than
/// [`CGROUP_MIN_AGE`].
fn empty_cgroups(prefix: &str) -> Vec<PathBuf> {
    let Some(root) = crate::cgroup::writable_root() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    let wanted = crate::cgroup::dir_name(prefix);
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&wanted))
        })
        .map(|e| e.path())
        .filter(|dir| {
            let empty = std::fs::read_to_string(dir.join("cgroup.procs"))
                .is_ok_and(|p| p.trim().is_empty());
            let old = std::fs::metadata(dir)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= CGROUP_MIN_AGE);
            empty && old
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_and_its_ancestors_are_protected() {
        let protected = ancestors_and_self();
        assert!(protected.contains(&(std::process::id() as i32)));
        assert!(protected.len() >= 2);
    }

    #[test]
    fn a_run_owns_its_nested_runs_and_nothing_else() {
        assert!(of_run("ci-1", "ci-1"));
        assert!(of_run("ci-1.oc-2", "ci-1"));
        assert!(!of_run("ci-10", "ci-1"));
        assert!(!of_run("ci", "ci-1"));
    }
}
