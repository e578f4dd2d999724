//! Process facts from `/proc`, and snapshots of the sentinel's subtree.
//!
//! A snapshot walks `/proc/<pid>/task/<tid>/children` down from the sentinel, so its cost
//! grows with the scenario's tree, not with the number of processes on the machine.
//!
//! `procfs` reads a process's `stat`, `status` and `cmdline` ([`ProcessInfo::read`]),
//! lists `/proc` ([`all_pids`]) and names what a descriptor links to ([`fd_target`]).
//! Three reads stay by hand because they are on the verdict's path and procfs is
//! measurably slower at them (procfs 0.18, `cargo run --release --example procfs-cost`,
//! medians on the benchmark machine, docs/benchmarks.md):
//!
//! - the walk's `children` files: procfs opens the pid's directory, its `task`
//!   directory and each task's before the file, 46 µs against 31 µs for a tree of two
//!   (each file is one `read`, and a single-threaded process's is read without listing
//!   its tasks: the snapshot knows the thread count from `stat`);
//! - a descriptor's link ([`fd_links`]): procfs's `Process::fd` opens each descriptor
//!   with `O_PATH`, reads the link through it and `stat`s it, four system calls where a
//!   `readlink` is one: 56 µs against 36 µs for a process with 9 descriptors;
//! - the environment marker ([`carries_marker`]): procfs's `environ` builds a map of the
//!   whole environment, 29 µs against 16 µs.

use serde::Serialize;
use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};

use procfs::process::{FDTarget, Process};

/// What the kernel says about one process at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: i32,
    /// Parent process id, now.
    pub ppid: i32,
    /// Process group id.
    pub pgid: i32,
    /// Session id.
    pub sid: i32,
    /// State letter from `/proc/<pid>/stat`: `R`, `S`, `D`, `T`, `t`, `Z`…
    pub state: char,
    /// The kernel's short name (`comm`).
    pub comm: String,
    /// The command line; empty for zombies and kernel threads.
    pub cmdline: Vec<String>,
    /// Start time in clock ticks since boot: with the pid, the process's identity.
    pub start_ticks: u64,
    /// Real user id.
    pub uid: u32,
    /// Signals set to `SIG_IGN` (bit `n-1` for signal `n`).
    pub sig_ignored: u64,
    /// Signals with a handler installed.
    pub sig_caught: u64,
    /// Signals it blocks (its main thread's mask): sent to it, they stay pending.
    pub sig_blocked: u64,
    /// Signals pending for it (thread and process-wide), not yet acted on.
    pub sig_pending: u64,
    /// Its pid inside its own PID namespace, when that is not ours (a container): `1`
    /// for the namespace's init.
    pub pid_in_namespace: Option<i32>,
}

impl ProcessInfo {
    /// Reads a process; `None` when it is gone (or unreadable).
    pub fn read(pid: i32) -> Option<ProcessInfo> {
        Self::read_with_threads(pid).map(|(info, _)| info)
    }

    /// [`read`](ProcessInfo::read), and how many threads its `stat` counted.
    fn read_with_threads(pid: i32) -> Option<(ProcessInfo, i64)> {
        let process = Process::new(pid).ok()?;
        let stat = process.stat().ok()?;
        let status = process.status().ok();
        let cmdline = process.cmdline().unwrap_or_default();
        let info = ProcessInfo {
            pid,
            ppid: stat.ppid,
            pgid: stat.pgrp,
            sid: stat.session,
            state: stat.state,
            comm: stat.comm,
            cmdline,
            start_ticks: stat.starttime,
            uid: status.as_ref().map_or(u32::MAX, |s| s.ruid),
            sig_ignored: status.as_ref().map_or(0, |s| s.sigign),
            sig_caught: status.as_ref().map_or(0, |s| s.sigcgt),
            sig_blocked: status.as_ref().map_or(0, |s| s.sigblk),
            sig_pending: status.as_ref().map_or(0, |s| s.sigpnd | s.shdpnd),
            pid_in_namespace: status
                .as_ref()
                .and_then(|s| s.nspid.as_ref())
                .filter(|ids| ids.len() > 1)
                .and_then(|ids| ids.last().copied()),
        };
        Some((info, stat.num_threads))
    }

    /// The command line joined for people, or `[comm]` when there is none.
    pub fn command(&self) -> String {
        if self.cmdline.is_empty() {
            format!("[{}]", self.comm)
        } else {
            self.cmdline.join(" ")
        }
    }

