//! The sentinel's life, in the forked child or in the process the exec hook took over.
//!
//! It takes over its descriptor table (the pipes into fixed slots, everything else
//! closed), becomes a session leader and a child subreaper, resets every signal
//! disposition, creates the scenario's cgroup and starts the agent (see `agent`). Then
//! it loops: reap every child and report it, obey the harness's requests, and on end of
//! file on the lifeline (or a SIGTERM, SIGINT or SIGHUP to itself) kill the whole tree,
//! reap it to `ECHILD` (see `cleanup`), remove the cgroup and exit. When instead the
//! harness releases it (the tree was reported empty) it closes the scenario's events
//! pipe and waits, idle, for the next launch, which brings its own pipes and image
//! (see `pool`).
//!
//! Everything here is async-signal-safe: the calls of `sys`, the plan prepared before
//! the fork, fixed-size buffers on the stack.

use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use super::agent;
use super::cleanup::Tree;
use super::image::MappedLaunch;
use super::plan::{
    ChildPlan, ContainerPlan, FD_CGROUP, FD_CONTROL, FD_DEVNULL, FD_EVENTS, FD_EXEC_STATUS,
    FD_STDERR, FD_STDOUT, FIRST_FREE, SLOTS,
};
use super::sys::{self, Errno};
use super::wire::{
    Event, LaunchFailure, LaunchStage, Request, LAUNCH_ACCEPTED, LAUNCH_FDS, REQUEST_LEN,
    REQ_LAUNCH,
};

/// The sentinel's whole life. Never returns.
///
/// # Safety
///
/// Only in a child just created by `fork` (with `plan` pointing into its copy of the
/// parent's memory) or in the exec hook: a single-threaded process that owns its whole
/// descriptor table, which this function takes over. Only async-signal-safe calls are
/// made.
pub(super) unsafe fn sentinel_main(plan: &ChildPlan<'_>) -> ! {
    // SAFETY: this process owns its descriptor table (this function's contract).
    unsafe { remap_fds(&plan.inherited) };
    for stdio in 0..=2 {
        // SAFETY: as above; the sentinel's own stdio is /dev/null.
        unsafe { sys::dup_onto(FD_DEVNULL, stdio, false) };
    }
    sys::setsid();
    sys::become_subreaper();
    sys::set_name(c"orphan-sentinel");
    plan.sched.for_sentinel();
    // Every disposition the caller set goes back to the default (every signal is still
    // blocked, since before the fork): see `signals`.
    plan.signals.set_sentinel_dispositions();
    sys::set_signal_mask(&plan.signals.watched);
    // Kept open for the sentinel's life; -1 when there is none.
    let signalfd = signalfd_above_slots(&plan.signals.watched);
    let sigfd = signalfd.as_ref().map_or(-1, OwnedFd::as_raw_fd);
    serve(plan, sigfd);
    // Released: idle until the next launch, which brings its own image and pipes. What
    // the sentinel set up once (its session, the subreaper flag, the dispositions, the
    // signalfd, the agent's stack) serves every launch.
    loop {
        let Some(launch) = next_launch(sigfd) else {
            // The harness is gone, or asked for something an idle sentinel cannot do:
            // there is no tree to end.
            sys::exit(0)
        };
        let next = ChildPlan {
            program: launch.program(),
            argv: launch.argv(),
            envp: launch.envp(),
            cwd: launch.cwd(),
            inherited: [-1; SLOTS],
            signals: plan.signals,
            cgroup_dir: launch.cgroup_dir(),
            agent_stack: plan.agent_stack,
            container: ContainerPlan::new(None),
            sched: plan.sched,
        };
        serve(&next, sigfd);
    }
}

