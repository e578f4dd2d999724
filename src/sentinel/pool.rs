//! Idle sentinels, kept for the next scenario of this process.
//!
//! Starting a sentinel is a fork (or, for a large caller, an exec of the test binary),
//! its setup (a session, the subreaper flag, every signal disposition, a signalfd), and
//! at the end its exit, which the drop waits for. A sentinel whose tree was reported
//! empty (every process of it reaped: nothing can join it any more) holds nothing of
//! that tree once released: the harness removes the cgroup, the sentinel closes its
//! events pipe. So it waits, idle, for another launch instead of exiting: the next
//! scenario sends it the launch's image and pipes over its control socket, and it starts
//! the agent at once.
//!
//! An idle sentinel is reused only by a scenario with [`SentinelStart::Auto`] whose
//! thread has the state the sentinel inherited (see `inherited`), and only while it is
//! alive. At most [`MAX_IDLE`] wait. They end when the process exits (an `atexit`
//! handler closes their lifelines and waits; on any other end of the process the
//! lifelines close with it), or at [`end_idle_sentinels`].
//!
//! [`SentinelStart::Auto`]: super::SentinelStart::Auto

use std::ffi::CString;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStringExt;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::handle::SentinelHandle;
use super::image;
use super::inherited::Inherited;
use super::spawn::Launch;
use super::sys;

/// How many idle sentinels wait at most: one per test thread of a suite on a big machine.
const MAX_IDLE: usize = 16;

/// The idle sentinels, and the process whose children they are.
struct Pool {
    owner: i32,
    idle: Vec<SentinelHandle>,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    owner: 0,
    idle: Vec::new(),
});

/// The process that registered the `atexit` handler.
static REGISTERED: AtomicI32 = AtomicI32::new(0);

/// This process's idle sentinels. A child forked by the caller inherits the list, but
/// not the sentinels (they are its parent's children, and its parent uses them): there
/// the inherited handles are forgotten, never used nor shut down.
fn idle() -> IdleList {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let me = std::process::id() as i32;
    if pool.owner != me {
        for handle in pool.idle.drain(..) {
            std::mem::forget(handle);
        }
        pool.owner = me;
    }
    IdleList(pool)
}

/// The pool locked, as its list of idle sentinels.
struct IdleList(MutexGuard<'static, Pool>);

impl std::ops::Deref for IdleList {
    type Target = Vec<SentinelHandle>;
    fn deref(&self) -> &Self::Target {
        &self.0.idle
    }
}

impl std::ops::DerefMut for IdleList {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0.idle
    }
}

