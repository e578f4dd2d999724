//! The sentinel: a child subreaper that owns the agent's process tree.
//!
//! # Why a separate process
//!
//! After a SIGKILL the agent's children are reparented and the link "this was the
//! agent's child" is gone; a double-forking daemon lives less than a polling interval as
//! a child. So the harness does not look for descendants after the fact. It starts a
//! *sentinel* that sets `PR_SET_CHILD_SUBREAPER` and then starts the agent.
//! Every orphan of the agent's tree, whatever it did (setsid, new process group, double
//! fork, scrubbed environment), is reparented to the sentinel. So the agent's
//! descendants are exactly the sentinel's subtree, and "nothing survived" is the moment
//! the sentinel's `waitpid` answers `ECHILD`: an event, not a poll.
//!
//! The sentinel needs no helper binary: a small caller forks it (see [`SentinelStart`]
//! for a large one, which re-executes its own program in sentinel mode instead, through
//! a hook that runs before `main`). The caller is usually a multi-threaded test binary, so
//! between `fork` and `exec`/`_exit` only async-signal-safe system calls run: everything
//! (paths, argv and envp pointer arrays, signal sets) is prepared before `fork`, and the
//! post-fork code makes no allocation, takes no lock, never panics on purpose, and never
//! touches `std` I/O. The fork is glibc's `_Fork` (or the bare `clone(SIGCHLD)`), so no
//! other library's `pthread_atfork` handler runs in the child either, and every signal is
//! blocked across it until the child has reset every disposition to the default. The
//! calls it makes are exactly: `fcntl(F_DUPFD_CLOEXEC)`, `dup3`,
//! `close_range` (or `close`), `getrlimit`, `setsid`, `prctl`, `sigaction`,
//! `sigprocmask`, `signalfd`, `clone3` or `clone` (the agent), `openat`,
//! `mkdir`, `setpgid`, `write`, `read`, `chdir`, `execve`, `pidfd_open`, `pidfd_send_signal`,
//! `kill`, `waitpid`, `poll`, `open`, `getdents64`, `getpid`, `clock_gettime`, `rmdir`
//! and `_exit`; in container mode the agent also calls `mount` and `strlen` (see
//! `enter_container`).
//!
//! # The lifeline
//!
//! The sentinel reads commands from a pipe whose only write end is held by the harness.
//! End of file on it means the harness is gone (it dropped the [`Outcome`], panicked, or
//! was SIGKILLed): the sentinel then SIGKILLs every direct child, reaps, and repeats until
//! `ECHILD`, and exits. Direct children cannot be PID-reused before their parent reaps
//! them, so this loop can never signal a stranger.
//!
//! # Signals
//!
//! Signals for the agent go through a pidfd the sentinel opened while the agent was its
//! live, unreaped child. A signal for the agent's process group is sent only while the
//! agent is not yet reaped: its pid, which is the group's id, cannot be reused until
//! then. After that the harness falls back to signalling verified group members one by
//! one (see [`crate::kill`]).
//!
//! This is the only module of the crate with `unsafe` code.
//!
//! [`Outcome`]: crate::Outcome
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::raw::c_char;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::{open, Mode, OFlags};
use rustix::io::{read, retry_on_intr, write};
use rustix::pipe::{pipe_with, PipeFlags};
use rustix::process::{pidfd_open, waitpid, Pid, PidfdFlags, WaitOptions};

/// What the sentinel launches, prepared entirely before `fork`.
pub(crate) struct Launch {
    /// Absolute path of the executable.
    pub program: CString,
    /// `argv`, including `argv[0]`.
    pub argv: Vec<CString>,
    /// The complete environment, `KEY=VALUE`.
    pub envp: Vec<CString>,
    /// Working directory of the agent, if it is not the caller's.
    pub cwd: Option<CString>,
    /// The directory of a fresh cgroup for the agent. The sentinel creates it (so a
    /// harness that dies before the sentinel exists leaves none behind), starts the agent
    /// in it, and removes it when it exits after its tree is gone.
    pub cgroup_dir: Option<CString>,
    /// Container mode: the agent becomes PID 1 of its own namespaces (see [`Namespaces`]).
    pub namespaces: Option<Namespaces>,
    /// The agent's stdin when it is not `/dev/null`: the read end of the harness's pipe,
    /// or a copy of the caller's own stdin.
    pub stdin: Option<OwnedFd>,
    /// The agent writes to the caller's own stdout and stderr instead of pipes the
    /// tracker reads (whose read ends are then at end of file from the start).
    pub inherit_output: bool,
}

/// Container mode, as `docker run` without `--init` sets it up: the agent is PID 1 of a
/// new PID namespace and of a new mount namespace, in which mount propagation is made
/// private and `/proc` is mounted afresh (so it shows the namespace's pids). The
/// sentinel stays outside, the agent's parent: while PID 1 lives, orphans inside are
/// reparented to it; when it dies the kernel SIGKILLs the rest of the namespace.
pub(crate) struct Namespaces {
    /// For a caller without root: a user namespace too, in which the caller's uid and
    /// gid are mapped to 0 (the `uid_map` and `gid_map` lines, `0 <id> 1`).
    pub user_map: Option<(CString, CString)>,
}

impl Namespaces {
    /// The `clone` flags that create these namespaces.
    fn clone_flags(&self) -> libc::c_int {
        let user = if self.user_map.is_some() {
            libc::CLONE_NEWUSER
        } else {
            0
        };
        libc::CLONE_NEWPID | libc::CLONE_NEWNS | user
    }
}

/// The harness's side of a freshly forked sentinel.
pub(crate) struct Spawned {
    pub sentinel: SentinelHandle,
    /// Events from the sentinel, fixed-size records (see [`Event`]).
    pub events: OwnedFd,
    /// The read ends of the agent's stdout and stderr.
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// How the sentinel process is started.
///
/// Forking copies the calling process's page tables: cheap for a small test process,
/// about 35 µs per MiB of resident memory for a large one (a test that loaded a model).
/// Re-executing the calling program in sentinel mode costs the same whatever the
/// caller's size (one `exec` of the test binary, about a millisecond).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SentinelStart {
    /// `Exec` when the calling process has 64 MiB or more resident, `Fork` below. The
    /// environment variable `ORPHAN_CHECK_SENTINEL_START=fork|exec` overrides it.
    #[default]
    Auto,
    /// Fork the calling process.
    Fork,
    /// Start `/proc/self/exe` in sentinel mode (glibc targets; elsewhere this forks).
    Exec,
}

/// Resident memory above which `Auto` re-executes instead of forking.
const EXEC_ABOVE_BYTES: u64 = 64 << 20;

impl SentinelStart {
    /// The concrete way for this call.
    fn resolve(self) -> SentinelStart {
        let chosen = match self {
            SentinelStart::Auto => match std::env::var("ORPHAN_CHECK_SENTINEL_START").as_deref() {
                Ok("fork") => SentinelStart::Fork,
                Ok("exec") => SentinelStart::Exec,
                _ if resident_bytes() >= EXEC_ABOVE_BYTES => SentinelStart::Exec,
                _ => SentinelStart::Fork,
            },
            other => other,
        };
        if cfg!(target_env = "gnu") {
            chosen
        } else {
            SentinelStart::Fork
        }
    }
}

/// This process's resident memory, from `/proc/self/statm`.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * rustix::param::page_size() as u64)
}

/// Where the agent failed before its `exec` succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LaunchStage {
    JoinCgroup,
    Chdir,
    Exec,
    ForkAgent,
    /// Container mode: writing the user namespace's id maps or mounting `/proc`.
    Namespace,
}

impl LaunchStage {
    fn from_code(code: u32) -> Self {
        match code {
            STAGE_CGROUP => LaunchStage::JoinCgroup,
            STAGE_CHDIR => LaunchStage::Chdir,
            STAGE_FORK => LaunchStage::ForkAgent,
            STAGE_NAMESPACE => LaunchStage::Namespace,
            _ => LaunchStage::Exec,
        }
    }
}

const STAGE_CGROUP: u32 = 1;
const STAGE_CHDIR: u32 = 2;
const STAGE_EXEC: u32 = 3;
const STAGE_FORK: u32 = 4;
const STAGE_NAMESPACE: u32 = 5;

// Wire format of commands: [kind: u32, argument: i32], native endian.
const CMD_SIGNAL_AGENT: u32 = 1;
const CMD_SIGNAL_GROUP: u32 = 2;
const CMD_KILL_TREE: u32 = 3;
const CMD_LEN: usize = 8;

