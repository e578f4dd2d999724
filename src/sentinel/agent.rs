//! The agent's start, from the sentinel: its clone, and its side of it until `exec`.
//!
//! With a cgroup the agent is born in it (`clone3` with `CLONE_INTO_CGROUP`): moving a
//! running process between cgroups waits for an RCU grace period (milliseconds), being
//! born there does not. On x86_64 that clone also shares the sentinel's memory until the
//! agent's `exec` (`CLONE_VM | CLONE_VFORK`, entered through a few instructions of
//! assembly: [`clone_vm_into_cgroup`]); on other architectures, or when the kernel
//! refuses it, the clone copies the sentinel like fork does (the sentinel is small
//! whenever it was started by exec, see [`SentinelStart`](super::SentinelStart)).
//! Without a cgroup (or a kernel without `clone3`) it starts like `posix_spawn`
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
    #[cfg(target_arch = "x86_64")]
    if plan.cgroup_dir.is_some() {
        // SAFETY: in the single-threaded sentinel, with `plan` valid and unchanged until
        // the agent has exec'd or exited (the sentinel is suspended until then).
        agent = unsafe { clone_vm_into_cgroup(FD_CGROUP, plan) };
    }
    if agent < 0 && plan.cgroup_dir.is_some() {
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

/// Entry point of [`clone_vm_into_cgroup`]'s child: `arg` is the sentinel's `ChildPlan`.
#[cfg(target_arch = "x86_64")]
extern "C" fn agent_entry_in_cgroup(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: as for `agent_entry`: the plan the sentinel passed, valid and unchanged
    // while the sentinel is suspended (CLONE_VFORK); the child was born in the cgroup.
    unsafe { agent_main(&*(arg as *const ChildPlan<'_>), true) }
}

/// `clone3(CLONE_INTO_CGROUP | CLONE_VM | CLONE_VFORK)`: the agent is born in its
/// cgroup *and* starts as `posix_spawn` starts a child, sharing the sentinel's memory
/// on a stack of its own (`plan.agent_stack`) while the sentinel waits for its `exec`.
/// No page table is copied, no copy-on-write fault follows in either process, and the
/// agent's `exec` has no copied address space to tear down. Returns the agent's pid, or
/// -1 when the kernel refuses (no `clone3`, an unusable cgroup): nothing was started,
/// and the caller tries the fork-like clone.
///
/// The C library has no `clone3` wrapper that takes a function, and a raw `clone3` with
/// a new stack returns into the child on that stack, where no Rust frame exists: so the
/// child's first instructions are here, in assembly, and call the entry at once.
/// x86_64 only; other architectures keep the fork-like clone3.
///
/// # Safety
///
/// Post-fork only, in the single-threaded sentinel, with every signal blocked (the
/// child must not run a handler before its own setup), and `plan` valid and unchanged
/// until the agent has exec'd or exited.
#[cfg(target_arch = "x86_64")]
unsafe fn clone_vm_into_cgroup(cgroup_fd: RawFd, plan: &ChildPlan<'_>) -> libc::pid_t {
    let base = plan.agent_stack as u64;
    // The child starts with its stack pointer at `stack + stack_size`: 16-byte aligned,
    // so that the `call` below enters the entry with the stack the ABI expects.
    let top = (base + AGENT_STACK as u64) & !15;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP
            | libc::CLONE_VM as u64
            | libc::CLONE_VFORK as u64
            | plan.container.clone_flags as u64,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: base,
        stack_size: top - base,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgroup_fd as u64,
    };
    let entry: extern "C" fn(*mut libc::c_void) -> libc::c_int = agent_entry_in_cgroup;
    let ret: i64;
    // SAFETY: the raw `clone3` system call with a valid, fully initialised `clone_args`
    // of the size passed. In the parent (rax ≠ 0: the pid, or a negative errno) the
    // block ends at `2:` with only rax, rcx and r11 changed (the `syscall` instruction's
    // own clobbers, declared), and its stack untouched: the child never writes it, it
    // runs on `plan.agent_stack`, which nothing else uses while the sentinel is
    // suspended. In the child (rax = 0) the kernel has switched to that stack; the block
    // never ends there: it clears the frame pointer (the outermost frame), calls the
    // entry with the plan (r13) as its argument, and the entry never returns (it
    // execs or `_exit`s); should it return, `exit` (60) with its value, and `ud2`.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r13",
            "call r12",
            "mov edi, eax",
            "mov eax, 60",
            "syscall",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") &args as *const CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") entry,
            in("r13") (plan as *const ChildPlan<'_>).cast_mut(),
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    if ret < 0 {
        -1
    } else {
        ret as libc::pid_t
    }
}

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

/// `CLONE_INTO_CGROUP` of linux/sched.h (Linux 5.7).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

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
    // The caller's scheduling, not the sentinel's short slice (the sentinel keeps its
    // own, so that it runs as soon as this exec lets it go).
    plan.sched.for_agent();
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
