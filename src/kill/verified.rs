//! The one verified signal for a process that is not the sentinel's unreaped child: a
//! pidfd first, then its identity and ancestry checked, then `pidfd_send_signal`.

use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags};

use crate::procs::{self, ProcessInfo};
use crate::signal::Signal;

/// Signals `who` only if it is still that very process and still descends from `root`
/// (see [`signal_checked`]).
pub(crate) fn signal_verified(who: &ProcessInfo, root: i32, signal: Signal) -> bool {
    pidfd(who.pid)
        .is_some_and(|fd| signal_checked(&fd, who, signal, |_| procs::descends_from(who.pid, root)))
}

/// A pidfd for `pid`; `None` when there is no such process.
pub(crate) fn pidfd(pid: i32) -> Option<std::os::fd::OwnedFd> {
    pidfd_open(Pid::from_raw(pid)?, PidfdFlags::empty()).ok()
}

/// Signals through `pidfd` (opened for `who.pid` before this call) only if the pid
/// still names `who` (same start time) and `still_ours` holds for it now.
///
/// The pidfd is opened first and the identity checked after: if the pid was reused
/// before the open, the check sees the stranger (other start time, not ours) and
/// nothing is sent; if the process died after the open, the pidfd refers to the dead
/// process and the signal goes nowhere. A stranger is never signalled.
pub(crate) fn signal_checked(
    pidfd: &std::os::fd::OwnedFd,
    who: &ProcessInfo,
    signal: Signal,
    still_ours: impl FnOnce(&ProcessInfo) -> bool,
) -> bool {
    let Some(now) = ProcessInfo::read(who.pid) else {
        return false;
    };
    if !now.same_process(who) || !still_ours(&now) {
        return false;
    }
    let Some(sig) = rustix::process::Signal::from_named_raw(signal.as_raw()) else {
        return false;
    };
    pidfd_send_signal(pidfd, sig).is_ok()
}