// Wire format of events: [kind: u32, pid: i32, a: i32, b: i32, monotonic ns: u64].
const EV_AGENT_STARTED: u32 = 1;
const EV_EXITED: u32 = 2;
const EV_EMPTY: u32 = 3;
const EV_SIGNALLED: u32 = 4;
const EV_KILLED: u32 = 5;
/// Size of one event record; well under `PIPE_BUF`, so every write is atomic.
pub(crate) const EVENT_LEN: usize = 24;

/// A request from the harness to the sentinel.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Request {
    /// Send the signal to the agent, through the sentinel's pidfd.
    SignalAgent(i32),
    /// Send the signal to the agent's process group, while the agent is unreaped.
    SignalGroup(i32),
    /// SIGKILL the whole subtree, reaping until it is empty.
    KillTree,
}

/// What the sentinel reports. `at_ns` is `CLOCK_MONOTONIC` in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// The agent was forked; `pidfd_errno` is 0 when its pidfd could be opened.
    AgentStarted { pid: i32, pidfd_errno: i32 },
    /// A child of the sentinel was reaped with this raw wait status.
    Exited { pid: i32, status: i32 },
    /// `waitpid` answered `ECHILD`: no descendant is left.
    Empty,
    /// A signal was sent (`target` negative for a process group); `errno` 0 on success.
    Signalled {
        target: i32,
        signal: i32,
        errno: i32,
    },
    /// The cleanup loop SIGKILLed this direct child.
    Killed { pid: i32 },
}

impl Event {
    /// Decodes one record; `None` for an unknown kind.
    pub(crate) fn decode(buf: &[u8; EVENT_LEN]) -> Option<(Event, u64)> {
        let word = |i: usize| [buf[i], buf[i + 1], buf[i + 2], buf[i + 3]];
        let kind = u32::from_ne_bytes(word(0));
        let pid = i32::from_ne_bytes(word(4));
        let a = i32::from_ne_bytes(word(8));
        let b = i32::from_ne_bytes(word(12));
        let mut t = [0u8; 8];
        t.copy_from_slice(&buf[16..24]);
        let at_ns = u64::from_ne_bytes(t);
        let event = match kind {
            EV_AGENT_STARTED => Event::AgentStarted {
                pid,
                pidfd_errno: a,
            },
            EV_EXITED => Event::Exited { pid, status: a },
            EV_EMPTY => Event::Empty,
            EV_SIGNALLED => Event::Signalled {
                target: pid,
                signal: a,
                errno: b,
            },
            EV_KILLED => Event::Killed { pid },
            _ => return None,
        };
        Some((event, at_ns))
    }
}

/// The harness's handle on one sentinel: the lifeline, and the sentinel's pidfd.
///
/// Dropping it closes the lifeline (the sentinel kills what is left and exits) and reaps
/// the sentinel; it never panics and never blocks for long.
pub(crate) struct SentinelHandle {
    pid: i32,
    pidfd: Option<OwnedFd>,
    control: Option<OwnedFd>,
    reaped: bool,
}

impl SentinelHandle {
    /// The sentinel's pid: the root of the scenario's subtree.
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends a command. An error means the sentinel is already gone.
    pub(crate) fn send(&self, command: Request) -> io::Result<()> {
        let (kind, arg) = match command {
            Request::SignalAgent(sig) => (CMD_SIGNAL_AGENT, sig),
            Request::SignalGroup(sig) => (CMD_SIGNAL_GROUP, sig),
            Request::KillTree => (CMD_KILL_TREE, 0),
        };
        let mut buf = [0u8; CMD_LEN];
        buf[..4].copy_from_slice(&kind.to_ne_bytes());
        buf[4..].copy_from_slice(&arg.to_ne_bytes());
        let control = self
            .control
            .as_ref()
            .ok_or_else(|| io::Error::from(io::ErrorKind::BrokenPipe))?;
        let n = retry_on_intr(|| write(control, &buf))?;
        if n != CMD_LEN {
            return Err(io::Error::from(io::ErrorKind::WriteZero));
        }
        Ok(())
    }

    /// Closes the lifeline and waits up to `patience` for the sentinel to finish its
    /// cleanup and exit, reaping it. Returns whether it was reaped.
    pub(crate) fn shut_down(&mut self, patience: Duration) -> bool {
        if self.reaped {
            return true;
        }
        self.control = None;
        if let Some(pidfd) = &self.pidfd {
            let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
            let timeout = rustix::event::Timespec {
                tv_sec: patience.as_secs() as i64,
                tv_nsec: patience.subsec_nanos() as i64,
            };
            let _ = retry_on_intr(|| poll(&mut fds, Some(&timeout)));
        }
        self.try_reap()
    }

    fn try_reap(&mut self) -> bool {
        let Some(pid) = Pid::from_raw(self.pid) else {
            return true;
        };
        match waitpid(Some(pid), WaitOptions::NOHANG) {
            Ok(Some(_)) => self.reaped = true,
            Ok(None) => {}
            // ECHILD: somebody else reaped it (a `waitpid(-1)` in the caller).
            Err(_) => self.reaped = true,
        }
        self.reaped
    }
}

impl Drop for SentinelHandle {
    fn drop(&mut self) {
        if self.shut_down(Duration::from_secs(10)) {
            return;
        }
        // The sentinel is still killing a tree that will not die yet (a process in
        // uninterruptible sleep). Reap it in the background rather than block the caller.
        let pid = self.pid;
        let _ = std::thread::Builder::new()
            .name("orphan-check-reaper".into())
            .spawn(move || {
                if let Some(pid) = Pid::from_raw(pid) {
                    let _ = waitpid(Some(pid), WaitOptions::empty());
                }
            });
    }
}

/// Forks a sentinel that launches `launch` as the agent, and waits until the agent's
/// `exec` succeeded or failed, or `deadline` passed (a `chdir` or `exec` that hangs, on
/// a network filesystem): then an error of kind `TimedOut`, and nothing left running.
///
/// On `Err((stage, errno))` the sentinel has already been told to clean up; dropping the
/// handle inside finishes the job.
pub(crate) fn spawn(
    launch: &Launch,
    start: SentinelStart,
    deadline: Instant,
) -> io::Result<Result<Spawned, (LaunchStage, i32)>> {
    let (ctl_r, ctl_w) = pipe_with(PipeFlags::CLOEXEC)?;
    let (ev_r, ev_w) = pipe_with(PipeFlags::CLOEXEC)?;
    let (out_r, out_w) = output_pipe(launch.inherit_output, std::io::stdout().as_fd())?;
    let (err_r, err_w) = output_pipe(launch.inherit_output, std::io::stderr().as_fd())?;
    let (xs_r, xs_w) = pipe_with(PipeFlags::CLOEXEC)?;
    let devnull = open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())?;

    let argv: Vec<*const c_char> = launch
        .argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const c_char> = launch
        .envp
        .iter()
        .map(|e| e.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();

    // The agent's stack between clone and exec. The sentinel gets its own copy of this
    // buffer at fork; it must exist before the fork because nothing may allocate after.
    let mut agent_stack = vec![0u8; AGENT_STACK];
    let plan = ChildPlan {
        program: launch.program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: launch.cwd.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
        inherited: [
            ctl_r.as_raw_fd(),
            ev_w.as_raw_fd(),
            out_w.as_raw_fd(),
            err_w.as_raw_fd(),
            xs_w.as_raw_fd(),
            launch
                .stdin
                .as_ref()
                .map_or(devnull.as_raw_fd(), |fd| fd.as_raw_fd()),
            -1,
        ],
        signals: SignalPlan::new(),
        cgroup_dir: launch
            .cgroup_dir
            .as_ref()
            .map_or(std::ptr::null(), |c| c.as_ptr()),
        agent_stack: agent_stack.as_mut_ptr(),
        container: ContainerPlan::new(launch.namespaces.as_ref()),
    };

    // An exec that cannot start (no /proc/self/exe, a noexec mount), or a program that
    // started without the hook taking over (the loader failed, `/proc/self/exe` is an
    // interpreter that loaded this crate), falls back to fork. Container mode always
    // forks: its settings do not travel through the exec sentinel's launch data.
    let execed = if start.resolve() == SentinelStart::Exec && launch.namespaces.is_none() {
        spawn_by_exec(launch, &plan.inherited)
            .ok()
            .filter(|&pid| hook_took_over(pid, &xs_r, deadline))
    } else {
        None
    };
    let pid = if let Some(pid) = execed {
        pid
    } else {
        // Every signal is blocked across the fork, as posix_spawn does: a handler the
        // caller installed must never run in the child, which resets every disposition
        // before it unblocks anything.
        let mut caller_mask = plan.signals.empty;
        // SAFETY: `pthread_sigmask` reads and writes the two signal sets given; it
        // changes this thread's mask only, restored right after the fork.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &plan.signals.all, &mut caller_mask) };
        // SAFETY: `fork` is called with every resource the child needs already prepared
        // in `plan` (which borrows `launch`, `argv`, `envp` and `agent_stack`, alive
        // until after `fork` returns in both processes). The child only runs
        // `sentinel_main`, which makes async-signal-safe system calls and never returns
        // (it ends in `_exit`).
        let pid = unsafe { fork_without_atfork_handlers() };
        let fork_error = io::Error::last_os_error();
        if pid != 0 {
            // SAFETY: as above; restores the caller's own mask.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &caller_mask, std::ptr::null_mut()) };
        }
        if pid < 0 {
            return Err(fork_error);
        }
        if pid == 0 {
            // SAFETY: we are the freshly forked child; see `sentinel_main`.
            unsafe { sentinel_main(&plan) }
        }
        pid
    };

    // The harness keeps only its own ends; closing the others makes EOF mean what it
    // should (lifeline, agent output, exec status).
    drop((ctl_r, ev_w, out_w, err_w, xs_w, devnull));
    let pidfd = Pid::from_raw(pid).and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok());
    let sentinel = SentinelHandle {
        pid,
        pidfd,
        control: Some(ctl_w),
        reaped: false,
    };

    // Waits until the agent's exec closes its copy of the write end (success) or the
    // agent reports the stage and errno at which it failed, or the deadline.
    let mut status = [0u8; 8];
    let mut got = 0;
    while got < status.len() {
        if !readable_by(&xs_r, deadline) {
            stop_hung_start(sentinel);
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the agent's chdir or exec did not finish in time",
            ));
        }
        match retry_on_intr(|| read(&xs_r, &mut status[got..])) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(e.into()),
        }
    }
    if got == status.len() {
        let stage = u32::from_ne_bytes([status[0], status[1], status[2], status[3]]);
        let errno = i32::from_ne_bytes([status[4], status[5], status[6], status[7]]);
        let _ = sentinel.send(Request::KillTree);
        drop(sentinel);
        return Ok(Err((LaunchStage::from_code(stage), errno)));
    }
    Ok(Ok(Spawned {
        sentinel,
        events: ev_r,
        stdout: out_r,
        stderr: err_r,
    }))
}

