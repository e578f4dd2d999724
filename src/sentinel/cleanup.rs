//! What the sentinel knows of its subtree, and how it signals and ends it.
//!
//! Signals for the agent go through a pidfd opened while the agent was its live,
//! unreaped child; its group is signalled only while the agent is unreaped (its pid, the
//! group's id, cannot be reused until then). The cleanup loop SIGKILLs direct children
//! only: unreaped, nobody else may reap them, so their pids cannot be reused before the
//! `kill`, and the loop can never signal a stranger.

use std::os::fd::{AsFd, OwnedFd, RawFd};

use super::child::{drain_signalfd, emit, readable};
use super::proc_scan;
use super::sys;
use super::wire::Event;

/// The cleanup loop's first wait for a SIGCHLD, and the longest, in milliseconds.
const KILL_WAIT_MIN_MS: i32 = 5;
const KILL_WAIT_MAX_MS: i32 = 500;

/// What the sentinel knows about its subtree.
pub(super) struct Tree {
    agent: i32,
    /// The agent's pidfd until it is reaped; `None` on a kernel without pidfds.
    agent_pidfd: Option<OwnedFd>,
    agent_reaped: bool,
    empty: bool,
    /// Children the cleanup loop has SIGKILLed and not yet reaped.
    killed: KilledSet,
}

impl Tree {
    pub(super) fn new(agent: i32, agent_pidfd: Option<OwnedFd>) -> Self {
        Tree {
            agent,
            agent_pidfd,
            agent_reaped: false,
            empty: false,
            killed: KilledSet::new(),
        }
    }

    /// Whether `ECHILD` has been seen: every process of the tree is reaped.
    pub(super) fn is_empty(&self) -> bool {
        self.empty
    }

    /// Reaps every child that has exited, reporting each, and `Empty` on `ECHILD`.
    pub(super) fn reap_available(&mut self) {
        loop {
            match sys::reap_any() {
                Ok(Some((pid, status))) => {
                    // A reaped pid may be reused by a new orphan: that one is not killed
                    // yet.
                    self.killed.remove(pid);
                    if pid == self.agent {
                        self.agent_reaped = true;
                        self.agent_pidfd = None;
                    }
                    emit(Event::Exited { pid, status });
                }
                Ok(None) => return,
                Err(libc::EINTR) => {}
                Err(errno) => {
                    if errno == libc::ECHILD && !self.empty {
                        self.empty = true;
                        emit(Event::Empty);
                    }
                    return;
                }
            }
        }
    }

    pub(super) fn signal_agent(&mut self, signal: i32) {
        self.reap_available();
        let result = if self.agent_reaped {
            Err(libc::ESRCH)
        } else if let Some(pidfd) = &self.agent_pidfd {
            sys::pidfd_send_signal(pidfd.as_fd(), signal)
        } else {
            // No pidfd (an old kernel): the pid of an unreaped child is still safe.
            sys::kill(self.agent, signal)
        };
        emit(Event::Signalled {
            target: self.agent,
            signal,
            errno: result.err().unwrap_or(0),
        });
    }

    pub(super) fn signal_group(&mut self, signal: i32) {
        // Do not reap first: while the agent is unreaped (even as a zombie) its pid, the
        // group's id, cannot be reused, so the group is the agent's group.
        let result = if self.agent_reaped {
            Err(libc::ESRCH)
        } else {
            sys::kill(-self.agent, signal)
        };
        emit(Event::Signalled {
            target: -self.agent,
            signal,
            errno: result.err().unwrap_or(0),
        });
    }

    /// SIGKILL every direct child, reap, repeat until `ECHILD`.
    ///
    /// Everything is signalled first, then reaped as it dies: the list of children is
    /// read again only once every child killed so far has been reaped (what is left then
    /// is new: an orphan reparented to us, a child forked meanwhile) or when a wait ends
    /// without a death. Reading it at every SIGCHLD would make a big tree's cleanup
    /// quadratic: a thousand deaths, each followed by a read of a thousand pids.
    pub(super) fn kill_all(&mut self, sigfd: RawFd) {
        if !self.agent_reaped {
            // One atomic blow for everyone still in the agent's group (the group id is
            // pinned while the agent is unreaped); the loop below gets the escapers.
            let _ = sys::kill(-self.agent, libc::SIGKILL);
        }
        let mut wait_ms = KILL_WAIT_MIN_MS;
        let mut scan = true;
        loop {
            self.reap_available();
            if self.empty {
                return;
            }
            if scan || self.killed.is_empty() {
                if kill_direct_children(&mut self.killed) {
                    wait_ms = KILL_WAIT_MIN_MS;
                }
                self.reap_available();
                if self.empty {
                    return;
                }
            }
            // Wait for the next SIGCHLD, bounded in case a child was forked (or an orphan
            // reparented to us) while a killed one is still dying, so was not in the list
            // read. The bound backs off while nothing new turns up: a child that cannot
            // die yet (uninterruptible sleep, held by a tracer) costs a few wakeups a
            // second, not fifty, and is killed and reported once.
            let woken = sys::poll(&mut [readable(sigfd)], wait_ms).unwrap_or(0) > 0;
            drain_signalfd(sigfd);
            scan = !woken;
            if !woken {
                wait_ms = (wait_ms * 2).min(KILL_WAIT_MAX_MS);
            }
        }
    }
}

