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
//! Ending them is a race with pid reuse like the one a marker sweep handles, and is
//! handled by the same mechanism (`kill::signal_checked`): each process is signalled
//! through a pidfd opened before its identity (start time, marker or cgroup membership)
//! is checked again.
//!
//! [`Verdict::LostTrack`]: crate::Verdict::LostTrack

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};

use crate::cgroup::ScenarioCgroup;
use crate::kill::{pidfd, signal_checked};
use crate::procs::ProcessInfo;
use crate::signal::Signal;
use crate::sweep::{ancestors_and_self, marked, of_run, run_marker};

/// The processes of the run that are alive now, found without the sentinel: the
/// cgroup's members and every process of this user carrying the run's marker. Never the
/// caller itself or one of its ancestors.
pub(crate) fn find(run_id: &str, cgroup: Option<&ScenarioCgroup>) -> Vec<ProcessInfo> {
    let protected = ancestors_and_self();
    let mut pids: BTreeSet<i32> = BTreeSet::new();
    if let Some(cg) = cgroup {
        pids.extend(cg.members());
    }
    pids.extend(
        marked(|marker| of_run(marker, run_id))
            .into_iter()
            .map(|m| m.process.pid),
    );
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
    let fd = pidfd(who.pid)?;
    let ours = |now: &ProcessInfo| {
        run_marker(now.pid).is_some_and(|m| of_run(&m, run_id))
            || cgroup.is_some_and(|cg| cg.members().contains(&now.pid))
    };
    signal_checked(&fd, who, Signal::Kill, ours).then_some(fd)
}