/// A pipe for the agent's stdout or stderr, or (`inherit`) a copy of the caller's own
/// descriptor with the read end of a pipe that has no writer.
fn output_pipe(inherit: bool, own: BorrowedFd<'_>) -> io::Result<(OwnedFd, OwnedFd)> {
    let (read_end, write_end) = pipe_with(PipeFlags::CLOEXEC)?;
    if inherit {
        drop(write_end);
        return Ok((read_end, own.try_clone_to_owned()?));
    }
    Ok((read_end, write_end))
}

/// `fork` without running the handlers other libraries registered with
/// `pthread_atfork` (they may lock, allocate or log in the child): glibc's `_Fork`
/// (2.34 and later, looked up at run time), or else the bare system call
/// `clone(SIGCHLD)`, which is what `_Fork` makes.
///
/// # Safety
///
/// As for `fork`: the child may only make async-signal-safe calls.
unsafe fn fork_without_atfork_handlers() -> libc::pid_t {
    type ForkFn = unsafe extern "C" fn() -> libc::pid_t;
    static UNDERSCORE_FORK: std::sync::OnceLock<Option<ForkFn>> = std::sync::OnceLock::new();
    let found = *UNDERSCORE_FORK.get_or_init(|| {
        // SAFETY: dlsym with a NUL-terminated name; a non-null result for `_Fork` is
        // glibc's function of that signature, `pid_t _Fork(void)`.
        unsafe {
            let sym = libc::dlsym(libc::RTLD_DEFAULT, c"_Fork".as_ptr());
            (!sym.is_null()).then(|| std::mem::transmute::<*mut libc::c_void, ForkFn>(sym))
        }
    });
    match found {
        // SAFETY: the caller upholds fork's rules.
        Some(underscore_fork) => unsafe { underscore_fork() },
        // SAFETY: clone with fork semantics (no shared memory, the child continues on
        // a copy of this stack); the caller upholds fork's rules.
        None => unsafe {
            libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0, 0, 0, 0)
                as libc::pid_t
        },
    }
}

/// Whether `fd` is readable (data or end of file) before `deadline`.
fn readable_by(fd: &OwnedFd, deadline: Instant) -> bool {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return true,
        }
    }
}

/// Ends a start whose agent never got past its `chdir` or `exec`: SIGKILLs the
/// sentinel's children (the agent-to-be), each verified to be the sentinel's child
/// after its pidfd was opened, then the sentinel itself (waiting for that child, it
/// cannot read its lifeline), and reaps it. A pending SIGKILL is never undone: the
/// child dies the moment its system call returns, without running a line of its own.
fn stop_hung_start(sentinel: SentinelHandle) {
    for child in crate::procs::children(sentinel.pid) {
        let Some(pidfd) =
            Pid::from_raw(child).and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok())
        else {
            continue;
        };
        if crate::procs::ProcessInfo::read(child).is_some_and(|p| p.ppid == sentinel.pid) {
            let _ = rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL);
        }
    }
    if let Some(pidfd) = &sentinel.pidfd {
        let _ = rustix::process::pidfd_send_signal(pidfd, rustix::process::Signal::KILL);
    }
    drop(sentinel);
}

/// Waits (until `deadline`) for the hook's byte on the status pipe, which says that the
/// exec'd process `pid` became the sentinel. When the process ends without it, or the
/// deadline passes, SIGKILLs and reaps it (our unreaped child: the pid is still its
/// own) and answers false.
fn hook_took_over(pid: i32, status: &OwnedFd, deadline: Instant) -> bool {
    let Some(child) = Pid::from_raw(pid) else {
        return false;
    };
    let child_fd = pidfd_open(child, PidfdFlags::empty()).ok();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        let mut fds = vec![PollFd::new(status, PollFlags::IN)];
        if let Some(fd) = &child_fd {
            fds.push(PollFd::new(fd, PollFlags::IN));
        }
        let n = match poll(&mut fds, Some(&timeout)) {
            Err(rustix::io::Errno::INTR) => continue,
            other => other.unwrap_or(0),
        };
        let status_ready = !fds[0].revents().is_empty();
        drop(fds);
        if status_ready {
            let mut byte = [0u8; 1];
            if retry_on_intr(|| read(status, &mut byte)) == Ok(1) && byte[0] == HOOK_TOOK_OVER {
                return true;
            }
            break;
        }
        if n == 0 {
            break;
        }
        // The process ended: one last look for a byte written just before.
        if readable_by(status, Instant::now()) {
            continue;
        }
        break;
    }
    let _ = rustix::process::kill_process(child, rustix::process::Signal::KILL);
    let _ = waitpid(Some(child), WaitOptions::empty());
    false
}

/// First argument of a sentinel started by `exec`; a program without the hook (ld.so,
/// or an interpreter that loaded this crate as a library) rejects it as an unknown
/// option, and the harness falls back to fork.
const EXEC_FLAG: &CStr = c"--orphan-check-sentinel";
/// `ORPHAN_CHECK_SENTINEL=<version>` in the exec'd sentinel's environment: the wire
/// format of its launch data below.
const EXEC_ENV: &CStr = c"ORPHAN_CHECK_SENTINEL=2";
/// The slot where the exec'd sentinel finds its launch data (a sealed-off memfd). It is
/// the cgroup's slot: the hook reads and closes it before the sentinel opens the cgroup.
const FD_LAUNCH: RawFd = FD_CGROUP;
/// The byte the hook writes on the status pipe once it has taken over.
const HOOK_TOOK_OVER: u8 = b'S';

