//! Starting a sentinel, from the harness: the pipes, the plan, fork or exec, and the
//! wait until the agent's `exec` succeeded or failed.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;
use std::time::Instant;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::{open, Mode, OFlags};
use rustix::io::{read, retry_on_intr};
use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
use rustix::pipe::{pipe_with, PipeFlags};

use super::exec_start::{hook_took_over, spawn_by_exec};
use super::fork_start::start_by_fork;
use super::handle::{SentinelHandle, Spawned};
use super::inherited::Inherited;
use super::plan::{ChildPlan, ContainerPlan, SchedPlan, AGENT_STACK};
use super::pool;
use super::signals::SignalPlan;
use super::sys::CStrArray;
use super::wire::{LaunchFailure, LaunchStage, Request, WireError, LAUNCH_FAILURE_LEN};

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

#[cfg(test)]
impl Launch {
    /// `program` with `argv`, nothing else: no environment, no cgroup, `/dev/null`
    /// for stdin, pipes for the output.
    pub(crate) fn bare(program: &std::ffi::CStr, argv: &[&std::ffi::CStr]) -> Launch {
        Launch {
            program: program.into(),
            argv: argv.iter().map(|&a| a.into()).collect(),
            envp: Vec::new(),
            cwd: None,
            cgroup_dir: None,
            namespaces: None,
            stdin: None,
            inherit_output: false,
        }
    }
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
    pub(super) fn clone_flags(&self) -> libc::c_int {
        let user = if self.user_map.is_some() {
            libc::CLONE_NEWUSER
        } else {
            0
        };
        libc::CLONE_NEWPID | libc::CLONE_NEWNS | user
    }
}

/// How the sentinel process is started.
///
/// Forking copies the calling process's page tables: cheap for a small test process,
/// about 35 µs per MiB of resident memory for a large one (a test that loaded a model).
/// Re-executing the calling program in sentinel mode costs the same whatever the
/// caller's size (one `exec` of the test binary, about a millisecond). Reusing an idle
/// sentinel costs neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SentinelStart {
    /// An idle sentinel of this process when one waits, else `Exec` when the calling
    /// process has 64 MiB or more resident, `Fork` below.
    ///
    /// From the second scenario of a process on, a scenario whose tree was reported
    /// empty (every process of it reaped) leaves its sentinel idle when it is dropped,
    /// holding nothing of that tree (its cgroup removed, its pipes closed), for the next
    /// `Auto` scenario of the process; it is taken only by a thread whose inheritable
    /// state (umask, credentials, limits, namespaces, cgroup, scheduling) is the one it
    /// was started with, so an agent always starts as `Command` would start it. At most 16 wait; they exit with the
    /// process, or at [`end_idle_sentinels`](crate::end_idle_sentinels). Any other
    /// outcome's drop ends its sentinel as before.
    ///
    /// The environment variable `ORPHAN_CHECK_SENTINEL_START=fork|exec` starts every
    /// sentinel that way instead, and `ORPHAN_CHECK_SENTINEL_REUSE=off` keeps no
    /// sentinel idle.
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
    /// Whether this start may take an idle sentinel, and leave its own idle after a
    /// clean scenario: `Auto`, unless the environment asks for a way to start every
    /// sentinel (`ORPHAN_CHECK_SENTINEL_START`) or for no reuse
    /// (`ORPHAN_CHECK_SENTINEL_REUSE=off`).
    pub(super) fn reuses(self) -> bool {
        let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        self == SentinelStart::Auto
            && env("ORPHAN_CHECK_SENTINEL_START").is_none()
            && !env("ORPHAN_CHECK_SENTINEL_REUSE")
                .is_some_and(|v| matches!(v.to_str(), Some("off" | "0" | "false" | "no")))
    }

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

/// Whether this process has started a sentinel before (see `spawn`).
static STARTED_BEFORE: AtomicBool = AtomicBool::new(false);

/// Held (shared) while a sentinel is being started, taken alone by [`while_no_start`].
static START_GATE: RwLock<()> = RwLock::new(());