/// One scenario: creates its cgroup, starts its agent, then reaps, reports and obeys
/// requests until the harness releases the sentinel (the tree reported empty): then it
/// returns, with every descriptor of the scenario closed. Every other end (the
/// lifeline, a stop signal, a failed launch) ends the tree and the sentinel.
fn serve(plan: &ChildPlan<'_>, sigfd: RawFd) {
    QUIET.store(false, Ordering::Relaxed);
    if let Some(dir) = plan.cgroup_dir {
        // The scenario's cgroup is made here, not by the harness: it exists only while a
        // sentinel exists to remove it.
        let _ = sys::mkdir(dir, 0o755);
        match sys::open(dir, libc::O_RDONLY | libc::O_DIRECTORY) {
            Err(errno) => {
                report_launch_failure(LaunchStage::JoinCgroup, errno);
                exit_sentinel(plan);
            }
            Ok(fd) => {
                let fd = fd.into_raw_fd();
                if fd != FD_CGROUP {
                    // SAFETY: this process owns its descriptor table; `fd` is ours.
                    unsafe {
                        sys::dup_onto(fd, FD_CGROUP, true);
                        sys::close(fd);
                    }
                }
            }
        }
    }

    let agent = match agent::start(plan) {
        Ok(pid) => pid,
        Err(errno) => {
            report_launch_failure(LaunchStage::ForkAgent, errno);
            exit_sentinel(plan);
        }
    };
    // Like a shell job: the agent leads its own group. Both sides call setpgid, so the
    // group exists before either of them goes on.
    sys::setpgid(agent, agent);
    // SAFETY: this process owns its descriptor table; these slots are the agent's
    // business now (it has its copies) and nothing here uses them again.
    unsafe {
        for slot in [FD_STDOUT, FD_STDERR, FD_EXEC_STATUS, FD_DEVNULL] {
            sys::close(slot);
        }
        if plan.cgroup_dir.is_some() {
            sys::close(FD_CGROUP);
        }
    }
    let pidfd = sys::pidfd_open(agent);
    emit(Event::AgentStarted {
        pid: agent,
        pidfd_errno: pidfd.as_ref().err().copied().unwrap_or(0),
    });

    let mut tree = Tree::new(agent, pidfd.ok());
    loop {
        tree.reap_available();
        let mut fds = [readable(FD_CONTROL), readable(sigfd)];
        // Without a signalfd (it could not be created) SIGCHLD cannot wake the loop:
        // look for exits every 10 ms instead of never.
        if sys::poll(&mut fds, if sigfd < 0 { 10 } else { -1 }).is_err() {
            continue;
        }
        if fds[1].revents != 0 && drain_signalfd(sigfd) {
            // Someone asked the sentinel itself to stop: do not orphan the tree.
            tree.kill_all(sigfd);
            exit_sentinel(plan);
        }
        if fds[0].revents != 0 {
            let mut record = [0u8; REQUEST_LEN];
            if !read_exact(FD_CONTROL, &mut record) {
                // Lifeline: the harness is gone, or dropped the outcome: nobody reads
                // events any more. Reporting each of a big tree's deaths (a write per
                // process, each waking the harness's reader) would only slow the
                // cleanup down: stop reporting, and close the pipe so that the reader
                // ends now.
                stop_reporting();
                tree.kill_all(sigfd);
                exit_sentinel(plan);
            }
            match Request::decode(&record) {
                Ok(Request::SignalAgent(signal)) => tree.signal_agent(signal),
                Ok(Request::SignalGroup(signal)) => tree.signal_group(signal),
                Ok(Request::KillTree) => tree.kill_all(sigfd),
                Ok(Request::Release) => {
                    // The harness saw the tree reported empty, so nothing is left of it
                    // (an orphan can only ever join a sentinel's own subtree); should a
                    // child be left all the same, it is ended here before going idle.
                    // The cgroup is the harness's to remove: it is alive and does.
                    stop_reporting();
                    if !tree.is_empty() {
                        tree.kill_all(sigfd);
                    }
                    return;
                }
                // A launch while a tree is served, or a kind nobody knows: nothing is
                // done, and the harness hears why.
                Ok(Request::Launch) => emit(Event::UnknownRequest { kind: REQ_LAUNCH }),
                Err(unknown) => emit(Event::UnknownRequest { kind: unknown.code }),
            }
        }
    }
}

