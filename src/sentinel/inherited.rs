//! What an agent inherits from its sentinel rather than from its launch: the state of
//! the thread that started the sentinel, as it was then.
//!
//! A launch says the program, its arguments, its whole environment, its working
//! directory and its cgroup. Everything else the agent gets through the sentinel: the
//! umask, the credentials and capabilities, the resource limits, the scheduling policy,
//! nice value and time slice, the CPU affinity, the namespaces, the cgroup (without a cgroup of
//! its own), `no_new_privs` and seccomp. A fresh sentinel has the caller's state of
//! the moment; an idle one has the state of when it was started. So an idle sentinel
//! is reused only while the thread that asks has the same state as the thread that
//! started it; otherwise the agent would not start as `Command` would start it.

use std::os::fd::OwnedFd;

use rustix::fs::{open, stat, Mode, OFlags};
use rustix::process::{getrlimit, Resource};

use super::sys;

/// The `/proc/thread-self/status` lines an agent inherits.
const STATUS_KEYS: [&[u8]; 14] = [
    b"Umask:",
    b"Uid:",
    b"Gid:",
    b"Groups:",
    b"CapInh:",
    b"CapPrm:",
    b"CapEff:",
    b"CapBnd:",
    b"CapAmb:",
    b"NoNewPrivs:",
    b"Seccomp:",
    b"Seccomp_filters:",
    b"Cpus_allowed:",
    b"Mems_allowed:",
];

/// The namespaces an agent is born in (`pid` and `time` are the ones for children).
const NAMESPACES: [&str; 8] = [
    "cgroup",
    "ipc",
    "mnt",
    "net",
    "pid_for_children",
    "time_for_children",
    "user",
    "uts",
];

const RESOURCES: [Resource; 16] = [
    Resource::Cpu,
    Resource::Fsize,
    Resource::Data,
    Resource::Stack,
    Resource::Core,
    Resource::Rss,
    Resource::Nproc,
    Resource::Nofile,
    Resource::Memlock,
    Resource::As,
    Resource::Locks,
    Resource::Sigpending,
    Resource::Msgqueue,
    Resource::Nice,
    Resource::Rtprio,
    Resource::Rttime,
];

/// The calling thread's inheritable state, compared whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inherited {
    /// The lines of [`STATUS_KEYS`], in the file's order.
    status: Vec<u8>,
    /// `/proc/thread-self/cgroup`.
    cgroup: Vec<u8>,
    /// Device and inode of each of [`NAMESPACES`].
    namespaces: [(u64, u64); NAMESPACES.len()],
    /// Soft and hard limit of each of [`RESOURCES`].
    limits: [(u64, u64); RESOURCES.len()],
    /// Scheduling policy, nice value, priority and time slice; personality.
    scheduling: [u64; 5],
}

impl Inherited {
    /// The calling thread's state now; `None` when `/proc` cannot tell (then no idle
    /// sentinel is ever reused).
    pub(crate) fn now() -> Option<Inherited> {
        let mut buf = vec![0u8; 4096];
        let status = read("/proc/thread-self/status", &mut buf)?;
        let status: Vec<u8> = status
            .split_inclusive(|&b| b == b'\n')
            .filter(|line| STATUS_KEYS.iter().any(|key| line.starts_with(key)))
            .flatten()
            .copied()
            .collect();
        let cgroup = read("/proc/thread-self/cgroup", &mut buf)?.to_vec();
        let mut namespaces = [(0, 0); NAMESPACES.len()];
        for (slot, name) in namespaces.iter_mut().zip(NAMESPACES) {
            // A kernel without time namespaces has no such link: (0, 0) stands for it.
            if let Ok(st) = stat(format!("/proc/thread-self/ns/{name}").as_str()) {
                *slot = (st.st_dev, st.st_ino);
            }
        }
        let mut limits = [(0, 0); RESOURCES.len()];
        for (slot, resource) in limits.iter_mut().zip(RESOURCES) {
            let limit = getrlimit(resource);
            *slot = (
                limit.current.unwrap_or(u64::MAX),
                limit.maximum.unwrap_or(u64::MAX),
            );
        }
        Some(Inherited {
            status,
            cgroup,
            namespaces,
            limits,
            scheduling: {
                let attr = sys::thread_sched_attr();
                [
                    u64::from(attr.sched_policy),
                    attr.sched_nice as u64,
                    u64::from(attr.sched_priority),
                    attr.sched_runtime,
                    sys::personality() as u64,
                ]
            },
        })
    }
}

/// The whole of a small `/proc` file, in `buf`.
fn read<'b>(path: &str, buf: &'b mut Vec<u8>) -> Option<&'b [u8]> {
    let fd: OwnedFd = open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let len = crate::procs::read_whole(&fd, buf, false)?;
    Some(&buf[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_thread_has_the_same_state_and_a_changed_limit_is_seen() {
        let before = Inherited::now().expect("/proc is mounted");
        assert_eq!(Inherited::now().as_ref(), Some(&before));
        assert!(
            before.status.starts_with(b"Umask:"),
            "{}",
            String::from_utf8_lossy(&before.status)
        );
        assert!(before.status.windows(7).any(|w| w == b"CapEff:"));
        assert!(!before.cgroup.is_empty());
        assert_ne!(before.namespaces[3], (0, 0), "the net namespace");
        // Another thread with another nice value is another state; so is this one,
        // once it changes its own (a thread's nice value is its own on Linux).
        let other = std::thread::spawn(|| {
            // SAFETY: setpriority on this new thread only (PRIO_PROCESS with 0 is the
            // calling thread on Linux); raising the nice value needs no privilege.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
            Inherited::now().expect("/proc")
        })
        .join()
        .expect("thread");
        assert_ne!(other, before, "a nicer thread");
        assert_eq!(other.scheduling[1] as i32, 19);
    }
}
