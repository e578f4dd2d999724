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
//! # The layers
//!
//! - **The harness's side**, in the caller: `spawn` (the pipes, the plan, fork or exec
//!   or an idle sentinel, the wait for the agent's `exec`), `handle` ([`SentinelHandle`]:
//!   requests, the lifeline, the release, the shutdown), `pool` (the idle sentinels)
//!   and `inherited` (what an agent gets from its sentinel, compared before a reuse).
//! - **The wire**, both sides: `wire` ([`Request`], [`Event`],
//!   [`LaunchFailure`](wire::LaunchFailure) and their byte layouts).
//! - **The start**, in the caller and then in the new process: `fork_start` (fork the
//!   caller), `exec_start` (`posix_spawn` of `/proc/self/exe`, the `.init_array` hook),
//!   `image` (a launch in a memfd, as the exec'd sentinel and an idle one read it),
//!   `plan` (what every start hands over) and `signals` (masks and dispositions across
//!   the fork).
//! - **The sentinel's runtime**, in the sentinel: `child` (`sentinel_main`: setup and
//!   the request loop), `agent` (the agent's clone, and its side until `exec`),
//!   `cleanup` (signals, reaping, the kill-everything loop) and `proc_scan` (its
//!   children, from `/proc`).
//! - **System calls**: `sys`, used by the sentinel (and a few by the caller).
//!
//! A small caller forks the sentinel; a large one (see [`SentinelStart`]) re-executes
//! its own program in sentinel mode instead, through a hook that runs before `main`.
//! Both hand the same [`ChildPlan`](plan::ChildPlan) to the same `sentinel_main`.
//!
//! # After the fork
//!
//! The caller is usually a multi-threaded test binary, so between `fork` and
//! `exec`/`_exit` only async-signal-safe system calls run: everything (paths, argv and
//! envp pointer arrays, signal sets) is prepared before `fork`, and the post-fork code
//! makes no allocation, takes no lock, never panics on purpose, and never touches `std`
//! I/O. The fork is glibc's `_Fork` (or the bare `clone(SIGCHLD)`), so no other
//! library's `pthread_atfork` handler runs in the child either, and every signal is
//! blocked across it until the child has reset every disposition to the default. The
//! calls it makes are exactly: `fcntl(F_DUPFD_CLOEXEC)`, `dup2`, `dup3`,
//! `close_range` (or `close`), `getrlimit`, `setsid`, `prctl`, `sigaction`,
//! `sigprocmask`, `signalfd`, `clone3` or `clone` (the agent), `openat`,
//! `mkdir`, `setpgid`, `write`, `read`, `chdir`, `execve`, `pidfd_open`, `pidfd_send_signal`,
//! `kill`, `waitpid`, `poll`, `open`, `getdents64`, `getpid`, `clock_gettime`, `rmdir`,
//! `recvmsg`, `fstat`, `mmap`, `munmap` (an idle sentinel's next launch), `sched_setattr`
//! (the sentinel's short slice, the agent's back to the caller's) and `_exit`; in container mode the agent also calls `mount` (see `agent`). All but
//! the process creation are in `sys`.
//!
//! # The lifeline
//!
//! The sentinel reads requests from a socket whose only other end is held by the harness.
//! End of file on it means the harness is gone (it dropped the [`Outcome`], panicked, or
//! was SIGKILLed): the sentinel then SIGKILLs every direct child, reaps, and repeats until
//! `ECHILD`, and exits. Direct children cannot be PID-reused before their parent reaps
//! them, so this loop can never signal a stranger.
//!
//! # Idle
//!
//! An outcome whose tree was reported empty releases its sentinel instead: the sentinel
//! closes the scenario's events pipe and waits on the same socket for the next launch
//! (`pool`). An idle sentinel holds no descriptor of any tree and has no child; the
//! lifeline keeps its meaning (end of file: exit).
//!
//! # Signals
//!
//! Signals for the agent go through a pidfd the sentinel opened while the agent was its
//! live, unreaped child. A signal for the agent's process group is sent only while the
//! agent is not yet reaped: its pid, which is the group's id, cannot be reused until
//! then. After that the harness falls back to signalling verified group members one by
//! one (see [`crate::kill`]).
//!
//! This is the only module of the crate with `unsafe` code: `sys` (one block per system
//! call), the three process creations (`fork_start`, `agent`, `exec_start`), the exec
//! hook's reading of its `argv`, and a launch image's arrays taken as pointers once
//! relocated (`image`).
//!
//! [`Outcome`]: crate::Outcome
#![allow(unsafe_code)]

mod agent;
mod child;
mod cleanup;
mod exec_start;
mod fork_start;
mod handle;
mod image;
mod inherited;
mod plan;
mod pool;
mod proc_scan;
mod signals;
mod spawn;
mod sys;
mod wire;

pub(crate) use handle::SentinelHandle;
pub(crate) use plan::shorten_this_threads_slice;
pub use pool::end_idle_sentinels;
pub(crate) use pool::release;
pub use spawn::SentinelStart;
pub(crate) use spawn::{spawn, while_no_start, Launch, Namespaces};
pub(crate) use sys::{monotonic_ns, pidfd_exit_status};
pub(crate) use wire::{Event, LaunchStage, Request, UnknownCode, WireError, EVENT_LEN};