/// Waits, idle, for the next launch: a [`Request::Launch`] with its descriptors. The
/// pipes go to their slots, the image is mapped (and its descriptor closed). `None` on
/// end of file (the harness is gone), on a stop signal, or on anything else than a
/// launch: the harness and this sentinel would not agree on what comes next.
fn next_launch(sigfd: RawFd) -> Option<MappedLaunch> {
    loop {
        let mut fds = [readable(FD_CONTROL), readable(sigfd)];
        if sys::poll(&mut fds, -1).is_err() {
            continue;
        }
        if fds[1].revents != 0 && drain_signalfd(sigfd) {
            return None;
        }
        if fds[0].revents == 0 {
            continue;
        }
        let mut record = [0u8; REQUEST_LEN];
        let mut received = [-1 as RawFd; 8];
        let (len, count) = match sys::recv_with_fds(FD_CONTROL, &mut record, &mut received) {
            Err(libc::EINTR) => continue,
            Err(_) => return None,
            Ok(got) => got,
        };
        let is_launch = len == REQUEST_LEN
            && count == LAUNCH_FDS
            && Request::decode(&record) == Ok(Request::Launch);
        let launch = if is_launch {
            MappedLaunch::map(received[0])
        } else {
            None
        };
        if launch.is_some() {
            // The image's descriptor first: it may sit in a slot (received descriptors
            // take the lowest free numbers), and the mapping outlives it.
            // SAFETY: the image's descriptor is ours and used nowhere else.
            unsafe { sys::close(received[0]) };
            let slots = [FD_EVENTS, FD_STDOUT, FD_STDERR, FD_EXEC_STATUS, FD_DEVNULL];
            // SAFETY: this process owns its descriptor table; the slots are free (the
            // last scenario closed them) and the received descriptors are ours.
            unsafe { move_to_slots(&received[1..LAUNCH_FDS], &slots) };
            write_all_or_give_up(FD_CONTROL, &[LAUNCH_ACCEPTED]);
        } else {
            for &fd in &received[..count] {
                // SAFETY: descriptors just received, ours and used nowhere.
                unsafe { sys::close(fd) };
            }
        }
        return launch;
    }
}

/// Moves each of `fds` into the slot of the same index (close-on-exec), closing the
/// originals. Copies every one above the slots first, so that filling a slot never
/// overwrites a descriptor still to be moved.
///
/// # Safety
///
/// The caller owns its descriptor table, `fds`, and the `slots`.
unsafe fn move_to_slots(fds: &[RawFd], slots: &[RawFd]) {
    let mut high = [-1 as RawFd; SLOTS];
    for (i, &fd) in fds.iter().enumerate() {
        high[i] = sys::dup_above(fd, FIRST_FREE).map_or(-1, IntoRawFd::into_raw_fd);
        // SAFETY: ours (the caller's contract), copied above.
        unsafe { sys::close(fd) };
    }
    for (&fd, &slot) in high.iter().zip(slots) {
        // SAFETY: the caller owns the slots; the copies are ours.
        unsafe {
            if fd >= 0 {
                sys::dup_onto(fd, slot, true);
                sys::close(fd);
            }
        }
    }
}

