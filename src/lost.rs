//! When the sentinel is gone before its tree was empty: "lost track".
//!
//! The sentinel is the subreaper every orphan of the tree lands on, so the tree walk
//! from it is the main oracle. Anything in the tree can kill it (`kill -9 $PPID`, a
//! broad `pkill`, the OOM killer); its orphans then go to init, and a walk from a dead
//! sentinel finds nothing. That must never read as a clean tree. When the sentinel ends
//! without having reported "empty", the verdict is [`Verdict::LostTrack`], and the
//! survivors are looked up by the oracles that do not depend on it: the scenario's
//! cgroup when there is one, and the run's `ORPHAN_CHECK_RUN` marker in every
//! process's environment otherwise (and as well).
//!
//! Ending them is a race with pid reuse like the one `orphan-check sweep` handles, and
//! is handled the same way: each process is signalled through a pidfd opened before
//! its identity (start time, marker or cgroup membership) is checked again.
//!
//! [`Verdict::LostTrack`]: crate::Verdict::LostTrack

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags};

use crate::cgroup::ScenarioCgroup;
use crate::procs::ProcessInfo;

/// The processes of the run that are alive now, found without the sentinel: the
/// cgroup's members and every process of this user carrying the run's marker. Never the
/// caller itself or one of its ancestors.
pub(crate) fn find(run_id: &str, cgroup: Option<&ScenarioCgroup>) -> Vec<ProcessInfo> {
    let protected = ancestors_and_self();
    let mut pids: BTreeSet<i32> = BTreeSet::new();
    if let Some(cg) = cgroup {
        pids.extend(cg.members());
    }
    pids.extend(marked(run_id));
    pids.into_iter()
        .filter(|p| !protected.contains(p))
        .filter_map(ProcessInfo::read)
        .filter(|p| !p.is_zombie())
        .collect()
}

/// SIGKILLs what [`find`] finds, each process verified just before its signal, until
/// nothing of the run is left or `patience` has passed (a survivor may fork while it is
/// being killed). Returns whether nothing is left.
pub(crate) fn end(run_id: &str, cgroup: Option<&ScenarioCgroup>, patience: Duration) -> bool {
    let until = Instant::now() + patience;
    loop {
        if let Some(cg) = cgroup {
            let _ = cg.kill();
        }
        let found = find(run_id, cgroup);
        if found.is_empty() {
            return true;
        }
        let mut fds = Vec::new();
        for p in &found {
            if let Some(fd) = kill_verified(p, run_id, cgroup) {
                fds.push(fd);
            }
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        // Wait for one of them to be gone (a pidfd is readable once its process exits),
        // then look again. The wait is bounded: a process in uninterruptible sleep dies
        // when it wakes.
        let mut polls: Vec<PollFd<'_>> = fds
            .iter()
            .map(|fd| PollFd::new(fd, PollFlags::IN))
            .collect();
        if polls.is_empty() {
            // Nothing could be signalled: each one exited, or its pid is a stranger's now.
            return find(run_id, cgroup).is_empty();
        }
        let step = left.min(Duration::from_millis(100));
        let ts = Timespec {
            tv_sec: step.as_secs() as i64,
            tv_nsec: step.subsec_nanos() as i64,
        };
        let _ = rustix::io::retry_on_intr(|| poll(&mut polls, Some(&ts)));
    }
}

/// SIGKILLs `who` only if it is still that very process and still of this run (it
/// carries the marker, or it is in the run's cgroup). Returns its pidfd when signalled.
fn kill_verified(
    who: &ProcessInfo,
    run_id: &str,
    cgroup: Option<&ScenarioCgroup>,
) -> Option<std::os::fd::OwnedFd> {
    let pidfd = pidfd_open(Pid::from_raw(who.pid)?, PidfdFlags::empty()).ok()?;
    let now = ProcessInfo::read(who.pid)?;
    let ours = of_run(who.pid, run_id) || cgroup.is_some_and(|cg| cg.members().contains(&who.pid));
    if !now.same_process(who) || !ours {
        return None;
    }
    pidfd_send_signal(&pidfd, rustix::process::Signal::KILL).ok()?;
    Some(pidfd)
}

/// Pids of this user's processes whose environment has `ORPHAN_CHECK_RUN=<run_id>`, or
/// `<run_id>.<more>`: the agents of scenarios run inside this one.
fn marked(run_id: &str) -> Vec<i32> {
    let uid = rustix::process::getuid().as_raw();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| of_run(pid, run_id))
        .filter(|&pid| ProcessInfo::read(pid).is_some_and(|p| p.uid == uid))
        .collect()
}

/// Whether the process's environment carries this run's marker (or a nested run's).
fn of_run(pid: i32, run_id: &str) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let exact = format!("{}={run_id}", crate::RUN_ENV);
    let nested = format!("{exact}.");
    environ
        .split(|b| *b == 0)
        .any(|kv| kv == exact.as_bytes() || kv.starts_with(nested.as_bytes()))
}

/// This process and its ancestors: never signalled, whatever their environment says.
fn ancestors_and_self() -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    let mut pid = std::process::id() as i32;
    while pid > 0 && out.insert(pid) {
        pid = ProcessInfo::read(pid).map_or(0, |p| p.ppid);
    }
    out
}
