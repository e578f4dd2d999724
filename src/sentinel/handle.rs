//! The harness's side of a running sentinel: the lifeline, requests, and the shutdown.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::retry_on_intr;
use rustix::net::{send, sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use rustix::process::{
    pidfd_open, pidfd_send_signal, waitpid, Pid, PidfdFlags, Signal, WaitOptions,
};

use super::inherited::Inherited;
use super::wire::{Request, LAUNCH_ACCEPTED, LAUNCH_FDS, REQUEST_LEN};

/// How long a handle dropped on its own waits for its sentinel. An [`Outcome`]'s drop
/// shares one deadline between the sentinel and the cgroup instead (see
/// [`SentinelHandle::shut_down`]).
///
/// [`Outcome`]: crate::Outcome
const DROP_PATIENCE: Duration = Duration::from_secs(10);

/// The harness's side of a freshly started sentinel.
pub(crate) struct Spawned<R> {
    pub sentinel: SentinelHandle,
    /// What `spawn`'s `reader` made of the read ends: the sentinel's events (fixed-size
    /// records, see [`Event`](super::Event)) and the agent's stdout and stderr.
    pub reader: R,
}

/// Where the sentinel is in its life, as far as its handle knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    No,
    /// Reaped here (or by a `waitpid(-1)` of the caller's).
    Reaped,
    /// It missed a shutdown's deadline: a background thread reaps it when it exits.
    LeftToReaper,
    /// Released to wait, idle, for another scenario: another handle has it now.
    Released,
}

/// The harness's handle on one sentinel: the lifeline (the harness's end of the
/// sentinel's control socket), and the sentinel's pidfd.
///
/// Dropping it closes the lifeline (the sentinel kills what is left and exits) and reaps
/// the sentinel; it never panics and never waits longer than [`DROP_PATIENCE`].
pub(crate) struct SentinelHandle {
    pid: i32,
    pidfd: Option<OwnedFd>,
    control: Option<OwnedFd>,
    ended: Ended,
    /// What its agents inherit from it, when it may wait idle for another scenario
    /// (see `pool`); `None` for a sentinel that ends with its scenario.
    inherited: Option<Inherited>,
}