/// Starts `/proc/self/exe` in sentinel mode with `posix_spawn` (a `vfork`-like clone: no
/// page tables copied). Its descriptors land in the fixed slots. Its command line is
/// only `[name, EXEC_FLAG]`, readable by anyone in `/proc/<pid>/cmdline`; the agent's
/// launch (`program, cwd, cgroup dir, argc, argv..., envp...`, each NUL-terminated,
/// secrets included) travels in a memfd in slot `FD_LAUNCH`. Its environment is
/// `EXEC_ENV` and the caller's own `LD_*` variables, which the dynamic loader may need
/// to start the program at all.
fn spawn_by_exec(launch: &Launch, inherited: &[RawFd; SLOTS]) -> io::Result<i32> {
    let mut data: Vec<u8> = Vec::new();
    let text = |c: &Option<CString>| c.clone().unwrap_or_default();
    let argc = CString::new(launch.argv.len().to_string()).expect("digits");
    for field in [
        &launch.program,
        &text(&launch.cwd),
        &text(&launch.cgroup_dir),
        &argc,
    ]
    .into_iter()
    .chain(&launch.argv)
    .chain(&launch.envp)
    {
        data.extend_from_slice(field.as_bytes_with_nul());
    }
    let memfd = rustix::fs::memfd_create("orphan-check-launch", rustix::fs::MemfdFlags::CLOEXEC)?;
    let mut written = 0;
    while written < data.len() {
        written += retry_on_intr(|| write(&memfd, &data[written..]))?;
    }
    rustix::fs::seek(&memfd, rustix::fs::SeekFrom::Start(0))?;
    let mut inherited = *inherited;
    inherited[(FD_LAUNCH - 3) as usize] = memfd.as_raw_fd();

    // Copy every descriptor above the slots first, so that no dup2 action overwrites a
    // descriptor a later action still reads.
    let mut high = Vec::with_capacity(SLOTS);
    for &fd in &inherited {
        if fd >= 0 {
            // SAFETY: `fd` is an open descriptor owned by `launch` or `spawn` for the
            // whole call; we only duplicate it.
            let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            high.push(Some(rustix::io::fcntl_dupfd_cloexec(borrowed, FIRST_FREE)?));
        } else {
            high.push(None);
        }
    }
    let args: [&CStr; 2] = [c"orphan-sentinel", EXEC_FLAG];
    let arg_ptrs: Vec<*mut c_char> = args
        .iter()
        .map(|a| a.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();
    let mut env: Vec<CString> = vec![EXEC_ENV.into()];
    for (key, value) in std::env::vars_os() {
        use std::os::unix::ffi::OsStrExt;
        if key.as_bytes().starts_with(b"LD_") {
            let mut kv = key.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(value.as_bytes());
            if let Ok(kv) = CString::new(kv) {
                env.push(kv);
            }
        }
    }
    let env_ptrs: Vec<*mut c_char> = env
        .iter()
        .map(|e| e.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();

    let mut pid: libc::pid_t = 0;
    // SAFETY: the file actions object is initialised before use and destroyed after;
    // every pointer passed to posix_spawn (path, argv, envp) points into CStrings and
    // arrays alive for the whole call; the descriptors in `high` are open.
    let rc = unsafe {
        let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        libc::posix_spawn_file_actions_init(&mut actions);
        for (i, fd) in high.iter().enumerate() {
            if let Some(fd) = fd {
                libc::posix_spawn_file_actions_adddup2(
                    &mut actions,
                    fd.as_raw_fd(),
                    3 + i as RawFd,
                );
            }
        }
        let rc = libc::posix_spawn(
            &mut pid,
            c"/proc/self/exe".as_ptr(),
            &actions,
            std::ptr::null(),
            arg_ptrs.as_ptr(),
            env_ptrs.as_ptr(),
        );
        libc::posix_spawn_file_actions_destroy(&mut actions);
        rc
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(pid)
}

/// Runs before `main` in every process that links this crate (glibc passes `argc`,
/// `argv` and `envp` to `.init_array` functions). In a process started by
/// `spawn_by_exec` it becomes the sentinel and never returns; anywhere else it returns
/// after comparing one argument.
#[cfg(target_env = "gnu")]
#[used]
#[link_section = ".init_array"]
static EXEC_HOOK: extern "C" fn(libc::c_int, *const *const c_char, *const *const c_char) =
    exec_hook;

#[cfg(target_env = "gnu")]
extern "C" fn exec_hook(argc: libc::c_int, argv: *const *const c_char, envp: *const *const c_char) {
    // SAFETY: glibc passes the process's own argc/argv/envp, NUL-terminated strings in
    // NULL-terminated arrays that live as long as the process.
    unsafe {
        if argc != 2 || argv.is_null() || envp.is_null() {
            return;
        }
        let arg = |i: usize| CStr::from_ptr(*argv.add(i));
        if arg(1) != EXEC_FLAG {
            return;
        }
        let mut env = envp;
        let mut ours = false;
        while !(*env).is_null() {
            ours |= CStr::from_ptr(*env) == EXEC_ENV;
            env = env.add(1);
        }
        if !ours {
            return;
        }
        // A fresh, single-threaded process: allocating here is fine. The launch data
        // is a list of NUL-terminated fields (see `spawn_by_exec`).
        let mut data = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = libc::read(FD_LAUNCH, chunk.as_mut_ptr().cast(), chunk.len());
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            if n <= 0 {
                break;
            }
            data.extend_from_slice(&chunk[..n as usize]);
        }
        libc::close(FD_LAUNCH);
        let mut fields: Vec<*const c_char> = Vec::new();
        let mut start = 0;
        for (i, &b) in data.iter().enumerate() {
            if b == 0 {
                fields.push(data.as_ptr().add(start).cast());
                start = i + 1;
            }
        }
        let field = |i: usize| CStr::from_ptr(fields[i]);
        let agent_argc = if fields.len() >= 4 {
            field(3).to_str().ok().and_then(|n| n.parse::<usize>().ok())
        } else {
            None
        };
        let Some(agent_argc) = agent_argc.filter(|n| 4 + n <= fields.len()) else {
            libc::_exit(126);
        };
        // From here on this process is the sentinel: tell the harness, which otherwise
        // falls back to fork (a loader that failed, a program without this hook).
        write_all_or_give_up(FD_EXEC_STATUS, &[HOOK_TOOK_OVER]);
        let optional = |i: usize| {
            if field(i).is_empty() {
                std::ptr::null()
            } else {
                fields[i]
            }
        };
        let mut agent_argv: Vec<*const c_char> = fields[4..4 + agent_argc].to_vec();
        agent_argv.push(std::ptr::null());
        let mut agent_envp: Vec<*const c_char> = fields[4 + agent_argc..].to_vec();
        agent_envp.push(std::ptr::null());
        let mut agent_stack = vec![0u8; AGENT_STACK];
        let cgroup_dir = optional(2);
        let plan = ChildPlan {
            program: fields[0],
            argv: agent_argv.as_ptr(),
            envp: agent_envp.as_ptr(),
            cwd: optional(1),
            inherited: [
                FD_CONTROL,
                FD_EVENTS,
                FD_STDOUT,
                FD_STDERR,
                FD_EXEC_STATUS,
                FD_DEVNULL,
                -1,
            ],
            signals: SignalPlan::new(),
            cgroup_dir,
            agent_stack: agent_stack.as_mut_ptr(),
            container: ContainerPlan::new(None),
        };
        sentinel_main(&plan)
    }
}

/// Signal sets and dispositions, built before `fork`.
struct SignalPlan {
    /// SIGCHLD, SIGTERM, SIGINT, SIGHUP: blocked in the sentinel and read from a signalfd.
    watched: libc::sigset_t,
    /// The empty set, the agent's signal mask.
    empty: libc::sigset_t,
    /// Every signal: blocked across `fork` and `clone`, so that no handler of the
    /// caller's ever runs in the sentinel or in the agent before its exec.
    all: libc::sigset_t,
    /// `SIG_DFL` with an empty mask.
    default_action: libc::sigaction,
    /// `SIG_IGN`, for SIGPIPE in the sentinel.
    ignore_action: libc::sigaction,
}

impl SignalPlan {
    fn new() -> Self {
        // SAFETY: `sigset_t` and `sigaction` are plain C structs for which all-zero bytes
        // are valid values; the sets are then initialised by `sigemptyset`/`sigaddset`,
        // which only write into the memory they are given.
        unsafe {
            let mut watched: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut watched);
            for sig in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
                libc::sigaddset(&mut watched, sig);
            }
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            let mut default_action: libc::sigaction = std::mem::zeroed();
            default_action.sa_sigaction = libc::SIG_DFL;
            default_action.sa_mask = empty;
            let mut ignore_action: libc::sigaction = std::mem::zeroed();
            ignore_action.sa_sigaction = libc::SIG_IGN;
            ignore_action.sa_mask = empty;
            SignalPlan {
                watched,
                empty,
                all,
                default_action,
                ignore_action,
            }
        }
    }
}

