//! The sentinel started by forking the caller (a small caller, or one whose sentinel
//! cannot be exec'd).
//!
//! The caller is usually a multi-threaded test binary, so the child may only make
//! async-signal-safe calls until it exits: everything it needs is in the
//! [`ChildPlan`], prepared before. The fork is glibc's `_Fork` (or the bare
//! `clone(SIGCHLD)`), so no other library's `pthread_atfork` handler runs in the child
//! either, and every signal is blocked across it until the child has reset every
//! disposition to the default.

use std::io;

use super::child::sentinel_main;
use super::plan::ChildPlan;
use super::signals::AllBlocked;

/// Forks the sentinel, which runs `plan`: its pid.
pub(super) fn start_by_fork(plan: &ChildPlan<'_>) -> io::Result<i32> {
    // Every signal is blocked across the fork, as posix_spawn does: a handler the caller
    // installed must never run in the child, which resets every disposition before it
    // unblocks anything. The parent's mask comes back when this guard drops.
    let blocked = AllBlocked::new(&plan.signals);
    // SAFETY: `fork` is called with every resource the child needs already prepared in
    // `plan` (which borrows the caller's launch and buffers, alive until after `fork`
    // returns in both processes). The child only runs `sentinel_main`, which makes
    // async-signal-safe system calls and never returns (it ends in `_exit`), so the
    // guard above never drops there.
    let pid = unsafe { fork_without_atfork_handlers() };
    let fork_error = io::Error::last_os_error();
    if pid == 0 {
        // SAFETY: we are the freshly forked child, single-threaded, owning its copy of
        // the descriptor table; see `sentinel_main`.
        unsafe { sentinel_main(plan) }
    }
    drop(blocked);
    if pid < 0 {
        return Err(fork_error);
    }
    Ok(pid)
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

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicI32, Ordering};
    use std::time::{Duration, Instant};

    use rustix::io::read;
    use rustix::pipe::{pipe_with, PipeFlags};

    use crate::sentinel::{spawn, Launch, SentinelStart};

    /// The write end of a pipe an atfork child handler writes to; -1 until set.
    static ATFORK_PIPE: AtomicI32 = AtomicI32::new(-1);

    extern "C" fn atfork_child() {
        let fd = ATFORK_PIPE.load(Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: write of a static byte to a pipe; async-signal-safe.
            unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) };
        }
    }

    #[test]
    fn no_atfork_handler_of_another_library_runs_in_the_sentinel() {
        let (r, w) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).unwrap();
        ATFORK_PIPE.store(w.as_raw_fd(), Ordering::SeqCst);
        // SAFETY: registers a handler that only writes to a pipe; it stays registered
        // for this test process, harmless to every other fork.
        unsafe { libc::pthread_atfork(None, None, Some(atfork_child)) };
        let launch = Launch::bare(c"/bin/true", &[c"true"]);
        let spawned = spawn(
            &launch,
            SentinelStart::Fork,
            Instant::now() + Duration::from_secs(30),
            |events, stdout, stderr| (events, stdout, stderr),
        )
        .expect("spawn")
        .map_err(|(stage, errno)| format!("{stage:?} {errno}"))
        .expect("the agent started");
        drop(spawned);
        ATFORK_PIPE.store(-1, Ordering::SeqCst);
        let mut byte = [0u8; 1];
        assert!(
            read(&r, &mut byte).is_err(),
            "an atfork child handler ran in the sentinel"
        );
        drop(w);
    }
}