/// Runs `f` while no sentinel is being started, and none starts until it returns.
///
/// A fork copies every descriptor of the caller, close-on-exec or not, and the new
/// sentinel closes the ones it does not own only when it first runs (`remap_fds`, its
/// first step), which on a loaded machine can be milliseconds later; a `posix_spawn`
/// keeps them until its `exec`. A descriptor that must never outlive the moment (the
/// port probe's bound socket, a copy of one of the tree's listening sockets) is made and
/// closed inside `f`, so no sentinel ever holds it.
pub(crate) fn while_no_start<T>(f: impl FnOnce() -> T) -> T {
    let _alone = START_GATE.write().unwrap_or_else(|e| e.into_inner());
    f()
}

/// Starts a sentinel that launches `launch` as the agent, and waits until the agent's
/// `exec` succeeded or failed, or `deadline` passed (a `chdir` or `exec` that hangs, on
/// a network filesystem): then an error of kind `TimedOut`, and nothing left running.
/// A launch status that is no [`LaunchFailure`] is an error of kind `InvalidData` (a
/// [`WireError`]).
///
/// `reader` gets the read ends (the sentinel's events, the agent's stdout and stderr)
/// before the sentinel starts, so that whatever reads them (the tracker's thread) is
/// running by the time the first event arrives, rather than created after the agent's
/// `exec`, on the way to every wait. What it makes of them is in [`Spawned::reader`].
///
/// On `Err((stage, errno))` the sentinel has already been told to clean up; dropping the
/// handle inside finishes the job.
pub(crate) fn spawn<R>(
    launch: &Launch,
    start: SentinelStart,
    deadline: Instant,
    reader: impl FnOnce(OwnedFd, OwnedFd, OwnedFd) -> R,
) -> io::Result<Result<Spawned<R>, (LaunchStage, i32)>> {
    let (ev_r, ev_w) = pipe_with(PipeFlags::CLOEXEC)?;
    let (out_r, out_w) = output_pipe(launch.inherit_output, std::io::stdout().as_fd())?;
    let (err_r, err_w) = output_pipe(launch.inherit_output, std::io::stderr().as_fd())?;
    let (xs_r, xs_w) = pipe_with(PipeFlags::CLOEXEC)?;
    let devnull = open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())?;
    let stdin = launch.stdin.as_ref().map_or(devnull.as_fd(), AsFd::as_fd);
    // The read ends go to the reader before the agent can start: on a relaunch while the
    // idle sentinel wakes up, otherwise before the fork. The harness holds the write ends
    // until a sentinel has them, so a relaunch that fails leaves them whole for the next.
    let mut read_ends = Some((reader, ev_r, out_r, err_r));
    let mut made = None;
    let mut start_reader = || {
        if let Some((reader, events, stdout, stderr)) = read_ends.take() {
            made = Some(reader(events, stdout, stderr));
        }
    };

    // What the agent would inherit, when its sentinel may be an idle one or become one.
    // Container mode always starts its own: its settings are not in a launch's image.
    crate::cost_trace::mark("spawn: pipes made");
    // The first start of a process keeps nothing: a process that runs one scenario (a
    // test under nextest, `orphan-check wrap`) pays neither for the comparison nor for
    // an idle sentinel; from the second start on, the sentinels may be kept.
    let inherited = (start.reuses()
        && launch.namespaces.is_none()
        && STARTED_BEFORE.swap(true, Ordering::Relaxed))
    .then(Inherited::now)
    .flatten();
    crate::cost_trace::mark("spawn: inherited state read");
    let pipes = [
        ev_w.as_fd(),
        out_w.as_fd(),
        err_w.as_fd(),
        xs_w.as_fd(),
        stdin,
    ];
    let reused = inherited
        .as_ref()
        .and_then(|now| pool::relaunch(launch, now, pipes, deadline, &mut start_reader));
    let sentinel = match reused {
        Some(sentinel) => {
            crate::cost_trace::mark("spawn: idle sentinel relaunched");
            sentinel
        }
        None => {
            start_reader();
            start_fresh(launch, start, deadline, pipes, &xs_r, inherited)?
        }
    };
    let reader = made.expect("the reader started on either path");
    // The harness keeps only its own ends; closing the others makes EOF mean what it
    // should (agent output, exec status).
    drop((ev_w, out_w, err_w, xs_w, devnull));

    // Waits until the agent's exec closes its copy of the write end (success) or the
    // agent reports the stage and errno at which it failed, or the deadline.
    let mut status = [0u8; LAUNCH_FAILURE_LEN];
    let mut got = 0;
    while got < status.len() {
        if !readable_by(&xs_r, deadline) {
            sentinel.stop_hung_start();
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
    if got == 0 {
        return Ok(Ok(Spawned { sentinel, reader }));
    }
    let _ = sentinel.send(Request::KillTree);
    drop(sentinel);
    let failure = if got < status.len() {
        Err(WireError::Truncated {
            record: "launch failure",
            len: got,
        })
    } else {
        LaunchFailure::decode(&status).map_err(WireError::from)
    };
    match failure {
        Ok(failure) => Ok(Err((failure.stage, failure.errno))),
        Err(error) => Err(io::Error::new(io::ErrorKind::InvalidData, error)),
    }
}

/// Starts a new sentinel for `launch`, by exec or fork as `start` resolves, handing it
/// `pipes` (as for [`pool::relaunch`]); `xs_r` is the harness's end of the exec-status
/// pipe (an exec'd sentinel writes its first byte there).
fn start_fresh(
    launch: &Launch,
    start: SentinelStart,
    deadline: Instant,
    pipes: [BorrowedFd<'_>; 5],
    xs_r: &OwnedFd,
    inherited: Option<Inherited>,
) -> io::Result<SentinelHandle> {
    let (ctl_r, ctl_w) = control_socket()?;
    // The agent's stack between clone and exec. The sentinel gets its own copy of this
    // buffer at fork; it must exist before the fork because nothing may allocate after.
    let mut agent_stack = vec![0u8; AGENT_STACK];
    let [events, stdout, stderr, exec_status, stdin] = pipes.map(|fd| fd.as_raw_fd());
    let plan = ChildPlan {
        program: &launch.program,
        argv: CStrArray::new(launch.argv.iter().map(CString::as_c_str)),
        envp: CStrArray::new(launch.envp.iter().map(CString::as_c_str)),
        cwd: launch.cwd.as_deref(),
        inherited: [
            ctl_r.as_raw_fd(),
            events,
            stdout,
            stderr,
            exec_status,
            stdin,
            -1,
        ],
        signals: SignalPlan::new(),
        cgroup_dir: launch.cgroup_dir.as_deref(),
        agent_stack: agent_stack.as_mut_ptr(),
        container: ContainerPlan::new(launch.namespaces.as_ref()),
        sched: SchedPlan::of_this_thread(),
    };

    // An exec that cannot start (no /proc/self/exe, a noexec mount), or a program that
    // started without the hook taking over (the loader failed, `/proc/self/exe` is an
    // interpreter that loaded this crate), falls back to fork. Container mode always
    // forks: its settings do not travel through the exec sentinel's launch data.
    let by_exec = start.resolve() == SentinelStart::Exec && launch.namespaces.is_none();
    let starting = || START_GATE.read().unwrap_or_else(|e| e.into_inner());
    let execed = if by_exec {
        let spawned = {
            let _starting = starting();
            spawn_by_exec(launch, &plan.inherited)
        };
        spawned
            .ok()
            .filter(|&pid| hook_took_over(pid, xs_r, deadline))
    } else {
        None
    };
    let pid = match execed {
        Some(pid) => pid,
        None => {
            let _starting = starting();
            start_by_fork(&plan)?
        }
    };
    crate::cost_trace::mark("spawn: sentinel started");
    drop(ctl_r);
    Ok(SentinelHandle::new(pid, ctl_w, inherited))
}

/// The sentinel's control socket: the sentinel's end and the harness's (see `wire`).
pub(super) fn control_socket() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
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

/// Whether `fd` is readable (data or end of file) before `deadline`.
pub(super) fn readable_by(fd: impl AsFd, deadline: Instant) -> bool {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return true,
        }
    }
}
