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
//! touches `std` I/O. The calls it makes are exactly: `fcntl(F_DUPFD_CLOEXEC)`, `dup3`,
//! `close_range` (or `close`), `getrlimit`, `setsid`, `prctl`, `sigaction`,
//! `sigprocmask`, `signalfd`, `clone3` or `clone` (the agent), `openat`,
//! `mkdir`, `setpgid`, `write`, `read`, `chdir`, `execve`, `pidfd_open`, `pidfd_send_signal`,
//! `kill`, `waitpid`, `poll`, `open`, `clock_gettime`, `rmdir` and `_exit`.
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
use std::time::Duration;

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
    /// The agent's stdin when it is not `/dev/null`: the read end of the harness's pipe,
    /// or a copy of the caller's own stdin.
    pub stdin: Option<OwnedFd>,
    /// The agent writes to the caller's own stdout and stderr instead of pipes the
    /// tracker reads (whose read ends are then at end of file from the start).
    pub inherit_output: bool,
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
}

impl LaunchStage {
    fn from_code(code: u32) -> Self {
        match code {
            STAGE_CGROUP => LaunchStage::JoinCgroup,
            STAGE_CHDIR => LaunchStage::Chdir,
            STAGE_FORK => LaunchStage::ForkAgent,
            _ => LaunchStage::Exec,
        }
    }
}

const STAGE_CGROUP: u32 = 1;
const STAGE_CHDIR: u32 = 2;
const STAGE_EXEC: u32 = 3;
const STAGE_FORK: u32 = 4;

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