/// Everything the forked child uses: raw pointers into memory that stays valid (and
/// unmodified) in the child's copy of the address space.
struct ChildPlan {
    program: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    cwd: *const c_char,
    /// Pipe ends and files the sentinel keeps, in the order of the `FD_*` slots.
    inherited: [RawFd; SLOTS],
    signals: SignalPlan,
    /// The scenario's cgroup directory, or null.
    cgroup_dir: *const c_char,
    /// The bottom of the agent's clone stack (`AGENT_STACK` bytes).
    agent_stack: *mut u8,
    /// Container mode's namespaces, or none.
    container: ContainerPlan,
}

/// Container mode as the forked child uses it: clone flags (0 when off) and the id map
/// lines (null without a user namespace), pointing into the caller's [`Namespaces`].
struct ContainerPlan {
    clone_flags: libc::c_int,
    uid_map: *const c_char,
    gid_map: *const c_char,
}

impl ContainerPlan {
    fn new(namespaces: Option<&Namespaces>) -> Self {
        let maps = namespaces.and_then(|n| n.user_map.as_ref());
        ContainerPlan {
            clone_flags: namespaces.map_or(0, Namespaces::clone_flags),
            uid_map: maps.map_or(std::ptr::null(), |(u, _)| u.as_ptr()),
            gid_map: maps.map_or(std::ptr::null(), |(_, g)| g.as_ptr()),
        }
    }
}

/// Stack size for the agent between clone and exec: a few frames of system calls.
const AGENT_STACK: usize = 64 * 1024;

// Fixed descriptor numbers in the sentinel after remapping.
const SLOTS: usize = 7;
const FD_CONTROL: RawFd = 3;
const FD_EVENTS: RawFd = 4;
const FD_STDOUT: RawFd = 5;
const FD_STDERR: RawFd = 6;
const FD_EXEC_STATUS: RawFd = 7;
/// The agent's stdin: `/dev/null`, or the descriptor given in [`Launch::stdin`].
const FD_DEVNULL: RawFd = 8;
const FD_CGROUP: RawFd = 9;
const FIRST_FREE: RawFd = 3 + SLOTS as RawFd;
/// One past the highest signal number.
const NSIG: i32 = 65;

/// The sentinel's whole life, in the forked child (or in the fresh process the exec hook
/// turned into the sentinel). Never returns.
///
/// # Safety
///
/// Must only be called in a child just created by `fork`, with `plan` pointing into the
/// parent's (now copied) memory, or from the exec hook. Only async-signal-safe calls are
/// made.
unsafe fn sentinel_main(plan: &ChildPlan) -> ! {
    // SAFETY (whole function): each call below is a plain system call on descriptors and
    // buffers owned by this process; none allocates or takes a lock shared with the
    // threads that existed in the parent.
    unsafe {
        remap_fds(&plan.inherited);
        libc::dup2(FD_DEVNULL, 0);
        libc::dup2(FD_DEVNULL, 1);
        libc::dup2(FD_DEVNULL, 2);
        libc::setsid();
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        libc::prctl(libc::PR_SET_NAME, c"orphan-sentinel".as_ptr(), 0, 0, 0);
        // Every disposition the caller set goes back to the default (every signal is
        // still blocked, since before the fork): its handlers are not ours to run, and
        // an inherited SIGCHLD = SIG_IGN would make the kernel reap every child
        // without a word to `waitpid`.
        reset_dispositions(&plan.signals);
        libc::sigaction(
            libc::SIGPIPE,
            &plan.signals.ignore_action,
            std::ptr::null_mut(),
        );
        libc::sigprocmask(
            libc::SIG_SETMASK,
            &plan.signals.watched,
            std::ptr::null_mut(),
        );
        // The signalfd must not take one of the fixed slots (3..=9, some of them closed
        // now and reused below): move it above them.
        let raw_sigfd = libc::signalfd(
            -1,
            &plan.signals.watched,
            libc::SFD_CLOEXEC | libc::SFD_NONBLOCK,
        );
        let sigfd = if (0..FIRST_FREE).contains(&raw_sigfd) {
            let moved = libc::fcntl(raw_sigfd, libc::F_DUPFD_CLOEXEC, FIRST_FREE);
            libc::close(raw_sigfd);
            moved
        } else {
            raw_sigfd
        };
        if !plan.cgroup_dir.is_null() {
            // The scenario's cgroup is made here, not by the harness: it exists only
            // while a sentinel exists to remove it.
            libc::mkdir(plan.cgroup_dir, 0o755);
            let dir = libc::open(
                plan.cgroup_dir,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            if dir < 0 {
                report_launch_failure(STAGE_CGROUP, errno());
                exit_sentinel(plan);
            }
            if dir != FD_CGROUP {
                libc::dup3(dir, FD_CGROUP, libc::O_CLOEXEC);
                libc::close(dir);
            }
        }

        // With a cgroup, the agent is born in it (clone3 with CLONE_INTO_CGROUP): moving
        // a running process between cgroups waits for an RCU grace period (milliseconds),
        // being born there does not. That clone copies the sentinel like fork does; the
        // sentinel is small whenever it was started by exec (see `SentinelStart`).
        // Every signal blocked across the clone, as posix_spawn does; the agent resets
        // its dispositions and unblocks before its exec.
        libc::sigprocmask(libc::SIG_SETMASK, &plan.signals.all, std::ptr::null_mut());
        let mut agent = -1;
        if !plan.cgroup_dir.is_null() {
            agent = clone_into_cgroup(FD_CGROUP, plan.container.clone_flags as u64);
            if agent == 0 {
                agent_main(plan, true);
            }
        }
        if agent < 0 {
            // Otherwise (no cgroup, or a kernel without clone3) like posix_spawn: a child
            // that shares the sentinel's memory (CLONE_VM) on a stack of its own, while
            // the sentinel waits (CLONE_VFORK) until it has exec'd or failed. No page
            // table is copied, so the cost does not grow with the test process's size.
            // Container mode adds its CLONE_NEW* flags (the kernel refuses them only with
            // CLONE_THREAD, and CLONE_NEWUSER with CLONE_FS, neither used here).
            let stack_top = plan.agent_stack.wrapping_add(AGENT_STACK) as usize & !15;
            agent = libc::clone(
                agent_entry,
                stack_top as *mut libc::c_void,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD | plan.container.clone_flags,
                (plan as *const ChildPlan).cast_mut().cast(),
            );
        }
        if agent < 0 {
            report_launch_failure(STAGE_FORK, errno());
            exit_sentinel(plan);
        }
        libc::sigprocmask(
            libc::SIG_SETMASK,
            &plan.signals.watched,
            std::ptr::null_mut(),
        );
        // Like a shell job: the agent leads its own group. Both sides call setpgid, so
        // the group exists before either of them goes on.
        libc::setpgid(agent, agent);
        libc::close(FD_STDOUT);
        libc::close(FD_STDERR);
        libc::close(FD_EXEC_STATUS);
        libc::close(FD_DEVNULL);
        if !plan.cgroup_dir.is_null() {
            libc::close(FD_CGROUP);
        }
        let raw_pidfd = libc::syscall(libc::SYS_pidfd_open, agent, 0) as RawFd;
        let pidfd_errno = if raw_pidfd < 0 { errno() } else { 0 };
        emit(EV_AGENT_STARTED, agent, pidfd_errno, 0);

        let mut tree = Tree {
            agent,
            agent_pidfd: raw_pidfd,
            agent_reaped: false,
            empty: false,
            killed: KilledSet::new(),
        };
        loop {
            tree.reap_available();
            let mut fds = [
                libc::pollfd {
                    fd: FD_CONTROL,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: sigfd,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // Without a signalfd (it could not be created) SIGCHLD cannot wake the loop:
            // look for exits every 10 ms instead of never.
            let n = libc::poll(fds.as_mut_ptr(), 2, if sigfd < 0 { 10 } else { -1 });
            if n < 0 {
                continue;
            }
            if fds[1].revents != 0 && drain_signalfd(sigfd) {
                // Someone asked the sentinel itself to stop: do not orphan the tree.
                tree.kill_all(sigfd);
                exit_sentinel(plan);
            }
            if fds[0].revents != 0 {
                let mut cmd = [0u8; CMD_LEN];
                if !read_exact(FD_CONTROL, &mut cmd) {
                    // Lifeline: the harness is gone.
                    tree.kill_all(sigfd);
                    exit_sentinel(plan);
                }
                let kind = u32::from_ne_bytes([cmd[0], cmd[1], cmd[2], cmd[3]]);
                let arg = i32::from_ne_bytes([cmd[4], cmd[5], cmd[6], cmd[7]]);
                match kind {
                    CMD_SIGNAL_AGENT => tree.signal_agent(arg),
                    CMD_SIGNAL_GROUP => tree.signal_group(arg),
                    CMD_KILL_TREE => tree.kill_all(sigfd),
                    _ => {}
                }
            }
        }
    }
}

/// Ends the sentinel once its tree is empty: removes the scenario's cgroup (empty by
/// now) and exits.
fn exit_sentinel(plan: &ChildPlan) -> ! {
    // SAFETY: rmdir of a C string prepared before fork; poll with no descriptors is a
    // plain timed wait; _exit never returns.
    unsafe {
        if !plan.cgroup_dir.is_null() {
            // The kernel may still be finishing the last exits (EBUSY for a moment after
            // the final reap): try again, 1 ms doubling to 64 ms, 127 ms in all.
            let mut wait_ms = 1;
            while libc::rmdir(plan.cgroup_dir) != 0 && errno() == libc::EBUSY && wait_ms <= 64 {
                libc::poll(std::ptr::null_mut(), 0, wait_ms);
                wait_ms *= 2;
            }
        }
        libc::_exit(0)
    }
}

/// Entry point of the agent's `clone`: `arg` is the sentinel's `ChildPlan`.
extern "C" fn agent_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `&ChildPlan` the sentinel passed to `clone`; the sentinel is
    // suspended (CLONE_VFORK) until this child execs or exits, so the plan stays valid
    // and unchanged.
    unsafe { agent_main(&*(arg as *const ChildPlan), false) }
}

/// `clone3(CLONE_INTO_CGROUP)` with fork semantics (no shared memory, same stack):
/// returns the child's pid in the parent, 0 in the child, or -1 when the kernel cannot
/// (no clone3, or an unusable cgroup). `namespace_flags` are container mode's
/// `CLONE_NEW*` flags, or 0.
///
/// # Safety
///
/// Post-fork only, in the single-threaded sentinel: the child continues on a copy of the
/// caller's stack and must only make async-signal-safe calls until exec.
unsafe fn clone_into_cgroup(cgroup_fd: RawFd, namespace_flags: u64) -> libc::pid_t {
    /// `struct clone_args` of linux/sched.h (version 2, with `cgroup`).
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP | namespace_flags,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgroup_fd as u64,
    };
    // SAFETY: the kernel reads `args` (a valid, fully initialised struct of the size
    // passed); without CLONE_VM the child gets its own copy of memory and stack.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r < 0 {
        -1
    } else {
        r as libc::pid_t
    }
}

