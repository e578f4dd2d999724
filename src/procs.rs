//! Process facts from `/proc`, and snapshots of the sentinel's subtree.
//!
//! A snapshot walks `/proc/<pid>/task/<tid>/children` down from the sentinel, so its cost
//! grows with the scenario's tree, not with the number of processes on the machine.
//!
//! `procfs` lists `/proc` ([`all_pids`]) and names what a descriptor links to
//! ([`fd_target`]). Four reads are by hand because they are on the verdict's path and
//! procfs is measurably slower at them (procfs 0.18, `cargo run --release --example
//! procfs-cost`, medians on the benchmark machine, docs/benchmarks.md):
//!
//! - a process's facts ([`ProcessInfo::read`]: `stat`, `status`, `cmdline`): procfs
//!   opens the pid's directory, reads each file to its end and parses all of `status`;
//!   by hand it is one descriptor of the directory, one `read` per file and only the
//!   kept fields, 25 µs against 48 µs;
//! - the walk's `children` files: procfs opens the pid's directory, its `task`
//!   directory and each task's before the file, 46 µs against 31 µs for a tree of two
//!   (and a single-threaded process's is read without listing its tasks: the snapshot
//!   knows the thread count from `stat`);
//! - a descriptor's link ([`fd_links`]): procfs's `Process::fd` opens each descriptor
//!   with `O_PATH`, reads the link through it and `stat`s it, four system calls where a
//!   `readlink` is one: 56 µs against 36 µs for a process with 9 descriptors;
//! - the environment marker ([`carries_marker`]): procfs's `environ` builds a map of the
//!   whole environment, 29 µs against 16 µs.

use serde::Serialize;
use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};

use std::os::fd::OwnedFd;

use procfs::process::FDTarget;
use rustix::fs::{open, openat, Mode, OFlags};
use rustix::io::{read, Errno};

