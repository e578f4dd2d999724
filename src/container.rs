//! Container mode's questions: did PID 1 honour SIGTERM, and how did each process inside
//! end?
//!
//! In a PID namespace orphans are reparented to its PID 1, not to the sentinel, and when
//! PID 1 dies the kernel SIGKILLs everything else in the namespace: nothing can survive
//! the container, so "who survived" is not the question. The questions are whether the
//! stop was graceful: PID 1 exited on SIGTERM, or the stop took the whole grace and only
//! its SIGKILL ended it (cause 6: the kernel drops every signal PID 1 has no handler
//! for); and which processes the namespace's SIGKILL took instead of exiting on their
//! own (no graceful shutdown: unflushed files, half-written output).
//!
//! The processes inside are not the sentinel's children, so their exit statuses are
//! read through pidfds opened before the plan ran (`PIDFD_INFO_EXIT`, Linux 6.15); on an
//! older kernel how they ended is reported as unknown. A process counts as taken by the
//! namespace when it died of SIGKILL: the plan signals PID 1 only, so inside the
//! namespace SIGKILL comes from its teardown (or from a process inside that sends it).

use serde::Serialize;
use std::os::fd::OwnedFd;

use rustix::process::{pidfd_open, Pid, PidfdFlags};

use crate::diagnosis::Escape;
use crate::exit_status::describe_status;
use crate::kill::{KillPlan, PlanRecord};
use crate::procs::ProcessInfo;

/// Pidfds of the processes inside the namespace, opened before the plan.
#[derive(Default)]
pub(crate) struct NamespaceWatch {
    watched: Vec<(ProcessInfo, OwnedFd)>,
}

impl NamespaceWatch {
    /// Opens a pidfd for every process of `tree` but PID 1 (`pid1`, the sentinel's own
    /// child, whose end the sentinel reports).
    pub(crate) fn open(tree: &[ProcessInfo], pid1: i32) -> NamespaceWatch {
        let watched = tree
            .iter()
            .filter(|p| p.pid != pid1 && !p.is_zombie())
            .filter_map(|p| {
                let fd = pidfd_open(Pid::from_raw(p.pid)?, PidfdFlags::empty()).ok()?;
                // Opened first, checked after: a reused pid is seen as a stranger.
                ProcessInfo::read(p.pid)
                    .filter(|now| now.same_process(p))
                    .map(|_| (p.clone(), fd))
            })
            .collect();
        NamespaceWatch { watched }
    }

    /// How each watched process ended, so far.
    fn ends(&self) -> Vec<NamespacedProcess> {
        self.watched
            .iter()
            .map(|(p, fd)| {
                let status = crate::sentinel::pidfd_exit_status(fd);
                let alive =
                    status.is_none() && ProcessInfo::read(p.pid).is_some_and(|n| n.same_process(p));
                NamespacedProcess {
                    pid: p.pid,
                    pid_in_namespace: p.pid_in_namespace,
                    command: p.command(),
                    end: match status {
                        Some(s) => Some(describe_status(s)),
                        None if alive => Some("alive".into()),
                        None => None,
                    },
                    killed_by_namespace: status.is_some_and(|s| {
                        libc::WIFSIGNALED(s) && libc::WTERMSIG(s) == libc::SIGKILL
                    }),
                }
            })
            .collect()
    }
}

/// One process inside the container, as the host and the namespace see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NamespacedProcess {
    /// Its pid on the host.
    pub pid: i32,
    /// Its pid inside the namespace (`NSpid` in `/proc/<pid>/status`).
    pub pid_in_namespace: Option<i32>,
    /// Its command line.
    pub command: String,
    /// How it ended ("exit status 0", "killed by SIGKILL"), `alive`, or `null` when the
    /// kernel cannot tell (before Linux 6.15).
    pub end: Option<String>,
    /// True when the namespace's SIGKILL took it: it did not exit on its own.
    pub killed_by_namespace: bool,
}

/// What container mode adds to the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ContainerReport {
    /// PID 1's pid on the host.
    pub pid1: i32,
    /// PID 1's command line.
    pub pid1_command: String,
    /// Whether PID 1 had a SIGTERM handler at the kill (without one the kernel drops
    /// SIGTERM sent to a namespace's init).
    pub pid1_catches_sigterm: bool,
    /// How PID 1 ended, when it did.
    pub pid1_end: Option<String>,
    /// How the stop went, in one sentence.
    pub stop: String,
    /// True when PID 1 outlived SIGTERM for the whole grace and only SIGKILL ended it.
    pub stop_took_whole_grace: bool,
    /// [`Escape::ContainerInit`] (cause 6) when the stop took the whole grace.
    pub escape: Option<Escape>,
    /// Every other process of the container seen before the kill.
    pub processes: Vec<NamespacedProcess>,
    /// True when the plan was a graceful stop (SIGTERM first) and it was not: PID 1
    /// needed the grace's SIGKILL, or a process inside died by the namespace's SIGKILL.
    /// (For `docker kill` the namespace's SIGKILL is the point, not a failure.)
    pub stop_failed: bool,
}

impl ContainerReport {
    /// The count of processes the namespace's SIGKILL took.
    pub fn killed_by_namespace(&self) -> usize {
        self.processes
            .iter()
            .filter(|p| p.killed_by_namespace)
            .count()
    }
}

/// Builds the container part of the report.
pub(crate) fn report(
    watch: &NamespaceWatch,
    pid1: &ProcessInfo,
    pid1_end: Option<i32>,
    plan: &KillPlan,
    record: &PlanRecord,
) -> ContainerReport {
    let catches = pid1.catches(libc::SIGTERM);
    let took_grace = plan.grace().is_some() && record.agent_needed_sigkill;
    let stop = if took_grace {
        if catches {
            "PID 1 caught SIGTERM but did not exit: stopped only by the grace period's SIGKILL (the stop took the whole grace)".to_string()
        } else {
            "PID 1 has no SIGTERM handler, so the kernel dropped the signal: stopped only by the grace period's SIGKILL (the stop took the whole grace, cause 6)".to_string()
        }
    } else {
        match (plan.first_signal().as_raw(), pid1_end) {
            (libc::SIGKILL, _) => "PID 1 was SIGKILLed (docker kill): the namespace went with it".into(),
            (_, Some(status)) => format!("PID 1 exited on the plan's signal ({})", describe_status(status)),
            (_, None) if !catches => "PID 1 has no handler for the plan's signal, so the kernel dropped it: PID 1 is still running (cause 6)".into(),
            (_, None) => "PID 1 caught the plan's signal and is still running".into(),
        }
    };
    let pid1_alive = pid1_end.is_none();
    let processes = watch.ends();
    let namespace_killed = processes.iter().any(|p| p.killed_by_namespace);
    ContainerReport {
        pid1: pid1.pid,
        pid1_command: pid1.command(),
        pid1_catches_sigterm: catches,
        pid1_end: pid1_end.map(describe_status),
        stop,
        stop_took_whole_grace: took_grace,
        escape: (took_grace || (pid1_alive && !catches)).then_some(Escape::ContainerInit),
        processes,
        stop_failed: plan.first_signal().as_raw() != libc::SIGKILL
            && (took_grace || namespace_killed),
    }
}
