//! Everything the sentinel uses after its fork, prepared before it: nothing may be
//! allocated or computed from `std` state afterwards.
//!
//! A forked sentinel finds the plan in its copy of the caller's memory; an exec'd one
//! builds it in the exec hook from its launch data. Either way the sentinel keeps its
//! pipes in the fixed descriptor slots below, so the two starts meet in the same
//! [`sentinel_main`](super::child::sentinel_main).

use std::ffi::CStr;
use std::os::fd::RawFd;

use super::signals::SignalPlan;
use super::spawn::Namespaces;
use super::sys::{self, CStrArray};

/// What the sentinel and the agent use after the fork, borrowing memory that stays
/// valid (and unmodified) in the child's copy of the address space.
pub(super) struct ChildPlan<'a> {
    pub program: &'a CStr,
    pub argv: CStrArray<'a>,
    pub envp: CStrArray<'a>,
    /// The agent's working directory, when it is not the caller's.
    pub cwd: Option<&'a CStr>,
    /// Pipe ends and files the sentinel keeps, in the order of the `FD_*` slots.
    pub inherited: [RawFd; SLOTS],
    pub signals: SignalPlan,
    /// The scenario's cgroup directory.
    pub cgroup_dir: Option<&'a CStr>,
    /// The bottom of the agent's clone stack (`AGENT_STACK` bytes), memory the kernel
    /// is handed as a stack (hence a raw pointer).
    pub agent_stack: *mut u8,
    pub container: ContainerPlan<'a>,
    pub sched: SchedPlan,
}

/// The time slice the sentinel and the tracker's thread run with: short, so that a
/// request or an exit wakes them at once rather than after the agent's slice (the
/// kernel's EEVDF scheduler lets a woken task with a shorter slice preempt; with the
/// default one, a sentinel woken on the CPU where a new agent is starting up waited for
/// it, ≈ 0.75 ms here). Their work is a few microseconds at a time.
const SHORT_SLICE_NS: u64 = 100_000;

/// The caller's scheduling attributes, which the agent gets, and the sentinel's own:
/// the same with a short slice (for the fair policies; any other is left alone).
#[derive(Clone, Copy)]
pub(super) struct SchedPlan {
    /// The caller's thread's, when the sentinel started.
    caller: libc::sched_attr,
    shortened: bool,
}

impl SchedPlan {
    /// The calling thread's attributes (read before the fork or in the exec hook).
    pub(super) fn of_this_thread() -> Self {
        let caller = sys::thread_sched_attr();
        SchedPlan {
            caller,
            shortened: is_fair(&caller),
        }
    }

    /// The sentinel's attributes: the caller's with the short slice.
    pub(super) fn for_sentinel(&self) {
        if self.shortened {
            sys::set_thread_sched_attr(&libc::sched_attr {
                sched_runtime: SHORT_SLICE_NS,
                ..self.caller
            });
        }
    }

    /// Back to the caller's, in the agent before its exec (it inherited the sentinel's).
    pub(super) fn for_agent(&self) {
        if self.shortened {
            sys::set_thread_sched_attr(&self.caller);
        }
    }
}

/// A fair policy (`SCHED_OTHER`, `SCHED_BATCH`), the one a slice applies to, as read.
fn is_fair(attr: &libc::sched_attr) -> bool {
    attr.size != 0
        && matches!(
            attr.sched_policy as i32,
            libc::SCHED_OTHER | libc::SCHED_BATCH
        )
}

/// Gives the calling thread (the tracker's) the short slice; a thread of the harness's
/// own, never the caller's.
pub(crate) fn shorten_this_threads_slice() {
    SchedPlan::of_this_thread().for_sentinel();
}

/// Container mode as the agent uses it: clone flags (0 when off) and the id map lines
/// (none without a user namespace), borrowed from the caller's [`Namespaces`].
pub(super) struct ContainerPlan<'a> {
    pub clone_flags: libc::c_int,
    pub uid_map: Option<&'a CStr>,
    pub gid_map: Option<&'a CStr>,
}

impl<'a> ContainerPlan<'a> {
    pub(super) fn new(namespaces: Option<&'a Namespaces>) -> Self {
        let maps = namespaces.and_then(|n| n.user_map.as_ref());
        ContainerPlan {
            clone_flags: namespaces.map_or(0, Namespaces::clone_flags),
            uid_map: maps.map(|(u, _)| u.as_c_str()),
            gid_map: maps.map(|(_, g)| g.as_c_str()),
        }
    }
}

/// Stack size for the agent between clone and exec: a few frames of system calls.
pub(super) const AGENT_STACK: usize = 64 * 1024;

// Fixed descriptor numbers in the sentinel after remapping.
pub(super) const SLOTS: usize = 7;
pub(super) const FD_CONTROL: RawFd = 3;
pub(super) const FD_EVENTS: RawFd = 4;
pub(super) const FD_STDOUT: RawFd = 5;
pub(super) const FD_STDERR: RawFd = 6;
pub(super) const FD_EXEC_STATUS: RawFd = 7;
/// The agent's stdin: `/dev/null`, or the descriptor given in
/// [`Launch::stdin`](super::Launch::stdin).
pub(super) const FD_DEVNULL: RawFd = 8;
pub(super) const FD_CGROUP: RawFd = 9;
pub(super) const FIRST_FREE: RawFd = 3 + SLOTS as RawFd;