/// What the kernel says about one process at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
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
    ///
    /// `stat`, `status` and `cmdline` are read once each, through one descriptor of the
    /// process's `/proc` directory (so all three are the same process, even if its pid
    /// were reused meanwhile), one `read` per file, into one buffer, and only the kept
    /// fields are parsed: procfs opens the directory, reads each file to the end and
    /// parses all of `status` into owned strings.
    fn read_with_threads(pid: i32) -> Option<(ProcessInfo, i64)> {
        let dir = open(
            format!("/proc/{pid}"),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let mut buf = vec![0u8; 4096];
        let n = read_in(&dir, "stat", &mut buf)?;
        let (mut info, threads) = parse_stat(pid, &buf[..n])?;
        if let Some(n) = read_in(&dir, "status", &mut buf) {
            parse_status(&buf[..n], &mut info);
        }
        if let Some(n) = read_in(&dir, "cmdline", &mut buf) {
            info.cmdline = buf[..n]
                .split(|b| *b == 0)
                .filter(|arg| !arg.is_empty())
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect();
        }
        Some((info, threads))
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

/// The pid, parent, group, session, state, name and start of a process from its `stat`
/// line, with its thread count. `comm` is everything between the first `(` and the last
/// `)`: a name may hold spaces and parentheses.
fn parse_stat(pid: i32, stat: &[u8]) -> Option<(ProcessInfo, i64)> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let comm = String::from_utf8_lossy(stat.get(open + 1..close)?).into_owned();
    let rest = std::str::from_utf8(stat.get(close + 2..)?).ok()?;
    // The fields after `comm`, numbered as in proc(5): 3 state, 4 ppid, 5 pgrp,
    // 6 session, …, 20 num_threads, 21 itrealvalue, 22 starttime.
    let fields: Vec<&str> = rest.split_ascii_whitespace().take(20).collect();
    let field = |n: usize| fields.get(n - 3).copied();
    let num = |n: usize| field(n)?.parse::<i64>().ok();
    let state = field(3)?.chars().next()?;
    let (ppid, pgid, sid) = (num(4)? as i32, num(5)? as i32, num(6)? as i32);
    let threads = num(20)?;
    let start_ticks = field(22)?.parse::<u64>().ok()?;
    let info = ProcessInfo {
        pid,
        ppid,
        pgid,
        sid,
        state,
        comm,
        cmdline: Vec::new(),
        start_ticks,
        uid: u32::MAX,
        sig_ignored: 0,
        sig_caught: 0,
        sig_blocked: 0,
        sig_pending: 0,
        pid_in_namespace: None,
    };
    Some((info, threads))
}

/// The user, the signal masks and the namespace pid from a `status` text.
fn parse_status(status: &[u8], info: &mut ProcessInfo) {
    let hex = |v: &str| u64::from_str_radix(v.trim(), 16).unwrap_or(0);
    for line in status.split(|b| *b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key {
            "Uid" => {
                info.uid = value
                    .split_ascii_whitespace()
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(u32::MAX)
            }
            "SigPnd" | "ShdPnd" => info.sig_pending |= hex(value),
            "SigBlk" => info.sig_blocked = hex(value),
            "SigIgn" => info.sig_ignored = hex(value),
            "SigCgt" => info.sig_caught = hex(value),
            "NSpid" => {
                let ids: Vec<i32> = value
                    .split_ascii_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect();
                if ids.len() > 1 {
                    info.pid_in_namespace = ids.last().copied();
                }
            }
            _ => {}
        }
    }
}

/// Reads the file `name` of a process's `/proc` directory whole into `buf` (grown when
/// it does not fit), one `read` in the common case: `stat` and `status` are one record
/// each, made whole before the first read returns, and `cmdline` fills the buffer while
/// it has more, so a read shorter than the buffer is the end. Its length, or `None` when
/// it cannot be opened or read (the process is gone).
fn read_in(dir: &OwnedFd, name: &str, buf: &mut Vec<u8>) -> Option<usize> {
    let fd = openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    read_whole(&fd, buf, true)
}

/// Reads `fd` to its end into `buf` (grown as needed); with `short_is_end`, a read
/// shorter than the room left is taken as the end, as [`read_in`] explains. Its length,
/// or `None` when nothing could be read.
pub(crate) fn read_whole(fd: &OwnedFd, buf: &mut Vec<u8>, short_is_end: bool) -> Option<usize> {
    let mut got = 0;
    loop {
        if got == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let room = buf.len() - got;
        match read(fd, &mut buf[got..]) {
            Ok(0) => return Some(got),
            Ok(n) => {
                got += n;
                if short_is_end && n < room {
                    return Some(got);
                }
            }
            Err(Errno::INTR) => {}
            Err(_) if got > 0 => return Some(got),
            Err(_) => return None,
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
/// Read to its end of file: it is a `seq_file` of one record per child, and a read
/// returns at most the kernel's own buffer of whole records (a page), so a read shorter
/// than the buffer says nothing about what is left (a process with a thousand
/// children fills more than a page).
fn read_children_file(path: &Path, out: &mut Vec<i32>) -> bool {
    let Ok(fd) = open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) else {
        return false;
    };
    let mut buf = vec![0u8; 4096];
    let Some(got) = read_whole(&fd, &mut buf, false) else {
        return false;
    };
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
    let fd = open(
        format!("/proc/{pid}/environ"),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    // One read for most environments: procfs fills the whole buffer while there is
    // more, so a short read is the end.
    let mut environ = vec![0u8; 16 * 1024];
    let n = read_whole(&fd, &mut environ, true)?;
    let key = crate::RUN_ENV.as_bytes();
    Some(environ[..n].split(|b| *b == 0).any(|kv| {
        kv.len() == key.len() + 1 + run_id.len()
            && kv.starts_with(key)
            && kv[key.len()] == b'='
            && &kv[key.len() + 1..] == run_id.as_bytes()
    }))
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

/// A process's facts read through procfs (`Process::stat`, `status`, `cmdline`), as
/// `ProcessInfo::read` read them before it read the three files by hand: what the raw
/// reader is checked against (its test) and timed against (`bench::procfs_process_info`).
pub(crate) fn read_through_procfs(pid: i32) -> Option<ProcessInfo> {
    let process = procfs::process::Process::new(pid).ok()?;
    let stat = process.stat().ok()?;
    let status = process.status().ok();
    Some(ProcessInfo {
        pid,
        ppid: stat.ppid,
        pgid: stat.pgrp,
        sid: stat.session,
        state: stat.state,
        comm: stat.comm,
        cmdline: process.cmdline().unwrap_or_default(),
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sh -c script`, returned once it has printed its first line, `line`.
    fn shell_after_line(script: &str, line: &str) -> std::process::Child {
        use std::io::BufRead;
        let mut shell = std::process::Command::new("sh")
            .args(["-c", script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        let mut got = String::new();
        std::io::BufReader::new(shell.stdout.take().expect("piped"))
            .read_line(&mut got)
            .expect("read");
        assert_eq!(got.trim_end(), line, "the shell's first line");
        shell
    }

    #[test]
    fn the_marker_is_found_past_the_first_read_and_only_for_its_own_run() {
        // 40 KB of environment before the marker: more than one read's buffer.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env_clear()
            .env("BIG", "x".repeat(40 * 1024))
            .env(crate::RUN_ENV, "oc-test-run")
            .spawn()
            .expect("sleep");
        // `spawn` returns once the child has exec'd: the environment is `sleep`'s.
        let pid = child.id() as i32;
        let found = carries_marker(pid, "oc-test-run");
        let other = carries_marker(pid, "oc-test");
        let longer = carries_marker(pid, "oc-test-run-2");
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert_eq!(found, Some(true));
        assert_eq!(other, Some(false), "a prefix of the run id is another run");
        assert_eq!(longer, Some(false));
    }

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
        let mut shell = shell_after_line("sleep 30 & sleep 30 & echo forked; wait", "forked");
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
    fn the_raw_reader_agrees_with_procfs() {
        // An ignored signal (inherited through the exec), a command line of several
        // arguments.
        let mut child = shell_after_line("trap '' TERM; echo set; exec sleep 30 30", "set");
        let pid = child.id() as i32;
        // The shell execs right after its line: until then it is still `sh`.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while ProcessInfo::read(pid).is_none_or(|p| p.comm != "sleep") {
            assert!(std::time::Instant::now() < deadline, "sleep never started");
            std::thread::yield_now();
        }
        let (threads, me) = (
            ProcessInfo::read_with_threads(pid).map(|(_, t)| t),
            std::process::id() as i32,
        );
        let compared = [pid, me].map(|p| (ProcessInfo::read(p), read_through_procfs(p)));
        child.kill().expect("kill");
        child.wait().expect("wait");
        for (i, (raw, procfs)) in compared.iter().enumerate() {
            assert!(raw.is_some());
            let mut procfs = procfs.clone();
            if i == 1 {
                // This process runs other tests between the two reads: its main thread
                // may be running in one and sleeping in the other.
                if let (Some(p), Some(r)) = (procfs.as_mut(), raw.as_ref()) {
                    p.state = r.state;
                }
            }
            assert_eq!(raw, &procfs);
        }
        let sleeper = compared[0].0.as_ref().expect("read");
        assert!(sleeper.ignores(libc::SIGTERM));
        assert_eq!(sleeper.cmdline, ["sleep", "30", "30"]);
        assert_eq!(threads, Some(1));
        assert!(ProcessInfo::read(0).is_none(), "no process 0");
    }

    #[test]
    fn a_stat_line_is_read_around_a_name_with_spaces_and_parentheses() {
        let line = b"42 (a (b) c) S 7 42 7 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 12345 1000 20 18446744073709551615\n";
        let (info, threads) = parse_stat(42, line).expect("parses");
        assert_eq!(info.comm, "a (b) c");
        assert_eq!(info.state, 'S');
        assert_eq!((info.ppid, info.pgid, info.sid), (7, 42, 7));
        assert_eq!(threads, 3);
        assert_eq!(info.start_ticks, 12345);
        assert!(parse_stat(42, b"42 (x").is_none(), "cut short");
    }

    #[test]
    fn a_thousand_children_are_all_found() {
        // 1 000 pids of 5 or more digits fill more than the kernel's page of records.
        let mut shell = shell_after_line(
            "i=0; while [ $i -lt 1000 ]; do sleep 60 & i=$((i+1)); done; echo forked; wait",
            "forked",
        );
        let pid = shell.id() as i32;
        let file = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .expect("children file");
        let mut expected: Vec<i32> = file
            .split_whitespace()
            .map(|k| k.parse().unwrap())
            .collect();
        let mut found = children_of(pid, 1);
        let mut listed = children(pid);
        for kid in &expected {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(*kid).expect("a pid"),
                rustix::process::Signal::KILL,
            );
        }
        let _ = shell.kill();
        let _ = shell.wait();
        assert_eq!(expected.len(), 1000);
        expected.sort_unstable();
        found.sort_unstable();
        listed.sort_unstable();
        assert_eq!(found, expected);
        assert_eq!(listed, expected);
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
