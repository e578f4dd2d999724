//! Which survivors still hold the agent's stdio pipes.
//!
//! A caller that reads an agent's stdout to end of file (`subprocess.run(capture_output=
//! True)`, `$(...)` in a shell, a test runner collecting output) waits until *every*
//! process holding the pipe's write end has closed it. A survivor that inherited the
//! agent's stdout therefore keeps that caller hanging after the agent itself is gone:
//! the reason tools that run shell commands hang after a timeout killed only the shell.
//!
//! A pipe is one inode on the kernel's pipe filesystem; `/proc/<pid>/fd/N` links to
//! `pipe:[INODE]`. The harness knows the inodes of the agent's pipes (it made them), so
//! a survivor's descriptors name which of them it holds (read as `procs::fd_links` reads
//! them, named by procfs's `FDTarget::Pipe`). `/proc/<pid>/fdinfo/N` says in which
//! direction (`flags`), which tells whether a pipe still has a writer.

use std::collections::{HashMap, HashSet};
use std::os::fd::BorrowedFd;
use std::path::Path;

use procfs::process::FDTarget;
use serde::Serialize;

use crate::procs::{self, FdLinks};

/// The inodes of the agent's stdio pipes (only the streams that are pipes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AgentPipes {
    /// The stdin pipe the harness writes (with [`Stdin::Pipe`](crate::scenario::Stdin::Pipe)).
    pub stdin: Option<u64>,
    pub stdout: Option<u64>,
    pub stderr: Option<u64>,
}

/// One of the agent's standard streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Stream {
    /// The agent's stdin pipe.
    Stdin,
    /// The agent's stdout pipe.
    Stdout,
    /// The agent's stderr pipe.
    Stderr,
}

impl Stream {
    /// What holding it open means, for the report.
    pub fn consequence(self) -> &'static str {
        match self {
            Stream::Stdin => {
                "holds the agent's stdin pipe open: it still reads what the agent's client writes"
            }
            Stream::Stdout => "holds the agent's stdout open: a caller that reads it to EOF hangs",
            Stream::Stderr => "holds the agent's stderr open: a caller that reads it to EOF hangs",
        }
    }
}

/// The pipe inode of `fd`, if it is a pipe.
pub(crate) fn pipe_inode(fd: BorrowedFd<'_>) -> Option<u64> {
    let stat = rustix::fs::fstat(fd).ok()?;
    let kind = rustix::fs::FileType::from_raw_mode(stat.st_mode);
    (kind == rustix::fs::FileType::Fifo).then_some(stat.st_ino)
}

/// The pipe inode a `/proc/<pid>/fd/N` link names: `pipe:[12345]`.
fn pipe_of(link: &Path) -> Option<u64> {
    match procs::fd_target(link)? {
        FDTarget::Pipe(inode) => Some(inode),
        _ => None,
    }
}

/// Whether an fdinfo `flags:` line (octal) says the descriptor may write.
fn fdinfo_writes(fdinfo: &str) -> bool {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        .is_some_and(|flags| flags & libc::O_ACCMODE as u32 != libc::O_RDONLY as u32)
}

/// Every pipe `pid` has open: (descriptor number, inode).
pub(crate) fn pipes_of(pid: i32) -> Vec<(u32, u64)> {
    pipes_in(&FdLinks::read(pid))
}

/// Every pipe among descriptors already read: (descriptor number, inode).
pub(crate) fn pipes_in(links: &FdLinks) -> Vec<(u32, u64)> {
    links
        .iter()
        .filter_map(|(fd, link)| Some((fd, pipe_of(link)?)))
        .collect()
}

/// Which of the agent's pipes the process whose descriptors are `links` holds.
pub(crate) fn agent_streams_held(links: &FdLinks, agent: &AgentPipes) -> Vec<Stream> {
    let held = pipes_in(links);
    let mut out = Vec::new();
    for (stream, inode) in [
        (Stream::Stdin, agent.stdin),
        (Stream::Stdout, agent.stdout),
        (Stream::Stderr, agent.stderr),
    ] {
        if inode.is_some_and(|i| held.iter().any(|(_, h)| *h == i)) {
            out.push(stream);
        }
    }
    out
}

/// The inode of the stdin among descriptors already read, when it is a pipe.
pub(crate) fn stdin_pipe_in(links: &FdLinks) -> Option<u64> {
    pipe_of(links.get(0)?)
}

/// The pipes that any of `pids` holds a write end of; `known` has the descriptors of
/// some of them already read (the others are read now).
pub(crate) fn pipes_written_by(pids: &[i32], known: &HashMap<i32, FdLinks>) -> HashSet<u64> {
    let mut out = HashSet::new();
    for &pid in pids {
        let pipes = match known.get(&pid) {
            Some(links) => pipes_in(links),
            None => pipes_of(pid),
        };
        for (fd, inode) in pipes {
            let writes = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
                .is_ok_and(|info| fdinfo_writes(&info));
            if writes {
                out.insert(inode);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_links_and_fdinfo_flags() {
        assert_eq!(pipe_of(Path::new("pipe:[4242]")), Some(4242));
        assert_eq!(pipe_of(Path::new("socket:[4242]")), None);
        assert_eq!(pipe_of(Path::new("/dev/null")), None);
        assert_eq!(pipe_of(Path::new("pipe:[]")), None);
        // O_RDONLY | O_LARGEFILE, then O_WRONLY | O_CLOEXEC.
        assert!(!fdinfo_writes("pos:\t0\nflags:\t0100000\nmnt_id:\t15\n"));
        assert!(fdinfo_writes("pos:\t0\nflags:\t02000001\nmnt_id:\t15\n"));
    }

    #[test]
    fn our_own_pipe_is_found_with_its_direction() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let inode = pipe_inode(std::os::fd::AsFd::as_fd(&r)).unwrap();
        let me = std::process::id() as i32;
        assert!(pipes_of(me).iter().any(|(_, i)| *i == inode));
        assert!(pipes_written_by(&[me], &HashMap::new()).contains(&inode));
        drop(w);
        assert!(!pipes_written_by(&[me], &HashMap::new()).contains(&inode));
    }
}