/// A `pollfd` waiting for `fd` to be readable (a negative `fd` is ignored by `poll`).
pub(super) fn readable(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// The sentinel's signalfd, moved above the fixed slots (3..=9, some of them closed
/// now and reused after) when it landed in one.
fn signalfd_above_slots(watched: &libc::sigset_t) -> Option<OwnedFd> {
    let fd = sys::signalfd(watched).ok()?;
    if fd.as_raw_fd() < FIRST_FREE {
        return sys::dup_above(fd.as_raw_fd(), FIRST_FREE).ok();
    }
    Some(fd)
}

/// Ends the sentinel once its tree is empty: removes the scenario's cgroup (empty by
/// now) and exits.
pub(super) fn exit_sentinel(plan: &ChildPlan<'_>) -> ! {
    if let Some(dir) = plan.cgroup_dir {
        // The kernel may still be finishing the last exits (EBUSY for a moment after the
        // final reap): try again, 1 ms doubling to 64 ms, 127 ms in all.
        let mut wait_ms = 1;
        while sys::rmdir(dir) == Err(libc::EBUSY) && wait_ms <= 64 {
            sys::sleep_ms(wait_ms);
            wait_ms *= 2;
        }
    }
    sys::exit(0)
}

/// Drains the signalfd; true when SIGTERM, SIGINT or SIGHUP was among the signals.
pub(super) fn drain_signalfd(sigfd: RawFd) -> bool {
    const INFO: usize = std::mem::size_of::<libc::signalfd_siginfo>();
    let mut stop = false;
    let mut buf = [0u8; INFO * 8];
    loop {
        let n = match sys::read(sigfd, &mut buf) {
            Ok(n) if n > 0 => n,
            _ => return stop,
        };
        for info in buf[..n].chunks_exact(INFO) {
            // `ssi_signo`, the first field of `struct signalfd_siginfo`.
            let signo = u32::from_ne_bytes([info[0], info[1], info[2], info[3]]);
            if signo != libc::SIGCHLD as u32 {
                stop = true;
            }
        }
    }
}

/// Set once nobody reads the sentinel's events (the lifeline closed): `emit` is silent.
/// The sentinel is single-threaded; the atomic is only a `static` without `unsafe`.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Stops reporting events for good and closes the events pipe, so the harness's reader
/// sees its end of file at once. The slot is never written again (a descriptor opened
/// later may reuse it): `emit` checks `QUIET` first.
fn stop_reporting() {
    QUIET.store(true, Ordering::Relaxed);
    // SAFETY: this process owns its descriptor table; nothing writes FD_EVENTS again.
    unsafe { sys::close(FD_EVENTS) };
}

/// Writes one event record to the harness. A failed write (the harness is gone) is
/// ignored: the lifeline EOF will follow. Nothing once the lifeline closed.
pub(super) fn emit(event: Event) {
    if QUIET.load(Ordering::Relaxed) {
        return;
    }
    write_all_or_give_up(FD_EVENTS, &event.encode(sys::monotonic_ns()));
}

/// Tells the harness at which stage the agent's launch failed (from the sentinel or
/// from the agent before its exec: the status pipe is in the same slot in both).
pub(super) fn report_launch_failure(stage: LaunchStage, errno: Errno) {
    write_all_or_give_up(FD_EXEC_STATUS, &LaunchFailure { stage, errno }.encode());
}

/// Writes a record (< `PIPE_BUF`, so atomic) to one of our pipes, again when a signal
/// interrupted the write; any other failure (the reader is gone) gives up.
pub(super) fn write_all_or_give_up(fd: RawFd, buf: &[u8]) {
    while sys::write(fd, buf) == Err(libc::EINTR) {}
}

/// Fills `buf` from `fd`; false at end of file or on an error other than `EINTR`.
fn read_exact(fd: RawFd, buf: &mut [u8]) -> bool {
    let mut got = 0;
    while got < buf.len() {
        match sys::read(fd, &mut buf[got..]) {
            Ok(0) => return false,
            Ok(n) => got += n,
            Err(libc::EINTR) => {}
            Err(_) => return false,
        }
    }
    true
}

/// Moves the inherited descriptors to the fixed slots 3.., closes every other
/// descriptor above 2. Slots without a descriptor are closed too.
///
/// # Safety
///
/// The caller owns its whole descriptor table (post-fork, or the exec hook).
unsafe fn remap_fds(inherited: &[RawFd; SLOTS]) {
    // First copy every source above both the sources and the slots, so that filling a
    // slot can never overwrite a source that is still to be moved.
    let floor = inherited
        .iter()
        .fold(FIRST_FREE, |floor, &fd| floor.max(fd + 1));
    let mut high = [-1 as RawFd; SLOTS];
    for (i, &fd) in inherited.iter().enumerate() {
        if fd >= 0 {
            match sys::dup_above(fd, floor) {
                Ok(copy) => high[i] = copy.into_raw_fd(),
                Err(_) => sys::exit(126),
            }
        }
    }
    for (i, &fd) in high.iter().enumerate() {
        let slot = 3 + i as RawFd;
        // SAFETY: the caller owns the table; the copies above `floor` are closed below.
        unsafe {
            if fd >= 0 {
                sys::dup_onto(fd, slot, true);
            } else {
                sys::close(slot);
            }
        }
    }
    // SAFETY: the caller owns the table.
    unsafe { sys::close_from(FIRST_FREE) };
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::sentinel::wire::read_event;
    use crate::sentinel::{spawn, Event, Launch, SentinelStart};

    #[test]
    fn once_the_lifeline_closes_the_sentinel_reports_nothing_more() {
        let launch = Launch::bare(c"/bin/sleep", &[c"sleep", c"1000"]);
        let spawned = spawn(
            &launch,
            SentinelStart::Fork,
            Instant::now() + Duration::from_secs(30),
            |events, _stdout, _stderr| events,
        )
        .expect("spawn")
        .map_err(|(stage, errno)| format!("{stage:?} {errno}"))
        .expect("the agent started");
        assert!(matches!(
            read_event(&spawned.reader),
            Some(Event::AgentStarted { .. })
        ));
        // The agent lives until the lifeline closes: its kill and its reap come after,
        // and nobody is left to hear of them.
        let mut sentinel = spawned.sentinel;
        assert!(sentinel.shut_down(Instant::now() + Duration::from_secs(30)));
        let after: Vec<Event> = std::iter::from_fn(|| read_event(&spawned.reader)).collect();
        assert!(after.is_empty(), "events after the lifeline: {after:?}");
    }
}
