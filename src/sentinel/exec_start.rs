//! The sentinel started by exec, for a large caller: `/proc/self/exe` started with
//! `posix_spawn` (a `vfork`-like clone: no page tables copied), turned into the
//! sentinel by a hook that runs before `main`.
//!
//! Its command line is only `[name, EXEC_FLAG]`, readable by anyone in
//! `/proc/<pid>/cmdline`; the agent's launch (program, argv, environment, secrets
//! included) travels in a memfd in slot [`FD_LAUNCH`] (its format: `image`). Its
//! environment is [`EXEC_ENV`] and the caller's own `LD_*` variables, which the dynamic
//! loader may need to start the program at all.
//!
//! The hook is in `.init_array`, which glibc calls with `argc`, `argv` and `envp` in
//! every process that links this crate: it returns at once unless the first argument is
//! `EXEC_FLAG` and the environment holds `EXEC_ENV`. Once it has read its launch data it
//! writes [`HOOK_TOOK_OVER`] on the status pipe. A program without the hook (ld.so, an
//! interpreter that loaded this crate as a library) rejects the flag as an unknown option
//! or ends without that byte, and the harness falls back to fork.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::raw::c_char;
use std::time::Instant;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::{read, retry_on_intr};
use rustix::process::{pidfd_open, waitpid, Pid, PidfdFlags, WaitOptions};

use super::child::{sentinel_main, write_all_or_give_up};
use super::image::{self, MappedLaunch};
use super::plan::{
    ChildPlan, ContainerPlan, SchedPlan, AGENT_STACK, FD_CGROUP, FD_CONTROL, FD_DEVNULL, FD_EVENTS,
    FD_EXEC_STATUS, FD_STDERR, FD_STDOUT, FIRST_FREE, SLOTS,
};
use super::signals::SignalPlan;
use super::spawn::{readable_by, Launch};
use super::sys::{self, CStrArray};
use super::wire::HOOK_TOOK_OVER;

/// First argument of a sentinel started by exec; a program without the hook (ld.so,
/// or an interpreter that loaded this crate as a library) rejects it as an unknown
/// option, and the harness falls back to fork.
const EXEC_FLAG: &CStr = c"--orphan-check-sentinel";
/// `ORPHAN_CHECK_SENTINEL=<version>` in the exec'd sentinel's environment: the version
/// of its launch data's format (see `image`).
const EXEC_ENV: &CStr = c"ORPHAN_CHECK_SENTINEL=3";
/// The slot where the exec'd sentinel finds its launch data (a memfd). It is the
/// cgroup's slot: the hook reads and closes it before the sentinel opens the cgroup.
const FD_LAUNCH: RawFd = FD_CGROUP;

/// Starts `/proc/self/exe` in sentinel mode: its pid. Its descriptors land in the fixed
/// slots, the launch data in `FD_LAUNCH`.
pub(super) fn spawn_by_exec(launch: &Launch, inherited: &[RawFd; SLOTS]) -> io::Result<i32> {
    let memfd = image::to_memfd(&image::encode(launch, launch.cwd.as_deref()))?;
    let mut inherited = *inherited;
    inherited[(FD_LAUNCH - 3) as usize] = memfd.as_raw_fd();

    // Copy every descriptor above the slots first, so that no dup2 action overwrites a
    // descriptor a later action still reads. (`fd` is open, owned by `launch` or
    // `spawn`, for the whole call.)
    let mut high: Vec<Option<OwnedFd>> = Vec::with_capacity(SLOTS);
    for &fd in &inherited {
        high.push(if fd >= 0 {
            Some(sys::dup_above(fd, FIRST_FREE).map_err(io::Error::from_raw_os_error)?)
        } else {
            None
        });
    }
    let args = CStrArray::new([c"orphan-sentinel", EXEC_FLAG]);
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
    let env = CStrArray::new(env.iter().map(CString::as_c_str));

    let mut pid: libc::pid_t = 0;
    // SAFETY: the file actions object is initialised before use and destroyed after;
    // every pointer passed to posix_spawn (path, argv, envp) points into C strings and
    // arrays alive for the whole call (posix_spawn does not write through them); the
    // descriptors in `high` are open.
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
            args.as_ptr().cast(),
            env.as_ptr().cast(),
        );
        libc::posix_spawn_file_actions_destroy(&mut actions);
        rc
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(pid)
}

/// Waits (until `deadline`) for the hook's byte on the status pipe, which says that the
/// exec'd process `pid` became the sentinel. When the process ends without it, or the
/// deadline passes, SIGKILLs and reaps it (our unreaped child: the pid is still its
/// own) and answers false.
pub(super) fn hook_took_over(pid: i32, status: &OwnedFd, deadline: Instant) -> bool {
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
    let ours = unsafe {
        let flagged = argc == 2 && !argv.is_null() && CStr::from_ptr(*argv.add(1)) == EXEC_FLAG;
        let mut env = envp;
        let mut marked = false;
        while flagged && !env.is_null() && !(*env).is_null() {
            marked |= CStr::from_ptr(*env) == EXEC_ENV;
            env = env.add(1);
        }
        flagged && marked
    };
    if !ours {
        return;
    }
    let launch = MappedLaunch::map(FD_LAUNCH);
    // SAFETY: a fresh process that owns its descriptor table; nothing else uses the
    // launch slot, which the sentinel reuses for the cgroup (the mapping outlives it).
    unsafe { sys::close(FD_LAUNCH) };
    let Some(launch) = launch else {
        sys::exit(126);
    };
    // From here on this process is the sentinel: tell the harness, which otherwise
    // falls back to fork (a loader that failed, a program without this hook).
    write_all_or_give_up(FD_EXEC_STATUS, &[HOOK_TOOK_OVER]);
    let mut agent_stack = vec![0u8; AGENT_STACK];
    let plan = ChildPlan {
        program: launch.program(),
        argv: launch.argv(),
        envp: launch.envp(),
        cwd: launch.cwd(),
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
        cgroup_dir: launch.cgroup_dir(),
        agent_stack: agent_stack.as_mut_ptr(),
        container: ContainerPlan::new(None),
        sched: SchedPlan::of_this_thread(),
    };
    // SAFETY: a fresh, single-threaded process (the hook runs before `main`, before
    // any thread) that owns its descriptor table: what `sentinel_main` requires.
    unsafe { sentinel_main(&plan) }
}