impl SentinelHandle {
    /// The handle on the sentinel `pid` (our unreaped child) with the harness's end of
    /// its control socket, and what it inherited when it may be reused.
    pub(super) fn new(pid: i32, control: OwnedFd, inherited: Option<Inherited>) -> Self {
        SentinelHandle {
            pid,
            pidfd: Pid::from_raw(pid).and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok()),
            control: Some(control),
            ended: Ended::No,
            inherited,
        }
    }

    /// What its agents inherit, when it may be reused.
    pub(super) fn inherited(&self) -> Option<&Inherited> {
        self.inherited.as_ref()
    }

    /// The sentinel's pid: the root of the scenario's subtree.
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether the sentinel has exited (it may still be our unreaped zombie): its pidfd
    /// is readable then, so one `poll` answers, instead of a read of its `/proc` entry.
    /// `None` without a pidfd (a kernel before 5.3).
    pub(crate) fn has_exited(&self) -> Option<bool> {
        if self.ended == Ended::Reaped {
            return Some(true);
        }
        let pidfd = self.pidfd.as_ref()?;
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        let now = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        retry_on_intr(|| poll(&mut fds, Some(&now)))
            .ok()
            .map(|ready| ready > 0)
    }

    /// Sends a request. An error means the sentinel is already gone. (`MSG_NOSIGNAL`:
    /// a sentinel gone is an error here, never a SIGPIPE in the caller.)
    pub(crate) fn send(&self, request: Request) -> io::Result<()> {
        let record = request.encode();
        let n = retry_on_intr(|| send(self.control()?, &record, SendFlags::NOSIGNAL))?;
        if n != REQUEST_LEN {
            return Err(io::Error::from(io::ErrorKind::WriteZero));
        }
        Ok(())
    }

    fn control(&self) -> rustix::io::Result<BorrowedFd<'_>> {
        self.control
            .as_ref()
            .map(AsFd::as_fd)
            .ok_or(rustix::io::Errno::PIPE)
    }

    /// Hands an idle sentinel its next launch: the image (see `image`) and `pipes`, the
    /// write ends of the events, stdout, stderr and exec-status pipes and the agent's
    /// stdin, in one record. An error means the sentinel is gone.
    pub(super) fn send_launch(
        &self,
        image: &OwnedFd,
        pipes: [BorrowedFd<'_>; 5],
    ) -> io::Result<()> {
        let fds: [BorrowedFd<'_>; LAUNCH_FDS] = [
            image.as_fd(),
            pipes[0],
            pipes[1],
            pipes[2],
            pipes[3],
            pipes[4],
        ];
        let mut space =
            [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(LAUNCH_FDS))];
        let mut ancillary = SendAncillaryBuffer::new(&mut space);
        if !ancillary.push(SendAncillaryMessage::ScmRights(&fds)) {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let record = Request::Launch.encode();
        let n = retry_on_intr(|| {
            sendmsg(
                self.control()?,
                &[io::IoSlice::new(&record)],
                &mut ancillary,
                SendFlags::NOSIGNAL,
            )
        })?;
        if n != REQUEST_LEN {
            return Err(io::Error::from(io::ErrorKind::WriteZero));
        }
        Ok(())
    }

    /// Waits until `deadline` for an idle sentinel's answer to a launch: true once it
    /// took it, false when it closed its socket instead (it died while idle) or did
    /// not answer in time.
    pub(super) fn launch_accepted(&self, deadline: Instant) -> bool {
        let Ok(control) = self.control() else {
            return false;
        };
        if !super::spawn::readable_by(control, deadline) {
            return false;
        }
        let mut byte = [0u8; 1];
        retry_on_intr(|| rustix::net::recv(control, &mut byte, rustix::net::RecvFlags::empty()))
            .is_ok_and(|(n, _)| n == 1 && byte[0] == LAUNCH_ACCEPTED)
    }

    /// Releases a sentinel whose tree was reported empty to wait, idle, for another
    /// scenario: the handle to keep (see `pool`), and this one is done. `None` when it
    /// is not to be reused or is gone: then the caller shuts it down.
    pub(super) fn release(&mut self) -> Option<SentinelHandle> {
        if self.ended != Ended::No || self.inherited.is_none() {
            return None;
        }
        self.send(Request::Release).ok()?;
        self.ended = Ended::Released;
        Some(SentinelHandle {
            pid: self.pid,
            pidfd: self.pidfd.take(),
            control: self.control.take(),
            ended: Ended::No,
            inherited: self.inherited.take(),
        })
    }

    /// Closes the lifeline without waiting: the sentinel ends its tree and exits.
    pub(super) fn close_lifeline(&mut self) {
        self.control = None;
    }

    /// Closes the lifeline and waits until `deadline` for the sentinel to finish its
    /// cleanup and exit, reaping it. When it has not exited by then (it is still killing
    /// a tree that cannot die yet: a process in uninterruptible sleep) a background
    /// thread reaps it later, rather than block the caller. Returns whether it was
    /// reaped in time. Either way the handle is done: a second call, or the drop, waits
    /// no more.
    pub(crate) fn shut_down(&mut self, deadline: Instant) -> bool {
        if self.ended != Ended::No {
            return matches!(self.ended, Ended::Reaped | Ended::Released);
        }
        self.control = None;
        crate::cost_trace::mark("drop: lifeline closed");
        if let Some(pidfd) = &self.pidfd {
            let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
            let patience = deadline.saturating_duration_since(Instant::now());
            let timeout = rustix::event::Timespec {
                tv_sec: patience.as_secs() as i64,
                tv_nsec: patience.subsec_nanos() as i64,
            };
            let _ = retry_on_intr(|| poll(&mut fds, Some(&timeout)));
        }
        crate::cost_trace::mark("drop: sentinel exited (pidfd readable)");
        if self.try_reap() {
            return true;
        }
        self.ended = Ended::LeftToReaper;
        let pid = self.pid;
        let _ = std::thread::Builder::new()
            .name("orphan-check-reaper".into())
            .spawn(move || {
                if let Some(pid) = Pid::from_raw(pid) {
                    let _ = waitpid(Some(pid), WaitOptions::empty());
                }
            });
        false
    }

    fn try_reap(&mut self) -> bool {
        let Some(pid) = Pid::from_raw(self.pid) else {
            self.ended = Ended::Reaped;
            return true;
        };
        match waitpid(Some(pid), WaitOptions::NOHANG) {
            Ok(Some(_)) => self.ended = Ended::Reaped,
            Ok(None) => {}
            // ECHILD: somebody else reaped it (a `waitpid(-1)` in the caller).
            Err(_) => self.ended = Ended::Reaped,
        }
        self.ended == Ended::Reaped
    }

    /// Ends a start whose agent never got past its `chdir` or `exec`: SIGKILLs the
    /// sentinel's children (the agent-to-be), each verified to be the sentinel's child
    /// after its pidfd was opened, then the sentinel itself (waiting for that child, it
    /// cannot read its lifeline), and reaps it. A pending SIGKILL is never undone: the
    /// child dies the moment its system call returns, without running a line of its own.
    pub(super) fn stop_hung_start(self) {
        for child in crate::procs::children(self.pid) {
            let Some(pidfd) =
                Pid::from_raw(child).and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok())
            else {
                continue;
            };
            if crate::procs::ProcessInfo::read(child).is_some_and(|p| p.ppid == self.pid) {
                let _ = pidfd_send_signal(&pidfd, Signal::KILL);
            }
        }
        if let Some(pidfd) = &self.pidfd {
            let _ = pidfd_send_signal(pidfd, Signal::KILL);
        }
        drop(self);
    }
}