/// The agent's side of the clone: join the group (and cgroup), wire stdio, reset
/// signals, exec. Never returns.
///
/// # Safety
///
/// Only in the child of the sentinel's `clone(CLONE_VM | CLONE_VFORK)`: it shares the
/// sentinel's memory, so it writes nothing but its own stack and makes async-signal-safe
/// system calls only. Signal dispositions and descriptors are its own copies (no
/// CLONE_SIGHAND, no CLONE_FILES).
unsafe fn agent_main(plan: &ChildPlan, born_in_cgroup: bool) -> ! {
    // SAFETY (whole function): plain system calls on this process's own descriptors and
    // on the C strings prepared before the first fork.
    unsafe {
        libc::setpgid(0, 0);
        if !plan.cgroup_dir.is_null() && !born_in_cgroup {
            let procs = libc::openat(
                FD_CGROUP,
                c"cgroup.procs".as_ptr(),
                libc::O_WRONLY | libc::O_CLOEXEC,
            );
            let zero = b"0";
            if procs < 0 || libc::write(procs, zero.as_ptr().cast(), 1) != 1 {
                report_launch_failure(STAGE_CGROUP, errno());
                libc::_exit(127);
            }
            libc::close(procs);
        }
        if plan.container.clone_flags != 0 {
            let err = enter_container(&plan.container);
            if err != 0 {
                report_launch_failure(STAGE_NAMESPACE, err);
                libc::_exit(127);
            }
        }
        libc::dup2(FD_DEVNULL, 0);
        libc::dup2(FD_STDOUT, 1);
        libc::dup2(FD_STDERR, 2);
        // Handlers are reset by exec, but ignored signals are inherited: reset them all,
        // so the agent starts as it would from a shell. Every signal is blocked until
        // then (since before the clone).
        reset_dispositions(&plan.signals);
        libc::sigprocmask(libc::SIG_SETMASK, &plan.signals.empty, std::ptr::null_mut());
        if !plan.cwd.is_null() && libc::chdir(plan.cwd) != 0 {
            report_launch_failure(STAGE_CHDIR, errno());
            libc::_exit(127);
        }
        libc::execve(plan.program, plan.argv, plan.envp);
        report_launch_failure(STAGE_EXEC, errno());
        libc::_exit(127)
    }
}

/// Container mode, in the agent just cloned into its new namespaces: map the caller's
/// ids (user namespace only), make every mount private (so nothing below propagates
/// back to the host's mount table), and mount a fresh `/proc` for the new PID namespace.
/// Returns 0 or the errno of the step that failed.
///
/// # Safety
///
/// Post-clone only, in the agent; plain system calls on C strings prepared before the
/// first fork (`open`, `write`, `close`, `mount`, `strlen`).
unsafe fn enter_container(plan: &ContainerPlan) -> i32 {
    // SAFETY (whole function): every pointer is a NUL-terminated string prepared before
    // fork, or a constant.
    unsafe {
        let write_file = |path: &CStr, text: *const c_char| -> i32 {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return errno();
            }
            let len = libc::strlen(text);
            let n = libc::write(fd, text.cast(), len);
            let err = if n == len as isize { 0 } else { errno() };
            libc::close(fd);
            err
        };
        if !plan.uid_map.is_null() {
            // `/proc/self` is still the host's procfs here, which names this process. An
            // unprivileged process may map only its own ids, and its gids only once
            // setgroups is denied.
            let err = write_file(c"/proc/self/setgroups", c"deny".as_ptr());
            if err != 0 && err != libc::ENOENT {
                return err;
            }
            for (path, map) in [
                (c"/proc/self/uid_map", plan.uid_map),
                (c"/proc/self/gid_map", plan.gid_map),
            ] {
                let err = write_file(path, map);
                if err != 0 {
                    return err;
                }
            }
        }
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return errno();
        }
        if libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        ) != 0
        {
            return errno();
        }
        0
    }
}

/// How a process ended, read through a pidfd opened while it was alive: its raw wait
/// status, once it has exited and been reaped by whoever its parent was. This works
/// for any process, not only the sentinel's children (`PIDFD_GET_INFO` with
/// `PIDFD_INFO_EXIT`, Linux 6.15), which is how the report tells a process inside a
/// container that exited on its own from one the namespace's SIGKILL took. `None` while
/// it lives, or on an older kernel.
pub(crate) fn pidfd_exit_status(pidfd: &OwnedFd) -> Option<i32> {
    /// `struct pidfd_info` of linux/pidfd.h, version 0 (64 bytes).
    #[repr(C)]
    #[derive(Default)]
    struct PidfdInfo {
        mask: u64,
        cgroupid: u64,
        pid: u32,
        tgid: u32,
        ppid: u32,
        ids: [u32; 8],
        exit_code: i32,
    }
    const PIDFD_INFO_EXIT: u64 = 1 << 3;
    // _IOWR(PIDFS_IOCTL_MAGIC = 0xFF, 11, struct pidfd_info)
    const PIDFD_GET_INFO: libc::c_ulong = (3 << 30) | (64 << 16) | (0xFF << 8) | 11;
    const _: () = assert!(std::mem::size_of::<PidfdInfo>() == 64);
    let mut info = PidfdInfo {
        mask: PIDFD_INFO_EXIT,
        ..PidfdInfo::default()
    };
    // SAFETY: the ioctl reads and writes at most `size_of::<PidfdInfo>()` bytes (the
    // size encoded in the request) of a local, fully initialised struct.
    let r = unsafe { libc::ioctl(pidfd.as_raw_fd(), PIDFD_GET_INFO, &mut info) };
    (r == 0 && info.mask & PIDFD_INFO_EXIT != 0).then_some(info.exit_code)
}

/// Sets every signal's disposition to the default (SIGKILL and SIGSTOP have no other).
///
/// # Safety
///
/// Post-fork safe: `sigaction` only, with an action prepared before the fork.
unsafe fn reset_dispositions(signals: &SignalPlan) {
    for sig in 1..NSIG {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            // SAFETY: `sigaction` with a valid, fully initialised action; the C library
            // refuses (EINVAL) the numbers it reserves for itself, which is fine.
            unsafe { libc::sigaction(sig, &signals.default_action, std::ptr::null_mut()) };
        }
    }
}