/// SIGKILLs every direct child not yet killed, reporting each once; true when there
/// was one.
///
/// The children are our unreaped children (nobody else may reap them), so none of them
/// can belong to another process by the time of the `kill`. A pending SIGKILL cannot be
/// undone, so killing a pid again until it is reaped would change nothing.
fn kill_direct_children(killed: &mut KilledSet) -> bool {
    let mut any = false;
    proc_scan::for_each_own_child(&mut |pid: i32| {
        if pid > 0 && !killed.contains(pid) {
            let _ = sys::kill(pid, libc::SIGKILL);
            // A full table (a storm of thousands) still kills, but reports no more.
            if killed.insert(pid) {
                emit(Event::Killed { pid });
            }
            any = true;
        }
    });
    any
}

/// Pids SIGKILLed by the cleanup loop and not yet reaped: a fixed table (nothing may
/// allocate after the fork), open addressing, 0 for a free slot and -1 for a removed one.
struct KilledSet {
    slots: [i32; KILLED_SLOTS],
    live: usize,
}

const KILLED_SLOTS: usize = 4096;

impl KilledSet {
    fn new() -> Self {
        KilledSet {
            slots: [0; KILLED_SLOTS],
            live: 0,
        }
    }

    fn home(pid: i32) -> usize {
        (pid as u32).wrapping_mul(2_654_435_761) as usize % KILLED_SLOTS
    }

    fn is_empty(&self) -> bool {
        self.live == 0
    }

    fn contains(&self, pid: i32) -> bool {
        let home = Self::home(pid);
        for i in 0..KILLED_SLOTS {
            match self.slots[(home + i) % KILLED_SLOTS] {
                0 => return false,
                p if p == pid => return true,
                _ => {}
            }
        }
        false
    }

    /// Adds `pid`; false when it was there already or the table is full.
    fn insert(&mut self, pid: i32) -> bool {
        if pid <= 0 || self.contains(pid) {
            return false;
        }
        let home = Self::home(pid);
        for i in 0..KILLED_SLOTS {
            let slot = &mut self.slots[(home + i) % KILLED_SLOTS];
            if *slot <= 0 {
                *slot = pid;
                self.live += 1;
                return true;
            }
        }
        false
    }

    fn remove(&mut self, pid: i32) {
        let home = Self::home(pid);
        for i in 0..KILLED_SLOTS {
            let slot = &mut self.slots[(home + i) % KILLED_SLOTS];
            match *slot {
                0 => return,
                p if p == pid => {
                    *slot = -1;
                    self.live -= 1;
                    if self.live == 0 {
                        // Nothing left: drop the removal marks, so lookups stay short.
                        self.slots = [0; KILLED_SLOTS];
                    }
                    return;
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_killed_set_remembers_each_pid_until_it_is_reaped() {
        let mut set = KilledSet::new();
        assert!(set.insert(42));
        assert!(
            !set.insert(42),
            "a second kill of the same pid is not reported"
        );
        // Colliding pids (same home slot) stay distinct.
        let other = 42 + KILLED_SLOTS as i32;
        assert!(set.insert(other) || KilledSet::home(other) != KilledSet::home(42));
        set.remove(42);
        assert!(!set.contains(42), "a reaped pid, reused, is killed again");
        assert!(set.contains(other) || KilledSet::home(other) != KilledSet::home(42));
        let mut full = KilledSet::new();
        for pid in 1..=KILLED_SLOTS as i32 {
            assert!(full.insert(pid));
        }
        assert!(
            !full.insert(KILLED_SLOTS as i32 + 1),
            "full: no report, no hang"
        );
    }
}
