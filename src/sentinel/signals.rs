//! Signal masks and dispositions across the sentinel's fork and the agent's clone.
//!
//! The caller may have installed handlers and blocked or ignored signals. None of that
//! is the sentinel's or the agent's: every signal is blocked across each fork or clone
//! (as `posix_spawn` does), the new process sets every disposition back to the default,
//! and only then unblocks. An inherited `SIGCHLD = SIG_IGN` would make the kernel reap
//! the sentinel's children without a word to `waitpid`; an ignored SIGTERM would follow
//! the agent through its `exec` (handlers are reset by `exec`, ignored signals are not).

use super::sys;

/// One past the highest signal number.
const NSIG: i32 = 65;

/// Signal sets and dispositions, built before `fork` (so nothing is computed after it).
#[derive(Clone, Copy)]
pub(super) struct SignalPlan {
    /// SIGCHLD, SIGTERM, SIGINT, SIGHUP: blocked in the sentinel and read from a signalfd.
    pub watched: libc::sigset_t,
    /// The empty set, the agent's signal mask.
    pub empty: libc::sigset_t,
    /// Every signal: blocked across `fork` and `clone`, so that no handler of the
    /// caller's ever runs in the sentinel or in the agent before its exec.
    pub all: libc::sigset_t,
    /// `SIG_DFL` with an empty mask.
    default_action: libc::sigaction,
    /// `SIG_IGN`, for SIGPIPE in the sentinel.
    ignore_action: libc::sigaction,
    /// The kernel's signal set size, for the raw `rt_sigaction`.
    sigset_bytes: usize,
}

impl SignalPlan {
    pub(super) fn new() -> Self {
        SignalPlan {
            watched: sys::signal_set(&[libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP]),
            empty: sys::signal_set(&[]),
            all: sys::full_signal_set(),
            default_action: sys::disposition(libc::SIG_DFL),
            ignore_action: sys::disposition(libc::SIG_IGN),
            sigset_bytes: (libc::SIGRTMAX() as usize + 1) / 8,
        }
    }

    /// The sentinel's dispositions: every signal's back to the default, then SIGPIPE
    /// ignored (a harness gone mid-write must not kill the sentinel; the write fails
    /// and the lifeline's end of file follows). Post-fork safe: `sigaction` only, with
    /// the actions prepared before.
    pub(super) fn set_sentinel_dispositions(&self) {
        self.reset_dispositions();
        let _ = sys::set_disposition(libc::SIGPIPE, &self.ignore_action);
    }

    /// The agent's dispositions, from the sentinel's that it inherited through the
    /// clone: every one is the default but SIGPIPE, which goes back to the default too,
    /// so the agent starts as it would from a shell (handlers are reset by `exec`, an
    /// ignored signal is not). One `sigaction`, not one per signal: nothing between
    /// [`set_sentinel_dispositions`](Self::set_sentinel_dispositions) and the clone
    /// changes a disposition (the signals the sentinel watches are blocked and read from
    /// a signalfd, their dispositions untouched).
    pub(super) fn set_agent_dispositions(&self) {
        let _ = sys::set_disposition(libc::SIGPIPE, &self.default_action);
    }

    /// Sets every signal's disposition to the default (SIGKILL and SIGSTOP have no
    /// other). Post-fork safe: `sigaction` only, with the action prepared before. The
    /// numbers the C library reserves for itself (glibc's 32 and 33), which its
    /// `sigaction` refuses, are reset by the system call: a test process may ignore one,
    /// and an ignored signal survives `exec`.
    fn reset_dispositions(&self) {
        for signal in 1..NSIG {
            if signal != libc::SIGKILL
                && signal != libc::SIGSTOP
                && sys::set_disposition(signal, &self.default_action) == Err(libc::EINVAL)
            {
                let _ = sys::set_default_disposition_raw(signal, self.sigset_bytes);
            }
        }
    }
}

/// Every signal blocked in the calling thread until this guard drops, which restores
/// the caller's mask: the harness's side of a fork.
pub(super) struct AllBlocked {
    caller_mask: libc::sigset_t,
}

impl AllBlocked {
    pub(super) fn new(signals: &SignalPlan) -> Self {
        AllBlocked {
            caller_mask: sys::swap_thread_signal_mask(&signals.all),
        }
    }
}

impl Drop for AllBlocked {
    fn drop(&mut self) {
        sys::swap_thread_signal_mask(&self.caller_mask);
    }
}