/// What the sentinel knows about its subtree.
struct Tree {
    agent: i32,
    agent_pidfd: RawFd,
    agent_reaped: bool,
    empty: bool,
    /// Children the cleanup loop has SIGKILLed and not yet reaped.
    killed: KilledSet,
}

impl Tree {
    /// Reaps every child that has exited, reporting each, and `Empty` on `ECHILD`.
    fn reap_available(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: `waitpid` writes the status into a local.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
            if pid > 0 {
                // A reaped pid may be reused by a new orphan: that one is not killed yet.
                self.killed.remove(pid);
                if pid == self.agent {
                    self.agent_reaped = true;
                    if self.agent_pidfd >= 0 {
                        // SAFETY: closing our own pidfd, once.
                        unsafe { libc::close(self.agent_pidfd) };
                        self.agent_pidfd = -1;
                    }
                }
                emit(EV_EXITED, pid, status, 0);
                continue;
            }
            if pid < 0 {
                let e = errno();
                if e == libc::EINTR {
                    continue;
                }
                if e == libc::ECHILD && !self.empty {
                    self.empty = true;
                    emit(EV_EMPTY, 0, 0, 0);
                }
            }
            return;
        }
    }

    fn signal_agent(&mut self, sig: i32) {
        self.reap_available();
        let result = if self.agent_reaped {
            libc::ESRCH
        } else if self.agent_pidfd >= 0 {
            // SAFETY: the pidfd refers to our unreaped child; no pointers are passed.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    self.agent_pidfd,
                    sig,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            if r == 0 {
                0
            } else {
                errno()
            }
        } else {
            // No pidfd (an old kernel): the pid of an unreaped child is still safe.
            // SAFETY: plain syscall.
            let r = unsafe { libc::kill(self.agent, sig) };
            if r == 0 {
                0
            } else {
                errno()
            }
        };
        emit(EV_SIGNALLED, self.agent, sig, result);
    }

    fn signal_group(&mut self, sig: i32) {
        // Do not reap first: while the agent is unreaped (even as a zombie) its pid, the
        // group's id, cannot be reused, so the group is the agent's group.
        let result = if self.agent_reaped {
            libc::ESRCH
        } else {
            // SAFETY: plain syscall; the target is the agent's own group (negative id).
            let r = unsafe { libc::kill(-self.agent, sig) };
            if r == 0 {
                0
            } else {
                errno()
            }
        };
        emit(EV_SIGNALLED, -self.agent, sig, result);
    }

    /// SIGKILL every direct child, reap, repeat until `ECHILD`.
    fn kill_all(&mut self, sigfd: RawFd) {
        if !self.agent_reaped {
            // One atomic blow for everyone still in the agent's group (the group id is
            // pinned while the agent is unreaped); the loop below gets the escapers.
            // SAFETY: plain syscall on the agent's own group.
            unsafe { libc::kill(-self.agent, libc::SIGKILL) };
        }
        let mut wait_ms = KILL_WAIT_MIN_MS;
        loop {
            self.reap_available();
            if self.empty {
                return;
            }
            let new_kills = kill_direct_children(&mut self.killed);
            self.reap_available();
            if self.empty {
                return;
            }
            // Wait for the next SIGCHLD, bounded in case a child was forked (or an orphan
            // reparented to us) while we read the list and so was not yet in it. The
            // bound backs off while nothing new turns up: a child that cannot die yet
            // (uninterruptible sleep, held by a tracer) costs a few wakeups a second,
            // not fifty, and is killed and reported once.
            if new_kills {
                wait_ms = KILL_WAIT_MIN_MS;
            }
            let mut fds = [libc::pollfd {
                fd: sigfd,
                events: libc::POLLIN,
                revents: 0,
            }];
            // SAFETY: poll on a local array; read drains our own signalfd.
            unsafe { libc::poll(fds.as_mut_ptr(), 1, wait_ms) };
            drain_signalfd(sigfd);
            wait_ms = (wait_ms * 2).min(KILL_WAIT_MAX_MS);
        }
    }
}

/// The cleanup loop's first wait for a SIGCHLD, and the longest, in milliseconds.
const KILL_WAIT_MIN_MS: i32 = 5;
const KILL_WAIT_MAX_MS: i32 = 500;

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

/// SIGKILLs every direct child not yet killed, reporting each once; true when there
/// was one.
///
/// The children come from `/proc/thread-self/children`, or, on a kernel without it
/// (`CONFIG_PROC_CHILDREN` off), from a scan of `/proc` for processes whose parent is
/// the sentinel. Either way they are our unreaped children (nobody else may reap
/// them), so none of them can belong to another process by the time of the `kill`.
/// A pending SIGKILL cannot be undone, so killing a pid again until it is reaped would
/// change nothing.
fn kill_direct_children(killed: &mut KilledSet) -> bool {
    let mut any = false;
    let mut kill = |pid: i32| {
        if pid > 0 && !killed.contains(pid) {
            // SAFETY: plain syscall on our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // A full table (a storm of thousands) still kills, but reports no more.
            if killed.insert(pid) {
                emit(EV_KILLED, pid, 0, 0);
            }
            any = true;
        }
    };
    // SAFETY: open/read/close on a constant path into a stack buffer.
    unsafe {
        let fd = libc::open(
            c"/proc/thread-self/children".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            for_each_child_by_scan(libc::getpid(), &mut kill);
            return any;
        }
        let mut buf = [0u8; 4096];
        let mut current: i32 = 0;
        let mut in_number = false;
        loop {
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            if n <= 0 {
                break;
            }
            for &b in buf.iter().take(n as usize) {
                if b.is_ascii_digit() {
                    current = current.wrapping_mul(10).wrapping_add((b - b'0') as i32);
                    in_number = true;
                } else if in_number {
                    kill(current);
                    current = 0;
                    in_number = false;
                }
            }
        }
        if in_number {
            kill(current);
        }
        libc::close(fd);
    }
    any
}

/// Calls `f` with every process whose parent is `parent`, found by reading
/// `/proc/<pid>/stat` for each entry of `/proc` (`getdents64`: no allocation).
fn for_each_child_by_scan(parent: i32, f: &mut impl FnMut(i32)) {
    // SAFETY: open/getdents64/close on our own descriptor, into a stack buffer whose
    // length is passed; the records are read within the length the kernel returned.
    unsafe {
        let dir = libc::open(
            c"/proc".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if dir < 0 {
            return;
        }
        let mut buf = [0u8; 8192];
        loop {
            let n = libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), buf.len());
            if n <= 0 {
                break;
            }
            let mut off = 0usize;
            while off + 19 < n as usize {
                // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name.
                let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
                if reclen == 0 {
                    break;
                }
                let name = &buf[off + 19..(off + reclen).min(n as usize)];
                let mut pid: i32 = 0;
                let mut digits = 0;
                for &b in name.iter().take_while(|b| **b != 0) {
                    if !b.is_ascii_digit() {
                        digits = 0;
                        break;
                    }
                    pid = pid.wrapping_mul(10).wrapping_add((b - b'0') as i32);
                    digits += 1;
                }
                if digits > 0 && parent_of(pid) == parent {
                    f(pid);
                }
                off += reclen;
            }
        }
        libc::close(dir);
    }
}

/// The parent pid in `/proc/<pid>/stat` (the field after the state, which follows the
/// last `)`: the command name may contain one), or 0.
fn parent_of(pid: i32) -> i32 {
    let mut path = [0u8; 32];
    let prefix = b"/proc/";
    path[..prefix.len()].copy_from_slice(prefix);
    let mut len = prefix.len();
    let mut digits = [0u8; 10];
    let mut n = 0;
    let mut rest = pid as u32;
    loop {
        digits[n] = b'0' + (rest % 10) as u8;
        n += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for i in (0..n).rev() {
        path[len] = digits[i];
        len += 1;
    }
    path[len..len + 5].copy_from_slice(b"/stat");
    let mut stat = [0u8; 1024];
    // SAFETY: open of a NUL-terminated stack path (the rest of `path` is zeros), read
    // into a stack buffer of the given length, close of our own descriptor.
    let got = unsafe {
        let fd = libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return 0;
        }
        let got = libc::read(fd, stat.as_mut_ptr().cast(), stat.len());
        libc::close(fd);
        got
    };
    if got <= 0 {
        return 0;
    }
    let stat = &stat[..got as usize];
    let Some(close) = stat.iter().rposition(|b| *b == b')') else {
        return 0;
    };
    // ") S 1234 ..."
    let mut ppid = 0i32;
    for &b in stat.iter().skip(close + 4) {
        if !b.is_ascii_digit() {
            break;
        }
        ppid = ppid.wrapping_mul(10).wrapping_add((b - b'0') as i32);
    }
    ppid
}