/// Starts `launch` on an idle sentinel whose inherited state is the caller's (`now`),
/// handing it `fds` (the write ends of the events, stdout, stderr and exec-status pipes,
/// and the agent's stdin), once it has said it took them (by `deadline`): its handle,
/// or `None` when no idle sentinel can take it. `while_it_wakes` runs between the
/// launch sent and the answer awaited (a sentinel waking up takes tens of
/// microseconds). Idle sentinels with another state are ended; one that died while idle
/// is reaped.
pub(super) fn relaunch(
    launch: &Launch,
    now: &Inherited,
    fds: [BorrowedFd<'_>; 5],
    deadline: Instant,
    while_it_wakes: &mut dyn FnMut(),
) -> Option<SentinelHandle> {
    let (mut taken, stale) = {
        let mut idle = idle();
        let (same, other): (Vec<_>, Vec<_>) =
            idle.drain(..).partition(|h| h.inherited() == Some(now));
        *idle = same;
        (idle.pop(), other)
    };
    // Outside the lock: each waits for its sentinel's exit.
    drop(stale);
    taken.as_ref()?;
    // The working directory is always said: the sentinel's is the caller's of then.
    let cwd = match &launch.cwd {
        Some(cwd) => Some(cwd.clone()),
        None => std::env::current_dir()
            .ok()
            .and_then(|dir| CString::new(dir.into_os_string().into_vec()).ok()),
    };
    let memfd = cwd.and_then(|cwd| image::to_memfd(&image::encode(launch, Some(&cwd))).ok());
    let Some(memfd) = memfd else {
        // No directory to say (the caller's was removed), or no memfd: a fresh start.
        keep(taken.take()?);
        return None;
    };
    while let Some(handle) = taken.take() {
        let sent = handle.has_exited() == Some(false) && handle.send_launch(&memfd, fds).is_ok();
        if sent {
            // The harness's own work meanwhile (the first launch only: it runs once).
            while_it_wakes();
        }
        if sent && handle.launch_accepted(deadline) {
            return Some(handle);
        }
        if sent {
            // It took the launch and died before it answered, or it does not answer:
            // whatever it started is ended with it.
            handle.stop_hung_start();
        } else {
            // It died while idle: its drop reaps it.
            drop(handle);
        }
        // Try the next one of the same state.
        let mut idle = idle();
        let next = idle.iter().rposition(|h| h.inherited() == Some(now));
        taken = next.map(|i| idle.swap_remove(i));
    }
    None
}

/// Releases the sentinel of a tree reported empty to wait, idle, for the next scenario:
/// true when it was kept (or ended because enough wait), false when it is not to be
/// reused or is gone (then the caller shuts it down as usual).
pub(crate) fn release(sentinel: &mut SentinelHandle) -> bool {
    let Some(idle) = sentinel.release() else {
        return false;
    };
    keep(idle);
    crate::cost_trace::mark("drop: sentinel released");
    true
}

/// Keeps a released sentinel for the next scenario, or ends it when enough wait.
fn keep(handle: SentinelHandle) {
    let mut idle = idle();
    if idle.len() >= MAX_IDLE {
        drop(idle);
        drop(handle);
        return;
    }
    idle.push(handle);
    drop(idle);
    let me = std::process::id() as i32;
    // Once per process (the pid changes only in a forked child).
    if REGISTERED.swap(me, Ordering::AcqRel) != me {
        sys::at_exit(end_idle_at_exit);
    }
}

/// Ends every idle sentinel of this process and waits for each to exit (they hold
/// nothing of any tree: each exits at once). The next scenario starts a fresh one.
///
/// Idle sentinels end by themselves when the process exits; this is for a test that
/// checks its process has no children left, or one that changes what its agents should
/// inherit in a way the harness does not compare (its root directory).
pub fn end_idle_sentinels() {
    let mut all = std::mem::take(&mut *idle());
    end_all(&mut all);
}

/// Closes every lifeline first, so the sentinels exit side by side, then reaps each.
fn end_all(all: &mut Vec<SentinelHandle>) {
    for handle in all.iter_mut() {
        handle.close_lifeline();
    }
    all.clear();
}

extern "C" fn end_idle_at_exit() {
    // Never block an exit on a lock another thread holds, nor unwind into C: without
    // this, the lifelines still close with the process. In a forked child the handler
    // is inherited, the sentinels are not: it ends nothing there.
    let _ = std::panic::catch_unwind(|| {
        if let Ok(mut pool) = POOL.try_lock() {
            if pool.owner != std::process::id() as i32 {
                return;
            }
            let mut all = std::mem::take(&mut pool.idle);
            drop(pool);
            end_all(&mut all);
        }
    });
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::sentinel::wire::read_event;
    use crate::sentinel::{spawn, Event, Launch, SentinelStart};

    /// Reads events until `want` matches one; false at end of file.
    fn wait_for(events: &std::os::fd::OwnedFd, want: impl Fn(&Event) -> bool) -> bool {
        std::iter::from_fn(|| read_event(events)).any(|e| want(&e))
    }

    #[test]
    fn a_released_sentinel_starts_the_next_agent() {
        let launch = Launch::bare(c"/bin/true", &[c"true"]);
        let start = || {
            spawn(
                &launch,
                SentinelStart::Auto,
                Instant::now() + Duration::from_secs(30),
                |events, _stdout, _stderr| events,
            )
            .expect("spawn")
            .map_err(|(stage, errno)| format!("{stage:?} {errno}"))
            .expect("the agent started")
        };
        // The process's first start keeps nothing (whichever test ran first here).
        let mut warm_up = start();
        assert!(wait_for(&warm_up.reader, |e| matches!(e, Event::Empty)));
        if !super::release(&mut warm_up.sentinel) {
            assert!(warm_up
                .sentinel
                .shut_down(Instant::now() + Duration::from_secs(10)));
        }
        let mut first = start();
        assert!(wait_for(&first.reader, |e| matches!(e, Event::Empty)));
        let pid = first.sentinel.pid();
        if !SentinelStart::Auto.reuses() {
            // The environment starts every sentinel afresh (ORPHAN_CHECK_SENTINEL_START,
            // ORPHAN_CHECK_SENTINEL_REUSE=off): nothing is kept.
            assert!(!super::release(&mut first.sentinel), "kept all the same");
            assert!(first
                .sentinel
                .shut_down(Instant::now() + Duration::from_secs(10)));
            return;
        }
        assert!(super::release(&mut first.sentinel), "kept");
        let mut second = start();
        assert_eq!(second.sentinel.pid(), pid, "the idle sentinel was reused");
        assert!(
            wait_for(&second.reader, |e| matches!(e, Event::Empty)),
            "the second agent ran and was reaped"
        );
        assert!(second
            .sentinel
            .shut_down(Instant::now() + Duration::from_secs(10)));
    }
}