    /// True for a zombie: exited, waiting for its parent to reap it.
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z'
    }

    /// True when stopped by a signal (`T`) or a tracer (`t`).
    pub fn is_stopped(&self) -> bool {
        self.state == 'T' || self.state == 't'
    }

    /// True when a SIGKILL is pending: it is dying, it just has not run since (on a
    /// loaded machine that can take a while), so it is not a survivor.
    pub fn is_being_killed(&self) -> bool {
        self.sig_pending & (1 << (libc::SIGKILL - 1)) != 0
    }

    /// Whether `signal` (a raw number) is ignored.
    pub fn ignores(&self, signal: i32) -> bool {
        (1..=64).contains(&signal) && self.sig_ignored & (1 << (signal - 1)) != 0
    }

    /// Whether `signal` (a raw number) is blocked.
    pub fn blocks(&self, signal: i32) -> bool {
        (1..=64).contains(&signal) && self.sig_blocked & (1 << (signal - 1)) != 0
    }

    /// Whether `signal` (a raw number) is pending: sent, not yet acted on.
    pub fn has_pending(&self, signal: i32) -> bool {
        (1..=64).contains(&signal) && self.sig_pending & (1 << (signal - 1)) != 0
    }

    /// Whether `signal` (a raw number) has a handler.
    pub fn catches(&self, signal: i32) -> bool {
        (1..=64).contains(&signal) && self.sig_caught & (1 << (signal - 1)) != 0
    }

    /// True when this is still the same process as `other` (same pid, same start).
    pub fn same_process(&self, other: &ProcessInfo) -> bool {
        self.pid == other.pid && self.start_ticks == other.start_ticks
    }

    /// A state word for people.
    pub fn state_word(&self) -> &'static str {
        match self.state {
            'R' => "running",
            'S' => "sleeping",
            'D' => "uninterruptible",
            'T' => "stopped",
            't' => "traced",
            'Z' => "zombie",
            'X' | 'x' => "dead",
            'I' => "idle",
            _ => "unknown",
        }
    }
}

/// The direct children of `pid`, over all its threads (a child's parent is the thread
/// that forked it).
pub(crate) fn children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        read_children_file(&task.path().join("children"), &mut out);
    }
    out
}

/// The direct children of `pid`, which had `threads` threads when its `stat` was read:
/// a single-threaded process's are all in its main thread's `children` file, read
/// without listing its tasks first. (A thread it starts after that `stat` and the child
/// that thread forks are as new to this walk as any process born after it.)
fn children_of(pid: i32, threads: i64) -> Vec<i32> {
    if threads != 1 {
        return children(pid);
    }
    let mut out = Vec::new();
    if !read_children_file(
        Path::new(&format!("/proc/{pid}/task/{pid}/children")),
        &mut out,
    ) {
        // Unreadable (gone since): the listing says what is left, as for any process.
        return children(pid);
    }
    out
}

/// Adds the pids of one `children` file to `out`; false when it cannot be read.
///
/// One `read` in the common case: the file is a `seq_file`, which fills the buffer as
/// far as it has records, so a read shorter than the buffer is the end (no second read
/// for the end of file).
fn read_children_file(path: &Path, out: &mut Vec<i32>) -> bool {
    use rustix::fs::{open, Mode, OFlags};
    use rustix::io::{read, Errno};
    let Ok(fd) = open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) else {
        return false;
    };
    let mut buf = vec![0u8; 4096];
    let mut got = 0;
    loop {
        if got == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let room = buf.len() - got;
        match read(&fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                if n < room {
                    break;
                }
            }
            Err(Errno::INTR) => {}
            Err(_) if got > 0 => break,
            Err(_) => return false,
        }
    }
    out.extend(
        buf[..got]
            .split(u8::is_ascii_whitespace)
            .filter_map(|k| std::str::from_utf8(k).ok()?.parse::<i32>().ok()),
    );
    true
}

/// The pids of every descendant of `root`, parents before children, without reading
/// anything else about them (for port and file holders, which only need pids).
pub(crate) fn subtree_pids(root: i32) -> Vec<i32> {
    let mut seen = HashSet::new();
    let mut queue: VecDeque<i32> = children(root).into();
    let mut out = Vec::new();
    while let Some(pid) = queue.pop_front() {
        if seen.insert(pid) {
            queue.extend(children(pid));
            out.push(pid);
        }
    }
    out
}

/// Every live descendant of `root` (not `root` itself), parents before children.
pub(crate) fn subtree(root: i32) -> Vec<ProcessInfo> {
    let mut seen = HashSet::new();
    let mut queue: VecDeque<i32> = children(root).into();
    let mut out = Vec::new();
    while let Some(pid) = queue.pop_front() {
        if !seen.insert(pid) {
            continue;
        }
        if let Some((info, threads)) = ProcessInfo::read_with_threads(pid) {
            queue.extend(children_of(pid, threads));
            out.push(info);
        }
    }
    out
}

/// Every pid on the machine now (kernel threads included), from the `/proc` listing.
/// The slow paths only: it grows with the machine.
pub(crate) fn all_pids() -> Vec<i32> {
    procfs::process::all_processes()
        .map(|procs| procs.flatten().map(|p| p.pid()).collect())
        .unwrap_or_default()
}