/// Drains the signalfd; true when SIGTERM, SIGINT or SIGHUP was among the signals.
fn drain_signalfd(sigfd: RawFd) -> bool {
    const INFO: usize = std::mem::size_of::<libc::signalfd_siginfo>();
    let mut stop = false;
    let mut buf = [0u8; INFO * 8];
    loop {
        // SAFETY: read into a stack buffer of the given length.
        let n = unsafe { libc::read(sigfd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return stop;
        }
        let mut off = 0;
        while off + INFO <= n as usize {
            let signo = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]);
            if signo != libc::SIGCHLD as u32 {
                stop = true;
            }
            off += INFO;
        }
    }
}

/// Writes one event record to the harness. A failed write (the harness is gone) is
/// ignored: the lifeline EOF will follow.
fn emit(kind: u32, pid: i32, a: i32, b: i32) {
    let mut buf = [0u8; EVENT_LEN];
    buf[0..4].copy_from_slice(&kind.to_ne_bytes());
    buf[4..8].copy_from_slice(&pid.to_ne_bytes());
    buf[8..12].copy_from_slice(&a.to_ne_bytes());
    buf[12..16].copy_from_slice(&b.to_ne_bytes());
    buf[16..24].copy_from_slice(&monotonic_ns().to_ne_bytes());
    write_all_or_give_up(FD_EVENTS, &buf);
}

/// Writes a record (< `PIPE_BUF`, so atomic) to one of our pipes, again when a signal
/// interrupted the write; any other failure (the reader is gone) gives up.
fn write_all_or_give_up(fd: RawFd, buf: &[u8]) {
    loop {
        // SAFETY: write of a caller's buffer of the given length to our own pipe.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n >= 0 || errno() != libc::EINTR {
            return;
        }
    }
}

/// Tells the harness at which stage the agent's launch failed.
fn report_launch_failure(stage: u32, err: i32) {
    let mut buf = [0u8; 8];
    buf[0..4].copy_from_slice(&stage.to_ne_bytes());
    buf[4..8].copy_from_slice(&err.to_ne_bytes());
    write_all_or_give_up(FD_EXEC_STATUS, &buf);
}

fn read_exact(fd: RawFd, buf: &mut [u8]) -> bool {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: read into the unfilled part of a caller's buffer.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n == 0 {
            return false;
        }
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return false;
        }
        got += n as usize;
    }
    true
}

/// Moves the inherited descriptors to the fixed slots 3.., closes every other
/// descriptor above 2. Slots without a descriptor are closed too.
///
/// # Safety
///
/// Post-fork only; plain system calls.
unsafe fn remap_fds(inherited: &[RawFd; SLOTS]) {
    // SAFETY (whole function): fcntl/dup3/close on this process's descriptors.
    unsafe {
        // First copy every source above both the sources and the slots, so that filling
        // a slot can never overwrite a source that is still to be moved.
        let mut floor = FIRST_FREE;
        for &fd in inherited {
            if fd >= floor {
                floor = fd + 1;
            }
        }
        let mut high = [-1 as RawFd; SLOTS];
        for (i, &fd) in inherited.iter().enumerate() {
            if fd >= 0 {
                high[i] = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, floor);
                if high[i] < 0 {
                    libc::_exit(126);
                }
            }
        }
        for (i, &fd) in high.iter().enumerate() {
            let slot = 3 + i as RawFd;
            if fd >= 0 {
                libc::dup3(fd, slot, libc::O_CLOEXEC);
            } else {
                libc::close(slot);
            }
        }
        if libc::syscall(libc::SYS_close_range, FIRST_FREE as u32, u32::MAX, 0) != 0 {
            let mut limit: libc::rlimit = std::mem::zeroed();
            let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                limit.rlim_cur.min(1 << 20) as RawFd
            } else {
                1024
            };
            for fd in FIRST_FREE..max {
                libc::close(fd);
            }
        }
    }
}

fn errno() -> i32 {
    // SAFETY: reads this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock `std::time::Instant` uses on Linux.
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes into a local timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_the_wire_format() {
        let mut buf = [0u8; EVENT_LEN];
        buf[0..4].copy_from_slice(&EV_SIGNALLED.to_ne_bytes());
        buf[4..8].copy_from_slice(&(-42i32).to_ne_bytes());
        buf[8..12].copy_from_slice(&15i32.to_ne_bytes());
        buf[12..16].copy_from_slice(&3i32.to_ne_bytes());
        buf[16..24].copy_from_slice(&7u64.to_ne_bytes());
        assert_eq!(
            Event::decode(&buf),
            Some((
                Event::Signalled {
                    target: -42,
                    signal: 15,
                    errno: 3
                },
                7
            ))
        );
        buf[0..4].copy_from_slice(&99u32.to_ne_bytes());
        assert_eq!(Event::decode(&buf), None);
    }

    /// The write end of a pipe an atfork child handler writes to; -1 until set.
    static ATFORK_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

    extern "C" fn atfork_child() {
        let fd = ATFORK_PIPE.load(std::sync::atomic::Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: write of a static byte to a pipe; async-signal-safe.
            unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) };
        }
    }

    #[test]
    fn no_atfork_handler_of_another_library_runs_in_the_sentinel() {
        let (r, w) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).unwrap();
        ATFORK_PIPE.store(w.as_raw_fd(), std::sync::atomic::Ordering::SeqCst);
        // SAFETY: registers a handler that only writes to a pipe; it stays registered
        // for this test process, harmless to every other fork.
        unsafe { libc::pthread_atfork(None, None, Some(atfork_child)) };
        let launch = Launch {
            program: c"/bin/true".into(),
            argv: vec![c"true".into()],
            envp: Vec::new(),
            cwd: None,
            cgroup_dir: None,
            namespaces: None,
            stdin: None,
            inherit_output: false,
        };
        let spawned = spawn(
            &launch,
            SentinelStart::Fork,
            Instant::now() + Duration::from_secs(30),
        )
        .expect("spawn")
        .map_err(|(stage, errno)| format!("{stage:?} {errno}"))
        .expect("the agent started");
        drop(spawned);
        ATFORK_PIPE.store(-1, std::sync::atomic::Ordering::SeqCst);
        let mut byte = [0u8; 1];
        assert!(
            read(&r, &mut byte).is_err(),
            "an atfork child handler ran in the sentinel"
        );
        drop(w);
    }

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

    #[test]
    fn the_proc_scan_finds_the_same_children_as_the_children_file() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let me = std::process::id() as i32;
        let mut found: Vec<i32> = Vec::new();
        for_each_child_by_scan(me, &mut |pid| found.push(pid));
        let listed = crate::procs::children(me);
        let _ = child.kill();
        let _ = child.wait();
        // Other tests start children meanwhile: compare on the one we know.
        assert!(found.contains(&(child.id() as i32)), "{found:?}");
        assert!(listed.contains(&(child.id() as i32)), "{listed:?}");
        assert!(!found.contains(&me));
        assert_eq!(parent_of(me), std::os::unix::process::parent_id() as i32);
    }

    #[test]
    fn a_pidfd_tells_how_its_process_ended_once_reaped() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read _; exit 3"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        let pid = Pid::from_raw(child.id() as i32).expect("a pid");
        let pidfd = pidfd_open(pid, PidfdFlags::empty()).expect("pidfd");
        assert_eq!(pidfd_exit_status(&pidfd), None, "alive: no exit status");
        drop(child.stdin.take());
        child.wait().expect("reaped");
        // PIDFD_INFO_EXIT exists from Linux 6.15 on; before that the answer is None.
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut parts = release
            .split(['.', '-'])
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        let expected = (version >= (6, 15)).then_some(3 << 8);
        assert_eq!(pidfd_exit_status(&pidfd), expected, "kernel {release}");
    }

    #[test]
    fn event_times_use_the_monotonic_clock() {
        // Sentinel timestamps are compared with `Instant`, which is CLOCK_MONOTONIC:
        // reading any other clock would put them days or decades away.
        let ts = |t: rustix::time::Timespec| t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64;
        let before = ts(rustix::time::clock_gettime(
            rustix::time::ClockId::Monotonic,
        ));
        let ours = monotonic_ns();
        let after = ts(rustix::time::clock_gettime(
            rustix::time::ClockId::Monotonic,
        ));
        assert!(
            before <= ours && ours <= after,
            "{before} <= {ours} <= {after}"
        );
    }
}