/// A command from the harness to the sentinel.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Command {
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
    pub(crate) fn send(&self, command: Command) -> io::Result<()> {
        let (kind, arg) = match command {
            Command::SignalAgent(sig) => (CMD_SIGNAL_AGENT, sig),
            Command::SignalGroup(sig) => (CMD_SIGNAL_GROUP, sig),
            Command::KillTree => (CMD_KILL_TREE, 0),
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
/// `exec` succeeded or failed.
///
/// On `Err((stage, errno))` the sentinel has already been told to clean up; dropping the
/// handle inside finishes the job.
pub(crate) fn spawn(
    launch: &Launch,
    start: SentinelStart,
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
    };

    // An exec that cannot start (no /proc/self/exe, a noexec mount) falls back to fork.
    let execed = if start.resolve() == SentinelStart::Exec {
        spawn_by_exec(launch, &plan.inherited).ok()
    } else {
        None
    };
    let pid = if let Some(pid) = execed {
        pid
    } else {
        // SAFETY: `fork` is called with every resource the child needs already prepared
        // in `plan` (which borrows `launch`, `argv`, `envp` and `agent_stack`, alive
        // until after `fork` returns in both processes). The child only runs
        // `sentinel_main`, which makes async-signal-safe system calls and never returns
        // (it ends in `_exit`).
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
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

    // Blocks until the agent's exec closes its copy of the write end (success) or the
    // agent reports the stage and errno at which it failed.
    let mut status = [0u8; 8];
    let mut got = 0;
    while got < status.len() {
        match retry_on_intr(|| read(&xs_r, &mut status[got..])) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(e.into()),
        }
    }
    if got == status.len() {
        let stage = u32::from_ne_bytes([status[0], status[1], status[2], status[3]]);
        let errno = i32::from_ne_bytes([status[4], status[5], status[6], status[7]]);
        let _ = sentinel.send(Command::KillTree);
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

/// First argument of a sentinel started by `exec`; a program without the hook (which
/// cannot happen for a binary linking this crate) rejects it as an unknown option.
const EXEC_FLAG: &CStr = c"--orphan-check-sentinel";
/// `ORPHAN_CHECK_SENTINEL=<version>` in the exec'd sentinel's environment: the wire
/// format of its arguments below.
const EXEC_ENV: &CStr = c"ORPHAN_CHECK_SENTINEL=1";

/// Starts `/proc/self/exe` in sentinel mode with `posix_spawn` (a `vfork`-like clone: no
/// page tables copied). Its descriptors land in the fixed slots; the agent's launch
/// travels as arguments:
/// `[name, EXEC_FLAG, program, cwd, cgroup dir, argc, argv..., envp...]`.
fn spawn_by_exec(launch: &Launch, inherited: &[RawFd; SLOTS]) -> io::Result<i32> {
    // Copy every descriptor above the slots first, so that no dup2 action overwrites a
    // descriptor a later action still reads.
    let mut high = Vec::with_capacity(SLOTS);
    for &fd in inherited {
        if fd >= 0 {
            // SAFETY: `fd` is an open descriptor owned by `launch` or `spawn` for the
            // whole call; we only duplicate it.
            let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            high.push(Some(rustix::io::fcntl_dupfd_cloexec(borrowed, FIRST_FREE)?));
        } else {
            high.push(None);
        }
    }
    let text = |c: &Option<CString>| c.clone().unwrap_or_default();
    let mut args: Vec<CString> = vec![
        c"orphan-sentinel".into(),
        EXEC_FLAG.into(),
        launch.program.clone(),
        text(&launch.cwd),
        text(&launch.cgroup_dir),
        CString::new(launch.argv.len().to_string()).expect("digits"),
    ];
    args.extend(launch.argv.iter().cloned());
    args.extend(launch.envp.iter().cloned());
    let arg_ptrs: Vec<*mut c_char> = args
        .iter()
        .map(|a| a.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();
    let env_ptrs: [*mut c_char; 2] = [EXEC_ENV.as_ptr().cast_mut(), std::ptr::null_mut()];

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
        if argc < 6 || argv.is_null() || envp.is_null() {
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
        // A fresh, single-threaded process: allocating here is fine.
        let Some(agent_argc) = arg(5).to_str().ok().and_then(|n| n.parse::<usize>().ok()) else {
            libc::_exit(126);
        };
        let argc = argc as usize;
        if 6 + agent_argc > argc {
            libc::_exit(126);
        }
        let optional = |i: usize| {
            if arg(i).is_empty() {
                std::ptr::null()
            } else {
                *argv.add(i)
            }
        };
        let mut agent_argv: Vec<*const c_char> =
            (6..6 + agent_argc).map(|i| *argv.add(i)).collect();
        agent_argv.push(std::ptr::null());
        let mut agent_envp: Vec<*const c_char> =
            (6 + agent_argc..argc).map(|i| *argv.add(i)).collect();
        agent_envp.push(std::ptr::null());
        let mut agent_stack = vec![0u8; AGENT_STACK];
        let cgroup_dir = optional(4);
        let plan = ChildPlan {
            program: *argv.add(2),
            argv: agent_argv.as_ptr(),
            envp: agent_envp.as_ptr(),
            cwd: optional(3),
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
            let mut default_action: libc::sigaction = std::mem::zeroed();
            default_action.sa_sigaction = libc::SIG_DFL;
            default_action.sa_mask = empty;
            let mut ignore_action: libc::sigaction = std::mem::zeroed();
            ignore_action.sa_sigaction = libc::SIG_IGN;
            ignore_action.sa_mask = empty;
            SignalPlan {
                watched,
                empty,
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
        let mut agent = -1;
        if !plan.cgroup_dir.is_null() {
            agent = clone_into_cgroup(FD_CGROUP);
            if agent == 0 {
                agent_main(plan, true);
            }
        }
        if agent < 0 {
            // Otherwise (no cgroup, or a kernel without clone3) like posix_spawn: a child
            // that shares the sentinel's memory (CLONE_VM) on a stack of its own, while
            // the sentinel waits (CLONE_VFORK) until it has exec'd or failed. No page
            // table is copied, so the cost does not grow with the test process's size.
            let stack_top = plan.agent_stack.wrapping_add(AGENT_STACK) as usize & !15;
            agent = libc::clone(
                agent_entry,
                stack_top as *mut libc::c_void,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                (plan as *const ChildPlan).cast_mut().cast(),
            );
        }
        if agent < 0 {
            report_launch_failure(STAGE_FORK, errno());
            libc::_exit(1);
        }
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
    // SAFETY: rmdir of a C string prepared before fork; _exit never returns.
    unsafe {
        if !plan.cgroup_dir.is_null() {
            libc::rmdir(plan.cgroup_dir);
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
/// (no clone3, or an unusable cgroup).
///
/// # Safety
///
/// Post-fork only, in the single-threaded sentinel: the child continues on a copy of the
/// caller's stack and must only make async-signal-safe calls until exec.
unsafe fn clone_into_cgroup(cgroup_fd: RawFd) -> libc::pid_t {
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
        flags: CLONE_INTO_CGROUP,
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
        libc::dup2(FD_DEVNULL, 0);
        libc::dup2(FD_STDOUT, 1);
        libc::dup2(FD_STDERR, 2);
        // Handlers are reset by exec, but ignored signals are inherited: reset them all,
        // so the agent starts as it would from a shell.
        for sig in 1..NSIG {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::sigaction(sig, &plan.signals.default_action, std::ptr::null_mut());
            }
        }
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

/// What the sentinel knows about its subtree.
struct Tree {
    agent: i32,
    agent_pidfd: RawFd,
    agent_reaped: bool,
    empty: bool,
}

impl Tree {
    /// Reaps every child that has exited, reporting each, and `Empty` on `ECHILD`.
    fn reap_available(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: `waitpid` writes the status into a local.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
            if pid > 0 {
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
        loop {
            self.reap_available();
            if self.empty {
                return;
            }
            kill_direct_children();
            self.reap_available();
            if self.empty {
                return;
            }
            // Wait for the next SIGCHLD (bounded, in case a child was forked while we
            // read the list and so was not yet in it).
            let mut fds = [libc::pollfd {
                fd: sigfd,
                events: libc::POLLIN,
                revents: 0,
            }];
            // SAFETY: poll on a local array; read drains our own signalfd.
            unsafe { libc::poll(fds.as_mut_ptr(), 1, 20) };
            drain_signalfd(sigfd);
        }
    }
}

/// Reads `/proc/thread-self/children` and SIGKILLs every pid in it, reporting each.
///
/// The listed pids are our unreaped children (nobody else may reap them), so none of
/// them can belong to another process by the time of the `kill`.
fn kill_direct_children() {
    // SAFETY: open/read/close on a constant path into a stack buffer.
    unsafe {
        let fd = libc::open(
            c"/proc/thread-self/children".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return;
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
                    kill_child(current);
                    current = 0;
                    in_number = false;
                }
            }
        }
        if in_number {
            kill_child(current);
        }
        libc::close(fd);
    }
}

fn kill_child(pid: i32) {
    if pid > 0 {
        // SAFETY: plain syscall on our own unreaped child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        emit(EV_KILLED, pid, 0, 0);
    }
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
    // SAFETY: write of a stack buffer to our own pipe; atomic (< PIPE_BUF).
    unsafe { libc::write(FD_EVENTS, buf.as_ptr().cast(), EVENT_LEN) };
}

/// Tells the harness at which stage the agent's launch failed.
fn report_launch_failure(stage: u32, err: i32) {
    let mut buf = [0u8; 8];
    buf[0..4].copy_from_slice(&stage.to_ne_bytes());
    buf[4..8].copy_from_slice(&err.to_ne_bytes());
    // SAFETY: write of a stack buffer to our own pipe.
    unsafe { libc::write(FD_EXEC_STATUS, buf.as_ptr().cast(), buf.len()) };
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