/// `pid`'s open descriptors and the link each names (`/proc/<pid>/fd/N`), one `readlink`
/// each; nothing when the process is gone or its descriptors are not ours to read.
pub(crate) fn fd_links(pid: i32) -> impl Iterator<Item = (u32, PathBuf)> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let fd = entry.file_name().to_str()?.parse().ok()?;
            Some((fd, std::fs::read_link(entry.path()).ok()?))
        })
}

/// One process's descriptors and the link each names, read once for every question a
/// survivor snapshot asks of them (its ports, the agent's pipes it holds, its stdin, the
/// pipes it writes): one pass over `/proc/<pid>/fd` instead of one per question.
#[derive(Debug, Clone, Default)]
pub(crate) struct FdLinks(Vec<(u32, PathBuf)>);

impl FdLinks {
    /// `pid`'s descriptors now ([`fd_links`]); none when it is gone or not ours to read.
    pub(crate) fn read(pid: i32) -> FdLinks {
        FdLinks(fd_links(pid).collect())
    }

    /// Each descriptor and what its link names.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Path)> {
        self.0.iter().map(|(fd, link)| (*fd, link.as_path()))
    }

    /// The link of descriptor `fd`, if it is open.
    pub(crate) fn get(&self, fd: u32) -> Option<&Path> {
        self.iter().find(|(n, _)| *n == fd).map(|(_, link)| link)
    }
}

/// What a descriptor's link names: `socket:[N]`, `pipe:[N]`, a path… (`None` for a link
/// procfs cannot read, or one that is not UTF-8).
pub(crate) fn fd_target(link: &Path) -> Option<FDTarget> {
    link.to_str()?.parse().ok()
}

/// Whether a process's environment carries `ORPHAN_CHECK_RUN=<run_id>`; `None` when the
/// environment cannot be read (another user's process). An empty environment is
/// `Some(false)`.
pub(crate) fn carries_marker(pid: i32, run_id: &str) -> Option<bool> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let wanted = format!("{}={run_id}", crate::RUN_ENV);
    Some(environ.split(|b| *b == 0).any(|kv| kv == wanted.as_bytes()))
}

/// Whether `pid` is a descendant of `ancestor` now, following parent links.
pub(crate) fn descends_from(pid: i32, ancestor: i32) -> bool {
    let mut current = pid;
    for _ in 0..4096 {
        let Some(info) = ProcessInfo::read(current) else {
            return false;
        };
        if info.ppid == ancestor {
            return true;
        }
        if info.ppid <= 1 {
            return false;
        }
        current = info.ppid;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = ProcessInfo::read(std::process::id() as i32).expect("own process");
        assert_eq!(me.pid, std::process::id() as i32);
        assert!(me.start_ticks > 0);
        assert!(!me.is_zombie());
    }

    #[test]
    fn descriptors_are_listed_with_what_they_name() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = listener.as_raw_fd();
        let inode = std::fs::metadata(format!("/proc/self/fd/{fd}"))
            .unwrap()
            .ino();
        let me = std::process::id() as i32;
        let (_, link) = fd_links(me)
            .find(|(n, _)| *n == fd as u32)
            .expect("the listener's descriptor is listed");
        assert_eq!(fd_target(&link), Some(FDTarget::Socket(inode)));
        assert_eq!(
            fd_target(Path::new("/dev/null")),
            Some(FDTarget::Path("/dev/null".into()))
        );
        assert!(fd_links(0).next().is_none(), "no process 0");
        assert!(all_pids().contains(&me));
        assert!(all_pids().contains(&1));
    }

    #[test]
    fn a_single_threaded_process_has_the_same_children_without_its_task_listing() {
        use std::io::BufRead;
        let mut shell = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & echo forked; wait"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        let mut line = String::new();
        std::io::BufReader::new(shell.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line, "forked\n");
        let pid = shell.id() as i32;
        let (_, threads) = ProcessInfo::read_with_threads(pid).expect("the shell");
        assert_eq!(threads, 1);
        let mut listed = children(pid);
        let mut direct = children_of(pid, threads);
        listed.sort_unstable();
        direct.sort_unstable();
        for kid in &listed {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(*kid).expect("a pid"),
                rustix::process::Signal::KILL,
            );
        }
        let _ = shell.kill();
        let _ = shell.wait();
        assert_eq!(listed.len(), 2, "both sleeps");
        assert_eq!(direct, listed);
    }

    #[test]
    fn signal_masks_are_one_based() {
        let info = ProcessInfo {
            pid: 1,
            ppid: 0,
            pgid: 1,
            sid: 1,
            state: 'S',
            comm: "x".into(),
            cmdline: vec![],
            start_ticks: 1,
            uid: 0,
            sig_ignored: 1 << (15 - 1),
            sig_caught: 1 << (2 - 1),
            sig_blocked: 0,
            sig_pending: 0,
            pid_in_namespace: None,
        };
        assert!(info.ignores(15));
        assert!(!info.ignores(9));
        assert!(info.catches(2));
        assert!(!info.catches(0));
        assert_eq!(info.command(), "[x]");
    }
}
