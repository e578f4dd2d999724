//! The agent's start, from the sentinel: its clone, and its side of it until `exec`.
//!
//! With a cgroup the agent is born in it (`clone3` with `CLONE_INTO_CGROUP`): moving a
//! running process between cgroups waits for an RCU grace period (milliseconds), being
//! born there does not. That clone copies the sentinel like fork does; the sentinel is
//! small whenever it was started by exec (see [`SentinelStart`](super::SentinelStart)).
//! Otherwise (no cgroup, or a kernel without `clone3`) it starts like `posix_spawn`
//! does: a child that shares the sentinel's memory (`CLONE_VM`) on a stack of its own,
//! while the sentinel waits (`CLONE_VFORK`) until it has exec'd or failed. No page table
//! is copied, so the cost does not grow with the test process's size. Container mode
//! adds its `CLONE_NEW*` flags to either (the kernel refuses them only with
//! `CLONE_THREAD`, and `CLONE_NEWUSER` with `CLONE_FS`, neither used here).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, RawFd};

use super::child::report_launch_failure;
use super::plan::{
    ChildPlan, ContainerPlan, AGENT_STACK, FD_CGROUP, FD_DEVNULL, FD_STDERR, FD_STDOUT,
};
use super::sys::{self, Errno};
use super::wire::LaunchStage;

/// Starts the agent: its pid, or the `errno` of the clone that failed. Every signal is
/// blocked across the clone, as `posix_spawn` does (the agent resets its dispositions
/// and unblocks before its exec); the sentinel's own mask is back when this returns.
pub(super) fn start(plan: &ChildPlan<'_>) -> Result<i32, Errno> {
    sys::set_signal_mask(&plan.signals.all);
    let mut agent = -1;
    if plan.cgroup_dir.is_some() {
        // SAFETY: in the single-threaded sentinel; the child runs `agent_main` only,
        // which makes async-signal-safe calls and ends in exec or `_exit`.
        agent = unsafe { clone_into_cgroup(FD_CGROUP, plan.container.clone_flags as u64) };
        if agent == 0 {
            // SAFETY: we are the child of that clone, with our own copy of memory.
            unsafe { agent_main(plan, true) }
        }
    }
    if agent < 0 {
        let stack_top = plan.agent_stack.wrapping_add(AGENT_STACK) as usize & !15;
        // SAFETY: `agent_entry` runs on the `AGENT_STACK` bytes at `plan.agent_stack`,
        // which nothing else uses, and gets `plan`, which stays valid and unchanged
        // while the sentinel is suspended (CLONE_VFORK) until the child execs or exits.
        agent = unsafe {
            libc::clone(
                agent_entry,
                stack_top as *mut libc::c_void,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD | plan.container.clone_flags,
                (plan as *const ChildPlan<'_>).cast_mut().cast(),
            )
        };
    }
    let result = if agent < 0 {
        Err(sys::errno())
    } else {
        Ok(agent)
    };
    sys::set_signal_mask(&plan.signals.watched);
    result
}

/// Entry point of the agent's `clone`: `arg` is the sentinel's `ChildPlan`.
extern "C" fn agent_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `&ChildPlan` the sentinel passed to `clone`; the sentinel is
    // suspended (CLONE_VFORK) until this child execs or exits, so the plan stays valid
    // and unchanged.
    unsafe { agent_main(&*(arg as *const ChildPlan<'_>), false) }
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
/// Only in the child of the sentinel's clone. After `clone(CLONE_VM | CLONE_VFORK)` it
/// shares the sentinel's memory, so it writes nothing but its own stack and makes
/// async-signal-safe system calls only. Signal dispositions and descriptors are its own
/// copies (no CLONE_SIGHAND, no CLONE_FILES).
unsafe fn agent_main(plan: &ChildPlan<'_>, born_in_cgroup: bool) -> ! {
    sys::setpgid(0, 0);
    if plan.cgroup_dir.is_some() && !born_in_cgroup {
        let joined = sys::openat(FD_CGROUP, c"cgroup.procs", libc::O_WRONLY).and_then(|procs| {
            match sys::write(procs.as_raw_fd(), b"0") {
                Ok(1) => Ok(()),
                Ok(_) => Err(sys::errno()),
                Err(errno) => Err(errno),
            }
        });
        if let Err(errno) = joined {
            report_launch_failure(LaunchStage::JoinCgroup, errno);
            sys::exit(127);
        }
    }
    if plan.container.clone_flags != 0 {
        if let Err(errno) = enter_container(&plan.container) {
            report_launch_failure(LaunchStage::Namespace, errno);
            sys::exit(127);
        }
    }
    // SAFETY: the agent owns its descriptor table (its own copy, no CLONE_FILES).
    unsafe {
        sys::dup_onto(FD_DEVNULL, 0, false);
        sys::dup_onto(FD_STDOUT, 1, false);
        sys::dup_onto(FD_STDERR, 2, false);
    }
    // Handlers are reset by exec, but ignored signals are inherited: the agent's are
    // the default, as from a shell. Every signal is blocked until then (since before the
    // clone); then the mask is emptied, whatever the caller's was.
    plan.signals.set_agent_dispositions();
    sys::set_signal_mask(&plan.signals.empty);
    if let Some(cwd) = plan.cwd {
        if let Err(errno) = sys::chdir(cwd) {
            report_launch_failure(LaunchStage::Chdir, errno);
            sys::exit(127);
        }
    }
    let errno = sys::execve(plan.program, &plan.argv, &plan.envp);
    report_launch_failure(LaunchStage::Exec, errno);
    sys::exit(127)
}

/// Container mode, in the agent just cloned into its new namespaces: map the caller's
/// ids (user namespace only), make every mount private (so nothing below propagates
/// back to the host's mount table), and mount a fresh `/proc` for the new PID namespace.
/// Returns the errno of the step that failed.
fn enter_container(plan: &ContainerPlan<'_>) -> Result<(), Errno> {
    let write_file = |path: &CStr, text: &CStr| -> Result<(), Errno> {
        let fd = sys::open(path, libc::O_WRONLY)?;
        let text = text.to_bytes();
        match sys::write(fd.as_raw_fd(), text) {
            Ok(n) if n == text.len() => Ok(()),
            Ok(_) => Err(sys::errno()),
            Err(errno) => Err(errno),
        }
    };
    if let (Some(uid_map), Some(gid_map)) = (plan.uid_map, plan.gid_map) {
        // `/proc/self` is still the host's procfs here, which names this process. An
        // unprivileged process may map only its own ids, and its gids only once
        // setgroups is denied.
        match write_file(c"/proc/self/setgroups", c"deny") {
            Ok(()) | Err(libc::ENOENT) => {}
            Err(errno) => return Err(errno),
        }
        write_file(c"/proc/self/uid_map", uid_map)?;
        write_file(c"/proc/self/gid_map", gid_map)?;
    }
    sys::mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE)?;
    sys::mount(
        Some(c"proc"),
        c"/proc",
        Some(c"proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
    )
}