impl Drop for SentinelHandle {
    fn drop(&mut self) {
        self.shut_down(Instant::now() + DROP_PATIENCE);
    }
}

#[cfg(test)]
impl SentinelHandle {
    /// A handle on a child that, unlike a sentinel, does not exit when its lifeline
    /// closes: it stands for a sentinel stuck killing a tree that cannot die yet.
    pub(crate) fn stuck() -> (SentinelHandle, std::process::Child, OwnedFd) {
        let child = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .expect("sleep");
        let (lifeline_r, lifeline_w) = super::spawn::control_socket().expect("socketpair");
        (
            SentinelHandle::new(child.id() as i32, lifeline_w, None),
            child,
            lifeline_r,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shutdown_past_its_deadline_leaves_the_sentinel_to_a_reaper_once() {
        let (mut handle, mut child, lifeline) = SentinelHandle::stuck();
        assert!(
            !handle.shut_down(Instant::now()),
            "a live sentinel is not reaped by a deadline that has passed"
        );
        let mut byte = [0u8; 1];
        assert_eq!(
            rustix::io::read(&lifeline, &mut byte),
            Ok(0),
            "the lifeline is closed"
        );
        assert_eq!(handle.ended, Ended::LeftToReaper);
        // The reaper thread owns the wait now: a second shutdown (or the drop) is done
        // at once, whatever deadline it is given.
        assert!(!handle.shut_down(Instant::now() + Duration::from_secs(3600)));
        drop(handle);
        // End it, so that the reaper thread's wait ends too.
        let pidfd = pidfd_open(
            Pid::from_raw(child.id() as i32).expect("pid"),
            PidfdFlags::empty(),
        )
        .expect("pidfd of the unreaped child");
        child.kill().expect("kill");
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        retry_on_intr(|| poll(&mut fds, None)).expect("poll");
    }

    #[test]
    fn the_pidfd_says_when_the_sentinel_has_exited() {
        let (mut handle, mut child, _lifeline) = SentinelHandle::stuck();
        assert_eq!(handle.has_exited(), Some(false), "alive");
        child.kill().expect("kill");
        let pidfd = handle.pidfd.as_ref().expect("pidfd");
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        retry_on_intr(|| poll(&mut fds, None)).expect("poll");
        assert_eq!(handle.has_exited(), Some(true), "a zombie, not reaped yet");
        assert!(handle.shut_down(Instant::now()));
        assert_eq!(handle.has_exited(), Some(true), "reaped");
    }

    #[test]
    fn a_sentinel_that_exits_is_reaped_by_the_shutdown() {
        let (mut handle, mut child, _lifeline) = SentinelHandle::stuck();
        child.kill().expect("kill");
        let pidfd = handle.pidfd.as_ref().expect("pidfd");
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        retry_on_intr(|| poll(&mut fds, None)).expect("poll");
        assert!(handle.shut_down(Instant::now()));
        assert_eq!(handle.ended, Ended::Reaped);
        assert_eq!(
            waitpid(Pid::from_raw(child.id() as i32), WaitOptions::NOHANG)
                .err()
                .map(|e| e.raw_os_error()),
            Some(libc::ECHILD),
            "reaped by the handle"
        );
    }
}
